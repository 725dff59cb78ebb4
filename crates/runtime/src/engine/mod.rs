//! The race-detection engine: plain Rust, driven by Go's event vocabulary.
//!
//! # Algorithm
//! Happens-before by vector clocks, FastTrack-style (Flanagan & Freund, PLDI 2009):
//! every goroutine has a vector clock ([`clock`]); every past access to a byte is
//! remembered with the epoch `(index, time)` of its goroutine ([`shadow`]); an access
//! races with a remembered one exactly when they touch a common byte, at least one is a
//! write, not both are atomic, and the remembered epoch is not known to the accessing
//! goroutine's clock. Synchronisation moves clocks through sync objects ([`sync`]):
//! release copies or merges the goroutine's clock into the object at an address,
//! acquire joins it back. A goroutine's own time advances after every release, so
//! accesses after a release are not covered by it.
//!
//! # What is never lost
//! * Shadow cells keep every record that could still race (no eviction; see `shadow`).
//! * Clock indexes are reused only under a rule that cannot order unrelated goroutines,
//!   and report numbers are never reused (see `goroutine`).
//! * Times never wrap: a goroutine whose time runs out moves to a fresh index.
//! * Every record carries an interned stack ([`stack`]), so both stacks of a race are
//!   always printed, however old the earlier access is.
//!
//! # Paths of an access, cheapest first
//! 1. The same-epoch check, inlined in each entry point: a record of the goroutine's
//!    current epoch already covers the bytes and kind (lock-free loads, `shadow`).
//! 2. A remembered update (`goroutine::UpdateMemo`): the goroutine made an update from
//!    exactly this cell's words, for this site and bytes, at this clock stamp; the cell
//!    takes the same new words with one CAS. Exact because an update is a function of
//!    the words, the access and the clock, and the stamp changes with every clock
//!    change. At another stamp, an update of a cell holding only the goroutine's own
//!    records (of its index, since it took it) is replayed with the times shifted
//!    (`shadow::OwnTransition`): such a record is always known, and of the current
//!    epoch only if its time is now, so the update depends on no other time. Other
//!    records the clock knows and the update kept must be the very same words.
//! 3. The word-level update of an inline cell under its lock (`shadow::Cell::try_own`,
//!    `try_widen`, `try_inline`), or of a spilled list in place (`try_spilled`).
//! 4. The general update on the decoded list (`shadow::apply`), which also finds races.
//!
//! # Invariants
//! * A goroutine context is used by one thread at a time; its `Local` part is touched
//!   only by that thread, and so is its clock (other threads read only what each change
//!   of it publishes: the epoch, the length and the number of holes).
//! * Lock order: registry → sync shard → shadow cell → report,
//!   and the list of races in flight last.
//!   No lock is held while calling the host, except the report lock (reports are
//!   printed one at a time, whole).

pub mod chunked;
pub mod clock;
pub mod goroutine;
pub mod heap_sites;
pub mod interner;
pub mod json;
pub mod report;
mod reporting;
pub mod shadow;
pub mod site;
pub mod stack;
mod sweep;
pub mod sync;

use alloc::boxed::Box;
use alloc::vec::Vec;
use clock::{Epoch, MAX_TIME, Time, VClock};
use core::sync::atomic::{AtomicU64, Ordering};
use goroutine::{FrameNode, Goroutine, GoroutineInfo, Registry};
use interner::mix;
use shadow::{KIND_ATOMIC, KIND_WRITE, NewAccess, Probe, Record, Reset, Shadow, Transition};
use site::{SiteId, SiteTable};
use stack::{StackDepot, StackId};
use sync::SyncTable;

use crate::lock::SpinLock;
pub use report::{Host, Options};

/// The kind of an access: read or write, plain or atomic.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Kind(pub u8);

impl Kind {
    pub const READ: Kind = Kind(0);
    pub const WRITE: Kind = Kind(KIND_WRITE);
    pub const ATOMIC_READ: Kind = Kind(KIND_ATOMIC);
    pub const ATOMIC_WRITE: Kind = Kind(KIND_ATOMIC | KIND_WRITE);
}

/// How an atomic operation synchronises (Go's memory model, as TSan implements it).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum AtomicSync {
    /// Loads and failed compare-and-swaps.
    Acquire,
    /// Stores.
    Release,
    /// Read-modify-writes and successful compare-and-swaps.
    AcquireRelease,
}

pub struct Engine<H: Host> {
    pub host: H,
    pub opts: Options,
    shadow: Shadow,
    stacks: StackDepot,
    sites: SiteTable,
    syncs: SyncTable,
    registry: SpinLock<Registry>,
    report: SpinLock<report::ReportState>,
    report_count: AtomicU64,
    /// The previous accesses `(site, time)` of races found and not yet named: a sweep
    /// must not forget the owner of a record that a race took out of the shadow before
    /// its report named it (see `sweep`).
    in_flight: SpinLock<Vec<(SiteId, Time)>>,
    /// Contexts of ended goroutines, made like new ([`Goroutine::recycle`]) and kept for
    /// the next ones: a program that starts goroutines by the thousand (fan-out/in) then
    /// reuses their grown buffers instead of allocating and growing them each time.
    #[allow(clippy::vec_box)] // Go holds the contexts by address: they must not move
    spare_goroutines: SpinLock<Vec<Box<Goroutine>>>,
    max_time: Time,
}

/// At most this many ended goroutines' contexts are kept for reuse (a program that
/// starts goroutines a thousand at a time then reuses nearly all: GoroutineChurn
/// 999M -> 876M instructions against a pool of 64), each only if it keeps at most
/// [`SPARE_KEPT_BYTES`] of buffers: at most 16 MB in all, about 2 MB in GoroutineChurn.
const SPARE_GOROUTINES: usize = 1024;
const SPARE_KEPT_BYTES: usize = 16 << 10;

/// Ranges of at most this many bytes (three cells) get `access_range`'s inline check.
const SMALL_RANGE: usize = 16;

/// The byte mask of `[a, hi)` within its 8-byte cell (`hi` at most the cell's end).
#[inline]
fn cell_mask(a: usize, hi: usize) -> u8 {
    (((1u16 << (hi - a)) - 1) << (a & 7)) as u8
}

/// Ranges from this many bytes are remembered once walked ([`Engine::range_seen`]):
/// shorter ones cost less to walk than to remember.
const RANGE_SEEN_MIN: usize = 1024;

/// What a long range's walk keeps from cell to cell past the same-epoch check.
#[derive(Default)]
struct RangeWalk {
    /// The access's site, computed at the first cell that needs it.
    site: Option<SiteId>,
    /// The last updates of whole cells, the latest first: the next whole cells, written
    /// together before, usually hold the same words as one of them and take the same
    /// update ([`shadow::Cell::replay`]); a fill of an empty cell is one too (fresh
    /// memory, e.g. the half of a grown slice that `growslice` copied without
    /// instrumenting the copy). More than one, because neighbouring cells alternate
    /// between a few shapes: a slice of pairs appended and extended by different
    /// statements (regexp's parser: three in four cells that missed the latest update
    /// matched one of the three before it).
    made: [Option<Transition>; RECENT_UPDATES],
}

