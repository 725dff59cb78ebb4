//! The `__tsan_*` entry points that Go's `runtime/race` imports (go1.27 linux/amd64).
//!
//! Each function translates the C ABI into one engine call; no logic lives here.
//! Signatures follow `go-race-abi.md` §1.4 and LLVM's `tsan_go.cpp`. A context (`ctx`)
//! is the `Goroutine` the engine created in `__tsan_init` or `__tsan_go_start`; a null
//! context (Go zeroes `g0.racectx` once the main goroutine runs) makes a call a no-op.
//!
//! With the `floor` feature every entry point only performs the atomics: the cost of
//! Go's instrumentation calls alone, for the benchmark.
#![allow(clippy::missing_safety_doc)]

use crate::atomics::{self, AtomicOp};
use crate::engine::goroutine::Goroutine;
use crate::engine::{AtomicSync, Kind};
use crate::rt::{self, engine};
use core::ffi::c_void;

type Ctx = *mut c_void;

const FLOOR: bool = cfg!(feature = "floor");

/// The goroutine behind `ctx`, if any (and if detection is on).
#[inline(always)]
fn goroutine<'a>(ctx: Ctx) -> Option<&'a Goroutine> {
    if FLOOR {
        return None;
    }
    // SAFETY: every non-null ctx Go passes is one the engine handed out and has not
    // been ended (Go drops a ctx at __tsan_go_end).
    unsafe { (ctx as *const Goroutine).as_ref() }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn __tsan_init(
    ctx_out: *mut Ctx,
    proc_out: *mut Ctx,
    cb: Option<rt::Callback>,
) {
    let e = rt::init(cb);
    let root = if FLOOR {
        core::ptr::null()
    } else {
        e.new_root()
    };
    // SAFETY: Go passes valid out-pointers (race.go raceinit).
    unsafe {
        *ctx_out = root as Ctx;
        // gorace keeps no per-P state; Go only needs a non-null value.
        *proc_out = 1 as Ctx;
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn __tsan_fini() {
    rt::fini()
}

#[unsafe(no_mangle)]
pub extern "C" fn __tsan_map_shadow(addr: usize, size: usize) {
    if FLOOR {
        return;
    }
    rt::note_map_shadow(addr, size);
    if !engine().map_shadow(addr, size) {
        rt::fatal(b"cannot map shadow memory", addr, size);
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn __tsan_proc_create(proc_out: *mut Ctx) {
    // SAFETY: Go passes a valid out-pointer.
    unsafe { *proc_out = 1 as Ctx };
}

#[unsafe(no_mangle)]
pub extern "C" fn __tsan_proc_destroy(_proc: Ctx) {}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn __tsan_report_count(n: *mut u64) {
    // SAFETY: Go passes a valid out-pointer.
    unsafe { *n = engine().report_count() };
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn __tsan_go_start(parent: Ctx, ctx_out: *mut Ctx, pc: usize) {
    let child = if FLOOR {
        core::ptr::null()
    } else {
        engine().go_start(goroutine(parent), pc)
    };
    // SAFETY: Go passes a valid out-pointer.
    unsafe { *ctx_out = child as Ctx };
}

#[unsafe(no_mangle)]
pub extern "C" fn __tsan_go_end(ctx: Ctx) {
    if let Some(g) = goroutine(ctx) {
        // SAFETY: Go never uses a context after ending it.
        unsafe { engine().go_end(g) };
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn __tsan_finalizer_goroutine(ctx: Ctx) {
    if let Some(g) = goroutine(ctx) {
        engine().acquire_global(g);
    }
}

/// `__tsan_malloc(ctx, pc, p, sz)`: Go always passes ctx = pc = 0, so this trampoline
/// replaces them with R14 (the current `*runtime.g`, which Go's `racecall<>` keeps in
/// R14 across the C call) and RBP (Go's frame pointer), and jumps to `malloc_with_g`;
/// `alloc_site` works out the allocating goroutine and function from them.
#[cfg(target_arch = "x86_64")]
#[unsafe(naked)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __tsan_malloc(_ctx: Ctx, _pc: usize, _p: usize, _sz: usize) {
    core::arch::naked_asm!(
        "mov rdi, r14",
        "mov rsi, rbp",
        "jmp {imp}",
        imp = sym malloc_with_g,
    )
}

/// The body of `__tsan_malloc`, with `g` = R14 and `bp` = RBP at Go's call.
///
/// # Safety
/// Only called by the `__tsan_malloc` trampoline, from Go's racecall.
#[cfg(target_arch = "x86_64")]
unsafe extern "C" fn malloc_with_g(g: usize, bp: usize, p: usize, sz: usize) {
    if !FLOOR {
        // SAFETY: g and bp are R14 and RBP at Go's racecall (trampoline above).
        unsafe { crate::alloc_site::malloc(g, bp, p, sz) };
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn __tsan_free(p: usize, sz: usize) {
    if !FLOOR {
        crate::alloc_site::free(p, sz);
    }
}

macro_rules! sync_entry {
    ($name:ident, $method:ident) => {
        #[unsafe(no_mangle)]
        pub extern "C" fn $name(ctx: Ctx, addr: usize) {
            if let Some(g) = goroutine(ctx) {
                engine().$method(g, addr);
            }
        }
    };
}

sync_entry!(__tsan_acquire, acquire);
sync_entry!(__tsan_release, release);
sync_entry!(__tsan_release_merge, release_merge);
sync_entry!(__tsan_release_acquire, release_acquire);

#[unsafe(no_mangle)]
pub extern "C" fn __tsan_go_ignore_sync_begin(ctx: Ctx) {
    if let Some(g) = goroutine(ctx) {
        engine().ignore_sync_begin(g);
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn __tsan_go_ignore_sync_end(ctx: Ctx) {
    if let Some(g) = goroutine(ctx) {
        engine().ignore_sync_end(g);
    }
}

/// # Safety
/// `addr` lies in memory announced through [`__tsan_map_shadow`]: Go's `racecalladdr`
/// calls this only for such addresses (see `Engine::access_announced`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __tsan_read(ctx: Ctx, addr: usize, pc: usize) {
    if let Some(g) = goroutine(ctx) {
        // SAFETY: the caller's contract, which Go's `racecalladdr` keeps.
        unsafe { engine().access_announced(g, addr, pc, Kind::READ) };
    }
}

/// # Safety
/// `addr` lies in memory announced through [`__tsan_map_shadow`]: Go's `racecalladdr`
/// calls this only for such addresses (see `Engine::access_announced`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __tsan_write(ctx: Ctx, addr: usize, pc: usize) {
    if let Some(g) = goroutine(ctx) {
        // SAFETY: the caller's contract, which Go's `racecalladdr` keeps.
        unsafe { engine().access_announced(g, addr, pc, Kind::WRITE) };
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn __tsan_read_pc(ctx: Ctx, addr: usize, callpc: usize, pc: usize) {
    if let Some(g) = goroutine(ctx) {
        engine().access_with_caller(g, addr, callpc, pc, Kind::READ);
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn __tsan_write_pc(ctx: Ctx, addr: usize, callpc: usize, pc: usize) {
    if let Some(g) = goroutine(ctx) {
        engine().access_with_caller(g, addr, callpc, pc, Kind::WRITE);
    }
}

/// # Safety
/// `addr` lies in memory announced through [`__tsan_map_shadow`], and the range is one
/// object (small ranges are not checked further): Go's `racecalladdr` admits only such
/// starts, and instrumented ranges never leave their object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __tsan_read_range(ctx: Ctx, addr: usize, size: usize, pc: usize) {
    if let Some(g) = goroutine(ctx) {
        // SAFETY: the caller's contract, which Go's `racecalladdr` keeps.
        unsafe { engine().access_range_announced(g, addr, size, pc, Kind::READ) };
    }
}

/// # Safety
/// `addr` lies in memory announced through [`__tsan_map_shadow`], and the range is one
/// object (small ranges are not checked further): Go's `racecalladdr` admits only such
/// starts, and instrumented ranges never leave their object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __tsan_write_range(ctx: Ctx, addr: usize, size: usize, pc: usize) {
    if let Some(g) = goroutine(ctx) {
        // SAFETY: the caller's contract, which Go's `racecalladdr` keeps.
        unsafe { engine().access_range_announced(g, addr, size, pc, Kind::WRITE) };
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn __tsan_func_enter(ctx: Ctx, pc: usize) {
    if let Some(g) = goroutine(ctx) {
        engine().func_enter(g, pc);
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn __tsan_func_exit(ctx: Ctx) {
    if let Some(g) = goroutine(ctx) {
        engine().func_exit(g);
    }
}

/// Performs one atomic through the engine (or raw, without a context or in the floor).
///
/// # Safety
/// `args` must be the Go ABI0 frame of the matching `sync/atomic` function.
#[inline(always)]
unsafe fn atomic(ctx: Ctx, callerpc: usize, pc: usize, args: *mut u8, op: AtomicOp, size: usize) {
    // SAFETY: forwarded from the caller's contract.
    let perform = || unsafe {
        if size == 4 {
            atomics::perform32(op, args).wrote
        } else {
            atomics::perform64(op, args).wrote
        }
    };
    let Some(g) = goroutine(ctx) else {
        perform();
        return;
    };
    // SAFETY: the first word of the frame is the address operand.
    let addr = unsafe { *(args as *const usize) };
    let (kind, sync) = match op {
        AtomicOp::Load => (Kind::ATOMIC_READ, AtomicSync::Acquire),
        AtomicOp::Store => (Kind::ATOMIC_WRITE, AtomicSync::Release),
        _ => (Kind::ATOMIC_WRITE, AtomicSync::AcquireRelease),
    };
    engine().atomic(g, addr, size, callerpc, pc, kind, sync, perform);
}

macro_rules! atomic_entry {
    ($name:ident, $size:expr, $op:expr) => {
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name(ctx: Ctx, callerpc: usize, pc: usize, args: *mut u8) {
            // SAFETY: Go passes the ABI0 argument frame of the matching sync/atomic
            // function (race_amd64.s racecallatomic).
            unsafe { atomic(ctx, callerpc, pc, args, $op, $size) };
        }
    };
}

atomic_entry!(__tsan_go_atomic32_load, 4, AtomicOp::Load);
atomic_entry!(__tsan_go_atomic64_load, 8, AtomicOp::Load);
atomic_entry!(__tsan_go_atomic32_store, 4, AtomicOp::Store);
atomic_entry!(__tsan_go_atomic64_store, 8, AtomicOp::Store);
atomic_entry!(__tsan_go_atomic32_exchange, 4, AtomicOp::Exchange);
atomic_entry!(__tsan_go_atomic64_exchange, 8, AtomicOp::Exchange);
atomic_entry!(__tsan_go_atomic32_fetch_add, 4, AtomicOp::FetchAdd);
atomic_entry!(__tsan_go_atomic64_fetch_add, 8, AtomicOp::FetchAdd);
atomic_entry!(__tsan_go_atomic32_fetch_and, 4, AtomicOp::FetchAnd);
atomic_entry!(__tsan_go_atomic64_fetch_and, 8, AtomicOp::FetchAnd);
atomic_entry!(__tsan_go_atomic32_fetch_or, 4, AtomicOp::FetchOr);
atomic_entry!(__tsan_go_atomic64_fetch_or, 8, AtomicOp::FetchOr);
atomic_entry!(
    __tsan_go_atomic32_compare_exchange,
    4,
    AtomicOp::CompareExchange
);
atomic_entry!(
    __tsan_go_atomic64_compare_exchange,
    8,
    AtomicOp::CompareExchange
);
