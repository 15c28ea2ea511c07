/* em_fit.c -- gmle_em_fit: the initialisations (a reservoir sample of each
 * class; k-means++ and Lloyd, random rows, a given model, splitting) and
 * the EM loop over a gmle_batch_source (docs/MIXTURES.md). */
#include "internal.h"

#include <cblas.h>
#include <math.h>
#include <string.h>
#include <time.h>

/* ---- random numbers (splitmix64: small, seedable, the same everywhere) --- */

typedef struct rng {
  uint64_t s;
} rng;

static uint64_t rng_next(rng *r) {
  uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static double rng_unit(rng *r) { return (double)(rng_next(r) >> 11) * 0x1p-53; }

/* Uniform in [0, n). */
static uint64_t rng_below(rng *r, uint64_t n) {
  return (uint64_t)(rng_unit(r) * (double)n) % n;
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double elem(const void *x, gmle_dtype t, size_t i) {
  return t == GMLE_F32 ? (double)((const float *)x)[i] : ((const double *)x)[i];
}

/* ---- one pass over the source -------------------------------------------- */

typedef gmle_status (*batch_fn)(void *user, const void *x, gmle_dtype dtype,
                                size_t n, size_t stride, const int32_t *labels,
                                const double *weights);

static gmle_status each_batch(const gmle_batch_source *src, batch_fn fn,
                              void *user, double *rows) {
  GMLE_TRY(src->rewind(src->user));
  double total = 0;
  for (;;) {
    const void *x = NULL;
    gmle_dtype dtype = GMLE_F64;
    size_t n = 0, stride = 0;
    const int32_t *labels = NULL;
    const double *weights = NULL;
    GMLE_TRY(src->next(src->user, &x, &dtype, &n, &stride, &labels, &weights));
    if (n == 0)
      break;
    GMLE_TRY(fn(user, x, dtype, n, stride, labels, weights));
    total += (double)n;
  }
  if (rows)
    *rows = total;
  return GMLE_OK;
}

/* ---- the reservoir sample -------------------------------------------------
 */

typedef struct sample {
  gmle_context *ctx;
  size_t D, C, cap;
  uint64_t *seen; /* [C] rows of each class read */
  size_t *n;      /* [C] rows held */
  double *x;      /* [C][cap][D] */
  uint64_t batch; /* batches read */
  rng r;
} sample;

static gmle_status sample_add(void *user, const void *x, gmle_dtype dtype,
                              size_t n, size_t stride, const int32_t *labels,
                              const double *weights) {
  sample *sp = user;
  (void)weights;
  const size_t D = sp->D;
  GMLE_TRY(
      gmle__check_finite(sp->ctx, x, dtype, n, stride, D, sp->batch++, "EM"));
  for (size_t r = 0; r < n; r++) {
    size_t c = 0;
    if (sp->C > 1) {
      GMLE_RETURN_IF(!labels || labels[r] < 0 || (size_t)labels[r] >= sp->C,
                     sp->ctx, GMLE_E_BAD_LABEL, "EM: row %zu of a batch: %s", r,
                     labels ? "label outside the classes" : "no labels");
      c = (size_t)labels[r];
    }
    const uint64_t seen = sp->seen[c]++;
    size_t slot = sp->cap;
    if (sp->n[c] < sp->cap)
      slot = sp->n[c]++;
    else if (rng_below(&sp->r, seen + 1) < sp->cap)
      slot = (size_t)rng_below(&sp->r, sp->cap);
    if (slot == sp->cap)
      continue;
    double *dst = sp->x + (c * sp->cap + slot) * D;
    for (size_t j = 0; j < D; j++)
      dst[j] = elem(x, dtype, r * stride + j);
  }
  return GMLE_OK;
}

static void sample_free(sample *sp) {
  gmle__free(sp->seen);
  gmle__free(sp->n);
  gmle__free(sp->x);
}

/* Read every row once: the per-class reservoirs and counts, and the checks
 * that need them (an empty class, K above a class's rows). */
static gmle_status take_sample(gmle_context *ctx, size_t D, size_t C, size_t K,
                               const gmle_batch_source *src,
                               const gmle_em_options *o, sample *sp) {
  memset(sp, 0, sizeof *sp);
  sp->ctx = ctx;
  sp->D = D;
  sp->C = C;
  /* At most about 256 MiB of sample, but 4 rows per component at least. */
  size_t cap = ((size_t)32 << 20) / (C * D);
  cap = cap < 4 * K ? 4 * K : cap;
  cap = cap > o->sample_rows ? o->sample_rows : cap;
  cap = cap < K ? K : cap;
  sp->cap = cap;
  sp->r.s = o->seed ^ 0x5a5a5a5a5a5a5a5aull;
  sp->seen = gmle__calloc(C, sizeof(uint64_t));
  sp->n = gmle__calloc(C, sizeof(size_t));
  size_t len;
  if (gmle__mul3_size(C, cap, D, &len) == 0)
    sp->x = gmle__malloc(len * sizeof(double));
  GMLE_RETURN_IF(!sp->seen || !sp->n || !sp->x, ctx, GMLE_E_OUT_OF_MEMORY,
                 "EM: out of memory for a sample of %zu rows x %zu classes",
                 cap, C);
  GMLE_TRY(each_batch(src, sample_add, sp, NULL));
  for (size_t c = 0; c < C; c++) {
    const gmle_error_location loc = {.class_index = c,
                                     .fields = GMLE_LOC_CLASS};
    if (sp->seen[c] == 0)
      return gmle__error_at(ctx, GMLE_E_EMPTY, &loc,
                            "EM: class %zu has no rows", c);
    if (sp->seen[c] < K)
      return gmle__error_at(ctx, GMLE_E_ILL_DEFINED_COV, &loc,
                            "EM: class %zu has %llu row%s, fewer than the %zu "
                            "components asked for",
                            c, (unsigned long long)sp->seen[c],
                            sp->seen[c] == 1 ? "" : "s", K);
  }
  return GMLE_OK;
}

/* ---- k-means++ and Lloyd on a class's sample ----------------------------- */

static double dist2(const double *a, const double *b, size_t D) {
  double s = 0;
  for (size_t j = 0; j < D; j++) {
    const double d = a[j] - b[j];
    s += d * d;
  }
  return s;
}

/* K seeds by k-means++ (each next seed drawn with probability proportional
 * to its squared distance from the nearest seed so far). */
static void kmeanspp(const double *X, size_t m, size_t D, size_t K, rng *r,
                     double *cent, double *d2) {
  memcpy(cent, X + rng_below(r, m) * D, D * sizeof(double));
  for (size_t i = 0; i < m; i++)
    d2[i] = dist2(X + i * D, cent, D);
  for (size_t k = 1; k < K; k++) {
    double total = 0;
    for (size_t i = 0; i < m; i++)
      total += d2[i];
    size_t pick = m - 1;
    if (total > 0) {
      double u = rng_unit(r) * total;
      for (size_t i = 0; i < m; i++) {
        u -= d2[i];
        if (u < 0) {
          pick = i;
          break;
        }
      }
    } else {
      pick = rng_below(r, m);
    }
    double *ck = cent + k * D;
    memcpy(ck, X + pick * D, D * sizeof(double));
    for (size_t i = 0; i < m; i++) {
      const double d = dist2(X + i * D, ck, D);
      d2[i] = d < d2[i] ? d : d2[i];
    }
  }
}

/* Lloyd iterations: assign (distances by one GEMM), re-centre; an empty
 * cluster takes the row farthest from its centre. */
static gmle_status lloyd(gmle_context *ctx, const double *X, size_t m, size_t D,
                         size_t K, size_t iters, double *cent,
                         int32_t *assign) {
  double *G = gmle__malloc(m * K * sizeof(double));
  double *xn = gmle__malloc(m * sizeof(double));
  double *cn = gmle__malloc(K * sizeof(double));
  double *dmin = gmle__malloc(m * sizeof(double));
  double *cnt = gmle__malloc(K * sizeof(double));
  gmle_status s = GMLE_OK;
  if (!G || !xn || !cn || !dmin || !cnt) {
    s = gmle__error(ctx, GMLE_E_OUT_OF_MEMORY,
                    "EM: k-means: out of memory (%zu rows x %zu centres)", m,
                    K);
    goto done;
  }
  for (size_t i = 0; i < m; i++)
    xn[i] = cblas_ddot((int)D, X + i * D, 1, X + i * D, 1);
  for (size_t it = 0; it <= iters; it++) {
    for (size_t k = 0; k < K; k++)
      cn[k] = cblas_ddot((int)D, cent + k * D, 1, cent + k * D, 1);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)K, (int)D,
                1.0, X, (int)D, cent, (int)D, 0.0, G, (int)K);
    size_t changed = 0;
    for (size_t i = 0; i < m; i++) {
      double best = INFINITY;
      int32_t bk = 0;
      for (size_t k = 0; k < K; k++) {
        const double d = xn[i] - 2.0 * G[i * K + k] + cn[k];
        if (d < best) {
          best = d;
          bk = (int32_t)k;
        }
      }
      changed += it == 0 || assign[i] != bk;
      assign[i] = bk;
      dmin[i] = best;
    }
    if (it == iters || changed == 0)
      break;
    memset(cent, 0, K * D * sizeof(double));
    memset(cnt, 0, K * sizeof(double));
    for (size_t i = 0; i < m; i++) {
      cnt[assign[i]] += 1;
      cblas_daxpy((int)D, 1.0, X + i * D, 1, cent + (size_t)assign[i] * D, 1);
    }
    for (size_t k = 0; k < K; k++) {
      if (cnt[k] > 0) {
        cblas_dscal((int)D, 1.0 / cnt[k], cent + k * D, 1);
        continue;
      }
      size_t far = 0;
      for (size_t i = 1; i < m; i++)
        far = dmin[i] > dmin[far] ? i : far;
      memcpy(cent + k * D, X + far * D, D * sizeof(double));
      dmin[far] = -1;
    }
  }
done:
  gmle__free(G);
  gmle__free(xn);
  gmle__free(cn);
  gmle__free(dmin);
  gmle__free(cnt);
  return s;
}

