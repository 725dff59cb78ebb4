//! The engine driven by event sequences, as TSan's `go/test.c` drives its Go API: no Go
//! needed. Each test plays the calls Go would make and checks the verdict (and, where
//! the format matters, the report text).

use super::*;
use std::string::String;
use std::sync::Mutex;
use std::sync::atomic::AtomicUsize;

/// Symbolises pc `p` as function `f<p-in-hex>` in `t.go`, line `p`, and collects output.
#[derive(Default)]
struct TestHost {
    out: Mutex<Vec<u8>>,
    halted: Mutex<Option<i32>>,
}

impl Host for TestHost {
    fn symbolize(&self, pc: usize, frame: &mut crate::engine::report::FrameSink<'_>) {
        let func = std::format!("f{:x}", pc);
        frame(func.as_bytes(), b"/src/t.go", pc, 0x10);
    }
    fn write_report(&self, text: &[u8]) {
        self.out.lock().unwrap().extend_from_slice(text);
    }
    fn halt(&self, code: i32) {
        *self.halted.lock().unwrap() = Some(code);
    }
}

const APP: usize = 0x1000_0000;
const APP_SIZE: usize = 16 << 20;

struct T {
    e: Engine<TestHost>,
    main: *const Goroutine,
}

impl T {
    fn with(opts: Options, max_time: Time) -> T {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let e = Engine::new(
            TestHost::default(),
            opts,
            0x2000_0000_0000 + n * 0x10_0000_0000,
            max_time,
        );
        assert!(e.map_shadow(APP, APP_SIZE), "shadow mapping failed");
        let root = e.new_root();
        // SAFETY: `root` is live.
        let main = e.go_start(Some(unsafe { &*root }), 0x100);
        T { e, main }
    }
    fn new() -> T {
        T::with(
            Options {
                atexit_sleep_ms: 0,
                ..Options::default()
            },
            MAX_TIME,
        )
    }
    fn main(&self) -> &Goroutine {
        // SAFETY: the main goroutine lives as long as the test.
        unsafe { &*self.main }
    }
    fn go(&self, parent: &Goroutine) -> &Goroutine {
        // SAFETY: test goroutines are ended only through `end`, never used after.
        unsafe { &*self.e.go_start(Some(parent), 0x200) }
    }
    fn end(&self, g: &Goroutine) {
        // SAFETY: each test ends a goroutine once and drops its reference.
        unsafe { self.e.go_end(g) }
    }
    fn write(&self, g: &Goroutine, addr: usize) {
        self.e.access(g, APP + addr, 0x1000 + addr, Kind::WRITE);
    }
    fn read(&self, g: &Goroutine, addr: usize) {
        self.e.access(g, APP + addr, 0x2000 + addr, Kind::READ);
    }
    /// Returns from `g`'s calls until `depth` frames are left.
    fn exit_to(&self, g: &Goroutine, depth: usize) {
        while g.local().pcs.len() > depth {
            self.e.func_exit(g);
        }
    }
    fn races(&self) -> u64 {
        self.e.report_count()
    }
    /// The record words of the cell of `addr` (an engine address, `APP` included).
    fn record_words(&self, addr: usize) -> Vec<u64> {
        let mut words = Vec::new();
        self.e.shadow.cell(addr).record_words(|w| words.push(w));
        words
    }
    fn text(&self) -> String {
        String::from_utf8(self.e.host.out.lock().unwrap().clone()).unwrap()
    }
}

#[test]
fn unordered_writes_race_and_go_start_orders_parent_before_child() {
    let t = T::new();
    let m = t.main();
    t.write(m, 0);
    let c = t.go(m);
    t.write(c, 0); // ordered: the parent's write happened before the child started
    assert_eq!(t.races(), 0);
    t.write(m, 0); // the parent's write after `go` is not ordered with the child's
    assert_eq!(t.races(), 1);
}

#[test]
fn goroutine_end_synchronises_with_nothing() {
    let t = T::new();
    let m = t.main();
    let c = t.go(m);
    t.write(c, 8);
    t.end(c);
    t.read(m, 8);
    assert_eq!(t.races(), 1);
    assert!(t.text().contains("(finished) created at:"), "{}", t.text());
}

#[test]
fn concurrent_reads_do_not_race() {
    let t = T::new();
    let m = t.main();
    let (a, b) = (t.go(m), t.go(m));
    t.read(a, 0);
    t.read(b, 0);
    t.read(m, 0);
    assert_eq!(t.races(), 0);
}

#[test]
fn release_then_acquire_orders_mutex_style() {
    let t = T::new();
    let m = t.main();
    let (a, b) = (t.go(m), t.go(m));
    let mu = APP + 0x800;
    t.write(a, 0);
    t.e.release(a, mu);
    t.e.acquire(b, mu);
    t.write(b, 0);
    assert_eq!(t.races(), 0);
    // a's write after its release is not ordered with b.
    t.write(a, 16);
    t.e.acquire(b, mu);
    t.write(b, 16);
    assert_eq!(t.races(), 1);
}

#[test]
fn release_store_overwrites_and_release_merge_accumulates() {
    let t = T::new();
    let m = t.main();
    let (a, b, c) = (t.go(m), t.go(m), t.go(m));
    let s = APP + 0x800;
    t.write(a, 0);
    t.write(b, 8);
    t.e.release(a, s);
    t.e.release(b, s); // overwrites: a's clock is gone from s
    t.e.acquire(c, s);
    t.write(c, 8);
    assert_eq!(t.races(), 0);
    t.write(c, 0);
    assert_eq!(t.races(), 1);

    let s2 = APP + 0x900;
    t.write(a, 32);
    t.write(b, 40);
    t.e.release_merge(a, s2);
    t.e.release_merge(b, s2);
    let d = t.go(m);
    t.e.acquire(d, s2);
    t.write(d, 32);
    t.write(d, 40);
    assert_eq!(t.races(), 1);
}

#[test]
fn release_acquire_is_the_channel_slot_rule() {
    // Buffered channel of capacity 1: send i and receive i use slot 0 in turn.
    let t = T::new();
    let m = t.main();
    let (sender, receiver) = (t.go(m), t.go(m));
    let slot = APP + 0x800;
    t.write(sender, 0);
    t.e.release_acquire(sender, slot); // send
    t.e.release_acquire(receiver, slot); // receive: acquires the sender's clock
    t.write(receiver, 0);
    assert_eq!(t.races(), 0);
    // The receiver's later write is not visible to a sender that does not receive.
    t.write(receiver, 8);
    t.write(sender, 8);
    assert_eq!(t.races(), 1);
}

#[test]
fn acquire_of_an_address_never_released_orders_nothing() {
    let t = T::new();
    let m = t.main();
    let (a, b) = (t.go(m), t.go(m));
    t.write(a, 0);
    t.e.acquire(b, APP + 0x800);
    t.write(b, 0);
    assert_eq!(t.races(), 1);
}

#[test]
fn ignore_sync_makes_sync_operations_no_ops() {
    let t = T::new();
    let m = t.main();
    let (a, b) = (t.go(m), t.go(m));
    t.write(a, 0);
    t.e.ignore_sync_begin(a);
    t.e.release(a, APP + 0x800);
    t.e.ignore_sync_end(a);
    t.e.acquire(b, APP + 0x800);
    t.write(b, 0);
    assert_eq!(t.races(), 1);
}

fn atomic(t: &T, g: &Goroutine, off: usize, kind: Kind, sync: AtomicSync) {
    t.e.atomic(g, APP + off, 8, 0x3000, 0x3100, kind, sync, || {
        kind != Kind::ATOMIC_READ
    });
}

#[test]
fn atomics_do_not_race_with_atomics_but_race_with_plain_accesses() {
    let t = T::new();
    let m = t.main();
    let (a, b) = (t.go(m), t.go(m));
    atomic(&t, a, 0, Kind::ATOMIC_WRITE, AtomicSync::AcquireRelease);
    atomic(&t, b, 0, Kind::ATOMIC_WRITE, AtomicSync::AcquireRelease);
    atomic(&t, b, 0, Kind::ATOMIC_READ, AtomicSync::Acquire);
    assert_eq!(t.races(), 0);
    let c = t.go(m);
    t.write(c, 0);
    assert_eq!(t.races(), 1);
}

#[test]
fn an_atomic_load_is_ordered_after_the_store_it_reads_from() {
    // Go's memory model: the load synchronises with the store it observes, so the plain
    // write before the store happens before the load itself (no race), while another
    // goroutine's unpublished plain write still races with it.
    let t = T::new();
    let m = t.main();
    let (a, b, c) = (t.go(m), t.go(m), t.go(m));
    t.write(a, 0);
    atomic(&t, a, 0, Kind::ATOMIC_WRITE, AtomicSync::Release);
    atomic(&t, b, 0, Kind::ATOMIC_READ, AtomicSync::Acquire);
    assert_eq!(t.races(), 0, "{}", t.text());
    t.write(c, 0); // races with a's store
    assert_eq!(t.races(), 1);
    atomic(&t, b, 0, Kind::ATOMIC_READ, AtomicSync::Acquire); // and with b's load
    assert_eq!(t.races(), 2);
}

