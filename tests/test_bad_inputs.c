/* test_bad_inputs.c -- one test per core case of shared/BAD_INPUTS.md
 * (cases 1-17 and 19-21; 18 and 22-30 belong to the backend, file and
 * parser suites). "State unchanged" is checked two ways: the internal
 * accumulators are compared bit for bit with a clone taken before the call
 * (tu_stats_raw_equal), and everything observable (rows, weights, means, a
 * default fit) is compared bit for bit (tu_snapshot). */
#include "check.h"
#include "testutil.h"

#include "gmle.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG2PI 1.8378770664093454835606594728112353

static gmle_fit_options no_reg(gmle_cov_type cov) {
  gmle_fit_options o;
  gmle_fit_options_init(&o);
  o.cov = cov;
  o.rel_floor = 0.0;
  o.abs_floor = 0.0;
  return o;
}

/* A statistics object with some good data, and a snapshot of it. */
typedef struct guarded {
  gmle_context *ctx;
  gmle_stats *st, *before;
  tu_snapshot snap;
} guarded;

static int guarded_open(guarded *g, size_t d, size_t c, size_t n_good) {
  memset(g, 0, sizeof *g);
  g->ctx = tu_context();
  if (!g->ctx || gmle_stats_create(g->ctx, d, c, &g->st) != GMLE_OK)
    return -1;
  if (n_good) {
    tu_dataset ds;
    if (tu_dataset_make(&ds, 77 + d + c, n_good, d, c, GMLE_F64, d, 1.0, 0))
      return -1;
    gmle_status s = tu_dataset_add(g->st, &ds, 0, ds.n);
    tu_dataset_free(&ds);
    if (s != GMLE_OK)
      return -1;
  }
  if (gmle_stats_clone(g->st, &g->before) != GMLE_OK)
    return -1;
  return tu_snapshot_take(g->st, &g->snap);
}

/* 1 when st is bit-identical to what it was at guarded_open. */
static int guarded_unchanged(const guarded *g) {
  tu_snapshot now;
  if (tu_snapshot_take(g->st, &now) != 0)
    return 0;
  int same =
      tu_snapshot_equal(&g->snap, &now) && tu_stats_raw_equal(g->st, g->before);
  tu_snapshot_free(&now);
  return same;
}

static void guarded_close(guarded *g) {
  tu_snapshot_free(&g->snap);
  gmle_stats_free(g->st);
  gmle_stats_free(g->before);
  gmle_context_free(g->ctx);
  memset(g, 0, sizeof *g);
}

/* Case 1 ------------------------------------------------------------------ */

TEST(badinput_01_nan_f32_names_batch_row_and_col_state_unchanged) {
  for (int with_data = 0; with_data < 2; with_data++) {
    guarded g;
    if (guarded_open(&g, 5, 1, with_data ? 100 : 0) != 0) {
      CHECK(!"setup");
      guarded_close(&g);
      return;
    }
    float x[50 * 5];
    tu_rng r;
    tu_seed(&r, 1);
    tu_gen_offset(&r, 50, 5, 0.0, 1.0, GMLE_F32, 5, x);
    x[17 * 5 + 3] = NAN;
    CHECK_STATUS(gmle_stats_add(g.st, x, GMLE_F32, 50, 5, NULL, NULL),
                 GMLE_E_NONFINITE_INPUT);
    CHECK_ERROR_HAS(g.ctx, "row 17");
    CHECK_ERROR_HAS(g.ctx, "col 3");
    CHECK_ERROR_HAS(g.ctx, "NaN");
    CHECK_ERROR_HAS(g.ctx, with_data ? "batch 1" : "batch 0");
    CHECK(guarded_unchanged(&g));
    /* float64 too */
    double xd[50 * 5];
    for (int i = 0; i < 250; i++)
      xd[i] = x[i];
    CHECK_STATUS(gmle_stats_add(g.st, xd, GMLE_F64, 50, 5, NULL, NULL),
                 GMLE_E_NONFINITE_INPUT);
    CHECK_ERROR_HAS(g.ctx, "row 17");
    CHECK_ERROR_HAS(g.ctx, "col 3");
    CHECK(guarded_unchanged(&g));
    guarded_close(&g);
  }
}

/* Case 2 ------------------------------------------------------------------ */

TEST(badinput_02_inf_rejected_and_1e200_overflow_state_unchanged) {
  guarded g;
  if (guarded_open(&g, 3, 1, 200) != 0) {
    CHECK(!"setup");
    guarded_close(&g);
    return;
  }
  double x[40 * 3];
  float xf[40 * 3];
  tu_rng r;
  tu_seed(&r, 2);
  tu_gen_offset(&r, 40, 3, 1.0, 1.0, GMLE_F64, 3, x);
  for (int i = 0; i < 120; i++)
    xf[i] = (float)x[i];
  x[9 * 3 + 2] = INFINITY;
  CHECK_STATUS(gmle_stats_add(g.st, x, GMLE_F64, 40, 3, NULL, NULL),
               GMLE_E_NONFINITE_INPUT);
  CHECK_ERROR_HAS(g.ctx, "row 9");
  CHECK_ERROR_HAS(g.ctx, "col 2");
  CHECK(guarded_unchanged(&g));
  xf[39 * 3] = -INFINITY;
  CHECK_STATUS(gmle_stats_add(g.st, xf, GMLE_F32, 40, 3, NULL, NULL),
               GMLE_E_NONFINITE_INPUT);
  CHECK_ERROR_HAS(g.ctx, "row 39");
  CHECK_ERROR_HAS(g.ctx, "col 0");
  CHECK(guarded_unchanged(&g));
  /* a finite 1e200 whose square overflows float64 */
  x[9 * 3 + 2] = 1.0;
  x[5 * 3 + 1] = 1e200;
  CHECK_STATUS(gmle_stats_add(g.st, x, GMLE_F64, 40, 3, NULL, NULL),
               GMLE_E_OVERFLOW);
  CHECK(gmle_context_error(g.ctx)[0] != '\0');
  CHECK(guarded_unchanged(&g));
  x[5 * 3 + 1] = -1e200;
  CHECK_STATUS(gmle_stats_add(g.st, x, GMLE_F64, 40, 3, NULL, NULL),
               GMLE_E_OVERFLOW);
  CHECK(guarded_unchanged(&g));
  /* on a fresh object too (the shift must not hide the overflow) */
  gmle_stats *fresh = NULL, *f0 = NULL;
  CHECK_STATUS(gmle_stats_create(g.ctx, 3, 1, &fresh), GMLE_OK);
  CHECK_STATUS(gmle_stats_create(g.ctx, 3, 1, &f0), GMLE_OK);
  if (fresh && f0) {
    x[5 * 3 + 1] = 1e200;
    CHECK_STATUS(gmle_stats_add(fresh, x, GMLE_F64, 40, 3, NULL, NULL),
                 GMLE_E_OVERFLOW);
    CHECK(tu_stats_raw_equal(fresh, f0));
  }
  gmle_stats_free(fresh);
  gmle_stats_free(f0);
  guarded_close(&g);
}

/* Case 3 ------------------------------------------------------------------ */

TEST(badinput_03_empty_batch_is_a_successful_noop) {
  for (int with_data = 0; with_data < 2; with_data++) {
    guarded g;
    if (guarded_open(&g, 4, 2, with_data ? 50 : 0) != 0) {
      CHECK(!"setup");
      guarded_close(&g);
      return;
    }
    double x[4] = {1, 2, 3, 4};
    int32_t lab[1] = {0};
    double w[1] = {1.0};
    CHECK_STATUS(gmle_stats_add(g.st, x, GMLE_F64, 0, 4, lab, NULL), GMLE_OK);
    CHECK_STATUS(gmle_stats_add(g.st, x, GMLE_F32, 0, 4, lab, w), GMLE_OK);
    CHECK_STATUS(gmle_stats_add_checked(g.st, x, GMLE_F64, 0, 4, 4, lab, NULL),
                 GMLE_OK);
    CHECK(guarded_unchanged(&g));
    guarded_close(&g);
  }
}

/* Case 4 ------------------------------------------------------------------ */

TEST(badinput_04_zero_features_invalid_arg) {
  gmle_context *ctx = tu_context();
  CHECK(ctx != NULL);
  if (!ctx)
    return;
  gmle_stats *st = NULL;
  CHECK_STATUS(gmle_stats_create(ctx, 0, 1, &st), GMLE_E_INVALID_ARG);
  CHECK_ERROR_HAS(ctx, "0 features");
  CHECK(st == NULL);
  gmle_stats_free(st);
  gmle_context_free(ctx);
}

