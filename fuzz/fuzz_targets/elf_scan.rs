//! The whole-file scan (ELF container, pclntab and moduledata discovery, instruction
//! decoding, the pcsp rule, inline trees) and PC lookup on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = gorace_scan::scan("fuzz", data) {
        for w in &r.windows {
            if let Some(pc) = w.start.strip_prefix("0x") {
                let _ = gorace_scan::locate(data, u64::from_str_radix(pc, 16).unwrap_or(0));
            }
        }
        let _ = format!("{r:?}");
    }
    let _ = gorace_scan::locate(data, 0x40_1000);
});