#[test]
fn atomic_store_load_publishes_plain_data() {
    let t = T::new();
    let m = t.main();
    let (a, b) = (t.go(m), t.go(m));
    t.write(a, 8); // data
    atomic(&t, a, 0, Kind::ATOMIC_WRITE, AtomicSync::Release); // flag = 1
    atomic(&t, b, 0, Kind::ATOMIC_READ, AtomicSync::Acquire); // sees flag
    t.read(b, 8);
    assert_eq!(t.races(), 0);
}

#[test]
fn atomics_with_ignore_sync_are_raw() {
    let t = T::new();
    let m = t.main();
    let (a, b) = (t.go(m), t.go(m));
    t.write(b, 0);
    t.e.ignore_sync_begin(a);
    let mut ran = false;
    t.e.atomic(
        a,
        APP,
        8,
        0,
        0,
        Kind::ATOMIC_WRITE,
        AtomicSync::AcquireRelease,
        || {
            ran = true;
            true
        },
    );
    t.e.ignore_sync_end(a);
    assert!(ran);
    assert_eq!(t.races(), 0); // no access recorded
}

#[test]
fn finalizer_goroutine_acquires_everything() {
    let t = T::new();
    let m = t.main();
    let (a, fin) = (t.go(m), t.go(m));
    t.write(a, 0);
    let gone = t.go(m);
    t.write(gone, 8);
    t.end(gone);
    t.e.acquire_global(fin);
    t.write(fin, 0);
    t.write(fin, 8);
    assert_eq!(t.races(), 0);
}

#[test]
fn malloc_forgets_accesses_and_free_drops_sync_objects() {
    let t = T::new();
    let m = t.main();
    let (a, b) = (t.go(m), t.go(m));
    t.write(a, 0x40);
    t.e.malloc(APP + 0x40, 16);
    t.write(b, 0x40);
    assert_eq!(t.races(), 0);

    let s = APP + 0x80;
    t.write(a, 0);
    t.e.release(a, s);
    t.e.free(APP + 0x80, 8);
    assert_eq!(t.e.sync_objects(), 0);
    t.e.acquire(b, s); // the mutex was freed: nothing to acquire
    t.write(b, 0);
    assert_eq!(t.races(), 1);
}

/// Resets skip shadow pages no record was written to; a reset of part of a page must
/// leave the page marked, or a later reset of the rest would skip a live record.
#[test]
fn partial_resets_keep_the_rest_of_a_page_visible_to_later_resets() {
    let t = T::new();
    let m = t.main();
    let (a, b) = (t.go(m), t.go(m));
    // Two cells in one shadow page (2 KiB of program memory), far from other tests' data.
    t.write(a, 0x8010);
    t.write(a, 0x8400);
    t.e.malloc(APP + 0x8010, 8);
    t.e.malloc(APP + 0x8400, 8);
    t.write(b, 0x8010);
    t.write(b, 0x8400);
    assert_eq!(t.races(), 0, "{}", t.text());
    // A page never written to is skipped, and a page that was is still reset in full.
    t.e.malloc(APP + 0x9000, 0x1000);
    t.write(a, 0x8800);
    t.e.malloc(APP + 0x8000, 0x1000);
    t.write(b, 0x8800);
    assert_eq!(t.races(), 0, "{}", t.text());
}

/// Go reallocates memory only through `racemalloc`, so `free` leaves plain records for
/// it to clear and drops only what cells own: a freed page holding an out-of-line list
/// is cleared, one holding plain records is not touched.
#[test]
fn free_drops_what_cells_own_and_malloc_clears_the_rest() {
    let t = T::new();
    let m = t.main();
    let (a, b, c) = (t.go(m), t.go(m), t.go(m));
    let (plain, owner) = (0xa000, 0xb000); // two shadow pages of their own
    t.write(a, plain);
    for g in [a, b, c] {
        t.read(g, owner); // three concurrent readers spill the cell
    }
    t.e.free(APP + plain, 8);
    t.e.free(APP + owner, 8);
    assert!(t.e.shadow_cell_is_empty(APP + owner));
    assert!(!t.e.shadow_cell_is_empty(APP + plain));
    t.e.malloc(APP + plain, 8);
    assert!(t.e.shadow_cell_is_empty(APP + plain));
    let w = t.go(m);
    t.write(w, plain);
    t.write(w, owner);
    assert_eq!(t.races(), 0, "{}", t.text());
}

#[test]
fn freeing_a_large_range_forgets_spilled_cells_and_syncs_but_nothing_outside() {
    use super::shadow::APP_PER_SHADOW_PAGE;
    let t = T::new();
    let m = t.main();
    let (a, b, c) = (t.go(m), t.go(m), t.go(m));
    let (lo, size) = (0x100, 6 << 20); // unaligned start; whole pages are madvised
    let inside = [lo, lo + 8, lo + APP_PER_SHADOW_PAGE * 7, lo + size - 8];
    for &x in &inside {
        // Three concurrent readers spill the cell out of line.
        t.read(a, x);
        t.read(b, x);
        t.read(c, x);
        t.e.release(a, APP + x + 1);
    }
    t.read(a, lo - 8); // just outside
    assert!(t.e.sync_objects() >= inside.len());
    t.e.free(APP + lo, size);
    assert_eq!(t.e.sync_objects(), 0);
    let w = t.go(m);
    for &x in &inside {
        t.write(w, x);
    }
    assert_eq!(t.races(), 0, "{}", t.text());
    t.write(w, lo - 8);
    assert_eq!(t.races(), 1);
}

#[test]
fn ranges_race_on_common_bytes_only() {
    let t = T::new();
    let m = t.main();
    let (a, b) = (t.go(m), t.go(m));
    t.e.access_range(a, APP + 3, 10, 0x10, Kind::WRITE); // bytes 3..13
    t.e.access_range(b, APP + 13, 8, 0x20, Kind::WRITE); // bytes 13..21: disjoint
    t.read(b, 2);
    assert_eq!(t.races(), 0);
    t.read(b, 12);
    assert_eq!(t.races(), 1);
    // One report per range call, however many bytes conflict.
    t.e.access_range(b, APP + 40, 0, 0x30, Kind::WRITE);
    let c = t.go(m);
    t.e.access_range(c, APP, 24, 0x40, Kind::READ);
    assert_eq!(t.races(), 2);
}

/// A small range's inline check covers each of its (up to three) cells with that
/// cell's bytes: the cells a goroutine already wrote are hits, the last one is not, and
/// the read of it is recorded (a concurrent write to it races).
#[test]
fn a_small_range_is_a_hit_only_if_every_cell_is() {
    let t = T::new();
    let m = t.main();
    let (g, h) = (t.go(m), t.go(m));
    let x = APP + 0xe000;
    // SAFETY: the range lies in the mapped test arena.
    let range =
        |g, addr, size, kind| unsafe { t.e.access_range_announced(g, addr, size, 0x50, kind) };
    range(g, x + 6, 10, Kind::WRITE); // cells 0 (bytes 6..8) and 1 (all)
    range(g, x + 6, 10, Kind::READ); // a hit in both
    range(g, x + 6, 12, Kind::READ); // cell 2's bytes 0..2 are new
    assert_eq!(t.races(), 0);
    t.e.access(h, x + 17, 0x60, Kind::WRITE);
    assert_eq!(t.races(), 1, "h's write races with g's read of cell 2");
}

#[test]
fn report_text_matches_go_format() {
    let t = T::new();
    let m = t.main();
    t.e.func_enter(m, 0x501);
    let c = t.go(m); // created at: [0x501, 0x200]
    t.e.func_enter(c, 0x601);
    t.e.func_enter(c, 0x701);
    t.e.access(c, APP + 0x18, 0x801, Kind::WRITE);
    t.e.func_exit(c);
    t.e.func_exit(c);
    t.e.access(m, APP + 0x18, 0x901, Kind::READ);
    let want = "==================
WARNING: DATA RACE
Read at 0x000010000018 by main goroutine:
  f900()
      /src/t.go:2304 +0x10

Previous write at 0x000010000018 by goroutine 2:
  f800()
      /src/t.go:2048 +0x10
  f700()
      /src/t.go:1792 +0x10

Goroutine 2 (running) created at:
  f1ff()
      /src/t.go:511 +0x10
==================
";
    assert_eq!(t.text(), want);
    assert_eq!(t.e.finish_status(), 66);
    assert!(
        t.text()
            .ends_with("==================\nFound 1 data race(s)\n")
    );
}

#[test]
fn equal_stacks_are_reported_once_unless_asked() {
    for (suppress, want) in [(true, 1), (false, 3)] {
        let opts = Options {
            suppress_equal_stacks: suppress,
            ..Options::default()
        };
        let t = T::with(opts, MAX_TIME);
        let m = t.main();
        for _ in 0..3 {
            let c = t.go(m);
            t.e.access(c, APP, 0x10, Kind::WRITE);
            t.e.access(m, APP, 0x20, Kind::WRITE);
        }
        assert_eq!(t.races(), want, "suppress_equal_stacks={suppress}");
    }
}

