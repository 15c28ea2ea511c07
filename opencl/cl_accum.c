/* cl_accum.c -- per-class shifted sums and Gram matrices on an OpenCL device.
 *
 * Scheme (deterministic: no atomics, a fixed order everywhere):
 * 1. The batch is taken in super-batches of SUPER_ROWS rows (a constant, so
 *    that results depend on the data alone, never on device memory). The
 *    host sorts a super-batch's row indices by class once (a counting sort:
 *    work does not grow with the number of classes) and cuts every class
 *    into chunks of at most R rows (R depends on D only).
 * 2. Consecutive chunks form a sub-batch that fits a staging slot. The host
 *    packs its rows (class-sorted, padded to DP columns, weights and the
 *    chunk table after them) into slot i%2 -- a pinned buffer copied with a
 *    non-blocking write on the copy queue, or on host-unified devices the
 *    mapped device buffer itself -- and launches the kernel on the compute
 *    queue waiting on that copy's event: packing and copying sub-batch i+1
 *    overlap the kernel of sub-batch i. Partials come back with a
 *    non-blocking read; the caller's rows are no longer needed once the
 *    last sub-batch is packed, and nothing is left in flight on return.
 * 3. Every work-item reduces one micro-tile of one chunk over the chunk's
 *    rows in order into its own output slot; the host adds the chunk
 *    partials of each class in chunk order, in float64. Chunk boundaries
 *    never depend on how chunks were grouped into sub-batches, so splitting
 *    a sub-batch after CL_OUT_OF_RESOURCES / CL_MEM_OBJECT_ALLOCATION_FAILURE
 *    gives bit-identical results; when a single chunk does not fit, the call
 *    fails with GMLE_E_DEVICE_OOM (the core then leaves the statistics as
 *    they were). Any other failure once work is queued marks the context
 *    lost (GMLE_E_DEVICE_LOST now and on every later call).
 * Precision: d = x - k in float64 and float64 sums where the device has
 * cl_khr_fp64 (agreement with the CPU backend ~1e-15). Without it, each
 * chunk is summed in float32 with compensated (Kahan) sums, d = x - k in
 * float32 (exact for rows near the shift, which is rounded to float32), and
 * the host merges chunks in float64: on float32 rows with |mean|/sd = 1e4
 * this reached 5e-14 relative error in means and 2e-9 in covariances
 * (Frobenius), well inside the float32 contract (1e-7, 1e-6). Float64 rows
 * are then refused (GMLE_E_UNSUPPORTED).
 */
#include "cl_internal.h"

#include <string.h>

#define SUPER_ROWS ((size_t)1 << 22)

typedef struct chunk {
  uint32_t start; /* first sorted position in the super-batch */
  uint32_t count;
  uint32_t cls;
} chunk;

typedef struct plan {
  size_t D, isz, asz; /* input and accumulator element sizes */
  int full, has_w;
  size_t DP, VW, MB; /* padded row stride, vector width, micro-tile rows */
  size_t NV;         /* full: column vectors per micro-tile */
  size_t nt;         /* work-items per chunk */
  size_t local;      /* work-group size (dimension 0) */
  size_t part;       /* elements of one chunk's partial */
  size_t R;          /* rows per chunk */
  uint32_t *tiles;   /* full: [2 nt] first row and column of micro-tiles */
  long *map;         /* partial element -> i*D+j (>= 0) of the Gram,
                        -(j+2) for sum j, -1 ignored */
  cl_kernel kernel;
} plan;

typedef struct job {
  int busy;
  size_t q0, q1;
  cl_event ev_read;
} job;

static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }

static gmle_status plan_init(gmle_context *ctx, const gmle__batch *b,
                             const gmle__partial *out, plan *p) {
  gmle__cl_state *s = gmle__cl_state_of(ctx);
  memset(p, 0, sizeof *p);
  p->D = b->dim;
  p->isz = gmle__dtype_size(b->dtype);
  p->asz = s->fp64 ? sizeof(double) : sizeof(float);
  p->full = out->mode == GMLE_STATS_FULL;
  p->has_w = b->weights != NULL;
  const size_t D = p->D, DA = p->full ? D + 1 : D;
  p->VW = DA <= 2 ? 2 : DA <= 4 ? 4 : 8;
  p->MB = p->VW < 4 ? p->VW : 4;
  /* Two column vectors per micro-tile on CPUs (more work per row loaded,
   * 8 vector registers), one on GPUs (fewer registers per work-item). */
  p->NV = p->full && !s->is_gpu && DA > p->VW ? 2 : 1;
  const size_t JW = p->NV * p->VW;
  p->DP = (DA + JW - 1) / JW * JW;
  const size_t DP = p->DP, VW = p->VW, MB = p->MB;
  if (p->full) {
    /* Micro-tiles MB x JW holding some (i, j), j <= i < D + 1. */
    size_t nt = 0;
    for (size_t i0 = 0; i0 < DA; i0 += MB)
      for (size_t j0 = 0; j0 <= i0 + MB - 1 && j0 < DA; j0 += JW)
        nt++;
    p->nt = nt;
    p->part = nt * MB * JW;
    /* Rows per chunk: enough that the partials stay a small fraction of
     * the rows copied (R * DP elements in, part out). */
    size_t R = p->part / DP * 16;
    p->R = R < 256 ? 256 : R > 8192 ? 8192 : R;
    p->tiles = gmle__malloc(2 * nt * sizeof *p->tiles);
    p->map = gmle__malloc(p->part * sizeof *p->map);
    if (!p->tiles || !p->map)
      return gmle__error(ctx, GMLE_E_OUT_OF_MEMORY,
                         "OpenCL accumulate: out of memory");
    size_t t = 0;
    for (size_t i0 = 0; i0 < DA; i0 += MB)
      for (size_t j0 = 0; j0 <= i0 + MB - 1 && j0 < DA; j0 += JW, t++) {
        p->tiles[2 * t] = (uint32_t)i0;
        p->tiles[2 * t + 1] = (uint32_t)j0;
        for (size_t e = 0; e < MB * JW; e++) {
          const size_t i = i0 + e / JW, j = j0 + e % JW;
          long v = -1;
          if (i < D && j <= i)
            v = (long)(i * D + j);
          else if (i == D && j < D)
            v = -(long)j - 2;
          p->map[t * MB * JW + e] = v;
        }
      }
  } else {
    p->nt = DP / VW;
    p->part = 2 * DP;
    p->R = 1024;
    p->map = gmle__malloc(p->part * sizeof *p->map);
    if (!p->map)
      return gmle__error(ctx, GMLE_E_OUT_OF_MEMORY,
                         "OpenCL accumulate: out of memory");
    for (size_t e = 0; e < 2 * DP; e++) {
      const size_t j = e % DP;
      p->map[e] = j >= D ? -1 : e < DP ? -(long)j - 2 : (long)j;
    }
  }
  p->local = p->nt < 64 ? p->nt : 64;
  if (p->local > s->max_wg)
    p->local = s->max_wg;
  char opts[256];
  snprintf(opts, sizeof opts,
           "-cl-std=CL1.2 -DIN_T=%s -DACC_T=%s%s -DCOMP=%d -DD=%zu -DDP=%zu "
           "-DVW=%zu -DMB=%zu -DNV=%zu%s%zu",
           b->dtype == GMLE_F64 ? "double" : "float",
           s->fp64 ? "double" : "float",
           s->fp64 || b->dtype == GMLE_F64 ? " -DNEED_FP64" : "", !s->fp64, D,
           DP, VW, MB, p->NV, p->full ? " -DNT=" : " -DNDIAG=", p->nt);
  return gmle__cl_kernel(ctx, GMLE__CL_SRC_ACCUM, opts,
                         p->full ? "gram_full" : "gram_diag", &p->kernel);
}

/* Counting sort of the super-batch [r0, r0+n) by class; chunks of at most
 * R rows per class; host sums of weights and row counts. */
