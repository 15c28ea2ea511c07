/* fuzzutil.c -- helpers shared by the fuzzing harnesses (see fuzzutil.h). */
#define _GNU_SOURCE /* memfd_create */
#include "fuzzutil.h"

#include "io_mem.h"
#include "reader_format.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static gmle_context *the_ctx;

void fz_fail(const char *file, int line, const char *what, const char *fmt,
             ...) {
  fprintf(stderr, "%s:%d: invariant violated: %s: ", file, line, what);
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\n  last library message: %s\n",
          the_ctx ? gmle_context_error(the_ctx) : "(no context)");
  abort();
}

gmle_context *fz_context(void) {
  if (!the_ctx) {
    gmle_status s = gmle_context_create(GMLE_BACKEND_CPU, -1, &the_ctx);
    FZ_REQUIRE(s == GMLE_OK, "cannot create a CPU context: %s",
               gmle_status_name(s));
  }
  return the_ctx;
}

int fz_outcome(gmle_status s, const void *out, const char *call) {
  if (s == GMLE_OK) {
    FZ_REQUIRE(out != NULL, "%s succeeded without a result", call);
    return 1;
  }
  FZ_REQUIRE(out == NULL, "%s failed (%s) but returned a result", call,
             gmle_status_name(s));
  FZ_REQUIRE(gmle_context_error(fz_context())[0] != '\0',
             "%s failed (%s) without a message", call, gmle_status_name(s));
  return 0;
}

int fz_memfd(const uint8_t *data, size_t size) {
  int fd = memfd_create("gmle-fuzz", MFD_CLOEXEC);
  FZ_REQUIRE(fd >= 0, "memfd_create failed");
  size_t done = 0;
  while (done < size) {
    ssize_t n = write(fd, data + done, size - done);
    FZ_REQUIRE(n > 0, "write to a memfd failed");
    done += (size_t)n;
  }
  return fd;
}

uint64_t fz_hash(uint64_t h, const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++)
    h = (h ^ b[i]) * 0x100000001b3ull;
  return h;
}

/* What one pass over a reader saw. */
typedef struct pass {
  gmle_status status;
  uint64_t rows, values, labels; /* row count, hashes */
} pass;

static pass read_all(gmle_reader *r, size_t batch) {
  pass p = {GMLE_OK, 0, FZ_HASH_INIT, FZ_HASH_INIT};
  const size_t cols = gmle_reader_cols(r);
  const size_t isz = gmle_reader_dtype(r) == GMLE_F32 ? 4 : 8;
  /* At most 1 MiB of values per batch. */
  if (cols && batch > ((size_t)1 << 20) / (cols * isz))
    batch = ((size_t)1 << 20) / (cols * isz);
  if (batch == 0)
    batch = 1;
  void *buf = cols ? malloc(batch * cols * isz) : NULL;
  const char **labels = malloc(batch * sizeof *labels);
  FZ_REQUIRE((buf || !cols) && labels, "out of memory in the harness");
  for (;;) {
    size_t n = (size_t)-1;
    p.status = gmle_reader_read(r, buf, batch, &n, labels);
    if (p.status != GMLE_OK) {
      FZ_REQUIRE(n == 0, "a failed read reports %zu rows", n);
      break;
    }
    FZ_REQUIRE(n <= batch, "read %zu rows into a batch of %zu", n, batch);
    if (n == 0)
      break;
    p.rows += n;
    p.values = fz_hash(p.values, buf, n * cols * isz);
    for (size_t i = 0; i < n; i++) {
      FZ_REQUIRE(!r->has_labels || labels[i], "row %zu has no label text", i);
      if (labels[i])
        p.labels = fz_hash(p.labels, labels[i], strlen(labels[i]) + 1);
    }
    FZ_REQUIRE(gmle_reader_offset(r) == p.rows, "offset %llu after %llu rows",
               (unsigned long long)gmle_reader_offset(r),
               (unsigned long long)p.rows);
  }
  free(buf);
  free(labels);
  return p;
}

/* A pass through gmle_reader_read_int_labels, hashing each label as the
 * decimal text the text path gives. */
static pass read_all_int(gmle_reader *r, size_t batch) {
  pass p = {GMLE_OK, 0, FZ_HASH_INIT, FZ_HASH_INIT};
  int64_t *labels = malloc(batch * sizeof *labels);
  FZ_REQUIRE(labels, "out of memory in the harness");
  for (;;) {
    size_t n = (size_t)-1;
    p.status = gmle_reader_read_int_labels(r, labels, batch, &n);
    if (p.status != GMLE_OK) {
      FZ_REQUIRE(n == 0, "a failed read reports %zu rows", n);
      break;
    }
    if (n == 0)
      break;
    p.rows += n;
    for (size_t i = 0; i < n; i++) {
      char txt[32];
      snprintf(txt, sizeof txt, "%lld", (long long)labels[i]);
      p.labels = fz_hash(p.labels, txt, strlen(txt) + 1);
    }
  }
  free(labels);
  return p;
}