#[test]
fn equal_addresses_are_suppressed_only_when_asked() {
    for (suppress, want) in [(false, 2), (true, 1)] {
        let opts = Options {
            suppress_equal_addresses: suppress,
            ..Options::default()
        };
        let t = T::with(opts, MAX_TIME);
        let m = t.main();
        let (a, b) = (t.go(m), t.go(m));
        t.write(a, 0);
        t.write(m, 0);
        t.e.access(b, APP, 0x77, Kind::READ);
        assert_eq!(t.races(), want, "suppress_equal_addresses={suppress}");
    }
}

#[test]
fn halt_on_error_stops_after_the_first_report() {
    let opts = Options {
        halt_on_error: true,
        exitcode: 13,
        ..Options::default()
    };
    let t = T::with(opts, MAX_TIME);
    let m = t.main();
    let c = t.go(m);
    t.write(c, 0);
    t.write(m, 0);
    assert_eq!(*t.e.host.halted.lock().unwrap(), Some(13));
    assert!(t.text().ends_with("==================\n"));
}

// ----- the four ways ThreadSanitizer loses races ----------------------------------------

/// TSan hands a finished goroutine's slot to the next goroutine and so orders the two.
/// Here a goroutine that finished without synchronising keeps its clock index until
/// everyone has synchronised with it, however many goroutines come and go.
#[test]
fn no_race_lost_to_slot_reuse_after_churn() {
    let t = T::new();
    let m = t.main();
    let early = t.go(m);
    t.write(early, 0);
    t.end(early); // never synchronised with anyone
    let wg = APP + 0x800;
    for _ in 0..2000 {
        let g = t.go(m);
        t.write(g, 0x100);
        t.e.release_merge(g, wg);
        t.end(g);
        t.e.acquire(m, wg);
    }
    let late = t.go(m);
    t.write(late, 0);
    assert_eq!(t.races(), 1, "the early goroutine's write must still race");
    // The churned goroutines synchronised with main, so their indexes were reused.
    assert!(
        t.e.clock_indexes_in_use() < 200,
        "{}",
        t.e.clock_indexes_in_use()
    );
}

/// Reusing an index must not order a newcomer with an unrelated goroutine that lagged.
#[test]
fn reused_index_does_not_order_unrelated_goroutines() {
    let t = T::new();
    let m = t.main();
    let laggard = t.go(m); // never synchronises with anyone after this
    let wg = APP + 0x800;
    for _ in 0..500 {
        let g = t.go(m);
        t.e.release_merge(g, wg);
        t.end(g);
        t.e.acquire(m, wg);
    }
    let newcomer = t.go(m);
    t.write(newcomer, 0);
    t.e.release(newcomer, APP + 0x900);
    t.e.acquire(laggard, APP + 0x900);
    t.write(laggard, 0);
    assert_eq!(t.races(), 0);
    let other = t.go(m);
    t.write(other, 8);
    t.write(laggard, 8);
    assert_eq!(t.races(), 1);
}

/// TSan's epoch is 14 bits; when it runs out TSan resets all clocks and forgets every
/// earlier access. Here time runs out after 8 ticks and the goroutine changes index.
#[test]
fn no_race_lost_to_epoch_exhaustion() {
    let t = T::with(Options::default(), 8);
    let m = t.main();
    let (a, b) = (t.go(m), t.go(m));
    t.write(a, 0);
    for i in 0..1000 {
        t.e.release(a, APP + 0x800 + 8 * (i % 4));
    }
    assert!(t.e.epoch_of(a).index() != t.e.epoch_of(m).index());
    t.write(b, 0);
    assert_eq!(t.races(), 1, "the write before exhaustion must race");
    // Synchronisation still works across the index changes.
    t.write(a, 16);
    t.e.release(a, APP + 0x900);
    t.e.acquire(b, APP + 0x900);
    t.write(b, 16);
    t.write(b, 0);
    assert_eq!(t.races(), 1);
}

/// TSan restores the earlier access's stack from a bounded trace; when the trace has
/// wrapped it drops the race. Here every record keeps its stack.
#[test]
fn no_race_or_stack_lost_to_a_long_history() {
    let t = T::new();
    let m = t.main();
    let (a, b) = (t.go(m), t.go(m));
    t.e.func_enter(a, 0x4431); // the outermost frame, dropped from reports as in Go
    t.e.func_enter(a, 0x4441);
    t.e.access(a, APP, 0x4451, Kind::WRITE);
    t.e.func_exit(a);
    for i in 0..200_000usize {
        t.e.func_enter(a, 0x5000 + (i % 64));
        t.e.access(a, APP + 0x1000 + (i % 4096) * 8, 0x6000, Kind::WRITE);
        t.e.func_exit(a);
    }
    t.write(b, 0);
    assert_eq!(t.races(), 1);
    let text = t.text();
    assert!(
        text.contains("f4450()") && text.contains("f4440()"),
        "{text}"
    );
    assert!(!text.contains("failed to restore"));
}

/// TSan keeps four accesses per 8 bytes and evicts one at random when a fifth arrives.
/// Here all concurrent readers are kept, so a writer ordered after all but one of them
/// still finds the one it races with.
#[test]
fn no_race_lost_to_more_than_four_accessors() {
    let t = T::new();
    let m = t.main();
    let readers: Vec<&Goroutine> = (0..12).map(|_| t.go(m)).collect();
    for r in &readers {
        t.read(r, 0);
    }
    let sync = APP + 0x800;
    for r in &readers[1..] {
        t.e.release_merge(r, sync);
    }
    let w = t.go(m);
    t.e.acquire(w, sync);
    t.write(w, 0);
    assert_eq!(t.races(), 1);
    assert!(t.text().contains("Previous read"));
}

#[test]
fn stacks_deeper_than_the_limit_keep_outer_frames_and_say_so() {
    let t = T::new();
    let m = t.main();
    let (a, b) = (t.go(m), t.go(m));
    for d in 0..3000 {
        t.e.func_enter(a, 0x10_0000 + d);
    }
    t.write(a, 0);
    t.write(b, 0);
    assert_eq!(t.races(), 1);
    let text = t.text();
    assert!(text.contains("frames elided"), "{text}");
    for _ in 0..3000 {
        t.e.func_exit(a);
    }
}

#[test]
fn deep_recursion_reuses_the_elided_prefix_only_while_the_outer_frames_hold() {
    let t = T::new();
    let m = t.main();
    let (a, b) = (t.go(m), t.go(m));
    let deep_write = |addr| t.e.access(a, APP + addr, 0x7000, Kind::WRITE);
    let enter_to = |depth: usize, base: usize| {
        for d in 0..depth {
            if d >= a.local().pcs.len() {
                t.e.func_enter(a, base + d);
            }
        }
    };
    enter_to(1500, 0x10_0000);
    deep_write(0);
    // The recursion goes on below the elided frames: the same site.
    t.e.func_exit(a);
    t.e.func_enter(a, 0x30_0000);
    deep_write(8);
    // Back to depth 500 and down other frames: the access at exactly 1023 frames
    // leaves the node of the last slot as the first descent made it.
    t.exit_to(a, 500);
    enter_to(1023, 0x20_0000);
    t.e.access(a, APP + 24, 0x7100, Kind::WRITE);
    enter_to(1500, 0x20_0000);
    deep_write(16);
    // And straight down other frames, with no access on the way.
    t.exit_to(a, 500);
    enter_to(1500, 0x40_0000);
    deep_write(32);
    for addr in [8, 16, 32] {
        t.write(b, addr);
    }
    assert_eq!(t.races(), 3, "{}", t.text());
    let text = t.text();
    let reports: Vec<&str> = text.split("WARNING: DATA RACE").skip(1).collect();
    for (report, frame) in reports.iter().zip(["f100258", "f200258", "f400258"]) {
        assert!(report.contains(frame), "{frame} in {report}");
        let others = ["f100258", "f200258", "f400258"]
            .into_iter()
            .filter(|&f| f != frame);
        assert!(others.clone().all(|f| !report.contains(f)), "{report}");
    }
    t.exit_to(a, 0);
}

#[test]
fn new_access_points_under_an_unchanged_stack_carry_its_frames() {
    // More access points than a frame node remembers, all below the same calls:
    // each new one is interned with the whole stack as its prefix.
    let t = T::new();
    let m = t.main();
    let (a, b) = (t.go(m), t.go(m));
    for pc in [0x5100, 0x5200, 0x5300] {
        t.e.func_enter(a, pc);
    }
    for k in 0..6 {
        t.e.access(a, APP + 8 * k, 0x7000 + 0x10 * k, Kind::WRITE);
    }
    t.write(b, 8 * 5);
    assert_eq!(t.races(), 1);
    let text = t.text();
    // Frames print their pc minus one (a return address's call); the outermost, the
    // goroutine's own entry, is not printed.
    let frames = ["f704f()", "f51ff()", "f52ff()"];
    assert!(frames.iter().all(|f| text.contains(f)), "{text}");
}

