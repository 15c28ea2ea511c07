/* test_opencl.c -- checks specific to the OpenCL backend: discovery, the
 * missing-driver path, accumulation and scoring against the CPU backend,
 * determinism, batch splitting on device out-of-memory, the float32 path of
 * devices without cl_khr_fp64, and kernel build failures.
 *
 * Registered once per backend like every suite; it does its work in the
 * .opencl entry (or when GMLE_BACKEND is unset) and skips elsewhere, and
 * skips entirely when the OpenCL backend is not compiled in. */
#define _POSIX_C_SOURCE 200809L
#include "check.h"
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* Test hooks of opencl/cl_backend.c, weak so that this file links when the
 * backend is not compiled in (they are then NULL). */
extern gmle_status gmle__opencl_test_build(gmle_context *ctx,
                                           const char *source,
                                           const char *options)
    __attribute__((weak));
extern void gmle__opencl_test_limit_alloc(size_t bytes) __attribute__((weak));
extern gmle_status gmle__opencl_test_force_fp32(gmle_context *ctx, int on)
    __attribute__((weak));
extern void gmle__opencl_test_library(const char *name) __attribute__((weak));

static gmle_context *make_ctx(gmle_backend b) {
  gmle_context *ctx = NULL;
  gmle_status s = gmle_context_create(b, -1, &ctx);
  if (s != GMLE_OK) {
    printf("  gmle_context_create(%s): %s (%s)\n", gmle_backend_name(b),
           gmle_status_name(s), gmle_context_error(ctx));
    gmle_context_free(ctx);
    return NULL;
  }
  return ctx;
}

/* ---------------------------------------------------------------------- */
/* No driver: run in children forked before this process touches OpenCL   */
/* (the ICD loader reads OCL_ICD_VENDORS once, on first use).              */
/* ---------------------------------------------------------------------- */

static int touched_opencl; /* set once anything in this process used it */

static int no_icd_child(const char *dir) {
  setenv("OCL_ICD_VENDORS", dir, 1);
  unsetenv("GMLE_BACKEND");
  unsetenv("GMLE_DEVICE");
  int bad = 0;
  gmle_context *ctx = NULL;
  gmle_status s = gmle_context_create(GMLE_BACKEND_OPENCL, -1, &ctx);
  const char *msg = gmle_context_error(ctx);
  if (s != GMLE_E_NO_DEVICE || !strstr(msg, "-1001") ||
      !strstr(msg, "CL_PLATFORM_NOT_FOUND_KHR")) {
    printf("  explicit OpenCL without an ICD: %s \"%s\"\n", gmle_status_name(s),
           msg);
    bad = 1;
  }
  gmle_context_free(ctx);
  size_t n = 99;
  char why[512];
  s = gmle_device_list(GMLE_BACKEND_OPENCL, NULL, 0, &n, why, sizeof why);
  if (s != GMLE_E_NO_DEVICE || n != 0 || !strstr(why, "-1001")) {
    printf("  device list without an ICD: %s, %zu, \"%s\"\n",
           gmle_status_name(s), n, why);
    bad = 1;
  }
  /* AUTO falls back to the CPU, says why, and still fits. */
  ctx = NULL;
  s = gmle_context_create(GMLE_BACKEND_AUTO, -1, &ctx);
  tu_log log;
  if (s == GMLE_OK)
    tu_log_attach(ctx, &log);
  if (s != GMLE_OK || gmle_context_backend(ctx) != GMLE_BACKEND_CPU ||
      !tu_log_has(&log, "-1001")) {
    printf("  AUTO without an ICD: %s, backend %s, log \"%s\"\n",
           gmle_status_name(s), gmle_backend_name(gmle_context_backend(ctx)),
           s == GMLE_OK ? log.text : "");
    bad = 1;
  }
  tu_dataset ds;
  if (s == GMLE_OK &&
      tu_dataset_make(&ds, 3, 2000, 4, 3, GMLE_F32, 4, 10.0, 0) == 0) {
    gmle_stats *st = NULL;
    gmle_model *m = NULL;
    s = gmle_stats_create(ctx, 4, 3, &st);
    if (s == GMLE_OK)
      s = tu_dataset_add(st, &ds, 0, ds.n);
    if (s == GMLE_OK)
      s = gmle_fit(st, NULL, &m);
    if (s != GMLE_OK) {
      printf("  CPU fallback fit: %s (%s)\n", gmle_status_name(s),
             gmle_context_error(ctx));
      bad = 1;
    }
    gmle_model_free(m);
    gmle_stats_free(st);
    tu_dataset_free(&ds);
  }
  gmle_context_free(ctx);
  return bad;
}

