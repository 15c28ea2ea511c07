/* cmd_score.c -- gmle score, gmle classify, gmle eval. */
#include "cli.h"
#include "dist.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char score_help[] =
    "Usage: gmle score MODEL DATA\n"
    "                  [--what loglik|joint|logpost|density|label|resp]\n"
    "                  [--dtype f32|f64] [--label-column C] -o OUT.npy\n"
    "       gmle score MODEL ark:FEATS.ark [-o ark:OUT.ark | -o ark,t:OUT.txt\n"
    "                  | -o OUT.npy] [--per-utt TABLE.txt|TABLE.npy]\n"
    "\n"
    "Score every row of DATA under MODEL and write the scores as .npy (or CSV\n"
    "when OUT ends in .csv), in batches.\n"
    "\n"
    "DATA may be a Kaldi table (ark:FILE, scp:FILE, ark:- for standard\n"
    "input): every matrix is an utterance, every row a frame. Then -o\n"
    "ark:OUT.ark writes the per-frame scores as a Kaldi archive with one\n"
    "matrix per utterance (a vector for --what density; ark,t: writes text),\n"
    "and --per-utt TABLE writes one line per utterance: the utterance, its\n"
    "frames, its predicted class (argmax_c log pi_c + sum_t log N(x_t; c)),\n"
    "then the sum and the mean over its frames of log N(x_t; mu_c, Sigma_c)\n"
    "for every class (a text table with a '#' header line, or, for a .npy\n"
    "TABLE, a float64 array of U rows: frames, class index, C sums, C means).\n"
    "\n"
    "  --what loglik    N x C log N(x; mu_c, Sigma_c) (default)\n"
    "         joint     N x C log pi_c + log N(x; mu_c, Sigma_c)\n"
    "         logpost   N x C log p(c | x)\n"
    "         density   N     log sum_c pi_c N(x; mu_c, Sigma_c)\n"
    "         label     N     int32 index of the most probable class\n"
    "                         ('gmle classify' writes the class names)\n"
    "         resp      N x CK  a mixture's component posteriors p(k | x, c),\n"
    "                         class c's K at columns c*K .. c*K+K-1 (each\n"
    "                         class's sum to 1; one per class: all 1)\n"
    "A mixture model (docs/MIXTURES.md) scores each class by its mixture:\n"
    "log p(x | c) = logsumexp_k (log w_ck + log N(x; mu_ck, Sigma_ck)).\n"
    "  --dtype f32|f64    element type of the scores (default f64)\n"
    "  --label-column C   a CSV column to skip (labels are not used here)\n"
    "  -o, --output OUT   the file to write (required unless --per-utt)\n"
    "  --per-utt TABLE    per-utterance sums, means and classes (Kaldi\n"
    "                     DATA only)\n"
    "\n"
    "Common options: --backend, --device, --batch-rows N, --header, --quiet.\n"
    "Exit codes: 0 ok, 1 usage, 2 bad data (NaN rows, wrong number of\n"
    "  features), 3 file error (missing or corrupt model or data), 4 device.\n";

