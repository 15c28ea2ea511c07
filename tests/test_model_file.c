/* test_model_file.c -- gmle_model_save / gmle_model_load (.npz): bit-exact
 * round trips (fitted models keep their training log-likelihood and fit
 * reports), truncation and bit flips (BAD_INPUTS 22), invalid parameters
 * (23), older files, and numpy interop when python3 with numpy is
 * available. */
#define _POSIX_C_SOURCE 200809L
#include "check.h"
#include "testutil.h"

#include "gmle_io.h"

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

static const char *tmp(const char *name) { return tu_tmp_path(dir, name); }

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
    for (size_t c = 0; c < C; c++) {
      m->rows[c] = (uint64_t)(counts[c]) + 7u * c + ((uint64_t)1 << 40);
      m->reports[c].rows = m->rows[c];
    }
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

/* Bitwise equality of the fit reports (field by field: no padding). */
static int reports_identical(const gmle_model *a, const gmle_model *b) {
  for (size_t c = 0; c < a->n_classes; c++) {
    const gmle_class_report *x = &a->reports[c], *y = &b->reports[c];
    if (x->rows != y->rows || x->n_floored != y->n_floored ||
        x->empty != y->empty || !tu_bits_equal(&x->weight, &y->weight, 1) ||
        !tu_bits_equal(&x->min_eigenvalue, &y->min_eigenvalue, 1) ||
        !tu_bits_equal(&x->max_eigenvalue, &y->max_eigenvalue, 1) ||
        !tu_bits_equal(&x->condition, &y->condition, 1) ||
        !tu_bits_equal(&x->shrinkage, &y->shrinkage, 1))
      return 0;
  }
  return 1;
}

