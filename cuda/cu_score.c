/* cu_score.c -- bulk scoring on the device, in the GEMM form of
 * host/score_cpu.c, with the cache src/prepare.c builds (stacked inverse
 * Cholesky factors around a global centre m, which rows are centred on in
 * float64 so that |mean| >> std does not cancel):
 *   full:  Z = (X - m) [L_1^-1; ...; L_C^-1]^T, one cublasDgemm per tile of
 *          rows and classes; q_c = |Z_c - L_c^-1 (mu_c - m)|^2;
 *   tied:  Z = (X - m) L^-T once, q_c = |Z - L^-1 (mu_c - m)|^2;
 *   diag/spherical: q = [X - m, (X - m)^2] K + B_c, one cublasDgemm, where
 *          B_c = |(mu_c - m)/sigma_c|^2. Unlike host/score_cpu.c, which
 *          sums ((x - mu_c)/sigma_c)^2 directly (error about eps q), this
 *          expanded form has error about eps (|x - m|^2/sigma^2 + B_c):
 *          a class far from the centre in its own standard deviations
 *          loses digits. Where B_c > 16 (q + D) the reduction recomputes
 *          q directly; elsewhere B_c <= 16 (q + D) and |x - m|^2/sigma^2
 *          <= 2 q + 2 B_c, so the error is at most about 50 eps (q + D)
 *          (times the GEMM's inner length 2D in the worst case of
 *          rounding; test_cuda checks that bound against a long-double
 *          reference).
 * loglik_c = -1/2 (D log 2pi + log|Sigma_c| + q_c); the requested output
 * (log-likelihood, joint, log-posterior, label or mixture density) is
 * reduced on the device and only it is copied back. Everything is float64
 * (cublasDgemm, no TF32); full and tied covariances match the CPU backend
 * to ~1e-14 relative, diag and spherical to the bound above.
 *
 * Memory: the rows in float64 (n x P), the n x C log-likelihoods and one
 * GEMM tile, for tiles of rows bounded by SCORE_BUDGET bytes. */
#include "cu_module.h"

#include <string.h>

#define SCORE_BUDGET ((size_t)256 << 20)
#define MIN_BUDGET ((size_t)4 << 20)
#define MIN_TILE_ROWS ((size_t)256)

/* The model on the device: one allocation. */
typedef struct cu_model {
  void *block;
  int device;
  size_t Ca;
  double *center, *w, *b, *lconst, *lp, *means, *sd;
  int32_t *active;
  unsigned char *empty;
} cu_model;

static size_t al(size_t bytes) { return (bytes + 255) / 256 * 256; }

void gmle__cu_free_model(void *state, void *model_data) {
  cu_model *cm = model_data;
  (void)state;
  if (!cm)
    return;
  if (cudaSetDevice(cm->device) != cudaSuccess ||
      (cm->block && cudaFree(cm->block) != cudaSuccess))
    (void)cudaGetLastError();
  free(cm);
}

/* Upload the prepared model (its score cache, log priors, empty flags, and
 * for diag/spherical the means and standard deviations). */
