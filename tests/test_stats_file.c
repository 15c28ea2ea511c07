/* test_stats_file.c -- gmle_stats_save / gmle_stats_load: bit-exact round
 * trips (with and without class names), truncation and bit flips rejected,
 * versions from the future, version 1 files, names through merges. */
#define _POSIX_C_SOURCE 200809L
#include "check.h"
#include "testutil.h"

#include "gmle_io.h"

#include "npy.h"
#include "zip.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static gmle_context *ctx;
static char dir[512];

static const char *tmp(const char *name) { return tu_tmp_path(dir, name); }

/* Statistics with awkward values in every field (negative zero,
 * subnormals, huge and tiny magnitudes; the last class empty), written
 * through the internals so that the file format is tested on its own. */
static gmle_stats *make_stats(gmle_stats_mode mode, size_t C, size_t D,
                              uint64_t seed) {
  gmle_stats *st = NULL;
  if (gmle_stats_create_mode(ctx, D, C, mode, &st) != GMLE_OK) {
    printf("  stats_create: %s\n", gmle_context_error(ctx));
    return NULL;
  }
  tu_rng r;
  tu_seed(&r, seed);
  const double odd[] = {-0.0, 4.9e-324, 1e300, -1e-300, 0.1, 3.0};
  for (size_t c = 0; c + 1 < C || (C == 1 && c == 0); c++) {
    st->weight[c] = tu_uniform(&r) * 1000;
    st->rows[c] = tu_next(&r);
    st->has_shift[c] = 1;
    for (size_t j = 0; j < D; j++) {
      st->shift[c * D + j] = tu_normal(&r) * 1e4;
      st->sum[c * D + j] = (j < 6) ? odd[j] : tu_normal(&r);
    }
    for (size_t i = 0; i < D; i++)
      for (size_t j = 0; j <= i; j++) {
        double v = i == j ? tu_uniform(&r) * 50 : tu_normal(&r);
        if (mode == GMLE_STATS_FULL)
          st->gram[c * D * D + i * D + j] = v;
        else if (i == j)
          st->gram[c * D + i] = v;
      }
  }
  st->n_batches = tu_next(&r);
  st->saw_f32 = (int)(seed & 1);
  return st;
}

/* Class names of arbitrary bytes (not UTF-8, empty, long). */
static void name_stats(gmle_stats *st) {
  const char *base[] = {"cat", "", "raw\xff\xfe\x01 bytes", "caf\xc3\xa9",
                        "a much longer class name than the others, with "
                        "spaces, commas, and \"quotes\"\n"};
  const size_t C = gmle_stats_n_classes(st);
  char **names = malloc(C * sizeof *names);
  for (size_t c = 0; c < C; c++) {
    names[c] = malloc(128);
    snprintf(names[c], 128, "%s%zu", base[c % 5], c / 5);
  }
  if (gmle_stats_set_class_names(st, (const char *const *)names) != GMLE_OK)
    printf("  set_class_names: %s\n", gmle_context_error(ctx));
  for (size_t c = 0; c < C; c++)
    free(names[c]);
  free(names);
}

static int names_equal(const gmle_stats *a, const gmle_stats *b) {
  if (!a->names != !b->names)
    return 0;
  for (size_t c = 0; a->names && c < a->n_classes; c++)
    if (strcmp(a->names[c], b->names[c]) != 0)
      return 0;
  return 1;
}

static int stats_identical(const gmle_stats *a, const gmle_stats *b) {
  return a && b && tu_stats_raw_equal(a, b) && a->n_batches == b->n_batches &&
         a->saw_f32 == b->saw_f32 && names_equal(a, b);
}

