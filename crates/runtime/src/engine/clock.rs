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

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::ops::Deref;

pub type Time = u32;
pub type Index = u32;

/// The largest time an index may reach; at that point its goroutine changes index.
/// 25 bits: a shadow record stores the time in one word with its site and byte mask.
pub const MAX_TIME: Time = (1 << 25) - 2;

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

/// Times `(lo, hi]` of one index that a clock does *not* know although they are below
/// its entry for that index: left by a reused index whose previous owner's end the new
/// owner's creator had not synchronised with (see `goroutine`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hole {
    pub index: Index,
    pub lo: Time,
    pub hi: Time,
}

/// A clock's holes, sorted by `(index, lo)`; shared between clocks (copy-on-write):
/// a clock is copied on every release and joined on every acquire, and clocks of one
/// ancestry carry the same, sometimes long, list, so copies share it and joins of
/// clocks that share it skip the merge.
#[derive(Clone, Default, Debug)]
pub struct Holes(Option<Arc<Vec<Hole>>>);

impl Holes {
    fn make_mut(&mut self) -> &mut Vec<Hole> {
        Arc::make_mut(self.0.get_or_insert_with(Default::default))
    }
    fn set(&mut self, holes: Vec<Hole>) {
        self.0 = (!holes.is_empty()).then(|| Arc::new(holes));
    }
    fn shares(&self, other: &Holes) -> bool {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        }
    }
}

impl Deref for Holes {
    type Target = [Hole];
    fn deref(&self) -> &[Hole] {
        self.0.as_deref().map_or(&[], |v| v.as_slice())
    }
}

impl PartialEq for Holes {
    fn eq(&self, other: &Holes) -> bool {
        self.shares(other) || **self == **other
    }
}

impl Eq for Holes {}

/// What a goroutine (or a sync object) knows: for each index, every time up to
/// `times[index]` except those inside a hole of that index. Joins are unions of these
/// sets, so they are exact: nothing is ever assumed known that was not.
#[derive(Default, Debug, PartialEq, Eq)]
pub struct VClock {
    times: Vec<Time>,
    holes: Holes,
    /// The report number of a goroutine whose clock contains this one (it was copied from
    /// that goroutine's clock, which only grows), or [`NO_SOURCE`]: that goroutine's
    /// acquire of this clock changes nothing and is skipped.
    source: u32,
    /// With `source`: that goroutine's count of clock changes other than ticks
    /// (`ClockState::joins`) when this clock was copied from it.
    source_joins: u32,
}

pub const NO_SOURCE: u32 = u32::MAX;

impl Clone for VClock {
    fn clone(&self) -> Self {
        VClock {
            times: self.times.clone(),
            holes: self.holes.clone(),
            source: self.source,
            source_joins: self.source_joins,
        }
    }

    /// Into this clock's buffer (a recycled goroutine's, see `Goroutine::recycle`).
    fn clone_from(&mut self, other: &Self) {
        self.times.clone_from(&other.times);
        self.holes.clone_from(&other.holes);
        self.source = other.source;
        self.source_joins = other.source_joins;
    }
}

impl VClock {
    /// Bytes of buffer the clock's times hold (their capacity, not their length).
    pub fn buffer_bytes(&self) -> usize {
        self.times.capacity() * core::mem::size_of::<Time>()
    }

    pub const fn new() -> Self {
        VClock {
            times: Vec::new(),
            holes: Holes(None),
            source: NO_SOURCE,
            source_joins: 0,
        }
    }

    /// Whether goroutine `tid`'s clock is known to contain this one.
    #[inline]
    pub fn contained_in(&self, tid: u32) -> bool {
        self.source == tid && tid != NO_SOURCE
    }

    /// `self = other`, where `other` is goroutine `tid`'s own clock, of index `idx`,
    /// after `joins` changes other than ticks. When this clock is an unchanged copy of
    /// that clock at the same count, only the goroutine's own entry can differ (its
    /// ticks since): a mutex released again and again by one goroutine is one store.
    #[inline]
    pub fn copy_from_goroutine(&mut self, other: &VClock, tid: u32, joins: u32, idx: Index) {
        if self.contained_in(tid) && self.source_joins == joins {
            let i = idx as usize;
            self.times[i] = other.times[i];
            return;
        }
        self.copy_whole_from_goroutine(other, tid, joins);
    }

