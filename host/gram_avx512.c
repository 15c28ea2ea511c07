/* gram_avx512.c -- AVX-512 kernels of the per-class Gram (see gram_kern.h).
 * Compiled for every x86-64 target; chosen at run time only on CPUs with
 * AVX-512F/DQ/VL and FMA. */
#include "gram_kern.h"

#ifdef GMLE__GRAM_X86

#include <immintrin.h>

GMLE__TARGET_BEGIN("avx512f,avx512dq,avx512vl,fma")

#define ALWAYS_INLINE static inline __attribute__((always_inline))
#define PREFETCH_AHEAD 32

ALWAYS_INLINE __mmask8 tail_mask(size_t rem) {
  return rem >= 8 ? (__mmask8)0xFF : (__mmask8)((1u << rem) - 1u);
}

/* Eight columns of a row, converted exactly to float64 (zero past km). */
ALWAYS_INLINE __m512d load8(int f32, const void *row, size_t c0, __mmask8 km) {
  if (f32)
    return _mm512_cvtps_pd(_mm256_maskz_loadu_ps(km, (const float *)row + c0));
  return _mm512_maskz_loadu_pd(km, (const double *)row + c0);
}

ALWAYS_INLINE const void *row_ptr(const gmle__gram_src *s, int f32, size_t r) {
  if (f32)
    return (const float *)s->x + r * s->row_stride;
  return (const double *)s->x + r * s->row_stride;
}

/* Prefetch the bytes [c0, c1) of a row that a gather will read soon. */
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

/* The items of f (see gram_kern.h) into L2, spread evenly over `steps`
 * calls with a zeroed state. */
typedef struct far_state {
  size_t i, acc;
} far_state;

ALWAYS_INLINE void prefetch_spread(const gmle__gram_pf *f, size_t steps,
                                   far_state *st) {
  if (!f || !f->start)
    return;
  st->acc += f->count;
  for (; st->acc >= steps && st->i < f->count; st->acc -= steps, st->i++) {
    const char *q =
        f->start + (f->first + st->i) * (f->stride ? f->stride : 64);
    if (f->stride == 0)
      _mm_prefetch(q, _MM_HINT_T1);
    else
      prefetch_row(q, 0, f->bytes, 0);
  }
}

/* s->far spread over the m rows of the tile: call once per row. */
ALWAYS_INLINE void prefetch_far(const gmle__gram_src *s, size_t m,
                                far_state *st) {
  prefetch_spread(&s->far, m, st);
}

/* Panels q..q+G-1 of a tile, row by row, the sums in registers. */
ALWAYS_INLINE void pack_group(const gmle__gram_src *s, size_t m, size_t q,
                              const int G, int far, size_t ldp, double *bp,
                              double *vp, double *st, int f32, int weighted) {
  const size_t dim = s->dim, isz = f32 ? 4 : 8;
  __m512d sh[4], sum[4];
  __mmask8 km[4];
#pragma GCC unroll 4
  for (int u = 0; u < G; u++) {
    km[u] = tail_mask(dim - (q + (size_t)u) * 8);
    sh[u] = _mm512_maskz_loadu_pd(km[u], s->shift + (q + (size_t)u) * 8);
    sum[u] = _mm512_setzero_pd();
  }
  const size_t b0 = q * 8 * isz;
  const size_t b1 =
      ((q + (size_t)G) * 8 < dim ? (q + (size_t)G) * 8 : dim) * isz;
  far_state fs = {0, 0};
  for (size_t k = 0; k < m; k++) {
    const size_t r = s->base + (s->idx ? s->idx[k] : k);
    prefetch_near(s, f32, k, m, b0, b1);
    if (far)
      prefetch_far(s, m, &fs);
    const void *row = row_ptr(s, f32, r);
    const __m512d w = _mm512_set1_pd(weighted ? s->weights[r] : 1.0);
#pragma GCC unroll 4
    for (int u = 0; u < G; u++) {
      const size_t off = (q + (size_t)u) * ldp + k * 8;
      __m512d d =
          _mm512_sub_pd(load8(f32, row, (q + (size_t)u) * 8, km[u]), sh[u]);
      _mm512_store_pd(bp + off, d);
      if (weighted) {
        d = _mm512_mul_pd(w, d);
        _mm512_store_pd(vp + off, d);
      }
      sum[u] = _mm512_add_pd(sum[u], d);
    }
  }
  if (st) {
#pragma GCC unroll 4
    for (int u = 0; u < G; u++) {
      double *ps = st + (q + (size_t)u) * 8;
      _mm512_store_pd(ps, _mm512_add_pd(_mm512_load_pd(ps), sum[u]));
    }
  }
}

