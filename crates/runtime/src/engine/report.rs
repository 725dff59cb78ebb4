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
    /// Calls `frame(func, file, line, offset)` for each logical frame at `pc` (a pc
    /// inside the call or access instruction), innermost inlined frame first.
    fn symbolize(&self, pc: usize, frame: &mut FrameSink<'_>);
    /// Writes a whole report (or the summary line).
    fn write_report(&self, text: &[u8]);
    /// `halt_on_error`: stops the program with `code` (returns only in tests).
    fn halt(&self, code: i32);
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

/// A goroutine listed under the accesses, with its creation stack.
pub struct Thread {
    pub tid: u32,
    pub finished: bool,
    pub stack: Vec<usize>,
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

fn push_stack<H: Host>(out: &mut Vec<u8>, host: &H, opts: &Options, pcs: &[usize]) {
    let mut frames: Vec<(Vec<u8>, Vec<u8>, usize, usize)> = Vec::new();
    for &pc in pcs {
        host.symbolize(pc.wrapping_sub(1), &mut |func, file, line, off| {
            frames.push((
                func.to_vec(),
                strip_path(file, &opts.strip_path_prefix).to_vec(),
                line,
                off,
            ));
        });
    }
    if frames.len() >= 2 {
        frames.pop();
    }
    if frames.is_empty() {
        out.extend_from_slice(b"  [failed to restore the stack]\n");
    }
    for (func, file, line, off) in frames {
        out.extend_from_slice(b"  ");
        out.extend_from_slice(&func);
        out.extend_from_slice(b"()\n      ");
        out.extend_from_slice(&file);
        out.push(b':');
        push_dec(out, line as u64);
        out.extend_from_slice(b" +0x");
        push_hex(out, off as u64, 1);
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

/// The whole text of one report.
pub fn format<H: Host>(
    host: &H,
    opts: &Options,
    cur: &Access,
    prev: &Access,
    threads: &[Thread],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    out.extend_from_slice(b"==================\nWARNING: DATA RACE");
    for (i, a) in [cur, prev].into_iter().enumerate() {
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
        push_stack(&mut out, host, opts, &a.stack);
    }
    for t in threads {
        out.extend_from_slice(b"\nGoroutine ");
        push_dec(&mut out, t.tid as u64);
        out.extend_from_slice(if t.finished {
            b" (finished)"
        } else {
            b" (running)"
        });
        out.extend_from_slice(b" created at:\n");
        push_stack(&mut out, host, opts, &t.stack);
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