TEST(opencl_without_icd_no_device_minus_1001_and_auto_falls_back_to_cpu) {
  CHECK(!touched_opencl); /* must run first */
  char dir[256];
  if (tu_tmpdir_create(dir, sizeof dir) != 0) {
    CHECK(!"tmpdir");
    return;
  }
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    int bad = no_icd_child(dir);
    fflush(stdout);
    _exit(bad);
  }
  int status = 0;
  CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
  CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d",
            status);
  tu_tmpdir_remove(dir);
}

/* libOpenCL itself missing: the library still loads, an explicit OpenCL
 * context says which library could not be opened, AUTO runs on the CPU. */
static int no_library_child(void) {
  gmle__opencl_test_library("libgmle-test-no-such-opencl.so.1");
  unsetenv("GMLE_BACKEND");
  unsetenv("GMLE_DEVICE");
  int bad = 0;
  gmle_context *ctx = NULL;
  gmle_status s = gmle_context_create(GMLE_BACKEND_OPENCL, -1, &ctx);
  const char *msg = gmle_context_error(ctx);
  if (s != GMLE_E_NO_DEVICE || !strstr(msg, "cannot load") ||
      !strstr(msg, "libgmle-test-no-such-opencl.so.1")) {
    printf("  explicit OpenCL without libOpenCL: %s \"%s\"\n",
           gmle_status_name(s), msg);
    bad = 1;
  }
  gmle_context_free(ctx);
  ctx = NULL;
  s = gmle_context_create(GMLE_BACKEND_AUTO, -1, &ctx);
  if (s != GMLE_OK || gmle_context_backend(ctx) != GMLE_BACKEND_CPU) {
    printf("  AUTO without libOpenCL: %s\n", gmle_status_name(s));
    bad = 1;
  }
  gmle_context_free(ctx);
  return bad;
}

TEST(opencl_without_libopencl_no_device_and_auto_runs_on_cpu) {
  CHECK(!touched_opencl && gmle__opencl_test_library);
  if (!gmle__opencl_test_library)
    return;
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    int bad = no_library_child();
    fflush(stdout);
    _exit(bad);
  }
  int status = 0;
  CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
  CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d",
            status);
}

/* ---------------------------------------------------------------------- */
/* Discovery                                                               */
/* ---------------------------------------------------------------------- */

TEST(opencl_discovery_lists_devices_with_memory_and_units) {
  touched_opencl = 1;
  size_t n = 0;
  char why[1024];
  CHECK_STATUS(
      gmle_device_list(GMLE_BACKEND_OPENCL, NULL, 0, &n, why, sizeof why),
      GMLE_OK);
  CHECK(n >= 1);
  gmle_device_info info[16];
  size_t n2 = 0;
  CHECK_STATUS(gmle_device_list(GMLE_BACKEND_OPENCL, info, 16, &n2, NULL, 0),
               GMLE_OK);
  CHECK(n2 == n);
  int defaults = 0, pocl = 0;
  for (size_t i = 0; i < n2 && i < 16; i++) {
    printf("  device %d: %s [%s] %u units, %.2f GiB%s%s%s\n", info[i].index,
           info[i].name, info[i].platform, info[i].compute_units,
           (double)info[i].global_mem / (1 << 30), info[i].fp64 ? ", fp64" : "",
           info[i].is_gpu ? ", GPU" : "",
           info[i].is_default ? " (default)" : "");
    CHECK(info[i].backend == GMLE_BACKEND_OPENCL);
    CHECK(info[i].index == (int)i);
    CHECK(info[i].name[0] != '\0');
    CHECK(info[i].compute_units >= 1);
    CHECK(info[i].global_mem > 0);
    defaults += info[i].is_default;
    pocl += strstr(info[i].platform, "Portable Computing Language") != NULL;
  }
  CHECK(defaults == 1);
  printf("  %d PoCL device(s)\n", pocl);
  /* AUTO lists every compiled backend: OpenCL's devices, then the CPU. */
  size_t na = 0;
  CHECK_STATUS(gmle_device_list(GMLE_BACKEND_AUTO, info, 16, &na, NULL, 0),
               GMLE_OK);
  CHECK(na == n + 1);
  if (na >= 1 && na <= 16)
    CHECK(info[na - 1].backend == GMLE_BACKEND_CPU);
  CHECK_STATUS(gmle_device_list(GMLE_BACKEND_OPENCL, NULL, 1, &n2, NULL, 0),
               GMLE_E_INVALID_ARG);
  /* A device index past the end is GMLE_E_NO_DEVICE, saying how many. */
  gmle_context *ctx = NULL;
  CHECK_STATUS(gmle_context_create(GMLE_BACKEND_OPENCL, (int)n, &ctx),
               GMLE_E_NO_DEVICE);
  CHECK_ERROR_HAS(ctx, "there ");
  gmle_context_free(ctx);
  ctx = make_ctx(GMLE_BACKEND_OPENCL);
  CHECK(ctx && gmle_context_backend(ctx) == GMLE_BACKEND_OPENCL);
  if (ctx)
    CHECK(strstr(gmle_context_device_name(ctx), "OpenCL") != NULL);
  gmle_context_free(ctx);
}

