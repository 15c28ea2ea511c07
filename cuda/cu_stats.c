/* cu_stats.c -- per-class statistics on the device: the host batches the
 * core hands to ops->accumulate, streamed through a ring of pinned staging
 * buffers, and batches already in device memory
 * (gmle_cuda_stats_add_device).
 *
 * A batch is cut into sub-batches of whole segments (cu_plan.h: segments
 * and chunk boundaries are fixed by the number of features, the element
 * size, the number of labels and whether the rows come from the host or
 * from device memory, so that the order of every float64 sum is the same
 * however the batch is split). For each sub-batch, on the compute stream:
 * routing keys (label, segment), a stable radix sort of the row indices by them
 * (the routed order: each class's rows contiguous, in row order), and the
 * bounds of every (label, segment) run, copied back; the host plans the chunks
 * (gmle__cu_plan_sub: several per large class, one per small class, which
 * then adds straight into its accumulators) and launches the kernels one
 * segment at a time (cuda/stats_kernels.cu), which add every chunk's
 * weights, sums and Gram tiles into float64 accumulators on the device. The
 * accumulators are copied back into the partial once, at the end. Work is
 * proportional to rows x tiles; per sub-batch the bounds are 2 x labels x
 * segments integers, and per batch only the classes present (the core
 * compacts the labels) are zeroed and copied back.
 *
 * Streaming (host batches): CU_NSLOT pinned slots and as many device slots.
 * While the GPU works on sub-batch i, the host packs sub-batch i+1 into
 * pinned slot (i+1) % CU_NSLOT and the copy stream moves it to the device;
 * events order the copy after the compute that last read that device slot
 * (consumed[]) and the host's packing after the copy that last read that
 * pinned slot (copied[]). Caller memory that is already pinned and dense is
 * copied from directly. Every path waits for both streams before returning,
 * so the caller's buffers are free when the call returns.
 *
 * Out of device memory: the cached buffers are released and the batch is
 * run again from the start with sub-batches of half as many segments, down
 * to one segment; then GMLE_E_DEVICE_OOM. The statistics are bit-identical
 * to an undisturbed run's. Nothing reaches the partial unless the whole
 * batch succeeded. */
#include "cu_module.h"

#include <math.h>
#include <string.h>

/* Bytes of rows per staged sub-batch. */
#define SUB_BYTES ((size_t)64 << 20)

static size_t align_up(size_t v) { return (v + 255) / 256 * 256; }

static int bits_for(size_t max_key) {
  int b = 0;
  while (b < 32 && (max_key >> b) != 0)
    b++;
  return b < 1 ? 1 : b;
}

/* What one batch's run shares across its sub-batches. */
typedef struct run {
  cu_state *S;
  size_t D, G, np, L;
  size_t seg_bytes; /* GMLE__CU_SEG_BYTES_HOST or _DEVICE */
  int diag, f64, t;
  int64_t n_tiles, n_ct;
  gmle__cu_geom g;
  gmle__cu_plan p; /* tables in pinned memory (segs: host) */
  /* device */
  double *acc_w, *acc_sum, *acc_g, *shift;
  uint32_t *keys_in, *keys, *idx, *iota, *bounds;
  void *sort_tmp;
  size_t sort_bytes;
  gmle__cu_chunk *d_chunks, *d_list;
  gmle__cu_group *d_groups;
  double *part_m, *part_g;
  /* pinned: bounds in */
  uint32_t *h_bounds;
  /* host */
  uint64_t *rows;            /* [np] */
  const int32_t *slot_of;    /* [L] label -> slot (-1: absent), or NULL */
  unsigned char *need_shift; /* [np], device batches only */
} run;

/* The tiling and the fixed geometry of a batch. */
static void run_geometry(run *R) {
  R->t = gmle__cu_gram_tile((int64_t)R->D);
  R->n_tiles = gmle__cu_gram_tiles((int64_t)R->D, R->t);
  R->n_ct = ((int64_t)R->D + 31) / 32;
  R->g = gmle__cu_plan_geom(R->D, R->f64 ? 8 : 4, R->seg_bytes, R->L,
                            R->diag ? R->n_ct : R->n_tiles);
}

/* Sizes and device/pinned buffers of a run over sub-batches of n_sub rows
 * (everything but the staging slots). */
