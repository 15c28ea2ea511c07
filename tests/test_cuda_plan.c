/* test_cuda_plan.c -- the host logic of the CUDA module, pure host C
 * compiled into this suite and checked without a GPU: the error and
 * call-site classification (cuda/cu_classify.c), and the chunk plan of the
 * statistics kernels (cuda/cu_plan.c): its tables cover every row once and
 * respect the kernels' rules, and a host emulation of the device's reduction
 * order (routing by a stable sort, per-chunk float64 partials, direct adds and
 * group sums in the plan's order) gives bit-identical statistics for every
 * sub-batch size -- what an out-of-memory split and retry relies on -- and
 * agrees with a long double reference within the float64 contract. */
#include "check.h"
#include "testutil.h"

#include "../cuda/cu_classify.h"
#include "../cuda/cu_plan.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SHIFT_ROWS 5 /* rows averaged for a shift (the module uses 1024) */
#define KGROUPS 8    /* interleaved row groups inside a chunk, as k_moments */

/* ---- data ---- */

typedef struct data {
  size_t n, L;
  double *x, *w; /* one feature; weights or NULL */
  int32_t *lab;  /* NULL: one class */
} data;

/* Rows N(mean_c, sd_c) with per-class means far apart and very different
 * scales, so that any change of summation order changes low bits. Labels:
 * one heavy class, the rest spread, one label never used. */
static int data_make(data *d, uint64_t seed, size_t n, size_t L, int weights) {
  tu_rng r;
  tu_seed(&r, seed);
  memset(d, 0, sizeof *d);
  d->n = n;
  d->L = L;
  d->x = malloc(n * sizeof(double));
  d->w = weights ? malloc(n * sizeof(double)) : NULL;
  d->lab = L > 1 ? malloc(n * sizeof(int32_t)) : NULL;
  if (!d->x || (weights && !d->w) || (L > 1 && !d->lab))
    return -1;
  for (size_t i = 0; i < n; i++) {
    size_t c = 0;
    if (L > 1) {
      c = tu_uniform(&r) < 0.5 ? 0 : tu_below(&r, L - 1);
      d->lab[i] = (int32_t)c;
    }
    const double mean = 1000.0 * (double)c - 3.3e3;
    const double sd = pow(10.0, (double)(c % 5) - 1.0);
    d->x[i] = mean + sd * tu_normal(&r);
    if (weights)
      d->w[i] = tu_uniform(&r) < 0.1 ? 0.0 : 0.25 + tu_uniform(&r);
  }
  return 0;
}

static void data_free(data *d) {
  free(d->x);
  free(d->w);
  free(d->lab);
}

/* ---- host emulation of the device ---- */

/* Accumulators of every class: weight, shifted sum, shifted sum of
 * squares, rows; the shift. */
typedef struct accs {
  double *w, *s, *q, *shift;
  uint64_t *rows;
  unsigned char *need_shift;
} accs;

static int accs_init(accs *a, size_t L) {
  a->w = calloc(L, sizeof(double));
  a->s = calloc(L, sizeof(double));
  a->q = calloc(L, sizeof(double));
  a->shift = calloc(L, sizeof(double));
  a->rows = calloc(L, sizeof(uint64_t));
  a->need_shift = malloc(L);
  if (!a->w || !a->s || !a->q || !a->shift || !a->rows || !a->need_shift)
    return -1;
  memset(a->need_shift, 1, L);
  return 0;
}

static void accs_free(accs *a) {
  free(a->w);
  free(a->s);
  free(a->q);
  free(a->shift);
  free(a->rows);
  free(a->need_shift);
}

/* The partial of one chunk: rows at routed positions [b, e) summed as the
 * kernels do, in KGROUPS interleaved groups by position relative to b,
 * combined in group order. */
