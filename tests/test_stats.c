/* test_stats.c -- sufficient statistics: create/add/merge/clone, getters,
 * atomicity of failing updates, chunking and order independence, weights,
 * DIAG mode, and bit-reproducibility of fits.
 *
 * Every number is checked against the long double two-pass reference of
 * testutil (tu_ref_compute), or against another accumulation order of the
 * same data with the tolerances of the accuracy contract:
 *   float64 input: relative error <= 1e-12 (means, covariances);
 *   float32 input: means <= 1e-7, ||dSigma||_F / ||Sigma||_F <= 1e-6. */
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

static gmle_context *new_ctx(void) { return tu_context(); }

static gmle_stats *new_stats(gmle_context *ctx, size_t d, size_t c) {
  gmle_stats *st = NULL;
  gmle_status s = gmle_stats_create(ctx, d, c, &st);
  if (s != GMLE_OK) {
    printf("  gmle_stats_create(%zu, %zu): %s (%s)\n", d, c,
           gmle_status_name(s), gmle_context_error(ctx));
    return NULL;
  }
  return st;
}

static gmle_stats *clone_of(const gmle_stats *st) {
  gmle_stats *out = NULL;
  if (gmle_stats_clone(st, &out) != GMLE_OK)
    return NULL;
  return out;
}

/* Options of an exact fit (no floor at all). */
static gmle_fit_options exact_opts(gmle_cov_type cov) {
  gmle_fit_options o;
  gmle_fit_options_init(&o);
  o.cov = cov;
  o.rel_floor = 0.0;
  o.abs_floor = 0.0;
  return o;
}

/* Compare statistics with the reference: per-class weight (1e-12), means
 * (relative to max(|mu_j|, sigma_j)) and exact full covariance (relative
 * Frobenius). */
static void check_vs_ref(const gmle_stats *st, const tu_ref *ref,
                         double tol_mean, double tol_cov, const char *what) {
  size_t d = ref->dim, c = ref->n_classes;
  double *mean = malloc(d * sizeof *mean), *rmean = malloc(d * sizeof *rmean);
  double *scale = malloc(d * sizeof *scale);
  double *cov = malloc(d * d * sizeof *cov), *rcov = malloc(d * d * sizeof *rcov);
  gmle_fit_options o = exact_opts(gmle_stats_get_mode(st) == GMLE_STATS_DIAG
                                      ? GMLE_COV_DIAG
                                      : GMLE_COV_FULL);
  gmle_model *m = NULL;
  gmle_status fs = gmle_fit(st, &o, &m);
  CHECK_MSG(fs == GMLE_OK, "%s: fit %s", what, gmle_status_name(fs));
  for (size_t k = 0; k < c && mean && rmean && scale && cov && rcov; k++) {
    double w = -1.0;
    uint64_t rows = 0;
    CHECK_STATUS(gmle_stats_weight(st, k, &w), GMLE_OK);
    CHECK_STATUS(gmle_stats_rows(st, k, &rows), GMLE_OK);
    CHECK_MSG(fabs(w - (double)ref->weight[k]) <=
                  TOL64 * (double)ref->weight[k],
              "%s: class %zu weight %.17g, ref %.17g", what, k, w,
              (double)ref->weight[k]);
    CHECK_MSG(rows == ref->rows[k], "%s: class %zu rows %llu, ref %llu",
              what, k, (unsigned long long)rows,
              (unsigned long long)ref->rows[k]);
    CHECK_STATUS(gmle_stats_mean(st, k, mean), GMLE_OK);
    tu_ref_mean(ref, k, rmean);
    for (size_t j = 0; j < d; j++)
      scale[j] = sqrt((double)ref->cov[k * d * d + j * d + j]);
    double em = tu_max_rel_err(mean, rmean, scale, d);
    CHECK_MSG(em <= tol_mean, "%s: class %zu mean rel err %.3g > %.3g",
              what, k, em, tol_mean);
    if (fs == GMLE_OK) {
      CHECK_STATUS(gmle_model_covariance(m, k, cov), GMLE_OK);
      tu_ref_cov(ref, o.cov, k, rcov);
      double ec = tu_rel_frobenius(cov, rcov, d * d);
      CHECK_MSG(ec <= tol_cov, "%s: class %zu cov rel err %.3g > %.3g", what,
                k, ec, tol_cov);
    }
  }
  gmle_model_free(m);
  free(mean);
  free(rmean);
  free(scale);
  free(cov);
  free(rcov);
}

/* Compare two statistics objects over the same data (weights, rows, means,
 * exact covariances). */
static void check_same_stats(const gmle_stats *a, const gmle_stats *b,
                             double tol_mean, double tol_cov,
                             const char *what) {
  size_t d = gmle_stats_dim(a), c = gmle_stats_n_classes(a);
  CHECK_MSG(d == gmle_stats_dim(b) && c == gmle_stats_n_classes(b),
            "%s: shapes differ", what);
  if (d != gmle_stats_dim(b) || c != gmle_stats_n_classes(b))
    return;
  gmle_cov_type ct = gmle_stats_get_mode(a) == GMLE_STATS_DIAG
                         ? GMLE_COV_DIAG
                         : GMLE_COV_FULL;
  gmle_fit_options o = exact_opts(ct);
  gmle_model *ma = NULL, *mb = NULL;
  CHECK_STATUS(gmle_fit(a, &o, &ma), GMLE_OK);
  CHECK_STATUS(gmle_fit(b, &o, &mb), GMLE_OK);
  double *va = malloc(d * d * sizeof *va), *vb = malloc(d * d * sizeof *vb);
  for (size_t k = 0; k < c && va && vb; k++) {
    double wa = 0, wb = 0;
    uint64_t ra = 0, rb = 0;
    CHECK_STATUS(gmle_stats_weight(a, k, &wa), GMLE_OK);
    CHECK_STATUS(gmle_stats_weight(b, k, &wb), GMLE_OK);
    CHECK_MSG(fabs(wa - wb) <= TOL64 * fabs(wb),
              "%s: class %zu weights %.17g vs %.17g", what, k, wa, wb);
    CHECK_STATUS(gmle_stats_rows(a, k, &ra), GMLE_OK);
    CHECK_STATUS(gmle_stats_rows(b, k, &rb), GMLE_OK);
    CHECK_MSG(ra == rb, "%s: class %zu rows %llu vs %llu", what, k,
              (unsigned long long)ra, (unsigned long long)rb);
    if (!ma || !mb)
      continue;
    CHECK_STATUS(gmle_model_covariance(mb, k, vb), GMLE_OK);
    double *scale = malloc(d * sizeof *scale);
    if (!scale)
      continue;
    for (size_t j = 0; j < d; j++)
      scale[j] = sqrt(fabs(vb[j * d + j]));
    CHECK_STATUS(gmle_model_covariance(ma, k, va), GMLE_OK);
    double ec = tu_rel_frobenius(va, vb, d * d);
    CHECK_MSG(ec <= tol_cov, "%s: class %zu cov rel diff %.3g > %.3g", what,
              k, ec, tol_cov);
    CHECK_STATUS(gmle_stats_mean(a, k, va), GMLE_OK);
    CHECK_STATUS(gmle_stats_mean(b, k, vb), GMLE_OK);
    double em = tu_max_rel_err(va, vb, scale, d);
    CHECK_MSG(em <= tol_mean, "%s: class %zu mean rel diff %.3g > %.3g", what,
              k, em, tol_mean);
    free(scale);
  }
  free(va);
  free(vb);
  gmle_model_free(ma);
  gmle_model_free(mb);
}

/* ---------------------------------------------------------------------- */