#[test]
fn a_stack_of_exactly_the_limit_keeps_its_last_frame() {
    // The last slot held the elided marker while the stack was deeper; back at exactly
    // MAX_DEPTH frames it holds a frame again.
    let t = T::new();
    let m = t.main();
    let (a, b) = (t.go(m), t.go(m));
    for d in 0..1500 {
        t.e.func_enter(a, 0x10_0000 + d);
    }
    t.e.access(a, APP, 0x7000, Kind::WRITE);
    t.exit_to(a, stack::MAX_DEPTH);
    t.e.access(a, APP + 8, 0x7100, Kind::WRITE);
    t.write(b, 8);
    assert_eq!(t.races(), 1);
    let text = t.text();
    assert!(
        text.contains("f1003fe()") && !text.contains("elided"),
        "{text}"
    );
    t.exit_to(a, 0);
}

#[test]
fn a_goroutine_reacquiring_its_own_release_still_learns_later_merges() {
    // The acquire of a clock a goroutine itself released is skipped, but only while
    // nobody else has added to it.
    let t = T::new();
    let m = t.main();
    let (a, b) = (t.go(m), t.go(m));
    let s = APP + 0x100;
    t.e.release(a, s);
    t.e.acquire(a, s); // skipped: a's clock contains it
    t.write(b, 0);
    t.e.release_merge(b, s);
    t.e.acquire(a, s); // must join: b merged into it
    t.write(a, 0);
    assert_eq!(t.races(), 0, "{}", t.text());
}

#[test]
fn reusing_an_index_needs_no_hole_when_its_records_are_known() {
    // A's last record is published before A's final release (`wg.Done()` after `<-sem`,
    // say): a creator that learnt A up to that record reuses A's index without a hole,
    // and still races with what A did not publish.
    let t = T::new();
    let m = t.main();
    let a = t.go(m);
    t.write(a, 0);
    t.e.release(a, APP + 0x100); // publishes the write
    t.e.release(a, APP + 0x108); // a later release with no records after it
    t.end(a);
    t.e.acquire(m, APP + 0x100);
    let c = t.go(m); // reuses a's index
    assert_eq!(t.e.stats()[4], (&b"most_holes"[..], 0), "no hole");
    t.write(c, 0);
    assert_eq!(t.races(), 0, "{}", t.text());

    let b = t.go(m);
    t.write(b, 8);
    t.e.release(b, APP + 0x110);
    t.end(b);
    let d = t.go(m); // m never learnt b's write: a hole keeps it unknown
    t.write(d, 8);
    assert_eq!(t.races(), 1);
}

/// Report data of finished goroutines is dropped once no shadow record names them, so
/// it does not grow with the number of goroutines ever created; a goroutine whose
/// record is still in the shadow keeps its number and creation stack, and so do its
/// ancestors.
#[test]
fn sweeps_forget_finished_goroutines_but_not_those_a_report_can_name() {
    let t = T::new();
    t.e.set_sweep_after(100);
    let m = t.main();
    // main → parent (finished) → early (finished, its write stays in the shadow).
    let parent = t.e.go_start(Some(m), 0x3001);
    // SAFETY: `parent` is live until `t.end` below.
    let parent = unsafe { &*parent };
    let early = t.e.go_start(Some(parent), 0x3101);
    // SAFETY: as above.
    let early = unsafe { &*early };
    t.write(early, 0);
    let (parent_tid, early_tid) = (parent.tid, early.tid);
    t.end(early);
    t.end(parent);
    let wg = APP + 0x800;
    for i in 0..5000usize {
        let g = t.go(m);
        // Every churned goroutine writes; later ones overwrite earlier records.
        t.write(g, 0x100 + (i % 8) * 8);
        t.e.release_merge(g, wg);
        t.end(g);
        t.e.acquire(m, wg);
    }
    let (kept, owners) = t.e.goroutines_kept();
    // root, main, parent, early, the 8 goroutines whose writes remain, and at most the
    // goroutines finished since the last sweep.
    assert!(
        kept <= 12 + 100 && owners <= 12 + 100,
        "kept {kept} goroutines, {owners} owners"
    );
    {
        let reg = t.e.registry.lock();
        assert!(
            reg.info(parent_tid).is_some(),
            "an ancestor of a kept goroutine"
        );
        assert!(reg.info(early_tid).is_some());
    }
    let late = t.go(m);
    t.write(late, 0);
    assert_eq!(t.races(), 1);
    let text = t.text();
    assert!(
        text.contains(&std::format!(
            "Previous write at 0x000010000000 by goroutine {early_tid}:"
        )) && text.contains(&std::format!(
            "Goroutine {early_tid} (finished) created at:\n  f3100()"
        )),
        "{text}"
    );
}

/// A race whose racing record left the shadow is named correctly even if a sweep runs
/// between finding it and reporting it.
#[test]
fn a_sweep_keeps_the_goroutine_of_a_race_in_flight() {
    let t = T::new();
    let m = t.main();
    let a = t.go(m);
    t.write(a, 0);
    let a_tid = a.tid;
    t.end(a);
    let b = t.go(m);
    // The write covers a's record and removes it; report it only after a sweep.
    let site =
        t.e.sites
            .intern(b.clock().idx, KIND_WRITE, t.e.stacks.intern(0, 0x7001));
    let race =
        t.e.access_cell_slow(b, APP, 0xff, KIND_WRITE, site, &mut None);
    let race = race.expect("a race");
    t.e.sweep(&mut t.e.registry.lock());
    assert!(t.e.registry.lock().info(a_tid).is_some());
    t.e.report_race(b, race);
    let text = t.text();
    assert!(
        text.contains(&std::format!("by goroutine {a_tid}:")),
        "{text}"
    );
}

/// Fields of one 8-byte cell written from different lines in one epoch share one record
/// (no spill), and a race on any of them still reports the line that wrote it.
#[test]
fn accesses_merged_into_one_record_keep_their_own_stacks() {
    let t = T::new();
    let m = t.main();
    let w = t.go(m);
    t.e.access_range(w, APP + 0x40, 2, 0x7101, Kind::WRITE);
    t.e.access_range(w, APP + 0x42, 2, 0x7201, Kind::WRITE);
    t.e.access_range(w, APP + 0x44, 4, 0x7301, Kind::WRITE);
    t.e.access_range(w, APP + 0x40, 8, 0x7401, Kind::READ);
    let cell = t.e.shadow.cell(APP + 0x40);
    assert!(
        !cell.is_spilled(),
        "one write record and no read record expected"
    );
    let r1 = t.go(m);
    t.e.access(r1, APP + 0x45, 0x7501, Kind::READ);
    let r2 = t.go(m);
    t.e.access(r2, APP + 0x42, 0x7601, Kind::READ);
    assert_eq!(t.races(), 2);
    let text = t.text();
    assert!(
        text.contains("Previous write at 0x000010000044 by goroutine 2:\n  f7300()")
            && text.contains("Previous write at 0x000010000042 by goroutine 2:\n  f7200()"),
        "{text}"
    );
}

/// The fields of a struct rewritten line by line in a later epoch replace the earlier
/// epoch's composite record and join into a new one (the update path of the goroutine's
/// own cached sites): a goroutine that knows only the earlier epoch races with the new
/// writes, and the report names the line of the racing field.
#[test]
fn fields_rewritten_in_a_later_epoch_replace_the_composite_and_keep_their_stacks() {
    let t = T::new();
    let m = t.main();
    let w = t.go(m);
    let fields = |t: &T| {
        t.e.access_range(w, APP + 0x40, 4, 0x7101, Kind::WRITE);
        t.e.access_range(w, APP + 0x44, 4, 0x7201, Kind::WRITE);
    };
    fields(&t);
    t.e.release(w, APP + 0x100);
    let r = t.go(m);
    t.e.acquire(r, APP + 0x100);
    fields(&t);
    fields(&t);
    let cell = t.e.shadow.cell(APP + 0x40);
    let mut words = 0;
    cell.record_words(|_| words += 1);
    assert_eq!(words, 1, "one record, of the later epoch");
    t.e.release(w, APP + 0x108);
    let late = t.go(m);
    t.e.acquire(late, APP + 0x108);
    t.e.access(late, APP + 0x46, 0x7301, Kind::READ);
    assert_eq!(t.races(), 0, "{}", t.text());
    t.e.access(r, APP + 0x46, 0x7401, Kind::READ);
    assert_eq!(t.races(), 1);
    let text = t.text();
    assert!(
        text.contains("Previous write at 0x000010000044 by goroutine 2:\n  f7200()"),
        "{text}"
    );
}

#[test]
fn byte_fields_of_the_fast_paths_match_the_cell_masks() {
    for a in 0x1000..0x1010usize {
        assert_eq!(
            shadow::byte_field(a),
            shadow::bytes_field(1 << (a & 7)),
            "byte {a:#x}"
        );
        for hi in a + 1..=(a & !7) + 8 {
            assert_eq!(
                shadow::range_field(a, hi),
                shadow::bytes_field(super::cell_mask(a, hi)),
                "bytes {a:#x}..{hi:#x}"
            );
        }
    }
}

