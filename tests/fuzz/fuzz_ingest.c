/*
 * fuzz_ingest.c -- the batch-ingest API (gmle_stats_add, _add_checked,
 * _merge) on the CPU backend, driven by the input bytes.
 *
 * The first two bytes choose the features (1..8), the classes (1..4) and
 * the statistics mode. Then each batch takes a few bytes: float32 or
 * float64, weights or none, rows (0..47, or up to 1056), the row stride
 * (dim + 0..3; the padding between rows is filled with NaN, which must never
 * be read), how labels are drawn, the scale and offset of the values (a
 * seeded generator makes the values, so that most inputs reach
 * accumulation), whether the batch goes straight in or through a second
 * accumulator and gmle_stats_merge, and at most one fault: NaN or Inf at a
 * chosen cell, a label out of range, a negative, NaN or infinite weight,
 * all weights zero, no labels with several classes, a stride below dim, a
 * wrong column count, a bad dtype, a NULL x, a row count whose byte size
 * overflows size_t, values of 1e200 (whose squares overflow float64).
 *
 * Invariants (a violation aborts):
 * - the status is the one the batch calls for (GMLE_OK for a clean batch;
 *   the argument error before any data error; any of the data errors
 *   present; GMLE_E_OVERFLOW only when huge values were added), and an
 *   error comes with a message;
 * - a failed call, and an empty batch, leave the statistics bit-identical;
 * - a successful call adds one batch, exactly the batch's rows to each
 *   class, the batch's weights to each class's weight, and leaves the
 *   classes absent from the batch bit-identical;
 * - at the end, every class's count, weight, mean and covariance (from the
 *   shifted sums) agree with a long-double two-pass reference over the
 *   rows accepted, within a few N * eps of the data's spread (the float64
 *   contract; the CPU backend accumulates float32 input in float64 too).
 */
#include "fuzzutil.h"

#include "internal.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BATCHES 16

typedef struct input {
  const uint8_t *p;
  size_t n;
} input;

static unsigned byte(input *in) {
  if (in->n == 0)
    return 0;
  in->n--;
  return *in->p++;
}

