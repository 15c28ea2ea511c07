/* test_cross_backend.c -- BAD_INPUTS cases 18 and 29 across backends:
 * partial statistics accumulated on different backends (CPU, OpenCL, CUDA:
 * whichever this machine has) merge in any order to the single-pass result,
 * serialised partials round-trip bit for bit, and AUTO leaves a host-CPU
 * OpenCL device (PoCL) to the native CPU backend with one notice.
 * Tolerance: float64 input, 1e-12 relative (the accuracy contract). The
 * suite picks its backends itself, so its .cpu and .opencl entries run the
 * same checks. */
#define _POSIX_C_SOURCE 200809L /* unsetenv */
#include "check.h"
#include "testutil.h"

#include "gmle_io.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { D = 4, C = 3, N = 6000, PARTS = 3 };

/* Largest relative error of class means and covariances (fits without
 * floor) against the long double two-pass reference. */
static double error_vs_ref(const gmle_stats *st, const tu_ref *ref) {
  gmle_fit_options o;
  gmle_fit_options_init(&o);
  o.rel_floor = 0;
  gmle_model *m = NULL;
  if (gmle_fit(st, &o, &m) != GMLE_OK)
    return INFINITY;
  double worst = 0, a[D * D], b[D * D];
  for (size_t c = 0; c < C; c++) {
    gmle_model_mean(m, c, a);
    tu_ref_mean(ref, c, b);
    double e = tu_max_rel_err(a, b, NULL, D);
    worst = e > worst ? e : worst;
    gmle_model_covariance(m, c, a);
    tu_ref_cov(ref, GMLE_COV_FULL, c, b);
    e = tu_rel_frobenius(a, b, D * D);
    worst = e > worst ? e : worst;
  }
  gmle_model_free(m);
  return worst;
}

