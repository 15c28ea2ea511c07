"""Model files both ways with the CLI, data readers, devices."""
import numpy as np
import pytest

import gmle
from conftest import blobs


@pytest.mark.parametrize("cov", ["full", "diag", "spherical", "tied"])
def test_cli_model_loads_and_saves_bit_for_bit(tmp_path, gmle_cli, cov):
    X, y = blobs(4000, 3, 3, seed=2)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    gmle_cli("fit", tmp_path / "X.npy", "--labels", tmp_path / "y.npy",
             "--cov", cov, "-o", tmp_path / "cli.npz")
    est = gmle.load_model(tmp_path / "cli.npz")
    f = np.load(tmp_path / "cli.npz")
    assert np.array_equal(est.classes_, [0, 1, 2])
    assert np.array_equal(est.means_, f["means"])
    assert np.array_equal(est.covariances_, f["covariances"])
    assert np.array_equal(est.priors_, f["priors"])
    # Saved again from Python: the same file, byte for byte.
    gmle.save_model(est, tmp_path / "again.npz")
    assert (tmp_path / "again.npz").read_bytes() == \
        (tmp_path / "cli.npz").read_bytes()
    # and it predicts as `gmle classify` does.
    gmle_cli("classify", tmp_path / "cli.npz", tmp_path / "X.npy", "-o",
             tmp_path / "pred.npy")
    assert np.array_equal(est.predict(X), np.load(tmp_path / "pred.npy"))


def test_model_file_round_trip(tmp_path):
    X, y = blobs(2000, 3, 2, seed=3)
    est = gmle.GaussianClassifier(covariance_type="diag").fit(X, y * 10)
    gmle.save_model(est, tmp_path / "m.npz")
    back = gmle.load_model(tmp_path / "m.npz")
    assert np.array_equal(back.classes_, [0, 10])
    assert np.array_equal(back.predict_log_proba(X), est.predict_log_proba(X))
    assert back.fit_report_[0]["rows"] == est.fit_report_[0]["rows"]


def test_corrupt_and_missing_model_files(tmp_path):
    X, y = blobs(500, 2, 2, seed=4)
    est = gmle.GaussianClassifier().fit(X, y)
    gmle.save_model(est, tmp_path / "m.npz")
    data = bytearray((tmp_path / "m.npz").read_bytes())
    data[200] ^= 0xFF
    (tmp_path / "bad.npz").write_bytes(bytes(data))
    with pytest.raises(gmle.FileFormatError, match="bad.npz") as e:
        gmle.load_model(tmp_path / "bad.npz")
    assert e.value.status in ("GMLE_E_CORRUPT", "GMLE_E_BAD_FORMAT")
    with pytest.raises(gmle.GmleIOError):
        gmle.load_model(tmp_path / "missing.npz")
    with pytest.raises(OSError):  # GmleIOError is an OSError
        gmle.load_model(tmp_path / "missing.npz")


def test_readers(tmp_path):
    X = np.arange(30.0).reshape(10, 3)
    np.save(tmp_path / "X.npy", X.astype(np.float32))
    np.savetxt(tmp_path / "X.csv", X, delimiter=",")
    np.save(tmp_path / "F.npy", np.asfortranarray(X))
    got = gmle.read_array(tmp_path / "X.npy")
    assert got.dtype == np.float32 and np.array_equal(got, X)
    assert np.array_equal(gmle.read_array(tmp_path / "X.csv"), X)
    assert np.array_equal(gmle.read_array(tmp_path / "F.npy"), X)
    parts = list(gmle.iter_batches(tmp_path / "X.npy", batch_rows=4))
    assert [len(p) for p in parts] == [4, 4, 2]
    (tmp_path / "bad.csv").write_text("1,2\n3,x\n")
    with pytest.raises(gmle.FileFormatError, match="bad.csv"):
        gmle.read_array(tmp_path / "bad.csv")


def test_devices():
    devs = gmle.devices()
    assert any(d["backend"] == "cpu" for d in devs)
    cpu = gmle.devices("cpu")
    assert len(cpu) == 1 and cpu[0]["compute_units"] >= 1
