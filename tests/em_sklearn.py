"""em_sklearn.py -- EM from a given start equals scikit-learn's
GaussianMixture (issue 13, acceptance 1).

Float64 rows of a real 4-component mixture (N = 3000, D = 5). From the same
start (weights, means, covariances: gmle fit --init-model; scikit-learn
weights_init, means_init, precisions_init = the inverse covariances in its
layout), the same reg_covar and tol = 0, after 1, 10 and 50 iterations, for
each covariance type: weights, means, covariances and precisions_cholesky
within 1e-8 relative of scikit-learn's (per array: max |a - ref| / max
|ref|), and the lower bound (the model's em_lower_bound, scikit-learn's
lower_bound_) and its history (em_history, lower_bounds_) within 1e-10
(relative to max(1, |ref|)).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import em_lib  # noqa: E402

T = em_lib.Suite(needs=("numpy", "sklearn"))
np = em_lib.np

PARAM_TOL = 1e-8
BOUND_TOL = 1e-10
REG_COVAR = 1e-6
K = 4

x, _, centres = em_lib.mixture_data(seed=13, n=3000, d=5, k=K)
np.save("x.npy", x)


def bound_diff(a, ref):
    a, ref = np.atleast_1d(a), np.atleast_1d(ref)
    if a.shape != ref.shape:
        return float("inf")
    return float(np.max(np.abs(a - ref) / np.maximum(1.0, np.abs(ref))))


for cov_type in em_lib.COV_TYPES:
    w0, m0, c0 = em_lib.start_params(7, x, centres, cov_type)
    em_lib.save_init("init_%s.npz" % cov_type, w0, m0, c0, cov_type)
    for n_iter in (1, 10, 50):
        name = "%s, %d iteration%s" % (cov_type, n_iter,
                                       "s" if n_iter > 1 else "")
        out = "m_%s_%d.npz" % (cov_type, n_iter)
        if not T.gmle_ok(name, "fit", "x.npy", "--components", K, "--cov",
                         cov_type, "--init-model", "init_%s.npz" % cov_type,
                         "--max-iter", n_iter, "--tol", 0, "--reg-covar",
                         REG_COVAR, "-o", out, "-q"):
            continue
        got = em_lib.load(out)
        gm = em_lib.sklearn_em(x, w0, m0, c0, cov_type, n_iter, REG_COVAR)
        T.check(int(got.get("em_n_iter", -1)) == gm.n_iter_ == n_iter,
                "%s: n_iter %s, scikit-learn %d" %
                (name, got.get("em_n_iter"), gm.n_iter_))
        for member, ref in (("weights", gm.weights_), ("means", gm.means_),
                            ("covariances", gm.covariances_),
                            ("precisions_cholesky", gm.precisions_cholesky_)):
            if member not in got:
                T.bad("%s: the model has no %s" % (name, member))
                continue
            T.within("%s: %s vs scikit-learn, relative" % (name, member),
                     em_lib.rel(got[member], ref), PARAM_TOL)
        T.within("%s: em_lower_bound vs lower_bound_" % name,
                 bound_diff(got.get("em_lower_bound", np.nan),
                            gm.lower_bound_), BOUND_TOL)
        if hasattr(gm, "lower_bounds_"):  # scikit-learn >= 1.6
            T.within("%s: em_history vs lower_bounds_" % name,
                     bound_diff(got.get("em_history", np.nan),
                                gm.lower_bounds_), BOUND_TOL)

# The start must not be the answer: 50 iterations moved the means.
w0, m0, c0 = em_lib.start_params(7, x, centres, "full")
moved = em_lib.load("m_full_50.npz")["means"] if os.path.exists(
    "m_full_50.npz") else m0
T.check(em_lib.rel(moved, m0) > 0.05,
        "the start is not the answer: the means moved by %.2f (relative)" %
        em_lib.rel(moved, m0))
T.finish()
