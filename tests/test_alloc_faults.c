/* test_alloc_faults.c -- allocation-failure injection swept over every
 * allocation of every operation (issue #6, RELIABILITY.md).
 *
 * For each operation the allocations of an undisturbed call are counted
 * first (gmle__test_alloc_count); then the call is repeated with the k-th
 * allocation failing, for every k from 1 to that count. Each failing call
 * must return GMLE_E_OUT_OF_MEMORY with a message, leave every object it
 * was given bit-identical to before (statistics: counts, rows, shifts,
 * sums, Gram matrices, batch count, names; models: every array), return no
 * object, leave no file behind, and the same call repeated without a fault
 * must give the undisturbed result bit for bit. Leaks are the sanitizer
 * build's to find (LSan, valgrind): every sweep point frees what it made.
 *
 * Outside the hook, and so not swept: allocations made by OpenBLAS/LAPACKE
 * (dsyevd and dpotrf workspaces), the OpenMP runtime, the OpenCL ICD loader
 * and driver (PoCL), and libc (stdio buffers). */
#include "check.h"
#include "testutil.h"

#include "gmle_io.h"

#include "../host/cpu_state.h"

#include <dirent.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------- */
/* The sweep                                                               */
/* ---------------------------------------------------------------------- */

/* One operation under test. run performs the call once on env's objects;
 * same says whether env's objects are as they were before the call
 * (after a failure); undo restores env after a successful call (so that
 * every k starts from the same state) and may check its result; reset
 * (optional) runs after every failure, once same has been checked, for
 * objects whose first call fills buffers that later calls reuse. */
typedef struct op {
  const char *name;
  gmle_status (*run)(void *env);
  int (*same)(void *env);
  void (*undo)(void *env);
  const gmle_context *ctx; /* where the error message is read */
  void (*reset)(void *env);
} op;

static long total_points, total_ops;

/* Returns the number of allocations swept (0 if the undisturbed call
 * failed). */
static long sweep(const op *o, void *env) {
  /* A first call fills what a backend caches across calls (compiled
   * kernels, a model's device copy): those allocations are made once per
   * context, not per call. */
  gmle_status s = o->run(env);
  CHECK_MSG(s == GMLE_OK, "%s: first call: %s (%s)", o->name,
            gmle_status_name(s), o->ctx ? gmle_context_error(o->ctx) : "");
  if (s != GMLE_OK)
    return 0;
  o->undo(env);
  gmle__test_fail_alloc_after(LONG_MAX); /* count, fail none */
  s = o->run(env);
  const long n = gmle__test_alloc_count();
  gmle__test_fail_alloc_after(0);
  CHECK_MSG(s == GMLE_OK, "%s: undisturbed call: %s (%s)", o->name,
            gmle_status_name(s), o->ctx ? gmle_context_error(o->ctx) : "");
  if (s != GMLE_OK)
    return 0;
  o->undo(env);
  for (long k = 1; k <= n; k++) {
    gmle__test_fail_alloc_after(k);
    s = o->run(env);
    const long seen = gmle__test_alloc_count();
    gmle__test_fail_alloc_after(0);
    CHECK_MSG(seen >= k, "%s: only %ld allocations with k = %ld (of %ld)",
              o->name, seen, k, n);
    if (s == GMLE_OK) {
      CHECK_MSG(0, "%s: allocation %ld of %ld failed, call returned GMLE_OK",
                o->name, k, n);
      o->undo(env);
      continue;
    }
    CHECK_MSG(s == GMLE_E_OUT_OF_MEMORY, "%s: allocation %ld of %ld: %s (%s)",
              o->name, k, n, gmle_status_name(s),
              o->ctx ? gmle_context_error(o->ctx) : "");
    if (o->ctx)
      CHECK_MSG(gmle_context_error(o->ctx)[0] != '\0',
                "%s: allocation %ld: no message", o->name, k);
    CHECK_MSG(o->same(env), "%s: allocation %ld of %ld: state changed", o->name,
              k, n);
    if (o->reset)
      o->reset(env);
  }
  /* Afterwards the call still works and gives the undisturbed result. */
  s = o->run(env);
  CHECK_MSG(s == GMLE_OK, "%s: after the sweep: %s", o->name,
            gmle_status_name(s));
  if (s == GMLE_OK)
    o->undo(env);
  printf("  %-44s %3ld allocations swept\n", o->name, n);
  total_points += n;
  total_ops++;
  return n;
}

/* ---------------------------------------------------------------------- */
/* Whole-state comparisons (internals, bit for bit)                        */
/* ---------------------------------------------------------------------- */

static int names_equal(char **a, char **b, size_t n) {
  if (!a || !b)
    return a == b;
  for (size_t c = 0; c < n; c++)
    if (strcmp(a[c], b[c]) != 0)
      return 0;
  return 1;
}

static int stats_state_equal(const gmle_stats *a, const gmle_stats *b) {
  return tu_stats_raw_equal(a, b) && a->n_batches == b->n_batches &&
         a->saw_f32 == b->saw_f32 && a->ctx == b->ctx &&
         names_equal(a->names, b->names, a->n_classes);
}

