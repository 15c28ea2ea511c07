"""_source.py -- where EM reads its rows (gmle_batch_source): an array in
memory, a data file or Kaldi table read through gmle_reader (never loaded
whole), or a re-iterable of arrays. The C library calls rewind and next
from the thread that called gmle_em_fit; ctypes takes the GIL for them.

A Python exception inside a callback is kept and re-raised by the caller
after the C call returns (the callback returns a failing status)."""
import os
from ctypes import byref, c_size_t, c_uint64, c_void_p

import numpy as np

from . import _core, _lib
from ._lib import lib


class _Source:
    """Base: builds the gmle_batch_source; subclasses define _rewind() and
    _next() -> (X, labels, weights) or None at the end."""

    def __init__(self):
        self.error = None
        self._keep = None
        self._rewind_cb = _lib.BATCH_REWIND(self._rewind_c)
        self._next_cb = _lib.BATCH_NEXT(self._next_c)
        self.struct = _lib.BatchSource(None, self._rewind_cb, self._next_cb)

    def _rewind_c(self, user):
        try:
            self._rewind()
            return 0
        except BaseException as e:  # kept and re-raised after the C call
            self.error = e
            return _lib.E_INVALID_ARG

    def _next_c(self, user, x, dtype, n_rows, row_stride, labels, weights):
        try:
            item = self._next()
        except BaseException as e:
            self.error = e
            return _lib.E_INVALID_ARG
        if item is None:
            self._keep = None
            n_rows[0] = 0
            x[0] = None
            dtype[0] = _lib.F64
            row_stride[0] = 1
            labels[0] = None
            weights[0] = None
            return 0
        X, code, stride, y, w = item
        self._keep = item
        x[0] = _core.ptr(X)
        dtype[0] = code
        n_rows[0] = X.shape[0]
        row_stride[0] = stride
        labels[0] = _core.ptr(y)
        weights[0] = _core.ptr(w)
        return 0

    def raise_error(self):
        if self.error is not None:
            e, self.error = self.error, None
            raise e


class ArraySource(_Source):
    """An in-memory array (zero-copy), in batches of batch_rows rows."""

    def __init__(self, X, labels=None, weights=None, batch_rows=None):
        super().__init__()
        self.X, self.code, self.stride = _core.as_rows(X)
        self.n_features = self.X.shape[1]
        self.labels, self.weights = labels, weights
        self.batch_rows = batch_rows or _core.default_batch_rows(
            self.n_features, self.X.itemsize)
        self.pos = 0

    def _rewind(self):
        self.pos = 0

    def _next(self):
        n = self.X.shape[0]
        if self.pos >= n:
            return None
        r0, r1 = self.pos, min(n, self.pos + self.batch_rows)
        self.pos = r1
        return (self.X[r0:r1], self.code, self.stride,
                None if self.labels is None else self.labels[r0:r1],
                None if self.weights is None else self.weights[r0:r1])


class ReaderSource(_Source):
    """A data file (.npy, CSV) or Kaldi rspecifier ("ark:...", "scp:...")
    streamed through gmle_reader in batches; its errors land on ctx."""

    def __init__(self, ctx, path, batch_rows=None):
        super().__init__()
        self.ctx = ctx
        self.path = os.fspath(path)
        opt = _lib.reader_options()
        h = c_void_p()
        ctx.call(lib.gmle_reader_open, ctx.ptr, self.path.encode(),
                 byref(opt), byref(h), prefix=self.path)
        self.reader = _core.Handle(ctx, h.value, lib.gmle_reader_free)
        self.n_features = int(lib.gmle_reader_cols(h.value))
        self.code = int(lib.gmle_reader_dtype(h.value))
        if self.n_features == 0:
            raise ValueError(f"{self.path}: no feature columns")
        dt = np.float32 if self.code == _lib.F32 else np.float64
        self.batch_rows = batch_rows or _core.default_batch_rows(
            self.n_features, np.dtype(dt).itemsize)
        total = c_uint64()
        if lib.gmle_reader_rows(h.value, byref(total)) and total.value:
            self.batch_rows = min(self.batch_rows, int(total.value))
        self.buf = np.empty((self.batch_rows, self.n_features), dtype=dt)

    def n_rows(self):
        total = c_uint64()
        if lib.gmle_reader_rows(self.reader.ptr, byref(total)):
            return int(total.value)
        return None

    def _rewind(self):
        code = lib.gmle_reader_rewind(self.reader.ptr)
        if code:
            raise _lib.error_for(code, self.ctx.ptr, self.path)

    def _next(self):
        got = c_size_t()
        code = lib.gmle_reader_read(self.reader.ptr, _core.ptr(self.buf),
                                    self.batch_rows, byref(got), None)
        if code:
            raise _lib.error_for(code, self.ctx.ptr, self.path)
        if got.value == 0:
            return None
        return (self.buf[:got.value], self.code, self.n_features, None, None)

    def batches(self):
        """Every batch as a numpy array (the same buffer, refilled)."""
        self._rewind()
        while True:
            item = self._next()
            if item is None:
                return
            yield item[0]


class IterableSource(_Source):
    """A re-iterable of arrays (or (X, labels) / (X, labels, weights)
    tuples), iterated once per EM pass; `encode` maps labels to indices."""

    def __init__(self, iterable, encode=None):
        super().__init__()
        if iter(iterable) is iterable:
            raise TypeError("an iterator can be read only once; EM reads the "
                            "data once per iteration: pass a re-iterable (a "
                            "list, or an object whose __iter__ starts over)")
        self.iterable = iterable
        self.encode = encode
        self.it = None
        self.n_features = None

    def _rewind(self):
        self.it = iter(self.iterable)

    def _next(self):
        for item in self.it:
            y = w = None
            if isinstance(item, tuple):
                X = item[0]
                y = item[1] if len(item) > 1 else None
                w = item[2] if len(item) > 2 else None
            else:
                X = item
            X, code, stride = _core.as_rows(X)
            if X.shape[0] == 0:
                continue
            if self.n_features is None:
                self.n_features = X.shape[1]
            elif X.shape[1] != self.n_features:
                raise ValueError(f"a batch has {X.shape[1]} features, the "
                                 f"first had {self.n_features}")
            if y is not None:
                if self.encode is None:
                    raise ValueError("labels given for an unsupervised fit")
                y = self.encode(y)
            elif self.encode is not None:
                raise ValueError("a batch without labels")
            if w is not None:
                w = np.ascontiguousarray(w, dtype=np.float64)
            return X, code, stride, y, w
        return None

    def peek_features(self):
        """The feature count of the first batch (one read)."""
        self._rewind()
        item = self._next()
        if item is None:
            raise ValueError("the iterable yields no rows")
        return item[0].shape[1]
