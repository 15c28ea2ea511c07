/* gram.c -- placeholder; replaced by the per-class Gram kernel. */
#include "internal.h"

gmle_status gmle__cpu_accumulate(gmle_context *ctx, const gmle__batch *b,
                                 gmle__partial *out) {
  return gmle__error(ctx, GMLE_E_UNSUPPORTED, "not implemented");
}
