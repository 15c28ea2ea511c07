/* mixture.c -- mixture models: building one from parameters, its getters,
 * and scoring it. A mixture keeps its C*K components as a model of plain
 * Gaussians (gmle__mixture.components, priors w_ck / C), which every
 * backend scores as it scores any model; the per-class reduction
 * (log-sum-exp over a class's components) is done here, in the core.
 * docs/MIXTURES.md describes the model and the EM that fits it (src/em.c). */
#include "internal.h"

#include <lapacke.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#define MIX_CREATE "gmle_mixture_create"
/* Class weights must sum to 1 within this; they are renormalised when they
 * differ from 1 by more than MIX_RENORM (so that weights that already sum
 * to 1 to rounding keep their bits). */
#define MIX_SUM_TOL 1e-6
#define MIX_RENORM 1e-12

void gmle__mixture_free(gmle__mixture *mix) {
  if (!mix)
    return;
  gmle_model_free(mix->components);
  gmle__free(mix->weights);
  gmle__free(mix->means);
  gmle__free(mix->covars);
  gmle__free(mix->history);
  gmle__free(mix);
}

/* Covariance values per component (full D*D, diag D, spherical 1) and per
 * class for tied (D*D). */
static size_t comp_cov_len(gmle_cov_type cov, size_t D) {
  switch (cov) {
  case GMLE_COV_FULL:
  case GMLE_COV_TIED:
    return D * D;
  case GMLE_COV_DIAG:
    return D;
  case GMLE_COV_SPHERICAL:
    return 1;
  }
  return 0;
}

/* Length of a mixture's covariance array. */
static size_t mix_cov_len(gmle_cov_type cov, size_t D, size_t C, size_t K) {
  return cov == GMLE_COV_TIED ? C * D * D : C * K * comp_cov_len(cov, D);
}

/* The covariance of component k of class c as a full D x D matrix. */
static void comp_full(gmle_cov_type cov, size_t D, size_t K,
                      const double *covars, size_t c, size_t k, double *out) {
  memset(out, 0, D * D * sizeof(double));
  const size_t g = c * K + k;
  switch (cov) {
  case GMLE_COV_FULL:
    memcpy(out, covars + g * D * D, D * D * sizeof(double));
    break;
  case GMLE_COV_TIED:
    memcpy(out, covars + c * D * D, D * D * sizeof(double));
    break;
  case GMLE_COV_DIAG:
    for (size_t j = 0; j < D; j++)
      out[j * D + j] = covars[g * D + j];
    break;
  case GMLE_COV_SPHERICAL:
    for (size_t j = 0; j < D; j++)
      out[j * D + j] = covars[g];
    break;
  }
}

/* Class c's mixture moments: mean sum_k w_k mu_k and covariance
 * sum_k w_k (Sigma_k + mu_k mu_k^T) - mu mu^T, in the model's layout
 * (diag: its diagonal; spherical: its mean variance; tied: summed over
 * classes with the priors as weights, by the caller). */
static void class_moments(const gmle__mixture *mix, gmle_cov_type cov, size_t D,
                          size_t c, double *mean, double *full, double *tmp) {
  const size_t K = mix->n_components;
  memset(mean, 0, D * sizeof(double));
  memset(full, 0, D * D * sizeof(double));
  for (size_t k = 0; k < K; k++)
    for (size_t i = 0; i < D; i++)
      mean[i] += mix->weights[c * K + k] * mix->means[(c * K + k) * D + i];
  /* sum_k w_k (Sigma_k + (mu_k - mu)(mu_k - mu)^T): centred, so that means
   * far from 0 do not cancel */
  for (size_t k = 0; k < K; k++) {
    const double w = mix->weights[c * K + k];
    const double *mu = mix->means + (c * K + k) * D;
    comp_full(cov, D, K, mix->covars, c, k, tmp);
    for (size_t i = 0; i < D; i++)
      for (size_t j = 0; j < D; j++)
        full[i * D + j] +=
            w * (tmp[i * D + j] + (mu[i] - mean[i]) * (mu[j] - mean[j]));
  }
}

