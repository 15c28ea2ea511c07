#!/usr/bin/env bash
# check.sh -- the CUDA backend's check on a bare NVIDIA machine, from the
# folder tests/gpu/prepare.sh made (copied there with this script as its
# check.sh). Needs the NVIDIA driver and a CUDA runtime with cuBLAS of the
# major version the pack was built with; no network, no build, no cmake,
# make, pkg-config or apt:
#
#   bash check.sh [--quick | --em] [--no-bench] [--logs DIR]
#
# 1. unpacks the pack's libraries (lib.tar.gz, or lib/: OpenBLAS, LAPACKE,
#    libgfortran, ...) into a private prefix under $TMPDIR (never over /;
#    needs tar and gzip) and puts it, the pack's
#    build/ and the CUDA toolkit's library folder on LD_LIBRARY_PATH;
# 2. checks that every library of libgmle, libgmle_cuda.so and the programs
#    resolves, printing what does not (exit 2);
# 3. checks that nvidia-smi lists a GPU (else exit 2: nothing to check) and
#    that a CUDA context opens (test_cuda with GMLE_REQUIRE_GPU=1; else the
#    CUDA error, exit 2);
# 4. runs test_cuda once (parity with the CPU, bit-identical repeats, 1000
#    classes, device-resident input, the fault sweeps, > 2^31 elements),
#    test_cuda_em (EM statistics and 5 EM iterations from a given start
#    against the CPU, diag and full, within 1e-9; fault sweeps), the same
#    5 iterations through the CLI (gmle fit --backend cuda vs cpu), the suites
#    with GMLE_BACKEND=cuda (four at a time), bench_cuda --quick and
#    bench_cuda --em (an EM iteration at the bench shapes, diag K=64 and
#    full K=16, D=40, N=10^6 float32, beside the CPU backend on all cores);
#    --quick: only test_cuda's and test_cuda_em's parity tests and
#    test_cross_backend; --em: only test_cuda_em, the CLI EM run and
#    bench_cuda --em (about 5 minutes at most);
# 5. prints one summary table (see README, "GPU check"), the EM timing
#    lines for BENCHMARKS.md and the EM parity figures.
# Whole run about 10 minutes on an H100 at most (each step has a time
# limit), --quick under 4. Logs: DIR (default ./gpu-logs).
# Exit status: 0 all passed, 1 something failed or timed out, 2 setup (a
# library missing, no GPU, no CUDA context).
set -uo pipefail

pack=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
quick=0
em=0
bench=1
logs=$PWD/gpu-logs
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --em) em=1 ;;
    --no-bench) bench=0 ;;
    --logs) logs=$2; shift ;;
    *) echo "usage: $0 [--quick | --em] [--no-bench] [--logs DIR]" >&2; exit 2 ;;
  esac
  shift
done
mkdir -p "$logs" || exit 2
say() { printf '\n== %s\n' "$*"; }

# ---- 1. the private prefix and the loader's path --------------------------------
prefix=$(mktemp -d "${TMPDIR:-/tmp}/gmle-gpu.XXXXXX") || exit 2
trap 'rm -rf "$prefix"' EXIT
mkdir -p "$prefix/lib"
[ -d "$pack/lib" ] && cp -a "$pack/lib/." "$prefix/lib/"
if [ -f "$pack/lib.tar.gz" ] && ! tar -xzf "$pack/lib.tar.gz" -C "$prefix"; then
  echo "cannot unpack $pack/lib.tar.gz (tar and gzip are needed)" >&2
  exit 2
fi
cuda_libs=""
nvcc_dir=$(dirname "$(command -v nvcc 2> /dev/null || echo /nonexistent/bin/nvcc)")
for d in "${CUDA_HOME:-/nonexistent}" "$nvcc_dir/.." /usr/local/cuda /usr/local/cuda-*; do
  for sub in lib64 lib targets/x86_64-linux/lib targets/sbsa-linux/lib; do
    if ls "$d/$sub"/libcudart.so.* > /dev/null 2>&1; then
      cuda_libs=$(cd "$d/$sub" && pwd)
      break 2
    fi
  done
done
export LD_LIBRARY_PATH="$pack/build:$prefix/lib${cuda_libs:+:$cuda_libs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}

