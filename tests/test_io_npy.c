/* test_io_npy.c -- the streaming .npy reader: every header variant built by
 * hand (versions, byte orders, Fortran order, shapes, label dtypes), files
 * written by numpy.save when numpy is installed, and the BAD_INPUTS 24/25
 * cases that reach the reader. */
#define _POSIX_C_SOURCE 200809L
#include "check.h"
#include "gmle_io.h"
#include "testing.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

static void write_bytes(const char *path, const void *p, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(p, 1, n, f) != n) {
    printf("cannot write %s\n", path);
    exit(2);
  }
  fclose(f);
}

/* A .npy file: version `major`, header dict text padded so the data starts
 * at a multiple of `align`, then `nbytes` of data. */
static void make_npy(const char *path, int major, const char *dict,
                     size_t align, const void *data, size_t nbytes) {
  size_t pre = major == 1 ? 10 : 12, tl = strlen(dict);
  size_t total = (pre + tl + 1 + align - 1) / align * align;
  unsigned char *b = malloc(total + nbytes + 1);
  memcpy(b, "\x93NUMPY", 6);
  b[6] = (unsigned char)major;
  b[7] = 0;
  size_t hl = total - pre;
  for (size_t k = 0; k < pre - 8; k++)
    b[8 + k] = (unsigned char)(hl >> (8 * k));
  memcpy(b + pre, dict, tl);
  memset(b + pre + tl, ' ', total - pre - tl - 1);
  b[total - 1] = '\n';
  if (nbytes)
    memcpy(b + total, data, nbytes);
  write_bytes(path, b, total + nbytes);
  free(b);
}

/* Store v as a float of `size` bytes (4 or 8) in the given byte order. */
static void put_float(unsigned char *p, size_t size, int big, double v) {
  uint64_t bits = 0;
  if (size == 4) {
    float f = (float)v;
    uint32_t u;
    memcpy(&u, &f, 4);
    bits = u;
  } else {
    memcpy(&bits, &v, 8);
  }
  for (size_t k = 0; k < size; k++) {
    unsigned char byte = (unsigned char)(bits >> (8 * k));
    p[big ? size - 1 - k : k] = byte;
  }
}

static void put_int(unsigned char *p, size_t size, int big, uint64_t v) {
  for (size_t k = 0; k < size; k++)
    p[big ? size - 1 - k : k] = (unsigned char)(v >> (8 * k));
}

static double val(size_t i, size_t j) {
  return (double)(i * 8 + j) + 0.25 * (double)(j % 3) - 3.5;
}

/* Read everything with batches of max_rows, as doubles. Returns rows read,
 * or (size_t)-1 on error. */
static size_t read_all(gmle_reader *r, size_t max_rows, double *dst,
                       size_t cap_rows) {
  size_t cols = gmle_reader_cols(r), total = 0;
  gmle_dtype dt = gmle_reader_dtype(r);
  void *buf = malloc((max_rows * cols + 1) * 8);
  for (;;) {
    size_t n = 0;
    gmle_status s = gmle_reader_read(r, buf, max_rows, &n, NULL);
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
    for (size_t k = 0; k < n * cols; k++)
      dst[total * cols + k] = dt == GMLE_F32 ? (double)((float *)buf)[k]
                                             : ((double *)buf)[k];
    total += n;
  }
  free(buf);
  return total;
}

TEST(npy_reads_every_version_dtype_and_order) {
  const char *descrs[] = {"<f4", ">f4", "<f8", ">f8"};
  const size_t N = 23, D = 3;
  const size_t batches[] = {1, 7, 1000};
  for (int major = 1; major <= 3; major++)
    for (int d = 0; d < 4; d++)
      for (int fo = 0; fo < 2; fo++) {
        size_t size = descrs[d][2] == '4' ? 4 : 8;
        int big = descrs[d][0] == '>';
        unsigned char data[23 * 3 * 8];
        for (size_t i = 0; i < N; i++)
          for (size_t j = 0; j < D; j++)
            put_float(data + (fo ? j * N + i : i * D + j) * size, size, big,
                      val(i, j));
        char dict[160];
        snprintf(dict, sizeof dict,
                 "{'descr': '%s', 'fortran_order': %s, 'shape': (23, 3), }",
                 descrs[d], fo ? "True" : "False");
        const char *p = tpath("v.npy");
        make_npy(p, major, dict, 64, data, N * D * size);
        gmle_reader *r = NULL;
        CHECK_STATUS(gmle_reader_open(ctx, p, NULL, &r), GMLE_OK);
        if (!r)
          continue;
        uint64_t rows = 0;
        CHECK(gmle_reader_rows(r, &rows) == 1 && rows == N);
        CHECK(gmle_reader_cols(r) == D);
        CHECK(gmle_reader_dtype(r) == (size == 4 ? GMLE_F32 : GMLE_F64));
        CHECK(strcmp(gmle_reader_format(r), "npy") == 0);
        CHECK(gmle_reader_column_name(r, 0) == NULL);
        for (int b = 0; b < 3; b++) {
          double got[23 * 3];
          CHECK_STATUS(gmle_reader_rewind(r), GMLE_OK);
          size_t n = read_all(r, batches[b], got, N);
          CHECK_MSG(n == N, "v%d %s fortran=%d batch %zu: %zu rows", major,
                    descrs[d], fo, batches[b], n);
          CHECK(gmle_reader_offset(r) == N);
          int bad = 0;
          for (size_t i = 0; i < N && n == N; i++)
            for (size_t j = 0; j < D; j++)
              bad += got[i * D + j] != val(i, j);
          CHECK_MSG(bad == 0, "v%d %s fortran=%d batch %zu: %d wrong",
                    major, descrs[d], fo, batches[b], bad);
        }
        gmle_reader_free(r);
      }
}

