"""gmle -- Gaussian maximum-likelihood estimation at scale, for Python.

scikit-learn estimators over the gmle C library (ctypes, no extension
module): GaussianClassifier (one Gaussian, or a mixture, per class),
GaussianMixture (a drop-in for scikit-learn's, also on files and streams
too large for memory), Stats (mergeable, picklable sufficient statistics
for Dask, Spark or Ray), model and data files, devices.

Arrays go to C without copies when they are float32/float64 with evenly
spaced contiguous rows; every C call releases the GIL.
"""
from ._lib import (DeviceError, FileFormatError, GmleError, GmleIOError,
                   GmleValueError, library_path, version)
from .classifier import GaussianClassifier
from .io import devices, iter_batches, load_model, read_array, save_model
from .mixture import GaussianMixture
from .stats import Stats

__version__ = "0.1.0"

__all__ = ["GaussianClassifier", "GaussianMixture", "Stats", "load_model",
           "save_model", "devices", "iter_batches", "read_array",
           "GmleError", "GmleValueError", "FileFormatError", "GmleIOError",
           "DeviceError", "library_path", "version"]