TEST(stats_create_validates_arguments_and_starts_empty) {
  gmle_context *ctx = new_ctx();
  CHECK(ctx != NULL);
  if (!ctx)
    return;
  gmle_stats *st = NULL;
  CHECK_STATUS(gmle_stats_create(ctx, 0, 2, &st), GMLE_E_INVALID_ARG);
  CHECK(st == NULL);
  CHECK_STATUS(gmle_stats_create(ctx, 3, 0, &st), GMLE_E_INVALID_ARG);
  CHECK(st == NULL);
  CHECK_STATUS(gmle_stats_create(ctx, 3, 2, NULL), GMLE_E_INVALID_ARG);
  CHECK_STATUS(gmle_stats_create(NULL, 3, 2, &st), GMLE_E_INVALID_ARG);
  /* dim*dim*C*8 overflows size_t */
  gmle_status big = gmle_stats_create(ctx, (size_t)1 << 31, 4, &st);
  CHECK_MSG(big == GMLE_E_INVALID_ARG || big == GMLE_E_TOO_LARGE,
            "huge dim: %s", gmle_status_name(big));
  CHECK(st == NULL);
  gmle_stats_free(st);
  st = NULL;

  CHECK_STATUS(gmle_stats_create(ctx, 3, 2, &st), GMLE_OK);
  if (st) {
    CHECK(gmle_stats_dim(st) == 3);
    CHECK(gmle_stats_n_classes(st) == 2);
    CHECK(gmle_stats_get_mode(st) == GMLE_STATS_FULL);
    uint64_t rows = 99;
    double w = 99.0, mean[3];
    for (size_t k = 0; k < 2; k++) {
      CHECK_STATUS(gmle_stats_rows(st, k, &rows), GMLE_OK);
      CHECK(rows == 0);
      CHECK_STATUS(gmle_stats_weight(st, k, &w), GMLE_OK);
      CHECK(w == 0.0);
      CHECK_STATUS(gmle_stats_mean(st, k, mean), GMLE_E_EMPTY);
    }
    CHECK_STATUS(gmle_stats_rows(st, 2, &rows), GMLE_E_INVALID_ARG);
    CHECK_STATUS(gmle_stats_weight(st, 2, &w), GMLE_E_INVALID_ARG);
    CHECK_STATUS(gmle_stats_mean(st, 2, mean), GMLE_E_INVALID_ARG);
    gmle_model *m = NULL;
    CHECK_STATUS(gmle_fit(st, NULL, &m), GMLE_E_EMPTY);
    CHECK(m == NULL);
    gmle_model_free(m);
  }
  gmle_stats_free(st);
  gmle_stats_free(NULL); /* no-op */
  gmle_context_free(ctx);
}

TEST(stats_add_f64_weighted_matches_two_pass_reference) {
  gmle_context *ctx = new_ctx();
  tu_dataset ds;
  CHECK(ctx != NULL);
  if (!ctx || tu_dataset_make(&ds, 11, 20000, 5, 3, GMLE_F64, 5, 0.0, 1) != 0) {
    CHECK(!"setup");
    gmle_context_free(ctx);
    return;
  }
  gmle_stats *st = new_stats(ctx, 5, 3);
  CHECK(st != NULL);
  if (st) {
    CHECK_STATUS(tu_dataset_add(st, &ds, 0, ds.n), GMLE_OK);
    tu_ref ref;
    CHECK(tu_ref_compute(&ref, ds.x, ds.dtype, ds.n, ds.stride, ds.d, ds.c,
                         ds.labels, ds.weights) == 0);
    check_vs_ref(st, &ref, TOL64, TOL64, "f64 weighted");
    tu_ref_free(&ref);
  }
  gmle_stats_free(st);
  tu_dataset_free(&ds);
  gmle_context_free(ctx);
}

TEST(stats_add_f32_strided_offset_matches_reference_of_stored_values) {
  /* float32 rows with a row stride larger than D (padding holds NaN and
   * must not be read) and means around 1e3 with sd ~1. */
  gmle_context *ctx = new_ctx();
  tu_dataset ds;
  CHECK(ctx != NULL);
  if (!ctx ||
      tu_dataset_make(&ds, 12, 30000, 6, 2, GMLE_F32, 9, 1000.0, 0) != 0) {
    CHECK(!"setup");
    gmle_context_free(ctx);
    return;
  }
  gmle_stats *st = new_stats(ctx, 6, 2);
  CHECK(st != NULL);
  if (st) {
    CHECK_STATUS(tu_dataset_add(st, &ds, 0, ds.n), GMLE_OK);
    tu_ref ref;
    CHECK(tu_ref_compute(&ref, ds.x, ds.dtype, ds.n, ds.stride, ds.d, ds.c,
                         ds.labels, NULL) == 0);
    check_vs_ref(st, &ref, TOL32_MEAN, TOL32_COV, "f32 strided");
    tu_ref_free(&ref);
  }
  gmle_stats_free(st);
  tu_dataset_free(&ds);
  gmle_context_free(ctx);
}

