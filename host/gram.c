/*
 * gram.c -- the CPU backend's per-class shifted Gram kernel.
 *
 * For every row r of class c and weight w, with d = x_r - k_c in float64:
 * weight[c] += w, rows[c] += 1, sum[c] += w d, gram[c] += w d d^T (lower
 * triangle) or gram[c] += w d.^2 (DIAG).
 *
 * Work is split into jobs, one per planned thread, fixed by the input and
 * the thread count alone, so results are bit-identical from run to run:
 * - rows: each job takes a contiguous range of rows and every class; job 0
 *   accumulates into `out`, the others into private partials that are added
 *   into `out` afterwards in job order (classes no row reached are skipped);
 * - output: when those partials would be too large (many classes, wide
 *   rows), every job scans all rows but owns a contiguous range of the
 *   (class, column panel) units, balanced by rows per class, and writes
 *   straight into `out`; nothing is copied.
 * Within a job, rows reach per-class tiles (shifted, converted to float64,
 * packed into panels of 8 columns) in one of three ways:
 * - one class: consecutive rows, the next tile prefetched while the kernels
 *   run on this one;
 * - few classes (their staging tiles fit in L2): rows are read in order and
 *   packed straight into their class's staging tile, which goes through the
 *   kernels when full;
 * - many classes: per chunk of rows, a stable counting sort of row indices
 *   by class, then each class's rows are gathered (prefetched ahead).
 * The register-tiled kernels of gram_kern.h add each tile's lower-triangle
 * blocks into the class's matrix, so time does not grow with the number of
 * classes. Every element is summed in three levels (tile in registers, job,
 * jobs), which keeps float64 round-off far below the accuracy contract
 * whatever the number of rows; for float32 input, d and d_i*d_j are exact.
 * With out->f32_products (float32 rows, no weights, FULL; AVX-512), tiles
 * are packed as float32 d = fl32(x - k) and the products summed in float32
 * over runs of 8 rows and over the tile before the tile is added in
 * float64 (gram_avx512.c); the sums of x - k stay exact (float64). The
 * core rounds float32 classes' shifts to a coarse grid (src/stats.c
 * choose_shift), so fl32(x - k) is exact or rounds only x's own low bits,
 * without a bias common to every row.
 * While a staging tile goes through the kernels, the rows the scatter
 * reads next are prefetched into L2.
 */
#include "gram_kern.h"
#include "isa.h"

#include <omp.h>
#include <string.h>

#define DEFAULT_PRIVATE_BUDGET ((size_t)32 << 20)
#define DEFAULT_MIN_WORK ((size_t)1 << 21)
#define TILE_BYTES ((size_t)32 << 10)
#define CHUNK_BYTES ((size_t)4 << 20)
#define SMALL_CHUNK_BYTES ((size_t)384 << 10)
#define STAGE_BYTES ((size_t)2 << 20)
#define MIN_STAGE_ROWS ((size_t)16)
#define MAX_CHUNK_ROWS ((size_t)1 << 20)
#define MIN_CHUNK_ROWS ((size_t)4096)

static gmle__gram_tuning tuning;

void gmle__gram_set_tuning(const gmle__gram_tuning *t) {
  if (t)
    tuning = *t;
  else
    memset(&tuning, 0, sizeof tuning);
}

/* The kernel set for this call. */
static const gmle__gram_isa *pick_isa(void) {
#ifdef GMLE__GRAM_X86
  switch (gmle__cpu_isa()) {
  case GMLE__ISA_AVX512:
    return &gmle__gram_isa_avx512;
  case GMLE__ISA_AVX2:
    return &gmle__gram_isa_avx2;
  case GMLE__ISA_GENERIC:
    break;
  }
#endif
  return &gmle__gram_isa_generic;
}

const char *gmle__gram_isa_name(void) { return pick_isa()->name; }

/* What every job shares. */
typedef struct plan {
  const gmle__batch *batch;
  const gmle__partial *out;
  const gmle__gram_isa *isa;
  size_t dim, n_classes, gram_len;
  size_t panels; /* panels of 8 columns */
  size_t units;  /* column units per class: panels (FULL) or 1 (DIAG) */
  size_t dpad;   /* 8 * panels */
  size_t tile;   /* rows per tile */
  size_t chunk;  /* rows per routing chunk */
  size_t elem_bytes, stride_b, row_b; /* bytes: element, row stride, row */
  int diag, routed;
  int chunk_pf; /* routed: chunks small enough to prefetch the next one */
  int f32;      /* float32 products (gmle__partial.f32_products) */
} plan;

