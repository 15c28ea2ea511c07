/*
 * names.c -- the one table of the names of covariance types and score
 * outputs, as the model files, the CLI and messages spell them. Parsing and
 * printing read the same table, so a name cannot drift between them.
 */
#include "internal.h"

#include <string.h>

/* Indexed by the enum's value (GMLE_COV_FULL = 0 ... GMLE_COV_TIED = 3);
 * the spellings of scikit-learn's covariance_type. */
static const char *const cov_names[] = {"full", "diag", "spherical", "tied"};

/* Indexed by the enum's value (GMLE_OUT_LOGLIK = 0 ... GMLE_OUT_DENSITY = 4);
 * the words of `gmle score --what`. */
static const char *const output_names[] = {"loglik", "joint", "logpost",
                                           "label", "density"};

#define N_NAMES(table) (sizeof(table) / sizeof((table)[0]))

/* The index of `name` in table[0..n), or n when absent. */
static size_t find_name(const char *const *table, size_t n, const char *name) {
  size_t k = 0;
  while (k < n && strcmp(name, table[k]) != 0)
    k++;
  return k;
}

const char *gmle_cov_name(gmle_cov_type t) {
  if ((unsigned)t >= N_NAMES(cov_names))
    return NULL;
  return cov_names[t];
}

gmle_status gmle_cov_parse(const char *name, gmle_cov_type *out) {
  if (!name || !out)
    return GMLE_E_INVALID_ARG;
  size_t k = find_name(cov_names, N_NAMES(cov_names), name);
  if (k == N_NAMES(cov_names))
    return GMLE_E_INVALID_ARG;
  *out = (gmle_cov_type)k;
  return GMLE_OK;
}

const char *gmle_output_name(gmle_output o) {
  if ((unsigned)o >= N_NAMES(output_names))
    return NULL;
  return output_names[o];
}

gmle_status gmle_output_parse(const char *name, gmle_output *out) {
  if (!name || !out)
    return GMLE_E_INVALID_ARG;
  size_t k = find_name(output_names, N_NAMES(output_names), name);
  if (k == N_NAMES(output_names))
    return GMLE_E_INVALID_ARG;
  *out = (gmle_output)k;
  return GMLE_OK;
}
