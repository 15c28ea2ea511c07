/*
 * cuda_abi.h -- the contract between libgmle (cuda/loader.c) and the CUDA
 * module libgmle_cuda.so (the rest of cuda/), which libgmle loads with
 * dlopen when a CUDA context is created, so that libgmle itself never links
 * the CUDA runtime or cuBLAS.
 *
 * This header is everything the module sees of libgmle: public enums from
 * gmle.h and gmle_cuda.h, plain descriptor structs built by the loader from
 * the core's internal structs (the module never reads those: no part of
 * src/internal.h reaches it), an opaque handle for the host context with
 * host callbacks, and the module's table of functions.
 *
 * Versioning: the module exports one function, GMLE__CUDA_ENTRY_NAME, whose
 * signature never changes. Both tables it exchanges begin with
 * { unsigned abi_major, abi_minor; size_t size; } (ABI 3 tables began with
 * their ABI number too), so either side can read the other's version before
 * anything else: a different major is refused with a message naming both;
 * within a major, minors only append entries and each side reads only the
 * entries the other's `size` covers.
 *
 * Plain C11, included by C files on both sides (not by .cu files).
 */
#ifndef GMLE_CUDA_ABI_H
#define GMLE_CUDA_ABI_H

#include "gmle.h"

#include "cuda_testing.h"
#include "gmle_cuda.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* Major: bump on any incompatible change to the structs or tables below.
 * Minor: bump when appending table entries. */
#define GMLE__CUDA_ABI_MAJOR 4
#define GMLE__CUDA_ABI_MINOR 1
#define GMLE__CUDA_ENTRY_NAME "gmle__cuda_module_entry_v1"
#define GMLE__CUDA_MODULE_FILE "libgmle_cuda.so"

/* The host context as the module sees it: a handle it passes back to the
 * host callbacks, never dereferenced. */
typedef struct gmle__cuda_hctx gmle__cuda_hctx;

/* What libgmle lends the module. */
typedef struct gmle__cuda_host {
  unsigned abi_major, abi_minor; /* GMLE__CUDA_ABI_MAJOR / _MINOR */
  size_t size;                   /* sizeof(gmle__cuda_host) of the loader */
  /* Record a message on the context, with its location (the batch, row,
   * column or class it names; NULL: none), and return s. */
  gmle_status (*verror)(gmle__cuda_hctx *h, gmle_status s,
                        const gmle_error_location *loc, const char *fmt,
                        va_list ap);
  /* Deliver a preformatted message to the context's log callback. */
  void (*log)(gmle__cuda_hctx *h, gmle_log_level lvl, const char *msg);
} gmle__cuda_host;

/* A validated host batch (rows finite, labels in range, weights finite and
 * >= 0). */
typedef struct gmle__cuda_batch_view {
  const void *x;
  gmle_dtype dtype;
  size_t n_rows, row_stride, dim;
  const int32_t *labels; /* NULL: all class 0 */
  const double *weights; /* NULL: all 1 */
} gmle__cuda_batch_view;

/* Per-class partial statistics of one batch around `shift` (read-only),
 * into zeroed arrays laid out as the accumulator's: weight [C], rows [C],
 * sum [C*D], gram [C*gram_len] (FULL: at least the lower triangle). */
typedef struct gmle__cuda_partial_view {
  size_t dim, n_classes, gram_len;
  gmle_stats_mode mode;
  const double *shift;
  double *weight;
  uint64_t *rows;
  double *sum;
  double *gram;
} gmle__cuda_partial_view;

/* A prepared model: what scoring reads. The score-cache arrays hold only
 * the n_active non-empty classes (see the core's prepare step); has_cache 0
 * when the core built none (then the model is not uploaded). */
typedef struct gmle__cuda_model_view {
  size_t dim, n_classes;
  gmle_cov_type cov;
  const double *means;        /* [C*D] */
  const double *factor;       /* diag [C*D] / spherical [C] standard devs;
                                 full and tied: Cholesky factors */
  const double *logdet;       /* [C] */
  const double *log_priors;   /* [C] */
  const unsigned char *empty; /* [C] */
  int has_cache;
  size_t n_active;
  const size_t *active; /* [n_active] */
  const double *center; /* [D] */
  const double *w;      /* see the core's score cache */
  const double *b;
  const double *lconst; /* [n_active] */
} gmle__cuda_model_view;

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
 * free(). */
typedef struct gmle__cuda_dev_result {
  size_t n_present;
  int32_t *class_of; /* [n_present] */
  double *shift;     /* [n_present*D] */
  double *weight;    /* [n_present] */
  uint64_t *rows;    /* [n_present] */
  double *sum;       /* [n_present*D] */
  double *gram;      /* [n_present*gram_len], lower triangle (FULL) */
} gmle__cuda_dev_result;

/* EM (ABI 4.1): a validated batch (rows finite) with the responsibilities
 * resp[r * n_comp + g] (>= 0, the row's weight included) of n_comp
 * components whose shifts are k_g = centre + kshift_g (centre [dim]: the
 * mean of the shifts; kshift [n_comp * dim]), and the statistics' mode
 * (diag 1: only the Gram diagonals). */
