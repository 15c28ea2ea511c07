/* test_model.c -- the model object: gmle_model_create's validation
 * (BAD_INPUTS case 23: which class, which check), getters, class names,
 * information criteria, and allocation failures. */
#include "check.h"
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static gmle_context *new_ctx(void) {
  gmle_context *ctx = NULL;
  if (gmle_context_create(GMLE_BACKEND_AUTO, -1, &ctx) != GMLE_OK) {
    printf("  cannot create a context: %s\n", gmle_context_error(ctx));
    gmle_context_free(ctx);
    return NULL;
  }
  return ctx;
}

/* Three classes in 2 dimensions, valid, for every covariance type. */
static const double MEANS[6] = {0, 0, 1, 2, -3, 0.5};
static const double FULL[12] = {2, 0.5, 0.5,    1,  /**/ 1, 0,
                                0, 1,   /**/ 4, -1, -1,     3};
static const double DIAG[6] = {2, 1, 1, 1, 4, 3};
static const double SPH[3] = {2, 1, 0.25};
static const double TIED[4] = {2, 0.5, 0.5, 1};
static const double PRIORS[3] = {0.2, 0.3, 0.5};

static const double *cov_of(gmle_cov_type t) {
  return t == GMLE_COV_FULL        ? FULL
         : t == GMLE_COV_DIAG      ? DIAG
         : t == GMLE_COV_SPHERICAL ? SPH
                                   : TIED;
}

TEST(model_create_rejects_nan_mean) {
  gmle_context *ctx = new_ctx();
  CHECK(ctx);
  if (!ctx)
    return;
  double mu[6];
  memcpy(mu, MEANS, sizeof mu);
  mu[1 * 2 + 1] = NAN;
  gmle_model *m = (gmle_model *)1;
  CHECK_STATUS(
      gmle_model_create(ctx, 2, 3, GMLE_COV_FULL, mu, FULL, PRIORS, NULL, &m),
      GMLE_E_INVALID_MODEL);
  CHECK(m == NULL);
  CHECK_ERROR_HAS(ctx, "class 1");
  CHECK_ERROR_HAS(ctx, "mean of feature 1 is NaN");
  mu[3] = INFINITY;
  CHECK_STATUS(
      gmle_model_create(ctx, 2, 3, GMLE_COV_DIAG, mu, DIAG, NULL, NULL, &m),
      GMLE_E_INVALID_MODEL);
  CHECK_ERROR_HAS(ctx, "class 1");
  CHECK_ERROR_HAS(ctx, "+Inf");
  gmle_context_free(ctx);
}

TEST(model_create_rejects_non_symmetric_covariance) {
  gmle_context *ctx = new_ctx();
  CHECK(ctx);
  if (!ctx)
    return;
  double S[12];
  memcpy(S, FULL, sizeof S);
  S[8 + 1] = -1.2; /* class 2: (0, 1) = -1.2, (1, 0) = -1 */
  gmle_model *m = NULL;
  CHECK_STATUS(
      gmle_model_create(ctx, 2, 3, GMLE_COV_FULL, MEANS, S, PRIORS, NULL, &m),
      GMLE_E_INVALID_MODEL);
  CHECK_ERROR_HAS(ctx, "class 2");
  CHECK_ERROR_HAS(ctx, "not symmetric");
  /* within the relative tolerance 1e-10: accepted */
  S[8 + 1] = -1.0 * (1 + 1e-12);
  CHECK_STATUS(
      gmle_model_create(ctx, 2, 3, GMLE_COV_FULL, MEANS, S, PRIORS, NULL, &m),
      GMLE_OK);
  gmle_model_free(m);
  m = NULL;
  double T[4] = {2, 0.5, 0.4, 1};
  CHECK_STATUS(
      gmle_model_create(ctx, 2, 3, GMLE_COV_TIED, MEANS, T, PRIORS, NULL, &m),
      GMLE_E_INVALID_MODEL);
  CHECK_ERROR_HAS(ctx, "tied covariance");
  CHECK_ERROR_HAS(ctx, "not symmetric");
  gmle_context_free(ctx);
}