static void chunk_partial(const data *d, const uint32_t *idx, size_t r0,
                          int64_t b, int64_t e, double shift, double out[3]) {
  double gw[KGROUPS] = {0}, gs[KGROUPS] = {0}, gq[KGROUPS] = {0};
  for (int64_t p = b; p < e; p++) {
    const size_t row = r0 + (idx ? idx[p] : (size_t)p);
    const int g = (int)((p - b) % KGROUPS);
    const double w = d->w ? d->w[row] : 1.0;
    const double dv = d->x[row] - shift;
    gw[g] += w;
    gs[g] += w * dv;
    gq[g] = fma(w * dv, dv, gq[g]);
  }
  out[0] = gw[0];
  out[1] = gs[0];
  out[2] = gq[0];
  for (int g = 1; g < KGROUPS; g++) {
    out[0] += gw[g];
    out[1] += gs[g];
    out[2] += gq[g];
  }
}

/* The sum of a group's partials (element e of 3) as the reduction kernels
 * take it: lane l of a warp adds parts l, l + 32, ... in order, then a
 * butterfly (s_l += s_(l xor off) for off = 16, 8, 4, 2, 1); lane 0's. */
static double group_sum(const double *part, const gmle__cu_group *gr, int e) {
  double lane[32] = {0}, next[32];
  for (int l = 0; l < 32; l++)
    for (int32_t k = l; k < gr->n_parts; k += 32)
      lane[l] += part[3 * (size_t)(gr->part_first + k) + (size_t)e];
  for (int off = 16; off > 0; off >>= 1) {
    for (int l = 0; l < 32; l++)
      next[l] = lane[l] + lane[l ^ off];
    memcpy(lane, next, sizeof lane);
  }
  return lane[0];
}

/* Route the sub-batch [r0, r0+ni): a stable counting sort of its rows by
 * the key label * nseg + segment (the device's radix sort), and the
 * bounds of every key. */
static int route(const data *d, size_t r0, size_t ni, size_t nseg,
                 gmle__cu_geom g, uint32_t *idx, uint32_t *start,
                 uint32_t *end) {
  const size_t K = d->L * nseg;
  size_t *cnt = calloc(K + 1, sizeof(size_t));
  if (!cnt)
    return -1;
  for (size_t i = 0; i < ni; i++)
    cnt[(size_t)d->lab[r0 + i] * nseg + i / (size_t)g.seg + 1]++;
  for (size_t k = 0; k < K; k++)
    cnt[k + 1] += cnt[k];
  for (size_t k = 0; k < K; k++) {
    start[k] = (uint32_t)cnt[k];
    end[k] = (uint32_t)cnt[k + 1];
    if (start[k] == end[k])
      start[k] = end[k] = 0; /* the device leaves absent keys at zero */
  }
  for (size_t i = 0; i < ni; i++)
    idx[cnt[(size_t)d->lab[r0 + i] * nseg + i / (size_t)g.seg]++] = (uint32_t)i;
  free(cnt);
  return 0;
}

/* Check the tables of one sub-batch: every routed position in exactly one
 * chunk; chunks inside one segment and one label run, at most rmax rows;
 * per segment one direct chunk or one group per slot; groups' partials
 * numbered consecutively from 0 in each segment. */
