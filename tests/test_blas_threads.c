/* test_blas_threads.c -- gmle's dense LAPACK/BLAS sections on small
 * matrices run OpenBLAS on one thread and give the caller's thread setting
 * back: after gmle_fit, gmle_model_create and gmle_score the number of
 * OpenBLAS threads is what the program set, whatever it was, and wide
 * models (D >= 256) leave it alone throughout. The fitted models are the
 * same whatever the setting. */
#include "check.h"
#include "testutil.h"

#include "gmle.h"

#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Fit one class of n rows of dim d (a fixed, well-conditioned sample), with
 * the program's OpenBLAS threads set to `threads`; the model's covariance
 * into cov. Returns 0 on success. */
static int fit_with(gmle_context *ctx, size_t n, size_t d, int threads,
                    double *cov) {
  openblas_set_num_threads(threads);
  const int before = openblas_get_num_threads();
  double *x = malloc(n * d * sizeof *x);
  gmle_stats *st = NULL;
  gmle_model *m = NULL, *m2 = NULL;
  int rc = -1;
  if (!x)
    goto done;
  tu_rng r;
  tu_seed(&r, 77u + (unsigned)d);
  for (size_t i = 0; i < n * d; i++)
    x[i] = tu_normal(&r) + (double)(i % d);
  CHECK_STATUS(gmle_stats_create(ctx, d, 1, &st), GMLE_OK);
  if (!st)
    goto done;
  CHECK_STATUS(gmle_stats_add(st, x, GMLE_F64, n, d, NULL, NULL), GMLE_OK);
  CHECK_STATUS(gmle_fit(st, NULL, &m), GMLE_OK);
  CHECK_MSG(openblas_get_num_threads() == before,
            "D=%zu: %d OpenBLAS threads after gmle_fit, the program set %d",
            d, openblas_get_num_threads(), before);
  if (!m)
    goto done;
  CHECK_STATUS(gmle_model_covariance(m, 0, cov), GMLE_OK);
  double mu[512];
  CHECK_STATUS(gmle_model_mean(m, 0, mu), GMLE_OK);
  const double prior = 1.0;
  CHECK_STATUS(gmle_model_create(ctx, d, 1, GMLE_COV_FULL, mu, cov, &prior,
                                 NULL, &m2),
               GMLE_OK);
  CHECK_MSG(openblas_get_num_threads() == before,
            "D=%zu: %d OpenBLAS threads after gmle_model_create, the "
            "program set %d",
            d, openblas_get_num_threads(), before);
  double ll[4];
  CHECK_STATUS(gmle_score(ctx, m, x, GMLE_F64, 4, d, GMLE_OUT_LOGLIK,
                          GMLE_F64, ll),
               GMLE_OK);
  CHECK_MSG(openblas_get_num_threads() == before,
            "D=%zu: %d OpenBLAS threads after gmle_score, the program set %d",
            d, openblas_get_num_threads(), before);
  rc = 0;
done:
  gmle_model_free(m);
  gmle_model_free(m2);
  gmle_stats_free(st);
  free(x);
  return rc;
}

static void settings_restored(size_t d) {
  gmle_context *ctx = tu_context();
  CHECK(ctx != NULL);
  double *a = malloc(d * d * sizeof *a), *b = malloc(d * d * sizeof *b);
  CHECK(a && b);
  if (ctx && a && b) {
    const int saved = openblas_get_num_threads();
    const size_t n = 4 * d + 50;
    CHECK(fit_with(ctx, n, d, 2, a) == 0);
    CHECK(fit_with(ctx, n, d, 1, b) == 0);
    /* the same arithmetic on one thread or two */
    CHECK_MSG(tu_rel_frobenius(a, b, d * d) <= 1e-12,
              "D=%zu: covariances differ by %.3g between thread settings", d,
              tu_rel_frobenius(a, b, d * d));
    openblas_set_num_threads(saved);
  }
  free(a);
  free(b);
  gmle_context_free(ctx);
}

TEST(blas_threads_restored_after_small_fit) { settings_restored(40); }
TEST(blas_threads_left_alone_for_wide_models) { settings_restored(300); }

int main(int argc, char **argv) {
  CHECK_INIT(argc, argv);
  RUN(blas_threads_restored_after_small_fit);
  RUN(blas_threads_left_alone_for_wide_models);
  return CHECK_DONE();
}