TEST(stats_file_round_trips_bit_exact) {
  const gmle_stats_mode modes[2] = {GMLE_STATS_FULL, GMLE_STATS_DIAG};
  const size_t shapes[][2] = {{1, 1}, {3, 4}, {9, 7}, {2, 17}};
  for (int mi = 0; mi < 2; mi++) {
    for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++) {
      for (int named = 0; named < 2; named++) {
        gmle_stats *st = make_stats(modes[mi], shapes[si][0], shapes[si][1],
                                    10 + si + (uint64_t)named);
        CHECK(st != NULL);
        if (!st)
          continue;
        if (named)
          name_stats(st);
        CHECK_STATUS(gmle_stats_save(st, tmp("s.gst")), GMLE_OK);
        gmle_stats *back = NULL;
        CHECK_STATUS(gmle_stats_load(ctx, tmp("s.gst"), &back), GMLE_OK);
        CHECK_MSG(stats_identical(st, back), "mode %d shape %zu x %zu names %d",
                  mi, shapes[si][0], shapes[si][1], named);
        CHECK(back && back->ctx == ctx);
        CHECK(back && (back->names != NULL) == named);
        /* Saving what was loaded gives the same bytes. */
        if (back) {
          size_t n1 = 0, n2 = 0;
          CHECK_STATUS(gmle_stats_save(back, tmp("s2.gst")), GMLE_OK);
          unsigned char *b1 = tu_slurp(tmp("s.gst"), &n1);
          unsigned char *b2 = tu_slurp(tmp("s2.gst"), &n2);
          CHECK(b1 && b2 && n1 == n2 && memcmp(b1, b2, n1) == 0);
          free(b1);
          free(b2);
        }
        gmle_stats_free(back);
        gmle_stats_free(st);
      }
    }
  }
  remove(tmp("s2.gst"));
  /* Empty statistics round-trip too. */
  gmle_stats *e = NULL;
  CHECK_STATUS(gmle_stats_create(ctx, 3, 2, &e), GMLE_OK);
  CHECK_STATUS(gmle_stats_save(e, tmp("e.gst")), GMLE_OK);
  gmle_stats *back = NULL;
  CHECK_STATUS(gmle_stats_load(ctx, tmp("e.gst"), &back), GMLE_OK);
  CHECK(stats_identical(e, back));
  gmle_stats_free(back);
  gmle_stats_free(e);
  remove(tmp("s.gst"));
  remove(tmp("e.gst"));
}

/* In memory: the bytes are the file's, and they load back bit-exactly;
 * EM statistics too; a short buffer or truncated bytes are refused. */
TEST(stats_mem_holds_the_file_bytes) {
  gmle_stats *st = make_stats(GMLE_STATS_FULL, 3, 4, 5);
  if (!st)
    return;
  name_stats(st);
  size_t size = 0;
  CHECK_STATUS(gmle_stats_save_mem(st, NULL, 0, &size), GMLE_OK);
  unsigned char *b = malloc(size + 1);
  CHECK_STATUS(gmle_stats_save_mem(st, b, size - 1, &size), GMLE_E_INVALID_ARG);
  CHECK_STATUS(gmle_stats_save_mem(st, b, size + 1, &size), GMLE_OK);
  CHECK_STATUS(gmle_stats_save(st, tmp("m.gst")), GMLE_OK);
  size_t nf = 0;
  unsigned char *f = tu_slurp(tmp("m.gst"), &nf);
  CHECK(f && nf == size && memcmp(f, b, size) == 0);
  free(f);
  gmle_stats *back = NULL;
  CHECK_STATUS(gmle_stats_load_mem(ctx, b, size, &back), GMLE_OK);
  CHECK(stats_identical(st, back));
  gmle_stats_free(back);
  CHECK_STATUS(gmle_stats_load_mem(ctx, b, size - 3, &back), GMLE_E_CORRUPT);
  CHECK_ERROR_HAS(ctx, "<memory>");
  CHECK(back == NULL);
  gmle_em_stats *es = NULL, *es2 = NULL;
  CHECK_STATUS(gmle_em_stats_load_mem(ctx, b, size, &es), GMLE_E_BAD_FORMAT);
  /* EM statistics: 3 classes as one class of K = 3 components. */
  CHECK_STATUS(gmle_em_stats_wrap(st, 3, GMLE_EM_HARD, -12.5, 40, &es),
               GMLE_OK);
  CHECK_STATUS(gmle_em_stats_save_mem(es, NULL, 0, &size), GMLE_OK);
  b = realloc(b, size);
  CHECK_STATUS(gmle_em_stats_save_mem(es, b, size, &size), GMLE_OK);
  CHECK_STATUS(gmle_stats_load_mem(ctx, b, size, &back), GMLE_E_BAD_FORMAT);
  CHECK_STATUS(gmle_em_stats_load_mem(ctx, b, size, &es2), GMLE_OK);
  double sum = 0, w = 0;
  if (es2) {
    gmle_em_stats_loglik(es2, &sum, &w);
    CHECK(sum == -12.5 && w == 40);
    CHECK(gmle_em_stats_n_components(es2) == 3);
    CHECK(gmle_em_stats_mode(es2) == GMLE_EM_HARD);
    CHECK(stats_identical(gmle_em_stats_components(es),
                          gmle_em_stats_components(es2)));
  }
  gmle_em_stats_free(es2);
  gmle_em_stats_free(es);
  free(b);
  remove(tmp("m.gst"));
}

