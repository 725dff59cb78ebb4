//! Assembling a race report: dedup, symbolisation, location, text and JSON output.
//!
//! Kept out of `mod.rs` so the access paths there can change independently: the access
//! path only hands a [`Race`] to [`Engine::report_race`].

use super::goroutine::Goroutine;
use super::report::{self, Creation, Location, RaceReport, SymAccess};
use super::shadow::{KIND_ATOMIC, KIND_WRITE};
use super::{Engine, Host, Race, json};
use alloc::vec::Vec;
use core::sync::atomic::Ordering;

/// How many creators are followed up the goroutine tree for JSON reports.
const CHAIN_DEPTH: usize = 16;

impl<H: Host> Engine<H> {
    pub(super) fn report_race(&self, g: &Goroutine, race: Race) {
        let cur_stack = self.sites.get(race.cur_site).stack;
        let prev_stack = self.sites.get(race.prev.site).stack;
        let prev_tid = self.registry.lock().tid_of(race.prev.epoch);
        let cur = report::Access {
            addr: race.cell + race.cur_mask.trailing_zeros() as usize,
            write: race.cur_kind & KIND_WRITE != 0,
            tid: g.tid,
            stack: self.stacks.pcs(cur_stack),
            stack_id: cur_stack,
        };
        let prev = report::Access {
            addr: race.cell + race.prev.mask.trailing_zeros() as usize,
            write: race.prev.is_write(),
            tid: prev_tid.unwrap_or(u32::MAX),
            stack: self.stacks.pcs(prev_stack),
            stack_id: prev_stack,
        };
        let mut state = self.report.lock();
        if !state.admit(&self.opts, &cur, &prev) {
            return;
        }
        let json = self.host.json_enabled();
        let depth = if json { CHAIN_DEPTH } else { 1 };
        let want_location = json || self.opts.alloc_sites;
        let rep = RaceReport {
            accesses: [
                self.sym_access(&cur, race.cur_mask, race.cur_kind, depth),
                self.sym_access(&prev, race.prev.mask, race.prev.kind, depth),
            ],
            location: if want_location {
                self.location(cur.addr)
            } else {
                None
            },
        };
        let text = report::format(&self.opts, &rep);
        self.host.write_report(&text);
        if json {
            let seq = self.report_count.load(Ordering::Relaxed) + 1;
            self.host.write_json(&json::race_line(&rep, &text, seq));
        }
        self.report_count.fetch_add(1, Ordering::Relaxed);
        if self.opts.halt_on_error {
            self.host.halt(self.opts.exitcode);
        }
        drop(state);
    }

    fn sym_access(&self, a: &report::Access, mask: u8, kind: u8, depth: usize) -> SymAccess {
        SymAccess {
            addr: a.addr,
            size: mask.count_ones() as usize,
            write: a.write,
            atomic: kind & KIND_ATOMIC != 0,
            tid: a.tid,
            frames: report::symbolize(&self.host, &a.stack),
            chain: self.creation_chain(a.tid, depth),
        }
    }

    /// Creation stacks of goroutine `tid` and its ancestors, nearest first, up to
    /// `depth` of them; the root context (0) has none.
    fn creation_chain(&self, mut tid: u32, depth: usize) -> Vec<Creation> {
        let mut chain = Vec::new();
        while tid != 0 && tid != u32::MAX && chain.len() < depth {
            let Some(info) = self.tids.get(tid as usize) else {
                break;
            };
            chain.push(Creation {
                tid,
                finished: info.finished.load(Ordering::Relaxed),
                frames: report::symbolize(
                    &self.host,
                    &self.stacks.pcs(info.created_at.load(Ordering::Relaxed)),
                ),
            });
            let parent = info.parent.load(Ordering::Relaxed);
            if parent >= tid {
                break; // parents are created first; anything else is not a chain
            }
            tid = parent;
        }
        chain
    }

    fn location(&self, addr: usize) -> Option<Location> {
        if let Some((start, size)) = self.host.heap_block(addr) {
            let alloc = self
                .host
                .alloc_site(start)
                .map(|(tid, stack)| (tid, report::symbolize(&self.host, &self.stacks.pcs(stack))));
            return Some(Location::Heap { start, size, alloc });
        }
        self.host.is_global(addr).then_some(Location::Global)
    }
}
