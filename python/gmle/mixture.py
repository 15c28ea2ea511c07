"""mixture.py -- gmle.GaussianMixture: scikit-learn's GaussianMixture
(same parameters, defaults, attributes and methods) fitted by gmle's EM,
also on data too large for memory: a .npy or CSV path, a Kaldi
rspecifier, or a re-iterable of arrays, read once per iteration."""
import os
import warnings

import numpy as np
import scipy.sparse
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from . import _em, _lib, _model
from ._estimator import EngineMixin, precisions, validate
from ._source import ArraySource, IterableSource, ReaderSource


def _is_path(X):
    return isinstance(X, (str, bytes, os.PathLike))


def _is_batches(X):
    """A re-iterable of batches rather than one array: a list or tuple of
    arrays or tuples, or any other iterable that numpy cannot take as an
    array."""
    if isinstance(X, np.ndarray) or hasattr(X, "__array__") or \
            scipy.sparse.issparse(X):
        return False
    if isinstance(X, (list, tuple)):
        first = X[0] if X else None
        if isinstance(first, tuple):
            first = first[0] if first else None
        return isinstance(first, np.ndarray) and first.ndim == 2
    return hasattr(X, "__iter__")


# ---------------------------------------------------------------------------
# scikit-learn's initialisation when only some of weights_init, means_init
# and precisions_init are given (GaussianMixture._initialize_parameters and
# _initialize): the responsibilities of init_params, the parameters
# estimated from them, the given arrays in their place.
# ---------------------------------------------------------------------------


def _sklearn_resp(X, K, init_params, rs):
    n = X.shape[0]
    resp = np.zeros((n, K), dtype=X.dtype)
    if init_params == "kmeans":
        from sklearn.cluster import KMeans
        label = KMeans(n_clusters=K, n_init=1, random_state=rs).fit(X).labels_
        resp[np.arange(n), label] = 1
    elif init_params == "random":
        resp = rs.uniform(size=(n, K)).astype(X.dtype, copy=False)
        resp /= resp.sum(axis=1)[:, np.newaxis]
    elif init_params == "random_from_data":
        resp[rs.choice(n, size=K, replace=False), np.arange(K)] = 1
    elif init_params == "k-means++":
        from sklearn.cluster import kmeans_plusplus
        _, indices = kmeans_plusplus(X, K, random_state=rs)
        resp[indices, np.arange(K)] = 1
    else:
        raise ValueError(f"init_params {init_params!r} cannot start from a "
                         "partial init (weights_init, means_init and "
                         "precisions_init not all given)")
    return resp


def _estimate_params(X, resp, reg, cov):
    """Weights (unnormalised n_k), means and covariances from
    responsibilities, as scikit-learn's _estimate_gaussian_parameters."""
    X = X.astype(np.float64, copy=False)
    resp = resp.astype(np.float64, copy=False)
    nk = resp.sum(axis=0) + 10 * np.finfo(resp.dtype).eps
    means = resp.T @ X / nk[:, None]
    D = X.shape[1]
    if cov == "full":
        covs = np.empty((len(nk), D, D))
        for k in range(len(nk)):
            diff = X - means[k]
            covs[k] = (resp[:, k] * diff.T) @ diff / nk[k]
            covs[k].flat[:: D + 1] += reg
    elif cov == "tied":
        covs = (X.T @ X - nk * means.T @ means) / nk.sum()
        covs.flat[:: D + 1] += reg
    else:
        avg = resp.T @ (X * X) / nk[:, None] - means ** 2 + reg
        covs = avg if cov == "diag" else avg.mean(axis=1)
    return nk, means, covs


def _covariances_from_precisions(cov, P):
    P = np.asarray(P, dtype=np.float64)
    if cov in ("diag", "spherical"):
        return 1.0 / P
    if cov == "tied":
        return np.linalg.inv(P)
    return np.stack([np.linalg.inv(p) for p in P])


