/* model.c -- the model object: allocation, getters, class names, the
 * information criteria, and models built directly from parameters.
 *
 * Scoring data (factors, log-determinants, log priors, the GEMM-form cache)
 * are filled by gmle__model_prepare (src/prepare.c). */
#include "internal.h"

#include <math.h>
#include <string.h>

size_t gmle__cov_len(gmle_cov_type cov, size_t dim, size_t n_classes) {
  size_t n = 0;
  switch (cov) {
  case GMLE_COV_FULL:
    if (gmle__mul3_size(n_classes, dim, dim, &n))
      return 0;
    return n;
  case GMLE_COV_DIAG:
    if (gmle__mul_size(n_classes, dim, &n))
      return 0;
    return n;
  case GMLE_COV_SPHERICAL:
    return n_classes;
  case GMLE_COV_TIED:
    if (gmle__mul_size(dim, dim, &n))
      return 0;
    return n;
  }
  return 0;
}

/* Each backend's scoring data, through the backend (and state) that built
 * it: the model need not know its context for this. */
static void free_backend_data(gmle_model *m) {
  for (size_t i = 0; i < sizeof m->backend_data / sizeof m->backend_data[0];
       i++) {
    struct gmle__model_data *d = &m->backend_data[i];
    if (d->ops && d->ops->free_model)
      d->ops->free_model(d->state, d->data);
    d->ops = NULL;
  }
}

/* Build the data of (ops, state) into a free slot, or for this call only
 * when none is free. Called with m->data_lock held. */
static gmle_status build_backend_data(gmle_context *ctx,
                                      const gmle__backend_ops *ops, void *state,
                                      gmle_model *m, void **data,
                                      int *transient) {
  struct gmle__model_data *slot = NULL;
  for (size_t i = 0; i < sizeof m->backend_data / sizeof m->backend_data[0];
       i++)
    if (!m->backend_data[i].ops) {
      slot = &m->backend_data[i];
      break;
    }
  GMLE_TRY(ops->prepare_model(ctx, m, data));
  if (!slot) {
    *transient = 1;
    return GMLE_OK;
  }
  slot->ops = ops;
  slot->state = state;
  slot->data = *data;
  return GMLE_OK;
}

gmle_status gmle__model_backend_data(gmle_context *ctx,
                                     const gmle__backend_ops *ops, void *state,
                                     const gmle_model *cm, void **data,
                                     int *transient) {
  *data = NULL;
  *transient = 0;
  if (!ops->prepare_model)
    return GMLE_OK;
  /* The model is logically const: its backend data is a cache. */
  gmle_model *m = (gmle_model *)(uintptr_t)cm;
  pthread_mutex_lock(&m->data_lock);
  for (size_t i = 0; i < sizeof m->backend_data / sizeof m->backend_data[0];
       i++) {
    const struct gmle__model_data *d = &m->backend_data[i];
    if (d->ops == ops && d->state == state) {
      *data = d->data;
      pthread_mutex_unlock(&m->data_lock);
      return GMLE_OK;
    }
  }
  const gmle_status s = build_backend_data(ctx, ops, state, m, data, transient);
  pthread_mutex_unlock(&m->data_lock);
  return s;
}

void gmle_model_free(gmle_model *m) {
  if (!m)
    return;
  free_backend_data(m);
  pthread_mutex_destroy(&m->data_lock);
  gmle__mixture_free(m->mix);
  if (m->names) {
    for (size_t c = 0; c < m->n_classes; c++)
      gmle__free(m->names[c]);
    gmle__free(m->names);
  }
  gmle__score_cache_free(m->score_cache);
  gmle__free(m->means);
  gmle__free(m->covars);
  gmle__free(m->priors);
  gmle__free(m->counts);
  gmle__free(m->rows);
  gmle__free(m->reports);
  gmle__free(m->log_priors);
  gmle__free(m->factor);
  gmle__free(m->logdet);
  gmle__free(m->empty);
  gmle__free(m);
}

