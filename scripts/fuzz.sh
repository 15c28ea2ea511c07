#!/usr/bin/env bash
# Bounded fuzzing of every harness in tests/fuzz (fuzz_TARGET.c) with
# libFuzzer + AddressSanitizer + UndefinedBehaviorSanitizer (+ leaks).
#
#   bash scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Builds build-fuzz with clang (-DGMLE_FUZZ=ON), then runs each target (all
# of them by default) for SECONDS (default 60), one after the other with one
# worker, on a copy of its checked-in corpus (build-fuzz/corpus-run/TARGET;
# tests/fuzz/corpus is never written). Prints per target the executions,
# exec/s, coverage (cov: edges, ft: features), corpus size and the verdict.
# Logs are build-fuzz/fuzz-logs/TARGET.log and crashing inputs
# build-fuzz/artifacts/TARGET/. Exits 1 when any target crashed, leaked,
# timed out (an input taking over FUZZ_TIMEOUT s, default 10) or ran out of
# memory (FUZZ_RSS_MB, default 2048). FUZZ_ARGS adds libFuzzer flags
# (e.g. FUZZ_ARGS=-runs=10000000).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
gmle_install_fuzz_deps

secs=${1:-60}
[ $# -gt 0 ] && shift
case $secs in '' | *[!0-9]*)
  echo "usage: bash scripts/fuzz.sh [SECONDS] [TARGET...]" >&2
  exit 2 ;;
esac
if [ $# -gt 0 ]; then
  targets=("$@")
else
  targets=()
  for f in tests/fuzz/fuzz_*.c; do
    t=${f##*/fuzz_}
    targets+=("${t%.c}")
  done
fi

jobs=$(nproc 2>/dev/null || echo 2)
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DGMLE_FUZZ=ON -DGMLE_WERROR=ON -DBUILD_SHARED_LIBS=OFF \
  -DGMLE_ENABLE_CUDA=OFF -DGMLE_ENABLE_OPENCL=OFF \
  -DGMLE_BUILD_TOOLS=OFF -DGMLE_BUILD_BENCH=OFF >/dev/null
cmake --build build-fuzz -j"$jobs" --target fuzzers

export OMP_NUM_THREADS=1
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:symbolize=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
mkdir -p build-fuzz/fuzz-logs
failed=0
printf '\n%-8s %12s %9s %7s %7s %8s  %s\n' target executions exec/s cov ft corpus result
for t in "${targets[@]}"; do
  bin=build-fuzz/tests/fuzz/fuzz_$t
  if [ ! -x "$bin" ] || [ ! -d "tests/fuzz/corpus/$t" ]; then
    echo "$t: no harness build-fuzz/tests/fuzz/fuzz_$t or no corpus tests/fuzz/corpus/$t" >&2
    failed=1
    continue
  fi
  work=build-fuzz/corpus-run/$t
  art=build-fuzz/artifacts/$t
  log=build-fuzz/fuzz-logs/$t.log
  rm -rf "$work" "$art"
  mkdir -p "$work" "$art"
  cp -R "tests/fuzz/corpus/$t/." "$work/"
  rc=0
  # shellcheck disable=SC2086
  "$bin" "$work" -max_total_time="$secs" -timeout="${FUZZ_TIMEOUT:-10}" \
    -rss_limit_mb="${FUZZ_RSS_MB:-2048}" -print_final_stats=1 \
    -artifact_prefix="$art/" ${FUZZ_ARGS:-} >"$log" 2>&1 || rc=$?
  last=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.* corp: \([0-9]*\)\/.*/\1/p' <<<"$last")
  if [ "$rc" = 0 ] && ! grep -qE '^(==[0-9]+==)?ERROR:|^SUMMARY:|deadly signal' "$log"; then
    result=ok
  else
    result="FAILED (exit $rc; see $log and $art/)"
    failed=1
  fi
  printf '%-8s %12s %9s %7s %7s %8s  %s\n' "$t" "${execs:-?}" "${rate:-?}" \
    "${cov:-?}" "${ft:-?}" "${corp:-?}" "$result"
done
if [ "$failed" != 0 ]; then
  echo "fuzz.sh: a target failed; the crash, leak, timeout or out-of-memory" \
    "report is in its log (reproduce: the target's binary with the artifact" \
    "as argument, or the replay binary of the normal build)" >&2
  exit 1
fi
