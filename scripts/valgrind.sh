#!/usr/bin/env bash
# valgrind.sh -- the CPU test suites under valgrind memcheck.
#
#   bash scripts/valgrind.sh            every C suite's .cpu entry, the
#                                       example, and the CLI suites (each
#                                       gmle invocation under valgrind)
#   bash scripts/valgrind.sh test_fit   only the suites named (C or CLI)
#
# Builds build-valgrind: CPU only (no OpenCL, no CUDA: their drivers are
# not ours to check), no sanitizers, Debug at -O1 (full debug information;
# -O0 made the Gram and scoring kernels too slow to run under valgrind).
# Every process runs under
#   valgrind --tool=memcheck --error-exitcode=99 --leak-check=full
#            --errors-for-leak-kinds=definite,indirect,possible
#            --suppressions=scripts/valgrind.supp
# so that any invalid access, use of uninitialised memory or leak (possible
# leaks included) fails it. The only suppression is the OpenMP runtime's
# thread pool TLS blocks (scripts/valgrind.supp says why).
# GMLE_TEST_SMALL=1 is set: the few suites that fit millions of rows to
# check the accuracy contract use fewer rows (the code paths are the same;
# the full sizes run in the plain and sanitizer builds). cli_bounded_memory
# is left out (it sets a small `ulimit -v`, in which valgrind cannot run).
# Logs: build-valgrind/valgrind/NAME.*.log. Exit status 0 only when every
# suite passed with zero valgrind reports.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
gmle_install_deps
if ! command -v valgrind >/dev/null 2>&1; then
  gmle__sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive gmle__sudo apt-get install -y -qq valgrind >/dev/null
fi
jobs=$(nproc 2>/dev/null || echo 2)
B=build-valgrind
cmake -S . -B "$B" -DCMAKE_BUILD_TYPE=Debug "-DCMAKE_C_FLAGS_DEBUG=-g -O1" \
  -DGMLE_ENABLE_CUDA=OFF -DGMLE_ENABLE_OPENCL=OFF -DGMLE_SANITIZE=OFF \
  -DGMLE_BUILD_BENCH=OFF -DGMLE_WERROR=ON >/dev/null
cmake --build "$B" -j"$jobs"

LOGS="$PWD/$B/valgrind"
rm -rf "$LOGS"
mkdir -p "$LOGS"
SUPP="$PWD/scripts/valgrind.supp"
export GMLE_BACKEND=cpu OMP_NUM_THREADS=2 GMLE_TEST_SMALL=1
export VG_OPTS="--tool=memcheck --error-exitcode=99 --leak-check=full \
--errors-for-leak-kinds=definite,indirect,possible --num-callers=40 \
--suppressions=$SUPP"

# A wrapper that the CLI suites run as "the gmle command".
cat >"$LOGS/gmle" <<EOF
#!/usr/bin/env bash
exec valgrind $VG_OPTS --log-file="$LOGS/cli.%p.log" "$PWD/$B/tools/gmle" "\$@"
EOF
chmod +x "$LOGS/gmle"
if [ ! -x "$B/tools/gmle" ]; then
  echo "valgrind.sh: $B/tools/gmle not built" >&2
  exit 1
fi

# The work list: C suites (tests/test_*), the example, the CLI suites.
suites=()
for t in "$B"/tests/test_*; do
  [ -x "$t" ] && [ -f "$t" ] && suites+=("c:$(basename "$t")")
done
[ -x "$B/example_fit_and_score" ] && suites+=("c:example_fit_and_score")
for t in tests/cli/cli_*.sh; do
  n=$(basename "$t" .sh)
  [ "$n" = cli_bounded_memory ] || suites+=("cli:$n")
done
if [ $# -gt 0 ]; then
  want=" $* "
  keep=()
  for s in "${suites[@]}"; do
    case "$want" in *" ${s#*:} "*) keep+=("$s") ;; esac
  done
  suites=("${keep[@]}")
fi

run_one() {
  local kind=${1%%:*} name=${1#*:} start rc=0
  start=$(date +%s)
  if [ "$kind" = c ]; then
    local exe="$B/tests/$name"
    [ -x "$exe" ] || exe="$B/$name"
    # shellcheck disable=SC2086
    valgrind $VG_OPTS --log-file="$LOGS/$name.%p.log" "$exe" \
      >"$LOGS/$name.out" 2>&1 || rc=$?
  else
    bash "tests/cli/$name.sh" "$LOGS/gmle" "$LOGS/work_$name" \
      "$PWD/$B/tests/cli" >"$LOGS/$name.out" 2>&1 || rc=$?
  fi
  echo "$name rc=$rc $(($(date +%s) - start))s"
}
export -f run_one
export B LOGS

t0=$(date +%s)
printf '%s\n' "${suites[@]}" | xargs -P "$jobs" -I{} bash -c 'run_one "$@"' _ {} |
  tee "$LOGS/summary.txt"
t1=$(date +%s)

# A report is any valgrind log with a non-zero error summary or an error
# message. (A forked child that execs another program, e.g. python3 for the
# numpy cross-checks, leaves a log with neither.)
reports=0
errors='ERROR SUMMARY: [1-9]|Invalid (read|write|free)|uninitialised|Mismatched|Syscall param|overlap|definitely lost in|indirectly lost in|possibly lost in'
for f in "$LOGS"/*.log; do
  [ -e "$f" ] || continue
  if grep -qE "$errors" "$f"; then
    reports=$((reports + 1))
    echo "valgrind report: $f" >&2
    sed -n '1,60p' "$f" >&2
  fi
done
failed=$(grep -vc ' rc=0 ' "$LOGS/summary.txt" || true)
processes=$(ls "$LOGS"/*.log 2>/dev/null | wc -l)
echo "valgrind.sh: ${#suites[@]} suites, $processes processes under valgrind, $failed failed, $reports with valgrind reports, $((t1 - t0)) s"
[ "$failed" = 0 ] && [ "$reports" = 0 ]
