/* test_fit.c -- gmle_fit against an independent long double two-pass
 * reference: every covariance type x dtype, the accuracy contract at
 * |mean|/std = 1e4, priors, regularisation (relative floor, absolute floor,
 * eigenvalue floor, OAS shrinkage), the per-class report, the closed-form
 * training log-likelihood and BIC/AIC.
 *
 * Tolerances (docs/ARCHITECTURE.md, accuracy contract): float64 input 1e-12
 * relative for means and covariances; float32 input means 1e-7 relative and
 * ||dSigma||_F / ||Sigma||_F <= 1e-6. */
#include "check.h"
#include "testutil.h"

#include "gmle.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOL64 1e-12
#define TOL32_MEAN 1e-7
#define TOL32_COV 1e-6
#define LOG2PI 1.8378770664093454835606594728112353

static gmle_fit_options exact_opts(gmle_cov_type cov) {
  gmle_fit_options o;
  gmle_fit_options_init(&o);
  o.cov = cov;
  o.rel_floor = 0.0;
  o.abs_floor = 0.0;
  return o;
}

/* Fresh context + statistics holding all of ds (in `n_batches` batches). */
static gmle_stats *stats_of(gmle_context *ctx, const tu_dataset *ds,
                            size_t n_batches) {
  gmle_stats *st = NULL;
  if (gmle_stats_create(ctx, ds->d, ds->c, &st) != GMLE_OK)
    return NULL;
  size_t per = (ds->n + n_batches - 1) / n_batches;
  for (size_t at = 0; at < ds->n; at += per) {
    size_t k = ds->n - at < per ? ds->n - at : per;
    gmle_status s = tu_dataset_add(st, ds, at, k);
    if (s != GMLE_OK) {
      printf("  gmle_stats_add: %s (%s)\n", gmle_status_name(s),
             gmle_context_error(ctx));
      gmle_stats_free(st);
      return NULL;
    }
  }
  return st;
}

/* Compare a fitted model with the reference: means, covariances of the
 * type, priors n_c/n, counts. */
static void check_model_vs_ref(const gmle_model *m, const tu_ref *ref,
                               gmle_cov_type cov, double tol_mean,
                               double tol_cov, const char *what) {
  size_t d = ref->dim, c = ref->n_classes;
  CHECK(gmle_model_dim(m) == d);
  CHECK(gmle_model_n_classes(m) == c);
  CHECK(gmle_model_cov_type(m) == cov);
  double *a = malloc(d * d * sizeof *a), *b = malloc(d * d * sizeof *b);
  long double tot = 0.0L;
  for (size_t k = 0; k < c; k++)
    tot += ref->weight[k];
  for (size_t k = 0; k < c && a && b; k++) {
    CHECK_STATUS(gmle_model_mean(m, k, a), GMLE_OK);
    tu_ref_mean(ref, k, b);
    double em = tu_max_rel_err(a, b, NULL, d);
    CHECK_MSG(em <= tol_mean, "%s: class %zu mean rel err %.3g > %.3g", what, k,
              em, tol_mean);
    CHECK_STATUS(gmle_model_covariance(m, k, a), GMLE_OK);
    tu_ref_cov(ref, cov, k, b);
    double ec = tu_rel_frobenius(a, b, d * d);
    CHECK_MSG(ec <= tol_cov, "%s: class %zu covariance rel err %.3g > %.3g",
              what, k, ec, tol_cov);
    double p = -1.0, cnt = -1.0;
    CHECK_STATUS(gmle_model_prior(m, k, &p), GMLE_OK);
    CHECK_MSG(fabs(p - (double)(ref->weight[k] / tot)) <=
                  TOL64 * (double)(ref->weight[k] / tot),
              "%s: class %zu prior %.17g, expected %.17g", what, k, p,
              (double)(ref->weight[k] / tot));
    CHECK_STATUS(gmle_model_count(m, k, &cnt), GMLE_OK);
    CHECK_MSG(fabs(cnt - (double)ref->weight[k]) <=
                  TOL64 * (double)ref->weight[k],
              "%s: class %zu count %.17g, expected %.17g", what, k, cnt,
              (double)ref->weight[k]);
  }
  free(a);
  free(b);
}

static void fit_type_vs_reference(gmle_cov_type cov, gmle_dtype dtype,
                                  int weighted) {
  gmle_context *ctx = tu_context();
  tu_dataset ds;
  CHECK(ctx != NULL);
  if (!ctx || tu_dataset_make(
                  &ds, 300 + (uint64_t)cov * 7 + (uint64_t)dtype, 20000, 6, 4,
                  dtype, 6, dtype == GMLE_F32 ? 500.0 : 10.0, weighted) != 0) {
    CHECK(!"setup");
    gmle_context_free(ctx);
    return;
  }
  gmle_stats *st = stats_of(ctx, &ds, 3);
  CHECK(st != NULL);
  tu_ref ref;
  CHECK(tu_ref_dataset(&ref, &ds) == 0);
  if (st) {
    gmle_fit_options o = exact_opts(cov);
    gmle_model *m = NULL;
    CHECK_STATUS(gmle_fit(st, &o, &m), GMLE_OK);
    if (m) {
      char what[64];
      snprintf(what, sizeof what, "cov type %d, %s", (int)cov,
               dtype == GMLE_F32 ? "f32" : "f64");
      if (dtype == GMLE_F32)
        check_model_vs_ref(m, &ref, cov, TOL32_MEAN, TOL32_COV, what);
      else
        check_model_vs_ref(m, &ref, cov, TOL64, TOL64, what);
    }
    gmle_model_free(m);
  }
  tu_ref_free(&ref);
  gmle_stats_free(st);
  tu_dataset_free(&ds);
  gmle_context_free(ctx);
}

TEST(fit_full_matches_two_pass_f64) {
  fit_type_vs_reference(GMLE_COV_FULL, GMLE_F64, 0);
}
TEST(fit_full_matches_two_pass_f32) {
  fit_type_vs_reference(GMLE_COV_FULL, GMLE_F32, 0);
}
TEST(fit_diag_matches_two_pass_f64) {
  fit_type_vs_reference(GMLE_COV_DIAG, GMLE_F64, 0);
}
TEST(fit_diag_matches_two_pass_f32) {
  fit_type_vs_reference(GMLE_COV_DIAG, GMLE_F32, 0);
}
TEST(fit_spherical_matches_two_pass_f64) {
  fit_type_vs_reference(GMLE_COV_SPHERICAL, GMLE_F64, 0);
}
TEST(fit_spherical_matches_two_pass_f32) {
  fit_type_vs_reference(GMLE_COV_SPHERICAL, GMLE_F32, 0);
}
TEST(fit_tied_matches_pooled_two_pass_f64) {
  fit_type_vs_reference(GMLE_COV_TIED, GMLE_F64, 0);
}
TEST(fit_tied_matches_pooled_two_pass_f32) {
  fit_type_vs_reference(GMLE_COV_TIED, GMLE_F32, 0);
}
TEST(fit_full_weighted_matches_two_pass_f64) {
  fit_type_vs_reference(GMLE_COV_FULL, GMLE_F64, 1);
}
TEST(fit_tied_weighted_matches_two_pass_f64) {
  fit_type_vs_reference(GMLE_COV_TIED, GMLE_F64, 1);
}

static void fit_shape_vs_reference(uint64_t seed, size_t n, size_t d, size_t c,
                                   gmle_dtype dtype, size_t stride,
                                   double offset, gmle_cov_type cov) {
  gmle_context *ctx = tu_context();
  tu_dataset ds;
  CHECK(ctx != NULL);
  if (!ctx ||
      tu_dataset_make(&ds, seed, n, d, c, dtype, stride, offset, 1) != 0) {
    CHECK(!"setup");
    gmle_context_free(ctx);
    return;
  }
  gmle_stats *st = stats_of(ctx, &ds, 3);
  CHECK(st != NULL);
  tu_ref ref;
  CHECK(tu_ref_dataset(&ref, &ds) == 0);
  gmle_fit_options o = exact_opts(cov);
  gmle_model *m = NULL;
  if (st)
    CHECK_STATUS(gmle_fit(st, &o, &m), GMLE_OK);
  if (m) {
    char what[96];
    snprintf(what, sizeof what, "N=%zu D=%zu C=%zu stride %zu %s", n, d, c,
             stride, dtype == GMLE_F32 ? "f32" : "f64");
    if (dtype == GMLE_F32)
      check_model_vs_ref(m, &ref, cov, TOL32_MEAN, TOL32_COV, what);
    else
      check_model_vs_ref(m, &ref, cov, TOL64, TOL64, what);
  }
  gmle_model_free(m);
  tu_ref_free(&ref);
  gmle_stats_free(st);
  tu_dataset_free(&ds);
  gmle_context_free(ctx);
}

