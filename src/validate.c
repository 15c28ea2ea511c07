/* validate.c -- scanning batches for values the statistics cannot take,
 * and the one scan that says where a non-finite value is. */
#include "internal.h"

#include <math.h>

const char *gmle__nonfinite_name(double v) {
  return isnan(v) ? "NaN" : (v > 0 ? "+Inf" : "-Inf");
}

static double value_at(const void *x, gmle_dtype dtype, size_t i) {
  return dtype == GMLE_F32 ? (double)((const float *)x)[i]
                           : ((const double *)x)[i];
}

int gmle__find_nonfinite(const void *x, gmle_dtype dtype, size_t n_rows,
                         size_t row_stride, size_t dim, size_t *row,
                         size_t *col, double *val) {
  for (size_t r = 0; r < n_rows; r++)
    for (size_t j = 0; j < dim; j++) {
      const double v = value_at(x, dtype, r * row_stride + j);
      if (!isfinite(v)) {
        *row = r;
        *col = j;
        *val = v;
        return 1;
      }
    }
  *row = *col = 0;
  *val = NAN;
  return 0;
}

/* 1 when every value of the row is finite: x*0 is 0 for finite x and NaN
 * for NaN and +-Inf, so one comparison per row suffices. */
static int row_finite_f32(const float *row, size_t dim) {
  float acc = 0.0f;
  for (size_t j = 0; j < dim; j++)
    acc += row[j] * 0.0f;
  return acc == 0.0f;
}

static int row_finite_f64(const double *row, size_t dim) {
  double acc = 0.0;
  for (size_t j = 0; j < dim; j++)
    acc += row[j] * 0.0;
  return acc == 0.0;
}

static int row_finite(const void *x, gmle_dtype dtype, size_t r,
                      size_t row_stride, size_t dim) {
  return dtype == GMLE_F32
             ? row_finite_f32((const float *)x + r * row_stride, dim)
             : row_finite_f64((const double *)x + r * row_stride, dim);
}

gmle_status gmle__check_finite(const gmle_context *ctx, const void *x,
                               gmle_dtype dtype, size_t n_rows,
                               size_t row_stride, size_t dim,
                               uint64_t batch_index, const char *what) {
  (void)what; /* not part of the message: callers prefix the file name, as
                 in "x.npy: batch 0 row 17 col 3: NaN" */
  /* The scan is split over the context's threads; the first bad row (the
   * smallest index) is reported whatever the split. */
  size_t first = n_rows;
  const long long n = (long long)n_rows;
  const int threads =
      ctx && ctx->n_threads > 1 && n_rows * dim > 65536 ? ctx->n_threads : 1;
#pragma omp parallel for num_threads(threads) schedule(static)                 \
    reduction(min                                                              \
              : first)
  for (long long r = 0; r < n; r++)
    if ((size_t)r < first && !row_finite(x, dtype, (size_t)r, row_stride, dim))
      first = (size_t)r;
  if (first == n_rows)
    return GMLE_OK;
  size_t r, j;
  double v;
  gmle__find_nonfinite((const char *)x +
                           first * row_stride * gmle__dtype_size(dtype),
                       dtype, 1, row_stride, dim, &r, &j, &v);
  const gmle_error_location loc = {.batch = batch_index,
                                   .row = first,
                                   .column = j,
                                   .fields = GMLE_LOC_BATCH | GMLE_LOC_ROW |
                                             GMLE_LOC_COLUMN};
  return gmle__error_at(
      ctx, GMLE_E_NONFINITE_INPUT, &loc, "batch %llu row %zu col %zu: %s",
      (unsigned long long)batch_index, first, j, gmle__nonfinite_name(v));
}
