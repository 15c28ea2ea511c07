/* cuda_testing.h -- the CUDA backend's fault-injection hooks, for tests only
 * (tests/test_cuda.c, linked with gmle_internal). Not installed and not
 * exported by libgmle: a user of gmle_cuda.h never sees them. Implemented in
 * cuda/loader.c, forwarded to the module (cuda/cu_backend.c). */
#ifndef GMLE_CUDA_TESTING_H
#define GMLE_CUDA_TESTING_H

#include "gmle.h"

/* Fault injection, for tests: after this call the k-th CUDA or cuBLAS call
 * made for ctx (k >= 1) fails instead of running. GMLE_CUDA_FAULT_ERROR
 * fails it with a non-sticky error (cudaErrorInvalidValue, or
 * CUBLAS_STATUS_EXECUTION_FAILED for a cuBLAS call): GMLE_E_DEVICE, the
 * context goes on. GMLE_CUDA_FAULT_OOM counts only device and pinned
 * allocations and fails the k-th with cudaErrorMemoryAllocation:
 * GMLE_E_DEVICE_OOM unless a split batch fits. GMLE_CUDA_FAULT_STICKY fails
 * it with cudaErrorIllegalAddress, which marks the context lost
 * (GMLE_E_DEVICE_LOST on that call and every later one). k = 0 or
 * GMLE_CUDA_FAULT_NONE disarms. The environment variable
 * GMLE_CUDA_FAIL_AT=k[:error|oom|sticky] arms the same at context
 * creation. GMLE_E_UNSUPPORTED for contexts that are not CUDA. */
typedef enum gmle_cuda_fault {
  GMLE_CUDA_FAULT_NONE = 0,
  GMLE_CUDA_FAULT_ERROR = 1,
  GMLE_CUDA_FAULT_OOM = 2,
  GMLE_CUDA_FAULT_STICKY = 3
} gmle_cuda_fault;
gmle_status gmle__cuda_inject_fault(gmle_context *ctx, gmle_cuda_fault kind,
                                    long k);

/* Kinds of call sites, for gmle__cuda_inject_fault_at (a bit mask). */
typedef enum gmle_cuda_site {
  GMLE_CUDA_SITE_ALLOC = 1,  /* cudaMalloc, cudaHostAlloc */
  GMLE_CUDA_SITE_COPY = 2,   /* cudaMemcpy*, cudaMemset* */
  GMLE_CUDA_SITE_KERNEL = 4, /* kernel launches (CUB's sort included) */
  GMLE_CUDA_SITE_BLAS = 8,   /* cuBLAS calls */
  GMLE_CUDA_SITE_SYNC = 16,  /* stream and event waits, records, syncs */
  GMLE_CUDA_SITE_ALL = 31
} gmle_cuda_site;

/* gmle__cuda_inject_fault counting only the calls at `sites` (a mask of
 * gmle_cuda_site; 0 means all): the k-th such call fails with `kind`.
 * GMLE_CUDA_FAULT_OOM always counts allocations only. GMLE_E_INVALID_ARG
 * for an unknown kind or site bit. */
gmle_status gmle__cuda_inject_fault_at(gmle_context *ctx, gmle_cuda_fault kind,
                                       unsigned sites, long k);

/* The calls counted (as for the fault armed) since the last
 * gmle__cuda_inject_fault(_at) on ctx; -1 for contexts that are not CUDA.
 * A sweep over k stops once k exceeds the count of a fault-free run. */
long gmle__cuda_call_count(const gmle_context *ctx);

#endif /* GMLE_CUDA_TESTING_H */