/* gmle_reader_seek jumps to a row in C and Fortran order and in labels
 * files; beyond the end it stops at the row count. */
TEST(npy_seek_jumps_to_a_row_in_either_order) {
  const size_t N = 23, D = 3;
  for (int fo = 0; fo < 2; fo++) {
    unsigned char data[23 * 3 * 8];
    for (size_t i = 0; i < N; i++)
      for (size_t j = 0; j < D; j++)
        put_float(data + (fo ? j * N + i : i * D + j) * 8, 8, 0, val(i, j));
    char dict[160];
    snprintf(dict, sizeof dict,
             "{'descr': '<f8', 'fortran_order': %s, 'shape': (23, 3), }",
             fo ? "True" : "False");
    const char *p = tpath("s.npy");
    make_npy(p, 1, dict, 64, data, N * D * 8);
    gmle_reader *r = NULL;
    CHECK_STATUS(gmle_reader_open(ctx, p, NULL, &r), GMLE_OK);
    if (!r)
      continue;
    const uint64_t rows[] = {17, 0, 5, 22, 23, 1000};
    for (size_t k = 0; k < sizeof rows / sizeof *rows; k++) {
      CHECK_STATUS(gmle_reader_seek(r, rows[k]), GMLE_OK);
      const uint64_t at = rows[k] < N ? rows[k] : N;
      CHECK(gmle_reader_offset(r) == at);
      double got[23 * 3];
      const size_t n = read_all(r, 4, got, N);
      CHECK_MSG(n == N - at, "fortran=%d seek %llu: %zu rows", fo,
                (unsigned long long)rows[k], n);
      int bad = 0;
      for (size_t i = 0; i < n && n != (size_t)-1; i++)
        for (size_t j = 0; j < D; j++)
          bad += got[i * D + j] != val(at + i, j);
      CHECK_MSG(bad == 0, "fortran=%d seek %llu: %d wrong values", fo,
                (unsigned long long)rows[k], bad);
    }
    uint64_t count = 0;
    CHECK_STATUS(gmle_reader_count_rows(r, &count), GMLE_OK);
    CHECK(count == N && gmle_reader_offset(r) == 0);
    gmle_reader_free(r);
  }
  /* A labels file. */
  unsigned char lab[10 * 8];
  for (size_t i = 0; i < 10; i++)
    put_int(lab + 8 * i, 8, 0, 100 + i);
  make_npy(tpath("l.npy"), 1,
           "{'descr': '<i8', 'fortran_order': False, 'shape': (10,), }", 64,
           lab, sizeof lab);
  gmle_reader_options o;
  gmle_reader_options_init(&o);
  o.labels_only = 1;
  gmle_reader *r = NULL;
  CHECK_STATUS(gmle_reader_open(ctx, tpath("l.npy"), &o, &r), GMLE_OK);
  if (r) {
    CHECK_STATUS(gmle_reader_seek(r, 7), GMLE_OK);
    const char *l[4];
    size_t n = 0;
    CHECK_STATUS(gmle_reader_read(r, NULL, 4, &n, l), GMLE_OK);
    CHECK(n == 3 && strcmp(l[0], "107") == 0 && strcmp(l[2], "109") == 0);
    gmle_reader_free(r);
  }
}

TEST(npy_reads_shapes_empty_1d_scalar_and_legacy_alignment) {
  gmle_reader *r = NULL;
  /* (0, 4) */
  make_npy(tpath("e.npy"), 1,
           "{'descr': '<f8', 'fortran_order': False, 'shape': (0, 4), }", 64,
           NULL, 0);
  CHECK_STATUS(gmle_reader_open(ctx, tpath("e.npy"), NULL, &r), GMLE_OK);
  if (r) {
    uint64_t rows = 99;
    double buf[8];
    size_t n = 99;
    CHECK(gmle_reader_rows(r, &rows) == 1 && rows == 0);
    CHECK(gmle_reader_cols(r) == 4);
    CHECK_STATUS(gmle_reader_read(r, buf, 2, &n, NULL), GMLE_OK);
    CHECK(n == 0);
    gmle_reader_free(r);
  }
  /* (5,) one feature, legacy 16-byte alignment */
  double v[5] = {1.5, -2.25, 0.0, 1e300, -1e-300};
  make_npy(tpath("one.npy"), 1,
           "{'descr': '<f8', 'fortran_order': True, 'shape': (5,), }", 16, v,
           sizeof v);
  CHECK_STATUS(gmle_reader_open(ctx, tpath("one.npy"), NULL, &r), GMLE_OK);
  if (r) {
    double got[5];
    CHECK(gmle_reader_cols(r) == 1);
    CHECK(read_all(r, 2, got, 5) == 5);
    CHECK(memcmp(got, v, sizeof v) == 0);
    gmle_reader_free(r);
  }
  /* () one value */
  float s = 3.25f;
  make_npy(tpath("s.npy"), 1,
           "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", 64, &s,
           4);
  CHECK_STATUS(gmle_reader_open(ctx, tpath("s.npy"), NULL, &r), GMLE_OK);
  if (r) {
    double got[2];
    uint64_t rows = 0;
    CHECK(gmle_reader_rows(r, &rows) == 1 && rows == 1);
    CHECK(gmle_reader_cols(r) == 1);
    CHECK(read_all(r, 7, got, 2) == 1 && got[0] == 3.25);
    gmle_reader_free(r);
  }
  /* (1, 3) Fortran order == C order */
  double t[3] = {1, 2, 3};
  make_npy(tpath("t.npy"), 2,
           "{'descr': '<f8', 'fortran_order': True, 'shape': (1, 3), }", 64,
           t, sizeof t);
  CHECK_STATUS(gmle_reader_open(ctx, tpath("t.npy"), NULL, &r), GMLE_OK);
  if (r) {
    double got[3];
    CHECK(read_all(r, 1, got, 1) == 1 && got[0] == 1 && got[2] == 3);
    gmle_reader_free(r);
  }
}