static size_t sort_rows(const gmle__batch *b, size_t r0, size_t n, size_t np,
                        size_t R, size_t *off, uint32_t *perm, chunk *chunks,
                        gmle__partial *out) {
  memset(off, 0, (np + 1) * sizeof *off);
  for (size_t r = 0; r < n; r++)
    off[(b->labels ? (size_t)b->labels[r0 + r] : 0) + 1]++;
  for (size_t c = 0; c < np; c++) {
    out->rows[c] += off[c + 1];
    off[c + 1] += off[c];
  }
  /* off[c] now is the first position of class c; fill, advancing. */
  for (size_t r = 0; r < n; r++) {
    size_t c = b->labels ? (size_t)b->labels[r0 + r] : 0;
    perm[off[c]++] = (uint32_t)r;
  }
  /* off[c] is now the end of class c. */
  size_t nq = 0, begin = 0;
  for (size_t c = 0; c < np; c++) {
    const size_t end = off[c];
    double wsum = 0;
    for (size_t pos = begin; pos < end; pos++)
      wsum += b->weights ? b->weights[r0 + perm[pos]] : 1.0;
    out->weight[c] += wsum;
    for (size_t pos = begin; pos < end; pos += R) {
      chunks[nq].start = (uint32_t)pos;
      chunks[nq].count = (uint32_t)(end - pos < R ? end - pos : R);
      chunks[nq].cls = (uint32_t)c;
      nq++;
    }
    begin = end;
  }
  return nq;
}

/* The chunks [q0, q1) that fit one slot, q1 > q0. */
static size_t sub_end(const plan *p, const chunk *chunks, size_t nq, size_t q0,
                      size_t budget, size_t max_chunks) {
  const size_t row_bytes = p->DP * p->isz + (p->has_w ? p->asz : 0);
  const size_t part_bytes = p->part * p->asz;
  size_t q1 = q0 + 1, rows = chunks[q0].count;
  while (q1 < nq && q1 - q0 < max_chunks) {
    size_t r2 = rows + chunks[q1].count, n2 = q1 + 1 - q0;
    if (r2 * row_bytes + n2 * 16 + 128 > budget || n2 * part_bytes > budget)
      break;
    rows = r2;
    q1++;
  }
  return q1;
}

/* Rows perm[0..rows) of the super-batch at r0, class-sorted, into dst with
 * stride DP. */
static void pack_rows(const plan *p, const gmle__batch *b, size_t r0,
                      const uint32_t *perm, size_t rows, unsigned char *dst,
                      int nt) {
  const size_t D = p->D, DP = p->DP, isz = p->isz;
  const size_t rb = D * isz, db = DP * isz, sb = b->row_stride * isz;
  const unsigned char *x = b->x;
  const long n = (long)rows;
#pragma omp parallel for num_threads(nt) schedule(static) if (rows > 4096)
  for (long pos = 0; pos < n; pos++) {
    unsigned char *d = dst + (size_t)pos * db;
    memcpy(d, x + (r0 + perm[pos]) * sb, rb);
    if (DP > D) {
      memset(d + rb, 0, db - rb);
      if (p->full) {
        if (isz == sizeof(double))
          ((double *)(void *)d)[D] = 1.0;
        else
          ((float *)(void *)d)[D] = 1.0f;
      }
    }
  }
}