# ---- 2. every library resolves ------------------------------------------------------
say "libraries (private prefix $prefix/lib; CUDA ${cuda_libs:-not found, the loader decides})"
progs=("$pack"/build/libgmle.so.0 "$pack"/build/libgmle_cuda.so
  "$pack"/build/tests/* "$pack"/build/bench/* "$pack"/build/tools/*)
: > "$logs/ldd.txt"
unresolved=0
for f in "${progs[@]}"; do
  out=$(ldd "$f" 2>&1)
  printf '%s\n%s\n' "$f:" "$out" >> "$logs/ldd.txt"
  if printf '%s\n' "$out" | grep -q "not found"; then
    printf '%s\n' "$out" | grep "not found" | sed "s|^|  $(basename "$f"): |"
    unresolved=1
  fi
done
# Where each library came from: the pack's own, CUDA's, or the system's.
awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }' "$logs/ldd.txt" | sort -u |
  awk -v p="$prefix/lib/" -v b="$pack/build/" '
    index($2, p) == 1 { n_pack++; next }
    index($2, b) == 1 { next }
    { other[$1] = $2 }
    END {
      printf "  %d from the private prefix;", n_pack
      for (k in other) printf " %s => %s;", k, other[k]
      printf "\n"
    }'
if [ $unresolved = 1 ]; then
  echo "libraries missing (above): a CUDA runtime / cuBLAS of another major version, or an incomplete pack" >&2
  exit 2
fi
echo "  every library resolves"

# ---- 3. a GPU and a CUDA context ------------------------------------------------------
say "GPU"
if ! nvidia-smi -L > "$logs/gpus.txt" 2>&1 || ! grep -q "^GPU [0-9]" "$logs/gpus.txt"; then
  echo "no NVIDIA GPU visible (nvidia-smi -L lists none): nothing to check on this machine" >&2
  exit 2
fi
cat "$logs/gpus.txt"
nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap \
  --format=csv,noheader >> "$logs/gpus.txt" 2> /dev/null || true
if ! GMLE_REQUIRE_GPU=1 "$pack/build/tests/test_cuda" cuda_context_opens \
  > "$logs/context.txt" 2>&1; then
  cat "$logs/context.txt"
  echo "a GPU is listed but no CUDA context opens (above)" >&2
  exit 2
fi
grep "^CUDA device" "$logs/context.txt"

# ---- 4. the steps -----------------------------------------------------------------------
# step NAME LIMIT_S ENV... -- COMMAND...: one row of the summary.
rows=()
failed=0
step() {
  local name=$1 limit=$2 log="$logs/$1.txt"
  shift 2
  local envs=()
  while [ "$1" != -- ]; do envs+=("$1"); shift; done
  shift
  local t0=$SECONDS
  env "${envs[@]}" timeout "$limit" "$@" > "$log" 2>&1
  local rc=$? took=$((SECONDS - t0)) result=PASS
  [ $rc = 0 ] || { result=FAIL; failed=1; }
  [ $rc = 124 ] && result="TIMEOUT>${limit}s"
  local counts skips
  counts=$(grep -Eo "^[0-9]+ passed, [0-9]+ failed" "$log" | tail -1)
  skips=$(grep -Eci "^ *(SKIPPED|skipped)" "$log")
  [ "$skips" != 0 ] && counts="$counts, $skips skipped"
  rows+=("$(printf '%-28s %-14s %6ss  %s' "$name" "$result" "$took" "$counts")")
}

# EM through the command line: 5 iterations from the same start (a k-means++
# init saved by gmle fit --max-iter 0) with --backend cuda and cpu, diag and
# full, 4 components, 2 10^5 float32 rows; the models within 1e-9
# (cli_model_compare: each class's mixture mean and covariance).
em_cli() {
  local t=$pack/build/tools d cov be
  d=$(mktemp -d "$prefix/em-cli.XXXXXX") || return 1
  "$t/cli_gen_npy" "$d/X.npy" 200000 8 f32 7 || return 1
  for cov in diag full; do
    "$t/gmle" fit "$d/X.npy" --components 4 --cov $cov --max-iter 0 \
      --backend cpu -o "$d/M0.$cov.npz" || return 1
    for be in cuda cpu; do
      "$t/gmle" fit "$d/X.npy" --components 4 --cov $cov --max-iter 5 --tol 0 \
        --init-model "$d/M0.$cov.npz" --backend $be -o "$d/$be.$cov.npz" ||
        return 1
    done
    echo "$cov, cuda vs cpu:"
    "$t/cli_model_compare" "$d/cuda.$cov.npz" "$d/cpu.$cov.npz" 1e-9 || return 1
  done
}
export -f em_cli
export pack prefix

say "tests"
if [ $em = 1 ]; then
  step test_cuda_em 180 GMLE_REQUIRE_GPU=1 -- "$pack/build/tests/test_cuda_em"
  step em_cli 120 -- bash -c em_cli
  if [ $bench = 1 ]; then
    step bench_cuda.em 150 OMP_NUM_THREADS="$(nproc)" -- \
      "$pack/build/bench/bench_cuda" --em
  fi
elif [ $quick = 1 ]; then
  step test_cuda.parity 120 GMLE_REQUIRE_GPU=1 -- "$pack/build/tests/test_cuda" match
  step test_cuda_em.parity 120 GMLE_REQUIRE_GPU=1 -- \
    "$pack/build/tests/test_cuda_em" match
  step test_cross_backend.cuda 60 GMLE_BACKEND=cuda -- \
    "$pack/build/tests/test_cross_backend"
else
  step test_cuda 210 GMLE_REQUIRE_GPU=1 -- "$pack/build/tests/test_cuda"
  step test_cuda_plan 30 -- "$pack/build/tests/test_cuda_plan"
  # EM on CUDA: statistics and 5 iterations from a given start against the
  # CPU (1e-9 relative), fault sweeps; the same through the CLI.
  step test_cuda_em 180 GMLE_REQUIRE_GPU=1 -- "$pack/build/tests/test_cuda_em"
  step em_cli 120 -- bash -c em_cli
  # The suites four at a time; each writes its own log.
  suites=()
  for t in "$pack"/build/tests/test_*; do
    case "$(basename "$t")" in test_cuda | test_cuda_plan | test_cuda_em) continue ;; esac
    suites+=("$t")
  done
  for t in "${suites[@]}"; do
    (
      rows=()
      step "$(basename "$t").cuda" 120 GMLE_BACKEND=cuda -- "$t"
      printf '%s\n' "${rows[0]}" > "$logs/$(basename "$t").row"
      exit $failed
    ) &
    while [ "$(jobs -rp | wc -l)" -ge 4 ]; do wait -n; done
  done
  wait
  for t in "${suites[@]}"; do
    row=$(cat "$logs/$(basename "$t").row" 2> /dev/null)
    rows+=("$row")
    case "$row" in *" PASS "*) ;; *) failed=1 ;; esac
  done
  if [ $bench = 1 ]; then
    step bench_cuda.quick 150 -- "$pack/build/bench/bench_cuda" --quick
    # An EM iteration at the issue's bench shapes, CUDA and the CPU backend
    # on all cores, for BENCHMARKS.md.
    step bench_cuda.em 150 OMP_NUM_THREADS="$(nproc)" -- \
      "$pack/build/bench/bench_cuda" --em
  fi
fi

# ---- 5. the summary -------------------------------------------------------------------------
say "summary"
printf '%-28s %s\n' "GPU" "$(sed -n '$p' "$logs/gpus.txt")"
printf '%-28s %s\n' "pack" "$(sed -n 1p "$pack/MANIFEST" 2> /dev/null)"
printf '%-28s %-14s %7s  %s\n' "step" "result" "time" "tests"
printf '%s\n' "${rows[@]}"
if [ -f "$logs/bench_cuda.quick.txt" ]; then
  echo
  grep -E "^acceptance criteria" "$logs/bench_cuda.quick.txt"
  sed -n '/^summary/,$p' "$logs/bench_cuda.quick.txt"
fi
if [ -f "$logs/bench_cuda.em.txt" ]; then
  echo
  grep -E "^EM iteration [a-z]+ K=" "$logs/bench_cuda.em.txt"
fi
if [ -f "$logs/test_cuda_em.txt" ] || [ -f "$logs/test_cuda_em.parity.txt" ]; then
  echo
  grep -hE "cuda vs CPU after 5 iterations" "$logs"/test_cuda_em*.txt
fi
if [ -f "$logs/em_cli.txt" ]; then
  grep -hE -A1 "cuda vs cpu:" "$logs/em_cli.txt" | grep -v "^--"
fi
echo
echo "logs: $logs"
exit $failed
