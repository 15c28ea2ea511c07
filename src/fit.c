/* fit.c -- the closed-form maximum-likelihood fit from sufficient
 * statistics: covariance types, priors, regularisation, diagnostics and the
 * training log-likelihood. */
#include "internal.h"

#include <cblas.h>
#include <float.h>
#include <lapacke.h>
#include <math.h>
#include <omp.h>
#include <string.h>

/* Multiply-adds (C D^3) above which full covariances are fitted on
 * several threads. */
#define FIT_PAR_WORK 4e6

/* The first version of gmle_fit_options ended with allow_empty. */
#define FIT_OPTIONS_FIRST_SIZE                                                 \
  (offsetof(gmle_fit_options, allow_empty) + sizeof(int))

void gmle_fit_options_init(gmle_fit_options *opt) {
  if (!opt)
    return;
  memset(opt, 0, sizeof *opt);
  opt->struct_size = sizeof *opt;
  opt->cov = GMLE_COV_FULL;
  opt->priors = NULL;
  opt->rel_floor = 1e-9;
  opt->abs_floor = 0.0;
  opt->max_condition = 0.0;
  opt->shrinkage = 0;
  opt->allow_empty = 1;
}

/* Class c's MLE mean and covariance (full D x D symmetric, or the diagonal)
 * from the statistics. */
static gmle_status class_moments(const gmle_stats *st, size_t c, double *mean,
                                 double *cov, int want_full) {
  const size_t D = st->dim;
  const double n = st->weight[c];
  const double *s = st->sum + c * D, *g = st->gram + c * st->gram_len;
  /* Finite statistics can still overflow here (a sum divided by a tiny
   * count, as a damaged statistics file may hold): check before the
   * clamping of negative variances, which would hide -Inf. */
  int finite = 1;
  for (size_t j = 0; j < D; j++) {
    mean[j] = s[j] / n; /* relative to the shift for now */
    finite &= isfinite(mean[j]) && isfinite(mean[j] + st->shift[c * D + j]);
  }
  if (!want_full) {
    for (size_t j = 0; j < D; j++) {
      double gjj = st->mode == GMLE_STATS_DIAG ? g[j] : g[j * D + j];
      double v = gjj / n - mean[j] * mean[j];
      finite &= isfinite(v);
      cov[j] = v > 0 ? v : 0.0;
    }
  } else {
    for (size_t i = 0; i < D; i++)
      for (size_t j = 0; j <= i; j++) {
        double v = g[i * D + j] / n - mean[i] * mean[j];
        finite &= isfinite(v);
        if (i == j && v < 0)
          v = 0.0;
        cov[i * D + j] = cov[j * D + i] = v;
      }
  }
  for (size_t j = 0; j < D; j++)
    mean[j] += st->shift[c * D + j];
  if (!finite)
    return gmle__error(st->ctx, GMLE_E_NONFINITE_STATS,
                       "fit: class %zu: the mean or covariance overflows "
                       "float64 (the sums divided by the class's weight %g "
                       "are not finite; are the statistics damaged?)",
                       c, n);
  return GMLE_OK;
}

/* Values below about 2^-500 (3e-151) have squared deviations below
 * 2^-1000, where float64 products turn subnormal and lose the digits the
 * accuracy contract needs (at 1e-170 they vanish and a varying feature
 * would look constant). Refuse with what is true instead of fitting
 * garbage; an all-zero feature is not tiny, it is constant. */
#define TINY_SQUARE 0x1p-1000
#define TINY_VALUE 0x1p-500

static gmle_status check_underflow(const gmle_stats *st, size_t c) {
  const size_t D = st->dim;
  const double n = st->weight[c];
  const double *g = st->gram + c * st->gram_len;
  for (size_t j = 0; j < D; j++) {
    const double m2 = (st->mode == GMLE_STATS_DIAG ? g[j] : g[j * D + j]) / n;
    const double a = fabs(st->shift[c * D + j]);
    if ((m2 > 0 && m2 < TINY_SQUARE) || (m2 == 0 && a > 0 && a < TINY_VALUE))
      return gmle__error(st->ctx, GMLE_E_OVERFLOW,
                         "fit: class %zu feature %zu: values of about %.3g "
                         "are too small for float64 (their squared "
                         "deviations, %.3g, underflow and lose precision); "
                         "multiply the data by a power of ten",
                         c, j, a, m2);
  }
  return GMLE_OK;
}

