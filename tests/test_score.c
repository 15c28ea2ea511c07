/* test_score.c -- bulk scoring (gmle_score, gmle_total_loglik) against a
 * direct per-row long double formula written here, independently of the
 * library: own Cholesky, forward substitution, log-determinant from the
 * factor. */
#include "check.h"
#include "testutil.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const long double LOG_2PI_L =
    1.837877066409345483560659472811235279722794947275566825634L;

/* ---------------------------------------------------------------------- */
/* Model parameters and the reference                                      */
/* ---------------------------------------------------------------------- */

typedef struct params {
  size_t D, C;
  gmle_cov_type cov;
  double *means;  /* C x D */
  double *covs;   /* gmle_model_create layout */
  double *priors; /* C */
  double *counts; /* C or NULL */
  /* reference data */
  long double *L;      /* full: C x D x D; tied: D x D (lower Cholesky) */
  long double *logdet; /* C */
  int *empty;          /* C */
} params;

static void params_free(params *p) {
  free(p->means);
  free(p->covs);
  free(p->priors);
  free(p->counts);
  free(p->L);
  free(p->logdet);
  free(p->empty);
  memset(p, 0, sizeof *p);
}

static size_t cov_len(gmle_cov_type cov, size_t D, size_t C) {
  switch (cov) {
  case GMLE_COV_FULL:
    return C * D * D;
  case GMLE_COV_DIAG:
    return C * D;
  case GMLE_COV_SPHERICAL:
    return C;
  case GMLE_COV_TIED:
    return D * D;
  }
  return 0;
}

static void params_alloc(params *p, size_t D, size_t C, gmle_cov_type cov) {
  memset(p, 0, sizeof *p);
  p->D = D;
  p->C = C;
  p->cov = cov;
  p->means = calloc(C * D, sizeof(double));
  p->covs = calloc(cov_len(cov, D, C), sizeof(double));
  p->priors = calloc(C, sizeof(double));
  p->L = calloc((cov == GMLE_COV_FULL ? C : 1) * D * D, sizeof(long double));
  p->logdet = calloc(C, sizeof(long double));
  p->empty = calloc(C, sizeof(int));
}

/* Lower Cholesky factor in long double (0 on success). */
static int chol_ld(size_t D, const double *a, long double *l) {
  for (size_t i = 0; i < D; i++)
    for (size_t j = 0; j <= i; j++) {
      long double s = a[i * D + j];
      for (size_t k = 0; k < j; k++)
        s -= l[i * D + k] * l[j * D + k];
      if (i == j) {
        if (!(s > 0))
          return -1;
        l[i * D + i] = sqrtl(s);
      } else {
        l[i * D + j] = s / l[j * D + j];
      }
    }
  for (size_t i = 0; i < D; i++)
    for (size_t j = i + 1; j < D; j++)
      l[i * D + j] = 0;
  return 0;
}

/* Factorise and mark empty classes (count 0 or prior 0). */
static void params_reference(params *p) {
  const size_t D = p->D;
  for (size_t c = 0; c < p->C; c++) {
    p->empty[c] = p->priors[c] == 0 || (p->counts && p->counts[c] == 0);
    p->logdet[c] = 0;
  }
  for (size_t c = 0; c < p->C; c++) {
    if (p->empty[c])
      continue;
    long double ld = 0;
    switch (p->cov) {
    case GMLE_COV_FULL:
    case GMLE_COV_TIED: {
      const size_t k = p->cov == GMLE_COV_FULL ? c : 0;
      long double *L = p->L + k * D * D;
      if (chol_ld(D, p->covs + k * D * D, L) != 0)
        abort();
      for (size_t i = 0; i < D; i++)
        ld += 2 * logl(L[i * D + i]);
      break;
    }
    case GMLE_COV_DIAG:
      for (size_t j = 0; j < D; j++)
        ld += logl((long double)p->covs[c * D + j]);
      break;
    case GMLE_COV_SPHERICAL:
      ld = (long double)D * logl((long double)p->covs[c]);
      break;
    }
    p->logdet[c] = ld;
  }
}

/* log N(x; mu_c, Sigma_c) by forward substitution, or -inf if empty. */
static long double ref_loglik(const params *p, size_t c, const double *x) {
  if (p->empty[c])
    return -INFINITY;
  const size_t D = p->D;
  const double *mu = p->means + c * D;
  long double q = 0;
  if (p->cov == GMLE_COV_FULL || p->cov == GMLE_COV_TIED) {
    const long double *L = p->L + (p->cov == GMLE_COV_FULL ? c * D * D : 0);
    long double z[64];
    for (size_t i = 0; i < D; i++) {
      long double s = (long double)x[i] - (long double)mu[i];
      for (size_t k = 0; k < i; k++)
        s -= L[i * D + k] * z[k];
      z[i] = s / L[i * D + i];
      q += z[i] * z[i];
    }
  } else {
    for (size_t j = 0; j < D; j++) {
      const long double v =
          p->cov == GMLE_COV_DIAG ? p->covs[c * D + j] : p->covs[c];
      const long double d = (long double)x[j] - (long double)mu[j];
      q += d * d / v;
    }
  }
  return -0.5L * ((long double)D * LOG_2PI_L + p->logdet[c] + q);
}

/* Every output of one row: ll, joint, logpost (C each), density, label. */
typedef struct ref_row {
  long double ll[128], joint[128], post[128], dens;
  int label;
} ref_row;

static long double lse_ld(const long double *v, size_t n) {
  long double mx = -INFINITY;
  for (size_t i = 0; i < n; i++)
    if (v[i] > mx)
      mx = v[i];
  if (mx == -INFINITY)
    return -INFINITY;
  long double s = 0;
  for (size_t i = 0; i < n; i++)
    s += expl(v[i] - mx);
  return mx + logl(s);
}

