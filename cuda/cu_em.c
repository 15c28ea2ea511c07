/* cu_em.c -- EM's responsibility-weighted statistics on the device (the
 * module's accumulate_resp, cuda_abi.h), in the GEMM form of the CPU's
 * host/em_accum.c.
 *
 * The rows are uploaded as given (float32 or float64) with their n x G
 * responsibilities R, and centred on the device, in float64, on the mean m
 * of the components' shifts (Y = X - m, so that |mean| >> std does not
 * cancel); k'_g = k_g - m (both from the loader, as the CPU's):
 *   diag: [T | Q] = R^T [Y | Y o Y], one cublasDgemm per block of rows,
 *         combined on the host as the CPU does: sum_g = T_g - n_g k'_g,
 *         gram_gj = Q_gj - k'_gj (2 T_gj - n_g k'_gj);
 *   full: per component, Z = sqrt(r) (Y - k'_g) (a kernel), then
 *         gram_g += Z^T Z (cublasDsyrk) and sum_g += Z^T sqrt(r)
 *         (cublasDgemv): exact around k_g, no expansion.
 * The weights n_g and the row counts are summed on the host, from the
 * responsibilities it holds anyway. Everything is float64 (cuBLAS in its
 * default math, no TF32); rows of zero responsibility are not skipped
 * (they add zeros).
 *
 * Order and memory: the products run over blocks of a fixed number of rows
 * (a function of the shape only) and add into float64 accumulators on the
 * device in block order; the rows are staged in passes of whole blocks,
 * bounded by EM_BUDGET bytes. Out of device memory, the cached buffers are
 * released and the call runs again from the start with passes of a quarter
 * as many blocks, down to one block: the statistics are bit-identical to an
 * undisturbed run's. Nothing reaches the caller's arrays unless the whole
 * call succeeded. The device buffers are the scoring ones (an EM iteration
 * scores a batch, then accumulates it, on one context), so EM holds no
 * more device memory than scoring. */
#include "cu_module.h"

#include <limits.h>
#include <string.h>

/* Bytes of staged rows (as given, as float64, and their responsibilities)
 * per pass. */
#define EM_BUDGET ((size_t)256 << 20)
/* Bytes of float64 products per block of rows, and its bounds in rows. */
#define EM_BLOCK_BYTES ((size_t)8 << 20)
#define EM_BLOCK_MIN ((size_t)256)
#define EM_BLOCK_MAX ((size_t)16384)

/* The shape of one call. */
typedef struct em_shape {
  size_t n, D, G;
  size_t P;     /* columns of the centred rows: 2D (diag: Y and Y o Y) or D */
  size_t block; /* rows per GEMM / SYRK */
  size_t isz;   /* bytes per element of the rows as given */
  size_t acc_n; /* doubles accumulated on the device */
  int diag, f64;
} em_shape;

static em_shape shape_of(const gmle__cuda_resp_view *b) {
  em_shape sh;
  memset(&sh, 0, sizeof sh);
  sh.n = b->n_rows;
  sh.D = b->dim;
  sh.G = b->n_comp;
  sh.diag = b->diag != 0;
  sh.f64 = b->dtype == GMLE_F64;
  sh.isz = sh.f64 ? 8 : 4;
  sh.P = sh.diag ? 2 * sh.D : sh.D;
  /* diag: [T | Q] per component; full: Gram matrices, then sums */
  sh.acc_n = sh.diag ? sh.G * sh.P : sh.G * sh.D * sh.D + sh.G * sh.D;
  const size_t per_row = 8 * (sh.P + sh.G + (sh.diag ? 0 : sh.D + 1));
  size_t block = EM_BLOCK_BYTES / per_row;
  block = block < EM_BLOCK_MIN ? EM_BLOCK_MIN : block;
  sh.block = block > EM_BLOCK_MAX ? EM_BLOCK_MAX : block;
  return sh;
}

/* Blocks per pass within the budget (at least one, at most all). */
static size_t first_blocks_per_pass(const em_shape *sh) {
  const size_t n_blocks = (sh->n + sh->block - 1) / sh->block;
  const size_t per_block =
      sh->block * (2 * sh->D * sh->isz + 8 * (sh->G + sh->P));
  size_t k = EM_BUDGET / per_block;
  k = k < 1 ? 1 : k;
  return k > n_blocks ? n_blocks : k;
}

/* The products of one block of nb rows (centred rows Y, responsibilities
 * R, both at the block's first row) into the accumulators. */