/* ---------------------------------------------------------------------- */
/* Accumulation against the CPU backend                                    */
/* ---------------------------------------------------------------------- */

/* Worst difference of two accumulators of the same data, relative to the
 * scale of each entry: |a-b| / sqrt(S_ii S_jj) for Gram entries, / sqrt(n
 * S_jj) for sums. Rows and shifts must match, weights to 1e-13 (they are
 * summed in different orders). */
static double stats_diff(const gmle_stats *a, const gmle_stats *b) {
  const size_t C = a->n_classes, D = a->dim, G = a->gram_len;
  const int diag = a->mode == GMLE_STATS_DIAG;
  double worst = 0;
  for (size_t c = 0; c < C; c++) {
    if (a->rows[c] != b->rows[c] || a->has_shift[c] != b->has_shift[c] ||
        memcmp(a->shift + c * D, b->shift + c * D, D * sizeof(double)) != 0)
      return INFINITY;
    const double wd = fabs(a->weight[c] - b->weight[c]);
    if (wd > 1e-13 * fabs(b->weight[c]))
      worst = fmax(worst, wd / fabs(b->weight[c]));
    const double *ga = a->gram + c * G, *gb = b->gram + c * G;
    for (size_t i = 0; i < D; i++) {
      const double sii = diag ? gb[i] : gb[i * D + i];
      const double ss = sqrt(fabs(b->weight[c] * sii));
      const double ds = fabs(a->sum[c * D + i] - b->sum[c * D + i]);
      if (ds > 0)
        worst = fmax(worst, ss > 0 ? ds / ss : INFINITY);
      for (size_t j = 0; j <= (diag ? 0 : i); j++) {
        const size_t ix = diag ? i : i * D + j;
        const double sjj = diag ? gb[i] : gb[j * D + j];
        const double sc = sqrt(fabs(sii * sjj));
        const double dg = fabs(ga[ix] - gb[ix]);
        if (dg > 0)
          worst = fmax(worst, sc > 0 ? dg / sc : INFINITY);
      }
    }
  }
  return worst;
}

static gmle_stats *accumulate(gmle_context *ctx, const tu_dataset *ds,
                              gmle_stats_mode mode, gmle_status *st_out) {
  gmle_stats *st = NULL;
  gmle_status s = gmle_stats_create_mode(ctx, ds->d, ds->c, mode, &st);
  if (s == GMLE_OK)
    s = tu_dataset_add(st, ds, 0, ds->n);
  if (s != GMLE_OK)
    printf("  accumulate: %s (%s)\n", gmle_status_name(s),
           gmle_context_error(ctx));
  *st_out = s;
  return st;
}

