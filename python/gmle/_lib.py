"""_lib.py -- the C library through ctypes: loading it, its structs and
prototypes, and its statuses as Python exceptions.

The library is the libgmle.so built into this package, or the one the
GMLE_LIBRARY environment variable names. It is loaded with ctypes.CDLL,
which releases the GIL during every foreign call.
"""
import ctypes
import os
from ctypes import (CFUNCTYPE, POINTER, Structure, c_char, c_char_p, c_double,
                    c_int, c_size_t, c_uint, c_uint64, c_void_p)

# ---------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------


def library_path():
    """The path of the C library this package loads."""
    env = os.environ.get("GMLE_LIBRARY")
    if env:
        return env
    return os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        "libgmle.so")


def _load():
    # gmle's OpenMP threads sleep between calls instead of spinning (as the
    # gmle command sets for its data commands): libgomp reads this once,
    # when it is loaded, and spinning threads took the cores the next call
    # and numpy's own threads needed (a fit through Python ran at 0.4x the
    # C API's speed with spinning, 1.0x without; bench/python_overhead.py).
    # A value the user set is kept.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    path = library_path()
    if not os.path.exists(path):
        raise ImportError(
            f"gmle: the C library {path} is missing: install the package "
            "with `pip install ./python` from the repository root, or point "
            "GMLE_LIBRARY at a built libgmle.so")
    return ctypes.CDLL(path)


lib = _load()

# ---------------------------------------------------------------------------
# Enumerations (values pinned in gmle.h)
# ---------------------------------------------------------------------------
F32, F64 = 1, 2
COV = {"full": 0, "diag": 1, "spherical": 2, "tied": 3}
BACKEND = {"auto": 0, "cpu": 1, "opencl": 2, "cuda": 3}
OUT_LOGLIK, OUT_JOINT, OUT_LOGPOST, OUT_LABEL, OUT_DENSITY, OUT_RESP = range(6)
STATS_FULL, STATS_DIAG = 0, 1
EM_SOFT, EM_HARD, EM_TOP_N = 0, 1, 2
INIT_KMEANSPP, INIT_RANDOM, INIT_MODEL, INIT_SPLIT = 0, 1, 2, 3
LOC_BATCH, LOC_ROW, LOC_COLUMN, LOC_OFFSET, LOC_LINE, LOC_CLASS = (
    1, 2, 4, 8, 16, 32)

# ---------------------------------------------------------------------------
# Structs (layouts of gmle.h / gmle_io.h; checked against the library's own
# struct_size at import, below)
# ---------------------------------------------------------------------------


class FitOptions(Structure):
    _fields_ = [("struct_size", c_size_t), ("cov", c_int),
                ("priors", POINTER(c_double)), ("rel_floor", c_double),
                ("abs_floor", c_double), ("max_condition", c_double),
                ("shrinkage", c_int), ("allow_empty", c_int)]


EM_PROGRESS = CFUNCTYPE(None, c_void_p, c_size_t, c_size_t, c_double,
                        c_double, c_double, c_double)


class EMOptions(Structure):
    _fields_ = [("struct_size", c_size_t), ("n_components", c_size_t),
                ("cov", c_int), ("mode", c_int), ("top_n", c_size_t),
                ("init", c_int), ("init_model", c_void_p),
                ("max_iter", c_size_t), ("tol", c_double),
                ("n_init", c_size_t), ("seed", c_uint64),
                ("reg_covar", c_double), ("rel_floor", c_double),
                ("min_weight", c_double), ("sample_rows", c_size_t),
                ("kmeans_iter", c_size_t), ("split_iter", c_size_t),
                ("priors", POINTER(c_double)), ("progress", EM_PROGRESS),
                ("progress_user", c_void_p), ("combine", c_void_p)]


class ReaderOptions(Structure):
    _fields_ = [("struct_size", c_size_t), ("delimiter", c_char),
                ("header", c_int), ("label_column", c_char_p),
                ("ark_dtype", c_int), ("labels_only", c_int)]


