/* test_cuda_em.c -- EM's responsibility-weighted statistics on the CUDA
 * backend (the module's accumulate_resp, ABI 4.1; docs/MIXTURES.md).
 *
 * Everywhere: the CPU backend's EM statistics, which the CUDA backend is
 * compared with, against an independent long double reference (1e-12).
 * Without a GPU, in every CUDA build, through stand-in modules
 * (tests/cuda_fake_module.c: host loops, scoring sent to the host
 * fallback), selected by GMLE_TEST_FAKE_MODULE:
 *   resp      (test_cuda_em.fake_module): the loader forwards
 *             accumulate_resp and translates its views: EM statistics
 *             (diag and full, float64 and float32, one and two classes,
 *             weighted) and a five-iteration gmle_em_fit equal the CPU
 *             backend's (1e-12), and the entry was called;
 *   fallback  (test_cuda_em.fake_module_4_0): an ABI 4.0 module, whose table
 *             ends before the entry, is accepted; the loader never calls
 *             the entry and the core's fallback gives the same numbers.
 * With a GPU (tests/gpu/check.sh; GMLE_REQUIRE_GPU=1 there makes a missing
 * context a failure): EM statistics against the CPU's within 1e-10 and
 * bit-identical on repeat (the E-step scores on the device, within its
 * documented bound, so not to the last bit of the CPU); gmle_em_fit of 4
 * components, diag and full, 5 iterations from a given start with tol 0,
 * within 1e-9 relative of the CPU's parameters; fault sweeps over every
 * call of one gmle_em_stats_add (errors at every site, out-of-memory at
 * every allocation): a failed call leaves the statistics unchanged and the
 * context goes on, bit for bit as undisturbed; a call that recovers from an
 * out-of-memory is within 1e-12 (its scoring may change tiles). */
#define _POSIX_C_SOURCE 200809L /* unsetenv */
#include "check.h"
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static gmle_context *context_on(gmle_backend b) {
  gmle_context *ctx = NULL;
  if (gmle_context_create(b, -1, &ctx) != GMLE_OK) {
    printf("  %s context: %s\n", gmle_backend_name(b), gmle_context_error(ctx));
    gmle_context_free(ctx);
    return NULL;
  }
  return ctx;
}

/* ---- data and starts ---------------------------------------------------- */

#define N_CLUSTERS 4

/* The shape of a case, for tables. */
typedef struct em_cfg {
  size_t n, D, C, K;
  gmle_cov_type cov;
  gmle_dtype dtype;
  double offset;
  int weighted;
} em_cfg;

/* The rows of one case: N_CLUSTERS Gaussians (tu_dataset_make's classes)
 * around `offset`, classes c = cluster % C. */
typedef struct em_case {
  em_cfg c;
  tu_dataset ds;
  int32_t *labels; /* [n] class of each row; NULL for one class */
} em_case;

static int case_make(em_case *e, uint64_t seed) {
  e->labels = NULL;
  if (tu_dataset_make(&e->ds, seed, e->c.n, e->c.D, N_CLUSTERS, e->c.dtype,
                      e->c.D, e->c.offset, e->c.weighted) != 0)
    return -1;
  if (e->c.C > 1) {
    e->labels = malloc(e->c.n * sizeof *e->labels);
    if (!e->labels)
      return -1;
    for (size_t r = 0; r < e->c.n; r++)
      e->labels[r] = e->ds.labels[r] % (int32_t)e->c.C;
  }
  return 0;
}

static void case_free(em_case *e) {
  tu_dataset_free(&e->ds);
  free(e->labels);
}

/* The start on ctx: equal weights, identity covariances, and as the mean
 * of class c's component k the first row of class c from row k n / K on. */