static const char classify_help[] =
    "Usage: gmle classify MODEL DATA [--truth FILE | --label-column C]\n"
    "                     [-o PRED.npy]\n"
    "       gmle classify MODEL ark:FEATS.ark [--truth utt2label | --truth\n"
    "                     ark:ali.ark] [-o PRED.txt]\n"
    "\n"
    "Predict the most probable class of every row of DATA. Predictions are\n"
    "written in the label terms of the model: integer values (int64 .npy)\n"
    "when the classes are integers, else class names (a numpy unicode array,\n"
    "or one name a line when PRED ends in .csv). With the true labels\n"
    "(--truth FILE, or a CSV --label-column) prints the accuracy and the\n"
    "confusion matrix (rows: true class, columns: predicted).\n"
    "\n"
    "With DATA in a Kaldi table (ark:FILE, scp:FILE, ark:-) every utterance\n"
    "is classified as a whole: argmax_c log pi_c + sum_t log N(x_t; mu_c,\n"
    "Sigma_c) over its frames. --truth utt2label (lines 'UTTERANCE LABEL', as\n"
    "Kaldi's utt2spk/utt2lang) prints the utterance accuracy and confusion\n"
    "matrix, and the frame accuracy; --truth ark:ali.ark (integer vectors,\n"
    "one label per frame) prints the frame accuracy and confusion matrix.\n"
    "-o writes 'UTTERANCE CLASS' lines (the utt2label format), or with a\n"
    ".npy/.csv name one prediction per utterance.\n"
    "\n"
    "  --truth FILE       true labels (integer .npy or text, one a line)\n"
    "  --label-column C   the CSV column holding the true labels\n"
    "  -o, --output PRED  where to write the predictions (optional)\n"
    "\n"
    "Common options: --backend, --device, --batch-rows N, --header, --quiet.\n"
    "Exit codes: 0 ok, 1 usage, 2 bad data, 3 file error, 4 device error.\n";

static const char eval_help[] =
    "Usage: gmle eval MODEL DATA [--labels FILE | --label-column C]\n"
    "\n"
    "Print the total and mean log-likelihood of DATA under MODEL. With\n"
    "labels each row is scored under its own class (log N(x; mu_y, Sigma_y));\n"
    "without, under the mixture (log sum_c pi_c N(x; mu_c, Sigma_c)).\n"
    "DATA may be a Kaldi table (ark:FILE, scp:FILE, ark:-), with labels per\n"
    "utterance (an utt2label file) or per frame (ark:ali.ark).\n"
    "\n"
    "  --labels FILE      labels, one per row (integer .npy or text; for\n"
    "                     Kaldi DATA: utt2label or ark:ali.ark)\n"
    "  --label-column C   the CSV column holding the labels\n"
    "\n"
    "Common options: --backend, --device, --batch-rows N, --header, --quiet.\n"
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

/* score and classify: no output is MODEL, DATA or --truth, and -o is not
 * --per-utt. */
static void refuse_onto_input(const char *model, const char *data,
                              const char *truth, const char *out,
                              const char *per_utt) {
  const cli_file_role in[] = {
      {model, "the model"}, {data, "the data"}, {truth, "--truth"}};
  const cli_file_role o[] = {{out, "-o"}, {per_utt, "--per-utt"}};
  cli_refuse_same_files(in, 3, o, 2);
}

static void abort_npy(void *w) { gmle_writer_abort(w); }
static void abort_ark(void *w) { gmle_ark_writer_abort(w); }

/* --per-utt: a text table or a .npy array. */
typedef struct per_utt_out {
  const cli_classes *cls;
  cli_textout txt;
  gmle_writer *npy;
  const char *path;
  gmle_context *ctx;
  double *row; /* [2 + 2C] */
  uint64_t n;
} per_utt_out;

static void per_utt_row(void *user, const char *key, uint64_t frames,
                        const double *sums, long pred) {
  per_utt_out *p = user;
  const size_t C = p->cls->n;
  p->n++;
  if (p->npy) {
    p->row[0] = (double)frames;
    p->row[1] = (double)pred;
    for (size_t c = 0; c < C; c++) {
      p->row[2 + c] = sums[c];
      p->row[2 + C + c] = sums[c] / (double)frames;
    }
    gmle_status s = gmle_writer_write(p->npy, p->row, 1);
    if (s != GMLE_OK)
      cli_fail(p->ctx, s, p->path, -1);
    return;
  }
  FILE *f = p->txt.f;
  fprintf(f, "%s %llu %s", key, (unsigned long long)frames,
          pred >= 0 ? p->cls->names[pred] : "-");
  for (size_t c = 0; c < C; c++)
    fprintf(f, " %.17g", sums[c]);
  for (size_t c = 0; c < C; c++)
    fprintf(f, " %.17g", sums[c] / (double)frames);
  fputc('\n', f);
}

