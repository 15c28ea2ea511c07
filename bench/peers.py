#!/usr/bin/env python3
"""peers.py -- what gmle's fit and scoring are compared against.

On the shapes of bench_cpu (D in {13, 40, 128}, C in {10, 1000}, full and
diag covariance) with the same generator semantics (class-conditional
Gaussians, float32, |mean|/std about 1e4, neighbouring features correlated,
uniformly random labels; NumPy's RNG, so not the same numbers), it times

  numpy_xtx          X.T @ X on the float32 matrix: one uncentred Gram over
                     all rows, no classes (the BLAS lower bound for a fit);
  qda_fit            QuadraticDiscriminantAnalysis(store_covariance=True).fit
  qda_logproba       ... .predict_log_proba               (full shapes)
  gnb_fit            GaussianNB().fit
  gnb_logproba       ... .predict_log_proba               (diag shapes)

and reports rows/s. The slow peers run on fewer rows (reported); every timing
is repeated until it lasts at least --min-time seconds and the best is kept.
Threads are whatever NumPy / scikit-learn use by default.

Output: a table on stdout; with --json PATH, one JSON object per line
({"record": "peer", "peer": ..., "D", "C", "cov", "n", "mrows_s", ...}).
Needs the pip packages numpy and scikit-learn.
"""
import argparse
import json
import platform
import sys
import time
import warnings

import numpy as np

try:
    import sklearn
    from sklearn.discriminant_analysis import QuadraticDiscriminantAnalysis
    from sklearn.naive_bayes import GaussianNB
except ImportError:  # reported, not fatal: numpy_xtx still runs
    sklearn = None

DIMS = (13, 40, 128)
CLASSES = (10, 1000)
COVS = ("full", "diag")
MEAN_OVER_STD = 1e4


def rows_for_dim(d, quick):
    """The row counts of bench_cpu (buffers far larger than L3)."""
    n = 4_000_000 if d <= 16 else 2_000_000 if d <= 64 else 1_000_000
    return n // 8 if quick else n


def generate(n, d, c, seed):
    """Class-conditional Gaussians as in bench_cpu.c: per class and feature a
    std in [0.5, 2] and a mean of +-1e4 std (1 + u/4);
    x_j = m_j + s_j (z_j + 0.6 z_{j-1}) / sqrt(1.36)."""
    rng = np.random.default_rng(seed)
    sd = 0.5 + 1.5 * rng.random((c, d))
    sign = np.where(rng.random((c, d)) < 0.5, -1.0, 1.0)
    mean = sign * MEAN_OVER_STD * sd * (1.0 + 0.25 * rng.random((c, d)))
    labels = rng.integers(0, c, size=n, dtype=np.int32)
    x = np.empty((n, d), dtype=np.float32)
    rho = 0.6
    norm = 1.0 / np.sqrt(1.0 + rho * rho)
    step = 1 << 18
    for r0 in range(0, n, step):
        r1 = min(n, r0 + step)
        z = rng.standard_normal((r1 - r0, d))
        z[:, 1:] = (z[:, 1:] + rho * z[:, :-1]) * norm
        lab = labels[r0:r1]
        x[r0:r1] = mean[lab] + sd[lab] * z
    return x, labels


def best_time(fn, min_time, reps, budget):
    """Best seconds per call of fn(): calls are grouped so that each group
    lasts >= min_time; `reps` groups, fewer if the total passes `budget`."""
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    per_group = max(1, int(np.ceil(min_time / max(first, 1e-9))))
    best = first
    spent = first
    for _ in range(reps):
        if spent > budget:
            break
        t0 = time.perf_counter()
        for _ in range(per_group):
            fn()
        dt = time.perf_counter() - t0
        spent += dt
        best = min(best, dt / per_group)
    return best


