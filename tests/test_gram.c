/* test_gram.c -- the CPU backend's per-class shifted Gram kernel
 * (host/gram*.c), compiled into this suite and called directly, against a
 * long double reference of the same shifted sums. */
#include "check.h"
#include "testutil.h"

#include "../host/gram_kern.h"
#include "../host/isa.h"
#include "internal.h"
#include "testing.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define GUARD 64 /* doubles after every output array, checked untouched */

/* ---------------------------------------------------------------------- */
/* Inputs                                                                  */
/* ---------------------------------------------------------------------- */

enum { W_NONE, W_RANDOM, W_SOME_ZERO, W_ALL_ZERO };
enum { L_NONE, L_RANDOM, L_SORTED };

typedef struct cfg {
  size_t n, dim, n_classes, stride;
  gmle_dtype dtype;
  int labels;  /* L_* */
  int weights; /* W_* */
  int diag;
  int threads;
  int f32p;             /* gmle__partial.f32_products */
  double offset, scale; /* x = offset + 3*class + scale * N(0,1) */
  uint64_t seed;
} cfg;

typedef struct input {
  void *x;
  int32_t *labels;
  double *weights;
  double *shift; /* [C*D] */
} input;

static void input_free(input *in) {
  free(in->x);
  free(in->labels);
  free(in->weights);
  free(in->shift);
  memset(in, 0, sizeof *in);
}

static int input_make(const cfg *c, input *in) {
  tu_rng r;
  tu_seed(&r, c->seed);
  memset(in, 0, sizeof *in);
  const size_t n = c->n, d = c->dim, C = c->n_classes,
               isz = c->dtype == GMLE_F32 ? 4 : 8;
  in->x = malloc((n ? n : 1) * c->stride * isz);
  in->shift = malloc(C * d * sizeof(double));
  if (c->labels != L_NONE)
    in->labels = malloc((n ? n : 1) * sizeof(int32_t));
  if (c->weights != W_NONE)
    in->weights = malloc((n ? n : 1) * sizeof(double));
  if (!in->x || !in->shift || (c->labels != L_NONE && !in->labels) ||
      (c->weights != W_NONE && !in->weights)) {
    input_free(in);
    return -1;
  }
  for (size_t i = 0; i < n; i++) {
    size_t k = 0;
    if (c->labels == L_RANDOM)
      k = tu_below(&r, C);
    else if (c->labels == L_SORTED)
      k = i * C / n;
    if (in->labels)
      in->labels[i] = (int32_t)k;
    if (in->weights) {
      double w = 0.25 + 2.0 * tu_uniform(&r);
      if (c->weights == W_ALL_ZERO || (c->weights == W_SOME_ZERO && i % 3 == 1))
        w = 0.0;
      in->weights[i] = w;
    }
    for (size_t j = 0; j < c->stride; j++) {
      /* padding is NaN: it must never be read */
      double v = j < d ? c->offset + 3.0 * (double)k + (double)j * 0.01 +
                             c->scale * tu_normal(&r)
                       : NAN;
      if (c->dtype == GMLE_F32)
        ((float *)in->x)[i * c->stride + j] = (float)v;
      else
        ((double *)in->x)[i * c->stride + j] = v;
    }
  }
  /* shifts near the class means, representable in the input precision */
  for (size_t k = 0; k < C; k++)
    for (size_t j = 0; j < d; j++) {
      double v = c->offset + 3.0 * (double)k + (double)j * 0.01 +
                 0.1 * c->scale * tu_normal(&r);
      in->shift[k * d + j] = c->dtype == GMLE_F32 ? (double)(float)v : v;
    }
  return 0;
}

/* ---------------------------------------------------------------------- */
/* Outputs                                                                 */
/* ---------------------------------------------------------------------- */

typedef struct output {
  gmle__partial p;
} output;

static double *guarded(size_t n) {
  double *p = calloc(n + GUARD, sizeof(double));
  return p;
}