static int plan_ok(const gmle__cu_plan *p, gmle__cu_geom g, size_t ni,
                   const uint32_t *idx, const data *d, size_t r0,
                   size_t n_slots) {
  unsigned char *seen = calloc(ni ? ni : 1, 1);
  int32_t *owner = malloc(n_slots * sizeof(int32_t));
  int ok = seen && owner;
  for (size_t s = 0; ok && s < p->n_segs; s++) {
    const gmle__cu_seg *sg = &p->segs[s];
    for (size_t c = 0; c < n_slots; c++)
      owner[c] = -1;
    int32_t next_part = 0;
    for (size_t q = sg->chunk0; ok && q < sg->chunk0 + sg->n_chunks; q++) {
      const gmle__cu_chunk *ch = &p->chunks[q];
      ok = ch->begin < ch->end && ch->end - ch->begin <= g.rmax &&
           ch->end <= (int64_t)ni && ch->slot >= 0 &&
           (size_t)ch->slot < n_slots;
      for (int64_t pos = ch->begin; ok && pos < ch->end; pos++) {
        const size_t row = idx ? idx[pos] : (size_t)pos;
        ok = !seen[pos] && row / (size_t)g.seg == s &&
             (!d->lab || d->lab[r0 + row] == ch->slot);
        seen[pos] = 1;
      }
      if (!ok)
        break;
      if (ch->part < 0) {
        ok = owner[ch->slot] == -1; /* the slot's only chunk here */
        owner[ch->slot] = -2;
      } else {
        ok = ch->part == next_part++ &&
             (owner[ch->slot] == -1 || owner[ch->slot] >= 0);
        owner[ch->slot] = ch->part;
      }
    }
    ok = ok && next_part == sg->n_parts && sg->n_parts <= p->cap_parts;
    int32_t first = 0;
    for (size_t q = sg->group0; ok && q < sg->group0 + sg->n_groups; q++) {
      const gmle__cu_group *gr = &p->groups[q];
      ok = gr->part_first == first && gr->n_parts > 1;
      first += gr->n_parts;
      /* the group's partials are exactly its slot's chunks, in row order */
      int32_t k = gr->part_first;
      int64_t prev_end = -1;
      for (size_t c = sg->chunk0; ok && c < sg->chunk0 + sg->n_chunks; c++) {
        const gmle__cu_chunk *ch = &p->chunks[c];
        if (ch->slot != gr->slot)
          continue;
        ok = ch->part == k++ && (prev_end < 0 || ch->begin == prev_end);
        prev_end = ch->end;
      }
      ok = ok && k == gr->part_first + gr->n_parts;
    }
    ok = ok && first == sg->n_parts;
  }
  for (size_t i = 0; ok && i < ni; i++)
    ok = seen[i];
  free(seen);
  free(owner);
  return ok;
}

/* Accumulate the batch in sub-batches of k segments, the way the module
 * does (cuda/cu_stats.c), into a. chunked_by_sub: the former, split-
 * dependent cutting (chunks of ceil(ni / 8) rows of each class's run in
 * the sub-batch, no segments) for the negative control. */
static int emulate(const data *d, gmle__cu_geom g, size_t k, accs *a,
                   int chunked_by_sub, int *plan_valid) {
  const size_t n = d->n, n_sub = k * (size_t)g.seg;
  const size_t nseg_max = gmle__cu_plan_nseg((int64_t)n_sub, g);
  gmle__cu_plan p;
  memset(&p, 0, sizeof p);
  gmle__cu_plan_caps(g, (int64_t)n_sub, d->L, d->L, 1, &p);
  p.chunks = malloc(p.cap_chunks * sizeof *p.chunks);
  p.groups = malloc((p.cap_groups ? p.cap_groups : 1) * sizeof *p.groups);
  p.list = malloc(p.cap_list * sizeof *p.list);
  p.segs = malloc(p.cap_segs * sizeof *p.segs);
  uint32_t *idx = malloc(n_sub * sizeof(uint32_t));
  uint32_t *start = malloc(d->L * nseg_max * sizeof(uint32_t));
  uint32_t *end = malloc(d->L * nseg_max * sizeof(uint32_t));
  double *part = malloc((size_t)p.cap_parts * 3 * sizeof(double));
  int rc = -1;
  if (!p.chunks || !p.groups || !p.list || !p.segs || !idx || !start || !end ||
      !part)
    goto out;
  for (size_t r0 = 0; r0 < n; r0 += n_sub) {
    const size_t ni = n - r0 < n_sub ? n - r0 : n_sub;
    const size_t nseg = gmle__cu_plan_nseg((int64_t)ni, g);
    const int labelled = d->lab != NULL;
    if (labelled && route(d, r0, ni, nseg, g, idx, start, end) != 0)
      goto out;
    gmle__cu_geom gp = g;
    if (chunked_by_sub) { /* one "segment" per sub-batch */
      gp.seg = (int64_t)n_sub;
      gp.rmax = ((int64_t)ni + 7) / 8;
      if (labelled && route(d, r0, ni, 1, gp, idx, start, end) != 0)
        goto out;
    }
    if (gmle__cu_plan_sub(gp, (int64_t)ni, d->L, labelled ? start : NULL,
                          labelled ? end : NULL, NULL, d->L, SHIFT_ROWS,
                          a->rows, a->need_shift, &p) != 0)
      goto out;
    if (!chunked_by_sub &&
        !plan_ok(&p, g, ni, labelled ? idx : NULL, d, r0, d->L))
      *plan_valid = 0;
    for (size_t s = 0; s < p.n_segs; s++) {
      const gmle__cu_seg *sg = &p.segs[s];
      const uint32_t *ix = labelled ? idx : NULL;
      for (size_t e = sg->list0; e < sg->list0 + sg->n_list; e++) {
        const gmle__cu_chunk *le = &p.list[e];
        double m = 0.0;
        for (int64_t pos = le->begin; pos < le->end; pos++)
          m += d->x[r0 + (ix ? ix[pos] : (size_t)pos)];
        a->shift[le->slot] = m / (double)(le->end - le->begin);
      }
      for (size_t q = sg->chunk0; q < sg->chunk0 + sg->n_chunks; q++) {
        const gmle__cu_chunk *ch = &p.chunks[q];
        double P[3];
        chunk_partial(d, ix, r0, ch->begin, ch->end, a->shift[ch->slot], P);
        if (ch->part < 0) {
          a->w[ch->slot] += P[0];
          a->s[ch->slot] += P[1];
          a->q[ch->slot] += P[2];
        } else {
          memcpy(part + 3 * (size_t)ch->part, P, sizeof P);
        }
      }
      for (size_t q = sg->group0; q < sg->group0 + sg->n_groups; q++) {
        const gmle__cu_group *gr = &p.groups[q];
        for (int e = 0; e < 3; e++) {
          double *acc = e == 0 ? a->w : e == 1 ? a->s : a->q;
          acc[gr->slot] += group_sum(part, gr, e);
        }
      }
    }
  }
  rc = 0;
out:
  free(p.chunks);
  free(p.groups);
  free(p.list);
  free(p.segs);
  free(idx);
  free(start);
  free(end);
  free(part);
  return rc;
}

