//! Who allocated a heap block: `__tsan_malloc` without a context.
//!
//! Go calls `__tsan_malloc(ctx=0, pc=0, p, size)` (race.go `racemalloc`), so the runtime
//! is not told which goroutine allocates. But the call comes through `racecall<>`
//! (race_amd64.s), which keeps R14 = the current `*runtime.g` across the C call, and
//! `mallocgc` runs on the allocating goroutine; so `abi::__tsan_malloc` is a naked
//! trampoline that passes R14 and RBP (Go's frame pointer at the call) to [`malloc`].
//!
//! * **Which goroutine:** `g.racectx` (the engine's context) sits at a version-specific
//!   offset in `runtime.g`. It is not assumed: while the offset is unknown, each malloc
//!   scans the words of `runtime.g` (456 bytes in go1.26/1.27, where racectx is at 312)
//!   for one equal to a live context of the engine. An offset is trusted after
//!   [`CONFIRM`] agreeing sightings and no disagreeing one; a disagreement, or
//!   [`MAX_PROBES`] mallocs without a decision, turns the feature off for the run.
//!   Before that, nothing is recorded, so nothing is ever misattributed.
//! * **Where:** the engine's shadow stack ends at the caller of the allocating function
//!   (func_enter pushes caller pcs), so the allocating function's own pc comes from
//!   Go's frame-pointer chain: walking up from RBP (bounded by `g.stack`, the first
//!   field of `runtime.g`), the return address just below the one equal to the shadow
//!   stack's top is the allocating call. If it is not found the stack ends one frame
//!   higher; it is never wrong.
//!
//! * **Storage:** a direct-mapped side table, like shadow memory: one 8-byte word per
//!   16 bytes of heap at `SIDE_OFFSET + addr/2` (`MAP_NORESERVE`, mapped per heap
//!   arena as Go announces it through `__tsan_map_shadow`), holding `(goroutine report
//!   number, interned stack id)` of the block starting in that 16-byte granule. Keyed
//!   by the granule because under `-race` Go moves tiny noscan objects to the end of
//!   their 16-byte slot (malloc.go): `__tsan_malloc`'s address and `findObject`'s slot
//!   start then differ only below 16, and blocks are always 16 or more bytes apart.
//!   Every malloc writes its granule (0 when the goroutine is unknown, so an old site is
//!   never left behind) and every free clears it; no locks, no hashing.
//!
//! Cost: nothing on the access path; per malloc (only when `alloc_sites=1` or
//! `json_path` is set), one load of `g.racectx`, a short frame walk, the engine's
//! cached stack id and one store; per free, one store.

use crate::engine::goroutine::Goroutine;
use crate::lock::SpinLock;
use crate::rt::engine;
use crate::sys;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// Size of `runtime.g` in go1.26/1.27 (DWARF); the scan stays inside it.
const G_SCAN_BYTES: usize = 456;
/// `g.stack` = `{lo, hi}` is the first field of `runtime.g` in every Go release.
const G_STACK_LO: usize = 0;
const G_STACK_HI: usize = 8;
/// Sightings of the same offset needed before it is trusted.
const CONFIRM: u32 = 8;
/// Mallocs scanned without a decision before giving up.
const MAX_PROBES: u32 = 4096;
/// How many Go frames the frame-pointer walk looks at.
const MAX_FRAMES: usize = 32;

/// Where the side table lives: `SIDE_OFFSET + addr / 2` for heap address `addr`
/// (heap at `0xc0..0xe0 << 32` → `0x5060..0x5070 << 32`), clear of gorace's shadow,
/// ThreadSanitizer's layout, Go's heap hints and the mmap area near `0x7f..`.
const SIDE_OFFSET: usize = 0x5000_0000_0000;
/// Heap ranges are mapped in units whose table part is whole pages.
const SIDE_ALIGN: usize = 8192;

/// The heap span the side table covers, `[lo, hi)`.
static SIDE_LO: AtomicUsize = AtomicUsize::new(0);
static SIDE_HI: AtomicUsize = AtomicUsize::new(0);
static SIDE_MAP_LOCK: SpinLock<()> = SpinLock::new(());

fn map_side(lo: usize, hi: usize) -> bool {
    if hi <= lo {
        return true;
    }
    let (t_lo, t_hi) = (SIDE_OFFSET + lo / 2, SIDE_OFFSET + hi / 2);
    sys::mmap_anon(
        t_lo,
        t_hi - t_lo,
        sys::PROT_READ | sys::PROT_WRITE,
        sys::MAP_NORESERVE | sys::MAP_FIXED_NOREPLACE,
    ) == Some(t_lo as *mut u8)
}

