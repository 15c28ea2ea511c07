/* test_model_file.c -- gmle_model_save / gmle_model_load (.npz): bit-exact
 * round trips, truncation and bit flips (BAD_INPUTS 22), invalid parameters
 * (23), and numpy interop when python3 with numpy is available. */
#define _POSIX_C_SOURCE 200809L
#include "check.h"
#include "testutil.h"

#include "npy.h"
#include "zip.h"

#include <dirent.h>
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

static size_t cov_len(gmle_cov_type cov, size_t D, size_t C) {
  switch (cov) {
  case GMLE_COV_FULL:
    return C * D * D;
  case GMLE_COV_DIAG:
    return C * D;
  case GMLE_COV_SPHERICAL:
    return C;
  case GMLE_COV_TIED:
    return D * D;
  }
  return 0;
}

static const gmle_cov_type all_covs[4] = {GMLE_COV_FULL, GMLE_COV_DIAG,
                                          GMLE_COV_SPHERICAL, GMLE_COV_TIED};
static const char *const cov_str[4] = {"full", "diag", "spherical", "tied"};

/* A random valid model; rows set to distinct values through the internals
 * (models from parameters have none). */
static gmle_model *random_model(uint64_t seed, gmle_cov_type cov, size_t C,
                                size_t D, int with_names) {
  tu_rng r;
  tu_seed(&r, seed);
  size_t cl = cov_len(cov, D, C);
  double *means = malloc(C * D * sizeof *means);
  double *covs = malloc(cl * sizeof *covs);
  double *priors = malloc(C * sizeof *priors);
  double *counts = malloc(C * sizeof *counts);
  for (size_t i = 0; i < C * D; i++)
    means[i] = tu_normal(&r) * 10;
  switch (cov) {
  case GMLE_COV_FULL:
    for (size_t c = 0; c < C; c++)
      tu_random_spd(&r, D, 0.25, 8.0, covs + c * D * D);
    break;
  case GMLE_COV_TIED:
    tu_random_spd(&r, D, 0.25, 8.0, covs);
    break;
  default:
    for (size_t i = 0; i < cl; i++)
      covs[i] = 0.1 + tu_uniform(&r);
    break;
  }
  double sum = 0;
  for (size_t c = 0; c < C; c++) {
    counts[c] = 1 + floor(tu_uniform(&r) * 1000) + tu_uniform(&r);
    sum += counts[c];
  }
  for (size_t c = 0; c < C; c++)
    priors[c] = counts[c] / sum;
  gmle_model *m = NULL;
  gmle_status s =
      gmle_model_create(ctx, D, C, cov, means, covs, priors, counts, &m);
  if (s != GMLE_OK)
    printf("  model_create: %s\n", gmle_context_error(ctx));
  if (m) {
    for (size_t c = 0; c < C; c++)
      m->rows[c] = (uint64_t)(counts[c]) + 7u * c + ((uint64_t)1 << 40);
    if (with_names) {
      const char *base[] = {"cat",
                            "caf\xc3\xa9",
                            "",
                            "\xe2\x82\xac uro",
                            "raw\xff\xfe byte",
                            "\xf0\x9f\x90\x8d",
                            "a much longer class name than the others"};
      char **names = malloc(C * sizeof *names);
      for (size_t c = 0; c < C; c++) {
        names[c] = malloc(64);
        snprintf(names[c], 64, "%s%s", base[c % 7], c >= 7 ? "!" : "");
      }
      if (gmle_model_set_class_names(m, (const char *const *)names) != GMLE_OK)
        printf("  set_class_names: %s\n", gmle_context_error(ctx));
      for (size_t c = 0; c < C; c++)
        free(names[c]);
      free(names);
    }
  }
  free(means);
  free(covs);
  free(priors);
  free(counts);
  return m;
}

