/* cmd_score.c -- gmle score, gmle classify, gmle eval. */
#include "cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char score_help[] =
    "Usage: gmle score MODEL DATA [--what loglik|joint|logpost|density|label]\n"
    "                  [--dtype f32|f64] [--label-column C] -o OUT.npy\n"
    "\n"
    "Score every row of DATA under MODEL and write the scores as .npy (or CSV\n"
    "when OUT ends in .csv), in batches.\n"
    "\n"
    "  --what loglik    N x C log N(x; mu_c, Sigma_c) (default)\n"
    "         joint     N x C log pi_c + log N(x; mu_c, Sigma_c)\n"
    "         logpost   N x C log p(c | x)\n"
    "         density   N     log sum_c pi_c N(x; mu_c, Sigma_c)\n"
    "         label     N     int32 index of the most probable class\n"
    "                         ('gmle classify' writes the class names)\n"
    "  --dtype f32|f64    element type of the scores (default f64)\n"
    "  --label-column C   a CSV column to skip (labels are not used here)\n"
    "  -o, --output OUT   the file to write (required)\n"
    "\n"
    "Common options: --backend, --device, --batch-rows N, --quiet.\n"
    "Exit codes: 0 ok, 1 usage, 2 bad data (NaN rows, wrong number of\n"
    "  features), 3 file error (missing or corrupt model or data), 4 device.\n";

static const char classify_help[] =
    "Usage: gmle classify MODEL DATA [--truth FILE | --label-column C]\n"
    "                     [-o PRED.npy]\n"
    "\n"
    "Predict the most probable class of every row of DATA. Predictions are\n"
    "written in the label terms of the model: integer values (int64 .npy)\n"
    "when the classes are integers, else class names (a numpy unicode array,\n"
    "or one name a line when PRED ends in .csv). With the true labels\n"
    "(--truth FILE, or a CSV --label-column) prints the accuracy and the\n"
    "confusion matrix (rows: true class, columns: predicted).\n"
    "\n"
    "  --truth FILE       true labels (integer .npy or text, one a line)\n"
    "  --label-column C   the CSV column holding the true labels\n"
    "  -o, --output PRED  where to write the predictions (optional)\n"
    "\n"
    "Common options: --backend, --device, --batch-rows N, --quiet.\n"
    "Exit codes: 0 ok, 1 usage, 2 bad data, 3 file error, 4 device error.\n";

static const char eval_help[] =
    "Usage: gmle eval MODEL DATA [--labels FILE | --label-column C]\n"
    "\n"
    "Print the total and mean log-likelihood of DATA under MODEL. With\n"
    "labels each row is scored under its own class (log N(x; mu_y, Sigma_y));\n"
    "without, under the mixture (log sum_c pi_c N(x; mu_c, Sigma_c)).\n"
    "\n"
    "  --labels FILE      labels, one per row (integer .npy or text)\n"
    "  --label-column C   the CSV column holding the labels\n"
    "\n"
    "Common options: --backend, --device, --batch-rows N, --quiet.\n"
    "Exit codes: 0 ok, 1 usage, 2 bad data, 3 file error, 4 device error.\n";

static gmle_model *load_model(gmle_context *ctx, const char *path) {
  gmle_model *m = NULL;
  gmle_status s = gmle_model_load(ctx, path, &m);
  if (s != GMLE_OK)
    cli_fail(ctx, s, path, -1);
  return m;
}

static void check_dim(const cli_data *d, const gmle_model *m,
                      const char *model_path) {
  if (d->cols != gmle_model_dim(m))
    cli_die(CLI_EXIT_DATA, d->path,
            "%zu feature%s per row, but the model %s has %zu", d->cols,
            d->cols == 1 ? "" : "s", model_path, gmle_model_dim(m));
}

/* ---- gmle score ---------------------------------------------------------- */

