//! Synchronisation objects: the vector clock released at each sync address.
//!
//! Go identifies a sync object by an address (a mutex, `&c.buf`, a channel slot, a
//! WaitGroup...). The table maps address → clock in 64 shards, each behind its own spin
//! lock, so unrelated objects never contend on one lock. The shadow cell of an address
//! with a clock carries a marker bit, so freeing or reallocating memory finds and drops
//! exactly the clocks inside the range without scanning the table.

use super::clock::VClock;
use crate::lock::{SpinGuard, SpinLock};
use hashbrown::HashMap;

const SHARDS: usize = 64;

pub type Shard = HashMap<usize, VClock>;

pub struct SyncTable {
    shards: [Padded<SpinLock<Shard>>; SHARDS],
}

/// One shard per cache line: neighbouring shards' locks would otherwise share a line,
/// and threads using unrelated objects would still pass it back and forth.
#[repr(align(64))]
struct Padded<T>(T);

impl SyncTable {
    pub fn new() -> Self {
        SyncTable {
            shards: core::array::from_fn(|_| Padded(SpinLock::new(HashMap::new()))),
        }
    }

    #[inline]
    pub fn shard(&self, addr: usize) -> SpinGuard<'_, Shard> {
        // Fibonacci hashing of the address, ignoring the low bits that alignment fixes.
        let h = (addr >> 3).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (usize::BITS - 6);
        self.shards[h % SHARDS].0.lock()
    }

    /// Drops the clocks at `addr..addr+8`.
    pub fn remove_cell(&self, cell: usize) {
        for a in cell..cell + 8 {
            self.shard(a).remove(&a);
        }
    }

    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.0.lock().len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for SyncTable {
    fn default() -> Self {
        Self::new()
    }
}
