//! The `GORACE` options parser of the race runtime on arbitrary bytes: a value or an
//! error, never a panic; a log path's directory is a prefix of it when it has one.
#![no_main]

use gorace_runtime::flags::{self, LogPath};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(f) = flags::parse(data)
        && let LogPath::File(p) = &f.log_path
        && p.contains(&b'/')
    {
        assert!(p.starts_with(flags::log_dir(p)));
    }
});