TEST(badinput_04_size_overflow_rejected_before_any_allocation) {
  guarded g;
  if (guarded_open(&g, 8, 1, 20) != 0) {
    CHECK(!"setup");
    guarded_close(&g);
    return;
  }
  /* a small real buffer: nothing may be read from it */
  float dummy[8] = {0};
  double dummyd[8] = {0};
  const size_t huge = (size_t)1 << 62;
  gmle__test_fail_alloc_after(1000000); /* counts allocations, fails none */
  gmle_status s = gmle_stats_add(g.st, dummy, GMLE_F32, huge, 8, NULL, NULL);
  long allocs = gmle__test_alloc_count();
  gmle__test_fail_alloc_after(0);
  CHECK_MSG(s == GMLE_E_TOO_LARGE || s == GMLE_E_INVALID_ARG,
            "N = 2^62, D = 8, f32: %s", gmle_status_name(s));
  CHECK_ERROR_HAS(g.ctx, "overflow");
  CHECK_MSG(allocs == 0, "%ld allocations before the size check", allocs);
  CHECK(guarded_unchanged(&g));
  s = gmle_stats_add(g.st, dummyd, GMLE_F64, huge / 8, 8, NULL, NULL);
  CHECK_MSG(s == GMLE_E_TOO_LARGE || s == GMLE_E_INVALID_ARG,
            "N = 2^59, D = 8, f64: %s", gmle_status_name(s));
  s = gmle_stats_add_checked(g.st, dummy, GMLE_F32, huge, 8, 8, NULL, NULL);
  CHECK_MSG(s == GMLE_E_TOO_LARGE || s == GMLE_E_INVALID_ARG,
            "checked, N = 2^62: %s", gmle_status_name(s));
  CHECK(guarded_unchanged(&g));
  guarded_close(&g);
}

TEST(badinput_04_score_size_overflow_rejected) {
  gmle_context *ctx = tu_context();
  CHECK(ctx != NULL);
  if (!ctx)
    return;
  double mu[8] = {0}, cv[8] = {1, 1, 1, 1, 1, 1, 1, 1};
  gmle_model *m = NULL;
  CHECK_STATUS(
      gmle_model_create(ctx, 8, 1, GMLE_COV_DIAG, mu, cv, NULL, NULL, &m),
      GMLE_OK);
  if (m) {
    float dummy[8] = {0};
    double out[8];
    gmle_status s = gmle_score(ctx, m, dummy, GMLE_F32, (size_t)1 << 62, 8,
                               GMLE_OUT_LOGLIK, GMLE_F64, out);
    CHECK_MSG(s == GMLE_E_TOO_LARGE || s == GMLE_E_INVALID_ARG, "score: %s",
              gmle_status_name(s));
  }
  gmle_model_free(m);
  gmle_context_free(ctx);
}

/* Case 5 ------------------------------------------------------------------ */

TEST(badinput_05_feature_count_change_13_to_14_dim_mismatch) {
  guarded g;
  if (guarded_open(&g, 13, 1, 0) != 0) {
    CHECK(!"setup");
    guarded_close(&g);
    return;
  }
  double x[14 * 4];
  tu_rng r;
  tu_seed(&r, 5);
  tu_gen_offset(&r, 4, 14, 0.0, 1.0, GMLE_F64, 14, x);
  CHECK_STATUS(gmle_stats_add_checked(g.st, x, GMLE_F64, 4, 13, 13, NULL, NULL),
               GMLE_OK);
  gmle_stats_free(g.before);
  g.before = NULL;
  tu_snapshot_free(&g.snap);
  CHECK_STATUS(gmle_stats_clone(g.st, &g.before), GMLE_OK);
  CHECK(tu_snapshot_take(g.st, &g.snap) == 0);
  CHECK_STATUS(gmle_stats_add_checked(g.st, x, GMLE_F64, 4, 14, 14, NULL, NULL),
               GMLE_E_DIM_MISMATCH);
  CHECK_ERROR_HAS(g.ctx, "Number of features 14 does not match previous "
                         "data 13");
  CHECK(g.before && guarded_unchanged(&g));
  guarded_close(&g);
}

/* Case 6 ------------------------------------------------------------------ */

TEST(badinput_06_label_out_of_range_or_negative_names_label_and_row) {
  guarded g;
  if (guarded_open(&g, 2, 3, 60) != 0) {
    CHECK(!"setup");
    guarded_close(&g);
    return;
  }
  double x[20 * 2];
  int32_t lab[20];
  tu_rng r;
  tu_seed(&r, 6);
  tu_gen_offset(&r, 20, 2, 0.0, 1.0, GMLE_F64, 2, x);
  tu_labels_cyclic(20, 3, lab);
  lab[9] = 7;
  CHECK_STATUS(gmle_stats_add(g.st, x, GMLE_F64, 20, 2, lab, NULL),
               GMLE_E_BAD_LABEL);
  CHECK_ERROR_HAS(g.ctx, "row 9");
  CHECK_ERROR_HAS(g.ctx, "label 7");
  CHECK(guarded_unchanged(&g));
  lab[9] = 3; /* == n_classes */
  CHECK_STATUS(gmle_stats_add(g.st, x, GMLE_F64, 20, 2, lab, NULL),
               GMLE_E_BAD_LABEL);
  CHECK_ERROR_HAS(g.ctx, "label 3");
  lab[9] = 0;
  lab[4] = -1;
  CHECK_STATUS(gmle_stats_add(g.st, x, GMLE_F64, 20, 2, lab, NULL),
               GMLE_E_BAD_LABEL);
  CHECK_ERROR_HAS(g.ctx, "row 4");
  CHECK_ERROR_HAS(g.ctx, "label -1");
  CHECK(guarded_unchanged(&g));
  guarded_close(&g);
}

/* Case 7 ------------------------------------------------------------------ */

TEST(badinput_07_empty_class_prior_zero_scores_minus_inf_never_nan) {
  gmle_context *ctx = tu_context();
  tu_dataset ds;
  CHECK(ctx != NULL);
  if (!ctx || tu_dataset_make(&ds, 7, 3000, 3, 2, GMLE_F64, 3, 0.0, 0)) {
    CHECK(!"setup");
    gmle_context_free(ctx);
    return;
  }
  tu_log log;
  tu_log_attach(ctx, &log);
  /* labels 0, 1 become 0, 2: class 1 of three never seen */
  int32_t *lab3 = malloc(ds.n * sizeof *lab3);
  for (size_t i = 0; lab3 && i < ds.n; i++)
    lab3[i] = ds.labels[i] == 1 ? 2 : 0;
  gmle_stats *st = NULL;
  gmle_model *m = NULL;
  CHECK_STATUS(gmle_stats_create(ctx, 3, 3, &st), GMLE_OK);
  if (st && lab3) {
    CHECK_STATUS(gmle_stats_add(st, ds.x, GMLE_F64, ds.n, 3, lab3, NULL),
                 GMLE_OK);
    CHECK_STATUS(gmle_fit(st, NULL, &m), GMLE_OK);
  }
  if (m) {
    gmle_class_report rep;
    CHECK_STATUS(gmle_model_report(m, 1, &rep), GMLE_OK);
    CHECK(rep.empty == 1);
    CHECK(rep.rows == 0);
    double p = -1;
    CHECK_STATUS(gmle_model_prior(m, 1, &p), GMLE_OK);
    CHECK(p == 0.0);
    CHECK_MSG(log.warnings >= 1 && tu_log_has(&log, "class 1"),
              "no warning naming class 1: \"%s\"", log.text);
    /* the other classes are the exact MLE of their rows */
    tu_ref ref;
    CHECK(tu_ref_dataset(&ref, &ds) == 0);
    long double tot = ref.weight[0] + ref.weight[1];
    for (size_t k = 0; k < 2; k++) {
      size_t mk = k == 0 ? 0 : 2;
      double a[9], b[9];
      CHECK_STATUS(gmle_model_mean(m, mk, a), GMLE_OK);
      tu_ref_mean(&ref, k, b);
      CHECK(tu_max_rel_err(a, b, NULL, 3) <= 1e-12 ||
            tu_rel_frobenius(a, b, 3) <= 1e-12);
      CHECK_STATUS(gmle_model_covariance(m, mk, a), GMLE_OK);
      tu_ref_cov(&ref, GMLE_COV_FULL, k, b);
      CHECK(tu_rel_frobenius(a, b, 9) <= 1e-12);
      CHECK_STATUS(gmle_model_prior(m, mk, &p), GMLE_OK);
      CHECK_REL(p, (double)(ref.weight[k] / tot), 1e-12);
    }
    tu_ref_free(&ref);
    /* scoring: the empty class is -inf, never NaN; others finite */
    const size_t nt = 50;
    double out[50 * 3], dens[50];
    int32_t lbl[50];
    const gmle_output what[3] = {GMLE_OUT_LOGLIK, GMLE_OUT_JOINT,
                                 GMLE_OUT_LOGPOST};
    for (int w = 0; w < 3; w++) {
      CHECK_STATUS(
          gmle_score(ctx, m, ds.x, GMLE_F64, nt, 3, what[w], GMLE_F64, out),
          GMLE_OK);
      int bad = 0;
      for (size_t i = 0; i < nt; i++) {
        bad += !(isinf(out[i * 3 + 1]) && out[i * 3 + 1] < 0);
        bad += !isfinite(out[i * 3 + 0]) || !isfinite(out[i * 3 + 2]);
      }
      CHECK_MSG(bad == 0, "output %d: %d values wrong", (int)what[w], bad);
    }
    for (size_t i = 0; i < nt; i++) /* posteriors over the rest sum to 1 */
      CHECK_CLOSE(exp(out[i * 3]) + exp(out[i * 3 + 2]), 1.0, 1e-12);
    CHECK_STATUS(gmle_score(ctx, m, ds.x, GMLE_F64, nt, 3, GMLE_OUT_LABEL,
                            GMLE_F64, lbl),
                 GMLE_OK);
    CHECK_STATUS(gmle_score(ctx, m, ds.x, GMLE_F64, nt, 3, GMLE_OUT_DENSITY,
                            GMLE_F64, dens),
                 GMLE_OK);
    for (size_t i = 0; i < nt; i++) {
      CHECK(lbl[i] == 0 || lbl[i] == 2);
      CHECK(isfinite(dens[i]));
    }
  }
  /* allow_empty = 0 makes it an error naming the class */
  if (st) {
    gmle_fit_options o;
    gmle_fit_options_init(&o);
    o.allow_empty = 0;
    gmle_model *m2 = NULL;
    CHECK_STATUS(gmle_fit(st, &o, &m2), GMLE_E_EMPTY);
    CHECK_ERROR_HAS(ctx, "class 1");
    gmle_model_free(m2);
  }
  gmle_model_free(m);
  gmle_stats_free(st);
  free(lab3);
  tu_dataset_free(&ds);
  gmle_context_free(ctx);
}