TEST(fit_many_classes_300_matches_two_pass_f64) {
  /* ~40 rows per class: many small classes, each with its own shift */
  fit_shape_vs_reference(350, 12000, 3, 300, GMLE_F64, 3, 25.0, GMLE_COV_FULL);
}

TEST(fit_wide_d257_odd_stride_matches_two_pass_f32) {
  /* tails of every block size of a Gram kernel: D = 257, stride 263 */
  fit_shape_vs_reference(351, 3001, 257, 2, GMLE_F32, 263, 100.0,
                         GMLE_COV_FULL);
}

TEST(fit_wide_d257_diag_matches_two_pass_f64) {
  fit_shape_vs_reference(352, 3001, 257, 3, GMLE_F64, 257, -40.0,
                         GMLE_COV_DIAG);
}

/* The accuracy contract at |mean|/std = 1e4: D = 40, C = 10, N rows. */
static void accuracy_contract(gmle_dtype dtype, size_t n, double tol_mean,
                              double tol_cov) {
  const size_t d = 40, c = 10;
  gmle_context *ctx = tu_context();
  CHECK(ctx != NULL);
  void *x = tu_alloc_data(n, d, dtype);
  int32_t *lab = malloc(n * sizeof *lab);
  double *means = malloc(c * d * sizeof *means);
  double *covs = malloc(c * d * d * sizeof *covs);
  gmle_stats *st = NULL;
  if (!ctx || !x || !lab || !means || !covs) {
    CHECK(!"setup");
    goto done;
  }
  tu_rng r;
  tu_seed(&r, dtype == GMLE_F32 ? 10000u : 20000u);
  for (size_t k = 0; k < c; k++) {
    for (size_t j = 0; j < d; j++) /* |mean| ~ 1e4, std ~ 1 */
      means[k * d + j] = (j % 2 ? -1e4 : 1e4) + 3.0 * tu_normal(&r);
    tu_random_spd(&r, d, 0.8, 1.25, covs + k * d * d);
  }
  tu_labels_random(&r, n, c, lab);
  CHECK(tu_gen_gaussian(&r, n, d, c, means, covs, lab, dtype, d, x) == 0);
  CHECK_STATUS(gmle_stats_create(ctx, d, c, &st), GMLE_OK);
  size_t isz = dtype == GMLE_F32 ? 4 : 8;
  for (size_t at = 0; st && at < n; at += n / 4) { /* four batches */
    size_t k = n - at < n / 4 ? n - at : n / 4;
    CHECK_STATUS(gmle_stats_add(st, (const char *)x + at * d * isz, dtype, k, d,
                                lab + at, NULL),
                 GMLE_OK);
  }
  if (st) {
    tu_ref ref;
    CHECK(tu_ref_compute(&ref, x, dtype, n, d, d, c, lab, NULL) == 0);
    gmle_fit_options o;
    gmle_fit_options_init(&o); /* defaults: the relative floor is far below
                                  every eigenvalue here */
    gmle_model *m = NULL;
    CHECK_STATUS(gmle_fit(st, &o, &m), GMLE_OK);
    double *a = malloc(d * d * sizeof *a), *b = malloc(d * d * sizeof *b);
    double worst_m = 0.0, worst_c = 0.0;
    for (size_t k = 0; k < c && m && a && b; k++) {
      CHECK_STATUS(gmle_stats_mean(st, k, a), GMLE_OK);
      tu_ref_mean(&ref, k, b);
      double em = tu_max_rel_err(a, b, NULL, d);
      CHECK_STATUS(gmle_model_mean(m, k, a), GMLE_OK);
      double em2 = tu_max_rel_err(a, b, NULL, d);
      if (em2 > em)
        em = em2;
      CHECK_STATUS(gmle_model_covariance(m, k, a), GMLE_OK);
      tu_ref_cov(&ref, GMLE_COV_FULL, k, b);
      double ec = tu_rel_frobenius(a, b, d * d);
      if (em > worst_m)
        worst_m = em;
      if (ec > worst_c)
        worst_c = ec;
      for (size_t j = 0; j < d; j++)
        CHECK_MSG(a[j * d + j] > 0.0, "class %zu variance %zu = %g", k, j,
                  a[j * d + j]);
    }
    printf("  %s N=%zu: worst mean rel err %.3g (tol %.0e), worst "
           "covariance rel Frobenius err %.3g (tol %.0e)\n",
           dtype == GMLE_F32 ? "float32" : "float64", n, worst_m, tol_mean,
           worst_c, tol_cov);
    CHECK(m != NULL);
    CHECK(worst_m <= tol_mean);
    CHECK(worst_c <= tol_cov);
    free(a);
    free(b);
    gmle_model_free(m);
    tu_ref_free(&ref);
  }
done:
  gmle_stats_free(st);
  free(x);
  free(lab);
  free(means);
  free(covs);
  gmle_context_free(ctx);
}

TEST(fit_accuracy_contract_f32_mean_over_std_1e4_d40_c10_n2e6) {
  accuracy_contract(GMLE_F32, tu_rows(2000000, 40000), TOL32_MEAN, TOL32_COV);
}

TEST(fit_accuracy_contract_f64_mean_over_std_1e4_d40_c10_n2e6) {
  accuracy_contract(GMLE_F64, tu_rows(2000000, 40000), TOL64, TOL64);
}

TEST(fit_options_init_sets_documented_defaults) {
  gmle_fit_options o;
  memset(&o, 0x5a, sizeof o);
  gmle_fit_options_init(&o);
  CHECK(o.cov == GMLE_COV_FULL);
  CHECK(o.priors == NULL);
  CHECK(o.rel_floor == 1e-9);
  CHECK(o.abs_floor == 0.0);
  CHECK(o.max_condition == 0.0);
  CHECK(o.shrinkage == 0);
  CHECK(o.allow_empty == 1);
}

TEST(fit_priors_default_to_weighted_class_fractions) {
  gmle_context *ctx = tu_context();
  tu_dataset ds;
  CHECK(ctx != NULL);
  if (!ctx || tu_dataset_make(&ds, 400, 9000, 3, 3, GMLE_F64, 3, 0.0, 1)) {
    CHECK(!"setup");
    gmle_context_free(ctx);
    return;
  }
  gmle_stats *st = stats_of(ctx, &ds, 2);
  tu_ref ref;
  CHECK(tu_ref_dataset(&ref, &ds) == 0);
  gmle_model *m = NULL;
  if (st)
    CHECK_STATUS(gmle_fit(st, NULL, &m), GMLE_OK);
  if (m) {
    long double tot = ref.weight[0] + ref.weight[1] + ref.weight[2];
    double sum = 0.0;
    for (size_t k = 0; k < 3; k++) {
      double p = 0.0;
      CHECK_STATUS(gmle_model_prior(m, k, &p), GMLE_OK);
      CHECK_REL(p, (double)(ref.weight[k] / tot), TOL64);
      sum += p;
    }
    CHECK_CLOSE(sum, 1.0, 1e-15);
    double p;
    CHECK_STATUS(gmle_model_prior(m, 3, &p), GMLE_E_INVALID_ARG);
  }
  gmle_model_free(m);
  tu_ref_free(&ref);
  gmle_stats_free(st);
  tu_dataset_free(&ds);
  gmle_context_free(ctx);
}

