#!/usr/bin/env bash
# hidden_libs.sh [PACK] -- run as root here (no GPU): check.sh's library
# resolution with the system's OpenBLAS, LAPACK(E), libgfortran, libgomp and
# zlib hidden from the loader (a private mount namespace binds an empty
# folder / file over them), so that only the pack's private prefix can
# supply them. Expected: libgmle alone fails to load; check.sh says "every
# library resolves", then exits 2 (no GPU), and with a fake nvidia-smi
# listing a GPU, exits 2 after test_cuda -- loaded from the prefix -- fails
# to open a context.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
pack=${1:-$here/../../gpu-pack}
pack=$(cd "$pack" && pwd) || exit 2
exec unshare -m bash -s "$pack" "$here" <<'INNER'
pack=$1 here=$2
empty=$(mktemp -d) ef=$(mktemp)
L=/usr/lib/x86_64-linux-gnu
mount --bind "$empty" $L/openblas-pthread || exit 2
for f in $L/liblapacke.so.3* $L/libgfortran.so.5* $L/libz.so.1* \
  $L/libgomp.so.1* $L/libquadmath.so.0* $L/libtmglib.so.3* \
  $L/liblapack.so.3 $L/libblas.so.3; do
  [ -e "$f" ] && mount --bind "$ef" "$f"
done
echo "-- control: libgmle without the prefix"
ldd "$pack/build/libgmle.so.0" 2>&1 | grep -E "not found|too short|openblas|lapacke"
echo "-- check.sh"
bash "$pack/check.sh" --logs "$empty/logs1"
echo "check.sh exit $?"
echo "-- check.sh, a fake nvidia-smi listing a GPU"
PATH=$here/fake-nvidia-smi:$PATH bash "$pack/check.sh" --logs "$empty/logs2"
echo "check.sh exit $?"
INNER