typedef struct job {
  size_t row_lo, row_hi; /* rows scanned */
  size_t c_lo, c_hi;     /* classes [c_lo, c_hi) ... */
  size_t ja_lo, jb_hi;   /* ... units from (c_lo, ja_lo) to (c_hi-1, jb_hi) */
  /* destination */
  double *weight, *sum, *gram;
  uint64_t *rows;
  unsigned char *touched; /* private partials only */
  /* workspace */
  uint32_t *idx, *pos;
  double *tile_d, *tile_wd;      /* packed tile: d = x - k, and w*d */
  double *tile_sum, *tile_sumsq; /* its sums of w*d (and w*d*d, DIAG) */
  /* bucket routing (few classes): staging tiles, one per class */
  int bucket;
  int bucket32; /* staging tiles hold float32 rows (plan.f32, whole
                   classes) */
  size_t btile; /* rows per staging tile */
  double *stage_d, *stage_wd;      /* staging d, w*d */
  double *stage_sum, *stage_sumsq; /* their sums (of squares, DIAG) */
  double *wsum;                    /* their weights */
  float *shift32;                  /* bucket32: the shifts in float32 */
  uint32_t *stage_rows;            /* rows in each staging tile */
  /* the current routing chunk */
  size_t n_idx;       /* idx entries */
  int near;           /* gathers prefetch a few rows ahead themselves */
  gmle__gram_pf next; /* the next chunk, spread over this one's tiles */
} job;

/* The 64-byte lines (rows packed densely) or the rows of input rows
 * [r, r + n), from byte `off` of each row on. */
static gmle__gram_pf span_of(const plan *p, size_t r, size_t n, size_t off) {
  gmle__gram_pf f = {0};
  if (n == 0)
    return f;
  f.start = (const char *)p->batch->x + r * p->stride_b + off;
  if (p->stride_b <= 2 * p->row_b + 64) {
    f.count = ((n - 1) * p->stride_b + (p->row_b - off)) / 64 + 1;
  } else {
    f.stride = p->stride_b;
    f.bytes = p->row_b - off;
    f.count = n;
  }
  return f;
}

static void tile_into(const plan *p, job *jb, size_t c, size_t base,
                      const uint32_t *idx, size_t m, size_t ahead,
                      const gmle__gram_pf *far, size_t ja, size_t jhi) {
  const gmle__batch *b = p->batch;
  const size_t dim = p->dim;
  const int own = ja == 0; /* this job keeps the class's sums */
  gmle__gram_src s = {.x = b->x,
                      .dtype = b->dtype,
                      .row_stride = b->row_stride,
                      .dim = dim,
                      .weights = b->weights,
                      .shift = p->out->shift + c * dim,
                      .base = base,
                      .idx = idx,
                      .ahead = ahead,
                      .near = idx != NULL && jb->near,
                      .far = *far};
  double w;
  if (p->diag) {
    memset(jb->tile_sum, 0, p->dpad * sizeof(double));
    memset(jb->tile_sumsq, 0, p->dpad * sizeof(double));
    w = p->isa->diag(&s, m, jb->tile_sum, jb->tile_sumsq);
    double *g = jb->gram + c * dim;
    for (size_t j = 0; j < dim; j++)
      g[j] += jb->tile_sumsq[j];
  } else if (p->f32 && ja == 0 && jhi == p->units) {
    memset(jb->tile_sum, 0, p->dpad * sizeof(double));
    p->isa->pack32(&s, m, (float *)jb->tile_d, jb->tile_sum);
    p->isa->full32((const float *)jb->tile_d, m, dim,
                   jb->gram + c * p->gram_len, NULL);
    w = (double)m;
  } else {
    const size_t ldp = p->tile * 8;
    if (own)
      memset(jb->tile_sum, 0, p->dpad * sizeof(double));
    w = p->isa->pack(&s, m, ja, ldp, jb->tile_d,
                     b->weights ? jb->tile_wd : NULL,
                     own ? jb->tile_sum : NULL);
    p->isa->full(jb->tile_d, b->weights ? jb->tile_wd : jb->tile_d, ldp, m, dim,
                 ja, jhi, jb->gram + c * p->gram_len);
  }
  if (own) {
    double *sum = jb->sum + c * dim;
    for (size_t j = 0; j < dim; j++)
      sum[j] += jb->tile_sum[j];
    jb->weight[c] += w;
    jb->rows[c] += m;
  }
  if (jb->touched)
    jb->touched[c] = 1;
}

