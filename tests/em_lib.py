"""em_lib.py -- shared helpers of the EM acceptance tests (tests/em_*.py).

A test runs as   python3 em_X.py GMLE WORKDIR HELPER_DIR
(GMLE the command, WORKDIR emptied and used as the current directory,
HELPER_DIR where tests/cli's helpers such as cli_gen_npy are built). It
prints one "ok" or "FAIL" line per check and exits 0 when every check
passed, 1 otherwise, and 77 (ctest's SKIP_RETURN_CODE) with a message when
a Python module it needs (numpy, scikit-learn) is missing.

Relative differences are per array: max |a - ref| / max |ref|.
"""
import os
import resource
import shutil
import subprocess
import sys

SKIP = 77
COV_TYPES = ("full", "diag", "spherical", "tied")
LOG_2PI = 1.8378770664093453

try:
    import numpy as np
except ImportError:  # Suite() skips the test
    np = None


class Suite:
    """One test run: its arguments, work directory and check counts."""

    def __init__(self, needs=("numpy",)):
        if len(sys.argv) < 3:
            sys.exit("usage: %s GMLE WORKDIR [HELPER_DIR]" % sys.argv[0])
        for module in needs:
            try:
                __import__(module)
            except ImportError:
                print("skip: this test needs the Python module %s "
                      "(pip install %s)" % (module, module.replace(
                          "sklearn", "scikit-learn")))
                sys.exit(SKIP)
        self.gmle = os.path.abspath(sys.argv[1])
        self.helpers = os.path.abspath(sys.argv[3]) if len(
            sys.argv) > 3 else ""
        self.work = os.path.abspath(sys.argv[2])
        shutil.rmtree(self.work, ignore_errors=True)
        os.makedirs(self.work)
        os.chdir(self.work)
        self.checks = 0
        self.fails = 0

    def ok(self, msg):
        self.checks += 1
        print("ok   " + msg, flush=True)

    def bad(self, msg):
        self.checks += 1
        self.fails += 1
        print("FAIL " + msg, flush=True)

    def check(self, cond, msg):
        """ok(msg) when cond holds, else bad(msg)."""
        (self.ok if cond else self.bad)(msg)
        return cond

    def within(self, name, value, tol):
        """Check value <= tol, naming both."""
        return self.check(bool(value <= tol),
                          "%s: %.3g (tolerance %.0e)" % (name, value, tol))

    def run(self, *args, limit_kb=None, timeout=600, env=None):
        """Run gmle with args; returns (exit code, stdout, stderr). limit_kb
        sets an address-space limit (ulimit -v) on gmle alone."""

        def limit():
            lim = limit_kb * 1024
            resource.setrlimit(resource.RLIMIT_AS, (lim, lim))

        full_env = dict(os.environ, **(env or {}))
        try:
            p = subprocess.run([self.gmle] + [str(a) for a in args],
                               capture_output=True, text=True,
                               timeout=timeout, env=full_env,
                               preexec_fn=limit if limit_kb else None)
        except subprocess.TimeoutExpired:
            return 124, "", "timed out after %d s" % timeout
        return p.returncode, p.stdout, p.stderr

    def gmle_ok(self, name, *args, **kw):
        """Run gmle; a check that it exits 0 (stderr shown otherwise)."""
        rc, out, err = self.run(*args, **kw)
        if rc == 0:
            return True
        self.bad("%s: exit %d: gmle %s\n     | %s" %
                 (name, rc, " ".join(map(str, args)),
                  "\n     | ".join(err.strip().splitlines()[:5])))
        return False

    def expect_fail(self, want_rc, name, must, outfile, *args, **kw):
        """gmle must exit want_rc with a one-line message (a usage error's
        "Run 'gmle CMD --help'" hint aside) that names every string of
        `must` (case-insensitive), and leave no outfile (nor a temporary
        beside it)."""
        if os.path.exists(outfile):
            os.remove(outfile)
        rc, _, err = self.run(*args, **kw)
        first = err.strip().splitlines()[0] if err.strip() else ""
        self.check(rc == want_rc, "%s: exit %d (expected %d)%s" %
                   (name, rc, want_rc,
                    "" if rc == want_rc else
                    ": gmle " + " ".join(map(str, args))))
        missing = [m for m in must if m.lower() not in err.lower()]
        self.check(not missing and first,
                   "%s: message names %s: %s" % (name, must, first)
                   if not missing else "%s: message lacks %s: %s" %
                   (name, missing, err.strip()))
        lines = [line for line in err.strip().splitlines()
                 if not line.startswith("Run 'gmle")]  # a usage error's hint
        self.check(len(lines) == 1, "%s: one line of error" % name)
        left = [f for f in os.listdir(".") if f.startswith(outfile)]
        self.check(not left, "%s: no output left%s" %
                   (name, "" if not left else ": " + ", ".join(left)))

    def finish(self):
        print("%d checks, %d failed" % (self.checks, self.fails))
        sys.exit(1 if self.fails else 0)


def rel(a, ref):
    """max |a - ref| / max |ref| (inf when a is missing or misshapen)."""
    a, ref = np.asarray(a, np.float64), np.asarray(ref, np.float64)
    if a.shape != ref.shape:
        return float("inf")
    return float(np.max(np.abs(a - ref)) / np.max(np.abs(ref)))


