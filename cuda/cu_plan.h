/*
 * cu_plan.h -- how the CUDA statistics kernels cut a batch into chunks, and
 * in which order the chunks' float64 partials are added: pure host C (no
 * CUDA header), so that tests/test_cuda_plan.c checks it without a GPU.
 *
 * The reduction order is a function of the batch (its rows and labels) and
 * of the geometry (gmle__cu_plan_geom: the number of features, the element
 * size, the Gram tiling), never of the sub-batch size. That is what makes a
 * batch split after an out-of-memory give bit-identical statistics:
 *
 * - The batch is cut into segments of geom.seg rows (fixed). Sub-batches --
 *   the rows staged and launched together, halved after an out-of-memory --
 *   are whole numbers of segments, so a segment is never split.
 * - Within a segment the rows of a class (in row order: the stable sort by
 *   label keeps it) are cut into chunks of at most geom.rmax rows, from the
 *   class's first row in that segment: chunk boundaries never depend on
 *   which sub-batch holds the segment. A kernel computes each chunk's
 *   partial P from the chunk's rows in an order that depends only on the
 *   row's position relative to the chunk's start.
 * - Each segment is one launch. A class with one chunk in the segment adds
 *   it straight into its accumulator (acc += P); a class with m > 1 chunks
 *   writes m partials, and the reduction kernel adds their sum s into the
 *   accumulator (acc += s), s summed in an order fixed by m alone (lane l
 *   of a warp adds P_l, P_l+32, ... in order, then a fixed butterfly over
 *   the 32 lanes). Segments are launched in order on one stream.
 * So, for every class, acc = (((0 + s_seg0) + s_seg1) + ...) over the
 * segments holding it, in row order, with each s a fixed function of the
 * segment: the same floating-point operations for any split.
 */
#ifndef GMLE_CU_PLAN_H
#define GMLE_CU_PLAN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A run of rows of one class: positions [begin, end) of the routed order
 * (the class-sorted row indices, or the rows themselves without labels),
 * accumulated into output slot `slot`: straight into the accumulators when
 * part < 0 (the class's only chunk in the segment), else into partial
 * buffer `part`, reduced afterwards in part order. Also an entry of the
 * shift list (begin, end: the rows averaged; part unused). */
typedef struct gmle__cu_chunk {
  int64_t begin, end;
  int32_t slot, part;
} gmle__cu_chunk;

/* A class with several chunks in a segment: partials part_first ..
 * part_first+n_parts-1 are summed (in an order fixed by n_parts) and the
 * sum added into slot's accumulators. */
typedef struct gmle__cu_group {
  int32_t slot, part_first, n_parts, pad_;
} gmle__cu_group;

/* Fixed cutting of a batch (see above). */
typedef struct gmle__cu_geom {
  int64_t seg;  /* rows per segment (a power of two) */
  int64_t rmax; /* most rows per chunk (a power of two, <= seg) */
} gmle__cu_geom;

/* Bytes of rows per segment: host batches (the staging granularity, and
 * the smallest sub-batch an out-of-memory retry goes down to), and batches
 * already in device memory (larger, so that the launches of a segment are
 * few against its work). */
#define GMLE__CU_SEG_BYTES_HOST ((size_t)16 << 20)
#define GMLE__CU_SEG_BYTES_DEVICE ((size_t)256 << 20)

/* The geometry for rows of `dim` elements of `elem_bytes` bytes with
 * n_labels labels, where a chunk occupies `blocks_per_chunk` thread blocks
 * (Gram tiles, or column tiles on the diagonal path). Depends on nothing
 * else. Segments hold about seg_bytes of rows (a power of two from 1024 to
 * 2^22 rows), more (up to 256 MiB) when that is fewer than 64 rows per
 * label. */
gmle__cu_geom gmle__cu_plan_geom(size_t dim, size_t elem_bytes,
                                 size_t seg_bytes, size_t n_labels,
                                 int64_t blocks_per_chunk);

/* Segments per sub-batch: about `bytes` of rows of row_bytes bytes, at
 * most 2^24 rows and 2^24 (label, segment) routing keys, at least one. */
size_t gmle__cu_plan_segs_per_sub(gmle__cu_geom g, size_t row_bytes,
                                  size_t bytes, size_t n_labels);

/* After an out-of-memory: halve *k, the segments per sub-batch of a batch
 * of n_rows rows (as many as the batch has, at most). 0 when they cannot
 * shrink (the caller then retries once more at this size, or gives up). */
int gmle__cu_plan_next_split(size_t *k, gmle__cu_geom g, size_t n_rows);

/* Segments in a sub-batch of n_rows rows. */
size_t gmle__cu_plan_nseg(int64_t n_rows, gmle__cu_geom g);

/* One segment's launch: its chunks, groups and shift-list entries are
 * [chunk0, chunk0+n_chunks), ... of the plan's tables; n_parts partials. */
typedef struct gmle__cu_seg {
  size_t chunk0, n_chunks, group0, n_groups, list0, n_list;
  int32_t n_parts;
} gmle__cu_seg;

/* Capacities of the tables for sub-batches of at most n_sub rows with
 * n_labels labels (gmle__cu_plan_caps fills the cap_ fields). */
typedef struct gmle__cu_plan {
  gmle__cu_chunk *chunks; /* [cap_chunks] */
  gmle__cu_group *groups; /* [cap_groups] */
  gmle__cu_chunk *list;   /* [cap_list] shift list */
  gmle__cu_seg *segs;     /* [cap_segs] */
  size_t cap_chunks, cap_groups, cap_list, cap_segs;
  int32_t cap_parts; /* partials of one segment */
  size_t n_chunks, n_groups, n_list, n_segs;
} gmle__cu_plan;

void gmle__cu_plan_caps(gmle__cu_geom g, int64_t n_sub, size_t n_labels,
                        size_t n_slots, int need_shift, gmle__cu_plan *p);

/* The plan of one sub-batch of n_rows rows that starts at a segment
 * boundary of the batch.
 *   start, end: [n_labels * nseg] the routed positions [start, end) of the
 *     rows of label l in segment s at index l * nseg + s (nseg =
 *     gmle__cu_plan_nseg(n_rows, g); both 0 when absent); NULL when the
 *     sub-batch has no labels (n_labels 1; positions are rows).
 *   slot_of: [n_labels] output slot of each label (-1: absent), or NULL
 *     (slot = label).
 *   rows: [n_slots] rows per slot, incremented.
 *   need_shift: [n_slots] or NULL: a slot with need_shift[s] = 1 gets a
 *     shift-list entry over its first min(shift_rows, rows) rows in its
 *     first segment, in that segment's launch, and the flag is cleared.
 * Returns 0, -1 when a label present has no slot, -2 when a table is too
 * small. */
int gmle__cu_plan_sub(gmle__cu_geom g, int64_t n_rows, size_t n_labels,
                      const uint32_t *start, const uint32_t *end,
                      const int32_t *slot_of, size_t n_slots,
                      int64_t shift_rows, uint64_t *rows,
                      unsigned char *need_shift, gmle__cu_plan *p);

#ifdef __cplusplus
}
#endif

#endif /* GMLE_CU_PLAN_H */
