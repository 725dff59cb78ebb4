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
//! parked goroutine's context). Its clock and index are read and written only by that
//! thread, without a lock; what other threads read (`acquire_global`, statistics) is its
//! current epoch and its clock's length and number of holes, which every change of the
//! clock publishes in atomic words (the `Goroutine` methods that change it). Lock order:
//! registry → sync shard → shadow cell.

use super::clock::{Epoch, Index, Time, VClock};
use super::shadow::{Deriving, OwnTransition, Transition};
use super::site::SiteId;
use super::stack::StackId;
use alloc::vec::Vec;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicU64, Ordering};

/// What a report needs about a goroutine: kept while it is alive, while any shadow
/// record of it may remain, and while a kept goroutine descends from it (see
/// [`Registry::sweep`]).
#[derive(Clone, Copy)]
pub struct GoroutineInfo {
    /// Interned stack of its `go` statement.
    pub created_at: StackId,
    /// Report number of the creating goroutine (0: none), for creation chains in
    /// JSON reports and per-test attribution.
    pub parent: u32,
    pub finished: bool,
}

/// One owner of a clock index: the goroutine `tid` held it for times `start..=end`.
#[derive(Clone, Copy)]
struct Owner {
    start: Time,
    /// `Time::MAX` while the owner holds the index.
    end: Time,
    tid: u32,
}

pub struct ClockState {
    pub idx: Index,
    pub clock: VClock,
    /// `(idx, clock[idx])`, kept beside the clock because every access reads it. Only
    /// the goroutine itself advances its own entry (joins never raise it: nobody knows
    /// a later time of the index than its owner), so `tick` and index moves refresh it.
    now: Epoch,
    /// `now`'s time in a shadow record word's time field, which every same-epoch check
    /// compares with (one load instead of a load and a shift).
    pub time_field: u64,
    /// The goroutine's first time on its index: records of the index from `born` on
    /// are its own (earlier owners of the index ended before).
    pub born: Time,
    /// Changes whenever the clock may have (each [`Goroutine::clock_mut`]): an
    /// update remembered at one stamp is replayed only at the same ([`UpdateMemo`]).
    pub stamp: u64,
    /// Counts the clock's changes other than ticks (joins, index moves): a sync clock
    /// copied at the same count differs from this one in the own entry at most
    /// ([`VClock::copy_from_goroutine`]).
    pub joins: u32,
}

impl ClockState {
    pub fn new(idx: Index, clock: VClock) -> Self {
        let now = Epoch::new(idx, clock.get(idx));
        let mut st = ClockState {
            idx,
            clock,
            now,
            time_field: 0,
            born: now.time(),
            stamp: 0,
            joins: 0,
        };
        st.set_now(now);
        st
    }

    /// `now` and the time field derived from it.
    fn set_now(&mut self, now: Epoch) {
        self.now = now;
        self.time_field = super::shadow::time_field(now.time());
    }

    #[inline]
    pub fn epoch(&self) -> Epoch {
        debug_assert_eq!(self.now, Epoch::new(self.idx, self.clock.get(self.idx)));
        self.now
    }

    /// Sets the goroutine's own time (see [`Goroutine::set_own_time`]).
    fn set_own_time(&mut self, t: Time) {
        // The own entry exists: set when the index was taken (`alloc_index`).
        self.clock.set_existing(self.idx, t);
        self.set_now(Epoch::new(self.idx, t));
    }

    /// Moves the goroutine to index `idx` with `clock` (see [`Goroutine::move_to`]).
    fn move_to(&mut self, idx: Index, clock: VClock) {
        self.idx = idx;
        self.clock = clock;
        self.set_now(Epoch::new(idx, self.clock.get(idx)));
        self.born = self.now.time();
    }
}

/// A direct-mapped per-goroutine cache that starts small (8 entries) and grows 4x at a
/// time (to `MAX`) once it misses often: most goroutines touch a few access sites, some
/// (deep recursive descent, e.g. encoding/json) hundreds of thousands, which the shared
/// interners serve only with cache misses.
pub struct GrowingCache<K: Copy + PartialEq + Default, V: Copy + Default> {
    slots: Vec<(K, V)>,
    misses: u32,
}