static gmle_model *case_start(const em_case *e, gmle_context *ctx) {
  const size_t D = e->c.D, C = e->c.C, K = e->c.K, G = C * K;
  const size_t cl = e->c.cov == GMLE_COV_FULL        ? D * D
                    : e->c.cov == GMLE_COV_DIAG      ? D
                    : e->c.cov == GMLE_COV_SPHERICAL ? 1
                                                     : 0;
  const size_t n_cov = e->c.cov == GMLE_COV_TIED ? C * D * D : G * cl;
  double *w = malloc(G * sizeof *w), *mu = malloc(G * D * sizeof *mu);
  double *cv = calloc(n_cov, sizeof *cv);
  gmle_model *m = NULL;
  if (w && mu && cv) {
    for (size_t g = 0; g < G; g++) {
      w[g] = 1.0 / (double)K;
      size_t r = g % K * e->c.n / K;
      while (e->labels && (size_t)e->labels[r] != g / K)
        r = (r + 1) % e->c.n;
      for (size_t j = 0; j < D; j++)
        mu[g * D + j] = tu_get(e->ds.x, e->c.dtype, e->c.D, r, j);
    }
    const size_t blocks = e->c.cov == GMLE_COV_TIED ? C : G;
    const size_t side = e->c.cov == GMLE_COV_FULL || e->c.cov == GMLE_COV_TIED;
    for (size_t b = 0; b < blocks; b++)
      for (size_t j = 0; j < (cl == 1 ? 1 : D); j++)
        cv[b * (side ? D * D : cl) + (side ? j * D + j : j)] = 1.0;
    if (gmle_mixture_create(ctx, D, C, K, e->c.cov, w, mu, cv, NULL, NULL,
                            &m) != GMLE_OK)
      printf("  gmle_mixture_create: %s\n", gmle_context_error(ctx));
  }
  free(w);
  free(mu);
  free(cv);
  return m;
}

/* Rows [r0, r0 + n) of the case into es. */
static gmle_status case_add(gmle_em_stats *es, const em_case *e, size_t r0,
                            size_t n) {
  return gmle_em_stats_add(es, tu_dataset_row(&e->ds, r0), e->c.dtype, n,
                           e->c.D, e->labels ? e->labels + r0 : NULL,
                           e->c.weighted ? e->ds.weights + r0 : NULL);
}

/* The case's rows into es in uneven batches. */
static gmle_status case_add_all(gmle_em_stats *es, const em_case *e) {
  const size_t sizes[] = {1, e->c.n / 3, 7};
  size_t r = 0;
  for (size_t i = 0; i < 3 && r < e->c.n; i++) {
    const size_t k = sizes[i] < e->c.n - r ? sizes[i] : e->c.n - r;
    GMLE_TRY(case_add(es, e, r, k));
    r += k;
  }
  return r < e->c.n ? case_add(es, e, r, e->c.n - r) : GMLE_OK;
}

/* ---- comparisons -------------------------------------------------------- */

/* Largest scaled difference of component statistics a from reference
 * arrays around the same shifts (weight [G], rows [G], sum [G*D], gram
 * [G*gram_len], a's layout): weights relative, sums relative to
 * sqrt(n_g S_jj), Gram entries to sqrt(S_ii S_jj); row counts equal
 * (exact_rows) or within a thousandth of all rows. */
static double stats_vs(const gmle_stats *a, const double *weight,
                       const uint64_t *rows, const double *sum,
                       const double *gram, int exact_rows) {
  const size_t D = a->dim, G = a->n_classes, L = a->gram_len;
  const int diag = a->mode == GMLE_STATS_DIAG;
  double worst = 0;
  uint64_t all = 0;
  for (size_t g = 0; g < G; g++)
    all += rows[g];
  for (size_t g = 0; g < G; g++) {
    const uint64_t ra = a->rows[g], rb = rows[g];
    if (exact_rows ? ra != rb : (ra > rb ? ra - rb : rb - ra) > all / 1000)
      return INFINITY;
    const double n = weight[g];
    if (n == 0 && a->weight[g] == 0)
      continue;
    double e = fabs(a->weight[g] - n) / n;
    const double *ga = a->gram + g * L, *gb = gram + g * L;
    for (size_t i = 0; i < D; i++) {
      const double sii = gb[diag ? i : i * D + i];
      const double es =
          fabs(a->sum[g * D + i] - sum[g * D + i]) / (sqrt(n * sii) + 1e-300);
      e = es > e ? es : e;
      for (size_t j = 0; j <= (diag ? 0 : i); j++) {
        const size_t ij = diag ? i : i * D + j;
        const double sjj = gb[diag ? i : j * D + j];
        const double eg = fabs(ga[ij] - gb[ij]) / (sqrt(sii * sjj) + 1e-300);
        e = eg > e ? eg : e;
      }
    }
    worst = e > worst ? e : worst;
  }
  return worst;
}