static void ref_outputs(const params *p, const double *x, ref_row *o) {
  o->label = -1;
  for (size_t c = 0; c < p->C; c++) {
    o->ll[c] = ref_loglik(p, c, x);
    o->joint[c] =
        p->empty[c] ? -INFINITY : o->ll[c] + logl((long double)p->priors[c]);
    if (isfinite((double)o->joint[c]) &&
        (o->label < 0 || o->joint[c] > o->joint[o->label]))
      o->label = (int)c;
  }
  o->dens = lse_ld(o->joint, p->C);
  for (size_t c = 0; c < p->C; c++)
    o->post[c] = o->dens == -INFINITY ? -INFINITY : o->joint[c] - o->dens;
}

/* Random parameters: means ~ 2 N(0, 1); full/tied covariances SPD with
 * eigenvalues in [0.1, 10]; variances log-uniform in [0.1, 10]; random
 * priors. */
static void params_random(tu_rng *r, params *p, size_t D, size_t C,
                          gmle_cov_type cov) {
  params_alloc(p, D, C, cov);
  for (size_t i = 0; i < C * D; i++)
    p->means[i] = 2.0 * tu_normal(r);
  switch (cov) {
  case GMLE_COV_FULL:
    for (size_t c = 0; c < C; c++)
      tu_random_spd(r, D, 0.1, 10.0, p->covs + c * D * D);
    break;
  case GMLE_COV_TIED:
    tu_random_spd(r, D, 0.1, 10.0, p->covs);
    break;
  case GMLE_COV_DIAG:
  case GMLE_COV_SPHERICAL:
    for (size_t i = 0; i < cov_len(cov, D, C); i++)
      p->covs[i] = exp(log(0.1) + log(100.0) * tu_uniform(r));
    break;
  }
  double s = 0;
  for (size_t c = 0; c < C; c++)
    s += (p->priors[c] = 0.2 + tu_uniform(r));
  for (size_t c = 0; c < C; c++)
    p->priors[c] /= s;
  params_reference(p);
}

/* Sample of class c: mu_c + scale * A_c z, A_c a square root of Sigma_c. */
static void sample_row(tu_rng *r, const params *p, size_t c, double scale,
                       double *x) {
  const size_t D = p->D;
  double z[64];
  for (size_t j = 0; j < D; j++)
    z[j] = tu_normal(r);
  for (size_t i = 0; i < D; i++) {
    double v = 0;
    if (p->cov == GMLE_COV_FULL || p->cov == GMLE_COV_TIED) {
      const long double *L = p->L + (p->cov == GMLE_COV_FULL ? c * D * D : 0);
      if (p->empty[c]) {
        v = z[i];
      } else {
        for (size_t k = 0; k <= i; k++)
          v += (double)L[i * D + k] * z[k];
      }
    } else {
      const double var =
          p->cov == GMLE_COV_DIAG ? p->covs[c * D + i] : p->covs[c];
      v = sqrt(var) * z[i];
    }
    x[i] = p->means[c * D + i] + scale * v;
  }
}

static gmle_context *new_ctx(void) {
  gmle_context *ctx = NULL;
  if (gmle_context_create(GMLE_BACKEND_AUTO, -1, &ctx) != GMLE_OK) {
    printf("  cannot create a context: %s\n", gmle_context_error(ctx));
    gmle_context_free(ctx);
    return NULL;
  }
  return ctx;
}

static gmle_model *make_model(gmle_context *ctx, const params *p) {
  gmle_model *m = NULL;
  gmle_status s = gmle_model_create(ctx, p->D, p->C, p->cov, p->means, p->covs,
                                    p->priors, p->counts, &m);
  if (s != GMLE_OK)
    printf("  gmle_model_create: %s: %s\n", gmle_status_name(s),
           gmle_context_error(ctx));
  return m;
}

/* Rows: n rows with stride `stride` (padding NaN, which must never be
 * read), as dtype; also returned as doubles (the values actually stored). */
typedef struct data {
  size_t n, stride;
  gmle_dtype dtype;
  void *x;
  double *xd; /* n x D, the stored values */
} data;

static void data_free(data *d) {
  free(d->x);
  free(d->xd);
}

static void data_random(tu_rng *r, const params *p, size_t n, size_t stride,
                        gmle_dtype dtype, data *d) {
  const size_t D = p->D;
  d->n = n;
  d->stride = stride;
  d->dtype = dtype;
  d->x = tu_alloc_data(n, stride, dtype);
  d->xd = calloc(n * D, sizeof(double));
  double row[64];
  for (size_t i = 0; i < n; i++) {
    /* mostly samples of a random class, some wider */
    const size_t c = tu_below(r, p->C);
    sample_row(r, p, c, i % 5 == 4 ? 4.0 : 1.0, row);
    for (size_t j = 0; j < stride; j++)
      tu_set(d->x, dtype, stride, i, j, j < D ? row[j] : NAN);
    for (size_t j = 0; j < D; j++)
      d->xd[i * D + j] = tu_get(d->x, dtype, stride, i, j);
  }
}

/* ---------------------------------------------------------------------- */
/* Comparison                                                              */
/* ---------------------------------------------------------------------- */

static double out_get(const void *out, gmle_dtype t, size_t k) {
  return t == GMLE_F32 ? (double)((const float *)out)[k]
                       : ((const double *)out)[k];
}

/* Error of got against ref, relative to max(1, |ref|); -inf must match
 * exactly (returns +inf on a mismatch or a NaN). */
static double err_of(double got, long double ref) {
  if (isnan(got))
    return INFINITY;
  if (ref == -INFINITY)
    return got == -INFINITY ? 0.0 : INFINITY;
  if (!isfinite(got))
    return INFINITY;
  const long double s = fabsl(ref) > 1 ? fabsl(ref) : 1;
  return (double)(fabsl((long double)got - ref) / s);
}

/* Largest error seen, by output dtype and kind (for the summary). */
static double max_err[2][5];

static const char *cov_name(gmle_cov_type c) {
  static const char *n[] = {"full", "diag", "spherical", "tied"};
  return n[c];
}

static const char *out_name(gmle_output w) {
  static const char *n[] = {"loglik", "joint", "logpost", "label", "density"};
  return n[w];
}

/* Score d under m for every output kind and out dtype and compare with the
 * reference; 0 when everything is within tolerance. */