/* m rows of class c (input rows base + idx[k], or base + k) in tiles;
 * `after` more idx entries of the chunk follow them. */
static void class_rows(const plan *p, job *jb, size_t c, size_t base,
                       const uint32_t *idx, size_t m, size_t after) {
  const size_t ja = c == jb->c_lo ? jb->ja_lo : 0;
  const size_t jhi = c + 1 == jb->c_hi ? jb->jb_hi : p->units;
  if (ja >= jhi)
    return;
  const size_t off = p->diag ? 0 : 8 * ja * p->elem_bytes;
  for (size_t k = 0; k < m; k += p->tile) {
    const size_t mt = m - k < p->tile ? m - k : p->tile;
    gmle__gram_pf far = {0};
    if (idx) {
      /* this tile's share of the next chunk */
      if (jb->next.start) {
        const size_t pos = (size_t)(idx + k - jb->idx), n = jb->n_idx;
        far = jb->next;
        far.first = (size_t)((double)pos * (double)jb->next.count / (double)n);
        far.count =
            (size_t)((double)(pos + mt) * (double)jb->next.count / (double)n) -
            far.first;
      }
      tile_into(p, jb, c, base, idx + k, mt, m - k - mt + after, &far, ja, jhi);
    } else {
      /* the next tile */
      const size_t left = m - k - mt;
      far = span_of(p, base + k + mt, left < p->tile ? left : p->tile, off);
      tile_into(p, jb, c, base + k, NULL, mt, 0, &far, ja, jhi);
    }
  }
}

/* Bucket routing: the staging tile of class c (relative to c_lo) into the
 * job's destination. */
static void bucket_flush(const plan *p, job *jb, size_t c,
                         const gmle__gram_pf *pf) {
  const size_t m = jb->stage_rows[c], cls = jb->c_lo + c, dim = p->dim;
  const size_t ja = cls == jb->c_lo ? jb->ja_lo : 0;
  const size_t jhi = cls + 1 == jb->c_hi ? jb->jb_hi : p->units;
  const size_t stage = p->panels * jb->btile * 8;
  double *st = jb->stage_sum + c * p->dpad;
  if (m == 0)
    return;
  if (p->diag) {
    double *sq = jb->stage_sumsq + c * p->dpad, *g = jb->gram + cls * dim;
    for (size_t j = 0; j < dim; j++)
      g[j] += sq[j];
    memset(sq, 0, p->dpad * sizeof(double));
  } else if (jb->bucket32) {
    const size_t ld32 = (dim + 15) / 16 * 16;
    p->isa->full32((const float *)jb->stage_d + c * jb->btile * ld32, m, dim,
                   jb->gram + cls * p->gram_len, pf);
    /* st holds the sums of x: sum(x) - m k, exact for such tiles */
    const double *k = p->out->shift + cls * dim;
    for (size_t j = 0; j < dim; j++)
      st[j] -= (double)m * k[j];
  } else if (ja < jhi) {
    double *sb = jb->stage_d + c * stage;
    p->isa->full(sb, jb->stage_wd ? jb->stage_wd + c * stage : sb,
                 jb->btile * 8, m, dim, ja, jhi, jb->gram + cls * p->gram_len);
  }
  if (ja == 0) {
    double *sum = jb->sum + cls * dim;
    for (size_t j = 0; j < dim; j++)
      sum[j] += st[j];
    jb->weight[cls] += p->batch->weights ? jb->wsum[c] : (double)m;
    jb->rows[cls] += m;
  }
  if (jb->touched)
    jb->touched[cls] = 1;
  memset(st, 0, p->dpad * sizeof(double));
  jb->wsum[c] = 0.0;
  jb->stage_rows[c] = 0;
}

