"""Zero copies, the GIL released, one estimator from two threads, errors as
exceptions, thread control."""
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import gmle
from gmle import _core
from conftest import blobs


# -- zero copies --------------------------------------------------------------
def _addr(a):
    return a.__array_interface__["data"][0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rows_go_to_c_without_copies(tmp_path, dtype):
    base = np.arange(600, dtype=dtype).reshape(100, 6)
    cases = {
        "C order": (base, 6),
        "columns 0..3 of wider rows": (base[:, :4], 6),
        "every other row": (base[::2], 12),
        "rows 10..": (base[10:], 6),
    }
    np.save(tmp_path / "m.npy", base)
    mm = np.load(tmp_path / "m.npy", mmap_mode="r")  # read-only memmap
    assert not mm.flags.writeable
    cases["read-only memmap"] = (mm, 6)
    for name, (X, stride) in cases.items():
        Y, code, got = _core.as_rows(X)
        assert _addr(Y) == _addr(X), name
        assert got == stride, name
        assert code == (1 if dtype == np.float32 else 2)


def test_estimators_pass_user_arrays_through(tmp_path, monkeypatch):
    """Through validation too: the rows reaching C are the caller's."""
    X, y = blobs(3000, 4, 3, seed=7)
    wide = np.hstack([X, X]).astype(np.float32)
    np.save(tmp_path / "W.npy", wide)
    mm = np.load(tmp_path / "W.npy", mmap_mode="r")
    seen = []
    orig = _core.as_rows

    def spy(A):
        out = orig(A)
        seen.append(_addr(out[0]))
        return out
    monkeypatch.setattr(_core, "as_rows", spy)
    for view in (mm[:, :4], mm[::3, 2:6]):
        want = _addr(view)
        seen.clear()
        est = gmle.GaussianClassifier().fit(view, y[:len(view)])
        est.predict_proba(view)
        gm = gmle.GaussianMixture(2, random_state=0).fit(view)
        gm.score_samples(view)
        assert seen and all(a == want for a in seen), (seen, want)


def test_other_layouts_convert_once():
    X = np.arange(60).reshape(20, 3)  # int64
    Y, code, stride = _core.as_rows(X)
    assert Y.dtype == np.float64 and code == 2 and stride == 3
    F = np.asfortranarray(np.ones((20, 3)))
    Y, _, _ = _core.as_rows(F)
    assert Y.flags.c_contiguous and _addr(Y) != _addr(F)


def test_strided_and_memmap_inputs_score_as_copies(tmp_path):
    X, y = blobs(3000, 4, 3, seed=1)
    wide = np.hstack([X, np.zeros((len(X), 3))])
    est = gmle.GaussianClassifier().fit(wide[:, :4], y)
    ref = gmle.GaussianClassifier().fit(X.copy(), y)
    assert np.array_equal(est.covariances_, ref.covariances_)
    np.save(tmp_path / "X.npy", X)
    mm = np.load(tmp_path / "X.npy", mmap_mode="r")
    assert np.array_equal(ref.predict_log_proba(mm),
                          ref.predict_log_proba(X))
    assert np.array_equal(ref.predict_log_proba(X[::2]),
                          ref.predict_log_proba(X[::2].copy()))


# -- threads ------------------------------------------------------------------
def _slow_model():
    """A model and rows whose scoring takes a while on one thread."""
    X, y = blobs(20000, 32, 24, seed=2)
    est = gmle.GaussianClassifier(backend="cpu", n_jobs=1).fit(X, y)
    Q = np.tile(X, (30, 1))
    return est, Q


def test_gil_released_during_c_calls():
    est, Q = _slow_model()
    t0 = time.perf_counter()
    est.predict_log_proba(Q)
    one = time.perf_counter() - t0
    assert one > 0.05, "the call is too short to tell"

    def work():
        for _ in range(3):
            est.predict_log_proba(Q)
    th = threading.Thread(target=work)
    ticks = []
    th.start()
    while th.is_alive():
        ticks.append(time.perf_counter())
        time.sleep(0.001)
    th.join()
    gaps = np.diff(ticks)
    # Holding the GIL through a call would stop this loop for its whole
    # duration; released, the loop runs on.
    assert len(ticks) > 10
    assert gaps.max() < one / 2, (gaps.max(), one)


def test_one_estimator_from_two_threads():
    X, y = blobs(20000, 6, 4, seed=3)
    est = gmle.GaussianClassifier(covariance_type="diag").fit(X, y)
    halves = [X[:10000], X[10000:]]
    want = [est.predict_log_proba(h) for h in halves]
    got, errors = [None, None], []

    def work(i):
        try:
            for _ in range(20):
                r = est.predict_log_proba(halves[i])
                if not np.array_equal(r, want[i]):
                    errors.append(i)
            got[i] = r
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)
    ths = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    assert not errors


def test_n_jobs_and_threadpoolctl_set_gmle_threads():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    X, y = blobs(2000, 3, 2, seed=4)
    est = gmle.GaussianClassifier(backend="cpu", n_jobs=1).fit(X, y)
    assert est.device_name_.startswith("CPU (1 threads")
    with threadpoolctl.threadpool_limits(limits=1, user_api="openmp"):
        est = gmle.GaussianClassifier(backend="cpu").fit(X, y)
    assert est.device_name_.startswith("CPU (1 threads")
    est = gmle.GaussianClassifier(backend="cpu", n_jobs=-1).fit(X, y)
    assert est.device_name_.startswith(f"CPU ({os.cpu_count()} threads")
    # threadpoolctl sees (and so can limit) gmle's OpenMP runtime and its
    # BLAS; none runs more threads than there are cores.
    info = threadpoolctl.threadpool_info()
    apis = {i["user_api"] for i in info}
    assert {"openmp", "blas"} <= apis
    assert all(i["num_threads"] <= os.cpu_count() for i in info)