static gmle_status run_alloc(run *R, size_t n_sub, int labelled) {
  cu_state *S = R->S;
  gmle_status st = GMLE_OK;
  const size_t D = R->D, np = R->np;
  const size_t nseg = gmle__cu_plan_nseg((int64_t)n_sub, R->g);
  gmle__cu_plan_caps(R->g, (int64_t)n_sub, R->L, np, R->need_shift != NULL,
                     &R->p);
  void *p;
  /* accumulators: weight [np], sum [np*D], gram [np*G] */
  const size_t acc_n = np * (1 + D + R->G);
  CU_CHECK(gmle__cu_dev(S, DB_ACC, acc_n * sizeof(double), &p));
  R->acc_w = p;
  R->acc_sum = R->acc_w + np;
  R->acc_g = R->acc_sum + np * D;
  CU_CHECK(gmle__cu_dev(S, DB_SHIFT, np * D * sizeof(double), &p));
  R->shift = p;
  const size_t parts = (size_t)R->p.cap_parts;
  CU_CHECK(
      gmle__cu_dev(S, DB_PART_M, parts * (1 + 2 * D) * sizeof(double), &p));
  R->part_m = p;
  R->part_g = NULL;
  if (!R->diag) {
    const size_t pg = parts * (size_t)R->n_tiles * (size_t)R->t * (size_t)R->t *
                      sizeof(double);
    CU_CHECK(gmle__cu_dev(S, DB_PART_G, pg, &p));
    R->part_g = p;
  }
  const size_t m_chunks = align_up(R->p.cap_chunks * sizeof(gmle__cu_chunk));
  const size_t m_groups =
      align_up(R->p.cap_groups * sizeof(gmle__cu_group) + 1);
  const size_t m_list = align_up(R->p.cap_list * sizeof(gmle__cu_chunk) + 1);
  CU_CHECK(gmle__cu_dev(S, DB_META, m_chunks + m_groups + m_list, &p));
  R->d_chunks = p;
  R->d_groups = (gmle__cu_group *)((char *)p + m_chunks);
  R->d_list = (gmle__cu_chunk *)((char *)p + m_chunks + m_groups);
  const size_t n_keys = R->L * nseg;
  const size_t m_bounds =
      labelled ? align_up(2 * n_keys * sizeof(uint32_t)) : 0;
  CU_CHECK(
      gmle__cu_pinned(S, HB_META, m_bounds + m_chunks + m_groups + m_list, &p));
  R->h_bounds = p;
  R->p.chunks = (gmle__cu_chunk *)((char *)p + m_bounds);
  R->p.groups = (gmle__cu_group *)((char *)p + m_bounds + m_chunks);
  R->p.list = (gmle__cu_chunk *)((char *)p + m_bounds + m_chunks + m_groups);
  R->p.segs = calloc(nseg ? nseg : 1, sizeof(gmle__cu_seg));
  if (!R->p.segs)
    return gmle__cu_error(S->h, GMLE_E_OUT_OF_MEMORY,
                          "CUDA: out of host memory (%zu segments)", nseg);
  if (labelled) {
    const size_t ib = align_up(n_sub * sizeof(uint32_t));
    CU_CHECK(gmle__cu_dev(S, DB_KEYS_IN, ib, &p));
    R->keys_in = p;
    CU_CHECK(gmle__cu_dev(S, DB_KEYS, ib, &p));
    R->keys = p;
    CU_CHECK(gmle__cu_dev(S, DB_IDX, ib, &p));
    R->idx = p;
    CU_CHECK(gmle__cu_dev(S, DB_IOTA, ib, &p));
    R->iota = p;
    CU_CHECK(gmle__cu_dev(S, DB_BOUNDS, 2 * n_keys * sizeof(uint32_t), &p));
    R->bounds = p;
    CU_TRY(S, gmle__cu_sort_bytes((int64_t)n_sub, &R->sort_bytes),
           "sizing the radix sort of %zu labels", n_sub);
    CU_CHECK(gmle__cu_dev(S, DB_SORT, R->sort_bytes, &R->sort_tmp));
  }
  CU_TRY(S, cudaMemsetAsync(R->acc_w, 0, acc_n * sizeof(double), S->compute),
         "cudaMemsetAsync(accumulators)");
done:
  return st;
}

/* Phase 1 of a sub-batch: route its ni rows by (label, segment) on the
 * compute stream and start copying the bounds back (event meta_ready). */
