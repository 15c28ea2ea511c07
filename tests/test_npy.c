/* test_npy.c -- the .npy header codec: every header attack and valid edge
 * case of BAD_INPUTS.md 24-25, built as byte buffers; numpy interop when
 * python3 with numpy is available. */
#include "check.h"
#include "testutil.h"

#include "npy.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static gmle_context *ctx;

/* A .npy image: magic, version, header text padded to `align` (0: no
 * padding, the text is used as is), then `data`. */
typedef struct img {
  unsigned char b[32768];
  size_t n;
} img;

static void build(img *m, int major, int minor, const char *text, size_t align,
                  const void *data, size_t data_len) {
  size_t pre = major == 1 ? 10 : 12, tl = strlen(text);
  size_t hl = tl;
  memcpy(m->b, "\x93NUMPY", 6);
  m->b[6] = (unsigned char)major;
  m->b[7] = (unsigned char)minor;
  memcpy(m->b + pre, text, tl);
  if (align) {
    size_t total = (pre + tl + 1 + align - 1) / align * align;
    hl = total - pre;
    memset(m->b + pre + tl, ' ', hl - tl - 1);
    m->b[pre + hl - 1] = '\n';
  }
  if (major == 1)
    gmle__st_le16(m->b + 8, (uint16_t)hl);
  else
    gmle__st_le32(m->b + 8, (uint32_t)hl);
  if (data_len)
    memcpy(m->b + pre + hl, data, data_len);
  m->n = pre + hl + data_len;
}

static gmle_status parse(const img *m, gmle__npy_header *h) {
  return gmle__npy_parse_header(ctx, "x.npy", m->b, m->n, m->n, h);
}

#define HDR(descr, fortran, shape)                                             \
  "{'descr': '" descr "', 'fortran_order': " fortran ", 'shape': " shape ", }"

static const double d6[6] = {1.5, -2.25, 3.0, 4.125, -0.0, 1e300};

/* ------------------------------------------------------------------------ */
/* Attacks (BAD_INPUTS 24)                                                  */
/* ------------------------------------------------------------------------ */

TEST(npy_rejects_bad_magic) {
  img m;
  gmle__npy_header h;
  build(&m, 1, 0, HDR("<f8", "False", "(6,)"), 64, d6, sizeof d6);
  m.b[1] = 'n';
  CHECK_STATUS(parse(&m, &h), GMLE_E_BAD_FORMAT);
  CHECK_ERROR_HAS(ctx, "x.npy");
  CHECK_ERROR_HAS(ctx, "magic string is not correct");
  CHECK_ERROR_HAS(ctx, "byte 0");
  /* A short file that is not .npy at all. */
  CHECK_STATUS(gmle__npy_parse_header(ctx, "t.npy", (const unsigned char *)"ab",
                                      2, 2, &h),
               GMLE_E_BAD_FORMAT);
  CHECK_STATUS(gmle__npy_parse_header(ctx, "t.npy", m.b, 0, 0, &h),
               GMLE_E_CORRUPT);
}

TEST(npy_rejects_version_4_0) {
  img m;
  gmle__npy_header h;
  build(&m, 4, 0, HDR("<f8", "False", "(6,)"), 64, d6, sizeof d6);
  CHECK_STATUS(parse(&m, &h), GMLE_E_UNSUPPORTED_VERSION);
  CHECK_ERROR_HAS(ctx, "not (4, 0)");
  build(&m, 1, 1, HDR("<f8", "False", "(6,)"), 64, d6, sizeof d6);
  CHECK_STATUS(parse(&m, &h), GMLE_E_UNSUPPORTED_VERSION);
  build(&m, 0, 0, HDR("<f8", "False", "(6,)"), 64, d6, sizeof d6);
  CHECK_STATUS(parse(&m, &h), GMLE_E_UNSUPPORTED_VERSION);
}

TEST(npy_rejects_huge_v2_header_len_in_12_byte_file) {
  unsigned char b[12] = {0x93, 'N', 'U', 'M', 'P', 'Y', 2, 0};
  gmle__npy_header h;
  gmle__st_le32(b + 8, 0xFFFFFFF0u);
  long before = gmle__test_alloc_count();
  CHECK_STATUS(gmle__npy_parse_header(ctx, "big.npy", b, 12, 12, &h),
               GMLE_E_BAD_FORMAT);
  CHECK(gmle__test_alloc_count() == before); /* nothing allocated */
  CHECK_ERROR_HAS(ctx, "big.npy");
  CHECK_ERROR_HAS(ctx, "4294967280");
  /* Within the bound but past the end of the file: truncated. */
  gmle__st_le32(b + 8, 500);
  CHECK_STATUS(gmle__npy_parse_header(ctx, "big.npy", b, 12, 12, &h),
               GMLE_E_CORRUPT);
  CHECK_ERROR_HAS(ctx, "truncated");
}