impl<K: Copy + PartialEq + Default, V: Copy + Default + PartialEq> Default for GrowingCache<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Copy + PartialEq + Default, V: Copy + Default + PartialEq> GrowingCache<K, V> {
    const MIN: usize = 8;
    const MAX: usize = 1024;

    pub const fn new() -> Self {
        GrowingCache {
            slots: Vec::new(),
            misses: 0,
        }
    }

    /// The value cached for `key` (whose hash is `hash`), or `make()`'s, cached.
    #[inline]
    pub fn get_or(&mut self, key: K, hash: u64, make: impl FnOnce() -> V) -> V {
        if self.slots.is_empty() {
            self.slots.resize(Self::MIN, Default::default());
        }
        let slot = (hash as usize) & (self.slots.len() - 1);
        let (k, v) = self.slots[slot];
        if k == key && v != V::default() {
            return v;
        }
        let v = make();
        self.slots[slot] = (key, v);
        note_miss(&mut self.slots, &mut self.misses, Self::MAX);
        v
    }

    /// Forgets every entry (keeps the size).
    pub fn clear(&mut self) {
        self.slots.iter_mut().for_each(|s| *s = Default::default());
    }
    /// Bytes of buffer the cache holds.
    pub fn buffer_bytes(&self) -> usize {
        self.slots.capacity() * core::mem::size_of::<(K, V)>()
    }
}
/// Counts a miss of a direct-mapped per-goroutine cache; past 4x its size in misses,
/// the cache starts over empty and 4x larger (up to `max` entries).
pub fn note_miss<T: Clone + Default>(slots: &mut Vec<T>, misses: &mut u32, max: usize) {
    *misses += 1;
    if *misses as usize > 4 * slots.len() && slots.len() < max {
        let n = slots.len() * 4;
        slots.clear();
        slots.resize(n, T::default());
        *misses = 0;
    }
}

/// A range `[lo, hi)` whose every byte the goroutine covered with a record of `kind` at
/// `epoch`, with the reset generation of its pages then (`Shadow::generation`).
#[derive(Clone, Copy, Default)]
pub struct RangeSeen {
    pub lo: usize,
    pub hi: usize,
    pub epoch: u64,
    pub generation: u64,
    pub kind: u8,
}

/// The last [`RANGES_SEEN`] long ranges a goroutine covered (replaced in turn): a copy
/// loop reads one range and writes another.
#[derive(Default)]
pub struct RangesSeen {
    pub entries: [RangeSeen; RANGES_SEEN],
    pub next: usize,
}

pub const RANGES_SEEN: usize = 4;

/// A goroutine's last inline-cell updates, each `(site, bytes)` → the update (and the
/// composite site it made, 0 if none), with the clock *stamp* and the time at which it
/// was made, direct-mapped. An update is a function of the cell's words, the access (its
/// epoch, bytes, kind and site) and the goroutine's clock; the site gives the kind. So a
/// cell that holds the old words of an update remembered at the same stamp (the epoch
/// and clock unchanged) takes its new ones, exactly (there was no race, or it would not
/// have been made): code that updates cell after cell the same way (appending pairs of
/// runes, writing a buffer byte by byte after a new epoch) pays for one decision per
/// byte pattern and access point instead of one per cell. At another stamp, an update
/// of the goroutine's own records still holds with their times shifted
/// ([`OwnTransition`], derived when first needed: most updates are replayed at their
/// own stamp or never). Allocated on first use: many goroutines never update a cell.
#[derive(Default)]
pub struct UpdateMemo(Option<alloc::boxed::Box<[MemoEntry; UPDATE_MEMO]>>);

const MEMO_BITS: u32 = 4;
pub const UPDATE_MEMO: usize = 1 << MEMO_BITS;

#[derive(Clone, Copy, Default)]
pub struct MemoEntry {
    site: SiteId,
    mask: u8,
    /// The composite site the update made, 0 if none.
    pub merged: SiteId,
    pub stamp: u64,
    /// The goroutine's time when it made the update.
    at: Time,
    pub made: Transition,
    /// `made` without its times, once asked for: `None` until then, `Some(None)` when
    /// it is not an update of the goroutine's own records.
    own: Option<Option<OwnTransition>>,
}