static int bytes_equal(const void *a, const void *b, size_t n) {
  if (!a || !b)
    return a == b;
  return memcmp(a, b, n) == 0;
}

/* Doubles in a model's covariance array and in its factor array. */
static size_t cov_len(const gmle_model *m) {
  const size_t C = m->n_classes, D = m->dim;
  return m->cov == GMLE_COV_FULL   ? C * D * D
         : m->cov == GMLE_COV_TIED ? D * D
         : m->cov == GMLE_COV_DIAG ? C * D
                                   : C;
}

/* Every array of two models (the prepared scoring data included). */
static int model_state_equal(const gmle_model *a, const gmle_model *b) {
  if (a->dim != b->dim || a->n_classes != b->n_classes || a->cov != b->cov ||
      a->has_train != b->has_train)
    return 0;
  const size_t C = a->n_classes, D = a->dim, L = cov_len(a), F = L;
  return bytes_equal(a->means, b->means, C * D * 8) &&
         bytes_equal(a->covars, b->covars, L * 8) &&
         bytes_equal(a->priors, b->priors, C * 8) &&
         bytes_equal(a->counts, b->counts, C * 8) &&
         bytes_equal(a->rows, b->rows, C * 8) &&
         bytes_equal(a->reports, b->reports, C * sizeof *a->reports) &&
         bytes_equal(a->log_priors, b->log_priors, C * 8) &&
         bytes_equal(a->factor, b->factor, F * 8) &&
         bytes_equal(a->logdet, b->logdet, C * 8) &&
         bytes_equal(a->empty, b->empty, C) &&
         names_equal(a->names, b->names, C) &&
         (!a->has_train ||
          (memcmp(&a->train_loglik, &b->train_loglik, 8) == 0 &&
           memcmp(&a->train_loglik_joint, &b->train_loglik_joint, 8) == 0));
}

/* A deep copy of a model's host arrays, for comparisons (not usable for
 * scoring). */
static gmle_model *model_copy(const gmle_model *m) {
  gmle_model *c = calloc(1, sizeof *c);
  if (!c)
    return NULL;
  *c = *m;
  const size_t C = m->n_classes, D = m->dim, L = cov_len(m), F = L;
#define DUP(field, bytes)                                                      \
  do {                                                                         \
    c->field = NULL;                                                           \
    if (m->field && (c->field = malloc(bytes)) != NULL)                        \
      memcpy(c->field, m->field, bytes);                                       \
  } while (0)
  DUP(means, C * D * 8);
  DUP(covars, L * 8);
  DUP(priors, C * 8);
  DUP(counts, C * 8);
  DUP(rows, C * 8);
  DUP(reports, C * sizeof *m->reports);
  DUP(log_priors, C * 8);
  DUP(factor, F * 8);
  DUP(logdet, C * 8);
  DUP(empty, C);
#undef DUP
  c->names = NULL;
  if (m->names && (c->names = calloc(C, sizeof *c->names)) != NULL)
    for (size_t k = 0; k < C; k++)
      if ((c->names[k] = malloc(strlen(m->names[k]) + 1)) != NULL)
        strcpy(c->names[k], m->names[k]);
  memset(c->backend_data, 0, sizeof c->backend_data);
  c->score_cache = NULL;
  return c;
}

static void model_copy_free(gmle_model *c) {
  if (!c)
    return;
  free(c->means);
  free(c->covars);
  free(c->priors);
  free(c->counts);
  free(c->rows);
  free(c->reports);
  free(c->log_priors);
  free(c->factor);
  free(c->logdet);
  free(c->empty);
  for (size_t k = 0; c->names && k < c->n_classes; k++)
    free(c->names[k]);
  free(c->names);
  free(c);
}

/* Number of entries in a directory other than . and .. */
static int dir_entries(const char *dir) {
  DIR *d = opendir(dir);
  if (!d)
    return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
      n++;
  closedir(d);
  return n;
}

/* ---------------------------------------------------------------------- */
/* Fixtures                                                                */
/* ---------------------------------------------------------------------- */

enum { D = 5, C = 3, N = 400 };
static const char *const class_names[C] = {"cat", "dog", "fox"};

static gmle_context *ctx;
static char dir[512];

static gmle_stats *clone_or_null(const gmle_stats *st) {
  gmle_stats *c = NULL;
  if (!st || gmle_stats_clone(st, &c) != GMLE_OK)
    return NULL;
  return c;
}

/* ---------------------------------------------------------------------- */
/* gmle_stats_add                                                          */
/* ---------------------------------------------------------------------- */

typedef struct add_env {
  gmle_stats *st, *before;
  const tu_dataset *ds;
  int weighted, labelled;
  gmle_stats *result; /* the undisturbed result */
} add_env;

static gmle_status add_run(void *e) {
  add_env *a = e;
  return gmle_stats_add(a->st, a->ds->x, a->ds->dtype, a->ds->n, a->ds->stride,
                        a->labelled ? a->ds->labels : NULL,
                        a->weighted ? a->ds->weights : NULL);
}

static int add_same(void *e) {
  add_env *a = e;
  return stats_state_equal(a->st, a->before);
}