ALWAYS_INLINE double pack_impl(const gmle__gram_src *s, size_t m, size_t p0,
                               size_t ldp, double *bp, double *vp, double *st,
                               int f32, int weighted) {
  const size_t dim = s->dim, np = (dim + 7) / 8;
  double wsum = 0.0;
  if (weighted)
    for (size_t k = 0; k < m; k++)
      wsum += s->weights[s->base + (s->idx ? s->idx[k] : k)];
  for (size_t q = p0; q < np; q += 4) {
    const int f = q == p0;
    switch (np - q < 4 ? np - q : 4) {
    case 1:
      pack_group(s, m, q, 1, f, ldp, bp, vp, st, f32, weighted);
      break;
    case 2:
      pack_group(s, m, q, 2, f, ldp, bp, vp, st, f32, weighted);
      break;
    case 3:
      pack_group(s, m, q, 3, f, ldp, bp, vp, st, f32, weighted);
      break;
    default:
      pack_group(s, m, q, 4, f, ldp, bp, vp, st, f32, weighted);
      break;
    }
  }
  return weighted ? wsum : (double)m;
}

static double pack512(const gmle__gram_src *s, size_t m, size_t p0, size_t ldp,
                      double *bp, double *vp, double *st) {
  const int f32 = s->dtype == GMLE_F32;
  if (f32)
    return vp ? pack_impl(s, m, p0, ldp, bp, vp, st, 1, 1)
              : pack_impl(s, m, p0, ldp, bp, vp, st, 1, 0);
  return vp ? pack_impl(s, m, p0, ldp, bp, vp, st, 0, 1)
            : pack_impl(s, m, p0, ldp, bp, vp, st, 0, 0);
}

/* Float32 products (gram_kern.h): vectors q..q+G-1 of 16 columns of a
 * tile's rows, d = fl32(x - k) (one correctly rounded float32
 * subtraction), and the tile's sums of x in float64 (exact for a tile of
 * float32 values of similar magnitude); st gets sum(x) - m k. */
ALWAYS_INLINE void pack32_group(const gmle__gram_src *s, size_t m, size_t q,
                                const int G, int far, float *tp, size_t ld32,
                                double *st) {
  const size_t dim = s->dim;
  __m512 k32[4];
  __m512d sx[4][2];
  __mmask16 km[4];
#pragma GCC unroll 4
  for (int u = 0; u < G; u++) {
    const size_t c0 = (q + (size_t)u) * 16;
    const size_t rem = dim - c0;
    km[u] = rem >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << rem) - 1u);
    const __m512d lo = _mm512_maskz_loadu_pd((__mmask8)km[u], s->shift + c0);
    const __m512d hi =
        _mm512_maskz_loadu_pd((__mmask8)(km[u] >> 8), s->shift + c0 + 8);
    k32[u] = _mm512_insertf32x8(_mm512_castps256_ps512(_mm512_cvtpd_ps(lo)),
                                _mm512_cvtpd_ps(hi), 1);
    sx[u][0] = sx[u][1] = _mm512_setzero_pd();
  }
  const size_t b0 = q * 16 * 4;
  const size_t b1 =
      ((q + (size_t)G) * 16 < dim ? (q + (size_t)G) * 16 : dim) * 4;
  far_state fs = {0, 0};
  for (size_t k = 0; k < m; k++) {
    const size_t r = s->base + (s->idx ? s->idx[k] : k);
    prefetch_near(s, 1, k, m, b0, b1);
    if (far)
      prefetch_far(s, m, &fs);
    const float *row = (const float *)s->x + r * s->row_stride;
#pragma GCC unroll 4
    for (int u = 0; u < G; u++) {
      const size_t c0 = (q + (size_t)u) * 16;
      const __m512 x = _mm512_maskz_loadu_ps(km[u], row + c0);
      _mm512_store_ps(tp + k * ld32 + c0, _mm512_sub_ps(x, k32[u]));
      sx[u][0] =
          _mm512_add_pd(sx[u][0], _mm512_cvtps_pd(_mm512_castps512_ps256(x)));
      sx[u][1] = _mm512_add_pd(sx[u][1],
                               _mm512_cvtps_pd(_mm512_extractf32x8_ps(x, 1)));
    }
  }
  const __m512d mm = _mm512_set1_pd((double)m);