TEST(model_create_rejects_non_positive_definite_covariance) {
  gmle_context *ctx = new_ctx();
  CHECK(ctx);
  if (!ctx)
    return;
  double S[12];
  memcpy(S, FULL, sizeof S);
  S[8 + 1] = S[8 + 2] = 4; /* class 2: [[4, 4], [4, 3]], det < 0 */
  gmle_model *m = NULL;
  CHECK_STATUS(
      gmle_model_create(ctx, 2, 3, GMLE_COV_FULL, MEANS, S, PRIORS, NULL, &m),
      GMLE_E_INVALID_MODEL);
  CHECK(m == NULL);
  CHECK_ERROR_HAS(ctx, "class 2");
  CHECK_ERROR_HAS(ctx, "not positive definite");
  CHECK_ERROR_HAS(ctx, "minor 2");
  /* exactly singular (collinear) */
  double T[4] = {1, 2, 2, 4};
  CHECK_STATUS(
      gmle_model_create(ctx, 2, 3, GMLE_COV_TIED, MEANS, T, PRIORS, NULL, &m),
      GMLE_E_INVALID_MODEL);
  CHECK_ERROR_HAS(ctx, "tied covariance");
  CHECK_ERROR_HAS(ctx, "not positive definite");
  gmle_context_free(ctx);
}

TEST(model_create_rejects_non_positive_variance) {
  gmle_context *ctx = new_ctx();
  CHECK(ctx);
  if (!ctx)
    return;
  gmle_model *m = NULL;
  double v[6];
  memcpy(v, DIAG, sizeof v);
  v[1 * 2 + 0] = -0.5;
  CHECK_STATUS(
      gmle_model_create(ctx, 2, 3, GMLE_COV_DIAG, MEANS, v, PRIORS, NULL, &m),
      GMLE_E_INVALID_MODEL);
  CHECK_ERROR_HAS(ctx, "class 1");
  CHECK_ERROR_HAS(ctx, "variance of feature 0 is -0.5");
  double s[3] = {1, 1, 0};
  CHECK_STATUS(gmle_model_create(ctx, 2, 3, GMLE_COV_SPHERICAL, MEANS, s,
                                 PRIORS, NULL, &m),
               GMLE_E_INVALID_MODEL);
  CHECK_ERROR_HAS(ctx, "class 2");
  CHECK_ERROR_HAS(ctx, "spherical variance");
  double S[12];
  memcpy(S, FULL, sizeof S);
  S[3] = -1; /* class 0, (1, 1) */
  CHECK_STATUS(
      gmle_model_create(ctx, 2, 3, GMLE_COV_FULL, MEANS, S, PRIORS, NULL, &m),
      GMLE_E_INVALID_MODEL);
  CHECK_ERROR_HAS(ctx, "class 0");
  CHECK_ERROR_HAS(ctx, "variance of feature 1");
  /* non-finite covariance entries */
  memcpy(S, FULL, sizeof S);
  S[4 + 2] = NAN;
  CHECK_STATUS(
      gmle_model_create(ctx, 2, 3, GMLE_COV_FULL, MEANS, S, PRIORS, NULL, &m),
      GMLE_E_INVALID_MODEL);
  CHECK_ERROR_HAS(ctx, "class 1");
  CHECK_ERROR_HAS(ctx, "(1, 0) is NaN");
  memcpy(v, DIAG, sizeof v);
  v[5] = INFINITY;
  CHECK_STATUS(
      gmle_model_create(ctx, 2, 3, GMLE_COV_DIAG, MEANS, v, PRIORS, NULL, &m),
      GMLE_E_INVALID_MODEL);
  CHECK_ERROR_HAS(ctx, "class 2");
  CHECK_ERROR_HAS(ctx, "+Inf");
  CHECK(m == NULL);
  gmle_context_free(ctx);
}

