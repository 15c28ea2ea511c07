#!/usr/bin/env bash
# io_layer.sh -- the data-file layer (io/) sits on the core (src/), never the
# other way round (docs/ARCHITECTURE.md, issue 12): no core file includes a
# header of io/ or names a function or type that io/ defines.
#
#   bash tests/io_layer.sh SOURCE_DIR
set -euo pipefail
src=$(cd "${1:-.}" && pwd)
fail=0
# Headers of io/, by name (the core's include path never has io/ on it, but
# a relative path would get past that).
for h in "$src"/io/*.h; do
  name=$(basename "$h")
  if grep -n "#include *[\"<].*$name[\">]" "$src"/src/*.c "$src"/src/*.h; then
    echo "io_layer: FAIL: the core includes io/$name" >&2
    fail=1
  fi
done
# Functions defined at file scope in io/ (gmle__ internals and gmle_ API).
syms=$(grep -ohE '^[a-z][a-z0-9_ *]*\bgmle_[a-z0-9_]+\(' "$src"/io/*.c |
  grep -oE 'gmle_[a-z0-9_]+\($' | tr -d '(' | sort -u)
for s in $syms; do
  if grep -nw "$s" "$src"/src/*.c "$src"/src/*.h; then
    echo "io_layer: FAIL: the core names $s, which io/ defines" >&2
    fail=1
  fi
done
[ "$fail" = 0 ] && echo "io_layer: ok: src/ uses nothing of io/ ($(echo "$syms" | wc -w) functions checked)"
exit "$fail"
