"""_model.py -- gmle_model handles: built from parameters, read back as
numpy arrays in scikit-learn's shapes, scored, saved and loaded."""
import os
from ctypes import byref, c_double, c_void_p

import numpy as np

from . import _core, _lib
from ._lib import lib

COV_NAMES = {v: k for k, v in _lib.COV.items()}


def cov_code(covariance_type):
    if covariance_type not in _lib.COV:
        raise ValueError("covariance_type must be one of 'full', 'diag', "
                         f"'spherical', 'tied'; got {covariance_type!r}")
    return _lib.COV[covariance_type]


def comp_cov_shape(cov, C, K, D):
    """The flat layout of gmle_mixture_create's covariances, as an array
    shape with a class axis and a component axis (tied: no component)."""
    return {"full": (C, K, D, D), "diag": (C, K, D), "spherical": (C, K),
            "tied": (C, D, D)}[cov]


# ---------------------------------------------------------------------------
# Plain models (one Gaussian per class)
# ---------------------------------------------------------------------------


def plain_params(m):
    """means (C, D), covariances in scikit-learn GaussianMixture's shapes
    (full (C, D, D), diag (C, D), spherical (C,), tied (D, D)), priors and
    counts (C,)."""
    p = m.ptr
    D, C = lib.gmle_model_dim(p), lib.gmle_model_n_classes(p)
    cov = COV_NAMES[lib.gmle_model_cov_type(p)]
    means = np.empty((C, D))
    full = np.empty((C, D, D))
    priors, counts = np.empty(C), np.empty(C)
    v = c_double()
    with m.ctx.lock:
        for c in range(C):
            _lib.check(lib.gmle_model_mean(p, c, _core.ptr(means[c])), None)
            _lib.check(lib.gmle_model_covariance(p, c, _core.ptr(full[c])),
                       None)
            _lib.check(lib.gmle_model_prior(p, c, byref(v)), None)
            priors[c] = v.value
            _lib.check(lib.gmle_model_count(p, c, byref(v)), None)
            counts[c] = v.value
    if cov == "full":
        covs = full
    elif cov == "diag":
        covs = np.ascontiguousarray(np.diagonal(full, axis1=1, axis2=2))
    elif cov == "spherical":
        covs = full[:, 0, 0].copy()
    else:
        covs = full[0].copy()
    return {"covariance_type": cov, "means": means, "covariances": covs,
            "priors": priors, "counts": counts}


def create_plain(ctx, cov, means, covariances, priors, counts=None):
    C, D = means.shape
    out = c_void_p()
    ctx.call(lib.gmle_model_create, ctx.ptr, D, C, cov_code(cov),
             _core.ptr(_core.as_f64(means)), _core.ptr(_core.as_f64(
                 covariances)), _core.ptr(_core.as_f64(priors)),
             None if counts is None else _core.ptr(_core.as_f64(counts)),
             byref(out))
    return _core.new_model(ctx, out.value)


def plain_precisions_cholesky(ctx, cov, covariances, counts):
    """scikit-learn's precisions_cholesky_ of a model of one Gaussian per
    class (covariances in its shapes), computed by the library (its
    classes as the components of one mixture): no numpy LAPACK call, whose
    OpenBLAS threads would then spin on the cores gmle's threads need. NaN
    for empty classes."""
    covariances = np.asarray(covariances, dtype=np.float64)
    if cov == "tied":
        D = covariances.shape[0]
        h = create_mixture(ctx, cov, np.ones((1, 1)), np.zeros((1, 1, D)),
                           covariances[None])
        return mixture_params(h)["precisions_cholesky"][0]
    out = np.full(covariances.shape, np.nan)
    live = np.flatnonzero(np.asarray(counts) > 0)
    if live.size:
        sub = covariances[live]
        D = 1 if cov == "spherical" else sub.shape[1]
        K = live.size
        h = create_mixture(ctx, cov, np.full((1, K), 1.0 / K),
                           np.zeros((1, K, D)), sub[None])
        out[live] = mixture_params(h)["precisions_cholesky"][0]
    return out


def fit_report(m):
    """The fit report of every class, as a list of dicts."""
    r = _lib.ClassReport()
    out = []
    for c in range(lib.gmle_model_n_classes(m.ptr)):
        _lib.check(lib.gmle_model_report(m.ptr, c, byref(r)), None)
        out.append({k: getattr(r, k) for k, _ in r._fields_})
    return out


def train_loglik(m):
    """(class-conditional, joint) training log-likelihood, or None when the
    model was not fitted by gmle_fit."""
    a, b = c_double(), c_double()
    if lib.gmle_model_loglik(m.ptr, 0, byref(a)) or \
            lib.gmle_model_loglik(m.ptr, 1, byref(b)):
        return None
    return a.value, b.value