static gmle_status upload(cu_state *S, const gmle__cuda_model_view *m,
                          cu_model **out) {
  gmle_status st = GMLE_OK;
  const gmle__cuda_model_view *sc = m; /* the score-cache arrays */
  const size_t D = m->dim, C = m->n_classes, Ca = sc->n_active;
  const int dg = m->cov == GMLE_COV_DIAG || m->cov == GMLE_COV_SPHERICAL;
  const size_t E = m->cov == GMLE_COV_DIAG ? D : 1;
  size_t w_len = 0, b_len = 0;
  switch (m->cov) {
  case GMLE_COV_FULL:
    w_len = Ca * D * D;
    b_len = Ca * D;
    break;
  case GMLE_COV_TIED:
    w_len = D * D;
    b_len = Ca * D;
    break;
  case GMLE_COV_DIAG:
  case GMLE_COV_SPHERICAL:
    w_len = (D + E) * Ca;
    b_len = Ca;
    break;
  }
  const size_t sd_len = m->cov == GMLE_COV_DIAG ? C * D : C;
  const size_t sz[9] = {
      al(D * 8), al(w_len * 8),          al(b_len * 8),           al(Ca * 8),
      al(C * 8), al(dg ? C * D * 8 : 0), al(dg ? sd_len * 8 : 0), al(Ca * 4),
      al(C)};
  size_t total = 0;
  for (int i = 0; i < 9; i++)
    total += sz[i];
  cu_model *cm = calloc(1, sizeof *cm);
  if (!cm)
    return gmle__cu_error(S->h, GMLE_E_OUT_OF_MEMORY,
                          "CUDA: out of host memory");
  cm->device = S->device;
  cm->Ca = Ca;
  int32_t *act = NULL;
  {
    cudaError_t e = gmle__cu_inject(S, GMLE__CU_SITE_ALLOC);
    if (e == cudaSuccess)
      e = cudaMalloc(&cm->block, total);
    if (e != cudaSuccess) {
      cm->block = NULL;
      st = gmle__cu_fail(S, e,
                         "cudaMalloc(%zu bytes for the model: %zu classes x "
                         "%zu features)",
                         total, C, D);
      goto done;
    }
  }
  {
    char *p = cm->block;
    cm->center = (double *)p;
    p += sz[0];
    cm->w = (double *)p;
    p += sz[1];
    cm->b = (double *)p;
    p += sz[2];
    cm->lconst = (double *)p;
    p += sz[3];
    cm->lp = (double *)p;
    p += sz[4];
    cm->means = (double *)p;
    p += sz[5];
    cm->sd = (double *)p;
    p += sz[6];
    cm->active = (int32_t *)p;
    p += sz[7];
    cm->empty = (unsigned char *)p;
  }
  act = malloc((Ca ? Ca : 1) * sizeof(int32_t));
  if (!act) {
    st = gmle__cu_error(S->h, GMLE_E_OUT_OF_MEMORY, "CUDA: out of host memory");
    goto done;
  }
  for (size_t a = 0; a < Ca; a++)
    act[a] = (int32_t)sc->active[a];
  CU_TRY(S, cudaMemcpy(cm->center, sc->center, D * 8, cudaMemcpyHostToDevice),
         "cudaMemcpy(model centre, host to device)");
  if (w_len)
    CU_TRY(S, cudaMemcpy(cm->w, sc->w, w_len * 8, cudaMemcpyHostToDevice),
           "cudaMemcpy(%zu bytes of inverse factors, host to device)",
           w_len * 8);
  if (b_len)
    CU_TRY(S, cudaMemcpy(cm->b, sc->b, b_len * 8, cudaMemcpyHostToDevice),
           "cudaMemcpy(model offsets, host to device)");
  if (Ca) {
    CU_TRY(S,
           cudaMemcpy(cm->lconst, sc->lconst, Ca * 8, cudaMemcpyHostToDevice),
           "cudaMemcpy(model constants, host to device)");
    CU_TRY(S, cudaMemcpy(cm->active, act, Ca * 4, cudaMemcpyHostToDevice),
           "cudaMemcpy(active classes, host to device)");
  }
  CU_TRY(S, cudaMemcpy(cm->lp, m->log_priors, C * 8, cudaMemcpyHostToDevice),
         "cudaMemcpy(log priors, host to device)");
  CU_TRY(S, cudaMemcpy(cm->empty, m->empty, C, cudaMemcpyHostToDevice),
         "cudaMemcpy(empty flags, host to device)");
  if (dg) {
    CU_TRY(S,
           cudaMemcpy(cm->means, m->means, C * D * 8, cudaMemcpyHostToDevice),
           "cudaMemcpy(means, host to device)");
    CU_TRY(S, cudaMemcpy(cm->sd, m->factor, sd_len * 8, cudaMemcpyHostToDevice),
           "cudaMemcpy(standard deviations, host to device)");
  }
done:
  free(act);
  if (st != GMLE_OK) {
    if (cm->block && cudaFree(cm->block) != cudaSuccess)
      (void)cudaGetLastError();
    free(cm);
    return st;
  }
  *out = cm;
  return GMLE_OK;
}

gmle_status gmle__cu_prepare_model(void *state, const gmle__cuda_model_view *m,
                                   void **model_data) {
  cu_state *S = state;
  *model_data = NULL;
  gmle_status st = gmle__cu_enter(S);
  if (st != GMLE_OK)
    return st;
  if (!m->has_cache)
    return GMLE_OK;
  /* Called at the model's first score on this context (the core caches
   * the result in the model). */
  cu_model *cm = NULL;
  st = upload(S, m, &cm);
  if (st == GMLE_E_DEVICE_OOM) {
    /* as scoring does: release the cached buffers and try once more */
    gmle__cu_release_all(S);
    st = upload(S, m, &cm);
  }
  if (st != GMLE_OK)
    return gmle__cu_settle(S, st);
  *model_data = cm;
  return GMLE_OK;
}

/* The model's device copy, uploaded by prepare_model at the model's first
 * score on this context (the core keeps it in the model). */
