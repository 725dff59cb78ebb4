//! Access sites: `(clock index, access kind, stack)` interned as 28-bit ids.
//!
//! A shadow record must fit in one 64-bit word (so the shadow is 2x program memory, as
//! TSan's, and a record is read with a single load), yet it must name the accessing
//! goroutine's epoch, the kind of access and its full stack. The word holds the site id,
//! the byte mask and the time; the site holds the rest. Sites of a clock index are shared
//! by every goroutine that owns the index in turn, so their number is bounded by (live
//! indexes × distinct stacks × kinds), not by the running time.
//!
//! # Composite sites
//! One goroutine often touches several bytes of one 8-byte cell from different lines in
//! one epoch (the fields of a small struct, the elements of a `[]rune`). Such accesses
//! of one kind are merged into one record whose site is *composite*: its stack field
//! names an interned list of parts `(bytes, plain site)`, one per line, with disjoint
//! byte masks. The record's epoch, kind and bytes are exact, and a report finds the
//! stack of the racing bytes in its part, so nothing is lost; without merging such
//! cells held three or more records and spilled to a heap list (16.5M spills in
//! regexp's tests).
//!
//! # Ids
//! A site id is the interner's number of the site with [`WRITE_BIT`] set for a write
//! (plain or atomic), so that code scanning a record list tells reads from writes
//! without looking the site up (`shadow::refreshed_read`, run by every reader of data
//! that several goroutines read). The number sits in the low bits, so ids stay dense
//! there for the caches indexed by them.
//!
//! Invariants: site 0 is "no site" (an empty record); ids are stable for the whole run
//! and below 2^28; a site's fields never change after it is interned; an id has
//! [`WRITE_BIT`] exactly when its site's kind is a write; the parts of a composite site
//! are plain sites of the composite's index and kind.

use super::clock::Index;
use super::interner::{Interner, Key, mix};
use super::shadow::KIND_WRITE;
use super::stack::StackId;

pub type SiteId = u32;

/// Site ids use this many bits of a shadow record.
pub const SITE_BITS: u32 = 28;

/// The stack field of a composite site: this bit and the id of its parts.
const COMPOSITE: StackId = 1 << 31;

/// The parts of a composite site: `mask << 32 | site` each, ascending by lowest byte,
/// zeros after the last.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
struct Parts([u64; 8]);

impl Key for Parts {
    #[inline]
    fn hash(&self) -> u64 {
        self.0
            .iter()
            .take_while(|&&p| p != 0)
            .fold(0, |h, &p| mix(h ^ p))
    }
}

/// The bit of a site id set for the sites of writes (see the module doc).
pub const WRITE_BIT: SiteId = 1 << (SITE_BITS - 1);

/// Whether `site` (an id from [`SiteTable`]) is of a write, plain or atomic.
#[inline(always)]
pub const fn is_write(site: SiteId) -> bool {
    site & WRITE_BIT != 0
}

/// Past this many sites, new sites drop their stack (the race is still found and
/// reported with both goroutines, without the stack of that access).
const STACKLESS_FROM: usize = WRITE_BIT as usize - (1 << 21);

#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Site {
    pub stack: StackId,
    pub index: Index,
    pub kind: u8,
}

impl Key for Site {
    #[inline]
    fn hash(&self) -> u64 {
        mix(self.stack as u64 | (self.index as u64) << 32 ^ (self.kind as u64) << 62)
    }
}

/// Interned sites; lookups of known sites take no lock (see `interner`).
pub struct SiteTable {
    sites: Interner<Site>,
    composites: Interner<Parts>,
}

impl SiteTable {
    pub fn new() -> Self {
        SiteTable {
            sites: Interner::new(), // id 0: no site
            composites: Interner::new(),
        }
    }

    /// The id of the site `(index, kind, stack)`.
    pub fn intern(&self, index: Index, kind: u8, stack: StackId) -> SiteId {
        let stack = if self.sites.len() >= STACKLESS_FROM {
            0
        } else {
            stack
        };
        match self.sites.intern(Site { stack, index, kind }) {
            Some(n) if n < WRITE_BIT => Self::id(n, kind),
            // Unreachable in practice: stackless sites number at most indexes × 4.
            _ => panic!("access site table full"),
        }
    }

    /// The id of the interner's site number `n`, of kind `kind`.
    #[inline]
    fn id(n: u32, kind: u8) -> SiteId {
        if kind & KIND_WRITE != 0 {
            n | WRITE_BIT
        } else {
            n
        }
    }

    /// The site `id` (ids come from `intern`; 0 gives the empty site).
    #[inline]
    pub fn get(&self, id: SiteId) -> Site {
        self.sites.get(id & !WRITE_BIT).copied().unwrap_or_default()
    }