static int output_make(const cfg *c, const input *in, output *o) {
  memset(o, 0, sizeof *o);
  const size_t C = c->n_classes, d = c->dim;
  o->p.dim = d;
  o->p.n_classes = C;
  o->p.mode = c->diag ? GMLE_STATS_DIAG : GMLE_STATS_FULL;
  o->p.gram_len = c->diag ? d : d * d;
  o->p.f32_products = c->f32p;
  o->p.shift = in->shift;
  o->p.weight = guarded(C);
  o->p.rows = calloc(C + GUARD, sizeof(uint64_t));
  o->p.sum = guarded(C * d);
  o->p.gram = guarded(C * o->p.gram_len);
  return o->p.weight && o->p.rows && o->p.sum && o->p.gram ? 0 : -1;
}

static void output_free(output *o) {
  free(o->p.weight);
  free(o->p.rows);
  free(o->p.sum);
  free(o->p.gram);
  memset(o, 0, sizeof *o);
}

static int guards_clean(const output *o) {
  const size_t C = o->p.n_classes, d = o->p.dim, gl = o->p.gram_len;
  for (size_t i = 0; i < GUARD; i++)
    if (o->p.weight[C + i] != 0 || o->p.rows[C + i] != 0 ||
        o->p.sum[C * d + i] != 0 || o->p.gram[C * gl + i] != 0)
      return 0;
  return 1;
}

static int all_zero(const output *o) {
  const size_t C = o->p.n_classes, d = o->p.dim, gl = o->p.gram_len;
  for (size_t i = 0; i < C; i++)
    if (o->p.weight[i] != 0 || o->p.rows[i] != 0)
      return 0;
  for (size_t i = 0; i < C * d; i++)
    if (o->p.sum[i] != 0)
      return 0;
  for (size_t i = 0; i < C * gl; i++)
    if (o->p.gram[i] != 0)
      return 0;
  return 1;
}

static int outputs_bit_equal(const output *a, const output *b) {
  const size_t C = a->p.n_classes, d = a->p.dim, gl = a->p.gram_len;
  return memcmp(a->p.weight, b->p.weight, C * sizeof(double)) == 0 &&
         memcmp(a->p.rows, b->p.rows, C * sizeof(uint64_t)) == 0 &&
         memcmp(a->p.sum, b->p.sum, C * d * sizeof(double)) == 0 &&
         memcmp(a->p.gram, b->p.gram, C * gl * sizeof(double)) == 0;
}

static gmle_status run_cfg(const cfg *c, const input *in, output *o) {
  gmle_context ctx;
  memset(&ctx, 0, sizeof ctx);
  ctx.n_threads = c->threads;
  gmle__batch b = {.x = in->x,
                   .dtype = c->dtype,
                   .n_rows = c->n,
                   .row_stride = c->stride,
                   .dim = c->dim,
                   .labels = in->labels,
                   .weights = in->weights};
  return gmle__cpu_accumulate(&ctx, &b, &o->p);
}

/* ---------------------------------------------------------------------- */
/* Reference: the same shifted sums, d in double, sums in long double,     */
/* with the sums of |terms| as the scale of each element's error.          */
/* ---------------------------------------------------------------------- */

static double worst; /* largest scaled error seen by check_against_ref */