static void run_bucket(const plan *p, job *jb) {
  const gmle__batch *b = p->batch;
  const size_t nc = jb->c_hi - jb->c_lo;
  gmle__gram_bucket bk = {.x = b->x,
                          .dtype = b->dtype,
                          .row_stride = b->row_stride,
                          .dim = p->dim,
                          .weights = b->weights,
                          .labels = b->labels,
                          .shift = p->out->shift,
                          .c_lo = jb->c_lo,
                          .n_cls = nc,
                          .stage_d = jb->stage_d,
                          .stage_wd = jb->stage_wd,
                          .stage = jb->bucket32
                                       ? jb->btile * ((p->dim + 15) / 16 * 16)
                                       : p->panels * jb->btile * 8,
                          .ldp = jb->btile * 8,
                          .tile = jb->btile,
                          .dpad = p->dpad,
                          .stage_rows = jb->stage_rows,
                          .stage_sum = jb->stage_sum,
                          .stage_sumsq = jb->stage_sumsq,
                          .wsum = jb->wsum,
                          .shift32 = jb->shift32};
  memset(jb->stage_rows, 0, nc * sizeof *jb->stage_rows);
  memset(jb->stage_sum, 0, nc * p->dpad * sizeof(double));
  if (jb->stage_sumsq)
    memset(jb->stage_sumsq, 0, nc * p->dpad * sizeof(double));
  memset(jb->wsum, 0, nc * sizeof(double));
  /* While a tile's Gram keeps the FMA units busy, the rows the scatter
   * reads next (about a tile's worth between flushes; two ahead) stream
   * into L2: rows [r, pf_next) have been asked for. */
  size_t pf_next = jb->row_lo;
  for (size_t r = jb->row_lo; r < jb->row_hi;) {
    size_t full;
    r = jb->bucket32 ? p->isa->scatter32(&bk, r, jb->row_hi, &full)
                     : p->isa->scatter(&bk, r, jb->row_hi, &full);
    if (full != SIZE_MAX) {
      const size_t want =
          jb->row_hi - r < 2 * jb->btile ? jb->row_hi : r + 2 * jb->btile;
      const size_t from = pf_next > r ? pf_next : r;
      gmle__gram_pf pf = {0};
      if (jb->bucket32 && want > from) {
        pf = span_of(p, from, want - from, 0);
        pf_next = want;
      }
      bucket_flush(p, jb, full, &pf);
    }
  }
  for (size_t c = 0; c < nc; c++)
    bucket_flush(p, jb, c, NULL);
}

static void run_job(const plan *p, job *jb) {
  if (jb->c_lo >= jb->c_hi || jb->row_lo >= jb->row_hi)
    return;
  if (jb->bucket) {
    run_bucket(p, jb);
    return;
  }
  if (!p->routed) {
    if (jb->c_lo == 0)
      class_rows(p, jb, 0, jb->row_lo, NULL, jb->row_hi - jb->row_lo, 0);
    return;
  }
  const int32_t *labels = p->batch->labels;
  const size_t c_lo = jb->c_lo, nc = jb->c_hi - jb->c_lo;
  uint32_t *pos = jb->pos;
  for (size_t r0 = jb->row_lo; r0 < jb->row_hi; r0 += p->chunk) {
    const size_t n = jb->row_hi - r0 < p->chunk ? jb->row_hi - r0 : p->chunk;
    const int32_t *lab = labels + r0;
    memset(pos, 0, nc * sizeof *pos);
    for (size_t k = 0; k < n; k++) {
      const size_t c = (size_t)(uint32_t)lab[k] - c_lo;
      if (c < nc)
        pos[c]++;
    }
    uint32_t acc = 0;
    for (size_t c = 0; c < nc; c++) {
      const uint32_t t = pos[c];
      pos[c] = acc;
      acc += t;
    }
    for (size_t k = 0; k < n; k++) {
      const size_t c = (size_t)(uint32_t)lab[k] - c_lo;
      if (c < nc)
        jb->idx[pos[c]++] = (uint32_t)k;
    }
    /* Small chunks: the next one streams in while this one is done, and
     * only the first is gathered straight from memory. Large chunks (many
     * classes): every gather prefetches its own rows. */
    jb->n_idx = acc;
    jb->near = !p->chunk_pf || r0 == jb->row_lo;
    memset(&jb->next, 0, sizeof jb->next);
    if (p->chunk_pf && r0 + n < jb->row_hi) {
      const size_t nn = jb->row_hi - (r0 + n);
      jb->next = span_of(p, r0 + n, nn < p->chunk ? nn : p->chunk, 0);
    }
    uint32_t start = 0;
    for (size_t c = 0; c < nc; c++) {
      if (pos[c] > start)
        class_rows(p, jb, c_lo + c, r0, jb->idx + start, pos[c] - start,
                   acc - pos[c]);
      start = pos[c];
    }
  }
}