TEST(npy_converts_float16_and_passes_nonfinite_through) {
  /* half bits: 1.0, -2.5, 65504, 2^-24 (subnormal), +inf, nan, -0 */
  const uint16_t hb[7] = {0x3C00, 0xC100, 0x7BFF, 0x0001,
                          0x7C00, 0x7E00, 0x8000};
  const double want[7] = {1.0, -2.5, 65504.0, 5.9604644775390625e-08,
                          INFINITY, NAN, -0.0};
  for (int big = 0; big < 2; big++) {
    unsigned char data[14];
    for (int k = 0; k < 7; k++)
      put_int(data + 2 * k, 2, big, hb[k]);
    make_npy(tpath("h.npy"), 1,
             big ? "{'descr': '>f2', 'fortran_order': False, 'shape': (7,), }"
                 : "{'descr': '<f2', 'fortran_order': False, 'shape': (7,), }",
             64, data, sizeof data);
    gmle_reader *r = NULL;
    CHECK_STATUS(gmle_reader_open(ctx, tpath("h.npy"), NULL, &r), GMLE_OK);
    if (!r)
      continue;
    CHECK(gmle_reader_dtype(r) == GMLE_F64);
    double got[7];
    CHECK(read_all(r, 3, got, 7) == 7);
    for (int k = 0; k < 7; k++) {
      if (isnan(want[k]))
        CHECK(isnan(got[k]));
      else
        CHECK_MSG(got[k] == want[k] && signbit(got[k]) == signbit(want[k]),
                  "half %d: %g != %g", k, got[k], want[k]);
    }
    gmle_reader_free(r);
  }
}

TEST(npy_large_fortran_and_float16_cross_internal_chunks) {
  /* Fortran float64: each column is 1.6 MB, more than the 1 MiB chunk. */
  const size_t N = 200000, D = 2;
  double *data = malloc(N * D * 8), *got = malloc(N * D * 8);
  for (size_t i = 0; i < N; i++)
    for (size_t j = 0; j < D; j++)
      data[j * N + i] = val(i, j);
  make_npy(tpath("big.npy"), 1,
           "{'descr': '<f8', 'fortran_order': True, 'shape': (200000, 2), }",
           64, data, N * D * 8);
  gmle_reader *r = NULL;
  CHECK_STATUS(gmle_reader_open(ctx, tpath("big.npy"), NULL, &r), GMLE_OK);
  if (r) {
    CHECK(read_all(r, 150000, got, N) == N);
    int bad = 0;
    for (size_t i = 0; i < N; i++)
      for (size_t j = 0; j < D; j++)
        bad += got[i * D + j] != val(i, j);
    CHECK(bad == 0);
    gmle_reader_free(r);
  }
  /* float16, 600000 elements: more than one chunk of 2-byte elements. */
  const size_t M = 600000;
  unsigned char *h = malloc(M * 2);
  for (size_t i = 0; i < M; i++) { /* (i % 64) * 0.5 - 3: exact in half */
    double x = (double)(i % 64) * 0.5 - 3.0;
    uint16_t bits = 0;
    if (x != 0) {
      double a = fabs(x);
      int e = (int)floor(log2(a));
      uint16_t mant = (uint16_t)((a / ldexp(1.0, e) - 1.0) * 1024.0);
      bits = (uint16_t)(((unsigned)(e + 15) << 10) | mant);
      if (x < 0)
        bits |= 0x8000;
    }
    put_int(h + 2 * i, 2, 0, bits);
  }
  make_npy(tpath("h2.npy"), 1,
           "{'descr': '<f2', 'fortran_order': False, 'shape': (600000,), }",
           64, h, M * 2);
  double *g2 = malloc(M * 8);
  CHECK_STATUS(gmle_reader_open(ctx, tpath("h2.npy"), NULL, &r), GMLE_OK);
  if (r) {
    CHECK(read_all(r, 700000, g2, M) == M);
    int bad = 0;
    for (size_t i = 0; i < M; i++)
      bad += g2[i] != (double)(i % 64) * 0.5 - 3.0;
    CHECK(bad == 0);
    gmle_reader_free(r);
  }
  free(g2);
  free(h);
  free(data);
  free(got);
}