static gmle_status route(run *R, const int32_t *d_labels, size_t ni) {
  cu_state *S = R->S;
  gmle_status st = GMLE_OK;
  const size_t nseg = gmle__cu_plan_nseg((int64_t)ni, R->g);
  const size_t n_keys = R->L * nseg;
  CU_TRY(S,
         gmle__cu_route_keys(d_labels, (int64_t)ni, R->g.seg, (int64_t)nseg,
                             R->keys_in, R->iota, S->compute),
         "launching the routing-key kernel (%zu rows)", ni);
  CU_TRY(S,
         gmle__cu_sort(R->sort_tmp, R->sort_bytes, R->keys_in, R->keys, R->iota,
                       R->idx, (int64_t)ni, bits_for(n_keys - 1), S->compute),
         "radix sort of %zu labels (CUB)", ni);
  CU_TRY(
      S,
      cudaMemsetAsync(R->bounds, 0, 2 * n_keys * sizeof(uint32_t), S->compute),
      "cudaMemsetAsync(class bounds)");
  CU_TRY(S,
         gmle__cu_bounds(R->keys, (int64_t)ni, R->bounds, R->bounds + n_keys,
                         S->compute),
         "launching the class-bounds kernel");
  CU_TRY(S,
         cudaMemcpyAsync(R->h_bounds, R->bounds, 2 * n_keys * sizeof(uint32_t),
                         cudaMemcpyDeviceToHost, S->compute),
         "cudaMemcpyAsync(class bounds, device to host)");
  CU_TRY(S, cudaEventRecord(S->meta_ready, S->compute),
         "cudaEventRecord(bounds)");
done:
  return st;
}

/* Phase 2: wait for the bounds, plan the chunks, and launch the kernels on
 * the sub-batch's rows `in` (ni rows), one segment at a time. */
static gmle_status compute(run *R, const gmle__cu_input *in_rows, size_t ni,
                           int labelled) {
  cu_state *S = R->S;
  gmle_status st = GMLE_OK;
  gmle__cu_plan *P = &R->p;
  /* The tables of the previous sub-batch have been copied? */
  CU_TRY(S, cudaEventSynchronize(S->meta_used), "cudaEventSynchronize(meta)");
  if (labelled)
    CU_TRY(S, cudaEventSynchronize(S->meta_ready),
           "cudaEventSynchronize(bounds)");
  const size_t n_keys = R->L * gmle__cu_plan_nseg((int64_t)ni, R->g);
  const int rc =
      gmle__cu_plan_sub(R->g, (int64_t)ni, R->L, labelled ? R->h_bounds : NULL,
                        labelled ? R->h_bounds + n_keys : NULL, R->slot_of,
                        R->np, GMLE__CU_SHIFT_ROWS, R->rows, R->need_shift, P);
  if (rc != 0)
    return gmle__cu_error(S->h, GMLE_E_INTERNAL,
                          rc == -1 ? "CUDA: a label of a sub-batch has no "
                                     "output slot"
                                   : "CUDA: chunk plan overflow (%zu chunks, "
                                     "%zu groups)",
                          P->n_chunks, P->n_groups);
  CU_TRY(S,
         cudaMemcpyAsync(R->d_chunks, P->chunks,
                         P->n_chunks * sizeof(gmle__cu_chunk),
                         cudaMemcpyHostToDevice, S->compute),
         "cudaMemcpyAsync(chunk table)");
  if (P->n_groups)
    CU_TRY(S,
           cudaMemcpyAsync(R->d_groups, P->groups,
                           P->n_groups * sizeof(gmle__cu_group),
                           cudaMemcpyHostToDevice, S->compute),
           "cudaMemcpyAsync(chunk groups)");
  if (P->n_list)
    CU_TRY(S,
           cudaMemcpyAsync(R->d_list, P->list,
                           P->n_list * sizeof(gmle__cu_chunk),
                           cudaMemcpyHostToDevice, S->compute),
           "cudaMemcpyAsync(shift list)");
  CU_TRY(S, cudaEventRecord(S->meta_used, S->compute), "cudaEventRecord(meta)");
  gmle__cu_input in = *in_rows;
  in.idx = labelled ? R->idx : NULL;
  in.shift = R->shift;
  for (size_t s = 0; s < P->n_segs; s++) {
    const gmle__cu_seg *sg = &P->segs[s];
    if (sg->n_list)
      CU_TRY(S,
             gmle__cu_choose_shift(&in, R->d_list + sg->list0,
                                   (int64_t)sg->n_list, R->shift, S->compute),
             "launching the shift kernel (%zu classes)", sg->n_list);
    if (sg->n_chunks == 0)
      continue;
    const gmle__cu_chunk *ch = R->d_chunks + sg->chunk0;
    CU_TRY(S,
           gmle__cu_moments(&in, ch, (int64_t)sg->n_chunks, R->diag, R->acc_w,
                            R->acc_sum, R->diag ? R->acc_g : NULL, R->part_m,
                            S->compute),
           "launching the moments kernel (segment %zu: %zu chunks)", s,
           sg->n_chunks);
    if (!R->diag)
      CU_TRY(S,
             gmle__cu_gram(&in, ch, (int64_t)sg->n_chunks, R->t, R->acc_g,
                           R->part_g, S->compute),
             "launching the Gram kernel (segment %zu: %zu chunks x %lld "
             "tiles of %d)",
             s, sg->n_chunks, (long long)R->n_tiles, R->t);
    if (sg->n_groups == 0)
      continue;
    const gmle__cu_group *gr = R->d_groups + sg->group0;
    CU_TRY(S,
           gmle__cu_reduce_moments(gr, (int64_t)sg->n_groups, (int64_t)R->D,
                                   R->diag, R->part_m, R->acc_w, R->acc_sum,
                                   R->diag ? R->acc_g : NULL, S->compute),
           "launching the moments reduction (segment %zu)", s);
    if (!R->diag)
      CU_TRY(S,
             gmle__cu_reduce_gram(gr, (int64_t)sg->n_groups, (int64_t)R->D,
                                  R->t, R->part_g, R->acc_g, S->compute),
             "launching the Gram reduction (segment %zu)", s);
  }
done:
  return st;
}

