//! `gorace report`: race JSON lines → SARIF 2.1.0 (`--sarif`) and a self-contained HTML
//! page (`--html`). One result / section per unique race (by fingerprint).

use crate::races::{self, Frame, Race, Unique};
use serde_json::{Value, json};
use std::ffi::OsString;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct ReportArgs {
    /// Write SARIF 2.1.0 to this file (`-` for stdout).
    #[arg(long)]
    sarif: Option<PathBuf>,
    /// Write a self-contained HTML page to this file (`-` for stdout).
    #[arg(long)]
    html: Option<PathBuf>,
    /// Race JSON lines files (from `gorace test --json-races` or `GORACE=json_path`);
    /// standard input when none.
    inputs: Vec<OsString>,
}

fn read_inputs(inputs: &[OsString]) -> Result<(Vec<Race>, Vec<String>), String> {
    let (mut races, mut errors) = (Vec::new(), Vec::new());
    if inputs.is_empty() {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| format!("gorace report: reading standard input: {e}"))?;
        let (r, e) = races::parse_all("<stdin>", &text, None);
        races.extend(r);
        errors.extend(e);
    }
    for input in inputs {
        let bytes = std::fs::read(input).map_err(|e| {
            format!(
                "gorace report: cannot read {}: {e}",
                input.to_string_lossy()
            )
        })?;
        let text = String::from_utf8_lossy(&bytes);
        let (r, e) = races::parse_all(&input.to_string_lossy(), &text, None);
        races.extend(r);
        errors.extend(e);
    }
    Ok((races, errors))
}

fn write_out(path: &PathBuf, text: &str) -> Result<(), String> {
    if path.as_os_str() == "-" {
        print!("{text}");
        return Ok(());
    }
    std::fs::write(path, text)
        .map_err(|e| format!("gorace report: cannot write {}: {e}", path.display()))
}

