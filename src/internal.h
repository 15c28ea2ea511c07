/*
 * internal.h -- shared internals of gmle (not installed).
 *
 * Prefixes: gmle_ / GMLE_ public, gmle__ / GMLE__ internal, the rest static.
 */
#ifndef GMLE_INTERNAL_H
#define GMLE_INTERNAL_H

#include "gmle.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* ------------------------------------------------------------------------ */
/* Compiler                                                                 */
/* ------------------------------------------------------------------------ */

/* Functions between GMLE__TARGET_BEGIN("avx2,fma") and GMLE__TARGET_END
 * are compiled for that instruction set (chosen at run time by the
 * caller): GCC's target pragma, or clang's equivalent, which does not
 * know GCC's. */
#define GMLE__PRAGMA(...) _Pragma(#__VA_ARGS__)
#if defined(__clang__)
#define GMLE__TARGET_BEGIN(isa)                                                \
  GMLE__PRAGMA(                                                                \
      clang attribute push(__attribute__((target(isa))), apply_to = function))
#define GMLE__TARGET_END GMLE__PRAGMA(clang attribute pop)
#else
#define GMLE__TARGET_BEGIN(isa)                                                \
  GMLE__PRAGMA(GCC push_options) GMLE__PRAGMA(GCC target(isa))
#define GMLE__TARGET_END GMLE__PRAGMA(GCC pop_options)
#endif

/* ------------------------------------------------------------------------ */
/* Errors and logging                                                       */
/* ------------------------------------------------------------------------ */

#define GMLE__ERR_LEN 2048

#if defined(__GNUC__)
#define GMLE__PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define GMLE__PRINTF(a, b)
#endif

/* Record a message on ctx (may be NULL) and return s. */
gmle_status gmle__error(const gmle_context *ctx, gmle_status s, const char *fmt,
                        ...) GMLE__PRINTF(3, 4);
gmle_status gmle__verror(const gmle_context *ctx, gmle_status s,
                         const char *fmt, va_list ap);
/* gmle__error that also records where (loc: may be NULL). */
/* gmle__error_at with a va_list (the CUDA loader's host service). */
gmle_status gmle__verror_at(const gmle_context *ctx, gmle_status s,
                            const gmle_error_location *loc, const char *fmt,
                            va_list ap);
gmle_status gmle__error_at(const gmle_context *ctx, gmle_status s,
                           const gmle_error_location *loc, const char *fmt, ...)
    GMLE__PRINTF(4, 5);
/* Clear the context's message and location (start of every public call). */
void gmle__clear_error(const gmle_context *ctx);
/* Send a message to the context's log callback, if any. */
void gmle__log(const gmle_context *ctx, gmle_log_level lvl, const char *fmt,
               ...) GMLE__PRINTF(3, 4);

#define GMLE_RETURN_IF(cond, ctx, status, ...)                                 \
  do {                                                                         \
    if (cond)                                                                  \
      return gmle__error((ctx), (status), __VA_ARGS__);                        \
  } while (0)

#define GMLE_TRY(expr)                                                         \
  do {                                                                         \
    gmle_status gmle__s_ = (expr);                                             \
    if (gmle__s_ != GMLE_OK)                                                   \
      return gmle__s_;                                                         \
  } while (0)

/* ------------------------------------------------------------------------ */
/* Allocation (one place, so tests can inject failures)                     */
/* ------------------------------------------------------------------------ */

void *gmle__malloc(size_t n);
void *gmle__calloc(size_t count, size_t size);
void *gmle__aligned_alloc(size_t n); /* 64-byte aligned; free with gmle__free */
void gmle__free(void *p);
void gmle__aligned_free(void *p);
/* a*b and a*b*c without overflow: 0 on success, -1 on overflow. */
int gmle__mul_size(size_t a, size_t b, size_t *out);
int gmle__mul3_size(size_t a, size_t b, size_t c, size_t *out);

size_t gmle__dtype_size(gmle_dtype t);

/* Copy a caller's option struct (src, which leads with size_t struct_size)
 * over dst (dst_size bytes, already holding the defaults): only the members
 * inside the caller's struct_size are read, and dst's struct_size becomes
 * dst_size. GMLE_E_INVALID_ARG (naming `what`) when struct_size is below
 * first_size, the size of the struct's first version (0 included). */