/* Case 8 ------------------------------------------------------------------ */

TEST(badinput_08_one_sample_class_full_cov_ill_defined_unless_floored) {
  gmle_context *ctx = tu_context();
  tu_dataset ds;
  CHECK(ctx != NULL);
  if (!ctx || tu_dataset_make(&ds, 8, 2000, 3, 4, GMLE_F64, 3, 0.0, 0)) {
    CHECK(!"setup");
    gmle_context_free(ctx);
    return;
  }
  tu_log log;
  tu_log_attach(ctx, &log);
  gmle_stats *st = NULL;
  CHECK_STATUS(gmle_stats_create(ctx, 3, 5, &st), GMLE_OK);
  const double one[3] = {0.5, -2.0, 3.25};
  int32_t four = 4;
  if (st) {
    CHECK_STATUS(tu_dataset_add(st, &ds, 0, ds.n), GMLE_OK);
    CHECK_STATUS(gmle_stats_add(st, one, GMLE_F64, 1, 3, &four, NULL), GMLE_OK);
    gmle_fit_options o = no_reg(GMLE_COV_FULL);
    gmle_model *m = NULL;
    CHECK_STATUS(gmle_fit(st, &o, &m), GMLE_E_ILL_DEFINED_COV);
    CHECK_ERROR_HAS(ctx, "class 4");
    CHECK_ERROR_HAS(ctx, "1 sample");
    CHECK(m == NULL);
    gmle_model_free(m);
    m = NULL;
    /* an absolute floor defines it: Sigma = floor I, mean = the row */
    o.abs_floor = 1e-3;
    CHECK_STATUS(gmle_fit(st, &o, &m), GMLE_OK);
    if (m) {
      double s[9], mu[3];
      CHECK_STATUS(gmle_model_covariance(m, 4, s), GMLE_OK);
      for (int i = 0; i < 9; i++)
        CHECK_CLOSE(s[i], i % 4 == 0 ? 1e-3 : 0.0, 1e-15);
      CHECK_STATUS(gmle_model_mean(m, 4, mu), GMLE_OK);
      for (int j = 0; j < 3; j++)
        CHECK_CLOSE(mu[j], one[j], 1e-15);
    }
    gmle_model_free(m);
    m = NULL;
    /* the default relative floor defines it too, with a warning: Sigma =
     * 1e-9 x diag(each feature's largest per-class variance) */
    memset(&log, 0, sizeof log);
    CHECK_STATUS(gmle_fit(st, NULL, &m), GMLE_OK);
    if (m) {
      tu_ref ref;
      long double mv[3] = {0.0L, 0.0L, 0.0L};
      if (tu_ref_dataset(&ref, &ds) == 0) {
        for (size_t c = 0; c < ref.n_classes; c++)
          for (size_t j = 0; j < 3; j++)
            if (ref.cov[c * 9 + j * 4] > mv[j])
              mv[j] = ref.cov[c * 9 + j * 4];
        tu_ref_free(&ref);
      }
      double s[9];
      CHECK_STATUS(gmle_model_covariance(m, 4, s), GMLE_OK);
      for (int i = 0; i < 9; i++)
        CHECK_CLOSE(s[i], i % 4 == 0 ? (double)(1e-9L * mv[i / 4]) : 0.0,
                    1e-12 * (double)(1e-9L * mv[i / 4]));
      CHECK_MSG(log.warnings >= 1 && tu_log_has(&log, "class 4"),
                "no warning naming class 4: \"%s\"", log.text);
    }
    gmle_model_free(m);
  }
  gmle_stats_free(st);
  tu_dataset_free(&ds);
  gmle_context_free(ctx);
}

/* Case 9 ------------------------------------------------------------------ */

TEST(badinput_09_fewer_rows_than_features_singular_names_class_n_d_remedy) {
  gmle_context *ctx = tu_context();
  CHECK(ctx != NULL);
  if (!ctx)
    return;
  const size_t d = 40, n0 = 500;
  for (size_t nk = 10; nk <= 40; nk += 30) { /* N_k = 10 < D and N_k = D */
    size_t n = n0 + nk;
    double *x = malloc(n * d * sizeof *x);
    int32_t *lab = malloc(n * sizeof *lab);
    gmle_stats *st = NULL;
    if (!x || !lab) {
      CHECK(!"setup");
      free(x);
      free(lab);
      break;
    }
    tu_rng r;
    tu_seed(&r, 9 + nk);
    tu_gen_offset(&r, n, d, 2.0, 1.0, GMLE_F64, d, x);
    for (size_t i = 0; i < n; i++)
      lab[i] = i >= n0;
    CHECK_STATUS(gmle_stats_create(ctx, d, 2, &st), GMLE_OK);
    if (st) {
      CHECK_STATUS(gmle_stats_add(st, x, GMLE_F64, n, d, lab, NULL), GMLE_OK);
      gmle_fit_options o = no_reg(GMLE_COV_FULL);
      gmle_model *m = NULL;
      CHECK_STATUS(gmle_fit(st, &o, &m), GMLE_E_SINGULAR_COV);
      char num[32];
      CHECK_ERROR_HAS(ctx, "class 1");
      snprintf(num, sizeof num, "%zu", nk);
      CHECK_ERROR_HAS(ctx, num);
      CHECK_ERROR_HAS(ctx, "40");
      const char *msg = gmle_context_error(ctx);
      CHECK_MSG(strstr(msg, "floor") || strstr(msg, "shrink") ||
                    strstr(msg, "diag"),
                "no remedy in \"%s\"", msg);
      gmle_model_free(m);
      m = NULL;
      /* reg_covar = 1e-6 (scikit-learn's default): fits, finite log-det */
      o.abs_floor = 1e-6;
      CHECK_STATUS(gmle_fit(st, &o, &m), GMLE_OK);
      if (m) {
        gmle_class_report rep;
        CHECK_STATUS(gmle_model_report(m, 1, &rep), GMLE_OK);
        /* >= the floor, up to the eigensolver's rounding (D eps |S|) */
        CHECK_MSG(rep.min_eigenvalue >=
                      1e-6 - 64.0 * 40 * 2.2e-16 * rep.max_eigenvalue,
                  "min eigenvalue %.17g", rep.min_eigenvalue);
        CHECK(isfinite(rep.condition));
        double ll = 0, sc[2 * 5];
        CHECK_STATUS(gmle_model_loglik(m, 0, &ll), GMLE_OK);
        CHECK(isfinite(ll));
        CHECK_STATUS(gmle_score(ctx, m, x + n0 * d, GMLE_F64, 5, d,
                                GMLE_OUT_LOGLIK, GMLE_F64, sc),
                     GMLE_OK);
        for (int i = 0; i < 10; i++)
          CHECK(isfinite(sc[i]));
        /* the log-determinant the scores use: check one row directly */
        double mu[40], *s = malloc(d * d * sizeof *s);
        if (s) {
          CHECK_STATUS(gmle_model_mean(m, 1, mu), GMLE_OK);
          CHECK_STATUS(gmle_model_covariance(m, 1, s), GMLE_OK);
          long double want = tu_logpdf(d, x + n0 * d, mu, s);
          CHECK_REL(sc[1], (double)want, 1e-8);
        }
        free(s);
      }
      gmle_model_free(m);
    }
    gmle_stats_free(st);
    free(x);
    free(lab);
  }
  gmle_context_free(ctx);
}

