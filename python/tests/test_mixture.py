"""GaussianMixture against scikit-learn's from the same start (1e-8),
scikit-learn's rule for partial inits, fits from files, Kaldi tables and
iterables, the methods scikit-learn has."""
import pickle
import struct
import warnings

import numpy as np
import pytest
from sklearn import mixture as skm
from sklearn.exceptions import ConvergenceWarning

import gmle

COVS = ["full", "diag", "spherical", "tied"]
ATTRS = ["weights_", "means_", "covariances_", "precisions_cholesky_",
         "precisions_"]


def three_clusters(n=3000, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0, 0.0], [4.0, 1.0, -2.0], [-3.0, 5.0, 1.0]])
    k = rng.integers(0, 3, size=n)
    A = rng.normal(size=(3, 3, 3)) * 0.5 + np.eye(3)
    X = centres[k] + np.einsum("nij,nj->ni", A[k], rng.normal(size=(n, 3)))
    return X.astype(dtype)


def start_for(cov, K=3, D=3, seed=1):
    """A deliberately poor start: weights, means, precisions."""
    rng = np.random.default_rng(seed)
    w = rng.uniform(0.5, 1.5, K)
    w /= w.sum()
    m = rng.normal(scale=2.0, size=(K, D))
    if cov == "full":
        p = np.stack([np.eye(D) * (0.5 + i) for i in range(K)])
    elif cov == "tied":
        p = np.eye(D) * 0.7
    elif cov == "diag":
        p = rng.uniform(0.3, 1.5, size=(K, D))
    else:
        p = rng.uniform(0.3, 1.5, size=K)
    return w, m, p


def assert_same(ours, theirs, X, rtol=1e-8):
    for a in ATTRS:
        np.testing.assert_allclose(getattr(ours, a), getattr(theirs, a),
                                   rtol=rtol, atol=1e-12, err_msg=a)
    np.testing.assert_allclose(ours.score_samples(X), theirs.score_samples(X),
                               rtol=rtol)
    assert ours.n_iter_ == theirs.n_iter_
    assert ours.converged_ == theirs.converged_
    np.testing.assert_allclose(ours.lower_bound_, theirs.lower_bound_,
                               rtol=rtol)


@pytest.mark.parametrize("cov", COVS)
@pytest.mark.parametrize("max_iter,tol", [(1, 1e-3), (10, 0.0), (100, 1e-3)])
def test_same_start_equals_sklearn(cov, max_iter, tol):
    X = three_clusters()
    w, m, p = start_for(cov)
    kw = dict(covariance_type=cov, weights_init=w, means_init=m,
              precisions_init=p, max_iter=max_iter, tol=tol)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = gmle.GaussianMixture(3, **kw).fit(X)
        theirs = skm.GaussianMixture(3, **kw).fit(X)
    assert_same(ours, theirs, X)
    np.testing.assert_allclose(ours.lower_bounds_, theirs.lower_bounds_,
                               rtol=1e-8)
    assert np.array_equal(ours.predict(X), theirs.predict(X))
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X),
                               rtol=1e-7, atol=1e-12)


@pytest.mark.parametrize("given", ["means", "precisions", "weights",
                                   "means+weights"])
@pytest.mark.parametrize("init_params", ["kmeans", "random_from_data"])
def test_partial_init_follows_sklearn(given, init_params):
    """Only some of the init arrays: scikit-learn's rule (its KMeans /
    random responsibilities, then the estimates) gives the same start."""
    X = three_clusters(1500, seed=2)
    w, m, p = start_for("full")
    kw = dict(covariance_type="full", init_params=init_params,
              random_state=7, max_iter=20, tol=0.0)
    if "means" in given:
        kw["means_init"] = m
    if "precisions" in given:
        kw["precisions_init"] = p
    if "weights" in given:
        kw["weights_init"] = w
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = gmle.GaussianMixture(3, **kw).fit(X)
        theirs = skm.GaussianMixture(3, **kw).fit(X)
    if init_params == "random_from_data" and "weights" not in given:
        # scikit-learn's start weights sum to 3/1500 (see mixture.py):
        # its first lower bound is log(3/1500) below ours, nothing else.
        np.testing.assert_allclose(ours.lower_bounds_[0] + np.log(3 / 1500),
                                   theirs.lower_bounds_[0], rtol=1e-8)
        ours.lower_bounds_[0] = theirs.lower_bounds_[0]
    assert_same(ours, theirs, X)
    np.testing.assert_allclose(ours.lower_bounds_, theirs.lower_bounds_,
                               rtol=1e-8)