/* Copy the accumulators back. */
static gmle_status download(run *R, double *weight, double *sum, double *gram) {
  cu_state *S = R->S;
  gmle_status st = GMLE_OK;
  const size_t np = R->np;
  CU_TRY(S,
         cudaMemcpyAsync(weight, R->acc_w, np * sizeof(double),
                         cudaMemcpyDeviceToHost, S->compute),
         "cudaMemcpyAsync(weights, device to host)");
  CU_TRY(S,
         cudaMemcpyAsync(sum, R->acc_sum, np * R->D * sizeof(double),
                         cudaMemcpyDeviceToHost, S->compute),
         "cudaMemcpyAsync(sums, device to host)");
  CU_TRY(S,
         cudaMemcpyAsync(gram, R->acc_g, np * R->G * sizeof(double),
                         cudaMemcpyDeviceToHost, S->compute),
         "cudaMemcpyAsync(%zu bytes of Gram matrices, device to host)",
         np * R->G * sizeof(double));
  CU_TRY(S, cudaStreamSynchronize(S->compute),
         "cudaStreamSynchronize(compute)");
done:
  return st;
}

/* ------------------------------------------------------------------------ */
/* Host batches                                                             */
/* ------------------------------------------------------------------------ */

typedef struct host_slots {
  char *h[CU_NSLOT];     /* pinned: x (unless direct), labels, weights */
  char *d[CU_NSLOT];     /* device: x, labels, weights */
  size_t hx, hl, dx, dl; /* offsets of labels / weights in h and d */
  int direct;            /* x is copied straight from the caller */
} host_slots;

/* Pack sub-batch i into its pinned slot and start its copy. */
static gmle_status stage(run *R, const gmle__cuda_batch_view *b, host_slots *hs,
                         size_t n_sub, size_t i, int labelled) {
  cu_state *S = R->S;
  gmle_status st = GMLE_OK;
  const size_t s = i % CU_NSLOT, r0 = i * n_sub;
  const size_t ni = b->n_rows - r0 < n_sub ? b->n_rows - r0 : n_sub;
  const size_t isz = R->f64 ? 8 : 4, D = R->D;
  const char *xsrc = (const char *)b->x + r0 * b->row_stride * isz;
  CU_TRY(S, cudaEventSynchronize(S->copied[s]),
         "cudaEventSynchronize(staging slot %zu)", s);
  if (!hs->direct)
    gmle__cu_pack_rows(S, hs->h[s], xsrc, ni, D * isz, b->row_stride * isz);
  if (labelled)
    memcpy(hs->h[s] + hs->hx, b->labels + r0, ni * sizeof(int32_t));
  if (b->weights)
    memcpy(hs->h[s] + hs->hl, b->weights + r0, ni * sizeof(double));
  CU_TRY(S, cudaStreamWaitEvent(S->copy, S->consumed[s], 0),
         "cudaStreamWaitEvent(copy after compute)");
  CU_TRY(S,
         cudaMemcpyAsync(hs->d[s], hs->direct ? xsrc : hs->h[s], ni * D * isz,
                         cudaMemcpyHostToDevice, S->copy),
         "cudaMemcpyAsync(%zu rows, host to device)", ni);
  if (labelled)
    CU_TRY(S,
           cudaMemcpyAsync(hs->d[s] + hs->dx, hs->h[s] + hs->hx,
                           ni * sizeof(int32_t), cudaMemcpyHostToDevice,
                           S->copy),
           "cudaMemcpyAsync(labels, host to device)");
  if (b->weights)
    CU_TRY(S,
           cudaMemcpyAsync(hs->d[s] + hs->dl, hs->h[s] + hs->hl,
                           ni * sizeof(double), cudaMemcpyHostToDevice,
                           S->copy),
           "cudaMemcpyAsync(weights, host to device)");
  CU_TRY(S, cudaEventRecord(S->copied[s], S->copy), "cudaEventRecord(copied)");
done:
  return st;
}