static void add_undo(void *e) {
  add_env *a = e;
  if (!a->result)
    a->result = clone_or_null(a->st);
  else
    CHECK_MSG(stats_state_equal(a->st, a->result),
              "add: a call after the faults differs from the undisturbed one");
  gmle_stats_free(a->st);
  a->st = clone_or_null(a->before);
}

/* Statistics holding some rows of classes 0 and 1 only, so that the swept
 * batch both extends classes and opens class 2 (shift chosen). */
static gmle_stats *seeded_stats(gmle_stats_mode mode, size_t n_classes) {
  gmle_stats *st = NULL;
  tu_dataset seed;
  if (gmle_stats_create_mode(ctx, D, n_classes, mode, &st) != GMLE_OK ||
      tu_dataset_make(&seed, 9, 60, D, n_classes, GMLE_F64, D, 2.0, 0) != 0) {
    gmle_stats_free(st);
    return NULL;
  }
  for (size_t i = 0; i < seed.n; i++)
    seed.labels[i] = seed.labels[i] == 2 ? 0 : seed.labels[i];
  gmle_status s = gmle_stats_add(st, seed.x, GMLE_F64, seed.n, seed.stride,
                                 n_classes > 1 ? seed.labels : NULL, NULL);
  tu_dataset_free(&seed);
  if (s != GMLE_OK) {
    gmle_stats_free(st);
    return NULL;
  }
  return st;
}

TEST(alloc_sweep_stats_add_every_mode_dtype_labels_weights) {
  static const char *const mode_name[2] = {"full", "diag"};
  for (int mode = 0; mode < 2; mode++)
    for (int dt = 0; dt < 2; dt++)
      for (int weighted = 0; weighted < 2; weighted++)
        for (int labelled = 0; labelled < 2; labelled++) {
          const gmle_dtype dtype = dt ? GMLE_F64 : GMLE_F32;
          const size_t nc = labelled ? C : 1;
          tu_dataset ds;
          /* stride D + 2: the padding (NaN) must never be read */
          if (tu_dataset_make(
                  &ds,
                  100 + (uint64_t)(mode * 8 + dt * 4 + weighted * 2 + labelled),
                  N, D, nc, dtype, D + 2, 2.0, weighted) != 0) {
            CHECK(!"setup");
            continue;
          }
          add_env a = {seeded_stats((gmle_stats_mode)mode, nc),
                       NULL,
                       &ds,
                       weighted,
                       labelled,
                       NULL};
          a.before = clone_or_null(a.st);
          if (a.st && a.before) {
            char name[96];
            snprintf(name, sizeof name, "stats_add %s %s %s %s",
                     mode_name[mode], dt ? "f64" : "f32",
                     labelled ? "labels" : "no-labels",
                     weighted ? "weights" : "unweighted");
            op o = {name, add_run, add_same, add_undo, ctx, NULL};
            CHECK(sweep(&o, &a) > 0);
          } else {
            CHECK(!"setup");
          }
          gmle_stats_free(a.st);
          gmle_stats_free(a.before);
          gmle_stats_free(a.result);
          tu_dataset_free(&ds);
        }
}

/* ---------------------------------------------------------------------- */
/* gmle_stats_merge and gmle_stats_clone                                    */
/* ---------------------------------------------------------------------- */

typedef struct merge_env {
  gmle_stats *dst, *src, *dst_before, *src_before, *result;
} merge_env;

static gmle_status merge_run(void *e) {
  merge_env *m = e;
  return gmle_stats_merge(m->dst, m->src);
}

static int merge_same(void *e) {
  merge_env *m = e;
  return stats_state_equal(m->dst, m->dst_before) &&
         stats_state_equal(m->src, m->src_before);
}

static void merge_undo(void *e) {
  merge_env *m = e;
  if (!m->result)
    m->result = clone_or_null(m->dst);
  else
    CHECK(stats_state_equal(m->dst, m->result));
  gmle_stats_free(m->dst);
  m->dst = clone_or_null(m->dst_before);
}

TEST(alloc_sweep_stats_merge_with_and_without_names) {
  for (int named = 0; named < 2; named++) {
    tu_dataset ds;
    if (tu_dataset_make(&ds, 21, N, D, C, GMLE_F64, D, 1.0, 1) != 0) {
      CHECK(!"setup");
      return;
    }
    merge_env m = {seeded_stats(GMLE_STATS_FULL, C), NULL, NULL, NULL, NULL};
    if (gmle_stats_create(ctx, D, C, &m.src) == GMLE_OK)
      CHECK_STATUS(tu_dataset_add(m.src, &ds, 0, ds.n), GMLE_OK);
    /* named: src has names, dst none, so dst adopts copies of them */
    if (named && m.src)
      CHECK_STATUS(gmle_stats_set_class_names(m.src, class_names), GMLE_OK);
    m.dst_before = clone_or_null(m.dst);
    m.src_before = clone_or_null(m.src);
    if (m.dst_before && m.src_before) {
      op o = {named ? "stats_merge (adopting class names)" : "stats_merge",
              merge_run,
              merge_same,
              merge_undo,
              ctx,
              NULL};
      CHECK(sweep(&o, &m) > 0);
    } else {
      CHECK(!"setup");
    }
    gmle_stats_free(m.dst);
    gmle_stats_free(m.src);
    gmle_stats_free(m.dst_before);
    gmle_stats_free(m.src_before);
    gmle_stats_free(m.result);
    tu_dataset_free(&ds);
  }
}