# ---------------------------------------------------------------------------
# Mixtures
# ---------------------------------------------------------------------------


def mixture_params(m):
    """weights (C, K), means (C, K, D), covariances (full (C, K, D, D),
    diag (C, K, D), spherical (C, K), tied (C, D, D)), precisions_cholesky
    (the same shapes), priors and counts (C,)."""
    p = m.ptr
    D, C = lib.gmle_model_dim(p), lib.gmle_model_n_classes(p)
    K = lib.gmle_model_n_components(p)
    cov = COV_NAMES[lib.gmle_model_cov_type(p)]
    shape = comp_cov_shape(cov, C, K, D)
    w, mu = np.empty((C, K)), np.empty((C, K, D))
    covs, pc = np.empty(shape), np.empty(shape)
    priors, counts = np.empty(C), np.empty(C)
    v = c_double()
    with m.ctx.lock:
        m.ctx.call(lib.gmle_mixture_params, p, _core.ptr(w), _core.ptr(mu),
                   _core.ptr(covs))
        m.ctx.call(lib.gmle_mixture_precisions_cholesky, p, _core.ptr(pc))
        for c in range(C):
            _lib.check(lib.gmle_model_prior(p, c, byref(v)), None)
            priors[c] = v.value
            _lib.check(lib.gmle_model_count(p, c, byref(v)), None)
            counts[c] = v.value
    return {"covariance_type": cov, "weights": w, "means": mu,
            "covariances": covs, "precisions_cholesky": pc, "priors": priors,
            "counts": counts}


def create_mixture(ctx, cov, weights, means, covariances, priors=None,
                   counts=None):
    C, K, D = means.shape
    out = c_void_p()
    ctx.call(lib.gmle_mixture_create, ctx.ptr, D, C, K, cov_code(cov),
             _core.ptr(_core.as_f64(weights, (C, K), "weights")),
             _core.ptr(_core.as_f64(means)),
             _core.ptr(_core.as_f64(covariances, comp_cov_shape(cov, C, K, D),
                                    "covariances")),
             None if priors is None else _core.ptr(_core.as_f64(priors)),
             None if counts is None else _core.ptr(_core.as_f64(counts)),
             byref(out))
    return _core.new_model(ctx, out.value)


def em_report(m):
    """The EM report of a mixture as a dict, or None."""
    r = _lib.EMReport()
    if lib.gmle_model_em_report(m.ptr, byref(r)) != 0:
        return None
    out = {k: getattr(r, k) for k, _ in r._fields_
           if k not in ("history", "n_history")}
    out["history"] = np.array(r.history[:r.n_history], dtype=np.float64)
    out["converged"] = bool(r.converged)
    return out


# ---------------------------------------------------------------------------
# Class names, scoring, files
# ---------------------------------------------------------------------------


def set_class_names(m, names):
    arr, _keep = _core.c_str_array(names)
    m.ctx.call(lib.gmle_model_set_class_names, m.ptr, arr)


def class_names(m):
    out = []
    for c in range(lib.gmle_model_n_classes(m.ptr)):
        s = lib.gmle_model_class_name(m.ptr, c)
        if s is None:
            return None
        out.append(s.decode("utf-8", "surrogateescape"))
    return out


def score(m, X, what, n_out):
    """gmle_score of every row of X: (n, n_out) float64 (n_out None: (n,)),
    or int32 labels for OUT_LABEL."""
    X, dtype, stride = _core.as_rows(X)
    n = X.shape[0]
    if what == _lib.OUT_LABEL:
        out = np.empty(n, dtype=np.int32)
    else:
        out = np.empty((n, n_out) if n_out is not None else n)
    m.ctx.call(lib.gmle_score, m.ctx.ptr, m.ptr, _core.ptr(X), dtype, n,
               stride, what, _lib.F64, _core.ptr(out))
    return out


def save(m, path):
    path = os.fspath(path)
    m.ctx.call(lib.gmle_model_save, m.ptr, path.encode(), prefix=path)


def load(ctx, path):
    path = os.fspath(path)
    out = c_void_p()
    ctx.call(lib.gmle_model_load, ctx.ptr, path.encode(), byref(out),
             prefix=path)
    return _core.new_model(ctx, out.value)


def is_mixture(m):
    return bool(lib.gmle_model_is_mixture(m.ptr))


def information(m):
    """(BIC, AIC) of a model fitted by gmle_fit, or None."""
    b, a = c_double(), c_double()
    if lib.gmle_model_information(m.ptr, byref(b), byref(a)) != 0:
        return None
    return b.value, a.value
