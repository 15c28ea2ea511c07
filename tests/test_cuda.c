/* test_cuda.c -- the CUDA backend.
 *
 * Everywhere (CI has no GPU): libgmle loads no CUDA library by itself; an
 * explicit CUDA context without a usable GPU is GMLE_E_NO_DEVICE naming the
 * CUDA error (cudaGetDeviceCount's cudaErrorInsufficientDriver (35) or
 * cudaErrorNoDevice (100)), or the dlopen failure when the module is missing
 * (run with GMLE_CUDA_MODULE pointing nowhere); AUTO falls back with one
 * notice and fits like the two-pass reference; the CUDA entry points refuse
 * other backends.
 *
 * With a GPU (cudaGetDeviceCount > 0): statistics and every scoring output
 * compared with the CPU backend (statistics 1e-12 from float64 rows and 1e-6
 * from float32 rows, which the CPU multiplies in float32; scores 1e-10
 * relative), bit-identical repeated runs, 1000 classes, device-resident input,
 * validation of device data, fault-injection sweeps over k at every kind of
 * call site (gmle__cuda_inject_fault_at: allocations, copies, kernel
 * launches, stream/event calls, cuBLAS in scoring): statistics unchanged
 * after a failed batch; an out-of-memory split and retried gives
 * statistics bit-identical to an undisturbed run (host and device input);
 * after a sticky fault the context refuses every later call, its
 * statistics save and load, and a CPU continuation gives the same model;
 * and indices beyond 2^31 elements in statistics and scoring (SKIPPED, with
 * the reason, below about 11.8 GB free); diag/spherical scores within the
 * device's expanded-form bound against a long-double reference.
 * Where nvidia-smi lists a GPU or GMLE_REQUIRE_GPU=1, a CUDA context that
 * does not open fails the run (no vacuous pass). The suite picks its
 * backends itself, so ctest registers it once (test_cuda.cpu). The chunk
 * plan behind the bit-identical retries is checked without a GPU in
 * test_cuda_plan.c. */
#define _GNU_SOURCE /* dl_iterate_phdr, dlopen */
#include "check.h"
#include "testutil.h"

#include <dlfcn.h>
#include <link.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef GMLE_TEST_CUDA
#include "cuda_testing.h"
#include "gmle_cuda.h"
#include "gmle_io.h"
#endif

#ifdef GMLE_TEST_CUDA
static int have_gpu; /* an explicit CUDA context opened */
static gmle_context *cuda_context(void);
static int module_missing; /* GMLE_CUDA_MODULE names a file that is absent */
#endif

/* ---------------------------------------------------------------------- */
/* Everywhere                                                              */
/* ---------------------------------------------------------------------- */

static int find_cuda_lib(struct dl_phdr_info *info, size_t size, void *data) {
  (void)size;
  int *found = data;
  if (info->dlpi_name && (strstr(info->dlpi_name, "libcudart") ||
                          strstr(info->dlpi_name, "libcublas")))
    *found = 1;
  return 0;
}

/* Must run first: no CUDA context has been asked for yet. */
TEST(libgmle_loads_no_cuda_library_by_itself) {
  gmle_context *ctx = NULL;
  CHECK_STATUS(gmle_context_create(GMLE_BACKEND_CPU, -1, &ctx), GMLE_OK);
  gmle_context_free(ctx);
  int found = 0;
  dl_iterate_phdr(find_cuda_lib, &found);
  CHECK_MSG(!found, "libcudart or libcublas is loaded before any CUDA "
                    "context was created");
}

TEST(cuda_compiled_flag_matches_build) {
#ifdef GMLE_TEST_CUDA
  CHECK(gmle_backend_compiled(GMLE_BACKEND_CUDA) == 1);
#else
  CHECK(gmle_backend_compiled(GMLE_BACKEND_CUDA) == 0);
#endif
}

#ifndef GMLE_TEST_CUDA
TEST(explicit_cuda_without_cuda_build_is_no_device) {
  gmle_context *ctx = NULL;
  CHECK_STATUS(gmle_context_create(GMLE_BACKEND_CUDA, -1, &ctx),
               GMLE_E_NO_DEVICE);
  CHECK(ctx != NULL);
  CHECK_ERROR_HAS(ctx, "not compiled");
  gmle_context_free(ctx);
}
#endif

#ifdef GMLE_TEST_CUDA

/* Fit a labelled, weighted data set on ctx in uneven batches and compare
 * the means and covariances with the long double two-pass reference. */
static void check_fit_against_reference(gmle_context *ctx, gmle_dtype dt,
                                        double tol) {
  const size_t n = 3000, d = 6, c = 3;
  tu_dataset ds;
  if (tu_dataset_make(&ds, 17, n, d, c, dt, d + 2, 10.0, 1) != 0) {
    CHECK(!"tu_dataset_make");
    return;
  }
  gmle_stats *st = NULL;
  CHECK_STATUS(gmle_stats_create(ctx, d, c, &st), GMLE_OK);
  CHECK_STATUS(tu_dataset_add(st, &ds, 0, 1), GMLE_OK);
  CHECK_STATUS(tu_dataset_add(st, &ds, 1, 1000), GMLE_OK);
  CHECK_STATUS(tu_dataset_add(st, &ds, 1001, n - 1001), GMLE_OK);
  tu_ref ref;
  CHECK(tu_ref_dataset(&ref, &ds) == 0);
  gmle_fit_options opt;
  gmle_fit_options_init(&opt);
  opt.rel_floor = 0;
  gmle_model *m = NULL;
  CHECK_STATUS(gmle_fit(st, &opt, &m), GMLE_OK);
  double mean[6], rmean[6], cov[36], rcov[36];
  for (size_t k = 0; m && k < c; k++) {
    CHECK_STATUS(gmle_model_mean(m, k, mean), GMLE_OK);
    tu_ref_mean(&ref, k, rmean);
    CHECK(tu_max_rel_err(mean, rmean, NULL, d) <= tol);
    CHECK_STATUS(gmle_model_covariance(m, k, cov), GMLE_OK);
    tu_ref_cov(&ref, GMLE_COV_FULL, k, rcov);
    CHECK(tu_rel_frobenius(cov, rcov, d * d) <= tol);
  }
  gmle_model_free(m);
  gmle_stats_free(st);
  tu_ref_free(&ref);
  tu_dataset_free(&ds);
}

/* A GPU is expected where nvidia-smi lists one or GMLE_REQUIRE_GPU=1; there,
 * a CUDA context that does not open (an old driver, a missing libcudart or
 * libcublas) fails the run instead of every GPU test passing vacuously. */
static int gpu_expected(void) {
  const char *req = getenv("GMLE_REQUIRE_GPU");
  if (req && strcmp(req, "1") == 0)
    return 1;
  FILE *p = popen("nvidia-smi -L 2>/dev/null", "r");
  if (!p)
    return 0;
  char line[256];
  int listed = 0;
  while (fgets(line, sizeof line, p))
    listed |= strncmp(line, "GPU ", 4) == 0;
  pclose(p);
  return listed;
}

TEST(cuda_context_opens_where_a_gpu_is_expected) {
  if (module_missing || have_gpu || !gpu_expected())
    return;
  gmle_context *ctx = NULL;
  const gmle_status s = gmle_context_create(GMLE_BACKEND_CUDA, -1, &ctx);
  CHECK_MSG(s == GMLE_OK,
            "a GPU is listed (nvidia-smi -L) or required (GMLE_REQUIRE_GPU=1) "
            "but no CUDA context opens: %s",
            gmle_context_error(ctx));
  gmle_context_free(ctx);
}

TEST(explicit_cuda_without_gpu_names_the_cuda_error) {
  if (have_gpu || module_missing)
    return;
  gmle_context *ctx = NULL;
  CHECK_STATUS(gmle_context_create(GMLE_BACKEND_CUDA, -1, &ctx),
               GMLE_E_NO_DEVICE);
  CHECK(ctx != NULL);
  CHECK_ERROR_HAS(ctx, "cudaGetDeviceCount");
  CHECK_ERROR_HAS(ctx, "cudaError");
  const char *msg = gmle_context_error(ctx);
  CHECK_MSG(strstr(msg, "cudaErrorInsufficientDriver, 35") ||
                strstr(msg, "cudaErrorNoDevice, 100") ||
                strstr(msg, "cudaError"),
            "%s", msg);
  gmle_context_free(ctx);
  size_t n = 99;
  char why[512] = "";
  CHECK_STATUS(gmle_cuda_devices(NULL, 0, &n, why, sizeof why),
               GMLE_E_NO_DEVICE);
  CHECK(n == 0);
  CHECK_MSG(strstr(why, "cudaError") != NULL, "%s", why);
  /* The backend-neutral listing says the same. */
  gmle_device_info info[2];
  CHECK_STATUS(
      gmle_device_list(GMLE_BACKEND_CUDA, info, 2, &n, why, sizeof why),
      GMLE_E_NO_DEVICE);
  CHECK(n == 0);
  CHECK_MSG(strstr(why, "cudaGetDeviceCount") != NULL, "%s", why);
}

