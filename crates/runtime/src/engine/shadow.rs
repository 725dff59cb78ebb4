//! Shadow memory: what is known about past accesses to each 8-byte cell of program memory.
//!
//! # Representation
//! Every aligned 8-byte *cell* of Go memory (heap arenas and data+bss) has a 16-byte
//! shadow cell at `(addr & !7) * 2 + offset` (2x program memory, as TSan), mapped lazily
//! (`MAP_NORESERVE`: untouched shadow costs nothing). A shadow cell is a list of
//! *records*, each one past access in one 64-bit word:
//!
//! ```text
//!   63..61 flags (word 0 only)  60..36 time  35..28 byte mask  27..0 site id
//! ```
//!
//! The site ([`super::site`]) names the clock index, the kind (read/write,
//! plain/atomic) and the interned stack of the access, so a record is its epoch
//! `(site.index, time)`, its bytes, its kind and its stack. Up to two records live
//! inline; more spill to an out-of-line list ([`Ext`]) that grows as needed and comes
//! back inline when it shrinks. Nothing is ever evicted for lack of room (TSan keeps
//! four records and drops others).
//!
//! # The rule (per byte, exact)
//! A new access `a` races with a recorded access `r` on a common byte when at least one
//! is a write, not both are atomic, and `r`'s epoch is not known to `a`'s goroutine clock
//! (`r` did not happen before `a`). After the check, `a` removes from every record the
//! bytes where `a` *covers* `r` — where every future access that would race with `r` also
//! races with `a` — which holds exactly when `r` happened before `a` (or was just reported
//! as racing with it) and `covers(a.kind, r.kind)`:
//! a plain write covers everything, an atomic write covers atomics, a plain read covers
//! reads, an atomic read covers atomic reads. Reads never cover writes, so concurrent
//! readers and concurrent atomic writers all stay recorded (FastTrack's read-shared
//! state, generalised). This is FastTrack (Flanagan & Freund, PLDI 2009) per byte, with
//! atomics.
//!
//! # Fast path and locking
//! If a record already has the accessing goroutine's current epoch, covers the new
//! access's bytes and its kind covers the new kind, the access changes nothing (the
//! "same epoch" case) and is decided from lock-free single-word loads. Everything else
//! takes the cell's lock bit (in word 0); records are written only under it. A record
//! carrying the current epoch of goroutine `g` can only be removed by an access that
//! races with it, so the lock-free check never hides a race that was not already
//! reported. The out-of-line list's pointer is stored in word 1 with a zero mask field,
//! so a reader that sees it instead of a record never takes it for a hit.

use super::clock::{Epoch, Index, Time, VClock};
use super::site::{self, SITE_BITS, SiteId, SiteTable};
use crate::sys;
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering};

pub const KIND_WRITE: u8 = 1;
pub const KIND_ATOMIC: u8 = 2;

const LOCK: u64 = 1 << 63;
const HAS_SYNC: u64 = 1 << 62;
const EXT: u64 = 1 << 61;
const CELL_BITS: u64 = LOCK | HAS_SYNC | EXT;

const SITE_MASK: u64 = (1 << SITE_BITS) - 1;
const MASK_SHIFT: u32 = SITE_BITS;
const TIME_SHIFT: u32 = MASK_SHIFT + 8;
/// Bits of a record's time; a goroutine's time never exceeds [`MAX_RECORD_TIME`].
const TIME_BITS: u32 = 61 - TIME_SHIFT;
pub const MAX_RECORD_TIME: Time = (1 << TIME_BITS) - 2;
const _: () = assert!(super::clock::MAX_TIME <= MAX_RECORD_TIME);

/// Shadow bytes per 8 bytes of program memory.
pub const SHADOW_SCALE: usize = 2;

/// One past access, decoded (its site looked up).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Record {
    pub epoch: Epoch,
    pub mask: u8,
    pub kind: u8,
    pub site: SiteId,
}

/// Byte mask `mask` in a record word's mask field.
#[inline(always)]
pub const fn bytes_field(mask: u8) -> u64 {
    (mask as u64) << MASK_SHIFT
}

/// [`bytes_field`] of the one byte at `addr`.
#[inline(always)]
pub const fn byte_field(addr: usize) -> u64 {
    1 << (MASK_SHIFT as usize + (addr & 7))
}

/// [`bytes_field`] of the bytes `[a, hi)` of one cell (`a < hi <= (a & !7) + 8`).
#[inline(always)]
pub const fn range_field(a: usize, hi: usize) -> u64 {
    ((1 << (hi - a)) - 1) << (MASK_SHIFT as usize + (a & 7))
}

/// The byte masks of the (at most three) cells of a range of at most 16 bytes starting
/// at `addr`: the first cell's in the low 8 bits, each next one 8 bits higher (shifting
/// right by 8 brings the next cell's down).
#[inline(always)]
pub const fn small_range_masks(addr: usize, size: usize) -> u32 {
    ((1 << size) - 1) << (addr & 7)
}

/// Time `t` in a record word's time field.
#[inline(always)]
pub const fn time_field(t: Time) -> u64 {
    (t as u64) << TIME_SHIFT
}

/// The shadow word of a record.
#[inline]
pub fn record_word(site: SiteId, mask: u8, time: Time) -> u64 {
    if mask == 0 {
        return 0;
    }
    site as u64 | (mask as u64) << MASK_SHIFT | time_field(time)
}

impl Record {
    #[inline]
    fn word(&self) -> u64 {
        record_word(self.site, self.mask, self.epoch.time())
    }
    fn from_word(w: u64, sites: &SiteTable) -> Option<Record> {
        let w = w & !CELL_BITS;
        (rec_mask(w) != 0).then(|| {
            let site = sites.get(rec_site(w));
            Record {
                epoch: Epoch::new(site.index, rec_time(w)),
                mask: rec_mask(w),
                kind: site.kind,
                site: rec_site(w),
            }
        })
    }
    pub fn is_write(&self) -> bool {
        self.kind & KIND_WRITE != 0
    }
    pub fn is_atomic(&self) -> bool {
        self.kind & KIND_ATOMIC != 0
    }
}

#[inline]
fn rec_site(w: u64) -> SiteId {
    (w & SITE_MASK) as SiteId
}
#[inline]
fn rec_mask(w: u64) -> u8 {
    (w >> MASK_SHIFT) as u8
}
#[inline]
fn rec_time(w: u64) -> Time {
    ((w & !CELL_BITS) >> TIME_SHIFT) as Time
}

/// What the same-epoch check compares record words with, computed once per access.
#[derive(Clone, Copy)]
pub struct Probe<'a> {
    sites: &'a SiteTable,
    own: &'a OwnSites,
    epoch: Epoch,
    /// The epoch's time in a record word's time field.
    time_field: u64,
    /// Bit `k` set when a record of kind `k` covers the new access's kind.
    covered_by: u8,
    kind: u8,
}

/// For each access kind, the record kinds that cover it (bit `k` for kind `k`).
const COVERED_BY: [u8; 4] = {
    let mut t = [0u8; 4];
    let mut new = 0;
    while new < 4 {
        let mut old = 0;
        while old < 4 {
            if covers(old, new) {
                t[new as usize] |= 1 << old;
            }
            old += 1;
        }
        new += 1;
    }
    t
};

const TIME_FIELD: u64 = ((1 << TIME_BITS) - 1) << TIME_SHIFT;

impl<'a> Probe<'a> {
    #[inline(always)]
    pub fn new(sites: &'a SiteTable, own: &'a OwnSites, epoch: Epoch, kind: u8) -> Self {
        Self::with_field(sites, own, epoch, time_field(epoch.time()), kind)
    }

    /// [`Probe::new`] with `epoch`'s time field already computed (`time_field`).
    #[inline(always)]
    pub fn with_field(
        sites: &'a SiteTable,
        own: &'a OwnSites,
        epoch: Epoch,
        time_field: u64,
        kind: u8,
    ) -> Self {
        debug_assert_eq!(time_field, self::time_field(epoch.time()));
        Probe {
            sites,
            own,
            epoch,
            time_field,
            covered_by: COVERED_BY[kind as usize & 3],
            kind,
        }
    }

    /// Whether record word `w` (flags allowed, lock excluded) makes the access to `mask`
    /// change nothing: same epoch, covering bytes and kind.
    #[inline(always)]
    fn hits(&self, w: u64, mask: u8) -> bool {
        self.epoch_hits(w, mask) && {
            let site = rec_site(w);
            match self.own.kind_of(site) {
                Some(k) => self.covered_by >> k & 1 != 0,
                None => site_hits(site, self.sites, self.epoch, self.kind),
            }
        }
    }

    /// [`Probe::hits`] decided from the goroutine's site cache alone: false when the
    /// record's site is not there (the caller then asks [`Probe::hits`]).
    /// Word 0's lock and spill flags must be clear too: they are part of the one compare
    /// that also checks the time and the bytes (word 1 never has them set).
    #[inline(always)]
    fn hits_cached(&self, w: u64, need: u64) -> bool {
        // Flags, time and bytes compared in one xor and test (no copy of the word kept
        // for the site below, whose bits the xor leaves as they are).
        let x = w ^ (self.time_field | need);
        x & (LOCK | EXT | TIME_FIELD | need) == 0 && {
            // The site in the slot's upper bits leaves only the kind below bit 2. The
            // word's low half shifted by 4 is its site's: the mask bits above it go.
            let kind = self.own.slot_of_word(x) ^ (x as u32) << SLOT_SITE_SHIFT;
            kind < 4 && self.covered_by >> kind & 1 != 0
        }
    }

    /// Bytes and time of the record cover the access (the site not yet looked at).
    #[inline(always)]
    fn epoch_hits(&self, w: u64, mask: u8) -> bool {
        let need = (mask as u64) << MASK_SHIFT;
        w & need == need && w & TIME_FIELD == self.time_field
    }
}

/// The rest of [`Probe::hits`] for a site missing from the goroutine's cache: out of line,
/// so the site table's lookup does not weigh on the inlined fast path's registers.
#[cold]
#[inline(never)]
fn site_hits(site: SiteId, sites: &SiteTable, epoch: Epoch, kind: u8) -> bool {
    let s = sites.get(site);
    s.index == epoch.index() && covers(s.kind, kind)
}

/// Word 1 of a spilled cell: the list's address with the mask field left zero.
fn ext_word(p: *mut Ext) -> u64 {
    let p = p as u64;
    (p & SITE_MASK) | (p >> SITE_BITS) << TIME_SHIFT
}
fn ext_ptr(w: u64) -> *mut Ext {
    ((w & SITE_MASK) | (w >> TIME_SHIFT) << SITE_BITS) as *mut Ext
}

/// Whether an access of kind `new` makes a record of kind `old` redundant once `old`
/// happened before it (see the module doc).
#[inline]
pub const fn covers(new: u8, old: u8) -> bool {
    let (nw, na) = (new & KIND_WRITE != 0, new & KIND_ATOMIC != 0);
    let (ow, oa) = (old & KIND_WRITE != 0, old & KIND_ATOMIC != 0);
    match (nw, na) {
        (true, false) => true,
        (true, true) => oa,
        (false, false) => !ow,
        (false, true) => !ow && oa,
    }
}

/// Whether two accesses to a common byte conflict when unordered.
#[inline]
pub fn conflicts(a: u8, b: u8) -> bool {
    (a | b) & KIND_WRITE != 0 && (a & b) & KIND_ATOMIC == 0
}

/// A goroutine's direct-mapped cache of sites of its *current* clock index, with their
/// kinds, so the fast path rarely reads the shared site table. Cleared when the
/// goroutine changes index. Invariant: every entry is a site of the goroutine's current
/// index, with its kind (a site's fields never change); the slow path's
/// [`Cell::try_own`] relies on it to take a cached record's epoch to be `(that index,
/// its time)` without looking the site up. It starts at [`OWN_SITES_MIN`] entries and
/// grows 4x (to [`OWN_SITES_MAX`]) once the slow path has refilled it often: a goroutine
/// whose shadow holds more sites of its current epoch than that (compress/flate's
/// buffers) would otherwise look most of them up in the site table.
pub struct OwnSites {
    /// `site << SLOT_SITE_SHIFT | kind`, or 0; the length is a power of two.
    slots: Vec<u32>,
    /// `slots.len() - 1`, kept so that the fast path indexes with one `and`.
    index_mask: usize,
    refills: u32,
}

/// Where a site sits in a slot of [`OwnSites`]: the 28 bits of a site fill the rest of
/// the `u32`, so a record word's low half shifted by this much is its site's slot value
/// without its kind (no mask needed to drop the byte-mask bits above the site).
const SLOT_SITE_SHIFT: u32 = 32 - SITE_BITS;
const _: () = assert!(SLOT_SITE_SHIFT >= 2);

const OWN_SITES_MIN: usize = 64;
const OWN_SITES_MAX: usize = 1024;
// `Probe::hits_cached` indexes with a word whose mask field was xor'ed: the index must
// come from the site bits below it.
const _: () = assert!(OWN_SITES_MAX <= 1 << MASK_SHIFT);
const _: () = assert!(OWN_SITES_MAX <= 1 << SITE_BITS);

impl OwnSites {
    pub fn new() -> Self {
        OwnSites {
            slots: alloc::vec![0; OWN_SITES_MIN],
            index_mask: OWN_SITES_MIN - 1,
            refills: 0,
        }
    }

    /// The slot of the site of record word `w` (its low bits are the site's, and the
    /// mask keeps fewer bits than a site has).
    #[inline(always)]
    fn slot_of_word(&self, w: u64) -> u32 {
        let i = w as usize & self.index_mask;
        // SAFETY: `index_mask` is the length minus one, a power of two minus one.
        unsafe { *self.slots.get_unchecked(i) }
    }

    #[inline(always)]
    fn slot(&self, site: SiteId) -> u32 {
        self.slot_of_word(site as u64)
    }

    /// Notes that `site` (non-zero) is one of the goroutine's, of kind `kind`.
    #[inline]
    pub fn insert(&mut self, site: SiteId, kind: u8) {
        self.slots[site as usize & self.index_mask] = site << SLOT_SITE_SHIFT | kind as u32;
    }

