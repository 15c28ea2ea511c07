/* cmd_fit_em.c -- gmle fit --components K: mixtures by EM (gmle_em_fit),
 * reading DATA once per iteration through cli_data. */
#include "cmd_fit_em.h"
#include "cli.h"
#include "dist.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The batch source over a cli_data (labels mapped to class indices). */
typedef struct em_source {
  cli_data *d;
  const cli_classes *cls;
} em_source;

static gmle_status src_rewind(void *user) {
  cli_data_rewind(((em_source *)user)->d);
  return GMLE_OK;
}

static gmle_status src_next(void *user, const void **x, gmle_dtype *dtype,
                            size_t *n_rows, size_t *row_stride,
                            const int32_t **labels, const double **weights) {
  em_source *s = user;
  cli_data *d = s->d;
  const size_t n = cli_data_next(d);
  *x = d->buf;
  *dtype = d->dtype;
  *n_rows = n;
  *row_stride = d->cols;
  *labels = d->has_labels ? d->idx : NULL;
  *weights = NULL;
  return GMLE_OK;
}

typedef struct em_progress {
  int on;
  const char *out;
} em_progress;

static void progress(void *user, size_t run, size_t iter, double lb,
                     double change, double rows, double seconds) {
  const em_progress *p = user;
  if (!p->on)
    return;
  fprintf(stderr, "%s fit: EM iteration %zu: mean log-likelihood %.10g",
          cli_prog, iter, lb);
  if (run)
    fprintf(stderr, " (init %zu)", run + 1);
  if (!isnan(change))
    fprintf(stderr, ", change %.3g", change);
  if (seconds > 0)
    fprintf(stderr, ", %.3g rows/s", rows / seconds);
  fputc('\n', stderr);
}

static gmle_em_mode parse_mode(const char *s, size_t *top_n) {
  gmle_em_mode m = GMLE_EM_SOFT;
  if (strncmp(s, "top:", 4) == 0) {
    *top_n = cli_parse_size("--em top:N", s + 4);
    if (*top_n == 0)
      cli_usage_error("--em top:N: N must be >= 1");
    return GMLE_EM_TOP_N;
  }
  if (gmle_em_mode_parse(s, &m) != GMLE_OK || m == GMLE_EM_TOP_N)
    cli_usage_error("--em: '%s' is not one of soft, hard, top:N", s);
  return m;
}

static gmle_em_init parse_init(const char *s) {
  gmle_em_init i = GMLE_INIT_KMEANSPP;
  if (gmle_em_init_parse(s, &i) != GMLE_OK || i == GMLE_INIT_MODEL)
    cli_usage_error("--init: '%s' is not one of kmeans++, random, split "
                    "(--init-model FILE starts from a model)",
                    s);
  return i;
}

int cli_em_wanted(const cli_em_args *a) {
  return a->components || a->em || a->init || a->init_model || a->max_iter ||
         a->tol || a->n_init || a->seed || a->reg_covar;
}

void cli_em_options(const cli_em_args *a, gmle_cov_type cov,
                    gmle_em_options *o) {
  gmle_em_options_init(o);
  o->cov = cov;
  if (a->components) {
    o->n_components = cli_parse_size("--components", a->components);
    if (o->n_components == 0)
      cli_usage_error("--components: K must be >= 1 (K = 0 components is no "
                      "model)");
  }
  if (a->em)
    o->mode = parse_mode(a->em, &o->top_n);
  if (o->mode == GMLE_EM_TOP_N && o->top_n > o->n_components)
    cli_usage_error("--em top:%zu: N must be at most K = %zu", o->top_n,
                    o->n_components);
  if (a->init)
    o->init = parse_init(a->init);
  if (a->init_model) {
    if (a->init)
      cli_usage_error("--init and --init-model cannot be used together");
    o->init = GMLE_INIT_MODEL;
  }
  if (a->max_iter)
    o->max_iter = cli_parse_size("--max-iter", a->max_iter);
  if (a->tol) {
    o->tol = cli_parse_double("--tol", a->tol);
    if (!(o->tol >= 0))
      cli_usage_error("--tol must be >= 0");
  }
  if (a->n_init) {
    o->n_init = cli_parse_size("--n-init", a->n_init);
    if (o->n_init == 0)
      cli_usage_error("--n-init must be >= 1");
  }
  if (a->seed)
    o->seed = (uint64_t)cli_parse_size("--seed", a->seed);
  if (a->reg_covar) {
    o->reg_covar = cli_parse_double("--reg-covar", a->reg_covar);
    if (!(o->reg_covar >= 0))
      cli_usage_error("--reg-covar must be >= 0");
  }
}