/* Feature j's scale for the relative floor: its largest within-class
 * variance over all accumulated data (every class, every batch). Never
 * another feature's variance, so rescaling one feature by a rescales its
 * floor by a^2 and changes no prediction. Within-class, not total: with
 * class means 1e4 standard deviations apart the total variance is 1e8 times
 * the within-class one. A feature constant within every class falls back
 * to the spread of its class means (which scales with it), and a feature
 * constant in all the data to the largest within-class variance of any
 * feature: it adds the same term to every class, so its floor changes no
 * prediction. Returns 0 when every feature is constant in all the data
 * (there is no scale; the scales are then 1 and the floor is off). */
static int feature_scales(const gmle_stats *st, const double *diag_vars,
                          const double *means, double *scale) {
  const size_t D = st->dim, C = st->n_classes;
  double any = 0;
  for (size_t j = 0; j < D; j++) {
    double within = 0, lo = INFINITY, hi = -INFINITY;
    for (size_t c = 0; c < C; c++) {
      if (st->weight[c] <= 0)
        continue;
      const double v = diag_vars[c * D + j], mu = means[c * D + j];
      within = v > within ? v : within;
      lo = mu < lo ? mu : lo;
      hi = mu > hi ? mu : hi;
    }
    const double spread = (hi - lo) * (hi - lo);
    any = within > any ? within : any;
    scale[j] = within > 0                       ? within
               : spread > 0 && isfinite(spread) ? spread
                                                : 0.0;
  }
  for (size_t j = 0; j < D; j++)
    if (scale[j] == 0)
      scale[j] = any > 0 ? any : 1.0;
  return any > 0;
}

typedef struct fit_ctx {
  const gmle_stats *st;
  const gmle_fit_options *opt;
  gmle_context *ctx;
  double rel;    /* rel_floor, or 0 when the data has no scale */
  double *scale; /* each feature's scale for the relative floor (D) */
  double *work;  /* eigen workspace: 3 D*D + D for full and tied, else 0 */
} fit_ctx;

/* OAS shrinkage (Chen, Wiesel, Eldar and Hero 2010) toward tr(S)/D I. */
static double oas(double *S, size_t D, double n) {
  double tr = 0, tr2 = 0;
  for (size_t i = 0; i < D; i++)
    tr += S[i * D + i];
  for (size_t i = 0; i < D * D; i++)
    tr2 += S[i] * S[i];
  const double p = (double)D;
  const double num = (1.0 - 2.0 / p) * tr2 + tr * tr;
  const double den = (n + 1.0 - 2.0 / p) * (tr2 - tr * tr / p);
  double rho = den > 0 ? num / den : 1.0;
  if (rho > 1)
    rho = 1;
  const double mu = tr / p;
  for (size_t i = 0; i < D; i++)
    for (size_t j = 0; j < D; j++)
      S[i * D + j] = (1 - rho) * S[i * D + j] + (i == j ? rho * mu : 0.0);
  return rho;
}

static gmle_status singular_error(const fit_ctx *f, size_t c, const char *what,
                                  const double *S, size_t D) {
  const gmle_stats *st = f->st;
  const char *remedy = "set abs_floor (--abs-floor 1e-6), keep the default "
                       "rel_floor, or fit a diagonal covariance";
  const gmle_error_location loc = {.class_index = c, .fields = GMLE_LOC_CLASS};
  if (f->opt->cov != GMLE_COV_TIED && st->rows[c] == 1)
    return gmle__error_at(
        f->ctx, GMLE_E_ILL_DEFINED_COV, &loc,
        "class %zu has 1 sample; covariance is ill defined (%s)", c, remedy);
  for (size_t j = 0; j < D; j++)
    if (S[j * D + j] <= 0)
      return gmle__error_at(
          f->ctx, GMLE_E_SINGULAR_COV, &loc,
          "%s %zu: feature %zu is constant (variance 0); "
          "covariance is singular (%s)",
          f->opt->cov == GMLE_COV_TIED ? "tied covariance, class" : "class", c,
          j, remedy);
  if (f->opt->cov != GMLE_COV_TIED && (double)st->rows[c] <= (double)D)
    return gmle__error_at(
        f->ctx, GMLE_E_SINGULAR_COV, &loc,
        "class %zu has %llu rows <= %zu features; covariance is "
        "singular (%s)",
        c, (unsigned long long)st->rows[c], D, remedy);
  return gmle__error_at(f->ctx, GMLE_E_SINGULAR_COV, &loc,
                        "class %zu: covariance is singular (%s; %s)", c, what,
                        remedy);
}