class ErrorLocation(Structure):
    _fields_ = [("batch", c_uint64), ("row", c_uint64), ("column", c_uint64),
                ("byte_offset", c_uint64), ("line", c_uint64),
                ("class_index", c_size_t), ("fields", c_uint)]


class DeviceInfo(Structure):
    _fields_ = [("backend", c_int), ("index", c_int), ("is_default", c_int),
                ("is_gpu", c_int), ("fp64", c_int), ("compute_units", c_uint),
                ("global_mem", c_uint64), ("name", c_char * 128),
                ("platform", c_char * 128)]


class EMReport(Structure):
    _fields_ = [("n_iter", c_size_t), ("converged", c_int),
                ("lower_bound", c_double), ("n_history", c_size_t),
                ("history", POINTER(c_double)), ("n_reseeded", c_size_t),
                ("n_init", c_size_t), ("best_init", c_size_t),
                ("mode", c_int), ("init", c_int), ("reg_covar", c_double),
                ("n_rows", c_double)]


class ClassReport(Structure):
    _fields_ = [("rows", c_uint64), ("weight", c_double),
                ("min_eigenvalue", c_double), ("max_eigenvalue", c_double),
                ("condition", c_double), ("n_floored", c_size_t),
                ("empty", c_int), ("shrinkage", c_double)]


BATCH_REWIND = CFUNCTYPE(c_int, c_void_p)
BATCH_NEXT = CFUNCTYPE(c_int, c_void_p, POINTER(c_void_p), POINTER(c_int),
                       POINTER(c_size_t), POINTER(c_size_t),
                       POINTER(c_void_p), POINTER(c_void_p))


class BatchSource(Structure):
    _fields_ = [("user", c_void_p), ("rewind", BATCH_REWIND),
                ("next", BATCH_NEXT)]


