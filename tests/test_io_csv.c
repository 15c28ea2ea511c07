/* test_io_csv.c -- the streaming CSV / text labels reader: headers,
 * delimiters, label columns, batching, and every BAD_INPUTS case 27 input
 * (ragged rows, empty field, nan/inf, 1e400, hex float, BOM, CRLF, trailing
 * delimiter, embedded NUL, a 10 MiB line, LC_NUMERIC=de_DE.UTF-8). */
#define _POSIX_C_SOURCE 200809L
#include "check.h"
#include "gmle_io.h"
#include "testing.h"
#include "testutil.h" /* tu_log */

#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tdir[256];
static gmle_context *ctx;

static const char *tpath(const char *name) {
  static char buf[8][512];
  static int k;
  k = (k + 1) % 8;
  snprintf(buf[k], sizeof buf[k], "%s/%s", tdir, name);
  return buf[k];
}

static const char *write_n(const char *name, const char *s, size_t n) {
  const char *p = tpath(name);
  FILE *f = fopen(p, "wb");
  if (!f || fwrite(s, 1, n, f) != n) {
    printf("cannot write %s\n", p);
    exit(2);
  }
  fclose(f);
  return p;
}

static const char *write_text(const char *name, const char *s) {
  return write_n(name, s, strlen(s));
}

/* Open text as a CSV with options; NULL (and a failed check) on error. */
static gmle_reader *open_text(const char *text, const gmle_reader_options *o) {
  gmle_reader *r = NULL;
  gmle_status s = gmle_reader_open(ctx, write_text("t.csv", text), o, &r);
  CHECK_MSG(s == GMLE_OK, "open: %s", gmle_context_error(ctx));
  return r;
}

/* Read all rows in batches of max_rows into dst (doubles) and the labels,
 * '|'-joined, into lab. Returns the row count or (size_t)-1. */
static size_t read_all(gmle_reader *r, size_t max_rows, double *dst,
                       size_t cap_rows, char *lab, size_t lab_cap) {
  size_t cols = gmle_reader_cols(r), total = 0;
  double *buf = malloc((max_rows * cols + 1) * sizeof *buf);
  const char **l = malloc(max_rows * sizeof *l);
  if (lab)
    lab[0] = '\0';
  for (;;) {
    size_t n = 0;
    gmle_status s = gmle_reader_read(r, buf, max_rows, &n, l);
    if (s != GMLE_OK) {
      printf("  read failed: %s\n", gmle_context_error(ctx));
      total = (size_t)-1;
      break;
    }
    if (n == 0)
      break;
    if (n > max_rows || total + n > cap_rows) {
      total = (size_t)-1;
      break;
    }
    if (cols)
      memcpy(dst + total * cols, buf, n * cols * sizeof *buf);
    for (size_t i = 0; lab && i < n; i++) {
      strncat(lab, l[i] ? l[i] : "(null)", lab_cap - strlen(lab) - 1);
      strncat(lab, "|", lab_cap - strlen(lab) - 1);
    }
    total += n;
  }
  free(buf);
  free(l);
  return total;
}

/* The error of the first read of `text` (or of the open when it fails). */
static gmle_status first_error(const char *text, size_t len,
                               const gmle_reader_options *o) {
  gmle_reader *r = NULL;
  gmle_status s = gmle_reader_open(ctx, write_n("e.csv", text, len), o, &r);
  if (s != GMLE_OK)
    return s;
  double buf[64];
  size_t n = 1;
  while (s == GMLE_OK && n)
    s = gmle_reader_read(r, buf, 4, &n, NULL);
  gmle_reader_free(r);
  return s;
}

TEST(csv_reads_numbers_without_header) {
  gmle_reader *r = open_text("1,2.5,-3\n4e2, 0.1 ,1e-3\n\n", NULL);
  if (!r)
    return;
  uint64_t n = 7;
  CHECK(gmle_reader_rows(r, &n) == 0);
  CHECK(gmle_reader_cols(r) == 3);
  CHECK(gmle_reader_dtype(r) == GMLE_F64);
  CHECK(strcmp(gmle_reader_format(r), "csv") == 0);
  CHECK(gmle_reader_column_name(r, 0) == NULL);
  double v[6];
  CHECK(read_all(r, 7, v, 2, NULL, 0) == 2);
  const double want[6] = {1, 2.5, -3, 4e2, 0.1, 1e-3};
  CHECK(memcmp(v, want, sizeof v) == 0);
  gmle_reader_free(r);
}