static int check_against_ref2(const cfg *c, const input *in, const output *o,
                              double tol, double tol_gram) {
  const size_t n = c->n, d = c->dim, C = c->n_classes;
  const size_t gl = c->diag ? d : d * d;
  /* the sums in long double; the sums of |terms| (scales) in double */
  long double *w = calloc(C, sizeof *w), *s = calloc(C * d, sizeof *s),
              *g = calloc(C * gl, sizeof *g);
  double *sa = calloc(C * d, sizeof *sa), *ga = calloc(C * gl, sizeof *ga);
  uint64_t *rows = calloc(C, sizeof *rows);
  double *dv = malloc(d * sizeof *dv);
  int ok = w && s && sa && g && ga && rows && dv;
  for (size_t i = 0; ok && i < n; i++) {
    const size_t k = in->labels ? (size_t)in->labels[i] : 0;
    const double wt = in->weights ? in->weights[i] : 1.0;
    for (size_t j = 0; j < d; j++)
      dv[j] = tu_get(in->x, c->dtype, c->stride, i, j) - in->shift[k * d + j];
    w[k] += wt;
    rows[k]++;
    for (size_t a = 0; a < d; a++) {
      const long double t = (long double)wt * dv[a];
      const double ta = fabs(wt * dv[a]);
      s[k * d + a] += t;
      sa[k * d + a] += ta;
      if (c->diag) {
        g[k * d + a] += t * dv[a];
        ga[k * d + a] += ta * fabs(dv[a]);
      } else {
        long double *gr = g + k * gl + a * d;
        double *gar = ga + k * gl + a * d;
        for (size_t b = 0; b <= a; b++) {
          gr[b] += t * dv[b];
          gar[b] += ta * fabs(dv[b]);
        }
      }
    }
  }
  int bad = !ok;
  for (size_t k = 0; ok && k < C; k++) {
    if (o->p.rows[k] != rows[k]) {
      printf("  class %zu: rows %llu, expected %llu\n", k,
             (unsigned long long)o->p.rows[k], (unsigned long long)rows[k]);
      bad = 1;
    }
    double e = fabs(o->p.weight[k] - (double)w[k]);
    if (!(e <= tol * fabs((double)w[k]))) {
      printf("  class %zu: weight %.17g, expected %.17Lg\n", k, o->p.weight[k],
             w[k]);
      bad = 1;
    }
    for (size_t a = 0; a < d; a++) {
      double err = fabs(o->p.sum[k * d + a] - (double)s[k * d + a]);
      double sc = (double)sa[k * d + a];
      if (sc > 0 && err / sc > worst)
        worst = err / sc;
      if (!(err <= tol * sc)) {
        if (bad < 5)
          printf("  class %zu: sum[%zu] %.17g, expected %.17Lg (scale %g)\n", k,
                 a, o->p.sum[k * d + a], s[k * d + a], sc);
        bad++;
      }
    }
    for (size_t a = 0; a < d; a++)
      for (size_t b = 0; b < (c->diag ? 1 : d); b++) {
        const size_t e_ix = c->diag ? k * d + a : k * gl + a * d + b;
        const double got = o->p.gram[e_ix];
        if (!c->diag && b > a) { /* upper part: never written */
          if (got != 0) {
            if (bad < 5)
              printf("  class %zu: upper (%zu,%zu) written: %g\n", k, a, b,
                     got);
            bad++;
          }
          continue;
        }
        const double err = fabs(got - (double)g[e_ix]);
        const double sc = (double)ga[e_ix];
        if (sc > 0 && err / sc > worst)
          worst = err / sc;
        if (!(err <= tol_gram * sc)) {
          if (bad < 5)
            printf("  class %zu: gram(%zu,%zu) %.17g, expected %.17Lg\n", k, a,
                   b, got, g[e_ix]);
          bad++;
        }
      }
  }
  free(w);
  free(s);
  free(sa);
  free(g);
  free(ga);
  free(rows);
  free(dv);
  return bad == 0;
}

static int check_against_ref(const cfg *c, const input *in, const output *o,
                             double tol) {
  return check_against_ref2(c, in, o, tol, tol);
}

/* The bound on a Gram element's error with float32 products (each element
 * a float32 sum over at most `tile` rows of products of values rounded
 * once to float32), relative to the sum of |terms|. */
static double f32_gram_bound(size_t tile) {
  return (double)(tile + 3) * 0x1p-24;
}

static const char *cfg_text(const cfg *c) {
  static char buf[256];
  snprintf(buf, sizeof buf,
           "n=%zu D=%zu C=%zu stride=%zu %s labels=%d weights=%d %s "
           "threads=%d%s",
           c->n, c->dim, c->n_classes, c->stride,
           c->dtype == GMLE_F32 ? "f32" : "f64", c->labels, c->weights,
           c->diag ? "DIAG" : "FULL", c->threads,
           c->f32p ? " f32-products" : "");
  return buf;
}

/* Run a configuration twice: both must match the reference and each other
 * bit for bit, and nothing past the arrays may be written. */
