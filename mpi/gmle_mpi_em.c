/* gmle_mpi_em.c -- gmle_mpi_em_fit: EM over the rows of every rank, one
 * allreduce of the EM statistics per iteration; the initialisations on
 * rank 0 from a sample of every rank's rows (include/gmle_mpi.h). */
#include "mpi_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- passes over this rank's rows ------------------------------------------
 */

/* One batch of a gmle_batch_source. */
typedef struct batch {
  const void *x;
  gmle_dtype dtype;
  size_t n, stride;
  const int32_t *labels;
  const double *weights;
} batch;

/* Every batch of src through add (rewound first). */
static gmle_status local_pass(const gmle_batch_source *src,
                              gmle_status (*add)(void *user, const batch *b),
                              void *user) {
  GMLE_MPI_TRY(src->rewind(src->user));
  for (batch b;;) {
    memset(&b, 0, sizeof b);
    GMLE_MPI_TRY(src->next(src->user, &b.x, &b.dtype, &b.n, &b.stride,
                           &b.labels, &b.weights));
    if (b.n == 0)
      return GMLE_OK;
    GMLE_MPI_TRY(add(user, &b));
  }
}

/* A source of no rows (to have gmle_em_fit check the options). */
static gmle_status none_rewind(void *user) {
  (void)user;
  return GMLE_OK;
}
static gmle_status none_next(void *user, const void **x, gmle_dtype *dtype,
                             size_t *n_rows, size_t *row_stride,
                             const int32_t **labels, const double **weights) {
  (void)user;
  *x = NULL;
  *dtype = GMLE_F64;
  *n_rows = 0;
  *row_stride = 0;
  *labels = NULL;
  *weights = NULL;
  return GMLE_OK;
}

/* ---- the sample the initialisations start from -----------------------------
 */

/* This rank's sample of each class's rows: every stride-th row of the
 * class (stride doubling whenever the buffer fills, so that the rows kept
 * are spread evenly over all the class's rows read); every row is
 * validated as EM's first pass validates it (the statistics `check`). */
typedef struct reservoir {
  size_t D, C, cap;
  uint64_t *seen;   /* [C] rows read */
  uint64_t *stride; /* [C] */
  size_t *held;     /* [C] */
  double *x;        /* [C][cap][D] */
  gmle_stats *check;
} reservoir;

/* Keep every other row held of class c (those of an even position). */
static void thin(reservoir *rv, size_t c) {
  double *X = rv->x + c * rv->cap * rv->D;
  const size_t keep = (rv->held[c] + 1) / 2;
  for (size_t i = 1; i < keep; i++)
    memcpy(X + i * rv->D, X + 2 * i * rv->D, rv->D * sizeof *X);
  rv->held[c] = keep;
  rv->stride[c] *= 2;
}

static gmle_status reservoir_add(void *user, const batch *b) {
  reservoir *rv = user;
  GMLE_MPI_TRY(gmle_stats_add(rv->check, b->x, b->dtype, b->n, b->stride,
                              rv->C > 1 ? b->labels : NULL, b->weights));
  for (size_t r = 0; r < b->n; r++) {
    const size_t c = rv->C > 1 ? (size_t)b->labels[r] : 0;
    const uint64_t index = rv->seen[c]++;
    if (index % rv->stride[c] != 0)
      continue;
    if (rv->held[c] == rv->cap) {
      thin(rv, c);
      if (index % rv->stride[c] != 0)
        continue;
    }
    double *to = rv->x + (c * rv->cap + rv->held[c]++) * rv->D;
    const size_t at = r * b->stride;
    for (size_t j = 0; j < rv->D; j++)
      to[j] = b->dtype == GMLE_F32 ? (double)((const float *)b->x)[at + j]
                                   : ((const double *)b->x)[at + j];
  }
  return GMLE_OK;
}

static void reservoir_free(reservoir *rv) {
  free(rv->seen);
  free(rv->stride);
  free(rv->held);
  free(rv->x);
  gmle_stats_free(rv->check);
}

/* Rows per class of the sample, as gmle_em_fit sizes its own: about 256
 * MiB in all, at least 4 rows per component, at most sample_rows. */
static size_t sample_cap(size_t D, size_t C, const gmle_em_options *o) {
  const size_t K = o->n_components;
  size_t cap = ((size_t)32 << 20) / (C * D);
  cap = cap < 4 * K ? 4 * K : cap;
  cap = cap > o->sample_rows ? o->sample_rows : cap;
  return cap < K ? K : cap;
}

