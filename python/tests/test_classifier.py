"""GaussianClassifier: the CLI's bits, partial_fit = fit, weights, pickles,
class labels, covariance types against a numpy float64 reference."""
import pickle

import numpy as np
import pytest

import gmle
from conftest import blobs

COVS = ["full", "diag", "spherical", "tied"]


def rel_err(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300)


def numpy_reference(X, y, classes, cov, w=None):
    """Per-class MLE in float64, two passes, divided by n (not n - 1)."""
    X = X.astype(np.float64)
    w = np.ones(len(X)) if w is None else w
    means, covs, counts = [], [], []
    for c in classes:
        Xc, wc = X[y == c], w[y == c]
        n = wc.sum()
        mu = (wc[:, None] * Xc).sum(0) / n
        d = Xc - mu
        S = (wc[:, None] * d).T @ d / n
        means.append(mu), covs.append(S), counts.append(n)
    means, covs, counts = np.array(means), np.array(covs), np.array(counts)
    if cov == "diag":
        covs = np.diagonal(covs, axis1=1, axis2=2)
    elif cov == "spherical":
        covs = np.diagonal(covs, axis1=1, axis2=2).mean(1)
    elif cov == "tied":
        covs = np.einsum("c,cij->ij", counts, covs) / counts.sum()
    return means, covs, counts / counts.sum()


@pytest.mark.parametrize("cov", COVS)
def test_fit_matches_float64_reference(cov, data3):
    X, y = data3
    est = gmle.GaussianClassifier(covariance_type=cov).fit(X, y)
    means, covs, priors = numpy_reference(X, y, est.classes_, cov)
    assert rel_err(est.means_, means) < 1e-12
    assert rel_err(est.covariances_, covs) < 1e-12
    assert rel_err(est.priors_, priors) < 1e-14
    assert est.covariances_.shape == covs.shape
    # precisions_cholesky_: U U^T = inverse covariance (scikit-learn's).
    U = est.precisions_cholesky_
    if cov == "full":
        P = np.einsum("cij,ckj->cik", U, U)
        ref = np.linalg.inv(covs)
    elif cov == "tied":
        P, ref = U @ U.T, np.linalg.inv(covs)
    else:
        P, ref = U ** 2, 1 / covs
    assert rel_err(P, ref) < 1e-10


def test_predictions_are_bayes_rule(data3):
    X, y = data3
    est = gmle.GaussianClassifier().fit(X, y)
    from scipy.stats import multivariate_normal
    joint = np.stack([np.log(est.priors_[c]) + multivariate_normal(
        est.means_[c], est.covariances_[c]).logpdf(X) for c in range(3)], 1)
    assert rel_err(est.predict_joint_log_proba(X), joint) < 1e-11
    lp = est.predict_log_proba(X)
    ref = joint - np.logaddexp.reduce(joint, axis=1, keepdims=True)
    np.testing.assert_allclose(lp, ref, rtol=1e-11, atol=1e-10)
    assert np.allclose(est.predict_proba(X).sum(1), 1)
    assert np.array_equal(est.predict(X), est.classes_[joint.argmax(1)])
    assert np.allclose(est.score_samples(X),
                       np.logaddexp.reduce(joint, axis=1), rtol=1e-12)
    assert est.decision_function(X).shape == (len(X), 3)
    assert est.score(X, y) > 0.9


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cov", ["full", "diag"])
def test_equals_cli_bit_for_bit(tmp_path, gmle_cli, dtype, cov):
    """gmle fit + gmle classify / score on the same files: the same bits
    (150000 rows: three of the CLI's batches)."""
    X, y = blobs(150000, 5, 4, seed=3, dtype=dtype, offset=100.0)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y.astype(np.int64))
    gmle_cli("fit", tmp_path / "X.npy", "--labels", tmp_path / "y.npy",
             "--cov", cov, "-o", tmp_path / "cli.npz")
    gmle_cli("classify", tmp_path / "cli.npz", tmp_path / "X.npy", "-o",
             tmp_path / "pred.npy")
    gmle_cli("score", tmp_path / "cli.npz", tmp_path / "X.npy", "--what",
             "logpost", "-o", tmp_path / "logpost.npy")

    est = gmle.GaussianClassifier(covariance_type=cov).fit(X, y)
    gmle.save_model(est, tmp_path / "py.npz")
    cli, py = np.load(tmp_path / "cli.npz"), np.load(tmp_path / "py.npz")
    for k in ("means", "covariances", "priors", "counts", "rows",
              "classes", "covariance_type"):
        assert np.array_equal(cli[k], py[k]), k
    assert np.array_equal(est.predict(X), np.load(tmp_path / "pred.npy"))
    assert np.array_equal(est.predict_log_proba(X),
                          np.load(tmp_path / "logpost.npy"))
    # The Python model file scores in the CLI as the CLI's own does.
    gmle_cli("score", tmp_path / "py.npz", tmp_path / "X.npy", "--what",
             "logpost", "-o", tmp_path / "logpost_py.npy")
    assert np.array_equal(np.load(tmp_path / "logpost_py.npy"),
                          np.load(tmp_path / "logpost.npy"))


