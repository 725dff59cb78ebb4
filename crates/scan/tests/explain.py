#!/usr/bin/env python3
"""explain.py ALLOWLIST GORACE BINARY...: scans each binary (gorace scan --json) and checks
that every window is explained by an allow-list entry. Prints every window with its
explanation (or UNEXPLAINED), and a per-binary count; exits 1 if any window is
unexplained or a binary failed to scan.

ALLOWLIST lines: VERDICT SCOPE FUNCTION OPENER REASON...
  VERDICT   observer or crash: the window's verdict must be this
  SCOPE     goVERSION/ARCH glob (fnmatch) the entry applies to, e.g. * or go1.24.*/arm64
  FUNCTION  regex, full match against the function name
  OPENER    regex, full match against the disassembly of the SP write that opens the
            window (no spaces: write \s)
"""
import fnmatch
import json
import re
import subprocess
import sys


def load(path):
    entries = []
    for n, line in enumerate(open(path), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 4)
        if len(parts) < 5 or parts[0] not in ("observer", "crash"):
            sys.exit(f"{path}:{n}: want VERDICT SCOPE FUNCTION OPENER REASON")
        v, scope, fn, opener, reason = parts
        entries.append((v, scope, re.compile(fn), re.compile(opener), reason, n))
    return entries


def main():
    allow, gorace, bins = load(sys.argv[1]), sys.argv[2], sys.argv[3:]
    bad = 0
    used = set()
    for b in bins:
        p = subprocess.run([gorace, "scan", "--json", b], capture_output=True, text=True)
        lines = [json.loads(x) for x in p.stdout.splitlines() if x.strip()]
        if len(lines) != 1 or "windows" not in lines[0]:
            print(f"{b}: scan failed: {p.stdout.strip()} {p.stderr.strip()}")
            bad += 1
            continue
        r = lines[0]
        scope = f"{r['go_version']}/{r['arch']}"
        unexplained = 0
        for w in r["windows"]:
            why = None
            first = w["instructions"][0]
            for verdict, sc, rx, op, reason, n in allow:
                if (verdict == w["verdict"] and fnmatch.fnmatch(scope, sc)
                        and rx.fullmatch(w["function"]) and op.fullmatch(first["text"])):
                    why = f"allowlist:{n}: {reason}"
                    used.add(n)
                    break
            if why is None:
                unexplained += 1
                why = "UNEXPLAINED"
            print(f"  {w['verdict']:8} {w['function']} at {w['start']} ({first['text']}): {why}")
        print(f"{b}: {scope}, {len(r['windows'])} window(s), {unexplained} unexplained")
        bad += unexplained
    unused = [e[-1] for e in allow if e[-1] not in used]
    if unused:
        print(f"note: allow-list entries matching nothing here: lines {unused}")
    sys.exit(1 if bad else 0)


main()
