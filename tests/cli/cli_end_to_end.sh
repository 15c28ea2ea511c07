# cli_end_to_end.sh -- fit, info, score, classify, eval on CSV (with and
# without header, string labels in a column or a labels file, integer
# labels) and, with numpy, on .npy float32/float64 checked against a float64
# numpy reference.
. "$(dirname "$0")/lib.sh"
CMP="$HELPERS/cli_model_compare"

# ---- CSV, no numpy needed -------------------------------------------------
gen_csv 600 7 >body.csv
{ echo "a,b,c,species"; cat body.csv; } >iris.csv
cut -d, -f1-3 body.csv >nohdr.csv
cut -d, -f4 body.csv >names.txt
sed 's/^setosa$/10/; s/^versicolor$/9/; s/^virginica$/2/' names.txt >ints.txt

expect 0 "fit CSV with header, label column" fit iris.csv --label-column species -o m_csv.npz -q
must_exist m_csv.npz
expect 0 "fit CSV without header, labels file" fit nohdr.csv --labels names.txt -o m_nohdr.npz -q
if "$CMP" m_csv.npz m_nohdr.npz 0 >cmp.txt; then ok "same model from both CSV layouts: $(cat cmp.txt)"; else bad "CSV layouts differ: $(cat cmp.txt)"; fi
expect 0 "fit with the label column given by index" fit iris.csv --label-column 3 -o m_idx.npz -q
"$CMP" m_csv.npz m_idx.npz 0 >/dev/null && ok "label column by index = by name" || bad "label column by index differs"
expect 0 "fit with integer labels" fit nohdr.csv --labels ints.txt -o m_int.npz -q

expect 0 "info" info m_csv.npz
grep -q "classes: 3" out.txt && grep -q "setosa" out.txt && grep -q "covariance: full" out.txt &&
  ok "info lists classes, names, covariance" || { bad "info output:"; cat out.txt; }
grep -q "BIC" out.txt && ok "info prints BIC/AIC" || echo "note: info printed no BIC/AIC"
expect 0 "info --json" info m_int.npz --json
if command -v python3 >/dev/null; then
  python3 -c '
import json,sys
j = json.load(open("out.txt"))
names = [c["name"] for c in j["classes"]]
assert names == ["2", "9", "10"], names   # numeric order, not "10" < "2"
assert j["dim"] == 3 and j["covariance_type"] == "full"
print("json ok, classes", names)' >py.txt 2>&1 && ok "info --json: $(cat py.txt)" || { bad "info --json:"; cat py.txt; }
fi

expect 0 "score to CSV" score m_csv.npz nohdr.csv -o s.csv -q
[ "$(wc -l <s.csv)" = 600 ] && [ "$(head -1 s.csv | tr ',' '\n' | wc -l)" = 3 ] &&
  ok "s.csv is 600 x 3" || bad "s.csv shape: $(wc -l <s.csv) lines, first: $(head -1 s.csv)"
expect 0 "score skipping a label column" score m_csv.npz iris.csv --label-column species --what logpost -o lp.csv -q
awk -F, '{ m = $1; for (i = 2; i <= 3; i++) if ($i > m) m = $i; s = 0; for (i = 1; i <= 3; i++) s += exp($i - m); if (m + log(s) > 1e-9 || m + log(s) < -1e-9) bad++ } END { exit bad > 0 }' lp.csv &&
  ok "log-posteriors normalise (logsumexp = 0)" || bad "log-posteriors do not normalise"

expect 0 "classify with truth column" classify m_csv.npz iris.csv --label-column species -o pred.csv
grep -q "^accuracy: " out.txt && grep -q "confusion matrix" out.txt &&
  ok "classify prints $(grep accuracy out.txt)" || { bad "classify output:"; cat out.txt; }
acc=$(awk '/^accuracy/ { print ($2 > 0.9) }' out.txt)
[ "$acc" = 1 ] && ok "accuracy > 0.9 on separable classes" || bad "accuracy too low"
grep -qx "setosa" pred.csv && [ "$(wc -l <pred.csv)" = 600 ] && ok "predictions are class names" || bad "pred.csv: $(head -2 pred.csv)"
expect 0 "classify with --truth file, integer classes" classify m_int.npz nohdr.csv --truth ints.txt -o pred_int.csv
grep -qx "10" pred_int.csv && ok "predictions are the integer labels" || bad "pred_int.csv: $(head -2 pred_int.csv)"
expect 0 "classify without truth" classify m_csv.npz nohdr.csv

