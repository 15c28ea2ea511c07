/*
 * cli.h -- shared declarations of the gmle command (tools/).
 *
 * The command uses only the public API in include/gmle.h.
 */
#ifndef GMLE_CLI_H
#define GMLE_CLI_H

#include "gmle_io.h"

#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#if defined(__GNUC__)
#define CLI_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define CLI_NORETURN __attribute__((noreturn))
#else
#define CLI_PRINTF(a, b)
#define CLI_NORETURN
#endif

/* Exit codes (documented in `gmle help` and the README). */
enum {
  CLI_EXIT_OK = 0,
  CLI_EXIT_USAGE = 1,
  CLI_EXIT_DATA = 2,
  CLI_EXIT_FILE = 3,
  CLI_EXIT_DEVICE = 4
};

/* The one table from library status to exit code. */
int cli_exit_code(gmle_status s);

/* ---- options ------------------------------------------------------------ */

/* Options shared by every command. */
typedef struct cli_common {
  gmle_backend backend;
  int device;        /* -1: default */
  size_t batch_rows; /* 0: automatic */
  int quiet;
} cli_common;

typedef struct cli_opt {
  const char *name; /* "--cov" or "-o" */
  int has_arg;
  const char **value; /* receives the argument (has_arg) */
  int *flag;          /* set to 1 (no argument) */
} cli_opt;

/* Parse argv[1..] of a command: options from `opts` and the common options,
 * positional arguments into pos[] (at most max_pos). Returns the number of
 * positional arguments; prints usage errors and exits 1. --help / -h print
 * `help` and exit 0. */
size_t cli_parse(int argc, char **argv, const cli_opt *opts, const char *help,
                 cli_common *common, const char **pos, size_t max_pos);

/* ---- messages ----------------------------------------------------------- */

/* The command being run ("fit"), for messages "gmle fit: ...". */
extern const char *cli_cmd;
extern int cli_quiet;
/* --header yes|no|auto: whether a CSV input's first line is a header (1,
 * 0) or detected (-1, the default). */
extern int cli_csv_header;

void cli_warn(const char *fmt, ...) CLI_PRINTF(1, 2);
CLI_NORETURN void cli_usage_error(const char *fmt, ...) CLI_PRINTF(1, 2);
/* End the process with `code` (gmle-mpi: every rank learns of a failure,
 * so that none waits for the others). Every exit of a command goes
 * through here. */
CLI_NORETURN void cli_exit(int code);
/* Undo the outputs begun (cli_track_writer, cli_on_fail): for a failing
 * command. */
void cli_cleanup(void);
/* "gmle CMD: [WHAT: ]MSG" and exit with `code`. */
CLI_NORETURN void cli_die(int code, const char *what, const char *fmt, ...)
    CLI_PRINTF(3, 4);
/* Report a failing library call: "gmle CMD: WHAT: <context message>" (the
 * status sentence when the context has no message) and exit with the code
 * of the table. `row0` >= 0 adds the absolute row of a "row N" in the
 * message (for errors inside a batch that starts at row row0). */
CLI_NORETURN void cli_fail(gmle_context *ctx, gmle_status s, const char *what,
                           long long row0);

/* The longest message of cli_die / cli_fail (longer ones are cut). */
#define CLI_MESSAGE_MAX 16384

/* Failures on a thread that must not end the process (the reader thread of
 * data.c): after cli_catch_failures(c), the next cli_die or cli_fail of
 * this thread stores its message and exit code in c, stops catching and
 * longjmps to c->env (set with setjmp first). NULL stops catching. The
 * main thread ends the command with cli_die_caught(c) when it reaches the
 * work the failure belongs to. */
typedef struct cli_catch {
  jmp_buf env;
  int code;
  char msg[CLI_MESSAGE_MAX];
} cli_catch;
void cli_catch_failures(cli_catch *c);
CLI_NORETURN void cli_die_caught(const cli_catch *c);

/* The writer of the output being written (NULL when none): a failing
 * command aborts it, so that no partial output is left. */
void cli_track_writer(gmle_writer *w);

/* Run fn(obj) if the command fails (cli_die/cli_fail), to remove a partial
 * output; cancel once the output is complete. At most 8 at a time. */
void cli_on_fail(void (*fn)(void *), void *obj);
void cli_on_fail_cancel(void *obj);
/* The row the context's last error names (its location), or -1. */
long long cli_find_row(const gmle_context *ctx);

/* Create the context of the common options and install the log callback. */
gmle_context *cli_context(const cli_common *common);

/* Parse helpers; exit 1 naming the option on failure. */
double cli_parse_double(const char *opt, const char *s);
size_t cli_parse_size(const char *opt, const char *s);
int cli_ends_with(const char *s, const char *suffix);
void *cli_xmalloc(size_t n);
void *cli_xcalloc(size_t n, size_t size);
void *cli_xrealloc(void *p, size_t n);
char *cli_xstrdup(const char *s);