TEST(stats_add_rejects_bad_arguments) {
  gmle_context *ctx = new_ctx();
  CHECK(ctx != NULL);
  if (!ctx)
    return;
  gmle_stats *st = new_stats(ctx, 4, 2), *before = NULL;
  double x[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  int32_t lab[2] = {0, 1};
  if (st) {
    CHECK_STATUS(gmle_stats_add(st, x, GMLE_F64, 2, 4, lab, NULL), GMLE_OK);
    before = clone_of(st);
  }
  CHECK(st && before);
  if (st && before) {
    CHECK_STATUS(gmle_stats_add(st, NULL, GMLE_F64, 2, 4, lab, NULL),
                 GMLE_E_INVALID_ARG);
    CHECK_STATUS(gmle_stats_add(st, x, GMLE_F64, 2, 3, lab, NULL),
                 GMLE_E_INVALID_ARG); /* row_stride < dim */
    CHECK_STATUS(gmle_stats_add(st, x, (gmle_dtype)7, 2, 4, lab, NULL),
                 GMLE_E_INVALID_ARG);
    /* two classes: labels are required */
    CHECK_STATUS(gmle_stats_add(st, x, GMLE_F64, 2, 4, NULL, NULL),
                 GMLE_E_INVALID_ARG);
    CHECK_STATUS(gmle_stats_add(NULL, x, GMLE_F64, 2, 4, lab, NULL),
                 GMLE_E_INVALID_ARG);
    CHECK(tu_stats_raw_equal(st, before));
  }
  gmle_stats_free(st);
  gmle_stats_free(before);
  gmle_context_free(ctx);
}

TEST(stats_merge_equals_one_pass_f64) {
  gmle_context *ctx = new_ctx();
  tu_dataset ds;
  CHECK(ctx != NULL);
  if (!ctx || tu_dataset_make(&ds, 21, 12000, 5, 3, GMLE_F64, 5, 50.0, 1) != 0) {
    CHECK(!"setup");
    gmle_context_free(ctx);
    return;
  }
  gmle_stats *one = new_stats(ctx, 5, 3);
  gmle_stats *parts[3] = {new_stats(ctx, 5, 3), new_stats(ctx, 5, 3),
                          new_stats(ctx, 5, 3)};
  if (one && parts[0] && parts[1] && parts[2]) {
    CHECK_STATUS(tu_dataset_add(one, &ds, 0, ds.n), GMLE_OK);
    /* three uneven parts, each with its own shifts */
    CHECK_STATUS(tu_dataset_add(parts[0], &ds, 0, 1000), GMLE_OK);
    CHECK_STATUS(tu_dataset_add(parts[1], &ds, 1000, 7777), GMLE_OK);
    CHECK_STATUS(tu_dataset_add(parts[2], &ds, 8777, ds.n - 8777), GMLE_OK);
    CHECK_STATUS(gmle_stats_merge(parts[0], parts[1]), GMLE_OK);
    CHECK_STATUS(gmle_stats_merge(parts[0], parts[2]), GMLE_OK);
    check_same_stats(parts[0], one, TOL64, TOL64, "merge vs one pass");
    tu_ref ref;
    CHECK(tu_ref_compute(&ref, ds.x, ds.dtype, ds.n, ds.stride, ds.d, ds.c,
                         ds.labels, ds.weights) == 0);
    check_vs_ref(parts[0], &ref, TOL64, TOL64, "merged vs reference");
    tu_ref_free(&ref);
  } else {
    CHECK(!"setup");
  }
  gmle_stats_free(one);
  for (int i = 0; i < 3; i++)
    gmle_stats_free(parts[i]);
  tu_dataset_free(&ds);
  gmle_context_free(ctx);
}

TEST(stats_merge_disjoint_classes_equals_one_pass) {
  /* dst has seen only class 0, src only classes 1 and 2: every class must
   * come out exactly as from one pass (shifts adopted, nothing lost). */
  gmle_context *ctx = new_ctx();
  tu_dataset ds;
  CHECK(ctx != NULL);
  if (!ctx || tu_dataset_make(&ds, 23, 6000, 4, 3, GMLE_F64, 4, 30.0, 1)) {
    CHECK(!"setup");
    gmle_context_free(ctx);
    return;
  }
  /* stable partition: class 0 rows first */
  tu_dataset sorted;
  if (tu_dataset_make(&sorted, 23, 6000, 4, 3, GMLE_F64, 4, 30.0, 1)) {
    CHECK(!"setup");
    tu_dataset_free(&ds);
    gmle_context_free(ctx);
    return;
  }
  size_t at = 0, n0 = 0;
  for (int pass = 0; pass < 2; pass++)
    for (size_t i = 0; i < ds.n; i++) {
      if ((ds.labels[i] == 0) != (pass == 0))
        continue;
      memcpy((double *)sorted.x + at * 4, (double *)ds.x + i * 4,
             4 * sizeof(double));
      sorted.labels[at] = ds.labels[i];
      sorted.weights[at] = ds.weights[i];
      at++;
      n0 += pass == 0;
    }
  gmle_stats *a = new_stats(ctx, 4, 3), *b = new_stats(ctx, 4, 3),
             *one = new_stats(ctx, 4, 3);
  if (a && b && one) {
    CHECK_STATUS(tu_dataset_add(a, &sorted, 0, n0), GMLE_OK);
    CHECK_STATUS(tu_dataset_add(b, &sorted, n0, sorted.n - n0), GMLE_OK);
    CHECK_STATUS(tu_dataset_add(one, &ds, 0, ds.n), GMLE_OK);
    gmle_stats *b2 = clone_of(b);
    CHECK_STATUS(gmle_stats_merge(a, b), GMLE_OK);
    check_same_stats(a, one, TOL64, TOL64, "class 0 + classes 1, 2");
    if (b2) { /* and the other way round */
      gmle_stats *a2 = new_stats(ctx, 4, 3);
      if (a2) {
        CHECK_STATUS(tu_dataset_add(a2, &sorted, 0, n0), GMLE_OK);
        CHECK_STATUS(gmle_stats_merge(b2, a2), GMLE_OK);
        check_same_stats(b2, one, TOL64, TOL64, "classes 1, 2 + class 0");
      }
      gmle_stats_free(a2);
    }
    gmle_stats_free(b2);
    tu_ref ref;
    CHECK(tu_ref_dataset(&ref, &ds) == 0);
    check_vs_ref(a, &ref, TOL64, TOL64, "disjoint merge vs reference");
    tu_ref_free(&ref);
  } else {
    CHECK(!"setup");
  }
  gmle_stats_free(a);
  gmle_stats_free(b);
  gmle_stats_free(one);
  tu_dataset_free(&ds);
  tu_dataset_free(&sorted);
  gmle_context_free(ctx);
}

TEST(stats_merge_distant_shifts_is_exact_f64) {
  /* The two accumulators see the same class first through very different
   * rows (shift near 0 and shift near 1e6): the pairwise update must still
   * be exact to 1e-12. */
  gmle_context *ctx = new_ctx();
  CHECK(ctx != NULL);
  if (!ctx)
    return;
  size_t n = 4000, d = 3;
  double *x = malloc(n * d * sizeof *x);
  tu_rng r;
  tu_seed(&r, 77);
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < d; j++)
      x[i * d + j] = (i < n / 2 ? 0.0 : 1e6) + (double)(j + 1) * tu_normal(&r);
  gmle_stats *a = new_stats(ctx, d, 1), *b = new_stats(ctx, d, 1);
  if (x && a && b) {
    CHECK_STATUS(gmle_stats_add(a, x, GMLE_F64, n / 2, d, NULL, NULL),
                 GMLE_OK);
    CHECK_STATUS(gmle_stats_add(b, x + (n / 2) * d, GMLE_F64, n - n / 2, d,
                                NULL, NULL),
                 GMLE_OK);
    CHECK_STATUS(gmle_stats_merge(a, b), GMLE_OK);
    tu_ref ref;
    CHECK(tu_ref_compute(&ref, x, GMLE_F64, n, d, d, 1, NULL, NULL) == 0);
    check_vs_ref(a, &ref, TOL64, TOL64, "distant shifts");
    tu_ref_free(&ref);
  } else {
    CHECK(!"setup");
  }
  gmle_stats_free(a);
  gmle_stats_free(b);
  free(x);
  gmle_context_free(ctx);
}

/* Accumulate ds in chunks of the given sizes (cycled), into one object. */
static gmle_status add_in_chunks(gmle_stats *st, const tu_dataset *ds,
                                 const size_t *sizes, size_t n_sizes) {
  size_t at = 0, i = 0;
  while (at < ds->n) {
    size_t k = sizes[i++ % n_sizes];
    if (k > ds->n - at)
      k = ds->n - at;
    gmle_status s = tu_dataset_add(st, ds, at, k);
    if (s != GMLE_OK)
      return s;
    at += k;
  }
  return GMLE_OK;
}

static void rechunkings_equal_single_pass(gmle_dtype dtype, double offset,
                                          double tol_mean, double tol_cov,
                                          gmle_stats_mode mode) {
  gmle_context *ctx = new_ctx();
  tu_dataset ds;
  CHECK(ctx != NULL);
  if (!ctx ||
      tu_dataset_make(&ds, 31, 6000, 4, 3, dtype, 4, offset, 1) != 0) {
    CHECK(!"setup");
    gmle_context_free(ctx);
    return;
  }
  gmle_stats *one = NULL;
  CHECK_STATUS(gmle_stats_create_mode(ctx, 4, 3, mode, &one), GMLE_OK);
  if (one)
    CHECK_STATUS(tu_dataset_add(one, &ds, 0, ds.n), GMLE_OK);
  tu_ref ref;
  CHECK(tu_ref_compute(&ref, ds.x, ds.dtype, ds.n, ds.stride, ds.d, ds.c,
                       ds.labels, ds.weights) == 0);
  if (one)
    check_vs_ref(one, &ref, tol_mean, tol_cov, "single pass");
  static const size_t fixed[] = {1, 11, 20, 37, 4096};
  size_t ragged[64];
  tu_rng r;
  tu_seed(&r, 5);
  for (size_t i = 0; i < 64; i++)
    ragged[i] = 1 + tu_below(&r, 400);
  for (size_t v = 0; v < 6 && one; v++) {
    gmle_stats *st = NULL;
    CHECK_STATUS(gmle_stats_create_mode(ctx, 4, 3, mode, &st), GMLE_OK);
    if (!st)
      continue;
    char what[64];
    if (v < 5) {
      snprintf(what, sizeof what, "chunks of %zu", fixed[v]);
      CHECK_STATUS(add_in_chunks(st, &ds, &fixed[v], 1), GMLE_OK);
    } else {
      snprintf(what, sizeof what, "ragged chunks");
      CHECK_STATUS(add_in_chunks(st, &ds, ragged, 64), GMLE_OK);
    }
    check_same_stats(st, one, tol_mean, tol_cov, what);
    check_vs_ref(st, &ref, tol_mean, tol_cov, what);
    gmle_stats_free(st);
  }
  /* the same ragged chunks, each into its own object, merged in a tree */
  if (one) {
    gmle_stats *part[16] = {0};
    size_t at = 0, np = 0;
    int ok = 1;
    while (at < ds.n && np < 16) {
      size_t k = np == 15 ? ds.n - at : ragged[np] * 3;
      if (k > ds.n - at)
        k = ds.n - at;
      if (gmle_stats_create_mode(ctx, 4, 3, mode, &part[np]) != GMLE_OK ||
          tu_dataset_add(part[np], &ds, at, k) != GMLE_OK)
        ok = 0;
      at += k;
      np++;
    }
    CHECK(ok && at == ds.n);
    for (size_t step = 1; ok && step < np; step *= 2)
      for (size_t i = 0; i + step < np; i += 2 * step)
        CHECK_STATUS(gmle_stats_merge(part[i], part[i + step]), GMLE_OK);
    if (ok)
      check_same_stats(part[0], one, tol_mean, tol_cov, "tree of merges");
    for (size_t i = 0; i < 16; i++)
      gmle_stats_free(part[i]);
  }
  tu_ref_free(&ref);
  gmle_stats_free(one);
  tu_dataset_free(&ds);
  gmle_context_free(ctx);
}

TEST(stats_rechunkings_equal_single_pass_f64) {
  rechunkings_equal_single_pass(GMLE_F64, 20.0, TOL64, TOL64,
                                GMLE_STATS_FULL);
}