expect 0 "eval labelled" eval m_csv.npz nohdr.csv --labels names.txt
grep -q "each row's class" out.txt && ok "eval labelled: $(grep total out.txt)" || bad "eval labelled output"
expect 0 "eval unlabelled" eval m_csv.npz nohdr.csv
grep -q "mixture" out.txt && ok "eval unlabelled: $(grep total out.txt)" || bad "eval unlabelled output"
for cov in diag spherical tied; do
  expect 0 "fit --cov $cov" fit iris.csv --label-column species --cov $cov -o m_$cov.npz -q
  expect 0 "score --cov $cov model" score m_$cov.npz nohdr.csv --what density -o d_$cov.npy -q
done
expect 0 "fit with options" fit iris.csv --label-column species --abs-floor 1e-6 --max-condition 1e6 --shrinkage --priors 0.2,0.3,0.5 -o m_opt.npz -q
expect 0 "fit unlabelled (one Gaussian)" fit nohdr.csv -o m_one.npz -q
expect 0 "small batches give the same model" fit iris.csv --label-column species --batch-rows 7 -o m_b7.npz -q
"$CMP" m_csv.npz m_b7.npz 1e-12 >cmp.txt && ok "batch size 7 vs default: $(cat cmp.txt)" || bad "batch size changes the model: $(cat cmp.txt)"

# ---- .npy float32/float64 against numpy ------------------------------------
if [ "$HAVE_NUMPY" = 1 ]; then
  py "write .npy data" <<'PY'
import numpy as np
rng = np.random.default_rng(11)
N, D = 5000, 4
y = rng.choice(np.array([2, 9, 10]), size=N)
means = {2: [0, 0, 0, 0], 9: [2, 1, 0, -1], 10: [100, 100, 100, 100]}
A = rng.normal(size=(D, D)) * 0.5 + np.eye(D)
X = np.array([means[k] for k in y]) + rng.normal(size=(N, D)) @ A
np.save("X64.npy", X)
np.save("X32.npy", X.astype(np.float32))
np.save("XF.npy", np.asfortranarray(X))
np.save("y.npy", y.astype(np.int64))
np.save("y32.npy", y.astype(np.int32))
print("X", X.shape)
PY
  expect 0 "fit .npy f64 + integer .npy labels" fit X64.npy --labels y.npy -o m64.npz -q
  expect 0 "fit .npy f32" fit X32.npy --labels y32.npy -o m32.npz -q
  expect 0 "fit Fortran-order .npy" fit XF.npy --labels y.npy -o mF.npz -q
  "$CMP" m64.npz mF.npz 1e-12 >cmp.txt && ok "Fortran order = C order: $(cat cmp.txt)" || bad "Fortran order differs: $(cat cmp.txt)"
  for w in loglik joint logpost density label; do
    expect 0 "score --what $w" score m64.npz X64.npy --what $w -o s_$w.npy -q
  done
  expect 0 "score --dtype f32" score m64.npz X64.npy --what loglik --dtype f32 -o s_f32.npy -q
  expect 0 "score f32 data" score m32.npz X32.npy --what loglik -o s32.npy -q
  expect 0 "classify .npy" classify m64.npz X64.npy --truth y.npy -o pred.npy
  acc=$(awk '/^accuracy/ { print $2 }' out.txt)
  expect 0 "eval .npy labelled" eval m64.npz X64.npy --labels y.npy
  ev_lab=$(awk '/^total/ { print $3 }' out.txt)
  expect 0 "eval .npy unlabelled" eval m64.npz X64.npy
  ev_mix=$(awk '/^total/ { print $3 }' out.txt)
  py "fit and scores match the float64 numpy reference" "$acc" "$ev_lab" "$ev_mix" <<'PY'