/* S in each feature's scale: R = diag(scale)^-1/2 S diag(scale)^-1/2. */
static void to_scaled(const fit_ctx *f, const double *S, double *R) {
  const size_t D = f->st->dim;
  for (size_t i = 0; i < D; i++)
    for (size_t j = 0; j < D; j++)
      R[i * D + j] = S[i * D + j] / (sqrt(f->scale[i]) * sqrt(f->scale[j]));
}

/* V (D x D, symmetric) decomposed as V w V^T and S rebuilt from it with
 * its eigenvalues raised to lo: S = diag(scale)^1/2 V max(w, lo) V^T
 * diag(scale)^1/2 (scale NULL: the identity). V and w are overwritten. */
static gmle_status rebuild_floored(const fit_ctx *f, size_t c, double *V,
                                   double *w, double lo, const double *scale,
                                   double *S) {
  const size_t D = f->st->dim;
  lapack_int info = LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'V', 'L', (lapack_int)D, V,
                                   (lapack_int)D, w);
  if (info != 0)
    return gmle__error(f->ctx, GMLE_E_NONFINITE_STATS,
                       "class %zu: eigen-decomposition failed (info %d)", c,
                       (int)info);
  for (size_t i = 0; i < D; i++)
    for (size_t j = 0; j <= i; j++) {
      double acc = 0;
      for (size_t k = 0; k < D; k++)
        acc += V[i * D + k] * V[j * D + k] * (w[k] < lo ? lo : w[k]);
      S[i * D + j] = S[j * D + i] =
          scale ? acc * (sqrt(scale[i]) * sqrt(scale[j])) : acc;
    }
  return GMLE_OK;
}

/* The eigenvalues w (ascending) of the symmetric D x D matrix V (which is
 * overwritten), checked finite. */
static gmle_status eigenvalues(const fit_ctx *f, size_t c, double *V,
                               double *w) {
  const size_t D = f->st->dim;
  lapack_int info = LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'N', 'L', (lapack_int)D, V,
                                   (lapack_int)D, w);
  if (info != 0 || !isfinite(w[0]) || !isfinite(w[D - 1]))
    return gmle__error(f->ctx, GMLE_E_NONFINITE_STATS,
                       "class %zu: eigen-decomposition failed (info %d)", c,
                       (int)info);
  return GMLE_OK;
}

/* The relative floor of a full covariance, in each feature's scale: the
 * eigenvalues of R (to_scaled) below rel_floor are raised to it and S is
 * rebuilt from the floored R, so the floor is equivariant to every
 * feature's scale and leaves a well-defined covariance (no eigenvalue of R
 * below rel_floor) untouched. Without any floor, an R whose smallest
 * eigenvalue is lost in rounding is singular. *floored counts the raised
 * eigenvalues. Uses f->work[0, D*D + D). */
static gmle_status relative_floor_full(const fit_ctx *f, size_t c, double *S,
                                       size_t *floored) {
  const size_t D = f->st->dim;
  const double rel = f->rel;
  double *V = f->work, *w = f->work + D * D;
  *floored = 0;
  to_scaled(f, S, V);
  GMLE_TRY(eigenvalues(f, c, V, w));
  const double tiny = w[D - 1] * (double)D * 64 * DBL_EPSILON;
  if (rel <= 0 && f->opt->max_condition <= 0 && (w[0] <= tiny || w[0] <= 0))
    return singular_error(f, c, "smallest eigenvalue is not positive", S, D);
  for (size_t i = 0; i < D; i++)
    *floored += w[i] < rel;
  if (!*floored)
    return GMLE_OK;
  to_scaled(f, S, V);
  return rebuild_floored(f, c, V, w, rel, f->scale, S);
}