typedef struct clone_env {
  const gmle_stats *st, *before;
  gmle_stats *out;
} clone_env;

static gmle_status clone_run(void *e) {
  clone_env *c = e;
  c->out = (gmle_stats *)1; /* must come back NULL on failure */
  gmle_status s = gmle_stats_clone(c->st, &c->out);
  if (s != GMLE_OK && c->out == (gmle_stats *)1)
    c->out = NULL;
  return s;
}

static int clone_same(void *e) {
  clone_env *c = e;
  return stats_state_equal(c->st, c->before) && c->out == NULL;
}

static void clone_undo(void *e) {
  clone_env *c = e;
  CHECK(c->out && stats_state_equal(c->out, c->st));
  gmle_stats_free(c->out);
  c->out = NULL;
}

TEST(alloc_sweep_stats_create_and_clone) {
  gmle_stats *st = seeded_stats(GMLE_STATS_FULL, C);
  if (st)
    CHECK_STATUS(gmle_stats_set_class_names(st, class_names), GMLE_OK);
  gmle_stats *before = clone_or_null(st);
  clone_env c = {st, before, NULL};
  op o = {"stats_clone (with class names)",
          clone_run,
          clone_same,
          clone_undo,
          ctx,
          NULL};
  if (st && before)
    CHECK(sweep(&o, &c) > 0);
  else
    CHECK(!"setup");
  gmle_stats_free(st);
  gmle_stats_free(before);
  /* gmle_stats_create: every allocation failing in turn gives NULL */
  gmle__test_fail_alloc_after(LONG_MAX);
  gmle_stats *s0 = NULL;
  CHECK_STATUS(gmle_stats_create(ctx, D, C, &s0), GMLE_OK);
  const long n = gmle__test_alloc_count();
  gmle__test_fail_alloc_after(0);
  gmle_stats_free(s0);
  for (long k = 1; k <= n; k++) {
    gmle_stats *s1 = (gmle_stats *)1;
    gmle__test_fail_alloc_after(k);
    gmle_status s = gmle_stats_create(ctx, D, C, &s1);
    gmle__test_fail_alloc_after(0);
    CHECK_STATUS(s, GMLE_E_OUT_OF_MEMORY);
    CHECK(s1 == NULL);
    if (s == GMLE_OK && s1 != (gmle_stats *)1)
      gmle_stats_free(s1);
  }
  printf("  %-44s %3ld allocations swept\n", "stats_create", n);
  total_points += n;
  total_ops++;
}

/* ---------------------------------------------------------------------- */
/* gmle_fit                                                                */
/* ---------------------------------------------------------------------- */

typedef struct fit_env {
  const gmle_stats *st, *before;
  gmle_fit_options opt;
  gmle_model *out, *result;
} fit_env;

static gmle_status fit_run(void *e) {
  fit_env *f = e;
  f->out = (gmle_model *)1; /* must come back NULL on failure */
  gmle_status s = gmle_fit(f->st, &f->opt, &f->out);
  if (s != GMLE_OK && f->out == (gmle_model *)1)
    f->out = NULL;
  return s;
}

static int fit_same(void *e) {
  fit_env *f = e;
  return f->out == NULL && stats_state_equal(f->st, f->before);
}

static void fit_undo(void *e) {
  fit_env *f = e;
  if (!f->result)
    f->result = f->out;
  else {
    CHECK(f->out && model_state_equal(f->out, f->result));
    gmle_model_free(f->out);
  }
  f->out = NULL;
}