/// How many whole-cell updates a long range's walk keeps for replay.
const RECENT_UPDATES: usize = 4;

impl RangeWalk {
    /// The latest whole-cell update, which the tight replay loop tries.
    fn latest(&self) -> Option<&Transition> {
        self.made[0].as_ref()
    }

    /// Remembers `t` as the latest update (the oldest one is forgotten).
    fn remember(&mut self, t: Transition) {
        self.made.copy_within(0..RECENT_UPDATES - 1, 1);
        self.made[0] = Some(t);
    }

    /// Replays on `cell` (the shadow of `base`, a whole-cell access) one of the kept
    /// updates past the first `skip` (which the caller tried already), and makes it the
    /// latest.
    fn replay_older(
        &mut self,
        shadow: &shadow::Shadow,
        cell: &shadow::Cell,
        base: usize,
        skip: usize,
    ) -> bool {
        for i in skip..RECENT_UPDATES {
            let Some(t) = self.made[i] else {
                return false;
            };
            if t.fills() {
                if cell.word0() != 0 {
                    continue;
                }
                // Before the record exists, as in `Engine::fill_fresh`.
                shadow.mark_dirty(base);
            }
            if cell.replay(&t) {
                self.made[..=i].rotate_right(1);
                return true;
            }
        }
        false
    }
}

/// The racing pair found by an access, reported after the cell lock is dropped.
struct Race<'e> {
    cell: usize,
    cur_mask: u8,
    cur_kind: u8,
    cur_site: SiteId,
    prev: Record,
    /// Listed in `in_flight` until the previous access is named (or the race is dropped
    /// unreported).
    _in_flight: InFlight<'e>,
}

struct InFlight<'e> {
    list: &'e SpinLock<Vec<(SiteId, Time)>>,
    entry: (SiteId, Time),
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut list = self.list.lock();
        if let Some(k) = list.iter().position(|&e| e == self.entry) {
            list.swap_remove(k);
        }
    }
}

impl<H: Host> Engine<H> {
    /// An engine whose shadow lives at `shadow_offset` (see `shadow::SHADOW_OFFSET`) and
    /// whose goroutines change index when their time reaches `max_time`.
    pub fn new(host: H, opts: Options, shadow_offset: usize, max_time: Time) -> Self {
        assert!(
            H::FIXED_SHADOW_OFFSET.is_none_or(|fixed| fixed == shadow_offset),
            "the host fixes another shadow offset"
        );
        Engine {
            host,
            opts,
            shadow: Shadow::new(shadow_offset),
            stacks: StackDepot::new(),
            sites: SiteTable::new(),
            syncs: SyncTable::new(),
            registry: SpinLock::new(Registry::new(max_time.min(MAX_TIME))),
            report: SpinLock::new(report::ReportState::default()),
            report_count: AtomicU64::new(0),
            in_flight: SpinLock::new(Vec::new()),
            spare_goroutines: SpinLock::new(Vec::new()),
            max_time: max_time.min(MAX_TIME),
        }
    }

    // ----- goroutines -------------------------------------------------------------------

    /// The context `__tsan_init` returns: report number 0, the parent of the main goroutine.
    pub fn new_root(&self) -> *const Goroutine {
        self.create(None, 0)
    }

    /// `go` statement: a child of `parent` created at `pc`; the parent's past happens
    /// before everything the child does.
    pub fn go_start(&self, parent: Option<&Goroutine>, pc: usize) -> *const Goroutine {
        self.create(parent, pc)
    }

    fn create(&self, parent: Option<&Goroutine>, pc: usize) -> *const Goroutine {
        let created_at = match parent {
            Some(p) if pc != 0 => {
                let prefix = self.prefix_stack(p);
                self.stacks.intern(prefix, pc)
            }
            Some(p) => self.prefix_stack(p),
            None => 0,
        };
        // Allocated before the registry lock, which goroutines starting and ending on
        // other threads wait for (GoroutineChurn spent a tenth of its time spinning).
        let spare = self.spare_goroutines.lock().pop();
        let mut g = spare.unwrap_or_else(|| Box::new(Goroutine::unassigned()));
        let mut clock = g.take_clock();
        match parent {
            Some(p) => clock.clone_from(&p.clock().clock),
            None => clock = VClock::new(),
        }
        let mut reg = self.registry.lock();
        let tid = reg.next_tid;
        reg.next_tid = reg.next_tid.wrapping_add(1);
        let idx = reg.alloc_index(tid, &mut clock);
        reg.add_info(
            tid,
            GoroutineInfo {
                created_at,
                parent: parent.map_or(0, |p| p.tid),
                finished: false,
            },
        );
        g.assign(tid, idx, clock);
        let g = Box::into_raw(g) as *const Goroutine;
        // SAFETY: `g` is fresh and valid.
        unsafe { reg.add_live(g) };
        drop(reg);
        if let Some(p) = parent {
            self.tick(p);
        }
        g
    }

    /// The goroutine is done; its context is freed. Ending synchronises with nothing.
    ///
    /// # Safety
    /// `g` must come from `go_start`/`new_root` of this engine and not be used again.
    pub unsafe fn go_end(&self, g: *const Goroutine) {
        {
            let mut reg = self.registry.lock();
            // SAFETY: the caller guarantees `g` is a live context of this engine.
            let gr = unsafe { &*g };
            // SAFETY: `g` is live (caller's contract).
            unsafe { reg.remove_live(g) };
            let st = gr.clock();
            let last = st.clock.get(st.idx);
            // Times are ticked after each release, so nothing but this goroutine's own
            // records can carry its final time; without any, the time before is final.
            let recorded = gr.local().recorded_at;
            let last = if recorded == last { last } else { last - 1 };
            reg.retire_index(st.idx, last, recorded);
            if reg.finish(gr.tid) {
                self.sweep(&mut reg);
            }
        }
        // SAFETY: `g` was made by Box::into_raw in `create` and is no longer referenced
        // by the registry.
        let mut g = unsafe { Box::from_raw(g as *mut Goroutine) };
        // Recycled only when there is room (a full pool would waste the work), and freed
        // outside the lock.
        if self.spare_goroutines.lock().len() < SPARE_GOROUTINES
            && g.kept_bytes() <= SPARE_KEPT_BYTES
        {
            g.recycle();
            let mut spare = self.spare_goroutines.lock();
            if spare.len() < SPARE_GOROUTINES {
                spare.push(g);
            }
        }
    }

    /// Advances `g`'s own time after a release; moves it to a fresh index when the time
    /// runs out (nothing is reset, see `goroutine`).
    fn tick(&self, g: &Goroutine) {
        let t = g.clock().epoch().time();
        if t + 1 < self.max_time {
            g.set_own_time(t + 1);
            return;
        }
        self.tick_exhausted(g);
    }

