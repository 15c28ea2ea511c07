/* testutil.h -- deterministic random data and float64 / long double
 * references for the test suites.
 *
 * Conventions: matrices are row-major; D = dim, C = n_classes; strides count
 * elements (as in gmle). Everything returns 0 on success, -1 on failure
 * (allocation, non-PD matrix), never aborts. */
#ifndef GMLE_TESTUTIL_H
#define GMLE_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "gmle.h"

/* ---------------------------------------------------------------------- */
/* Random numbers (xoshiro256**, seeded by splitmix64)                     */
/* ---------------------------------------------------------------------- */

typedef struct tu_rng {
  uint64_t s[4];
  int has_spare; /* tu_normal's second Box-Muller value */
  double spare;
} tu_rng;

void tu_seed(tu_rng *r, uint64_t seed);
uint64_t tu_next(tu_rng *r);
double tu_uniform(tu_rng *r); /* [0, 1) */
double tu_normal(tu_rng *r);  /* N(0, 1) */
size_t tu_below(tu_rng *r, size_t n); /* uniform in [0, n), n >= 1 */
/* Fisher-Yates permutation of 0..n-1. */
void tu_permutation(tu_rng *r, size_t n, size_t *perm);

/* ---------------------------------------------------------------------- */
/* Small dense linear algebra (long double, own code: independent of gmle) */
/* ---------------------------------------------------------------------- */

/* Lower Cholesky factor L (D x D row-major, upper part zeroed) of the
 * symmetric matrix a. Returns -1 if a is not positive definite. */
int tu_cholesky(size_t d, const double *a, long double *l);
int tu_cholesky_ld(size_t d, const long double *a, long double *l);
/* All eigenvalues of symmetric a (cyclic Jacobi, long double), ascending. */
int tu_sym_eigvals(size_t d, const double *a, double *eig);
/* Smallest and largest eigenvalue of symmetric a. */
int tu_sym_eig_minmax(size_t d, const double *a, double *mn, double *mx);
/* Random orthogonal Q (d x d) from Gram-Schmidt of a Gaussian matrix. */
void tu_random_orthogonal(tu_rng *r, size_t d, double *q);
/* Random SPD matrix Q diag(e) Q^T with eigenvalues log-uniform in
 * [eig_min, eig_max] (both ends attained), so cond = eig_max/eig_min. */
void tu_random_spd(tu_rng *r, size_t d, double eig_min, double eig_max,
                   double *out);

/* ---------------------------------------------------------------------- */
/* Data generators                                                         */
/* ---------------------------------------------------------------------- */

/* Element (row i, col j) of x (dtype f32/f64, row stride) as double. */
double tu_get(const void *x, gmle_dtype dtype, size_t stride, size_t i,
              size_t j);
void tu_set(void *x, gmle_dtype dtype, size_t stride, size_t i, size_t j,
            double v);
/* calloc of n_rows * stride elements of dtype (NULL on overflow). */
void *tu_alloc_data(size_t n_rows, size_t stride, gmle_dtype dtype);

/* Uniform random labels in [0, C). */
void tu_labels_random(tu_rng *r, size_t n, size_t n_classes, int32_t *labels);
/* Labels i % C (every class gets floor/ceil(n/C) rows). */
void tu_labels_cyclic(size_t n, size_t n_classes, int32_t *labels);

/* Rows x_i = mu_{y_i} + L_{y_i} z_i, z ~ N(0, I), written as dtype into x
 * with row stride `stride` (>= d; the padding is left untouched).
 * means: C x D (NULL: zeros). covs: C x D x D SPD (NULL: identity).
 * labels: class of each row (NULL: all class 0). Returns -1 if a
 * covariance is not positive definite. */
int tu_gen_gaussian(tu_rng *r, size_t n, size_t d, size_t n_classes,
                    const double *means, const double *covs,
                    const int32_t *labels, gmle_dtype dtype, size_t stride,
                    void *x);
/* Convenience: independent features, x_ij = mean + sd * z. */
void tu_gen_offset(tu_rng *r, size_t n, size_t d, double mean, double sd,
                   gmle_dtype dtype, size_t stride, void *x);

