//! Races as JSON lines (`GORACE=json_path=FILE`), written by hand: the runtime is
//! `no_std`. The schema is documented in `docs/race-json.md` (version 1).
//!
//! Strings are escaped per RFC 8259: `"`, `\` and control characters are escaped, valid
//! UTF-8 passes through, and bytes that are not valid UTF-8 become U+FFFD, so every
//! line is valid JSON whatever the symbol table holds.

use super::report::{Creation, Frame, Location, RaceReport, SymAccess, push_dec, push_hex};
use alloc::vec::Vec;

pub const VERSION: u32 = 1;

/// Appends `s` as a JSON string literal.
pub fn push_str(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    for chunk in s.utf8_chunks() {
        for &b in chunk.valid().as_bytes() {
            match b {
                b'"' => out.extend_from_slice(b"\\\""),
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                0..=0x1f | 0x7f => {
                    out.extend_from_slice(b"\\u00");
                    push_hex(out, b as u64 >> 4, 1);
                    push_hex(out, b as u64 & 0xf, 1);
                }
                _ => out.push(b),
            }
        }
        if !chunk.invalid().is_empty() {
            out.extend_from_slice(b"\\ufffd");
        }
    }
    out.push(b'"');
}

fn push_addr(out: &mut Vec<u8>, a: usize) {
    out.extend_from_slice(b"\"0x");
    push_hex(out, a as u64, 12);
    out.push(b'"');
}

fn push_key(out: &mut Vec<u8>, first: &mut bool, key: &str) {
    if !*first {
        out.push(b',');
    }
    *first = false;
    push_str(out, key.as_bytes());
    out.push(b':');
}

fn push_frames(out: &mut Vec<u8>, frames: &[Frame]) {
    out.push(b'[');
    for (i, f) in frames.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let mut first = true;
        out.push(b'{');
        push_key(out, &mut first, "function");
        push_str(out, &f.func);
        push_key(out, &mut first, "file");
        push_str(out, &f.file);
        push_key(out, &mut first, "line");
        push_dec(out, f.line as u64);
        push_key(out, &mut first, "pc");
        push_addr(out, f.pc);
        push_key(out, &mut first, "offset");
        push_dec(out, f.off as u64);
        out.push(b'}');
    }
    out.push(b']');
}

fn push_goroutine(out: &mut Vec<u8>, tid: u32) {
    if tid == u32::MAX {
        out.extend_from_slice(b"null");
    } else {
        push_dec(out, tid as u64);
    }
}

fn push_chain(out: &mut Vec<u8>, chain: &[Creation]) {
    out.push(b'[');
    for (i, c) in chain.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let mut first = true;
        out.push(b'{');
        push_key(out, &mut first, "goroutine");
        push_goroutine(out, c.tid);
        push_key(out, &mut first, "finished");
        out.extend_from_slice(if c.finished { b"true" } else { b"false" });
        push_key(out, &mut first, "stack");
        push_frames(out, &c.frames);
        out.push(b'}');
    }
    out.push(b']');
}

fn push_access(out: &mut Vec<u8>, a: &SymAccess, role: &str) {
    let mut first = true;
    out.push(b'{');
    push_key(out, &mut first, "role");
    push_str(out, role.as_bytes());
    push_key(out, &mut first, "kind");
    push_str(out, if a.write { b"write" } else { b"read" });
    push_key(out, &mut first, "atomic");
    out.extend_from_slice(if a.atomic { b"true" } else { b"false" });
    push_key(out, &mut first, "size");
    push_dec(out, a.size as u64);
    push_key(out, &mut first, "address");
    push_addr(out, a.addr);
    push_key(out, &mut first, "goroutine");
    push_goroutine(out, a.tid);
    push_key(out, &mut first, "stack");
    push_frames(out, &a.frames);
    push_key(out, &mut first, "created");
    push_chain(out, &a.chain);
    out.push(b'}');
}

/// A test function name in a Go symbol: `(package, TestName)` for `pkg/path.TestName`,
/// `pkg.TestName.func1.2`, `pkg_test.BenchmarkX.gowrap1`; None for anything else.
pub fn test_of(func: &[u8]) -> Option<(&[u8], &[u8])> {
    let slash = func.iter().rposition(|&c| c == b'/').map_or(0, |i| i + 1);
    let dot = slash + func[slash..].iter().position(|&c| c == b'.')?;
    let pkg = &func[..dot];
    let rest = &func[dot + 1..];
    let name_end = rest.iter().position(|&c| c == b'.').unwrap_or(rest.len());
    let name = &rest[..name_end];
    for prefix in [&b"Test"[..], b"Benchmark", b"Fuzz", b"Example"] {
        if let Some(tail) = name.strip_prefix(prefix) {
            // testing's rule (isTest): the next rune must not be lower case.
            if tail.first().is_none_or(|c| !c.is_ascii_lowercase())
                && name.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'_')
                && pkg != b"testing"
            {
                return Some((pkg.strip_suffix(b"_test").unwrap_or(pkg), name));
            }
        }
    }
    None
}