TEST(opencl_accumulate_equals_cpu_full_and_diag_all_sizes) {
  gmle_context *cl = make_ctx(GMLE_BACKEND_OPENCL);
  gmle_context *cpu = make_ctx(GMLE_BACKEND_CPU);
  CHECK(cl && cpu);
  static const size_t Ds[] = {1, 2, 13, 40, 130}, Cs[] = {1, 7, 300};
  double worst[2] = {0, 0};
  for (int dt = 0; cl && cpu && dt < 2; dt++)
    for (int mode = 0; mode < 2; mode++)
      for (size_t di = 0; di < 5; di++)
        for (size_t ci = 0; ci < 3; ci++) {
          const size_t D = Ds[di], C = Cs[ci], n = C == 300 ? 3000 : 1500;
          const gmle_dtype t = dt ? GMLE_F64 : GMLE_F32;
          tu_dataset ds;
          /* stride > D (the padding holds NaN), weights on half of them */
          if (tu_dataset_make(&ds, 100 + di * 10 + ci, n, D, C, t, D + 3, 50.0,
                              (int)((di + ci) % 2))) {
            CHECK(!"dataset");
            continue;
          }
          gmle_status sa, sb;
          gmle_stats *a = accumulate(cl, &ds, (gmle_stats_mode)mode, &sa);
          gmle_stats *b = accumulate(cpu, &ds, (gmle_stats_mode)mode, &sb);
          CHECK_STATUS(sa, GMLE_OK);
          CHECK_STATUS(sb, GMLE_OK);
          if (sa == GMLE_OK && sb == GMLE_OK) {
            const double e = stats_diff(a, b), tol = dt ? 1e-12 : 1e-6;
            worst[dt] = fmax(worst[dt], e);
            CHECK_MSG(e <= tol, "%s %s D=%zu C=%zu: relative difference %.3g",
                      dt ? "f64" : "f32", mode ? "diag" : "full", D, C, e);
          }
          gmle_stats_free(a);
          gmle_stats_free(b);
          tu_dataset_free(&ds);
        }
  printf("  largest relative difference to the CPU: f32 %.3g, f64 %.3g\n",
         worst[0], worst[1]);
  gmle_context_free(cl);
  gmle_context_free(cpu);
}

TEST(opencl_accumulate_repeated_runs_bit_identical) {
  gmle_context *cl = make_ctx(GMLE_BACKEND_OPENCL);
  CHECK(cl);
  tu_dataset ds;
  if (!cl || tu_dataset_make(&ds, 11, 20000, 40, 10, GMLE_F32, 41, 100.0, 1)) {
    gmle_context_free(cl);
    return;
  }
  for (int mode = 0; mode < 2; mode++) {
    gmle_status s1, s2;
    gmle_stats *a = accumulate(cl, &ds, (gmle_stats_mode)mode, &s1);
    gmle_stats *b = accumulate(cl, &ds, (gmle_stats_mode)mode, &s2);
    CHECK(s1 == GMLE_OK && s2 == GMLE_OK && tu_stats_raw_equal(a, b));
    /* A second context gives the same bits. */
    gmle_context *cl2 = make_ctx(GMLE_BACKEND_OPENCL);
    gmle_stats *c =
        cl2 ? accumulate(cl2, &ds, (gmle_stats_mode)mode, &s2) : NULL;
    CHECK(c && s2 == GMLE_OK && tu_stats_raw_equal(a, c));
    gmle_stats_free(a);
    gmle_stats_free(b);
    gmle_stats_free(c);
    gmle_context_free(cl2);
  }
  tu_dataset_free(&ds);
  gmle_context_free(cl);
}

/* More rows than one super-batch (4 Mi rows) and many sub-batches. */
TEST(opencl_accumulate_large_batch_equals_cpu) {
  gmle_context *cl = make_ctx(GMLE_BACKEND_OPENCL);
  gmle_context *cpu = make_ctx(GMLE_BACKEND_CPU);
  tu_dataset ds;
  if (!cl || !cpu ||
      tu_dataset_make(&ds, 12, (4u << 20) + 12345, 2, 3, GMLE_F32, 2, 1e3, 0)) {
    CHECK(!"setup");
    gmle_context_free(cl);
    gmle_context_free(cpu);
    return;
  }
  gmle_status sa, sb;
  gmle_stats *a = accumulate(cl, &ds, GMLE_STATS_FULL, &sa);
  gmle_stats *b = accumulate(cpu, &ds, GMLE_STATS_FULL, &sb);
  CHECK(sa == GMLE_OK && sb == GMLE_OK);
  if (sa == GMLE_OK && sb == GMLE_OK) {
    /* float32 rows: the CPU backend multiplies them in float32 (within
     * the float32 contract, as in the test above), OpenCL in float64 */
    const double e = stats_diff(a, b);
    CHECK_MSG(e <= 1e-6, "relative difference %.3g", e);
  }
  gmle_stats_free(a);
  gmle_stats_free(b);
  tu_dataset_free(&ds);
  gmle_context_free(cl);
  gmle_context_free(cpu);
}

/* CL_MEM_OBJECT_ALLOCATION_FAILURE on a batch: split and retried with
 * identical results; when even the smallest piece fails,
 * GMLE_E_DEVICE_OOM and the statistics unchanged. */
