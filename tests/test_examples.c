/* test_examples.c -- the worked examples: a univariate hand set whose MLE
 * and maximum log-likelihood are known exactly, and a two-class 2-D problem
 * fitted and then used to classify new points. */
#include "check.h"
#include "testutil.h"

#include "gmle.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG2PI 1.8378770664093454835606594728112353

/* {2, 4, 4, 4, 5, 5, 7, 9}: mean 5, sum of squared deviations 32, so
 * sigma^2 = 32 / 8 = 4 exactly (the MLE divides by n, not n - 1) and the
 * maximum log-likelihood is -n/2 (log 2pi + log sigma^2 + 1)
 *   = -4 (log 2pi + log 4 + 1) = -16.896685710116940... */
static const double hand[8] = {2, 4, 4, 4, 5, 5, 7, 9};
static const double hand_loglik = -16.89668571011694;

static void univariate_hand_set(gmle_dtype dtype) {
  gmle_context *ctx = tu_context();
  CHECK(ctx != NULL);
  if (!ctx)
    return;
  float xf[8];
  for (int i = 0; i < 8; i++)
    xf[i] = (float)hand[i];
  const void *x = dtype == GMLE_F32 ? (const void *)xf : (const void *)hand;
  gmle_stats *st = NULL;
  gmle_model *m = NULL;
  CHECK_STATUS(gmle_stats_create(ctx, 1, 1, &st), GMLE_OK);
  if (st) {
    CHECK_STATUS(gmle_stats_add(st, x, dtype, 8, 1, NULL, NULL), GMLE_OK);
    CHECK_STATUS(gmle_fit(st, NULL, &m), GMLE_OK);
  }
  if (m) {
    double mu = 0, var = 0, p = 0;
    CHECK_STATUS(gmle_model_mean(m, 0, &mu), GMLE_OK);
    CHECK_STATUS(gmle_model_covariance(m, 0, &var), GMLE_OK);
    CHECK_STATUS(gmle_model_prior(m, 0, &p), GMLE_OK);
    CHECK_MSG(mu == 5.0, "mean %.17g, expected exactly 5", mu);
    CHECK_MSG(var == 4.0, "variance %.17g, expected exactly 4 (divide by n)",
              var);
    CHECK(p == 1.0);
    /* the hand value, and the closed form from it */
    double ll = 0;
    CHECK_STATUS(gmle_model_loglik(m, 0, &ll), GMLE_OK);
    CHECK_REL(ll, hand_loglik, 1e-14);
    CHECK_REL(ll, -4.0 * (LOG2PI + log(4.0) + 1.0), 1e-14);
    /* and the same as the sum of the eight row log-densities */
    double rows[8];
    CHECK_STATUS(gmle_score(ctx, m, x, dtype, 8, 1, GMLE_OUT_LOGLIK,
                            GMLE_F64, rows),
                 GMLE_OK);
    long double sum = 0.0L;
    for (int i = 0; i < 8; i++) {
      double dv = hand[i] - 5.0;
      double want = -0.5 * (LOG2PI + log(4.0) + dv * dv / 4.0);
      CHECK_REL(rows[i], want, 1e-14);
      sum += rows[i];
    }
    CHECK_REL((double)sum, hand_loglik, 1e-14);
    /* BIC / AIC with p = 2 (mean and variance), n = 8 */
    double bic = 0, aic = 0;
    CHECK(gmle_model_n_params(m) == 2);
    CHECK_STATUS(gmle_model_information(m, &bic, &aic), GMLE_OK);
    CHECK_REL(bic, -2.0 * hand_loglik + 2.0 * log(8.0), 1e-14);
    CHECK_REL(aic, -2.0 * hand_loglik + 4.0, 1e-14);
  }
  gmle_model_free(m);
  gmle_stats_free(st);
  gmle_context_free(ctx);
}

TEST(example_univariate_hand_set_mean_5_variance_4_f64) {
  univariate_hand_set(GMLE_F64);
}

TEST(example_univariate_hand_set_mean_5_variance_4_f32) {
  univariate_hand_set(GMLE_F32);
}