pub fn run(a: &ReportArgs) -> Result<ExitCode, String> {
    if a.sarif.is_none() && a.html.is_none() {
        return Err("gorace report: say what to write: --sarif FILE and/or --html FILE".into());
    }
    let (races, errors) = read_inputs(&a.inputs)?;
    for e in &errors {
        eprintln!("gorace report: {e}");
    }
    if let Some(p) = &a.sarif {
        let s = serde_json::to_string_pretty(&sarif(&races)).expect("serialisable");
        write_out(p, &(s + "\n"))?;
    }
    if let Some(p) = &a.html {
        write_out(p, &html(&races))?;
    }
    if !errors.is_empty() {
        eprintln!(
            "gorace report: {} malformed line(s) skipped; {} race(s) converted",
            errors.len(),
            races.len()
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// A file path as a URI reference: absolute paths become `file://` URIs; everything
/// outside RFC 3986's unreserved set and `/` is percent-encoded.
pub fn file_uri(path: &str) -> String {
    let mut enc = String::new();
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            enc.push(b as char);
        } else {
            enc.push_str(&format!("%{b:02X}"));
        }
    }
    if path.starts_with('/') {
        format!("file://{enc}")
    } else {
        enc
    }
}

fn physical(f: &Frame) -> Value {
    json!({
        "artifactLocation": {"uri": file_uri(&f.file)},
        "region": {"startLine": f.line.max(1)},
    })
}

fn access_words(r: &Race, i: usize) -> String {
    let a = &r.accesses[i];
    let who = match a.goroutine {
        Some(1) => "the main goroutine".to_string(),
        Some(g) => format!("goroutine {g}"),
        None => "an unknown goroutine".to_string(),
    };
    format!(
        "{}{}{} by {who}",
        if i == 0 { "" } else { "previous " },
        if a.atomic { "atomic " } else { "" },
        a.kind
    )
}

fn thread_flow(r: &Race, i: usize) -> Value {
    let a = &r.accesses[i];
    let n = a.stack.len();
    // Execution order: outermost frame first.
    let locations: Vec<Value> = a
        .stack
        .iter()
        .rev()
        .enumerate()
        .map(|(depth, f)| {
            json!({
                "location": {
                    "physicalLocation": physical(f),
                    "message": {"text": f.function},
                    "logicalLocations": [{"fullyQualifiedName": f.function, "kind": "function"}],
                },
                "nestingLevel": depth,
                "importance": if depth + 1 == n { "essential" } else { "important" },
            })
        })
        .collect();
    json!({
        "id": format!("{}-{}", a.role, a.goroutine.map_or("unknown".into(), |g| g.to_string())),
        "message": {"text": access_words(r, i)},
        "locations": locations,
    })
}

fn result(u: &Unique<'_>) -> Value {
    let r = u.races[0];
    let tests = u.tests();
    let loc = |i: usize, id: usize| -> Option<Value> {
        let f = r.accesses[i].stack.first()?;
        Some(json!({
            "id": id,
            "physicalLocation": physical(f),
            "logicalLocations": [{"fullyQualifiedName": f.function, "kind": "function"}],
            "message": {"text": format!("{} in {}", access_words(r, i), f.function)},
        }))
    };
    let message = format!(
        "Data race: {} at {} and {} at {}{}",
        access_words(r, 0),
        r.site(0),
        access_words(r, 1),
        r.site(1),
        if u.races.len() > 1 {
            format!(" (reported {} times)", u.races.len())
        } else {
            String::new()
        }
    );
    let mut res = json!({
        "ruleId": "data-race",
        "ruleIndex": 0,
        "level": "error",
        "message": {"text": message},
        "locations": loc(0, 0).into_iter().collect::<Vec<_>>(),
        "relatedLocations": loc(1, 1).into_iter().collect::<Vec<_>>(),
        "partialFingerprints": {"goraceRacePair/v1": u.fingerprint},
        "codeFlows": [{
            "message": {"text": "the two racing accesses, each with its goroutine's stack"},
            "threadFlows": [thread_flow(r, 0), thread_flow(r, 1)],
        }],
        "occurrenceCount": u.races.len(),
        "properties": {"tests": tests},
    });
    if res["locations"].as_array().is_some_and(|a| a.is_empty()) {
        res.as_object_mut().unwrap().remove("locations");
    }
    if res["relatedLocations"]
        .as_array()
        .is_some_and(|a| a.is_empty())
    {
        res.as_object_mut().unwrap().remove("relatedLocations");
    }
    res
}

/// The SARIF 2.1.0 log of `races`.
pub fn sarif(races: &[Race]) -> Value {
    let results: Vec<Value> = races::unique(races).iter().map(result).collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "gorace",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": [{
                    "id": "data-race",
                    "name": "DataRace",
                    "shortDescription": {"text": "Data race"},
                    "fullDescription": {"text": "Two goroutines accessed the same memory concurrently, at least one of them writing, without synchronisation between them."},
                    "defaultConfiguration": {"level": "error"},
                }],
            }},
            "results": results,
        }],
    })
}

/// Escapes text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

fn source_lines(file: &str, line: u64) -> Option<String> {
    let text = std::fs::read_to_string(file).ok()?;
    let lines: Vec<&str> = text.lines().collect();
    let l = line as usize;
    if l == 0 || l > lines.len() {
        return None;
    }
    let (lo, hi) = (l.saturating_sub(2).max(1), (l + 2).min(lines.len()));
    let mut o = String::from("<pre class=\"src\">");
    for (n, text) in lines.iter().enumerate().take(hi).skip(lo - 1) {
        let n = n + 1;
        o.push_str(&format!(
            "<span class=\"{}\">{n:5}  {}</span>",
            if n == l { "hit" } else { "ctx" },
            esc(text)
        ));
    }
    o.push_str("</pre>");
    Some(o)
}

fn html_stack(frames: &[Frame], with_source: bool) -> String {
    if frames.is_empty() {
        return "<p class=\"none\">[failed to restore the stack]</p>".into();
    }
    let mut o = String::from("<ol class=\"stack\">");
    for (i, f) in frames.iter().enumerate() {
        o.push_str(&format!(
            "<li><code class=\"fn\">{}()</code><br><span class=\"loc\">{}:{}</span>",
            esc(&f.function),
            esc(&f.file),
            f.line
        ));
        if with_source
            && i == 0
            && let Some(src) = source_lines(&f.file, f.line)
        {
            o.push_str(&src);
        }
        o.push_str("</li>");
    }
    o.push_str("</ol>");
    o
}

