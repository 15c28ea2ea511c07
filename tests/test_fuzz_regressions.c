/* test_fuzz_regressions.c -- bugs found by the fuzzing harnesses
 * (tests/fuzz), one test each, and the in-memory loaders those harnesses
 * use (they must read exactly what the file loaders read). The inputs that
 * found the bugs are in the corpora too (tests/fuzz/corpus/TARGET/crash-*),
 * replayed by ctest as fuzz_replay.TARGET. */
#include "check.h"
#include "testutil.h"

#include "gmle_io.h"
#include "io_mem.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static gmle_context *ctx;
static char dir[512];

static const char *tmp(const char *name) {
  static char buf[1024];
  tu_path_join(buf, sizeof buf, dir, name);
  return buf;
}

/* fuzz_stats: finite statistics whose sum divided by a tiny (subnormal)
 * weight overflows gave a "fitted" model with an infinite mean (the
 * diagonal variance -Inf was clamped to 0). The fit must refuse them. */
TEST(fuzz_fit_refuses_moments_that_overflow) {
  tu_dataset ds;
  CHECK(tu_dataset_make(&ds, 6, 300, 3, 2, GMLE_F64, 3, 0.0, 0) == 0);
  for (int cov = GMLE_COV_FULL; cov <= GMLE_COV_TIED; cov++) {
    gmle_fit_options opt;
    gmle_fit_options_init(&opt);
    opt.cov = (gmle_cov_type)cov;
    gmle_stats *st = NULL;
    CHECK_STATUS(gmle_stats_create(ctx, 3, 2, &st), GMLE_OK);
    if (!st)
      break;
    CHECK_STATUS(tu_dataset_add(st, &ds, 0, ds.n), GMLE_OK);
    /* The control: these statistics fit. */
    gmle_model *m = NULL;
    CHECK_STATUS(gmle_fit(st, &opt, &m), GMLE_OK);
    gmle_model_free(m);
    /* What the fuzzer's statistics file held for its class 2: a subnormal
     * weight, one large sum, small squares. */
    st->weight[1] = 5.308312756e-315;
    memset(st->sum + 3, 0, 3 * sizeof(double));
    st->sum[3 + 1] = -7.730970816934127e+119;
    memset(st->gram + st->gram_len, 0, st->gram_len * sizeof(double));
    m = NULL;
    CHECK_STATUS(gmle_fit(st, &opt, &m), GMLE_E_NONFINITE_STATS);
    CHECK_ERROR_HAS(ctx, "class 1");
    CHECK(m == NULL);
    gmle_model_free(m);
    gmle_stats_free(st);
  }
  tu_dataset_free(&ds);
}

/* fuzz_ingest: with many classes, float32 rows are added straight into the
 * accumulators (no partial to check first); weighted rows, or shifts and
 * sums already near float64's limits, overflowed them there: the add
 * returned OK and left Inf in the statistics. Such batches must take the
 * checked path: GMLE_E_OVERFLOW, statistics unchanged. */
TEST(fuzz_many_classes_float32_overflow_is_refused_state_unchanged) {
  enum { D = 2, C = 64, N = 128 };
  float x[N * D];
  int32_t lab[N];
  double w[N];
  for (size_t r = 0; r < N; r++) {
    lab[r] = (int32_t)(r % C);
    w[r] = 1.0;
    for (size_t j = 0; j < D; j++)
      x[r * D + j] = (float)(r % 7) + (float)j;
  }
  gmle_stats *st = NULL, *before = NULL;
  CHECK_STATUS(gmle_stats_create(ctx, D, C, &st), GMLE_OK);
  if (!st)
    return;
  CHECK_STATUS(gmle_stats_add(st, x, GMLE_F32, N, D, lab, w), GMLE_OK);
  CHECK_STATUS(gmle_stats_clone(st, &before), GMLE_OK);
  /* row 5: weight 1e300 times (1e30)^2 overflows float64 */
  for (size_t r = 0; r < N; r++) {
    x[r * D] = 1e30f;
    w[r] = r == 5 ? 1e300 : 1.0;
  }
  CHECK_STATUS(gmle_stats_add(st, x, GMLE_F32, N, D, lab, w), GMLE_E_OVERFLOW);
  CHECK_ERROR_HAS(ctx, "overflow");
  CHECK(before && tu_stats_raw_equal(st, before));
  gmle_stats_free(before);
  gmle_stats_free(st);
}

