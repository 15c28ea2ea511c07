/*
 * gmle.h -- Gaussian maximum-likelihood estimation and bulk scoring.
 *
 * The one public header of gmle. It needs only <stddef.h> and <stdint.h>.
 *
 * Conventions
 * - Every fallible call returns gmle_status; GMLE_OK is 0, every error is
 *   non-zero. Results come back through out-parameters.
 * - Objects are opaque handles created by gmle_X_create(..., gmle_X **out) and
 *   released by gmle_X_free(), which accepts NULL.
 * - The detailed message of the last failing call on a context (naming the
 *   batch, row, column, class or file offset involved) is read with
 *   gmle_context_error(). Statistics and models remember their context.
 * - Sizes and counts are size_t. Row strides count elements, not bytes:
 *   row r of X starts at X + r * row_stride.
 * - The library never aborts and never prints. Diagnostics go to the log
 *   callback of the context, which is silent by default.
 *
 * The mathematics (see DESIGN.md): for rows x_n with weights w_n >= 0,
 *   n = sum w,  mu = sum w x / n,  Sigma = sum w (x-mu)(x-mu)^T / n.
 * Statistics are kept per class as n_c, s_c = sum w (x - k_c),
 * S_c = sum w (x - k_c)(x - k_c)^T in float64, around a per-class shift k_c.
 */
#ifndef GMLE_H
#define GMLE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32) && defined(GMLE_SHARED_BUILD)
#define GMLE_API __declspec(dllexport)
#elif defined(__GNUC__)
#define GMLE_API __attribute__((visibility("default")))
#else
#define GMLE_API
#endif

#define GMLE_VERSION_MAJOR 0
#define GMLE_VERSION_MINOR 1
#define GMLE_VERSION_PATCH 0
/** Version as MAJOR*10000 + MINOR*100 + PATCH. */
#define GMLE_VERSION_NUMBER                                                    \
  (GMLE_VERSION_MAJOR * 10000 + GMLE_VERSION_MINOR * 100 + GMLE_VERSION_PATCH)

/** Version of the library actually linked, as GMLE_VERSION_NUMBER. */
GMLE_API unsigned gmle_version_number(void);
/** Version of the library actually linked, as "MAJOR.MINOR.PATCH". */
GMLE_API const char *gmle_version_string(void);

/* ------------------------------------------------------------------------ */
/* Status codes. Values are pinned: they never change between versions.     */
/* ------------------------------------------------------------------------ */

/* X(name, value, sentence) -- one table makes the enum and its strings. */
#define GMLE_STATUS_TABLE(X)                                                   \
  X(GMLE_OK, 0, "success")                                                     \
  X(GMLE_E_INVALID_ARG, 1, "invalid argument")                                 \
  X(GMLE_E_OUT_OF_MEMORY, 2, "out of memory")                                  \
  X(GMLE_E_NONFINITE_INPUT, 3, "input contains NaN or infinity")               \
  X(GMLE_E_OVERFLOW, 4, "accumulated statistics overflowed")                   \
  X(GMLE_E_DIM_MISMATCH, 5, "dimension mismatch")                              \
  X(GMLE_E_BAD_LABEL, 6, "label out of range")                                 \
  X(GMLE_E_INVALID_WEIGHTS, 7, "invalid sample weights")                       \
  X(GMLE_E_ILL_DEFINED_COV, 8, "covariance is ill defined")                    \
  X(GMLE_E_SINGULAR_COV, 9, "covariance is singular")                          \
  X(GMLE_E_NONFINITE_STATS, 10, "statistics contain NaN or infinity")          \
  X(GMLE_E_EMPTY, 11, "no data")                                               \
  X(GMLE_E_IO, 12, "input/output error")                                       \
  X(GMLE_E_BAD_FORMAT, 13, "malformed file")                                   \
  X(GMLE_E_CORRUPT, 14, "corrupt file (checksum mismatch or truncated)")       \
  X(GMLE_E_UNSUPPORTED_VERSION, 15, "unsupported file format version")         \
  X(GMLE_E_INVALID_MODEL, 16, "invalid model")                                 \
  X(GMLE_E_UNSUPPORTED, 17, "unsupported operation or data type")              \
  X(GMLE_E_NO_DEVICE, 18, "no device available for the requested backend")     \
  X(GMLE_E_DEVICE, 19, "device error")                                         \
  X(GMLE_E_DEVICE_OOM, 20, "device out of memory")                             \
  X(GMLE_E_DEVICE_LOST, 21, "device lost; the context can no longer be used")  \
  X(GMLE_E_TOO_LARGE, 22, "problem too large")                                 \
  X(GMLE_E_INTERNAL, 23, "internal error")                                     \
  X(GMLE_E_BAD_ARK, 24, "malformed Kaldi archive or script file")

typedef enum gmle_status {
#define GMLE__STATUS_ENUM(name, value, text) name = value,
  GMLE_STATUS_TABLE(GMLE__STATUS_ENUM)
#undef GMLE__STATUS_ENUM
} gmle_status;

/** A fixed English sentence for a status; never NULL ("unknown status" for
 *  values not in the table). */
GMLE_API const char *gmle_status_string(gmle_status s);
/** The symbolic name of a status ("GMLE_E_BAD_LABEL"); never NULL. */
GMLE_API const char *gmle_status_name(gmle_status s);

/* ------------------------------------------------------------------------ */
/* Enumerations                                                             */
/* ------------------------------------------------------------------------ */