/* Read all labels of a labels_only reader in batches of max_rows into one
 * '|'-joined string: as text (gmle_reader_read), or as int64
 * (gmle_reader_read_int_labels) printed in decimal when as_int. */
static void read_labels_as(gmle_reader *r, size_t max_rows, int as_int,
                           char *out, size_t cap) {
  const char **lab = malloc(max_rows * sizeof *lab);
  int64_t *ilab = malloc(max_rows * sizeof *ilab);
  out[0] = '\0';
  for (;;) {
    size_t n = 9;
    gmle_status s = as_int ? gmle_reader_read_int_labels(r, ilab, max_rows, &n)
                           : gmle_reader_read(r, NULL, max_rows, &n, lab);
    if (s != GMLE_OK) {
      snprintf(out, cap, "ERROR %s", gmle_context_error(ctx));
      break;
    }
    if (n == 0)
      break;
    for (size_t i = 0; i < n; i++) {
      char one[32];
      if (as_int)
        snprintf(one, sizeof one, "%lld", (long long)ilab[i]);
      strncat(out, as_int ? one : lab[i], cap - strlen(out) - 1);
      strncat(out, "|", cap - strlen(out) - 1);
    }
  }
  free(lab);
  free(ilab);
}

static void read_labels(gmle_reader *r, size_t max_rows, char *out,
                        size_t cap) {
  read_labels_as(r, max_rows, 0, out, cap);
}

/* A labels file of n integers v[] stored in `size` bytes each as `descr`
 * says (its byte order from a leading '>'). */
static void make_int_npy(const char *name, const char *descr, const char *shape,
                         size_t size, int n, const uint64_t *v) {
  unsigned char data[64];
  for (int k = 0; k < n; k++)
    put_int(data + (size_t)k * size, size, descr[0] == '>', v[k]);
  char dict[128];
  snprintf(dict, sizeof dict,
           "{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr,
           shape);
  make_npy(tpath(name), 1, dict, 64, data, (size_t)n * size);
}

TEST(npy_labels_of_every_integer_width_come_as_decimal_text) {
  struct {
    const char *descr, *shape;
    size_t size;
    int n;
    uint64_t v[5];
    const char *want;
  } cases[] = {
      {"|i1", "(5,)", 1, 5, {0x80, 0xFF, 0, 5, 127}, "-128|-1|0|5|127|"},
      {"<u2", "(3,)", 2, 3, {0, 1, 65535}, "0|1|65535|"},
      {">u2", "(3, 1)", 2, 3, {0, 1, 65535}, "0|1|65535|"},
      {"<i4", "(3,)", 4, 3, {0x80000000u, 7, 0x7FFFFFFF},
       "-2147483648|7|2147483647|"},
      {">i4", "(3, 1)", 4, 3, {0xFFFFFFFFu, 7, 0x7FFFFFFF},
       "-1|7|2147483647|"},
      {"<i8", "(4,)", 8, 4,
       {0x8000000000000000ull, 0xFFFFFFFFFFFFFFFFull, 42,
        0x7FFFFFFFFFFFFFFFull},
       "-9223372036854775808|-1|42|9223372036854775807|"},
      {"<u8", "(2,)", 8, 2, {0, 0xFFFFFFFFFFFFFFFFull},
       "0|18446744073709551615|"},
  };
  gmle_reader_options opt;
  gmle_reader_options_init(&opt);
  opt.labels_only = 1;
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    make_int_npy("lab.npy", cases[c].descr, cases[c].shape, cases[c].size,
                 cases[c].n, cases[c].v);
    for (size_t b = 1; b <= 7; b += 6) {
      gmle_reader *r = NULL;
      CHECK_STATUS(gmle_reader_open(ctx, tpath("lab.npy"), &opt, &r),
                   GMLE_OK);
      if (!r)
        continue;
      uint64_t rows = 0;
      CHECK(gmle_reader_cols(r) == 0);
      CHECK(gmle_reader_rows(r, &rows) == 1 && rows == (uint64_t)cases[c].n);
      char got[256];
      read_labels(r, b, got, sizeof got);
      CHECK_MSG(strcmp(got, cases[c].want) == 0, "%s batch %zu: '%s'",
                cases[c].descr, b, got);
      gmle_reader_free(r);
    }
  }
  /* float labels holding whole numbers are accepted; 2.5 is not. */
  double fl[3] = {1, -3, 2.5};
  make_npy(tpath("fl.npy"), 1,
           "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", 64,
           fl, sizeof fl);
  gmle_reader *r = NULL;
  CHECK_STATUS(gmle_reader_open(ctx, tpath("fl.npy"), &opt, &r), GMLE_OK);
  if (r) {
    const char *lab[3];
    size_t n = 9;
    CHECK_STATUS(gmle_reader_read(r, NULL, 2, &n, lab), GMLE_OK);
    CHECK(n == 2 && strcmp(lab[0], "1") == 0 && strcmp(lab[1], "-3") == 0);
    CHECK_STATUS(gmle_reader_read(r, NULL, 2, &n, lab), GMLE_E_BAD_FORMAT);
    CHECK_ERROR_HAS(ctx, "row 2");
    CHECK_ERROR_HAS(ctx, "not an integer");
    gmle_reader_free(r);
  }
  /* string labels '<U3' (UCS-4) come back as UTF-8 */
  unsigned char u[3 * 12] = {0};
  const uint32_t cps[3][3] = {{'c', 'a', 't'}, {'d', 0xF6, 'g'},
                              {0x65E5, 0x672C, 0}};
  for (int k = 0; k < 3; k++)
    for (int m = 0; m < 3; m++)
      put_int(u + 12 * k + 4 * m, 4, 0, cps[k][m]);
  make_npy(tpath("u.npy"), 1,
           "{'descr': '<U3', 'fortran_order': False, 'shape': (3,), }", 64, u,
           sizeof u);
  CHECK_STATUS(gmle_reader_open(ctx, tpath("u.npy"), &opt, &r), GMLE_OK);
  if (r) {
    char got[128];
    read_labels(r, 2, got, sizeof got);
    CHECK_MSG(strcmp(got, "cat|d\xc3\xb6g|\xe6\x97\xa5\xe6\x9c\xac|") == 0,
              "'%s'", got);
    gmle_reader_free(r);
  }
}

