/*
 * cu_kernels.h -- the kernels of the CUDA module, as extern "C" launchers
 * (cuda/stats_kernels.cu, cuda/score_kernels.cu) called from the module's
 * C files. Every launcher enqueues on `stream` and returns the launch's
 * cudaError_t (cudaGetLastError), or cudaErrorInvalidValue for sizes the
 * kernels do not take. Indices into the data are 64-bit throughout.
 *
 * Included by C11 and by CUDA C++; needs only the CUDA runtime API header.
 */
#ifndef GMLE_CU_KERNELS_H
#define GMLE_CU_KERNELS_H

#include "cu_plan.h"

#include <cuda_runtime_api.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Rows of a class first seen in a device batch averaged for its shift:
 * its first rows in its first segment (cu_plan.h). */
#define GMLE__CU_SHIFT_ROWS 1024
/* Threads per block of the statistics kernels. */
#define GMLE__CU_THREADS 256

/* The chunk, group and geometry types are the plan's (cu_plan.h, pure
 * host C). */

/* The rows a statistics kernel reads. */
typedef struct gmle__cu_input {
  const void *x; /* float or double, row r at x + r*stride */
  int f64;       /* 1: double */
  int64_t stride, dim;
  const uint32_t *idx; /* routed order -> row, or NULL (identity) */
  const double *w;     /* weight of each row, or NULL (all 1) */
  const double *shift; /* [slots*dim] */
} gmle__cu_input;

/* First offending positions of a scan (UINT64_MAX: none). */
typedef struct gmle__cu_scan_result {
  unsigned long long bad_cell;       /* row*dim + col of the first NaN/Inf */
  unsigned long long bad_label_row;  /* first label outside [0, C) */
  unsigned long long bad_weight_row; /* first negative or non-finite weight */
  unsigned long long any_positive;   /* 1 when some weight is > 0 */
} gmle__cu_scan_result;

/* ---- statistics (stats_kernels.cu) ---- */

/* Gram tile edge for dim features: 16, 32 or 64. */
int gmle__cu_gram_tile(int64_t dim);
/* Lower-triangle tiles of a dim x dim Gram matrix with tile edge t. */
int64_t gmle__cu_gram_tiles(int64_t dim, int t);

/* Routing keys of n <= INT32_MAX labelled rows, whose sub-batch is cut into
 * segments of seg rows (cu_plan.h): keys[i] = labels[i] * nseg + i / seg,
 * and rows[i] = i. The caller keeps n_labels * nseg <= 2^32. */
cudaError_t gmle__cu_route_keys(const int32_t *labels, int64_t n, int64_t seg,
                                int64_t nseg, uint32_t *keys, uint32_t *rows,
                                cudaStream_t stream);
/* Scratch bytes of a stable radix sort of n (key, value) pairs. */
cudaError_t gmle__cu_sort_bytes(int64_t n, size_t *bytes);
/* Stable sort of n <= INT32_MAX uint32 keys with values by bits
 * [0, end_bit). */
cudaError_t gmle__cu_sort(void *scratch, size_t scratch_bytes,
                          const uint32_t *keys_in, uint32_t *keys_out,
                          const uint32_t *vals_in, uint32_t *vals_out,
                          int64_t n, int end_bit, cudaStream_t stream);
/* start[k], end[k] of every key present in the sorted keys (the caller
 * zeroes both arrays first): with the keys of gmle__cu_route_keys, the
 * bounds of every (label, segment). */
cudaError_t gmle__cu_bounds(const uint32_t *keys, int64_t n, uint32_t *start,
                            uint32_t *end, cudaStream_t stream);
/* Weights, sums and (diag) sums of squares of every chunk. Partials hold
 * 1 + 2*dim doubles: weight, sums, squares. */
cudaError_t gmle__cu_moments(const gmle__cu_input *in,
                             const gmle__cu_chunk *chunks, int64_t n_chunks,
                             int diag, double *acc_w, double *acc_sum,
                             double *acc_sq, double *part, cudaStream_t stream);
/* Lower-triangle Gram tiles of every chunk (tile edge t); partials hold
 * gmle__cu_gram_tiles(dim, t) * t * t doubles. acc_gram: [slots*dim*dim]. */
cudaError_t gmle__cu_gram(const gmle__cu_input *in,
                          const gmle__cu_chunk *chunks, int64_t n_chunks, int t,
                          double *acc_gram, double *part, cudaStream_t stream);