TEST(gpu_devices_are_listed) {
  if (!have_gpu)
    return;
  gmle_device_info info[16];
  size_t n = 0;
  char why[512];
  CHECK_STATUS(
      gmle_device_list(GMLE_BACKEND_CUDA, info, 16, &n, why, sizeof why),
      GMLE_OK);
  CHECK(n >= 1);
  for (size_t i = 0; i < n && i < 16; i++) {
    CHECK(info[i].backend == GMLE_BACKEND_CUDA);
    CHECK(info[i].is_gpu == 1 && info[i].fp64 == 1);
    CHECK(info[i].global_mem > 0 && info[i].compute_units > 0);
    CHECK(info[i].name[0] != '\0');
  }
  gmle_cuda_device_info cd[16];
  size_t nc = 0;
  CHECK_STATUS(gmle_cuda_devices(cd, 16, &nc, why, sizeof why), GMLE_OK);
  CHECK(nc >= n);
  CHECK(cd[0].cc_major >= 1 && cd[0].total_memory > 0);
  gmle_context *ctx = cuda_context();
  CHECK(ctx && gmle_cuda_context_device(ctx) == 0);
  CHECK(ctx && strstr(gmle_context_device_name(ctx), "compute capability"));
  gmle_context_free(ctx);
}

TEST(missing_module_is_no_device_naming_dlopen) {
  if (!module_missing)
    return;
  gmle_context *ctx = NULL;
  CHECK_STATUS(gmle_context_create(GMLE_BACKEND_CUDA, -1, &ctx),
               GMLE_E_NO_DEVICE);
  CHECK_ERROR_HAS(ctx, "dlopen");
  CHECK_ERROR_HAS(ctx, getenv("GMLE_CUDA_MODULE"));
  gmle_context_free(ctx);
  char why[512] = "";
  CHECK_STATUS(gmle_cuda_devices(NULL, 0, NULL, why, sizeof why),
               GMLE_E_NO_DEVICE);
  CHECK_MSG(strstr(why, "dlopen") != NULL, "%s", why);
}

/* Run by test_cuda.abi3_module only (GMLE_CUDA_MODULE names a stand-in
 * for a module of ABI 3, tests/cuda_abi3_module.c). */
TEST(module_of_another_abi_is_refused_naming_both) {
  const char *mp = getenv("GMLE_CUDA_MODULE");
  if (!mp || !strstr(mp, "abi3"))
    return;
  gmle_context *ctx = NULL;
  CHECK_STATUS(gmle_context_create(GMLE_BACKEND_CUDA, -1, &ctx),
               GMLE_E_NO_DEVICE);
  CHECK_ERROR_HAS(ctx, "module ABI 3");
  CHECK_ERROR_HAS(ctx, "install the libgmle_cuda.so of this build");
  gmle_context_free(ctx);
  char why[512] = "";
  CHECK_STATUS(gmle_cuda_devices(NULL, 0, NULL, why, sizeof why),
               GMLE_E_NO_DEVICE);
  CHECK_MSG(strstr(why, "module ABI 3") != NULL, "%s", why);
}

TEST(auto_falls_back_with_one_notice_and_fits) {
  if (have_gpu)
    return;
  gmle_context *ctx = NULL;
  CHECK_STATUS(gmle_context_create(GMLE_BACKEND_AUTO, -1, &ctx), GMLE_OK);
  if (!ctx)
    return;
  CHECK(gmle_context_backend(ctx) != GMLE_BACKEND_CUDA);
  tu_log log;
  tu_log_attach(ctx, &log);
  CHECK(log.count == 1);
  CHECK(tu_log_has(&log, "falling back"));
  /* The notice names the last backend that failed: CUDA's error unless
   * OpenCL was tried after it. */
  if (!gmle_backend_compiled(GMLE_BACKEND_OPENCL))
    CHECK_MSG(tu_log_has(&log, module_missing ? "dlopen" : "cudaError"), "%s",
              log.text);
  check_fit_against_reference(ctx, GMLE_F64, 1e-12);
  check_fit_against_reference(ctx, GMLE_F32, 1e-9);
  CHECK(log.count == 1); /* one notice, nothing more */
  gmle_context_free(ctx);
}

TEST(cuda_entry_points_refuse_other_backends) {
  gmle_context *ctx = NULL;
  CHECK_STATUS(gmle_context_create(GMLE_BACKEND_CPU, -1, &ctx), GMLE_OK);
  if (!ctx)
    return;
  gmle_stats *st = NULL;
  CHECK_STATUS(gmle_stats_create(ctx, 2, 1, &st), GMLE_OK);
  const double x[2] = {1, 2};
  CHECK_STATUS(gmle_cuda_stats_add_device(st, x, GMLE_F64, 1, 2, NULL, NULL),
               GMLE_E_UNSUPPORTED);
  CHECK_ERROR_HAS(ctx, "CUDA context");
  double out[1];
  CHECK_STATUS(gmle_cuda_score_device(ctx, NULL, x, GMLE_F64, 1, 2,
                                      GMLE_OUT_DENSITY, GMLE_F64, out),
               GMLE_E_UNSUPPORTED);
  CHECK_STATUS(gmle__cuda_inject_fault(ctx, GMLE_CUDA_FAULT_ERROR, 1),
               GMLE_E_UNSUPPORTED);
  CHECK(gmle__cuda_call_count(ctx) == -1);
  CHECK(gmle_cuda_context_device(ctx) == -1);
  CHECK(gmle_cuda_context_device(NULL) == -1);
  gmle_stats_free(st);
  gmle_context_free(ctx);
}

/* ---------------------------------------------------------------------- */
/* With a GPU                                                              */
/* ---------------------------------------------------------------------- */

/* The CUDA runtime, reached through dlopen so that this suite builds and
 * starts without it (GMLE_TEST_CUDART is its path). */
typedef struct cuda_rt {
  void *h;
  int (*malloc_)(void **, size_t);
  int (*free_)(void *);
  int (*memcpy_)(void *, const void *, size_t, int);
  int (*meminfo)(size_t *, size_t *);
} cuda_rt;
static cuda_rt rt;
enum { H2D = 1, D2H = 2 };

static int rt_load(void) {
  if (rt.h)
    return 0;
  /* The soname first: the runtime the module already loaded, wherever the
   * machine keeps it; the build machine's path second. */
  rt.h = dlopen(GMLE_TEST_CUDART_SONAME, RTLD_NOW | RTLD_LOCAL);
  if (!rt.h)
    rt.h = dlopen(GMLE_TEST_CUDART, RTLD_NOW | RTLD_LOCAL);
  if (!rt.h) {
    printf("  dlopen(%s): %s\n", GMLE_TEST_CUDART, dlerror());
    return -1;
  }
  void *p;
  p = dlsym(rt.h, "cudaMalloc");
  memcpy(&rt.malloc_, &p, sizeof p);
  p = dlsym(rt.h, "cudaFree");
  memcpy(&rt.free_, &p, sizeof p);
  p = dlsym(rt.h, "cudaMemcpy");
  memcpy(&rt.memcpy_, &p, sizeof p);
  p = dlsym(rt.h, "cudaMemGetInfo");
  memcpy(&rt.meminfo, &p, sizeof p);
  return rt.malloc_ && rt.free_ && rt.memcpy_ && rt.meminfo ? 0 : -1;
}

/* A device copy of n bytes of host memory (NULL on failure). */
static void *to_device(const void *host, size_t n) {
  void *d = NULL;
  if (rt.malloc_(&d, n ? n : 1) != 0)
    return NULL;
  if (n && rt.memcpy_(d, host, n, H2D) != 0) {
    rt.free_(d);
    return NULL;
  }
  return d;
}

static gmle_context *cuda_context(void) {
  gmle_context *ctx = NULL;
  if (gmle_context_create(GMLE_BACKEND_CUDA, -1, &ctx) != GMLE_OK) {
    printf("  CUDA context: %s\n", gmle_context_error(ctx));
    gmle_context_free(ctx);
    return NULL;
  }
  return ctx;
}

static gmle_context *cpu_context(void) {
  gmle_context *ctx = NULL;
  if (gmle_context_create(GMLE_BACKEND_CPU, -1, &ctx) != GMLE_OK) {
    gmle_context_free(ctx);
    return NULL;
  }
  return ctx;
}

/* Largest scaled difference between the means and covariances two
 * statistics objects imply (b the reference): means relative to |mean| +
 * sd, covariances to sqrt(S_ii S_jj); rows must match exactly and weights
 * to tol. Returns INFINITY when the structure differs. */
