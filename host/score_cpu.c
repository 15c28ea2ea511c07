/* score_cpu.c -- bulk scoring on the CPU in GEMM form.
 *
 * Rows are centred on the model's global centre m in double (float32 input
 * is converted first), so that |mean| >> std does not cancel. Then, with the
 * cache built by host/prepare.c:
 *   full:  Z = (X - m) [L_1^-1; ...; L_C^-1]^T, one GEMM per tile of rows
 *          and classes; z_c = Z_c - L_c^-1 (mu_c - m); q_c = |z_c|^2.
 *   tied:  Z = (X - m) L^-T once; z_c = Z - L^-1 (mu_c - m).
 *   diag/spherical: q = [X - m, (X - m)^2] K + B_c, one GEMM, where K holds
 *          -2 (mu_c - m)/var and 1/var. This expanded form loses accuracy
 *          when B_c = |mu_c - m|^2_var >> q_c (a row close to the mean of a
 *          class far from the centre); those (row, class) pairs are
 *          recomputed directly, so the result keeps ~1e-14 relative error.
 *   loglik_c = -1/2 (D log 2pi + log|Sigma_c| + q_c).
 *
 * Outputs: LOGLIK, JOINT (+ log pi_c), LOGPOST (joint - logsumexp of the
 * row's joint), DENSITY (that logsumexp), LABEL (argmax of the joint over
 * its finite entries, lowest index on ties; -1 when every class is -inf,
 * i.e. every class is empty). Empty classes give -inf, never NaN; a row
 * where every class is -inf gets LOGPOST -inf for every class.
 *
 * Threads: OpenBLAS threads the GEMMs. The reduction after each GEMM tile
 * runs on the calling thread while the tile is still in cache (tiles are
 * about 1 MiB). The output step (logsumexp, exp) is split over
 * ctx->n_threads short-lived threads when it is large enough (par_for).
 *
 * Memory: the batch in double (n x D, or n x (D+E)), the n x C matrix of
 * log-likelihoods, and a GEMM tile of at most TILE_DOUBLES doubles; all in
 * ctx->score_scratch, reused across the batches of one call. */
#include "internal.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <string.h>

/* GEMM output tile, in doubles (1 MiB: the reduction that follows reads it
 * from cache; 32 MiB tiles made full scoring twice as slow), and the fewest
 * rows a tile has (for the GEMM's efficiency). */
#define TILE_DOUBLES ((size_t)1 << 17)
#define MIN_ROWS ((size_t)64)
/* A parallel loop is worth its threads above this much work (about a
 * millisecond of one core, counting an exp as 20 flops). */
#define PAR_WORK ((size_t)1 << 21)

/* Recompute a diag/spherical q directly when B_c > GUARD * (q + D): the
 * expanded form's error is about eps * k * (q + B_c). */
#define GUARD 16.0

/* ------------------------------------------------------------------------ */
/* Parallel loops over rows                                                 */
/* ------------------------------------------------------------------------ */

/* The per-row work runs on short-lived threads that exit when their slice
 * is done, rather than on an OpenMP team: libgomp's idle workers spin for
 * milliseconds after each region, right when OpenBLAS's threads start the
 * next GEMM, which made scoring 2-4 times slower than one thread on a busy
 * 2-core machine. Creating the threads costs tens of microseconds per
 * batch, against milliseconds of work. */
typedef void (*row_fn)(void *arg, size_t lo, size_t hi);

typedef struct par_slice {
  row_fn fn;
  void *arg;
  size_t lo, hi;
} par_slice;

#define MAX_THREADS 256

static void *par_run(void *p) {
  par_slice *s = p;
  s->fn(s->arg, s->lo, s->hi);
  return NULL;
}

/* fn over [0, n) in nt slices when the work is worth it; a thread that
 * cannot be created leaves its slice to the calling thread. */