def mixture_data(seed, n, d, k, offset=0.0):
    """n rows of a k-component Gaussian mixture in d dimensions (float64):
    component means about 2.5 standard deviations apart (overlapping),
    random correlated covariances, unequal weights. Returns (X, labels,
    true means)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 2.5, (k, d))
    factors = np.eye(d) + rng.normal(0.0, 0.25, (k, d, d))
    weights = rng.dirichlet(np.full(k, 4.0))
    labels = rng.choice(k, size=n, p=weights)
    z = rng.standard_normal((n, d))
    x = centres[labels] + np.einsum("nij,nj->ni", factors[labels], z)
    return offset + x, labels, offset + centres


def as_type(full, cov_type):
    """Full covariances (K, D, D) in the layout of cov_type (scikit-learn's
    shapes): diag (K, D), spherical (K,), tied (D, D: their mean)."""
    if cov_type == "full":
        return full
    diag = np.diagonal(full, axis1=1, axis2=2).copy()
    if cov_type == "diag":
        return diag
    if cov_type == "spherical":
        return diag.mean(axis=1)
    return full.mean(axis=0)


def start_params(seed, x, centres, cov_type):
    """A start that is not the answer: equal weights, the true means moved by
    about one standard deviation, each component the data's covariance
    scaled by 0.3 .. 0.7."""
    rng = np.random.default_rng(seed)
    k, d = centres.shape
    means = centres + rng.normal(0.0, 1.0, (k, d))
    spread = np.cov(x.T.astype(np.float64)).reshape(d, d)
    full = np.stack([spread * (0.3 + 0.4 * i / max(1, k - 1))
                     for i in range(k)])
    return np.full(k, 1.0 / k), means, as_type(full, cov_type)


def save_init(path, weights, means, covariances, cov_type):
    """An --init-model file as plain numpy writes it."""
    np.savez(path, weights=weights, means=means, covariances=covariances,
             covariance_type=np.array(cov_type))


def save_plain_model(path, means, covariances, priors, cov_type):
    """A model of one Gaussian per class (docs/FORMATS.md), written by numpy:
    class c is component c."""
    np.savez(path, format_version=np.array(1, np.int64),
             covariance_type=np.array(cov_type), means=means,
             covariances=covariances, priors=priors)


def precisions(covariances, cov_type):
    """scikit-learn's precisions_init from covariances of its shapes."""
    if cov_type in ("full", "tied"):
        return np.linalg.inv(covariances)
    return 1.0 / covariances


def load(path):
    """A model file as a dict of arrays."""
    with np.load(path) as z:
        return {name: z[name] for name in z.files}


def full_of(covariances, cov_type, k, d):
    """Component k's covariance as a D x D matrix."""
    if cov_type == "full":
        return covariances[k]
    if cov_type == "diag":
        return np.diag(covariances[k])
    if cov_type == "spherical":
        return np.eye(d) * covariances[k]
    return covariances


def log_joint(x, weights, means, covariances, cov_type):
    """log w_k + log N(x_n; mu_k, Sigma_k), N x K, float64 (Cholesky)."""
    n, d = x.shape
    out = np.empty((n, len(weights)))
    for k in range(len(weights)):
        chol = np.linalg.cholesky(full_of(covariances, cov_type, k, d))
        y = np.linalg.solve(chol, (x - means[k]).T)
        out[:, k] = (np.log(weights[k]) - 0.5 *
                     (d * LOG_2PI + 2.0 * np.sum(np.log(np.diag(chol))) +
                      np.sum(y * y, axis=0)))
    return out


def em_reference(x, weights, means, covariances, cov_type, n_iter,
                 reg_covar):
    """Soft EM in float64 with numpy, as scikit-learn defines it (reg_covar
    added to each diagonal, spherical the mean of the diagonal, tied pooled
    with weights n_k / n), but with every covariance from rows centred on
    the new means (two passes): no cancellation whatever the offset.
    Returns weights, means, covariances and the lower bound of each
    iteration (mean per-row log-likelihood before its M-step)."""
    x = np.asarray(x, np.float64)
    n, d = x.shape
    bounds = []
    for _ in range(n_iter):
        lj = log_joint(x, weights, means, covariances, cov_type)
        top = lj.max(axis=1, keepdims=True)
        norm = top[:, 0] + np.log(np.sum(np.exp(lj - top), axis=1))
        bounds.append(float(norm.mean()))
        resp = np.exp(lj - norm[:, None])
        nk = resp.sum(axis=0)
        means = (resp.T @ x) / nk[:, None]
        full = np.empty((len(nk), d, d))
        for k in range(len(nk)):
            diff = x - means[k]
            full[k] = (resp[:, k, None] * diff).T @ diff / nk[k]
        if cov_type == "tied":
            covariances = np.tensordot(nk, full, axes=1) / n
            covariances += reg_covar * np.eye(d)
        else:
            covariances = as_type(full + reg_covar * np.eye(d), cov_type)
        weights = nk / n
    return weights, means, covariances, bounds


def sklearn_em(x, weights, means, covariances, cov_type, n_iter, reg_covar):
    """scikit-learn GaussianMixture from the given start, tol=0, n_iter
    iterations (its ConvergenceWarning silenced)."""
    import warnings

    from sklearn.mixture import GaussianMixture

    gm = GaussianMixture(len(weights), covariance_type=cov_type, tol=0.0,
                         reg_covar=reg_covar, max_iter=n_iter,
                         weights_init=weights, means_init=means,
                         precisions_init=precisions(covariances, cov_type),
                         init_params="random_from_data", random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm.fit(x)
    return gm

