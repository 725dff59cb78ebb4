//! Race reports in the Go race detector's exact text format, and report deduplication.
//!
//! The text is what ThreadSanitizer prints in Go mode (`tsan_report.cpp`), byte for byte
//! where `runtime/race/output_test.go` pins it: addresses as `0x` + at least 12 hex
//! digits, goroutine numbers as report numbers (the main goroutine is number 1 and is
//! named, never listed), every pc symbolised as the previous instruction with inlined
//! frames expanded, and the outermost frame of every stack dropped (it is always
//! runtime glue: `goexit`, `runtime.main`). A report is assembled whole and written with
//! one call, so reports never interleave with each other.

use super::stack::StackId;
use alloc::vec::Vec;
use hashbrown::HashSet;

/// Receives one symbolised frame: `(function, file, line, offset in the function)`.
pub type FrameSink<'a> = dyn FnMut(&[u8], &[u8], usize, usize) + 'a;

/// What the engine needs from its surroundings: symbols, an output, a way to stop.
pub trait Host {
    /// Where the shadow starts, if fixed for every engine of this host: the inlined
    /// same-epoch check then addresses a cell with one register instead of two (the
    /// offset folds into the load), which spares it a saved register on every access.
    /// The engine's `shadow_offset` must then be this.
    const FIXED_SHADOW_OFFSET: Option<usize> = None;
    /// Calls `frame(func, file, line, offset)` for each logical frame at `pc` (a pc
    /// inside the call or access instruction), innermost inlined frame first.
    fn symbolize(&self, pc: usize, frame: &mut FrameSink<'_>);
    /// Writes a whole report (or the summary line).
    fn write_report(&self, text: &[u8]);
    /// `halt_on_error`: stops the program with `code` (returns only in tests).
    fn halt(&self, code: i32);
    /// The heap block `(start, size)` containing `addr`, if it is in one (Go's
    /// `findObject`, callback command 2).
    fn heap_block(&self, _addr: usize) -> Option<(usize, usize)> {
        None
    }
    /// Who allocated the heap block starting at `start`: `(goroutine report number,
    /// stack id from [`Engine::alloc_stack`](super::Engine::alloc_stack))`, if known.
    fn alloc_site(&self, _start: usize) -> Option<(u32, StackId)> {
        None
    }
    /// Whether `addr` is in the program's data or bss (a global variable).
    fn is_global(&self, _addr: usize) -> bool {
        false
    }
    /// Whether reports should also be written as JSON lines (`GORACE=json_path`).
    fn json_enabled(&self) -> bool {
        false
    }
    /// Writes one JSON line (with its newline).
    fn write_json(&self, _line: &[u8]) {}
}

/// The report-related GORACE options (see `flags` for parsing).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    pub exitcode: i32,
    pub halt_on_error: bool,
    pub suppress_equal_stacks: bool,
    pub suppress_equal_addresses: bool,
    pub strip_path_prefix: Vec<u8>,
    pub atexit_sleep_ms: u64,
    pub history_size: u64,
    pub report_bugs: bool,
    /// Print internal figures at exit (`gorace_stats=1`).
    pub stats: bool,
    /// Add the heap block and its allocation site to text reports (`alloc_sites=1`;
    /// off by default, so that the default text is exactly Go's).
    pub alloc_sites: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            exitcode: 66,
            halt_on_error: false,
            suppress_equal_stacks: true,
            suppress_equal_addresses: false,
            strip_path_prefix: Vec::new(),
            atexit_sleep_ms: 1000,
            history_size: 0,
            report_bugs: true,
            stats: false,
            alloc_sites: false,
        }
    }
}

/// One side of a race.
pub struct Access {
    pub addr: usize,
    pub write: bool,
    pub tid: u32,
    /// Innermost first.
    pub stack: Vec<usize>,
    pub stack_id: StackId,
}

/// What has been reported, for deduplication.
#[derive(Default)]
pub struct ReportState {
    stack_pairs: HashSet<(StackId, StackId)>,
    ranges: Vec<(usize, usize)>,
}

