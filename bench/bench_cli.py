#!/usr/bin/env python3
"""bench_cli.py -- the gmle command's rate against the library's on the same
data (issue 17, item 1).

It writes, once, N x D float32 rows of C Gaussian classes as X.npy with
their labels as int64 y.npy and as text y.txt, a CSV (fewer rows: CSV is
slow to parse) with its labels, warms the page cache with them, and then,
alternating, times over --runs rounds (the best of each is kept; the
machine may be shared):
  lib        bench_cli_lib: gmle_stats_add + gmle_fit, gmle_score(LOGLIK),
             gmle_score(LABEL) on the rows in memory, in the commands'
             batches, once with the default idle-thread settings and once
             with the command's (OMP_WAIT_POLICY=PASSIVE,
             OPENBLAS_THREAD_TIMEOUT=4); the library's rate is the better
             of the two;
  read       each reader's own rate (bench_cli_lib --read);
  commands   gmle fit X.npy --labels y.npy (int64), --labels y.txt (text),
             a CSV with --labels; gmle score (log-likelihoods, float64, as
             the library's); gmle classify --truth y.npy; for each build
             given (--gmle, and --before for an A/B), alternating builds
             within a round.
Each figure is printed as seconds, Mrows/s and its ratio to the library's
rate for the same work (fit, score or classify). With --before, the outputs
of the two builds (models, scores, predictions) are compared with cmp: they
must be byte-identical.

  python3 bench/bench_cli.py [--gmle PATH] [--before PATH] [--lib PATH]
         [--rows N] [--dim D] [--classes C] [--csv-rows N] [--runs K]
         [--dir DIR] [--backend B] [--batch-rows N] [--markdown]

Needs python3 with numpy. Exit status 1 when --before outputs differ.
"""
import argparse
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def make_data(d, rows, dim, classes, csv_rows):
    import numpy as np
    tag = "%d_%d_%d" % (rows, dim, classes)
    paths = {k: os.path.join(d, "%s_%s%s" % (k, tag, ext)) for k, ext in
             [("X", ".npy"), ("y", ".npy"), ("yt", ".txt")]}
    paths["csv"] = os.path.join(d, "Xcsv_%d_%d_%d.csv" % (csv_rows, dim, classes))
    paths["ycsv"] = os.path.join(d, "ycsv_%d_%d_%d.txt" % (csv_rows, dim, classes))
    if all(os.path.exists(p) for p in paths.values()):
        return paths
    rng = np.random.default_rng(17)
    y = rng.integers(0, classes, rows).astype(np.int64)
    mu = rng.normal(0, 3, (classes, dim)).astype(np.float32)
    X = rng.standard_normal((rows, dim), dtype=np.float32) + mu[y]
    np.save(paths["X"], X)
    np.save(paths["y"], y)
    np.savetxt(paths["yt"], y, fmt="%d")
    np.savetxt(paths["csv"], X[:csv_rows], fmt="%.9g", delimiter=",")
    np.savetxt(paths["ycsv"], y[:csv_rows], fmt="%d")
    return paths


def warm(paths):
    for p in paths:
        with open(p, "rb") as f:
            while f.read(1 << 24):
                pass


def timed(cmd, env=None):
    t0 = time.perf_counter()
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=env)
    t = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit("failed (%d): %s\n%s" % (r.returncode, " ".join(cmd),
                                          r.stderr.decode(errors="replace")))
    return t, r.stdout.decode()