static double stats_diff(const gmle_stats *a, const gmle_stats *b, double tol) {
  const size_t D = b->dim, C = b->n_classes, G = b->gram_len;
  const int diag = b->mode == GMLE_STATS_DIAG;
  if (a->dim != D || a->n_classes != C || a->mode != b->mode)
    return INFINITY;
  double worst = 0;
  for (size_t c = 0; c < C; c++) {
    if (a->rows[c] != b->rows[c] || a->has_shift[c] != b->has_shift[c]) {
      printf("  class %zu: rows %llu vs %llu\n", c,
             (unsigned long long)a->rows[c], (unsigned long long)b->rows[c]);
      return INFINITY;
    }
    const double na = a->weight[c], nb = b->weight[c];
    if (fabs(na - nb) > tol * fabs(nb)) {
      printf("  class %zu: weight %.17g vs %.17g\n", c, na, nb);
      return INFINITY;
    }
    if (nb == 0)
      continue;
    for (size_t i = 0; i < D; i++) {
      const double ma = a->shift[c * D + i] + a->sum[c * D + i] / na;
      const double mb = b->shift[c * D + i] + b->sum[c * D + i] / nb;
      const size_t ii = diag ? i : i * D + i;
      const double vb = b->gram[c * G + ii] / nb -
                        (b->sum[c * D + i] / nb) * (b->sum[c * D + i] / nb);
      const double e = fabs(ma - mb) / (fabs(mb) + sqrt(fabs(vb)) + 1e-300);
      worst = e > worst ? e : worst;
      for (size_t j = 0; j <= (diag ? 0 : i); j++) {
        const size_t jj = diag ? i : j;
        const size_t ij = diag ? i : i * D + j;
        const size_t kk = diag ? i : j * D + j;
        const double ca = a->gram[c * G + ij] / na -
                          (a->sum[c * D + i] / na) * (a->sum[c * D + jj] / na);
        const double cb = b->gram[c * G + ij] / nb -
                          (b->sum[c * D + i] / nb) * (b->sum[c * D + jj] / nb);
        const double vj = b->gram[c * G + kk] / nb -
                          (b->sum[c * D + jj] / nb) * (b->sum[c * D + jj] / nb);
        const double s = sqrt(fabs(vb * vj)) + 1e-300;
        const double ec = fabs(ca - cb) / s;
        worst = ec > worst ? ec : worst;
      }
    }
  }
  return worst;
}

/* Rows [first, first+count) of ds into st, as the given batch sizes. */
static gmle_status add_batches(gmle_stats *st, const tu_dataset *ds,
                               const size_t *sizes, size_t n_sizes) {
  size_t r = 0;
  for (size_t i = 0; i < n_sizes && r < ds->n; i++) {
    const size_t k = sizes[i] < ds->n - r ? sizes[i] : ds->n - r;
    gmle_status s = tu_dataset_add(st, ds, r, k);
    if (s != GMLE_OK)
      return s;
    r += k;
  }
  return r < ds->n ? tu_dataset_add(st, ds, r, ds->n - r) : GMLE_OK;
}

static void compare_accumulate(gmle_context *gpu, gmle_context *cpu, size_t n,
                               size_t d, size_t c, gmle_dtype dt,
                               gmle_stats_mode mode, int weighted,
                               size_t stride, uint64_t seed) {
  tu_dataset ds;
  if (tu_dataset_make(&ds, seed, n, d, c, dt, stride, 100.0, weighted) != 0) {
    CHECK(!"tu_dataset_make");
    return;
  }
  const size_t sizes[] = {1, n / 3, 7, n / 2};
  gmle_stats *sg = NULL, *sc = NULL, *sg2 = NULL;
  CHECK_STATUS(gmle_stats_create_mode(gpu, d, c, mode, &sg), GMLE_OK);
  CHECK_STATUS(gmle_stats_create_mode(cpu, d, c, mode, &sc), GMLE_OK);
  CHECK_STATUS(gmle_stats_create_mode(gpu, d, c, mode, &sg2), GMLE_OK);
  if (sg && sc && sg2) {
    CHECK_STATUS(add_batches(sg, &ds, sizes, 4), GMLE_OK);
    CHECK_STATUS(add_batches(sc, &ds, sizes, 4), GMLE_OK);
    CHECK_STATUS(add_batches(sg2, &ds, sizes, 4), GMLE_OK);
    /* The CPU multiplies unweighted float32 rows in float32 (statistics
     * within ~1e-8 of exact); the device in float64: the float32 contract. */
    const double e = stats_diff(sg, sc, 1e-12);
    CHECK_MSG(e <= (dt == GMLE_F32 ? 1e-6 : 1e-12),
              "n %zu d %zu c %zu %s %s w%d stride %zu: error %.3g", n, d, c,
              dt == GMLE_F32 ? "f32" : "f64",
              mode == GMLE_STATS_DIAG ? "diag" : "full", weighted, stride, e);
    CHECK_MSG(tu_stats_raw_equal(sg, sg2),
              "repeated runs differ (n %zu d %zu c %zu)", n, d, c);
  }
  gmle_stats_free(sg);
  gmle_stats_free(sc);
  gmle_stats_free(sg2);
  tu_dataset_free(&ds);
}

TEST(gpu_statistics_match_cpu_and_repeat_bitwise) {
  if (!have_gpu)
    return;
  gmle_context *gpu = cuda_context(), *cpu = cpu_context();
  if (!gpu || !cpu) {
    CHECK(!"contexts");
  } else {
    static const size_t dims[] = {1, 13, 33, 70};
    static const size_t classes[] = {1, 4};
    uint64_t seed = 100;
    for (size_t a = 0; a < 4; a++)
      for (size_t b = 0; b < 2; b++)
        for (int f = 0; f < 2; f++)
          for (int md = 0; md < 2; md++)
            for (int w = 0; w < 2; w++)
              compare_accumulate(gpu, cpu, 5000, dims[a], classes[b],
                                 f ? GMLE_F32 : GMLE_F64,
                                 md ? GMLE_STATS_DIAG : GMLE_STATS_FULL, w,
                                 dims[a] + (size_t)(w ? 3 : 0), seed++);
    /* Several staging sub-batches, multi-chunk classes, partial tiles. */
    compare_accumulate(gpu, cpu, 200000, 64, 3, GMLE_F64, GMLE_STATS_FULL, 1,
                       64, 7);
    compare_accumulate(gpu, cpu, 30000, 130, 2, GMLE_F32, GMLE_STATS_FULL, 0,
                       131, 8);
  }
  gmle_context_free(gpu);
  gmle_context_free(cpu);
}

TEST(gpu_thousand_classes_match_cpu) {
  if (!have_gpu)
    return;
  gmle_context *gpu = cuda_context(), *cpu = cpu_context();
  if (gpu && cpu) {
    compare_accumulate(gpu, cpu, 60000, 16, 1000, GMLE_F32, GMLE_STATS_FULL, 1,
                       16, 11);
    compare_accumulate(gpu, cpu, 20000, 40, 1200, GMLE_F64, GMLE_STATS_DIAG, 0,
                       40, 12);
  } else {
    CHECK(!"contexts");
  }
  gmle_context_free(gpu);
  gmle_context_free(cpu);
}

/* ---- scoring ---- */

static size_t out_per_row(gmle_output w, size_t C) {
  return w == GMLE_OUT_LABEL || w == GMLE_OUT_DENSITY ? 1 : C;
}

/* The same model (parameters of a CPU fit, with an empty extra class) on
 * both contexts. */
static int twin_models(gmle_context *gpu, gmle_context *cpu,
                       const tu_dataset *ds, gmle_cov_type cov, gmle_model **mg,
                       gmle_model **mc) {
  *mg = *mc = NULL;
  const size_t D = ds->d, C = ds->c + 1;
  gmle_stats *st = NULL;
  if (gmle_stats_create(cpu, D, C, &st) != GMLE_OK)
    return -1;
  gmle_model *fit = NULL;
  gmle_fit_options opt;
  gmle_fit_options_init(&opt);
  opt.cov = cov;
  int rc = tu_dataset_add(st, ds, 0, ds->n) == GMLE_OK &&
                   gmle_fit(st, &opt, &fit) == GMLE_OK
               ? 0
               : -1;
  if (rc == 0)
    rc = gmle_model_create(gpu, D, C, cov, fit->means, fit->covars, fit->priors,
                           fit->counts, mg) == GMLE_OK &&
                 gmle_model_create(cpu, D, C, cov, fit->means, fit->covars,
                                   fit->priors, fit->counts, mc) == GMLE_OK
             ? 0
             : -1;
  gmle_model_free(fit);
  gmle_stats_free(st);
  return rc;
}