static int check_cfg(const cfg *c) {
  input in;
  output o1, o2;
  if (input_make(c, &in) != 0)
    return 0;
  int ok = output_make(c, &in, &o1) == 0 && output_make(c, &in, &o2) == 0;
  ok = ok && run_cfg(c, &in, &o1) == GMLE_OK && run_cfg(c, &in, &o2) == GMLE_OK;
  const int f32p =
      c->f32p && c->dtype == GMLE_F32 && c->weights == W_NONE && !c->diag;
  if (ok && !check_against_ref2(c, &in, &o1, 1e-12,
                                f32p ? f32_gram_bound(256) : 1e-12)) {
    printf("  mismatch with the reference: %s\n", cfg_text(c));
    ok = 0;
  }
  if (ok && !outputs_bit_equal(&o1, &o2)) {
    printf("  two runs differ: %s\n", cfg_text(c));
    ok = 0;
  }
  if (ok && (!guards_clean(&o1) || !guards_clean(&o2))) {
    printf("  wrote past the output arrays: %s\n", cfg_text(c));
    ok = 0;
  }
  output_free(&o1);
  output_free(&o2);
  input_free(&in);
  return ok;
}

static void set_tuning(int isa, size_t tile, size_t chunk, size_t budget,
                       size_t min_work) {
  gmle__gram_tuning t = {.tile_rows = tile,
                         .chunk_rows = chunk,
                         .private_budget = budget,
                         .min_work = min_work};
  gmle__gram_set_tuning(&t);
  gmle__cpu_isa_override(isa);
}

static cfg base_cfg(size_t n, size_t d, size_t C) {
  cfg c = {.n = n,
           .dim = d,
           .n_classes = C,
           .stride = d,
           .dtype = GMLE_F64,
           .labels = C > 1 ? L_RANDOM : L_NONE,
           .weights = W_NONE,
           .diag = 0,
           .threads = 1,
           .offset = 5.0,
           .scale = 1.0,
           .seed = 1};
  return c;
}

/* ---------------------------------------------------------------------- */
/* Tests                                                                   */
/* ---------------------------------------------------------------------- */

static const size_t dims[] = {1, 2, 3, 7, 13, 16, 17, 40, 63, 64, 65, 128, 200};
#define N_DIMS (sizeof dims / sizeof dims[0])

/* Every dimension, both precisions and modes, weighted, labelled, padded
 * rows, small tiles and chunks and two threads, on every kernel set this
 * CPU has. */
static void sweep_dims(int isa) {
  set_tuning(isa, 16, 333, 0, 1);
  for (size_t di = 0; di < N_DIMS; di++)
    for (int f = 0; f < 2; f++)
      for (int diag = 0; diag < 2; diag++) {
        cfg c = base_cfg(700, dims[di], 3);
        c.stride = dims[di] + 3;
        c.dtype = f ? GMLE_F32 : GMLE_F64;
        c.weights = W_RANDOM;
        c.diag = diag;
        c.threads = 2;
        c.seed = 100 + di * 4 + (size_t)f * 2 + (size_t)diag;
        CHECK_MSG(check_cfg(&c), "%s (isa %s)", cfg_text(&c),
                  gmle__gram_isa_name());
      }
  set_tuning(0, 0, 0, 0, 0);
}

/* Labelled rows with few classes are routed through per-class staging
 * tiles (or per-class sums, DIAG); the sorted-gather routing (used for
 * many classes) must agree. */
TEST(gram_gather_routing_few_classes) {
  static const size_t ds[] = {1, 7, 13, 40, 65};
  for (size_t di = 0; di < 5; di++)
    for (int w = 0; w < 4; w++) {
      gmle__gram_tuning t = {.min_work = 1, .no_bucket = 1};
      if (di % 2)
        t.chunk_rows = 500;
      gmle__gram_set_tuning(&t);
      cfg c = base_cfg(20011, ds[di], 4);
      c.dtype = w % 2 ? GMLE_F64 : GMLE_F32;
      c.weights = w % 2 ? W_RANDOM : W_NONE;
      c.diag = w >= 2;
      c.stride = ds[di] + 2;
      c.threads = 2;
      c.seed = 500 + di * 4 + (size_t)w;
      CHECK_MSG(check_cfg(&c), "%s", cfg_text(&c));
    }
  set_tuning(0, 0, 0, 0, 0);
}