TEST(csv_header_names_and_label_column_by_name_across_batches) {
  char text[4096] = "a, b ,species,c\n";
  char want_lab[1024] = "";
  for (int i = 0; i < 20; i++) {
    char line[128], lab[32];
    snprintf(lab, sizeof lab, i % 3 == 0 ? "\"vir,gin \"\"%d\"\"\"" : "s%d", i);
    snprintf(line, sizeof line, "%d.5,%d,%s,%d\n", i, -i, lab, i * 3);
    strcat(text, line);
    if (i % 3 == 0)
      snprintf(lab, sizeof lab, "vir,gin \"%d\"", i);
    strcat(want_lab, lab);
    strcat(want_lab, "|");
  }
  gmle_reader_options o;
  gmle_reader_options_init(&o);
  o.label_column = "species";
  gmle_reader *r = open_text(text, &o);
  if (!r)
    return;
  CHECK(gmle_reader_cols(r) == 3);
  CHECK(strcmp(gmle_reader_column_name(r, 0), "a") == 0);
  CHECK(strcmp(gmle_reader_column_name(r, 1), "b") == 0);
  CHECK(strcmp(gmle_reader_column_name(r, 2), "c") == 0);
  CHECK(gmle_reader_column_name(r, 3) == NULL);
  const size_t batches[] = {1, 7, 1000};
  for (int b = 0; b < 3; b++) {
    double v[60];
    char lab[1024];
    CHECK_STATUS(gmle_reader_rewind(r), GMLE_OK);
    CHECK(read_all(r, batches[b], v, 20, lab, sizeof lab) == 20);
    CHECK(gmle_reader_offset(r) == 20);
    int bad = 0;
    for (int i = 0; i < 20; i++)
      bad += v[i * 3] != i + 0.5 || v[i * 3 + 1] != -i || v[i * 3 + 2] != i * 3;
    CHECK_MSG(bad == 0, "batch %zu: %d wrong rows", batches[b], bad);
    CHECK_MSG(strcmp(lab, want_lab) == 0, "labels '%s'", lab);
  }
  gmle_reader_free(r);
}

TEST(csv_first_line_with_a_number_is_data_and_a_header_is_reported) {
  /* A headerless file whose first row has a typo is data with an error at
   * the typo (as the same typo on line 2 is), not a header to drop. */
  gmle_reader_options o;
  gmle_reader_options_init(&o);
  CHECK_STATUS(first_error("1,2x\n3,4\n", 9, &o), GMLE_E_BAD_FORMAT);
  CHECK_ERROR_HAS(ctx, "e.csv:1:3: could not convert string to float: '2x'");
  CHECK_STATUS(first_error("3,4\n1,2x\n", 9, &o), GMLE_E_BAD_FORMAT);
  CHECK_ERROR_HAS(ctx, "e.csv:2:3: could not convert string to float: '2x'");
  /* a header (no field a number) is still detected, and reported */
  tu_log log;
  tu_log_attach(ctx, &log);
  gmle_reader *r = open_text("x,y\n1,2\n", NULL);
  if (r) {
    CHECK(gmle_reader_cols(r) == 2);
    CHECK(gmle_reader_column_name(r, 1) &&
          strcmp(gmle_reader_column_name(r, 1), "y") == 0);
    CHECK_MSG(tu_log_has(&log, "line 1 is taken as a header"),
              "no note of the header: \"%s\"", log.text);
    gmle_reader_free(r);
  }
  gmle_context_set_log(ctx, NULL, NULL);
}

