/* score_cpu.c -- bulk scoring on the CPU with fused, register-tiled kernels.
 *
 * No BLAS. A batch is walked in tiles of R rows (R <= 512, chosen so that a
 * tile and its per-class values stay in L2). A tile is converted to float64
 * and transposed into XT (feature-major: XT[j][r]), so that a vector
 * register holds one feature of 8 rows and every kernel works on 8 rows per
 * instruction with no horizontal reductions:
 *   full:  q_c = |L_c^-1 (x - m) - L_c^-1 (mu_c - m)|^2, the triangular
 *          product and the squared norm fused in registers (blocks of IB
 *          rows of L_c^-1 against 32 rows of x; only k <= i is computed,
 *          about half the flops of a GEMM, and nothing round-trips through
 *          memory);
 *   tied:  z = L^-1 (x - m) by the same kernel (once per row), then
 *          q_c = |z - L^-1 (mu_c - m)|^2 by the diag kernel with unit weights;
 *   diag/spherical: q_c = sum_j (x_j - mu_cj)^2 / var_cj computed directly
 *          from the uncentred row (exact differences: no expanded form, so
 *          no cancellation for rows near a class far from the centre).
 * x is centred on the model's global centre m in double for the full and
 * tied forms, so that |mean| >> std does not cancel.
 *   loglik_c = -1/2 (D log 2pi + log|Sigma_c|) - q_c / 2.
 * The per-class values of a tile (PT[a][r], active classes only) are turned
 * into the outputs while in cache, 8 rows per vector: LOGLIK, JOINT (+ log
 * pi_c), LOGPOST (joint - logsumexp of the row's joint: max, then the sum
 * of exp(joint - max) and its log by vectorised polynomials accurate to
 * about 1 ulp), DENSITY (that logsumexp), LABEL (argmax of the joint over
 * its finite entries, lowest index on ties; -1 when every class is -inf),
 * and transposed back to row-major output. Empty classes give -inf, never
 * NaN; a row where every class is -inf gets LOGPOST -inf for every class.
 *
 * Loading a tile also checks it for NaN and Inf (gmle_score then names the
 * first bad cell), so that the input is read from memory once, in parallel,
 * with software prefetch a few KiB ahead.
 *
 * The kernels' parameters (packed inverse factors, or class means and
 * inverse variances) are built once per model by gmle__cpu_score_pack
 * (called from host/prepare.c) in the layouts described at pack_tri and
 * pack_diag. Kernels: AVX-512, AVX2+FMA and portable C, chosen at run time
 * (__builtin_cpu_supports); each row is computed on its own, so results do
 * not depend on tiling, thread count or batch boundaries.
 *
 * Threads: up to ctx->n_threads short-lived threads per call when it is
 * worth it (PAR_WORK), taking tiles from a shared counter, so a thread
 * slowed by other work on the machine takes fewer. Memory: per thread one
 * tile (D x R doubles, twice for tied) and its per-class values (C x R
 * doubles; R shrinks when C is large), in ctx->score_scratch, whatever the
 * number of rows.
 */
#include "internal.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define SC_X86 1
#include <immintrin.h>
#else
#define SC_X86 0
#endif

/* Kernel shapes: rows of L^-1 per block (full/tied), classes per block
 * (diag), rows per vector, vectors per group. */
#define IB 4
#define CB 4
#define VW 8
#define GV 4
#define GR (VW * GV)
/* Tile budget: XT at most XT_BYTES, PT at most PT_BYTES, rows in
 * [GR, MAX_TILE]; the full kernel's factors are walked in blocks of about
 * W_BYTES so that they stay in L2 while every row group of a tile uses them.
 */
#define MAX_TILE ((size_t)512)
#define XT_BYTES ((size_t)256 << 10)
#define PT_BYTES ((size_t)1 << 20)
#define W_BYTES ((size_t)256 << 10)
/* A call is split over threads when each gets at least this much work
 * (flops; about 0.2 ms of one core, against tens of microseconds to start
 * a thread). */
#define PAR_WORK ((size_t)1 << 23)

static size_t min_size(size_t a, size_t b) { return a < b ? a : b; }

/* ------------------------------------------------------------------------ */
/* Packed parameters                                                        */
/* ------------------------------------------------------------------------ */

/* Doubles of one packed triangular factor (pack_tri). */
static size_t tri_len(size_t D) {
  size_t len = 0;
  for (size_t i0 = 0; i0 < D; i0 += IB)
    len += (min_size(i0 + IB, D) + 1) * IB;
  return len;
}

