//! An append-only array whose elements never move, readable without locks.
//!
//! Elements live in 4096-entry chunks reached through a fixed top-level table, so a
//! reference handed out stays valid while the array grows. Appends are serialised by
//! the owner (a lock around `push`); readers may read any index below `len()`.

use alloc::boxed::Box;
use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

const CHUNK_BITS: usize = 12;
const CHUNK: usize = 1 << CHUNK_BITS;
const TOP: usize = 1 << 16;

pub struct ChunkedVec<T> {
    top: Box<[AtomicPtr<T>]>,
    len: AtomicUsize,
}

impl<T: Default> ChunkedVec<T> {
    pub fn new() -> Self {
        let mut top = alloc::vec::Vec::with_capacity(TOP);
        top.resize_with(TOP, || AtomicPtr::new(core::ptr::null_mut()));
        ChunkedVec {
            top: top.into_boxed_slice(),
            len: AtomicUsize::new(0),
        }
    }

    pub fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends `value` and returns its index, or `None` when full (2^28 entries).
    /// Callers must serialise pushes.
    pub fn push(&self, value: T) -> Option<usize> {
        let i = self.len.load(Ordering::Relaxed);
        let (c, o) = (i >> CHUNK_BITS, i & (CHUNK - 1));
        if c >= TOP {
            return None;
        }
        let mut chunk = self.top[c].load(Ordering::Acquire);
        if chunk.is_null() {
            let mut v = alloc::vec::Vec::with_capacity(CHUNK);
            v.resize_with(CHUNK, T::default);
            chunk = Box::into_raw(v.into_boxed_slice()) as *mut T;
            self.top[c].store(chunk, Ordering::Release);
        }
        // SAFETY: `chunk` holds CHUNK initialised elements and `o < CHUNK`; index `i` is
        // not yet visible to readers (len is published after the write).
        unsafe { *chunk.add(o) = value };
        self.len.store(i + 1, Ordering::Release);
        Some(i)
    }

    /// The element at `i`, if pushed.
    pub fn get(&self, i: usize) -> Option<&T> {
        if i >= self.len() {
            return None;
        }
        let chunk = self.top[i >> CHUNK_BITS].load(Ordering::Acquire);
        // SAFETY: every index below `len` lies in an allocated chunk that is never freed
        // or moved while `self` lives.
        Some(unsafe { &*chunk.add(i & (CHUNK - 1)) })
    }
}

impl<T: Default> Default for ChunkedVec<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Drop for ChunkedVec<T> {
    fn drop(&mut self) {
        for slot in self.top.iter() {
            let p = slot.load(Ordering::Relaxed);
            if !p.is_null() {
                // SAFETY: each chunk was made by `Box::into_raw` of a CHUNK-element slice.
                drop(unsafe { Box::from_raw(core::ptr::slice_from_raw_parts_mut(p, CHUNK)) });
            }
        }
    }
}