/* The wrapper's class-level means and covariances from the components. */
static void fill_moments(gmle_model *m, double *tmp) {
  const size_t D = m->dim, C = m->n_classes;
  double *full = tmp + D * D;
  if (m->cov == GMLE_COV_TIED)
    memset(m->covars, 0, D * D * sizeof(double));
  for (size_t c = 0; c < C; c++) {
    class_moments(m->mix, m->cov, D, c, m->means + c * D, full, tmp);
    switch (m->cov) {
    case GMLE_COV_FULL:
      memcpy(m->covars + c * D * D, full, D * D * sizeof(double));
      break;
    case GMLE_COV_DIAG:
      for (size_t j = 0; j < D; j++)
        m->covars[c * D + j] = full[j * D + j];
      break;
    case GMLE_COV_SPHERICAL: {
      double t = 0;
      for (size_t j = 0; j < D; j++)
        t += full[j * D + j];
      m->covars[c] = t / (double)D;
      break;
    }
    case GMLE_COV_TIED:
      for (size_t j = 0; j < D * D; j++)
        m->covars[j] += m->priors[c] * full[j];
      break;
    }
  }
}

/* Weights: finite, >= 0, each class's summing to 1 within MIX_SUM_TOL;
 * renormalised into w when further from 1 than MIX_RENORM. */
static gmle_status check_weights(gmle_context *ctx, size_t C, size_t K,
                                 const double *weights, double *w) {
  for (size_t c = 0; c < C; c++) {
    double sum = 0;
    for (size_t k = 0; k < K; k++) {
      const double v = weights[c * K + k];
      if (!isfinite(v) || v < 0) {
        const gmle_error_location loc = {.class_index = c,
                                         .fields = GMLE_LOC_CLASS};
        return gmle__error_at(ctx, GMLE_E_INVALID_MODEL, &loc,
                              MIX_CREATE ": class %zu, component %zu: weight "
                                         "is %g; weights must be finite and "
                                         ">= 0",
                              c, k, v);
      }
      sum += v;
    }
    if (!(fabs(sum - 1.0) <= MIX_SUM_TOL)) {
      const gmle_error_location loc = {.class_index = c,
                                       .fields = GMLE_LOC_CLASS};
      return gmle__error_at(ctx, GMLE_E_INVALID_MODEL, &loc,
                            MIX_CREATE ": class %zu: the weights of its %zu "
                                       "components sum to %.17g, not 1 "
                                       "(tolerance %g)",
                            c, K, sum, MIX_SUM_TOL);
    }
    const int renorm = fabs(sum - 1.0) > MIX_RENORM;
    for (size_t k = 0; k < K; k++)
      w[c * K + k] = renorm ? weights[c * K + k] / sum : weights[c * K + k];
  }
  return GMLE_OK;
}

/* The components as a model of plain Gaussians. Tied with several classes
 * becomes full (each class's matrix repeated for its components). */
static gmle_status build_components(gmle_context *ctx, size_t D, size_t C,
                                    size_t K, gmle_cov_type cov,
                                    const double *w, const double *means,
                                    const double *covars, gmle_model **out) {
  const size_t G = C * K;
  const int expand = cov == GMLE_COV_TIED && C > 1;
  const gmle_cov_type ccov = expand ? GMLE_COV_FULL : cov;
  double *pri = gmle__malloc(G * sizeof(double));
  double *cv = expand ? gmle__malloc(G * D * D * sizeof(double)) : NULL;
  if (!pri || (expand && !cv)) {
    gmle__free(pri);
    gmle__free(cv);
    return gmle__error(ctx, GMLE_E_OUT_OF_MEMORY,
                       MIX_CREATE ": out of memory (%zu components)", G);
  }
  for (size_t g = 0; g < G; g++)
    pri[g] = C == 1 ? w[g] : w[g] / (double)C;
  if (expand)
    for (size_t g = 0; g < G; g++)
      memcpy(cv + g * D * D, covars + (g / K) * D * D, D * D * sizeof(double));
  gmle_status s = gmle_model_create(ctx, D, G, ccov, means,
                                    expand ? cv : covars, pri, NULL, out);
  if (s != GMLE_OK) {
    char why[GMLE__ERR_LEN];
    snprintf(why, sizeof why, "%s", gmle_context_error(ctx));
    gmle_error_location loc;
    gmle_context_error_location(ctx, &loc);
    if (loc.fields & GMLE_LOC_CLASS) {
      const size_t g = loc.class_index;
      loc.class_index = g / K;
      s = gmle__error_at(ctx, s, &loc,
                         "%s (the model's components are numbered c*K + k: "
                         "%zu is class %zu, component %zu)",
                         why, g, g / K, g % K);
    } else {
      s = gmle__error(ctx, s, "%s", why);
    }
  }
  gmle__free(pri);
  gmle__free(cv);
  return s;
}