TEST(npy_int_labels_equal_the_text_labels_without_text) {
  /* Every integer width and byte order, bool and whole floats: the int64
   * labels are the values the text path prints; uint64 and strings are
   * not integer labels. */
  struct {
    const char *descr;
    size_t size;
    int n, is_int;
    uint64_t v[5];
  } cases[] = {
      {"|i1", 1, 5, 1, {0x80, 0xFF, 0, 5, 127}},
      {"|u1", 1, 3, 1, {0, 200, 255}},
      {"<i2", 2, 3, 1, {0x8000, 0xFFFF, 12}},
      {">i2", 2, 3, 1, {0x8000, 0xFFFF, 12}},
      {"<u2", 2, 3, 1, {0, 1, 65535}},
      {"<i4", 4, 3, 1, {0x80000000u, 7, 0x7FFFFFFF}},
      {">u4", 4, 2, 1, {0xFFFFFFFFu, 3}},
      {"<u4", 4, 2, 1, {0xFFFFFFFFu, 3}},
      {"<i8",
       8,
       4,
       1,
       {0x8000000000000000ull, 0xFFFFFFFFFFFFFFFFull, 42,
        0x7FFFFFFFFFFFFFFFull}},
      {">i8", 8, 2, 1, {0xFFFFFFFFFFFFFFFEull, 5}},
      {"|b1", 1, 3, 1, {0, 1, 7}},
      {"<u8", 8, 2, 0, {0, 0xFFFFFFFFFFFFFFFFull}},
      {"|S2", 2, 2, 0, {0x3131, 0x3232}},
  };
  gmle_reader_options opt;
  gmle_reader_options_init(&opt);
  opt.labels_only = 1;
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    char shape[16];
    snprintf(shape, sizeof shape, "(%d,)", cases[c].n);
    make_int_npy("il.npy", cases[c].descr, shape, cases[c].size, cases[c].n,
                 cases[c].v);
    gmle_reader *r = NULL;
    CHECK_STATUS(gmle_reader_open(ctx, tpath("il.npy"), &opt, &r), GMLE_OK);
    if (!r)
      continue;
    CHECK_MSG(gmle_reader_int_labels(r) == cases[c].is_int, "%s",
              cases[c].descr);
    char want[256], got[256];
    read_labels(r, 7, want, sizeof want);
    CHECK_STATUS(gmle_reader_rewind(r), GMLE_OK);
    if (!cases[c].is_int) {
      int64_t one;
      size_t n = 9;
      CHECK_STATUS(gmle_reader_read_int_labels(r, &one, 1, &n),
                   GMLE_E_UNSUPPORTED);
      CHECK(n == 0);
      CHECK_ERROR_HAS(ctx, "not all integers");
      gmle_reader_free(r);
      continue;
    }
    for (size_t b = 1; b <= 7; b += 6) {
      CHECK_STATUS(gmle_reader_rewind(r), GMLE_OK);
      read_labels_as(r, b, 1, got, sizeof got);
      CHECK_MSG(strcmp(got, want) == 0, "%s batch %zu: '%s', text '%s'",
                cases[c].descr, b, got, want);
    }
    gmle_reader_free(r);
  }
  /* Whole floats as integers; 2.5 is the error of the text path, and the
   * failing call counts no row. */
  double fl[4] = {1, -3, 2.5, 4};
  make_npy(tpath("fl.npy"), 1,
           "{'descr': '<f8', 'fortran_order': False, 'shape': (4,), }", 64, fl,
           sizeof fl);
  gmle_reader *r = NULL;
  CHECK_STATUS(gmle_reader_open(ctx, tpath("fl.npy"), &opt, &r), GMLE_OK);
  if (r) {
    CHECK(gmle_reader_int_labels(r) == 1);
    int64_t lab[4] = {0};
    size_t n = 9;
    CHECK_STATUS(gmle_reader_read_int_labels(r, lab, 2, &n), GMLE_OK);
    CHECK(n == 2 && lab[0] == 1 && lab[1] == -3);
    CHECK_STATUS(gmle_reader_read_int_labels(r, lab, 2, &n), GMLE_E_BAD_FORMAT);
    CHECK(n == 0 && gmle_reader_offset(r) == 2);
    CHECK_ERROR_HAS(ctx, "row 2");
    CHECK_ERROR_HAS(ctx, "label 2.5 is not an integer");
    gmle_reader_free(r);
  }
  /* A data file has no labels; arguments are checked. */
  double v[2] = {1, 2};
  make_npy(tpath("d.npy"), 1,
           "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", 64, v,
           sizeof v);
  CHECK_STATUS(gmle_reader_open(ctx, tpath("d.npy"), NULL, &r), GMLE_OK);
  if (r) {
    int64_t lab[2];
    size_t n = 9;
    CHECK(gmle_reader_int_labels(r) == 0);
    CHECK_STATUS(gmle_reader_read_int_labels(r, lab, 2, &n),
                 GMLE_E_UNSUPPORTED);
    CHECK_STATUS(gmle_reader_read_int_labels(r, lab, 2, NULL),
                 GMLE_E_INVALID_ARG);
    gmle_reader_free(r);
  }
  CHECK(gmle_reader_int_labels(NULL) == 0);
}