TEST(csv_a_very_long_line_is_refused_before_its_fields_are_stored) {
  /* Issue 16 item 9: a second line of 4 million fields (8 MB) after a line
   * of 2 is an error naming line 2 as soon as 64 extra fields are seen, not
   * after 4 million field records (128 MB) are stored. */
  const size_t fields = (size_t)1 << 22, len = 4 + 2 * fields;
  char *text = malloc(len + 1);
  if (!text) {
    CHECK(!"setup");
    return;
  }
  memcpy(text, "1,2\n", 4);
  for (size_t i = 0; i < fields; i++)
    memcpy(text + 4 + 2 * i, i + 1 < fields ? "0," : "0\n", 2);
  gmle_reader_options o;
  gmle_reader_options_init(&o);
  CHECK_STATUS(first_error(text, len, &o), GMLE_E_BAD_FORMAT);
  CHECK_ERROR_HAS(ctx, "e.csv:2: the number of columns changed from 2 to "
                       "more than 66 at this line");
  free(text);
}

TEST(csv_label_column_by_index_and_header_options) {
  gmle_reader_options o;
  gmle_reader_options_init(&o);
  o.label_column = "0";
  /* The text labels of column 0 do not make the first line a header. */
  gmle_reader *r = open_text("cat,1,2\ndog,3,4\n", &o);
  if (r) {
    double v[4];
    char lab[64];
    CHECK(gmle_reader_cols(r) == 2);
    CHECK(read_all(r, 1, v, 2, lab, sizeof lab) == 2);
    CHECK(strcmp(lab, "cat|dog|") == 0);
    CHECK(v[0] == 1 && v[3] == 4);
    gmle_reader_free(r);
  }
  /* header forced on a numeric first line */
  gmle_reader_options_init(&o);
  o.header = 1;
  r = open_text("1,2,3\n4,5,6\n", &o);
  if (r) {
    double v[3];
    CHECK(read_all(r, 10, v, 1, NULL, 0) == 1 && v[0] == 4);
    CHECK(strcmp(gmle_reader_column_name(r, 2), "3") == 0);
    gmle_reader_free(r);
  }
  /* no header forced on a text first line: an error at 1:1 */
  o.header = 0;
  CHECK_STATUS(first_error("x,y\n1,2\n", 8, &o), GMLE_E_BAD_FORMAT);
  CHECK_ERROR_HAS(ctx, "e.csv:1:1: could not convert string to float: 'x'");
  /* label column errors */
  gmle_reader_options_init(&o);
  o.label_column = "species";
  CHECK_STATUS(first_error("a,b\n1,2\n", 8, &o), GMLE_E_INVALID_ARG);
  CHECK_ERROR_HAS(ctx, "'species' is not in the header");
  o.header = 0;
  CHECK_STATUS(first_error("1,2\n", 4, &o), GMLE_E_INVALID_ARG);
  CHECK_ERROR_HAS(ctx, "no header");
  o.header = -1;
  o.label_column = "5";
  CHECK_STATUS(first_error("1,2\n", 4, &o), GMLE_E_INVALID_ARG);
  CHECK_ERROR_HAS(ctx, "out of range");
  o.label_column = "0";
  CHECK_STATUS(first_error("1\n2\n", 4, &o), GMLE_E_BAD_FORMAT);
  CHECK_ERROR_HAS(ctx, "no feature columns");
}

TEST(csv_detects_and_accepts_delimiters) {
  struct {
    const char *text;
    char opt;
    size_t cols;
  } cases[] = {
      {"1;2.5;3\n4;5;6\n", 0, 3},        {"1\t2.5\t3\n4\t5\t6\n", 0, 3},
      {"  1   2.5  3 \n4 5\t6\n", 0, 3}, {"  1 \t 2.5\t 3 \n4 5\t6\n", ' ', 3},
      {"1|2.5|3\n4|5|6\n", '|', 3},      {"1 ; 2.5 ; 3\n4;5;6\n", ';', 3},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    gmle_reader_options o;
    gmle_reader_options_init(&o);
    o.delimiter = cases[c].opt;
    gmle_reader *r = open_text(cases[c].text, &o);
    if (!r)
      continue;
    double v[6];
    CHECK_MSG(gmle_reader_cols(r) == cases[c].cols, "case %zu: %zu cols", c,
              gmle_reader_cols(r));
    CHECK(read_all(r, 1, v, 2, NULL, 0) == 2);
    CHECK_MSG(v[1] == 2.5 && v[5] == 6, "case %zu", c);
    gmle_reader_free(r);
  }
  /* one column */
  gmle_reader *r = open_text("1\n2\n3", NULL);
  if (r) {
    double v[3];
    CHECK(gmle_reader_cols(r) == 1);
    CHECK(read_all(r, 2, v, 3, NULL, 0) == 3 && v[2] == 3);
    gmle_reader_free(r);
  }
  /* decimal commas are refused with a hint */
  CHECK_STATUS(first_error("x;y\n1,5;2,5\n", 12, NULL), GMLE_E_BAD_FORMAT);
  CHECK_ERROR_HAS(ctx, "e.csv:2:1: could not convert string to float: '1,5'");
  CHECK_ERROR_HAS(ctx, "decimal separator");
}