TEST(alloc_sweep_fit_every_covariance_and_regularisation) {
  tu_dataset ds;
  if (tu_dataset_make(&ds, 31, N, D, C, GMLE_F64, D, 1.0, 1) != 0) {
    CHECK(!"setup");
    return;
  }
  gmle_stats *full = NULL, *diag = NULL;
  CHECK_STATUS(gmle_stats_create(ctx, D, C, &full), GMLE_OK);
  CHECK_STATUS(gmle_stats_create_mode(ctx, D, C, GMLE_STATS_DIAG, &diag),
               GMLE_OK);
  if (!full || !diag) {
    gmle_stats_free(full);
    gmle_stats_free(diag);
    tu_dataset_free(&ds);
    return;
  }
  CHECK_STATUS(tu_dataset_add(full, &ds, 0, ds.n), GMLE_OK);
  CHECK_STATUS(tu_dataset_add(diag, &ds, 0, ds.n), GMLE_OK);
  CHECK_STATUS(gmle_stats_set_class_names(full, class_names), GMLE_OK);
  gmle_stats *full_before = clone_or_null(full);
  gmle_stats *diag_before = clone_or_null(diag);
  static const double priors[C] = {0.5, 0.25, 0.25};
  static const char *const cov_name[4] = {"full", "diag", "spherical", "tied"};
  /* reg: 0 defaults, 1 no floor, 2 abs_floor, 3 max_condition (eigen-floor
   * path), 4 OAS shrinkage, 5 given priors */
  static const char *const reg_name[6] = {"default",   "no floor",
                                          "abs_floor", "max_condition",
                                          "shrinkage", "priors"};
  for (int diag_mode = 0; diag_mode < 2; diag_mode++)
    for (int cov = 0; cov < 4; cov++)
      for (int reg = 0; reg < 6; reg++) {
        if (diag_mode && (cov == GMLE_COV_FULL || cov == GMLE_COV_TIED))
          continue;
        fit_env f = {diag_mode ? diag : full,
                     diag_mode ? diag_before : full_before,
                     {0},
                     NULL,
                     NULL};
        gmle_fit_options_init(&f.opt);
        f.opt.cov = (gmle_cov_type)cov;
        if (reg == 1)
          f.opt.rel_floor = 0;
        if (reg == 2)
          f.opt.abs_floor = 1e-3;
        if (reg == 3)
          f.opt.max_condition = 2.0;
        if (reg == 4)
          f.opt.shrinkage = 1;
        if (reg == 5)
          f.opt.priors = priors;
        char name[96];
        snprintf(name, sizeof name, "fit %s %s%s", cov_name[cov], reg_name[reg],
                 diag_mode ? " (diag stats)" : "");
        op o = {name, fit_run, fit_same, fit_undo, ctx, NULL};
        CHECK(sweep(&o, &f) > 0);
        gmle_model_free(f.result);
      }
  gmle_stats_free(full);
  gmle_stats_free(diag);
  gmle_stats_free(full_before);
  gmle_stats_free(diag_before);
  tu_dataset_free(&ds);
}

/* ---------------------------------------------------------------------- */
/* gmle_score and gmle_total_loglik                                         */
/* ---------------------------------------------------------------------- */

typedef struct score_env {
  const gmle_model *m;
  gmle_model *snap; /* host arrays before */
  const void *x;
  gmle_dtype dtype, out_dtype;
  size_t n, stride;
  gmle_output what;
  int loglik; /* 1: gmle_total_loglik with labels */
  const int32_t *labels;
  void *out, *ref; /* out_bytes each */
  size_t out_bytes;
  int have_ref;
} score_env;

static gmle_status score_run(void *e) {
  score_env *s = e;
  if (s->loglik)
    return gmle_total_loglik(ctx, s->m, s->x, s->dtype, s->n, s->stride,
                             s->labels, NULL, (double *)s->out);
  return gmle_score(ctx, s->m, s->x, s->dtype, s->n, s->stride, s->what,
                    s->out_dtype, s->out);
}

/* The CPU scorer's scratch is released at the end of every scoring call,
 * whether the CPU is the context's backend or scores as its host fallback. */
static int cpu_scratch_released(void) {
  const gmle__cpu_state *cs = ctx->fallback_state;
  if (!cs && gmle_context_backend(ctx) == GMLE_BACKEND_CPU)
    cs = ctx->bstate;
  return !cs || cs->scratch == NULL;
}

static int score_same(void *e) {
  score_env *s = e;
  return model_state_equal(s->m, s->snap) && cpu_scratch_released();
}

static void score_undo(void *e) {
  score_env *s = e;
  if (!s->have_ref) {
    memcpy(s->ref, s->out, s->out_bytes);
    s->have_ref = 1;
  } else {
    CHECK_MSG(memcmp(s->ref, s->out, s->out_bytes) == 0,
              "score: a call after the faults differs from the undisturbed "
              "one");
  }
}

/* Bytes gmle_score writes (what 5: gmle_total_loglik's one double). */
static size_t out_size(int what, gmle_dtype odt, size_t n) {
  const size_t osz = odt == GMLE_F64 ? 8 : 4;
  switch (what) {
  case GMLE_OUT_LABEL:
    return n * sizeof(int32_t);
  case GMLE_OUT_DENSITY:
    return n * osz;
  case 5:
    return sizeof(double);
  default:
    return n * C * osz;
  }
}