/* A labelled (optionally weighted) data set of class-conditional Gaussians:
 * class k has mean offset + 3k + N(0, 0.5^2) per feature and a random SPD
 * covariance with eigenvalues in [0.25, 4]; every class has at least one
 * row (rows 0..C-1 have labels 0..C-1); weights (if asked) are uniform in
 * [0.25, 2.25). Padding columns (stride > d) hold NaN: never to be read. */
typedef struct tu_dataset {
  size_t n, d, c, stride;
  gmle_dtype dtype;
  void *x;
  int32_t *labels;
  double *weights; /* NULL: unweighted */
} tu_dataset;

int tu_dataset_make(tu_dataset *ds, uint64_t seed, size_t n, size_t d,
                    size_t c, gmle_dtype dtype, size_t stride, double offset,
                    int weighted);
void tu_dataset_free(tu_dataset *ds);
/* Pointer to row i of the data set. */
const void *tu_dataset_row(const tu_dataset *ds, size_t i);

/* ---------------------------------------------------------------------- */
/* Two-pass long double reference                                          */
/* ---------------------------------------------------------------------- */

typedef struct tu_ref {
  size_t dim, n_classes;
  long double *weight; /* [C] n_c = sum w */
  uint64_t *rows;      /* [C] rows seen (weight 0 included) */
  long double *mean;   /* [C*D] */
  long double *cov;    /* [C*D*D] full, divided by n_c (0 for empty) */
} tu_ref;

/* Two-pass per-class weighted mean and covariance of the values actually
 * stored in x (float32 values are read exactly). labels NULL: class 0;
 * weights NULL: 1. Rows with negative weight are not rejected (the caller
 * tests validation separately). */
int tu_ref_compute(tu_ref *ref, const void *x, gmle_dtype dtype, size_t n,
                   size_t stride, size_t d, size_t n_classes,
                   const int32_t *labels, const double *weights);
void tu_ref_free(tu_ref *ref);
/* tu_ref_compute over a whole tu_dataset. */
int tu_ref_dataset(tu_ref *ref, const tu_dataset *ds);
/* Class c's mean as double[D]. */
void tu_ref_mean(const tu_ref *ref, size_t c, double *out);
/* Class c's MLE covariance for a covariance type, as a full D x D matrix
 * (the layout of gmle_model_covariance): full Sigma_c; diag diag(Sigma_c);
 * spherical tr(Sigma_c)/D I; tied sum_k n_k Sigma_k / sum_k n_k. No floor. */
void tu_ref_cov(const tu_ref *ref, gmle_cov_type cov, size_t c, double *out);
/* Largest diagonal entry of the pooled (all rows, labels ignored)
 * covariance, between-class spread included. Computed from the data. */
long double tu_max_total_variance(const void *x, gmle_dtype dtype, size_t n,
                                  size_t stride, size_t d,
                                  const double *weights);

/* Largest per-class feature variance, max_{c,j} Sigma_c[j][j] over the
 * classes of ref: what the default rel_floor (1e-9) is relative to. */
long double tu_ref_max_class_variance(const tu_ref *ref);

/* ---------------------------------------------------------------------- */
/* Densities                                                               */
/* ---------------------------------------------------------------------- */

/* log N(x; mu, Sigma) via the long double Cholesky factor L of Sigma
 * (from tu_cholesky): -1/2 (D log 2pi + 2 sum log L_ii + |L^-1 (x-mu)|^2). */
long double tu_logpdf_chol(size_t d, const double *x, const double *mu,
                           const long double *l);
/* Same, factorising sigma itself; NAN if sigma is not PD. */
long double tu_logpdf(size_t d, const double *x, const double *mu,
                      const double *sigma);
/* log sum exp of n values in long double (-inf if all are -inf). */
long double tu_logsumexp(const long double *v, size_t n);

/* ---------------------------------------------------------------------- */
/* Errors                                                                  */
/* ---------------------------------------------------------------------- */