/* The run of a host batch, before any allocation. */
static void host_run_init(run *R, cu_state *S, const gmle__cuda_batch_view *b,
                          const gmle__cuda_partial_view *out) {
  memset(R, 0, sizeof *R);
  const size_t np = out->n_classes;
  R->S = S;
  R->D = b->dim;
  R->G = out->gram_len;
  R->np = np;
  R->L = b->labels != NULL && np > 1 ? np : 1;
  R->diag = out->mode == GMLE_STATS_DIAG;
  R->f64 = b->dtype == GMLE_F64;
  R->seg_bytes = GMLE__CU_SEG_BYTES_HOST;
  run_geometry(R);
}

/* The batch in sub-batches of k segments. */
static gmle_status accumulate_run(cu_state *S, const gmle__cuda_batch_view *b,
                                  gmle__cuda_partial_view *out, size_t k) {
  gmle_status st = GMLE_OK;
  const size_t n = b->n_rows, D = b->dim, np = out->n_classes;
  const int labelled = b->labels != NULL && np > 1;
  run R;
  host_run_init(&R, S, b, out);
  R.rows = calloc(np, sizeof(uint64_t));
  if (!R.rows)
    return gmle__cu_error(S->h, GMLE_E_OUT_OF_MEMORY,
                          "CUDA: out of host memory (%zu classes)", np);
  const size_t isz = R.f64 ? 8 : 4;
  size_t n_sub = k * (size_t)R.g.seg;
  if (n_sub > n)
    n_sub = n;
  const size_t nsb = (n + n_sub - 1) / n_sub;
  host_slots hs;
  memset(&hs, 0, sizeof hs);
  hs.direct = b->row_stride == D && gmle__cu_is_pinned(b->x);
  const size_t xb = align_up(n_sub * D * isz);
  const size_t lb = labelled ? align_up(n_sub * sizeof(int32_t)) : 0;
  const size_t wb = b->weights ? align_up(n_sub * sizeof(double)) : 0;
  hs.dx = xb;
  hs.dl = xb + lb;
  hs.hx = hs.direct ? 0 : xb;
  hs.hl = hs.hx + lb;
  const size_t nslot = nsb < CU_NSLOT ? nsb : CU_NSLOT;
  for (size_t s = 0; s < nslot; s++) {
    void *p;
    CU_CHECK(gmle__cu_dev(S, DB_X0 + (int)s, xb + lb + wb, &p));
    hs.d[s] = p;
    if (hs.hl + wb > 0) {
      CU_CHECK(gmle__cu_pinned(S, HB_X0 + (int)s, hs.hl + wb, &p));
      hs.h[s] = p;
    }
  }
  CU_CHECK(run_alloc(&R, n_sub, labelled));
  CU_TRY(S,
         cudaMemcpyAsync(R.shift, out->shift, np * D * sizeof(double),
                         cudaMemcpyHostToDevice, S->compute),
         "cudaMemcpyAsync(shifts, host to device)");
  CU_CHECK(stage(&R, b, &hs, n_sub, 0, labelled));
  for (size_t i = 0; i < nsb; i++) {
    const size_t s = i % CU_NSLOT, r0 = i * n_sub;
    const size_t ni = n - r0 < n_sub ? n - r0 : n_sub;
    CU_TRY(S, cudaStreamWaitEvent(S->compute, S->copied[s], 0),
           "cudaStreamWaitEvent(compute after copy)");
    if (labelled)
      CU_CHECK(route(&R, (const int32_t *)(hs.d[s] + hs.dx), ni));
    if (i + 1 < nsb)
      CU_CHECK(stage(&R, b, &hs, n_sub, i + 1, labelled));
    const gmle__cu_input in = {
        .x = hs.d[s],
        .f64 = R.f64,
        .stride = (int64_t)D,
        .dim = (int64_t)D,
        .idx = NULL,
        .w = b->weights ? (const double *)(hs.d[s] + hs.dl) : NULL,
        .shift = NULL};
    CU_CHECK(compute(&R, &in, ni, labelled));
    CU_TRY(S, cudaEventRecord(S->consumed[s], S->compute),
           "cudaEventRecord(consumed)");
  }
  CU_CHECK(download(&R, out->weight, out->sum, out->gram));
  memcpy(out->rows, R.rows, np * sizeof(uint64_t));
done:
  if (st != GMLE_OK)
    st = gmle__cu_settle(S, st);
  free(R.rows);
  free(R.p.segs);
  return st;
}