TEST(csv_bad_inputs_case27_errors_name_line_and_column) {
  CHECK_STATUS(first_error("1,2,3\n4,5,6\n7,8\n", 16, NULL), GMLE_E_BAD_FORMAT);
  CHECK_ERROR_HAS(ctx, "e.csv:3:");
  CHECK_ERROR_HAS(ctx, "from 3 to 2");
  CHECK_STATUS(first_error("1,2,3\n4,5,6,7\n", 14, NULL), GMLE_E_BAD_FORMAT);
  CHECK_ERROR_HAS(ctx, "from 3 to 4");
  CHECK_STATUS(first_error("1,2,3\n4,,6\n", 11, NULL), GMLE_E_BAD_FORMAT);
  CHECK_ERROR_HAS(ctx, "e.csv:2:3: empty field");
  CHECK_STATUS(first_error("1,2\n3,1e400\n", 12, NULL), GMLE_E_BAD_FORMAT);
  CHECK_ERROR_HAS(ctx, "e.csv:2:3: value '1e400' is out of range");
  CHECK_STATUS(first_error("1,2\n-1e999,1\n", 13, NULL), GMLE_E_BAD_FORMAT);
  CHECK_ERROR_HAS(ctx, "e.csv:2:1:");
  CHECK_STATUS(first_error("1,2\n3,\0 4\n", 10, NULL), GMLE_E_BAD_FORMAT);
  CHECK_ERROR_HAS(ctx, "e.csv:2:3: embedded NUL");
  CHECK_STATUS(first_error("1,2\n3,abc\n", 10, NULL), GMLE_E_BAD_FORMAT);
  CHECK_ERROR_HAS(ctx, "e.csv:2:3: could not convert string to float: 'abc'");
  CHECK_STATUS(first_error("1,2\n3,1.5.2\n", 12, NULL), GMLE_E_BAD_FORMAT);
  CHECK_ERROR_HAS(ctx, "'1.5.2'");
  CHECK_STATUS(first_error("a,b\n1,\"2\n", 9, NULL), GMLE_E_BAD_FORMAT);
  CHECK_ERROR_HAS(ctx, "e.csv:2:3: unterminated quoted field");
  CHECK_STATUS(first_error("", 0, NULL), GMLE_E_EMPTY);
  CHECK_STATUS(first_error("\n  \n\r\n", 6, NULL), GMLE_E_EMPTY);
}

TEST(csv_bad_inputs_case27_values_bom_crlf_trailing_delimiter) {
  /* nan, inf, underflow, hex floats */
  gmle_reader *r =
      open_text("nan,inf,-inf\nNaN,Infinity,+1\n1e-400,0x1.8p1,0x10\n", NULL);
  if (r) {
    double v[9];
    CHECK(read_all(r, 2, v, 3, NULL, 0) == 3);
    CHECK(isnan(v[0]) && isinf(v[1]) && v[1] > 0 && isinf(v[2]) && v[2] < 0);
    CHECK(isnan(v[3]) && isinf(v[4]) && v[5] == 1);
    CHECK(v[6] == 0 && v[7] == 3.0 && v[8] == 16.0);
    gmle_reader_free(r);
  }
  /* BOM + header + CRLF + quoted numbers */
  gmle_reader_options o;
  gmle_reader_options_init(&o);
  o.label_column = "lab";
  r = open_text("\xEF\xBB\xBFx,y,lab\r\n1,\"2.5\",cat\r\n3,4,dog\r\n", &o);
  if (r) {
    double v[4];
    char lab[64];
    CHECK(strcmp(gmle_reader_column_name(r, 0), "x") == 0);
    CHECK(read_all(r, 7, v, 2, lab, sizeof lab) == 2);
    CHECK(v[0] == 1 && v[1] == 2.5 && v[2] == 3 && v[3] == 4);
    CHECK_MSG(strcmp(lab, "cat|dog|") == 0, "'%s'", lab);
    gmle_reader_free(r);
  }
  /* BOM without header */
  r = open_text("\xEF\xBB\xBF"
                "1,2\r\n3,4",
                NULL);
  if (r) {
    double v[4];
    CHECK(read_all(r, 7, v, 2, NULL, 0) == 2 && v[0] == 1 && v[3] == 4);
    gmle_reader_free(r);
  }
  /* trailing delimiter, with and without header */
  const char *tr[] = {"1,2,3,\n4,5,6,\n", "a,b,c,\n1,2,3,\n4,5,6,\n",
                      "1,2,3,\n4,5,6\n"};
  for (int k = 0; k < 3; k++) {
    r = open_text(tr[k], NULL);
    if (!r)
      continue;
    double v[6];
    CHECK(gmle_reader_cols(r) == 3);
    CHECK_MSG(read_all(r, 7, v, 2, NULL, 0) == 2 && v[5] == 6, "case %d", k);
    gmle_reader_free(r);
  }
}