static gmle_status block_products(cu_state *S, const em_shape *sh,
                                  const double *Y, const double *R, size_t nb,
                                  const double *d_kp, double *acc, double *Z) {
  gmle_status st = GMLE_OK;
  const size_t D = sh->D, G = sh->G, P = sh->P;
  const double one = 1.0;
  if (sh->diag)
    CUBLAS_TRY(
        S,
        cublasDgemm(S->blas, CUBLAS_OP_N, CUBLAS_OP_T, (int)P, (int)G, (int)nb,
                    &one, Y, (int)P, R, (int)G, &one, acc, (int)P),
        "cublasDgemm(%zu x %zu x %zu, EM diagonal statistics)", P, G, nb);
  double *sv = sh->diag ? NULL : Z + sh->block * D;
  for (size_t g = 0; !sh->diag && g < G; g++) {
    CU_TRY(S,
           gmle__cu_resp_scale(Y, (int64_t)P, R + g, (int64_t)G, d_kp + g * D,
                               (int64_t)nb, (int64_t)D, Z, sv, S->compute),
           "launching the responsibility-scaling kernel (component %zu)", g);
    /* Column-major upper triangle = the row-major lower one. */
    CUBLAS_TRY(
        S,
        cublasDsyrk(S->blas, CUBLAS_FILL_MODE_UPPER, CUBLAS_OP_N, (int)D,
                    (int)nb, &one, Z, (int)D, &one, acc + g * D * D, (int)D),
        "cublasDsyrk(%zu x %zu, EM Gram matrix of component %zu)", D, nb, g);
    CUBLAS_TRY(S,
               cublasDgemv(S->blas, CUBLAS_OP_N, (int)D, (int)nb, &one, Z,
                           (int)D, sv, 1, &one, acc + G * D * D + g * D, 1),
               "cublasDgemv(%zu x %zu, EM sums of component %zu)", D, nb, g);
  }
done:
  return st;
}

/* The whole call in passes of k blocks; the accumulators are copied into
 * acc_out. */
static gmle_status run(cu_state *S, const gmle__cuda_resp_view *b,
                       const em_shape *sh, size_t k, double *acc_out) {
  gmle_status st = GMLE_OK;
  const size_t n = sh->n, D = sh->D, G = sh->G, P = sh->P, isz = sh->isz;
  const size_t pass = k * sh->block < n ? k * sh->block : n;
  void *p;
  CU_CHECK(gmle__cu_dev(S, DB_ACC, (sh->acc_n + D + G * D) * 8, &p));
  double *acc = p, *d_m = acc + sh->acc_n, *d_kp = d_m + D;
  CU_CHECK(gmle__cu_dev(S, DB_SC_X, pass * D * isz, &p));
  char *dx = p;
  CU_CHECK(gmle__cu_dev(S, DB_SC_J, pass * G * 8, &p));
  double *dR = p;
  CU_CHECK(gmle__cu_dev(S, DB_SC_XC, pass * P * 8, &p));
  double *dY = p;
  double *dZ = NULL;
  if (!sh->diag) {
    CU_CHECK(gmle__cu_dev(S, DB_SC_Z, sh->block * (D + 1) * 8, &p));
    dZ = p;
  }
  const int direct = b->row_stride == D && gmle__cu_is_pinned(b->x);
  char *hx = NULL;
  if (!direct) {
    CU_CHECK(gmle__cu_pinned(S, HB_SC_X, pass * D * isz, &p));
    hx = p;
  }
  CU_TRY(S, cudaMemsetAsync(acc, 0, sh->acc_n * 8, S->compute),
         "cudaMemsetAsync(EM accumulators)");
  CU_TRY(S,
         cudaMemcpyAsync(d_m, b->centre, D * 8, cudaMemcpyHostToDevice,
                         S->compute),
         "cudaMemcpyAsync(EM centre, host to device)");
  CU_TRY(S,
         cudaMemcpyAsync(d_kp, b->kshift, G * D * 8, cudaMemcpyHostToDevice,
                         S->compute),
         "cudaMemcpyAsync(EM shifts, host to device)");
  for (size_t r0 = 0; r0 < n; r0 += pass) {
    const size_t ni = n - r0 < pass ? n - r0 : pass;
    const char *src = (const char *)b->x + r0 * b->row_stride * isz;
    if (!direct) {
      /* The previous pass's copy has read hx. */
      CU_TRY(S, cudaStreamSynchronize(S->compute),
             "cudaStreamSynchronize(EM staging)");
      gmle__cu_pack_rows(S, hx, src, ni, D * isz, b->row_stride * isz);
      src = hx;
    }
    CU_TRY(S,
           cudaMemcpyAsync(dx, src, ni * D * isz, cudaMemcpyHostToDevice,
                           S->compute),
           "cudaMemcpyAsync(%zu EM rows, host to device)", ni);
    CU_TRY(S,
           cudaMemcpyAsync(dR, b->resp + r0 * G, ni * G * 8,
                           cudaMemcpyHostToDevice, S->compute),
           "cudaMemcpyAsync(%zu x %zu responsibilities, host to device)", ni,
           G);
    CU_TRY(S,
           gmle__cu_centre(dx, sh->f64, (int64_t)ni, (int64_t)D, (int64_t)D,
                           d_m, (int64_t)P, sh->diag ? 1 : 0, dY, S->compute),
           "launching the centring kernel (%zu EM rows)", ni);
    for (size_t q = 0; q < ni; q += sh->block) {
      const size_t nb = ni - q < sh->block ? ni - q : sh->block;
      CU_CHECK(
          block_products(S, sh, dY + q * P, dR + q * G, nb, d_kp, acc, dZ));
    }
  }
  CU_TRY(S,
         cudaMemcpyAsync(acc_out, acc, sh->acc_n * 8, cudaMemcpyDeviceToHost,
                         S->compute),
         "cudaMemcpyAsync(EM statistics, device to host)");
  CU_TRY(S, cudaStreamSynchronize(S->compute),
         "cudaStreamSynchronize(EM statistics)");
done:
  if (st != GMLE_OK)
    st = gmle__cu_settle(S, st);
  return st;
}