TEST(gram_all_dims_match_reference_avx512) { sweep_dims(3); }
TEST(gram_all_dims_match_reference_avx2) { sweep_dims(2); }
TEST(gram_all_dims_match_reference_generic) { sweep_dims(1); }

/* Row counts 0, 1, 5, 1000; classes 1, 3, 1000; labels and weights in
 * every form; one and two threads; default tuning. */
TEST(gram_small_batches_all_options) {
  static const size_t ns[] = {0, 1, 5, 1000};
  static const size_t cs[] = {1, 3, 1000};
  static const size_t ds[] = {1, 7, 17, 40};
  set_tuning(0, 0, 0, 0, 1);
  uint64_t seed = 1000;
  for (size_t ni = 0; ni < 4; ni++)
    for (size_t ci = 0; ci < 3; ci++)
      for (size_t di = 0; di < 4; di++)
        for (int lab = 0; lab < 3; lab++)
          for (int wm = 0; wm < 4; wm++)
            for (int diag = 0; diag < 2; diag++) {
              cfg c = base_cfg(ns[ni], ds[di], cs[ci]);
              c.labels = cs[ci] == 1 && lab != L_NONE ? L_SORTED : lab;
              c.weights = wm;
              c.diag = diag;
              c.dtype = (seed & 1) ? GMLE_F32 : GMLE_F64;
              c.stride = ds[di] + (seed % 3);
              c.threads = 1 + (int)(seed % 2);
              c.seed = seed++;
              CHECK_MSG(check_cfg(&c), "%s", cfg_text(&c));
            }
  set_tuning(0, 0, 0, 0, 0);
}

/* 100003 rows (20011 when wide) with the default tuning: several tiles per
 * class, chunks and both partitions (row ranges, and classes x column
 * panels). */
static void large(size_t d, size_t C, gmle_dtype dt, int weights, int diag,
                  int threads, size_t budget) {
  set_tuning(0, 0, 0, budget, 0);
  cfg c = base_cfg(d > 100 ? 6007 : 100003, d, C);
  c.dtype = dt;
  c.stride = d + 1;
  c.weights = weights;
  c.diag = diag;
  c.threads = threads;
  c.seed = d * 7919 + C * 31 + (size_t)threads;
  CHECK_MSG(check_cfg(&c), "%s budget=%zu", cfg_text(&c), budget);
  set_tuning(0, 0, 0, 0, 0);
}

TEST(gram_large_row_partition) {
  large(13, 1, GMLE_F32, W_NONE, 0, 2, 0);
  large(40, 3, GMLE_F64, W_RANDOM, 0, 2, 0);
  large(40, 1000, GMLE_F32, W_NONE, 0, 2, 0);
  large(65, 3, GMLE_F32, W_SOME_ZERO, 0, 2, 0);
  large(200, 1, GMLE_F64, W_NONE, 0, 2, 0);
  large(40, 1000, GMLE_F64, W_RANDOM, 1, 2, 0);
  large(40, 1000, GMLE_F32, W_RANDOM, 0, 1, 0);
  large(13, 1000, GMLE_F64, W_RANDOM, 0, 2, 0); /* small staging tiles */
}

TEST(gram_large_output_partition) {
  /* a 1-byte budget forces the (class, column panel) partition */
  large(13, 1, GMLE_F32, W_NONE, 0, 2, 1);
  large(40, 3, GMLE_F64, W_RANDOM, 0, 2, 1);
  large(40, 1000, GMLE_F32, W_NONE, 0, 2, 1);
  large(200, 1, GMLE_F64, W_RANDOM, 0, 2, 1);
  large(128, 3, GMLE_F32, W_NONE, 0, 2, 1);
  large(40, 1000, GMLE_F64, W_RANDOM, 1, 2, 1);
}

/* Same input, same thread count: bit-identical across runs, for every
 * kernel set; and a different thread count still within the tolerance. */
TEST(gram_deterministic_per_thread_count) {
  for (int isa = 1; isa <= 3; isa++)
    for (int t = 1; t <= 3; t++) {
      set_tuning(isa, 0, 2000, 0, 1);
      cfg c = base_cfg(20011, 17, 5);
      c.dtype = GMLE_F64;
      c.weights = W_RANDOM;
      c.threads = t;
      CHECK_MSG(check_cfg(&c), "%s", cfg_text(&c));
    }
  set_tuning(0, 0, 0, 0, 0);
}

