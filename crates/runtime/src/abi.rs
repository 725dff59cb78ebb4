//! The `__tsan_*` entry points that Go's `runtime/race` imports (go1.27 linux/amd64).
//!
//! Each function translates the C ABI into one engine call; no logic lives here.
//! Signatures follow `go-race-abi.md` §1.4 and LLVM's `tsan_go.cpp`.
#![allow(clippy::missing_safety_doc)]

use crate::atomics::{self, AtomicOp};
use core::ffi::c_void;

type Ctx = *mut c_void;

#[unsafe(no_mangle)]
pub unsafe extern "C" fn __tsan_init(ctx_out: *mut Ctx, proc_out: *mut Ctx, _cb: *const c_void) {
    // SAFETY: Go passes valid out-pointers (race.go raceinit).
    unsafe {
        *ctx_out = core::ptr::null_mut();
        *proc_out = 1 as Ctx;
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn __tsan_fini() {
    crate::sys::exit(0)
}

#[unsafe(no_mangle)]
pub extern "C" fn __tsan_map_shadow(_addr: usize, _size: usize) {}

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
    unsafe { *n = 0 };
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn __tsan_go_start(_parent: Ctx, ctx_out: *mut Ctx, _pc: usize) {
    // SAFETY: Go passes a valid out-pointer.
    unsafe { *ctx_out = core::ptr::null_mut() };
}

#[unsafe(no_mangle)]
pub extern "C" fn __tsan_go_end(_ctx: Ctx) {}

#[unsafe(no_mangle)]
pub extern "C" fn __tsan_finalizer_goroutine(_ctx: Ctx) {}

#[unsafe(no_mangle)]
pub extern "C" fn __tsan_malloc(_ctx: Ctx, _pc: usize, _p: usize, _sz: usize) {}

#[unsafe(no_mangle)]
pub extern "C" fn __tsan_free(_p: usize, _sz: usize) {}

#[unsafe(no_mangle)]
pub extern "C" fn __tsan_acquire(_ctx: Ctx, _addr: usize) {}

#[unsafe(no_mangle)]
pub extern "C" fn __tsan_release(_ctx: Ctx, _addr: usize) {}

#[unsafe(no_mangle)]
pub extern "C" fn __tsan_release_merge(_ctx: Ctx, _addr: usize) {}

#[unsafe(no_mangle)]
pub extern "C" fn __tsan_release_acquire(_ctx: Ctx, _addr: usize) {}

#[unsafe(no_mangle)]
pub extern "C" fn __tsan_go_ignore_sync_begin(_ctx: Ctx) {}

#[unsafe(no_mangle)]
pub extern "C" fn __tsan_go_ignore_sync_end(_ctx: Ctx) {}

#[unsafe(no_mangle)]
pub extern "C" fn __tsan_read(_ctx: Ctx, _addr: usize, _pc: usize) {}

#[unsafe(no_mangle)]
pub extern "C" fn __tsan_write(_ctx: Ctx, _addr: usize, _pc: usize) {}

#[unsafe(no_mangle)]
pub extern "C" fn __tsan_read_pc(_ctx: Ctx, _addr: usize, _callpc: usize, _pc: usize) {}

#[unsafe(no_mangle)]
pub extern "C" fn __tsan_write_pc(_ctx: Ctx, _addr: usize, _callpc: usize, _pc: usize) {}

#[unsafe(no_mangle)]
pub extern "C" fn __tsan_read_range(_ctx: Ctx, _addr: usize, _size: usize, _pc: usize) {}

#[unsafe(no_mangle)]
pub extern "C" fn __tsan_write_range(_ctx: Ctx, _addr: usize, _size: usize, _pc: usize) {}

#[unsafe(no_mangle)]
pub extern "C" fn __tsan_func_enter(_ctx: Ctx, _pc: usize) {}

#[unsafe(no_mangle)]
pub extern "C" fn __tsan_func_exit(_ctx: Ctx) {}

macro_rules! atomic_entry {
    ($name:ident, $perform:ident, $op:expr) => {
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name(_ctx: Ctx, _callerpc: usize, _pc: usize, args: *mut u8) {
            // SAFETY: Go passes the ABI0 argument frame of the matching sync/atomic
            // function (race_amd64.s racecallatomic).
            unsafe { atomics::$perform($op, args) };
        }
    };
}

atomic_entry!(__tsan_go_atomic32_load, perform32, AtomicOp::Load);
atomic_entry!(__tsan_go_atomic64_load, perform64, AtomicOp::Load);
atomic_entry!(__tsan_go_atomic32_store, perform32, AtomicOp::Store);
atomic_entry!(__tsan_go_atomic64_store, perform64, AtomicOp::Store);
atomic_entry!(__tsan_go_atomic32_exchange, perform32, AtomicOp::Exchange);
atomic_entry!(__tsan_go_atomic64_exchange, perform64, AtomicOp::Exchange);
atomic_entry!(__tsan_go_atomic32_fetch_add, perform32, AtomicOp::FetchAdd);
atomic_entry!(__tsan_go_atomic64_fetch_add, perform64, AtomicOp::FetchAdd);
atomic_entry!(__tsan_go_atomic32_fetch_and, perform32, AtomicOp::FetchAnd);
atomic_entry!(__tsan_go_atomic64_fetch_and, perform64, AtomicOp::FetchAnd);
atomic_entry!(__tsan_go_atomic32_fetch_or, perform32, AtomicOp::FetchOr);
atomic_entry!(__tsan_go_atomic64_fetch_or, perform64, AtomicOp::FetchOr);
atomic_entry!(
    __tsan_go_atomic32_compare_exchange,
    perform32,
    AtomicOp::CompareExchange
);
atomic_entry!(
    __tsan_go_atomic64_compare_exchange,
    perform64,
    AtomicOp::CompareExchange
);
