/* score_avx512.c -- AVX-512 kernels of the CPU scorer (see score_kern.h):
 * 8 rows per register, GV registers per pass; the softmax's exp and log by
 * vectorised polynomials accurate to about 1 ulp. */
#include "score_kern.h"

#ifdef GMLE__SCORE_X86
#include <immintrin.h>

GMLE__TARGET_BEGIN("avx512f,avx512dq,avx512vl,fma")

#define AI static inline __attribute__((always_inline))

AI void tri_impl512(const double *wp, size_t D, const double *xt, size_t ldx,
                    const int NV, const int ZOUT, double *q, double *zt,
                    size_t ldz) {
  __m512d qa[GV];
#pragma GCC unroll 4
  for (int v = 0; v < NV; v++)
    qa[v] = _mm512_setzero_pd();
  for (size_t i0 = 0; i0 < D; i0 += IB) {
    const size_t kmax = min_size(i0 + IB, D);
    __m512d acc[GV][IB];
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++)
#pragma GCC unroll 4
      for (int ii = 0; ii < IB; ii++)
        acc[v][ii] = _mm512_setzero_pd();
    const double *x = xt;
    for (size_t k = 0; k < kmax; k++, wp += IB, x += ldx) {
      __m512d xv[GV];
#pragma GCC unroll 4
      for (int v = 0; v < NV; v++)
        xv[v] = _mm512_loadu_pd(x + v * VW);
#pragma GCC unroll 4
      for (int ii = 0; ii < IB; ii++) {
        const __m512d w = _mm512_set1_pd(wp[ii]);
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++)
          acc[v][ii] = _mm512_fmadd_pd(xv[v], w, acc[v][ii]);
      }
    }
    if (!ZOUT) {
#pragma GCC unroll 4
      for (int ii = 0; ii < IB; ii++) {
        const __m512d bb = _mm512_set1_pd(wp[ii]);
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) {
          const __m512d z = _mm512_sub_pd(acc[v][ii], bb);
          qa[v] = _mm512_fmadd_pd(z, z, qa[v]);
        }
      }
    } else {
#pragma GCC unroll 4
      for (int ii = 0; ii < IB; ii++)
        if (i0 + (size_t)ii < D)
#pragma GCC unroll 4
          for (int v = 0; v < NV; v++)
            _mm512_storeu_pd(zt + (i0 + (size_t)ii) * ldz + v * VW, acc[v][ii]);
    }
    wp += IB;
  }
  if (!ZOUT)
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++)
      _mm512_storeu_pd(q + v * VW, qa[v]);
}

static void tri_q_512(const double *wp, size_t D, const double *xt, size_t ldx,
                      size_t nv, double *q) {
  switch (nv) {
  case 4:
    tri_impl512(wp, D, xt, ldx, 4, 0, q, NULL, 0);
    break;
  case 3:
    tri_impl512(wp, D, xt, ldx, 3, 0, q, NULL, 0);
    break;
  case 2:
    tri_impl512(wp, D, xt, ldx, 2, 0, q, NULL, 0);
    break;
  default:
    tri_impl512(wp, D, xt, ldx, 1, 0, q, NULL, 0);
    break;
  }
}

static void tri_z_512(const double *wp, size_t D, const double *xt, size_t ldx,
                      size_t nv, double *zt, size_t ldz) {
  switch (nv) {
  case 4:
    tri_impl512(wp, D, xt, ldx, 4, 1, NULL, zt, ldz);
    break;
  case 3:
    tri_impl512(wp, D, xt, ldx, 3, 1, NULL, zt, ldz);
    break;
  case 2:
    tri_impl512(wp, D, xt, ldx, 2, 1, NULL, zt, ldz);
    break;
  default:
    tri_impl512(wp, D, xt, ldx, 1, 1, NULL, zt, ldz);
    break;
  }
}

