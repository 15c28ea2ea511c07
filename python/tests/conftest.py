"""Fixtures of the gmle Python tests: data, and the `gmle` command for the
comparisons with the CLI (GMLE_CLI, else build/tools/gmle of the
repository, else `gmle` on PATH; those tests skip without it)."""
import os
import shutil
import subprocess

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def _find_cli():
    env = os.environ.get("GMLE_CLI")
    if env:
        return env
    built = os.path.join(REPO, "build", "tools", "gmle")
    if os.access(built, os.X_OK):
        return built
    return shutil.which("gmle")


@pytest.fixture(scope="session")
def gmle_cli():
    path = _find_cli()
    if not path:
        pytest.skip("the gmle command is not built (set GMLE_CLI)")

    def run(*args):
        r = subprocess.run([path, *map(str, args), "--quiet"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise AssertionError(f"gmle {' '.join(map(str, args))}: exit "
                                 f"{r.returncode}: {r.stderr}")
        return r.stdout
    return run


def blobs(n, d, c, seed=0, dtype=np.float64, offset=0.0):
    """c classes of correlated Gaussian rows, labels 0..c-1."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, size=n)
    centres = rng.normal(scale=3.0, size=(c, d)) + offset
    A = rng.normal(size=(c, d, d)) / np.sqrt(d) + np.eye(d)
    z = rng.normal(size=(n, d))
    X = centres[y] + np.einsum("nij,nj->ni", A[y], z)
    return X.astype(dtype), y


@pytest.fixture
def data3():
    return blobs(3000, 4, 3, seed=1)
