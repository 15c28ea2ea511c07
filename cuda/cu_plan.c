/* cu_plan.c -- the chunk plan of the CUDA statistics kernels (see
 * cu_plan.h): pure host C, compiled into the CUDA module and into
 * tests/test_cuda_plan.c. */
#include "cu_plan.h"

/* Segments hold seg_bytes of rows (gmle__cu_plan_geom), and grow (up to
 * MAX_SEG_BYTES, or seg_bytes if larger) to hold ROWS_PER_LABEL rows per
 * label, so that with many classes a class's chunk in a segment is not a
 * handful of rows (per-chunk costs would then grow with the number of
 * classes). Bounds in rows: */
#define MAX_SEG_BYTES ((size_t)256 << 20)
#define ROWS_PER_LABEL ((size_t)64)
#define MIN_SEG ((int64_t)1024)
#define MAX_SEG ((int64_t)1 << 22)
/* The most rows per sub-batch (positions in the routed order are 32-bit;
 * CUB's sort takes an int count), and the most (label, segment) routing
 * keys. */
#define MAX_SUB ((int64_t)1 << 24)
#define MAX_KEYS ((size_t)1 << 24)
/* Thread blocks one segment aims to give, and the fewest rows per chunk. */
#define TARGET_BLOCKS ((int64_t)1024)
#define MIN_RMAX ((int64_t)256)

static int64_t pow2_floor(int64_t v) {
  int64_t p = 1;
  while (p <= v / 2)
    p *= 2;
  return p;
}

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi) {
  return v < lo ? lo : v > hi ? hi : v;
}

gmle__cu_geom gmle__cu_plan_geom(size_t dim, size_t elem_bytes,
                                 size_t seg_bytes, size_t n_labels,
                                 int64_t blocks_per_chunk) {
  gmle__cu_geom g;
  const size_t row = (dim ? dim : 1) * (elem_bytes ? elem_bytes : 1);
  size_t per = seg_bytes / row;
  const size_t cap =
      (seg_bytes > MAX_SEG_BYTES ? seg_bytes : MAX_SEG_BYTES) / row;
  if (n_labels > per / ROWS_PER_LABEL)
    per = n_labels > cap / ROWS_PER_LABEL ? cap : n_labels * ROWS_PER_LABEL;
  g.seg = pow2_floor(clamp64(per > (size_t)MAX_SEG ? MAX_SEG : (int64_t)per,
                             MIN_SEG, MAX_SEG));
  const int64_t bpc = blocks_per_chunk > 0 ? blocks_per_chunk : 1;
  /* Enough chunks per segment for TARGET_BLOCKS blocks (an exact product:
   * seg <= 2^20 and bpc is at most a few hundred thousand tiles). */
  const int64_t r = bpc >= TARGET_BLOCKS ? g.seg : g.seg * bpc / TARGET_BLOCKS;
  g.rmax = pow2_floor(clamp64(r, MIN_RMAX, g.seg));
  if (g.rmax > g.seg)
    g.rmax = g.seg;
  return g;
}

size_t gmle__cu_plan_nseg(int64_t n_rows, gmle__cu_geom g) {
  return n_rows <= 0 ? 0 : (size_t)((n_rows + g.seg - 1) / g.seg);
}

void gmle__cu_plan_caps(gmle__cu_geom g, int64_t n_sub, size_t n_labels,
                        size_t n_slots, int need_shift, gmle__cu_plan *p) {
  const size_t nseg = gmle__cu_plan_nseg(n_sub, g);
  const int64_t seg = n_sub < g.seg ? n_sub : g.seg;
  const size_t keys = n_labels < (size_t)seg ? n_labels : (size_t)seg;
  const size_t per_seg_chunks = (size_t)(seg / g.rmax) + keys + 1;
  /* A class with m > 1 chunks has more than rmax rows: fewer than
   * seg / rmax such classes, and m < 2 k / rmax partials for k rows. */
  const size_t per_seg_groups = (size_t)(seg / g.rmax) + 1;
  p->cap_segs = nseg;
  p->cap_chunks = nseg * per_seg_chunks;
  p->cap_groups = nseg * per_seg_groups;
  p->cap_parts = (int32_t)(2 * (seg / g.rmax) + 2);
  p->cap_list = need_shift ? n_slots : 0;
}