/* Bitwise equality of everything a model file carries. */
static int models_identical(const gmle_model *a, const gmle_model *b) {
  if (!a || !b || a->dim != b->dim || a->n_classes != b->n_classes ||
      a->cov != b->cov)
    return 0;
  size_t C = a->n_classes, D = a->dim, cl = cov_len(a->cov, D, C);
  if (memcmp(a->means, b->means, C * D * 8) ||
      memcmp(a->covars, b->covars, cl * 8) ||
      memcmp(a->priors, b->priors, C * 8) ||
      memcmp(a->counts, b->counts, C * 8) || memcmp(a->rows, b->rows, C * 8))
    return 0;
  if (!a->names != !b->names)
    return 0;
  for (size_t c = 0; a->names && c < C; c++)
    if (strcmp(a->names[c], b->names[c]) != 0)
      return 0;
  return 1;
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

/* Overwrite one byte of an open file and make it visible to readers. */
static void poke(FILE *f, size_t off, unsigned char v) {
  fseek(f, (long)off, SEEK_SET);
  fputc(v, f);
  fflush(f);
}

/* Number of entries in dir other than . and .. */
static int dir_entries(const char *d) {
  DIR *dp = opendir(d);
  int n = 0;
  struct dirent *e;
  while (dp && (e = readdir(dp)) != NULL)
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
      n++;
  if (dp)
    closedir(dp);
  return n;
}

/* ------------------------------------------------------------------------ */
/* Hand-made archives                                                       */
/* ------------------------------------------------------------------------ */

typedef struct arr {
  const char *name; /* member name without .npy */
  const char *descr;
  size_t ndim;
  size_t shape[3];
  const void *data;
  size_t bytes;
} arr;

static int write_npz(const char *path, const arr *a, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f)
    return -1;
  gmle__zip_writer w;
  gmle__zip_writer_init(&w, ctx, f, path);
  int rc = 0;
  for (size_t i = 0; i < n && rc == 0; i++) {
    char hdr[256], name[64];
    size_t hl = gmle__npy_format_header(hdr, sizeof hdr, a[i].descr, 0,
                                        a[i].ndim, a[i].shape);
    snprintf(name, sizeof name, "%s.npy", a[i].name);
    const void *parts[2] = {hdr, a[i].data};
    size_t lens[2] = {hl, a[i].bytes};
    rc = (hl && gmle__zip_add(&w, name, parts, lens, 2) == GMLE_OK) ? 0 : -1;
  }
  if (rc == 0 && gmle__zip_finish(&w) != GMLE_OK)
    rc = -1;
  fclose(f);
  return rc;
}

/* A valid 2-class, 2-feature full model as arrays (little-endian host). */
typedef struct base_model {
  int64_t version;
  unsigned char covtype[16];
  double means[4], covs[8], priors[2], counts[2];
  uint64_t rows[2];
  int64_t classes[2];
  arr a[8];
} base_model;

static void base_init(base_model *b) {
  memset(b, 0, sizeof *b);
  b->version = 1;
  const char *ft = "full";
  for (int k = 0; k < 4; k++)
    gmle__st_le32(b->covtype + 4 * k, (uint32_t)ft[k]);
  const double means[4] = {0, 1, 2, 3};
  const double covs[8] = {2, 0.5, 0.5, 1, 1, 0, 0, 1};
  memcpy(b->means, means, sizeof means);
  memcpy(b->covs, covs, sizeof covs);
  b->priors[0] = 0.25;
  b->priors[1] = 0.75;
  b->counts[0] = 10;
  b->counts[1] = 30;
  b->rows[0] = 10;
  b->rows[1] = 30;
  b->classes[0] = 0;
  b->classes[1] = 1;
  arr a[8] = {
      {"format_version", "<i8", 0, {0}, &b->version, 8},
      {"covariance_type", "<U4", 0, {0}, b->covtype, 16},
      {"means", "<f8", 2, {2, 2}, b->means, 32},
      {"covariances", "<f8", 3, {2, 2, 2}, b->covs, 64},
      {"priors", "<f8", 1, {2}, b->priors, 16},
      {"counts", "<f8", 1, {2}, b->counts, 16},
      {"rows", "<u8", 1, {2}, b->rows, 16},
      {"classes", "<i8", 1, {2}, b->classes, 16},
  };
  memcpy(b->a, a, sizeof a);
}

static gmle_status load_base(base_model *b, const char *name) {
  const char *p = tmp(name);
  if (write_npz(p, b->a, 8) != 0)
    return GMLE_E_IO;
  gmle_model *m = NULL;
  gmle_status s = gmle_model_load(ctx, p, &m);
  if ((s == GMLE_OK) != (m != NULL))
    s = GMLE_E_INTERNAL;
  gmle_model_free(m);
  return s;
}

/* ------------------------------------------------------------------------ */
/* Round trips                                                              */
/* ------------------------------------------------------------------------ */

