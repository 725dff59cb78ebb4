//! A concurrent interner: equal keys get one stable `u32` id; lookups take no lock.
//!
//! Keys live in a [`ChunkedVec`] (index = id). An open-addressing table, at most half
//! full, finds a key's id by linear probing from its hash. Each slot is one `u64` word,
//! `tag << 32 | id`, where the tag is the high 32 bits of the key's 64-bit hash. The
//! tag is also where the probe starts (its low bits, masked by the capacity), so:
//!
//! - a probe compares tags first and reads the key (a chunk lookup and the element, one
//!   or two cache misses in a table of MBs) only when the tag matches. Entries with the
//!   same start slot agree in the tag's low `log2(capacity)` bits, so a mismatching key
//!   passes the tag test with probability about `capacity / 2^32`;
//! - growth re-places every entry from its slot word alone, reading no key and
//!   computing no hash.
//!
//! Readers probe the current table with plain atomic loads; inserts (and growth) are
//! serialised by one lock and re-probe under it, so a key is never interned twice. A
//! slot is written only after its key is pushed, so a reader that sees the id sees the
//! key. Growth publishes a new table of twice the capacity; a reader still on the old
//! one may miss a recent key and then finds it under the lock. Old tables stay
//! allocated (mapped) until the interner is dropped, because a reader may still be
//! probing them, but growth gives the whole pages of a replaced table of 64 KiB or more
//! back to the kernel: they read as zero, empty slots, so a late reader there misses
//! and, again, finds its key under the lock.
//!
//! Memory: a table of capacity `c` holds between `c/4` and `c/2` keys (it doubles when a
//! push would make it more than half full), so slots cost 16–32 bytes per interned key,
//! plus the key itself. Of the replaced tables only the small ones (56 KiB in all) and
//! any partial pages at their ends stay resident. (Before slots carried tags they were
//! 8–16 bytes per key, and replaced tables stayed resident: another 8–16.)
//!
//! Invariants: id 0 is reserved (pushed at creation, never in a table), so an empty slot
//! is 0 whatever the tag; ids fit the low 32 bits (the key array caps them at 2^28);
//! the capacity is a power of two no larger than 2^32, since the start slot comes from
//! the 32 stored tag bits (2^28 keys need at most 2^30 slots); a slot of the current
//! table never changes once written, and a replaced table's slots only ever become 0.

use super::chunked::ChunkedVec;
use crate::lock::SpinLock;
use crate::sys;
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

pub trait Key: Copy + Default + PartialEq {
    fn hash(&self) -> u64;
}

/// The high half of a slot word: the tag.
const TAG: u64 = 0xffff_ffff_0000_0000;

/// The tag of a key with hash `hash`: its high 32 bits, in a slot word's high half.
#[inline]
fn tag(hash: u64) -> u64 {
    hash & TAG
}

/// The start slot of a slot word (or a tag) in a table of mask `mask`.
#[inline]
fn start(word: u64, mask: usize) -> usize {
    (word >> 32) as usize & mask
}

struct Table {
    slots: Box<[AtomicU64]>,
}

impl Table {
    fn new(capacity: usize) -> Box<Table> {
        debug_assert!(capacity.is_power_of_two() && capacity as u64 <= 1 << 32);
        let mut slots = Vec::with_capacity(capacity);
        slots.resize_with(capacity, || AtomicU64::new(0));
        Box::new(Table {
            slots: slots.into_boxed_slice(),
        })
    }

    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    /// Returns the whole pages of a replaced table's slots to the kernel; they read as
    /// empty afterwards. Tables under 64 KiB are left alone: not worth a system call.
    fn release(&self) {
        const PAGE: usize = 4096;
        let bytes = core::mem::size_of_val(&*self.slots);
        if bytes < 16 * PAGE {
            return;
        }
        let start = self.slots.as_ptr() as usize;
        let (first, end) = (start.next_multiple_of(PAGE), (start + bytes) & !(PAGE - 1));
        // SAFETY: `[first, end)` holds only this table's slots, private anonymous memory
        // owned by the interner (a large block of the runtime's heap is its own mapping).
        // The table stays mapped until drop; a reader still probing it loads 0, an empty
        // slot, which is a valid `AtomicU64` and sends it to the lock.
        unsafe { sys::madvise_dontneed(first as *mut u8, end - first) };
    }

