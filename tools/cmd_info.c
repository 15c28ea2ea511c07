/* cmd_info.c -- gmle info, gmle devices. */
#include "cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char info_help[] =
    "Usage: gmle info MODEL [--json] [--verbose]\n"
    "\n"
    "Describe a model: features, classes with their names, counts and\n"
    "priors, the covariance type, what the fit did to each class (rows,\n"
    "smallest and largest eigenvalue, condition number, values floored,\n"
    "shrinkage), the training log-likelihood with BIC and AIC when the file\n"
    "has them, and the means (when there are at most 10 features).\n"
    "A mixture also shows its components per class and their weights, and\n"
    "what EM did: mode, initialisation, iterations, convergence, the lower\n"
    "bound (mean log-likelihood per row), components re-seeded, runs, and\n"
    "the log-likelihood of every iteration (the first and last few unless\n"
    "--verbose).\n"
    "\n"
    "  --json     one JSON object instead, with every mean and (up to 10^6\n"
    "             numbers) every covariance, printed exactly (%.17g); for a\n"
    "             mixture also the weights, the component means and the EM\n"
    "             report with its whole history\n"
    "  --verbose  every component weight and every iteration\n"
    "\n"
    "Exit codes: 0 ok, 1 usage, 3 missing or corrupt model file.\n";

static const char devices_help[] =
    "Usage: gmle devices\n"
    "\n"
    "List the backends compiled into this build, the devices each finds,\n"
    "and which one --backend auto (the default) picks and why: CUDA first,\n"
    "then OpenCL, then the CPU, the first with a usable device. The\n"
    "environment variables GMLE_BACKEND and GMLE_DEVICE override the auto\n"
    "choice.\n"
    "\n"
    "Exit codes: 0 ok, 1 usage, 4 no usable device at all.\n";

static void json_str(const char *s) {
  putchar('"');
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    if (ch == '"' || ch == '\\')
      printf("\\%c", ch);
    else if (ch < 0x20)
      printf("\\u%04x", ch);
    else
      putchar(ch);
  }
  putchar('"');
}

/* A number as JSON: %.17g, and null for NaN (JSON has no NaN), strings
 * for infinities. */
static void json_num(double v) {
  if (isnan(v))
    printf("null");
  else if (isinf(v))
    printf(v > 0 ? "\"inf\"" : "\"-inf\"");
  else
    printf("%.17g", v);
}

/* What `gmle info` prints about the whole model. */
typedef struct model_summary {
  const char *file;
  size_t n_classes, dim, n_params;
  gmle_cov_type cov;
  int have_loglik, have_criteria;
  double loglik, loglik_joint, bic, aic;
  double total_weight; /* sum of the finite class counts */
  /* Mixtures: */
  int mixture, have_em;
  size_t n_components; /* K */
  double *weights;     /* [C*K] */
  double *comp_means;  /* [C*K*D] */
  gmle_em_report em;   /* when have_em */
} model_summary;

/* The components' weights and means, and the EM report. */
static void summarize_mixture(const gmle_model *m, model_summary *sm) {
  const size_t CK = sm->n_classes * sm->n_components;
  sm->weights = cli_xmalloc(CK * sizeof *sm->weights);
  sm->comp_means = cli_xmalloc(CK * sm->dim * sizeof *sm->comp_means);
  if (gmle_mixture_params(m, sm->weights, sm->comp_means, NULL) != GMLE_OK) {
    for (size_t i = 0; i < CK; i++)
      sm->weights[i] = NAN;
    for (size_t i = 0; i < CK * sm->dim; i++)
      sm->comp_means[i] = NAN;
  }
  sm->have_em = gmle_model_em_report(m, &sm->em) == GMLE_OK;
}

static model_summary summarize(const gmle_model *m, const char *file) {
  model_summary sm = {.file = file,
                      .n_classes = gmle_model_n_classes(m),
                      .dim = gmle_model_dim(m),
                      .n_params = gmle_model_n_params(m),
                      .cov = gmle_model_cov_type(m),
                      .mixture = gmle_model_is_mixture(m),
                      .n_components = gmle_model_n_components(m)};
  if (sm.mixture)
    summarize_mixture(m, &sm);
  sm.have_loglik = gmle_model_loglik(m, 0, &sm.loglik) == GMLE_OK &&
                   gmle_model_loglik(m, 1, &sm.loglik_joint) == GMLE_OK;
  sm.have_criteria = gmle_model_information(m, &sm.bic, &sm.aic) == GMLE_OK;
  for (size_t c = 0; c < sm.n_classes; c++) {
    double w = 0;
    if (gmle_model_count(m, c, &w) == GMLE_OK && isfinite(w))
      sm.total_weight += w;
  }
  return sm;
}

