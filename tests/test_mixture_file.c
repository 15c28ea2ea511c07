/* test_mixture_file.c -- mixture models in model files (issue 13, item 5):
 * bit-exact round trips of every covariance type, unsupervised (scikit-
 * learn's arrays, no class axis) and per class (a leading class axis), with
 * the EM report; numpy reads every array with the same bits and the shapes
 * scikit-learn's GaussianMixture has; a GaussianMixture given those arrays
 * scores as gmle does (float64, 1e-10); init files that numpy writes with
 * only weights, means, covariances and covariance_type load; bad ones are
 * clear errors naming the file, the member, the class and the sum. The
 * Python parts skip themselves without numpy (and scikit-learn). Files go
 * to a temporary directory, removed with what it holds at the end. */
#define _POSIX_C_SOURCE 200809L
#include "check.h"
#include "testutil.h"

#include "gmle_io.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static gmle_context *ctx;
static char dir[512];

static const char *tmp(const char *name) { return tu_tmp_path(dir, name); }

static const gmle_cov_type all_covs[4] = {GMLE_COV_FULL, GMLE_COV_DIAG,
                                          GMLE_COV_SPHERICAL, GMLE_COV_TIED};

/* The three layouts: an unsupervised mixture, several named classes, and a
 * labelled fit of one class (a class axis, because it has a name). */
typedef struct layout {
  size_t C;
  int named;
  const char *what;
} layout;
static const layout layouts[3] = {
    {1, 0, "unsupervised"}, {3, 1, "per-class"}, {1, 1, "one named class"}};

static const char *const class_names[3] = {"alpha", "b\xc3\xa9ta", "gamma"};

/* A mixture's parameters, in gmle_mixture_create's layouts. */
typedef struct mix {
  gmle_cov_type cov;
  size_t C, K, D;
  double *w, *mu, *cv, *pri, *cnt;
} mix;

static size_t cov_len(const mix *x) {
  switch (x->cov) {
  case GMLE_COV_FULL:
    return x->C * x->K * x->D * x->D;
  case GMLE_COV_DIAG:
    return x->C * x->K * x->D;
  case GMLE_COV_SPHERICAL:
    return x->C * x->K;
  case GMLE_COV_TIED:
    return x->C * x->D * x->D;
  }
  return 0;
}

static void mix_free(mix *x) {
  free(x->w);
  free(x->mu);
  free(x->cv);
  free(x->pri);
  free(x->cnt);
}

/* Random valid parameters: weights summing to 1 per class, spread means,
 * well-conditioned covariances, priors summing to 1. */
static void mix_random(mix *x, uint64_t seed, gmle_cov_type cov, size_t C,
                       size_t K, size_t D) {
  tu_rng r;
  tu_seed(&r, seed);
  x->cov = cov;
  x->C = C;
  x->K = K;
  x->D = D;
  x->w = malloc(C * K * sizeof *x->w);
  x->mu = malloc(C * K * D * sizeof *x->mu);
  x->cv = malloc(cov_len(x) * sizeof *x->cv);
  x->pri = malloc(C * sizeof *x->pri);
  x->cnt = malloc(C * sizeof *x->cnt);
  double psum = 0;
  for (size_t c = 0; c < C; c++) {
    double sum = 0;
    for (size_t k = 0; k < K; k++)
      sum += x->w[c * K + k] = 0.2 + tu_uniform(&r);
    for (size_t k = 0; k < K; k++)
      x->w[c * K + k] /= sum;
    psum += x->pri[c] = 0.5 + tu_uniform(&r);
    x->cnt[c] = 100 + 17.5 * (double)c;
  }
  for (size_t c = 0; c < C; c++)
    x->pri[c] /= psum;
  for (size_t i = 0; i < C * K * D; i++)
    x->mu[i] = 3 * tu_normal(&r);
  if (cov == GMLE_COV_FULL || cov == GMLE_COV_TIED) {
    for (size_t i = 0; i < cov_len(x) / (D * D); i++)
      tu_random_spd(&r, D, 0.3, 3.0, x->cv + i * D * D);
  } else {
    for (size_t i = 0; i < cov_len(x); i++)
      x->cv[i] = 0.2 + 2 * tu_uniform(&r);
  }
}

static const double history[4] = {-5.5, -4.25, -3.375, -3.25};

static void report_fill(gmle_em_report *r) {
  memset(r, 0, sizeof *r);
  r->n_iter = 4;
  r->converged = 1;
  r->lower_bound = -3.25;
  r->n_history = 4;
  r->history = history;
  r->n_reseeded = 2;
  r->n_init = 3;
  r->best_init = 1;
  r->mode = GMLE_EM_HARD;
  r->init = GMLE_INIT_SPLIT;
  r->reg_covar = 1e-6;
  r->n_rows = 1234.5;
}

