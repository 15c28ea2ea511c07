#!/usr/bin/env python3
"""python_overhead.py -- the Python package's overhead over the C API.

For N rows x D features (default 10^6 x 40, float32, C = 10 classes, full
covariance) it times, best of --repeats after a warm-up, on the CPU backend:

  C API   (bench_api, a C program over libgmle): statistics in the CLI's
          batches + gmle_fit; gmle_score(GMLE_OUT_LABEL) of every row;
  Python  gmle.GaussianClassifier(backend="cpu").fit(X, y) with y the
          int64 labels a user has, and .predict(X) (labels back in the
          user's terms);

alternating the two --rounds times (a shared machine), and prints the best
wall time and the best process CPU time (all threads; steadier than wall
time when other programs share the cores) of each, and Python / C. Both
load the same libgmle (GMLE_LIBRARY is set to the one beside bench_api
unless given).

On a busy machine the two processes' times differ by more than the
overhead itself, so it also splits each Python call, in the same run, into
the time spent inside library calls (every call goes through
gmle._core.Context.call) and the rest, the package's own Python work
(validation, labels, arrays, results): "python_side" below, best of the
repeats, and its share of the library's time.

  python3 bench/python_overhead.py [--bench-api build/bench/bench_api]
      [--rows N] [--dim D] [--classes C] [--dtype f32|f64] [--repeats R]
      [--rounds K] [--json PATH]

Build bench_api with: cmake --build build --target bench_api
(GMLE_BUILD_BENCH=ON, the default).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time


def best_of(fn, repeats):
    """(wall, process CPU time) of fn, each the best of the repeats."""
    fn()  # warm-up
    wall = cpu = float("inf")
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall = min(wall, time.perf_counter() - t0)
        cpu = min(cpu, time.process_time() - c0)
    return wall, cpu


def split_of(fn, repeats):
    """(time in library calls, time outside them) of fn, each the best of
    the repeats."""
    from gmle import _core
    inside = [0.0]
    orig = _core.Context.call

    def timed(self, *args, **kw):
        t0 = time.perf_counter()
        try:
            return orig(self, *args, **kw)
        finally:
            inside[0] += time.perf_counter() - t0
    _core.Context.call = timed
    try:
        fn()
        best_in = best_out = float("inf")
        for _ in range(repeats):
            inside[0] = 0.0
            t0 = time.perf_counter()
            fn()
            total = time.perf_counter() - t0
            best_in = min(best_in, inside[0])
            best_out = min(best_out, total - inside[0])
    finally:
        _core.Context.call = orig
    return best_in, best_out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--bench-api", default=os.path.join(
        here, "..", "build", "bench", "bench_api"))
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=40)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--dtype", choices=["f32", "f64"], default="f32")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--json")
    a = ap.parse_args()
    api = os.path.abspath(a.bench_api)
    if not os.access(api, os.X_OK):
        sys.exit(f"{api}: not built (cmake --build build --target bench_api)")
    lib = os.path.join(os.path.dirname(os.path.dirname(api)), "libgmle.so")
    if "GMLE_LIBRARY" not in os.environ and os.path.exists(lib):
        os.environ["GMLE_LIBRARY"] = lib

    import numpy as np
    import gmle

    rng = np.random.default_rng(0)
    N, D, C = a.rows, a.dim, a.classes
    dt = np.float32 if a.dtype == "f32" else np.float64
    y = rng.integers(0, C, size=N)  # int64, as users have them
    centres = rng.normal(scale=3.0, size=(C, D))
    X = (centres[y] + rng.normal(size=(N, D))).astype(dt)

    with tempfile.TemporaryDirectory() as tmp:
        X.tofile(os.path.join(tmp, "X.bin"))
        y.astype(np.int32).tofile(os.path.join(tmp, "y.bin"))
        inf = float("inf")
        best = {k: inf for k in ("c_fit_s", "c_predict_s", "py_fit_s",
                                 "py_predict_s", "c_fit_cpu_s",
                                 "c_predict_cpu_s", "py_fit_cpu_s",
                                 "py_predict_cpu_s")}
        device = ""
        for _ in range(a.rounds):
            out = subprocess.run(
                [api, os.path.join(tmp, "X.bin"), os.path.join(tmp, "y.bin"),
                 str(N), str(D), str(C), a.dtype, str(a.repeats)],
                check=True, capture_output=True, text=True).stdout
            r = json.loads(out)
            device = r["device"]
            est = gmle.GaussianClassifier(backend="cpu")
            times = {"fit": best_of(lambda: est.fit(X, y), a.repeats),
                     "predict": best_of(lambda: est.predict(X), a.repeats)}
            for k in ("fit", "predict"):
                for key, v in ((f"c_{k}_s", r[f"{k}_s"]),
                               (f"c_{k}_cpu_s", r[f"{k}_cpu_s"]),
                               (f"py_{k}_s", times[k][0]),
                               (f"py_{k}_cpu_s", times[k][1])):
                    best[key] = min(best[key], v)
        split = {"fit": split_of(lambda: est.fit(X, y), a.repeats),
                 "predict": split_of(lambda: est.predict(X), a.repeats)}
    rec = {"record": "python_overhead", "rows": N, "dim": D, "classes": C,
           "dtype": a.dtype, "device": device,
           "library": gmle.library_path(),
           **best}
    for k in ("fit", "predict"):
        rec[f"{k}_ratio"] = best[f"py_{k}_s"] / best[f"c_{k}_s"]
        rec[f"{k}_cpu_ratio"] = best[f"py_{k}_cpu_s"] / best[f"c_{k}_cpu_s"]
    for k, (lib_s, py_s) in split.items():
        rec[f"{k}_library_s"] = lib_s
        rec[f"{k}_python_side_s"] = py_s
        rec[f"{k}_python_share"] = py_s / lib_s
    print(f"{N} x {D} {a.dtype}, {C} classes, full; {device}")
    print(f"{'':10}{'C API':>10}{'Python':>10}{'Python/C':>10}"
          f"{'C cpu':>10}{'Py cpu':>10}{'cpu P/C':>10}")
    for k in ("fit", "predict"):
        cols = (rec[f"c_{k}_s"], rec[f"py_{k}_s"], rec[f"{k}_ratio"],
                rec[f"c_{k}_cpu_s"], rec[f"py_{k}_cpu_s"],
                rec[f"{k}_cpu_ratio"])
        print(f"{k:10}" + "".join(f"{v:10.4f}" for v in cols))
    print(f"{'':10}{'library':>10}{'python':>10}{'share':>10}   (in the "
          "Python calls)")
    for k in ("fit", "predict"):
        print(f"{k:10}{rec[k + '_library_s']:10.4f}"
              f"{rec[k + '_python_side_s']:10.4f}"
              f"{rec[k + '_python_share']:10.3f}")
    if a.json:
        with open(a.json, "a") as f:
            f.write(json.dumps(rec) + "\n")


if __name__ == "__main__":
    main()