TEST(fit_given_priors_are_used_and_validated) {
  gmle_context *ctx = tu_context();
  tu_dataset ds;
  CHECK(ctx != NULL);
  if (!ctx || tu_dataset_make(&ds, 401, 6000, 3, 3, GMLE_F64, 3, 0.0, 0)) {
    CHECK(!"setup");
    gmle_context_free(ctx);
    return;
  }
  gmle_stats *st = stats_of(ctx, &ds, 1);
  CHECK(st != NULL);
  const double pri[3] = {0.5, 0.3, 0.2};
  gmle_fit_options o;
  gmle_fit_options_init(&o);
  o.priors = pri;
  gmle_model *m = NULL;
  if (st)
    CHECK_STATUS(gmle_fit(st, &o, &m), GMLE_OK);
  if (m) {
    for (size_t k = 0; k < 3; k++) {
      double p = 0.0;
      CHECK_STATUS(gmle_model_prior(m, k, &p), GMLE_OK);
      CHECK_REL(p, pri[k], 1e-15);
    }
    /* JOINT - LOGLIK is log pi_c on every row */
    double ll[30], jt[30];
    CHECK_STATUS(gmle_score(ctx, m, ds.x, GMLE_F64, 10, 3, GMLE_OUT_LOGLIK,
                            GMLE_F64, ll),
                 GMLE_OK);
    CHECK_STATUS(
        gmle_score(ctx, m, ds.x, GMLE_F64, 10, 3, GMLE_OUT_JOINT, GMLE_F64, jt),
        GMLE_OK);
    for (size_t i = 0; i < 10; i++)
      for (size_t k = 0; k < 3; k++)
        CHECK_CLOSE(jt[i * 3 + k] - ll[i * 3 + k], log(pri[k]), 1e-12);
    /* the joint training log-likelihood uses the given priors */
    double l0 = 0, l1 = 0;
    CHECK_STATUS(gmle_model_loglik(m, 0, &l0), GMLE_OK);
    CHECK_STATUS(gmle_model_loglik(m, 1, &l1), GMLE_OK);
    long double expect = 0.0L;
    for (size_t i = 0; i < ds.n; i++)
      expect += logl((long double)pri[ds.labels[i]]);
    CHECK_REL(l1 - l0, (double)expect, 1e-9);
  }
  gmle_model_free(m);
  /* priors that are not a distribution are refused */
  const double bad_sum[3] = {0.5, 0.3, 0.3}, bad_neg[3] = {1.2, -0.2, 0.0},
               bad_nan[3] = {0.5, NAN, 0.5};
  const double *bads[3] = {bad_sum, bad_neg, bad_nan};
  for (int b = 0; b < 3 && st; b++) {
    o.priors = bads[b];
    m = NULL;
    CHECK_STATUS(gmle_fit(st, &o, &m), GMLE_E_INVALID_ARG);
    CHECK(m == NULL);
    gmle_model_free(m);
  }
  gmle_stats_free(st);
  tu_dataset_free(&ds);
  gmle_context_free(ctx);
}

TEST(fit_rejects_invalid_options_and_arguments) {
  gmle_context *ctx = tu_context();
  tu_dataset ds;
  CHECK(ctx != NULL);
  if (!ctx || tu_dataset_make(&ds, 402, 500, 2, 2, GMLE_F64, 2, 0.0, 0)) {
    CHECK(!"setup");
    gmle_context_free(ctx);
    return;
  }
  gmle_stats *st = stats_of(ctx, &ds, 1);
  CHECK(st != NULL);
  gmle_model *m = NULL;
  if (st) {
    gmle_fit_options o;
    gmle_fit_options_init(&o);
    o.rel_floor = -1e-9;
    CHECK_STATUS(gmle_fit(st, &o, &m), GMLE_E_INVALID_ARG);
    gmle_fit_options_init(&o);
    o.abs_floor = NAN;
    CHECK_STATUS(gmle_fit(st, &o, &m), GMLE_E_INVALID_ARG);
    gmle_fit_options_init(&o);
    o.abs_floor = -1.0;
    CHECK_STATUS(gmle_fit(st, &o, &m), GMLE_E_INVALID_ARG);
    gmle_fit_options_init(&o);
    o.max_condition = -5.0;
    CHECK_STATUS(gmle_fit(st, &o, &m), GMLE_E_INVALID_ARG);
    gmle_fit_options_init(&o);
    o.cov = (gmle_cov_type)9;
    CHECK_STATUS(gmle_fit(st, &o, &m), GMLE_E_INVALID_ARG);
    CHECK(m == NULL);
    CHECK_STATUS(gmle_fit(st, NULL, NULL), GMLE_E_INVALID_ARG);
    CHECK_STATUS(gmle_fit(NULL, NULL, &m), GMLE_E_INVALID_ARG);
    CHECK(m == NULL);
  }
  gmle_model_free(m);
  gmle_stats_free(st);
  tu_dataset_free(&ds);
  gmle_context_free(ctx);
}

TEST(fit_rel_floor_default_is_relative_to_the_feature_over_all_data) {
  /* Exact data (small integers and halves, orthogonal +-patterns):
   *   class 0: f0 = +-3 (var 9), f1 = 5 +- 1 (var 1), f2 = +-0.5;
   *   class 1: f0 = 4 +- 1 (var 1), f1 = 5 (constant), f2 = +-0.5.
   * The floor of a feature is relative to that feature's own largest
   * within-class variance over all the data: f1's is 1 (class 0), although
   * class 1 comes in its own first batch where f1 is constant, and f0's 9
   * is another feature's. So class 1's constant feature must get exactly
   * 1e-9: not 9e-9, and not a per-class or per-batch value. */
  gmle_context *ctx = tu_context();
  CHECK(ctx != NULL);
  if (!ctx)
    return;
  const size_t n0 = 4000, n1 = 4000, n = n0 + n1, d = 3;
  double *x = malloc(n * d * sizeof *x);
  int32_t *lab = malloc(n * sizeof *lab);
  if (!x || !lab) {
    CHECK(!"setup");
    free(x);
    free(lab);
    gmle_context_free(ctx);
    return;
  }
  for (size_t i = 0; i < n; i++) {
    int c1 = i >= n0;
    double p2 = i % 2 ? -1.0 : 1.0, p4 = (i / 2) % 2 ? -1.0 : 1.0,
           p8 = (i / 4) % 2 ? -1.0 : 1.0;
    lab[i] = c1;
    x[i * d + 0] = c1 ? 4.0 + p2 : 3.0 * p2;
    x[i * d + 1] = c1 ? 5.0 : 5.0 + p4;
    x[i * d + 2] = 0.5 * p8;
  }
  long double maxvar = tu_max_total_variance(x, GMLE_F64, n, d, d, NULL);
  CHECK(maxvar == 9.0L); /* the construction */
  tu_ref ref;
  CHECK(tu_ref_compute(&ref, x, GMLE_F64, n, d, d, 2, lab, NULL) == 0);
  CHECK(ref.cov[0] == 9.0L && ref.cov[9] == 1.0L && ref.cov[9 + 4] == 0.0L);
  const double floor_expect = 1e-9;
  for (int type = 0; type < 2; type++) { /* full, diag */
    gmle_cov_type cov = type ? GMLE_COV_DIAG : GMLE_COV_FULL;
    gmle_stats *st = NULL;
    CHECK_STATUS(gmle_stats_create(ctx, d, 2, &st), GMLE_OK);
    if (!st)
      break;
    /* class 1 first, alone in its batch; then class 0 */
    CHECK_STATUS(
        gmle_stats_add(st, x + n0 * d, GMLE_F64, n1, d, lab + n0, NULL),
        GMLE_OK);
    CHECK_STATUS(gmle_stats_add(st, x, GMLE_F64, n0, d, lab, NULL), GMLE_OK);
    gmle_fit_options o;
    gmle_fit_options_init(&o);
    o.cov = cov;
    gmle_model *m = NULL;
    CHECK_STATUS(gmle_fit(st, &o, &m), GMLE_OK);
    double s[9], rs[9];
    if (m) {
      CHECK_STATUS(gmle_model_covariance(m, 1, s), GMLE_OK);
      CHECK_MSG(fabs(s[4] - floor_expect) <= 1e-12 * floor_expect,
                "cov type %d: constant feature variance %.17g, expected "
                "1e-9 x 1 (f1's largest within-class variance; 9 is f0's)",
                (int)cov, s[4]);
      /* the floored feature stays uncorrelated */
      CHECK(fabs(s[1]) <= 1e-12 * sqrt(s[0] * s[4]));
      CHECK(fabs(s[7]) <= 1e-12 * sqrt(s[8] * s[4]));
      /* everything else is the exact MLE */
      tu_ref_cov(&ref, cov, 1, rs);
      CHECK_REL(s[0], rs[0], TOL64);
      CHECK_REL(s[8], rs[8], TOL64);
      CHECK_STATUS(gmle_model_covariance(m, 0, s), GMLE_OK);
      tu_ref_cov(&ref, cov, 0, rs);
      CHECK(tu_rel_frobenius(s, rs, 9) <= TOL64);
      gmle_class_report rep0, rep1;
      CHECK_STATUS(gmle_model_report(m, 0, &rep0), GMLE_OK);
      CHECK_STATUS(gmle_model_report(m, 1, &rep1), GMLE_OK);
      CHECK(rep0.n_floored == 0);
      CHECK(rep1.n_floored == 1);
      CHECK_REL(rep1.min_eigenvalue, floor_expect, 1e-9);
    }
    gmle_model_free(m);
    gmle_stats_free(st);
  }
  tu_ref_free(&ref);
  free(x);
  free(lab);
  gmle_context_free(ctx);
}

