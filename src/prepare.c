/* prepare.c -- the model finishing every backend shares (core): log priors,
 * Cholesky factors and log-determinants, and the GEMM-form scoring cache
 * every backend reads (stacked inverse factors around a global centre).
 * What a backend derives from these for itself (packed kernel parameters,
 * device copies) it builds at the first score (gmle__model_backend_data,
 * src/model.c), not here: a model fitted or loaded may never be scored.
 *
 * Empty classes (count 0 or prior 0) are never factorised: their
 * covariances may be zero or garbage. They get an identity factor, a zero
 * log-determinant and a log prior of -inf, so that a backend computing them
 * blindly still gets finite intermediates, and every output masks them to
 * -inf. */
#include "internal.h"

#include <cblas.h>
#include <lapacke.h>
#include <limits.h>
#include <math.h>
#include <string.h>

/* What would fix a covariance that does not factorise. */
static const char *remedy(const gmle_model *m) {
  return m->has_train
             ? "regularise the fit: set gmle_fit_options.abs_floor > 0 "
               "(e.g. 1e-6), keep rel_floor > 0, set max_condition, or fit "
               "cov = GMLE_COV_DIAG"
             : "the covariance must be symmetric positive definite (add a "
               "small multiple of the identity to regularise it)";
}

/* Lower Cholesky factor L (row-major, strict upper part zero) of the
 * symmetric D x D matrix a, and log|a| = 2 sum log L_ii. `who` names the
 * matrix in messages ("class 3", "tied covariance").
 *
 * A row-major lower triangle is the column-major upper triangle of the same
 * memory, so LAPACK's column-major 'U' factorisation computes L in place
 * without the transposed copy LAPACKE makes for row-major input. */
static gmle_status factor_full(const gmle_model *m, const char *who,
                               const double *a, double *l, double *logdet) {
  const size_t D = m->dim;
  /* Finiteness first: OpenBLAS's dpotrf returns info = 0 with a NaN factor
   * for NaN input, and every LAPACK returns info = 0 for +Inf. */
  for (size_t i = 0; i < D; i++)
    for (size_t j = 0; j < D; j++)
      GMLE_RETURN_IF(!isfinite(a[i * D + j]), m->ctx, GMLE_E_NONFINITE_STATS,
                     "%s: covariance entry (%zu, %zu) is %s; it cannot be "
                     "factorised",
                     who, i, j, gmle__nonfinite_name(a[i * D + j]));
  for (size_t i = 0; i < D; i++)
    for (size_t j = 0; j < D; j++)
      l[i * D + j] = j <= i ? a[i * D + j] : 0.0;
  lapack_int info = LAPACKE_dpotrf_work(LAPACK_COL_MAJOR, 'U', (lapack_int)D, l,
                                        (lapack_int)D);
  GMLE_RETURN_IF(info < 0, m->ctx, GMLE_E_INTERNAL,
                 "%s: dpotrf rejected argument %d", who, -(int)info);
  GMLE_RETURN_IF(info > 0, m->ctx, GMLE_E_SINGULAR_COV,
                 "%s: covariance is not positive definite (Cholesky fails at "
                 "leading minor %d of %zu); %s",
                 who, (int)info, D, remedy(m));
  /* ... and the factor after: never trust info alone. */
  double acc = 0;
  for (size_t i = 0; i < D; i++) {
    const double d = l[i * D + i];
    GMLE_RETURN_IF(!isfinite(d), m->ctx, GMLE_E_NONFINITE_STATS,
                   "%s: Cholesky factor entry (%zu, %zu) is %s", who, i, i,
                   gmle__nonfinite_name(d));
    GMLE_RETURN_IF(!(d > 0), m->ctx, GMLE_E_SINGULAR_COV,
                   "%s: covariance is not positive definite (Cholesky pivot "
                   "%zu of %zu is %g); %s",
                   who, i + 1, D, d, remedy(m));
    acc += log(d);
  }
  *logdet = 2.0 * acc;
  return GMLE_OK;
}

/* Standard deviations of a diagonal (n = D) or spherical (n = 1) class. */
static gmle_status factor_diag(const gmle_model *m, size_t c, const double *v,
                               size_t n, int spherical, double *sd,
                               double *logdet) {
  double acc = 0;
  char what[64];
  for (size_t j = 0; j < n; j++) {
    if (!spherical)
      snprintf(what, sizeof what, "variance of feature %zu", j);
    else
      snprintf(what, sizeof what, "spherical variance");
    GMLE_RETURN_IF(!isfinite(v[j]), m->ctx, GMLE_E_NONFINITE_STATS,
                   "class %zu: %s is %s", c, what, gmle__nonfinite_name(v[j]));
    /* 1/v is needed by the scoring cache: it must be finite too. */
    GMLE_RETURN_IF(!(v[j] > 0) || !isfinite(1.0 / v[j]), m->ctx,
                   GMLE_E_SINGULAR_COV, "class %zu: %s is %g, not positive; %s",
                   c, what, v[j], remedy(m));
    sd[j] = sqrt(v[j]);
    acc += log(v[j]);
  }
  *logdet = spherical ? (double)m->dim * acc : acc;
  return GMLE_OK;
}