/* |a - b| <= tol max(1, |b|), -inf only where the reference is -inf. */
static int close_vals(const void *a, const void *b, gmle_dtype t, size_t n,
                      double tol, size_t *where) {
  for (size_t i = 0; i < n; i++) {
    const double x =
        t == GMLE_F32 ? (double)((const float *)a)[i] : ((const double *)a)[i];
    const double y =
        t == GMLE_F32 ? (double)((const float *)b)[i] : ((const double *)b)[i];
    if (isinf(y) || isinf(x)) {
      if (x != y) {
        *where = i;
        return 0;
      }
      continue;
    }
    if (!(fabs(x - y) <= tol * (fabs(y) > 1 ? fabs(y) : 1))) {
      *where = i;
      return 0;
    }
  }
  return 1;
}

static void compare_scoring(gmle_context *gpu, gmle_context *cpu,
                            gmle_cov_type cov, size_t D, size_t C, size_t n,
                            uint64_t seed) {
  tu_dataset ds;
  if (tu_dataset_make(&ds, seed, n, D, C, GMLE_F64, D + 1, 50.0, 0) != 0) {
    CHECK(!"tu_dataset_make");
    return;
  }
  /* An outlier row: large quadratic forms, near-zero posteriors (not so
   * far that cancellation in joint - logsumexp exceeds the tolerance). */
  for (size_t j = 0; j < D; j++)
    tu_set(ds.x, GMLE_F64, ds.stride, 5, j, 50.0 + 30.0);
  gmle_model *mg = NULL, *mc = NULL;
  if (twin_models(gpu, cpu, &ds, cov, &mg, &mc) != 0) {
    CHECK_MSG(0, "twin models (cov %d): %s / %s", (int)cov,
              gmle_context_error(gpu), gmle_context_error(cpu));
    tu_dataset_free(&ds);
    return;
  }
  const size_t Cm = C + 1;
  float *x32 = malloc(n * D * sizeof(float));
  void *og = malloc(n * Cm * sizeof(double)), *oc = malloc(n * Cm * 8),
       *og2 = malloc(n * Cm * 8);
  for (size_t i = 0; x32 && i < n; i++)
    for (size_t j = 0; j < D; j++)
      x32[i * D + j] = (float)tu_get(ds.x, GMLE_F64, ds.stride, i, j);
  for (int w = 0; og && oc && og2 && x32 && w <= 4; w++) {
    for (int in32 = 0; in32 < 2; in32++) {
      for (int out32 = 0; out32 < 2; out32++) {
        const gmle_output what = (gmle_output)w;
        const gmle_dtype idt = in32 ? GMLE_F32 : GMLE_F64;
        const gmle_dtype odt = out32 ? GMLE_F32 : GMLE_F64;
        const void *x = in32 ? (const void *)x32 : ds.x;
        const size_t stride = in32 ? D : ds.stride;
        CHECK_STATUS(gmle_score(gpu, mg, x, idt, n, stride, what, odt, og),
                     GMLE_OK);
        CHECK_STATUS(gmle_score(gpu, mg, x, idt, n, stride, what, odt, og2),
                     GMLE_OK);
        CHECK_STATUS(gmle_score(cpu, mc, x, idt, n, stride, what, odt, oc),
                     GMLE_OK);
        const size_t len = n * out_per_row(what, Cm);
        const size_t osz = what == GMLE_OUT_LABEL ? 4 : out32 ? 4 : 8;
        CHECK_MSG(memcmp(og, og2, len * osz) == 0,
                  "cov %d output %d: repeated scoring differs", (int)cov, w);
        if (what == GMLE_OUT_LABEL) {
          size_t diff = 0;
          for (size_t i = 0; i < n; i++)
            diff += ((int32_t *)og)[i] != ((int32_t *)oc)[i];
          CHECK_MSG(diff == 0, "cov %d: %zu labels differ", (int)cov, diff);
          continue;
        }
        size_t where = 0;
        const double tol = out32 ? 3e-7 : 1e-10;
        CHECK_MSG(close_vals(og, oc, odt, len, tol, &where),
                  "cov %d output %d in %s out %s: element %zu: %.17g vs "
                  "%.17g",
                  (int)cov, w, in32 ? "f32" : "f64", out32 ? "f32" : "f64",
                  where,
                  out32 ? (double)((float *)og)[where] : ((double *)og)[where],
                  out32 ? (double)((float *)oc)[where] : ((double *)oc)[where]);
      }
    }
  }
  /* The total log-likelihood goes through the same backend entry. */
  double tg = 0, tc = 0;
  CHECK_STATUS(gmle_total_loglik(gpu, mg, ds.x, GMLE_F64, n, ds.stride,
                                 ds.labels, NULL, &tg),
               GMLE_OK);
  CHECK_STATUS(gmle_total_loglik(cpu, mc, ds.x, GMLE_F64, n, ds.stride,
                                 ds.labels, NULL, &tc),
               GMLE_OK);
  CHECK_CLOSE(tg, tc, 1e-10);
  free(x32);
  free(og);
  free(oc);
  free(og2);
  gmle_model_free(mg);
  gmle_model_free(mc);
  tu_dataset_free(&ds);
}

TEST(gpu_scoring_matches_cpu_for_every_output) {
  if (!have_gpu)
    return;
  gmle_context *gpu = cuda_context(), *cpu = cpu_context();
  if (gpu && cpu) {
    static const gmle_cov_type covs[] = {GMLE_COV_FULL, GMLE_COV_DIAG,
                                         GMLE_COV_SPHERICAL, GMLE_COV_TIED};
    for (int k = 0; k < 4; k++) {
      compare_scoring(gpu, cpu, covs[k], 5, 3, 3000, 30 + (uint64_t)k);
      compare_scoring(gpu, cpu, covs[k], 40, 12, 9000, 40 + (uint64_t)k);
    }
    compare_scoring(gpu, cpu, GMLE_COV_FULL, 13, 300, 4000, 50);
  } else {
    CHECK(!"contexts");
  }
  gmle_context_free(gpu);
  gmle_context_free(cpu);
}

/* Diag/spherical scoring on the device uses the expanded form
 * q = [x - m, (x - m)^2] K + B_c (cu_score.c), whose error is about
 * eps (|x - m|^2/sigma^2 + B_c) rather than eps q. The bound checked here
 * against a long-double reference: m is a prior-weighted mean of the class
 * means, so B_c <= max_k |(mu_c - mu_k)/sigma_c|^2 and
 * |x - m|^2/sigma^2 <= 2 q + 2 B_c; a dot product of P = 2D terms adds at
 * most P eps times the sum of their magnitudes. */
static long double diag_q_ref(const double *x, const double *mu,
                              const double *var, size_t D) {
  long double q = 0;
  for (size_t j = 0; j < D; j++) {
    const long double d = ((long double)x[j] - mu[j]) / sqrtl(var[j]);
    q += d * d;
  }
  return q;
}

static void diag_model_params(const gmle_model *m, size_t D, size_t C,
                              double *mu, double *var, double *cov) {
  for (size_t c = 0; c < C; c++) {
    gmle_model_mean(m, c, mu + c * D);
    gmle_model_covariance(m, c, cov);
    for (size_t j = 0; j < D; j++)
      var[c * D + j] = cov[j * D + j];
  }
}

static double diag_b_max(const double *mu, const double *var, size_t D,
                         size_t C, size_t c) {
  double b = 0;
  for (size_t k = 0; k < C; k++)
    b = fmax(b, (double)diag_q_ref(mu + k * D, mu + c * D, var + c * D, D));
  return b;
}

static void check_diag_scoring_bound(gmle_context *gpu, gmle_cov_type cov) {
  const size_t n = 4000, D = 8, C = 4;
  double *x = malloc(n * D * sizeof(double)), *ll = malloc(n * C * 8);
  double *mu = malloc(C * D * 8), *var = malloc(C * D * 8),
         *cv = malloc(D * D * 8);
  int32_t *lab = malloc(n * sizeof(int32_t));
  gmle_stats *st = NULL;
  gmle_model *m = NULL;
  gmle_fit_options opt;
  gmle_fit_options_init(&opt);
  opt.cov = cov;
  if (!x || !ll || !mu || !var || !cv || !lab) {
    CHECK(!"memory");
    goto out;
  }
  tu_rng r;
  tu_seed(&r, 77);
  for (size_t i = 0; i < n; i++) { /* classes 1e4 std apart */
    lab[i] = (int32_t)(i % C);
    for (size_t j = 0; j < D; j++)
      x[i * D + j] = 1e4 * (double)lab[i] * (1.0 + 0.1 * (double)j) + 3.0 +
                     (0.5 + 0.1 * (double)j) * tu_normal(&r);
  }
  CHECK_STATUS(gmle_stats_create(gpu, D, C, &st), GMLE_OK);
  CHECK_STATUS(gmle_stats_add(st, x, GMLE_F64, n, D, lab, NULL), GMLE_OK);
  CHECK_STATUS(gmle_fit(st, &opt, &m), GMLE_OK);
  if (!m)
    goto out;
  CHECK_STATUS(
      gmle_score(gpu, m, x, GMLE_F64, n, D, GMLE_OUT_LOGLIK, GMLE_F64, ll),
      GMLE_OK);
  diag_model_params(m, D, C, mu, var, cv);
  const long double log2pi =
      logl(2.0L * 3.14159265358979323846264338327950288L);
  const double eps = 0x1p-52;
  size_t bad = 0;
  for (size_t c = 0; c < C; c++) {
    const double b = diag_b_max(mu, var, D, C, c);
    long double logdet = 0;
    for (size_t j = 0; j < D; j++)
      logdet += logl(var[c * D + j]);
    for (size_t i = 0; i < n; i++) {
      const long double q = diag_q_ref(x + i * D, mu + c * D, var + c * D, D);
      const long double ref = -0.5L * ((long double)D * log2pi + logdet + q);
      const double bound =
          (double)(2 * D + 2) * eps *
          ((double)(2 * q) + 3.0 * b + (double)D + fabs((double)ref));
      const double err = fabs((double)((long double)ll[i * C + c] - ref));
      if (!(err <= bound) && bad++ < 3)
        printf("  row %zu class %zu: |%.17g - %.17Lg| = %g > %g\n", i, c,
               ll[i * C + c], ref, err, bound);
    }
  }
  CHECK_MSG(bad == 0, "%zu scores beyond eps (|x-m|^2/sigma^2 + B)", bad);
out:
  gmle_model_free(m);
  gmle_stats_free(st);
  free(x);
  free(ll);
  free(mu);
  free(var);
  free(cv);
  free(lab);
}