    /// [`VClock::copy_from_goroutine`]'s full copy (out of line: inlined, it made the
    /// common case above pay for its frame, MutexUncontended +5% instructions).
    #[inline(never)]
    fn copy_whole_from_goroutine(&mut self, other: &VClock, tid: u32, joins: u32) {
        self.copy_from(other);
        self.source = tid;
        self.source_joins = joins;
    }

    #[inline]
    pub fn get(&self, index: Index) -> Time {
        self.times.get(index as usize).copied().unwrap_or(0)
    }

    /// [`VClock::set`] of an entry the clock already has (a goroutine's own: its tick,
    /// which then needs no growth path).
    #[inline]
    pub fn set_existing(&mut self, index: Index, time: Time) {
        self.source = NO_SOURCE;
        self.times[index as usize] = time;
    }

    pub fn set(&mut self, index: Index, time: Time) {
        self.source = NO_SOURCE;
        let i = index as usize;
        if i >= self.times.len() {
            self.times.resize(i + 1, 0);
        }
        self.times[i] = time;
    }

    /// Records that times `(lo, hi]` of `index` are not known (`lo` must be this clock's
    /// entry for `index`, which is then raised past the hole by the caller).
    pub fn add_hole(&mut self, index: Index, lo: Time, hi: Time) {
        self.source = NO_SOURCE;
        if lo < hi {
            let at = self
                .holes
                .partition_point(|h| (h.index, h.lo) < (index, lo));
            self.holes.make_mut().insert(at, Hole { index, lo, hi });
        }
    }

    pub fn holes(&self) -> &[Hole] {
        &self.holes
    }

    /// Whether `epoch` happened before (or is) a point this clock knows.
    #[inline]
    pub fn knows(&self, epoch: Epoch) -> bool {
        epoch.time() <= self.get(epoch.index()) && (self.holes.is_empty() || !self.in_hole(epoch))
    }

    /// `self ⊔= other`: the union of what both know.
    pub fn join(&mut self, other: &VClock) {
        self.source = NO_SOURCE;
        match (self.holes.is_empty(), other.holes.is_empty()) {
            (true, true) => {}
            // unknown = (hole ∪ (mine, ∞)) ∩ (theirs, ∞): each hole keeps its part above
            // what the other side knows.
            (false, true) => {
                // Only holes the other side knows part of change.
                if self.holes.iter().any(|h| other.get(h.index) > h.lo) {
                    let holes = self.holes.make_mut();
                    holes.retain_mut(|h| {
                        h.lo = h.lo.max(other.get(h.index));
                        h.lo < h.hi
                    });
                    if holes.is_empty() {
                        self.holes = Holes(None);
                    }
                }
            }
            (true, false) => {
                if other.holes.iter().all(|h| self.get(h.index) <= h.lo) {
                    // Each hole of theirs stays whole: share their list.
                    self.holes = other.holes.clone();
                } else {
                    let mut holes = Vec::new();
                    for h in other.holes.iter() {
                        let mine = self.get(h.index);
                        if mine < h.hi {
                            holes.push(Hole {
                                index: h.index,
                                lo: h.lo.max(mine),
                                hi: h.hi,
                            });
                        }
                    }
                    self.holes.set(holes);
                }
            }
            (false, false) => self.join_holes_both(other),
        }
        self.join_times(other);
    }

