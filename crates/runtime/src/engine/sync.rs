//! Synchronisation objects: the vector clock released at each sync address.
//!
//! Go identifies a sync object by an address (a mutex, `&c.buf`, a channel slot, a
//! WaitGroup...). The table maps address → clock in 64 shards, each behind its own spin
//! lock, so unrelated objects never contend on one lock. The shadow cell of an address
//! with a clock carries a marker bit, so freeing or reallocating memory finds and drops
//! exactly the clocks inside the range without scanning the table.
//!
//! Each shard remembers where its last looked-up clock lives: a program that syncs on
//! one object again and again (a mutex in a loop, a channel in a ping-pong) finds it
//! without hashing. Invariant: the remembered pointer is the map's value for the
//! remembered address; every change of the map goes through [`Shard`]'s methods, which
//! remember the value they just found or inserted, or forget it when removing.

use super::clock::VClock;
use crate::lock::{SpinGuard, SpinLock};
use hashbrown::HashMap;

const SHARDS: usize = 64;

pub struct Shard {
    map: HashMap<usize, VClock>,
    /// The last address looked up (0: none) and its clock in `map`.
    last_addr: usize,
    last: *mut VClock,
}

// SAFETY: `last` points into `map`, which the shard owns; the shard is only used under
// its lock.
unsafe impl Send for Shard {}

impl Shard {
    fn new() -> Self {
        Shard {
            map: HashMap::new(),
            last_addr: 0,
            last: core::ptr::null_mut(),
        }
    }

    /// The clock at `addr`, if something was released there.
    #[inline]
    pub fn get(&mut self, addr: usize) -> Option<&mut VClock> {
        if addr == self.last_addr && addr != 0 {
            // SAFETY: the invariant (module doc): `last` is `map[addr]`, and the
            // returned borrow of `self` keeps the map unchanged while it lives.
            return Some(unsafe { &mut *self.last });
        }
        let s: *mut VClock = self.map.get_mut(&addr)?;
        (self.last_addr, self.last) = (addr, s);
        // SAFETY: just found in the map, which the borrow of `self` keeps unchanged.
        Some(unsafe { &mut *s })
    }

    /// The clock at `addr`, empty if nothing was released there yet.
    #[inline]
    pub fn get_or_default(&mut self, addr: usize) -> &mut VClock {
        if addr == self.last_addr && addr != 0 {
            // SAFETY: as in `get`.
            return unsafe { &mut *self.last };
        }
        // An insertion may move every value: only the one found now is remembered.
        let s: *mut VClock = self.map.entry(addr).or_default();
        (self.last_addr, self.last) = (addr, s);
        // SAFETY: as above.
        unsafe { &mut *s }
    }

    pub fn remove(&mut self, addr: usize) {
        if addr == self.last_addr {
            self.last_addr = 0;
        }
        self.map.remove(&addr);
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

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
            shards: core::array::from_fn(|_| Padded(SpinLock::new(Shard::new()))),
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
            self.shard(a).remove(a);
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
