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
time of each and Python / C. Both load the same libgmle (GMLE_LIBRARY is
set to the one beside bench_api unless given).

  python3 bench/python_overhead.py [--bench-api build/bench/bench_api]
      [--rows N] [--dim D] [--classes C] [--dtype f32|f64] [--repeats R]
      [--rounds K] [--json PATH]

Build bench_api with: cmake --build build --target bench_api (GMLE_BUILD_BENCH=ON).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time


def best_of(fn, repeats):
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


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
        c_fit = c_pred = py_fit = py_pred = float("inf")
        device = ""
        for _ in range(a.rounds):
            out = subprocess.run(
                [api, os.path.join(tmp, "X.bin"), os.path.join(tmp, "y.bin"),
                 str(N), str(D), str(C), a.dtype, str(a.repeats)],
                check=True, capture_output=True, text=True).stdout
            r = json.loads(out)
            c_fit, c_pred = min(c_fit, r["fit_s"]), min(c_pred,
                                                         r["predict_s"])
            device = r["device"]
            est = gmle.GaussianClassifier(backend="cpu")
            py_fit = min(py_fit, best_of(lambda: est.fit(X, y), a.repeats))
            py_pred = min(py_pred, best_of(lambda: est.predict(X),
                                           a.repeats))
    rec = {"record": "python_overhead", "rows": N, "dim": D, "classes": C,
           "dtype": a.dtype, "device": device,
           "library": gmle.library_path(),
           "c_fit_s": c_fit, "py_fit_s": py_fit,
           "fit_ratio": py_fit / c_fit,
           "c_predict_s": c_pred, "py_predict_s": py_pred,
           "predict_ratio": py_pred / c_pred}
    print(f"{N} x {D} {a.dtype}, {C} classes, full; {device}")
    print(f"{'':10}{'C API':>10}{'Python':>10}{'Python/C':>10}")
    for k in ("fit", "predict"):
        print(f"{k:10}{rec['c_' + k + '_s']:10.4f}{rec['py_' + k + '_s']:10.4f}"
              f"{rec[k + '_ratio']:10.3f}")
    if a.json:
        with open(a.json, "a") as f:
            f.write(json.dumps(rec) + "\n")


if __name__ == "__main__":
    main()
