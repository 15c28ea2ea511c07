# cli_bounded_memory.sh -- a data file several times larger than the address
# space the test allows (ulimit -v) is fitted and scored: gmle streams it.
# 600 MB of float32 (19.6 M rows x 8) under a 400 MB virtual-memory limit.
. "$(dirname "$0")/lib.sh"
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 GMLE_BACKEND=cpu
ROWS=${GMLE_TEST_BIG_ROWS:-19660800}
LIMIT_KB=400000
trap 'rm -f "$WORK"/big.npy "$WORK"/dens.npy' EXIT

"$HELPERS/cli_gen_npy" big.npy "$ROWS" 8 f32 5 || { bad "cannot write big.npy"; finish; }
bytes=$(wc -c <big.npy)
ok "big.npy: $((bytes / 1000000)) MB, limit $((LIMIT_KB / 1000)) MB"
# The baseline: the command alone must fit well under the limit.
(ulimit -v $LIMIT_KB && "$GMLE" --version >/dev/null) && ok "gmle starts under the limit" || bad "gmle cannot start under ulimit -v $LIMIT_KB"
(ulimit -v $LIMIT_KB && exec timeout 240 "$GMLE" fit big.npy -o big.npz -q) 2>err.txt
RC=$?
[ "$RC" = 0 ] && ok "fit under ulimit -v $LIMIT_KB" || { bad "fit under the limit: exit $RC"; cat err.txt; }
(ulimit -v $LIMIT_KB && exec timeout 240 "$GMLE" score big.npz big.npy --what density --dtype f32 -o dens.npy -q) 2>err.txt
RC=$?
[ "$RC" = 0 ] && ok "score under ulimit -v $LIMIT_KB" || { bad "score under the limit: exit $RC"; cat err.txt; }
[ "$(wc -c <dens.npy 2>/dev/null || echo 0)" -ge $((ROWS * 4)) ] && ok "dens.npy has $ROWS values" || bad "dens.npy too small"
(ulimit -v $LIMIT_KB && exec "$GMLE" info big.npz) >out.txt 2>&1
# Column j has mean j and sd 1 + j/10.
awk '/^means:/ { getline; for (j = 2; j <= NF; j++) { d = $j - (j - 2); if (d > 0.01 || d < -0.01) bad = 1 } found = 1 }
     END { exit !(found && !bad) }' out.txt && ok "fitted means are 0..7" || { bad "fitted means:"; cat out.txt; }
finish