TEST(npy_rejects_header_over_10000_chars) {
  static img m;
  gmle__npy_header h;
  char text[10100];
  snprintf(text, sizeof text, "%s", HDR("<f8", "False", "(6,)"));
  size_t tl = strlen(text);
  memset(text + tl, ' ', 10050 - tl);
  text[10050] = '\0';
  build(&m, 1, 0, text, 64, d6, sizeof d6);
  CHECK_STATUS(parse(&m, &h), GMLE_E_BAD_FORMAT);
  CHECK_ERROR_HAS(ctx, "large");
  build(&m, 2, 0, text, 64, d6, sizeof d6);
  CHECK_STATUS(parse(&m, &h), GMLE_E_BAD_FORMAT);
  /* Exactly at the bound is fine. */
  text[10000 - 1] = '\0';
  build(&m, 2, 0, text, 0, d6, sizeof d6);
  CHECK_STATUS(parse(&m, &h), GMLE_OK);
}

TEST(npy_rejects_missing_and_extra_keys) {
  img m;
  gmle__npy_header h;
  build(&m, 1, 0, "{'descr': '<f8', 'fortran_order': False, }", 64, d6,
        sizeof d6);
  CHECK_STATUS(parse(&m, &h), GMLE_E_BAD_FORMAT);
  CHECK_ERROR_HAS(ctx, "correct keys");
  CHECK_ERROR_HAS(ctx, "'shape'");
  build(&m, 1, 0,
        "{'descr': '<f8', 'fortran_order': False, 'shape': (6,), 'x': 1}", 64,
        d6, sizeof d6);
  CHECK_STATUS(parse(&m, &h), GMLE_E_BAD_FORMAT);
  CHECK_ERROR_HAS(ctx, "'x'");
  build(&m, 1, 0,
        "{'descr': '<f8', 'descr': '<f8', 'fortran_order': False, 'shape': "
        "(6,)}",
        64, d6, sizeof d6);
  CHECK_STATUS(parse(&m, &h), GMLE_E_BAD_FORMAT);
  CHECK_ERROR_HAS(ctx, "twice");
  build(&m, 1, 0, "{}", 64, d6, sizeof d6);
  CHECK_STATUS(parse(&m, &h), GMLE_E_BAD_FORMAT);
}

TEST(npy_rejects_object_and_exotic_dtypes) {
  img m;
  gmle__npy_header h;
  build(&m, 1, 0, HDR("|O", "False", "(6,)"), 64, d6, sizeof d6);
  CHECK_STATUS(parse(&m, &h), GMLE_E_UNSUPPORTED);
  CHECK_ERROR_HAS(ctx, "object");
  CHECK_ERROR_HAS(ctx, "pickle");
  const char *unsupported[] = {
      HDR("<c16", "False", "(3,)"),
      HDR("<M8", "False", "(6,)"),
      HDR("<m8", "False", "(6,)"),
      HDR("|V8", "False", "(6,)"),
      HDR("<f16", "False", "(3,)"),
      "{'descr': [('a', '<f8')], 'fortran_order': False, 'shape': (6,), }",
      "{'descr': ('<f8', (2,)), 'fortran_order': False, 'shape': (3,), }"};
  for (size_t i = 0; i < sizeof unsupported / sizeof *unsupported; i++) {
    build(&m, 1, 0, unsupported[i], 64, d6, sizeof d6);
    CHECK_MSG(parse(&m, &h) == GMLE_E_UNSUPPORTED, "%s: %s", unsupported[i],
              gmle_context_error(ctx));
  }
}

TEST(npy_rejects_malformed_descr) {
  img m;
  gmle__npy_header h;
  const char *bad[] = {"<ixy", "<i3", "<f3", "<f",  "",    "<",       "f8x",
                       "<b2",  "<U",  "<U0", "<S0", "<q8", "float64", "<i8 "};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    char text[200];
    snprintf(text, sizeof text,
             "{'descr': '%s', 'fortran_order': False, 'shape': (6,), }",
             bad[i]);
    build(&m, 1, 0, text, 64, d6, sizeof d6);
    CHECK_MSG(parse(&m, &h) == GMLE_E_BAD_FORMAT, "'%s': %s", bad[i],
              gmle_context_error(ctx));
  }
  build(&m, 1, 0, HDR("<ixy", "False", "(6,)"), 64, d6, sizeof d6);
  CHECK_STATUS(parse(&m, &h), GMLE_E_BAD_FORMAT);
  CHECK_ERROR_HAS(ctx, "not a valid dtype descriptor: '<ixy'");
  CHECK_ERROR_HAS(ctx, "byte 20"); /* offset of the descr value */
}