/* ---- progress ----------------------------------------------------------- */

typedef struct cli_progress {
  int on;
  double t0, last;
  uint64_t total; /* 0: unknown */
  const char *label;
} cli_progress;

void cli_progress_start(cli_progress *p, const char *label, uint64_t total);
void cli_progress_update(cli_progress *p, uint64_t done);
void cli_progress_end(cli_progress *p, uint64_t done);
double cli_now(void);

/* ---- classes ------------------------------------------------------------ */

/* A class set: sorted distinct labels, numerically when every label is an
 * integer, else lexicographically (byte order); from --classes, the order
 * the list gives. */
typedef struct cli_label_map cli_label_map;
typedef struct cli_classes {
  size_t n;
  char **names;       /* [n], canonical text ("3", "cat") */
  int numeric;        /* 1: every name is an integer */
  long long *values;  /* [n] when numeric */
  cli_label_map *map; /* label to index, built with the set (classes.c) */
} cli_classes;

/* Collecting distinct labels. */
typedef struct cli_label_set cli_label_set;
cli_label_set *cli_label_set_new(void);
void cli_label_set_add(cli_label_set *s, const char *label);
void cli_label_set_add_int(cli_label_set *s, long long v);
size_t cli_label_set_size(const cli_label_set *s);
/* Turn the collected labels into a sorted class set; frees s. */
void cli_label_set_finish(cli_label_set *s, cli_classes *out);

/* s with control bytes escaped (\xNN), for a terminal; valid until four
 * more calls. */
const char *cli_show(const char *s);
/* From a comma-separated list (--classes); returns 0 on duplicates/empty. */
int cli_classes_from_list(const char *list, cli_classes *out);
/* From a model's class names (or "0".."C-1" when it has none). */
void cli_classes_from_model(const gmle_model *m, cli_classes *out);
/* Index of a label, or -1 when it is not in the set: a table look-up
 * (integer labels by value, "007" as "7"; other labels by their text). */
long cli_classes_find(const cli_classes *c, const char *label);
long cli_classes_find_int(const cli_classes *c, long long v);
int cli_classes_equal(const cli_classes *a, const cli_classes *b);
void cli_classes_free(cli_classes *c);
/* From the class names of statistics, in class-index order; 0 when the
 * statistics have none. */
int cli_classes_from_stats(const gmle_stats *st, cli_classes *out);
/* Whether a text is an integer label; value in *v. */
int cli_parse_int_label(const char *s, long long *v);

/* ---- data files --------------------------------------------------------- */

/* A data file read in batches, with its labels (a label column of the CSV,
 * or a separate labels file read alongside) mapped to class indices. A
 * reader thread reads the next batch while the command works on the
 * current one (data.c). */
typedef struct cli_feed cli_feed;
typedef struct cli_data {
  const char *path, *label_path; /* label_path: the file the labels are in */
  gmle_context *ctx;    /* the command's, for the library's work on batches */
  gmle_context *rctx;   /* the readers' (used by the reader thread) */
  gmle_reader *x, *lab; /* lab: separate labels file, or NULL */
  int has_labels;
  size_t cols, batch;
  gmle_dtype dtype;
  uint64_t total; /* rows when known up front, else 0 */
  /* The current batch (cli_data_next), valid until the next call: */
  void *buf;            /* batch x cols values */
  int32_t *idx;         /* class indices (after cli_data_use_classes) */
  uint64_t row0;        /* first row of the current batch (0-based) */
  uint64_t rows_done;   /* the row after the last returned (0-based) */
  uint64_t first, last; /* the rows read: [first, last) of the file
                           (gmle-mpi: this rank's share); last UINT64_MAX:
                           to the end */
  /* Kaldi tables ("ark:", "scp:"): */
  int ark;                    /* DATA is a Kaldi table */
  struct cli_uttmap *utt2;    /* labels per utterance (utt2label), or NULL */
  const gmle_utterance *utts; /* the utterances of the current batch */
  size_t n_utts;
  cli_feed *feed; /* the batches and the reader thread (data.c) */
} cli_data;

/* Open DATA (and LABELS, or a CSV label column). batch_rows 0: automatic
 * (bounded by max_bytes_per_row, the caller's per-row memory). Exits with
 * the right code on failure. */
void cli_data_open(cli_data *d, gmle_context *ctx, const char *path,
                   const char *labels_path, const char *label_column,
                   size_t batch_rows, size_t extra_bytes_per_row);
/* From the next batch on, d->idx holds each row's class index in c (which
 * must outlive the reading). A label not in c exits 2 naming the file and
 * the row: "is not one of the classes (...)", or with model_path "is not a
 * class of the model MODEL". late: that exit waits for
 * cli_data_check_labels (classify scores a batch before it checks its
 * labels). */