/* The mixture model from checked weights w (owned by the result on success
 * and freed on failure). */
gmle_status gmle__mixture_build(gmle_context *ctx, size_t D, size_t C, size_t K,
                                gmle_cov_type cov, double *w,
                                const double *means, const double *covars,
                                const double *priors, const double *counts,
                                gmle_model **out) {
  *out = NULL;
  const size_t clen = mix_cov_len(cov, D, C, K);
  gmle__mixture *mix = gmle__calloc(1, sizeof *mix);
  double *tmp = gmle__malloc(2 * D * D * sizeof(double));
  gmle_model *m = NULL;
  gmle_status s = GMLE_OK;
  if (!mix || !tmp) {
    gmle__free(w);
    s = gmle__error(ctx, GMLE_E_OUT_OF_MEMORY, MIX_CREATE ": out of memory");
    goto fail;
  }
  mix->n_components = K;
  mix->weights = w;
  mix->means = gmle__malloc(C * K * D * sizeof(double));
  mix->covars = gmle__malloc(clen * sizeof(double));
  if (!mix->means || !mix->covars) {
    s = gmle__error(ctx, GMLE_E_OUT_OF_MEMORY, MIX_CREATE ": out of memory");
    goto fail;
  }
  memcpy(mix->means, means, C * K * D * sizeof(double));
  memcpy(mix->covars, covars, clen * sizeof(double));
  s = build_components(ctx, D, C, K, cov, w, means, covars, &mix->components);
  if (s != GMLE_OK)
    goto fail;
  s = gmle__model_alloc(ctx, D, C, cov, &m);
  if (s != GMLE_OK)
    goto fail;
  double psum = 0;
  for (size_t c = 0; c < C; c++) {
    const double p = priors ? priors[c] : 1.0 / (double)C;
    if (!isfinite(p) || p < 0 || (counts && !(counts[c] >= 0))) {
      s = gmle__error(ctx, GMLE_E_INVALID_MODEL,
                      MIX_CREATE ": class %zu: prior %g or count %g is not "
                                 "finite and >= 0",
                      c, p, counts ? counts[c] : 0.0);
      goto fail;
    }
    psum += p;
    m->priors[c] = p;
    m->counts[c] = counts ? counts[c] : p;
    m->log_priors[c] = p > 0 ? log(p) : -INFINITY;
    m->reports[c].weight = m->counts[c];
    m->reports[c].empty = m->counts[c] == 0 && counts != NULL;
  }
  if (!(fabs(psum - 1.0) <= MIX_SUM_TOL)) {
    s = gmle__error(ctx, GMLE_E_INVALID_MODEL,
                    MIX_CREATE ": the class priors sum to %.17g, not 1", psum);
    goto fail;
  }
  m->mix = mix;
  mix = NULL;
  fill_moments(m, tmp);
  for (size_t c = 0; c < C; c++) {
    const size_t L = gmle__cov_len(cov, D, C) / (cov == GMLE_COV_TIED ? 1 : C);
    const double *cv = m->covars + (cov == GMLE_COV_TIED ? 0 : c * L);
    int finite = 1;
    for (size_t i = 0; i < D; i++)
      finite &= isfinite(m->means[c * D + i]);
    for (size_t i = 0; i < L; i++)
      finite &= isfinite(cv[i]);
    if (!finite) {
      const gmle_error_location loc = {.class_index = c,
                                       .fields = GMLE_LOC_CLASS};
      s = gmle__error_at(ctx, GMLE_E_INVALID_MODEL, &loc,
                         MIX_CREATE ": class %zu: the mixture's covariance "
                                    "overflows float64 (its components' "
                                    "means are too far apart)",
                         c);
      goto fail;
    }
  }
  gmle__free(tmp);
  *out = m;
  return GMLE_OK;
fail:
  gmle__free(tmp);
  gmle__mixture_free(mix);
  gmle_model_free(m);
  return s;
}