/* The EM statistics of a one-class case from its start (case_start:
 * equal weights, identity covariances) in long double, independent of
 * gmle: each row's responsibilities from tu_logpdf by log-sum-exp, times
 * its weight, then weights, row counts, sums and Gram matrices around the
 * start's means, into arrays laid out as st's. 0 on success. */
static int reference_stats(const em_case *e, const gmle_model *start,
                           const gmle_stats *st, double *weight, uint64_t *rows,
                           double *sum, double *gram) {
  const size_t D = e->c.D, K = e->c.K, L = st->gram_len;
  const int diag = st->mode == GMLE_STATS_DIAG;
  double *mu = malloc(K * D * sizeof *mu), *eye = calloc(D * D, sizeof *eye);
  double *x = malloc(D * sizeof *x);
  long double *acc = calloc(K * (1 + D + L), sizeof *acc);
  long double *lp = malloc(K * sizeof *lp);
  int rc = mu && eye && x && acc && lp &&
                   gmle_mixture_params(start, NULL, mu, NULL) == GMLE_OK
               ? 0
               : -1;
  for (size_t j = 0; rc == 0 && j < D; j++)
    eye[j * D + j] = 1.0;
  memset(rows, 0, K * sizeof *rows);
  for (size_t r = 0; rc == 0 && r < e->c.n; r++) {
    for (size_t j = 0; j < D; j++)
      x[j] = tu_get(e->ds.x, e->c.dtype, e->c.D, r, j);
    for (size_t k = 0; k < K; k++)
      lp[k] = logl(1.0L / (long double)K) + tu_logpdf(D, x, mu + k * D, eye);
    const long double l = tu_logsumexp(lp, K);
    const long double w = e->c.weighted ? e->ds.weights[r] : 1.0L;
    for (size_t k = 0; k < K; k++) {
      const long double v = w * expl(lp[k] - l);
      long double *a = acc + k * (1 + D + L);
      rows[k] += v > 0;
      a[0] += v;
      for (size_t i = 0; i < D; i++) {
        const long double di = (long double)x[i] - mu[k * D + i];
        a[1 + i] += v * di;
        for (size_t j = 0; j <= (diag ? 0 : i); j++)
          a[1 + D + (diag ? i : i * D + j)] +=
              v * di *
              ((long double)x[diag ? i : j] - mu[k * D + (diag ? i : j)]);
      }
    }
  }
  for (size_t k = 0; rc == 0 && k < K; k++) {
    const long double *a = acc + k * (1 + D + L);
    weight[k] = (double)a[0];
    for (size_t i = 0; i < D; i++)
      sum[k * D + i] = (double)a[1 + i];
    for (size_t i = 0; i < L; i++)
      gram[k * L + i] = (double)a[1 + D + i];
  }
  free(mu);
  free(eye);
  free(x);
  free(acc);
  free(lp);
  return rc;
}

/* ---- everywhere --------------------------------------------------------- */

/* The CPU backend's EM statistics, which the CUDA backend is compared
 * with below, against the long double reference. */