static gmle_status ensure_model(cu_state *S, const void *model_data,
                                const cu_model **out) {
  *out = model_data;
  if (!*out)
    return gmle__cu_error(S->h, GMLE_E_INTERNAL,
                          "score: the model has not been prepared for "
                          "scoring");
  return GMLE_OK;
}

/* Score n rows of device data x (row stride `stride`) into device out. */
static gmle_status score_rows(cu_state *S, const gmle__cuda_model_view *m,
                              const cu_model *cm, const void *x, int f64,
                              size_t n, size_t stride, gmle_output what,
                              int out_f64, void *out, size_t budget) {
  gmle_status st = GMLE_OK;
  const size_t D = m->dim, C = m->n_classes, Ca = cm->Ca;
  const int full = m->cov == GMLE_COV_FULL, tied = m->cov == GMLE_COV_TIED;
  const int diag = m->cov == GMLE_COV_DIAG;
  const size_t P = full || tied ? D : D + (diag ? D : 1);
  const size_t isz = f64 ? 8 : 4;
  const size_t osz = what == GMLE_OUT_LABEL ? 4 : out_f64 ? 8 : 4;
  const size_t per_row =
      what == GMLE_OUT_LABEL || what == GMLE_OUT_DENSITY ? 1 : C;
  /* Rows per tile and classes per GEMM (full). */
  const size_t zcols = full || tied ? D : (Ca ? Ca : 1);
  size_t nt = budget / (8 * (P + C + zcols));
  if (nt < MIN_TILE_ROWS)
    nt = MIN_TILE_ROWS;
  if (nt > n)
    nt = n;
  if (nt > (size_t)INT32_MAX / (P > C ? P : C))
    nt = (size_t)INT32_MAX / (P > C ? P : C);
  size_t cb = 1;
  if (full && Ca) {
    cb = budget / (8 * nt * D);
    if (cb < 1)
      cb = 1;
    if (cb > Ca)
      cb = Ca;
    if (cb * D > (size_t)INT32_MAX)
      cb = (size_t)INT32_MAX / D;
  }
  const size_t z_len = full ? nt * cb * D : tied ? nt * D : nt * zcols;
  void *p;
  CU_CHECK(gmle__cu_dev(S, DB_SC_XC, nt * P * 8, &p));
  double *Xc = p;
  CU_CHECK(gmle__cu_dev(S, DB_SC_J, nt * C * 8, &p));
  double *J = p;
  double *Z = NULL;
  if (Ca) {
    CU_CHECK(gmle__cu_dev(S, DB_SC_Z, z_len * 8, &p));
    Z = p;
  }
  const int mode = diag ? 1 : m->cov == GMLE_COV_SPHERICAL ? 2 : 0;
  const double one = 1.0, zero = 0.0;
  for (size_t r0 = 0; r0 < n; r0 += nt) {
    const size_t ni = n - r0 < nt ? n - r0 : nt;
    const char *xr = (const char *)x + r0 * stride * isz;
    if (Ca) {
      CU_TRY(S,
             gmle__cu_centre(xr, f64, (int64_t)ni, (int64_t)D, (int64_t)stride,
                             cm->center, (int64_t)P, mode, Xc, S->compute),
             "launching the centring kernel");
      if (full) {
        for (size_t a0 = 0; a0 < Ca; a0 += cb) {
          const size_t an = Ca - a0 < cb ? Ca - a0 : cb;
          CUBLAS_TRY(S,
                     cublasDgemm(S->blas, CUBLAS_OP_T, CUBLAS_OP_N,
                                 (int)(an * D), (int)ni, (int)D, &one,
                                 cm->w + a0 * D * D, (int)D, Xc, (int)D, &zero,
                                 Z, (int)(an * D)),
                     "cublasDgemm(%zu x %zu x %zu, inverse factors of "
                     "classes %zu..%zu)",
                     an * D, ni, D, a0, a0 + an - 1);
          CU_TRY(S,
                 gmle__cu_reduce_full(Z, (int64_t)(an * D), (int64_t)D, cm->b,
                                      cm->lconst, cm->active, (int64_t)a0,
                                      (int64_t)an, (int64_t)ni, (int64_t)D,
                                      (int64_t)C, J, S->compute),
                 "launching the quadratic-form kernel");
        }
      } else if (tied) {
        CUBLAS_TRY(S,
                   cublasDgemm(S->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)D,
                               (int)ni, (int)D, &one, cm->w, (int)D, Xc, (int)D,
                               &zero, Z, (int)D),
                   "cublasDgemm(%zu x %zu x %zu, tied inverse factor)", D, ni,
                   D);
        CU_TRY(S,
               gmle__cu_reduce_full(Z, (int64_t)D, 0, cm->b, cm->lconst,
                                    cm->active, 0, (int64_t)Ca, (int64_t)ni,
                                    (int64_t)D, (int64_t)C, J, S->compute),
               "launching the quadratic-form kernel");
      } else {
        CUBLAS_TRY(S,
                   cublasDgemm(S->blas, CUBLAS_OP_N, CUBLAS_OP_N, (int)Ca,
                               (int)ni, (int)P, &one, cm->w, (int)Ca, Xc,
                               (int)P, &zero, Z, (int)Ca),
                   "cublasDgemm(%zu x %zu x %zu, diagonal coefficients)", Ca,
                   ni, P);
        CU_TRY(S,
               gmle__cu_reduce_diag(Z, (int64_t)Ca, cm->b, cm->lconst,
                                    cm->active, (int64_t)ni, (int64_t)D,
                                    (int64_t)C, diag, xr, f64, (int64_t)stride,
                                    cm->means, cm->sd, J, S->compute),
               "launching the diagonal quadratic-form kernel");
      }
    }
    CU_TRY(S,
           gmle__cu_emit(J, (int64_t)ni, (int64_t)C, cm->empty, cm->lp,
                         (int)what, out_f64, (char *)out + r0 * per_row * osz,
                         S->compute),
           "launching the output kernel");
  }