TEST(fit_default_floor_keeps_contract_for_classes_far_apart_f32) {
  /* The accuracy contract with the DEFAULT options: ten classes with
   * correlated features (covariance eigenvalues 1e-3 .. 1, marginal sd
   * ~0.5) whose means are 500 .. 5000 from 0 (|mean|/sd <= 1e4), so the
   * pooled variance (between-class spread included) is ~2e6 while the
   * smallest within-class eigenvalue is 1e-3. The default relative floor
   * must stay negligible ("exact MLE plus a negligible relative floor"):
   * means 1e-7, covariances 1e-6. */
  gmle_context *ctx = tu_context();
  CHECK(ctx != NULL);
  if (!ctx)
    return;
  const size_t n = 200000, d = 4, c = 10;
  float *x = tu_alloc_data(n, d, GMLE_F32);
  int32_t *lab = malloc(n * sizeof *lab);
  double means[40], covs[160];
  gmle_stats *st = NULL;
  gmle_model *m = NULL;
  tu_rng r;
  tu_seed(&r, 1010);
  if (!x || !lab) {
    CHECK(!"setup");
    goto done;
  }
  for (size_t k = 0; k < c; k++) {
    for (size_t j = 0; j < d; j++)
      means[k * d + j] = 500.0 * (double)(k + 1);
    tu_random_spd(&r, d, 1e-3, 1.0, covs + k * d * d);
  }
  tu_labels_random(&r, n, c, lab);
  CHECK(tu_gen_gaussian(&r, n, d, c, means, covs, lab, GMLE_F32, d, x) == 0);
  CHECK_STATUS(gmle_stats_create(ctx, d, c, &st), GMLE_OK);
  if (st) {
    CHECK_STATUS(gmle_stats_add(st, x, GMLE_F32, n, d, lab, NULL), GMLE_OK);
    CHECK_STATUS(gmle_fit(st, NULL, &m), GMLE_OK);
  }
  if (m) {
    tu_ref ref;
    CHECK(tu_ref_compute(&ref, x, GMLE_F32, n, d, d, c, lab, NULL) == 0);
    double worst_m = 0, worst_c = 0, a[16], b[16];
    for (size_t k = 0; k < c; k++) {
      CHECK_STATUS(gmle_model_mean(m, k, a), GMLE_OK);
      tu_ref_mean(&ref, k, b);
      double em = tu_max_rel_err(a, b, NULL, d);
      CHECK_STATUS(gmle_model_covariance(m, k, a), GMLE_OK);
      tu_ref_cov(&ref, GMLE_COV_FULL, k, b);
      double ec = tu_rel_frobenius(a, b, d * d);
      worst_m = em > worst_m ? em : worst_m;
      worst_c = ec > worst_c ? ec : worst_c;
    }
    CHECK_MSG(worst_m <= TOL32_MEAN, "worst mean rel err %.3g", worst_m);
    CHECK_MSG(worst_c <= TOL32_COV, "worst covariance rel err %.3g", worst_c);
    tu_ref_free(&ref);
  }
done:
  gmle_model_free(m);
  gmle_stats_free(st);
  free(x);
  free(lab);
  gmle_context_free(ctx);
}

/* Fit x (n x d float64, labels lab, 3 classes) with the default options and
 * covariance type cov; labels of the n rows of q into out. 0 on success. */
static int fit_and_classify(gmle_context *ctx, gmle_cov_type cov,
                            const double *x, const int32_t *lab, size_t n,
                            const double *q, size_t nq, size_t d,
                            int32_t *out) {
  gmle_stats *st = NULL;
  gmle_model *m = NULL;
  int rc = -1;
  if (gmle_stats_create(ctx, d, 3, &st) == GMLE_OK &&
      gmle_stats_add(st, x, GMLE_F64, n, d, lab, NULL) == GMLE_OK) {
    gmle_fit_options o;
    gmle_fit_options_init(&o);
    o.cov = cov;
    if (gmle_fit(st, &o, &m) == GMLE_OK &&
        gmle_score(ctx, m, q, GMLE_F64, nq, d, GMLE_OUT_LABEL, GMLE_F64, out) ==
            GMLE_OK)
      rc = 0;
  }
  if (rc)
    fprintf(stderr, "  cov type %d: %s\n", (int)cov, gmle_context_error(ctx));
  gmle_model_free(m);
  gmle_stats_free(st);
  return rc;
}

/* Columns `col` (all when col == d) of an n x d array times a. */
static void scale_columns(double *y, const double *x, size_t n, size_t d,
                          size_t col, double a) {
  for (size_t i = 0; i < n * d; i++)
    y[i] = x[i] * (col == d || i % d == col ? a : 1.0);
}

TEST(fit_default_floor_is_equivariant_to_each_feature_scale) {
  /* BAD_INPUTS case 37: a change of one feature's unit changes no
   * prediction. Three classes whose features differ in scale by 1e6: class
   * 0 well defined, class 1 with fewer rows than features (the default
   * floor acts on it), class 2 with a constant feature. Each feature alone
   * is rescaled by 1e6 and by 1e-6 for full, diag and tied; a spherical
   * model is not equivariant to one feature's unit (it shares one variance
   * between features), so it gets the same factor on every feature. */
  gmle_context *ctx = tu_context();
  CHECK(ctx != NULL);
  if (!ctx)
    return;
  enum { D = 4, N0 = 400, N1 = 3, N2 = 200, N = N0 + N1 + N2, NQ = 2000 };
  static const double unit[D] = {1e-3, 1.0, 1e3, 5e2};
  double *x = malloc(N * D * sizeof *x), *y = malloc(N * D * sizeof *y);
  double *q = malloc(NQ * D * sizeof *q), *qy = malloc(NQ * D * sizeof *qy);
  int32_t lab[N], ref[NQ], got[NQ];
  tu_rng r;
  tu_seed(&r, 3737);
  if (!x || !y || !q || !qy) {
    CHECK(!"setup");
    goto done;
  }
  for (size_t i = 0; i < N; i++) {
    lab[i] = i < N0 ? 0 : i < N0 + N1 ? 1 : 2;
    for (size_t j = 0; j < D; j++) {
      double v = tu_normal(&r) + 0.7 * (double)lab[i] * (double)(j + 1);
      if (lab[i] == 2 && j == 1)
        v = 1.25; /* constant within class 2 */
      x[i * D + j] = v * unit[j];
    }
  }
  for (size_t i = 0; i < NQ * D; i++)
    q[i] = 3.0 * tu_normal(&r) * unit[i % D];
  static const gmle_cov_type types[] = {GMLE_COV_FULL, GMLE_COV_DIAG,
                                        GMLE_COV_TIED, GMLE_COV_SPHERICAL};
  static const double factors[] = {1e6, 1e-6};
  for (size_t t = 0; t < 4; t++) {
    CHECK(fit_and_classify(ctx, types[t], x, lab, N, q, NQ, D, ref) == 0);
    const size_t first = types[t] == GMLE_COV_SPHERICAL ? D : 0;
    for (size_t col = first; col <= D; col++)
      for (size_t k = 0; k < 2; k++) {
        scale_columns(y, x, N, D, col, factors[k]);
        scale_columns(qy, q, NQ, D, col, factors[k]);
        CHECK(fit_and_classify(ctx, types[t], y, lab, N, qy, NQ, D, got) == 0);
        size_t changed = 0;
        for (size_t i = 0; i < NQ; i++)
          changed += got[i] != ref[i];
        CHECK_MSG(changed == 0,
                  "cov type %d, feature %zu times %g: %zu of %d predictions "
                  "changed",
                  (int)types[t], col, factors[k], changed, (int)NQ);
      }
  }
done:
  free(x);
  free(y);
  free(q);
  free(qy);
  gmle_context_free(ctx);
}