static void par_for(int nt, size_t n, size_t work, row_fn fn, void *arg) {
  size_t k = nt > 1 && work > PAR_WORK ? (size_t)nt : 1;
  if (k > MAX_THREADS)
    k = MAX_THREADS;
  if (k > n)
    k = n;
  if (k <= 1) {
    fn(arg, 0, n);
    return;
  }
  par_slice sl[MAX_THREADS];
  pthread_t th[MAX_THREADS];
  unsigned char started[MAX_THREADS];
  for (size_t i = 0; i < k; i++) {
    sl[i] = (par_slice){fn, arg, n * i / k, n * (i + 1) / k};
    started[i] = i > 0 && pthread_create(&th[i], NULL, par_run, &sl[i]) == 0;
  }
  fn(arg, sl[0].lo, sl[0].hi);
  for (size_t i = 1; i < k; i++) {
    if (started[i])
      pthread_join(th[i], NULL);
    else
      fn(arg, sl[i].lo, sl[i].hi);
  }
}

/* How a batch of n rows is cut into GEMM tiles: nr rows x cb classes. */
typedef struct plan {
  size_t nr, cb, tile; /* tile: doubles of the tile buffer (0: none) */
} plan;

static size_t min_size(size_t a, size_t b) { return a < b ? a : b; }
static size_t max_size(size_t a, size_t b) { return a > b ? a : b; }

static plan make_plan(const gmle_model *m, size_t n) {
  const size_t D = m->dim, C = m->n_classes, Ca = m->score_cache->n_active;
  plan p = {n, Ca, 0};
  if (Ca == 0)
    return p;
  switch (m->cov) {
  case GMLE_COV_FULL:
    /* classes per tile, then rows; D * Ca <= the size of the factors */
    p.cb = min_size(Ca, max_size(1, TILE_DOUBLES / (MIN_ROWS * D)));
    p.nr = min_size(n, max_size(MIN_ROWS, TILE_DOUBLES / (p.cb * D)));
    p.tile = p.nr * p.cb * D;
    break;
  case GMLE_COV_TIED:
    p.nr = min_size(n, max_size(MIN_ROWS, TILE_DOUBLES / D));
    p.tile = p.nr * D;
    break;
  case GMLE_COV_DIAG:
  case GMLE_COV_SPHERICAL:
    p.nr = min_size(n, max_size(MIN_ROWS, TILE_DOUBLES / Ca));
    /* with every class active the GEMM writes into J itself */
    p.tile = Ca < C ? p.nr * Ca : 0;
    break;
  }
  return p;
}

static double *scratch(gmle_context *ctx, size_t n_doubles) {
  size_t bytes;
  if (gmle__mul_size(n_doubles, sizeof(double), &bytes))
    return NULL;
  if (ctx->score_scratch && ctx->score_scratch_bytes >= bytes)
    return ctx->score_scratch;
  gmle__free(ctx->score_scratch);
  ctx->score_scratch = gmle__malloc(bytes);
  ctx->score_scratch_bytes = ctx->score_scratch ? bytes : 0;
  return ctx->score_scratch;
}

static double get(const gmle__batch *b, size_t r, size_t j) {
  const size_t k = r * b->row_stride + j;
  return b->dtype == GMLE_F32 ? (double)((const float *)b->x)[k]
                              : ((const double *)b->x)[k];
}

/* What the loops over the rows of a batch work on. */
typedef struct row_job {
  const gmle_model *m;
  const gmle__batch *b;
  double *X, *J;
  size_t P;
  gmle_output what;
  gmle_dtype odt;
  void *out;
} row_job;

/* X[r] = [x_r - m, (x_r - m)^2 (diag) or |x_r - m|^2 (spherical)]. */
static void centre_rows(void *arg, size_t lo, size_t hi) {
  const row_job *jb = arg;
  const gmle_model *m = jb->m;
  const gmle__batch *b = jb->b;
  const size_t D = m->dim, P = jb->P;
  const double *mc = m->score_cache->center;
  for (size_t r = lo; r < hi; r++) {
    double *xr = jb->X + r * P;
    if (b->dtype == GMLE_F32) {
      const float *src = (const float *)b->x + r * b->row_stride;
      for (size_t j = 0; j < D; j++)
        xr[j] = (double)src[j] - mc[j];
    } else {
      const double *src = (const double *)b->x + r * b->row_stride;
      for (size_t j = 0; j < D; j++)
        xr[j] = src[j] - mc[j];
    }
    if (m->cov == GMLE_COV_DIAG) {
      for (size_t j = 0; j < D; j++)
        xr[D + j] = xr[j] * xr[j];
    } else if (m->cov == GMLE_COV_SPHERICAL) {
      double q = 0;
      for (size_t j = 0; j < D; j++)
        q += xr[j] * xr[j];
      xr[D] = q;
    }
  }
}