TEST(stats_file_rejects_truncation_at_every_offset) {
  gmle_stats *st = make_stats(GMLE_STATS_FULL, 3, 3, 2);
  CHECK(st != NULL);
  if (!st)
    return;
  name_stats(st);
  const char *p = tmp("t.gst");
  CHECK_STATUS(gmle_stats_save(st, p), GMLE_OK);
  size_t n = 0;
  unsigned char *b = tu_slurp(p, &n);
  CHECK(b != NULL && n > 64);
  int bad = 0;
  for (size_t len = n; b && len-- > 0;) {
    CHECK(truncate(p, (off_t)len) == 0);
    gmle_stats *back = NULL;
    gmle_status s = gmle_stats_load(ctx, p, &back);
    if ((s != GMLE_E_CORRUPT && s != GMLE_E_BAD_FORMAT) || back ||
        !strstr(gmle_context_error(ctx), "byte ")) {
      if (bad++ < 5)
        printf("  truncated to %zu: %s: %s\n", len, gmle_status_name(s),
               gmle_context_error(ctx));
    }
    gmle_stats_free(back);
  }
  CHECK(bad == 0);
  /* Trailing bytes are damage too. */
  unsigned char *longer = malloc(n + 1);
  memcpy(longer, b, n);
  longer[n] = 0;
  tu_spit(p, longer, n + 1);
  gmle_stats *back = NULL;
  CHECK_STATUS(gmle_stats_load(ctx, p, &back), GMLE_E_CORRUPT);
  CHECK_ERROR_HAS(ctx, "trailing");
  free(longer);
  free(b);
  gmle_stats_free(st);
  remove(p);
}

TEST(stats_file_rejects_every_single_bit_flip) {
  gmle_stats *st = make_stats(GMLE_STATS_DIAG, 3, 4, 3);
  CHECK(st != NULL);
  if (!st)
    return;
  name_stats(st);
  const char *p = tmp("f.gst");
  CHECK_STATUS(gmle_stats_save(st, p), GMLE_OK);
  size_t n = 0;
  unsigned char *b = tu_slurp(p, &n);
  FILE *f = fopen(p, "r+b");
  CHECK(b && f);
  int undetected = 0;
  long allocs = 0;
  for (size_t off = 0; b && f && off < n; off++) {
    for (int bit = 0; bit < 8; bit++) {
      tu_poke(f, off, (unsigned char)(b[off] ^ (1u << bit)));
      gmle_stats *back = NULL;
      gmle__test_fail_alloc_after(0); /* resets the allocation count */
      gmle_status s = gmle_stats_load(ctx, p, &back);
      if (((off >= 24 && off < 40) || (off >= 48 && off < 64)) &&
          s != GMLE_OK) /* damaged sizes: refused before allocating */
        allocs += gmle__test_alloc_count();
      if (s == GMLE_OK || back) {
        if (undetected++ < 5)
          printf("  flip at byte %zu bit %d undetected\n", off, bit);
      }
      gmle_stats_free(back);
    }
    tu_poke(f, off, b[off]);
  }
  if (f)
    fclose(f);
  CHECK(undetected == 0);
  CHECK(allocs == 0);
  gmle_stats *back = NULL;
  CHECK_STATUS(gmle_stats_load(ctx, p, &back), GMLE_OK); /* restored */
  CHECK(stats_identical(st, back));
  gmle_stats_free(back);
  free(b);
  gmle_stats_free(st);
  remove(p);
}