TEST(fit_default_is_the_plain_mle_for_features_from_1e_3_to_1e3) {
  /* The breast-cancer case: 30 correlated features whose standard
   * deviations run from 1e-3 to 1e3, two classes of a few hundred rows.
   * Every covariance is well defined, so the default fit is the plain MLE
   * (rel_floor 0, as QDA gives), bit for bit, and nothing is floored. */
  gmle_context *ctx = tu_context();
  CHECK(ctx != NULL);
  if (!ctx)
    return;
  enum { D = 30, N = 569 };
  double *x = malloc(N * D * sizeof *x), cov[D * D], means[2 * D],
         covs[2 * D * D];
  int32_t lab[N];
  gmle_stats *st = NULL;
  gmle_model *mdef = NULL, *mle = NULL;
  tu_rng r;
  tu_seed(&r, 569);
  if (!x) {
    CHECK(!"setup");
    goto done;
  }
  for (size_t k = 0; k < 2; k++) {
    tu_random_spd(&r, D, 1e-2, 1.0, cov);
    for (size_t i = 0; i < D; i++) {
      const double si = pow(10.0, -3.0 + 6.0 * (double)i / (D - 1));
      means[k * D + i] = si * (double)k;
      for (size_t j = 0; j < D; j++)
        covs[k * D * D + i * D + j] =
            cov[i * D + j] * si * pow(10.0, -3.0 + 6.0 * (double)j / (D - 1));
    }
  }
  for (size_t i = 0; i < N; i++)
    lab[i] = i < 212 ? 0 : 1;
  CHECK(tu_gen_gaussian(&r, N, D, 2, means, covs, lab, GMLE_F64, D, x) == 0);
  CHECK_STATUS(gmle_stats_create(ctx, D, 2, &st), GMLE_OK);
  if (!st)
    goto done;
  CHECK_STATUS(gmle_stats_add(st, x, GMLE_F64, N, D, lab, NULL), GMLE_OK);
  gmle_fit_options plain = exact_opts(GMLE_COV_FULL);
  CHECK_STATUS(gmle_fit(st, NULL, &mdef), GMLE_OK);
  CHECK_STATUS(gmle_fit(st, &plain, &mle), GMLE_OK);
  if (mdef && mle) {
    CHECK(tu_models_bit_equal(mdef, mle));
    for (size_t c = 0; c < 2; c++) {
      gmle_class_report rep;
      CHECK_STATUS(gmle_model_report(mdef, c, &rep), GMLE_OK);
      CHECK_MSG(rep.n_floored == 0, "class %zu: %zu eigenvalues floored", c,
                rep.n_floored);
    }
  }
done:
  gmle_model_free(mdef);
  gmle_model_free(mle);
  gmle_stats_free(st);
  free(x);
  gmle_context_free(ctx);
}

TEST(fit_extreme_scales_keep_the_contract_or_say_why_not) {
  /* BAD_INPUTS case 38: float64 data scaled by 1e-150 and 1e+150 fits
   * within the contract (1e-12, against the long double reference of the
   * scaled values); at 1e-160 and 1e-170 the squared deviations underflow,
   * which is said (never "feature 0 is constant"); at 1e+160 the squares
   * overflow, which is said too. */
  gmle_context *ctx = tu_context();
  CHECK(ctx != NULL);
  if (!ctx)
    return;
  enum { N = 2000, D = 3 };
  double *x0 = malloc(N * D * sizeof *x0), *x = malloc(N * D * sizeof *x);
  int32_t lab[N];
  tu_rng r;
  tu_seed(&r, 38);
  if (!x0 || !x) {
    CHECK(!"setup");
    goto done;
  }
  for (size_t i = 0; i < N; i++) {
    lab[i] = (int32_t)(i % 2);
    for (size_t j = 0; j < D; j++)
      x0[i * D + j] = tu_normal(&r) + (double)(lab[i] + j + 1);
  }
  static const double scales[] = {1e-150, 1e150, 1e-160, 1e-170, 1e160};
  for (size_t k = 0; k < 5; k++) {
    for (size_t i = 0; i < N * D; i++)
      x[i] = x0[i] * scales[k];
    gmle_stats *st = NULL;
    gmle_model *m = NULL;
    CHECK_STATUS(gmle_stats_create(ctx, D, 2, &st), GMLE_OK);
    if (!st)
      break;
    gmle_status s = gmle_stats_add(st, x, GMLE_F64, N, D, lab, NULL);
    if (s == GMLE_OK)
      s = gmle_fit(st, NULL, &m);
    if (k < 2) {
      CHECK_MSG(s == GMLE_OK, "scale %g: %s", scales[k],
                gmle_context_error(ctx));
      tu_ref ref;
      if (m && tu_ref_compute(&ref, x, GMLE_F64, N, D, D, 2, lab, NULL) == 0) {
        for (size_t c = 0; c < 2; c++) {
          double a[D * D], b[D * D];
          CHECK_STATUS(gmle_model_covariance(m, c, a), GMLE_OK);
          tu_ref_cov(&ref, GMLE_COV_FULL, c, b);
          const double e = tu_rel_frobenius(a, b, D * D);
          CHECK_MSG(e <= TOL64, "scale %g class %zu: covariance error %.3g",
                    scales[k], c, e);
        }
        tu_ref_free(&ref);
      }
    } else {
      CHECK_MSG(s == GMLE_E_OVERFLOW, "scale %g: %s (%s)", scales[k],
                gmle_status_name(s), gmle_context_error(ctx));
      CHECK_ERROR_HAS(ctx, scales[k] < 1 ? "too small" : "too large");
      CHECK(strstr(gmle_context_error(ctx), "constant") == NULL);
    }
    gmle_model_free(m);
    gmle_stats_free(st);
  }
done:
  free(x0);
  free(x);
  gmle_context_free(ctx);
}

TEST(fit_abs_floor_adds_to_the_diagonal) {
  gmle_context *ctx = tu_context();
  tu_dataset ds;
  CHECK(ctx != NULL);
  if (!ctx || tu_dataset_make(&ds, 600, 8000, 4, 3, GMLE_F64, 4, 1.0, 1)) {
    CHECK(!"setup");
    gmle_context_free(ctx);
    return;
  }
  gmle_stats *st = stats_of(ctx, &ds, 2);
  tu_ref ref;
  CHECK(tu_ref_dataset(&ref, &ds) == 0);
  const gmle_cov_type types[4] = {GMLE_COV_FULL, GMLE_COV_DIAG,
                                  GMLE_COV_SPHERICAL, GMLE_COV_TIED};
  for (int t = 0; t < 4 && st; t++) {
    gmle_fit_options o = exact_opts(types[t]);
    o.abs_floor = 0.125;
    gmle_model *m = NULL;
    CHECK_STATUS(gmle_fit(st, &o, &m), GMLE_OK);
    for (size_t k = 0; k < 3 && m; k++) {
      double s[16], rs[16];
      CHECK_STATUS(gmle_model_covariance(m, k, s), GMLE_OK);
      tu_ref_cov(&ref, types[t], k, rs);
      for (size_t j = 0; j < 4; j++)
        rs[j * 4 + j] += 0.125;
      double e = tu_rel_frobenius(s, rs, 16);
      CHECK_MSG(e <= TOL64, "cov type %d class %zu: rel err %.3g", t, k, e);
    }
    gmle_model_free(m);
  }
  tu_ref_free(&ref);
  gmle_stats_free(st);
  tu_dataset_free(&ds);
  gmle_context_free(ctx);
}