TEST(example_univariate_weights_equal_repeated_hand_values) {
  /* {2, 4, 5, 7, 9} with weights {1, 3, 2, 1, 1} is the hand set again */
  gmle_context *ctx = tu_context();
  CHECK(ctx != NULL);
  if (!ctx)
    return;
  const double x[5] = {2, 4, 5, 7, 9}, w[5] = {1, 3, 2, 1, 1};
  gmle_stats *st = NULL;
  gmle_model *m = NULL;
  CHECK_STATUS(gmle_stats_create(ctx, 1, 1, &st), GMLE_OK);
  if (st) {
    CHECK_STATUS(gmle_stats_add(st, x, GMLE_F64, 5, 1, NULL, w), GMLE_OK);
    CHECK_STATUS(gmle_fit(st, NULL, &m), GMLE_OK);
  }
  if (m) {
    double mu = 0, var = 0, n = 0, ll = 0;
    uint64_t rows = 0;
    CHECK_STATUS(gmle_model_mean(m, 0, &mu), GMLE_OK);
    CHECK_STATUS(gmle_model_covariance(m, 0, &var), GMLE_OK);
    CHECK_STATUS(gmle_model_count(m, 0, &n), GMLE_OK);
    CHECK_STATUS(gmle_stats_rows(st, 0, &rows), GMLE_OK);
    CHECK(mu == 5.0);
    CHECK(var == 4.0);
    CHECK(n == 8.0);
    CHECK(rows == 5);
    CHECK_STATUS(gmle_model_loglik(m, 0, &ll), GMLE_OK);
    CHECK_REL(ll, hand_loglik, 1e-14);
  }
  gmle_model_free(m);
  gmle_stats_free(st);
  gmle_context_free(ctx);
}