# ---------------------------------------------------------------------------
# Prototypes
# ---------------------------------------------------------------------------
_p, _sz, _st = c_void_p, c_size_t, c_int
_pd, _pi32 = POINTER(c_double), c_void_p
_PROTOS = {
    # name: (restype, argtypes)
    "gmle_version_string": (c_char_p, []),
    "gmle_status_string": (c_char_p, [c_int]),
    "gmle_status_name": (c_char_p, [c_int]),
    "gmle_backend_compiled": (c_int, [c_int]),
    "gmle_context_create": (_st, [c_int, c_int, POINTER(c_void_p)]),
    "gmle_context_free": (None, [_p]),
    "gmle_context_error": (c_char_p, [_p]),
    "gmle_context_error_location": (_st, [_p, POINTER(ErrorLocation)]),
    "gmle_context_backend": (c_int, [_p]),
    "gmle_context_device_name": (c_char_p, [_p]),
    "gmle_backend_name": (c_char_p, [c_int]),
    "gmle_device_list": (_st, [c_int, POINTER(DeviceInfo), _sz,
                               POINTER(c_size_t), c_char_p, _sz]),
    "gmle_stats_create_mode": (_st, [_p, _sz, _sz, c_int, POINTER(c_void_p)]),
    "gmle_stats_add_checked": (_st, [_p, _p, c_int, _sz, _sz, _sz, _p, _p]),
    "gmle_stats_merge": (_st, [_p, _p]),
    "gmle_stats_clone": (_st, [_p, POINTER(c_void_p)]),
    "gmle_stats_free": (None, [_p]),
    "gmle_stats_dim": (_sz, [_p]),
    "gmle_stats_n_classes": (_sz, [_p]),
    "gmle_stats_get_mode": (c_int, [_p]),
    "gmle_stats_rows": (_st, [_p, _sz, POINTER(c_uint64)]),
    "gmle_stats_weight": (_st, [_p, _sz, _pd]),
    "gmle_stats_mean": (_st, [_p, _sz, _p]),
    "gmle_stats_set_class_names": (_st, [_p, _p]),
    "gmle_stats_class_name": (c_char_p, [_p, _sz]),
    "gmle_stats_save": (_st, [_p, c_char_p]),
    "gmle_stats_load": (_st, [_p, c_char_p, POINTER(c_void_p)]),
    "gmle_fit_options_init": (None, [_p]),
    "gmle_fit": (_st, [_p, _p, POINTER(c_void_p)]),
    "gmle_model_create": (_st, [_p, _sz, _sz, c_int, _p, _p, _p, _p,
                                POINTER(c_void_p)]),
    "gmle_model_free": (None, [_p]),
    "gmle_model_dim": (_sz, [_p]),
    "gmle_model_n_classes": (_sz, [_p]),
    "gmle_model_cov_type": (c_int, [_p]),
    "gmle_model_mean": (_st, [_p, _sz, _p]),
    "gmle_model_covariance": (_st, [_p, _sz, _p]),
    "gmle_model_prior": (_st, [_p, _sz, _pd]),
    "gmle_model_count": (_st, [_p, _sz, _pd]),
    "gmle_model_report": (_st, [_p, _sz, POINTER(ClassReport)]),
    "gmle_model_loglik": (_st, [_p, c_int, _pd]),
    "gmle_model_n_params": (_sz, [_p]),
    "gmle_model_information": (_st, [_p, _pd, _pd]),
    "gmle_model_set_class_names": (_st, [_p, _p]),
    "gmle_model_class_name": (c_char_p, [_p, _sz]),
    "gmle_model_save": (_st, [_p, c_char_p]),
    "gmle_model_load": (_st, [_p, c_char_p, POINTER(c_void_p)]),
    "gmle_score": (_st, [_p, _p, _p, c_int, _sz, _sz, c_int, c_int, _p]),
    "gmle_total_loglik": (_st, [_p, _p, _p, c_int, _sz, _sz, _p, _p, _pd]),
    "gmle_em_options_init": (None, [_p]),
    "gmle_em_fit": (_st, [_p, _sz, _sz, POINTER(BatchSource), _p,
                          POINTER(c_void_p)]),
    "gmle_mixture_create": (_st, [_p, _sz, _sz, _sz, c_int, _p, _p, _p, _p,
                                  _p, POINTER(c_void_p)]),
    "gmle_model_is_mixture": (c_int, [_p]),
    "gmle_model_n_components": (_sz, [_p]),
    "gmle_mixture_params": (_st, [_p, _p, _p, _p]),
    "gmle_mixture_precisions_cholesky": (_st, [_p, _p]),
    "gmle_model_em_report": (_st, [_p, POINTER(EMReport)]),
    "gmle_reader_options_init": (None, [_p]),
    "gmle_reader_open": (_st, [_p, c_char_p, _p, POINTER(c_void_p)]),
    "gmle_reader_free": (None, [_p]),
    "gmle_reader_cols": (_sz, [_p]),
    "gmle_reader_rows": (c_int, [_p, POINTER(c_uint64)]),
    "gmle_reader_dtype": (c_int, [_p]),
    "gmle_reader_read": (_st, [_p, _p, _sz, POINTER(c_size_t), _p]),
    "gmle_reader_rewind": (_st, [_p]),
    "gmle_reader_format": (c_char_p, [_p]),
}
for _name, (_res, _args) in _PROTOS.items():
    _fn = getattr(lib, _name)
    _fn.restype = _res
    _fn.argtypes = _args


def _check_struct(init, cls):
    """The library writes sizeof(its struct) into struct_size: it must be
    the size of ours, or the layouts differ."""
    buf = ctypes.create_string_buffer(4096)
    getattr(lib, init)(buf)
    size = c_size_t.from_buffer(buf).value
    if size != ctypes.sizeof(cls):
        raise ImportError(
            f"gmle: {init} reports a struct of {size} bytes, but the Python "
            f"package's {cls.__name__} has {ctypes.sizeof(cls)}: the library "
            f"({library_path()}) does not match this package")
    return size