TEST(stats_rechunkings_equal_single_pass_f32) {
  rechunkings_equal_single_pass(GMLE_F32, 1000.0, TOL32_MEAN, TOL32_COV,
                                GMLE_STATS_FULL);
}

TEST(stats_rechunkings_equal_single_pass_diag_mode_f64) {
  rechunkings_equal_single_pass(GMLE_F64, 20.0, TOL64, TOL64,
                                GMLE_STATS_DIAG);
}

static void permutation_equals_single_pass(gmle_dtype dtype, double offset,
                                           double tol_mean, double tol_cov) {
  gmle_context *ctx = new_ctx();
  tu_dataset ds, pd;
  CHECK(ctx != NULL);
  if (!ctx ||
      tu_dataset_make(&ds, 41, 8000, 5, 2, dtype, 5, offset, 1) != 0) {
    CHECK(!"setup");
    gmle_context_free(ctx);
    return;
  }
  if (tu_dataset_make(&pd, 41, 8000, 5, 2, dtype, 5, offset, 1) != 0) {
    CHECK(!"setup");
    tu_dataset_free(&ds);
    gmle_context_free(ctx);
    return;
  }
  size_t *perm = malloc(ds.n * sizeof *perm);
  tu_rng r;
  tu_seed(&r, 4242);
  if (perm) {
    tu_permutation(&r, ds.n, perm);
    for (size_t i = 0; i < ds.n; i++) {
      for (size_t j = 0; j < ds.d; j++)
        tu_set(pd.x, dtype, pd.stride, i, j,
               tu_get(ds.x, dtype, ds.stride, perm[i], j));
      pd.labels[i] = ds.labels[perm[i]];
      pd.weights[i] = ds.weights[perm[i]];
    }
    gmle_stats *a = new_stats(ctx, 5, 2), *b = new_stats(ctx, 5, 2);
    if (a && b) {
      CHECK_STATUS(tu_dataset_add(a, &ds, 0, ds.n), GMLE_OK);
      CHECK_STATUS(tu_dataset_add(b, &pd, 0, pd.n), GMLE_OK);
      check_same_stats(b, a, tol_mean, tol_cov, "permuted rows");
      tu_ref ref;
      CHECK(tu_ref_compute(&ref, ds.x, ds.dtype, ds.n, ds.stride, ds.d, ds.c,
                           ds.labels, ds.weights) == 0);
      check_vs_ref(b, &ref, tol_mean, tol_cov, "permuted vs reference");
      tu_ref_free(&ref);
    } else {
      CHECK(!"setup");
    }
    gmle_stats_free(a);
    gmle_stats_free(b);
  }
  free(perm);
  tu_dataset_free(&ds);
  tu_dataset_free(&pd);
  gmle_context_free(ctx);
}

TEST(stats_row_permutation_equals_single_pass_f64) {
  permutation_equals_single_pass(GMLE_F64, -30.0, TOL64, TOL64);
}

TEST(stats_row_permutation_equals_single_pass_f32) {
  permutation_equals_single_pass(GMLE_F32, 1000.0, TOL32_MEAN, TOL32_COV);
}

TEST(stats_merge_with_empty_is_identity_bitwise) {
  gmle_context *ctx = new_ctx();
  tu_dataset ds;
  CHECK(ctx != NULL);
  if (!ctx || tu_dataset_make(&ds, 51, 3000, 4, 3, GMLE_F64, 4, 7.0, 1) != 0) {
    CHECK(!"setup");
    gmle_context_free(ctx);
    return;
  }
  gmle_stats *a = new_stats(ctx, 4, 3), *e = new_stats(ctx, 4, 3);
  gmle_stats *a0 = NULL, *e2 = NULL;
  if (a && e) {
    CHECK_STATUS(tu_dataset_add(a, &ds, 0, ds.n), GMLE_OK);
    a0 = clone_of(a);
    e2 = clone_of(e);
  }
  CHECK(a0 && e2);
  if (a0 && e2) {
    tu_snapshot before, after, via_empty;
    CHECK(tu_snapshot_take(a, &before) == 0);
    CHECK(before.fit_status == GMLE_OK);
    /* a += empty: a unchanged bit for bit */
    CHECK_STATUS(gmle_stats_merge(a, e), GMLE_OK);
    CHECK(tu_stats_raw_equal(a, a0));
    CHECK(tu_snapshot_take(a, &after) == 0);
    CHECK(tu_snapshot_equal(&before, &after));
    /* empty += a: equals a bit for bit (every observable) */
    CHECK_STATUS(gmle_stats_merge(e2, a0), GMLE_OK);
    CHECK(tu_snapshot_take(e2, &via_empty) == 0);
    CHECK(tu_snapshot_equal(&before, &via_empty));
    /* an empty merged into an empty stays empty */
    gmle_stats *e3 = new_stats(ctx, 4, 3);
    if (e3) {
      CHECK_STATUS(gmle_stats_merge(e3, e), GMLE_OK);
      CHECK(tu_stats_raw_equal(e3, e));
      gmle_model *m = NULL;
      CHECK_STATUS(gmle_fit(e3, NULL, &m), GMLE_E_EMPTY);
      gmle_model_free(m);
    }
    gmle_stats_free(e3);
    tu_snapshot_free(&before);
    tu_snapshot_free(&after);
    tu_snapshot_free(&via_empty);
  }
  gmle_stats_free(a);
  gmle_stats_free(a0);
  gmle_stats_free(e);
  gmle_stats_free(e2);
  tu_dataset_free(&ds);
  gmle_context_free(ctx);
}

TEST(stats_merge_is_associative_and_commutative) {
  gmle_context *ctx = new_ctx();
  tu_dataset ds;
  CHECK(ctx != NULL);
  if (!ctx || tu_dataset_make(&ds, 61, 9000, 4, 3, GMLE_F64, 4, 100.0, 1) != 0) {
    CHECK(!"setup");
    gmle_context_free(ctx);
    return;
  }
  gmle_stats *p[3] = {new_stats(ctx, 4, 3), new_stats(ctx, 4, 3),
                      new_stats(ctx, 4, 3)};
  if (p[0] && p[1] && p[2]) {
    CHECK_STATUS(tu_dataset_add(p[0], &ds, 0, 2000), GMLE_OK);
    CHECK_STATUS(tu_dataset_add(p[1], &ds, 2000, 3000), GMLE_OK);
    CHECK_STATUS(tu_dataset_add(p[2], &ds, 5000, 4000), GMLE_OK);
    /* (a+b)+c */
    gmle_stats *l = clone_of(p[0]);
    /* a+(b+c) */
    gmle_stats *bc = clone_of(p[1]), *rr = clone_of(p[0]);
    /* (c+b)+a */
    gmle_stats *cba = clone_of(p[2]);
    /* b+a, a+b */
    gmle_stats *ba = clone_of(p[1]), *ab = clone_of(p[0]);
    CHECK(l && bc && rr && cba && ba && ab);
    if (l && bc && rr && cba && ba && ab) {
      CHECK_STATUS(gmle_stats_merge(l, p[1]), GMLE_OK);
      CHECK_STATUS(gmle_stats_merge(l, p[2]), GMLE_OK);
      CHECK_STATUS(gmle_stats_merge(bc, p[2]), GMLE_OK);
      CHECK_STATUS(gmle_stats_merge(rr, bc), GMLE_OK);
      CHECK_STATUS(gmle_stats_merge(cba, p[1]), GMLE_OK);
      CHECK_STATUS(gmle_stats_merge(cba, p[0]), GMLE_OK);
      CHECK_STATUS(gmle_stats_merge(ba, p[0]), GMLE_OK);
      CHECK_STATUS(gmle_stats_merge(ab, p[1]), GMLE_OK);
      check_same_stats(l, rr, TOL64, TOL64, "(a+b)+c vs a+(b+c)");
      check_same_stats(cba, l, TOL64, TOL64, "(c+b)+a vs (a+b)+c");
      check_same_stats(ba, ab, TOL64, TOL64, "b+a vs a+b");
      tu_ref ref;
      CHECK(tu_ref_compute(&ref, ds.x, ds.dtype, ds.n, ds.stride, ds.d, ds.c,
                           ds.labels, ds.weights) == 0);
      check_vs_ref(rr, &ref, TOL64, TOL64, "a+(b+c) vs reference");
      tu_ref_free(&ref);
    }
    gmle_stats_free(l);
    gmle_stats_free(bc);
    gmle_stats_free(rr);
    gmle_stats_free(cba);
    gmle_stats_free(ba);
    gmle_stats_free(ab);
  } else {
    CHECK(!"setup");
  }
  for (int i = 0; i < 3; i++)
    gmle_stats_free(p[i]);
  tu_dataset_free(&ds);
  gmle_context_free(ctx);
}