TEST(model_file_round_trips_bit_exact_every_cov_type) {
  for (int k = 0; k < 4; k++) {
    for (int names = 0; names < 2; names++) {
      const size_t C = 9, D = 5;
      gmle_model *m = random_model(100 + (uint64_t)k, all_covs[k], C, D, names);
      CHECK(m != NULL);
      if (!m)
        continue;
      const char *p = tmp("rt.npz");
      CHECK_STATUS(gmle_model_save(m, p), GMLE_OK);
      gmle_model *back = NULL;
      CHECK_STATUS(gmle_model_load(ctx, p, &back), GMLE_OK);
      CHECK_MSG(models_identical(m, back), "%s names=%d: %s", cov_str[k], names,
                gmle_context_error(ctx));
      CHECK(back && back->reports[3].rows == m->rows[3]);
      /* Saving the loaded model gives the same bytes. */
      size_t n1 = 0, n2 = 0;
      unsigned char *b1 = slurp(p, &n1);
      CHECK_STATUS(gmle_model_save(back, tmp("rt2.npz")), GMLE_OK);
      unsigned char *b2 = slurp(tmp("rt2.npz"), &n2);
      CHECK(b1 && b2 && n1 == n2 && memcmp(b1, b2, n1) == 0);
      free(b1);
      free(b2);
      gmle_model_free(back);
      gmle_model_free(m);
    }
  }
  remove(tmp("rt.npz"));
  remove(tmp("rt2.npz"));
  CHECK(dir_entries(dir) == 0); /* no temporary files left behind */
}

TEST(model_file_round_trips_one_class_one_feature) {
  for (int k = 0; k < 4; k++) {
    gmle_model *m = random_model(7, all_covs[k], 1, 1, 1);
    CHECK(m != NULL);
    if (!m)
      continue;
    CHECK_STATUS(gmle_model_save(m, tmp("one.npz")), GMLE_OK);
    gmle_model *back = NULL;
    CHECK_STATUS(gmle_model_load(ctx, tmp("one.npz"), &back), GMLE_OK);
    CHECK(models_identical(m, back));
    gmle_model_free(back);
    gmle_model_free(m);
  }
  remove(tmp("one.npz"));
}

TEST(model_file_save_failure_leaves_nothing) {
  gmle_model *m = random_model(1, GMLE_COV_DIAG, 2, 2, 0);
  CHECK(m != NULL);
  if (!m)
    return;
  CHECK_STATUS(gmle_model_save(m, tmp("no/such/dir/m.npz")), GMLE_E_IO);
  CHECK_ERROR_HAS(ctx, "no/such/dir/m.npz");
  CHECK_STATUS(gmle_model_save(m, NULL), GMLE_E_INVALID_ARG);
  CHECK_STATUS(gmle_model_save(NULL, tmp("x.npz")), GMLE_E_INVALID_ARG);
  /* Allocation failures at every point: an error, nothing left behind, and
   * an existing file untouched. */
  const char *p = tmp("keep.npz");
  CHECK_STATUS(gmle_model_save(m, p), GMLE_OK);
  size_t n0 = 0;
  unsigned char *before = slurp(p, &n0);
  gmle_model *other = random_model(2, GMLE_COV_FULL, 3, 3, 1);
  for (long k = 1; k < 100; k++) {
    gmle__test_fail_alloc_after(k);
    gmle_status s = gmle_model_save(other, p);
    gmle__test_fail_alloc_after(0);
    if (s == GMLE_OK)
      break;
    CHECK_STATUS(s, GMLE_E_OUT_OF_MEMORY);
    size_t n1 = 0;
    unsigned char *now = slurp(p, &n1);
    CHECK(now && n1 == n0 && memcmp(now, before, n0) == 0);
    free(now);
    CHECK(dir_entries(dir) == 1);
  }
  free(before);
  gmle_model_free(other);
  gmle_model_free(m);
  remove(p);
}

TEST(model_file_load_survives_allocation_failures) {
  gmle_model *m = random_model(3, GMLE_COV_FULL, 3, 4, 1);
  CHECK(m != NULL);
  if (!m)
    return;
  const char *p = tmp("oom.npz");
  CHECK_STATUS(gmle_model_save(m, p), GMLE_OK);
  int succeeded = 0;
  for (long k = 1; k < 400 && !succeeded; k++) {
    gmle_model *back = NULL;
    gmle__test_fail_alloc_after(k);
    gmle_status s = gmle_model_load(ctx, p, &back);
    gmle__test_fail_alloc_after(0);
    if (s == GMLE_OK) {
      succeeded = 1;
      CHECK(models_identical(m, back));
    } else {
      CHECK_MSG(s == GMLE_E_OUT_OF_MEMORY, "k=%ld: %s: %s", k,
                gmle_status_name(s), gmle_context_error(ctx));
      CHECK(back == NULL);
    }
    gmle_model_free(back);
  }
  CHECK(succeeded);
  gmle_model_free(m);
  remove(p);
}

