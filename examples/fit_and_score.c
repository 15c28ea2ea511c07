/* fit_and_score.c -- the library example of the README: accumulate
 * statistics batch by batch, fit one full Gaussian per class, classify. */
#include <gmle.h>

#include <stdio.h>
#include <stdlib.h>

static double noise(unsigned *s) { /* small uniform noise, no libm needed */
  *s = *s * 1103515245u + 12345u;
  return ((*s >> 8) & 0xffff) / 65536.0 - 0.5;
}

int main(void) {
  gmle_context *ctx = NULL;
  gmle_status s = gmle_context_create(GMLE_BACKEND_AUTO, -1, &ctx);
  if (s != GMLE_OK) {
    fprintf(stderr, "gmle: %s\n", gmle_context_error(ctx));
    gmle_context_free(ctx);
    return 1;
  }
  enum { D = 2, C = 2, N = 1000 };
  static float x[N * D];
  static int32_t y[N];
  unsigned seed = 1;
  for (int r = 0; r < N; r++) { /* class 0 near (-1,-1), class 1 near (1,1) */
    y[r] = r % 2;
    for (int j = 0; j < D; j++)
      x[r * D + j] = (float)((y[r] ? 1.0 : -1.0) + noise(&seed));
  }
  gmle_stats *st = NULL;
  gmle_model *m = NULL;
  s = gmle_stats_create(ctx, D, C, &st);
  for (int r = 0; s == GMLE_OK && r < N; r += 250) /* four batches */
    s = gmle_stats_add(st, x + r * D, GMLE_F32, 250, D, y + r, NULL);
  if (s == GMLE_OK)
    s = gmle_fit(st, NULL, &m); /* NULL: default options, full covariance */
  int32_t label[2];
  const float query[2 * D] = {-0.9f, -1.2f, 1.1f, 0.8f};
  if (s == GMLE_OK)
    s = gmle_score(ctx, m, query, GMLE_F32, 2, D, GMLE_OUT_LABEL, GMLE_F64,
                   label);
  if (s == GMLE_OK) {
    double mean[D];
    gmle_model_mean(m, 1, mean);
    printf("class 1 mean: %.3f %.3f\n", mean[0], mean[1]);
    printf("labels of the two queries: %d %d\n", label[0], label[1]);
  } else {
    fprintf(stderr, "gmle: %s: %s\n", gmle_status_string(s),
            gmle_context_error(ctx));
  }
  gmle_model_free(m);
  gmle_stats_free(st);
  gmle_context_free(ctx);
  return s == GMLE_OK && label[0] == 0 && label[1] == 1 ? 0 : 1;
}
