//! Goroutine state and clock indexes.
//!
//! # Report numbers and clock indexes
//! Each goroutine context gets a *report number* (`tid`): 0 for the init context, 1 for
//! the main goroutine, then one per `go_start`, sequential and never reused, as TSan
//! prints them. Separately it gets a *clock index*, its position in vector clocks.
//!
//! # When a clock index is reused (and why that is exact)
//! Indexes of finished goroutines are reused at once, so vector clocks stay as long as
//! the number of goroutines alive at the same time, not the number ever created. An
//! index has one timeline shared by its successive owners: an owner that finished at
//! time `f` hands over to a new owner that starts at `f + 1`. What a clock knows of an
//! index is a set of times; a new owner's clock starts as its creator's, plus `f + 1`,
//! and if the creator did not know the old owner up to the last time `r ≤ f` at which
//! the old owner left a shadow record, the times up to `r` it did not know become a
//! *hole* (see `clock::Hole`): they stay unknown to the new owner and to everyone who
//! later learns of it, until they learn the old owner's end some other way. Times in
//! `(r, f]` carry no records, so knowing them orders nothing. Joins are unions of these sets, so no goroutine is ever ordered after another
//! that it did not synchronise with (TSan hands a slot to a newcomer and orders the two:
//! a lost race). Creators that know the old owner's end need no hole and are preferred.
//!
//! # Epoch exhaustion
//! When a goroutine's own time reaches `max_time`, it moves to a fresh index (its old
//! index retires for good, at `max_time`, and is never reused). Nothing is reset, so no
//! access is forgotten; TSan does a global reset here and forgets every earlier access.
//!
//! # Concurrency
//! A goroutine context is used by one OS thread at a time (Go's `…g(gp, addr)` calls use a
//! parked goroutine's context). Its clock and index are written only under its
//! `clock_lock`; the owner reads them without the lock (it is the only writer), and other
//! threads (`acquire_global`) read them under it. Lock order:
//! registry → goroutine clock lock → sync shard → shadow cell.

use super::clock::{Epoch, Index, Time, VClock};
use super::stack::StackId;
use crate::lock::SpinLock;
use alloc::vec::Vec;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicU32};

/// What a report needs about a goroutine, kept for the whole run.
#[derive(Default)]
pub struct TidInfo {
    pub created_at: AtomicU32,
    /// Report number of the creating goroutine (0: none), for creation chains in
    /// JSON reports and per-test attribution.
    pub parent: AtomicU32,
    pub finished: AtomicBool,
}

pub struct ClockState {
    pub idx: Index,
    pub clock: VClock,
}

impl ClockState {
    #[inline]
    pub fn epoch(&self) -> Epoch {
        Epoch::new(self.idx, self.clock.get(self.idx))
    }
}

pub const LEAF_CACHE: usize = 32;

/// The interned stack of one shadow-stack depth, and the last access site seen with it
/// as prefix: deep recursion revisits the same depths with the same accesses, which a
/// small shared cache would keep evicting.
#[derive(Clone, Copy, Default)]
pub struct FrameNode {
    pub parent: StackId,
    pub pc: usize,
    pub id: StackId,
    /// `pc | kind << 56` of the last access made with this stack as prefix, and its site
    /// (0: none; reset whenever `id` changes or the goroutine changes clock index).
    pub leaf_key: usize,
    pub leaf_site: super::site::SiteId,
}

/// Per-goroutine state used only by the thread running the goroutine.
pub struct Local {
    /// Shadow call stack: the return addresses passed to func_enter, outermost first.
    pub pcs: Vec<usize>,
    /// `nodes[d]`: interned id of `pcs[..=d]`, valid for `d < valid`, and the `(parent,
    /// pc)` it was computed from, so that re-entering the same call reuses it.
    pub nodes: Vec<FrameNode>,
    pub valid: usize,
    /// Small direct-mapped cache of access sites: (prefix id, access pc | kind << 56) →
    /// site id; cleared when the goroutine changes clock index.
    pub leaf_cache: [(StackId, usize, super::site::SiteId); LEAF_CACHE],
    /// The sites of the current clock index seen lately (for the shadow fast path).
    pub own_sites: super::shadow::OwnSites,
    pub ignore_sync: u32,
    /// The last own time at which this goroutine left a record in the shadow: if it ends
    /// without one at its final time, that time holds nothing anyone must know.
    pub recorded_at: Time,
    /// Reusable buffer for a shadow cell's records.
    pub scratch: Vec<super::shadow::Record>,
    /// Spare out-of-line record lists for this goroutine's spills.
    pub spare: super::shadow::ExtStash,
}

pub struct Goroutine {
    pub tid: u32,
    pub clock_lock: SpinLock<()>,
    clock: UnsafeCell<ClockState>,
    local: UnsafeCell<Local>,
    /// Position in the registry's live list.
    pub(crate) live_slot: UnsafeCell<usize>,
}

// SAFETY: see the module doc: `clock` is written only under `clock_lock` and read
// without it only by the one thread using the context; `local` is used only by that
// thread; `live_slot` only under the registry lock.
unsafe impl Sync for Goroutine {}
// SAFETY: as above.
unsafe impl Send for Goroutine {}

impl Goroutine {
    pub fn new(tid: u32, idx: Index, clock: VClock) -> Self {
        Goroutine {
            tid,
            clock_lock: SpinLock::new(()),
            clock: UnsafeCell::new(ClockState { idx, clock }),
            local: UnsafeCell::new(Local {
                pcs: Vec::new(),
                nodes: Vec::new(),
                valid: 0,
                leaf_cache: [(0, 0, 0); LEAF_CACHE],
                own_sites: super::shadow::OwnSites::new(),
                ignore_sync: 0,
                recorded_at: 0,
                scratch: Vec::new(),
                spare: super::shadow::ExtStash::new(),
            }),
            live_slot: UnsafeCell::new(usize::MAX),
        }
    }