TEST(csv_bad_inputs_case27_ten_mib_line) {
  const size_t cols = 1200000; /* "123456.5," x 1.2M = 10.8 MB per line */
  size_t cap = cols * 9 * 2 + 16, len = 0;
  char *text = malloc(cap);
  for (int line = 0; line < 2; line++) {
    for (size_t j = 0; j < cols; j++) {
      memcpy(text + len, line ? "654321.5," : "123456.5,", 9);
      len += 9;
    }
    text[len - 1] = '\n';
  }
  gmle_reader *r = NULL;
  CHECK_STATUS(gmle_reader_open(ctx, write_n("big.csv", text, len), NULL, &r),
               GMLE_OK);
  free(text);
  if (!r)
    return;
  CHECK(gmle_reader_cols(r) == cols);
  double *v = malloc(2 * cols * sizeof *v);
  CHECK(read_all(r, 1, v, 2, NULL, 0) == 2);
  int bad = 0;
  for (size_t j = 0; j < cols; j++)
    bad += v[j] != 123456.5 || v[cols + j] != 654321.5;
  CHECK(bad == 0);
  free(v);
  gmle_reader_free(r);
}

TEST(csv_bad_inputs_case27_independent_of_lc_numeric) {
  const char *names[] = {"de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8",
                         "fr_FR.utf8"};
  const char *got = NULL;
  for (int k = 0; k < 4 && !got; k++)
    got = setlocale(LC_NUMERIC, names[k]);
  if (!got || strcmp(localeconv()->decimal_point, ",") != 0) {
    printf("  (skipped: no locale with a decimal comma; set LOCPATH to a "
           "directory made by 'localedef -i de_DE -f UTF-8 "
           "DIR/de_DE.UTF-8')\n");
    setlocale(LC_NUMERIC, "C");
    return;
  }
  gmle_reader *r = open_text("x,y\n1.5,2.25\n-0.125,1e-3\n", NULL);
  if (r) {
    double v[4];
    CHECK(read_all(r, 7, v, 2, NULL, 0) == 2);
    CHECK(v[0] == 1.5 && v[1] == 2.25 && v[2] == -0.125 && v[3] == 1e-3);
    gmle_reader_free(r);
  }
  CHECK_STATUS(first_error("x;y\n1,5;2\n", 10, NULL), GMLE_E_BAD_FORMAT);
  setlocale(LC_NUMERIC, "C");
}

