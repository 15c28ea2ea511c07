/* bench_api.c -- the C API's side of the Python overhead bench
 * (bench/python_overhead.py, which writes the data and runs this).
 *
 *   bench_api X.bin Y.bin N D C f32|f64 REPEATS
 *
 * X.bin: N x D rows (native float32 or float64, row-major); Y.bin: N int32
 * class indices in [0, C). Both are read into memory first; then, on a CPU
 * context, the best of REPEATS (after one warm-up) of
 *   fit:     gmle_stats_create_mode + gmle_stats_add_checked in the CLI's
 *            batches (as the package adds them) + gmle_fit (full) + frees;
 *   predict: gmle_score(GMLE_OUT_LABEL) of every row into a new buffer.
 * Prints one JSON line: {"fit_s", "predict_s" (wall), "fit_cpu_s",
 * "predict_cpu_s" (process CPU time, every thread; steadier than wall time
 * on a busy machine), "device"}; each the best of the repeats. */
#define _DEFAULT_SOURCE /* madvise's MADV_HUGEPAGE */
#include <gmle.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static double clock_s(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Wall and CPU time of one run. */
typedef struct run_time {
  double wall, cpu;
} run_time;

static run_time start(void) {
  return (run_time){clock_s(CLOCK_MONOTONIC),
                    clock_s(CLOCK_PROCESS_CPUTIME_ID)};
}

static run_time since(run_time t0) {
  run_time t = start();
  return (run_time){t.wall - t0.wall, t.cpu - t0.cpu};
}

static void keep_best(run_time *best, run_time t) {
  if (t.wall < best->wall)
    best->wall = t.wall;
  if (t.cpu < best->cpu)
    best->cpu = t.cpu;
}

/* Buffers as numpy allocates large arrays (huge pages where the system
 * gives them on request), so that both sides read memory alike. */
static void *alloc_big(size_t bytes) {
  void *p = NULL;
  if (posix_memalign(&p, (size_t)2 << 20, bytes ? bytes : 1) != 0)
    return NULL;
  madvise(p, bytes, MADV_HUGEPAGE);
  return p;
}

static void *read_file(const char *path, size_t bytes) {
  void *buf = alloc_big(bytes);
  FILE *f = fopen(path, "rb");
  if (!buf || !f || fread(buf, 1, bytes, f) != bytes) {
    fprintf(stderr, "bench_api: cannot read %zu bytes of %s\n", bytes, path);
    exit(2);
  }
  fclose(f);
  return buf;
}

static void check(gmle_status s, gmle_context *ctx, const char *what) {
  if (s != GMLE_OK) {
    fprintf(stderr, "bench_api: %s: %s\n", what, gmle_context_error(ctx));
    exit(1);
  }
}

/* The CLI's batch (tools/data.c): at most 65536 rows, about 32 MiB. */
static size_t batch_rows(size_t D, size_t isz) {
  size_t b = ((size_t)32 << 20) / (D * isz + 8);
  return b > 65536 ? 65536 : b < 1 ? 1 : b;
}

static run_time fit_once(gmle_context *ctx, const char *x, const int32_t *y,
                         size_t N, size_t D, size_t C, gmle_dtype dt,
                         size_t isz) {
  const run_time t0 = start();
  gmle_stats *st = NULL;
  check(gmle_stats_create_mode(ctx, D, C, GMLE_STATS_FULL, &st), ctx, "stats");
  const size_t b = batch_rows(D, isz);
  for (size_t r = 0; r < N; r += b) {
    const size_t n = N - r < b ? N - r : b;
    check(gmle_stats_add_checked(st, x + r * D * isz, dt, n, D, D, y + r, NULL),
          ctx, "add");
  }
  gmle_model *m = NULL;
  check(gmle_fit(st, NULL, &m), ctx, "fit");
  gmle_model_free(m);
  gmle_stats_free(st);
  return since(t0);
}

static run_time predict_once(gmle_context *ctx, const gmle_model *m,
                             const char *x, size_t N, size_t D, gmle_dtype dt) {
  const run_time t0 = start();
  int32_t *out = alloc_big(N * sizeof *out);
  check(gmle_score(ctx, m, x, dt, N, D, GMLE_OUT_LABEL, GMLE_F64, out), ctx,
        "score");
  free(out);
  return since(t0);
}

int main(int argc, char **argv) {
  if (argc != 8) {
    fprintf(stderr, "usage: bench_api X.bin Y.bin N D C f32|f64 REPEATS\n");
    return 2;
  }
  const size_t N = strtoull(argv[3], NULL, 10), D = strtoull(argv[4], NULL, 10),
               C = strtoull(argv[5], NULL, 10);
  const int f32 = strcmp(argv[6], "f32") == 0;
  const int reps = atoi(argv[7]);
  const size_t isz = f32 ? 4 : 8;
  const gmle_dtype dt = f32 ? GMLE_F32 : GMLE_F64;
  const char *x = read_file(argv[1], N * D * isz);
  const int32_t *y = read_file(argv[2], N * sizeof(int32_t));
  gmle_context *ctx = NULL;
  check(gmle_context_create(GMLE_BACKEND_CPU, -1, &ctx), ctx, "context");

  run_time best_fit = {1e300, 1e300}, best_pred = {1e300, 1e300};
  for (int i = 0; i <= reps; i++) { /* i == 0: warm-up */
    const run_time t = fit_once(ctx, x, y, N, D, C, dt, isz);
    if (i > 0)
      keep_best(&best_fit, t);
  }
  gmle_stats *st = NULL;
  gmle_model *m = NULL;
  check(gmle_stats_create(ctx, D, C, &st), ctx, "stats");
  check(gmle_stats_add(st, x, dt, N, D, y, NULL), ctx, "add");
  check(gmle_fit(st, NULL, &m), ctx, "fit");
  for (int i = 0; i <= reps; i++) {
    const run_time t = predict_once(ctx, m, x, N, D, dt);
    if (i > 0)
      keep_best(&best_pred, t);
  }
  printf("{\"fit_s\": %.6f, \"predict_s\": %.6f, \"fit_cpu_s\": %.6f, "
         "\"predict_cpu_s\": %.6f, \"device\": \"%s\"}\n",
         best_fit.wall, best_pred.wall, best_fit.cpu, best_pred.cpu,
         gmle_context_device_name(ctx));
  gmle_model_free(m);
  gmle_stats_free(st);
  gmle_context_free(ctx);
  free((void *)x);
  free((void *)y);
  return 0;
}