done:
  return st;
}

static gmle_status score_host(cu_state *S, const gmle__cuda_model_view *m,
                              const void *model_data,
                              const gmle__cuda_batch_view *b, gmle_output what,
                              gmle_dtype out_dtype, void *out, size_t budget) {
  gmle_status st = GMLE_OK;
  const cu_model *cm = NULL;
  CU_CHECK(ensure_model(S, model_data, &cm));
  {
    const size_t D = m->dim, C = m->n_classes, n = b->n_rows;
    const int f64 = b->dtype == GMLE_F64, out_f64 = out_dtype == GMLE_F64;
    const size_t isz = f64 ? 8 : 4;
    const size_t osz = what == GMLE_OUT_LABEL ? 4 : out_f64 ? 8 : 4;
    const size_t per_row =
        what == GMLE_OUT_LABEL || what == GMLE_OUT_DENSITY ? 1 : C;
    /* Rows per round trip: bounded staging whatever n is. */
    size_t nh = budget / (D * isz + per_row * osz);
    if (nh < MIN_TILE_ROWS)
      nh = MIN_TILE_ROWS;
    if (nh > n)
      nh = n;
    const int direct = b->row_stride == D && gmle__cu_is_pinned(b->x);
    void *p;
    CU_CHECK(gmle__cu_dev(S, DB_SC_X, nh * D * isz, &p));
    char *dx = p;
    CU_CHECK(gmle__cu_dev(S, DB_SC_OUT, nh * per_row * osz, &p));
    char *dout = p;
    char *hx = NULL;
    if (!direct) {
      CU_CHECK(gmle__cu_pinned(S, HB_SC_X, nh * D * isz, &p));
      hx = p;
    }
    for (size_t r0 = 0; r0 < n; r0 += nh) {
      const size_t ni = n - r0 < nh ? n - r0 : nh;
      const char *src = (const char *)b->x + r0 * b->row_stride * isz;
      if (!direct) {
        /* The previous round trip has finished with hx (synchronised
         * below). */
        gmle__cu_pack_rows(S, hx, src, ni, D * isz, b->row_stride * isz);
        src = hx;
      }
      CU_TRY(S,
             cudaMemcpyAsync(dx, src, ni * D * isz, cudaMemcpyHostToDevice,
                             S->compute),
             "cudaMemcpyAsync(%zu rows to score, host to device)", ni);
      CU_CHECK(
          score_rows(S, m, cm, dx, f64, ni, D, what, out_f64, dout, budget));
      CU_TRY(S,
             cudaMemcpyAsync((char *)out + r0 * per_row * osz, dout,
                             ni * per_row * osz, cudaMemcpyDeviceToHost,
                             S->compute),
             "cudaMemcpyAsync(scores, device to host)");
      CU_TRY(S, cudaStreamSynchronize(S->compute),
             "cudaStreamSynchronize(scoring)");
    }
  }
done:
  if (st != GMLE_OK)
    st = gmle__cu_settle(S, st);
  return st;
}