/// Go mapped heap `[addr, addr+size)` (`__tsan_map_shadow` after the data range): map
/// the side table for it, extending the covered span. If mapping fails the feature is
/// switched off (reports just lack the allocation site).
pub fn note_heap(addr: usize, size: usize) {
    if !ENABLED.load(Ordering::Relaxed) {
        return;
    }
    let _l = SIDE_MAP_LOCK.lock();
    let lo = addr & !(SIDE_ALIGN - 1);
    let hi = addr.saturating_add(size).div_ceil(SIDE_ALIGN) * SIDE_ALIGN;
    if hi > 0x8000_0000_0000 {
        ENABLED.store(false, Ordering::Relaxed);
        return;
    }
    let (cur_lo, cur_hi) = (
        SIDE_LO.load(Ordering::Relaxed),
        SIDE_HI.load(Ordering::Relaxed),
    );
    let ok = if cur_hi == 0 {
        let ok = map_side(lo, hi);
        if ok {
            SIDE_LO.store(lo, Ordering::Relaxed);
            SIDE_HI.store(hi, Ordering::Release);
        }
        ok
    } else {
        let mut ok = true;
        if lo < cur_lo {
            ok &= map_side(lo, cur_lo);
            if ok {
                SIDE_LO.store(lo, Ordering::Release);
            }
        }
        if hi > cur_hi && ok {
            ok &= map_side(cur_hi, hi);
            if ok {
                SIDE_HI.store(hi, Ordering::Release);
            }
        }
        ok
    };
    if !ok {
        ENABLED.store(false, Ordering::Relaxed);
    }
}

/// The table word of the block starting in `addr`'s 16-byte granule, if covered.
#[inline]
fn side_word(addr: usize) -> Option<&'static AtomicU64> {
    if addr < SIDE_LO.load(Ordering::Acquire) || addr >= SIDE_HI.load(Ordering::Acquire) {
        return None;
    }
    let w = SIDE_OFFSET + (addr >> 4) * 8;
    // SAFETY: the table of every address in [SIDE_LO, SIDE_HI) is mapped read-write for
    // the rest of the process (never unmapped), aligned, and only accessed atomically.
    Some(unsafe { &*(w as *const AtomicU64) })
}

/// Who allocated the heap block starting at `start` (Go's `findObject` start).
pub fn lookup(start: usize) -> Option<(u32, u32)> {
    if !ENABLED.load(Ordering::Relaxed) || racectx_offset().is_none() {
        return None;
    }
    let v = side_word(start)?.load(Ordering::Relaxed);
    (v != 0).then_some(((v >> 32) as u32, v as u32))
}

const UNKNOWN: usize = 0;
const DISABLED: usize = usize::MAX;

static ENABLED: AtomicBool = AtomicBool::new(false);
static OFFSET: AtomicUsize = AtomicUsize::new(UNKNOWN);

struct Search {
    candidate: usize,
    seen: u32,
    probes: u32,
}

static SEARCH: SpinLock<Search> = SpinLock::new(Search {
    candidate: 0,
    seen: 0,
    probes: 0,
});

