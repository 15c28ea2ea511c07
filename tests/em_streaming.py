"""em_streaming.py -- a mixture fitted from a .npy file several times larger
than the address space gmle is allowed (ulimit -v, set on gmle alone):
EM streams its rows, one pass per iteration (issue 13, acceptance
"Streaming").

800 MB of float32 (25 M rows x 8, tests/cli/cli_gen_npy: column j has mean
j and standard deviation 1 + j/10) under a 250 MB limit; a 4-component
diagonal mixture with k-means++ init and 3 iterations. The fitted
mixture's mean and variance per column (sum_k w_k mu_k, and the mixture's
variance) must match the generator's within 1%. Skipped under
AddressSanitizer (its shadow memory needs an unlimited address space), as
tests/cli/cli_memory_limits.sh is. GMLE_TEST_BIG_ROWS changes the row count.
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import em_lib  # noqa: E402

T = em_lib.Suite(needs=("numpy",))
np = em_lib.np

ROWS = int(os.environ.get("GMLE_TEST_BIG_ROWS", "25000000"))
COLS = 8
LIMIT_KB = 250000
ENV = {"OMP_NUM_THREADS": "2",
       "GMLE_BACKEND": "cpu"}

ldd = subprocess.run(["ldd", T.gmle], capture_output=True, text=True).stdout
if "libasan" in ldd:
    print("skip: AddressSanitizer needs an unlimited address space")
    sys.exit(em_lib.SKIP)

try:
    gen = subprocess.run([os.path.join(T.helpers, "cli_gen_npy"), "big.npy",
                          str(ROWS), str(COLS), "f32", "5"])
    if gen.returncode != 0:
        T.bad("cannot write big.npy")
        T.finish()
    size = os.path.getsize("big.npy")
    T.check(size > 3 * LIMIT_KB * 1024, "big.npy: %d MB, %.1f times the %d MB "
            "limit" % (size // 10**6, size / (LIMIT_KB * 1024.0),
                       LIMIT_KB // 1000))
    T.check(T.run("--version", limit_kb=LIMIT_KB)[0] == 0,
            "gmle starts under the limit")
    if T.gmle_ok("fit a 4-component mixture under ulimit -v %d" % LIMIT_KB,
                 "fit", "big.npy", "--components", 4, "--cov", "diag",
                 "--max-iter", 3, "--tol", 0, "--seed", 1, "-o", "big.npz",
                 "-q", limit_kb=LIMIT_KB, timeout=500, env=ENV):
        m = em_lib.load("big.npz")
        w, mu, var = m["weights"], m["means"], m["covariances"]
        mean = w @ mu
        mix_var = w @ (var + mu * mu) - mean * mean
        want_mean = np.arange(COLS, dtype=np.float64)
        want_var = (1.0 + want_mean / 10.0) ** 2
        T.within("the mixture's column means are 0..%d (largest error)" %
                 (COLS - 1), np.max(np.abs(mean - want_mean)), 0.01)
        T.within("the mixture's column variances are (1 + j/10)^2 "
                 "(largest relative error)",
                 np.max(np.abs(mix_var / want_var - 1.0)), 0.01)
        T.check(int(m.get("em_n_iter", -1)) == 3,
                "3 iterations (em_n_iter %s)" % m.get("em_n_iter"))
        T.check(float(m.get("em_n_rows", ROWS)) == ROWS,
                "every row read in an iteration (em_n_rows %s)" %
                m.get("em_n_rows"))
finally:
    if os.path.exists("big.npy"):
        os.remove("big.npy")
T.finish()