TEST(npy_rejects_bad_shapes) {
  img m;
  gmle__npy_header h;
  const char *bad[] = {
      "(-1, 3)", "(2.5,)", "(3)",     "[3]",
      "('a',)",  "(3,,)",  "(,)",     "(3, 4",
      "3",       "(1e3,)", "(0x10,)", "(03,)",
      "(True,)", "None",   "(3 4)",   "(99999999999999999999999,)"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    char text[200];
    snprintf(text, sizeof text,
             "{'descr': '<f8', 'fortran_order': False, 'shape': %s, }", bad[i]);
    build(&m, 1, 0, text, 64, d6, sizeof d6);
    CHECK_MSG(parse(&m, &h) == GMLE_E_BAD_FORMAT, "%s: %s", bad[i],
              gmle_context_error(ctx));
  }
  build(&m, 1, 0, HDR("<f8", "False", "(-1, 3)"), 64, d6, sizeof d6);
  CHECK_STATUS(parse(&m, &h), GMLE_E_BAD_FORMAT);
  CHECK_ERROR_HAS(ctx, "negative");
  build(&m, 1, 0, HDR("<f8", "False", "(1, 1, 1, 1, 1, 1, 1, 1, 6)"), 64, d6,
        sizeof d6);
  CHECK_STATUS(parse(&m, &h), GMLE_E_UNSUPPORTED);
  const char *bad_bool[] = {"1", "true", "'False'", "Falsey", "None"};
  for (size_t i = 0; i < sizeof bad_bool / sizeof *bad_bool; i++) {
    char text[200];
    snprintf(text, sizeof text,
             "{'descr': '<f8', 'fortran_order': %s, 'shape': (6,), }",
             bad_bool[i]);
    build(&m, 1, 0, text, 64, d6, sizeof d6);
    CHECK_MSG(parse(&m, &h) == GMLE_E_BAD_FORMAT, "%s", bad_bool[i]);
  }
}

TEST(npy_rejects_shape_overflowing_size_t) {
  img m;
  gmle__npy_header h;
  long before = gmle__test_alloc_count();
  /* 2^62 * 8 elements: the product overflows. */
  build(&m, 1, 0, HDR("<f8", "False", "(4611686018427387904, 8)"), 64, d6,
        sizeof d6);
  CHECK_STATUS(parse(&m, &h), GMLE_E_BAD_FORMAT);
  CHECK_ERROR_HAS(ctx, "overflow");
  /* 2^61 elements fit, 2^61 * 8 bytes do not. */
  build(&m, 1, 0, HDR("<f8", "False", "(2305843009213693952,)"), 64, d6,
        sizeof d6);
  CHECK_STATUS(parse(&m, &h), GMLE_E_BAD_FORMAT);
  CHECK_ERROR_HAS(ctx, "overflow");
  /* Large but representable: truncated, not allocated. */
  build(&m, 1, 0, HDR("<f8", "False", "(1000000000, 1000)"), 64, d6, sizeof d6);
  CHECK_STATUS(parse(&m, &h), GMLE_E_CORRUPT);
  CHECK(gmle__test_alloc_count() == before);
  /* A zero anywhere makes the product 0 whatever the other dimensions. */
  build(&m, 1, 0, HDR("<f8", "False", "(0, 4611686018427387904, 8)"), 64, NULL,
        0);
  CHECK_STATUS(parse(&m, &h), GMLE_OK);
  CHECK(h.n_elements == 0 && h.data_bytes == 0);
}

TEST(npy_rejects_shape_larger_than_remaining_bytes) {
  img m;
  gmle__npy_header h;
  build(&m, 1, 0, HDR("<f8", "False", "(7,)"), 64, d6, sizeof d6);
  CHECK_STATUS(parse(&m, &h), GMLE_E_CORRUPT);
  CHECK_ERROR_HAS(ctx, "x.npy");
  CHECK_ERROR_HAS(ctx, "56 bytes");
  CHECK_ERROR_HAS(ctx, "byte 128");
  /* Extra bytes after the data are allowed (numpy ignores them). */
  build(&m, 1, 0, HDR("<f8", "False", "(5,)"), 64, d6, sizeof d6);
  CHECK_STATUS(parse(&m, &h), GMLE_OK);
}