int gmle__cu_plan_sub(gmle__cu_geom g, int64_t n_rows, size_t n_labels,
                      const uint32_t *start, const uint32_t *end,
                      const int32_t *slot_of, size_t n_slots,
                      int64_t shift_rows, uint64_t *rows,
                      unsigned char *need_shift, gmle__cu_plan *p) {
  const size_t nseg = gmle__cu_plan_nseg(n_rows, g);
  p->n_chunks = p->n_groups = p->n_list = p->n_segs = 0;
  if (nseg > p->cap_segs)
    return -2;
  for (size_t s = 0; s < nseg; s++) {
    gmle__cu_seg *sg = &p->segs[p->n_segs++];
    sg->chunk0 = p->n_chunks;
    sg->group0 = p->n_groups;
    sg->list0 = p->n_list;
    sg->n_parts = 0;
    for (size_t l = 0; l < n_labels; l++) {
      int64_t b0, b1;
      if (start) {
        b0 = start[l * nseg + s];
        b1 = end[l * nseg + s];
      } else {
        b0 = (int64_t)s * g.seg;
        b1 = b0 + g.seg < n_rows ? b0 + g.seg : n_rows;
      }
      const int64_t k = b1 - b0;
      if (k <= 0)
        continue;
      const int32_t slot = slot_of ? slot_of[l] : (int32_t)l;
      if (slot < 0 || (size_t)slot >= n_slots)
        return -1;
      const int64_t m = (k + g.rmax - 1) / g.rmax;
      if (p->n_chunks + (size_t)m > p->cap_chunks)
        return -2;
      rows[slot] += (uint64_t)k;
      if (need_shift && need_shift[slot]) {
        if (p->n_list >= p->cap_list)
          return -2;
        p->list[p->n_list++] = (gmle__cu_chunk){
            b0, b0 + (k < shift_rows ? k : shift_rows), slot, -1};
        need_shift[slot] = 0;
      }
      if (m == 1) {
        p->chunks[p->n_chunks++] = (gmle__cu_chunk){b0, b1, slot, -1};
        continue;
      }
      if (p->n_groups >= p->cap_groups ||
          (int64_t)sg->n_parts + m > (int64_t)p->cap_parts)
        return -2;
      p->groups[p->n_groups++] =
          (gmle__cu_group){slot, sg->n_parts, (int32_t)m, 0};
      for (int64_t q = 0; q < m; q++) {
        const int64_t c0 = b0 + q * g.rmax;
        const int64_t c1 = c0 + g.rmax < b1 ? c0 + g.rmax : b1;
        p->chunks[p->n_chunks++] =
            (gmle__cu_chunk){c0, c1, slot, sg->n_parts++};
      }
    }
    sg->n_chunks = p->n_chunks - sg->chunk0;
    sg->n_groups = p->n_groups - sg->group0;
    sg->n_list = p->n_list - sg->list0;
  }
  return 0;
}

size_t gmle__cu_plan_segs_per_sub(gmle__cu_geom g, size_t row_bytes,
                                  size_t bytes, size_t n_labels) {
  size_t k = bytes / ((size_t)g.seg * (row_bytes ? row_bytes : 1));
  if (k > (size_t)(MAX_SUB / g.seg))
    k = (size_t)(MAX_SUB / g.seg);
  if (n_labels > 1 && k > MAX_KEYS / n_labels)
    k = MAX_KEYS / n_labels;
  return k < 1 ? 1 : k;
}

int gmle__cu_plan_next_split(size_t *k, gmle__cu_geom g, size_t n_rows) {
  const size_t nseg = gmle__cu_plan_nseg((int64_t)n_rows, g);
  const size_t kk = *k < nseg ? *k : nseg;
  if (kk <= 1)
    return 0;
  *k = kk / 2;
  return 1;
}
