#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what is missing, builds
# (Release, warnings as errors) and runs every ctest suite, once per
# compiled backend (CPU, and OpenCL on PoCL when present), then the Python
# package's suite (scripts/test_python.sh).
#
#   bash scripts/test.sh              the suite (what the README calls)
#   bash scripts/test.sh --sanitize   the same suite built with
#                                     AddressSanitizer + UBSan (+ leaks)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
gmle_install_deps
jobs=$(nproc 2>/dev/null || echo 2)
if [ "${1:-}" = "--sanitize" ]; then
  # Debug + ASan/UBSan; CUDA is left out (its module is not instrumented and
  # cannot run here), and the bounded-memory CLI test is skipped: it sets a
  # small `ulimit -v`, which ASan's shadow memory cannot live in.
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DGMLE_SANITIZE=ON \
    -DGMLE_ENABLE_CUDA=OFF -DGMLE_BUILD_BENCH=OFF -DGMLE_WERROR=ON >/dev/null
  cmake --build build-asan -j"$jobs"
  # intercept_tls_get_addr=0: LeakSanitizer's tracer otherwise crashes at
  # exit ("Tracer caught signal 11", a bogus dynamic-TLS range) walking the
  # dynamic TLS that PoCL's dlopen'ed libraries leave behind; leaks are
  # still detected (heap, stacks, static TLS and globals are scanned).
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:intercept_tls_get_addr=0 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-asan --output-on-failure -j"$jobs" -E cli_bounded_memory
  exit
fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DGMLE_WERROR=ON >/dev/null
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j"$jobs"
# The Python package: built by pip in a fresh virtual environment, its
# pytest suite (compared with this build's gmle command).
bash scripts/test_python.sh
