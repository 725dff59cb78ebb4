//! The process's one engine and its Go-facing host.
//!
//! `__tsan_init` is Go's first race call, made once on the main thread before any other
//! (go-race-abi.md §1.4), so the engine is built there and published with a release
//! store; every later entry point reads it. The host symbolises through Go's callback
//! (command 1, `SymbolizeCodeContext`; command 0, GetProc, is never used: it crashes on
//! an M without a P) and writes reports where `GORACE=log_path` says.

use crate::engine::{Engine, Host, Options};
use crate::flags::{self, LogPath};
use crate::lock::SpinLock;
use crate::sys;
use alloc::vec::Vec;
use core::cell::UnsafeCell;
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Go's `racecallbackthunk(cmd, ctx)`.
pub type Callback = unsafe extern "C" fn(cmd: usize, ctx: *mut usize);

const CMD_SYMBOLIZE_CODE: usize = 1;
const CMD_SYMBOLIZE_DATA: usize = 2;

/// `GORACE=json_path`: where JSON lines go (`<path>.<pid>`), opened at the first race.
struct JsonOut {
    path: Vec<u8>,
    /// The open file, -1 before the first line, -2 once opening failed (stderr is used).
    fd: i32,
}

/// The program's data+bss, from the first `__tsan_map_shadow` (go-race-abi.md §1.4).
static DATA_START: AtomicUsize = AtomicUsize::new(0);
static DATA_END: AtomicUsize = AtomicUsize::new(0);

/// Notes a shadow mapping; the first one Go makes is for data+bss.
pub fn note_map_shadow(addr: usize, size: usize) {
    if DATA_END.load(Ordering::Relaxed) == 0 {
        DATA_START.store(addr, Ordering::Relaxed);
        DATA_END.store(addr + size, Ordering::Relaxed);
    } else {
        crate::alloc_site::note_heap(addr, size);
    }
}

struct Output {
    log_path: LogPath,
    /// The open report file for `LogPath::File`, or -1 until the first report.
    fd: i32,
}

pub struct GoHost {
    callback: Option<Callback>,
    out: SpinLock<Output>,
    json: Option<SpinLock<JsonOut>>,
}

/// Opens `<path>.<pid>` for appending (GORACE's `log_path` and `json_path`); when that
/// fails, says so on stderr (naming `option`, and `instead`: what happens now) and gives
/// None.
fn open_per_process(path: &[u8], option: &[u8], instead: &[u8]) -> Option<i32> {
    let mut full = path.to_vec();
    full.push(b'.');
    crate::engine::report::push_dec(&mut full, sys::getpid() as u64);
    full.push(0);
    let r = sys::open_for_write(&full, sys::O_CREAT | sys::O_TRUNC | sys::O_APPEND);
    if r >= 0 {
        return Some(r as i32);
    }
    let mut msg = b"gorace: cannot open ".to_vec();
    for part in [
        option,
        b" file ",
        &full[..full.len() - 1],
        b"; ",
        instead,
        b"\n",
    ] {
        msg.extend_from_slice(part);
    }
    sys::write_all(2, &msg);
    None
}

impl GoHost {
    fn fd(&self, out: &mut Output) -> i32 {
        match &out.log_path {
            LogPath::Stderr => 2,
            LogPath::Stdout => 1,
            LogPath::File(path) => {
                if out.fd < 0 {
                    // Nothing is lost: on failure, say why and report to stderr instead.
                    let Some(fd) = open_per_process(path, b"log_path", b"reporting to stderr")
                    else {
                        out.log_path = LogPath::Stderr;
                        return 2;
                    };
                    out.fd = fd;
                }
                out.fd
            }
        }
    }
}

impl Host for GoHost {
    const FIXED_SHADOW_OFFSET: Option<usize> = Some(crate::engine::shadow::SHADOW_OFFSET);

