//! Builds the race runtime object (and its floor variant) and embeds both in `gorace`.
//!
//! The object is made by `crates/runtime/build-syso.sh` (a nested cargo build of the
//! `no_std` runtime with its own target directory, then `ld -r`/`objcopy`), so the one
//! installed `gorace` binary carries exactly the runtime built from this source tree.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let runtime = manifest.join("../runtime");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    for p in ["src", "Cargo.toml", "build-syso.sh"] {
        println!("cargo:rerun-if-changed={}", runtime.join(p).display());
    }
    for (name, extra) in [
        ("race_linux.syso", None),
        ("race_linux_floor.syso", Some("--floor")),
    ] {
        let target = out.join(if extra.is_some() {
            "rt-target-floor"
        } else {
            "rt-target"
        });
        let mut cmd = Command::new("bash");
        cmd.arg(runtime.join("build-syso.sh"))
            .arg(out.join(name))
            .arg("--target-dir")
            .arg(&target);
        if let Some(flag) = extra {
            cmd.arg(flag);
        }
        let status = cmd
            .status()
            .expect("gorace build: cannot run crates/runtime/build-syso.sh");
        assert!(
            status.success(),
            "gorace build: building the race runtime object failed"
        );
    }
    // The exported entry points, read back from the object: the single source of truth
    // for the ABI check against a Go installation's runtime/race.go.
    let readelf = Command::new("readelf")
        .args(["-sW"])
        .arg(out.join("race_linux.syso"))
        .output()
        .expect("gorace build: readelf (binutils) is needed");
    let mut exports: Vec<String> = String::from_utf8_lossy(&readelf.stdout)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 8 && f[4] == "GLOBAL" && f[6] != "UND" && f[7].starts_with("__tsan_"))
                .then(|| f[7].to_string())
        })
        .collect();
    exports.sort();
    exports.dedup();
    std::fs::write(out.join("exports.txt"), exports.join("\n")).unwrap();
}
