/*
 * cuda_abi.h -- the contract between libgmle (cuda/loader.c) and the CUDA
 * module libgmle_cuda.so (the rest of cuda/), which libgmle loads with
 * dlopen when a CUDA context is created, so that libgmle itself never links
 * the CUDA runtime or cuBLAS.
 *
 * The module exports one function, GMLE__CUDA_ENTRY_NAME, that returns its
 * table: the backend table of src/internal.h (struct gmle__backend_ops, the
 * single definition) plus the CUDA-only entries behind include/gmle_cuda.h.
 * Both sides are compiled from the same internal.h; the loader refuses a
 * module whose ABI number, gmle version or struct sizes differ from its own.
 * The module links nothing of libgmle (whose internals are hidden): what it
 * needs from the core comes in gmle__cuda_host.
 *
 * Plain C11, included by C files on both sides (not by .cu files).
 */
#ifndef GMLE_CUDA_ABI_H
#define GMLE_CUDA_ABI_H

#include "internal.h"

#include "cuda_testing.h"
#include "gmle_cuda.h"

/* Bump on any change to the structs below or to how the module reads the
 * core's structs. */
#define GMLE__CUDA_ABI 2
#define GMLE__CUDA_ENTRY_NAME "gmle__cuda_module_entry_v1"
#define GMLE__CUDA_MODULE_FILE "libgmle_cuda.so"

/* Struct sizes both sides must agree on (a cheap layout check). */
#define GMLE__CUDA_LAYOUT_INIT                                                 \
  {                                                                            \
    sizeof(struct gmle_context), sizeof(struct gmle_model),                    \
        sizeof(struct gmle_stats), sizeof(gmle__backend_ops),                  \
        sizeof(gmle__batch), sizeof(gmle__partial), sizeof(gmle__score_cache), \
        sizeof(gmle_cuda_device_info)                                          \
  }
#define GMLE__CUDA_LAYOUT_N 8

/* What libgmle lends the module. */
typedef struct gmle__cuda_host {
  unsigned abi;          /* GMLE__CUDA_ABI */
  unsigned gmle_version; /* GMLE_VERSION_NUMBER */
  size_t layout[GMLE__CUDA_LAYOUT_N];
  /* gmle__verror: record a message on ctx and return s. */
  gmle_status (*verror)(const gmle_context *ctx, gmle_status s, const char *fmt,
                        va_list ap);
  /* gmle__log with a preformatted message. */
  void (*log)(const gmle_context *ctx, gmle_log_level lvl, const char *msg);
} gmle__cuda_host;

/* A batch in device memory (gmle_cuda_stats_add_device), with the
 * accumulator's shifts. Pointers x, labels, weights are device pointers;
 * shift and has_shift are the host accumulator's arrays (read-only). */
typedef struct gmle__cuda_dev_batch {
  const void *x;
  gmle_dtype dtype;
  size_t n_rows, row_stride, dim, n_classes;
  const int32_t *labels; /* NULL: all class 0 (n_classes == 1) */
  const double *weights; /* NULL: all 1 */
  gmle_stats_mode mode;
  size_t gram_len;
  const double *shift;            /* [C*D] */
  const unsigned char *has_shift; /* [C] */
  uint64_t batch_index;           /* for messages */
} gmle__cuda_dev_batch;

/* The partial statistics of a device batch over the classes present, in
 * ascending class order: class_of[p] is the class of slot p, shift the
 * shifts used (the accumulator's, or chosen from the batch). Arrays are
 * allocated by the module with malloc() and released by the loader with
 * gmle__cuda_dev_result_free (free()). */
typedef struct gmle__cuda_dev_result {
  size_t n_present;
  int32_t *class_of; /* [n_present] */
  double *shift;     /* [n_present*D] */
  double *weight;    /* [n_present] */
  uint64_t *rows;    /* [n_present] */
  double *sum;       /* [n_present*D] */
  double *gram;      /* [n_present*gram_len], lower triangle (FULL) */
} gmle__cuda_dev_result;

typedef struct gmle__cuda_module {
  unsigned abi;
  unsigned gmle_version;
  size_t layout[GMLE__CUDA_LAYOUT_N];
  const gmle__backend_ops *ops; /* id GMLE_BACKEND_CUDA */
  /* gmle_cuda_stats_add_device: validate on the device and compute the
   * partial statistics; the loader commits them. */
  gmle_status (*add_device)(gmle_context *ctx, const gmle__cuda_dev_batch *b,
                            gmle__cuda_dev_result *out);
  /* gmle_cuda_score_device. */
  gmle_status (*score_device)(gmle_context *ctx, const gmle_model *m,
                              const void *d_x, gmle_dtype dtype, size_t n_rows,
                              size_t row_stride, gmle_output what,
                              gmle_dtype out_dtype, void *d_out);
  /* gmle_cuda_devices (no context: the message goes to why). */
  gmle_status (*devices)(gmle_cuda_device_info *out, size_t max,
                         size_t *n_found, char *why, size_t why_len);
  /* gmle__cuda_inject_fault_at / gmle__cuda_call_count. */
  gmle_status (*inject_fault)(gmle_context *ctx, gmle_cuda_fault kind,
                              unsigned sites, long k);
  long (*call_count)(const gmle_context *ctx);
  int (*device_index)(const gmle_context *ctx);
} gmle__cuda_module;

typedef const gmle__cuda_module *(*gmle__cuda_entry_fn)(
    const gmle__cuda_host *host);

/* The module's one exported function (named GMLE__CUDA_ENTRY_NAME). It
 * keeps `host` only when host->abi matches its own. */
const gmle__cuda_module *
gmle__cuda_module_entry_v1(const gmle__cuda_host *host);

#endif /* GMLE_CUDA_ABI_H */