#pragma GCC unroll 4
  for (int u = 0; u < G; u++)
    for (int h = 0; h < 2; h++) {
      const size_t c0 = (q + (size_t)u) * 16 + 8 * (size_t)h;
      if (c0 >= dim)
        continue;
      const __mmask8 kk = tail_mask(dim - c0);
      const __m512d sk = _mm512_maskz_loadu_pd(kk, s->shift + c0);
      /* sum(x) - m k: both exact for such tiles, so is the difference */
      const __m512d v = _mm512_fnmadd_pd(mm, sk, sx[u][h]);
      _mm512_store_pd(st + c0, _mm512_add_pd(_mm512_load_pd(st + c0), v));
    }
}

static void pack32_512(const gmle__gram_src *s, size_t m, float *tp,
                       double *st) {
  const size_t dim = s->dim, nv = (dim + 15) / 16, ld32 = nv * 16;
  for (size_t q = 0; q < nv; q += 4) {
    const int f = q == 0;
    switch (nv - q < 4 ? nv - q : 4) {
    case 1:
      pack32_group(s, m, q, 1, f, tp, ld32, st);
      break;
    case 2:
      pack32_group(s, m, q, 2, f, tp, ld32, st);
      break;
    case 3:
      pack32_group(s, m, q, 3, f, tp, ld32, st);
      break;
    default:
      pack32_group(s, m, q, 4, f, tp, ld32, st);
      break;
    }
  }
}

/* The full32 kernel's L2 prefetches (prefetch_spread over its runs). */
typedef struct pf_state {
  const gmle__gram_pf *f; /* NULL: nothing to do */
  size_t steps;
  far_state fs;
} pf_state;

ALWAYS_INLINE void pf_step(pf_state *st) {
  prefetch_spread(st->f, st->steps, &st->fs);
}

/* Float32 register block: MA column vectors of 16 (zmm) and, when H, one
 * of 8 (ymm; the half of a 16-column vector that reaches the diagonal) x
 * NB rows (broadcasts). On CPUs whose FMA units are 256 bits wide a ymm
 * FMA costs half a zmm one, so the triangle's diagonal blocks cost what
 * they compute; elsewhere it costs the same as the zmm it replaces.
 * Products are summed in float32 over runs of RUN32 rows, and the runs'
 * sums in float32 over the tile, then converted and added into g (float64,
 * lower triangle only). The short first level matters: float32 rows with a
 * large |mean|/sd carry few significant bits, their squares' low bits are
 * not uniformly distributed, and one long float32 sum of them is rounded
 * with a bias (about -(tile rows) * 2^-28 relative, 4.7e-7 for 96 rows);
 * sums of RUN32 products are exact for such data and their sums round
 * without that bias (see BENCHMARKS.md). */
#define RUN32 8
ALWAYS_INLINE void add_lanes(double *g, size_t dim, size_t i, size_t j,
                             __m256 t) {
  if (j > i)
    return;
  const size_t n = i - j + 1; /* lanes on or below the diagonal */
  double *d = g + i * dim + j;
  const __mmask8 k = tail_mask(n);
  _mm512_mask_storeu_pd(
      d, k, _mm512_add_pd(_mm512_maskz_loadu_pd(k, d), _mm512_cvtps_pd(t)));
}

/* acc + v * broadcast(*x), the broadcast done by the load (an embedded
 * broadcast): a separate vbroadcastss competes with the FMAs for the
 * vector pipes on some CPUs. Compilers fold a broadcast into the FMA only
 * when it has one use. */