typedef enum gmle_backend {
  GMLE_BACKEND_AUTO = 0,   /**< CUDA, then OpenCL, then CPU */
  GMLE_BACKEND_CPU = 1,    /**< host: OpenBLAS/LAPACKE + own kernels */
  GMLE_BACKEND_OPENCL = 2, /**< any OpenCL device through the ICD loader */
  GMLE_BACKEND_CUDA = 3    /**< NVIDIA GPU through CUDA + cuBLAS */
} gmle_backend;

typedef enum gmle_dtype {
  GMLE_F32 = 1, /**< float */
  GMLE_F64 = 2  /**< double */
} gmle_dtype;

typedef enum gmle_cov_type {
  GMLE_COV_FULL = 0,      /**< one full covariance per class */
  GMLE_COV_DIAG = 1,      /**< one diagonal covariance per class */
  GMLE_COV_SPHERICAL = 2, /**< one variance per class: trace(Sigma_c)/D */
  GMLE_COV_TIED = 3       /**< one full covariance pooled over classes */
} gmle_cov_type;

typedef enum gmle_output {
  GMLE_OUT_LOGLIK = 0,  /**< n x C: log N(x; mu_c, Sigma_c) */
  GMLE_OUT_JOINT = 1,   /**< n x C: log pi_c + log N(x; mu_c, Sigma_c) */
  GMLE_OUT_LOGPOST = 2, /**< n x C: log p(c | x) */
  GMLE_OUT_LABEL = 3,   /**< n: int32 argmax_c of the joint (lowest index
                             on ties; -1 when every class scores -inf) */
  GMLE_OUT_DENSITY = 4  /**< n: log sum_c pi_c N(x; mu_c, Sigma_c) */
} gmle_output;

/** Statistics modes: full Gram matrices, or only their diagonals (sums of
 *  squares), for wide data where only diagonal or spherical fits are wanted. */
typedef enum gmle_stats_mode {
  GMLE_STATS_FULL = 0,
  GMLE_STATS_DIAG = 1
} gmle_stats_mode;

/* ------------------------------------------------------------------------ */
/* Context                                                                  */
/* ------------------------------------------------------------------------ */

typedef struct gmle_context gmle_context;
typedef struct gmle_stats gmle_stats;
typedef struct gmle_model gmle_model;

/** Log levels of the log callback. */
typedef enum gmle_log_level {
  GMLE_LOG_DEBUG = 0,
  GMLE_LOG_INFO = 1,
  GMLE_LOG_WARNING = 2
} gmle_log_level;

/** Receives diagnostics (backend fallback, resolution warnings, floored
 *  variances). The message is valid only during the call. */
typedef void (*gmle_log_fn)(void *user, gmle_log_level level, const char *msg);

/** Create a context on backend b, device index `device` (-1: the backend's
 *  default). GMLE_BACKEND_AUTO tries CUDA, then OpenCL, then the CPU, and
 *  logs one notice when it falls back (delivered as soon as a log callback
 *  is installed with gmle_context_set_log). The environment variables
 *  GMLE_BACKEND (auto|cpu|opencl|cuda) and GMLE_DEVICE override `b` and
 *  `device` when b is AUTO. An explicit backend that has no usable device
 *  returns GMLE_E_NO_DEVICE, and *out still receives a context (so that
 *  gmle_context_error() can say why) which must be freed.
 *  Returns GMLE_E_INVALID_ARG if out is NULL, GMLE_E_OUT_OF_MEMORY. */
GMLE_API gmle_status gmle_context_create(gmle_backend b, int device,
                                         gmle_context **out);
/** Free a context. NULL is a no-op. Objects made on it must be freed first. */
GMLE_API void gmle_context_free(gmle_context *ctx);
/** The detailed message of the last failing call made with this context, or
 *  "" when there was none. Owned by the context; valid until its next call.
 *  Returns "(null context)" for NULL. */
GMLE_API const char *gmle_context_error(const gmle_context *ctx);
/** The backend actually in use (never AUTO). */
GMLE_API gmle_backend gmle_context_backend(const gmle_context *ctx);
/** A human-readable description of the device in use ("CPU (2 threads,
 *  OpenBLAS 0.3.21)"). Owned by the context. */
GMLE_API const char *gmle_context_device_name(const gmle_context *ctx);
/** Install a log callback (NULL silences). */
GMLE_API void gmle_context_set_log(gmle_context *ctx, gmle_log_fn fn,
                                   void *user);
/** Name of a backend: "auto", "cpu", "opencl", "cuda". */
GMLE_API const char *gmle_backend_name(gmle_backend b);
/** Parse a backend name; returns GMLE_E_INVALID_ARG for unknown names. */
GMLE_API gmle_status gmle_backend_parse(const char *name, gmle_backend *out);
/** Whether support for backend b was compiled into this library (1 or 0). */
GMLE_API int gmle_backend_compiled(gmle_backend b);

/* ------------------------------------------------------------------------ */
/* Devices                                                                  */
/* ------------------------------------------------------------------------ */

/** What a backend reports about one of its devices (gmle_device_list). */
typedef struct gmle_device_info {
  gmle_backend backend;    /**< the backend the device belongs to */
  int index;               /**< the `device` of gmle_context_create */
  int is_default;          /**< 1: the device chosen for device = -1 */
  int is_gpu;              /**< 1: a GPU */
  int fp64;                /**< 1: float64 arithmetic on the device */
  unsigned compute_units;  /**< compute units (cores or threads on a CPU) */
  uint64_t global_mem;     /**< device memory in bytes, 0 if unknown */
  char name[128];          /**< the device's name */
  char platform[128];      /**< platform or driver ("" if not applicable) */
} gmle_device_info;

