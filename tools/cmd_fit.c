/* cmd_fit.c -- gmle fit, gmle stats, gmle merge. */
#include "cli.h"
#include "cmd_fit_em.h"
#include "dist.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char fit_help[] =
    "Usage: gmle fit DATA [--labels FILE | --label-column NAME|INDEX]\n"
    "                [--cov full|diag|spherical|tied] [--rel-floor X]\n"
    "                [--abs-floor X] [--max-condition X] [--shrinkage]\n"
    "                [--priors P1,P2,...] [--classes LIST] -o MODEL.npz\n"
    "       gmle fit --stats STATS [fit options] -o MODEL.npz\n"
    "       gmle fit DATA [--labels FILE] --components K [EM options]\n"
    "                -o MODEL.npz\n"
    "       gmle fit --stats EMSTATS --model CURRENT.npz -o NEXT.npz\n"
    "\n"
    "Fit one Gaussian per class by maximum likelihood and save the model as\n"
    "an .npz file (numpy.load reads it). DATA is a .npy (float32/float64) or\n"
    "CSV file, read in batches (never whole). Classes are the sorted distinct\n"
    "labels (numerically when every label is an integer); without labels one\n"
    "Gaussian is fitted to all rows.\n"
    "\n"
    "DATA may be a Kaldi table: ark:FILE (binary or text archive of float,\n"
    "double or compressed matrices), scp:FILE (script with byte offsets) or\n"
    "ark:- (an archive on standard input). Its frames are the rows; labels\n"
    "come per utterance (--labels utt2label: 'UTTERANCE LABEL' lines, as\n"
    "Kaldi's utt2spk/utt2lang; the classes are that file's labels) or per\n"
    "frame (--labels ark:ali.ark: integer vectors, as alignments).\n"
    "\n"
    "  --labels FILE        labels, one per data row: an integer .npy or a\n"
    "                       text file with one label (name) a line; for a\n"
    "                       Kaldi table, utt2label or ark:ali.ark\n"
    "  --label-column C     the CSV column holding the labels (header name\n"
    "                       or 0-based index)\n"
    "  --classes LIST       fix the class set (comma-separated); a label not\n"
    "                       in it is an error\n"
    "  --stats STATS        fit from statistics saved by 'gmle stats'/'merge'\n"
    "  --cov TYPE           full (default), diag, spherical or tied\n"
    "  --rel-floor X        variance floor relative to each feature's own\n"
    "                       largest class variance; acts only where a\n"
    "                       covariance is singular (default 1e-9; 0 disables)\n"
    "  --abs-floor X        added to every variance (reg_covar; default 0)\n"
    "  --max-condition X    floor eigenvalues so that cond(Sigma) <= X\n"
    "  --shrinkage          OAS shrinkage toward a scaled identity (full and\n"
    "                       tied covariances)\n"
    "  --priors P1,P2,...   class priors in class order (default n_c/n)\n"
    "  -o, --output MODEL   the model file to write (required)\n"
    "\n"
    "Mixtures (EM; docs/MIXTURES.md): a mixture of K Gaussians per class,\n"
    "or, without labels, one unsupervised mixture. DATA is read once per\n"
    "iteration. On a terminal each iteration prints its mean log-likelihood,\n"
    "its change and rows/s.\n"
    "  --components K       components per class (K >= 1)\n"
    "  --em MODE            soft (default), hard (each row to its most likely\n"
    "                       component) or top:N (soft over each row's N best)\n"
    "  --init WAY           kmeans++ (default), random or split (mixing up)\n"
    "  --init-model FILE    start from this model (a mixture file, or an\n"
    "                       np.savez of weights, means, covariances and\n"
    "                       covariance_type as scikit-learn names them)\n"
    "  --max-iter N         E+M iterations (default 100; as scikit-learn's)\n"
    "  --tol X              stop when the mean log-likelihood changes by less\n"
    "                       than X (default 1e-3; 0: run --max-iter)\n"
    "  --n-init N           initialisations, the best kept (default 1)\n"
    "  --seed N             seed of the sample and the init (default 0)\n"
    "  --reg-covar X        added to every component's diagonal (default\n"
    "                       1e-6, as scikit-learn)\n"
    "  --model CURRENT      with --stats: the model the EM statistics were\n"
    "                       made from ('gmle stats DATA --model CURRENT');\n"
    "                       writes the next iteration's model\n"
    "\n"
    "Common options: --backend auto|cpu|opencl|cuda, --device N,\n"
    "  --batch-rows N (rows read per batch), --header yes|no|auto (a CSV's\n"
    "  first line), --quiet (no progress or notes).\n"
    "Exit codes: 0 ok, 1 usage, 2 bad data (rows, labels, singular fit),\n"
    "  3 file error (missing, unreadable, corrupt), 4 device error.\n";

