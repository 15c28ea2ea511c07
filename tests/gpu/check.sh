#!/usr/bin/env bash
# check.sh -- everything the CUDA backend needs checked on a machine with an
# NVIDIA GPU, in one command:
#
#   bash tests/gpu/check.sh [--quick] [--no-bench] [--build DIR]
#
# 1. installs what is missing and can be installed (cmake, pkg-config,
#    OpenBLAS, LAPACKE, zlib; apt-get, as root) -- the CUDA toolkit (nvcc,
#    cuBLAS) must already be there (PATH, or /usr/local/cuda/bin);
# 2. configures Release with -DGMLE_ENABLE_CUDA=ON and
#    -DGMLE_TEST_CUDA_SUITES=ON (every suite registered once more as
#    NAME.cuda with GMLE_BACKEND=cuda), builds;
# 3. runs the whole ctest suite: the CPU/OpenCL tests in parallel, then the
#    CUDA ones (NAME.cuda, test_cuda.*) one at a time -- test_cuda compares
#    statistics and every scoring output with the CPU backend, repeated runs
#    bit for bit, 1000 classes, device-resident input, fault-injection
#    sweeps (GMLE_CUDA_FAIL_AT / gmle_cuda_inject_fault), a lost context
#    with a CPU continuation, and more than 2^31 elements;
# 4. runs bench/bench_cuda (pinned H2D and device read bandwidth, f32/f64
#    peaks, SGEMM/DGEMM, SSYRK/DSYRK, streamed and device-resident fits for
#    D in {13,40,128,512,1024} x C in {1,1000}, the C=1000 / C=1 time
#    ratios, full-covariance scoring against SGEMM on the same product);
# 5. prints one summary table: test counts, then every measurement against
#    its limit with PASS / FAIL for the acceptance criteria of issue #5.
#    Logs are kept in DIR/gpu-check/.
# Exit status: 0 when every test passed, 1 when some failed, 2 on setup
# errors (no GPU, no toolkit, build failure).
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=$root/build-gpu
bench=1
quick=()
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=(--quick) ;;
    --no-bench) bench=0 ;;
    --build) build=$2; shift ;;
    *) echo "usage: $0 [--quick] [--no-bench] [--build DIR]" >&2; exit 2 ;;
  esac
  shift
done
logs=$build/gpu-check
mkdir -p "$logs"
jobs=$(nproc 2>/dev/null || echo 4)

say() { printf '\n== %s\n' "$*"; }

# ---- the GPU and the toolkit ------------------------------------------------
say "GPU"
if ! nvidia-smi -L 2>&1 | tee "$logs/gpus.txt" | grep -q "GPU [0-9]"; then
  echo "no NVIDIA GPU visible (nvidia-smi -L); nothing to check here" >&2
  exit 2
fi
nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap \
  --format=csv 2>/dev/null | tee -a "$logs/gpus.txt" || true
if ! command -v nvcc > /dev/null; then
  for d in /usr/local/cuda/bin /usr/local/cuda-*/bin; do
    [ -x "$d/nvcc" ] && export PATH=$d:$PATH && break
  done
fi
if ! command -v nvcc > /dev/null; then
  echo "nvcc not found: install the CUDA toolkit (12.x or 13.x with cuBLAS)" >&2
  exit 2
fi
nvcc --version | tail -2

# ---- missing packages ---------------------------------------------------------
say "packages"
missing=()
command -v cmake > /dev/null || missing+=(cmake)
command -v pkg-config > /dev/null || missing+=(pkg-config)
command -v cc > /dev/null || missing+=(gcc g++)
pkg-config --exists openblas 2> /dev/null || missing+=(libopenblas-dev)
pkg-config --exists lapacke 2> /dev/null || missing+=(liblapacke-dev)
pkg-config --exists zlib 2> /dev/null || missing+=(zlib1g-dev)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  sudo=""
  [ "$(id -u)" != 0 ] && command -v sudo > /dev/null && sudo=sudo
  if command -v apt-get > /dev/null; then
    $sudo apt-get update -q > "$logs/apt.txt" 2>&1 || true
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q \
      "${missing[@]}" >> "$logs/apt.txt" 2>&1 ||
      { tail -20 "$logs/apt.txt"; echo "could not install ${missing[*]}" >&2; exit 2; }
  else
    echo "no apt-get: install ${missing[*]} by hand" >&2
    exit 2
  fi
else
  echo "all present"
fi

# ---- configure and build --------------------------------------------------------
say "configure and build ($build)"
if ! cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release \
     -DGMLE_ENABLE_CUDA=ON -DGMLE_TEST_CUDA_SUITES=ON \
     > "$logs/configure.txt" 2>&1; then
  tail -30 "$logs/configure.txt"
  exit 2
fi
grep -E "CUDA|OpenCL" "$logs/configure.txt" || true
if ! cmake --build "$build" -j"$jobs" > "$logs/build.txt" 2>&1; then
  grep -E "error|Error" "$logs/build.txt" | head -40
  exit 2
fi
echo "built"

# ---- tests ------------------------------------------------------------------------
say "tests (CPU and OpenCL, parallel)"
(cd "$build" && ctest -E '(\.cuda$|^test_cuda)' -j"$jobs" --output-on-failure \
  > "$logs/ctest-host.txt" 2>&1)
host_rc=$?
tail -4 "$logs/ctest-host.txt"
say "tests (CUDA, one at a time)"
(cd "$build" && ctest -R '(\.cuda$|^test_cuda)' --output-on-failure \
  > "$logs/ctest-cuda.txt" 2>&1)
cuda_rc=$?
tail -4 "$logs/ctest-cuda.txt"
echo "-- test_cuda:"
"$build/tests/test_cuda" > "$logs/test_cuda.txt" 2>&1
grep -E "^(CUDA device|FAIL|  )|passed" "$logs/test_cuda.txt" | head -60

# ---- benchmarks ---------------------------------------------------------------------
bench_rc=0
if [ "$bench" = 1 ]; then
  say "bench_cuda ${quick[*]:-}"
  "$build/bench/bench_cuda" "${quick[@]}" > "$logs/bench_cuda.txt" 2>&1
  bench_rc=$?
  [ $bench_rc = 0 ] || tail -20 "$logs/bench_cuda.txt"
fi

# ---- summary ----------------------------------------------------------------------
say "summary"
count() { grep -Eo "[0-9]+ tests failed out of [0-9]+" "$1" | head -1; }
printf '%-34s %s\n' "GPU" "$(sed -n 1p "$logs/gpus.txt")"
printf '%-34s %s\n' "ctest CPU/OpenCL" "$(count "$logs/ctest-host.txt") (rc $host_rc)"
printf '%-34s %s\n' "ctest CUDA" "$(count "$logs/ctest-cuda.txt") (rc $cuda_rc)"
printf '%-34s %s\n' "test_cuda (GPU checks)" \
  "$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$logs/test_cuda.txt" | tail -1)"
failed=$(grep -E "^\s+[0-9]+ - " "$logs/ctest-host.txt" "$logs/ctest-cuda.txt" |
  sed 's/^.*- //' | tr '\n' ' ')
[ -n "$failed" ] && printf '%-34s %s\n' "failed" "$failed"
if [ "$bench" = 1 ] && [ $bench_rc = 0 ]; then
  echo
  sed -n '/^summary/,$p' "$logs/bench_cuda.txt"
fi
echo
echo "logs: $logs"
[ $host_rc = 0 ] && [ $cuda_rc = 0 ] || exit 1
[ $bench_rc = 0 ] || exit 2
exit 0