/* ||a - b||_F / ||b||_F (b the reference; returns ||a-b|| if b == 0). */
double tu_rel_frobenius(const double *a, const double *b, size_t n);
/* Same with a long double reference. */
double tu_rel_frobenius_ld(const double *a, const long double *b, size_t n);
/* max_j |a_j - b_j| / max(|b_j|, scale_j) (scale may be NULL: |b_j|). */
double tu_max_rel_err(const double *a, const double *b, const double *scale,
                      size_t n);
/* Bitwise equality of n doubles (memcmp; distinguishes -0.0 and NaNs). */
int tu_bits_equal(const double *a, const double *b, size_t n);

/* ---------------------------------------------------------------------- */
/* Temporary directories                                                   */
/* ---------------------------------------------------------------------- */

/* mkdtemp under $TMPDIR or /tmp: "gmle-test-XXXXXX"; path in buf. */
int tu_tmpdir_create(char *buf, size_t len);
/* dir + "/" + name into buf. */
int tu_path_join(char *buf, size_t len, const char *dir, const char *name);
/* Remove the files in dir (one level) and dir itself. */
int tu_tmpdir_remove(const char *dir);
/* A suite's start: a context on GMLE_BACKEND_AUTO (GMLE_BACKEND picks it)
 * into *ctx and a temporary directory into dir; prints why and returns -1
 * when either fails. */
int tu_suite_start(gmle_context **ctx, char *dir, size_t cap);
/* dir + "/" + name in one of 8 static buffers used in turn (so that a call
 * can take several paths); "" when it does not fit. */
const char *tu_tmp_path(const char *dir, const char *name);

/* ---------------------------------------------------------------------- */
/* Python references (numpy, scikit-learn)                                 */
/* ---------------------------------------------------------------------- */

/* 1 when python3 can import `module` ("numpy", "sklearn"), else 0. */
int tu_have_python(const char *module);
/* Run `code` with python3 (written to dir/t.py, removed after) with the
 * arguments dir and arg; returns system()'s status (0: it exited 0). */
int tu_run_python(const char *dir, const char *code, const char *arg);

/* ---------------------------------------------------------------------- */
/* Helpers that call the library (static inline, so that a suite that does  */
/* not use them does not need the symbols they reference).                 */
/* ---------------------------------------------------------------------- */

#include "../src/internal.h"
#include "../src/testing.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Rows for a suite's largest data sets: n, or `small` when the environment
 * sets GMLE_TEST_SMALL (scripts/valgrind.sh: the same code paths with fewer
 * rows; the full sizes run in the plain and sanitizer builds). */
static inline size_t tu_rows(size_t n, size_t small) {
  const char *e = getenv("GMLE_TEST_SMALL");
  return e && *e && strcmp(e, "0") != 0 ? small : n;
}

/* A context on GMLE_BACKEND_AUTO (ctest sets GMLE_BACKEND); NULL, with the
 * reason printed, on failure. */
static inline gmle_context *tu_context(void) {
  gmle_context *ctx = NULL;
  gmle_status s = gmle_context_create(GMLE_BACKEND_AUTO, -1, &ctx);
  if (s != GMLE_OK) {
    printf("  gmle_context_create: %s (%s)\n", gmle_status_name(s),
           gmle_context_error(ctx));
    gmle_context_free(ctx);
    return NULL;
  }
  return ctx;
}

/* gmle_stats_add of rows [first, first + count) of ds. */
static inline gmle_status tu_dataset_add(gmle_stats *st, const tu_dataset *ds,
                                         size_t first, size_t count) {
  return gmle_stats_add(st, tu_dataset_row(ds, first), ds->dtype, count,
                        ds->stride, ds->labels + first,
                        ds->weights ? ds->weights + first : NULL);
}

/* ---------------------------------------------------------------------- */
/* Snapshots of library objects through the public API                     */
/* ---------------------------------------------------------------------- */

