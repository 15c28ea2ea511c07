/*
 * fuzz_stats.c -- the statistics file reader (io/stats_file.c), from
 * memory. Every input is loaded as it is and, when its last four bytes are
 * not the CRC-32 of the rest, once more with them replaced by it, so that
 * mutations get past the checksum. Statistics that load must agree with
 * their header, stay bit-identical when empty statistics are merged into
 * them, and fit (or refuse to, with a message) under every covariance
 * type (full and tied from diagonal-only statistics included); a fitted model
 * is checked with fz_check_model.
 */
#include "fuzzutil.h"

#include "internal.h"
#include "io_mem.h"
#include "npy.h"
#include "zip.h"

#include <stdlib.h>
#include <string.h>

static int same_stats(const gmle_stats *a, const gmle_stats *b) {
  const size_t C = a->n_classes, D = a->dim;
  return a->dim == b->dim && a->n_classes == b->n_classes &&
         a->mode == b->mode && a->n_batches == b->n_batches &&
         a->saw_f32 == b->saw_f32 &&
         !memcmp(a->weight, b->weight, C * sizeof(double)) &&
         !memcmp(a->rows, b->rows, C * sizeof(uint64_t)) &&
         !memcmp(a->has_shift, b->has_shift, C) &&
         !memcmp(a->shift, b->shift, C * D * sizeof(double)) &&
         !memcmp(a->sum, b->sum, C * D * sizeof(double)) &&
         !memcmp(a->gram, b->gram, C * a->gram_len * sizeof(double));
}

static void check_loaded(gmle_stats *st, const unsigned char *data) {
  gmle_context *ctx = fz_context();
  const size_t D = gmle_stats_dim(st), C = gmle_stats_n_classes(st);
  FZ_REQUIRE(D == gmle__ld_le64(data + 24) && C == gmle__ld_le64(data + 32) &&
                 (unsigned)gmle_stats_get_mode(st) == gmle__ld_le32(data + 16),
             "loaded %zu features x %zu classes", D, C);
  /* Merging empty statistics is the identity, bit for bit. */
  gmle_stats *copy = NULL, *empty = NULL;
  FZ_REQUIRE(gmle_stats_clone(st, &copy) == GMLE_OK, "clone");
  FZ_REQUIRE(gmle_stats_create_mode(ctx, D, C, gmle_stats_get_mode(st),
                                    &empty) == GMLE_OK,
             "create");
  gmle_status s = gmle_stats_merge(copy, empty);
  FZ_REQUIRE(s == GMLE_OK && same_stats(copy, st),
             "merging empty statistics: %s, or the statistics changed",
             gmle_status_name(s));
  gmle_stats_free(copy);
  gmle_stats_free(empty);
  if (D > 64 || C > 64)
    return; /* fitting is for what a small input can describe */
  for (int cov = GMLE_COV_FULL; cov <= GMLE_COV_TIED; cov++) {
    gmle_fit_options opt;
    gmle_fit_options_init(&opt);
    opt.cov = (gmle_cov_type)cov;
    gmle_model *m = NULL;
    s = gmle_fit(st, &opt, &m);
    if (!fz_outcome(s, m, "gmle_fit"))
      continue;
    fz_check_model(m);
    gmle_model_free(m);
  }
}

static void load(const unsigned char *data, size_t size) {
  gmle_context *ctx = fz_context();
  gmle_stats *st = NULL;
  gmle_status s = gmle__stats_load_mem(ctx, "fuzz.stats", data, size, &st);
  if (!fz_outcome(s, st, "gmle__stats_load_mem"))
    return;
  FZ_REQUIRE(size >= 68, "statistics loaded from %zu bytes", size);
  check_loaded(st, data);
  gmle_stats_free(st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  load(data, size);
  if (size < 4)
    return 0;
  const uint32_t crc = gmle__crc32(gmle__crc32(0, NULL, 0), data, size - 4);
  if (gmle__ld_le32(data + size - 4) == crc)
    return 0;
  unsigned char *copy = malloc(size);
  FZ_REQUIRE(copy != NULL, "out of memory in the harness");
  memcpy(copy, data, size);
  gmle__st_le32(copy + size - 4, crc);
  load(copy, size);
  free(copy);
  return 0;
}