gmle_status gmle__cu_accumulate(void *state, const gmle__cuda_batch_view *b,
                                gmle__cuda_partial_view *out) {
  cu_state *S = state;
  gmle_status st = gmle__cu_enter(S);
  if (st != GMLE_OK || b->n_rows == 0)
    return st;
  run R;
  host_run_init(&R, S, b, out);
  const size_t isz = R.f64 ? 8 : 4;
  const size_t row_bytes =
      b->dim * isz + (b->labels ? 4 : 0) + (b->weights ? 8 : 0);
  size_t k = gmle__cu_plan_segs_per_sub(R.g, row_bytes, SUB_BYTES, R.L);
  for (int last = 0;;) {
    st = accumulate_run(S, b, out, k);
    if (st != GMLE_E_DEVICE_OOM || last)
      break;
    /* Out of device memory: drop the cached buffers, halve the
     * sub-batches (whole segments: the same sums in the same order) and
     * run the batch again from the start; at one segment, once more with
     * the buffers released. */
    gmle__cu_release_all(S);
    last = !gmle__cu_plan_next_split(&k, R.g, b->n_rows);
  }
  return st;
}

/* ------------------------------------------------------------------------ */
/* Device batches                                                           */
/* ------------------------------------------------------------------------ */

static const char *nonfinite_name(double v) {
  return isnan(v) ? "NaN" : (v > 0 ? "+Inf" : "-Inf");
}

/* Scan the whole batch on the device: NaN/Inf, labels, weights, the classes
 * present (present[C], host). */
static gmle_status validate_device(cu_state *S, const gmle__cuda_dev_batch *b,
                                   unsigned char *present) {
  gmle_status st = GMLE_OK;
  const size_t n = b->n_rows, D = b->dim, C = b->n_classes;
  const int f64 = b->dtype == GMLE_F64;
  const size_t isz = f64 ? 8 : 4;
  unsigned long long *hflags = NULL;
  void *p;
  const size_t res_b = align_up(sizeof(gmle__cu_scan_result));
  const size_t flag_n = b->labels ? C : 0;
  CU_CHECK(gmle__cu_dev(S, DB_SCAN, res_b + flag_n * 8, &p));
  gmle__cu_scan_result *dres = p;
  unsigned long long *dflags =
      b->labels ? (unsigned long long *)((char *)p + res_b) : NULL;
  CU_TRY(S, gmle__cu_scan_init(dres, S->compute),
         "launching the validation setup kernel");
  if (dflags)
    CU_TRY(S, cudaMemsetAsync(dflags, 0, flag_n * 8, S->compute),
           "cudaMemsetAsync(class flags)");
  CU_TRY(S,
         gmle__cu_scan(b->x, f64, (int64_t)n, (int64_t)D,
                       (int64_t)b->row_stride, b->labels, (int64_t)C,
                       b->weights, dflags, dres, S->compute),
         "launching the validation kernel");
  gmle__cu_scan_result res;
  CU_TRY(S,
         cudaMemcpyAsync(&res, dres, sizeof res, cudaMemcpyDeviceToHost,
                         S->compute),
         "cudaMemcpyAsync(validation result, device to host)");
  if (dflags) {
    hflags = malloc(flag_n * 8);
    if (!hflags) {
      st = gmle__cu_error(S->h, GMLE_E_OUT_OF_MEMORY,
                          "CUDA: out of host memory (%zu classes)", C);
      goto done;
    }
    CU_TRY(S,
           cudaMemcpyAsync(hflags, dflags, flag_n * 8, cudaMemcpyDeviceToHost,
                           S->compute),
           "cudaMemcpyAsync(class flags, device to host)");
  }
  CU_TRY(S, cudaStreamSynchronize(S->compute),
         "cudaStreamSynchronize(validation)");
  const unsigned long long batch = (unsigned long long)b->batch_index;
  if (res.bad_cell != ~0ull) {
    const size_t r = (size_t)(res.bad_cell / D), j = (size_t)(res.bad_cell % D);
    double v = NAN;
    if (f64) {
      CU_TRY(S,
             cudaMemcpy(&v, (const char *)b->x + (r * b->row_stride + j) * isz,
                        sizeof v, cudaMemcpyDeviceToHost),
             "cudaMemcpy(one value, device to host)");
    } else {
      float f = NAN;
      CU_TRY(S,
             cudaMemcpy(&f, (const char *)b->x + (r * b->row_stride + j) * isz,
                        sizeof f, cudaMemcpyDeviceToHost),
             "cudaMemcpy(one value, device to host)");
      v = (double)f;
    }
    const gmle_error_location loc = {.batch = batch,
                                     .row = r,
                                     .column = j,
                                     .fields = GMLE_LOC_BATCH | GMLE_LOC_ROW |
                                               GMLE_LOC_COLUMN};
    st = gmle__cu_error_at(S->h, GMLE_E_NONFINITE_INPUT, &loc,
                           "batch %llu row %zu col %zu: %s", batch, r, j,
                           nonfinite_name(v));
    goto done;
  }
  if (res.bad_label_row != ~0ull) {
    const size_t r = (size_t)res.bad_label_row;
    int32_t l = 0;
    CU_TRY(S, cudaMemcpy(&l, b->labels + r, sizeof l, cudaMemcpyDeviceToHost),
           "cudaMemcpy(one label, device to host)");
    const gmle_error_location loc = {
        .batch = batch, .row = r, .fields = GMLE_LOC_BATCH | GMLE_LOC_ROW};
    st = gmle__cu_error_at(S->h, GMLE_E_BAD_LABEL, &loc,
                           "batch %llu row %zu: label %ld is outside the %zu "
                           "declared classes [0, %zu)",
                           batch, r, (long)l, C, C);
    goto done;
  }
  if (b->weights && res.bad_weight_row != ~0ull) {
    const size_t r = (size_t)res.bad_weight_row;
    double w = 0;
    CU_TRY(S, cudaMemcpy(&w, b->weights + r, sizeof w, cudaMemcpyDeviceToHost),
           "cudaMemcpy(one weight, device to host)");
    const gmle_error_location loc = {
        .batch = batch, .row = r, .fields = GMLE_LOC_BATCH | GMLE_LOC_ROW};
    st = gmle__cu_error_at(S->h, GMLE_E_INVALID_WEIGHTS, &loc,
                           "batch %llu row %zu: weight %g is %s", batch, r, w,
                           isfinite(w) ? "negative" : "not finite");
    goto done;
  }
  if (b->weights && !res.any_positive) {
    st = gmle__cu_error(S->h, GMLE_E_INVALID_WEIGHTS,
                        "batch %llu: all %zu weights are zero", batch, n);
    goto done;
  }
  for (size_t c = 0; c < C; c++)
    present[c] = b->labels ? hflags[c] != 0 : c == 0;
done:
  free(hflags);
  return st;
}

