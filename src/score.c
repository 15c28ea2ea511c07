/* score.c -- bulk scoring: argument validation, batching, finiteness checks,
 * and the total log-likelihood of a data set. The arithmetic is the
 * backend's (ctx->ops->score). */
#include "internal.h"

#include <math.h>
#include <string.h>

static int valid_output(gmle_output w) {
  return w == GMLE_OUT_LOGLIK || w == GMLE_OUT_JOINT || w == GMLE_OUT_LOGPOST ||
         w == GMLE_OUT_LABEL || w == GMLE_OUT_DENSITY || w == GMLE_OUT_RESP;
}

/* Checks shared by gmle_score and gmle_total_loglik (ctx non-NULL). */
static gmle_status check_input(gmle_context *ctx, const gmle_model *m,
                               const void *x, gmle_dtype dtype, size_t n_rows,
                               size_t row_stride, const char *fn) {
  GMLE_RETURN_IF(!m, ctx, GMLE_E_INVALID_ARG, "%s: model is NULL", fn);
  GMLE_RETURN_IF(m->ctx != ctx, ctx, GMLE_E_INVALID_ARG,
                 "%s: the model was made on another context; score it with "
                 "the context it was created, fitted or loaded on",
                 fn);
  GMLE_RETURN_IF(!ctx->ops || !ctx->ops->score, ctx, GMLE_E_UNSUPPORTED,
                 "%s: the %s backend cannot score", fn,
                 gmle_backend_name(ctx->backend));
  GMLE_RETURN_IF(!m->score_cache && m->n_classes > 0 && !m->mix, ctx,
                 GMLE_E_INVALID_ARG,
                 "%s: the model has not been prepared for scoring", fn);
  GMLE_RETURN_IF(
      dtype != GMLE_F32 && dtype != GMLE_F64, ctx, GMLE_E_INVALID_ARG,
      "%s: dtype %d is neither GMLE_F32 nor GMLE_F64", fn, (int)dtype);
  GMLE_RETURN_IF(row_stride < m->dim, ctx, GMLE_E_INVALID_ARG,
                 "%s: row_stride %zu is smaller than the model's %zu "
                 "features",
                 fn, row_stride, m->dim);
  size_t bytes;
  GMLE_RETURN_IF(
      gmle__mul3_size(n_rows, row_stride, gmle__dtype_size(dtype), &bytes), ctx,
      GMLE_E_TOO_LARGE,
      "%s: N*stride*%zu (%zu * %zu * %zu) overflows "
      "size_t",
      fn, gmle__dtype_size(dtype), n_rows, row_stride, gmle__dtype_size(dtype));
  GMLE_RETURN_IF(n_rows > 0 && !x, ctx, GMLE_E_INVALID_ARG, "%s: x is NULL",
                 fn);
  return GMLE_OK;
}

/* 1 when the n rows of x are all finite. The test is on the exponent bits
 * (all ones: NaN or Inf) with an OR of integer flags, which the compiler
 * vectorises; a floating-point reduction would be a serial chain of adds
 * (it took as long as scoring a diagonal model). */
static int all_finite(const void *x, gmle_dtype dtype, size_t n, size_t stride,
                      size_t dim) {
  size_t rows = n, len = dim;
  if (stride == dim) { /* contiguous: one long run */
    rows = 1;
    len = n * dim;
  }
  if (dtype == GMLE_F32) {
    const unsigned char *p = x;
    for (size_t r = 0; r < rows; r++, p += stride * 4) {
      uint32_t bad = 0;
      for (size_t j = 0; j < len; j++) {
        uint32_t u;
        memcpy(&u, p + 4 * j, 4);
        bad |= (uint32_t)((u & 0x7f800000u) == 0x7f800000u);
      }
      if (bad)
        return 0;
    }
  } else {
    const unsigned char *p = x;
    for (size_t r = 0; r < rows; r++, p += stride * 8) {
      uint64_t bad = 0;
      for (size_t j = 0; j < len; j++) {
        uint64_t u;
        memcpy(&u, p + 8 * j, 8);
        bad |= (uint64_t)((u & 0x7ff0000000000000u) == 0x7ff0000000000000u);
      }
      if (bad)
        return 0;
    }
  }
  return 1;
}