/* One GEMM tile: rows [r0, r0 + rn), active classes [a0, a0 + an). */
typedef struct tile {
  size_t r0, rn, a0, an;
  const double *T; /* GEMM output; row stride ld */
  size_t ld;
} tile;

static void gemm_tile(const gmle_model *m, const double *X, size_t P, double *J,
                      double *T, tile *t) {
  const gmle__score_cache *sc = m->score_cache;
  const size_t D = m->dim, C = m->n_classes, Ca = sc->n_active;
  switch (m->cov) {
  case GMLE_COV_FULL:
    t->ld = t->an * D;
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)t->rn, (int)t->ld,
                (int)D, 1.0, X + t->r0 * D, (int)D, sc->w + t->a0 * D * D,
                (int)D, 0.0, T, (int)t->ld);
    t->T = T;
    break;
  case GMLE_COV_TIED:
    t->ld = D;
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)t->rn, (int)D,
                (int)D, 1.0, X + t->r0 * D, (int)D, sc->w, (int)D, 0.0, T,
                (int)D);
    t->T = T;
    break;
  case GMLE_COV_DIAG:
  case GMLE_COV_SPHERICAL: {
    double *Q = Ca == C ? J + t->r0 * C : T;
    t->ld = Ca;
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)t->rn, (int)Ca,
                (int)P, 1.0, X + t->r0 * P, (int)P, sc->w, (int)Ca, 0.0, Q,
                (int)Ca);
    t->T = Q;
    break;
  }
  }
}

/* Log-likelihoods of row r (of the batch) for the tile's classes, into jr. */
static void reduce_row(const gmle_model *m, const gmle__batch *b, const tile *t,
                       size_t r, double *jr) {
  const gmle__score_cache *sc = m->score_cache;
  const size_t D = m->dim;
  const double *tr = t->T + (r - t->r0) * t->ld;
  if (m->cov == GMLE_COV_FULL || m->cov == GMLE_COV_TIED) {
    const int full = m->cov == GMLE_COV_FULL;
    for (size_t a = t->a0; a < t->a0 + t->an; a++) {
      const double *z = full ? tr + (a - t->a0) * D : tr;
      const double *bc = sc->b + a * D;
      double q = 0;
      for (size_t i = 0; i < D; i++) {
        const double d = z[i] - bc[i];
        q += d * d;
      }
      jr[sc->active[a]] = sc->lconst[a] - 0.5 * q;
    }
    return;
  }
  const int diag = m->cov == GMLE_COV_DIAG;
  for (size_t a = 0; a < sc->n_active; a++) {
    const size_t c = sc->active[a];
    double q = tr[a] + sc->b[a];
    if (sc->b[a] > GUARD * (q + (double)D)) {
      const double *mu = m->means + c * D;
      const double *sd = diag ? m->factor + c * D : m->factor + c;
      q = 0;
      for (size_t j = 0; j < D; j++) {
        const double d = (get(b, r, j) - mu[j]) / sd[diag ? j : 0];
        q += d * d;
      }
    }
    jr[c] = sc->lconst[a] - 0.5 * (q > 0 ? q : 0.0);
  }
}

static void put(void *out, gmle_dtype t, size_t k, double v) {
  if (t == GMLE_F32)
    ((float *)out)[k] = (float)v;
  else
    ((double *)out)[k] = v;
}