def rows_for_time(fn_rows, n_max, min_time, start):
    """Grow a row count until one call of fn_rows(n) takes >= min_time / 4,
    then scale it to about min_time; capped at n_max."""
    n = min(start, n_max)
    while True:
        t0 = time.perf_counter()
        fn_rows(n)
        dt = time.perf_counter() - t0
        if dt >= min_time / 4 or n >= n_max:
            break
        n = min(n_max, n * 4)
    return int(min(n_max, max(n, n * min_time / max(dt, 1e-9))))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="smaller data, shorter timings")
    ap.add_argument("--min-time", type=float, default=None)
    ap.add_argument("--reps", type=int, default=None)
    ap.add_argument("--only", default=None,
                    help="comma-separated D:C:cov shapes, e.g. 40:10:full")
    ap.add_argument("--json", default=None, help="write JSON lines here")
    args = ap.parse_args()
    min_time = args.min_time or (0.05 if args.quick else 0.3)
    reps = args.reps or (1 if args.quick else 3)
    budget = 2.0 if args.quick else 8.0
    only = set(args.only.split(",")) if args.only else None
    warnings.filterwarnings("ignore")

    jf = open(args.json, "w") if args.json else None

    def emit(rec):
        rec = {"record": "peer", **rec}
        if jf:
            jf.write(json.dumps(rec) + "\n")
            jf.flush()
        print(f"{rec['peer']:<14} {rec['D']:>4} {rec['C']:>5} "
              f"{rec.get('cov', '-'):<4} {rec['n']:>9} "
              f"{rec['mrows_s']:>12.5g}", flush=True)

    info = {
        "record": "peers_info",
        "python": platform.python_version(),
        "numpy": np.__version__,
        "sklearn": sklearn.__version__ if sklearn else None,
    }
    try:
        from threadpoolctl import threadpool_info
        info["threadpools"] = [
            {k: p.get(k) for k in ("internal_api", "num_threads",
                                   "architecture", "version")}
            for p in threadpool_info()]
    except ImportError:
        pass
    if jf:
        jf.write(json.dumps(info) + "\n")
    print(f"numpy {info['numpy']}, scikit-learn {info['sklearn']}, "
          f"threadpools: {info.get('threadpools', '?')}")
    if sklearn is None:
        print("scikit-learn is not installed: only numpy_xtx is measured",
              file=sys.stderr)
    print(f"{'peer':<14} {'D':>4} {'C':>5} {'cov':<4} {'N':>9} "
          f"{'Mrows/s':>12}")

    def wanted(d, c, cov):
        return only is None or f"{d}:{c}:{cov}" in only

    xtx_done = set()
    for d in DIMS:
        for c in CLASSES:
            covs = [cov for cov in COVS if wanted(d, c, cov)]
            if not covs:
                continue
            n = rows_for_dim(d, args.quick)
            x, y = generate(n, d, c, 1000 * d + c)

            if d not in xtx_done:
                xtx_done.add(d)
                t = best_time(lambda: x.T @ x, min_time, reps, budget)
                emit({"peer": "numpy_xtx", "D": d, "C": 1, "cov": "-",
                      "n": n, "mrows_s": n / t * 1e-6, "seconds": t})
            if sklearn is None:
                continue

            for cov in covs:
                if cov == "full":
                    # At least 3D rows per class so every covariance is full
                    # rank (QDA's svd solver requires more rows than D).
                    nq = min(n, max(100_000, 3 * d * c))
                    xq, yq = x[:nq], y[:nq]
                    mk = lambda: QuadraticDiscriminantAnalysis(
                        store_covariance=True)
                    fit_name, score_name = "qda_fit", "qda_logproba"
                else:
                    nq = min(n, max(100_000, 20 * c))
                    xq, yq = x[:nq], y[:nq]
                    mk = GaussianNB
                    fit_name, score_name = "gnb_fit", "gnb_logproba"
                t = best_time(lambda: mk().fit(xq, yq), min_time, reps,
                              budget)
                emit({"peer": fit_name, "D": d, "C": c, "cov": cov,
                      "n": nq, "mrows_s": nq / t * 1e-6, "seconds": t})
                model = mk().fit(xq, yq)
                ns = rows_for_time(lambda k: model.predict_log_proba(x[:k]),
                                   n, min_time, 1024)
                t = best_time(lambda: model.predict_log_proba(x[:ns]),
                              min_time, reps, budget)
                emit({"peer": score_name, "D": d, "C": c, "cov": cov,
                      "n": ns, "mrows_s": ns / t * 1e-6, "seconds": t})
            del x, y
    if jf:
        jf.close()


if __name__ == "__main__":
    main()
