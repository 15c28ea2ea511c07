"""em_shards.py -- one EM iteration over shards equals the whole-file run
(issue 13, acceptance: "EM over 3 shards through stats/merge/fit equals the
whole-file run within 1e-12 per iteration").

For each covariance type, three iterations from a start: each iteration is
`gmle stats SHARD --model CURRENT` on three unequal pieces of the data,
`gmle merge` of the three, `gmle fit --stats ALL --model CURRENT`; after
iteration i its weights, means and covariances are within 1e-12 relative
(per array: max |a - ref| / max |ref|) of `gmle fit DATA --init-model START
--max-iter i --tol 0`, and so is its lower bound (em_lower_bound, relative
to max(1, |ref|)). Float64 rows.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import em_lib  # noqa: E402

T = em_lib.Suite(needs=("numpy",))
np = em_lib.np

TOL = 1e-12
K = 3
N = 3000

x, _, centres = em_lib.mixture_data(seed=23, n=N, d=4, k=K)
np.save("x.npy", x)
cuts = (0, 500, 1750, N)  # three unequal shards
shards = []
for i in range(3):
    shards.append("x%d.npy" % (i + 1))
    np.save(shards[-1], x[cuts[i]:cuts[i + 1]])

for cov_type in em_lib.COV_TYPES:
    start = "init_%s.npz" % cov_type
    em_lib.save_init(start, *em_lib.start_params(11, x, centres, cov_type),
                     cov_type)
    current = start
    for it in (1, 2, 3):
        name = "%s, iteration %d" % (cov_type, it)
        whole, nxt = "whole_%s_%d.npz" % (cov_type, it), "next_%s_%d.npz" % (
            cov_type, it)
        parts = ["s%d_%s_%d.stats" % (i + 1, cov_type, it) for i in range(3)]
        merged = "all_%s_%d.stats" % (cov_type, it)
        if not (all(T.gmle_ok("%s: stats on shard %d" % (name, i + 1), "stats",
                              shards[i], "--model", current, "-o", parts[i],
                              "-q") for i in range(3)) and
                T.gmle_ok(name + ": merge", "merge", *parts, "-o", merged,
                          "-q") and
                T.gmle_ok(name + ": fit --stats", "fit", "--stats", merged,
                          "--model", current, "-o", nxt, "-q") and
                T.gmle_ok(name + ": whole file", "fit", "x.npy",
                          "--components", K, "--cov", cov_type,
                          "--init-model", start, "--max-iter", it, "--tol", 0,
                          "-o", whole, "-q")):
            break
        got, want = em_lib.load(nxt), em_lib.load(whole)
        for member in ("weights", "means", "covariances"):
            T.within("%s: shards vs whole file, %s" % (name, member),
                     em_lib.rel(got.get(member), want[member]), TOL)
        lb, ref = got.get("em_lower_bound", np.nan), want.get(
            "em_lower_bound", np.nan)
        T.within("%s: shards vs whole file, lower bound %.12g" % (name, ref),
                 abs(lb - ref) / max(1.0, abs(ref)), TOL)
        current = nxt
T.finish()
