/* bench_gram.c -- throughput of the CPU per-class Gram kernel
 * (gmle__cpu_accumulate), in millions of rows per second, best of several
 * runs. libgmle hides the kernel's symbols, so they are compiled in; from
 * the source root:
 *
 *   gcc -std=c11 -O2 -fopenmp -D_POSIX_C_SOURCE=200809L -Iinclude -Isrc \
 *       -Ihost bench/bench_gram.c host/gram*.c host/isa.c src/alloc.c
 * src/error.c \ -lm -o bench_gram
 *
 * Usage: bench_gram table [reps [rows]]
 *        bench_gram N D C(1|10|1000) f32|f64 full|diag threads reps [weighted]
 * Environment: GRAM_TILE, GRAM_CHUNK, GRAM_BUDGET, GRAM_NOBUCKET (gram_kern.h's
 * tuning); GRAM_ISA (gmle__cpu_isa_override, host/isa.h); GRAM_F32=1 allows
 * float32 products (gmle__partial.f32_products); CPUTIME=1 times process CPU
 * instead of wall-clock.
 */
#include "gram_kern.h"
#include "internal.h"
#include "isa.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
  struct timespec t;
  clock_gettime(getenv("CPUTIME") ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC,
                &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static uint64_t rng = 88172645463325252ull;
static uint64_t next(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}
static double unif(void) { return (double)(next() >> 11) * 0x1p-53; }

typedef struct data {
  size_t n, d;
  float *xf;
  double *xd;
  int32_t *labels[3]; /* C = 1 (NULL), 10, 1000 */
  double *weights;
} data;

static int make(data *g, size_t n, size_t d, int f64) {
  memset(g, 0, sizeof *g);
  g->n = n;
  g->d = d;
  if (f64)
    g->xd = malloc(n * d * sizeof(double));
  else
    g->xf = malloc(n * d * sizeof(float));
  g->labels[1] = malloc(n * sizeof(int32_t));
  g->labels[2] = malloc(n * sizeof(int32_t));
  g->weights = malloc(n * sizeof(double));
  if ((!g->xd && !g->xf) || !g->labels[1] || !g->labels[2] || !g->weights)
    return -1;
  for (size_t i = 0; i < n * d; i++) {
    double v = 10.0 + (unif() - 0.5) * 3.0;
    if (f64)
      g->xd[i] = v;
    else
      g->xf[i] = (float)v;
  }
  for (size_t i = 0; i < n; i++) {
    g->labels[1][i] = (int32_t)(next() % 10);
    g->labels[2][i] = (int32_t)(next() % 1000);
    g->weights[i] = 0.5 + unif();
  }
  return 0;
}

static void release(data *g) {
  free(g->xf);
  free(g->xd);
  free(g->labels[1]);
  free(g->labels[2]);
  free(g->weights);
}

/* Best Mrows/s over reps runs. */
static double bench(const data *g, size_t C, int diag, int threads, int reps,
                    int weighted) {
  const size_t d = g->d;
  const size_t gl = diag ? d : d * d;
  gmle__partial p = {.dim = d,
                     .n_classes = C,
                     .gram_len = gl,
                     .mode = diag ? GMLE_STATS_DIAG : GMLE_STATS_FULL,
                     .f32_products = getenv("GRAM_F32") != NULL};
  double *shift = malloc(C * d * sizeof(double));
  p.weight = malloc(C * sizeof(double));
  p.rows = malloc(C * sizeof(uint64_t));
  p.sum = malloc(C * d * sizeof(double));
  p.gram = malloc(C * gl * sizeof(double));
  if (!shift || !p.weight || !p.rows || !p.sum || !p.gram)
    return -1;
  for (size_t i = 0; i < C * d; i++)
    shift[i] = 10.0;
  p.shift = shift;
  const int32_t *lab = C == 1 ? NULL : (C == 10 ? g->labels[1] : g->labels[2]);
  gmle__batch b = {.x = g->xd ? (const void *)g->xd : (const void *)g->xf,
                   .dtype = g->xd ? GMLE_F64 : GMLE_F32,
                   .n_rows = g->n,
                   .row_stride = d,
                   .dim = d,
                   .labels = lab,
                   .weights = weighted ? g->weights : NULL};
  gmle_context ctx;
  memset(&ctx, 0, sizeof ctx);
  ctx.n_threads = threads;
  double best = 0;
  for (int r = 0; r < reps; r++) {
    memset(p.weight, 0, C * sizeof(double));
    memset(p.rows, 0, C * sizeof(uint64_t));
    memset(p.sum, 0, C * d * sizeof(double));
    memset(p.gram, 0, C * gl * sizeof(double));
    double t0 = now();
    gmle_status s = gmle__cpu_accumulate(&ctx, &b, &p);
    double t = now() - t0;
    if (s != GMLE_OK)
      return -1;
    double mr = (double)g->n / t / 1e6;
    if (mr > best)
      best = mr;
  }
  free(shift);
  free(p.weight);
  free(p.rows);
  free(p.sum);
  free(p.gram);
  return best;
}

int main(int argc, char **argv) {
  {
    gmle__gram_tuning t = {0};
    const char *e;
    if ((e = getenv("GRAM_TILE")))
      t.tile_rows = strtoul(e, NULL, 10);
    if ((e = getenv("GRAM_CHUNK")))
      t.chunk_rows = strtoul(e, NULL, 10);
    if ((e = getenv("GRAM_BUDGET")))
      t.private_budget = strtoul(e, NULL, 10);
    if ((e = getenv("GRAM_ISA")))
      gmle__cpu_isa_override(atoi(e));
    if ((e = getenv("GRAM_NOBUCKET")))
      t.no_bucket = atoi(e);
    gmle__gram_set_tuning(&t);
  }
  if (argc >= 8) {
    size_t n = strtoul(argv[1], NULL, 10), d = strtoul(argv[2], NULL, 10),
           C = strtoul(argv[3], NULL, 10);
    int f64 = strcmp(argv[4], "f64") == 0, diag = strcmp(argv[5], "diag") == 0;
    int threads = atoi(argv[6]), reps = atoi(argv[7]);
    int weighted = argc > 8 && atoi(argv[8]);
    data g;
    if (make(&g, n, d, f64) != 0 || (C != 1 && C != 10 && C != 1000)) {
      fprintf(stderr, "bad arguments or out of memory\n");
      return 1;
    }
    printf("%s: N=%zu D=%zu C=%zu %s %s threads=%d%s: %.3f Mrows/s\n",
           gmle__gram_isa_name(), n, d, C, f64 ? "f64" : "f32",
           diag ? "DIAG" : "FULL", threads, weighted ? " weighted" : "",
           bench(&g, C, diag, threads, reps, weighted));
    release(&g);
    return 0;
  }
  static const size_t ds[] = {13, 40, 128};
  static const size_t cs[] = {1, 10, 1000};
  int reps = argc > 2 ? atoi(argv[2]) : 5;
  const size_t rows_for_table = argc > 3 ? strtoul(argv[3], NULL, 10) : 0;
  printf("Mrows/s, 2 threads, best of %d (%s)\n", reps, gmle__gram_isa_name());
  printf("%-5s %-4s %-5s %8s %8s %8s\n", "D", "type", "mode", "C=1", "C=10",
         "C=1000");
  for (int f64 = 0; f64 < 2; f64++)
    for (size_t di = 0; di < 3; di++) {
      const size_t d = ds[di], n = rows_for_table
                                       ? rows_for_table
                                       : (d >= 128 ? 250000 : 1000000);
      data g;
      if (make(&g, n, d, f64) != 0) {
        fprintf(stderr, "out of memory\n");
        return 1;
      }
      for (int diag = 0; diag < 2; diag++) {
        printf("%-5zu %-4s %-5s", d, f64 ? "f64" : "f32",
               diag ? "DIAG" : "FULL");
        for (size_t ci = 0; ci < 3; ci++)
          printf(" %8.1f", bench(&g, cs[ci], diag, 2, reps, 0));
        printf("\n");
        fflush(stdout);
      }
      release(&g);
    }
  return 0;
}