static int compare_all(gmle_context *ctx, const gmle_model *m, const params *p,
                       const data *d, const char *tag) {
  const size_t n = d->n, C = p->C, D = p->D;
  ref_row *ref = malloc(n * sizeof *ref);
  void *out = malloc(n * C * sizeof(double));
  double *joint64 = malloc(n * C * sizeof(double));
  int32_t *lab = malloc(n * sizeof(int32_t));
  int bad = 0;
  for (size_t i = 0; i < n; i++)
    ref_outputs(p, d->xd + i * D, &ref[i]);
  CHECK_STATUS(gmle_score(ctx, m, d->x, d->dtype, n, d->stride, GMLE_OUT_JOINT,
                          GMLE_F64, joint64),
               GMLE_OK);
  for (int ot = 0; ot < 2; ot++) {
    const gmle_dtype odt = ot ? GMLE_F64 : GMLE_F32;
    const double tol = ot ? 1e-10 : 1e-6;
    for (int w = 0; w <= GMLE_OUT_DENSITY; w++) {
      gmle_status s =
          gmle_score(ctx, m, d->x, d->dtype, n, d->stride, (gmle_output)w, odt,
                     w == GMLE_OUT_LABEL ? (void *)lab : out);
      CHECK_STATUS(s, GMLE_OK);
      if (s != GMLE_OK) {
        bad = 1;
        continue;
      }
      double worst = 0;
      size_t wi = 0, wc = 0;
      for (size_t i = 0; i < n; i++) {
        if (w == GMLE_OUT_LABEL) {
          /* the reference's argmax, and exactly the argmax of the joint */
          int own = -1;
          for (size_t c = 0; c < C; c++)
            if (isfinite(joint64[i * C + c]) &&
                (own < 0 || joint64[i * C + c] > joint64[i * C + own]))
              own = (int)c;
          if (lab[i] != ref[i].label || lab[i] != own) {
            CHECK_MSG(0,
                      "%s: label of row %zu is %d, reference %d, argmax "
                      "of the joint %d",
                      tag, i, (int)lab[i], ref[i].label, own);
            bad = 1;
          }
          continue;
        }
        const size_t k = w == GMLE_OUT_DENSITY ? 1 : C;
        for (size_t c = 0; c < k; c++) {
          const double got = out_get(out, odt, i * k + c);
          const long double want = w == GMLE_OUT_LOGLIK    ? ref[i].ll[c]
                                   : w == GMLE_OUT_JOINT   ? ref[i].joint[c]
                                   : w == GMLE_OUT_LOGPOST ? ref[i].post[c]
                                                           : ref[i].dens;
          const double e = err_of(got, want);
          if (e > worst || isnan(e)) {
            worst = e;
            wi = i;
            wc = c;
          }
        }
        if (ot && w == GMLE_OUT_LOGPOST) {
          double sum = 0;
          for (size_t c = 0; c < C; c++)
            sum += exp(out_get(out, odt, i * C + c));
          if (!(fabs(sum - 1.0) <= 1e-12)) {
            CHECK_MSG(0, "%s: row %zu: posteriors sum to 1 + %.3g", tag, i,
                      sum - 1.0);
            bad = 1;
          }
        }
        if (ot && w == GMLE_OUT_DENSITY) {
          /* DENSITY is the logsumexp of the row's joint */
          long double jr[128];
          for (size_t c = 0; c < C; c++)
            jr[c] = joint64[i * C + c];
          const double e = err_of(out_get(out, odt, i), lse_ld(jr, C));
          if (!(e <= 1e-14)) {
            CHECK_MSG(0,
                      "%s: row %zu: density differs from logsumexp of the "
                      "joint by %.3g",
                      tag, i, e);
            bad = 1;
          }
        }
      }
      if (w != GMLE_OUT_LABEL) {
        if (worst > max_err[ot][w])
          max_err[ot][w] = worst;
        if (!(worst <= tol)) {
          CHECK_MSG(0,
                    "%s: %s out %s: error %.3g at row %zu class %zu "
                    "(tol %.1g)",
                    tag, out_name((gmle_output)w), ot ? "f64" : "f32", worst,
                    wi, wc, tol);
          bad = 1;
        }
      }
    }
  }
  free(ref);
  free(out);
  free(joint64);
  free(lab);
  return bad;
}

/* ---------------------------------------------------------------------- */
/* Tests                                                                   */
/* ---------------------------------------------------------------------- */

static const gmle_cov_type COVS[4] = {GMLE_COV_FULL, GMLE_COV_DIAG,
                                      GMLE_COV_SPHERICAL, GMLE_COV_TIED};

TEST(score_matches_long_double_reference_all_types) {
  gmle_context *ctx = new_ctx();
  CHECK(ctx);
  if (!ctx)
    return;
  const size_t Ds[] = {1, 2, 13, 40}, Cs[] = {1, 3, 17};
  tu_rng r;
  tu_seed(&r, 20261123);
  int configs = 0, failed = 0;
  for (int ci = 0; ci < 4; ci++)
    for (size_t di = 0; di < 4; di++)
      for (size_t k = 0; k < 3; k++)
        for (int it = 0; it < 2; it++) {
          const gmle_cov_type cov = COVS[ci];
          const size_t D = Ds[di], C = Cs[k];
          const gmle_dtype dt = it ? GMLE_F64 : GMLE_F32;
          params p;
          params_random(&r, &p, D, C, cov);
          gmle_model *m = make_model(ctx, &p);
          CHECK(m);
          if (m) {
            data d;
            /* odd configurations use a padded row stride */
            const size_t stride = (configs % 2) ? D + 3 : D;
            data_random(&r, &p, 61, stride, dt, &d);
            char tag[96];
            snprintf(tag, sizeof tag, "%s D=%zu C=%zu in=%s stride=%zu",
                     cov_name(cov), D, C, it ? "f64" : "f32", stride);
            failed += compare_all(ctx, m, &p, &d, tag);
            data_free(&d);
          }
          configs++;
          gmle_model_free(m);
          params_free(&p);
        }
  printf("  %d configurations, %d with failures; largest error "
         "(rel. to max(1,|ref|)):\n",
         configs, failed);
  for (int ot = 1; ot >= 0; ot--)
    printf("    out %s: loglik %.2g joint %.2g logpost %.2g density %.2g\n",
           ot ? "f64" : "f32", max_err[ot][0], max_err[ot][1], max_err[ot][2],
           max_err[ot][4]);
  gmle_context_free(ctx);
}