/* ------------------------------------------------------------------------ */
/* Damage (BAD_INPUTS 22)                                                   */
/* ------------------------------------------------------------------------ */

TEST(model_file_rejects_truncation_at_every_offset) {
  gmle_model *m = random_model(5, GMLE_COV_FULL, 2, 2, 1);
  CHECK(m != NULL);
  if (!m)
    return;
  const char *p = tmp("t.npz"), *q = tmp("t_cut.npz");
  CHECK_STATUS(gmle_model_save(m, p), GMLE_OK);
  size_t n = 0;
  unsigned char *b = slurp(p, &n);
  CHECK(b && n > 100);
  int bad = 0;
  spit(q, b, n);
  for (size_t len = n; b && len-- > 0;) {
    CHECK(truncate(q, (off_t)len) == 0); /* shorter and shorter */
    gmle_model *back = NULL;
    gmle_status s = gmle_model_load(ctx, q, &back);
    if (s == GMLE_OK || back || !strstr(gmle_context_error(ctx), q)) {
      if (bad++ < 5)
        printf("  truncated to %zu: %s: %s\n", len, gmle_status_name(s),
               gmle_context_error(ctx));
    }
    gmle_model_free(back);
  }
  CHECK(bad == 0);
  /* The message names the file and an offset. */
  spit(q, b, n - 1);
  gmle_model *back = NULL;
  CHECK_STATUS(gmle_model_load(ctx, q, &back), GMLE_E_CORRUPT);
  CHECK_ERROR_HAS(ctx, "byte ");
  free(b);
  gmle_model_free(m);
  remove(p);
  remove(q);
}

/* Offsets of the zip fields that carry no meaning for reading (version made
 * by, internal and external attributes of each central entry). */
static int informational(const unsigned char *b, size_t n, size_t off) {
  size_t eocd = n - 22;
  size_t cd = gmle__ld_le32(b + eocd + 16);
  for (size_t p = cd; p + 46 <= eocd;) {
    if ((off >= p + 4 && off < p + 6) || (off >= p + 36 && off < p + 42))
      return 1;
    p += 46 + gmle__ld_le16(b + p + 28) + gmle__ld_le16(b + p + 30) +
         gmle__ld_le16(b + p + 32);
  }
  return 0;
}

TEST(model_file_rejects_single_bit_flips) {
  gmle_model *m = random_model(6, GMLE_COV_FULL, 2, 3, 1);
  CHECK(m != NULL);
  if (!m)
    return;
  const char *p = tmp("f.npz"), *q = tmp("f_flip.npz");
  CHECK_STATUS(gmle_model_save(m, p), GMLE_OK);
  size_t n = 0;
  unsigned char *b = slurp(p, &n);
  CHECK(b != NULL);
  int undetected = 0, harmless = 0, crc = 0;
  spit(q, b, n);
  FILE *f = fopen(q, "r+b"); /* flip bytes in place: fast on any disk */
  CHECK(f != NULL);
  if (!f)
    b = (free(b), NULL);
  for (size_t off = 0; b && off < n; off++) {
    for (int bit = 0; bit < 8; bit++) {
      poke(f, off, (unsigned char)(b[off] ^ (1u << bit)));
      gmle_model *back = NULL;
      gmle_status s = gmle_model_load(ctx, q, &back);
      if (s == GMLE_OK) {
        /* Only the informational fields may change without an error, and
         * then the model is exactly the same. */
        if (informational(b, n, off) && models_identical(m, back)) {
          harmless++;
        } else if (undetected++ < 5) {
          printf("  flip at byte %zu bit %d undetected\n", off, bit);
        }
      } else {
        CHECK(back == NULL);
        crc += strstr(gmle_context_error(ctx), "CRC") != NULL;
      }
      gmle_model_free(back);
    }
    poke(f, off, b[off]);
  }
  if (f)
    fclose(f);
  CHECK(undetected == 0);
  CHECK(crc > 0);
  CHECK_MSG(harmless == 8 * 8 * 8, "%d", harmless); /* 8 members x 8 bytes */
  free(b);
  gmle_model_free(m);
  remove(p);
  remove(q);
}

