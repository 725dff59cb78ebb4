//! Forgetting finished goroutines that no report can name any more.
//!
//! # Why
//! A report names the goroutine of each access ("Previous write at … by goroutine 7")
//! and where it was created. The previous access is a shadow record, which holds an
//! epoch `(clock index, time)`; the registry maps it back to a goroutine through the
//! index's owner list. Kept for every goroutine ever created, that history grows with
//! the run (tens of bytes per goroutine, ~36 MiB per million), which is what TSan's
//! long-run memory growth looks like (golang/go#63276).
//!
//! # What a sweep keeps
//! Every goroutine not yet finished; the owner of every epoch still in the shadow; and
//! every ancestor of a kept goroutine (JSON reports and per-test attribution follow
//! creation chains). Everything else is dropped: no record names it, and none ever
//! will, since only a running goroutine writes records, with its own current epoch.
//!
//! # How (mark and sweep, under the registry lock)
//! Holding the registry lock fixes the set of goroutines (none starts or finishes) and
//! orders the sweep after every record a finished goroutine wrote. The sweep then reads
//! every record of the resident shadow ([`Shadow::for_each_record`], which sees every
//! record present throughout the read), marks their owners, closes over ancestors, and
//! drops the rest ([`Registry::sweep`]).
//!
//! # Invariant: a report never loses the goroutine it names
//! An access that finds a race may remove the racing record from the shadow before
//! its report asks the registry who made it. So the racing record's `(site, time)` is
//! listed in `in_flight` under the cell lock, and unlisted only once the report has
//! named its goroutine, which takes the registry lock. A sweep marks everything listed
//! after reading the shadow: a record it did not see there had left its cell before
//! the read, so it was listed before, and it cannot be unlisted before the sweep ends.
//!
//! # Cost
//! A sweep reads the resident shadow once. It runs after `sweep_after` goroutines have
//! finished: at least [`SWEEP_MIN`](super::goroutine::SWEEP_MIN), and at least as many as it kept and as one per KiB
//! of shadow it read, so its cost per finished goroutine stays bounded and what it keeps
//! between sweeps is bounded by the live heap and the goroutines alive, never by how
//! many were ever created.

use super::goroutine::Registry;
use super::{Engine, Host};

/// Shadow bytes read per finished goroutine, at most, between two sweeps.
const SHADOW_PER_GOROUTINE: usize = 1024;

impl<H: Host> Engine<H> {
    /// One sweep (see the module doc); `reg` is the locked registry.
    pub(super) fn sweep(&self, reg: &mut Registry) {
        let mut scanned = 0;
        let swept = reg.sweep(|mark| {
            let read = self
                .shadow
                .for_each_record(|site, time| mark(self.sites.get(site).index, time));
            for &(site, time) in self.in_flight.lock().iter() {
                mark(self.sites.get(site).index, time);
            }
            scanned = read.unwrap_or(0);
            read.is_some()
        });
        if swept {
            let (kept, _) = reg.kept();
            reg.sweep_after = reg.sweep_min.max(kept).max(scanned / SHADOW_PER_GOROUTINE);
        }
    }
}