static void dev_result_release(gmle__cuda_dev_result *r) {
  free(r->class_of);
  free(r->shift);
  free(r->weight);
  free(r->rows);
  free(r->sum);
  free(r->gram);
  memset(r, 0, sizeof *r);
}

/* The run of a device batch, before any allocation. */
static void dev_run_init(run *R, cu_state *S, const gmle__cuda_dev_batch *b) {
  memset(R, 0, sizeof *R);
  R->S = S;
  R->D = b->dim;
  R->G = b->gram_len;
  R->L = b->labels != NULL && b->n_classes > 1 ? b->n_classes : 1;
  R->diag = b->mode == GMLE_STATS_DIAG;
  R->f64 = b->dtype == GMLE_F64;
  R->seg_bytes = GMLE__CU_SEG_BYTES_DEVICE;
  run_geometry(R);
}

/* The device batch in sub-batches of k segments. */
static gmle_status add_device_run(cu_state *S, const gmle__cuda_dev_batch *b,
                                  const unsigned char *present,
                                  gmle__cuda_dev_result *out, size_t k) {
  gmle_status st = GMLE_OK;
  const size_t n = b->n_rows, D = b->dim, C = b->n_classes;
  const int labelled = b->labels != NULL && C > 1;
  const size_t isz = b->dtype == GMLE_F64 ? 8 : 4;
  run R;
  dev_run_init(&R, S, b);
  int32_t *slot_of = NULL;
  slot_of = malloc(C * sizeof(int32_t));
  if (!slot_of)
    goto oom;
  size_t np = 0;
  for (size_t c = 0; c < C; c++)
    slot_of[c] = present[c] ? (int32_t)np++ : -1;
  R.np = np;
  R.slot_of = labelled ? slot_of : NULL;
  out->n_present = np;
  out->class_of = malloc(np * sizeof(int32_t));
  out->shift = malloc(np * D * sizeof(double));
  out->weight = malloc(np * sizeof(double));
  out->rows = calloc(np, sizeof(uint64_t));
  out->sum = malloc(np * D * sizeof(double));
  out->gram = malloc(np * R.G * sizeof(double));
  R.need_shift = calloc(np, 1);
  if (!out->class_of || !out->shift || !out->weight || !out->rows ||
      !out->sum || !out->gram || !R.need_shift)
    goto oom;
  R.rows = out->rows;
  for (size_t c = 0; c < C; c++) {
    const int32_t s = slot_of[c];
    if (s < 0)
      continue;
    out->class_of[s] = (int32_t)c;
    if (b->has_shift[c])
      memcpy(out->shift + (size_t)s * D, b->shift + c * D, D * sizeof(double));
    else
      R.need_shift[s] = 1;
  }
  size_t n_sub = k * (size_t)R.g.seg;
  if (n_sub > n)
    n_sub = n;
  CU_CHECK(run_alloc(&R, n_sub, labelled));
  CU_TRY(S,
         cudaMemcpyAsync(R.shift, out->shift, np * D * sizeof(double),
                         cudaMemcpyHostToDevice, S->compute),
         "cudaMemcpyAsync(shifts, host to device)");
  for (size_t r0 = 0; r0 < n; r0 += n_sub) {
    const size_t ni = n - r0 < n_sub ? n - r0 : n_sub;
    if (labelled)
      CU_CHECK(route(&R, b->labels + r0, ni));
    const gmle__cu_input in = {.x = (const char *)b->x +
                                    r0 * b->row_stride * isz,
                               .f64 = R.f64,
                               .stride = (int64_t)b->row_stride,
                               .dim = (int64_t)D,
                               .idx = NULL,
                               .w = b->weights ? b->weights + r0 : NULL,
                               .shift = NULL};
    CU_CHECK(compute(&R, &in, ni, labelled));
  }
  CU_TRY(S,
         cudaMemcpyAsync(out->shift, R.shift, np * D * sizeof(double),
                         cudaMemcpyDeviceToHost, S->compute),
         "cudaMemcpyAsync(shifts, device to host)");
  CU_CHECK(download(&R, out->weight, out->sum, out->gram));
  goto done;
oom:
  st = gmle__cu_error(S->h, GMLE_E_OUT_OF_MEMORY,
                      "CUDA: out of host memory for the partial statistics of "
                      "%zu classes x %zu features",
                      C, D);
done:
  if (st != GMLE_OK)
    st = gmle__cu_settle(S, st);
  free(slot_of);
  free(R.need_shift);
  free(R.p.segs);
  return st;
}