/* Case 10 ----------------------------------------------------------------- */

TEST(badinput_10_constant_feature_singular_names_feature_floor_exact) {
  /* one class: the largest per-class variance is the largest variance */
  gmle_context *ctx = tu_context();
  CHECK(ctx != NULL);
  if (!ctx)
    return;
  const size_t n = 1000, d = 4;
  double x[1000 * 4];
  tu_rng r;
  tu_seed(&r, 10);
  tu_gen_offset(&r, n, d, 1.0, 2.0, GMLE_F64, d, x);
  for (size_t i = 0; i < n; i++)
    x[i * d + 2] = 7.5;
  long double mv = tu_max_total_variance(x, GMLE_F64, n, d, d, NULL);
  double floor_v = (double)(1e-9L * mv);
  gmle_stats *st = NULL;
  CHECK_STATUS(gmle_stats_create(ctx, d, 1, &st), GMLE_OK);
  if (st)
    CHECK_STATUS(gmle_stats_add(st, x, GMLE_F64, n, d, NULL, NULL), GMLE_OK);
  for (int t = 0; t < 2 && st; t++) {
    gmle_cov_type cov = t ? GMLE_COV_DIAG : GMLE_COV_FULL;
    gmle_fit_options o = no_reg(cov);
    gmle_model *m = NULL;
    CHECK_STATUS(gmle_fit(st, &o, &m), GMLE_E_SINGULAR_COV);
    CHECK_ERROR_HAS(ctx, "feature 2");
    gmle_model_free(m);
    m = NULL;
    gmle_fit_options_init(&o);
    o.cov = cov;
    CHECK_STATUS(gmle_fit(st, &o, &m), GMLE_OK);
    if (!m)
      continue;
    double s[16];
    CHECK_STATUS(gmle_model_covariance(m, 0, s), GMLE_OK);
    CHECK_MSG(fabs(s[2 * 4 + 2] - floor_v) <= 1e-12 * floor_v,
              "type %d: variance of the constant feature %.17g, floor %.17g", t,
              s[10], floor_v);
    /* scores finite, never NaN, even off the constant value */
    double rows[3 * 4], out[3];
    memcpy(rows, x, sizeof rows);
    rows[1 * 4 + 2] = 7.5 + 1e-3;
    rows[2 * 4 + 2] = -7.5;
    CHECK_STATUS(gmle_score(ctx, m, rows, GMLE_F64, 3, 4, GMLE_OUT_LOGLIK,
                            GMLE_F64, out),
                 GMLE_OK);
    for (int i = 0; i < 3; i++)
      CHECK_MSG(isfinite(out[i]), "row %d: %g", i, out[i]);
    CHECK(out[1] < out[0] && out[2] < out[1]);
    gmle_model_free(m);
  }
  gmle_stats_free(st);
  gmle_context_free(ctx);
}

/* Case 11 ----------------------------------------------------------------- */

TEST(badinput_11_all_features_constant_error_or_floored_never_nan) {
  gmle_context *ctx = tu_context();
  CHECK(ctx != NULL);
  if (!ctx)
    return;
  const size_t n = 100, d = 3;
  double x[100 * 3];
  for (size_t i = 0; i < n; i++) {
    x[i * 3] = 1.0;
    x[i * 3 + 1] = -2.0;
    x[i * 3 + 2] = 1e3;
  }
  gmle_stats *st = NULL;
  CHECK_STATUS(gmle_stats_create(ctx, d, 1, &st), GMLE_OK);
  if (st)
    CHECK_STATUS(gmle_stats_add(st, x, GMLE_F64, n, d, NULL, NULL), GMLE_OK);
  for (int t = 0; t < 2 && st; t++) {
    gmle_cov_type cov = t ? GMLE_COV_DIAG : GMLE_COV_FULL;
    gmle_model *m = NULL;
    gmle_fit_options o;
    gmle_fit_options_init(&o);
    o.cov = cov;
    /* default: the largest variance is 0, so is the relative floor */
    gmle_status s = gmle_fit(st, &o, &m);
    CHECK_MSG(s == GMLE_E_SINGULAR_COV || s == GMLE_E_ILL_DEFINED_COV ||
                  s == GMLE_OK,
              "type %d: %s", t, gmle_status_name(s));
    if (s == GMLE_OK && m) {
      double sc[1];
      CHECK_STATUS(
          gmle_score(ctx, m, x, GMLE_F64, 1, d, GMLE_OUT_LOGLIK, GMLE_F64, sc),
          GMLE_OK);
      CHECK(isfinite(sc[0]));
    }
    gmle_model_free(m);
    m = NULL;
    /* an absolute floor: Sigma = 1e-6 I, finite scores */
    o.abs_floor = 1e-6;
    CHECK_STATUS(gmle_fit(st, &o, &m), GMLE_OK);
    if (m) {
      double sv[9], sc[2], row2[6] = {1.0, -2.0, 1e3, 1.001, -2.0, 1e3};
      CHECK_STATUS(gmle_model_covariance(m, 0, sv), GMLE_OK);
      for (int i = 0; i < 9; i++)
        CHECK_CLOSE(sv[i], i % 4 == 0 ? 1e-6 : 0.0, 1e-18);
      CHECK_STATUS(gmle_score(ctx, m, row2, GMLE_F64, 2, d, GMLE_OUT_LOGLIK,
                              GMLE_F64, sc),
                   GMLE_OK);
      CHECK_REL(sc[0], -1.5 * (LOG2PI + log(1e-6)), 1e-12);
      CHECK_REL(sc[1], -1.5 * (LOG2PI + log(1e-6)) - 0.5 * 1e-6 / 1e-6, 1e-9);
    }
    gmle_model_free(m);
  }
  gmle_stats_free(st);
  gmle_context_free(ctx);
}

/* Case 12 ----------------------------------------------------------------- */

TEST(badinput_12_collinear_columns_singular_floored_or_condition_bounded) {
  gmle_context *ctx = tu_context();
  CHECK(ctx != NULL);
  if (!ctx)
    return;
  const size_t n = 2000, d = 3;
  double *x = malloc(n * d * sizeof *x);
  if (!x) {
    CHECK(!"setup");
    gmle_context_free(ctx);
    return;
  }
  tu_rng r;
  tu_seed(&r, 12);
  for (size_t i = 0; i < n; i++) {
    x[i * 3] = 3.0 + tu_normal(&r);
    x[i * 3 + 1] = 2.0 * x[i * 3]; /* exact */
    x[i * 3 + 2] = tu_normal(&r);
  }
  gmle_stats *st = NULL;
  CHECK_STATUS(gmle_stats_create(ctx, d, 1, &st), GMLE_OK);
  if (st)
    CHECK_STATUS(gmle_stats_add(st, x, GMLE_F64, n, d, NULL, NULL), GMLE_OK);
  if (st) {
    gmle_fit_options o = no_reg(GMLE_COV_FULL);
    gmle_model *m = NULL;
    gmle_status s = gmle_fit(st, &o, &m);
    CHECK_STATUS(s, GMLE_E_SINGULAR_COV);
    if (s == GMLE_OK && m) {
      gmle_class_report rep;
      gmle_model_report(m, 0, &rep);
      printf("  accepted: condition %.3g, min eigenvalue %.3g\n", rep.condition,
             rep.min_eigenvalue);
    }
    gmle_model_free(m);
    m = NULL;
    o.abs_floor = 1e-6;
    CHECK_STATUS(gmle_fit(st, &o, &m), GMLE_OK);
    if (m) {
      double sc[4];
      CHECK_STATUS(
          gmle_score(ctx, m, x, GMLE_F64, 4, d, GMLE_OUT_LOGLIK, GMLE_F64, sc),
          GMLE_OK);
      for (int i = 0; i < 4; i++)
        CHECK(isfinite(sc[i]));
      gmle_class_report rep;
      CHECK_STATUS(gmle_model_report(m, 0, &rep), GMLE_OK);
      CHECK_MSG(rep.min_eigenvalue >=
                    1e-6 - 64.0 * 3 * 2.2e-16 * rep.max_eigenvalue,
                "min eigenvalue %.17g", rep.min_eigenvalue);
    }
    gmle_model_free(m);
    m = NULL;
    o = no_reg(GMLE_COV_FULL);
    o.max_condition = 1e4;
    CHECK_STATUS(gmle_fit(st, &o, &m), GMLE_OK);
    if (m) {
      double sv[9], mn = 0, mx = 0;
      CHECK_STATUS(gmle_model_covariance(m, 0, sv), GMLE_OK);
      CHECK(tu_sym_eig_minmax(3, sv, &mn, &mx) == 0);
      CHECK_MSG(mx / mn <= 1e4 * (1 + 1e-9), "condition %.17g", mx / mn);
      gmle_class_report rep;
      CHECK_STATUS(gmle_model_report(m, 0, &rep), GMLE_OK);
      CHECK(rep.condition <= 1e4 * (1 + 1e-9));
      CHECK(rep.n_floored >= 1);
      double sc[4];
      CHECK_STATUS(
          gmle_score(ctx, m, x, GMLE_F64, 4, d, GMLE_OUT_LOGLIK, GMLE_F64, sc),
          GMLE_OK);
      for (int i = 0; i < 4; i++)
        CHECK(isfinite(sc[i]));
    }
    gmle_model_free(m);
  }
  gmle_stats_free(st);
  free(x);
  gmle_context_free(ctx);
}