/* Check batch `bi` (rows [r0, r0 + n) of x) and name the cell by its row in
 * the caller's array. */
static gmle_status check_batch(gmle_context *ctx, const void *xb,
                               gmle_dtype dtype, size_t n, size_t stride,
                               size_t dim, uint64_t bi, size_t r0,
                               const char *what) {
  if (all_finite(xb, dtype, n, stride, dim))
    return GMLE_OK;
  size_t r, j;
  double v;
  gmle__find_nonfinite(xb, dtype, n, stride, dim, &r, &j, &v);
  const gmle_error_location loc = {.batch = bi,
                                   .row = r0 + r,
                                   .column = j,
                                   .fields = GMLE_LOC_BATCH | GMLE_LOC_ROW |
                                             GMLE_LOC_COLUMN};
  return gmle__error_at(
      ctx, GMLE_E_NONFINITE_INPUT, &loc, "%s: batch %llu row %zu col %zu: %s",
      what, (unsigned long long)bi, r0 + r, j, gmle__nonfinite_name(v));
}

/* One batch on backend `ops` (with its state on ctx), with that backend's
 * scoring data for m, built at the model's first score. */
static gmle_status score_on(gmle_context *ctx, const gmle__backend_ops *ops,
                            void *state, const gmle_model *m,
                            const gmle__batch *b, gmle_output what,
                            gmle_dtype out_dtype, void *out) {
  void *data;
  int transient;
  GMLE_TRY(gmle__model_backend_data(ctx, ops, state, m, &data, &transient));
  const gmle_status s = ops->score(ctx, m, data, b, what, out_dtype, out);
  if (transient && ops->free_model)
    ops->free_model(state, data);
  return s;
}

/* One batch on the context's backend. A backend that cannot score on its
 * device (an OpenCL device without float64) answers GMLE_E_UNSUPPORTED, and
 * the batch is then scored by the host fallback backend (the registry's),
 * with its own state and model data. */
static gmle_status backend_score(gmle_context *ctx, const gmle_model *m,
                                 const gmle__batch *b, gmle_output what,
                                 gmle_dtype out_dtype, void *out) {
  gmle_status s =
      score_on(ctx, ctx->ops, ctx->bstate, m, b, what, out_dtype, out);
  const gmle__backend_ops *host = gmle__backend_host_fallback();
  if (s != GMLE_E_UNSUPPORTED || host == ctx->ops)
    return s;
  gmle__clear_error(ctx);
  void *state;
  GMLE_TRY(gmle__backend_fallback_state(ctx, &state));
  return score_on(ctx, host, state, m, b, what, out_dtype, out);
}