impl MemoEntry {
    /// `made` without its times ([`OwnTransition::of`]) once derived: `None` until then,
    /// `Some(None)` when it is not of that form.
    #[inline(always)]
    pub fn own_form(&self) -> Option<Option<&OwnTransition>> {
        self.own.as_ref().map(Option::as_ref)
    }

    /// The entry as if `made` (an update of the same own form, just replayed at time
    /// `at`) had been decided at `stamp`: an update is a function of the cell's words
    /// and the goroutine's clock, so it holds as it is while the stamp lasts. The own
    /// form stays: derived from `made` at `at`, it is the one just replayed.
    pub fn restamp(&mut self, made: Transition, stamp: u64, at: Time) {
        self.made = made;
        self.stamp = stamp;
        self.at = at;
    }

    /// Derives [`MemoEntry::own_form`] in the goroutine's context `d`.
    pub fn derive_own_form(&mut self, d: &Deriving) {
        self.own = Some(OwnTransition::of(&self.made, self.at, d));
    }
}

impl UpdateMemo {
    #[inline(always)]
    fn slot(site: SiteId, mask: u8) -> usize {
        // Spreads the single-byte masks of one site over distinct slots.
        (site.wrapping_add(mask as u32).wrapping_mul(0x9e37_79b1) >> (32 - MEMO_BITS)) as usize
    }

    /// The last update remembered for an access at `site` to bytes `mask`.
    #[inline(always)]
    pub fn get(&mut self, site: SiteId, mask: u8) -> Option<&mut MemoEntry> {
        let e = &mut self.0.as_mut()?[Self::slot(site, mask)];
        (e.site == site && e.mask == mask).then_some(e)
    }

    pub fn put(
        &mut self,
        site: SiteId,
        mask: u8,
        stamp: u64,
        at: Time,
        made: Transition,
        merged: SiteId,
    ) {
        let slots = self
            .0
            .get_or_insert_with(|| alloc::boxed::Box::new([MemoEntry::default(); UPDATE_MEMO]));
        slots[Self::slot(site, mask)] = MemoEntry {
            site,
            mask,
            merged,
            stamp,
            at,
            made,
            own: None,
        };
    }

    /// Forgets every update (the goroutine moved to another clock index, so its times
    /// restart: [`super::shadow::Cell::replay_own`] compares them).
    pub fn clear(&mut self) {
        self.0 = None;
    }

    /// The stamps of the remembered updates (for tests).
    #[cfg(test)]
    pub fn stamps(&self) -> Vec<u64> {
        self.0
            .iter()
            .flat_map(|slots| slots.iter().filter(|e| e.site != 0).map(|e| e.stamp))
            .collect()
    }
}

/// The interned stack of one shadow-stack depth, and the last access sites seen with it
/// as prefix: deep recursion revisits the same depths with the same accesses, which a
/// small shared cache would keep evicting, and a loop body makes a few accesses in turn.
#[derive(Clone, Copy, Default)]
pub struct FrameNode {
    pub parent: StackId,
    pub pc: usize,
    pub id: StackId,
    pub leaves: Leaves,
}

/// The last [`LEAVES`] distinct accesses made with one stack as prefix, most recent
/// first: `pc | kind << 56` and the site (site 0: none). Reset whenever the node's `id`
/// changes or the goroutine changes clock index.
#[derive(Clone, Copy, Default)]
pub struct Leaves {
    keys: [usize; LEAVES],
    sites: [super::site::SiteId; LEAVES],
}

const LEAVES: usize = 4;

impl Leaves {
    #[inline]
    pub fn get(&self, key: usize) -> Option<super::site::SiteId> {
        // Empty slots (site 0, key 0) only ever follow the filled ones, so the first
        // slot with the key is the one to use; only key 0 can find an empty slot.
        let i = (0..LEAVES).find(|&i| self.keys[i] == key)?;
        let site = self.sites[i];
        (site != 0).then_some(site)
    }