cudaError_t gmle__cu_reduce_moments(const gmle__cu_group *groups,
                                    int64_t n_groups, int64_t dim, int diag,
                                    const double *part, double *acc_w,
                                    double *acc_sum, double *acc_sq,
                                    cudaStream_t stream);
cudaError_t gmle__cu_reduce_gram(const gmle__cu_group *groups, int64_t n_groups,
                                 int64_t dim, int t, const double *part,
                                 double *acc_gram, cudaStream_t stream);
/* For each entry: shift[slot] = mean of rows at routed positions
 * [begin, end), summed in order (rounded to float for float input). */
cudaError_t gmle__cu_choose_shift(const gmle__cu_input *in,
                                  const gmle__cu_chunk *list, int64_t n,
                                  double *shift, cudaStream_t stream);
/* Validation of a device batch: first NaN/Inf cell, first label outside
 * [0, n_classes) (labels may be NULL), first bad weight (weights may be
 * NULL); present[c] is set to 1 for every class seen when present is not
 * NULL (zeroed by the caller). res must be initialised first
 * (gmle__cu_scan_init). */
cudaError_t gmle__cu_scan_init(gmle__cu_scan_result *res, cudaStream_t stream);
cudaError_t gmle__cu_scan(const void *x, int f64, int64_t n, int64_t dim,
                          int64_t stride, const int32_t *labels,
                          int64_t n_classes, const double *weights,
                          unsigned long long *present,
                          gmle__cu_scan_result *res, cudaStream_t stream);

/* ---- scoring (score_kernels.cu) ---- */

/* An empty kernel: fails with cudaErrorNoKernelImageForDevice when this
 * build has no code for the current device. */
cudaError_t gmle__cu_probe(cudaStream_t stream);

/* Xc[r*P + j] = x[r*stride + j] - center[j]; mode 1 (diag) also
 * Xc[r*P + D + j] = Xc[r*P + j]^2; mode 2 (spherical) Xc[r*P + D] =
 * sum_j Xc[r*P + j]^2 (in column order). */
cudaError_t gmle__cu_centre(const void *x, int f64, int64_t n, int64_t dim,
                            int64_t stride, const double *center, int64_t P,
                            int mode, double *Xc, cudaStream_t stream);
/* J[r*C + active[a]] = lconst[a] - q/2 for a in [a0, a0+an), where
 * q = sum_i (Z[r*ldz + (a-a0)*zcs + i] - b[a*D + i])^2 (zcs = D for full
 * covariances, 0 for tied). */
cudaError_t gmle__cu_reduce_full(const double *Z, int64_t ldz, int64_t zcs,
                                 const double *b, const double *lconst,
                                 const int32_t *active, int64_t a0, int64_t an,
                                 int64_t n, int64_t dim, int64_t C, double *J,
                                 cudaStream_t stream);
/* Diagonal/spherical: q = Q[r*Ca + a] + b[a], recomputed from x, means and
 * standard deviations sd when b[a] > 16 (q + D) (the expanded form's
 * cancellation, as host/score_cpu.c). */
cudaError_t gmle__cu_reduce_diag(const double *Q, int64_t Ca, const double *b,
                                 const double *lconst, const int32_t *active,
                                 int64_t n, int64_t dim, int64_t C, int diag,
                                 const void *x, int f64, int64_t stride,
                                 const double *means, const double *sd,
                                 double *J, cudaStream_t stream);
/* EM, full covariances: for one component, Z[r*dim + j] = sqrt(v_r)
 * (Y[r*ldy + j] - kp[j]) and sv[r] = sqrt(v_r), where v_r = R[r*ldr] is
 * row r's responsibility (>= 0). */
cudaError_t gmle__cu_resp_scale(const double *Y, int64_t ldy, const double *R,
                                int64_t ldr, const double *kp, int64_t n,
                                int64_t dim, double *Z, double *sv,
                                cudaStream_t stream);
/* Outputs of n rows from their log-likelihoods J (n x C; entries of empty
 * classes are ignored and read as -inf). what: gmle_output; out_f64: 1 for
 * double output, 0 for float (LABEL writes int32). */
cudaError_t gmle__cu_emit(const double *J, int64_t n, int64_t C,
                          const unsigned char *empty, const double *log_priors,
                          int what, int out_f64, void *out,
                          cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif /* GMLE_CU_KERNELS_H */
