/* stats.c -- per-class sufficient statistics: creation, validated atomic
 * accumulation of batches, exact pairwise merging. */
#include "internal.h"

#include <math.h>
#include <string.h>

/* Rows of a class used to choose its shift (the provisional mean). */
#define SHIFT_SAMPLE_ROWS 1024

static void free_names(char **names, size_t n) {
  if (!names)
    return;
  for (size_t c = 0; c < n; c++)
    gmle__free(names[c]);
  gmle__free(names);
}

/* A deep copy of n names (NULL stays NULL); NULL *out on failure. */
static gmle_status copy_names(const char *const *names, size_t n, char ***out) {
  *out = NULL;
  if (!names)
    return GMLE_OK;
  char **copy = gmle__calloc(n, sizeof(char *));
  if (!copy)
    return GMLE_E_OUT_OF_MEMORY;
  for (size_t c = 0; c < n; c++) {
    size_t len = strlen(names[c]) + 1;
    copy[c] = gmle__malloc(len);
    if (!copy[c]) {
      free_names(copy, n);
      return GMLE_E_OUT_OF_MEMORY;
    }
    memcpy(copy[c], names[c], len);
  }
  *out = copy;
  return GMLE_OK;
}

static void stats_release(gmle_stats *st) {
  free_names(st->names, st->n_classes);
  gmle__free(st->weight);
  gmle__free(st->rows);
  gmle__free(st->has_shift);
  gmle__free(st->shift);
  gmle__free(st->sum);
  gmle__free(st->gram);
}

void gmle_stats_free(gmle_stats *st) {
  if (!st)
    return;
  stats_release(st);
  gmle__free(st);
}

gmle_status gmle_stats_create_mode(gmle_context *ctx, size_t dim,
                                   size_t n_classes, gmle_stats_mode mode,
                                   gmle_stats **out) {
  if (!out)
    return gmle__error(ctx, GMLE_E_INVALID_ARG, "stats_create: out is NULL");
  *out = NULL;
  if (!ctx)
    return GMLE_E_INVALID_ARG;
  gmle__clear_error(ctx);
  GMLE_RETURN_IF(dim == 0, ctx, GMLE_E_INVALID_ARG,
                 "stats_create: 0 features (dim must be >= 1)");
  GMLE_RETURN_IF(n_classes == 0, ctx, GMLE_E_INVALID_ARG,
                 "stats_create: 0 classes (n_classes must be >= 1)");
  GMLE_RETURN_IF(n_classes > INT32_MAX, ctx, GMLE_E_INVALID_ARG,
                 "stats_create: %zu classes exceeds the int32 label range",
                 n_classes);
  GMLE_RETURN_IF(mode != GMLE_STATS_FULL && mode != GMLE_STATS_DIAG, ctx,
                 GMLE_E_INVALID_ARG, "stats_create: unknown mode %d",
                 (int)mode);
  size_t gram_len = dim, cd, total;
  if (mode == GMLE_STATS_FULL && gmle__mul_size(dim, dim, &gram_len) != 0)
    return gmle__error(ctx, GMLE_E_INVALID_ARG,
                       "stats_create: dim*dim overflows size_t (dim %zu)", dim);
  if (gmle__mul_size(n_classes, dim, &cd) ||
      gmle__mul3_size(n_classes, gram_len, sizeof(double), &total))
    return gmle__error(ctx, GMLE_E_INVALID_ARG,
                       "stats_create: %zu classes x %zu features overflows "
                       "size_t",
                       n_classes, dim);
  gmle_stats *st = gmle__calloc(1, sizeof *st);
  if (!st)
    return gmle__error(ctx, GMLE_E_OUT_OF_MEMORY,
                       "stats_create: out of memory");
  st->ctx = ctx;
  st->dim = dim;
  st->n_classes = n_classes;
  st->mode = mode;
  st->gram_len = gram_len;
  st->weight = gmle__calloc(n_classes, sizeof(double));
  st->rows = gmle__calloc(n_classes, sizeof(uint64_t));
  st->has_shift = gmle__calloc(n_classes, 1);
  st->shift = gmle__calloc(cd, sizeof(double));
  st->sum = gmle__calloc(cd, sizeof(double));
  st->gram = gmle__calloc(n_classes * gram_len, sizeof(double));
  if (!st->weight || !st->rows || !st->has_shift || !st->shift || !st->sum ||
      !st->gram) {
    gmle_stats_free(st);
    return gmle__error(ctx, GMLE_E_OUT_OF_MEMORY,
                       "stats_create: out of memory for %zu classes x %zu "
                       "features (%zu bytes of Gram matrices)",
                       n_classes, dim, total);
  }
  *out = st;
  return GMLE_OK;
}

gmle_status gmle_stats_create(gmle_context *ctx, size_t dim, size_t n_classes,
                              gmle_stats **out) {
  return gmle_stats_create_mode(ctx, dim, n_classes, GMLE_STATS_FULL, out);
}

/* ------------------------------------------------------------------------ */
/* Validation of a batch                                                    */
/* ------------------------------------------------------------------------ */

