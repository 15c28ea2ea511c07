# cli_mpi.sh -- gmle-mpi under mpirun with 1 to 4 ranks gives what gmle
# gives on the whole file: fits within 1e-12 (one rank: the same bytes),
# numpy's float64 means and covariances within 1e-12, a mixture from a
# given start within 1e-10, score and classify outputs byte for byte; with
# uneven shares, a rank with no rows and classes missing on some ranks. A
# NaN in one rank's share fails every rank (exit 2, the rank and the row
# named, no output left) without a hang.
# Usage: bash cli_mpi.sh GMLE WORKDIR HELPER_DIR GMLE_MPI "MPIEXEC [FLAGS]"
. "$(dirname "$0")/../cli/lib.sh"
MPI_GMLE=${4:?path to gmle-mpi}
MPIEXEC=${5:?the mpiexec command}
CMP="$HELPERS/cli_model_compare"

# gmle-mpi on $NP ranks, through lib.sh's run/expect: the command they run
# is this wrapper (a run that hangs is stopped: exit 124).
GMLE_ONE=$GMLE
cat >mpi_gmle <<WRAPPER
#!/bin/sh
exec timeout 120 $MPIEXEC -np "\$NP" "$MPI_GMLE" "\$@"
WRAPPER
chmod +x mpi_gmle
GMLE=$PWD/mpi_gmle

# mexpect RC NAME NP ARGS...: gmle-mpi on NP ranks must exit with RC.
mexpect() {
  export NP=$3
  expect "$1" "$2 ($3 ranks)" "${@:4}"
}

# mexpect_fail RC NAME NP MUST OUTFILE ARGS...: exit RC, stderr names MUST,
# no OUTFILE (nor its temporary file) left.
mexpect_fail() {
  local want=$1 name=$2 np=$3 must=$4 outfile=$5
  shift 5
  rm -f "$outfile"
  mexpect "$want" "$name" "$np" "$@"
  if grep -q -- "$must" err.txt; then
    ok "$name: names '$must': $(grep -- "$must" err.txt | head -1)"
  else
    bad "$name: no '$must' in:"
    sed 's/^/     | /' err.txt | head -8
  fi
  if ls -a | grep -q -- "$(basename "$outfile")"; then
    bad "$name: left $(ls -a | grep -- "$(basename "$outfile")")"
  else
    ok "$name: no output left"
  fi
}

# same_model A B TOL WHAT: the models agree within TOL (gmle_model_load).
same_model() {
  if "$CMP" "$1" "$2" "$3" >cmp.txt 2>&1; then
    ok "$4: $(cat cmp.txt)"
  else
    bad "$4: $(cat cmp.txt)"
  fi
}

same_bytes() {
  if cmp -s "$1" "$2"; then ok "$3: the same bytes"; else bad "$3: $1 and $2 differ"; fi
}

# 1001 rows of three classes, sorted by class: with 2 or more ranks some
# ranks have no row of some class. X.csv + y.txt, and xy.csv with the
# labels in column 3.
gen_csv 1001 7 | sort -t, -k4,4 -s >xy.csv
cut -d, -f1-3 xy.csv >X.csv
cut -d, -f4 xy.csv >y.txt
"$GMLE_ONE" fit X.csv --labels y.txt -o one.npz -q
"$GMLE_ONE" fit xy.csv --label-column 3 --cov diag -o one_diag.npz -q

for np in 1 2 3 4; do
  mexpect 0 "fit, text labels" "$np" fit X.csv --labels y.txt -o m$np.npz -q
  same_model m$np.npz one.npz 1e-12 "$np ranks = one process (full)"
  mexpect 0 "fit, CSV label column, diag" "$np" fit xy.csv --label-column 3 --cov diag -o d$np.npz -q
  same_model d$np.npz one_diag.npz 1e-12 "$np ranks = one process (diag)"
done
same_bytes m1.npz one.npz "1 rank: the model file is gmle's"

# Statistics: the same bytes from run to run for the same number of ranks.
mexpect 0 "stats" 3 stats X.csv --labels y.txt -o s3.st -q
mexpect 0 "stats again" 3 stats X.csv --labels y.txt -o s3b.st -q
same_bytes s3.st s3b.st "3 ranks, twice"
"$GMLE_ONE" fit --stats s3.st -o from_stats.npz -q
same_model from_stats.npz one.npz 1e-12 "fit --stats of gmle-mpi stats = fit"