void cli_data_use_classes(cli_data *d, const cli_classes *c,
                          const char *model_path, int late);
/* Exit for a label of the current batch that is not a class (late mode). */
void cli_data_check_labels(cli_data *d);
/* Read the next batch; returns its row count, 0 at the end. Checks that a
 * separate labels file has exactly as many rows as the data. A failure
 * found while reading the batch (ahead, on the reader thread) ends the
 * command here, when its batch is reached. */
size_t cli_data_next(cli_data *d);
void cli_data_rewind(cli_data *d);
/* Read only rows [first, last) of the file from now on (last UINT64_MAX:
 * to its end, where the checks of a labels file's length are made). */
void cli_data_range(cli_data *d, uint64_t first, uint64_t last);
/* The rows returned since the start of the range (this process's rows
 * after a whole pass). */
uint64_t cli_data_rows(const cli_data *d);
/* A first pass over the labels: the class set. */
void cli_data_classes(cli_data *d, cli_classes *out);
void cli_data_close(cli_data *d);
/* cli_fail for an error in the current batch: names the absolute row and,
 * for Kaldi tables, the utterance and frame. */
CLI_NORETURN void cli_data_fail(cli_data *d, gmle_status s);

/* ---- Kaldi tables (kaldi.c) -----------------------------------------------
 */

/* Whether a path is a Kaldi rspecifier/wspecifier ("ark:", "ark,t:",
 * "scp:"). */
int cli_is_kaldi(const char *path);

/* utt2label files: "UTT LABEL" a line (Kaldi's utt2spk/utt2lang). */
typedef struct cli_uttmap cli_uttmap;
cli_uttmap *cli_uttmap_load(const char *path); /* exits 3 on errors */
/* The label of an utterance, or NULL. */
const char *cli_uttmap_get(const cli_uttmap *m, const char *utt);
/* Every label of the file into a class set. */
void cli_uttmap_classes(const cli_uttmap *m, cli_classes *out);
void cli_uttmap_free(cli_uttmap *m);

/* A text output written to a temporary file and renamed by commit (removed
 * if the command fails). */
typedef struct cli_textout {
  FILE *f; /* gmle_outfile_file(out) */
  char *path;
  gmle_outfile *out;
  gmle_context *ctx; /* for messages */
} cli_textout;
void cli_textout_open(cli_textout *t, gmle_context *ctx, const char *path);
void cli_textout_commit(cli_textout *t);

/* Per-utterance results: sums of the per-frame class log-likelihoods, the
 * utterance's class (argmax_c log pi_c + sum_t log N(x_t; c)); written as a
 * text table or .npy (--per-utt), or as "UTT CLASS" lines. */
typedef struct cli_uttacc cli_uttacc;
cli_uttacc *cli_uttacc_new(const gmle_model *m, const cli_classes *cls);
/* Add the batch's per-frame log-likelihoods (n x C float64, rows of the
 * batch); calls done(user, key, frames, sums, predicted) at each
 * utterance's end. */
void cli_uttacc_add(cli_uttacc *a, const cli_data *d, const double *loglik,
                    void (*done)(void *user, const char *key, uint64_t frames,
                                 const double *sums, long pred),
                    void *user);
void cli_uttacc_free(cli_uttacc *a);

/* ---- outputs that are inputs (same_file.c) ------------------------------ */

/* A file of the command line and what it is ("the data", "-o"); a NULL
 * path is skipped. */
typedef struct cli_file_role {
  const char *path, *role;
} cli_file_role;
/* Exit 1 before any work when an output is the same existing file (device
 * and inode) as an input or as another output, or when two outputs not yet
 * on disk would be created as the same file (same folder, same name). */
void cli_refuse_same_files(const cli_file_role *in, size_t n_in,
                           const cli_file_role *out, size_t n_out);

/* ---- exit paths (exit_paths.c) ------------------------------------------ */

/* SIGINT, SIGTERM and SIGHUP remove the temporary outputs and end the run
 * with that signal; at exit, a write error on stdout prints a message and
 * exits 3. Called once by main. */
void cli_install_exit_paths(void);
/* Under an address-space limit, set an OpenBLAS thread count whose buffers
 * fit it (memory_limit.c); 1 when it did, and main must start again for
 * OpenBLAS to read it. Called first thing by main. */
int cli_fit_blas_threads_to_limit(void);

/* ---- commands ----------------------------------------------------------- */

int cmd_fit(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_merge(int argc, char **argv);
int cmd_score(int argc, char **argv);
int cmd_classify(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_devices(int argc, char **argv);
int cmd_demo(int argc, char **argv);

#endif /* GMLE_CLI_H */