/* Labels in range; seen[c] = 1 for every class present (seen zeroed). */
static gmle_status scan_labels(const gmle_stats *st, const int32_t *labels,
                               size_t n, uint64_t batch, unsigned char *seen) {
  const uint32_t C = (uint32_t)st->n_classes;
  for (size_t r = 0; r < n; r++) {
    const uint32_t c = (uint32_t)labels[r];
    if (c >= C)
      return gmle__error_at(
          st->ctx, GMLE_E_BAD_LABEL,
          &(gmle_error_location){.batch = batch,
                                 .row = r,
                                 .fields = GMLE_LOC_BATCH | GMLE_LOC_ROW},
          "batch %llu row %zu: label %ld is outside the %zu "
          "declared classes [0, %zu)",
          (unsigned long long)batch, r, (long)labels[r], st->n_classes,
          st->n_classes);
    seen[c] = 1;
  }
  return GMLE_OK;
}

static gmle_status check_weights(const gmle_stats *st, const double *w,
                                 size_t n, uint64_t batch) {
  int any = 0;
  for (size_t r = 0; r < n; r++) {
    if (!isfinite(w[r]) || w[r] < 0)
      return gmle__error_at(
          st->ctx, GMLE_E_INVALID_WEIGHTS,
          &(gmle_error_location){.batch = batch,
                                 .row = r,
                                 .fields = GMLE_LOC_BATCH | GMLE_LOC_ROW},
          "batch %llu row %zu: weight %g is %s", (unsigned long long)batch, r,
          w[r], isfinite(w[r]) ? "negative" : "not finite");
    any |= w[r] > 0;
  }
  GMLE_RETURN_IF(!any, st->ctx, GMLE_E_INVALID_WEIGHTS,
                 "batch %llu: all %zu weights are zero",
                 (unsigned long long)batch, n);
  return GMLE_OK;
}

static double elem(const void *x, gmle_dtype t, size_t i) {
  return t == GMLE_F32 ? (double)((const float *)x)[i] : ((const double *)x)[i];
}

/* Mean squares of the shifted values within which float32 products can
 * neither underflow nor overflow (host/gram.c): rms in [2^-40, 2^40]. */
#define F32_MSQ_LO 0x1p-80
#define F32_MSQ_HI 0x1p80

/* The shift of a class first seen in this batch: the mean of its first
 * SHIFT_SAMPLE_ROWS rows (rows[0..m), m >= 1), rounded to the input
 * precision so that x - k is exact for nearby values. For float32 input it
 * is rounded further, to a multiple of 2^-8 of the sample's spread (any
 * shift near the mean serves): then k has no bits below the values' own
 * resolution, so fl32(x - k) (host/gram.c's float32 products) is exact or
 * rounds away only x's own low bits, and no fixed low bit of k biases
 * every row's rounding the same way. Returns 1 when those rows' spread
 * around it allows float32 products (every column's rms in range). */
static int choose_shift(const gmle__batch *b, const uint32_t *rows, size_t m,
                        double *k) {
  const size_t d = b->dim;
  int ok = 1;
  for (size_t j = 0; j < d; j++) {
    double acc = 0.0, msq = 0.0;
    for (size_t i = 0; i < m; i++)
      acc += elem(b->x, b->dtype, rows[i] * b->row_stride + j);
    k[j] = acc / (double)m;
    if (b->dtype == GMLE_F32) {
      for (size_t i = 0; i < m; i++) {
        const double v = elem(b->x, b->dtype, rows[i] * b->row_stride + j);
        msq += (v - k[j]) * (v - k[j]);
      }
      int e;
      (void)frexp(sqrt(msq / (double)m), &e);
      const double g = ldexp(1.0, e - 9); /* 2^-8 of the spread, or less */
      if (msq > 0.0 && isfinite(msq) && fabs(k[j]) < ldexp(g, 24))
        k[j] = nearbyint(k[j] / g) * g; /* < 2^24 multiples: a float */
      k[j] = (double)(float)k[j];
      msq = 0.0;
    }
    for (size_t i = 0; i < m; i++) {
      const double v = elem(b->x, b->dtype, rows[i] * b->row_stride + j) - k[j];
      msq += v * v;
    }
    msq /= (double)m;
    ok = ok && msq >= F32_MSQ_LO && msq <= F32_MSQ_HI;
  }
  return ok;
}

/* Shifts of the classes present (seen) that have none yet, into
 * shift + (slot_of ? slot_of[c] : c) * D, from samples gathered in one pass
 * over the rows. *f32_ok is cleared unless every sample allows float32
 * products. */
static gmle_status new_shifts(const gmle_stats *st, const gmle__batch *b,
                              const unsigned char *seen, const int32_t *slot_of,
                              double *shift, int *f32_ok) {
  const size_t C = st->n_classes, D = st->dim, S = SHIFT_SAMPLE_ROWS;
  size_t n_new = 0;
  for (size_t c = 0; c < C; c++)
    n_new += seen[c] && !st->has_shift[c];
  if (n_new == 0)
    return GMLE_OK;
  uint32_t *rank = gmle__malloc(C * sizeof *rank);
  uint32_t *cnt = gmle__calloc(n_new, sizeof *cnt);
  uint32_t *idx = gmle__malloc(n_new * S * sizeof *idx);
  if (!rank || !cnt || !idx) {
    gmle__free(rank);
    gmle__free(cnt);
    gmle__free(idx);
    return GMLE_E_OUT_OF_MEMORY;
  }
  uint32_t k = 0;
  for (size_t c = 0; c < C; c++)
    rank[c] = seen[c] && !st->has_shift[c] ? k++ : UINT32_MAX;
  for (size_t r = 0; r < b->n_rows; r++) {
    const uint32_t q = rank[b->labels ? (size_t)b->labels[r] : 0];
    if (q != UINT32_MAX && cnt[q] < S)
      idx[(size_t)q * S + cnt[q]++] = (uint32_t)r;
  }
  for (size_t c = 0; c < C; c++) {
    const uint32_t q = rank[c];
    if (q == UINT32_MAX)
      continue;
    double *dst = shift + (slot_of ? (size_t)slot_of[c] : c) * D;
    if (!choose_shift(b, idx + (size_t)q * S, cnt[q], dst))
      *f32_ok = 0;
  }
  gmle__free(rank);
  gmle__free(cnt);
  gmle__free(idx);
  return GMLE_OK;
}