AI void diag_impl512(const double *dp, size_t D, size_t nc, const double *xt,
                     size_t ldx, const int NV, double *pt, size_t ldp) {
  __m512d acc[GV][CB];
#pragma GCC unroll 4
  for (int v = 0; v < NV; v++)
#pragma GCC unroll 4
    for (int u = 0; u < CB; u++)
      acc[v][u] = _mm512_setzero_pd();
  const double *x = xt;
  for (size_t j = 0; j < D; j++, dp += 2 * CB, x += ldx) {
    __m512d xv[GV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++)
      xv[v] = _mm512_loadu_pd(x + v * VW);
#pragma GCC unroll 4
    for (int u = 0; u < CB; u++) {
      const __m512d mu = _mm512_set1_pd(dp[u]);
      const __m512d iv = _mm512_set1_pd(dp[CB + u]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; v++) {
        const __m512d d = _mm512_sub_pd(xv[v], mu);
        acc[v][u] = _mm512_fmadd_pd(_mm512_mul_pd(d, iv), d, acc[v][u]);
      }
    }
  }
#pragma GCC unroll 4
  for (int u = 0; u < CB; u++)
    if ((size_t)u < nc)
#pragma GCC unroll 4
      for (int v = 0; v < NV; v++)
        _mm512_storeu_pd(pt + (size_t)u * ldp + v * VW, acc[v][u]);
}

static void diag_q_512(const double *dp, size_t D, size_t nc, const double *xt,
                       size_t ldx, size_t nv, double *pt, size_t ldp) {
  switch (nv) {
  case 4:
    diag_impl512(dp, D, nc, xt, ldx, 4, pt, ldp);
    break;
  case 3:
    diag_impl512(dp, D, nc, xt, ldx, 3, pt, ldp);
    break;
  case 2:
    diag_impl512(dp, D, nc, xt, ldx, 2, pt, ldp);
    break;
  default:
    diag_impl512(dp, D, nc, xt, ldx, 1, pt, ldp);
    break;
  }
}

/* exp(x) for x <= 0 (and -inf), about 1 ulp: x = n ln2 + r, |r| <= ln2/2,
 * exp(r) by its Taylor polynomial of degree 13 (truncation < 5e-18), then
 * scaled by 2^n (vscalefpd rounds gradual underflow correctly). Below
 * -745.2 the result is 0. */
AI __m512d exp512(__m512d x) {
  const __mmask8 tiny =
      _mm512_cmp_pd_mask(x, _mm512_set1_pd(-745.2), _CMP_LT_OQ);
  x = _mm512_max_pd(x, _mm512_set1_pd(-745.2));
  const __m512d n = _mm512_roundscale_pd(
      _mm512_mul_pd(x, _mm512_set1_pd(1.4426950408889634074)),
      _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512d r =
      _mm512_fnmadd_pd(n, _mm512_set1_pd(6.93147180369123816490e-01), x);
  r = _mm512_fnmadd_pd(n, _mm512_set1_pd(1.90821492927058770002e-10), r);
  __m512d p = _mm512_set1_pd(1.0 / 6227020800.0);
  p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0 / 479001600.0));
  p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0 / 39916800.0));
  p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0 / 3628800.0));
  p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0 / 362880.0));
  p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0 / 40320.0));
  p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0 / 5040.0));
  p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0 / 720.0));
  p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0 / 120.0));
  p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0 / 24.0));
  p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0 / 6.0));
  p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(0.5));
  p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0));
  p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0));
  return _mm512_maskz_scalef_pd((__mmask8)~tiny, p, n);
}

/* log(s) for s >= 1 (a sum of exponentials whose largest is 1), about
 * 1 ulp: s = 2^e m with m in [sqrt(1/2), sqrt(2)), log m = 2 atanh(f) with
 * f = (m - 1)/(m + 1), |f| < 0.172, by its odd series to f^23 (truncation
 * < 1e-19). Other s (NaN in rows that are masked afterwards) give
 * anything. */