static const char stats_help[] =
    "Usage: gmle stats DATA [--labels FILE | --label-column NAME|INDEX]\n"
    "                  [--classes LIST] [--diag] -o STATS\n"
    "       gmle stats DATA [--labels FILE] --model CURRENT.npz\n"
    "                  [--em soft|hard|top:N] -o EMSTATS\n"
    "\n"
    "Accumulate the sufficient statistics of one shard of data (per class:\n"
    "count, shifted sum and Gram matrix, float64) and save them. Shards are\n"
    "combined exactly with 'gmle merge' and fitted with 'gmle fit --stats'.\n"
    "The class set is the labels found in DATA, or --classes LIST: give the\n"
    "same --classes to every shard so that they agree. The class names are\n"
    "saved in the statistics file.\n"
    "\n"
    "DATA may be a Kaldi table (ark:FILE, scp:FILE, ark:-) with --labels\n"
    "utt2label or ark:ali.ark, as for 'gmle fit'.\n"
    "\n"
    "  --labels FILE      labels file (integer .npy or text, one a line)\n"
    "  --label-column C   the CSV column holding the labels\n"
    "  --classes LIST     the class set, comma-separated (e.g. 0,1,2 or\n"
    "                     cat,dog)\n"
    "  --diag             keep only variances (for diag/spherical fits of\n"
    "                     wide data)\n"
    "  -o, --output STATS the statistics file to write (required)\n"
    "\n"
    "With --model CURRENT (a mixture, or a model of one Gaussian per class):\n"
    "one shard's EM statistics for one iteration from CURRENT (the E-step and\n"
    "the responsibility-weighted statistics of every component). Merge the\n"
    "shards with 'gmle merge' and make the next model with 'gmle fit --stats\n"
    "EMSTATS --model CURRENT -o NEXT': one EM iteration across machines.\n"
    "The labels are mapped through CURRENT's class names.\n"
    "  --model CURRENT    the model of this iteration\n"
    "  --em MODE          soft (default), hard or top:N\n"
    "\n"
    "Common options: --backend, --device, --batch-rows N, --header, --quiet.\n"
    "Exit codes: 0 ok, 1 usage, 2 bad data, 3 file error, 4 device error.\n";

static const char merge_help[] =
    "Usage: gmle merge STATS STATS... -o STATS\n"
    "\n"
    "Combine statistics of shards exactly (pairwise update across shifts).\n"
    "All shards must have the same number of features and the same classes\n"
    "(see 'gmle stats --classes'). The output may be one of the inputs.\n"
    "The same shard given twice (the same file, or a byte-identical copy) is\n"
    "refused: its rows would count twice. EM statistics ('gmle stats\n"
    "--model') merge with EM statistics of the same model.\n"
    "\n"
    "  -o, --output STATS  the statistics file to write (required)\n"
    "  --allow-repeats     merge a shard given twice anyway (counted twice)\n"
    "\n"
    "Exit codes: 0 ok, 1 usage, 2 shards disagree, 3 file error.\n";

/* ---- shared -------------------------------------------------------------- */

/* Accumulate the whole of d into new statistics with C classes (labels
 * mapped through cls when d has labels). */