TEST(model_file_rejects_future_format_version) {
  base_model b;
  base_init(&b);
  CHECK_STATUS(load_base(&b, "v1.npz"), GMLE_OK);
  b.version = 2;
  CHECK_STATUS(load_base(&b, "v2.npz"), GMLE_E_UNSUPPORTED_VERSION);
  CHECK_ERROR_HAS(ctx, "format_version 2");
  CHECK_ERROR_HAS(ctx, "v2.npz");
  /* A newer version is reported even when the rest changed shape. */
  b.a[2].shape[1] = 1;
  b.a[2].bytes = 16;
  CHECK_STATUS(load_base(&b, "v2.npz"), GMLE_E_UNSUPPORTED_VERSION);
  base_init(&b);
  b.version = 0;
  CHECK_STATUS(load_base(&b, "v0.npz"), GMLE_E_BAD_FORMAT);
  remove(tmp("v1.npz"));
  remove(tmp("v2.npz"));
  remove(tmp("v0.npz"));
}

TEST(model_file_rejects_wrong_byte_order_marker) {
  /* The same float64 bytes declared big-endian are different numbers: the
   * model either fails validation or loads with converted values, never
   * the little-endian bits. Here 2.0 read as '>f8' is 3.16e-322. */
  base_model b;
  base_init(&b);
  b.a[3].descr = ">f8";
  CHECK_STATUS(load_base(&b, "be.npz"), GMLE_E_INVALID_MODEL);
  /* Genuine big-endian arrays load. */
  base_init(&b);
  unsigned char be[64];
  for (int i = 0; i < 8; i++) {
    uint64_t u;
    memcpy(&u, &b.covs[i], 8);
    for (int k = 0; k < 8; k++)
      be[8 * i + k] = (unsigned char)(u >> (56 - 8 * k));
  }
  b.a[3].descr = ">f8";
  b.a[3].data = be;
  CHECK_STATUS(load_base(&b, "be.npz"), GMLE_OK);
  remove(tmp("be.npz"));
}

TEST(model_file_rejects_compressed_members) {
  gmle_model *m = random_model(8, GMLE_COV_DIAG, 2, 2, 0);
  CHECK(m != NULL);
  if (!m)
    return;
  const char *p = tmp("c.npz");
  CHECK_STATUS(gmle_model_save(m, p), GMLE_OK);
  size_t n = 0;
  unsigned char *b = slurp(p, &n);
  /* Mark the first member deflated in its local and central headers. */
  size_t cd = gmle__ld_le32(b + n - 22 + 16);
  gmle__st_le16(b + 8, 8);
  gmle__st_le16(b + cd + 10, 8);
  spit(p, b, n);
  gmle_model *back = NULL;
  CHECK_STATUS(gmle_model_load(ctx, p, &back), GMLE_E_UNSUPPORTED);
  CHECK_ERROR_HAS(ctx, "savez_compressed");
  CHECK_ERROR_HAS(ctx, "format_version.npy");
  free(b);
  gmle_model_free(m);
  remove(p);
}

