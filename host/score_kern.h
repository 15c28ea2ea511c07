/*
 * score_kern.h -- the instruction-set kernels behind host/score_cpu.c.
 *
 * A batch is scored in tiles of at most MAX_TILE rows. A tile is converted
 * to float64 and transposed into XT, feature-major (XT[j][r] at
 * xt[j * ld + r]), so that a vector register holds one feature of VW = 8
 * rows and every kernel works on 8 rows per instruction with no horizontal
 * reductions. The kernels take GV vectors (GR = 32 rows) at a time, nv of
 * them (1..GV) at the tile's end.
 *
 * The per-class squared distances q of a tile go to PT (PT[a][r] at
 * pt[a * ld + r], active classes a only), which emit turns into the
 * outputs while in cache. Each row is computed on its own, so results do
 * not depend on tiling, thread count or batch boundaries.
 *
 * The kernels' parameters (jb->kp) are packed by gmle__cpu_score_pack
 * (host/score_pack.c) in two layouts:
 *   triangular (full, tied): by blocks of IB rows of L^-1 (pack_tri);
 *   diagonal (diag, spherical, and tied after z = L^-1 (x - m)): by blocks
 *   of CB classes, per feature the CB centres then the CB inverse
 *   variances (pack_diag).
 *
 * Kernel sets: host/score_generic.c (portable C), host/score_avx2.c,
 * host/score_avx512.c, chosen by gmle__cpu_isa() (host/isa.h).
 */
#ifndef GMLE_SCORE_KERN_H
#define GMLE_SCORE_KERN_H

#include "internal.h"

#include <math.h>
#include <stdint.h>

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define GMLE__SCORE_X86 1
#endif

/* Kernel shapes: rows of L^-1 per block (full/tied), classes per block
 * (diag), rows per vector, vectors per group, rows per group. */
#define IB 4
#define CB 4
#define VW 8
#define GV 4
#define GR (VW * GV)

static inline size_t min_size(size_t a, size_t b) { return a < b ? a : b; }

/* 1 unless v is NaN or +-Inf. */
static inline int finite_d(double v) {
  return fabs(v) <= 1.7976931348623157e308;
}

/* out[k] = v in the output's type. */
static inline void put(void *out, gmle_dtype t, size_t k, double v) {
  if (t == GMLE_F32)
    ((float *)out)[k] = (float)v;
  else
    ((double *)out)[k] = v;
}

/* Blocks of CB classes in the diagonal layout. */
static inline size_t diag_blocks(size_t Ca) { return (Ca + CB - 1) / CB; }

/* Doubles of one packed triangular factor of dimension D. */
size_t gmle__score_tri_len(size_t D);

/* One call's read-only description, shared by the threads. */
typedef struct gmle__score_job {
  const gmle_model *model;
  const gmle__batch *batch;
  const double *kp; /* the packed parameters (gmle__cpu_score_pack) */
  gmle_output what;
  gmle_dtype out_dtype;
  void *out;
  const double *class_const; /* [Ca] lconst_a (+ log prior for all but
                                LOGLIK): the joint is this - q / 2 */
  size_t tile_rows;          /* rows per tile */
  size_t ld;                 /* row stride of XT, ZT and PT */
  size_t factor_block;       /* full: classes whose factors are walked
                                together (about 256 KiB, kept in L2) */
  const struct gmle__score_kern *kern;
} gmle__score_job;

/* The instruction-set kernels. nv (1..GV) vectors of VW rows each. */
typedef struct gmle__score_kern {
  const char *name;
  /* q[0 .. nv*VW) = |W x - b|^2 for one packed factor (wp, pack_tri). */
  void (*tri_q)(const double *wp, size_t D, const double *xt, size_t ldx,
                size_t nv, double *q);
  /* z (D rows of stride ldz) = W x, b ignored. */
  void (*tri_z)(const double *wp, size_t D, const double *xt, size_t ldx,
                size_t nv, double *zt, size_t ldz);
  /* For one packed block of nc <= CB classes (dp, pack_diag), q of class
   * u into pt + u*ldp. */
  void (*diag_q)(const double *dp, size_t D, size_t nc, const double *xt,
                 size_t ldx, size_t nv, double *pt, size_t ldp);
  /* The outputs of the tile's nvec vectors (rn valid rows, first row t0 of
   * the batch) from PT, which it may overwrite. */
  void (*emit)(const gmle__score_job *jb, double *pt, size_t nvec, size_t rn,
               size_t t0);
  /* Rows [t0, t0 + rn) into XT (feature-major, rows up to rp zero or
   * garbage), minus `center` when not NULL; nonzero when a value read is
   * NaN or Inf. */
  int (*load)(const gmle__batch *b, size_t t0, size_t rn, size_t rp,
              const double *center, double *xt, size_t ldx);
  /* PT[c][r] (r < rn; every class active) into out rows t0.. */
  void (*write)(const gmle__score_job *jb, const double *pt, size_t rn,
                size_t t0);
} gmle__score_kern;

/* Per-class values PT[a][r] (r < rn) into out rows t0.., -inf for empty
 * classes (host/score_cpu.c; the emit kernels end with it). */
void gmle__score_write_rows(const gmle__score_job *jb, const double *pt,
                            size_t rn, size_t t0);

extern const gmle__score_kern gmle__score_kern_generic;
#ifdef GMLE__SCORE_X86
extern const gmle__score_kern gmle__score_kern_avx2;
extern const gmle__score_kern gmle__score_kern_avx512;
#endif

#endif