static int all_finite(const double *v, size_t n) {
  double acc = 0;
  for (size_t i = 0; i < n; i++)
    acc += v[i] * 0.0;
  return acc == 0.0;
}

/* Whether class c's accumulated statistics allow float32 products around
 * its shift: the shift is a float32 value, every column's rms around it is
 * in range, and the mean is within 4 standard deviations of the shift (the
 * products' float32 round-off is then amplified at most 17-fold when the
 * covariance S/n - m m^T is formed; see BENCHMARKS.md). */
static int f32_class_ok(const gmle_stats *st, size_t c) {
  const size_t D = st->dim;
  const double n = st->weight[c];
  if (!(n > 0))
    return 0;
  for (size_t j = 0; j < D; j++) {
    const double k = st->shift[c * D + j];
    const double m = st->sum[c * D + j] / n;
    const double gjj = st->mode == GMLE_STATS_DIAG
                           ? st->gram[c * st->gram_len + j]
                           : st->gram[c * st->gram_len + j * D + j];
    const double msq = gjj / n, var = msq - m * m;
    if ((double)(float)k != k || !(msq >= F32_MSQ_LO && msq <= F32_MSQ_HI) ||
        !(m * m <= 16.0 * var))
      return 0;
  }
  return 1;
}

/* ------------------------------------------------------------------------ */
/* Accumulation                                                             */
/* ------------------------------------------------------------------------ */

/* Scratch for one batch: the classes present, compact labels, shifts and
 * the partial statistics of the present classes only. */
typedef struct batch_work {
  size_t n_present;
  int32_t *slot_of;  /* [C] slot or -1 */
  int32_t *class_of; /* [n_present] */
  int32_t *compact;  /* [n_rows] labels remapped to slots, or NULL */
  double *shift;     /* [n_present*D] */
  int f32_ok;        /* every present class allows float32 products */
  gmle__partial part;
} batch_work;

static void work_free(batch_work *w) {
  gmle__free(w->slot_of);
  gmle__free(w->class_of);
  gmle__free(w->compact);
  gmle__free(w->shift);
  gmle__free(w->part.weight);
  gmle__free(w->part.rows);
  gmle__free(w->part.sum);
  gmle__free(w->part.gram);
}

/* The present classes (seen[c] != 0) get slots in class order. */
static gmle_status work_init(const gmle_stats *st, const gmle__batch *b,
                             const unsigned char *seen, batch_work *w) {
  const size_t C = st->n_classes, D = st->dim;
  memset(w, 0, sizeof *w);
  w->slot_of = gmle__malloc(C * sizeof(int32_t));
  if (!w->slot_of)
    return GMLE_E_OUT_OF_MEMORY;
  size_t np = 0;
  for (size_t c = 0; c < C; c++)
    w->slot_of[c] = seen[c] ? (int32_t)np++ : -1;
  w->n_present = np;
  w->class_of = gmle__malloc(np * sizeof(int32_t));
  w->shift = gmle__malloc(np * D * sizeof(double));
  w->part.weight = gmle__calloc(np, sizeof(double));
  w->part.rows = gmle__calloc(np, sizeof(uint64_t));
  w->part.sum = gmle__calloc(np * D, sizeof(double));
  w->part.gram = gmle__calloc(np * st->gram_len, sizeof(double));
  const int remap = b->labels && np > 1 && np < C;
  if (remap)
    w->compact = gmle__malloc(b->n_rows * sizeof(int32_t));
  if (!w->class_of || !w->shift || !w->part.weight || !w->part.rows ||
      !w->part.sum || !w->part.gram || (remap && !w->compact))
    return GMLE_E_OUT_OF_MEMORY;
  for (size_t c = 0; c < C; c++)
    if (w->slot_of[c] >= 0)
      w->class_of[w->slot_of[c]] = (int32_t)c;
  if (remap)
    for (size_t r = 0; r < b->n_rows; r++)
      w->compact[r] = w->slot_of[b->labels[r]];
  w->f32_ok = 1;
  for (size_t s = 0; s < np; s++) {
    int32_t c = w->class_of[s];
    if (st->has_shift[c]) {
      memcpy(w->shift + s * D, st->shift + (size_t)c * D, D * sizeof(double));
      w->f32_ok = w->f32_ok && f32_class_ok(st, (size_t)c);
    }
  }
  GMLE_TRY(new_shifts(st, b, seen, w->slot_of, w->shift, &w->f32_ok));
  w->part.dim = D;
  w->part.n_classes = np;
  w->part.gram_len = st->gram_len;
  w->part.mode = st->mode;
  w->part.shift = w->shift;
  return GMLE_OK;
}