TEST(model_create_rejects_bad_priors_and_counts) {
  gmle_context *ctx = new_ctx();
  CHECK(ctx);
  if (!ctx)
    return;
  gmle_model *m = NULL;
  const double p1[3] = {0.2, 0.3, 0.6};
  CHECK_STATUS(
      gmle_model_create(ctx, 2, 3, GMLE_COV_DIAG, MEANS, DIAG, p1, NULL, &m),
      GMLE_E_INVALID_MODEL);
  CHECK_ERROR_HAS(ctx, "sum to 1.1");
  CHECK_ERROR_HAS(ctx, "not 1");
  const double p2[3] = {0.7, -0.2, 0.5};
  CHECK_STATUS(
      gmle_model_create(ctx, 2, 3, GMLE_COV_DIAG, MEANS, DIAG, p2, NULL, &m),
      GMLE_E_INVALID_MODEL);
  CHECK_ERROR_HAS(ctx, "class 1: prior is -0.2");
  const double p3[3] = {0.5, NAN, 0.5};
  CHECK_STATUS(
      gmle_model_create(ctx, 2, 3, GMLE_COV_DIAG, MEANS, DIAG, p3, NULL, &m),
      GMLE_E_INVALID_MODEL);
  CHECK_ERROR_HAS(ctx, "class 1: prior");
  /* within 1e-9 of 1: accepted */
  const double p4[3] = {0.2, 0.3, 0.5 + 5e-10};
  CHECK_STATUS(
      gmle_model_create(ctx, 2, 3, GMLE_COV_DIAG, MEANS, DIAG, p4, NULL, &m),
      GMLE_OK);
  gmle_model_free(m);
  m = NULL;
  const double n1[3] = {10, -1, 3};
  CHECK_STATUS(
      gmle_model_create(ctx, 2, 3, GMLE_COV_DIAG, MEANS, DIAG, PRIORS, n1, &m),
      GMLE_E_INVALID_MODEL);
  CHECK_ERROR_HAS(ctx, "class 1: count is -1");
  CHECK(m == NULL);
  gmle_context_free(ctx);
}

TEST(model_create_rejects_bad_arguments) {
  gmle_context *ctx = new_ctx();
  CHECK(ctx);
  if (!ctx)
    return;
  gmle_model *m = NULL;
  CHECK_STATUS(
      gmle_model_create(NULL, 2, 3, GMLE_COV_DIAG, MEANS, DIAG, NULL, NULL, &m),
      GMLE_E_INVALID_ARG);
  CHECK_STATUS(gmle_model_create(ctx, 2, 3, GMLE_COV_DIAG, MEANS, DIAG, NULL,
                                 NULL, NULL),
               GMLE_E_INVALID_ARG);
  CHECK_STATUS(
      gmle_model_create(ctx, 2, 3, GMLE_COV_DIAG, NULL, DIAG, NULL, NULL, &m),
      GMLE_E_INVALID_ARG);
  CHECK_ERROR_HAS(ctx, "means is NULL");
  CHECK_STATUS(
      gmle_model_create(ctx, 2, 3, GMLE_COV_DIAG, MEANS, NULL, NULL, NULL, &m),
      GMLE_E_INVALID_ARG);
  CHECK_STATUS(
      gmle_model_create(ctx, 0, 3, GMLE_COV_DIAG, MEANS, DIAG, NULL, NULL, &m),
      GMLE_E_INVALID_ARG);
  CHECK_ERROR_HAS(ctx, "0 features");
  CHECK_STATUS(
      gmle_model_create(ctx, 2, 0, GMLE_COV_DIAG, MEANS, DIAG, NULL, NULL, &m),
      GMLE_E_INVALID_ARG);
  CHECK_STATUS(gmle_model_create(ctx, 2, 3, (gmle_cov_type)9, MEANS, DIAG, NULL,
                                 NULL, &m),
               GMLE_E_INVALID_ARG);
  CHECK_ERROR_HAS(ctx, "covariance type 9");
  CHECK_STATUS(gmle_model_create(ctx, (size_t)1 << 40, (size_t)1 << 30,
                                 GMLE_COV_FULL, MEANS, DIAG, NULL, NULL, &m),
               GMLE_E_TOO_LARGE);
  CHECK_ERROR_HAS(ctx, "overflows");
  CHECK(m == NULL);
  gmle_context_free(ctx);
}

