/*
 * acceptance.c -- gmle's installed-library acceptance test.
 *
 * Built against an installed gmle only (through pkg-config or
 * find_package(gmle)), so it includes no project header but the installed
 * <gmle_io.h> (which includes <gmle.h>), and
 * needs nothing beyond the C library (no libm: normals are sums of
 * uniforms, norms are compared squared).
 *
 * It fits 2,000,000 float32 rows x 40 features x 10 classes with
 * |mean|/std = 1e4 (added in batches of 100,000 rows) and checks every mean
 * within 1e-7 (relative, per element) and every covariance within 1e-6
 * (relative Frobenius norm) of a float64 two-pass reference it computes
 * itself; then the same data as float64 (added in one call) within 1e-12.
 * Exit status 0 when everything holds, 1 otherwise.
 */
#include <gmle_io.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_ROWS 2000000
#define DIM 40
#define N_CLASSES 10
#define BATCH 100000

static uint64_t rng_state[4];

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static void seed(uint64_t s) {
  for (int i = 0; i < 4; i++) {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    rng_state[i] = z ^ (z >> 31);
  }
}

static uint64_t next(void) { /* xoshiro256** */
  uint64_t *s = rng_state;
  uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

static double uniform(void) { return (double)(next() >> 11) * 0x1p-53; }

/* Zero mean, unit variance, nearly Gaussian: the sum of four uniforms
 * (variance 4/12) scaled by sqrt(3). */
static double normalish(void) {
  uint64_t a = next(), b = next();
  double s = (double)(a >> 32) + (double)(a & 0xffffffffu) +
             (double)(b >> 32) + (double)(b & 0xffffffffu);
  return (s * 0x1p-32 - 2.0) * 1.7320508075688772;
}

static double absd(double v) { return v < 0 ? -v : v; }

static int failures;

static gmle_status check(gmle_status s, gmle_context *ctx, const char *what) {
  if (s != GMLE_OK) {
    printf("FAIL %s: %s (%s): %s\n", what, gmle_status_name(s),
           gmle_status_string(s), gmle_context_error(ctx));
    failures++;
  }
  return s;
}

/* Fit `x` (dtype) and compare with the reference. */
static void fit_and_compare(gmle_context *ctx, const void *x, gmle_dtype dtype,
                            size_t batch, const int32_t *labels,
                            const double *ref_mean, const double *ref_cov,
                            double mean_tol, double cov_tol,
                            const char *name) {
  gmle_stats *st = NULL;
  gmle_model *m = NULL;
  const size_t isz = dtype == GMLE_F32 ? sizeof(float) : sizeof(double);
  if (check(gmle_stats_create(ctx, DIM, N_CLASSES, &st), ctx, name))
    return;
  for (size_t off = 0; off < N_ROWS; off += batch) {
    size_t rows = N_ROWS - off < batch ? N_ROWS - off : batch;
    if (check(gmle_stats_add(st, (const char *)x + off * DIM * isz, dtype,
                             rows, DIM, labels + off, NULL),
              ctx, name)) {
      gmle_stats_free(st);
      return;
    }
  }
  for (size_t c = 0; c < N_CLASSES; c++) {
    uint64_t rows = 0;
    if (!check(gmle_stats_rows(st, c, &rows), ctx, name)) {
      size_t want = 0;
      for (size_t i = 0; i < N_ROWS; i++)
        want += (size_t)labels[i] == c;
      if (rows != want) {
        printf("FAIL %s: class %zu has %llu rows in the statistics, %zu in "
               "the data\n",
               name, c, (unsigned long long)rows, want);
        failures++;
      }
    }
  }
  gmle_fit_options opt;
  gmle_fit_options_init(&opt);
  opt.cov = GMLE_COV_FULL;
  if (check(gmle_fit(st, &opt, &m), ctx, name)) {
    gmle_stats_free(st);
    return;
  }
  double *mu = malloc(DIM * sizeof(double));
  double *S = malloc(DIM * DIM * sizeof(double));
  double worst_mean = 0, worst_cov2 = 0;
  int bad = 0;
  for (size_t c = 0; c < N_CLASSES && mu && S; c++) {
    if (check(gmle_model_mean(m, c, mu), ctx, name) ||
        check(gmle_model_covariance(m, c, S), ctx, name)) {
      bad = 1;
      break;
    }
    const double *rm = ref_mean + c * DIM, *rS = ref_cov + c * DIM * DIM;
    for (size_t j = 0; j < DIM; j++) {
      double e = absd(mu[j] - rm[j]) / absd(rm[j]);
      if (!(e <= mean_tol)) {
        if (!bad)
          printf("FAIL %s: class %zu mean[%zu] = %.17g, reference %.17g "
                 "(relative error %.3g > %.0e)\n",
                 name, c, j, mu[j], rm[j], e, mean_tol);
        bad = 1;
      }
      if (!(e <= worst_mean))
        worst_mean = e;
    }
    double num = 0, den = 0;
    for (size_t k = 0; k < DIM * DIM; k++) {
      double d = S[k] - rS[k];
      num += d * d;
      den += rS[k] * rS[k];
    }
    double e2 = num / den; /* squared relative Frobenius error */
    if (!(e2 <= cov_tol * cov_tol)) {
      if (!bad)
        printf("FAIL %s: class %zu covariance relative Frobenius error^2 "
               "%.3g > %.0e^2\n",
               name, c, e2, cov_tol);
      bad = 1;
    }
    if (!(e2 <= worst_cov2))
      worst_cov2 = e2;
  }
  if (!mu || !S) {
    printf("FAIL %s: out of memory\n", name);
    bad = 1;
  }
  if (bad)
    failures++;
  printf("%s %s: max mean error %.3g (tol %.0e), max covariance error^2 "
         "%.3g (tol %.0e^2)\n",
         bad ? "FAIL" : "ok  ", name, worst_mean, mean_tol, worst_cov2,
         cov_tol);
  free(mu);
  free(S);
  gmle_model_free(m);
  gmle_stats_free(st);
}

int main(void) {
  printf("gmle %s (header %d.%d.%d)\n", gmle_version_string(),
         GMLE_VERSION_MAJOR, GMLE_VERSION_MINOR, GMLE_VERSION_PATCH);
  if (gmle_version_number() != GMLE_VERSION_NUMBER) {
    printf("FAIL the installed library is version %u, its header says %d\n",
           gmle_version_number(), GMLE_VERSION_NUMBER);
    failures++;
  }
  /* The data-file API (gmle_io.h) and the name table link from the
   * installed library. */
  gmle_reader_options ro;
  gmle_reader_options_init(&ro);
  gmle_cov_type tied = GMLE_COV_FULL;
  if (ro.header != -1 || gmle_cov_parse("tied", &tied) != GMLE_OK ||
      tied != GMLE_COV_TIED || strcmp(gmle_cov_name(tied), "tied") != 0) {
    printf("FAIL gmle_reader_options_init or the covariance names\n");
    failures++;
  }

  float *x = malloc((size_t)N_ROWS * DIM * sizeof(float));
  double *xd = malloc((size_t)N_ROWS * DIM * sizeof(double));
  int32_t *labels = malloc(N_ROWS * sizeof(int32_t));
  double *mean = malloc(N_CLASSES * DIM * sizeof(double));
  double *sd = malloc(N_CLASSES * DIM * sizeof(double));
  double *ref_mean = calloc(N_CLASSES * DIM, sizeof(double));
  double *ref_cov = calloc(N_CLASSES * DIM * DIM, sizeof(double));
  double count[N_CLASSES] = {0};
  if (!x || !xd || !labels || !mean || !sd || !ref_mean || !ref_cov) {
    printf("FAIL out of memory\n");
    return 1;
  }

  /* Data: per class and feature a std in [0.5, 2] and a mean of exactly
   * +-1e4 std; neighbouring features correlated. */
  seed(20261123);
  for (size_t k = 0; k < N_CLASSES * DIM; k++) {
    sd[k] = 0.5 + 1.5 * uniform();
    mean[k] = (uniform() < 0.5 ? -1e4 : 1e4) * sd[k];
  }
  for (size_t i = 0; i < N_ROWS; i++) {
    size_t c = (size_t)(next() % N_CLASSES);
    labels[i] = (int32_t)c;
    double prev = normalish();
    for (size_t j = 0; j < DIM; j++) {
      double z = normalish(), v = (z + 0.6 * prev) * 0.8574929257125442;
      prev = z;
      x[i * DIM + j] = (float)(mean[c * DIM + j] + sd[c * DIM + j] * v);
      xd[i * DIM + j] = (double)x[i * DIM + j];
    }
  }

  /* Float64 two-pass reference over the float32 values as stored. */
  for (size_t i = 0; i < N_ROWS; i++) {
    size_t c = (size_t)labels[i];
    count[c] += 1;
    for (size_t j = 0; j < DIM; j++)
      ref_mean[c * DIM + j] += xd[i * DIM + j];
  }
  for (size_t c = 0; c < N_CLASSES; c++)
    for (size_t j = 0; j < DIM; j++)
      ref_mean[c * DIM + j] /= count[c];
  for (size_t i = 0; i < N_ROWS; i++) {
    size_t c = (size_t)labels[i];
    double d[DIM];
    for (size_t j = 0; j < DIM; j++)
      d[j] = xd[i * DIM + j] - ref_mean[c * DIM + j];
    double *S = ref_cov + c * DIM * DIM;
    for (size_t a = 0; a < DIM; a++)
      for (size_t b = 0; b <= a; b++)
        S[a * DIM + b] += d[a] * d[b];
  }
  for (size_t c = 0; c < N_CLASSES; c++) {
    double *S = ref_cov + c * DIM * DIM;
    for (size_t a = 0; a < DIM; a++)
      for (size_t b = 0; b <= a; b++) {
        S[a * DIM + b] /= count[c];
        S[b * DIM + a] = S[a * DIM + b];
      }
  }

  gmle_context *ctx = NULL;
  gmle_status s = gmle_context_create(GMLE_BACKEND_AUTO, -1, &ctx);
  if (check(s, ctx, "gmle_context_create") == GMLE_OK) {
    printf("backend: %s (%s)\n", gmle_backend_name(gmle_context_backend(ctx)),
           gmle_context_device_name(ctx));
    fit_and_compare(ctx, x, GMLE_F32, BATCH, labels, ref_mean, ref_cov, 1e-7,
                    1e-6, "float32 fit, 2e6 x 40 x 10, |mean|/std 1e4");
    fit_and_compare(ctx, xd, GMLE_F64, N_ROWS, labels, ref_mean, ref_cov,
                    1e-12, 1e-12, "float64 fit, same data");
  }
  gmle_context_free(ctx);
  free(x);
  free(xd);
  free(labels);
  free(mean);
  free(sd);
  free(ref_mean);
  free(ref_cov);
  printf("%s\n", failures ? "FAILED" : "PASSED");
  return failures ? 1 : 0;
}
