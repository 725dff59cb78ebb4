//! The race JSON-lines reader behind `gorace report` and `gorace test`'s summary, on
//! arbitrary input: every line is a race or an error message, never a panic, and
//! attribution, dedup and the summary accept whatever it parsed.
#![no_main]

#[allow(dead_code)]
#[path = "../../crates/gorace/src/races.rs"]
mod races;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (parsed, errors) = races::parse_all("fuzz", &text, Some(1));
    assert!(parsed.len() + errors.len() <= text.lines().count());
    for r in &parsed {
        let _ = races::attribute(r, None);
        let _ = (r.site(0), r.site(1));
    }
    let unique = races::unique(&parsed);
    assert!(unique.len() <= parsed.len());
    let _ = races::summary(&parsed);
});