impl ReportState {
    /// Whether a report of this pair should be printed (and remembers it if so).
    pub fn admit(&mut self, opts: &Options, cur: &Access, prev: &Access) -> bool {
        if !opts.report_bugs {
            return false;
        }
        let pair = (
            cur.stack_id.min(prev.stack_id),
            cur.stack_id.max(prev.stack_id),
        );
        if opts.suppress_equal_stacks && self.stack_pairs.contains(&pair) {
            return false;
        }
        let range = (cur.addr.min(prev.addr), cur.addr.max(prev.addr) + 1);
        if opts.suppress_equal_addresses
            && self
                .ranges
                .iter()
                .any(|&(lo, hi)| lo < range.1 && range.0 < hi)
        {
            return false;
        }
        if opts.suppress_equal_stacks {
            self.stack_pairs.insert(pair);
        }
        if opts.suppress_equal_addresses {
            self.ranges.push(range);
        }
        true
    }
}

pub fn push_dec(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

pub fn push_hex(out: &mut Vec<u8>, n: u64, min_digits: usize) {
    let digits = (((64 - n.leading_zeros()) as usize).div_ceil(4))
        .max(min_digits)
        .max(1);
    for k in (0..digits).rev() {
        let d = ((n >> (4 * k)) & 0xf) as u8;
        out.push(if d < 10 { b'0' + d } else { b'a' + d - 10 });
    }
}

/// `strip_path_prefix`: cut through the first occurrence of the prefix, then a `./`.
pub fn strip_path<'a>(file: &'a [u8], prefix: &[u8]) -> &'a [u8] {
    let mut f = file;
    if let Some(pos) = f
        .windows(prefix.len().max(1))
        .position(|w| !prefix.is_empty() && w == prefix)
    {
        f = &f[pos + prefix.len()..];
    }
    f.strip_prefix(b"./").unwrap_or(f)
}

/// One symbolised (logical) frame. `file` is the full path; `strip_path_prefix` is
/// applied when printing text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub func: Vec<u8>,
    pub file: Vec<u8>,
    pub line: usize,
    pub off: usize,
    /// The physical pc the frame was symbolised from (a return or access address).
    pub pc: usize,
}

/// Symbolises `pcs` (innermost first) into logical frames, dropping the outermost one
/// as TSan does (it is always runtime glue).
pub fn symbolize<H: Host>(host: &H, pcs: &[usize]) -> Vec<Frame> {
    let mut frames: Vec<Frame> = Vec::new();
    for &pc in pcs {
        if pc == super::stack::ELIDED_PC {
            frames.push(Frame {
                func: b"...".to_vec(),
                file: b"(gorace: frames elided, the stack was deeper than 1024 calls)".to_vec(),
                line: 0,
                off: 0,
                pc,
            });
            continue;
        }
        host.symbolize(pc.wrapping_sub(1), &mut |func, file, line, off| {
            frames.push(Frame {
                func: func.to_vec(),
                file: file.to_vec(),
                line,
                off,
                pc,
            });
        });
    }
    if frames.len() >= 2 {
        frames.pop();
    }
    frames
}

/// Where a goroutine was created: its report number and the creation stack.
pub struct Creation {
    pub tid: u32,
    pub finished: bool,
    pub frames: Vec<Frame>,
}

/// One side of a race, symbolised.
pub struct SymAccess {
    pub addr: usize,
    /// Bytes of this access inside the racing 8-byte cell.
    pub size: usize,
    pub write: bool,
    pub atomic: bool,
    /// Report number; `u32::MAX` if unknown.
    pub tid: u32,
    pub frames: Vec<Frame>,
    /// Creation of this goroutine, then of its parent, and so on (nearest first; the
    /// text report uses only the first).
    pub chain: Vec<Creation>,
}

/// Where the racing memory is.
pub enum Location {
    /// A heap block, and the goroutine and stack that allocated it when known.
    Heap {
        start: usize,
        size: usize,
        alloc: Option<(u32, Vec<Frame>)>,
    },
    /// A global variable (data or bss).
    Global,
}

/// A whole race, symbolised: the current access first.
pub struct RaceReport {
    pub accesses: [SymAccess; 2],
    pub location: Option<Location>,
}