gmle_status gmle__model_alloc(gmle_context *ctx, size_t dim, size_t n_classes,
                              gmle_cov_type cov, gmle_model **out) {
  *out = NULL;
  GMLE_RETURN_IF(dim == 0 || n_classes == 0, ctx, GMLE_E_INVALID_ARG,
                 "model: %zu features and %zu classes (both must be >= 1)", dim,
                 n_classes);
  GMLE_RETURN_IF(!gmle_cov_name(cov), ctx, GMLE_E_INVALID_ARG,
                 "model: unknown covariance type %d", (int)cov);
  const size_t cov_len = gmle__cov_len(cov, dim, n_classes);
  size_t means_len = 0, bytes = 0;
  GMLE_RETURN_IF(cov_len == 0 || gmle__mul_size(dim, n_classes, &means_len) ||
                     gmle__mul_size(cov_len, sizeof(double), &bytes) ||
                     gmle__mul_size(means_len, sizeof(double), &bytes),
                 ctx, GMLE_E_TOO_LARGE,
                 "model: %zu classes x %zu features (%s covariance) "
                 "overflows size_t",
                 n_classes, dim, gmle_cov_name(cov));
  gmle_model *m = gmle__calloc(1, sizeof *m);
  if (m && pthread_mutex_init(&m->data_lock, NULL) != 0) {
    gmle__free(m);
    m = NULL;
  }
  if (!m)
    return gmle__error(ctx, GMLE_E_OUT_OF_MEMORY, "model: out of memory");
  m->ctx = ctx;
  m->dim = dim;
  m->n_classes = n_classes;
  m->cov = cov;
  m->means = gmle__calloc(means_len, sizeof(double));
  m->covars = gmle__calloc(cov_len, sizeof(double));
  m->priors = gmle__calloc(n_classes, sizeof(double));
  m->counts = gmle__calloc(n_classes, sizeof(double));
  m->rows = gmle__calloc(n_classes, sizeof(uint64_t));
  m->reports = gmle__calloc(n_classes, sizeof(gmle_class_report));
  m->log_priors = gmle__calloc(n_classes, sizeof(double));
  m->factor = gmle__calloc(cov_len, sizeof(double));
  m->logdet = gmle__calloc(n_classes, sizeof(double));
  m->empty = gmle__calloc(n_classes, 1);
  if (!m->means || !m->covars || !m->priors || !m->counts || !m->rows ||
      !m->reports || !m->log_priors || !m->factor || !m->logdet || !m->empty) {
    gmle_model_free(m);
    return gmle__error(ctx, GMLE_E_OUT_OF_MEMORY,
                       "model: out of memory (%zu classes x %zu features)",
                       n_classes, dim);
  }
  *out = m;
  return GMLE_OK;
}

/* ------------------------------------------------------------------------ */
/* Getters                                                                  */
/* ------------------------------------------------------------------------ */

static gmle_status check_class(const gmle_model *m, size_t c, const void *out,
                               const char *what) {
  if (!m)
    return GMLE_E_INVALID_ARG;
  gmle__clear_error(m->ctx);
  GMLE_RETURN_IF(!out, m->ctx, GMLE_E_INVALID_ARG, "%s: out is NULL", what);
  GMLE_RETURN_IF(c >= m->n_classes, m->ctx, GMLE_E_INVALID_ARG,
                 "%s: class %zu is out of range (the model has %zu classes)",
                 what, c, m->n_classes);
  return GMLE_OK;
}

size_t gmle_model_dim(const gmle_model *m) { return m ? m->dim : 0; }

size_t gmle_model_n_classes(const gmle_model *m) {
  return m ? m->n_classes : 0;
}

gmle_cov_type gmle_model_cov_type(const gmle_model *m) {
  return m ? m->cov : GMLE_COV_FULL;
}

gmle_status gmle_model_mean(const gmle_model *m, size_t c, double *out) {
  GMLE_TRY(check_class(m, c, out, "gmle_model_mean"));
  memcpy(out, m->means + c * m->dim, m->dim * sizeof(double));
  return GMLE_OK;
}