    /// Adds `key`'s site in front, dropping the least recent.
    pub fn put(&mut self, key: usize, site: super::site::SiteId) {
        self.keys.copy_within(..LEAVES - 1, 1);
        self.sites.copy_within(..LEAVES - 1, 1);
        self.keys[0] = key;
        self.sites[0] = site;
    }
}

/// Recycled contexts keep shadow-stack buffers of at most this many frames.
const KEPT_DEPTH: usize = 256;

/// Per-goroutine state used only by the thread running the goroutine.
pub struct Local {
    /// Shadow call stack: the return addresses passed to func_enter, outermost first.
    pub pcs: Vec<usize>,
    /// `nodes[d]`: interned id of `pcs[..=d]`, valid for `d < valid`, and the `(parent,
    /// pc)` it was computed from, so that re-entering the same call reuses it.
    pub nodes: Vec<FrameNode>,
    /// `alts[d]`: the node `nodes[d]` held before it last changed, so code that calls
    /// two functions in turn from one place (Lock/Unlock) does not re-intern each time.
    pub alts: Vec<FrameNode>,
    pub valid: usize,
    /// Small direct-mapped cache of access sites: (prefix id, access pc | kind << 56) →
    /// site id; cleared when the goroutine changes clock index.
    pub leaf_cache: GrowingCache<(StackId, usize), super::site::SiteId>,
    /// Interned stack nodes `(parent, pc)` → id seen lately.
    pub node_cache: GrowingCache<(StackId, usize), StackId>,
    /// Recent composite-site merges: `(old site, old bytes, new site, new bytes)` →
    /// merged site (a pure function of the four, so entries never go stale).
    pub merges: GrowingCache<(u64, u8), SiteId>,
    /// The sites of the current clock index seen lately (for the shadow fast path).
    pub own_sites: super::shadow::OwnSites,
    /// Inline-cell updates made lately, for the next cells that hold the same words.
    pub update_memo: UpdateMemo,
    pub ignore_sync: u32,
    /// The last own time at which this goroutine left a record in the shadow: if it ends
    /// without one at its final time, that time holds nothing anyone must know.
    pub recorded_at: Time,
    /// Reusable buffer for a shadow cell's records.
    pub scratch: Vec<super::shadow::Record>,
    /// Spare out-of-line record lists for this goroutine's spills.
    pub spare: super::shadow::ExtStash,
    /// Long ranges this goroutine covered with records lately (see `Engine::range_seen`).
    pub ranges_seen: RangesSeen,
}

impl Local {
    /// Whether `nodes[d]` is the node of frame `pc` under `parent` (interned before):
    /// as it is, or as the node it held before (`alts[d]`), swapped back in.
    #[inline(always)]
    pub fn reuse_node(&mut self, d: usize, parent: StackId, pc: usize) -> bool {
        let is = |n: &FrameNode| n.parent == parent && n.pc == pc && n.id != 0;
        if is(&self.nodes[d]) {
            return true;
        }
        if is(&self.alts[d]) {
            // Copies, not `mem::swap`: the swap went word by word (32 moves).
            let (node, alt) = (self.nodes[d], self.alts[d]);
            (self.nodes[d], self.alts[d]) = (alt, node);
            return true;
        }
        false
    }
}

/// `clock`'s length and number of holes in one word, as [`Goroutine::published_shape`].
fn shape(clock: &VClock) -> u64 {
    (clock.len() as u64) << 32 | clock.holes().len() as u64
}

pub struct Goroutine {
    pub tid: u32,
    /// The clock's current epoch (its bits), for other threads: stored after every
    /// change of the goroutine's own time or index.
    published: AtomicU64,
    /// The clock's length and number of holes (`len << 32 | holes`), for statistics.
    published_shape: AtomicU64,
    clock: UnsafeCell<ClockState>,
    local: UnsafeCell<Local>,
    /// Position in the registry's live list.
    pub(crate) live_slot: UnsafeCell<usize>,
}