/* Rewrite a saved file's field and fix its CRC, so that only the field is
 * wrong. */
static void patch(const char *path, size_t off, const void *v, size_t n) {
  size_t len = 0;
  unsigned char *b = tu_slurp(path, &len);
  if (!b)
    return;
  memcpy(b + off, v, n);
  uint32_t crc = gmle__crc32(gmle__crc32(0, NULL, 0), b, len - 4);
  gmle__st_le32(b + len - 4, crc);
  tu_spit(path, b, len);
  free(b);
}

TEST(stats_file_rejects_future_version_and_bad_fields) {
  gmle_stats *st = make_stats(GMLE_STATS_FULL, 2, 3, 4);
  CHECK(st != NULL);
  if (!st)
    return;
  const char *p = tmp("v.gst");
  gmle_stats *back = NULL;
  unsigned char v[8];

  CHECK_STATUS(gmle_stats_save(st, p), GMLE_OK);
  gmle__st_le32(v, 3);
  patch(p, 8, v, 4);
  CHECK_STATUS(gmle_stats_load(ctx, p, &back), GMLE_E_UNSUPPORTED_VERSION);
  CHECK_ERROR_HAS(ctx, "version 3");
  CHECK_ERROR_HAS(ctx, "v.gst");

  CHECK_STATUS(gmle_stats_save(st, p), GMLE_OK);
  const unsigned char swapped[4] = {1, 2, 3, 4};
  patch(p, 12, swapped, 4);
  CHECK_STATUS(gmle_stats_load(ctx, p, &back), GMLE_E_BAD_FORMAT);
  CHECK_ERROR_HAS(ctx, "byte-order");

  /* A huge dim claimed by a small file: refused before allocating. */
  CHECK_STATUS(gmle_stats_save(st, p), GMLE_OK);
  gmle__st_le64(v, (uint64_t)1 << 40);
  patch(p, 24, v, 8);
  gmle__test_fail_alloc_after(0);
  CHECK(gmle_stats_load(ctx, p, &back) != GMLE_OK);
  CHECK(gmle__test_alloc_count() == 0);

  /* NaN and a negative weight with a valid CRC. */
  CHECK_STATUS(gmle_stats_save(st, p), GMLE_OK);
  double nan = NAN, neg = -1;
  patch(p, 64 + 16 + 16 + 8, &nan, 8); /* shift[0][1] */
  CHECK_STATUS(gmle_stats_load(ctx, p, &back), GMLE_E_BAD_FORMAT);
  CHECK_ERROR_HAS(ctx, "shift");
  CHECK_STATUS(gmle_stats_save(st, p), GMLE_OK);
  patch(p, 64 + 8, &neg, 8); /* weight[1] */
  CHECK_STATUS(gmle_stats_load(ctx, p, &back), GMLE_E_BAD_FORMAT);
  CHECK_ERROR_HAS(ctx, "class 1");

  /* Version 1 files have a reserved zero where version 2 has the size of
   * the class names. */
  CHECK_STATUS(gmle_stats_save(st, p), GMLE_OK);
  gmle__st_le32(v, 1);
  patch(p, 8, v, 4);
  gmle__st_le64(v, 8);
  patch(p, 56, v, 8);
  CHECK_STATUS(gmle_stats_load(ctx, p, &back), GMLE_E_BAD_FORMAT);
  CHECK_ERROR_HAS(ctx, "byte 56");

  /* Not a statistics file; not there. */
  tu_spit(p, "GMLEMODL and more bytes", 23);
  CHECK_STATUS(gmle_stats_load(ctx, p, &back), GMLE_E_BAD_FORMAT);
  CHECK_STATUS(gmle_stats_load(ctx, tmp("none.gst"), &back), GMLE_E_IO);
  CHECK(back == NULL);
  gmle_stats_free(st);
  remove(p);
}