gmle_status gmle_model_covariance(const gmle_model *m, size_t c, double *out) {
  GMLE_TRY(check_class(m, c, out, "gmle_model_covariance"));
  const size_t D = m->dim;
  switch (m->cov) {
  case GMLE_COV_FULL:
    memcpy(out, m->covars + c * D * D, D * D * sizeof(double));
    break;
  case GMLE_COV_TIED:
    memcpy(out, m->covars, D * D * sizeof(double));
    break;
  case GMLE_COV_DIAG:
  case GMLE_COV_SPHERICAL:
    for (size_t i = 0; i < D; i++)
      for (size_t j = 0; j < D; j++)
        out[i * D + j] = i != j
                             ? 0.0
                             : (m->cov == GMLE_COV_DIAG ? m->covars[c * D + i]
                                                        : m->covars[c]);
    break;
  }
  return GMLE_OK;
}

gmle_status gmle_model_prior(const gmle_model *m, size_t c, double *out) {
  GMLE_TRY(check_class(m, c, out, "gmle_model_prior"));
  *out = m->priors[c];
  return GMLE_OK;
}

gmle_status gmle_model_count(const gmle_model *m, size_t c, double *out) {
  GMLE_TRY(check_class(m, c, out, "gmle_model_count"));
  *out = m->counts[c];
  return GMLE_OK;
}

gmle_status gmle_model_report(const gmle_model *m, size_t c,
                              gmle_class_report *out) {
  GMLE_TRY(check_class(m, c, out, "gmle_model_report"));
  *out = m->reports[c];
  return GMLE_OK;
}

gmle_status gmle_model_loglik(const gmle_model *m, int with_priors,
                              double *out) {
  if (!m)
    return GMLE_E_INVALID_ARG;
  gmle__clear_error(m->ctx);
  GMLE_RETURN_IF(!out, m->ctx, GMLE_E_INVALID_ARG,
                 "gmle_model_loglik: out is NULL");
  GMLE_RETURN_IF(!m->has_train, m->ctx, GMLE_E_UNSUPPORTED,
                 "gmle_model_loglik: the model was not produced by gmle_fit, "
                 "so its training log-likelihood is unknown (use "
                 "gmle_total_loglik on the data)");
  *out = with_priors ? m->train_loglik_joint : m->train_loglik;
  return GMLE_OK;
}

/* Free parameters: C*D means, the covariance entries (D(D+1)/2 per full
 * matrix, D per diagonal, 1 per spherical variance, one shared matrix when
 * tied) and C-1 priors. Every class counts, empty ones included. */
size_t gmle_model_n_params(const gmle_model *m) {
  if (!m)
    return 0;
  if (m->mix)
    return gmle__mixture_n_params(m);
  const size_t D = m->dim, C = m->n_classes, tri = D * (D + 1) / 2;
  size_t cov = 0;
  switch (m->cov) {
  case GMLE_COV_FULL:
    cov = C * tri;
    break;
  case GMLE_COV_DIAG:
    cov = C * D;
    break;
  case GMLE_COV_SPHERICAL:
    cov = C;
    break;
  case GMLE_COV_TIED:
    cov = tri;
    break;
  }
  return C * D + cov + (C - 1);
}

gmle_status gmle_model_information(const gmle_model *m, double *bic,
                                   double *aic) {
  if (!m)
    return GMLE_E_INVALID_ARG;
  gmle__clear_error(m->ctx);
  GMLE_RETURN_IF(!m->has_train, m->ctx, GMLE_E_UNSUPPORTED,
                 "gmle_model_information: the model was not produced by "
                 "gmle_fit, so its training log-likelihood is unknown");
  GMLE_RETURN_IF(!(m->train_n > 0), m->ctx, GMLE_E_EMPTY,
                 "gmle_model_information: the model was fitted on no data");
  const double p = (double)gmle_model_n_params(m);
  const double ll = m->train_loglik_joint;
  if (bic)
    *bic = -2.0 * ll + p * log(m->train_n);
  if (aic)
    *aic = -2.0 * ll + 2.0 * p;
  return GMLE_OK;
}