TEST(csv_failed_read_is_repeatable_and_rewind_recovers) {
  gmle_reader *r = open_text("1,2\n3,4\n5,6\n7,8\n9,x\n11,12\n", NULL);
  if (!r)
    return;
  double v[8];
  size_t n = 0;
  CHECK_STATUS(gmle_reader_read(r, v, 3, &n, NULL), GMLE_OK);
  CHECK(n == 3 && v[5] == 6);
  CHECK_STATUS(gmle_reader_read(r, v, 3, &n, NULL), GMLE_E_BAD_FORMAT);
  CHECK(n == 0);
  CHECK_ERROR_HAS(ctx, ":5:3:");
  CHECK(gmle_reader_offset(r) == 3);
  CHECK_STATUS(gmle_reader_read(r, v, 1, &n, NULL), GMLE_OK);
  CHECK(n == 1 && v[0] == 7);
  CHECK_STATUS(gmle_reader_read(r, v, 3, &n, NULL), GMLE_E_BAD_FORMAT);
  CHECK_ERROR_HAS(ctx, ":5:3:");
  CHECK_STATUS(gmle_reader_rewind(r), GMLE_OK);
  CHECK(gmle_reader_offset(r) == 0);
  CHECK_STATUS(gmle_reader_read(r, v, 2, &n, NULL), GMLE_OK);
  CHECK(n == 2 && v[0] == 1 && v[3] == 4);
  gmle_reader_free(r);
  /* header only: no rows */
  r = open_text("a,b\n", NULL);
  if (r) {
    CHECK(gmle_reader_cols(r) == 2);
    CHECK_STATUS(gmle_reader_read(r, v, 3, &n, NULL), GMLE_OK);
    CHECK(n == 0);
    gmle_reader_free(r);
  }
}

/* gmle_reader_seek on CSV skips lines without parsing them (a malformed
 * line before the row is not read), keeps the file's line numbers, and
 * seeking to the same row again starts there; count_rows counts data rows
 * (not the header or blank lines). */
TEST(csv_seek_skips_rows_keeping_line_numbers) {
  gmle_reader *r = open_text("a,b\n1,2\n\n3,x\n5,6\n  \n7,8\n9,10\n", NULL);
  if (!r)
    return;
  uint64_t count = 0;
  CHECK_STATUS(gmle_reader_count_rows(r, &count), GMLE_OK);
  CHECK(count == 5);
  CHECK(gmle_reader_offset(r) == 0);
  double v[8];
  size_t n = 0;
  for (int again = 0; again < 2; again++) {
    CHECK_STATUS(gmle_reader_seek(r, 2), GMLE_OK); /* past "3,x" */
    CHECK(gmle_reader_offset(r) == 2);
    CHECK_STATUS(gmle_reader_read(r, v, 2, &n, NULL), GMLE_OK);
    CHECK(n == 2 && v[0] == 5 && v[1] == 6 && v[2] == 7 && v[3] == 8);
    CHECK(gmle_reader_row_line(r, 0) == 5 && gmle_reader_row_line(r, 1) == 7);
    CHECK(gmle_reader_offset(r) == 4);
  }
  CHECK_STATUS(gmle_reader_seek(r, 1), GMLE_OK); /* behind the last seek */
  CHECK_STATUS(gmle_reader_read(r, v, 1, &n, NULL), GMLE_E_BAD_FORMAT);
  CHECK_ERROR_HAS(ctx, ":4:3:");
  CHECK_STATUS(gmle_reader_seek(r, 99), GMLE_OK);
  CHECK(gmle_reader_offset(r) == 5);
  CHECK_STATUS(gmle_reader_read(r, v, 2, &n, NULL), GMLE_OK);
  CHECK(n == 0);
  gmle_reader_free(r);
  /* A text labels file: a blank line before a label is still refused. */
  gmle_reader_options o;
  gmle_reader_options_init(&o);
  o.labels_only = 1;
  r = open_text("x\ny\nz\n", &o);
  if (r) {
    const char *l[2];
    CHECK_STATUS(gmle_reader_seek(r, 2), GMLE_OK);
    CHECK_STATUS(gmle_reader_read(r, NULL, 2, &n, l), GMLE_OK);
    CHECK(n == 1 && strcmp(l[0], "z") == 0);
    gmle_reader_free(r);
  }
  r = open_text("x\n\ny\nz\n", &o);
  if (r) {
    CHECK_STATUS(gmle_reader_seek(r, 2), GMLE_E_BAD_FORMAT);
    CHECK_ERROR_HAS(ctx, ":2: blank line");
    gmle_reader_free(r);
  }
}

