//! `GORACE` option parsing.
//!
//! Syntax as ThreadSanitizer's flag parser: `name=value` pairs separated by spaces,
//! commas, colons, tabs, CR or LF; a value may be quoted with `'` or `"`. Unlike TSan,
//! which prints an error and exits 0 without running the program, a malformed value of
//! a known option is an error the caller turns into a non-zero exit, and unknown names
//! are collected so the caller can warn about them.

use crate::engine::Options;
use alloc::vec::Vec;

/// Where reports go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogPath {
    Stderr,
    Stdout,
    /// Reports go to `<path>.<pid>`.
    File(Vec<u8>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flags {
    pub opts: Options,
    pub log_path: LogPath,
    /// `json_path`: races also go to `<path>.<pid>` as JSON lines.
    pub json_path: Option<Vec<u8>>,
    /// Names gorace does not know.
    pub unknown: Vec<Vec<u8>>,
    /// ThreadSanitizer options gorace accepts but that change nothing here.
    pub without_effect: Vec<Vec<u8>>,
}

/// TSan/sanitizer options that Go users set and that have no meaning in gorace.
const WITHOUT_EFFECT: &[&[u8]] = &[
    b"verbosity",
    b"report_atomic_races",
    b"flush_memory_ms",
    b"memory_limit_mb",
    b"log_exe_name",
    b"log_suffix",
    b"log_to_syslog",
    b"force_seq_cst_atomics",
    b"second_deadlock_stack",
    b"detect_deadlocks",
    b"report_signal_unsafe",
    b"report_thread_leaks",
    b"print_full_thread_history",
    b"io_sync",
    b"die_after_fork",
    b"suppressions",
    b"help",
];

fn is_sep(c: u8) -> bool {
    matches!(c, b' ' | b',' | b':' | b'\t' | b'\r' | b'\n')
}

fn parse_bool(v: &[u8]) -> Option<bool> {
    match v {
        b"1" | b"true" | b"yes" => Some(true),
        b"0" | b"false" | b"no" => Some(false),
        _ => None,
    }
}

fn parse_int(v: &[u8]) -> Option<i64> {
    let (neg, digits) = match v.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, v),
    };
    if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = digits.iter().fold(0i64, |n, &d| n * 10 + (d - b'0') as i64);
    Some(if neg { -n } else { n })
}

fn error(parts: &[&[u8]]) -> Vec<u8> {
    let mut msg = b"gorace: GORACE: ".to_vec();
    for p in parts {
        msg.extend_from_slice(p);
    }
    msg.push(b'\n');
    msg
}