static void per_utt_open(per_utt_out *p, gmle_context *ctx, const char *path,
                         const cli_classes *cls) {
  memset(p, 0, sizeof *p);
  p->cls = cls;
  p->path = path;
  p->ctx = ctx;
  p->row = cli_xmalloc((2 + 2 * cls->n) * sizeof *p->row);
  if (cli_ends_with(path, ".npy")) {
    gmle_status s =
        gmle_writer_open(ctx, path, GMLE_ELEM_F64, 2 + 2 * cls->n, 0, &p->npy);
    if (s != GMLE_OK)
      cli_fail(ctx, s, path, -1);
    cli_on_fail(abort_npy, p->npy);
    return;
  }
  cli_textout_open(&p->txt, ctx, path);
  fprintf(p->txt.f, "# utterance frames predicted");
  for (int k = 0; k < 2; k++)
    for (size_t c = 0; c < cls->n; c++)
      fprintf(p->txt.f, " %s[%s]", k ? "mean" : "sum", cls->names[c]);
  fputc('\n', p->txt.f);
}

static void per_utt_commit(per_utt_out *p) {
  if (p->npy) {
    cli_on_fail_cancel(p->npy);
    gmle_status s = gmle_writer_commit(p->npy);
    if (s != GMLE_OK)
      cli_fail(p->ctx, s, p->path, -1);
  } else {
    cli_textout_commit(&p->txt);
  }
  free(p->row);
}

/* Per-frame scores of the batch into an archive, one object per utterance. */
static void ark_frames(gmle_ark_writer *aw, const cli_data *d,
                       const unsigned char *obuf, size_t orow,
                       const char *out) {
  for (size_t u = 0; u < d->n_utts; u++) {
    const gmle_utterance *g = &d->utts[u];
    gmle_status s = GMLE_OK;
    if (g->frame0 == 0)
      s = gmle_ark_writer_begin(aw, g->key);
    if (s == GMLE_OK)
      s = gmle_ark_writer_rows(aw, obuf + g->row0 * orow, g->n_rows);
    if (s == GMLE_OK && g->last)
      s = gmle_ark_writer_end(aw);
    if (s != GMLE_OK)
      cli_fail(d->ctx, s, out, -1);
  }
}

