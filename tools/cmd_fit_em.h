/* cmd_fit_em.h -- the EM options of gmle fit and gmle stats (mixtures). */
#ifndef GMLE_CMD_FIT_EM_H
#define GMLE_CMD_FIT_EM_H

#include "cli.h"

/* The EM options as given on the command line (NULL: not given). */
typedef struct cli_em_args {
  const char *components, *em, *init, *init_model, *max_iter, *tol, *n_init,
      *seed, *reg_covar, *cov;
} cli_em_args;

/* Whether any EM option was given (then gmle fit fits a mixture). */
int cli_em_wanted(const cli_em_args *a);
/* gmle_em_options from the arguments (exits 1 on a bad value). */
void cli_em_options(const cli_em_args *a, gmle_cov_type cov,
                    gmle_em_options *o);
/* gmle fit --components: fit, save, report; exits on failure. Takes over
 * ctx (freed before returning). */
int cli_fit_mixture(gmle_context *ctx, const cli_em_args *a,
                    const cli_common *common, const char *data,
                    const char *labels, const char *label_col,
                    const char *classes_opt, gmle_cov_type cov,
                    const gmle_fit_options *fo, const char *out);
/* gmle stats DATA --model CURRENT: one shard's EM statistics. */
int cli_em_stats(gmle_context *ctx, const cli_common *common, const char *data,
                 const char *labels, const char *label_col,
                 const char *model_path, const char *em_mode, const char *out);
/* gmle merge of EM statistics files. */
int cli_em_merge(gmle_context *ctx, const cli_common *common, const char **pos,
                 size_t npos, const char *out);
/* gmle fit --stats STATS --model CURRENT: the M-step. */
int cli_em_step(gmle_context *ctx, const cli_common *common,
                const cli_em_args *a, const gmle_fit_options *fo,
                const char *stats_path, const char *model_path,
                const char *out);
/* The class set of d: --classes LIST, else a first pass (cmd_fit.c). */
void cli_fit_classes(cli_data *d, const char *classes_opt, cli_classes *cls);

#endif
