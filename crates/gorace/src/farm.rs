//! The private GOROOT ("symlink farm") and the dedicated build cache.
//!
//! `go build -race` links `$GOROOT/src/runtime/race/internal/amd64v{1,3}/race_linux.syso`.
//! gorace makes a GOROOT of symlinks to the user's, with real directories only along
//! those two paths and its own object in them, and a GOCACHE of its own: the go command
//! caches std archives by syso content, but `-overlay` builds can poison a shared cache
//! (integration.md), and the user's GOROOT and cache must never be written. Both live
//! under `<cache>/gorace/<go version>-<runtime hash>[-floor]/`, so a new Go or a new
//! runtime gets a fresh pair, and a farm is published with an atomic rename, so
//! concurrent gorace runs are safe.

use crate::runtime_object::{self, Variant};
use crate::toolchain::Toolchain;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

pub struct Setup {
    pub goroot: PathBuf,
    pub gocache: PathBuf,
}

/// `$XDG_CACHE_HOME/gorace`, else `~/.cache/gorace`.
pub fn cache_root() -> Result<PathBuf, String> {
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|x| !x.is_empty()) {
        return Ok(PathBuf::from(x).join("gorace"));
    }
    let home = std::env::var_os("HOME").ok_or("gorace: neither XDG_CACHE_HOME nor HOME is set")?;
    Ok(PathBuf::from(home).join(".cache/gorace"))
}

/// The directories along which the farm has real directories, and the child each keeps.
const SPINE: &[(&str, &[&str])] = &[
    ("", &["src"]),
    ("src", &["runtime"]),
    ("src/runtime", &["race"]),
    ("src/runtime/race", &["internal"]),
    ("src/runtime/race/internal", &["amd64v1", "amd64v3"]),
];
const SLOTS: &[&str] = &[
    "src/runtime/race/internal/amd64v1",
    "src/runtime/race/internal/amd64v3",
];

fn io_err(what: &str, path: &Path, e: std::io::Error) -> String {
    format!("gorace: {what} {}: {e}", path.display())
}

/// Builds the farm for `real_goroot` with `object` in both syso slots, at `dest`.
pub fn build_farm(real_goroot: &Path, object: &[u8], dest: &Path) -> Result<(), String> {
    for (rel, keep) in SPINE.iter().chain(
        SLOTS
            .iter()
            .map(|s| (*s, &[][..]))
            .collect::<Vec<_>>()
            .iter(),
    ) {
        let (src_dir, dst_dir) = (real_goroot.join(rel), dest.join(rel));
        std::fs::create_dir_all(&dst_dir).map_err(|e| io_err("cannot create", &dst_dir, e))?;
        let entries =
            std::fs::read_dir(&src_dir).map_err(|e| io_err("cannot read", &src_dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| io_err("cannot read", &src_dir, e))?;
            let name = entry.file_name();
            if keep.iter().any(|k| name == *k) || (SLOTS.contains(rel) && name == "race_linux.syso")
            {
                continue;
            }
            let link = dst_dir.join(&name);
            std::os::unix::fs::symlink(entry.path(), &link)
                .map_err(|e| io_err("cannot create", &link, e))?;
        }
    }
    for slot in SLOTS {
        let obj = dest.join(slot).join("race_linux.syso");
        std::fs::write(&obj, object).map_err(|e| io_err("cannot write", &obj, e))?;
    }
    Ok(())
}

/// The private GOROOT and GOCACHE for this toolchain and runtime, made if needed.
pub fn prepare(tc: &Toolchain, variant: Variant, root: &Path) -> Result<Setup, String> {
    let suffix = if variant == Variant::Floor {
        "-floor"
    } else {
        ""
    };
    let base = root.join(format!(
        "{}-{}{suffix}",
        tc.version,
        runtime_object::short_hash(variant)
    ));
    let goroot = base.join("goroot");
    let gocache = base.join("gocache");
    std::fs::create_dir_all(&gocache).map_err(|e| {
        format!(
            "gorace: cannot create its cache directory {}: {e} (set XDG_CACHE_HOME to a writable directory)",
            gocache.display()
        )
    })?;
    let object = goroot.join(SLOTS[0]).join("race_linux.syso");
    let real_go = tc.goroot.join("bin/go");
    if object.is_file() && goroot.join("bin/go").exists() {
        return Ok(Setup { goroot, gocache });
    }
    if !real_go.exists() {
        return Err(format!("gorace: {} has no bin/go", tc.goroot.display()));
    }
    let tmp = base.join(format!("goroot.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    build_farm(&tc.goroot, runtime_object::bytes(variant), &tmp)?;
    match std::fs::rename(&tmp, &goroot) {
        Ok(()) => {}
        // Another gorace published the same farm first: use theirs.
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::AlreadyExists | ErrorKind::DirectoryNotEmpty
            ) =>
        {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(io_err("cannot create", &goroot, e));
        }
    }
    Ok(Setup { goroot, gocache })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn farm_links_everything_but_the_syso_slots() {
        let real = tempfile::tempdir().unwrap();
        let r = real.path();
        for d in [
            "bin",
            "pkg",
            "src/fmt",
            "src/runtime/race/internal/amd64v1",
            "src/runtime/race/internal/amd64v3",
            "src/runtime/race/internal/other",
        ] {
            std::fs::create_dir_all(r.join(d)).unwrap();
        }
        for f in ["bin/go", "src/runtime/proc.go", "src/runtime/race/race.go"] {
            std::fs::write(r.join(f), "x").unwrap();
        }
        for v in ["amd64v1", "amd64v3"] {
            std::fs::write(
                r.join(format!("src/runtime/race/internal/{v}/doc.go")),
                "doc",
            )
            .unwrap();
            std::fs::write(
                r.join(format!("src/runtime/race/internal/{v}/race_linux.syso")),
                "TSAN",
            )
            .unwrap();
        }
        let out = tempfile::tempdir().unwrap();
        let f = out.path().join("farm");
        build_farm(r, b"OURS", &f).unwrap();
        for link in [
            "bin",
            "pkg",
            "src/fmt",
            "src/runtime/proc.go",
            "src/runtime/race/race.go",
            "src/runtime/race/internal/other",
        ] {
            assert!(
                f.join(link)
                    .symlink_metadata()
                    .unwrap()
                    .file_type()
                    .is_symlink(),
                "{link}"
            );
        }
        for v in ["amd64v1", "amd64v3"] {
            let slot = f.join(format!("src/runtime/race/internal/{v}"));
            assert!(!slot.symlink_metadata().unwrap().file_type().is_symlink());
            assert_eq!(
                std::fs::read(slot.join("race_linux.syso")).unwrap(),
                b"OURS"
            );
            assert_eq!(std::fs::read(slot.join("doc.go")).unwrap(), b"doc");
        }
        // The real GOROOT is untouched.
        assert_eq!(
            std::fs::read(r.join("src/runtime/race/internal/amd64v1/race_linux.syso")).unwrap(),
            b"TSAN"
        );
    }
}