/* Case 13 ----------------------------------------------------------------- */

TEST(badinput_13_nan_covariance_never_reaches_cholesky_unnoticed) {
  gmle_context *ctx = tu_context();
  CHECK(ctx != NULL);
  if (!ctx)
    return;
  const double mu[6] = {0, 0, 0, 1, 1, 1};
  double cv[18] = {1, 0, 0, 0, 1, 0, 0, 0, 1, /* class 0: I */
                   2, 0, 0, 0, 2, 0, 0, 0, 2};
  gmle_model *m = NULL;
  CHECK_STATUS(
      gmle_model_create(ctx, 3, 2, GMLE_COV_FULL, mu, cv, NULL, NULL, &m),
      GMLE_OK);
  gmle_model_free(m);
  /* NaN on the diagonal, NaN only below it (what potrf reads), +Inf */
  const int where[3] = {9 + 4, 9 + 3, 9 + 8};
  const double what[3] = {NAN, NAN, INFINITY};
  for (int k = 0; k < 3; k++) {
    double c2[18];
    memcpy(c2, cv, sizeof c2);
    c2[where[k]] = what[k];
    if (k == 1)
      c2[9 + 1] = NAN; /* keep it symmetric in NaN-ness */
    m = NULL;
    gmle_status s =
        gmle_model_create(ctx, 3, 2, GMLE_COV_FULL, mu, c2, NULL, NULL, &m);
    CHECK_MSG(s == GMLE_E_INVALID_MODEL || s == GMLE_E_NONFINITE_STATS,
              "case %d: %s", k, gmle_status_name(s));
    CHECK_ERROR_HAS(ctx, "class 1");
    CHECK(m == NULL);
    gmle_model_free(m);
  }
  /* fault injection into the statistics themselves */
  tu_dataset ds;
  if (tu_dataset_make(&ds, 13, 500, 3, 2, GMLE_F64, 3, 0.0, 0) == 0) {
    for (int k = 0; k < 3; k++) {
      gmle_stats *st = NULL;
      CHECK_STATUS(gmle_stats_create(ctx, 3, 2, &st), GMLE_OK);
      if (!st)
        break;
      CHECK_STATUS(tu_dataset_add(st, &ds, 0, ds.n), GMLE_OK);
      if (k == 0)
        st->gram[st->gram_len + 4] = NAN; /* class 1, (1,1) */
      else if (k == 1)
        st->sum[3 + 2] = NAN; /* class 1, feature 2 */
      else
        st->gram[st->gram_len + 3] = INFINITY; /* class 1, (1,0) */
      gmle_model *mm = NULL;
      gmle_status s = gmle_fit(st, NULL, &mm);
      CHECK_MSG(s == GMLE_E_NONFINITE_STATS, "injection %d: %s", k,
                gmle_status_name(s));
      CHECK_ERROR_HAS(ctx, "class 1");
      CHECK(mm == NULL);
      gmle_model_free(mm);
      gmle_stats_free(st);
    }
    tu_dataset_free(&ds);
  }
  gmle_context_free(ctx);
}

/* Case 14 ----------------------------------------------------------------- */

TEST(badinput_14_offset_mean_1e4_sd_1_f32_n2e6_d64_accurate) {
  gmle_context *ctx = tu_context();
  CHECK(ctx != NULL);
  const size_t n = tu_rows(2000000, 40000), d = 64;
  float *x = tu_alloc_data(n, d, GMLE_F32);
  gmle_stats *st = NULL;
  if (!ctx || !x) {
    CHECK(!"setup");
    goto done;
  }
  tu_rng r;
  tu_seed(&r, 14);
  tu_gen_offset(&r, n, d, 1e4, 1.0, GMLE_F32, d, x);
  CHECK_STATUS(gmle_stats_create(ctx, d, 1, &st), GMLE_OK);
  for (size_t at = 0; st && at < n; at += n / 4)
    CHECK_STATUS(gmle_stats_add(st, x + at * d, GMLE_F32, n / 4, d, NULL, NULL),
                 GMLE_OK);
  if (st) {
    tu_ref ref;
    CHECK(tu_ref_compute(&ref, x, GMLE_F32, n, d, d, 1, NULL, NULL) == 0);
    gmle_model *m = NULL;
    CHECK_STATUS(gmle_fit(st, NULL, &m), GMLE_OK);
    double *a = malloc(d * d * sizeof *a), *b = malloc(d * d * sizeof *b);
    if (m && a && b) {
      CHECK_STATUS(gmle_model_mean(m, 0, a), GMLE_OK);
      tu_ref_mean(&ref, 0, b);
      double em = tu_max_rel_err(a, b, NULL, d);
      CHECK_STATUS(gmle_model_covariance(m, 0, a), GMLE_OK);
      tu_ref_cov(&ref, GMLE_COV_FULL, 0, b);
      double ec = tu_rel_frobenius(a, b, d * d);
      printf("  mean rel err %.3g, covariance rel Frobenius err %.3g\n", em,
             ec);
      CHECK(em <= 1e-7);
      CHECK(ec <= 1e-5);
      for (size_t j = 0; j < d; j++)
        CHECK_MSG(a[j * d + j] > 0.0, "variance %zu = %g", j, a[j * d + j]);
    }
    free(a);
    free(b);
    gmle_model_free(m);
    tu_ref_free(&ref);
  }
done:
  gmle_stats_free(st);
  free(x);
  gmle_context_free(ctx);
}

/* Case 15 ----------------------------------------------------------------- */

TEST(badinput_15_mean_1e6_sd_0p0316_f32_exact_on_stored_values_warns) {
  gmle_context *ctx = tu_context();
  CHECK(ctx != NULL);
  if (!ctx)
    return;
  tu_log log;
  tu_log_attach(ctx, &log);
  const size_t n = 200000, d = 2;
  float *x = tu_alloc_data(n, d, GMLE_F32);
  gmle_stats *st = NULL;
  gmle_model *m = NULL;
  if (!x) {
    CHECK(!"setup");
    gmle_context_free(ctx);
    return;
  }
  tu_rng r;
  tu_seed(&r, 15);
  tu_gen_offset(&r, n, d, 1e6, 0.0316, GMLE_F32, d, x);
  tu_ref ref;
  CHECK(tu_ref_compute(&ref, x, GMLE_F32, n, d, d, 1, NULL, NULL) == 0);
  CHECK_STATUS(gmle_stats_create(ctx, d, 1, &st), GMLE_OK);
  if (st) {
    CHECK_STATUS(gmle_stats_add(st, x, GMLE_F32, n, d, NULL, NULL), GMLE_OK);
    gmle_fit_options o;
    gmle_fit_options_init(&o);
    o.cov = GMLE_COV_DIAG;
    CHECK_STATUS(gmle_fit(st, &o, &m), GMLE_OK);
  }
  if (m) {
    double s[4];
    CHECK_STATUS(gmle_model_covariance(m, 0, s), GMLE_OK);
    for (size_t j = 0; j < d; j++) {
      double want = (double)ref.cov[j * d + j];
      CHECK_MSG(s[j * d + j] > 0.0, "variance %zu = %g", j, s[j * d + j]);
      CHECK_MSG(fabs(s[j * d + j] - want) <= 1e-6 * want,
                "feature %zu: variance %.10g, of the stored values %.10g", j,
                s[j * d + j], want);
    }
    printf("  stored-value variance %.4g (the generating one was 1e-3)\n",
           (double)ref.cov[0]);
  }
  CHECK_MSG(tu_log_has(&log, "resolution"),
            "no \"resolution\" warning in the log: \"%s\"", log.text);
  CHECK(log.warnings >= 1);
  tu_ref_free(&ref);
  gmle_model_free(m);
  gmle_stats_free(st);
  free(x);
  gmle_context_free(ctx);
}