static gmle_stats *accumulate(gmle_context *ctx, cli_data *d,
                              const cli_classes *cls, gmle_stats_mode mode) {
  size_t C = d->has_labels ? cls->n : 1;
  if (C == 0)
    cli_die(CLI_EXIT_DATA, d->label_path ? d->label_path : d->path,
            "no labels (the file has no rows)");
  gmle_stats *st = NULL;
  gmle_status s = gmle_stats_create_mode(ctx, d->cols, C, mode, &st);
  if (s != GMLE_OK)
    cli_fail(ctx, s, d->path, -1);
  cli_progress pr;
  cli_progress_start(&pr, "accumulating", d->total);
  cli_data_use_classes(d, cls, NULL, 0);
  size_t n;
  while ((n = cli_data_next(d)) > 0) {
    s = gmle_stats_add_checked(st, d->buf, d->dtype, n, d->cols, d->cols,
                               d->has_labels ? d->idx : NULL, NULL);
    if (s != GMLE_OK)
      cli_data_fail(d, s);
    cli_progress_update(&pr, d->rows_done);
  }
  cli_progress_end(&pr, d->rows_done);
  return cli_dist_stats(ctx, st, d->path);
}

/* The class set of a data source: --classes, else a first pass. */
void cli_fit_classes(cli_data *d, const char *classes_opt, cli_classes *cls) {
  memset(cls, 0, sizeof *cls);
  if (!d->has_labels) {
    if (classes_opt)
      cli_usage_error("--classes needs labels (--labels or --label-column)");
    return;
  }
  if (classes_opt) {
    if (!cli_classes_from_list(classes_opt, cls))
      cli_usage_error("--classes: '%s' has an empty or repeated class",
                      classes_opt);
    return;
  }
  cli_data_classes(d, cls);
  cli_dist_classes(cls);
}

static gmle_cov_type parse_cov(const char *s) {
  gmle_cov_type cov;
  if (gmle_cov_parse(s, &cov) != GMLE_OK)
    cli_usage_error("--cov: '%s' is not one of full, diag, spherical, tied", s);
  return cov;
}

static double *parse_priors(const char *s, size_t C) {
  double *p = cli_xmalloc(C * sizeof *p);
  size_t k = 0;
  const char *q = s;
  for (;;) {
    const char *e = strchr(q, ',');
    size_t len = e ? (size_t)(e - q) : strlen(q);
    char tok[64];
    if (len == 0 || len >= sizeof tok)
      cli_usage_error("--priors: bad value in '%s'", s);
    memcpy(tok, q, len);
    tok[len] = '\0';
    if (k >= C)
      cli_usage_error("--priors: more than the %zu classes", C);
    p[k++] = cli_parse_double("--priors", tok);
    if (!e)
      break;
    q = e + 1;
  }
  if (k != C)
    cli_usage_error("--priors: %zu values for %zu classes", k, C);
  return p;
}

/* ---- checks made before any data is read --------------------------------- */

/* The folder of an output must exist and be writable before hours of data
 * are read; "-" (stdout) has none. */
static void check_output_dir(const char *out) {
  if (strcmp(out, "-") == 0)
    return;
  const char *slash = strrchr(out, '/');
  char *dir = cli_xstrdup(slash ? out : ".");
  if (slash)
    dir[slash == out ? 1 : (size_t)(slash - out)] = '\0';
  struct stat sb;
  if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
    cli_die(CLI_EXIT_FILE, out, "the folder %s does not exist", dir);
  if (access(dir, W_OK | X_OK) != 0)
    cli_die(CLI_EXIT_FILE, out, "the folder %s is not writable (%s)", dir,
            strerror(errno));
  free(dir);
}

/* Entries of a comma-separated list. */
static size_t list_count(const char *list) {
  size_t n = 1;
  for (const char *p = list; *p; p++)
    n += *p == ',';
  return n;
}

/* FNV-1a of a file's bytes (0 with *ok = 0 when it cannot be read; the
 * load that follows names the error). */
static uint64_t file_hash(const char *path, int *ok) {
  uint64_t h = 1469598103934665603ull;
  FILE *f = fopen(path, "rb");
  *ok = f != NULL;
  if (!f)
    return 0;
  unsigned char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0)
    for (size_t i = 0; i < n; i++)
      h = (h ^ buf[i]) * 1099511628211ull;
  *ok = !ferror(f);
  fclose(f);
  return h;
}

/* 1 when files a and b hold the same bytes. */
static int same_bytes(const char *a, const char *b) {
  FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
  int same = fa && fb;
  while (same) {
    int ca = getc(fa), cb = getc(fb);
    same = ca == cb;
    if (ca == EOF)
      break;
  }
  if (fa)
    fclose(fa);
  if (fb)
    fclose(fb);
  return same;
}

