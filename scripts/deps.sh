# deps.sh -- sourced by the other scripts: installs what gmle needs on a
# Debian/Ubuntu machine, skipping everything already present.
#   gmle_install_deps          build + test dependencies
#   gmle_install_bench_deps    plus the Python peers of the benchmarks
GMLE_APT_PACKAGES="build-essential cmake pkg-config libopenblas-dev liblapacke-dev zlib1g-dev python3 opencl-headers ocl-icd-opencl-dev pocl-opencl-icd clinfo libopenmpi-dev openmpi-bin"

gmle__sudo() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

gmle_install_deps() {
  local missing=""
  for p in $GMLE_APT_PACKAGES; do
    dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
  done
  # python3 may come from elsewhere (pyenv); count it present if on PATH.
  if command -v python3 >/dev/null 2>&1; then
    missing=$(echo "$missing" | sed 's/ python3\b//')
  fi
  if [ -n "$missing" ]; then
    echo "gmle: installing$missing" >&2
    gmle__sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive gmle__sudo apt-get install -y -qq $missing >/dev/null
  fi
  # numpy lets the tests check files with numpy.load (they skip without it).
  if command -v python3 >/dev/null 2>&1 && ! python3 -c 'import numpy' 2>/dev/null; then
    python3 -m pip install --quiet numpy 2>/dev/null ||
      DEBIAN_FRONTEND=noninteractive gmle__sudo apt-get install -y -qq python3-numpy >/dev/null ||
      echo "gmle: numpy unavailable; the numpy cross-checks will be skipped" >&2
  fi
  # scikit-learn is the reference of the EM acceptance tests (tests/em_*.py
  # skip without it).
  if command -v python3 >/dev/null 2>&1 && python3 -c 'import numpy' 2>/dev/null &&
     ! python3 -c 'import sklearn' 2>/dev/null; then
    python3 -m pip install --quiet scikit-learn 2>/dev/null ||
      DEBIAN_FRONTEND=noninteractive gmle__sudo apt-get install -y -qq python3-sklearn >/dev/null ||
      echo "gmle: scikit-learn unavailable; the EM acceptance tests will be skipped" >&2
  fi
  # kaldiio (numpy's Kaldi reader) cross-checks the Kaldi archive tests
  # (they skip that part without it).
  if command -v python3 >/dev/null 2>&1 && python3 -c 'import numpy' 2>/dev/null &&
     ! python3 -c 'import kaldiio' 2>/dev/null; then
    python3 -m pip install --quiet kaldiio 2>/dev/null ||
      echo "gmle: kaldiio unavailable; the kaldiio cross-checks will be skipped" >&2
  fi
}

# python3 -m venv, for scripts/test_python.sh (Debian's python3 needs
# python3-venv for it; other Pythons, such as pyenv's, have it).
gmle_install_venv() {
  if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    echo "gmle: installing python3-venv" >&2
    gmle__sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive gmle__sudo apt-get install -y -qq python3-venv >/dev/null
  fi
}

# clang with libFuzzer and OpenMP, for scripts/fuzz.sh. Debian 12 ships
# libFuzzer (libclang_rt.fuzzer-x86_64.a) in libclang-rt-14-dev, which
# `clang` pulls in; older releases in libclang-common-*-dev.
gmle_install_fuzz_deps() {
  gmle_install_deps
  local missing=""
  command -v clang >/dev/null 2>&1 || missing="$missing clang"
  dpkg -s libomp-dev >/dev/null 2>&1 || missing="$missing libomp-dev"
  if [ -n "$missing" ]; then
    echo "gmle: installing$missing" >&2
    gmle__sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive gmle__sudo apt-get install -y -qq $missing >/dev/null
  fi
  if ! gmle__libfuzzer_present; then
    local ver
    ver=$(clang -dumpversion | cut -d. -f1)
    echo "gmle: installing libclang-rt-$ver-dev (libFuzzer)" >&2
    DEBIAN_FRONTEND=noninteractive gmle__sudo apt-get install -y -qq \
      "libclang-rt-$ver-dev" >/dev/null 2>&1 || true
  fi
  if ! gmle__libfuzzer_present; then
    echo "gmle: clang's libFuzzer runtime (libclang_rt.fuzzer-*.a) is missing" >&2
    return 1
  fi
}

gmle__libfuzzer_present() {
  [ -f "$(clang -print-resource-dir)/lib/linux/libclang_rt.fuzzer-$(uname -m).a" ]
}

gmle_install_bench_deps() {
  gmle_install_deps
  python3 -c 'import sklearn' 2>/dev/null || python3 -m pip install --quiet scikit-learn
}