/* Regularise a full covariance S (D x D, symmetric) in place and fill the
 * report's eigenvalue diagnostics. */
static gmle_status finish_full(const fit_ctx *f, size_t c, double *S, double n,
                               gmle_class_report *rep) {
  const size_t D = f->st->dim;
  const gmle_fit_options *o = f->opt;
  for (size_t i = 0; i < D * D; i++)
    if (!isfinite(S[i]))
      return gmle__error(f->ctx, GMLE_E_NONFINITE_STATS,
                         "class %zu: covariance has a non-finite value at "
                         "(%zu, %zu)",
                         c, i / D, i % D);
  if (o->shrinkage)
    rep->shrinkage = oas(S, D, n);
  if (o->abs_floor > 0)
    for (size_t i = 0; i < D; i++)
      S[i * D + i] += o->abs_floor;
  size_t floored = 0;
  GMLE_TRY(relative_floor_full(f, c, S, &floored));
  /* Eigenvalues for the diagnostics and the condition floor; the
   * eigenvectors only when that floor has to be applied (several times
   * cheaper without). */
  double *V = f->work, *w = f->work + D * D;
  memcpy(V, S, D * D * sizeof(double));
  GMLE_TRY(eigenvalues(f, c, V, w));
  const double lo = o->max_condition > 0 ? w[D - 1] / o->max_condition : 0;
  /* Without a condition floor nothing is raised: the eigenvalues of S
   * carry an absolute error of eps ||S||, which is larger than the smallest
   * ones when the features' scales differ by 1e16. */
  size_t raised = 0;
  for (size_t i = 0; lo > 0 && i < D; i++)
    if (w[i] < lo)
      raised++;
  if (raised) {
    memcpy(V, S, D * D * sizeof(double));
    GMLE_TRY(rebuild_floored(f, c, V, w, lo, NULL, S));
    for (size_t i = 0; i < D; i++)
      if (w[i] < lo)
        w[i] = lo;
  }
  rep->n_floored = floored > raised ? floored : raised;
  rep->min_eigenvalue = w[0];
  rep->max_eigenvalue = w[D - 1];
  rep->condition = w[0] > 0 ? w[D - 1] / w[0] : INFINITY;
  return GMLE_OK;
}

/* Regularise variances v[0..D) in place (diag; spherical with D = 1):
 * variance j is at least rel_floor * scale[j]. */
static gmle_status finish_diag(const fit_ctx *f, size_t c, double *v,
                               const double *scale, size_t D,
                               gmle_class_report *rep) {
  const gmle_fit_options *o = f->opt;
  double vmax = 0;
  for (size_t j = 0; j < D; j++) {
    if (!isfinite(v[j]))
      return gmle__error(f->ctx, GMLE_E_NONFINITE_STATS,
                         "class %zu: variance of feature %zu is not finite", c,
                         j);
    v[j] += o->abs_floor;
    if (v[j] > vmax)
      vmax = v[j];
  }
  const double cond_lo = o->max_condition > 0 ? vmax / o->max_condition : 0;
  size_t floored = 0;
  double vmin = INFINITY;
  for (size_t j = 0; j < D; j++) {
    const double rel_lo = f->rel * scale[j];
    const double lo = rel_lo > cond_lo ? rel_lo : cond_lo;
    if (v[j] < lo) {
      v[j] = lo;
      floored++;
    }
    if (!(v[j] > 0)) {
      if (f->st->rows[c] == 1)
        return gmle__error(f->ctx, GMLE_E_ILL_DEFINED_COV,
                           "class %zu has 1 sample; variance is ill defined "
                           "(set abs_floor or keep the default rel_floor)",
                           c);
      return gmle__error(f->ctx, GMLE_E_SINGULAR_COV,
                         "class %zu: feature %zu is constant (variance 0); "
                         "set abs_floor (--abs-floor 1e-6) or keep the "
                         "default rel_floor",
                         c, j);
    }
    if (v[j] < vmin)
      vmin = v[j];
  }
  for (size_t j = 0; j < D; j++)
    vmax = v[j] > vmax ? v[j] : vmax;
  rep->n_floored = floored;
  rep->min_eigenvalue = vmin;
  rep->max_eigenvalue = vmax;
  rep->condition = vmax / vmin;
  return GMLE_OK;
}