/* A version 1 file, as gmle wrote it before class names: the same header
 * and payload, version 1, 0 at byte 56, no names. */
static const unsigned char v1_file[] = {
    'G', 'M', 'L', 'E', 'S', 'T', 'A', 'T', 1, 0, 0, 0, 4, 3, 2, 1,
    0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, /* FULL, saw_f32, D 1 */
    1, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, /* C 1, 5 batches */
    48, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* P 48, reserved */
    0, 0, 0, 0, 0, 0, 0x10, 0x40,                   /* weight 4.0 */
    7, 0, 0, 0, 0, 0, 0, 0,                         /* rows 7 */
    0, 0, 0, 0, 0, 0, 0xf0, 0x3f,                   /* shift 1.0 */
    0, 0, 0, 0, 0, 0, 0, 0x40,                      /* sum 2.0 */
    0, 0, 0, 0, 0, 0, 0x14, 0x40,                   /* gram 5.0 */
    1, 0, 0, 0, 0, 0, 0, 0,                         /* has_shift, pad */
    0, 0, 0, 0 /* CRC, filled in */
};

TEST(stats_file_reads_version_1) {
  unsigned char b[sizeof v1_file];
  memcpy(b, v1_file, sizeof b);
  gmle__st_le32(b + sizeof b - 4,
                gmle__crc32(gmle__crc32(0, NULL, 0), b, sizeof b - 4));
  const char *p = tmp("v1.gst");
  CHECK(tu_spit(p, b, sizeof b) == 0);
  gmle_stats *st = NULL;
  CHECK_STATUS(gmle_stats_load(ctx, p, &st), GMLE_OK);
  if (st) {
    CHECK(st->dim == 1 && st->n_classes == 1 && st->mode == GMLE_STATS_FULL);
    CHECK(st->weight[0] == 4.0 && st->rows[0] == 7 && st->shift[0] == 1.0 &&
          st->sum[0] == 2.0 && st->gram[0] == 5.0 && st->has_shift[0] == 1);
    CHECK(st->n_batches == 5 && st->saw_f32 == 1 && st->names == NULL);
    CHECK(gmle_stats_class_name(st, 0) == NULL);
    double mean = 0;
    CHECK_STATUS(gmle_stats_mean(st, 0, &mean), GMLE_OK);
    CHECK(mean == 1.5);
    /* Saved again, it becomes version 2 with the same statistics. */
    CHECK_STATUS(gmle_stats_save(st, tmp("v2.gst")), GMLE_OK);
    size_t n = 0;
    unsigned char *b2 = tu_slurp(tmp("v2.gst"), &n);
    CHECK(b2 && n == sizeof b && gmle__ld_le32(b2 + 8) == 2 &&
          memcmp(b2 + 12, b + 12, n - 16) == 0);
    free(b2);
  }
  gmle_stats_free(st);
  remove(p);
  remove(tmp("v2.gst"));
}

/* Offset of the class-name section of a saved file. */
static size_t names_offset(const unsigned char *b) {
  return 64 + (size_t)gmle__ld_le64(b + 48);
}

