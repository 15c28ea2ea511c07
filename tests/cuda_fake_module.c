/* cuda_fake_module.c -- a stand-in for libgmle_cuda.so that needs no GPU
 * and no CUDA library, for the loader's side of the CUDA backend (run by
 * test_cuda_em.fake_module*, with GMLE_CUDA_MODULE naming it). It opens one
 * pretend device and computes on the host in plain loops: per-class
 * statistics (accumulate) and EM's responsibility-weighted statistics
 * (accumulate_resp, ABI 4.1, whose calls call_count reports); scoring
 * answers GMLE_E_UNSUPPORTED, which sends every batch to the core's host
 * fallback, and the device-memory entries are unsupported.
 *
 * Built twice: as an ABI 4.1 module, and with FAKE_ABI_4_0 as an ABI 4.0
 * one, whose table's size stops before accumulate_resp although the entry
 * is filled in: a loader that read past the size would call it, and
 * call_count would say so. */
#include "cuda_abi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct fake_state {
  long resp_calls;
} fake_state;

static const gmle__cuda_host *host;

static gmle_status fake_init(gmle__cuda_hctx *h, int device, char *name,
                             size_t name_len, int *n_threads, void **state) {
  (void)h;
  (void)device;
  *state = calloc(1, sizeof(fake_state));
  if (!*state || !host)
    return GMLE_E_NO_DEVICE;
  snprintf(name, name_len, "fake CUDA module (host loops, tests only)");
  *n_threads = 1;
  return GMLE_OK;
}

static void fake_shutdown(void *state) { free(state); }

static double elem(const void *x, gmle_dtype dt, size_t stride, size_t r,
                   size_t j) {
  return dt == GMLE_F32 ? (double)((const float *)x)[r * stride + j]
                        : ((const double *)x)[r * stride + j];
}

/* d d^T (lower triangle, row-major) or d o d (diag) times w, into gram. */
static void add_outer(double *gram, const double *d, size_t D, double w,
                      int diag) {
  for (size_t i = 0; i < D; i++)
    for (size_t j = 0; j <= (diag ? 0 : i); j++)
      gram[diag ? i : i * D + j] += w * d[i] * d[diag ? i : j];
}

static gmle_status fake_accumulate(void *state, const gmle__cuda_batch_view *b,
                                   gmle__cuda_partial_view *out) {
  (void)state;
  const size_t D = b->dim;
  double *d = malloc(D * sizeof(double));
  if (!d)
    return GMLE_E_OUT_OF_MEMORY;
  for (size_t r = 0; r < b->n_rows; r++) {
    const size_t c = b->labels ? (size_t)b->labels[r] : 0;
    const double w = b->weights ? b->weights[r] : 1.0;
    for (size_t j = 0; j < D; j++)
      d[j] = elem(b->x, b->dtype, b->row_stride, r, j) - out->shift[c * D + j];
    out->weight[c] += w;
    out->rows[c]++;
    for (size_t j = 0; j < D; j++)
      out->sum[c * D + j] += w * d[j];
    add_outer(out->gram + c * out->gram_len, d, D, w,
              out->mode == GMLE_STATS_DIAG);
  }
  free(d);
  return GMLE_OK;
}

static gmle_status fake_accumulate_resp(void *state,
                                        const gmle__cuda_resp_view *b,
                                        const gmle__cuda_resp_out_view *out) {
  fake_state *S = state;
  S->resp_calls++;
  const size_t D = b->dim, G = b->n_comp, L = b->diag ? D : D * D;
  double *d = malloc(D * sizeof(double));
  if (!d)
    return GMLE_E_OUT_OF_MEMORY;
  for (size_t r = 0; r < b->n_rows; r++)
    for (size_t g = 0; g < G; g++) {
      const double v = b->resp[r * G + g];
      if (!(v > 0))
        continue;
      for (size_t j = 0; j < D; j++)
        d[j] = elem(b->x, b->dtype, b->row_stride, r, j) -
               (b->centre[j] + b->kshift[g * D + j]);
      out->weight[g] += v;
      out->rows[g]++;
      for (size_t j = 0; j < D; j++)
        out->sum[g * D + j] += v * d[j];
      add_outer(out->gram + g * L, d, D, v, b->diag);
    }
  free(d);
  return GMLE_OK;
}