/* Shapes that make the CPU backend cut a batch into several GEMM tiles of
 * rows and of classes (and, with empty classes, a separate diag tile). */
TEST(score_tiles_cover_every_row_and_class) {
  gmle_context *ctx = new_ctx();
  CHECK(ctx);
  if (!ctx)
    return;
  struct {
    gmle_cov_type cov;
    size_t D, C, n;
    int empties;
  } cfg[] = {{GMLE_COV_FULL, 64, 40, 300, 0},
             {GMLE_COV_FULL, 64, 40, 300, 1},
             {GMLE_COV_TIED, 40, 5, 8000, 0},
             {GMLE_COV_DIAG, 3, 100, 3000, 1},
             {GMLE_COV_DIAG, 3, 100, 3000, 0},
             {GMLE_COV_SPHERICAL, 5, 100, 3000, 0},
             {GMLE_COV_SPHERICAL, 5, 100, 3000, 1}};
  tu_rng r;
  tu_seed(&r, 77);
  for (size_t k = 0; k < sizeof cfg / sizeof cfg[0]; k++) {
    params p;
    params_random(&r, &p, cfg[k].D, cfg[k].C, cfg[k].cov);
    if (cfg[k].empties) {
      p.counts = malloc(cfg[k].C * sizeof(double));
      for (size_t c = 0; c < cfg[k].C; c++)
        p.counts[c] = c % 7 == 3 ? 0.0 : 10.0;
      params_reference(&p);
    }
    gmle_model *m = make_model(ctx, &p);
    CHECK(m);
    if (m) {
      data d;
      data_random(&r, &p, cfg[k].n, cfg[k].D, GMLE_F64, &d);
      char tag[96];
      snprintf(tag, sizeof tag, "tiles %s D=%zu C=%zu n=%zu%s",
               cov_name(cfg[k].cov), cfg[k].D, cfg[k].C, cfg[k].n,
               cfg[k].empties ? " with empty classes" : "");
      CHECK(compare_all(ctx, m, &p, &d, tag) == 0);
      data_free(&d);
    }
    gmle_model_free(m);
    params_free(&p);
  }
  gmle_context_free(ctx);
}

/* |mean| >> std: the centring in double keeps the accuracy. */
TEST(score_large_offset_means_stay_accurate) {
  gmle_context *ctx = new_ctx();
  CHECK(ctx);
  if (!ctx)
    return;
  tu_rng r;
  tu_seed(&r, 7);
  for (int ci = 0; ci < 4; ci++) {
    params p;
    params_alloc(&p, 6, 3, COVS[ci]);
    for (size_t i = 0; i < 18; i++)
      p.means[i] = 1e4 + 0.05 * tu_normal(&r);
    for (size_t c = 0; c < (COVS[ci] == GMLE_COV_FULL ? 3u : 1u); c++)
      if (COVS[ci] == GMLE_COV_FULL || COVS[ci] == GMLE_COV_TIED)
        tu_random_spd(&r, 6, 1e-5, 1e-3, p.covs + c * 36);
    if (COVS[ci] == GMLE_COV_DIAG || COVS[ci] == GMLE_COV_SPHERICAL)
      for (size_t i = 0; i < cov_len(COVS[ci], 6, 3); i++)
        p.covs[i] = 1e-4 * (1 + tu_uniform(&r));
    for (size_t c = 0; c < 3; c++)
      p.priors[c] = 1.0 / 3;
    params_reference(&p);
    gmle_model *m = make_model(ctx, &p);
    CHECK(m);
    for (int it = 0; m && it < 2; it++) {
      data d;
      data_random(&r, &p, 200, 6, it ? GMLE_F64 : GMLE_F32, &d);
      char tag[64];
      snprintf(tag, sizeof tag, "offset 1e4 %s in=%s", cov_name(COVS[ci]),
               it ? "f64" : "f32");
      CHECK(compare_all(ctx, m, &p, &d, tag) == 0);
      data_free(&d);
    }
    gmle_model_free(m);
    params_free(&p);
  }
  gmle_context_free(ctx);
}

/* Diagonal models: a row close to the mean of a class with a tiny variance
 * far from the centre (where the GEMM's expanded form would cancel). */
TEST(score_diag_tight_class_far_from_centre) {
  gmle_context *ctx = new_ctx();
  CHECK(ctx);
  if (!ctx)
    return;
  for (int sph = 0; sph < 2; sph++) {
    params p;
    params_alloc(&p, 3, 2, sph ? GMLE_COV_SPHERICAL : GMLE_COV_DIAG);
    for (size_t j = 0; j < 3; j++)
      p.means[3 + j] = 1e3 + (double)j;
    for (size_t i = 0; i < (sph ? 2u : 6u); i++)
      p.covs[i] = i < (sph ? 1u : 3u) ? 1.0 : 1e-6;
    p.priors[0] = 0.999;
    p.priors[1] = 0.001;
    params_reference(&p);
    gmle_model *m = make_model(ctx, &p);
    CHECK(m);
    tu_rng r;
    tu_seed(&r, 11);
    data d;
    d.n = 50;
    d.stride = 3;
    d.dtype = GMLE_F64;
    d.x = calloc(150, sizeof(double));
    d.xd = calloc(150, sizeof(double));
    for (size_t i = 0; i < 50; i++)
      sample_row(&r, &p, i % 2, 1.0, d.xd + 3 * i);
    memcpy(d.x, d.xd, 150 * sizeof(double));
    if (m)
      CHECK(compare_all(ctx, m, &p, &d,
                        sph ? "spherical tight class" : "diag tight class") ==
            0);
    data_free(&d);
    gmle_model_free(m);
    params_free(&p);
  }
  gmle_context_free(ctx);
}

