/*
 * bench_cpu.c -- gmle fit and score throughput on the CPU, measured against
 * the machine's own limits.
 *
 * For each shape (D features, C classes, full or diag covariance) it
 * generates class-conditional Gaussians in memory (float32, |mean|/std about
 * 1e4, uniformly random labels) and times
 *   fit:   gmle_stats_add over the whole buffer in batches of --batch rows,
 *          as a user would, then gmle_fit (the timing covers both);
 *   score: gmle_score(GMLE_OUT_LOGPOST, float32 out) in calls of bounded
 *          output size.
 * Each timing is repeated over passes of the buffer until it lasts at least
 * --min-time seconds; the best of --reps is kept. In the same run it measures
 *   stream-read bandwidth (a vectorised sum over a buffer far larger than L3,
 *   all OpenMP threads) and the float32 / float64 FMA peak (register-resident
 *   FMA chains, all threads, AVX-512 when the CPU has it),
 * and prints per shape the roofline -- the lower of the bandwidth bound and
 * the FMA-peak bound for the useful flops of a row -- and the fraction of it
 * reached. Useful flops per row: fit full D(D+2), fit diag 4D; score full
 * C D(D+3), score diag 3 C D. Bytes per row: fit 4D + 4 (row and label),
 * score 4D + 4C (row in, float32 log-posteriors out).
 *
 * Accuracy is checked on every shape: means within 1e-7 (relative, per
 * element) and covariances within 1e-6 (relative Frobenius, per class) of a
 * float64 two-pass reference; scoring is spot-checked (log-likelihoods of 256
 * rows in float64 against a float64 Cholesky reference built from the
 * model's own parameters, and log-posteriors summing to 1).
 *
 * Usage: bench_cpu [--quick] [--limits-only] [--min-time S] [--reps K]
 *                  [--batch ROWS] [--only D:C:cov[,D:C:cov...]] [--json PATH]
 * Backend: the CPU, or the one GMLE_BACKEND names (cpu, opencl, cuda).
 *                  [--no-limits]   (skip the limit measurements: profiling)
 * Output: a table on stdout; with --json, one JSON object per line (a
 * "limits" record, then one "shape" record per shape). The exit status is 1
 * when any accuracy check fails, 2 on usage or setup errors.
 */
#include <gmle.h>

#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define BENCH_X86 1
#else
#define BENCH_X86 0
#endif

/* ------------------------------------------------------------------------ */
/* Random numbers: xoshiro256** seeded by splitmix64, per block of rows, so  */
/* the data do not depend on the thread count.                              */
/* ------------------------------------------------------------------------ */

typedef struct rng {
  uint64_t s[4];
} rng;

static uint64_t rotl64(uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}

