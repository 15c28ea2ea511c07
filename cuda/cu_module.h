/*
 * cu_module.h -- internals of the CUDA module (libgmle_cuda.so): the
 * per-context state, error mapping, fault injection and the device/pinned
 * workspace. Host C11; the kernels are behind cu_kernels.h.
 */
#ifndef GMLE_CU_MODULE_H
#define GMLE_CU_MODULE_H

#include "cu_classify.h"
#include "cu_kernels.h"
#include "cuda_abi.h"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <stdio.h>
#include <stdlib.h>

#if defined(__GNUC__) || defined(__clang__)
#define GMLE__CU_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define GMLE__CU_PRINTF(a, b)
#endif

/* Staging slots of the host-to-device ring. */
#define CU_NSLOT 3

/* Device buffers, grown on demand and kept for the context's lifetime
 * (released and re-made smaller after an out-of-memory). */
enum cu_dev_buf {
  DB_X0, /* slots: x, then labels, then weights */
  DB_X1,
  DB_X2,
  DB_KEYS_IN, /* routing keys (label, segment) */
  DB_KEYS,    /* sorted keys */
  DB_IDX,     /* routed order (sorted row indices) */
  DB_IOTA,    /* 0..n-1 */
  DB_SORT,    /* CUB scratch */
  DB_BOUNDS,  /* start/end of every label value */
  DB_META,    /* chunk table, groups, shift list */
  DB_PART_M,  /* moment partials */
  DB_PART_G,  /* Gram partials */
  DB_ACC,     /* accumulators: weight, sum, gram (EM: its products) */
  DB_SHIFT,   /* shifts of the output slots */
  DB_SCAN,    /* validation result, presence flags */
  DB_SC_X,    /* scoring and EM (cu_em.c): rows */
  DB_SC_XC,   /* scoring and EM: centred rows */
  DB_SC_J,    /* scoring: n x C log-likelihoods; EM: n x G responsibilities */
  DB_SC_Z,    /* scoring: GEMM output; EM: one component's scaled rows */
  DB_SC_OUT,  /* scoring: output */
  DB_BLAS,    /* cuBLAS workspace */
  DB_N
};

/* Pinned host buffers. */
enum cu_host_buf {
  HB_X0, /* staging slots */
  HB_X1,
  HB_X2,
  HB_META, /* bounds in, chunk table out */
  HB_SC_X, /* scoring and EM staging */
  HB_SC_OUT,
  HB_N
};

typedef struct cu_buf {
  void *p;
  size_t bytes;
} cu_buf;

typedef struct cu_state {
  gmle__cuda_hctx *h; /* the host context, for messages */
  int device;
  int sms;
  int cc_major, cc_minor;
  size_t total_mem;
  int n_threads; /* host threads for staging copies */
  cudaStream_t copy, compute;
  cudaEvent_t copied[CU_NSLOT], consumed[CU_NSLOT], meta_ready, meta_used;
  cublasHandle_t blas;
  int lost;
  char lost_msg[640];
  /* fault injection */
  gmle_cuda_fault fault;
  long fault_at;
  unsigned fault_sites; /* GMLE__CU_SITE_* counted (OOM: allocations) */
  long calls;           /* counted since the last arm */
  cu_buf dev[DB_N];
  cu_buf host[HB_N];
} cu_state;

/* The host services libgmle lent the module (cu_backend.c). */
extern const gmle__cuda_host *gmle__cu_host;

/* Record a message on the host context h, with the batch, row, column or
 * class it names (loc; NULL: none), and return s. */
gmle_status gmle__cu_error_at(gmle__cuda_hctx *h, gmle_status s,
                              const gmle_error_location *loc, const char *fmt,
                              ...) GMLE__CU_PRINTF(4, 5);
#define gmle__cu_error(h, s, ...) gmle__cu_error_at((h), (s), NULL, __VA_ARGS__)
void gmle__cu_log(gmle__cuda_hctx *h, gmle_log_level lvl, const char *fmt, ...)
    GMLE__CU_PRINTF(3, 4);

/* Fault injection: the error to return instead of making the next call, at
 * call site `site` (GMLE__CU_SITE_*; cudaSuccess: make it). Counts the call
 * when the armed fault selects its site. */
cudaError_t gmle__cu_inject(cu_state *S, unsigned site);
/* Map a CUDA error of `what` to a status with a message naming the call,
 * the error's name and number: cudaErrorMemoryAllocation ->
 * GMLE_E_DEVICE_OOM (error cleared, free/total memory named); sticky
 * errors -> GMLE_E_DEVICE_LOST (the context is marked lost); others ->
 * GMLE_E_DEVICE (error cleared). */
gmle_status gmle__cu_fail(cu_state *S, cudaError_t e, const char *what, ...)
    GMLE__CU_PRINTF(3, 4);
gmle_status gmle__cu_blas_fail(cu_state *S, cublasStatus_t e, const char *what,
                               ...) GMLE__CU_PRINTF(3, 4);