    /// [`Engine::tick`] of a goroutine whose time ran out (out of line: its frame made
    /// every tick save six registers).
    #[cold]
    #[inline(never)]
    fn tick_exhausted(&self, g: &Goroutine) {
        let mut reg = self.registry.lock();
        self.tick_locked(&mut reg, g);
    }

    fn tick_locked(&self, reg: &mut Registry, g: &Goroutine) {
        let st = g.clock();
        let t = st.clock.get(st.idx);
        if t + 1 < reg.max_time {
            g.set_own_time(t + 1);
            return;
        }
        let mut clock = st.clock.clone();
        let new_idx = reg.alloc_index(g.tid, &mut clock);
        reg.retire_exhausted(st.idx, t);
        g.move_to(new_idx, clock);
        let l = g.local();
        l.recorded_at = 0;
        // Cached sites name the old index.
        l.leaf_cache.clear();
        l.own_sites.clear();
        l.update_memo.clear();
        for node in l.nodes.iter_mut().chain(l.alts.iter_mut()) {
            node.leaves = Default::default();
        }
    }

    // ----- call stacks ------------------------------------------------------------------

    #[inline]
    pub fn func_enter(&self, g: &Goroutine, pc: usize) {
        let pcs = &mut g.local().pcs;
        if pcs.len() == pcs.capacity() {
            return push_grown(pcs, pc);
        }
        // Not `push`: its inlined growth path made every call save three registers
        // (the full stack goes out of line, as a tail call).
        // SAFETY: there is room for one more element (just checked), and `pc` is
        // written before the length covers it.
        unsafe {
            pcs.as_mut_ptr().add(pcs.len()).write(pc);
            pcs.set_len(pcs.len() + 1);
        }
    }

    #[inline]
    pub fn func_exit(&self, g: &Goroutine) {
        let l = g.local();
        l.pcs.pop();
        if l.valid > l.pcs.len() {
            l.valid = l.pcs.len();
        }
    }

    /// The interned id of `g`'s shadow call stack (without the access pc). Stacks
    /// deeper than [`stack::MAX_DEPTH`] keep their outermost frames and a marker for the
    /// rest, so deep recursion does not intern a new stack per level.
    fn prefix_stack(&self, g: &Goroutine) -> StackId {
        let l = g.local();
        let depth = l.pcs.len();
        let n = depth.min(stack::MAX_DEPTH);
        if l.nodes.len() < n {
            l.nodes.resize(n, FrameNode::default());
            l.alts.resize(n, FrameNode::default());
        }
        let mut parent = if l.valid == 0 {
            0
        } else {
            l.nodes[l.valid - 1].id
        };
        for d in l.valid..n {
            let pc = if d == stack::MAX_DEPTH - 1 && depth > stack::MAX_DEPTH {
                stack::ELIDED_PC
            } else {
                l.pcs[d]
            };
            if !l.reuse_node(d, parent, pc) {
                l.alts[d] = l.nodes[d];
                let hash = mix(pc as u64 ^ (parent as u64) << 40);
                let id = l
                    .node_cache
                    .get_or((parent, pc), hash, || self.stacks.intern(parent, pc));
                l.nodes[d] = FrameNode {
                    parent,
                    pc,
                    id,
                    leaves: Default::default(),
                };
            }
            parent = l.nodes[d].id;
        }
        // The last slot depends on the depth (marker or frame): always re-check it.
        l.valid = n.min(stack::MAX_DEPTH - 1);
        parent
    }

    /// The site of an access of `kind` at `pc` by `g`: its clock index, the kind and the
    /// interned stack with `pc` on top. The cached cases are inlined into the slow paths
    /// (whose frames are already set up); the rest is out of line.
    #[inline(always)]
    fn access_site(&self, g: &Goroutine, pc: usize, kind: u8) -> SiteId {
        match self.cached_site(g, pc, kind) {
            Some(site) => site,
            None => self.intern_site(g, pc, kind),
        }
    }

    /// [`Engine::access_site`] from the top frame's last sites, if it is there.
    #[inline(always)]
    fn cached_site(&self, g: &Goroutine, pc: usize, kind: u8) -> Option<SiteId> {
        // pcs are user-space addresses (< 2^47): the kind fits above them.
        let key = pc | (kind as usize) << 56;
        let l = g.local();
        let depth = l.pcs.len();
        // One call since the stack was last interned (a function called in a loop): the
        // node kept at its depth, or the one before, is likely the same call again.
        if depth == l.valid + 1 && depth < stack::MAX_DEPTH && depth <= l.nodes.len() {
            let d = l.valid;
            let parent = d.checked_sub(1).map_or(0, |p| l.nodes[p].id);
            if l.reuse_node(d, parent, l.pcs[d]) {
                l.valid = depth;
            }
        }
        // The top node current: its last site is this one if the access is the same.
        if let Some(site) = current_top(l).and_then(|n| n.leaves.get(key)) {
            l.own_sites.insert(site, kind);
            return Some(site);
        }
        None
    }

    /// [`Engine::access_site`] past [`Engine::cached_site`] (which every caller asks
    /// first): interns what is new.
    #[inline(never)]
    fn intern_site(&self, g: &Goroutine, pc: usize, kind: u8) -> SiteId {
        let key = pc | (kind as usize) << 56;
        // Most calls find the stack's nodes all current (the access is new, not the
        // stack): its id is the top node's, without the walk, and `cached_site` has
        // looked for the access among the node's sites already.
        let (prefix, new_top) = match current_top(g.local()) {
            Some(top) => (top.id, false),
            None => (self.prefix_stack(g), true),
        };
        let l = g.local();
        let depth = l.pcs.len().min(stack::MAX_DEPTH);
        if new_top
            && let Some(site) = depth
                .checked_sub(1)
                .and_then(|d| l.nodes[d].leaves.get(key))
        {
            l.own_sites.insert(site, kind);
            return site;
        }
        let hash = mix(key as u64 ^ (prefix as u64) << 40);
        let site = l.leaf_cache.get_or((prefix, key), hash, || {
            let stack = self.stacks.intern(prefix, pc);
            self.sites.intern(g.clock().idx, kind, stack)
        });
        if let Some(top) = depth.checked_sub(1).map(|d| &mut l.nodes[d]) {
            top.leaves.put(key, site);
        }
        l.own_sites.insert(site, kind);
        site
    }

    // ----- memory accesses ----------------------------------------------------------------

    /// What the same-epoch check of an access of `kind` by `g` compares with: its
    /// current epoch (the time field ready-made) and its site cache.
    #[inline(always)]
    fn probe<'a>(&'a self, g: &'a Goroutine, kind: u8) -> Probe<'a> {
        let st = g.clock();
        Probe::with_field(
            &self.sites,
            &g.local().own_sites,
            st.epoch(),
            st.time_field,
            kind,
        )
    }

    /// The shadow cell of `addr` (covered), for the inlined same-epoch checks: at the
    /// host's fixed offset if it has one (see [`Host::FIXED_SHADOW_OFFSET`]).
    #[inline(always)]
    fn fast_cell(&self, addr: usize) -> &shadow::Cell {
        match H::FIXED_SHADOW_OFFSET {
            Some(offset) => self.shadow.cell_at(offset, addr),
            None => self.shadow.cell(addr),
        }
    }