# A rank with no rows: 3 rows on 4 ranks.
head -3 X.csv >tiny.csv
"$GMLE_ONE" fit tiny.csv --rel-floor 1e-3 -o tiny1.npz -q
mexpect 0 "fit 3 rows on 4 ranks" 4 fit tiny.csv --rel-floor 1e-3 -o tiny4.npz -q
same_model tiny4.npz tiny1.npz 1e-12 "a rank with no rows"

# Mixtures: from a given start, the one-process model within 1e-10.
"$GMLE_ONE" fit X.csv --labels y.txt --components 2 --max-iter 2 -o start.npz -q
"$GMLE_ONE" fit X.csv --labels y.txt --init-model start.npz --max-iter 10 --tol 0 -o em.npz -q
for np in 1 3; do
  mexpect 0 "mixture from --init-model" "$np" fit X.csv --labels y.txt --init-model start.npz --max-iter 10 --tol 0 -o em$np.npz -q
done
same_bytes em1.npz em.npz "a mixture on 1 rank: the model file is gmle's"
same_model em3.npz em.npz 1e-10 "3 ranks, mixture moments"
mexpect 0 "mixture from k-means++, 2 initialisations" 2 fit X.csv --labels y.txt --components 2 --n-init 2 -o emk.npz -q
if "$GMLE_ONE" info emk.npz >info.txt 2>&1 && grep -q "initialisations: 2" info.txt && grep -q "BIC" info.txt; then
  ok "k-means++ mixture: $(grep 'EM:' info.txt)"
else
  bad "k-means++ mixture: $(head -3 info.txt)"
fi

# score and classify: the same bytes; eval: the same numbers.
for what in loglik label density logpost; do
  "$GMLE_ONE" score one.npz X.csv --what $what -o s1_$what.npy -q
  mexpect 0 "score --what $what" 3 score one.npz X.csv --what $what -o s3_$what.npy -q
  same_bytes s3_$what.npy s1_$what.npy "score --what $what, 3 ranks"
done
"$GMLE_ONE" score em.npz X.csv --dtype f32 -o f1.npy -q
mexpect 0 "score a mixture, f32" 4 score em.npz X.csv --dtype f32 -o f4.npy -q
same_bytes f4.npy f1.npy "score a mixture, 4 ranks"
"$GMLE_ONE" classify one.npz X.csv --truth y.txt -o p1.npy >c1.txt 2>/dev/null
mexpect 0 "classify" 3 classify one.npz X.csv --truth y.txt -o p3.npy
same_bytes p3.npy p1.npy "class names predicted, 3 ranks"
same_bytes out.txt c1.txt "accuracy and confusion matrix over all rows"
"$GMLE_ONE" eval one.npz X.csv --labels y.txt >e1.txt 2>/dev/null
mexpect 0 "eval" 2 eval one.npz X.csv --labels y.txt
if awk 'NR == FNR { a[$1 $2] = $NF; next } ($1 $2) in a {
          d = $NF - a[$1 $2]; if (d < 0) d = -d; s = a[$1 $2]; if (s < 0) s = -s
          if (d > 1e-12 * (s > 1 ? s : 1)) bad = 1; n++ }
        END { exit bad || n < 3 }' e1.txt out.txt; then
  ok "eval: rows and log-likelihoods within 1e-12: $(grep total out.txt)"
else
  bad "eval differs: $(cat out.txt)"
fi

# Failures: a NaN in rank 1's share (line 500 of 1001 on 3 ranks).
awk -F, 'NR == 500 { $2 = "nan" } { print }' OFS=, X.csv >nan.csv
mexpect_fail 2 "fit, NaN in rank 1's rows" 3 "rank 1: nan.csv:500" bad.npz fit nan.csv --labels y.txt -o bad.npz
mexpect_fail 2 "mixture, NaN in rank 1's rows" 3 "rank 1: nan.csv:500" bad.npz fit nan.csv --labels y.txt --components 2 -o bad.npz
mexpect_fail 2 "mixture from a model, NaN" 3 "rank 1: nan.csv:500" bad.npz fit nan.csv --labels y.txt --init-model start.npz -o bad.npz
mexpect_fail 2 "score, NaN in rank 1's rows" 3 "rank 1: nan.csv:500" bad.npy score one.npz nan.csv -o bad.npy
mexpect_fail 2 "classify, NaN in rank 1's rows" 3 "rank 1: nan.csv:500" bad.npy classify one.npz nan.csv -o bad.npy
if grep -q "stopped: rank 1 of 3 failed" err.txt; then
  ok "rank 0 says which rank stopped the job"