static void rng_seed(rng *r, uint64_t seed) {
  for (int i = 0; i < 4; i++) {
    uint64_t z = (seed += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    r->s[i] = z ^ (z >> 31);
  }
}

static uint64_t rng_next(rng *r) {
  uint64_t *s = r->s;
  uint64_t result = rotl64(s[1] * 5, 7) * 9, t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl64(s[3], 45);
  return result;
}

static double rng_uniform(rng *r) {
  return (double)(rng_next(r) >> 11) * 0x1p-53;
}

/* Two independent N(0,1) by Box-Muller. */
static void rng_normal2(rng *r, double *a, double *b) {
  double u1 = rng_uniform(r), u2 = rng_uniform(r);
  if (u1 < 1e-300)
    u1 = 1e-300;
  double rad = sqrt(-2.0 * log(u1)), th = 6.283185307179586 * u2;
  *a = rad * cos(th);
  *b = rad * sin(th);
}

/* ------------------------------------------------------------------------ */
/* Data: class-conditional Gaussians                                         */
/* ------------------------------------------------------------------------ */

#define GEN_BLOCK 65536
#define MEAN_OVER_STD 1e4

typedef struct dataset {
  size_t n, dim, n_classes;
  float *x;        /* [n*dim] */
  int32_t *labels; /* [n] */
} dataset;

/* Class c, feature j: std s in [0.5, 2], mean +-1e4 s (1 + u/4); neighbouring
 * features are correlated (x_j = m + s (z_j + 0.6 z_{j-1}) / sqrt(1.36)). */
static void gen_dataset(dataset *ds, size_t n, size_t dim, size_t n_classes,
                        uint64_t seed) {
  ds->n = n;
  ds->dim = dim;
  ds->n_classes = n_classes;
  ds->x = malloc(n * dim * sizeof(float));
  ds->labels = malloc(n * sizeof(int32_t));
  double *mean = malloc(n_classes * dim * sizeof(double));
  double *sd = malloc(n_classes * dim * sizeof(double));
  if (!ds->x || !ds->labels || !mean || !sd) {
    fprintf(stderr, "bench_cpu: out of memory generating %zu x %zu\n", n,
            dim);
    exit(2);
  }
  rng pr;
  rng_seed(&pr, seed);
  for (size_t i = 0; i < n_classes * dim; i++) {
    sd[i] = 0.5 + 1.5 * rng_uniform(&pr);
    double sign = rng_uniform(&pr) < 0.5 ? -1.0 : 1.0;
    mean[i] = sign * MEAN_OVER_STD * sd[i] * (1.0 + 0.25 * rng_uniform(&pr));
  }
  const double rho = 0.6, norm = 1.0 / sqrt(1.0 + rho * rho);
  long n_blocks = (long)((n + GEN_BLOCK - 1) / GEN_BLOCK);
#pragma omp parallel
  {
    double *z = malloc((dim + 1) * sizeof(double));
#pragma omp for schedule(dynamic, 1)
    for (long b = 0; b < n_blocks; b++) {
      rng r;
      rng_seed(&r, seed * 1000003u + (uint64_t)b + 1);
      size_t r0 = (size_t)b * GEN_BLOCK, r1 = r0 + GEN_BLOCK;
      if (r1 > n)
        r1 = n;
      for (size_t i = r0; i < r1; i++) {
        size_t c = (size_t)(rng_next(&r) % n_classes);
        ds->labels[i] = (int32_t)c;
        for (size_t j = 0; j < dim; j += 2)
          rng_normal2(&r, &z[j], &z[j + 1]);
        const double *m = mean + c * dim, *s = sd + c * dim;
        float *row = ds->x + i * dim;
        row[0] = (float)(m[0] + s[0] * z[0]);
        for (size_t j = 1; j < dim; j++)
          row[j] = (float)(m[j] + s[j] * (z[j] + rho * z[j - 1]) * norm);
      }
    }
    free(z);
  }
  free(mean);
  free(sd);
}

static void free_dataset(dataset *ds) {
  free(ds->x);
  free(ds->labels);
  memset(ds, 0, sizeof *ds);
}

/* Float64 two-pass reference: per class mean, then (1/n) sum (x-mu)(x-mu)^T.
 * Threads split the classes, so no partial matrices are duplicated. */
static void reference_two_pass(const dataset *ds, double *mean, double *cov,
                               double *count) {
  const size_t n = ds->n, D = ds->dim, C = ds->n_classes;
  memset(mean, 0, C * D * sizeof(double));
  memset(cov, 0, C * D * D * sizeof(double));
  memset(count, 0, C * sizeof(double));
#pragma omp parallel
  {
    const size_t tid = (size_t)omp_get_thread_num();
    const size_t nt = (size_t)omp_get_num_threads();
    double *d = malloc(D * sizeof(double));
    for (size_t i = 0; i < n; i++) {
      size_t c = (size_t)ds->labels[i];
      if (c % nt != tid)
        continue;
      const float *row = ds->x + i * D;
      double *m = mean + c * D;
      for (size_t j = 0; j < D; j++)
        m[j] += row[j];
      count[c] += 1.0;
    }
    for (size_t c = tid; c < C; c += nt)
      for (size_t j = 0; j < D; j++)
        mean[c * D + j] /= count[c] > 0 ? count[c] : 1.0;
    for (size_t i = 0; i < n; i++) {
      size_t c = (size_t)ds->labels[i];
      if (c % nt != tid)
        continue;
      const float *row = ds->x + i * D;
      const double *m = mean + c * D;
      double *S = cov + c * D * D;
      for (size_t j = 0; j < D; j++)
        d[j] = (double)row[j] - m[j];
      for (size_t a = 0; a < D; a++) {
        const double da = d[a];
        double *Sa = S + a * D;
        for (size_t b = 0; b <= a; b++)
          Sa[b] += da * d[b];
      }
    }
    for (size_t c = tid; c < C; c += nt) {
      double *S = cov + c * D * D;
      double inv = count[c] > 0 ? 1.0 / count[c] : 0.0;
      for (size_t a = 0; a < D; a++)
        for (size_t b = 0; b <= a; b++) {
          S[a * D + b] *= inv;
          S[b * D + a] = S[a * D + b];
        }
    }
    free(d);
  }
}

/* ------------------------------------------------------------------------ */
/* Machine limits                                                            */
/* ------------------------------------------------------------------------ */

#define FMA_ITERS 12500000L

#if BENCH_X86
__attribute__((target("avx512f"))) static double fma_f32_avx512(long iters) {
  __m512 a = _mm512_set1_ps(0.9999999f), b = _mm512_set1_ps(1e-3f);
  __m512 v[16];
  for (int k = 0; k < 16; k++)
    v[k] = _mm512_set1_ps((float)k);
  for (long i = 0; i < iters; i++)
    for (int k = 0; k < 16; k++)
      v[k] = _mm512_fmadd_ps(v[k], a, b);
  for (int k = 1; k < 16; k++)
    v[0] = _mm512_add_ps(v[0], v[k]);
  return (double)_mm512_reduce_add_ps(v[0]);
}

__attribute__((target("avx512f"))) static double fma_f64_avx512(long iters) {
  __m512d a = _mm512_set1_pd(0.9999999), b = _mm512_set1_pd(1e-3);
  __m512d v[16];
  for (int k = 0; k < 16; k++)
    v[k] = _mm512_set1_pd((double)k);
  for (long i = 0; i < iters; i++)
    for (int k = 0; k < 16; k++)
      v[k] = _mm512_fmadd_pd(v[k], a, b);
  for (int k = 1; k < 16; k++)
    v[0] = _mm512_add_pd(v[0], v[k]);
  return _mm512_reduce_add_pd(v[0]);
}

__attribute__((target("avx2,fma"))) static double fma_f32_avx2(long iters) {
  __m256 a = _mm256_set1_ps(0.9999999f), b = _mm256_set1_ps(1e-3f);
  __m256 v[12];
  for (int k = 0; k < 12; k++)
    v[k] = _mm256_set1_ps((float)k);
  for (long i = 0; i < iters; i++)
    for (int k = 0; k < 12; k++)
      v[k] = _mm256_fmadd_ps(v[k], a, b);
  float t[8];
  for (int k = 1; k < 12; k++)
    v[0] = _mm256_add_ps(v[0], v[k]);
  _mm256_storeu_ps(t, v[0]);
  return (double)(t[0] + t[1] + t[2] + t[3] + t[4] + t[5] + t[6] + t[7]);
}

__attribute__((target("avx2,fma"))) static double fma_f64_avx2(long iters) {
  __m256d a = _mm256_set1_pd(0.9999999), b = _mm256_set1_pd(1e-3);
  __m256d v[12];
  for (int k = 0; k < 12; k++)
    v[k] = _mm256_set1_pd((double)k);
  for (long i = 0; i < iters; i++)
    for (int k = 0; k < 12; k++)
      v[k] = _mm256_fmadd_pd(v[k], a, b);
  double t[4];
  for (int k = 1; k < 12; k++)
    v[0] = _mm256_add_pd(v[0], v[k]);
  _mm256_storeu_pd(t, v[0]);
  return t[0] + t[1] + t[2] + t[3];
}

__attribute__((target("avx512f"))) static double sum_avx512(const float *p,
                                                            size_t n) {
  __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    s0 = _mm512_add_ps(s0, _mm512_loadu_ps(p + i));
    s1 = _mm512_add_ps(s1, _mm512_loadu_ps(p + i + 16));
    s2 = _mm512_add_ps(s2, _mm512_loadu_ps(p + i + 32));
    s3 = _mm512_add_ps(s3, _mm512_loadu_ps(p + i + 48));
  }
  double t = (double)_mm512_reduce_add_ps(
      _mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
  for (; i < n; i++)
    t += p[i];
  return t;
}
#endif

/* Portable fallbacks: 8 independent chains of 8 lanes the compiler may
 * vectorise however the baseline ISA allows. */
static double fma_f32_plain(long iters) {
  float v[64];
  for (int k = 0; k < 64; k++)
    v[k] = (float)k;
  for (long i = 0; i < iters; i++)
    for (int k = 0; k < 64; k++)
      v[k] = fmaf(v[k], 0.9999999f, 1e-3f);
  double t = 0;
  for (int k = 0; k < 64; k++)
    t += v[k];
  return t;
}

static double fma_f64_plain(long iters) {
  double v[32];
  for (int k = 0; k < 32; k++)
    v[k] = (double)k;
  for (long i = 0; i < iters; i++)
    for (int k = 0; k < 32; k++)
      v[k] = fma(v[k], 0.9999999, 1e-3);
  double t = 0;
  for (int k = 0; k < 32; k++)
    t += v[k];
  return t;
}

static double sum_plain(const float *p, size_t n) {
  float s[16] = {0};
  size_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int k = 0; k < 16; k++)
      s[k] += p[i + k];
  double t = 0;
  for (int k = 0; k < 16; k++)
    t += s[k];
  for (; i < n; i++)
    t += p[i];
  return t;
}

