//! Access sites: `(clock index, access kind, stack)` interned as 28-bit ids.
//!
//! A shadow record must fit in one 64-bit word (so the shadow is 2x program memory, as
//! TSan's, and a record is read with a single load), yet it must name the accessing
//! goroutine's epoch, the kind of access and its full stack. The word holds the site id,
//! the byte mask and the time; the site holds the rest. Sites of a clock index are shared
//! by every goroutine that owns the index in turn, so their number is bounded by (live
//! indexes × distinct stacks × kinds), not by the running time.
//!
//! Invariants: site 0 is "no site" (an empty record); ids are stable for the whole run
//! and below 2^28; a site's fields never change after it is interned.

use super::clock::Index;
use super::interner::{Interner, Key, mix};
use super::stack::StackId;

pub type SiteId = u32;

/// Site ids use this many bits of a shadow record.
pub const SITE_BITS: u32 = 28;

/// Past this many sites, new sites drop their stack (the race is still found and
/// reported with both goroutines, without the stack of that access).
const STACKLESS_FROM: usize = (1 << SITE_BITS) - (1 << 22);

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
}

impl SiteTable {
    pub fn new() -> Self {
        SiteTable {
            sites: Interner::new(), // id 0: no site
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
            Some(id) if id < 1 << SITE_BITS => id,
            // Unreachable in practice: stackless sites number at most indexes × 4.
            _ => panic!("access site table full"),
        }
    }

    /// The site `id` (ids come from `intern`; 0 gives the empty site).
    #[inline]
    pub fn get(&self, id: SiteId) -> Site {
        self.sites.get(id).copied().unwrap_or_default()
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
    }
}