static gmle_status fake_prepare_model(void *state,
                                      const gmle__cuda_model_view *m,
                                      void **model_data) {
  (void)state;
  (void)m;
  *model_data = NULL;
  return GMLE_OK;
}

static void fake_free_model(void *state, void *model_data) {
  (void)state;
  (void)model_data;
}

static gmle_status fake_score(void *state, const gmle__cuda_model_view *m,
                              const void *model_data,
                              const gmle__cuda_batch_view *b, gmle_output what,
                              gmle_dtype out_dtype, void *out) {
  (void)state;
  (void)m;
  (void)model_data;
  (void)b;
  (void)what;
  (void)out_dtype;
  (void)out;
  return GMLE_E_UNSUPPORTED;
}

static gmle_status fake_synchronize(void *state) {
  (void)state;
  return GMLE_OK;
}

static gmle_status fake_list_devices(gmle__cuda_hctx *h, gmle_device_info *out,
                                     size_t cap, size_t *n_found) {
  (void)h;
  (void)out;
  (void)cap;
  *n_found = 0;
  return GMLE_E_NO_DEVICE;
}

static gmle_status fake_add_device(void *state, const gmle__cuda_dev_batch *b,
                                   gmle__cuda_dev_result *out) {
  (void)state;
  (void)b;
  memset(out, 0, sizeof *out);
  return GMLE_E_UNSUPPORTED;
}

static gmle_status fake_score_device(void *state,
                                     const gmle__cuda_model_view *m,
                                     const void *model_data, const void *d_x,
                                     gmle_dtype dtype, size_t n_rows,
                                     size_t row_stride, gmle_output what,
                                     gmle_dtype out_dtype, void *d_out) {
  (void)state;
  (void)m;
  (void)model_data;
  (void)d_x;
  (void)dtype;
  (void)n_rows;
  (void)row_stride;
  (void)what;
  (void)out_dtype;
  (void)d_out;
  return GMLE_E_UNSUPPORTED;
}

static gmle_status fake_devices(gmle_cuda_device_info *out, size_t max,
                                size_t *n_found, char *why, size_t why_len) {
  (void)out;
  (void)max;
  if (n_found)
    *n_found = 0;
  if (why && why_len)
    snprintf(why, why_len, "fake CUDA module: no device list");
  return GMLE_E_NO_DEVICE;
}

static gmle_status fake_inject_fault(void *state, gmle_cuda_fault kind,
                                     unsigned sites, long k) {
  (void)state;
  (void)kind;
  (void)sites;
  (void)k;
  return GMLE_E_UNSUPPORTED;
}

/* What the suite reads through gmle__cuda_call_count: the calls of
 * accumulate_resp. */
static long fake_call_count(const void *state) {
  const fake_state *S = state;
  return S->resp_calls;
}

static int fake_device_index(const void *state) {
  (void)state;
  return 0;
}

static const gmle__cuda_module table = {
    .abi_major = GMLE__CUDA_ABI_MAJOR,
#ifdef FAKE_ABI_4_0
    .abi_minor = 0,
    .size = GMLE__CUDA_MODULE_SIZE_4_0,
#else
    .abi_minor = GMLE__CUDA_ABI_MINOR,
    .size = sizeof(gmle__cuda_module),
#endif
    .gmle_version = GMLE_VERSION_NUMBER,
    .init = fake_init,
    .shutdown = fake_shutdown,
    .accumulate = fake_accumulate,
    .prepare_model = fake_prepare_model,
    .free_model = fake_free_model,
    .score = fake_score,
    .synchronize = fake_synchronize,
    .list_devices = fake_list_devices,
    .add_device = fake_add_device,
    .score_device = fake_score_device,
    .devices = fake_devices,
    .inject_fault = fake_inject_fault,
    .call_count = fake_call_count,
    .device_index = fake_device_index,
    .accumulate_resp = fake_accumulate_resp,
};

__attribute__((visibility("default"))) const gmle__cuda_module *
gmle__cuda_module_entry_v1(const gmle__cuda_host *h) {
  if (h && h->abi_major == GMLE__CUDA_ABI_MAJOR &&
      h->size >= sizeof(gmle__cuda_host))
    host = h;
  return &table;
}
