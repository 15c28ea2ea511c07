/*
 * gmle_cuda.h -- CUDA interop for gmle: statistics and scoring from data
 * that already lives in GPU memory, and device discovery. (The
 * fault-injection hooks for tests are in cuda/cuda_testing.h, not installed.)
 *
 * These functions exist only in a libgmle built with GMLE_ENABLE_CUDA
 * (gmle_backend_compiled(GMLE_BACKEND_CUDA) == 1). Like the rest of gmle
 * they need no CUDA header: device pointers are plain pointers, and libgmle
 * loads the CUDA runtime itself (libgmle_cuda.so, next to libgmle) when a
 * CUDA context is first created.
 *
 * Device pointers must be device (cudaMalloc) or managed memory of the
 * context's device. gmle works on its own CUDA streams, which synchronise
 * with the legacy default stream; data written on other streams must be
 * complete (synchronised by the caller) before the call. Every call returns
 * only when gmle has finished reading the caller's memory.
 */
#ifndef GMLE_CUDA_H
#define GMLE_CUDA_H

#include "gmle.h"

#ifdef __cplusplus
extern "C" {
#endif

/** gmle_stats_add for data in device memory: d_x (dtype, n_rows rows, row r
 *  at d_x + r*row_stride elements), d_labels (int32, or NULL with one
 *  class) and d_weights (or NULL) are device pointers. The statistics must
 *  be on a CUDA context. Validation happens on the device before anything is
 *  committed, with the same errors and messages as gmle_stats_add
 *  (GMLE_E_NONFINITE_INPUT naming row and column, GMLE_E_BAD_LABEL,
 *  GMLE_E_INVALID_WEIGHTS, GMLE_E_OVERFLOW); device faults give
 *  GMLE_E_DEVICE, GMLE_E_DEVICE_OOM or GMLE_E_DEVICE_LOST. Atomic: on any
 *  error the statistics are bit-identical to before. GMLE_E_UNSUPPORTED when
 *  the statistics are not on a CUDA context, GMLE_E_INVALID_ARG when a
 *  pointer is not device memory of the context's device. */
GMLE_API gmle_status gmle_cuda_stats_add_device(gmle_stats *st, const void *d_x,
                                                gmle_dtype dtype, size_t n_rows,
                                                size_t row_stride,
                                                const int32_t *d_labels,
                                                const double *d_weights);

/** gmle_score for data in device memory: d_x as above, d_out a device
 *  buffer laid out as gmle_score's `out`. The model must be on ctx, a CUDA
 *  context. Rows with NaN or Inf give GMLE_E_NONFINITE_INPUT naming the row
 *  and column (found on the device). */
GMLE_API gmle_status gmle_cuda_score_device(gmle_context *ctx,
                                            const gmle_model *m,
                                            const void *d_x, gmle_dtype dtype,
                                            size_t n_rows, size_t row_stride,
                                            gmle_output what,
                                            gmle_dtype out_dtype, void *d_out);

/** One CUDA device, as gmle_cuda_devices reports it. */
typedef struct gmle_cuda_device_info {
  int index;              /**< CUDA device ordinal */
  char name[256];         /**< "NVIDIA H100 80GB HBM3" */
  size_t total_memory;    /**< bytes */
  size_t free_memory;     /**< bytes, when queried (0 if unknown) */
  int cc_major, cc_minor; /**< compute capability */
  int multiprocessors;
  int pci_domain, pci_bus, pci_device;
  int usable; /**< 1 when this build of gmle runs on it */
} gmle_cuda_device_info;

/** List up to `max` CUDA devices into out (may be NULL with max 0);
 *  *n_found receives the number of devices present. Without a driver, a
 *  GPU or the CUDA module, returns GMLE_E_NO_DEVICE and writes the reason
 *  (the CUDA error name and number, or the dlopen error) into why (may be
 *  NULL). */
GMLE_API gmle_status gmle_cuda_devices(gmle_cuda_device_info *out, size_t max,
                                       size_t *n_found, char *why,
                                       size_t why_len);

/** The CUDA device ordinal of a CUDA context, or -1 for other contexts. */
GMLE_API int gmle_cuda_context_device(const gmle_context *ctx);

#ifdef __cplusplus
}
#endif

#endif /* GMLE_CUDA_H */
