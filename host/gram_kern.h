/*
 * gram_kern.h -- the instruction-set kernels behind host/gram.c.
 *
 * A tile of m rows of one class is packed, shifted and converted to float64,
 * into panels of 8 columns: panel p holds rows 0..m-1 of columns 8p..8p+7,
 * each row at p*ldp + r*8 (ldp = tile rows * 8), zero beyond dim. With
 * weights a second buffer holds w*d; without, that buffer is the first one.
 * The Gram kernels sum  v_r[j] * d_r[i]  (v = w*d) over the tile in
 * registers and add the tile's block into the class's row-major dim x dim
 * matrix, lower triangle only (i >= j), so every element is a sum over at
 * most one tile, then over tiles, then over threads.
 */
#ifndef GMLE_GRAM_KERN_H
#define GMLE_GRAM_KERN_H

#include "internal.h"

#include <stdint.h>

/* Input to prefetch into L2 while a tile is packed, spread evenly over its
 * rows: what comes after the tile (the next tile, or the next routing
 * chunk), so that it streams in while the kernels run on this one. */
typedef struct gmle__gram_pf {
  const char *start; /* NULL: nothing */
  size_t stride;     /* 0: items are the 64-byte lines start + 64*i; else
                        rows start + stride*i of `bytes` bytes each */
  size_t bytes;
  size_t first, count; /* the items for this tile */
} gmle__gram_pf;

/* Where a tile's rows come from. Row k of the tile is input row
 * base + (idx ? idx[k] : k). */
typedef struct gmle__gram_src {
  const void *x;
  gmle_dtype dtype;
  size_t row_stride; /* elements */
  size_t dim;
  const double *weights; /* indexed by input row, NULL: all 1 */
  const double *shift;   /* the class's shift, dim values */
  size_t base;
  const uint32_t *idx; /* NULL: rows base .. base+m-1 */
  size_t ahead;        /* idx entries valid after the tile */
  int near; /* prefetch gathered rows a few idx entries ahead into L1 */
  gmle__gram_pf far;
} gmle__gram_src;

/* Pack m rows, panels p0 .. ceil(dim/8)-1, into bp (d) and vp (w*d; NULL
 * without weights). When st is not NULL (p0 must then be 0), the tile's
 * sums of w*d are added to st[0..8*np) in row order. Returns the sum of the
 * tile's weights (m without weights). */
typedef double (*gmle__gram_pack_fn)(const gmle__gram_src *s, size_t m,
                                     size_t p0, size_t ldp, double *bp,
                                     double *vp, double *st);

/* Gram of a packed tile of m rows: for row panels I in [ja, np) and column
 * panels J in [ja, min(I+1, jb)), add sum_r v_r[j] d_r[i] (i >= j) into
 * g[i*dim + j]. vp == bp without weights. */
typedef void (*gmle__gram_full_fn)(const double *bp, const double *vp,
                                   size_t ldp, size_t m, size_t dim, size_t ja,
                                   size_t jb, double *g);

/* DIAG mode: add the tile's sums of w*d into st and of w*d*d into sq (each
 * 8*ceil(dim/8) values, zeroed by the caller) in row order. Returns the sum
 * of the tile's weights. */
typedef double (*gmle__gram_diag_fn)(const gmle__gram_src *s, size_t m,
                                     double *st, double *sq);

/* Routing by buckets (few classes): consecutive input rows are packed as
 * they come into the staging tile of their class, class c's at
 * stage_d + c*stage (w*d at stage_wd + c*stage; stage_wd NULL without
 * weights), panel layout as above with ldp = tile*8, slot stage_rows[c];
 * stage_sum[c*dpad..] gathers the tile's sums of w*d and wsum[c] its
 * weights (weighted only). In DIAG mode (stage_sumsq not NULL) nothing is
 * staged: stage_sumsq[c*dpad..] gathers the tile's sums of w*d*d. Rows
 * whose label is outside [c_lo, c_lo + n_cls) are skipped. */
