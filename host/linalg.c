/* linalg.c -- small host-side numerical helpers shared by every backend. */
#include "internal.h"

#include <math.h>

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