static gmle_status reservoir_fill(gmle_context *ctx, size_t D, size_t C,
                                  const gmle_batch_source *src,
                                  const gmle_em_options *o, reservoir *rv) {
  memset(rv, 0, sizeof *rv);
  rv->D = D;
  rv->C = C;
  rv->cap = sample_cap(D, C, o);
  rv->cap = rv->cap < 2 ? 2 : rv->cap; /* thin() keeps half */
  rv->seen = calloc(C, sizeof *rv->seen);
  rv->stride = malloc(C * sizeof *rv->stride);
  rv->held = calloc(C, sizeof *rv->held);
  rv->x = malloc(C * rv->cap * D * sizeof *rv->x);
  if (!rv->seen || !rv->stride || !rv->held || !rv->x)
    return GMLE_E_OUT_OF_MEMORY;
  for (size_t c = 0; c < C; c++)
    rv->stride[c] = 1;
  GMLE_MPI_TRY(gmle_stats_create_mode(ctx, D, C, GMLE_STATS_DIAG, &rv->check));
  return local_pass(src, reservoir_add, rv);
}

/* How many of its sampled rows each rank sends of each class (q[r*C + c]),
 * from every rank's counts (counts[r*2C + c] rows read, counts[r*2C + C +
 * c] rows held): about min(cap, rows held) in all, in proportion to each
 * rank's rows of the class, at most what the rank holds. The same on
 * every rank. */
static void quotas(const uint64_t *counts, int P, size_t C, size_t cap,
                   size_t *q) {
  for (size_t c = 0; c < C; c++) {
    uint64_t total = 0, held_all = 0;
    for (int r = 0; r < P; r++) {
      total += counts[(size_t)r * 2 * C + c];
      held_all += counts[(size_t)r * 2 * C + C + c];
    }
    const uint64_t want = held_all < cap ? held_all : cap;
    uint64_t given = 0;
    for (int r = 0; r < P; r++) {
      const uint64_t seen = counts[(size_t)r * 2 * C + c];
      const uint64_t held = counts[(size_t)r * 2 * C + C + c];
      uint64_t k =
          total ? (uint64_t)floor((double)want * ((double)seen / (double)total))
                : 0;
      q[(size_t)r * C + c] = (size_t)(k > held ? held : k);
      given += q[(size_t)r * C + c];
    }
    for (int r = 0; given < want; r = (r + 1) % P)
      if (q[(size_t)r * C + c] < counts[(size_t)r * 2 * C + C + c]) {
        q[(size_t)r * C + c]++;
        given++;
      }
  }
}

/* This rank's q[c] rows of each class, spread evenly over those held,
 * class after class. */
static double *pick_rows(const reservoir *rv, const size_t *q, size_t *n_rows) {
  size_t n = 0;
  for (size_t c = 0; c < rv->C; c++)
    n += q[c];
  double *out = malloc((n ? n : 1) * rv->D * sizeof *out);
  if (!out)
    return NULL;
  double *to = out;
  for (size_t c = 0; c < rv->C; c++) {
    const double *X = rv->x + c * rv->cap * rv->D;
    for (size_t i = 0; i < q[c]; i++, to += rv->D)
      memcpy(to, X + (i * rv->held[c] / q[c]) * rv->D, rv->D * sizeof *to);
  }
  *n_rows = n;
  return out;
}

/* The gathered sample, on rank 0: rows with their classes. */
typedef struct sample {
  size_t D, n, at;
  double *x;
  int32_t *labels;
  int labelled;
} sample;

static gmle_status sample_rewind(void *user) {
  ((sample *)user)->at = 0;
  return GMLE_OK;
}

static gmle_status sample_next(void *user, const void **x, gmle_dtype *dtype,
                               size_t *n_rows, size_t *row_stride,
                               const int32_t **labels, const double **weights) {
  sample *sp = user;
  const size_t k = sp->n - sp->at < 65536 ? sp->n - sp->at : 65536;
  *x = sp->x + sp->at * sp->D;
  *dtype = GMLE_F64;
  *n_rows = k;
  *row_stride = sp->D;
  *labels = sp->labelled ? sp->labels + sp->at : NULL;
  *weights = NULL;
  sp->at += k;
  return GMLE_OK;
}