gmle_status fz_read_twice(int fd, const char *name,
                          const gmle_reader_options *opt, size_t batch1,
                          size_t batch2) {
  gmle_context *ctx = fz_context();
  int dfd = dup(fd);
  FZ_REQUIRE(dfd >= 0, "dup failed");
  gmle_reader *r = NULL;
  gmle_status s = gmle__reader_open_fd(ctx, dfd, name, opt, &r);
  if (!fz_outcome(s, r, "gmle__reader_open_fd"))
    return s;
  const size_t cols = gmle_reader_cols(r);
  FZ_REQUIRE(!opt || !opt->labels_only || cols == 0,
             "a labels_only reader has %zu columns", cols);
  FZ_REQUIRE(gmle_reader_format(r) != NULL, "no format");
  for (size_t j = 0; j <= cols && j < 64; j++) {
    const char *cn = gmle_reader_column_name(r, j);
    FZ_REQUIRE(j < cols || cn == NULL, "a name for column %zu of %zu", j, cols);
  }
  uint64_t known = 0;
  const int rows_known = gmle_reader_rows(r, &known);
  const pass a = read_all(r, batch1);
  FZ_REQUIRE(a.status != GMLE_OK || !rows_known || a.rows == known,
             "read %llu rows of a file said to have %llu",
             (unsigned long long)a.rows, (unsigned long long)known);
  FZ_REQUIRE(a.status == GMLE_OK || gmle_context_error(ctx)[0] != '\0',
             "read failed (%s) without a message", gmle_status_name(a.status));
  gmle_status rw = gmle_reader_rewind(r);
  FZ_REQUIRE(rw == GMLE_OK, "rewind failed: %s", gmle_status_name(rw));
  const pass b = read_all(r, batch2);
  FZ_REQUIRE((a.status == GMLE_OK) == (b.status == GMLE_OK),
             "batches of %zu rows: %s, batches of %zu rows: %s", batch1,
             gmle_status_name(a.status), batch2, gmle_status_name(b.status));
  if (a.status == GMLE_OK) {
    FZ_REQUIRE(a.rows == b.rows && a.values == b.values && a.labels == b.labels,
               "batches of %zu and %zu rows read different data (%llu and "
               "%llu rows)",
               batch1, batch2, (unsigned long long)a.rows,
               (unsigned long long)b.rows);
  }
  if (gmle_reader_int_labels(r)) { /* the same labels without text */
    FZ_REQUIRE(gmle_reader_rewind(r) == GMLE_OK, "rewind failed");
    const pass c = read_all_int(r, batch2);
    FZ_REQUIRE(
        (a.status == GMLE_OK) == (c.status == GMLE_OK) &&
            (a.status != GMLE_OK || (a.rows == c.rows && a.labels == c.labels)),
        "int64 labels differ from the text labels (%s, %s)",
        gmle_status_name(a.status), gmle_status_name(c.status));
  }
  gmle_reader_free(r);
  return s;
}

static double lse(const double *v, size_t n) {
  double mx = -INFINITY;
  for (size_t i = 0; i < n; i++)
    mx = v[i] > mx ? v[i] : mx;
  if (mx == -INFINITY)
    return mx;
  long double acc = 0;
  for (size_t i = 0; i < n; i++)
    acc += expl((long double)v[i] - mx);
  return mx + (double)logl(acc);
}

static int close_to(double a, double b, double rel) {
  return fabs(a - b) <= rel * fmax(1.0, fmax(fabs(a), fabs(b)));
}

/* The model's getters, for every class. */
static void check_getters(const gmle_model *m, size_t C, size_t D) {
  double *v = malloc(D * D * sizeof *v);
  FZ_REQUIRE(v != NULL, "out of memory in the harness");
  double psum = 0;
  for (size_t c = 0; c < C; c++) {
    double p = -1, n = -1;
    gmle_class_report rep;
    FZ_REQUIRE(gmle_model_mean(m, c, v) == GMLE_OK, "mean of class %zu", c);
    for (size_t j = 0; j < D; j++)
      FZ_REQUIRE(isfinite(v[j]), "class %zu: mean[%zu] = %g", c, j, v[j]);
    FZ_REQUIRE(gmle_model_covariance(m, c, v) == GMLE_OK, "covariance %zu", c);
    for (size_t j = 0; j < D * D; j++)
      FZ_REQUIRE(isfinite(v[j]), "class %zu: covariance[%zu] = %g", c, j, v[j]);
    /* Priors may sum to 1 within 1e-9 (src/model.c), so one may be a
     * little above 1. */
    FZ_REQUIRE(gmle_model_prior(m, c, &p) == GMLE_OK && p >= 0 && p <= 1 + 1e-9,
               "class %zu: prior %.17g", c, p);
    FZ_REQUIRE(gmle_model_count(m, c, &n) == GMLE_OK && !(n < 0),
               "class %zu: count %g", c, n);
    FZ_REQUIRE(gmle_model_report(m, c, &rep) == GMLE_OK, "report %zu", c);
    (void)gmle_model_class_name(m, c);
    psum += p;
  }
  FZ_REQUIRE(fabs(psum - 1) <= 1e-6, "priors sum to %.17g", psum);
  double ll, bic, aic;
  (void)gmle_model_loglik(m, 1, &ll);
  (void)gmle_model_information(m, &bic, &aic);
  (void)gmle_model_n_params(m);
  free(v);
}