static gmle_model *mix_model(const mix *x, int named, int with_report) {
  gmle_model *m = NULL;
  gmle_status s = gmle_mixture_create(ctx, x->D, x->C, x->K, x->cov, x->w,
                                      x->mu, x->cv, x->pri, x->cnt, &m);
  if (s != GMLE_OK) {
    printf("  mixture_create: %s\n", gmle_context_error(ctx));
    return NULL;
  }
  if (named && gmle_model_set_class_names(m, class_names) != GMLE_OK)
    printf("  set_class_names: %s\n", gmle_context_error(ctx));
  gmle_em_report r;
  report_fill(&r);
  if (with_report && gmle_model_set_em_report(m, &r) != GMLE_OK)
    printf("  set_em_report: %s\n", gmle_context_error(ctx));
  return m;
}

/* A mixture's arrays as the getters give them (for comparisons). */
typedef struct arrays {
  double *w, *mu, *cv, *prec, *pri, *cnt;
  size_t nw, nmu, ncv, C;
} arrays;

static int arrays_get(const gmle_model *m, arrays *a) {
  mix shape = {.cov = gmle_model_cov_type(m),
               .C = gmle_model_n_classes(m),
               .K = gmle_model_n_components(m),
               .D = gmle_model_dim(m)};
  a->C = shape.C;
  a->nw = shape.C * shape.K;
  a->nmu = a->nw * shape.D;
  a->ncv = cov_len(&shape);
  a->w = malloc(a->nw * 8);
  a->mu = malloc(a->nmu * 8);
  a->cv = malloc(a->ncv * 8);
  a->prec = malloc(a->ncv * 8);
  a->pri = calloc(a->C, 8);
  a->cnt = calloc(a->C, 8);
  int ok = gmle_mixture_params(m, a->w, a->mu, a->cv) == GMLE_OK &&
           gmle_mixture_precisions_cholesky(m, a->prec) == GMLE_OK;
  for (size_t c = 0; c < a->C; c++) {
    gmle_model_prior(m, c, &a->pri[c]);
    gmle_model_count(m, c, &a->cnt[c]);
  }
  return ok;
}

static void arrays_free(arrays *a) {
  free(a->w);
  free(a->mu);
  free(a->cv);
  free(a->prec);
  free(a->pri);
  free(a->cnt);
}

static int reports_equal(const gmle_model *a, const gmle_model *b) {
  gmle_em_report ra, rb;
  const int ha = gmle_model_em_report(a, &ra) == GMLE_OK;
  const int hb = gmle_model_em_report(b, &rb) == GMLE_OK;
  if (ha != hb)
    return 0;
  if (!ha)
    return 1;
  return ra.n_iter == rb.n_iter && ra.converged == rb.converged &&
         tu_bits_equal(&ra.lower_bound, &rb.lower_bound, 1) &&
         ra.n_history == rb.n_history &&
         tu_bits_equal(ra.history, rb.history, ra.n_history) &&
         ra.n_reseeded == rb.n_reseeded && ra.n_init == rb.n_init &&
         ra.best_init == rb.best_init && ra.mode == rb.mode &&
         ra.init == rb.init && tu_bits_equal(&ra.reg_covar, &rb.reg_covar, 1) &&
         tu_bits_equal(&ra.n_rows, &rb.n_rows, 1);
}

/* Same shape, parameters, priors, counts, names and report, bit for bit. */
static int mixtures_identical(const gmle_model *a, const gmle_model *b) {
  if (!a || !b || !gmle_model_is_mixture(a) || !gmle_model_is_mixture(b) ||
      gmle_model_cov_type(a) != gmle_model_cov_type(b) ||
      gmle_model_n_classes(a) != gmle_model_n_classes(b) ||
      gmle_model_n_components(a) != gmle_model_n_components(b) ||
      gmle_model_dim(a) != gmle_model_dim(b))
    return 0;
  arrays x, y;
  int ok = arrays_get(a, &x);
  ok = arrays_get(b, &y) && ok;
  ok = ok && tu_bits_equal(x.w, y.w, x.nw) &&
       tu_bits_equal(x.mu, y.mu, x.nmu) && tu_bits_equal(x.cv, y.cv, x.ncv) &&
       tu_bits_equal(x.prec, y.prec, x.ncv) &&
       tu_bits_equal(x.pri, y.pri, x.C) && tu_bits_equal(x.cnt, y.cnt, x.C);
  for (size_t c = 0; ok && c < x.C; c++) {
    const char *na = gmle_model_class_name(a, c);
    const char *nb = gmle_model_class_name(b, c);
    ok = (!na && !nb) || (na && nb && strcmp(na, nb) == 0);
  }
  arrays_free(&x);
  arrays_free(&y);
  return ok && reports_equal(a, b);
}