/* Lower-triangle view of a Gram block (the strict upper part is ignored). */
static void add_lower(double *dst, const double *src, size_t d,
                      gmle_stats_mode mode) {
  if (mode == GMLE_STATS_DIAG) {
    for (size_t i = 0; i < d; i++)
      dst[i] += src[i];
    return;
  }
  for (size_t i = 0; i < d; i++)
    for (size_t j = 0; j <= i; j++)
      dst[i * d + j] += src[i * d + j];
}

static int lower_finite_sum(const double *a, const double *b, size_t d,
                            gmle_stats_mode mode) {
  double acc = 0;
  if (mode == GMLE_STATS_DIAG) {
    for (size_t i = 0; i < d; i++)
      acc += (a[i] + b[i]) * 0.0;
  } else {
    for (size_t i = 0; i < d; i++)
      for (size_t j = 0; j <= i; j++)
        acc += (a[i * d + j] + b[i * d + j]) * 0.0;
  }
  return acc == 0.0;
}

size_t gmle__present_first_nonfinite(const gmle_stats *st,
                                     const gmle__present *pp) {
  const size_t D = st->dim, G = st->gram_len;
  for (size_t p = 0; p < pp->n_present; p++) {
    const size_t c = (size_t)pp->class_of[p];
    const double *ps = pp->sum + p * D, *pg = pp->gram + p * G;
    int ok = isfinite(pp->weight[p]) && all_finite(ps, D) &&
             lower_finite_sum(pg, st->gram + c * G, D, st->mode) &&
             isfinite(pp->weight[p] + st->weight[c]);
    for (size_t j = 0; ok && j < D; j++)
      ok = isfinite(ps[j] + st->sum[c * D + j]);
    if (!ok)
      return p;
  }
  return pp->n_present;
}

void gmle__present_commit(gmle_stats *st, const gmle__present *pp) {
  const size_t D = st->dim, G = st->gram_len;
  for (size_t p = 0; p < pp->n_present; p++) {
    const size_t c = (size_t)pp->class_of[p];
    if (!st->has_shift[c]) {
      memcpy(st->shift + c * D, pp->shift + p * D, D * sizeof(double));
      st->has_shift[c] = 1;
    }
    st->weight[c] += pp->weight[p];
    st->rows[c] += pp->rows[p];
    for (size_t j = 0; j < D; j++)
      st->sum[c * D + j] += pp->sum[p * D + j];
    add_lower(st->gram + c * G, pp->gram + p * G, D, st->mode);
  }
}

/* The batch's partial as slots of the classes present. */
static gmle__present work_present(const batch_work *w) {
  gmle__present pp = {w->n_present, w->class_of,  w->shift,    w->part.weight,
                      w->part.sum,  w->part.gram, w->part.rows};
  return pp;
}

static void partial_zero(const gmle_stats *st, batch_work *w) {
  const size_t np = w->n_present;
  memset(w->part.weight, 0, np * sizeof(double));
  memset(w->part.rows, 0, np * sizeof(uint64_t));
  memset(w->part.sum, 0, np * st->dim * sizeof(double));
  memset(w->part.gram, 0, np * st->gram_len * sizeof(double));
}

/* Whether the backend declares capability `cap` (GMLE__CAP_*). */
static int has_cap(const gmle_context *ctx, unsigned cap) {
  return (ctx->ops->caps & cap) != 0;
}

/* The backend reads the rows unvalidated (fused): NaN and Inf make the
 * batch's sums non-finite, and only then is the batch scanned for them. */
static int fused_check(const gmle_context *ctx) {
  return has_cap(ctx, GMLE__CAP_FUSED_NONFINITE);
}

/* Many classes, float32 rows, GMLE__CAP_DIRECT_ACCUM: the rows are scanned for
 * NaN and Inf first and then added straight into the accumulator (float64
 * products; float32 values cannot overflow its sums), without a partial
 * to zero and add for every class present. Shifts of new classes in
 * `shift` ([C*D], the others copied). */
static gmle_status add_direct(gmle_stats *st, const gmle__batch *b,
                              const unsigned char *seen, uint64_t batch) {
  gmle_context *ctx = st->ctx;
  const size_t C = st->n_classes, D = st->dim;
  GMLE_TRY(gmle__check_finite(ctx, b->x, b->dtype, b->n_rows, b->row_stride, D,
                              batch, "stats_add"));
  double *shift = gmle__malloc(C * D * sizeof(double));
  if (!shift)
    return gmle__error(ctx, GMLE_E_OUT_OF_MEMORY,
                       "batch %llu: out of memory for %zu rows",
                       (unsigned long long)batch, b->n_rows);
  memcpy(shift, st->shift, C * D * sizeof(double));
  int unused = 1;
  gmle_status s = new_shifts(st, b, seen, NULL, shift, &unused);
  if (s != GMLE_OK) {
    gmle__free(shift);
    return gmle__error(ctx, s, "batch %llu: out of memory for %zu rows",
                       (unsigned long long)batch, b->n_rows);
  }
  gmle__partial part = {.dim = D,
                        .n_classes = C,
                        .gram_len = st->gram_len,
                        .mode = st->mode,
                        .shift = shift,
                        .weight = st->weight,
                        .rows = st->rows,
                        .sum = st->sum,
                        .gram = st->gram};
  /* the kernel writes nothing unless all its workspace was allocated */
  s = ctx->ops->accumulate(ctx, b, &part);
  if (s == GMLE_OK)
    for (size_t c = 0; c < C; c++)
      if (seen[c] && !st->has_shift[c]) {
        memcpy(st->shift + c * D, shift + c * D, D * sizeof(double));
        st->has_shift[c] = 1;
      }
  gmle__free(shift);
  return s;
}