typedef struct gmle__gram_bucket {
  const void *x;
  gmle_dtype dtype;
  size_t row_stride, dim;
  const double *weights;
  const int32_t *labels;
  const double *shift; /* all classes' shifts, [C*dim] */
  size_t c_lo, n_cls;
  double *stage_d, *stage_wd;
  size_t stage, ldp, tile, dpad;
  uint32_t *stage_rows;
  double *stage_sum, *stage_sumsq, *wsum;
  const float *shift32; /* float32 products: [n_cls * ld32], the shifts of
                           classes c_lo.. in float32, zero past dim */
} gmle__gram_bucket;

/* Pack input rows r0.. into their staging tiles, up to r1 or up to and
 * including the row that fills a tile (*full = its class, relative to
 * c_lo; SIZE_MAX if none). Returns the row after the last one taken. */
typedef size_t (*gmle__gram_scatter_fn)(const gmle__gram_bucket *bk, size_t r0,
                                        size_t r1, size_t *full);

/* Float32 products (gmle__partial.f32_products; float32 input, no
 * weights, FULL): a tile is packed as m rows of ld32 = 16*ceil(dim/16)
 * floats, row k at tp + k*ld32, holding d = fl32(x - k) (the float64
 * difference rounded once), zero past dim; the tile's sums of the exact
 * float64 differences are added to st[0..8*ceil(dim/8)) (zeroed by the
 * caller or running). */
typedef void (*gmle__gram_pack32_fn)(const gmle__gram_src *s, size_t m,
                                     float *tp, double *st);

/* Lower triangle of the Gram of such a tile: blocks summed over the m rows
 * in float32 registers, then converted and added into g[i*dim + j]
 * (float64). The items of pf (NULL or pf->start NULL: none) are prefetched
 * into L2, spread over the kernel's work, so that input streams in while
 * the FMA units are busy. */
typedef void (*gmle__gram_full32_fn)(const float *tp, size_t m, size_t dim,
                                     double *g, const gmle__gram_pf *pf);

/* Bucket routing with float32 products: as gmle__gram_scatter_fn, but
 * class c's staging tile is (float *)bk->stage_d + c*bk->stage in the
 * layout of gmle__gram_pack32_fn (bk->stage counts floats), d = x - shift32
 * in float32, and stage_sum[c*dpad..] gathers the sums of x (not x - k) in
 * float64; never weighted or DIAG. */

typedef struct gmle__gram_isa {
  const char *name;
  gmle__gram_pack_fn pack;
  gmle__gram_full_fn full;
  gmle__gram_diag_fn diag;
  gmle__gram_scatter_fn scatter;
  /* optional (NULL: float64 products only) */
  gmle__gram_pack32_fn pack32;
  gmle__gram_full32_fn full32;
  gmle__gram_scatter_fn scatter32;
} gmle__gram_isa;

/* The portable scatter, shared by the kernel sets without their own. */
size_t gmle__gram_scatter_generic(const gmle__gram_bucket *bk, size_t r0,
                                  size_t r1, size_t *full);

extern const gmle__gram_isa gmle__gram_isa_generic;
#if defined(__x86_64__) && defined(__GNUC__)
#define GMLE__GRAM_X86 1
extern const gmle__gram_isa gmle__gram_isa_avx2;
extern const gmle__gram_isa gmle__gram_isa_avx512;
#endif

/* Tuning and test hooks (not thread safe; tests and benchmarks only). Zero
 * fields mean "choose automatically". The kernel set follows
 * gmle__cpu_isa() (host/isa.h), lowered by gmle__cpu_isa_override. */
typedef struct gmle__gram_tuning {
  size_t tile_rows;      /* rows per packed tile (multiple of 8) */
  size_t chunk_rows;     /* rows per routing chunk */
  size_t private_budget; /* bytes of per-thread partials before the
                            class/column partition is used; SIZE_MAX never */
  size_t min_work;       /* multiply-adds per thread before a second thread
                            is used; 1 to always use every thread */
  int no_bucket;         /* 1: never route by staging buckets */
} gmle__gram_tuning;

void gmle__gram_set_tuning(const gmle__gram_tuning *t);
/* The kernel set that gmle__cpu_accumulate would use now. */
const char *gmle__gram_isa_name(void);

#endif