TEST(fit_max_condition_floors_eigenvalues_to_bound_condition) {
  /* Data from a covariance with eigenvalues 1e-4 .. 1e2 (cond 1e6); with
   * max_condition = 1e2 every eigenvalue below lambda_max / 1e2 is raised
   * to it and the others are kept. */
  gmle_context *ctx = tu_context();
  CHECK(ctx != NULL);
  if (!ctx)
    return;
  const size_t d = 6, n = 20000;
  double cov[36], *x = malloc(n * d * sizeof *x);
  tu_rng r;
  tu_seed(&r, 700);
  tu_random_spd(&r, d, 1e-4, 1e2, cov);
  if (!x || tu_gen_gaussian(&r, n, d, 1, NULL, cov, NULL, GMLE_F64, d, x)) {
    CHECK(!"setup");
    free(x);
    gmle_context_free(ctx);
    return;
  }
  tu_ref ref;
  CHECK(tu_ref_compute(&ref, x, GMLE_F64, n, d, d, 1, NULL, NULL) == 0);
  double rs[36], ref_eig[6], fit_eig[6], s[36];
  tu_ref_cov(&ref, GMLE_COV_FULL, 0, rs);
  CHECK(tu_sym_eigvals(d, rs, ref_eig) == 0);
  const double maxc = 1e2;
  double floor_v = ref_eig[d - 1] / maxc;
  size_t below = 0;
  for (size_t j = 0; j < d; j++)
    below += ref_eig[j] < floor_v;
  CHECK(below >= 2); /* the test means something */
  gmle_stats *st = NULL;
  CHECK_STATUS(gmle_stats_create(ctx, d, 1, &st), GMLE_OK);
  if (st)
    CHECK_STATUS(gmle_stats_add(st, x, GMLE_F64, n, d, NULL, NULL), GMLE_OK);
  gmle_fit_options o = exact_opts(GMLE_COV_FULL);
  o.max_condition = maxc;
  gmle_model *m = NULL;
  if (st)
    CHECK_STATUS(gmle_fit(st, &o, &m), GMLE_OK);
  if (m) {
    CHECK_STATUS(gmle_model_covariance(m, 0, s), GMLE_OK);
    CHECK(tu_sym_eigvals(d, s, fit_eig) == 0);
    double cond = fit_eig[d - 1] / fit_eig[0];
    CHECK_MSG(cond <= maxc * (1.0 + 1e-9), "condition %.17g > %g", cond, maxc);
    CHECK_MSG(cond >= maxc * (1.0 - 1e-9), "condition %.17g: not floored",
              cond);
    for (size_t j = 0; j < d; j++) {
      double want = ref_eig[j] < floor_v ? floor_v : ref_eig[j];
      CHECK_MSG(fabs(fit_eig[j] - want) <= 1e-9 * want,
                "eigenvalue %zu: %.17g, expected %.17g", j, fit_eig[j], want);
    }
    /* Sigma_fit - Sigma_mle is positive semi-definite (only raised) */
    double diff[36], de[6];
    for (size_t i = 0; i < 36; i++)
      diff[i] = s[i] - rs[i];
    CHECK(tu_sym_eigvals(d, diff, de) == 0);
    CHECK(de[0] >= -1e-12 * ref_eig[d - 1]);
    gmle_class_report rep;
    CHECK_STATUS(gmle_model_report(m, 0, &rep), GMLE_OK);
    CHECK_REL(rep.condition, cond, 1e-9);
    CHECK(rep.condition <= maxc * (1.0 + 1e-9));
    CHECK_REL(rep.min_eigenvalue, fit_eig[0], 1e-9);
    CHECK_REL(rep.max_eigenvalue, fit_eig[d - 1], 1e-9);
    CHECK_MSG(rep.n_floored == below, "n_floored %zu, expected %zu",
              rep.n_floored, below);
  }
  gmle_model_free(m);
  gmle_stats_free(st);
  tu_ref_free(&ref);
  free(x);
  gmle_context_free(ctx);
}

/* OAS (Chen et al.) as stated in the brief, from the MLE covariance S of n
 * rows: s = min(1, ((1-2/D) tr(S^2) + tr(S)^2) /
 *                  ((n+1-2/D) (tr(S^2) - tr(S)^2/D))),
 * Sigma = (1-s) S + s tr(S)/D I. */
static long double oas_shrinkage(size_t d, const double *s, long double n) {
  long double tr = 0.0L, tr2 = 0.0L, dd = (long double)d;
  for (size_t j = 0; j < d; j++)
    tr += s[j * d + j];
  for (size_t i = 0; i < d * d; i++)
    tr2 += (long double)s[i] * s[i];
  long double num = (1.0L - 2.0L / dd) * tr2 + tr * tr;
  long double den = (n + 1.0L - 2.0L / dd) * (tr2 - tr * tr / dd);
  long double sh = den > 0.0L ? num / den : 1.0L;
  return sh < 1.0L ? sh : 1.0L;
}

TEST(fit_oas_shrinkage_matches_formula) {
  gmle_context *ctx = tu_context();
  CHECK(ctx != NULL);
  if (!ctx)
    return;
  /* three classes: 6 rows (< D, S singular), 40 rows, 400 rows; D = 8 */
  const size_t d = 8, sizes[3] = {6, 40, 400};
  size_t n = sizes[0] + sizes[1] + sizes[2];
  double *x = malloc(n * d * sizeof *x), covs[3 * 64], means[3 * 8];
  int32_t *lab = malloc(n * sizeof *lab);
  tu_rng r;
  tu_seed(&r, 800);
  if (!x || !lab) {
    CHECK(!"setup");
    free(x);
    free(lab);
    gmle_context_free(ctx);
    return;
  }
  for (size_t k = 0; k < 3; k++) {
    tu_random_spd(&r, d, 0.1, 10.0, covs + k * 64);
    for (size_t j = 0; j < d; j++)
      means[k * d + j] = 4.0 * (double)k;
  }
  for (size_t i = 0, k = 0, left = sizes[0]; i < n; i++, left--) {
    while (left == 0)
      left = sizes[++k];
    lab[i] = (int32_t)k;
  }
  CHECK(tu_gen_gaussian(&r, n, d, 3, means, covs, lab, GMLE_F64, d, x) == 0);
  tu_ref ref;
  CHECK(tu_ref_compute(&ref, x, GMLE_F64, n, d, d, 3, lab, NULL) == 0);
  gmle_stats *st = NULL;
  CHECK_STATUS(gmle_stats_create(ctx, d, 3, &st), GMLE_OK);
  if (st)
    CHECK_STATUS(gmle_stats_add(st, x, GMLE_F64, n, d, lab, NULL), GMLE_OK);
  gmle_fit_options o = exact_opts(GMLE_COV_FULL);
  o.shrinkage = 1;
  gmle_model *m = NULL;
  if (st)
    CHECK_STATUS(gmle_fit(st, &o, &m), GMLE_OK);
  for (size_t k = 0; k < 3 && m; k++) {
    double sm[64], want[64], got[64];
    tu_ref_cov(&ref, GMLE_COV_FULL, k, sm);
    long double sh = oas_shrinkage(d, sm, (long double)sizes[k]);
    long double tr = 0.0L;
    for (size_t j = 0; j < d; j++)
      tr += sm[j * d + j];
    for (size_t i = 0; i < d; i++)
      for (size_t j = 0; j < d; j++)
        want[i * d + j] = (double)((1.0L - sh) * sm[i * d + j] +
                                   (i == j ? sh * tr / (long double)d : 0.0L));
    CHECK_STATUS(gmle_model_covariance(m, k, got), GMLE_OK);
    double e = tu_rel_frobenius(got, want, 64);
    CHECK_MSG(e <= 1e-11, "class %zu (n=%zu, s=%.6Lg): rel err %.3g", k,
              sizes[k], sh, e);
    gmle_class_report rep;
    CHECK_STATUS(gmle_model_report(m, k, &rep), GMLE_OK);
    CHECK_MSG(fabs(rep.shrinkage - (double)sh) <= 1e-11 * (double)sh,
              "class %zu: report shrinkage %.17g, expected %.17Lg", k,
              rep.shrinkage, sh);
    CHECK(sh > 0.0L && sh <= 1.0L);
  }
  gmle_model_free(m);
  gmle_stats_free(st);
  tu_ref_free(&ref);
  free(x);
  free(lab);
  gmle_context_free(ctx);
}

TEST(fit_report_fields_describe_each_class) {
  gmle_context *ctx = tu_context();
  tu_dataset ds;
  CHECK(ctx != NULL);
  /* 4 classes, class 3 never seen */
  if (!ctx || tu_dataset_make(&ds, 900, 5000, 5, 3, GMLE_F64, 5, 0.0, 1)) {
    CHECK(!"setup");
    gmle_context_free(ctx);
    return;
  }
  gmle_stats *st = NULL;
  CHECK_STATUS(gmle_stats_create(ctx, 5, 4, &st), GMLE_OK);
  if (st)
    CHECK_STATUS(tu_dataset_add(st, &ds, 0, ds.n), GMLE_OK);
  tu_ref ref;
  CHECK(tu_ref_dataset(&ref, &ds) == 0);
  const gmle_cov_type types[4] = {GMLE_COV_FULL, GMLE_COV_DIAG,
                                  GMLE_COV_SPHERICAL, GMLE_COV_TIED};
  for (int t = 0; t < 4 && st; t++) {
    gmle_fit_options o;
    gmle_fit_options_init(&o);
    o.cov = types[t];
    gmle_model *m = NULL;
    CHECK_STATUS(gmle_fit(st, &o, &m), GMLE_OK);
    for (size_t k = 0; k < 4 && m; k++) {
      gmle_class_report rep;
      memset(&rep, 0x5a, sizeof rep);
      CHECK_STATUS(gmle_model_report(m, k, &rep), GMLE_OK);
      if (k == 3) {
        CHECK(rep.empty == 1);
        CHECK(rep.rows == 0);
        CHECK(rep.weight == 0.0);
        double p = -1;
        CHECK_STATUS(gmle_model_prior(m, 3, &p), GMLE_OK);
        CHECK(p == 0.0);
        continue;
      }
      double s[25], mn = 0, mx = 0;
      CHECK_STATUS(gmle_model_covariance(m, k, s), GMLE_OK);
      CHECK(tu_sym_eig_minmax(5, s, &mn, &mx) == 0);
      CHECK(rep.empty == 0);
      CHECK_MSG(rep.rows == ref.rows[k], "type %d class %zu rows %llu vs %llu",
                t, k, (unsigned long long)rep.rows,
                (unsigned long long)ref.rows[k]);
      CHECK_REL(rep.weight, (double)ref.weight[k], TOL64);
      CHECK_REL(rep.min_eigenvalue, mn, 1e-9);
      CHECK_REL(rep.max_eigenvalue, mx, 1e-9);
      CHECK_REL(rep.condition, mx / mn, 1e-9);
      CHECK(rep.n_floored == 0);
      CHECK(rep.shrinkage == 0.0);
    }
    gmle_class_report rep;
    if (m)
      CHECK_STATUS(gmle_model_report(m, 4, &rep), GMLE_E_INVALID_ARG);
    gmle_model_free(m);
  }
  /* allow_empty = 0: the empty class is an error that names it */
  if (st) {
    gmle_fit_options o;
    gmle_fit_options_init(&o);
    o.allow_empty = 0;
    gmle_model *m = NULL;
    CHECK_STATUS(gmle_fit(st, &o, &m), GMLE_E_EMPTY);
    CHECK_ERROR_HAS(ctx, "class 3");
    CHECK(m == NULL);
    gmle_model_free(m);
  }
  tu_ref_free(&ref);
  gmle_stats_free(st);
  tu_dataset_free(&ds);
  gmle_context_free(ctx);
}

