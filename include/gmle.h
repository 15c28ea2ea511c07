/*
 * gmle.h -- Gaussian maximum-likelihood estimation and bulk scoring.
 *
 * The estimator API: context, statistics, fit, model, score, devices. It
 * needs only <stddef.h> and <stdint.h>. Files (data readers and writers,
 * model and statistics files) are in gmle_io.h; their layouts are in
 * docs/FORMATS.md.
 *
 * Conventions
 * - Every fallible call returns gmle_status; GMLE_OK is 0, every error is
 *   non-zero. Results come back through out-parameters.
 * - Objects are opaque handles created by gmle_X_create(..., gmle_X **out) and
 *   released by gmle_X_free(), which accepts NULL.
 * - The detailed message of the last failing call on a context (naming the
 *   batch, row, column, class or file offset involved) is read with
 *   gmle_context_error(), and where it happened, as numbers, with
 *   gmle_context_error_location(). Statistics and models remember their
 *   context.
 * - Sizes and counts are size_t. Row strides count elements, not bytes:
 *   row r of X starts at X + r * row_stride.
 * - Option structs (gmle_fit_options, gmle_reader_options) lead with
 *   `size_t struct_size`, set by their gmle_X_options_init(): fill them with
 *   it, then change members. The library reads only the members inside the
 *   caller's struct_size and uses the defaults for the rest, so a struct can
 *   gain members without breaking programs built against an older gmle.h;
 *   a struct_size of 0, or below the first version's, is GMLE_E_INVALID_ARG.
 * - The library never aborts and never prints. Diagnostics go to the log
 *   callback of the context, which is silent by default.
 *
 * The mathematics (see docs/ARCHITECTURE.md): for rows x_n with weights
 * w_n >= 0,
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
  GMLE_OUT_DENSITY = 4, /**< n: log sum_c pi_c N(x; mu_c, Sigma_c) */
  GMLE_OUT_RESP = 5     /**< mixtures: n x (C*K) component posteriors
                             p(k | x, c), class c's K values at c*K + k
                             (each class's sum to 1; a model of plain
                             Gaussians gives n x C ones) */
} gmle_output;

/** Statistics modes: full Gram matrices, or only their diagonals (sums of
 *  squares), for wide data where only diagonal or spherical fits are wanted. */
typedef enum gmle_stats_mode {
  GMLE_STATS_FULL = 0,
  GMLE_STATS_DIAG = 1
} gmle_stats_mode;

/** The name of a covariance type as model files and the CLI write it:
 *  "full", "diag", "spherical" or "tied"; NULL for a value outside the
 *  enum. The string is static. */
GMLE_API const char *gmle_cov_name(gmle_cov_type t);
/** Parse a covariance type name (exactly as gmle_cov_name spells it) into
 *  *out; GMLE_E_INVALID_ARG for other names or NULL arguments, leaving
 *  *out unchanged. */
GMLE_API gmle_status gmle_cov_parse(const char *name, gmle_cov_type *out);
/** The name of a score output as the CLI's --what takes it: "loglik",
 *  "joint", "logpost", "label" or "density"; NULL for a value outside the
 *  enum. The string is static. */
GMLE_API const char *gmle_output_name(gmle_output o);
/** Parse a score output name (exactly as gmle_output_name spells it) into
 *  *out; GMLE_E_INVALID_ARG for other names or NULL arguments, leaving
 *  *out unchanged. */
GMLE_API gmle_status gmle_output_parse(const char *name, gmle_output *out);

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

/** Where the last error on a context happened, beside its message: the
 *  batch, row (within the call's data, as the message counts it), column,
 *  byte offset, line (1-based, text files) and class involved. Only the
 *  members whose GMLE_LOC_ bit is set in `fields` are meaningful; an error
 *  that names no place has fields == 0. */