AI __m512d log512(__m512d s) {
  __m512d m = _mm512_getmant_pd(s, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_src);
  __m512d e = _mm512_getexp_pd(s);
  const __mmask8 hi =
      _mm512_cmp_pd_mask(m, _mm512_set1_pd(1.4142135623730951), _CMP_GT_OQ);
  m = _mm512_mask_mul_pd(m, hi, m, _mm512_set1_pd(0.5));
  e = _mm512_mask_add_pd(e, hi, e, _mm512_set1_pd(1.0));
  const __m512d f = _mm512_div_pd(_mm512_sub_pd(m, _mm512_set1_pd(1.0)),
                                  _mm512_add_pd(m, _mm512_set1_pd(1.0)));
  const __m512d f2 = _mm512_mul_pd(f, f);
  __m512d p = _mm512_set1_pd(1.0 / 23);
  p = _mm512_fmadd_pd(p, f2, _mm512_set1_pd(1.0 / 21));
  p = _mm512_fmadd_pd(p, f2, _mm512_set1_pd(1.0 / 19));
  p = _mm512_fmadd_pd(p, f2, _mm512_set1_pd(1.0 / 17));
  p = _mm512_fmadd_pd(p, f2, _mm512_set1_pd(1.0 / 15));
  p = _mm512_fmadd_pd(p, f2, _mm512_set1_pd(1.0 / 13));
  p = _mm512_fmadd_pd(p, f2, _mm512_set1_pd(1.0 / 11));
  p = _mm512_fmadd_pd(p, f2, _mm512_set1_pd(1.0 / 9));
  p = _mm512_fmadd_pd(p, f2, _mm512_set1_pd(1.0 / 7));
  p = _mm512_fmadd_pd(p, f2, _mm512_set1_pd(1.0 / 5));
  p = _mm512_fmadd_pd(p, f2, _mm512_set1_pd(1.0 / 3));
  /* 2 f + 2 f^3 P(f^2), the small part first */
  const __m512d tf = _mm512_add_pd(f, f);
  const __m512d lm = _mm512_fmadd_pd(_mm512_mul_pd(tf, f2), p, tf);
  return _mm512_fmadd_pd(
      e, _mm512_set1_pd(6.93147180369123816490e-01),
      _mm512_fmadd_pd(e, _mm512_set1_pd(1.90821492927058770002e-10), lm));
}

AI void store_out512(const gmle__score_job *jb, size_t k, __m512d v,
                     __mmask8 km) {
  if (jb->out_dtype == GMLE_F32)
    _mm256_mask_storeu_ps((float *)jb->out + k, km, _mm512_cvtpd_ps(v));
  else
    _mm512_mask_storeu_pd((double *)jb->out + k, km, v);
}

static void emit_512(const gmle__score_job *jb, double *pt, size_t nvec,
                     size_t rn, size_t t0) {
  const gmle__score_cache *sc = jb->model->score_cache;
  const size_t Ca = sc->n_active, ldp = jb->ld;
  const double *jc = jb->class_const;
  const gmle_output what = jb->what;
  const __m512d half = _mm512_set1_pd(0.5), ninf = _mm512_set1_pd(-INFINITY);
  for (size_t vi = 0; vi < nvec; vi++) {
    double *p = pt + vi * VW;
    const size_t left = rn - vi * VW;
    const __mmask8 km =
        left >= VW ? (__mmask8)0xFF : (__mmask8)((1u << left) - 1u);
    if (what == GMLE_OUT_LABEL) {
      __m512d best = ninf;
      __m256i idx = _mm256_set1_epi32(-1);
      for (size_t a = 0; a < Ca; a++) {
        const __m512d j = _mm512_fnmadd_pd(half, _mm512_loadu_pd(p + a * ldp),
                                           _mm512_set1_pd(jc[a]));
        const __mmask8 gt = _mm512_cmp_pd_mask(j, best, _CMP_GT_OQ);
        best = _mm512_mask_mov_pd(best, gt, j);
        idx = _mm256_mask_mov_epi32(idx, gt,
                                    _mm256_set1_epi32((int)sc->active[a]));
      }
      _mm256_mask_storeu_epi32((int32_t *)jb->out + t0 + vi * VW, km, idx);
      continue;
    }
    __m512d mx = ninf;
    for (size_t a = 0; a < Ca; a++) {
      const __m512d j = _mm512_fnmadd_pd(half, _mm512_loadu_pd(p + a * ldp),
                                         _mm512_set1_pd(jc[a]));
      _mm512_storeu_pd(p + a * ldp, j);
      mx = _mm512_max_pd(mx, j);
    }
    if (what == GMLE_OUT_LOGLIK || what == GMLE_OUT_JOINT)
      continue;
    __m512d s = _mm512_setzero_pd();
    for (size_t a = 0; a < Ca; a++)
      s = _mm512_add_pd(
          s, exp512(_mm512_sub_pd(_mm512_loadu_pd(p + a * ldp), mx)));
    /* rows where every class is -inf */
    const __mmask8 dead = _mm512_cmp_pd_mask(mx, ninf, _CMP_EQ_OQ);
    const __m512d ls = log512(s);
    if (what == GMLE_OUT_DENSITY) {
      const __m512d l = _mm512_mask_mov_pd(_mm512_add_pd(mx, ls), dead, ninf);
      store_out512(jb, t0 + vi * VW, l, km);
      continue;
    }
    for (size_t a = 0; a < Ca; a++) {
      const __m512d j = _mm512_loadu_pd(p + a * ldp);
      const __m512d post = _mm512_sub_pd(_mm512_sub_pd(j, mx), ls);
      _mm512_storeu_pd(p + a * ldp, _mm512_mask_mov_pd(post, dead, ninf));
    }
  }
  if (what == GMLE_OUT_LOGLIK || what == GMLE_OUT_JOINT ||
      what == GMLE_OUT_LOGPOST)
    gmle__score_write_rows(jb, pt, rn, t0);
}