typedef enum isa { ISA_PLAIN, ISA_AVX2, ISA_AVX512 } isa;

static isa detect_isa(void) {
#if BENCH_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f"))
    return ISA_AVX512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    return ISA_AVX2;
#endif
  return ISA_PLAIN;
}

static const char *isa_name(isa i) {
  return i == ISA_AVX512 ? "avx512" : i == ISA_AVX2 ? "avx2" : "plain";
}

static volatile double sink;

/* Returns GFLOP/s over all threads; best of `reps`. */
static double measure_fma_peak(isa which, int f64, int reps) {
  double best = 0;
  long iters = FMA_ITERS;
  int chains = 64; /* flops per iteration / 2, per thread */
  if (which == ISA_AVX512)
    chains = 16 * (f64 ? 8 : 16);
  else if (which == ISA_AVX2)
    chains = 12 * (f64 ? 4 : 8);
  else
    chains = f64 ? 32 : 64;
  if (which == ISA_PLAIN)
    iters /= 4;
  for (int rep = 0; rep < reps; rep++) {
    int nt = 1;
    double t0 = omp_get_wtime(), acc = 0;
#pragma omp parallel reduction(+ : acc)
    {
#pragma omp single
      nt = omp_get_num_threads();
#if BENCH_X86
      if (which == ISA_AVX512)
        acc += f64 ? fma_f64_avx512(iters) : fma_f32_avx512(iters);
      else if (which == ISA_AVX2)
        acc += f64 ? fma_f64_avx2(iters) : fma_f32_avx2(iters);
      else
#endif
        acc += f64 ? fma_f64_plain(iters) : fma_f32_plain(iters);
    }
    double dt = omp_get_wtime() - t0;
    sink = acc;
    double gf = 2.0 * (double)chains * (double)iters * nt / dt * 1e-9;
    if (gf > best)
      best = gf;
  }
  return best;
}

/* Stream-read bandwidth in GB/s (1e9 bytes/s) over a buffer of `bytes`. */
static double measure_bandwidth(isa which, size_t bytes, int reps) {
  size_t n = bytes / sizeof(float);
  float *buf = malloc(n * sizeof(float));
  if (!buf)
    return 0;
#pragma omp parallel for schedule(static)
  for (long i = 0; i < (long)n; i++)
    buf[i] = (float)(i & 1023) * 1e-3f;
  double best = 0;
  for (int rep = 0; rep < reps; rep++) {
    double acc = 0, t0 = omp_get_wtime();
#pragma omp parallel reduction(+ : acc)
    {
      size_t nt = (size_t)omp_get_num_threads();
      size_t tid = (size_t)omp_get_thread_num();
      size_t chunk = (n / nt) & ~(size_t)63;
      size_t lo = tid * chunk, hi = tid + 1 == nt ? n : lo + chunk;
#if BENCH_X86
      if (which == ISA_AVX512)
        acc += sum_avx512(buf + lo, hi - lo);
      else
#endif
        acc += sum_plain(buf + lo, hi - lo);
    }
    double dt = omp_get_wtime() - t0;
    sink = acc;
    double gbs = (double)(n * sizeof(float)) / dt * 1e-9;
    if (gbs > best)
      best = gbs;
  }
  free(buf);
  return best;
}

/* ------------------------------------------------------------------------ */
/* Checking scores: a float64 Cholesky reference from the model's own        */
/* parameters.                                                               */
/* ------------------------------------------------------------------------ */

/* In-place lower Cholesky of a D x D row-major matrix; 0 on success. */
static int cholesky(double *A, size_t D) {
  for (size_t j = 0; j < D; j++) {
    double d = A[j * D + j];
    for (size_t k = 0; k < j; k++)
      d -= A[j * D + k] * A[j * D + k];
    if (!(d > 0))
      return -1;
    d = sqrt(d);
    A[j * D + j] = d;
    for (size_t i = j + 1; i < D; i++) {
      double s = A[i * D + j];
      for (size_t k = 0; k < j; k++)
        s -= A[i * D + k] * A[j * D + k];
      A[i * D + j] = s / d;
    }
  }
  return 0;
}

typedef struct score_check {
  double loglik_err;   /* max |gmle - ref| / (1e-5 |ref| + 1e-3 D) */
  double logpost_norm; /* max |logsumexp_c logpost| */
  int ok;
  char why[256];
} score_check;

#define SCORE_CHECK_ROWS 256