static int accs_bits_equal(const accs *a, const accs *b, size_t L) {
  return tu_bits_equal(a->w, b->w, L) && tu_bits_equal(a->s, b->s, L) &&
         tu_bits_equal(a->q, b->q, L) && tu_bits_equal(a->shift, b->shift, L) &&
         memcmp(a->rows, b->rows, L * sizeof(uint64_t)) == 0;
}

/* Each class's weighted mean and variance from the accumulators against a
 * long double two-pass reference; row counts exact. */
static void check_against_reference(const data *d, const accs *a) {
  for (size_t c = 0; c < d->L; c++) {
    long double wn = 0, m = 0, v = 0;
    uint64_t rows = 0;
    for (size_t i = 0; i < d->n; i++)
      if (!d->lab || (size_t)d->lab[i] == c) {
        const long double w = d->w ? d->w[i] : 1.0L;
        wn += w;
        m += w * d->x[i];
        rows++;
      }
    CHECK(a->rows[c] == rows);
    if (wn == 0) {
      CHECK(a->w[c] == 0.0);
      continue;
    }
    m /= wn;
    for (size_t i = 0; i < d->n; i++)
      if (!d->lab || (size_t)d->lab[i] == c) {
        const long double w = d->w ? d->w[i] : 1.0L;
        v += w * (d->x[i] - m) * (d->x[i] - m);
      }
    v /= wn;
    const double mean = a->shift[c] + a->s[c] / a->w[c];
    const double dm = a->s[c] / a->w[c];
    const double var = a->q[c] / a->w[c] - dm * dm;
    CHECK_REL(a->w[c], (double)wn, 1e-12);
    CHECK_CLOSE(mean, (double)m, 1e-12);
    CHECK_REL(var, (double)v, 1e-12);
  }
}

/* Bit-identical results for every sub-batch size k (in segments), and
 * agreement with the reference. */