TEST(example_two_class_2d_classifies_new_points) {
  /* class 0 around [-1, -1], class 1 around [1, 1], sd 0.5, 300 points
   * each; 1000 new points from the same two classes. */
  gmle_context *ctx = tu_context();
  CHECK(ctx != NULL);
  if (!ctx)
    return;
  const size_t n = 600, nt = 1000;
  const double truth[4] = {-1, -1, 1, 1};
  double *x = malloc(n * 2 * sizeof *x), *xt = malloc(nt * 2 * sizeof *xt);
  int32_t *y = malloc(n * sizeof *y), *yt = malloc(nt * sizeof *yt);
  int32_t *pred = malloc(nt * sizeof *pred);
  double *post = malloc(nt * 2 * sizeof *post);
  double *joint = malloc(nt * 2 * sizeof *joint);
  double *dens = malloc(nt * sizeof *dens);
  gmle_stats *st = NULL;
  gmle_model *m = NULL;
  if (!x || !xt || !y || !yt || !pred || !post || !joint || !dens) {
    CHECK(!"setup");
    goto done;
  }
  tu_rng r;
  tu_seed(&r, 2024);
  for (size_t i = 0; i < n; i++) {
    y[i] = (int32_t)(i % 2);
    for (int j = 0; j < 2; j++)
      x[i * 2 + j] = truth[y[i] * 2 + j] + 0.5 * tu_normal(&r);
  }
  for (size_t i = 0; i < nt; i++) {
    yt[i] = (int32_t)tu_below(&r, 2);
    for (int j = 0; j < 2; j++)
      xt[i * 2 + j] = truth[yt[i] * 2 + j] + 0.5 * tu_normal(&r);
  }
  CHECK_STATUS(gmle_stats_create(ctx, 2, 2, &st), GMLE_OK);
  if (st) {
    CHECK_STATUS(gmle_stats_add(st, x, GMLE_F64, n, 2, y, NULL), GMLE_OK);
    CHECK_STATUS(gmle_fit(st, NULL, &m), GMLE_OK);
  }
  if (!m)
    goto done;
  /* fitted means within 0.15 of the truth (sd of the estimate ~0.03) and
   * covariances near 0.25 I; priors 1/2 */
  double mu[2][2], cov[2][4], pri[2];
  long double chol[2][4];
  for (size_t k = 0; k < 2; k++) {
    CHECK_STATUS(gmle_model_mean(m, k, mu[k]), GMLE_OK);
    CHECK_STATUS(gmle_model_covariance(m, k, cov[k]), GMLE_OK);
    CHECK_STATUS(gmle_model_prior(m, k, &pri[k]), GMLE_OK);
    CHECK(fabs(mu[k][0] - truth[k * 2]) < 0.15);
    CHECK(fabs(mu[k][1] - truth[k * 2 + 1]) < 0.15);
    CHECK(fabs(cov[k][0] - 0.25) < 0.08 && fabs(cov[k][3] - 0.25) < 0.08);
    CHECK(fabs(cov[k][1]) < 0.08 && cov[k][1] == cov[k][2]);
    CHECK(pri[k] == 0.5);
    CHECK(tu_cholesky(2, cov[k], chol[k]) == 0);
  }
  CHECK_STATUS(gmle_score(ctx, m, xt, GMLE_F64, nt, 2, GMLE_OUT_LABEL,
                          GMLE_F64, pred),
               GMLE_OK);
  CHECK_STATUS(gmle_score(ctx, m, xt, GMLE_F64, nt, 2, GMLE_OUT_LOGPOST,
                          GMLE_F64, post),
               GMLE_OK);
  CHECK_STATUS(gmle_score(ctx, m, xt, GMLE_F64, nt, 2, GMLE_OUT_JOINT,
                          GMLE_F64, joint),
               GMLE_OK);
  CHECK_STATUS(gmle_score(ctx, m, xt, GMLE_F64, nt, 2, GMLE_OUT_DENSITY,
                          GMLE_F64, dens),
               GMLE_OK);
  size_t correct = 0, disagree = 0;
  for (size_t i = 0; i < nt; i++) {
    correct += pred[i] == yt[i];
    /* the Bayes rule computed here with the fitted parameters */
    long double j[2];
    for (int k = 0; k < 2; k++)
      j[k] = logl((long double)pri[k]) +
             tu_logpdf_chol(2, xt + i * 2, mu[k], chol[k]);
    int best = j[1] > j[0];
    if (fabsl(j[1] - j[0]) > 1e-9L && pred[i] != best)
      disagree++;
    long double lse = tu_logsumexp(j, 2);
    for (int k = 0; k < 2; k++) {
      CHECK_CLOSE(joint[i * 2 + k], (double)j[k], 1e-12);
      CHECK_CLOSE(post[i * 2 + k], (double)(j[k] - lse), 1e-12);
    }
    CHECK_CLOSE(dens[i], (double)lse, 1e-12);
    CHECK_CLOSE(exp(post[i * 2]) + exp(post[i * 2 + 1]), 1.0, 1e-12);
  }
  printf("  accuracy %.1f%% on %zu new points\n", 100.0 * (double)correct / nt,
         nt);
  CHECK(correct >= 95 * nt / 100);
  CHECK_MSG(disagree == 0, "%zu labels differ from the Bayes rule", disagree);
  /* float32 copies of the new points get the same labels */
  float *xf = malloc(nt * 2 * sizeof *xf);
  int32_t *pf = malloc(nt * sizeof *pf);
  if (xf && pf) {
    for (size_t i = 0; i < nt * 2; i++)
      xf[i] = (float)xt[i];
    CHECK_STATUS(gmle_score(ctx, m, xf, GMLE_F32, nt, 2, GMLE_OUT_LABEL,
                            GMLE_F64, pf),
                 GMLE_OK);
    size_t same = 0;
    for (size_t i = 0; i < nt; i++)
      same += pf[i] == pred[i];
    CHECK(same >= nt - 2); /* only exact ties may move */
  }
  free(xf);
  free(pf);
done:
  gmle_model_free(m);
  gmle_stats_free(st);
  free(x);
  free(xt);
  free(y);
  free(yt);
  free(pred);
  free(post);
  free(joint);
  free(dens);
  gmle_context_free(ctx);
}

int main(int argc, char **argv) {
  CHECK_INIT(argc, argv);
  RUN(example_univariate_hand_set_mean_5_variance_4_f64);
  RUN(example_univariate_hand_set_mean_5_variance_4_f32);
  RUN(example_univariate_weights_equal_repeated_hand_values);
  RUN(example_two_class_2d_classifies_new_points);
  return CHECK_DONE();
}