void fz_check_model(const gmle_model *m) {
  gmle_context *ctx = fz_context();
  const size_t C = gmle_model_n_classes(m), D = gmle_model_dim(m);
  FZ_REQUIRE(C >= 1 && D >= 1, "%zu classes, %zu features", C, D);
  if (D > 512 || C > 512)
    return; /* only what a small input can describe is scored */
  check_getters(m, C, D);
  /* Rows: up to 16 class means, the origin, the first mean + 1. */
  const size_t nm = C < 16 ? C : 16, n = nm + 2;
  double *x = calloc(n * D, sizeof *x);
  double *ll = malloc(n * C * sizeof *ll), *jt = malloc(n * C * sizeof *jt);
  double *lp = malloc(n * C * sizeof *lp), *dens = malloc(n * sizeof *dens);
  float *f32 = malloc(n * C * sizeof *f32);
  int32_t *lab = malloc(n * sizeof *lab);
  FZ_REQUIRE(x && ll && jt && lp && dens && f32 && lab,
             "out of memory in the harness");
  for (size_t r = 0; r < nm; r++)
    FZ_REQUIRE(gmle_model_mean(m, r, x + r * D) == GMLE_OK, "mean %zu", r);
  FZ_REQUIRE(gmle_model_mean(m, 0, x + (n - 1) * D) == GMLE_OK, "mean 0");
  for (size_t j = 0; j < D; j++)
    x[(n - 1) * D + j] += 1;
  const struct {
    gmle_output what;
    gmle_dtype dt;
    void *out;
  } runs[] = {
      {GMLE_OUT_LOGLIK, GMLE_F64, ll},  {GMLE_OUT_JOINT, GMLE_F64, jt},
      {GMLE_OUT_LOGPOST, GMLE_F64, lp}, {GMLE_OUT_DENSITY, GMLE_F64, dens},
      {GMLE_OUT_LABEL, GMLE_F64, lab},  {GMLE_OUT_LOGLIK, GMLE_F32, f32}};
  for (size_t k = 0; k < sizeof runs / sizeof *runs; k++) {
    gmle_status s = gmle_score(ctx, m, x, GMLE_F64, n, D, runs[k].what,
                               runs[k].dt, runs[k].out);
    FZ_REQUIRE(s == GMLE_OK, "scoring finite rows (output %d): %s",
               (int)runs[k].what, gmle_status_name(s));
  }
  for (size_t r = 0; r < n; r++) {
    const double *L = ll + r * C, *J = jt + r * C, *P = lp + r * C;
    double mx = -INFINITY;
    for (size_t c = 0; c < C; c++) {
      FZ_REQUIRE(!isnan(L[c]) && L[c] != INFINITY && !isnan(J[c]) &&
                     J[c] != INFINITY && !isnan(P[c]) && P[c] <= 1e-9,
                 "row %zu class %zu: loglik %g, joint %g, logpost %g", r, c,
                 L[c], J[c], P[c]);
      FZ_REQUIRE(!isnan(f32[r * C + c]), "row %zu class %zu: float32 NaN", r,
                 c);
      mx = J[c] > mx ? J[c] : mx;
    }
    const double t = lse(J, C);
    FZ_REQUIRE(!isnan(dens[r]) && dens[r] != INFINITY &&
                   (t == -INFINITY ? dens[r] == -INFINITY
                                   : close_to(dens[r], t, 1e-9)),
               "row %zu: density %.17g, log-sum-exp of the joint %.17g", r,
               dens[r], t);
    if (mx == -INFINITY) {
      FZ_REQUIRE(lab[r] == -1, "row %zu: label %d, every class -inf", r,
                 (int)lab[r]);
      continue;
    }
    FZ_REQUIRE(lab[r] >= 0 && (size_t)lab[r] < C &&
                   close_to(J[lab[r]], mx, 1e-9),
               "row %zu: label %d, largest joint %g", r, (int)lab[r], mx);
    const double ps = lse(P, C);
    FZ_REQUIRE(fabs(ps) <= 1e-9, "row %zu: posteriors sum to exp(%g)", r, ps);
  }
  free(x);
  free(ll);
  free(jt);
  free(lp);
  free(dens);
  free(f32);
  free(lab);
}
