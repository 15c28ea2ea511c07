"""_labels.py -- class labels to class indices (int32, as the C library
takes them), in O(N) for integer labels of a small range."""
import numpy as np
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import column_or_1d

# Integer labels spanning at most this many values (beyond N) map by
# subtraction instead of a sort.
_TABLE_SLACK = 1 << 16


def _as_1d(y):
    if isinstance(y, np.ndarray) and y.ndim == 1:
        return y  # validated already
    return column_or_1d(y, warn=True)


def _check_target_type(y):
    """scikit-learn's target checks (continuous targets are refused), done
    without a sort for integer dtypes."""
    if y.dtype.kind in "iub":
        return
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)):
            raise ValueError("Input y contains NaN or infinity.")
        if np.any(y != np.floor(y)):
            raise ValueError("Unknown label type: continuous. Maybe you are "
                             "trying to fit a classifier, which expects "
                             "discrete classes on a regression target with "
                             "continuous values.")
        return
    check_classification_targets(y)


class Indices:
    """Each row's class index, as the C library takes them (int32): held
    whole, or made batch by batch from integer labels minus lo into a small
    buffer (no N-row int32 array is allocated and faulted in then)."""

    def __init__(self, raw, lo=0):
        self.raw, self.lo = raw, lo

    def __len__(self):
        return self.raw.shape[0]

    def direct(self):
        return self.lo == 0 and self.raw.dtype == np.int32 and \
            self.raw.flags.c_contiguous

    def whole(self):
        """Every row's index, one int32 array."""
        if self.direct():
            return self.raw
        out = np.empty(len(self), dtype=np.int32)
        np.subtract(self.raw, self.lo, out=out, casting="unsafe")
        return out

    def rows(self, r0, r1, buf):
        """Rows r0..r1's indices (in buf, a scratch int32 array, when they
        must be made)."""
        if self.direct():
            return self.raw[r0:r1]
        out = buf[:r1 - r0]
        np.subtract(self.raw[r0:r1], self.lo, out=out, casting="unsafe")
        return out


def encode(y):
    """(classes, Indices, ranged): the sorted distinct labels and each
    row's index into them. Integer labels of a small range map by
    subtraction alone (no sort, no table): then classes is the whole range
    lo..hi, ranged is True, and the caller drops the classes that have no
    row (present_only)."""
    y = _as_1d(y)
    _check_target_type(y)
    if y.dtype.kind in "iu" and y.size:
        lo, hi = int(y.min()), int(y.max())
        if hi - lo < min(y.size + _TABLE_SLACK, 2**31 - 1):
            return np.arange(lo, hi + 1).astype(y.dtype), Indices(y, lo), True
    classes, idx = np.unique(y, return_inverse=True)
    return classes, Indices(np.ascontiguousarray(idx.reshape(-1),
                                                 dtype=np.int32)), False


def present_only(classes, idx, rows):
    """For encode's ranges: (classes, Indices) without the classes of no
    row (rows: rows per class)."""
    keep = rows > 0
    if np.all(keep):
        return classes, idx
    table = np.cumsum(keep, dtype=np.int32) - 1
    return classes[keep], Indices(table[idx.whole()])


def encode_with(classes, y):
    """Each row's index into `classes` (any order); a label not among them
    is a ValueError naming it."""
    y = _as_1d(y)
    classes = np.asarray(classes)
    order = np.argsort(classes, kind="stable")
    sorted_c = classes[order]
    try:
        pos = np.searchsorted(sorted_c, y)
    except TypeError as e:
        raise ValueError(f"labels of type {y.dtype} cannot be compared with "
                         f"classes of type {classes.dtype}") from e
    pos = np.minimum(pos, len(sorted_c) - 1)
    ok = sorted_c[pos] == y
    if not np.all(ok):
        bad = y[np.flatnonzero(~ok)[0]].item()
        raise ValueError(f"y contains label {bad!r}, which is not one of the "
                         f"classes {classes.tolist()!r}")
    return Indices(np.ascontiguousarray(order[pos], dtype=np.int32))


def weights(sample_weight, n):
    """sample_weight as a C-contiguous float64 (n,) array, or None."""
    if sample_weight is None:
        return None
    w = np.ascontiguousarray(np.asarray(sample_weight, dtype=np.float64))
    if w.ndim == 0:
        w = np.full(n, float(w))
    if w.shape != (n,):
        raise ValueError(f"sample_weight.shape == {w.shape}, expected "
                         f"{(n,)}!")
    return w


def names(classes):
    """The class names a model file keeps: the labels as text."""
    return [str(c) for c in np.asarray(classes).tolist()]
