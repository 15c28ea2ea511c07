/* score_cpu.c -- bulk scoring on the CPU with fused, register-tiled kernels:
 * the driver (tiles, threads, output); the kernels are in score_generic.c,
 * score_avx2.c and score_avx512.c (score_kern.h), their parameters packed
 * by score_pack.c.
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
 * (called from host/prepare.c). The kernel set is chosen at run time by
 * gmle__cpu_isa() (host/isa.h); each row is computed on its own, so results
 * do not depend on tiling, thread count or batch boundaries.
 *
 * Threads: up to ctx->n_threads OpenMP threads per call when it is worth it
 * (PAR_WORK), taking tiles from a shared counter, so a thread slowed by
 * other work on the machine takes fewer. Memory: per thread one tile (D x R
 * doubles, twice for tied) and its per-class values (C x R doubles; R
 * shrinks when C is large), in the CPU state's scratch (host/cpu_state.h),
 * whatever the number of rows.
 */
#include "cpu_state.h"
#include "isa.h"
#include "score_kern.h"

#include <omp.h>
#include <stdatomic.h>

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
/* At most this many threads per call. */
#define MAX_THREADS 64

/* Per-class values PT[a][r] (r < rn) into out rows t0.., -inf for empty
 * classes. */
void gmle__score_write_rows(const gmle__score_job *jb, const double *pt,
                            size_t rn, size_t t0) {
  const gmle_model *m = jb->model;
  const size_t C = m->n_classes, Ca = m->score_cache->n_active, ldp = jb->ld;
  if (Ca == C) {
    jb->kern->write(jb, pt, rn, t0);
  } else {
    for (size_t r = 0; r < rn; r++)
      for (size_t c = 0, a = 0; c < C; c++)
        put(jb->out, jb->out_dtype, (t0 + r) * C + c,
            m->empty[c] ? -INFINITY : pt[(a++) * ldp + r]);
  }
}

