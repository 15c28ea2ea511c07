/* fit_and_score.c -- the library example of the README, verbatim between
 * the markers, with a main() that feeds it the two-class 2-D example. The
 * test suite builds and runs it, so the README stays true. */
/* README BEGIN */
#include <gmle.h>
#include <stdio.h>

/* x: N rows of D float32 features, y: N labels in [0, C) */
int fit_and_classify(const float *x, const int32_t *y, size_t N, size_t D,
                     size_t C, const float *query, size_t n_query,
                     int32_t *labels_out) {
  gmle_context *ctx = NULL;
  gmle_stats *st = NULL;
  gmle_model *m = NULL;
  gmle_status s = gmle_context_create(GMLE_BACKEND_AUTO, -1, &ctx);
  if (s == GMLE_OK) s = gmle_stats_create(ctx, D, C, &st);
  for (size_t r = 0; s == GMLE_OK && r < N; r += 65536) { /* any batch size */
    size_t n = N - r < 65536 ? N - r : 65536;
    s = gmle_stats_add(st, x + r * D, GMLE_F32, n, D, y + r, NULL);
  }
  if (s == GMLE_OK) s = gmle_fit(st, NULL, &m);   /* full covariance */
  if (s == GMLE_OK)
    s = gmle_score(ctx, m, query, GMLE_F32, n_query, D, GMLE_OUT_LABEL,
                   GMLE_F64, labels_out);
  if (s != GMLE_OK) fprintf(stderr, "gmle: %s\n", gmle_context_error(ctx));
  gmle_model_free(m);
  gmle_stats_free(st);
  gmle_context_free(ctx);
  return s == GMLE_OK ? 0 : 1;
}
/* README END */

#include <stdlib.h>

static double noise(unsigned *s) { /* uniform in [-0.5, 0.5) */
  *s = *s * 1103515245u + 12345u;
  return ((*s >> 8) & 0xffff) / 65536.0 - 0.5;
}

int main(void) {
  enum { D = 2, C = 2, N = 200000 };
  float *x = malloc(sizeof(float) * N * D);
  int32_t *y = malloc(sizeof(int32_t) * N);
  if (!x || !y)
    return 1;
  unsigned seed = 1;
  for (size_t r = 0; r < N; r++) { /* class 0 near (-1,-1), 1 near (1,1) */
    y[r] = (int32_t)(r % 2);
    for (size_t j = 0; j < D; j++)
      x[r * D + j] = (float)((y[r] ? 1.0 : -1.0) + noise(&seed));
  }
  const float query[2 * D] = {-0.9f, -1.2f, 1.1f, 0.8f};
  int32_t label[2] = {-1, -1};
  int rc = fit_and_classify(x, y, N, D, C, query, 2, label);
  printf("labels of the two queries: %d %d\n", (int)label[0], (int)label[1]);
  free(x);
  free(y);
  return rc == 0 && label[0] == 0 && label[1] == 1 ? 0 : 1;
}