TEST(alloc_sweep_score_every_output_dtype_and_covariance) {
  static const char *const cov_name[4] = {"full", "diag", "spherical", "tied"};
  static const char *const what_name[5] = {"loglik", "joint", "logpost",
                                           "label", "density"};
  tu_dataset ds, q32, q64;
  const size_t nq = 300;
  if (tu_dataset_make(&ds, 41, N, D, C, GMLE_F64, D, 1.0, 0) != 0 ||
      tu_dataset_make(&q32, 42, nq, D, C, GMLE_F32, D + 1, 1.0, 0) != 0 ||
      tu_dataset_make(&q64, 42, nq, D, C, GMLE_F64, D + 1, 1.0, 0) != 0) {
    CHECK(!"setup");
    return;
  }
  gmle_stats *st = NULL;
  CHECK_STATUS(gmle_stats_create(ctx, D, C, &st), GMLE_OK);
  if (st)
    CHECK_STATUS(tu_dataset_add(st, &ds, 0, ds.n), GMLE_OK);
  const size_t bytes = nq * C * sizeof(double);
  void *out = calloc(1, bytes), *ref = calloc(1, bytes);
  for (int cov = 0; st && out && ref && cov < 4; cov++) {
    gmle_fit_options opt;
    gmle_fit_options_init(&opt);
    opt.cov = (gmle_cov_type)cov;
    gmle_model *m = NULL;
    CHECK_STATUS(gmle_fit(st, &opt, &m), GMLE_OK);
    gmle_model *snap = m ? model_copy(m) : NULL;
    for (int what = 0; snap && what <= 5; what++)
      for (int dt = 0; dt < 2; dt++)
        for (int odt = 0; odt < 2; odt++) {
          if ((what == GMLE_OUT_LABEL || what == 5) && odt == 0)
            continue; /* out_dtype is ignored for labels and total_loglik */
          const tu_dataset *q = dt ? &q64 : &q32;
          score_env s = {m,
                         snap,
                         q->x,
                         q->dtype,
                         odt ? GMLE_F64 : GMLE_F32,
                         q->n,
                         q->stride,
                         what == 5 ? GMLE_OUT_LOGLIK : (gmle_output)what,
                         what == 5,
                         q->labels,
                         out,
                         ref,
                         out_size(what, odt ? GMLE_F64 : GMLE_F32, nq),
                         0};
          char name[96];
          snprintf(name, sizeof name, "%s %s in %s%s%s",
                   what == 5 ? "total_loglik" : "score", cov_name[cov],
                   dt ? "f64" : "f32",
                   what == 5 ? "" : (odt ? " out f64 " : " out f32 "),
                   what == 5 ? "" : what_name[what]);
          op o = {name, score_run, score_same, score_undo, ctx, NULL};
          sweep(&o, &s); /* the CPU backend may need no allocation */
        }
    model_copy_free(snap);
    gmle_model_free(m);
  }
  free(out);
  free(ref);
  gmle_stats_free(st);
  tu_dataset_free(&ds);
  tu_dataset_free(&q32);
  tu_dataset_free(&q64);
}

/* ---------------------------------------------------------------------- */
/* Files: model and statistics save/load                                    */
/* ---------------------------------------------------------------------- */

typedef struct file_env {
  const char *path;
  int entries_before; /* files in dir before the call */
  /* save */
  const gmle_model *m;
  gmle_model *m_snap;
  const gmle_stats *st, *st_before;
  /* load */
  gmle_model *m_out, *m_ref;
  gmle_stats *s_out, *s_ref;
  int load, is_model;
} file_env;

static gmle_status file_run(void *e) {
  file_env *f = e;
  if (!f->load)
    return f->is_model ? gmle_model_save(f->m, f->path)
                       : gmle_stats_save(f->st, f->path);
  gmle_status s;
  if (f->is_model) {
    f->m_out = (gmle_model *)1;
    s = gmle_model_load(ctx, f->path, &f->m_out);
    if (s != GMLE_OK && f->m_out == (gmle_model *)1)
      f->m_out = NULL;
  } else {
    f->s_out = (gmle_stats *)1;
    s = gmle_stats_load(ctx, f->path, &f->s_out);
    if (s != GMLE_OK && f->s_out == (gmle_stats *)1)
      f->s_out = NULL;
  }
  return s;
}

static int file_same(void *e) {
  file_env *f = e;
  if (f->load)
    return f->m_out == NULL && f->s_out == NULL &&
           dir_entries(dir) == f->entries_before;
  /* a failed save leaves no file (not even a temporary one) */
  return dir_entries(dir) == f->entries_before &&
         (f->is_model ? model_state_equal(f->m, f->m_snap)
                      : stats_state_equal(f->st, f->st_before));
}

static void file_undo(void *e) {
  file_env *f = e;
  if (!f->load) {
    CHECK(dir_entries(dir) == f->entries_before + 1);
    remove(f->path);
    return;
  }
  if (f->is_model) {
    if (!f->m_ref)
      f->m_ref = f->m_out;
    else {
      CHECK(f->m_out && model_state_equal(f->m_out, f->m_ref));
      gmle_model_free(f->m_out);
    }
    f->m_out = NULL;
  } else {
    if (!f->s_ref)
      f->s_ref = f->s_out;
    else {
      CHECK(f->s_out && stats_state_equal(f->s_out, f->s_ref));
      gmle_stats_free(f->s_out);
    }
    f->s_out = NULL;
  }
}