/* ------------------------------------------------------------------------ */
/* Class names                                                              */
/* ------------------------------------------------------------------------ */

/* names NULL removes the names. All-or-nothing: on failure the model keeps
 * the names it had. */
gmle_status gmle_model_set_class_names(gmle_model *m,
                                       const char *const *names) {
  if (!m)
    return GMLE_E_INVALID_ARG;
  gmle__clear_error(m->ctx);
  char **copy = NULL;
  if (names) {
    for (size_t c = 0; c < m->n_classes; c++)
      GMLE_RETURN_IF(!names[c], m->ctx, GMLE_E_INVALID_ARG,
                     "gmle_model_set_class_names: the name of class %zu is "
                     "NULL",
                     c);
    copy = gmle__calloc(m->n_classes, sizeof *copy);
    if (!copy)
      return gmle__error(m->ctx, GMLE_E_OUT_OF_MEMORY,
                         "gmle_model_set_class_names: out of memory");
    for (size_t c = 0; c < m->n_classes; c++) {
      const size_t len = strlen(names[c]);
      copy[c] = gmle__malloc(len + 1);
      if (!copy[c]) {
        for (size_t k = 0; k < c; k++)
          gmle__free(copy[k]);
        gmle__free(copy);
        return gmle__error(m->ctx, GMLE_E_OUT_OF_MEMORY,
                           "gmle_model_set_class_names: out of memory "
                           "(class %zu)",
                           c);
      }
      memcpy(copy[c], names[c], len + 1);
    }
  }
  if (m->names) {
    for (size_t c = 0; c < m->n_classes; c++)
      gmle__free(m->names[c]);
    gmle__free(m->names);
  }
  m->names = copy;
  return GMLE_OK;
}

const char *gmle_model_class_name(const gmle_model *m, size_t c) {
  if (!m || !m->names || c >= m->n_classes)
    return NULL;
  return m->names[c];
}

/* ------------------------------------------------------------------------ */
/* Models from parameters                                                   */
/* ------------------------------------------------------------------------ */

#define CREATE "gmle_model_create"

/* Symmetry tolerance, relative to the entry or to the natural scale
 * sqrt(a_ii a_jj) of the pair, whichever is larger. */
static const double SYM_TOL = 1e-10;
static const double PRIOR_SUM_TOL = 1e-9;

/* Checks of one full covariance a (D x D row-major); `who` names it
 * ("class 3" or "tied covariance"). */
static gmle_status check_full(gmle_context *ctx, const double *a, size_t D,
                              const char *who) {
  for (size_t i = 0; i < D; i++)
    for (size_t j = 0; j < D; j++)
      GMLE_RETURN_IF(!isfinite(a[i * D + j]), ctx, GMLE_E_INVALID_MODEL,
                     CREATE ": %s: covariance entry (%zu, %zu) is %s; "
                            "covariances must be finite",
                     who, i, j, gmle__nonfinite_name(a[i * D + j]));
  for (size_t i = 0; i < D; i++)
    GMLE_RETURN_IF(!(a[i * D + i] > 0), ctx, GMLE_E_INVALID_MODEL,
                   CREATE ": %s: variance of feature %zu (diagonal entry) is "
                          "%g; variances must be positive",
                   who, i, a[i * D + i]);
  for (size_t i = 0; i < D; i++)
    for (size_t j = 0; j < i; j++) {
      const double x = a[i * D + j], y = a[j * D + i];
      double scale = sqrt(a[i * D + i] * a[j * D + j]);
      if (fabs(x) > scale)
        scale = fabs(x);
      if (fabs(y) > scale)
        scale = fabs(y);
      GMLE_RETURN_IF(fabs(x - y) > SYM_TOL * scale, ctx, GMLE_E_INVALID_MODEL,
                     CREATE
                     ": %s: covariance is not symmetric: entry "
                     "(%zu, %zu) = %.17g but (%zu, %zu) = %.17g (relative "
                     "tolerance %g); pass a symmetric matrix, e.g. "
                     "(S + S^T)/2",
                     who, i, j, x, j, i, y, SYM_TOL);
    }
  return GMLE_OK;
}