/* Class c's prior, count and report (have_report 0 when it has none). */
typedef struct class_summary {
  double prior, count;
  gmle_class_report report;
  int have_report;
  const char *name; /* NULL: unnamed */
} class_summary;

static class_summary summarize_class(const gmle_model *m, size_t c) {
  class_summary cs;
  memset(&cs, 0, sizeof cs);
  cs.have_report = gmle_model_report(m, c, &cs.report) == GMLE_OK;
  gmle_model_prior(m, c, &cs.prior);
  gmle_model_count(m, c, &cs.count);
  cs.name = gmle_model_class_name(m, c);
  return cs;
}

/* ", \"key\": " then the number, or null when it is not there. */
static void json_field(const char *key, int have, double v) {
  printf(",\n  \"%s\": ", key);
  if (have)
    json_num(v);
  else
    printf("null");
}

static void json_class_report(const gmle_class_report *rep) {
  printf(", \"rows\": %llu, \"empty\": %s, \"min_eigenvalue\": ",
         (unsigned long long)rep->rows, rep->empty ? "true" : "false");
  json_num(rep->min_eigenvalue);
  printf(", \"max_eigenvalue\": ");
  json_num(rep->max_eigenvalue);
  printf(", \"condition\": ");
  json_num(rep->condition);
  printf(", \"n_floored\": %zu, \"shrinkage\": ", rep->n_floored);
  json_num(rep->shrinkage);
}

/* Class c's mean and (cv not NULL) covariance, into the buffers given. */
static void json_class_parameters(const gmle_model *m, size_t c, size_t D,
                                  double *mean, double *cv) {
  printf(",\n     \"mean\": [");
  if (gmle_model_mean(m, c, mean) == GMLE_OK)
    for (size_t j = 0; j < D; j++) {
      printf("%s", j ? ", " : "");
      json_num(mean[j]);
    }
  printf("]");
  if (!cv || gmle_model_covariance(m, c, cv) != GMLE_OK)
    return;
  printf(",\n     \"covariance\": [");
  for (size_t i = 0; i < D; i++) {
    printf("%s[", i ? ", " : "");
    for (size_t j = 0; j < D; j++) {
      printf("%s", j ? ", " : "");
      json_num(cv[i * D + j]);
    }
    printf("]");
  }
  printf("]");
}

/* n numbers as a JSON array. */
static void json_array(const double *v, size_t n) {
  printf("[");
  for (size_t i = 0; i < n; i++) {
    printf("%s", i ? ", " : "");
    json_num(v[i]);
  }
  printf("]");
}

/* A mixture class's component weights and means. */
static void json_components(const model_summary *sm, size_t c) {
  const size_t K = sm->n_components, D = sm->dim;
  printf(",\n     \"weights\": ");
  json_array(sm->weights + c * K, K);
  printf(",\n     \"component_means\": [");
  for (size_t k = 0; k < K; k++) {
    printf("%s", k ? ", " : "");
    json_array(sm->comp_means + (c * K + k) * D, D);
  }
  printf("]");
}

static void json_class(const gmle_model *m, const model_summary *sm, size_t c,
                       double *mean, double *cv) {
  const size_t D = sm->dim;
  const class_summary cs = summarize_class(m, c);
  printf("%s\n    {\"index\": %zu, \"name\": ", c ? "," : "", c);
  if (cs.name)
    json_str(cs.name);
  else
    printf("null");
  printf(", \"count\": ");
  json_num(cs.count);
  printf(", \"prior\": ");
  json_num(cs.prior);
  if (cs.have_report)
    json_class_report(&cs.report);
  json_class_parameters(m, c, D, mean, cv);
  if (sm->mixture)
    json_components(sm, c);
  printf("}");
}

/* The EM report as a JSON object (null when the model has none). */
static void json_em(const model_summary *sm) {
  printf(",\n  \"n_components\": %zu,\n  \"em\": ", sm->n_components);
  if (!sm->have_em) {
    printf("null");
    return;
  }
  const gmle_em_report *r = &sm->em;
  const char *mode = gmle_em_mode_name(r->mode);
  const char *init = gmle_em_init_name(r->init);
  printf("{\"mode\": \"%s\", \"init\": \"%s\", \"n_iter\": %zu, "
         "\"converged\": %s, \"lower_bound\": ",
         mode ? mode : "unknown", init ? init : "unknown", r->n_iter,
         r->converged ? "true" : "false");
  json_num(r->lower_bound);
  printf(", \"n_reseeded\": %zu, \"n_init\": %zu, \"best_init\": %zu, "
         "\"reg_covar\": ",
         r->n_reseeded, r->n_init, r->best_init);
  json_num(r->reg_covar);
  printf(", \"n_rows\": ");
  json_num(r->n_rows);
  printf(",\n    \"history\": ");
  json_array(r->history, r->n_history);
  printf("}");
}