static int files_equal(const char *p, const char *q) {
  size_t n = 0, k = 0;
  unsigned char *a = tu_slurp(p, &n), *b = tu_slurp(q, &k);
  int eq = a && b && n == k && memcmp(a, b, n) == 0;
  free(a);
  free(b);
  return eq;
}

/* ------------------------------------------------------------------------ */
/* Round trips                                                              */
/* ------------------------------------------------------------------------ */

TEST(mixture_file_round_trips_bit_exact_every_type_and_layout) {
  for (int t = 0; t < 4; t++)
    for (int l = 0; l < 3; l++) {
      const layout *ly = &layouts[l];
      mix x;
      mix_random(&x, 100 + (uint64_t)(t * 3 + l), all_covs[t], ly->C, 3, 4);
      gmle_model *m = mix_model(&x, ly->named, l != 2);
      CHECK(m != NULL);
      gmle_model *back = NULL;
      CHECK_STATUS(gmle_model_save(m, tmp("a.npz")), GMLE_OK);
      CHECK_STATUS(gmle_model_load(ctx, tmp("a.npz"), &back), GMLE_OK);
      CHECK_MSG(mixtures_identical(m, back), "%s %s",
                gmle_cov_name(all_covs[t]), ly->what);
      gmle_em_report r;
      CHECK_STATUS(gmle_model_em_report(back, &r),
                   l != 2 ? GMLE_OK : GMLE_E_UNSUPPORTED);
      /* What was loaded saves to the same bytes. */
      CHECK_STATUS(gmle_model_save(back, tmp("b.npz")), GMLE_OK);
      CHECK_MSG(files_equal(tmp("a.npz"), tmp("b.npz")), "%s %s",
                gmle_cov_name(all_covs[t]), ly->what);
      gmle_model_free(back);
      gmle_model_free(m);
      mix_free(&x);
    }
}

TEST(mixture_file_load_and_save_survive_allocation_failures) {
  mix x;
  mix_random(&x, 7, GMLE_COV_DIAG, 3, 2, 3);
  gmle_model *m = mix_model(&x, 1, 1);
  CHECK(m != NULL);
  const char *p = tmp("oom.npz"), *q = tmp("oom2.npz");
  CHECK_STATUS(gmle_model_save(m, p), GMLE_OK);
  int loaded = 0, saved = 0;
  for (long k = 1; k < 2000 && m && !(loaded && saved); k++) {
    gmle_model *back = NULL;
    gmle__test_fail_alloc_after(k);
    gmle_status s = gmle_model_load(ctx, p, &back);
    gmle__test_fail_alloc_after(0);
    CHECK_MSG(s == GMLE_OK || s == GMLE_E_OUT_OF_MEMORY, "load k=%ld: %s: %s",
              k, gmle_status_name(s), gmle_context_error(ctx));
    CHECK(s == GMLE_OK || back == NULL);
    if (s == GMLE_OK && !loaded) {
      loaded = 1;
      CHECK(mixtures_identical(m, back));
    }
    gmle_model_free(back);
    gmle__test_fail_alloc_after(k);
    s = gmle_model_save(m, q);
    gmle__test_fail_alloc_after(0);
    CHECK_MSG(s == GMLE_OK || s == GMLE_E_OUT_OF_MEMORY, "save k=%ld: %s: %s",
              k, gmle_status_name(s), gmle_context_error(ctx));
    if (s == GMLE_OK)
      saved = files_equal(p, q);
    else
      CHECK(access(q, F_OK) != 0); /* nothing left */
  }
  CHECK(loaded && saved);
  gmle_model_free(m);
  mix_free(&x);
}