/* A batch whose sums (or the accumulator's after adding them) overflow. */
static gmle_status overflow_error(const gmle_context *ctx, uint64_t batch,
                                  size_t c) {
  return gmle__error(ctx, GMLE_E_OVERFLOW,
                     "batch %llu: class %zu: the sums of squares overflow "
                     "float64 (values too large; rescale the data)",
                     (unsigned long long)batch, c);
}

gmle_status gmle__stats_commit(gmle_stats *st, const gmle__present *pp,
                               uint64_t batch) {
  const size_t bad = gmle__present_first_nonfinite(st, pp);
  if (bad < pp->n_present)
    return overflow_error(st->ctx, batch, (size_t)pp->class_of[bad]);
  gmle__present_commit(st, pp);
  return GMLE_OK;
}

static gmle_status add_batch(gmle_stats *st, const gmle__batch *in,
                             const unsigned char *seen, uint64_t batch) {
  gmle_context *ctx = st->ctx;
  const size_t D = st->dim;
  batch_work w;
  gmle__batch b = *in;
  gmle_status s = work_init(st, &b, seen, &w);
  if (s != GMLE_OK) {
    work_free(&w);
    return gmle__error(ctx, s, "batch %llu: out of memory for %zu rows",
                       (unsigned long long)batch, b.n_rows);
  }
  if (w.n_present == 1)
    b.labels = NULL;
  else if (w.compact)
    b.labels = w.compact;
  /* Float32 products where the contract allows them (f32_class_ok); a
   * batch whose float32 sums are not finite is redone in float64. */
  w.part.f32_products = has_cap(ctx, GMLE__CAP_F32_PRODUCTS) &&
                        b.dtype == GMLE_F32 && !b.weights &&
                        st->mode == GMLE_STATS_FULL && w.f32_ok;
  s = ctx->ops->accumulate(ctx, &b, &w.part);
  gmle__present pp = work_present(&w);
  size_t bad =
      s == GMLE_OK ? gmle__present_first_nonfinite(st, &pp) : w.n_present;
  if (s == GMLE_OK && bad < w.n_present && w.part.f32_products) {
    partial_zero(st, &w);
    w.part.f32_products = 0;
    s = ctx->ops->accumulate(ctx, &b, &w.part);
    bad = s == GMLE_OK ? gmle__present_first_nonfinite(st, &pp) : w.n_present;
  }
  if (s != GMLE_OK) {
    work_free(&w);
    return s;
  }
  if (bad < w.n_present) {
    const size_t c = (size_t)w.class_of[bad];
    work_free(&w);
    if (fused_check(ctx))
      GMLE_TRY(gmle__check_finite(ctx, b.x, b.dtype, b.n_rows, b.row_stride, D,
                                  batch, "stats_add"));
    return overflow_error(ctx, batch, c);
  }
  gmle__present_commit(st, &pp);
  work_free(&w);
  return GMLE_OK;
}

/* Whether adding float32 rows straight into the accumulators can overflow
 * them (add_direct cannot undo an overflow, so it runs only when it is
 * impossible): every shifted value |x - k| <= FLT_MAX + |k| <= 2^129 when
 * the classes' shifts are below 2^128, so a row adds at most w 2^258 to a
 * sum of squares; with n rows of weight <= wmax that is <= 2^1000 when
 * n wmax <= 2^742, and accumulators below 2^1000 (the Gram entries are
 * bounded by the diagonal, |G_ij| <= sqrt(G_ii G_jj)) stay finite. */
static int direct_cannot_overflow(const gmle_stats *st, const gmle__batch *b,
                                  const unsigned char *seen) {
  const size_t D = st->dim;
  double wmax = 1.0;
  if (b->weights) {
    wmax = 0.0;
    for (size_t r = 0; r < b->n_rows; r++)
      wmax = b->weights[r] > wmax ? b->weights[r] : wmax;
  }
  if (!(wmax * (double)b->n_rows <= 0x1p742))
    return 0;
  for (size_t c = 0; c < st->n_classes; c++) {
    if (!seen[c] || !st->has_shift[c])
      continue;
    if (!(fabs(st->weight[c]) <= 0x1p1000))
      return 0;
    const double *g = st->gram + c * st->gram_len;
    for (size_t j = 0; j < D; j++) {
      const double gjj = st->mode == GMLE_STATS_DIAG ? g[j] : g[j * D + j];
      if (!(fabs(st->shift[c * D + j]) <= 0x1p128) ||
          !(fabs(st->sum[c * D + j]) <= 0x1p1000) || !(gjj <= 0x1p1000))
        return 0;
    }
  }
  return 1;
}

/* Bytes of the partial statistics of the classes present, against the
 * batch's rows: direct accumulation (add_direct) pays off when zeroing and
 * adding the partial would cost more than one more read of the rows. */