TEST(cpu_em_statistics_match_long_double_reference) {
  static const em_cfg ref_cases[] = {
      {2000, 4, 1, 3, GMLE_COV_DIAG, GMLE_F64, 10, 1},
      {2000, 4, 1, 3, GMLE_COV_FULL, GMLE_F32, 1000, 0},
      {2000, 5, 1, 4, GMLE_COV_SPHERICAL, GMLE_F32, 0, 1},
  };
  gmle_context *cpu = context_on(GMLE_BACKEND_CPU);
  CHECK(cpu != NULL);
  for (size_t i = 0; cpu && i < sizeof ref_cases / sizeof ref_cases[0]; i++) {
    em_case e = {.c = ref_cases[i]};
    gmle_model *m = NULL;
    gmle_em_stats *es = NULL;
    const size_t K = e.c.K, D = e.c.D;
    double *buf = malloc(K * (1 + D + D * D) * sizeof *buf);
    uint64_t *rows = malloc(K * sizeof *rows);
    if (buf && rows && case_make(&e, 20 + i) == 0 &&
        (m = case_start(&e, cpu)) != NULL &&
        gmle_em_stats_create(cpu, m, NULL, &es) == GMLE_OK) {
      CHECK_STATUS(case_add_all(es, &e), GMLE_OK);
      const gmle_stats *st = gmle_em_stats_components(es);
      double *sum = buf + K, *gram = sum + K * D;
      CHECK(reference_stats(&e, m, st, buf, rows, sum, gram) == 0);
      const double d = stats_vs(st, buf, rows, sum, gram, 1);
      printf("  %s: %.3g from the reference\n", gmle_cov_name(e.c.cov), d);
      CHECK_MSG(d <= 1e-12, "case %zu: %.3g from the reference", i, d);
    } else {
      CHECK(!"setup");
    }
    gmle_em_stats_free(es);
    gmle_model_free(m);
    free(buf);
    free(rows);
    case_free(&e);
  }
  gmle_context_free(cpu);
}

#ifdef GMLE_TEST_CUDA
#include "cuda_testing.h"

static const char *fake; /* GMLE_TEST_FAKE_MODULE, or NULL */
static int have_gpu;     /* a real CUDA context opens */

/* stats_vs of two EM statistics (INFINITY when the shapes differ). */
static double em_stats_diff(const gmle_em_stats *ea, const gmle_em_stats *eb,
                            int exact_rows) {
  const gmle_stats *a = gmle_em_stats_components(ea);
  const gmle_stats *b = gmle_em_stats_components(eb);
  if (!a || !b || a->dim != b->dim || a->n_classes != b->n_classes ||
      a->mode != b->mode)
    return INFINITY;
  return stats_vs(a, b->weight, b->rows, b->sum, b->gram, exact_rows);
}

/* EM statistics of the case from its start on two contexts; the
 * difference (INFINITY on any failure). */
static double compare_stats(const em_case *e, gmle_context *dev,
                            gmle_context *cpu, int exact_rows,
                            int check_repeat) {
  gmle_model *md = case_start(e, dev), *mc = case_start(e, cpu);
  gmle_em_stats *sd = NULL, *sc = NULL, *sd2 = NULL;
  double diff = INFINITY;
  if (md && mc && gmle_em_stats_create(dev, md, NULL, &sd) == GMLE_OK &&
      gmle_em_stats_create(cpu, mc, NULL, &sc) == GMLE_OK &&
      gmle_em_stats_create(dev, md, NULL, &sd2) == GMLE_OK) {
    const gmle_status s1 = case_add_all(sd, e), s2 = case_add_all(sc, e);
    const gmle_status s3 = check_repeat ? case_add_all(sd2, e) : GMLE_OK;
    CHECK_MSG(s1 == GMLE_OK && s2 == GMLE_OK && s3 == GMLE_OK, "%s / %s",
              gmle_context_error(dev), gmle_context_error(cpu));
    if (s1 == GMLE_OK && s2 == GMLE_OK)
      diff = em_stats_diff(sd, sc, exact_rows);
    if (check_repeat && s1 == GMLE_OK && s3 == GMLE_OK)
      CHECK_MSG(tu_stats_raw_equal(gmle_em_stats_components(sd),
                                   gmle_em_stats_components(sd2)),
                "repeated EM statistics differ");
  }
  gmle_em_stats_free(sd);
  gmle_em_stats_free(sd2);
  gmle_em_stats_free(sc);
  gmle_model_free(md);
  gmle_model_free(mc);
  return diff;
}