/** List the devices of backend b, or with GMLE_BACKEND_AUTO of every
 *  compiled backend in AUTO's order (CUDA, OpenCL, CPU). Writes up to `cap`
 *  entries to `out` (NULL allowed when cap is 0) and the number of devices
 *  found to *n_found, which may exceed cap (call once with cap 0 to size
 *  the array). Nothing is kept open. A backend without a usable device
 *  lists none; why it has none (the native error, e.g. "opencl:
 *  clGetPlatformIDs: CL_PLATFORM_NOT_FOUND_KHR (-1001) ...") is written,
 *  one line per backend, to `why` (why_cap bytes, NUL-terminated; may be
 *  NULL). Returns GMLE_E_NO_DEVICE when no device was found (an explicit
 *  backend not compiled in included), GMLE_E_INVALID_ARG for a NULL
 *  n_found or a NULL out with cap > 0, GMLE_E_OUT_OF_MEMORY. */
GMLE_API gmle_status gmle_device_list(gmle_backend b, gmle_device_info *out,
                                      size_t cap, size_t *n_found, char *why,
                                      size_t why_cap);

/* ------------------------------------------------------------------------ */
/* Sufficient statistics                                                    */
/* ------------------------------------------------------------------------ */

/** Create empty statistics for `dim` features and `n_classes` classes
 *  (GMLE_STATS_FULL). dim and n_classes must be >= 1; dim*dim*n_classes*8
 *  must not overflow size_t. */
GMLE_API gmle_status gmle_stats_create(gmle_context *ctx, size_t dim,
                                       size_t n_classes, gmle_stats **out);
/** As gmle_stats_create, choosing the mode. */
GMLE_API gmle_status gmle_stats_create_mode(gmle_context *ctx, size_t dim,
                                            size_t n_classes,
                                            gmle_stats_mode mode,
                                            gmle_stats **out);

/** Accumulate n_rows rows of x (dtype GMLE_F32 or GMLE_F64; row r at
 *  x + r*row_stride elements, row_stride >= dim) into st.
 *  labels: class of each row in [0, n_classes), or NULL when n_classes is 1
 *  (all rows in class 0). weights: per-row weight >= 0, or NULL (all 1).
 *  n_rows == 0 is a successful no-op.
 *  Atomic: on any error, st is bit-identical to before the call.
 *  Errors: GMLE_E_NONFINITE_INPUT (names batch, row, column),
 *  GMLE_E_BAD_LABEL (names row and label), GMLE_E_INVALID_WEIGHTS (negative or
 *  non-finite weight, or all weights of the batch zero), GMLE_E_OVERFLOW (the
 *  batch's sums overflow float64), GMLE_E_INVALID_ARG (NULL x, row_stride <
 *  dim, no labels with several classes, or n_rows*row_stride*itemsize
 *  overflowing size_t -- checked before anything is read or allocated),
 *  GMLE_E_OUT_OF_MEMORY. On a device backend also GMLE_E_DEVICE_OOM (after
 *  splitting the batch), GMLE_E_DEVICE, and GMLE_E_DEVICE_LOST: the device
 *  failed while the batch's work was queued, and every later call on the
 *  context fails the same way; the statistics accumulated so far are intact
 *  on the host (save them, or merge them into statistics on another
 *  context, and go on there). */
GMLE_API gmle_status gmle_stats_add(gmle_stats *st, const void *x,
                                    gmle_dtype dtype, size_t n_rows,
                                    size_t row_stride, const int32_t *labels,
                                    const double *weights);

/** As gmle_stats_add, but takes the number of columns of x explicitly and
 *  returns GMLE_E_DIM_MISMATCH ("Number of features 14 does not match
 *  previous data 13") when it differs from the statistics' dim. */
GMLE_API gmle_status gmle_stats_add_checked(gmle_stats *st, const void *x,
                                            gmle_dtype dtype, size_t n_rows,
                                            size_t n_cols, size_t row_stride,
                                            const int32_t *labels,
                                            const double *weights);

/** dst += src, exactly (pairwise update across different shifts). Both must
 *  have the same dim, class count and mode (GMLE_E_DIM_MISMATCH otherwise).
 *  Merging empty statistics is the identity, bit for bit. Atomic. */
GMLE_API gmle_status gmle_stats_merge(gmle_stats *dst, const gmle_stats *src);
/** A deep copy of st on the same context. */
GMLE_API gmle_status gmle_stats_clone(const gmle_stats *st, gmle_stats **out);
/** Free statistics. NULL is a no-op. */
GMLE_API void gmle_stats_free(gmle_stats *st);

/** Number of features. */
GMLE_API size_t gmle_stats_dim(const gmle_stats *st);
/** Number of classes. */
GMLE_API size_t gmle_stats_n_classes(const gmle_stats *st);
/** GMLE_STATS_FULL or GMLE_STATS_DIAG. */
GMLE_API gmle_stats_mode gmle_stats_get_mode(const gmle_stats *st);
/** Total number of rows accumulated in class c (unweighted). */
GMLE_API gmle_status gmle_stats_rows(const gmle_stats *st, size_t c,
                                     uint64_t *out);
/** Sum of weights of class c (n_c). */
GMLE_API gmle_status gmle_stats_weight(const gmle_stats *st, size_t c,
                                       double *out);
/** Class c's weighted mean (dim values); GMLE_E_EMPTY if n_c == 0. */
GMLE_API gmle_status gmle_stats_mean(const gmle_stats *st, size_t c,
                                     double *out);

