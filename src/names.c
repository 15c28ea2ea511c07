/*
 * names.c -- the one table of the names of covariance types, score outputs,
 * EM modes and EM initialisations, as the model files, the CLI and messages
 * spell them. Parsing and printing read the same table, so a name cannot
 * drift between them.
 */
#include "internal.h"

#include <string.h>

/* Indexed by the enum's value (GMLE_COV_FULL = 0 ... GMLE_COV_TIED = 3);
 * the spellings of scikit-learn's covariance_type. */
static const char *const cov_names[] = {"full", "diag", "spherical", "tied"};

/* Indexed by the enum's value (GMLE_OUT_LOGLIK = 0 ... GMLE_OUT_RESP = 5);
 * the words of `gmle score --what`. */
static const char *const output_names[] = {"loglik", "joint",   "logpost",
                                           "label",  "density", "resp"};

/* Indexed by gmle_em_mode (GMLE_EM_SOFT = 0 ... GMLE_EM_TOP_N = 2); "top"
 * is the word before the ':N' of `gmle fit --em top:N`. */
static const char *const em_mode_names[] = {"soft", "hard", "top"};

/* Indexed by gmle_em_init (GMLE_INIT_KMEANSPP = 0 ... GMLE_INIT_SPLIT = 3);
 * the words of `gmle fit --init` ("model": --init-model). */
static const char *const em_init_names[] = {"kmeans++", "random", "model",
                                            "split"};

#define N_NAMES(table) (sizeof(table) / sizeof((table)[0]))

/* table[v], or NULL when v is outside the table. */
static const char *name_of(const char *const *table, size_t n, unsigned v) {
  return v < n ? table[v] : NULL;
}

/* The index of `name` in table[0..n) into *out; GMLE_E_INVALID_ARG (and
 * *out unchanged) for other names or NULL arguments. */
static gmle_status parse_name(const char *const *table, size_t n,
                              const char *name, unsigned *out) {
  if (!name || !out)
    return GMLE_E_INVALID_ARG;
  for (size_t k = 0; k < n; k++)
    if (strcmp(name, table[k]) == 0) {
      *out = (unsigned)k;
      return GMLE_OK;
    }
  return GMLE_E_INVALID_ARG;
}

/* The enum-typed wrappers: NAME_OF(table, v) and PARSE_INTO(table, name,
 * out, type) (out NULL checked before the enum is written). */
#define NAME_OF(table, v) name_of(table, N_NAMES(table), (unsigned)(v))
#define PARSE_INTO(table, name, out, type)                                     \
  do {                                                                         \
    unsigned k_;                                                               \
    if (!(out) || parse_name(table, N_NAMES(table), name, &k_) != GMLE_OK)     \
      return GMLE_E_INVALID_ARG;                                               \
    *(out) = (type)k_;                                                         \
    return GMLE_OK;                                                            \
  } while (0)

const char *gmle_cov_name(gmle_cov_type t) { return NAME_OF(cov_names, t); }

gmle_status gmle_cov_parse(const char *name, gmle_cov_type *out) {
  PARSE_INTO(cov_names, name, out, gmle_cov_type);
}

const char *gmle_output_name(gmle_output o) { return NAME_OF(output_names, o); }

gmle_status gmle_output_parse(const char *name, gmle_output *out) {
  PARSE_INTO(output_names, name, out, gmle_output);
}

const char *gmle_em_mode_name(gmle_em_mode m) {
  return NAME_OF(em_mode_names, m);
}

gmle_status gmle_em_mode_parse(const char *name, gmle_em_mode *out) {
  PARSE_INTO(em_mode_names, name, out, gmle_em_mode);
}

const char *gmle_em_init_name(gmle_em_init i) {
  return NAME_OF(em_init_names, i);
}

gmle_status gmle_em_init_parse(const char *name, gmle_em_init *out) {
  PARSE_INTO(em_init_names, name, out, gmle_em_init);
}