/* The outputs of row r from its log-likelihoods (row is modified). */
static void emit_row(const gmle_model *m, double *row, size_t r,
                     gmle_output what, gmle_dtype odt, void *out) {
  const size_t C = m->n_classes;
  const double *lp = m->log_priors;
  if (what == GMLE_OUT_LOGLIK) {
    for (size_t c = 0; c < C; c++)
      put(out, odt, r * C + c, row[c]);
    return;
  }
  for (size_t c = 0; c < C; c++)
    row[c] += lp[c]; /* -inf stays -inf: empty classes have lp = -inf */
  switch (what) {
  case GMLE_OUT_JOINT:
    for (size_t c = 0; c < C; c++)
      put(out, odt, r * C + c, row[c]);
    break;
  case GMLE_OUT_LOGPOST: {
    const double l = gmle__logsumexp(row, C);
    for (size_t c = 0; c < C; c++)
      put(out, odt, r * C + c, l == -INFINITY ? -INFINITY : row[c] - l);
    break;
  }
  case GMLE_OUT_DENSITY:
    put(out, odt, r, gmle__logsumexp(row, C));
    break;
  case GMLE_OUT_LABEL: {
    size_t best = C;
    for (size_t c = 0; c < C; c++)
      if (isfinite(row[c]) && (best == C || row[c] > row[best]))
        best = c;
    ((int32_t *)out)[r] = best == C ? -1 : (int32_t)best;
    break;
  }
  case GMLE_OUT_LOGLIK:
    break;
  }
}

/* The outputs of rows [lo, hi) of the batch. */
static void emit_rows(void *arg, size_t lo, size_t hi) {
  const row_job *jb = arg;
  const size_t C = jb->m->n_classes;
  for (size_t r = lo; r < hi; r++)
    emit_row(jb->m, jb->J + r * C, r, jb->what, jb->odt, jb->out);
}

gmle_status gmle__cpu_score(gmle_context *ctx, const gmle_model *m,
                            const gmle__batch *b, gmle_output what,
                            gmle_dtype out_dtype, void *out) {
  const gmle__score_cache *sc = m->score_cache;
  GMLE_RETURN_IF(!sc, ctx, GMLE_E_INTERNAL,
                 "score: the model has not been prepared for scoring");
  const size_t D = m->dim, C = m->n_classes, Ca = sc->n_active, n = b->n_rows;
  if (n == 0)
    return GMLE_OK;
  const int nt = ctx->n_threads > 0 ? ctx->n_threads : 1;
  const int full = m->cov == GMLE_COV_FULL, tied = m->cov == GMLE_COV_TIED;
  const size_t P = full || tied ? D : D + (m->cov == GMLE_COV_DIAG ? D : 1);
  /* Scratch: X (n x P), J (n x C), the GEMM tile. */
  const plan pl = make_plan(m, n);
  size_t x_len = 0, j_len = 0, total = 0;
  int big = gmle__mul_size(n, P, &x_len) || gmle__mul_size(n, C, &j_len);
  big = big || (total = x_len + j_len) < x_len || total + pl.tile < total;
  GMLE_RETURN_IF(big || n > (size_t)INT32_MAX, ctx, GMLE_E_TOO_LARGE,
                 "score: a batch of %zu rows x %zu classes x %zu features is "
                 "too large for the host scratch",
                 n, C, D);
  total += pl.tile;
  double *X = scratch(ctx, total);
  GMLE_RETURN_IF(!X, ctx, GMLE_E_OUT_OF_MEMORY,
                 "score: out of memory (%zu doubles of scratch for a batch "
                 "of %zu rows)",
                 total, n);
  double *J = X + x_len, *T = J + j_len;

  /* Empty classes: -inf, never NaN. */
  if (Ca < C)
    for (size_t r = 0; r < n; r++)
      for (size_t c = 0; c < C; c++)
        if (m->empty[c])
          J[r * C + c] = -INFINITY;
  /* Work per row of the emit step, in flops (an exp counts 20). */
  const int uses_exp = what == GMLE_OUT_LOGPOST || what == GMLE_OUT_DENSITY;
  const size_t emit_work = (uses_exp ? 24 : 4) * C;
  row_job jb = {m, b, X, J, P, what, out_dtype, out};
  if (Ca > 0) {
    centre_rows(&jb, 0, n); /* memory bound: one pass */
    for (size_t r0 = 0; r0 < n; r0 += pl.nr) {
      const size_t rn = min_size(n - r0, pl.nr);
      for (size_t a0 = 0; a0 < Ca; a0 += pl.cb) {
        tile t = {r0, rn, a0, min_size(Ca - a0, pl.cb), NULL, 0};
        gemm_tile(m, X, P, J, T, &t);
        for (size_t r = r0; r < r0 + rn; r++)
          reduce_row(m, b, &t, r, J + r * C);
      }
    }
  }
  par_for(nt, n, n * emit_work, emit_rows, &jb);
  return GMLE_OK;
}