/** Attach class names to statistics (n_classes NUL-terminated strings,
 *  copied; NULL removes them). Names travel with gmle_stats_save/load and
 *  gmle_stats_clone; gmle_stats_merge refuses statistics whose names differ
 *  (GMLE_E_DIM_MISMATCH naming the class) and adopts src's names when dst
 *  has none. */
GMLE_API gmle_status gmle_stats_set_class_names(gmle_stats *st,
                                                const char *const *names);
/** Class c's name, or NULL when the statistics have none. */
GMLE_API const char *gmle_stats_class_name(const gmle_stats *st, size_t c);

/** Save statistics to a file (versioned, CRC-32 checked; written to a
 *  temporary file and renamed, so a failure leaves no partial file). Class
 *  names are saved too (any bytes, at most 65536 per name, else
 *  GMLE_E_TOO_LARGE). */
GMLE_API gmle_status gmle_stats_save(const gmle_stats *st, const char *path);
/** Load statistics saved by gmle_stats_save onto ctx. Truncated or
 *  corrupted files give GMLE_E_CORRUPT / GMLE_E_BAD_FORMAT with the offset;
 *  files from a newer format give GMLE_E_UNSUPPORTED_VERSION. */
GMLE_API gmle_status gmle_stats_load(gmle_context *ctx, const char *path,
                                     gmle_stats **out);

/* ------------------------------------------------------------------------ */
/* Fitting                                                                  */
/* ------------------------------------------------------------------------ */

/** How a fit is regularised (see DESIGN.md, "Degenerate data is normal").
 *  The default is the exact MLE plus a relative floor: every variance (every
 *  eigenvalue for full and tied covariances) is at least rel_floor * (the
 *  largest within-class feature variance over all accumulated data). */
typedef struct gmle_fit_options {
  gmle_cov_type cov;     /**< default GMLE_COV_FULL */
  const double *priors;  /**< n_classes priors summing to 1, or NULL: n_c/n */
  double rel_floor;      /**< default 1e-9; 0 disables */
  double abs_floor;      /**< added to the diagonal (reg_covar); default 0 */
  double max_condition;  /**< > 0: eigenvalue floor so that cond(Sigma_c) <=
                              max_condition (Kaldi style); default 0 = off */
  int shrinkage;         /**< 1: OAS shrinkage toward a scaled identity */
  int allow_empty;       /**< 1 (default): empty classes get prior 0 and
                              score -inf; 0: an empty class is an error */
} gmle_fit_options;

/** Fill opt with the defaults. */
GMLE_API void gmle_fit_options_init(gmle_fit_options *opt);

/** Fit a model from statistics. opt may be NULL (defaults).
 *  Errors name the class and the option that would fix the problem:
 *  GMLE_E_ILL_DEFINED_COV (a class with one row and no floor),
 *  GMLE_E_SINGULAR_COV (N_c <= D, a constant feature, collinear features,
 *  with no regularisation), GMLE_E_NONFINITE_STATS (also when a class's
 *  mean or covariance overflows float64), GMLE_E_EMPTY (no data at all, or
 *  an empty class with allow_empty = 0), GMLE_E_INVALID_MODEL (full or tied
 *  class means too many standard deviations apart to be scored in
 *  float64), GMLE_E_INVALID_ARG.
 *  Threads: many classes are fitted on the context's threads (the result
 *  is the same on any number). While this call, gmle_model_create and
 *  gmle_model_load factorise D x D matrices with D < 256, they set
 *  OpenBLAS to one thread (openblas_set_num_threads) and restore the
 *  program's setting before returning: a threaded OpenBLAS otherwise wakes
 *  its worker threads for such small calls, and they then spin on the
 *  cores that the next gmle call needs. A program that calls OpenBLAS from
 *  other threads at the same moment runs those calls on one thread. */
GMLE_API gmle_status gmle_fit(const gmle_stats *st,
                              const gmle_fit_options *opt, gmle_model **out);

/** Build a model directly from parameters: means (C x D), covariances laid
 *  out as for `cov` (full: C x D x D; diag: C x D; spherical: C; tied:
 *  D x D), priors (C, NULL: uniform) and counts (C, may be NULL). Validates
 *  everything (finite, symmetric, positive definite, priors sum to 1):
 *  GMLE_E_INVALID_MODEL names the class and the check. Full and tied models
 *  whose class means lie so many standard deviations apart that scoring
 *  would overflow float64 are refused the same way. */
GMLE_API gmle_status gmle_model_create(gmle_context *ctx, size_t dim,
                                       size_t n_classes, gmle_cov_type cov,
                                       const double *means,
                                       const double *covariances,
                                       const double *priors,
                                       const double *counts,
                                       gmle_model **out);
/** Free a model. NULL is a no-op. */
GMLE_API void gmle_model_free(gmle_model *m);

GMLE_API size_t gmle_model_dim(const gmle_model *m);
GMLE_API size_t gmle_model_n_classes(const gmle_model *m);
GMLE_API gmle_cov_type gmle_model_cov_type(const gmle_model *m);
/** Class c's mean (dim values). */
GMLE_API gmle_status gmle_model_mean(const gmle_model *m, size_t c,
                                     double *out);
/** Class c's covariance, always as a full dim x dim row-major matrix (zeros
 *  off the diagonal for diag and spherical models). */
GMLE_API gmle_status gmle_model_covariance(const gmle_model *m, size_t c,
                                           double *out);
/** Class c's prior pi_c. */
GMLE_API gmle_status gmle_model_prior(const gmle_model *m, size_t c,
                                      double *out);
