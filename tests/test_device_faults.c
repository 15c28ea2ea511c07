/* test_device_faults.c -- OpenCL device faults injected at every counted
 * OpenCL call of a batch's accumulation and of a scoring call (issue #6,
 * BAD_INPUTS case 30; RELIABILITY.md).
 *
 * gmle__opencl_test_fail_call(k, err) makes the k-th counted OpenCL call
 * fail with err instead of reaching the driver. For every k up to the
 * count of an undisturbed call, and for each kind of error:
 * - out of device memory (CL_MEM_OBJECT_ALLOCATION_FAILURE,
 *   CL_OUT_OF_RESOURCES): the batch is split and retried with bit-identical
 *   results, or the call returns GMLE_E_DEVICE_OOM with the statistics
 *   bit-identical to before and a retry gives the undisturbed result;
 * - other errors (a kernel-enqueue error CL_INVALID_KERNEL_ARGS, a failed
 *   copy's CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST): a failure while
 *   the batch's work is queued loses the context (GMLE_E_DEVICE_LOST now and
 *   on every later call), the host statistics are unchanged, can be saved,
 *   and continued on a CPU context to the same final model as an
 *   undisturbed run (bit for bit against the same split run undisturbed;
 *   within the float32 contract against an all-OpenCL run); a failure while
 *   setting up (program build, kernel creation, constant upload) is
 *   GMLE_E_DEVICE and leaves the context usable.
 * The suite runs in its .opencl entry (and wherever GMLE_BACKEND is unset)
 * and skips cleanly when no OpenCL device is there. */
#include "check.h"
#include "testutil.h"

#include "gmle_io.h"

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The test hooks of the OpenCL backend (absent without it). */
extern void gmle__opencl_test_fail_call(long k, int err) __attribute__((weak));
extern long gmle__opencl_test_call_count(void) __attribute__((weak));

/* The OpenCL error numbers (CL/cl.h), so that the suite builds without the
 * OpenCL headers. */
enum {
  CL_MEM_OBJECT_ALLOCATION_FAILURE_ = -4,
  CL_OUT_OF_RESOURCES_ = -5,
  CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST_ = -14,
  CL_INVALID_KERNEL_ARGS_ = -52
};

typedef struct fault_kind {
  int err;
  const char *name;
  int oom;
} fault_kind;

static const fault_kind kinds[4] = {
    {CL_MEM_OBJECT_ALLOCATION_FAILURE_, "CL_MEM_OBJECT_ALLOCATION_FAILURE", 1},
    {CL_OUT_OF_RESOURCES_, "CL_OUT_OF_RESOURCES", 1},
    {CL_INVALID_KERNEL_ARGS_, "CL_INVALID_KERNEL_ARGS", 0},
    {CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST_,
     "CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST", 0}};

enum { D = 6, C = 3, N = 3000, N_A = 1000, NQ = 600 };

static int have_opencl;
static int verbose; /* GMLE_TEST_VERBOSE: every sweep point's outcome */
static long total_points, total_recovered, total_failed, total_lost;