fn push_frames(out: &mut Vec<u8>, opts: &Options, frames: &[Frame]) {
    if frames.is_empty() {
        out.extend_from_slice(b"  [failed to restore the stack]\n");
    }
    for f in frames {
        out.extend_from_slice(b"  ");
        out.extend_from_slice(&f.func);
        out.extend_from_slice(b"()\n      ");
        out.extend_from_slice(strip_path(&f.file, &opts.strip_path_prefix));
        out.push(b':');
        push_dec(out, f.line as u64);
        out.extend_from_slice(b" +0x");
        push_hex(out, f.off as u64, 1);
        out.push(b'\n');
    }
}

fn push_goroutine(out: &mut Vec<u8>, tid: u32) {
    if tid == 1 {
        out.extend_from_slice(b"main goroutine");
    } else {
        out.extend_from_slice(b"goroutine ");
        push_dec(out, tid as u64);
    }
}

/// The whole text of one report, in Go's format; with `alloc_sites`, a heap block's
/// location and allocation stack follow the goroutine blocks.
pub fn format(opts: &Options, r: &RaceReport) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    out.extend_from_slice(b"==================\nWARNING: DATA RACE");
    for (i, a) in r.accesses.iter().enumerate() {
        out.extend_from_slice(match (i, a.write) {
            (0, true) => b"\nWrite at 0x".as_slice(),
            (0, false) => b"\nRead at 0x",
            (_, true) => b"\nPrevious write at 0x",
            (_, false) => b"\nPrevious read at 0x",
        });
        push_hex(&mut out, a.addr as u64, 12);
        out.extend_from_slice(b" by ");
        push_goroutine(&mut out, a.tid);
        out.extend_from_slice(b":\n");
        push_frames(&mut out, opts, &a.frames);
    }
    let mut listed: Vec<u32> = Vec::new();
    for a in &r.accesses {
        if a.tid == 1 || a.tid == u32::MAX || listed.contains(&a.tid) {
            continue;
        }
        listed.push(a.tid);
        let (finished, frames) = match a.chain.first() {
            Some(c) => (c.finished, &c.frames[..]),
            None => (false, &[][..]),
        };
        out.extend_from_slice(b"\nGoroutine ");
        push_dec(&mut out, a.tid as u64);
        out.extend_from_slice(if finished {
            b" (finished)"
        } else {
            b" (running)"
        });
        out.extend_from_slice(b" created at:\n");
        push_frames(&mut out, opts, frames);
    }
    if opts.alloc_sites
        && let Some(Location::Heap { start, size, alloc }) = &r.location
    {
        out.extend_from_slice(b"\nLocation is heap block of size ");
        push_dec(&mut out, *size as u64);
        out.extend_from_slice(b" at 0x");
        push_hex(&mut out, *start as u64, 12);
        match alloc {
            Some((tid, frames)) => {
                out.extend_from_slice(b" allocated by ");
                push_goroutine(&mut out, *tid);
                out.extend_from_slice(b":\n");
                push_frames(&mut out, opts, frames);
            }
            None => out.extend_from_slice(b" (allocation site unknown)\n"),
        }
    }
    out.extend_from_slice(b"==================\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_formatted_as_tsan_prints_them() {
        let mut v = Vec::new();
        push_hex(&mut v, 0xc000096020, 12);
        v.push(b' ');
        push_hex(&mut v, 0xee, 1);
        v.push(b' ');
        push_hex(&mut v, 0, 1);
        v.push(b' ');
        push_dec(&mut v, 1234);
        assert_eq!(v, b"00c000096020 ee 0 1234");
    }

    #[test]
    fn strip_path_prefix_cuts_through_the_first_occurrence() {
        assert_eq!(strip_path(b"/tmp/x/main.go", b"/main."), b"go");
        assert_eq!(strip_path(b"/src/a/b.go", b"/src/"), b"a/b.go");
        assert_eq!(strip_path(b"./a.go", b""), b"a.go");
        assert_eq!(strip_path(b"/a/b.go", b"/zz/"), b"/a/b.go");
    }
}