TEST(npy_rejects_truncation_at_every_offset) {
  img m;
  gmle__npy_header h;
  build(&m, 1, 0, HDR("<f8", "False", "(6,)"), 64, d6, sizeof d6);
  for (size_t n = 0; n < m.n; n++) {
    gmle_status s = gmle__npy_parse_header(ctx, "x.npy", m.b, n, n, &h);
    CHECK_MSG(s == GMLE_E_CORRUPT || s == GMLE_E_BAD_FORMAT,
              "truncated to %zu: %s", n, gmle_status_name(s));
  }
  CHECK_STATUS(parse(&m, &h), GMLE_OK);
}

TEST(npy_rejects_syntax_errors) {
  img m;
  gmle__npy_header h;
  const char *bad[] = {
      "",
      "{",
      "[]",
      "{'descr': '<f8' 'fortran_order': False, 'shape': (6,)}",
      "{'descr': '<f8', 'fortran_order': False, 'shape': (6,)} x",
      "{'descr': '<f8', 'fortran_order': False, 'shape': (6,)}}",
      "{'descr': '<f8\", 'fortran_order': False, 'shape': (6,)}",
      "{descr: '<f8', 'fortran_order': False, 'shape': (6,)}",
      "{'descr': '<f8', 'fortran_order': False, 'shape': (6,),,}",
      "{'descr': '<f\\x38', 'fortran_order': False, 'shape': (6,)}",
      "{'descr': '<f8', 'fortran_order': False, 'shape': (6,)\x01}",
      "{'descr': '<f8', 'fortran_order': False, 'shape': (6,), }\x00",
      "{'d\xc3\xa9scr': '<f8', 'fortran_order': False, 'shape': (6,)}",
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    build(&m, 1, 0, bad[i], 0, d6, sizeof d6);
    if (i == 11) { /* an embedded NUL: strlen stopped at it; add it back */
      build(&m, 1, 0, bad[i], 0, NULL, 0);
      m.b[m.n] = 0;
      m.n++;
      gmle__st_le16(m.b + 8, (uint16_t)(m.n - 10));
      memcpy(m.b + m.n, d6, sizeof d6);
      m.n += sizeof d6;
    }
    CHECK_MSG(parse(&m, &h) == GMLE_E_BAD_FORMAT, "case %zu: %s", i,
              gmle_context_error(ctx));
  }
}

/* ------------------------------------------------------------------------ */
/* Valid edge cases (BAD_INPUTS 25)                                         */
/* ------------------------------------------------------------------------ */

TEST(npy_accepts_scalar_shape) {
  img m;
  gmle__npy_header h;
  build(&m, 1, 0, HDR("<f8", "False", "()"), 64, d6, 8);
  CHECK_STATUS(parse(&m, &h), GMLE_OK);
  CHECK(h.ndim == 0 && h.n_elements == 1 && h.data_bytes == 8);
  CHECK(h.header_len == 128);
  double v = 0;
  gmle__npy_array_to_f64(&h, m.b + h.header_len, &v);
  CHECK(v == 1.5);
}

TEST(npy_accepts_zero_rows) {
  img m;
  gmle__npy_header h;
  build(&m, 1, 0, HDR("<f4", "False", "(0, 5)"), 64, NULL, 0);
  CHECK_STATUS(parse(&m, &h), GMLE_OK);
  CHECK(h.ndim == 2 && h.shape[0] == 0 && h.shape[1] == 5);
  CHECK(h.n_elements == 0 && h.data_bytes == 0);
}

TEST(npy_accepts_fortran_order) {
  img m;
  gmle__npy_header h;
  /* 2 x 3 matrix [[1,2,3],[4,5,6]] stored column-major: 1 4 2 5 3 6. */
  const double f[6] = {1, 4, 2, 5, 3, 6};
  build(&m, 1, 0, HDR("<f8", "True", "(2, 3)"), 64, f, sizeof f);
  CHECK_STATUS(parse(&m, &h), GMLE_OK);
  CHECK(h.fortran_order == 1);
  double c[6];
  gmle__npy_array_to_f64(&h, m.b + h.header_len, c);
  for (int i = 0; i < 6; i++)
    CHECK(c[i] == i + 1);
  /* 3-d: shape (2, 2, 2); C index (i,j,k) at Fortran i + 2j + 4k. */
  double f3[8], c3[8];
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 2; j++)
      for (int k = 0; k < 2; k++)
        f3[i + 2 * j + 4 * k] = 100 * i + 10 * j + k;
  build(&m, 1, 0, HDR("<f8", "True", "(2, 2, 2)"), 64, f3, sizeof f3);
  CHECK_STATUS(parse(&m, &h), GMLE_OK);
  gmle__npy_array_to_f64(&h, m.b + h.header_len, c3);
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 2; j++)
      for (int k = 0; k < 2; k++)
        CHECK(c3[4 * i + 2 * j + k] == 100 * i + 10 * j + k);
  int64_t l3[8];
  CHECK(gmle__npy_array_to_i64(&h, m.b + h.header_len, l3) == 8);
  CHECK(l3[7] == 111);
}

