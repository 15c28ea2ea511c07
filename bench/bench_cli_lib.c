/*
 * bench_cli_lib.c -- the library's own rate on the data a `gmle` command
 * reads, the yardstick of bench/bench_cli.py.
 *
 * It loads DATA (.npy) and, when given, LABELS (an integer .npy) into
 * memory through gmle_reader, then times what the commands ask of the
 * library, in the commands' batches:
 *   fit:      gmle_stats_create_mode + gmle_stats_add_checked per batch +
 *             gmle_fit (gmle fit DATA --labels LABELS);
 *   score:    gmle_score(GMLE_OUT_LOGLIK, float64 out) per batch into one
 *             reused batch buffer (gmle score's default output);
 *   classify: gmle_score(GMLE_OUT_LABEL) per batch (gmle classify);
 * and, with --read FILE..., each reader's own rate: the whole file read in
 * batches through gmle_reader_read (labels files as labels_only; integer
 * labels also through gmle_reader_read_int_labels).
 * Each timing is the best of --reps passes. Output: one line per timing,
 *   NAME SECONDS MROWS_PER_S
 * The backend is the CPU unless GMLE_BACKEND names another.
 *
 * Usage: bench_cli_lib DATA.npy [LABELS.npy] [--reps K] [--batch ROWS]
 *        bench_cli_lib --read FILE[:labels] ... [--reps K] [--batch ROWS]
 */
#include <gmle.h>
#include <gmle_io.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void die(gmle_context *ctx, gmle_status s, const char *what) {
  fprintf(stderr, "bench_cli_lib: %s: %s\n", what,
          ctx && gmle_context_error(ctx)[0] ? gmle_context_error(ctx)
                                            : gmle_status_string(s));
  exit(2);
}

static void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) {
    fprintf(stderr, "bench_cli_lib: out of memory (%zu bytes)\n", n);
    exit(2);
  }
  return p;
}

/* The whole of a .npy data file in memory. */
typedef struct data {
  void *x;
  gmle_dtype dtype;
  size_t n, cols;
  int32_t *idx; /* class indices (labels in sorted order), or NULL */
  size_t n_classes;
} data;

static void load_rows(gmle_context *ctx, const char *path, data *d) {
  gmle_reader *r = NULL;
  gmle_status s = gmle_reader_open(ctx, path, NULL, &r);
  if (s != GMLE_OK)
    die(ctx, s, path);
  uint64_t rows = 0;
  if (!gmle_reader_rows(r, &rows))
    die(ctx, GMLE_E_UNSUPPORTED, "DATA must be a .npy file");
  d->n = (size_t)rows;
  d->cols = gmle_reader_cols(r);
  d->dtype = gmle_reader_dtype(r);
  const size_t isz = d->dtype == GMLE_F32 ? 4 : 8;
  d->x = xmalloc(d->n * d->cols * isz);
  size_t got = 0;
  s = gmle_reader_read(r, d->x, d->n, &got, NULL);
  if (s != GMLE_OK || got != d->n)
    die(ctx, s, path);
  gmle_reader_free(r);
}

