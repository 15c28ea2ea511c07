# lib.sh -- shared helpers of the CLI tests (sourced by every cli_*.sh).
# Usage of a test: bash cli_X.sh GMLE WORKDIR HELPER_DIR
set -u
GMLE=${1:?path to the gmle command}
WORK=${2:?work directory}
HELPERS=${3:-}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
rm -rf "$WORK"
mkdir -p "$WORK"
cd "$WORK"
export LC_ALL=C
FAILS=0
CHECKS=0

if python3 -c 'import numpy' 2>/dev/null; then HAVE_NUMPY=1; else HAVE_NUMPY=0; fi

ok() { CHECKS=$((CHECKS + 1)); echo "ok   $*"; }
bad() { CHECKS=$((CHECKS + 1)); FAILS=$((FAILS + 1)); echo "FAIL $*"; }

# run CMD...: run gmle, keeping stdout in out.txt and stderr in err.txt.
run() {
  "$GMLE" "$@" >out.txt 2>err.txt
  RC=$?
}

# expect RC NAME CMD...: gmle must exit with RC.
expect() {
  local want=$1 name=$2
  shift 2
  run "$@"
  if [ "$RC" = "$want" ]; then
    ok "$name (exit $RC)"
  else
    bad "$name: exit $RC, expected $want: gmle $*"
    sed 's/^/     | /' err.txt | head -5
  fi
}

# expect_fail RC NAME MUSTNAME OUTFILE CMD...: gmle must exit with RC, say
# MUSTNAME in one line on stderr, and leave no OUTFILE.
expect_fail() {
  local want=$1 name=$2 must=$3 outfile=$4
  shift 4
  rm -f "$outfile"
  expect "$want" "$name" "$@"
  if grep -q -- "$must" err.txt; then
    ok "$name: message names '$must': $(head -1 err.txt)"
  else
    bad "$name: message does not name '$must':"
    sed 's/^/     | /' err.txt | head -5
  fi
  if [ "$(wc -l <err.txt)" -le 1 ]; then
    ok "$name: one line"
  else
    bad "$name: more than one line of error"
  fi
  if [ -n "$outfile" ] && ls "$outfile"* >/dev/null 2>&1; then
    bad "$name: left $(ls "$outfile"*)"
  else
    ok "$name: no output file left"
  fi
}

# must FILE: the file exists and is not empty.
must_exist() {
  if [ -s "$1" ]; then ok "wrote $1"; else bad "$1 missing or empty"; fi
}

# py SCRIPT: run python3 with numpy; failure (exit != 0) is a test failure.
py() {
  local name=$1
  shift
  if python3 - "$@" >py.txt 2>&1; then
    ok "$name: $(tail -1 py.txt)"
  else
    bad "$name:"
    sed 's/^/     | /' py.txt | tail -15
  fi
}

finish() {
  echo "$CHECKS checks, $FAILS failed"
  [ "$FAILS" = 0 ] || exit 1
  exit 0
}

# gen_csv N SEED: N rows "x1,x2,x3,name" of three Gaussian classes
# (setosa, versicolor, virginica), deterministic, without numpy.
gen_csv() {
  awk -v n="$1" -v seed="$2" 'BEGIN {
    srand(seed);
    split("setosa versicolor virginica", name, " ");
    for (i = 0; i < n; i++) {
      c = i % 3 + 1;
      for (j = 1; j <= 3; j++) {
        u = rand(); v = rand(); if (u < 1e-12) u = 1e-12;
        z[j] = sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
      }
      x1 = 3 * c + z[1];
      x2 = -c + 0.5 * z[1] + 0.8 * z[2];
      x3 = c * c / 3 + (0.3 + 0.2 * c) * z[3];
      printf "%.9g,%.9g,%.9g,%s\n", x1, x2, x3, name[c];
    }
  }'
}
