"""stats.py -- gmle.Stats: the sufficient statistics of the C library
(per class: count, shifted sum, Gram matrix, float64), added batch by
batch, merged exactly, saved and loaded, fitted; picklable as the bytes of
the statistics file, so that any distributed engine can reduce them."""
import os
import tempfile
from ctypes import byref, c_double, c_uint64, c_void_p

import numpy as np

from . import _core, _labels, _lib
from ._lib import lib


def _file_bytes(save):
    """The bytes a save(path) writes."""
    with tempfile.TemporaryDirectory(prefix="gmle-") as d:
        path = os.path.join(d, "obj")
        save(path)
        with open(path, "rb") as f:
            return f.read()


def _from_bytes(data, load):
    """load(path) of a temporary file holding data."""
    with tempfile.TemporaryDirectory(prefix="gmle-") as d:
        path = os.path.join(d, "obj")
        with open(path, "wb") as f:
            f.write(data)
        return load(path)


class Stats:
    """Sufficient statistics of one or more classes.

    Parameters
    ----------
    n_features : int
    classes : array-like or None
        The class labels, in class order (None: one class, no labels). Give
        every shard the same classes so that their statistics merge.
    mode : 'full' or 'diag'
        'diag' keeps only the variances (for diag and spherical fits).
    backend, device, n_jobs : as for GaussianClassifier.

    `a.merge(b)` adds b into a exactly (pairwise update across shifts);
    `a + b` is a new merged copy. Pickling writes the bytes of the
    statistics file (gmle_stats_save) and never a C handle.
    """

    def __init__(self, n_features, classes=None, *, mode="full",
                 backend="auto", device=None, n_jobs=None):
        if mode not in ("full", "diag"):
            raise ValueError(f"mode must be 'full' or 'diag', got {mode!r}")
        self.classes = None if classes is None else np.asarray(classes)
        if self.classes is not None and (
                self.classes.ndim != 1 or self.classes.size == 0
                or np.unique(self.classes).size != self.classes.size):
            raise ValueError("classes must be a non-empty list of distinct "
                             "labels")
        self._engine = (backend, device, n_jobs)
        ctx = _core.context(backend, device, n_jobs)
        n_classes = 1 if self.classes is None else self.classes.size
        out = c_void_p()
        ctx.call(lib.gmle_stats_create_mode, ctx.ptr, int(n_features),
                 n_classes, _lib.STATS_FULL if mode == "full"
                 else _lib.STATS_DIAG, byref(out))
        self._h = _core.new_stats(ctx, out.value)
        if self.classes is not None:
            arr, _keep = _core.c_str_array(_labels.names(self.classes))
            ctx.call(lib.gmle_stats_set_class_names, self._h.ptr, arr)

    # -- shape -------------------------------------------------------------
    @property
    def n_features(self):
        return int(lib.gmle_stats_dim(self._h.ptr))

    @property
    def n_classes(self):
        return int(lib.gmle_stats_n_classes(self._h.ptr))

    @property
    def mode(self):
        return "full" if lib.gmle_stats_get_mode(self._h.ptr) == 0 else "diag"

    @property
    def rows(self):
        """Rows accumulated per class (unweighted), int64 (C,)."""
        v = c_uint64()
        out = np.empty(self.n_classes, dtype=np.int64)
        for c in range(out.size):
            _lib.check(lib.gmle_stats_rows(self._h.ptr, c, byref(v)), None)
            out[c] = v.value
        return out

    @property
    def weights(self):
        """Total weight per class (float64 (C,))."""
        v = c_double()
        out = np.empty(self.n_classes)
        for c in range(out.size):
            _lib.check(lib.gmle_stats_weight(self._h.ptr, c, byref(v)), None)
            out[c] = v.value
        return out

    def mean(self, c=0):
        """Class c's weighted mean."""
        out = np.empty(self.n_features)
        self._h.ctx.call(lib.gmle_stats_mean, self._h.ptr, c, _core.ptr(out))
        return out

    # -- accumulation ------------------------------------------------------
    def add(self, X, y=None, sample_weight=None, *, batch_rows=None):
        """Accumulate rows X (n, n_features) with labels y (None for one
        class) and optional weights. Atomic per batch of batch_rows rows
        (default: the CLI's batches, so that `gmle stats` on the same rows
        gives the same bits). Returns self."""
        X, dtype, stride = _core.as_rows(X)
        n, d = X.shape
        if self.classes is None:
            if y is not None:
                raise ValueError("these statistics have one class: y must be "
                                 "None (give classes= to the constructor)")
            idx = None
        else:
            if y is None:
                raise ValueError("y is required: these statistics have "
                                 f"{self.n_classes} classes")
            idx = _labels.encode_with(self.classes, y)
            if len(idx) != n:
                raise ValueError(f"X has {n} rows but y has {len(idx)}")
        w = _labels.weights(sample_weight, n)
        self._add_encoded(X, dtype, stride, idx, w, batch_rows)
        return self

    def _add_encoded(self, X, dtype, stride, idx, w, batch_rows=None):
        """Add rows X with class indices idx (an Indices, or None) in
        batches of batch_rows rows."""
        n, d = X.shape
        b = batch_rows or _core.default_batch_rows(d, X.itemsize)
        ctx = self._h.ctx
        step = stride * X.itemsize
        base = _core.ptr(X)
        buf = None if idx is None or idx.direct() else \
            np.empty(min(b, n), dtype=np.int32)
        for r0, r1 in _core.batch_bounds(n, b):
            lab = None if idx is None else idx.rows(r0, r1, buf)
            ctx.call(lib.gmle_stats_add_checked, self._h.ptr, base + r0 * step,
                     dtype, r1 - r0, d, stride, _core.ptr(lab),
                     None if w is None else _core.ptr(w) + 8 * r0)

    def merge(self, other):
        """self += other, exactly. Returns self."""
        if not isinstance(other, Stats):
            raise TypeError(f"cannot merge {type(other).__name__} into Stats")
        if (self.classes is None) != (other.classes is None) or (
                self.classes is not None
                and not np.array_equal(self.classes, other.classes)):
            raise ValueError("the statistics have different classes: "
                             f"{self.classes!r} and {other.classes!r}")
        with other._h.ctx.lock:
            self._h.ctx.call(lib.gmle_stats_merge, self._h.ptr, other._h.ptr)
        return self

    def copy(self):
        out = Stats.__new__(Stats)
        out.classes = self.classes
        out._engine = self._engine
        ctx = self._h.ctx
        ptr = c_void_p()
        ctx.call(lib.gmle_stats_clone, self._h.ptr, byref(ptr))
        out._h = _core.new_stats(ctx, ptr.value)
        return out

    def __add__(self, other):
        return self.copy().merge(other)

    # -- files and pickling ------------------------------------------------
    def save(self, path):
        """Write the statistics file (docs/FORMATS.md) that `gmle merge` and
        `gmle fit --stats` read."""
        path = os.fspath(path)
        self._h.ctx.call(lib.gmle_stats_save, self._h.ptr, path.encode(),
                         prefix=path)

    @classmethod
    def load(cls, path, classes=None, *, backend="auto", device=None,
             n_jobs=None):
        """Read a statistics file (from Stats.save or `gmle stats`). The
        classes are `classes`, else the names in the file (as str)."""
        path = os.fspath(path)
        ctx = _core.context(backend, device, n_jobs)
        ptr = c_void_p()
        ctx.call(lib.gmle_stats_load, ctx.ptr, path.encode(), byref(ptr),
                 prefix=path)
        out = cls.__new__(cls)
        out._h = _core.new_stats(ctx, ptr.value)
        out._engine = (backend, device, n_jobs)
        if classes is None:
            names = [lib.gmle_stats_class_name(ptr.value, c)
                     for c in range(out.n_classes)]
            if all(s is not None for s in names):
                classes = np.array([s.decode("utf-8", "surrogateescape")
                                    for s in names])
        out.classes = None if classes is None else np.asarray(classes)
        if out.classes is not None and out.classes.size != out.n_classes:
            raise ValueError(f"{out.classes.size} classes given for "
                             f"statistics of {out.n_classes}")
        return out

    def to_bytes(self):
        """The bytes of the statistics file."""
        return _file_bytes(self.save)

    @classmethod
    def from_bytes(cls, data, classes=None, *, backend="auto", device=None,
                   n_jobs=None):
        return _from_bytes(data, lambda p: cls.load(
            p, classes, backend=backend, device=device, n_jobs=n_jobs))

    def __getstate__(self):
        return {"stats_file": self.to_bytes(), "classes": self.classes,
                "engine": self._engine}

    def __setstate__(self, state):
        backend, device, n_jobs = state["engine"]
        other = Stats.from_bytes(state["stats_file"], state["classes"],
                                 backend=backend, device=device,
                                 n_jobs=n_jobs)
        self.__dict__.update(other.__dict__)

    # -- fitting -----------------------------------------------------------
    def fit(self, covariance_type="full", **params):
        """A GaussianClassifier fitted from these statistics (one Gaussian
        per class; params as GaussianClassifier's)."""
        from .classifier import GaussianClassifier
        est = GaussianClassifier(covariance_type=covariance_type, **params)
        return est._fit_from_stats(self)

    def __repr__(self):
        return (f"Stats(n_features={self.n_features}, "
                f"n_classes={self.n_classes}, mode={self.mode!r}, "
                f"rows={int(self.rows.sum())})")