/// A long range replays its first whole cell's update on the cells that held the same
/// words (`Transition`): every cell ends as a range of that one cell would leave it.
#[test]
fn long_ranges_update_each_cell_as_a_range_of_that_cell_alone() {
    let t = T::new();
    let m = t.main();
    let (x, y, len) = (APP + 0x100, APP + 0x200, 64);
    let both = |g: &Goroutine, pc: usize, kind: Kind| {
        t.e.access_range(g, x, len, pc, kind);
        for cell in (0..len).step_by(8) {
            t.e.access_range(g, y + cell, 8, pc, kind);
        }
    };
    let records = |at: usize| t.record_words(at);
    // Fresh memory but for one cell read earlier: the write fills the empty cells
    // with one CAS each (`RangeWalk::fill`) and updates the other.
    t.e.access_range(m, x + 24, 8, 0x08, Kind::READ);
    t.e.access_range(m, y + 24, 8, 0x08, Kind::READ);
    t.e.release(m, APP);
    both(m, 0x10, Kind::WRITE);
    for cell in (0..len).step_by(8) {
        assert_eq!(records(x + cell), records(y + cell), "cell {cell}");
        assert_eq!(records(x + cell).len(), 1, "cell {cell}");
    }
    t.e.release(m, APP);
    both(m, 0x20, Kind::READ); // a new epoch: a read record beside the write
    both(m, 0x30, Kind::WRITE); // the write covers both
    t.e.release(m, APP);
    let c = t.go(m);
    both(c, 0x40, Kind::READ); // another goroutine's read beside m's write
    t.e.release(c, APP + 8);
    both(c, 0x50, Kind::READ); // its later read replaces its earlier one
    for cell in (0..len).step_by(8) {
        let want = records(y + cell);
        assert_eq!(want.len(), 2, "cell {cell}: {want:x?}");
        assert_eq!(records(x + cell), want, "cell {cell}");
    }
    assert_eq!(t.races(), 0);
}

/// Cells that alternate between a few shapes (a slice of pairs appended and extended
/// by different statements, as regexp's parser leaves them) take a long range's update
/// from whichever recent whole cell they match (`RangeWalk::replay_older`), and every
/// cell still ends as a range of that one cell alone would leave it.
#[test]
fn long_ranges_replay_recent_updates_on_cells_of_alternating_shapes() {
    let t = T::new();
    let m = t.main();
    let c = t.go(m);
    let (x, y, cells) = (APP + 0x1000, APP + 0x2000, 24);
    // Five shapes, in a repeating order: empty; two byte writes from two statements;
    // the same and a third statement's write; one byte write; and another goroutine's
    // read beside the main goroutine's write (a cell of two goroutines).
    for base in [x, y] {
        t.e.access_range(c, base, cells * 8, 0x70, Kind::READ);
        t.e.release(c, APP);
    }
    t.e.acquire(m, APP);
    for base in [x, y] {
        for k in 0..cells {
            let at = base + 8 * k;
            match k % 5 {
                0 => t.e.malloc(at, 8),
                1 => {
                    t.e.malloc(at, 8);
                    t.e.access(m, at, 0x10, Kind::WRITE);
                    t.e.access(m, at + 4, 0x20, Kind::WRITE);
                }
                2 => {
                    t.e.malloc(at, 8);
                    t.e.access(m, at, 0x10, Kind::WRITE);
                    t.e.access(m, at + 4, 0x20, Kind::WRITE);
                    t.e.access(m, at + 4, 0x30, Kind::WRITE);
                }
                3 => {
                    t.e.malloc(at, 8);
                    t.e.access(m, at + 2, 0x40, Kind::WRITE);
                }
                _ => t.e.access(m, at + 1, 0x50, Kind::WRITE),
            }
        }
    }
    for kind in [Kind::READ, Kind::WRITE] {
        t.e.access_range(m, x, cells * 8, 0x60, kind);
        for k in 0..cells {
            t.e.access_range(m, y + 8 * k, 8, 0x60, kind);
        }
        for k in 0..cells {
            let (got, want) = (t.record_words(x + 8 * k), t.record_words(y + 8 * k));
            assert_eq!(got, want, "{kind:?}, cell {k}");
        }
    }
    assert_eq!(t.races(), 0, "{}", t.text());
}

/// A long range over fresh memory fills its cells in one run (`Shadow::replay_run`):
/// the run stops at a cell another goroutine wrote and goes on after it; every shadow
/// page it filled is marked, so reallocating a piece of any of them forgets the
/// records there.
#[test]
fn a_fill_run_stops_at_a_written_cell_and_marks_every_page_it_fills() {
    use super::shadow::APP_PER_SHADOW_PAGE as PAGE;
    let t = T::new();
    let m = t.main();
    let (c, w) = (t.go(m), t.go(m)); // w is unordered with m's read below
    let (lo, len) = (0x40_0000 - 64, 3 * PAGE);
    t.write(c, lo + 40);
    t.e.release(c, APP);
    t.e.acquire(m, APP);
    t.e.access_range(m, APP + lo, len, 0x10, Kind::READ);
    assert_eq!(t.races(), 0, "{}", t.text());
    let records = |at: usize| t.record_words(APP + at).len();
    assert_eq!(records(lo + 40), 2, "c's write and m's read");
    assert!((0..len).step_by(8).all(|k| k == 40 || records(lo + k) == 1));
    // A piece of the range's third page, allocated anew: its cells are forgotten.
    let piece = lo + 2 * PAGE + 64;
    t.e.malloc(APP + piece, 64);
    for k in (0..64).step_by(8) {
        t.write(w, piece + k);
    }
    assert_eq!(t.races(), 0, "reallocated cells kept records: {}", t.text());
    t.write(w, piece + 64); // just past the piece: still m's read
    assert_eq!(t.races(), 1, "{}", t.text());
}

/// Concurrent readers of one location move their own records forward in place
/// (`refreshed_read`): the list keeps one record per reader, each at its reader's latest
/// read, and writes concurrent with those reads are still reported. Readers inside a
/// function (`framed`) have their access point's site cached and take
/// `Cell::read_spilled`; the others `Cell::try_spilled`, under the general update.
fn readers_of_a_spilled_cell_refresh_their_own_records(framed: bool) {
    let t = T::new();
    let m = t.main();
    let x = 0xc000;
    t.write(m, x); // written once, before the readers start: its record stays
    let readers: Vec<_> = (0..4).map(|_| t.go(m)).collect();
    if framed {
        for (k, &g) in readers.iter().enumerate() {
            t.e.func_enter(g, 0x901 + 0x10 * k); // distinct stacks, reported apart
        }
    }
    let w = t.go(m);
    let sync = |k: usize| APP + 0xc100 + 8 * k;
    for (k, &g) in readers.iter().enumerate() {
        t.read(g, x);
        t.e.release(g, sync(k));
        t.e.acquire(w, sync(k)); // w knows every first read
    }
    for &g in &readers {
        t.read(g, x); // a later epoch: refreshed in place
        t.read(g, x); // the same epoch: a hit
    }
    let words = t.record_words(APP + x);
    assert_eq!(words.len(), 5, "{words:x?}");
    assert_eq!(t.races(), 0);
    t.write(w, x); // knows the first reads only
    assert_eq!(t.races(), 1, "{}", t.text());
    // With a write among the records, reads take the general path and see it (at
    // another pc: a report of the same pair of pcs is not repeated).
    t.e.access(readers[0], APP + x, 0x7777, Kind::READ);
    assert_eq!(t.races(), 2, "{}", t.text());
}

#[test]
fn readers_of_a_spilled_cell_refresh_their_own_records_in_place() {
    readers_of_a_spilled_cell_refresh_their_own_records(true);
}

#[test]
fn readers_of_a_spilled_cell_refresh_their_own_records_under_the_general_update() {
    readers_of_a_spilled_cell_refresh_their_own_records(false);
}

/// A read of a spilled cell that holds a write unknown to the reader is not decided in
/// place (`Cell::read_spilled`): the general update sees the write and records the read.
#[test]
fn a_spilled_read_beside_an_unknown_write_takes_the_general_update() {
    let t = T::new();
    let m = t.main();
    let x = 0xd000;
    let readers: Vec<_> = (0..4).map(|_| t.go(m)).collect();
    let (v, z) = (t.go(m), t.go(m));
    t.write(v, x);
    t.e.release(v, APP + 0xd100);
    t.e.acquire(z, APP + 0xd100); // z knows v's write
    for (k, &g) in readers.iter().enumerate() {
        t.e.func_enter(g, 0x901 + 0x10 * k); // its access point's site gets cached
        t.read(g, x); // races with v's write; reads never take a write's record
        t.e.release(g, APP + 0xd200 + 8 * k);
        t.e.acquire(z, APP + 0xd200 + 8 * k); // z knows every first read
    }
    assert_eq!(t.races(), 4, "{}", t.text());
    assert!(t.e.shadow.cell(APP + x).is_spilled());
    t.read(readers[1], x); // a new epoch, beside v's write (reported already)
    // Knows all but that read (at another pc than v's write: a pair of stacks is
    // reported once).
    t.e.access(z, APP + x, 0x7777, Kind::WRITE);
    assert_eq!(t.races(), 5, "{}", t.text());
}