TEST(stats_file_rejects_bad_class_names) {
  gmle_stats *st = make_stats(GMLE_STATS_FULL, 2, 2, 6);
  CHECK(st != NULL);
  if (!st)
    return;
  const char *names[2] = {"ab", "cde"};
  CHECK_STATUS(gmle_stats_set_class_names(st, names), GMLE_OK);
  const char *p = tmp("n.gst");
  gmle_stats *back = NULL;
  size_t n = 0;
  CHECK_STATUS(gmle_stats_save(st, p), GMLE_OK);
  unsigned char *b = tu_slurp(p, &n);
  CHECK(b != NULL);
  if (!b) {
    gmle_stats_free(st);
    return;
  }
  const size_t o = names_offset(b);
  /* Section: lengths 2, 3; "abcde"; 3 bytes of padding: 16 bytes. */
  CHECK(gmle__ld_le64(b + 56) == 16 && n == o + 16 + 4);
  CHECK(gmle__ld_le32(b + o) == 2 && gmle__ld_le32(b + o + 4) == 3);
  CHECK(memcmp(b + o + 8, "abcde\0\0\0", 8) == 0);
  unsigned char v[8];

  /* A NUL inside a name. */
  v[0] = 0;
  patch(p, o + 9, v, 1);
  CHECK_STATUS(gmle_stats_load(ctx, p, &back), GMLE_E_BAD_FORMAT);
  CHECK_ERROR_HAS(ctx, "NUL");
  CHECK_ERROR_HAS(ctx, "class 0");
  /* Lengths that do not add up to the section. */
  tu_spit(p, b, n);
  gmle__st_le32(v, 12);
  patch(p, o + 4, v, 4);
  CHECK_STATUS(gmle_stats_load(ctx, p, &back), GMLE_E_BAD_FORMAT);
  CHECK_ERROR_HAS(ctx, "class-name section");
  tu_spit(p, b, n);
  gmle__st_le32(v, 0xffffffffu);
  patch(p, o, v, 4);
  CHECK_STATUS(gmle_stats_load(ctx, p, &back), GMLE_E_BAD_FORMAT);
  CHECK_ERROR_HAS(ctx, "class 0");
  /* Non-zero padding. */
  tu_spit(p, b, n);
  v[0] = 'x';
  patch(p, o + 13, v, 1);
  CHECK_STATUS(gmle_stats_load(ctx, p, &back), GMLE_E_BAD_FORMAT);
  CHECK_ERROR_HAS(ctx, "padding");
  /* A section size that is not a multiple of 8, or too small for the
   * lengths: refused before allocating. */
  tu_spit(p, b, n);
  gmle__st_le64(v, 12);
  patch(p, 56, v, 8);
  gmle__test_fail_alloc_after(0);
  CHECK_STATUS(gmle_stats_load(ctx, p, &back), GMLE_E_BAD_FORMAT);
  CHECK(gmle__test_alloc_count() == 0);
  CHECK_ERROR_HAS(ctx, "byte 56");
  tu_spit(p, b, n);
  gmle__st_le64(v, (uint64_t)1 << 40); /* huge: the file is too short */
  patch(p, 56, v, 8);
  gmle__test_fail_alloc_after(0);
  CHECK_STATUS(gmle_stats_load(ctx, p, &back), GMLE_E_CORRUPT);
  CHECK(gmle__test_alloc_count() == 0);
  CHECK_ERROR_HAS(ctx, "truncated");
  CHECK(back == NULL);

  /* Names up to 65536 bytes are saved; longer ones are refused. */
  char *big = malloc(65538);
  memset(big, 'x', 65537);
  big[65536] = '\0';
  const char *bn[2] = {"ok", big};
  CHECK_STATUS(gmle_stats_set_class_names(st, bn), GMLE_OK);
  CHECK_STATUS(gmle_stats_save(st, p), GMLE_OK);
  CHECK_STATUS(gmle_stats_load(ctx, p, &back), GMLE_OK);
  CHECK(back && stats_identical(st, back));
  gmle_stats_free(back);
  back = NULL;
  big[65536] = 'x';
  big[65537] = '\0';
  CHECK_STATUS(gmle_stats_set_class_names(st, bn), GMLE_OK);
  CHECK_STATUS(gmle_stats_save(st, tmp("big.gst")), GMLE_E_TOO_LARGE);
  CHECK_ERROR_HAS(ctx, "class 1");
  FILE *f = fopen(tmp("big.gst"), "rb");
  CHECK(f == NULL);
  if (f)
    fclose(f);
  free(big);
  free(b);
  gmle_stats_free(st);
  remove(p);
}