static void identity(double *l, size_t D) {
  for (size_t i = 0; i < D; i++)
    for (size_t j = 0; j < D; j++)
      l[i * D + j] = i == j ? 1.0 : 0.0;
}

void gmle__score_cache_free(gmle__score_cache *sc) {
  if (!sc)
    return;
  gmle__free(sc->active);
  gmle__free(sc->center);
  gmle__free(sc->w);
  gmle__free(sc->b);
  gmle__free(sc->lconst);
  gmle__free(sc);
}

/* The GEMM-form cache: with m the prior-weighted mean of the active class
 * means (subtracted from rows in double, so that |mean| >> std does not
 * cancel), z_c = L_c^-1 (x - m) - L_c^-1 (mu_c - m). */
static gmle_status build_cache(gmle_model *m) {
  const size_t D = m->dim, C = m->n_classes;
  gmle_context *ctx = m->ctx;
  gmle__score_cache *sc = gmle__calloc(1, sizeof *sc);
  if (!sc)
    return gmle__error(ctx, GMLE_E_OUT_OF_MEMORY,
                       "prepare: out of memory (scoring cache)");
  size_t Ca = 0;
  for (size_t c = 0; c < C; c++)
    Ca += !m->empty[c];
  sc->n_active = Ca;
  const size_t E = m->cov == GMLE_COV_DIAG ? D : 1;
  size_t w_len = 0, b_len = 0;
  switch (m->cov) {
  case GMLE_COV_FULL:
    w_len = Ca * D * D; /* no overflow: at most the size of m->factor */
    b_len = Ca * D;
    break;
  case GMLE_COV_TIED:
    w_len = D * D;
    b_len = Ca * D;
    break;
  case GMLE_COV_DIAG:
  case GMLE_COV_SPHERICAL:
    w_len = (D + E) * Ca;
    b_len = Ca;
    break;
  }
  sc->active = gmle__calloc(Ca ? Ca : 1, sizeof(size_t));
  sc->center = gmle__calloc(D, sizeof(double));
  sc->w = gmle__calloc(w_len ? w_len : 1, sizeof(double));
  sc->b = gmle__calloc(b_len ? b_len : 1, sizeof(double));
  sc->lconst = gmle__calloc(Ca ? Ca : 1, sizeof(double));
  if (!sc->active || !sc->center || !sc->w || !sc->b || !sc->lconst) {
    gmle__score_cache_free(sc);
    return gmle__error(ctx, GMLE_E_OUT_OF_MEMORY,
                       "prepare: out of memory (scoring cache, %zu classes x "
                       "%zu features)",
                       Ca, D);
  }
  double psum = 0;
  for (size_t c = 0, a = 0; c < C; c++) {
    if (m->empty[c])
      continue;
    sc->active[a++] = c;
    psum += m->priors[c];
    for (size_t j = 0; j < D; j++)
      sc->center[j] += m->priors[c] * m->means[c * D + j];
  }
  for (size_t j = 0; Ca && j < D; j++)
    sc->center[j] /= psum;
  const double *mc = sc->center;
  for (size_t a = 0; a < Ca; a++) {
    const size_t c = sc->active[a];
    const double *mu = m->means + c * D;
    sc->lconst[a] = -0.5 * ((double)D * GMLE__LOG_2PI + m->logdet[c]);
    if (m->cov == GMLE_COV_FULL || m->cov == GMLE_COV_TIED) {
      const double *L = m->factor + (m->cov == GMLE_COV_FULL ? c * D * D : 0);
      double *b = sc->b + a * D;
      for (size_t j = 0; j < D; j++)
        b[j] = mu[j] - mc[j];
      cblas_dtrsv(CblasRowMajor, CblasLower, CblasNoTrans, CblasNonUnit, (int)D,
                  L, (int)D, b, 1);
      if (m->cov == GMLE_COV_FULL)
        memcpy(sc->w + a * D * D, L, D * D * sizeof(double));
    } else {
      double B = 0;
      for (size_t j = 0; j < D; j++) {
        const double v =
            m->cov == GMLE_COV_DIAG ? m->covars[c * D + j] : m->covars[c];
        const double inv = 1.0 / v, d = mu[j] - mc[j];
        sc->w[j * Ca + a] = -2.0 * d * inv;
        if (m->cov == GMLE_COV_DIAG)
          sc->w[(D + j) * Ca + a] = inv;
        B += d * d * inv;
      }
      if (m->cov == GMLE_COV_SPHERICAL)
        sc->w[D * Ca + a] = 1.0 / m->covars[c];
      sc->b[a] = B;
    }
  }
  /* Inverse factors, in place (the same column-major view as dpotrf). */
  size_t n_inv = m->cov == GMLE_COV_FULL   ? Ca
                 : m->cov == GMLE_COV_TIED ? (Ca > 0)
                                           : 0;
  if (m->cov == GMLE_COV_TIED && Ca > 0)
    memcpy(sc->w, m->factor, D * D * sizeof(double));
  for (size_t a = 0; a < n_inv; a++) {
    lapack_int info =
        LAPACKE_dtrtri_work(LAPACK_COL_MAJOR, 'U', 'N', (lapack_int)D,
                            sc->w + a * D * D, (lapack_int)D);
    if (info != 0) {
      const size_t c = m->cov == GMLE_COV_FULL ? sc->active[a] : 0;
      gmle__score_cache_free(sc);
      return gmle__error(ctx, GMLE_E_SINGULAR_COV,
                         "%s %zu: the Cholesky factor cannot be inverted "
                         "(dtrtri info %d); %s",
                         m->cov == GMLE_COV_TIED ? "tied covariance, class"
                                                 : "class",
                         c, (int)info, remedy(m));
    }
  }
  /* The centred form subtracts L^-1 (mu_c - m) from L^-1 (x - m): when a
   * class mean lies so many standard deviations from the centre that this
   * overflows, rows near that class would score Inf - Inf = NaN. */
  for (size_t i = 0;
       (m->cov == GMLE_COV_FULL || m->cov == GMLE_COV_TIED) && i < Ca * D;
       i++) {
    if (isfinite(sc->b[i]))
      continue;
    const size_t c = sc->active[i / D];
    gmle__score_cache_free(sc);
    return gmle__error(ctx, GMLE_E_INVALID_MODEL,
                       "class %zu: the mean lies too many standard deviations "
                       "(beyond float64 range) from the other classes' to be "
                       "scored",
                       c);
  }
  gmle__score_cache_free(m->score_cache);
  m->score_cache = sc;
  return GMLE_OK;
}

