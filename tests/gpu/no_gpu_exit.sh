#!/usr/bin/env bash
# no_gpu_exit.sh BUILD_DIR CHECK_SH -- a ctest for machines without a GPU:
# check.sh, run on BUILD_DIR laid out as a pack, resolves every library and
# then exits 2 saying that no GPU is visible.
set -u
d=$(mktemp -d "${TMPDIR:-/tmp}/gmle-nogpu.XXXXXX") || exit 1
trap 'rm -rf "$d"' EXIT
ln -s "$1" "$d/build"
cp "$2" "$d/check.sh"
bash "$d/check.sh" --logs "$d/logs" > "$d/out" 2>&1
rc=$?
cat "$d/out"
[ $rc = 2 ] || { echo "check.sh exited $rc, expected 2"; exit 1; }
grep -q "every library resolves" "$d/out" || exit 1
grep -q "no NVIDIA GPU visible" "$d/out" || exit 1