ALWAYS_INLINE __m512 fma_bcast16(__m512 v, const float *x, __m512 acc) {
  __asm__("vfmadd231ps %[x]%{1to16%}, %[v], %[acc]"
          : [acc] "+v"(acc)
          : [v] "v"(v), [x] "m"(*x));
  return acc;
}
ALWAYS_INLINE __m256 fma_bcast8(__m256 v, const float *x, __m256 acc) {
  __asm__("vfmadd231ps %[x]%{1to8%}, %[v], %[acc]"
          : [acc] "+v"(acc)
          : [v] "v"(v), [x] "m"(*x));
  return acc;
}

ALWAYS_INLINE void block32(const float *tp, size_t ld, size_t m, const int MA,
                           const int H, const int NB, double *g, size_t dim,
                           size_t i0, size_t j0, pf_state *pf) {
  /* the tile's sums of the runs: in L1, added to once per run */
  __m512 tot[3][8];
  __m256 toth[8];
#pragma GCC unroll 8
  for (int b = 0; b < NB; b++) {
#pragma GCC unroll 3
    for (int a = 0; a < MA; a++)
      tot[a][b] = _mm512_setzero_ps();
    if (H)
      toth[b] = _mm256_setzero_ps();
  }
  for (size_t r0 = 0; r0 < m; r0 += RUN32) {
    const size_t r1 = m - r0 < RUN32 ? m : r0 + RUN32;
    pf_step(pf);
    __m512 acc[3][8];
    __m256 acch[8];
#pragma GCC unroll 8
    for (int b = 0; b < NB; b++) {
#pragma GCC unroll 3
      for (int a = 0; a < MA; a++)
        acc[a][b] = _mm512_setzero_ps();
      if (H)
        acch[b] = _mm256_setzero_ps();
    }
    for (size_t r = r0; r < r1; r++) {
      const float *row = tp + r * ld;
      __m512 v[3];
      __m256 vh = _mm256_setzero_ps();
#pragma GCC unroll 3
      for (int a = 0; a < MA; a++)
        v[a] = _mm512_load_ps(row + j0 + 16 * (size_t)a);
      if (H)
        vh = _mm256_load_ps(row + j0 + 16 * (size_t)MA);
#pragma GCC unroll 8
      for (int b = 0; b < NB; b++) {
        const float *x = row + i0 + (size_t)b;
#pragma GCC unroll 3
        for (int a = 0; a < MA; a++)
          acc[a][b] = fma_bcast16(v[a], x, acc[a][b]);
        if (H)
          acch[b] = fma_bcast8(vh, x, acch[b]);
      }
    }
#pragma GCC unroll 8
    for (int b = 0; b < NB; b++) {
#pragma GCC unroll 3
      for (int a = 0; a < MA; a++)
        tot[a][b] = _mm512_add_ps(tot[a][b], acc[a][b]);
      if (H)
        toth[b] = _mm256_add_ps(toth[b], acch[b]);
    }
  }
#pragma GCC unroll 8
  for (int b = 0; b < NB; b++) {
    const size_t i = i0 + (size_t)b;
#pragma GCC unroll 3
    for (int a = 0; a < MA; a++) {
      const size_t j = j0 + 16 * (size_t)a;
      add_lanes(g, dim, i, j, _mm512_castps512_ps256(tot[a][b]));
      add_lanes(g, dim, i, j + 8, _mm512_extractf32x8_ps(tot[a][b], 1));
    }
    if (H)
      add_lanes(g, dim, i, j0 + 16 * (size_t)MA, toth[b]);
  }
}

#define SHAPE32(MA, H, NB)                                                     \
  static void block32_##MA##_##H##_##NB(const float *tp, size_t ld, size_t m,  \
                                        double *g, size_t dim, size_t i0,      \
                                        size_t j0, pf_state *pf) {             \
    block32(tp, ld, m, MA, H, NB, g, dim, i0, j0, pf);                         \
  }
#define SHAPES32(MA, H)                                                        \
  SHAPE32(MA, H, 1)                                                            \
  SHAPE32(MA, H, 2)                                                            \
  SHAPE32(MA, H, 3)                                                            \
  SHAPE32(MA, H, 4)                                                            \
  SHAPE32(MA, H, 5) SHAPE32(MA, H, 6) SHAPE32(MA, H, 7) SHAPE32(MA, H, 8)
SHAPES32(0, 1)
SHAPES32(1, 0)
SHAPES32(1, 1)
SHAPES32(2, 0)
SHAPES32(2, 1)
SHAPES32(3, 0)