/* A library error of the EM fit: the file, the row of the file when the
 * error names one, and the class by its name. */
static void em_fail(gmle_context *ctx, gmle_status s, cli_data *d,
                    const cli_classes *cls) {
  gmle_error_location loc;
  gmle_context_error_location(ctx, &loc);
  if (loc.fields & GMLE_LOC_ROW)
    cli_data_fail(d, s);
  if ((loc.fields & GMLE_LOC_CLASS) && d->has_labels &&
      loc.class_index < cls->n) {
    cli_die(cli_exit_code(s), d->path, "%s (class '%s')",
            gmle_context_error(ctx), cls->names[loc.class_index]);
  }
  cli_fail(ctx, s, d->path, -1);
}

int cli_fit_mixture(gmle_context *ctx, const cli_em_args *a,
                    const cli_common *common, const char *data,
                    const char *labels, const char *label_col,
                    const char *classes_opt, gmle_cov_type cov,
                    const gmle_fit_options *fo, const char *out) {
  gmle_em_options o;
  cli_em_options(a, cov, &o);
  o.rel_floor = fo->rel_floor;
  if (fo->abs_floor > 0 && !a->reg_covar)
    o.reg_covar = fo->abs_floor;
  gmle_model *init = NULL;
  if (a->init_model) {
    gmle_status s = gmle_model_load(ctx, a->init_model, &init);
    if (s != GMLE_OK)
      cli_fail(ctx, s, a->init_model, -1);
    if (!a->components)
      o.n_components = gmle_model_n_components(init);
    o.init_model = init;
    if (!a->cov)
      o.cov = gmle_model_cov_type(init);
  }
  cli_data d;
  cli_data_open(&d, ctx, data, labels, label_col, common->batch_rows, 8);
  cli_classes cls;
  memset(&cls, 0, sizeof cls);
  if (d.has_labels)
    cli_fit_classes(&d, classes_opt, &cls);
  const size_t C = d.has_labels ? cls.n : 1;
  if (init && gmle_model_dim(init) != d.cols)
    cli_die(CLI_EXIT_DATA, a->init_model,
            "the init model has %zu features, %s has %zu", gmle_model_dim(init),
            data, d.cols);
  if (init && gmle_model_n_classes(init) != C)
    cli_die(CLI_EXIT_DATA, a->init_model,
            "the init model has %zu classes, %s has %zu",
            gmle_model_n_classes(init), data, C);
  if (init && gmle_model_cov_type(init) != o.cov)
    cli_die(CLI_EXIT_DATA, a->init_model,
            "the init model's covariances are %s, but --cov is %s",
            gmle_cov_name(gmle_model_cov_type(init)), gmle_cov_name(o.cov));
  if (init && gmle_model_n_components(init) != o.n_components)
    cli_die(CLI_EXIT_DATA, a->init_model,
            "the init model has %zu components per class, but --components "
            "is %zu",
            gmle_model_n_components(init), o.n_components);
  cli_data_use_classes(&d, &cls, NULL, 0);
  em_source src = {&d, &cls};
  gmle_batch_source bs = {&src, src_rewind, src_next};
  em_progress pr = {!common->quiet && isatty(2), out};
  o.progress = progress;
  o.progress_user = &pr;
  gmle_model *m = NULL;
  gmle_status s = cli_dist_em_fit(ctx, d.cols, C, &bs, &o, &m);
  if (s != GMLE_OK)
    em_fail(ctx, s, &d, &cls);
  if (d.has_labels) {
    s = gmle_model_set_class_names(m, (const char *const *)cls.names);
    if (s != GMLE_OK)
      cli_fail(ctx, s, data, -1);
  }
  s = cli_dist_writes() ? gmle_model_save(m, out) : GMLE_OK;
  if (s != GMLE_OK)
    cli_fail(ctx, s, out, -1);
  if (!common->quiet) {
    /* The fitted model's own mean log-likelihood (the final pass's; the
     * report's lower bound is the last iteration's start, as
     * scikit-learn's, and there is none without iterations). */
    gmle_em_report rep;
    memset(&rep, 0, sizeof rep);
    double ll = NAN;
    if (gmle_model_em_report(m, &rep) == GMLE_OK &&
        gmle_model_loglik(m, 0, &ll) == GMLE_OK && rep.n_rows > 0)
      ll /= rep.n_rows;
    fprintf(stderr,
            "%s fit: %s: %zu class%s x %zu components, %zu features, "
            "%s covariance, %zu EM iteration%s%s, mean log-likelihood "
            "%.10g\n",
            cli_prog, out, C, C == 1 ? "" : "es", o.n_components, d.cols,
            gmle_cov_name(o.cov), rep.n_iter, rep.n_iter == 1 ? "" : "s",
            rep.converged ? " (converged)" : "", ll);
  }
  cli_data_close(&d);
  gmle_model_free(m);
  gmle_model_free(init);
  cli_classes_free(&cls);
  gmle_context_free(ctx);
  return CLI_EXIT_OK;
}