static void print_json(const gmle_model *m, const model_summary *sm,
                       double *mean) {
  const size_t C = sm->n_classes, D = sm->dim;
  printf("{\n  \"file\": ");
  json_str(sm->file);
  printf(",\n  \"dim\": %zu,\n  \"n_classes\": %zu,\n", D, C);
  printf("  \"covariance_type\": \"%s\",\n", gmle_cov_name(sm->cov));
  printf("  \"n_params\": %zu", sm->n_params);
  json_field("loglik", sm->have_loglik, sm->loglik);
  json_field("loglik_joint", sm->have_loglik, sm->loglik_joint);
  json_field("bic", sm->have_criteria, sm->bic);
  json_field("aic", sm->have_criteria, sm->aic);
  if (sm->mixture)
    json_em(sm);
  /* Covariances only while the output stays of a readable size. */
  int with_cov = (double)C * (double)D * (double)D <= 1e6;
  double *cv = with_cov ? cli_xmalloc(D * D * sizeof *cv) : NULL;
  printf(",\n  \"classes\": [");
  for (size_t c = 0; c < C; c++)
    json_class(m, sm, c, mean, cv);
  printf("\n  ]");
  if (!with_cov)
    printf(",\n  \"covariances_omitted\": true");
  printf("\n}\n");
  free(cv);
}

static void print_text_header(const model_summary *sm) {
  printf("model: %s\n", sm->file);
  printf("features: %zu\n", sm->dim);
  printf("classes: %zu\n", sm->n_classes);
  printf("covariance: %s\n", gmle_cov_name(sm->cov));
  if (sm->mixture)
    printf("components: %zu per class\n", sm->n_components);
  printf("parameters: %zu\n", sm->n_params);
  printf("total weight: %.10g\n", sm->total_weight);
  if (sm->have_loglik) {
    printf("training log-likelihood: %.10g (with priors: %.10g)\n", sm->loglik,
           sm->loglik_joint);
  } else {
    printf("training log-likelihood: not available (model not fitted "
           "here, or the file does not keep it)\n");
  }
  if (sm->have_criteria)
    printf("BIC: %.10g\nAIC: %.10g\n", sm->bic, sm->aic);
}

/* The class table. A mixture's classes have no eigenvalues of their own
 * (its components have): their rows instead. */
static void print_text_classes(const gmle_model *m, size_t C) {
  const int mixture = gmle_model_is_mixture(m);
  if (mixture)
    printf("\n%-4s %-16s %12s %10s %14s\n", "c", "name", "count", "prior",
           "rows");
  else
    printf("\n%-4s %-16s %12s %10s %12s %12s %12s %8s %6s\n", "c", "name",
           "count", "prior", "min eig", "max eig", "condition", "floored",
           "shrink");
  for (size_t c = 0; c < C; c++) {
    const class_summary cs = summarize_class(m, c);
    const gmle_class_report *rep = &cs.report;
    printf("%-4zu %-16.16s %12.6g %10.6g", c, cs.name ? cli_show(cs.name) : "-",
           cs.count, cs.prior);
    if (cs.have_report && mixture)
      printf(" %14llu%s\n", (unsigned long long)rep->rows,
             rep->empty ? "  (empty)" : "");
    else if (cs.have_report)
      printf(" %12.6g %12.6g %12.6g %8zu %6.3g%s\n", rep->min_eigenvalue,
             rep->max_eigenvalue, rep->condition, rep->n_floored,
             rep->shrinkage, rep->empty ? "  (empty)" : "");
    else if (mixture)
      printf(" %14s\n", "-");
    else
      printf(" %12s %12s %12s %8s %6s\n", "-", "-", "-", "-", "-");
  }
}

/* The means, for models narrow enough to read them on a terminal. */
static void print_text_means(const gmle_model *m, size_t C, size_t D,
                             double *mean) {
  if (D > 10)
    return;
  printf(gmle_model_is_mixture(m) ? "\nmeans (of each class's mixture):\n"
                                  : "\nmeans:\n");
  for (size_t c = 0; c < C; c++) {
    const char *nm = gmle_model_class_name(m, c);
    printf("  %-16.16s", nm ? cli_show(nm) : "-");
    if (gmle_model_mean(m, c, mean) == GMLE_OK)
      for (size_t j = 0; j < D; j++)
        printf(" %.10g", mean[j]);
    printf("\n");
  }
}