/* Every rank's sample rows on rank 0 (sp->x NULL elsewhere). */
static gmle_status gather_sample(gmle_mpi *h, reservoir *rv, gmle_status s,
                                 sample *sp) {
  const int P = gmle_mpi_size(h), me = gmle_mpi_rank(h);
  const size_t C = rv->C, D = rv->D;
  memset(sp, 0, sizeof *sp);
  sp->D = D;
  sp->labelled = C > 1;
  size_t *off = malloc(((size_t)P + 1) * sizeof *off);
  size_t *q = malloc((size_t)P * C * sizeof *q);
  uint64_t *counts = malloc(2 * C * sizeof *counts);
  unsigned char *all = NULL, *rows = NULL;
  double *mine = NULL;
  size_t n_mine = 0;
  if (s == GMLE_OK && (!off || !q || !counts))
    s = GMLE_E_OUT_OF_MEMORY;
  for (size_t c = 0; s == GMLE_OK && c < C; c++) {
    counts[c] = rv->seen[c];
    counts[C + c] = rv->held[c];
  }
  s = off ? gmle_mpi__gather(h, s, -1, counts, 2 * C * sizeof *counts, &all,
                             off)
          : gmle_mpi_agree(h, s);
  if (s == GMLE_OK) {
    uint64_t *all_counts = malloc((size_t)P * 2 * C * sizeof *all_counts);
    if (all_counts) {
      memcpy(all_counts, all, (size_t)P * 2 * C * sizeof *all_counts);
      quotas(all_counts, P, C, rv->cap, q);
      free(all_counts);
      mine = pick_rows(rv, q + (size_t)me * C, &n_mine);
    }
    s = gmle_mpi__gather(h, mine ? GMLE_OK : GMLE_E_OUT_OF_MEMORY, 0, mine,
                         n_mine * D * sizeof *mine, &rows, off);
  }
  if (s == GMLE_OK && me == 0) {
    sp->n = off[P] / (D * sizeof(double));
    sp->x = (double *)rows;
    rows = NULL;
    sp->labels = malloc((sp->n ? sp->n : 1) * sizeof *sp->labels);
    if (!sp->labels)
      s = GMLE_E_OUT_OF_MEMORY;
    for (size_t r = 0, i = 0; s == GMLE_OK && r < (size_t)P; r++)
      for (size_t c = 0; c < C; c++)
        for (size_t k = 0; k < q[r * C + c]; k++)
          sp->labels[i++] = (int32_t)c;
  }
  free(off);
  free(q);
  free(counts);
  free(all);
  free(rows);
  free(mine);
  return s;
}

/* ---- the starting mixture, made on rank 0 and sent to every rank ----------
 */

/* Covariance values of a mixture (gmle_mixture_create's layout). */
static size_t cov_len(gmle_cov_type cov, size_t D, size_t C, size_t K) {
  switch (cov) {
  case GMLE_COV_FULL:
    return C * K * D * D;
  case GMLE_COV_DIAG:
    return C * K * D;
  case GMLE_COV_SPHERICAL:
    return C * K;
  case GMLE_COV_TIED:
    return C * D * D;
  }
  return 0;
}

/* A mixture's parameters as one array: weights, means, covariances,
 * priors, counts. */
typedef struct params {
  size_t G, D, clen, C, len;
  double *v;
} params;

static gmle_status params_alloc(params *p, size_t D, size_t C, size_t K,
                                gmle_cov_type cov) {
  p->G = C * K;
  p->D = D;
  p->C = C;
  p->clen = cov_len(cov, D, C, K);
  p->len = p->G + p->G * D + p->clen + 2 * C;
  p->v = malloc(p->len * sizeof *p->v);
  return p->v ? GMLE_OK : GMLE_E_OUT_OF_MEMORY;
}

static gmle_status params_of(const gmle_model *m, params *p) {
  double *pri = p->v + p->G + p->G * p->D + p->clen;
  GMLE_MPI_TRY(
      gmle_mixture_params(m, p->v, p->v + p->G, p->v + p->G + p->G * p->D));
  for (size_t c = 0; c < p->C; c++) {
    GMLE_MPI_TRY(gmle_model_prior(m, c, pri + c));
    GMLE_MPI_TRY(gmle_model_count(m, c, pri + p->C + c));
  }
  return GMLE_OK;
}