/* Case 16 ----------------------------------------------------------------- */

TEST(badinput_16_scale_1e_minus20_and_1e15_f32_same_predictions) {
  gmle_context *ctx = tu_context();
  tu_dataset ds, test;
  CHECK(ctx != NULL);
  if (!ctx || tu_dataset_make(&ds, 16, 4000, 3, 3, GMLE_F32, 3, 0.0, 0) ||
      tu_dataset_make(&test, 16, 2000, 3, 3, GMLE_F32, 3, 0.0, 0)) {
    CHECK(!"setup");
    gmle_context_free(ctx);
    return;
  }
  /* new points: the same class centres, fresh noise */
  tu_rng r;
  tu_seed(&r, 1616);
  for (size_t i = 0; i < test.n * 3; i++)
    ((float *)test.x)[i] += (float)(0.5 * tu_normal(&r));
  const double scales[3] = {1.0, 1e-20, 1e15};
  int32_t *pred[3] = {NULL, NULL, NULL};
  double *joint = malloc(test.n * 3 * sizeof *joint);
  double mean0[3] = {0}, cov0[9] = {0};
  for (int s = 0; s < 3; s++) {
    float *xs = malloc(ds.n * 3 * sizeof *xs), *ts = malloc(test.n * 3 * 4);
    pred[s] = malloc(test.n * sizeof *pred[s]);
    gmle_stats *st = NULL;
    gmle_model *m = NULL;
    if (!xs || !ts || !pred[s] || !joint) {
      CHECK(!"setup");
      free(xs);
      free(ts);
      continue;
    }
    for (size_t i = 0; i < ds.n * 3; i++)
      xs[i] = (float)(((float *)ds.x)[i] * scales[s]);
    for (size_t i = 0; i < test.n * 3; i++)
      ts[i] = (float)(((float *)test.x)[i] * scales[s]);
    CHECK_STATUS(gmle_stats_create(ctx, 3, 3, &st), GMLE_OK);
    if (st) {
      CHECK_STATUS(gmle_stats_add(st, xs, GMLE_F32, ds.n, 3, ds.labels, NULL),
                   GMLE_OK);
      CHECK_STATUS(gmle_fit(st, NULL, &m), GMLE_OK);
    }
    if (m) {
      CHECK_STATUS(gmle_score(ctx, m, ts, GMLE_F32, test.n, 3, GMLE_OUT_LABEL,
                              GMLE_F64, pred[s]),
                   GMLE_OK);
      double mu[3], cv[9];
      CHECK_STATUS(gmle_model_mean(m, 0, mu), GMLE_OK);
      CHECK_STATUS(gmle_model_covariance(m, 0, cv), GMLE_OK);
      for (int j = 0; j < 9; j++) {
        if (j < 3) {
          double v = mu[j] / scales[s];
          if (s == 0)
            mean0[j] = v;
          else
            CHECK_MSG(fabs(v - mean0[j]) <= 1e-5 * (fabs(mean0[j]) + 1.0),
                      "scale %g: mean %d %.9g vs %.9g", scales[s], j, v,
                      mean0[j]);
        }
        double v = cv[j] / scales[s] / scales[s];
        CHECK_MSG(isfinite(v) && (j % 4 != 0 || v > 0.0),
                  "scale %g: covariance %d = %g", scales[s], j, cv[j]);
        if (s == 0)
          cov0[j] = v;
        else
          CHECK_MSG(fabs(v - cov0[j]) <= 1e-5 * fabs(cov0[0]),
                    "scale %g: covariance %d %.9g vs %.9g", scales[s], j, v,
                    cov0[j]);
      }
      if (s == 0)
        CHECK_STATUS(gmle_score(ctx, m, ts, GMLE_F32, test.n, 3, GMLE_OUT_JOINT,
                                GMLE_F64, joint),
                     GMLE_OK);
    }
    gmle_model_free(m);
    gmle_stats_free(st);
    free(xs);
    free(ts);
  }
  /* identical predictions, except rows whose top two classes are within
   * 1e-3 nats (rounding the scaled data to float32 may move those) */
  for (int s = 1; s < 3 && pred[0] && pred[s] && joint; s++) {
    size_t diff = 0;
    for (size_t i = 0; i < test.n; i++) {
      double *jr = joint + i * 3, top = -INFINITY, second = -INFINITY;
      for (int k = 0; k < 3; k++) {
        if (jr[k] > top) {
          second = top;
          top = jr[k];
        } else if (jr[k] > second) {
          second = jr[k];
        }
      }
      if (top - second > 1e-3 && pred[s][i] != pred[0][i])
        diff++;
    }
    CHECK_MSG(diff == 0, "scale %g: %zu predictions differ", scales[s], diff);
  }
  for (int s = 0; s < 3; s++)
    free(pred[s]);
  free(joint);
  tu_dataset_free(&ds);
  tu_dataset_free(&test);
  gmle_context_free(ctx);
}

/* Case 17 ----------------------------------------------------------------- */

static void rechunk_case(gmle_dtype dtype, double tol_mean, double tol_cov) {
  gmle_context *ctx = tu_context();
  tu_dataset ds;
  CHECK(ctx != NULL);
  if (!ctx || tu_dataset_make(&ds, 17, 5000, 3, 2, dtype, 3,
                              dtype == GMLE_F32 ? 1e3 : 10.0, 1)) {
    CHECK(!"setup");
    gmle_context_free(ctx);
    return;
  }
  tu_ref ref;
  CHECK(tu_ref_dataset(&ref, &ds) == 0);
  static const size_t sizes[6] = {1, 11, 20, 37, 4096, 0};
  tu_rng r;
  tu_seed(&r, 1717);
  for (int v = 0; v < 6; v++) {
    gmle_stats *st = NULL, *merged = NULL;
    CHECK_STATUS(gmle_stats_create(ctx, 3, 2, &st), GMLE_OK);
    CHECK_STATUS(gmle_stats_create(ctx, 3, 2, &merged), GMLE_OK);
    for (size_t at = 0; st && merged && at < ds.n;) {
      size_t k = sizes[v] ? sizes[v] : 1 + tu_below(&r, 900); /* ragged */
      if (k > ds.n - at)
        k = ds.n - at;
      CHECK_STATUS(tu_dataset_add(st, &ds, at, k), GMLE_OK);
      gmle_stats *part = NULL; /* the same chunk as separate statistics */
      CHECK_STATUS(gmle_stats_create(ctx, 3, 2, &part), GMLE_OK);
      if (part) {
        CHECK_STATUS(tu_dataset_add(part, &ds, at, k), GMLE_OK);
        CHECK_STATUS(gmle_stats_merge(merged, part), GMLE_OK);
      }
      gmle_stats_free(part);
      at += k;
    }
    gmle_stats *both[2] = {st, merged};
    for (int b = 0; b < 2 && st && merged; b++) {
      gmle_fit_options o = no_reg(GMLE_COV_FULL);
      gmle_model *m = NULL;
      CHECK_STATUS(gmle_fit(both[b], &o, &m), GMLE_OK);
      for (size_t k = 0; k < 2 && m; k++) {
        double a[9], rb[9];
        CHECK_STATUS(gmle_model_mean(m, k, a), GMLE_OK);
        tu_ref_mean(&ref, k, rb);
        double em = tu_max_rel_err(a, rb, NULL, 3);
        CHECK_STATUS(gmle_model_covariance(m, k, a), GMLE_OK);
        tu_ref_cov(&ref, GMLE_COV_FULL, k, rb);
        double ec = tu_rel_frobenius(a, rb, 9);
        CHECK_MSG(em <= tol_mean && ec <= tol_cov,
                  "chunks %zu (%s), class %zu: mean %.3g cov %.3g", sizes[v],
                  b ? "merged" : "added", k, em, ec);
      }
      gmle_model_free(m);
    }
    gmle_stats_free(st);
    gmle_stats_free(merged);
  }
  tu_ref_free(&ref);
  tu_dataset_free(&ds);
  gmle_context_free(ctx);
}