/* A batch source over the case, in batches of 7000 rows. */
typedef struct case_src {
  const em_case *e;
  size_t next;
} case_src;

static gmle_status src_rewind(void *user) {
  ((case_src *)user)->next = 0;
  return GMLE_OK;
}

static gmle_status src_next(void *user, const void **x, gmle_dtype *dtype,
                            size_t *n_rows, size_t *row_stride,
                            const int32_t **labels, const double **weights) {
  case_src *s = user;
  const em_case *e = s->e;
  const size_t r0 = s->next, n = e->c.n - r0 < 7000 ? e->c.n - r0 : 7000;
  *x = tu_dataset_row(&e->ds, r0);
  *dtype = e->c.dtype;
  *n_rows = n;
  *row_stride = e->c.D;
  *labels = e->labels ? e->labels + r0 : NULL;
  *weights = e->c.weighted ? e->ds.weights + r0 : NULL;
  s->next += n;
  return GMLE_OK;
}

/* gmle_em_fit of the case from its start, iters iterations, tol 0. */
static gmle_model *case_fit(const em_case *e, gmle_context *ctx, size_t iters) {
  gmle_model *start = case_start(e, ctx), *m = NULL;
  case_src cs = {e, 0};
  const gmle_batch_source src = {&cs, src_rewind, src_next};
  gmle_em_options opt;
  gmle_em_options_init(&opt);
  opt.n_components = e->c.K;
  opt.cov = e->c.cov;
  opt.init = GMLE_INIT_MODEL;
  opt.init_model = start;
  opt.max_iter = iters;
  opt.tol = 0;
  if (start) {
    const gmle_status s = gmle_em_fit(ctx, e->c.D, e->c.C, &src, &opt, &m);
    CHECK_MSG(s == GMLE_OK, "gmle_em_fit on %s: %s",
              gmle_backend_name(gmle_context_backend(ctx)),
              gmle_context_error(ctx));
  }
  gmle_model_free(start);
  return m;
}

/* Relative Frobenius differences of two mixtures' weights, means and
 * covariances (the largest of the three; INFINITY on failure). */
static double params_diff(const gmle_model *a, const gmle_model *b,
                          const em_case *e) {
  const size_t D = e->c.D, G = e->c.C * e->c.K;
  const size_t nc = e->c.cov == GMLE_COV_FULL        ? G * D * D
                    : e->c.cov == GMLE_COV_DIAG      ? G * D
                    : e->c.cov == GMLE_COV_SPHERICAL ? G
                                                     : e->c.C * D * D;
  double *p = malloc(2 * (G + G * D + nc) * sizeof *p);
  double worst = INFINITY;
  if (p && a && b) {
    double *wa = p, *ma = wa + G, *ca = ma + G * D;
    double *wb = ca + nc, *mb = wb + G, *cb = mb + G * D;
    if (gmle_mixture_params(a, wa, ma, ca) == GMLE_OK &&
        gmle_mixture_params(b, wb, mb, cb) == GMLE_OK) {
      const double dw = tu_rel_frobenius(wa, wb, G);
      const double dm = tu_rel_frobenius(ma, mb, G * D);
      const double dc = tu_rel_frobenius(ca, cb, nc);
      worst = dw > dm ? dw : dm;
      worst = dc > worst ? dc : worst;
    }
  }
  free(p);
  return worst;
}

static const char *case_name(const em_case *e, char *buf, size_t len) {
  snprintf(buf, len, "%s K%zu D%zu C%zu n%zu %s offset %g%s",
           gmle_cov_name(e->c.cov), e->c.K, e->c.D, e->c.C, e->c.n,
           e->c.dtype == GMLE_F32 ? "f32" : "f64", e->c.offset,
           e->c.weighted ? " weighted" : "");
  return buf;
}