/* Initialisation `run` on rank 0 from the sample, then the same start on
 * every rank. */
static gmle_status start_from_sample(gmle_mpi *h, gmle_context *ctx, size_t D,
                                     size_t C, sample *sp,
                                     const gmle_em_options *o, size_t run,
                                     gmle_model **out) {
  *out = NULL;
  params p;
  gmle_status s = params_alloc(&p, D, C, o->n_components, o->cov);
  if (s == GMLE_OK && gmle_mpi_rank(h) == 0) {
    gmle_em_options o0 = *o;
    o0.max_iter = 0;
    o0.n_init = 1;
    o0.seed = o->seed + run;
    o0.progress = NULL;
    gmle_batch_source src = {sp, sample_rewind, sample_next};
    gmle_model *m = NULL;
    s = gmle_em_fit(ctx, D, C, &src, &o0, &m);
    if (s == GMLE_OK)
      s = params_of(m, &p);
    gmle_model_free(m);
  }
  s = gmle_mpi_agree(h, s);
  if (s == GMLE_OK)
    s = gmle_mpi__bcast(h, 0, p.v, p.len * sizeof *p.v);
  if (s == GMLE_OK) {
    const double *w = p.v, *mu = w + p.G, *cv = mu + p.G * D,
                 *pri = cv + p.clen;
    s = gmle_mpi_agree(h,
                       gmle_mixture_create(ctx, D, C, o->n_components, o->cov,
                                           w, mu, cv, pri, pri + C, out));
  }
  free(p.v);
  return s;
}

/* ---- EM, its passes combined across the ranks ------------------------------
 */

/* What the callbacks of one run need. */
typedef struct combined {
  gmle_mpi *h;
  gmle_context *ctx;
  const gmle_em_options *o; /* the caller's (progress) */
  size_t run;
  double rows; /* every rank's rows of the last pass */
} combined;

static gmle_status combine_stats(void *user, gmle_em_stats **es) {
  combined *c = user;
  gmle_em_stats *all = NULL;
  GMLE_MPI_TRY(gmle_mpi_em_stats_allreduce(c->h, c->ctx, *es, &all));
  gmle_em_stats_free(*es);
  *es = all;
  return gmle_em_stats_loglik(all, NULL, &c->rows);
}

static gmle_status combine_sums(void *user, double *v, size_t n) {
  return gmle_mpi_sum(((combined *)user)->h, v, n);
}

/* The caller's progress, with the run and every rank's rows. */
static void progress(void *user, size_t run, size_t iter, double lb,
                     double change, double rows, double seconds) {
  const combined *c = user;
  (void)run;
  (void)rows;
  c->o->progress(c->o->progress_user, c->run, iter, lb, change, c->rows,
                 seconds);
}

/* gmle_em_fit from `start` with its passes combined; a failure of this rank
 * alone (its rows, its source) is agreed, so that the others return too. */
static gmle_status em_from(gmle_mpi *h, gmle_context *ctx, size_t D, size_t C,
                           const gmle_batch_source *src,
                           const gmle_em_options *o, const gmle_model *start,
                           size_t run, gmle_model **out) {
  combined c = {h, ctx, o, run, 0};
  const gmle_em_combine combine = {&c, combine_stats, combine_sums};
  gmle_em_options o1 = *o;
  o1.init = GMLE_INIT_MODEL;
  o1.init_model = start;
  o1.n_init = 1;
  o1.combine = &combine;
  o1.progress = o->progress ? progress : NULL;
  o1.progress_user = &c;
  gmle_status s = gmle_em_fit(ctx, D, C, src, &o1, out);
  if (s != GMLE_OK && gmle_mpi_failed_rank(h) < 0)
    s = gmle_mpi_agree(h, s);
  return s;
}

/* ---- gmle_mpi_em_fit -------------------------------------------------------
 */

/* The options with the defaults where the caller's struct ends. */
static gmle_status read_options(const gmle_em_options *opt,
                                gmle_em_options *o) {
  gmle_em_options_init(o);
  if (!opt)
    return GMLE_OK;
  if (opt->struct_size == 0)
    return GMLE_E_INVALID_ARG;
  memcpy(o, opt, opt->struct_size < sizeof *o ? opt->struct_size : sizeof *o);
  o->struct_size = sizeof *o;
  return GMLE_OK;
}

