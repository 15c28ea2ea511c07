/* gram_avx2.c -- AVX2+FMA kernels of the per-class Gram (see gram_kern.h).
 * Compiled for every x86-64 target; chosen at run time on CPUs with AVX2
 * and FMA but no AVX-512. A panel of 8 columns is two 4-wide vectors. */
#include "gram_kern.h"

#ifdef GMLE__GRAM_X86

#include <immintrin.h>

GMLE__TARGET_BEGIN("avx2,fma")

#define ALWAYS_INLINE static inline __attribute__((always_inline))
#define PREFETCH_AHEAD 32

ALWAYS_INLINE const void *row_ptr(const gmle__gram_src *s, int f32, size_t r) {
  if (f32)
    return (const float *)s->x + r * s->row_stride;
  return (const double *)s->x + r * s->row_stride;
}

/* Eight columns c0.. of a row (rem of them valid, the rest 0) as two
 * 4-wide float64 vectors. */
ALWAYS_INLINE void load8(int f32, const void *row, size_t c0, size_t rem,
                         __m256d *lo, __m256d *hi) {
  if (f32) {
    const float *p = (const float *)row + c0;
    if (rem >= 8) {
      *lo = _mm256_cvtps_pd(_mm_loadu_ps(p));
      *hi = _mm256_cvtps_pd(_mm_loadu_ps(p + 4));
      return;
    }
    float t[8] = {0};
    for (size_t l = 0; l < rem; l++)
      t[l] = p[l];
    *lo = _mm256_cvtps_pd(_mm_loadu_ps(t));
    *hi = _mm256_cvtps_pd(_mm_loadu_ps(t + 4));
    return;
  }
  const double *p = (const double *)row + c0;
  if (rem >= 8) {
    *lo = _mm256_loadu_pd(p);
    *hi = _mm256_loadu_pd(p + 4);
    return;
  }
  double t[8] = {0};
  for (size_t l = 0; l < rem; l++)
    t[l] = p[l];
  *lo = _mm256_loadu_pd(t);
  *hi = _mm256_loadu_pd(t + 4);
}

/* Prefetch the bytes [bytes0, bytes1) of a row that will be read soon:
 * into L1 when it is a few rows away, into L2 when a tile away. */
ALWAYS_INLINE void prefetch_row(const void *row, size_t bytes0, size_t bytes1,
                                int near) {
  const char *p = (const char *)row;
  if (near) {
    for (size_t o = bytes0; o < bytes1; o += 64)
      _mm_prefetch(p + o, _MM_HINT_T0);
    _mm_prefetch(p + bytes1 - 1, _MM_HINT_T0);
  } else {
    for (size_t o = bytes0; o < bytes1; o += 64)
      _mm_prefetch(p + o, _MM_HINT_T1);
    _mm_prefetch(p + bytes1 - 1, _MM_HINT_T1);
  }
}

/* Gathered rows (idx) when asked: while row k of a tile of m rows is
 * read, the bytes [b0, b1) of the row PREFETCH_AHEAD entries on, which may
 * be in the next tile or the next class, into L1. */
ALWAYS_INLINE void prefetch_near(const gmle__gram_src *s, int f32, size_t k,
                                 size_t m, size_t b0, size_t b1) {
  if (s->near && k + PREFETCH_AHEAD < m + s->ahead) {
    const size_t rn = s->base + s->idx[k + PREFETCH_AHEAD];
    prefetch_row(row_ptr(s, f32, rn), b0, b1, 1);
    if (s->weights)
      _mm_prefetch((const char *)(s->weights + rn), _MM_HINT_T0);
  }
}

/* s->far (see gram_kern.h) into L2, spread over the m rows of the tile:
 * call once per row with a zeroed state. */
typedef struct far_state {
  size_t i, acc;
} far_state;

ALWAYS_INLINE void prefetch_far(const gmle__gram_src *s, size_t m,
                                far_state *st) {
  const gmle__gram_pf *f = &s->far;
  if (!f->start)
    return;
  st->acc += f->count;
  for (; st->acc >= m; st->acc -= m, st->i++) {
    const char *q =
        f->start + (f->first + st->i) * (f->stride ? f->stride : 64);
    if (f->stride == 0)
      _mm_prefetch(q, _MM_HINT_T1);
    else
      prefetch_row(q, 0, f->bytes, 0);
  }
}