/* Empty classes (count 0 or prior 0) may carry zero covariances. */
TEST(model_create_accepts_empty_class_with_zero_covariance) {
  gmle_context *ctx = new_ctx();
  CHECK(ctx);
  if (!ctx)
    return;
  double S[12];
  memcpy(S, FULL, sizeof S);
  memset(S + 4, 0, 4 * sizeof(double));
  const double counts[3] = {5, 0, 7};
  gmle_model *m = NULL;
  CHECK_STATUS(
      gmle_model_create(ctx, 2, 3, GMLE_COV_FULL, MEANS, S, PRIORS, counts, &m),
      GMLE_OK);
  gmle_class_report rep;
  CHECK_STATUS(gmle_model_report(m, 1, &rep), GMLE_OK);
  CHECK(rep.empty == 1 && rep.weight == 0);
  CHECK_STATUS(gmle_model_report(m, 0, &rep), GMLE_OK);
  CHECK(rep.empty == 0 && rep.weight == 5);
  gmle_model_free(m);
  m = NULL;
  const double pri[3] = {0.5, 0, 0.5};
  CHECK_STATUS(
      gmle_model_create(ctx, 2, 3, GMLE_COV_FULL, MEANS, S, pri, NULL, &m),
      GMLE_OK);
  gmle_model_free(m);
  m = NULL;
  /* but the same zero covariance on a class with data is refused */
  CHECK_STATUS(
      gmle_model_create(ctx, 2, 3, GMLE_COV_FULL, MEANS, S, PRIORS, NULL, &m),
      GMLE_E_INVALID_MODEL);
  CHECK_ERROR_HAS(ctx, "class 1");
  gmle_context_free(ctx);
}

TEST(model_getters_return_parameters) {
  gmle_context *ctx = new_ctx();
  CHECK(ctx);
  if (!ctx)
    return;
  const gmle_cov_type types[4] = {GMLE_COV_FULL, GMLE_COV_DIAG,
                                  GMLE_COV_SPHERICAL, GMLE_COV_TIED};
  const size_t params[4] = {6 + 9 + 2, 6 + 6 + 2, 6 + 3 + 2, 6 + 3 + 2};
  for (int t = 0; t < 4; t++) {
    gmle_model *m = NULL;
    CHECK_STATUS(gmle_model_create(ctx, 2, 3, types[t], MEANS, cov_of(types[t]),
                                   t == 1 ? NULL : PRIORS, NULL, &m),
                 GMLE_OK);
    if (!m)
      continue;
    CHECK(gmle_model_dim(m) == 2);
    CHECK(gmle_model_n_classes(m) == 3);
    CHECK(gmle_model_cov_type(m) == types[t]);
    CHECK(gmle_model_n_params(m) == params[t]);
    for (size_t c = 0; c < 3; c++) {
      double mu[2], S[4], p, n;
      CHECK_STATUS(gmle_model_mean(m, c, mu), GMLE_OK);
      CHECK(mu[0] == MEANS[2 * c] && mu[1] == MEANS[2 * c + 1]);
      CHECK_STATUS(gmle_model_covariance(m, c, S), GMLE_OK);
      double want[4];
      switch (types[t]) {
      case GMLE_COV_FULL:
        memcpy(want, FULL + 4 * c, sizeof want);
        break;
      case GMLE_COV_TIED:
        memcpy(want, TIED, sizeof want);
        break;
      case GMLE_COV_DIAG:
        want[0] = DIAG[2 * c];
        want[3] = DIAG[2 * c + 1];
        want[1] = want[2] = 0;
        break;
      case GMLE_COV_SPHERICAL:
        want[0] = want[3] = SPH[c];
        want[1] = want[2] = 0;
        break;
      }
      CHECK(memcmp(S, want, sizeof want) == 0);
      CHECK_STATUS(gmle_model_prior(m, c, &p), GMLE_OK);
      CHECK(p == (t == 1 ? 1.0 / 3 : PRIORS[c]));
      /* without counts, the priors stand in */
      CHECK_STATUS(gmle_model_count(m, c, &n), GMLE_OK);
      CHECK(n == p);
      gmle_class_report rep;
      CHECK_STATUS(gmle_model_report(m, c, &rep), GMLE_OK);
      CHECK(rep.rows == 0 && rep.empty == 0 && rep.n_floored == 0);
      if (types[t] == GMLE_COV_DIAG) {
        CHECK(rep.min_eigenvalue == (c == 0 ? 1 : c == 1 ? 1 : 3));
        CHECK(rep.max_eigenvalue == (c == 0 ? 2 : c == 1 ? 1 : 4));
      }
      if (types[t] == GMLE_COV_SPHERICAL)
        CHECK(rep.min_eigenvalue == SPH[c] && rep.condition == 1);
    }
    /* not fitted: no training log-likelihood */
    double ll = 0, bic = 0, aic = 0;
    CHECK_STATUS(gmle_model_loglik(m, 1, &ll), GMLE_E_UNSUPPORTED);
    CHECK_ERROR_HAS(ctx, "gmle_fit");
    CHECK_STATUS(gmle_model_information(m, &bic, &aic), GMLE_E_UNSUPPORTED);
    gmle_model_free(m);
  }
  gmle_context_free(ctx);
}