/* Warn when float32 data are quantised: the spread is within a few ulp of
 * the mean, so gmle fits the stored (rounded) values. */
static void resolution_check(const gmle_stats *st, size_t c, const double *mu,
                             const double *var) {
  if (!st->saw_f32)
    return;
  for (size_t j = 0; j < st->dim; j++) {
    const double m = fabs(mu[j]);
    const float mf = (float)m;
    /* A mean that is 0, or 0 or Inf in float32 (float64 data beside the
     * float32 batches), has no float32 spacing to compare with. */
    if (mf == 0 || isinf(mf))
      continue;
    const double ulp = ldexp(1.0, ilogb(mf) - 23);
    const double sd = sqrt(var[j]);
    if (sd < 4 * ulp) {
      gmle__log(st->ctx, GMLE_LOG_WARNING,
                "resolution: class %zu feature %zu: standard deviation %.3g is "
                "within 4 float32 ulps (%.3g) of the mean %.6g; the values are "
                "quantised and gmle fits the stored values",
                c, j, sd, ulp, mu[j]);
      return;
    }
  }
}

/* Training log-likelihood of class c: -n/2 (D log 2pi + log|Sigma| +
 * tr(Sigma^-1 Sigma_hat)). Sigma is full (D x D) or given by variances. */
static gmle_status class_loglik(const fit_ctx *f, size_t c, double n,
                                const double *Sigma, const double *diagvar,
                                double spherical, const double *Shat,
                                double *out) {
  const size_t D = f->st->dim;
  double logdet = 0, tr = 0;
  if (Sigma) {
    double *L = f->work, *Y = f->work + D * D;
    memcpy(L, Sigma, D * D * sizeof(double));
    lapack_int info =
        LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', (lapack_int)D, L, (lapack_int)D);
    for (size_t i = 0; info == 0 && i < D; i++)
      if (!(L[i * D + i] > 0) || !isfinite(L[i * D + i]))
        info = (lapack_int)(i + 1);
    if (info != 0)
      return gmle__error(f->ctx, GMLE_E_SINGULAR_COV,
                         "class %zu: covariance is not positive definite "
                         "(Cholesky fails at minor %d); set abs_floor "
                         "(--abs-floor 1e-6) or keep the default rel_floor",
                         c, (int)info);
    for (size_t i = 0; i < D; i++)
      logdet += 2 * log(L[i * D + i]);
    /* tr(Sigma^-1 Shat) = ||L^-1 Shat^(1/2)||... computed as
     * tr(L^-T L^-1 Shat) with two triangular solves on a copy of Shat. */
    memcpy(Y, Shat, D * D * sizeof(double));
    cblas_dtrsm(CblasRowMajor, CblasLeft, CblasLower, CblasNoTrans,
                CblasNonUnit, (int)D, (int)D, 1.0, L, (int)D, Y, (int)D);
    cblas_dtrsm(CblasRowMajor, CblasLeft, CblasLower, CblasTrans, CblasNonUnit,
                (int)D, (int)D, 1.0, L, (int)D, Y, (int)D);
    for (size_t i = 0; i < D; i++)
      tr += Y[i * D + i];
  } else {
    for (size_t j = 0; j < D; j++) {
      const double v = diagvar ? diagvar[j] : spherical;
      logdet += log(v);
      tr += Shat[j] / v;
    }
  }
  *out = -0.5 * n * ((double)D * GMLE__LOG_2PI + logdet + tr);
  return GMLE_OK;
}

static gmle_status check_priors(const gmle_stats *st, const double *p) {
  double sum = 0;
  for (size_t c = 0; c < st->n_classes; c++) {
    GMLE_RETURN_IF(!isfinite(p[c]) || p[c] < 0, st->ctx, GMLE_E_INVALID_ARG,
                   "fit: prior of class %zu is %g (must be finite and >= 0)", c,
                   p[c]);
    sum += p[c];
  }
  GMLE_RETURN_IF(fabs(sum - 1.0) > 1e-9, st->ctx, GMLE_E_INVALID_ARG,
                 "fit: priors sum to %.17g, not 1", sum);
  return GMLE_OK;
}

/* Class c's regularised covariance (full, diag or spherical) and training
 * log-likelihood lc (class c has data). */