/* The cases both the stand-in and the GPU run. */
static const em_cfg cases[] = {
    /* n, D, C, K, covariance, rows, offset, weighted */
    {3000, 5, 1, 4, GMLE_COV_DIAG, GMLE_F64, 10, 0},
    {3000, 5, 1, 4, GMLE_COV_FULL, GMLE_F64, 10, 0},
    {4000, 7, 2, 3, GMLE_COV_FULL, GMLE_F64, 1000, 1},
    {4000, 7, 2, 3, GMLE_COV_SPHERICAL, GMLE_F32, 0, 0},
    {2500, 3, 2, 2, GMLE_COV_TIED, GMLE_F64, 0, 1},
};
#define N_CASES (sizeof cases / sizeof cases[0])

/* Every case of a table (seeds seed, seed + 1, ...) on dev against the
 * CPU: EM statistics within tol (row counts exact with exact_rows;
 * repeated runs bit-identical with repeat), and with fits 5 iterations of
 * gmle_em_fit within tol too. */
static void check_cases(gmle_context *dev, gmle_context *cpu,
                        const em_cfg *table, size_t count, uint64_t seed,
                        double tol, int exact_rows, int repeat, int fits) {
  for (size_t i = 0; i < count; i++) {
    em_case e = {.c = table[i]};
    char name[160];
    if (case_make(&e, seed + i) != 0) {
      CHECK(!"case_make");
      continue;
    }
    case_name(&e, name, sizeof name);
    const double d = compare_stats(&e, dev, cpu, exact_rows, repeat);
    CHECK_MSG(d <= tol, "%s: EM statistics differ by %.3g", name, d);
    if (fits) {
      gmle_model *a = case_fit(&e, dev, 5), *b = case_fit(&e, cpu, 5);
      const double p = params_diff(a, b, &e);
      printf("  %s: %s vs CPU after 5 iterations: %.3g\n", name,
             gmle_backend_name(gmle_context_backend(dev)), p);
      CHECK_MSG(p <= tol, "%s: 5 iterations differ by %.3g", name, p);
      gmle_model_free(a);
      gmle_model_free(b);
    }
    case_free(&e);
  }
}

/* ---- without a GPU: the stand-in modules -------------------------------- */

static void fake_module_run(int expect_resp) {
  gmle_context *dev = context_on(GMLE_BACKEND_CUDA);
  gmle_context *cpu = context_on(GMLE_BACKEND_CPU);
  CHECK(dev && cpu);
  if (dev && cpu) {
    CHECK_MSG(strstr(gmle_context_device_name(dev), "fake CUDA module"), "%s",
              gmle_context_device_name(dev));
    check_cases(dev, cpu, cases, N_CASES, 40, 1e-12, 1, 1, 1);
    const long calls = gmle__cuda_call_count(dev);
    CHECK_MSG(expect_resp ? calls > 0 : calls == 0,
              "the module's accumulate_resp was called %ld times", calls);
  }
  gmle_context_free(dev);
  gmle_context_free(cpu);
}

TEST(fake_module_accumulate_resp_is_forwarded) {
  if (fake && strcmp(fake, "resp") == 0)
    fake_module_run(1);
}

TEST(fake_module_of_abi_4_0_is_served_by_the_fallback) {
  if (fake && strcmp(fake, "fallback") == 0)
    fake_module_run(0);
}

/* ---- with a GPU --------------------------------------------------------- */

TEST(gpu_em_statistics_match_cpu_and_repeat_bitwise) {
  if (!have_gpu)
    return;
  gmle_context *gpu = context_on(GMLE_BACKEND_CUDA);
  gmle_context *cpu = context_on(GMLE_BACKEND_CPU);
  CHECK(gpu && cpu);
  if (gpu && cpu)
    check_cases(gpu, cpu, cases, N_CASES, 40, 1e-10, 0, 1, 0);
  /* Several blocks and passes per call (65536 rows a call: the core's
   * chunk), wide rows, many components. */
  static const em_cfg big[] = {
      {150000, 40, 1, 16, GMLE_COV_FULL, GMLE_F32, 100, 0},
      {150000, 40, 1, 64, GMLE_COV_DIAG, GMLE_F32, 100, 1},
      {20000, 130, 3, 5, GMLE_COV_FULL, GMLE_F64, 0, 0},
  };
  if (gpu && cpu)
    check_cases(gpu, cpu, big, sizeof big / sizeof big[0], 60, 1e-10, 0, 0, 0);
  gmle_context_free(gpu);
  gmle_context_free(cpu);
}

