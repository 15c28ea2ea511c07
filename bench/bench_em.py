#!/usr/bin/env python3
"""bench_em.py -- the cost of one EM iteration: gmle (CPU and OpenCL,
through the command) beside scikit-learn's GaussianMixture from the same
start on the same data, and the machine's GEMM rate, in the same run
(issue 13, item 7).

Shapes: D = 40, N = 10^6 float32 rows (--quick: 2 * 10^4), diag K = 64,
diag K = 256 and full K = 16. The data is a 64-component diagonal mixture
(means N(0, 3^2), standard deviations 0.5 .. 2), written once as a .npy
file; every fit starts from the same parameters (K distinct rows as means,
the data's covariance for every component, equal weights): gmle through
--init-model (an np.savez file), scikit-learn through weights_init,
means_init and precisions_init in float32 (so that it runs in float32
throughout, its fastest path).

One EM iteration is the slope between --max-iter 1 and --max-iter 3
(max_iter for scikit-learn), with tol 0: (t3 - t1) / 2, which removes
reading the start, the process start, the model's save and every other
constant cost. Each run is repeated --repeat times and the fastest kept.
Also timed: `gmle score --what density` with the fitted model (the E-step
alone, plus one read of the file), and numpy float32 / float64 matmul of
the E-step's shapes in blocks of 65536 rows ((rows, D) @ (D, K) for diag,
(rows, D) @ (D, K*D) for full): the machine's GEMM rate.

Rates: rows/s = N / s_per_iter; nkd_per_s = N*K*D / s_per_iter; model
GFLOP/s counts a diagonal iteration as 8 N K D flops (E-step: x^2 and x
against K precision-weighted columns, 4 N K D; M-step: the responsibility-
weighted sums of x and x^2, 4 N K D) and a full one as 4 N K D^2 (the
whitening products and the K Gram matrices), the E-step alone as half.

Output: one JSON object per line on stdout (record: machine, gemm, em,
estep, summary: per shape the speed-up of each gmle backend over
scikit-learn per iteration and the E-step's share of the float32 GEMM
rate; error: a gmle run that failed); --json PATH writes them there too.
Progress on stderr. Needs numpy and scikit-learn (pip), and a built gmle
(--gmle, default build/tools/gmle).
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHAPES = (("diag", 64), ("diag", 256), ("full", 16))
D = 40
BLOCK = 65536


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def make_data(n, seed=1):
    """float32 rows of a 64-component diagonal mixture, in blocks."""
    rng = np.random.default_rng(seed)
    k_true = 64
    means = rng.normal(0.0, 3.0, (k_true, D))
    sds = 0.5 + 1.5 * rng.random((k_true, D))
    x = np.empty((n, D), np.float32)
    for r0 in range(0, n, 1 << 18):
        r1 = min(n, r0 + (1 << 18))
        lab = rng.integers(0, k_true, r1 - r0)
        x[r0:r1] = means[lab] + sds[lab] * rng.standard_normal((r1 - r0, D))
    return x


def start(x, cov, k, seed=2):
    """Equal weights, K distinct rows as means, the data's covariance (its
    diagonal for diag) for every component (float64)."""
    rng = np.random.default_rng(seed)
    means = x[rng.choice(len(x), k, replace=False)].astype(np.float64)
    c = np.cov(x[:200000].T.astype(np.float64))
    covs = np.repeat((np.diag(c) if cov == "diag" else c)[None], k, axis=0)
    return np.full(k, 1.0 / k), means, covs


def best_of(repeat, fn):
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def gemm_rate(dtype, n, cols, repeat):
    """GFLOP/s of (rows, D) @ (D, cols) over n rows in blocks of BLOCK (at
    least 0.25 s of products per timing, so that small n still measures)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((min(n, BLOCK), D)).astype(dtype)
    b = rng.standard_normal((D, cols)).astype(dtype)
    out = np.empty((len(a), cols), dtype)
    t0 = time.perf_counter()
    np.matmul(a, b, out=out)
    once = max(time.perf_counter() - t0, 1e-6)
    blocks = max(n // len(a), int(np.ceil(0.25 / once)))

    def run():
        for _ in range(blocks):
            np.matmul(a, b, out=out)

    t = best_of(max(repeat, 2), run)
    return 2.0 * blocks * len(a) * D * cols / t * 1e-9


def flops(cov, n, k, estep_only=False):
    f = 8.0 * n * k * D if cov == "diag" else 4.0 * n * k * D * D
    return f / 2 if estep_only else f


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="2 * 10^4 rows, one repetition: checks it works")
    ap.add_argument("--rows", type=int, default=None)
    ap.add_argument("--repeat", type=int, default=None)
    ap.add_argument("--gmle", default=os.path.join(ROOT, "build", "tools",
                                                   "gmle"))
    ap.add_argument("--backends", default="cpu,opencl")
    ap.add_argument("--no-sklearn", action="store_true")
    ap.add_argument("--only", default=None,
                    help="comma-separated cov:K shapes, e.g. diag:64")
    ap.add_argument("--json", default=None, help="write JSON lines here too")
    ap.add_argument("--workdir", default=None,
                    help="where the data file goes (default: a temporary "
                         "directory, removed at the end)")
    args = ap.parse_args()
    n = args.rows or (20_000 if args.quick else 1_000_000)
    repeat = args.repeat or (1 if args.quick else 2)
    shapes = [s for s in SHAPES
              if not args.only or "%s:%d" % s in args.only.split(",")]
    jf = open(args.json, "w") if args.json else None

    def emit(rec):
        line = json.dumps(rec)
        print(line, flush=True)
        if jf:
            jf.write(line + "\n")
            jf.flush()

    devices = subprocess.run([args.gmle, "devices"], capture_output=True,
                             text=True).stdout
    backends = []
    for b in args.backends.split(","):
        section = devices.split(b + ":", 1)[-1].split("\n", 2)[1] \
            if b + ":" in devices else ""
        if "device 0" in section:
            backends.append(b)
        else:
            log("%s: no device (%s), not measured" % (b, section.strip()))
    sklearn = gaussian_mixture = None
    if not args.no_sklearn:
        try:
            import sklearn
            from sklearn.mixture import GaussianMixture as gaussian_mixture
        except ImportError:
            log("scikit-learn is not installed: not measured")
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f
                        if line.startswith("model name")), "")
    except OSError:
        pass
    version = subprocess.run([args.gmle, "--version"], capture_output=True,
                             text=True).stdout.strip()
    emit({"record": "machine", "cpu": cpu, "cores": os.cpu_count(),
          "python": platform.python_version(), "numpy": np.__version__,
          "sklearn": sklearn.__version__ if sklearn else None,
          "gmle": version, "backends": backends, "N": n, "D": D,
          "repeat": repeat,
          "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
          "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})

    work = args.workdir or tempfile.mkdtemp(prefix="bench_em_")
    os.makedirs(work, exist_ok=True)
    data = os.path.join(work, "x.npy")
    log("writing %d x %d float32 rows to %s" % (n, D, data))
    x = make_data(n)
    np.save(data, x)

    gemm = {}
    for dtype in (np.float32, np.float64):
        for cols in sorted({k if cov == "diag" else k * D
                            for cov, k in shapes}):
            rate = gemm_rate(dtype, n, cols, repeat)
            gemm[(np.dtype(dtype).name, cols)] = rate
            emit({"record": "gemm", "dtype": np.dtype(dtype).name, "rows": n,
                  "inner": D, "cols": cols, "block_rows": BLOCK,
                  "gflops": rate})

    try:
        for cov, k in shapes:
            run_shape(args, emit, x, data, work, cov, k, n, repeat, backends,
                      gaussian_mixture, gemm)
    finally:
        if not args.workdir:
            for f in os.listdir(work):
                os.remove(os.path.join(work, f))
            os.rmdir(work)


def run_shape(args, emit, x, data, work, cov, k, n, repeat, backends,
              gaussian_mixture, gemm):
    weights, means, covs = start(x, cov, k)
    init = os.path.join(work, "init_%s_%d.npz" % (cov, k))
    np.savez(init, weights=weights, means=means, covariances=covs,
             covariance_type=np.array(cov))
    cols = k if cov == "diag" else k * D
    shape = {"cov": cov, "K": k, "D": D, "N": n, "dtype": "float32"}
    per_iter = {}
    estep_of_gemm = {}

    def record(impl, backend, t1, t3):
        s = (t3 - t1) / 2.0
        rec = {"record": "em", "impl": impl, "backend": backend, **shape,
               "t_1iter": t1, "t_3iter": t3, "s_per_iter": s}
        if s <= 0:  # noise larger than two iterations (tiny --rows)
            emit({**rec, "note": "t_3iter <= t_1iter: no slope"})
            return
        per_iter[impl if backend is None else "gmle_" + backend] = s
        emit({**rec, "rows_per_s": n / s, "nkd_per_s": n * k * D / s,
              "model_gflops": flops(cov, n, k) / s * 1e-9})

    def gmle(backend, *argv):
        """Seconds of the fastest of `repeat` runs of gmle, or None (an
        error record) when it fails."""
        cmd = [args.gmle, *argv, "--backend", backend, "-q"]
        try:
            return best_of(repeat, lambda: subprocess.run(
                cmd, check=True, stderr=subprocess.PIPE, text=True))
        except subprocess.CalledProcessError as e:
            emit({"record": "error", "backend": backend, **shape,
                  "command": " ".join(cmd[1:]), "exit": e.returncode,
                  "stderr": e.stderr.strip()})
            return None

    for backend in backends:
        model = os.path.join(work, "m_%s.npz" % backend)
        times = []
        for n_iter in (1, 3):
            log("gmle %s %s K=%d, %d iteration(s)" % (backend, cov, k,
                                                      n_iter))
            times.append(gmle(backend, "fit", data, "--components", str(k),
                              "--cov", cov, "--init-model", init,
                              "--max-iter", str(n_iter), "--tol", "0", "-o",
                              model))
        if None in times:
            continue
        record("gmle", backend, *times)
        t = gmle(backend, "score", model, data, "--what", "density",
                 "--dtype", "f32", "-o", os.path.join(work, "dens.npy"))
        if t is None:
            continue
        rate = flops(cov, n, k, estep_only=True) / t * 1e-9
        estep_of_gemm[backend] = rate / gemm[("float32", cols)]
        emit({"record": "estep", "impl": "gmle score --what density",
              "backend": backend, **shape, "seconds": t, "rows_per_s": n / t,
              "model_gflops": rate,
              "of_gemm_f32": rate / gemm[("float32", cols)],
              "of_gemm_f64": rate / gemm[("float64", cols)]})

    if gaussian_mixture:
        prec = 1.0 / covs if cov == "diag" else np.linalg.inv(covs)

        def fit(n_iter):
            gm = gaussian_mixture(
                k, covariance_type=cov, tol=0.0, max_iter=n_iter,
                weights_init=weights.astype(np.float32),
                means_init=means.astype(np.float32),
                precisions_init=prec.astype(np.float32),
                init_params="random_from_data", random_state=0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                gm.fit(x)

        times = []
        for n_iter in (1, 3):
            log("scikit-learn %s K=%d, %d iteration(s)" % (cov, k, n_iter))
            times.append(best_of(repeat, lambda: fit(n_iter)))
        record("sklearn", None, *times)

    summary = {"record": "summary", **shape}
    for b, frac in estep_of_gemm.items():
        summary["estep_of_gemm_f32_%s" % b] = frac
    if "sklearn" in per_iter:
        for b in (b for b in backends if "gmle_" + b in per_iter):
            summary["speedup_%s_vs_sklearn" % b] = (per_iter["sklearn"] /
                                                    per_iter["gmle_" + b])
    emit(summary)


if __name__ == "__main__":
    main()