/* gmle_total_loglik = the sum of the per-row values, with and without
 * labels and weights. */
TEST(total_loglik_equals_sum_of_rows) {
  gmle_context *ctx = new_ctx();
  CHECK(ctx);
  if (!ctx)
    return;
  tu_rng r;
  tu_seed(&r, 99);
  const size_t n = 3 * GMLE__SCORE_BATCH_ROWS / 2 + 7, D = 13, C = 3;
  for (int ci = 0; ci < 4; ci++) {
    params p;
    params_random(&r, &p, D, C, COVS[ci]);
    gmle_model *m = make_model(ctx, &p);
    CHECK(m);
    if (!m) {
      params_free(&p);
      continue;
    }
    data d;
    data_random(&r, &p, n, D, GMLE_F64, &d);
    int32_t *lab = malloc(n * sizeof *lab);
    double *w = malloc(n * sizeof *w), *ll = malloc(n * C * sizeof *ll);
    double *dens = malloc(n * sizeof *dens);
    tu_labels_random(&r, n, C, lab);
    for (size_t i = 0; i < n; i++)
      w[i] = i % 7 == 0 ? 0.0 : 2.0 * tu_uniform(&r);
    CHECK_STATUS(
        gmle_score(ctx, m, d.x, GMLE_F64, n, D, GMLE_OUT_LOGLIK, GMLE_F64, ll),
        GMLE_OK);
    CHECK_STATUS(gmle_score(ctx, m, d.x, GMLE_F64, n, D, GMLE_OUT_DENSITY,
                            GMLE_F64, dens),
                 GMLE_OK);
    for (int variant = 0; variant < 4; variant++) {
      const int use_lab = variant & 1, use_w = variant & 2;
      long double want = 0, ref = 0;
      for (size_t i = 0; i < n; i++) {
        const long double wi = use_w ? w[i] : 1.0;
        ref_row rr;
        ref_outputs(&p, d.xd + i * D, &rr);
        want += wi * (use_lab ? ll[i * C + (size_t)lab[i]] : dens[i]);
        ref += wi * (use_lab ? rr.ll[lab[i]] : rr.dens);
      }
      double got = 0;
      CHECK_STATUS(gmle_total_loglik(ctx, m, d.x, GMLE_F64, n, D,
                                     use_lab ? lab : NULL, use_w ? w : NULL,
                                     &got),
                   GMLE_OK);
      CHECK_REL(got, (double)want, 1e-13);
      CHECK_REL(got, (double)ref, 1e-10);
    }
    free(lab);
    free(w);
    free(ll);
    free(dens);
    data_free(&d);
    gmle_model_free(m);
    params_free(&p);
  }
  gmle_context_free(ctx);
}

/* n = B - 1, B, B + 1 and several batches: the same values as the
 * reference, and as scoring in small pieces. */
TEST(score_batch_boundaries_give_same_values) {
  gmle_context *ctx = new_ctx();
  CHECK(ctx);
  if (!ctx)
    return;
  const size_t B = GMLE__SCORE_BATCH_ROWS, D = 13, C = 3;
  const size_t ns[] = {B - 1, B, B + 1, 3 * B + 17};
  tu_rng r;
  tu_seed(&r, 5);
  for (int ci = 0; ci < 4; ci++) {
    params p;
    params_random(&r, &p, D, C, COVS[ci]);
    gmle_model *m = make_model(ctx, &p);
    CHECK(m);
    for (size_t k = 0; m && k < 4; k++) {
      const size_t n = ns[k], stride = D + 1;
      data d;
      data_random(&r, &p, n, stride, GMLE_F32, &d);
      double *all = malloc(n * C * sizeof *all);
      double *piece = malloc(n * C * sizeof *piece);
      CHECK_STATUS(gmle_score(ctx, m, d.x, GMLE_F32, n, stride,
                              GMLE_OUT_LOGPOST, GMLE_F64, all),
                   GMLE_OK);
      /* pieces of 1000 rows (crossing batch boundaries at other places) */
      for (size_t r0 = 0; r0 < n; r0 += 1000) {
        const size_t nb = n - r0 < 1000 ? n - r0 : 1000;
        CHECK_STATUS(gmle_score(ctx, m, (const float *)d.x + r0 * stride,
                                GMLE_F32, nb, stride, GMLE_OUT_LOGPOST,
                                GMLE_F64, piece + r0 * C),
                     GMLE_OK);
      }
      double worst_ref = 0, worst_piece = 0;
      for (size_t i = 0; i < n; i++) {
        ref_row rr;
        ref_outputs(&p, d.xd + i * D, &rr);
        for (size_t c = 0; c < C; c++) {
          double e = err_of(all[i * C + c], rr.post[c]);
          worst_ref = e > worst_ref ? e : worst_ref;
          e = err_of(piece[i * C + c], all[i * C + c]);
          worst_piece = e > worst_piece ? e : worst_piece;
        }
      }
      CHECK_MSG(worst_ref <= 1e-10, "%s n=%zu: error %.3g vs reference",
                cov_name(COVS[ci]), n, worst_ref);
      CHECK_MSG(worst_piece <= 1e-13, "%s n=%zu: pieces differ by %.3g",
                cov_name(COVS[ci]), n, worst_piece);
      free(all);
      free(piece);
      data_free(&d);
    }
    gmle_model_free(m);
    params_free(&p);
  }
  gmle_context_free(ctx);
}

static int has_nan(const double *v, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (isnan(v[i]))
      return 1;
  return 0;
}

/* An empty class (count 0 with a zero covariance, or prior 0) scores -inf,
 * never NaN, and the other classes are unaffected. */
