/* em_accum.c -- the CPU backend's accumulate_resp (EM's M-step statistics,
 * src/em.c) in BLAS-3 form, on the context's OpenMP threads.
 *
 * Rows are taken in fixed blocks of BLOCK rows; each block is one thread's
 * work with a single-threaded BLAS call, and the blocks' partial sums are
 * added in block order: the result does not depend on the thread count,
 * and OpenBLAS's own threads never wake to compete with OpenMP's.
 *
 * diag: each block's rows are centred on the mean m of the components'
 *   shifts (y = x - m, in double, so that |mean| >> std does not cancel);
 *   with k'_g = k_g - m and R the responsibilities,
 *     T = R^T Y,  Q = R^T (Y o Y)                 (two GEMMs per block)
 *     sum_g = T_g - n_g k'_g,  gram_gj = Q_gj - k'_gj (2 T_gj - n_g k'_gj).
 *   The expansion around k'_g loses about eps (k'_g - mean_g)^2 / var_g
 *   relative: a few ulps when the shift is the component's previous mean
 *   (docs/MIXTURES.md, "Accuracy").
 * full: per component (one thread each), the rows z = sqrt(r) (x - k_g)
 *   of the rows with r > 0, and gram_g += Z^T Z by one SYRK per block:
 *   exact around k_g, no expansion.
 */
#include "internal.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#define BLOCK 2048

static double elem(const gmle__resp_batch *b, size_t r, size_t j) {
  return b->dtype == GMLE_F32
             ? (double)((const float *)b->x)[r * b->row_stride + j]
             : ((const double *)b->x)[r * b->row_stride + j];
}

/* The diagonal statistics: per block T_b, Q_b, then summed in order. */
static gmle_status resp_diag(gmle_context *ctx, const gmle__resp_batch *b,
                             const gmle__resp_out *out) {
  const size_t n = b->n_rows, D = b->dim, G = b->n_comp;
  const size_t nb = (n + BLOCK - 1) / BLOCK;
  double *part = gmle__malloc(nb * (2 * G * D + G) * sizeof(double));
  double *kp = gmle__malloc((G + 1) * D * sizeof(double));
  const int nt = gmle__blas_parallel_threads(omp_get_max_threads());
  double *ybuf = gmle__malloc((size_t)nt * BLOCK * D * sizeof(double));
  if (!part || !kp || !ybuf) {
    gmle__free(part);
    gmle__free(kp);
    gmle__free(ybuf);
    return gmle__error(ctx, GMLE_E_OUT_OF_MEMORY,
                       "EM: out of memory (%zu rows x %zu components)", n, G);
  }
  double *m = kp + G * D;
  gmle__em_centre(b->shift, G, D, m, kp);
  const ptrdiff_t NB = (ptrdiff_t)nb;
#pragma omp parallel for num_threads(nt) schedule(static)
  for (ptrdiff_t bi = 0; bi < NB; bi++) {
    const size_t r0 = (size_t)bi * BLOCK;
    const size_t rn = n - r0 < BLOCK ? n - r0 : BLOCK;
    double *Y = ybuf + (size_t)omp_get_thread_num() * BLOCK * D;
    double *T = part + (size_t)bi * (2 * G * D + G), *Q = T + G * D;
    double *nw = Q + G * D;
    for (size_t r = 0; r < rn; r++)
      for (size_t j = 0; j < D; j++)
        Y[r * D + j] = elem(b, r0 + r, j) - m[j];
    const double *R = b->resp + r0 * G;
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)G, (int)D,
                (int)rn, 1.0, R, (int)G, Y, (int)D, 0.0, T, (int)D);
    for (size_t i = 0; i < rn * D; i++)
      Y[i] *= Y[i];
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)G, (int)D,
                (int)rn, 1.0, R, (int)G, Y, (int)D, 0.0, Q, (int)D);
    memset(nw, 0, G * sizeof(double));
    for (size_t r = 0; r < rn; r++)
      for (size_t g = 0; g < G; g++)
        nw[g] += R[r * G + g];
  }
  for (size_t bi = 0; bi < nb; bi++) {
    const double *T = part + bi * (2 * G * D + G), *Q = T + G * D;
    const double *nw = Q + G * D;
    for (size_t g = 0; g < G; g++) {
      out->weight[g] += nw[g];
      for (size_t j = 0; j < D; j++) {
        const double k = kp[g * D + j];
        out->sum[g * D + j] += T[g * D + j] - nw[g] * k;
        out->gram[g * D + j] +=
            Q[g * D + j] - k * (2.0 * T[g * D + j] - nw[g] * k);
      }
    }
  }
  for (size_t r = 0; r < n; r++)
    for (size_t g = 0; g < G; g++)
      out->rows[g] += b->resp[r * G + g] > 0;
  gmle__free(part);
  gmle__free(kp);
  gmle__free(ybuf);
  return GMLE_OK;
}

/* The full statistics: components spread over the threads. */
static gmle_status resp_full(gmle_context *ctx, const gmle__resp_batch *b,
                             const gmle__resp_out *out) {
  const size_t n = b->n_rows, D = b->dim, G = b->n_comp;
  const int nt = gmle__blas_parallel_threads(omp_get_max_threads());
  double *zbuf = gmle__malloc((size_t)nt * BLOCK * D * sizeof(double));
  double *sbuf = gmle__malloc((size_t)nt * D * sizeof(double));
  if (!zbuf || !sbuf) {
    gmle__free(zbuf);
    gmle__free(sbuf);
    return gmle__error(ctx, GMLE_E_OUT_OF_MEMORY,
                       "EM: out of memory (%zu rows x %zu features)", n, D);
  }
  const ptrdiff_t NG = (ptrdiff_t)G;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
  for (ptrdiff_t gi = 0; gi < NG; gi++) {
    const size_t g = (size_t)gi, t = (size_t)omp_get_thread_num();
    double *Z = zbuf + t * BLOCK * D, *s = sbuf + t * D;
    const double *k = b->shift + g * D;
    double w = 0;
    uint64_t rows = 0;
    memset(s, 0, D * sizeof(double));
    size_t mz = 0;
    for (size_t r = 0; r <= n; r++) {
      if (r < n) {
        const double v = b->resp[r * G + g];
        if (!(v > 0))
          continue;
        const double sv = sqrt(v);
        double *z = Z + mz * D;
        for (size_t j = 0; j < D; j++) {
          const double d = elem(b, r, j) - k[j];
          z[j] = sv * d;
          s[j] += v * d;
        }
        w += v;
        rows++;
        mz++;
      }
      if (mz == BLOCK || (r == n && mz > 0)) {
        cblas_dsyrk(CblasRowMajor, CblasLower, CblasTrans, (int)D, (int)mz, 1.0,
                    Z, (int)D, 1.0, out->gram + g * D * D, (int)D);
        mz = 0;
      }
    }
    out->weight[g] += w;
    out->rows[g] += rows;
    for (size_t j = 0; j < D; j++)
      out->sum[g * D + j] += s[j];
  }
  gmle__free(zbuf);
  gmle__free(sbuf);
  return GMLE_OK;
}

gmle_status gmle__cpu_accumulate_resp(gmle_context *ctx,
                                      const gmle__resp_batch *b,
                                      const gmle__resp_out *out) {
  if (b->n_rows == 0)
    return GMLE_OK;
  /* Single-threaded BLAS inside the OpenMP loops (see the top). */
  const int token = gmle__blas_small_begin(0);
  const gmle_status s =
      b->diag ? resp_diag(ctx, b, out) : resp_full(ctx, b, out);
  gmle__blas_small_end(token);
  return s;
}