typedef struct tu_snapshot {
  size_t dim, n_classes;
  uint64_t *rows;       /* [C] gmle_stats_rows */
  double *weight;       /* [C] gmle_stats_weight */
  double *mean;         /* [C*D] gmle_stats_mean (-0.0 if empty) */
  gmle_status fit_status; /* gmle_fit with rel_floor 1e-9 (defaults) */
  double *cov;          /* [C*D*D] fitted covariances (when fit ok) */
} tu_snapshot;

/* Everything observable about st: rows, weights, means and a default full
 * fit (FULL mode) or diag fit (DIAG mode). */
static inline int tu_snapshot_take(const gmle_stats *st, tu_snapshot *out);
/* 1 when two snapshots are bit-identical. */
static inline int tu_snapshot_equal(const tu_snapshot *a, const tu_snapshot *b);
static inline void tu_snapshot_free(tu_snapshot *s);

/* Bitwise equality of two models' means, covariances and priors. */
static inline int tu_models_bit_equal(const gmle_model *a, const gmle_model *b);

/* Raw bitwise equality of the internal accumulators (weight, rows, shift,
 * sum, gram, has_shift) of two statistics objects. */
static inline int tu_stats_raw_equal(const gmle_stats *a, const gmle_stats *b);

/* ---------------------------------------------------------------------- */
/* Log capture (gmle_context_set_log)                                      */
/* ---------------------------------------------------------------------- */

typedef struct tu_log {
  char text[8192]; /* all messages, newline separated (truncated) */
  int count, warnings;
} tu_log;

static inline void tu_log_fn(void *user, gmle_log_level level, const char *msg);
/* Install a cleared capture on ctx. */
static inline void tu_log_attach(gmle_context *ctx, tu_log *log);
/* 1 if any captured message contains sub (case-insensitive). */
static inline int tu_log_has(const tu_log *log, const char *sub);

/* ---------------------------------------------------------------------- */
/* Snapshots                                                               */
/* ---------------------------------------------------------------------- */

static inline void tu_snapshot_free(tu_snapshot *s) {
  if (!s)
    return;
  free(s->rows);
  free(s->weight);
  free(s->mean);
  free(s->cov);
  memset(s, 0, sizeof *s);
}

static inline int tu_snapshot_take(const gmle_stats *st, tu_snapshot *out) {
  memset(out, 0, sizeof *out);
  size_t d = gmle_stats_dim(st), c = gmle_stats_n_classes(st);
  out->dim = d;
  out->n_classes = c;
  out->rows = calloc(c, sizeof *out->rows);
  out->weight = calloc(c, sizeof *out->weight);
  out->mean = calloc(c * d, sizeof *out->mean);
  out->cov = calloc(c * d * d, sizeof *out->cov);
  if (!out->rows || !out->weight || !out->mean || !out->cov) {
    tu_snapshot_free(out);
    return -1;
  }
  for (size_t k = 0; k < c; k++) {
    if (gmle_stats_rows(st, k, &out->rows[k]) != GMLE_OK)
      out->rows[k] = UINT64_MAX;
    if (gmle_stats_weight(st, k, &out->weight[k]) != GMLE_OK)
      out->weight[k] = -1.0;
    if (gmle_stats_mean(st, k, out->mean + k * d) != GMLE_OK)
      for (size_t j = 0; j < d; j++)
        out->mean[k * d + j] = -0.0; /* a fixed marker for "no mean" */
  }
  gmle_fit_options opt;
  gmle_fit_options_init(&opt);
  if (gmle_stats_get_mode(st) == GMLE_STATS_DIAG)
    opt.cov = GMLE_COV_DIAG;
  gmle_model *m = NULL;
  out->fit_status = gmle_fit(st, &opt, &m);
  if (out->fit_status == GMLE_OK)
    for (size_t k = 0; k < c; k++)
      if (gmle_model_covariance(m, k, out->cov + k * d * d) != GMLE_OK)
        out->fit_status = GMLE_E_INTERNAL;
  gmle_model_free(m);
  return 0;
}