static gmle_context *opencl_context(void) {
  gmle_context *ctx = NULL;
  if (gmle_context_create(GMLE_BACKEND_OPENCL, -1, &ctx) != GMLE_OK) {
    printf("  opencl: %s\n", gmle_context_error(ctx));
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

/* Statistics on ctx equal, bit for bit, to src (merging into empty
 * statistics copies; no device call is made). */
static gmle_stats *stats_on(gmle_context *ctx, const gmle_stats *src) {
  gmle_stats *st = NULL;
  if (gmle_stats_create(ctx, gmle_stats_dim(src), gmle_stats_n_classes(src),
                        &st) != GMLE_OK ||
      gmle_stats_merge(st, src) != GMLE_OK) {
    gmle_stats_free(st);
    return NULL;
  }
  return st;
}

static gmle_status add_b(gmle_stats *st, const tu_dataset *ds) {
  return tu_dataset_add(st, ds, N_A, N - N_A);
}

/* Largest relative difference of fitted means and covariances (max over
 * classes of the relative Frobenius error). */
static double model_diff(const gmle_stats *a, const gmle_stats *b) {
  gmle_model *ma = NULL, *mb = NULL;
  double worst = INFINITY;
  if (gmle_fit(a, NULL, &ma) == GMLE_OK && gmle_fit(b, NULL, &mb) == GMLE_OK) {
    worst = 0;
    double x[D * D], y[D * D];
    for (size_t c = 0; c < C; c++) {
      gmle_model_mean(ma, c, x);
      gmle_model_mean(mb, c, y);
      double e = tu_max_rel_err(x, y, NULL, D);
      worst = e > worst ? e : worst;
      gmle_model_covariance(ma, c, x);
      gmle_model_covariance(mb, c, y);
      e = tu_rel_frobenius(x, y, D * D);
      worst = e > worst ? e : worst;
    }
  }
  gmle_model_free(ma);
  gmle_model_free(mb);
  return worst;
}

/* ---------------------------------------------------------------------- */
/* Accumulation                                                            */
/* ---------------------------------------------------------------------- */

typedef struct add_fixture {
  tu_dataset ds;
  gmle_context *cpu;
  gmle_stats *a_cpu;   /* rows [0, N_A) */
  gmle_stats *ref_cl;  /* all rows, the last N - N_A added on OpenCL */
  gmle_stats *ref_mix; /* the same, the last rows added on the CPU */
} add_fixture;

static int add_fixture_open(add_fixture *f) {
  memset(f, 0, sizeof *f);
  if (tu_dataset_make(&f->ds, 30, N, D, C, GMLE_F32, D, 10.0, 1) != 0)
    return -1;
  f->cpu = cpu_context();
  gmle_context *cl = opencl_context();
  int ok = f->cpu && cl &&
           gmle_stats_create(f->cpu, D, C, &f->a_cpu) == GMLE_OK &&
           tu_dataset_add(f->a_cpu, &f->ds, 0, N_A) == GMLE_OK;
  gmle_stats *on_cl = ok ? stats_on(cl, f->a_cpu) : NULL;
  ok = ok && on_cl && add_b(on_cl, &f->ds) == GMLE_OK &&
       (f->ref_cl = stats_on(f->cpu, on_cl)) != NULL &&
       (f->ref_mix = stats_on(f->cpu, f->a_cpu)) != NULL &&
       add_b(f->ref_mix, &f->ds) == GMLE_OK;
  gmle_stats_free(on_cl);
  gmle_context_free(cl);
  return ok ? 0 : -1;
}

static void add_fixture_close(add_fixture *f) {
  gmle_stats_free(f->a_cpu);
  gmle_stats_free(f->ref_cl);
  gmle_stats_free(f->ref_mix);
  gmle_context_free(f->cpu);
  tu_dataset_free(&f->ds);
}

/* One sweep point: a fresh OpenCL context holding rows [0, N_A), the k-th
 * call of adding the rest failing with kind. Returns the calls counted. */
static long add_point(const add_fixture *f, const fault_kind *kind, long k) {
  gmle_context *cl = opencl_context();
  gmle_stats *st = cl ? stats_on(cl, f->a_cpu) : NULL;
  gmle_stats *before = st ? stats_on(f->cpu, st) : NULL;
  if (!before) {
    CHECK(!"setup");
    gmle_stats_free(st);
    gmle_context_free(cl);
    return 0;
  }
  gmle__opencl_test_fail_call(k, kind->err);
  const gmle_status s = add_b(st, &f->ds);
  const long calls = gmle__opencl_test_call_count();
  gmle__opencl_test_fail_call(0, 0);
  if (verbose)
    printf("    add %s k %ld: %s %s\n", kind->name, k, gmle_status_name(s),
           gmle_context_error(cl));
  if (k == LONG_MAX) { /* the undisturbed count */
    CHECK_STATUS(s, GMLE_OK);
    CHECK(tu_stats_raw_equal(st, f->ref_cl));
  } else if (calls < k) {
    CHECK_MSG(0, "%s k %ld: only %ld calls", kind->name, k, calls);
  } else if (s == GMLE_OK) {
    /* absorbed (a failed flush) or split and retried: the same bits */
    total_recovered++;
    CHECK_MSG(tu_stats_raw_equal(st, f->ref_cl),
              "%s k %ld: recovered, but the statistics differ", kind->name, k);
  } else {
    CHECK_MSG(tu_stats_raw_equal(st, before),
              "%s k %ld: %s changed the statistics", kind->name, k,
              gmle_status_name(s));
    CHECK_ERROR_HAS(cl, kind->name);
    if (s == GMLE_E_DEVICE_LOST) {
      total_lost++;
      CHECK_MSG(!kind->oom, "%s k %ld: out of memory lost the context",
                kind->name, k);
      CHECK_ERROR_HAS(cl, "lost");
      /* every later call on the context */
      CHECK_STATUS(add_b(st, &f->ds), GMLE_E_DEVICE_LOST);
      CHECK_ERROR_HAS(cl, "lost earlier");
      gmle_model *m = NULL;
      CHECK_STATUS(gmle_fit(st, NULL, &m), GMLE_E_DEVICE_LOST);
      CHECK(m == NULL);
      gmle_model_free(m);
      CHECK(tu_stats_raw_equal(st, before));
      /* the host statistics continue on the CPU to the same model */
      gmle_stats *cont = stats_on(f->cpu, st);
      CHECK(cont != NULL);
      if (cont) {
        CHECK_STATUS(add_b(cont, &f->ds), GMLE_OK);
        CHECK_MSG(tu_stats_raw_equal(cont, f->ref_mix),
                  "%s k %ld: the CPU continuation differs from the same "
                  "split undisturbed",
                  kind->name, k);
        const double e = model_diff(cont, f->ref_cl);
        CHECK_MSG(e <= 1e-6, "%s k %ld: continuation vs all-OpenCL %.3g",
                  kind->name, k, e);
      }
      gmle_stats_free(cont);
    } else {
      total_failed++;
      CHECK_MSG(s == (kind->oom ? GMLE_E_DEVICE_OOM : GMLE_E_DEVICE),
                "%s k %ld: %s (%s)", kind->name, k, gmle_status_name(s),
                gmle_context_error(cl));
      /* the context still works, and gives the undisturbed result */
      CHECK_STATUS(add_b(st, &f->ds), GMLE_OK);
      CHECK_MSG(tu_stats_raw_equal(st, f->ref_cl),
                "%s k %ld: the retry differs", kind->name, k);
    }
  }
  gmle_stats_free(st);
  gmle_stats_free(before);
  gmle_context_free(cl);
  return calls;
}

static void add_sweep(int oom) {
  add_fixture f;
  if (add_fixture_open(&f) != 0) {
    CHECK(!"setup");
    add_fixture_close(&f);
    return;
  }
  for (int i = 0; i < 4; i++) {
    if (kinds[i].oom != oom)
      continue;
    const long n = add_point(&f, &kinds[i], LONG_MAX);
    const long lost0 = total_lost, rec0 = total_recovered;
    const long fail0 = total_failed;
    for (long k = 1; k <= n; k++)
      add_point(&f, &kinds[i], k);
    printf("  add, %-44s %3ld calls: %ld recovered, %ld failed cleanly, %ld "
           "lost\n",
           kinds[i].name, n, total_recovered - rec0, total_failed - fail0,
           total_lost - lost0);
    CHECK(n > 10);
    if (oom)
      CHECK(total_recovered - rec0 > 0);
    else
      CHECK(total_lost - lost0 > 0);
    total_points += n;
  }
  add_fixture_close(&f);
}

TEST(opencl_fault_sweep_add_oom_splits_bit_identical_or_fails_unchanged) {
  if (have_opencl)
    add_sweep(1);
}

TEST(opencl_fault_sweep_add_error_loses_context_cpu_continues_same_model) {
  if (have_opencl)
    add_sweep(0);
}

/* ---------------------------------------------------------------------- */
/* Scoring                                                                 */
/* ---------------------------------------------------------------------- */

typedef struct score_fixture {
  tu_dataset ds, q;
  gmle_context *cpu;
  gmle_stats *all_cpu;
  double *ref; /* NQ x C log-posteriors on OpenCL, undisturbed */
  double *out;
} score_fixture;

static int score_fixture_open(score_fixture *f) {
  memset(f, 0, sizeof *f);
  if (tu_dataset_make(&f->ds, 31, N, D, C, GMLE_F32, D, 10.0, 0) != 0 ||
      tu_dataset_make(&f->q, 32, NQ, D, C, GMLE_F64, D + 1, 10.0, 0) != 0)
    return -1;
  f->cpu = cpu_context();
  f->ref = malloc(NQ * C * sizeof(double));
  f->out = malloc(NQ * C * sizeof(double));
  return f->cpu && f->ref && f->out &&
                 gmle_stats_create(f->cpu, D, C, &f->all_cpu) == GMLE_OK &&
                 tu_dataset_add(f->all_cpu, &f->ds, 0, N) == GMLE_OK
             ? 0
             : -1;
}

static void score_fixture_close(score_fixture *f) {
  gmle_stats_free(f->all_cpu);
  gmle_context_free(f->cpu);
  free(f->ref);
  free(f->out);
  tu_dataset_free(&f->ds);
  tu_dataset_free(&f->q);
}

static gmle_status score_q(gmle_context *ctx, const gmle_model *m,
                           const score_fixture *f, double *out) {
  return gmle_score(ctx, m, f->q.x, GMLE_F64, NQ, f->q.stride, GMLE_OUT_LOGPOST,
                    GMLE_F64, out);
}

static long score_point(score_fixture *f, const fault_kind *kind, long k,
                        const char *dir) {
  gmle_context *cl = opencl_context();
  gmle_stats *st = cl ? stats_on(cl, f->all_cpu) : NULL;
  gmle_model *m = NULL;
  if (!st || gmle_fit(st, NULL, &m) != GMLE_OK) { /* uploads the model */
    CHECK(!"setup");
    gmle_stats_free(st);
    gmle_context_free(cl);
    return 0;
  }
  memset(f->out, 0, NQ * C * sizeof(double));
  gmle__opencl_test_fail_call(k, kind->err);
  const gmle_status s = score_q(cl, m, f, f->out);
  const long calls = gmle__opencl_test_call_count();
  gmle__opencl_test_fail_call(0, 0);
  if (verbose)
    printf("    score %s k %ld: %s %s\n", kind->name, k, gmle_status_name(s),
           gmle_context_error(cl));
  const size_t bytes = NQ * C * sizeof(double);
  if (k == LONG_MAX) {
    CHECK_STATUS(s, GMLE_OK);
    memcpy(f->ref, f->out, bytes);
  } else if (calls < k) {
    CHECK_MSG(0, "%s k %ld: only %ld calls", kind->name, k, calls);
  } else if (s == GMLE_OK) {
    total_recovered++;
    CHECK_MSG(memcmp(f->out, f->ref, bytes) == 0,
              "%s k %ld: recovered, but the scores differ", kind->name, k);
  } else if (s == GMLE_E_DEVICE_LOST) {
    total_lost++;
    CHECK_MSG(!kind->oom, "%s k %ld: out of memory lost the context",
              kind->name, k);
    CHECK_ERROR_HAS(cl, kind->name);
    CHECK_STATUS(score_q(cl, m, f, f->out), GMLE_E_DEVICE_LOST);
    CHECK_ERROR_HAS(cl, "lost earlier");
    /* the model is intact on the host: saved, loaded on the CPU, it gives
     * the scores of the undisturbed OpenCL run */
    char path[1100];
    tu_path_join(path, sizeof path, dir, "lost.npz");
    gmle_model *mc = NULL;
    CHECK_STATUS(gmle_model_save(m, path), GMLE_OK);
    CHECK_STATUS(gmle_model_load(f->cpu, path, &mc), GMLE_OK);
    remove(path);
    if (mc) {
      CHECK(tu_models_bit_equal(mc, m));
      CHECK_STATUS(score_q(f->cpu, mc, f, f->out), GMLE_OK);
      double worst = 0;
      for (size_t i = 0; i < NQ * C; i++) {
        const double e = fabs(f->out[i] - f->ref[i]) /
                         (fabs(f->ref[i]) > 1 ? fabs(f->ref[i]) : 1);
        worst = e > worst ? e : worst;
      }
      CHECK_MSG(worst <= 1e-10, "%s k %ld: CPU scores differ by %.3g",
                kind->name, k, worst);
    }
    gmle_model_free(mc);
  } else {
    total_failed++;
    CHECK_MSG(s == (kind->oom ? GMLE_E_DEVICE_OOM : GMLE_E_DEVICE),
              "%s k %ld: %s (%s)", kind->name, k, gmle_status_name(s),
              gmle_context_error(cl));
    CHECK_ERROR_HAS(cl, kind->name);
    CHECK_STATUS(score_q(cl, m, f, f->out), GMLE_OK);
    CHECK_MSG(memcmp(f->out, f->ref, bytes) == 0, "%s k %ld: retry differs",
              kind->name, k);
  }
  gmle_model_free(m);
  gmle_stats_free(st);
  gmle_context_free(cl);
  return calls;
}

TEST(opencl_fault_sweep_score_oom_retries_identical_errors_lose_context) {
  if (!have_opencl)
    return;
  score_fixture f;
  char dir[512];
  if (score_fixture_open(&f) != 0 || tu_tmpdir_create(dir, sizeof dir) != 0) {
    CHECK(!"setup");
    score_fixture_close(&f);
    return;
  }
  for (int i = 0; i < 4; i++) {
    const long n = score_point(&f, &kinds[i], LONG_MAX, dir);
    const long lost0 = total_lost, rec0 = total_recovered;
    const long fail0 = total_failed;
    for (long k = 1; k <= n; k++)
      score_point(&f, &kinds[i], k, dir);
    printf("  score, %-44s %3ld calls: %ld recovered, %ld failed cleanly, "
           "%ld lost\n",
           kinds[i].name, n, total_recovered - rec0, total_failed - fail0,
           total_lost - lost0);
    CHECK(n > 5);
    if (kinds[i].oom)
      CHECK(total_recovered - rec0 > 0 && total_lost == lost0);
    else
      CHECK(total_lost - lost0 > 0);
    total_points += n;
  }
  tu_tmpdir_remove(dir);
  score_fixture_close(&f);
}

int main(int argc, char **argv) {
  CHECK_INIT(argc, argv);
  const char *be = getenv("GMLE_BACKEND");
  if (be && *be && strcmp(be, "opencl") != 0) {
    printf("skipped: the device-fault suite runs in its .opencl entry\n");
    return CHECK_DONE();
  }
  if (!gmle__opencl_test_fail_call || !gmle__opencl_test_call_count) {
    printf("skipped: OpenCL is not compiled into this build\n");
    return CHECK_DONE();
  }
  verbose = getenv("GMLE_TEST_VERBOSE") != NULL;
  gmle_context *cl = opencl_context();
  have_opencl = cl != NULL;
  gmle_context_free(cl);
  if (!have_opencl)
    printf("skipped: no OpenCL device\n");
  RUN(opencl_fault_sweep_add_oom_splits_bit_identical_or_fails_unchanged);
  RUN(opencl_fault_sweep_add_error_loses_context_cpu_continues_same_model);
  RUN(opencl_fault_sweep_score_oom_retries_identical_errors_lose_context);
  printf("total: %ld OpenCL calls failed in turn: %ld recovered, %ld failed "
         "cleanly, %ld lost the context\n",
         total_points, total_recovered, total_failed, total_lost);
  return CHECK_DONE();
}