/* The output partition: units (c, J) in order, job t taking those whose
 * preceding cost lies in [t, t+1) * total / nt, costed by rows and by the
 * rows of the triangle each column panel covers. */
static void split_units(const plan *p, const uint64_t *cnt, size_t nt,
                        job *jobs) {
  const size_t C = p->n_classes, nj = p->units;
  double total = 0.0;
  for (size_t c = 0; c < C; c++)
    for (size_t J = 0; J < nj; J++)
      total += (double)cnt[c] * (double)(p->diag ? 1 : p->dim - 8 * J + 4);
  for (size_t t = 0; t < nt; t++)
    jobs[t].c_lo = jobs[t].c_hi = 0;
  double cum = 0.0;
  for (size_t c = 0; c < C; c++) {
    if (cnt[c] == 0)
      continue;
    for (size_t J = 0; J < nj; J++) {
      size_t t = total > 0 ? (size_t)(cum / total * (double)nt) : 0;
      if (t >= nt)
        t = nt - 1;
      job *jb = &jobs[t];
      if (jb->c_hi == 0) { /* first unit of job t */
        jb->c_lo = c;
        jb->ja_lo = J;
      }
      jb->c_hi = c + 1;
      jb->jb_hi = J + 1;
      cum += (double)cnt[c] * (double)(p->diag ? 1 : p->dim - 8 * J + 4);
    }
  }
}

static void free_jobs(job *jobs, size_t nt) {
  if (!jobs)
    return;
  for (size_t t = 0; t < nt; t++) {
    job *jb = &jobs[t];
    gmle__free(jb->idx);
    gmle__free(jb->pos);
    gmle__aligned_free(jb->tile_d);
    gmle__aligned_free(jb->tile_wd);
    gmle__aligned_free(jb->tile_sum);
    gmle__aligned_free(jb->tile_sumsq);
    gmle__aligned_free(jb->stage_d);
    gmle__aligned_free(jb->stage_wd);
    gmle__aligned_free(jb->stage_sum);
    gmle__aligned_free(jb->stage_sumsq);
    gmle__free(jb->wsum);
    gmle__aligned_free(jb->shift32);
    gmle__free(jb->stage_rows);
    if (jb->touched) { /* a private partial */
      gmle__free(jb->touched);
      gmle__free(jb->weight);
      gmle__free(jb->rows);
      gmle__free(jb->sum);
      gmle__free(jb->gram);
    }
  }
  gmle__free(jobs);
}

static size_t clamp_size(size_t v, size_t lo, size_t hi) {
  return v < lo ? lo : (v > hi ? hi : v);
}

/* Add private partials 1..nt-1 into out, in job order, class by class. */
static void reduce_private(const plan *p, job *jobs, size_t nt) {
  const gmle__partial *out = p->out;
  const size_t C = p->n_classes, dim = p->dim, gl = p->gram_len;
  const int diag = p->diag;
  long nc = (long)C;
#pragma omp parallel for num_threads((int)nt) schedule(dynamic, 16)
  for (long ci = 0; ci < nc; ci++) {
    const size_t c = (size_t)ci;
    for (size_t t = 1; t < nt; t++) {
      const job *jb = &jobs[t];
      if (!jb->touched[c])
        continue;
      out->weight[c] += jb->weight[c];
      out->rows[c] += jb->rows[c];
      for (size_t j = 0; j < dim; j++)
        out->sum[c * dim + j] += jb->sum[c * dim + j];
      double *g = out->gram + c * gl;
      const double *h = jb->gram + c * gl;
      if (diag) {
        for (size_t j = 0; j < dim; j++)
          g[j] += h[j];
      } else {
        for (size_t i = 0; i < dim; i++)
          for (size_t j = 0; j <= i; j++)
            g[i * dim + j] += h[i * dim + j];
      }
    }
  }
}

