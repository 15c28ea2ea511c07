# cli_shards.sh -- the shard workflow: stats on 3 pieces, merge, fit from
# the merged statistics equals the fit on the whole file within 1e-12
# (checked with numpy when available, and always through gmle_model_load).
. "$(dirname "$0")/lib.sh"
CMP="$HELPERS/cli_model_compare"

gen_csv 900 3 >all.csv
cut -d, -f1-3 all.csv >X.csv
cut -d, -f4 all.csv >y.txt
# Three unequal pieces.
sed -n '1,100p' X.csv >X1.csv;   sed -n '1,100p' y.txt >y1.txt
sed -n '101,550p' X.csv >X2.csv; sed -n '101,550p' y.txt >y2.txt
sed -n '551,900p' X.csv >X3.csv; sed -n '551,900p' y.txt >y3.txt
CL=setosa,versicolor,virginica
for i in 1 2 3; do
  expect 0 "stats on piece $i" stats X$i.csv --labels y$i.txt --classes $CL -o s$i.st -q
done
expect 0 "merge 3 pieces" merge s1.st s2.st s3.st -o merged.st -q
expect 0 "fit --stats merged" fit --stats merged.st -o m_merged.npz -q
expect 0 "fit on the whole file" fit X.csv --labels y.txt -o m_whole.npz -q
if "$CMP" m_merged.npz m_whole.npz 1e-12 >cmp.txt; then ok "merged = whole (gmle_model_load): $(cat cmp.txt)"; else bad "merged != whole: $(cat cmp.txt)"; fi
expect 0 "merge in another order" merge s3.st s1.st s2.st -o merged2.st -q
expect 0 "fit --stats merged2" fit --stats merged2.st -o m_merged2.npz -q
"$CMP" m_merged2.npz m_whole.npz 1e-12 >cmp.txt && ok "merge order does not matter: $(cat cmp.txt)" || bad "merge order: $(cat cmp.txt)"
expect 0 "stats on the whole file" stats X.csv --labels y.txt -o whole.st -q
expect 0 "fit --stats whole, --cov diag" fit --stats whole.st --cov diag -o m_sd.npz -q
expect 0 "fit --cov diag on the file" fit X.csv --labels y.txt --cov diag -o m_fd.npz -q
"$CMP" m_sd.npz m_fd.npz 1e-12 >cmp.txt && ok "diag from stats = diag from data: $(cat cmp.txt)" || bad "diag: $(cat cmp.txt)"

if [ "$HAVE_NUMPY" = 1 ]; then
  py "numpy: merged model = whole-file model" <<'PY'
import numpy as np
a, b = np.load("m_merged.npz"), np.load("m_whole.npz")
worst = 0.0
for k in ("means", "covariances", "priors", "counts"):
    d = np.max(np.abs(a[k] - b[k])) / np.max(np.abs(b[k]))
    assert d <= 1e-12, (k, d)
    worst = max(worst, d)
names = [str(s) for s in a["classes"]] if "classes" in a.files else None
print("max relative difference %.2e, class names %s" % (worst, names))
PY
fi

# Shards must agree on classes: a piece without --classes that lacks one.
grep -v virginica all.csv >part.csv
cut -d, -f1-3 part.csv >Xp.csv; cut -d, -f4 part.csv >yp.txt
expect 0 "stats on a piece with 2 classes (no --classes)" stats Xp.csv --labels yp.txt -o sp.st -q
expect_fail 2 "merge of shards with different classes" "sp.st" out.st merge s1.st sp.st -o out.st
expect_fail 2 "a label outside --classes" "y2.txt" out.st stats X2.csv --labels y2.txt --classes setosa,virginica -o out.st
expect_fail 3 "merge of a missing file" "nope.st" out.st merge s1.st nope.st -o out.st
printf 'garbage' >bad.st
expect_fail 3 "merge of a corrupt stats file" "bad.st" out.st merge s1.st bad.st -o out.st
finish