static gmle_status check_params(gmle_context *ctx, size_t D, size_t C,
                                gmle_cov_type cov, const double *means,
                                const double *covs, const double *priors,
                                const double *counts) {
  char who[64];
  double sum = 0;
  for (size_t c = 0; c < C; c++) {
    const double p = priors ? priors[c] : 1.0 / (double)C;
    GMLE_RETURN_IF(!isfinite(p) || p < 0, ctx, GMLE_E_INVALID_MODEL,
                   CREATE ": class %zu: prior is %g; priors must be finite "
                          "and >= 0",
                   c, p);
    sum += p;
    GMLE_RETURN_IF(counts && (!isfinite(counts[c]) || counts[c] < 0), ctx,
                   GMLE_E_INVALID_MODEL,
                   CREATE ": class %zu: count is %g; counts must be finite "
                          "and >= 0",
                   c, counts[c]);
  }
  GMLE_RETURN_IF(fabs(sum - 1.0) > PRIOR_SUM_TOL, ctx, GMLE_E_INVALID_MODEL,
                 CREATE
                 ": priors of classes 0..%zu sum to %.17g, not 1 "
                 "(tolerance %g); normalise them, or pass NULL for uniform "
                 "priors",
                 C - 1, sum, PRIOR_SUM_TOL);
  for (size_t c = 0; c < C; c++)
    for (size_t j = 0; j < D; j++)
      GMLE_RETURN_IF(!isfinite(means[c * D + j]), ctx, GMLE_E_INVALID_MODEL,
                     CREATE ": class %zu: mean of feature %zu is %s; means "
                            "must be finite",
                     c, j, gmle__nonfinite_name(means[c * D + j]));
  /* Covariances of empty classes (count 0 or prior 0) are never factorised
   * or used: they only need to be finite. */
  int any_active = 0;
  for (size_t c = 0; c < C; c++) {
    const double p = priors ? priors[c] : 1.0 / (double)C;
    const int empty = p == 0 || (counts && counts[c] == 0);
    any_active |= !empty;
    switch (cov) {
    case GMLE_COV_FULL:
      snprintf(who, sizeof who, "class %zu", c);
      if (empty) {
        for (size_t i = 0; i < D * D; i++)
          GMLE_RETURN_IF(
              !isfinite(covs[c * D * D + i]), ctx, GMLE_E_INVALID_MODEL,
              CREATE ": class %zu: covariance entry (%zu, %zu) is "
                     "%s; covariances must be finite",
              c, i / D, i % D, gmle__nonfinite_name(covs[c * D * D + i]));
      } else {
        GMLE_TRY(check_full(ctx, covs + c * D * D, D, who));
      }
      break;
    case GMLE_COV_DIAG:
      for (size_t j = 0; j < D; j++) {
        const double v = covs[c * D + j];
        GMLE_RETURN_IF(!isfinite(v), ctx, GMLE_E_INVALID_MODEL,
                       CREATE ": class %zu: variance of feature %zu is %s; "
                              "variances must be finite",
                       c, j, gmle__nonfinite_name(v));
        GMLE_RETURN_IF(!empty && !(v > 0), ctx, GMLE_E_INVALID_MODEL,
                       CREATE ": class %zu: variance of feature %zu is %g; "
                              "variances must be positive",
                       c, j, v);
      }
      break;
    case GMLE_COV_SPHERICAL:
      GMLE_RETURN_IF(!isfinite(covs[c]), ctx, GMLE_E_INVALID_MODEL,
                     CREATE ": class %zu: spherical variance is %s; "
                            "variances must be finite",
                     c, gmle__nonfinite_name(covs[c]));
      GMLE_RETURN_IF(!empty && !(covs[c] > 0), ctx, GMLE_E_INVALID_MODEL,
                     CREATE ": class %zu: spherical variance is %g; "
                            "variances must be positive",
                     c, covs[c]);
      break;
    case GMLE_COV_TIED:
      break;
    }
  }
  if (cov == GMLE_COV_TIED) {
    if (any_active)
      GMLE_TRY(check_full(ctx, covs, D, "tied covariance (all classes)"));
    else
      for (size_t i = 0; i < D * D; i++)
        GMLE_RETURN_IF(!isfinite(covs[i]), ctx, GMLE_E_INVALID_MODEL,
                       CREATE ": tied covariance (all classes): entry "
                              "(%zu, %zu) is %s; covariances must be finite",
                       i / D, i % D, gmle__nonfinite_name(covs[i]));
  }
  return GMLE_OK;
}