/* The plan's sizes and kernel set for batch b into out. */
static void plan_init(plan *p, const gmle__batch *b, const gmle__partial *out) {
  memset(p, 0, sizeof *p);
  p->batch = b;
  p->out = out;
  p->isa = pick_isa();
  p->dim = out->dim;
  p->n_classes = out->n_classes;
  p->gram_len = out->gram_len;
  p->diag = out->mode == GMLE_STATS_DIAG;
  p->panels = (p->dim + 7) / 8;
  p->units = p->diag ? 1 : p->panels;
  p->dpad = 8 * p->panels;
  p->routed = b->labels != NULL && p->n_classes > 1;
  p->f32 = out->f32_products && b->dtype == GMLE_F32 && !b->weights &&
           !p->diag && p->isa->pack32 && p->isa->full32 && p->isa->scatter32;
  /* the float32 kernels subtract float32 shifts */
  for (size_t i = 0; p->f32 && i < p->n_classes * p->dim; i++)
    p->f32 = (double)(float)out->shift[i] == out->shift[i];
  p->elem_bytes = gmle__dtype_size(b->dtype);
  p->stride_b = b->row_stride * p->elem_bytes;
  p->row_b = p->dim * p->elem_bytes;
}

/* Threads: enough work (*work multiply-adds, roughly) for each, and never
 * more than asked for. */
static size_t plan_threads(const plan *p, const gmle_context *ctx,
                           double *work) {
  size_t nt = ctx && ctx->n_threads > 1 ? (size_t)ctx->n_threads : 1;
  *work = (double)p->batch->n_rows *
          (p->diag ? (double)p->dpad
                   : (double)(p->panels * (p->panels + 1) / 2 * 64 + p->dpad));
  const double min_work =
      (double)(tuning.min_work ? tuning.min_work : DEFAULT_MIN_WORK);
  const double want = *work / min_work;
  if (want < (double)nt)
    nt = want < 1.0 ? 1 : (size_t)want;
  return nt;
}

/* Tile rows: the packed tile in L1 where possible. Routing chunk: with few
 * classes, small enough to sit in L2 beside the next one, which is
 * prefetched while it is done; with many, a few MiB and enough rows per
 * class, each gather prefetching its own rows. */
static void plan_tiles(plan *p) {
  const size_t C = p->n_classes;
  if (tuning.tile_rows) {
    p->tile = (tuning.tile_rows + 7) / 8 * 8;
  } else if (p->diag) {
    p->tile = 256;
  } else {
    const size_t per = p->panels * 64 * (p->batch->weights ? 2 : 1);
    p->tile = clamp_size(TILE_BYTES / per / 8 * 8, 64, 256);
  }
  if (!p->routed)
    return;
  const size_t small =
      clamp_size(SMALL_CHUNK_BYTES / p->stride_b, 256, (size_t)1 << 16);
  if (small >= 128 * C) {
    p->chunk = small;
    p->chunk_pf = 1;
  } else {
    size_t r = CHUNK_BYTES / p->stride_b;
    if (C <= MAX_CHUNK_ROWS / 1024 && r < 1024 * C)
      r = 1024 * C;
    else if (C > MAX_CHUNK_ROWS / 1024)
      r = MAX_CHUNK_ROWS;
    p->chunk = clamp_size(r, MIN_CHUNK_ROWS, MAX_CHUNK_ROWS);
  }
  if (tuning.chunk_rows)
    p->chunk = clamp_size(tuning.chunk_rows, 1, MAX_CHUNK_ROWS);
}

/* Row partition with private partials, or the output partition: the
 * partials must fit the budget, and zeroing and adding them (for at most
 * the classes a job can reach) must cost little next to the job. */
static int use_row_partition(const plan *p, size_t nt, double work) {
  if (nt <= 1)
    return 1;
  const size_t N = p->batch->n_rows, C = p->n_classes;
  const size_t budget =
      tuning.private_budget ? tuning.private_budget : DEFAULT_PRIVATE_BUDGET;
  const double per_class = (double)(p->gram_len + p->dim + 2);
  const double priv_bytes = (double)(nt - 1) * (double)C * per_class * 8.0;
  const size_t cr = p->routed ? C : 1;
  const double reach = (double)(cr < N / nt + 1 ? cr : N / nt + 1);
  return priv_bytes <= (double)budget &&
         reach * per_class * 4.0 * 8.0 * (double)nt <= work;
}