/// Parses a `GORACE` value; the error is a complete message line.
pub fn parse(s: &[u8]) -> Result<Flags, Vec<u8>> {
    let mut f = Flags {
        opts: Options::default(),
        log_path: LogPath::Stderr,
        json_path: None,
        unknown: Vec::new(),
        without_effect: Vec::new(),
    };
    let mut i = 0;
    while i < s.len() {
        if is_sep(s[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < s.len() && s[i] != b'=' && !is_sep(s[i]) {
            i += 1;
        }
        let name = &s[start..i];
        if i >= s.len() || s[i] != b'=' || name.is_empty() {
            return Err(error(&[b"expected name=value, got '", name, b"'"]));
        }
        i += 1;
        let value = if i < s.len() && (s[i] == b'\'' || s[i] == b'"') {
            let q = s[i];
            i += 1;
            let vs = i;
            while i < s.len() && s[i] != q {
                i += 1;
            }
            if i >= s.len() {
                return Err(error(&[b"unterminated quote in the value of ", name]));
            }
            i += 1;
            &s[vs..i - 1]
        } else {
            let vs = i;
            while i < s.len() && !is_sep(s[i]) {
                i += 1;
            }
            &s[vs..i]
        };
        apply(&mut f, name, value)?;
    }
    Ok(f)
}

fn apply(f: &mut Flags, name: &[u8], value: &[u8]) -> Result<(), Vec<u8>> {
    let want_bool = || {
        error(&[
            b"invalid value '",
            value,
            b"' for ",
            name,
            b" (want 0 or 1)",
        ])
    };
    let want_int = |what: &[u8]| {
        error(&[
            b"invalid value '",
            value,
            b"' for ",
            name,
            b" (want ",
            what,
            b")",
        ])
    };
    let o = &mut f.opts;
    match name {
        b"exitcode" => {
            o.exitcode = parse_int(value)
                .filter(|n| (0..=255).contains(n))
                .ok_or_else(|| want_int(b"an integer from 0 to 255"))?
                as i32
        }
        b"atexit_sleep_ms" => {
            o.atexit_sleep_ms = parse_int(value)
                .filter(|&n| n >= 0)
                .ok_or_else(|| want_int(b"a non-negative integer"))?
                as u64
        }
        b"history_size" => {
            o.history_size = parse_int(value)
                .filter(|&n| n >= 0)
                .ok_or_else(|| want_int(b"a non-negative integer"))?
                as u64
        }
        b"halt_on_error" => o.halt_on_error = parse_bool(value).ok_or_else(want_bool)?,
        b"suppress_equal_stacks" => {
            o.suppress_equal_stacks = parse_bool(value).ok_or_else(want_bool)?
        }
        b"suppress_equal_addresses" => {
            o.suppress_equal_addresses = parse_bool(value).ok_or_else(want_bool)?
        }
        b"report_bugs" => o.report_bugs = parse_bool(value).ok_or_else(want_bool)?,
        b"gorace_stats" => o.stats = parse_bool(value).ok_or_else(want_bool)?,
        b"alloc_sites" => o.alloc_sites = parse_bool(value).ok_or_else(want_bool)?,
        b"json_path" => {
            if value.is_empty() {
                return Err(error(&[b"empty value for json_path"]));
            }
            f.json_path = Some(value.to_vec());
        }
        b"strip_path_prefix" => o.strip_path_prefix = value.to_vec(),
        b"log_path" => {
            f.log_path = match value {
                b"" => return Err(error(&[b"empty value for log_path"])),
                b"stderr" => LogPath::Stderr,
                b"stdout" => LogPath::Stdout,
                path => LogPath::File(path.to_vec()),
            }
        }
        _ if WITHOUT_EFFECT.contains(&name) => f.without_effect.push(name.to_vec()),
        _ => f.unknown.push(name.to_vec()),
    }
    Ok(())
}

/// The directory part of a log path (`.` when there is none).
pub fn log_dir(path: &[u8]) -> &[u8] {
    match path.iter().rposition(|&c| c == b'/') {
        Some(0) => b"/",
        Some(i) => &path[..i],
        None => b".",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_go_mode_tsan_defaults() {
        let f = parse(b"").unwrap();
        assert_eq!(f.opts, Options::default());
        assert_eq!((f.opts.exitcode, f.opts.atexit_sleep_ms), (66, 1000));
        assert!(f.opts.suppress_equal_stacks && !f.opts.suppress_equal_addresses);
        assert_eq!(f.log_path, LogPath::Stderr);
    }

    #[test]
    fn all_separators_and_quotes() {
        let f = parse(b"exitcode=13,halt_on_error=1:atexit_sleep_ms=0\tstrip_path_prefix='/a b/'\nlog_path=\"/tmp/x\"\r suppress_equal_stacks=false")
            .unwrap();
        assert_eq!(f.opts.exitcode, 13);
        assert!(f.opts.halt_on_error && !f.opts.suppress_equal_stacks);
        assert_eq!(f.opts.atexit_sleep_ms, 0);
        assert_eq!(f.opts.strip_path_prefix, b"/a b/");
        assert_eq!(f.log_path, LogPath::File(b"/tmp/x".to_vec()));
        let f = parse(b"json_path=/tmp/r alloc_sites=1").unwrap();
        assert_eq!(f.json_path.as_deref(), Some(&b"/tmp/r"[..]));
        assert!(f.opts.alloc_sites);
    }

    #[test]
    fn malformed_known_values_name_the_option() {
        for bad in [
            &b"exitcode=abc"[..],
            b"exitcode=300",
            b"halt_on_error=maybe",
            b"atexit_sleep_ms=-1",
            b"history_size=x",
            b"log_path=",
            b"json_path=",
            b"alloc_sites=2",
            b"exitcode",
            b"strip_path_prefix='open",
        ] {
            let err = parse(bad).unwrap_err();
            let name = bad.split(|&c| c == b'=').next().unwrap();
            assert!(
                err.windows(name.len()).any(|w| w == name),
                "{:?}",
                core::str::from_utf8(&err)
            );
        }
    }

    #[test]
    fn an_empty_option_name_is_malformed() {
        let err = parse(b"=1").unwrap_err();
        assert!(err.windows(10).any(|w| w == b"name=value"), "{err:?}");
    }

    #[test]
    fn unknown_and_ineffective_names_are_collected() {
        let f = parse(b"frobnicate=1 verbosity=2 exitcode=1").unwrap();
        assert_eq!(f.unknown, [b"frobnicate".to_vec()]);
        assert_eq!(f.without_effect, [b"verbosity".to_vec()]);
        assert_eq!(f.opts.exitcode, 1);
    }

    #[test]
    fn log_dir_of_paths() {
        assert_eq!(log_dir(b"/tmp/x"), b"/tmp");
        assert_eq!(log_dir(b"/x"), b"/");
        assert_eq!(log_dir(b"x"), b".");
    }
}