static void count_resolution(void *user, gmle_log_level level,
                             const char *msg) {
  (void)level;
  if (strstr(msg, "resolution"))
    ++*(int *)user;
}

/* fuzz_stats: the float32 resolution warning of gmle_fit took the float32
 * exponent of every class mean, also of float64 data beside float32
 * batches: ilogb(0) - 23 overflowed int (UBSan) for a mean below float32's
 * range, and a mean above it was "quantised" (an Inf spacing). Only the
 * float32 class warns here. */
TEST(fuzz_fit_resolution_check_with_means_beyond_float32_range) {
  const float x32[4] = {1e6f, 1e6f, 1e6f + 0.0625f, 1e6f};
  const double x64[2][4] = {{1e-50, 2e-50, 3e-50, 4e-50},
                            {1e39, 2e39, 3e39, 4e39}};
  for (int k = 0; k < 2; k++) {
    gmle_stats *st = NULL;
    CHECK_STATUS(gmle_stats_create(ctx, 1, 2, &st), GMLE_OK);
    if (!st)
      return;
    const int32_t l0[4] = {0, 0, 0, 0}, l1[4] = {1, 1, 1, 1};
    CHECK_STATUS(gmle_stats_add(st, x32, GMLE_F32, 4, 1, l0, NULL), GMLE_OK);
    CHECK_STATUS(gmle_stats_add(st, x64[k], GMLE_F64, 4, 1, l1, NULL), GMLE_OK);
    int warned = 0;
    gmle_context_set_log(ctx, count_resolution, &warned);
    gmle_model *m = NULL;
    CHECK_STATUS(gmle_fit(st, NULL, &m), GMLE_OK);
    gmle_context_set_log(ctx, NULL, NULL);
    CHECK_MSG(warned == 1, "%d resolution warnings, expected 1 (class 0)",
              warned);
    double mean = 0;
    CHECK(m && gmle_model_mean(m, 1, &mean) == GMLE_OK);
    CHECK_CLOSE(mean, x64[k][0] * 2.5, 1e-15);
    gmle_model_free(m);
    gmle_stats_free(st);
  }
}

/* fuzz_stats: a fitted full model whose class means lay ~1e306 apart with
 * unit-scale variances scored its own class mean as NaN (the centred form
 * L^-1 (x - m) - L^-1 (mu - m) was Inf - Inf). Such models are refused
 * with a message naming the class; means far apart, but within range,
 * still score finite values, and each mean scores best under its class. */
TEST(fuzz_full_model_with_means_beyond_float64_scoring_is_refused) {
  const double tiny[8] = {1e-20, 0, 0, 1e-20, 1e-20, 0, 0, 1e-20};
  const double unit[8] = {1, 0, 0, 1, 1, 0, 0, 1};
  const double log_2pi = 1.8378770664093454836;
  for (int k = 0; k < 2; k++) {
    const double far = k == 0 ? 1e306 : 1e3;
    const double means[4] = {0, 0, far, far};
    for (int tied = 0; tied < 2; tied++) {
      gmle_model *m = NULL;
      gmle_status s =
          gmle_model_create(ctx, 2, 2, tied ? GMLE_COV_TIED : GMLE_COV_FULL,
                            means, k == 0 ? tiny : unit, NULL, NULL, &m);
      if (k == 0) {
        CHECK_STATUS(s, GMLE_E_INVALID_MODEL);
        CHECK_ERROR_HAS(ctx, "standard deviations");
        CHECK(m == NULL);
      } else {
        CHECK_STATUS(s, GMLE_OK);
        double ll[4] = {NAN, NAN, NAN, NAN};
        CHECK_STATUS(gmle_score(ctx, m, means, GMLE_F64, 2, 2, GMLE_OUT_LOGLIK,
                                GMLE_F64, ll),
                     GMLE_OK);
        /* log N(mu; mu, I) = -log 2 pi in 2-D; the other class's mean is
         * 1e3 sqrt(2) standard deviations away: -log 2 pi - 1e6. */
        CHECK_CLOSE(ll[0], -log_2pi, 1e-12);
        CHECK_CLOSE(ll[3], -log_2pi, 1e-12);
        CHECK_CLOSE(ll[1], -log_2pi - 1e6, 1e-12);
        CHECK_CLOSE(ll[2], -log_2pi - 1e6, 1e-12);
      }
      gmle_model_free(m);
    }
  }
}

