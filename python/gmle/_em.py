"""_em.py -- gmle_em_fit from Python: options, the progress callback, the
call itself (re-raising a batch source's own exception)."""
import sys
import time
from ctypes import byref, c_void_p

import numpy as np

from . import _core, _lib
from ._lib import lib
from ._model import cov_code

EM_MODES = {"soft": _lib.EM_SOFT, "hard": _lib.EM_HARD}
# scikit-learn's init_params, and gmle's own 'split' (mixing up).
INITS = {"kmeans": _lib.INIT_KMEANSPP, "k-means++": _lib.INIT_KMEANSPP,
         "random": _lib.INIT_RANDOM, "random_from_data": _lib.INIT_RANDOM,
         "split": _lib.INIT_SPLIT}


def parse_em_mode(em, n_components):
    """'soft', 'hard' or 'top:N' -> (mode, top_n)."""
    if isinstance(em, str) and em.startswith("top:"):
        try:
            n = int(em[4:])
        except ValueError:
            n = 0
        if not 1 <= n <= n_components:
            raise ValueError(f"em={em!r}: N must be in [1, n_components="
                             f"{n_components}]")
        return _lib.EM_TOP_N, n
    if em not in EM_MODES:
        raise ValueError(f"em must be 'soft', 'hard' or 'top:N'; got {em!r}")
    return EM_MODES[em], 0


def seed_from(random_state):
    """The C init's seed from a scikit-learn random_state: an int is the
    seed itself (so random_state=S fits as `gmle fit --seed S`); a
    RandomState or None draws one."""
    from sklearn.utils import check_random_state
    if isinstance(random_state, (int, np.integer)) and \
            not isinstance(random_state, bool):
        if random_state < 0:
            raise ValueError(f"random_state must be >= 0, got {random_state}")
        return int(random_state)
    return int(check_random_state(random_state).randint(0, 2**31 - 1))


def options(n_components, covariance_type, *, mode=("soft", None), tol=1e-3,
            reg_covar=1e-6, max_iter=100, n_init=1, init="kmeans", seed=0,
            init_model=None, priors=None, rel_floor=None):
    o = _lib.em_options()
    o.n_components = int(n_components)
    o.cov = cov_code(covariance_type)
    o.mode, o.top_n = parse_em_mode(mode, int(n_components))
    if init_model is not None:
        o.init = _lib.INIT_MODEL
        o.init_model = init_model.ptr
    else:
        if init not in INITS:
            raise ValueError(f"init_params must be one of {sorted(INITS)}; "
                             f"got {init!r}")
        o.init = INITS[init]
        if init == "k-means++":
            o.kmeans_iter = 0  # seeds only, as scikit-learn's 'k-means++'
    o.max_iter = int(max_iter)
    o.tol = float(tol)
    o.n_init = int(n_init)
    o.seed = int(seed)
    o.reg_covar = float(reg_covar)
    if rel_floor is not None:
        o.rel_floor = float(rel_floor)
    keep = None
    if priors is not None:
        keep = np.ascontiguousarray(priors, dtype=np.float64)
        o.priors = keep.ctypes.data_as(_lib.POINTER(_lib.c_double))
    return o, keep


class Verbose:
    """scikit-learn's verbose messages from gmle's progress callback."""

    def __init__(self, verbose, interval):
        self.verbose, self.interval = verbose, interval
        self.run = None
        self.t0 = self.t_iter = time.time()
        self.cb = _lib.EM_PROGRESS(self._progress)

    def _progress(self, user, run, it, lb, change, rows, seconds):
        try:
            if run != self.run:
                self.run = run
                print(f"Initialization {run}", file=sys.stdout)
                self.t0 = self.t_iter = time.time()
            if change != change:  # NaN at the first iteration
                change = float("inf")  # scikit-learn: lb - (-inf)
            if it % self.interval == 0:
                now = time.time()
                if self.verbose == 1:
                    print(f"  Iteration {it}")
                else:
                    print(f"  Iteration {it}\t time lapse "
                          f"{now - self.t_iter:.5f}s\t ll change {change:.5f}")
                self.t_iter = now
        except Exception:  # never let printing break a fit
            pass


def fit(ctx, source, n_features, n_classes, opts, verbose=0,
        verbose_interval=10):
    """Run gmle_em_fit; the model handle."""
    prog = None
    if verbose:
        prog = Verbose(verbose, verbose_interval)
        opts.progress = prog.cb
    out = c_void_p()
    with ctx.lock:
        code = lib.gmle_em_fit(ctx.ptr, int(n_features), int(n_classes),
                               byref(source.struct), byref(opts), byref(out))
        if code != 0:
            source.raise_error()
            raise _lib.error_for(code, ctx.ptr)
    if prog is not None:
        opts.progress = _lib.EM_PROGRESS()
    return _core.new_model(ctx, out.value)