TEST(model_file_rejects_missing_members_and_bad_shapes) {
  base_model b;
  base_init(&b);
  /* Without counts, rows and classes: still a model. */
  CHECK(write_npz(tmp("s.npz"), b.a, 5) == 0);
  gmle_model *m = NULL;
  CHECK_STATUS(gmle_model_load(ctx, tmp("s.npz"), &m), GMLE_OK);
  gmle_model_free(m);
  m = NULL;
  /* Without priors: not a model. */
  CHECK(write_npz(tmp("s.npz"), b.a, 4) == 0);
  CHECK_STATUS(gmle_model_load(ctx, tmp("s.npz"), &m), GMLE_E_BAD_FORMAT);
  CHECK_ERROR_HAS(ctx, "priors.npy");
  base_init(&b);
  b.a[3].shape[2] = 1; /* covariances (2, 2, 1) */
  b.a[3].bytes = 32;
  CHECK_STATUS(load_base(&b, "s.npz"), GMLE_E_BAD_FORMAT);
  CHECK_ERROR_HAS(ctx, "covariances.npy");
  CHECK_ERROR_HAS(ctx, "(2, 2, 2)");
  base_init(&b);
  b.a[4].shape[0] = 1; /* priors (1,) */
  b.a[4].bytes = 8;
  CHECK_STATUS(load_base(&b, "s.npz"), GMLE_E_BAD_FORMAT);
  base_init(&b);
  gmle__st_le32(b.covtype, 'F');
  CHECK_STATUS(load_base(&b, "s.npz"), GMLE_E_BAD_FORMAT);
  CHECK_ERROR_HAS(ctx, "covariance_type 'Full'");
  base_init(&b);
  b.a[2].descr = "|O";
  CHECK_STATUS(load_base(&b, "s.npz"), GMLE_E_UNSUPPORTED);
  base_init(&b);
  b.a[2].bytes = 40; /* 8 stray bytes after the array */
  {
    double big[5] = {0, 1, 2, 3, 4};
    b.a[2].data = big;
    CHECK_STATUS(load_base(&b, "s.npz"), GMLE_E_BAD_FORMAT);
    CHECK_ERROR_HAS(ctx, "stray");
  }
  base_init(&b);
  int64_t neg_rows[2] = {-1, 3};
  b.a[6].descr = "<i8";
  b.a[6].data = neg_rows;
  CHECK_STATUS(load_base(&b, "s.npz"), GMLE_E_INVALID_MODEL);
  /* Integer classes other than 0..C-1 become names. */
  base_init(&b);
  b.classes[0] = 3;
  b.classes[1] = -7;
  CHECK(write_npz(tmp("s.npz"), b.a, 8) == 0);
  CHECK_STATUS(gmle_model_load(ctx, tmp("s.npz"), &m), GMLE_OK);
  CHECK(m && strcmp(gmle_model_class_name(m, 0), "3") == 0 &&
        strcmp(gmle_model_class_name(m, 1), "-7") == 0);
  gmle_model_free(m);
  m = NULL;
  /* Not a zip, not there. */
  spit(tmp("s.npz"), "\x93NUMPY", 6);
  CHECK_STATUS(gmle_model_load(ctx, tmp("s.npz"), &m), GMLE_E_BAD_FORMAT);
  CHECK_STATUS(gmle_model_load(ctx, tmp("none.npz"), &m), GMLE_E_IO);
  CHECK_ERROR_HAS(ctx, "none.npz");
  remove(tmp("s.npz"));
}

/* ------------------------------------------------------------------------ */
/* Invalid parameters (BAD_INPUTS 23)                                       */
/* ------------------------------------------------------------------------ */

TEST(model_file_rejects_invalid_parameters) {
  base_model b;
  base_init(&b);
  b.means[3] = NAN;
  CHECK_STATUS(load_base(&b, "i.npz"), GMLE_E_INVALID_MODEL);
  CHECK_ERROR_HAS(ctx, "class 1");
  CHECK_ERROR_HAS(ctx, "i.npz");
  base_init(&b);
  b.covs[4] = 1, b.covs[5] = 2, b.covs[6] = 2, b.covs[7] = 1; /* eig -1 */
  CHECK_STATUS(load_base(&b, "i.npz"), GMLE_E_INVALID_MODEL);
  CHECK_ERROR_HAS(ctx, "class 1");
  base_init(&b);
  b.covs[1] = 0.4; /* not symmetric */
  CHECK_STATUS(load_base(&b, "i.npz"), GMLE_E_INVALID_MODEL);
  CHECK_ERROR_HAS(ctx, "symmetric");
  base_init(&b);
  b.priors[1] = 0.7; /* sum 0.95 */
  CHECK_STATUS(load_base(&b, "i.npz"), GMLE_E_INVALID_MODEL);
  CHECK_ERROR_HAS(ctx, "sum");
  base_init(&b);
  b.counts[0] = -1;
  CHECK_STATUS(load_base(&b, "i.npz"), GMLE_E_INVALID_MODEL);
  CHECK_ERROR_HAS(ctx, "class 0");
  base_init(&b);
  b.covs[0] = INFINITY;
  CHECK_STATUS(load_base(&b, "i.npz"), GMLE_E_INVALID_MODEL);
  remove(tmp("i.npz"));
}

/* ------------------------------------------------------------------------ */
/* numpy interop                                                            */
/* ------------------------------------------------------------------------ */

static int have_numpy(void) {
  return system("python3 -c 'import numpy' >/dev/null 2>&1") == 0;
}

static int run_python(const char *code, const char *arg) {
  const char *py = tmp("t.py");
  if (spit(py, code, strlen(code)) != 0)
    return -1;
  char cmd[4096];
  snprintf(cmd, sizeof cmd, "python3 '%s' '%s' '%s'", py, dir, arg);
  int rc = system(cmd);
  remove(py);
  return rc;
}