static int cmp_i64(const void *a, const void *b) {
  const int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

/* Integer labels to class indices in sorted order (as gmle fit numbers
 * integer classes). */
static void load_labels(gmle_context *ctx, const char *path, data *d) {
  gmle_reader_options o;
  gmle_reader_options_init(&o);
  o.labels_only = 1;
  gmle_reader *r = NULL;
  gmle_status s = gmle_reader_open(ctx, path, &o, &r);
  if (s != GMLE_OK)
    die(ctx, s, path);
  if (!gmle_reader_int_labels(r))
    die(ctx, GMLE_E_UNSUPPORTED, "LABELS must be an integer .npy");
  int64_t *v = xmalloc(d->n * sizeof *v), *sorted = xmalloc(d->n * sizeof *v);
  size_t got = 0;
  s = gmle_reader_read_int_labels(r, v, d->n, &got);
  if (s != GMLE_OK || got != d->n)
    die(ctx, s, path);
  gmle_reader_free(r);
  memcpy(sorted, v, d->n * sizeof *v);
  qsort(sorted, d->n, sizeof *sorted, cmp_i64);
  size_t k = 0;
  for (size_t i = 0; i < d->n; i++)
    if (i == 0 || sorted[i] != sorted[k - 1])
      sorted[k++] = sorted[i];
  d->n_classes = k;
  d->idx = xmalloc(d->n * sizeof *d->idx);
  for (size_t i = 0; i < d->n; i++) {
    const int64_t *p = bsearch(&v[i], sorted, k, sizeof *sorted, cmp_i64);
    d->idx[i] = (int32_t)(p - sorted);
  }
  free(v);
  free(sorted);
}

static const void *rows_at(const data *d, size_t r0) {
  const size_t isz = d->dtype == GMLE_F32 ? 4 : 8;
  return (const char *)d->x + r0 * d->cols * isz;
}

static gmle_model *fit_once(gmle_context *ctx, const data *d, size_t batch) {
  gmle_stats *st = NULL;
  gmle_status s = gmle_stats_create_mode(ctx, d->cols,
                                         d->idx ? d->n_classes : 1,
                                         GMLE_STATS_FULL, &st);
  if (s != GMLE_OK)
    die(ctx, s, "gmle_stats_create_mode");
  for (size_t r0 = 0; r0 < d->n; r0 += batch) {
    const size_t k = d->n - r0 < batch ? d->n - r0 : batch;
    s = gmle_stats_add_checked(st, rows_at(d, r0), d->dtype, k, d->cols,
                               d->cols, d->idx ? d->idx + r0 : NULL, NULL);
    if (s != GMLE_OK)
      die(ctx, s, "gmle_stats_add_checked");
  }
  gmle_fit_options fo;
  gmle_fit_options_init(&fo);
  gmle_model *m = NULL;
  s = gmle_fit(st, &fo, &m);
  if (s != GMLE_OK)
    die(ctx, s, "gmle_fit");
  gmle_stats_free(st);
  return m;
}

static void score_once(gmle_context *ctx, const data *d, const gmle_model *m,
                       size_t batch, gmle_output what, void *out) {
  for (size_t r0 = 0; r0 < d->n; r0 += batch) {
    const size_t k = d->n - r0 < batch ? d->n - r0 : batch;
    gmle_status s = gmle_score(ctx, m, rows_at(d, r0), d->dtype, k, d->cols,
                               what, GMLE_F64, out);
    if (s != GMLE_OK)
      die(ctx, s, "gmle_score");
  }
}

static void report(const char *name, double sec, size_t rows) {
  printf("%s %.6f %.3f\n", name, sec, (double)rows / sec / 1e6);
  fflush(stdout);
}

/* One reader's own rate: the whole file in batches (labels_only for
 * "FILE:labels", whose integer labels are also read as int64). */
static void read_rate(gmle_context *ctx, const char *spec, size_t batch,
                      int reps) {
  char path[4096];
  snprintf(path, sizeof path, "%s", spec);
  char *tag = strstr(path, ":labels");
  const int labels_only = tag && tag[7] == '\0';
  if (labels_only)
    *tag = '\0';
  gmle_reader_options o;
  gmle_reader_options_init(&o);
  o.labels_only = labels_only;
  gmle_reader *r = NULL;
  gmle_status s = gmle_reader_open(ctx, path, &o, &r);
  if (s != GMLE_OK)
    die(ctx, s, path);
  const size_t isz = gmle_reader_dtype(r) == GMLE_F32 ? 4 : 8;
  void *buf = xmalloc(batch * (gmle_reader_cols(r) + 1) * isz);
  const char **lab = xmalloc(batch * sizeof *lab);
  for (int as_int = 0; as_int <= (labels_only && gmle_reader_int_labels(r));
       as_int++) {
    double best = 1e300;
    size_t rows = 0;
    for (int rep = 0; rep < reps; rep++) {
      if ((s = gmle_reader_rewind(r)) != GMLE_OK)
        die(ctx, s, path);
      rows = 0;
      const double t0 = now();
      for (;;) {
        size_t k = 0;
        s = as_int ? gmle_reader_read_int_labels(r, buf, batch, &k)
                   : gmle_reader_read(r, buf, batch, &k,
                                      labels_only ? lab : NULL);
        if (s != GMLE_OK)
          die(ctx, s, path);
        if (!k)
          break;
        rows += k;
      }
      const double t = now() - t0;
      best = t < best ? t : best;
    }
    char name[4200];
    snprintf(name, sizeof name, "read:%s:%s%s", gmle_reader_format(r), path,
             as_int ? ":int64" : (labels_only ? ":text" : ""));
    report(name, best, rows);
  }
  free(buf);
  free(lab);
  gmle_reader_free(r);
}

int main(int argc, char **argv) {
  const char *paths[2] = {NULL, NULL}, *reads[16];
  size_t np = 0, nr = 0, batch = 65536;
  int reps = 3, reading = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--reps") && i + 1 < argc)
      reps = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--batch") && i + 1 < argc)
      batch = (size_t)strtoull(argv[++i], NULL, 10);
    else if (!strcmp(argv[i], "--read"))
      reading = 1;
    else if (reading && nr < 16)
      reads[nr++] = argv[i];
    else if (!reading && np < 2 && argv[i][0] != '-')
      paths[np++] = argv[i];
    else {
      fprintf(stderr, "usage: bench_cli_lib DATA.npy [LABELS.npy] [--reps K] "
                      "[--batch ROWS]\n       bench_cli_lib --read "
                      "FILE[:labels]... [--reps K] [--batch ROWS]\n");
      return 2;
    }
  }
  if ((!np && !nr) || reps < 1 || batch < 1) {
    fprintf(stderr, "bench_cli_lib: nothing to do (see the usage)\n");
    return 2;
  }
  gmle_context *ctx = NULL;
  gmle_status s = gmle_context_create(GMLE_BACKEND_CPU, -1, &ctx);
  if (s != GMLE_OK)
    die(ctx, s, "gmle_context_create");
  for (size_t i = 0; i < nr; i++)
    read_rate(ctx, reads[i], batch, reps);
  if (!np) {
    gmle_context_free(ctx);
    return 0;
  }
  data d;
  memset(&d, 0, sizeof d);
  load_rows(ctx, paths[0], &d);
  if (paths[1])
    load_labels(ctx, paths[1], &d);
  double best = 1e300;
  gmle_model *m = NULL;
  for (int rep = 0; rep < reps; rep++) {
    gmle_model_free(m);
    const double t0 = now();
    m = fit_once(ctx, &d, batch);
    const double t = now() - t0;
    best = t < best ? t : best;
  }
  report("fit", best, d.n);
  const size_t C = gmle_model_n_classes(m);
  void *out = xmalloc(batch * C * sizeof(double));
  static const struct {
    const char *name;
    gmle_output what;
  } ops[] = {{"score", GMLE_OUT_LOGLIK}, {"classify", GMLE_OUT_LABEL}};
  for (size_t o = 0; o < 2; o++) {
    best = 1e300;
    for (int rep = 0; rep < reps; rep++) {
      const double t0 = now();
      score_once(ctx, &d, m, batch, ops[o].what, out);
      const double t = now() - t0;
      best = t < best ? t : best;
    }
    report(ops[o].name, best, d.n);
  }
  free(out);
  gmle_model_free(m);
  free(d.x);
  free(d.idx);
  gmle_context_free(ctx);
  return 0;
}
