//! The pclntab reader on arbitrary bytes: header, every function record, their pc-value
//! tables, names and PC lookup must give values or errors, never panic.
#![no_main]

use gorace_scan::pclntab::{self, Pclntab};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(t) = Pclntab::parse(data, 0x40_1000) else {
        return;
    };
    for i in 0..t.nfunc.min(256) {
        let Ok(f) = t.func(i) else { continue };
        let _ = t.find(f.entry);
        let _ = t.find(f.end.wrapping_sub(1));
        for &off in std::iter::once(&f.pcsp).chain(&f.pcdata) {
            if let Ok(v) = t.pcvalue(off, f.entry, f.end) {
                let _ = pclntab::value_at(&v, f.entry);
            }
        }
        let _ = t.name_at(i as i32);
    }
    let _ = t.find(u64::MAX);
});