/* A lower-triangular D x D matrix W (row-major) and a D-vector b (NULL:
 * zero), by blocks of IB rows i0..i0+IB-1: for k < kmax = min(i0 + IB, D)
 * the IB values W[i0 + ii][k] (zero where k > i or i >= D), then the IB
 * values b[i0 + ii] (zero past D). */
static void pack_tri(const double *W, const double *b, size_t D, double *o) {
  for (size_t i0 = 0; i0 < D; i0 += IB) {
    const size_t kmax = min_size(i0 + IB, D);
    for (size_t k = 0; k < kmax; k++)
      for (size_t ii = 0; ii < IB; ii++) {
        const size_t i = i0 + ii;
        *o++ = i < D && k <= i ? W[i * D + k] : 0.0;
      }
    for (size_t ii = 0; ii < IB; ii++)
      *o++ = b && i0 + ii < D ? b[i0 + ii] : 0.0;
  }
}

/* Diagonal forms, by blocks of CB active classes a0..a0+CB-1: for each
 * feature j the CB centres mu[a][j], then the CB weights iv[a][j] (zero for
 * classes past the last, whose q is then 0 and never read). */
static void pack_diag(const gmle_model *m, const gmle__score_cache *sc,
                      double *o) {
  const size_t D = m->dim, Ca = sc->n_active;
  for (size_t a0 = 0; a0 < Ca; a0 += CB)
    for (size_t j = 0; j < D; j++) {
      for (size_t u = 0; u < CB; u++) {
        const size_t a = a0 + u;
        double mu = 0;
        if (a < Ca)
          mu = m->cov == GMLE_COV_TIED ? sc->b[a * D + j]
                                       : m->means[sc->active[a] * D + j];
        o[u] = mu;
      }
      for (size_t u = 0; u < CB; u++) {
        const size_t a = a0 + u;
        double iv = 0;
        if (a < Ca) {
          const size_t c = sc->active[a];
          iv = m->cov == GMLE_COV_TIED  ? 1.0
               : m->cov == GMLE_COV_DIAG ? 1.0 / m->covars[c * D + j]
                                         : 1.0 / m->covars[c];
        }
        o[CB + u] = iv;
      }
      o += 2 * CB;
    }
}

static size_t diag_blocks(size_t Ca) { return (Ca + CB - 1) / CB; }

gmle_status gmle__cpu_score_pack(const gmle_model *m, gmle__score_cache *sc) {
  const size_t D = m->dim, Ca = sc->n_active, tl = tri_len(D);
  size_t n = 0, t;
  int bad = 0;
  switch (m->cov) {
  case GMLE_COV_FULL:
    bad = gmle__mul_size(Ca, tl, &n);
    break;
  case GMLE_COV_TIED:
    bad = gmle__mul3_size(diag_blocks(Ca), 2 * CB, D, &t) ||
          (n = t + tl) < t;
    break;
  case GMLE_COV_DIAG:
  case GMLE_COV_SPHERICAL:
    bad = gmle__mul3_size(diag_blocks(Ca), 2 * CB, D, &n);
    break;
  }
  size_t bytes = 0;
  GMLE_RETURN_IF(bad || gmle__mul_size(n ? n : 1, sizeof(double), &bytes),
                 m->ctx, GMLE_E_TOO_LARGE,
                 "prepare: the scoring kernels' parameters (%zu classes x "
                 "%zu features) overflow size_t",
                 Ca, D);
  double *kp = gmle__aligned_alloc(bytes);
  GMLE_RETURN_IF(!kp, m->ctx, GMLE_E_OUT_OF_MEMORY,
                 "prepare: out of memory (%zu bytes of scoring kernel "
                 "parameters)",
                 bytes);
  memset(kp, 0, bytes);
  switch (m->cov) {
  case GMLE_COV_FULL:
    for (size_t a = 0; a < Ca; a++)
      pack_tri(sc->w + a * D * D, sc->b + a * D, D, kp + a * tl);
    break;
  case GMLE_COV_TIED:
    pack_tri(sc->w, NULL, D, kp);
    pack_diag(m, sc, kp + tl);
    break;
  case GMLE_COV_DIAG:
  case GMLE_COV_SPHERICAL:
    pack_diag(m, sc, kp);
    break;
  }
  sc->kp = kp;
  sc->kp_len = n;
  return GMLE_OK;
}

/* ------------------------------------------------------------------------ */
/* What the kernels work on                                                 */
/* ------------------------------------------------------------------------ */

