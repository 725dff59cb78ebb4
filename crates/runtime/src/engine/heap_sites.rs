//! Engine side of allocation sites ("Location is heap block … allocated by").
//!
//! Go calls `__tsan_malloc(0, 0, p, size)` with no context, so the host works out the
//! allocating goroutine itself (see `crate::alloc_site`), asks the engine for the
//! allocation stack ([`Engine::alloc_stack`]) and keeps `(goroutine, stack id)` per
//! block; at report time the engine asks it back through [`Host::alloc_site`]. Nothing
//! here runs on the access path.

use super::goroutine::Goroutine;
use super::stack::StackId;
use super::{Engine, Host};

impl<H: Host> Engine<H> {
    /// The interned stack of an allocation by `g` in the function whose pc is `leaf_pc`
    /// (0 if unknown: the stack then ends at the caller on `g`'s shadow stack). Must be
    /// called on `g`'s own thread (Go's mallocgc runs on the allocating goroutine).
    pub fn alloc_stack(&self, g: &Goroutine, leaf_pc: usize) -> StackId {
        if leaf_pc != 0 {
            let prefix = self.prefix_stack(g);
            self.stacks.intern(prefix, leaf_pc)
        } else {
            self.prefix_stack(g)
        }
    }

    /// The innermost caller pc on `g`'s shadow stack (what its current function's
    /// `func_enter` pushed), or 0. Used to find the allocating frame on Go's stack.
    pub fn shadow_top(&self, g: &Goroutine) -> usize {
        g.local().pcs.last().copied().unwrap_or(0)
    }

    /// Whether `ctx` is the address of a live goroutine context of this engine (used
    /// to validate where Go keeps `g.racectx`; takes the registry lock).
    pub fn is_live_context(&self, ctx: usize) -> bool {
        ctx != 0 && self.registry.lock().live.iter().any(|&g| g as usize == ctx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Kind, Options};
    use alloc::vec::Vec;
    use std::sync::Mutex;

    /// Symbolises pc `p` as `f<p>` in `/src/t.go` line `p`; one heap block at BLOCK.
    #[derive(Default)]
    struct HeapHost {
        text: Mutex<Vec<u8>>,
        json: Mutex<Vec<u8>>,
        sites: Mutex<std::collections::HashMap<usize, (u32, StackId)>>,
    }
    const BLOCK: usize = APP + 0x100;
    const APP: usize = 0x1000_0000;
    impl Host for HeapHost {
        fn symbolize(&self, pc: usize, frame: &mut crate::engine::report::FrameSink<'_>) {
            frame(std::format!("f{pc:x}").as_bytes(), b"/src/t.go", pc, 0x10);
        }
        fn write_report(&self, text: &[u8]) {
            self.text.lock().unwrap().extend_from_slice(text);
        }
        fn halt(&self, _: i32) {}
        fn heap_block(&self, addr: usize) -> Option<(usize, usize)> {
            (BLOCK..BLOCK + 32).contains(&addr).then_some((BLOCK, 32))
        }
        fn alloc_site(&self, start: usize) -> Option<(u32, StackId)> {
            self.sites.lock().unwrap().get(&start).copied()
        }
        fn json_enabled(&self) -> bool {
            true
        }
        fn write_json(&self, line: &[u8]) {
            self.json.lock().unwrap().extend_from_slice(line);
        }
    }

    #[test]
    fn reports_name_the_allocating_goroutine_and_stack() {
        let opts = Options {
            alloc_sites: true,
            atexit_sleep_ms: 0,
            ..Options::default()
        };
        let e = Engine::new(
            HeapHost::default(),
            opts,
            0x2f00_0000_0000,
            crate::engine::clock::MAX_TIME,
        );
        assert!(e.map_shadow(APP, 1 << 20));
        // SAFETY: the contexts stay live for the whole test.
        let root = unsafe { &*e.new_root() };
        // SAFETY: as above.
        let main = unsafe { &*e.go_start(Some(root), 0x100) };
        e.func_enter(main, 0x300);
        // main allocates the block in the function at pc 0x350 (called from 0x300).
        e.malloc(BLOCK, 32);
        let stack = e.alloc_stack(main, 0x350);
        e.host
            .sites
            .lock()
            .unwrap()
            .insert(BLOCK, (main.tid, stack));
        // SAFETY: as above.
        let child = unsafe { &*e.go_start(Some(main), 0x360) };
        e.access(child, BLOCK + 8, 0x500, Kind::WRITE);
        e.access(main, BLOCK + 8, 0x600, Kind::WRITE);
        let text = std::string::String::from_utf8(e.host.text.lock().unwrap().clone()).unwrap();
        assert!(
            text.ends_with(
                "Location is heap block of size 32 at 0x000010000100 allocated by main goroutine:\n  \
                 f34f()\n      /src/t.go:847 +0x10\n==================\n"
            ),
            "{text}"
        );
        let json = std::string::String::from_utf8(e.host.json.lock().unwrap().clone()).unwrap();
        assert_eq!(json.lines().count(), 1);
        assert!(json.contains("\"location\":{\"kind\":\"heap\",\"start\":\"0x000010000100\",\"size\":32,\"allocated_by\":{\"goroutine\":1,\"stack\":[{\"function\":\"f34f\""), "{json}");
        // Creation chain: the child's creation, then main's.
        assert!(
            json.contains(
                "\"created\":[{\"goroutine\":2,\"finished\":false,\"stack\":[{\"function\":\"f35f\""
            ),
            "{json}"
        );
    }
}
