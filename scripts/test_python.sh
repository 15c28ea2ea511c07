#!/usr/bin/env bash
# The Python package's tests (python/tests) in a virtual environment made
# here: `pip install ./python` (scikit-build-core compiles libgmle into the
# package, without CUDA, tests, tools or benchmarks), then pytest. The
# comparisons with the CLI use build/tools/gmle when scripts/test.sh has
# built it (they skip otherwise).
#
#   bash scripts/test_python.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
gmle_install_deps
gmle_install_venv
venv="$PWD/build-py/venv"
rm -rf build-py
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet ./python pytest scikit-learn numpy "dask[array]"
if [ -x build/tools/gmle ]; then
  export GMLE_CLI="$PWD/build/tools/gmle"
fi
unset GMLE_LIBRARY  # the library the package built
# From outside the source tree, so that `import gmle` is the installed one.
cd build-py
"$venv/bin/python" -m pytest -q -p no:cacheprovider ../python/tests