static gmle_status fit_class(const fit_ctx *f, gmle_model *m,
                             const double *Shat_all, size_t c, double *lc) {
  const gmle_stats *st = f->st;
  const gmle_fit_options *o = f->opt;
  const size_t D = st->dim;
  const size_t G = o->cov == GMLE_COV_FULL ? D * D : D;
  const double *Sh = Shat_all + c * G;
  gmle_status s;
  *lc = 0;
  if (o->cov == GMLE_COV_FULL) {
    double *S = m->covars + c * D * D;
    memcpy(S, Sh, D * D * sizeof(double));
    s = finish_full(f, c, S, st->weight[c], &m->reports[c]);
    if (s == GMLE_OK)
      s = class_loglik(f, c, st->weight[c], S, NULL, 0, Sh, lc);
  } else if (o->cov == GMLE_COV_DIAG) {
    double *v = m->covars + c * D;
    memcpy(v, Sh, D * sizeof(double));
    s = finish_diag(f, c, v, f->scale, D, &m->reports[c]);
    if (s == GMLE_OK)
      s = class_loglik(f, c, st->weight[c], NULL, v, 0, Sh, lc);
  } else {
    double v = 0;
    for (size_t j = 0; j < D; j++)
      v += Sh[j];
    v /= (double)D;
    double scale = 0;
    for (size_t j = 0; j < D; j++)
      scale += f->scale[j];
    scale /= (double)D;
    s = finish_diag(f, c, &v, &scale, 1, &m->reports[c]);
    m->covars[c] = v;
    if (s == GMLE_OK)
      s = class_loglik(f, c, st->weight[c], NULL, NULL, v, Sh, lc);
  }
  return s;
}

/* Every class with data through fit_class; *ll the sum of their
 * log-likelihoods in class order. Full covariances of many classes are done
 * on the context's threads (classes are independent; each thread has its
 * own scratch, and its error messages go to a copy of the context), small
 * enough for OpenBLAS to run single-threaded inside (GMLE__BLAS_SMALL). The
 * error returned is the lowest-numbered failing class's, as on one thread. */
static gmle_status fit_classes(const fit_ctx *f, gmle_model *m,
                               const double *Shat_all, double *ll) {
  const gmle_stats *st = f->st;
  const size_t D = st->dim, C = st->n_classes, wlen = 3 * D * D + D;
  double *lc = gmle__calloc(C, sizeof *lc);
  if (!lc)
    return gmle__error(f->ctx, GMLE_E_OUT_OF_MEMORY, "fit: out of memory");
  int nt = 1;
  if (f->opt->cov == GMLE_COV_FULL && D < GMLE__BLAS_SMALL && C > 1 &&
      (double)C * (double)D * (double)D * (double)D >= FIT_PAR_WORK)
    nt = f->ctx->n_threads < (int)C ? f->ctx->n_threads : (int)C;
  double *work =
      nt > 1 ? gmle__malloc((size_t)nt * wlen * sizeof(double)) : NULL;
  if (!work)
    nt = 1;
  gmle_status s = GMLE_OK;
  if (nt == 1) {
    for (size_t c = 0; c < C && s == GMLE_OK; c++)
      if (st->weight[c] > 0)
        s = fit_class(f, m, Shat_all, c, &lc[c]);
  } else {
    size_t bad = C;
    char msg[GMLE__ERR_LEN];
    long nc = (long)C;
#pragma omp parallel num_threads(nt)
    {
      gmle_context shadow = *f->ctx;
      fit_ctx g = *f;
      g.ctx = &shadow;
      g.work = work + (size_t)omp_get_thread_num() * wlen;
#pragma omp for schedule(dynamic, 4)
      for (long ci = 0; ci < nc; ci++) {
        const size_t c = (size_t)ci;
        if (st->weight[c] <= 0)
          continue;
        const gmle_status cs = fit_class(&g, m, Shat_all, c, &lc[c]);
        if (cs != GMLE_OK) {
#pragma omp critical(gmle_fit_classes)
          if (c < bad) {
            bad = c;
            s = cs;
            memcpy(msg, gmle_context_error(&shadow), sizeof msg);
            msg[sizeof msg - 1] = '\0';
          }
        }
      }
    }
    if (bad < C)
      gmle__error(f->ctx, s, "%s", msg);
  }
  gmle__free(work);
  double sum = 0;
  for (size_t c = 0; c < C; c++)
    sum += lc[c];
  gmle__free(lc);
  *ll = sum;
  return s;
}