/* Merging a shard twice silently counts its rows twice: refuse the same
 * file (device and inode) or a byte-identical copy given twice. */
static void refuse_repeated_shards(const char **pos, size_t npos) {
  uint64_t *hash = cli_xmalloc(npos * sizeof *hash);
  struct stat *sb = cli_xmalloc(npos * sizeof *sb);
  int *known = cli_xmalloc(npos * sizeof *known);
  for (size_t i = 0; i < npos; i++) {
    int read_ok = 0;
    known[i] = stat(pos[i], &sb[i]) == 0;
    hash[i] = known[i] ? file_hash(pos[i], &read_ok) : 0;
    known[i] = known[i] && read_ok;
  }
  for (size_t j = 1; j < npos; j++)
    for (size_t i = 0; i < j; i++) {
      if (!known[i] || !known[j])
        continue;
      const int same_file =
          sb[i].st_dev == sb[j].st_dev && sb[i].st_ino == sb[j].st_ino;
      if (same_file || (hash[i] == hash[j] && sb[i].st_size == sb[j].st_size &&
                        same_bytes(pos[i], pos[j])))
        cli_die(CLI_EXIT_USAGE, pos[j],
                "%s as %s: its rows would count twice (--allow-repeats "
                "merges it anyway)",
                same_file ? "the same file" : "the same statistics", pos[i]);
    }
  free(hash);
  free(sb);
  free(known);
}

/* ---- gmle fit ------------------------------------------------------------ */

/* fit and stats: the output is none of DATA, LABELS, STATS, the models
 * read (--model, --init-model). */
static void refuse_fit_onto_input(const char *data, const char *labels,
                                  const char *stats, const char *model,
                                  const char *init_model, const char *out) {
  const cli_file_role in[] = {{data, "the data"},
                              {labels, "--labels"},
                              {stats, "--stats"},
                              {model, "--model"},
                              {init_model, "--init-model"}};
  const cli_file_role o[] = {{out, "-o"}};
  cli_refuse_same_files(in, 5, o, 1);
}

/* merge: the output is none of the shards. */
static void refuse_merge_onto_input(const char **shards, size_t n,
                                    const char *out) {
  cli_file_role *in = cli_xmalloc(n * sizeof *in);
  for (size_t i = 0; i < n; i++)
    in[i] = (cli_file_role){shards[i], "statistics"};
  const cli_file_role o[] = {{out, "-o"}};
  cli_refuse_same_files(in, n, o, 1);
  free(in);
}