static int want_direct(const gmle_stats *st, const gmle__batch *b,
                       const unsigned char *seen) {
  if (!has_cap(st->ctx, GMLE__CAP_DIRECT_ACCUM) || b->dtype != GMLE_F32 ||
      !b->labels)
    return 0;
  size_t np = 0;
  for (size_t c = 0; c < st->n_classes; c++)
    np += seen[c] != 0;
  const double part = (double)np * (double)(st->gram_len + st->dim + 2) * 8.0;
  const double rows = (double)b->n_rows * (double)st->dim * 4.0;
  return 2.0 * part > rows && direct_cannot_overflow(st, b, seen);
}

gmle_status gmle__stats_check_batch(const gmle_stats *st, const char *who,
                                    const void *x, gmle_dtype dtype,
                                    size_t n_rows, size_t row_stride,
                                    const int32_t *labels) {
  const gmle_context *ctx = st->ctx;
  GMLE_RETURN_IF(dtype != GMLE_F32 && dtype != GMLE_F64, ctx,
                 GMLE_E_INVALID_ARG, "%s: unknown dtype %d", who, (int)dtype);
  if (n_rows == 0)
    return GMLE_OK;
  const size_t isz = gmle__dtype_size(dtype);
  size_t bytes;
  GMLE_RETURN_IF(gmle__mul3_size(n_rows, row_stride, isz, &bytes), ctx,
                 GMLE_E_INVALID_ARG,
                 "%s: N*D*%zu overflows size_t (N = %zu rows, row "
                 "stride %zu)",
                 who, isz, n_rows, row_stride);
  GMLE_RETURN_IF(!x, ctx, GMLE_E_INVALID_ARG, "%s: x is NULL", who);
  GMLE_RETURN_IF(row_stride < st->dim, ctx, GMLE_E_INVALID_ARG,
                 "%s: row stride %zu is smaller than the %zu features", who,
                 row_stride, st->dim);
  GMLE_RETURN_IF(!labels && st->n_classes > 1, ctx, GMLE_E_INVALID_ARG,
                 "%s: labels are required with %zu classes", who,
                 st->n_classes);
  return GMLE_OK;
}

void gmle__stats_batch_done(gmle_stats *st, gmle_dtype dtype) {
  st->n_batches++;
  if (dtype == GMLE_F32)
    st->saw_f32 = 1;
}

gmle_status gmle_stats_add_checked(gmle_stats *st, const void *x,
                                   gmle_dtype dtype, size_t n_rows,
                                   size_t n_cols, size_t row_stride,
                                   const int32_t *labels,
                                   const double *weights) {
  if (!st)
    return GMLE_E_INVALID_ARG;
  gmle_context *ctx = st->ctx;
  gmle__clear_error(ctx);
  const uint64_t batch = st->n_batches;
  GMLE_RETURN_IF(n_cols != st->dim, ctx, GMLE_E_DIM_MISMATCH,
                 "Number of features %zu does not match previous data %zu",
                 n_cols, st->dim);
  GMLE_TRY(gmle__stats_check_batch(st, "stats_add", x, dtype, n_rows,
                                   row_stride, labels));
  if (n_rows == 0)
    return GMLE_OK;
  /* Errors are reported in this order: NaN/Inf, labels, weights. A
   * GMLE__CAP_FUSED_NONFINITE backend finds NaN and Inf while accumulating
   * (fused_check); the rows are scanned here only for the other backends or
   * when a label or a weight is bad. */
  const int fused = fused_check(ctx);
  if (!fused)
    GMLE_TRY(gmle__check_finite(ctx, x, dtype, n_rows, row_stride, st->dim,
                                batch, "stats_add"));
  unsigned char *seen = gmle__calloc(st->n_classes, 1);
  GMLE_RETURN_IF(!seen, ctx, GMLE_E_OUT_OF_MEMORY,
                 "batch %llu: out of memory for %zu rows",
                 (unsigned long long)batch, n_rows);
  gmle_status s = GMLE_OK;
  if (labels)
    s = scan_labels(st, labels, n_rows, batch, seen);
  else
    seen[0] = 1;
  if (s == GMLE_OK && weights)
    s = check_weights(st, weights, n_rows, batch);
  if (s != GMLE_OK && fused &&
      gmle__check_finite(ctx, x, dtype, n_rows, row_stride, st->dim, batch,
                         "stats_add") != GMLE_OK)
    s = GMLE_E_NONFINITE_INPUT; /* a NaN takes precedence (its message) */
  if (s == GMLE_OK) {
    gmle__batch b = {x, dtype, n_rows, row_stride, st->dim, labels, weights};
    s = want_direct(st, &b, seen) ? add_direct(st, &b, seen, batch)
                                  : add_batch(st, &b, seen, batch);
  }
  gmle__free(seen);
  if (s != GMLE_OK)
    return s;
  gmle__stats_batch_done(st, dtype);
  return GMLE_OK;
}

gmle_status gmle_stats_add(gmle_stats *st, const void *x, gmle_dtype dtype,
                           size_t n_rows, size_t row_stride,
                           const int32_t *labels, const double *weights) {
  if (!st)
    return GMLE_E_INVALID_ARG;
  return gmle_stats_add_checked(st, x, dtype, n_rows, st->dim, row_stride,
                                labels, weights);
}

/* ------------------------------------------------------------------------ */
/* Merging                                                                  */
/* ------------------------------------------------------------------------ */

