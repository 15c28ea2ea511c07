# cli_memory_limits.sh -- under any address-space limit (ulimit -v) from
# 150 MB to 2 GB, fit, score, classify and info either work or exit 4 with
# an out-of-memory message: never hang (OpenBLAS retries a failed buffer
# mmap forever; see tools/memory_limit.c and src/blas_room.c). A hang
# shows as exit 124 from timeout.
. "$(dirname "$0")/lib.sh"
unset OPENBLAS_NUM_THREADS GOTO_NUM_THREADS
if ldd "$GMLE" 2>/dev/null | grep -q libasan; then
  echo "skip: AddressSanitizer needs an unlimited address space"
  exit 77
fi

gen_csv 3000 9 | cut -d, -f1-3 >x.csv
gen_csv 3000 9 | cut -d, -f4 >y.txt
expect 0 "fit without a limit" fit x.csv --labels y.txt -o m.npz -q

# limited KB NAME CMD...: exit 0, or 4 naming "out of memory".
limited() {
  local kb=$1 name=$2
  shift 2
  (ulimit -v "$kb" && exec timeout 60 "$GMLE" "$@") >out.txt 2>err.txt
  RC=$?
  case $RC in
  0) ok "$name under ulimit -v $kb: works" ;;
  4) grep -q "out of memory" err.txt && ok "$name under ulimit -v $kb: exit 4, $(head -1 err.txt)" ||
       bad "$name under ulimit -v $kb: exit 4 without an out-of-memory message: $(head -1 err.txt)" ;;
  124) bad "$name under ulimit -v $kb: hangs" ;;
  *) bad "$name under ulimit -v $kb: exit $RC: $(head -1 err.txt)" ;;
  esac
}

for kb in 150000 200000 300000 400000 500000 700000 1000000 1500000 2000000; do
  limited $kb "fit" fit x.csv --labels y.txt -o a.npz -q
  limited $kb "score" score m.npz x.csv -o s.npy -q
  limited $kb "classify" classify m.npz x.csv --truth y.txt -q
  limited $kb "info" info m.npz
  # AUTO must not start an OpenCL CPU driver (PoCL aborted, exit 134, when
  # its thread pool could not start under the limit).
  limited $kb "fit --backend auto" fit x.csv --labels y.txt -o a.npz -q --backend auto
  limited $kb "EM fit (--components 2)" fit x.csv --components 2 -o e.npz -q
done
# A thread count set by the user and too large for the limit is lowered.
OPENBLAS_NUM_THREADS=64 limited 700000 "fit with OPENBLAS_NUM_THREADS=64" fit x.csv --labels y.txt -o a.npz -q
(ulimit -v 2000000 && exec timeout 60 "$GMLE" fit x.csv --labels y.txt -o b.npz -q) && "$HELPERS/cli_model_compare" m.npz b.npz 0 >cmp.txt 2>&1 &&
  ok "a fit under ulimit -v 2000000 equals the fit without a limit" || bad "fit under a limit differs: $(cat cmp.txt)"
finish