/* A diagonal model's covariance getter overwrites the whole D x D output
 * with zeros off the diagonal. */
TEST(model_covariance_diag_writes_zeros_off_diagonal) {
  gmle_context *ctx = new_ctx();
  CHECK(ctx);
  if (!ctx)
    return;
  const size_t D = 5;
  double mu[10] = {0}, v[10];
  for (size_t i = 0; i < 10; i++)
    v[i] = 1.0 + (double)i;
  gmle_model *m = NULL;
  CHECK_STATUS(
      gmle_model_create(ctx, D, 2, GMLE_COV_DIAG, mu, v, NULL, NULL, &m),
      GMLE_OK);
  double S[25];
  for (size_t i = 0; i < 25; i++)
    S[i] = NAN;
  CHECK_STATUS(gmle_model_covariance(m, 1, S), GMLE_OK);
  for (size_t i = 0; i < D; i++)
    for (size_t j = 0; j < D; j++)
      CHECK(S[i * D + j] == (i == j ? v[D + i] : 0.0));
  gmle_model_free(m);
  gmle_context_free(ctx);
}

TEST(model_getters_reject_bad_arguments) {
  gmle_context *ctx = new_ctx();
  CHECK(ctx);
  if (!ctx)
    return;
  gmle_model *m = NULL;
  CHECK_STATUS(gmle_model_create(ctx, 2, 3, GMLE_COV_FULL, MEANS, FULL, PRIORS,
                                 NULL, &m),
               GMLE_OK);
  double buf[4];
  gmle_class_report rep;
  CHECK_STATUS(gmle_model_mean(m, 3, buf), GMLE_E_INVALID_ARG);
  CHECK_ERROR_HAS(ctx, "class 3 is out of range");
  CHECK_STATUS(gmle_model_covariance(m, 7, buf), GMLE_E_INVALID_ARG);
  CHECK_ERROR_HAS(ctx, "class 7");
  CHECK_STATUS(gmle_model_prior(m, 0, NULL), GMLE_E_INVALID_ARG);
  CHECK_STATUS(gmle_model_count(m, 3, buf), GMLE_E_INVALID_ARG);
  CHECK_STATUS(gmle_model_report(m, 3, &rep), GMLE_E_INVALID_ARG);
  CHECK_STATUS(gmle_model_loglik(m, 0, NULL), GMLE_E_INVALID_ARG);
  CHECK_STATUS(gmle_model_mean(NULL, 0, buf), GMLE_E_INVALID_ARG);
  CHECK_STATUS(gmle_model_covariance(NULL, 0, buf), GMLE_E_INVALID_ARG);
  CHECK_STATUS(gmle_model_information(NULL, buf, buf), GMLE_E_INVALID_ARG);
  CHECK(gmle_model_dim(NULL) == 0 && gmle_model_n_classes(NULL) == 0 &&
        gmle_model_n_params(NULL) == 0);
  CHECK(gmle_model_class_name(NULL, 0) == NULL);
  gmle_model_free(m);
  gmle_model_free(NULL); /* a no-op */
  gmle_context_free(ctx);
}