int cmd_fit(int argc, char **argv) {
  const char *labels = NULL, *label_col = NULL, *cov = NULL, *rel = NULL,
             *absf = NULL, *maxc = NULL, *priors = NULL, *out = NULL,
             *stats_path = NULL, *classes_opt = NULL, *model_path = NULL;
  int shrink = 0;
  cli_em_args em;
  memset(&em, 0, sizeof em);
  const cli_opt opts[] = {{"--labels", 1, &labels, NULL},
                          {"--components", 1, &em.components, NULL},
                          {"--em", 1, &em.em, NULL},
                          {"--init", 1, &em.init, NULL},
                          {"--init-model", 1, &em.init_model, NULL},
                          {"--max-iter", 1, &em.max_iter, NULL},
                          {"--tol", 1, &em.tol, NULL},
                          {"--n-init", 1, &em.n_init, NULL},
                          {"--seed", 1, &em.seed, NULL},
                          {"--reg-covar", 1, &em.reg_covar, NULL},
                          {"--model", 1, &model_path, NULL},
                          {"--label-column", 1, &label_col, NULL},
                          {"--cov", 1, &cov, NULL},
                          {"--rel-floor", 1, &rel, NULL},
                          {"--abs-floor", 1, &absf, NULL},
                          {"--max-condition", 1, &maxc, NULL},
                          {"--shrinkage", 0, NULL, &shrink},
                          {"--priors", 1, &priors, NULL},
                          {"--stats", 1, &stats_path, NULL},
                          {"--classes", 1, &classes_opt, NULL},
                          {"--output", 1, &out, NULL},
                          {"-o", 1, &out, NULL},
                          {NULL, 0, NULL, NULL}};
  cli_common common;
  const char *pos[1];
  size_t npos = cli_parse(argc, argv, opts, fit_help, &common, pos, 1);
  if (!out)
    cli_usage_error("-o MODEL.npz is required");
  if (stats_path && (npos || labels || label_col || classes_opt))
    cli_usage_error("--stats takes no DATA, --labels, --label-column or "
                    "--classes");
  if (!stats_path && npos != 1)
    cli_usage_error("DATA (or --stats STATS) is required");
  if (labels && label_col)
    cli_usage_error("--labels and --label-column cannot be used together");
  refuse_fit_onto_input(npos ? pos[0] : NULL, labels, stats_path, model_path,
                        em.init_model, out);

  gmle_fit_options fo;
  gmle_fit_options_init(&fo);
  if (cov)
    fo.cov = parse_cov(cov);
  if (rel) {
    fo.rel_floor = cli_parse_double("--rel-floor", rel);
    if (fo.rel_floor < 0)
      cli_usage_error("--rel-floor must be >= 0");
  }
  if (absf) {
    fo.abs_floor = cli_parse_double("--abs-floor", absf);
    if (fo.abs_floor < 0)
      cli_usage_error("--abs-floor must be >= 0");
  }
  if (maxc) {
    fo.max_condition = cli_parse_double("--max-condition", maxc);
    if (!(fo.max_condition >= 1))
      cli_usage_error("--max-condition must be >= 1");
  }
  fo.shrinkage = shrink;
  if (shrink && (fo.cov == GMLE_COV_DIAG || fo.cov == GMLE_COV_SPHERICAL))
    cli_usage_error("--shrinkage applies to full and tied covariances, not "
                    "to --cov %s",
                    gmle_cov_name(fo.cov));
  /* Everything that can be checked without the data, before it is read. */
  if (priors && classes_opt && list_count(priors) != list_count(classes_opt))
    cli_usage_error("--priors: %zu values for the %zu classes of --classes",
                    list_count(priors), list_count(classes_opt));
  if (priors)
    free(parse_priors(priors, list_count(priors)));
  check_output_dir(out);
  em.cov = cov;
  if (model_path && !stats_path)
    cli_usage_error("--model goes with --stats (one EM iteration from EM "
                    "statistics); to start EM from a model, use --init-model");
  if (model_path) {
    if (em.components || em.init || em.init_model || em.n_init || em.seed ||
        em.max_iter || em.tol || em.em || cov)
      cli_usage_error("--stats --model is one M-step: of the EM options only "
                      "--reg-covar and --rel-floor apply");
    return cli_em_step(cli_context(&common), &common, &em, &fo, stats_path,
                       model_path, out);
  }
  if (cli_em_wanted(&em)) {
    if (stats_path)
      cli_usage_error("--stats fits one Gaussian per class; the EM options "
                      "(--components, ...) need DATA");
    if (maxc || shrink || priors)
      cli_usage_error("--max-condition, --shrinkage and --priors do not "
                      "apply to mixtures (use --reg-covar)");
    gmle_em_options eo;
    cli_em_options(&em, fo.cov, &eo); /* every value checked before data */
    return cli_fit_mixture(cli_context(&common), &em, &common, pos[0], labels,
                           label_col, classes_opt, fo.cov, &fo, out);
  }

  gmle_context *ctx = cli_context(&common);
  gmle_stats *st = NULL;
  cli_classes cls;
  memset(&cls, 0, sizeof cls);
  int have_names = 0;
  const char *src = NULL; /* the file named in fit errors */
  if (stats_path) {
    src = stats_path;
    gmle_status s = gmle_stats_load(ctx, stats_path, &st);
    if (s != GMLE_OK)
      cli_fail(ctx, s, stats_path, -1);
    have_names = cli_classes_from_stats(st, &cls);
  } else {
    src = pos[0];
    cli_data d;
    cli_data_open(&d, ctx, pos[0], labels, label_col, common.batch_rows, 8);
    cli_fit_classes(&d, classes_opt, &cls);
    have_names = d.has_labels;
    gmle_stats_mode mode =
        (fo.cov == GMLE_COV_DIAG || fo.cov == GMLE_COV_SPHERICAL)
            ? GMLE_STATS_DIAG
            : GMLE_STATS_FULL;
    st = accumulate(ctx, &d, &cls, mode);
    cli_data_close(&d);
  }
  size_t C = gmle_stats_n_classes(st);
  double *pri = NULL;
  if (priors) {
    pri = parse_priors(priors, C);
    fo.priors = pri;
  }
  gmle_model *m = NULL;
  gmle_status s = gmle_fit(st, &fo, &m);
  if (s != GMLE_OK)
    cli_fail(ctx, s, src, -1);
  if (have_names) {
    s = gmle_model_set_class_names(m, (const char *const *)cls.names);
    if (s != GMLE_OK)
      cli_fail(ctx, s, src, -1);
  }
  s = cli_dist_writes() ? gmle_model_save(m, out) : GMLE_OK;
  if (s != GMLE_OK)
    cli_fail(ctx, s, out, -1);
  if (!common.quiet) {
    uint64_t rows = 0;
    for (size_t c = 0; c < C; c++) {
      uint64_t r = 0;
      gmle_stats_rows(st, c, &r);
      rows += r;
    }
    fprintf(stderr,
            "%s fit: %s: %zu class%s, %zu feature%s, %llu rows, %s "
            "covariance\n",
            cli_prog, out, C, C == 1 ? "" : "es", gmle_stats_dim(st),
            gmle_stats_dim(st) == 1 ? "" : "s", (unsigned long long)rows,
            gmle_cov_name(fo.cov));
  }
  free(pri);
  gmle_model_free(m);
  gmle_stats_free(st);
  cli_classes_free(&cls);
  gmle_context_free(ctx);
  return CLI_EXIT_OK;
}