static gmle_status fit_model(fit_ctx *f, gmle_model *m, double *Shat_all) {
  const gmle_stats *st = f->st;
  const gmle_fit_options *o = f->opt;
  const size_t D = st->dim, C = st->n_classes;
  const int full = o->cov == GMLE_COV_FULL || o->cov == GMLE_COV_TIED;
  const size_t G = full ? D * D : D;
  double ntot = 0;
  for (size_t c = 0; c < C; c++)
    ntot += st->weight[c];
  double *diagv = gmle__calloc(C * D, sizeof(double));
  if (!diagv)
    return gmle__error(f->ctx, GMLE_E_OUT_OF_MEMORY, "fit: out of memory");
  /* MLE moments. */
  for (size_t c = 0; c < C; c++) {
    gmle_class_report *rep = &m->reports[c];
    rep->rows = st->rows[c];
    rep->weight = st->weight[c];
    m->rows[c] = st->rows[c];
    m->counts[c] = st->weight[c];
    if (st->weight[c] <= 0) {
      rep->empty = 1;
      continue;
    }
    double *S = Shat_all + c * G;
    gmle_status ms = check_underflow(st, c);
    if (ms == GMLE_OK)
      ms = class_moments(st, c, m->means + c * D, S, full);
    if (ms != GMLE_OK) {
      gmle__free(diagv);
      return ms;
    }
    for (size_t j = 0; j < D; j++)
      diagv[c * D + j] = full ? S[j * D + j] : S[j];
    resolution_check(st, c, m->means + c * D, diagv + c * D);
  }
  f->rel = feature_scales(st, diagv, m->means, f->scale) ? o->rel_floor : 0;
  gmle__free(diagv);
  /* Priors. */
  for (size_t c = 0; c < C; c++)
    m->priors[c] = o->priors ? o->priors[c] : st->weight[c] / ntot;
  /* Covariances, regularised; training log-likelihood. */
  double ll = 0, llj = 0;
  gmle_status s = GMLE_OK;
  if (o->cov == GMLE_COV_TIED) {
    double *T = m->covars, *Th = f->work + 2 * D * D; /* pooled MLE */
    memset(T, 0, D * D * sizeof(double));
    for (size_t c = 0; c < C; c++)
      if (st->weight[c] > 0)
        for (size_t i = 0; i < D * D; i++)
          T[i] += st->weight[c] * Shat_all[c * G + i];
    for (size_t i = 0; i < D * D; i++)
      T[i] /= ntot;
    memcpy(Th, T, D * D * sizeof(double));
    gmle_class_report tied = {0};
    s = finish_full(f, 0, T, ntot, &tied);
    if (s == GMLE_OK)
      s = class_loglik(f, 0, ntot, T, NULL, 0, Th, &ll);
    for (size_t c = 0; c < C; c++) {
      gmle_class_report *rep = &m->reports[c];
      rep->min_eigenvalue = tied.min_eigenvalue;
      rep->max_eigenvalue = tied.max_eigenvalue;
      rep->condition = tied.condition;
      rep->n_floored = tied.n_floored;
      rep->shrinkage = tied.shrinkage;
    }
  } else {
    s = fit_classes(f, m, Shat_all, &ll);
  }
  if (s != GMLE_OK)
    return s;
  llj = ll;
  for (size_t c = 0; c < C; c++)
    if (st->weight[c] > 0)
      llj += st->weight[c] * (m->priors[c] > 0 ? log(m->priors[c]) : -INFINITY);
  m->has_train = 1;
  m->train_loglik = ll;
  m->train_loglik_joint = llj;
  m->train_n = ntot;
  for (size_t c = 0; c < C; c++)
    if (m->reports[c].empty)
      gmle__log(f->ctx, GMLE_LOG_WARNING,
                "class %zu is EMPTY (no data): prior 0, it scores -inf", c);
  for (size_t c = 0; c < C; c++)
    if (m->reports[c].n_floored)
      gmle__log(f->ctx, GMLE_LOG_WARNING,
                "class %zu: %zu variance(s)/eigenvalue(s) raised to the floor",
                c, m->reports[c].n_floored);
  return GMLE_OK;
}