TEST(score_empty_class_is_minus_inf_others_unaffected) {
  gmle_context *ctx = new_ctx();
  CHECK(ctx);
  if (!ctx)
    return;
  tu_rng r;
  tu_seed(&r, 3);
  const size_t D = 4, C = 3, n = 40;
  for (int ci = 0; ci < 4; ci++)
    for (int by_prior = 0; by_prior < 2; by_prior++) {
      params p;
      params_random(&r, &p, D, C, COVS[ci]);
      if (by_prior) {
        p.priors[0] += p.priors[1] / 2;
        p.priors[2] += p.priors[1] - p.priors[1] / 2;
        p.priors[1] = 0;
      } else {
        p.counts = calloc(C, sizeof(double));
        p.counts[0] = 10;
        p.counts[2] = 5;
        /* the empty class's covariance is zero (what a fit leaves) */
        if (COVS[ci] == GMLE_COV_FULL)
          memset(p.covs + D * D, 0, D * D * sizeof(double));
        else if (COVS[ci] == GMLE_COV_DIAG)
          memset(p.covs + D, 0, D * sizeof(double));
        else if (COVS[ci] == GMLE_COV_SPHERICAL)
          p.covs[1] = 0;
      }
      params_reference(&p);
      CHECK(p.empty[1] && !p.empty[0] && !p.empty[2]);
      gmle_model *m = make_model(ctx, &p);
      CHECK(m);
      if (m) {
        data d;
        data_random(&r, &p, n, D, GMLE_F64, &d);
        char tag[64];
        snprintf(tag, sizeof tag, "%s, class 1 empty by %s", cov_name(COVS[ci]),
                 by_prior ? "prior" : "count");
        CHECK(compare_all(ctx, m, &p, &d, tag) == 0);
        double *ll = malloc(n * C * sizeof *ll);
        for (int w = 0; w < 3; w++) {
          CHECK_STATUS(gmle_score(ctx, m, d.x, GMLE_F64, n, D, (gmle_output)w,
                                  GMLE_F64, ll),
                       GMLE_OK);
          CHECK(!has_nan(ll, n * C));
          for (size_t i = 0; i < n; i++)
            CHECK(ll[i * C + 1] == -INFINITY && isfinite(ll[i * C]) &&
                  isfinite(ll[i * C + 2]));
        }
        free(ll);
        data_free(&d);
      }
      gmle_model_free(m);
      params_free(&p);
    }
  gmle_context_free(ctx);
}

/* Every class empty: density -inf, log-posteriors -inf, label -1; never
 * NaN. */
TEST(score_all_classes_empty_never_nan) {
  gmle_context *ctx = new_ctx();
  CHECK(ctx);
  if (!ctx)
    return;
  tu_rng r;
  tu_seed(&r, 4);
  const size_t D = 3, C = 2, n = 10;
  for (int ci = 0; ci < 4; ci++) {
    params p;
    params_random(&r, &p, D, C, COVS[ci]);
    p.counts = calloc(C, sizeof(double));
    memset(p.covs, 0, cov_len(COVS[ci], D, C) * sizeof(double));
    gmle_model *m = make_model(ctx, &p);
    CHECK(m);
    if (!m) {
      params_free(&p);
      continue;
    }
    double x[30], out[20];
    int32_t lab[10];
    for (size_t i = 0; i < 30; i++)
      x[i] = tu_normal(&r);
    for (int w = 0; w <= GMLE_OUT_DENSITY; w++) {
      const size_t k = w == GMLE_OUT_DENSITY ? 1 : C;
      if (w == GMLE_OUT_LABEL) {
        CHECK_STATUS(gmle_score(ctx, m, x, GMLE_F64, n, D, GMLE_OUT_LABEL,
                                GMLE_F64, lab),
                     GMLE_OK);
        for (size_t i = 0; i < n; i++)
          CHECK(lab[i] == -1);
        continue;
      }
      for (int ot = 0; ot < 2; ot++) {
        CHECK_STATUS(gmle_score(ctx, m, x, GMLE_F64, n, D, (gmle_output)w,
                                ot ? GMLE_F64 : GMLE_F32, out),
                     GMLE_OK);
        for (size_t i = 0; i < n * k; i++)
          CHECK(out_get(out, ot ? GMLE_F64 : GMLE_F32, i) == -INFINITY);
      }
    }
    double t = 0;
    CHECK_STATUS(gmle_total_loglik(ctx, m, x, GMLE_F64, n, D, NULL, NULL, &t),
                 GMLE_OK);
    CHECK(t == -INFINITY);
    gmle_model_free(m);
    params_free(&p);
  }
  gmle_context_free(ctx);
}

/* A row 1e3 standard deviations away: finite log-likelihood close to
 * -d^2/2, accurate to the reference; posteriors still sum to 1. */
TEST(score_outlier_1e3_sigma_is_finite) {
  gmle_context *ctx = new_ctx();
  CHECK(ctx);
  if (!ctx)
    return;
  tu_rng r;
  tu_seed(&r, 8);
  const size_t D = 13, C = 3;
  for (int ci = 0; ci < 4; ci++) {
    params p;
    params_random(&r, &p, D, C, COVS[ci]);
    gmle_model *m = make_model(ctx, &p);
    CHECK(m);
    if (!m) {
      params_free(&p);
      continue;
    }
    /* x = mu_0 + 1e3 A_0 u with |u| = 1: Mahalanobis distance 1e3 */
    double u[13], nu = 0, x[13];
    for (size_t j = 0; j < D; j++) {
      u[j] = tu_normal(&r);
      nu += u[j] * u[j];
    }
    for (size_t j = 0; j < D; j++)
      u[j] /= sqrt(nu);
    for (size_t i = 0; i < D; i++) {
      long double v = 0;
      if (COVS[ci] == GMLE_COV_FULL || COVS[ci] == GMLE_COV_TIED) {
        for (size_t k = 0; k <= i; k++)
          v += p.L[i * D + k] * u[k];
      } else {
        v = sqrt(COVS[ci] == GMLE_COV_DIAG ? p.covs[i] : p.covs[0]) * u[i];
      }
      x[i] = p.means[i] + 1e3 * (double)v;
    }
    double ll[3], post[3];
    ref_row rr;
    ref_outputs(&p, x, &rr);
    CHECK_STATUS(
        gmle_score(ctx, m, x, GMLE_F64, 1, D, GMLE_OUT_LOGLIK, GMLE_F64, ll),
        GMLE_OK);
    CHECK_STATUS(
        gmle_score(ctx, m, x, GMLE_F64, 1, D, GMLE_OUT_LOGPOST, GMLE_F64, post),
        GMLE_OK);
    CHECK(isfinite(ll[0]));
    CHECK_REL(ll[0], -0.5e6, 1e-3);
    for (size_t c = 0; c < C; c++) {
      CHECK_REL(ll[c], (double)rr.ll[c], 1e-10);
      CHECK(!isnan(post[c]));
    }
    CHECK_CLOSE(exp(post[0]) + exp(post[1]) + exp(post[2]), 1.0, 1e-12);
    gmle_model_free(m);
    params_free(&p);
  }
  gmle_context_free(ctx);
}

