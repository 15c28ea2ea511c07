/* score_avx2.c -- AVX2+FMA kernels of the CPU scorer (see score_kern.h):
 * the AVX-512 kernels' blocking, an 8-row vector as two 4-lane halves (16
 * registers: one 8-row vector per kernel pass). */
#include "score_kern.h"

#ifdef GMLE__SCORE_X86
#include <immintrin.h>

#define AI static inline __attribute__((always_inline))

GMLE__TARGET_BEGIN("avx2,fma")

AI void tri_one256(const double *wp, size_t D, const double *xt, size_t ldx,
                   const int ZOUT, double *q, double *zt, size_t ldz) {
  __m256d qa0 = _mm256_setzero_pd(), qa1 = _mm256_setzero_pd();
  for (size_t i0 = 0; i0 < D; i0 += IB) {
    const size_t kmax = min_size(i0 + IB, D);
    __m256d a0[IB], a1[IB];
#pragma GCC unroll 4
    for (int ii = 0; ii < IB; ii++)
      a0[ii] = a1[ii] = _mm256_setzero_pd();
    const double *x = xt;
    for (size_t k = 0; k < kmax; k++, wp += IB, x += ldx) {
      const __m256d x0 = _mm256_loadu_pd(x), x1 = _mm256_loadu_pd(x + 4);
#pragma GCC unroll 4
      for (int ii = 0; ii < IB; ii++) {
        const __m256d w = _mm256_broadcast_sd(wp + ii);
        a0[ii] = _mm256_fmadd_pd(x0, w, a0[ii]);
        a1[ii] = _mm256_fmadd_pd(x1, w, a1[ii]);
      }
    }
#pragma GCC unroll 4
    for (int ii = 0; ii < IB; ii++) {
      if (!ZOUT) {
        const __m256d bb = _mm256_broadcast_sd(wp + ii);
        const __m256d z0 = _mm256_sub_pd(a0[ii], bb),
                      z1 = _mm256_sub_pd(a1[ii], bb);
        qa0 = _mm256_fmadd_pd(z0, z0, qa0);
        qa1 = _mm256_fmadd_pd(z1, z1, qa1);
      } else if (i0 + (size_t)ii < D) {
        _mm256_storeu_pd(zt + (i0 + (size_t)ii) * ldz, a0[ii]);
        _mm256_storeu_pd(zt + (i0 + (size_t)ii) * ldz + 4, a1[ii]);
      }
    }
    wp += IB;
  }
  if (!ZOUT) {
    _mm256_storeu_pd(q, qa0);
    _mm256_storeu_pd(q + 4, qa1);
  }
}

static void tri_q_256(const double *wp, size_t D, const double *xt, size_t ldx,
                      size_t nv, double *q) {
  for (size_t v = 0; v < nv; v++)
    tri_one256(wp, D, xt + v * VW, ldx, 0, q + v * VW, NULL, 0);
}

static void tri_z_256(const double *wp, size_t D, const double *xt, size_t ldx,
                      size_t nv, double *zt, size_t ldz) {
  for (size_t v = 0; v < nv; v++)
    tri_one256(wp, D, xt + v * VW, ldx, 1, NULL, zt + v * VW, ldz);
}

static void diag_q_256(const double *dp0, size_t D, size_t nc, const double *xt,
                       size_t ldx, size_t nv, double *pt, size_t ldp) {
  for (size_t v = 0; v < nv; v++) {
    __m256d a0[CB], a1[CB];
#pragma GCC unroll 4
    for (int u = 0; u < CB; u++)
      a0[u] = a1[u] = _mm256_setzero_pd();
    const double *x = xt + v * VW, *dp = dp0;
    for (size_t j = 0; j < D; j++, dp += 2 * CB, x += ldx) {
      const __m256d x0 = _mm256_loadu_pd(x), x1 = _mm256_loadu_pd(x + 4);
#pragma GCC unroll 4
      for (int u = 0; u < CB; u++) {
        const __m256d mu = _mm256_broadcast_sd(dp + u),
                      iv = _mm256_broadcast_sd(dp + CB + u);
        const __m256d d0 = _mm256_sub_pd(x0, mu), d1 = _mm256_sub_pd(x1, mu);
        a0[u] = _mm256_fmadd_pd(_mm256_mul_pd(d0, iv), d0, a0[u]);
        a1[u] = _mm256_fmadd_pd(_mm256_mul_pd(d1, iv), d1, a1[u]);
      }
    }
#pragma GCC unroll 4
    for (int u = 0; u < CB; u++)
      if ((size_t)u < nc) {
        _mm256_storeu_pd(pt + (size_t)u * ldp + v * VW, a0[u]);
        _mm256_storeu_pd(pt + (size_t)u * ldp + v * VW + 4, a1[u]);
      }
  }
}

/* exp(x) for x <= 0 as exp512, with 2^n built in the exponent field; below
 * -708 (where that would leave the normal range) the result is 0, an
 * error under 1e-307 in a sum whose largest term is 1. */