ALWAYS_INLINE double pack_impl(const gmle__gram_src *s, size_t m, size_t p0,
                               size_t ldp, double *bp, double *vp, double *st,
                               int f32, int weighted) {
  const size_t dim = s->dim, np = (dim + 7) / 8;
  const size_t isz = f32 ? 4 : 8;
  double wsum = 0.0;
  far_state fs = {0, 0};
  for (size_t k = 0; k < m; k++) {
    const size_t r = s->base + (s->idx ? s->idx[k] : k);
    prefetch_near(s, f32, k, m, p0 * 8 * isz, dim * isz);
    prefetch_far(s, m, &fs);
    const void *row = row_ptr(s, f32, r);
    __m256d w = _mm256_set1_pd(1.0);
    if (weighted) {
      wsum += s->weights[r];
      w = _mm256_set1_pd(s->weights[r]);
    }
    for (size_t p = p0; p < np; p++) {
      const size_t c0 = p * 8, rem = dim - c0;
      __m256d xl, xh, kl, kh;
      load8(f32, row, c0, rem, &xl, &xh);
      load8(0, s->shift, c0, rem, &kl, &kh);
      __m256d dl = _mm256_sub_pd(xl, kl), dh = _mm256_sub_pd(xh, kh);
      double *b = bp + p * ldp + k * 8;
      _mm256_store_pd(b, dl);
      _mm256_store_pd(b + 4, dh);
      if (weighted) {
        dl = _mm256_mul_pd(w, dl);
        dh = _mm256_mul_pd(w, dh);
        double *v = vp + p * ldp + k * 8;
        _mm256_store_pd(v, dl);
        _mm256_store_pd(v + 4, dh);
      }
      if (st) {
        _mm256_store_pd(st + c0, _mm256_add_pd(_mm256_load_pd(st + c0), dl));
        _mm256_store_pd(st + c0 + 4,
                        _mm256_add_pd(_mm256_load_pd(st + c0 + 4), dh));
      }
    }
  }
  return weighted ? wsum : (double)m;
}

static double pack_avx2(const gmle__gram_src *s, size_t m, size_t p0,
                        size_t ldp, double *bp, double *vp, double *st) {
  const int f32 = s->dtype == GMLE_F32;
  if (f32)
    return vp ? pack_impl(s, m, p0, ldp, bp, vp, st, 1, 1)
              : pack_impl(s, m, p0, ldp, bp, vp, st, 1, 0);
  return vp ? pack_impl(s, m, p0, ldp, bp, vp, st, 0, 1)
            : pack_impl(s, m, p0, ldp, bp, vp, st, 0, 0);
}

ALWAYS_INLINE void add_masked(double *d, __m256d a, size_t j, size_t i) {
  if (j + 3 <= i) {
    _mm256_storeu_pd(d, _mm256_add_pd(_mm256_loadu_pd(d), a));
    return;
  }
  double t[4];
  _mm256_storeu_pd(t, a);
  for (size_t l = 0; l < 4 && j + l <= i; l++)
    d[l] += t[l];
}

/* One column panel (two vectors) x NB rows b0..b0+NB-1 of row panel. */
ALWAYS_INLINE void block(const double *bpi, const double *vpj, size_t m,
                         const int NB, double *g, size_t dim, size_t i0,
                         size_t j0) {
  __m256d lo[4], hi[4];
#pragma GCC unroll 4
  for (int b = 0; b < NB; b++)
    lo[b] = hi[b] = _mm256_setzero_pd();
  for (size_t r = 0; r < m; r++) {
    const __m256d vl = _mm256_load_pd(vpj + r * 8);
    const __m256d vh = _mm256_load_pd(vpj + r * 8 + 4);
#pragma GCC unroll 4
    for (int b = 0; b < NB; b++) {
      const __m256d x = _mm256_broadcast_sd(bpi + r * 8 + b);
      lo[b] = _mm256_fmadd_pd(vl, x, lo[b]);
      hi[b] = _mm256_fmadd_pd(vh, x, hi[b]);
    }
  }
#pragma GCC unroll 4
  for (int b = 0; b < NB; b++) {
    const size_t i = i0 + (size_t)b;
    double *d = g + i * dim + j0;
    add_masked(d, lo[b], j0, i);
    if (j0 + 4 <= i)
      add_masked(d + 4, hi[b], j0 + 4, i);
  }
}

static void block1(const double *bpi, const double *vpj, size_t m, double *g,
                   size_t dim, size_t i0, size_t j0) {
  block(bpi, vpj, m, 1, g, dim, i0, j0);
}
static void block2(const double *bpi, const double *vpj, size_t m, double *g,
                   size_t dim, size_t i0, size_t j0) {
  block(bpi, vpj, m, 2, g, dim, i0, j0);
}
static void block3(const double *bpi, const double *vpj, size_t m, double *g,
                   size_t dim, size_t i0, size_t j0) {
  block(bpi, vpj, m, 3, g, dim, i0, j0);
}
static void block4(const double *bpi, const double *vpj, size_t m, double *g,
                   size_t dim, size_t i0, size_t j0) {
  block(bpi, vpj, m, 4, g, dim, i0, j0);
}