    fn symbolize(&self, pc: usize, frame: &mut crate::engine::report::FrameSink<'_>) {
        let Some(cb) = self.callback else {
            return;
        };
        // TSan's loop (tsan_go.cpp SymbolizeCode): Go fills the innermost logical frame
        // and moves `pc` to the next outer one while frames are inlined.
        let mut addr = pc;
        for _ in 0..64 {
            // pc, func, file, line, off, res
            let mut ctx = [addr, 0usize, 0, 0, 0, 0];
            // SAFETY: `cb` is Go's racecallbackthunk, given to __tsan_init; command 1
            // takes a 48-byte SymbolizeCodeContext, which `ctx` is.
            unsafe { cb(CMD_SYMBOLIZE_CODE, ctx.as_mut_ptr()) };
            if ctx[5] == 0 {
                break;
            }
            // SAFETY: Go stores NUL-terminated strings from its read-only pclntab (or
            // static strings) in func and file; they live for the whole program.
            let (func, file) = unsafe {
                (
                    if ctx[1] == 0 {
                        &b"??"[..]
                    } else {
                        sys::cstr_bytes(ctx[1] as *const u8)
                    },
                    if ctx[2] == 0 {
                        &b"-"[..]
                    } else {
                        sys::cstr_bytes(ctx[2] as *const u8)
                    },
                )
            };
            frame(func, file, ctx[3], ctx[4]);
            if ctx[0] == addr {
                break;
            }
            addr = ctx[0];
        }
    }

    fn write_report(&self, text: &[u8]) {
        let mut out = self.out.lock();
        let fd = self.fd(&mut out);
        if !sys::write_all(fd, text) && fd != 2 {
            sys::write_all(
                2,
                b"gorace: writing to log_path failed; reporting to stderr\n",
            );
            sys::write_all(2, text);
        }
    }

    fn halt(&self, code: i32) {
        sys::exit(code)
    }

    fn heap_block(&self, addr: usize) -> Option<(usize, usize)> {
        let cb = self.callback?;
        // addr, heap, start, size, name, file, line, res
        let mut ctx = [addr, 0usize, 0, 0, 0, 0, 0, 0];
        // SAFETY: `cb` is Go's racecallbackthunk; command 2 takes a 64-byte
        // SymbolizeDataContext, which `ctx` is (race.go raceSymbolizeData).
        unsafe { cb(CMD_SYMBOLIZE_DATA, ctx.as_mut_ptr()) };
        (ctx[7] != 0 && ctx[1] != 0 && ctx[3] != 0 && ctx[2] <= addr).then_some((ctx[2], ctx[3]))
    }

    fn alloc_site(&self, start: usize) -> Option<(u32, u32)> {
        crate::alloc_site::lookup(start)
    }

    fn is_global(&self, addr: usize) -> bool {
        (DATA_START.load(Ordering::Relaxed)..DATA_END.load(Ordering::Relaxed)).contains(&addr)
    }

    fn json_enabled(&self) -> bool {
        self.json.is_some()
    }

    fn write_json(&self, line: &[u8]) {
        let Some(json) = &self.json else {
            return;
        };
        let mut out = json.lock();
        if out.fd == -1 {
            out.fd = open_per_process(&out.path, b"json_path", b"writing JSON lines to stderr")
                .unwrap_or(-2);
        }
        // One write per line with O_APPEND: lines never interleave.
        if out.fd < 0 || !sys::write_all(out.fd, line) {
            sys::write_all(2, line);
        }
    }
}

struct Global {
    engine: UnsafeCell<MaybeUninit<Engine<GoHost>>>,
    ready: AtomicBool,
}

// SAFETY: the engine is written once in `init`, before `ready` is set with release
// ordering and before Go makes any other race call; afterwards it is only read (its
// interior mutability is internally synchronised).
unsafe impl Sync for Global {}

static GLOBAL: Global = Global {
    engine: UnsafeCell::new(MaybeUninit::uninit()),
    ready: AtomicBool::new(false),
};

/// The engine. Only valid after `init` (Go calls nothing before `__tsan_init`).
#[inline(always)]
pub fn engine() -> &'static Engine<GoHost> {
    debug_assert!(GLOBAL.ready.load(Ordering::Relaxed));
    // SAFETY: see `Global`: initialised by `init` before any caller can get here.
    unsafe { (*GLOBAL.engine.get()).assume_init_ref() }
}

fn fail(msg: &[u8]) -> ! {
    sys::write_all(2, msg);
    sys::exit(2)
}

