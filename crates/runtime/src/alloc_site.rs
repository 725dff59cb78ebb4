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
//! Cost: nothing on the access path; per malloc, one load of `g.racectx`, a short
//! frame walk and one sharded map insert (only when `alloc_sites=1` or `json_path` is
//! set).

use crate::engine::goroutine::Goroutine;
use crate::lock::SpinLock;
use crate::rt::engine;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

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
    if !ENABLED.load(Ordering::Relaxed) || g == 0 || g & 7 != 0 {
        return;
    }
    let off = match OFFSET.load(Ordering::Acquire) {
        DISABLED => return,
        UNKNOWN => {
            // SAFETY: g is the current runtime.g (caller's contract).
            unsafe { search(g) };
            match OFFSET.load(Ordering::Acquire) {
                UNKNOWN | DISABLED => return,
                off => off,
            }
        }
        off => off,
    };
    // SAFETY: off was validated inside runtime.g.
    let ctx = unsafe { word(g + off) };
    if ctx == 0 {
        return;
    }
    // SAFETY: a validated racectx is a live context of this engine, used by this thread
    // (Go's mallocgc runs on the goroutine that owns it).
    let gr = unsafe { &*(ctx as *const Goroutine) };
    // SAFETY: g and bp come from the trampoline (caller's contract).
    let leaf = unsafe { leaf_pc(g, bp, e.shadow_top(gr)) };
    e.record_alloc(gr, p, size, leaf);
}

/// `__tsan_free`: forget allocation sites in the freed block.
pub fn free(p: usize, size: usize) {
    let e = engine();
    e.free(p, size);
    if ENABLED.load(Ordering::Relaxed) {
        e.forget_allocs(p, size);
    }
}