/* ---- gmle stats ---------------------------------------------------------- */

int cmd_stats(int argc, char **argv) {
  const char *labels = NULL, *label_col = NULL, *out = NULL,
             *classes_opt = NULL, *model_path = NULL, *em_mode = NULL;
  int diag = 0;
  const cli_opt opts[] = {{"--labels", 1, &labels, NULL},
                          {"--model", 1, &model_path, NULL},
                          {"--em", 1, &em_mode, NULL},
                          {"--label-column", 1, &label_col, NULL},
                          {"--classes", 1, &classes_opt, NULL},
                          {"--diag", 0, NULL, &diag},
                          {"--output", 1, &out, NULL},
                          {"-o", 1, &out, NULL},
                          {NULL, 0, NULL, NULL}};
  cli_common common;
  const char *pos[1];
  size_t npos = cli_parse(argc, argv, opts, stats_help, &common, pos, 1);
  if (npos != 1)
    cli_usage_error("DATA is required");
  if (!out)
    cli_usage_error("-o STATS is required");
  refuse_fit_onto_input(pos[0], labels, NULL, model_path, NULL, out);
  if (labels && label_col)
    cli_usage_error("--labels and --label-column cannot be used together");
  check_output_dir(out);
  if (em_mode && !model_path)
    cli_usage_error("--em needs --model CURRENT (EM statistics of a mixture)");
  if (model_path) {
    if (diag || classes_opt)
      cli_usage_error("--model: the model gives the classes and the "
                      "covariance type (no --classes or --diag)");
    return cli_em_stats(cli_context(&common), &common, pos[0], labels,
                        label_col, model_path, em_mode, out);
  }
  gmle_context *ctx = cli_context(&common);
  cli_data d;
  cli_data_open(&d, ctx, pos[0], labels, label_col, common.batch_rows, 8);
  cli_classes cls;
  cli_fit_classes(&d, classes_opt, &cls);
  int labelled = d.has_labels;
  gmle_stats *st =
      accumulate(ctx, &d, &cls, diag ? GMLE_STATS_DIAG : GMLE_STATS_FULL);
  uint64_t rows = 0;
  for (size_t c = 0; c < gmle_stats_n_classes(st); c++) {
    uint64_t r = 0;
    gmle_stats_rows(st, c, &r);
    rows += r;
  }
  cli_data_close(&d);
  gmle_status s = GMLE_OK;
  if (labelled)
    s = gmle_stats_set_class_names(st, (const char *const *)cls.names);
  if (s != GMLE_OK)
    cli_fail(ctx, s, pos[0], -1);
  s = cli_dist_writes() ? gmle_stats_save(st, out) : GMLE_OK;
  if (s != GMLE_OK)
    cli_fail(ctx, s, out, -1);
  if (!common.quiet)
    fprintf(stderr, "%s stats: %s: %llu rows, %zu class%s, %zu features\n",
            cli_prog, out, (unsigned long long)rows, gmle_stats_n_classes(st),
            gmle_stats_n_classes(st) == 1 ? "" : "es", gmle_stats_dim(st));
  gmle_stats_free(st);
  cli_classes_free(&cls);
  gmle_context_free(ctx);
  return CLI_EXIT_OK;
}