/* The GPU check of the brief: 4 components, 5 iterations from a given
 * start, tol 0, the parameters within 1e-9 relative of the CPU's. */
TEST(gpu_em_fit_matches_cpu_5_iterations) {
  if (!have_gpu)
    return;
  gmle_context *gpu = context_on(GMLE_BACKEND_CUDA);
  gmle_context *cpu = context_on(GMLE_BACKEND_CPU);
  CHECK(gpu && cpu);
  static const em_cfg fits[] = {
      {20000, 6, 1, 4, GMLE_COV_DIAG, GMLE_F64, 0, 0},
      {20000, 6, 1, 4, GMLE_COV_FULL, GMLE_F64, 0, 0},
      {20000, 6, 1, 4, GMLE_COV_DIAG, GMLE_F32, 1000, 0},
      {20000, 6, 1, 4, GMLE_COV_FULL, GMLE_F32, 1000, 0},
  };
  if (gpu && cpu)
    check_cases(gpu, cpu, fits, sizeof fits / sizeof fits[0], 80, 1e-9, 0, 0,
                1);
  gmle_context_free(gpu);
  gmle_context_free(cpu);
}

/* For k = 1, 2, ...: on a fresh context, the k-th counted call of one
 * gmle_em_stats_add (E-step and statistics) fails with `kind`; the call
 * then fails with the kind's status and leaves the statistics as they
 * were, and the same add succeeds next, bit for bit the undisturbed
 * result; or it succeeds (an out-of-memory retried in smaller pieces).
 * Stops when a run makes fewer than k calls. */
static void em_fault_sweep(const em_case *e, gmle_cuda_fault kind,
                           const gmle_em_stats *want) {
  long k = 1, fired = 0, recovered = 0;
  const gmle_status expect =
      kind == GMLE_CUDA_FAULT_OOM ? GMLE_E_DEVICE_OOM : GMLE_E_DEVICE;
  for (; k < 2000; k++) {
    gmle_context *gpu = context_on(GMLE_BACKEND_CUDA);
    gmle_model *m = gpu ? case_start(e, gpu) : NULL;
    gmle_em_stats *es = NULL, *empty = NULL;
    if (!m || gmle_em_stats_create(gpu, m, NULL, &es) != GMLE_OK ||
        gmle_em_stats_create(gpu, m, NULL, &empty) != GMLE_OK) {
      CHECK(!"setup");
      gmle_em_stats_free(es);
      gmle_model_free(m);
      gmle_context_free(gpu);
      break;
    }
    CHECK_STATUS(gmle__cuda_inject_fault(gpu, kind, k), GMLE_OK);
    const gmle_status s = case_add(es, e, 0, e->c.n);
    const long calls = gmle__cuda_call_count(gpu);
    if (s == GMLE_OK && calls >= k) {
      /* An out-of-memory retried: the statistics' own passes are
       * bit-identical, but the E-step's scoring may have run in smaller
       * tiles (its GEMMs then round differently): within 1e-12. */
      recovered++;
      CHECK_MSG(kind == GMLE_CUDA_FAULT_OOM,
                "error k %ld: the fault fired but the call succeeded", k);
      const double d = em_stats_diff(es, want, 0);
      CHECK_MSG(d <= 1e-12, "oom k %ld: recovered, but %.3g off", k, d);
    } else if (s != GMLE_OK) {
      fired++;
      CHECK_MSG(s == expect, "%s k %ld: %s (%s)",
                kind == GMLE_CUDA_FAULT_OOM ? "oom" : "error", k,
                gmle_status_name(s), gmle_context_error(gpu));
      CHECK_MSG(tu_stats_raw_equal(gmle_em_stats_components(es),
                                   gmle_em_stats_components(empty)),
                "k %ld: the statistics changed", k);
      CHECK_STATUS(case_add(es, e, 0, e->c.n), GMLE_OK);
    }
    if (s != GMLE_OK || calls < k)
      CHECK_MSG(tu_stats_raw_equal(gmle_em_stats_components(es),
                                   gmle_em_stats_components(want)),
                "k %ld: the statistics differ from the undisturbed run's", k);
    gmle_em_stats_free(es);
    gmle_em_stats_free(empty);
    gmle_model_free(m);
    gmle_context_free(gpu);
    if (calls < k)
      break;
  }
  printf("  %s %s: %ld calls, %ld failed cleanly, %ld recovered\n",
         gmle_cov_name(e->c.cov), kind == GMLE_CUDA_FAULT_OOM ? "oom" : "error",
         k - 1, fired, recovered);
  /* Errors fail the call; out-of-memory in the first chunk's passes or
   * the scoring is retried smaller, so recovers. */
  CHECK(kind == GMLE_CUDA_FAULT_OOM ? recovered >= 1 : fired >= 1);
}