    /// A 1-byte (Go passes start addresses only) plain access. Always inlined, so that
    /// each entry point's constant `kind` folds into the check.
    #[inline(always)]
    pub fn access(&self, g: &Goroutine, addr: usize, pc: usize, kind: Kind) {
        if self.shadow.covers(addr) {
            // SAFETY: just checked.
            unsafe { self.access_announced(g, addr, pc, kind) }
        }
    }

    /// [`Engine::access`] without the check that `addr` has shadow, which Go has made
    /// already: its `racecalladdr` (race_amd64.s) calls the runtime only for addresses in
    /// the heap arenas or the data segment it announced through `__tsan_map_shadow`, and
    /// every arena is announced before any of its memory is handed out. The check costs
    /// a quarter of a same-epoch hit above the instrumentation floor.
    ///
    /// # Safety
    /// `addr` lies in a range announced through [`Engine::map_shadow`].
    #[inline(always)]
    pub unsafe fn access_announced(&self, g: &Goroutine, addr: usize, pc: usize, kind: Kind) {
        let cell = self.fast_cell(addr);
        if !cell.quick_hit_bytes(&self.probe(g, kind.0), shadow::byte_field(addr)) {
            self.access_slow_byte(g, addr, pc, kind.0);
        }
    }

    /// [`Engine::access_slow`] for a 1-byte access at `addr`. Its arguments are the
    /// entry point's own, in the same registers, so the inlined check keeps nothing
    /// else alive for the call (two registers fewer: no callee-saved register to save).
    #[cold]
    #[inline(never)]
    fn access_slow_byte(&self, g: &Goroutine, addr: usize, pc: usize, kind: u8) {
        self.access_slow(g, addr & !7, 1 << (addr & 7), kind, pc);
    }

    /// The access to the bytes `need` (a record word's mask field) of the cell of
    /// `addr`: the quick same-epoch check inline, the rest out of line. `mask` gives the
    /// same bytes as a byte mask, computed only on a miss (from the address: deriving it
    /// from `need` keeps `need` alive in one more register on every hit).
    ///
    /// # Safety
    /// `addr` lies in a range announced through [`Engine::map_shadow`].
    #[inline(always)]
    unsafe fn access_in_cell(
        &self,
        g: &Goroutine,
        addr: usize,
        need: u64,
        mask: impl FnOnce() -> u8,
        pc: usize,
        kind: Kind,
    ) {
        let cell = self.fast_cell(addr);
        let probe = self.probe(g, kind.0);
        if !cell.quick_hit_bytes(&probe, need) {
            self.access_slow(g, addr & !7, mask(), kind.0, pc);
        }
    }

    /// The access of an atomic operation on `[addr, addr+size)`: an aligned word of
    /// at most 8 bytes lies in one cell, so it takes `access`'s path with that cell's
    /// bytes (the range path would look for more cells); anything else is a range.
    fn access_atomic(&self, g: &Goroutine, addr: usize, size: usize, pc: usize, kind: Kind) {
        let end = addr.wrapping_add(size);
        if size == 0 || end.wrapping_sub(1) & !7 != addr & !7 || !self.shadow.covers(addr) {
            self.access_range(g, addr, size, pc, kind);
            return;
        }
        // SAFETY: `covers(addr)` just held.
        unsafe {
            let mask = || cell_mask(addr, end);
            self.access_in_cell(g, addr, shadow::range_field(addr, end), mask, pc, kind)
        }
    }

    /// `access` past the quick same-epoch check (out of line, so the fast path stays
    /// small): the rest of the check, then the update.
    #[cold]
    #[inline(never)]
    fn access_slow(&self, g: &Goroutine, base: usize, mask: u8, kind: u8, pc: usize) {
        let w0 = self.shadow.cell(base).word0();
        let fresh = w0 == 0;
        let site = if fresh {
            self.access_site(g, pc, kind)
        } else {
            // A remembered update first: it is only found for a cell that was no hit.
            let cached = self.cached_site(g, pc, kind);
            if let Some(site) = cached
                && (kind == Kind::READ.0
                    && shadow::Cell::spilled_word(w0)
                    && self.read_spilled(g, base, mask, site)
                    || self.replayed_update(g, base, mask, kind, site))
            {
                return;
            }
            if self.slow_path_hit(g, base, mask, kind) {
                return;
            }
            cached.unwrap_or_else(|| self.intern_site(g, pc, kind))
        };
        // Fresh memory (most slow-path accesses of compress/flate's tests) tries the
        // one-CAS fill first; a cell seen non-empty goes straight to the update.
        let race = if fresh {
            self.access_cell_slow(g, base, mask, kind, site, &mut None)
        } else {
            self.update_cell(g, base, mask, kind, site, &mut None)
        };
        if let Some(race) = race {
            self.report_race(g, race);
        }
    }

    /// A plain read of a spilled cell decided in place ([`shadow::Cell::read_spilled`]).
    #[inline(always)]
    fn read_spilled(&self, g: &Goroutine, base: usize, mask: u8, site: SiteId) -> bool {
        let cell = self.shadow.cell(base);
        let st = g.clock();
        let a = NewAccess {
            epoch: st.epoch(),
            mask,
            kind: Kind::READ.0,
            site,
        };
        let decided = cell.read_spilled(&self.sites, &g.local().own_sites, &a, &st.clock);
        if decided {
            g.local().recorded_at = a.epoch.time();
        }
        decided
    }

    /// Whether the cell took the update the goroutine remembers for an access at `site`
    /// to `mask` (see [`goroutine::UpdateMemo`]): one CAS when the cell holds the words
    /// that update started from.
    #[inline(always)]
    fn replayed_update(
        &self,
        g: &Goroutine,
        base: usize,
        mask: u8,
        kind: u8,
        site: SiteId,
    ) -> bool {
        let st = g.clock();
        let l = g.local();
        let Some(e) = l.update_memo.get(site, mask) else {
            return false;
        };
        let cell = self.shadow.cell(base);
        let replayed = if e.stamp == st.stamp {
            cell.replay(&e.made)
        } else {
            if e.own_form().is_none() {
                self.derive_own_form(g, e, &l.own_sites, kind, mask);
            }
            let now = st.epoch().time();
            let own = e.own_form().flatten().copied();
            match own.and_then(|t| cell.replay_own(&t, now, st.born)) {
                // The update just made, with its times, holds at this stamp: the next
                // cells holding the same words replay it without the time classes.
                Some(made) => {
                    e.restamp(made, st.stamp, now);
                    true
                }
                None => false,
            }
        };
        if !replayed {
            return false;
        }
        let merged = e.merged;
        l.recorded_at = st.epoch().time();
        if merged != 0 {
            l.own_sites.insert(merged, kind);
        }
        true
    }