/* sum_i w_i log N(x_i; mu_{y_i}, Sigma_{y_i}) (+ w_i log pi_{y_i}) with the
 * model's own parameters, row by row in long double. */
static long double direct_loglik(const gmle_model *m, const tu_dataset *ds,
                                 int with_priors) {
  size_t d = ds->d, c = ds->c;
  double *mu = malloc(c * d * sizeof *mu), *s = malloc(d * d * sizeof *s);
  long double *l = malloc(c * d * d * sizeof *l);
  double *xr = malloc(d * sizeof *xr), *pri = malloc(c * sizeof *pri);
  long double tot = NAN;
  if (!mu || !s || !l || !xr || !pri)
    goto out;
  for (size_t k = 0; k < c; k++) {
    if (gmle_model_mean(m, k, mu + k * d) != GMLE_OK ||
        gmle_model_covariance(m, k, s) != GMLE_OK ||
        gmle_model_prior(m, k, pri + k) != GMLE_OK ||
        tu_cholesky(d, s, l + k * d * d) != 0)
      goto out;
  }
  tot = 0.0L;
  for (size_t i = 0; i < ds->n; i++) {
    size_t k = (size_t)ds->labels[i];
    long double w = ds->weights ? ds->weights[i] : 1.0L;
    for (size_t j = 0; j < d; j++)
      xr[j] = tu_get(ds->x, ds->dtype, ds->stride, i, j);
    long double v = tu_logpdf_chol(d, xr, mu + k * d, l + k * d * d);
    if (with_priors)
      v += logl((long double)pri[k]);
    tot += w * v;
  }
out:
  free(mu);
  free(s);
  free(l);
  free(xr);
  free(pri);
  return tot;
}

static void loglik_closed_form(double abs_floor, int weighted) {
  gmle_context *ctx = tu_context();
  tu_dataset ds;
  CHECK(ctx != NULL);
  if (!ctx ||
      tu_dataset_make(&ds, 1000, 5000, 4, 3, GMLE_F64, 4, 2.0, weighted)) {
    CHECK(!"setup");
    gmle_context_free(ctx);
    return;
  }
  gmle_stats *st = stats_of(ctx, &ds, 2);
  const gmle_cov_type types[4] = {GMLE_COV_FULL, GMLE_COV_DIAG,
                                  GMLE_COV_SPHERICAL, GMLE_COV_TIED};
  for (int t = 0; t < 4 && st; t++) {
    gmle_fit_options o = exact_opts(types[t]);
    o.abs_floor = abs_floor;
    gmle_model *m = NULL;
    CHECK_STATUS(gmle_fit(st, &o, &m), GMLE_OK);
    if (!m)
      continue;
    double l0 = 0, l1 = 0;
    CHECK_STATUS(gmle_model_loglik(m, 0, &l0), GMLE_OK);
    CHECK_STATUS(gmle_model_loglik(m, 1, &l1), GMLE_OK);
    long double d0 = direct_loglik(m, &ds, 0), d1 = direct_loglik(m, &ds, 1);
    CHECK_MSG(fabs(l0 - (double)d0) <= 1e-9 * fabsl(d0),
              "type %d floor %g: closed form %.17g, direct sum %.17Lg", t,
              abs_floor, l0, d0);
    CHECK_MSG(fabs(l1 - (double)d1) <= 1e-9 * fabsl(d1),
              "type %d floor %g: with priors %.17g, direct sum %.17Lg", t,
              abs_floor, l1, d1);
    gmle_model_free(m);
  }
  gmle_stats_free(st);
  tu_dataset_free(&ds);
  gmle_context_free(ctx);
}

TEST(fit_loglik_closed_form_equals_sum_of_row_log_densities) {
  loglik_closed_form(0.0, 0);
}

TEST(fit_loglik_closed_form_with_floor_and_weights_equals_direct_sum) {
  loglik_closed_form(0.3, 1);
}

TEST(fit_loglik_at_mle_is_minus_half_n_d_log2pi_logdet_d) {
  /* One class, exact MLE: loglik = -n/2 (D log 2pi + log|Sigma| + D). */
  gmle_context *ctx = tu_context();
  tu_dataset ds;
  CHECK(ctx != NULL);
  if (!ctx || tu_dataset_make(&ds, 1001, 3000, 5, 1, GMLE_F64, 5, 3.0, 0)) {
    CHECK(!"setup");
    gmle_context_free(ctx);
    return;
  }
  gmle_stats *st = stats_of(ctx, &ds, 1);
  tu_ref ref;
  CHECK(tu_ref_dataset(&ref, &ds) == 0);
  gmle_fit_options o = exact_opts(GMLE_COV_FULL);
  gmle_model *m = NULL;
  if (st)
    CHECK_STATUS(gmle_fit(st, &o, &m), GMLE_OK);
  if (m) {
    double s[25];
    long double l[25], logdet = 0.0L;
    tu_ref_cov(&ref, GMLE_COV_FULL, 0, s);
    CHECK(tu_cholesky(5, s, l) == 0);
    for (size_t j = 0; j < 5; j++)
      logdet += 2.0L * logl(l[j * 5 + j]);
    long double want = -0.5L * 3000.0L * (5.0L * LOG2PI + logdet + 5.0L);
    double got = 0;
    CHECK_STATUS(gmle_model_loglik(m, 0, &got), GMLE_OK);
    CHECK_REL(got, (double)want, 1e-12);
    CHECK_STATUS(gmle_model_loglik(m, 1, &got), GMLE_OK); /* log 1 = 0 */
    CHECK_REL(got, (double)want, 1e-12);
  }
  /* a model not produced by gmle_fit has no training likelihood */
  double mu[2] = {0, 0}, cv[4] = {1, 0, 0, 1}, v = 0;
  gmle_model *mc = NULL;
  CHECK_STATUS(
      gmle_model_create(ctx, 2, 1, GMLE_COV_FULL, mu, cv, NULL, NULL, &mc),
      GMLE_OK);
  if (mc)
    CHECK_STATUS(gmle_model_loglik(mc, 0, &v), GMLE_E_UNSUPPORTED);
  gmle_model_free(mc);
  gmle_model_free(m);
  tu_ref_free(&ref);
  gmle_stats_free(st);
  tu_dataset_free(&ds);
  gmle_context_free(ctx);
}

