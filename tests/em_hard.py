"""em_hard.py -- hard EM is "classify, then fit on the predicted labels",
bit for bit (issue 13, acceptance 3).

From a start (weights, means, covariances), `gmle fit --components K --em
hard --max-iter n` for n = 1, 2, 3 must equal, bit for bit, n rounds of the
existing commands: `gmle classify` with the plain K-class model built from
the mixture's arrays (class k = component k, priors = weights), then `gmle
fit DATA --labels PRED --cov T` with the same floors (the mixture's
--reg-covar is the plain fit's --abs-floor: both add a constant to every
variance); its means, covariances and priors are the mixture's means,
covariances and weights. Each covariance type, float64 rows.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import em_lib  # noqa: E402

T = em_lib.Suite(needs=("numpy",))
np = em_lib.np

K = 3
REG_COVAR = "1e-6"
REL_FLOOR = "1e-9"
CLASSES = ",".join(str(k) for k in range(K))

x, _, centres = em_lib.mixture_data(seed=41, n=2000, d=4, k=K)
np.save("x.npy", x)


def bits(a, b):
    """'bit-identical', or the largest difference."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return "shapes %s and %s" % (a.shape, b.shape)
    if np.array_equal(a, b):
        return "bit-identical"
    return "differ by up to %.3g (relative %.3g)" % (
        np.max(np.abs(a - b)), em_lib.rel(a, b))


for cov_type in em_lib.COV_TYPES:
    w0, m0, c0 = em_lib.start_params(5, x, centres, cov_type)
    em_lib.save_init("init_%s.npz" % cov_type, w0, m0, c0, cov_type)
    plain = "plain_%s_0.npz" % cov_type
    em_lib.save_plain_model(plain, m0, c0, w0, cov_type)
    for n_iter in (1, 2, 3):
        name = "%s, hard EM %d iteration%s" % (cov_type, n_iter,
                                               "s" if n_iter > 1 else "")
        hard = "hard_%s_%d.npz" % (cov_type, n_iter)
        pred = "pred_%s_%d.npy" % (cov_type, n_iter)
        nxt = "plain_%s_%d.npz" % (cov_type, n_iter)
        if not (T.gmle_ok(name, "fit", "x.npy", "--components", K, "--cov",
                          cov_type, "--em", "hard", "--init-model",
                          "init_%s.npz" % cov_type, "--max-iter", n_iter,
                          "--tol", 0, "--reg-covar", REG_COVAR, "--rel-floor",
                          REL_FLOOR, "-o", hard, "-q") and
                T.gmle_ok(name + ": classify", "classify", plain, "x.npy",
                          "-o", pred, "-q") and
                T.gmle_ok(name + ": fit on the predicted labels", "fit",
                          "x.npy", "--labels", pred, "--classes", CLASSES,
                          "--cov", cov_type, "--abs-floor", REG_COVAR,
                          "--rel-floor", REL_FLOOR, "-o", nxt, "-q")):
            break
        got, want = em_lib.load(hard), em_lib.load(nxt)
        counts = np.bincount(np.load(pred), minlength=K)
        for mixture_member, plain_member in (("weights", "priors"),
                                             ("means", "means"),
                                             ("covariances", "covariances")):
            verdict = bits(got.get(mixture_member, np.nan), want[plain_member])
            T.check(verdict == "bit-identical",
                    "%s: %s = classify+fit's %s: %s (rows per class %s)" %
                    (name, mixture_member, plain_member, verdict,
                     counts.tolist()))
        plain = nxt
T.finish()