    /// The general case, both sides with holes: per index, the unknown sets (holes plus
    /// everything above the top) are intersected by a merge of the sorted interval lists.
    /// A hole in both lists is in the result and meets nothing else (holes of one list
    /// are disjoint and lie below the entry), so the common prefix and suffix of the two
    /// lists (clocks of one ancestry share most holes) are copied and only the middle is
    /// merged.
    fn join_holes_both(&mut self, other: &VClock) {
        if self.holes == other.holes {
            return;
        }
        let mine = core::mem::take(&mut self.holes);
        let theirs = &other.holes[..];
        let prefix = mine.iter().zip(theirs).take_while(|(a, b)| a == b).count();
        let suffix = mine[prefix..]
            .iter()
            .rev()
            .zip(theirs[prefix..].iter().rev())
            .take_while(|(a, b)| a == b)
            .count();
        let mut out: Vec<Hole> = Vec::with_capacity(mine.len().max(theirs.len()));
        out.extend_from_slice(&mine[..prefix]);
        self.merge_holes(
            &mine[prefix..mine.len() - suffix],
            &theirs[prefix..theirs.len() - suffix],
            other,
            &mut out,
        );
        out.extend_from_slice(&mine[mine.len() - suffix..]);
        self.holes.set(out);
    }

    /// Appends to `out` the intersection of the unknown sets given by hole lists `mine`
    /// (with this clock's entries) and `theirs` (with `other`'s), index by index.
    fn merge_holes(&self, mine: &[Hole], theirs: &[Hole], other: &VClock, out: &mut Vec<Hole>) {
        let (mut i, mut j) = (0, 0);
        while i < mine.len() || j < theirs.len() {
            let index = match (mine.get(i), theirs.get(j)) {
                (Some(a), Some(b)) => a.index.min(b.index),
                (Some(a), None) => a.index,
                (None, Some(b)) => b.index,
                (None, None) => break,
            };
            let i_end = i + mine[i..].iter().take_while(|h| h.index == index).count();
            let j_end = j + theirs[j..].iter().take_while(|h| h.index == index).count();
            let (ta, tb) = (self.get(index), other.get(index));
            let top = ta.max(tb);
            // Interval k of a side: its holes, then (entry, ∞).
            let iv = |hs: &[Hole], k: usize, entry: Time| {
                hs.get(k).map_or((entry, Time::MAX), |h| (h.lo, h.hi))
            };
            let (a, b) = (&mine[i..i_end], &theirs[j..j_end]);
            let (mut ka, mut kb) = (0, 0);
            while ka <= a.len() && kb <= b.len() {
                let (alo, ahi) = iv(a, ka, ta);
                let (blo, bhi) = iv(b, kb, tb);
                let (lo, hi) = (alo.max(blo), ahi.min(bhi).min(top));
                if lo < hi {
                    match out.last_mut() {
                        Some(p) if p.index == index && p.hi >= lo => p.hi = p.hi.max(hi),
                        _ => out.push(Hole { index, lo, hi }),
                    }
                }
                if ahi <= bhi {
                    ka += 1;
                } else {
                    kb += 1;
                }
            }
            i = i_end;
            j = j_end;
        }
    }

    fn in_hole(&self, epoch: Epoch) -> bool {
        let (i, t) = (epoch.index(), epoch.time());
        let at = self.holes.partition_point(|h| (h.index, h.lo) < (i, t));
        at > 0 && {
            let h = self.holes[at - 1];
            h.index == i && h.lo < t && t <= h.hi
        }
    }

    fn join_times(&mut self, other: &VClock) {
        if other.times.len() > self.times.len() {
            self.times.resize(other.times.len(), 0);
        }
        max_into(&mut self.times, &other.times);
    }

    /// `self = other`, reusing the allocation.
    pub fn copy_from(&mut self, other: &VClock) {
        self.source = other.source;
        self.times.clear();
        self.times.extend_from_slice(&other.times);
        self.holes = other.holes.clone();
    }

    /// Go's channel-slot rule (TSan `ReleaseStoreAcquire`): `sync` takes this clock,
    /// and this clock acquires what `sync` held before.
    pub fn release_store_acquire(&mut self, sync: &mut VClock) {
        self.source = NO_SOURCE;
        sync.source = NO_SOURCE;
        if self.holes.is_empty() && sync.holes.is_empty() {
            let n = self.times.len().max(sync.times.len());
            self.times.resize(n, 0);
            sync.times.resize(n, 0);
            swap_max(&mut self.times, &mut sync.times);
            return;
        }
        let old = core::mem::take(sync);
        sync.copy_from(self);
        self.join(&old);
    }