/* Bitwise equality of the training log-likelihood fields. */
static int train_identical(const gmle_model *a, const gmle_model *b) {
  if (a->has_train != b->has_train)
    return 0;
  return !a->has_train ||
         (tu_bits_equal(&a->train_loglik, &b->train_loglik, 1) &&
          tu_bits_equal(&a->train_loglik_joint, &b->train_loglik_joint, 1) &&
          tu_bits_equal(&a->train_n, &b->train_n, 1));
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
  return train_identical(a, b) && reports_identical(a, b);
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
      unsigned char *b1 = tu_slurp(p, &n1);
      CHECK_STATUS(gmle_model_save(back, tmp("rt2.npz")), GMLE_OK);
      unsigned char *b2 = tu_slurp(tmp("rt2.npz"), &n2);
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

/* ------------------------------------------------------------------------ */
/* Fitted models: training log-likelihood and fit reports                   */
/* ------------------------------------------------------------------------ */

/* Statistics of a random labelled, weighted data set through
 * gmle_stats_add. empty_last: no rows in the last class. */
static gmle_stats *fitted_stats(uint64_t seed, size_t n, size_t D, size_t C,
                                int empty_last) {
  tu_dataset ds;
  if (tu_dataset_make(&ds, seed, n, D, C, GMLE_F64, D, 0.0, 1) != 0)
    return NULL;
  for (size_t i = 0; empty_last && i < n; i++)
    if (ds.labels[i] == (int32_t)(C - 1))
      ds.labels[i] = 0;
  gmle_stats *st = NULL;
  gmle_status s = gmle_stats_create(ctx, D, C, &st);
  if (s == GMLE_OK)
    s = gmle_stats_add(st, ds.x, GMLE_F64, n, ds.stride, ds.labels,
                       ds.weights);
  tu_dataset_free(&ds);
  if (s != GMLE_OK) {
    printf("  stats: %s: %s\n", gmle_status_name(s), gmle_context_error(ctx));
    gmle_stats_free(st);
    return NULL;
  }
  return st;
}

/* gmle_model_loglik (both), gmle_model_information and every report of a
 * and b agree bit for bit (statuses included). */
static int same_fit_results(const gmle_model *a, const gmle_model *b) {
  int ok = 1;
  for (int wp = 0; wp < 2; wp++) {
    double x = 1, y = 2;
    gmle_status sa = gmle_model_loglik(a, wp, &x);
    gmle_status sb = gmle_model_loglik(b, wp, &y);
    ok &= sa == sb && (sa != GMLE_OK || tu_bits_equal(&x, &y, 1));
  }
  double bic[2] = {1, 2}, aic[2] = {3, 4};
  gmle_status sa = gmle_model_information(a, &bic[0], &aic[0]);
  gmle_status sb = gmle_model_information(b, &bic[1], &aic[1]);
  ok &= sa == sb && (sa != GMLE_OK || (tu_bits_equal(&bic[0], &bic[1], 1) &&
                                       tu_bits_equal(&aic[0], &aic[1], 1)));
  ok &= gmle_model_n_params(a) == gmle_model_n_params(b);
  for (size_t c = 0; c < gmle_model_n_classes(a); c++) {
    gmle_class_report ra, rb;
    memset(&ra, 0, sizeof ra);
    memset(&rb, 0, sizeof rb);
    ok &= gmle_model_report(a, c, &ra) == GMLE_OK &&
          gmle_model_report(b, c, &rb) == GMLE_OK;
    ok &= ra.rows == rb.rows && ra.n_floored == rb.n_floored &&
          ra.empty == rb.empty && tu_bits_equal(&ra.weight, &rb.weight, 1) &&
          tu_bits_equal(&ra.min_eigenvalue, &rb.min_eigenvalue, 1) &&
          tu_bits_equal(&ra.max_eigenvalue, &rb.max_eigenvalue, 1) &&
          tu_bits_equal(&ra.condition, &rb.condition, 1) &&
          tu_bits_equal(&ra.shrinkage, &rb.shrinkage, 1);
  }
  return ok;
}

TEST(model_file_keeps_training_loglik_and_reports_of_fits) {
  const size_t C = 3, D = 4;
  gmle_stats *st = fitted_stats(11, 600, D, C, 0);
  gmle_stats *st_empty = fitted_stats(12, 300, D, C, 1);
  CHECK(st && st_empty);
  if (!st || !st_empty) {
    gmle_stats_free(st);
    gmle_stats_free(st_empty);
    return;
  }
  const double zero_prior[3] = {0.0, 0.25, 0.75};
  int saw_floored = 0, saw_shrunk = 0, saw_minus_inf = 0, saw_empty = 0;
  for (int k = 0; k < 4; k++) {
    for (int variant = 0; variant < 4; variant++) {
      gmle_fit_options opt;
      gmle_fit_options_init(&opt);
      opt.cov = all_covs[k];
      const gmle_stats *from = st;
      if (variant == 1) {
        opt.max_condition = 3; /* floors eigenvalues: n_floored > 0 */
        opt.shrinkage = 1;
      } else if (variant == 2) {
        opt.priors = zero_prior; /* class 0 has rows: joint loglik -inf */
      } else if (variant == 3) {
        from = st_empty;
      }
      gmle_model *m = NULL;
      CHECK_STATUS(gmle_fit(from, &opt, &m), GMLE_OK);
      if (!m) {
        printf("  fit %s variant %d: %s\n", cov_str[k], variant,
               gmle_context_error(ctx));
        continue;
      }
      double ll = 0;
      CHECK_STATUS(gmle_model_loglik(m, 0, &ll), GMLE_OK);
      CHECK(isfinite(ll));
      CHECK_STATUS(gmle_model_loglik(m, 1, &ll), GMLE_OK);
      saw_minus_inf += ll == -INFINITY;
      for (size_t c = 0; c < C; c++) {
        saw_floored += m->reports[c].n_floored > 0;
        saw_shrunk += m->reports[c].shrinkage > 0;
        saw_empty += m->reports[c].empty;
      }
      if (variant == 0) {
        const char *names[3] = {"a", "b\xff", "c"};
        CHECK_STATUS(gmle_model_set_class_names(m, names), GMLE_OK);
      }
      const char *p = tmp("fit.npz");
      CHECK_STATUS(gmle_model_save(m, p), GMLE_OK);
      gmle_model *back = NULL;
      CHECK_STATUS(gmle_model_load(ctx, p, &back), GMLE_OK);
      CHECK_MSG(back && back->has_train, "%s variant %d: %s", cov_str[k],
                variant, gmle_context_error(ctx));
      CHECK_MSG(models_identical(m, back), "%s variant %d", cov_str[k],
                variant);
      CHECK_MSG(back && same_fit_results(m, back), "%s variant %d",
                cov_str[k], variant);
      /* Saving the loaded model gives the same bytes. */
      size_t n1 = 0, n2 = 0;
      CHECK_STATUS(gmle_model_save(back, tmp("fit2.npz")), GMLE_OK);
      unsigned char *b1 = tu_slurp(p, &n1), *b2 = tu_slurp(tmp("fit2.npz"), &n2);
      CHECK(b1 && b2 && n1 == n2 && memcmp(b1, b2, n1) == 0);
      free(b1);
      free(b2);
      gmle_model_free(back);
      gmle_model_free(m);
    }
  }
  /* Every kind of value went through a file at least once. */
  CHECK(saw_floored > 0 && saw_shrunk > 0 && saw_minus_inf > 0 &&
        saw_empty > 0);
  gmle_stats_free(st);
  gmle_stats_free(st_empty);
  remove(tmp("fit.npz"));
  remove(tmp("fit2.npz"));
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
  unsigned char *before = tu_slurp(p, &n0);
  gmle_model *other = random_model(2, GMLE_COV_FULL, 3, 3, 1);
  for (long k = 1; k < 100; k++) {
    gmle__test_fail_alloc_after(k);
    gmle_status s = gmle_model_save(other, p);
    gmle__test_fail_alloc_after(0);
    if (s == GMLE_OK)
      break;
    CHECK_STATUS(s, GMLE_E_OUT_OF_MEMORY);
    size_t n1 = 0;
    unsigned char *now = tu_slurp(p, &n1);
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
  unsigned char *b = tu_slurp(p, &n);
  CHECK(b && n > 100);
  int bad = 0;
  tu_spit(q, b, n);
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
  tu_spit(q, b, n - 1);
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
  unsigned char *b = tu_slurp(p, &n);
  CHECK(b != NULL);
  int undetected = 0, harmless = 0, crc = 0;
  tu_spit(q, b, n);
  FILE *f = fopen(q, "r+b"); /* flip bytes in place: fast on any disk */
  CHECK(f != NULL);
  if (!f)
    b = (free(b), NULL);
  for (size_t off = 0; b && off < n; off++) {
    for (int bit = 0; bit < 8; bit++) {
      tu_poke(f, off, (unsigned char)(b[off] ^ (1u << bit)));
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
    tu_poke(f, off, b[off]);
  }
  if (f)
    fclose(f);
  CHECK(undetected == 0);
  CHECK(crc > 0);
  /* 8 informational bytes per member: 8 members, 6 report_* members */
  CHECK_MSG(harmless == 14 * 8 * 8, "%d", harmless);
  free(b);
  gmle_model_free(m);
  remove(p);
  remove(q);
}

TEST(model_file_rejects_future_format_version) {
  base_model b;
  base_init(&b);
  CHECK_STATUS(load_base(&b, "v1.npz"), GMLE_OK);
  /* Version 2 is the mixtures' (test_mixture_file.c); 3 is the future. */
  b.version = 3;
  CHECK_STATUS(load_base(&b, "v3.npz"), GMLE_E_UNSUPPORTED_VERSION);
  CHECK_ERROR_HAS(ctx, "format_version 3");
  CHECK_ERROR_HAS(ctx, "v3.npz");
  /* A newer version is reported even when the rest changed shape. */
  b.a[2].shape[1] = 1;
  b.a[2].bytes = 16;
  CHECK_STATUS(load_base(&b, "v3.npz"), GMLE_E_UNSUPPORTED_VERSION);
  base_init(&b);
  b.version = 0;
  CHECK_STATUS(load_base(&b, "v0.npz"), GMLE_E_BAD_FORMAT);
  remove(tmp("v1.npz"));
  remove(tmp("v3.npz"));
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
  unsigned char *b = tu_slurp(p, &n);
  /* Mark the first member deflated in its local and central headers. */
  size_t cd = gmle__ld_le32(b + n - 22 + 16);
  gmle__st_le16(b + 8, 8);
  gmle__st_le16(b + cd + 10, 8);
  tu_spit(p, b, n);
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
  tu_spit(tmp("s.npz"), "\x93NUMPY", 6);
  CHECK_STATUS(gmle_model_load(ctx, tmp("s.npz"), &m), GMLE_E_BAD_FORMAT);
  CHECK_STATUS(gmle_model_load(ctx, tmp("none.npz"), &m), GMLE_E_IO);
  CHECK_ERROR_HAS(ctx, "none.npz");
  remove(tmp("s.npz"));
}

TEST(model_file_loads_older_files_without_fit_members) {
  /* The members of gmle's first model files only: no train_*, no report_*.
   * The model is what gmle_model_create makes of the same parameters. */
  base_model b;
  base_init(&b);
  CHECK(write_npz(tmp("old.npz"), b.a, 8) == 0);
  gmle_model *m = NULL, *ref = NULL;
  CHECK_STATUS(gmle_model_load(ctx, tmp("old.npz"), &m), GMLE_OK);
  CHECK_STATUS(gmle_model_create(ctx, 2, 2, GMLE_COV_FULL, b.means, b.covs,
                                 b.priors, b.counts, &ref),
               GMLE_OK);
  if (m && ref) {
    CHECK(m->has_train == 0);
    double v = 0;
    CHECK_STATUS(gmle_model_loglik(m, 1, &v), GMLE_E_UNSUPPORTED);
    CHECK_STATUS(gmle_model_information(m, &v, NULL), GMLE_E_UNSUPPORTED);
    for (size_t c = 0; c < 2; c++)
      ref->reports[c].rows = b.rows[c];
    CHECK(reports_identical(m, ref));
  }
  gmle_model_free(m);
  gmle_model_free(ref);
  remove(tmp("old.npz"));
}

/* The base model plus train_* and report_* members (a[8..16]). */
typedef struct fit_model {
  base_model b;
  double ll, llj, n;
  double min_eig[2], max_eig[2], cond[2], shrink[2];
  uint64_t floored[2];
  unsigned char empty[2];
  arr a[17];
} fit_model;

static void fit_init(fit_model *f) {
  memset(f, 0, sizeof *f);
  base_init(&f->b);
  f->ll = -123.5;
  f->llj = -150.25;
  f->n = 40;
  for (int c = 0; c < 2; c++) {
    f->min_eig[c] = 0.5 + c;
    f->max_eig[c] = 2.5 + c;
    f->cond[c] = f->max_eig[c] / f->min_eig[c];
    f->shrink[c] = 0.125 * c;
    f->floored[c] = (uint64_t)c;
  }
  memcpy(f->a, f->b.a, sizeof f->b.a);
  const arr extra[9] = {
      {"train_loglik", "<f8", 0, {0}, &f->ll, 8},
      {"train_loglik_joint", "<f8", 0, {0}, &f->llj, 8},
      {"train_n", "<f8", 0, {0}, &f->n, 8},
      {"report_min_eigenvalue", "<f8", 1, {2}, f->min_eig, 16},
      {"report_max_eigenvalue", "<f8", 1, {2}, f->max_eig, 16},
      {"report_condition", "<f8", 1, {2}, f->cond, 16},
      {"report_n_floored", "<u8", 1, {2}, f->floored, 16},
      {"report_empty", "|b1", 1, {2}, f->empty, 2},
      {"report_shrinkage", "<f8", 1, {2}, f->shrink, 16},
  };
  memcpy(f->a + 8, extra, sizeof extra);
}

static gmle_status load_fit(fit_model *f, size_t n_arrays, gmle_model **out) {
  const char *p = tmp("x.npz");
  if (write_npz(p, f->a, n_arrays) != 0)
    return GMLE_E_IO;
  gmle_model *m = NULL;
  gmle_status s = gmle_model_load(ctx, p, &m);
  if ((s == GMLE_OK) != (m != NULL))
    s = GMLE_E_INTERNAL;
  if (out)
    *out = m;
  else
    gmle_model_free(m);
  return s;
}

TEST(model_file_checks_fit_members) {
  fit_model f;
  fit_init(&f);
  gmle_model *m = NULL;
  CHECK_STATUS(load_fit(&f, 17, &m), GMLE_OK);
  if (m) {
    double v = 0, bic = 0;
    CHECK_STATUS(gmle_model_loglik(m, 0, &v), GMLE_OK);
    CHECK(v == -123.5);
    CHECK_STATUS(gmle_model_loglik(m, 1, &v), GMLE_OK);
    CHECK(v == -150.25);
    CHECK_STATUS(gmle_model_information(m, &bic, &v), GMLE_OK);
    CHECK(bic == 300.5 + 11 * log(40.0) && v == 300.5 + 22);
    gmle_class_report r;
    CHECK_STATUS(gmle_model_report(m, 1, &r), GMLE_OK);
    CHECK(r.min_eigenvalue == 1.5 && r.max_eigenvalue == 3.5 &&
          r.condition == 3.5 / 1.5 && r.n_floored == 1 && r.empty == 0 &&
          r.shrinkage == 0.125 && r.rows == 30 && r.weight == 30);
  }
  gmle_model_free(m);
  m = NULL;
  /* Reports without train_*, and numpy's other dtypes, load. */
  fit_init(&f);
  int32_t floored32[2] = {0, 2};
  uint8_t empty8[2] = {0, 1};
  f.a[14].descr = "<i4";
  f.a[14].data = floored32;
  f.a[14].bytes = 8;
  f.a[15].descr = "|u1";
  f.a[15].data = empty8;
  memmove(f.a + 8, f.a + 11, 6 * sizeof *f.a);
  CHECK_STATUS(load_fit(&f, 14, &m), GMLE_OK);
  CHECK(m && !m->has_train && m->reports[1].n_floored == 2 &&
        m->reports[1].empty == 1 && m->reports[1].min_eigenvalue == 1.5);
  gmle_model_free(m);
  m = NULL;
  /* Training values: finite (-inf joint only with a zero prior). */
  fit_init(&f);
  f.ll = NAN;
  CHECK_STATUS(load_fit(&f, 17, NULL), GMLE_E_INVALID_MODEL);
  CHECK_ERROR_HAS(ctx, "train_loglik.npy");
  fit_init(&f);
  f.ll = 1e3; /* positive: densities above 1 */
  CHECK_STATUS(load_fit(&f, 17, NULL), GMLE_OK);
  fit_init(&f);
  f.llj = -INFINITY;
  CHECK_STATUS(load_fit(&f, 17, NULL), GMLE_E_INVALID_MODEL);
  CHECK_ERROR_HAS(ctx, "train_loglik_joint.npy");
  f.b.priors[0] = 0, f.b.priors[1] = 1;
  CHECK_STATUS(load_fit(&f, 17, NULL), GMLE_OK);
  f.llj = NAN;
  CHECK_STATUS(load_fit(&f, 17, NULL), GMLE_E_INVALID_MODEL);
  fit_init(&f);
  f.n = -1;
  CHECK_STATUS(load_fit(&f, 17, NULL), GMLE_E_INVALID_MODEL);
  CHECK_ERROR_HAS(ctx, "train_n.npy");
  /* train_* go together; scalars only. */
  fit_init(&f);
  f.a[9] = f.a[16];
  CHECK_STATUS(load_fit(&f, 16, NULL), GMLE_E_BAD_FORMAT);
  CHECK_ERROR_HAS(ctx, "train_loglik_joint.npy");
  fit_init(&f);
  f.a[10].ndim = 1;
  f.a[10].shape[0] = 1;
  CHECK_STATUS(load_fit(&f, 17, NULL), GMLE_E_BAD_FORMAT);
  CHECK_ERROR_HAS(ctx, "train_n.npy");
  /* Reports: one value per class, in range. */
  fit_init(&f);
  f.a[12].shape[0] = 1;
  f.a[12].bytes = 8;
  CHECK_STATUS(load_fit(&f, 17, NULL), GMLE_E_BAD_FORMAT);
  CHECK_ERROR_HAS(ctx, "report_max_eigenvalue.npy");
  CHECK_ERROR_HAS(ctx, "(2,)");
  fit_init(&f);
  f.min_eig[1] = -1;
  CHECK_STATUS(load_fit(&f, 17, NULL), GMLE_E_INVALID_MODEL);
  CHECK_ERROR_HAS(ctx, "class 1");
  fit_init(&f);
  f.min_eig[0] = 5; /* above the largest */
  CHECK_STATUS(load_fit(&f, 17, NULL), GMLE_E_INVALID_MODEL);
  fit_init(&f);
  f.min_eig[0] = f.max_eig[0] = f.cond[0] = NAN; /* not computed: fine */
  CHECK_STATUS(load_fit(&f, 17, NULL), GMLE_OK);
  fit_init(&f);
  f.cond[0] = INFINITY;
  CHECK_STATUS(load_fit(&f, 17, NULL), GMLE_OK);
  f.cond[0] = -2;
  CHECK_STATUS(load_fit(&f, 17, NULL), GMLE_E_INVALID_MODEL);
  CHECK_ERROR_HAS(ctx, "report_condition.npy");
  fit_init(&f);
  f.floored[1] = 3; /* more than D = 2 */
  CHECK_STATUS(load_fit(&f, 17, NULL), GMLE_E_INVALID_MODEL);
  CHECK_ERROR_HAS(ctx, "report_n_floored.npy");
  fit_init(&f);
  f.empty[0] = 2;
  f.a[15].descr = "|u1";
  CHECK_STATUS(load_fit(&f, 17, NULL), GMLE_E_INVALID_MODEL);
  CHECK_ERROR_HAS(ctx, "report_empty.npy");
  fit_init(&f);
  f.shrink[1] = 1.5;
  CHECK_STATUS(load_fit(&f, 17, NULL), GMLE_E_INVALID_MODEL);
  CHECK_ERROR_HAS(ctx, "report_shrinkage.npy");
  fit_init(&f);
  f.a[14].descr = "<f8"; /* counts of floored values must be integers */
  CHECK_STATUS(load_fit(&f, 17, NULL), GMLE_E_BAD_FORMAT);
  remove(tmp("x.npz"));
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

static int have_numpy(void) { return tu_have_python("numpy"); }

static int run_python(const char *code, const char *arg) {
  return tu_run_python(dir, code, arg);
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
    "rep = ['report_min_eigenvalue', 'report_max_eigenvalue',\n"
    "       'report_condition', 'report_n_floored', 'report_empty',\n"
    "       'report_shrinkage']\n"
    "ok &= sorted(z.files) == sorted(['format_version', 'covariance_type',\n"
    "    'means', 'covariances', 'priors', 'counts', 'rows', 'classes'] + rep)\n"
    "ok &= all(z[k].shape == (C,) for k in rep)\n"
    "ok &= z['report_n_floored'].dtype == np.uint64\n"
    "ok &= z['report_empty'].dtype == np.bool_\n"
    "ok &= z['report_shrinkage'].dtype == np.float64\n"
    "# Re-save every array with numpy: gmle must load that too.\n"
    "np.savez(os.path.join(d, 'np2.npz'), **{k: z[k] for k in z.files})\n"
    "sys.exit(0 if ok else 1)\n";

static void dump(const char *name, const void *p, size_t n) {
  tu_spit(tmp(name), p, n);
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

/* numpy reads the training log-likelihood and the reports of a fitted
 * model with the same bits; its re-save loads back to the same results. */
static const char fit_py[] =
    "import numpy as np, sys, os\n"
    "d = sys.argv[1]\n"
    "z = np.load(os.path.join(d, 'fit.npz'))\n"
    "raw = np.fromfile(os.path.join(d, 'fit.bin'), '<f8')\n"
    "tr = ['train_loglik', 'train_loglik_joint', 'train_n']\n"
    "ok = all(z[k].shape == () and z[k].dtype == np.float64 for k in tr)\n"
    "got = np.array([z[k] for k in tr] + [z['report_' + k][c]\n"
    "    for k in ('min_eigenvalue', 'max_eigenvalue', 'condition',\n"
    "              'shrinkage') for c in range(3)])\n"
    "ok &= got.tobytes() == raw.tobytes()\n"
    "ints = [int(v) for v in open(os.path.join(d, 'fit.txt')).read().split()]\n"
    "ok &= [int(v) for v in z['report_n_floored']] == ints[:3]\n"
    "ok &= [bool(v) for v in z['report_empty']] == [v == 1 for v in ints[3:]]\n"
    "np.savez(os.path.join(d, 'fit2.npz'), **{k: z[k] for k in z.files})\n"
    "sys.exit(0 if ok else 1)\n";

TEST(model_file_numpy_reads_fit_members) {
  if (!have_numpy()) {
    printf("  skipped: python3 with numpy not available\n");
    return;
  }
  gmle_stats *st = fitted_stats(31, 200, 3, 3, 1);
  CHECK(st != NULL);
  if (!st)
    return;
  gmle_fit_options opt;
  gmle_fit_options_init(&opt);
  opt.shrinkage = 1;
  opt.max_condition = 2;
  gmle_model *m = NULL;
  CHECK_STATUS(gmle_fit(st, &opt, &m), GMLE_OK);
  if (m) {
    CHECK_STATUS(gmle_model_save(m, tmp("fit.npz")), GMLE_OK);
    double v[15] = {m->train_loglik, m->train_loglik_joint, m->train_n};
    char ints[256] = "";
    for (size_t c = 0; c < 3; c++) {
      const gmle_class_report *r = &m->reports[c];
      v[3 + c] = r->min_eigenvalue;
      v[6 + c] = r->max_eigenvalue;
      v[9 + c] = r->condition;
      v[12 + c] = r->shrinkage;
      snprintf(ints + strlen(ints), sizeof ints - strlen(ints), "%zu ",
               r->n_floored);
    }
    for (size_t c = 0; c < 3; c++)
      snprintf(ints + strlen(ints), sizeof ints - strlen(ints), "%d ",
               m->reports[c].empty);
    dump("fit.bin", v, sizeof v);
    dump("fit.txt", ints, strlen(ints));
    CHECK(run_python(fit_py, "") == 0);
    gmle_model *back = NULL;
    CHECK_STATUS(gmle_model_load(ctx, tmp("fit2.npz"), &back), GMLE_OK);
    CHECK(back && models_identical(m, back) && same_fit_results(m, back));
    gmle_model_free(back);
  }
  gmle_model_free(m);
  gmle_stats_free(st);
  const char *files[] = {"fit.npz", "fit2.npz", "fit.bin", "fit.txt"};
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
  RUN(model_file_keeps_training_loglik_and_reports_of_fits);
  RUN(model_file_save_failure_leaves_nothing);
  RUN(model_file_load_survives_allocation_failures);
  RUN(model_file_rejects_truncation_at_every_offset);
  RUN(model_file_rejects_single_bit_flips);
  RUN(model_file_rejects_future_format_version);
  RUN(model_file_rejects_wrong_byte_order_marker);
  RUN(model_file_rejects_compressed_members);
  RUN(model_file_rejects_missing_members_and_bad_shapes);
  RUN(model_file_loads_older_files_without_fit_members);
  RUN(model_file_checks_fit_members);
  RUN(model_file_rejects_invalid_parameters);
  RUN(model_file_numpy_reads_saved_models_bit_exact);
  RUN(model_file_numpy_reads_fit_members);
  RUN(model_file_loads_what_numpy_savez_writes);
  tu_tmpdir_remove(dir);
  gmle_context_free(ctx);
  return CHECK_DONE();
}