gmle_status gmle_score(gmle_context *ctx, const gmle_model *m, const void *x,
                       gmle_dtype dtype, size_t n_rows, size_t row_stride,
                       gmle_output what, gmle_dtype out_dtype, void *out) {
  if (!ctx)
    return GMLE_E_INVALID_ARG;
  gmle__clear_error(ctx);
  GMLE_TRY(check_input(ctx, m, x, dtype, n_rows, row_stride, "score"));
  GMLE_RETURN_IF(!valid_output(what), ctx, GMLE_E_INVALID_ARG,
                 "score: unknown output kind %d", (int)what);
  GMLE_RETURN_IF(
      what != GMLE_OUT_LABEL && out_dtype != GMLE_F32 && out_dtype != GMLE_F64,
      ctx, GMLE_E_INVALID_ARG,
      "score: out_dtype %d is neither GMLE_F32 nor GMLE_F64", (int)out_dtype);
  /* Output size per row, in bytes. */
  const size_t osz =
      what == GMLE_OUT_LABEL ? sizeof(int32_t) : gmle__dtype_size(out_dtype);
  const size_t per_row = what == GMLE_OUT_LABEL || what == GMLE_OUT_DENSITY ? 1
                         : what == GMLE_OUT_RESP
                             ? m->n_classes * gmle_model_n_components(m)
                             : m->n_classes;
  size_t out_bytes;
  GMLE_RETURN_IF(gmle__mul3_size(n_rows, per_row, osz, &out_bytes), ctx,
                 GMLE_E_TOO_LARGE,
                 "score: the output (%zu rows x %zu values x %zu bytes) "
                 "overflows size_t",
                 n_rows, per_row, osz);
  if (n_rows == 0)
    return GMLE_OK;
  GMLE_RETURN_IF(!out, ctx, GMLE_E_INVALID_ARG, "score: out is NULL");
  if (m->mix)
    return gmle__mixture_score(ctx, m, x, dtype, n_rows, row_stride, what,
                               out_dtype, out);
  if (what == GMLE_OUT_RESP) {
    /* One component per class: its posterior given the class is 1. */
    GMLE_TRY(gmle__check_finite(ctx, x, dtype, n_rows, row_stride, m->dim, 0,
                                "score"));
    for (size_t i = 0; i < n_rows * per_row; i++) {
      if (out_dtype == GMLE_F32)
        ((float *)out)[i] = 1.0f;
      else
        ((double *)out)[i] = 1.0;
    }
    return GMLE_OK;
  }

  const size_t isz = gmle__dtype_size(dtype);
  gmle_status s = GMLE_OK;
  if (ctx->ops->caps & GMLE__CAP_SCORE_WHOLE) {
    /* A GMLE__CAP_SCORE_WHOLE backend checks for NaN and Inf as it loads its
     * tiles and bounds its own memory: one call, one pass over x, no serial
     * scan. On a non-finite value, name the first one as the batch loop would.
     */
    gmle__batch b = {.x = x,
                     .dtype = dtype,
                     .n_rows = n_rows,
                     .row_stride = row_stride,
                     .dim = m->dim,
                     .labels = NULL,
                     .weights = NULL};
    s = backend_score(ctx, m, &b, what, out_dtype, out);
    if (s == GMLE_E_NONFINITE_INPUT) {
      size_t r, j;
      double v;
      gmle__find_nonfinite(x, dtype, n_rows, row_stride, m->dim, &r, &j, &v);
      const gmle_error_location loc = {.batch = r / GMLE__SCORE_BATCH_ROWS,
                                       .row = r,
                                       .column = j,
                                       .fields = GMLE_LOC_BATCH | GMLE_LOC_ROW |
                                                 GMLE_LOC_COLUMN};
      s = gmle__error_at(ctx, GMLE_E_NONFINITE_INPUT, &loc,
                         "score: batch %llu row %zu col %zu: %s",
                         (unsigned long long)(r / GMLE__SCORE_BATCH_ROWS), r, j,
                         gmle__nonfinite_name(v));
    }
    gmle__backend_score_end(ctx);
    return s;
  }
  uint64_t bi = 0;
  for (size_t r0 = 0; r0 < n_rows && s == GMLE_OK;
       r0 += GMLE__SCORE_BATCH_ROWS, bi++) {
    const size_t nb = n_rows - r0 < GMLE__SCORE_BATCH_ROWS
                          ? n_rows - r0
                          : GMLE__SCORE_BATCH_ROWS;
    const char *xb = (const char *)x + r0 * row_stride * isz;
    s = check_batch(ctx, xb, dtype, nb, row_stride, m->dim, bi, r0, "score");
    if (s != GMLE_OK)
      break;
    gmle__batch b = {.x = xb,
                     .dtype = dtype,
                     .n_rows = nb,
                     .row_stride = row_stride,
                     .dim = m->dim,
                     .labels = NULL,
                     .weights = NULL};
    s = backend_score(ctx, m, &b, what, out_dtype,
                      (char *)out + r0 * per_row * osz);
  }
  gmle__backend_score_end(ctx);
  return s;
}

/* Neumaier's compensated sum, with -inf absorbing (a row of zero density
 * makes the total -inf, never NaN). */
typedef struct ksum {
  double s, c;
  int neg_inf;
} ksum;

static void ksum_add(ksum *k, double v) {
  if (v == -INFINITY) {
    k->neg_inf = 1;
    return;
  }
  const double t = k->s + v;
  if (fabs(k->s) >= fabs(v))
    k->c += (k->s - t) + v;
  else
    k->c += (v - t) + k->s;
  k->s = t;
}

