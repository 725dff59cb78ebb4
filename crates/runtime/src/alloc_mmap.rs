//! The runtime's heap: size classes carved from mmap'd chunks, large blocks mapped directly.
//!
//! Invariants: every block of class `c` is `CLASS_SIZES[c]` bytes and 16-byte aligned;
//! freed small blocks go onto their class's free list and are reused, never unmapped (the
//! runtime's metadata churns in place: clocks, goroutine states); blocks above the largest
//! class are whole mappings and are unmapped on free. No thread-local caches: the runtime
//! has no TLS, and allocation is off the access fast path.

use crate::lock::SpinLock;
use crate::sys;
use core::alloc::{GlobalAlloc, Layout};
use core::ptr::null_mut;
use core::sync::atomic::{AtomicUsize, Ordering};

const CLASS_SIZES: [usize; 16] = [
    16, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 2048, 4096, 8192, 16384,
];
const CHUNK: usize = 1 << 20;
const PAGE: usize = 4096;

struct Class {
    free: *mut u8,
    bump: *mut u8,
    bump_end: *mut u8,
    /// Blocks handed out and not yet returned, and chunks mapped (for `gorace_stats`).
    live: usize,
    chunks: usize,
}

// SAFETY: the raw pointers are only touched under the class's spin lock.
unsafe impl Send for Class {}

pub struct MmapAlloc {
    classes: [SpinLock<Class>; 16],
}

/// Bytes in blocks too large for a class (each its own mapping), for `gorace_stats`.
static LARGE_BYTES: AtomicUsize = AtomicUsize::new(0);

/// Bytes mapped for blocks too large for a size class.
pub fn large_bytes() -> usize {
    LARGE_BYTES.load(Ordering::Relaxed)
}

impl MmapAlloc {
    /// Per size class: `(block size, blocks in use, bytes mapped)`.
    pub fn usage(&self) -> [(usize, usize, usize); 16] {
        core::array::from_fn(|c| {
            let class = self.classes[c].lock();
            (CLASS_SIZES[c], class.live, class.chunks * CHUNK)
        })
    }

    pub const fn new() -> Self {
        #[allow(clippy::declare_interior_mutable_const)] // copied into the array, never shared
        const EMPTY: SpinLock<Class> = SpinLock::new(Class {
            free: null_mut(),
            bump: null_mut(),
            bump_end: null_mut(),
            live: 0,
            chunks: 0,
        });
        MmapAlloc {
            classes: [EMPTY; 16],
        }
    }
}

impl Default for MmapAlloc {
    fn default() -> Self {
        Self::new()
    }
}

fn class_of(layout: &Layout) -> Option<usize> {
    if layout.align() > 16 {
        return None;
    }
    CLASS_SIZES.iter().position(|&s| s >= layout.size())
}

// SAFETY: blocks are disjoint (bump allocation or exclusive free-list pop under a lock),
// 16-byte aligned, at least `layout.size()` bytes, and large blocks are page-aligned
// mappings, which satisfies any alignment up to a page.
unsafe impl GlobalAlloc for MmapAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some(c) = class_of(&layout) else {
            if layout.align() > PAGE {
                return null_mut();
            }
            let len = layout.size().div_ceil(PAGE) * PAGE;
            let Some(block) = sys::mmap_anon(0, len, sys::PROT_READ | sys::PROT_WRITE, 0) else {
                return null_mut();
            };
            LARGE_BYTES.fetch_add(len, Ordering::Relaxed);
            return block;
        };
        let size = CLASS_SIZES[c];
        let mut class = self.classes[c].lock();
        if !class.free.is_null() {
            class.live += 1;
            let block = class.free;
            // SAFETY: a free block's first word holds the next free block.
            class.free = unsafe { *(block as *mut *mut u8) };
            return block;
        }
        if (class.bump_end as usize) - (class.bump as usize) < size {
            let Some(chunk) = sys::mmap_anon(0, CHUNK, sys::PROT_READ | sys::PROT_WRITE, 0) else {
                return null_mut();
            };
            class.bump = chunk;
            // SAFETY: `chunk` is a CHUNK-byte mapping.
            class.bump_end = unsafe { chunk.add(CHUNK) };
            class.chunks += 1;
        }
        class.live += 1;
        let block = class.bump;
        // SAFETY: at least `size` bytes remain before `bump_end`.
        class.bump = unsafe { block.add(size) };
        block
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        match class_of(&layout) {
            Some(c) => {
                let mut class = self.classes[c].lock();
                class.live -= 1;
                // SAFETY: the block is ours, at least 16 bytes, and no longer used.
                unsafe { *(ptr as *mut *mut u8) = class.free };
                class.free = ptr;
            }
            None => {
                let len = layout.size().div_ceil(PAGE) * PAGE;
                LARGE_BYTES.fetch_sub(len, Ordering::Relaxed);
                // SAFETY: large blocks are whole mappings of `len` bytes.
                unsafe { sys::munmap(ptr, len) };
            }
        }
    }
}
