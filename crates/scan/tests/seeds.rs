//! `gorace scan` on the small real-structured ELF files kept as fuzz seeds
//! (`fuzz/corpus/elf_scan`, cut from go1.24.3/go1.27.3 builds by `fuzz/make_seeds.py`):
//! the #73259 window without any Go toolchain, and garbage that once panicked.

use gorace_scan::{Verdict, locate, scan};
use std::path::PathBuf;

fn seed(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus/elf_scan")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn go1_24_3_arm64_split_epilogue_from_a_cut_down_binary() {
    let r = scan("seed", &seed("go1.24.3-arm64-bigframe")).unwrap();
    assert_eq!(
        (r.arch.as_str(), r.go_version.as_deref()),
        ("arm64", Some("go1.24.3"))
    );
    assert_eq!(r.text_base_source, "pclntab header");
    assert_eq!(r.windows.len(), 1, "{:#?}", r.windows);
    let w = &r.windows[0];
    assert_eq!(
        (w.function.as_str(), w.verdict),
        ("main.bigFrame", Verdict::Crash)
    );
    let bytes: Vec<&str> = w.instructions.iter().map(|i| i.bytes.as_str()).collect();
    assert_eq!(bytes, ["ff 83 06 91", "ff 47 40 91"]);
    assert_eq!(w.instructions[1].text, "add sp, sp, #0x11, lsl #12");
    assert_eq!(
        (w.instructions[1].pcsp, w.instructions[1].real_sp_offset),
        (0x111a0, 0x11000)
    );
    let start = u64::from_str_radix(w.start.trim_start_matches("0x"), 16).unwrap();
    let at = locate(&seed("go1.24.3-arm64-bigframe"), start).unwrap();
    assert_eq!(at.function, "main.bigFrame");
    assert!(at.inlined.is_empty());
}

#[test]
fn go1_27_3_amd64_main_has_no_window() {
    let r = scan("seed", &seed("go1.27.3-amd64-main")).unwrap();
    assert_eq!((r.arch.as_str(), r.functions), ("amd64", 3));
    assert!(r.windows.is_empty(), "{:#?}", r.windows);
}

#[test]
fn fuzz_found_overflow_is_an_answer_not_a_panic() {
    let d = seed("regress-moduledata-overflow");
    let _ = scan("seed", &d);
    let _ = locate(&d, 0x40_1000);
}
