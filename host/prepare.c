/* prepare.c -- placeholder; replaced by the host-side finishing. */
#include "internal.h"

#include <math.h>

gmle_status gmle__model_prepare(gmle_model *m) {
  return gmle__error(m->ctx, GMLE_E_UNSUPPORTED, "not implemented");
}

double gmle__logsumexp(const double *v, size_t n) {
  (void)v;
  (void)n;
  return NAN;
}
