//! Vector clocks and epochs.
//!
//! A *clock index* identifies a goroutine for happens-before purposes (see
//! `goroutine.rs` for when an index may be reused). A vector clock maps every index to
//! the last time of that index known to have happened before; it is stored densely up to
//! the highest non-zero entry ("the last element is non-zero" is not enforced, trailing
//! zeros are harmless). Clock values are `u32`: a goroutine whose own entry would pass
//! [`MAX_TIME`] moves to a fresh index instead of wrapping (see `Engine::tick`), so no
//! value ever overflows and nothing is forgotten.
//!
//! An *epoch* `(index, time)` names one point in one goroutine's history; FastTrack's
//! insight is that an access is ordered before goroutine `g` exactly when
//! `epoch.time <= g.clock[epoch.index]`.

use alloc::vec::Vec;

pub type Time = u32;
pub type Index = u32;

/// The largest time an index may reach; at that point its goroutine changes index.
pub const MAX_TIME: Time = u32::MAX - 1;

/// `(index, time)` packed in a `u64`; zero means "no access" because times start at 1.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Epoch(pub u64);

impl Epoch {
    pub const NONE: Epoch = Epoch(0);

    #[inline]
    pub fn new(index: Index, time: Time) -> Self {
        Epoch(((index as u64) << 32) | time as u64)
    }
    #[inline]
    pub fn index(self) -> Index {
        (self.0 >> 32) as Index
    }
    #[inline]
    pub fn time(self) -> Time {
        self.0 as Time
    }
    #[inline]
    pub fn is_none(self) -> bool {
        self.0 == 0
    }
}

#[derive(Clone, Default, Debug, PartialEq, Eq)]
pub struct VClock {
    times: Vec<Time>,
}

impl VClock {
    pub const fn new() -> Self {
        VClock { times: Vec::new() }
    }

    #[inline]
    pub fn get(&self, index: Index) -> Time {
        self.times.get(index as usize).copied().unwrap_or(0)
    }

    pub fn set(&mut self, index: Index, time: Time) {
        let i = index as usize;
        if i >= self.times.len() {
            self.times.resize(i + 1, 0);
        }
        self.times[i] = time;
    }

    /// Whether `epoch` happened before (or is) a point this clock knows.
    #[inline]
    pub fn knows(&self, epoch: Epoch) -> bool {
        epoch.time() <= self.get(epoch.index())
    }

    /// `self ⊔= other`.
    pub fn join(&mut self, other: &VClock) {
        if other.times.len() > self.times.len() {
            self.times.resize(other.times.len(), 0);
        }
        for (mine, &theirs) in self.times.iter_mut().zip(other.times.iter()) {
            if theirs > *mine {
                *mine = theirs;
            }
        }
    }

    /// `self = other`, reusing the allocation.
    pub fn copy_from(&mut self, other: &VClock) {
        self.times.clear();
        self.times.extend_from_slice(&other.times);
    }

    /// Go's channel-slot rule (TSan `ReleaseStoreAcquire`): `sync` takes this clock,
    /// and this clock acquires what `sync` held before.
    pub fn release_store_acquire(&mut self, sync: &mut VClock) {
        let n = self.times.len().max(sync.times.len());
        self.times.resize(n, 0);
        sync.times.resize(n, 0);
        for (mine, theirs) in self.times.iter_mut().zip(sync.times.iter_mut()) {
            let old = *theirs;
            *theirs = *mine;
            if old > *mine {
                *mine = old;
            }
        }
    }

    pub fn len(&self) -> usize {
        self.times.len()
    }

    pub fn is_empty(&self) -> bool {
        self.times.iter().all(|&t| t == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_packs_index_and_time() {
        let e = Epoch::new(7, 42);
        assert_eq!((e.index(), e.time()), (7, 42));
        assert!(Epoch::NONE.is_none() && !e.is_none());
    }

    #[test]
    fn join_takes_pointwise_max_and_grows() {
        let mut a = VClock::new();
        a.set(0, 5);
        let mut b = VClock::new();
        b.set(0, 3);
        b.set(4, 9);
        a.join(&b);
        assert_eq!((a.get(0), a.get(4), a.get(9)), (5, 9, 0));
        assert!(a.knows(Epoch::new(4, 9)) && !a.knows(Epoch::new(4, 10)));
    }

    #[test]
    fn release_store_acquire_swaps_in_thread_clock() {
        let mut thr = VClock::new();
        thr.set(0, 5);
        thr.set(1, 1);
        let mut sync = VClock::new();
        sync.set(1, 7);
        sync.set(2, 3);
        thr.release_store_acquire(&mut sync);
        assert_eq!((sync.get(0), sync.get(1), sync.get(2)), (5, 1, 0));
        assert_eq!((thr.get(0), thr.get(1), thr.get(2)), (5, 7, 3));
    }
}