/* ---- initial models --------------------------------------------------------
 */

/* The mixture fitted to the sample's rows under hard labels lab (c*K + k
 * per sampled row, classes in order): the M-step on those statistics. */
static gmle_status from_sample_labels(gmle_context *ctx, const sample *sp,
                                      size_t K, const int32_t *lab,
                                      const gmle_em_options *o,
                                      gmle_model **out) {
  const size_t C = sp->C, D = sp->D;
  gmle_stats *st = NULL;
  const gmle_stats_mode mode =
      o->cov == GMLE_COV_DIAG || o->cov == GMLE_COV_SPHERICAL ? GMLE_STATS_DIAG
                                                              : GMLE_STATS_FULL;
  GMLE_TRY(gmle_stats_create_mode(ctx, D, C * K, mode, &st));
  gmle_status s = GMLE_OK;
  for (size_t c = 0, off = 0; c < C && s == GMLE_OK; c++) {
    s = gmle_stats_add(st, sp->x + c * sp->cap * D, GMLE_F64, sp->n[c], D,
                       C * K > 1 ? lab + off : NULL, NULL);
    off += sp->n[c];
  }
  gmle_em_stats *es = NULL;
  if (s == GMLE_OK)
    s = gmle_em_stats_wrap(st, K, GMLE_EM_HARD, 0, 0, &es);
  if (s != GMLE_OK) {
    gmle_stats_free(st);
    return s;
  }
  s = gmle_em_step(es, NULL, o, out);
  gmle_em_stats_free(es);
  if (s == GMLE_OK)
    (*out)->mix->has_report = 0;
  return s;
}

static gmle_status init_kmeans(gmle_context *ctx, const sample *sp, size_t K,
                               const gmle_em_options *o, rng *r,
                               gmle_model **out) {
  const size_t C = sp->C, D = sp->D;
  size_t total = 0, mmax = 0;
  for (size_t c = 0; c < C; c++) {
    total += sp->n[c];
    mmax = sp->n[c] > mmax ? sp->n[c] : mmax;
  }
  int32_t *lab = gmle__malloc(total * sizeof(int32_t));
  double *cent = gmle__malloc(K * D * sizeof(double));
  double *d2 = gmle__malloc(mmax * sizeof(double));
  gmle_status s = GMLE_OK;
  if (!lab || !cent || !d2)
    s = gmle__error(ctx, GMLE_E_OUT_OF_MEMORY, "EM: k-means: out of memory");
  for (size_t c = 0, off = 0; c < C && s == GMLE_OK; c++) {
    const double *X = sp->x + c * sp->cap * D;
    const size_t m = sp->n[c];
    if (o->init == GMLE_INIT_KMEANSPP) {
      kmeanspp(X, m, D, K, r, cent, d2);
    } else { /* K distinct random rows */
      for (size_t k = 0; k < K; k++) {
        size_t pick;
        int again;
        do {
          pick = rng_below(r, m);
          again = 0;
          for (size_t u = 0; u < k && !again; u++)
            again =
                memcmp(cent + u * D, X + pick * D, D * sizeof(double)) == 0 &&
                m > K;
        } while (again);
        memcpy(cent + k * D, X + pick * D, D * sizeof(double));
      }
    }
    s = lloyd(ctx, X, m, D, K,
              o->init == GMLE_INIT_KMEANSPP ? o->kmeans_iter : 0, cent,
              lab + off);
    for (size_t i = 0; i < m; i++)
      lab[off + i] += (int32_t)(c * K);
    off += m;
  }
  if (s == GMLE_OK)
    s = from_sample_labels(ctx, sp, K, lab, o, out);
  gmle__free(lab);
  gmle__free(cent);
  gmle__free(d2);
  return s;
}

/* The K + 1 component mixture: m's components, and the heaviest of each
 * class split in two. */
static gmle_status grow(gmle_context *ctx, const gmle_model *m,
                        gmle_model **out) {
  const size_t D = m->dim, C = m->n_classes, K = m->mix->n_components;
  const size_t K1 = K + 1;
  const gmle_cov_type cov = m->cov;
  const size_t cl = cov == GMLE_COV_FULL        ? D * D
                    : cov == GMLE_COV_DIAG      ? D
                    : cov == GMLE_COV_SPHERICAL ? 1
                                                : 0;
  double *w = gmle__malloc(C * K1 * sizeof(double));
  double *mu = gmle__malloc(C * K1 * D * sizeof(double));
  double *cv = gmle__malloc((cl ? C * K1 * cl : C * D * D) * sizeof(double));
  if (!w || !mu || !cv) {
    gmle__free(w);
    gmle__free(mu);
    gmle__free(cv);
    return gmle__error(ctx, GMLE_E_OUT_OF_MEMORY, "EM: split: out of memory");
  }
  const gmle__mixture *x = m->mix;
  for (size_t c = 0; c < C; c++) {
    for (size_t k = 0; k < K; k++) {
      w[c * K1 + k] = x->weights[c * K + k];
      memcpy(mu + (c * K1 + k) * D, x->means + (c * K + k) * D,
             D * sizeof(double));
      if (cl)
        memcpy(cv + (c * K1 + k) * cl, x->covars + (c * K + k) * cl,
               cl * sizeof(double));
    }
    if (!cl)
      memcpy(cv + c * D * D, x->covars + c * D * D, D * D * sizeof(double));
    size_t h = 0;
    for (size_t k = 1; k < K; k++)
      h = w[c * K1 + k] > w[c * K1 + h] ? k : h;
    gmle__em_split(D, K1, cov, w, mu, cv, c, h, K);
  }
  gmle_status s = gmle__mixture_build(ctx, D, C, K1, cov, w, mu, cv, m->priors,
                                      m->counts, out);
  gmle__free(mu);
  gmle__free(cv);
  return s;
}

/* ---- the EM loop ------------------------------------------------------------
 */

typedef struct em_pass {
  gmle_em_stats *es;
} em_pass;

static gmle_status pass_add(void *user, const void *x, gmle_dtype dtype,
                            size_t n, size_t stride, const int32_t *labels,
                            const double *weights) {
  return gmle_em_stats_add(((em_pass *)user)->es, x, dtype, n, stride, labels,
                           weights);
}

/* One iteration from *m (replaced by the next model); *lb its lower bound. */
static gmle_status iterate(gmle_context *ctx, const gmle_batch_source *src,
                           const gmle_em_options *o, gmle_model **m, double *lb,
                           double *rows) {
  em_pass p = {NULL};
  GMLE_TRY(gmle_em_stats_create(ctx, *m, o, &p.es));
  gmle_status s = each_batch(src, pass_add, &p, rows);
  if (s == GMLE_OK && o->combine && o->combine->stats)
    s = o->combine->stats(o->combine->user, &p.es);
  gmle_model *next = NULL;
  if (s == GMLE_OK)
    s = gmle_em_step(p.es, *m, o, &next);
  if (s == GMLE_OK) {
    double sum = 0, w = 0;
    gmle_em_stats_loglik(p.es, &sum, &w);
    *lb = sum / w;
    gmle_model_free(*m);
    *m = next;
  }
  gmle_em_stats_free(p.es);
  return s;
}

/* EM from *m for at most max_iter iterations (tol as scikit-learn's). */
static gmle_status run_em(gmle_context *ctx, const gmle_batch_source *src,
                          const gmle_em_options *o, size_t run, size_t max_iter,
                          gmle_model **m, double *lb, int *converged) {
  double prev = -INFINITY;
  *lb = -INFINITY;
  *converged = 0;
  for (size_t it = 1; it <= max_iter; it++) {
    const double t0 = now_s();
    double rows = 0;
    GMLE_TRY(iterate(ctx, src, o, m, lb, &rows));
    const double change = *lb - prev;
    if (o->progress)
      o->progress(o->progress_user, run, it, *lb, it == 1 ? NAN : change, rows,
                  now_s() - t0);
    if (fabs(change) < o->tol) {
      *converged = 1;
      break;
    }
    prev = *lb;
  }
  return GMLE_OK;
}

/* A model of plain Gaussians as a one-component mixture. */
static gmle_status as_mixture(gmle_context *ctx, const gmle_model *m,
                              gmle_model **out) {
  const size_t C = m->n_classes;
  double *w = gmle__malloc(C * sizeof(double));
  GMLE_RETURN_IF(!w, ctx, GMLE_E_OUT_OF_MEMORY, "EM: out of memory");
  for (size_t c = 0; c < C; c++)
    w[c] = 1.0;
  if (m->cov == GMLE_COV_TIED && C > 1) {
    /* one pooled matrix, repeated per class */
    const size_t D = m->dim;
    double *cv = gmle__malloc(C * D * D * sizeof(double));
    if (!cv) {
      gmle__free(w);
      return gmle__error(ctx, GMLE_E_OUT_OF_MEMORY, "EM: out of memory");
    }
    for (size_t c = 0; c < C; c++)
      memcpy(cv + c * D * D, m->covars, D * D * sizeof(double));
    gmle_status s = gmle__mixture_build(ctx, D, C, 1, m->cov, w, m->means, cv,
                                        m->priors, m->counts, out);
    gmle__free(cv);
    return s;
  }
  return gmle__mixture_build(ctx, m->dim, C, 1, m->cov, w, m->means, m->covars,
                             m->priors, m->counts, out);
}

/* A copy of a mixture (its parameters; the report is not copied). */
static gmle_status copy_mixture(gmle_context *ctx, const gmle_model *m,
                                gmle_model **out) {
  const size_t G = m->n_classes * m->mix->n_components;
  double *w = gmle__malloc(G * sizeof(double));
  GMLE_RETURN_IF(!w, ctx, GMLE_E_OUT_OF_MEMORY, "EM: out of memory");
  memcpy(w, m->mix->weights, G * sizeof(double));
  return gmle__mixture_build(ctx, m->dim, m->n_classes, m->mix->n_components,
                             m->cov, w, m->mix->means, m->mix->covars,
                             m->priors, m->counts, out);
}

static gmle_status check_init_model(gmle_context *ctx, size_t D, size_t C,
                                    const gmle_em_options *o) {
  const gmle_model *im = o->init_model;
  GMLE_RETURN_IF(!im, ctx, GMLE_E_INVALID_ARG,
                 "EM: init is GMLE_INIT_MODEL but init_model is NULL");
  GMLE_RETURN_IF(im->ctx != ctx, ctx, GMLE_E_INVALID_ARG,
                 "EM: the init model was made on another context");
  GMLE_RETURN_IF(im->dim != D, ctx, GMLE_E_DIM_MISMATCH,
                 "EM: the init model has %zu features, the data %zu", im->dim,
                 D);
  GMLE_RETURN_IF(im->n_classes != C, ctx, GMLE_E_DIM_MISMATCH,
                 "EM: the init model has %zu classes, the data %zu",
                 im->n_classes, C);
  GMLE_RETURN_IF(im->cov != o->cov, ctx, GMLE_E_DIM_MISMATCH,
                 "EM: the init model's covariances are %s, the fit's %s",
                 gmle_cov_name(im->cov), gmle_cov_name(o->cov));
  GMLE_RETURN_IF(gmle_model_n_components(im) != o->n_components, ctx,
                 GMLE_E_DIM_MISMATCH,
                 "EM: the init model has %zu components per class, the fit "
                 "asks for %zu",
                 gmle_model_n_components(im), o->n_components);
  return GMLE_OK;
}

static gmle_status check_options(gmle_context *ctx, size_t D, size_t C,
                                 const gmle_em_options *o) {
  GMLE_RETURN_IF(D == 0 || C == 0, ctx, GMLE_E_INVALID_ARG,
                 "EM: %zu features and %zu classes (both must be >= 1)", D, C);
  GMLE_RETURN_IF(o->n_components == 0, ctx, GMLE_E_INVALID_ARG,
                 "EM: K = 0 components; a mixture needs at least one");
  GMLE_RETURN_IF(!gmle_cov_name(o->cov), ctx, GMLE_E_INVALID_ARG,
                 "EM: unknown covariance type %d", (int)o->cov);
  GMLE_RETURN_IF(o->mode == GMLE_EM_TOP_N &&
                     (o->top_n < 1 || o->top_n > o->n_components),
                 ctx, GMLE_E_INVALID_ARG,
                 "EM: top-N EM with N = %zu: N must be in [1, K = %zu]",
                 o->top_n, o->n_components);
  GMLE_RETURN_IF(!(o->tol >= 0) || !(o->reg_covar >= 0) ||
                     !(o->rel_floor >= 0) || !(o->min_weight >= 0) ||
                     !(o->min_weight < 1),
                 ctx, GMLE_E_INVALID_ARG,
                 "EM: tol %g, reg_covar %g, rel_floor %g must be >= 0 and "
                 "min_weight %g in [0, 1)",
                 o->tol, o->reg_covar, o->rel_floor, o->min_weight);
  GMLE_RETURN_IF(o->n_init == 0, ctx, GMLE_E_INVALID_ARG,
                 "EM: n_init is 0; at least one initialisation is needed");
  GMLE_RETURN_IF(o->init > GMLE_INIT_SPLIT, ctx, GMLE_E_INVALID_ARG,
                 "EM: unknown init %d", (int)o->init);
  GMLE_RETURN_IF(o->combine && o->init != GMLE_INIT_MODEL, ctx,
                 GMLE_E_INVALID_ARG,
                 "EM: a fit combined across processes (combine) starts from "
                 "a given model (GMLE_INIT_MODEL), the same in every "
                 "process; %s would start from this process's rows only",
                 gmle_em_init_name(o->init));
  size_t G;
  GMLE_RETURN_IF(
      gmle__mul_size(C, o->n_components, &G) || G > (size_t)INT32_MAX, ctx,
      GMLE_E_TOO_LARGE, "EM: %zu classes x %zu components", C, o->n_components);
  if (o->init == GMLE_INIT_MODEL)
    GMLE_TRY(check_init_model(ctx, D, C, o));
  return GMLE_OK;
}

/* One initialisation: the starting mixture of run `run`. */
static gmle_status initial(gmle_context *ctx, const sample *sp,
                           const gmle_batch_source *src,
                           const gmle_em_options *o, size_t run,
                           gmle_model **out) {
  const size_t K = o->n_components;
  rng r = {o->seed * 0x9e3779b97f4a7c15ull + run + 1};
  switch (o->init) {
  case GMLE_INIT_MODEL:
    return o->init_model->mix ? copy_mixture(ctx, o->init_model, out)
                              : as_mixture(ctx, o->init_model, out);
  case GMLE_INIT_KMEANSPP:
  case GMLE_INIT_RANDOM:
    return init_kmeans(ctx, sp, K, o, &r, out);
  case GMLE_INIT_SPLIT: {
    gmle_em_options o1 = *o;
    o1.n_components = 1;
    o1.progress = NULL;
    o1.tol = 0;
    gmle_model *m = NULL;
    GMLE_TRY(init_kmeans(ctx, sp, 1, &o1, &r, &m));
    for (size_t k = 1; k < K; k++) {
      double lb;
      int conv;
      gmle_status s = run_em(ctx, src, &o1, run, o->split_iter, &m, &lb, &conv);
      gmle_model *g = NULL;
      if (s == GMLE_OK)
        s = grow(ctx, m, &g);
      gmle_model_free(m);
      if (s != GMLE_OK)
        return s;
      m = g;
    }
    if (m->mix)
      m->mix->has_report = 0;
    *out = m;
    return GMLE_OK;
  }
  }
  return GMLE_E_INVALID_ARG;
}

typedef struct ll_pass {
  gmle_context *ctx;
  const gmle_model *m;
  double s, c, w;
} ll_pass;

static gmle_status pass_loglik(void *user, const void *x, gmle_dtype dtype,
                               size_t n, size_t stride, const int32_t *labels,
                               const double *weights) {
  ll_pass *p = user;
  double v = 0;
  GMLE_TRY(gmle_total_loglik(p->ctx, p->m, x, dtype, n, stride,
                             p->m->n_classes > 1 ? labels : NULL, weights, &v));
  const double t = p->s + v;
  p->c += fabs(p->s) >= fabs(v) ? (p->s - t) + v : (v - t) + p->s;
  p->s = t;
  for (size_t r = 0; r < n; r++)
    p->w += weights ? weights[r] : 1.0;
  return GMLE_OK;
}

/* The final model's training log-likelihood (one more pass, as
 * scikit-learn's final E-step), for BIC and AIC. */
static gmle_status final_loglik(gmle_context *ctx, const gmle_batch_source *src,
                                const gmle_em_combine *combine, gmle_model *m) {
  ll_pass p = {ctx, m, 0, 0, 0};
  GMLE_TRY(each_batch(src, pass_loglik, &p, NULL));
  double v[2] = {p.s + p.c, p.w};
  if (combine && combine->sums)
    GMLE_TRY(combine->sums(combine->user, v, 2));
  double prior_term = 0;
  if (m->n_classes > 1)
    for (size_t c = 0; c < m->n_classes; c++)
      if (m->counts[c] > 0)
        prior_term += m->counts[c] * m->log_priors[c];
  m->has_train = 1;
  m->train_loglik = v[0];
  m->train_loglik_joint = m->train_loglik + prior_term;
  m->train_n = v[1];
  return GMLE_OK;
}

gmle_status gmle_em_fit(gmle_context *ctx, size_t dim, size_t n_classes,
                        const gmle_batch_source *src,
                        const gmle_em_options *opt, gmle_model **out) {
  if (!ctx)
    return GMLE_E_INVALID_ARG;
  gmle__clear_error(ctx);
  GMLE_RETURN_IF(!out || !src || !src->rewind || !src->next, ctx,
                 GMLE_E_INVALID_ARG,
                 "gmle_em_fit: out, the source or its callbacks are NULL");
  *out = NULL;
  gmle_em_options o;
  gmle_em_options_init(&o);
  if (opt)
    GMLE_TRY(gmle__read_options(ctx, &o, sizeof o, opt,
                                offsetof(gmle_em_options, progress_user) +
                                    sizeof(void *),
                                "gmle_em_options"));
  GMLE_TRY(check_options(ctx, dim, n_classes, &o));
  sample sp;
  memset(&sp, 0, sizeof sp);
  gmle_status s = GMLE_OK;
  if (o.init != GMLE_INIT_MODEL)
    s = take_sample(ctx, dim, n_classes, o.n_components, src, &o, &sp);
  const size_t runs = o.init == GMLE_INIT_MODEL ? 1 : o.n_init;
  gmle_model *best = NULL;
  double best_lb = -INFINITY;
  int best_conv = 0;
  size_t best_run = 0;
  for (size_t run = 0; run < runs && s == GMLE_OK; run++) {
    gmle_model *m = NULL;
    s = initial(ctx, &sp, src, &o, run, &m);
    double lb = -INFINITY;
    int conv = 0;
    if (s == GMLE_OK)
      s = run_em(ctx, src, &o, run, o.max_iter, &m, &lb, &conv);
    if (s == GMLE_OK && (!best || lb > best_lb)) {
      gmle_model_free(best);
      best = m;
      best_lb = lb;
      best_conv = conv;
      best_run = run;
      m = NULL;
    }
    gmle_model_free(m);
  }
  sample_free(&sp);
  if (s == GMLE_OK)
    s = final_loglik(ctx, src, o.combine, best);
  if (s == GMLE_OK) {
    gmle_em_report rep;
    memset(&rep, 0, sizeof rep);
    if (best->mix->has_report)
      rep = best->mix->report;
    rep.converged = best_conv;
    rep.n_init = runs;
    rep.best_init = best_run;
    rep.mode = o.mode;
    rep.init = o.init;
    rep.reg_covar = o.reg_covar;
    rep.n_rows = best->train_n;
    if (!best->mix->has_report)
      rep.lower_bound = NAN;
    s = gmle_model_set_em_report(best, &rep);
  }
  if (s != GMLE_OK) {
    gmle_model_free(best);
    return s;
  }
  *out = best;
  return GMLE_OK;
}
