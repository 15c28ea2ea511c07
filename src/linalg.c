/* linalg.c -- small numerical helpers of the core, shared by every backend. */
#include "internal.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>

/* log sum_i exp(v_i), shifted by the maximum so that nothing overflows:
 * max + log1p(sum over the other terms of exp(v_i - max)).
 * All -inf (or n == 0) gives -inf, never NaN; a NaN in v gives NaN. */
double gmle__logsumexp(const double *v, size_t n) {
  double mx = -INFINITY;
  size_t imax = 0;
  for (size_t i = 0; i < n; i++) {
    if (isnan(v[i]))
      return NAN;
    if (v[i] > mx) {
      mx = v[i];
      imax = i;
    }
  }
  if (!isfinite(mx))
    return mx; /* -inf: every term is zero; +inf: the sum is infinite */
  double rest = 0;
  for (size_t i = 0; i < n; i++)
    if (i != imax)
      rest += exp(v[i] - mx);
  return mx + log1p(rest);
}

static pthread_mutex_t blas_lock = PTHREAD_MUTEX_INITIALIZER;
static int blas_depth, blas_saved;

int gmle__blas_small_begin(size_t D) {
  if (D >= GMLE__BLAS_SMALL)
    return 0;
  pthread_mutex_lock(&blas_lock);
  if (blas_depth++ == 0) {
    blas_saved = openblas_get_num_threads();
    if (blas_saved > 1)
      openblas_set_num_threads(1);
  }
  pthread_mutex_unlock(&blas_lock);
  return 1;
}

void gmle__blas_small_end(int token) {
  if (!token)
    return;
  pthread_mutex_lock(&blas_lock);
  if (--blas_depth == 0 && blas_saved > 1)
    openblas_set_num_threads(blas_saved);
  pthread_mutex_unlock(&blas_lock);
}