/// A reader's own record is refreshed whichever of its access points made it (`RLock`
/// and `RUnlock` both read the mutex's state word): the list keeps the records of other
/// readers that happened before (the general update would drop them), and a write that
/// knows only the reader's earlier read still races with the refreshed one.
#[test]
fn a_spilled_read_refresh_replaces_the_readers_record_from_another_point() {
    let t = T::new();
    let m = t.main();
    let x = 0xe000;
    let readers: Vec<_> = (0..4).map(|_| t.go(m)).collect();
    let w = t.go(m);
    let sync = |k: usize| APP + 0xe100 + 8 * k;
    for (k, &g) in readers.iter().enumerate() {
        t.read(g, x);
        t.e.release(g, sync(k));
        t.e.acquire(w, sync(k)); // w knows every first read
    }
    t.e.acquire(readers[1], sync(0)); // reader 1 knows reader 0's read
    t.e.access(readers[1], APP + x, 0x3333, Kind::READ); // another access point
    let words = t.record_words(APP + x);
    assert_eq!(words.len(), 4, "reader 0's record kept: {words:x?}");
    assert_eq!(t.races(), 0);
    t.write(w, x);
    assert_eq!(t.races(), 1, "{}", t.text());
}

/// A read refresh takes only records of the reader's clock index that its clock knows:
/// an index is reused once its goroutine has gone, and that goroutine's read stays.
#[test]
fn a_spilled_read_refresh_keeps_an_earlier_owner_of_the_index() {
    let t = T::new();
    let m = t.main();
    let x = 0xf000;
    let a = t.go(m);
    let others: Vec<_> = (0..3).map(|_| t.go(m)).collect();
    for &g in others.iter().chain([a].iter()) {
        t.read(g, x);
    }
    for (k, &g) in others.iter().enumerate() {
        t.e.release(g, APP + 0xf100 + 8 * k);
    }
    let index = a.clock().idx;
    t.end(a); // nobody learns of its read
    let b = (0..1000)
        .map(|_| t.go(m))
        .find(|g| {
            g.clock().idx == index || {
                t.end(g);
                false
            }
        })
        .expect("an index is reused");
    for k in 0..others.len() {
        t.e.acquire(b, APP + 0xf100 + 8 * k); // b knows every read but a's
    }
    t.read(b, x); // a's record is of b's index, not known to b
    assert_eq!(t.races(), 0);
    t.write(b, x);
    assert_eq!(t.races(), 1, "{}", t.text());
}

/// A spilled cell's reader does not refresh its record past a write it does not know:
/// here an atomic write that knew the reads (so it raced with none and, not covering
/// plain reads, left them in place).
#[test]
fn a_spilled_read_refresh_checks_the_writes_beside_it() {
    let t = T::new();
    let m = t.main();
    let y = 0xd000;
    let readers: Vec<_> = (0..4).map(|_| t.go(m)).collect();
    let w = t.go(m);
    for (k, &g) in readers.iter().enumerate() {
        t.read(g, y);
        t.e.release(g, APP + 0xd100 + 8 * k);
        t.e.acquire(w, APP + 0xd100 + 8 * k);
    }
    t.e.access(w, APP + y, 0x9999, Kind::ATOMIC_WRITE);
    assert_eq!(t.races(), 0, "{}", t.text());
    t.read(readers[1], y); // a later epoch, its own record in place: still a race
    assert_eq!(t.races(), 1, "{}", t.text());
}

/// Cells updated the same way replay the goroutine's remembered update
/// (`UpdateMemo`) only while its clock is the one the update was decided with: after
/// an acquire, the same words take another update.
#[test]
fn a_remembered_update_is_not_replayed_after_the_clock_changed() {
    let t = T::new();
    let m = t.main();
    let h = t.go(m);
    let g = t.go(m);
    let (a, b, c) = (APP + 0xa004, APP + 0xa104, APP + 0xa304);
    let words = |addr: usize| t.record_words(addr);
    for addr in [a, b, c] {
        t.e.access(h, addr, 0x50, Kind::READ);
    }
    t.e.func_enter(g, 0x700); // as in Go: remembered sites are on a call stack
    t.e.access(g, a, 0x60, Kind::READ); // h's read unknown: both stay
    assert_eq!(words(a).len(), 2);
    t.e.release(h, APP + 0xa200);
    t.e.acquire(g, APP + 0xa200); // now g's read covers h's
    t.e.access(g, b, 0x60, Kind::READ);
    assert_eq!(words(b).len(), 1, "{:x?}", words(b));
    // While the clock stays, the same update is made (replayed).
    t.e.access(g, c, 0x60, Kind::READ);
    assert_eq!(words(c), words(b));
    assert_eq!(t.races(), 0);
}

/// A remembered update of the goroutine's own records replayed at a later stamp (through
/// its form without times) is remembered again with the times it just had, so the next
/// cells replay it as it is: with the access's time, so a goroutine that knows only
/// the earlier epoch races with the bytes written in the later one.
#[test]
fn an_own_update_replayed_at_a_new_stamp_is_replayed_with_its_new_times() {
    let t = T::new();
    let m = t.main();
    let (g, h) = (t.go(m), t.go(m));
    let cells = [APP + 0xc000, APP + 0xc100, APP + 0xc200];
    let words = |addr: usize| t.record_words(addr);
    t.e.func_enter(g, 0x700); // as in Go: remembered sites are on a call stack
    let fill_pair = |addr: usize| {
        t.e.access(g, addr, 0x80, Kind::WRITE); // byte 0: a fill
        t.e.access(g, addr + 1, 0x90, Kind::WRITE); // byte 1: a widening, remembered
    };
    fill_pair(cells[0]);
    t.e.release(g, APP + 0xc800); // a new epoch and stamp
    t.e.acquire(h, APP + 0xc800); // h knows the first epoch only
    fill_pair(cells[1]); // replayed through the form without times, remembered again
    let now = g.clock().stamp;
    assert!(g.local().update_memo.stamps().contains(&now), "restamped");
    fill_pair(cells[2]); // replayed as remembered
    assert_eq!(words(cells[2]), words(cells[1]));
    assert_eq!(words(cells[2]).len(), 1, "{:x?}", words(cells[2]));
    assert_ne!(words(cells[2]), words(cells[0]), "the later epoch's time");
    t.e.access(h, cells[0] + 1, 0xa0, Kind::WRITE); // ordered: no race
    assert_eq!(t.races(), 0, "{}", t.text());
    t.e.access(h, cells[2] + 1, 0xa0, Kind::WRITE); // the later epoch: a race
    assert_eq!(t.races(), 1, "{}", t.text());
}

/// A list with records past its head (here twelve readers of one word) decides a
/// reader's same-epoch read and its refresh at a new epoch on the words in place
/// (`Cell::long_list_kept`): the list keeps one record per reader, other readers'
/// earlier records included, and a write that knows only a reader's first read still
/// races with its later one.
#[test]
fn a_long_spilled_list_refreshes_and_hits_in_place() {
    let t = T::new();
    let m = t.main();
    let x = 0xb000;
    let readers: Vec<_> = (0..12).map(|_| t.go(m)).collect();
    let w = t.go(m);
    let sync = |k: usize| APP + 0xb100 + 8 * k;
    for (k, &g) in readers.iter().enumerate() {
        t.read(g, x);
        t.read(g, x); // same epoch: a hit, found past the list's head
        t.e.release(g, sync(k));
        t.e.acquire(w, sync(k)); // w knows every first read
    }
    let words = || t.record_words(APP + x);
    assert_eq!(words().len(), 12);
    t.e.acquire(readers[11], sync(0)); // reader 11 knows reader 0's read
    for &g in readers.iter().rev() {
        t.e.access(g, APP + x, 0x3333, Kind::READ); // refreshed in place
        assert_eq!(words().len(), 12, "reader 0's record kept: {:x?}", words());
    }
    assert_eq!(t.races(), 0);
    t.write(w, x);
    assert_eq!(t.races(), 1, "{}", t.text());
}

/// A goroutine's update of a cell holding only its own records is remembered without
/// times (`OwnTransition`) and replayed after later synchronisations (`n++` under a
/// mutex); the replayed record carries the access's time, so another goroutine that
/// knows only an earlier iteration still races with the last one.
#[test]
fn an_own_update_replayed_at_a_later_epoch_takes_that_epoch() {
    let t = T::new();
    let m = t.main();
    let g = t.go(m);
    let h = t.go(m);
    t.e.func_enter(g, 0x700);
    let x = APP + 0xb000;
    let lock = |i: usize| APP + 0xb100 + 8 * i;
    for i in 0..4 {
        t.e.access(g, x, 0x60, Kind::READ);
        t.e.access(g, x, 0x68, Kind::WRITE);
        t.e.release(g, lock(i));
    }
    // The same updates once more, after the fourth release, which h then acquires.
    t.e.access(g, x, 0x60, Kind::READ);
    t.e.access(g, x, 0x68, Kind::WRITE);
    assert_eq!(t.record_words(x).len(), 1);
    t.e.acquire(h, lock(3));
    assert_eq!(t.races(), 0);
    t.e.access(h, x, 0x80, Kind::READ);
    assert_eq!(t.races(), 1, "h knows g only up to its fourth release");
}