    /// [`goroutine::MemoEntry::derive_own_form`] for `g`'s access of `kind` to `mask`,
    /// `own` its site cache (out of line: the context takes registers the replay needs).
    #[cold]
    #[inline(never)]
    fn derive_own_form(
        &self,
        g: &Goroutine,
        e: &mut goroutine::MemoEntry,
        own: &shadow::OwnSites,
        kind: u8,
        mask: u8,
    ) {
        let st = g.clock();
        e.derive_own_form(&shadow::Deriving {
            own,
            index: st.idx,
            born: st.born,
            kind,
            mask,
            sites: &self.sites,
            clock: &st.clock,
        })
    }

    /// The first access to an empty cell: its record, with one CAS; returns the record
    /// word, or `None` if the cell is no longer empty. The page is marked dirty either way.
    fn fill_fresh(&self, g: &Goroutine, base: usize, mask: u8, site: SiteId) -> Option<u64> {
        let time = g.clock().epoch().time();
        // Before the record exists, so that a reset that finds no mark finds no record.
        self.shadow.mark_dirty(base);
        let word = shadow::record_word(site, mask, time);
        let filled = self.shadow.cell(base).try_fill_empty(word);
        if filled {
            g.local().recorded_at = time;
        }
        filled.then_some(word)
    }

    /// The whole same-epoch check of `quick_hit`'s misses, with the site table, after
    /// teaching the goroutine's site cache the cell's own sites; the call is made only
    /// when that can change the answer.
    #[inline(always)]
    fn slow_path_hit(&self, g: &Goroutine, base: usize, mask: u8, kind: u8) -> bool {
        let time = g.clock().epoch().time();
        self.shadow
            .cell(base)
            .worth_a_second_look(&g.local().own_sites, time)
            && self.second_look(g, base, mask, kind)
    }

    #[inline(never)]
    fn second_look(&self, g: &Goroutine, base: usize, mask: u8, kind: u8) -> bool {
        let cell = self.shadow.cell(base);
        if cell.word0() == 0 {
            return false;
        }
        let own = &mut g.local().own_sites;
        let epoch = g.clock().epoch();
        if cell.is_spilled() {
            return cell.fast_path_hit(&Probe::new(&self.sites, own, epoch, kind), mask);
        }
        // Inline: once the refill taught the goroutine's cache a site that can hit, the
        // quick check is exact. Without a new site, it already was.
        own.refill(cell, &self.sites, epoch)
            && cell.quick_hit(&Probe::new(&self.sites, own, epoch, kind), mask)
    }

    /// An access to `[addr, addr+size)`; at most one race is reported per call, as TSan.
    /// Small ranges (struct copies: most calls) whose cells are all same-epoch hits are
    /// decided here without a frame; everything else goes to `access_range_long`.
    #[inline(always)]
    pub fn access_range(&self, g: &Goroutine, addr: usize, size: usize, pc: usize, kind: Kind) {
        if self.shadow.covers_span(addr, addr.saturating_add(size)) {
            // SAFETY: just checked.
            unsafe { self.access_range_announced(g, addr, size, pc, kind) }
        } else {
            self.access_range_long(g, addr, size, pc, kind);
        }
    }

    /// [`Engine::access_range`] for a range whose start Go's `racecalladdr` admitted
    /// (see [`Engine::access_announced`]): a small range lies within that one object, so
    /// in the same announced range; longer ones are checked cell by cell as always.
    ///
    /// # Safety
    /// `addr` lies in a range announced through [`Engine::map_shadow`], and so does
    /// `addr + size - 1` when `size` is at most `SMALL_RANGE` (16).
    #[inline(always)]
    pub unsafe fn access_range_announced(
        &self,
        g: &Goroutine,
        addr: usize,
        size: usize,
        pc: usize,
        kind: Kind,
    ) {
        if size.wrapping_sub(1) < SMALL_RANGE {
            let probe = self.probe(g, kind.0);
            // Every cell's bytes at once; each step shifts the next cell's into place.
            let mut masks = shadow::small_range_masks(addr, size);
            // Stepped by pointer: the shadow's base is not reloaded after each cell's
            // (acquiring) loads.
            let mut cell: *const shadow::Cell = self.fast_cell(addr);
            loop {
                let need = shadow::bytes_field(masks as u8);
                // SAFETY: the cells of `[addr, addr+size)` are consecutive and all have
                // shadow (the caller's contract); `masks` ends within them.
                if !unsafe { &*cell }.quick_hit_bytes(&probe, need) {
                    break;
                }
                masks >>= 8;
                if masks as u8 == 0 {
                    return;
                }
                cell = cell.wrapping_add(1);
            }
        }
        self.access_range_long(g, addr, size, pc, kind);
    }

    /// [`Engine::access_range`] past the small-range check: a range the goroutine
    /// covered in this epoch ([`Engine::range_seen`]) is a same-epoch hit as a whole;
    /// the rest is walked cell by cell, and remembered.
    #[inline(never)]
    fn access_range_long(&self, g: &Goroutine, addr: usize, size: usize, pc: usize, kind: Kind) {
        if size < RANGE_SEEN_MIN {
            self.access_range_walk(g, addr, size, pc, kind);
            return;
        }
        let end = addr.saturating_add(size);
        let covered = self.shadow.covers_span(addr, end);
        if covered && self.range_seen(g, addr, end, kind.0) {
            return;
        }
        self.access_range_walk(g, addr, size, pc, kind);
        if covered {
            let seen = &mut g.local().ranges_seen;
            let i = seen.next;
            self.shadow.mark_seen(addr, end);
            seen.entries[i] = goroutine::RangeSeen {
                lo: addr,
                hi: end,
                epoch: g.clock().epoch().0,
                generation: self.shadow.generation(addr, end),
                kind: kind.0,
            };
            seen.next = (i + 1) % goroutine::RANGES_SEEN;
        }
    }

    /// Whether `g` covered all of `[lo, hi)` (covered by shadow) with records of its
    /// current epoch whose kind covers `kind`, and they are all still there: then every
    /// cell of it is a same-epoch hit, and the access changes nothing. A walk of a range
    /// leaves a record of the walking goroutine's epoch on each of its bytes (races are
    /// reported and recorded all the same); such a record leaves the cell only through
    /// an access racing with it, which reported (the same-epoch argument of the module
    /// doc of `shadow`), through the goroutine's own accesses of the same epoch, which
    /// keep a record of it that covers at least as much, or through a reset (the memory
    /// freed or allocated again), which changes the pages' generation. A copy loop
    /// between synchronisations (micro/SliceCopy copies one megabyte 1600 times) then
    /// costs a few page counters per copy instead of a scan of its shadow.
    #[inline]
    fn range_seen(&self, g: &Goroutine, lo: usize, hi: usize, kind: u8) -> bool {
        let epoch = g.clock().epoch().0;
        g.local().ranges_seen.entries.iter().any(|s| {
            s.epoch == epoch
                && s.lo <= lo
                && hi <= s.hi
                && shadow::covers(s.kind, kind)
                && self.shadow.generation(s.lo, s.hi) == s.generation
        })
    }