TEST(opencl_device_oom_splits_batch_same_bits_else_device_oom_unchanged) {
  gmle_context *cl = make_ctx(GMLE_BACKEND_OPENCL);
  tu_dataset ds;
  if (!cl || !gmle__opencl_test_limit_alloc ||
      tu_dataset_make(&ds, 13, 60000, 13, 5, GMLE_F64, 13, 5.0, 1)) {
    CHECK(!"setup");
    gmle_context_free(cl);
    return;
  }
  for (int mode = 0; mode < 2; mode++) {
    gmle_status s;
    gmle_stats *ref = accumulate(cl, &ds, (gmle_stats_mode)mode, &s);
    CHECK_STATUS(s, GMLE_OK);
    gmle__opencl_test_limit_alloc(256 << 10); /* forces small sub-batches */
    gmle_stats *split = accumulate(cl, &ds, (gmle_stats_mode)mode, &s);
    CHECK_STATUS(s, GMLE_OK);
    CHECK(ref && split && tu_stats_raw_equal(ref, split));
    /* Nothing fits: the error names the condition; nothing changed. */
    gmle_stats *clone = NULL;
    CHECK_STATUS(gmle_stats_clone(split, &clone), GMLE_OK);
    gmle__opencl_test_limit_alloc(64);
    CHECK_STATUS(tu_dataset_add(split, &ds, 0, ds.n), GMLE_E_DEVICE_OOM);
    CHECK_ERROR_HAS(cl, "CL_MEM_OBJECT_ALLOCATION_FAILURE (-4)");
    CHECK(clone && tu_stats_raw_equal(split, clone));
    gmle__opencl_test_limit_alloc(0);
    /* ... and the context works again afterwards. */
    CHECK_STATUS(tu_dataset_add(clone, &ds, 0, 100), GMLE_OK);
    /* Scoring splits the same way: identical output, else
     * GMLE_E_DEVICE_OOM. */
    gmle_model *m = NULL;
    gmle_fit_options opt;
    gmle_fit_options_init(&opt);
    opt.cov = mode ? GMLE_COV_DIAG : GMLE_COV_FULL;
    CHECK_STATUS(gmle_fit(ref, &opt, &m), GMLE_OK);
    const size_t n = 5000, C = ds.c;
    double *o1 = malloc(n * C * sizeof *o1), *o2 = malloc(n * C * sizeof *o2);
    if (m && o1 && o2) {
      CHECK_STATUS(gmle_score(cl, m, ds.x, ds.dtype, n, ds.stride,
                              GMLE_OUT_LOGPOST, GMLE_F64, o1),
                   GMLE_OK);
      gmle__opencl_test_limit_alloc(16 << 10);
      CHECK_STATUS(gmle_score(cl, m, ds.x, ds.dtype, n, ds.stride,
                              GMLE_OUT_LOGPOST, GMLE_F64, o2),
                   GMLE_OK);
      CHECK(memcmp(o1, o2, n * C * sizeof *o1) == 0);
      gmle__opencl_test_limit_alloc(64);
      CHECK_STATUS(gmle_score(cl, m, ds.x, ds.dtype, n, ds.stride,
                              GMLE_OUT_LOGPOST, GMLE_F64, o2),
                   GMLE_E_DEVICE_OOM);
      gmle__opencl_test_limit_alloc(0);
    }
    free(o1);
    free(o2);
    gmle_model_free(m);
    gmle_stats_free(ref);
    gmle_stats_free(split);
    gmle_stats_free(clone);
  }
  tu_dataset_free(&ds);
  gmle_context_free(cl);
}

/* ---------------------------------------------------------------------- */
/* The float32 path of devices without cl_khr_fp64                         */
/* ---------------------------------------------------------------------- */