else
  bad "rank 0 does not name the failed rank: $(head -3 err.txt)"
fi
awk -F, 'NR == 900 { $2 = "1.5x" } { print }' OFS=, X.csv >typo.csv
mexpect_fail 3 "a malformed CSV value in rank 2's rows" 3 "rank 2: typo.csv:900:" bad.npz fit typo.csv --labels y.txt -o bad.npz
mexpect_fail 3 "a missing file" 2 "missing.csv" bad.npz fit missing.csv -o bad.npz
mexpect_fail 1 "score to CSV" 2 "name a .npy file" bad.csv score one.npz X.csv -o bad.csv
printf "u1  [\n  1 2\n  3 4 ]\n" >t.ark
mexpect_fail 1 "Kaldi tables" 2 "Kaldi tables" bad.npz fit ark:t.ark -o bad.npz
mexpect_fail 1 "a command that reads no data" 2 "unknown command" bad.npz merge s3.st -o bad.npz
mexpect 0 "help" 2 --help
if grep -q "mpirun -np P gmle-mpi" out.txt && [ "$(grep -c 'Usage' out.txt)" = 1 ]; then
  ok "one help text"
else
  bad "help: $(head -3 out.txt)"
fi

if [ "$HAVE_NUMPY" = 1 ]; then
  # .npy data and integer labels; numpy's float64 moments as the reference.
  python3 - <<'PY'
import numpy as np
rng = np.random.default_rng(3)
n, d = 3001, 4
y = np.sort(rng.integers(0, 4, n))
X = rng.normal(size=(n, d)) * [1, 10, 0.1, 3] + 100 * y[:, None] + 1e4
np.save("X.npy", X)
np.save("y.npy", y.astype(np.int32))
PY
  for np in 2 3 4; do
    mexpect 0 "fit .npy" "$np" fit X.npy --labels y.npy -o n$np.npz -q
    py "$np ranks: numpy's means and covariances within 1e-12" n$np.npz <<'PY'
import numpy as np, sys
m, X, y = np.load(sys.argv[1]), np.load("X.npy"), np.load("y.npy")
worst = 0.0
for c in range(4):
    Z = X[y == c]
    mu, S = Z.mean(0), np.cov(Z.T, bias=True)
    worst = max(worst, np.max(np.abs(m["means"][c] - mu) / np.abs(mu)),
                np.max(np.abs(m["covariances"][c] - S)) / np.max(np.abs(S)))
assert worst <= 1e-12, worst
print("largest relative error %.2e" % worst)
PY
  done
  "$GMLE_ONE" fit X.npy --labels y.npy --components 2 --cov diag --max-iter 3 -o nstart.npz -q
  "$GMLE_ONE" fit X.npy --labels y.npy --init-model nstart.npz --max-iter 20 --tol 0 -o nem1.npz -q
  mexpect 0 "mixture from a given start, .npy" 3 fit X.npy --labels y.npy --init-model nstart.npz --max-iter 20 --tol 0 -o nem3.npz -q
  py "mixture on 3 ranks: weights, means, covariances within 1e-10" <<'PY'
import numpy as np
a, b = np.load("nem3.npz"), np.load("nem1.npz")
worst = max(np.max(np.abs(a[k] - b[k])) / np.max(np.abs(b[k]))
            for k in ("weights", "means", "covariances", "precisions_cholesky",
                      "train_loglik"))
assert worst <= 1e-10, worst
assert int(a["em_n_iter"]) == int(b["em_n_iter"]) == 20
print("largest relative difference %.2e" % worst)
PY
  python3 -c "
import numpy as np
X = np.load('X.npy'); X[1700, 2] = np.nan; np.save('nan.npy', X)"
  mexpect_fail 2 "fit .npy, NaN in rank 2's rows" 4 "rank 2: nan.npy.*row 1700 of the file" bad.npz fit nan.npy --labels y.npy -o bad.npz
else
  echo "(numpy checks skipped: python3 with numpy not available)"
fi
finish