TEST(stats_merge_with_itself_equals_data_added_twice) {
  gmle_context *ctx = new_ctx();
  tu_dataset ds;
  CHECK(ctx != NULL);
  if (!ctx || tu_dataset_make(&ds, 62, 3000, 3, 2, GMLE_F64, 3, 5.0, 0) != 0) {
    CHECK(!"setup");
    gmle_context_free(ctx);
    return;
  }
  gmle_stats *a = new_stats(ctx, 3, 2), *twice = new_stats(ctx, 3, 2);
  gmle_stats *a0 = NULL;
  if (a && twice) {
    CHECK_STATUS(tu_dataset_add(a, &ds, 0, ds.n), GMLE_OK);
    CHECK_STATUS(tu_dataset_add(twice, &ds, 0, ds.n), GMLE_OK);
    CHECK_STATUS(tu_dataset_add(twice, &ds, 0, ds.n), GMLE_OK);
    a0 = clone_of(a);
  }
  CHECK(a0 != NULL);
  if (a0) {
    /* aliasing dst == src: either refused (unchanged), or the same as
     * accumulating the data twice */
    gmle_status s = gmle_stats_merge(a, a);
    CHECK_MSG(s == GMLE_OK || s == GMLE_E_INVALID_ARG, "self merge: %s",
              gmle_status_name(s));
    if (s == GMLE_OK)
      check_same_stats(a, twice, TOL64, TOL64, "a+a vs data twice");
    else
      CHECK(tu_stats_raw_equal(a, a0));
    /* merging a copy is always allowed */
    gmle_stats *b = clone_of(a0);
    if (b) {
      CHECK_STATUS(gmle_stats_merge(b, a0), GMLE_OK);
      check_same_stats(b, twice, TOL64, TOL64, "a+copy(a) vs data twice");
    }
    gmle_stats_free(b);
  }
  gmle_stats_free(a);
  gmle_stats_free(a0);
  gmle_stats_free(twice);
  tu_dataset_free(&ds);
  gmle_context_free(ctx);
}

TEST(stats_merge_rejects_mismatched_shapes_and_modes) {
  gmle_context *ctx = new_ctx();
  CHECK(ctx != NULL);
  if (!ctx)
    return;
  gmle_stats *a = new_stats(ctx, 3, 2), *d4 = new_stats(ctx, 4, 2),
             *c3 = new_stats(ctx, 3, 3), *dg = NULL, *a0 = NULL;
  CHECK_STATUS(gmle_stats_create_mode(ctx, 3, 2, GMLE_STATS_DIAG, &dg),
               GMLE_OK);
  double x[6] = {1, 2, 3, 4, 5, 7};
  int32_t lab[2] = {0, 1};
  if (a && d4 && c3 && dg) {
    CHECK_STATUS(gmle_stats_add(a, x, GMLE_F64, 2, 3, lab, NULL), GMLE_OK);
    CHECK_STATUS(gmle_stats_add(dg, x, GMLE_F64, 2, 3, lab, NULL), GMLE_OK);
    a0 = clone_of(a);
    CHECK(a0 != NULL);
    CHECK_STATUS(gmle_stats_merge(a, d4), GMLE_E_DIM_MISMATCH);
    CHECK_STATUS(gmle_stats_merge(a, c3), GMLE_E_DIM_MISMATCH);
    CHECK_STATUS(gmle_stats_merge(a, dg), GMLE_E_DIM_MISMATCH);
    CHECK_STATUS(gmle_stats_merge(a, NULL), GMLE_E_INVALID_ARG);
    if (a0)
      CHECK(tu_stats_raw_equal(a, a0));
  } else {
    CHECK(!"setup");
  }
  gmle_stats_free(a);
  gmle_stats_free(a0);
  gmle_stats_free(d4);
  gmle_stats_free(c3);
  gmle_stats_free(dg);
  gmle_context_free(ctx);
}

TEST(stats_clone_is_deep_and_bit_identical) {
  gmle_context *ctx = new_ctx();
  tu_dataset ds;
  CHECK(ctx != NULL);
  if (!ctx || tu_dataset_make(&ds, 71, 2000, 3, 2, GMLE_F32, 3, 10.0, 1) != 0) {
    CHECK(!"setup");
    gmle_context_free(ctx);
    return;
  }
  gmle_stats *a = new_stats(ctx, 3, 2), *b = NULL, *a0 = NULL;
  if (a) {
    CHECK_STATUS(tu_dataset_add(a, &ds, 0, 1000), GMLE_OK);
    CHECK_STATUS(gmle_stats_clone(a, &b), GMLE_OK);
    CHECK_STATUS(gmle_stats_clone(a, NULL), GMLE_E_INVALID_ARG);
    a0 = clone_of(a);
  }
  CHECK(b && a0);
  if (b && a0) {
    CHECK(tu_stats_raw_equal(a, b));
    CHECK(gmle_stats_dim(b) == 3 && gmle_stats_n_classes(b) == 2);
    tu_snapshot sa, sb;
    CHECK(tu_snapshot_take(a, &sa) == 0 && tu_snapshot_take(b, &sb) == 0);
    CHECK(tu_snapshot_equal(&sa, &sb));
    tu_snapshot_free(&sa);
    tu_snapshot_free(&sb);
    /* the clone evolves on its own */
    CHECK_STATUS(tu_dataset_add(b, &ds, 1000, 1000), GMLE_OK);
    CHECK(tu_stats_raw_equal(a, a0));
    CHECK(!tu_stats_raw_equal(a, b));
    /* and cloning an empty object gives an empty object */
    gmle_stats *e = new_stats(ctx, 3, 2), *ec = NULL;
    if (e) {
      CHECK_STATUS(gmle_stats_clone(e, &ec), GMLE_OK);
      if (ec)
        CHECK(tu_stats_raw_equal(e, ec));
    }
    gmle_stats_free(e);
    gmle_stats_free(ec);
  }
  gmle_stats_free(a);
  gmle_stats_free(a0);
  gmle_stats_free(b);
  tu_dataset_free(&ds);
  gmle_context_free(ctx);
}

/* A batch of `n` rows that fails for the reason `kind`, at its last row. */
enum bad_kind {
  BAD_NAN,
  BAD_INF_F32,
  BAD_LABEL,
  BAD_NEG_LABEL,
  BAD_NEG_WEIGHT,
  BAD_NAN_WEIGHT,
  BAD_ALL_ZERO_WEIGHTS,
  BAD_OVERFLOW,
  BAD_KINDS
};

static gmle_status add_bad_batch(gmle_stats *st, enum bad_kind kind,
                                 size_t n, size_t d, size_t c,
                                 gmle_status *expect) {
  gmle_dtype dt = kind == BAD_INF_F32 ? GMLE_F32 : GMLE_F64;
  void *x = tu_alloc_data(n, d, dt);
  int32_t *lab = malloc(n * sizeof *lab);
  double *w = malloc(n * sizeof *w);
  if (!x || !lab || !w) {
    free(x);
    free(lab);
    free(w);
    *expect = GMLE_OK;
    return GMLE_E_OUT_OF_MEMORY;
  }
  tu_rng r;
  tu_seed(&r, 1000 + (uint64_t)kind);
  tu_gen_offset(&r, n, d, 2.0, 1.0, dt, d, x);
  tu_labels_cyclic(n, c, lab);
  for (size_t i = 0; i < n; i++)
    w[i] = 1.0;
  const double *wp = NULL;
  switch (kind) {
  case BAD_NAN:
    tu_set(x, dt, d, n - 1, d - 1, NAN);
    *expect = GMLE_E_NONFINITE_INPUT;
    break;
  case BAD_INF_F32:
    tu_set(x, dt, d, n - 1, 0, INFINITY);
    *expect = GMLE_E_NONFINITE_INPUT;
    break;
  case BAD_LABEL:
    lab[n - 1] = (int32_t)c;
    *expect = GMLE_E_BAD_LABEL;
    break;
  case BAD_NEG_LABEL:
    lab[n - 1] = -1;
    *expect = GMLE_E_BAD_LABEL;
    break;
  case BAD_NEG_WEIGHT:
    w[n - 1] = -0.5;
    wp = w;
    *expect = GMLE_E_INVALID_WEIGHTS;
    break;
  case BAD_NAN_WEIGHT:
    w[n - 1] = NAN;
    wp = w;
    *expect = GMLE_E_INVALID_WEIGHTS;
    break;
  case BAD_ALL_ZERO_WEIGHTS:
    for (size_t i = 0; i < n; i++)
      w[i] = 0.0;
    wp = w;
    *expect = GMLE_E_INVALID_WEIGHTS;
    break;
  case BAD_OVERFLOW:
    tu_set(x, dt, d, n - 1, 1, 1e200);
    *expect = GMLE_E_OVERFLOW;
    break;
  case BAD_KINDS:
    break;
  }
  gmle_status s = gmle_stats_add(st, x, dt, n, d, c > 1 ? lab : NULL, wp);
  free(x);
  free(lab);
  free(w);
  return s;
}