TEST(opencl_float32_path_meets_contract_and_refuses_float64) {
  gmle_context *cl = make_ctx(GMLE_BACKEND_OPENCL);
  tu_dataset ds;
  if (!cl || !gmle__opencl_test_force_fp32 ||
      tu_dataset_make(&ds, 14, 200000, 16, 3, GMLE_F32, 17, 1e4, 1)) {
    CHECK(!"setup");
    gmle_context_free(cl);
    return;
  }
  CHECK_STATUS(gmle__opencl_test_force_fp32(cl, 1), GMLE_OK);
  gmle_stats *st = NULL;
  gmle_model *m = NULL;
  CHECK_STATUS(gmle_stats_create(cl, ds.d, ds.c, &st), GMLE_OK);
  /* in pieces, so that partials of several calls are merged */
  for (size_t r = 0; st && r < ds.n; r += 50000)
    CHECK_STATUS(tu_dataset_add(st, &ds, r, 50000), GMLE_OK);
  gmle_fit_options opt;
  gmle_fit_options_init(&opt);
  opt.rel_floor = 0;
  if (st)
    CHECK_STATUS(gmle_fit(st, &opt, &m), GMLE_OK);
  tu_ref ref;
  if (m && tu_ref_dataset(&ref, &ds) == 0) {
    const size_t D = ds.d;
    double mean[16], cov[256], rm[16], rc[256], worst_m = 0, worst_c = 0;
    for (size_t c = 0; c < ds.c; c++) {
      gmle_model_mean(m, c, mean);
      gmle_model_covariance(m, c, cov);
      tu_ref_mean(&ref, c, rm);
      tu_ref_cov(&ref, GMLE_COV_FULL, c, rc);
      worst_m = fmax(worst_m, tu_max_rel_err(mean, rm, NULL, D));
      worst_c = fmax(worst_c, tu_rel_frobenius(cov, rc, D * D));
    }
    printf("  float32 path, |mean|/sd 1e4: mean rel %.3g, cov rel Frobenius "
           "%.3g\n",
           worst_m, worst_c);
    CHECK(worst_m <= 1e-7);
    CHECK(worst_c <= 1e-6);
    tu_ref_free(&ref);
  }
  /* float64 rows cannot be read without cl_khr_fp64: refused, unchanged */
  tu_dataset d64;
  if (st && tu_dataset_make(&d64, 15, 100, 16, 3, GMLE_F64, 16, 0.0, 0) == 0) {
    gmle_stats *clone = NULL;
    CHECK_STATUS(gmle_stats_clone(st, &clone), GMLE_OK);
    CHECK_STATUS(tu_dataset_add(st, &d64, 0, d64.n), GMLE_E_UNSUPPORTED);
    CHECK_ERROR_HAS(cl, "cl_khr_fp64");
    CHECK(clone && tu_stats_raw_equal(st, clone));
    gmle_stats_free(clone);
    tu_dataset_free(&d64);
  }
  gmle_model_free(m);
  gmle_stats_free(st);
  gmle__opencl_test_force_fp32(cl, 0);
  tu_dataset_free(&ds);
  gmle_context_free(cl);
}

/* ---------------------------------------------------------------------- */
/* Scoring against the CPU backend                                         */
/* ---------------------------------------------------------------------- */

/* The same model on two contexts: random means, covariances of `cov`, one
 * empty class (count 0) when C > 2. */
static int make_models(gmle_context *a, gmle_context *b, tu_rng *r, size_t D,
                       size_t C, gmle_cov_type cov, gmle_model **ma,
                       gmle_model **mb) {
  const size_t len = cov == GMLE_COV_FULL   ? C * D * D
                     : cov == GMLE_COV_TIED ? D * D
                     : cov == GMLE_COV_DIAG ? C * D
                                            : C;
  double *means = malloc(C * D * sizeof *means);
  double *covs = malloc(len * sizeof *covs);
  double *counts = malloc(C * sizeof *counts);
  int rc = -1;
  *ma = *mb = NULL;
  if (means && covs && counts) {
    for (size_t i = 0; i < C * D; i++)
      means[i] = 20.0 + 2.0 * tu_normal(r);
    for (size_t c = 0; c < C; c++)
      counts[c] = (C > 2 && c == 1) ? 0.0 : 10.0 + (double)c;
    if (cov == GMLE_COV_FULL)
      for (size_t c = 0; c < C; c++)
        tu_random_spd(r, D, 0.2, 5.0, covs + c * D * D);
    else if (cov == GMLE_COV_TIED)
      tu_random_spd(r, D, 0.2, 5.0, covs);
    else
      for (size_t i = 0; i < len; i++)
        covs[i] = 0.2 + 3.0 * tu_uniform(r);
    if (gmle_model_create(a, D, C, cov, means, covs, NULL, counts, ma) ==
            GMLE_OK &&
        gmle_model_create(b, D, C, cov, means, covs, NULL, counts, mb) ==
            GMLE_OK)
      rc = 0;
    else
      printf("  model_create: %s / %s\n", gmle_context_error(a),
             gmle_context_error(b));
  }
  free(means);
  free(covs);
  free(counts);
  return rc;
}