def test_text_labels_equal_cli(tmp_path, gmle_cli):
    X, yi = blobs(5000, 3, 3, seed=4)
    names = np.array(["fox", "cat", "dog"])
    y = names[yi]
    np.save(tmp_path / "X.npy", X)
    (tmp_path / "y.txt").write_text("\n".join(y) + "\n")
    gmle_cli("fit", tmp_path / "X.npy", "--labels", tmp_path / "y.txt",
             "-o", tmp_path / "cli.npz")
    est = gmle.GaussianClassifier().fit(X, y)
    assert list(est.classes_) == ["cat", "dog", "fox"]
    cli = gmle.load_model(tmp_path / "cli.npz")
    assert list(cli.classes_) == ["cat", "dog", "fox"]
    assert np.array_equal(cli.means_, est.means_)
    assert np.array_equal(cli.covariances_, est.covariances_)
    assert np.array_equal(cli.predict(X), est.predict(X))


@pytest.mark.parametrize("cov", COVS)
def test_partial_fit_seven_chunks_equals_fit(cov, data3):
    X, y = data3
    full = gmle.GaussianClassifier(covariance_type=cov).fit(X, y)
    part = gmle.GaussianClassifier(covariance_type=cov)
    bounds = np.linspace(0, len(X), 8).astype(int)
    for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):
        part.partial_fit(X[a:b], y[a:b], classes=[0, 1, 2] if i == 0 else None)
    for k in ("means_", "covariances_", "priors_", "class_count_"):
        assert rel_err(getattr(part, k), getattr(full, k)) < 1e-12, k
    assert np.array_equal(part.predict(X), full.predict(X))


def test_partial_fit_needs_classes_and_knows_them(data3):
    X, y = data3
    est = gmle.GaussianClassifier()
    with pytest.raises(ValueError, match="classes must be passed"):
        est.partial_fit(X, y)
    est.partial_fit(X[:100], y[:100], classes=[0, 1, 2, 7])
    with pytest.raises(ValueError, match="label 5"):
        est.partial_fit(X[:3], np.array([0, 5, 1]))
    # class 7 has no rows yet: prior 0, scored -inf, never predicted.
    assert est.priors_[3] == 0
    assert np.all(np.isneginf(est.predict_log_proba(X)[:, 3]))
    assert not np.any(est.predict(X) == 7)


def test_weights_equal_repeats(data3):
    X, y = data3
    rng = np.random.default_rng(5)
    w = rng.integers(1, 4, size=len(X))
    a = gmle.GaussianClassifier().fit(X, y, sample_weight=w.astype(float))
    b = gmle.GaussianClassifier().fit(np.repeat(X, w, 0), np.repeat(y, w))
    for k in ("means_", "covariances_", "priors_", "class_count_"):
        assert rel_err(getattr(a, k), getattr(b, k)) < 1e-12, k
    means, covs, priors = numpy_reference(X, y, a.classes_, "full", w)
    assert rel_err(a.covariances_, covs) < 1e-12


def test_pickle_round_trip(data3):
    X, y = data3
    est = gmle.GaussianClassifier(covariance_type="diag").fit(X[:2000],
                                                              y[:2000])
    state = est.__getstate__()
    assert "_handle" not in state  # no C handle: parameters and bytes only
    blob = pickle.dumps(est)
    back = pickle.loads(blob)
    assert np.array_equal(back.predict_log_proba(X), est.predict_log_proba(X))
    # The statistics travel too: partial_fit goes on after unpickling.
    back.partial_fit(X[2000:], y[2000:])
    full = gmle.GaussianClassifier(covariance_type="diag").fit(X, y)
    assert rel_err(back.covariances_, full.covariances_) < 1e-12