    /// Stores `word` in the first empty slot from its start (callers hold the insert
    /// lock, and the table is at most half full).
    fn place(&self, word: u64) {
        let mask = self.mask();
        let mut i = start(word, mask);
        while self.slots[i].load(Ordering::Relaxed) != 0 {
            i = (i + 1) & mask;
        }
        self.slots[i].store(word, Ordering::Release);
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

    /// The id of `key` (whose tag is `tag`) in `table`, if there.
    #[inline]
    fn find(&self, table: &Table, key: &K, tag: u64) -> Option<u32> {
        let mask = table.mask();
        let mut i = start(tag, mask);
        loop {
            let word = table.slots[i].load(Ordering::Acquire);
            if word == 0 {
                return None;
            }
            if word & TAG == tag && self.keys.get(word as u32 as usize) == Some(key) {
                return Some(word as u32);
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
        let tag = tag(key.hash());
        if let Some(id) = self.find(self.current(), &key, tag) {
            return Some(id);
        }
        let mut retired = self.insert.lock();
        if let Some(id) = self.find(self.current(), &key, tag) {
            return Some(id);
        }
        let id = self.keys.push(key)? as u32;
        let mut table = self.current();
        if self.keys.len() * 2 > table.slots.len() {
            // Re-place from the slot words: no key is read, no hash recomputed.
            let bigger = Table::new(table.slots.len() * 2);
            for slot in table.slots.iter() {
                let word = slot.load(Ordering::Relaxed);
                if word != 0 {
                    bigger.place(word);
                }
            }
            let old = self.table.swap(Box::into_raw(bigger), Ordering::AcqRel);
            // SAFETY: `old` stays allocated until drop (it goes into `retired`).
            unsafe { &*old }.release();
            retired.push(old);
            table = self.current();
        }
        table.place(tag | id as u64);
        Some(id)
    }
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

    /// A key whose hash is chosen by the test.
    #[derive(Clone, Copy, Default, PartialEq, Debug)]
    struct H {
        hash: u64,
        value: u32,
    }
    impl Key for H {
        fn hash(&self) -> u64 {
            self.hash
        }
    }

    fn retired<K: Key>(t: &Interner<K>) -> usize {
        t.insert.lock().len()
    }

    /// Interns `keys`, checks ids are distinct and nonzero, and that every key finds its
    /// id again and `get` gives it back.
    fn intern_and_check(keys: &[H]) {
        let t = Interner::<H>::new();
        let ids: Vec<u32> = keys.iter().map(|&k| t.intern(k).unwrap()).collect();
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), keys.len());
        assert!(ids.iter().all(|&id| id != 0));
        for (k, &id) in keys.iter().zip(&ids) {
            assert_eq!(t.intern(*k), Some(id));
            assert_eq!(t.get(id), Some(k));
        }
        assert_eq!(t.len(), keys.len() + 1);
    }

    #[test]
    fn equal_tags_differing_keys_get_their_own_ids() {
        // One full hash for all: same tag, same start slot, growth moves them together.
        let same: Vec<H> = (1..=2500)
            .map(|v| H {
                hash: 0x1234_5678_9abc_def0,
                value: v,
            })
            .collect();
        intern_and_check(&same);
        // Same tag, differing low hash bits (which the table ignores).
        let low: Vec<H> = (1..=2500)
            .map(|v| H {
                hash: 0xdead_beef << 32 | v as u64,
                value: v,
            })
            .collect();
        intern_and_check(&low);
        // A tag of 0 and a key equal to the reserved id 0's default apart from its value.
        let zero: Vec<H> = (0..100).map(|v| H { hash: 0, value: v }).collect();
        intern_and_check(&zero);
    }

    #[test]
    fn distinct_tags_sharing_a_start_slot() {
        // Tags agree in their low 20 bits, so up to 2^20 slots they start at one slot and
        // only the tag (or the key) tells them apart; mixed with keys that share tags.
        let keys: Vec<H> = (0..3000u64)
            .map(|i| H {
                hash: ((i % 1000) << 20 | 0x5a5a5) << 32,
                value: i as u32,
            })
            .collect();
        intern_and_check(&keys);
    }

    #[test]
    fn growth_keeps_ids_across_doublings() {
        let t = Interner::<K>::new();
        let mut ids = Vec::new();
        for round in 0..6u32 {
            let from = ids.len() as u64;
            let to = (INITIAL as u64) << round;
            ids.extend((from..to).map(|i| t.intern(K(i, 3)).unwrap()));
            for (i, &id) in ids.iter().enumerate() {
                assert_eq!(t.intern(K(i as u64, 3)), Some(id));
                assert_eq!(t.get(id), Some(&K(i as u64, 3)));
            }
        }
        // 32768 keys need 65536+ slots: six doublings from 1024.
        assert!(retired(&t) >= 6, "{} doublings", retired(&t));
        assert_eq!(ids, (1..=ids.len() as u32).collect::<Vec<_>>());
    }

    #[test]
    fn replaced_tables_read_as_empty_and_never_mislead() {
        let t = Interner::<K>::new();
        let ids: Vec<u32> = (0..40_000u64).map(|i| t.intern(K(i, 5)).unwrap()).collect();
        let old: Vec<*mut Table> = t.insert.lock().clone();
        let mut released = 0;
        for &table in &old {
            // SAFETY: replaced tables stay allocated until the interner is dropped.
            let table = unsafe { &*table };
            // A late reader on a replaced table finds a key's id or nothing (then takes
            // the lock); never a wrong id, and the probe ends.
            for (i, &id) in ids.iter().enumerate() {
                let key = K(i as u64, 5);
                let found = t.find(table, &key, tag(key.hash()));
                assert!(found.is_none() || found == Some(id));
            }
            if table.slots.len() * 8 >= 16 * 4096 {
                released += 1;
                let nonzero = table
                    .slots
                    .iter()
                    .filter(|s| s.load(Ordering::Relaxed) != 0);
                // At most the partial pages at either end keep their words.
                assert!(nonzero.count() <= 2 * 512);
            }
        }
        assert!(released >= 2, "{released} tables released");
        for (i, &id) in ids.iter().enumerate() {
            assert_eq!(t.intern(K(i as u64, 5)), Some(id));
        }
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

    #[test]
    fn concurrent_interning_with_colliding_tags_never_duplicates() {
        // Different orders, few tags: threads race on the same keys through growth.
        let t = std::sync::Arc::new(Interner::<H>::new());
        let key = |i: u32| H {
            hash: ((i % 64) as u64) << 36,
            value: i,
        };
        // Multipliers coprime to 3000, so each order is a permutation.
        let threads: Vec<_> = [1u32, 7, 11, 13]
            .into_iter()
            .map(|m| {
                let t = t.clone();
                std::thread::spawn(move || {
                    let order: Vec<u32> = (0..3000).map(|i| (i * m + m * 7) % 3000).collect();
                    let mut ids = std::vec![0; 3000];
                    for i in order {
                        ids[i as usize] = t.intern(key(i)).unwrap();
                    }
                    ids
                })
            })
            .collect();
        let results: Vec<Vec<u32>> = threads.into_iter().map(|h| h.join().unwrap()).collect();
        assert!(results.windows(2).all(|w| w[0] == w[1]));
        assert_eq!(t.len(), 3001);
        for (i, &id) in results[0].iter().enumerate() {
            assert_eq!(t.get(id), Some(&key(i as u32)));
        }
    }

    /// Timing, not a check: `cargo test --release -p gorace-runtime --lib -- --ignored
    /// --nocapture interner_timing`. Interns `count` distinct stack-node-like keys, then
    /// looks them all up again in a scattered order; prints the best of 5 rounds, for a
    /// table just before it doubles (2^19 - 2 keys in 2^20 slots, half full) and for 1M
    /// keys (2^22 slots, a quarter full).
    #[test]
    #[ignore]
    fn interner_timing() {
        #[derive(Clone, Copy, Default, PartialEq)]
        struct N {
            parent: u32,
            pc: usize,
        }
        impl Key for N {
            fn hash(&self) -> u64 {
                mix(self.pc as u64 ^ (self.parent as u64).rotate_left(47))
            }
        }
        let key = |i: u32| N {
            parent: i >> 3,
            pc: 0x40_0000 + (i as usize & 7) * 0x10,
        };
        for count in [(1u32 << 19) - 2, 1 << 20] {
            let (mut best_insert, mut best_lookup) = (f64::MAX, f64::MAX);
            for _ in 0..5 {
                let t = Interner::<N>::new();
                let start = std::time::Instant::now();
                let mut sum = 0u64;
                for i in 0..count {
                    sum += t.intern(key(i)).unwrap() as u64;
                }
                let insert = start.elapsed().as_nanos() as f64 / count as f64;
                let start = std::time::Instant::now();
                // Multiples of an odd number mod 2^20, kept below `count`: scattered.
                for j in (0..1u32 << 20).map(|i| i.wrapping_mul(0x9e37_79b9) & 0xf_ffff) {
                    if j < count {
                        sum -= t.intern(key(j)).unwrap() as u64;
                    }
                }
                let lookup = start.elapsed().as_nanos() as f64 / count as f64;
                assert_eq!(std::hint::black_box(sum), 0);
                best_insert = best_insert.min(insert);
                best_lookup = best_lookup.min(lookup);
            }
            println!(
                "interner_timing: {count} keys: {best_insert:.1} ns/insert, {best_lookup:.1} ns/lookup"
            );
        }
    }
}
