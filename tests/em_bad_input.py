"""em_bad_input.py -- bad input to `gmle fit --components` (issue 13,
acceptance "Bad input"): each case exits with the code tools/cli.h and
`gmle help` document (1 usage: an option or argument the library rejects;
2 bad data; 3 file error), prints one line that names the problem, leaves
no output file, and never crashes.

  K = 0                                   1, names --components
  K above a class's row count             2, names the class
  a class whose rows are all identical    2 with both floors off, naming the
                                          class; with the default reg_covar
                                          a finite model
  NaN rows                                2, names the row of the file
  an init model of another dimension,     2, names the init file (as a model
  type or K                                  of another dimension is for
                                             gmle score: the model does not
                                             fit the data)
  init weights that do not sum to 1       3, names the init file and "sum"
  a component with half a row of          0: re-seeded (docs/MIXTURES.md),
  occupancy (it shares one outlier row)      weights summing to 1, counted
                                             in em_n_reseeded

A class of identical rows is singular only with both floors off
(--reg-covar 0 --rel-floor 0): the default relative floor, like reg_covar,
makes it a defined fit.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import em_lib  # noqa: E402

T = em_lib.Suite(needs=("numpy",))
np = em_lib.np

x, _, centres = em_lib.mixture_data(seed=3, n=600, d=4, k=2)
np.save("x.npy", x)
w0, m0, c0 = em_lib.start_params(1, x, centres, "full")
em_lib.save_init("init.npz", w0, m0, c0, "full")
T.gmle_ok("a good fit first", "fit", "x.npy", "--components", 2,
          "--init-model", "init.npz", "--max-iter", 2, "-o", "good.npz", "-q")

T.expect_fail(1, "K = 0", ["--components"], "out.npz", "fit", "x.npy",
              "--components", 0, "-o", "out.npz")

# Two classes, 'rare' with 3 rows: K = 4 is above its row count.
with open("y_rare.txt", "w") as f:
    f.write("".join("rare\n" if i < 3 else "common\n" for i in range(600)))
T.expect_fail(2, "K above a class's row count", ["rare"], "out.npz", "fit",
              "x.npy", "--labels", "y_rare.txt", "--components", 4, "-o",
              "out.npz")
T.expect_fail(2, "K above the row count (no labels)", ["601"],
              "out.npz", "fit", "x.npy", "--components", 601, "-o",
              "out.npz")

# Class 'flat': 100 copies of one row.
flat = x.copy()
flat[:100] = x[0]
np.save("flat.npy", flat)
with open("y_flat.txt", "w") as f:
    f.write("".join("flat\n" if i < 100 else "varied\n" for i in range(600)))
T.expect_fail(2, "a class whose rows are all identical, --reg-covar 0",
              ["flat", "constant"], "out.npz", "fit", "flat.npy", "--labels",
              "y_flat.txt", "--components", 2, "--reg-covar", 0,
              "--rel-floor", 0, "-o", "out.npz")
rc, _, err = T.run("fit", "flat.npy", "--labels", "y_flat.txt",
                   "--components", 2, "-o", "flat.npz", "-q")
if rc == 0:
    m = em_lib.load("flat.npz")
    T.check(all(np.all(np.isfinite(m[k])) for k in
                ("weights", "means", "covariances")),
            "identical rows with the default reg_covar: a finite model")
else:
    T.check(rc == 2 and "flat" in err and not os.path.exists("flat.npz"),
            "identical rows with the default reg_covar: exit %d, %s" %
            (rc, err.strip()))

bad = x.copy()
bad[517, 2] = np.nan
np.save("nan.npy", bad)
T.expect_fail(2, "NaN row", ["row 517"], "out.npz", "fit", "nan.npy",
              "--components", 2, "-o", "out.npz")
T.expect_fail(2, "NaN row in a later batch", ["row 517"], "out.npz", "fit",
              "nan.npy", "--components", 2, "--batch-rows", 100, "-o",
              "out.npz")
T.expect_fail(2, "NaN row, warm start", ["row 517"], "out.npz", "fit",
              "nan.npy", "--components", 2, "--init-model", "init.npz", "-o",
              "out.npz")

em_lib.save_init("init_d3.npz", w0, m0[:, :3], c0[:, :3, :3], "full")
T.expect_fail(2, "an init model of another dimension", ["init_d3.npz", "3"],
              "out.npz", "fit", "x.npy", "--components", 2, "--init-model",
              "init_d3.npz", "-o", "out.npz")
em_lib.save_init("init_diag.npz", w0, m0, em_lib.as_type(c0, "diag"), "diag")
T.expect_fail(2, "an init model of another covariance type",
              ["init_diag.npz", "diag"], "out.npz", "fit", "x.npy",
              "--components", 2, "--cov", "full", "--init-model",
              "init_diag.npz", "-o", "out.npz")
T.expect_fail(2, "an init model of another K", ["init.npz", "3"], "out.npz",
              "fit", "x.npy", "--components", 3, "--init-model", "init.npz",
              "-o", "out.npz")
em_lib.save_init("init_sum.npz", w0 * 0.9, m0, c0, "full")
T.expect_fail(3, "init weights summing to 0.9", ["init_sum.npz", "sum"],
              "out.npz", "fit", "x.npy", "--components", 2, "--init-model",
              "init_sum.npz", "-o", "out.npz")

# Collapsing component: one outlier row 12 standard deviations from
# component 0's mean along feature 1, component 2 its mirror image with the
# same covariance, so the outlier is shared half and half and component 2
# gets 0.5 rows of occupancy (the other rows are ~0): below one row, it is
# re-seeded.
outlier = m0[0] + 12.0 * np.sqrt(c0[1][1, 1]) * np.eye(4)[1]
np.save("outlier.npy", np.vstack([x, outlier]))
for cov_type in ("full", "diag"):
    cov = np.stack([c0[1]] * 3)
    em_lib.save_init("init_collapse_%s.npz" % cov_type, np.full(3, 1.0 / 3),
                     np.vstack([m0, 2.0 * outlier - m0[0]]),
                     em_lib.as_type(cov, cov_type), cov_type)
    name = "a component of half a row (%s)" % cov_type
    if T.gmle_ok(name, "fit", "outlier.npy", "--components", 3, "--cov",
                 cov_type, "--init-model", "init_collapse_%s.npz" % cov_type,
                 "--max-iter", 3, "--tol", 0, "-o", "collapse.npz", "-q"):
        m = em_lib.load("collapse.npz")
        T.check(abs(m["weights"].sum() - 1.0) < 1e-12 and all(
            np.all(np.isfinite(m[k]))
            for k in ("weights", "means", "covariances")),
                "%s: finite, weights sum to 1 - %.3g" %
                (name, 1.0 - m["weights"].sum()))
        T.check(int(m.get("em_n_reseeded", 0)) >= 1,
                "%s: re-seeded (em_n_reseeded %s)" %
                (name, m.get("em_n_reseeded")))
T.finish()