typedef void (*block32_fn)(const float *, size_t, size_t, double *, size_t,
                           size_t, size_t, pf_state *);
#define ROW32(MA, H)                                                           \
  {                                                                            \
    block32_##MA##_##H##_1, block32_##MA##_##H##_2, block32_##MA##_##H##_3,    \
        block32_##MA##_##H##_4, block32_##MA##_##H##_5,                        \
        block32_##MA##_##H##_6, block32_##MA##_##H##_7, block32_##MA##_##H##_8 \
  }
/* [MA][H]: MA zmm vectors, H ymm half (MA + H <= 3) */
static const block32_fn blocks32[4][2][8] = {{{0}, ROW32(0, 1)},
                                             {ROW32(1, 0), ROW32(1, 1)},
                                             {ROW32(2, 0), ROW32(2, 1)},
                                             {ROW32(3, 0), {0}}};

/* Row groups of 8 (i0 .. i0+nb-1), each against the columns its triangle
 * reaches, [0, i0+nb): whole vectors of 16 and, when the last one would
 * be at most half used, a vector of 8; at most three vectors a block.
 * With emit 0 only counts the blocks. */
static size_t walk32(const float *tp, size_t m, size_t dim, double *g,
                     pf_state *pf, int emit) {
  const size_t ld = (dim + 15) / 16 * 16;
  size_t blocks = 0;
  for (size_t i0 = 0; i0 < dim; i0 += 8) {
    const size_t nb = dim - i0 < 8 ? dim - i0 : 8, end = i0 + nb;
    const size_t rem = end % 16;
    const size_t nz = end / 16 + (rem > 8), half = rem > 0 && rem <= 8;
    for (size_t J = 0; J < nz + half;) {
      const size_t n = nz + half - J;
      size_t take = n == 4 ? 2 : (n >= 3 ? 3 : n);
      const size_t h = J + take == nz + half ? half : 0;
      if (emit)
        blocks32[take - h][h][nb - 1](tp, ld, m, g, dim, i0, 16 * J, pf);
      blocks++;
      J += take;
    }
  }
  return blocks;
}

static void full32_512(const float *tp, size_t m, size_t dim, double *g,
                       const gmle__gram_pf *pf) {
  pf_state ps = {NULL, 1, {0, 0}};
  if (pf && pf->start && pf->count) {
    ps.f = pf;
    ps.steps = walk32(tp, m, dim, g, NULL, 0) * ((m + RUN32 - 1) / RUN32);
  }
  walk32(tp, m, dim, g, &ps, 1);
}

/* One register block: MA column panels (vectors) x NB rows (broadcasts),
 * summed over the tile, then added into g (lower triangle only). */
ALWAYS_INLINE void block(const double *bpi, const double *vpj, size_t ldp,
                         size_t m, const int MA, const int NB, double *g,
                         size_t dim, size_t i0, size_t j0) {
  __m512d acc[3][8];
#pragma GCC unroll 3
  for (int a = 0; a < MA; a++)
#pragma GCC unroll 8
    for (int b = 0; b < NB; b++)
      acc[a][b] = _mm512_setzero_pd();
  for (size_t r = 0; r < m; r++) {
    __m512d v[3];
#pragma GCC unroll 3
    for (int a = 0; a < MA; a++)
      v[a] = _mm512_load_pd(vpj + a * ldp + r * 8);
#pragma GCC unroll 8
    for (int b = 0; b < NB; b++) {
      const __m512d x = _mm512_set1_pd(bpi[r * 8 + b]);
#pragma GCC unroll 3
      for (int a = 0; a < MA; a++)
        acc[a][b] = _mm512_fmadd_pd(v[a], x, acc[a][b]);
    }
  }
#pragma GCC unroll 3
  for (int a = 0; a < MA; a++)
#pragma GCC unroll 8
    for (int b = 0; b < NB; b++) {
      const size_t i = i0 + (size_t)b, j = j0 + 8 * (size_t)a;
      double *d = g + i * dim + j;
      if (j + 7 <= i) {
        _mm512_storeu_pd(d, _mm512_add_pd(_mm512_loadu_pd(d), acc[a][b]));
      } else {
        const __mmask8 k = (__mmask8)((2u << (i - j)) - 1u);
        _mm512_mask_storeu_pd(
            d, k, _mm512_add_pd(_mm512_maskz_loadu_pd(k, d), acc[a][b]));
      }
    }
}