TEST(text_labels_file_one_label_per_line) {
  gmle_reader_options o;
  gmle_reader_options_init(&o);
  o.labels_only = 1;
  gmle_reader *r =
      open_text("\xEF\xBB\xBF  cat \ndog\r\n\"a, \"\"b\"\"\"\n7\n\n  \n", &o);
  if (r) {
    char lab[128];
    CHECK(gmle_reader_cols(r) == 0);
    CHECK(strcmp(gmle_reader_format(r), "text") == 0);
    CHECK(gmle_reader_rows(r, NULL) == 0);
    for (size_t b = 1; b <= 7; b += 6) {
      CHECK_STATUS(gmle_reader_rewind(r), GMLE_OK);
      CHECK(read_all(r, b, NULL, 10, lab, sizeof lab) == 4);
      CHECK_MSG(strcmp(lab, "cat|dog|a, \"b\"|7|") == 0, "'%s'", lab);
    }
    gmle_reader_free(r);
  }
  CHECK_STATUS(first_error("a\n\nb\n", 5, &o), GMLE_E_BAD_FORMAT);
  CHECK_ERROR_HAS(ctx, "e.csv:2: blank line");
  CHECK_STATUS(first_error("a\nb\0c\n", 6, &o), GMLE_E_BAD_FORMAT);
  CHECK_ERROR_HAS(ctx, "e.csv:2:2: embedded NUL");
  /* an empty labels file has no labels */
  r = open_text("", &o);
  if (r) {
    size_t n = 9;
    const char *l[2];
    CHECK_STATUS(gmle_reader_read(r, NULL, 2, &n, l), GMLE_OK);
    CHECK(n == 0);
    gmle_reader_free(r);
  }
  /* labels_only + label_column: one column of a CSV, others unparsed */
  o.label_column = "label";
  r = open_text("x,y,label\n1,,a\nfoo,2,b\n", &o);
  if (r) {
    char lab[64];
    CHECK(gmle_reader_cols(r) == 0);
    CHECK(read_all(r, 1, NULL, 10, lab, sizeof lab) == 2);
    CHECK(strcmp(lab, "a|b|") == 0);
    gmle_reader_free(r);
  }
}

/* Every allocation failing in turn, and random bytes: a status, never a
 * crash (run under ASan/UBSan in CI). */
TEST(csv_survives_allocation_failures_and_random_bytes) {
  const char *p = write_text("a.csv", "a,b,lab\n1,2,x\n3,4,\"y\"\n");
  gmle_reader_options o;
  gmle_reader_options_init(&o);
  o.label_column = "lab";
  int saw_oom = 0, saw_ok = 0;
  for (long k = 1; k < 40; k++) {
    gmle__test_fail_alloc_after(k);
    gmle_reader *r = NULL;
    gmle_status s = gmle_reader_open(ctx, p, &o, &r);
    if (s == GMLE_OK) {
      double v[4];
      const char *l[2];
      size_t n;
      s = gmle_reader_read(r, v, 2, &n, l);
      gmle_reader_free(r);
    }
    gmle__test_fail_alloc_after(0);
    CHECK(s == GMLE_OK || s == GMLE_E_OUT_OF_MEMORY);
    saw_oom |= s == GMLE_E_OUT_OF_MEMORY;
    saw_ok |= s == GMLE_OK;
  }
  CHECK(saw_oom && saw_ok);
  const char alphabet[] = ",;\t \"\n\r0123456789.eE-+naifx\xef\xbb\xbf";
  uint64_t seed = 12345;
  for (int f = 0; f < 400; f++) {
    char text[96];
    size_t len = (size_t)(f % 90);
    for (size_t i = 0; i < len; i++) {
      seed = seed * 6364136223846793005ull + 1442695040888963407ull;
      text[i] = alphabet[(seed >> 33) % (sizeof alphabet)]; /* incl. NUL */
    }
    for (int mode = 0; mode < 3; mode++) {
      gmle_reader_options_init(&o);
      o.labels_only = mode == 2;
      o.label_column = mode == 1 ? "1" : NULL;
      gmle_reader *r = NULL;
      if (gmle_reader_open(ctx, write_n("r.csv", text, len), &o, &r) != GMLE_OK)
        continue;
      size_t cols = gmle_reader_cols(r), n = 1;
      double *v = malloc((3 * cols + 1) * sizeof *v);
      const char *l[3];
      while (n && gmle_reader_read(r, v, 3, &n, l) == GMLE_OK)
        for (size_t i = 0; mode && i < n; i++)
          CHECK(l[i] != NULL);
      free(v);
      gmle_reader_free(r);
    }
  }
}

