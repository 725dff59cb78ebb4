//! `gorace scan` (work in progress, see issue 3).

pub mod cli {
    use std::ffi::OsString;

    /// Runs `gorace scan ARGS...` and returns the process exit status.
    pub fn run(_args: &[OsString]) -> i32 {
        eprintln!("gorace scan: not implemented yet");
        2
    }
}
