/* test_io_writer.c -- the .npy / CSV writers: exact round trips through the
 * readers (and through numpy when it is installed), the patched row count,
 * atomic replacement, and abort / failure leaving no file. */
#define _POSIX_C_SOURCE 200809L
#include "check.h"
#include "gmle_io.h"
#include "testutil.h"

#include <dirent.h>
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tdir[256];
static gmle_context *ctx;
static int have_numpy;

static const char *tpath(const char *name) {
  static char buf[8][512];
  static int k;
  k = (k + 1) % 8;
  snprintf(buf[k], sizeof buf[k], "%s/%s", tdir, name);
  return buf[k];
}

static void write_raw(const char *name, const void *p, size_t n) {
  FILE *f = fopen(tpath(name), "wb");
  if (!f || fwrite(p, 1, n, f) != n) {
    printf("cannot write %s\n", name);
    exit(2);
  }
  fclose(f);
}

/* Number of entries in the test directory (besides . and ..). */
static int dir_entries(void) {
  DIR *d = opendir(tdir);
  int n = 0;
  struct dirent *e;
  while (d && (e = readdir(d)))
    n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
  if (d)
    closedir(d);
  return n;
}

static void clear_dir(void) {
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -f '%s'/*", tdir);
  if (system(cmd) != 0)
    printf("  cannot clear %s\n", tdir);
}

/* Run a python snippet (numpy imported as np, d = the test directory);
 * returns its exit status. */
static int py(const char *code) {
  char cmd[4096];
  snprintf(cmd, sizeof cmd,
           "python3 -c \"import numpy as np, sys\nd = '%s'\n%s\"", tdir,
           code);
  return system(cmd);
}

/* Test data: random doubles plus the awkward ones. */
static void fill_f64(double *x, size_t n, uint64_t seed) {
  tu_rng rng;
  tu_seed(&rng, seed);
  for (size_t i = 0; i < n; i++)
    x[i] = tu_normal(&rng) * pow(10.0, (double)(int)(tu_next(&rng) % 40) - 20);
  const double special[] = {0.1, -0.0, 4.9406564584124654e-324, 1e308,
                            -1.7976931348623157e308, 2.2250738585072014e-308,
                            NAN, INFINITY, -INFINITY, 1.0 / 3.0};
  for (size_t k = 0; k < 10 && k < n; k++)
    x[k * 7 % n] = special[k];
}

/* Write n rows of x in uneven batches (1, 7, the rest). */
static gmle_status write_batches(gmle_writer *w, const void *x, size_t n,
                                 size_t row_bytes) {
  const unsigned char *p = x;
  size_t done = 0, b[2] = {1, 7};
  for (int k = 0; k < 2 && done < n; k++) {
    size_t m = b[k] < n - done ? b[k] : n - done;
    gmle_status s = gmle_writer_write(w, p + done * row_bytes, m);
    if (s != GMLE_OK)
      return s;
    done += m;
  }
  return gmle_writer_write(w, p + done * row_bytes, n - done);
}

/* Read a whole data file as the reader's dtype into dst (bytes). */
static size_t read_back(const char *path, void *dst, size_t cap_rows,
                        size_t *cols, gmle_dtype *dt) {
  gmle_reader *r = NULL;
  if (gmle_reader_open(ctx, path, NULL, &r) != GMLE_OK) {
    printf("  open %s: %s\n", path, gmle_context_error(ctx));
    return (size_t)-1;
  }
  *cols = gmle_reader_cols(r);
  *dt = gmle_reader_dtype(r);
  size_t row_bytes = *cols * (*dt == GMLE_F32 ? 4 : 8), total = 0;
  for (;;) {
    size_t n = 0;
    if (gmle_reader_read(r, (unsigned char *)dst + total * row_bytes, 5, &n,
                         NULL) != GMLE_OK) {
      printf("  read %s: %s\n", path, gmle_context_error(ctx));
      total = (size_t)-1;
      break;
    }
    if (n == 0)
      break;
    total += n;
    if (total > cap_rows) {
      total = (size_t)-1;
      break;
    }
  }
  gmle_reader_free(r);
  return total;
}

/* Labels of a labels_only reader, '|'-joined. */
static void read_labels(const char *path, char *out, size_t cap) {
  gmle_reader_options o;
  gmle_reader_options_init(&o);
  o.labels_only = 1;
  gmle_reader *r = NULL;
  out[0] = '\0';
  if (gmle_reader_open(ctx, path, &o, &r) != GMLE_OK) {
    snprintf(out, cap, "ERROR %s", gmle_context_error(ctx));
    return;
  }
  const char *l[3];
  for (;;) {
    size_t n = 0;
    if (gmle_reader_read(r, NULL, 3, &n, l) != GMLE_OK) {
      snprintf(out, cap, "ERROR %s", gmle_context_error(ctx));
      break;
    }
    if (n == 0)
      break;
    for (size_t i = 0; i < n; i++) {
      strncat(out, l[i], cap - strlen(out) - 1);
      strncat(out, "|", cap - strlen(out) - 1);
    }
  }
  gmle_reader_free(r);
}

TEST(writer_npy_f64_and_f32_round_trip_bit_exactly) {
  const size_t N = 1000, D = 3;
  double *x = malloc(N * D * 8), *got = malloc(N * D * 8);
  float *xf = malloc(N * D * 4);
  fill_f64(x, N * D, 1);
  for (size_t k = 0; k < N * D; k++)
    xf[k] = (float)x[k];
  gmle_writer *w = NULL;
  CHECK_STATUS(gmle_writer_open(ctx, tpath("x.npy"), GMLE_ELEM_F64, D, 0, &w),
               GMLE_OK);
  CHECK_STATUS(write_batches(w, x, N, D * 8), GMLE_OK);
  CHECK_STATUS(gmle_writer_commit(w), GMLE_OK);
  CHECK_STATUS(gmle_writer_open(ctx, tpath("xf.npy"), GMLE_ELEM_F32, D, 0, &w),
               GMLE_OK);
  CHECK_STATUS(write_batches(w, xf, N, D * 4), GMLE_OK);
  CHECK_STATUS(gmle_writer_commit(w), GMLE_OK);
  CHECK(dir_entries() == 2);

  size_t cols = 0;
  gmle_dtype dt;
  CHECK(read_back(tpath("x.npy"), got, N, &cols, &dt) == N);
  CHECK(cols == D && dt == GMLE_F64);
  CHECK(memcmp(got, x, N * D * 8) == 0);
  CHECK(read_back(tpath("xf.npy"), got, N, &cols, &dt) == N);
  CHECK(cols == D && dt == GMLE_F32);
  CHECK(memcmp(got, xf, N * D * 4) == 0);

  /* The data starts at a multiple of 64 bytes. */
  FILE *f = fopen(tpath("x.npy"), "rb");
  unsigned char h[10] = {0};
  CHECK(f && fread(h, 1, 10, f) == 10);
  if (f)
    fclose(f);
  CHECK((10 + (h[8] | h[9] << 8)) % 64 == 0);

  if (have_numpy) {
    write_raw("x.raw", x, N * D * 8);
    write_raw("xf.raw", xf, N * D * 4);
    CHECK(py("a = np.load(d + '/x.npy')\n"
             "b = np.fromfile(d + '/x.raw', '<f8').reshape(1000, 3)\n"
             "sys.exit(0 if a.dtype == np.float64 and a.shape == (1000, 3) "
             "and a.tobytes() == b.tobytes() else 1)") == 0);
    CHECK(py("a = np.load(d + '/xf.npy')\n"
             "b = np.fromfile(d + '/xf.raw', '<f4').reshape(1000, 3)\n"
             "sys.exit(0 if a.dtype == np.float32 and a.shape == (1000, 3) "
             "and a.tobytes() == b.tobytes() else 1)") == 0);
  } else {
    printf("  (numpy checks skipped: python3 with numpy not available)\n");
  }
  clear_dir();
  free(x);
  free(xf);
  free(got);
}

/* One .npy written by an owner and two parts at their rows (in any order)
 * is the file one writer writes; a failed part leaves the owner to abort,
 * which removes everything; the wrong uses are refused. */
TEST(writer_parts_write_rows_at_their_place) {
  const size_t N = 1000, D = 3;
  double *x = malloc(N * D * 8), *got = malloc(N * D * 8);
  fill_f64(x, N * D, 7);
  gmle_writer *one = NULL;
  CHECK_STATUS(
      gmle_writer_open(ctx, tpath("one.npy"), GMLE_ELEM_F64, D, 0, &one),
      GMLE_OK);
  CHECK_STATUS(write_batches(one, x, N, D * 8), GMLE_OK);
  CHECK_STATUS(gmle_writer_commit(one), GMLE_OK);
  /* Shares [0, 300) (the owner), [300, 301), [301, 1000). */
  gmle_writer *w = NULL, *p1 = NULL, *p2 = NULL;
  CHECK_STATUS(gmle_writer_open(ctx, tpath("all.npy"), GMLE_ELEM_F64, D, 0, &w),
               GMLE_OK);
  const char *tmp = w ? gmle_writer_temp_path(w) : NULL;
  CHECK(tmp != NULL && strstr(tmp, tdir) == tmp);
  if (!tmp) {
    gmle_writer_abort(w);
    free(x);
    free(got);
    return;
  }
  CHECK_STATUS(gmle_writer_open_part(ctx, tmp, GMLE_ELEM_F64, D, 0, &p1),
               GMLE_OK);
  CHECK_STATUS(gmle_writer_open_part(ctx, tmp, GMLE_ELEM_F64, D, 0, &p2),
               GMLE_OK);
  CHECK(gmle_writer_temp_path(p1) == NULL);
  CHECK_STATUS(gmle_writer_write_at(p2, 301, x + 301 * D, 699), GMLE_OK);
  CHECK_STATUS(gmle_writer_write_at(p1, 300, x + 300 * D, 1), GMLE_OK);
  CHECK_STATUS(gmle_writer_write_at(w, 100, x + 100 * D, 200), GMLE_OK);
  CHECK_STATUS(gmle_writer_write_at(w, 0, x, 100), GMLE_OK);
  CHECK_STATUS(gmle_writer_write(w, x, 1), GMLE_E_INVALID_ARG);
  CHECK_STATUS(gmle_writer_set_rows(p1, N), GMLE_E_INVALID_ARG);
  CHECK_STATUS(gmle_writer_commit(p1), GMLE_OK);
  CHECK_STATUS(gmle_writer_commit(p2), GMLE_OK);
  CHECK(access(tpath("all.npy"), F_OK) != 0); /* not there before commit */
  CHECK_STATUS(gmle_writer_set_rows(w, N), GMLE_OK);
  CHECK_STATUS(gmle_writer_commit(w), GMLE_OK);
  size_t cols = 0;
  gmle_dtype dt;
  CHECK(read_back(tpath("all.npy"), got, N, &cols, &dt) == N);
  CHECK(cols == D && memcmp(got, x, N * D * 8) == 0);
  size_t n1 = 0, n2 = 0;
  unsigned char *b1 = tu_slurp(tpath("one.npy"), &n1);
  unsigned char *b2 = tu_slurp(tpath("all.npy"), &n2);
  CHECK_MSG(b1 && b2 && n1 == n2 && memcmp(b1, b2, n1) == 0,
            "the parts' file differs from one writer's (%zu, %zu bytes)", n1,
            n2);
  free(b1);
  free(b2);
  /* Strings at their place; the owner's abort removes the parts' rows. */
  CHECK_STATUS(gmle_writer_open(ctx, tpath("s.npy"), GMLE_ELEM_STR, 0, 4, &w),
               GMLE_OK);
  tmp = w ? gmle_writer_temp_path(w) : NULL;
  CHECK_STATUS(gmle_writer_open_part(ctx, tmp, GMLE_ELEM_STR, 0, 4, &p1),
               GMLE_OK);
  const char *words[] = {"caf\xc3\xa9", "toolong"};
  CHECK_STATUS(gmle_writer_write_at(p1, 5, words, 1), GMLE_OK);
  CHECK_STATUS(gmle_writer_write_at(p1, 6, words + 1, 1), GMLE_E_INVALID_ARG);
  CHECK_ERROR_HAS(ctx, "row 6");
  gmle_writer_abort(p1);
  CHECK(access(tmp, F_OK) == 0); /* a part's abort leaves the file */
  gmle_writer_abort(w);
  CHECK(dir_entries() == 2);
  /* CSV outputs and missing files are refused. */
  CHECK_STATUS(gmle_writer_open(ctx, tpath("c.csv"), GMLE_ELEM_F64, D, 0, &w),
               GMLE_OK);
  CHECK(gmle_writer_temp_path(w) == NULL);
  CHECK_STATUS(gmle_writer_write_at(w, 0, x, 1), GMLE_E_UNSUPPORTED);
  gmle_writer_abort(w);
  CHECK_STATUS(
      gmle_writer_open_part(ctx, tpath("none.npy"), GMLE_ELEM_F64, D, 0, &p1),
      GMLE_E_IO);
  CHECK(p1 == NULL);
  CHECK(dir_entries() == 2);
  clear_dir();
  free(x);
  free(got);
}

TEST(writer_csv_round_trips_exactly_in_the_c_locale) {
  const size_t N = 300, D = 4;
  double *x = malloc(N * D * 8), *got = malloc(N * D * 8);
  float *xf = malloc(N * D * 4);
  fill_f64(x, N * D, 2);
  for (size_t k = 0; k < N * D; k++)
    xf[k] = (float)x[k];
  /* A decimal-comma locale must not change the output (when available). */
  const char *loc = setlocale(LC_NUMERIC, "de_DE.UTF-8");
  if (!loc)
    printf("  (de_DE.UTF-8 not available: C locale only)\n");
  gmle_writer *w = NULL;
  CHECK_STATUS(gmle_writer_open(ctx, tpath("x.csv"), GMLE_ELEM_F64, D, 0, &w),
               GMLE_OK);
  CHECK_STATUS(write_batches(w, x, N, D * 8), GMLE_OK);
  CHECK_STATUS(gmle_writer_commit(w), GMLE_OK);
  CHECK_STATUS(gmle_writer_open(ctx, tpath("xf.CSV"), GMLE_ELEM_F32, D, 0, &w),
               GMLE_OK);
  CHECK_STATUS(write_batches(w, xf, N, D * 4), GMLE_OK);
  CHECK_STATUS(gmle_writer_commit(w), GMLE_OK);
  setlocale(LC_NUMERIC, "C");

  size_t cols = 0;
  gmle_dtype dt;
  CHECK(read_back(tpath("x.csv"), got, N, &cols, &dt) == N);
  CHECK(cols == D && dt == GMLE_F64);
  int bad = 0;
  for (size_t k = 0; k < N * D; k++)
    bad += !(got[k] == x[k] || (isnan(got[k]) && isnan(x[k]))) ||
           signbit(got[k]) != signbit(x[k]);
  CHECK_MSG(bad == 0, "%d values differ", bad);
  CHECK(read_back(tpath("xf.CSV"), got, N, &cols, &dt) == N);
  bad = 0;
  for (size_t k = 0; k < N * D; k++)
    bad += !((float)got[k] == xf[k] || (isnan(got[k]) && isnan(xf[k])));
  CHECK_MSG(bad == 0, "%d float32 values differ", bad);
  FILE *f = fopen(tpath("x.csv"), "rb");
  char line[256] = "";
  CHECK(f && fgets(line, sizeof line, f));
  if (f)
    fclose(f);
  CHECK_MSG(strchr(line, '.') && strstr(line, ",") && !strchr(line, ';'),
            "first line '%s'", line);
  if (have_numpy) {
    write_raw("x.raw", x, N * D * 8);
    CHECK(py("a = np.loadtxt(d + '/x.csv', delimiter=',')\n"
             "b = np.fromfile(d + '/x.raw', '<f8').reshape(300, 4)\n"
             "sys.exit(0 if a.shape == (300, 4) and a.tobytes() == "
             "b.tobytes() else 1)") == 0);
  }
  clear_dir();
  free(x);
  free(xf);
  free(got);
}

TEST(writer_integers_and_strings_round_trip_through_labels_readers) {
  int32_t i32[5] = {INT32_MIN, -1, 0, 7, INT32_MAX};
  int64_t i64[4] = {INT64_MIN, -2, 3, INT64_MAX};
  const char *str[5] = {"cat", "caf\xc3\xa9", "\xe6\x97\xa5\xe6\x9c\xac", "",
                        "a,\"b\""};
  const char *want32 = "-2147483648|-1|0|7|2147483647|";
  const char *want64 = "-9223372036854775808|-2|3|9223372036854775807|";
  const char *wants = "cat|caf\xc3\xa9|\xe6\x97\xa5\xe6\x9c\xac||a,\"b\"|";
  const char *names[2] = {"l.npy", "l.csv"};
  char got[512];
  for (int k = 0; k < 2; k++) {
    gmle_writer *w = NULL;
    CHECK_STATUS(gmle_writer_open(ctx, tpath(names[k]), GMLE_ELEM_I32, 0, 0,
                                  &w), GMLE_OK);
    CHECK_STATUS(write_batches(w, i32, 5, 4), GMLE_OK);
    CHECK_STATUS(gmle_writer_commit(w), GMLE_OK);
    read_labels(tpath(names[k]), got, sizeof got);
    CHECK_MSG(strcmp(got, want32) == 0, "%s: '%s'", names[k], got);

    CHECK_STATUS(gmle_writer_open(ctx, tpath(names[k]), GMLE_ELEM_I64, 0, 0,
                                  &w), GMLE_OK);
    CHECK_STATUS(write_batches(w, i64, 4, 8), GMLE_OK);
    CHECK_STATUS(gmle_writer_commit(w), GMLE_OK);
    read_labels(tpath(names[k]), got, sizeof got);
    CHECK_MSG(strcmp(got, want64) == 0, "%s: '%s'", names[k], got);

    CHECK_STATUS(gmle_writer_open(ctx, tpath(names[k]), GMLE_ELEM_STR, 0, 5,
                                  &w), GMLE_OK);
    CHECK_STATUS(write_batches(w, str, 5, sizeof(char *)), GMLE_OK);
    CHECK_STATUS(gmle_writer_commit(w), GMLE_OK);
    read_labels(tpath(names[k]), got, sizeof got);
    /* the text reader drops the empty line only at the end: here it is in
     * the middle, quoted as "" */
    CHECK_MSG(strcmp(got, wants) == 0, "%s: '%s'", names[k], got);
  }
  /* 2-D int64 CSV */
  gmle_writer *w = NULL;
  CHECK_STATUS(gmle_writer_open(ctx, tpath("m.csv"), GMLE_ELEM_I64, 2, 0, &w),
               GMLE_OK);
  CHECK_STATUS(gmle_writer_write(w, i64, 2), GMLE_OK);
  CHECK_STATUS(gmle_writer_commit(w), GMLE_OK);
  FILE *f = fopen(tpath("m.csv"), "rb");
  char text[128] = "";
  size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
  text[n] = '\0';
  if (f)
    fclose(f);
  CHECK_MSG(strcmp(text, "-9223372036854775808,-2\n3,9223372036854775807\n") ==
                0, "'%s'", text);
  if (have_numpy) {
    CHECK_STATUS(gmle_writer_open(ctx, tpath("s.npy"), GMLE_ELEM_STR, 0, 5,
                                  &w), GMLE_OK);
    CHECK_STATUS(gmle_writer_write(w, str, 5), GMLE_OK);
    CHECK_STATUS(gmle_writer_commit(w), GMLE_OK);
    CHECK_STATUS(gmle_writer_open(ctx, tpath("i.npy"), GMLE_ELEM_I32, 0, 0,
                                  &w), GMLE_OK);
    CHECK_STATUS(gmle_writer_write(w, i32, 5), GMLE_OK);
    CHECK_STATUS(gmle_writer_commit(w), GMLE_OK);
    CHECK(py("a = np.load(d + '/s.npy')\n"
             "ok = a.dtype == np.dtype('<U5') and a.tolist() == "
             "['cat', 'caf\\u00e9', '\\u65e5\\u672c', '', 'a,\\\"b\\\"']\n"
             "b = np.load(d + '/i.npy')\n"
             "ok = ok and b.dtype == np.int32 and b.tolist() == "
             "[-2**31, -1, 0, 7, 2**31 - 1]\n"
             "sys.exit(0 if ok else 1)") == 0);
  }
  clear_dir();
}

TEST(writer_zero_rows_gives_shape_0_d) {
  gmle_writer *w = NULL;
  CHECK_STATUS(gmle_writer_open(ctx, tpath("e.npy"), GMLE_ELEM_F64, 4, 0, &w),
               GMLE_OK);
  CHECK_STATUS(gmle_writer_write(w, NULL, 0), GMLE_OK);
  CHECK_STATUS(gmle_writer_commit(w), GMLE_OK);
  gmle_reader *r = NULL;
  CHECK_STATUS(gmle_reader_open(ctx, tpath("e.npy"), NULL, &r), GMLE_OK);
  if (r) {
    uint64_t n = 9;
    CHECK(gmle_reader_rows(r, &n) == 1 && n == 0 && gmle_reader_cols(r) == 4);
    gmle_reader_free(r);
  }
  if (have_numpy)
    CHECK(py("a = np.load(d + '/e.npy')\n"
             "sys.exit(0 if a.shape == (0, 4) else 1)") == 0);
  clear_dir();
}

TEST(writer_abort_and_failure_leave_no_file_and_commit_replaces) {
  double x[6] = {1, 2, 3, 4, 5, 6};
  gmle_writer *w = NULL;
  CHECK_STATUS(gmle_writer_open(ctx, tpath("a.npy"), GMLE_ELEM_F64, 3, 0, &w),
               GMLE_OK);
  CHECK_STATUS(gmle_writer_write(w, x, 2), GMLE_OK);
  CHECK(dir_entries() == 1); /* the temporary file */
  gmle_writer_abort(w);
  CHECK(dir_entries() == 0);
  gmle_writer_abort(NULL);

  CHECK_STATUS(gmle_writer_open(ctx, tpath("a.csv"), GMLE_ELEM_F64, 3, 0, &w),
               GMLE_OK);
  CHECK_STATUS(gmle_writer_write(w, x, 2), GMLE_OK);
  gmle_writer_abort(w);
  CHECK(dir_entries() == 0);

  /* a string longer than the width fails the write, then the commit */
  const char *s[2] = {"ok", "too long"};
  CHECK_STATUS(gmle_writer_open(ctx, tpath("s.npy"), GMLE_ELEM_STR, 0, 3, &w),
               GMLE_OK);
  CHECK_STATUS(gmle_writer_write(w, s, 2), GMLE_E_INVALID_ARG);
  CHECK_ERROR_HAS(ctx, "row 1");
  CHECK_ERROR_HAS(ctx, "width 3");
  CHECK_STATUS(gmle_writer_commit(w), GMLE_E_INVALID_ARG);
  CHECK(dir_entries() == 0);
  const char *bad[1] = {"\xff"};
  CHECK_STATUS(gmle_writer_open(ctx, tpath("s.npy"), GMLE_ELEM_STR, 0, 3, &w),
               GMLE_OK);
  CHECK_STATUS(gmle_writer_write(w, bad, 1), GMLE_E_INVALID_ARG);
  CHECK_ERROR_HAS(ctx, "UTF-8");
  gmle_writer_abort(w);
  CHECK(dir_entries() == 0);

  /* commit replaces an existing file atomically */
  write_raw("r.npy", "old", 3);
  CHECK_STATUS(gmle_writer_open(ctx, tpath("r.npy"), GMLE_ELEM_F64, 3, 0, &w),
               GMLE_OK);
  CHECK_STATUS(gmle_writer_write(w, x, 2), GMLE_OK);
  CHECK(dir_entries() == 2);
  CHECK_STATUS(gmle_writer_commit(w), GMLE_OK);
  CHECK(dir_entries() == 1);
  double got[6];
  size_t cols;
  gmle_dtype dt;
  CHECK(read_back(tpath("r.npy"), got, 2, &cols, &dt) == 2);
  CHECK(memcmp(got, x, sizeof x) == 0);

  /* allocation failures at open: a status and no file */
  clear_dir();
  for (long k = 1; k < 8; k++) {
    gmle__test_fail_alloc_after(k);
    w = NULL;
    gmle_status st = gmle_writer_open(ctx, tpath("m.csv"), GMLE_ELEM_F64, 3,
                                      0, &w);
    gmle__test_fail_alloc_after(0);
    CHECK(st == GMLE_OK || st == GMLE_E_OUT_OF_MEMORY);
    if (st == GMLE_OK)
      gmle_writer_abort(w);
    CHECK(dir_entries() == 0);
  }
  /* unwritable place */
  CHECK_STATUS(gmle_writer_open(ctx, tpath("no/such/dir.npy"), GMLE_ELEM_F64,
                                1, 0, &w), GMLE_E_IO);
  CHECK(w == NULL);
  CHECK_ERROR_HAS(ctx, "no/such/dir.npy");
  clear_dir();
}

int main(int argc, char **argv) {
  CHECK_INIT(argc, argv);
  snprintf(tdir, sizeof tdir, "/tmp/gmle_io_wr_XXXXXX");
  if (!mkdtemp(tdir)) {
    printf("mkdtemp failed\n");
    return 2;
  }
  if (gmle_context_create(GMLE_BACKEND_CPU, -1, &ctx) != GMLE_OK) {
    printf("context: %s\n", gmle_context_error(ctx));
    return 2;
  }
  have_numpy = system("python3 -c 'import numpy' >/dev/null 2>&1") == 0;
  RUN(writer_npy_f64_and_f32_round_trip_bit_exactly);
  RUN(writer_parts_write_rows_at_their_place);
  RUN(writer_csv_round_trips_exactly_in_the_c_locale);
  RUN(writer_integers_and_strings_round_trip_through_labels_readers);
  RUN(writer_zero_rows_gives_shape_0_d);
  RUN(writer_abort_and_failure_leave_no_file_and_commit_replaces);
  gmle_context_free(ctx);
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tdir);
  if (system(cmd) != 0)
    printf("could not remove %s\n", tdir);
  return CHECK_DONE();
}