def test_mixture_per_class(data3):
    X, y = data3
    est = gmle.GaussianClassifier(n_components=2, random_state=0).fit(X, y)
    C, K, D = 3, 2, X.shape[1]
    assert est.weights_.shape == (C, K)
    assert est.means_.shape == (C, K, D)
    assert est.covariances_.shape == (C, K, D, D)
    assert est.precisions_cholesky_.shape == (C, K, D, D)
    assert np.allclose(est.weights_.sum(1), 1)
    assert est.n_iter_ >= 1 and est.score(X, y) > 0.9
    back = pickle.loads(pickle.dumps(est))
    assert np.array_equal(back.predict_proba(X), est.predict_proba(X))
    with pytest.raises(ValueError, match="partial_fit"):
        est.partial_fit(X, y)


def test_fit_from_stats_equals_fit(data3):
    X, y = data3
    st = gmle.Stats(X.shape[1], classes=[0, 1, 2]).add(X, y)
    a = st.fit("tied")
    b = gmle.GaussianClassifier(covariance_type="tied").fit(X, y)
    assert np.array_equal(a.covariances_, b.covariances_)
    assert np.array_equal(a.predict(X), b.predict(X))


def test_mixture_per_class_model_file(tmp_path, data3):
    X, y = data3
    est = gmle.GaussianClassifier(n_components=2, covariance_type="diag",
                                  random_state=0).fit(X, y)
    gmle.save_model(est, tmp_path / "m.npz")
    back = gmle.load_model(tmp_path / "m.npz")
    assert isinstance(back, gmle.GaussianClassifier)
    assert np.array_equal(back.classes_, est.classes_)
    for k in ("weights_", "means_", "covariances_", "priors_"):
        assert np.array_equal(getattr(back, k), getattr(est, k)), k
    assert np.array_equal(back.predict_log_proba(X), est.predict_log_proba(X))


@pytest.mark.parametrize("labels", ["offset int16", "uint8", "gaps",
                                    "negative", "float", "bool"])
def test_label_kinds_give_the_same_model(data3, labels):
    X, y = data3
    ref = gmle.GaussianClassifier().fit(X, y)
    yy = {"offset int16": (y + 5).astype(np.int16),
          "uint8": y.astype(np.uint8),
          "gaps": y * 1000 - 7,
          "negative": -y,
          "float": y.astype(np.float64) * 2,  # integral: classes
          "bool": None}[labels]
    if yy is None:
        keep = y < 2
        X, y, yy = X[keep], y[keep], y[keep] == 1
        ref = gmle.GaussianClassifier().fit(X, y)
    est = gmle.GaussianClassifier().fit(X, yy)
    assert est.classes_.dtype == np.asarray(yy).dtype
    assert np.array_equal(est.classes_, np.unique(yy))
    # the same classes in the same sorted order as ref's, up to relabelling
    perm = np.searchsorted(np.unique(yy), np.array(
        [yy[np.flatnonzero(y == c)[0]] for c in ref.classes_]))
    assert np.array_equal(est.means_[perm], ref.means_)
    assert np.array_equal(est.covariances_[perm], ref.covariances_)
    pred = est.predict(X)
    assert pred.dtype == np.asarray(yy).dtype
    want = np.asarray(yy)[[np.flatnonzero(y == c)[0]
                           for c in ref.classes_]][ref.predict(X)]
    assert np.array_equal(pred, want)


def test_refit_as_another_kind_forgets_the_first(data3):
    X, y = data3
    est = gmle.GaussianClassifier(n_components=2, random_state=0).fit(X, y)
    est.set_params(n_components=1).fit(X, y)
    assert not hasattr(est, "weights_")
    back = pickle.loads(pickle.dumps(est))
    ref = gmle.GaussianClassifier().fit(X, y)
    assert np.array_equal(back.predict_log_proba(X), ref.predict_log_proba(X))
    assert back.precisions_cholesky_.shape == ref.covariances_.shape


def test_partial_fit_in_the_fit_batches_is_bit_identical():
    X, y = blobs(150000, 3, 3, seed=9)
    b = 65536  # the CLI's batch for 3 float64 features
    full = gmle.GaussianClassifier().fit(X, y)
    part = gmle.GaussianClassifier()
    for r in range(0, len(X), b):
        part.partial_fit(X[r:r + b], y[r:r + b], classes=[0, 1, 2])
    assert np.array_equal(part.covariances_, full.covariances_)
    assert np.array_equal(part.means_, full.means_)