TEST(model_class_names_are_copied) {
  gmle_context *ctx = new_ctx();
  CHECK(ctx);
  if (!ctx)
    return;
  gmle_model *m = NULL;
  CHECK_STATUS(gmle_model_create(ctx, 2, 3, GMLE_COV_SPHERICAL, MEANS, SPH,
                                 PRIORS, NULL, &m),
               GMLE_OK);
  if (!m) {
    gmle_context_free(ctx);
    return;
  }
  CHECK(gmle_model_class_name(m, 0) == NULL);
  char a[8] = "alpha";
  const char *names[3] = {a, "beta", ""};
  CHECK_STATUS(gmle_model_set_class_names(m, names), GMLE_OK);
  a[0] = 'X';
  CHECK(strcmp(gmle_model_class_name(m, 0), "alpha") == 0);
  CHECK(strcmp(gmle_model_class_name(m, 1), "beta") == 0);
  CHECK(strcmp(gmle_model_class_name(m, 2), "") == 0);
  CHECK(gmle_model_class_name(m, 3) == NULL);
  /* a NULL entry is refused and the old names stay */
  const char *bad[3] = {"x", NULL, "z"};
  CHECK_STATUS(gmle_model_set_class_names(m, bad), GMLE_E_INVALID_ARG);
  CHECK_ERROR_HAS(ctx, "class 1");
  CHECK(strcmp(gmle_model_class_name(m, 1), "beta") == 0);
  /* an allocation failure leaves them too */
  const char *other[3] = {"u", "v", "w"};
  for (long k = 1; k <= 4; k++) {
    gmle__test_fail_alloc_after(k);
    gmle_status s = gmle_model_set_class_names(m, other);
    gmle__test_fail_alloc_after(0);
    CHECK_STATUS(s, GMLE_E_OUT_OF_MEMORY);
    CHECK(strcmp(gmle_model_class_name(m, 0), "alpha") == 0);
  }
  CHECK_STATUS(gmle_model_set_class_names(m, other), GMLE_OK);
  CHECK(strcmp(gmle_model_class_name(m, 2), "w") == 0);
  /* NULL removes them */
  CHECK_STATUS(gmle_model_set_class_names(m, NULL), GMLE_OK);
  CHECK(gmle_model_class_name(m, 0) == NULL);
  CHECK_STATUS(gmle_model_set_class_names(m, names), GMLE_OK);
  gmle_model_free(m); /* frees the names */
  gmle_context_free(ctx);
}

/* BIC and AIC from the closed-form training log-likelihood (set by gmle_fit;
 * set by hand here). */
TEST(model_information_criteria_formula) {
  gmle_context *ctx = new_ctx();
  CHECK(ctx);
  if (!ctx)
    return;
  gmle_model *m = NULL;
  CHECK_STATUS(gmle_model_create(ctx, 2, 3, GMLE_COV_DIAG, MEANS, DIAG, PRIORS,
                                 NULL, &m),
               GMLE_OK);
  if (!m) {
    gmle_context_free(ctx);
    return;
  }
  m->has_train = 1;
  m->train_loglik = -1234.5;
  m->train_loglik_joint = -1300.25;
  m->train_n = 1000;
  double ll = 0, bic = 0, aic = 0;
  CHECK_STATUS(gmle_model_loglik(m, 0, &ll), GMLE_OK);
  CHECK(ll == -1234.5);
  CHECK_STATUS(gmle_model_loglik(m, 1, &ll), GMLE_OK);
  CHECK(ll == -1300.25);
  const double p = 6 + 6 + 2;
  CHECK_STATUS(gmle_model_information(m, &bic, &aic), GMLE_OK);
  CHECK_REL(bic, 2 * 1300.25 + p * log(1000.0), 1e-15);
  CHECK_REL(aic, 2 * 1300.25 + 2 * p, 1e-15);
  CHECK_STATUS(gmle_model_information(m, NULL, &aic), GMLE_OK);
  CHECK_STATUS(gmle_model_information(m, &bic, NULL), GMLE_OK);
  gmle_model_free(m);
  gmle_context_free(ctx);
}