    /// The cell-by-cell walk of [`Engine::access_range_long`]. Same-epoch hits are
    /// decided here; other cells go to `range_cell_slow`.
    fn access_range_walk(&self, g: &Goroutine, addr: usize, size: usize, pc: usize, kind: Kind) {
        if size == 0 {
            return;
        }
        let end = addr.saturating_add(size);
        let epoch = g.clock().epoch();
        // Whole ranges within one mapped span need no per-cell bounds check.
        let covered = self.shadow.covers_span(addr, end);
        let mut walk = RangeWalk::default();
        // A word 0 already found to be a same-epoch hit for a whole cell: the cells of a
        // range written by one access carry the same word, so the rest compare equal.
        let mut full_hit = 0u64;
        let mut a = addr;
        while a < end {
            if full_hit != 0 && covered {
                // The common case of long ranges (copies): a tight scan of whole cells.
                a = self.shadow.skip_equal_word0(a, end, full_hit);
                if a >= end {
                    return;
                }
            }
            if covered && let Some(t) = walk.latest() {
                a = self.shadow.replay_run(t, a, end);
                if a >= end {
                    return;
                }
            }
            let base = a & !7;
            let hi = end.min(base + 8);
            if covered || self.shadow.covers(a) {
                let mask = cell_mask(a, hi);
                let cell = self.shadow.cell(a);
                // A cell holding exactly the words a recent whole cell's update started
                // from is no hit either (that one was decided exactly), so it is tried
                // first: fresh memory then costs one CAS per cell.
                // (A covered range tried the latest in `replay_run` already.)
                if mask == 0xff && full_hit != 0 && cell.word0() == full_hit
                    || mask == 0xff && walk.replay_older(&self.shadow, cell, base, covered as usize)
                {
                    // A hit, or updated as the previous whole cell was.
                } else {
                    // `slow_path_hit` only adds what `quick_hit` cannot see.
                    let quick = cell.quick_hit(
                        &Probe::new(&self.sites, &g.local().own_sites, epoch, kind.0),
                        mask,
                    );
                    if !quick && !self.slow_path_hit(g, base, mask, kind.0) {
                        if self.range_cell_slow(g, base, mask, kind.0, pc, &mut walk) {
                            // Keep updating the rest of the range, without more reports.
                            let site = walk.site.unwrap_or(0);
                            self.update_range_quietly(g, hi, end, kind.0, site);
                            return;
                        }
                    } else if mask == 0xff
                        && cell.word0_hits(&Probe::new(
                            &self.sites,
                            &g.local().own_sites,
                            epoch,
                            kind.0,
                        ))
                    {
                        full_hit = cell.word0();
                    }
                }
            }
            a = hi;
        }
    }

    /// One cell of `access_range` past the same-epoch check; true if it reported a race.
    /// The site is computed on the first such cell of the range; the update of a whole
    /// cell is kept for the next ones to replay.
    #[cold]
    #[inline(never)]
    fn range_cell_slow(
        &self,
        g: &Goroutine,
        base: usize,
        mask: u8,
        kind: u8,
        pc: usize,
        walk: &mut RangeWalk,
    ) -> bool {
        let s = *walk
            .site
            .get_or_insert_with(|| self.access_site(g, pc, kind));
        let mut made = None;
        let race = self.access_cell_slow(g, base, mask, kind, s, &mut made);
        if mask == 0xff
            && let Some(t) = made
        {
            walk.remember(t);
        }
        match race {
            Some(race) => {
                self.report_race(g, race);
                true
            }
            None => false,
        }
    }

    fn update_range_quietly(&self, g: &Goroutine, mut a: usize, end: usize, kind: u8, s: SiteId) {
        while a < end {
            let base = a & !7;
            let hi = end.min(base + 8);
            if self.shadow.covers(a) {
                let mask = cell_mask(a, hi);
                let _ = self.access_cell_slow(g, base, mask, kind, s, &mut None);
            }
            a = hi;
        }
    }