gmle_status gmle_mixture_create(gmle_context *ctx, size_t dim, size_t n_classes,
                                size_t n_components, gmle_cov_type cov,
                                const double *weights, const double *means,
                                const double *covariances, const double *priors,
                                const double *counts, gmle_model **out) {
  if (!ctx)
    return GMLE_E_INVALID_ARG;
  gmle__clear_error(ctx);
  GMLE_RETURN_IF(!out, ctx, GMLE_E_INVALID_ARG, MIX_CREATE ": out is NULL");
  *out = NULL;
  GMLE_RETURN_IF(!weights || !means || !covariances, ctx, GMLE_E_INVALID_ARG,
                 MIX_CREATE ": %s is NULL",
                 !weights ? "weights"
                 : !means ? "means"
                          : "covariances");
  GMLE_RETURN_IF(dim == 0 || n_classes == 0 || n_components == 0, ctx,
                 GMLE_E_INVALID_ARG,
                 MIX_CREATE ": %zu features, %zu classes, %zu components "
                            "(each must be >= 1)",
                 dim, n_classes, n_components);
  GMLE_RETURN_IF(!gmle_cov_name(cov), ctx, GMLE_E_INVALID_ARG,
                 MIX_CREATE ": unknown covariance type %d", (int)cov);
  size_t G, len;
  GMLE_RETURN_IF(gmle__mul_size(n_classes, n_components, &G) ||
                     gmle__mul3_size(G, dim, dim, &len) ||
                     gmle__mul_size(len, sizeof(double), &len),
                 ctx, GMLE_E_TOO_LARGE,
                 MIX_CREATE ": %zu classes x %zu components x %zu features "
                            "overflows size_t",
                 n_classes, n_components, dim);
  double *w = gmle__malloc(G * sizeof(double));
  GMLE_RETURN_IF(!w, ctx, GMLE_E_OUT_OF_MEMORY, MIX_CREATE ": out of memory");
  gmle_status s = check_weights(ctx, n_classes, n_components, weights, w);
  if (s != GMLE_OK) {
    gmle__free(w);
    return s;
  }
  return gmle__mixture_build(ctx, dim, n_classes, n_components, cov, w, means,
                             covariances, priors, counts, out);
}

int gmle_model_is_mixture(const gmle_model *m) { return m && m->mix; }

size_t gmle_model_n_components(const gmle_model *m) {
  return !m ? 0 : m->mix ? m->mix->n_components : 1;
}

static gmle_status need_mixture(const gmle_model *m, const char *fn) {
  if (!m)
    return GMLE_E_INVALID_ARG;
  gmle__clear_error(m->ctx);
  GMLE_RETURN_IF(!m->mix, m->ctx, GMLE_E_INVALID_ARG,
                 "%s: the model is not a mixture", fn);
  return GMLE_OK;
}

gmle_status gmle_mixture_params(const gmle_model *m, double *weights,
                                double *means, double *covariances) {
  GMLE_TRY(need_mixture(m, "gmle_mixture_params"));
  const gmle__mixture *mix = m->mix;
  const size_t D = m->dim, C = m->n_classes, K = mix->n_components;
  if (weights)
    memcpy(weights, mix->weights, C * K * sizeof(double));
  if (means)
    memcpy(means, mix->means, C * K * D * sizeof(double));
  if (covariances)
    memcpy(covariances, mix->covars,
           mix_cov_len(m->cov, D, C, K) * sizeof(double));
  return GMLE_OK;
}

/* U = L^-T, upper triangular, from the lower Cholesky factor L (row-major
 * D x D): U U^T = L^-T L^-1 = Sigma^-1, scikit-learn's
 * precisions_cholesky_. */