/* ---- gmle merge ---------------------------------------------------------- */

int cmd_merge(int argc, char **argv) {
  const char *out = NULL;
  int allow_repeats = 0;
  const cli_opt opts[] = {{"--output", 1, &out, NULL},
                          {"--allow-repeats", 0, NULL, &allow_repeats},
                          {"-o", 1, &out, NULL},
                          {NULL, 0, NULL, NULL}};
  cli_common common;
  size_t maxp = (size_t)argc;
  const char **pos = cli_xmalloc(maxp * sizeof *pos);
  size_t npos = cli_parse(argc, argv, opts, merge_help, &common, pos, maxp);
  if (npos < 1)
    cli_usage_error("at least one STATS file is required");
  if (!out)
    cli_usage_error("-o STATS is required");
  check_output_dir(out);
  if (!allow_repeats)
    refuse_repeated_shards(pos, npos);
  refuse_merge_onto_input(pos, npos, out);
  gmle_context *ctx = cli_context(&common);
  {
    /* EM statistics (gmle stats --model) merge as such. */
    gmle_em_stats *probe = NULL;
    if (gmle_em_stats_load(ctx, pos[0], &probe) == GMLE_OK) {
      gmle_em_stats_free(probe);
      const int rc = cli_em_merge(ctx, &common, pos, npos, out);
      free(pos);
      return rc;
    }
  }
  gmle_stats *acc = NULL;
  cli_classes cls0;
  int named0 = 0;
  for (size_t i = 0; i < npos; i++) {
    gmle_stats *st = NULL;
    gmle_status s = gmle_stats_load(ctx, pos[i], &st);
    if (s != GMLE_OK)
      cli_fail(ctx, s, pos[i], -1);
    if (i == 0) {
      acc = st;
      named0 = cli_classes_from_stats(st, &cls0);
      continue;
    }
    /* Shards must agree on their classes: the same names, or none. */
    cli_classes cls;
    int named = cli_classes_from_stats(st, &cls);
    if (named != named0 || (named0 && !cli_classes_equal(&cls0, &cls)))
      cli_die(CLI_EXIT_DATA, pos[i],
              "its classes differ from those of %s; accumulate every shard "
              "with the same --classes LIST",
              pos[0]);
    cli_classes_free(&cls);
    if (gmle_stats_n_classes(st) != gmle_stats_n_classes(acc))
      cli_die(CLI_EXIT_DATA, pos[i], "%zu classes, but %s has %zu",
              gmle_stats_n_classes(st), pos[0], gmle_stats_n_classes(acc));
    if (gmle_stats_dim(st) != gmle_stats_dim(acc))
      cli_die(CLI_EXIT_DATA, pos[i], "%zu features, but %s has %zu",
              gmle_stats_dim(st), pos[0], gmle_stats_dim(acc));
    s = gmle_stats_merge(acc, st);
    if (s != GMLE_OK)
      cli_fail(ctx, s, pos[i], -1);
    gmle_stats_free(st);
  }
  gmle_status s = gmle_stats_save(acc, out);
  if (s != GMLE_OK)
    cli_fail(ctx, s, out, -1);
  if (!common.quiet)
    fprintf(stderr, "gmle merge: %s: %zu file%s merged\n", out, npos,
            npos == 1 ? "" : "s");
  cli_classes_free(&cls0);
  gmle_stats_free(acc);
  gmle_context_free(ctx);
  free(pos);
  return CLI_EXIT_OK;
}
