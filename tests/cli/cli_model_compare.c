/* cli_model_compare.c -- test helper: load two model files through
 * gmle_model_load and compare every parameter.
 *   cli_model_compare A.npz B.npz TOL
 * Exit 0 when the models agree (relative error <= TOL for means,
 * covariances, priors and counts; same shape, type and class names),
 * 1 when they differ, 2 on a load error. */
#include "gmle_io.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double worst = 0;
static const char *worst_what = "";

static void cmp(const char *what, const double *a, const double *b, size_t n) {
  double scale = 0;
  for (size_t i = 0; i < n; i++)
    scale = fmax(scale, fabs(b[i]));
  if (scale == 0)
    scale = 1;
  for (size_t i = 0; i < n; i++) {
    double e = fabs(a[i] - b[i]) / scale;
    if (!(e <= worst)) {
      worst = isnan(e) ? INFINITY : e;
      worst_what = what;
    }
  }
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: cli_model_compare A.npz B.npz TOL\n");
    return 2;
  }
  double tol = atof(argv[3]);
  gmle_context *ctx = NULL;
  if (gmle_context_create(GMLE_BACKEND_CPU, -1, &ctx) != GMLE_OK)
    return 2;
  gmle_model *a = NULL, *b = NULL;
  if (gmle_model_load(ctx, argv[1], &a) != GMLE_OK ||
      gmle_model_load(ctx, argv[2], &b) != GMLE_OK) {
    fprintf(stderr, "cli_model_compare: %s\n", gmle_context_error(ctx));
    return 2;
  }
  size_t D = gmle_model_dim(a), C = gmle_model_n_classes(a);
  if (D != gmle_model_dim(b) || C != gmle_model_n_classes(b) ||
      gmle_model_cov_type(a) != gmle_model_cov_type(b)) {
    fprintf(stderr, "cli_model_compare: shapes or types differ\n");
    return 1;
  }
  double *x = malloc(D * D * sizeof *x), *y = malloc(D * D * sizeof *y);
  for (size_t c = 0; c < C; c++) {
    const char *na = gmle_model_class_name(a, c),
               *nb = gmle_model_class_name(b, c);
    if ((!na) != (!nb) || (na && strcmp(na, nb) != 0)) {
      fprintf(stderr, "cli_model_compare: class %zu names differ\n", c);
      return 1;
    }
    gmle_model_mean(a, c, x);
    gmle_model_mean(b, c, y);
    cmp("means", x, y, D);
    gmle_model_covariance(a, c, x);
    gmle_model_covariance(b, c, y);
    cmp("covariances", x, y, D * D);
    gmle_model_prior(a, c, x);
    gmle_model_prior(b, c, y);
    cmp("priors", x, y, 1);
    gmle_model_count(a, c, x);
    gmle_model_count(b, c, y);
    cmp("counts", x, y, 1);
  }
  printf("largest relative difference %.3g (%s); tolerance %.3g\n", worst,
         worst_what, tol);
  free(x);
  free(y);
  gmle_model_free(a);
  gmle_model_free(b);
  gmle_context_free(ctx);
  return worst <= tol ? 0 : 1;
}
