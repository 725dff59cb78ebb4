//! `gorace test`: `go test -race` whose races are also collected as JSON lines (the
//! runtime's `GORACE=json_path`), attributed to tests, summarised by fingerprint and,
//! with `--json-races FILE`, written out.
//!
//! Under `go test -json` the runtime's text goes to a private file instead of stderr
//! (`log_path`), and each race is re-emitted as test2json `output` events of the test
//! it belongs to, just before that test's own pass/fail event, so race text never
//! lands inside another test's output.

use crate::races::{self, Race};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

/// gorace's own flags, taken out of `gorace test`'s arguments.
#[derive(Default, Debug, PartialEq)]
pub struct Own {
    pub json_races: Option<PathBuf>,
}

/// Whether `go test` only builds test binaries (`-c`): nothing runs, so no summary.
fn compiles_only(go_args: &[OsString]) -> bool {
    go_args
        .iter()
        .map(|a| a.to_string_lossy())
        .take_while(|a| a != "-args" && a != "--args")
        .any(|a| a == "-c" || a == "--c")
}

/// Splits `--json-races FILE` / `--json-races=FILE` off the go arguments (only before
/// `-args`, after which everything belongs to the test binary).
pub fn split_args(args: &[OsString]) -> Result<(Own, Vec<OsString>), String> {
    let mut own = Own::default();
    let mut rest = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let s = a.to_string_lossy();
        if s == "-args" || s == "--args" {
            rest.push(a.clone());
            rest.extend(it.by_ref().cloned());
            break;
        }
        if s == "--json-races" {
            let f = it.next().ok_or("gorace: --json-races needs a file name")?;
            own.json_races = Some(PathBuf::from(f));
        } else if let Some(f) = s.strip_prefix("--json-races=") {
            own.json_races = Some(PathBuf::from(f));
        } else {
            rest.push(a.clone());
        }
    }
    Ok((own, rest))
}

/// Whether go's arguments ask for `-json` output.
pub fn wants_json(args: &[OsString]) -> bool {
    args.iter()
        .map(|a| a.to_string_lossy())
        .take_while(|s| s != "-args" && s != "--args")
        .any(|s| {
            matches!(
                s.as_ref(),
                "-json" | "--json" | "-json=true" | "--json=true"
            )
        })
}

/// The GORACE value for the test processes: the user's options, then gorace's
/// collection options (later options win), alloc sites on unless the user said.
pub fn gorace_value(user: Option<&OsStr>, dir: &Path, json_mode: bool) -> OsString {
    let user = user
        .map(|u| u.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut v = user.clone();
    let mut add = |opt: String| {
        if !v.is_empty() {
            v.push(' ');
        }
        v.push_str(&opt);
    };
    if !user.contains("alloc_sites=") {
        add("alloc_sites=1".into());
    }
    add(format!("json_path='{}'", dir.join("race").display()));
    if json_mode {
        add(format!("log_path='{}'", dir.join("text").display()));
    }
    v.into()
}

fn rfc3339_now() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_micros()
    )
}

/// test2json `output` events carrying a race's text for `package` / `test`.
pub fn output_events(r: &Race, package: &str, test: Option<&str>) -> Vec<String> {
    let time = rfc3339_now();
    r.text
        .split_inclusive('\n')
        .map(|line| {
            let mut ev = json!({"Time": time, "Action": "output", "Package": package});
            if let Some(t) = test {
                ev["Test"] = Value::from(t);
            }
            ev["Output"] = Value::from(line);
            ev.to_string()
        })
        .collect()
}

struct Stream {
    dir: PathBuf,
    offsets: BTreeMap<PathBuf, usize>,
    packages: HashSet<String>,
    tests: HashSet<String>,
    /// The package of each test process, learnt from its races that name one.
    pid_package: BTreeMap<u32, String>,
    pending: Vec<Race>,
    all: Vec<Race>,
}

impl Stream {
    fn poll(&mut self) {
        let (new, errors) = races::poll_dir(&self.dir, &mut self.offsets);
        for e in errors {
            eprintln!("gorace: {e}");
        }
        for mut r in new {
            r.test = races::attribute(&r, Some(&self.tests)).or(r.test);
            if let (Some(pid), Some(pkg)) = (r.pid, races::package_for(&r, &self.packages)) {
                self.pid_package.insert(pid, pkg);
            }
            self.pending.push(r);
        }
    }

    /// The package of a race: from its test or frames, else from its process.
    fn package_of(&self, r: &Race) -> Option<String> {
        races::package_for(r, &self.packages)
            .or_else(|| r.pid.and_then(|p| self.pid_package.get(&p).cloned()))
    }

    /// Emits the pending races of `package` (and of `test` and its subtests, or all of
    /// the package's when `test` is None).
    fn flush(&mut self, out: &mut impl Write, package: &str, test: Option<&str>) {
        let mut keep = Vec::new();
        for r in std::mem::take(&mut self.pending) {
            let pkg = self.package_of(&r);
            let mine = pkg.as_deref() == Some(package)
                && match (test, &r.test) {
                    (None, _) => true,
                    (Some(t), Some(rt)) => rt.name == t || rt.name.starts_with(&format!("{t}/")),
                    (Some(_), None) => false,
                };
            if !mine {
                keep.push(r);
                continue;
            }
            let name = r.test.as_ref().map(|t| t.name.clone());
            for line in output_events(&r, package, name.as_deref()) {
                let _ = writeln!(out, "{line}");
            }
            self.all.push(r);
        }
        self.pending = keep;
    }