gmle_status gmle__cu_add_device(void *state, const gmle__cuda_dev_batch *b,
                                gmle__cuda_dev_result *out) {
  cu_state *S = state;
  memset(out, 0, sizeof *out);
  gmle_status st = gmle__cu_enter(S);
  if (st != GMLE_OK || b->n_rows == 0)
    return st;
  char why[160];
  const char *which = "x";
  int bad = gmle__cu_check_device_ptr(b->x, S->device, why, sizeof why);
  if (!bad && b->labels) {
    which = "labels";
    bad = gmle__cu_check_device_ptr(b->labels, S->device, why, sizeof why);
  }
  if (!bad && b->weights) {
    which = "weights";
    bad = gmle__cu_check_device_ptr(b->weights, S->device, why, sizeof why);
  }
  if (bad)
    return gmle__cu_error(S->h, GMLE_E_INVALID_ARG,
                          "cuda_stats_add_device: %s is not device memory of "
                          "CUDA device %d: %s",
                          which, S->device, why);
  unsigned char *present = calloc(b->n_classes, 1);
  if (!present)
    return gmle__cu_error(S->h, GMLE_E_OUT_OF_MEMORY,
                          "CUDA: out of host memory (%zu classes)",
                          b->n_classes);
  /* Nothing is staged: sub-batches as large as the routing allows. */
  run R;
  dev_run_init(&R, S, b);
  size_t k = gmle__cu_plan_segs_per_sub(R.g, 1, (size_t)-1, R.L);
  int validated = 0;
  for (int last = 0;;) {
    if (!validated) {
      st = validate_device(S, b, present);
      validated = st == GMLE_OK;
    }
    if (st == GMLE_OK)
      st = add_device_run(S, b, present, out, k);
    if (st == GMLE_OK)
      break;
    dev_result_release(out);
    if (st != GMLE_E_DEVICE_OOM || last)
      break;
    /* Out of device memory: sub-batches of half as many segments (the
     * same sums in the same order), from the start. */
    gmle__cu_release_all(S);
    last = !gmle__cu_plan_next_split(&k, R.g, b->n_rows);
  }
  free(present);
  return st;
}
