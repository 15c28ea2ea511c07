#!/usr/bin/env bash
# run.sh -- build gmle (Release), run bench_cpu and peers.py, print the
# combined table with ratios and the targets (see BENCHMARKS.md).
#
#   bash bench/run.sh [--quick] [--only D:C:cov[,...]] [--no-peers] [--runs K]
#
# --runs K repeats bench_cpu and peers.py K times (alternating) and reports
# the best rate of each over the runs: the way to measure on a shared machine.
# Environment: GMLE_BENCH_BUILD (build dir, default build-bench),
# GMLE_BENCH_OUT (results dir, default $GMLE_BENCH_BUILD/bench-results).
# Needs cmake, a C compiler, OpenBLAS/LAPACKE, and python3 with the pip
# packages numpy and scikit-learn (for the peers).
# Exit status: 1 if bench_cpu reported an accuracy FAIL, 0 otherwise.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${GMLE_BENCH_BUILD:-$root/build-bench}
out=${GMLE_BENCH_OUT:-$build/bench-results}
args=()
peers=1
runs=1
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) args+=(--quick) ;;
    --only) args+=(--only "$2"); shift ;;
    --no-peers) peers=0 ;;
    --runs) runs=$2; shift ;;
    *) echo "usage: $0 [--quick] [--only D:C:cov[,...]] [--no-peers] [--runs K]" >&2; exit 2 ;;
  esac
  shift
done

echo "== build (Release) in $build"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DGMLE_BUILD_BENCH=ON > /dev/null
cmake --build "$build" --target bench_cpu -j"$(nproc)" > "$build/bench-build.log" 2>&1 ||
  { tail -40 "$build/bench-build.log"; exit 2; }

mkdir -p "$out"
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  lscpu | grep -E '^(Model name|CPU\(s\)|Thread|Core|Socket|L3)' || true
  grep MemTotal /proc/meminfo || true
  echo "OMP_NUM_THREADS=${OMP_NUM_THREADS:-unset}"
} > "$out/machine.txt"
cat "$out/machine.txt"

status=0
shopt -s nullglob
rm -f "$out"/bench_cpu.*.jsonl "$out"/peers.*.jsonl
for run in $(seq 1 "$runs"); do
  echo "== run $run/$runs: bench_cpu ${args[*]:-}"
  "$build/bench/bench_cpu" "${args[@]}" --json "$out/bench_cpu.$run.jsonl" |
    tee "$out/bench_cpu.$run.txt" || { rc=$?; [ "$rc" = 1 ] && status=1; }
  if [ "$peers" = 1 ]; then
    echo "== run $run/$runs: peers.py ${args[*]:-}"
    python3 "$root/bench/peers.py" "${args[@]}" --json "$out/peers.$run.jsonl" |
      tee "$out/peers.$run.txt" ||
      echo "peers.py failed (are the pip packages numpy and scikit-learn installed?)" >&2
  fi
done

echo "== combined (best of $runs run(s))"
python3 "$root/bench/report.py" "$out"/bench_cpu.*.jsonl "$out"/peers.*.jsonl |
  tee "$out/report.txt"
python3 "$root/bench/report.py" --markdown "$out"/bench_cpu.*.jsonl \
  "$out"/peers.*.jsonl > "$out/report.md"
echo "results in $out"
if [ "$status" = 1 ]; then
  echo "bench_cpu: accuracy FAIL" >&2
  exit 1
fi