static gmle_status prec_chol(const gmle_context *ctx, const double *L, size_t D,
                             double *out) {
  double *inv = gmle__malloc(D * D * sizeof(double));
  GMLE_RETURN_IF(!inv, ctx, GMLE_E_OUT_OF_MEMORY,
                 "gmle_mixture_precisions_cholesky: out of memory");
  memcpy(inv, L, D * D * sizeof(double));
  for (size_t i = 0; i < D; i++)
    for (size_t j = i + 1; j < D; j++)
      inv[i * D + j] = 0.0;
  const lapack_int info = LAPACKE_dtrtri(LAPACK_ROW_MAJOR, 'L', 'N',
                                         (lapack_int)D, inv, (lapack_int)D);
  if (info == 0)
    for (size_t i = 0; i < D; i++)
      for (size_t j = 0; j < D; j++)
        out[i * D + j] = inv[j * D + i];
  gmle__free(inv);
  GMLE_RETURN_IF(info != 0, ctx, GMLE_E_SINGULAR_COV,
                 "gmle_mixture_precisions_cholesky: a Cholesky factor is "
                 "singular (LAPACK dtrtri info %d)",
                 (int)info);
  return GMLE_OK;
}

gmle_status gmle_mixture_precisions_cholesky(const gmle_model *m, double *out) {
  GMLE_TRY(need_mixture(m, "gmle_mixture_precisions_cholesky"));
  GMLE_RETURN_IF(!out, m->ctx, GMLE_E_INVALID_ARG,
                 "gmle_mixture_precisions_cholesky: out is NULL");
  const gmle__mixture *mix = m->mix;
  const gmle_model *cm = mix->components;
  const size_t D = m->dim, C = m->n_classes, K = mix->n_components;
  switch (m->cov) {
  case GMLE_COV_DIAG:
  case GMLE_COV_SPHERICAL: {
    const size_t n = mix_cov_len(m->cov, D, C, K);
    for (size_t i = 0; i < n; i++)
      out[i] = 1.0 / sqrt(mix->covars[i]);
    return GMLE_OK;
  }
  case GMLE_COV_FULL:
    for (size_t g = 0; g < C * K; g++)
      GMLE_TRY(prec_chol(m->ctx, cm->factor + g * D * D, D, out + g * D * D));
    return GMLE_OK;
  case GMLE_COV_TIED:
    /* The components model holds one factor (C == 1) or each component's
     * copy of its class's (C > 1, full): take component 0 of each class. */
    for (size_t c = 0; c < C; c++)
      GMLE_TRY(prec_chol(m->ctx, cm->factor + (C == 1 ? 0 : c * K) * D * D, D,
                         out + c * D * D));
    return GMLE_OK;
  }
  return GMLE_E_INVALID_ARG;
}

size_t gmle__mixture_n_params(const gmle_model *m) {
  const size_t D = m->dim, C = m->n_classes, K = m->mix->n_components;
  const size_t tri = D * (D + 1) / 2;
  size_t cov = 0;
  switch (m->cov) {
  case GMLE_COV_FULL:
    cov = K * tri;
    break;
  case GMLE_COV_DIAG:
    cov = K * D;
    break;
  case GMLE_COV_SPHERICAL:
    cov = K;
    break;
  case GMLE_COV_TIED:
    cov = tri;
    break;
  }
  return C * (K * D + cov + (K - 1)) + (C - 1);
}

/* ------------------------------------------------------------------------ */
/* EM report                                                                */
/* ------------------------------------------------------------------------ */

gmle_status gmle_model_em_report(const gmle_model *m, gmle_em_report *out) {
  if (!m)
    return GMLE_E_INVALID_ARG;
  gmle__clear_error(m->ctx);
  GMLE_RETURN_IF(!out, m->ctx, GMLE_E_INVALID_ARG,
                 "gmle_model_em_report: out is NULL");
  GMLE_RETURN_IF(!m->mix || !m->mix->has_report, m->ctx, GMLE_E_UNSUPPORTED,
                 "gmle_model_em_report: the model has no EM report (it was "
                 "not fitted by EM)");
  *out = m->mix->report;
  return GMLE_OK;
}