gmle_status gmle_fit(const gmle_stats *st, const gmle_fit_options *opt,
                     gmle_model **out) {
  if (!st)
    return GMLE_E_INVALID_ARG;
  gmle_context *ctx = st->ctx;
  gmle__clear_error(ctx);
  GMLE_RETURN_IF(!out, ctx, GMLE_E_INVALID_ARG, "fit: out is NULL");
  *out = NULL;
  gmle_fit_options given;
  gmle_fit_options_init(&given);
  if (opt)
    GMLE_TRY(gmle__read_options(ctx, &given, sizeof given, opt,
                                FIT_OPTIONS_FIRST_SIZE, "fit"));
  opt = &given;
  const size_t D = st->dim, C = st->n_classes;
  GMLE_RETURN_IF(opt->cov < GMLE_COV_FULL || opt->cov > GMLE_COV_TIED, ctx,
                 GMLE_E_INVALID_ARG, "fit: unknown covariance type %d",
                 (int)opt->cov);
  GMLE_RETURN_IF(!(opt->rel_floor >= 0) || !(opt->abs_floor >= 0) ||
                     !(opt->max_condition >= 0) || !isfinite(opt->rel_floor) ||
                     !isfinite(opt->abs_floor),
                 ctx, GMLE_E_INVALID_ARG,
                 "fit: floors and max_condition must be finite and >= 0");
  GMLE_RETURN_IF(opt->max_condition > 0 && opt->max_condition < 1, ctx,
                 GMLE_E_INVALID_ARG, "fit: max_condition %g is below 1",
                 opt->max_condition);
  const int full = opt->cov == GMLE_COV_FULL || opt->cov == GMLE_COV_TIED;
  GMLE_RETURN_IF(full && st->mode == GMLE_STATS_DIAG, ctx, GMLE_E_UNSUPPORTED,
                 "fit: the statistics were accumulated in diagonal-only mode; "
                 "only diag and spherical fits are possible");
  if (opt->priors)
    GMLE_TRY(check_priors(st, opt->priors));
  double ntot = 0;
  for (size_t c = 0; c < C; c++) {
    GMLE_RETURN_IF(!isfinite(st->weight[c]), ctx, GMLE_E_NONFINITE_STATS,
                   "fit: class %zu: count is not finite", c);
    ntot += st->weight[c];
    GMLE_RETURN_IF(st->weight[c] <= 0 && !opt->allow_empty, ctx, GMLE_E_EMPTY,
                   "fit: class %zu has no data (allow_empty is off)", c);
  }
  GMLE_RETURN_IF(!(ntot > 0), ctx, GMLE_E_EMPTY,
                 "fit: no data has been accumulated");
  const size_t G = full ? D * D : D;
  gmle_model *m = NULL;
  GMLE_TRY(gmle__model_alloc(ctx, D, C, opt->cov, &m));
  fit_ctx f = {st, opt, ctx, 0, NULL, NULL};
  double *Shat = gmle__malloc(C * G * sizeof(double));
  /* Only full and tied covariances need D x D scratch: a diagonal fit of
   * wide data stays O(C D). */
  f.work = full ? gmle__malloc((3 * D * D + D) * sizeof(double)) : NULL;
  f.scale = gmle__malloc(D * sizeof(double));
  gmle_status s =
      (Shat && f.scale && (f.work || !full))
          ? GMLE_OK
          : gmle__error(ctx, GMLE_E_OUT_OF_MEMORY, "fit: out of memory");
  const int small = gmle__blas_small_begin(D);
  if (s == GMLE_OK)
    s = fit_model(&f, m, Shat);
  gmle__free(Shat);
  gmle__free(f.work);
  gmle__free(f.scale);
  if (s == GMLE_OK)
    s = gmle__model_prepare(m);
  gmle__blas_small_end(small);
  if (s == GMLE_OK && st->names)
    s = gmle_model_set_class_names(m, (const char *const *)st->names);
  if (s != GMLE_OK) {
    gmle_model_free(m);
    return s;
  }
  *out = m;
  return GMLE_OK;
}