    /// The update of one cell the same-epoch check did not decide, for an access at
    /// `site`; returns the race to report, if any.
    fn access_cell_slow(
        &self,
        g: &Goroutine,
        base: usize,
        mask: u8,
        kind: u8,
        site: SiteId,
        made: &mut Option<Transition>,
    ) -> Option<Race<'_>> {
        if let Some(word) = self.fill_fresh(g, base, mask, site) {
            *made = Some(Transition::filled(word));
            return None;
        }
        self.update_cell(g, base, mask, kind, site, made)
    }

    /// [`Engine::access_cell_slow`] on a cell found non-empty (the caller checked; should
    /// it have become empty since, the general path below writes the record). Inline
    /// cells are tried, in order, from the goroutine's site cache alone (`try_own`: its
    /// records all of the goroutine's current index, their sites cached), by widening a
    /// record of this very access point (`try_widen`), and on the decoded words
    /// (`try_inline`); the rest goes to `update_cell_general`. The access's site `site`
    /// is of `g`'s current index and in its site cache (`access_site` put it there).
    #[inline(never)]
    fn update_cell(
        &self,
        g: &Goroutine,
        base: usize,
        mask: u8,
        kind: u8,
        site: SiteId,
        made: &mut Option<Transition>,
    ) -> Option<Race<'_>> {
        let st = g.clock();
        let a = &NewAccess {
            epoch: st.epoch(),
            mask,
            kind,
            site,
        };
        let local = g.local();
        local.recorded_at = a.epoch.time();
        let cell = self.shadow.cell(base);
        if cell.is_spilled() {
            return self.update_cell_general(g, base, a);
        }
        let merges = &mut local.merges;
        let mut merged = 0;
        let mut merge = |o, om, n, nm| {
            merged = self.merged_site(merges, o, om, n, nm);
            merged
        };
        // Commonest first: every record is the goroutine's own, with its site cached (a
        // read then a write of a word, fields written from different lines).
        *made = cell
            .try_own(a, &st.clock, &local.own_sites, &mut merge)
            .or_else(|| cell.try_widen(&self.sites, a, &st.clock))
            .or_else(|| cell.try_inline(&self.sites, a, &st.clock, &mut merge));
        if let Some(t) = *made {
            // A fill is not remembered: `replay` would take it for any empty cell.
            if !t.fills() {
                let at = a.epoch.time();
                local.update_memo.put(site, mask, st.stamp, at, t, merged);
            }
            if merged != 0 {
                // The record joined was of the access's epoch and kind, so its new site
                // is of `g`'s current index and of `kind` (see `SiteTable::merge`), as
                // the cache requires. Cached, it lets the cell's next update, at a later
                // epoch, take `try_own` (nothing else would put it there unless a
                // same-epoch check missed on it).
                local.own_sites.insert(merged, a.kind);
            }
            return None;
        }
        self.update_cell_general(g, base, a)
    }

    /// The composite of sites `old` (on bytes `old_mask`) and `new` (on `new_mask`),
    /// through the goroutine's cache of recent merges (which grows for goroutines that
    /// merge many: encoding/json's output buffers). A hit is decided inline (the caller's
    /// frame is already set up); a miss asks the site table out of line.
    #[inline(always)]
    fn merged_site(
        &self,
        merges: &mut goroutine::GrowingCache<(u64, u8), SiteId>,
        old: SiteId,
        old_mask: u8,
        new: SiteId,
        new_mask: u8,
    ) -> SiteId {
        // Site ids have 28 bits: (old, new, old bytes) fill the key.
        let key = old as u64 | (new as u64) << 28 | (old_mask as u64) << 56;
        merges.get_or((key, new_mask), mix(key ^ new_mask as u64), || {
            self.merge_sites(old, old_mask, new, new_mask)
        })
    }

    #[cold]
    #[inline(never)]
    fn merge_sites(&self, old: SiteId, old_mask: u8, new: SiteId, new_mask: u8) -> SiteId {
        self.sites.merge(old, old_mask, new, new_mask)
    }

    /// [`Engine::update_cell`] for a spilled cell, a third record, or a race: out of line,
    /// so that the common updates do not pay for its frame.
    #[inline(never)]
    fn update_cell_general(&self, g: &Goroutine, base: usize, a: &NewAccess) -> Option<Race<'_>> {
        let st = g.clock();
        let local = g.local();
        let cell = self.shadow.cell(base);
        let merges = &mut local.merges;
        let mut merge = |o, om, n, nm| self.merged_site(merges, o, om, n, nm);
        let own = &local.own_sites;
        if cell.try_spilled(&self.sites, own, a, &st.clock, &mut merge, &mut local.spare) {
            return None;
        }
        // The cell may have become empty meanwhile; then a record is written here.
        self.shadow.mark_dirty(base);
        if cell.try_spill(&self.sites, a, &st.clock, &mut merge, &mut local.spare) {
            if cell.is_spilled() {
                self.shadow.mark(base);
            }
            return None;
        }
        let prev = cell.with_records(&self.sites, &mut local.scratch, &mut local.spare, |recs| {
            let race = shadow::apply(recs, a, &st.clock, &mut merge);
            if let Some(r) = race {
                // Still under the cell lock, which the record may just have left.
                self.in_flight.lock().push((r.site, r.epoch.time()));
            }
            race
        });
        if cell.is_spilled() {
            self.shadow.mark(base);
        }
        let prev = prev?;
        Some(Race {
            cell: base,
            cur_mask: a.mask,
            cur_kind: a.kind,
            cur_site: a.site,
            prev,
            _in_flight: InFlight {
                list: &self.in_flight,
                entry: (prev.site, prev.epoch.time()),
            },
        })
    }

    /// `__tsan_read_pc`-style access: `callpc` (if non-zero) is pushed as a caller frame.
    pub fn access_with_caller(
        &self,
        g: &Goroutine,
        addr: usize,
        callpc: usize,
        pc: usize,
        kind: Kind,
    ) {
        if callpc != 0 {
            self.func_enter(g, callpc);
        }
        self.access(g, addr, pc, kind);
        if callpc != 0 {
            self.func_exit(g);
        }
    }

    // ----- synchronisation ------------------------------------------------------------------

    fn mark_sync(&self, addr: usize) {
        if self.shadow.covers(addr) {
            self.shadow.cell(addr).set_has_sync();
            self.shadow.mark(addr);
        }
    }

    /// `g` acquires whatever was released at `addr`.
    pub fn acquire(&self, g: &Goroutine, addr: usize) {
        if g.local().ignore_sync > 0 {
            return;
        }
        let mut shard = self.syncs.shard(addr);
        if let Some(s) = shard.get(addr).filter(|s| !s.contained_in(g.tid)) {
            g.join_clock(s);
        }
    }

    /// Release-store: the object at `addr` holds exactly `g`'s clock.
    pub fn release(&self, g: &Goroutine, addr: usize) {
        if g.local().ignore_sync > 0 {
            return;
        }
        {
            let mut shard = self.syncs.shard(addr);
            g.release_to(shard.get_or_default(addr));
        }
        self.mark_sync(addr);
        self.tick(g);
    }

    /// Release-merge: the object at `addr` also holds `g`'s clock.
    pub fn release_merge(&self, g: &Goroutine, addr: usize) {
        if g.local().ignore_sync > 0 {
            return;
        }
        {
            let mut shard = self.syncs.shard(addr);
            let s = shard.get_or_default(addr);
            if s.contained_in(g.tid) || s.is_empty() {
                // s ⊆ g: the merge is g itself (and stays known to be contained in it).
                g.release_to(s);
            } else {
                s.join(&g.clock().clock);
            }
        }
        self.mark_sync(addr);
        self.tick(g);
    }

    /// Go's channel-slot rule: the object takes `g`'s clock, `g` acquires the old one.
    pub fn release_acquire(&self, g: &Goroutine, addr: usize) {
        if g.local().ignore_sync > 0 {
            return;
        }
        {
            let mut shard = self.syncs.shard(addr);
            let s = shard.get_or_default(addr);
            g.release_store_acquire(s);
        }
        self.mark_sync(addr);
        self.tick(g);
    }

    /// The finalizer goroutine: everything every goroutine did so far happens before it.
    pub fn acquire_global(&self, g: &Goroutine) {
        let mut all = VClock::new();
        {
            let reg = self.registry.lock();
            for (i, &t) in reg.finals().iter().enumerate() {
                if t != 0 {
                    all.set(i as u32, t);
                }
            }
            let me: *const Goroutine = g;
            for &other in &reg.live {
                if other == me {
                    continue;
                }
                // SAFETY: live goroutines are valid while the registry lock is held.
                let other = unsafe { &*other };
                let e = other.published_epoch();
                if all.get(e.index()) < e.time() {
                    all.set(e.index(), e.time());
                }
            }
        }
        g.join_clock(&all);
    }

    pub fn ignore_sync_begin(&self, g: &Goroutine) {
        g.local().ignore_sync += 1;
    }

    pub fn ignore_sync_end(&self, g: &Goroutine) {
        let l = g.local();
        l.ignore_sync = l.ignore_sync.saturating_sub(1);
    }

    pub fn ignoring_sync(&self, g: &Goroutine) -> bool {
        g.local().ignore_sync > 0
    }

    /// An atomic operation on `[addr, addr+size)`: `perform` runs inside the sync
    /// object's lock so that the value seen and the clock acquired always match, then
    /// the access is checked as an atomic access (at `pc`, called from `callerpc`),
    /// still inside it. Returns what `perform` returned (whether it wrote).
    ///
    /// The check comes after the acquire (Go's memory model: an atomic that reads from a
    /// store is ordered after it) and inside the lock, so that the shadow sees one
    /// word's atomics in the order they synchronised: each read-modify-write, knowing
    /// every earlier one, finds their records already there and covers them, and a
    /// contended word keeps one record instead of one per goroutine whose record landed
    /// late. Lock order: sync shard, then cell lock, then what a report takes (the
    /// registry, the report lock); nothing takes a shard lock while holding those.
    #[allow(clippy::too_many_arguments)]
    pub fn atomic(
        &self,
        g: &Goroutine,
        addr: usize,
        size: usize,
        callerpc: usize,
        pc: usize,
        kind: Kind,
        sync: AtomicSync,
        perform: impl FnOnce() -> bool,
    ) -> bool {
        if g.local().ignore_sync > 0 {
            return perform();
        }
        let (releases, wrote) = {
            let mut shard = self.syncs.shard(addr);
            let wrote = perform();
            let (acquires, releases) = match sync {
                AtomicSync::Acquire => (true, false),
                AtomicSync::Release => (false, true),
                AtomicSync::AcquireRelease => (true, wrote),
            };
            if releases {
                let s = shard.get_or_default(addr);
                // TSan's ReleaseAcquire for read-modify-writes: s = g = s ⊔ g. After the
                // join g ⊇ s, so s takes a copy of g (and is known to be contained in it,
                // which spares the join when g does this again).
                if acquires && !s.contained_in(g.tid) {
                    g.join_clock(s);
                }
                g.release_to(s);
            } else if let Some(s) = shard
                .get(addr)
                .filter(|s| acquires && !s.contained_in(g.tid))
            {
                g.join_clock(s);
            }
            self.func_enter(g, callerpc);
            self.access_atomic(g, addr, size, pc, kind);
            self.func_exit(g);
            (releases, wrote)
        };
        if releases {
            self.mark_sync(addr);
            self.tick(g);
        }
        wrote
    }

    // ----- heap ---------------------------------------------------------------------------------

    /// Maps shadow for program memory `[addr, addr+size)`; false if the mapping failed.
    pub fn map_shadow(&self, addr: usize, size: usize) -> bool {
        self.shadow.map(addr, size)
    }

    /// Memory `[addr, addr+size)` is (re)allocated: forget its past accesses and syncs.
    pub fn malloc(&self, addr: usize, size: usize) {
        self.forget_range(addr, size, Reset::All);
    }

    /// Memory `[addr, addr+size)` is freed. Nothing may access it until it is allocated
    /// again, and every path by which Go reuses memory (`mallocgc`, `stackalloc`, arena
    /// chunks, a goroutine's reused stack) calls `racemalloc` first, which forgets it.
    /// So only what its cells own (out-of-line lists, sync objects) is dropped now, as
    /// TSan's Go mode drops only sync objects; plain records stay until then (clearing
    /// them here too made every freed object's cold shadow be read twice), except that
    /// the shadow of large freed blocks goes back to the kernel (see
    /// `Shadow::reset_range`).
    pub fn free(&self, addr: usize, size: usize) {
        self.forget_range(addr, size, Reset::Owners);
    }

    fn forget_range(&self, addr: usize, size: usize, mode: Reset) {
        self.shadow.reset_range(addr, size, mode, |base, cell| {
            if cell.has_sync() {
                self.syncs.remove_cell(base);
            }
            cell.reset();
        });
    }

    // ----- reports --------------------------------------------------------------------------

    /// Reports printed so far (`__tsan_report_count`).
    pub fn report_count(&self) -> u64 {
        self.report_count.load(Ordering::Relaxed)
    }

    // `report_race` is in `reporting`.

    /// Internal figures for `GORACE=gorace_stats=1`, named: goroutines created, clock indexes,
    /// live goroutines, the longest live clock and its holes, sync objects, goroutines
    /// whose report data is kept (see `sweep`), cell spills, interned stacks and sites.
    pub fn stats(&self) -> [(&'static [u8], u64); 10] {
        let reg = self.registry.lock();
        let (mut longest, mut holes) = (0, 0);
        for &g in &reg.live {
            // SAFETY: live goroutines are valid under the registry lock; their clocks
            // are their threads' own, so only what they publish is read.
            let (len, h) = unsafe { &*g }.published_shape();
            longest = longest.max(len);
            holes = holes.max(h);
        }
        [
            (b"goroutines", reg.next_tid as u64),
            (b"clock_indexes", reg.indexes_in_use() as u64),
            (b"live", reg.live.len() as u64),
            (b"longest_clock", longest),
            (b"most_holes", holes),
            (b"sync_objects", self.syncs.len() as u64),
            (b"goroutines_kept", reg.kept().0 as u64),
            (b"spills", shadow::spills()),
            (b"stacks", self.stacks.len() as u64),
            (b"sites", self.sites.len() as u64),
        ]
    }

    /// Program end: the summary line and the exit status (`__tsan_fini`).
    pub fn finish_status(&self) -> i32 {
        let _state = self.report.lock();
        let n = self.report_count();
        if n > 0 {
            let mut line = Vec::new();
            line.extend_from_slice(b"Found ");
            report::push_dec(&mut line, n);
            line.extend_from_slice(b" data race(s)\n");
            self.host.write_report(&line);
            self.opts.exitcode
        } else {
            0
        }
    }

    // ----- introspection for tests --------------------------------------------------------

    pub fn sync_objects(&self) -> usize {
        self.syncs.len()
    }

    /// Whether the shadow cell of `addr` (covered) holds nothing.
    #[cfg(test)]
    pub fn shadow_cell_is_empty(&self, addr: usize) -> bool {
        self.shadow.cell(addr).is_empty()
    }

    /// Goroutines and owner entries whose report data is kept (see `sweep`).
    pub fn goroutines_kept(&self) -> (usize, usize) {
        self.registry.lock().kept()
    }

    /// Sweeps after every `n` finished goroutines from now on (tests use small `n`).
    pub fn set_sweep_after(&self, n: usize) {
        let mut reg = self.registry.lock();
        reg.sweep_after = n;
        reg.sweep_min = n;
    }

    pub fn clock_indexes_in_use(&self) -> usize {
        self.registry.lock().indexes_in_use()
    }

    pub fn epoch_of(&self, g: &Goroutine) -> Epoch {
        g.clock().epoch()
    }
}