TEST(npy_accepts_big_endian_f4) {
  img m;
  gmle__npy_header h;
  const float v[3] = {1.5f, -3.25f, 1e-40f}; /* includes a subnormal */
  unsigned char be[12];
  for (int i = 0; i < 3; i++) {
    uint32_t u;
    memcpy(&u, &v[i], 4);
    for (int k = 0; k < 4; k++)
      be[4 * i + k] = (unsigned char)(u >> (24 - 8 * k));
  }
  build(&m, 1, 0, HDR(">f4", "False", "(3,)"), 64, be, sizeof be);
  CHECK_STATUS(parse(&m, &h), GMLE_OK);
  CHECK(h.kind == 'f' && h.itemsize == 4 && h.big_endian == 1);
  double d[3];
  float f[3];
  gmle__npy_to_f64(&h, m.b + h.header_len, 3, d);
  CHECK(gmle__npy_to_f32(&h, m.b + h.header_len, 3, f) == 0);
  for (int i = 0; i < 3; i++) {
    CHECK(d[i] == (double)v[i]);
    CHECK(memcmp(&f[i], &v[i], 4) == 0);
  }
  /* Big-endian float64 and int16. */
  unsigned char be8[8] = {0x3f, 0xf8, 0, 0, 0, 0, 0, 0}; /* 1.5 */
  build(&m, 1, 0, HDR(">f8", "False", "(1,)"), 64, be8, 8);
  CHECK_STATUS(parse(&m, &h), GMLE_OK);
  gmle__npy_to_f64(&h, m.b + h.header_len, 1, d);
  CHECK(d[0] == 1.5);
  unsigned char be2[4] = {0xff, 0xfe, 0x01, 0x00}; /* -2, 256 */
  build(&m, 1, 0, HDR(">i2", "False", "(2,)"), 64, be2, 4);
  CHECK_STATUS(parse(&m, &h), GMLE_OK);
  int64_t l[2];
  CHECK(gmle__npy_to_i64(&h, m.b + h.header_len, 2, l) == 2);
  CHECK(l[0] == -2 && l[1] == 256);
}

TEST(npy_converts_f2_and_i4) {
  img m;
  gmle__npy_header h;
  /* half: 1.0 = 0x3c00, -2.5 = 0xc100, 65504 = 0x7bff, 2^-24 = 0x0001,
   * inf = 0x7c00, nan = 0x7e00 */
  const uint16_t hv[6] = {0x3c00, 0xc100, 0x7bff, 0x0001, 0x7c00, 0x7e00};
  unsigned char le[12];
  for (int i = 0; i < 6; i++)
    gmle__st_le16(le + 2 * i, hv[i]);
  build(&m, 1, 0, HDR("<f2", "False", "(6,)"), 64, le, sizeof le);
  CHECK_STATUS(parse(&m, &h), GMLE_OK);
  CHECK(h.kind == 'f' && h.itemsize == 2 && gmle__npy_is_numeric(&h));
  double d[6];
  gmle__npy_to_f64(&h, m.b + h.header_len, 6, d);
  CHECK(d[0] == 1.0 && d[1] == -2.5 && d[2] == 65504.0);
  CHECK(d[3] == ldexp(1.0, -24) && isinf(d[4]) && isnan(d[5]));
  int64_t l[6];
  CHECK(gmle__npy_to_i64(&h, m.b + h.header_len, 6, l) == 1); /* -2.5 */
  const int32_t iv[3] = {-7, 0, 2147483647};
  unsigned char li[12];
  for (int i = 0; i < 3; i++)
    gmle__st_le32(li + 4 * i, (uint32_t)iv[i]);
  build(&m, 1, 0, HDR("<i4", "False", "(3,)"), 64, li, sizeof li);
  CHECK_STATUS(parse(&m, &h), GMLE_OK);
  CHECK(h.kind == 'i' && h.itemsize == 4);
  gmle__npy_to_f64(&h, m.b + h.header_len, 3, d);
  CHECK(d[0] == -7 && d[1] == 0 && d[2] == 2147483647.0);
  CHECK(gmle__npy_to_i64(&h, m.b + h.header_len, 3, l) == 3);
  CHECK(l[0] == -7 && l[2] == 2147483647);
  float f[3];
  CHECK(gmle__npy_to_f32(&h, m.b + h.header_len, 3, f) == -1);
  /* uint64 above INT64_MAX is not an int64. */
  unsigned char u8[8];
  gmle__st_le64(u8, UINT64_MAX);
  build(&m, 1, 0, HDR("<u8", "False", "(1,)"), 64, u8, 8);
  CHECK_STATUS(parse(&m, &h), GMLE_OK);
  CHECK(gmle__npy_to_i64(&h, m.b + h.header_len, 1, l) == 0);
  /* Bools. */
  const unsigned char bv[3] = {0, 1, 1};
  build(&m, 1, 0, HDR("|b1", "False", "(3,)"), 64, bv, 3);
  CHECK_STATUS(parse(&m, &h), GMLE_OK);
  CHECK(h.kind == 'b' && h.itemsize == 1);
}

