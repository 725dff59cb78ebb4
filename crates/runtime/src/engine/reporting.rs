//! Assembling a race report: dedup, symbolisation, location, text and JSON output.
//!
//! Kept out of `mod.rs` so the access paths there can change independently: the access
//! path only hands a [`Race`] to [`Engine::report_race`].

use super::goroutine::{Goroutine, Registry};
use super::report::{self, Creation, Location, RaceReport, SymAccess};
use super::shadow::{KIND_ATOMIC, KIND_WRITE};
use super::stack::StackId;
use super::{Engine, Host, Race, json};
use alloc::vec::Vec;
use core::sync::atomic::Ordering;

/// How many creators are followed up the goroutine tree for JSON reports.
const CHAIN_DEPTH: usize = 16;

/// A creation chain before symbolisation: (report number, finished, creation stack).
type Chain = Vec<(u32, bool, StackId)>;

/// Goroutine `tid` and its ancestors, nearest first, up to `depth` of them; the root
/// context (0) has no creation stack.
fn creation_chain(reg: &Registry, mut tid: u32, depth: usize) -> Chain {
    let mut chain = Vec::new();
    while tid != 0 && tid != u32::MAX && chain.len() < depth {
        let Some(info) = reg.info(tid) else {
            break;
        };
        chain.push((tid, info.finished, info.created_at));
        if info.parent >= tid {
            break; // parents are created first; anything else is not a chain
        }
        tid = info.parent;
    }
    chain
}

impl<H: Host> Engine<H> {
    #[cold]
    #[inline(never)]
    pub(super) fn report_race(&self, g: &Goroutine, race: Race) {
        let cur_stack = self.sites.get(race.cur_site).stack;
        // A composite record names the access of the racing bytes (see `site`).
        let (prev_stack, prev_bytes) = self
            .sites
            .stack_of(race.prev.site, race.prev.mask & race.cur_mask);
        let json = self.host.json_enabled();
        let depth = if json { CHAIN_DEPTH } else { 1 };
        // The previous goroutine and both creation chains are read in one hold of the
        // registry lock: once the race is no longer in flight, a sweep may forget them.
        let (prev_tid, chains) = {
            let reg = self.registry.lock();
            let prev_tid = reg.tid_of(race.prev.epoch).unwrap_or(u32::MAX);
            let chains = [g.tid, prev_tid].map(|tid| creation_chain(&reg, tid, depth));
            (prev_tid, chains)
        };
        let Race {
            cell,
            cur_mask,
            cur_kind,
            prev: mut prev_rec,
            ..
        } = race;
        if prev_rec.mask & prev_bytes != 0 {
            prev_rec.mask &= prev_bytes;
        }
        let cur = report::Access {
            addr: cell + cur_mask.trailing_zeros() as usize,
            write: cur_kind & KIND_WRITE != 0,
            tid: g.tid,
            stack: self.stacks.pcs(cur_stack),
            stack_id: cur_stack,
        };
        let prev = report::Access {
            addr: cell + prev_rec.mask.trailing_zeros() as usize,
            write: prev_rec.is_write(),
            tid: prev_tid,
            stack: self.stacks.pcs(prev_stack),
            stack_id: prev_stack,
        };
        let mut state = self.report.lock();
        if !state.admit(&self.opts, &cur, &prev) {
            return;
        }
        let want_location = json || self.opts.alloc_sites;
        let [cur_chain, prev_chain] = chains;
        let rep = RaceReport {
            accesses: [
                self.sym_access(&cur, cur_mask, cur_kind, cur_chain),
                self.sym_access(&prev, prev_rec.mask, prev_rec.kind, prev_chain),
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

    fn sym_access(&self, a: &report::Access, mask: u8, kind: u8, chain: Chain) -> SymAccess {
        SymAccess {
            addr: a.addr,
            size: mask.count_ones() as usize,
            write: a.write,
            atomic: kind & KIND_ATOMIC != 0,
            tid: a.tid,
            frames: report::symbolize(&self.host, &a.stack),
            chain: chain
                .into_iter()
                .map(|(tid, finished, created_at)| Creation {
                    tid,
                    finished,
                    frames: report::symbolize(&self.host, &self.stacks.pcs(created_at)),
                })
                .collect(),
        }
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