/* Report of a model built from parameters: no training rows; the
 * eigenvalue range is exact for diag and spherical models and NaN (not
 * computed) for full and tied ones. */
static void fill_reports(gmle_model *m) {
  const size_t D = m->dim;
  for (size_t c = 0; c < m->n_classes; c++) {
    gmle_class_report *r = &m->reports[c];
    memset(r, 0, sizeof *r);
    r->rows = 0;
    r->weight = m->counts[c];
    r->empty = m->counts[c] == 0 || m->priors[c] == 0;
    r->min_eigenvalue = r->max_eigenvalue = r->condition = NAN;
    if (m->cov == GMLE_COV_DIAG || m->cov == GMLE_COV_SPHERICAL) {
      double lo = INFINITY, hi = 0;
      for (size_t j = 0; j < D; j++) {
        const double v =
            m->cov == GMLE_COV_DIAG ? m->covars[c * D + j] : m->covars[c];
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
      }
      r->min_eigenvalue = lo;
      r->max_eigenvalue = hi;
      r->condition = lo > 0 ? hi / lo : INFINITY;
    }
  }
}

gmle_status gmle_model_create(gmle_context *ctx, size_t dim, size_t n_classes,
                              gmle_cov_type cov, const double *means,
                              const double *covariances, const double *priors,
                              const double *counts, gmle_model **out) {
  if (!ctx)
    return GMLE_E_INVALID_ARG;
  gmle__clear_error(ctx);
  GMLE_RETURN_IF(!out, ctx, GMLE_E_INVALID_ARG, CREATE ": out is NULL");
  *out = NULL;
  GMLE_RETURN_IF(!means || !covariances, ctx, GMLE_E_INVALID_ARG,
                 CREATE ": %s is NULL", !means ? "means" : "covariances");
  gmle_model *m = NULL;
  GMLE_TRY(gmle__model_alloc(ctx, dim, n_classes, cov, &m));
  gmle_status s = check_params(ctx, dim, n_classes, cov, means, covariances,
                               priors, counts);
  if (s != GMLE_OK) {
    gmle_model_free(m);
    return s;
  }
  const size_t C = n_classes;
  memcpy(m->means, means, C * dim * sizeof(double));
  memcpy(m->covars, covariances, gmle__cov_len(cov, dim, C) * sizeof(double));
  for (size_t c = 0; c < C; c++) {
    m->priors[c] = priors ? priors[c] : 1.0 / (double)C;
    /* Without counts, the priors stand in for the relative counts. */
    m->counts[c] = counts ? counts[c] : m->priors[c];
    m->rows[c] = 0;
  }
  fill_reports(m);
  m->has_train = 0;
  s = gmle__model_prepare(m);
  if (s == GMLE_E_SINGULAR_COV || s == GMLE_E_NONFINITE_STATS) {
    /* The Cholesky check: restate as an invalid model. */
    char why[GMLE__ERR_LEN];
    snprintf(why, sizeof why, "%s", gmle_context_error(ctx));
    s = gmle__error(ctx, GMLE_E_INVALID_MODEL, CREATE ": %s", why);
  }
  if (s != GMLE_OK) {
    gmle_model_free(m);
    return s;
  }
  *out = m;
  return GMLE_OK;
}
