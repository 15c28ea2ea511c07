/* test_error_location.c -- an error's place comes back as numbers beside its
 * message (gmle_context_error_location): the batch, row and column of a
 * non-finite value, the row of a bad label, the line and column of a bad
 * CSV field, the class of a fit error; and a successful call clears it. */
#include "check.h"
#include "gmle_io.h"
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

enum { N = 20, D = 5 };

static gmle_error_location location_of(const gmle_context *ctx) {
  gmle_error_location loc;
  memset(&loc, 0xff, sizeof loc);
  CHECK_STATUS(gmle_context_error_location(ctx, &loc), GMLE_OK);
  return loc;
}

static void fill(double *x, int32_t *labels) {
  uint64_t u = 12345; /* an LCG: rows in general position */
  for (size_t i = 0; i < (size_t)N * D; i++) {
    u = u * 6364136223846793005ull + 1442695040888963407ull;
    x[i] = (double)(u >> 11) / 9007199254740992.0;
  }
  for (size_t r = 0; r < N; r++)
    labels[r] = (int32_t)(r % 2);
}

/* A context on the suite's backend, statistics of `classes` classes, and
 * good rows for them in x and labels. */
static gmle_stats *stats_on_new_context(size_t classes, gmle_context **ctx,
                                        double *x, int32_t *labels) {
  gmle_stats *st = NULL;
  fill(x, labels);
  *ctx = NULL;
  CHECK_STATUS(gmle_context_create(GMLE_BACKEND_AUTO, -1, ctx), GMLE_OK);
  CHECK_STATUS(gmle_stats_create(*ctx, D, classes, &st), GMLE_OK);
  return st;
}

TEST(location_nan_at_row_17_col_3_names_batch_row_col) {
  gmle_context *ctx;
  double x[N * D];
  int32_t labels[N];
  gmle_stats *st = stats_on_new_context(2, &ctx, x, labels);
  x[17 * D + 3] = NAN;
  CHECK_STATUS(gmle_stats_add(st, x, GMLE_F64, N, D, labels, NULL),
               GMLE_E_NONFINITE_INPUT);
  gmle_error_location loc = location_of(ctx);
  CHECK(loc.fields == (GMLE_LOC_BATCH | GMLE_LOC_ROW | GMLE_LOC_COLUMN));
  CHECK(loc.batch == 0 && loc.row == 17 && loc.column == 3);
  CHECK_ERROR_HAS(ctx, "row 17 col 3");
  /* The next successful call leaves no location behind. */
  x[17 * D + 3] = 1.0;
  CHECK_STATUS(gmle_stats_add(st, x, GMLE_F64, N, D, labels, NULL), GMLE_OK);
  CHECK(location_of(ctx).fields == 0);
  gmle_stats_free(st);
  gmle_context_free(ctx);
}

TEST(location_bad_label_names_its_row) {
  gmle_context *ctx;
  double x[N * D];
  int32_t labels[N];
  gmle_stats *st = stats_on_new_context(2, &ctx, x, labels);
  labels[9] = 7;
  CHECK_STATUS(gmle_stats_add(st, x, GMLE_F64, N, D, labels, NULL),
               GMLE_E_BAD_LABEL);
  gmle_error_location loc = location_of(ctx);
  CHECK(loc.fields & GMLE_LOC_ROW);
  CHECK(loc.row == 9);
  CHECK(!(loc.fields & GMLE_LOC_COLUMN));
  gmle_stats_free(st);
  gmle_context_free(ctx);
}

TEST(location_csv_bad_field_names_line_and_column) {
  char dir[512], path[600];
  CHECK(tu_tmpdir_create(dir, sizeof dir) == 0);
  snprintf(path, sizeof path, "%s/bad.csv", dir);
  FILE *f = fopen(path, "wb");
  CHECK(f != NULL);
  if (!f)
    return;
  fputs("1.5,2.5\n3.5,4.5\n5.5,oops\n", f);
  fclose(f);
  gmle_context *ctx = NULL;
  gmle_reader *r = NULL;
  CHECK_STATUS(gmle_context_create(GMLE_BACKEND_CPU, -1, &ctx), GMLE_OK);
  CHECK_STATUS(gmle_reader_open(ctx, path, NULL, &r), GMLE_OK);
  double buf[16];
  size_t n = 0;
  CHECK_STATUS(gmle_reader_read(r, buf, 8, &n, NULL), GMLE_E_BAD_FORMAT);
  gmle_error_location loc = location_of(ctx);
  CHECK(loc.fields == (GMLE_LOC_LINE | GMLE_LOC_COLUMN));
  CHECK_MSG(loc.line == 3 && loc.column == 5, "line %llu column %llu",
            (unsigned long long)loc.line, (unsigned long long)loc.column);
  CHECK_ERROR_HAS(ctx, ":3:5:");
  gmle_reader_free(r);
  gmle_context_free(ctx);
  tu_tmpdir_remove(dir);
}

TEST(location_fit_error_names_the_class) {
  gmle_context *ctx;
  double x[N * D];
  int32_t labels[N];
  gmle_stats *st = stats_on_new_context(3, &ctx, x, labels);
  gmle_model *m = NULL;
  labels[4] = 2; /* class 2 has one sample: its covariance is ill defined */
  CHECK_STATUS(gmle_stats_add(st, x, GMLE_F64, N, D, labels, NULL), GMLE_OK);
  gmle_fit_options opt;
  gmle_fit_options_init(&opt);
  opt.rel_floor = 0;
  opt.abs_floor = 0;
  CHECK_STATUS(gmle_fit(st, &opt, &m), GMLE_E_ILL_DEFINED_COV);
  gmle_error_location loc = location_of(ctx);
  CHECK(loc.fields == GMLE_LOC_CLASS);
  CHECK_MSG(loc.class_index == 2, "%s", gmle_context_error(ctx));
  gmle_model_free(m);
  gmle_stats_free(st);
  gmle_context_free(ctx);
}

TEST(location_null_arguments_are_invalid) {
  gmle_error_location loc;
  CHECK_STATUS(gmle_context_error_location(NULL, &loc), GMLE_E_INVALID_ARG);
  gmle_context *ctx = NULL;
  CHECK_STATUS(gmle_context_create(GMLE_BACKEND_CPU, -1, &ctx), GMLE_OK);
  CHECK_STATUS(gmle_context_error_location(ctx, NULL), GMLE_E_INVALID_ARG);
  CHECK(location_of(ctx).fields == 0);
  gmle_context_free(ctx);
}

int main(int argc, char **argv) {
  CHECK_INIT(argc, argv);
  RUN(location_nan_at_row_17_col_3_names_batch_row_col);
  RUN(location_bad_label_names_its_row);
  RUN(location_csv_bad_field_names_line_and_column);
  RUN(location_fit_error_names_the_class);
  RUN(location_null_arguments_are_invalid);
  return CHECK_DONE();
}
