//! `gorace scan FILE|DIR...`: command line, parallel scanning, text and JSON output.
//! Exit status: 1 when a crash-grade window exists (for CI gates), 2 on usage errors or
//! when no file could be scanned, else 0.

use crate::{Report, Verdict};
use clap::Parser;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Parser)]
#[command(
    name = "gorace scan",
    about = "Find compiler-generated race windows (split stack-pointer updates) in Go binaries",
    long_about = "Reads ELF Go binaries (go1.20+, linux/amd64 and linux/arm64; stripped or not) \
and reports every place where the stack pointer and the pcsp table disagree, with a verdict: \
crash (async preemption + GC stack scan can land there) or observer (profilers, debuggers, \
core dumps only). Exit status 1 when a crash-grade window exists."
)]
struct Args {
    /// Print one JSON object per binary (JSON lines) instead of text.
    #[arg(long)]
    json: bool,
    /// Instead of scanning, print the function and inlined calls at this PC (hex) in
    /// each file: what a traceback would show.
    #[arg(long, value_parser = parse_hex)]
    pc: Option<u64>,
    /// Worker threads for directories (default: all CPUs).
    #[arg(long)]
    jobs: Option<usize>,
    /// Binaries, or directories to search recursively for ELF files.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

fn parse_hex(s: &str) -> Result<u64, String> {
    let h = s.strip_prefix("0x").unwrap_or(s);
    u64::from_str_radix(h, 16).map_err(|e| format!("not a hex address: {e}"))
}

/// `--pc`: locates the address in each named file; exit 2 if any failed.
fn run_locate(a: &Args, pc: u64) -> i32 {
    let mut status = 0;
    for p in &a.paths {
        let name = p.display().to_string();
        let r = std::fs::read(p)
            .map_err(|e| e.to_string())
            .and_then(|d| crate::locate(&d, pc));
        match (r, a.json) {
            (Ok(l), true) => println!(
                "{}",
                serde_json::json!({"path": name, "pc": l.pc, "function": l.function,
                    "entry": l.entry, "inlined": l.inlined})
            ),
            (Ok(l), false) => {
                let inl = if l.inlined.is_empty() {
                    String::new()
                } else {
                    format!(", inlined: {}", l.inlined.join(" <- "))
                };
                println!(
                    "{name}: {}: in {} (entry {}){inl}",
                    l.pc, l.function, l.entry
                );
            }
            (Err(e), _) => {
                eprintln!("{name}: error: {e}");
                status = 2;
            }
        }
    }
    status
}

enum Outcome {
    Scanned(Report),
    Failed(String, String),
}

/// A file to scan and whether it was named on the command line.
type Candidate = (PathBuf, bool);
/// A path and what went wrong with it.
type Failure = (String, String);

fn collect(paths: &[PathBuf]) -> (Vec<Candidate>, Vec<Failure>) {
    let (mut files, mut errors) = (Vec::new(), Vec::new());
    let mut stack: Vec<(PathBuf, bool)> = paths.iter().map(|p| (p.clone(), true)).collect();
    while let Some((p, explicit)) = stack.pop() {
        match std::fs::metadata(&p) {
            Ok(m) if m.is_dir() => match std::fs::read_dir(&p) {
                Ok(rd) => stack.extend(rd.flatten().map(|e| (e.path(), false))),
                Err(e) => errors.push((p.display().to_string(), e.to_string())),
            },
            Ok(m) if m.is_file() => files.push((p, explicit)),
            Ok(_) => {}
            Err(e) if explicit => errors.push((p.display().to_string(), e.to_string())),
            Err(_) => {}
        }
    }
    files.sort();
    (files, errors)
}

fn scan_file(path: &Path, explicit: bool) -> Option<Outcome> {
    let name = path.display().to_string();
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) => return Some(Outcome::Failed(name, e.to_string())),
    };
    // Inside directories only ELF files are candidates; other files are skipped quietly.
    if !explicit && !data.starts_with(b"\x7fELF") {
        return None;
    }
    Some(match crate::scan(&name, &data) {
        Ok(r) => Outcome::Scanned(r),
        Err(e) if !explicit && e.starts_with("no Go pclntab") => return None,
        Err(e) => Outcome::Failed(name, e),
    })
}

/// Runs `gorace scan ARGS...` and returns the process exit status.
pub fn run(args: &[OsString]) -> i32 {
    let argv = std::iter::once(OsString::from("gorace scan")).chain(args.iter().cloned());
    let a = match Args::try_parse_from(argv) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    if let Some(pc) = a.pc {
        return run_locate(&a, pc);
    }
    let (files, mut errors) = collect(&a.paths);
    let jobs = a
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, Outcome)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..jobs.min(files.len().max(1)) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((p, explicit)) = files.get(i) else {
                        break;
                    };
                    if let Some(o) = scan_file(p, *explicit) {
                        results.lock().unwrap().push((i, o));
                    }
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(i, _)| *i);
    let (mut crash, mut scanned) = (false, 0);
    for (_, o) in results {
        match o {
            Outcome::Scanned(r) => {
                scanned += 1;
                crash |= r.crashes() > 0;
                if a.json {
                    println!("{}", serde_json::to_string(&r).unwrap());
                } else {
                    print_text(&r);
                }
            }
            Outcome::Failed(p, e) => errors.push((p, e)),
        }
    }
    for (p, e) in &errors {
        if a.json {
            println!("{}", serde_json::json!({"path": p, "error": e}));
        } else {
            eprintln!("{p}: error: {e}");
        }
    }
    if crash {
        1
    } else if scanned == 0 {
        2
    } else {
        0
    }
}

fn print_text(r: &Report) {
    let observers = r.windows.len() - r.crashes();
    println!(
        "{}: {} {}, text base {} ({}), {} functions, {} window(s): {} crash, {} observer; {} SP write(s) from unknown values (stack switches)",
        r.path,
        r.arch,
        r.go_version.as_deref().unwrap_or("unknown Go version"),
        r.text_base,
        r.text_base_source,
        r.functions,
        r.windows.len(),
        r.crashes(),
        observers,
        r.unknown_sp_writes
    );
    for w in &r.windows {
        let grade = if w.verdict == Verdict::Crash {
            "CRASH"
        } else {
            "observer"
        };
        let inl = w
            .inlined
            .as_ref()
            .map(|n| format!(" (inlined: {n})"))
            .unwrap_or_default();
        println!(
            "  {grade} {}{inl} [{}, {}) unsafe-point {} flags {:#x}: {}",
            w.function, w.start, w.end, w.unsafe_point, w.flags, w.reason
        );
        for i in &w.instructions {
            println!(
                "    {}  {:<12} {:<32} pcsp {:#x}, real SP offset {:#x}",
                i.addr, i.bytes, i.text, i.pcsp, i.real_sp_offset
            );
        }
    }
}