TEST(npy_data_reader_gives_null_labels) {
  double v[2] = {1, 2};
  make_npy(tpath("d.npy"), 1,
           "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", 64, v,
           sizeof v);
  gmle_reader *r = NULL;
  CHECK_STATUS(gmle_reader_open(ctx, tpath("d.npy"), NULL, &r), GMLE_OK);
  if (r) {
    double buf[2];
    const char *lab[2] = {"x", "y"};
    size_t n = 0;
    CHECK_STATUS(gmle_reader_read(r, buf, 2, &n, lab), GMLE_OK);
    CHECK(n == 2 && lab[0] == NULL && lab[1] == NULL && buf[1] == 2);
    CHECK_STATUS(gmle_reader_read(r, buf, 2, &n, lab), GMLE_OK);
    CHECK(n == 0);
    gmle_reader_free(r);
  }
}

static void expect_open_error(const char *name, const gmle_reader_options *o,
                              gmle_status want, const char *sub) {
  gmle_reader *r = (gmle_reader *)(uintptr_t)1;
  CHECK_STATUS(gmle_reader_open(ctx, tpath(name), o, &r), want);
  CHECK(r == NULL);
  CHECK_ERROR_HAS(ctx, sub);
}

TEST(npy_rejects_bad_files_with_numpy_words) {
  double v[6] = {0};
  /* integer data without labels_only */
  make_npy(tpath("i4.npy"), 1,
           "{'descr': '<i4', 'fortran_order': False, 'shape': (3,), }", 64, v,
           12);
  expect_open_error("i4.npy", NULL, GMLE_E_UNSUPPORTED, "unsupported dtype");
  expect_open_error("i4.npy", NULL, GMLE_E_UNSUPPORTED, "'<i4'");
  /* object dtype */
  make_npy(tpath("o.npy"), 1,
           "{'descr': '|O', 'fortran_order': False, 'shape': (3,), }", 64, v,
           24);
  expect_open_error("o.npy", NULL, GMLE_E_UNSUPPORTED, "o.npy");
  /* strings as data */
  make_npy(tpath("s.npy"), 1,
           "{'descr': '<U2', 'fortran_order': False, 'shape': (3,), }", 64, v,
           24);
  expect_open_error("s.npy", NULL, GMLE_E_UNSUPPORTED, "unsupported dtype");
  /* truncated data: 48 bytes claimed, 40 present */
  make_npy(tpath("tr.npy"), 1,
           "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), }", 64,
           v, 40);
  expect_open_error("tr.npy", NULL, GMLE_E_CORRUPT, "48");
  expect_open_error("tr.npy", NULL, GMLE_E_CORRUPT, "40");
  /* 3-D */
  make_npy(tpath("3d.npy"), 1,
           "{'descr': '<f8', 'fortran_order': False, 'shape': (1, 2, 3), }",
           64, v, 48);
  expect_open_error("3d.npy", NULL, GMLE_E_UNSUPPORTED, "(1, 2, 3)");
  /* (N, 0) */
  make_npy(tpath("n0.npy"), 1,
           "{'descr': '<f8', 'fortran_order': False, 'shape': (4, 0), }", 64,
           v, 0);
  expect_open_error("n0.npy", NULL, GMLE_E_UNSUPPORTED, "no feature");
  /* version 4.0 */
  make_npy(tpath("v4.npy"), 2,
           "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }", 64, v,
           8);
  {
    FILE *f = fopen(tpath("v4.npy"), "r+b");
    fseek(f, 6, SEEK_SET);
    fputc(4, f);
    fclose(f);
  }
  expect_open_error("v4.npy", NULL, GMLE_E_UNSUPPORTED_VERSION, "(4, 0)");
  /* bad magic after the first byte */
  write_bytes(tpath("m.npy"), "\x93NUMPX\x01\x00\x00\x00", 10);
  expect_open_error("m.npy", NULL, GMLE_E_BAD_FORMAT, "magic");
  /* labels of the wrong shape */
  gmle_reader_options opt;
  gmle_reader_options_init(&opt);
  opt.labels_only = 1;
  make_npy(tpath("l2.npy"), 1,
           "{'descr': '<i4', 'fortran_order': False, 'shape': (3, 2), }", 64,
           v, 24);
  expect_open_error("l2.npy", &opt, GMLE_E_UNSUPPORTED, "(N,) or (N, 1)");
  /* paths */
  expect_open_error("missing.npy", NULL, GMLE_E_IO, "missing.npy");
  gmle_reader *r = NULL;
  CHECK_STATUS(gmle_reader_open(ctx, "-", NULL, &r), GMLE_E_UNSUPPORTED);
  CHECK_STATUS(gmle_reader_open(ctx, tdir, NULL, &r), GMLE_E_UNSUPPORTED);
  CHECK(r == NULL);
  gmle_reader_free(NULL);
}