TEST(alloc_sweep_model_and_stats_save_and_load) {
  tu_dataset ds;
  if (tu_dataset_make(&ds, 51, N, D, C, GMLE_F64, D, 1.0, 1) != 0) {
    CHECK(!"setup");
    return;
  }
  gmle_stats *st = NULL;
  gmle_model *m = NULL;
  CHECK_STATUS(gmle_stats_create(ctx, D, C, &st), GMLE_OK);
  if (st) {
    CHECK_STATUS(tu_dataset_add(st, &ds, 0, ds.n), GMLE_OK);
    CHECK_STATUS(gmle_stats_set_class_names(st, class_names), GMLE_OK);
    CHECK_STATUS(gmle_fit(st, NULL, &m), GMLE_OK);
  }
  gmle_stats *st_before = clone_or_null(st);
  gmle_model *m_snap = m ? model_copy(m) : NULL;
  char path[1100];
  for (int is_model = 0; m && st_before && m_snap && is_model < 2; is_model++) {
    tu_path_join(path, sizeof path, dir, is_model ? "m.npz" : "s.gst");
    for (int load = 0; load < 2; load++) {
      file_env f = {path, dir_entries(dir),
                    m,    m_snap,
                    st,   st_before,
                    NULL, NULL,
                    NULL, NULL,
                    load, is_model};
      if (load) {
        /* the file to load, written once undisturbed */
        CHECK_STATUS(is_model ? gmle_model_save(m, path)
                              : gmle_stats_save(st, path),
                     GMLE_OK);
        f.entries_before = dir_entries(dir);
      }
      char name[64];
      snprintf(name, sizeof name, "%s_%s", is_model ? "model" : "stats",
               load ? "load" : "save");
      op o = {name, file_run, file_same, file_undo, ctx, NULL};
      CHECK(sweep(&o, &f) > 0);
      if (load) {
        /* what was loaded is what was saved */
        if (is_model && f.m_ref)
          CHECK(tu_models_bit_equal(f.m_ref, m));
        if (!is_model && f.s_ref)
          CHECK(tu_stats_raw_equal(f.s_ref, st));
        remove(path);
      }
      gmle_model_free(f.m_ref);
      gmle_stats_free(f.s_ref);
    }
  }
  model_copy_free(m_snap);
  gmle_model_free(m);
  gmle_stats_free(st);
  gmle_stats_free(st_before);
  tu_dataset_free(&ds);
}

/* ---------------------------------------------------------------------- */
/* Readers: open and read, .npy and CSV                                     */
/* ---------------------------------------------------------------------- */

typedef struct reader_env {
  const char *path;
  gmle_reader_options opt;
  int read; /* 0: sweep open; 1: sweep read on an open reader */
  gmle_reader *r;
  double buf[64 * 4], ref[64 * 4];
  const char *labels[64];
  char ref_labels[64][8];
  size_t n_ref;
  int have_ref;
} reader_env;

static gmle_status reader_run(void *e) {
  reader_env *r = e;
  if (!r->read) {
    r->r = (gmle_reader *)1;
    gmle_status s = gmle_reader_open(ctx, r->path, &r->opt, &r->r);
    if (s != GMLE_OK && r->r == (gmle_reader *)1)
      r->r = NULL;
    return s;
  }
  size_t n = 0;
  const int lab = r->opt.label_column != NULL;
  gmle_status s =
      gmle_reader_read(r->r, r->buf, 64, &n, lab ? r->labels : NULL);
  if (s == GMLE_OK && !r->have_ref) {
    r->n_ref = n;
    memcpy(r->ref, r->buf, sizeof r->buf);
    for (size_t i = 0; lab && i < n; i++)
      snprintf(r->ref_labels[i], sizeof r->ref_labels[i], "%s", r->labels[i]);
    r->have_ref = 1;
  } else if (s == GMLE_OK) {
    CHECK(n == r->n_ref);
    CHECK(memcmp(r->buf, r->ref, n * 4 * sizeof(double)) == 0);
    for (size_t i = 0; lab && i < n && i < r->n_ref; i++)
      CHECK(strcmp(r->labels[i], r->ref_labels[i]) == 0);
  }
  return s;
}

static int reader_same(void *e) {
  reader_env *r = e;
  if (!r->read)
    return r->r == NULL;
  return gmle_reader_offset(r->r) == 0;
}

static void reader_undo(void *e) {
  reader_env *r = e;
  if (!r->read) {
    CHECK(r->r != NULL && gmle_reader_cols(r->r) == 3);
    gmle_reader_free(r->r);
    r->r = NULL;
    return;
  }
  CHECK(gmle_reader_offset(r->r) == r->n_ref);
  /* a fresh reader, whose first read grows its buffers again */
  gmle_reader_free(r->r);
  r->r = NULL;
  CHECK_STATUS(gmle_reader_open(ctx, r->path, &r->opt, &r->r), GMLE_OK);
}

/* After a failed read: the same reader reads the same rows, then a fresh
 * one is opened for the next allocation to fail. */
static void reader_reset(void *e) {
  reader_env *r = e;
  if (!r->read)
    return;
  CHECK_STATUS(reader_run(r), GMLE_OK); /* compares with the reference */
  reader_undo(r);
}