    #[inline]
    fn kind_of(&self, site: SiteId) -> Option<u8> {
        let e = self.slot(site);
        (e >> SLOT_SITE_SHIFT == site && site != 0).then_some((e & 3) as u8)
    }

    /// Whether record word `w` (flags ignored) is of time `time` and its site missing here:
    /// the records [`OwnSites::refill`] may add, and only those.
    #[inline(always)]
    fn lacks(&self, w: u64, time: Time) -> bool {
        rec_mask(w) != 0 && rec_time(w) == time && self.kind_of(rec_site(w)).is_none()
    }

    /// Forgets every entry (keeps the size).
    pub fn clear(&mut self) {
        self.slots.iter_mut().for_each(|e| *e = 0);
    }

    /// Adds the sites of `cell`'s inline records of the time `epoch` that belong to
    /// `epoch`'s index and are missing, so that [`Cell::quick_hit`] finds them. Returns
    /// whether it added one (else `quick_hit` already saw every site that can hit).
    pub fn refill(&mut self, cell: &Cell, sites: &SiteTable, epoch: Epoch) -> bool {
        let w0 = cell.w[0].load(Ordering::Relaxed);
        if w0 & (LOCK | EXT) != 0 {
            return false;
        }
        let mut added = false;
        for w in [w0 & !CELL_BITS, cell.w[1].load(Ordering::Relaxed)] {
            if !self.lacks(w, epoch.time()) {
                continue;
            }
            let site = rec_site(w);
            let s = sites.get(site);
            if s.index != epoch.index() {
                continue;
            }
            super::goroutine::note_miss(&mut self.slots, &mut self.refills, OWN_SITES_MAX);
            self.index_mask = self.slots.len() - 1;
            self.insert(site, s.kind);
            added = true;
        }
        added
    }
}

impl Default for OwnSites {
    fn default() -> Self {
        Self::new()
    }
}

/// The out-of-line record list of a cell with more than two live records (words). The
/// first [`EXT_SCAN`] records sit in `head`, where the lock-free fast path may read them
/// (see [`Cell::fast_path_hit`]); the rest, in `more`, are only read under the cell lock.
///
/// One 64-byte block (the allocator's class): most spilled cells hold three or four
/// records, and flate-like workloads keep a hundred thousand of them. Cells that many
/// goroutines read (flate's parallel tests share their input: 131k cells of 8 to 12
/// records at the peak) overflow into `more`: one boxed slice, not a boxed `Vec` (whose
/// header and growth slack cost a second block and up to twice the words), kept when
/// the overflow shrinks or stays within it; its unused tail words are empty records.
pub struct Ext {
    head: [AtomicU64; EXT_SCAN],
    more: Option<Box<[u64]>>,
}

const EXT_SCAN: usize = 6;
const _: () = assert!(core::mem::size_of::<Ext>() == 64);

impl Ext {
    fn new() -> Self {
        Ext {
            head: [const { AtomicU64::new(0) }; EXT_SCAN],
            more: None,
        }
    }
    /// The record words past `head`, empty ones included (under the cell lock).
    fn more(&self) -> &[u64] {
        self.more.as_deref().unwrap_or(&[])
    }
    /// Appends the records to `out` (under the cell lock).
    fn load(&self, sites: &SiteTable, out: &mut Vec<Record>) {
        let head = self.head.iter().map(|w| w.load(Ordering::Relaxed));
        out.extend(
            head.chain(self.more().iter().copied())
                .filter_map(|w| Record::from_word(w, sites)),
        );
    }
    /// Replaces the records (under the cell lock).
    fn store(&mut self, records: &[Record]) {
        for (i, w) in self.head.iter().enumerate() {
            w.store(records.get(i).map_or(0, Record::word), Ordering::Relaxed);
        }
        let Some(rest) = records.get(EXT_SCAN..).filter(|r| !r.is_empty()) else {
            self.more = None;
            return;
        };
        let more = match &mut self.more {
            Some(m) if m.len() >= rest.len() => m,
            // Even lengths: a list that grows by one record at a time reallocates at
            // every other record, in the allocator's 16-byte steps.
            _ => self
                .more
                .insert(alloc::vec![0; rest.len().next_multiple_of(2)].into()),
        };
        for (slot, r) in more
            .iter_mut()
            .zip(rest.iter().map(Some).chain(core::iter::repeat(None)))
        {
            *slot = r.map_or(0, Record::word);
        }
    }
}

/// Word 0 of a spilled cell holds, besides its flags, a version that changes with every
/// update of the list, so a lock-free reader can tell that what it read was not changed
/// meanwhile. Each spill starts from a fresh base, so versions are not reused when a cell
/// comes back inline and spills again.
const VERSION_MASK: u64 = (1 << 61) - 1;
static SPILLS: AtomicU64 = AtomicU64::new(0);

/// How many times a cell has spilled so far (`gorace_stats`).
pub fn spills() -> u64 {
    SPILLS.load(Ordering::Relaxed)
}

fn first_version() -> u64 {
    (SPILLS.fetch_add(1, Ordering::Relaxed) << 32) & VERSION_MASK
}

fn next_version(w0: u64) -> u64 {
    let v = w0 & VERSION_MASK;
    (v & !0xffff_ffff) | (v.wrapping_add(1) & 0xffff_ffff)
}

/// A goroutine's spare out-of-line lists: cells spill and come back inline often, and
/// reusing lists locally keeps that off the shared allocator.
#[derive(Default)]
#[allow(clippy::vec_box)] // the boxes are what cells point to; they must not move
pub struct ExtStash(Vec<Box<Ext>>);

const STASH_MAX: usize = 16;

impl ExtStash {
    pub const fn new() -> Self {
        ExtStash(Vec::new())
    }
    fn take(&mut self) -> Box<Ext> {
        self.0.pop().unwrap_or_else(|| Box::new(Ext::new()))
    }
    fn put(&mut self, ext: Box<Ext>) {
        if self.0.len() < STASH_MAX && ext.more.is_none() {
            self.0.push(ext);
        }
    }
}

#[repr(C, align(16))]
pub struct Cell {
    w: [AtomicU64; 2],
}

/// An inline cell's update, as words: `old` (flags cleared) became `new`. The outcome
/// of an update is a function of the cell's words and of the access (its epoch, bytes,
/// kind and site) and the goroutine's clock, so another cell holding exactly `old`,
/// updated by the same access in the same call (a range: the site, epoch and clock do
/// not change within it), becomes exactly `new` ([`Cell::replay`]), races included:
/// there are none, or the update would not have been made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Transition {
    old: [u64; 2],
    new: [u64; 2],
}

impl Transition {
    /// An empty cell's fill with the record `word` ([`Cell::try_fill_empty`]).
    pub fn filled(word: u64) -> Self {
        Transition {
            old: [0; 2],
            new: [word, 0],
        }
    }

    /// Whether this is an empty cell's fill.
    pub fn fills(&self) -> bool {
        self.old == [0; 2]
    }
}

/// A [`Transition`] of a cell whose records were the accessing goroutine's own, made
/// since it took its clock index, or known to it, with the own records' times taken
/// out, for [`Cell::replay_own`].
///
/// It holds at any later time of the goroutine, whatever its clock learnt meanwhile.
/// The update rule sees a record's epoch only through two questions, whether it
/// happened before the access and whether it is of the access's epoch. For a record of
/// the goroutine's index (its site is among the goroutine's own) made at a time `t`
/// since it took that index (`born <= t`: earlier owners of the index ended before),
/// the first is always yes (program order) and the second is `t == now`. So words equal
/// to the old ones but for times of the same *class* (past, or the current time),
/// updated by the same access (site and bytes) at a later time, take the same new
/// words, each with the access's time or that of the old word it kept. This is what a
/// goroutine does after each synchronisation: its own counters, fields and lock words
/// are read and written again at a new epoch (`n++` under a mutex, the mutex's state
/// word), where the clock-stamped replay ([`Cell::replay`]) never sees the same words
/// twice.
///
/// Any other record is *fixed*: it must be the very same word again, of an epoch the
/// goroutine's clock knew when the form was derived. A clock only learns while its
/// goroutine keeps its index (the memo is dropped when it moves), so the answers stay
/// yes and no, and the update treats the word as it did, provided it treated it as a
/// known record then; the derivation checks that it did (the transition was made at an
/// earlier time, when the clock may not have known it yet). Such a record is one the
/// access never removes: a plain write initialising a word later used atomically (an
/// atomic write does not cover it), a write read by a goroutine at every epoch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OwnTransition {
    /// The old and new words, own records' time fields cleared (fixed ones keep theirs).
    old: [u64; 2],
    new: [u64; 2],
    /// Per old word: [`EMPTY`], [`PAST`], [`NOW`] or [`FIXED`].
    old_class: [u8; 2],
    /// Per new word, where its time comes from: [`EMPTY`] (no word), [`NOW`], or
    /// `FROM_OLD + j` (old word `j`'s).
    new_time: [u8; 2],
}

const EMPTY: u8 = 0;
const PAST: u8 = 1;
const NOW: u8 = 2;
const FIXED: u8 = 3;
const FROM_OLD: u8 = 4;

/// The class of record word `w` (non-empty) of the goroutine's index at time `now`, for
/// a goroutine that took its index at `born`; `None` for a time outside `[born, now]`.
#[inline(always)]
fn own_class(w: u64, now: Time, born: Time) -> Option<u8> {
    let t = rec_time(w);
    if t == now {
        Some(NOW)
    } else if born <= t && t < now {
        Some(PAST)
    } else {
        None
    }
}

/// The access whose update an [`OwnTransition`] is derived from, and what the
/// goroutine's clock says about other records now.
pub struct Deriving<'a> {
    pub own: &'a OwnSites,
    /// The goroutine's index and its time when it took the index.
    pub index: Index,
    pub born: Time,
    pub kind: u8,
    pub mask: u8,
    pub sites: &'a SiteTable,
    pub clock: &'a VClock,
}

impl OwnTransition {
    /// `t`, made at the goroutine's time `then`, without its own records' times, if
    /// every old record is the goroutine's own (its site in `own`, of the current index,
    /// and its time in `[born, then]`) or fixed (see the type's doc).
    pub fn of(t: &Transition, then: Time, d: &Deriving) -> Option<Self> {
        let mut old_class = [EMPTY; 2];
        let mut old = t.old.map(|w| w & !TIME_FIELD);
        for i in 0..2 {
            let w = t.old[i];
            if w == 0 {
                continue;
            }
            let own = d
                .own
                .kind_of(rec_site(w))
                .and_then(|_| own_class(w, then, d.born));
            old_class[i] = match own {
                Some(class) => class,
                None => {
                    Self::fixed_as_known(t, w, then, d)?;
                    old[i] = w;
                    FIXED
                }
            };
        }
        let mut new_time = [EMPTY; 2];
        for (src, &w) in new_time.iter_mut().zip(&t.new) {
            if w == 0 {
                continue;
            }
            let old_time = |j: usize| t.old[j] != 0 && rec_time(t.old[j]) == rec_time(w);
            // A fixed record kept (possibly with fewer bytes): same site and time.
            let kept_fixed = |j: usize| {
                old_class[j] == FIXED && old_time(j) && rec_site(t.old[j]) == rec_site(w)
            };
            *src = if let Some(j) = (0..2).find(|&j| kept_fixed(j)) {
                FROM_OLD + j as u8
            } else if rec_time(w) == then {
                NOW
            } else {
                FROM_OLD + (0..2).find(|&j| old_class[j] != FIXED && old_time(j))? as u8
            };
        }
        Some(OwnTransition {
            old,
            new: t.new.map(|w| w & !TIME_FIELD),
            old_class,
            new_time,
        })
    }

    /// `Some` if the record word `w` (not of the goroutine's own as cached) is known to
    /// its clock, not of the access's epoch (such a record joins the access), and `t`
    /// treated it as a known record: the bytes the access covers taken out, the rest
    /// kept as it was.
    fn fixed_as_known(t: &Transition, w: u64, then: Time, d: &Deriving) -> Option<()> {
        let s = d.sites.get(rec_site(w));
        let epoch = Epoch::new(s.index, rec_time(w));
        if epoch == Epoch::new(d.index, then) || !d.clock.knows(epoch) {
            return None;
        }
        let keep = if covers(d.kind, s.kind) {
            rec_mask(w) & !d.mask
        } else {
            rec_mask(w)
        };
        let after = t
            .new
            .iter()
            .find(|&&n| n != 0 && rec_site(n) == rec_site(w) && rec_time(n) == rec_time(w));
        match after {
            Some(&n) => (rec_mask(n) == keep && keep != 0).then_some(()),
            None => (keep == 0).then_some(()),
        }
    }
}

/// The new access being applied to a cell.
#[derive(Clone, Copy)]
pub struct NewAccess {
    pub epoch: Epoch,
    pub mask: u8,
    pub kind: u8,
    pub site: SiteId,
}

/// Applies `a` to the record list: returns the first record it races with, after
/// updating the list (see the module doc for the rule). An access of the same epoch and
/// kind as a record joins it, with the site `merge(old site, old bytes, new site, new
/// bytes)` (a composite, see [`SiteTable::merge`]).
pub fn apply(
    records: &mut Vec<Record>,
    a: &NewAccess,
    clock: &VClock,
    merge: impl FnOnce(SiteId, u8, SiteId, u8) -> SiteId,
) -> Option<Record> {
    let mut race = None;
    for r in records.iter_mut() {
        if r.mask & a.mask == 0 {
            continue;
        }
        let ordered = clock.knows(r.epoch);
        let racing = !ordered && conflicts(r.kind, a.kind);
        if racing && race.is_none() {
            race = Some(*r);
        }
        if (ordered || racing) && covers(a.kind, r.kind) {
            r.mask &= !a.mask;
        }
    }
    records.retain(|r| r.mask != 0);
    if records
        .iter()
        .any(|r| r.epoch == a.epoch && r.mask & a.mask == a.mask && covers(r.kind, a.kind))
    {
        return race;
    }
    // One site is one (index, kind, stack): with the epoch, the same access point.
    if let Some(same) = records
        .iter_mut()
        .find(|r| r.epoch == a.epoch && r.kind == a.kind)
    {
        if same.site != a.site {
            same.site = merge(same.site, same.mask, a.site, a.mask);
        }
        same.mask |= a.mask;
    } else {
        records.push(Record {
            epoch: a.epoch,
            mask: a.mask,
            kind: a.kind,
            site: a.site,
        });
    }
    race
}

