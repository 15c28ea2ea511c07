"""gmle.Stats: merges, files shared with the CLI, pickles as the bytes of
the statistics file, and the Dask reduction of the README."""
import pickle
from functools import reduce

import numpy as np
import pytest

import gmle
from conftest import blobs

CLASSES = ["a", "b", "c"]


def labelled(n=8000, seed=0):
    X, yi = blobs(n, 4, 3, seed=seed, offset=50.0)
    return X, np.array(CLASSES)[yi]


def rel_err(a, b):
    return np.max(np.abs(a - b)) / np.max(np.abs(b))


def test_merge_of_shards_equals_one_pass():
    X, y = labelled()
    whole = gmle.Stats(4, CLASSES).add(X, y)
    parts = [gmle.Stats(4, CLASSES).add(X[i::3], y[i::3]) for i in range(3)]
    merged = reduce(lambda a, b: a + b, parts)
    assert np.array_equal(merged.rows, whole.rows)
    a, b = merged.fit(), whole.fit()
    assert rel_err(a.means_, b.means_) < 1e-12
    assert rel_err(a.covariances_, b.covariances_) < 1e-12
    assert list(a.classes_) == CLASSES
    with pytest.raises(ValueError, match="different classes"):
        parts[0].merge(gmle.Stats(4, ["a", "b", "x"]))
    with pytest.raises(ValueError, match="not one of the classes"):
        parts[0].add(X[:2], ["a", "z"])


def test_pickle_is_the_stats_file(tmp_path):
    X, y = labelled(3000)
    st = gmle.Stats(4, CLASSES).add(X, y)
    st.save(tmp_path / "s.st")
    data = (tmp_path / "s.st").read_bytes()
    assert st.to_bytes() == data
    assert st.__getstate__()["stats_file"] == data
    back = pickle.loads(pickle.dumps(st))
    assert back.to_bytes() == data
    assert list(back.classes) == CLASSES
    assert np.array_equal(back.fit().covariances_, st.fit().covariances_)


def test_stats_files_shared_with_cli(tmp_path, gmle_cli):
    X, y = labelled(5000)
    np.save(tmp_path / "X.npy", X)
    (tmp_path / "y.txt").write_text("\n".join(y) + "\n")
    # gmle stats -> Python: the same statistics, bit for bit.
    gmle_cli("stats", tmp_path / "X.npy", "--labels", tmp_path / "y.txt",
             "-o", tmp_path / "cli.st")
    st = gmle.Stats(4, CLASSES).add(X, y)
    st.save(tmp_path / "py.st")
    assert (tmp_path / "cli.st").read_bytes() == \
        (tmp_path / "py.st").read_bytes()
    loaded = gmle.Stats.load(tmp_path / "cli.st")
    assert list(loaded.classes) == CLASSES
    # Python statistics -> gmle fit --stats: the model Stats.fit makes.
    gmle_cli("fit", "--stats", tmp_path / "py.st", "-o", tmp_path / "m.npz")
    m = np.load(tmp_path / "m.npz")
    est = st.fit()
    assert np.array_equal(m["covariances"], est.covariances_)
    assert np.array_equal(m["means"], est.means_)


def test_dask_reduction_equals_one_process():
    """The README's pattern: statistics per partition, a tree reduction
    with merge, one fit; 4 partitions in worker processes (the statistics
    travel pickled)."""
    db = pytest.importorskip("dask.bag")
    X, y = labelled(40000, seed=3)
    bounds = np.linspace(0, len(X), 5).astype(int)
    parts = [(X[a:b], y[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]

    def per_partition(rows):
        st = gmle.Stats(4, CLASSES, n_jobs=1)
        for Xp, yp in rows:
            st.add(Xp, yp)
        return st

    def merge_all(stats):
        return reduce(lambda a, b: a.merge(b), stats)

    bag = db.from_sequence(parts, npartitions=4)
    total = bag.reduction(per_partition, merge_all, split_every=2)
    stats = total.compute(scheduler="processes", num_workers=2)
    assert int(stats.rows.sum()) == len(X)
    dist = stats.fit()
    one = gmle.GaussianClassifier().fit(X, y)
    assert rel_err(dist.means_, one.means_) < 1e-12
    assert rel_err(dist.covariances_, one.covariances_) < 1e-12
    assert rel_err(dist.priors_, one.priors_) < 1e-14
    assert np.array_equal(dist.predict(X), one.predict(X))
