/* cpu_backend.c -- the CPU backend's table: OpenBLAS/LAPACKE and our own
 * kernels, using every core through OpenMP. */
#include "cpu_state.h"

#include <cblas.h>
#include <omp.h>
#include <string.h>

static gmle_status cpu_init(gmle_context *ctx, int device, void **state) {
  *state = NULL;
  if (device > 0)
    return gmle__error(ctx, GMLE_E_NO_DEVICE,
                       "the CPU backend has one device (0); %d was asked for",
                       device);
  *state = gmle__calloc(1, sizeof(gmle__cpu_state));
  if (!*state)
    return gmle__error(ctx, GMLE_E_OUT_OF_MEMORY,
                       "the CPU backend: out of memory");
  ctx->n_threads = omp_get_max_threads();
  if (ctx->n_threads < 1)
    ctx->n_threads = 1;
  const char *cfg = openblas_get_config();
  snprintf(ctx->device_name, sizeof ctx->device_name,
           "CPU (%d threads; %.120s)", ctx->n_threads, cfg ? cfg : "BLAS");
  return GMLE_OK;
}

static void cpu_score_end(void *state) {
  gmle__cpu_state *cs = state;
  gmle__free(cs->scratch);
  cs->scratch = NULL;
  cs->scratch_bytes = 0;
}

static void cpu_shutdown(void *state) {
  if (!state)
    return;
  cpu_score_end(state);
  gmle__free(state);
}

/* The model data is the kernels' packed parameters. */
static gmle_status cpu_prepare_model(gmle_context *ctx, const gmle_model *m,
                                     void **data) {
  double *kp = NULL;
  const gmle_status s = gmle__cpu_score_pack(ctx, m, &kp);
  *data = kp;
  return s;
}

static void cpu_free_model(void *state, void *data) {
  (void)state;
  gmle__aligned_free(data);
}

/* The scorer with this backend's state on ctx: ctx's own, or the one the
 * core made for the CPU as the host fallback of a device backend. */
static gmle_status cpu_score(gmle_context *ctx, const gmle_model *m,
                             const void *model_data, const gmle__batch *b,
                             gmle_output what, gmle_dtype out_dtype,
                             void *out) {
  gmle__cpu_state *cs = gmle__backend_state(ctx, &gmle__cpu_backend);
  GMLE_RETURN_IF(!cs, ctx, GMLE_E_INTERNAL,
                 "score: the CPU backend has no state on this context");
  return gmle__cpu_score(ctx, cs, m, model_data, b, what, out_dtype, out);
}

const gmle__backend_ops gmle__cpu_backend = {
    .id = GMLE_BACKEND_CPU,
    .name = "cpu",
    .caps = GMLE__CAP_FUSED_NONFINITE | GMLE__CAP_DIRECT_ACCUM |
            GMLE__CAP_F32_PRODUCTS | GMLE__CAP_SCORE_WHOLE,
    .init = cpu_init,
    .shutdown = cpu_shutdown,
    .accumulate = gmle__cpu_accumulate,
    .prepare_model = cpu_prepare_model,
    .free_model = cpu_free_model,
    .score = cpu_score,
    .score_end = cpu_score_end,
    .accumulate_resp = gmle__cpu_accumulate_resp,
};