/* Sorted labels (long runs of one class) and random labels give the same
 * statistics within the tolerance. */
TEST(gram_sorted_labels) {
  cfg c = base_cfg(30000, 40, 10);
  c.labels = L_SORTED;
  c.threads = 2;
  c.dtype = GMLE_F32;
  CHECK(check_cfg(&c));
}

/* Float32 products (gmle__partial.f32_products): every dimension, every
 * routing (one class, staging buckets, sorted gathers, the output
 * partition), sums exact to 1e-12 and Gram elements within the float32
 * bound; weighted, DIAG or float64 batches ignore the flag (1e-12). The
 * worst Gram error seen is printed (BENCHMARKS.md). */
TEST(gram_f32_products_within_float32_bound) {
  double worst32 = 0.0;
  for (size_t di = 0; di < N_DIMS; di++)
    for (int route = 0; route < 4; route++) {
      gmle__gram_tuning t = {.min_work = 1,
                             .tile_rows = route == 3 ? 0 : 24,
                             .no_bucket = route == 2,
                             .private_budget = route == 3 ? 1 : 0};
      gmle__gram_set_tuning(&t);
      cfg c = base_cfg(route == 3 ? 3001 : 1500, dims[di], route ? 5 : 1);
      c.labels = route ? L_RANDOM : L_NONE;
      c.dtype = GMLE_F32;
      c.stride = dims[di] + (size_t)route % 2;
      c.threads = 2;
      c.offset = route % 2 ? 1e4 : 0.5;
      c.f32p = 1;
      c.seed = 700 + di * 4 + (size_t)route;
      worst = 0.0;
      CHECK_MSG(check_cfg(&c), "%s", cfg_text(&c));
      if (worst > worst32)
        worst32 = worst;
    }
  printf("  float32 products: worst Gram error %.3g of the sum of |terms| "
         "(bound %.3g)\n",
         worst32, f32_gram_bound(256));
  /* the flag is ignored where float32 products are not allowed */
  for (int k = 0; k < 3; k++) {
    set_tuning(0, 0, 0, 0, 1);
    cfg c = base_cfg(2000, 40, 3);
    c.dtype = k == 2 ? GMLE_F64 : GMLE_F32;
    c.weights = k == 0 ? W_RANDOM : W_NONE;
    c.diag = k == 1;
    c.threads = 2;
    c.f32p = 1;
    c.seed = 900 + (size_t)k;
    CHECK_MSG(check_cfg(&c), "%s", cfg_text(&c)); /* at 1e-12 */
  }
  set_tuning(0, 0, 0, 0, 0);
}

/* Every allocation failure returns GMLE_E_OUT_OF_MEMORY and leaves the
 * output untouched. */
TEST(gram_out_of_memory_changes_nothing) {
  for (int mode = 0; mode < 2; mode++) {
    set_tuning(0, 0, 0, mode ? 1 : 0, 1);
    cfg c = base_cfg(5000, 20, 4);
    c.weights = W_RANDOM;
    c.threads = 2;
    input in;
    output o;
    CHECK(input_make(&c, &in) == 0);
    CHECK(output_make(&c, &in, &o) == 0);
    int succeeded = 0;
    for (long k = 1; k < 100 && !succeeded; k++) {
      gmle__test_fail_alloc_after(k);
      gmle_status s = run_cfg(&c, &in, &o);
      gmle__test_fail_alloc_after(0);
      if (s == GMLE_OK) {
        succeeded = 1;
        CHECK(check_against_ref(&c, &in, &o, 1e-12));
      } else {
        CHECK_STATUS(s, GMLE_E_OUT_OF_MEMORY);
        CHECK(all_zero(&o));
      }
    }
    CHECK(succeeded);
    output_free(&o);
    input_free(&in);
  }
  set_tuning(0, 0, 0, 0, 0);
}

/* Mean and covariance finished from the partial (as the core does) against
 * the two-pass long double reference of testutil. */