TEST(npy_reads_files_written_by_numpy) {
  if (!have_numpy) {
    printf("  (skipped: python3 with numpy not available)\n");
    return;
  }
  char cmd[1024];
  snprintf(cmd, sizeof cmd,
           "python3 -c \"\n"
           "import numpy as np\n"
           "d='%s'\n"
           "N, D = 1001, 5\n"
           "i = np.arange(N)[:, None]; j = np.arange(D)[None, :]\n"
           "x = (i*8 + j) + 0.25*(j %% 3) - 3.5\n"
           "np.save(d+'/np_f8.npy', x)\n"
           "np.save(d+'/np_f4.npy', x.astype(np.float32))\n"
           "np.save(d+'/np_f8_fortran.npy', np.asfortranarray(x))\n"
           "np.save(d+'/np_f4_be.npy', x.astype('>f4'))\n"
           "np.save(d+'/np_f4_be_fortran.npy', np.asfortranarray(x.astype('>f4')))\n"
           "np.save(d+'/np_1d.npy', x[:, 0].copy())\n"
           "np.save(d+'/np_empty.npy', np.zeros((0, 5)))\n"
           "np.save(d+'/np_lab_i1.npy', (np.arange(N) %% 7 - 3).astype(np.int8))\n"
           "np.save(d+'/np_lab_u2.npy', (np.arange(N) * 61).astype(np.uint16))\n"
           "np.save(d+'/np_lab_i8.npy', (np.arange(N) - 500).astype(np.int64).reshape(N, 1))\n"
           "np.save(d+'/np_lab_str.npy', np.array(['cat', 'dog', 'eel'])[np.arange(N) %% 3])\n"
           "\"",
           tdir);
  CHECK(system(cmd) == 0);
  const char *data_files[] = {"np_f8.npy", "np_f4.npy", "np_f8_fortran.npy",
                              "np_f4_be.npy", "np_f4_be_fortran.npy"};
  const size_t N = 1001, D = 5;
  double *got = malloc(N * D * 8);
  for (int f = 0; f < 5; f++) {
    gmle_reader *r = NULL;
    CHECK_STATUS(gmle_reader_open(ctx, tpath(data_files[f]), NULL, &r),
                 GMLE_OK);
    if (!r)
      continue;
    CHECK(gmle_reader_cols(r) == D);
    CHECK(gmle_reader_dtype(r) == (strstr(data_files[f], "f4") ? GMLE_F32
                                                               : GMLE_F64));
    const size_t batches[] = {1, 7, 4096};
    for (int b = 0; b < 3; b++) {
      CHECK_STATUS(gmle_reader_rewind(r), GMLE_OK);
      CHECK(read_all(r, batches[b], got, N) == N);
      int bad = 0;
      for (size_t i = 0; i < N; i++)
        for (size_t j = 0; j < D; j++)
          bad += got[i * D + j] != val(i, j);
      CHECK_MSG(bad == 0, "%s batch %zu: %d wrong", data_files[f],
                batches[b], bad);
    }
    gmle_reader_free(r);
  }
  gmle_reader *r = NULL;
  CHECK_STATUS(gmle_reader_open(ctx, tpath("np_1d.npy"), NULL, &r), GMLE_OK);
  if (r) {
    CHECK(gmle_reader_cols(r) == 1);
    CHECK(read_all(r, 100, got, N) == N);
    int bad = 0;
    for (size_t i = 0; i < N; i++)
      bad += got[i] != val(i, 0);
    CHECK(bad == 0);
    gmle_reader_free(r);
  }
  CHECK_STATUS(gmle_reader_open(ctx, tpath("np_empty.npy"), NULL, &r),
               GMLE_OK);
  if (r) {
    CHECK(gmle_reader_cols(r) == 5 && read_all(r, 10, got, 1) == 0);
    gmle_reader_free(r);
  }
  gmle_reader_options opt;
  gmle_reader_options_init(&opt);
  opt.labels_only = 1;
  const char *lab_files[] = {"np_lab_i1.npy", "np_lab_u2.npy",
                             "np_lab_i8.npy", "np_lab_str.npy"};
  size_t cap = N * 24;
  char *want = malloc(cap), *txt = malloc(cap);
  for (int f = 0; f < 4; f++) {
    want[0] = '\0';
    for (size_t i = 0; i < N; i++) {
      char one[32];
      if (f == 0)
        snprintf(one, sizeof one, "%d|", (int)(i % 7) - 3);
      else if (f == 1)
        snprintf(one, sizeof one, "%u|", (unsigned)((i * 61) & 0xFFFF));
      else if (f == 2)
        snprintf(one, sizeof one, "%d|", (int)i - 500);
      else
        snprintf(one, sizeof one, "%s|",
                 i % 3 == 0 ? "cat" : i % 3 == 1 ? "dog" : "eel");
      strcat(want, one);
    }
    CHECK_STATUS(gmle_reader_open(ctx, tpath(lab_files[f]), &opt, &r),
                 GMLE_OK);
    if (!r)
      continue;
    read_labels(r, 7, txt, cap);
    CHECK_MSG(strcmp(txt, want) == 0, "%s differs", lab_files[f]);
    CHECK(gmle_reader_int_labels(r) == (f < 3));
    if (f < 3) {
      CHECK_STATUS(gmle_reader_rewind(r), GMLE_OK);
      read_labels_as(r, 4096, 1, txt, cap);
      CHECK_MSG(strcmp(txt, want) == 0, "%s differs as int64", lab_files[f]);
    }
    gmle_reader_free(r);
  }
  free(want);
  free(txt);
  free(got);
}