gmle_status gmle__read_options(const gmle_context *ctx, void *dst,
                               size_t dst_size, const void *src,
                               size_t first_size, const char *what);

/* ------------------------------------------------------------------------ */
/* Objects                                                                  */
/* ------------------------------------------------------------------------ */

struct gmle__backend_ops;

struct gmle_context {
  gmle_backend backend;
  const struct gmle__backend_ops *ops;
  void *bstate;    /* backend's own state */
  int n_threads;   /* host threads used by the CPU paths */
  int auto_select; /* 1 while AUTO tries backends: a device backend
                      then declines host-CPU devices (PoCL), which
                      the native CPU backend outruns */
  gmle_log_fn log_fn;
  void *log_user;
  char device_name[256];
  char notice[512];        /* AUTO fallback notice, delivered to the log
                              callback when one is installed */
  char err[GMLE__ERR_LEN]; /* written through const pointers: see error.c */
  /* The host fallback backend's own state (gmle__backend_host_fallback),
   * created by src/registry.c at the first batch a device backend declines,
   * shut down by gmle_context_free; NULL until then. */
  void *fallback_state;
  gmle_error_location err_loc; /* beside err, written the same way */
};

/* Per-class sufficient statistics, float64, around per-class shifts. */
struct gmle_stats {
  gmle_context *ctx;
  size_t dim, n_classes;
  gmle_stats_mode mode;
  size_t gram_len;    /* dim*dim (FULL, row-major, symmetric) or dim (DIAG) */
  uint64_t n_batches; /* successful non-empty gmle_stats_add calls */
  /* Invariant: gram holds the lower triangle (i >= j) in FULL mode; the
   * strict upper triangle is zero. */
  double *weight;           /* [C] n_c = sum w */
  uint64_t *rows;           /* [C] rows seen */
  unsigned char *has_shift; /* [C] 1 once k_c is chosen */
  double *shift;            /* [C*D] k_c */
  double *sum;              /* [C*D] sum w (x - k_c) */
  double *gram;             /* [C*gram_len] sum w (x - k_c)(x - k_c)^T */
  int saw_f32;  /* some batch was float32 (for the resolution check) */
  char **names; /* [C] class names, or NULL */
};

/* A mixture's parameters (src/mixture.c). The model's class-level members
 * (priors, counts, rows, names, reports) keep their meaning; means and
 * covars hold each class's mixture moments (mean, and the mixture
 * covariance in the model's layout; tied: pooled over classes). */
typedef struct gmle__mixture {
  size_t n_components; /* K */
  double *weights;     /* [C*K] w_ck, each class's summing to 1 */
  double *means;       /* [C*K*D] */
  double *covars;      /* full [C*K*D*D], diag [C*K*D], spherical [C*K],
                          tied [C*D*D] (scikit-learn's layouts, class axis
                          first) */
  /* The C*K components as a model of plain Gaussians (class c's component
   * k at c*K + k, priors w_ck / C; tied with C > 1 stored as full), which
   * every backend scores; gmle_score reduces its joint per class. */
  gmle_model *components;
  int has_report;
  gmle_em_report report; /* report.history points at history */
  double *history;       /* [report.n_history] */
} gmle__mixture;

struct gmle_model {
  gmle_context *ctx;
  size_t dim, n_classes;
  gmle_cov_type cov;
  gmle__mixture *mix; /* NULL: one Gaussian per class */
  double *means;      /* [C*D] */
  double *covars;     /* full [C*D*D], diag [C*D], spherical [C], tied [D*D] */
  double *priors;     /* [C] */
  double *counts;     /* [C] n_c (weights) */
  uint64_t *rows;     /* [C] */
  gmle_class_report *reports; /* [C] */
  char **names;               /* [C] or NULL */
  /* Prepared for scoring (src/prepare.c): */
  double *log_priors;   /* [C], -inf for empty classes / zero priors */
  double *factor;       /* full [C*D*D] lower Cholesky L_c; tied [D*D];
                           diag [C*D] sqrt of variances; spherical [C] std */
  double *logdet;       /* [C] log|Sigma_c| */
  unsigned char *empty; /* [C] 1: class scores -inf */
  /* Closed-form training log-likelihood (set by gmle_fit). */
  int has_train;
  double train_loglik;       /* class-conditional: sum_c n_c E[log N] */
  double train_loglik_joint; /* plus sum_c n_c log pi_c */
  double train_n;            /* sum_c n_c */
  struct gmle__score_cache *score_cache; /* GEMM-form scoring data every
                                            backend reads (src/prepare.c),
                                            or NULL */
  /* Each backend's own scoring data, built at the first score by
   * gmle__model_backend_data (src/model.c) under data_lock. */
  pthread_mutex_t data_lock;
  struct gmle__model_data {
    const struct gmle__backend_ops *ops; /* NULL: slot unused */
    void *state;                         /* the backend state that built it */
    void *data;                          /* what prepare_model made */
  } backend_data[2];
};