static gmle_status prepare(gmle_model *m) {
  gmle_context *ctx = m->ctx;
  const size_t D = m->dim, C = m->n_classes;
  GMLE_RETURN_IF(D > (size_t)INT_MAX / 2 || C > (size_t)INT_MAX / 2, ctx,
                 GMLE_E_TOO_LARGE,
                 "prepare: %zu features and %zu classes exceed the BLAS "
                 "integer range",
                 D, C);
  size_t active = 0;
  for (size_t c = 0; c < C; c++) {
    const double p = m->priors[c];
    GMLE_RETURN_IF(!isfinite(p) || p < 0, ctx, GMLE_E_INVALID_MODEL,
                   "class %zu: prior is %g (must be finite and >= 0)", c, p);
    GMLE_RETURN_IF(!(m->counts[c] >= 0) || !isfinite(m->counts[c]), ctx,
                   GMLE_E_INVALID_MODEL,
                   "class %zu: count is %g (must be finite and >= 0)", c,
                   m->counts[c]);
    m->empty[c] = m->counts[c] == 0 || p == 0;
    m->log_priors[c] = m->empty[c] ? -INFINITY : log(p);
    active += !m->empty[c];
  }
  char who[64];
  switch (m->cov) {
  case GMLE_COV_FULL:
    for (size_t c = 0; c < C; c++) {
      double *L = m->factor + c * D * D;
      if (m->empty[c]) {
        identity(L, D);
        m->logdet[c] = 0;
        continue;
      }
      snprintf(who, sizeof who, "class %zu", c);
      GMLE_TRY(factor_full(m, who, m->covars + c * D * D, L, &m->logdet[c]));
    }
    break;
  case GMLE_COV_TIED: {
    double ld = 0;
    if (active)
      GMLE_TRY(factor_full(m, "tied covariance (all classes)", m->covars,
                           m->factor, &ld));
    else
      identity(m->factor, D);
    for (size_t c = 0; c < C; c++)
      m->logdet[c] = ld;
    break;
  }
  case GMLE_COV_DIAG:
    for (size_t c = 0; c < C; c++) {
      if (m->empty[c]) {
        for (size_t j = 0; j < D; j++)
          m->factor[c * D + j] = 1.0;
        m->logdet[c] = 0;
        continue;
      }
      GMLE_TRY(factor_diag(m, c, m->covars + c * D, D, 0, m->factor + c * D,
                           &m->logdet[c]));
    }
    break;
  case GMLE_COV_SPHERICAL:
    for (size_t c = 0; c < C; c++) {
      if (m->empty[c]) {
        m->factor[c] = 1.0;
        m->logdet[c] = 0;
        continue;
      }
      GMLE_TRY(
          factor_diag(m, c, m->covars + c, 1, 1, m->factor + c, &m->logdet[c]));
    }
    break;
  }
  GMLE_TRY(build_cache(m));
  /* Finishing runs on the host, but a context whose device was lost
   * answers every call with GMLE_E_DEVICE_LOST (gmle.h), fit and load
   * included: the backend says whether it still works. */
  if (ctx && ctx->ops && ctx->ops->synchronize)
    GMLE_TRY(ctx->ops->synchronize(ctx));
  return GMLE_OK;
}

gmle_status gmle__model_prepare(gmle_model *m) {
  const int small = gmle__blas_small_begin(m->dim);
  const gmle_status s = prepare(m);
  gmle__blas_small_end(small);
  return s;
}