TEST(npy_accepts_strings) {
  img m;
  gmle__npy_header h;
  unsigned char u[2 * 12] = {0};
  build(&m, 1, 0, HDR("<U3", "False", "(2,)"), 64, u, sizeof u);
  CHECK_STATUS(parse(&m, &h), GMLE_OK);
  CHECK(h.kind == 'U' && h.itemsize == 12 && h.data_bytes == 24);
  CHECK(!gmle__npy_is_numeric(&h));
  build(&m, 1, 0, HDR("|S4", "False", "(2,)"), 64, u, 8);
  CHECK_STATUS(parse(&m, &h), GMLE_OK);
  CHECK(h.kind == 'S' && h.itemsize == 4 && h.big_endian == 0);
}

TEST(npy_accepts_legacy_16_byte_aligned_header) {
  img m;
  gmle__npy_header h;
  build(&m, 1, 0, "{'descr': '<f8', 'fortran_order': False, 'shape': (6,)}", 16,
        d6, sizeof d6);
  CHECK(m.n - sizeof d6 == 64 || (m.n - sizeof d6) % 16 == 0);
  CHECK_STATUS(parse(&m, &h), GMLE_OK);
  CHECK(h.header_len % 16 == 0);
  double d[6];
  gmle__npy_to_f64(&h, m.b + h.header_len, 6, d);
  CHECK(tu_bits_equal(d, d6, 6));
  /* Python 2 era spellings: long ints, double quotes, no trailing comma. */
  build(&m, 1, 0,
        "{\"descr\": \"<f8\", \"fortran_order\": False, \"shape\": (2L, 3L)}",
        16, d6, sizeof d6);
  CHECK_STATUS(parse(&m, &h), GMLE_OK);
  CHECK(h.ndim == 2 && h.shape[0] == 2 && h.shape[1] == 3);
  /* Keys in any order, no padding at all. */
  build(&m, 1, 0, "{'shape':(6,),'fortran_order':False,'descr':'<f8'}", 0, d6,
        sizeof d6);
  CHECK_STATUS(parse(&m, &h), GMLE_OK);
  CHECK(h.n_elements == 6);
}

TEST(npy_accepts_v2_and_v3_utf8_headers) {
  img m;
  gmle__npy_header h;
  build(&m, 2, 0, HDR("<f8", "False", "(6,)"), 64, d6, sizeof d6);
  CHECK_STATUS(parse(&m, &h), GMLE_OK);
  CHECK(h.major == 2 && h.header_len == 128 && h.n_elements == 6);
  /* v3 headers are UTF-8; every header of a plain dtype is ASCII. */
  build(&m, 3, 0, HDR("<f8", "False", "(3, 2)"), 64, d6, sizeof d6);
  CHECK_STATUS(parse(&m, &h), GMLE_OK);
  CHECK(h.major == 3 && h.ndim == 2);
  /* UTF-8 outside a plain dtype's vocabulary (here in a key) is a clean
   * format error, never a misread. */
  build(&m, 3, 0,
        "{'descr': '<f8', 'fortran_order': False, 'shape': (6,), "
        "'\xc3\xa9': 1}",
        64, d6, sizeof d6);
  CHECK_STATUS(parse(&m, &h), GMLE_E_BAD_FORMAT);
}