/* Class c of src folded into class c of (sum, gram, weight) around dst's
 * shift k_a, by the pairwise (Chan) update on centred scatter matrices:
 *   M = M_a + M_b + n_a n_b / n (m_b - m_a)(m_b - m_a)^T,
 * then re-expressed around k_a: s = n (m - k_a), S = M + s s^T / n. */
static void merge_class(const gmle_stats *dst, const gmle_stats *src, size_t c,
                        double *sum, double *gram, double *tmp) {
  const size_t D = dst->dim;
  const int diag = dst->mode == GMLE_STATS_DIAG;
  const double na = dst->weight[c], nb = src->weight[c], n = na + nb;
  const double *ka = dst->shift + c * D, *kb = src->shift + c * D;
  const double *sa = sum, *sb = src->sum + c * D;
  double *ga = gram;
  const double *gb = src->gram + c * dst->gram_len;
  double *ma = tmp, *mb = tmp + D, *snew = tmp + 2 * D;
  for (size_t j = 0; j < D; j++) {
    ma[j] = sa[j] / na;                   /* mean_a - k_a */
    mb[j] = (kb[j] - ka[j]) + sb[j] / nb; /* mean_b - k_a */
    snew[j] = (na * ma[j] + nb * mb[j]);  /* n (mean - k_a) */
  }
  const double f = na * nb / n;
  for (size_t i = 0; i < D; i++) {
    const size_t jmax = diag ? 0 : i;
    for (size_t jj = 0; jj <= jmax; jj++) {
      const size_t j = diag ? i : jj;
      const size_t ix = diag ? i : i * D + j;
      const double bi = sb[i] / nb, bj = sb[j] / nb;
      const double Ma = ga[ix] - sa[i] * ma[j];
      const double Mb = gb[ix] - nb * bi * bj;
      const double di = mb[i] - ma[i], dj = mb[j] - ma[j];
      ga[ix] = Ma + Mb + f * di * dj + snew[i] * snew[j] / n;
    }
  }
  memcpy(sum, snew, D * sizeof(double));
}

gmle_status gmle_stats_merge(gmle_stats *dst, const gmle_stats *src) {
  if (!dst || !src)
    return dst ? gmle__error(dst->ctx, GMLE_E_INVALID_ARG,
                             "stats_merge: src is NULL")
               : GMLE_E_INVALID_ARG;
  gmle_context *ctx = dst->ctx;
  gmle__clear_error(ctx);
  GMLE_RETURN_IF(dst == src, ctx, GMLE_E_INVALID_ARG,
                 "stats_merge: cannot merge statistics into themselves");
  GMLE_RETURN_IF(src->dim != dst->dim, ctx, GMLE_E_DIM_MISMATCH,
                 "stats_merge: Number of features %zu does not match previous "
                 "data %zu",
                 src->dim, dst->dim);
  GMLE_RETURN_IF(src->n_classes != dst->n_classes, ctx, GMLE_E_DIM_MISMATCH,
                 "stats_merge: %zu classes do not match %zu", src->n_classes,
                 dst->n_classes);
  GMLE_RETURN_IF(src->mode != dst->mode, ctx, GMLE_E_DIM_MISMATCH,
                 "stats_merge: full and diagonal-only statistics cannot be "
                 "merged");
  char **adopt = NULL;
  if (src->names && dst->names) {
    for (size_t c = 0; c < dst->n_classes; c++)
      GMLE_RETURN_IF(strcmp(src->names[c], dst->names[c]) != 0, ctx,
                     GMLE_E_DIM_MISMATCH,
                     "stats_merge: class %zu is \"%s\" in one and \"%s\" in "
                     "the other",
                     c, dst->names[c], src->names[c]);
  } else if (src->names && copy_names((const char *const *)src->names,
                                      src->n_classes, &adopt) != GMLE_OK) {
    return gmle__error(ctx, GMLE_E_OUT_OF_MEMORY, "stats_merge: out of memory");
  }
  const size_t D = dst->dim, C = dst->n_classes, G = dst->gram_len;
  /* Work on copies of the touched classes, commit only if all is finite. */
  double *sum = gmle__malloc((D + G + 3 * D) * sizeof(double));
  if (!sum) {
    free_names(adopt, C);
    return gmle__error(ctx, GMLE_E_OUT_OF_MEMORY, "stats_merge: out of memory");
  }
  double *gram = sum + D, *tmp = gram + G;
  /* Pass 1: check every class merges to finite values. */
  for (int commit = 0; commit < 2; commit++) {
    for (size_t c = 0; c < C; c++) {
      if (src->rows[c] == 0 && src->weight[c] == 0)
        continue;
      if (src->weight[c] == 0 || dst->weight[c] == 0) {
        if (!commit || dst->weight[c] != 0 || src->weight[c] == 0)
          continue;
        /* dst has no weight here: take src's statistics and shift. */
        memcpy(dst->shift + c * D, src->shift + c * D, D * sizeof(double));
        memcpy(dst->sum + c * D, src->sum + c * D, D * sizeof(double));
        memcpy(dst->gram + c * G, src->gram + c * G, G * sizeof(double));
        dst->has_shift[c] = src->has_shift[c];
        dst->weight[c] = src->weight[c];
        continue;
      }
      memcpy(sum, dst->sum + c * D, D * sizeof(double));
      memcpy(gram, dst->gram + c * G, G * sizeof(double));
      merge_class(dst, src, c, sum, gram, tmp);
      if (!commit) {
        if (!all_finite(sum, D) || !all_finite(gram, G)) {
          gmle__free(sum);
          free_names(adopt, C);
          return gmle__error(ctx, GMLE_E_OVERFLOW,
                             "stats_merge: class %zu: merged sums overflow "
                             "float64",
                             c);
        }
        continue;
      }
      memcpy(dst->sum + c * D, sum, D * sizeof(double));
      memcpy(dst->gram + c * G, gram, G * sizeof(double));
      dst->weight[c] += src->weight[c];
    }
  }
  for (size_t c = 0; c < C; c++) {
    dst->rows[c] += src->rows[c];
    if (!dst->has_shift[c] && src->has_shift[c]) {
      memcpy(dst->shift + c * D, src->shift + c * D, D * sizeof(double));
      dst->has_shift[c] = 1;
    }
  }
  dst->n_batches += src->n_batches;
  dst->saw_f32 |= src->saw_f32;
  if (adopt)
    dst->names = adopt;
  gmle__free(sum);
  return GMLE_OK;
}