static void finish_check(const cfg *c, const input *in, const output *o,
                         double tol_mean, double tol_cov, double *em,
                         double *ec) {
  tu_ref ref;
  const size_t d = c->dim;
  CHECK(tu_ref_compute(&ref, in->x, c->dtype, c->n, c->stride, d, 1, NULL,
                       NULL) == 0);
  double *mu = malloc(d * sizeof *mu), *mref = malloc(d * sizeof *mref),
         *cov = malloc(d * d * sizeof *cov),
         *cref = malloc(d * d * sizeof *cref);
  const double W = o->p.weight[0];
  for (size_t i = 0; i < d; i++)
    mu[i] = in->shift[i] + o->p.sum[i] / W;
  for (size_t i = 0; i < d; i++)
    for (size_t j = 0; j <= i; j++) {
      double v =
          o->p.gram[i * d + j] / W - (o->p.sum[i] / W) * (o->p.sum[j] / W);
      cov[i * d + j] = cov[j * d + i] = v;
    }
  tu_ref_mean(&ref, 0, mref);
  tu_ref_cov(&ref, GMLE_COV_FULL, 0, cref);
  *em = tu_max_rel_err(mu, mref, NULL, d);
  *ec = tu_rel_frobenius(cov, cref, d * d);
  CHECK_MSG(*em <= tol_mean, "mean rel err %g", *em);
  CHECK_MSG(*ec <= tol_cov, "cov rel Frobenius err %g", *ec);
  free(mu);
  free(mref);
  free(cov);
  free(cref);
  tu_ref_free(&ref);
}

TEST(gram_f64_two_million_rows_within_1e12) {
  cfg c = base_cfg(2000000, 6, 1);
  c.offset = 100.0;
  c.threads = 2;
  input in;
  output o;
  CHECK(input_make(&c, &in) == 0);
  CHECK(output_make(&c, &in, &o) == 0);
  CHECK_STATUS(run_cfg(&c, &in, &o), GMLE_OK);
  double em, ec;
  finish_check(&c, &in, &o, 1e-12, 1e-12, &em, &ec);
  printf("  f64, 2e6 rows: mean rel err %.2g, cov rel err %.2g\n", em, ec);
  output_free(&o);
  input_free(&in);
}

TEST(gram_f32_mean_over_std_1e4) {
  for (int f32p = 0; f32p < 2; f32p++)
    for (size_t d = 5; d <= 40; d += 35) {
      cfg c = base_cfg(1000000, d, 1);
      c.dtype = GMLE_F32;
      c.offset = 1e4;
      c.scale = 1.0;
      c.threads = 2;
      c.f32p = f32p;
      input in;
      output o;
      CHECK(input_make(&c, &in) == 0);
      CHECK(output_make(&c, &in, &o) == 0);
      CHECK_STATUS(run_cfg(&c, &in, &o), GMLE_OK);
      double em, ec;
      finish_check(&c, &in, &o, 1e-7, 1e-6, &em, &ec);
      printf("  f32, |mean|/std 1e4, D=%zu, %s products: mean rel err %.2g, "
             "cov rel err %.2g\n",
             d, f32p ? "float32" : "float64", em, ec);
      output_free(&o);
      input_free(&in);
    }
}

int main(int argc, char **argv) {
  CHECK_INIT(argc, argv);
  printf("  kernels: %s\n", gmle__gram_isa_name());
  RUN(gram_all_dims_match_reference_avx512);
  RUN(gram_all_dims_match_reference_avx2);
  RUN(gram_all_dims_match_reference_generic);
  RUN(gram_small_batches_all_options);
  RUN(gram_gather_routing_few_classes);
  RUN(gram_large_row_partition);
  RUN(gram_large_output_partition);
  RUN(gram_deterministic_per_thread_count);
  RUN(gram_sorted_labels);
  RUN(gram_f32_products_within_float32_bound);
  RUN(gram_out_of_memory_changes_nothing);
  RUN(gram_f64_two_million_rows_within_1e12);
  RUN(gram_f32_mean_over_std_1e4);
  printf("  largest error / sum of |terms|: %.3g\n", worst);
  return CHECK_DONE();
}
