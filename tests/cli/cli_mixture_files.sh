# cli_mixture_files.sh -- mixture model files through the command (issue
# 13): `gmle fit --components` writes scikit-learn GaussianMixture's arrays
# (a class axis with --labels), with which scikit-learn scores as `gmle
# score` does; `gmle info` shows the components, their weights, the EM
# report and its log-likelihood history (first and last few, all with
# --verbose), and --json every number exactly (%.17g); init files that numpy
# writes load (--init-model too); bad ones fail with exit 3 and one line
# naming the file, and the class and sum or the member and the expected
# shape, and leave no output.
. "$(dirname "$0")/lib.sh"
if [ "$HAVE_NUMPY" != 1 ]; then
  echo "skip: numpy not available"
  exit 77
fi
gen_csv 600 13 >all.csv
cut -d, -f1-3 all.csv >X.csv
cut -d, -f4 all.csv >y.txt
expect 0 "fit an unsupervised mixture" fit X.csv --components 3 --cov full -o ubm_fit.npz -q
expect 0 "fit a mixture per class" fit X.csv --labels y.txt --components 2 --cov diag -o pc_fit.npz -q
expect 0 "score its density" score ubm_fit.npz X.csv --what density -o dens.npy -q
expect 0 "score class log-likelihoods" score pc_fit.npz X.csv --what loglik -o ll.npy -q
if python3 -c 'import sklearn' 2>/dev/null; then
  py "scikit-learn scores with the file's arrays as gmle does" <<'PY'
import numpy as np
from sklearn.mixture import GaussianMixture
X = np.loadtxt("X.csv", delimiter=",")
names = ("weights", "means", "covariances", "precisions_cholesky")
def mixture(z, c=None):
    gm = GaussianMixture(z["weights"].shape[-1],
                         covariance_type=str(z["covariance_type"]))
    gm.weights_, gm.means_, gm.covariances_, gm.precisions_cholesky_ = (
        z[k] if c is None else z[k][c] for k in names)
    return gm
u = np.load("ubm_fit.npz")
assert u["weights"].shape == (3,) and u["covariances"].shape == (3, 3, 3)
assert "priors" not in u.files and int(u["em_n_iter"]) >= 1
ref = mixture(u).score_samples(X)
err = np.max(np.abs(np.load("dens.npy") - ref) / np.maximum(1, np.abs(ref)))
p = np.load("pc_fit.npz")
assert p["weights"].shape == (3, 2) and p["means"].shape == (3, 2, 3)
assert list(p["classes"]) == ["setosa", "versicolor", "virginica"]
ref = np.stack([mixture(p, c).score_samples(X) for c in range(3)], 1)
err = max(err, np.max(np.abs(np.load("ll.npy") - ref) / np.maximum(1, np.abs(ref))))
assert err <= 1e-10, err
print("max relative difference %.2e" % err)
PY
else
  echo "skip: scikit-learn not available for the score comparison"
fi
expect 0 "info on a fitted mixture" info ubm_fit.npz
if grep -q "^EM: soft, init kmeans++" out.txt && grep -q "^components: 3 per class" out.txt \
  && grep -q "^BIC: " out.txt; then
  ok "info shows the components, the EM report and BIC"
else
  bad "info on a fitted mixture:"
  sed 's/^/     | /' out.txt
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
py "write an init model" <<'PY'
import numpy as np
np.savez("init.npz", weights=np.array([0.3, 0.3, 0.4]),
         means=np.array([[3., -1, .3], [6, -2, 1.3], [9, -3, 3]]),
         covariances=np.ones((3, 3)), covariance_type="diag")
np.savez("init_bad.npz", weights=np.array([0.3, 0.3, 0.3]),
         means=np.zeros((3, 3)), covariances=np.ones((3, 3)),
         covariance_type="diag")
print("init.npz, init_bad.npz")
PY
expect 0 "fit from a numpy init model" fit X.csv --components 3 --cov diag --init-model init.npz -o from_init.npz -q
expect_fail 3 "fit from an init model whose weights sum to 0.9" "init_bad.npz: member 'weights.npy'.*the weights sum to 0.9;" from_bad.npz fit X.csv --components 3 --cov diag --init-model init_bad.npz -o from_bad.npz -q
expect_fail 3 "weights that do not sum to 1" "sum.npz: member 'weights.npy'.*class 1: the weights sum to 1.1" "" info sum.npz
expect_fail 3 "covariances of another type" "type.npz: member 'covariances.npy'.*expected (2, 2, 3, 3) for covariance_type 'full' (this is the shape of 'diag'" "" info type.npz
finish