TEST(mixture_file_rejects_truncation_at_every_offset) {
  mix x;
  mix_random(&x, 8, GMLE_COV_FULL, 2, 2, 2);
  gmle_model *m = mix_model(&x, 1, 1);
  CHECK(m != NULL);
  const char *p = tmp("t.npz"), *q = tmp("t_cut.npz");
  CHECK_STATUS(gmle_model_save(m, p), GMLE_OK);
  size_t n = 0;
  unsigned char *b = tu_slurp(p, &n);
  CHECK(b && n > 100);
  int bad = 0;
  for (size_t len = 0; b && len < n; len++) {
    tu_spit(q, b, len);
    gmle_model *back = NULL;
    gmle_status s = gmle_model_load(ctx, q, &back);
    if ((s == GMLE_OK || back || !strstr(gmle_context_error(ctx), q)) &&
        bad++ < 5)
      printf("  truncated to %zu: %s: %s\n", len, gmle_status_name(s),
             gmle_context_error(ctx));
    gmle_model_free(back);
  }
  CHECK(bad == 0);
  free(b);
  gmle_model_free(m);
  mix_free(&x);
}

TEST(mixture_file_em_names_round_trip) {
  for (int k = 0; k < 3; k++) {
    gmle_em_mode v = GMLE_EM_SOFT;
    const char *name = gmle_em_mode_name((gmle_em_mode)k);
    CHECK(name != NULL);
    CHECK_STATUS(gmle_em_mode_parse(name, &v), GMLE_OK);
    CHECK(v == (gmle_em_mode)k);
  }
  for (int k = 0; k < 4; k++) {
    gmle_em_init v = GMLE_INIT_KMEANSPP;
    const char *name = gmle_em_init_name((gmle_em_init)k);
    CHECK(name != NULL);
    CHECK_STATUS(gmle_em_init_parse(name, &v), GMLE_OK);
    CHECK(v == (gmle_em_init)k);
  }
  CHECK(strcmp(gmle_em_mode_name(GMLE_EM_TOP_N), "top") == 0);
  CHECK(strcmp(gmle_em_init_name(GMLE_INIT_KMEANSPP), "kmeans++") == 0);
  CHECK(gmle_em_mode_name((gmle_em_mode)3) == NULL);
  CHECK(gmle_em_init_name((gmle_em_init)4) == NULL);
  gmle_em_mode mode = GMLE_EM_HARD;
  CHECK_STATUS(gmle_em_mode_parse("top:4", &mode), GMLE_E_INVALID_ARG);
  CHECK_STATUS(gmle_em_mode_parse(NULL, &mode), GMLE_E_INVALID_ARG);
  CHECK(mode == GMLE_EM_HARD);
  CHECK_STATUS(gmle_em_init_parse("kmeans++", NULL), GMLE_E_INVALID_ARG);
}

/* ------------------------------------------------------------------------ */
/* numpy and scikit-learn                                                   */
/* ------------------------------------------------------------------------ */

static void dump(const char *name, const void *p, size_t n) {
  tu_spit(tmp(name), p, n);
}

/* numpy reads every array with the bits of the getters and the shapes of
 * scikit-learn's GaussianMixture (plus a leading class axis per class);
 * precisions_cholesky is scikit-learn's definition, checked against numpy's
 * own Cholesky factor; numpy's re-save loads back identical. */
static const char arrays_py[] =
    "import numpy as np, sys, os\n"
    "d = sys.argv[1]\n"
    "cov, per_class, C, K, D = sys.argv[2].split()\n"
    "per_class, C, K, D = per_class == '1', int(C), int(K), int(D)\n"
    "z = np.load(os.path.join(d, 'm.npz'))\n"
    "raw = lambda n: np.fromfile(os.path.join(d, n + '.bin'), '<f8')\n"
    "lead = (C,) if per_class else ()\n"
    "cs = {'full': (K, D, D), 'diag': (K, D), 'spherical': (K,),\n"
    "      'tied': (D, D)}[cov]\n"
    "want = {'weights': lead + (K,), 'means': lead + (K, D),\n"
    "        'covariances': lead + cs, 'precisions_cholesky': lead + cs}\n"
    "for k, shape in want.items():\n"
    "    a = z[k]\n"
    "    assert a.dtype == np.float64 and a.shape == shape, (k, a.shape)\n"
    "    assert a.tobytes() == raw(k).tobytes(), k\n"
    "ct = z['covariance_type']\n"
    "assert ct.shape == () and ct.dtype.kind == 'U' and str(ct) == cov\n"
    "assert int(z['format_version']) == 2\n"
    "assert z['counts'].tobytes() == raw('counts').tobytes()\n"
    "if per_class:\n"
    "    assert z['priors'].tobytes() == raw('priors').tobytes()\n"
    "    assert z['classes'].dtype.kind == 'U'\n"
    "else:\n"
    "    assert 'priors' not in z.files and 'classes' not in z.files\n"
    "    assert z['weights'].sum() == z['weights'].sum()\n"
    "em = {'em_n_iter': 4, 'em_converged': True, 'em_lower_bound': -3.25,\n"
    "      'em_n_reseeded': 2, 'em_n_init': 3, 'em_best_init': 1,\n"
    "      'em_mode': 'hard', 'em_init': 'split', 'em_reg_covar': 1e-6,\n"
    "      'em_n_rows': 1234.5}\n"
    "for k, v in em.items():\n"
    "    assert z[k].shape == () and z[k].item() == v, (k, z[k])\n"
    "assert z['em_history'].tolist() == [-5.5, -4.25, -3.375, -3.25]\n"
    "# scikit-learn's precisions_cholesky_, from numpy's Cholesky factor\n"
    "cv = z['covariances'].reshape((-1,) + cs)\n"
    "pc = z['precisions_cholesky'].reshape((-1,) + cs)\n"
    "for a, p in zip(cv, pc):\n"
    "    if cov in ('full', 'tied'):\n"
    "        mats = a if cov == 'full' else a[None]\n"
    "        ref = np.array([np.linalg.inv(np.linalg.cholesky(s)).T\n"
    "                        for s in mats]).reshape(p.shape)\n"
    "    else:\n"
    "        ref = 1 / np.sqrt(a)\n"
    "    err = np.max(np.abs(p - ref)) / np.max(np.abs(ref))\n"
    "    assert err <= 1e-12, err\n"
    "    assert np.array_equal(np.triu(p), p) or cov not in ('full', 'tied')\n"
    "np.savez(os.path.join(d, 'np2.npz'), **{k: z[k] for k in z.files})\n";