/* Pack, copy and launch the chunks [q0, q1) in slot `sl`. */
static gmle_status launch(gmle_context *ctx, const plan *p,
                          const gmle__batch *b, size_t r0, const uint32_t *perm,
                          const chunk *chunks, size_t q0, size_t q1, int sl,
                          cl_mem shift, cl_mem tiles, job *jb, cl_int *err) {
  gmle__cl_state *s = gmle__cl_state_of(ctx);
  const size_t nq = q1 - q0, DP = p->DP, first = chunks[q0].start;
  const size_t rows = chunks[q1 - 1].start + chunks[q1 - 1].count - first;
  const size_t x_bytes = rows * DP * p->isz;
  const size_t w_off = align64(x_bytes);
  const size_t t_off = align64(w_off + (p->has_w ? rows * p->asz : 0));
  const size_t in_bytes = t_off + nq * 4 * sizeof(uint32_t);
  const size_t out_bytes = nq * p->part * p->asz;
  gmle_status st;
  *err = CL_SUCCESS;
#define SLOT_TRY(expr)                                                         \
  do {                                                                         \
    st = (expr);                                                               \
    if (st != GMLE_OK) {                                                       \
      *err = st == GMLE_E_DEVICE_OOM ? CL_MEM_OBJECT_ALLOCATION_FAILURE        \
                                     : CL_INVALID_VALUE;                       \
      return st;                                                               \
    }                                                                          \
  } while (0)
  SLOT_TRY(gmle__cl_pinned_reserve(ctx, &s->down[sl], out_bytes));
  SLOT_TRY(gmle__cl_devbuf_reserve(ctx, &s->dev_out[sl], out_bytes,
                                   CL_MEM_WRITE_ONLY));
  void *ptr = NULL;
  SLOT_TRY(gmle__cl_stage_begin(ctx, sl, in_bytes, &ptr));
  /* Pack rows in class-sorted order with the padded stride (full mode:
   * the constant column x_D = 1, then zeros), then weights, then the chunk
   * table. A CPU device shares the cores: pack on one thread there. */
  unsigned char *up = ptr;
  pack_rows(p, b, r0, perm + first, rows, up, s->is_cpu ? 1 : ctx->n_threads);
  if (p->has_w) {
    if (p->asz == sizeof(double)) {
      double *w = (double *)(void *)(up + w_off);
      for (size_t pos = 0; pos < rows; pos++)
        w[pos] = b->weights[r0 + perm[first + pos]];
    } else {
      float *w = (float *)(void *)(up + w_off);
      for (size_t pos = 0; pos < rows; pos++)
        w[pos] = (float)b->weights[r0 + perm[first + pos]];
    }
  }
  uint32_t *tab = (uint32_t *)(void *)(up + t_off);
  for (size_t q = q0; q < q1; q++) {
    tab[4 * (q - q0)] = chunks[q].start - (uint32_t)first;
    tab[4 * (q - q0) + 1] = chunks[q].count;
    tab[4 * (q - q0) + 2] = chunks[q].cls;
    tab[4 * (q - q0) + 3] = 0;
  }
  cl_event ev_w = NULL;
  SLOT_TRY(gmle__cl_stage_end(ctx, sl, in_bytes, &ev_w));
#undef SLOT_TRY
  cl_kernel k = p->kernel;
  const cl_ulong w_el = w_off / p->asz, t_el = t_off / sizeof(uint32_t);
  const cl_int has_w = p->has_w;
  cl_mem in = s->dev_in[sl].buf, outb = s->dev_out[sl].buf;
  st = gmle__cl_arg(ctx, k, 0, sizeof in, &in);
  if (st == GMLE_OK)
    st = gmle__cl_arg(ctx, k, 1, sizeof in, &in);
  if (st == GMLE_OK)
    st = gmle__cl_arg(ctx, k, 2, sizeof w_el, &w_el);
  if (st == GMLE_OK)
    st = gmle__cl_arg(ctx, k, 3, sizeof has_w, &has_w);
  if (st == GMLE_OK)
    st = gmle__cl_arg(ctx, k, 4, sizeof in, &in);
  if (st == GMLE_OK)
    st = gmle__cl_arg(ctx, k, 5, sizeof t_el, &t_el);
  if (st == GMLE_OK)
    st = gmle__cl_arg(ctx, k, 6, sizeof shift, &shift);
  cl_uint a = 7;
  if (st == GMLE_OK && p->full)
    st = gmle__cl_arg(ctx, k, a++, sizeof tiles, &tiles);
  if (st == GMLE_OK)
    st = gmle__cl_arg(ctx, k, a, sizeof outb, &outb);
  if (st != GMLE_OK) {
    gmle__cl_event_release(&ev_w);
    /* an out-of-resources failure may pass with a smaller sub-batch */
    *err =
        st == GMLE_E_DEVICE_OOM ? CL_OUT_OF_RESOURCES : CL_INVALID_KERNEL_ARGS;
    return st;
  }
  const size_t lsz[2] = {p->local, 1};
  const size_t gsz[2] = {(p->nt + p->local - 1) / p->local * p->local, nq};
  cl_int e =
      clEnqueueNDRangeKernel(s->q_run, k, 2, NULL, gsz, lsz, 1, &ev_w, NULL);
  gmle__cl_event_release(&ev_w);
  if (e != CL_SUCCESS) {
    *err = e;
    return gmle__cl_fail(ctx, e, "clEnqueueNDRangeKernel", "%s, %zu chunks",
                         p->full ? "gram_full" : "gram_diag", nq);
  }
  e = clEnqueueReadBuffer(s->q_run, outb, CL_FALSE, 0, out_bytes,
                          s->down[sl].ptr, 0, NULL, &jb->ev_read);
  if (e != CL_SUCCESS) {
    *err = e;
    return gmle__cl_fail(ctx, e, "clEnqueueReadBuffer",
                         "%zu bytes of partial sums", out_bytes);
  }
  clFlush(s->q_run);
  jb->busy = 1;
  jb->q0 = q0;
  jb->q1 = q1;
  return GMLE_OK;
}