/* Values per line, and how many a list shows without --verbose. */
#define WEIGHTS_PER_LINE 6
#define WEIGHTS_SHOWN 64
#define HISTORY_ENDS 3

/* Each class's component weights: all of them with --verbose, else the
 * first WEIGHTS_SHOWN. */
static void print_text_weights(const gmle_model *m, const model_summary *sm,
                               int verbose) {
  const size_t K = sm->n_components;
  const size_t shown = verbose || K <= WEIGHTS_SHOWN ? K : WEIGHTS_SHOWN;
  printf("\ncomponent weights:\n");
  for (size_t c = 0; c < sm->n_classes; c++) {
    const char *nm = gmle_model_class_name(m, c);
    printf("  %-16.16s", nm ? cli_show(nm) : "-");
    for (size_t k = 0; k < shown; k++) {
      if (k && k % WEIGHTS_PER_LINE == 0)
        printf("\n  %-16s", "");
      printf(" %.6g", sm->weights[c * K + k]);
    }
    if (shown < K)
      printf("\n  %-16s ... %zu more (--verbose shows all)", "", K - shown);
    printf("\n");
  }
}

/* One iteration of the history: its number, value and change. */
static void print_history_row(const gmle_em_report *r, size_t i) {
  printf("  %6zu  ", i + 1);
  if (i == 0)
    printf("%.10g\n", r->history[i]);
  else
    printf("%-20.10g %+.3g\n", r->history[i],
           r->history[i] - r->history[i - 1]);
}

static void print_text_em(const model_summary *sm, int verbose) {
  if (!sm->have_em) {
    printf("\nEM: no report (a mixture built from parameters, or a file "
           "without the em_* members)\n");
    return;
  }
  const gmle_em_report *r = &sm->em;
  const char *mode = gmle_em_mode_name(r->mode);
  const char *init = gmle_em_init_name(r->init);
  printf("\nEM: %s, init %s, %zu iteration%s, %s\n", mode ? mode : "unknown",
         init ? init : "unknown", r->n_iter, r->n_iter == 1 ? "" : "s",
         r->converged ? "converged" : "not converged");
  printf("lower bound: %.10g (mean log-likelihood per row)\n", r->lower_bound);
  printf("rows per iteration: %.10g (total weight)\n", r->n_rows);
  printf("reg_covar: %g\n", r->reg_covar);
  printf("components re-seeded: %zu\n", r->n_reseeded);
  printf("initialisations: %zu (kept: run %zu, counting from 1)\n", r->n_init,
         r->best_init + 1);
  const size_t n = r->n_history;
  if (n == 0)
    return;
  const int all = verbose || n <= 2 * HISTORY_ENDS + 2;
  printf("log-likelihood per iteration%s:\n  %6s  %-20s %s\n",
         all ? "" : " (first and last; --verbose shows all)", "iter",
         "mean per row", "change");
  for (size_t i = 0; i < n; i++) {
    if (!all && i == HISTORY_ENDS) {
      printf("  %6s  (%zu more)\n", "...", n - 2 * HISTORY_ENDS);
      i = n - HISTORY_ENDS;
    }
    print_history_row(r, i);
  }
}

int cmd_info(int argc, char **argv) {
  int json = 0, verbose = 0;
  const cli_opt opts[] = {{"--json", 0, NULL, &json},
                          {"--verbose", 0, NULL, &verbose},
                          {NULL, 0, NULL, NULL}};
  cli_common common;
  const char *pos[1];
  size_t npos = cli_parse(argc, argv, opts, info_help, &common, pos, 1);
  if (npos != 1)
    cli_usage_error("MODEL is required");
  common.backend = GMLE_BACKEND_CPU; /* nothing to compute on a device */
  gmle_context *ctx = cli_context(&common);
  gmle_model *m = NULL;
  gmle_status s = gmle_model_load(ctx, pos[0], &m);
  if (s != GMLE_OK)
    cli_fail(ctx, s, pos[0], -1);
  model_summary sm = summarize(m, pos[0]);
  double *mean = cli_xmalloc(sm.dim * sizeof *mean);
  if (json) {
    print_json(m, &sm, mean);
  } else {
    print_text_header(&sm);
    print_text_classes(m, sm.n_classes);
    if (sm.mixture) {
      print_text_weights(m, &sm, verbose);
      print_text_em(&sm, verbose);
    }
    print_text_means(m, sm.n_classes, sm.dim, mean);
  }
  free(mean);
  free(sm.weights);
  free(sm.comp_means);
  gmle_model_free(m);
  gmle_context_free(ctx);
  return CLI_EXIT_OK;
}

