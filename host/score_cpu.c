/* score_cpu.c -- placeholder; replaced by GEMM-form scoring. */
#include "internal.h"

gmle_status gmle__cpu_score(gmle_context *ctx, const gmle_model *m,
                            const gmle__batch *b, gmle_output what,
                            gmle_dtype out_dtype, void *out) {
  return gmle__error(ctx, GMLE_E_UNSUPPORTED, "not implemented");
}
