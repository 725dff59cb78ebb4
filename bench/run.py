#!/usr/bin/env python3
"""gorace's benchmark: the same Go test binaries built four ways, run side by side.

Builds (not timed): no -race; -race with stock ThreadSanitizer; -race with gorace's
runtime; -race with the floor runtime (every entry point only performs the atomics: the
cost of Go's instrumentation calls alone). Then, after one warm-up round, runs the
variants alternately (ABCD ABCD ...) and reports medians of wall time, CPU time and peak
RSS, the ratios gorace/stock and gorace/floor, and the excess cost above the floor,
excess = (gorace - floor) / (stock - floor), with its geometric mean over workloads.
An excess is marked `*` (ill-conditioned) where stock is within 10% of the floor: there
its denominator is a few milliseconds of noise; the summary also gives the geometric
mean without those.

    bench/run.py [--reps N] [--only REGEX] [--json FILE]
    bench/run.py --markdown FILE    # the README's table from a --json file
"""

import argparse, json, math, os, re, resource, shutil, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STD = ["compress/flate", "encoding/json", "regexp", "sync", "strconv"]
MICRO = ["TightLoop", "SliceCopy", "MutexUncontended", "MutexContended", "RWMutexReaders",
         "ChanUnbuffered", "ChanBuffered", "Select", "WaitGroupFanOut", "AtomicAdd",
         "GoroutineChurn", "ServerLike"]
VARIANTS = ["norace", "stock", "gorace", "floor"]
# Excess is flagged ill-conditioned where stock's cost above the floor is below this
# fraction of the floor (the summary gives the geometric mean without those too).
ILL_CONDITIONED = 0.10