AI __m256d exp256(__m256d x) {
  const __m256d tiny = _mm256_cmp_pd(x, _mm256_set1_pd(-708.0), _CMP_LT_OQ);
  x = _mm256_max_pd(x, _mm256_set1_pd(-708.0));
  const __m256d n =
      _mm256_round_pd(_mm256_mul_pd(x, _mm256_set1_pd(1.4426950408889634074)),
                      _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256d r =
      _mm256_fnmadd_pd(n, _mm256_set1_pd(6.93147180369123816490e-01), x);
  r = _mm256_fnmadd_pd(n, _mm256_set1_pd(1.90821492927058770002e-10), r);
  __m256d p = _mm256_set1_pd(1.0 / 6227020800.0);
  p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0 / 479001600.0));
  p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0 / 39916800.0));
  p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0 / 3628800.0));
  p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0 / 362880.0));
  p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0 / 40320.0));
  p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0 / 5040.0));
  p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0 / 720.0));
  p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0 / 120.0));
  p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0 / 24.0));
  p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0 / 6.0));
  p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(0.5));
  p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0));
  p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0));
  const __m256i e = _mm256_slli_epi64(
      _mm256_add_epi64(_mm256_cvtepi32_epi64(_mm256_cvtpd_epi32(n)),
                       _mm256_set1_epi64x(1023)),
      52);
  return _mm256_andnot_pd(tiny, _mm256_mul_pd(p, _mm256_castsi256_pd(e)));
}

static void emit_256(const gmle__score_job *jb, double *pt, size_t nvec,
                     size_t rn, size_t t0) {
  const gmle__score_cache *sc = jb->model->score_cache;
  const size_t Ca = sc->n_active, ldp = jb->ld;
  const double *jc = jb->class_const;
  const gmle_output what = jb->what;
  const __m256d half = _mm256_set1_pd(0.5), ninf = _mm256_set1_pd(-INFINITY);
  for (size_t r4 = 0; r4 < nvec * VW; r4 += 4) {
    double *p = pt + r4;
    if (r4 >= rn)
      break;
    const size_t left = rn - r4;
    if (what == GMLE_OUT_LABEL) {
      __m256d best = ninf, idx = _mm256_set1_pd(-1.0);
      for (size_t a = 0; a < Ca; a++) {
        const __m256d j = _mm256_fnmadd_pd(half, _mm256_loadu_pd(p + a * ldp),
                                           _mm256_set1_pd(jc[a]));
        const __m256d gt = _mm256_cmp_pd(j, best, _CMP_GT_OQ);
        best = _mm256_blendv_pd(best, j, gt);
        idx = _mm256_blendv_pd(idx, _mm256_set1_pd((double)sc->active[a]), gt);
      }
      double iv[4];
      _mm256_storeu_pd(iv, idx);
      for (size_t u = 0; u < 4 && u < left; u++)
        ((int32_t *)jb->out)[t0 + r4 + u] = (int32_t)iv[u];
      continue;
    }
    __m256d mx = ninf;
    for (size_t a = 0; a < Ca; a++) {
      const __m256d j = _mm256_fnmadd_pd(half, _mm256_loadu_pd(p + a * ldp),
                                         _mm256_set1_pd(jc[a]));
      _mm256_storeu_pd(p + a * ldp, j);
      mx = _mm256_max_pd(mx, j);
    }
    if (what == GMLE_OUT_LOGLIK || what == GMLE_OUT_JOINT)
      continue;
    __m256d s = _mm256_setzero_pd();
    for (size_t a = 0; a < Ca; a++)
      s = _mm256_add_pd(
          s, exp256(_mm256_sub_pd(_mm256_loadu_pd(p + a * ldp), mx)));
    const __m256d dead = _mm256_cmp_pd(mx, ninf, _CMP_EQ_OQ);
    double sv[4];
    _mm256_storeu_pd(sv, s);
    for (int u = 0; u < 4; u++)
      sv[u] = log(sv[u]);
    const __m256d ls = _mm256_loadu_pd(sv);
    if (what == GMLE_OUT_DENSITY) {
      double l[4];
      _mm256_storeu_pd(l, _mm256_blendv_pd(_mm256_add_pd(mx, ls), ninf, dead));
      for (size_t u = 0; u < 4 && u < left; u++)
        put(jb->out, jb->out_dtype, t0 + r4 + u, l[u]);
      continue;
    }
    for (size_t a = 0; a < Ca; a++) {
      const __m256d j = _mm256_loadu_pd(p + a * ldp);
      const __m256d post = _mm256_sub_pd(_mm256_sub_pd(j, mx), ls);
      _mm256_storeu_pd(p + a * ldp, _mm256_blendv_pd(post, ninf, dead));
    }
  }
  if (what == GMLE_OUT_LOGLIK || what == GMLE_OUT_JOINT ||
      what == GMLE_OUT_LOGPOST)
    gmle__score_write_rows(jb, pt, rn, t0);
}