/// An earlier owner of a reused clock index, at the same access point, leaves words
/// that differ from the new owner's only in their time: they are not the new owner's
/// own (their time is before it took the index), and the remembered own update is not
/// replayed on them.
#[test]
fn an_own_update_is_not_replayed_on_an_earlier_owner_of_the_index() {
    let t = T::new();
    let m = t.main();
    let (x, y) = (APP + 0xc000, APP + 0xc100);
    let first = t.go(m);
    t.e.func_enter(first, 0x700);
    t.e.access(first, x, 0x60, Kind::WRITE);
    let first_epoch = t.e.epoch_of(first);
    t.end(first); // m does not learn of its end
    let second = t.go(m);
    assert_eq!(
        t.e.epoch_of(second).index(),
        first_epoch.index(),
        "index reused"
    );
    t.e.func_enter(second, 0x700);
    t.e.access(second, y, 0x60, Kind::WRITE);
    t.e.release(second, APP + 0xc200);
    t.e.access(second, y, 0x60, Kind::WRITE); // remembered: [W(past)] -> [W(now)]
    t.e.release(second, APP + 0xc208);
    assert_eq!(t.races(), 0);
    t.e.access(second, x, 0x60, Kind::WRITE);
    assert_eq!(t.races(), 1, "the first owner's write is not known");
}

/// Another goroutine's record that the access keeps and the goroutine's clock knows
/// (a plain write initialising a word later used atomically: an atomic write does not
/// cover it) is *fixed* in the remembered own update: replayed only on the very same
/// word, and kept, so a goroutine that does not know the initialising write still
/// races with it.
#[test]
fn an_own_update_replayed_over_a_known_record_keeps_it() {
    let t = T::new();
    let m = t.main();
    let late = t.go(m); // created before the write: does not know it
    let x = 0xd000;
    t.write(m, x);
    let g = t.go(m); // knows m's write
    t.e.func_enter(g, 0x700);
    for _ in 0..4 {
        atomic(&t, g, x, Kind::ATOMIC_WRITE, AtomicSync::AcquireRelease);
    }
    let words = t.record_words(APP + x);
    assert_eq!(words.len(), 2, "m's write and g's last atomic: {words:x?}");
    assert_eq!(t.races(), 0);
    // A store acquires nothing (a load would acquire g's release, which knows m's write).
    atomic(&t, late, x, Kind::ATOMIC_WRITE, AtomicSync::Release);
    assert_eq!(
        t.races(),
        1,
        "late's atomic store races with m's plain write"
    );
}

/// A remembered update that kept another goroutine's record because the clock did not
/// know it then is not replayed once the clock knows it: the record is then covered
/// (a read covers a read it follows) and goes, as the general rule says.
#[test]
fn an_own_update_that_kept_an_unknown_record_is_not_replayed_once_it_is_known() {
    let t = T::new();
    let m = t.main();
    let (h, g) = (t.go(m), t.go(m));
    let x = APP + 0xd100;
    t.e.access(h, x, 0x50, Kind::READ);
    t.e.func_enter(g, 0x700);
    t.e.access(g, x, 0x60, Kind::READ);
    t.e.release(g, APP + 0xd200);
    t.e.access(g, x, 0x60, Kind::READ); // h's read unknown: kept, g's refreshed
    assert_eq!(t.record_words(x).len(), 2);
    t.e.release(h, APP + 0xd208);
    t.e.acquire(g, APP + 0xd208);
    t.e.release(g, APP + 0xd210);
    t.e.access(g, x, 0x60, Kind::READ); // h's read known now: covered
    assert_eq!(t.record_words(x).len(), 1, "{:x?}", t.record_words(x));
    assert_eq!(t.races(), 0);
}

/// A goroutine releasing one object again and again updates only its own entry there
/// (the object is an unchanged copy of its clock); after it acquired something, the
/// release copies its whole clock again, so whoever acquires the object learns both.
#[test]
fn a_repeated_release_carries_the_goroutine_s_ticks_and_joins() {
    let t = T::new();
    let m = t.main();
    let (g, h) = (t.go(m), t.go(m));
    let (x, y) = (0xf000, 0xf100);
    let (s, a) = (APP + 0xf200, APP + 0xf208);
    t.e.release(g, s);
    t.write(g, y); // after the first release: only the second one publishes it
    t.write(h, x);
    t.e.release(h, a);
    t.e.acquire(g, a); // g learns h's write
    t.e.release(g, s);
    let k = t.go(m);
    t.e.acquire(k, s);
    t.read(k, y);
    t.read(k, x);
    assert_eq!(t.races(), 0, "{}", t.text());
    let z = 0xf300;
    t.e.release(g, s); // again: its own entry only
    t.write(g, z);
    t.e.release(g, s);
    t.e.acquire(k, s);
    t.write(k, z);
    assert_eq!(t.races(), 0, "{}", t.text());
}

#[test]
fn a_cell_read_field_by_field_spills_and_returns_inline_every_epoch() {
    // The reader's bytes of one cell are split between two access points; each new
    // epoch's first read leaves three records (the writer's, the old composite read,
    // the new read), the second brings it back to two.
    let t = T::new();
    let m = t.main();
    let cell = APP + 0x40;
    t.e.access_range(m, cell, 8, 0x1000, Kind::WRITE);
    let c = t.go(m);
    let late = t.go(m); // knows the write, not c's reads
    for round in 0..3 {
        t.e.access(c, cell, 0x2000, Kind::READ);
        t.e.access_range(c, cell + 4, 4, 0x3000, Kind::READ);
        assert!(!t.e.shadow.cell(cell).is_spilled(), "round {round}");
        assert_eq!(t.record_words(cell).len(), 2, "round {round}");
        t.e.release(c, APP + 0x1000); // a new epoch for c
        t.e.access(c, cell, 0x2000, Kind::READ);
        assert!(t.e.shadow.cell(cell).is_spilled(), "round {round}");
        assert_eq!(t.record_words(cell).len(), 3, "round {round}");
    }
    assert_eq!(t.races(), 0);
    // Every byte c read is still recorded: a write to any of them races.
    t.e.access(late, cell, 0x4000, Kind::WRITE);
    assert_eq!(t.races(), 1);
    t.e.access(late, cell + 6, 0x4100, Kind::WRITE);
    assert_eq!(t.races(), 2);
}

#[test]
fn a_read_of_a_shared_cell_covered_by_an_own_read_of_its_epoch_changes_nothing() {
    // RLock and RUnlock read the state word of a mutex that several readers share: the
    // second read, in the epoch of the first, is a hit (no write to the shared list).
    let t = T::new();
    let m = t.main();
    let cell = APP + 0x80;
    t.e.access_range(m, cell, 8, 0x1000, Kind::WRITE);
    let readers: Vec<&Goroutine> = (0..3).map(|_| t.go(m)).collect();
    for r in &readers {
        t.e.access(r, cell, 0x2000, Kind::READ);
    }
    assert!(t.e.shadow.cell(cell).is_spilled());
    let c = readers[0];
    // The second access point's site cached (found without a lookup, as in a loop):
    // made once, in a function (sites are cached per frame).
    t.e.func_enter(c, 0x500);
    t.e.access(c, cell + 8, 0x3000, Kind::READ);
    t.e.release(c, APP + 0x1000); // a new epoch for c
    t.e.access(c, cell, 0x2000, Kind::READ); // its record moves to the new epoch
    let before = t.record_words(cell);
    t.e.access(c, cell, 0x3000, Kind::READ); // another access point, same epoch and byte
    assert_eq!(t.record_words(cell), before);
    // The readers are still all recorded: a write that knows none of them races.
    let w = t.go(m);
    t.e.access(w, cell, 0x4000, Kind::WRITE);
    assert_eq!(t.races(), 1);
}

#[test]
fn a_recycled_goroutine_context_starts_as_a_new_one() {
    let t = T::new();
    let m = t.main();
    let a = t.go(m);
    t.e.func_enter(a, 0x5000);
    t.e.func_enter(a, 0x6000); // printed as f5fff (the outermost frame is not)
    t.write(a, 0x10);
    let a_ptr: *const Goroutine = a;
    t.end(a);
    let b = t.go(m); // reuses the ended goroutine's context
    assert!(core::ptr::eq(a_ptr, b), "the context was recycled");
    assert!(b.local().pcs.is_empty() && b.local().valid == 0);
    assert_ne!(b.tid, 0);
    // Not ordered after a's write (m never synchronised with a): a race, whose current
    // stack is b's alone and whose previous one is a's.
    t.write(b, 0x10);
    assert_eq!(t.races(), 1);
    let text = t.text();
    let (current, previous) = text.split_once("Previous write").unwrap();
    assert!(!current.contains("f5fff"), "{text}");
    assert!(previous.contains("f5fff"), "{text}");
}