TEST(badinput_18_partials_from_every_backend_merge_in_any_order_round_trip) {
  static const gmle_backend order[3] = {GMLE_BACKEND_CPU, GMLE_BACKEND_OPENCL,
                                        GMLE_BACKEND_CUDA};
  gmle_context *ctx[PARTS] = {NULL, NULL, NULL};
  const char *used[PARTS];
  /* part p on the p-th backend present, else on the CPU */
  for (int p = 0; p < PARTS; p++) {
    if (gmle_context_create(order[p], -1, &ctx[p]) != GMLE_OK) {
      gmle_context_free(ctx[p]);
      ctx[p] = NULL;
      if (gmle_context_create(GMLE_BACKEND_CPU, -1, &ctx[p]) != GMLE_OK) {
        CHECK(!"cpu context");
        gmle_context_free(ctx[p]);
        ctx[p] = NULL;
      }
    }
    used[p] = ctx[p] ? gmle_backend_name(gmle_context_backend(ctx[p])) : "-";
  }
  printf("  partials on %s, %s, %s\n", used[0], used[1], used[2]);
  tu_dataset ds;
  tu_ref ref;
  char dir[512];
  gmle_stats *part[PARTS] = {NULL, NULL, NULL};
  if (!ctx[0] || !ctx[1] || !ctx[2] ||
      tu_dataset_make(&ds, 18, N, D, C, GMLE_F64, D, 50.0, 1) != 0) {
    CHECK(!"setup");
    goto free_ctx;
  }
  if (tu_ref_dataset(&ref, &ds) != 0 ||
      tu_tmpdir_create(dir, sizeof dir) != 0) {
    CHECK(!"setup");
    tu_dataset_free(&ds);
    goto free_ctx;
  }
  /* ragged parts: 1000, 3500, 1500 rows */
  static const size_t first[PARTS + 1] = {0, 1000, 4500, N};
  for (int p = 0; p < PARTS; p++) {
    CHECK_STATUS(gmle_stats_create(ctx[p], D, C, &part[p]), GMLE_OK);
    if (part[p])
      CHECK_STATUS(
          tu_dataset_add(part[p], &ds, first[p], first[p + 1] - first[p]),
          GMLE_OK);
  }
  if (!part[0] || !part[1] || !part[2])
    goto done;
  /* serialised partials come back bit for bit, onto any backend */
  for (int p = 0; p < PARTS; p++) {
    char path[1100];
    tu_path_join(path, sizeof path, dir, "part.gst");
    gmle_stats *back = NULL;
    CHECK_STATUS(gmle_stats_save(part[p], path), GMLE_OK);
    CHECK_STATUS(gmle_stats_load(ctx[(p + 1) % PARTS], path, &back), GMLE_OK);
    CHECK_MSG(back && tu_stats_raw_equal(back, part[p]),
              "part %d (%s) does not round-trip", p, used[p]);
    gmle_stats_free(back);
    remove(path);
  }
  /* every order of merging, each accumulated on each backend */
  static const int perms[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2},
                                  {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
  gmle_stats *first_result = NULL;
  for (int q = 0; q < 6; q++) {
    gmle_stats *acc = NULL;
    CHECK_STATUS(gmle_stats_create(ctx[q % PARTS], D, C, &acc), GMLE_OK);
    for (int i = 0; acc && i < PARTS; i++)
      CHECK_STATUS(gmle_stats_merge(acc, part[perms[q][i]]), GMLE_OK);
    /* and associativity: (a + b) + c against a + (b + c) */
    gmle_stats *bc = NULL, *a_bc = NULL;
    CHECK_STATUS(gmle_stats_clone(part[perms[q][1]], &bc), GMLE_OK);
    if (bc)
      CHECK_STATUS(gmle_stats_merge(bc, part[perms[q][2]]), GMLE_OK);
    CHECK_STATUS(gmle_stats_clone(part[perms[q][0]], &a_bc), GMLE_OK);
    if (a_bc && bc)
      CHECK_STATUS(gmle_stats_merge(a_bc, bc), GMLE_OK);
    if (acc && a_bc) {
      const double e1 = error_vs_ref(acc, &ref), e2 = error_vs_ref(a_bc, &ref);
      CHECK_MSG(e1 <= 1e-12 && e2 <= 1e-12,
                "order %d%d%d: error %.3g (left), %.3g (right)", perms[q][0],
                perms[q][1], perms[q][2], e1, e2);
      uint64_t r0 = 0, r1 = 0;
      for (size_t c = 0; c < C; c++) {
        gmle_stats_rows(acc, c, &r0);
        gmle_stats_rows(a_bc, c, &r1);
        CHECK(r0 == ref.rows[c] && r1 == ref.rows[c]);
      }
      if (!first_result)
        gmle_stats_clone(acc, &first_result);
    }
    gmle_stats_free(acc);
    gmle_stats_free(bc);
    gmle_stats_free(a_bc);
  }
  CHECK(first_result != NULL);
  gmle_stats_free(first_result);
done:
  for (int p = 0; p < PARTS; p++)
    gmle_stats_free(part[p]);
  tu_tmpdir_remove(dir);
  tu_ref_free(&ref);
  tu_dataset_free(&ds);
free_ctx:
  for (int p = 0; p < PARTS; p++)
    gmle_context_free(ctx[p]);
}

/* Case 29: with only host-CPU OpenCL devices (PoCL), AUTO takes the CPU
 * backend with one notice saying why; an explicit OpenCL context still
 * opens them. */
TEST(badinput_29_auto_leaves_host_cpu_opencl_devices_to_the_cpu_backend) {
  gmle_device_info info[16];
  size_t n = 0;
  int gpu = 0;
  if (gmle_device_list(GMLE_BACKEND_OPENCL, info, 16, &n, NULL, 0) != GMLE_OK ||
      n == 0) {
    printf("  skipped: no OpenCL device\n");
    return;
  }
  for (size_t i = 0; i < n && i < 16; i++)
    gpu |= info[i].is_gpu;
  gmle_context *cu = NULL;
  const int cuda = gmle_context_create(GMLE_BACKEND_CUDA, -1, &cu) == GMLE_OK;
  gmle_context_free(cu);
  if (gpu || cuda) {
    printf("  skipped: an OpenCL GPU or a CUDA device is present\n");
    return;
  }
  gmle_context *a = NULL, *e = NULL;
  tu_log log;
  CHECK_STATUS(gmle_context_create(GMLE_BACKEND_AUTO, -1, &a), GMLE_OK);
  if (a) {
    CHECK(gmle_context_backend(a) == GMLE_BACKEND_CPU);
    tu_log_attach(a, &log);
    CHECK_MSG(log.count == 1 && tu_log_has(&log, "host-CPU"), "notice: \"%s\"",
              log.text);
  }
  CHECK_STATUS(gmle_context_create(GMLE_BACKEND_OPENCL, -1, &e), GMLE_OK);
  CHECK(e && gmle_context_backend(e) == GMLE_BACKEND_OPENCL);
  gmle_context_free(a);
  gmle_context_free(e);
}

int main(int argc, char **argv) {
  CHECK_INIT(argc, argv);
  /* This suite picks its backends itself. */
  unsetenv("GMLE_BACKEND");
  unsetenv("GMLE_DEVICE");
  RUN(badinput_18_partials_from_every_backend_merge_in_any_order_round_trip);
  RUN(badinput_29_auto_leaves_host_cpu_opencl_devices_to_the_cpu_backend);
  return CHECK_DONE();
}