/* One call's read-only description, shared by the threads. */
typedef struct job {
  const gmle_model *m;
  const gmle__batch *b;
  gmle_output what;
  gmle_dtype odt;
  void *out;
  const double *jc; /* [Ca] lconst_a (+ log prior for all but LOGLIK) */
  size_t R, ldx;    /* tile rows, row stride of XT / ZT / PT */
  size_t cblk;      /* full: classes per factor block */
  const struct isa *isa;
} job;

/* The instruction-set kernels. nv (1..GV) vectors of VW rows each:
 * tri_q: q[0 .. nv*VW) = |W x - b|^2 for one packed factor (pack_tri);
 * tri_z: z (D rows of stride ldz) = W x, b ignored;
 * diag_q: for one packed block of nc <= CB classes, q of class u into
 *         pt + u*ldp;
 * emit: the outputs of the tile's nvec vectors (rn valid rows, first row t0
 *       of the batch) from PT, which it may overwrite. */
typedef struct isa {
  const char *name;
  void (*tri_q)(const double *wp, size_t D, const double *xt, size_t ldx,
                size_t nv, double *q);
  void (*tri_z)(const double *wp, size_t D, const double *xt, size_t ldx,
                size_t nv, double *zt, size_t ldz);
  void (*diag_q)(const double *dp, size_t D, size_t nc, const double *xt,
                 size_t ldx, size_t nv, double *pt, size_t ldp);
  void (*emit)(const job *jb, double *pt, size_t nvec, size_t rn, size_t t0);
  /* Rows [t0, t0 + rn) into XT (feature-major, rows up to rp zero or
   * garbage), minus `center` when not NULL; nonzero when a value read is
   * NaN or Inf. */
  int (*load)(const gmle__batch *b, size_t t0, size_t rn, size_t rp,
              const double *center, double *xt, size_t ldx);
  /* PT[c][r] (r < rn; every class active) into out rows t0.. */
  void (*write)(const job *jb, const double *pt, size_t rn, size_t t0);
} isa;

/* 1 unless v is NaN or +-Inf. */
static int finite_d(double v) { return fabs(v) <= 1.7976931348623157e308; }

static int load_gen(const gmle__batch *b, size_t t0, size_t rn, size_t rp,
                    const double *center, double *xt, size_t ldx) {
  const size_t D = b->dim;
  int ok = 1;
  for (size_t r = 0; r < rn; r++) {
    for (size_t j = 0; j < D; j++) {
      const size_t k = (t0 + r) * b->row_stride + j;
      const double v = b->dtype == GMLE_F32 ? (double)((const float *)b->x)[k]
                                            : ((const double *)b->x)[k];
      ok &= finite_d(v);
      xt[j * ldx + r] = center ? v - center[j] : v;
    }
  }
  for (size_t j = 0; j < D && rn < rp; j++)
    memset(xt + j * ldx + rn, 0, (rp - rn) * sizeof(double));
  return !ok;
}

static void put(void *out, gmle_dtype t, size_t k, double v) {
  if (t == GMLE_F32)
    ((float *)out)[k] = (float)v;
  else
    ((double *)out)[k] = v;
}

static void write_gen(const job *jb, const double *pt, size_t rn, size_t t0) {
  const size_t C = jb->m->n_classes, ldp = jb->ldx;
  if (jb->odt == GMLE_F32) {
    float *o = (float *)jb->out + t0 * C;
    for (size_t r = 0; r < rn; r++, o += C)
      for (size_t c = 0; c < C; c++)
        o[c] = (float)pt[c * ldp + r];
  } else {
    double *o = (double *)jb->out + t0 * C;
    for (size_t r = 0; r < rn; r++, o += C)
      for (size_t c = 0; c < C; c++)
        o[c] = pt[c * ldp + r];
  }
}

/* Per-class values PT[a][r] (r < rn) into out rows t0.., -inf for empty
 * classes. */
static void write_rows(const job *jb, const double *pt, size_t rn, size_t t0) {
  const gmle_model *m = jb->m;
  const size_t C = m->n_classes, Ca = m->score_cache->n_active,
               ldp = jb->ldx;
  if (Ca == C) {
    jb->isa->write(jb, pt, rn, t0);
  } else {
    for (size_t r = 0; r < rn; r++)
      for (size_t c = 0, a = 0; c < C; c++)
        put(jb->out, jb->odt, (t0 + r) * C + c,
            m->empty[c] ? -INFINITY : pt[(a++) * ldp + r]);
  }
}

/* ------------------------------------------------------------------------ */
/* Portable kernels                                                         */
/* ------------------------------------------------------------------------ */