#define SHAPE(MA, NB)                                                          \
  static void block_##MA##_##NB(const double *bpi, const double *vpj,          \
                                size_t ldp, size_t m, double *g, size_t dim,   \
                                size_t i0, size_t j0) {                        \
    block(bpi, vpj, ldp, m, MA, NB, g, dim, i0, j0);                           \
  }
#define SHAPES(MA)                                                             \
  SHAPE(MA, 1)                                                                 \
  SHAPE(MA, 2)                                                                 \
  SHAPE(MA, 3) SHAPE(MA, 4) SHAPE(MA, 5) SHAPE(MA, 6) SHAPE(MA, 7) SHAPE(MA, 8)
SHAPES(1)
SHAPES(2)
SHAPES(3)

typedef void (*block_fn)(const double *, const double *, size_t, size_t,
                         double *, size_t, size_t, size_t);
#define ROW(MA)                                                                \
  {                                                                            \
    block_##MA##_1, block_##MA##_2, block_##MA##_3, block_##MA##_4,            \
        block_##MA##_5, block_##MA##_6, block_##MA##_7, block_##MA##_8         \
  }
static const block_fn blocks[3][8] = {ROW(1), ROW(2), ROW(3)};

static void full512(const double *bp, const double *vp, size_t ldp, size_t m,
                    size_t dim, size_t ja, size_t jb, double *g) {
  const size_t np = (dim + 7) / 8;
  for (size_t I = ja; I < np; I++) {
    const size_t nb = dim - 8 * I < 8 ? dim - 8 * I : 8;
    const size_t jhi = I + 1 < jb ? I + 1 : jb;
    for (size_t J = ja; J < jhi;) {
      const size_t n = jhi - J;
      const size_t ma = n == 4 ? 2 : (n >= 3 ? 3 : n);
      blocks[ma - 1][nb - 1](bp + I * ldp, vp + J * ldp, ldp, m, g, dim, 8 * I,
                             8 * J);
      J += ma;
    }
  }
}

/* DIAG: panels p0..p0+G-1 of a tile, the sums in registers. */
ALWAYS_INLINE void diag_group(const gmle__gram_src *s, size_t m, size_t p0,
                              const int G, double *st, double *sq, int f32,
                              int weighted) {
  const size_t dim = s->dim, isz = f32 ? 4 : 8;
  __m512d as[4], aq[4], sh[4];
  __mmask8 km[4];
#pragma GCC unroll 4
  for (int u = 0; u < G; u++) {
    as[u] = aq[u] = _mm512_setzero_pd();
    km[u] = tail_mask(dim - (p0 + (size_t)u) * 8);
    sh[u] = _mm512_maskz_loadu_pd(km[u], s->shift + (p0 + (size_t)u) * 8);
  }
  const size_t b0 = p0 * 8 * isz;
  const size_t b1 =
      ((p0 + (size_t)G) * 8 < dim ? (p0 + (size_t)G) * 8 : dim) * isz;
  far_state fs = {0, 0};
  for (size_t k = 0; k < m; k++) {
    const size_t r = s->base + (s->idx ? s->idx[k] : k);
    prefetch_near(s, f32, k, m, b0, b1);
    if (p0 == 0)
      prefetch_far(s, m, &fs);
    const void *row = row_ptr(s, f32, r);
    const __m512d w = _mm512_set1_pd(weighted ? s->weights[r] : 1.0);
#pragma GCC unroll 4
    for (int u = 0; u < G; u++) {
      __m512d d =
          _mm512_sub_pd(load8(f32, row, (p0 + (size_t)u) * 8, km[u]), sh[u]);
      __m512d v = weighted ? _mm512_mul_pd(w, d) : d;
      as[u] = _mm512_add_pd(as[u], v);
      aq[u] = _mm512_fmadd_pd(v, d, aq[u]);
    }
  }
#pragma GCC unroll 4
  for (int u = 0; u < G; u++) {
    double *ps = st + (p0 + (size_t)u) * 8, *pq = sq + (p0 + (size_t)u) * 8;
    _mm512_store_pd(ps, _mm512_add_pd(_mm512_load_pd(ps), as[u]));
    _mm512_store_pd(pq, _mm512_add_pd(_mm512_load_pd(pq), aq[u]));
  }
}