// SAFETY: see the module doc: `clock` and `local` are used only by the one thread using
// the context (others read `published`, an atomic); `live_slot` only under the registry
// lock.
unsafe impl Sync for Goroutine {}
// SAFETY: as above.
unsafe impl Send for Goroutine {}

impl Goroutine {
    /// A context not yet given its report number, index and clock
    /// ([`Goroutine::assign`]): everything it needs is allocated before the registry
    /// lock is taken.
    pub fn unassigned() -> Self {
        Goroutine {
            tid: 0,
            published: AtomicU64::new(0),
            published_shape: AtomicU64::new(0),
            clock: UnsafeCell::new(ClockState::new(0, VClock::new())),
            local: UnsafeCell::new(Local {
                pcs: Vec::new(),
                nodes: Vec::new(),
                alts: Vec::new(),
                valid: 0,
                leaf_cache: GrowingCache::new(),
                node_cache: GrowingCache::new(),
                merges: GrowingCache::new(),
                own_sites: super::shadow::OwnSites::new(),
                update_memo: UpdateMemo::default(),
                ignore_sync: 0,
                recorded_at: 0,
                scratch: Vec::new(),
                spare: super::shadow::ExtStash::new(),
                ranges_seen: RangesSeen::default(),
            }),
            live_slot: UnsafeCell::new(usize::MAX),
        }
    }

    /// Makes an ended goroutine's context as [`Goroutine::unassigned`] makes a new one,
    /// keeping the capacity of the buffers every goroutine grows (its shadow stack, the
    /// record scratch, its clock), its spare out-of-line lists, which hold nothing, and
    /// what does not depend on the goroutine: the stack ids of its frame nodes (interned
    /// from `(parent, pc)` alone) and the caches of stack nodes and composite merges.
    /// Everything that names the old goroutine (its sites, its updates, its times) goes.
    /// Buffers grown past [`KEPT_DEPTH`] frames (deep recursion) are not kept.
    pub fn recycle(&mut self) {
        let mut fresh = Self::unassigned();
        let old = self.local.get_mut();
        let new = fresh.local.get_mut();
        if old.pcs.capacity() <= KEPT_DEPTH {
            for (from, to) in [
                (&mut old.nodes, &mut new.nodes),
                (&mut old.alts, &mut new.alts),
            ] {
                // A node's stack id is a function of its `(parent, pc)` alone (the depot
                // is global), so the next goroutine running the same code reuses it
                // without interning; its sites name the old clock index and go.
                from.iter_mut().for_each(|n| n.leaves = Leaves::default());
                core::mem::swap(from, to);
            }
            old.pcs.clear();
            core::mem::swap(&mut old.pcs, &mut new.pcs);
        }
        // Pure functions of their keys (stack nodes, composite-site merges): still true.
        core::mem::swap(&mut old.node_cache, &mut new.node_cache);
        core::mem::swap(&mut old.merges, &mut new.merges);
        old.scratch.clear();
        core::mem::swap(&mut old.scratch, &mut new.scratch);
        core::mem::swap(&mut old.spare, &mut new.spare);
        let mut clock = self.take_clock();
        clock.clone_from(&VClock::new());
        fresh.clock.get_mut().clock = clock;
        *self = fresh;
    }

    /// Bytes of the buffers a recycled context keeps (see [`Goroutine::recycle`]), so
    /// that the pool of spare contexts stays small whatever the goroutines did.
    pub fn kept_bytes(&mut self) -> usize {
        let l = self.local.get_mut();
        let nodes = (l.nodes.capacity() + l.alts.capacity()) * core::mem::size_of::<FrameNode>();
        l.pcs.capacity() * core::mem::size_of::<usize>()
            + nodes
            + l.scratch.capacity() * core::mem::size_of::<super::shadow::Record>()
            + l.node_cache.buffer_bytes()
            + l.merges.buffer_bytes()
            + self.clock.get_mut().clock.buffer_bytes()
    }

    /// The clock's buffer, for [`Engine::create`](super::Engine) to fill from the parent
    /// (an unassigned context's clock holds nothing else).
    pub fn take_clock(&mut self) -> VClock {
        core::mem::take(&mut self.clock.get_mut().clock)
    }