gmle_status gmle_model_set_em_report(gmle_model *m, const gmle_em_report *r) {
  GMLE_TRY(need_mixture(m, "gmle_model_set_em_report"));
  GMLE_RETURN_IF(!r || (r->n_history && !r->history), m->ctx,
                 GMLE_E_INVALID_ARG,
                 "gmle_model_set_em_report: the report or its history is "
                 "NULL");
  double *h = NULL;
  if (r->n_history) {
    h = gmle__malloc(r->n_history * sizeof(double));
    GMLE_RETURN_IF(!h, m->ctx, GMLE_E_OUT_OF_MEMORY,
                   "gmle_model_set_em_report: out of memory");
    memcpy(h, r->history, r->n_history * sizeof(double));
  }
  gmle__free(m->mix->history);
  m->mix->history = h;
  m->mix->report = *r;
  m->mix->report.history = h;
  m->mix->has_report = 1;
  return GMLE_OK;
}

/* ------------------------------------------------------------------------ */
/* Scoring                                                                  */
/* ------------------------------------------------------------------------ */

static void put(void *out, gmle_dtype t, size_t i, double v) {
  if (t == GMLE_F32)
    ((float *)out)[i] = (float)v;
  else
    ((double *)out)[i] = v;
}

/* out[k] = exp(v[k] - shift): one SIMD loop, compiled for AVX-512, AVX2
 * and the baseline (the loader picks by the CPU); with -fno-math-errno
 * (CMakeLists.txt) and exp declared SIMD, GCC calls glibc's vector exp
 * (libmvec, within 4 ulp) instead of one scalar exp per value. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) &&         \
    defined(__GLIBC__)
double exp(double) __attribute__((__simd__("notinbranch")));
#define GMLE__EXP_CLONES                                                       \
  __attribute__((target_clones("avx512f", "avx2", "default")))
#define GMLE__EXP_SIMD _Pragma("omp simd")
#else
/* (clang: no vector exp to call; a simd pragma it cannot honour is an
 * error under -Werror) */
#define GMLE__EXP_CLONES
#define GMLE__EXP_SIMD
#endif
GMLE__EXP_CLONES
static void exp_shifted(const double *v, double shift, double *out, size_t n) {
  /* Below -708 exp is under 3.4e-308 and takes the vector exp's scalar
   * fallback (its underflow path, one lane at a time); such a term is 0
   * beside the 1 a log-sum-exp's largest term gives, and is set to 0: exp
   * of the argument clamped in a first loop (a select in the same
   * expression lets the compiler hand exp the unclamped one) times a 0/1
   * mask. */
  GMLE__EXP_SIMD
  for (size_t k = 0; k < n; k++) {
    const double d = v[k] - shift;
    out[k] = d > -708.0 ? d : -708.0;
  }
  GMLE__EXP_SIMD
  for (size_t k = 0; k < n; k++)
    out[k] = exp(out[k]) * (v[k] - shift >= -708.0 ? 1.0 : 0.0);
}

/* (A wrapper: the clones' resolver of an extern function would be exported
 * from libgmle whatever the visibility; a static one is not.) */
void gmle__exp_shifted(const double *v, double shift, double *out, size_t n) {
  exp_shifted(v, shift, out, n);
}

/* log-sum-exp of n values (-inf when all are); tmp: n doubles, left
 * holding exp(v - max). */
static double lse(const double *v, size_t n, double *tmp) {
  double mx = -INFINITY;
  for (size_t i = 0; i < n; i++)
    mx = v[i] > mx ? v[i] : mx;
  if (mx == -INFINITY)
    return -INFINITY;
  gmle__exp_shifted(v, mx, tmp, n);
  double s = 0;
  for (size_t i = 0; i < n; i++)
    s += tmp[i];
  return mx + log(s);
}

/* Rows scored per call of the components model: its n x C*K joint stays
 * within about 32 MiB. */
size_t gmle__mixture_chunk_rows(size_t G) {
  size_t r = ((size_t)4 << 20) / (G ? G : 1);
  return r < 64 ? 64 : r > 65536 ? 65536 : r;
}

/* The outputs of rows [r0, r0 + n) from their components' joint J (n x G,
 * each including log(w_ck / C)), rows in parallel. scratch: C + max(C, K)
 * doubles per thread. */