static void tri_q_gen(const double *wp, size_t D, const double *xt,
                      size_t ldx, size_t nv, double *q) {
  const size_t n = nv * VW;
  double qa[GR] = {0};
  for (size_t i0 = 0; i0 < D; i0 += IB) {
    const size_t kmax = min_size(i0 + IB, D);
    double acc[IB][GR] = {{0}};
    for (size_t k = 0; k < kmax; k++, wp += IB) {
      const double *x = xt + k * ldx;
      for (size_t ii = 0; ii < IB; ii++)
        for (size_t r = 0; r < n; r++)
          acc[ii][r] += x[r] * wp[ii];
    }
    for (size_t ii = 0; ii < IB; ii++)
      for (size_t r = 0; r < n; r++) {
        const double z = acc[ii][r] - wp[ii];
        qa[r] += z * z;
      }
    wp += IB;
  }
  memcpy(q, qa, n * sizeof(double));
}

static void tri_z_gen(const double *wp, size_t D, const double *xt,
                      size_t ldx, size_t nv, double *zt, size_t ldz) {
  const size_t n = nv * VW;
  for (size_t i0 = 0; i0 < D; i0 += IB) {
    const size_t kmax = min_size(i0 + IB, D);
    double acc[IB][GR] = {{0}};
    for (size_t k = 0; k < kmax; k++, wp += IB) {
      const double *x = xt + k * ldx;
      for (size_t ii = 0; ii < IB; ii++)
        for (size_t r = 0; r < n; r++)
          acc[ii][r] += x[r] * wp[ii];
    }
    for (size_t ii = 0; ii < IB && i0 + ii < D; ii++)
      memcpy(zt + (i0 + ii) * ldz, acc[ii], n * sizeof(double));
    wp += IB;
  }
}

static void diag_q_gen(const double *dp, size_t D, size_t nc,
                       const double *xt, size_t ldx, size_t nv, double *pt,
                       size_t ldp) {
  const size_t n = nv * VW;
  double acc[CB][GR] = {{0}};
  for (size_t j = 0; j < D; j++, dp += 2 * CB) {
    const double *x = xt + j * ldx;
    for (size_t u = 0; u < CB; u++)
      for (size_t r = 0; r < n; r++) {
        const double d = x[r] - dp[u];
        acc[u][r] += d * dp[CB + u] * d;
      }
  }
  for (size_t u = 0; u < nc; u++)
    memcpy(pt + u * ldp, acc[u], n * sizeof(double));
}

static void emit_gen(const job *jb, double *pt, size_t nvec, size_t rn,
                     size_t t0) {
  const gmle__score_cache *sc = jb->m->score_cache;
  const size_t Ca = sc->n_active, ldp = jb->ldx;
  const double *jc = jb->jc;
  (void)nvec;
  for (size_t r = 0; r < rn; r++) {
    double mx = -INFINITY;
    size_t best = 0;
    for (size_t a = 0; a < Ca; a++) {
      const double j = jc[a] - 0.5 * pt[a * ldp + r];
      pt[a * ldp + r] = j;
      if (j > mx) {
        mx = j;
        best = sc->active[a];
      }
    }
    switch (jb->what) {
    case GMLE_OUT_LOGLIK:
    case GMLE_OUT_JOINT:
      break;
    case GMLE_OUT_LABEL:
      ((int32_t *)jb->out)[t0 + r] = mx == -INFINITY ? -1 : (int32_t)best;
      break;
    case GMLE_OUT_LOGPOST:
    case GMLE_OUT_DENSITY: {
      double s = 0;
      for (size_t a = 0; a < Ca; a++)
        s += exp(pt[a * ldp + r] - mx);
      const double ls = log(s);
      if (jb->what == GMLE_OUT_DENSITY) {
        put(jb->out, jb->odt, t0 + r, mx == -INFINITY ? -INFINITY : mx + ls);
        break;
      }
      for (size_t a = 0; a < Ca; a++)
        pt[a * ldp + r] =
            mx == -INFINITY ? -INFINITY : (pt[a * ldp + r] - mx) - ls;
      break;
    }
    }
  }
  if (jb->what == GMLE_OUT_LOGLIK || jb->what == GMLE_OUT_JOINT ||
      jb->what == GMLE_OUT_LOGPOST)
    write_rows(jb, pt, rn, t0);
}

static const isa isa_generic = {"generic", tri_q_gen, tri_z_gen, diag_q_gen,
                                emit_gen,  load_gen,  write_gen};