TEST(gpu_diag_spherical_scoring_within_expanded_form_bound) {
  if (!have_gpu)
    return;
  gmle_context *gpu = cuda_context();
  if (!gpu) {
    CHECK(!"context");
    return;
  }
  check_diag_scoring_bound(gpu, GMLE_COV_DIAG);
  check_diag_scoring_bound(gpu, GMLE_COV_SPHERICAL);
  gmle_context_free(gpu);
}

/* ---- device-resident input ---- */

TEST(gpu_device_input_matches_host_input_and_is_validated) {
  if (!have_gpu)
    return;
  if (rt_load() != 0) {
    CHECK(!"CUDA runtime for the test");
    return;
  }
  gmle_context *gpu = cuda_context();
  if (!gpu) {
    CHECK(!"context");
    return;
  }
  const size_t n = 20000, D = 24, C = 5, stride = 26;
  tu_dataset ds;
  CHECK(tu_dataset_make(&ds, 61, n, D, C, GMLE_F32, stride, 20.0, 1) == 0);
  void *dx = to_device(ds.x, n * stride * sizeof(float));
  int32_t *dl = to_device(ds.labels, n * sizeof(int32_t));
  double *dw = to_device(ds.weights, n * sizeof(double));
  CHECK(dx && dl && dw);
  gmle_stats *sd = NULL, *sh = NULL, *before = NULL;
  CHECK_STATUS(gmle_stats_create(gpu, D, C, &sd), GMLE_OK);
  CHECK_STATUS(gmle_stats_create(gpu, D, C, &sh), GMLE_OK);
  if (dx && dl && dw && sd && sh) {
    CHECK_STATUS(
        gmle_cuda_stats_add_device(sd, dx, GMLE_F32, n, stride, dl, dw),
        GMLE_OK);
    CHECK_STATUS(tu_dataset_add(sh, &ds, 0, n), GMLE_OK);
    CHECK(stats_diff(sd, sh, 1e-12) <= 1e-12);
    /* Validation on the device: state unchanged, cell named. */
    CHECK_STATUS(gmle_stats_clone(sd, &before), GMLE_OK);
    float nan = NAN;
    rt.memcpy_((char *)dx + (17 * stride + 3) * sizeof(float), &nan, sizeof nan,
               H2D);
    CHECK_STATUS(
        gmle_cuda_stats_add_device(sd, dx, GMLE_F32, n, stride, dl, dw),
        GMLE_E_NONFINITE_INPUT);
    CHECK_ERROR_HAS(gpu, "row 17 col 3: NaN");
    CHECK(tu_stats_raw_equal(sd, before));
    const int32_t bad = (int32_t)C;
    rt.memcpy_(dl + 40, &bad, sizeof bad, H2D);
    CHECK_STATUS(gmle_cuda_stats_add_device(sd, (char *)dx + 20 * stride * 4,
                                            GMLE_F32, 100, stride, dl + 20,
                                            NULL),
                 GMLE_E_BAD_LABEL);
    CHECK_ERROR_HAS(gpu, "row 20: label 5");
    CHECK(tu_stats_raw_equal(sd, before));
    /* The -1 weight lies inside the batch (rows 20..29, its row 7), and
     * the host path (the CPU twin) names the same row. */
    const double neg = -1.0;
    rt.memcpy_(dw + 27, &neg, sizeof neg, H2D);
    CHECK_STATUS(gmle_cuda_stats_add_device(sd, (char *)dx + 20 * stride * 4,
                                            GMLE_F32, 10, stride, dl + 20,
                                            dw + 20),
                 GMLE_E_INVALID_WEIGHTS);
    CHECK_ERROR_HAS(gpu, "row 7: weight -1 is negative");
    CHECK(tu_stats_raw_equal(sd, before));
    double host_w[10];
    for (size_t i = 0; i < 10; i++)
      host_w[i] = i == 7 ? neg : 1.0;
    CHECK_STATUS(gmle_stats_add(sh, (const float *)ds.x + 20 * stride, GMLE_F32,
                                10, stride, ds.labels + 20, host_w),
                 GMLE_E_INVALID_WEIGHTS);
    CHECK_ERROR_HAS(gpu, "row 7: weight -1 is negative");
    /* Host memory is not device memory. */
    CHECK_STATUS(gmle_cuda_stats_add_device(sd, ds.x, GMLE_F32, 4, stride,
                                            ds.labels, NULL),
                 GMLE_E_INVALID_ARG);
    CHECK(tu_stats_raw_equal(sd, before));
  }
  /* Device-resident scoring equals host scoring. */
  gmle_model *m = NULL;
  gmle_fit_options opt;
  gmle_fit_options_init(&opt);
  if (sh && gmle_fit(sh, &opt, &m) == GMLE_OK) {
    double *hout = malloc(n * C * sizeof(double)), *dout_h = malloc(n * C * 8);
    void *ddx = to_device(ds.x, n * stride * sizeof(float));
    void *dout = NULL;
    CHECK(rt.malloc_(&dout, n * C * 8) == 0);
    for (int w = 0; hout && dout_h && ddx && dout && w <= 4; w++) {
      const size_t len = n * out_per_row((gmle_output)w, C);
      const size_t osz = w == GMLE_OUT_LABEL ? 4 : 8;
      CHECK_STATUS(gmle_score(gpu, m, ds.x, GMLE_F32, n, stride, (gmle_output)w,
                              GMLE_F64, hout),
                   GMLE_OK);
      CHECK_STATUS(gmle_cuda_score_device(gpu, m, ddx, GMLE_F32, n, stride,
                                          (gmle_output)w, GMLE_F64, dout),
                   GMLE_OK);
      rt.memcpy_(dout_h, dout, len * osz, D2H);
      size_t where = 0;
      if (w == GMLE_OUT_LABEL)
        CHECK(memcmp(hout, dout_h, len * 4) == 0);
      else
        CHECK_MSG(close_vals(dout_h, hout, GMLE_F64, len, 1e-12, &where),
                  "output %d element %zu", w, where);
    }
    if (ddx) {
      float inf = INFINITY;
      rt.memcpy_((char *)ddx + (9 * stride + 2) * sizeof(float), &inf,
                 sizeof inf, H2D);
      CHECK_STATUS(gmle_cuda_score_device(gpu, m, ddx, GMLE_F32, n, stride,
                                          GMLE_OUT_DENSITY, GMLE_F64, dout),
                   GMLE_E_NONFINITE_INPUT);
      CHECK_ERROR_HAS(gpu, "row 9 col 2: +Inf");
    }
    free(hout);
    free(dout_h);
    if (ddx)
      rt.free_(ddx);
    if (dout)
      rt.free_(dout);
  }
  gmle_model_free(m);
  gmle_stats_free(before);
  gmle_stats_free(sd);
  gmle_stats_free(sh);
  if (dx)
    rt.free_(dx);
  if (dl)
    rt.free_(dl);
  if (dw)
    rt.free_(dw);
  tu_dataset_free(&ds);
  gmle_context_free(gpu);
}

/* ---- faults ---- */

/* The sweeps' data: D = 20 float64 rows, so that cuda/cu_plan.c cuts
 * host batches into segments of 65536 rows: the second batch has 7 full
 * segments and a ragged one (two sub-batches; an out-of-memory retry halves
 * them), 4 classes, weights. From device memory it is one segment (2^20
 * rows): a retry there runs again at that size with the buffers released. */