/* In-register transpose of the 4 x 4 block v. */
AI void transpose4(__m256d v[4]) {
  const __m256d t0 = _mm256_unpacklo_pd(v[0], v[1]),
                t1 = _mm256_unpackhi_pd(v[0], v[1]),
                t2 = _mm256_unpacklo_pd(v[2], v[3]),
                t3 = _mm256_unpackhi_pd(v[2], v[3]);
  v[0] = _mm256_permute2f128_pd(t0, t2, 0x20);
  v[1] = _mm256_permute2f128_pd(t1, t3, 0x20);
  v[2] = _mm256_permute2f128_pd(t0, t2, 0x31);
  v[3] = _mm256_permute2f128_pd(t1, t3, 0x31);
}

static int load_256(const gmle__batch *b, size_t t0, size_t rn, size_t rp,
                    const double *center, double *xt, size_t ldx) {
  const size_t D = b->dim, st = b->row_stride;
  const int f32 = b->dtype == GMLE_F32;
  const __m256d big = _mm256_set1_pd(1.7976931348623157e308);
  const __m256d sign = _mm256_set1_pd(-0.0);
  __m256d bad = _mm256_setzero_pd();
  for (size_t r4 = 0; r4 < rp; r4 += 4) {
    const size_t nr = rn > r4 ? min_size(4, rn - r4) : 0;
    size_t j0 = 0;
    for (; nr == 4 && j0 + 4 <= D; j0 += 4) {
      __m256d v[4];
      const __m256d cv =
          center ? _mm256_loadu_pd(center + j0) : _mm256_setzero_pd();
#pragma GCC unroll 4
      for (int u = 0; u < 4; u++) {
        const size_t k = (t0 + r4 + (size_t)u) * st + j0;
        v[u] = f32 ? _mm256_cvtps_pd(_mm_loadu_ps((const float *)b->x + k))
                   : _mm256_loadu_pd((const double *)b->x + k);
        /* !(|v| <= DBL_MAX): NaN or Inf */
        bad = _mm256_or_pd(
            bad, _mm256_cmp_pd(_mm256_andnot_pd(sign, v[u]), big, _CMP_NLE_UQ));
        v[u] = _mm256_sub_pd(v[u], cv);
      }
      transpose4(v);
#pragma GCC unroll 4
      for (int u = 0; u < 4; u++)
        _mm256_storeu_pd(xt + (j0 + (size_t)u) * ldx + r4, v[u]);
    }
    /* ragged edges: element by element */
    for (size_t u = 0; u < 4; u++)
      for (size_t j = (u < nr ? j0 : 0); j < D; j++) {
        double v = 0;
        if (u < nr) {
          const size_t k = (t0 + r4 + u) * st + j;
          v = f32 ? (double)((const float *)b->x)[k]
                  : ((const double *)b->x)[k];
          if (!finite_d(v))
            bad = _mm256_castsi256_pd(_mm256_set1_epi64x(-1));
          if (center)
            v -= center[j];
        }
        xt[j * ldx + r4 + u] = v;
      }
  }
  return _mm256_movemask_pd(bad) != 0;
}

static void write_256(const gmle__score_job *jb, const double *pt, size_t rn,
                      size_t t0) {
  const size_t C = jb->model->n_classes, ldp = jb->ld;
  const int f32 = jb->out_dtype == GMLE_F32;
  size_t r4 = 0;
  for (; r4 + 4 <= rn; r4 += 4) {
    size_t c0 = 0;
    for (; c0 + 4 <= C; c0 += 4) {
      __m256d v[4];
#pragma GCC unroll 4
      for (int u = 0; u < 4; u++)
        v[u] = _mm256_loadu_pd(pt + (c0 + (size_t)u) * ldp + r4);
      transpose4(v);
#pragma GCC unroll 4
      for (int u = 0; u < 4; u++) {
        const size_t k = (t0 + r4 + (size_t)u) * C + c0;
        if (f32)
          _mm_storeu_ps((float *)jb->out + k, _mm256_cvtpd_ps(v[u]));
        else
          _mm256_storeu_pd((double *)jb->out + k, v[u]);
      }
    }
    for (size_t u = 0; u < 4; u++)
      for (size_t c = c0; c < C; c++)
        put(jb->out, jb->out_dtype, (t0 + r4 + u) * C + c,
            pt[c * ldp + r4 + u]);
  }
  for (; r4 < rn; r4++)
    for (size_t c = 0; c < C; c++)
      put(jb->out, jb->out_dtype, (t0 + r4) * C + c, pt[c * ldp + r4]);
}

GMLE__TARGET_END

const gmle__score_kern gmle__score_kern_avx2 = {
    "avx2", tri_q_256, tri_z_256, diag_q_256, emit_256, load_256, write_256};

#endif /* GMLE__SCORE_X86 */