    /// Gives a goroutine made by [`Goroutine::unassigned`] and not yet shared its report
    /// number, clock index and clock.
    pub fn assign(&mut self, tid: u32, idx: Index, clock: VClock) {
        self.tid = tid;
        *self.clock.get_mut() = ClockState::new(idx, clock);
        self.publish();
    }

    /// The clock, for the thread using the context.
    #[inline]
    pub fn clock(&self) -> &ClockState {
        // SAFETY: only the thread using the context touches it; see the module doc.
        unsafe { &*self.clock.get() }
    }

    /// Mutable clock access, for the thread using the context (no reference from
    /// [`Goroutine::clock`] may be alive); bumps the stamp. Only the methods below use
    /// it, each publishing what it changed.
    #[allow(clippy::mut_from_ref)]
    #[inline]
    fn clock_mut(&self) -> &mut ClockState {
        // SAFETY: only the thread using the context touches it; see the module doc.
        let st = unsafe { &mut *self.clock.get() };
        st.stamp = st.stamp.wrapping_add(1);
        st
    }

    /// The clock learns what `other` knows.
    pub fn join_clock(&self, other: &VClock) {
        self.clock_mut_joined().clock.join(other);
        self.publish();
    }

    /// Go's channel-slot rule ([`VClock::release_store_acquire`]) with `sync`.
    pub fn release_store_acquire(&self, sync: &mut VClock) {
        self.clock_mut_joined().clock.release_store_acquire(sync);
        self.publish();
    }

    /// A release-store: `sync` takes this goroutine's clock.
    #[inline]
    pub fn release_to(&self, sync: &mut VClock) {
        let st = self.clock();
        sync.copy_from_goroutine(&st.clock, self.tid, st.joins, st.idx);
    }

    /// [`Goroutine::clock_mut`] for a change other than a tick (counted in `joins`).
    #[allow(clippy::mut_from_ref)]
    fn clock_mut_joined(&self) -> &mut ClockState {
        let st = self.clock_mut();
        st.joins = st.joins.wrapping_add(1);
        st
    }

    /// Sets the goroutine's own time (a tick: neither the clock's length nor its holes
    /// change).
    #[inline]
    pub fn set_own_time(&self, t: Time) {
        self.clock_mut().set_own_time(t);
        self.publish_epoch();
    }

    /// Moves the goroutine to index `idx` with `clock` (its time ran out).
    pub fn move_to(&self, idx: Index, clock: VClock) {
        self.clock_mut_joined().move_to(idx, clock);
        self.publish();
    }

    /// Makes the clock's current epoch and shape visible to other threads.
    #[inline]
    fn publish(&self) {
        self.publish_epoch();
        self.published_shape
            .store(shape(&self.clock().clock), Ordering::Relaxed);
    }

    /// [`Goroutine::publish`] of the epoch alone.
    #[inline]
    fn publish_epoch(&self) {
        self.published
            .store(self.clock().epoch().0, Ordering::Relaxed);
    }

    /// The epoch last published by the goroutine, from any thread.
    pub fn published_epoch(&self) -> Epoch {
        Epoch(self.published.load(Ordering::Relaxed))
    }