/* numpy loads every array of a saved model with the same bits. */
static const char check_py[] =
    "import numpy as np, sys, os\n"
    "d, cov = sys.argv[1], sys.argv[2]\n"
    "z = np.load(os.path.join(d, 'np.npz'))\n"
    "def raw(n, dt): return np.fromfile(os.path.join(d, n + '.bin'), dt)\n"
    "C, D = 5, 3\n"
    "shape = {'full': (C, D, D), 'diag': (C, D), 'spherical': (C,),\n"
    "         'tied': (D, D)}[cov]\n"
    "ok = z['format_version'].shape == () and z['format_version'] == 1\n"
    "ok &= z['format_version'].dtype == np.int64\n"
    "ok &= str(z['covariance_type']) == cov\n"
    "ok &= z['means'].dtype == np.float64 and z['means'].shape == (C, D)\n"
    "ok &= z['means'].tobytes() == raw('means', '<f8').tobytes()\n"
    "ok &= z['covariances'].shape == shape\n"
    "ok &= z['covariances'].tobytes() == raw('covs', '<f8').tobytes()\n"
    "ok &= z['priors'].tobytes() == raw('priors', '<f8').tobytes()\n"
    "ok &= z['counts'].tobytes() == raw('counts', '<f8').tobytes()\n"
    "ok &= z['rows'].dtype == np.uint64\n"
    "ok &= z['rows'].tobytes() == raw('rows', '<u8').tobytes()\n"
    "names = open(os.path.join(d, 'names.txt'), 'rb').read()\n"
    "names = names.decode('utf-8', 'surrogateescape').split('\\n')[:-1]\n"
    "ok &= z['classes'].dtype.kind == 'U' and list(z['classes']) == names\n"
    "ok &= sorted(z.files) == sorted(['format_version', 'covariance_type',\n"
    "    'means', 'covariances', 'priors', 'counts', 'rows', 'classes'])\n"
    "# Re-save every array with numpy: gmle must load that too.\n"
    "np.savez(os.path.join(d, 'np2.npz'), **{k: z[k] for k in z.files})\n"
    "sys.exit(0 if ok else 1)\n";

static void dump(const char *name, const void *p, size_t n) {
  spit(tmp(name), p, n);
}

TEST(model_file_numpy_reads_saved_models_bit_exact) {
  if (!have_numpy()) {
    printf("  skipped: python3 with numpy not available\n");
    return;
  }
  for (int k = 0; k < 4; k++) {
    const size_t C = 5, D = 3;
    gmle_model *m = random_model(40 + (uint64_t)k, all_covs[k], C, D, 1);
    CHECK(m != NULL);
    if (!m)
      continue;
    CHECK_STATUS(gmle_model_save(m, tmp("np.npz")), GMLE_OK);
    dump("means.bin", m->means, C * D * 8);
    dump("covs.bin", m->covars, cov_len(m->cov, D, C) * 8);
    dump("priors.bin", m->priors, C * 8);
    dump("counts.bin", m->counts, C * 8);
    dump("rows.bin", m->rows, C * 8);
    char names[1024] = "";
    for (size_t c = 0; c < C; c++) {
      strcat(names, m->names[c]);
      strcat(names, "\n");
    }
    dump("names.txt", names, strlen(names));
    CHECK_MSG(run_python(check_py, cov_str[k]) == 0, "%s", cov_str[k]);
    gmle_model *back = NULL;
    CHECK_STATUS(gmle_model_load(ctx, tmp("np2.npz"), &back), GMLE_OK);
    CHECK_MSG(models_identical(m, back), "%s: numpy re-save", cov_str[k]);
    gmle_model_free(back);
    gmle_model_free(m);
  }
  const char *files[] = {"np.npz",     "np2.npz",    "means.bin", "covs.bin",
                         "priors.bin", "counts.bin", "rows.bin",  "names.txt"};
  for (size_t i = 0; i < sizeof files / sizeof *files; i++)
    remove(tmp(files[i]));
}