class GaussianMixture(EngineMixin, DensityMixin, BaseEstimator):
    """scikit-learn's GaussianMixture, fitted by gmle's EM (the C library).

    Parameters, defaults, fitted attributes and methods are scikit-learn's
    (see sklearn.mixture.GaussianMixture); from the same start the fitted
    parameters and score_samples agree with scikit-learn's within 1e-8.
    `fit` also takes data too large for memory, read once per iteration:
    a path (.npy or CSV) or Kaldi rspecifier ("ark:feats.ark",
    "scp:feats.scp"), or a re-iterable of arrays (a list of arrays, or an
    object whose __iter__ starts over each time).

    Starting points:
    - weights_init, means_init and precisions_init all given: that start
      (covariances = inverse precisions).
    - some of them given (array input): scikit-learn's rule, exactly: the
      responsibilities of init_params ('kmeans': scikit-learn's KMeans with
      n_init=1 and random_state; 'k-means++', 'random', 'random_from_data'
      as scikit-learn draws them), the weights, means and covariances
      estimated from them (with reg_covar), the given arrays in their
      place. For files and iterables, gmle's own init (below) with
      max_iter=0 supplies the missing arrays.
    - none given: gmle's init on a reservoir sample of up to 100000 rows,
      seeded from random_state: 'kmeans' = k-means++ seeds then 20 Lloyd
      iterations; 'k-means++' = the seeds only; 'random' and
      'random_from_data' = distinct random rows as means; 'split' =
      splitting the heaviest component (mixing up). These are not
      scikit-learn's random draws, so EM may reach another local optimum
      than scikit-learn from the same random_state.

    warm_start continues from the fitted parameters, as scikit-learn's;
    its first iteration's change is not measured against the previous
    fit's lower_bound_ (scikit-learn's is), so a warm start that has
    already converged runs one iteration more here.

    Extra parameters: em ('soft', 'hard' or 'top:N'), batch_rows (rows
    per batch read), backend, device, n_jobs (as GaussianClassifier).
    """

    def __init__(self, n_components=1, *, covariance_type="full", tol=1e-3,
                 reg_covar=1e-6, max_iter=100, n_init=1, init_params="kmeans",
                 weights_init=None, means_init=None, precisions_init=None,
                 random_state=None, warm_start=False, verbose=0,
                 verbose_interval=10, em="soft", batch_rows=None,
                 backend="auto", device=None, n_jobs=None):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.em = em
        self.batch_rows = batch_rows
        self.backend = backend
        self.device = device
        self.n_jobs = n_jobs

    # -- checks --------------------------------------------------------------
    def _check_parameters(self, D):
        K, cov = self.n_components, self.covariance_type
        if not (isinstance(K, (int, np.integer)) and K >= 1):
            raise ValueError("n_components must be an integer >= 1, got "
                             f"{K!r}")
        _model.cov_code(cov)
        if not self.tol >= 0:
            raise ValueError(f"tol must be >= 0, got {self.tol!r}")
        if not self.reg_covar >= 0:
            raise ValueError(f"reg_covar must be >= 0, got {self.reg_covar!r}")
        if not (isinstance(self.max_iter, (int, np.integer))
                and self.max_iter >= 0):
            raise ValueError(f"max_iter must be >= 0, got {self.max_iter!r}")
        if not (isinstance(self.n_init, (int, np.integer))
                and self.n_init >= 1):
            raise ValueError(f"n_init must be >= 1, got {self.n_init!r}")
        if self.init_params not in _em.INITS:
            raise ValueError(f"init_params must be one of "
                             f"{sorted(_em.INITS)}; got {self.init_params!r}")
        _em.parse_em_mode(self.em, K)
        w = m = p = None
        if self.weights_init is not None:
            w = np.asarray(self.weights_init, dtype=np.float64)
            if w.shape != (K,):
                raise ValueError(f"The parameter 'weights' should have the "
                                 f"shape of ({K},), but got {w.shape}")
            if np.any(w < 0) or np.any(w > 1) or \
                    not np.allclose(w.sum(), 1.0, rtol=0, atol=1e-6):
                raise ValueError("The parameter 'weights' should be in the "
                                 "range [0, 1] and normalized, but got "
                                 f"sum(weights) = {w.sum():.5f}")
        if self.means_init is not None:
            m = np.asarray(self.means_init, dtype=np.float64)
            if m.shape != (K, D):
                raise ValueError(f"The parameter 'means' should have the "
                                 f"shape of {(K, D)}, but got {m.shape}")
        if self.precisions_init is not None:
            p = np.asarray(self.precisions_init, dtype=np.float64)
            shape = {"full": (K, D, D), "tied": (D, D), "diag": (K, D),
                     "spherical": (K,)}[cov]
            if p.shape != shape:
                raise ValueError(f"The parameter '{cov} precision' should "
                                 f"have the shape of {shape}, but got "
                                 f"{p.shape}")
            mats = p if cov == "full" else p[None] if cov == "tied" else None
            if mats is None and np.any(p <= 0):
                raise ValueError(f"'{cov} precision' should be positive")
            for q in mats if mats is not None else ():
                if not np.allclose(q, q.T) or np.any(
                        np.linalg.eigvalsh(q) <= 0):
                    raise ValueError(f"'{cov} precision' should be symmetric, "
                                     "positive-definite")
        return w, m, p

    # -- fitting -------------------------------------------------------------
    def fit(self, X, y=None):
        """Estimate the parameters by EM. X: an array (n, D), a data file
        path or Kaldi rspecifier, or a re-iterable of arrays."""
        self._fit(X)
        return self

    def fit_predict(self, X, y=None):
        """fit(X), then the component of every row of X."""
        self._fit(X)
        return self.predict(X)

    def _source(self, X, reset):
        """(source, X validated or None) for array, path or batches."""
        ctx = self._context()
        if _is_path(X):
            path = os.fsdecode(X)
            src = ReaderSource(ctx, path, self.batch_rows)
            self._set_n_features(src.n_features, reset)
            return ctx, src, None
        if _is_batches(X):
            src = IterableSource(X)
            self._set_n_features(src.peek_features(), reset)
            return ctx, src, None
        X = validate(self, X, reset=reset)
        return ctx, ArraySource(X, batch_rows=self.batch_rows), X

    def _set_n_features(self, d, reset):
        if reset:
            self.n_features_in_ = d
            self.__dict__.pop("feature_names_in_", None)
        elif d != self.n_features_in_:
            raise ValueError(f"X has {d} features, but GaussianMixture is "
                             f"expecting {self.n_features_in_} features as "
                             "input.")

    def _fit(self, X):
        warm = self.warm_start and hasattr(self, "converged_")
        ctx, src, Xa = self._source(X, reset=not warm)
        if Xa is not None:
            if Xa.shape[0] < 2:
                raise ValueError(f"Found array with {Xa.shape[0]} sample(s) "
                                 f"(shape={Xa.shape}) while a minimum of 2 is "
                                 "required.")
            if Xa.shape[0] < self.n_components:
                raise ValueError("Expected n_samples >= n_components but got "
                                 f"n_components = {self.n_components}, "
                                 f"n_samples = {Xa.shape[0]}")
        D = self.n_features_in_
        w, m, p = self._check_parameters(D)
        K, cov = self.n_components, self.covariance_type
        common = dict(mode=self.em, tol=self.tol, reg_covar=self.reg_covar,
                      max_iter=self.max_iter)
        if warm:
            starts = [self._model()]
        elif w is not None and m is not None and p is not None:
            starts = [_model.create_mixture(
                ctx, cov, w[None], m[None],
                _covariances_from_precisions(cov, p)[None])]
        elif w is not None or m is not None or p is not None:
            starts = self._partial_starts(ctx, src, Xa, w, m, p)
        else:
            starts = None
        if starts is None:
            opts, _ = _em.options(K, cov, n_init=self.n_init,
                                  init=self.init_params,
                                  seed=_em.seed_from(self.random_state),
                                  **common)
            best = _em.fit(ctx, src, D, 1, opts, self.verbose,
                           self.verbose_interval)
        else:
            best, best_lb = None, -np.inf
            for start in starts:
                opts, _ = _em.options(K, cov, init_model=start, **common)
                h = _em.fit(ctx, src, D, 1, opts, self.verbose,
                            self.verbose_interval)
                lb = _model.em_report(h)["lower_bound"]
                if best is None or lb > best_lb:
                    best, best_lb = h, lb
        self._set_fitted(best)

    def _partial_starts(self, ctx, src, Xa, w, m, p):
        """One start per n_init from a partial init (class docstring)."""
        K, cov = self.n_components, self.covariance_type
        starts = []
        if Xa is not None:
            rs = check_random_state(self.random_state)
            for _ in range(self.n_init):
                resp = _sklearn_resp(Xa, K, self.init_params, rs)
                nk, mu, covs = _estimate_params(Xa, resp, self.reg_covar, cov)
                starts.append(self._start(ctx, nk / Xa.shape[0], mu, covs, w,
                                          m, p))
            return starts
        seed = _em.seed_from(self.random_state)
        for i in range(self.n_init):
            opts, _ = _em.options(K, cov, max_iter=0, init=self.init_params,
                                  seed=seed + i, reg_covar=self.reg_covar)
            h = _em.fit(ctx, src, self.n_features_in_, 1, opts)
            g = _model.mixture_params(h)
            starts.append(self._start(ctx, g["weights"][0], g["means"][0],
                                      g["covariances"][0], w, m, p))
        return starts

    def _start(self, ctx, w0, m0, c0, w, m, p):
        cov = self.covariance_type
        # scikit-learn's 'random_from_data' and 'k-means++' responsibilities
        # give start weights that sum to K / n, not 1; it normalises them
        # only in its first M-step, so only its first lower bound differs
        # (by the log of their sum) from that of the normalised start here.
        w = w0 / np.sum(w0) if w is None else w
        m = m0 if m is None else m
        c = c0 if p is None else _covariances_from_precisions(cov, p)
        return _model.create_mixture(ctx, cov, np.asarray(w)[None],
                                     np.asarray(m)[None], np.asarray(c)[None])

    def _set_fitted(self, h, warn=True):
        g = _model.mixture_params(h)
        self._handle = h
        self.weights_ = g["weights"][0]
        self.means_ = g["means"][0]
        self.covariances_ = g["covariances"][0]
        self.precisions_cholesky_ = g["precisions_cholesky"][0]
        self.precisions_ = precisions(self.covariance_type,
                                      self.precisions_cholesky_)
        rep = _model.em_report(h) or {"n_iter": 0, "converged": True,
                                      "lower_bound": -np.inf, "history": []}
        self.n_iter_ = int(rep["n_iter"])
        self.converged_ = bool(rep["converged"])
        self.lower_bound_ = float(rep["lower_bound"]) if self.max_iter > 0 \
            else -np.inf
        self.lower_bounds_ = list(rep["history"]) if self.max_iter > 0 \
            else []
        if warn and not self.converged_ and self.max_iter > 0:
            warnings.warn("Best performing initialization did not converge. "
                          "Try different init parameters, or increase "
                          "max_iter, tol, or check for degenerate data.",
                          ConvergenceWarning)

    def _rebuild(self, ctx):
        return _model.create_mixture(ctx, self.covariance_type,
                                     self.weights_[None], self.means_[None],
                                     self.covariances_[None])

    # -- scoring -------------------------------------------------------------
    def _score(self, X, what, n_out):
        check_is_fitted(self)
        h = self._model()
        if _is_path(X) or _is_batches(X):
            _, src, _ = self._source(X, reset=False)
            if isinstance(src, ReaderSource):
                batches = src.batches()
            else:
                src._rewind()
                batches = iter(lambda: src._next(), None)
                batches = (b[0] for b in batches)
            parts = [_model.score(h, b, what, n_out) for b in batches]
            return np.concatenate(parts) if parts else np.empty(0)
        X = validate(self, X, reset=False)
        return _model.score(h, X, what, n_out)

    def score_samples(self, X):
        """The log-density of every row: log sum_k w_k N(x; mu_k, Sigma_k)."""
        return self._score(X, _lib.OUT_DENSITY, None)

    def score(self, X, y=None):
        """The mean log-likelihood per row."""
        return float(np.mean(self.score_samples(X)))

    def predict_proba(self, X):
        """The responsibilities p(k | x), (n, n_components)."""
        return self._score(X, _lib.OUT_RESP, self.n_components)

    def predict(self, X):
        """The most likely component of every row."""
        return np.argmax(self.predict_proba(X), axis=1)

    def _n_parameters(self):
        K, D = self.means_.shape
        cov = {"full": K * D * (D + 1) / 2, "diag": K * D,
               "tied": D * (D + 1) / 2, "spherical": K}[self.covariance_type]
        return int(cov + K * D + K - 1)

    def bic(self, X):
        """Bayesian information criterion on X (lower is better)."""
        n = self._n_rows(X)
        return -2 * self.score(X) * n + self._n_parameters() * np.log(n)

    def aic(self, X):
        """Akaike information criterion on X (lower is better)."""
        return -2 * self.score(X) * self._n_rows(X) + 2 * self._n_parameters()

    def _n_rows(self, X):
        if _is_path(X) or _is_batches(X):
            return self.score_samples(X).shape[0]
        return np.asarray(X).shape[0] if hasattr(X, "shape") else len(X)

    def sample(self, n_samples=1):
        """n_samples rows drawn from the mixture and their components, as
        scikit-learn draws them (the same random_state gives the same
        rows)."""
        check_is_fitted(self)
        if n_samples < 1:
            raise ValueError("Invalid value for 'n_samples': "
                             f"{n_samples} . The sampling requires at least "
                             "one sample.")
        rng = check_random_state(self.random_state)
        n_comp = rng.multinomial(n_samples, self.weights_)
        D = self.means_.shape[1]
        cov = self.covariance_type
        if cov == "full":
            X = np.vstack([rng.multivariate_normal(mu, c, int(s))
                           for mu, c, s in zip(self.means_,
                                               self.covariances_, n_comp)])
        elif cov == "tied":
            X = np.vstack([rng.multivariate_normal(mu, self.covariances_,
                                                   int(s))
                           for mu, s in zip(self.means_, n_comp)])
        else:
            X = np.vstack([mu + rng.standard_normal(size=(s, D)) * np.sqrt(c)
                           for mu, c, s in zip(self.means_,
                                               self.covariances_, n_comp)])
        y = np.concatenate([np.full(s, j, dtype=int)
                            for j, s in enumerate(n_comp)])
        return X, y

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags
