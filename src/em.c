/* em.c -- expectation-maximisation for mixtures (docs/MIXTURES.md).
 *
 * One iteration is one pass over the rows: each batch's E-step scores the
 * current components on the context's backend (the components model of
 * src/mixture.c, as any model is scored), turns each row's joint into its
 * responsibilities within its class (log-sum-exp), and accumulates the
 * responsibility-weighted statistics of every component into gmle_stats
 * with C*K classes (float64, around the current means): the backend's
 * accumulate operation with per-row weights. The M-step is gmle_fit on
 * those statistics, with reg_covar as its abs_floor. Hard EM accumulates
 * the rows under their most likely component (labels, no weights) and
 * lets the statistics choose their shifts as gmle fit does, so one hard
 * iteration is, bit for bit, "classify, then fit on the predicted labels".
 */
#include "internal.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>
#include <time.h>

struct gmle_em_stats {
  gmle_context *ctx;
  size_t dim, n_classes, K;
  gmle_cov_type cov;
  gmle_em_mode mode;
  size_t top_n;
  const gmle_model *current; /* NULL when wrapped from saved parts */
  gmle_stats *st;            /* C*K classes */
  gmle_stats *tmp;           /* soft: one batch's, merged on success */
  double ll_sum, ll_comp;    /* Neumaier sum of w log p(x | c) */
  double ll_weight;
  /* per-batch scratch */
  double *J;    /* [R*G] joint of a chunk */
  double *resp; /* [R*G] responsibilities x row weight */
  int32_t *lab; /* [n] hard labels, or [R] soft component labels */
  size_t lab_cap;
  size_t rows_cap;      /* rows the chunk scratch (J, resp, ...) holds */
  int32_t lab_dummy[1]; /* non-NULL labels for the batch checks */
  double *wbuf;         /* [R] */
  double *rbuf;         /* [R*K] one class's responsibilities, gathered */
  void *xbuf;           /* [R*D] compacted rows */
};

static void add_same_shift(gmle_stats *st, const gmle_stats *b);

void gmle_em_options_init(gmle_em_options *opt) {
  if (!opt)
    return;
  memset(opt, 0, sizeof *opt);
  opt->struct_size = sizeof *opt;
  opt->n_components = 1;
  opt->cov = GMLE_COV_FULL;
  opt->mode = GMLE_EM_SOFT;
  opt->top_n = 0;
  opt->init = GMLE_INIT_KMEANSPP;
  opt->max_iter = 100;
  opt->tol = 1e-3;
  opt->n_init = 1;
  opt->seed = 0;
  opt->reg_covar = 1e-6;
  opt->rel_floor = 1e-9;
  opt->min_weight = 0;
  opt->sample_rows = 100000;
  opt->kmeans_iter = 20;
  opt->split_iter = 3;
}

static gmle_status read_em_options(const gmle_context *ctx,
                                   const gmle_em_options *in,
                                   gmle_em_options *o) {
  gmle_em_options_init(o);
  if (in)
    GMLE_TRY(gmle__read_options(ctx, o, sizeof *o, in,
                                offsetof(gmle_em_options, progress_user) +
                                    sizeof(void *),
                                "gmle_em_options"));
  return GMLE_OK;
}

static void ksum_add(double *s, double *c, double v) {
  const double t = *s + v;
  if (fabs(*s) >= fabs(v))
    *c += (*s - t) + v;
  else
    *c += (v - t) + *s;
  *s = t;
}

void gmle_em_stats_free(gmle_em_stats *es) {
  if (!es)
    return;
  gmle_stats_free(es->st);
  gmle_stats_free(es->tmp);
  gmle__free(es->J);
  gmle__free(es->resp);
  gmle__free(es->lab);
  gmle__free(es->wbuf);
  gmle__free(es->rbuf);
  gmle__free(es->xbuf);
  gmle__free(es);
}

static gmle_stats_mode stats_mode(gmle_cov_type cov) {
  return cov == GMLE_COV_DIAG || cov == GMLE_COV_SPHERICAL ? GMLE_STATS_DIAG
                                                           : GMLE_STATS_FULL;
}

/* The current means of every component ([C*K*D]). */
static const double *current_means(const gmle_model *m) {
  return m->mix ? m->mix->means : m->means;
}

gmle_status gmle_em_stats_create(gmle_context *ctx, const gmle_model *current,
                                 const gmle_em_options *opt,
                                 gmle_em_stats **out) {
  if (!ctx)
    return GMLE_E_INVALID_ARG;
  gmle__clear_error(ctx);
  GMLE_RETURN_IF(!out || !current, ctx, GMLE_E_INVALID_ARG,
                 "gmle_em_stats_create: %s is NULL", !out ? "out" : "current");
  *out = NULL;
  GMLE_RETURN_IF(current->ctx != ctx, ctx, GMLE_E_INVALID_ARG,
                 "gmle_em_stats_create: the model was made on another "
                 "context");
  gmle_em_options o;
  GMLE_TRY(read_em_options(ctx, opt, &o));
  const size_t K = gmle_model_n_components(current), C = current->n_classes;
  const size_t D = current->dim, G = C * K;
  GMLE_RETURN_IF(o.mode == GMLE_EM_TOP_N && (o.top_n < 1 || o.top_n > K), ctx,
                 GMLE_E_INVALID_ARG,
                 "gmle_em_stats_create: top-N EM with N = %zu: N must be in "
                 "[1, K = %zu]",
                 o.top_n, K);
  GMLE_RETURN_IF(o.mode != GMLE_EM_SOFT && o.mode != GMLE_EM_HARD &&
                     o.mode != GMLE_EM_TOP_N,
                 ctx, GMLE_E_INVALID_ARG,
                 "gmle_em_stats_create: unknown EM mode %d", (int)o.mode);
  gmle_em_stats *es = gmle__calloc(1, sizeof *es);
  GMLE_RETURN_IF(!es, ctx, GMLE_E_OUT_OF_MEMORY,
                 "gmle_em_stats_create: out of memory");
  es->ctx = ctx;
  es->dim = D;
  es->n_classes = C;
  es->K = K;
  es->cov = current->cov;
  es->mode = o.mode;
  es->top_n = o.top_n;
  es->current = current;
  const gmle_stats_mode mode = stats_mode(current->cov);
  gmle_status s = gmle_stats_create_mode(ctx, D, G, mode, &es->st);
  if (s == GMLE_OK && o.mode != GMLE_EM_HARD)
    s = gmle_stats_create_mode(ctx, D, G, mode, &es->tmp);
  if (s == GMLE_OK && o.mode != GMLE_EM_HARD) {
    /* Soft statistics are taken around the current means (the shift that
     * keeps float32 rows with |mean| >> std exact). */
    const double *mu = current_means(current);
    for (size_t g = 0; g < G; g++) {
      memcpy(es->st->shift + g * D, mu + g * D, D * sizeof(double));
      memcpy(es->tmp->shift + g * D, mu + g * D, D * sizeof(double));
      es->st->has_shift[g] = es->tmp->has_shift[g] = 1;
    }
  }
  if (s != GMLE_OK) {
    gmle_em_stats_free(es);
    return s;
  }
  *out = es;
  return GMLE_OK;
}

gmle_status gmle_em_stats_wrap(gmle_stats *st, size_t n_components,
                               gmle_em_mode mode, double loglik_sum,
                               double loglik_weight, gmle_em_stats **out) {
  if (!st)
    return GMLE_E_INVALID_ARG;
  gmle_context *ctx = st->ctx;
  gmle__clear_error(ctx);
  GMLE_RETURN_IF(!out, ctx, GMLE_E_INVALID_ARG,
                 "gmle_em_stats_wrap: out is "
                 "NULL");
  *out = NULL;
  GMLE_RETURN_IF(n_components == 0 || st->n_classes % n_components != 0, ctx,
                 GMLE_E_INVALID_ARG,
                 "gmle_em_stats_wrap: %zu component statistics are not a "
                 "multiple of K = %zu",
                 st->n_classes, n_components);
  gmle_em_stats *es = gmle__calloc(1, sizeof *es);
  GMLE_RETURN_IF(!es, ctx, GMLE_E_OUT_OF_MEMORY,
                 "gmle_em_stats_wrap: out of memory");
  es->ctx = ctx;
  es->dim = st->dim;
  es->K = n_components;
  es->n_classes = st->n_classes / n_components;
  es->cov = st->mode == GMLE_STATS_DIAG ? GMLE_COV_DIAG : GMLE_COV_FULL;
  es->mode = mode;
  es->st = st;
  es->ll_sum = loglik_sum;
  es->ll_weight = loglik_weight;
  *out = es;
  return GMLE_OK;
}

size_t gmle_em_stats_n_components(const gmle_em_stats *es) {
  return es ? es->K : 0;
}

gmle_em_mode gmle_em_stats_mode(const gmle_em_stats *es) {
  return es ? es->mode : GMLE_EM_SOFT;
}

const gmle_stats *gmle_em_stats_components(const gmle_em_stats *es) {
  return es ? es->st : NULL;
}

gmle_status gmle_em_stats_loglik(const gmle_em_stats *es, double *sum,
                                 double *weight) {
  if (!es)
    return GMLE_E_INVALID_ARG;
  if (sum)
    *sum = es->ll_sum + es->ll_comp;
  if (weight)
    *weight = es->ll_weight;
  return GMLE_OK;
}

gmle_status gmle_em_stats_merge(gmle_em_stats *dst, const gmle_em_stats *src) {
  if (!dst || !src)
    return GMLE_E_INVALID_ARG;
  gmle__clear_error(dst->ctx);
  GMLE_RETURN_IF(dst->K != src->K || dst->n_classes != src->n_classes ||
                     dst->dim != src->dim || dst->mode != src->mode,
                 dst->ctx, GMLE_E_DIM_MISMATCH,
                 "gmle_em_stats_merge: the statistics are of different "
                 "mixtures (%zu x %zu components, %zu features vs %zu x %zu, "
                 "%zu) or EM modes",
                 dst->n_classes, dst->K, dst->dim, src->n_classes, src->K,
                 src->dim);
  const gmle_stats *a = dst->st, *b = src->st;
  const size_t G = a->n_classes, D = a->dim;
  int same = a->mode == b->mode && memcmp(a->has_shift, b->has_shift, G) == 0 &&
             memcmp(a->shift, b->shift, G * D * sizeof(double)) == 0;
  for (size_t g = 0; same && g < G; g++)
    same = a->has_shift[g];
  if (same) {
    /* The shifts of soft statistics from one model: the sums add exactly. */
    for (size_t i = 0; i < G * a->gram_len; i++)
      GMLE_RETURN_IF(!isfinite(a->gram[i] + b->gram[i]), dst->ctx,
                     GMLE_E_OVERFLOW,
                     "gmle_em_stats_merge: the sums overflow float64");
    add_same_shift(dst->st, src->st);
    dst->st->n_batches += src->st->n_batches;
  } else {
    GMLE_TRY(gmle_stats_merge(dst->st, src->st));
  }
  ksum_add(&dst->ll_sum, &dst->ll_comp, src->ll_sum + src->ll_comp);
  dst->ll_weight += src->ll_weight;
  return GMLE_OK;
}

/* ---- the E-step ---------------------------------------------------------- */

/* The per-chunk scratch for chunks of up to `rows` rows (grown when a
 * larger batch comes: a batch smaller than a chunk needs no more), and
 * `n_labels` hard labels. */
static gmle_status scratch(gmle_em_stats *es, size_t rows, size_t n_labels) {
  const size_t G = es->n_classes * es->K;
  if (es->rows_cap < rows) {
    gmle__free(es->J);
    gmle__free(es->resp);
    gmle__free(es->wbuf);
    gmle__free(es->xbuf);
    gmle__free(es->rbuf);
    es->J = gmle__malloc(rows * G * sizeof(double));
    es->resp = gmle__malloc(rows * G * sizeof(double));
    es->wbuf = gmle__malloc(rows * sizeof(double));
    es->xbuf = gmle__malloc(rows * es->dim * sizeof(double));
    es->rbuf = gmle__malloc(rows * es->K * sizeof(double));
    es->rows_cap = rows;
    if (!es->J || !es->resp || !es->wbuf || !es->xbuf || !es->rbuf) {
      es->rows_cap = 0;
      return gmle__error(es->ctx, GMLE_E_OUT_OF_MEMORY,
                         "EM: out of memory (%zu rows x %zu components)", rows,
                         G);
    }
  }
  if (es->lab_cap < n_labels) {
    int32_t *l = gmle__malloc(n_labels * sizeof(int32_t));
    GMLE_RETURN_IF(!l, es->ctx, GMLE_E_OUT_OF_MEMORY,
                   "EM: out of memory (%zu labels)", n_labels);
    gmle__free(es->lab);
    es->lab = l;
    es->lab_cap = n_labels;
  }
  return GMLE_OK;
}

/* Zero the batch statistics (their shifts stay). */
static void stats_zero(gmle_stats *st) {
  const size_t C = st->n_classes;
  memset(st->weight, 0, C * sizeof(double));
  memset(st->rows, 0, C * sizeof(uint64_t));
  memset(st->sum, 0, C * st->dim * sizeof(double));
  memset(st->gram, 0, C * st->gram_len * sizeof(double));
}

/* st += b, both around the same shifts: exact sums. */
static void add_same_shift(gmle_stats *st, const gmle_stats *b) {
  const size_t C = st->n_classes, D = st->dim, L = st->gram_len;
  for (size_t c = 0; c < C; c++) {
    if (b->weight[c] == 0 && b->rows[c] == 0)
      continue;
    st->weight[c] += b->weight[c];
    st->rows[c] += b->rows[c];
    for (size_t j = 0; j < D; j++)
      st->sum[c * D + j] += b->sum[c * D + j];
    for (size_t j = 0; j < L; j++)
      st->gram[c * L + j] += b->gram[c * L + j];
  }
}

/* The K top joints of a class row: indices of the n largest (ties: lowest
 * index first) into top. */
static void top_n_of(const double *j, size_t K, size_t n, size_t *top) {
  /* top[0..m) sorted by value, descending (an equal value after the ones
   * already there: lower index first); one pass, an insertion only for a
   * value that beats the n-th. */
  size_t m = 0;
  for (size_t k = 0; k < K; k++) {
    if (m == n && !(j[k] > j[top[n - 1]]))
      continue;
    size_t p = m < n ? m++ : n - 1;
    while (p > 0 && j[k] > j[top[p - 1]]) {
      top[p] = top[p - 1];
      p--;
    }
    top[p] = k;
  }
}

/* Rows [r0, r0 + n): their joint, log-likelihood and responsibilities
 * (resp[r*G + g], times the row's weight) or hard labels (lab[r0 + r]). */
static gmle_status e_step_chunk(gmle_em_stats *es, const void *x,
                                gmle_dtype dtype, size_t r0, size_t n,
                                size_t stride, const int32_t *labels,
                                const double *weights, double *ll_s,
                                double *ll_c, double *ll_w) {
  const gmle_model *m = es->current;
  const size_t C = es->n_classes, K = es->K, G = C * K;
  const size_t isz = gmle__dtype_size(dtype);
  const gmle_model *cm = m->mix ? m->mix->components : m;
  const char *xb = (const char *)x + r0 * stride * isz;
  /* A mixture's components carry log(w_ck / C): the joint over a class's
   * components plus log C is log p(x | c). A plain model: its loglik. */
  GMLE_TRY(gmle_score(es->ctx, cm, xb, dtype, n, stride,
                      m->mix ? GMLE_OUT_JOINT : GMLE_OUT_LOGLIK, GMLE_F64,
                      es->J));
  const double logC = m->mix ? log((double)C) : 0.0;
  const size_t N = es->mode == GMLE_EM_TOP_N ? es->top_n : 0;
  /* per thread: N indices and N values (sizeof(size_t) == sizeof(double)) */
  size_t *topv =
      N ? gmle__malloc((size_t)es->ctx->n_threads * 2 * N * sizeof(size_t))
        : NULL;
  GMLE_RETURN_IF(N && !topv, es->ctx, GMLE_E_OUT_OF_MEMORY,
                 "EM: out of memory");
  /* Each row on its own (in parallel); the log-likelihood is summed after,
   * in row order, so the result does not depend on the threads. */
  double *lrow = es->wbuf;
  size_t bad = n;
  const ptrdiff_t NR = (ptrdiff_t)n;
#pragma omp parallel for num_threads(es->ctx->n_threads) schedule(static)      \
    reduction(min                                                              \
              : bad)
  for (ptrdiff_t ri = 0; ri < NR; ri++) {
    const size_t r = (size_t)ri;
    const size_t c = labels ? (size_t)labels[r0 + r] : 0;
    const double w = weights ? weights[r0 + r] : 1.0;
    const double *j = es->J + r * G + c * K;
    double mx = -INFINITY;
    size_t best = 0;
    for (size_t k = 0; k < K; k++)
      if (j[k] > mx) {
        mx = j[k];
        best = k;
      }
    if (mx == -INFINITY) {
      bad = r < bad ? r : bad;
      lrow[r] = 0;
      continue;
    }
    if (es->mode == GMLE_EM_HARD) {
      double sum = 0;
      for (size_t k = 0; k < K; k++)
        sum += exp(j[k] - mx);
      lrow[r] = mx + log(sum);
      es->lab[r0 + r] = (int32_t)(c * K + best);
      continue;
    }
    double *rp = es->resp + r * G;
    if (C > 1)
      memset(rp, 0, G * sizeof(double));
    rp += c * K;
    gmle__exp_shifted(j, mx, rp, K);
    double sum = 0;
    for (size_t k = 0; k < K; k++)
      sum += rp[k];
    lrow[r] = mx + log(sum);
    if (!N) {
      const double f = w / sum;
      for (size_t k = 0; k < K; k++)
        rp[k] *= f;
      continue;
    }
    size_t *top = topv + (size_t)omp_get_thread_num() * 2 * N;
    double *keep = (double *)(top + N);
    top_n_of(j, K, N, top);
    double t = 0;
    for (size_t u = 0; u < N; u++)
      t += rp[top[u]];
    for (size_t u = 0; u < N; u++)
      keep[u] = rp[top[u]] * (w / t);
    memset(rp, 0, K * sizeof(double));
    for (size_t u = 0; u < N; u++)
      rp[top[u]] = keep[u];
  }
  gmle__free(topv);
  if (bad < n) {
    const size_t c = labels ? (size_t)labels[r0 + bad] : 0;
    const gmle_error_location loc = {.row = r0 + bad,
                                     .class_index = c,
                                     .fields = GMLE_LOC_ROW | GMLE_LOC_CLASS};
    return gmle__error_at(es->ctx, GMLE_E_NONFINITE_STATS, &loc,
                          "EM: row %zu has zero density under every "
                          "component of class %zu (underflow: rescale the "
                          "data)",
                          r0 + bad, c);
  }
  for (size_t r = 0; r < n; r++) {
    const double w = weights ? weights[r0 + r] : 1.0;
    if (w != 0)
      ksum_add(ll_s, ll_c, w * (lrow[r] + logC));
    *ll_w += w;
  }
  return GMLE_OK;
}

/* Soft, on a backend with accumulate_resp: rows [r0, r0 + n) class by
 * class (each class's rows and its K columns of responsibilities gathered
 * when there are several classes). */
static gmle_status accumulate_resp(gmle_em_stats *es, const void *x,
                                   gmle_dtype dtype, size_t r0, size_t n,
                                   size_t stride, const int32_t *labels) {
  const size_t C = es->n_classes, K = es->K, G = C * K, D = es->dim;
  const size_t isz = gmle__dtype_size(dtype);
  gmle_stats *t = es->tmp;
  const size_t L = t->gram_len;
  for (size_t c = 0; c < C; c++) {
    gmle__resp_batch b = {.x = (const char *)x + r0 * stride * isz,
                          .dtype = dtype,
                          .n_rows = n,
                          .row_stride = stride,
                          .dim = D,
                          .resp = es->resp,
                          .n_comp = K,
                          .shift = t->shift + c * K * D,
                          .diag = t->mode == GMLE_STATS_DIAG};
    if (C > 1) {
      size_t m = 0;
      for (size_t r = 0; r < n; r++) {
        if ((size_t)labels[r0 + r] != c)
          continue;
        memcpy((char *)es->xbuf + m * D * isz,
               (const char *)x + (r0 + r) * stride * isz, D * isz);
        memcpy(es->rbuf + m * K, es->resp + r * G + c * K, K * sizeof(double));
        m++;
      }
      if (m == 0)
        continue;
      b.x = es->xbuf;
      b.row_stride = D;
      b.n_rows = m;
      b.resp = es->rbuf;
    }
    const gmle__resp_out o = {.weight = t->weight + c * K,
                              .sum = t->sum + c * K * D,
                              .gram = t->gram + c * K * L,
                              .rows = t->rows + c * K};
    GMLE_TRY(es->ctx->ops->accumulate_resp(es->ctx, &b, &o));
  }
  return GMLE_OK;
}

void gmle__em_centre(const double *shift, size_t n_comp, size_t dim, double *m,
                     double *kp) {
  memset(m, 0, dim * sizeof(double));
  for (size_t g = 0; g < n_comp; g++)
    for (size_t j = 0; j < dim; j++)
      m[j] += shift[g * dim + j];
  for (size_t j = 0; j < dim; j++)
    m[j] /= (double)n_comp;
  for (size_t g = 0; g < n_comp; g++)
    for (size_t j = 0; j < dim; j++)
      kp[g * dim + j] = shift[g * dim + j] - m[j];
}

/* Soft: add rows [r0, r0 + n) to es->tmp, component by component, with
 * the rows of zero responsibility left out (exactly: they add nothing). */
static gmle_status accumulate_soft(gmle_em_stats *es, const void *x,
                                   gmle_dtype dtype, size_t r0, size_t n,
                                   size_t stride) {
  const size_t G = es->n_classes * es->K, D = es->dim;
  const size_t isz = gmle__dtype_size(dtype);
  for (size_t g = 0; g < G; g++) {
    size_t m = 0;
    for (size_t r = 0; r < n; r++) {
      const double v = es->resp[r * G + g];
      if (v > 0) {
        memcpy((char *)es->xbuf + m * D * isz,
               (const char *)x + (r0 + r) * stride * isz, D * isz);
        es->wbuf[m] = v;
        es->lab[m] = (int32_t)g;
        m++;
      }
    }
    if (m == 0)
      continue;
    GMLE_TRY(gmle_stats_add(es->tmp, es->xbuf, dtype, m, D,
                            G > 1 ? es->lab : NULL, es->wbuf));
  }
  return GMLE_OK;
}

static gmle_status check_rows(gmle_em_stats *es, size_t n,
                              const int32_t *labels, const double *weights) {
  const size_t C = es->n_classes;
  for (size_t r = 0; r < n; r++) {
    if (labels && (labels[r] < 0 || (size_t)labels[r] >= C)) {
      const gmle_error_location loc = {.row = r, .fields = GMLE_LOC_ROW};
      return gmle__error_at(es->ctx, GMLE_E_BAD_LABEL, &loc,
                            "EM: row %zu: label %ld is outside [0, %zu)", r,
                            (long)labels[r], C);
    }
    if (weights && !(weights[r] >= 0 && isfinite(weights[r]))) {
      const gmle_error_location loc = {.row = r, .fields = GMLE_LOC_ROW};
      return gmle__error_at(es->ctx, GMLE_E_INVALID_WEIGHTS, &loc,
                            "EM: row %zu: weight %g is %s", r, weights[r],
                            isfinite(weights[r]) ? "negative" : "not finite");
    }
  }
  return GMLE_OK;
}

gmle_status gmle_em_stats_add(gmle_em_stats *es, const void *x,
                              gmle_dtype dtype, size_t n_rows,
                              size_t row_stride, const int32_t *labels,
                              const double *weights) {
  if (!es)
    return GMLE_E_INVALID_ARG;
  gmle_context *ctx = es->ctx;
  gmle__clear_error(ctx);
  GMLE_RETURN_IF(!es->current, ctx, GMLE_E_INVALID_ARG,
                 "gmle_em_stats_add: these statistics were loaded, not "
                 "created from a model: merge them, or fit from them");
  /* The batch checks of gmle_stats_add, against the classes (not the
   * components): labels are required with several classes. */
  GMLE_TRY(gmle__stats_check_batch(es->st, "EM", x, dtype, n_rows, row_stride,
                                   es->n_classes > 1 ? labels : es->lab_dummy));
  if (n_rows == 0)
    return GMLE_OK;
  if (es->n_classes == 1)
    labels = NULL;
  GMLE_TRY(gmle__check_finite(ctx, x, dtype, n_rows, row_stride, es->dim,
                              es->st->n_batches, "EM"));
  GMLE_TRY(check_rows(es, n_rows, labels, weights));
  const size_t G = es->n_classes * es->K, D = es->dim;
  const size_t R = gmle__mixture_chunk_rows(G);
  const size_t rows = n_rows < R ? n_rows : R;
  GMLE_TRY(scratch(es, rows, es->mode == GMLE_EM_HARD ? n_rows : rows));
  double ll_s = 0, ll_c = 0, ll_w = 0;
  gmle_status s = GMLE_OK;
  if (es->tmp)
    stats_zero(es->tmp);
  for (size_t r0 = 0; r0 < n_rows && s == GMLE_OK; r0 += R) {
    const size_t n = n_rows - r0 < R ? n_rows - r0 : R;
    s = e_step_chunk(es, x, dtype, r0, n, row_stride, labels, weights, &ll_s,
                     &ll_c, &ll_w);
    if (s == GMLE_OK && es->mode != GMLE_EM_HARD)
      s = ctx->ops->accumulate_resp
              ? accumulate_resp(es, x, dtype, r0, n, row_stride, labels)
              : accumulate_soft(es, x, dtype, r0, n, row_stride);
  }
  if (s == GMLE_OK && es->mode == GMLE_EM_HARD)
    s = gmle_stats_add(es->st, x, dtype, n_rows, row_stride, es->lab, weights);
  if (s != GMLE_OK)
    return s;
  if (es->tmp) {
    /* Every sum finite (a batch whose statistics overflow leaves es as it
     * was): then add. */
    const gmle_stats *t = es->tmp;
    for (size_t i = 0; i < G * D; i++)
      GMLE_RETURN_IF(!isfinite(t->sum[i] + es->st->sum[i]), ctx,
                     GMLE_E_OVERFLOW,
                     "EM: batch %llu: the statistics overflow float64 "
                     "(component %zu of class %zu)",
                     (unsigned long long)es->st->n_batches, (i / D) % es->K,
                     i / D / es->K);
    for (size_t i = 0; i < G * t->gram_len; i++)
      GMLE_RETURN_IF(!isfinite(t->gram[i] + es->st->gram[i]), ctx,
                     GMLE_E_OVERFLOW,
                     "EM: batch %llu: the statistics overflow float64",
                     (unsigned long long)es->st->n_batches);
    add_same_shift(es->st, t);
    es->st->n_batches++;
    if (dtype == GMLE_F32)
      es->st->saw_f32 = 1;
  }
  ksum_add(&es->ll_sum, &es->ll_comp, ll_s + ll_c);
  es->ll_weight += ll_w;
  return GMLE_OK;
}

/* ---- the M-step ---------------------------------------------------------- */

/* Split component h of class c (in w, mu, cov of a K-component mixture)
 * into itself and component k: the two means moved by +-1/2 standard
 * deviation along the direction of largest variance, the weight halved,
 * the covariance copied. */
void gmle__em_split(size_t D, size_t K, gmle_cov_type cov, double *w,
                    double *mu, double *cv, size_t c, size_t h, size_t k) {
  const size_t gh = c * K + h, gk = c * K + k;
  const size_t cl = cov == GMLE_COV_FULL        ? D * D
                    : cov == GMLE_COV_DIAG      ? D
                    : cov == GMLE_COV_SPHERICAL ? 1
                                                : 0;
  /* the axis: the feature of largest variance (exact and cheap; enough to
   * separate the two halves) */
  size_t jmax = 0;
  double vmax = -1;
  for (size_t j = 0; j < D; j++) {
    double v = 0;
    switch (cov) {
    case GMLE_COV_FULL:
      v = cv[gh * D * D + j * D + j];
      break;
    case GMLE_COV_TIED:
      v = cv[c * D * D + j * D + j];
      break;
    case GMLE_COV_DIAG:
      v = cv[gh * D + j];
      break;
    case GMLE_COV_SPHERICAL:
      v = cv[gh];
      break;
    }
    if (v > vmax) {
      vmax = v;
      jmax = j;
    }
  }
  const double d = 0.5 * sqrt(vmax > 0 ? vmax : 0);
  memcpy(mu + gk * D, mu + gh * D, D * sizeof(double));
  mu[gh * D + jmax] -= d;
  mu[gk * D + jmax] += d;
  w[gh] *= 0.5;
  w[gk] = w[gh];
  if (cl)
    memcpy(cv + gk * cl, cv + gh * cl, cl * sizeof(double));
}

/* The heaviest component of class c other than `not`. */
static size_t heaviest(const double *w, size_t K, size_t c, size_t not ) {
  size_t h = K;
  for (size_t k = 0; k < K; k++)
    if (k != not &&(h == K || w[c * K + k] > w[c * K + h]))
      h = k;
  return h;
}

/* Pool each class's K full covariances (tied with several classes):
 * sum_k n_ck Sigma_ck / sum_k n_ck into cv [C*D*D]. */
static void pool_tied(const gmle_model *fm, size_t C, size_t K, size_t D,
                      const double *n, double *cv) {
  for (size_t c = 0; c < C; c++) {
    double *o = cv + c * D * D, t = 0;
    memset(o, 0, D * D * sizeof(double));
    for (size_t k = 0; k < K; k++) {
      const double nk = n[c * K + k];
      if (nk <= 0)
        continue;
      t += nk;
      const double *s = fm->covars + (c * K + k) * D * D;
      for (size_t i = 0; i < D * D; i++)
        o[i] += nk * s[i];
    }
    for (size_t i = 0; i < D * D; i++)
      o[i] = t > 0 ? o[i] / t : (i % (D + 1) == 0 ? 1.0 : 0.0);
  }
}

gmle_status gmle_em_step(const gmle_em_stats *es, const gmle_model *previous,
                         const gmle_em_options *opt, gmle_model **out) {
  if (!es)
    return GMLE_E_INVALID_ARG;
  gmle_context *ctx = es->ctx;
  gmle__clear_error(ctx);
  GMLE_RETURN_IF(!out, ctx, GMLE_E_INVALID_ARG, "gmle_em_step: out is NULL");
  *out = NULL;
  gmle_em_options o;
  GMLE_TRY(read_em_options(ctx, opt, &o));
  const size_t C = es->n_classes, K = es->K, D = es->dim, G = C * K;
  gmle_cov_type cov = previous ? previous->cov : es->cov;
  if (!previous && opt)
    cov = o.cov;
  GMLE_RETURN_IF(stats_mode(cov) != es->st->mode, ctx, GMLE_E_INVALID_ARG,
                 "gmle_em_step: %s covariances need %s statistics",
                 gmle_cov_name(cov),
                 stats_mode(cov) == GMLE_STATS_DIAG ? "diagonal" : "full");
  /* Class totals, and each class's rows. */
  double *n = gmle__calloc(G + 2 * C, sizeof(double));
  GMLE_RETURN_IF(!n, ctx, GMLE_E_OUT_OF_MEMORY, "gmle_em_step: out of memory");
  double *nc = n + G, *pri = nc + C;
  double total = 0;
  for (size_t g = 0; g < G; g++) {
    n[g] = es->st->weight[g];
    nc[g / K] += n[g];
  }
  for (size_t c = 0; c < C; c++)
    total += nc[c];
  gmle_status s = GMLE_OK;
  for (size_t c = 0; c < C && s == GMLE_OK; c++)
    if (!(nc[c] > 0)) {
      const gmle_error_location loc = {.class_index = c,
                                       .fields = GMLE_LOC_CLASS};
      s = gmle__error_at(ctx, GMLE_E_EMPTY, &loc,
                         "EM: class %zu has no rows (or only rows of weight "
                         "0)",
                         c);
    }
  /* The components' MLE: gmle_fit over the C*K component statistics, with
   * reg_covar on every diagonal. Tied with several classes is fitted full
   * and pooled per class below. */
  gmle_fit_options fo;
  gmle_fit_options_init(&fo);
  fo.cov = cov == GMLE_COV_TIED && C > 1 ? GMLE_COV_FULL : cov;
  fo.rel_floor = o.rel_floor;
  fo.abs_floor = o.reg_covar;
  fo.allow_empty = 1;
  gmle_model *fm = NULL;
  if (s == GMLE_OK) {
    s = gmle_fit(es->st, &fo, &fm);
    if (s != GMLE_OK) {
      char why[GMLE__ERR_LEN];
      snprintf(why, sizeof why, "%s", gmle_context_error(ctx));
      gmle_error_location loc;
      gmle_context_error_location(ctx, &loc);
      if (loc.fields & GMLE_LOC_CLASS) {
        /* gmle_fit names component g as "class g": say class and
         * component, and which EM option would fix it. */
        const size_t g = loc.class_index;
        char head[48];
        const int hl = snprintf(head, sizeof head, "class %zu: ", g);
        const char *rest = strncmp(why, head, (size_t)hl) == 0 ? why + hl : why;
        loc.class_index = g / K;
        s = gmle__error_at(ctx, s, &loc, "EM: class %zu, component %zu: %s%s",
                           g / K, g % K, rest,
                           s == GMLE_E_SINGULAR_COV ||
                                   s == GMLE_E_ILL_DEFINED_COV
                               ? " [for EM: reg_covar > 0, --reg-covar, "
                                 "default 1e-6]"
                               : "");
      } else {
        s = gmle__error(ctx, s, "EM: %s", why);
      }
    }
  }
  double *w = NULL, *mu = NULL, *cv = NULL;
  const size_t clen = cov == GMLE_COV_TIED ? C * D * D
                                           : G * (cov == GMLE_COV_FULL   ? D * D
                                                  : cov == GMLE_COV_DIAG ? D
                                                                         : 1);
  if (s == GMLE_OK) {
    w = gmle__malloc(G * sizeof(double));
    mu = gmle__malloc(G * D * sizeof(double));
    cv = gmle__malloc(clen * sizeof(double));
    if (!w || !mu || !cv)
      s = gmle__error(ctx, GMLE_E_OUT_OF_MEMORY, "gmle_em_step: out of memory");
  }
  size_t reseeded = 0;
  if (s == GMLE_OK) {
    for (size_t g = 0; g < G; g++)
      /* One class: the fit's priors n_k / n (so that hard EM is "fit on the
       * predicted labels" bit for bit); several: n_ck / n_c. */
      w[g] = C == 1 ? fm->priors[g] : n[g] / nc[g / K];
    memcpy(mu, fm->means, G * D * sizeof(double));
    if (cov == GMLE_COV_TIED && C > 1)
      pool_tied(fm, C, K, D, n, cv);
    else
      memcpy(cv, fm->covars, clen * sizeof(double));
    /* Empty or collapsing components: re-seeded by splitting the heaviest
     * component of their class. */
    for (size_t g = 0; g < G; g++) {
      const size_t c = g / K, k = g % K;
      if (K > 1 && (n[g] < 1.0 || w[g] < o.min_weight)) {
        const size_t h = heaviest(w, K, c, k);
        if (h < K && n[c * K + h] >= 2.0) {
          /* k's weight goes to h first, so the class's weights still sum
           * to 1 after h is halved into h and k */
          w[c * K + h] += w[g];
          gmle__em_split(D, K, cov, w, mu, cv, c, h, k);
          reseeded++;
        }
      }
    }
    for (size_t c = 0; c < C; c++)
      pri[c] = o.priors ? o.priors[c] : nc[c] / total;
  }
  gmle_model *m = NULL;
  if (s == GMLE_OK) {
    s = gmle__mixture_build(ctx, D, C, K, cov, w, mu, cv, pri, nc, &m);
    w = NULL; /* owned (or freed) by the build */
  }
  if (s == GMLE_OK) {
    for (size_t c = 0; c < C; c++) {
      uint64_t r = 0;
      for (size_t k = 0; k < K; k++)
        r = es->mode == GMLE_EM_HARD
                ? r + es->st->rows[c * K + k]
                : (es->st->rows[c * K + k] > r ? es->st->rows[c * K + k] : r);
      m->rows[c] = r;
      m->reports[c].rows = r;
    }
    /* The report: the previous one's history and this iteration. */
    gmle_em_report rep;
    memset(&rep, 0, sizeof rep);
    gmle_em_report prev;
    const int has_prev =
        previous && gmle_model_em_report(previous, &prev) == GMLE_OK;
    gmle__clear_error(ctx);
    const size_t nh = has_prev ? prev.n_history : 0;
    double *h = gmle__malloc((nh + 1) * sizeof(double));
    if (!h) {
      s = gmle__error(ctx, GMLE_E_OUT_OF_MEMORY, "gmle_em_step: out of memory");
    } else {
      if (nh)
        memcpy(h, prev.history, nh * sizeof(double));
      const double lb =
          es->ll_weight > 0 ? (es->ll_sum + es->ll_comp) / es->ll_weight : NAN;
      h[nh] = lb;
      rep.n_iter = (has_prev ? prev.n_iter : 0) + 1;
      rep.lower_bound = lb;
      rep.n_history = nh + 1;
      rep.history = h;
      rep.n_reseeded = (has_prev ? prev.n_reseeded : 0) + reseeded;
      rep.n_init = has_prev ? prev.n_init : 1;
      rep.best_init = has_prev ? prev.best_init : 0;
      rep.mode = es->mode;
      rep.init = has_prev ? prev.init : GMLE_INIT_MODEL;
      rep.reg_covar = o.reg_covar;
      rep.n_rows = es->ll_weight;
      rep.converged = 0;
      s = gmle_model_set_em_report(m, &rep);
      gmle__free(h);
    }
  }
  gmle_model_free(fm);
  gmle__free(n);
  gmle__free(w);
  gmle__free(mu);
  gmle__free(cv);
  if (s != GMLE_OK) {
    gmle_model_free(m);
    return s;
  }
  *out = m;
  return GMLE_OK;
}