TEST(opencl_score_every_output_equals_cpu) {
  gmle_context *cl = make_ctx(GMLE_BACKEND_OPENCL);
  gmle_context *cpu = make_ctx(GMLE_BACKEND_CPU);
  CHECK(cl && cpu);
  static const gmle_cov_type covs[] = {GMLE_COV_FULL, GMLE_COV_DIAG,
                                       GMLE_COV_SPHERICAL, GMLE_COV_TIED};
  static const size_t Ds[] = {1, 13, 40}, Cs[] = {1, 5, 40};
  static const gmle_output outs[] = {GMLE_OUT_LOGLIK, GMLE_OUT_JOINT,
                                     GMLE_OUT_LOGPOST, GMLE_OUT_LABEL,
                                     GMLE_OUT_DENSITY};
  tu_rng r;
  tu_seed(&r, 21);
  double worst = 0;
  size_t label_mismatch = 0;
  const size_t n = 3000; /* not a multiple of any tile */
  for (size_t k = 0; cl && cpu && k < 4; k++)
    for (size_t di = 0; di < 3; di++)
      for (size_t ci = 0; ci < 3; ci++) {
        const size_t D = Ds[di], C = Cs[ci], stride = D + 2;
        gmle_model *ma = NULL, *mb = NULL;
        if (make_models(cl, cpu, &r, D, C, covs[k], &ma, &mb)) {
          CHECK(!"models");
          continue;
        }
        for (int dt = 0; dt < 2; dt++) {
          const gmle_dtype t = dt ? GMLE_F64 : GMLE_F32;
          void *x = tu_alloc_data(n, stride, t);
          double *oa = malloc(n * C * sizeof *oa);
          double *ob = malloc(n * C * sizeof *ob);
          if (!x || !oa || !ob) {
            CHECK(!"alloc");
            free(x);
            free(oa);
            free(ob);
            continue;
          }
          for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < D; j++)
              tu_set(x, t, stride, i, j, 20.0 + 3.0 * tu_normal(&r));
          for (size_t o = 0; o < 5; o++)
            for (int odt = 0; odt < 2; odt++) {
              const gmle_dtype ot = odt ? GMLE_F64 : GMLE_F32;
              if (outs[o] == GMLE_OUT_LABEL && odt)
                continue;
              CHECK_STATUS(gmle_score(cl, ma, x, t, n, stride, outs[o], ot, oa),
                           GMLE_OK);
              CHECK_STATUS(
                  gmle_score(cpu, mb, x, t, n, stride, outs[o], ot, ob),
                  GMLE_OK);
              const size_t per =
                  outs[o] == GMLE_OUT_LABEL || outs[o] == GMLE_OUT_DENSITY ? 1
                                                                           : C;
              const double tol = odt ? 1e-10 : 1e-6;
              for (size_t i = 0; i < n * per; i++) {
                double va, vb;
                if (outs[o] == GMLE_OUT_LABEL) {
                  label_mismatch +=
                      ((int32_t *)(void *)oa)[i] != ((int32_t *)(void *)ob)[i];
                  continue;
                }
                va = odt ? oa[i] : (double)((float *)(void *)oa)[i];
                vb = odt ? ob[i] : (double)((float *)(void *)ob)[i];
                if (va == vb)
                  continue; /* equal, -inf included */
                const double e = fabs(va - vb) / fmax(1.0, fabs(vb));
                if (odt)
                  worst = fmax(worst, e);
                if (!(e <= tol)) {
                  CHECK_MSG(0,
                            "cov %d D=%zu C=%zu in %s out %d/%s: value %zu "
                            "%.17g vs CPU %.17g",
                            (int)covs[k], D, C, dt ? "f64" : "f32",
                            (int)outs[o], odt ? "f64" : "f32", i, va, vb);
                  break;
                }
              }
            }
          free(x);
          free(oa);
          free(ob);
        }
        gmle_model_free(ma);
        gmle_model_free(mb);
      }
  printf("  largest relative difference to the CPU (f64 out): %.3g; label "
         "mismatches %zu\n",
         worst, label_mismatch);
  CHECK(label_mismatch == 0);
  gmle_context_free(cl);
  gmle_context_free(cpu);
}