/// The composite-site merge of [`apply`]: `(old site, old bytes, new site, new bytes)`.
pub type Merge<'m> = &'m mut dyn FnMut(SiteId, u8, SiteId, u8) -> SiteId;

/// [`apply`] on record words (zero words are empty), when the result fits `N` records
/// and needs no report: returns the new words (zeros after the last) and how many;
/// `None` otherwise.
fn apply_words<const N: usize>(
    words: &[u64],
    a: &NewAccess,
    clock: &VClock,
    sites: &SiteTable,
    merge: Merge,
) -> Option<([u64; N], usize)> {
    let mut out = [0u64; N];
    let mut n = 0;
    let mut covered = false;
    // The record of this epoch and kind, which takes the new bytes (and, if its site is
    // another access point's, becomes a composite site).
    let mut same = None;
    for &w in words {
        let mut mask = rec_mask(w);
        if mask == 0 {
            continue;
        }
        if mask & a.mask == 0 && rec_time(w) != a.epoch.time() {
            // On other bytes and of another epoch: kept as it is, its site not looked up
            // (a goroutine's byte-wise writes at successive epochs leave lists of these).
            *out.get_mut(n)? = record_word(rec_site(w), mask, rec_time(w));
            n += 1;
            continue;
        }
        let s = sites.get(rec_site(w));
        let epoch = Epoch::new(s.index, rec_time(w));
        if mask & a.mask != 0 {
            let ordered = clock.knows(epoch);
            if !ordered && conflicts(s.kind, a.kind) {
                return None;
            }
            if ordered && covers(a.kind, s.kind) {
                mask &= !a.mask;
            }
        }
        if mask == 0 {
            continue;
        }
        if epoch == a.epoch {
            if mask & a.mask == a.mask && covers(s.kind, a.kind) {
                covered = true;
            } else if s.kind == a.kind {
                same = Some(n);
            }
        }
        *out.get_mut(n)? = record_word(rec_site(w), mask, rec_time(w));
        n += 1;
    }
    if !covered {
        match same {
            Some(k) if rec_site(out[k]) == a.site => out[k] |= (a.mask as u64) << MASK_SHIFT,
            Some(k) => {
                let (site, mask) = (rec_site(out[k]), rec_mask(out[k]));
                let merged = merge(site, mask, a.site, a.mask);
                out[k] = record_word(merged, mask | a.mask, rec_time(out[k]));
            }
            None => {
                *out.get_mut(n)? = record_word(a.site, a.mask, a.epoch.time());
                n += 1;
            }
        }
    }
    Some((out, n))
}

/// [`apply_words`] on an inline cell's two words.
fn apply_inline(
    words: [u64; 2],
    a: &NewAccess,
    clock: &VClock,
    sites: &SiteTable,
    merge: Merge,
) -> Option<[u64; 2]> {
    apply_words::<2>(&words, a, clock, sites, merge).map(|(out, _)| out)
}

/// [`apply_inline`] for an inline cell whose records are all the accessing goroutine's
/// own: `kinds[i]` is the kind of `words[i]`'s site (anything for an empty word), and
/// every non-empty word's site is of `a.epoch`'s clock index (the caller found it in the
/// goroutine's [`OwnSites`], which holds only sites of its current index). So no site is
/// looked up: a record's epoch is `(a.epoch.index(), its time)`, and one of `a`'s time is
/// `a.epoch` itself, known without asking the clock. A record of an earlier time is not
/// assumed known: the index may have had another owner then, whose times the clock knows
/// only outside its holes, so `clock.knows` decides. The outcome is `apply_words::<2>`'s,
/// step for step; `None` for a race and for a third record.
#[inline(always)]
fn apply_own(
    words: [u64; 2],
    kinds: [u8; 2],
    a: &NewAccess,
    clock: &VClock,
    merge: impl FnOnce(SiteId, u8, SiteId, u8) -> SiteId,
) -> Option<[u64; 2]> {
    // Straight-line on purpose (no loop over the two words): the loop kept its
    // iterators on the stack.
    let now = a.epoch.time();
    let r = [
        own_check(words[0], kinds[0], a, clock)?,
        own_check(words[1], kinds[1], a, clock)?,
    ];
    // What is left, compacted (empty words last), as `apply_words` leaves it.
    let (out, ks) = if r[0] == 0 {
        ([r[1], 0], [kinds[1], kinds[0]])
    } else {
        (r, kinds)
    };
    let current = |i: usize| out[i] != 0 && rec_time(out[i]) == now;
    let covering =
        |i: usize| current(i) && rec_mask(out[i]) & a.mask == a.mask && covers(ks[i], a.kind);
    if covering(0) || covering(1) {
        return Some(out);
    }
    // The record of this epoch and kind (the last one, as in `apply_words`).
    let same = |i: usize| current(i) && ks[i] == a.kind;
    let k = if same(1) {
        1
    } else if same(0) {
        0
    } else {
        // A new record (`a.mask` is not empty); a third one is left to the general path.
        // `record_word` spelled out here and in `own_check`: its empty-mask branch cost
        // ~60 instructions per update in this path (callgrind, bench/paths).
        let new = a.site as u64 | (a.mask as u64) << MASK_SHIFT | time_field(now);
        return match out {
            [0, _] => Some([new, 0]),
            [w, 0] => Some([w, new]),
            _ => None,
        };
    };
    // It takes the new bytes, under a composite site if its own is another access
    // point's.
    let mut out = out;
    let (site, mask) = (rec_site(out[k]), rec_mask(out[k]));
    out[k] = if site == a.site {
        out[k] | (a.mask as u64) << MASK_SHIFT
    } else {
        record_word(merge(site, mask, a.site, a.mask), mask | a.mask, now)
    };
    Some(out)
}

/// One record word (flags clear, possibly empty) of `apply_own`, of kind `kind` and of
/// `a`'s clock index, checked against `a`: `None` for a race, else the word with the
/// bytes `a` covers removed (zero if none is left).
#[inline(always)]
fn own_check(w: u64, kind: u8, a: &NewAccess, clock: &VClock) -> Option<u64> {
    if rec_mask(w) & a.mask == 0 {
        return Some(w);
    }
    let time = rec_time(w);
    if time != a.epoch.time() && !clock.knows(Epoch::new(a.epoch.index(), time)) {
        return (!conflicts(kind, a.kind)).then_some(w);
    }
    if !covers(a.kind, kind) {
        return Some(w);
    }
    let left = w & !((a.mask as u64) << MASK_SHIFT);
    Some(if rec_mask(left) == 0 { 0 } else { left })
}

/// Which of a spilled cell's records (`words`, its list's head, nothing past it) a plain
/// read `a` only moves to its current time: the reader's own record (a read of its
/// clock index with the same bytes, from this access point or another of its cached
/// sites `own`: `RLock` and `RUnlock` both read the mutex's state word), when every
/// write recorded there that shares bytes with it happened before it. The commonest
/// update of read-shared data (data written once, then concurrent readers each changing
/// epoch). Exact as to races: a read races only with writes it does not know of, and
/// there are none; reads never cover writes, so those stay as they are. The old record
/// happened before the access (the clock is asked: an index is reused once its
/// goroutine has gone, and an earlier owner's record need not be known) and a plain
/// read covers reads, so it gives way to the new one, in its place. Other reads are
/// kept as they are, without looking their sites up (the id tells a read, see
/// [`site::is_write`]): other readers' records, and the reader's own of a site not in
/// `own`. Each that happened before the access can only race with what the access
/// itself races with (see the module doc), and the others are untouched, so no report
/// is lost or made up; they go at the list's next general update. `None` in every
/// other case.
#[inline(always)]
fn refreshed_read(
    words: impl IntoIterator<Item = u64> + Clone,
    sites: &SiteTable,
    own: &OwnSites,
    a: &NewAccess,
    clock: &VClock,
) -> Option<usize> {
    if a.kind & (KIND_WRITE | KIND_ATOMIC) != 0 {
        return None;
    }
    let mut mine = None;
    let mut own_word = 0;
    for (i, w) in words.into_iter().enumerate() {
        let site = rec_site(w);
        let is_own = if rec_mask(w) == 0 {
            false
        } else if site == a.site {
            true
        } else if site::is_write(site) {
            let index = sites.get(site).index;
            if rec_mask(w) & a.mask != 0 && !clock.knows(Epoch::new(index, rec_time(w))) {
                return None;
            }
            false
        } else {
            own.kind_of(site).is_some()
        };
        if is_own {
            if mine.replace(i).is_some() {
                return None; // two: leave it to `apply`
            }
            own_word = w;
        }
    }
    let i = mine?;
    // Same clock index, but possibly an earlier goroutine's (indexes are reused).
    let known = clock.knows(Epoch::new(a.epoch.index(), rec_time(own_word)));
    (known && rec_mask(own_word) == a.mask).then_some(i)
}

/// Whether one of `words` makes the access `a` change nothing (the same-epoch check of
/// [`Probe::hits`], with the site table): a list too long for the lock-free check
/// (records past its head) decides it here, under the lock.
fn same_epoch_hit(words: impl IntoIterator<Item = u64>, sites: &SiteTable, a: &NewAccess) -> bool {
    words.into_iter().any(|w| {
        rec_mask(w) & a.mask == a.mask
            && rec_time(w) == a.epoch.time()
            && site_hits(rec_site(w), sites, a.epoch, a.kind)
    })
}

impl Cell {
    /// The lock-free "same epoch" check: true when an access of `kind` to the bytes
    /// `mask` by the goroutine at `epoch` changes nothing. `own` is the goroutine's
    /// cache of its own sites (see [`OwnSites`]), consulted before the site table.
    #[inline(always)]
    pub fn fast_path_hit(&self, p: &Probe, mask: u8) -> bool {
        let w0 = self.w[0].load(Ordering::Acquire);
        if w0 & LOCK != 0 {
            return false;
        }
        let w1 = self.w[1].load(Ordering::Acquire);
        if w0 & EXT == 0 {
            // Word 1 is read after word 0: it is a record that was in the cell at some
            // point since, or a spilled list's pointer, whose zero mask never hits.
            return p.hits(w0, mask) || p.hits(w1, mask);
        }
        self.spilled_hit(w0, w1, p, mask)
    }

    /// The part of [`Cell::fast_path_hit`] that needs no call: an inline cell whose
    /// record of the current epoch has its site in the goroutine's cache. False means
    /// "ask `fast_path_hit`", not "miss".
    #[inline(always)]
    pub fn quick_hit(&self, p: &Probe, mask: u8) -> bool {
        self.quick_hit_bytes(p, bytes_field(mask))
    }

    /// [`Cell::quick_hit`] with the bytes already in a record word's mask field (see
    /// [`bytes_field`]), which a 1-byte access computes with one shift.
    #[inline(always)]
    pub fn quick_hit_bytes(&self, p: &Probe, need: u64) -> bool {
        let w0 = self.w[0].load(Ordering::Acquire);
        // Word 1 is read after word 0 (see `fast_path_hit`), and only when needed, which
        // keeps the inlined check within the caller-saved registers. Word 0 locked does
        // not stop the look at word 1: a record of the goroutine's current epoch there is
        // one the cell holds (only this goroutine makes such records, and a lock holder
        // can only take bytes from it, by racing with it), as in `fast_path_hit`.
        p.hits_cached(w0, need) || p.hits_cached(self.w[1].load(Ordering::Acquire), need)
    }

    /// Whether [`Cell::quick_hit`]'s miss may still be a hit: the cell is spilled (its
    /// records were not looked at), or an inline record of the goroutine's `time` has a
    /// site missing from its cache `own` (which [`OwnSites::refill`] would add).
    #[inline(always)]
    pub fn worth_a_second_look(&self, own: &OwnSites, time: Time) -> bool {
        let w0 = self.w[0].load(Ordering::Relaxed);
        if w0 & (LOCK | EXT) != 0 {
            return w0 & EXT != 0;
        }
        own.lacks(w0, time) || own.lacks(self.w[1].load(Ordering::Relaxed), time)
    }

    /// [`Cell::fast_path_hit`] on a spilled cell (kept out of line: rare, and it would
    /// weigh on the inline path's registers).
    #[cold]
    #[inline(never)]
    fn spilled_hit(&self, w0: u64, w1: u64, p: &Probe, mask: u8) -> bool {
        // Spilled: word 0 unchanged around the read of word 1 means word 1 is this
        // spill's list, and unchanged after the scan means the scanned records were the
        // list's at that moment (every update under the lock bumps the version).
        if self.w[0].load(Ordering::Acquire) != w0 {
            return false;
        }
        self.spilled_head(w1)
            .iter()
            .any(|w| p.hits(w.load(Ordering::Acquire), mask))
            && self.w[0].load(Ordering::Acquire) == w0
    }

    /// The head of the list that word 1 `w1` points to, for a lock-free scan. `w1` must
    /// have been read between two loads of word 0 that agree and say the cell is spilled
    /// (else it may be a record, and following it faults); what the scan reads counts
    /// only if word 0 is still unchanged after it (every update under the lock bumps the
    /// version).
    fn spilled_head(&self, w1: u64) -> &[AtomicU64; EXT_SCAN] {
        // SAFETY: only a place projection (no read): `ext_ptr(w1)` is non-null and aligned.
        let head = unsafe { core::ptr::addr_of!((*ext_ptr(w1)).head) };
        // SAFETY: `head` points into an `Ext` that this cell owned a moment ago. Even if it
        // was released since, its memory stays mapped and owned by the runtime (the
        // allocator never unmaps small blocks), and it is only read with atomic loads.
        unsafe { &*head }
    }