int cmd_score(int argc, char **argv) {
  const char *what_s = NULL, *dtype_s = NULL, *out = NULL, *label_col = NULL;
  const cli_opt opts[] = {{"--what", 1, &what_s, NULL},
                          {"--dtype", 1, &dtype_s, NULL},
                          {"--label-column", 1, &label_col, NULL},
                          {"--output", 1, &out, NULL},
                          {"-o", 1, &out, NULL},
                          {NULL, 0, NULL, NULL}};
  cli_common common;
  const char *pos[2];
  size_t npos = cli_parse(argc, argv, opts, score_help, &common, pos, 2);
  if (npos != 2)
    cli_usage_error("MODEL and DATA are required");
  if (!out)
    cli_usage_error("-o OUT is required");
  gmle_output what = GMLE_OUT_LOGLIK;
  if (what_s) {
    static const char *const names[] = {"loglik", "joint", "logpost", "label",
                                        "density"};
    static const gmle_output vals[] = {GMLE_OUT_LOGLIK, GMLE_OUT_JOINT,
                                       GMLE_OUT_LOGPOST, GMLE_OUT_LABEL,
                                       GMLE_OUT_DENSITY};
    size_t k = 0;
    while (k < 5 && strcmp(what_s, names[k]) != 0)
      k++;
    if (k == 5)
      cli_usage_error("--what: '%s' is not one of loglik, joint, logpost, "
                      "density, label",
                      what_s);
    what = vals[k];
  }
  gmle_dtype odt = GMLE_F64;
  if (dtype_s) {
    if (strcmp(dtype_s, "f32") == 0)
      odt = GMLE_F32;
    else if (strcmp(dtype_s, "f64") != 0)
      cli_usage_error("--dtype: '%s' is not f32 or f64", dtype_s);
  }
  gmle_context *ctx = cli_context(&common);
  gmle_model *m = load_model(ctx, pos[0]);
  size_t C = gmle_model_n_classes(m);
  size_t ocols = (what == GMLE_OUT_LABEL || what == GMLE_OUT_DENSITY) ? 0 : C;
  size_t osz = what == GMLE_OUT_LABEL ? 4 : (odt == GMLE_F32 ? 4 : 8);
  size_t orow = (ocols ? ocols : 1) * osz;
  cli_data d;
  cli_data_open(&d, ctx, pos[1], NULL, label_col, common.batch_rows, orow);
  check_dim(&d, m, pos[0]);
  gmle_writer *w = NULL;
  gmle_elem elem = what == GMLE_OUT_LABEL
                       ? GMLE_ELEM_I32
                       : (odt == GMLE_F32 ? GMLE_ELEM_F32 : GMLE_ELEM_F64);
  gmle_status s = gmle_writer_open(ctx, out, elem, ocols, 0, &w);
  if (s != GMLE_OK)
    cli_fail(ctx, s, out, -1);
  cli_track_writer(w);
  void *obuf = cli_xmalloc(d.batch * orow);
  cli_progress pr;
  cli_progress_start(&pr, "scoring", d.total);
  size_t n;
  while ((n = cli_data_next(&d)) > 0) {
    s = gmle_score(ctx, m, d.buf, d.dtype, n, d.cols, what, odt, obuf);
    if (s != GMLE_OK) {
      cli_fail(ctx, s, d.path, (long long)d.row0);
    }
    s = gmle_writer_write(w, obuf, n);
    if (s != GMLE_OK) {
      cli_fail(ctx, s, out, -1);
    }
    cli_progress_update(&pr, d.rows_done);
  }
  cli_progress_end(&pr, d.rows_done);
  cli_track_writer(NULL);
  s = gmle_writer_commit(w);
  if (s != GMLE_OK)
    cli_fail(ctx, s, out, -1);
  if (!common.quiet)
    fprintf(stderr, "gmle score: %s: %llu rows x %zu\n", out,
            (unsigned long long)d.rows_done, ocols ? ocols : 1);
  free(obuf);
  cli_data_close(&d);
  gmle_model_free(m);
  gmle_context_free(ctx);
  return CLI_EXIT_OK;
}

/* ---- gmle classify ------------------------------------------------------- */

/* Code points of a UTF-8 string. */
static size_t utf8_len(const char *s) {
  size_t n = 0;
  for (; *s; s++)
    if (((unsigned char)*s & 0xC0) != 0x80)
      n++;
  return n;
}