static void check_scores(gmle_context *ctx, const gmle_model *m,
                         const dataset *ds, score_check *out) {
  const size_t D = ds->dim, C = ds->n_classes, R = SCORE_CHECK_ROWS;
  double *L = malloc(C * D * D * sizeof(double));
  double *mu = malloc(C * D * sizeof(double));
  double *logdet = malloc(C * sizeof(double));
  double *lp = malloc(C * sizeof(double));
  double *got = malloc(R * C * sizeof(double));
  float *post = malloc(R * C * sizeof(float));
  double *y = malloc(D * sizeof(double));
  memset(out, 0, sizeof *out);
  out->ok = 1;
  if (!L || !mu || !logdet || !lp || !got || !post || !y) {
    out->ok = 0;
    snprintf(out->why, sizeof out->why, "out of memory");
    goto done;
  }
  for (size_t c = 0; c < C; c++) {
    if (gmle_model_mean(m, c, mu + c * D) != GMLE_OK ||
        gmle_model_covariance(m, c, L + c * D * D) != GMLE_OK ||
        cholesky(L + c * D * D, D) != 0) {
      out->ok = 0;
      snprintf(out->why, sizeof out->why,
               "model parameters unreadable or not positive definite");
      goto done;
    }
    double ld = 0;
    for (size_t j = 0; j < D; j++)
      ld += log(L[c * D * D + j * D + j]);
    logdet[c] = 2 * ld;
    double pc;
    gmle_model_prior(m, c, &pc);
    lp[c] = log(pc);
  }
  if (gmle_score(ctx, m, ds->x, GMLE_F32, R, D, GMLE_OUT_LOGLIK, GMLE_F64,
                 got) != GMLE_OK ||
      gmle_score(ctx, m, ds->x, GMLE_F32, R, D, GMLE_OUT_LOGPOST, GMLE_F32,
                 post) != GMLE_OK) {
    out->ok = 0;
    snprintf(out->why, sizeof out->why, "%s", gmle_context_error(ctx));
    goto done;
  }
  const double l2pi = log(6.283185307179586);
  for (size_t i = 0; i < R; i++) {
    const float *row = ds->x + i * D;
    double mx = -INFINITY, se = 0;
    for (size_t c = 0; c < C; c++) {
      const double *Lc = L + c * D * D, *mc = mu + c * D;
      double q = 0;
      for (size_t j = 0; j < D; j++) {
        double s = (double)row[j] - mc[j];
        for (size_t k = 0; k < j; k++)
          s -= Lc[j * D + k] * y[k];
        y[j] = s / Lc[j * D + j];
        q += y[j] * y[j];
      }
      double ref = -0.5 * (D * l2pi + logdet[c] + q);
      double e = fabs(got[i * C + c] - ref) / (1e-5 * fabs(ref) + 1e-3 * D);
      if (!(e <= out->loglik_err))
        out->loglik_err = e; /* NaN propagates as a failure below */
      if (post[i * C + c] > mx)
        mx = post[i * C + c];
    }
    for (size_t c = 0; c < C; c++)
      se += exp((double)post[i * C + c] - mx);
    double norm = fabs(mx + log(se));
    if (!(norm <= out->logpost_norm))
      out->logpost_norm = norm;
  }
  if (!(out->loglik_err <= 1.0)) {
    out->ok = 0;
    snprintf(out->why, sizeof out->why,
             "log-likelihoods differ from the float64 reference");
  } else if (!(out->logpost_norm <= 1e-4)) {
    out->ok = 0;
    snprintf(out->why, sizeof out->why, "log-posteriors do not sum to 1");
  }
done:
  free(L);
  free(mu);
  free(logdet);
  free(lp);
  free(got);
  free(post);
  free(y);
}

/* ------------------------------------------------------------------------ */
/* One shape                                                                 */
/* ------------------------------------------------------------------------ */

typedef struct config {
  double min_time;
  int reps;
  size_t batch;
  int quick;
} config;

typedef struct shape_result {
  size_t D, C;
  gmle_cov_type cov;
  const char *stats_mode;
  const char *score_model; /* "fitted", or "reference" when the fit failed */
  size_t n;
  int fit_ok, score_ok;
  char fit_err[256], score_err[256];
  double fit_mrows, fit_roof, fit_roof_bw, fit_roof_flops;
  double fit_secs;
  int fit_passes;
  double score_mrows, score_roof, score_roof_bw, score_roof_flops;
  double score_secs;
  size_t score_rows;
  double mean_err, cov_err;
  int acc_pass;
  score_check sc;
} shape_result;

/* Rooflines of a shape from the machine's limits: the lower of the
 * stream-read bound and the f32 FMA-peak bound for the useful flops. */
static void set_rooflines(shape_result *res, double bw_gbs,
                          double f32_gflops) {
  const double D = (double)res->D, C = (double)res->C;
  int diag = res->cov == GMLE_COV_DIAG;
  double fit_flops = diag && !strcmp(res->stats_mode, "diag") ? 4.0 * D
                                                              : D * (D + 2);
  res->fit_roof_bw = bw_gbs * 1e9 / (4.0 * D + 4.0) * 1e-6;
  res->fit_roof_flops = f32_gflops * 1e9 / fit_flops * 1e-6;
  res->fit_roof = fmin(res->fit_roof_bw, res->fit_roof_flops);
  double score_flops = diag ? 3.0 * C * D : C * D * (D + 3);
  res->score_roof_bw = bw_gbs * 1e9 / (4.0 * D + 4.0 * C) * 1e-6;
  res->score_roof_flops = f32_gflops * 1e9 / score_flops * 1e-6;
  res->score_roof = fmin(res->score_roof_bw, res->score_roof_flops);
}

static void copy_err(char *dst, gmle_context *ctx, gmle_status s) {
  snprintf(dst, 256, "%s: %s", gmle_status_name(s), gmle_context_error(ctx));
}

/* A model from the reference parameters (used when the fit fails, so that
 * scoring is still measured). */
static gmle_status model_from_reference(gmle_context *ctx, const dataset *ds,
                                        const double *ref_mean,
                                        const double *ref_cov,
                                        const double *ref_count,
                                        gmle_cov_type cov, gmle_model **out) {
  const size_t D = ds->dim, C = ds->n_classes;
  double *covs = malloc((cov == GMLE_COV_DIAG ? C * D : C * D * D) *
                        sizeof(double));
  double *priors = malloc(C * sizeof(double));
  if (!covs || !priors) {
    free(covs);
    free(priors);
    return GMLE_E_OUT_OF_MEMORY;
  }
  double total = 0;
  for (size_t c = 0; c < C; c++)
    total += ref_count[c];
  for (size_t c = 0; c < C; c++) {
    priors[c] = ref_count[c] / total;
    for (size_t a = 0; a < D; a++) {
      if (cov == GMLE_COV_DIAG)
        covs[c * D + a] = ref_cov[c * D * D + a * D + a];
      else
        for (size_t b = 0; b < D; b++)
          covs[c * D * D + a * D + b] = ref_cov[c * D * D + a * D + b];
    }
  }
  gmle_status s = gmle_model_create(ctx, D, C, cov, ref_mean, covs, priors,
                                    ref_count, out);
  free(covs);
  free(priors);
  return s;
}