TEST(badinput_17_rechunkings_and_merges_equal_single_pass_f64) {
  rechunk_case(GMLE_F64, 1e-12, 1e-12);
}

TEST(badinput_17_rechunkings_and_merges_equal_single_pass_f32) {
  rechunk_case(GMLE_F32, 1e-7, 1e-6);
}

/* Case 19 ----------------------------------------------------------------- */

TEST(badinput_19_weights_equal_repeats_zero_removes_invalid_rejected) {
  gmle_context *ctx = tu_context();
  CHECK(ctx != NULL);
  if (!ctx)
    return;
  /* rows a, b, c, d with weights 2, 0, 1, 3 == rows a, a, c, d, d, d */
  const double x[4 * 2] = {0.5, 1.0, 9.0, -9.0, 2.0, 0.25, -1.0, 3.0};
  const double w[4] = {2, 0, 1, 3};
  const double rep[6 * 2] = {0.5,  1.0, 0.5,  1.0, 2.0,  0.25,
                             -1.0, 3.0, -1.0, 3.0, -1.0, 3.0};
  gmle_stats *sw = NULL, *sr = NULL;
  CHECK_STATUS(gmle_stats_create(ctx, 2, 1, &sw), GMLE_OK);
  CHECK_STATUS(gmle_stats_create(ctx, 2, 1, &sr), GMLE_OK);
  if (sw && sr) {
    CHECK_STATUS(gmle_stats_add(sw, x, GMLE_F64, 4, 2, NULL, w), GMLE_OK);
    CHECK_STATUS(gmle_stats_add(sr, rep, GMLE_F64, 6, 2, NULL, NULL), GMLE_OK);
    tu_ref ref;
    CHECK(tu_ref_compute(&ref, rep, GMLE_F64, 6, 2, 2, 1, NULL, NULL) == 0);
    gmle_fit_options o = no_reg(GMLE_COV_FULL);
    gmle_model *mw = NULL, *mr = NULL;
    CHECK_STATUS(gmle_fit(sw, &o, &mw), GMLE_OK);
    CHECK_STATUS(gmle_fit(sr, &o, &mr), GMLE_OK);
    double a[4], b[4], rf[4];
    if (mw && mr) {
      CHECK_STATUS(gmle_model_mean(mw, 0, a), GMLE_OK);
      CHECK_STATUS(gmle_model_mean(mr, 0, b), GMLE_OK);
      tu_ref_mean(&ref, 0, rf);
      CHECK(tu_max_rel_err(a, rf, NULL, 2) <= 1e-12);
      CHECK(tu_max_rel_err(b, rf, NULL, 2) <= 1e-12);
      CHECK_STATUS(gmle_model_covariance(mw, 0, a), GMLE_OK);
      CHECK_STATUS(gmle_model_covariance(mr, 0, b), GMLE_OK);
      tu_ref_cov(&ref, GMLE_COV_FULL, 0, rf);
      CHECK(tu_rel_frobenius(a, rf, 4) <= 1e-12);
      CHECK(tu_rel_frobenius(b, rf, 4) <= 1e-12);
      double n = 0;
      CHECK_STATUS(gmle_stats_weight(sw, 0, &n), GMLE_OK);
      CHECK(n == 6.0);
    }
    gmle_model_free(mw);
    gmle_model_free(mr);
    tu_ref_free(&ref);
    /* all-zero and negative weights: E_INVALID_WEIGHTS, state unchanged */
    gmle_stats *before = NULL;
    CHECK_STATUS(gmle_stats_clone(sw, &before), GMLE_OK);
    const double zero[4] = {0, 0, 0, 0}, neg[4] = {1, 1, 1, -2};
    CHECK_STATUS(gmle_stats_add(sw, x, GMLE_F64, 4, 2, NULL, zero),
                 GMLE_E_INVALID_WEIGHTS);
    CHECK_STATUS(gmle_stats_add(sw, x, GMLE_F64, 4, 2, NULL, neg),
                 GMLE_E_INVALID_WEIGHTS);
    CHECK_ERROR_HAS(ctx, "row 3");
    if (before)
      CHECK(tu_stats_raw_equal(sw, before));
    gmle_stats_free(before);
  }
  gmle_stats_free(sw);
  gmle_stats_free(sr);
  gmle_context_free(ctx);
}

/* Case 20 ----------------------------------------------------------------- */

TEST(badinput_20_fit_twice_from_scratch_bit_identical) {
  const size_t n = 40000, d = 6;
  gmle_dtype dts[2] = {GMLE_F64, GMLE_F32};
  for (int t = 0; t < 2; t++) {
    void *x = tu_alloc_data(n, d, dts[t]);
    int32_t *lab = malloc(n * sizeof *lab);
    if (!x || !lab) {
      CHECK(!"setup");
      free(x);
      free(lab);
      return;
    }
    tu_rng r;
    tu_seed(&r, 20);
    tu_gen_offset(&r, n, d, 100.0, 1.0, dts[t], d, x);
    tu_labels_random(&r, n, 3, lab);
    gmle_context *ctx = tu_context();
    CHECK(ctx != NULL);
    const gmle_cov_type types[4] = {GMLE_COV_FULL, GMLE_COV_DIAG,
                                    GMLE_COV_SPHERICAL, GMLE_COV_TIED};
    for (int c = 0; c < 4 && ctx; c++) {
      gmle_model *m[2] = {NULL, NULL};
      double *sc[2] = {malloc(200 * 3 * sizeof(double)),
                       malloc(200 * 3 * sizeof(double))};
      for (int rep = 0; rep < 2; rep++) {
        gmle_stats *st = NULL;
        CHECK_STATUS(gmle_stats_create(ctx, d, 3, &st), GMLE_OK);
        if (st)
          CHECK_STATUS(gmle_stats_add(st, x, dts[t], n, d, lab, NULL), GMLE_OK);
        gmle_fit_options o;
        gmle_fit_options_init(&o);
        o.cov = types[c];
        if (st)
          CHECK_STATUS(gmle_fit(st, &o, &m[rep]), GMLE_OK);
        if (m[rep] && sc[rep])
          CHECK_STATUS(gmle_score(ctx, m[rep], x, dts[t], 200, d,
                                  GMLE_OUT_LOGPOST, GMLE_F64, sc[rep]),
                       GMLE_OK);
        gmle_stats_free(st);
      }
      if (m[0] && m[1]) {
        CHECK_MSG(tu_models_bit_equal(m[0], m[1]),
                  "dtype %d cov %d: models differ", (int)dts[t], c);
        double l0 = 0, l1 = 1;
        CHECK_STATUS(gmle_model_loglik(m[0], 1, &l0), GMLE_OK);
        CHECK_STATUS(gmle_model_loglik(m[1], 1, &l1), GMLE_OK);
        CHECK(memcmp(&l0, &l1, sizeof l0) == 0);
      }
      if (sc[0] && sc[1])
        CHECK(tu_bits_equal(sc[0], sc[1], 600));
      gmle_model_free(m[0]);
      gmle_model_free(m[1]);
      free(sc[0]);
      free(sc[1]);
    }
    gmle_context_free(ctx);
    free(x);
    free(lab);
  }
}

/* Case 21 ----------------------------------------------------------------- */

