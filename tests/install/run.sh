#!/usr/bin/env bash
# run.sh -- installed-library acceptance test (ctest: install_acceptance).
#
#   bash tests/install/run.sh BUILD_DIR SOURCE_DIR [sanitize]
#
# Installs the build into a fresh temporary prefix with `cmake --install`,
# then builds tests/install/acceptance.c against that prefix twice, as users
# would: with `cc $(pkg-config --cflags --libs gmle)` (PKG_CONFIG_PATH set to
# the prefix, run with LD_LIBRARY_PATH set) and as a CMake project calling
# find_package(gmle REQUIRED) (CMAKE_PREFIX_PATH set to the prefix). Both
# must build, load the library from the prefix, and pass. `sanitize` adds
# -fsanitize=address,undefined (for builds configured with GMLE_SANITIZE).
set -euo pipefail

if [ $# -lt 2 ]; then
  echo "usage: $0 BUILD_DIR SOURCE_DIR [sanitize]" >&2
  exit 2
fi
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
here=$src/tests/install
san_flags=""
if [ "${3:-}" = "sanitize" ]; then
  san_flags="-fsanitize=address,undefined -fno-omit-frame-pointer"
fi
cc=${CC:-cc}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/gmle-install-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
fail() { echo "install_acceptance: FAIL: $*" >&2; exit 1; }
failed=0
soft_fail() { echo "install_acceptance: FAIL: $*" >&2; failed=1; }

echo "== cmake --install $build --prefix $prefix"
cmake --install "$build" --prefix "$prefix" > "$tmp/install.log" 2>&1 ||
  { cat "$tmp/install.log"; fail "cmake --install failed"; }

[ -f "$prefix/include/gmle.h" ] || fail "gmle.h not installed under $prefix/include"
[ -f "$prefix/include/gmle_io.h" ] || fail "gmle_io.h not installed under $prefix/include"
pc=$(find "$prefix" -name gmle.pc -print -quit)
[ -n "$pc" ] || fail "gmle.pc not installed under $prefix"
cfg=$(find "$prefix" -name gmleConfig.cmake -print -quit)
[ -n "$cfg" ] || fail "gmleConfig.cmake not installed under $prefix"
echo "   installed $(realpath --relative-to="$prefix" "$pc"), $(realpath --relative-to="$prefix" "$cfg")"

# ---------------------------------------------------------------- pkg-config
echo "== pkg-config"
export PKG_CONFIG_PATH=$(dirname "$pc")
unset PKG_CONFIG_LIBDIR PKG_CONFIG_SYSROOT_DIR || true
pkg-config --exists --print-errors gmle || fail "pkg-config cannot read $pc"
inc=$(pkg-config --variable=includedir gmle)
libdir=$(pkg-config --variable=libdir gmle)
echo "   includedir=$inc libdir=$libdir"
# The .pc must point into the prefix it was installed to (a path baked in at
# configure time would find another copy, or none).
[ -f "$inc/gmle.h" ] && [ "$(realpath "$inc/gmle.h")" = "$(realpath "$prefix/include/gmle.h")" ] ||
  fail "gmle.pc's includedir ($inc) is not the install prefix's include dir ($prefix/include): is the prefix baked in at configure time?"
ls "$libdir"/libgmle.* > /dev/null 2>&1 && [ "$(realpath "$libdir")" = "$(realpath "$(dirname "$(find "$prefix" -name 'libgmle.*' -print -quit)")")" ] ||
  fail "gmle.pc's libdir ($libdir) does not hold the installed libgmle"
static=""
if ! ls "$libdir"/libgmle.so* > /dev/null 2>&1; then
  static="--static"   # a static libgmle needs its private dependencies too
fi
# shellcheck disable=SC2046,SC2086
"$cc" -std=c11 -O2 -Wall -Wextra -Wpedantic -Werror $san_flags \
  -o "$tmp/acceptance_pc" "$here/acceptance.c" \
  $(pkg-config --cflags --libs $static gmle) ||
  fail "acceptance.c does not build with: $cc \$(pkg-config --cflags --libs $static gmle) = $(pkg-config --cflags --libs $static gmle)"
if [ -z "$static" ]; then
  loaded=$(LD_LIBRARY_PATH=$libdir ldd "$tmp/acceptance_pc" | awk '/libgmle/ {print $3}')
  [ "$(realpath "$loaded")" = "$(realpath "$libdir")/$(basename "$(realpath "$loaded")")" ] ||
    fail "the pkg-config build loads $loaded, not the library in $libdir"
fi
echo "== run (pkg-config build)"
LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} "$tmp/acceptance_pc" ||
  soft_fail "acceptance (pkg-config build) failed"

# ---------------------------------------------------------- find_package
echo "== find_package(gmle) consumer"
cmake -S "$here" -B "$tmp/consumer" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_COMPILER="$cc" \
  -DCMAKE_C_FLAGS="$san_flags" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF \
  > "$tmp/consumer-configure.log" 2>&1 ||
  { cat "$tmp/consumer-configure.log"; fail "find_package(gmle) consumer does not configure"; }
found=$(sed -n 's/^gmle_DIR:PATH=//p' "$tmp/consumer/CMakeCache.txt")
[ "$(realpath "$found")" = "$(realpath "$(dirname "$cfg")")" ] ||
  fail "find_package(gmle) found $found, not the install prefix's $(dirname "$cfg")"
cmake --build "$tmp/consumer" > "$tmp/consumer-build.log" 2>&1 ||
  { cat "$tmp/consumer-build.log"; fail "find_package(gmle) consumer does not build"; }
echo "== run (find_package build)"
"$tmp/consumer/acceptance" || soft_fail "acceptance (find_package build) failed"
[ "$failed" = 0 ] || exit 1
echo "install_acceptance: PASSED"