static const char write_py[] =
    "import numpy as np, sys, os\n"
    "d, what = sys.argv[1], sys.argv[2]\n"
    "means = np.array([[0., 1., 2.], [3., 4., 5.]])\n"
    "covs = np.array([[1., 2., 3.], [.5, .25, .125]])\n"
    "kw = dict(means=means, covariances=covs, priors=np.array([.5, .5]),\n"
    "          counts=np.array([4., 4.]), rows=np.array([4, 4]),\n"
    "          classes=np.array(['setosa', 'versi\\u00e7olor']),\n"
    "          covariance_type='diag', format_version=1)\n"
    "p = os.path.join(d, 'py.npz')\n"
    "if what == 'plain': np.savez(p, **kw)\n"
    "if what == 'compressed': np.savez_compressed(p, **kw)\n"
    "if what == 'mixed':\n"
    "    kw['means'] = np.asfortranarray(means.astype('>f4'))\n"
    "    kw['covariances'] = covs.astype('<f2')\n"
    "    kw['classes'] = np.array([b'a', b'bb'])\n"
    "    kw['rows'] = np.array([4, 4], dtype='>i2')\n"
    "    np.savez(p, **kw)\n"
    "if what == 'future':\n"
    "    kw['format_version'] = 7\n"
    "    np.savez(p, **kw)\n"
    "if what == 'bad':\n"
    "    kw['priors'] = np.array([.5, .6])\n"
    "    np.savez(p, **kw)\n";

TEST(model_file_loads_what_numpy_savez_writes) {
  if (!have_numpy()) {
    printf("  skipped: python3 with numpy not available\n");
    return;
  }
  gmle_model *m = NULL;
  CHECK(run_python(write_py, "plain") == 0);
  CHECK_STATUS(gmle_model_load(ctx, tmp("py.npz"), &m), GMLE_OK);
  if (m) {
    double v[9];
    CHECK(gmle_model_cov_type(m) == GMLE_COV_DIAG);
    CHECK(gmle_model_dim(m) == 3 && gmle_model_n_classes(m) == 2);
    CHECK_STATUS(gmle_model_mean(m, 1, v), GMLE_OK);
    CHECK(v[0] == 3 && v[1] == 4 && v[2] == 5);
    CHECK_STATUS(gmle_model_covariance(m, 1, v), GMLE_OK);
    CHECK(v[0] == .5 && v[4] == .25 && v[8] == .125 && v[1] == 0);
    CHECK(strcmp(gmle_model_class_name(m, 1), "versi\xc3\xa7olor") == 0);
    CHECK(m->rows[0] == 4);
  }
  gmle_model_free(m);
  m = NULL;
  CHECK(run_python(write_py, "mixed") == 0);
  CHECK_STATUS(gmle_model_load(ctx, tmp("py.npz"), &m), GMLE_OK);
  if (m) {
    double v[9];
    CHECK_STATUS(gmle_model_mean(m, 1, v), GMLE_OK);
    CHECK(v[0] == 3 && v[1] == 4 && v[2] == 5);
    CHECK_STATUS(gmle_model_covariance(m, 0, v), GMLE_OK);
    CHECK(v[0] == 1 && v[4] == 2 && v[8] == 3);
    CHECK(strcmp(gmle_model_class_name(m, 1), "bb") == 0);
  }
  gmle_model_free(m);
  m = NULL;
  CHECK(run_python(write_py, "compressed") == 0);
  CHECK_STATUS(gmle_model_load(ctx, tmp("py.npz"), &m), GMLE_E_UNSUPPORTED);
  CHECK_ERROR_HAS(ctx, "savez_compressed");
  CHECK(run_python(write_py, "future") == 0);
  CHECK_STATUS(gmle_model_load(ctx, tmp("py.npz"), &m),
               GMLE_E_UNSUPPORTED_VERSION);
  CHECK(run_python(write_py, "bad") == 0);
  CHECK_STATUS(gmle_model_load(ctx, tmp("py.npz"), &m), GMLE_E_INVALID_MODEL);
  CHECK(m == NULL);
  remove(tmp("py.npz"));
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
  RUN(model_file_round_trips_bit_exact_every_cov_type);
  RUN(model_file_round_trips_one_class_one_feature);
  RUN(model_file_save_failure_leaves_nothing);
  RUN(model_file_load_survives_allocation_failures);
  RUN(model_file_rejects_truncation_at_every_offset);
  RUN(model_file_rejects_single_bit_flips);
  RUN(model_file_rejects_future_format_version);
  RUN(model_file_rejects_wrong_byte_order_marker);
  RUN(model_file_rejects_compressed_members);
  RUN(model_file_rejects_missing_members_and_bad_shapes);
  RUN(model_file_rejects_invalid_parameters);
  RUN(model_file_numpy_reads_saved_models_bit_exact);
  RUN(model_file_loads_what_numpy_savez_writes);
  tu_tmpdir_remove(dir);
  gmle_context_free(ctx);
  return CHECK_DONE();
}