int cmd_score(int argc, char **argv) {
  const char *what_s = NULL, *dtype_s = NULL, *out = NULL, *label_col = NULL,
             *per_utt = NULL;
  const cli_opt opts[] = {{"--what", 1, &what_s, NULL},
                          {"--dtype", 1, &dtype_s, NULL},
                          {"--label-column", 1, &label_col, NULL},
                          {"--per-utt", 1, &per_utt, NULL},
                          {"--output", 1, &out, NULL},
                          {"-o", 1, &out, NULL},
                          {NULL, 0, NULL, NULL}};
  cli_common common;
  const char *pos[2];
  size_t npos = cli_parse(argc, argv, opts, score_help, &common, pos, 2);
  if (npos != 2)
    cli_usage_error("MODEL and DATA are required");
  if (!out && !per_utt)
    cli_usage_error("-o OUT (or --per-utt TABLE) is required");
  refuse_onto_input(pos[0], pos[1], NULL, out, per_utt);
  const int ark_out = out && cli_is_kaldi(out);
  gmle_output what = GMLE_OUT_LOGLIK;
  if (what_s && gmle_output_parse(what_s, &what) != GMLE_OK)
    cli_usage_error("--what: '%s' is not one of loglik, joint, logpost, "
                    "density, label, resp",
                    what_s);
  if (ark_out && what == GMLE_OUT_LABEL)
    cli_usage_error("--what label gives integers, which a Kaldi matrix "
                    "archive does not hold; write .npy, or use 'gmle "
                    "classify'");
  gmle_dtype odt = GMLE_F64;
  if (dtype_s) {
    if (strcmp(dtype_s, "f32") == 0)
      odt = GMLE_F32;
    else if (strcmp(dtype_s, "f64") != 0)
      cli_usage_error("--dtype: '%s' is not f32 or f64", dtype_s);
  }
  gmle_context *ctx = cli_context(&common);
  gmle_model *m = load_model(ctx, pos[0]);
  cli_classes cls;
  cli_classes_from_model(m, &cls);
  size_t C = gmle_model_n_classes(m);
  size_t ocols = (what == GMLE_OUT_LABEL || what == GMLE_OUT_DENSITY) ? 0
                 : what == GMLE_OUT_RESP ? C * gmle_model_n_components(m)
                                         : C;
  size_t osz = what == GMLE_OUT_LABEL ? 4 : (odt == GMLE_F32 ? 4 : 8);
  size_t orow = (ocols ? ocols : 1) * osz;
  cli_data d;
  cli_data_open(&d, ctx, pos[1], NULL, label_col, common.batch_rows,
                orow + (per_utt ? C * 8 : 0));
  check_dim(&d, m, pos[0]);
  if ((ark_out || per_utt) && !d.ark)
    cli_die(CLI_EXIT_USAGE, pos[1],
            "%s needs DATA in a Kaldi table (ark:FILE, scp:FILE or ark:-)",
            ark_out ? "a Kaldi archive output" : "--per-utt");
  gmle_writer *w = NULL;
  gmle_ark_writer *aw = NULL;
  gmle_elem elem = what == GMLE_OUT_LABEL
                       ? GMLE_ELEM_I32
                       : (odt == GMLE_F32 ? GMLE_ELEM_F32 : GMLE_ELEM_F64);
  gmle_status s = GMLE_OK;
  if (ark_out) {
    s = gmle_ark_writer_open(ctx, out, elem, ocols, &aw);
    if (s != GMLE_OK)
      cli_fail(ctx, s, out, -1);
    cli_on_fail(abort_ark, aw);
  } else if (out) {
    w = cli_dist_writer_open(ctx, out, elem, ocols, 0);
  }
  per_utt_out pu;
  cli_uttacc *acc = NULL;
  if (per_utt) {
    per_utt_open(&pu, ctx, per_utt, &cls);
    acc = cli_uttacc_new(m, &cls);
  }
  /* The per-utterance sums need float64 log-likelihoods: the output's own
   * when that is what is written, else a second buffer. */
  const int ll_is_out = out && what == GMLE_OUT_LOGLIK && odt == GMLE_F64;
  void *obuf = cli_xmalloc(d.batch * orow);
  double *ll = per_utt && !ll_is_out ? cli_xmalloc(d.batch * C * 8) : NULL;
  cli_progress pr;
  cli_progress_start(&pr, "scoring", d.total);
  size_t n;
  while ((n = cli_data_next(&d)) > 0) {
    if (out) {
      s = gmle_score(ctx, m, d.buf, d.dtype, n, d.cols, what, odt, obuf);
      if (s != GMLE_OK)
        cli_data_fail(&d, s);
    }
    if (aw)
      ark_frames(aw, &d, obuf, orow, out);
    else if (w)
      cli_dist_writer_write(w, &d, obuf, n, out);
    if (acc) {
      if (ll) {
        s = gmle_score(ctx, m, d.buf, d.dtype, n, d.cols, GMLE_OUT_LOGLIK,
                       GMLE_F64, ll);
        if (s != GMLE_OK)
          cli_data_fail(&d, s);
      }
      cli_uttacc_add(acc, &d, ll ? ll : (const double *)obuf, per_utt_row, &pu);
    }
    cli_progress_update(&pr, d.rows_done);
  }
  cli_progress_end(&pr, d.rows_done);
  uint64_t rows = cli_data_rows(&d);
  cli_dist_sum_u64(&rows, 1);
  if (w) {
    cli_dist_writer_commit(w, ctx, out, rows);
  } else if (aw) {
    cli_on_fail_cancel(aw);
    s = gmle_ark_writer_commit(aw);
  }
  if (s != GMLE_OK)
    cli_fail(ctx, s, out, -1);
  if (acc)
    per_utt_commit(&pu);
  if (!common.quiet && out)
    fprintf(stderr, "%s score: %s: %llu rows x %zu\n", cli_prog, out,
            (unsigned long long)rows, ocols ? ocols : 1);
  if (!common.quiet && per_utt)
    fprintf(stderr, "gmle score: %s: %llu utterances\n", per_utt,
            (unsigned long long)pu.n);
  free(obuf);
  free(ll);
  cli_uttacc_free(acc);
  cli_data_close(&d);
  cli_classes_free(&cls);
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

static void print_confusion(const cli_classes *cls, const uint64_t *cm,
                            const char *what) {
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
  printf("confusion matrix (%srows: true class, columns: predicted):\n", what);
  printf("%*s", w, "");
  for (size_t k = 0; k < C; k++)
    printf(" %*.*s", w, w, cli_show(cls->names[k]));
  printf("\n");
  for (size_t c = 0; c < C; c++) {
    printf("%*.*s", w, w, cli_show(cls->names[c]));
    for (size_t k = 0; k < C; k++)
      printf(" %*llu", w, (unsigned long long)cm[c * C + k]);
    printf("\n");
  }
}

/* Data with no rows has no accuracy and no mean: an error (exit 2), not a
 * report of "nan" or "0 of 0"; any output begun is removed. */
static void refuse_zero_rows(const cli_data *d, uint64_t rows,
                             const char *verb) {
  if (rows == 0)
    cli_die(CLI_EXIT_DATA, d->path, "no rows to %s (the data is empty)", verb);
}

/* Accuracy and confusion matrix, accumulated. */
typedef struct tally {
  size_t C;
  uint64_t *cm, correct, n;
} tally;

static void tally_add(tally *t, long truth, long pred) {
  t->n++;
  if (pred >= 0) { /* -1: every class scored -inf */
    t->cm[(size_t)truth * t->C + (size_t)pred]++;
    t->correct += truth == pred;
  }
}

static void tally_print(const tally *t, const cli_classes *cls,
                        const char *unit, int confusion) {
  printf("%s accuracy: %.6f (%llu of %llu)\n", unit,
         t->n ? (double)t->correct / (double)t->n : 0.0,
         (unsigned long long)t->correct, (unsigned long long)t->n);
  if (!confusion)
    return;
  char what[64];
  snprintf(what, sizeof what, "%ss; ", unit);
  if (cls->n <= 40)
    print_confusion(cls, t->cm, what);
  else
    printf("(confusion matrix not printed: %zu classes)\n", cls->n);
}

/* What classify_ark's per-utterance callback needs. */
typedef struct utt_pred {
  const cli_classes *cls;
  cli_data *d;
  tally ut;
  cli_textout txt;
  gmle_writer *w; /* .npy/.csv predictions */
  const char *out, *model_path;
  int64_t none_value;
} utt_pred;

static void utt_predicted(void *user, const char *key, uint64_t frames,
                          const double *sums, long pred) {
  (void)frames;
  (void)sums;
  utt_pred *p = user;
  const cli_classes *cls = p->cls;
  if (p->d->utt2) {
    const char *l = cli_uttmap_get(p->d->utt2, key);
    long t = l ? cli_classes_find(cls, l) : -1;
    if (t < 0)
      cli_die(CLI_EXIT_DATA, p->d->label_path,
              "utterance '%s': label '%s' is not a class of the model %s",
              cli_show(key), cli_show(l), p->model_path);
    tally_add(&p->ut, t, pred);
  } else {
    p->ut.n++;
  }
  if (p->txt.f) {
    fprintf(p->txt.f, "%s %s\n", key, pred >= 0 ? cls->names[pred] : "-");
  } else if (p->w) {
    gmle_status s;
    if (cls->numeric) {
      int64_t v = pred >= 0 ? cls->values[pred] : p->none_value;
      s = gmle_writer_write(p->w, &v, 1);
    } else {
      const char *v = pred >= 0 ? cls->names[pred] : "";
      s = gmle_writer_write(p->w, &v, 1);
    }
    if (s != GMLE_OK)
      cli_fail(p->d->ctx, s, p->out, -1);
  }
}

/* classify for Kaldi tables: one prediction per utterance. */
static void classify_ark(gmle_context *ctx, const gmle_model *m,
                         const cli_classes *cls, cli_data *d, const char *out,
                         const char *model_path, int quiet) {
  const size_t C = cls->n;
  utt_pred p;
  memset(&p, 0, sizeof p);
  p.cls = cls;
  p.d = d;
  p.out = out;
  p.model_path = model_path;
  p.ut.C = C;
  p.ut.cm = cli_xcalloc(C * C, sizeof *p.ut.cm);
  p.none_value = cli_classes_find_int(cls, -1) >= 0 ? INT64_MIN : -1;
  if (out && (cli_ends_with(out, ".npy") || cli_ends_with(out, ".csv"))) {
    size_t width = 1;
    for (size_t c = 0; c < C; c++)
      if (utf8_len(cls->names[c]) > width)
        width = utf8_len(cls->names[c]);
    gmle_status s = gmle_writer_open(
        ctx, out, cls->numeric ? GMLE_ELEM_I64 : GMLE_ELEM_STR, 0, width, &p.w);
    if (s != GMLE_OK)
      cli_fail(ctx, s, out, -1);
    cli_track_writer(p.w);
  } else if (out) {
    cli_textout_open(&p.txt, ctx, out);
  }
  tally fr = {C, cli_xcalloc(C * C, sizeof *fr.cm), 0, 0};
  cli_uttacc *acc = cli_uttacc_new(m, cls);
  double *ll = cli_xmalloc(d->batch * C * sizeof *ll);
  int32_t *pred = cli_xmalloc(d->batch * sizeof *pred);
  cli_progress pr;
  cli_progress_start(&pr, "classifying", d->total);
  cli_data_use_classes(d, cls, model_path, 1);
  size_t n;
  while ((n = cli_data_next(d)) > 0) {
    gmle_status s = gmle_score(ctx, m, d->buf, d->dtype, n, d->cols,
                               GMLE_OUT_LOGLIK, GMLE_F64, ll);
    if (s == GMLE_OK && d->has_labels)
      s = gmle_score(ctx, m, d->buf, d->dtype, n, d->cols, GMLE_OUT_LABEL,
                     GMLE_F64, pred);
    if (s != GMLE_OK)
      cli_data_fail(d, s);
    cli_data_check_labels(d);
    for (size_t i = 0; d->has_labels && i < n; i++)
      tally_add(&fr, d->idx[i], pred[i]);
    cli_uttacc_add(acc, d, ll, utt_predicted, &p);
    cli_progress_update(&pr, d->rows_done);
  }
  cli_progress_end(&pr, d->rows_done);
  refuse_zero_rows(d, d->rows_done, "classify");
  if (p.w) {
    cli_track_writer(NULL);
    gmle_status s = gmle_writer_commit(p.w);
    if (s != GMLE_OK)
      cli_fail(ctx, s, out, -1);
  } else if (out) {
    cli_textout_commit(&p.txt);
  }
  printf("utterances: %llu\n", (unsigned long long)p.ut.n);
  printf("frames: %llu\n", (unsigned long long)d->rows_done);
  if (d->utt2)
    tally_print(&p.ut, cls, "utterance", 1);
  if (d->has_labels)
    tally_print(&fr, cls, "frame", d->utt2 == NULL);
  if (out && !quiet)
    fprintf(stderr, "gmle classify: %s: %llu utterance predictions\n", out,
            (unsigned long long)p.ut.n);
  free(ll);
  free(pred);
  free(fr.cm);
  free(p.ut.cm);
  cli_uttacc_free(acc);
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
  refuse_onto_input(pos[0], pos[1], truth, out, NULL);
  gmle_context *ctx = cli_context(&common);
  gmle_model *m = load_model(ctx, pos[0]);
  cli_classes cls;
  cli_classes_from_model(m, &cls);
  size_t C = cls.n;
  cli_data d;
  cli_data_open(&d, ctx, pos[1], truth, label_col, common.batch_rows, 16);
  check_dim(&d, m, pos[0]);
  if (d.ark) {
    classify_ark(ctx, m, &cls, &d, out, pos[0], common.quiet);
    cli_data_close(&d);
    cli_classes_free(&cls);
    gmle_model_free(m);
    gmle_context_free(ctx);
    return CLI_EXIT_OK;
  }
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
    w = cli_dist_writer_open(ctx, out, as_str ? GMLE_ELEM_STR : GMLE_ELEM_I64,
                             0, width);
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
  cli_data_use_classes(&d, &cls, pos[0], 1);
  size_t n;
  while ((n = cli_data_next(&d)) > 0) {
    s = gmle_score(ctx, m, d.buf, d.dtype, n, d.cols, GMLE_OUT_LABEL, GMLE_F64,
                   pred);
    if (s != GMLE_OK) {
      cli_data_fail(&d, s);
    }
    for (size_t i = 0; i < n; i++)
      n_none += pred[i] < 0;
    if (d.has_labels) {
      cli_data_check_labels(&d);
      for (size_t i = 0; i < n; i++) {
        const int32_t t = d.idx[i];
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
      cli_dist_writer_write(
          w, &d, as_str ? (const void *)sval : (const void *)ival, n, out);
    }
    cli_progress_update(&pr, d.rows_done);
  }
  cli_progress_end(&pr, d.rows_done);
  /* Every process's counts: rows, correct, -inf rows, the confusion. */
  const size_t n_tally = 3 + (cm ? C * C : 0);
  uint64_t *tally_all = cli_xmalloc(n_tally * sizeof *tally_all);
  tally_all[0] = cli_data_rows(&d);
  tally_all[1] = correct;
  tally_all[2] = n_none;
  if (cm)
    memcpy(tally_all + 3, cm, C * C * sizeof *cm);
  cli_dist_sum_u64(tally_all, n_tally);
  uint64_t rows = tally_all[0];
  correct = tally_all[1];
  n_none = tally_all[2];
  if (cm)
    memcpy(cm, tally_all + 3, C * C * sizeof *cm);
  free(tally_all);
  refuse_zero_rows(&d, rows, "classify");
  if (w)
    cli_dist_writer_commit(w, ctx, out, rows);
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
      print_confusion(&cls, cm, "");
    else
      printf("(confusion matrix not printed: %zu classes)\n", C);
  }
  if (out && !common.quiet)
    fprintf(stderr, "%s classify: %s: %llu predictions\n", cli_prog, out,
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
  cli_data_use_classes(&d, &cls, pos[0], 0);
  size_t n;
  while ((n = cli_data_next(&d)) > 0) {
    double part = 0;
    gmle_status s = gmle_total_loglik(ctx, m, d.buf, d.dtype, n, d.cols,
                                      d.has_labels ? d.idx : NULL, NULL, &part);
    if (s != GMLE_OK)
      cli_data_fail(&d, s);
    total += part;
    cli_progress_update(&pr, d.rows_done);
  }
  cli_progress_end(&pr, d.rows_done);
  uint64_t rows = cli_data_rows(&d);
  cli_dist_sum_u64(&rows, 1);
  cli_dist_sum(&total, 1);
  refuse_zero_rows(&d, rows, "evaluate");
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