def test_n_init_and_warm_start():
    X = three_clusters(1500, seed=3)
    a = gmle.GaussianMixture(3, n_init=3, random_state=0).fit(X)
    b = gmle.GaussianMixture(3, n_init=1, random_state=0).fit(X)
    assert a.lower_bound_ >= b.lower_bound_ - 1e-12
    # warm start: continues from the fitted parameters.
    c = gmle.GaussianMixture(3, warm_start=True, max_iter=2, tol=0,
                             random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        c.fit(X)
        lb2 = c.lower_bound_
        c.fit(X)
    assert c.lower_bound_ >= lb2 - 1e-12
    assert c.n_iter_ == 2


def test_fit_predict_and_methods_as_sklearn():
    X = three_clusters(2000, seed=4)
    ours = gmle.GaussianMixture(3, random_state=0).fit(X)
    labels = gmle.GaussianMixture(3, random_state=0).fit_predict(X)
    assert np.array_equal(labels, ours.predict(X))
    # scikit-learn's estimator with our parameters: the same numbers.
    theirs = skm.GaussianMixture(3, random_state=5)
    for a in ATTRS:
        setattr(theirs, a, getattr(ours, a))
    theirs.n_features_in_ = 3
    np.testing.assert_allclose(ours.score_samples(X), theirs.score_samples(X),
                               rtol=1e-10)
    np.testing.assert_allclose(ours.bic(X), theirs.bic(X), rtol=1e-10)
    np.testing.assert_allclose(ours.aic(X), theirs.aic(X), rtol=1e-10)
    assert ours.score(X) == pytest.approx(theirs.score(X), rel=1e-10)
    ours.random_state = 5
    Xs, ys = ours.sample(500)
    Xt, yt = theirs.sample(500)
    assert np.array_equal(ys, yt)
    np.testing.assert_allclose(Xs, Xt, rtol=1e-12)


def test_convergence_warning():
    X = three_clusters(500, seed=5)
    with pytest.warns(ConvergenceWarning):
        gmle.GaussianMixture(3, max_iter=1, random_state=0).fit(X)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fit_from_npy_path_equals_array(tmp_path, dtype):
    X = three_clusters(20000, seed=6, dtype=dtype)
    np.save(tmp_path / "X.npy", X)
    kw = dict(random_state=3, batch_rows=4096)
    a = gmle.GaussianMixture(3, **kw).fit(X)
    b = gmle.GaussianMixture(3, **kw).fit(tmp_path / "X.npy")
    for attr in ATTRS + ["lower_bound_", "n_iter_"]:
        assert np.array_equal(getattr(a, attr), getattr(b, attr)), attr
    assert b.n_features_in_ == 3
    assert np.array_equal(b.score_samples(tmp_path / "X.npy"),
                          a.score_samples(X))
    # the same batches from an iterable: the same bits.
    chunks = [X[i:i + 4096] for i in range(0, len(X), 4096)]
    c = gmle.GaussianMixture(3, **kw).fit(chunks)
    for attr in ATTRS:
        assert np.array_equal(getattr(a, attr), getattr(c, attr)), attr


def write_kaldi_ark(path, mats):
    """A binary Kaldi archive of float matrices (FM)."""
    with open(path, "wb") as f:
        for key, M in mats.items():
            M = np.ascontiguousarray(M, dtype="<f4")
            f.write(key.encode() + b" \0BFM ")
            f.write(b"\4" + struct.pack("<i", M.shape[0]))
            f.write(b"\4" + struct.pack("<i", M.shape[1]))
            f.write(M.tobytes())


def test_fit_from_kaldi_rspecifier(tmp_path):
    X = three_clusters(6000, seed=7, dtype=np.float32)
    cuts = [0, 700, 2500, 2600, 6000]
    write_kaldi_ark(tmp_path / "feats.ark",
                    {f"utt{i}": X[a:b] for i, (a, b) in
                     enumerate(zip(cuts[:-1], cuts[1:]))})
    kw = dict(random_state=1, batch_rows=1000)
    a = gmle.GaussianMixture(3, **kw).fit(X)
    b = gmle.GaussianMixture(3, **kw).fit(f"ark:{tmp_path / 'feats.ark'}")
    for attr in ATTRS:
        assert np.array_equal(getattr(a, attr), getattr(b, attr)), attr


class Reiterable:
    """Batches made on demand: nothing but one batch in memory."""

    def __init__(self, n_batches, seed):
        self.n_batches, self.seed = n_batches, seed

    def __iter__(self):
        for i in range(self.n_batches):
            yield three_clusters(1000, seed=self.seed + i)


def test_fit_from_reiterable_and_its_errors():
    src = Reiterable(5, 10)
    est = gmle.GaussianMixture(3, random_state=0).fit(src)
    X = np.concatenate(list(src))
    ref = gmle.GaussianMixture(3, random_state=0, batch_rows=1000).fit(X)
    for attr in ATTRS:
        np.testing.assert_allclose(getattr(est, attr), getattr(ref, attr),
                                   rtol=1e-12, atol=1e-14)
    with pytest.raises(TypeError, match="re-iterable"):
        gmle.GaussianMixture(3).fit(iter(list(src)))

    class Broken:
        def __iter__(self):
            yield three_clusters(500)
            raise RuntimeError("disk on fire")
    with pytest.raises(RuntimeError, match="disk on fire"):
        gmle.GaussianMixture(2).fit(Broken())


def test_pickle_and_model_file(tmp_path):
    X = three_clusters(1000, seed=8)
    est = gmle.GaussianMixture(3, covariance_type="diag",
                               random_state=0).fit(X)
    back = pickle.loads(pickle.dumps(est))
    assert np.array_equal(back.score_samples(X), est.score_samples(X))
    assert np.array_equal(back.predict_proba(X), est.predict_proba(X))


@pytest.mark.parametrize("cov", COVS)
def test_mixture_model_files(tmp_path, cov):
    """GaussianMixture -> model file -> load_model: the same parameters, bit
    for bit; scikit-learn's arrays in the file."""
    X = three_clusters(1000, seed=9)
    est = gmle.GaussianMixture(3, covariance_type=cov, random_state=0).fit(X)
    gmle.save_model(est, tmp_path / "m.npz")
    z = np.load(tmp_path / "m.npz")
    for name in ("weights", "means", "covariances", "precisions_cholesky"):
        assert np.array_equal(z[name], getattr(est, name + "_")), name
    back = gmle.load_model(tmp_path / "m.npz")
    assert isinstance(back, gmle.GaussianMixture)
    for attr in ATTRS:
        assert np.array_equal(getattr(back, attr), getattr(est, attr)), attr
    assert np.array_equal(back.score_samples(X), est.score_samples(X))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_verbose_prints_iterations(capsys):
    X = three_clusters(500, seed=10)
    gmle.GaussianMixture(2, verbose=2, verbose_interval=1, random_state=0,
                         max_iter=3, tol=0).fit(X)
    out = capsys.readouterr().out
    assert "Initialization 0" in out and "Iteration 3" in out


def test_equals_cli_mixture_fit(tmp_path, gmle_cli):
    """random_state=S fits as `gmle fit --components K --seed S` on the same
    file: the same model file members, bit for bit."""
    X = three_clusters(30000, seed=11, dtype=np.float32)
    np.save(tmp_path / "X.npy", X)
    gmle_cli("fit", tmp_path / "X.npy", "--components", 3, "--cov", "diag",
             "--seed", 5, "-o", tmp_path / "cli.npz")
    cli = np.load(tmp_path / "cli.npz")
    est = gmle.GaussianMixture(3, covariance_type="diag",
                               random_state=5).fit(tmp_path / "X.npy")
    gmle.save_model(est, tmp_path / "py.npz")
    py = np.load(tmp_path / "py.npz")
    for name in ("weights", "means", "covariances", "precisions_cholesky"):
        assert np.array_equal(cli[name], py[name]), name
    assert np.array_equal(est.means_, cli["means"])