TEST(fit_bic_aic_use_the_parameter_count_of_each_type) {
  gmle_context *ctx = tu_context();
  tu_dataset ds;
  const size_t c = 3, d = 4, n = 6000;
  CHECK(ctx != NULL);
  if (!ctx || tu_dataset_make(&ds, 1100, n, d, c, GMLE_F64, d, 0.0, 0)) {
    CHECK(!"setup");
    gmle_context_free(ctx);
    return;
  }
  gmle_stats *st = stats_of(ctx, &ds, 1);
  const gmle_cov_type types[4] = {GMLE_COV_FULL, GMLE_COV_DIAG,
                                  GMLE_COV_SPHERICAL, GMLE_COV_TIED};
  const size_t p[4] = {
      c * d + c * d * (d + 1) / 2 + c - 1, /* full */
      2 * c * d + c - 1,                   /* diag */
      c * d + c + c - 1,                   /* spherical */
      c * d + d * (d + 1) / 2 + c - 1,     /* tied */
  };
  for (int t = 0; t < 4 && st; t++) {
    gmle_fit_options o;
    gmle_fit_options_init(&o);
    o.cov = types[t];
    gmle_model *m = NULL;
    CHECK_STATUS(gmle_fit(st, &o, &m), GMLE_OK);
    if (!m)
      continue;
    CHECK_MSG(gmle_model_n_params(m) == p[t], "type %d: %zu params, want %zu",
              t, gmle_model_n_params(m), p[t]);
    double ll = 0, bic = 0, aic = 0;
    CHECK_STATUS(gmle_model_loglik(m, 1, &ll), GMLE_OK);
    CHECK_STATUS(gmle_model_information(m, &bic, &aic), GMLE_OK);
    CHECK_REL(bic, -2.0 * ll + (double)p[t] * log((double)n), 1e-12);
    CHECK_REL(aic, -2.0 * ll + 2.0 * (double)p[t], 1e-12);
    double only = 0;
    CHECK_STATUS(gmle_model_information(m, NULL, &only), GMLE_OK);
    CHECK(only == aic);
    CHECK_STATUS(gmle_model_information(m, &only, NULL), GMLE_OK);
    CHECK(only == bic);
    gmle_model_free(m);
  }
  gmle_stats_free(st);
  tu_dataset_free(&ds);
  gmle_context_free(ctx);
}

/* Many classes of full covariance are fitted on the context's threads
 * (src/fit.c fit_classes): every class within 1e-12 of the float64
 * two-pass reference, the training log-likelihood equal to the closed
 * form's sum over classes, and with two ill-defined classes the error names
 * the lower one, as a one-thread fit does, however the threads meet them. */
TEST(fit_many_full_classes_on_threads_match_reference_and_lowest_error) {
  enum { D = 40, C = 120, PER = 90 };
  const size_t n = (size_t)C * PER;
  gmle_context *ctx = tu_context();
  double *x = malloc(n * D * sizeof *x), *a = malloc(D * D * sizeof *a),
         *b = malloc(D * D * sizeof *b);
  int32_t *lab = malloc(n * sizeof *lab);
  long double *l = malloc(D * D * sizeof *l);
  tu_ref ref;
  int have_ref = 0;
  gmle_stats *st = NULL;
  gmle_model *m = NULL;
  CHECK(ctx && x && a && b && lab && l);
  if (!ctx || !x || !a || !b || !lab || !l)
    goto done;
  tu_rng r;
  tu_seed(&r, 9090u);
  for (size_t i = 0; i < n; i++) {
    lab[i] = (int32_t)(i % C);
    for (size_t j = 0; j < D; j++)
      x[i * D + j] = tu_normal(&r) * (1.0 + 0.01 * (double)j) +
                     3.0 * (double)lab[i] + (double)j;
  }
  have_ref = tu_ref_compute(&ref, x, GMLE_F64, n, D, D, C, lab, NULL) == 0;
  CHECK(have_ref);
  CHECK_STATUS(gmle_stats_create(ctx, D, C, &st), GMLE_OK);
  if (!st || !have_ref)
    goto done;
  CHECK_STATUS(gmle_stats_add(st, x, GMLE_F64, n, D, lab, NULL), GMLE_OK);
  gmle_fit_options o = exact_opts(GMLE_COV_FULL);
  CHECK_STATUS(gmle_fit(st, &o, &m), GMLE_OK);
  if (m) {
    double worst = 0, sum = 0;
    for (size_t c = 0; c < C; c++) {
      CHECK_STATUS(gmle_model_covariance(m, c, a), GMLE_OK);
      tu_ref_cov(&ref, GMLE_COV_FULL, c, b);
      const double e = tu_rel_frobenius(a, b, D * D);
      worst = e > worst || isnan(e) ? e : worst;
      /* at the exact MLE: -n/2 (D log 2pi + log|Sigma| + D), |Sigma| of
       * the reference */
      long double logdet = 0.0L;
      CHECK(tu_cholesky(D, b, l) == 0);
      for (size_t j = 0; j < D; j++)
        logdet += 2.0L * logl(l[j * D + j]);
      sum += (double)(-0.5L * PER * ((long double)D * LOG2PI + logdet + D));
    }
    CHECK_MSG(worst <= 1e-12, "worst covariance error %.3g", worst);
    double ll = 0;
    CHECK_STATUS(gmle_model_loglik(m, 0, &ll), GMLE_OK);
    CHECK_REL(ll, sum, 1e-11);
  }
  /* two ill-defined classes (one row each): the lower is named */
  size_t k = 0;
  for (size_t i = 0; i < n; i++) /* classes 37 and 101 keep one row */
    if ((lab[i] != 37 && lab[i] != 101) || i < (size_t)C) {
      memmove(x + k * D, x + i * D, D * sizeof *x);
      lab[k++] = lab[i];
    }
  for (int rep = 0; rep < 6; rep++) {
    gmle_stats *s2 = NULL;
    gmle_model *m2 = NULL;
    CHECK_STATUS(gmle_stats_create(ctx, D, C, &s2), GMLE_OK);
    if (!s2)
      break;
    CHECK_STATUS(gmle_stats_add(s2, x, GMLE_F64, k, D, lab, NULL), GMLE_OK);
    CHECK_STATUS(gmle_fit(s2, &o, &m2), GMLE_E_ILL_DEFINED_COV);
    CHECK_ERROR_HAS(ctx, "class 37 has 1 sample");
    CHECK(m2 == NULL);
    gmle_model_free(m2);
    gmle_stats_free(s2);
  }
done:
  if (have_ref)
    tu_ref_free(&ref);
  gmle_model_free(m);
  gmle_stats_free(st);
  free(x);
  free(a);
  free(b);
  free(lab);
  free(l);
  gmle_context_free(ctx);
}

int main(int argc, char **argv) {
  CHECK_INIT(argc, argv);
  RUN(fit_full_matches_two_pass_f64);
  RUN(fit_full_matches_two_pass_f32);
  RUN(fit_diag_matches_two_pass_f64);
  RUN(fit_diag_matches_two_pass_f32);
  RUN(fit_spherical_matches_two_pass_f64);
  RUN(fit_spherical_matches_two_pass_f32);
  RUN(fit_tied_matches_pooled_two_pass_f64);
  RUN(fit_tied_matches_pooled_two_pass_f32);
  RUN(fit_full_weighted_matches_two_pass_f64);
  RUN(fit_tied_weighted_matches_two_pass_f64);
  RUN(fit_many_classes_300_matches_two_pass_f64);
  RUN(fit_wide_d257_odd_stride_matches_two_pass_f32);
  RUN(fit_wide_d257_diag_matches_two_pass_f64);
  RUN(fit_accuracy_contract_f32_mean_over_std_1e4_d40_c10_n2e6);
  RUN(fit_accuracy_contract_f64_mean_over_std_1e4_d40_c10_n2e6);
  RUN(fit_options_init_sets_documented_defaults);
  RUN(fit_priors_default_to_weighted_class_fractions);
  RUN(fit_given_priors_are_used_and_validated);
  RUN(fit_rejects_invalid_options_and_arguments);
  RUN(fit_rel_floor_default_is_relative_to_the_feature_over_all_data);
  RUN(fit_default_floor_keeps_contract_for_classes_far_apart_f32);
  RUN(fit_default_floor_is_equivariant_to_each_feature_scale);
  RUN(fit_default_is_the_plain_mle_for_features_from_1e_3_to_1e3);
  RUN(fit_extreme_scales_keep_the_contract_or_say_why_not);
  RUN(fit_abs_floor_adds_to_the_diagonal);
  RUN(fit_max_condition_floors_eigenvalues_to_bound_condition);
  RUN(fit_oas_shrinkage_matches_formula);
  RUN(fit_report_fields_describe_each_class);
  RUN(fit_loglik_closed_form_equals_sum_of_row_log_densities);
  RUN(fit_loglik_closed_form_with_floor_and_weights_equals_direct_sum);
  RUN(fit_loglik_at_mle_is_minus_half_n_d_log2pi_logdet_d);
  RUN(fit_bic_aic_use_the_parameter_count_of_each_type);
  RUN(fit_many_full_classes_on_threads_match_reference_and_lowest_error);
  return CHECK_DONE();
}