    pub fn len(&self) -> usize {
        self.times.len()
    }

    pub fn is_empty(&self) -> bool {
        self.times.iter().all(|&t| t == 0)
    }
}

/// `mine[i] = max(mine[i], theirs[i])` for the common length. With AVX2 (where the CPU
/// has it), eight lanes per instruction; otherwise SSE2, Go's amd64 v1 baseline, which
/// has no unsigned 32-bit max and emulates it in several instructions per four lanes.
/// Joins of long clocks (a thousand goroutines alive) are most of goroutine churn.
#[inline]
fn max_into(mine: &mut [Time], theirs: &[Time]) {
    #[cfg(target_arch = "x86_64")]
    if crate::cpu::has_avx2() {
        // SAFETY: the CPU supports AVX2 (checked just above).
        return unsafe { max_into_avx2(mine, theirs) };
    }
    max_into_baseline(mine, theirs);
}

/// Go's channel-slot rule on two clocks of one length: `theirs` takes `mine`, and
/// `mine` the max of both ([`VClock::release_store_acquire`]); AVX2 where the CPU has
/// it, as [`max_into`] (a buffered channel's every send and receive does this, on
/// clocks as long as the goroutines alive: 200 in sync's `TestCondBroadcast`).
#[inline]
fn swap_max(mine: &mut [Time], theirs: &mut [Time]) {
    #[cfg(target_arch = "x86_64")]
    if crate::cpu::has_avx2() {
        // SAFETY: the CPU supports AVX2 (checked just above).
        return unsafe { swap_max_avx2(mine, theirs) };
    }
    swap_max_baseline(mine, theirs);
}

#[inline(always)]
fn swap_max_baseline(mine: &mut [Time], theirs: &mut [Time]) {
    for (m, t) in mine.iter_mut().zip(theirs.iter_mut()) {
        let old = *t;
        *t = *m;
        *m = (*m).max(old);
    }
}

/// [`swap_max_baseline`] compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn swap_max_avx2(mine: &mut [Time], theirs: &mut [Time]) {
    swap_max_baseline(mine, theirs);
}

/// An unconditional max: branch-free, so it vectorises; a conditional store compiled to
/// a branch per lane.
#[inline(always)]
fn max_into_baseline(mine: &mut [Time], theirs: &[Time]) {
    for (m, &t) in mine.iter_mut().zip(theirs) {
        *m = (*m).max(t);
    }
}