/// Reads `GORACE`, checks it, and builds the engine. Exits the process with a clear
/// message (status 2) when an option is malformed: the program must not run with
/// options other than those the user asked for.
pub fn init(callback: Option<Callback>) -> &'static Engine<GoHost> {
    if GLOBAL.ready.load(Ordering::Acquire) {
        return engine();
    }
    let env = sys::getenv(b"GORACE\0").unwrap_or(b"");
    let parsed = match flags::parse(env) {
        Ok(f) => f,
        Err(msg) => fail(&msg),
    };
    for (names, what) in [
        (&parsed.unknown, &b"unknown option"[..]),
        (&parsed.without_effect, b"option without effect in gorace"),
    ] {
        if names.is_empty() {
            continue;
        }
        let mut msg = b"gorace: GORACE: ignoring ".to_vec();
        msg.extend_from_slice(what);
        msg.extend_from_slice(if names.len() > 1 { b"s: " } else { b": " });
        for (i, n) in names.iter().enumerate() {
            if i > 0 {
                msg.extend_from_slice(b", ");
            }
            msg.extend_from_slice(n);
        }
        msg.push(b'\n');
        sys::write_all(2, &msg);
    }
    let log_file = match &parsed.log_path {
        LogPath::File(path) => Some(path),
        _ => None,
    };
    for (name, path) in [
        (&b"log_path"[..], log_file),
        (b"json_path", parsed.json_path.as_ref()),
    ] {
        let Some(path) = path else { continue };
        let mut dir = flags::log_dir(path).to_vec();
        dir.push(0);
        if sys::dir_writable(&dir).is_err() {
            let mut msg = b"gorace: GORACE: ".to_vec();
            msg.extend_from_slice(name);
            msg.push(b'=');
            msg.extend_from_slice(path);
            msg.extend_from_slice(b": directory ");
            msg.extend_from_slice(&dir[..dir.len() - 1]);
            msg.extend_from_slice(b" does not exist or is not writable\n");
            fail(&msg);
        }
    }
    crate::alloc_site::enable(parsed.opts.alloc_sites || parsed.json_path.is_some());
    let opts: Options = parsed.opts;
    let host = GoHost {
        callback,
        out: SpinLock::new(Output {
            log_path: parsed.log_path,
            fd: -1,
        }),
        json: parsed
            .json_path
            .map(|path| SpinLock::new(JsonOut { path, fd: -1 })),
    };
    let built = Engine::new(
        host,
        opts,
        crate::engine::shadow::SHADOW_OFFSET,
        crate::engine::clock::MAX_TIME,
    );
    // SAFETY: single-threaded: __tsan_init is Go's first race call (see `Global`).
    unsafe { (*GLOBAL.engine.get()).write(built) };
    GLOBAL.ready.store(true, Ordering::Release);
    engine()
}

/// `__tsan_fini`: waits `atexit_sleep_ms` for racing goroutines, prints the summary,
/// exits with `exitcode` if races were reported.
pub fn fini() -> ! {
    let e = engine();
    if e.opts.atexit_sleep_ms > 0 {
        sys::sleep_ms(e.opts.atexit_sleep_ms);
    }
    let status = e.finish_status();
    if e.opts.stats {
        let mut line = b"gorace stats:".to_vec();
        for (name, v) in e.stats() {
            line.push(b' ');
            line.extend_from_slice(name);
            line.push(b'=');
            crate::engine::report::push_dec(&mut line, v);
        }
        // The runtime's own heap: blocks in use / KB mapped, by block size.
        line.extend_from_slice(b" heap:");
        for (size, live, mapped) in crate::heap_usage() {
            if mapped != 0 {
                line.push(b' ');
                crate::engine::report::push_dec(&mut line, size as u64);
                line.extend_from_slice(b"B=");
                crate::engine::report::push_dec(&mut line, live as u64);
                line.push(b'/');
                crate::engine::report::push_dec(&mut line, (mapped >> 10) as u64);
                line.push(b'K');
            }
        }
        line.extend_from_slice(b" large=");
        crate::engine::report::push_dec(&mut line, (crate::alloc_mmap::large_bytes() >> 10) as u64);
        line.extend_from_slice(b"K\n");
        sys::write_all(2, &line);
    }
    sys::exit(status)
}

/// A failure the runtime cannot continue after (e.g. no address space for shadow).
pub fn fatal(what: &[u8], addr: usize, size: usize) -> ! {
    let mut msg = b"gorace: fatal: ".to_vec();
    msg.extend_from_slice(what);
    msg.extend_from_slice(b" for 0x");
    crate::engine::report::push_hex(&mut msg, addr as u64, 1);
    msg.extend_from_slice(b"+0x");
    crate::engine::report::push_hex(&mut msg, size as u64, 1);
    msg.push(b'\n');
    sys::write_all(2, &msg);
    sys::exit(70)
}