static inline int tu_snapshot_equal(const tu_snapshot *a, const tu_snapshot *b) {
  if (a->dim != b->dim || a->n_classes != b->n_classes ||
      a->fit_status != b->fit_status)
    return 0;
  size_t c = a->n_classes, d = a->dim;
  return memcmp(a->rows, b->rows, c * sizeof *a->rows) == 0 &&
         tu_bits_equal(a->weight, b->weight, c) &&
         tu_bits_equal(a->mean, b->mean, c * d) &&
         tu_bits_equal(a->cov, b->cov, c * d * d);
}

static inline int tu_models_bit_equal(const gmle_model *a, const gmle_model *b) {
  size_t d = gmle_model_dim(a), c = gmle_model_n_classes(a);
  if (d != gmle_model_dim(b) || c != gmle_model_n_classes(b) ||
      gmle_model_cov_type(a) != gmle_model_cov_type(b))
    return 0;
  double *va = malloc(d * d * sizeof *va), *vb = malloc(d * d * sizeof *vb);
  int eq = va && vb;
  for (size_t k = 0; eq && k < c; k++) {
    eq = gmle_model_mean(a, k, va) == GMLE_OK &&
         gmle_model_mean(b, k, vb) == GMLE_OK && tu_bits_equal(va, vb, d);
    eq = eq && gmle_model_covariance(a, k, va) == GMLE_OK &&
         gmle_model_covariance(b, k, vb) == GMLE_OK &&
         tu_bits_equal(va, vb, d * d);
    eq = eq && gmle_model_prior(a, k, va) == GMLE_OK &&
         gmle_model_prior(b, k, vb) == GMLE_OK && tu_bits_equal(va, vb, 1);
  }
  free(va);
  free(vb);
  return eq;
}

static inline int tu_stats_raw_equal(const gmle_stats *a, const gmle_stats *b) {
  if (a->dim != b->dim || a->n_classes != b->n_classes ||
      a->mode != b->mode || a->gram_len != b->gram_len)
    return 0;
  size_t c = a->n_classes, d = a->dim;
  return memcmp(a->weight, b->weight, c * sizeof *a->weight) == 0 &&
         memcmp(a->rows, b->rows, c * sizeof *a->rows) == 0 &&
         memcmp(a->has_shift, b->has_shift, c * sizeof *a->has_shift) == 0 &&
         memcmp(a->shift, b->shift, c * d * sizeof *a->shift) == 0 &&
         memcmp(a->sum, b->sum, c * d * sizeof *a->sum) == 0 &&
         memcmp(a->gram, b->gram, c * a->gram_len * sizeof *a->gram) == 0;
}

/* ---------------------------------------------------------------------- */
/* Log capture                                                             */
/* ---------------------------------------------------------------------- */

static inline void tu_log_fn(void *user, gmle_log_level level, const char *msg) {
  tu_log *log = user;
  log->count++;
  if (level == GMLE_LOG_WARNING)
    log->warnings++;
  size_t used = strlen(log->text), room = sizeof log->text - used;
  if (room > 1)
    snprintf(log->text + used, room, "%s\n", msg);
}

static inline void tu_log_attach(gmle_context *ctx, tu_log *log) {
  memset(log, 0, sizeof *log);
  gmle_context_set_log(ctx, tu_log_fn, log);
}

static inline int tu_log_has(const tu_log *log, const char *sub) {
  size_t n = strlen(sub);
  if (n == 0)
    return 1;
  for (const char *p = log->text; *p; p++) {
    size_t i = 0;
    while (i < n && p[i] &&
           tolower((unsigned char)p[i]) == tolower((unsigned char)sub[i]))
      i++;
    if (i == n)
      return 1;
  }
  return 0;
}

/* Whole-file helpers for the file-format suites. tu_slurp: the bytes of a
 * file (malloc'd; *n its size), NULL if unreadable. tu_spit: write n bytes,
 * 0 on success. tu_poke: overwrite one byte of an open file and flush. */
unsigned char *tu_slurp(const char *path, size_t *n);
int tu_spit(const char *path, const void *b, size_t n);
void tu_poke(FILE *f, size_t off, unsigned char v);

#endif
