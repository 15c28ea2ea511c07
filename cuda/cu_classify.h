/*
 * cu_classify.h -- how the CUDA module sorts errors and call sites: pure
 * host C (no CUDA header; CUDA error codes as the integers the runtime
 * documents, checked against the runtime's enum in cu_backend.c), so that
 * tests/test_cuda_plan.c checks it without a GPU.
 */
#ifndef GMLE_CU_CLASSIFY_H
#define GMLE_CU_CLASSIFY_H

#ifdef __cplusplus
extern "C" {
#endif

/* What a CUDA runtime error means for the context. */
typedef enum gmle__cu_kind {
  GMLE__CU_TRANSIENT = 0, /* cleared; the context goes on (GMLE_E_DEVICE) */
  GMLE__CU_OOM = 1,       /* cleared; split and retry (GMLE_E_DEVICE_OOM) */
  GMLE__CU_STICKY = 2     /* the CUDA context is unusable: the gmle context
                             is lost (GMLE_E_DEVICE_LOST) */
} gmle__cu_kind;

/* The kind of cudaError_t `e` (an int here). */
gmle__cu_kind gmle__cu_error_kind(int e);

/* Call sites, as gmle_cuda_site (include/gmle_cuda.h) numbers them. */
#define GMLE__CU_SITE_ALLOC 1u
#define GMLE__CU_SITE_COPY 2u
#define GMLE__CU_SITE_KERNEL 4u
#define GMLE__CU_SITE_BLAS 8u
#define GMLE__CU_SITE_SYNC 16u
#define GMLE__CU_SITE_ALL 31u

/* The site of a checked call from its source text (the CU_TRY macro's
 * stringified expression): cudaMemcpy / cudaMemset -> COPY, cudaStream /
 * cudaEvent -> SYNC, cudaMalloc / cudaHostAlloc -> ALLOC, cublas -> BLAS,
 * anything else (the module's kernel launchers gmle__cu_*) -> KERNEL. */
unsigned gmle__cu_site_of(const char *expr);

#ifdef __cplusplus
}
#endif

#endif /* GMLE_CU_CLASSIFY_H */