/* Random decimal texts (1 to 20 digits, exponents up to +-40) read back
 * bit-identical to strtod in the C locale. */
TEST(csv_numbers_match_strtod_bit_for_bit) {
  const size_t N = 4000, D = 4;
  size_t cap = N * D * 64;
  char *text = malloc(cap), *p = text;
  double *want = malloc(N * D * sizeof *want), *got = malloc(N * D * 8);
  uint64_t seed = 99;
  for (size_t k = 0; k < N * D; k++) {
    char field[64];
    size_t m = 0;
    uint64_t r[8];
    for (int q = 0; q < 8; q++) {
      seed = seed * 6364136223846793005ull + 1442695040888963407ull;
      r[q] = seed >> 33;
    }
    if (r[0] % 3 == 0)
      field[m++] = r[0] % 2 ? '-' : '+';
    size_t ni = r[1] % 12, nf = r[2] % 12;
    if (ni + nf == 0)
      ni = 1;
    for (size_t i = 0; i < ni; i++)
      field[m++] = (char)('0' + (i == 0 && ni > 1 ? 1 + r[3] % 9
                                                  : (r[3] >> (3 * i)) % 10));
    if (nf || r[4] % 2)
      field[m++] = '.';
    for (size_t i = 0; i < nf; i++)
      field[m++] = (char)('0' + (r[5] >> (3 * i)) % 10);
    if (r[6] % 2)
      m += (size_t)snprintf(field + m, sizeof field - m, "e%d",
                            (int)(r[7] % 81) - 40);
    field[m] = '\0';
    want[k] = strtod(field, NULL);
    p += sprintf(p, "%s%c", field, k % D == D - 1 ? '\n' : ',');
  }
  gmle_reader *r = NULL;
  CHECK_STATUS(gmle_reader_open(
                   ctx, write_n("num.csv", text, (size_t)(p - text)), NULL, &r),
               GMLE_OK);
  if (r) {
    CHECK(read_all(r, 1000, got, N, NULL, 0) == N);
    size_t bad = 0;
    for (size_t k = 0; k < N * D; k++)
      if (memcmp(&got[k], &want[k], 8) != 0 && bad++ < 3)
        printf("  value %zu: %.17g != %.17g\n", k, got[k], want[k]);
    CHECK(bad == 0);
    gmle_reader_free(r);
  }
  free(text);
  free(want);
  free(got);
}

int main(int argc, char **argv) {
  CHECK_INIT(argc, argv);
  snprintf(tdir, sizeof tdir, "/tmp/gmle_io_csv_XXXXXX");
  if (!mkdtemp(tdir)) {
    printf("mkdtemp failed\n");
    return 2;
  }
  if (gmle_context_create(GMLE_BACKEND_CPU, -1, &ctx) != GMLE_OK) {
    printf("context: %s\n", gmle_context_error(ctx));
    return 2;
  }
  RUN(csv_reads_numbers_without_header);
  RUN(csv_header_names_and_label_column_by_name_across_batches);
  RUN(csv_label_column_by_index_and_header_options);
  RUN(csv_first_line_with_a_number_is_data_and_a_header_is_reported);
  RUN(csv_a_very_long_line_is_refused_before_its_fields_are_stored);
  RUN(csv_detects_and_accepts_delimiters);
  RUN(csv_bad_inputs_case27_errors_name_line_and_column);
  RUN(csv_bad_inputs_case27_values_bom_crlf_trailing_delimiter);
  RUN(csv_bad_inputs_case27_ten_mib_line);
  RUN(csv_bad_inputs_case27_independent_of_lc_numeric);
  RUN(csv_failed_read_is_repeatable_and_rewind_recovers);
  RUN(csv_seek_skips_rows_keeping_line_numbers);
  RUN(text_labels_file_one_label_per_line);
  RUN(csv_survives_allocation_failures_and_random_bytes);
  RUN(csv_numbers_match_strtod_bit_for_bit);
  gmle_context_free(ctx);
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tdir);
  if (system(cmd) != 0)
    printf("could not remove %s\n", tdir);
  return CHECK_DONE();
}