#define FS_D 20
#define FS_C 4
#define FS_N1 3000
#define FS_N2 470000

static const struct {
  unsigned site;
  const char *name;
} fault_sites[] = {{GMLE_CUDA_SITE_ALLOC, "allocations"},
                   {GMLE_CUDA_SITE_COPY, "copies"},
                   {GMLE_CUDA_SITE_KERNEL, "kernel launches"},
                   {GMLE_CUDA_SITE_SYNC, "stream/event calls"},
                   {GMLE_CUDA_SITE_BLAS, "cuBLAS calls"}};

static const char *fault_name(gmle_cuda_fault kind) {
  return kind == GMLE_CUDA_FAULT_OOM      ? "oom"
         : kind == GMLE_CUDA_FAULT_STICKY ? "sticky"
                                          : "error";
}

/* What every sweep compares with: both batches on an undisturbed CUDA
 * context (the bitwise reference; its context is kept), the same with the
 * second batch from device memory, and the model of both batches on the
 * CPU (the continuation's reference). */
typedef struct fault_ref {
  tu_dataset ds;
  gmle_context *cpu, *gpu;
  gmle_stats *gpu_stats, *dev_stats;
  gmle_model *cpu_model;
  void *dx, *dl, *dw; /* the second batch in device memory */
  char dir[512];
} fault_ref;

static void fault_ref_free(fault_ref *f) {
  gmle_stats_free(f->gpu_stats);
  gmle_stats_free(f->dev_stats);
  gmle_model_free(f->cpu_model);
  gmle_context_free(f->cpu);
  gmle_context_free(f->gpu);
  if (f->dx)
    rt.free_(f->dx);
  if (f->dl)
    rt.free_(f->dl);
  if (f->dw)
    rt.free_(f->dw);
  tu_dataset_free(&f->ds);
  if (f->dir[0])
    tu_tmpdir_remove(f->dir);
}

static int fault_ref_make(fault_ref *f) {
  memset(f, 0, sizeof *f);
  if (rt_load() != 0 ||
      tu_dataset_make(&f->ds, 71, FS_N1 + FS_N2, FS_D, FS_C, GMLE_F64, FS_D,
                      5.0, 1) != 0 ||
      tu_tmpdir_create(f->dir, sizeof f->dir) != 0)
    return -1;
  f->dx = to_device(tu_dataset_row(&f->ds, FS_N1), (size_t)FS_N2 * FS_D * 8);
  f->dl = to_device(f->ds.labels + FS_N1, (size_t)FS_N2 * 4);
  f->dw = to_device(f->ds.weights + FS_N1, (size_t)FS_N2 * 8);
  f->cpu = cpu_context();
  f->gpu = cuda_context();
  gmle_stats *sc = NULL;
  int ok = f->dx && f->dl && f->dw && f->cpu && f->gpu &&
           gmle_stats_create(f->gpu, FS_D, FS_C, &f->gpu_stats) == GMLE_OK &&
           tu_dataset_add(f->gpu_stats, &f->ds, 0, FS_N1) == GMLE_OK &&
           gmle_stats_clone(f->gpu_stats, &f->dev_stats) == GMLE_OK &&
           tu_dataset_add(f->gpu_stats, &f->ds, FS_N1, FS_N2) == GMLE_OK &&
           gmle_cuda_stats_add_device(f->dev_stats, f->dx, GMLE_F64, FS_N2,
                                      FS_D, f->dl, f->dw) == GMLE_OK &&
           gmle_stats_create(f->cpu, FS_D, FS_C, &sc) == GMLE_OK &&
           tu_dataset_add(sc, &f->ds, 0, FS_N1) == GMLE_OK &&
           tu_dataset_add(sc, &f->ds, FS_N1, FS_N2) == GMLE_OK &&
           gmle_fit(sc, NULL, &f->cpu_model) == GMLE_OK;
  /* The undisturbed CUDA statistics against the CPU's, within the float64
   * contract. */
  if (ok) {
    CHECK(stats_diff(f->gpu_stats, sc, 1e-12) <= 1e-12);
    CHECK(stats_diff(f->dev_stats, sc, 1e-12) <= 1e-12);
  }
  gmle_stats_free(sc);
  return ok ? 0 : -1;
}

/* Means and covariances of two models within the float64 contract. */
static int models_close(const gmle_model *a, const gmle_model *b) {
  double ma[FS_D], mb[FS_D], ca[FS_D * FS_D], cb[FS_D * FS_D];
  for (size_t c = 0; c < FS_C; c++) {
    if (gmle_model_mean(a, c, ma) != GMLE_OK ||
        gmle_model_mean(b, c, mb) != GMLE_OK ||
        gmle_model_covariance(a, c, ca) != GMLE_OK ||
        gmle_model_covariance(b, c, cb) != GMLE_OK)
      return 0;
    if (tu_rel_frobenius(ma, mb, FS_D) > 1e-12 ||
        tu_rel_frobenius(ca, cb, FS_D * FS_D) > 1e-12)
      return 0;
  }
  return 1;
}

/* After a sticky fault: the context says lost on every later call, the
 * statistics are those before the failed batch, they save and load, and a
 * CPU context continues them to the same model as an undisturbed run. */
static void check_lost_and_continue(fault_ref *f, gmle_context *gpu,
                                    gmle_stats *st, const gmle_stats *snap,
                                    long k) {
  CHECK_MSG(tu_stats_raw_equal(st, snap), "k %ld: statistics changed", k);
  CHECK_STATUS(tu_dataset_add(st, &f->ds, FS_N1, 10), GMLE_E_DEVICE_LOST);
  CHECK_ERROR_HAS(gpu, "lost earlier");
  gmle_model *m = NULL;
  CHECK_STATUS(gmle_fit(st, NULL, &m), GMLE_E_DEVICE_LOST);
  gmle_model_free(m);
  CHECK_STATUS(tu_dataset_add(st, &f->ds, FS_N1, 10), GMLE_E_DEVICE_LOST);
  CHECK(tu_stats_raw_equal(st, snap));
  char path[600];
  gmle_stats *loaded = NULL;
  gmle_model *mc = NULL;
  CHECK(tu_path_join(path, sizeof path, f->dir, "lost.gmls") == 0);
  CHECK_STATUS(gmle_stats_save(st, path), GMLE_OK);
  CHECK_STATUS(gmle_stats_load(f->cpu, path, &loaded), GMLE_OK);
  if (loaded) {
    CHECK_MSG(tu_stats_raw_equal(loaded, snap), "k %ld: saved != before", k);
    CHECK_STATUS(tu_dataset_add(loaded, &f->ds, FS_N1, FS_N2), GMLE_OK);
    CHECK_STATUS(gmle_fit(loaded, NULL, &mc), GMLE_OK);
    CHECK_MSG(mc && models_close(mc, f->cpu_model),
              "k %ld: the CPU continuation's model differs", k);
  }
  gmle_model_free(mc);
  gmle_stats_free(loaded);
}

/* For k = 1, 2, ...: on a fresh context, add the first batch, arm `kind`
 * at the k-th call at `site`, and add the second batch. A failure leaves
 * the statistics bit-identical to before and gives the kind's status
 * (error: GMLE_E_DEVICE and the context goes on; oom: GMLE_E_DEVICE_OOM;
 * sticky: GMLE_E_DEVICE_LOST forever, with a CPU continuation); a success
 * (no fault left to fire, or an out-of-memory split and retried) is
 * bit-identical to the undisturbed run. Stops once a fault-free run makes
 * fewer than k counted calls. Returns the faults that fired. */