TEST(stats_failing_add_leaves_statistics_bit_identical) {
  gmle_context *ctx = new_ctx();
  tu_dataset ds;
  CHECK(ctx != NULL);
  if (!ctx || tu_dataset_make(&ds, 81, 4000, 4, 3, GMLE_F64, 4, 2.0, 0) != 0) {
    CHECK(!"setup");
    gmle_context_free(ctx);
    return;
  }
  gmle_stats *st = new_stats(ctx, 4, 3), *before = NULL;
  tu_snapshot s0;
  memset(&s0, 0, sizeof s0);
  if (st) {
    CHECK_STATUS(tu_dataset_add(st, &ds, 0, 2000), GMLE_OK);
    before = clone_of(st);
    CHECK(tu_snapshot_take(st, &s0) == 0);
  }
  CHECK(before != NULL);
  for (int k = 0; k < BAD_KINDS && before; k++) {
    /* big enough to span several internal blocks; the fault is last */
    gmle_status expect;
    gmle_status got = add_bad_batch(st, (enum bad_kind)k, 20000, 4, 3,
                                    &expect);
    CHECK_MSG(got == expect, "bad kind %d: got %s, expected %s", k,
              gmle_status_name(got), gmle_status_name(expect));
    CHECK_MSG(gmle_context_error(ctx)[0] != '\0',
              "bad kind %d: no error message", k);
    CHECK_MSG(tu_stats_raw_equal(st, before),
              "bad kind %d: accumulators changed", k);
    tu_snapshot s1;
    CHECK(tu_snapshot_take(st, &s1) == 0);
    CHECK_MSG(tu_snapshot_equal(&s0, &s1),
              "bad kind %d: observable statistics changed", k);
    tu_snapshot_free(&s1);
  }
  /* after all the failures the object goes on exactly like the copy */
  if (before) {
    CHECK_STATUS(tu_dataset_add(st, &ds, 2000, 2000), GMLE_OK);
    CHECK_STATUS(tu_dataset_add(before, &ds, 2000, 2000), GMLE_OK);
    CHECK(tu_stats_raw_equal(st, before));
  }
  tu_snapshot_free(&s0);
  gmle_stats_free(st);
  gmle_stats_free(before);
  tu_dataset_free(&ds);
  gmle_context_free(ctx);
}

TEST(stats_failing_first_add_commits_no_shift) {
  /* A fresh object whose first batch fails must stay fresh: the next good
   * batch gives exactly what it gives on a never-touched object. */
  gmle_context *ctx = new_ctx();
  tu_dataset ds;
  CHECK(ctx != NULL);
  if (!ctx || tu_dataset_make(&ds, 82, 3000, 4, 3, GMLE_F64, 4, 40.0, 0) != 0) {
    CHECK(!"setup");
    gmle_context_free(ctx);
    return;
  }
  for (int k = 0; k < BAD_KINDS; k++) {
    gmle_stats *st = new_stats(ctx, 4, 3), *fresh = new_stats(ctx, 4, 3);
    if (!st || !fresh) {
      CHECK(!"setup");
      gmle_stats_free(st);
      gmle_stats_free(fresh);
      break;
    }
    gmle_status expect;
    gmle_status got = add_bad_batch(st, (enum bad_kind)k, 5000, 4, 3, &expect);
    CHECK_MSG(got == expect, "bad kind %d: got %s, expected %s", k,
              gmle_status_name(got), gmle_status_name(expect));
    CHECK_MSG(tu_stats_raw_equal(st, fresh), "bad kind %d: fresh state changed",
              k);
    CHECK_STATUS(tu_dataset_add(st, &ds, 0, ds.n), GMLE_OK);
    CHECK_STATUS(tu_dataset_add(fresh, &ds, 0, ds.n), GMLE_OK);
    CHECK_MSG(tu_stats_raw_equal(st, fresh),
              "bad kind %d: later statistics differ", k);
    gmle_stats_free(st);
    gmle_stats_free(fresh);
  }
  tu_dataset_free(&ds);
  gmle_context_free(ctx);
}

TEST(stats_out_of_memory_at_any_allocation_leaves_state_unchanged) {
  gmle_context *ctx = new_ctx();
  tu_dataset ds;
  CHECK(ctx != NULL);
  if (!ctx || tu_dataset_make(&ds, 83, 30000, 5, 3, GMLE_F64, 5, 1.0, 1) != 0) {
    CHECK(!"setup");
    gmle_context_free(ctx);
    return;
  }
  gmle_stats *st = new_stats(ctx, 5, 3), *other = new_stats(ctx, 5, 3);
  gmle_stats *before = NULL;
  if (st && other) {
    CHECK_STATUS(tu_dataset_add(st, &ds, 0, 1000), GMLE_OK);
    CHECK_STATUS(tu_dataset_add(other, &ds, 1000, 1000), GMLE_OK);
    before = clone_of(st);
  }
  CHECK(before != NULL);
  int saw_oom_add = 0, saw_oom_merge = 0, saw_oom_fit = 0;
  for (long k = 1; k <= 64 && before; k++) {
    gmle__test_fail_alloc_after(k);
    gmle_status s = tu_dataset_add(st, &ds, 2000, ds.n - 2000);
    long seen = gmle__test_alloc_count();
    gmle__test_fail_alloc_after(0);
    if (s == GMLE_OK) {
      /* k beyond the allocations of one add: undo by starting over */
      CHECK(seen < k);
      gmle_stats_free(st);
      st = clone_of(before);
      CHECK(st != NULL);
      break;
    }
    saw_oom_add = 1;
    CHECK_MSG(s == GMLE_E_OUT_OF_MEMORY, "add, alloc %ld fails: %s", k,
              gmle_status_name(s));
    CHECK_MSG(tu_stats_raw_equal(st, before), "add, alloc %ld fails: changed",
              k);
  }
  for (long k = 1; k <= 64 && st && before; k++) {
    gmle__test_fail_alloc_after(k);
    gmle_status s = gmle_stats_merge(st, other);
    gmle__test_fail_alloc_after(0);
    if (s == GMLE_OK)
      break;
    saw_oom_merge = 1;
    CHECK_MSG(s == GMLE_E_OUT_OF_MEMORY, "merge, alloc %ld fails: %s", k,
              gmle_status_name(s));
    CHECK_MSG(tu_stats_raw_equal(st, before),
              "merge, alloc %ld fails: changed", k);
  }
  for (long k = 1; k <= 64 && before; k++) {
    gmle_model *m = NULL;
    gmle__test_fail_alloc_after(k);
    gmle_status s = gmle_fit(before, NULL, &m);
    gmle__test_fail_alloc_after(0);
    gmle_model_free(m);
    if (s == GMLE_OK)
      break;
    saw_oom_fit = 1;
    CHECK_MSG(s == GMLE_E_OUT_OF_MEMORY, "fit, alloc %ld fails: %s", k,
              gmle_status_name(s));
    CHECK_MSG(m == NULL, "fit, alloc %ld fails: model returned", k);
  }
  /* the fit allocates (at least the model): its failure path was seen */
  CHECK(saw_oom_fit);
  (void)saw_oom_add;
  (void)saw_oom_merge;
  gmle_stats_free(st);
  gmle_stats_free(other);
  gmle_stats_free(before);
  tu_dataset_free(&ds);
  gmle_context_free(ctx);
}