/// A call pushed on a full shadow stack, out of line (see `Engine::func_enter`).
#[cold]
#[inline(never)]
fn push_grown(pcs: &mut Vec<usize>, pc: usize) {
    pcs.push(pc);
}

#[cfg(test)]
mod tests;

/// The node of `l`'s whole shadow stack (the top frame's), if it is current: no call
/// or return since the stack was last interned (`valid` covers it all, which it never
/// does past `MAX_DEPTH - 1`). A stack deeper than [`stack::MAX_DEPTH`] (deep
/// recursion) has the elided marker in the last slot, under the outermost frames, so
/// that node holds while those are valid and were its parent (an intern at exactly
/// `MAX_DEPTH - 1` frames leaves the last slot as it was). `None` for an empty stack.
#[inline(always)]
fn current_top(l: &goroutine::Local) -> Option<&FrameNode> {
    let depth = l.pcs.len();
    if depth <= stack::MAX_DEPTH {
        return (depth != 0 && l.valid == depth).then(|| &l.nodes[depth - 1]);
    }
    let d = stack::MAX_DEPTH - 1;
    let node = l
        .nodes
        .get(d)
        .filter(|n| l.valid == d && n.pc == stack::ELIDED_PC)?;
    (node.id != 0 && node.parent == l.nodes[d - 1].id).then_some(node)
}