typedef struct gmle__cuda_resp_view {
  const void *x;
  gmle_dtype dtype;
  size_t n_rows, row_stride, dim, n_comp;
  const double *resp;
  const double *centre, *kshift;
  int diag;
} gmle__cuda_resp_view;

/* Where accumulate_resp adds (host arrays), for every component g:
 *   weight[g] += sum_r resp[r, g];  rows[g] += the rows with resp[r, g] > 0;
 *   sum[g*dim + j] += sum_r resp[r, g] (x_rj - k_gj);
 *   gram[g*L + ...] += sum_r resp[r, g] (x_r - k_g)(x_r - k_g)^T: its lower
 *   triangle row-major (L = dim*dim; the upper triangle is not read or
 *   written) or its diagonal (L = dim, diag).
 * Nothing is added unless the whole call succeeds. */
typedef struct gmle__cuda_resp_out_view {
  double *weight, *sum, *gram;
  uint64_t *rows;
} gmle__cuda_resp_out_view;

/* The module's functions. `state` is what init returned. A failing call
 * records its message through the host's verror on the handle given to
 * init (list_devices: on its own handle) and returns the status. */
typedef struct gmle__cuda_module {
  unsigned abi_major, abi_minor; /* the module's GMLE__CUDA_ABI_* */
  size_t size;                   /* sizeof(gmle__cuda_module) of the module */
  unsigned gmle_version;         /* GMLE_VERSION_NUMBER it was built from */
  /* Open device `device` (-1: default); describe it in name; *n_threads is
   * the host threads it uses for staging copies. GMLE_E_NO_DEVICE with the
   * native error when absent. */
  gmle_status (*init)(gmle__cuda_hctx *h, int device, char *name,
                      size_t name_len, int *n_threads, void **state);
  void (*shutdown)(void *state);
  gmle_status (*accumulate)(void *state, const gmle__cuda_batch_view *b,
                            gmle__cuda_partial_view *out);
  /* Upload a prepared model into *model_data, the module's copy (the core
   * calls it at the model's first score on a context and keeps the copy in
   * the model until free_model). */
  gmle_status (*prepare_model)(void *state, const gmle__cuda_model_view *m,
                               void **model_data);
  void (*free_model)(void *state, void *model_data);
  /* Score a validated batch; model_data as from prepare_model. */
  gmle_status (*score)(void *state, const gmle__cuda_model_view *m,
                       const void *model_data, const gmle__cuda_batch_view *b,
                       gmle_output what, gmle_dtype out_dtype, void *out);
  gmle_status (*synchronize)(void *state);
  gmle_status (*list_devices)(gmle__cuda_hctx *h, gmle_device_info *out,
                              size_t cap, size_t *n_found);
  /* gmle_cuda_stats_add_device: validate on the device and compute the
   * partial statistics; the core commits them. */
  gmle_status (*add_device)(void *state, const gmle__cuda_dev_batch *b,
                            gmle__cuda_dev_result *out);
  /* gmle_cuda_score_device (arguments checked by the loader). */
  gmle_status (*score_device)(void *state, const gmle__cuda_model_view *m,
                              const void *model_data, const void *d_x,
                              gmle_dtype dtype, size_t n_rows,
                              size_t row_stride, gmle_output what,
                              gmle_dtype out_dtype, void *d_out);
  /* gmle_cuda_devices (no context: the message goes to why). */
  gmle_status (*devices)(gmle_cuda_device_info *out, size_t max,
                         size_t *n_found, char *why, size_t why_len);
  /* gmle__cuda_inject_fault_at / gmle__cuda_call_count /
   * gmle_cuda_context_device. */
  gmle_status (*inject_fault)(void *state, gmle_cuda_fault kind, unsigned sites,
                              long k);
  long (*call_count)(const void *state);
  int (*device_index)(const void *state);
  /* ---- ABI 4.1 ---- */
  /* EM's responsibility-weighted statistics of a host batch (the core's
   * optional accumulate_resp). The loader calls it only when the module's
   * `size` covers it and it is not NULL; otherwise the core accumulates
   * component by component through accumulate. */
  gmle_status (*accumulate_resp)(void *state, const gmle__cuda_resp_view *b,
                                 const gmle__cuda_resp_out_view *out);
} gmle__cuda_module;

/* The size of an ABI 4.0 table: the smallest this loader accepts. */
#define GMLE__CUDA_MODULE_SIZE_4_0 offsetof(gmle__cuda_module, accumulate_resp)

typedef const gmle__cuda_module *(*gmle__cuda_entry_fn)(
    const gmle__cuda_host *host);

/* The module's one exported function (named GMLE__CUDA_ENTRY_NAME). It
 * always returns its table (so that the loader can read its version), and
 * keeps `host` only when host's major and size match its own needs. */
const gmle__cuda_module *
gmle__cuda_module_entry_v1(const gmle__cuda_host *host);

#endif /* GMLE_CUDA_ABI_H */