gmle_status gmle__cu_score(void *state, const gmle__cuda_model_view *m,
                           const void *model_data,
                           const gmle__cuda_batch_view *b, gmle_output what,
                           gmle_dtype out_dtype, void *out) {
  cu_state *S = state;
  gmle_status st = gmle__cu_enter(S);
  if (st != GMLE_OK || b->n_rows == 0)
    return st;
  /* Out of device memory: release the cached buffers and try with smaller
   * tiles. */
  for (size_t budget = SCORE_BUDGET;; budget /= 4) {
    st = score_host(S, m, model_data, b, what, out_dtype, out, budget);
    if (st != GMLE_E_DEVICE_OOM || budget < MIN_BUDGET)
      return st;
    gmle__cu_release_all(S);
  }
}

gmle_status gmle__cu_score_device(void *state, const gmle__cuda_model_view *m,
                                  const void *model_data, const void *d_x,
                                  gmle_dtype dtype, size_t n_rows,
                                  size_t row_stride, gmle_output what,
                                  gmle_dtype out_dtype, void *d_out) {
  cu_state *S = state;
  gmle_status st = gmle__cu_enter(S);
  if (st != GMLE_OK || n_rows == 0)
    return st;
  char why[160];
  const char *which = "x";
  int bad = gmle__cu_check_device_ptr(d_x, S->device, why, sizeof why);
  if (!bad) {
    which = "out";
    bad = gmle__cu_check_device_ptr(d_out, S->device, why, sizeof why);
  }
  if (bad)
    return gmle__cu_error(S->h, GMLE_E_INVALID_ARG,
                          "cuda_score_device: %s is not device memory of CUDA "
                          "device %d: %s",
                          which, S->device, why);
  const int f64 = dtype == GMLE_F64;
  const size_t D = m->dim;
  const cu_model *cm = NULL;
  CU_CHECK(ensure_model(S, model_data, &cm));
  {
    /* Rows must be finite: scan on the device, name the first bad cell. */
    void *p;
    CU_CHECK(gmle__cu_dev(S, DB_SCAN, sizeof(gmle__cu_scan_result), &p));
    gmle__cu_scan_result *dres = p, res;
    CU_TRY(S, gmle__cu_scan_init(dres, S->compute),
           "launching the validation setup kernel");
    CU_TRY(S,
           gmle__cu_scan(d_x, f64, (int64_t)n_rows, (int64_t)D,
                         (int64_t)row_stride, NULL, 0, NULL, NULL, dres,
                         S->compute),
           "launching the validation kernel");
    CU_TRY(S,
           cudaMemcpyAsync(&res, dres, sizeof res, cudaMemcpyDeviceToHost,
                           S->compute),
           "cudaMemcpyAsync(validation result, device to host)");
    CU_TRY(S, cudaStreamSynchronize(S->compute),
           "cudaStreamSynchronize(validation)");
    if (res.bad_cell != ~0ull) {
      const size_t r = (size_t)(res.bad_cell / D),
                   j = (size_t)(res.bad_cell % D);
      double v = 0;
      const char *cell =
          (const char *)d_x + (r * row_stride + j) * (f64 ? 8 : 4);
      if (f64) {
        CU_TRY(S, cudaMemcpy(&v, cell, 8, cudaMemcpyDeviceToHost),
               "cudaMemcpy(one value, device to host)");
      } else {
        float f = 0;
        CU_TRY(S, cudaMemcpy(&f, cell, 4, cudaMemcpyDeviceToHost),
               "cudaMemcpy(one value, device to host)");
        v = (double)f;
      }
      const gmle_error_location loc = {
          .row = r, .column = j, .fields = GMLE_LOC_ROW | GMLE_LOC_COLUMN};
      st = gmle__cu_error_at(S->h, GMLE_E_NONFINITE_INPUT, &loc,
                             "score: row %zu col %zu: %s", r, j,
                             v != v ? "NaN" : (v > 0 ? "+Inf" : "-Inf"));
      goto done;
    }
  }
  for (size_t budget = SCORE_BUDGET;; budget /= 4) {
    st = score_rows(S, m, cm, d_x, f64, n_rows, row_stride, what,
                    out_dtype == GMLE_F64, d_out, budget);
    if (st != GMLE_E_DEVICE_OOM || budget < MIN_BUDGET)
      break;
    gmle__cu_quiesce(S);
    gmle__cu_release_all(S);
  }
  if (st != GMLE_OK)
    goto done;
  CU_TRY(S, cudaStreamSynchronize(S->compute),
         "cudaStreamSynchronize(scoring)");
done:
  if (st != GMLE_OK)
    st = gmle__cu_settle(S, st);
  return st;
}
