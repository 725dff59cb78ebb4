#!/usr/bin/env python3
"""Checks gorace's report forms end to end (run by scripts/reports.sh).

  reports_check.py GORACE_BIN TMPDIR [--update]

* golden text, JSON and SARIF of tests/testdata/tworaces (addresses, offsets, pcs,
  paths and goroutine numbers normalised); --update rewrites the golden files;
* the default text is Go's (no Location block) and alloc_sites=1 adds it;
* SARIF validates against the vendored official 2.1.0 schema (jsonschema);
* per-test attribution under `gorace test -json` on tests/testdata/attrib;
* summary and exit status of `gorace test`;
* the HTML page, rendered by headless Chromium, shows both stacks, and markup in
  symbol names stays text;
* bad input: malformed lines to `gorace report`, unwritable json_path.
"""
import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "../../.."))
TESTDATA = os.path.join(HERE, "testdata")
GOLDEN = os.path.join(HERE, "golden")

failures = []


def check(name, ok, detail=""):
    print(("ok    " if ok else "FAIL  ") + name + ("" if ok or not detail else "\n" + detail))
    if not ok:
        failures.append(name)


def norm_text(s):
    s = re.sub(r"/[^\s:]*?/gorace/go[0-9.]+-[0-9a-f]+(-floor)?/goroot", "$GOROOT", s)
    s = s.replace(ROOT, "$ROOT")
    s = re.sub(r"0x[0-9a-f]{12,}", "0xADDR", s)
    s = re.sub(r"\+0x[0-9a-f]+", "+0xOFF", s)
    s = re.sub(r"(?<=[gG]oroutine )([2-9]|\d\d+)", "N", s)
    return s


def norm_json(v):
    if isinstance(v, dict):
        out = {}
        for k, x in v.items():
            if k in ("address", "start", "pc") and isinstance(x, str):
                out[k] = "0xADDR"
            elif k == "offset":
                out[k] = 0
            elif k == "goroutine" and isinstance(x, int) and x != 1:
                out[k] = "N"
            elif k == "pid":
                continue
            else:
                out[k] = norm_json(x)
        return out
    if isinstance(v, list):
        return [norm_json(x) for x in v]
    if isinstance(v, str):
        return norm_text(v)
    return v


