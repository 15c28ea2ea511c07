/*
 * score.cl -- class log-likelihoods of a batch of rows, and what is made of
 * them (joint, log-posterior, label, mixture density), in float64.
 *
 * Build options (opencl/cl_score.c):
 *   scoring program:  IN_T (float or double), D, VR (rows per vector: 4 or
 *                     8), and for full/tied JB (outputs per pass: 2, 4, 8)
 *                     and DJ (D rounded up to JB)
 *   finishing program: KIND (0 LOGLIK, 1 JOINT, 2 LOGPOST, 3 LABEL,
 *                     4 DENSITY), OUT_T (float or double; int for LABEL)
 *
 * ll is n x C row-major. lconst[c] = -1/2 (D log 2pi + log|Sigma_c|), or
 * -inf for an empty class, which scores -inf without touching its factor.
 */
#pragma OPENCL EXTENSION cl_khr_fp64 : enable

#ifdef VR
/* Rows come in blocks of VR, transposed by the host: element (r, k) of a
 * block is at xt[(block D + k) VR + r % VR], so that one vector load gives
 * feature k of VR rows. A work-item scores one block against one class,
 * with no local memory and no barriers. Rows past n are zero and never
 * written. */
#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define XV CAT(double, VR)
#define VLOADR CAT(vload, VR)
#define VSTORER CAT(vstore, VR)
#define TO_XV CAT(convert_, XV)

inline void put_rows(XV q, double lc, uint b, uint n, uint C, uint c,
                     __global double *ll) {
  double v[VR];
  VSTORER(q, 0, v);
  for (int i = 0; i < VR; i++) {
    const uint r = b * VR + i;
    if (r < n)
      ll[(ulong)r * C + c] = isinf(lc) ? lc : lc - 0.5 * v[i];
  }
}

#ifdef JB
/* Full and tied covariances: q = |L_c^-1 (x - mu_c)|^2, the inverse factor
 * precomputed on the host and padded to a multiple of JB rows (zeros). JB
 * outputs z_j are accumulated at a time, so that each (x_k - mu_k) serves
 * JB multiply-adds; entries above the diagonal are zeros. */
#define ZD(i) XV z##i = (XV)0
#define ZA(i) z##i += Lk[(i) * D] * d
#define ZQ(i) q += z##i * z##i
#if JB == 8
#define ZALL(M) M(0); M(1); M(2); M(3); M(4); M(5); M(6); M(7)
#elif JB == 4
#define ZALL(M) M(0); M(1); M(2); M(3)
#else
#define ZALL(M) M(0); M(1)
#endif

__kernel void score_full(__global const IN_T *xt, uint nb, uint n,
                         __global const double *mu,
                         __global const double *linv,
                         __global const uint *fidx,
                         __global const double *lconst, __global double *ll,
                         uint C) {
  const uint b = get_global_id(0), c = get_global_id(1);
  if (b >= nb)
    return;
  const double lc = lconst[c];
  XV q = (XV)0;
  if (!isinf(lc)) {
    __global const double *m = mu + (ulong)c * D;
    __global const double *L = linv + (ulong)fidx[c] * (DJ * D);
    __global const IN_T *X = xt + (ulong)b * (D * VR);
    for (int j0 = 0; j0 < D; j0 += JB) {
      ZALL(ZD);
      const int kend = j0 + JB < D ? j0 + JB : D;
      __global const double *Lk = L + (ulong)j0 * D;
      for (int k = 0; k < kend; k++, Lk++) {
        const XV d = TO_XV(VLOADR(k, X)) - m[k];
        ZALL(ZA);
      }
      ZALL(ZQ);
    }
  }
  put_rows(q, lc, b, n, C, c, ll);
}
#endif

/* Diagonal and spherical covariances: q = sum_j ((x_j - mu_cj) / sd_cj)^2
 * with the inverse standard deviations precomputed (spherical: repeated). */
__kernel void score_diag(__global const IN_T *xt, uint nb, uint n,
                         __global const double *mu, __global const double *isd,
                         __global const double *lconst, __global double *ll,
                         uint C) {
  const uint b = get_global_id(0), c = get_global_id(1);
  if (b >= nb)
    return;
  const double lc = lconst[c];
  XV q = (XV)0;
  if (!isinf(lc)) {
    __global const double *m = mu + (ulong)c * D, *s = isd + (ulong)c * D;
    __global const IN_T *X = xt + (ulong)b * (D * VR);
    for (int j = 0; j < D; j++) {
      const XV d = (TO_XV(VLOADR(j, X)) - m[j]) * s[j];
      q += d * d;
    }
  }
  put_rows(q, lc, b, n, C, c, ll);
}
#endif

#ifdef KIND
/* log sum_c exp(v_c + lp_c) of one row, as src/linalg.c computes it:
 * max + log1p(sum of the other terms scaled by exp(-max)); -inf when every
 * term is -inf. */
inline double row_lse(__global const double *v, __global const double *lp,
                      uint C) {
  double mx = -INFINITY;
  uint imax = 0;
  for (uint c = 0; c < C; c++) {
    const double j = v[c] + lp[c];
    if (j > mx) {
      mx = j;
      imax = c;
    }
  }
  if (!isfinite(mx))
    return mx;
  double rest = 0;
  for (uint c = 0; c < C; c++)
    if (c != imax)
      rest += exp(v[c] + lp[c] - mx);
  return mx + log1p(rest);
}

/* One work-item per row: the requested output from the row's log-
 * likelihoods, so that only what was asked for leaves the device. */
__kernel void score_finish(__global const double *ll, uint n, uint C,
                           __global const double *lp, __global OUT_T *out) {
  const uint r = get_global_id(0);
  if (r >= n)
    return;
  __global const double *v = ll + (ulong)r * C;
#if KIND == 0
  for (uint c = 0; c < C; c++)
    out[(ulong)r * C + c] = (OUT_T)v[c];
#elif KIND == 1
  for (uint c = 0; c < C; c++)
    out[(ulong)r * C + c] = (OUT_T)(v[c] + lp[c]);
#elif KIND == 2
  const double l = row_lse(v, lp, C);
  for (uint c = 0; c < C; c++)
    out[(ulong)r * C + c] =
        (OUT_T)(l == -INFINITY ? -INFINITY : (v[c] + lp[c]) - l);
#elif KIND == 3
  /* argmax of the joint over its finite entries, lowest index on ties;
   * -1 when every class is -inf */
  int best = -1;
  double bv = 0;
  for (uint c = 0; c < C; c++) {
    const double j = v[c] + lp[c];
    if (isfinite(j) && (best < 0 || j > bv)) {
      best = (int)c;
      bv = j;
    }
  }
  out[r] = best;
#elif KIND == 4
  out[r] = (OUT_T)row_lse(v, lp, C);
#endif
}
#endif