static void reduce_rows(const gmle_model *m, const double *J, size_t n,
                        size_t r0, gmle_output what, gmle_dtype ot, void *out,
                        double *scratch, int nt) {
  const size_t C = m->n_classes, K = m->mix->n_components, G = C * K;
  const double logC = log((double)C);
  const ptrdiff_t N = (ptrdiff_t)n;
#pragma omp parallel for num_threads(nt) schedule(static)
  for (ptrdiff_t ri = 0; ri < N; ri++) {
    const size_t r = (size_t)ri;
    double *cls =
        scratch + (size_t)omp_get_thread_num() * (C + (C > K ? C : K));
    double *tmp = cls + C;
    const double *j = J + r * G;
    const size_t row = r0 + r;
    if (what == GMLE_OUT_RESP) {
      for (size_t c = 0; c < C; c++) {
        const double l = lse(j + c * K, K, tmp);
        if (l != -INFINITY)
          gmle__exp_shifted(j + c * K, l, tmp, K);
        for (size_t k = 0; k < K; k++)
          put(out, ot, row * G + c * K + k, l == -INFINITY ? 0.0 : tmp[k]);
      }
      continue;
    }
    for (size_t c = 0; c < C; c++) {
      const double l = lse(j + c * K, K, tmp);
      cls[c] = l == -INFINITY ? l : l + logC; /* log p(x | c) */
      if (what != GMLE_OUT_LOGLIK)
        cls[c] += m->log_priors[c];
    }
    switch (what) {
    case GMLE_OUT_LOGLIK:
    case GMLE_OUT_JOINT:
      for (size_t c = 0; c < C; c++)
        put(out, ot, row * C + c, cls[c]);
      break;
    case GMLE_OUT_LOGPOST: {
      const double d = lse(cls, C, tmp);
      for (size_t c = 0; c < C; c++)
        put(out, ot, row * C + c, d == -INFINITY ? -INFINITY : cls[c] - d);
      break;
    }
    case GMLE_OUT_DENSITY:
      put(out, ot, row, lse(cls, C, tmp));
      break;
    case GMLE_OUT_LABEL: {
      double mx = -INFINITY;
      int32_t best = -1;
      for (size_t c = 0; c < C; c++)
        if (cls[c] > mx) {
          mx = cls[c];
          best = (int32_t)c;
        }
      ((int32_t *)out)[row] = best;
      break;
    }
    case GMLE_OUT_RESP:
      break;
    }
  }
}

gmle_status gmle__mixture_score(gmle_context *ctx, const gmle_model *m,
                                const void *x, gmle_dtype dtype, size_t n_rows,
                                size_t row_stride, gmle_output what,
                                gmle_dtype out_dtype, void *out) {
  const gmle_model *cm = m->mix->components;
  const size_t G = cm->n_classes, D = m->dim;
  /* NaN and Inf named by their row in the caller's array, before any work. */
  GMLE_TRY(
      gmle__check_finite(ctx, x, dtype, n_rows, row_stride, D, 0, "score"));
  const size_t R = gmle__mixture_chunk_rows(G);
  const size_t R1 = n_rows < R ? n_rows : R;
  double *J = gmle__malloc((R1 ? R1 : 1) * G * sizeof(double));
  const size_t C = m->n_classes, K = m->mix->n_components;
  const int nt = ctx->n_threads > 0 ? ctx->n_threads : 1;
  double *cls =
      gmle__malloc((size_t)nt * (C + (C > K ? C : K)) * sizeof(double));
  gmle_status s = GMLE_OK;
  if (!J || !cls)
    s = gmle__error(ctx, GMLE_E_OUT_OF_MEMORY,
                    "score: out of memory (%zu rows x %zu components)", R1, G);
  const size_t isz = gmle__dtype_size(dtype);
  for (size_t r0 = 0; s == GMLE_OK && r0 < n_rows; r0 += R) {
    const size_t n = n_rows - r0 < R ? n_rows - r0 : R;
    s = gmle_score(ctx, cm, (const char *)x + r0 * row_stride * isz, dtype, n,
                   row_stride, GMLE_OUT_JOINT, GMLE_F64, J);
    if (s == GMLE_OK)
      reduce_rows(m, J, n, r0, what, out_dtype, out, cls, nt);
  }
  gmle__free(J);
  gmle__free(cls);
  return s;
}