static uint64_t next(uint64_t *s) { /* xorshift64 */
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

/* ------------------------------------------------------------ snapshots */

typedef struct snap {
  uint64_t n_batches;
  int saw_f32;
  double *weight, *shift, *sum, *gram;
  uint64_t *rows;
  unsigned char *has_shift;
} snap;

static void *dup_bytes(const void *p, size_t n) {
  void *q = malloc(n ? n : 1);
  FZ_REQUIRE(q != NULL, "out of memory in the harness");
  memcpy(q, p, n);
  return q;
}

static snap take(const gmle_stats *st) {
  const size_t C = st->n_classes, D = st->dim;
  snap s = {st->n_batches,
            st->saw_f32,
            dup_bytes(st->weight, C * sizeof(double)),
            dup_bytes(st->shift, C * D * sizeof(double)),
            dup_bytes(st->sum, C * D * sizeof(double)),
            dup_bytes(st->gram, C * st->gram_len * sizeof(double)),
            dup_bytes(st->rows, C * sizeof(uint64_t)),
            dup_bytes(st->has_shift, C)};
  return s;
}

static void drop(snap *s) {
  free(s->weight);
  free(s->shift);
  free(s->sum);
  free(s->gram);
  free(s->rows);
  free(s->has_shift);
}

/* 1 when class c of st is bit-identical to the snapshot. */
static int class_same(const gmle_stats *st, const snap *s, size_t c) {
  const size_t D = st->dim, G = st->gram_len;
  return !memcmp(&st->weight[c], &s->weight[c], sizeof(double)) &&
         st->rows[c] == s->rows[c] && st->has_shift[c] == s->has_shift[c] &&
         !memcmp(st->shift + c * D, s->shift + c * D, D * sizeof(double)) &&
         !memcmp(st->sum + c * D, s->sum + c * D, D * sizeof(double)) &&
         !memcmp(st->gram + c * G, s->gram + c * G, G * sizeof(double));
}

static int all_same(const gmle_stats *st, const snap *s) {
  for (size_t c = 0; c < st->n_classes; c++)
    if (!class_same(st, s, c))
      return 0;
  return st->n_batches == s->n_batches && st->saw_f32 == s->saw_f32;
}

/* -------------------------------------------------------------- batches */

enum fault {
  F_NONE,
  F_NAN,
  F_INF,
  F_LABEL,
  F_WEIGHT,
  F_ZERO_WEIGHTS,
  F_NO_LABELS,
  F_STRIDE,
  F_NCOLS,
  F_DTYPE,
  F_NULL_X,
  F_HUGE_N,
  F_HUGE_VALUES,
  F_COUNT
};

typedef struct batch {
  gmle_dtype dtype;
  size_t n_rows, stride, n_cols;
  void *x;         /* what is passed (may be NULL) */
  double *val;     /* n_rows x D values as double (the same as x's) */
  int32_t *labels; /* NULL when not passed */
  double *weights; /* NULL when not passed */
  int checked;     /* gmle_stats_add_checked */
  int huge;        /* holds values whose squares overflow */
  void *mem;       /* allocation behind x */
} batch;

static void batch_free(batch *b) {
  free(b->mem);
  free(b->val);
  free(b->labels);
  free(b->weights);
}

static const double weight_table[8] = {1, 0, 0.5, 2, 3, 0.125, 1e-3, 1e3};
static const double offset_table[6] = {0, 1, -3.5, 1e4, -1e6, 0.1};

/* Decode one batch for statistics of D features and C classes. */
static batch decode(input *in, size_t D, size_t C) {
  batch b;
  memset(&b, 0, sizeof b);
  const unsigned op = byte(in);
  b.dtype = (op & 1) ? GMLE_F32 : GMLE_F64;
  const int has_w = (op >> 1) & 1;
  b.checked = (op >> 2) & 1;
  const enum fault f =
      (op >> 3) & 1 ? (enum fault)(1 + byte(in) % (F_COUNT - 1)) : F_NONE;
  const unsigned nb = byte(in);
  b.n_rows = nb < 192 ? nb % 48 : 48 + (size_t)(nb - 192) * 16;
  b.stride = D + byte(in) % 4;
  const unsigned lab_mode = byte(in) % 3, lab_class = byte(in);
  const double scale = pow(10.0, (double)((int)(byte(in) % 41) - 20));
  const double offset = offset_table[byte(in) % 6];
  uint64_t seed = 0x9e3779b97f4a7c15ull ^ byte(in) ^ ((uint64_t)byte(in) << 8);
  const size_t fr = b.n_rows ? byte(in) % b.n_rows : 0, fc = byte(in) % D;
  const size_t isz = b.dtype == GMLE_F32 ? 4 : 8;

  /* Values: NaN everywhere (the padding), then the rows. */
  const size_t cells = b.n_rows * b.stride;
  b.mem = malloc(cells ? cells * isz : 1);
  b.val = malloc(b.n_rows * D * sizeof(double) + 1);
  FZ_REQUIRE(b.mem && b.val, "out of memory in the harness");
  for (size_t i = 0; i < cells; i++) {
    if (b.dtype == GMLE_F32)
      ((float *)b.mem)[i] = NAN;
    else
      ((double *)b.mem)[i] = NAN;
  }
  for (size_t r = 0; r < b.n_rows; r++)
    for (size_t j = 0; j < D; j++) {
      const double g = ((double)(next(&seed) % 257) - 128) / 8;
      double v = offset + scale * g;
      if (f == F_HUGE_VALUES && (r == fr || next(&seed) % 4 == 0))
        v = b.dtype == GMLE_F32 ? 3e38 * (g < 0 ? -1 : 1) : 1e200 * g;
      if (b.dtype == GMLE_F32) {
        ((float *)b.mem)[r * b.stride + j] = (float)v;
        v = (double)(float)v;
      } else {
        ((double *)b.mem)[r * b.stride + j] = v;
      }
      b.val[r * D + j] = v;
      b.huge |= fabs(v) > 1e150;
    }
  if ((f == F_NAN || f == F_INF) && b.n_rows) {
    const double bad = f == F_NAN ? NAN : (fr % 2 ? -INFINITY : INFINITY);
    if (b.dtype == GMLE_F32)
      ((float *)b.mem)[fr * b.stride + fc] = (float)bad;
    else
      ((double *)b.mem)[fr * b.stride + fc] = bad;
    b.val[fr * D + fc] = bad;
  }
  b.x = b.mem;

  /* Labels (always, for the reference; passed unless F_NO_LABELS with C>1
   * or C == 1 and the op says so). */
  b.labels = malloc(b.n_rows * sizeof(int32_t) + 1);
  FZ_REQUIRE(b.labels, "out of memory in the harness");
  for (size_t r = 0; r < b.n_rows; r++)
    b.labels[r] = (int32_t)(lab_mode == 0   ? next(&seed) % C
                            : lab_mode == 1 ? lab_class % C
                                            : r % C);
  if (f == F_LABEL && b.n_rows) {
    const int32_t bad[3] = {(int32_t)C, -1, INT32_MIN};
    b.labels[fr] = bad[fc % 3];
  }
  if (f == F_NO_LABELS || (C == 1 && (op >> 4) & 1)) {
    free(b.labels);
    b.labels = NULL;
  }

  if (has_w || f == F_WEIGHT || f == F_ZERO_WEIGHTS) {
    b.weights = malloc(b.n_rows * sizeof(double) + 1);
    FZ_REQUIRE(b.weights, "out of memory in the harness");
    for (size_t r = 0; r < b.n_rows; r++)
      b.weights[r] = f == F_ZERO_WEIGHTS ? 0 : weight_table[next(&seed) % 8];
    if (f == F_WEIGHT && b.n_rows) {
      const double bad[3] = {-1, NAN, INFINITY};
      b.weights[fr] = bad[fc % 3];
    }
  }
  b.n_cols = f == F_NCOLS ? D + 1 + fc : D;
  if (f == F_NCOLS)
    b.checked = 1;
  if (f == F_STRIDE)
    b.stride = fc < D ? fc : D - 1;
  if (f == F_DTYPE)
    b.dtype = (gmle_dtype)(fc % 2 ? 0 : 3);
  if (f == F_NULL_X)
    b.x = NULL;
  if (f == F_HUGE_N && b.n_rows) {
    b.n_rows = SIZE_MAX / 4 + 1 + fc; /* only the first rows exist */
    b.stride = D;
  }
  return b;
}

/* The statuses the call may return, as a bit set. */
static unsigned allowed(const batch *b, size_t D, size_t C, int huge_seen) {
#define BIT(s) (1u << (s))
  if (b->n_cols != D)
    return BIT(GMLE_E_DIM_MISMATCH);
  if (b->dtype != GMLE_F32 && b->dtype != GMLE_F64)
    return BIT(GMLE_E_INVALID_ARG);
  if (b->n_rows == 0)
    return BIT(GMLE_OK);
  const size_t isz = b->dtype == GMLE_F32 ? 4 : 8;
  const int overflows = b->stride && b->n_rows > SIZE_MAX / (b->stride * isz);
  if (overflows || !b->x || b->stride < D || (!b->labels && C > 1))
    return BIT(GMLE_E_INVALID_ARG);
  unsigned set = 0;
  for (size_t i = 0; i < b->n_rows * D; i++)
    if (!isfinite(b->val[i]))
      set |= BIT(GMLE_E_NONFINITE_INPUT);
  int any_w = 0;
  for (size_t r = 0; r < b->n_rows; r++) {
    if (b->labels && (b->labels[r] < 0 || (size_t)b->labels[r] >= C))
      set |= BIT(GMLE_E_BAD_LABEL);
    if (b->weights && (!isfinite(b->weights[r]) || b->weights[r] < 0))
      set |= BIT(GMLE_E_INVALID_WEIGHTS);
    any_w |= !b->weights || b->weights[r] > 0;
  }
  if (!any_w)
    set |= BIT(GMLE_E_INVALID_WEIGHTS);
  if (set)
    return set;
  return BIT(GMLE_OK) | (huge_seen || b->huge ? BIT(GMLE_E_OVERFLOW) : 0);
#undef BIT
}

static gmle_status add(gmle_stats *st, const batch *b) {
  if (b->checked)
    return gmle_stats_add_checked(st, b->x, b->dtype, b->n_rows, b->n_cols,
                                  b->stride, b->labels, b->weights);
  return gmle_stats_add(st, b->x, b->dtype, b->n_rows, b->stride, b->labels,
                        b->weights);
}

/* Add b to st and check the invariants; returns the status. */
static gmle_status add_and_check(gmle_stats *st, const batch *b,
                                 int huge_seen) {
  const size_t D = st->dim, C = st->n_classes;
  const unsigned ok = allowed(b, D, C, huge_seen);
  snap before = take(st);
  const gmle_status s = add(st, b);
  FZ_REQUIRE((ok >> s) & 1, "status %s (allowed set 0x%x)", gmle_status_name(s),
             ok);
  if (s != GMLE_OK || b->n_rows == 0) {
    FZ_REQUIRE(s == GMLE_OK || gmle_context_error(st->ctx)[0] != '\0',
               "%s without a message", gmle_status_name(s));
    FZ_REQUIRE(all_same(st, &before), "a %s call changed the statistics",
               s == GMLE_OK ? "no-op" : gmle_status_name(s));
    drop(&before);
    return s;
  }
  FZ_REQUIRE(st->n_batches == before.n_batches + 1, "batch count %llu",
             (unsigned long long)st->n_batches);
  for (size_t c = 0; c < C; c++) {
    uint64_t rows = 0;
    long double w = 0;
    for (size_t r = 0; r < b->n_rows; r++)
      if ((b->labels ? (size_t)b->labels[r] : 0) == c) {
        rows++;
        w += b->weights ? b->weights[r] : 1;
      }
    if (rows == 0) {
      FZ_REQUIRE(class_same(st, &before, c),
                 "class %zu (not in the batch) "
                 "changed",
                 c);
      continue;
    }
    FZ_REQUIRE(st->rows[c] == before.rows[c] + rows,
               "class %zu: %llu rows after adding %llu to %llu", c,
               (unsigned long long)st->rows[c], (unsigned long long)rows,
               (unsigned long long)before.rows[c]);
    const long double want = (long double)before.weight[c] + w;
    FZ_REQUIRE(
        fabsl(st->weight[c] - want) <= 4 * (rows + 1) * DBL_EPSILON * want,
        "class %zu: weight %.17g, expected %.17Lg", c, st->weight[c], want);
    FZ_REQUIRE(st->has_shift[c] == 1 &&
                   (!before.has_shift[c] ||
                    !memcmp(st->shift + c * D, before.shift + c * D,
                            D * sizeof(double))),
               "class %zu: the shift changed or is missing", c);
  }
  drop(&before);
  return s;
}

/* ------------------------------------------------------------ reference */

/* The rows accepted so far (values, class, weight). */
typedef struct accepted {
  size_t n, cap, D;
  double *x, *w;
  size_t *c;
} accepted;

static void keep(accepted *a, const batch *b) {
  for (size_t r = 0; r < b->n_rows; r++) {
    if (a->n == a->cap) {
      a->cap = a->cap ? 2 * a->cap : 256;
      a->x = realloc(a->x, a->cap * a->D * sizeof(double));
      a->w = realloc(a->w, a->cap * sizeof(double));
      a->c = realloc(a->c, a->cap * sizeof(size_t));
      FZ_REQUIRE(a->x && a->w && a->c, "out of memory in the harness");
    }
    memcpy(a->x + a->n * a->D, b->val + r * a->D, a->D * sizeof(double));
    a->w[a->n] = b->weights ? b->weights[r] : 1;
    a->c[a->n] = b->labels ? (size_t)b->labels[r] : 0;
    a->n++;
  }
}

/* Class c against a two-pass long-double reference over the rows kept.
 * The reference works on x - k (k: the class's shift; any point would do,
 * and this one keeps the reference's own rounding far below the
 * tolerance when the spread is tiny next to the values). */
static void check_class(const gmle_stats *st, const accepted *a, size_t c) {
  const size_t D = st->dim;
  const double eps = DBL_EPSILON;
  const double *k = st->shift + c * D;
  long double W = 0;
  uint64_t N = 0;
  long double *m = calloc(D, sizeof *m); /* mean - k */
  double *mean = malloc(D * sizeof *mean);
  FZ_REQUIRE(m && mean, "out of memory in the harness");
  double R = 0; /* the spread around the shift */
  for (size_t i = 0; i < a->n; i++) {
    if (a->c[i] != c)
      continue;
    N++;
    W += a->w[i];
    for (size_t j = 0; j < D; j++) {
      const long double d = (long double)a->x[i * D + j] - k[j];
      m[j] += a->w[i] * d;
      R = fmax(R, fabs((double)d));
    }
  }
  FZ_REQUIRE(st->rows[c] == N, "class %zu: %llu rows, %llu accepted", c,
             (unsigned long long)st->rows[c], (unsigned long long)N);
  FZ_REQUIRE(fabsl(st->weight[c] - W) <= 4 * N * eps * W,
             "class %zu: weight %.17g, reference %.17Lg", c, st->weight[c], W);
  gmle_status s = gmle_stats_mean(st, c, mean);
  if (W == 0) {
    FZ_REQUIRE(s == GMLE_E_EMPTY, "class %zu: no weight, mean gives %s", c,
               gmle_status_name(s));
    free(m);
    free(mean);
    return;
  }
  FZ_REQUIRE(s == GMLE_OK, "class %zu: mean: %s", c, gmle_status_name(s));
  const double n = (double)N;
  for (size_t j = 0; j < D; j++) {
    m[j] /= W;
    const long double mu = k[j] + m[j];
    const double tol = 4 * eps * fabs(k[j]) + 8 * n * eps * R + DBL_MIN;
    FZ_REQUIRE(fabsl(mean[j] - mu) <= tol,
               "class %zu: mean[%zu] %.17g, reference %.17Lg (tolerance %g)", c,
               j, mean[j], mu, tol);
  }
  /* Covariance from the shifted sums: G/n - (s/n)(s/n)^T. */
  const int diag = st->mode == GMLE_STATS_DIAG;
  const double *sum = st->sum + c * D, *G = st->gram + c * st->gram_len;
  const double w = st->weight[c];
  for (size_t p = 0; p < D; p++)
    for (size_t q = 0; q <= p; q++) {
      if (diag && q != p)
        continue;
      long double ref = 0;
      for (size_t i = 0; i < a->n; i++)
        if (a->c[i] == c)
          ref += a->w[i] * (((long double)a->x[i * D + p] - k[p]) - m[p]) *
                 (((long double)a->x[i * D + q] - k[q]) - m[q]);
      ref /= W;
      const double g = diag ? G[p] : G[p * D + q];
      const double got = g / w - (sum[p] / w) * (sum[q] / w);
      /* Unweighted float32 rows may be multiplied in float32 (host/gram.c:
       * d = fl32(x - k), products summed in float32 over runs of 8 rows
       * and tiles of at most 256, tiles in float64): each row's error is
       * at most ~(2 + 8 + 256) u32 d_p d_q <= 266 u32 R^2, so the average
       * is off by at most that much (300 with slack). */
      const double f32 = st->saw_f32 ? 300 * 0x1p-24 * R * R : 0;
      const double tol = 16 * n * eps * R * R + f32 + DBL_MIN;
      FZ_REQUIRE(fabsl(got - ref) <= tol,
                 "class %zu: covariance[%zu][%zu] %.17g, reference %.17Lg "
                 "(tolerance %g)",
                 c, p, q, got, ref, tol);
    }
  free(m);
  free(mean);
}

/* ----------------------------------------------------------------- main */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  gmle_context *ctx = fz_context();
  input in = {data, size};
  const size_t D = 1 + byte(&in) % 8;
  const unsigned h = byte(&in);
  const size_t C = 1 + h % 4;
  const gmle_stats_mode mode = (h >> 2) & 1 ? GMLE_STATS_DIAG : GMLE_STATS_FULL;
  const int via_merge = (h >> 3) & 1;
  gmle_stats *st = NULL;
  FZ_REQUIRE(gmle_stats_create_mode(ctx, D, C, mode, &st) == GMLE_OK,
             "create %zu x %zu", D, C);
  accepted acc = {0, 0, D, NULL, NULL, NULL};
  int huge_seen = 0;
  for (int k = 0; k < MAX_BATCHES && in.n > 0; k++) {
    batch b = decode(&in, D, C);
    /* Every other batch through a second accumulator and a merge. */
    if (via_merge && k % 2) {
      gmle_stats *part = NULL;
      FZ_REQUIRE(gmle_stats_create_mode(ctx, D, C, mode, &part) == GMLE_OK,
                 "create");
      if (add_and_check(part, &b, 0) == GMLE_OK && b.n_rows) {
        snap before = take(st);
        gmle_status s = gmle_stats_merge(st, part);
        FZ_REQUIRE(s == GMLE_OK ||
                       (s == GMLE_E_OVERFLOW && (huge_seen || b.huge)),
                   "merge: %s", gmle_status_name(s));
        if (s == GMLE_OK) {
          keep(&acc, &b);
          huge_seen |= b.huge;
        } else {
          FZ_REQUIRE(all_same(st, &before), "a failed merge changed dst");
        }
        drop(&before);
      }
      gmle_stats_free(part);
    } else if (add_and_check(st, &b, huge_seen) == GMLE_OK && b.n_rows) {
      keep(&acc, &b);
      huge_seen |= b.huge;
    }
    batch_free(&b);
  }
  for (size_t c = 0; c < C; c++)
    check_class(st, &acc, c);
  gmle_fit_options opt;
  gmle_fit_options_init(&opt);
  opt.cov = mode == GMLE_STATS_DIAG ? GMLE_COV_DIAG : GMLE_COV_FULL;
  gmle_model *m = NULL;
  if (gmle_fit(st, &opt, &m) == GMLE_OK)
    fz_check_model(m);
  gmle_model_free(m);
  gmle_stats_free(st);
  free(acc.x);
  free(acc.w);
  free(acc.c);
  return 0;
}