def sh(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        sys.exit(f"bench: {' '.join(cmd)} failed:\n{r.stdout}{r.stderr}")
    return r.stdout


def build(out, gorace):
    goroot = sh(["go", "env", "GOROOT"], env={**os.environ, "GOTOOLCHAIN": "local"}).strip()
    stock_env = {**os.environ, "GOROOT": goroot, "GOTOOLCHAIN": "local",
                 "GOCACHE": os.path.join(out, "stock-gocache")}
    bins = {}
    for pkg in STD + ["micro"]:
        name = pkg.replace("/", "_")
        target = "." if pkg == "micro" else pkg
        cwd = os.path.join(ROOT, "bench/micro") if pkg == "micro" else None
        for v in VARIANTS:
            path = os.path.join(out, f"{name}.{v}.test")
            if v == "norace":
                cmd, env = ["go", "test", "-c", "-o", path, target], stock_env
            elif v == "stock":
                cmd, env = ["go", "test", "-race", "-c", "-o", path, target], stock_env
            else:
                cmd, env = [gorace, "--runtime", v, "test", "-c", "-o", path, target], os.environ
            sh(cmd, cwd=cwd, env=env)
            bins[(pkg, v)] = path
    return goroot, bins


def workloads(goroot, bins):
    for pkg in STD:
        yield pkg, os.path.join(goroot, "src", pkg), {v: [bins[(pkg, v)], "-test.short", "-test.count=1"] for v in VARIANTS}
    for t in MICRO:
        yield f"micro/{t}", os.path.join(ROOT, "bench/micro"), {
            v: [bins[("micro", v)], f"-test.run=^Test{t}$", "-test.count=1"] for v in VARIANTS}


def measure(cmd, cwd):
    env = {**os.environ, "GORACE": "atexit_sleep_ms=0", "GOMAXPROCS": os.environ.get("GOMAXPROCS", "2")}
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    races = out.count(b"WARNING: DATA RACE")
    code = os.waitstatus_to_exitcode(status)
    if code != 0 or races:
        sys.exit(f"bench: {' '.join(cmd)} exited {code} with {races} race report(s):\n{out.decode(errors='replace')[-3000:]}")
    return {"wall": wall, "cpu": ru.ru_utime + ru.ru_stime, "rss_mb": ru.ru_maxrss / 1024}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--only", default="")
    ap.add_argument("--json", default="")
    ap.add_argument("--markdown", metavar="FILE", default="",
                    help="print the README's table and summary from a --json FILE, run nothing")
    a = ap.parse_args()
    if a.markdown:
        with open(a.markdown) as f:
            print_markdown(json.load(f))
        return
    if not shutil.which("go"):
        sys.exit("bench: no go on PATH (scripts/lib.sh ensure_go installs one)")
    gorace = os.path.join(ROOT, "target/release/gorace")
    sh(["cargo", "build", "--release", "--quiet", "-p", "gorace"], cwd=ROOT)
    out = tempfile.mkdtemp(prefix="gorace-bench-")
    try:
        goroot, bins = build(out, gorace)
        results = []
        for name, cwd, cmds in workloads(goroot, bins):
            if a.only and not re.search(a.only, name):
                continue
            for v in VARIANTS:  # warm-up: page cache, lazy binding
                measure(cmds[v], cwd)
            runs = {v: [] for v in VARIANTS}
            for _ in range(a.reps):
                for v in VARIANTS:
                    runs[v].append(measure(cmds[v], cwd))
            med = {v: {k: statistics.median(r[k] for r in runs[v]) for k in ("wall", "cpu", "rss_mb")} for v in VARIANTS}
            row = {"workload": name, "median": med}
            for k in ("wall", "cpu", "rss_mb"):
                g, s, f = med["gorace"][k], med["stock"][k], med["floor"][k]
                row[f"gorace/stock {k}"] = g / s
                row[f"gorace/floor {k}"] = g / f
                row[f"excess {k}"] = max(g - f, 0) / (s - f) if s > f else float("nan")
                # TSan's own cost below a tenth of the floor: a few milliseconds of noise
                # move such a ratio by whole units (TightLoop: stock within 0-15% of floor).
                row[f"ill-conditioned {k}"] = s - f < ILL_CONDITIONED * f
            results.append(row)
            print_row(row, header=len(results) == 1)
        summary = {}
        for k in ("wall", "rss_mb"):
            xs = [r[f"excess {k}"] for r in results if r[f"excess {k}"] == r[f"excess {k}"]]
            # A workload where gorace is at the floor has excess 0; bound it below for
            # the geometric mean (1% of TSan's excess).
            summary[f"geomean excess {k}"] = math.exp(statistics.mean(math.log(max(x, 0.01)) for x in xs)) if xs else None
        for k in ("wall", "rss_mb"):
            well = [r[f"excess {k}"] for r in results
                    if not r[f"ill-conditioned {k}"] and r[f"excess {k}"] == r[f"excess {k}"]]
            summary[f"ill-conditioned {k}"] = [r["workload"] for r in results if r[f"ill-conditioned {k}"]]
            summary[f"geomean excess {k}, well-conditioned only"] = (
                math.exp(statistics.mean(math.log(max(x, 0.01)) for x in well)) if well else None)
        summary["slower than stock"] = [r["workload"] for r in results if r["gorace/stock wall"] > 1]
        summary["larger than stock"] = [r["workload"] for r in results if r["gorace/stock rss_mb"] > 1]
        print()
        for k, v in summary.items():
            print(f"{k}: {v:.3f}" if isinstance(v, float) else f"{k}: {v}")
        doc = {"reps": a.reps, "cpus": os.cpu_count(), "results": results, "summary": summary}
        if a.json:
            with open(a.json, "w") as f:
                json.dump(doc, f, indent=1)
        else:
            print(json.dumps(doc))
    finally:
        shutil.rmtree(out, ignore_errors=True)


def print_row(r, header):
    if header:
        print(f"{'workload':24} {'norace':>7} {'floor':>7} {'stock':>7} {'gorace':>7} {'g/stock':>7} {'g/floor':>7} {'excess':>7} | "
              f"{'RSS MB: floor':>13} {'stock':>6} {'gorace':>6} {'excess':>7}")
    m = r["median"]
    print(f"{r['workload']:24} {m['norace']['wall']:7.2f} {m['floor']['wall']:7.2f} {m['stock']['wall']:7.2f} {m['gorace']['wall']:7.2f} "
          f"{r['gorace/stock wall']:7.2f} {r['gorace/floor wall']:7.2f} {excess(r, 'wall')} | "
          f"{m['floor']['rss_mb']:13.0f} {m['stock']['rss_mb']:6.0f} {m['gorace']['rss_mb']:6.0f} {excess(r, 'rss_mb')}", flush=True)


def print_markdown(doc):
    """The README's table (Markdown) and summary from a run's JSON document."""
    print("| workload | no -race | floor | stock TSan | gorace | gorace/stock | gorace/floor "
          "| excess (wall) | RSS floor / stock / gorace | excess (RSS) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in doc["results"]:
        m = r["median"]
        print(f"| {r['workload']} | {m['norace']['wall']:.2f} | {m['floor']['wall']:.2f} | {m['stock']['wall']:.2f} "
              f"| {m['gorace']['wall']:.2f} | {r['gorace/stock wall']:.2f} | {r['gorace/floor wall']:.2f} "
              f"| {excess(r, 'wall').strip()} | {m['floor']['rss_mb']:.0f} / {m['stock']['rss_mb']:.0f} / "
              f"{m['gorace']['rss_mb']:.0f} | {excess(r, 'rss_mb').strip()} |")
    print()
    for k, v in doc["summary"].items():
        print(f"- {k}: {v:.3f}" if isinstance(v, float) else f"- {k}: {v}")


def excess(r, k):
    """The excess, marked `*` where stock is within ILL_CONDITIONED of the floor."""
    return f"{r[f'excess {k}']:6.2f}{'*' if r[f'ill-conditioned {k}'] else ' '}"


if __name__ == "__main__":
    main()