TEST(npy_format_header_round_trips) {
  char buf[512];
  size_t shape[3] = {3, 4, 5};
  for (size_t nd = 0; nd <= 3; nd++) {
    for (int fo = 0; fo < 2; fo++) {
      size_t n = gmle__npy_format_header(buf, sizeof buf, "<f8", fo, nd, shape);
      CHECK(n > 0 && n % 64 == 0 && buf[n - 1] == '\n');
      size_t elems = 1;
      for (size_t k = 0; k < nd; k++)
        elems *= shape[k];
      static unsigned char file[512 + 60 * 8];
      memcpy(file, buf, n);
      memset(file + n, 0, elems * 8);
      gmle__npy_header h;
      CHECK_STATUS(gmle__npy_parse_header(ctx, "f.npy", file, n + elems * 8,
                                          n + elems * 8, &h),
                   GMLE_OK);
      CHECK(h.ndim == nd && h.fortran_order == fo && h.header_len == n);
      CHECK(h.n_elements == elems && h.kind == 'f' && h.itemsize == 8);
    }
  }
  size_t one = 7;
  size_t n = gmle__npy_format_header(buf, sizeof buf, "<U12", 0, 1, &one);
  CHECK(n == 128);
  CHECK(memcmp(buf + 10,
               "{'descr': '<U12', 'fortran_order': False, 'shape': (7,), }",
               58) == 0);
  CHECK(gmle__npy_format_header(buf, 32, "<f8", 0, 1, &one) == 0);
  CHECK(gmle__npy_format_header(buf, sizeof buf, "<f'8", 0, 1, &one) == 0);
}

/* ------------------------------------------------------------------------ */
/* numpy interop                                                            */
/* ------------------------------------------------------------------------ */

static int have_numpy(void) {
  return system("python3 -c 'import numpy' >/dev/null 2>&1") == 0;
}

TEST(npy_reads_what_numpy_writes) {
  if (!have_numpy()) {
    printf("  skipped: python3 with numpy not available\n");
    return;
  }
  char dir[512], script[1024], cmd[2048];
  CHECK(tu_tmpdir_create(dir, sizeof dir) == 0);
  /* Value at C-order index k is k * 0.5 - 3 (exact in every dtype used). */
  static const char *cases[][3] = {
      /* file, dtype, shape */
      {"a", "<f8", "(3, 4)"}, {"b", ">f4", "(2, 3)"},    {"c", "<f2", "(5,)"},
      {"d", "<i4", "(2, 2)"}, {"e", ">i8", "(3,)"},      {"f", "<f8", "()"},
      {"g", "<f8", "(0, 3)"}, {"h", "<f4", "(2, 3, 4)"}, {"i", "<u2", "(4,)"},
      {"j", "|i1", "(2, 3)"},
  };
  size_t n_cases = sizeof cases / sizeof *cases;
  CHECK(tu_path_join(script, sizeof script, dir, "w.py") == 0);
  FILE *f = fopen(script, "w");
  CHECK(f != NULL);
  if (!f)
    return;
  fprintf(f, "import numpy as np, sys\nd = sys.argv[1]\n");
  fprintf(f, "def mk(dt, shape, neg=True):\n"
             "    n = int(np.prod(shape)) if shape else 1\n"
             "    v = np.arange(n) * 0.5 - (3 if neg else 0)\n"
             "    if np.dtype(dt).kind in 'iu': v = np.arange(n) - (3 if neg "
             "else 0)\n"
             "    return v.astype(dt).reshape(shape)\n");
  for (size_t i = 0; i < n_cases; i++) {
    int neg = cases[i][1][1] != 'u';
    fprintf(f, "a = mk('%s', %s, %s)\n", cases[i][1], cases[i][2],
            neg ? "True" : "False");
    fprintf(f, "np.save(d + '/%s.npy', a)\n", cases[i][0]);
    fprintf(f, "np.save(d + '/%sF.npy', np.asfortranarray(a))\n", cases[i][0]);
    fprintf(f,
            "np.lib.format.write_array(open(d + '/%s2.npy', 'wb'), a, "
            "version=(2, 0))\n",
            cases[i][0]);
    fprintf(f,
            "np.lib.format.write_array(open(d + '/%s3.npy', 'wb'), a, "
            "version=(3, 0))\n",
            cases[i][0]);
  }
  fclose(f);
  snprintf(cmd, sizeof cmd, "python3 '%s' '%s'", script, dir);
  CHECK(system(cmd) == 0);
  const char *suffix[] = {"", "F", "2", "3"};
  for (size_t i = 0; i < n_cases; i++) {
    for (size_t s = 0; s < 4; s++) {
      char name[64], path[1024];
      snprintf(name, sizeof name, "%s%s.npy", cases[i][0], suffix[s]);
      CHECK(tu_path_join(path, sizeof path, dir, name) == 0);
      size_t n = 0;
      unsigned char *b = tu_slurp(path, &n);
      CHECK_MSG(b != NULL, "%s", path);
      if (!b)
        continue;
      gmle__npy_header h;
      gmle_status st = gmle__npy_parse_header(ctx, name, b, n, n, &h);
      CHECK_MSG(st == GMLE_OK, "%s: %s", name, gmle_context_error(ctx));
      if (st == GMLE_OK) {
        CHECK_MSG(h.header_len + h.data_bytes == n, "%s", name);
        double *v = malloc((h.n_elements + 1) * sizeof *v);
        gmle__npy_array_to_f64(&h, b + h.header_len, v);
        int neg = cases[i][1][1] != 'u';
        int is_int = h.kind == 'i' || h.kind == 'u';
        for (size_t k = 0; k < h.n_elements; k++) {
          double want = is_int ? (double)k - (neg ? 3 : 0)
                               : (double)k * 0.5 - (neg ? 3 : 0);
          CHECK_MSG(v[k] == want, "%s[%zu] = %g, want %g", name, k, v[k], want);
        }
        free(v);
      }
      free(b);
    }
  }
  tu_tmpdir_remove(dir);
}