/* In-register transpose of the 8 x 8 block v (v[u][i] -> v[i][u]). */
AI void transpose8(__m512d v[8]) {
  __m512d t[8], s[8];
#pragma GCC unroll 4
  for (int i = 0; i < 4; i++) {
    t[2 * i] = _mm512_unpacklo_pd(v[2 * i], v[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_pd(v[2 * i], v[2 * i + 1]);
  }
  s[0] = _mm512_shuffle_f64x2(t[0], t[2], 0x88);
  s[1] = _mm512_shuffle_f64x2(t[0], t[2], 0xDD);
  s[2] = _mm512_shuffle_f64x2(t[1], t[3], 0x88);
  s[3] = _mm512_shuffle_f64x2(t[1], t[3], 0xDD);
  s[4] = _mm512_shuffle_f64x2(t[4], t[6], 0x88);
  s[5] = _mm512_shuffle_f64x2(t[4], t[6], 0xDD);
  s[6] = _mm512_shuffle_f64x2(t[5], t[7], 0x88);
  s[7] = _mm512_shuffle_f64x2(t[5], t[7], 0xDD);
  v[0] = _mm512_shuffle_f64x2(s[0], s[4], 0x88);
  v[4] = _mm512_shuffle_f64x2(s[0], s[4], 0xDD);
  v[2] = _mm512_shuffle_f64x2(s[1], s[5], 0x88);
  v[6] = _mm512_shuffle_f64x2(s[1], s[5], 0xDD);
  v[1] = _mm512_shuffle_f64x2(s[2], s[6], 0x88);
  v[5] = _mm512_shuffle_f64x2(s[2], s[6], 0xDD);
  v[3] = _mm512_shuffle_f64x2(s[3], s[7], 0x88);
  v[7] = _mm512_shuffle_f64x2(s[3], s[7], 0xDD);
}

AI __mmask8 mask_of(size_t k) {
  return k >= 8 ? (__mmask8)0xFF : (__mmask8)((1u << k) - 1u);
}

#ifndef PF_BYTES
#define PF_BYTES 10240
#endif

/* NaN or +-Inf lanes. */
#define NONFINITE_CLASS 0x99 /* QNaN | +Inf | -Inf | SNaN */

AI int load_impl512(const gmle__batch *b, size_t t0, size_t rn, size_t rp,
                    const double *center, double *xt, size_t ldx,
                    const int F32) {
  const size_t D = b->dim, st = b->row_stride, isz = F32 ? 4 : 8;
  size_t pf = PF_BYTES / (D * isz);
  pf = pf < 8 ? 8 : pf > 128 ? 128 : pf;
  __mmask8 bad = 0;
  for (size_t r8 = 0; r8 < rp; r8 += 8) {
    const size_t nr = rn > r8 ? min_size(8, rn - r8) : 0;
    /* Rows about PF_BYTES ahead into L1: the input streams from memory,
     * and the hardware prefetcher alone left loads waiting (half the
     * time of a diagonal model went to it). */
    for (size_t u = 0; u < nr && t0 + r8 + pf + u < b->n_rows; u++) {
      const char *row = (const char *)b->x + (t0 + r8 + pf + u) * st * isz;
      for (size_t off = 0; off < D * isz; off += 64)
        _mm_prefetch(row + off, _MM_HINT_T0);
      _mm_prefetch(row + D * isz - 1, _MM_HINT_T0);
    }
    for (size_t j0 = 0; j0 < D; j0 += 8) {
      const __mmask8 km = mask_of(D - j0);
      const __m512d cv =
          center ? _mm512_maskz_loadu_pd(km, center + j0) : _mm512_setzero_pd();
      __m512d v[8];
#pragma GCC unroll 8
      for (int u = 0; u < 8; u++) {
        if ((size_t)u < nr) {
          const size_t k = (t0 + r8 + (size_t)u) * st + j0;
          v[u] = F32 ? _mm512_cvtps_pd(
                           _mm256_maskz_loadu_ps(km, (const float *)b->x + k))
                     : _mm512_maskz_loadu_pd(km, (const double *)b->x + k);
          bad |= _mm512_fpclass_pd_mask(v[u], NONFINITE_CLASS);
          v[u] = _mm512_sub_pd(v[u], cv);
        } else {
          v[u] = _mm512_setzero_pd();
        }
      }
      transpose8(v);
      const size_t nj = min_size(8, D - j0);
#pragma GCC unroll 8
      for (int u = 0; u < 8; u++)
        if ((size_t)u < nj)
          _mm512_storeu_pd(xt + (j0 + (size_t)u) * ldx + r8, v[u]);
    }
  }
  return bad != 0;
}

static int load_512(const gmle__batch *b, size_t t0, size_t rn, size_t rp,
                    const double *center, double *xt, size_t ldx) {
  if (b->dtype == GMLE_F32)
    return load_impl512(b, t0, rn, rp, center, xt, ldx, 1);
  return load_impl512(b, t0, rn, rp, center, xt, ldx, 0);
}

AI void write_impl512(const gmle__score_job *jb, const double *pt, size_t rn,
                      size_t t0, const int F32) {
  const size_t C = jb->model->n_classes, ldp = jb->ld;
  for (size_t r8 = 0; r8 < rn; r8 += 8) {
    const size_t nr = min_size(8, rn - r8);
    for (size_t c0 = 0; c0 < C; c0 += 8) {
      const size_t nc = min_size(8, C - c0);
      const __mmask8 km = mask_of(nc);
      __m512d v[8];
#pragma GCC unroll 8
      for (int u = 0; u < 8; u++)
        v[u] = (size_t)u < nc
                   ? _mm512_loadu_pd(pt + (c0 + (size_t)u) * ldp + r8)
                   : _mm512_setzero_pd();
      transpose8(v);
#pragma GCC unroll 8
      for (int u = 0; u < 8; u++)
        if ((size_t)u < nr) {
          const size_t k = (t0 + r8 + (size_t)u) * C + c0;
          if (F32)
            _mm256_mask_storeu_ps((float *)jb->out + k, km,
                                  _mm512_cvtpd_ps(v[u]));
          else
            _mm512_mask_storeu_pd((double *)jb->out + k, km, v[u]);
        }
    }
  }
}

static void write_512(const gmle__score_job *jb, const double *pt, size_t rn,
                      size_t t0) {
  if (jb->out_dtype == GMLE_F32)
    write_impl512(jb, pt, rn, t0, 1);
  else
    write_impl512(jb, pt, rn, t0, 0);
}

GMLE__TARGET_END

const gmle__score_kern gmle__score_kern_avx512 = {
    "avx512", tri_q_512, tri_z_512, diag_q_512, emit_512, load_512, write_512};

#endif /* GMLE__SCORE_X86 */