static void check_split_invariance(const data *d, gmle__cu_geom g) {
  const size_t nseg_all = gmle__cu_plan_nseg((int64_t)d->n, g);
  accs ref;
  if (accs_init(&ref, d->L) != 0) {
    CHECK(!"accs_init");
    return;
  }
  int valid = 1;
  CHECK(emulate(d, g, nseg_all, &ref, 0, &valid) == 0);
  CHECK(valid);
  check_against_reference(d, &ref);
  const size_t ks[] = {1, 2, 3, 5, 7, 8, 13};
  for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++) {
    if (ks[i] >= nseg_all)
      continue;
    accs a;
    if (accs_init(&a, d->L) != 0) {
      CHECK(!"accs_init");
      break;
    }
    valid = 1;
    CHECK(emulate(d, g, ks[i], &a, 0, &valid) == 0);
    CHECK_MSG(valid, "k %zu: invalid plan", ks[i]);
    CHECK_MSG(accs_bits_equal(&a, &ref, d->L),
              "k %zu segments per sub-batch: statistics differ in bits", ks[i]);
    accs_free(&a);
  }
  accs_free(&ref);
}

/* ---- tests ---- */

TEST(plan_geometry_depends_only_on_shape) {
  const size_t dims[] = {1, 13, 40, 128, 512, 1024, 5000};
  const size_t labels[] = {1, 4, 1000, 100000};
  const size_t seg_bytes[] = {GMLE__CU_SEG_BYTES_HOST,
                              GMLE__CU_SEG_BYTES_DEVICE};
  const size_t mib = (size_t)1 << 20;
  for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++)
    for (size_t isz = 4; isz <= 8; isz += 4)
      for (size_t li = 0; li < sizeof labels / sizeof labels[0]; li++)
        for (size_t si = 0; si < 2; si++)
          for (int64_t bpc = 1; bpc <= 4096; bpc *= 8) {
            const size_t L = labels[li], row = dims[i] * isz;
            const size_t sb = seg_bytes[si];
            const size_t big = sb > 256 * mib ? sb : 256 * mib;
            const gmle__cu_geom g =
                gmle__cu_plan_geom(dims[i], isz, sb, L, bpc);
            CHECK(g.seg >= 1024 && g.seg <= ((int64_t)1 << 22));
            CHECK((g.seg & (g.seg - 1)) == 0 && (g.rmax & (g.rmax - 1)) == 0);
            CHECK(g.rmax >= 1 && g.rmax <= g.seg);
            /* A segment's rows stay within seg_bytes, or 256 MiB with many
             * labels, unless at the floor of 1024 rows. */
            const size_t bytes = (size_t)g.seg * row;
            CHECK(g.seg == 1024 || bytes <= sb ||
                  (bytes <= big && (size_t)g.seg <= 128 * L));
            /* At least half of seg_bytes, unless at a bound. */
            CHECK(bytes * 2 > sb || g.seg == ((int64_t)1 << 22));
            /* Many labels: at least 32 rows per label, unless capped. */
            CHECK((size_t)g.seg >= 32 * L || bytes * 2 > big ||
                  g.seg == ((int64_t)1 << 22));
            /* Enough chunks for the target number of blocks, down to the
             * floor of 256 rows. */
            CHECK(g.rmax == 256 || g.rmax == g.seg ||
                  (g.seg / g.rmax) * bpc >= 1024 / 2);
            const gmle__cu_geom h =
                gmle__cu_plan_geom(dims[i], isz, sb, L, bpc);
            CHECK(h.seg == g.seg && h.rmax == g.rmax);
          }
  /* 13 float32 features: 16 MiB hold 2^18 rows, 262 per label of 1000,
   * so the segment does not grow; 256 MiB (device input) hold 2^22. 1024
   * features: 4096 rows, which grow to 2^15 (32 per label) for 1000
   * labels. */
  const size_t H = GMLE__CU_SEG_BYTES_HOST;
  CHECK(gmle__cu_plan_geom(13, 4, H, 1000, 1).seg == ((int64_t)1 << 18));
  CHECK(gmle__cu_plan_geom(13, 4, H, 1, 1).seg == ((int64_t)1 << 18));
  CHECK(gmle__cu_plan_geom(13, 4, GMLE__CU_SEG_BYTES_DEVICE, 1, 1).seg ==
        ((int64_t)1 << 22));
  CHECK(gmle__cu_plan_geom(1024, 4, H, 1, 136).seg == 4096);
  CHECK(gmle__cu_plan_geom(1024, 4, H, 1000, 136).seg == 32768);
  CHECK(gmle__cu_plan_nseg(0, gmle__cu_plan_geom(13, 4, H, 1, 1)) == 0);
  const gmle__cu_geom g = {1024, 256};
  CHECK(gmle__cu_plan_nseg(1, g) == 1);
  CHECK(gmle__cu_plan_nseg(1024, g) == 1);
  CHECK(gmle__cu_plan_nseg(1025, g) == 2);
}