/* ---- gmle devices -------------------------------------------------------- */

int cmd_devices(int argc, char **argv) {
  const cli_opt opts[] = {{NULL, 0, NULL, NULL}};
  cli_common common;
  const char *pos[1];
  cli_parse(argc, argv, opts, devices_help, &common, pos, 0);
  static const gmle_backend order[] = {GMLE_BACKEND_CUDA, GMLE_BACKEND_OPENCL,
                                       GMLE_BACKEND_CPU};
  printf("gmle %s\n", gmle_version_string());
  printf("backends compiled in:");
  for (size_t i = 0; i < 3; i++)
    if (gmle_backend_compiled(order[i]))
      printf(" %s", gmle_backend_name(order[i]));
  printf("\n\n");
  char why[1024] = "";
  for (size_t i = 0; i < 3; i++) {
    gmle_backend b = order[i];
    size_t l = strlen(why);
    printf("%s:\n", gmle_backend_name(b));
    if (!gmle_backend_compiled(b)) {
      printf("  not compiled into this build\n");
      snprintf(why + l, sizeof why - l, "%s%s is not compiled in",
               l ? "; " : "", gmle_backend_name(b));
      continue;
    }
    gmle_device_info info[16];
    size_t n = 0;
    char reason[512] = "";
    gmle_status ls = gmle_device_list(b, info, 16, &n, reason, sizeof reason);
    size_t rl = strlen(reason);
    while (rl && (reason[rl - 1] == '\n' || reason[rl - 1] == ' '))
      reason[--rl] = '\0';
    if (ls != GMLE_OK || n == 0) {
      printf("  no usable device: %s\n",
             reason[0] ? reason : gmle_status_string(ls));
      snprintf(why + l, sizeof why - l, "%s%s has no usable device",
               l ? "; " : "", gmle_backend_name(b));
      continue;
    }
    int any_accel = 0;
    for (size_t k = 0; k < n && k < 16; k++) {
      printf("  device %d: %s%s%s (%u compute units", info[k].index,
             info[k].name, info[k].platform[0] ? " / " : "", info[k].platform,
             info[k].compute_units);
      if (info[k].global_mem)
        printf(", %.1f GiB", (double)info[k].global_mem / 1073741824.0);
      printf("%s%s)%s\n", info[k].fp64 ? ", fp64" : "",
             info[k].is_gpu ? ", GPU" : "",
             info[k].is_default ? "  [default]" : "");
      any_accel |= info[k].is_gpu;
    }
    if (b == GMLE_BACKEND_OPENCL && !any_accel)
      snprintf(why + l, sizeof why - l,
               "%sopencl has only host-CPU devices, which auto leaves to the "
               "faster native cpu backend",
               l ? "; " : "");
  }
  gmle_context *ctx = NULL;
  gmle_status s = gmle_context_create(common.backend, common.device, &ctx);
  printf("\n");
  const char *envb = getenv("GMLE_BACKEND");
  const char *envd = getenv("GMLE_DEVICE");
  if (s != GMLE_OK) {
    const char *msg = ctx ? gmle_context_error(ctx) : "";
    printf("%s picks: nothing: %s\n", gmle_backend_name(common.backend),
           msg && msg[0] ? msg : gmle_status_string(s));
    gmle_context_free(ctx);
    return cli_exit_code(s);
  }
  gmle_backend got = gmle_context_backend(ctx);
  if (common.backend != GMLE_BACKEND_AUTO) {
    printf("--backend %s picks: %s (%s), as asked\n",
           gmle_backend_name(common.backend), gmle_backend_name(got),
           gmle_context_device_name(ctx));
  } else if (envb && envb[0] && strcmp(envb, "auto") != 0) {
    printf("auto picks: %s (%s), because GMLE_BACKEND=%s%s%s\n",
           gmle_backend_name(got), gmle_context_device_name(ctx), envb,
           envd && envd[0] ? " and GMLE_DEVICE=" : "",
           envd && envd[0] ? envd : "");
  } else {
    printf("auto picks: %s (%s)\n", gmle_backend_name(got),
           gmle_context_device_name(ctx));
    printf("why: auto tries CUDA, then OpenCL, then the CPU and takes the "
           "first with a usable device%s%s\n",
           why[0] ? "; here " : "", why);
  }
  gmle_context_free(ctx);
  return CLI_EXIT_OK;
}