/* ------------------------------------------------------------------------ */
/* AVX-512 kernels                                                          */
/* ------------------------------------------------------------------------ */

#if SC_X86
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
            _mm512_storeu_pd(zt + (i0 + (size_t)ii) * ldz + v * VW,
                             acc[v][ii]);
    }
    wp += IB;
  }
  if (!ZOUT)
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++)
      _mm512_storeu_pd(q + v * VW, qa[v]);
}

static void tri_q_512(const double *wp, size_t D, const double *xt,
                      size_t ldx, size_t nv, double *q) {
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

static void tri_z_512(const double *wp, size_t D, const double *xt,
                      size_t ldx, size_t nv, double *zt, size_t ldz) {
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

static void diag_q_512(const double *dp, size_t D, size_t nc,
                       const double *xt, size_t ldx, size_t nv, double *pt,
                       size_t ldp) {
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
  const __mmask8 tiny = _mm512_cmp_pd_mask(x, _mm512_set1_pd(-745.2),
                                           _CMP_LT_OQ);
  x = _mm512_max_pd(x, _mm512_set1_pd(-745.2));
  const __m512d n = _mm512_roundscale_pd(
      _mm512_mul_pd(x, _mm512_set1_pd(1.4426950408889634074)),
      _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512d r = _mm512_fnmadd_pd(n, _mm512_set1_pd(6.93147180369123816490e-01),
                               x);
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

AI void store_out512(const job *jb, size_t k, __m512d v, __mmask8 km) {
  if (jb->odt == GMLE_F32)
    _mm256_mask_storeu_ps((float *)jb->out + k, km, _mm512_cvtpd_ps(v));
  else
    _mm512_mask_storeu_pd((double *)jb->out + k, km, v);
}

static void emit_512(const job *jb, double *pt, size_t nvec, size_t rn,
                     size_t t0) {
  const gmle__score_cache *sc = jb->m->score_cache;
  const size_t Ca = sc->n_active, ldp = jb->ldx;
  const double *jc = jb->jc;
  const gmle_output what = jb->what;
  const __m512d half = _mm512_set1_pd(0.5),
                ninf = _mm512_set1_pd(-INFINITY);
  for (size_t vi = 0; vi < nvec; vi++) {
    double *p = pt + vi * VW;
    const size_t left = rn - vi * VW;
    const __mmask8 km = left >= VW ? (__mmask8)0xFF
                                   : (__mmask8)((1u << left) - 1u);
    if (what == GMLE_OUT_LABEL) {
      __m512d best = ninf;
      __m256i idx = _mm256_set1_epi32(-1);
      for (size_t a = 0; a < Ca; a++) {
        const __m512d j = _mm512_fnmadd_pd(
            half, _mm512_loadu_pd(p + a * ldp), _mm512_set1_pd(jc[a]));
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
    write_rows(jb, pt, rn, t0);
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
          v[u] = F32 ? _mm512_cvtps_pd(_mm256_maskz_loadu_ps(
                           km, (const float *)b->x + k))
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

AI void write_impl512(const job *jb, const double *pt, size_t rn, size_t t0,
                      const int F32) {
  const size_t C = jb->m->n_classes, ldp = jb->ldx;
  for (size_t r8 = 0; r8 < rn; r8 += 8) {
    const size_t nr = min_size(8, rn - r8);
    for (size_t c0 = 0; c0 < C; c0 += 8) {
      const size_t nc = min_size(8, C - c0);
      const __mmask8 km = mask_of(nc);
      __m512d v[8];
#pragma GCC unroll 8
      for (int u = 0; u < 8; u++)
        v[u] = (size_t)u < nc ? _mm512_loadu_pd(pt + (c0 + (size_t)u) * ldp + r8)
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

static void write_512(const job *jb, const double *pt, size_t rn, size_t t0) {
  if (jb->odt == GMLE_F32)
    write_impl512(jb, pt, rn, t0, 1);
  else
    write_impl512(jb, pt, rn, t0, 0);
}

GMLE__TARGET_END

static const isa isa_avx512 = {"avx512", tri_q_512, tri_z_512, diag_q_512,
                               emit_512, load_512,  write_512};
/* ------------------------------------------------------------------------ */
/* AVX2 kernels: the same blocking, an 8-row vector as two 4-lane halves    */
/* (16 registers: one 8-row vector per kernel pass)                         */
/* ------------------------------------------------------------------------ */

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

static void tri_q_256(const double *wp, size_t D, const double *xt,
                      size_t ldx, size_t nv, double *q) {
  for (size_t v = 0; v < nv; v++)
    tri_one256(wp, D, xt + v * VW, ldx, 0, q + v * VW, NULL, 0);
}

static void tri_z_256(const double *wp, size_t D, const double *xt,
                      size_t ldx, size_t nv, double *zt, size_t ldz) {
  for (size_t v = 0; v < nv; v++)
    tri_one256(wp, D, xt + v * VW, ldx, 1, NULL, zt + v * VW, ldz);
}

static void diag_q_256(const double *dp0, size_t D, size_t nc,
                       const double *xt, size_t ldx, size_t nv, double *pt,
                       size_t ldp) {
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
  const __m256d n = _mm256_round_pd(
      _mm256_mul_pd(x, _mm256_set1_pd(1.4426950408889634074)),
      _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256d r = _mm256_fnmadd_pd(n, _mm256_set1_pd(6.93147180369123816490e-01),
                               x);
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
  return _mm256_andnot_pd(tiny,
                          _mm256_mul_pd(p, _mm256_castsi256_pd(e)));
}

static void emit_256(const job *jb, double *pt, size_t nvec, size_t rn,
                     size_t t0) {
  const gmle__score_cache *sc = jb->m->score_cache;
  const size_t Ca = sc->n_active, ldp = jb->ldx;
  const double *jc = jb->jc;
  const gmle_output what = jb->what;
  const __m256d half = _mm256_set1_pd(0.5),
                ninf = _mm256_set1_pd(-INFINITY);
  for (size_t r4 = 0; r4 < nvec * VW; r4 += 4) {
    double *p = pt + r4;
    if (r4 >= rn)
      break;
    const size_t left = rn - r4;
    if (what == GMLE_OUT_LABEL) {
      __m256d best = ninf, idx = _mm256_set1_pd(-1.0);
      for (size_t a = 0; a < Ca; a++) {
        const __m256d j = _mm256_fnmadd_pd(
            half, _mm256_loadu_pd(p + a * ldp), _mm256_set1_pd(jc[a]));
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
        put(jb->out, jb->odt, t0 + r4 + u, l[u]);
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
    write_rows(jb, pt, rn, t0);
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
      const __m256d cv = center ? _mm256_loadu_pd(center + j0)
                                : _mm256_setzero_pd();
#pragma GCC unroll 4
      for (int u = 0; u < 4; u++) {
        const size_t k = (t0 + r4 + (size_t)u) * st + j0;
        v[u] = f32 ? _mm256_cvtps_pd(_mm_loadu_ps((const float *)b->x + k))
                   : _mm256_loadu_pd((const double *)b->x + k);
        /* !(|v| <= DBL_MAX): NaN or Inf */
        bad = _mm256_or_pd(bad, _mm256_cmp_pd(_mm256_andnot_pd(sign, v[u]),
                                              big, _CMP_NLE_UQ));
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

static void write_256(const job *jb, const double *pt, size_t rn, size_t t0) {
  const size_t C = jb->m->n_classes, ldp = jb->ldx;
  const int f32 = jb->odt == GMLE_F32;
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
        put(jb->out, jb->odt, (t0 + r4 + u) * C + c, pt[c * ldp + r4 + u]);
  }
  for (; r4 < rn; r4++)
    for (size_t c = 0; c < C; c++)
      put(jb->out, jb->odt, (t0 + r4) * C + c, pt[c * ldp + r4]);
}

GMLE__TARGET_END

static const isa isa_avx2 = {"avx2",   tri_q_256, tri_z_256, diag_q_256,
                             emit_256, load_256,  write_256};

#endif /* SC_X86 */

/* Building with -DGMLE_SCORE_ISA=1 (portable), 2 (at most AVX2) or 3
 * tests the kernels of a lower instruction set on any machine; 0 or unset:
 * the best the CPU has. */
#ifndef GMLE_SCORE_ISA
#define GMLE_SCORE_ISA 0
#endif

static const isa *pick_isa(void) {
#if SC_X86
  const int want = GMLE_SCORE_ISA;
  if ((want == 0 || want >= 3) && __builtin_cpu_supports("avx512f") &&
      __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("fma"))
    return &isa_avx512;
  if ((want == 0 || want >= 2) && __builtin_cpu_supports("avx2") &&
      __builtin_cpu_supports("fma"))
    return &isa_avx2;
#endif
  return &isa_generic;
}

/* ------------------------------------------------------------------------ */
/* Tiles and threads                                                        */
/* ------------------------------------------------------------------------ */

static double *align64(double *p) {
  const uintptr_t u = (uintptr_t)p;
  return (double *)(void *)((u + 63) & ~(uintptr_t)63);
}

/* What the threads of one call share: the next tile, and whether a tile
 * held NaN or Inf (the others then stop). */
typedef struct sched {
  atomic_size_t next;
  atomic_int bad;
} sched;

/* Tiles of the batch, taken one at a time from the shared counter (so a
 * thread slowed down by other work on the machine takes fewer), with
 * scratch `buf` (job.per_thread doubles). */
static void score_tiles(const job *jb, sched *sch, double *buf) {
  const gmle_model *m = jb->m;
  const gmle__score_cache *sc = m->score_cache;
  const isa *k = jb->isa;
  const size_t D = m->dim, Ca = sc->n_active, ldx = jb->ldx,
               n = jb->b->n_rows;
  const int full = m->cov == GMLE_COV_FULL, tied = m->cov == GMLE_COV_TIED;
  double *xt = align64(buf);
  double *zt = align64(xt + D * ldx);
  double *pt = align64(zt + (tied ? D * ldx : 0));
  const size_t tl = tri_len(D), nblk = diag_blocks(Ca);
  const double *dp = sc->kp + (tied ? tl : 0);
  for (;;) {
    if (atomic_load_explicit(&sch->bad, memory_order_relaxed))
      return;
    const size_t t = atomic_fetch_add_explicit(&sch->next, 1,
                                               memory_order_relaxed);
    if (t >= (n + jb->R - 1) / jb->R)
      return;
    const size_t t0 = t * jb->R, rn = min_size(jb->R, n - t0);
    const size_t nvec = (rn + VW - 1) / VW;
    if (k->load(jb->b, t0, rn, nvec * VW, full || tied ? sc->center : NULL,
                xt, ldx)) {
      atomic_store_explicit(&sch->bad, 1, memory_order_relaxed);
      return;
    }
    if (full) {
      for (size_t a0 = 0; a0 < Ca; a0 += jb->cblk) {
        const size_t a1 = min_size(Ca, a0 + jb->cblk);
        for (size_t g = 0; g < nvec; g += GV) {
          const size_t nv = min_size(GV, nvec - g);
          for (size_t a = a0; a < a1; a++)
            k->tri_q(sc->kp + a * tl, D, xt + g * VW, ldx, nv,
                     pt + a * ldx + g * VW);
        }
      }
    } else {
      for (size_t g = 0; g < nvec; g += GV) {
        const size_t nv = min_size(GV, nvec - g);
        const double *src = xt + g * VW;
        if (tied) {
          k->tri_z(sc->kp, D, xt + g * VW, ldx, nv, zt + g * VW, ldx);
          src = zt + g * VW;
        }
        for (size_t bi = 0; bi < nblk; bi++)
          k->diag_q(dp + bi * 2 * CB * D, D, min_size(CB, Ca - bi * CB), src,
                    ldx, nv, pt + bi * CB * ldx + g * VW, ldx);
      }
    }
    k->emit(jb, pt, nvec, rn, t0);
  }
}

typedef struct worker {
  const job *jb;
  sched *sch;
  double *buf;
} worker;

static void *worker_run(void *p) {
  const worker *w = p;
  score_tiles(w->jb, w->sch, w->buf);
  return NULL;
}

#define MAX_THREADS 64

/* Every row of a batch scored with every class -inf (no active class). */
static void score_all_empty(const job *jb, size_t n) {
  const size_t C = jb->m->n_classes;
  for (size_t r = 0; r < n; r++) {
    switch (jb->what) {
    case GMLE_OUT_LABEL:
      ((int32_t *)jb->out)[r] = -1;
      break;
    case GMLE_OUT_DENSITY:
      put(jb->out, jb->odt, r, -INFINITY);
      break;
    default:
      for (size_t c = 0; c < C; c++)
        put(jb->out, jb->odt, r * C + c, -INFINITY);
      break;
    }
  }
}

/* Scratch of at least n doubles, reused across the batches of a call. */
static double *scratch(gmle_context *ctx, size_t n) {
  size_t bytes;
  if (gmle__mul_size(n, sizeof(double), &bytes))
    return NULL;
  if (ctx->score_scratch && ctx->score_scratch_bytes >= bytes)
    return ctx->score_scratch;
  gmle__free(ctx->score_scratch);
  ctx->score_scratch = gmle__malloc(bytes);
  ctx->score_scratch_bytes = ctx->score_scratch ? bytes : 0;
  return ctx->score_scratch;
}

gmle_status gmle__cpu_score(gmle_context *ctx, const gmle_model *m,
                            const gmle__batch *b, gmle_output what,
                            gmle_dtype out_dtype, void *out) {
  const gmle__score_cache *sc = m->score_cache;
  GMLE_RETURN_IF(!sc || (!sc->kp && sc->n_active > 0), ctx, GMLE_E_INTERNAL,
                 "score: the model has not been prepared for scoring");
  const size_t D = m->dim, Ca = sc->n_active, n = b->n_rows;
  if (n == 0)
    return GMLE_OK;
  job jb = {m, b, what, out_dtype, out, NULL, 0, 0, 0, pick_isa()};
  if (Ca == 0) {
    /* nothing to compute, but non-finite rows are still an error */
    for (size_t r = 0; r < n; r++)
      for (size_t j = 0; j < D; j++) {
        const size_t k = r * b->row_stride + j;
        GMLE_RETURN_IF(
            !finite_d(b->dtype == GMLE_F32 ? (double)((const float *)b->x)[k]
                                           : ((const double *)b->x)[k]),
            ctx, GMLE_E_NONFINITE_INPUT, "score: row %zu col %zu is not finite",
            r, j);
      }
    score_all_empty(&jb, n);
    return GMLE_OK;
  }
  const int full = m->cov == GMLE_COV_FULL, tied = m->cov == GMLE_COV_TIED;
  /* Tile rows: XT and PT within budget; a batch smaller than a tile is one
   * tile of the rows there are. */
  size_t R = MAX_TILE;
  while (R > GR && (R * D * (tied ? 2 : 1) * sizeof(double) > XT_BYTES ||
                    R * Ca * sizeof(double) > PT_BYTES))
    R /= 2;
  if (n < R)
    R = (n + VW - 1) / VW * VW;
  jb.R = R;
  jb.ldx = R + VW; /* not a power of two: no cache-set aliasing */
  const size_t tl = tri_len(D);
  jb.cblk = full ? (W_BYTES / sizeof(double) + tl - 1) / tl : Ca;
  /* Threads: each with enough work (flops per row, roughly) and tiles. */
  const size_t row_work =
      full ? Ca * tl + 20 * Ca : (tied ? tl : 0) + 3 * Ca * D + 20 * Ca;
  const size_t tiles = (n + R - 1) / R;
  size_t nt = ctx->n_threads > 0 ? (size_t)ctx->n_threads : 1;
  nt = min_size(min_size(nt, MAX_THREADS), tiles);
  while (nt > 1 && n / nt * row_work < PAR_WORK)
    nt--;
  /* Scratch: per thread XT (+ ZT) and PT, each 64-byte aligned; then jc. */
  size_t per = 0, total = 0;
  int big = gmle__mul_size(D * (tied ? 2 : 1) + Ca, jb.ldx, &per) ||
            (per += 3 * 8) < 3 * 8 || gmle__mul_size(per, nt, &total) ||
            (total += Ca) < Ca;
  GMLE_RETURN_IF(big, ctx, GMLE_E_TOO_LARGE,
                 "score: %zu classes x %zu features is too large for the "
                 "host scratch",
                 Ca, D);
  double *S = scratch(ctx, total);
  GMLE_RETURN_IF(!S, ctx, GMLE_E_OUT_OF_MEMORY,
                 "score: out of memory (%zu doubles of scratch)", total);
  double *jc = S + nt * per;
  for (size_t a = 0; a < Ca; a++)
    jc[a] = what == GMLE_OUT_LOGLIK
                ? sc->lconst[a]
                : sc->lconst[a] + m->log_priors[sc->active[a]];
  jb.jc = jc;
  sched sch;
  atomic_init(&sch.next, 0);
  atomic_init(&sch.bad, 0);
  /* A thread that cannot be created leaves its tiles to the others. */
  worker w[MAX_THREADS];
  pthread_t th[MAX_THREADS];
  unsigned char started[MAX_THREADS];
  for (size_t i = 0; i < nt; i++) {
    w[i] = (worker){&jb, &sch, S + i * per};
    started[i] = i > 0 && pthread_create(&th[i], NULL, worker_run, &w[i]) == 0;
  }
  score_tiles(&jb, &sch, w[0].buf);
  for (size_t i = 1; i < nt; i++)
    if (started[i])
      pthread_join(th[i], NULL);
  GMLE_RETURN_IF(atomic_load(&sch.bad), ctx, GMLE_E_NONFINITE_INPUT,
                 "score: the rows hold NaN or Inf");
  return GMLE_OK;
}