TEST(gpu_em_fault_sweeps_leave_statistics_unchanged) {
  if (!have_gpu)
    return;
  static const gmle_cov_type covs[] = {GMLE_COV_DIAG, GMLE_COV_FULL};
  for (size_t i = 0; i < 2; i++) {
    /* Two chunks of the core (65536 rows), the first of four blocks. */
    const em_cfg cfg = {70000, 5, 1, 3, covs[i], GMLE_F32, 50, 0};
    em_case e = {.c = cfg};
    if (case_make(&e, 90 + i) != 0) {
      CHECK(!"case_make");
      continue;
    }
    gmle_context *gpu = context_on(GMLE_BACKEND_CUDA);
    gmle_model *m = gpu ? case_start(&e, gpu) : NULL;
    gmle_em_stats *want = NULL;
    if (m && gmle_em_stats_create(gpu, m, NULL, &want) == GMLE_OK &&
        case_add(want, &e, 0, e.c.n) == GMLE_OK) {
      em_fault_sweep(&e, GMLE_CUDA_FAULT_ERROR, want);
      em_fault_sweep(&e, GMLE_CUDA_FAULT_OOM, want);
    } else {
      CHECK(!"the undisturbed run");
    }
    gmle_em_stats_free(want);
    gmle_model_free(m);
    gmle_context_free(gpu);
    case_free(&e);
  }
}

#endif /* GMLE_TEST_CUDA */

int main(int argc, char **argv) {
  CHECK_INIT(argc, argv);
  RUN(cpu_em_statistics_match_long_double_reference);
#ifdef GMLE_TEST_CUDA
  /* This suite picks its backends itself. */
  unsetenv("GMLE_BACKEND");
  unsetenv("GMLE_DEVICE");
  fake = getenv("GMLE_TEST_FAKE_MODULE");
  if (!fake || !*fake) {
    fake = NULL;
    gmle_context *ctx = NULL;
    have_gpu = gmle_context_create(GMLE_BACKEND_CUDA, -1, &ctx) == GMLE_OK;
    printf("CUDA device: %s\n",
           have_gpu ? gmle_context_device_name(ctx) : gmle_context_error(ctx));
    gmle_context_free(ctx);
    const char *req = getenv("GMLE_REQUIRE_GPU");
    if (!have_gpu && req && strcmp(req, "1") == 0) {
      printf("FAIL a GPU is required (GMLE_REQUIRE_GPU=1) but no CUDA "
             "context opens\n");
      return 1;
    }
  }
  RUN(fake_module_accumulate_resp_is_forwarded);
  RUN(fake_module_of_abi_4_0_is_served_by_the_fallback);
  RUN(gpu_em_statistics_match_cpu_and_repeat_bitwise);
  RUN(gpu_em_fit_matches_cpu_5_iterations);
  RUN(gpu_em_fault_sweeps_leave_statistics_unchanged);
#endif
  return CHECK_DONE();
}
