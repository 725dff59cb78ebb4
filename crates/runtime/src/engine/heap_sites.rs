//! Allocation sites of heap blocks, for "Location is heap block … allocated by" lines.
//!
//! Go calls `__tsan_malloc(0, 0, p, size)` with no context, so the host works out the
//! allocating goroutine itself (see `crate::alloc_site`) and calls
//! [`Engine::record_alloc`]; nothing here runs on the access path. Each block costs one
//! compact entry, `block start → (goroutine report number, interned stack id)`, kept in
//! 64 address-sharded ordered maps: ordered because Go moves small noscan objects to the
//! end of their slot under `-race` (malloc.go), so the start Go's `findObject` gives at
//! report time can be below the address `__tsan_malloc` saw. Entries are dropped when
//! Go frees the block (`__tsan_free`, from the sweeper) and when the memory is handed
//! out again.

use super::goroutine::Goroutine;
use super::stack::StackId;
use super::{Engine, Host};
use crate::lock::SpinLock;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

const SHARDS: usize = 64;
/// Blocks are sharded by 64 KiB chunk of their start address.
const CHUNK_SHIFT: u32 = 16;

pub struct AllocSites {
    shards: [SpinLock<BTreeMap<usize, u64>>; SHARDS],
}

fn shard_of(addr: usize) -> usize {
    (addr >> CHUNK_SHIFT) % SHARDS
}

impl Default for AllocSites {
    fn default() -> Self {
        Self::new()
    }
}

impl AllocSites {
    pub fn new() -> Self {
        AllocSites {
            shards: core::array::from_fn(|_| SpinLock::new(BTreeMap::new())),
        }
    }

    /// Forgets the blocks that start in `[addr, addr+size)`.
    pub fn forget(&self, addr: usize, size: usize) {
        if size == 0 {
            return;
        }
        let end = addr.saturating_add(size);
        let first = addr >> CHUNK_SHIFT;
        let last = (end - 1) >> CHUNK_SHIFT;
        // Big blocks span many chunks but start at `addr` (only small objects are moved
        // inside their slot), so the first and the last chunk are enough.
        for chunk in [first, last] {
            let mut shard = self.shards[chunk % SHARDS].lock();
            if shard.is_empty() {
                continue;
            }
            let lo = addr.max(chunk << CHUNK_SHIFT);
            let doomed: Vec<usize> = shard.range(lo..end).map(|(&k, _)| k).collect();
            for k in doomed {
                shard.remove(&k);
            }
            if first == last {
                break;
            }
        }
    }

    /// Block `[addr, addr+size)` was allocated by goroutine `tid` at `stack`.
    pub fn record(&self, addr: usize, size: usize, tid: u32, stack: StackId) {
        self.forget(addr, size);
        self.shards[shard_of(addr)]
            .lock()
            .insert(addr, (tid as u64) << 32 | stack as u64);
    }

    /// The allocation of the block that starts at `start` (per Go) and contains `addr`.
    pub fn lookup(&self, start: usize, addr: usize) -> Option<(u32, StackId)> {
        let unpack = |v: u64| ((v >> 32) as u32, v as u32);
        if let Some(&v) = self.shards[shard_of(start)].lock().get(&start) {
            return Some(unpack(v));
        }
        if addr < start {
            return None;
        }
        let shard = self.shards[shard_of(addr)].lock();
        let lo = start.max((addr >> CHUNK_SHIFT) << CHUNK_SHIFT);
        shard.range(lo..=addr).next_back().map(|(_, &v)| unpack(v))
    }

    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<H: Host> Engine<H> {
    /// Heap block `[addr, addr+size)` was allocated by `g`, in the function whose pc is
    /// `leaf_pc` (0 if unknown: the stack then ends at the caller on `g`'s shadow stack).
    /// Called on `g`'s own thread (Go's mallocgc runs on the allocating goroutine).
    pub fn record_alloc(&self, g: &Goroutine, addr: usize, size: usize, leaf_pc: usize) {
        let stack = if leaf_pc != 0 {
            self.access_stack(g, leaf_pc)
        } else {
            self.prefix_stack(g)
        };
        self.allocs.record(addr, size, g.tid, stack);
    }

    /// Heap memory `[addr, addr+size)` was freed: forget its allocation sites.
    pub fn forget_allocs(&self, addr: usize, size: usize) {
        self.allocs.forget(addr, size);
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

    /// Number of heap blocks with a known allocation site.
    pub fn alloc_sites_len(&self) -> usize {
        self.allocs.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Kind, Options};
    use std::sync::Mutex;

    /// Symbolises pc `p` as `f<p>` in `/src/t.go` line `p`; one heap block at BLOCK.
    #[derive(Default)]
    struct HeapHost {
        text: Mutex<Vec<u8>>,
        json: Mutex<Vec<u8>>,
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
        e.record_alloc(main, BLOCK, 32, 0x350);
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
        // Freed: the site is forgotten, the location stays a heap block.
        e.forget_allocs(BLOCK, 32);
        assert!(e.alloc_sites_len() == 0);
    }

    #[test]
    fn lookup_finds_moved_small_objects_and_forgets_freed_ones() {
        let a = AllocSites::new();
        a.record(0x1000, 16, 3, 7);
        // A 5-byte noscan object moved to the end of its 16-byte slot at 0x1010.
        a.record(0x101b, 5, 4, 8);
        assert_eq!(a.lookup(0x1000, 0x1004), Some((3, 7)));
        assert_eq!(a.lookup(0x1010, 0x101c), Some((4, 8)));
        assert_eq!(a.lookup(0x1020, 0x1020), None);
        // The sweeper frees the slot: both forms go.
        a.forget(0x1010, 16);
        assert_eq!(a.lookup(0x1010, 0x101c), None);
        assert_eq!(a.lookup(0x1000, 0x1004), Some((3, 7)));
        // Reuse overwrites.
        a.record(0x1000, 16, 9, 10);
        assert_eq!(a.lookup(0x1000, 0x1000), Some((9, 10)));
        assert_eq!(a.len(), 1);
        // A block across chunk boundaries.
        a.record(0x1_fff0, 0x30000, 5, 11);
        assert_eq!(a.lookup(0x1_fff0, 0x3_0000), Some((5, 11)));
        a.forget(0x1_fff0, 0x30000);
        assert_eq!(a.lookup(0x1_fff0, 0x3_0000), None);
    }
}