    /// An empty cell (no records, no flags, unlocked) takes the record `word` with one
    /// CAS: nothing can race with an access to a cell nobody touched.
    #[inline]
    pub fn try_fill_empty(&self, word: u64) -> bool {
        // A plain load first: a failed CAS still takes the line exclusive, which costs
        // as much as a successful one on a line other cores read.
        self.w[0].load(Ordering::Relaxed) == 0
            && self.w[0]
                .compare_exchange(0, word, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
    }

    /// The slow path on an inline cell (one or two records), decided under the cell lock
    /// on the record words themselves, without decoding into a list (the sites looked up
    /// in the site table: [`Cell::try_own`] is the same without, for cells whose sites
    /// the goroutine has cached): returns `None`, the cell unchanged, for races and for a
    /// third record, which [`with_records`](Cell::with_records) decides, else the update
    /// made. The outcome is `apply`'s (an access that joins a record of its own epoch and
    /// kind makes its site a composite through `merge`).
    pub fn try_inline(
        &self,
        sites: &SiteTable,
        a: &NewAccess,
        clock: &VClock,
        merge: Merge,
    ) -> Option<Transition> {
        let w0 = self.w[0].load(Ordering::Relaxed);
        if w0 & (LOCK | EXT) != 0 || rec_mask(w0 & !CELL_BITS) == 0 {
            return None;
        }
        self.update_inline(w0, |words| apply_inline(words, a, clock, sites, merge))
    }

    /// An inline cell that needs a third record (no race): spilled, the three record
    /// words written into a list from `spare` without decoding them. Returns false, the
    /// cell unchanged, for a race, a spilled or locked cell, or one whose word 0 changed
    /// since the caller looked; [`with_records`](Cell::with_records) then decides. An
    /// update that fits inline after all (the cell changed meanwhile) is stored inline.
    /// The caller marks the page as owning a list when the cell is spilled afterwards.
    pub fn try_spill(
        &self,
        sites: &SiteTable,
        a: &NewAccess,
        clock: &VClock,
        merge: Merge,
        spare: &mut ExtStash,
    ) -> bool {
        let w0 = self.w[0].load(Ordering::Relaxed);
        if w0 & (LOCK | EXT) != 0
            || self.w[0]
                .compare_exchange(w0, w0 | LOCK, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
        {
            return false;
        }
        let words = [w0 & !CELL_BITS, self.w[1].load(Ordering::Relaxed)];
        let bits = w0 & HAS_SYNC;
        match apply_words::<3>(&words, a, clock, sites, merge) {
            None => {
                self.w[0].store(w0, Ordering::Release);
                false
            }
            Some((out, n)) if n <= 2 => {
                self.store_inline_words([out[0], out[1]], bits);
                true
            }
            Some((out, _)) => {
                let ext = spare.take();
                for (slot, w) in ext.head.iter().zip(out.into_iter().chain([0; EXT_SCAN])) {
                    slot.store(w, Ordering::Relaxed);
                }
                self.store_spilled(ext, bits);
                true
            }
        }
    }

    /// [`Cell::try_inline`] when every record of the inline cell has its site in `own`,
    /// the accessing goroutine's cache of the sites of its current clock index (which
    /// `a.epoch` names): the records are then decided from the cache without the site
    /// table (see `apply_own`). Returns `None`, the cell unchanged, if a site is missing
    /// there, if word 1 changed between the check and the lock, for a race and for a
    /// third record: the other paths then decide. `merge` is [`apply`]'s.
    ///
    /// Relies on: `own`'s invariant (its sites are of `a.epoch`'s index, with their
    /// kinds); an inline cell's word 1 being zero or a record with bytes (writers store
    /// a record left without bytes as zero, see `record_word`), as `apply_own` takes a
    /// non-zero word for a record; and a record's kind being a function of its site, so
    /// that word 1 found unchanged under the lock (even if it changed and came back
    /// meanwhile) has the kind looked up before.
    #[inline(always)]
    pub fn try_own(
        &self,
        a: &NewAccess,
        clock: &VClock,
        own: &OwnSites,
        merge: impl FnOnce(SiteId, u8, SiteId, u8) -> SiteId,
    ) -> Option<Transition> {
        let w0 = self.w[0].load(Ordering::Relaxed);
        if w0 & (LOCK | EXT) != 0 || rec_mask(w0) == 0 {
            return None;
        }
        let w1 = self.w[1].load(Ordering::Relaxed);
        let k0 = own.kind_of(rec_site(w0))?;
        // An empty word 1 has no kind; any will do.
        let k1 = match own.kind_of(rec_site(w1)) {
            Some(k) => k,
            None if rec_mask(w1) == 0 => 0,
            None => return None,
        };
        // The locking CAS checks that word 0 is still `w0`; word 1 may have changed
        // meanwhile (a lock holder took bytes from its record, without touching word 0),
        // and then `k1` may not be its record's kind.
        self.update_inline(w0, |words| {
            (words[1] == w1).then_some(())?;
            apply_own(words, [k0, k1], a, clock, merge)
        })
    }

    /// Locks the inline cell whose word 0 was `w0` (`None` if it changed meanwhile) and
    /// replaces its two record words with `update`'s, returning that update, or leaves
    /// them if `update` returns `None` (then `None`). The sync flag stays.
    fn update_inline(
        &self,
        w0: u64,
        update: impl FnOnce([u64; 2]) -> Option<[u64; 2]>,
    ) -> Option<Transition> {
        if self.w[0]
            .compare_exchange(w0, w0 | LOCK, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return None;
        }
        let words = [w0 & !CELL_BITS, self.w[1].load(Ordering::Relaxed)];
        let result = update(words);
        match result {
            Some([n0, n1]) => {
                self.store_inline_words([n0, n1], w0 & HAS_SYNC);
                Some(Transition {
                    old: words,
                    new: [n0, n1],
                })
            }
            None => {
                self.w[0].store(w0, Ordering::Release);
                None
            }
        }
    }

    /// Makes the cell `t.new` if it holds exactly `t.old` (inline, unlocked; the sync
    /// flag is kept): the update another cell of the same range went through (see
    /// [`Transition`]). False, the cell unchanged, otherwise. A fill (`t.old` empty)
    /// takes one CAS, as the first one did.
    #[inline]
    pub fn replay(&self, t: &Transition) -> bool {
        if t.fills() {
            return self.try_fill_empty(t.new[0]);
        }
        let w0 = self.w[0].load(Ordering::Relaxed);
        if w0 & (LOCK | EXT) != 0
            || w0 & !HAS_SYNC != t.old[0]
            || self.w[1].load(Ordering::Relaxed) != t.old[1]
        {
            return false;
        }
        self.update_inline(w0, |words| (words == t.old).then_some(t.new))
            .is_some()
    }

    /// Makes the cell `t`'s new words if it holds its old ones with times of the same
    /// classes, for the goroutine at time `now` that took its index at `born` and has
    /// not left it since `t` was made (see [`OwnTransition`]), and returns the update
    /// made, with its times; `None`, the cell unchanged, otherwise.
    #[inline]
    pub fn replay_own(&self, t: &OwnTransition, now: Time, born: Time) -> Option<Transition> {
        let w0 = self.w[0].load(Ordering::Relaxed);
        let old = [w0 & !CELL_BITS, self.w[1].load(Ordering::Relaxed)];
        let same = |i: usize| {
            let (w, class) = (old[i], t.old_class[i]);
            match class {
                EMPTY | FIXED => w == t.old[i],
                _ => w & !TIME_FIELD == t.old[i] && own_class(w, now, born) == Some(class),
            }
        };
        if w0 & (LOCK | EXT) != 0 || !same(0) || !same(1) {
            return None;
        }
        let time_of = |src: u8| match src {
            NOW => time_field(now),
            _ => old[(src - FROM_OLD) as usize] & TIME_FIELD,
        };
        let new = [0, 1].map(|i| match t.new_time[i] {
            EMPTY => 0,
            src => t.new[i] | time_of(src),
        });
        self.update_inline(w0, |words| (words == old).then_some(new))
    }

    /// The slow path's commonest update (byte-wise writes, field by field), under the
    /// cell lock and without decoding: one inline record is of this very access point
    /// (`a.site`, which names the goroutine's index and the kind) at the access's time,
    /// and takes the access's bytes; the other record, if it shares bytes with the
    /// access, must have happened before it and of another epoch (it then loses the
    /// bytes the access covers, as in `apply`). Returns `None`, the cell unchanged, in
    /// every other case (a race among them), which the general path then decides.
    pub fn try_widen(
        &self,
        sites: &SiteTable,
        a: &NewAccess,
        clock: &VClock,
    ) -> Option<Transition> {
        let w0 = self.w[0].load(Ordering::Relaxed);
        if w0 & (LOCK | EXT) != 0 || rec_mask(w0) == 0 {
            return None;
        }
        let mine =
            |w: u64| rec_mask(w) != 0 && rec_site(w) == a.site && rec_time(w) == a.epoch.time();
        if !mine(w0) && !mine(self.w[1].load(Ordering::Relaxed)) {
            return None;
        }
        self.update_inline(w0, |words| {
            let t = (0..2).find(|&t| mine(words[t]))?;
            let (target, other) = (words[t], words[1 - t]);
            let mut rest = other;
            if rec_mask(other) & a.mask != 0 {
                let s = sites.get(rec_site(other));
                let epoch = Epoch::new(s.index, rec_time(other));
                if epoch == a.epoch || !clock.knows(epoch) {
                    return None;
                }
                if covers(a.kind, s.kind) {
                    rest = record_word(rec_site(other), rec_mask(other) & !a.mask, rec_time(other));
                }
            }
            let widened = target | (a.mask as u64) << MASK_SHIFT;
            Some(if rest == 0 {
                [widened, 0]
            } else if t == 0 {
                [widened, rest]
            } else {
                [rest, widened]
            })
        })
    }

    /// The slow path on a spilled cell whose records all sit in the list's head and stay
    /// at most [`EXT_SCAN`]: decided on the words in place (as
    /// [`try_inline`](Cell::try_inline)), the version bumped. Concurrent readers of one
    /// location keep one record each, which spills their cell; each of them changing
    /// epoch then costs this instead of decoding and rewriting the whole list, and a
    /// plain read that only moves its own record forward ([`refreshed_read`]) not even
    /// the general decision. A list left with two records or fewer goes back inline
    /// here, its `Ext` to `spare`: a cell whose records go from two to three and back
    /// every epoch (a struct read field by field, its bytes split between two access
    /// points) spills and returns once per epoch, and both steps are this cheap.
    /// Longer lists take that refresh and the same-epoch check
    /// ([`Cell::long_list_kept`]), then the general decision in place when its outcome
    /// fits the list ([`Cell::long_list_updated`]).
    pub fn try_spilled(
        &self,
        sites: &SiteTable,
        own: &OwnSites,
        a: &NewAccess,
        clock: &VClock,
        merge: Merge,
        spare: &mut ExtStash,
    ) -> bool {
        if !self.is_spilled() {
            return false;
        }
        let w0 = self.lock();
        if w0 & EXT == 0 {
            self.w[0].store(w0, Ordering::Release);
            return false;
        }
        let ext_raw = ext_ptr(self.w[1].load(Ordering::Relaxed));
        // SAFETY: a spilled cell's word 1 encodes its live `Ext`; the cell lock gives
        // exclusive access to it (lock-free readers only load `head`, atomically).
        let ext = unsafe { &mut *ext_raw };
        let words: [u64; EXT_SCAN] = core::array::from_fn(|i| ext.head[i].load(Ordering::Relaxed));
        if let Some(more) = ext.more.as_deref_mut() {
            let done = Self::long_list_kept(&ext.head, &words, more, sites, own, a, clock)
                || Self::long_list_updated(&ext.head, &words, more, sites, a, clock, merge);
            self.unlock_spilled(w0, done);
            return done;
        }
        let result = if let Some(i) = refreshed_read(words, sites, own, a, clock) {
            let mut out = words;
            out[i] = record_word(a.site, a.mask, a.epoch.time());
            Some(out)
        } else {
            match apply_words::<EXT_SCAN>(&words, a, clock, sites, merge) {
                Some((out, n)) if n <= 2 => {
                    // Back inline (records compacted: empty words last). Lock-free
                    // readers of the list see word 0 change and retry.
                    // SAFETY: the cell owns the list (word 1, under the lock) and stops
                    // referring to it with the stores below: this is its last use.
                    spare.put(unsafe { Box::from_raw(ext_raw) });
                    self.store_inline_words([out[0], out[1]], w0 & HAS_SYNC);
                    return true;
                }
                r => r.map(|(out, _)| out),
            }
        };
        if let Some(out) = result {
            for (slot, w) in ext.head.iter().zip(out) {
                slot.store(w, Ordering::Relaxed);
            }
        }
        self.unlock_spilled(w0, result.is_some());
        result.is_some()
    }

    /// A plain read `a` of a spilled cell, decided on the list's head in place when it
    /// changes nothing or only moves the reader's own record forward
    /// ([`refreshed_read`]): the commonest access to a location that several goroutines
    /// read (a mutex's state, a shared map's header), which otherwise goes through the
    /// lock-free check, the memo and the general update one after the other. False (the
    /// cell unchanged) for everything else. `a.site` must be of the reader's current
    /// clock index, so a record with that site and the current time is of its epoch.
    ///
    /// The decision is made on a lock-free snapshot of the head and committed by taking
    /// the lock from the very word 0 the snapshot was checked against: every change of
    /// a spilled list bumps the version in word 0, so the list is still the snapshot.
    /// The lock is then held for one store, which matters on a line the readers share.
    pub fn read_spilled(
        &self,
        sites: &SiteTable,
        own: &OwnSites,
        a: &NewAccess,
        clock: &VClock,
    ) -> bool {
        debug_assert_eq!(a.kind, 0, "plain reads only");
        let w0 = self.w[0].load(Ordering::Acquire);
        if w0 & (LOCK | EXT) != EXT {
            return false;
        }
        let w1 = self.w[1].load(Ordering::Acquire);
        // Word 0 unchanged after the load of word 1 before following it: if the cell
        // came back inline meanwhile, word 1 is a record, not a list (following it
        // faulted in Go's TestRaceIssue5567 at GOMAXPROCS=4).
        if self.w[0].load(Ordering::Acquire) != w0 {
            return false;
        }
        let head = self.spilled_head(w1);
        let words: [u64; EXT_SCAN] = core::array::from_fn(|i| head[i].load(Ordering::Acquire));
        if self.w[0].load(Ordering::Acquire) != w0 {
            return false;
        }
        let now = time_field(a.epoch.time());
        let need = bytes_field(a.mask);
        // A same-epoch hit: a record of the reader's current epoch (its time, and a site
        // of its own: this one or one in its cache, which holds only sites of its clock
        // index) on the bytes, of a kind that covers a plain read. `RUnlock` reading the
        // state word that `RLock` read in the same epoch is one; taken as a refresh, it
        // would write the list's line, which every reader shares, once more per unlock.
        let hit = |w: u64| {
            w & (TIME_FIELD | need) == now | need
                && (rec_site(w) == a.site
                    || own.kind_of(rec_site(w)).is_some_and(|k| covers(k, a.kind)))
        };
        if words.iter().any(|&w| hit(w)) {
            return true;
        }
        // An own read of an earlier time moved to now. Beside a record of the current
        // epoch that covers the read (an own write), that changes no verdict: any access
        // racing with the moved record races with that one too.
        let Some(i) = refreshed_read(words, sites, own, a, clock) else {
            return false;
        };
        if self.w[0]
            .compare_exchange(w0, w0 | LOCK, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        // SAFETY: word 0 is as it was when word 1 was read, so the list is this cell's,
        // and the cell lock gives exclusive access to it.
        let ext = unsafe { &*ext_ptr(w1) };
        // Records past the head were not looked at.
        let refreshed = ext.more.is_none();
        if refreshed {
            ext.head[i].store(
                record_word(a.site, a.mask, a.epoch.time()),
                Ordering::Relaxed,
            );
        }
        self.unlock_spilled(w0, refreshed);
        refreshed
    }

    /// Releases the lock of a spilled cell whose word 0 was `w0` before locking, with a
    /// new version if its list `changed` (lock-free readers check the version).
    fn unlock_spilled(&self, w0: u64, changed: bool) {
        let w0 = if changed {
            (w0 & CELL_BITS & !LOCK) | next_version(w0)
        } else {
            w0
        };
        self.w[0].store(w0, Ordering::Release);
    }

    /// [`Cell::try_spilled`] on a list with records past its head (`more`): only the
    /// updates that leave the list as long as it is, on the words in place — a
    /// same-epoch hit (which the lock-free check, looking at the head only, misses for
    /// the records past it) and a read's refresh ([`refreshed_read`]). Everything else
    /// goes to [`long_list_updated`](Cell::long_list_updated), then, if that cannot
    /// decide it in place, decodes the list ([`Cell::with_records`]). Many goroutines
    /// reading one word (a flag that hundreds of waiters check) keep a record each;
    /// each read would otherwise decode, decide and rewrite them all. True if the
    /// access was decided; the caller then bumps the version (harmless after a hit).
    fn long_list_kept(
        head: &[AtomicU64; EXT_SCAN],
        words: &[u64; EXT_SCAN],
        more: &mut [u64],
        sites: &SiteTable,
        own: &OwnSites,
        a: &NewAccess,
        clock: &VClock,
    ) -> bool {
        let all = words.iter().chain(more.iter()).copied();
        if same_epoch_hit(all.clone(), sites, a) {
            return true;
        }
        let Some(i) = refreshed_read(all, sites, own, a, clock) else {
            return false;
        };
        let word = record_word(a.site, a.mask, a.epoch.time());
        match i.checked_sub(EXT_SCAN) {
            Some(j) => more[j] = word,
            None => head[i].store(word, Ordering::Relaxed),
        }
        true
    }

    /// [`Cell::try_spilled`] on a list with records past its head that
    /// [`long_list_kept`](Cell::long_list_kept) did not decide: the general decision on
    /// the words in place, when its outcome (no race) fits the list as allocated and
    /// stays spilled; false, the list unchanged, otherwise. A goroutine writing a
    /// buffer byte by byte between synchronisations (a `[]bool` filled in channel
    /// order) leaves one record per byte and epoch: eight and more in a cell, each new
    /// access then decided here rather than by decoding the list.
    fn long_list_updated(
        head: &[AtomicU64; EXT_SCAN],
        words: &[u64; EXT_SCAN],
        more: &mut [u64],
        sites: &SiteTable,
        a: &NewAccess,
        clock: &VClock,
        merge: Merge,
    ) -> bool {
        const MAX: usize = 32;
        let total = EXT_SCAN + more.len();
        if total > MAX {
            return false;
        }
        let mut all = [0u64; MAX];
        all[..EXT_SCAN].copy_from_slice(words);
        all[EXT_SCAN..total].copy_from_slice(more);
        let Some((out, n)) = apply_words::<MAX>(&all[..total], a, clock, sites, merge) else {
            return false;
        };
        if n <= 2 || n > total {
            return false; // back inline, or longer: the general path
        }
        for (slot, &w) in head.iter().zip(&out[..EXT_SCAN]) {
            slot.store(w, Ordering::Relaxed);
        }
        more.copy_from_slice(&out[EXT_SCAN..total]);
        true
    }

    /// Word 0 as it is now (flags included).
    #[inline(always)]
    pub fn word0(&self) -> u64 {
        self.w[0].load(Ordering::Acquire)
    }

    /// Whether word 0 `w0` (from [`Cell::word0`]) is that of a spilled cell.
    #[inline(always)]
    pub fn spilled_word(w0: u64) -> bool {
        w0 & EXT != 0
    }

    /// Whether word 0, unlocked and inline, alone makes a whole-cell access a hit.
    #[inline]
    pub fn word0_hits(&self, p: &Probe) -> bool {
        let w0 = self.word0();
        w0 & (LOCK | EXT) == 0 && p.hits(w0, 0xff)
    }

    fn lock(&self) -> u64 {
        let mut spins = 0u32;
        loop {
            let cur = self.w[0].load(Ordering::Relaxed);
            if cur & LOCK == 0
                && self.w[0]
                    .compare_exchange_weak(cur, cur | LOCK, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                return cur;
            }
            spins += 1;
            crate::lock::back_off(spins);
        }
    }

    /// Runs `f` on the cell's (decoded) records under the cell lock, writing the result
    /// back: inline when at most two records remain (a spilled list that shrinks comes
    /// back inline, so the lock-free fast path sees the cell again), else out of line.
    pub fn with_records<R>(
        &self,
        sites: &SiteTable,
        scratch: &mut Vec<Record>,
        spare: &mut ExtStash,
        f: impl FnOnce(&mut Vec<Record>) -> R,
    ) -> R {
        let w0 = self.lock();
        let bits = w0 & CELL_BITS & !LOCK;
        scratch.clear();
        let ext = if bits & EXT != 0 {
            let ext = ext_ptr(self.w[1].load(Ordering::Relaxed));
            // SAFETY: an EXT cell's word 1 encodes a live `Box<Ext>` owned by the cell,
            // and the cell lock gives exclusive access to it.
            unsafe { &*ext }.load(sites, scratch);
            Some(ext)
        } else {
            let w1 = self.w[1].load(Ordering::Relaxed);
            scratch.extend([w0, w1].iter().filter_map(|&w| Record::from_word(w, sites)));
            None
        };
        let r = f(scratch);
        match ext {
            Some(ext) if scratch.len() > 2 => {
                // SAFETY: as above, still under the lock.
                unsafe { &mut *ext }.store(scratch);
                self.w[0].store(bits | next_version(w0), Ordering::Release);
            }
            Some(ext) => {
                // SAFETY: as above; the cell stops referring to the list here, under the
                // lock, so this is its last use.
                spare.put(unsafe { Box::from_raw(ext) });
                self.store_inline(scratch, bits & !EXT);
            }
            None if scratch.len() <= 2 => self.store_inline(scratch, bits),
            None => {
                let mut ext = spare.take();
                ext.store(scratch);
                self.store_spilled(ext, bits);
            }
        }
        r
    }

    /// Writes at most two records inline and releases the lock (`bits` without EXT).
    fn store_inline(&self, records: &[Record], bits: u64) {
        let word = |i: usize| records.get(i).map_or(0, Record::word);
        self.store_inline_words([word(0), word(1)], bits);
    }

    /// Writes two record words inline (empty words last) and releases the lock: word 1
    /// first, so that a reader seeing word 0 unlocked sees the new word 1 (`bits`, the
    /// flags word 0 keeps, without EXT).
    fn store_inline_words(&self, words: [u64; 2], bits: u64) {
        self.w[1].store(words[1], Ordering::Relaxed);
        self.w[0].store(words[0] | bits, Ordering::Release);
    }

    /// Makes the locked cell own the list `ext` (filled already) under a fresh version,
    /// and releases the lock (`bits`, the flags word 0 keeps, without EXT).
    fn store_spilled(&self, ext: Box<Ext>, bits: u64) {
        self.w[1].store(ext_word(Box::into_raw(ext)), Ordering::Relaxed);
        self.w[0].store(bits | EXT | first_version(), Ordering::Release);
    }

    /// Whether the records live out of line (the cell owns an [`Ext`]).
    pub fn is_spilled(&self) -> bool {
        self.w[0].load(Ordering::Relaxed) & EXT != 0
    }

    pub fn has_sync(&self) -> bool {
        self.w[0].load(Ordering::Relaxed) & HAS_SYNC != 0
    }

    pub fn set_has_sync(&self) {
        if self.has_sync() {
            return;
        }
        let w0 = self.lock();
        self.w[0].store((w0 | HAS_SYNC) & !LOCK, Ordering::Release);
    }

    pub fn is_empty(&self) -> bool {
        self.w.iter().all(|w| w.load(Ordering::Relaxed) == 0)
    }

    /// Calls `f` with every record word of the cell (flags cleared), as one consistent
    /// snapshot: a record present throughout the call is always seen. Inline cells are
    /// read without the lock (word 0 unchanged around the read of word 1: a record can
    /// only leave word 1 by being removed, by moving to word 0 or by a spill, and the last
    /// two change word 0); spilled cells are read under it.
    pub fn record_words(&self, mut f: impl FnMut(u64)) {
        let mut emit = |w: u64| {
            let w = w & !CELL_BITS;
            if rec_mask(w) != 0 {
                f(w);
            }
        };
        loop {
            let w0 = self.w[0].load(Ordering::Acquire);
            if w0 & LOCK != 0 {
                core::hint::spin_loop();
                continue;
            }
            if w0 & EXT == 0 {
                let w1 = self.w[1].load(Ordering::Acquire);
                if self.w[0].load(Ordering::Acquire) != w0 {
                    continue;
                }
                emit(w0);
                emit(w1);
                return;
            }
            let w0 = self.lock();
            if w0 & EXT != 0 {
                // SAFETY: a spilled cell's word 1 encodes its live `Ext`; the cell lock
                // gives exclusive access to it.
                let ext = unsafe { &*ext_ptr(self.w[1].load(Ordering::Relaxed)) };
                ext.head
                    .iter()
                    .for_each(|w| emit(w.load(Ordering::Relaxed)));
                ext.more().iter().for_each(|&w| emit(w));
            } else {
                emit(w0);
                emit(self.w[1].load(Ordering::Relaxed));
            }
            // Unchanged: the version stays, as nothing was updated.
            self.w[0].store(w0, Ordering::Release);
            return;
        }
    }

    /// [`Cell::reset`] of a cell without flags (records only, inline), or nothing for an
    /// empty one; false for a cell with flags, left as it is for the caller (a sync
    /// object must go first). For memory no access can reach, as `reset`.
    #[inline(always)]
    pub fn clear_if_plain(&self) -> bool {
        self.clear_unless(CELL_BITS)
    }

    /// Both words or'ed together, relaxed: zero exactly when the cell is empty.
    #[inline(always)]
    fn word_bits(&self) -> u64 {
        self.w[0].load(Ordering::Relaxed) | self.w[1].load(Ordering::Relaxed)
    }

    /// Empties an inline cell none of whose `flags` is set, with plain stores and none
    /// at all when it is already empty (so an untouched page stays untouched); false,
    /// the cell as it is, when one is set.
    #[inline(always)]
    fn clear_unless(&self, flags: u64) -> bool {
        let w0 = self.w[0].load(Ordering::Relaxed);
        if w0 & flags != 0 {
            return false;
        }
        if w0 | self.w[1].load(Ordering::Relaxed) != 0 {
            self.w[1].store(0, Ordering::Relaxed);
            self.w[0].store(0, Ordering::Release);
        }
        true
    }

    /// Forgets every record (and the sync marker); frees the out-of-line list.
    ///
    /// Called only on memory being allocated or freed, which no access can reach (Go
    /// touches neither unreachable nor unallocated memory), so an inline cell is
    /// cleared with plain stores: the lock's CAS, once per cell of every allocation,
    /// was a locked instruction for nothing. A cell found locked or owning an
    /// out-of-line list still takes the lock, so the list is freed exactly once even if
    /// a buggy program did touch it.
    pub fn reset(&self) {
        if self.clear_unless(LOCK | EXT) {
            return;
        }
        let w0 = self.lock();
        if w0 & EXT != 0 {
            let ext = ext_ptr(self.w[1].load(Ordering::Relaxed));
            // SAFETY: as in `with_records`; after this the cell no longer refers to it.
            drop(unsafe { Box::from_raw(ext) });
        }
        self.w[1].store(0, Ordering::Relaxed);
        self.w[0].store(0, Ordering::Release);
    }

    pub fn clear_sync(&self) {
        let w0 = self.lock();
        self.w[0].store(w0 & !(HAS_SYNC | LOCK), Ordering::Release);
    }
}

/// The directly mapped shadow: `cell(addr) = (addr & !7) * SHADOW_SCALE + offset`.
pub struct Shadow {
    offset: usize,
    /// Where the page marks live (see [`Shadow::mark`]).
    marks: usize,
    /// Where the pages' reset generations live (see [`Shadow::generation`]).
    gens: usize,
    /// Program ranges whose shadow is mapped: data+bss, and the heap span.
    data: [AtomicUsize; 2],
    heap: [AtomicUsize; 2],
}

/// Where the production shadow starts: `0x1000_0000_0000` plus 2x the program address,
/// which keeps it clear of Go's race-mode heap hints (`0xc0..0xe0 << 32`), the binary
/// and the mmap area near `0x7f..`.
pub const SHADOW_OFFSET: usize = 0x1000_0000_0000;

/// The page marks sit this far above the shadow offset: beyond the shadow of any
/// user-space address Go's heap uses (`4 * 0xe0_0000_0000 < 2^42`).
const MARKS_DELTA: usize = 1 << 43;
const PAGE: usize = 4096;
/// Program bytes whose shadow fills one shadow page; the granularity of page marks.
pub const APP_PER_SHADOW_PAGE: usize = PAGE / SHADOW_SCALE;
/// Page marks (one byte per shadow page): the page may hold records / it holds a cell
/// that owns an out-of-line list or a sync object / a goroutine remembered a range over
/// it (see [`Shadow::mark_seen`]), so its resets count in its generation.
const MARK_DIRTY: u8 = 1;
const MARK_OWNS: u8 = 2;
const MARK_SEEN: u8 = 4;
/// The pages' reset generations (a `u32` per shadow page) sit this far above the shadow
/// offset: past the marks of any address Go's heap uses.
const GENS_DELTA: usize = MARKS_DELTA + (1 << 40);
const MARK_SIZE: usize = core::mem::size_of::<AtomicU8>();
const GEN_SIZE: usize = core::mem::size_of::<AtomicU32>();

/// The start of the program memory whose shadow is the page after `addr`'s.
#[inline(always)]
const fn next_page(addr: usize) -> usize {
    (addr / APP_PER_SHADOW_PAGE + 1) * APP_PER_SHADOW_PAGE
}

/// Where the entry of `addr`'s shadow page sits in a table of `size`-byte entries, one
/// per shadow page, starting at `base` (the marks, the generations).
#[inline(always)]
const fn page_entry(base: usize, size: usize, addr: usize) -> usize {
    addr / APP_PER_SHADOW_PAGE * size + base
}

/// What [`Shadow::reset_range`] must clear.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Reset {
    /// Every record: the memory is about to be used afresh.
    All,
    /// Only what a cell owns (out-of-line lists, sync objects), so that nothing leaks;
    /// other records may stay until [`Reset::All`] clears them.
    Owners,
}

/// Freed program ranges spanning at least this many bytes of whole shadow pages are reset
/// by `madvise`, which also returns their memory to the kernel; smaller ranges, and
/// ranges being allocated, are cleared cell by cell (madvise + refault costs more than it
/// saves there).
const MADVISE_MIN_APP: usize = 4 << 20;

impl Shadow {
    pub const fn new(offset: usize) -> Self {
        Shadow {
            offset,
            marks: offset + MARKS_DELTA,
            gens: offset + GENS_DELTA,
            data: [AtomicUsize::new(0), AtomicUsize::new(0)],
            heap: [AtomicUsize::new(0), AtomicUsize::new(0)],
        }
    }

    #[inline]
    pub fn covers(&self, addr: usize) -> bool {
        let within = |r: &[AtomicUsize; 2]| {
            addr >= r[0].load(Ordering::Relaxed) && addr < r[1].load(Ordering::Relaxed)
        };
        within(&self.heap) || within(&self.data)
    }

    /// Whether all of `[lo, hi)` (non-empty) lies in one covered range, so that every
    /// cell of it has shadow.
    #[inline]
    pub fn covers_span(&self, lo: usize, hi: usize) -> bool {
        let within = |r: &[AtomicUsize; 2]| {
            lo >= r[0].load(Ordering::Relaxed) && hi <= r[1].load(Ordering::Relaxed)
        };
        lo < hi && (within(&self.heap) || within(&self.data))
    }

    #[inline]
    pub fn cell(&self, addr: usize) -> &Cell {
        self.cell_at(self.offset, addr)
    }

    /// [`Shadow::cell`] with this shadow's offset passed in: a constant where the host
    /// fixes it (see `Host::FIXED_SHADOW_OFFSET`), so that it folds into the address.
    #[inline(always)]
    pub fn cell_at(&self, offset: usize, addr: usize) -> &Cell {
        debug_assert_eq!(offset, self.offset, "another shadow's offset");
        let p = (addr & !7).wrapping_mul(SHADOW_SCALE).wrapping_add(offset);
        // SAFETY: callers check `covers(addr)` first; the shadow of every covered address
        // is mapped read-write for the engine's lifetime, and Cell is plain atomics.
        unsafe { &*(p as *const Cell) }
    }

    fn mark_byte(&self, addr: usize) -> &AtomicU8 {
        let p = page_entry(self.marks, MARK_SIZE, addr);
        // SAFETY: callers pass covered addresses, whose marks are mapped with their shadow
        // for the engine's lifetime; AtomicU8 is valid for any byte.
        unsafe { &*(p as *const AtomicU8) }
    }

    /// Records that the shadow page of `addr` (covered) holds a cell with an out-of-line
    /// list or a sync object, so that range resets visit its cells; pages without this
    /// mark can be dropped wholesale.
    pub fn mark(&self, addr: usize) {
        self.set_mark(addr, MARK_OWNS);
    }

    /// Records that the shadow page of `addr` (covered) may hold records; resets skip
    /// pages without any mark (nothing to clear there). Called before a record is
    /// written.
    #[inline]
    pub fn mark_dirty(&self, addr: usize) {
        self.set_mark(addr, MARK_DIRTY);
    }

    fn generation_word(&self, addr: usize) -> &AtomicU32 {
        let p = page_entry(self.gens, GEN_SIZE, addr);
        // SAFETY: callers pass covered addresses, whose generations are mapped with their
        // shadow for the engine's lifetime; AtomicU32 is valid for any 4 aligned bytes.
        unsafe { &*(p as *const AtomicU32) }
    }

    /// Marks the pages of `[lo, hi)` (non-empty, covered) as under a range a goroutine
    /// remembers, so that resets there count in their generation; resets of other pages
    /// (most: small objects) leave the generations alone. Called before the generation
    /// is read.
    pub fn mark_seen(&self, lo: usize, hi: usize) {
        let mut page = lo;
        while page < hi {
            self.set_mark(page, MARK_SEEN);
            page = next_page(page);
        }
    }

    /// Counts a reset that may remove records from the shadow page of `addr` (covered).
    /// A plain increment: resets racing on one page (different objects) may count once,
    /// which still changes the value that [`Shadow::generation`] was computed from.
    fn bump_generation(&self, addr: usize) {
        let g = self.generation_word(addr);
        g.store(g.load(Ordering::Relaxed).wrapping_add(1), Ordering::Release);
    }

    /// The sum of the reset generations of the shadow pages of `[lo, hi)` (non-empty,
    /// covered): it changes whenever a reset (an allocation or a free) may have removed
    /// records there since, and nothing else removes a goroutine's records of its
    /// current epoch but a racing access, which reports (see the module doc). So a
    /// goroutine that covered a range with records of this epoch knows, while this sum
    /// and its epoch stay the same, that its records are all still there (see
    /// `Engine::range_seen`). Counters wrap at 2^32 resets of one page.
    pub fn generation(&self, lo: usize, hi: usize) -> u64 {
        let (first, last) = (lo / APP_PER_SHADOW_PAGE, (hi - 1) / APP_PER_SHADOW_PAGE);
        let base = self.generation_word(lo) as *const AtomicU32;
        (0..=last - first)
            // SAFETY: the pages of `[lo, hi)` are covered, so their generations are
            // mapped, consecutively from `lo`'s.
            .map(|i| unsafe { &*base.add(i) }.load(Ordering::Acquire) as u64)
            .sum()
    }

    #[inline]
    fn set_mark(&self, addr: usize, bit: u8) {
        let m = self.mark_byte(addr);
        if m.load(Ordering::Relaxed) & bit == 0 {
            m.fetch_or(bit, Ordering::Relaxed);
        }
    }

    /// The address of the first whole cell from `a` (aligned) towards `end` whose word 0
    /// is not `w0`, or of the last whole cell's end: the same-epoch scan of long ranges
    /// (copies), whose cells, written by one access, hold the same word. Stepped by
    /// pointer, four cells (a cache line of shadow) per round with an early exit. Long
    /// copies are bound by the shadow's memory traffic, not by this loop (an AVX2 scan
    /// of eight cells per round halved its instructions and left the wall time of
    /// `micro/SliceCopy` unchanged). `[a, end)` must be covered.
    pub fn skip_equal_word0(&self, a: usize, end: usize, w0: u64) -> usize {
        let cells = end.saturating_sub(a) / 8;
        let first: *const Cell = self.cell(a);
        // SAFETY: the `cells` cells from `a` are consecutive and covered (the caller's
        // contract), so their shadow is mapped; every index below is `< cells`.
        let word0 = |i: usize| unsafe { &*first.add(i) }.w[0].load(Ordering::Relaxed);
        let mut i = 0;
        while i + 4 <= cells
            && word0(i) == w0
            && word0(i + 1) == w0
            && word0(i + 2) == w0
            && word0(i + 3) == w0
        {
            i += 4;
        }
        while i < cells && word0(i) == w0 {
            i += 1;
        }
        a + 8 * i
    }

    /// Replays `t` ([`Cell::replay`]) on the whole cells from `a` (aligned) towards `end`
    /// for as long as they take it; returns the address of the first cell that did not.
    /// The cells of one range written by one access hold the same words, so a range's
    /// fresh or once-written memory (a slice grown by `growslice`, whose copy is not
    /// instrumented) takes one CAS per cell in a tight loop. `[a, end)` must be covered.
    pub fn replay_run(&self, t: &Transition, a: usize, end: usize) -> usize {
        let cells = end.saturating_sub(a) / 8;
        // Stepped by pointer: the shadow's base is not reloaded after each CAS.
        let first: *const Cell = self.cell(a);
        // SAFETY: the `cells` cells from `a` are consecutive and covered (the caller's
        // contract), so their shadow is mapped; `i < cells` below.
        let cell = |i: usize| unsafe { &*first.add(i) };
        let mut i = 0;
        if t.fills() {
            while i < cells {
                let at = a + 8 * i;
                // Before the record exists, as in `Engine::fill_fresh`; once per page.
                if i == 0 || at.is_multiple_of(APP_PER_SHADOW_PAGE) {
                    self.mark_dirty(at);
                }
                if !cell(i).try_fill_empty(t.new[0]) {
                    break;
                }
                i += 1;
            }
        } else {
            while i < cells && cell(i).replay(t) {
                i += 1;
            }
        }
        a + 8 * i
    }

    /// Forgets about `[addr, addr+size)`: `reset_cell` runs on each non-empty cell of a
    /// page that may hold records (see [`Shadow::mark_dirty`]) or, with
    /// [`Reset::Owners`], only of a page that owns something (an out-of-line list, a sync
    /// object; see [`Shadow::mark`]). Of large ranges reset with [`Reset::Owners`] (frees),
    /// whole shadow pages are then zeroed by `madvise`, which returns them to the kernel,
    /// and only pages that own something are visited first.
    pub fn reset_range(
        &self,
        addr: usize,
        size: usize,
        mode: Reset,
        mut reset_cell: impl FnMut(usize, &Cell),
    ) {
        let end = addr.saturating_add(size);
        let skip = match mode {
            Reset::All => !0,
            Reset::Owners => MARK_OWNS,
        };
        // Visits the cells of `[lo, hi)`, which lies within one page of marks.
        let mut walk_in_page = |lo: usize, hi: usize| {
            let whole = self.covers_span(lo, hi);
            if !whole && !self.covers(lo) && !self.covers(hi - 1) {
                return;
            }
            let m = self.mark_byte(lo);
            let marks = m.load(Ordering::Relaxed);
            if marks & skip == 0 {
                return; // nothing to do here since the last reset
            }
            if marks & MARK_SEEN != 0 {
                self.bump_generation(lo);
            }
            // Flagless cells are cleared in place; the rest go to `reset_cell`.
            let mut visit = |base: usize, cell: &Cell| {
                if !cell.clear_if_plain() {
                    reset_cell(base, cell);
                }
            };
            let mut base = lo & !7;
            if whole {
                // SAFETY: `[lo, hi)` is covered, so the shadow of its cells is mapped (one
                // contiguous range: cells are laid out in address order), and Cell is
                // plain atomics.
                let cells = unsafe {
                    core::slice::from_raw_parts(
                        self.cell(base) as *const Cell,
                        (hi - base).div_ceil(8),
                    )
                };
                // A cache line of shadow (four cells) at a time: most cells of a dirty
                // page are empty (a goroutine's stack is marked by the few frames it
                // used), and one test on the words or'ed together skips them.
                // Whole lines only: with the short last one in the loop (`chunks`), the
                // fold is not unrolled (WaitGroupFanOut +8% instructions).
                let mut lines = cells.chunks_exact(4);
                for (k, line) in lines.by_ref().enumerate() {
                    let any = line.iter().fold(0, |acc, c| acc | c.word_bits());
                    if any != 0 {
                        for (j, cell) in line.iter().enumerate() {
                            visit(base + 8 * (4 * k + j), cell);
                        }
                    }
                }
                let done = cells.len() - lines.remainder().len();
                for (j, cell) in lines.remainder().iter().enumerate() {
                    visit(base + 8 * (done + j), cell);
                }
            } else {
                while base < hi {
                    if self.covers(base.max(lo)) {
                        visit(base, self.cell(base));
                    }
                    base += 8;
                }
            }
            if whole && lo.is_multiple_of(APP_PER_SHADOW_PAGE) && hi - lo == APP_PER_SHADOW_PAGE {
                m.store(0, Ordering::Relaxed);
            }
        };
        let mut walk = |lo: usize, hi: usize| {
            let mut a = lo;
            while a < hi {
                let page_end = next_page(a);
                let b = hi.min(page_end);
                walk_in_page(a, b);
                a = b;
            }
        };
        let first = addr.div_ceil(APP_PER_SHADOW_PAGE) * APP_PER_SHADOW_PAGE;
        let last = end / APP_PER_SHADOW_PAGE * APP_PER_SHADOW_PAGE;
        // Only frees give shadow back: memory being allocated is about to be used (a
        // goroutine's stack grown to megabytes runs deep at once), and its refaults cost
        // more than clearing the pages it dirtied in place.
        if mode == Reset::All || last < first + MADVISE_MIN_APP || !self.covers_span(first, last) {
            walk(addr, end);
            return;
        }
        walk(addr, first);
        walk(last, end);
        for page in (first..last).step_by(APP_PER_SHADOW_PAGE) {
            let m = self.mark_byte(page);
            let marks = m.load(Ordering::Relaxed);
            if marks & MARK_OWNS != 0 {
                walk(page, page + APP_PER_SHADOW_PAGE);
            }
            if marks & MARK_SEEN != 0 {
                self.bump_generation(page);
            }
            if marks != 0 {
                m.store(0, Ordering::Relaxed);
            }
        }
        let s_first = first * SHADOW_SCALE + self.offset;
        // SAFETY: `[first, last)` lies in one covered range, so its shadow is our own
        // mapping; after the walk above no cell in it owns anything, and zero is the
        // empty cell.
        unsafe { sys::madvise_dontneed(s_first as *mut u8, (last - first) * SHADOW_SCALE) };
    }

    /// Calls `f` with the epoch-and-site part of every record in the shadow (see
    /// [`Cell::record_words`]), and returns how many bytes of resident shadow it read, or
    /// `None` if the kernel could not say which pages are resident (nothing is then
    /// known to be complete).
    /// Pages the kernel does not hold are all zero (never written, or given back by
    /// `reset_range`), so only resident ones are read.
    pub fn for_each_record(&self, mut f: impl FnMut(SiteId, Time)) -> Option<usize> {
        const CHUNK: usize = 64 << 20;
        let mut resident = Vec::new();
        let mut scanned = 0;
        let mut last = u64::MAX;
        for range in [&self.data, &self.heap] {
            let (lo, hi) = (
                range[0].load(Ordering::Acquire),
                range[1].load(Ordering::Acquire),
            );
            if hi <= lo {
                continue;
            }
            let s_lo = ((lo & !7) * SHADOW_SCALE + self.offset) & !(PAGE - 1);
            let s_hi = (((hi + 7) & !7) * SHADOW_SCALE + self.offset).div_ceil(PAGE) * PAGE;
            let mut chunk = s_lo;
            while chunk < s_hi {
                let len = CHUNK.min(s_hi - chunk);
                resident.clear();
                resident.resize(len / PAGE, 0u8);
                if !sys::mincore(chunk, len, &mut resident) {
                    return None;
                }
                for (i, &r) in resident.iter().enumerate() {
                    if r & 1 == 0 {
                        continue;
                    }
                    let page = chunk + i * PAGE;
                    scanned += PAGE;
                    for c in (page..page + PAGE).step_by(core::mem::size_of::<Cell>()) {
                        // SAFETY: `c` is a cell-aligned address inside the shadow of a
                        // mapped range, which stays mapped for the engine's lifetime.
                        let cell = unsafe { &*(c as *const Cell) };
                        cell.record_words(|w| {
                            // Neighbouring cells often hold the same access.
                            let key = w & !(0xff_u64 << MASK_SHIFT);
                            if key != last {
                                last = key;
                                f(rec_site(w), rec_time(w));
                            }
                        });
                    }
                }
                chunk += len;
            }
        }
        Some(scanned)
    }

    fn map_range(&self, lo: usize, hi: usize) -> bool {
        self.map_per_page(self.marks, MARK_SIZE, lo, hi)
            && self.map_per_page(self.gens, GEN_SIZE, lo, hi)
            && self.map_shadow_range(lo, hi)
    }

    /// Maps a table of `size`-byte entries, one per shadow page, at `base` (the marks,
    /// the generations) for `[lo, hi)`. Neighbouring ranges can share a page of it, so
    /// a page that is already mapped (ours) is kept.
    fn map_per_page(&self, base: usize, size: usize, lo: usize, hi: usize) -> bool {
        let m_lo = page_entry(base, size, lo) & !(PAGE - 1);
        let m_hi = (page_entry(base, size, hi - 1) + size).div_ceil(PAGE) * PAGE;
        let flags = sys::MAP_NORESERVE | sys::MAP_FIXED_NOREPLACE;
        let rw = sys::PROT_READ | sys::PROT_WRITE;
        if sys::mmap_anon(m_lo, m_hi - m_lo, rw, flags) == Some(m_lo as *mut u8) {
            return true;
        }
        (m_lo..m_hi).step_by(PAGE).all(|p| {
            let got = sys::mmap_anon(p, PAGE, rw, flags);
            // A page at `p` that was already mapped belongs to an earlier range's marks.
            got == Some(p as *mut u8) || got.is_none()
        })
    }

    fn map_shadow_range(&self, lo: usize, hi: usize) -> bool {
        let s_lo = ((lo & !7) * SHADOW_SCALE + self.offset) & !(PAGE - 1);
        let s_hi = ((hi + 7) & !7) * SHADOW_SCALE + self.offset;
        let s_hi = s_hi.div_ceil(PAGE) * PAGE;
        if s_hi <= s_lo {
            return true;
        }
        let got = sys::mmap_anon(
            s_lo,
            s_hi - s_lo,
            sys::PROT_READ | sys::PROT_WRITE,
            sys::MAP_NORESERVE | sys::MAP_FIXED_NOREPLACE,
        );
        got == Some(s_lo as *mut u8)
    }

    /// Maps the shadow for program range `[addr, addr+size)`. The first range below the
    /// heap is data+bss; heap ranges extend one contiguous span, as Go's arena hints grow.
    pub fn map(&self, addr: usize, size: usize) -> bool {
        let end = addr.saturating_add(size);
        let heapish = self.data[1].load(Ordering::Relaxed) != 0 || addr >= 0xc0_0000_0000;
        if !heapish {
            if !self.map_range(addr, end) {
                return false;
            }
            self.data[0].store(addr, Ordering::Relaxed);
            self.data[1].store(end, Ordering::Release);
            return true;
        }
        let (lo, hi) = (
            self.heap[0].load(Ordering::Relaxed),
            self.heap[1].load(Ordering::Relaxed),
        );
        if hi == 0 {
            if !self.map_range(addr, end) {
                return false;
            }
            self.heap[0].store(addr, Ordering::Relaxed);
            self.heap[1].store(end, Ordering::Release);
            return true;
        }
        // Extend the span; map only what is new (shadow pages of neighbouring ranges
        // may share a page, so round inward to avoid re-mapping it).
        const SPAN_ALIGN: usize = 4096 / SHADOW_SCALE * 8;
        if addr < lo {
            let new_hi = lo & !(SPAN_ALIGN - 1);
            if !self.map_range(addr, new_hi) {
                return false;
            }
            self.heap[0].store(addr, Ordering::Release);
        }
        if end > hi {
            let new_lo = hi.div_ceil(SPAN_ALIGN) * SPAN_ALIGN;
            if !self.map_range(new_lo, end) {
                return false;
            }
            self.heap[1].store(end, Ordering::Release);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: u8 = KIND_WRITE;
    const R: u8 = 0;
    const AW: u8 = KIND_WRITE | KIND_ATOMIC;
    const AR: u8 = KIND_ATOMIC;

    #[test]
    fn covers_and_conflicts_follow_the_rule() {
        assert!(covers(W, W) && covers(W, R) && covers(W, AW) && covers(W, AR));
        assert!(covers(AW, AW) && covers(AW, AR) && !covers(AW, W) && !covers(AW, R));
        assert!(covers(R, R) && covers(R, AR) && !covers(R, W) && !covers(R, AW));
        assert!(covers(AR, AR) && !covers(AR, R) && !covers(AR, W));
        assert!(conflicts(W, R) && conflicts(R, W) && conflicts(W, W) && !conflicts(R, R));
        assert!(conflicts(AW, R) && conflicts(W, AR) && !conflicts(AW, AR) && !conflicts(AW, AW));
    }

    fn clock(entries: &[(u32, u32)]) -> VClock {
        let mut c = VClock::new();
        for &(i, t) in entries {
            c.set(i, t);
        }
        c
    }

    /// A small deterministic generator for the randomized tests: `next(n)` is in `0..n`.
    fn xorshift(mut seed: u64) -> impl FnMut(u64) -> u64 {
        move |n| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        }
    }

    /// `apply` with a site table of its own (the sites here are made-up ids).
    fn ap(records: &mut Vec<Record>, a: &NewAccess, clock: &VClock) -> Option<Record> {
        let sites = SiteTable::new();
        apply(records, a, clock, |o, om, n, nm| sites.merge(o, om, n, nm))
    }

    fn acc(i: u32, t: u32, mask: u8, kind: u8) -> NewAccess {
        NewAccess {
            epoch: Epoch::new(i, t),
            site: i * 100 + t,
            mask,
            kind,
        }
    }

    #[test]
    fn quick_hit_needs_the_site_cached_and_refill_caches_own_sites_only() {
        let sites = SiteTable::new();
        let (mine, theirs) = (sites.intern(1, W, 7), sites.intern(2, W, 7));
        let cell = Cell {
            w: [
                AtomicU64::new(record_word(mine, 0x0f, 5)),
                AtomicU64::new(record_word(theirs, 0xf0, 5)),
            ],
        };
        let mut own = OwnSites::new();
        let epoch = Epoch::new(1, 5);
        let probe = Probe::new(&sites, &own, epoch, R);
        assert!(!cell.quick_hit(&probe, 0x01), "the site is not cached yet");
        assert!(
            cell.fast_path_hit(&probe, 0x01),
            "the full check finds it in the table"
        );
        assert!(
            cell.worth_a_second_look(&own, 5),
            "a record of time 5 is uncached"
        );
        assert!(!cell.worth_a_second_look(&own, 6), "no record of time 6");
        assert!(own.refill(&cell, &sites, epoch));
        assert!(
            cell.worth_a_second_look(&own, 5),
            "index 2's site is never cached, so a second look stays possible"
        );
        assert!(
            !own.refill(&cell, &sites, epoch),
            "nothing new to add: the quick check was already exact"
        );
        let probe = Probe::new(&sites, &own, epoch, R);
        assert!(cell.quick_hit(&probe, 0x01));
        assert!(
            !cell.quick_hit(&probe, 0x10),
            "index 2's record is not this goroutine's"
        );
        assert!(!cell.fast_path_hit(&probe, 0x10));
        let later = Probe::new(&sites, &own, Epoch::new(1, 6), R);
        assert!(
            !cell.quick_hit(&later, 0x01),
            "another time is another epoch"
        );
    }

    /// `try_widen`, where it acts, leaves exactly what `apply` leaves, and no race.
    #[test]
    fn widening_agrees_with_apply() {
        let sites = SiteTable::new();
        let mut next = xorshift(0x2545_f491_4f6c_dd1du64);
        let kinds = [R, W, AR, AW];
        let mut widened = 0;
        for _ in 0..100_000 {
            let c = clock(&[(0, 1 + next(3) as u32), (1, 1 + next(3) as u32)]);
            let rec = |i: u32, t: u32, k: u8, stack: u32, mask: u8| Record {
                epoch: Epoch::new(i, t),
                mask,
                kind: k,
                site: sites.intern(i, k, stack),
            };
            let mut recs = vec![rec(
                next(2) as u32,
                1 + next(3) as u32,
                kinds[next(4) as usize],
                1 + next(2) as u32,
                1 + next(255) as u8,
            )];
            if next(3) != 0 {
                let (i, stack) = (next(2) as u32, 1 + next(3) as u32);
                let r = rec(
                    i,
                    1 + next(3) as u32,
                    kinds[next(4) as usize],
                    stack,
                    1 + next(255) as u8,
                );
                if r.epoch != recs[0].epoch || r.kind != recs[0].kind {
                    recs.push(r);
                }
            }
            let (idx, kind) = (next(2) as u32, kinds[next(4) as usize]);
            let a = NewAccess {
                epoch: Epoch::new(idx, c.get(idx)),
                mask: 1 + next(255) as u8,
                kind,
                site: sites.intern(idx, kind, 1 + next(2) as u32),
            };
            let cell = Cell {
                w: [0, 1].map(|i| AtomicU64::new(recs.get(i).map_or(0, Record::word))),
            };
            if cell.try_widen(&sites, &a, &c).is_none() {
                assert_eq!(
                    cell.w[0].load(Ordering::Relaxed),
                    recs[0].word(),
                    "unchanged"
                );
                continue;
            }
            widened += 1;
            let mut full = recs.clone();
            let race = apply(&mut full, &a, &c, |o, om, n, nm| sites.merge(o, om, n, nm));
            assert!(race.is_none());
            let mut got: Vec<u64> = cell.w.iter().map(|w| w.load(Ordering::Relaxed)).collect();
            got.retain(|&w| w != 0);
            let mut want: Vec<u64> = full.iter().map(Record::word).collect();
            got.sort_unstable();
            want.sort_unstable();
            assert_eq!(
                got,
                want,
                "{recs:?} + {:?}",
                (a.epoch, a.mask, a.kind, a.site)
            );
        }
        assert!(widened > 1000, "the case arises ({widened} of 100000)");
    }

    /// `try_own` (records decided from the goroutine's site cache), where it acts, leaves
    /// exactly what `apply_words::<2>` and `apply` leave, and never acts on a race; it
    /// acts whenever every record's site is cached and `apply_words` decides. Records
    /// are the goroutine's own (cached or not) or another index's; own records of
    /// earlier times may be unknown to the clock (a hole left by the index's previous
    /// owner), and own times past the clock's entry are never known.
    #[test]
    fn own_path_agrees_with_apply() {
        let sites = SiteTable::new();
        let mut next = xorshift(0x5851_f42d_4c95_7f2du64);
        let kinds = [R, W, AR, AW];
        let idx = 1u32;
        let (mut acted, mut races, mut missing, mut unknown_own) = (0, 0, 0, 0);
        let (mut merged, mut replaced, mut in_hole_kept) = (0, 0, 0);
        for _ in 0..200_000 {
            let now = 4 + next(3) as u32;
            let mut c = VClock::new();
            c.set(0, 1 + next(8) as u32);
            c.set(2, 1 + next(8) as u32);
            if next(2) == 0 {
                // A reused index: times (lo, hi] of the previous owner stay unknown.
                let lo = next(now as u64 - 1) as u32;
                let hi = lo + 1 + next((now - 1 - lo) as u64) as u32;
                c.set(idx, lo);
                c.add_hole(idx, lo, hi);
            }
            c.set(idx, now);
            let mut own = OwnSites::new();
            let mut recs: Vec<Record> = Vec::new();
            for _ in 0..1 + next(2) {
                let i = [idx, idx, idx, 0, 2][next(5) as usize];
                let t = if i == idx {
                    // Mostly the current time or just before; sometimes past the clock.
                    [now, now, now - 1, now - 2, now - 3, now + 1][next(6) as usize]
                } else {
                    1 + next(8) as u32
                };
                let k = kinds[next(4) as usize];
                let e = Epoch::new(i, t);
                if recs.iter().any(|r| r.epoch == e && r.kind == k) {
                    continue;
                }
                let mask = 1 + next(255) as u8;
                let mut site = sites.intern(i, k, 1 + next(3) as u32);
                if next(4) == 0 && mask & 0x0f != 0 && mask & 0xf0 != 0 {
                    let other = sites.intern(i, k, 4 + next(2) as u32);
                    site = sites.merge(site, mask & 0x0f, other, mask & 0xf0);
                }
                if i == idx && next(5) != 0 {
                    own.insert(site, k);
                }
                recs.push(Record {
                    epoch: e,
                    mask,
                    kind: k,
                    site,
                });
            }
            unknown_own += recs
                .iter()
                .any(|r| r.epoch.index() == idx && r.epoch.time() < now && !c.knows(r.epoch))
                as u32;
            let kind = kinds[next(4) as usize];
            let a = NewAccess {
                epoch: Epoch::new(idx, now),
                mask: 1 + next(255) as u8,
                kind,
                site: sites.intern(idx, kind, 1 + next(3) as u32),
            };
            // As `Engine::access_site` does before every update.
            own.insert(a.site, a.kind);
            // The cache is direct-mapped: the access's site may have evicted a record's,
            // or be one.
            let all_cached = recs.iter().all(|r| own.kind_of(r.site) == Some(r.kind));
            let sync = if next(4) == 0 { HAS_SYNC } else { 0 };
            let words = [0, 1].map(|i| recs.get(i).map_or(0, Record::word));
            let cell = Cell {
                w: [AtomicU64::new(words[0] | sync), AtomicU64::new(words[1])],
            };
            let merge = |o, om, n, nm| sites.merge(o, om, n, nm);
            let did = cell.try_own(&a, &c, &own, merge).is_some();
            let want = apply_inline(words, &a, &c, &sites, &mut |o, om, n, nm| {
                sites.merge(o, om, n, nm)
            });
            let mut full = recs.clone();
            let race = apply(&mut full, &a, &c, merge);
            let got = [0, 1].map(|i| cell.w[i].load(Ordering::Relaxed));
            let case = || {
                format!(
                    "{recs:?} + {:?} with {c:?}",
                    (a.epoch, a.mask, a.kind, a.site)
                )
            };
            if !did {
                assert_eq!(got, [words[0] | sync, words[1]], "unchanged: {}", case());
                assert!(
                    !(all_cached && want.is_some()),
                    "the cached case was left to the other paths: {}",
                    case()
                );
                races += race.is_some() as u32;
                missing += !all_cached as u32;
                continue;
            }
            acted += 1;
            assert!(all_cached, "acted on an uncached site: {}", case());
            assert!(race.is_none(), "acted on a race: {}", case());
            assert_eq!(Some(got.map(|w| w & !CELL_BITS)), want, "{}", case());
            assert_eq!(got[0] & CELL_BITS, sync, "the sync flag stays: {}", case());
            let mut got: Vec<u64> = got.iter().map(|w| w & !CELL_BITS).collect();
            got.retain(|&w| w != 0);
            let mut full: Vec<u64> = full.iter().map(Record::word).collect();
            got.sort_unstable();
            full.sort_unstable();
            assert_eq!(got, full, "{}", case());
            merged += (recs.len() == got.len()
                && recs
                    .iter()
                    .any(|r| r.epoch == a.epoch && r.kind == a.kind && r.site != a.site))
                as u32;
            replaced += recs
                .iter()
                .any(|r| r.epoch != a.epoch && r.mask & a.mask != 0) as u32;
            in_hole_kept += recs
                .iter()
                .any(|r| r.epoch.index() == idx && r.epoch.time() < now && !c.knows(r.epoch))
                as u32;
        }
        assert!(
            acted > 40_000 && races > 5_000 && missing > 20_000 && unknown_own > 20_000,
            "{acted} acted, {races} races, {missing} uncached, {unknown_own} unknown own"
        );
        assert!(
            merged > 1_000 && replaced > 10_000 && in_hole_kept > 1_000,
            "{merged} merged, {replaced} replaced, {in_hole_kept} unknown own kept"
        );
    }

    #[test]
    fn out_of_line_lists_keep_every_record_as_they_grow_and_shrink() {
        let sites = SiteTable::new();
        let recs: Vec<Record> = (0..20u32)
            .map(|i| Record {
                epoch: Epoch::new(i, 3 + i),
                mask: 0xff,
                kind: R,
                site: sites.intern(i, R, 9),
            })
            .collect();
        let cell = Cell {
            w: [AtomicU64::new(0), AtomicU64::new(0)],
        };
        let (mut scratch, mut spare) = (Vec::new(), ExtStash::new());
        // Through the head only, into the overflow, within and past its capacity, back.
        for n in [
            3,
            5,
            EXT_SCAN,
            EXT_SCAN + 1,
            11,
            9,
            12,
            20,
            13,
            EXT_SCAN,
            4,
            2,
            1,
        ] {
            cell.with_records(&sites, &mut scratch, &mut spare, |list| {
                list.clear();
                list.extend_from_slice(&recs[..n]);
            });
            assert_eq!(cell.is_spilled(), n > 2, "{n} records");
            let mut got = Vec::new();
            cell.record_words(|w| got.push(w));
            let want: Vec<u64> = recs[..n].iter().map(Record::word).collect();
            assert_eq!(got, want, "{n} records");
            cell.with_records(&sites, &mut scratch, &mut spare, |list| {
                assert_eq!(list[..], recs[..n], "{n} records, decoded");
            });
        }
        cell.reset();
        assert!(cell.is_empty());
    }

    #[test]
    fn concurrent_reads_are_all_kept_then_a_write_checks_each() {
        let mut recs = Vec::new();
        assert!(ap(&mut recs, &acc(0, 1, 1, R), &clock(&[(0, 1)])).is_none());
        assert!(ap(&mut recs, &acc(1, 1, 1, R), &clock(&[(1, 1)])).is_none());
        assert!(ap(&mut recs, &acc(2, 1, 1, R), &clock(&[(2, 1)])).is_none());
        assert_eq!(recs.len(), 3);
        // A writer that knows readers 0 and 2 but not 1 races with reader 1 only.
        let race = ap(
            &mut recs,
            &acc(3, 1, 1, W),
            &clock(&[(0, 1), (2, 1), (3, 1)]),
        );
        assert_eq!(race.map(|r| r.epoch), Some(Epoch::new(1, 1)));
    }

    #[test]
    fn different_bytes_of_a_cell_do_not_race() {
        let mut recs = Vec::new();
        assert!(ap(&mut recs, &acc(0, 1, 0b01, W), &clock(&[(0, 1)])).is_none());
        assert!(ap(&mut recs, &acc(1, 1, 0b10, W), &clock(&[(1, 1)])).is_none());
        let race = ap(&mut recs, &acc(2, 1, 0b10, R), &clock(&[(2, 1)]));
        assert_eq!(race.map(|r| r.epoch), Some(Epoch::new(1, 1)));
    }

    #[test]
    fn concurrent_atomic_writes_are_both_kept_for_a_later_plain_read() {
        let mut recs = Vec::new();
        assert!(ap(&mut recs, &acc(0, 1, 0xff, AW), &clock(&[(0, 1)])).is_none());
        assert!(ap(&mut recs, &acc(1, 1, 0xff, AW), &clock(&[(1, 1)])).is_none());
        // Ordered after goroutine 1's atomic write only: races with goroutine 0's.
        let race = ap(&mut recs, &acc(2, 1, 0x01, R), &clock(&[(1, 1), (2, 1)]));
        assert_eq!(race.map(|r| r.epoch), Some(Epoch::new(0, 1)));
    }

    #[test]
    fn ordered_plain_write_replaces_everything() {
        let mut recs = Vec::new();
        ap(&mut recs, &acc(0, 1, 0xff, R), &clock(&[(0, 1)]));
        ap(&mut recs, &acc(1, 1, 0xff, R), &clock(&[(1, 1)]));
        assert!(
            ap(
                &mut recs,
                &acc(2, 1, 0xff, W),
                &clock(&[(0, 1), (1, 1), (2, 1)])
            )
            .is_none()
        );
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].epoch, Epoch::new(2, 1));
    }

    #[test]
    fn plain_read_before_atomic_write_is_kept_for_a_later_atomic_write() {
        let mut recs = Vec::new();
        ap(&mut recs, &acc(0, 1, 0xff, R), &clock(&[(0, 1)]));
        // Goroutine 1 knows the read and writes atomically: no race, but the read stays.
        assert!(ap(&mut recs, &acc(1, 1, 0xff, AW), &clock(&[(0, 1), (1, 1)])).is_none());
        // Goroutine 2's atomic write knows neither: races with the plain read.
        let race = ap(&mut recs, &acc(2, 1, 0xff, AW), &clock(&[(2, 1)]));
        assert_eq!(race.map(|r| r.epoch), Some(Epoch::new(0, 1)));
    }

    #[test]
    fn same_epoch_repeats_add_nothing() {
        let mut recs = Vec::new();
        ap(&mut recs, &acc(0, 1, 1, W), &clock(&[(0, 1)]));
        ap(&mut recs, &acc(0, 1, 1, R), &clock(&[(0, 1)]));
        ap(&mut recs, &acc(0, 1, 1, W), &clock(&[(0, 1)]));
        assert_eq!(recs.len(), 1);
    }

    /// The word-level paths (`apply_words` for inline and spilled cells) agree with
    /// `apply` byte by byte whenever they decide, on random valid cells (at most one
    /// record per epoch and kind) and accesses.
    #[test]
    fn inline_path_agrees_with_apply() {
        let sites = SiteTable::new();
        let mut next = xorshift(0x9e37_79b9_7f4a_7c15u64);
        let kinds = [R, W, AR, AW];
        let (mut decided, mut races) = (0, 0);
        for _ in 0..200_000 {
            let mut c = VClock::new();
            for i in 0..3 {
                c.set(i, 1 + next(3) as u32);
            }
            let mut recs: Vec<Record> = Vec::new();
            for _ in 0..next(7) {
                let (i, t, k) = (next(3) as u32, 1 + next(3) as u32, kinds[next(4) as usize]);
                let e = Epoch::new(i, t);
                if recs.iter().any(|r| r.epoch == e && r.kind == k) {
                    continue;
                }
                let mask = 1 + next(255) as u8;
                let site = sites.intern(i, k, 1 + next(2) as u32);
                recs.push(Record {
                    epoch: e,
                    mask,
                    kind: k,
                    site,
                });
            }
            let idx = next(3) as u32;
            let kind = kinds[next(4) as usize];
            let a = NewAccess {
                epoch: Epoch::new(idx, c.get(idx)),
                mask: 1 + next(255) as u8,
                kind,
                site: sites.intern(idx, kind, 1 + next(2) as u32),
            };
            let words: Vec<u64> = recs.iter().map(Record::word).collect();
            let mut out: Vec<u64> = match recs.len() {
                0..=2 => {
                    let w = [0, 1].map(|i| words.get(i).copied().unwrap_or(0));
                    apply_inline(w, &a, &c, &sites, &mut |o, om, n, nm| {
                        sites.merge(o, om, n, nm)
                    })
                    .map(|o| o.to_vec())
                }
                _ => apply_words::<EXT_SCAN>(&words, &a, &c, &sites, &mut |o, om, n, nm| {
                    sites.merge(o, om, n, nm)
                })
                .map(|(o, _)| o.to_vec()),
            }
            .unwrap_or_default();
            let mut full = recs.clone();
            let race = apply(&mut full, &a, &c, |o, om, n, nm| sites.merge(o, om, n, nm));
            if out.is_empty() {
                races += race.is_some() as u32;
                continue;
            }
            out.retain(|&w| w != 0);
            decided += 1;
            assert!(race.is_none(), "a word-level path decided a racing access");
            // Per byte: the set of (epoch, kind, stack) recorded.
            let per_byte = |rs: &[Record]| {
                let mut v: Vec<Vec<(Epoch, u8, u32)>> = (0..8).map(|_| Vec::new()).collect();
                for r in rs {
                    for (b, byte) in v.iter_mut().enumerate() {
                        if r.mask & 1 << b != 0 {
                            let (stack, _) = sites.stack_of(r.site, 1 << b);
                            byte.push((r.epoch, r.kind, stack));
                        }
                    }
                }
                v.iter_mut()
                    .for_each(|b| b.sort_unstable_by_key(|x| (x.0.0, x.1, x.2)));
                v
            };
            let got: Vec<Record> = out
                .iter()
                .filter_map(|&w| Record::from_word(w, &sites))
                .collect();
            assert_eq!(
                per_byte(&got),
                per_byte(&full),
                "{recs:?} + {:?}",
                (a.epoch, a.mask, a.kind)
            );
        }
        assert!(
            decided > 50_000 && races > 1_000,
            "{decided} decided, {races} races"
        );
    }
}