TEST(mixture_file_numpy_reads_arrays_bit_exact) {
  if (!tu_have_python("numpy")) {
    printf("  skipped: python3 with numpy not available\n");
    return;
  }
  for (int t = 0; t < 4; t++)
    for (int l = 0; l < 2; l++) {
      const layout *ly = &layouts[l];
      mix x;
      mix_random(&x, 200 + (uint64_t)(t * 3 + l), all_covs[t], ly->C, 3, 4);
      gmle_model *m = mix_model(&x, ly->named, 1);
      CHECK(m != NULL);
      if (!m)
        continue;
      CHECK_STATUS(gmle_model_save(m, tmp("m.npz")), GMLE_OK);
      arrays a;
      CHECK(arrays_get(m, &a));
      dump("weights.bin", a.w, a.nw * 8);
      dump("means.bin", a.mu, a.nmu * 8);
      dump("covariances.bin", a.cv, a.ncv * 8);
      dump("precisions_cholesky.bin", a.prec, a.ncv * 8);
      dump("priors.bin", a.pri, a.C * 8);
      dump("counts.bin", a.cnt, a.C * 8);
      arrays_free(&a);
      char arg[128];
      snprintf(arg, sizeof arg, "%s %d %zu %zu %zu", gmle_cov_name(all_covs[t]),
               ly->named, x.C, x.K, x.D);
      CHECK_MSG(tu_run_python(dir, arrays_py, arg) == 0, "%s", arg);
      gmle_model *back = NULL;
      CHECK_STATUS(gmle_model_load(ctx, tmp("np2.npz"), &back), GMLE_OK);
      CHECK_MSG(mixtures_identical(m, back), "numpy re-save: %s", arg);
      gmle_model_free(back);
      gmle_model_free(m);
      mix_free(&x);
    }
}

/* A GaussianMixture given the file's arrays (per class: class c's slices)
 * scores as gmle does: score_samples = gmle's density (unsupervised) or
 * its class-conditional log-likelihoods (per class). */
static const char sklearn_py[] =
    "import numpy as np, sys, os\n"
    "from sklearn.mixture import GaussianMixture\n"
    "d = sys.argv[1]\n"
    "cov, per_class, C, K, D, N = sys.argv[2].split()\n"
    "per_class, C, K, D, N = per_class == '1', int(C), int(K), int(D), "
    "int(N)\n"
    "z = np.load(os.path.join(d, 'm.npz'))\n"
    "X = np.fromfile(os.path.join(d, 'X.bin'), '<f8').reshape(N, D)\n"
    "got = np.fromfile(os.path.join(d, 'scores.bin'), '<f8')\n"
    "names = ('weights', 'means', 'covariances', 'precisions_cholesky')\n"
    "def mixture(c):\n"
    "    gm = GaussianMixture(K, covariance_type=cov)\n"
    "    gm.weights_, gm.means_, gm.covariances_, gm.precisions_cholesky_ = (\n"
    "        z[k][c] if per_class else z[k] for k in names)\n"
    "    return gm\n"
    "if per_class:\n"
    "    ref = np.stack([mixture(c).score_samples(X) for c in range(C)], 1)\n"
    "else:\n"
    "    ref = mixture(0).score_samples(X)\n"
    "got = got.reshape(ref.shape)\n"
    "err = np.max(np.abs(got - ref) / np.maximum(1, np.abs(ref)))\n"
    "print('    %s %s: max relative difference %.2e' % (cov, 'per class' if\n"
    "      per_class else 'unsupervised', err))\n"
    "sys.exit(0 if err <= 1e-10 else 1)\n";