def lib_rates(lib, X, y, env, batch):
    _, out = timed([lib, X, y, "--reps", "3", "--batch", str(batch or 65536)],
                   env)
    return {f[0]: float(f[2]) for f in (l.split() for l in out.splitlines())}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gmle", default=os.path.join(ROOT, "build/tools/gmle"))
    ap.add_argument("--before", help="a second gmle build, for an A/B")
    ap.add_argument("--lib", default=os.path.join(ROOT, "build/bench/bench_cli_lib"))
    ap.add_argument("--rows", type=int, default=2000000)
    ap.add_argument("--dim", type=int, default=40)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--csv-rows", type=int, default=200000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--dir", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "gmle-bench-cli"))
    ap.add_argument("--backend", default="cpu")
    ap.add_argument("--batch-rows", type=int, default=0,
                    help="for the commands and the library (0: the commands' "
                         "default, 65536 for the library)")
    ap.add_argument("--markdown", action="store_true")
    a = ap.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    p = make_data(a.dir, a.rows, a.dim, a.classes, a.csv_rows)
    warm(p.values())
    out = os.path.join(a.dir, "out")
    os.makedirs(out, exist_ok=True)
    builds = [("after", a.gmle)] + ([("before", a.before)] if a.before else [])
    env_default = {k: v for k, v in os.environ.items()
                   if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT",
                                "OPENBLAS_THREAD_TIMEOUT",
                                "GOTO_THREAD_TIMEOUT")}
    env_quiet = dict(env_default, OMP_WAIT_POLICY="PASSIVE",
                     OPENBLAS_THREAD_TIMEOUT="4")
    bk = ["--backend", a.backend, "-q"]
    if a.batch_rows:
        bk += ["--batch-rows", str(a.batch_rows)]
    model = os.path.join(out, "model.npz")
    # name, rows, the library's work it is compared with, argv after gmle
    # (the output file named by {o}, the build's tag by {b}).
    cmds = [
        ("fit X.npy --labels y.npy (int64)", a.rows, "fit",
         ["fit", p["X"], "--labels", p["y"], "-o", "{o}/fit_int_{b}.npz"]),
        ("fit X.npy --labels y.txt (text)", a.rows, "fit",
         ["fit", p["X"], "--labels", p["yt"], "-o", "{o}/fit_txt_{b}.npz"]),
        ("fit X.csv --labels (CSV, %d rows)" % a.csv_rows, a.csv_rows, "fit",
         ["fit", p["csv"], "--labels", p["ycsv"], "-o", "{o}/fit_csv_{b}.npz"]),
        ("score MODEL X.npy (loglik f64)", a.rows, "score",
         ["score", model, p["X"], "-o", "{o}/score_{b}.npy"]),
        ("classify MODEL X.npy --truth y.npy", a.rows, "classify",
         ["classify", model, p["X"], "--truth", p["y"], "-o", "{o}/pred_{b}.npy"]),
    ]
    timed([a.gmle, "fit", p["X"], "--labels", p["y"], "-o", model] + bk)
    lib = {"default": {}, "quiet": {}}
    reads = {}
    best = {}
    for run in range(a.runs):
        for pol, env in (("default", env_default), ("quiet", env_quiet)):
            for k, v in lib_rates(a.lib, p["X"], p["y"], env,
                                  a.batch_rows).items():
                lib[pol][k] = max(lib[pol].get(k, 0), v)
        _, rd = timed([a.lib, "--read", p["X"], p["y"] + ":labels",
                       p["yt"] + ":labels", p["csv"], p["ycsv"] + ":labels"])
        for f in (l.split() for l in rd.splitlines()):
            reads[f[0]] = max(reads.get(f[0], 0), float(f[2]))
        for name, rows, _, argv in cmds:
            order = builds if run % 2 == 0 else builds[::-1]
            for tag, g in order:
                args = [s.replace("{o}", out).replace("{b}", tag) for s in argv]
                t, _ = timed([g] + args + bk, env_default)
                key = (name, tag)
                best[key] = min(best.get(key, 1e300), t)
        print("round %d/%d done" % (run + 1, a.runs), file=sys.stderr)
    libr = {k: max(lib["default"].get(k, 0), lib["quiet"].get(k, 0))
            for k in ("fit", "score", "classify")}
    rows = []
    for w in ("fit", "score", "classify"):
        rows.append(("library %s (default / quiet idle threads)" % w,
                     "%.1f / %.1f" % (lib["default"][w], lib["quiet"][w]),
                     "", ""))
    for k, v in reads.items():
        rows.append(("reader " + k.split(":", 2)[1] + " " +
                     os.path.basename(k.split(":", 2)[2]), "%.1f" % v, "", ""))
    for name, n, work, _ in cmds:
        for tag, _ in builds:
            t = best[(name, tag)]
            r = n / t / 1e6
            rows.append(("gmle " + name + ("" if len(builds) == 1 else " [%s]" % tag),
                         "%.1f" % r, "%.3f" % t, "%.0f%%" % (100 * r / libr[work])))
    if a.markdown:
        print("| what | Mrows/s | best s | of the library's rate |")
        print("|---|---:|---:|---:|")
        for r in rows:
            print("| %s | %s | %s | %s |" % r)
    else:
        for r in rows:
            print("%-58s %12s %8s %6s" % r)
    status = 0
    if a.before:
        for name, _, _, argv in cmds:
            o = [s for s in argv if "{o}" in s][0]
            fa = o.replace("{o}", out).replace("{b}", "after")
            fb = o.replace("{o}", out).replace("{b}", "before")
            same = subprocess.run(["cmp", "-s", fa, fb]).returncode == 0
            print("%s: %s" % (os.path.basename(fa).replace("_after", ""),
                              "identical" if same else "DIFFERENT"))
            status |= not same
    return status


if __name__ == "__main__":
    sys.exit(main())