ALWAYS_INLINE double diag_impl(const gmle__gram_src *s, size_t m, double *st,
                               double *sq, int f32, int weighted) {
  const size_t np = (s->dim + 7) / 8;
  double wsum = 0.0;
  if (weighted)
    for (size_t k = 0; k < m; k++)
      wsum += s->weights[s->base + (s->idx ? s->idx[k] : k)];
  for (size_t p0 = 0; p0 < np; p0 += 4) {
    switch (np - p0 < 4 ? np - p0 : 4) {
    case 1:
      diag_group(s, m, p0, 1, st, sq, f32, weighted);
      break;
    case 2:
      diag_group(s, m, p0, 2, st, sq, f32, weighted);
      break;
    case 3:
      diag_group(s, m, p0, 3, st, sq, f32, weighted);
      break;
    default:
      diag_group(s, m, p0, 4, st, sq, f32, weighted);
      break;
    }
  }
  return weighted ? wsum : (double)m;
}

static double diag512(const gmle__gram_src *s, size_t m, double *st,
                      double *sq) {
  const int f32 = s->dtype == GMLE_F32;
  if (f32)
    return s->weights ? diag_impl(s, m, st, sq, 1, 1)
                      : diag_impl(s, m, st, sq, 1, 0);
  return s->weights ? diag_impl(s, m, st, sq, 0, 1)
                    : diag_impl(s, m, st, sq, 0, 0);
}

/* Bucket routing (see gram_kern.h). */
ALWAYS_INLINE size_t scatter_impl(const gmle__gram_bucket *bk, size_t r0,
                                  size_t r1, size_t *full, int f32,
                                  int weighted, int diag) {
  const size_t dim = bk->dim, np = (dim + 7) / 8, isz = f32 ? 4 : 8;
  const size_t stride_b = bk->row_stride * isz;
  const char *x = (const char *)bk->x;
  /* consecutive rows: the lines PF_ROWS rows on, one row's worth each */
  const size_t pf = PREFETCH_AHEAD * stride_b;
  const char *pf_end = x + r1 * stride_b;
  for (size_t r = r0; r < r1; r++) {
    const char *row = x + r * stride_b;
    for (const char *a = (const char *)((uintptr_t)(row + pf) & ~(uintptr_t)63);
         a < row + stride_b + pf && a < pf_end; a += 64)
      _mm_prefetch(a, _MM_HINT_T0);
    const size_t c = (size_t)(uint32_t)bk->labels[r] - bk->c_lo;
    if (c >= bk->n_cls)
      continue;
    const size_t slot = bk->stage_rows[c];
    double *b = diag ? NULL : bk->stage_d + c * bk->stage + slot * 8;
    double *v =
        weighted && !diag ? bk->stage_wd + c * bk->stage + slot * 8 : NULL;
    double *st = bk->stage_sum + c * bk->dpad;
    const double *sh = bk->shift + (bk->c_lo + c) * dim;
    const double wv = weighted ? bk->weights[r] : 1.0;
    const __m512d w = _mm512_set1_pd(wv);
    if (diag) {
      double *sq = bk->stage_sumsq + c * bk->dpad;
      for (size_t p = 0; p < np; p++) {
        const __mmask8 km = tail_mask(dim - p * 8);
        const __m512d d = _mm512_sub_pd(load8(f32, row, p * 8, km),
                                        _mm512_maskz_loadu_pd(km, sh + p * 8));
        const __m512d vd = weighted ? _mm512_mul_pd(w, d) : d;
        _mm512_store_pd(st + p * 8,
                        _mm512_add_pd(_mm512_load_pd(st + p * 8), vd));
        _mm512_store_pd(sq + p * 8,
                        _mm512_fmadd_pd(vd, d, _mm512_load_pd(sq + p * 8)));
      }
    } else {
      for (size_t p = 0; p < np; p++) {
        const __mmask8 km = tail_mask(dim - p * 8);
        __m512d d = _mm512_sub_pd(load8(f32, row, p * 8, km),
                                  _mm512_maskz_loadu_pd(km, sh + p * 8));
        _mm512_store_pd(b + p * bk->ldp, d);
        if (weighted) {
          d = _mm512_mul_pd(w, d);
          _mm512_store_pd(v + p * bk->ldp, d);
        }
        _mm512_store_pd(st + p * 8,
                        _mm512_add_pd(_mm512_load_pd(st + p * 8), d));
      }
    }
    if (weighted)
      bk->wsum[c] += wv;
    if (++bk->stage_rows[c] == bk->tile) {
      *full = c;
      return r + 1;
    }
  }
  *full = SIZE_MAX;
  return r1;
}