TEST(mixture_file_sklearn_scores_as_gmle) {
  if (!tu_have_python("sklearn")) {
    printf("  skipped: python3 with scikit-learn not available\n");
    return;
  }
  const size_t N = 500, K = 3, D = 4;
  for (int t = 0; t < 4; t++)
    for (int l = 0; l < 2; l++) {
      const layout *ly = &layouts[l];
      mix x;
      mix_random(&x, 300 + (uint64_t)(t * 3 + l), all_covs[t], ly->C, K, D);
      gmle_model *saved = mix_model(&x, ly->named, 1), *m = NULL;
      CHECK(saved != NULL);
      if (!saved)
        continue;
      CHECK_STATUS(gmle_model_save(saved, tmp("m.npz")), GMLE_OK);
      CHECK_STATUS(gmle_model_load(ctx, tmp("m.npz"), &m), GMLE_OK);
      /* Rows around the components and far from all of them. */
      tu_rng r;
      tu_seed(&r, 400 + (uint64_t)t);
      double *X = malloc(N * D * sizeof *X);
      double *scores = malloc(N * ly->C * sizeof *scores);
      for (size_t i = 0; i < N; i++) {
        const size_t k = i % (x.C * K);
        for (size_t j = 0; j < D; j++)
          X[i * D + j] = x.mu[k * D + j] + (i % 7 ? 1.5 : 6) * tu_normal(&r);
      }
      const gmle_output what = ly->C > 1 ? GMLE_OUT_LOGLIK : GMLE_OUT_DENSITY;
      CHECK_STATUS(
          gmle_score(ctx, m, X, GMLE_F64, N, D, what, GMLE_F64, scores),
          GMLE_OK);
      dump("X.bin", X, N * D * 8);
      dump("scores.bin", scores, N * ly->C * 8);
      char arg[128];
      snprintf(arg, sizeof arg, "%s %d %zu %zu %zu %zu",
               gmle_cov_name(all_covs[t]), ly->named, x.C, K, D, N);
      CHECK_MSG(tu_run_python(dir, sklearn_py, arg) == 0, "%s", arg);
      free(X);
      free(scores);
      gmle_model_free(m);
      gmle_model_free(saved);
      mix_free(&x);
    }
}

/* Init files as a user writes them with np.savez: weights, means,
 * covariances and covariance_type only (per class: with a class axis). The
 * arrays go to init.bin too, concatenated, to compare with. */
static const char init_py[] =
    "import numpy as np, sys, os\n"
    "d = sys.argv[1]\n"
    "cov, C = sys.argv[2].split()\n"
    "C = int(C)\n"
    "K, D = 3, 2\n"
    "rng = np.random.default_rng(5)\n"
    "lead = (C,) if C else ()\n"
    "w = rng.uniform(0.5, 1, lead + (K,))\n"
    "w /= w.sum(axis=-1, keepdims=True)\n"
    "mu = rng.normal(size=lead + (K, D))\n"
    "def spd(n):\n"
    "    a = rng.normal(size=(n, D, D))\n"
    "    return a @ a.transpose(0, 2, 1) + D * np.eye(D)\n"
    "n = max(C, 1)\n"
    "cv = {'full': lambda: spd(n * K).reshape(lead + (K, D, D)),\n"
    "      'diag': lambda: rng.uniform(0.5, 2, lead + (K, D)),\n"
    "      'spherical': lambda: rng.uniform(0.5, 2, lead + (K,)),\n"
    "      'tied': lambda: spd(n).reshape(lead + (D, D))}[cov]()\n"
    "np.savez(os.path.join(d, 'init.npz'), weights=w, means=mu,\n"
    "         covariances=cv, covariance_type=cov)\n"
    "np.concatenate([w.ravel(), mu.ravel(), cv.ravel()]).astype('<f8')"
    ".tofile(os.path.join(d, 'init.bin'))\n";