/* Without cl_khr_fp64 scoring runs on the host: same numbers. */
TEST(opencl_float32_device_scores_on_host_same_as_cpu) {
  gmle_context *cl = make_ctx(GMLE_BACKEND_OPENCL);
  gmle_context *cpu = make_ctx(GMLE_BACKEND_CPU);
  tu_rng r;
  tu_seed(&r, 22);
  gmle_model *ma = NULL, *mb = NULL;
  if (!cl || !cpu || !gmle__opencl_test_force_fp32 ||
      make_models(cl, cpu, &r, 7, 4, GMLE_COV_FULL, &ma, &mb)) {
    CHECK(!"setup");
  } else {
    CHECK_STATUS(gmle__opencl_test_force_fp32(cl, 1), GMLE_OK);
    double x[7 * 50], oa[50 * 4], ob[50 * 4];
    for (size_t i = 0; i < 7 * 50; i++)
      x[i] = 20 + 2 * tu_normal(&r);
    CHECK_STATUS(
        gmle_score(cl, ma, x, GMLE_F64, 50, 7, GMLE_OUT_LOGPOST, GMLE_F64, oa),
        GMLE_OK);
    CHECK_STATUS(
        gmle_score(cpu, mb, x, GMLE_F64, 50, 7, GMLE_OUT_LOGPOST, GMLE_F64, ob),
        GMLE_OK);
    CHECK(memcmp(oa, ob, sizeof oa) == 0);
    gmle__opencl_test_force_fp32(cl, 0);
  }
  gmle_model_free(ma);
  gmle_model_free(mb);
  gmle_context_free(cl);
  gmle_context_free(cpu);
}

/* ---------------------------------------------------------------------- */
/* Kernel build failures                                                   */
/* ---------------------------------------------------------------------- */

TEST(opencl_kernel_build_failure_reports_build_log) {
  gmle_context *cl = make_ctx(GMLE_BACKEND_OPENCL);
  if (!cl || !gmle__opencl_test_build) {
    CHECK(!"setup");
    gmle_context_free(cl);
    return;
  }
  CHECK_STATUS(gmle__opencl_test_build(
                   cl, "__kernel void ok(__global float *x) { x[0] = 1; }",
                   "-cl-std=CL1.2"),
               GMLE_OK);
  CHECK_STATUS(gmle__opencl_test_build(cl,
                                       "__kernel void broken(__global float "
                                       "*x) { x[0] = gmle_no_such_symbol; }",
                                       "-cl-std=CL1.2"),
               GMLE_E_DEVICE);
  CHECK_ERROR_HAS(cl, "clBuildProgram: CL_BUILD_PROGRAM_FAILURE (-11)");
  CHECK_ERROR_HAS(cl, "build log");
  CHECK_ERROR_HAS(cl, "gmle_no_such_symbol");
  /* the context is still usable */
  tu_dataset ds;
  if (tu_dataset_make(&ds, 16, 500, 3, 2, GMLE_F32, 3, 0.0, 0) == 0) {
    gmle_status s;
    gmle_stats *st = accumulate(cl, &ds, GMLE_STATS_FULL, &s);
    CHECK_STATUS(s, GMLE_OK);
    gmle_stats_free(st);
    tu_dataset_free(&ds);
  }
  gmle_context_free(cl);
}

int main(int argc, char **argv) {
  CHECK_INIT(argc, argv);
  const char *be = getenv("GMLE_BACKEND");
  if (!gmle_backend_compiled(GMLE_BACKEND_OPENCL)) {
    printf("skipped: the OpenCL backend is not compiled in\n");
    return CHECK_DONE();
  }
  if (be && *be && strcmp(be, "opencl") != 0) {
    printf("skipped: runs in the .opencl entry (GMLE_BACKEND=%s)\n", be);
    return CHECK_DONE();
  }
  /* These two fork before this process makes any OpenCL call. */
  RUN(opencl_without_icd_no_device_minus_1001_and_auto_falls_back_to_cpu);
  RUN(opencl_without_libopencl_no_device_and_auto_runs_on_cpu);
  RUN(opencl_discovery_lists_devices_with_memory_and_units);
  RUN(opencl_kernel_build_failure_reports_build_log);
  RUN(opencl_accumulate_equals_cpu_full_and_diag_all_sizes);
  RUN(opencl_accumulate_repeated_runs_bit_identical);
  RUN(opencl_accumulate_large_batch_equals_cpu);
  RUN(opencl_device_oom_splits_batch_same_bits_else_device_oom_unchanged);
  RUN(opencl_float32_path_meets_contract_and_refuses_float64);
  RUN(opencl_score_every_output_equals_cpu);
  RUN(opencl_float32_device_scores_on_host_same_as_cpu);
  return CHECK_DONE();
}
