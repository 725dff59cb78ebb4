//! Race JSON lines (docs/race-json.md): the model, reading, per-test attribution and
//! deduplication by fingerprint.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::path::Path;

pub const VERSION: u32 = 1;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Frame {
    pub function: String,
    pub file: String,
    pub line: u64,
    pub pc: String,
    pub offset: u64,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Creation {
    pub goroutine: Option<u32>,
    pub finished: bool,
    pub stack: Vec<Frame>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Access {
    pub role: String,
    pub kind: String,
    pub atomic: bool,
    pub size: u64,
    pub address: String,
    pub goroutine: Option<u32>,
    pub stack: Vec<Frame>,
    pub created: Vec<Creation>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Alloc {
    pub goroutine: Option<u32>,
    pub stack: Vec<Frame>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Location {
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocated_by: Option<Alloc>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TestRef {
    pub package: String,
    pub name: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Race {
    pub version: u32,
    #[serde(rename = "type")]
    pub kind: String,
    pub seq: u64,
    pub fingerprint: String,
    pub accesses: Vec<Access>,
    pub location: Option<Location>,
    pub test: Option<TestRef>,
    pub text: String,
    /// The test process (added by the gorace command from the file name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
}

impl Race {
    /// `function file-base:line` of an access's innermost frame.
    pub fn site(&self, i: usize) -> String {
        match self.accesses.get(i).and_then(|a| a.stack.first()) {
            Some(f) => format!("{} {}:{}", f.function, base_name(&f.file), f.line),
            None => "?".into(),
        }
    }
}

pub fn base_name(file: &str) -> &str {
    file.rsplit('/').next().unwrap_or(file)
}

/// Parses one line; the error says what is wrong.
pub fn parse_line(line: &str) -> Result<Race, String> {
    let r: Race = serde_json::from_str(line).map_err(|e| e.to_string())?;
    if r.version != VERSION {
        return Err(format!(
            "unsupported version {} (this gorace reads version {VERSION})",
            r.version
        ));
    }
    if r.accesses.len() != 2 {
        return Err(format!("expected 2 accesses, found {}", r.accesses.len()));
    }
    Ok(r)
}

/// Reads every line of `text` (from `name`); bad lines become messages, the rest is
/// kept, so nothing valid is lost.
pub fn parse_all(name: &str, text: &str, pid: Option<u32>) -> (Vec<Race>, Vec<String>) {
    let (mut races, mut errors) = (Vec::new(), Vec::new());
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match parse_line(line) {
            Ok(mut r) => {
                if r.pid.is_none() {
                    r.pid = pid;
                }
                races.push(r)
            }
            Err(e) => errors.push(format!("{name}:{}: malformed race line: {e}", i + 1)),
        }
    }
    (races, errors)
}

/// `(package, TestName)` for a test function symbol (`pkg.TestX`, `pkg.TestX.func1`,
/// `pkg_test.BenchmarkY.gowrap2`), per testing's naming rule.
pub fn test_of(func: &str) -> Option<(String, String)> {
    let slash = func.rfind('/').map_or(0, |i| i + 1);
    let dot = slash + func[slash..].find('.')?;
    let (pkg, rest) = (&func[..dot], &func[dot + 1..]);
    let name = rest.split('.').next().unwrap_or(rest);
    for prefix in ["Test", "Benchmark", "Fuzz", "Example"] {
        if let Some(tail) = name.strip_prefix(prefix)
            && !tail.starts_with(|c: char| c.is_ascii_lowercase())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && pkg != "testing"
        {
            return Some((
                pkg.strip_suffix("_test").unwrap_or(pkg).to_string(),
                name.to_string(),
            ));
        }
    }
    None
}

/// The package of a function symbol (`a/b.F`, `a/b.(*T).M` → `a/b`).
pub fn package_of(func: &str) -> Option<&str> {
    let slash = func.rfind('/').map_or(0, |i| i + 1);
    let dot = slash + func[slash..].find('.')?;
    let pkg = &func[..dot];
    Some(pkg.strip_suffix("_test").unwrap_or(pkg))
}

/// The name `t.Run` was given at `file:line`, if it is a string literal there (with
/// testing's rewrite of spaces to underscores).
fn run_literal(file: &str, line: u64) -> Option<String> {
    let text = std::fs::read_to_string(file).ok()?;
    let src = text.lines().nth(line.checked_sub(1)? as usize)?;
    let at = src.find(".Run(")? + 5;
    let rest = src[at..].trim_start();
    let lit = if let Some(r) = rest.strip_prefix('`') {
        r[..r.find('`')?].to_string()
    } else {
        let r = rest.strip_prefix('"')?;
        let mut out = String::new();
        let mut chars = r.chars();
        loop {
            match chars.next()? {
                '"' => break,
                '\\' => match chars.next()? {
                    'n' | 't' | 'r' => out.push('_'),
                    c => out.push(c),
                },
                c => out.push(c),
            }
        }
        out
    };
    Some(lit.replace(' ', "_"))
}

/// Which test a race belongs to: the test whose goroutine tree made the racing access.
///
/// The goroutine tree is walked from the oldest ancestor down: a goroutine created by
/// `testing.(*T).Run` called from test code is a subtest, named by the string literal
/// at that call (checked against `known` names when given; a name that cannot be read
/// stops at the parent test); a goroutine created from a test function (or running
/// one) belongs to that test. The current access decides; the earlier one is used when
/// the current is outside every test.
pub fn attribute(r: &Race, known: Option<&HashSet<String>>) -> Option<TestRef> {
    r.accesses.iter().find_map(|a| attribute_access(a, known))
}

fn attribute_access(a: &Access, known: Option<&HashSet<String>>) -> Option<TestRef> {
    let mut found: Option<TestRef> = None;
    let mut exact = true;
    for c in a.created.iter().rev() {
        let (Some(top), Some(caller)) = (c.stack.first(), c.stack.get(1)) else {
            if found.is_none() {
                found = c
                    .stack
                    .iter()
                    .find_map(|f| test_of(&f.function))
                    .map(to_ref);
            }
            continue;
        };
        if top.function == "testing.(*T).Run"
            && let Some(t) = test_of(&caller.function)
        {
            let base = found.get_or_insert_with(|| to_ref(t));
            if exact {
                match run_literal(&caller.file, caller.line) {
                    Some(sub) => {
                        let name = format!("{}/{sub}", base.name);
                        if known.is_none_or(|k| k.contains(&name)) {
                            base.name = name;
                        } else {
                            exact = false;
                        }
                    }
                    None => exact = false,
                }
            }
            continue;
        }
        if found.is_none() {
            found = c
                .stack
                .iter()
                .find_map(|f| test_of(&f.function))
                .map(to_ref);
        }
    }
    found.or_else(|| {
        a.stack
            .iter()
            .find_map(|f| test_of(&f.function))
            .map(to_ref)
    })
}

fn to_ref((package, name): (String, String)) -> TestRef {
    TestRef { package, name }
}

/// The package a race belongs to: its test's, else the first frame's package that is
/// one of `packages` (when given), else None.
pub fn package_for(r: &Race, packages: &HashSet<String>) -> Option<String> {
    if let Some(t) = &r.test {
        return Some(t.package.clone());
    }
    r.accesses
        .iter()
        .flat_map(|a| a.stack.iter())
        .filter_map(|f| package_of(&f.function))
        .find(|p| packages.contains(*p))
        .map(str::to_string)
}

/// Unique races, by fingerprint, in first-seen order, with their reports.
pub struct Unique<'a> {
    pub fingerprint: &'a str,
    pub races: Vec<&'a Race>,
}

impl Unique<'_> {
    /// The tests (`package TestName`) this race was reported in, sorted, without repeats.
    pub fn tests(&self) -> Vec<String> {
        let mut tests: Vec<String> = self
            .races
            .iter()
            .filter_map(|r| r.test.as_ref().map(|t| format!("{} {}", t.package, t.name)))
            .collect();
        tests.sort();
        tests.dedup();
        tests
    }
}

pub fn unique(races: &[Race]) -> Vec<Unique<'_>> {
    let mut order: Vec<Unique<'_>> = Vec::new();
    let mut index: BTreeMap<&str, usize> = BTreeMap::new();
    for r in races {
        match index.get(r.fingerprint.as_str()) {
            Some(&i) => order[i].races.push(r),
            None => {
                index.insert(&r.fingerprint, order.len());
                order.push(Unique {
                    fingerprint: &r.fingerprint,
                    races: vec![r],
                });
            }
        }
    }
    order
}

/// The end-of-run summary.
pub fn summary(races: &[Race]) -> String {
    let u = unique(races);
    let mut s = format!(
        "gorace: {} data race report(s), {} unique race(s)",
        races.len(),
        u.len()
    );
    s.push_str(if u.is_empty() { "\n" } else { ":\n" });
    for x in &u {
        let r = x.races[0];
        let tests = x.tests();
        s.push_str(&format!(
            "  {}  x{}  {}  <->  {}{}\n",
            x.fingerprint,
            x.races.len(),
            r.site(0),
            r.site(1),
            if tests.is_empty() {
                String::new()
            } else {
                format!("  [{}]", tests.join(", "))
            }
        ));
    }
    s
}

/// Reads every `race.<pid>` file in `dir` from `offsets` on (only whole lines), and
/// returns the new races and any malformed lines.
pub fn poll_dir(
    dir: &Path,
    offsets: &mut BTreeMap<std::path::PathBuf, usize>,
) -> (Vec<Race>, Vec<String>) {
    let (mut races, mut errors) = (Vec::new(), Vec::new());
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (races, errors);
    };
    let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        let Some(pid) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("race."))
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        let off = offsets.entry(path.clone()).or_insert(0);
        let Some(end) = bytes[*off..].iter().rposition(|&b| b == b'\n') else {
            continue;
        };
        let chunk = String::from_utf8_lossy(&bytes[*off..*off + end + 1]).into_owned();
        *off += end + 1;
        let (r, e) = parse_all(&path.display().to_string(), &chunk, Some(pid));
        races.extend(r);
        errors.extend(e);
    }
    (races, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(f: &str, file: &str, line: u64) -> Frame {
        Frame {
            function: f.into(),
            file: file.into(),
            line,
            pc: "0x0".into(),
            offset: 0,
        }
    }

    #[test]
    fn test_names() {
        assert_eq!(
            test_of("example.com/m/p.TestA.func1.2"),
            Some(("example.com/m/p".into(), "TestA".into()))
        );
        assert_eq!(
            test_of("m/p_test.FuzzX"),
            Some(("m/p".into(), "FuzzX".into()))
        );
        assert_eq!(test_of("m/p.Testify"), None);
        assert_eq!(test_of("testing.tRunner"), None);
        assert_eq!(package_of("a/b.(*T).M"), Some("a/b"));
    }

    #[test]
    fn subtests_are_named_from_the_t_run_literal() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("x_test.go");
        std::fs::write(
            &file,
            "package p\nfunc TestA(t *testing.T) {\n\tt.Run(\"one two\", func(t *testing.T) {})\n}\n",
        )
        .unwrap();
        let file = file.to_str().unwrap();
        let access = Access {
            role: "current".into(),
            kind: "write".into(),
            atomic: false,
            size: 1,
            address: "0x0".into(),
            goroutine: Some(9),
            stack: vec![
                frame("m/p.helper", "h.go", 3),
                frame("m/p.TestA.func1", file, 3),
            ],
            created: vec![
                Creation {
                    goroutine: Some(9),
                    finished: false,
                    stack: vec![
                        frame("testing.(*T).Run", "testing.go", 1),
                        frame("m/p.TestA", file, 3),
                    ],
                },
                Creation {
                    goroutine: Some(5),
                    finished: false,
                    stack: vec![
                        frame("testing.(*T).Run", "testing.go", 1),
                        frame("testing.runTests.func1", "testing.go", 2),
                    ],
                },
            ],
        };
        let t = attribute_access(&access, None).unwrap();
        assert_eq!(
            (t.package.as_str(), t.name.as_str()),
            ("m/p", "TestA/one_two")
        );
        // A name the run never showed falls back to the parent test.
        let known: HashSet<String> = ["TestA".to_string()].into();
        assert_eq!(
            attribute_access(&access, Some(&known)).unwrap().name,
            "TestA"
        );
    }

    #[test]
    fn malformed_lines_are_reported_and_the_rest_kept() {
        let good = r#"{"version":1,"type":"race","seq":1,"fingerprint":"ab","accesses":[{"role":"current","kind":"write","atomic":false,"size":1,"address":"0x1","goroutine":2,"stack":[],"created":[]},{"role":"previous","kind":"read","atomic":false,"size":1,"address":"0x1","goroutine":null,"stack":[],"created":[]}],"location":null,"test":null,"text":"x"}"#;
        let input = format!("{good}\n{{\"version\":1,\n{good}\n");
        let (races, errors) = parse_all("f", &input, Some(7));
        assert_eq!(races.len(), 2);
        assert_eq!(races[0].pid, Some(7));
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].starts_with("f:2: malformed race line"),
            "{errors:?}"
        );
        let (_, errors) = parse_all("f", &good.replace("\"version\":1", "\"version\":9"), None);
        assert!(errors[0].contains("unsupported version 9"));
    }
}
