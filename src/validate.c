/* validate.c -- scanning batches for values the statistics cannot take. */
#include "internal.h"

#include <math.h>

static gmle_status report(const gmle_context *ctx, double v, size_t r,
                          size_t j, uint64_t batch, const char *what) {
  const char *kind = isnan(v) ? "NaN" : (v > 0 ? "+Inf" : "-Inf");
  (void)what; /* the caller's name is not part of the message: callers
                prefix the file name, as in "x.npy: batch 0 row 17 col 3: NaN" */
  return gmle__error(ctx, GMLE_E_NONFINITE_INPUT,
                     "batch %llu row %zu col %zu: %s",
                     (unsigned long long)batch, r, j, kind);
}

gmle_status gmle__check_finite(const gmle_context *ctx, const void *x,
                               gmle_dtype dtype, size_t n_rows,
                               size_t row_stride, size_t dim,
                               uint64_t batch_index, const char *what) {
  /* Fast path: the sum x*0 is 0 for finite values and NaN for NaN/Inf, so
   * one branch per row suffices; the exact cell is searched only on error. */
  if (dtype == GMLE_F32) {
    const float *p = x;
    for (size_t r = 0; r < n_rows; r++) {
      const float *row = p + r * row_stride;
      float acc = 0.0f;
      for (size_t j = 0; j < dim; j++)
        acc += row[j] * 0.0f;
      if (acc != 0.0f || isnan(acc))
        for (size_t j = 0; j < dim; j++)
          if (!isfinite(row[j]))
            return report(ctx, row[j], r, j, batch_index, what);
    }
  } else {
    const double *p = x;
    for (size_t r = 0; r < n_rows; r++) {
      const double *row = p + r * row_stride;
      double acc = 0.0;
      for (size_t j = 0; j < dim; j++)
        acc += row[j] * 0.0;
      if (acc != 0.0 || isnan(acc))
        for (size_t j = 0; j < dim; j++)
          if (!isfinite(row[j]))
            return report(ctx, row[j], r, j, batch_index, what);
    }
  }
  return GMLE_OK;
}