#[test]
fn a_cell_written_byte_by_byte_at_successive_epochs_keeps_each_byte_s_last_write() {
    // A `[]bool` filled in channel order: one record per byte and epoch, more than the
    // list holds in place, each later access decided on the words.
    let t = T::new();
    let m = t.main();
    let cell = 0x100;
    t.e.access_range(m, APP + cell, 8, 0x900, Kind::WRITE);
    let late = t.go(m); // knows that write, nothing after
    for round in 0..3 {
        for b in [3, 0, 7, 1, 6, 2, 5, 4] {
            t.e.release(m, APP + 0x1000); // a new epoch for each byte
            t.read(m, cell + b);
            t.write(m, cell + b);
        }
        assert!(t.e.shadow.cell(APP + cell).is_spilled(), "round {round}");
        assert_eq!(t.record_words(APP + cell).len(), 8, "round {round}");
    }
    assert_eq!(t.races(), 0);
    // Each byte's last write is there: writes that know none of them race, one per byte.
    t.write(late, cell + 5);
    assert_eq!(t.races(), 1);
    t.write(late, cell + 2);
    assert_eq!(t.races(), 2);
}

/// A plain read deciding on a spilled cell without its lock (`Cell::read_spilled`) while
/// another thread takes the cell from spilled to inline and back: the reader must not
/// follow word 1 as a list pointer once it holds a record (which it does after the
/// return inline). Go's `TestRaceIssue5567` hits this shape at GOMAXPROCS=4; following
/// word 1 before checking word 0 again made the reader dereference a record word and
/// fault (about one run of Go's race suite in 40). A stress test: with that order, 4
/// of 5 runs of this test crashed (debug build, 2 cores).
#[test]
fn a_lock_free_spilled_read_never_follows_a_word_that_stopped_being_its_list() {
    const ROUNDS: usize = 1_000_000;
    let t = T::new();
    let m = t.main();
    let (reader, b, c) = (t.go(m), t.go(m), t.go(m));
    let (e, x, s_reader, s_b, s_c) = (&t.e, APP + 64, APP + 4096, APP + 4104, APP + 4112);
    // A frame: the reader's access point is then cached, which `read_spilled` needs.
    e.func_enter(reader, 0x500);
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            // Each read at a new epoch: the own record is refreshed on the spilled list.
            while !done.load(Ordering::Relaxed) {
                e.release(reader, s_reader);
                e.access(reader, x, 0x3000, Kind::READ);
            }
        });
        for _ in 0..ROUNDS {
            // On byte 4, beside the reader's record on byte 0: b's write, knowing c's
            // last read, covers it and b's own last write (two records → inline); c's
            // read after it is a third record (→ spilled).
            e.acquire(b, s_c);
            e.access(b, x + 4, 0x3100, Kind::WRITE);
            e.release(b, s_b);
            e.acquire(c, s_b);
            e.access(c, x + 4, 0x3200, Kind::READ);
            e.release(c, s_c);
        }
        done.store(true, Ordering::Relaxed);
    });
    assert_eq!(t.races(), 0, "{}", t.text());
}

/// Read-modify-writes on one word from goroutines on several threads: each acquires
/// every earlier one through the word's sync object, so each must find their records
/// already in the shadow and cover them: the word holds one record at any moment. With
/// the access checked after the sync object's lock was dropped, a record that landed
/// after the next goroutine's check stayed beside it until a later one covered it (Go's
/// `sync` tests grew lists of 40 atomic records on a contended mutex's state word, and
/// `micro/AtomicAdd` ran 3.5x slower). Each thread looks at the word after its own
/// operations; with that order, 5 of 5 runs saw two records or more.
#[test]
fn contended_read_modify_writes_on_one_word_keep_one_record() {
    const ROUNDS: usize = 20_000;
    let t = T::new();
    let m = t.main();
    let gs = [t.go(m), t.go(m), t.go(m), t.go(m)];
    let word = AtomicU64::new(0);
    let most = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for g in gs {
            let (e, word, most) = (&t.e, &word, &most);
            scope.spawn(move || {
                for _ in 0..ROUNDS {
                    e.atomic(
                        g,
                        APP,
                        8,
                        0x3000,
                        0x3100,
                        Kind::ATOMIC_WRITE,
                        AtomicSync::AcquireRelease,
                        || {
                            word.fetch_add(1, Ordering::SeqCst);
                            true
                        },
                    );
                    let mut records = 0;
                    e.shadow.cell(APP).record_words(|_| records += 1);
                    most.fetch_max(records, Ordering::Relaxed);
                }
            });
        }
    });
    assert_eq!(word.load(Ordering::Relaxed), 4 * ROUNDS as u64);
    assert_eq!(most.load(Ordering::Relaxed), 1, "records seen at once");
    assert_eq!(t.races(), 0, "{}", t.text());
}

/// A long range a goroutine covered in this epoch is a same-epoch hit as a whole: a
/// second copy does not look at the cells again. Shown by emptying one cell behind the
/// engine's back (only a reset or a racing access could do that): the covered read
/// leaves it empty; a write, which a read does not cover, and the next epoch's read
/// walk the range again.
#[test]
fn a_range_covered_in_this_epoch_is_a_hit_as_a_whole() {
    let t = T::new();
    let m = t.main();
    let (a, b, c) = (t.go(m), t.go(m), t.go(m));
    let (x, n) = (APP + 0x10000, 4096);
    t.e.access_range(a, x, n, 0x4000, Kind::WRITE);
    t.e.shadow.cell(x + 64).reset();
    t.e.access_range(a, x, n, 0x4100, Kind::READ); // covered by the writes
    assert!(
        t.record_words(x + 64).is_empty(),
        "the cell was not looked at"
    );
    t.e.access_range(b, x + 64, 8, 0x4200, Kind::WRITE);
    assert_eq!(t.races(), 0, "{}", t.text());
    t.e.release(a, APP + 0x800);
    t.e.access_range(a, x, n, 0x4100, Kind::READ); // a new epoch: walked
    assert_eq!(t.races(), 1, "{}", t.text());

    let y = APP + 0x20000;
    t.e.access_range(c, y, n, 0x4300, Kind::READ);
    t.e.shadow.cell(y + 64).reset();
    t.e.access_range(c, y, n, 0x4400, Kind::WRITE); // not covered by reads: walked
    assert_eq!(t.record_words(y + 64).len(), 1);
}

/// A range covered in this epoch is walked again once its memory was reset (freed and
/// allocated again: a buffer the garbage collector reclaimed and the allocator handed
/// back within one epoch), so its new records exist and a goroutine that reaches the
/// memory without synchronising races with them. Small frees and large ones (whose
/// shadow goes back to the kernel, marks and all) both count.
#[test]
fn a_range_covered_in_this_epoch_is_walked_again_after_a_reset() {
    for n in [4096, (4 << 20) + 8192] {
        let t = T::new();
        let m = t.main();
        let (a, b) = (t.go(m), t.go(m));
        let x = APP + 0x10000;
        t.e.access_range(a, x, n, 0x4000, Kind::WRITE);
        t.e.free(x, n);
        t.e.malloc(x + 32, 64); // a small object of the same page
        t.e.access_range(a, x, n, 0x4000, Kind::WRITE);
        t.e.access_range(b, x + 40, 8, 0x4100, Kind::READ);
        assert_eq!(t.races(), 1, "{n} bytes: {}", t.text());
    }
}

/// A recycled context keeps its frame nodes' stack ids (a function of the frames alone)
/// but not their sites, which name the ended goroutine's clock index: the next goroutine
/// running the same code under another index records its accesses as its own, and a
/// race with one of them names it, with its stack.
#[test]
fn a_recycled_context_keeps_its_frames_stack_ids_but_not_their_sites() {
    let t = T::new();
    let m = t.main();
    let run = |g: &Goroutine, x: usize| {
        t.e.func_enter(g, 0x5000);
        t.e.func_enter(g, 0x6000); // printed as f5fff (the outermost frame is not)
        t.e.access(g, APP + x, 0x1234, Kind::WRITE); // one access point for all
    };
    let (a1, a2) = (t.go(m), t.go(m));
    run(a1, 0x10);
    run(a2, 0x18);
    t.e.release(a1, APP + 0x100);
    t.e.acquire(m, APP + 0x100); // m knows a1's write, not a2's
    let a2_ptr: *const Goroutine = a2;
    let a2_tid = a2.tid;
    t.end(a1);
    t.end(a2);
    // a2's context (ended last) with a1's index (the one whose records b's clock knows).
    let b = t.go(m);
    assert!(core::ptr::eq(a2_ptr, b), "a2's context was recycled");
    run(b, 0x20);
    t.write(m, 0x20); // m never synchronised with b: a race with b's write
    assert_eq!(t.races(), 1);
    let text = t.text();
    let previous = text.split_once("Previous write").unwrap().1;
    let by = std::format!("by goroutine {}:", b.tid);
    assert!(previous.contains(&by), "not a2 ({a2_tid}): {text}");
    assert!(previous.contains("f5fff"), "{text}");
}
