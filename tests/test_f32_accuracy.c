/* test_f32_accuracy.c -- the accuracy contract for float32 rows on data
 * chosen to stress the CPU backend's float32 products (host/gram*.c): the
 * shifted values are rounded once to float32 and their products summed in
 * float32 over runs of 8 rows and over one tile, tiles in float64.
 *
 * Every case fits through the public API (batches of 65,536 rows, as the
 * CLI streams them) and compares with testutil's long double two-pass
 * reference: means within 1e-7 relative (relative to max(|mean|, sd) per
 * feature, so that a mean of zero is measurable), covariances within 1e-6
 * relative Frobenius (docs/ARCHITECTURE.md, accuracy contract). The errors are
 * printed: BENCHMARKS.md quotes them. */
#include "check.h"
#include "testutil.h"

#include "gmle.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOL32_MEAN 1e-7
#define TOL32_COV 1e-6
#define BATCH 65536

/* How the rows of a case are made. */
typedef struct spec {
  const char *name;
  size_t n, d, c;
  double offset; /* |mean| / sd of every feature, sign alternating */
  double rho;    /* correlation of neighbouring features (AR(1)) */
  int scales;    /* feature j has sd 2^(j - d/2) */
  double drift;  /* class means move by drift sd over the rows */
  int sorted;    /* labels in long runs */
} spec;

/* AR(1) covariance with per-feature sds s: rho^|i-j| s_i s_j. */
static void ar1(size_t d, double rho, const double *s, double *cov) {
  for (size_t i = 0; i < d; i++)
    for (size_t j = 0; j < d; j++)
      cov[i * d + j] = pow(rho, fabs((double)i - (double)j)) * s[i] * s[j];
}

static void run_case(const spec *sp, double *worst_mean, double *worst_cov) {
  const size_t n = sp->n, d = sp->d, c = sp->c;
  gmle_context *ctx = tu_context();
  float *x = tu_alloc_data(n, d, GMLE_F32);
  int32_t *lab = malloc(n * sizeof *lab);
  double *means = malloc(c * d * sizeof *means);
  double *covs = malloc(c * d * d * sizeof *covs);
  double *sd = malloc(d * sizeof *sd);
  double *a = malloc(d * d * sizeof *a), *b = malloc(d * d * sizeof *b);
  gmle_stats *st = NULL;
  gmle_model *m = NULL;
  tu_ref ref;
  int have_ref = 0;
  *worst_mean = *worst_cov = INFINITY;
  if (!ctx || !x || !lab || !means || !covs || !sd || !a || !b) {
    CHECK(!"setup");
    goto done;
  }
  tu_rng r;
  tu_seed(&r, 4242u + n + d * 7 + c);
  for (size_t j = 0; j < d; j++)
    sd[j] = sp->scales ? ldexp(1.0, (int)j - (int)(d / 2)) : 1.0;
  for (size_t k = 0; k < c; k++) {
    for (size_t j = 0; j < d; j++)
      means[k * d + j] =
          ((j + k) % 2 ? -1.0 : 1.0) * sp->offset * sd[j] + 2.0 * (double)k;
    ar1(d, sp->rho, sd, covs + k * d * d);
  }
  if (sp->sorted)
    for (size_t i = 0; i < n; i++)
      lab[i] = (int32_t)((i / 5000) % c);
  else
    tu_labels_random(&r, n, c, lab);
  CHECK(tu_gen_gaussian(&r, n, d, c, means, covs, lab, GMLE_F32, d, x) == 0);
  if (sp->drift != 0.0) /* a slow drift of every mean, sd units */
    for (size_t i = 0; i < n; i++)
      for (size_t j = 0; j < d; j++)
        x[i * d + j] = (float)((double)x[i * d + j] +
                               sp->drift * sd[j] * (double)i / (double)n);
  CHECK_STATUS(gmle_stats_create(ctx, d, c, &st), GMLE_OK);
  for (size_t at = 0; st && at < n; at += BATCH) {
    const size_t k = n - at < BATCH ? n - at : BATCH;
    CHECK_STATUS(gmle_stats_add(st, x + at * d, GMLE_F32, k, d, lab + at, NULL),
                 GMLE_OK);
  }
  gmle_fit_options o;
  gmle_fit_options_init(&o);
  if (st)
    CHECK_STATUS(gmle_fit(st, &o, &m), GMLE_OK);
  have_ref = tu_ref_compute(&ref, x, GMLE_F32, n, d, d, c, lab, NULL) == 0;
  CHECK(have_ref);
  if (!m || !have_ref)
    goto done;
  double wm = 0.0, wc = 0.0;
  for (size_t k = 0; k < c; k++) {
    CHECK_STATUS(gmle_model_covariance(m, k, a), GMLE_OK);
    tu_ref_cov(&ref, GMLE_COV_FULL, k, b);
    const double ec = tu_rel_frobenius(a, b, d * d);
    double scale[512];
    for (size_t j = 0; j < d && j < 512; j++)
      scale[j] = sqrt(b[j * d + j]); /* the reference sd */
    CHECK_STATUS(gmle_model_mean(m, k, a), GMLE_OK);
    tu_ref_mean(&ref, k, b);
    const double em = tu_max_rel_err(a, b, scale, d);
    if (em > wm || isnan(em))
      wm = em;
    if (ec > wc || isnan(ec))
      wc = ec;
  }
  *worst_mean = wm;
  *worst_cov = wc;
  printf("  %-44s N=%-8zu D=%-3zu C=%-3zu mean err %.2e, cov err %.2e\n",
         sp->name, n, d, c, wm, wc);
  CHECK_MSG(wm <= TOL32_MEAN, "%s: mean rel err %.3g", sp->name, wm);
  CHECK_MSG(wc <= TOL32_COV, "%s: covariance rel err %.3g", sp->name, wc);
done:
  if (have_ref)
    tu_ref_free(&ref);
  gmle_model_free(m);
  gmle_stats_free(st);
  free(x);
  free(lab);
  free(means);
  free(covs);
  free(sd);
  free(a);
  free(b);
  gmle_context_free(ctx);
}