TEST(alloc_sweep_reader_open_and_read_npy_and_csv) {
  char npy[1100], csv[1100];
  tu_path_join(npy, sizeof npy, dir, "x.npy");
  tu_path_join(csv, sizeof csv, dir, "x.csv");
  /* .npy: 40 rows x 3 float64 through the library's own writer */
  double rows[40 * 3];
  for (int i = 0; i < 40 * 3; i++)
    rows[i] = 0.25 * i - 3.0;
  gmle_writer *w = NULL;
  CHECK_STATUS(gmle_writer_open(ctx, npy, GMLE_ELEM_F64, 3, 0, &w), GMLE_OK);
  if (w) {
    CHECK_STATUS(gmle_writer_write(w, rows, 40), GMLE_OK);
    CHECK_STATUS(gmle_writer_commit(w), GMLE_OK);
  }
  /* CSV with a header and a quoted label column */
  FILE *f = fopen(csv, "w");
  CHECK(f != NULL);
  if (f) {
    fputs("a,b,label,c\n", f);
    for (int i = 0; i < 40; i++)
      fprintf(f, "%d.5,%d,\"%s\",-%d.25\n", i, 2 * i, class_names[i % 3], i);
    fclose(f);
  }
  for (int kind = 0; kind < 2; kind++)
    for (int read = 0; read < 2; read++) {
      reader_env *r = calloc(1, sizeof *r);
      if (!r) {
        CHECK(!"setup");
        continue;
      }
      r->path = kind ? csv : npy;
      gmle_reader_options_init(&r->opt);
      if (kind)
        r->opt.label_column = "label";
      r->read = read;
      if (read)
        CHECK_STATUS(gmle_reader_open(ctx, r->path, &r->opt, &r->r), GMLE_OK);
      char name[64];
      snprintf(name, sizeof name, "reader_%s %s", read ? "read" : "open",
               kind ? "csv (header, label column)" : "npy");
      op o = {name, reader_run, reader_same, reader_undo, ctx, reader_reset};
      if (!read || r->r)
        sweep(&o, r); /* a .npy read may need no allocation */
      if (read && r->have_ref) {
        CHECK(r->n_ref == 40);
        CHECK(r->ref[3] == (kind ? 1.5 : rows[3]));
      }
      gmle_reader_free(r->r);
      free(r);
    }
  remove(npy);
  remove(csv);
}

/* ---------------------------------------------------------------------- */
/* Contexts                                                                */
/* ---------------------------------------------------------------------- */

TEST(alloc_sweep_context_create_explicit_and_auto) {
  /* ctest sets GMLE_BACKEND: AUTO then means that backend explicitly */
  const char *env = getenv("GMLE_BACKEND");
  gmle_backend want = GMLE_BACKEND_CPU;
  if (env && *env)
    CHECK_STATUS(gmle_backend_parse(env, &want), GMLE_OK);
  for (int automatic = 0; automatic < 2; automatic++) {
    const gmle_backend b = automatic ? GMLE_BACKEND_AUTO : want;
    gmle_context *ref = NULL;
    gmle__test_fail_alloc_after(LONG_MAX);
    gmle_status s = gmle_context_create(b, -1, &ref);
    const long n = gmle__test_alloc_count();
    gmle__test_fail_alloc_after(0);
    CHECK_STATUS(s, GMLE_OK);
    if (s != GMLE_OK) {
      gmle_context_free(ref);
      continue;
    }
    for (long k = 1; k <= n; k++) {
      gmle_context *c = NULL;
      gmle__test_fail_alloc_after(k);
      s = gmle_context_create(b, -1, &c);
      gmle__test_fail_alloc_after(0);
      if (s == GMLE_OK) {
        /* only acceptable if the result is the undisturbed one */
        CHECK_MSG(gmle_context_backend(c) == gmle_context_backend(ref) &&
                      strcmp(gmle_context_device_name(c),
                             gmle_context_device_name(ref)) == 0,
                  "context_create: allocation %ld failed, got \"%s\" not "
                  "\"%s\"",
                  k, gmle_context_device_name(c),
                  gmle_context_device_name(ref));
      } else {
        CHECK_MSG(s == GMLE_E_OUT_OF_MEMORY,
                  "context_create: allocation %ld of %ld: %s (%s)", k, n,
                  gmle_status_name(s), gmle_context_error(c));
      }
      gmle_context_free(c);
    }
    printf("  %-44s %3ld allocations swept\n",
           automatic ? "context_create auto" : "context_create explicit", n);
    total_points += n;
    total_ops++;
    gmle_context_free(ref);
  }
}

int main(int argc, char **argv) {
  CHECK_INIT(argc, argv);
  ctx = tu_context();
  if (!ctx || tu_tmpdir_create(dir, sizeof dir) != 0) {
    printf("no context or temporary directory\n");
    gmle_context_free(ctx);
    return 1;
  }
  printf("backend: %s\n", gmle_context_device_name(ctx));
  RUN(alloc_sweep_stats_add_every_mode_dtype_labels_weights);
  RUN(alloc_sweep_stats_merge_with_and_without_names);
  RUN(alloc_sweep_stats_create_and_clone);
  RUN(alloc_sweep_fit_every_covariance_and_regularisation);
  RUN(alloc_sweep_score_every_output_dtype_and_covariance);
  RUN(alloc_sweep_model_and_stats_save_and_load);
  RUN(alloc_sweep_reader_open_and_read_npy_and_csv);
  RUN(alloc_sweep_context_create_explicit_and_auto);
  printf("total: %ld allocation failures injected over %ld operations\n",
         total_points, total_ops);
  tu_tmpdir_remove(dir);
  gmle_context_free(ctx);
  return CHECK_DONE();
}