/* Add the buffer `passes` times in batches, then fit. */
static gmle_status fit_passes(gmle_context *ctx, const dataset *ds,
                              gmle_stats_mode mode, gmle_cov_type cov,
                              int passes, size_t batch, gmle_model **model,
                              double *secs) {
  gmle_stats *st = NULL;
  gmle_status s =
      gmle_stats_create_mode(ctx, ds->dim, ds->n_classes, mode, &st);
  if (s != GMLE_OK)
    return s;
  double t0 = omp_get_wtime();
  for (int p = 0; p < passes && s == GMLE_OK; p++)
    for (size_t off = 0; off < ds->n && s == GMLE_OK; off += batch) {
      size_t rows = ds->n - off < batch ? ds->n - off : batch;
      s = gmle_stats_add(st, ds->x + off * ds->dim, GMLE_F32, rows, ds->dim,
                         ds->labels + off, NULL);
    }
  if (s == GMLE_OK) {
    gmle_fit_options opt;
    gmle_fit_options_init(&opt);
    opt.cov = cov;
    s = gmle_fit(st, &opt, model);
  }
  *secs = omp_get_wtime() - t0;
  gmle_stats_free(st);
  return s;
}

static gmle_status score_rows(gmle_context *ctx, const gmle_model *m,
                              const dataset *ds, size_t total, size_t chunk,
                              float *out, double *secs) {
  gmle_status s = GMLE_OK;
  size_t off = 0, done = 0;
  double t0 = omp_get_wtime();
  while (done < total && s == GMLE_OK) {
    size_t rows = total - done < chunk ? total - done : chunk;
    if (off + rows > ds->n)
      off = 0;
    s = gmle_score(ctx, m, ds->x + off * ds->dim, GMLE_F32, rows, ds->dim,
                   GMLE_OUT_LOGPOST, GMLE_F32, out);
    off += rows;
    done += rows;
  }
  *secs = omp_get_wtime() - t0;
  return s;
}

#define SCORE_OUT_BYTES ((size_t)64 << 20)

/* Time gmle_score(LOGPOST, f32 out) on m; spot-check its accuracy first. */
static void run_score(gmle_context *ctx, const gmle_model *m,
                      const dataset *ds, const config *cfg,
                      shape_result *res) {
  const size_t C = ds->n_classes;
  gmle_status s;
  check_scores(ctx, m, ds, &res->sc);
  size_t chunk = SCORE_OUT_BYTES / (C * sizeof(float));
  if (chunk > ds->n)
    chunk = ds->n;
  float *out = malloc(chunk * C * sizeof(float));
  double dt = 0;
  size_t calib = 1024;
  s = out ? GMLE_OK : GMLE_E_OUT_OF_MEMORY;
  while (s == GMLE_OK) {
    s = score_rows(ctx, m, ds, calib, chunk, out, &dt);
    if (dt >= 0.05 || calib >= ds->n)
      break;
    calib *= 4;
  }
  if (s == GMLE_OK) {
    double rate = (double)calib / (dt > 1e-9 ? dt : 1e-9);
    size_t total = (size_t)(rate * cfg->min_time * 1.1) + 1;
    res->score_rows = total;
    res->score_secs = INFINITY;
    for (int rep = 0; rep < cfg->reps && s == GMLE_OK; rep++) {
      s = score_rows(ctx, m, ds, total, chunk, out, &dt);
      if (s == GMLE_OK && dt < res->score_secs)
        res->score_secs = dt;
    }
  }
  if (s != GMLE_OK) {
    copy_err(res->score_err, ctx, s);
  } else {
    res->score_ok = 1;
    res->score_mrows = (double)res->score_rows / res->score_secs * 1e-6;
  }
  free(out);
}

