/* test_options.c -- option structs lead with struct_size (gmle.h, "Option
 * structs"): a struct from an older or newer gmle.h is read up to its own
 * size, and a struct_size of 0 or below the first version's is refused. */
#include "check.h"
#include "gmle_io.h"
#include "testutil.h"

#include <stddef.h>
#include <string.h>

/* Statistics two classes can be fitted from. */
static gmle_stats *small_stats(gmle_context **ctx) {
  enum { N = 40, D = 3 };
  double x[N * D];
  int32_t labels[N];
  uint64_t u = 99;
  for (size_t i = 0; i < (size_t)N * D; i++) {
    u = u * 6364136223846793005ull + 1442695040888963407ull;
    x[i] = (double)(u >> 11) / 9007199254740992.0;
  }
  for (size_t r = 0; r < N; r++)
    labels[r] = (int32_t)(r % 2);
  gmle_stats *st = NULL;
  *ctx = NULL;
  CHECK_STATUS(gmle_context_create(GMLE_BACKEND_AUTO, -1, ctx), GMLE_OK);
  CHECK_STATUS(gmle_stats_create(*ctx, D, 2, &st), GMLE_OK);
  CHECK_STATUS(gmle_stats_add(st, x, GMLE_F64, N, D, labels, NULL), GMLE_OK);
  return st;
}

TEST(options_fit_struct_size_zero_or_short_is_invalid) {
  gmle_context *ctx;
  gmle_stats *st = small_stats(&ctx);
  gmle_model *m = NULL;
  gmle_fit_options o;
  gmle_fit_options_init(&o);
  CHECK(o.struct_size == sizeof o);
  o.struct_size = 0;
  CHECK_STATUS(gmle_fit(st, &o, &m), GMLE_E_INVALID_ARG);
  CHECK_ERROR_HAS(ctx, "struct_size");
  o.struct_size = offsetof(gmle_fit_options, allow_empty);
  CHECK_STATUS(gmle_fit(st, &o, &m), GMLE_E_INVALID_ARG);
  CHECK(m == NULL);
  gmle_stats_free(st);
  gmle_context_free(ctx);
}

TEST(options_fit_newer_struct_is_read_up_to_the_known_members) {
  gmle_context *ctx;
  gmle_stats *st = small_stats(&ctx);
  struct {
    gmle_fit_options o;
    double a_future_member;
  } newer;
  memset(&newer, 0x5a, sizeof newer);
  gmle_fit_options_init(&newer.o);
  newer.o.struct_size = sizeof newer;
  newer.o.cov = GMLE_COV_DIAG;
  gmle_fit_options same;
  gmle_fit_options_init(&same);
  same.cov = GMLE_COV_DIAG;
  gmle_model *a = NULL, *b = NULL;
  CHECK_STATUS(gmle_fit(st, &newer.o, &a), GMLE_OK);
  CHECK_STATUS(gmle_fit(st, &same, &b), GMLE_OK);
  CHECK(a && b && gmle_model_cov_type(a) == GMLE_COV_DIAG);
  CHECK(a && b && gmle_model_cov_type(b) == GMLE_COV_DIAG);
  gmle_model_free(a);
  gmle_model_free(b);
  gmle_stats_free(st);
  gmle_context_free(ctx);
}

TEST(options_reader_struct_size_zero_is_invalid) {
  gmle_context *ctx = NULL;
  gmle_reader *r = NULL;
  CHECK_STATUS(gmle_context_create(GMLE_BACKEND_CPU, -1, &ctx), GMLE_OK);
  gmle_reader_options o;
  gmle_reader_options_init(&o);
  CHECK(o.struct_size == sizeof o);
  o.struct_size = 0;
  CHECK_STATUS(gmle_reader_open(ctx, "no-such-file.csv", &o, &r),
               GMLE_E_INVALID_ARG);
  CHECK_ERROR_HAS(ctx, "struct_size");
  CHECK(r == NULL);
  gmle_context_free(ctx);
}

int main(int argc, char **argv) {
  CHECK_INIT(argc, argv);
  RUN(options_fit_struct_size_zero_or_short_is_invalid);
  RUN(options_fit_newer_struct_is_read_up_to_the_known_members);
  RUN(options_reader_struct_size_zero_is_invalid);
  return CHECK_DONE();
}