/* Start of every entry point: GMLE_E_DEVICE_LOST on a lost context, else
 * make the context's device current. */
gmle_status gmle__cu_enter(cu_state *S);

/* A device (pinned host) buffer of at least `bytes`, grown as needed. */
gmle_status gmle__cu_dev(cu_state *S, int id, size_t bytes, void **p);
gmle_status gmle__cu_pinned(cu_state *S, int id, size_t bytes, void **p);
/* Release every cached buffer (after an out-of-memory). */
void gmle__cu_release_all(cu_state *S);
/* Wait for both streams, ignoring errors (cleanup paths). */
void gmle__cu_quiesce(cu_state *S);
/* After a failed call: wait for both streams; a sticky error found there
 * (a fault of work already queued) marks the context lost and is returned
 * as GMLE_E_DEVICE_LOST, else st. */
gmle_status gmle__cu_settle(cu_state *S, gmle_status st);
/* Free device memory, in bytes (0 if unknown). */
size_t gmle__cu_free_mem(cu_state *S);

/* Copy rows of a strided host matrix into a dense buffer (several threads
 * for large copies). */
void gmle__cu_pack_rows(cu_state *S, void *dst, const void *src, size_t n,
                        size_t row_bytes, size_t src_stride_bytes);
/* 1 when p is pinned (page-locked) host memory. */
int gmle__cu_is_pinned(const void *p);
/* 0 when p is device-accessible memory of device `dev`, else -1 with a
 * description in buf. */
int gmle__cu_check_device_ptr(const void *p, int dev, char *buf, size_t len);

/* cu_stats.c (entries of the module table, cuda_abi.h) */
gmle_status gmle__cu_accumulate(void *state, const gmle__cuda_batch_view *b,
                                gmle__cuda_partial_view *out);
gmle_status gmle__cu_add_device(void *state, const gmle__cuda_dev_batch *b,
                                gmle__cuda_dev_result *out);
/* cu_em.c (an entry of the module table, cuda_abi.h) */
gmle_status gmle__cu_accumulate_resp(void *state, const gmle__cuda_resp_view *b,
                                     const gmle__cuda_resp_out_view *out);
/* cu_score.c (entries of the module table, cuda_abi.h) */
gmle_status gmle__cu_prepare_model(void *state, const gmle__cuda_model_view *m,
                                   void **model_data);
void gmle__cu_free_model(void *state, void *model_data);
gmle_status gmle__cu_score(void *state, const gmle__cuda_model_view *m,
                           const void *model_data,
                           const gmle__cuda_batch_view *b, gmle_output what,
                           gmle_dtype out_dtype, void *out);
gmle_status gmle__cu_score_device(void *state, const gmle__cuda_model_view *m,
                                  const void *model_data, const void *d_x,
                                  gmle_dtype dtype, size_t n_rows,
                                  size_t row_stride, gmle_output what,
                                  gmle_dtype out_dtype, void *d_out);

/* Check a CUDA call (after fault injection); on failure set `st` and jump
 * to `done`. The remaining arguments name the call (printf format). */
#define CU_TRY(S, expr, ...)                                                   \
  do {                                                                         \
    cudaError_t cu_e_ = gmle__cu_inject((S), gmle__cu_site_of(#expr));         \
    if (cu_e_ == cudaSuccess)                                                  \
      cu_e_ = (expr);                                                          \
    if (cu_e_ != cudaSuccess) {                                                \
      st = gmle__cu_fail((S), cu_e_, __VA_ARGS__);                             \
      goto done;                                                               \
    }                                                                          \
  } while (0)

#define CUBLAS_TRY(S, expr, ...)                                               \
  do {                                                                         \
    cudaError_t cu_i_ = gmle__cu_inject((S), GMLE__CU_SITE_BLAS);              \
    if (cu_i_ == cudaErrorInvalidValue) {                                      \
      st = gmle__cu_blas_fail((S), CUBLAS_STATUS_EXECUTION_FAILED,             \
                              __VA_ARGS__);                                    \
      goto done;                                                               \
    } else if (cu_i_ != cudaSuccess) {                                         \
      st = gmle__cu_fail((S), cu_i_, __VA_ARGS__);                             \
      goto done;                                                               \
    }                                                                          \
    cublasStatus_t cu_b_ = (expr);                                             \
    if (cu_b_ != CUBLAS_STATUS_SUCCESS) {                                      \
      st = gmle__cu_blas_fail((S), cu_b_, __VA_ARGS__);                        \
      goto done;                                                               \
    }                                                                          \
  } while (0)

/* A status from a helper: on failure jump to `done`. */
#define CU_CHECK(expr)                                                         \
  do {                                                                         \
    st = (expr);                                                               \
    if (st != GMLE_OK)                                                         \
      goto done;                                                               \
  } while (0)

#endif /* GMLE_CU_MODULE_H */