TEST(mixture_file_loads_numpy_init_files) {
  if (!tu_have_python("numpy")) {
    printf("  skipped: python3 with numpy not available\n");
    return;
  }
  for (int t = 0; t < 4; t++)
    for (size_t C = 0; C <= 2; C += 2) { /* 0: no class axis */
      char arg[64];
      snprintf(arg, sizeof arg, "%s %zu", gmle_cov_name(all_covs[t]), C);
      CHECK_MSG(tu_run_python(dir, init_py, arg) == 0, "%s", arg);
      gmle_model *m = NULL;
      CHECK_STATUS(gmle_model_load(ctx, tmp("init.npz"), &m), GMLE_OK);
      if (!m) {
        printf("  %s: %s\n", arg, gmle_context_error(ctx));
        continue;
      }
      const size_t nC = C ? C : 1;
      CHECK(gmle_model_is_mixture(m) && gmle_model_n_classes(m) == nC &&
            gmle_model_n_components(m) == 3 && gmle_model_dim(m) == 2 &&
            gmle_model_cov_type(m) == all_covs[t]);
      arrays a;
      CHECK(arrays_get(m, &a));
      size_t n = 0;
      double *ref = (double *)tu_slurp(tmp("init.bin"), &n);
      CHECK_MSG(ref && n == (a.nw + a.nmu + a.ncv) * 8 &&
                    tu_bits_equal(ref, a.w, a.nw) &&
                    tu_bits_equal(ref + a.nw, a.mu, a.nmu) &&
                    tu_bits_equal(ref + a.nw + a.nmu, a.cv, a.ncv),
                "%s", arg);
      for (size_t c = 0; c < nC; c++)
        CHECK_CLOSE(a.pri[c], 1.0 / (double)nC, 1e-15);
      CHECK(gmle_model_class_name(m, 0) == NULL);
      gmle_em_report r;
      CHECK_STATUS(gmle_model_em_report(m, &r), GMLE_E_UNSUPPORTED);
      free(ref);
      arrays_free(&a);
      gmle_model_free(m);
    }
}

/* Bad init and model files: each case writes bad.npz. */
static const char bad_py[] =
    "import numpy as np, sys, os\n"
    "d, what = sys.argv[1], sys.argv[2]\n"
    "w = np.array([0.5, 0.3, 0.2])\n"
    "mu = np.zeros((3, 2))\n"
    "cv = np.ones((3, 2))\n"
    "kw = dict(weights=w, means=mu, covariances=cv, covariance_type='diag')\n"
    "if what == 'sum': kw['weights'] = np.array([0.5, 0.4, 0.05])\n"
    "if what == 'sum_class':\n"
    "    kw.update(weights=np.array([[0.5, 0.3, 0.2], [0.5, 0.4, 0.2]]),\n"
    "              means=np.zeros((2, 3, 2)), covariances=np.ones((2, 3, 2)))\n"
    "if what == 'negative': kw['weights'] = np.array([1.25, -0.25, 0])\n"
    "if what == 'nan': kw['weights'] = np.array([0.5, np.nan, 0.5])\n"
    "if what == 'means_shape': kw['means'] = np.zeros((2, 2))\n"
    "if what == 'means_class_axis': kw.update(\n"
    "    weights=np.array([[0.5, 0.3, 0.2]] * 2), means=np.zeros((3, 2)),\n"
    "    covariances=np.ones((2, 3, 2)))\n"
    "if what == 'cov_type': kw['covariance_type'] = 'full'\n"
    "if what == 'cov_unknown': kw['covariance_type'] = 'banded'\n"
    "if what == 'cov_shape': kw['covariances'] = np.ones((3, 3))\n"
    "if what == 'prec_shape': kw['precisions_cholesky'] = np.ones((3, 2, 2))\n"
    "if what == 'weights_shape': kw['weights'] = np.ones((1, 1, 3)) / 3\n"
    "if what == 'no_cov': del kw['covariances']\n"
    "if what == 'no_type': del kw['covariance_type']\n"
    "if what == 'future': kw['format_version'] = 3\n"
    "if what == 'not_pd': kw['covariances'] = np.array([[1, 1], [1, 0], "
    "[1, 1.]])\n"
    "if what == 'em_partial': kw['em_n_iter'] = np.uint64(3)\n"
    "if what == 'em_mode':\n"
    "    kw.update(em_n_iter=np.uint64(3), em_converged=True,\n"
    "              em_lower_bound=-1.0, em_history=np.array([-2., -1, -1]),\n"
    "              em_n_reseeded=np.uint64(0), em_n_init=np.uint64(1),\n"
    "              em_best_init=np.uint64(0), em_mode='fuzzy',\n"
    "              em_init='kmeans++', em_reg_covar=1e-6, em_n_rows=10.)\n"
    "np.savez(os.path.join(d, 'bad.npz'), **kw)\n";