    /// The length and number of holes of the clock last published, from any thread.
    pub fn published_shape(&self) -> (u64, u64) {
        let s = self.published_shape.load(Ordering::Relaxed);
        (s >> 32, s & 0xffff_ffff)
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
    /// For each index, its owners that may still be named by a report, ascending.
    owners: Vec<Vec<Owner>>,
    /// For each index, the last time of its finished owners (what `acquire_global` joins).
    finals: Vec<Time>,
    /// The next report number.
    pub next_tid: u32,
    pub max_time: Time,
    /// Goroutines that may still be named by a report, ascending by report number
    /// (numbers are handed out in order, so a new one goes at the end; a sorted vector
    /// finds the goroutine ending with a binary search, a B-tree walked its nodes).
    infos: Vec<(u32, GoroutineInfo)>,
    /// Goroutines finished since the last sweep, and how many trigger the next one.
    finished_since_sweep: usize,
    pub sweep_after: usize,
    /// The least `sweep_after` ([`SWEEP_MIN`]; tests lower it).
    pub sweep_min: usize,
}

/// The fewest finished goroutines between sweeps: below this, what they keep (a few tens
/// of bytes each) is not worth a walk over the shadow.
pub const SWEEP_MIN: usize = 1 << 16;

// SAFETY: the raw goroutine pointers are only dereferenced under the registry lock while
// the goroutines are live (they leave the list before being freed).
unsafe impl Send for Registry {}

/// The position of the owner of time `t` in an index's owner list, if it is kept.
fn owner_at(owners: &[Owner], t: Time) -> Option<usize> {
    let k = owners.partition_point(|o| o.start <= t).checked_sub(1)?;
    (t <= owners[k].end).then_some(k)
}

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
            infos: Vec::new(),
            finished_since_sweep: 0,
            sweep_after: SWEEP_MIN,
            sweep_min: SWEEP_MIN,
        }
    }

    /// Registers goroutine `tid` (the next report number) and what reports need of it.
    pub fn add_info(&mut self, tid: u32, info: GoroutineInfo) {
        match self.infos.last() {
            Some(&(last, _)) if last >= tid => {
                // Report numbers wrapped around (2^32 goroutines): keep the order.
                if let Err(k) = self.info_position(tid) {
                    self.infos.insert(k, (tid, info));
                }
            }
            _ => self.infos.push((tid, info)),
        }
    }

    fn info_position(&self, tid: u32) -> Result<usize, usize> {
        self.infos.binary_search_by_key(&tid, |e| e.0)
    }

    pub fn info(&self, tid: u32) -> Option<&GoroutineInfo> {
        self.info_position(tid).ok().map(|k| &self.infos[k].1)
    }

    /// Marks goroutine `tid` finished; true when enough have finished for a sweep.
    pub fn finish(&mut self, tid: u32) -> bool {
        if let Ok(k) = self.info_position(tid) {
            self.infos[k].1.finished = true;
        }
        self.finished_since_sweep += 1;
        self.finished_since_sweep >= self.sweep_after
    }

    /// Goroutines and owner entries currently kept (for tests and statistics).
    pub fn kept(&self) -> (usize, usize) {
        (self.infos.len(), self.owners.iter().map(Vec::len).sum())
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
        self.owners[idx as usize].push(Owner {
            start,
            end: Time::MAX,
            tid,
        });
        idx
    }

    /// Records that the owner of `idx` is done with it at time `last`, having left its
    /// last shadow record at time `recorded` (≤ `last`).
    pub fn retire_index(&mut self, idx: Index, last: Time, recorded: Time) {
        self.end_owner(idx, last);
        if last + 1 < self.max_time {
            self.free.push((idx, last, recorded.min(last)));
        }
    }

    /// Retires an index whose owner's time ran out: it is never handed out again.
    pub fn retire_exhausted(&mut self, idx: Index, last: Time) {
        self.end_owner(idx, last);
    }

    fn end_owner(&mut self, idx: Index, last: Time) {
        self.finals[idx as usize] = last;
        if let Some(o) = self.owners[idx as usize].last_mut() {
            o.end = last;
        }
    }

    /// The last time of each index's finished owners, by index.
    pub fn finals(&self) -> &[Time] {
        &self.finals
    }

    /// The report number of whoever owned `epoch`'s index at that time.
    pub fn tid_of(&self, epoch: Epoch) -> Option<u32> {
        let owners = self.owners.get(epoch.index() as usize)?;
        owner_at(owners, epoch.time()).map(|k| owners[k].tid)
    }

    /// Forgets the finished goroutines no report can name any more. `scan` must call its
    /// argument with the epoch `(index, time)` of every record in the shadow (and of every
    /// race not yet reported, see `Engine::sweep`) and return whether it saw them all; if
    /// not, nothing is dropped.
    ///
    /// Kept: goroutines not finished, the owners of scanned epochs, and every ancestor of
    /// a kept goroutine (creation chains). Dropped owners leave a gap in their index's
    /// timeline, so `tid_of` answers `None` rather than a wrong goroutine should a
    /// record of one ever be asked about. Returns whether the sweep took place.
    pub fn sweep(&mut self, scan: impl FnOnce(&mut dyn FnMut(Index, Time)) -> bool) -> bool {
        let mut marks: Vec<Vec<bool>> = self
            .owners
            .iter()
            .map(|o| alloc::vec![false; o.len()])
            .collect();
        let owners = &self.owners;
        let valid = scan(&mut |idx, t| {
            if let Some(os) = owners.get(idx as usize)
                && let Some(k) = owner_at(os, t)
            {
                marks[idx as usize][k] = true;
            }
        });
        if !valid {
            self.finished_since_sweep = 0; // try again after as many more
            return false;
        }
        // (tid, parent, keep), ascending by tid; parents come before their children.
        let mut tree: Vec<(u32, u32, bool)> = self
            .infos
            .iter()
            .map(|&(tid, info)| (tid, info.parent, !info.finished))
            .collect();
        let keep_tid = |tree: &mut Vec<(u32, u32, bool)>, tid: u32| {
            if let Ok(k) = tree.binary_search_by_key(&tid, |e| e.0) {
                tree[k].2 = true;
            }
        };
        for (os, ms) in self.owners.iter().zip(&marks) {
            for (o, &m) in os.iter().zip(ms) {
                if m {
                    keep_tid(&mut tree, o.tid);
                }
            }
        }
        for k in (0..tree.len()).rev() {
            let (tid, parent, keep) = tree[k];
            if keep && parent < tid {
                keep_tid(&mut tree, parent);
            }
        }
        let mut kept = tree.iter().filter(|e| e.2).map(|e| e.0);
        let mut next = kept.next();
        self.infos.retain(|&(tid, _)| {
            while next.is_some_and(|k| k < tid) {
                next = kept.next();
            }
            next == Some(tid)
        });
        for (os, ms) in self.owners.iter_mut().zip(&marks) {
            let mut m = ms.iter();
            os.retain(|o| *m.next().unwrap_or(&false) || o.end == Time::MAX);
        }
        self.finished_since_sweep = 0;
        true
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaves_keep_the_four_most_recent_accesses() {
        let mut l = Leaves::default();
        assert_eq!(
            l.get(0),
            None,
            "an empty set has no site, not even for key 0"
        );
        for k in 1..=5 {
            l.put(k * 16, k as u32 + 100);
        }
        assert_eq!(l.get(16), None, "the least recent of five was dropped");
        for k in 2..=5 {
            assert_eq!(l.get(k * 16), Some(k as u32 + 100));
        }
    }

    #[test]
    fn goroutine_infos_are_found_by_number_also_past_a_wrap() {
        let mut reg = Registry::new(1000);
        let info = |parent| GoroutineInfo {
            created_at: 0,
            parent,
            finished: false,
        };
        let tids = [7, 8, u32::MAX - 1, u32::MAX, 0, 1, 9];
        for (k, &tid) in tids.iter().enumerate() {
            reg.add_info(tid, info(k as u32));
        }
        for (k, &tid) in tids.iter().enumerate() {
            assert_eq!(reg.info(tid).map(|i| i.parent), Some(k as u32), "tid {tid}");
        }
        assert!(reg.info(2).is_none());
        reg.finish(u32::MAX);
        assert!(reg.info(u32::MAX).unwrap().finished);
        assert!(!reg.info(0).unwrap().finished);
        assert_eq!(reg.kept().0, tids.len());
    }

    #[test]
    fn growing_cache_grows_under_misses_and_keeps_answering() {
        let mut c: GrowingCache<u64, u32> = GrowingCache::new();
        let mut made = 0;
        for round in 0..3 {
            for k in 1..=2000u64 {
                let v = c.get_or(k, k.wrapping_mul(0x9E37_79B9_7F4A_7C15), || {
                    made += 1;
                    k as u32
                });
                assert_eq!(v, k as u32, "round {round}");
            }
        }
        assert!(
            made < 6000,
            "some lookups hit once the cache grew ({made} misses)"
        );
    }
}