TEST(plan_split_invariant_labelled) {
  data d;
  if (data_make(&d, 11, 5000, 9, 0) == 0)
    check_split_invariance(&d, (gmle__cu_geom){256, 32});
  else
    CHECK(!"data_make");
  data_free(&d);
}

TEST(plan_split_invariant_weighted_ragged) {
  data d;
  /* 4099 rows: the last segment and sub-batch are partial. */
  if (data_make(&d, 12, 4099, 5, 1) == 0)
    check_split_invariance(&d, (gmle__cu_geom){128, 16});
  else
    CHECK(!"data_make");
  data_free(&d);
}

TEST(plan_split_invariant_unlabelled) {
  data d;
  if (data_make(&d, 13, 3000, 1, 1) == 0)
    check_split_invariance(&d, (gmle__cu_geom){128, 32});
  else
    CHECK(!"data_make");
  data_free(&d);
}

TEST(plan_split_invariant_many_small_classes) {
  data d;
  /* 300 labels: most classes have a row or two per segment. */
  if (data_make(&d, 14, 6000, 300, 0) == 0)
    check_split_invariance(&d, (gmle__cu_geom){512, 64});
  else
    CHECK(!"data_make");
  data_free(&d);
}

/* The check above can fail: the former cutting (chunks sized from the
 * sub-batch) changes bits when the sub-batch size changes. */
TEST(plan_emulation_detects_split_dependent_cutting) {
  data d;
  if (data_make(&d, 11, 5000, 9, 0) != 0) {
    CHECK(!"data_make");
    data_free(&d);
    return;
  }
  const gmle__cu_geom g = {256, 32};
  accs a, b;
  int valid = 1;
  CHECK(accs_init(&a, d.L) == 0 && accs_init(&b, d.L) == 0);
  CHECK(emulate(&d, g, 20, &a, 1, &valid) == 0);
  CHECK(emulate(&d, g, 3, &b, 1, &valid) == 0);
  CHECK(!accs_bits_equal(&a, &b, d.L));
  accs_free(&a);
  accs_free(&b);
  data_free(&d);
}

/* The capacities hold in the worst cases: one class, and a new class on
 * every row; too small tables and labels without a slot are refused. */