/// Turns allocation-site recording on (from `__tsan_init`, per GORACE).
pub fn enable(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

/// The validated offset of `racectx` in `runtime.g`, if found yet.
pub fn racectx_offset() -> Option<usize> {
    match OFFSET.load(Ordering::Relaxed) {
        UNKNOWN | DISABLED => None,
        off => Some(off),
    }
}

/// Reads a word of Go memory.
///
/// # Safety
/// `addr` must be readable and 8-byte aligned.
#[inline(always)]
unsafe fn word(addr: usize) -> usize {
    // SAFETY: the caller's contract.
    unsafe { core::ptr::read_volatile(addr as *const usize) }
}

/// One scan of `g` for a word equal to a live context; updates the search state.
///
/// # Safety
/// `g` must point to a `runtime.g` of at least `G_SCAN_BYTES` bytes.
unsafe fn search(g: usize) {
    let mut s = SEARCH.lock();
    if OFFSET.load(Ordering::Relaxed) != UNKNOWN {
        return;
    }
    s.probes += 1;
    let mut found = None;
    for off in (16..G_SCAN_BYTES).step_by(8) {
        // SAFETY: inside the g struct (caller's contract), aligned.
        let v = unsafe { word(g + off) };
        if v != 0 && v & 7 == 0 && engine().is_live_context(v) {
            if found.is_some() {
                // Two words look like contexts: ambiguous, never guess.
                OFFSET.store(DISABLED, Ordering::Relaxed);
                return;
            }
            found = Some(off);
        }
    }
    match found {
        Some(off) if s.seen == 0 || s.candidate == off => {
            s.candidate = off;
            s.seen += 1;
            if s.seen >= CONFIRM {
                OFFSET.store(off, Ordering::Release);
            }
        }
        Some(_) => OFFSET.store(DISABLED, Ordering::Relaxed),
        None if s.probes >= MAX_PROBES => OFFSET.store(DISABLED, Ordering::Relaxed),
        None => {}
    }
}

/// The allocating function's pc: the return address in the Go frame chain just below
/// the one equal to `top` (the shadow stack's innermost caller pc); 0 if not found.
///
/// # Safety
/// `g` must be the current `runtime.g` and `bp` Go's frame pointer at the call.
unsafe fn leaf_pc(g: usize, mut bp: usize, top: usize) -> usize {
    if top == 0 {
        return 0;
    }
    // SAFETY: g is a valid runtime.g; its first field is the stack bounds.
    let (lo, hi) = unsafe { (word(g + G_STACK_LO), word(g + G_STACK_HI)) };
    let mut below = 0;
    for _ in 0..MAX_FRAMES {
        if bp < lo || bp.saturating_add(16) > hi || bp & 7 != 0 {
            return 0;
        }
        // SAFETY: bp is an aligned address inside the goroutine's stack [lo, hi).
        let (next, ret) = unsafe { (word(bp), word(bp + 8)) };
        if ret == top {
            return below;
        }
        below = ret;
        if next <= bp {
            return 0;
        }
        bp = next;
    }
    0
}

/// `__tsan_malloc` with the trampoline's extra registers: `g` = R14, `bp` = RBP.
///
/// # Safety
/// Only for the trampoline: `g` must be the calling `runtime.g` (Go's racecall keeps it
/// in R14) and `bp` Go's frame pointer.
pub unsafe fn malloc(g: usize, bp: usize, p: usize, size: usize) {
    let e = engine();
    e.malloc(p, size);
    if !ENABLED.load(Ordering::Relaxed) {
        return;
    }
    let Some(slot) = side_word(p) else {
        return;
    };
    // SAFETY: forwarded from the caller's contract.
    let site = unsafe { site(g, bp) };
    slot.store(site, Ordering::Relaxed);
}

/// `(tid << 32 | stack id)` of the allocation being made on `g`, or 0 if unknown.
///
/// # Safety
/// As for [`malloc`].
unsafe fn site(g: usize, bp: usize) -> u64 {
    let e = engine();
    if g == 0 || g & 7 != 0 {
        return 0;
    }
    let off = match OFFSET.load(Ordering::Acquire) {
        DISABLED => return 0,
        UNKNOWN => {
            // SAFETY: g is the current runtime.g (caller's contract).
            unsafe { search(g) };
            match OFFSET.load(Ordering::Acquire) {
                UNKNOWN | DISABLED => return 0,
                off => off,
            }
        }
        off => off,
    };
    // SAFETY: off was validated inside runtime.g.
    let ctx = unsafe { word(g + off) };
    if ctx == 0 {
        return 0;
    }
    // SAFETY: a validated racectx is a live context of this engine, used by this thread
    // (Go's mallocgc runs on the goroutine that owns it).
    let gr = unsafe { &*(ctx as *const Goroutine) };
    // SAFETY: g and bp come from the trampoline (caller's contract).
    let leaf = unsafe { leaf_pc(g, bp, e.shadow_top(gr)) };
    (gr.tid as u64) << 32 | e.alloc_stack(gr, leaf) as u64
}

/// `__tsan_free`: forget the freed block's allocation site.
pub fn free(p: usize, size: usize) {
    engine().free(p, size);
    if ENABLED.load(Ordering::Relaxed)
        && let Some(slot) = side_word(p)
    {
        slot.store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake goroutine stack: frame records `[saved bp, return address]` linked
    /// upwards, and a `runtime.g` whose first two words bound the stack.
    #[test]
    fn leaf_pc_is_the_return_address_below_the_shadow_top() {
        let mut stack = [0usize; 64];
        let len = stack.len();
        let base = stack.as_mut_ptr() as usize;
        let at = |i: usize| base + i * 8;
        // All accesses go through `base` from here on.
        // SAFETY: i < 64, inside `stack`, aligned.
        let set = |i: usize, v: usize| unsafe { *(at(i) as *mut usize) = v };
        // Frames (innermost first) at words 4, 10, 20, 30: racemalloc -> mallocgc ->
        // F (allocating) -> F's caller.
        let frames = [(4, 0x1111), (10, 0x2222), (20, 0x3333), (30, 0x4444)];
        for (k, &(i, ret)) in frames.iter().enumerate() {
            set(i, frames.get(k + 1).map_or(0, |&(j, _)| at(j)));
            set(i + 1, ret);
        }
        let g = [base, base + len * 8];
        let gp = g.as_ptr() as usize;
        // SAFETY: g and the frame chain are valid memory built above.
        unsafe {
            // F's func_enter pushed 0x3333, the return address into F's caller that F's
            // frame record holds; the return address one frame below (0x2222, where
            // mallocgc returns into F) is the allocating pc.
            assert_eq!(leaf_pc(gp, at(4), 0x3333), 0x2222);
            assert_eq!(leaf_pc(gp, at(4), 0x4444), 0x3333);
            // Not found, empty shadow stack, a frame pointer outside the stack.
            assert_eq!(leaf_pc(gp, at(4), 0x9999), 0);
            assert_eq!(leaf_pc(gp, at(4), 0), 0);
            assert_eq!(leaf_pc(gp, 0x10, 0x3333), 0);
            assert_eq!(leaf_pc(gp, at(4) + 1, 0x3333), 0);
        }
        // A loop in the chain stops.
        set(20, at(10));
        // SAFETY: as above.
        assert_eq!(unsafe { leaf_pc(gp, at(4), 0x4444) }, 0);
    }
}