static void weights_equivalence(int zero_only) {
  /* zero_only = 0: integer weights 0..3 vs rows repeated that many times;
   * zero_only = 1: real weights with 30% zeros vs the zero rows removed. */
  gmle_context *ctx = new_ctx();
  tu_dataset ds;
  CHECK(ctx != NULL);
  if (!ctx || tu_dataset_make(&ds, 91, 5000, 4, 3, GMLE_F64, 4, 3.0, 1) != 0) {
    CHECK(!"setup");
    gmle_context_free(ctx);
    return;
  }
  tu_rng r;
  tu_seed(&r, 9191);
  for (size_t i = 0; i < ds.n; i++) {
    if (zero_only)
      ds.weights[i] = tu_uniform(&r) < 0.3 ? 0.0 : 0.5 + tu_uniform(&r);
    else
      ds.weights[i] = (double)tu_below(&r, 4);
  }
  for (size_t k = 0; k < ds.c; k++) /* keep every class non-empty */
    ds.weights[k] = 1.0 + (zero_only ? 0.25 : 0.0);
  size_t total = 0;
  for (size_t i = 0; i < ds.n; i++)
    total += zero_only ? (ds.weights[i] != 0.0) : (size_t)ds.weights[i];
  tu_dataset ex;
  memset(&ex, 0, sizeof ex);
  ex.n = total;
  ex.d = ds.d;
  ex.c = ds.c;
  ex.stride = ds.d;
  ex.dtype = GMLE_F64;
  ex.x = tu_alloc_data(total, ds.d, GMLE_F64);
  ex.labels = malloc((total ? total : 1) * sizeof *ex.labels);
  ex.weights = zero_only ? malloc((total ? total : 1) * sizeof *ex.weights)
                         : NULL;
  if (!ex.x || !ex.labels || (zero_only && !ex.weights)) {
    CHECK(!"setup");
    tu_dataset_free(&ex);
    tu_dataset_free(&ds);
    gmle_context_free(ctx);
    return;
  }
  size_t at = 0;
  for (size_t i = 0; i < ds.n; i++) {
    size_t reps = zero_only ? (ds.weights[i] != 0.0) : (size_t)ds.weights[i];
    for (size_t t = 0; t < reps; t++, at++) {
      for (size_t j = 0; j < ds.d; j++)
        tu_set(ex.x, GMLE_F64, ex.stride, at, j,
               tu_get(ds.x, GMLE_F64, ds.stride, i, j));
      ex.labels[at] = ds.labels[i];
      if (zero_only)
        ex.weights[at] = ds.weights[i];
    }
  }
  gmle_stats *w = new_stats(ctx, ds.d, ds.c), *e = new_stats(ctx, ds.d, ds.c);
  if (w && e) {
    CHECK_STATUS(tu_dataset_add(w, &ds, 0, ds.n), GMLE_OK);
    CHECK_STATUS(tu_dataset_add(e, &ex, 0, ex.n), GMLE_OK);
    /* weights and means and covariances agree; row counts do not have to
     * (they count rows given, not their weight) */
    gmle_fit_options o = exact_opts(GMLE_COV_FULL);
    gmle_model *mw = NULL, *me = NULL;
    CHECK_STATUS(gmle_fit(w, &o, &mw), GMLE_OK);
    CHECK_STATUS(gmle_fit(e, &o, &me), GMLE_OK);
    double a[16], b[16], sc[4];
    for (size_t k = 0; k < ds.c && mw && me; k++) {
      double ww = 0, we = 0;
      CHECK_STATUS(gmle_stats_weight(w, k, &ww), GMLE_OK);
      CHECK_STATUS(gmle_stats_weight(e, k, &we), GMLE_OK);
      CHECK_REL(ww, we, TOL64);
      CHECK_STATUS(gmle_model_covariance(me, k, b), GMLE_OK);
      CHECK_STATUS(gmle_model_covariance(mw, k, a), GMLE_OK);
      CHECK(tu_rel_frobenius(a, b, 16) <= TOL64);
      for (size_t j = 0; j < 4; j++)
        sc[j] = sqrt(b[j * 4 + j]);
      CHECK_STATUS(gmle_model_mean(mw, k, a), GMLE_OK);
      CHECK_STATUS(gmle_model_mean(me, k, b), GMLE_OK);
      CHECK(tu_max_rel_err(a, b, sc, 4) <= TOL64);
      double pa = 0, pb = 0;
      CHECK_STATUS(gmle_model_prior(mw, k, &pa), GMLE_OK);
      CHECK_STATUS(gmle_model_prior(me, k, &pb), GMLE_OK);
      CHECK_REL(pa, pb, TOL64);
    }
    gmle_model_free(mw);
    gmle_model_free(me);
    tu_ref ref;
    CHECK(tu_ref_compute(&ref, ds.x, ds.dtype, ds.n, ds.stride, ds.d, ds.c,
                         ds.labels, ds.weights) == 0);
    check_vs_ref(w, &ref, TOL64, TOL64, "weighted vs reference");
    tu_ref_free(&ref);
  } else {
    CHECK(!"setup");
  }
  gmle_stats_free(w);
  gmle_stats_free(e);
  tu_dataset_free(&ex);
  tu_dataset_free(&ds);
  gmle_context_free(ctx);
}

TEST(stats_integer_weights_equal_repeated_rows) { weights_equivalence(0); }

TEST(stats_zero_weights_equal_removed_rows) { weights_equivalence(1); }

TEST(stats_scaling_all_weights_changes_only_the_weight) {
  gmle_context *ctx = new_ctx();
  tu_dataset ds;
  CHECK(ctx != NULL);
  if (!ctx || tu_dataset_make(&ds, 92, 4000, 3, 2, GMLE_F64, 3, 1.0, 1) != 0) {
    CHECK(!"setup");
    gmle_context_free(ctx);
    return;
  }
  gmle_stats *a = new_stats(ctx, 3, 2), *b = new_stats(ctx, 3, 2);
  if (a && b) {
    CHECK_STATUS(tu_dataset_add(a, &ds, 0, ds.n), GMLE_OK);
    double wa0 = 0, wb0 = 0;
    CHECK_STATUS(gmle_stats_weight(a, 0, &wa0), GMLE_OK);
    for (size_t i = 0; i < ds.n; i++)
      ds.weights[i] *= 1024.0; /* exact scaling */
    CHECK_STATUS(tu_dataset_add(b, &ds, 0, ds.n), GMLE_OK);
    CHECK_STATUS(gmle_stats_weight(b, 0, &wb0), GMLE_OK);
    CHECK_REL(wb0, 1024.0 * wa0, TOL64);
    /* means, covariances identical up to rounding; priors too */
    gmle_fit_options o = exact_opts(GMLE_COV_FULL);
    gmle_model *ma = NULL, *mb = NULL;
    CHECK_STATUS(gmle_fit(a, &o, &ma), GMLE_OK);
    CHECK_STATUS(gmle_fit(b, &o, &mb), GMLE_OK);
    for (size_t k = 0; k < 2 && ma && mb; k++) {
      double va[9], vb[9], sc[3];
      CHECK_STATUS(gmle_model_covariance(ma, k, va), GMLE_OK);
      CHECK_STATUS(gmle_model_covariance(mb, k, vb), GMLE_OK);
      CHECK(tu_rel_frobenius(vb, va, 9) <= TOL64);
      for (int j = 0; j < 3; j++)
        sc[j] = sqrt(va[j * 3 + j]);
      CHECK_STATUS(gmle_model_mean(ma, k, va), GMLE_OK);
      CHECK_STATUS(gmle_model_mean(mb, k, vb), GMLE_OK);
      CHECK(tu_max_rel_err(vb, va, sc, 3) <= TOL64);
      double pa = 0, pb = 0;
      CHECK_STATUS(gmle_model_prior(ma, k, &pa), GMLE_OK);
      CHECK_STATUS(gmle_model_prior(mb, k, &pb), GMLE_OK);
      CHECK_REL(pb, pa, TOL64);
    }
    gmle_model_free(ma);
    gmle_model_free(mb);
  } else {
    CHECK(!"setup");
  }
  gmle_stats_free(a);
  gmle_stats_free(b);
  tu_dataset_free(&ds);
  gmle_context_free(ctx);
}