TEST(numpy_reads_what_format_header_writes) {
  if (!have_numpy()) {
    printf("  skipped: python3 with numpy not available\n");
    return;
  }
  char dir[512], path[1024], cmd[2300];
  CHECK(tu_tmpdir_create(dir, sizeof dir) == 0);
  CHECK(tu_path_join(path, sizeof path, dir, "m.npy") == 0);
  size_t shape[2] = {2, 3};
  char hdr[256];
  size_t n = gmle__npy_format_header(hdr, sizeof hdr, "<f8", 0, 2, shape);
  FILE *f = fopen(path, "wb");
  CHECK(f && n);
  if (!f)
    return;
  fwrite(hdr, 1, n, f);
  fwrite(d6, 8, 6, f);
  fclose(f);
  snprintf(cmd, sizeof cmd,
           "python3 -c \"import numpy as np, sys; a = np.load('%s'); "
           "sys.exit(0 if a.shape == (2, 3) and a.dtype == np.float64 and "
           "(a.ravel().tobytes() == np.array([1.5, -2.25, 3.0, 4.125, -0.0, "
           "1e300]).tobytes()) else 1)\"",
           path);
  CHECK(system(cmd) == 0);
  tu_tmpdir_remove(dir);
}

int main(int argc, char **argv) {
  CHECK_INIT(argc, argv);
  if (gmle_context_create(GMLE_BACKEND_AUTO, -1, &ctx) != GMLE_OK) {
    printf("cannot create a context: %s\n", gmle_context_error(ctx));
    return 1;
  }
  RUN(npy_rejects_bad_magic);
  RUN(npy_rejects_version_4_0);
  RUN(npy_rejects_huge_v2_header_len_in_12_byte_file);
  RUN(npy_rejects_header_over_10000_chars);
  RUN(npy_rejects_missing_and_extra_keys);
  RUN(npy_rejects_object_and_exotic_dtypes);
  RUN(npy_rejects_malformed_descr);
  RUN(npy_rejects_bad_shapes);
  RUN(npy_rejects_shape_overflowing_size_t);
  RUN(npy_rejects_shape_larger_than_remaining_bytes);
  RUN(npy_rejects_truncation_at_every_offset);
  RUN(npy_rejects_syntax_errors);
  RUN(npy_accepts_scalar_shape);
  RUN(npy_accepts_zero_rows);
  RUN(npy_accepts_fortran_order);
  RUN(npy_accepts_big_endian_f4);
  RUN(npy_converts_f2_and_i4);
  RUN(npy_accepts_strings);
  RUN(npy_accepts_legacy_16_byte_aligned_header);
  RUN(npy_accepts_v2_and_v3_utf8_headers);
  RUN(npy_format_header_round_trips);
  RUN(npy_reads_what_numpy_writes);
  RUN(numpy_reads_what_format_header_writes);
  gmle_context_free(ctx);
  return CHECK_DONE();
}