/* Statistics of n random rows per class, accumulated exactly as the
 * accumulator would (shift = the first row), through the internals so that
 * this suite does not depend on the accumulation kernel. */
static gmle_stats *data_stats(size_t C, size_t D, size_t n, uint64_t seed) {
  gmle_stats *st = NULL;
  if (gmle_stats_create(ctx, D, C, &st) != GMLE_OK)
    return NULL;
  tu_rng r;
  tu_seed(&r, seed);
  double *x = malloc(D * sizeof *x), *dv = malloc(D * sizeof *dv);
  for (size_t c = 0; c < C; c++)
    for (size_t i = 0; i < n; i++) {
      for (size_t j = 0; j < D; j++)
        x[j] = 3.0 * (double)c + tu_normal(&r);
      if (!st->has_shift[c]) {
        memcpy(st->shift + c * D, x, D * sizeof *x);
        st->has_shift[c] = 1;
      }
      for (size_t j = 0; j < D; j++)
        dv[j] = x[j] - st->shift[c * D + j];
      st->weight[c] += 1;
      st->rows[c]++;
      for (size_t j = 0; j < D; j++) {
        st->sum[c * D + j] += dv[j];
        for (size_t k = 0; k <= j; k++)
          st->gram[c * D * D + j * D + k] += dv[j] * dv[k];
      }
    }
  st->n_batches = 1;
  free(x);
  free(dv);
  return st;
}

TEST(stats_file_names_travel_through_merge) {
  /* Two sets of statistics, one saved with names, one without. */
  gmle_stats *a = data_stats(3, 3, 50, 21);
  gmle_stats *b = data_stats(3, 3, 70, 22);
  CHECK(a && b);
  if (!a || !b) {
    gmle_stats_free(a);
    gmle_stats_free(b);
    return;
  }
  const char *names[3] = {"setosa", "versicolor", "virginica"};
  CHECK_STATUS(gmle_stats_set_class_names(a, names), GMLE_OK);
  CHECK_STATUS(gmle_stats_save(a, tmp("a.gst")), GMLE_OK);
  CHECK_STATUS(gmle_stats_save(b, tmp("b.gst")), GMLE_OK);
  gmle_stats *la = NULL, *lb = NULL;
  CHECK_STATUS(gmle_stats_load(ctx, tmp("a.gst"), &la), GMLE_OK);
  CHECK_STATUS(gmle_stats_load(ctx, tmp("b.gst"), &lb), GMLE_OK);
  if (la && lb) {
    CHECK(lb->names == NULL);
    CHECK(strcmp(gmle_stats_class_name(la, 2), "virginica") == 0);
    /* The one without names adopts them... */
    CHECK_STATUS(gmle_stats_merge(lb, la), GMLE_OK);
    CHECK(gmle_stats_class_name(lb, 0) &&
          strcmp(gmle_stats_class_name(lb, 0), "setosa") == 0 &&
          strcmp(gmle_stats_class_name(lb, 2), "virginica") == 0);
    /* ... and keeps them through a save and a load. */
    CHECK_STATUS(gmle_stats_save(lb, tmp("m.gst")), GMLE_OK);
    gmle_stats *lm = NULL;
    CHECK_STATUS(gmle_stats_load(ctx, tmp("m.gst"), &lm), GMLE_OK);
    CHECK(lm && stats_identical(lb, lm));
    /* The same merge in memory gives the same statistics. */
    CHECK_STATUS(gmle_stats_merge(b, a), GMLE_OK);
    CHECK(lm && stats_identical(b, lm));
    gmle_stats_free(lm);
    /* Merging unnamed statistics into named ones keeps the names. */
    gmle_stats *plain = NULL;
    CHECK_STATUS(gmle_stats_create(ctx, 3, 3, &plain), GMLE_OK);
    CHECK_STATUS(gmle_stats_merge(la, plain), GMLE_OK);
    CHECK(strcmp(gmle_stats_class_name(la, 1), "versicolor") == 0);
    gmle_stats_free(plain);
    /* Different names refuse the merge and change nothing. */
    const char *other[3] = {"setosa", "versicolour", "virginica"};
    CHECK_STATUS(gmle_stats_set_class_names(a, other), GMLE_OK);
    CHECK_STATUS(gmle_stats_save(a, tmp("a.gst")), GMLE_OK);
    gmle_stats *lo = NULL;
    CHECK_STATUS(gmle_stats_load(ctx, tmp("a.gst"), &lo), GMLE_OK);
    gmle_stats *before = NULL;
    CHECK_STATUS(gmle_stats_clone(lb, &before), GMLE_OK);
    CHECK_STATUS(gmle_stats_merge(lb, lo), GMLE_E_DIM_MISMATCH);
    CHECK_ERROR_HAS(ctx, "class 1");
    CHECK(before && stats_identical(before, lb));
    gmle_stats_free(before);
    gmle_stats_free(lo);
  }
  gmle_stats_free(la);
  gmle_stats_free(lb);
  gmle_stats_free(a);
  gmle_stats_free(b);
  remove(tmp("a.gst"));
  remove(tmp("b.gst"));
  remove(tmp("m.gst"));
}

