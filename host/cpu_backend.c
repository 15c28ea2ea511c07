/* cpu_backend.c -- the CPU backend's table: OpenBLAS/LAPACKE and our own
 * kernels, using every core through OpenMP. */
#include "internal.h"

#include <cblas.h>
#include <omp.h>
#include <string.h>

static gmle_status cpu_init(gmle_context *ctx, int device, void **state) {
  *state = NULL;
  if (device > 0)
    return gmle__error(ctx, GMLE_E_NO_DEVICE,
                       "the CPU backend has one device (0); %d was asked for",
                       device);
  ctx->n_threads = omp_get_max_threads();
  if (ctx->n_threads < 1)
    ctx->n_threads = 1;
  const char *cfg = openblas_get_config();
  snprintf(ctx->device_name, sizeof ctx->device_name,
           "CPU (%d threads; %.120s)", ctx->n_threads, cfg ? cfg : "BLAS");
  return GMLE_OK;
}

static void cpu_shutdown(void *state) { (void)state; }

const gmle__backend_ops gmle__cpu_backend = {
    .id = GMLE_BACKEND_CPU,
    .name = "cpu",
    .caps = GMLE__CAP_FUSED_NONFINITE | GMLE__CAP_DIRECT_ACCUM |
            GMLE__CAP_F32_PRODUCTS | GMLE__CAP_SCORE_WHOLE,
    .init = cpu_init,
    .shutdown = cpu_shutdown,
    .accumulate = gmle__cpu_accumulate,
    .score = gmle__cpu_score,
};