static void run_shape(gmle_context *ctx, const dataset *ds,
                      const double *ref_mean, const double *ref_cov,
                      const double *ref_count, gmle_cov_type cov, const config *cfg, double bw_gbs,
                      double f32_gflops, shape_result *res) {
  const size_t D = ds->dim, C = ds->n_classes;
  memset(res, 0, sizeof *res);
  res->D = D;
  res->C = C;
  res->cov = cov;
  res->n = ds->n;

  /* Fit: diag fits use diagonal statistics, as a user fitting only diagonal
   * covariances would; fall back to full statistics if not supported. */
  gmle_stats_mode mode =
      cov == GMLE_COV_DIAG ? GMLE_STATS_DIAG : GMLE_STATS_FULL;
  gmle_model *m = NULL;
  double t1 = 0;
  gmle_status s = fit_passes(ctx, ds, mode, cov, 1, cfg->batch, &m, &t1);
  if (s != GMLE_OK && mode == GMLE_STATS_DIAG) {
    mode = GMLE_STATS_FULL;
    s = fit_passes(ctx, ds, mode, cov, 1, cfg->batch, &m, &t1);
  }
  res->stats_mode = mode == GMLE_STATS_DIAG ? "diag" : "full";
  set_rooflines(res, bw_gbs, f32_gflops);
  if (s != GMLE_OK) {
    /* Scoring is measured all the same, on the reference parameters. */
    copy_err(res->fit_err, ctx, s);
    s = model_from_reference(ctx, ds, ref_mean, ref_cov, ref_count, cov, &m);
    if (s != GMLE_OK) {
      copy_err(res->score_err, ctx, s);
      return;
    }
    res->score_model = "reference";
    run_score(ctx, m, ds, cfg, res);
    gmle_model_free(m);
    return;
  }
  res->score_model = "fitted";
  res->fit_ok = 1;

  /* Accuracy of the single-pass fit against the float64 two-pass reference. */
  double *mu = malloc(D * sizeof(double)), *S = malloc(D * D * sizeof(double));
  res->acc_pass = mu && S;
  for (size_t c = 0; c < C && mu && S; c++) {
    if (gmle_model_mean(m, c, mu) != GMLE_OK ||
        gmle_model_covariance(m, c, S) != GMLE_OK) {
      res->acc_pass = 0;
      break;
    }
    const double *rm = ref_mean + c * D, *rS = ref_cov + c * D * D;
    for (size_t j = 0; j < D; j++) {
      double e = fabs(mu[j] - rm[j]) / fabs(rm[j]);
      if (!(e <= res->mean_err))
        res->mean_err = e;
    }
    double num = 0, den = 0;
    for (size_t a = 0; a < D; a++)
      for (size_t b = 0; b < D; b++) {
        if (cov == GMLE_COV_DIAG && a != b)
          continue; /* the diag model's off-diagonal zeros are by design */
        double d = S[a * D + b] - rS[a * D + b];
        num += d * d;
        den += rS[a * D + b] * rS[a * D + b];
      }
    double e = sqrt(num / den);
    if (!(e <= res->cov_err))
      res->cov_err = e;
  }
  free(mu);
  free(S);
  if (!(res->mean_err <= 1e-7) || !(res->cov_err <= 1e-6))
    res->acc_pass = 0;

  /* Timed fit: enough passes over the buffer to last min_time. */
  int passes = (int)ceil(cfg->min_time * 1.1 / (t1 > 1e-6 ? t1 : 1e-6));
  if (passes < 1)
    passes = 1;
  res->fit_passes = passes;
  res->fit_secs = INFINITY;
  for (int rep = 0; rep < cfg->reps && s == GMLE_OK; rep++) {
    gmle_model *mt = NULL;
    double dt = 0;
    s = fit_passes(ctx, ds, mode, cov, passes, cfg->batch, &mt, &dt);
    gmle_model_free(mt);
    if (s == GMLE_OK && dt < res->fit_secs)
      res->fit_secs = dt;
  }
  if (s != GMLE_OK) {
    res->fit_ok = 0;
    copy_err(res->fit_err, ctx, s);
  } else {
    res->fit_mrows = (double)passes * (double)ds->n / res->fit_secs * 1e-6;
  }

  run_score(ctx, m, ds, cfg, res);
  gmle_model_free(m);
}

/* ------------------------------------------------------------------------ */
/* Output                                                                    */
/* ------------------------------------------------------------------------ */

static const char *cov_name(gmle_cov_type c) {
  return c == GMLE_COV_DIAG ? "diag" : "full";
}

static void json_string(FILE *f, const char *s) {
  fputc('"', f);
  for (; s && *s; s++) {
    unsigned char ch = (unsigned char)*s;
    if (ch == '"' || ch == '\\')
      fprintf(f, "\\%c", ch);
    else if (ch < 0x20)
      fprintf(f, "\\u%04x", ch);
    else
      fputc(ch, f);
  }
  fputc('"', f);
}

/* JSON has no NaN/Inf: write null. */
static void json_num(FILE *f, const char *key, double v) {
  if (isfinite(v))
    fprintf(f, ",\"%s\":%.6g", key, v);
  else
    fprintf(f, ",\"%s\":null", key);
}

static void print_result_json(FILE *f, const shape_result *r) {
  fprintf(f, "{\"record\":\"shape\",\"D\":%zu,\"C\":%zu,\"cov\":\"%s\"", r->D,
          r->C, cov_name(r->cov));
  fprintf(f, ",\"stats_mode\":\"%s\",\"n\":%zu", r->stats_mode, r->n);
  fprintf(f, ",\"fit_ok\":%s", r->fit_ok ? "true" : "false");
  json_num(f, "fit_mrows_s", r->fit_ok ? r->fit_mrows : NAN);
  json_num(f, "fit_roofline_mrows_s", r->fit_roof);
  json_num(f, "fit_roofline_bw_mrows_s", r->fit_roof_bw);
  json_num(f, "fit_roofline_flops_mrows_s", r->fit_roof_flops);
  json_num(f, "fit_fraction", r->fit_ok ? r->fit_mrows / r->fit_roof : NAN);
  fprintf(f, ",\"fit_passes\":%d", r->fit_passes);
  json_num(f, "fit_seconds", r->fit_ok ? r->fit_secs : NAN);
  fprintf(f, ",\"fit_error\":");
  json_string(f, r->fit_err);
  fprintf(f, ",\"score_model\":\"%s\"",
          r->score_model ? r->score_model : "none");
  fprintf(f, ",\"score_ok\":%s", r->score_ok ? "true" : "false");
  json_num(f, "score_mrows_s", r->score_ok ? r->score_mrows : NAN);
  json_num(f, "score_roofline_mrows_s", r->score_roof);
  json_num(f, "score_roofline_bw_mrows_s", r->score_roof_bw);
  json_num(f, "score_roofline_flops_mrows_s", r->score_roof_flops);
  json_num(f, "score_fraction",
           r->score_ok ? r->score_mrows / r->score_roof : NAN);
  fprintf(f, ",\"score_rows\":%zu", r->score_rows);
  json_num(f, "score_seconds", r->score_ok ? r->score_secs : NAN);
  fprintf(f, ",\"score_error\":");
  json_string(f, r->score_err);
  json_num(f, "mean_rel_err", r->fit_ok ? r->mean_err : NAN);
  json_num(f, "cov_rel_err", r->fit_ok ? r->cov_err : NAN);
  fprintf(f, ",\"accuracy\":\"%s\"",
          !r->fit_ok ? "SKIP" : r->acc_pass ? "PASS" : "FAIL");
  json_num(f, "score_loglik_err_over_tol", r->sc.loglik_err);
  json_num(f, "score_logpost_norm", r->sc.logpost_norm);
  fprintf(f, ",\"score_check\":\"%s\"}\n",
          !r->score_model ? "SKIP" : r->sc.ok ? "PASS" : "FAIL");
  fflush(f);
}