/* Add the downloaded chunk partials of a finished job, in chunk order. */
static void merge(const plan *p, const chunk *chunks, const job *jb,
                  const void *down, gmle__partial *out) {
  const size_t D = p->D, G = out->gram_len;
  for (size_t q = jb->q0; q < jb->q1; q++) {
    const size_t c = chunks[q].cls, base = (q - jb->q0) * p->part;
    double *sum = out->sum + c * D, *gram = out->gram + c * G;
    for (size_t e = 0; e < p->part; e++) {
      const long m = p->map[e];
      if (m == -1)
        continue;
      const double v = p->asz == sizeof(double)
                           ? ((const double *)down)[base + e]
                           : (double)((const float *)down)[base + e];
      if (m >= 0)
        gram[m] += v;
      else
        sum[-m - 2] += v;
    }
  }
}

static void jobs_abandon(gmle__cl_state *s, job *jobs) {
  gmle__cl_drain(s);
  for (int i = 0; i < 2; i++) {
    gmle__cl_event_release(&jobs[i].ev_read);
    jobs[i].busy = 0;
  }
}

/* Run the chunks of one super-batch through the two slots. */
static gmle_status run_super(gmle_context *ctx, const plan *p,
                             const gmle__batch *b, size_t r0,
                             const uint32_t *perm, const chunk *chunks,
                             size_t nq, cl_mem shift, cl_mem tiles,
                             size_t *max_chunks, gmle__partial *out) {
  gmle__cl_state *s = gmle__cl_state_of(ctx);
  job jobs[2];
  memset(jobs, 0, sizeof jobs);
  size_t next = 0, merged = 0;
  int turn = 0;
  while (merged < nq) {
    gmle_status st = GMLE_OK;
    cl_int err = CL_SUCCESS;
    size_t tried = 0;
    if (next < nq && !jobs[turn].busy) {
      const size_t q1 =
          sub_end(p, chunks, nq, next, s->slot_budget, *max_chunks);
      tried = q1 - next;
      st = launch(ctx, p, b, r0, perm, chunks, next, q1, turn, shift, tiles,
                  &jobs[turn], &err);
      if (st == GMLE_OK) {
        next = q1;
        turn ^= 1;
        continue;
      }
    } else {
      job *jb = jobs[0].busy && jobs[0].q0 == merged ? &jobs[0] : &jobs[1];
      tried = jb->q1 - jb->q0;
      st = gmle__cl_wait(ctx, jb->ev_read, "accumulate (kernel or copy)", &err);
      if (st == GMLE_OK) {
        merge(p, chunks, jb, s->down[jb == &jobs[0] ? 0 : 1].ptr, out);
        gmle__cl_event_release(&jb->ev_read);
        jb->busy = 0;
        merged = jb->q1;
        continue;
      }
    }
    /* A failure: drain, and on out-of-memory retry the unmerged chunks in
     * smaller sub-batches. */
    jobs_abandon(s, jobs);
    if (!gmle__cl_is_oom(err) || tried <= 1) {
      gmle__cl_release_slots(s); /* nothing half-done survives the call */
      return st;
    }
    *max_chunks = tried / 2;
    gmle__cl_release_slots(s);
    next = merged;
    turn = 0;
    gmle__clear_error(ctx);
  }
  return GMLE_OK;
}