TEST(plan_capacities_and_refusals) {
  const gmle__cu_geom g = {64, 16};
  const int64_t n = 200; /* 4 segments, the last one partial */
  const size_t nseg = gmle__cu_plan_nseg(n, g);
  const size_t L = (size_t)n;
  uint32_t *start = calloc(L * nseg, sizeof(uint32_t));
  uint32_t *end = calloc(L * nseg, sizeof(uint32_t));
  uint64_t *rows = calloc(L, sizeof(uint64_t));
  unsigned char *need = malloc(L);
  int32_t *slot_of = malloc(L * sizeof(int32_t));
  gmle__cu_plan p;
  memset(&p, 0, sizeof p);
  gmle__cu_plan_caps(g, n, L, L, 1, &p);
  p.chunks = malloc(p.cap_chunks * sizeof *p.chunks);
  p.groups = malloc(p.cap_groups * sizeof *p.groups);
  p.list = malloc(p.cap_list * sizeof *p.list);
  p.segs = malloc(p.cap_segs * sizeof *p.segs);
  if (!start || !end || !rows || !need || !slot_of || !p.chunks || !p.groups ||
      !p.list || !p.segs) {
    CHECK(!"alloc");
    goto out;
  }
  /* Row i has label i: one chunk per row, all direct. */
  for (size_t i = 0; i < L; i++) {
    start[i * nseg + i / (size_t)g.seg] = (uint32_t)i;
    end[i * nseg + i / (size_t)g.seg] = (uint32_t)i + 1;
    slot_of[i] = (int32_t)i;
  }
  memset(need, 1, L);
  CHECK(gmle__cu_plan_sub(g, n, L, start, end, slot_of, L, 1024, rows, need,
                          &p) == 0);
  CHECK(p.n_chunks == L && p.n_groups == 0 && p.n_list == L);
  CHECK(p.n_segs == nseg && p.segs[3].n_chunks == (size_t)(n - 3 * g.seg));
  for (size_t i = 0; i < L; i++)
    CHECK(rows[i] == 1 && need[i] == 0);
  /* One class: the most chunks, groups and partials. */
  gmle__cu_plan q = p;
  gmle__cu_plan_caps(g, n, 1, 1, 0, &q);
  memset(rows, 0, L * sizeof(uint64_t));
  CHECK(gmle__cu_plan_sub(g, n, 1, NULL, NULL, NULL, 1, 1024, rows, NULL, &q) ==
        0);
  CHECK(q.n_chunks == (size_t)((n + g.rmax - 1) / g.rmax) &&
        rows[0] == (uint64_t)n);
  /* Full segments: 4 chunks of 16 rows summed as a group; the last
   * segment has 8 rows: one direct chunk, no group. */
  CHECK(q.n_groups == nseg - 1 && q.segs[0].n_parts == 4);
  CHECK(q.segs[3].n_parts == 0 && q.segs[3].n_groups == 0 &&
        q.segs[3].n_chunks == 1);
  /* Too small a chunk table; a label without a slot. */
  q.cap_chunks = 3;
  CHECK(gmle__cu_plan_sub(g, n, 1, NULL, NULL, NULL, 1, 1024, rows, NULL, &q) ==
        -2);
  slot_of[7] = -1;
  memset(need, 1, L);
  CHECK(gmle__cu_plan_sub(g, n, L, start, end, slot_of, L, 1024, rows, need,
                          &p) == -1);
out:
  free(start);
  free(end);
  free(rows);
  free(need);
  free(slot_of);
  free(p.chunks);
  free(p.groups);
  free(p.list);
  free(p.segs);
}

/* Sub-batches: whole segments, bounded rows and routing keys; after an
 * out-of-memory they halve until one segment, then stop. */
TEST(plan_sub_batches_and_oom_splits) {
  const gmle__cu_geom g =
      gmle__cu_plan_geom(20, 8, GMLE__CU_SEG_BYTES_HOST, 4, 1); /* 65536 */
  CHECK(g.seg == 65536);
  /* 64 MiB of rows of 20 float64, a label and a weight: 5 segments. */
  CHECK(gmle__cu_plan_segs_per_sub(g, 172, (size_t)64 << 20, 4) == 5);
  CHECK(gmle__cu_plan_segs_per_sub(g, 1, (size_t)-1, 1) == 256); /* 2^24 */
  CHECK(gmle__cu_plan_segs_per_sub(g, 1, (size_t)-1, 100000) == 167);
  CHECK(gmle__cu_plan_segs_per_sub(g, 1, (size_t)-1, (size_t)1 << 30) == 1);
  CHECK(gmle__cu_plan_segs_per_sub(g, (size_t)1 << 30, 1, 1) == 1);
  /* 470000 rows = 8 segments: 5 -> 2 -> 1, then no more. */
  size_t k = 5;
  CHECK(gmle__cu_plan_next_split(&k, g, 470000) == 1 && k == 2);
  CHECK(gmle__cu_plan_next_split(&k, g, 470000) == 1 && k == 1);
  CHECK(gmle__cu_plan_next_split(&k, g, 470000) == 0 && k == 1);
  /* k larger than the batch: starts from the batch's segments. */
  k = 256;
  CHECK(gmle__cu_plan_next_split(&k, g, 470000) == 1 && k == 4);
  k = 256;
  CHECK(gmle__cu_plan_next_split(&k, g, 1000) == 0 && k == 256);
}