STRUCT_SIZES = {
    "gmle_fit_options": _check_struct("gmle_fit_options_init", FitOptions),
    "gmle_em_options": _check_struct("gmle_em_options_init", EMOptions),
    "gmle_reader_options": _check_struct("gmle_reader_options_init",
                                         ReaderOptions),
}


def fit_options():
    o = FitOptions()
    lib.gmle_fit_options_init(ctypes.byref(o))
    return o


def em_options():
    o = EMOptions()
    lib.gmle_em_options_init(ctypes.byref(o))
    return o


def reader_options():
    o = ReaderOptions()
    lib.gmle_reader_options_init(ctypes.byref(o))
    return o


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------


class GmleError(Exception):
    """An error of the gmle library. `status` is the library's status name
    ("GMLE_E_BAD_LABEL"), `code` its value, `location` a dict of the
    batch/row/column/byte_offset/line/class_index it names (may be empty)."""

    def __init__(self, message, status=None, code=None, location=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.location = location or {}


class GmleValueError(GmleError, ValueError):
    """Bad input: data, labels, weights, options, or a model that cannot be
    fitted from them."""


class FileFormatError(GmleError, ValueError):
    """A malformed, corrupt or unsupported file."""


class GmleIOError(GmleError, OSError):
    """A system error reading or writing a file."""


class DeviceError(GmleError, RuntimeError):
    """A device error: no usable device for the backend, a device fault, a
    device out of memory, or a lost device."""


_CLASS_OF = {}
for _code in (1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 16, 22):
    _CLASS_OF[_code] = GmleValueError
for _code in (13, 14, 15, 24):
    _CLASS_OF[_code] = FileFormatError
_CLASS_OF[12] = GmleIOError
for _code in (18, 19, 20, 21):
    _CLASS_OF[_code] = DeviceError
E_NONFINITE_INPUT = 3
E_INVALID_ARG = 1
E_UNSUPPORTED = 17
E_OUT_OF_MEMORY = 2


def status_name(code):
    return lib.gmle_status_name(code).decode()


def location_of(ctx_ptr):
    loc = ErrorLocation()
    if not ctx_ptr or lib.gmle_context_error_location(ctx_ptr,
                                                      ctypes.byref(loc)):
        return {}
    out = {}
    for bit, name in ((LOC_BATCH, "batch"), (LOC_ROW, "row"),
                      (LOC_COLUMN, "column"), (LOC_OFFSET, "byte_offset"),
                      (LOC_LINE, "line"), (LOC_CLASS, "class_index")):
        if loc.fields & bit:
            out[name] = int(getattr(loc, name))
    return out


def error_for(code, ctx_ptr, prefix=None):
    """The exception for a failed call on context ctx_ptr (may be None)."""
    msg = lib.gmle_context_error(ctx_ptr).decode("utf-8", "replace") \
        if ctx_ptr else ""
    if not msg:
        msg = lib.gmle_status_string(code).decode()
    if code == E_NONFINITE_INPUT:
        # scikit-learn's words first, the library's place after them.
        msg = f"Input X contains NaN or infinity: {msg}"
    if prefix:
        msg = f"{prefix}: {msg}"
    name = status_name(code)
    loc = location_of(ctx_ptr)
    if code == E_OUT_OF_MEMORY:
        err = MemoryError(msg)
        err.status = name
        return err
    cls = _CLASS_OF.get(code, GmleError)
    return cls(msg, status=name, code=code, location=loc)


def check(code, ctx_ptr, prefix=None):
    if code != 0:
        raise error_for(code, ctx_ptr, prefix)


def version():
    """The version of the C library loaded ("0.1.0")."""
    return lib.gmle_version_string().decode()