/* gmle_em_fit on no rows checks the options before it reads anything:
 * GMLE_E_EMPTY (no rows) means they are fine. */
static gmle_status check_options(gmle_context *ctx, size_t D, size_t C,
                                 const gmle_em_options *o) {
  gmle_em_options o0 = *o;
  o0.max_iter = 0;
  o0.progress = NULL;
  o0.combine = NULL;
  gmle_batch_source none = {NULL, none_rewind, none_next};
  gmle_model *m = NULL;
  gmle_status s = gmle_em_fit(ctx, D, C, &none, &o0, &m);
  gmle_model_free(m);
  return s == GMLE_E_EMPTY ? GMLE_OK : s;
}

/* Every initialisation from the sample and its EM; the best run in *best
 * (the highest final lower bound, the first on ties, as gmle_em_fit). */
static gmle_status runs_from_sample(gmle_mpi *h, gmle_context *ctx, size_t D,
                                    size_t C, const gmle_batch_source *src,
                                    const gmle_em_options *o, sample *sp,
                                    gmle_model **best, size_t *best_run) {
  double best_lb = -INFINITY;
  for (size_t run = 0; run < o->n_init; run++) {
    gmle_model *start = NULL, *m = NULL;
    gmle_status s = start_from_sample(h, ctx, D, C, sp, o, run, &start);
    if (s == GMLE_OK)
      s = em_from(h, ctx, D, C, src, o, start, run, &m);
    gmle_model_free(start);
    if (s != GMLE_OK)
      return s;
    gmle_em_report rep;
    const double lb = gmle_model_em_report(m, &rep) == GMLE_OK && rep.n_iter > 0
                          ? rep.lower_bound
                          : -INFINITY;
    if (!*best || lb > best_lb) {
      gmle_model_free(*best);
      *best = m;
      best_lb = lb;
      *best_run = run;
    } else {
      gmle_model_free(m);
    }
  }
  return GMLE_OK;
}

/* The report of the kept run says how it was initialised. */
static gmle_status report_runs(gmle_model *best, const gmle_em_options *o,
                               size_t best_run) {
  gmle_em_report rep;
  GMLE_MPI_TRY(gmle_model_em_report(best, &rep));
  rep.n_init = o->n_init;
  rep.best_init = best_run;
  rep.init = o->init;
  return gmle_model_set_em_report(best, &rep);
}

gmle_status gmle_mpi_em_fit(gmle_mpi *h, gmle_context *ctx, size_t dim,
                            size_t n_classes, const gmle_batch_source *src,
                            const gmle_em_options *opt, gmle_model **out) {
  if (!h || !ctx)
    return GMLE_E_INVALID_ARG;
  gmle_em_options o;
  gmle_status s = read_options(opt, &o);
  if (s == GMLE_OK && (!out || !src || !src->rewind || !src->next))
    s = GMLE_E_INVALID_ARG;
  if (out)
    *out = NULL;
  if (s == GMLE_OK && o.combine)
    s = GMLE_E_INVALID_ARG; /* gmle_mpi combines */
  if (s == GMLE_OK && o.init == GMLE_INIT_MODEL) {
    /* Every rank has the start. */
    s = gmle_mpi_agree(h, s);
    return s == GMLE_OK
               ? em_from(h, ctx, dim, n_classes, src, &o, o.init_model, 0, out)
               : s;
  }
  if (s == GMLE_OK)
    s = check_options(ctx, dim, n_classes, &o);
  reservoir rv;
  memset(&rv, 0, sizeof rv);
  sample sp;
  memset(&sp, 0, sizeof sp);
  if (s == GMLE_OK)
    s = reservoir_fill(ctx, dim, n_classes, src, &o, &rv);
  s = gather_sample(h, &rv, s, &sp);
  reservoir_free(&rv);
  gmle_model *best = NULL;
  size_t best_run = 0;
  if (s == GMLE_OK)
    s = runs_from_sample(h, ctx, dim, n_classes, src, &o, &sp, &best,
                         &best_run);
  free(sp.x);
  free(sp.labels);
  if (s == GMLE_OK)
    s = gmle_mpi_agree(h, report_runs(best, &o, best_run));
  if (s != GMLE_OK) {
    gmle_model_free(best);
    return s;
  }
  *out = best;
  return GMLE_OK;
}