static double all_mean, all_cov;

static void run(const spec *sp) {
  double em, ec;
  run_case(sp, &em, &ec);
  if (!(em <= all_mean))
    all_mean = em;
  if (!(ec <= all_cov))
    all_cov = ec;
}

/* |mean|/sd = 1e4, strongly correlated features, a million rows of one
 * class (many float32 tiles summed in float64). */
TEST(f32_offset_1e4_correlated_one_class_many_rows) {
  spec s = {"|mean|/sd 1e4, rho 0.99, one class",
            1000000,
            40,
            1,
            1e4,
            0.99,
            0,
            0.0,
            0};
  run(&s);
}

/* |mean|/sd = 1e5: rows carry 8 significant bits; products exact, long
 * float32 sums of their squares would round with a bias. */
TEST(f32_offset_1e5_coarsely_quantised) {
  spec s = {"|mean|/sd 1e5, rho 0.6", 400000, 40, 4, 1e5, 0.6, 0, 0.0, 0};
  run(&s);
}

/* Means near zero: x - k is not exact in float32 (rounded once). */
TEST(f32_mean_near_zero_rounded_differences) {
  spec s = {
      "mean ~ 0 (x - k rounded), rho 0.6", 400000, 40, 4, 0.0, 0.6, 0, 0.0, 0};
  run(&s);
}

/* Feature scales from 2^-20 to 2^19 (sd), |mean|/sd = 100. */
TEST(f32_feature_scales_2e_minus20_to_2e19) {
  spec s = {
      "sd 2^-20 .. 2^19, |mean|/sd 100", 300000, 40, 3, 100.0, 0.3, 1, 0.0, 0};
  run(&s);
}

/* The class means drift by 6 sd over the rows: the shift chosen from the
 * first rows ends far from the mean (float32 products are refused once the
 * mean is more than 4 sd from the shift). */
TEST(f32_drifting_means_far_from_shift) {
  spec s = {
      "means drift 6 sd, |mean|/sd 1e3", 600000, 24, 2, 1e3, 0.6, 0, 6.0, 0};
  run(&s);
}

/* Labels in runs of 5000 rows (the staging tiles fill one class at a time),
 * D = 128 (wide rows, several column vectors per block). */
TEST(f32_sorted_labels_wide_rows) {
  spec s = {"runs of 5000 labels, D 128, |mean|/sd 1e4",
            150000,
            128,
            5,
            1e4,
            0.6,
            0,
            0.0,
            1};
  run(&s);
}

/* Many classes: the partial statistics of a batch's classes outweigh its
 * rows, so the rows go straight into the accumulator (src/stats.c
 * add_direct; float64 products there). */
TEST(f32_many_classes_direct_accumulation) {
  spec s = {"800 classes (direct accumulation), mean ~ 0",
            240000,
            24,
            800,
            0.0,
            0.6,
            0,
            0.0,
            0};
  run(&s);
}

int main(int argc, char **argv) {
  CHECK_INIT(argc, argv);
  RUN(f32_offset_1e4_correlated_one_class_many_rows);
  RUN(f32_offset_1e5_coarsely_quantised);
  RUN(f32_mean_near_zero_rounded_differences);
  RUN(f32_feature_scales_2e_minus20_to_2e19);
  RUN(f32_drifting_means_far_from_shift);
  RUN(f32_sorted_labels_wide_rows);
  RUN(f32_many_classes_direct_accumulation);
  printf("  worst over the cases: mean err %.2e, cov err %.2e\n", all_mean,
         all_cov);
  return CHECK_DONE();
}