/* A NaN at (row 17, col 3) names the row and column; rows in a later batch
 * are named by their row in the caller's array. */
TEST(score_nan_input_names_row_and_column) {
  gmle_context *ctx = new_ctx();
  CHECK(ctx);
  if (!ctx)
    return;
  tu_rng r;
  tu_seed(&r, 6);
  params p;
  params_random(&r, &p, 5, 2, GMLE_COV_FULL);
  gmle_model *m = make_model(ctx, &p);
  CHECK(m);
  const size_t B = GMLE__SCORE_BATCH_ROWS, n = B + 20;
  for (int it = 0; m && it < 2; it++) {
    const gmle_dtype dt = it ? GMLE_F64 : GMLE_F32;
    data d;
    data_random(&r, &p, n, 5, dt, &d);
    double *out = malloc(n * 2 * sizeof *out);
    tu_set(d.x, dt, 5, 17, 3, NAN);
    CHECK_STATUS(
        gmle_score(ctx, m, d.x, dt, n, 5, GMLE_OUT_LOGLIK, GMLE_F64, out),
        GMLE_E_NONFINITE_INPUT);
    CHECK_ERROR_HAS(ctx, "row 17 col 3");
    CHECK_ERROR_HAS(ctx, "NaN");
    CHECK_ERROR_HAS(ctx, "batch 0");
    double t;
    CHECK_STATUS(gmle_total_loglik(ctx, m, d.x, dt, n, 5, NULL, NULL, &t),
                 GMLE_E_NONFINITE_INPUT);
    CHECK_ERROR_HAS(ctx, "row 17 col 3");
    tu_set(d.x, dt, 5, 17, 3, 0.5);
    tu_set(d.x, dt, 5, B + 5, 1, INFINITY);
    CHECK_STATUS(
        gmle_score(ctx, m, d.x, dt, n, 5, GMLE_OUT_DENSITY, GMLE_F32, out),
        GMLE_E_NONFINITE_INPUT);
    char want[64];
    snprintf(want, sizeof want, "batch 1 row %zu col 1: +Inf", B + 5);
    CHECK_ERROR_HAS(ctx, want);
    /* the same call without the bad row succeeds */
    CHECK_STATUS(
        gmle_score(ctx, m, d.x, dt, B, 5, GMLE_OUT_DENSITY, GMLE_F32, out),
        GMLE_OK);
    CHECK_STATUS(gmle_total_loglik(ctx, m, d.x, dt, B, 5, NULL, NULL, &t),
                 GMLE_OK);
    CHECK(isfinite(t));
    free(out);
    data_free(&d);
  }
  gmle_model_free(m);
  params_free(&p);
  gmle_context_free(ctx);
}