/* The kernel set for this call. */
static const gmle__score_kern *pick_kern(void) {
#ifdef GMLE__SCORE_X86
  switch (gmle__cpu_isa()) {
  case GMLE__ISA_AVX512:
    return &gmle__score_kern_avx512;
  case GMLE__ISA_AVX2:
    return &gmle__score_kern_avx2;
  case GMLE__ISA_GENERIC:
    break;
  }
#endif
  return &gmle__score_kern_generic;
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

/* One thread's tile buffers (64-byte aligned, in its part of the scratch). */
typedef struct tile_bufs {
  double *x_tile; /* XT: the tile, feature-major */
  double *z_tile; /* ZT (tied): z = L^-1 (x - m), feature-major */
  double *q_tile; /* PT: the per-class values, class-major */
} tile_bufs;

/* The per-class q of a loaded tile of nvec vectors into PT. */
static void tile_distances(const gmle__score_job *jb, const tile_bufs *tb,
                           size_t nvec) {
  const gmle_model *m = jb->model;
  const gmle__score_cache *sc = m->score_cache;
  const gmle__score_kern *k = jb->kern;
  const size_t D = m->dim, Ca = sc->n_active, ldx = jb->ld;
  const size_t tl = gmle__score_tri_len(D), nblk = diag_blocks(Ca);
  if (m->cov == GMLE_COV_FULL) {
    for (size_t a0 = 0; a0 < Ca; a0 += jb->factor_block) {
      const size_t a1 = min_size(Ca, a0 + jb->factor_block);
      for (size_t g = 0; g < nvec; g += GV) {
        const size_t nv = min_size(GV, nvec - g);
        for (size_t a = a0; a < a1; a++)
          k->tri_q(jb->kp + a * tl, D, tb->x_tile + g * VW, ldx, nv,
                   tb->q_tile + a * ldx + g * VW);
      }
    }
    return;
  }
  const int tied = m->cov == GMLE_COV_TIED;
  const double *dp = jb->kp + (tied ? tl : 0);
  for (size_t g = 0; g < nvec; g += GV) {
    const size_t nv = min_size(GV, nvec - g);
    const double *src = tb->x_tile + g * VW;
    if (tied) {
      k->tri_z(jb->kp, D, tb->x_tile + g * VW, ldx, nv, tb->z_tile + g * VW,
               ldx);
      src = tb->z_tile + g * VW;
    }
    for (size_t bi = 0; bi < nblk; bi++)
      k->diag_q(dp + bi * 2 * CB * D, D, min_size(CB, Ca - bi * CB), src, ldx,
                nv, tb->q_tile + bi * CB * ldx + g * VW, ldx);
  }
}

/* Tiles of the batch, taken one at a time from the shared counter (so a
 * thread slowed down by other work on the machine takes fewer), with
 * scratch `buf` (the per-thread part of the scratch). */
static void score_tiles(const gmle__score_job *jb, sched *sch, double *buf) {
  const gmle_model *m = jb->model;
  const gmle__score_cache *sc = m->score_cache;
  const size_t D = m->dim, ldx = jb->ld, n = jb->batch->n_rows,
               R = jb->tile_rows;
  const int centred = m->cov == GMLE_COV_FULL || m->cov == GMLE_COV_TIED;
  tile_bufs tb;
  tb.x_tile = align64(buf);
  tb.z_tile = align64(tb.x_tile + D * ldx);
  tb.q_tile = align64(tb.z_tile + (m->cov == GMLE_COV_TIED ? D * ldx : 0));
  for (;;) {
    if (atomic_load_explicit(&sch->bad, memory_order_relaxed))
      return;
    const size_t t =
        atomic_fetch_add_explicit(&sch->next, 1, memory_order_relaxed);
    if (t >= (n + R - 1) / R)
      return;
    const size_t t0 = t * R, rn = min_size(R, n - t0);
    const size_t nvec = (rn + VW - 1) / VW;
    if (jb->kern->load(jb->batch, t0, rn, nvec * VW,
                       centred ? sc->center : NULL, tb.x_tile, ldx)) {
      atomic_store_explicit(&sch->bad, 1, memory_order_relaxed);
      return;
    }
    tile_distances(jb, &tb, nvec);
    jb->kern->emit(jb, tb.q_tile, nvec, rn, t0);
  }
}

/* Every row of a batch scored with every class -inf (no active class). */
static void score_all_empty(const gmle__score_job *jb, size_t n) {
  const size_t C = jb->model->n_classes;
  for (size_t r = 0; r < n; r++) {
    switch (jb->what) {
    case GMLE_OUT_LABEL:
      ((int32_t *)jb->out)[r] = -1;
      break;
    case GMLE_OUT_DENSITY:
      put(jb->out, jb->out_dtype, r, -INFINITY);
      break;
    default:
      for (size_t c = 0; c < C; c++)
        put(jb->out, jb->out_dtype, r * C + c, -INFINITY);
      break;
    }
  }
}

/* A model with no active class: nothing to compute, but non-finite rows
 * are still an error. */
static gmle_status score_no_class(gmle_context *ctx,
                                  const gmle__score_job *jb) {
  const gmle__batch *b = jb->batch;
  for (size_t r = 0; r < b->n_rows; r++)
    for (size_t j = 0; j < b->dim; j++) {
      const size_t k = r * b->row_stride + j;
      if (!finite_d(b->dtype == GMLE_F32 ? (double)((const float *)b->x)[k]
                                         : ((const double *)b->x)[k]))
        return gmle__error_at(
            ctx, GMLE_E_NONFINITE_INPUT,
            &(gmle_error_location){.row = r,
                                   .column = j,
                                   .fields = GMLE_LOC_ROW | GMLE_LOC_COLUMN},
            "score: row %zu col %zu is not finite", r, j);
    }
  score_all_empty(jb, b->n_rows);
  return GMLE_OK;
}

/* Tile rows, strides and factor blocks of jb for a batch of n rows, and
 * the number of threads worth using. */
static size_t plan_tiles(gmle__score_job *jb, size_t n, int n_threads) {
  const gmle_model *m = jb->model;
  const size_t D = m->dim, Ca = m->score_cache->n_active;
  const int full = m->cov == GMLE_COV_FULL, tied = m->cov == GMLE_COV_TIED;
  /* Tile rows: XT and PT within budget; a batch smaller than a tile is one
   * tile of the rows there are. */
  size_t R = MAX_TILE;
  while (R > GR && (R * D * (tied ? 2 : 1) * sizeof(double) > XT_BYTES ||
                    R * Ca * sizeof(double) > PT_BYTES))
    R /= 2;
  if (n < R)
    R = (n + VW - 1) / VW * VW;
  jb->tile_rows = R;
  jb->ld = R + VW; /* not a power of two: no cache-set aliasing */
  const size_t tl = gmle__score_tri_len(D);
  jb->factor_block = full ? (W_BYTES / sizeof(double) + tl - 1) / tl : Ca;
  /* Threads: each with enough work (flops per row, roughly) and tiles. */
  const size_t row_work =
      full ? Ca * tl + 20 * Ca : (tied ? tl : 0) + 3 * Ca * D + 20 * Ca;
  const size_t tiles = (n + R - 1) / R;
  size_t nt = n_threads > 0 ? (size_t)n_threads : 1;
  nt = min_size(min_size(nt, MAX_THREADS), tiles);
  while (nt > 1 && n / nt * row_work < PAR_WORK)
    nt--;
  return nt;
}

/* Scratch of at least n doubles, reused across the batches of a call. */
static double *scratch(gmle__cpu_state *cs, size_t n) {
  size_t bytes;
  if (gmle__mul_size(n, sizeof(double), &bytes))
    return NULL;
  if (cs->scratch && cs->scratch_bytes >= bytes)
    return cs->scratch;
  gmle__free(cs->scratch);
  cs->scratch = gmle__malloc(bytes);
  cs->scratch_bytes = cs->scratch ? bytes : 0;
  return cs->scratch;
}

/* The scratch of nt threads (per thread XT (+ ZT) and PT, each 64-byte
 * aligned, *per doubles), then the class constants, which are filled in. */
static gmle_status thread_scratch(gmle_context *ctx, gmle__cpu_state *cs,
                                  gmle__score_job *jb, size_t nt, double **buf,
                                  size_t *per) {
  const gmle_model *m = jb->model;
  const gmle__score_cache *sc = m->score_cache;
  const size_t D = m->dim, Ca = sc->n_active;
  const int tied = m->cov == GMLE_COV_TIED;
  size_t total = 0;
  *per = 0;
  int big = gmle__mul_size(D * (tied ? 2 : 1) + Ca, jb->ld, per) ||
            (*per += 3 * 8) < 3 * 8 || gmle__mul_size(*per, nt, &total) ||
            (total += Ca) < Ca;
  GMLE_RETURN_IF(big, ctx, GMLE_E_TOO_LARGE,
                 "score: %zu classes x %zu features is too large for the "
                 "host scratch",
                 Ca, D);
  double *S = scratch(cs, total);
  GMLE_RETURN_IF(!S, ctx, GMLE_E_OUT_OF_MEMORY,
                 "score: out of memory (%zu doubles of scratch)", total);
  double *jc = S + nt * *per;
  for (size_t a = 0; a < Ca; a++)
    jc[a] = jb->what == GMLE_OUT_LOGLIK
                ? sc->lconst[a]
                : sc->lconst[a] + m->log_priors[sc->active[a]];
  jb->class_const = jc;
  *buf = S;
  return GMLE_OK;
}

gmle_status gmle__cpu_score(gmle_context *ctx, gmle__cpu_state *cs,
                            const gmle_model *m, const void *model_data,
                            const gmle__batch *b, gmle_output what,
                            gmle_dtype out_dtype, void *out) {
  const gmle__score_cache *sc = m->score_cache;
  GMLE_RETURN_IF(!sc || !model_data, ctx, GMLE_E_INTERNAL,
                 "score: the model has not been prepared for scoring");
  if (b->n_rows == 0)
    return GMLE_OK;
  gmle__score_job jb = {.model = m,
                        .batch = b,
                        .kp = model_data,
                        .what = what,
                        .out_dtype = out_dtype,
                        .out = out,
                        .kern = pick_kern()};
  if (sc->n_active == 0)
    return score_no_class(ctx, &jb);
  const size_t nt = plan_tiles(&jb, b->n_rows, ctx->n_threads);
  double *buf;
  size_t per;
  gmle_status st = thread_scratch(ctx, cs, &jb, nt, &buf, &per);
  if (st != GMLE_OK)
    return st;
  sched sch;
  atomic_init(&sch.next, 0);
  atomic_init(&sch.bad, 0);
  /* Fewer threads than asked for leave their tiles to the others. */
#pragma omp parallel num_threads((int)nt)
  score_tiles(&jb, &sch, buf + (size_t)omp_get_thread_num() * per);
  GMLE_RETURN_IF(atomic_load(&sch.bad), ctx, GMLE_E_NONFINITE_INPUT,
                 "score: the rows hold NaN or Inf");
  return GMLE_OK;
}
