//! A concurrent interner: equal keys get one stable `u32` id; lookups take no lock.
//!
//! Keys live in a [`ChunkedVec`] (index = id). An open-addressing table of ids, at most
//! half full, finds a key's id by probing from its hash. Readers probe the current
//! table with plain atomic loads; inserts (and growth) are serialised by one lock and
//! re-probe under it, so a key is never interned twice. An id is stored in a slot only
//! after its key is pushed, so a reader that sees the id sees the key. Growth publishes
//! a new table; a reader still on the old one may miss a recent key and then finds it
//! under the lock. Old tables stay allocated until the interner is dropped (their sizes
//! sum to less than the current one), because a reader may still be probing them.
//!
//! Invariants: id 0 is reserved (pushed at creation, never in a table), so an empty slot
//! is 0; the table's capacity is a power of two.

use super::chunked::ChunkedVec;
use crate::lock::SpinLock;
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicPtr, AtomicU32, Ordering};

pub trait Key: Copy + Default + PartialEq {
    fn hash(&self) -> u64;
}

struct Table {
    slots: Box<[AtomicU32]>,
}

impl Table {
    fn new(capacity: usize) -> Box<Table> {
        let mut slots = Vec::with_capacity(capacity);
        slots.resize_with(capacity, || AtomicU32::new(0));
        Box::new(Table {
            slots: slots.into_boxed_slice(),
        })
    }
    fn mask(&self) -> usize {
        self.slots.len() - 1
    }
}

pub struct Interner<K: Key> {
    keys: ChunkedVec<K>,
    table: AtomicPtr<Table>,
    /// Serialises inserts; holds the tables replaced by growth.
    insert: SpinLock<Vec<*mut Table>>,
}

// SAFETY: the raw table pointers are only created and freed under `insert` or in drop;
// tables are shared read-only through atomics.
unsafe impl<K: Key + Send> Send for Interner<K> {}
// SAFETY: as above.
unsafe impl<K: Key + Send + Sync> Sync for Interner<K> {}

const INITIAL: usize = 1024;

impl<K: Key> Interner<K> {
    pub fn new() -> Self {
        let keys = ChunkedVec::new();
        keys.push(K::default()); // id 0: reserved
        Interner {
            keys,
            table: AtomicPtr::new(Box::into_raw(Table::new(INITIAL))),
            insert: SpinLock::new(Vec::new()),
        }
    }

    /// The key of `id`.
    #[inline]
    pub fn get(&self, id: u32) -> Option<&K> {
        self.keys.get(id as usize)
    }

    /// Ids handed out so far, plus the reserved 0.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() <= 1
    }

    fn find(&self, table: &Table, key: &K, hash: u64) -> Option<u32> {
        let mask = table.mask();
        let mut i = hash as usize & mask;
        loop {
            let id = table.slots[i].load(Ordering::Acquire);
            if id == 0 {
                return None;
            }
            if self.keys.get(id as usize) == Some(key) {
                return Some(id);
            }
            i = (i + 1) & mask;
        }
    }

    fn current(&self) -> &Table {
        // SAFETY: the current table is live for the interner's lifetime (replaced tables
        // are kept until drop).
        unsafe { &*self.table.load(Ordering::Acquire) }
    }

    /// The id of `key`, interning it if new; `None` when the id space (2^28) is full.
    pub fn intern(&self, key: K) -> Option<u32> {
        let hash = key.hash();
        if let Some(id) = self.find(self.current(), &key, hash) {
            return Some(id);
        }
        let mut retired = self.insert.lock();
        if let Some(id) = self.find(self.current(), &key, hash) {
            return Some(id);
        }
        let id = self.keys.push(key)? as u32;
        let mut table = self.current();
        if self.keys.len() * 2 > table.slots.len() {
            let bigger = Table::new(table.slots.len() * 2);
            for old in 1..id {
                if let Some(k) = self.keys.get(old as usize) {
                    place(&bigger, k.hash(), old);
                }
            }
            let old = self.table.swap(Box::into_raw(bigger), Ordering::AcqRel);
            retired.push(old);
            table = self.current();
        }
        place(table, hash, id);
        Some(id)
    }
}

/// Stores `id` in the first empty slot from `hash` (callers hold the insert lock, and
/// the table is at most half full).
fn place(table: &Table, hash: u64, id: u32) {
    let mask = table.mask();
    let mut i = hash as usize & mask;
    while table.slots[i].load(Ordering::Relaxed) != 0 {
        i = (i + 1) & mask;
    }
    table.slots[i].store(id, Ordering::Release);
}

impl<K: Key> Default for Interner<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Key> Drop for Interner<K> {
    fn drop(&mut self) {
        let cur = *self.table.get_mut();
        for &t in self.insert.lock().iter().chain(core::iter::once(&cur)) {
            // SAFETY: every table was made by Box::into_raw and is referenced nowhere
            // else once the interner is being dropped.
            drop(unsafe { Box::from_raw(t) });
        }
    }
}

/// A 64-bit mix (splitmix64's finaliser) for building key hashes.
#[inline]
pub fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Copy, Default, PartialEq, Debug)]
    struct K(u64, u32);
    impl Key for K {
        fn hash(&self) -> u64 {
            mix(self.0 ^ (self.1 as u64) << 40)
        }
    }

    #[test]
    fn equal_keys_share_ids_across_growth() {
        let t = Interner::<K>::new();
        let ids: Vec<u32> = (0..10_000u64).map(|i| t.intern(K(i, 7)).unwrap()).collect();
        assert!(ids.iter().all(|&id| id != 0));
        for (i, &id) in ids.iter().enumerate() {
            assert_eq!(t.intern(K(i as u64, 7)), Some(id));
            assert_eq!(t.get(id), Some(&K(i as u64, 7)));
        }
        assert_eq!(t.len(), 10_001);
    }

    #[test]
    fn concurrent_interning_never_duplicates() {
        let t = std::sync::Arc::new(Interner::<K>::new());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let t = t.clone();
                std::thread::spawn(move || {
                    (0..5000u64)
                        .map(|i| t.intern(K(i, 1)).unwrap())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let results: Vec<Vec<u32>> = threads.into_iter().map(|h| h.join().unwrap()).collect();
        assert!(results.windows(2).all(|w| w[0] == w[1]));
        assert_eq!(t.len(), 5001);
    }
}