/* Out of memory splits and retries; the sticky errors (kernel faults,
 * launch timeout, ECC, ...) lose the context; the rest are transient. The
 * numbers are the CUDA runtime's (cu_backend.c checks them against its
 * enum at compile time). */
TEST(cuda_errors_are_classified) {
  CHECK(gmle__cu_error_kind(2) == GMLE__CU_OOM); /* MemoryAllocation */
  const int sticky[] = {700, 702, 719, 214, 715, 716, 710, 999};
  for (size_t i = 0; i < sizeof sticky / sizeof sticky[0]; i++)
    CHECK_MSG(gmle__cu_error_kind(sticky[i]) == GMLE__CU_STICKY, "error %d",
              sticky[i]);
  /* InvalidValue, InvalidDevicePointer, NotReady, NoKernelImage,
   * LaunchOutOfResources (a launch refused, nothing ran). */
  const int transient[] = {1, 17, 600, 209, 701, 100, 35};
  for (size_t i = 0; i < sizeof transient / sizeof transient[0]; i++)
    CHECK_MSG(gmle__cu_error_kind(transient[i]) == GMLE__CU_TRANSIENT,
              "error %d", transient[i]);
}

/* The call sites of the module's checked calls, as CU_TRY sees their
 * source text (fault injection counts by site). */
TEST(cuda_call_sites_are_classified) {
  CHECK(gmle__cu_site_of("cudaMemcpyAsync(R->d_chunks, P->chunks, n, "
                         "cudaMemcpyHostToDevice, S->compute)") ==
        GMLE__CU_SITE_COPY);
  CHECK(gmle__cu_site_of("cudaMemcpy(&v, cell, 8, cudaMemcpyDeviceToHost)") ==
        GMLE__CU_SITE_COPY);
  CHECK(gmle__cu_site_of("cudaMemsetAsync(R->acc_w, 0, n, S->compute)") ==
        GMLE__CU_SITE_COPY);
  CHECK(gmle__cu_site_of("cudaEventSynchronize(S->meta_used)") ==
        GMLE__CU_SITE_SYNC);
  CHECK(gmle__cu_site_of("cudaStreamWaitEvent(S->copy, S->consumed[s], 0)") ==
        GMLE__CU_SITE_SYNC);
  CHECK(gmle__cu_site_of("cudaEventRecord(S->meta_ready, S->compute)") ==
        GMLE__CU_SITE_SYNC);
  CHECK(gmle__cu_site_of("gmle__cu_gram(&in, ch, n, R->t, R->acc_g, "
                         "R->part_g, S->compute)") == GMLE__CU_SITE_KERNEL);
  CHECK(gmle__cu_site_of("gmle__cu_sort(R->sort_tmp, R->sort_bytes, ...)") ==
        GMLE__CU_SITE_KERNEL);
  CHECK(gmle__cu_site_of("cudaMalloc(&p, n)") == GMLE__CU_SITE_ALLOC);
  CHECK(gmle__cu_site_of("cudaHostAlloc(&p, n, 0)") == GMLE__CU_SITE_ALLOC);
  CHECK(gmle__cu_site_of("cublasDgemm(S->blas, ...)") == GMLE__CU_SITE_BLAS);
  CHECK((GMLE__CU_SITE_ALLOC | GMLE__CU_SITE_COPY | GMLE__CU_SITE_KERNEL |
         GMLE__CU_SITE_BLAS | GMLE__CU_SITE_SYNC) == GMLE__CU_SITE_ALL);
}

int main(int argc, char **argv) {
  CHECK_INIT(argc, argv);
  RUN(plan_geometry_depends_only_on_shape);
  RUN(plan_split_invariant_labelled);
  RUN(plan_split_invariant_weighted_ragged);
  RUN(plan_split_invariant_unlabelled);
  RUN(plan_split_invariant_many_small_classes);
  RUN(plan_emulation_detects_split_dependent_cutting);
  RUN(plan_capacities_and_refusals);
  RUN(plan_sub_batches_and_oom_splits);
  RUN(cuda_errors_are_classified);
  RUN(cuda_call_sites_are_classified);
  return CHECK_DONE();
}