TEST(badinput_21_scoring_nan_row_named_outlier_finite_posteriors_sum_1) {
  gmle_context *ctx = tu_context();
  CHECK(ctx != NULL);
  if (!ctx)
    return;
  /* three classes in 3-D with known parameters */
  const double mu[9] = {0, 0, 0, 3, 0, 0, 0, 3, 0};
  double cv[27];
  tu_rng r;
  tu_seed(&r, 21);
  for (int k = 0; k < 3; k++)
    tu_random_spd(&r, 3, 0.5, 2.0, cv + 9 * k);
  const double pri[3] = {0.2, 0.3, 0.5};
  gmle_model *m = NULL;
  CHECK_STATUS(
      gmle_model_create(ctx, 3, 3, GMLE_COV_FULL, mu, cv, pri, NULL, &m),
      GMLE_OK);
  if (!m) {
    gmle_context_free(ctx);
    return;
  }
  /* NaN and Inf rows: error naming the row (and column) */
  double x[8 * 3];
  tu_gen_offset(&r, 8, 3, 1.0, 1.0, GMLE_F64, 3, x);
  double out[8 * 3];
  x[5 * 3 + 1] = NAN;
  CHECK_STATUS(
      gmle_score(ctx, m, x, GMLE_F64, 8, 3, GMLE_OUT_LOGLIK, GMLE_F64, out),
      GMLE_E_NONFINITE_INPUT);
  CHECK_ERROR_HAS(ctx, "row 5");
  CHECK_ERROR_HAS(ctx, "col 1");
  x[5 * 3 + 1] = 0.0;
  float xf[8 * 3];
  for (int i = 0; i < 24; i++)
    xf[i] = (float)x[i];
  xf[7 * 3 + 2] = INFINITY;
  CHECK_STATUS(
      gmle_score(ctx, m, xf, GMLE_F32, 8, 3, GMLE_OUT_LOGPOST, GMLE_F64, out),
      GMLE_E_NONFINITE_INPUT);
  CHECK_ERROR_HAS(ctx, "row 7");
  /* a 1e3-sigma outlier: finite, -1/2 (D log 2pi + log|S| + d^2) with
   * d^2 ~ 1e6, computed here in long double */
  double o[2 * 3] = {1e3 * sqrt(cv[0]), 0.0, 0.0, -2e3 * sqrt(cv[0]), 1e3, 5e2};
  double ll[2 * 3];
  CHECK_STATUS(
      gmle_score(ctx, m, o, GMLE_F64, 2, 3, GMLE_OUT_LOGLIK, GMLE_F64, ll),
      GMLE_OK);
  for (int i = 0; i < 2; i++)
    for (int k = 0; k < 3; k++) {
      long double want = tu_logpdf(3, o + 3 * i, mu + 3 * k, cv + 9 * k);
      CHECK(isfinite(ll[i * 3 + k]));
      CHECK_MSG(fabs(ll[i * 3 + k] - (double)want) <= 1e-12 * fabsl(want),
                "outlier %d class %d: %.17g vs %.17Lg", i, k, ll[i * 3 + k],
                want);
    }
  /* posteriors sum to 1 within 1e-12, near and far */
  const size_t np = 400;
  double *pts = malloc(np * 3 * sizeof *pts), *lp = malloc(np * 3 * 8);
  if (pts && lp) {
    for (size_t i = 0; i < np; i++)
      for (int j = 0; j < 3; j++)
        pts[i * 3 + j] = tu_normal(&r) * (i < np / 2 ? 2.0 : 300.0);
    CHECK_STATUS(gmle_score(ctx, m, pts, GMLE_F64, np, 3, GMLE_OUT_LOGPOST,
                            GMLE_F64, lp),
                 GMLE_OK);
    size_t bad = 0;
    for (size_t i = 0; i < np; i++) {
      long double s = 0.0L;
      for (int k = 0; k < 3; k++)
        s += expl((long double)lp[i * 3 + k]);
      bad += !(fabsl(s - 1.0L) <= 1e-12L);
    }
    CHECK_MSG(bad == 0, "%zu rows whose posteriors do not sum to 1", bad);
  }
  free(pts);
  free(lp);
  /* a row that is -inf under every class (its squared distance overflows)
   * scores -inf, never NaN */
  double far[3] = {1e300, -1e300, 1e300};
  double jt[3], pst[3], dn[1];
  int32_t lb[1] = {-7};
  CHECK_STATUS(
      gmle_score(ctx, m, far, GMLE_F64, 1, 3, GMLE_OUT_JOINT, GMLE_F64, jt),
      GMLE_OK);
  CHECK_STATUS(
      gmle_score(ctx, m, far, GMLE_F64, 1, 3, GMLE_OUT_LOGPOST, GMLE_F64, pst),
      GMLE_OK);
  CHECK_STATUS(
      gmle_score(ctx, m, far, GMLE_F64, 1, 3, GMLE_OUT_DENSITY, GMLE_F64, dn),
      GMLE_OK);
  CHECK_STATUS(
      gmle_score(ctx, m, far, GMLE_F64, 1, 3, GMLE_OUT_LABEL, GMLE_F64, lb),
      GMLE_OK);
  for (int k = 0; k < 3; k++) {
    CHECK_MSG(isinf(jt[k]) && jt[k] < 0, "joint %d = %g", k, jt[k]);
    CHECK_MSG(!isnan(pst[k]), "log-posterior %d is NaN", k);
  }
  CHECK_MSG(isinf(dn[0]) && dn[0] < 0, "density %g", dn[0]);
  /* no class can be chosen: a class index, or -1 meaning "none" */
  CHECK_MSG(lb[0] == -1 || (lb[0] >= 0 && lb[0] < 3), "label %d", (int)lb[0]);
  gmle_model_free(m);
  gmle_context_free(ctx);
}

TEST(badinput_21_all_classes_but_one_empty_and_zero_prior_rows_no_nan) {
  /* A fitted model where only class 2 of three has data: classes 0 and 1
   * score -inf, class 2 has posterior exactly 1 (log 0), density finite. */
  gmle_context *ctx = tu_context();
  CHECK(ctx != NULL);
  if (!ctx)
    return;
  double x[50 * 2];
  int32_t lab[50];
  tu_rng r;
  tu_seed(&r, 211);
  tu_gen_offset(&r, 50, 2, 0.0, 1.0, GMLE_F64, 2, x);
  for (int i = 0; i < 50; i++)
    lab[i] = 2;
  gmle_stats *st = NULL;
  gmle_model *m = NULL;
  CHECK_STATUS(gmle_stats_create(ctx, 2, 3, &st), GMLE_OK);
  if (st) {
    CHECK_STATUS(gmle_stats_add(st, x, GMLE_F64, 50, 2, lab, NULL), GMLE_OK);
    CHECK_STATUS(gmle_fit(st, NULL, &m), GMLE_OK);
  }
  if (m) {
    double lp[10 * 3], dn[10];
    CHECK_STATUS(
        gmle_score(ctx, m, x, GMLE_F64, 10, 2, GMLE_OUT_LOGPOST, GMLE_F64, lp),
        GMLE_OK);
    CHECK_STATUS(
        gmle_score(ctx, m, x, GMLE_F64, 10, 2, GMLE_OUT_DENSITY, GMLE_F64, dn),
        GMLE_OK);
    for (int i = 0; i < 10; i++) {
      CHECK(isinf(lp[i * 3]) && lp[i * 3] < 0);
      CHECK(isinf(lp[i * 3 + 1]) && lp[i * 3 + 1] < 0);
      CHECK(lp[i * 3 + 2] == 0.0);
      CHECK(isfinite(dn[i]));
    }
  }
  gmle_model_free(m);
  gmle_stats_free(st);
  gmle_context_free(ctx);
}

int main(int argc, char **argv) {
  CHECK_INIT(argc, argv);
  RUN(badinput_01_nan_f32_names_batch_row_and_col_state_unchanged);
  RUN(badinput_02_inf_rejected_and_1e200_overflow_state_unchanged);
  RUN(badinput_03_empty_batch_is_a_successful_noop);
  RUN(badinput_04_zero_features_invalid_arg);
  RUN(badinput_04_size_overflow_rejected_before_any_allocation);
  RUN(badinput_04_score_size_overflow_rejected);
  RUN(badinput_05_feature_count_change_13_to_14_dim_mismatch);
  RUN(badinput_06_label_out_of_range_or_negative_names_label_and_row);
  RUN(badinput_07_empty_class_prior_zero_scores_minus_inf_never_nan);
  RUN(badinput_08_one_sample_class_full_cov_ill_defined_unless_floored);
  RUN(badinput_09_fewer_rows_than_features_singular_names_class_n_d_remedy);
  RUN(badinput_10_constant_feature_singular_names_feature_floor_exact);
  RUN(badinput_11_all_features_constant_error_or_floored_never_nan);
  RUN(badinput_12_collinear_columns_singular_floored_or_condition_bounded);
  RUN(badinput_13_nan_covariance_never_reaches_cholesky_unnoticed);
  RUN(badinput_14_offset_mean_1e4_sd_1_f32_n2e6_d64_accurate);
  RUN(badinput_15_mean_1e6_sd_0p0316_f32_exact_on_stored_values_warns);
  RUN(badinput_16_scale_1e_minus20_and_1e15_f32_same_predictions);
  RUN(badinput_17_rechunkings_and_merges_equal_single_pass_f64);
  RUN(badinput_17_rechunkings_and_merges_equal_single_pass_f32);
  RUN(badinput_19_weights_equal_repeats_zero_removes_invalid_rejected);
  RUN(badinput_20_fit_twice_from_scratch_bit_identical);
  RUN(badinput_21_scoring_nan_row_named_outlier_finite_posteriors_sum_1);
  RUN(badinput_21_all_classes_but_one_empty_and_zero_prior_rows_no_nan);
  return CHECK_DONE();
}