gmle_status gmle_total_loglik(gmle_context *ctx, const gmle_model *m,
                              const void *x, gmle_dtype dtype, size_t n_rows,
                              size_t row_stride, const int32_t *labels,
                              const double *weights, double *out) {
  if (!ctx)
    return GMLE_E_INVALID_ARG;
  gmle__clear_error(ctx);
  GMLE_TRY(check_input(ctx, m, x, dtype, n_rows, row_stride, "total_loglik"));
  GMLE_RETURN_IF(!out, ctx, GMLE_E_INVALID_ARG, "total_loglik: out is NULL");
  *out = 0.0;
  if (n_rows == 0)
    return GMLE_OK;
  const size_t C = m->n_classes, isz = gmle__dtype_size(dtype);
  const size_t B = GMLE__SCORE_BATCH_ROWS;
  /* With labels: the n x C class-conditional log-likelihoods of a batch;
   * without: the n densities. */
  const size_t per_row = labels ? C : 1;
  size_t len;
  GMLE_RETURN_IF(gmle__mul_size(B, per_row, &len), ctx, GMLE_E_TOO_LARGE,
                 "total_loglik: %zu classes is too many", C);
  double *buf = gmle__malloc(len * sizeof(double));
  GMLE_RETURN_IF(!buf, ctx, GMLE_E_OUT_OF_MEMORY,
                 "total_loglik: out of memory (%zu doubles)", len);
  ksum acc = {0, 0, 0};
  gmle_status s = GMLE_OK;
  uint64_t bi = 0;
  for (size_t r0 = 0; r0 < n_rows && s == GMLE_OK; r0 += B, bi++) {
    const size_t nb = n_rows - r0 < B ? n_rows - r0 : B;
    const char *xb = (const char *)x + r0 * row_stride * isz;
    for (size_t r = r0; r < r0 + nb && s == GMLE_OK; r++) {
      if (labels && (labels[r] < 0 || (size_t)labels[r] >= C))
        s = gmle__error_at(
            ctx, GMLE_E_BAD_LABEL,
            &(gmle_error_location){.row = r, .fields = GMLE_LOC_ROW},
            "total_loglik: row %zu: label %ld is outside "
            "[0, %zu)",
            r, (long)labels[r], C);
      else if (weights && (!isfinite(weights[r]) || weights[r] < 0))
        s = gmle__error_at(
            ctx, GMLE_E_INVALID_WEIGHTS,
            &(gmle_error_location){.row = r, .fields = GMLE_LOC_ROW},
            "total_loglik: row %zu: weight %g is %s", r, weights[r],
            isfinite(weights[r]) ? "negative" : "not finite");
    }
    if (s == GMLE_OK)
      s = check_batch(ctx, xb, dtype, nb, row_stride, m->dim, bi, r0,
                      "total_loglik");
    if (s != GMLE_OK)
      break;
    gmle__batch b = {.x = xb,
                     .dtype = dtype,
                     .n_rows = nb,
                     .row_stride = row_stride,
                     .dim = m->dim,
                     .labels = NULL,
                     .weights = NULL};
    const gmle_output what = labels ? GMLE_OUT_LOGLIK : GMLE_OUT_DENSITY;
    s = m->mix ? gmle__mixture_score(ctx, m, xb, dtype, nb, row_stride, what,
                                     GMLE_F64, buf)
               : backend_score(ctx, m, &b, what, GMLE_F64, buf);
    if (s != GMLE_OK)
      break;
    for (size_t r = 0; r < nb; r++) {
      const double w = weights ? weights[r0 + r] : 1.0;
      if (w == 0)
        continue; /* a zero weight removes the row, even at -inf */
      const double v = labels ? buf[r * C + (size_t)labels[r0 + r]] : buf[r];
      ksum_add(&acc, w * v);
    }
  }
  gmle__free(buf);
  gmle__backend_score_end(ctx);
  if (s != GMLE_OK)
    return s;
  *out = acc.neg_inf ? -INFINITY : acc.s + acc.c;
  return GMLE_OK;
}