static void print_header(void) {
  printf("%-5s %-5s %-4s %9s | %9s %9s %6s | %9s %9s %6s | %-4s %-5s\n", "D",
         "C", "cov", "N", "fit", "roof", "frac", "score", "roof", "frac",
         "acc", "score");
  printf("%-5s %-5s %-4s %9s | %9s %9s %6s | %9s %9s %6s | %-4s %-5s\n", "",
         "", "", "", "Mrows/s", "Mrows/s", "", "Mrows/s", "Mrows/s", "",
         "", "check");
  fflush(stdout);
}

static void fmt_rate(char *buf, size_t n, int ok, double v) {
  if (!ok)
    snprintf(buf, n, "n/a");
  else if (v >= 100)
    snprintf(buf, n, "%.1f", v);
  else if (v >= 1)
    snprintf(buf, n, "%.2f", v);
  else
    snprintf(buf, n, "%.4f", v);
}

static void print_result_row(const shape_result *r) {
  char a[32], b[32], c[32], d[32], e[32], f[32];
  fmt_rate(a, sizeof a, r->fit_ok, r->fit_mrows);
  fmt_rate(b, sizeof b, 1, r->fit_roof);
  if (r->fit_ok)
    snprintf(c, sizeof c, "%.1f%%", 100 * r->fit_mrows / r->fit_roof);
  else
    snprintf(c, sizeof c, "n/a");
  fmt_rate(d, sizeof d, r->score_ok, r->score_mrows);
  fmt_rate(e, sizeof e, 1, r->score_roof);
  if (r->score_ok)
    snprintf(f, sizeof f, "%.1f%%", 100 * r->score_mrows / r->score_roof);
  else
    snprintf(f, sizeof f, "n/a");
  printf("%-5zu %-5zu %-4s %9zu | %9s %9s %6s | %9s %9s %6s | %-4s %-5s\n",
         r->D, r->C, cov_name(r->cov), r->n, a, b, c, d, e, f,
         !r->fit_ok ? "SKIP" : r->acc_pass ? "PASS" : "FAIL",
         !r->score_model ? "SKIP" : r->sc.ok ? "PASS" : "FAIL");
  if (r->fit_ok)
    printf("      fit: mean err %.2e, cov err %.2e, stats %s, %d passes\n",
           r->mean_err, r->cov_err, r->stats_mode, r->fit_passes);
  else
    printf("      fit failed: %s\n", r->fit_err);
  if (r->score_model)
    printf("      score (%s model): loglik err/tol %.2g, |logsumexp| %.2g%s%s\n",
           r->score_model, r->sc.loglik_err, r->sc.logpost_norm,
           r->sc.ok ? "" : " -- ", r->sc.ok ? "" : r->sc.why);
  if (!r->score_ok)
    printf("      score failed: %s\n", r->score_err);
  fflush(stdout);
}

/* ------------------------------------------------------------------------ */
/* main                                                                      */
/* ------------------------------------------------------------------------ */

typedef struct shape_spec {
  size_t D, C;
  gmle_cov_type cov;
} shape_spec;

static size_t rows_for_dim(size_t D, int quick) {
  /* Buffers of 200-512 MB: far larger than L3, so every pass streams from
   * memory. */
  size_t n = D <= 16 ? 4000000 : D <= 64 ? 2000000 : 1000000;
  return quick ? n / 8 : n;
}

static void usage(void) {
  fprintf(stderr,
          "usage: bench_cpu [--quick] [--limits-only] [--min-time S] "
          "[--reps K]\n"
          "                 [--batch ROWS] [--only D:C:cov[,...]] "
          "[--json PATH] [--no-limits]\n");
}