/* Every allocation of gmle_model_create can fail: a status, no leak, no
 * partial model. */
TEST(model_create_survives_every_allocation_failure) {
  gmle_context *ctx = new_ctx();
  CHECK(ctx);
  if (!ctx)
    return;
  const gmle_cov_type types[4] = {GMLE_COV_FULL, GMLE_COV_DIAG,
                                  GMLE_COV_SPHERICAL, GMLE_COV_TIED};
  for (int t = 0; t < 4; t++) {
    long k = 1;
    for (;; k++) {
      gmle_model *m = (gmle_model *)1;
      gmle__test_fail_alloc_after(k);
      gmle_status s = gmle_model_create(ctx, 2, 3, types[t], MEANS,
                                        cov_of(types[t]), PRIORS, NULL, &m);
      gmle__test_fail_alloc_after(0);
      if (s == GMLE_OK) {
        gmle_model_free(m);
        break;
      }
      CHECK_STATUS(s, GMLE_E_OUT_OF_MEMORY);
      CHECK(m == NULL);
      CHECK_ERROR_HAS(ctx, "out of memory");
      if (k > 100)
        break;
    }
    CHECK(k > 10 && k <= 100);
  }
  gmle_context_free(ctx);
}

/* The one table of names: every enum value has a name that parses back to
 * it, the spellings are the ones model files and the CLI use, and anything
 * else is refused. */
TEST(cov_and_output_names_round_trip) {
  static const char *const covs[] = {"full", "diag", "spherical", "tied"};
  for (int t = 0; t < 4; t++) {
    gmle_cov_type back = GMLE_COV_TIED;
    CHECK(strcmp(gmle_cov_name((gmle_cov_type)t), covs[t]) == 0);
    CHECK_STATUS(gmle_cov_parse(covs[t], &back), GMLE_OK);
    CHECK((int)back == t);
  }
  static const char *const outs[] = {"loglik", "joint", "logpost", "label",
                                     "density"};
  for (int o = 0; o < 5; o++) {
    gmle_output back = GMLE_OUT_DENSITY;
    CHECK(strcmp(gmle_output_name((gmle_output)o), outs[o]) == 0);
    CHECK_STATUS(gmle_output_parse(outs[o], &back), GMLE_OK);
    CHECK((int)back == o);
  }
  gmle_cov_type cov = GMLE_COV_DIAG;
  gmle_output out = GMLE_OUT_JOINT;
  CHECK(gmle_cov_name((gmle_cov_type)4) == NULL);
  CHECK(gmle_output_name((gmle_output)-1) == NULL);
  CHECK_STATUS(gmle_cov_parse("Full", &cov), GMLE_E_INVALID_ARG);
  CHECK_STATUS(gmle_cov_parse(NULL, &cov), GMLE_E_INVALID_ARG);
  CHECK_STATUS(gmle_output_parse("post", &out), GMLE_E_INVALID_ARG);
  CHECK_STATUS(gmle_output_parse("label", NULL), GMLE_E_INVALID_ARG);
  CHECK(cov == GMLE_COV_DIAG && out == GMLE_OUT_JOINT);
}

int main(int argc, char **argv) {
  CHECK_INIT(argc, argv);
  RUN(model_create_rejects_nan_mean);
  RUN(model_create_rejects_non_symmetric_covariance);
  RUN(model_create_rejects_non_positive_definite_covariance);
  RUN(model_create_rejects_non_positive_variance);
  RUN(model_create_rejects_bad_priors_and_counts);
  RUN(model_create_rejects_bad_arguments);
  RUN(model_create_accepts_empty_class_with_zero_covariance);
  RUN(model_getters_return_parameters);
  RUN(model_covariance_diag_writes_zeros_off_diagonal);
  RUN(model_getters_reject_bad_arguments);
  RUN(model_class_names_are_copied);
  RUN(model_information_criteria_formula);
  RUN(model_create_survives_every_allocation_failure);
  RUN(cov_and_output_names_round_trip);
  return CHECK_DONE();
}