TEST(stats_all_zero_and_negative_weights_are_invalid) {
  gmle_context *ctx = new_ctx();
  CHECK(ctx != NULL);
  if (!ctx)
    return;
  gmle_stats *st = new_stats(ctx, 2, 1), *before = NULL;
  double x[8] = {1, 2, 3, 4, 5, 6, 7, 9};
  double w0[4] = {0, 0, 0, 0}, wneg[4] = {1, 1, -1e-300, 1},
         winf[4] = {1, INFINITY, 1, 1}, wnan[4] = {1, 1, 1, NAN};
  if (st) {
    CHECK_STATUS(gmle_stats_add(st, x, GMLE_F64, 2, 2, NULL, NULL), GMLE_OK);
    before = clone_of(st);
  }
  CHECK(before != NULL);
  if (before) {
    CHECK_STATUS(gmle_stats_add(st, x, GMLE_F64, 4, 2, NULL, w0),
                 GMLE_E_INVALID_WEIGHTS);
    CHECK_STATUS(gmle_stats_add(st, x, GMLE_F64, 4, 2, NULL, wneg),
                 GMLE_E_INVALID_WEIGHTS);
    CHECK_ERROR_HAS(ctx, "row 2");
    CHECK_STATUS(gmle_stats_add(st, x, GMLE_F64, 4, 2, NULL, winf),
                 GMLE_E_INVALID_WEIGHTS);
    CHECK_STATUS(gmle_stats_add(st, x, GMLE_F64, 4, 2, NULL, wnan),
                 GMLE_E_INVALID_WEIGHTS);
    CHECK(tu_stats_raw_equal(st, before));
    /* all-zero weights on a fresh object are also refused */
    gmle_stats *fresh = new_stats(ctx, 2, 1), *f0 = new_stats(ctx, 2, 1);
    if (fresh && f0) {
      CHECK_STATUS(gmle_stats_add(fresh, x, GMLE_F64, 4, 2, NULL, w0),
                   GMLE_E_INVALID_WEIGHTS);
      CHECK(tu_stats_raw_equal(fresh, f0));
    }
    gmle_stats_free(fresh);
    gmle_stats_free(f0);
  }
  gmle_stats_free(st);
  gmle_stats_free(before);
  gmle_context_free(ctx);
}

TEST(stats_diag_mode_matches_reference_and_refuses_full_fit) {
  gmle_context *ctx = new_ctx();
  tu_dataset ds;
  CHECK(ctx != NULL);
  if (!ctx || tu_dataset_make(&ds, 101, 10000, 6, 3, GMLE_F64, 7, 100.0, 1) != 0) {
    CHECK(!"setup");
    gmle_context_free(ctx);
    return;
  }
  gmle_stats *st = NULL;
  CHECK_STATUS(gmle_stats_create_mode(ctx, 6, 3, GMLE_STATS_DIAG, &st),
               GMLE_OK);
  if (st) {
    CHECK(gmle_stats_get_mode(st) == GMLE_STATS_DIAG);
    CHECK_STATUS(tu_dataset_add(st, &ds, 0, ds.n), GMLE_OK);
    tu_ref ref;
    CHECK(tu_ref_compute(&ref, ds.x, ds.dtype, ds.n, ds.stride, ds.d, ds.c,
                         ds.labels, ds.weights) == 0);
    check_vs_ref(st, &ref, TOL64, TOL64, "diag mode, diag fit");
    /* spherical from diagonal statistics */
    gmle_fit_options o = exact_opts(GMLE_COV_SPHERICAL);
    gmle_model *m = NULL;
    CHECK_STATUS(gmle_fit(st, &o, &m), GMLE_OK);
    double cov[36], rcov[36];
    for (size_t k = 0; k < 3 && m; k++) {
      CHECK_STATUS(gmle_model_covariance(m, k, cov), GMLE_OK);
      tu_ref_cov(&ref, GMLE_COV_SPHERICAL, k, rcov);
      CHECK(tu_rel_frobenius(cov, rcov, 36) <= TOL64);
    }
    gmle_model_free(m);
    m = NULL;
    /* a full (or tied) covariance cannot come from diagonal statistics */
    o = exact_opts(GMLE_COV_FULL);
    CHECK(gmle_fit(st, &o, &m) != GMLE_OK);
    CHECK(m == NULL);
    gmle_model_free(m);
    m = NULL;
    o = exact_opts(GMLE_COV_TIED);
    CHECK(gmle_fit(st, &o, &m) != GMLE_OK);
    CHECK(m == NULL);
    gmle_model_free(m);
    tu_ref_free(&ref);
  }
  gmle_stats_free(st);
  tu_dataset_free(&ds);
  gmle_context_free(ctx);
}

TEST(fit_twice_from_scratch_is_bit_identical_n100_1) {
  /* X ~ N(100, 1), float32, fitted twice from scratch on fresh contexts with
   * the same batches: the models must be bit-identical. */
  size_t n = 60000, d = 8;
  float *x = tu_alloc_data(n, d, GMLE_F32);
  int32_t *lab = malloc(n * sizeof *lab);
  tu_rng r;
  tu_seed(&r, 100);
  if (!x || !lab) {
    CHECK(!"setup");
    free(x);
    free(lab);
    return;
  }
  tu_gen_offset(&r, n, d, 100.0, 1.0, GMLE_F32, d, x);
  tu_labels_random(&r, n, 2, lab);
  gmle_model *m[2] = {NULL, NULL};
  gmle_context *ctxs[2] = {NULL, NULL};
  for (int t = 0; t < 2; t++) {
    gmle_context *ctx = ctxs[t] = new_ctx();
    gmle_stats *st = ctx ? new_stats(ctx, d, 2) : NULL;
    CHECK(st != NULL);
    for (size_t at = 0; st && at < n; at += 25000) {
      size_t k = n - at < 25000 ? n - at : 25000;
      CHECK_STATUS(gmle_stats_add(st, x + at * d, GMLE_F32, k, d, lab + at,
                                  NULL),
                   GMLE_OK);
    }
    if (st)
      CHECK_STATUS(gmle_fit(st, NULL, &m[t]), GMLE_OK);
    gmle_stats_free(st);
  }
  CHECK(m[0] && m[1]);
  if (m[0] && m[1])
    CHECK(tu_models_bit_equal(m[0], m[1]));
  for (int t = 0; t < 2; t++) {
    gmle_model_free(m[t]);
    gmle_context_free(ctxs[t]);
  }
  free(x);
  free(lab);
}

int main(int argc, char **argv) {
  CHECK_INIT(argc, argv);
  RUN(stats_create_validates_arguments_and_starts_empty);
  RUN(stats_add_f64_weighted_matches_two_pass_reference);
  RUN(stats_add_f32_strided_offset_matches_reference_of_stored_values);
  RUN(stats_add_rejects_bad_arguments);
  RUN(stats_merge_equals_one_pass_f64);
  RUN(stats_merge_disjoint_classes_equals_one_pass);
  RUN(stats_merge_distant_shifts_is_exact_f64);
  RUN(stats_rechunkings_equal_single_pass_f64);
  RUN(stats_rechunkings_equal_single_pass_f32);
  RUN(stats_rechunkings_equal_single_pass_diag_mode_f64);
  RUN(stats_row_permutation_equals_single_pass_f64);
  RUN(stats_row_permutation_equals_single_pass_f32);
  RUN(stats_merge_with_empty_is_identity_bitwise);
  RUN(stats_merge_is_associative_and_commutative);
  RUN(stats_merge_with_itself_equals_data_added_twice);
  RUN(stats_merge_rejects_mismatched_shapes_and_modes);
  RUN(stats_clone_is_deep_and_bit_identical);
  RUN(stats_failing_add_leaves_statistics_bit_identical);
  RUN(stats_failing_first_add_commits_no_shift);
  RUN(stats_out_of_memory_at_any_allocation_leaves_state_unchanged);
  RUN(stats_integer_weights_equal_repeated_rows);
  RUN(stats_zero_weights_equal_removed_rows);
  RUN(stats_scaling_all_weights_changes_only_the_weight);
  RUN(stats_all_zero_and_negative_weights_are_invalid);
  RUN(stats_diag_mode_matches_reference_and_refuses_full_fit);
  RUN(fit_twice_from_scratch_is_bit_identical_n100_1);
  return CHECK_DONE();
}