/** Class c's weighted count n_c. */
GMLE_API gmle_status gmle_model_count(const gmle_model *m, size_t c,
                                      double *out);

/** What the fit did to one class. */
typedef struct gmle_class_report {
  uint64_t rows;          /**< rows accumulated */
  double weight;          /**< n_c */
  double min_eigenvalue;  /**< of the fitted covariance */
  double max_eigenvalue;
  double condition;       /**< max/min eigenvalue */
  size_t n_floored;       /**< variances/eigenvalues raised by a floor */
  int empty;              /**< 1 when the class had no data */
  double shrinkage;       /**< OAS coefficient used (0 if none) */
} gmle_class_report;

/** The fit report of class c. */
GMLE_API gmle_status gmle_model_report(const gmle_model *m, size_t c,
                                       gmle_class_report *out);

/** Training log-likelihood in closed form from the statistics the model was
 *  fitted on: sum_c [n_c log pi_c - n_c/2 (D log 2pi + log|Sigma_c| +
 *  tr(Sigma_c^-1 Sigma_hat_c))], which is -n_c/2 (D log 2 pi + log|Sigma_c|
 *  + D) per class at the exact MLE. `with_priors` adds the n_c log pi_c
 *  terms (the joint likelihood of rows and labels). GMLE_E_UNSUPPORTED for
 *  models not produced by gmle_fit. */
GMLE_API gmle_status gmle_model_loglik(const gmle_model *m, int with_priors,
                                       double *out);
/** Number of free parameters (means, covariances, and C-1 priors). */
GMLE_API size_t gmle_model_n_params(const gmle_model *m);
/** BIC = -2 loglik + p log n and AIC = -2 loglik + 2 p (loglik with
 *  priors). Either pointer may be NULL. */
GMLE_API gmle_status gmle_model_information(const gmle_model *m, double *bic,
                                            double *aic);

/* ------------------------------------------------------------------------ */
/* Scoring                                                                  */
/* ------------------------------------------------------------------------ */

/** Score n_rows rows of x under m. `out` receives, in out_dtype (GMLE_F32 or
 *  GMLE_F64), n_rows x C values row-major for LOGLIK, JOINT and LOGPOST, or
 *  n_rows values for DENSITY; for GMLE_OUT_LABEL `out` is int32_t[n_rows]
 *  whatever out_dtype says. Work is done in batches; memory beyond `out` is
 *  bounded whatever n_rows is. Rows with NaN or Inf give
 *  GMLE_E_NONFINITE_INPUT naming the row and column, and nothing is
 *  guaranteed about `out`. Empty classes score -inf, never NaN. Device
 *  backends: GMLE_E_DEVICE_OOM, GMLE_E_DEVICE, GMLE_E_DEVICE_LOST (as for
 *  gmle_stats_add; the model is intact on the host). */
GMLE_API gmle_status gmle_score(gmle_context *ctx, const gmle_model *m,
                                const void *x, gmle_dtype dtype,
                                size_t n_rows, size_t row_stride,
                                gmle_output what, gmle_dtype out_dtype,
                                void *out);

/** Total log-likelihood of a data set: with labels, sum_n w_n log N(x_n;
 *  mu_{y_n}, Sigma_{y_n}) (class-conditional, no priors); without labels,
 *  sum_n w_n log sum_c pi_c N(x_n; mu_c, Sigma_c). weights may be NULL. */
GMLE_API gmle_status gmle_total_loglik(gmle_context *ctx, const gmle_model *m,
                                       const void *x, gmle_dtype dtype,
                                       size_t n_rows, size_t row_stride,
                                       const int32_t *labels,
                                       const double *weights, double *out);

/* ------------------------------------------------------------------------ */
/* Model files (.npz readable with numpy.load)                              */
/* ------------------------------------------------------------------------ */

/** Save a model as an uncompressed .npz: means (C, D) float64, covariances
 *  shaped as scikit-learn's GaussianMixture (full (C, D, D), diag (C, D),
 *  spherical (C,), tied (D, D)), priors (C,), counts (C,), rows (C,) uint64,
 *  covariance_type, format_version, and class names when set. Also the fit
 *  report: report_min_eigenvalue, report_max_eigenvalue, report_condition,
 *  report_shrinkage (C,) float64, report_n_floored (C,) uint64 and
 *  report_empty (C,) bool; and for models from gmle_fit the training
 *  log-likelihood as 0-d float64 train_loglik (class-conditional),
 *  train_loglik_joint and train_n, so that gmle_model_loglik and
 *  gmle_model_information work on the loaded model. gmle_model_load treats
 *  these members as optional (older files load without them). Written to a
 *  temporary file and renamed. */
GMLE_API gmle_status gmle_model_save(const gmle_model *m, const char *path);
/** Load a model saved by gmle_model_save (or written by numpy with the same
 *  arrays). CRCs, shapes and every parameter are checked and the Cholesky
 *  factors recomputed: GMLE_E_CORRUPT, GMLE_E_BAD_FORMAT,
 *  GMLE_E_UNSUPPORTED_VERSION, GMLE_E_INVALID_MODEL with the member and
 *  offset or class. */
GMLE_API gmle_status gmle_model_load(gmle_context *ctx, const char *path,
                                     gmle_model **out);
/** Attach class names (n_classes NUL-terminated strings, copied). */
GMLE_API gmle_status gmle_model_set_class_names(gmle_model *m,
                                                const char *const *names);
/** Class c's name, or NULL when the model has none. */
GMLE_API const char *gmle_model_class_name(const gmle_model *m, size_t c);

/* ------------------------------------------------------------------------ */
/* Data files (.npy, CSV): streaming readers and writers                    */
/* ------------------------------------------------------------------------ */
/* BEGIN DATA-FILES SECTION (owned by src/io_*.c) */
/* Readers stream a data file in batches of rows with bounded memory; the
 * whole file is never loaded. Paths written as Kaldi rspecifiers ("ark:",
 * "scp:", see the Kaldi part below) are Kaldi tables; for other paths
 * the format is chosen from the content: a file
 * starting with the .npy magic "\x93NUMPY" is read as .npy, anything else as
 * delimited text (CSV). Errors name the file and the byte offset (.npy) or
 * line:column (CSV, both 1-based) and come back as GMLE_E_BAD_FORMAT
 * (malformed), GMLE_E_CORRUPT (a .npy file shorter than its header says),
 * GMLE_E_UNSUPPORTED_VERSION (.npy version other than 1.0/2.0/3.0),
 * GMLE_E_UNSUPPORTED (valid but unsupported: an object or integer data
 * dtype, 3-D arrays, pipes, "-"), GMLE_E_EMPTY (a CSV data file with no
 * non-blank line), GMLE_E_INVALID_ARG (options: a label column not found),
 * GMLE_E_IO (system errors, with strerror), GMLE_E_TOO_LARGE or
 * GMLE_E_OUT_OF_MEMORY.
 *
 * CSV rules: fields are separated by one delimiter character (' ' means
 * runs of spaces and tabs); lines end in LF or CRLF; a UTF-8 byte-order
 * mark at the start is skipped; blank lines are skipped; spaces and tabs
 * around a field are trimmed (unless the delimiter is that character). A
 * field may be double-quoted ("a,b", with "" for a quote inside; quoted
 * fields never span lines; a quoted number is still a number). A trailing
 * delimiter (an empty, unquoted last field) is dropped on the first line
 * and on any line where that makes the field count right; any other empty
 * field is an error naming line:column. Numbers are parsed in the C locale
 * whatever LC_NUMERIC says (decimal point '.'); "nan", "inf", "infinity"
 * (any case, optional sign) give NaN/Inf; a value beyond the double range
 * ("1e400", ERANGE overflow) is an error naming line:column, while an
 * underflow ("1e-400") rounds to 0 or a subnormal as strtod does; hex
 * floats ("0x1.8p1") are accepted. A NUL byte anywhere is an error. A row
 * with a different number of fields than the first row is an error naming
 * the line and both counts. Lines may be of any length up to 1 GiB (a line
 * is buffered whole, so memory is bounded by the longest line).
 * Delimiter detection (delimiter 0) looks at the first non-blank line: TAB
 * if it has at least as many tabs as commas and semicolons, else ';' if it
 * has any, else ',' if it has any, else ' ' when it has blanks between
 * fields, else one column. Header detection (header -1): the first line is
 * a header when it has a non-empty field, other than the label column given
 * by index, that is not a number, or when label_column is a name found on
 * it.
 *
 * Text labels files (labels_only without label_column): one label per
 * line, trimmed of spaces and tabs, CRLF and BOM handled, a label quoted
 * whole ("a, b") is unquoted; blank lines at the end are ignored, a blank
 * line followed by a label is an error. */

/** An open data file. */
typedef struct gmle_reader gmle_reader;

/** Reader options; fill with gmle_reader_options_init() first. */
typedef struct gmle_reader_options {
  char delimiter;  /**< CSV: 0 = detect among ',' ';' TAB ' ' from the first
                        line; else that character (' ': runs of blanks) */
  int header;      /**< CSV: -1 = detect (the first line is a header when
                        one of its fields is not a number), 0 none, 1 yes */
  const char *label_column; /**< CSV: the column holding the labels, as a
                        header name or a 0-based index written as text
                        ("0", "4"); NULL: no label column */
  int ark_dtype;   /**< Kaldi archives: the element type read() produces:
                        0 = from the first matrix (float64 for a "DM"
                        matrix, else float32), or GMLE_F32 / GMLE_F64 */
  int labels_only; /**< 1: the file is a labels file: a .npy of shape (N,)
                        or (N, 1) holding integers of any width (also bool,
                        floats with whole values, and '<U'/'|S' strings),
                        or text with one label per line, or (with
                        label_column) one column of a CSV whose other
                        columns are not parsed. read() then yields only
                        label texts and cols() is 0 */
} gmle_reader_options;

/** Fill opt with the defaults: delimiter 0 (detect), header -1 (detect),
 *  label_column NULL, ark_dtype 0, labels_only 0. */
GMLE_API void gmle_reader_options_init(gmle_reader_options *opt);

/** Open `path` for reading (opt NULL: defaults). A Kaldi rspecifier
 *  ("ark:FILE", "scp:FILE", "ark:-" for stdin; see "Kaldi tables" below)
 *  opens a Kaldi table; otherwise the format comes from the content (.npy
 *  magic, else CSV/text) and "-" (stdin) is not supported.
 *  .npy: versions 1.0, 2.0, 3.0; dtypes float32, float64, float16 (read as
 *  float64), either byte order, C or Fortran order, shapes (N,), (N, D) and
 *  () (one value); integer dtypes only with labels_only. A file shorter than
 *  its header claims is rejected here with both byte counts. CSV: the first
 *  line is read to find the delimiter, the header and the column count.
 *  On error *out is NULL and gmle_context_error(ctx) says why. */
GMLE_API gmle_status gmle_reader_open(gmle_context *ctx, const char *path,
                                      const gmle_reader_options *opt,
                                      gmle_reader **out);
/** Close a reader. NULL is a no-op. */
GMLE_API void gmle_reader_free(gmle_reader *r);
/** Feature columns per row (the label column excluded); 0 for labels_only.
 *  A 1-D .npy (N,) has one column. */
GMLE_API size_t gmle_reader_cols(const gmle_reader *r);
/** 1 and *n = the row count when it is known up front (.npy), 0 when not
 *  (CSV/text and Kaldi tables: count by reading to the end). */
GMLE_API int gmle_reader_rows(const gmle_reader *r, uint64_t *n);
/** The element type read() produces: GMLE_F32 for float32 .npy, GMLE_F64
 *  for float64 and float16 .npy and for CSV (and for labels_only readers,
 *  which produce no values); for Kaldi tables see ark_dtype. */
GMLE_API gmle_dtype gmle_reader_dtype(const gmle_reader *r);
/** Read up to max_rows rows into buf: row-major, row stride = cols(), in
 *  the reader's dtype, native byte order, C order (Fortran-order files are
 *  transposed batch by batch). *n_read receives the rows read; 0 means the
 *  end of the file. buf may be NULL when cols() is 0. labels: NULL, or an
 *  array of max_rows pointers receiving each row's label text (owned by the
 *  reader, valid until its next read, rewind or free) when the reader has a
 *  label column or is labels_only; integer .npy labels come as decimal text.
 *  Non-finite values are passed through (gmle_stats_add validates them).
 *  On error no row of the failing call is counted as read. */
GMLE_API gmle_status gmle_reader_read(gmle_reader *r, void *buf,
                                      size_t max_rows, size_t *n_read,
                                      const char **labels);
/** Go back to the first data row. */
GMLE_API gmle_status gmle_reader_rewind(gmle_reader *r);
/** Rows read so far (since open or the last rewind). */
GMLE_API uint64_t gmle_reader_offset(const gmle_reader *r);
/** The header name of feature column j (label column excluded) for CSV
 *  files with a header; NULL otherwise or when j >= cols(). */
GMLE_API const char *gmle_reader_column_name(const gmle_reader *r, size_t j);
/** The detected format: "npy", "csv", "text" (a labels_only file with
 *  one label per line), or "ark" (a Kaldi table: "ark:", "scp:", memory). */
GMLE_API const char *gmle_reader_format(const gmle_reader *r);

/* Kaldi tables. gmle_reader_open also takes the rspecifiers of Kaldi:
 * "ark:FILE" (an archive: "KEY " then one object, repeated), "scp:FILE" (a
 * script file: lines "KEY FILE" or "KEY FILE:OFFSET", the object at that
 * byte offset of FILE, which has no key before it), and "ark:-" (an
 * archive on standard input, read once: rewind is GMLE_E_UNSUPPORTED).
 * Options before the colon ("ark,t:", "ark,s,cs:", "scp,p:") are accepted
 * and ignored: binary or text is detected per object. Pipes ("cmd |") and
 * ranges ("FILE:OFFSET[0:9]") are GMLE_E_UNSUPPORTED.
 *
 * Objects: binary ("\0B" then the object) float and double matrices
 * ("FM ", "DM ": the size byte 4 and an int32 before rows and before
 * columns, then the values row by row, little endian), compressed matrices
 * ("CM ", "CM2 ", "CM3 ") decoded to float exactly as Kaldi's
 * CompressedMatrix::CopyToMat does, and text matrices ("[", rows ended by
 * a line break, "]"); with labels_only, integer vectors as Kaldi writes
 * alignments (binary: size byte 4 + int32 count, then size byte 4 + int32
 * per element; text: the integers up to the end of the line), one label
 * per element. Every matrix is one utterance: its rows are frames, read
 * row by row into the batches of gmle_reader_read (which fills whole
 * batches across utterances); nothing is allocated from a size in the
 * file before that size is checked against the bytes that remain
 * (files), and data are streamed, never held whole (a CM matrix, whose
 * bytes are stored column by column, is buffered compressed, growing as
 * its bytes arrive). Text "nan"/"inf" values are read as NaN/Inf and left
 * to the non-finite checks of gmle_stats_add/gmle_score (which name batch,
 * row and column).
 *
 * Malformed input is GMLE_E_BAD_ARK with a message naming the file, the
 * byte offset and the key: a vector where a matrix is expected, a size
 * byte other than 4, rows or columns <= 0, rows*cols*size beyond the bytes
 * that remain, truncated data, a key not followed by a space, ragged or
 * malformed text rows, an unknown object type; a matrix whose column
 * count differs from the first one's is GMLE_E_DIM_MISMATCH. Empty
 * matrices (which Kaldi writes as 0 x 0) are refused like any matrix with
 * no rows. Keys are limited to 65536 bytes and text rows to 1 GiB. */

/** One utterance's part of the rows of the last gmle_reader_read. */
typedef struct gmle_utterance {
  const char *key; /**< the utterance's key; owned by the reader, valid
                        until its next read, rewind or free */
  uint64_t index;  /**< 0-based position of the utterance in the table */
  uint64_t frame0; /**< frame (row of the matrix) of its first row here */
  size_t row0;     /**< its first row in the buffer of that read */
  size_t n_rows;   /**< its rows in that read */
  int last;        /**< 1: the utterance ends in that read (its last frame
                        is frame0 + n_rows - 1) */
} gmle_utterance;

/** The utterances of the rows returned by the last gmle_reader_read of a
 *  Kaldi reader, in order: *out receives an array (owned by the reader,
 *  valid until its next read, rewind or free) whose row0/n_rows cover
 *  the rows read, and the count is returned. 0 (and *out NULL) for other
 *  readers and after a read of 0 rows. An utterance longer than a batch
 *  comes in several reads with the same index. */
GMLE_API size_t gmle_reader_utterances(const gmle_reader *r,
                                       const gmle_utterance **out);

/** Open a Kaldi archive held in memory (data[0..size), not copied: it
 *  must outlive the reader): the same parser as "ark:" files, for tools
 *  and fuzzing. Rewind works. Errors as for gmle_reader_open, with the
 *  name "<memory>". */
GMLE_API gmle_status gmle_reader_open_ark_memory(gmle_context *ctx,
                                                 const void *data, size_t size,
                                                 const gmle_reader_options *opt,
                                                 gmle_reader **out);

/** Element types a writer stores. */
typedef enum gmle_elem {
  GMLE_ELEM_F32, /**< float, .npy '<f4', CSV %.9g */
  GMLE_ELEM_F64, /**< double, .npy '<f8', CSV %.17g */
  GMLE_ELEM_I32, /**< int32_t, .npy '<i4' */
  GMLE_ELEM_I64, /**< int64_t, .npy '<i8' */
  GMLE_ELEM_STR  /**< const char * (UTF-8), .npy '<U{str_width}' */
} gmle_elem;

/** A data file being written. */
typedef struct gmle_writer gmle_writer;

/** Start writing `path`: CSV when the name ends in ".csv" (any case), else
 *  .npy version 1.0 (little endian, C order). The file is written to a
 *  temporary file in the same directory and renamed into place by
 *  gmle_writer_commit(), so a failed or aborted write leaves no file.
 *  The shape is (N, cols), or (N,) when cols is 0 (one element per row);
 *  N is the total of the rows written. str_width: for GMLE_ELEM_STR the
 *  largest string length in characters (code points); ignored otherwise.
 *  CSV files have no header; numbers are formatted in the C locale; strings
 *  are quoted when they hold the delimiter, a quote or a line break. */
GMLE_API gmle_status gmle_writer_open(gmle_context *ctx, const char *path,
                                      gmle_elem elem, size_t cols,
                                      size_t str_width, gmle_writer **out);
/** Append n_rows rows: n_rows * max(cols, 1) elements of the writer's
 *  type, row-major; for GMLE_ELEM_STR an array of const char * (NULL is
 *  written as ""). A string longer than str_width is GMLE_E_INVALID_ARG.
 *  After an error the writer can only be aborted. */
GMLE_API gmle_status gmle_writer_write(gmle_writer *w, const void *rows,
                                       size_t n_rows);
/** Finish: patch the row count into the .npy header, flush, fsync, rename
 *  the temporary file into place, and free the writer (also on error, in
 *  which case the temporary file is removed). */
GMLE_API gmle_status gmle_writer_commit(gmle_writer *w);
/** Remove the temporary file and free the writer. NULL is a no-op. */
GMLE_API void gmle_writer_abort(gmle_writer *w);
/** A Kaldi archive being written. */
typedef struct gmle_ark_writer gmle_ark_writer;

/** Start writing a Kaldi archive. wspecifier: "ark:FILE" (binary, what
 *  Kaldi writes by default) or "ark,t:FILE" (text); the options b, t, f,
 *  nf, p are accepted (b/t choose the mode), "ark:-", "scp" and pipes are
 *  GMLE_E_UNSUPPORTED. elem: GMLE_ELEM_F32 ("FM" matrices, "FV" vectors)
 *  or GMLE_ELEM_F64 ("DM", "DV"). cols >= 1: every object is a matrix of
 *  that many columns; cols 0: every object is a vector. Text numbers are
 *  written with %.9g (float) or %.17g (double) in the C locale, so they
 *  read back exactly; binary values are written bit for bit. The file is
 *  written to a temporary file and renamed by gmle_ark_writer_commit. */
GMLE_API gmle_status gmle_ark_writer_open(gmle_context *ctx,
                                          const char *wspecifier,
                                          gmle_elem elem, size_t cols,
                                          gmle_ark_writer **out);
/** Start the object of `key` (non-empty, no whitespace, < 65536 bytes;
 *  GMLE_E_INVALID_ARG otherwise). The previous object must be ended. */
GMLE_API gmle_status gmle_ark_writer_begin(gmle_ark_writer *w,
                                           const char *key);
/** Append n_rows rows (n_rows * max(cols, 1) elements, row-major; for
 *  vectors, n_rows elements) to the current object. At most INT32_MAX rows
 *  per object (GMLE_E_TOO_LARGE). */
GMLE_API gmle_status gmle_ark_writer_rows(gmle_ark_writer *w,
                                          const void *rows, size_t n_rows);
/** End the current object (its row count is written into its header). An
 *  object with no rows is GMLE_E_INVALID_ARG (gmle reads none back). */
GMLE_API gmle_status gmle_ark_writer_end(gmle_ark_writer *w);
/** begin + rows + end: one whole object. */
GMLE_API gmle_status gmle_ark_writer_put(gmle_ark_writer *w, const char *key,
                                         const void *rows, size_t n_rows);
/** Finish: flush, fsync, rename into place, free the writer (also on
 *  error, removing the temporary file). An object still open is an
 *  error. */
GMLE_API gmle_status gmle_ark_writer_commit(gmle_ark_writer *w);
/** Remove the temporary file and free the writer. NULL is a no-op. */
GMLE_API void gmle_ark_writer_abort(gmle_ark_writer *w);

/* END DATA-FILES SECTION */

#ifdef __cplusplus
}
#endif

#endif /* GMLE_H */