TEST(score_rejects_bad_arguments) {
  gmle_context *ctx = new_ctx(), *other = new_ctx();
  CHECK(ctx && other);
  if (!ctx || !other) {
    gmle_context_free(ctx);
    gmle_context_free(other);
    return;
  }
  tu_rng r;
  tu_seed(&r, 2);
  params p;
  params_random(&r, &p, 4, 3, GMLE_COV_DIAG);
  gmle_model *m = make_model(ctx, &p);
  CHECK(m);
  double x[40] = {0}, out[30];
  int32_t lab[10] = {0};
  double t = 0;
  CHECK_STATUS(
      gmle_score(NULL, m, x, GMLE_F64, 10, 4, GMLE_OUT_LOGLIK, GMLE_F64, out),
      GMLE_E_INVALID_ARG);
  CHECK_STATUS(
      gmle_score(ctx, NULL, x, GMLE_F64, 10, 4, GMLE_OUT_LOGLIK, GMLE_F64, out),
      GMLE_E_INVALID_ARG);
  CHECK_ERROR_HAS(ctx, "model");
  CHECK_STATUS(
      gmle_score(ctx, m, NULL, GMLE_F64, 10, 4, GMLE_OUT_LOGLIK, GMLE_F64, out),
      GMLE_E_INVALID_ARG);
  CHECK_ERROR_HAS(ctx, "x is NULL");
  CHECK_STATUS(
      gmle_score(ctx, m, x, GMLE_F64, 10, 4, GMLE_OUT_LOGLIK, GMLE_F64, NULL),
      GMLE_E_INVALID_ARG);
  CHECK_ERROR_HAS(ctx, "out is NULL");
  CHECK_STATUS(gmle_score(ctx, m, x, (gmle_dtype)7, 10, 4, GMLE_OUT_LOGLIK,
                          GMLE_F64, out),
               GMLE_E_INVALID_ARG);
  CHECK_ERROR_HAS(ctx, "dtype 7");
  CHECK_STATUS(gmle_score(ctx, m, x, GMLE_F64, 10, 4, GMLE_OUT_LOGLIK,
                          (gmle_dtype)0, out),
               GMLE_E_INVALID_ARG);
  CHECK_ERROR_HAS(ctx, "out_dtype");
  /* LABEL ignores out_dtype */
  CHECK_STATUS(gmle_score(ctx, m, x, GMLE_F64, 10, 4, GMLE_OUT_LABEL,
                          (gmle_dtype)0, lab),
               GMLE_OK);
  CHECK_STATUS(
      gmle_score(ctx, m, x, GMLE_F64, 10, 4, (gmle_output)9, GMLE_F64, out),
      GMLE_E_INVALID_ARG);
  CHECK_STATUS(
      gmle_score(ctx, m, x, GMLE_F64, 10, 3, GMLE_OUT_LOGLIK, GMLE_F64, out),
      GMLE_E_INVALID_ARG);
  CHECK_ERROR_HAS(ctx, "row_stride 3");
  CHECK_STATUS(gmle_score(ctx, m, x, GMLE_F64, (size_t)1 << 62, 8,
                          GMLE_OUT_LOGLIK, GMLE_F64, out),
               GMLE_E_TOO_LARGE);
  CHECK_ERROR_HAS(ctx, "overflows");
  CHECK_STATUS(gmle_total_loglik(ctx, m, x, GMLE_F32, (size_t)1 << 62, 4, NULL,
                                 NULL, &t),
               GMLE_E_TOO_LARGE);
  /* n_rows == 0: a no-op that writes nothing (NULL buffers are fine) */
  out[0] = 42;
  CHECK_STATUS(
      gmle_score(ctx, m, x, GMLE_F64, 0, 4, GMLE_OUT_LOGLIK, GMLE_F64, out),
      GMLE_OK);
  CHECK(out[0] == 42);
  CHECK_STATUS(
      gmle_score(ctx, m, NULL, GMLE_F64, 0, 4, GMLE_OUT_LOGLIK, GMLE_F64, NULL),
      GMLE_OK);
  t = 1;
  CHECK_STATUS(gmle_total_loglik(ctx, m, NULL, GMLE_F64, 0, 4, NULL, NULL, &t),
               GMLE_OK);
  CHECK(t == 0);
  /* a model made on another context */
  CHECK_STATUS(
      gmle_score(other, m, x, GMLE_F64, 10, 4, GMLE_OUT_LOGLIK, GMLE_F64, out),
      GMLE_E_INVALID_ARG);
  CHECK_ERROR_HAS(other, "another context");
  /* total_loglik: labels, weights, out */
  CHECK_STATUS(gmle_total_loglik(ctx, m, x, GMLE_F64, 10, 4, lab, NULL, NULL),
               GMLE_E_INVALID_ARG);
  lab[6] = 3;
  CHECK_STATUS(gmle_total_loglik(ctx, m, x, GMLE_F64, 10, 4, lab, NULL, &t),
               GMLE_E_BAD_LABEL);
  CHECK_ERROR_HAS(ctx, "row 6: label 3");
  lab[6] = -1;
  CHECK_STATUS(gmle_total_loglik(ctx, m, x, GMLE_F64, 10, 4, lab, NULL, &t),
               GMLE_E_BAD_LABEL);
  CHECK_ERROR_HAS(ctx, "row 6: label -1");
  lab[6] = 0;
  double w[10] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
  w[4] = -1;
  CHECK_STATUS(gmle_total_loglik(ctx, m, x, GMLE_F64, 10, 4, lab, w, &t),
               GMLE_E_INVALID_WEIGHTS);
  CHECK_ERROR_HAS(ctx, "row 4");
  w[4] = NAN;
  CHECK_STATUS(gmle_total_loglik(ctx, m, x, GMLE_F64, 10, 4, NULL, w, &t),
               GMLE_E_INVALID_WEIGHTS);
  CHECK_ERROR_HAS(ctx, "not finite");
  w[4] = 1;
  CHECK_STATUS(gmle_total_loglik(ctx, m, x, GMLE_F64, 10, 4, lab, w, &t),
               GMLE_OK);
  CHECK(isfinite(t));
  gmle_model_free(m);
  params_free(&p);
  gmle_context_free(other);
  gmle_context_free(ctx);
}

/* An allocation failure while scoring is a status, and the next call works. */
TEST(score_out_of_memory_is_a_status) {
  gmle_context *ctx = new_ctx();
  CHECK(ctx);
  if (!ctx)
    return;
  tu_rng r;
  tu_seed(&r, 12);
  params p;
  params_random(&r, &p, 5, 3, GMLE_COV_FULL);
  gmle_model *m = make_model(ctx, &p);
  CHECK(m);
  double x[50] = {0}, out[30], t;
  gmle__test_fail_alloc_after(1);
  CHECK_STATUS(
      gmle_score(ctx, m, x, GMLE_F64, 10, 5, GMLE_OUT_LOGPOST, GMLE_F64, out),
      GMLE_E_OUT_OF_MEMORY);
  CHECK_ERROR_HAS(ctx, "out of memory");
  gmle__test_fail_alloc_after(1);
  CHECK_STATUS(gmle_total_loglik(ctx, m, x, GMLE_F64, 10, 5, NULL, NULL, &t),
               GMLE_E_OUT_OF_MEMORY);
  gmle__test_fail_alloc_after(2);
  CHECK_STATUS(gmle_total_loglik(ctx, m, x, GMLE_F64, 10, 5, NULL, NULL, &t),
               GMLE_E_OUT_OF_MEMORY);
  gmle__test_fail_alloc_after(0);
  CHECK_STATUS(
      gmle_score(ctx, m, x, GMLE_F64, 10, 5, GMLE_OUT_LOGPOST, GMLE_F64, out),
      GMLE_OK);
  gmle_model_free(m);
  params_free(&p);
  gmle_context_free(ctx);
}

int main(int argc, char **argv) {
  CHECK_INIT(argc, argv);
  RUN(score_matches_long_double_reference_all_types);
  RUN(score_tiles_cover_every_row_and_class);
  RUN(score_large_offset_means_stay_accurate);
  RUN(score_diag_tight_class_far_from_centre);
  RUN(total_loglik_equals_sum_of_rows);
  RUN(score_batch_boundaries_give_same_values);
  RUN(score_empty_class_is_minus_inf_others_unaffected);
  RUN(score_all_classes_empty_never_nan);
  RUN(score_outlier_1e3_sigma_is_finite);
  RUN(score_nan_input_names_row_and_column);
  RUN(score_rejects_bad_arguments);
  RUN(score_out_of_memory_is_a_status);
  return CHECK_DONE();
}