/* ---- one EM iteration over shards -----------------------------------------
 */

/* The model CURRENT, loaded, with its class set (labelled data maps through
 * the model's class names, so that every shard agrees). */
static gmle_model *load_current(gmle_context *ctx, const char *path) {
  gmle_model *m = NULL;
  gmle_status s = gmle_model_load(ctx, path, &m);
  if (s != GMLE_OK)
    cli_fail(ctx, s, path, -1);
  return m;
}

int cli_em_stats(gmle_context *ctx, const cli_common *common, const char *data,
                 const char *labels, const char *label_col,
                 const char *model_path, const char *em_mode, const char *out) {
  gmle_model *cur = load_current(ctx, model_path);
  gmle_em_options o;
  gmle_em_options_init(&o);
  if (em_mode)
    o.mode = parse_mode(em_mode, &o.top_n);
  if (o.mode == GMLE_EM_TOP_N && o.top_n > gmle_model_n_components(cur))
    cli_usage_error("--em top:%zu: N must be at most K = %zu", o.top_n,
                    gmle_model_n_components(cur));
  cli_data d;
  cli_data_open(&d, ctx, data, labels, label_col, common->batch_rows, 8);
  const size_t C = gmle_model_n_classes(cur);
  if (d.cols != gmle_model_dim(cur))
    cli_die(CLI_EXIT_DATA, data, "%zu features, but the model %s has %zu",
            d.cols, model_path, gmle_model_dim(cur));
  if (!d.has_labels && C > 1)
    cli_die(CLI_EXIT_USAGE, data,
            "the model %s has %zu classes: give the labels (--labels or "
            "--label-column)",
            model_path, C);
  cli_classes cls;
  memset(&cls, 0, sizeof cls);
  if (d.has_labels)
    cli_classes_from_model(cur, &cls);
  gmle_em_stats *es = NULL;
  gmle_status s = gmle_em_stats_create(ctx, cur, &o, &es);
  if (s != GMLE_OK)
    cli_fail(ctx, s, model_path, -1);
  cli_progress pr;
  cli_progress_start(&pr, "E-step", d.total);
  cli_data_use_classes(&d, &cls, NULL, 0);
  size_t n;
  while ((n = cli_data_next(&d)) > 0) {
    s = gmle_em_stats_add(es, d.buf, d.dtype, n, d.cols,
                          d.has_labels ? d.idx : NULL, NULL);
    if (s != GMLE_OK)
      cli_data_fail(&d, s);
    cli_progress_update(&pr, d.rows_done);
  }
  cli_progress_end(&pr, d.rows_done);
  es = cli_dist_em_stats(ctx, es, data);
  s = cli_dist_writes() ? gmle_em_stats_save(es, out) : GMLE_OK;
  if (s != GMLE_OK)
    cli_fail(ctx, s, out, -1);
  if (!common->quiet) {
    double sum = 0, w = 0;
    gmle_em_stats_loglik(es, &sum, &w);
    fprintf(stderr,
            "%s stats: %s: EM statistics of %.17g rows for %zu class%s x "
            "%zu components, mean log-likelihood %.10g\n",
            cli_prog, out, w, C, C == 1 ? "" : "es",
            gmle_model_n_components(cur), w > 0 ? sum / w : NAN);
  }
  cli_data_close(&d);
  cli_classes_free(&cls);
  gmle_em_stats_free(es);
  gmle_model_free(cur);
  gmle_context_free(ctx);
  return CLI_EXIT_OK;
}