/* What src/prepare.c precomputes for GEMM-form scoring (host/score_cpu.c).
 * Only the non-empty ("active") classes are stored. E is D for diag and 1
 * for spherical. */
typedef struct gmle__score_cache {
  size_t n_active;
  size_t *active; /* [n_active] class index of each active class */
  double *center; /* [D] global centre m subtracted from every row */
  double *w;      /* full: [n_active*D x D] stacked L_c^-1; tied: [D x D]
                     L^-1; diag/spherical: [(D+E) x n_active] coefficients
                     of [x-m, (x-m)^2] */
  double *b;      /* full/tied: [n_active*D] L_c^-1 (mu_c - m);
                     diag/spherical: [n_active] sum (mu_c - m)^2 / var */
  double *lconst; /* [n_active] -1/2 (D log 2pi + log|Sigma_c|) */
} gmle__score_cache;
void gmle__score_cache_free(gmle__score_cache *sc); /* src/prepare.c */

/* ------------------------------------------------------------------------ */
/* Backends                                                                 */
/* ------------------------------------------------------------------------ */

/* A validated batch handed to a backend. Rows are finite, labels in range,
 * weights finite and >= 0. */
typedef struct gmle__batch {
  const void *x;
  gmle_dtype dtype;
  size_t n_rows, row_stride, dim;
  const int32_t *labels; /* NULL: all class 0 */
  const double *weights; /* NULL: all 1 */
} gmle__batch;

/* Per-class partial statistics of one batch, around the shifts `shift`
 * (the accumulator's, read-only), into zeroed arrays of the same layout as
 * struct gmle_stats. */
typedef struct gmle__partial {
  size_t dim, n_classes, gram_len;
  gmle_stats_mode mode;
  const double *shift; /* [C*D] */
  double *weight;      /* [C] */
  uint64_t *rows;      /* [C] */
  double *sum;         /* [C*D] */
  double *gram;        /* [C*gram_len]; FULL: lower triangle (i >= j) at
                          least; the core symmetrises */
  /* CPU backend, float32 unweighted FULL batches only: 1 lets the Gram
   * kernel multiply in float32 (d = fl32(x - k), products summed in
   * float32 over short runs and one tile, tiles in float64; the sums of d
   * stay exact). src/stats.c sets it only where the accuracy contract
   * holds (see f32_class_ok there). */
  int f32_products;
} gmle__partial;

/* Partial statistics of one batch over the classes present: slot p holds
 * class class_of[p] (its shift, weight, rows, sum [D] and Gram
 * [gram_len]). The core (src/stats.c) and the CUDA loader (device batches)
 * commit them the same way. */
typedef struct gmle__present {
  size_t n_present;
  const int32_t *class_of;
  const double *shift, *weight, *sum, *gram;
  const uint64_t *rows;
} gmle__present;
/* The first slot whose sums, or the accumulator's sums after adding them,
 * are not finite; n_present if none. */
size_t gmle__present_first_nonfinite(const gmle_stats *st,
                                     const gmle__present *pp);
/* Add every slot into st (shifts of classes without one are taken). */
void gmle__present_commit(gmle_stats *st, const gmle__present *pp);

/* src/stats.c, shared by gmle_stats_add and the CUDA loader's device
 * batches (gmle_cuda_stats_add_device): the argument checks of a batch of
 * n_rows rows for st (`who` names the caller in messages; n_rows == 0 only
 * checks the dtype); the commit of its present classes (GMLE_E_OVERFLOW
 * naming the class when a sum is not finite, else everything added); and
 * the bookkeeping of a batch added. */
gmle_status gmle__stats_check_batch(const gmle_stats *st, const char *who,
                                    const void *x, gmle_dtype dtype,
                                    size_t n_rows, size_t row_stride,
                                    const int32_t *labels);
gmle_status gmle__stats_commit(gmle_stats *st, const gmle__present *pp,
                               uint64_t batch);
void gmle__stats_batch_done(gmle_stats *st, gmle_dtype dtype);

/* What a backend declares it can do (gmle__backend_ops.caps); the core
 * decides from these flags, never from which backend it is. */
enum {
  /* accumulate reads rows that were not scanned for NaN and Inf: a
   * non-finite value makes the batch's sums non-finite, and only then does
   * the core scan the batch to name it */
  GMLE__CAP_FUSED_NONFINITE = 1u << 0,
  /* accumulate may add straight into the accumulator (a partial over every
   * class holding the accumulator's own arrays) for many classes */
  GMLE__CAP_DIRECT_ACCUM = 1u << 1,
  /* accumulate honours gmle__partial.f32_products (float32 products where
   * the core's accuracy conditions hold) */
  GMLE__CAP_F32_PRODUCTS = 1u << 2,
  /* score takes a whole unvalidated call as one batch, bounds its own
   * memory and returns GMLE_E_NONFINITE_INPUT on NaN or Inf */
  GMLE__CAP_SCORE_WHOLE = 1u << 3,
};

/* The backend table. Entries marked optional may be NULL: the core then
 * uses the host (CPU) implementation. */
/* A batch for accumulate_resp: rows (finite) and their responsibilities
 * resp[r * n_comp + g] (times the row's weight; >= 0), the components'
 * shifts k_g ([n_comp * dim]) and the statistics' mode. */
typedef struct gmle__resp_batch {
  const void *x;
  gmle_dtype dtype;
  size_t n_rows, row_stride, dim;
  const double *resp;
  size_t n_comp;
  const double *shift;
  int diag; /* 1: only the Gram diagonals (GMLE_STATS_DIAG) */
} gmle__resp_batch;

/* Where accumulate_resp adds, for every component g:
 *   weight[g] += sum_r resp[r, g]
 *   rows[g]   += the rows with resp[r, g] > 0
 *   sum[g*D + j] += sum_r resp[r, g] (x_rj - k_gj)
 *   gram[g*L + ...] += sum_r resp[r, g] (x_r - k_g)(x_r - k_g)^T: its lower
 *       triangle row-major (L = D*D, upper left untouched) or its diagonal
 *       (L = D, diag). */
typedef struct gmle__resp_out {
  double *weight, *sum, *gram;
  uint64_t *rows;
} gmle__resp_out;

/* src/em.c: the centre of accumulate_resp's GEMM form (host/em_accum.c, and
 * the CUDA loader for its module): m = the mean of the n_comp shifts
 * ([n_comp * dim]) and the shifts around it, kp[g*dim + j] = k_gj - m_j. */
void gmle__em_centre(const double *shift, size_t n_comp, size_t dim, double *m,
                     double *kp);

typedef struct gmle__backend_ops {
  gmle_backend id;
  const char *name;
  unsigned caps; /* GMLE__CAP_* */
  /* Open device `device` (-1 default); write a description into
   * ctx->device_name; GMLE_E_NO_DEVICE with the native error when absent. */
  gmle_status (*init)(gmle_context *ctx, int device, void **state);
  void (*shutdown)(void *state);
  /* Accumulate a batch into a zeroed partial. */
  gmle_status (*accumulate)(gmle_context *ctx, const gmle__batch *b,
                            gmle__partial *out);
  /* optional: build the backend's scoring data for the prepared model m
   * into *data (NULL is allowed). Called by the core at the first score of
   * m, never at fit or load: see gmle__model_backend_data. */
  gmle_status (*prepare_model)(gmle_context *ctx, const gmle_model *m,
                               void **data);
  /* optional: free what prepare_model made, with the state that made it
   * (still alive: a context outlives its models) */
  void (*free_model)(void *backend_state, void *data);
  /* Score a validated batch (rows finite) with model_data from
   * prepare_model (NULL without one); out as for gmle_score. */
  gmle_status (*score)(gmle_context *ctx, const gmle_model *m,
                       const void *model_data, const gmle__batch *b,
                       gmle_output what, gmle_dtype out_dtype, void *out);
  /* optional: a scoring call (gmle_score, gmle_total_loglik's batch loop)
   * has ended; the backend may release what it kept across its batches */
  void (*score_end)(void *backend_state);
  gmle_status (*synchronize)(gmle_context *ctx); /* optional */
  /* optional: describe the backend's devices for gmle_device_list (out
   * holds cap entries; *n_found may exceed cap). ctx is a scratch context
   * that only carries the error message. NULL: the core opens device -1 and
   * reports its device_name. */
  gmle_status (*list_devices)(gmle_context *ctx, gmle_device_info *out,
                              size_t cap, size_t *n_found);
  /* optional (EM, src/em.c): add a validated batch's responsibility-weighted
   * statistics of n_comp components into out (see gmle__resp_batch). NULL:
   * the core accumulates component by component through accumulate, with
   * the responsibilities as row weights. */
  gmle_status (*accumulate_resp)(gmle_context *ctx, const gmle__resp_batch *b,
                                 const gmle__resp_out *out);
} gmle__backend_ops;

/* registry.c */
const gmle__backend_ops *gmle__backend_lookup(gmle_backend b);
/* registry.c: the backend that scores on the host for a backend whose
 * score answers GMLE_E_UNSUPPORTED (src/score.c). */
const gmle__backend_ops *gmle__backend_host_fallback(void);
/* registry.c: the host fallback's own state on ctx, created at first use
 * (with host->init on a scratch context: ctx's device name stays). */
gmle_status gmle__backend_fallback_state(gmle_context *ctx, void **state);
/* registry.c: the state of backend `ops` on ctx: ctx->bstate when ops is
 * the context's backend, else the fallback state (NULL when not created). */
void *gmle__backend_state(const gmle_context *ctx,
                          const gmle__backend_ops *ops);
/* registry.c: tell the context's backend, and the fallback when it has a
 * state, that a scoring call ended (gmle__backend_ops.score_end). */
void gmle__backend_score_end(gmle_context *ctx);

/* src/model.c: backend `ops` (with its `state` on ctx)'s scoring data for
 * m, built by ops->prepare_model at the first call and kept in the model
 * for later calls, keyed by (ops, state). A model is scored only on the
 * context it was made on (src/score.c refuses others), so at most two
 * states ever ask: the context's backend and the host fallback; the model
 * keeps a slot for each. Should a third ask, its data is built for that
 * call only: *transient is then 1 and the caller frees *data with
 * ops->free_model after the call. Thread-safe (m->data_lock). The data
 * is freed by gmle_model_free through the backend that built it, with
 * the state that built it: a context (and so its states, the fallback's
 * included) must outlive its models, as gmle.h requires. */
gmle_status gmle__model_backend_data(gmle_context *ctx,
                                     const gmle__backend_ops *ops, void *state,
                                     const gmle_model *m, void **data,
                                     int *transient);

/* host/cpu_backend.c */
extern const gmle__backend_ops gmle__cpu_backend;
#ifdef GMLE_HAVE_OPENCL
/* opencl/cl_backend.c */
extern const gmle__backend_ops gmle__opencl_backend;
#endif
/* cuda/loader.c (GMLE_ENABLE_CUDA builds only): forwards to the CUDA module
 * libgmle_cuda.so, loaded with dlopen at context creation. Not const: the
 * loader sets its optional entries that the module provides (once, under
 * its lock, when the module is loaded, before any context uses it). */
extern gmle__backend_ops gmle__cuda_backend;

/* host/em_accum.c: accumulate_resp by BLAS-3 (rows centred first). */
gmle_status gmle__cpu_accumulate_resp(gmle_context *ctx,
                                      const gmle__resp_batch *b,
                                      const gmle__resp_out *out);
/* host/gram.c: the per-class shifted Gram kernel (uses all threads). */
gmle_status gmle__cpu_accumulate(gmle_context *ctx, const gmle__batch *b,
                                 gmle__partial *out);

/* src/prepare.c: Cholesky factors, log-determinants, log priors. */
gmle_status gmle__model_prepare(gmle_model *m);
/* src/linalg.c */
double gmle__logsumexp(const double *v, size_t n);

/* Around gmle's own dense LAPACK/BLAS calls on D x D matrices: for D below
 * GMLE__BLAS_SMALL, OpenBLAS is asked for one thread until the matching
 * end, and the caller's setting is restored then (nested and concurrent
 * sections share one save). A threaded OpenBLAS otherwise wakes its worker
 * threads for BLAS-2 calls on a few dozen rows (dsymv inside dsyevd), and
 * they spin for tens of milliseconds on the cores gmle's own threads need
 * next. Returns whether the section took effect; pass it to end. */
#define GMLE__BLAS_SMALL 256
/* Once per process, before any BLAS call: GMLE_E_OUT_OF_MEMORY when an
 * address-space limit (ulimit -v) leaves no room for OpenBLAS's buffer,
 * which it would otherwise retry to map forever (src/blas_room.c). */
gmle_status gmle__blas_room(const gmle_context *ctx);
/* How many OpenMP threads may call BLAS at once (each maps its own OpenBLAS
 * buffer): want, or fewer under an address-space limit (src/blas_room.c). */
int gmle__blas_parallel_threads(int want);
int gmle__blas_small_begin(size_t D);
void gmle__blas_small_end(int token);

/* src/model.c */
gmle_status gmle__model_alloc(gmle_context *ctx, size_t dim, size_t n_classes,
                              gmle_cov_type cov, gmle_model **out);
size_t gmle__cov_len(gmle_cov_type cov, size_t dim, size_t n_classes);
/* src/mixture.c */
void gmle__mixture_free(gmle__mixture *mix);
/* The mixture from weights w (checked; owned by the result, freed on
 * failure) and the other parameters as gmle_mixture_create takes them. */
gmle_status gmle__mixture_build(gmle_context *ctx, size_t D, size_t C, size_t K,
                                gmle_cov_type cov, double *w,
                                const double *means, const double *covars,
                                const double *priors, const double *counts,
                                gmle_model **out);
/* src/em.c: split component h of class c of a K-component mixture's
 * parameter arrays into h and k (means +-1/2 standard deviation along the
 * feature of largest variance, weight halved, covariance copied). */
void gmle__em_split(size_t D, size_t K, gmle_cov_type cov, double *w,
                    double *mu, double *cv, size_t c, size_t h, size_t k);
/* out[k] = exp(v[k] - shift) for k < n, through glibc's vector exp
 * (src/mixture.c). */
void gmle__exp_shifted(const double *v, double shift, double *out, size_t n);
/* Rows per call of a mixture's components model (bounded joint buffer). */
size_t gmle__mixture_chunk_rows(size_t G);
size_t gmle__mixture_n_params(const gmle_model *m);
gmle_status gmle__mixture_score(gmle_context *ctx, const gmle_model *m,
                                const void *x, gmle_dtype dtype, size_t n_rows,
                                size_t row_stride, gmle_output what,
                                gmle_dtype out_dtype, void *out);

/* src/validate.c: scan a batch for NaN/Inf; names batch, row and column. */
gmle_status gmle__check_finite(const gmle_context *ctx, const void *x,
                               gmle_dtype dtype, size_t n_rows,
                               size_t row_stride, size_t dim,
                               uint64_t batch_index, const char *what);
/* log(2 pi), the constant of every Gaussian log-density (fit's closed-form
 * log-likelihood, the scorers' per-class constants). */
#define GMLE__LOG_2PI 1.8378770664093454836

/* src/validate.c: the one scan that locates a non-finite value: the first
 * in row-major order of rows [0, n_rows) of x, with its row, column and
 * value (1), or 0 (row and col 0, val NaN) when every value is finite. */
int gmle__find_nonfinite(const void *x, gmle_dtype dtype, size_t n_rows,
                         size_t row_stride, size_t dim, size_t *row,
                         size_t *col, double *val);
/* "NaN", "+Inf" or "-Inf": how every message names a non-finite value. */
const char *gmle__nonfinite_name(double v);

/* Rows per batch for scoring and internal streaming. */
#define GMLE__SCORE_BATCH_ROWS 8192

#endif /* GMLE_INTERNAL_H */