/* The rows and units of each job; 0 when out of memory. */
static int partition_jobs(const plan *p, job *jobs, size_t nt, int by_rows) {
  const size_t N = p->batch->n_rows, C = p->n_classes;
  if (by_rows) {
    for (size_t t = 0; t < nt; t++) {
      jobs[t].row_lo = N / nt * t + (N % nt) * t / nt;
      jobs[t].row_hi = N / nt * (t + 1) + (N % nt) * (t + 1) / nt;
      jobs[t].c_lo = 0;
      jobs[t].c_hi = C;
      jobs[t].ja_lo = 0;
      jobs[t].jb_hi = p->units;
    }
    return 1;
  }
  uint64_t *cnt = gmle__calloc(C, sizeof *cnt);
  if (!cnt)
    return 0;
  if (p->routed)
    for (size_t r = 0; r < N; r++)
      cnt[(uint32_t)p->batch->labels[r]]++;
  else
    cnt[0] = N;
  split_units(p, cnt, nt, jobs);
  gmle__free(cnt);
  for (size_t t = 0; t < nt; t++) {
    jobs[t].row_lo = 0;
    jobs[t].row_hi = N;
  }
  return 1;
}

/* Bucket routing while the job's nc classes' staging tiles (at least
 * MIN_STAGE_ROWS rows; DIAG: only sums) and their matrices stay in cache;
 * otherwise sorted gathers. Sets jb->bucket and jb->btile. */
static void choose_bucket(const plan *p, job *jb, size_t nc) {
  if (!p->routed || tuning.no_bucket ||
      (double)nc * (double)p->gram_len * 8.0 > (double)STAGE_BYTES)
    return;
  if (p->diag) {
    jb->btile = p->tile;
    jb->bucket = nc * 2 * p->dpad * sizeof(double) <= STAGE_BYTES;
  } else {
    const size_t per_row = nc * p->panels * 64 * (p->batch->weights ? 2 : 1);
    const size_t rows = STAGE_BYTES / per_row / 8 * 8;
    jb->btile = rows < p->tile ? rows : p->tile;
    jb->bucket = jb->btile >= MIN_STAGE_ROWS;
  }
}

/* A bucket job's staging tiles and sums; 0 when out of memory. */
static int bucket_workspace(const plan *p, job *jb, size_t nc) {
  const size_t dim = p->dim;
  jb->bucket32 = p->f32 && jb->ja_lo == 0 && jb->jb_hi == p->units;
  if (jb->bucket32) {
    const size_t ld32 = (dim + 15) / 16 * 16;
    jb->shift32 = gmle__aligned_alloc(nc * ld32 * sizeof(float));
    if (!jb->shift32)
      return 0;
    for (size_t c = 0; c < nc; c++)
      for (size_t j = 0; j < ld32; j++)
        jb->shift32[c * ld32 + j] =
            j < dim ? (float)p->out->shift[(jb->c_lo + c) * dim + j] : 0.0f;
  }
  jb->stage_sum = gmle__aligned_alloc(nc * p->dpad * sizeof(double));
  jb->wsum = gmle__malloc(nc * sizeof(double));
  jb->stage_rows = gmle__malloc(nc * sizeof(uint32_t));
  if (!jb->stage_sum || !jb->wsum || !jb->stage_rows)
    return 0;
  if (p->diag) {
    jb->stage_sumsq = gmle__aligned_alloc(nc * p->dpad * sizeof(double));
    return jb->stage_sumsq != NULL;
  }
  jb->stage_d = gmle__aligned_alloc(nc * p->panels * jb->btile * 64);
  if (!jb->stage_d)
    return 0;
  if (p->batch->weights) {
    jb->stage_wd = gmle__aligned_alloc(nc * p->panels * jb->btile * 64);
    if (!jb->stage_wd)
      return 0;
  }
  return 1;
}

/* A job without buckets: gather indices (routed), the tile's sums, and
 * the packed tile (FULL) or the sums of squares (DIAG); 0 when out of
 * memory. */
