/* test_stats_file.c -- gmle_stats_save / gmle_stats_load: bit-exact round
 * trips, truncation and bit flips rejected, versions from the future. */
#define _POSIX_C_SOURCE 200809L
#include "check.h"
#include "testutil.h"

#include "npy.h"
#include "zip.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static gmle_context *ctx;
static char dir[512];

static const char *tmp(const char *name) {
  static char buf[8][1024];
  static int k;
  char *b = buf[k++ % 8];
  tu_path_join(b, 1024, dir, name);
  return b;
}

static unsigned char *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *b = malloc(len > 0 ? (size_t)len : 1);
  if (b && fread(b, 1, (size_t)len, f) != (size_t)len) {
    free(b);
    b = NULL;
  }
  fclose(f);
  *n = (size_t)len;
  return b;
}

static int spit(const char *path, const void *b, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f)
    return -1;
  size_t w = fwrite(b, 1, n, f);
  return (fclose(f) == 0 && w == n) ? 0 : -1;
}

static void poke(FILE *f, size_t off, unsigned char v) {
  fseek(f, (long)off, SEEK_SET);
  fputc(v, f);
  fflush(f);
}

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

static int stats_identical(const gmle_stats *a, const gmle_stats *b) {
  return a && b && tu_stats_raw_equal(a, b) && a->n_batches == b->n_batches &&
         a->saw_f32 == b->saw_f32;
}

TEST(stats_file_round_trips_bit_exact) {
  const gmle_stats_mode modes[2] = {GMLE_STATS_FULL, GMLE_STATS_DIAG};
  const size_t shapes[][2] = {{1, 1}, {3, 4}, {9, 7}, {2, 17}};
  for (int mi = 0; mi < 2; mi++) {
    for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++) {
      gmle_stats *st =
          make_stats(modes[mi], shapes[si][0], shapes[si][1], 10 + si);
      CHECK(st != NULL);
      if (!st)
        continue;
      CHECK_STATUS(gmle_stats_save(st, tmp("s.gst")), GMLE_OK);
      gmle_stats *back = NULL;
      CHECK_STATUS(gmle_stats_load(ctx, tmp("s.gst"), &back), GMLE_OK);
      CHECK_MSG(stats_identical(st, back), "mode %d shape %zu x %zu", mi,
                shapes[si][0], shapes[si][1]);
      CHECK(back && back->ctx == ctx);
      gmle_stats_free(back);
      gmle_stats_free(st);
    }
  }
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

TEST(stats_file_rejects_truncation_at_every_offset) {
  gmle_stats *st = make_stats(GMLE_STATS_FULL, 3, 3, 2);
  CHECK(st != NULL);
  if (!st)
    return;
  const char *p = tmp("t.gst");
  CHECK_STATUS(gmle_stats_save(st, p), GMLE_OK);
  size_t n = 0;
  unsigned char *b = slurp(p, &n);
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
  spit(p, longer, n + 1);
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
  const char *p = tmp("f.gst");
  CHECK_STATUS(gmle_stats_save(st, p), GMLE_OK);
  size_t n = 0;
  unsigned char *b = slurp(p, &n);
  FILE *f = fopen(p, "r+b");
  CHECK(b && f);
  int undetected = 0;
  long allocs = 0;
  for (size_t off = 0; b && f && off < n; off++) {
    for (int bit = 0; bit < 8; bit++) {
      poke(f, off, (unsigned char)(b[off] ^ (1u << bit)));
      gmle_stats *back = NULL;
      gmle__test_fail_alloc_after(0); /* resets the allocation count */
      gmle_status s = gmle_stats_load(ctx, p, &back);
      if (((off >= 24 && off < 40) || (off >= 48 && off < 56)) &&
          s != GMLE_OK) /* damaged sizes: refused before allocating */
        allocs += gmle__test_alloc_count();
      if (s == GMLE_OK || back) {
        if (undetected++ < 5)
          printf("  flip at byte %zu bit %d undetected\n", off, bit);
      }
      gmle_stats_free(back);
    }
    poke(f, off, b[off]);
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
  unsigned char *b = slurp(path, &len);
  if (!b)
    return;
  memcpy(b + off, v, n);
  uint32_t crc = gmle__crc32(gmle__crc32(0, NULL, 0), b, len - 4);
  gmle__st_le32(b + len - 4, crc);
  spit(path, b, len);
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
  gmle__st_le32(v, 2);
  patch(p, 8, v, 4);
  CHECK_STATUS(gmle_stats_load(ctx, p, &back), GMLE_E_UNSUPPORTED_VERSION);
  CHECK_ERROR_HAS(ctx, "version 2");
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

  /* Not a statistics file; not there. */
  spit(p, "GMLEMODL and more bytes", 23);
  CHECK_STATUS(gmle_stats_load(ctx, p, &back), GMLE_E_BAD_FORMAT);
  CHECK_STATUS(gmle_stats_load(ctx, tmp("none.gst"), &back), GMLE_E_IO);
  CHECK(back == NULL);
  gmle_stats_free(st);
  remove(p);
}

TEST(stats_file_survives_allocation_failures) {
  gmle_stats *st = make_stats(GMLE_STATS_FULL, 3, 2, 5);
  CHECK(st != NULL);
  if (!st)
    return;
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
  RUN(stats_file_rejects_truncation_at_every_offset);
  RUN(stats_file_rejects_every_single_bit_flip);
  RUN(stats_file_rejects_future_version_and_bad_fields);
  RUN(stats_file_survives_allocation_failures);
  tu_tmpdir_remove(dir);
  gmle_context_free(ctx);
  return CHECK_DONE();
}