typedef struct gmle_error_location {
  uint64_t batch;       /**< GMLE_LOC_BATCH: the batch index of the call */
  uint64_t row;         /**< GMLE_LOC_ROW: the row, as the message says */
  uint64_t column;      /**< GMLE_LOC_COLUMN: 0-based (CSV: 1-based field) */
  uint64_t byte_offset; /**< GMLE_LOC_OFFSET: bytes from the file's start */
  uint64_t line;        /**< GMLE_LOC_LINE: 1-based line of a text file */
  size_t class_index;   /**< GMLE_LOC_CLASS: the class involved */
  unsigned fields;      /**< the GMLE_LOC_ bits of the members set */
} gmle_error_location;
#define GMLE_LOC_BATCH 1u
#define GMLE_LOC_ROW 2u
#define GMLE_LOC_COLUMN 4u
#define GMLE_LOC_OFFSET 8u
#define GMLE_LOC_LINE 16u
#define GMLE_LOC_CLASS 32u
/** Copy the location of the last failing call made with ctx into *out
 *  (fields == 0 when it named none, or when there was no error). Valid until
 *  the context's next call, as gmle_context_error. GMLE_E_INVALID_ARG when
 *  ctx or out is NULL. */
GMLE_API gmle_status gmle_context_error_location(const gmle_context *ctx,
                                                 gmle_error_location *out);
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
  gmle_backend backend;   /**< the backend the device belongs to */
  int index;              /**< the `device` of gmle_context_create */
  int is_default;         /**< 1: the device chosen for device = -1 */
  int is_gpu;             /**< 1: a GPU */
  int fp64;               /**< 1: float64 arithmetic on the device */
  unsigned compute_units; /**< compute units (cores or threads on a CPU) */
  uint64_t global_mem;    /**< device memory in bytes, 0 if unknown */
  char name[128];         /**< the device's name */
  char platform[128];     /**< platform or driver ("" if not applicable) */
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

/* ------------------------------------------------------------------------ */
/* Fitting                                                                  */
/* ------------------------------------------------------------------------ */

/** How a fit is regularised (see docs/ARCHITECTURE.md, "Degenerate data is
 *  normal data"). The default is the exact MLE plus a relative floor in each
 * feature's own scale s_j (feature j's largest within-class variance over all
 *  accumulated data, never another feature's): a variance is at least
 *  rel_floor * s_j; for full and tied covariances every eigenvalue of
 *  diag(s)^-1/2 Sigma diag(s)^-1/2 is at least rel_floor. Rescaling a
 *  feature rescales the model and changes no prediction, and a well-defined
 *  covariance is left as the plain MLE; where the floor acts the class
 *  report counts it (n_floored). Spherical uses the mean of the s_j. */
typedef struct gmle_fit_options {
  size_t struct_size;   /**< set by gmle_fit_options_init (see the top) */
  gmle_cov_type cov;    /**< default GMLE_COV_FULL */
  const double *priors; /**< n_classes priors summing to 1, or NULL: n_c/n */
  double rel_floor;     /**< default 1e-9; 0 disables */
  double abs_floor;     /**< added to the diagonal (reg_covar); default 0 */
  double max_condition; /**< > 0: eigenvalue floor so that cond(Sigma_c) <=
                             max_condition (Kaldi style); default 0 = off */
  int shrinkage;        /**< 1: OAS shrinkage toward a scaled identity
                             (full and tied; no effect on diag/spherical) */
  int allow_empty;      /**< 1 (default): empty classes get prior 0 and
                             score -inf; 0: an empty class is an error */
} gmle_fit_options;

/** Fill opt with the defaults and struct_size = sizeof *opt. Members added
 *  later go at the end; a program built against an older gmle.h gets their
 *  defaults. */
GMLE_API void gmle_fit_options_init(gmle_fit_options *opt);

/** Fit a model from statistics. opt may be NULL (defaults).
 *  Errors name the class and the option that would fix the problem:
 *  GMLE_E_ILL_DEFINED_COV (a class with one row and no floor),
 *  GMLE_E_SINGULAR_COV (N_c <= D, a constant feature, collinear features,
 *  with no regularisation), GMLE_E_NONFINITE_STATS (also when a class's
 *  mean or covariance overflows float64), GMLE_E_EMPTY (no data at all, or
 *  an empty class with allow_empty = 0), GMLE_E_INVALID_MODEL (full or tied
 *  class means too many standard deviations apart to be scored in
 *  float64), GMLE_E_OVERFLOW (values below about 3e-151, whose squared
 *  deviations underflow float64: the message says so and asks for the
 *  data to be rescaled), GMLE_E_INVALID_ARG.
 *  Threads: many classes are fitted on the context's threads (the result
 *  is the same on any number). While this call, gmle_model_create and
 *  gmle_model_load factorise D x D matrices with D < 256, they set
 *  OpenBLAS to one thread (openblas_set_num_threads) and restore the
 *  program's setting before returning: a threaded OpenBLAS otherwise wakes
 *  its worker threads for such small calls, and they then spin on the
 *  cores that the next gmle call needs. A program that calls OpenBLAS from
 *  other threads at the same moment runs those calls on one thread. */