typedef void (*block_fn)(const double *, const double *, size_t, double *,
                         size_t, size_t, size_t);
static const block_fn blocks[4] = {block1, block2, block3, block4};

static void full_avx2(const double *bp, const double *vp, size_t ldp, size_t m,
                      size_t dim, size_t ja, size_t jb, double *g) {
  const size_t np = (dim + 7) / 8;
  for (size_t I = ja; I < np; I++) {
    const size_t nb = dim - 8 * I < 8 ? dim - 8 * I : 8;
    const size_t jhi = I + 1 < jb ? I + 1 : jb;
    for (size_t J = ja; J < jhi; J++)
      for (size_t b0 = 0; b0 < nb; b0 += 4) {
        const size_t n = nb - b0 < 4 ? nb - b0 : 4;
        blocks[n - 1](bp + I * ldp + b0, vp + J * ldp, m, g, dim, 8 * I + b0,
                      8 * J);
      }
  }
}

ALWAYS_INLINE double diag_impl(const gmle__gram_src *s, size_t m, double *st,
                               double *sq, int f32, int weighted) {
  const size_t dim = s->dim, np = (dim + 7) / 8;
  const size_t isz = f32 ? 4 : 8;
  double wsum = 0.0;
  if (weighted)
    for (size_t k = 0; k < m; k++)
      wsum += s->weights[s->base + (s->idx ? s->idx[k] : k)];
  for (size_t p = 0; p < np; p++) {
    const size_t c0 = p * 8, rem = dim - c0;
    __m256d sl = _mm256_setzero_pd(), sh = sl, ql = sl, qh = sl, kl, kh;
    load8(0, s->shift, c0, rem, &kl, &kh);
    const size_t b1 = (rem < 8 ? dim : c0 + 8) * isz;
    far_state fs = {0, 0};
    for (size_t k = 0; k < m; k++) {
      const size_t r = s->base + (s->idx ? s->idx[k] : k);
      prefetch_near(s, f32, k, m, c0 * isz, b1);
      if (p == 0)
        prefetch_far(s, m, &fs);
      __m256d xl, xh;
      load8(f32, row_ptr(s, f32, r), c0, rem, &xl, &xh);
      const __m256d dl = _mm256_sub_pd(xl, kl), dh = _mm256_sub_pd(xh, kh);
      __m256d vl = dl, vh = dh;
      if (weighted) {
        const __m256d w = _mm256_set1_pd(s->weights[r]);
        vl = _mm256_mul_pd(w, dl);
        vh = _mm256_mul_pd(w, dh);
      }
      sl = _mm256_add_pd(sl, vl);
      sh = _mm256_add_pd(sh, vh);
      ql = _mm256_fmadd_pd(vl, dl, ql);
      qh = _mm256_fmadd_pd(vh, dh, qh);
    }
    _mm256_store_pd(st + c0, _mm256_add_pd(_mm256_load_pd(st + c0), sl));
    _mm256_store_pd(st + c0 + 4,
                    _mm256_add_pd(_mm256_load_pd(st + c0 + 4), sh));
    _mm256_store_pd(sq + c0, _mm256_add_pd(_mm256_load_pd(sq + c0), ql));
    _mm256_store_pd(sq + c0 + 4,
                    _mm256_add_pd(_mm256_load_pd(sq + c0 + 4), qh));
  }
  return weighted ? wsum : (double)m;
}

static double diag_avx2(const gmle__gram_src *s, size_t m, double *st,
                        double *sq) {
  const int f32 = s->dtype == GMLE_F32;
  if (f32)
    return s->weights ? diag_impl(s, m, st, sq, 1, 1)
                      : diag_impl(s, m, st, sq, 1, 0);
  return s->weights ? diag_impl(s, m, st, sq, 0, 1)
                    : diag_impl(s, m, st, sq, 0, 0);
}

GMLE__TARGET_END

const gmle__gram_isa gmle__gram_isa_avx2 = {.name = "avx2",
                                            .pack = pack_avx2,
                                            .full = full_avx2,
                                            .diag = diag_avx2,
                                            .scatter =
                                                gmle__gram_scatter_generic};

#else
typedef int gmle__gram_avx2_unused;
#endif /* GMLE__GRAM_X86 */