    /// Calls `f(bytes, plain site)` for each part of `site` within `mask` (a plain
    /// site is its own single part).
    fn parts(&self, site: SiteId, mask: u8, mut f: impl FnMut(u8, SiteId)) {
        let s = self.get(site);
        if s.stack & COMPOSITE == 0 {
            f(mask, site);
            return;
        }
        if let Some(parts) = self.composites.get(s.stack & !COMPOSITE) {
            for &p in parts.0.iter().take_while(|&&p| p != 0) {
                f((p >> 32) as u8 & mask, p as SiteId);
            }
        }
    }

    /// The site of one record made of `old` (a record of bytes `old_mask`) and a new
    /// access of the same index, kind and time at `new` on bytes `new_mask`: bytes
    /// already in `old` keep their part. Falls back to `old` if the table is full.
    pub fn merge(&self, old: SiteId, old_mask: u8, new: SiteId, new_mask: u8) -> SiteId {
        let mut parts = [0u64; 8];
        let mut n = 0;
        let mut add = |mask: u8, site: SiteId| {
            if mask == 0 {
                return;
            }
            // One part per plain site: its bytes are merged.
            match parts[..n].iter_mut().find(|p| **p as SiteId == site) {
                Some(p) => *p |= (mask as u64) << 32,
                None => {
                    parts[n] = (mask as u64) << 32 | site as u64;
                    n += 1;
                }
            }
        };
        self.parts(old, old_mask, &mut add);
        self.parts(new, new_mask & !old_mask, &mut add);
        if n == 1 {
            return parts[0] as SiteId;
        }
        parts[..n].sort_unstable_by_key(|p| (p >> 32).trailing_zeros());
        let s = self.get(old);
        match self.composites.intern(Parts(parts)) {
            Some(id) if id < COMPOSITE && self.sites.len() < STACKLESS_FROM => {
                let site = Site {
                    stack: COMPOSITE | id,
                    index: s.index,
                    kind: s.kind,
                };
                self.sites
                    .intern(site)
                    .filter(|&n| n < WRITE_BIT)
                    .map_or(old, |n| Self::id(n, s.kind))
            }
            _ => old,
        }
    }

    /// The stack of the access that made bytes `mask` of a record at `site`, and the
    /// bytes of that access (within `mask`'s record: the caller intersects).
    pub fn stack_of(&self, site: SiteId, mask: u8) -> (StackId, u8) {
        let (mut found, mut first) = (None, None);
        self.parts(site, 0xff, |bytes, part| {
            first.get_or_insert((part, bytes));
            if found.is_none() && bytes & mask != 0 {
                found = Some((part, bytes));
            }
        });
        match found.or(first) {
            Some((part, bytes)) => (self.get(part).stack, bytes),
            None => (0, 0xff),
        }
    }

    pub fn len(&self) -> usize {
        self.sites.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() <= 1
    }
}

impl Default for SiteTable {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_sites_share_an_id_and_fields_round_trip() {
        let t = SiteTable::new();
        let a = t.intern(3, 1, 77);
        assert_ne!(a, 0);
        assert_eq!(t.intern(3, 1, 77), a);
        assert_ne!(t.intern(4, 1, 77), a);
        assert_ne!(t.intern(3, 0, 77), a);
        assert_eq!(
            t.get(a),
            Site {
                stack: 77,
                index: 3,
                kind: 1
            }
        );
        assert_eq!(t.get(0), Site::default());
        // The id tells writes (plain or atomic) from reads.
        assert!(is_write(a) && is_write(t.intern(3, 3, 77)));
        assert!(!is_write(t.intern(3, 0, 77)) && !is_write(t.intern(3, 2, 77)));
        assert_eq!(t.get(t.intern(5, 3, 9)).kind, 3);
    }

    #[test]
    fn composite_sites_keep_the_stack_of_each_byte() {
        let t = SiteTable::new();
        let (a, b, c) = (t.intern(3, 1, 10), t.intern(3, 1, 20), t.intern(3, 1, 30));
        let ab = t.merge(a, 0x0f, b, 0x30);
        assert_ne!(ab, a);
        assert_eq!((t.get(ab).index, t.get(ab).kind), (3, 1));
        assert!(is_write(ab));
        let (r, q) = (t.intern(3, 0, 10), t.intern(3, 0, 20));
        assert!(!is_write(t.merge(r, 0x01, q, 0x02)));
        assert_eq!(t.stack_of(ab, 0x01), (10, 0x0f));
        assert_eq!(t.stack_of(ab, 0x20), (20, 0x30));
        // Bytes already recorded keep their part; merges are canonical.
        let abc = t.merge(ab, 0x3f, c, 0xf8);
        assert_eq!(t.stack_of(abc, 0x08), (10, 0x0f));
        assert_eq!(t.stack_of(abc, 0x80), (30, 0xc0));
        assert_eq!(t.merge(ab, 0x3f, c, 0xc0), abc);
        assert_eq!(t.merge(b, 0x30, a, 0x0f), ab);
        // A plain site is its own part; merging a site with itself stays plain.
        assert_eq!(t.stack_of(a, 0x01), (10, 0xff));
        assert_eq!(t.merge(a, 0x01, a, 0x02), a);
    }
}