static long stats_fault_sweep(fault_ref *f, gmle_cuda_fault kind, unsigned site,
                              const char *site_name, int device_input) {
  long fired = 0, recovered = 0, k = 1;
  const size_t n2 = FS_N2;
  void *dx = f->dx, *dl = f->dl, *dw = f->dw;
  const gmle_stats *want = device_input ? f->dev_stats : f->gpu_stats;
  for (; k < 5000; k++) {
    gmle_context *gpu = cuda_context();
    if (!gpu) {
      CHECK(!"context");
      break;
    }
    gmle_stats *st = NULL, *snap = NULL;
    CHECK_STATUS(gmle_stats_create(gpu, FS_D, FS_C, &st), GMLE_OK);
    CHECK_STATUS(tu_dataset_add(st, &f->ds, 0, FS_N1), GMLE_OK);
    CHECK_STATUS(gmle_stats_clone(st, &snap), GMLE_OK);
    CHECK_STATUS(gmle__cuda_inject_fault_at(gpu, kind, site, k), GMLE_OK);
    const gmle_status s =
        device_input
            ? gmle_cuda_stats_add_device(st, dx, GMLE_F64, n2, FS_D, dl, dw)
            : tu_dataset_add(st, &f->ds, FS_N1, FS_N2);
    const long calls = gmle__cuda_call_count(gpu);
    if (s == GMLE_OK) {
      CHECK_MSG(kind == GMLE_CUDA_FAULT_OOM || calls < k,
                "%s at %s k %ld: the fault fired but the call succeeded",
                fault_name(kind), site_name, k);
      if (calls >= k)
        recovered++;
      CHECK_MSG(want && tu_stats_raw_equal(st, want),
                "%s at %s k %ld: result differs from the undisturbed run's",
                fault_name(kind), site_name, k);
    } else {
      fired++;
      const gmle_status expect = kind == GMLE_CUDA_FAULT_OOM ? GMLE_E_DEVICE_OOM
                                 : kind == GMLE_CUDA_FAULT_STICKY
                                     ? GMLE_E_DEVICE_LOST
                                     : GMLE_E_DEVICE;
      CHECK_MSG(s == expect, "%s at %s k %ld: %s (%s)", fault_name(kind),
                site_name, k, gmle_status_name(s), gmle_context_error(gpu));
      CHECK_MSG(tu_stats_raw_equal(st, snap),
                "%s at %s k %ld: statistics changed", fault_name(kind),
                site_name, k);
      if (kind == GMLE_CUDA_FAULT_STICKY) {
        CHECK_ERROR_HAS(gpu, "cudaErrorIllegalAddress");
        check_lost_and_continue(f, gpu, st, snap, k);
      } else {
        CHECK_ERROR_HAS(gpu, kind == GMLE_CUDA_FAULT_OOM ? "bytes free"
                                                         : "CUDA device");
        /* The context goes on, with the undisturbed result. */
        CHECK_STATUS(device_input ? gmle_cuda_stats_add_device(st, dx, GMLE_F64,
                                                               n2, FS_D, dl, dw)
                                  : tu_dataset_add(st, &f->ds, FS_N1, FS_N2),
                     GMLE_OK);
        CHECK_MSG(want && tu_stats_raw_equal(st, want),
                  "%s at %s k %ld: the retry differs", fault_name(kind),
                  site_name, k);
      }
    }
    gmle_stats_free(st);
    gmle_stats_free(snap);
    gmle_context_free(gpu);
    if (calls < k)
      break; /* the fault never fired: every call has been tried */
  }
  printf("  %s at %s%s: %ld calls, %ld failed cleanly, %ld recovered\n",
         fault_name(kind), site_name, device_input ? " (device input)" : "",
         k - 1, fired, recovered);
  if (kind == GMLE_CUDA_FAULT_OOM)
    CHECK(recovered >= 1);
  return fired + recovered;
}

/* The statistics sweeps of one fault kind at every site but cuBLAS (the
 * statistics make no cuBLAS call: see the scoring sweeps); out-of-memory:
 * at allocations, from host and from device memory. */
static void stats_fault_sweeps(gmle_cuda_fault kind) {
  fault_ref f;
  if (fault_ref_make(&f) != 0) {
    CHECK(!"fault_ref_make");
  } else if (kind == GMLE_CUDA_FAULT_OOM) {
    stats_fault_sweep(&f, kind, GMLE_CUDA_SITE_ALLOC, "allocations", 0);
    stats_fault_sweep(&f, kind, GMLE_CUDA_SITE_ALLOC, "allocations", 1);
  } else {
    for (size_t i = 0; i < sizeof fault_sites / sizeof fault_sites[0]; i++)
      if (fault_sites[i].site != GMLE_CUDA_SITE_BLAS)
        CHECK(stats_fault_sweep(&f, kind, fault_sites[i].site,
                                fault_sites[i].name, 0) >= 1);
  }
  fault_ref_free(&f);
}

TEST(gpu_fault_sweep_error_at_every_site) {
  if (have_gpu)
    stats_fault_sweeps(GMLE_CUDA_FAULT_ERROR);
}

TEST(gpu_fault_sweep_oom_retries_bit_identical) {
  if (have_gpu)
    stats_fault_sweeps(GMLE_CUDA_FAULT_OOM);
}

TEST(gpu_fault_sweep_sticky_loses_context_and_cpu_continues) {
  if (have_gpu)
    stats_fault_sweeps(GMLE_CUDA_FAULT_STICKY);
}

/* Scoring (cuBLAS included): for k = 1, 2, ... at every site, on a fresh
 * context with a fresh model, the k-th call of its first gmle_score (which
 * allocates its buffers) fails with the kind's status, or the call
 * succeeds; after an error or an out-of-memory the context scores again,
 * bit for bit the same on repeat and within the float64 contract of an
 * undisturbed context's scores; after a sticky fault every later call says
 * lost. */
static void score_fault_sweep(gmle_cuda_fault kind, unsigned site,
                              const char *site_name) {
  const size_t D = 10, C = 3;
  tu_dataset ds;
  if (tu_dataset_make(&ds, 81, 3000, D, C, GMLE_F64, D, 0.0, 0) != 0) {
    CHECK(!"tu_dataset_make");
    return;
  }
  const size_t nv = ds.n * C;
  double *ref = malloc(nv * 8), *out = malloc(nv * 8), *again = malloc(nv * 8);
  long k = 1, fired = 0;
  /* The undisturbed scores. */
  gmle_context *gpu0 = cuda_context();
  gmle_stats *st0 = NULL;
  gmle_model *m0 = NULL;
  int ok = ref && out && again && gpu0 &&
           gmle_stats_create(gpu0, D, C, &st0) == GMLE_OK &&
           tu_dataset_add(st0, &ds, 0, ds.n) == GMLE_OK &&
           gmle_fit(st0, NULL, &m0) == GMLE_OK &&
           gmle_score(gpu0, m0, ds.x, GMLE_F64, ds.n, D, GMLE_OUT_LOGPOST,
                      GMLE_F64, ref) == GMLE_OK;
  CHECK(ok);
  for (; ok && k < 2000; k++) {
    gmle_context *gpu = cuda_context();
    gmle_stats *st = NULL;
    gmle_model *m = NULL;
    if (!gpu) {
      CHECK(!"context");
      break;
    }
    CHECK_STATUS(gmle_stats_create(gpu, D, C, &st), GMLE_OK);
    CHECK_STATUS(tu_dataset_add(st, &ds, 0, ds.n), GMLE_OK);
    CHECK_STATUS(gmle_fit(st, NULL, &m), GMLE_OK);
    long calls = 0;
    if (m) {
      CHECK_STATUS(gmle__cuda_inject_fault_at(gpu, kind, site, k), GMLE_OK);
      const gmle_status s = gmle_score(gpu, m, ds.x, GMLE_F64, ds.n, D,
                                       GMLE_OUT_LOGPOST, GMLE_F64, out);
      calls = gmle__cuda_call_count(gpu);
      CHECK_STATUS(gmle__cuda_inject_fault(gpu, GMLE_CUDA_FAULT_NONE, 0),
                   GMLE_OK);
      fired += s != GMLE_OK;
      if (kind == GMLE_CUDA_FAULT_STICKY && s != GMLE_OK) {
        CHECK_MSG(s == GMLE_E_DEVICE_LOST, "sticky at %s k %ld: %s", site_name,
                  k, gmle_status_name(s));
        CHECK_STATUS(gmle_score(gpu, m, ds.x, GMLE_F64, ds.n, D,
                                GMLE_OUT_LOGPOST, GMLE_F64, out),
                     GMLE_E_DEVICE_LOST);
        CHECK_ERROR_HAS(gpu, "lost earlier");
      } else {
        CHECK_MSG(s == GMLE_OK ||
                      s == (kind == GMLE_CUDA_FAULT_OOM ? GMLE_E_DEVICE_OOM
                                                        : GMLE_E_DEVICE),
                  "%s at %s k %ld: %s (%s)", fault_name(kind), site_name, k,
                  gmle_status_name(s), gmle_context_error(gpu));
        CHECK_MSG(s != GMLE_OK || kind == GMLE_CUDA_FAULT_OOM || calls < k,
                  "%s at %s k %ld: the fault fired but the call succeeded",
                  fault_name(kind), site_name, k);
        CHECK_STATUS(gmle_score(gpu, m, ds.x, GMLE_F64, ds.n, D,
                                GMLE_OUT_LOGPOST, GMLE_F64, again),
                     GMLE_OK);
        if (s == GMLE_OK)
          CHECK(memcmp(out, again, nv * 8) == 0 || kind == GMLE_CUDA_FAULT_OOM);
        CHECK_STATUS(gmle_score(gpu, m, ds.x, GMLE_F64, ds.n, D,
                                GMLE_OUT_LOGPOST, GMLE_F64, out),
                     GMLE_OK);
        CHECK(memcmp(out, again, nv * 8) == 0);
        for (size_t i = 0; i < nv; i++)
          if (!(fabs(out[i] - ref[i]) <= 1e-12 * (1.0 + fabs(ref[i])))) {
            CHECK_MSG(0, "%s at %s k %ld: value %zu: %.17g vs %.17g",
                      fault_name(kind), site_name, k, i, out[i], ref[i]);
            break;
          }
      }
    }
    gmle_model_free(m);
    gmle_stats_free(st);
    gmle_context_free(gpu);
    if (calls < k)
      break;
  }
  printf("  scoring, %s at %s: %ld calls, %ld failed cleanly\n",
         fault_name(kind), site_name, k - 1, fired);
  if (kind != GMLE_CUDA_FAULT_OOM)
    CHECK(fired >= 1);
  gmle_model_free(m0);
  gmle_stats_free(st0);
  gmle_context_free(gpu0);
  free(ref);
  free(out);
  free(again);
  tu_dataset_free(&ds);
}