TEST(stats_file_survives_allocation_failures) {
  gmle_stats *st = make_stats(GMLE_STATS_FULL, 3, 2, 5);
  CHECK(st != NULL);
  if (!st)
    return;
  name_stats(st);
  const char *p = tmp("oom.gst");
  CHECK_STATUS(gmle_stats_save(st, p), GMLE_OK);
  int ok = 0;
  for (long k = 1; k < 100 && !ok; k++) {
    gmle_stats *back = NULL;
    gmle__test_fail_alloc_after(k);
    gmle_status s = gmle_stats_load(ctx, p, &back);
    gmle__test_fail_alloc_after(0);
    if (s == GMLE_OK)
      ok = stats_identical(st, back);
    else
      CHECK_STATUS(s, GMLE_E_OUT_OF_MEMORY);
    gmle_stats_free(back);
  }
  CHECK(ok);
  ok = 0;
  for (long k = 1; k < 100 && !ok; k++) {
    gmle__test_fail_alloc_after(k);
    gmle_status s = gmle_stats_save(st, tmp("oom2.gst"));
    gmle__test_fail_alloc_after(0);
    ok = s == GMLE_OK;
    if (!ok)
      CHECK_STATUS(s, GMLE_E_OUT_OF_MEMORY);
  }
  CHECK(ok);
  CHECK_STATUS(gmle_stats_save(st, tmp("no/such/dir/s.gst")), GMLE_E_IO);
  gmle_stats_free(st);
  remove(p);
  remove(tmp("oom2.gst"));
}

int main(int argc, char **argv) {
  CHECK_INIT(argc, argv);
  if (gmle_context_create(GMLE_BACKEND_AUTO, -1, &ctx) != GMLE_OK) {
    printf("cannot create a context: %s\n", gmle_context_error(ctx));
    return 1;
  }
  if (tu_tmpdir_create(dir, sizeof dir) != 0) {
    printf("cannot create a temporary directory\n");
    return 1;
  }
  RUN(stats_file_round_trips_bit_exact);
  RUN(stats_mem_holds_the_file_bytes);
  RUN(stats_file_rejects_truncation_at_every_offset);
  RUN(stats_file_rejects_every_single_bit_flip);
  RUN(stats_file_rejects_future_version_and_bad_fields);
  RUN(stats_file_reads_version_1);
  RUN(stats_file_rejects_bad_class_names);
  RUN(stats_file_names_travel_through_merge);
  RUN(stats_file_survives_allocation_failures);
  tu_tmpdir_remove(dir);
  gmle_context_free(ctx);
  return CHECK_DONE();
}