GMLE_API gmle_status gmle_fit(const gmle_stats *st, const gmle_fit_options *opt,
                              gmle_model **out);

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
                                       const double *counts, gmle_model **out);
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
  uint64_t rows;         /**< rows accumulated */
  double weight;         /**< n_c */
  double min_eigenvalue; /**< of the fitted covariance */
  double max_eigenvalue;
  double condition; /**< max/min eigenvalue */
  size_t n_floored; /**< variances/eigenvalues raised by a floor */
  int empty;        /**< 1 when the class had no data */
  double shrinkage; /**< OAS coefficient used (0 if none) */
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
                                const void *x, gmle_dtype dtype, size_t n_rows,
                                size_t row_stride, gmle_output what,
                                gmle_dtype out_dtype, void *out);

/** Total log-likelihood of a data set: with labels, sum_n w_n log N(x_n;
 *  mu_{y_n}, Sigma_{y_n}) (class-conditional, no priors); without labels,
 *  sum_n w_n log sum_c pi_c N(x_n; mu_c, Sigma_c). weights may be NULL. */
GMLE_API gmle_status gmle_total_loglik(gmle_context *ctx, const gmle_model *m,
                                       const void *x, gmle_dtype dtype,
                                       size_t n_rows, size_t row_stride,
                                       const int32_t *labels,
                                       const double *weights, double *out);

/* ------------------------------------------------------------------------ */
/* Mixtures of Gaussians (EM)                                               */
/* ------------------------------------------------------------------------ */
/* A mixture model has, per class c, K components, each a weight w_ck (the
 * class's weights sum to 1), a mean and a covariance of the model's type:
 * full (K x D x D per class), diag (K x D), spherical (K) or tied (one
 * D x D per class, shared by its components). An unsupervised mixture is
 * the one-class case. Everything that takes a gmle_model takes a mixture:
 * gmle_score's class outputs use log p(x | c) = logsumexp_k (log w_ck +
 * log N(x; mu_ck, Sigma_ck)); GMLE_OUT_RESP gives the component posteriors;
 * gmle_model_mean and gmle_model_covariance give each class's mixture
 * moments (sum_k w_k mu_k, and the covariance of the mixture).
 * docs/MIXTURES.md says how the EM below works and what it guarantees. */

/** EM variants. SOFT: every row belongs to every component of its class
 *  with its posterior probability. HARD: each row wholly to its most likely
 *  component (lowest index on ties): one iteration is "classify, then fit on
 *  the predicted labels". TOP_N: soft, restricted to each row's top_n
 *  components (posteriors renormalised over them), for large K. */
typedef enum gmle_em_mode {
  GMLE_EM_SOFT = 0,
  GMLE_EM_HARD = 1,
  GMLE_EM_TOP_N = 2
} gmle_em_mode;

/** How the first parameters are chosen. KMEANSPP: k-means++ seeds on a
 *  reservoir sample of each class, then Lloyd iterations on the sample, the
 *  components estimated from the sample's clusters. RANDOM: K distinct rows
 *  of the sample as means, the class's covariance for every component,
 *  equal weights. MODEL: init_model's parameters (warm start). SPLIT: one
 *  Gaussian per class, then the heaviest component split along its main
 *  axis (with split_iter EM iterations after each split) until K. */
typedef enum gmle_em_init {
  GMLE_INIT_KMEANSPP = 0,
  GMLE_INIT_RANDOM = 1,
  GMLE_INIT_MODEL = 2,
  GMLE_INIT_SPLIT = 3
} gmle_em_init;

/** Called after each EM iteration (from the calling thread): run is the
 *  initialisation (0-based, < n_init), iter the iteration (1-based),
 *  lower_bound the mean per-row log-likelihood under the parameters the
 *  iteration started from, change its change from the previous iteration
 *  (NaN at the first), rows the rows read, seconds the iteration's time. */
typedef void (*gmle_em_progress_fn)(void *user, size_t run, size_t iter,
                                    double lower_bound, double change,
                                    double rows, double seconds);

/** EM statistics for one iteration from the parameters of `current`: the
 *  E-step of each batch and the responsibility-weighted statistics of every
 *  component (n_k, sums and Gram matrices around the current means, float64),
 *  with the batches' total log-likelihood. They merge exactly, so one
 *  iteration runs over shards: create on each shard from the same model,
 *  add the shard's rows, merge, then gmle_em_step. */
typedef struct gmle_em_stats gmle_em_stats;

/** An EM fit run by several processes at once, each over its own rows
 *  (gmle_mpi_em_fit in gmle_mpi.h makes one): gmle_em_fit hands every
 *  pass's results to these callbacks, which replace them by their sums
 *  over the processes, the same in every process. `stats` gets each
 *  iteration's EM statistics before the M-step (*es may be replaced by
 *  other statistics of the same shape, which EM then owns; on failure *es
 *  is left as it was); `sums` gets the final pass's log-likelihood and
 *  row weight (v[0..n)). A status other than GMLE_OK ends the fit with
 *  it. */
typedef struct gmle_em_combine {
  void *user;
  gmle_status (*stats)(void *user, gmle_em_stats **es);
  gmle_status (*sums)(void *user, double *v, size_t n);
} gmle_em_combine;

/** EM options; as gmle_fit_options, set struct_size with
 *  gmle_em_options_init and change the members you need. */
typedef struct gmle_em_options {
  size_t struct_size;           /**< set by gmle_em_options_init */
  size_t n_components;          /**< K >= 1; default 1 */
  gmle_cov_type cov;            /**< default GMLE_COV_FULL */
  gmle_em_mode mode;            /**< default GMLE_EM_SOFT */
  size_t top_n;                 /**< GMLE_EM_TOP_N: components per row (>= 1) */
  gmle_em_init init;            /**< default GMLE_INIT_KMEANSPP */
  const gmle_model *init_model; /**< GMLE_INIT_MODEL: the start (a mixture
                                     or a model of plain Gaussians read as
                                     one component per class) */
  size_t max_iter;              /**< E+M iterations, counted as scikit-learn's
                                     n_iter_; default 100 (0: only the init) */
  double tol;                   /**< stop when |change of the mean per-row
                                     log-likelihood| < tol; default 1e-3; 0: run
                                     max_iter iterations */
  size_t n_init;                /**< initialisations, the best lower bound kept;
                                     default 1 */
  uint64_t seed;        /**< default 0; same seed, data and batches give a
                             bit-identical model on a backend */
  double reg_covar;     /**< added to every component's diagonal, as
                             scikit-learn's reg_covar; default 1e-6 */
  double rel_floor;     /**< as gmle_fit_options.rel_floor; default 1e-9 */
  double min_weight;    /**< a component whose weight falls below this
                             (or whose occupancy is below one row) is
                             re-seeded by splitting the heaviest component
                             of its class; default 0 */
  size_t sample_rows;   /**< reservoir size per class for the init;
                             default 100000 */
  size_t kmeans_iter;   /**< Lloyd iterations of the init; default 20 */
  size_t split_iter;    /**< GMLE_INIT_SPLIT: EM iterations after each
                             split; default 3 */
  const double *priors; /**< class priors (C, summing to 1) or NULL:
                             n_c / n */
  gmle_em_progress_fn progress; /**< or NULL */
  void *progress_user;
  const gmle_em_combine *combine; /**< NULL (default): one process. Set:
                                       the passes are combined across
                                       processes, and init must be
                                       GMLE_INIT_MODEL (the same start in
                                       every process) */
} gmle_em_options;

/** Fill opt with the defaults and struct_size = sizeof *opt. */
GMLE_API void gmle_em_options_init(gmle_em_options *opt);

/** Where EM reads its rows: every pass calls rewind, then next until it
 *  returns a batch of 0 rows. next returns a batch of rows (as for
 *  gmle_stats_add: x, dtype, n_rows, row_stride elements, labels or NULL
 *  for one class, weights or NULL), valid until the next call. A callback
 *  that fails returns its status (after setting its own message, e.g. on
 *  the context through the data-file API); EM returns it unchanged. The
 *  batches must be the same on every pass. */
typedef struct gmle_batch_source {
  void *user;
  gmle_status (*rewind)(void *user);
  gmle_status (*next)(void *user, const void **x, gmle_dtype *dtype,
                      size_t *n_rows, size_t *row_stride,
                      const int32_t **labels, const double **weights);
} gmle_batch_source;

/** Fit a mixture of opt->n_components Gaussians per class by EM, reading
 *  the rows from src (n_classes 1: an unsupervised mixture; labels must then
 *  be NULL). Memory beyond a batch's rows is O(batch x C x K) whatever the
 *  row count. Errors: GMLE_E_INVALID_ARG (K = 0, top_n outside [1, K]),
 *  GMLE_E_DIM_MISMATCH (an init model of another dimension, class count,
 *  covariance type or K), GMLE_E_ILL_DEFINED_COV (K above a class's row count),
 * GMLE_E_EMPTY (a class without rows), GMLE_E_SINGULAR_COV (a class whose rows
 * are all identical, with no reg_covar), and every error of gmle_stats_add and
 * gmle_score (NaN rows: GMLE_E_NONFINITE_INPUT naming batch, row and column).
 * The result's diagnostics: gmle_model_em_report. */
GMLE_API gmle_status gmle_em_fit(gmle_context *ctx, size_t dim,
                                 size_t n_classes, const gmle_batch_source *src,
                                 const gmle_em_options *opt, gmle_model **out);

/** Empty EM statistics for one iteration from `current` (a mixture, or a
 *  model of plain Gaussians), in mode opt->mode (opt may be NULL: soft). */
GMLE_API gmle_status gmle_em_stats_create(gmle_context *ctx,
                                          const gmle_model *current,
                                          const gmle_em_options *opt,
                                          gmle_em_stats **out);
/** E-step and accumulation of a batch (arguments as gmle_stats_add).
 *  Atomic: on any error the statistics are as before the call. */
GMLE_API gmle_status gmle_em_stats_add(gmle_em_stats *es, const void *x,
                                       gmle_dtype dtype, size_t n_rows,
                                       size_t row_stride, const int32_t *labels,
                                       const double *weights);
/** dst += src (same model shape and mode; GMLE_E_DIM_MISMATCH otherwise). */
GMLE_API gmle_status gmle_em_stats_merge(gmle_em_stats *dst,
                                         const gmle_em_stats *src);
/** The total weighted log-likelihood of the rows added (under the model the
 *  statistics were created from) and their total weight. Either may be
 *  NULL. */
GMLE_API gmle_status gmle_em_stats_loglik(const gmle_em_stats *es, double *sum,
                                          double *weight);
/** Components per class (K) of EM statistics. */
GMLE_API size_t gmle_em_stats_n_components(const gmle_em_stats *es);
/** The EM mode of EM statistics. */
GMLE_API gmle_em_mode gmle_em_stats_mode(const gmle_em_stats *es);
/** The component statistics: C*K classes, class c's component k at
 *  c*K + k (for saving with gmle_stats_save). */
GMLE_API const gmle_stats *gmle_em_stats_components(const gmle_em_stats *es);
/** EM statistics from saved parts: the component statistics (taken over: on
 *  success es owns st; on failure the caller still does), K, the mode and
 *  the log-likelihood sums (the inverse of the three getters above). */
GMLE_API gmle_status gmle_em_stats_wrap(gmle_stats *st, size_t n_components,
                                        gmle_em_mode mode, double loglik_sum,
                                        double loglik_weight,
                                        gmle_em_stats **out);
/** The M-step: the next mixture from EM statistics (opt: cov, reg_covar,
 *  rel_floor, min_weight, priors; may be NULL for the defaults). `previous`
 *  (the model the statistics came from, or NULL) lends its log-likelihood
 *  history, which the result extends by this iteration's lower bound. */
GMLE_API gmle_status gmle_em_step(const gmle_em_stats *es,
                                  const gmle_model *previous,
                                  const gmle_em_options *opt, gmle_model **out);
/** Free EM statistics. NULL is a no-op. */
GMLE_API void gmle_em_stats_free(gmle_em_stats *es);

/** Build a mixture from parameters: weights (C*K, each class's summing to 1
 *  within 1e-6; they are renormalised), means (C*K*D), covariances (full
 *  C*K*D*D, diag C*K*D, spherical C*K, tied C*D*D), priors (C, NULL:
 *  uniform), counts (C, may be NULL). Validates as gmle_model_create does:
 *  GMLE_E_INVALID_MODEL names the class, the component and the check. */
GMLE_API gmle_status gmle_mixture_create(
    gmle_context *ctx, size_t dim, size_t n_classes, size_t n_components,
    gmle_cov_type cov, const double *weights, const double *means,
    const double *covariances, const double *priors, const double *counts,
    gmle_model **out);
/** 1 for a mixture (from gmle_em_fit, gmle_em_step or gmle_mixture_create),
 *  0 for a model of one Gaussian per class. */
GMLE_API int gmle_model_is_mixture(const gmle_model *m);
/** Components per class: K for a mixture, 1 otherwise. */
GMLE_API size_t gmle_model_n_components(const gmle_model *m);
/** A mixture's parameters, in the layouts of gmle_mixture_create; any
 *  pointer may be NULL. GMLE_E_INVALID_ARG for a model that is not a
 *  mixture. */
GMLE_API gmle_status gmle_mixture_params(const gmle_model *m, double *weights,
                                         double *means, double *covariances);
/** scikit-learn's precisions_cholesky_ of every component, laid out as the
 *  covariances: full and tied the upper-triangular U with U U^T =
 *  Sigma^-1 (U = L^-T for Sigma = L L^T), diag and spherical 1/sqrt of the
 *  variances. */
GMLE_API gmle_status gmle_mixture_precisions_cholesky(const gmle_model *m,
                                                      double *out);

/** What EM did. Pointers stay valid while the model lives. */
typedef struct gmle_em_report {
  size_t n_iter;         /**< iterations of the kept run */
  int converged;         /**< 1 when |change| < tol stopped it */
  double lower_bound;    /**< the kept run's last mean per-row log-likelihood
                              (scikit-learn's lower_bound_) */
  size_t n_history;      /**< entries of history */
  const double *history; /**< mean per-row log-likelihood per iteration */
  size_t n_reseeded;     /**< components re-seeded (empty or collapsing) */
  size_t n_init;         /**< initialisations run */
  size_t best_init;      /**< the kept one */
  gmle_em_mode mode;
  gmle_em_init init;
  double reg_covar;
  double n_rows; /**< total row weight of an iteration */
} gmle_em_report;

/** The EM report of a mixture; GMLE_E_UNSUPPORTED when the model has none
 *  (built from parameters, or not a mixture). */
GMLE_API gmle_status gmle_model_em_report(const gmle_model *m,
                                          gmle_em_report *out);
/** Attach an EM report (copied, history included): for loaders. */
GMLE_API gmle_status gmle_model_set_em_report(gmle_model *m,
                                              const gmle_em_report *r);

/** The name of an EM mode as model files and `gmle info` write it: "soft",
 *  "hard" or "top" (GMLE_EM_TOP_N; the CLI's --em top:N); NULL for a value
 *  outside the enum. The string is static. */
GMLE_API const char *gmle_em_mode_name(gmle_em_mode m);
/** Parse an EM mode name (exactly as gmle_em_mode_name spells it) into
 *  *out; GMLE_E_INVALID_ARG for other names or NULL arguments, leaving
 *  *out unchanged. */
GMLE_API gmle_status gmle_em_mode_parse(const char *name, gmle_em_mode *out);
/** The name of an EM initialisation: "kmeans++", "random", "model" or
 *  "split"; NULL for a value outside the enum. The string is static. */
GMLE_API const char *gmle_em_init_name(gmle_em_init i);
/** Parse an EM initialisation name (as gmle_em_init_name spells it) into
 *  *out; GMLE_E_INVALID_ARG for other names or NULL arguments, leaving
 *  *out unchanged. */
GMLE_API gmle_status gmle_em_init_parse(const char *name, gmle_em_init *out);

/* ------------------------------------------------------------------------ */
/* Class names of a model                                                   */
/* ------------------------------------------------------------------------ */

/** Attach class names (n_classes NUL-terminated strings, copied). */
GMLE_API gmle_status gmle_model_set_class_names(gmle_model *m,
                                                const char *const *names);
/** Class c's name, or NULL when the model has none. */
GMLE_API const char *gmle_model_class_name(const gmle_model *m, size_t c);

#ifdef __cplusplus
}
#endif

#endif /* GMLE_H */