TEST(gpu_scoring_fault_sweeps) {
  if (!have_gpu)
    return;
  for (size_t i = 0; i < sizeof fault_sites / sizeof fault_sites[0]; i++) {
    score_fault_sweep(GMLE_CUDA_FAULT_ERROR, fault_sites[i].site,
                      fault_sites[i].name);
    score_fault_sweep(GMLE_CUDA_FAULT_STICKY, fault_sites[i].site,
                      fault_sites[i].name);
  }
  score_fault_sweep(GMLE_CUDA_FAULT_OOM, GMLE_CUDA_SITE_ALLOC, "allocations");
}

/* The environment variable arms the same faults as the call. */
TEST(gpu_fault_from_environment) {
  if (!have_gpu)
    return;
  setenv("GMLE_CUDA_FAIL_AT", "1:sticky", 1);
  gmle_context *gpu = cuda_context();
  unsetenv("GMLE_CUDA_FAIL_AT");
  gmle_stats *st = NULL;
  if (gpu) {
    CHECK_STATUS(gmle_stats_create(gpu, 3, 1, &st), GMLE_OK);
    const double x[6] = {1, 2, 3, 4, 5, 7};
    CHECK_STATUS(gmle_stats_add(st, x, GMLE_F64, 2, 3, NULL, NULL),
                 GMLE_E_DEVICE_LOST);
    CHECK(st && st->rows[0] == 0 && st->weight[0] == 0.0);
    CHECK_STATUS(gmle__cuda_inject_fault_at(gpu, GMLE_CUDA_FAULT_ERROR, 64, 1),
                 GMLE_E_INVALID_ARG);
  }
  gmle_stats_free(st);
  gmle_context_free(gpu);
}

/* More than 2^31 elements addressed: 64-bit indexing in every kernel, in
 * the statistics and in scoring. Needs about 11.8 GB of device memory; with
 * less it says SKIPPED (and why) rather than passing in silence. */
static void score_beyond_2_31(gmle_context *gpu, gmle_context *cpu,
                              const gmle_stats *sc, const float *rows,
                              const void *dx, size_t n, size_t D,
                              size_t stride) {
  gmle_model *m = NULL;
  gmle_fit_options opt;
  gmle_fit_options_init(&opt);
  CHECK_STATUS(gmle_fit(sc, &opt, &m), GMLE_OK);
  double *want = malloc(n * sizeof(double)), *got = malloc(n * sizeof(double));
  void *dout = NULL;
  if (m && want && got && rt.malloc_(&dout, n * sizeof(double)) == 0) {
    CHECK_STATUS(gmle_score(cpu, m, rows, GMLE_F32, n, D, GMLE_OUT_LOGLIK,
                            GMLE_F64, want),
                 GMLE_OK);
    CHECK_STATUS(gmle_cuda_score_device(gpu, m, dx, GMLE_F32, n, stride,
                                        GMLE_OUT_LOGLIK, GMLE_F64, dout),
                 GMLE_OK);
    CHECK(rt.memcpy_(got, dout, n * sizeof(double), D2H) == 0);
    size_t where = 0;
    CHECK_MSG(close_vals(got, want, GMLE_F64, n, 1e-10, &where),
              "row %zu: %.17g vs %.17g", where, got[where], want[where]);
  } else {
    CHECK(!"model or scoring buffers");
  }
  if (dout)
    rt.free_(dout);
  free(want);
  free(got);
  gmle_model_free(m);
}

TEST(gpu_batch_beyond_2_31_elements) {
  if (!have_gpu || rt_load() != 0)
    return;
  size_t fr = 0, tot = 0;
  const size_t n = 600000, D = 2, stride = 4096; /* 2.46e9 elements */
  const size_t bytes = n * stride * sizeof(float);
  if (rt.meminfo(&fr, &tot) != 0 || fr < bytes + ((size_t)2 << 30)) {
    printf("  SKIPPED gpu_batch_beyond_2_31_elements: needs %zu bytes of "
           "free device memory, %zu free\n",
           bytes + ((size_t)2 << 30), fr);
    return;
  }
  gmle_context *gpu = cuda_context(), *cpu = cpu_context();
  float *rows = malloc(n * D * sizeof(float));
  void *dx = NULL;
  if (gpu && cpu && rows && rt.malloc_(&dx, bytes) == 0) {
    tu_rng r;
    tu_seed(&r, 5);
    for (size_t i = 0; i < n * D; i++)
      rows[i] = (float)(3.0 + tu_normal(&r));
    int ok = 1;
    for (size_t i = 0; ok && i < n; i++)
      ok = rt.memcpy_((float *)dx + i * stride, rows + i * D, D * sizeof(float),
                      H2D) == 0;
    CHECK(ok);
    gmle_stats *sg = NULL, *sc = NULL;
    CHECK_STATUS(gmle_stats_create(gpu, D, 1, &sg), GMLE_OK);
    CHECK_STATUS(gmle_stats_create(cpu, D, 1, &sc), GMLE_OK);
    CHECK_STATUS(
        gmle_cuda_stats_add_device(sg, dx, GMLE_F32, n, stride, NULL, NULL),
        GMLE_OK);
    CHECK_STATUS(gmle_stats_add(sc, rows, GMLE_F32, n, D, NULL, NULL), GMLE_OK);
    if (sg && sc) /* float32 rows: the CPU's float32 products, see above */
      CHECK(stats_diff(sg, sc, 1e-12) <= 1e-6);
    if (sc)
      score_beyond_2_31(gpu, cpu, sc, rows, dx, n, D, stride);
    gmle_stats_free(sg);
    gmle_stats_free(sc);
  } else {
    printf("  SKIPPED gpu_batch_beyond_2_31_elements: could not allocate "
           "%zu bytes on the device\n",
           bytes);
  }
  if (dx)
    rt.free_(dx);
  free(rows);
  gmle_context_free(gpu);
  gmle_context_free(cpu);
}

#endif /* GMLE_TEST_CUDA */

int main(int argc, char **argv) {
  CHECK_INIT(argc, argv);
  /* This suite picks its backends itself. */
  unsetenv("GMLE_BACKEND");
  unsetenv("GMLE_DEVICE");
  RUN(libgmle_loads_no_cuda_library_by_itself);
  RUN(cuda_compiled_flag_matches_build);
#ifdef GMLE_TEST_CUDA
  const char *mp = getenv("GMLE_CUDA_MODULE");
  module_missing = mp && *mp && access(mp, F_OK) != 0;
  {
    gmle_context *ctx = NULL;
    have_gpu = gmle_context_create(GMLE_BACKEND_CUDA, -1, &ctx) == GMLE_OK;
    printf("CUDA device: %s\n",
           have_gpu ? gmle_context_device_name(ctx) : gmle_context_error(ctx));
    gmle_context_free(ctx);
  }
  RUN(cuda_context_opens_where_a_gpu_is_expected);
  RUN(explicit_cuda_without_gpu_names_the_cuda_error);
  RUN(gpu_devices_are_listed);
  RUN(missing_module_is_no_device_naming_dlopen);
  RUN(module_of_another_abi_is_refused_naming_both);
  RUN(auto_falls_back_with_one_notice_and_fits);
  RUN(cuda_entry_points_refuse_other_backends);
  RUN(gpu_statistics_match_cpu_and_repeat_bitwise);
  RUN(gpu_thousand_classes_match_cpu);
  RUN(gpu_scoring_matches_cpu_for_every_output);
  RUN(gpu_diag_spherical_scoring_within_expanded_form_bound);
  RUN(gpu_device_input_matches_host_input_and_is_validated);
  RUN(gpu_fault_sweep_error_at_every_site);
  RUN(gpu_fault_sweep_oom_retries_bit_identical);
  RUN(gpu_fault_sweep_sticky_loses_context_and_cpu_continues);
  RUN(gpu_scoring_fault_sweeps);
  RUN(gpu_fault_from_environment);
  RUN(gpu_batch_beyond_2_31_elements);
#else
  RUN(explicit_cuda_without_cuda_build_is_no_device);
#endif
  return CHECK_DONE();
}
