"""classifier.py -- gmle.GaussianClassifier: generative classification with
one Gaussian (or a mixture of Gaussians) per class, fitted by the C
library."""
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from . import _core, _em, _labels, _lib, _model
from ._estimator import EngineMixin, validate, validate_xy
from ._source import ArraySource
from .stats import Stats


class GaussianClassifier(EngineMixin, ClassifierMixin, BaseEstimator):
    """One Gaussian per class by maximum likelihood (or, with
    n_components > 1, a mixture of Gaussians per class by EM), and the
    Bayes classifier it defines: log p(c | x) from log pi_c +
    log N(x; mu_c, Sigma_c).

    Parameters
    ----------
    covariance_type : {'full', 'diag', 'spherical', 'tied'}, default='full'
    priors : array-like of shape (n_classes,), default=None
        Class priors in class order (sorted labels); None: class
        frequencies (weighted).
    reg_covar : float, default=None
        Added to every variance (gmle's abs_floor). None: 0 for one
        Gaussian per class (as `gmle fit`), 1e-6 for mixtures (as
        scikit-learn's GaussianMixture).
    rel_floor : float, default=1e-9
        The floor relative to each feature's own variance, acting only
        where a covariance is singular (0 disables).
    max_condition : float, default=None
        Floor the eigenvalues so that cond(Sigma_c) <= max_condition.
    shrinkage : bool, default=False
        OAS shrinkage toward a scaled identity (full and tied).
    n_components : int, default=1
        Components per class; > 1 fits a mixture per class by EM.
    tol, max_iter, n_init, init_params, random_state, em :
        The EM options (n_components > 1), as GaussianMixture's.
    batch_rows : int, default=None
        Rows per call into the library (None: the CLI's batches, so that a
        fit equals `gmle fit` on the same rows bit for bit).
    backend : {'auto', 'cpu', 'opencl', 'cuda'}, default='auto'
    device : int, default=None
        The backend's device index (None: its default).
    n_jobs : int, default=None
        gmle's threads (None: the OpenMP limit of the calling thread, which
        OMP_NUM_THREADS and threadpoolctl set; -1: every core).

    Attributes
    ----------
    classes_, n_features_in_, class_count_ (weighted rows per class),
    priors_, means_ (C, D), covariances_ (scikit-learn GaussianMixture's
    shapes: full (C, D, D), diag (C, D), spherical (C,), tied (D, D)),
    precisions_cholesky_ (the same shapes), fit_report_ (per class: rows,
    weight, eigenvalues, condition, values floored).
    With n_components > 1: weights_ (C, K), means_ (C, K, D),
    covariances_ (full (C, K, D, D), diag (C, K, D), spherical (C, K),
    tied (C, D, D)), precisions_cholesky_ likewise, n_iter_, converged_,
    lower_bound_.
    """

    def __init__(self, *, covariance_type="full", priors=None, reg_covar=None,
                 rel_floor=1e-9, max_condition=None, shrinkage=False,
                 n_components=1, tol=1e-3, max_iter=100, n_init=1,
                 init_params="kmeans", random_state=None, em="soft",
                 batch_rows=None, backend="auto", device=None, n_jobs=None):
        self.covariance_type = covariance_type
        self.priors = priors
        self.reg_covar = reg_covar
        self.rel_floor = rel_floor
        self.max_condition = max_condition
        self.shrinkage = shrinkage
        self.n_components = n_components
        self.tol = tol
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.random_state = random_state
        self.em = em
        self.batch_rows = batch_rows
        self.backend = backend
        self.device = device
        self.n_jobs = n_jobs

    # -- checks --------------------------------------------------------------
    def _check_params(self):
        _model.cov_code(self.covariance_type)
        if not (isinstance(self.n_components, (int, np.integer))
                and self.n_components >= 1):
            raise ValueError("n_components must be an integer >= 1, got "
                             f"{self.n_components!r}")
        for name in ("reg_covar", "max_condition"):
            v = getattr(self, name)
            if v is not None and not v >= 0:
                raise ValueError(f"{name} must be >= 0, got {v!r}")
        if not self.rel_floor >= 0:
            raise ValueError(f"rel_floor must be >= 0, got {self.rel_floor!r}")
        if self.shrinkage and self.covariance_type in ("diag", "spherical"):
            raise ValueError("shrinkage applies to full and tied covariances")

    def _priors(self, n_classes):
        if self.priors is None:
            return None
        p = np.asarray(self.priors, dtype=np.float64)
        if p.shape != (n_classes,):
            raise ValueError(f"priors must have shape ({n_classes},), got "
                             f"{p.shape}")
        if np.any(p < 0) or not np.isclose(p.sum(), 1.0):
            raise ValueError("priors must be >= 0 and sum to 1")
        return np.ascontiguousarray(p)

    # -- fitting -------------------------------------------------------------
    def fit(self, X, y, sample_weight=None):
        """Fit the model of every class on X (n, D) and labels y."""
        self._check_params()
        X, y = validate_xy(self, X, y, reset=True)
        classes, idx, ranged = _labels.encode(y)
        w = _labels.weights(sample_weight, X.shape[0])
        self._forget_fit()
        if ranged and self.n_components > 1:
            classes, idx = _labels.present_only(
                classes, idx, np.bincount(idx.whole(),
                                          minlength=classes.size))
        if self.n_components > 1:
            return self._fit_mixture(X, classes, idx, w)
        Xr, code, stride = _core.as_rows(X)
        stats = self._new_stats(X.shape[1], classes)
        stats._add_encoded(Xr, code, stride, idx, w, self.batch_rows)
        if ranged and np.any(stats.rows == 0):
            # integer labels with gaps: again, over the classes present
            classes, idx = _labels.present_only(classes, idx, stats.rows)
            stats = self._new_stats(X.shape[1], classes)
            stats._add_encoded(Xr, code, stride, idx, w, self.batch_rows)
        return self._fit_from_stats(stats)

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Add X, y to the statistics and refit (one Gaussian per class).
        The first call needs `classes` (every class that will be seen).
        Equals one fit over all the rows (within 1e-12; bit for bit when
        the calls add the same batches)."""
        self._check_params()
        if self.n_components > 1:
            raise ValueError("partial_fit fits one Gaussian per class; a "
                             "mixture needs several passes over the data "
                             "(fit it with GaussianMixture on a file or a "
                             "re-iterable of batches)")
        first = "_stats" not in self.__dict__
        if first:
            if classes is None:
                raise ValueError("classes must be passed on the first call "
                                 "to partial_fit.")
            X, y = validate_xy(self, X, y, reset=True)
            self._forget_fit()
            stats = self._new_stats(X.shape[1], np.unique(classes))
        else:
            if classes is not None and not np.array_equal(
                    np.unique(classes), self.classes_):
                raise ValueError(f"classes={classes!r} is not the same as on "
                                 f"the first call: {self.classes_!r}")
            X, y = validate_xy(self, X, y, reset=False)
            stats = self._stats
        idx = _labels.encode_with(stats.classes, y)
        w = _labels.weights(sample_weight, X.shape[0])
        Xr, code, stride = _core.as_rows(X)
        stats._add_encoded(Xr, code, stride, idx, w, self.batch_rows)
        return self._fit_from_stats(stats)

    # What a fit sets beyond the attributes every model has; a new fit (of
    # either kind) starts without them.
    _FIT_STATE = ("_handle", "_stats", "_precisions_cholesky", "weights_",
                  "n_iter_", "converged_", "lower_bound_", "fit_report_")

    def _forget_fit(self):
        for k in self._FIT_STATE:
            self.__dict__.pop(k, None)

    def _new_stats(self, n_features, classes):
        mode = "diag" if self.covariance_type in ("diag", "spherical") \
            else "full"
        return Stats(n_features, classes, mode=mode, backend=self.backend,
                     device=self.device, n_jobs=self.n_jobs)

    def _fit_from_stats(self, stats):
        self._check_params()
        ctx = stats._h.ctx
        fo = _lib.fit_options()
        fo.cov = _model.cov_code(self.covariance_type)
        pri = self._priors(stats.n_classes)
        if pri is not None:
            fo.priors = pri.ctypes.data_as(_lib.POINTER(_lib.c_double))
        fo.rel_floor = float(self.rel_floor)
        fo.abs_floor = float(self.reg_covar or 0.0)
        fo.max_condition = float(self.max_condition or 0.0)
        fo.shrinkage = int(bool(self.shrinkage))
        out = _lib.c_void_p()
        with stats._h.ctx.lock:
            ctx.call(_lib.lib.gmle_fit, stats._h.ptr, _lib.ctypes.byref(fo),
                     _lib.ctypes.byref(out))
        h = _core.new_model(ctx, out.value)
        classes = stats.classes if stats.classes is not None \
            else np.array([0])
        _model.set_class_names(h, _labels.names(classes))
        self._stats = stats
        self.classes_ = classes
        if not hasattr(self, "n_features_in_"):
            self.n_features_in_ = stats.n_features
        self._set_plain(h)
        self.fit_report_ = _model.fit_report(h)
        return self

    def _set_params(self, h, p):
        """The fitted attributes every model has."""
        self._handle = h
        self.class_count_ = p["counts"]
        self.priors_ = p["priors"]
        self.means_ = p["means"]
        self.covariances_ = p["covariances"]

    def _set_plain(self, h):
        self._set_params(h, _model.plain_params(h))
        self._precisions_cholesky = None  # made when first read

    @property
    def precisions_cholesky_(self):
        """scikit-learn's precisions_cholesky_ (computed by the library when
        first read, so that a fit does no work nobody asked for)."""
        pc = self.__dict__.get("_precisions_cholesky")
        if pc is None:
            h = self._model()  # NotFittedError (an AttributeError) before
            cov = _model.COV_NAMES[_lib.lib.gmle_model_cov_type(h.ptr)]
            pc = self._precisions_cholesky = \
                _model.plain_precisions_cholesky(h.ctx, cov,
                                                 self.covariances_,
                                                 self.class_count_)
        return pc

    @precisions_cholesky_.setter
    def precisions_cholesky_(self, value):
        self._precisions_cholesky = value

    def _fit_mixture(self, X, classes, idx, w):
        reg = 1e-6 if self.reg_covar is None else self.reg_covar
        opts, _keep = _em.options(
            self.n_components, self.covariance_type, mode=self.em,
            tol=self.tol, reg_covar=reg, max_iter=self.max_iter,
            n_init=self.n_init, init=self.init_params,
            seed=_em.seed_from(self.random_state),
            priors=self._priors(classes.size), rel_floor=self.rel_floor)
        ctx = self._context()
        src = ArraySource(X, idx.whole(), w, self.batch_rows)
        h = _em.fit(ctx, src, X.shape[1], classes.size, opts)
        _model.set_class_names(h, _labels.names(classes))
        self.classes_ = classes
        self._set_mixture(h)
        return self

    def _set_mixture(self, h):
        p = _model.mixture_params(h)
        self._set_params(h, p)
        self.weights_ = p["weights"]
        self.precisions_cholesky_ = p["precisions_cholesky"]
        rep = _model.em_report(h)
        if rep is not None:
            self.n_iter_ = rep["n_iter"]
            self.converged_ = rep["converged"]
            self.lower_bound_ = rep["lower_bound"]

    def _rebuild(self, ctx):
        if "weights_" in self.__dict__:
            cov = self.covariance_type
            h = _model.create_mixture(ctx, cov, self.weights_, self.means_,
                                      self.covariances_, self.priors_,
                                      self.class_count_)
        else:
            h = _model.create_plain(ctx, self.covariance_type, self.means_,
                                    self.covariances_, self.priors_,
                                    self.class_count_)
        _model.set_class_names(h, _labels.names(self.classes_))
        return h

    # -- prediction ----------------------------------------------------------
    def _score(self, X, what):
        check_is_fitted(self)
        X = validate(self, X, reset=False)
        n_out = None if what in (_lib.OUT_DENSITY, _lib.OUT_LABEL) \
            else len(self.classes_)
        return _model.score(self._model(), X, what, n_out)

    def predict(self, X):
        idx = self._score(X, _lib.OUT_LABEL)
        if idx.size and idx.min() < 0:  # every class -inf: the lowest wins
            np.maximum(idx, 0, out=idx)
        c = self.classes_
        if c.dtype.kind in "iu" and c.size and \
                int(c[-1]) - int(c[0]) == c.size - 1 and \
                np.all(np.diff(c) == 1):
            out = idx.astype(c.dtype)  # labels lo..hi: no gather
            if c[0]:
                out += c[0]
            return out
        return c[idx]

    def predict_log_proba(self, X):
        return self._score(X, _lib.OUT_LOGPOST)

    def predict_proba(self, X):
        return np.exp(self._score(X, _lib.OUT_LOGPOST))

    def predict_joint_log_proba(self, X):
        """log pi_c + log p(x | c), (n, C)."""
        return self._score(X, _lib.OUT_JOINT)

    def score_samples(self, X):
        """log sum_c pi_c p(x | c): the log-density of each row under the
        mixture of the classes."""
        return self._score(X, _lib.OUT_DENSITY)

    def decision_function(self, X):
        """The joint log-likelihoods (n, C); for two classes, column 1
        minus column 0 (as QuadraticDiscriminantAnalysis)."""
        s = self.predict_joint_log_proba(X)
        if len(self.classes_) == 2:
            return s[:, 1] - s[:, 0]
        return s

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags
