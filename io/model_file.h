/*
 * model_file.h -- what the two halves of the model file share (internal):
 * io/model_file.c (the archive, the members of models of plain Gaussians
 * and the members every model has) and io/model_file_mixture.c (the
 * members of mixtures). The layouts: docs/FORMATS.md.
 */
#ifndef GMLE_MODEL_FILE_H
#define GMLE_MODEL_FILE_H

#include "io_internal.h"
#include "npy.h"
#include "zip.h"

/* Format versions: 1 for models of plain Gaussians (unchanged since the
 * first gmle), 2 for mixtures; a reader reads every version up to
 * GMLE__MF_VERSION. */
#define GMLE__MF_VERSION_PLAIN 1
#define GMLE__MF_VERSION_MIXTURE 2
#define GMLE__MF_VERSION 2

/* ---- save ---------------------------------------------------------------- */

typedef struct gmle__mf_save {
  const gmle_context *ctx;
  const char *path;
  gmle__zip_writer zw;
  char f8[8], u8[8]; /* native float64 and uint64 descrs ("<f8", "<u8") */
} gmle__mf_save;

/* Add `member` (with its ".npy") as an array of descr and shape[ndim] whose
 * data is `bytes` bytes at data. */
gmle_status gmle__mf_add_array(gmle__mf_save *s, const char *member,
                               const char *descr, size_t ndim,
                               const size_t *shape, const void *data,
                               size_t bytes);
/* A 0-d <U member holding ASCII text of at most GMLE__MF_MAX_TEXT
 * characters. */
#define GMLE__MF_MAX_TEXT 32
gmle_status gmle__mf_add_text(gmle__mf_save *s, const char *member,
                              const char *text);
/* format_version (0-d <i8) and covariance_type (0-d <U). */
gmle_status gmle__mf_save_header(gmle__mf_save *s, int version,
                                 gmle_cov_type cov);
/* The (C,) members priors (with_priors), counts and rows (when the model
 * has them) and classes (names, or 0..C-1; with_classes). */
gmle_status gmle__mf_save_classes(gmle__mf_save *s, const gmle_model *m,
                                  int with_priors, int with_classes);
/* train_* (models with a training log-likelihood) and report_*. */
gmle_status gmle__mf_save_train_and_reports(gmle__mf_save *s,
                                            const gmle_model *m);

/* ---- load ---------------------------------------------------------------- */

typedef struct gmle__mf_member {
  const char *name; /* "means" */
  unsigned char *buf;
  gmle__npy_header h;
  const unsigned char *data;
  char label[512]; /* "path: member 'means.npy' (at byte N)" for messages */
} gmle__mf_member;

#define GMLE__MF_N_REPORT 6 /* report_* members */
#define GMLE__MF_N_EM 11    /* em_* members */

typedef struct gmle__mf_load {
  gmle_context *ctx;
  const char *path;
  const void *mem; /* the file's bytes (gmle__model_load_mem), or NULL */
  size_t mem_size;
  gmle__zip_reader zr;
  int mixture; /* the archive has a weights member */
  gmle__mf_member fv, ct, means, covs, priors, counts, rows, classes;
  gmle__mf_member train[3]; /* train_loglik, train_loglik_joint, train_n */
  gmle__mf_member rep[GMLE__MF_N_REPORT];
  gmle__mf_member weights, prec; /* mixtures: weights, precisions_cholesky */
  gmle__mf_member em[GMLE__MF_N_EM];
} gmle__mf_load;

/* Read member `name` (without ".npy"): its header parsed, its data in
 * mb->data. Absent and !required: mb->buf stays NULL. */
gmle_status gmle__mf_load_member(gmle__mf_load *L, gmle__mf_member *mb,
                                 const char *name, int required);
/* 1 when mb's shape is the first ndim of want[]. */
int gmle__mf_shape_is(const gmle__mf_member *mb, size_t ndim,
                      const size_t *want);
/* A shape as numpy prints it: "(3, 4)", "(3,)", "()". */
void gmle__mf_shape_text(const size_t *shape, size_t ndim, char *buf,
                         size_t cap);
/* GMLE_E_BAD_FORMAT: "<label>: shape (..) does not match the model:
 * expected <want>". */
gmle_status gmle__mf_wrong_shape(gmle__mf_load *L, const gmle__mf_member *mb,
                                 const char *want);
/* GMLE_E_BAD_FORMAT unless mb holds numbers (not booleans). */
gmle_status gmle__mf_need_numeric(gmle__mf_load *L, const gmle__mf_member *mb);
/* The array as doubles in C order: the member's own bytes when they
 * already are native float64 in C order, else a converted copy (*owned,
 * to free). */
gmle_status gmle__mf_as_f64(gmle__mf_load *L, const gmle__mf_member *mb,
                            const double **out, double **owned);
/* A 0-d (or one-element) string member as printable ASCII text in out
 * (cap bytes); "" when it holds other characters or does not fit. */
gmle_status gmle__mf_scalar_text(gmle__mf_load *L, const gmle__mf_member *mb,
                                 char *out, size_t cap);
/* covariance_type, required. */
gmle_status gmle__mf_load_cov_type(gmle__mf_load *L, gmle_cov_type *cov);
/* The per-class members that every model may have, each (C,): priors
 * (required when priors_required), counts, rows, classes, then the train_*
 * and report_* members. */
gmle_status gmle__mf_load_classes(gmle__mf_load *L, size_t C,
                                  int priors_required);
/* Re-issue the context's error s prefixed with "<path>: " (for the
 * messages of gmle_model_create and gmle_mixture_create). */
gmle_status gmle__mf_path_error(gmle__mf_load *L, gmle_status s);
/* Builds the model from the checked parameter members (arg: the caller's). */
typedef gmle_status (*gmle__mf_create_fn)(gmle__mf_load *L, const void *arg,
                                          gmle_model **out);
/* The model: the class names and row counts read, create called, then
 * what the file holds beside the parameters restored onto its result
 * (names, rows, the training log-likelihood, the fit reports). C: the
 * class count of the per-class members. */
gmle_status gmle__mf_build(gmle__mf_load *L, size_t C,
                           gmle__mf_create_fn create, const void *arg,
                           gmle_model **out);

/* ---- mixtures (io/model_file_mixture.c) ---------------------------------- */

/* Every member of a mixture, in the order the file keeps them. */
gmle_status gmle__mf_save_mixture(gmle__mf_save *s, const gmle_model *m);
/* A mixture from an archive that has a weights member (format_version, if
 * any, already checked). */
gmle_status gmle__mf_load_mixture(gmle__mf_load *L, gmle_model **out);

#endif /* GMLE_MODEL_FILE_H */