static void print_confusion(const cli_classes *cls, const uint64_t *cm) {
  size_t C = cls->n;
  int w = 5;
  for (size_t c = 0; c < C; c++) {
    int l = (int)strlen(cls->names[c]);
    if (l > w)
      w = l;
  }
  if (w > 16)
    w = 16;
  for (size_t c = 0; c < C; c++)
    for (size_t k = 0; k < C; k++) {
      int l = snprintf(NULL, 0, "%llu", (unsigned long long)cm[c * C + k]);
      if (l > w)
        w = l;
    }
  printf("confusion matrix (rows: true class, columns: predicted):\n");
  printf("%*s", w, "");
  for (size_t k = 0; k < C; k++)
    printf(" %*.*s", w, w, cls->names[k]);
  printf("\n");
  for (size_t c = 0; c < C; c++) {
    printf("%*.*s", w, w, cls->names[c]);
    for (size_t k = 0; k < C; k++)
      printf(" %*llu", w, (unsigned long long)cm[c * C + k]);
    printf("\n");
  }
}

int cmd_classify(int argc, char **argv) {
  const char *truth = NULL, *out = NULL, *label_col = NULL;
  const cli_opt opts[] = {{"--truth", 1, &truth, NULL},
                          {"--label-column", 1, &label_col, NULL},
                          {"--output", 1, &out, NULL},
                          {"-o", 1, &out, NULL},
                          {NULL, 0, NULL, NULL}};
  cli_common common;
  const char *pos[2];
  size_t npos = cli_parse(argc, argv, opts, classify_help, &common, pos, 2);
  if (npos != 2)
    cli_usage_error("MODEL and DATA are required");
  if (truth && label_col)
    cli_usage_error("--truth and --label-column cannot be used together");
  gmle_context *ctx = cli_context(&common);
  gmle_model *m = load_model(ctx, pos[0]);
  cli_classes cls;
  cli_classes_from_model(m, &cls);
  size_t C = cls.n;
  cli_data d;
  cli_data_open(&d, ctx, pos[1], truth, label_col, common.batch_rows, 16);
  check_dim(&d, m, pos[0]);
  gmle_writer *w = NULL;
  int as_str = !cls.numeric;
  gmle_status s;
  if (out) {
    size_t width = 1;
    for (size_t c = 0; c < C; c++) {
      size_t l = utf8_len(cls.names[c]);
      if (l > width)
        width = l;
    }
    s = gmle_writer_open(ctx, out, as_str ? GMLE_ELEM_STR : GMLE_ELEM_I64, 0,
                         width, &w);
    if (s != GMLE_OK)
      cli_fail(ctx, s, out, -1);
    cli_track_writer(w);
  }
  int32_t *pred = cli_xmalloc(d.batch * sizeof *pred);
  int64_t *ival = as_str ? NULL : cli_xmalloc(d.batch * sizeof *ival);
  const char **sval = as_str ? cli_xmalloc(d.batch * sizeof *sval) : NULL;
  uint64_t *cm = d.has_labels ? cli_xcalloc(C * C, sizeof *cm) : NULL;
  uint64_t correct = 0, n_none = 0;
  /* The prediction written for a row that no class can explain (every
   * class scores -inf): "" for names, else -1 (or INT64_MIN when -1 is a
   * class). */
  int64_t none_value = -1;
  if (!as_str && cli_classes_find_int(&cls, -1) >= 0)
    none_value = INT64_MIN;
  cli_progress pr;
  cli_progress_start(&pr, "classifying", d.total);
  size_t n;
  while ((n = cli_data_next(&d)) > 0) {
    s = gmle_score(ctx, m, d.buf, d.dtype, n, d.cols, GMLE_OUT_LABEL, GMLE_F64,
                   pred);
    if (s != GMLE_OK) {
      cli_fail(ctx, s, d.path, (long long)d.row0);
    }
    for (size_t i = 0; i < n; i++)
      n_none += pred[i] < 0;
    if (d.has_labels) {
      for (size_t i = 0; i < n; i++) {
        long t = cli_classes_find(&cls, d.labels[i]);
        if (t < 0) {
          cli_die(CLI_EXIT_DATA, d.label_path,
                  "row %llu: label '%s' is not a class of the model %s",
                  (unsigned long long)(d.row0 + i), d.labels[i], pos[0]);
        }
        if (pred[i] >= 0) { /* -1: every class scored -inf */
          cm[(size_t)t * C + (size_t)pred[i]]++;
          correct += (size_t)t == (size_t)pred[i];
        }
      }
    }
    if (w) {
      for (size_t i = 0; i < n; i++) {
        if (as_str)
          sval[i] = pred[i] >= 0 ? cls.names[pred[i]] : "";
        else
          ival[i] = pred[i] >= 0 ? cls.values[pred[i]] : none_value;
      }
      s = gmle_writer_write(w, as_str ? (const void *)sval : (const void *)ival,
                            n);
      if (s != GMLE_OK) {
        cli_fail(ctx, s, out, -1);
      }
    }
    cli_progress_update(&pr, d.rows_done);
  }
  cli_progress_end(&pr, d.rows_done);
  if (w) {
    cli_track_writer(NULL);
    s = gmle_writer_commit(w);
    if (s != GMLE_OK)
      cli_fail(ctx, s, out, -1);
  }
  uint64_t rows = d.rows_done;
  printf("rows: %llu\n", (unsigned long long)rows);
  if (n_none)
    cli_warn("%llu row%s scored -inf under every class: predicted as %s",
             (unsigned long long)n_none, n_none == 1 ? "" : "s",
             as_str ? "\"\"" : (none_value == -1 ? "-1" : "INT64_MIN"));
  if (d.has_labels) {
    printf("accuracy: %.6f (%llu of %llu)\n",
           rows ? (double)correct / (double)rows : 0.0,
           (unsigned long long)correct, (unsigned long long)rows);
    if (C <= 40)
      print_confusion(&cls, cm);
    else
      printf("(confusion matrix not printed: %zu classes)\n", C);
  }
  if (out && !common.quiet)
    fprintf(stderr, "gmle classify: %s: %llu predictions\n", out,
            (unsigned long long)rows);
  free(pred);
  free(ival);
  free(sval);
  free(cm);
  cli_data_close(&d);
  cli_classes_free(&cls);
  gmle_model_free(m);
  gmle_context_free(ctx);
  return CLI_EXIT_OK;
}

/* ---- gmle eval ----------------------------------------------------------- */

int cmd_eval(int argc, char **argv) {
  const char *labels = NULL, *label_col = NULL;
  const cli_opt opts[] = {{"--labels", 1, &labels, NULL},
                          {"--label-column", 1, &label_col, NULL},
                          {NULL, 0, NULL, NULL}};
  cli_common common;
  const char *pos[2];
  size_t npos = cli_parse(argc, argv, opts, eval_help, &common, pos, 2);
  if (npos != 2)
    cli_usage_error("MODEL and DATA are required");
  if (labels && label_col)
    cli_usage_error("--labels and --label-column cannot be used together");
  gmle_context *ctx = cli_context(&common);
  gmle_model *m = load_model(ctx, pos[0]);
  cli_classes cls;
  cli_classes_from_model(m, &cls);
  cli_data d;
  cli_data_open(&d, ctx, pos[1], labels, label_col, common.batch_rows, 8);
  check_dim(&d, m, pos[0]);
  double total = 0;
  cli_progress pr;
  cli_progress_start(&pr, "evaluating", d.total);
  size_t n;
  while ((n = cli_data_next(&d)) > 0) {
    if (d.has_labels) {
      for (size_t i = 0; i < n; i++) {
        long t = cli_classes_find(&cls, d.labels[i]);
        if (t < 0)
          cli_die(CLI_EXIT_DATA, d.label_path,
                  "row %llu: label '%s' is not a class of the model %s",
                  (unsigned long long)(d.row0 + i), d.labels[i], pos[0]);
        d.idx[i] = (int32_t)t;
      }
    }
    double part = 0;
    gmle_status s = gmle_total_loglik(ctx, m, d.buf, d.dtype, n, d.cols,
                                      d.has_labels ? d.idx : NULL, NULL, &part);
    if (s != GMLE_OK)
      cli_fail(ctx, s, d.path, (long long)d.row0);
    total += part;
    cli_progress_update(&pr, d.rows_done);
  }
  cli_progress_end(&pr, d.rows_done);
  uint64_t rows = d.rows_done;
  printf("rows: %llu\n", (unsigned long long)rows);
  printf("scored under: %s\n",
         d.has_labels ? "each row's class" : "the mixture of all classes");
  printf("total log-likelihood: %.17g\n", total);
  printf("mean log-likelihood: %.17g\n", rows ? total / (double)rows : NAN);
  cli_data_close(&d);
  cli_classes_free(&cls);
  gmle_model_free(m);
  gmle_context_free(ctx);
  return CLI_EXIT_OK;
}