/* A valid file cut at every byte offset, every header byte flipped, and
 * every allocation failing in turn: a status, never a crash. */
TEST(npy_truncation_bit_flips_and_allocation_failures_give_a_status) {
  double v[6] = {1, 2, 3, 4, 5, 6};
  make_npy(tpath("ok.npy"), 1,
           "{'descr': '>f8', 'fortran_order': True, 'shape': (3, 2), }", 64,
           v, sizeof v);
  FILE *f = fopen(tpath("ok.npy"), "rb");
  unsigned char full[256];
  size_t len = f ? fread(full, 1, sizeof full, f) : 0;
  if (f)
    fclose(f);
  CHECK(len > 48 && (len - 48) % 64 == 0);
  for (size_t cut = 0; cut < len; cut++) {
    write_bytes(tpath("cut.npy"), full, cut);
    gmle_reader *r = NULL;
    gmle_status s = gmle_reader_open(ctx, tpath("cut.npy"), NULL, &r);
    CHECK_MSG(s != GMLE_OK && r == NULL, "cut at %zu opened", cut);
  }
  gmle_reader_options lab;
  gmle_reader_options_init(&lab);
  lab.labels_only = 1;
  for (size_t byte = 0; byte + 48 < len; byte++)
    for (int bit = 0; bit < 8; bit++) {
      unsigned char b[256];
      memcpy(b, full, len);
      b[byte] ^= (unsigned char)(1u << bit);
      write_bytes(tpath("flip.npy"), b, len);
      for (int mode = 0; mode < 2; mode++) {
        gmle_reader *r = NULL;
        if (gmle_reader_open(ctx, tpath("flip.npy"), mode ? &lab : NULL,
                             &r) != GMLE_OK)
          continue;
        size_t cols = gmle_reader_cols(r), n = 1;
        double *buf = malloc((4 * cols + 1) * 8);
        const char *l[4];
        while (n && gmle_reader_read(r, buf, 4, &n, l) == GMLE_OK) {
        }
        free(buf);
        gmle_reader_free(r);
      }
    }
  int saw_oom = 0;
  for (long k = 1; k < 20; k++) {
    gmle__test_fail_alloc_after(k);
    gmle_reader *r = NULL;
    gmle_status s = gmle_reader_open(ctx, tpath("ok.npy"), NULL, &r);
    if (s == GMLE_OK) {
      double buf[6];
      size_t n;
      s = gmle_reader_read(r, buf, 3, &n, NULL);
      gmle_reader_free(r);
    }
    gmle__test_fail_alloc_after(0);
    CHECK(s == GMLE_OK || s == GMLE_E_OUT_OF_MEMORY);
    saw_oom |= s == GMLE_E_OUT_OF_MEMORY;
  }
  CHECK(saw_oom);
}

int main(int argc, char **argv) {
  CHECK_INIT(argc, argv);
  snprintf(tdir, sizeof tdir, "/tmp/gmle_io_npy_XXXXXX");
  if (!mkdtemp(tdir)) {
    printf("mkdtemp failed\n");
    return 2;
  }
  if (gmle_context_create(GMLE_BACKEND_CPU, -1, &ctx) != GMLE_OK) {
    printf("context: %s\n", gmle_context_error(ctx));
    return 2;
  }
  have_numpy =
      system("python3 -c 'import numpy' >/dev/null 2>&1") == 0;
  RUN(npy_reads_every_version_dtype_and_order);
  RUN(npy_reads_shapes_empty_1d_scalar_and_legacy_alignment);
  RUN(npy_seek_jumps_to_a_row_in_either_order);
  RUN(npy_converts_float16_and_passes_nonfinite_through);
  RUN(npy_large_fortran_and_float16_cross_internal_chunks);
  RUN(npy_labels_of_every_integer_width_come_as_decimal_text);
  RUN(npy_int_labels_equal_the_text_labels_without_text);
  RUN(npy_data_reader_gives_null_labels);
  RUN(npy_rejects_bad_files_with_numpy_words);
  RUN(npy_reads_files_written_by_numpy);
  RUN(npy_truncation_bit_flips_and_allocation_failures_give_a_status);
  gmle_context_free(ctx);
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tdir);
  if (system(cmd) != 0)
    printf("could not remove %s\n", tdir);
  return CHECK_DONE();
}