/// The test a race belongs to: the first test frame in the current access's stack,
/// then in its goroutine's creation stacks up the tree; then the same for the earlier
/// access.
pub fn test_of_race(r: &RaceReport) -> Option<(&[u8], &[u8])> {
    r.accesses.iter().find_map(|a| {
        a.frames
            .iter()
            .chain(a.chain.iter().flat_map(|c| c.frames.iter()))
            .find_map(|f| test_of(&f.func))
    })
}

fn base_name(file: &[u8]) -> &[u8] {
    file.rsplit(|&c| c == b'/').next().unwrap_or(file)
}

/// `function base-name:line` of an access's innermost frame.
fn site(a: &SymAccess) -> Vec<u8> {
    let mut s = Vec::new();
    match a.frames.first() {
        Some(f) => {
            s.extend_from_slice(&f.func);
            s.push(b' ');
            s.extend_from_slice(base_name(&f.file));
            s.push(b':');
            push_dec(&mut s, f.line as u64);
        }
        None => s.push(b'?'),
    }
    s
}

/// FNV-1a, 64 bits.
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for &b in *p {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// A stable id of the race: a hash of its two source locations (function, file base
/// name, line of each innermost frame), independent of their order and of addresses,
/// goroutine numbers and checkout paths.
pub fn fingerprint(r: &RaceReport) -> u64 {
    let (a, b) = (site(&r.accesses[0]), site(&r.accesses[1]));
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    fnv1a(&[&lo, b"\n", &hi])
}

/// One race as a JSON line (with its newline); `seq` is its number in this process.
pub fn race_line(r: &RaceReport, text: &[u8], seq: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(2048);
    let mut first = true;
    out.push(b'{');
    push_key(&mut out, &mut first, "version");
    push_dec(&mut out, VERSION as u64);
    push_key(&mut out, &mut first, "type");
    push_str(&mut out, b"race");
    push_key(&mut out, &mut first, "seq");
    push_dec(&mut out, seq);
    push_key(&mut out, &mut first, "fingerprint");
    out.push(b'"');
    push_hex(&mut out, fingerprint(r), 16);
    out.push(b'"');
    push_key(&mut out, &mut first, "accesses");
    out.push(b'[');
    push_access(&mut out, &r.accesses[0], "current");
    out.push(b',');
    push_access(&mut out, &r.accesses[1], "previous");
    out.push(b']');
    push_key(&mut out, &mut first, "location");
    match &r.location {
        None => out.extend_from_slice(b"null"),
        Some(Location::Global) => {
            out.extend_from_slice(b"{\"kind\":\"global\",\"address\":");
            push_addr(&mut out, r.accesses[0].addr);
            out.push(b'}');
        }
        Some(Location::Heap { start, size, alloc }) => {
            out.extend_from_slice(b"{\"kind\":\"heap\",\"start\":");
            push_addr(&mut out, *start);
            out.extend_from_slice(b",\"size\":");
            push_dec(&mut out, *size as u64);
            out.extend_from_slice(b",\"allocated_by\":");
            match alloc {
                None => out.extend_from_slice(b"null"),
                Some((tid, frames)) => {
                    out.extend_from_slice(b"{\"goroutine\":");
                    push_goroutine(&mut out, *tid);
                    out.extend_from_slice(b",\"stack\":");
                    push_frames(&mut out, frames);
                    out.push(b'}');
                }
            }
            out.push(b'}');
        }
    }
    push_key(&mut out, &mut first, "test");
    match test_of_race(r) {
        None => out.extend_from_slice(b"null"),
        Some((pkg, name)) => {
            out.extend_from_slice(b"{\"package\":");
            push_str(&mut out, pkg);
            out.extend_from_slice(b",\"name\":");
            push_str(&mut out, name);
            out.push(b'}');
        }
    }
    push_key(&mut out, &mut first, "text");
    push_str(&mut out, text);
    out.extend_from_slice(b"}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: Vec<u8>) -> std::string::String {
        std::string::String::from_utf8(v).unwrap()
    }

    #[test]
    fn strings_are_escaped_and_invalid_utf8_replaced() {
        let mut v = Vec::new();
        push_str(&mut v, b"a\"b\\c\nd\x01\x7f\xff\xc3\xa9</script>");
        assert_eq!(s(v), r#""a\"b\\c\nd\u0001\u007f\ufffdé</script>""#);
    }

    #[test]
    fn test_names_follow_testings_rule() {
        assert_eq!(
            test_of(b"example.com/m/pkg.TestFoo.func1.2"),
            Some((&b"example.com/m/pkg"[..], &b"TestFoo"[..]))
        );
        assert_eq!(
            test_of(b"example.com/m/pkg_test.BenchmarkX"),
            Some((&b"example.com/m/pkg"[..], &b"BenchmarkX"[..]))
        );
        assert_eq!(test_of(b"main.Test"), Some((&b"main"[..], &b"Test"[..])));
        assert_eq!(test_of(b"main.Testify"), None);
        assert_eq!(test_of(b"testing.tRunner"), None);
        assert_eq!(test_of(b"a/b.(*T).TestX"), None);
        assert_eq!(test_of(b"a.b/c.helper"), None);
    }
}