static int tile_workspace(const plan *p, job *jb, size_t nc) {
  if (p->routed) {
    const size_t n = jb->row_hi - jb->row_lo;
    jb->idx = gmle__malloc((n < p->chunk ? n : p->chunk) * sizeof *jb->idx);
    jb->pos = gmle__malloc(nc * sizeof *jb->pos);
    if (!jb->idx || !jb->pos)
      return 0;
  }
  jb->tile_sum = gmle__aligned_alloc(p->dpad * sizeof(double));
  if (!jb->tile_sum)
    return 0;
  if (p->diag) {
    jb->tile_sumsq = gmle__aligned_alloc(p->dpad * sizeof(double));
    return jb->tile_sumsq != NULL;
  }
  const size_t tb = p->panels * p->tile * 8 * sizeof(double);
  jb->tile_d = gmle__aligned_alloc(tb);
  if (!jb->tile_d)
    return 0;
  if (p->batch->weights) {
    jb->tile_wd = gmle__aligned_alloc(tb);
    if (!jb->tile_wd)
      return 0;
  }
  return 1;
}

/* Where job t's sums go: its private partials (row partition, t > 0) or
 * out itself; 0 when out of memory. */
static int job_destination(const plan *p, job *jb, size_t t, int by_rows) {
  const gmle__partial *out = p->out;
  const size_t C = p->n_classes;
  if (!by_rows || t == 0) {
    jb->weight = out->weight;
    jb->rows = out->rows;
    jb->sum = out->sum;
    jb->gram = out->gram;
    return 1;
  }
  jb->touched = gmle__calloc(C, 1);
  if (!jb->touched)
    return 0;
  jb->weight = gmle__calloc(C, sizeof(double));
  jb->rows = gmle__calloc(C, sizeof(uint64_t));
  jb->sum = gmle__calloc(C * p->dim, sizeof(double));
  jb->gram = gmle__calloc(C * p->gram_len, sizeof(double));
  return jb->weight && jb->rows && jb->sum && jb->gram;
}

/* Workspace and destinations of every job; nothing is written to out
 * before this has all succeeded. 0 when out of memory. */
static int prepare_jobs(const plan *p, job *jobs, size_t nt, int by_rows) {
  for (size_t t = 0; t < nt; t++) {
    job *jb = &jobs[t];
    if (jb->c_lo >= jb->c_hi)
      continue;
    const size_t nc = jb->c_hi - jb->c_lo;
    choose_bucket(p, jb, nc);
    if (!(jb->bucket ? bucket_workspace(p, jb, nc)
                     : tile_workspace(p, jb, nc)) ||
        !job_destination(p, jb, t, by_rows))
      return 0;
  }
  return 1;
}

gmle_status gmle__cpu_accumulate(gmle_context *ctx, const gmle__batch *b,
                                 gmle__partial *out) {
  if (!b || !out || b->dim != out->dim || out->dim == 0 || out->n_classes == 0)
    return gmle__error(ctx, GMLE_E_INTERNAL,
                       "gram: inconsistent batch and partial");
  if (b->n_rows == 0)
    return GMLE_OK;
  plan p;
  plan_init(&p, b, out);
  double work;
  const size_t nt = plan_threads(&p, ctx, &work);
  plan_tiles(&p);
  const int by_rows = use_row_partition(&p, nt, work);
  job *jobs = gmle__calloc(nt, sizeof *jobs);
  if (!jobs || !partition_jobs(&p, jobs, nt, by_rows) ||
      !prepare_jobs(&p, jobs, nt, by_rows)) {
    free_jobs(jobs, nt);
    return gmle__error(ctx, GMLE_E_OUT_OF_MEMORY,
                       "gram: out of memory for %zu threads' workspace", nt);
  }
  if (nt == 1) {
    run_job(&p, &jobs[0]);
  } else {
#pragma omp parallel num_threads((int)nt)
    {
      const size_t tid = (size_t)omp_get_thread_num();
      const size_t nth = (size_t)omp_get_num_threads();
      for (size_t t = tid; t < nt; t += nth)
        run_job(&p, &jobs[t]);
    }
    if (by_rows)
      reduce_private(&p, jobs, nt);
  }
  free_jobs(jobs, nt);
  return GMLE_OK;
}