    /// The clock, for the owning thread (or under `clock_lock`).
    #[inline]
    pub fn clock(&self) -> &ClockState {
        // SAFETY: only the owner thread writes, under clock_lock; see the module doc.
        unsafe { &*self.clock.get() }
    }

    /// Mutable clock access; the caller must hold `clock_lock` and be the owner thread.
    #[allow(clippy::mut_from_ref)]
    #[inline]
    pub fn clock_mut_locked(&self) -> &mut ClockState {
        // SAFETY: exclusive by the module's locking protocol.
        unsafe { &mut *self.clock.get() }
    }

    #[allow(clippy::mut_from_ref)]
    #[inline]
    pub fn local(&self) -> &mut Local {
        // SAFETY: only the single thread currently using this context touches `local`.
        unsafe { &mut *self.local.get() }
    }
}

/// Live goroutines and the clock-index allocator.
pub struct Registry {
    pub live: Vec<*const Goroutine>,
    next_index: Index,
    /// Indexes of finished goroutines ready for reuse: (index, final time, last time at
    /// which the owner left a shadow record).
    free: Vec<(Index, Time, Time)>,
    /// For each index, its owners so far: (first time, tid), ascending.
    owners: Vec<Vec<(Time, u32)>>,
    /// For each index, the last time of its finished owners (what `acquire_global` joins).
    finals: Vec<Time>,
    /// The next report number.
    pub next_tid: u32,
    pub max_time: Time,
}

// SAFETY: the raw goroutine pointers are only dereferenced under the registry lock while
// the goroutines are live (they leave the list before being freed).
unsafe impl Send for Registry {}

/// How many recently freed indexes to search for one the creator already knows.
const REUSE_SEARCH: usize = 32;

impl Registry {
    pub fn new(max_time: Time) -> Self {
        Registry {
            live: Vec::new(),
            next_index: 0,
            free: Vec::new(),
            owners: Vec::new(),
            finals: Vec::new(),
            next_tid: 0,
            max_time,
        }
    }

    /// A clock index for goroutine `tid`, whose clock starts as `clock`; updates `clock`
    /// for it (start time, and a hole if needed) and returns the index.
    pub fn alloc_index(&mut self, tid: u32, clock: &mut VClock) -> Index {
        let n = self.free.len();
        let known = (n.saturating_sub(REUSE_SEARCH)..n)
            .rev()
            .find(|&k| clock.get(self.free[k].0) >= self.free[k].2);
        let reuse = known.or(n.checked_sub(1)).map(|k| self.free.swap_remove(k));
        let (idx, start) = match reuse {
            Some((idx, last, recorded)) => {
                // Only times that carry the old owner's records must stay unknown; later
                // times (released, but with no records) may be known harmlessly.
                let knew = clock.get(idx);
                clock.add_hole(idx, knew, recorded);
                (idx, last + 1)
            }
            None => {
                let i = self.next_index;
                self.next_index += 1;
                self.owners.push(Vec::new());
                self.finals.push(0);
                (i, 1)
            }
        };
        clock.set(idx, start);
        let owners = &mut self.owners[idx as usize];
        owners.push((start, tid));
        idx
    }

    /// Records that the owner of `idx` is done with it at time `last`, having left its
    /// last shadow record at time `recorded` (≤ `last`).
    pub fn retire_index(&mut self, idx: Index, last: Time, recorded: Time) {
        self.finals[idx as usize] = last;
        if last + 1 < self.max_time {
            self.free.push((idx, last, recorded.min(last)));
        }
    }

    /// Retires an index whose owner's time ran out: it is never handed out again.
    pub fn retire_exhausted(&mut self, idx: Index, last: Time) {
        self.finals[idx as usize] = last;
    }

    /// The last time of each index's finished owners, by index.
    pub fn finals(&self) -> &[Time] {
        &self.finals
    }

    /// The report number of whoever owned `epoch`'s index at that time.
    pub fn tid_of(&self, epoch: Epoch) -> Option<u32> {
        let owners = self.owners.get(epoch.index() as usize)?;
        owners
            .iter()
            .rev()
            .find(|&&(start, _)| start <= epoch.time())
            .map(|&(_, tid)| tid)
    }

    pub fn indexes_in_use(&self) -> usize {
        self.next_index as usize - self.free.len()
    }

    /// # Safety
    /// `g` must point to a valid goroutine that stays valid until `remove_live`.
    pub unsafe fn add_live(&mut self, g: *const Goroutine) {
        // SAFETY: `g` is a fresh goroutine not yet shared; live_slot is registry-owned.
        unsafe { *(*g).live_slot.get() = self.live.len() };
        self.live.push(g);
    }

    /// # Safety
    /// `g` must be a goroutine passed to `add_live` and still valid.
    pub unsafe fn remove_live(&mut self, g: *const Goroutine) {
        // SAFETY: `g` is live, so its slot is valid; slots are only touched under the
        // registry lock, which the caller holds.
        unsafe {
            let slot = *(*g).live_slot.get();
            if self.live.get(slot) != Some(&g) {
                return;
            }
            self.live.swap_remove(slot);
            if let Some(&moved) = self.live.get(slot) {
                *(*moved).live_slot.get() = slot;
            }
        }
    }
}
