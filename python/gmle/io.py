"""io.py -- model files, data files and devices.

Model files are the .npz files of `gmle fit` (docs/FORMATS.md): a model
saved here loads in the CLI and the other way round, parameters bit for
bit. Data files (.npy, CSV, Kaldi ark/scp) are read in batches through the
library's streaming readers."""
import os
from ctypes import byref, c_size_t

import numpy as np

from . import _core, _lib, _model
from ._lib import lib
from ._source import ReaderSource


def save_model(estimator, path):
    """Write a fitted GaussianClassifier or GaussianMixture as a gmle model
    file (.npz; `gmle score`, `gmle classify`, `gmle info` read it)."""
    h = estimator._model()
    _model.save(h, path)
    if _model.is_mixture(h):
        # A library without mixture model files (before issue 13's) writes
        # the classes' moments as a plain model: refuse that file.
        with np.load(path) as z:
            if "weights" not in z.files:
                os.unlink(path)
                raise _lib.GmleError(
                    f"{os.fspath(path)}: this libgmle ({_lib.library_path()})"
                    " cannot save mixtures", status="GMLE_E_UNSUPPORTED",
                    code=_lib.E_UNSUPPORTED)


def _classes_from_names(names):
    """Class names as the labels they were: integers when every name is an
    integer's canonical text (as `gmle fit` writes integer labels)."""
    try:
        ints = [int(s) for s in names]
        if all(str(i) == s for i, s in zip(ints, names)):
            return np.array(ints, dtype=np.int64)
    except ValueError:
        pass
    return np.array(names)


def load_model(path, *, backend="auto", device=None, n_jobs=None):
    """Read a model file into a fitted estimator: a GaussianMixture for an
    unsupervised mixture (one class without a name), else a
    GaussianClassifier (one Gaussian, or a mixture, per class)."""
    from .classifier import GaussianClassifier
    from .mixture import GaussianMixture
    ctx = _core.context(backend, device, n_jobs)
    h = _model.load(ctx, path)
    names = _model.class_names(h)
    D = int(lib.gmle_model_dim(h.ptr))
    C = int(lib.gmle_model_n_classes(h.ptr))
    cov = _model.COV_NAMES[lib.gmle_model_cov_type(h.ptr)]
    if _model.is_mixture(h) and C == 1 and names is None:
        est = GaussianMixture(int(lib.gmle_model_n_components(h.ptr)),
                              covariance_type=cov, backend=backend,
                              device=device, n_jobs=n_jobs)
        est.n_features_in_ = D
        est._set_fitted(h, warn=False)
        return est
    est = GaussianClassifier(covariance_type=cov, backend=backend,
                             device=device, n_jobs=n_jobs)
    est.n_features_in_ = D
    est.classes_ = _classes_from_names(names) if names is not None \
        else np.arange(C)
    if _model.is_mixture(h):
        est.n_components = int(lib.gmle_model_n_components(h.ptr))
        est._set_mixture(h)
    else:
        est._set_plain(h)
        est.fit_report_ = _model.fit_report(h)
    return est


def devices(backend="auto"):
    """The devices of a backend (or of every compiled backend), as dicts:
    backend, index, is_default, is_gpu, fp64, compute_units, global_mem,
    name, platform. Backends without a device list none."""
    code = _lib.BACKEND[backend]
    n = c_size_t()
    why = (_lib.c_char * 4096)()
    s = lib.gmle_device_list(code, None, 0, byref(n), why, 4096)
    if s not in (0, 18) or n.value == 0:
        return []
    arr = (_lib.DeviceInfo * n.value)()
    lib.gmle_device_list(code, arr, n.value, byref(n), why, 4096)
    out = []
    for d in arr[:n.value]:
        out.append({
            "backend": lib.gmle_backend_name(d.backend).decode(),
            "index": d.index, "is_default": bool(d.is_default),
            "is_gpu": bool(d.is_gpu), "fp64": bool(d.fp64),
            "compute_units": d.compute_units, "global_mem": d.global_mem,
            "name": d.name.decode("utf-8", "replace"),
            "platform": d.platform.decode("utf-8", "replace")})
    return out


def iter_batches(path, batch_rows=None, *, backend="auto", device=None):
    """The rows of a data file (.npy, CSV) or Kaldi rspecifier
    ("ark:FILE", "scp:FILE") in batches of up to batch_rows rows, each a new
    array (float32 or float64 as the file holds), never the whole file."""
    src = ReaderSource(_core.context(backend, device, None), path,
                       batch_rows)
    for b in src.batches():
        yield b.copy()


def read_array(path, *, backend="auto", device=None):
    """A whole data file (.npy, CSV, Kaldi table) as one array."""
    parts = list(iter_batches(path, backend=backend, device=device))
    if not parts:
        raise ValueError(f"{os.fspath(path)}: no rows")
    return np.concatenate(parts)