static size_t scatter512(const gmle__gram_bucket *bk, size_t r0, size_t r1,
                         size_t *full) {
  const int w = bk->weights != NULL;
  if (bk->stage_sumsq) {
    if (bk->dtype == GMLE_F32)
      return w ? scatter_impl(bk, r0, r1, full, 1, 1, 1)
               : scatter_impl(bk, r0, r1, full, 1, 0, 1);
    return w ? scatter_impl(bk, r0, r1, full, 0, 1, 1)
             : scatter_impl(bk, r0, r1, full, 0, 0, 1);
  }
  if (bk->dtype == GMLE_F32)
    return w ? scatter_impl(bk, r0, r1, full, 1, 1, 0)
             : scatter_impl(bk, r0, r1, full, 1, 0, 0);
  return w ? scatter_impl(bk, r0, r1, full, 0, 1, 0)
           : scatter_impl(bk, r0, r1, full, 0, 0, 0);
}

/* Bucket routing with float32 products (gram_kern.h). */
static size_t scatter32_512(const gmle__gram_bucket *bk, size_t r0, size_t r1,
                            size_t *full) {
  const size_t dim = bk->dim, nv = (dim + 15) / 16, ld32 = nv * 16;
  const size_t stride_b = bk->row_stride * 4;
  const char *x = (const char *)bk->x;
  const size_t pf = PREFETCH_AHEAD * stride_b;
  const char *pf_end = x + r1 * stride_b;
  for (size_t r = r0; r < r1; r++) {
    const char *rowc = x + r * stride_b;
    for (const char *a =
             (const char *)((uintptr_t)(rowc + pf) & ~(uintptr_t)63);
         a < rowc + stride_b + pf && a < pf_end; a += 64)
      _mm_prefetch(a, _MM_HINT_T0);
    const size_t c = (size_t)(uint32_t)bk->labels[r] - bk->c_lo;
    if (c >= bk->n_cls)
      continue;
    const float *row = (const float *)rowc;
    float *t = (float *)bk->stage_d + c * bk->stage + bk->stage_rows[c] * ld32;
    const float *k32 = bk->shift32 + c * ld32;
    double *st = bk->stage_sum + c * bk->dpad;
    for (size_t u = 0; u < nv; u++) {
      const size_t c0 = u * 16, rem = dim - c0;
      const __mmask16 km =
          rem >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << rem) - 1u);
      const __m512 xv = _mm512_maskz_loadu_ps(km, row + c0);
      _mm512_store_ps(t + c0, _mm512_sub_ps(xv, _mm512_load_ps(k32 + c0)));
      _mm512_store_pd(
          st + c0, _mm512_add_pd(_mm512_load_pd(st + c0),
                                 _mm512_cvtps_pd(_mm512_castps512_ps256(xv))));
      if (rem > 8)
        _mm512_store_pd(
            st + c0 + 8,
            _mm512_add_pd(_mm512_load_pd(st + c0 + 8),
                          _mm512_cvtps_pd(_mm512_extractf32x8_ps(xv, 1))));
    }
    if (++bk->stage_rows[c] == bk->tile) {
      *full = c;
      return r + 1;
    }
  }
  *full = SIZE_MAX;
  return r1;
}

GMLE__TARGET_END

const gmle__gram_isa gmle__gram_isa_avx512 = {.name = "avx512",
                                              .pack = pack512,
                                              .full = full512,
                                              .diag = diag512,
                                              .scatter = scatter512,
                                              .pack32 = pack32_512,
                                              .full32 = full32_512,
                                              .scatter32 = scatter32_512};

#else
typedef int gmle__gram_avx512_unused;
#endif /* GMLE__GRAM_X86 */
