#!/usr/bin/env bash
# prepare.sh -- runs HERE, on a machine with the CUDA toolkit but no GPU, and
# makes the folder that tests/gpu/check.sh runs from on a bare GPU machine
# (no network, no build there: only the NVIDIA driver and a CUDA runtime with
# cuBLAS are assumed):
#
#   bash tests/gpu/prepare.sh [--out DIR] [--arch LIST] [--build BUILD]
#
#   DIR  (default gpu-pack/, ignored by git) receives
#        build/    libgmle, libgmle_cuda.so, the CUDA-registered test suites,
#                  bench_cuda and (tools/) the gmle CLI with the CLI suites'
#                  cli_model_compare and cli_gen_npy, built Release with
#                  Ninja and CUDA on (no object files, no CPU-only suites);
#        lib.tar.gz  lib/: every library those programs need that is
#                  neither CUDA's nor the C library's (OpenBLAS, LAPACKE,
#                  libgfortran, libgomp, zlib, ...), copied from where ldd
#                  resolves them here, under the names the programs ask for
#                  (gzip: the pack with the source tree stays under 64 MiB);
#        check.sh  the run-time script; MANIFEST  what was built and how big.
#   BUILD (default build-gpu/) the full build tree, which stays here.
#   LIST (default 90-real: H100 and H200) the CUDA architectures; add
#        80-real for an A100.
# Everything together stays under 64 MiB (the size is printed).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
out=$root/gpu-pack
arch=90-real
# The full build tree stays here (build* is ignored by git); only what runs
# is copied into $out.
build=$root/build-gpu
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift ;;
    --arch) arch=$2; shift ;;
    --build) build=$2; shift ;;
    *) echo "usage: $0 [--out DIR] [--arch LIST] [--build BUILD]" >&2; exit 2 ;;
  esac
  shift
done
gen=()
command -v ninja > /dev/null && gen=(-G Ninja)
if [ ${#gen[@]} = 0 ]; then
  echo "ninja not found: apt-get install ninja-build (make works too)" >&2
fi

# ---- build --------------------------------------------------------------------
mkdir -p "$build"
cmake -S "$root" -B "$build" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DGMLE_ENABLE_CUDA=ON -DGMLE_ENABLE_OPENCL=OFF -DGMLE_TEST_CUDA_SUITES=ON \
  -DGMLE_BUILD_BENCH=ON -DCMAKE_CUDA_ARCHITECTURES="$arch" > "$build/prepare-configure.log"
cmake --build "$build" -j"$(nproc)" > "$build/prepare-build.log"

# ---- the programs check.sh runs -------------------------------------------------
# The suites that create a context (so GMLE_BACKEND=cuda reaches the GPU),
# test_cuda, test_cuda_plan; not the CPU kernel's, OpenBLAS's or OpenCL's own suites.
cpu_only='test_gram|test_opencl|test_blas_threads|test_device_faults'
rm -rf "$out"
mkdir -p "$out/build/tests" "$out/build/bench" "$out/lib"
cp -P "$build"/libgmle.so* "$build"/libgmle_cuda.so "$out/build/"
for t in "$build"/tests/test_*; do
  [ -x "$t" ] && [ -f "$t" ] || continue
  [[ $(basename "$t") =~ ^($cpu_only)$ ]] && continue
  cp "$t" "$out/build/tests/"
done
cp "$build/bench/bench_cuda" "$out/build/bench/"
# The CLI and two helpers of its suites, for check.sh's EM run through the
# command line.
mkdir -p "$out/build/tools"
cp "$build/tools/gmle" "$build/tests/cli/cli_model_compare" \
  "$build/tests/cli/cli_gen_npy" "$out/build/tools/"
strip --strip-unneeded "$out"/build/tests/* "$out"/build/bench/* \
  "$out"/build/tools/* \
  "$out"/build/libgmle.so.*.* "$out"/build/libgmle_cuda.so 2> /dev/null || true
cp "$root/tests/gpu/check.sh" "$out/check.sh"

# ---- the libraries a bare CUDA machine lacks ------------------------------------
# Whatever ldd resolves outside the pack, except the C library's own files
# and CUDA's (the GPU machine has its driver and toolkit).
skip='^(linux-vdso|ld-linux|libc|libm|libdl|libpthread|librt|libresolv|libcuda|libcudart|libcublas|libcublasLt|libnvidia)[.-]'
for f in "$out"/build/libgmle.so.*.* "$out"/build/libgmle_cuda.so \
  "$out"/build/tests/* "$out"/build/bench/* "$out"/build/tools/*; do
  LD_LIBRARY_PATH=$out/build ldd "$f"
done | awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }' | sort -u |
  while read -r name path; do
    [[ $name =~ $skip ]] && continue
    case "$path" in "$out"/*) continue ;; esac
    cp -L "$path" "$out/lib/$name"
  done
strip --strip-unneeded "$out"/lib/* 2> /dev/null || true
libs=$(cd "$out/lib" && ls | tr '\n' ' ')
# Compressed (OpenBLAS alone is 36 MiB): the pack and the source tree then
# travel together well under 64 MiB. check.sh unpacks it into its prefix.
tar -czf "$out/lib.tar.gz" -C "$out" lib
rm -rf "$out/lib"

pack_kib() {
  du -sk "$out/build" "$out/lib.tar.gz" "$out/check.sh" | awk '{s+=$1} END {print s}'
}
{
  echo "gmle $(git -C "$root" rev-parse --short HEAD 2> /dev/null || echo '?')"
  echo "built $(date -u +%FT%TZ) on $(uname -m), CUDA architectures $arch"
  nvcc --version 2> /dev/null | tail -1
  echo "libraries (lib.tar.gz): $libs"
  echo "size: $(pack_kib | awk '{printf "%.1f MiB", $1/1024}')"
} > "$out/MANIFEST"
cat "$out/MANIFEST"
if [ "$(pack_kib)" -gt $((64 * 1024)) ]; then
  echo "the pack is over 64 MiB" >&2
  exit 1
fi
echo "ready: copy $out (build/, lib.tar.gz, check.sh, MANIFEST) to the GPU machine; run bash check.sh there"
echo "(the build tree $build and its logs stay here)"