gmle_status gmle__cl_accumulate(gmle_context *ctx, const gmle__batch *b,
                                gmle__partial *out) {
  gmle__cl_state *s = gmle__cl_state_of(ctx);
  GMLE_TRY(gmle__cl_enter(ctx));
  if (b->n_rows == 0)
    return GMLE_OK;
  GMLE_RETURN_IF(b->dtype == GMLE_F64 && !s->fp64, ctx, GMLE_E_UNSUPPORTED,
                 "OpenCL accumulate: the device has no cl_khr_fp64, so it "
                 "cannot read float64 rows (%s); pass float32 rows or use the "
                 "CPU backend",
                 ctx->device_name);
  plan p;
  gmle_status st = plan_init(ctx, b, out, &p);
  const size_t np = out->n_classes, D = b->dim, DP = p.DP;
  const size_t sb = b->n_rows < SUPER_ROWS ? b->n_rows : SUPER_ROWS;
  const size_t max_chunks = sb / p.R + (np < sb ? np : sb) + 1;
  size_t *off = NULL;
  uint32_t *perm = NULL;
  chunk *chunks = NULL;
  unsigned char *kshift = NULL;
  cl_mem shift = NULL, tiles = NULL;
  if (st == GMLE_OK) {
    off = gmle__malloc((np + 1) * sizeof *off);
    perm = gmle__malloc(sb * sizeof *perm);
    chunks = gmle__malloc(max_chunks * sizeof *chunks);
    kshift = gmle__calloc(np * DP, p.asz);
    if (!off || !perm || !chunks || !kshift)
      st = gmle__error(ctx, GMLE_E_OUT_OF_MEMORY,
                       "OpenCL accumulate: out of memory for %zu rows", sb);
  }
  if (st == GMLE_OK) {
    /* The shifts in the accumulator's type, padded like the rows (the
     * constant column has shift 0), uploaded once; and the tile table. */
    for (size_t c = 0; c < np; c++)
      for (size_t j = 0; j < D; j++) {
        const double v = out->shift[c * D + j];
        if (p.asz == sizeof(double))
          ((double *)(void *)kshift)[c * DP + j] = v;
        else
          ((float *)(void *)kshift)[c * DP + j] = (float)v;
      }
    cl_int e = CL_SUCCESS;
    shift = clCreateBuffer(s->context, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                           np * DP * p.asz, kshift, &e);
    if (e != CL_SUCCESS) {
      shift = NULL;
      st = gmle__cl_fail(ctx, e, "clCreateBuffer", "%zu bytes of shifts",
                         np * DP * p.asz);
    } else if (p.full) {
      tiles =
          clCreateBuffer(s->context, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                         2 * p.nt * sizeof(uint32_t), p.tiles, &e);
      if (e != CL_SUCCESS) {
        tiles = NULL;
        st = gmle__cl_fail(ctx, e, "clCreateBuffer", "the tile table");
      }
    }
  }
  /* Out-of-memory splits last for this call; the next starts afresh. */
  size_t chunk_cap = (size_t)-1;
  gmle_status run_st = GMLE_OK;
  for (size_t r0 = 0; st == GMLE_OK && r0 < b->n_rows; r0 += SUPER_ROWS) {
    const size_t n = b->n_rows - r0 < SUPER_ROWS ? b->n_rows - r0 : SUPER_ROWS;
    const size_t nq = sort_rows(b, r0, n, np, p.R, off, perm, chunks, out);
    /* Work was queued: a failure other than out-of-memory loses the
     * context (the caller's statistics are left as they were). */
    run_st = run_super(ctx, &p, b, r0, perm, chunks, nq, shift, tiles,
                       &chunk_cap, out);
    st = gmle__cl_lose(ctx, run_st);
  }
  if (run_st == GMLE_E_DEVICE_OOM) {
    char why[GMLE__ERR_LEN];
    snprintf(why, sizeof why, "%s", gmle_context_error(ctx));
    gmle__error(ctx, GMLE_E_DEVICE_OOM,
                "OpenCL accumulate: out of device memory even for one chunk "
                "(at most %zu rows x %zu features) after splitting the batch "
                "(%s)",
                p.R, D, why);
    gmle__cl_release_slots(s);
  }
  if (shift)
    clReleaseMemObject(shift);
  if (tiles)
    clReleaseMemObject(tiles);
  gmle__free(kshift);
  gmle__free(chunks);
  gmle__free(perm);
  gmle__free(off);
  gmle__free(p.map);
  gmle__free(p.tiles);
  return st;
}
