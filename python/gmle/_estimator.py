"""_estimator.py -- what both estimators share: the engine parameters
(backend, device, n_jobs), input validation, the model handle kept out of
pickles and rebuilt from the fitted parameters, precisions."""
import numpy as np
from sklearn.utils.validation import check_is_fitted, validate_data

from . import _core


def validate(est, X, reset):
    """scikit-learn's validation without a copy of float32/float64 data and
    without its NaN scan: the library scans as it reads (and names the row
    and column)."""
    return validate_data(est, X, dtype=[np.float64, np.float32],
                         ensure_all_finite=False, reset=reset, order=None)


def validate_xy(est, X, y, reset):
    return validate_data(est, X, y, dtype=[np.float64, np.float32],
                         ensure_all_finite=False, reset=reset, order=None,
                         y_numeric=False)


def precisions(cov, prec_chol):
    """scikit-learn's precisions_ from precisions_cholesky_."""
    if cov in ("diag", "spherical"):
        return prec_chol ** 2
    # einsum without BLAS: numpy's OpenBLAS threads, once woken, would spin
    # on the cores gmle's threads need.
    if cov == "tied":
        return np.einsum("ij,kj->ik", prec_chol, prec_chol)
    return np.einsum("kij,klj->kil", prec_chol, prec_chol)


class EngineMixin:
    """The model handle: made at fit, dropped from pickles, rebuilt from
    the fitted arrays on first use after unpickling."""

    def _context(self):
        return _core.context(self.backend, self.device, self.n_jobs)

    def _model(self):
        check_is_fitted(self)
        h = self.__dict__.get("_handle")
        if h is None:
            h = self._handle = self._rebuild(self._context())
        return h

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_handle", None)
        return state

    @property
    def device_name_(self):
        """The device the fitted model runs on ("CPU (2 threads; ...)")."""
        return self._model().ctx.device_name