def golden(name, got, update):
    path = os.path.join(GOLDEN, name)
    if update:
        with open(path, "w") as f:
            f.write(got)
        print("updated " + path)
        return
    want = open(path).read() if os.path.exists(path) else ""
    if got != want:
        import difflib
        diff = "".join(difflib.unified_diff(want.splitlines(True), got.splitlines(True), "golden/" + name, "got"))
        check("golden " + name, False, diff[:6000])
    else:
        check("golden " + name, True)


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def main():
    gorace, tmp = os.path.abspath(sys.argv[1]), sys.argv[2]
    update = "--update" in sys.argv
    env = dict(os.environ)
    env.pop("GORACE", None)

    # ----- tworaces: text (stock and with alloc sites), JSON, SARIF ---------------------
    binp = os.path.join(tmp, "tworaces")
    r = run([gorace, "build", "-o", binp, "./tworaces"], cwd=TESTDATA, env=env)
    check("build tworaces", r.returncode == 0, r.stderr)
    stock = run([binp], env={**env, "GORACE": "atexit_sleep_ms=0"})
    check("stock text: exit 66, no Location block",
          stock.returncode == 66 and "Location is" not in stock.stderr and "DATA RACE" in stock.stderr,
          stock.stderr)
    golden("tworaces.stock.txt", norm_text(stock.stderr), update)
    jpath = os.path.join(tmp, "tw")
    ext = run([binp], env={**env, "GORACE": "atexit_sleep_ms=0 alloc_sites=1 json_path=" + jpath})
    golden("tworaces.txt", norm_text(ext.stderr), update)
    src = open(os.path.join(TESTDATA, "tworaces", "main.go")).read().splitlines()
    alloc_line = 1 + next(i for i, l in enumerate(src) if "return &counter{" in l)
    check("alloc_sites=1: heap block allocated in newCounter",
          re.search(r"Location is heap block of size \d+ at 0x[0-9a-f]{12} allocated by main goroutine:\n"
                    r"  main\.newCounter\(\)\n      .*/tworaces/main\.go:%d " % alloc_line, ext.stderr) is not None,
          ext.stderr)
    files = [f for f in os.listdir(tmp) if f.startswith("tw.")]
    check("json_path writes tw.<pid>", files == ["tw.%d" % int(files[0][3:])] if files else False, str(files))
    lines = open(os.path.join(tmp, files[0])).read().splitlines() if files else []
    objs = [json.loads(l) for l in lines]
    check("one JSON line per reported race",
          len(objs) == ext.stderr.count("WARNING: DATA RACE") and len(objs) > 0, str(len(objs)))
    check("JSON text field equals the printed report",
          "".join(o["text"] for o in objs) + "Found %d data race(s)\n" % len(objs) == ext.stderr)
    golden("tworaces.jsonl", "".join(json.dumps(norm_json(o), sort_keys=True) + "\n" for o in objs), update)
    heap = [o for o in objs if o["location"] and o["location"]["kind"] == "heap"]
    glob = [o for o in objs if o["location"] and o["location"]["kind"] == "global"]
    check("JSON locations: heap with alloc site, global",
          heap and glob and heap[0]["location"]["allocated_by"]["stack"][0]["function"] == "main.newCounter")

    sarif_path = os.path.join(tmp, "tw.sarif")
    r = run([gorace, "report", "--sarif", sarif_path, os.path.join(tmp, files[0])])
    check("gorace report --sarif", r.returncode == 0, r.stderr)
    sarif = json.load(open(sarif_path))
    golden("tworaces.sarif.json", json.dumps(norm_json(sarif), indent=1, sort_keys=True) + "\n", update)
    import jsonschema
    schema = json.load(open(os.path.join(HERE, "sarif", "sarif-schema-2.1.0.json")))
    errs = sorted(jsonschema.Draft4Validator(schema).iter_errors(sarif), key=str)
    check("SARIF validates against the SARIF 2.1.0 schema (jsonschema Draft4Validator)",
          not errs, "\n".join(str(e)[:400] for e in errs[:3]))
    uniq = len({o["fingerprint"] for o in objs})
    check("SARIF: one result per unique race, two thread flows each",
          len(sarif["runs"][0]["results"]) == uniq
          and all(len(x["codeFlows"][0]["threadFlows"]) == 2 for x in sarif["runs"][0]["results"]))

    # ----- attribution under gorace test -json --------------------------------------------
    races_file = os.path.join(tmp, "attrib.jsonl")
    r = run([gorace, "test", "-count=1", "-json", "--json-races", races_file, "./attrib"], cwd=TESTDATA, env=env)
    check("gorace test -json on a racy package exits non-zero", r.returncode != 0, r.stderr[-2000:])
    events = []
    bad_lines = 0
    for l in r.stdout.splitlines():
        try:
            events.append(json.loads(l))
        except ValueError:
            bad_lines += 1
    check("stdout is pure test2json", bad_lines == 0 and events, str(bad_lines))
    expect = {"raceParA": "TestParallelA", "raceParB": "TestParallelB", "raceAlpha": "TestSub/alpha_one",
              "raceBeta": "TestSub/beta", "raceSpawn": "TestSpawn"}
    # Group output lines into race blocks per test, then check each block's marker.
    blocks, cur = [], None
    for e in events:
        if e.get("Action") != "output":
            continue
        out = e.get("Output", "")
        if out == "==================\n" and cur is None:
            cur = {"test": e.get("Test"), "lines": [], "tests": set()}
            continue
        if cur is not None:
            cur["tests"].add(e.get("Test"))
            if out == "==================\n":
                blocks.append(cur)
                cur = None
            else:
                cur["lines"].append(out)
    wrong = []
    seen = set()
    for b in blocks:
        text = "".join(b["lines"])
        m = re.search(r"attrib\.(race\w+)\(\)", text)
        marker = m.group(1) if m else None
        seen.add(marker)
        if marker not in expect or b["tests"] != {expect[marker]} or b["test"] != expect[marker]:
            wrong.append((marker, b["test"], sorted(map(str, b["tests"]))))
    check("every race block is output of the right test (parallel tests, parallel subtests, spawned goroutines)",
          not wrong and seen == set(expect) and len(blocks) >= 5, "%s; seen %s" % (wrong, seen))
    # No race text outside a block, and no stray text in other tests.
    clean = [e for e in events if e.get("Test") == "TestClean" and e.get("Action") == "output"]
    check("the race-free test's output has no race text",
          clean and not any("DATA RACE" in e["Output"] for e in clean))
    check("summary: 5 unique races", re.search(r"gorace: \d+ data race report\(s\), 5 unique race\(s\)", r.stderr) is not None,
          r.stderr[-1500:])
    jr = [json.loads(l) for l in open(races_file)]
    tests = {}
    for o in jr:
        m = re.search(r"attrib\.(race\w+)", o["accesses"][0]["stack"][0]["function"])
        tests.setdefault(m.group(1), set()).add(o["test"]["name"] if o["test"] else None)
    check("--json-races: each race carries its test",
          {k: v for k, v in tests.items()} == {k: {v} for k, v in expect.items()}, str(tests))
    check("--json-races: package is the import path",
          all(o["test"]["package"] == "gorace.test/testdata/attrib" for o in jr))
    golden("attrib.tests.txt", "".join(sorted({"%s %s\n" % (o["fingerprint"], o["test"]["name"]) for o in jr})), update)

    # Without -json: go's text output untouched, summary at the end, non-zero status.
    r = run([gorace, "test", "-count=1", "-run", "TestParallelB|TestClean", "./attrib"], cwd=TESTDATA, env=env)
    check("gorace test (text): races reported, summary, non-zero exit",
          r.returncode != 0 and "WARNING: DATA RACE" in r.stderr + r.stdout
          and "1 unique race(s):" in r.stderr and "TestParallelB" in r.stderr, r.stderr[-1500:])
    r = run([gorace, "test", "-count=1", "-run", "TestClean", "./attrib"], cwd=TESTDATA, env=env)
    check("gorace test (race-free): exit 0, summary says none",
          r.returncode == 0 and "0 unique race(s)" in r.stderr, r.stderr[-1500:])

    # ----- HTML in headless Chromium ---------------------------------------------------------
    evil = dict(jr[0])
    evil = json.loads(json.dumps(evil))
    evil["fingerprint"] = "<b>fp</b>"
    evil["accesses"][0]["stack"][0]["function"] = "main.<img src=x onerror=alert(1)>"
    evil_file = os.path.join(tmp, "evil.jsonl")
    with open(evil_file, "w") as f:
        f.write(json.dumps(evil) + "\n")
    html_path = os.path.join(tmp, "races.html")
    r = run([gorace, "report", "--html", html_path, races_file, evil_file])
    check("gorace report --html", r.returncode == 0, r.stderr)
    chrome = None
    for c in ("chromium", "chromium-browser", "google-chrome"):
        if subprocess.run(["sh", "-c", "command -v " + c], capture_output=True).returncode == 0:
            chrome = c
            break
    if chrome is None:
        check("headless chromium available", False, "install it: apt-get install chromium")
    else:
        d = run([chrome, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", "file://" + html_path],
                env={**env, "HOME": tmp})
        dom = d.stdout
        sections = len(re.findall(r'<section class="race"', dom))
        both = all(re.search(r'<div class="side" id="%s-%d">' % (role, i), dom) for role in ("current", "previous")
                   for i in range(1, sections + 1))
        check("chromium renders one section per unique race with both stacks side by side",
              sections == 6 and both and dom.count("attrib.raceParA()") >= 2, "sections=%d both=%s" % (sections, both))
        check("chromium DOM: source lines of the racing access are shown",
              "raceParA()  { parAVar++ }" in dom.replace("&nbsp;", " "))
        check("markup in symbol names stays text (no injected element)",
              "<img" not in dom and "&lt;img src=x onerror=alert(1)&gt;" in dom and "<b>fp</b>" not in dom)

    # ----- bad input ----------------------------------------------------------------------------
    mixed = os.path.join(tmp, "mixed.jsonl")
    good = open(races_file).read().splitlines()
    with open(mixed, "w") as f:
        f.write(good[0] + "\n{not json\n" + good[1] + "\n")
    out_sarif = os.path.join(tmp, "mixed.sarif")
    r = run([gorace, "report", "--sarif", out_sarif, mixed])
    res = json.load(open(out_sarif))["runs"][0]["results"] if os.path.exists(out_sarif) else []
    nfp = len({json.loads(good[0])["fingerprint"], json.loads(good[1])["fingerprint"]})
    check("malformed line: named, the rest still converted, exit 1",
          r.returncode == 1 and (mixed + ":2: malformed race line") in r.stderr and len(res) == nfp, r.stderr)
    r = run([binp], env={**env, "GORACE": "json_path=/nonexistent/dir/r"})
    check("unwritable json_path is refused before the program runs",
          r.returncode == 2 and "json_path" in r.stderr and "DATA RACE" not in r.stderr, r.stderr)
    r = run([gorace, "test", "--json-races", "/nonexistent/dir/x.jsonl", "./attrib"], cwd=TESTDATA, env=env)
    check("unwritable --json-races is refused before running", r.returncode == 2 and "--json-races" in r.stderr,
          r.stderr)

    print("%d failure(s)" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
