#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what is missing, builds
# (Release, warnings as errors) and runs every ctest suite.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
gmle_install_deps
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DGMLE_WERROR=ON >/dev/null
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j"$jobs"
