"""_core.py -- the library's handles as Python objects: contexts (one lock
each), models, statistics; and arrays passed to C without copies.

Threads. Every C call releases the GIL (ctypes.CDLL). A context is used by
one call at a time: each Context has a lock that every call on it (and on
the models and statistics made on it) holds, so one estimator used from
two threads is safe; the calls are serialised. Contexts are cached per
Python thread, backend, device and thread count, so estimators fitted in
different threads run in parallel.

gmle's own threads are OpenMP threads, counted when a context is created:
n_jobs, or else the calling thread's OpenMP limit (OMP_NUM_THREADS, or a
threadpoolctl limit in force), as omp_get_max_threads() gives it.
"""
import ctypes
import os
import threading
import weakref
from ctypes import byref, c_void_p

import numpy as np

from . import _lib
from ._lib import lib

# ---------------------------------------------------------------------------
# OpenMP: the runtime libgmle was linked with (already loaded by then)
# ---------------------------------------------------------------------------


def _find_openmp():
    for name in ("libgomp.so.1", "libomp.so.5", "libomp.so", "libiomp5.so"):
        try:
            h = ctypes.CDLL(name, mode=os.RTLD_NOLOAD | os.RTLD_LOCAL)
        except OSError:
            continue
        try:
            h.omp_get_max_threads.restype = ctypes.c_int
            h.omp_set_num_threads.argtypes = [ctypes.c_int]
            return h
        except AttributeError:
            continue
    return None


_omp = _find_openmp()


def omp_max_threads():
    """The calling thread's OpenMP thread limit for gmle (1 when libgmle
    has no OpenMP runtime)."""
    return int(_omp.omp_get_max_threads()) if _omp else 1


def resolve_n_jobs(n_jobs):
    """None: the calling thread's OpenMP limit; n > 0: n; n < 0: as joblib,
    cpu_count + 1 + n (-1: every core)."""
    if n_jobs is None:
        return omp_max_threads()
    n_jobs = int(n_jobs)
    if n_jobs == 0:
        raise ValueError("n_jobs == 0 has no meaning; use None, a positive "
                         "count, or -1 for every core")
    if n_jobs < 0:
        n_jobs = max(1, (os.cpu_count() or 1) + 1 + n_jobs)
    return n_jobs


# ---------------------------------------------------------------------------
# Contexts
# ---------------------------------------------------------------------------


class Context:
    """A gmle_context with its lock."""

    def __init__(self, backend="auto", device=None, n_threads=None):
        if backend not in _lib.BACKEND:
            raise ValueError(f"backend must be one of "
                             f"{sorted(_lib.BACKEND)}, got {backend!r}")
        ptr = c_void_p()
        dev = -1 if device is None else int(device)
        saved = omp_max_threads()
        if _omp and n_threads:
            _omp.omp_set_num_threads(int(n_threads))
        try:
            code = lib.gmle_context_create(_lib.BACKEND[backend], dev,
                                           byref(ptr))
        finally:
            if _omp and n_threads:
                _omp.omp_set_num_threads(saved)
        if code != 0:
            err = _lib.error_for(code, ptr.value, f"backend {backend!r}")
            lib.gmle_context_free(ptr.value)
            raise err
        self.ptr = ptr.value
        self.lock = threading.RLock()
        self.n_threads = n_threads or saved
        weakref.finalize(self, lib.gmle_context_free, self.ptr)

    @property
    def backend(self):
        return lib.gmle_backend_name(
            lib.gmle_context_backend(self.ptr)).decode()

    @property
    def device_name(self):
        name = lib.gmle_context_device_name(self.ptr)
        return name.decode("utf-8", "replace")

    def call(self, fn, *args, prefix=None):
        """fn(*args) under the lock; a failing status raises with the
        context's message (read before the lock is released)."""
        with self.lock:
            code = fn(*args)
            if code != 0:
                raise _lib.error_for(code, self.ptr, prefix)


_local = threading.local()


def context(backend="auto", device=None, n_jobs=None):
    """The calling thread's context for backend/device/thread count."""
    threads = resolve_n_jobs(n_jobs)
    key = (backend, device, threads)
    cache = getattr(_local, "contexts", None)
    if cache is None:
        cache = _local.contexts = {}
    ctx = cache.get(key)
    if ctx is None:
        ctx = cache[key] = Context(backend, device, threads)
    return ctx


# ---------------------------------------------------------------------------
# Models and statistics
# ---------------------------------------------------------------------------


class Handle:
    """An owned library object (a gmle_model or gmle_stats) made on ctx;
    freed with free_fn when the Python object goes, before its context."""

    def __init__(self, ctx, ptr, free_fn):
        self.ctx = ctx
        self.ptr = ptr
        self._fin = weakref.finalize(self, _free_after, free_fn, ptr, ctx)

    def release(self):
        """Give up ownership (the library took the object over)."""
        self._fin.detach()
        self.ptr = None


def _free_after(free_fn, ptr, ctx):
    # ctx is an argument so that the context outlives the object.
    with ctx.lock:
        free_fn(ptr)


def new_model(ctx, ptr):
    return Handle(ctx, ptr, lib.gmle_model_free)


def new_stats(ctx, ptr):
    return Handle(ctx, ptr, lib.gmle_stats_free)


# ---------------------------------------------------------------------------
# Arrays
# ---------------------------------------------------------------------------


def as_rows(X):
    """(X, dtype code, row stride in elements) for C: float32 and float64
    arrays whose rows are contiguous and evenly spaced (C order, row slices
    of wider arrays, every k-th row, read-only memmaps) go as they are;
    anything else is converted once to a C-contiguous array (other dtypes
    to float64)."""
    X = np.asarray(X)
    if X.dtype not in (np.float32, np.float64) or \
            not X.dtype.isnative:
        X = X.astype(np.float64 if X.dtype != np.float32 else np.float32)
    if X.ndim != 2:
        raise ValueError(f"Expected a 2-D array, got {X.ndim}-D")
    n, d = X.shape
    isz = X.itemsize
    s0, s1 = X.strides
    if not (X.flags.aligned and (s1 == isz or d <= 1) and s0 >= 0
            and s0 % isz == 0 and (s0 // isz >= d or n <= 1)):
        X = np.ascontiguousarray(X)
        s0 = X.strides[0]
    stride = s0 // isz if n > 1 else d
    code = _lib.F32 if X.dtype == np.float32 else _lib.F64
    return X, code, max(stride, d)


def ptr(a):
    """The address of an array's first element (None for None)."""
    return None if a is None else a.ctypes.data


def batch_bounds(n, batch_rows):
    r = 0
    while r < n:
        yield r, min(n, r + batch_rows)
        r += batch_rows


def default_batch_rows(n_features, itemsize, extra_per_row=8):
    """The CLI's batch (tools/data.c): at most 65536 rows and about 32 MiB
    of input values; adding the same batches gives bit-identical
    statistics."""
    per_row = n_features * itemsize + extra_per_row
    return max(1, min(65536, (32 << 20) // per_row))


def as_f64(a, shape=None, name="array"):
    a = np.ascontiguousarray(a, dtype=np.float64)
    if shape is not None and a.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got "
                         f"{a.shape}")
    return a


def c_str_array(strings):
    """A NUL-terminated char * array of UTF-8 strings (kept alive by the
    returned tuple's first element)."""
    raw = [s.encode("utf-8", "surrogateescape") for s in strings]
    arr = (ctypes.c_char_p * len(raw))(*raw)
    return arr, raw