/* The in-memory loaders of the harnesses give bit for bit what the file
 * loaders give, and refuse a damaged copy the same way. */
TEST(fuzz_memory_loaders_match_file_loaders) {
  tu_dataset ds;
  CHECK(tu_dataset_make(&ds, 7, 200, 4, 3, GMLE_F64, 4, 0.0, 0) == 0);
  gmle_stats *st = NULL, *st_mem = NULL, *st_file = NULL;
  gmle_model *m = NULL, *m_mem = NULL, *m_file = NULL;
  CHECK_STATUS(gmle_stats_create(ctx, 4, 3, &st), GMLE_OK);
  CHECK_STATUS(tu_dataset_add(st, &ds, 0, ds.n), GMLE_OK);
  CHECK_STATUS(gmle_fit(st, NULL, &m), GMLE_OK);
  CHECK_STATUS(gmle_stats_save(st, tmp("s.gst")), GMLE_OK);
  CHECK_STATUS(gmle_model_save(m, tmp("m.npz")), GMLE_OK);
  size_t ns = 0, nm = 0;
  unsigned char *bs = tu_slurp(tmp("s.gst"), &ns);
  unsigned char *bm = tu_slurp(tmp("m.npz"), &nm);
  CHECK(bs && bm);
  if (bs && bm) {
    CHECK_STATUS(gmle_stats_load(ctx, tmp("s.gst"), &st_file), GMLE_OK);
    CHECK_STATUS(gmle__stats_load_mem(ctx, "s", bs, ns, &st_mem), GMLE_OK);
    CHECK(st_file && st_mem && tu_stats_raw_equal(st_file, st_mem));
    CHECK_STATUS(gmle_model_load(ctx, tmp("m.npz"), &m_file), GMLE_OK);
    CHECK_STATUS(gmle__model_load_mem(ctx, "m", bm, nm, &m_mem), GMLE_OK);
    CHECK(m_file && m_mem);
    for (size_t c = 0; m_file && m_mem && c < 3; c++) {
      double a[16], b[16];
      CHECK(gmle_model_covariance(m_file, c, a) == GMLE_OK &&
            gmle_model_covariance(m_mem, c, b) == GMLE_OK &&
            memcmp(a, b, sizeof a) == 0);
      CHECK(gmle_model_mean(m_file, c, a) == GMLE_OK &&
            gmle_model_mean(m_mem, c, b) == GMLE_OK &&
            memcmp(a, b, 4 * sizeof(double)) == 0);
    }
    /* Damage: one byte of the payload; truncation. */
    bs[70] ^= 1;
    gmle_stats *bad = NULL;
    CHECK_STATUS(gmle__stats_load_mem(ctx, "s", bs, ns, &bad), GMLE_E_CORRUPT);
    CHECK_ERROR_HAS(ctx, "CRC-32");
    CHECK(bad == NULL);
    gmle_model *badm = NULL;
    CHECK_STATUS(gmle__model_load_mem(ctx, "m", bm, nm / 2, &badm),
                 GMLE_E_CORRUPT);
    CHECK(badm == NULL);
    CHECK_STATUS(gmle__model_load_mem(ctx, "m", NULL, 0, &badm),
                 GMLE_E_BAD_FORMAT);
    CHECK(badm == NULL);
  }
  free(bs);
  free(bm);
  gmle_stats_free(st);
  gmle_stats_free(st_mem);
  gmle_stats_free(st_file);
  gmle_model_free(m);
  gmle_model_free(m_mem);
  gmle_model_free(m_file);
  tu_dataset_free(&ds);
}

int main(int argc, char **argv) {
  CHECK_INIT(argc, argv);
  ctx = tu_context();
  if (!ctx || tu_tmpdir_create(dir, sizeof dir) != 0) {
    printf("setup failed\n");
    return 1;
  }
  RUN(fuzz_fit_refuses_moments_that_overflow);
  RUN(fuzz_fit_resolution_check_with_means_beyond_float32_range);
  RUN(fuzz_full_model_with_means_beyond_float64_scoring_is_refused);
  RUN(fuzz_memory_loaders_match_file_loaders);
  RUN(fuzz_many_classes_float32_overflow_is_refused_state_unchanged);
  tu_tmpdir_remove(dir);
  gmle_context_free(ctx);
  return CHECK_DONE();
}