/// [`max_into_baseline`] compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn max_into_avx2(mine: &mut [Time], theirs: &[Time]) {
    max_into_baseline(mine, theirs);
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
    fn holes_are_unknown_and_joins_are_unions() {
        // Knows index 3 up to 2, then not (2, 7], then (7, 9].
        let mut a = VClock::new();
        a.add_hole(3, 2, 7);
        a.set(3, 9);
        assert!(a.knows(Epoch::new(3, 2)) && !a.knows(Epoch::new(3, 5)));
        assert!(!a.knows(Epoch::new(3, 7)) && a.knows(Epoch::new(3, 8)));
        // b knows up to 4: the join knows (2, 4] too, and still not (4, 7].
        let mut b = VClock::new();
        b.set(3, 4);
        let mut j = a.clone();
        j.join(&b);
        assert!(j.knows(Epoch::new(3, 4)) && !j.knows(Epoch::new(3, 5)));
        assert!(j.knows(Epoch::new(3, 9)));
        // Joining someone who knows everything up to 8 fills the hole.
        let mut c = VClock::new();
        c.set(3, 8);
        j.join(&c);
        assert!(j.holes().is_empty() && j.knows(Epoch::new(3, 9)));
        // Two clocks with different holes know the union of what each knows.
        let mut d = VClock::new();
        d.add_hole(3, 0, 5);
        d.set(3, 6);
        let mut e = VClock::new();
        e.add_hole(3, 3, 6);
        e.set(3, 7);
        d.join(&e);
        for (t, known) in [
            (1, true),
            (3, true),
            (4, false),
            (5, false),
            (6, true),
            (7, true),
            (8, false),
        ] {
            assert_eq!(d.knows(Epoch::new(3, t)), known, "t={t}");
        }
    }

    /// A clock with holes, built from a random known-set over times 1..=20 of two indexes.
    fn random_clock(seed: &mut u64) -> VClock {
        random_clock_with(seed, 2)
    }

    fn random_clock_with(seed: &mut u64, indexes: u32) -> VClock {
        let mut c = VClock::new();
        for idx in 0..indexes {
            *seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let top = (*seed >> 33) as u32 % 21;
            let mut lo = (*seed >> 40) as u32 % 21;
            while lo + 1 < top && (*seed >> 50) & 1 == 1 {
                let hi = lo + 1 + ((*seed >> 20) as u32 % 3);
                if hi >= top {
                    break;
                }
                c.add_hole(idx, lo, hi);
                lo = hi + 1 + ((*seed >> 10) as u32 % 3);
                *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
            }
            c.set(idx, top);
        }
        c
    }

    #[test]
    fn join_is_exactly_the_union_of_known_sets() {
        let mut seed = 7u64;
        let mut both_with_holes = 0;
        for _ in 0..20_000 {
            let (a, b) = (random_clock(&mut seed), random_clock(&mut seed));
            both_with_holes += (!a.holes().is_empty() && !b.holes().is_empty()) as u32;
            let mut j = a.clone();
            j.join(&b);
            let mut r = a.clone();
            let mut sync = b.clone();
            r.release_store_acquire(&mut sync);
            for idx in 0..2 {
                for t in 1..=22 {
                    let e = Epoch::new(idx, t);
                    let want = a.knows(e) || b.knows(e);
                    assert_eq!(j.knows(e), want, "{a:?} ⊔ {b:?} at {idx}:{t} gave {j:?}");
                    assert_eq!(r.knows(e), want);
                    assert_eq!(sync.knows(e), a.knows(e));
                }
            }
        }
        assert!(both_with_holes > 1000, "{both_with_holes}");
    }

    #[test]
    fn join_of_related_clocks_is_exactly_the_union() {
        // Clocks sharing most holes (a parent and a descendant): exercises the copied
        // common prefix and suffix of the hole lists.
        let mut seed = 11u64;
        for _ in 0..5_000 {
            let a = random_clock_with(&mut seed, 5);
            let mut b = a.clone();
            let idx = (seed >> 13) as u32 % 5;
            let fresh = random_clock_with(&mut seed, 5);
            match seed >> 60 & 3 {
                0 => b.set(idx, a.get(idx) + 3),
                1 => {
                    let top = b.get(idx);
                    b.add_hole(idx, top, top + 2);
                    b.set(idx, top + 4);
                }
                2 => {
                    let mut kept = b.holes.to_vec();
                    kept.retain(|h| h.index != idx);
                    b.holes.set(kept);
                }
                _ => b.join(&fresh),
            }
            let mut j = a.clone();
            j.join(&b);
            for idx in 0..5 {
                for t in 1..=30 {
                    let e = Epoch::new(idx, t);
                    assert_eq!(
                        j.knows(e),
                        a.knows(e) || b.knows(e),
                        "{a:?} ⊔ {b:?} at {idx}:{t} gave {j:?}"
                    );
                }
            }
        }
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

    #[test]
    fn release_store_acquire_of_long_clocks_is_the_slot_rule_at_every_index() {
        // Lengths around the vector widths, times up to 2^32 - 1 (unsigned compares).
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u32 >> (seed % 3 * 8)
        };
        for n in [1, 3, 4, 7, 8, 15, 16, 17, 31, 33, 200, 257] {
            let (mut thr, mut sync) = (VClock::new(), VClock::new());
            for i in 0..n {
                thr.set(i as u32, next());
                sync.set(i as u32, next());
            }
            let (t0, s0) = (thr.clone(), sync.clone());
            thr.release_store_acquire(&mut sync);
            for i in 0..n as u32 {
                assert_eq!(sync.get(i), t0.get(i), "len {n} index {i}");
                assert_eq!(thr.get(i), t0.get(i).max(s0.get(i)), "len {n} index {i}");
            }
        }
    }
}