def test_import_beside_numpy_changes_no_thread_setting():
    """Importing gmle leaves numpy's BLAS threads and the environment as
    they were, and gmle's default is one thread per core."""
    code = """
import os, numpy, threadpoolctl
def pools():
    return {i['filepath']: i['num_threads']
            for i in threadpoolctl.threadpool_info()}
before = pools()
env = {k: os.environ.get(k)
       for k in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS')}
import gmle
after = pools()
assert all(after[k] == v for k, v in before.items()), (before, after)
assert env == {k: os.environ.get(k) for k in env}
X = numpy.random.default_rng(0).normal(size=(1000, 3))
est = gmle.GaussianClassifier(backend='cpu').fit(X, X[:, 0] > 0)
n = int(est.device_name_.split('(')[1].split()[0])
assert n <= os.cpu_count(), n
print('ok', n)
"""
    pytest.importorskip("threadpoolctl")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True,
                       text=True, env=dict(os.environ))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("ok")


# -- errors -------------------------------------------------------------------
def test_nan_and_inf_rejected_with_the_row():
    X, y = blobs(500, 3, 2, seed=5)
    bad = X.copy()
    bad[17, 2] = np.nan
    with pytest.raises(ValueError, match="NaN") as e:
        gmle.GaussianClassifier().fit(bad, y)
    assert isinstance(e.value, gmle.GmleError)
    assert e.value.location.get("row") == 17
    assert e.value.location.get("column") == 2
    est = gmle.GaussianClassifier().fit(X, y)
    bad[17, 2] = np.inf
    with pytest.raises(ValueError, match="(?i)inf"):
        est.predict(bad)
    with pytest.raises(ValueError, match="NaN"):
        gmle.GaussianMixture(2).fit(np.where(np.isinf(bad), np.nan, bad))


def test_bad_inputs_are_value_errors():
    X, y = blobs(500, 3, 2, seed=6)
    est = gmle.GaussianClassifier().fit(X, y)
    with pytest.raises(ValueError, match="features"):
        est.predict(X[:, :2])
    with pytest.raises(ValueError, match="(?i)weight"):
        gmle.GaussianClassifier().fit(X, y, sample_weight=-np.ones(len(X)))
    with pytest.raises(ValueError, match="covariance_type"):
        gmle.GaussianClassifier(covariance_type="banana").fit(X, y)
    with pytest.raises(ValueError, match="continuous"):
        gmle.GaussianClassifier().fit(X, X[:, 0])
    const = np.ones((50, 3))
    with pytest.raises(gmle.GmleValueError, match="class 0"):
        gmle.GaussianClassifier(rel_floor=0).fit(const, np.zeros(50, int))
    with pytest.raises(ValueError, match="n_samples >= n_components"):
        gmle.GaussianMixture(5).fit(X[:4])
    with pytest.raises(ValueError, match="weights"):
        gmle.GaussianMixture(2, weights_init=[0.5, 0.6]).fit(X)


def test_device_errors_have_their_own_class():
    if gmle._lib.lib.gmle_backend_compiled(3) and gmle.devices("cuda"):
        pytest.skip("a CUDA device is present")
    with pytest.raises(gmle.DeviceError, match="cuda"):
        gmle.GaussianClassifier(backend="cuda").fit(*blobs(100, 2, 2))
    assert not issubclass(gmle.DeviceError, ValueError)


def test_library_struct_sizes_match():
    """Options structs: the library's struct_size equals the package's
    ctypes layouts (checked at import too)."""
    from ctypes import sizeof
    lib = gmle._lib
    assert lib.STRUCT_SIZES["gmle_fit_options"] == sizeof(lib.FitOptions)
    assert lib.STRUCT_SIZES["gmle_em_options"] == sizeof(lib.EMOptions)
    assert lib.STRUCT_SIZES["gmle_reader_options"] == \
        sizeof(lib.ReaderOptions)


def test_every_backend_with_a_device_agrees_with_the_cpu():
    """backend= reaches the library: OpenCL (PoCL in CI) and CUDA, where a
    device is present, give the CPU's model within the accuracy contract."""
    X, y = blobs(4000, 5, 3, seed=8)
    ref = gmle.GaussianClassifier(backend="cpu").fit(X, y)
    others = sorted({d["backend"] for d in gmle.devices()} - {"cpu"})
    if not others:
        pytest.skip("no device besides the CPU")
    for b in others:
        est = gmle.GaussianClassifier(backend=b).fit(X, y)
        assert est._model().ctx.backend == b
        np.testing.assert_allclose(est.covariances_, ref.covariances_,
                                   rtol=1e-12)
        np.testing.assert_allclose(est.predict_log_proba(X),
                                   ref.predict_log_proba(X), rtol=1e-9,
                                   atol=1e-9)
        gm = gmle.GaussianMixture(2, backend=b, random_state=0).fit(X)
        gr = gmle.GaussianMixture(2, backend="cpu", random_state=0).fit(X)
        np.testing.assert_allclose(gm.means_, gr.means_, rtol=1e-8)