gmle_status gmle_stats_clone(const gmle_stats *st, gmle_stats **out) {
  if (!st || !out)
    return GMLE_E_INVALID_ARG;
  gmle_stats *c = NULL;
  GMLE_TRY(
      gmle_stats_create_mode(st->ctx, st->dim, st->n_classes, st->mode, &c));
  const size_t C = st->n_classes, D = st->dim;
  memcpy(c->weight, st->weight, C * sizeof(double));
  memcpy(c->rows, st->rows, C * sizeof(uint64_t));
  memcpy(c->has_shift, st->has_shift, C);
  memcpy(c->shift, st->shift, C * D * sizeof(double));
  memcpy(c->sum, st->sum, C * D * sizeof(double));
  memcpy(c->gram, st->gram, C * st->gram_len * sizeof(double));
  c->n_batches = st->n_batches;
  c->saw_f32 = st->saw_f32;
  if (copy_names((const char *const *)st->names, st->n_classes, &c->names) !=
      GMLE_OK) {
    gmle_stats_free(c);
    return gmle__error(st->ctx, GMLE_E_OUT_OF_MEMORY,
                       "stats_clone: out of memory");
  }
  *out = c;
  return GMLE_OK;
}

/* ------------------------------------------------------------------------ */
/* Getters                                                                  */
/* ------------------------------------------------------------------------ */

size_t gmle_stats_dim(const gmle_stats *st) { return st ? st->dim : 0; }
size_t gmle_stats_n_classes(const gmle_stats *st) {
  return st ? st->n_classes : 0;
}
gmle_stats_mode gmle_stats_get_mode(const gmle_stats *st) {
  return st ? st->mode : GMLE_STATS_FULL;
}

static gmle_status check_class(const gmle_stats *st, size_t c, const void *out,
                               const char *fn) {
  if (!st)
    return GMLE_E_INVALID_ARG;
  gmle__clear_error(st->ctx);
  GMLE_RETURN_IF(!out, st->ctx, GMLE_E_INVALID_ARG, "%s: out is NULL", fn);
  GMLE_RETURN_IF(c >= st->n_classes, st->ctx, GMLE_E_INVALID_ARG,
                 "%s: class %zu is outside [0, %zu)", fn, c, st->n_classes);
  return GMLE_OK;
}

gmle_status gmle_stats_rows(const gmle_stats *st, size_t c, uint64_t *out) {
  GMLE_TRY(check_class(st, c, out, "stats_rows"));
  *out = st->rows[c];
  return GMLE_OK;
}

gmle_status gmle_stats_weight(const gmle_stats *st, size_t c, double *out) {
  GMLE_TRY(check_class(st, c, out, "stats_weight"));
  *out = st->weight[c];
  return GMLE_OK;
}

gmle_status gmle_stats_mean(const gmle_stats *st, size_t c, double *out) {
  GMLE_TRY(check_class(st, c, out, "stats_mean"));
  GMLE_RETURN_IF(st->weight[c] <= 0, st->ctx, GMLE_E_EMPTY,
                 "stats_mean: class %zu has no data", c);
  const size_t D = st->dim;
  for (size_t j = 0; j < D; j++)
    out[j] = st->shift[c * D + j] + st->sum[c * D + j] / st->weight[c];
  return GMLE_OK;
}

gmle_status gmle_stats_set_class_names(gmle_stats *st,
                                       const char *const *names) {
  if (!st)
    return GMLE_E_INVALID_ARG;
  gmle__clear_error(st->ctx);
  if (names)
    for (size_t c = 0; c < st->n_classes; c++)
      GMLE_RETURN_IF(!names[c], st->ctx, GMLE_E_INVALID_ARG,
                     "stats_set_class_names: name of class %zu is NULL", c);
  char **copy = NULL;
  GMLE_RETURN_IF(copy_names(names, st->n_classes, &copy) != GMLE_OK, st->ctx,
                 GMLE_E_OUT_OF_MEMORY, "stats_set_class_names: out of memory");
  free_names(st->names, st->n_classes);
  st->names = copy;
  return GMLE_OK;
}

const char *gmle_stats_class_name(const gmle_stats *st, size_t c) {
  return st && st->names && c < st->n_classes ? st->names[c] : NULL;
}