int main(int argc, char **argv) {
  config cfg = {0.3, 3, (size_t)1 << 16, 0};
  const char *json_path = NULL, *only = NULL;
  int limits_only = 0, no_limits = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--quick")) {
      cfg.quick = 1;
      cfg.min_time = 0.05;
      cfg.reps = 1;
    } else if (!strcmp(argv[i], "--limits-only")) {
      limits_only = 1;
    } else if (!strcmp(argv[i], "--no-limits")) {
      no_limits = 1; /* for profiling: no rooflines */
    } else if (!strcmp(argv[i], "--min-time") && i + 1 < argc) {
      cfg.min_time = atof(argv[++i]);
    } else if (!strcmp(argv[i], "--reps") && i + 1 < argc) {
      cfg.reps = atoi(argv[++i]);
    } else if (!strcmp(argv[i], "--batch") && i + 1 < argc) {
      cfg.batch = (size_t)strtoull(argv[++i], NULL, 10);
    } else if (!strcmp(argv[i], "--json") && i + 1 < argc) {
      json_path = argv[++i];
    } else if (!strcmp(argv[i], "--only") && i + 1 < argc) {
      only = argv[++i];
    } else {
      usage();
      return 2;
    }
  }
  if (cfg.reps < 1 || cfg.batch < 1 || !(cfg.min_time > 0)) {
    usage();
    return 2;
  }
  FILE *jf = NULL;
  if (json_path) {
    jf = fopen(json_path, "w");
    if (!jf) {
      fprintf(stderr, "bench_cpu: cannot write %s\n", json_path);
      return 2;
    }
  }

  /* Machine limits, measured at the start and again at the end (the machine
   * is often shared); the final table uses the best of the two. */
  isa which = detect_isa();
  int nthreads = omp_get_max_threads();
  size_t bw_bytes = cfg.quick ? (size_t)256 << 20 : (size_t)1 << 30;
  double bw = NAN, f32 = NAN, f64 = NAN;
  if (!no_limits) {
    bw = measure_bandwidth(which, bw_bytes, cfg.quick ? 4 : 10);
    f32 = measure_fma_peak(which, 0, cfg.quick ? 5 : 20);
    f64 = measure_fma_peak(which, 1, cfg.quick ? 5 : 20);
  }
  gmle_context *ctx = NULL;
  /* The CPU backend unless GMLE_BACKEND names another (e.g. opencl, to
   * measure OpenCL on PoCL beside the CPU backend on the same shapes). */
  gmle_backend backend = GMLE_BACKEND_CPU;
  const char *env_backend = getenv("GMLE_BACKEND");
  if (env_backend && *env_backend &&
      gmle_backend_parse(env_backend, &backend) != GMLE_OK) {
    fprintf(stderr, "bench_cpu: GMLE_BACKEND=%s is not a backend\n",
            env_backend);
    return 2;
  }
  gmle_status s = gmle_context_create(backend, -1, &ctx);
  printf("gmle %s, backend: %s\n", gmle_version_string(),
         s == GMLE_OK ? gmle_context_device_name(ctx) : "(unavailable)");
  printf("machine limits (%d threads, %s): stream read %.1f GB/s over %zu "
         "MiB; FMA peak f32 %.1f GFLOP/s, f64 %.1f GFLOP/s\n",
         nthreads, isa_name(which), bw, bw_bytes >> 20, f32, f64);
  fflush(stdout);
  if (s != GMLE_OK) {
    fprintf(stderr, "bench_cpu: no CPU context: %s: %s\n",
            gmle_status_name(s), gmle_context_error(ctx));
    gmle_context_free(ctx);
    if (jf)
      fclose(jf);
    return 2;
  }

  static const size_t dims[] = {13, 40, 128};
  static const size_t classes[] = {10, 1000};
  static const gmle_cov_type covs[] = {GMLE_COV_FULL, GMLE_COV_DIAG};
  shape_result results[12];
  size_t n_results = 0;
  if (!limits_only) {
    printf("fit = gmle_stats_add (batches of %zu rows) + gmle_fit; score = "
           "gmle_score LOGPOST, f32 in/out; best of %d, >= %.2f s each\n",
           cfg.batch, cfg.reps, cfg.min_time);
    printf("(rooflines here from the first limits; final table below)\n");
    print_header();
  }
  for (size_t di = 0; di < 3 && !limits_only; di++)
    for (size_t ci = 0; ci < 2; ci++) {
      size_t D = dims[di], C = classes[ci];
      int want[2] = {1, 1};
      if (only) {
        char tag[64];
        for (int k = 0; k < 2; k++) {
          snprintf(tag, sizeof tag, "%zu:%zu:%s", D, C, cov_name(covs[k]));
          want[k] = 0;
          for (const char *p = strstr(only, tag); p; p = strstr(p + 1, tag))
            if ((p == only || p[-1] == ',') &&
                (p[strlen(tag)] == '\0' || p[strlen(tag)] == ',')) {
              want[k] = 1;
              break;
            }
        }
      }
      if (!want[0] && !want[1])
        continue;
      dataset ds;
      gen_dataset(&ds, rows_for_dim(D, cfg.quick), D, C,
                  1000 * (uint64_t)D + C);
      double *rmean = malloc(C * D * sizeof(double));
      double *rcov = malloc(C * D * D * sizeof(double));
      double *rcount = malloc(C * sizeof(double));
      if (!rmean || !rcov || !rcount) {
        fprintf(stderr, "bench_cpu: out of memory for the reference\n");
        return 2;
      }
      reference_two_pass(&ds, rmean, rcov, rcount);
      for (int k = 0; k < 2; k++) {
        if (!want[k])
          continue;
        shape_result *r = &results[n_results++];
        run_shape(ctx, &ds, rmean, rcov, rcount, covs[k], &cfg, bw, f32, r);
        print_result_row(r);
      }
      free(rmean);
      free(rcov);
      free(rcount);
      free_dataset(&ds);
    }

  double bw_end = NAN, f32_end = NAN, f64_end = NAN;
  if (!no_limits) {
    bw_end = measure_bandwidth(which, bw_bytes, cfg.quick ? 4 : 10);
    f32_end = measure_fma_peak(which, 0, cfg.quick ? 5 : 20);
    f64_end = measure_fma_peak(which, 1, cfg.quick ? 5 : 20);
  }
  double bw_best = fmax(bw, bw_end), f32_best = fmax(f32, f32_end);
  double f64_best = fmax(f64, f64_end);
  printf("\nmachine limits again at the end: stream read %.1f GB/s; FMA peak "
         "f32 %.1f GFLOP/s, f64 %.1f GFLOP/s\n",
         bw_end, f32_end, f64_end);
  printf("best of both (used below): stream read %.1f GB/s; FMA peak f32 "
         "%.1f GFLOP/s, f64 %.1f GFLOP/s\n",
         bw_best, f32_best, f64_best);
  if (jf && !no_limits) {
    fprintf(jf,
            "{\"record\":\"limits\",\"threads\":%d,\"isa\":\"%s\","
            "\"bandwidth_gbs\":%.4g,\"f32_gflops\":%.4g,\"f64_gflops\":%.4g,"
            "\"start\":{\"bandwidth_gbs\":%.4g,\"f32_gflops\":%.4g,"
            "\"f64_gflops\":%.4g},\"end\":{\"bandwidth_gbs\":%.4g,"
            "\"f32_gflops\":%.4g,\"f64_gflops\":%.4g},"
            "\"bandwidth_buffer_mib\":%zu,\"gmle_version\":",
            nthreads, isa_name(which), bw_best, f32_best, f64_best, bw, f32,
            f64, bw_end, f32_end, f64_end, bw_bytes >> 20);
    json_string(jf, gmle_version_string());
    fprintf(jf, ",\"device\":");
    json_string(jf, gmle_context_device_name(ctx));
    fprintf(jf, ",\"quick\":%s,\"min_time\":%g,\"reps\":%d,\"batch\":%zu}\n",
            cfg.quick ? "true" : "false", cfg.min_time, cfg.reps, cfg.batch);
  }

  int n_pass = 0, n_fail = 0, n_skip = 0;
  if (n_results) {
    printf("\n");
    print_header();
  }
  for (size_t i = 0; i < n_results; i++) {
    shape_result *r = &results[i];
    set_rooflines(r, bw_best, f32_best);
    print_result_row(r);
    if (jf)
      print_result_json(jf, r);
    if ((r->fit_ok && !r->acc_pass) || (r->score_model && !r->sc.ok))
      n_fail++;
    else if (r->fit_ok && r->score_ok)
      n_pass++;
    else
      n_skip++;
  }
  if (!limits_only)
    printf("accuracy: %s (%d shapes passed, %d failed, %d not fully run)\n",
           n_fail ? "FAIL" : n_pass ? "PASS" : "NOT RUN", n_pass, n_fail,
           n_skip);
  gmle_context_free(ctx);
  if (jf)
    fclose(jf);
  return n_fail ? 1 : 0;
}