import sys
import numpy as np
acc, ev_lab, ev_mix = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
X = np.load("X64.npy"); X32 = np.load("X32.npy").astype(np.float64); y = np.load("y.npy")
classes = np.array([2, 9, 10])
def mle(X):
    mu = np.array([X[y == k].mean(axis=0) for k in classes])
    S = np.array([np.cov(X[y == k].T, bias=True) for k in classes])
    return mu, S
def rel(a, b):
    return np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300)
m = np.load("m64.npz")
mu, S = mle(X)
assert list(m["means"].shape) == [3, 4]
e_mu, e_S = rel(m["means"], mu), max(rel(m["covariances"][c], S[c]) for c in range(3))
assert e_mu <= 1e-12 and e_S <= 1e-12, (e_mu, e_S)
m32 = np.load("m32.npz")
mu32, S32 = mle(X32)
e_mu32 = np.max(np.abs(m32["means"] - mu32) / np.maximum(np.abs(mu32), np.sqrt(np.array([np.diag(s) for s in S32]))))
e_S32 = max(np.linalg.norm(m32["covariances"][c] - S32[c]) / np.linalg.norm(S32[c]) for c in range(3))
assert e_mu32 <= 1e-7 and e_S32 <= 1e-6, (e_mu32, e_S32)
# Scores: log N(x; mu_c, Sigma_c) through the Cholesky factor, in float64.
mu, S, pri = m["means"], m["covariances"], m["priors"]
ll = np.empty((len(X), 3))
for c in range(3):
    L = np.linalg.cholesky(S[c])
    z = np.linalg.solve(L, (X - mu[c]).T)
    ll[:, c] = -0.5 * (4 * np.log(2 * np.pi) + 2 * np.log(np.diag(L)).sum() + (z * z).sum(axis=0))
joint = ll + np.log(pri)
mx = joint.max(axis=1, keepdims=True)
dens = (mx + np.log(np.exp(joint - mx).sum(axis=1, keepdims=True)))[:, 0]
post = joint - dens[:, None]
def close(name, a, b, tol):
    err = np.max(np.abs(a - b) / (1 + np.abs(b)))
    assert err <= tol, (name, err)
    return err
errs = [close("loglik", np.load("s_loglik.npy"), ll, 1e-10),
        close("joint", np.load("s_joint.npy"), joint, 1e-10),
        close("logpost", np.load("s_logpost.npy"), post, 1e-10),
        close("density", np.load("s_density.npy"), dens, 1e-10),
        close("f32 out", np.load("s_f32.npy").astype(np.float64), ll, 1e-6)]
assert np.load("s_f32.npy").dtype == np.float32
lab = np.load("s_label.npy")
assert lab.dtype == np.int32 and np.array_equal(lab, joint.argmax(axis=1))
pred = np.load("pred.npy")
assert pred.dtype == np.int64 and np.array_equal(pred, classes[joint.argmax(axis=1)])
assert abs(acc - np.mean(pred == y)) < 1e-6, (acc, np.mean(pred == y))
idx = np.searchsorted(classes, y)
tot_lab = ll[np.arange(len(X)), idx].sum()
assert abs(ev_lab - tot_lab) <= 1e-9 * abs(tot_lab), (ev_lab, tot_lab)
assert abs(ev_mix - dens.sum()) <= 1e-9 * abs(dens.sum()), (ev_mix, dens.sum())
print("means %.1e covs %.1e (f64); means %.1e covs %.1e (f32); scores %.1e" % (e_mu, e_S, e_mu32, e_S32, max(errs[:4])))
PY
else
  echo "note: numpy not available; .npy files written by cli_gen_npy, no reference checks"
  for t in f32 f64; do
    "$HELPERS/cli_gen_npy" G$t.npy 3000 4 $t 3
    expect 0 "fit .npy $t (unlabelled)" fit G$t.npy -o g$t.npz -q
    expect 0 "score .npy $t" score g$t.npz G$t.npy --what density -o gd$t.npy -q
    expect 0 "eval .npy $t" eval g$t.npz G$t.npy
  done
  "$CMP" gf32.npz gf64.npz 1e-6 >cmp.txt && ok "f32 and f64 copies give the same model within 1e-6: $(cat cmp.txt)" ||
    bad "f32 vs f64: $(cat cmp.txt)"
fi
finish