fn goroutine_name(g: Option<u32>) -> String {
    match g {
        Some(1) => "main goroutine".into(),
        Some(g) => format!("goroutine {g}"),
        None => "unknown goroutine".into(),
    }
}

/// The self-contained HTML page of `races`.
pub fn html(races: &[Race]) -> String {
    let u = races::unique(races);
    let mut o = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\
<title>gorace: data races</title><style>\
body{font-family:sans-serif;margin:1.5em;color:#222}h2{border-bottom:1px solid #ccc}\
.pair{display:flex;gap:1.5em}.side{flex:1;min-width:0;background:#f7f7f7;padding:.5em 1em;border-radius:6px}\
.fn{font-weight:bold}.loc{color:#555;font-family:monospace}pre.src{background:#fff;border:1px solid #ddd;padding:.3em;overflow:auto}\
.hit{background:#ffe08a;display:block}.ctx{display:block;color:#666}.meta{color:#555}details{margin:.3em 0}\
</style></head><body>\n",
    );
    o.push_str(&format!(
        "<h1>gorace: {} unique data race(s) in {} report(s)</h1>\n",
        u.len(),
        races.len()
    ));
    for (n, x) in u.iter().enumerate() {
        let r = x.races[0];
        o.push_str(&format!(
            "<section class=\"race\" id=\"race-{}\"><h2>Race {}: {} &harr; {}</h2>\n",
            esc(x.fingerprint),
            n + 1,
            esc(&r.site(0)),
            esc(&r.site(1))
        ));
        let tests = x.tests();
        o.push_str(&format!(
            "<p class=\"meta\">fingerprint <code>{}</code>, reported {} time(s){}</p>\n",
            esc(x.fingerprint),
            x.races.len(),
            if tests.is_empty() {
                String::new()
            } else {
                format!(", in {}", esc(&tests.join(", ")))
            }
        ));
        o.push_str("<div class=\"pair\">");
        for (i, a) in r.accesses.iter().enumerate() {
            o.push_str(&format!(
                "<div class=\"side\" id=\"{}-{}\"><h3>{} {}{} of {} byte(s) at {} by {}</h3>",
                esc(&a.role),
                n + 1,
                if i == 0 { "Current" } else { "Previous" },
                if a.atomic { "atomic " } else { "" },
                esc(&a.kind),
                a.size,
                esc(&a.address),
                esc(&goroutine_name(a.goroutine))
            ));
            o.push_str(&html_stack(&a.stack, true));
            for c in &a.created {
                o.push_str(&format!(
                    "<details><summary>{} ({}) created at</summary>{}</details>",
                    esc(&goroutine_name(c.goroutine)),
                    if c.finished { "finished" } else { "running" },
                    html_stack(&c.stack, false)
                ));
            }
            o.push_str("</div>");
        }
        o.push_str("</div>\n");
        if let Some(l) = &r.location {
            if l.kind == "heap" {
                o.push_str(&format!(
                    "<p class=\"meta\">Location: heap block of size {} at {}",
                    l.size.unwrap_or(0),
                    esc(l.start.as_deref().unwrap_or("?"))
                ));
                match &l.allocated_by {
                    Some(al) => {
                        o.push_str(&format!(
                            ", allocated by {}:</p>{}",
                            esc(&goroutine_name(al.goroutine)),
                            html_stack(&al.stack, true)
                        ));
                    }
                    None => o.push_str("</p>"),
                }
            } else {
                o.push_str(&format!("<p class=\"meta\">Location: {}</p>", esc(&l.kind)));
            }
        }
        o.push_str("</section>\n");
    }
    o.push_str("</body></html>\n");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(
            esc("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
        assert_eq!(file_uri("/a b/c.go"), "file:///a%20b/c.go");
        assert_eq!(file_uri("<autogenerated>"), "%3Cautogenerated%3E");
    }
}
