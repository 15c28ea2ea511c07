#!/usr/bin/env bash
# demo.sh -- the quick start: on a fresh Debian/Ubuntu machine, install what
# is missing, build gmle into ./build (Release) and run the built-in example,
# which fits two Gaussians and a two-component mixture (EM) and draws four
# SVG pictures into ./gmle-demo.
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/deps.sh
gmle_install_deps

jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$jobs" --target gmle_cli
./build/tools/gmle demo -o gmle-demo
echo
echo "The pictures are in $(pwd)/gmle-demo:"
echo "  gmle-demo/demo_classes.svg     (open it in a web browser)"
echo "  gmle-demo/demo_univariate.svg"
echo "  gmle-demo/demo_em.svg"
echo "  gmle-demo/demo_em_loglik.svg"