/* Add the device's products and the host's weights into out. */
static void combine(const gmle__cuda_resp_view *b, const em_shape *sh,
                    const double *acc, double *nw,
                    const gmle__cuda_resp_out_view *out) {
  const double *kp = b->kshift;
  const size_t n = sh->n, D = sh->D, G = sh->G, P = sh->P;
  memset(nw, 0, G * sizeof(double));
  for (size_t r = 0; r < n; r++)
    for (size_t g = 0; g < G; g++) {
      const double v = b->resp[r * G + g];
      nw[g] += v;
      out->rows[g] += v > 0;
    }
  for (size_t g = 0; g < G; g++) {
    out->weight[g] += nw[g];
    if (sh->diag) {
      for (size_t j = 0; j < D; j++) {
        const double t = acc[g * P + j], q = acc[g * P + D + j];
        const double k = kp[g * D + j];
        out->sum[g * D + j] += t - nw[g] * k;
        out->gram[g * D + j] += q - k * (2.0 * t - nw[g] * k);
      }
      continue;
    }
    const double *gram = acc + g * D * D, *sum = acc + G * D * D + g * D;
    for (size_t i = 0; i < D; i++) {
      out->sum[g * D + i] += sum[i];
      for (size_t j = 0; j <= i; j++)
        out->gram[g * D * D + i * D + j] += gram[i * D + j];
    }
  }
}

gmle_status gmle__cu_accumulate_resp(void *state, const gmle__cuda_resp_view *b,
                                     const gmle__cuda_resp_out_view *out) {
  cu_state *S = state;
  gmle_status st = gmle__cu_enter(S);
  if (st != GMLE_OK || b->n_rows == 0 || b->n_comp == 0)
    return st;
  const em_shape sh = shape_of(b);
  if (sh.P > INT_MAX || sh.G > INT_MAX)
    return gmle__cu_error(S->h, GMLE_E_TOO_LARGE,
                          "CUDA: EM statistics of %zu components x %zu "
                          "features exceed cuBLAS's int dimensions",
                          sh.G, sh.D);
  const size_t G = sh.G;
  double *acc = malloc(sh.acc_n * sizeof(double));
  double *nw = malloc(G * sizeof(double));
  if (!acc || !nw) {
    st = gmle__cu_error(S->h, GMLE_E_OUT_OF_MEMORY,
                        "CUDA: out of host memory for the EM statistics of "
                        "%zu components x %zu features",
                        G, sh.D);
    goto done;
  }
  for (size_t k = first_blocks_per_pass(&sh);;) {
    st = run(S, b, &sh, k, acc);
    if (st != GMLE_E_DEVICE_OOM || k == 1)
      break;
    /* Out of device memory: smaller passes over the same blocks. */
    gmle__cu_release_all(S);
    k = k / 4 ? k / 4 : 1;
  }
  if (st == GMLE_OK)
    combine(b, &sh, acc, nw, out);
done:
  free(acc);
  free(nw);
  return st;
}