typedef struct bad_case {
  const char *what;
  gmle_status status;
  const char *says[3]; /* substrings of the message (NULL: none) */
} bad_case;

static const bad_case bad_cases[] = {
    {"sum",
     GMLE_E_INVALID_MODEL,
     {"weights.npy", "the weights sum to 0.95;", NULL}},
    {"sum_class",
     GMLE_E_INVALID_MODEL,
     {"weights.npy", "class 1: the weights sum to 1.1;"}},
    {"negative", GMLE_E_INVALID_MODEL, {"component 1's weight is -0.25"}},
    {"nan", GMLE_E_INVALID_MODEL, {"component 1's weight is nan"}},
    {"means_shape", GMLE_E_BAD_FORMAT, {"means.npy", "(2, 2)", "(3, n_feat"}},
    {"means_class_axis", GMLE_E_BAD_FORMAT, {"means.npy", "(2, 3, n_feat"}},
    {"cov_type",
     GMLE_E_BAD_FORMAT,
     {"covariances.npy", "(3, 2, 2) for covariance_type 'full'",
      "shape of 'diag'"}},
    {"cov_unknown", GMLE_E_BAD_FORMAT, {"covariance_type.npy", "'banded'"}},
    {"cov_shape", GMLE_E_BAD_FORMAT, {"covariances.npy", "(3, 3)", "(3, 2)"}},
    {"prec_shape",
     GMLE_E_BAD_FORMAT,
     {"precisions_cholesky.npy", "(3, 2) for covariance_type 'diag'",
      "shape of 'full'"}},
    {"weights_shape", GMLE_E_BAD_FORMAT, {"weights.npy", "(1, 1, 3)"}},
    {"no_cov", GMLE_E_BAD_FORMAT, {"'covariances.npy'", "a mixture needs"}},
    {"no_type", GMLE_E_BAD_FORMAT, {"'covariance_type.npy'"}},
    {"future", GMLE_E_UNSUPPORTED_VERSION, {"format_version 3"}},
    {"not_pd", GMLE_E_INVALID_MODEL, {"bad.npz"}},
    {"em_partial", GMLE_E_BAD_FORMAT, {"em_converged.npy", "go together"}},
    {"em_mode", GMLE_E_INVALID_MODEL, {"em_mode.npy", "'soft'"}},
};

TEST(mixture_file_rejects_bad_init_files_clearly) {
  if (!tu_have_python("numpy")) {
    printf("  skipped: python3 with numpy not available\n");
    return;
  }
  CHECK(tu_run_python(dir, bad_py, "good") == 0);
  gmle_model *m = NULL;
  CHECK_STATUS(gmle_model_load(ctx, tmp("bad.npz"), &m), GMLE_OK);
  gmle_model_free(m);
  for (size_t i = 0; i < sizeof bad_cases / sizeof *bad_cases; i++) {
    const bad_case *bc = &bad_cases[i];
    CHECK_MSG(tu_run_python(dir, bad_py, bc->what) == 0, "%s", bc->what);
    m = NULL;
    gmle_status s = gmle_model_load(ctx, tmp("bad.npz"), &m);
    const char *msg = gmle_context_error(ctx);
    CHECK_MSG(s == bc->status && m == NULL, "%s: %s: %s", bc->what,
              gmle_status_name(s), msg);
    CHECK_MSG(strstr(msg, tmp("bad.npz")) != NULL, "%s: %s", bc->what, msg);
    for (int k = 0; k < 3 && bc->says[k]; k++)
      CHECK_MSG(strstr(msg, bc->says[k]) != NULL, "%s: \"%s\" lacks \"%s\"",
                bc->what, msg, bc->says[k]);
    gmle_model_free(m);
  }
}

int main(int argc, char **argv) {
  CHECK_INIT(argc, argv);
  if (tu_suite_start(&ctx, dir, sizeof dir) != 0)
    return 1;
  RUN(mixture_file_round_trips_bit_exact_every_type_and_layout);
  RUN(mixture_file_load_and_save_survive_allocation_failures);
  RUN(mixture_file_rejects_truncation_at_every_offset);
  RUN(mixture_file_em_names_round_trip);
  RUN(mixture_file_numpy_reads_arrays_bit_exact);
  RUN(mixture_file_sklearn_scores_as_gmle);
  RUN(mixture_file_loads_numpy_init_files);
  RUN(mixture_file_rejects_bad_init_files_clearly);
  tu_tmpdir_remove(dir);
  gmle_context_free(ctx);
  return CHECK_DONE();
}
