//! gorace's race runtime: a `no_std` drop-in for ThreadSanitizer in Go's `-race` builds.
//!
//! Go's compiler instruments every load, store, function entry/exit and sync primitive;
//! those calls arrive here through the `__tsan_*` entry points in [`abi`], which only
//! translate arguments and call the [`engine`] (plain Rust, unit-tested without Go).
//! [`rt`] holds the one engine of the process and its Go-facing host (symbolisation
//! through Go's callback, report output per `GORACE`), [`flags`] parses `GORACE`.
//!
//! The crate is `no_std` with its own allocator and panic handler when built to abort on
//! panic (the object linked into Go programs); a build that unwinds is a host-side build
//! (unit tests, the fuzz targets in `fuzz/`) and uses `std`'s instead.
#![cfg_attr(not(any(test, panic = "unwind")), no_std)]
// The docs are for the runtime's maintainers (`cargo doc --document-private-items`):
// they link the private constants and helpers that state the invariants.
#![allow(rustdoc::private_intra_doc_links)]

extern crate alloc;

pub mod abi;
pub mod alloc_mmap;
pub mod alloc_site;
pub mod atomics;
pub mod cpu;
pub mod engine;
pub mod flags;
pub mod lock;
pub mod rt;
pub mod sys;

#[cfg(not(any(test, panic = "unwind")))]
#[global_allocator]
static ALLOCATOR: alloc_mmap::MmapAlloc = alloc_mmap::MmapAlloc::new();

/// The runtime heap by size class (`alloc_mmap::MmapAlloc::usage`); empty where it is
/// not the global allocator (unit tests).
pub fn heap_usage() -> [(usize, usize, usize); 16] {
    #[cfg(not(any(test, panic = "unwind")))]
    return ALLOCATOR.usage();
    #[cfg(any(test, panic = "unwind"))]
    return [(0, 0, 0); 16];
}

#[cfg(not(any(test, panic = "unwind")))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // A panic inside the runtime is a bug in gorace; there is no unwinder in a Go
    // process to catch it, so say so and stop rather than corrupt the program.
    sys::write_all(2, b"gorace: internal error (panic in the race runtime)\n");
    sys::exit(70)
}
