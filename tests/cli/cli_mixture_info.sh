# cli_mixture_info.sh -- `gmle info` on mixture model files (issue 13): the
# components, their weights, the EM report and its log-likelihood history
# (first and last few, all with --verbose); --json carries every number
# exactly (%.17g); init files that numpy writes load; bad ones fail with
# exit 3 and one line naming the file, and the class and sum or the member
# and the expected shape.
. "$(dirname "$0")/lib.sh"
if [ "$HAVE_NUMPY" != 1 ]; then
  echo "skip: numpy not available"
  exit 77
fi
py "write mixture files with numpy" <<'PY'
import numpy as np
rng = np.random.default_rng(13)
K, D = 10, 2
w = rng.uniform(0.5, 1, K)
w /= w.sum()
h = -5 + np.cumsum(rng.uniform(0, 0.2, 30))
em = dict(em_n_iter=np.uint64(30), em_converged=True, em_lower_bound=h[-1],
          em_history=h, em_n_reseeded=np.uint64(1), em_n_init=np.uint64(3),
          em_best_init=np.uint64(2), em_mode='hard', em_init='split',
          em_reg_covar=1e-6, em_n_rows=12345.0)
np.savez('ubm.npz', weights=w, means=rng.normal(size=(K, D)),
         covariances=rng.uniform(0.5, 2, (K, D)), covariance_type='diag',
         format_version=2, **em)
# Per class, as an init file: weights, means, covariances, type and names.
np.savez('pc.npz', weights=np.array([[0.5, 0.5], [0.25, 0.75]]),
         means=rng.normal(size=(2, 2, 3)), covariance_type='spherical',
         covariances=np.array([[1., 2.], [0.5, 0.25]]),
         classes=np.array(['setosa', 'virginica']))
print("ubm.npz, pc.npz")
PY
expect 0 "info on an unsupervised mixture" info ubm.npz
cp out.txt ubm.txt
for want in "components: 10 per class" "EM: hard, init split, 30 iterations, converged" \
  "components re-seeded: 1" "initialisations: 3 (kept: run 3" "(24 more)"; do
  if grep -qF "$want" ubm.txt; then ok "info says '$want'"; else bad "info lacks '$want'"; fi
done
expect 0 "info --verbose" info ubm.npz --verbose
if [ "$(grep -cE '^ +[0-9]+  -' out.txt)" = 30 ]; then
  ok "--verbose lists all 30 iterations"
else
  bad "--verbose lists $(grep -cE '^ +[0-9]+  -' out.txt) iterations, not 30"
fi
expect 0 "info --json" info ubm.npz --json
cp out.txt ubm.json
expect 0 "info --json, per class" info pc.npz --json
cp out.txt pc.json
py "info --json = np.load, bit for bit" <<'PY'
import json
import numpy as np
z = np.load("ubm.npz")
j = json.load(open("ubm.json"))
assert j["n_components"] == 10 and j["n_classes"] == 1
c = j["classes"][0]
assert np.array_equal(np.array(c["weights"]), z["weights"]), "weights"
assert np.array_equal(np.array(c["component_means"]), z["means"]), "means"
em = j["em"]
assert np.array_equal(np.array(em["history"]), z["em_history"]), "history"
assert em["mode"] == "hard" and em["init"] == "split" and em["n_iter"] == 30
assert em["converged"] is True and em["best_init"] == 2 and em["n_init"] == 3
assert em["lower_bound"] == float(z["em_lower_bound"])
# The mixture's moments: sum_k w_k mu_k.
assert np.allclose(c["mean"], z["weights"] @ z["means"], rtol=1e-14, atol=1e-14)
p = np.load("pc.npz")
jp = json.load(open("pc.json"))
assert jp["em"] is None and [c["name"] for c in jp["classes"]] == ["setosa", "virginica"]
for k, c in enumerate(jp["classes"]):
    assert np.array_equal(np.array(c["weights"]), p["weights"][k])
    assert np.array_equal(np.array(c["component_means"]), p["means"][k])
print("equal")
PY
expect 0 "info on a per-class init file" info pc.npz
if grep -q "EM: no report" out.txt && grep -qE "^  virginica +0.25 0.75$" out.txt; then
  ok "per-class weights shown, no EM report"
else
  bad "per-class info:"
  sed 's/^/     | /' out.txt
fi

py "write bad init files" <<'PY'
import numpy as np
kw = dict(means=np.zeros((2, 2, 3)), covariances=np.ones((2, 2, 3)),
          covariance_type='diag')
np.savez('sum.npz', weights=np.array([[0.5, 0.5], [0.5, 0.6]]), **kw)
kw['covariance_type'] = 'full'
np.savez('type.npz', weights=np.array([[0.5, 0.5], [0.5, 0.5]]), **kw)
print("sum.npz, type.npz")
PY
expect_fail 3 "weights that do not sum to 1" "sum.npz: member 'weights.npy'.*class 1: the weights sum to 1.1" "" info sum.npz
expect_fail 3 "covariances of another type" "type.npz: member 'covariances.npy'.*expected (2, 2, 3, 3) for covariance_type 'full' (this is the shape of 'diag'" "" info type.npz
finish
