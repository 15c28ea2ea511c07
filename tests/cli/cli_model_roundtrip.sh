# cli_model_roundtrip.sh -- numpy reads the model file; its numbers equal,
# bit for bit, what `gmle info --json` prints (%.17g) and what gmle scores
# with (checked against a float64 numpy reference); a model written by
# numpy with the same arrays loads and scores the same.
. "$(dirname "$0")/lib.sh"
if [ "$HAVE_NUMPY" != 1 ]; then
  echo "skip: numpy not available"
  exit 77
fi
gen_csv 450 9 >all.csv
cut -d, -f1-3 all.csv >X.csv
cut -d, -f4 all.csv >y.txt
expect 0 "fit" fit X.csv --labels y.txt -o m.npz -q
expect 0 "info --json" info m.npz --json
cp out.txt info.json
expect 0 "score loglik" score m.npz X.csv -o s.npy -q
py "np.load model = gmle info --json, bit for bit" <<'PY'
import json
import numpy as np
m = np.load("m.npz")
j = json.load(open("info.json"))
print_keys = sorted(m.files)
means = np.array([c["mean"] for c in j["classes"]])
covs = np.array([c["covariance"] for c in j["classes"]])
pri = np.array([c["prior"] for c in j["classes"]])
cnt = np.array([c["count"] for c in j["classes"]])
assert m["means"].dtype == np.float64
assert np.array_equal(m["means"], means), "means"
assert np.array_equal(m["covariances"], covs), "covariances"
assert np.array_equal(m["priors"], pri), "priors"
assert np.array_equal(m["counts"], cnt), "counts"
names = [str(s) for s in m["classes"]]
assert names == [c["name"] for c in j["classes"]] == ["setosa", "versicolor", "virginica"], names
print("keys", print_keys)
PY
py "gmle score = numpy float64 reference from the np.load parameters" <<'PY'
import numpy as np
m = np.load("m.npz")
X = np.loadtxt("X.csv", delimiter=",")
s = np.load("s.npy")
ref = np.empty_like(s)
for c in range(3):
    L = np.linalg.cholesky(m["covariances"][c])
    z = np.linalg.solve(L, (X - m["means"][c]).T)
    ref[:, c] = -0.5 * (3 * np.log(2 * np.pi) + 2 * np.log(np.diag(L)).sum() + (z * z).sum(axis=0))
err = np.max(np.abs(s - ref) / (1 + np.abs(ref)))
assert err <= 1e-10, err
print("max relative error %.2e" % err)
PY
# A model written by numpy alone (same arrays) loads and scores the same.
py "write a model with numpy" <<'PY'
import numpy as np
m = np.load("m.npz")
np.savez("np_model.npz", **{k: m[k] for k in m.files})
print("np.savez with", len(m.files), "arrays")
PY
expect 0 "score the numpy-written model" score np_model.npz X.csv -o s2.npy -q
py "numpy-written model scores bit-identically" <<'PY'
import numpy as np
assert np.array_equal(np.load("s.npy"), np.load("s2.npy"))
print("identical")
PY
finish