    fn flush_rest(&mut self, out: &mut impl Write) {
        for r in std::mem::take(&mut self.pending) {
            let pkg = self.package_of(&r).unwrap_or_default();
            let name = r.test.as_ref().map(|t| t.name.clone());
            for line in output_events(&r, &pkg, name.as_deref()) {
                let _ = writeln!(out, "{line}");
            }
            self.all.push(r);
        }
    }
}

/// Runs `go test -race ARGS` (the prepared command) and everything around it.
pub fn run(mut cmd: Command, go_args: &[OsString], own: &Own) -> Result<ExitCode, String> {
    let json_mode = wants_json(go_args);
    let dir = std::env::temp_dir().join(format!(
        "gorace-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir)
        .map_err(|e| format!("gorace: cannot create {}: {e}", dir.display()))?;
    if let Some(f) = &own.json_races {
        // Fail before running anything if the output cannot be written.
        std::fs::write(f, b"").map_err(|e| {
            format!(
                "gorace: cannot write --json-races file {}: {e}",
                f.display()
            )
        })?;
    }
    cmd.env(
        "GORACE",
        gorace_value(std::env::var_os("GORACE").as_deref(), &dir, json_mode),
    );
    let mut stream = Stream {
        dir: dir.clone(),
        offsets: BTreeMap::new(),
        packages: HashSet::new(),
        tests: HashSet::new(),
        pid_package: BTreeMap::new(),
        pending: Vec::new(),
        all: Vec::new(),
    };
    let status = if json_mode {
        cmd.stdout(Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("gorace: cannot run go: {e}"))?;
        let stdout = child.stdout.take().expect("piped");
        let out = std::io::stdout();
        let mut out = out.lock();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Ok(ev) = serde_json::from_str::<Value>(&line) {
                let action = ev["Action"].as_str().unwrap_or("");
                let package = ev["Package"].as_str().unwrap_or("").to_string();
                let test = ev["Test"].as_str().map(str::to_string);
                if action == "start" || action == "run" {
                    stream.packages.insert(package.clone());
                }
                if let (Some(t), "run") = (&test, action) {
                    stream.tests.insert(t.clone());
                }
                if matches!(action, "pass" | "fail" | "skip") {
                    stream.poll();
                    stream.flush(&mut out, &package, test.as_deref());
                }
            }
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
        let status = child
            .wait()
            .map_err(|e| format!("gorace: waiting for go: {e}"))?;
        stream.poll();
        stream.flush_rest(&mut out);
        status
    } else {
        let status = cmd
            .status()
            .map_err(|e| format!("gorace: cannot run go: {e}"))?;
        stream.poll();
        for mut r in std::mem::take(&mut stream.pending) {
            r.test = races::attribute(&r, None).or(r.test);
            stream.all.push(r);
        }
        status
    };
    let _ = std::fs::remove_dir_all(&dir);
    let all = stream.all;
    if let Some(f) = &own.json_races {
        let mut text = String::new();
        for r in &all {
            text.push_str(&serde_json::to_string(r).expect("serialisable"));
            text.push('\n');
        }
        std::fs::write(f, text).map_err(|e| {
            format!(
                "gorace: cannot write --json-races file {}: {e}",
                f.display()
            )
        })?;
    }
    if !compiles_only(go_args) {
        eprint!("{}", races::summary(&all));
    }
    use std::os::unix::process::ExitStatusExt;
    let code = status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    let code = if code == 0 && !all.is_empty() {
        1
    } else {
        code
    };
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_compile_flag_before_args_means_nothing_runs() {
        let os = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
        assert!(compiles_only(&os(&["-c", "-o", "x.test", "./pkg"])));
        assert!(!compiles_only(&os(&["-count=1", "./pkg"])));
        assert!(!compiles_only(&os(&["./pkg", "-args", "-c"])));
    }

    #[test]
    fn own_flags_are_split_off_before_args() {
        let args: Vec<OsString> = [
            "-count=1",
            "--json-races",
            "r.jsonl",
            "./...",
            "-args",
            "--json-races=x",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        let (own, rest) = split_args(&args).unwrap();
        assert_eq!(own.json_races, Some(PathBuf::from("r.jsonl")));
        assert_eq!(rest, ["-count=1", "./...", "-args", "--json-races=x"]);
        assert!(wants_json(&[OsString::from("-json")]));
        assert!(!wants_json(&[
            OsString::from("-args"),
            OsString::from("-json")
        ]));
    }

    #[test]
    fn gorace_value_keeps_the_users_options_first() {
        let v = gorace_value(Some(OsStr::new("halt_on_error=1")), Path::new("/t/d"), true);
        assert_eq!(
            v,
            "halt_on_error=1 alloc_sites=1 json_path='/t/d/race' log_path='/t/d/text'"
        );
        let v = gorace_value(Some(OsStr::new("alloc_sites=0")), Path::new("/t"), false);
        assert_eq!(v, "alloc_sites=0 json_path='/t/race'");
    }

    #[test]
    fn timestamps_are_rfc3339() {
        let t = rfc3339_now();
        assert_eq!(t.len(), 27, "{t}");
        assert!(t.ends_with('Z') && t.as_bytes()[10] == b'T');
    }
}