int cli_em_merge(gmle_context *ctx, const cli_common *common, const char **pos,
                 size_t npos, const char *out) {
  gmle_em_stats *acc = NULL;
  for (size_t i = 0; i < npos; i++) {
    gmle_em_stats *es = NULL;
    gmle_status s = gmle_em_stats_load(ctx, pos[i], &es);
    if (s != GMLE_OK)
      cli_fail(ctx, s, pos[i], -1);
    if (!acc) {
      acc = es;
      continue;
    }
    s = gmle_em_stats_merge(acc, es);
    if (s != GMLE_OK)
      cli_fail(ctx, s, pos[i], -1);
    gmle_em_stats_free(es);
  }
  gmle_status s = gmle_em_stats_save(acc, out);
  if (s != GMLE_OK)
    cli_fail(ctx, s, out, -1);
  if (!common->quiet)
    fprintf(stderr, "gmle merge: %s: %zu EM statistics file%s merged\n", out,
            npos, npos == 1 ? "" : "s");
  gmle_em_stats_free(acc);
  gmle_context_free(ctx);
  return CLI_EXIT_OK;
}

int cli_em_step(gmle_context *ctx, const cli_common *common,
                const cli_em_args *a, const gmle_fit_options *fo,
                const char *stats_path, const char *model_path,
                const char *out) {
  gmle_model *cur = load_current(ctx, model_path);
  gmle_em_stats *es = NULL;
  gmle_status s = gmle_em_stats_load(ctx, stats_path, &es);
  if (s != GMLE_OK)
    cli_fail(ctx, s, stats_path, -1);
  if (gmle_em_stats_n_components(es) != gmle_model_n_components(cur) ||
      gmle_stats_n_classes(gmle_em_stats_components(es)) !=
          gmle_model_n_classes(cur) * gmle_model_n_components(cur) ||
      gmle_stats_dim(gmle_em_stats_components(es)) != gmle_model_dim(cur))
    cli_die(CLI_EXIT_DATA, stats_path,
            "these EM statistics are not of the model %s (%zu classes x %zu "
            "components, %zu features)",
            model_path, gmle_model_n_classes(cur), gmle_model_n_components(cur),
            gmle_model_dim(cur));
  gmle_em_options o;
  cli_em_options(a, gmle_model_cov_type(cur), &o);
  o.rel_floor = fo->rel_floor;
  if (fo->abs_floor > 0 && !a->reg_covar)
    o.reg_covar = fo->abs_floor;
  gmle_model *m = NULL;
  s = gmle_em_step(es, cur, &o, &m);
  if (s != GMLE_OK)
    cli_fail(ctx, s, stats_path, -1);
  const size_t C = gmle_model_n_classes(cur);
  if (gmle_model_class_name(cur, 0)) {
    const char **names = cli_xmalloc(C * sizeof *names);
    for (size_t c = 0; c < C; c++)
      names[c] = gmle_model_class_name(cur, c);
    s = gmle_model_set_class_names(m, names);
    free(names);
    if (s != GMLE_OK)
      cli_fail(ctx, s, model_path, -1);
  }
  s = cli_dist_writes() ? gmle_model_save(m, out) : GMLE_OK;
  if (s != GMLE_OK)
    cli_fail(ctx, s, out, -1);
  if (!common->quiet) {
    gmle_em_report rep;
    if (gmle_model_em_report(m, &rep) == GMLE_OK)
      fprintf(stderr,
              "%s fit: %s: EM iteration %zu from %s: mean log-likelihood "
              "%.10g\n",
              cli_prog, out, rep.n_iter, model_path, rep.lower_bound);
  }
  gmle_model_free(m);
  gmle_model_free(cur);
  gmle_em_stats_free(es);
  gmle_context_free(ctx);
  return CLI_EXIT_OK;
}
