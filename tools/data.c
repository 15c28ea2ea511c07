/* data.c -- data files read in batches through gmle_reader, with their
 * labels streamed alongside and mapped to class indices.
 *
 * A reader thread reads the next batch (rows, labels, their class indices)
 * while the command's thread hands the current one to the library: two
 * batches in memory, read in order. A failure found while reading a batch
 * (a read error, a missing label, a label that is not a class) is caught on
 * the reader thread and raised by the command's thread when it takes that
 * batch, so that errors come in the order of the rows, as without the
 * thread. The readers have their own context (their errors never race with
 * the library's on the command's context). Without a thread (one could not
 * be started), batches are read in place, with the same results. */
#include "cli.h"
#include "dist.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

/* Default batch: at most 65536 rows and about 32 MiB of input values. */
#define CLI_BATCH_BYTES ((size_t)32 << 20)
#define CLI_BATCH_ROWS ((size_t)65536)
/* The reader thread's stack: it parses, formats messages (16 KiB) and calls
 * the readers, nothing deep; small, for runs under an address-space limit. */
#define CLI_READER_STACK ((size_t)1 << 20)

typedef enum slot_state {
  SLOT_FREE,
  SLOT_FILLING,
  SLOT_READY,
  SLOT_HELD
} slot_state;

/* One batch as read: the rows and what belongs to them. */
typedef struct batch {
  slot_state state;
  void *buf;            /* batch x cols values */
  const char **labels;  /* label texts (valid until the reader's next read) */
  int64_t *ilabels;     /* integer labels (.npy, Kaldi alignments) */
  int32_t *idx;         /* class indices */
  size_t n;             /* rows */
  uint64_t row0;        /* its first row in the file (0-based) */
  gmle_utterance *utts; /* Kaldi tables: copies, keys in `keys` */
  size_t n_utts, utts_cap;
  char *keys;
  size_t keys_cap;
  uint64_t *lines;  /* CSV: the file line of each row */
  int failed;       /* a failure was caught (in the feed's catcher) */
  int label_failed; /* it is a label that is not a class: the rows are read */
} batch;

struct cli_feed {
  batch b[2];
  size_t take, put; /* the slot the command takes next / the reader fills */
  batch *held;      /* the batch the command works on */
  pthread_t thread;
  int running; /* the reader thread was started and not yet joined */
  int inplace; /* no thread: batches are read by cli_data_next */
  int stop;    /* asks the reader thread to end */
  int ended;   /* the command took the last batch (the end or a failure) */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  uint64_t rows_read; /* the reader's count */
  int int_labels;     /* read d->lab with gmle_reader_read_int_labels */
  char **kept;        /* label texts kept across reads of one batch */
  size_t n_kept;
  /* cli_data_use_classes: */
  const cli_classes *cls;
  const char *model;
  int late_labels;
  volatile int mapping; /* a caught failure is a label's */
  cli_catch caught;
};

static void open_fail(gmle_context *ctx, gmle_status s, const char *path) {
  cli_fail(ctx, s, path, -1);
}

/* The readers' own context: the CPU backend, which they do not use, and
 * the command's messages. */
static gmle_context *reader_context(void) {
  cli_common c = {GMLE_BACKEND_CPU, -1, 0, cli_quiet};
  return cli_context(&c);
}

static void alloc_batches(cli_data *d, size_t isz) {
  cli_feed *f = d->feed;
  const int csv = strcmp(gmle_reader_format(d->x), "csv") == 0;
  for (int k = 0; k < 2; k++) {
    batch *b = &f->b[k];
    b->buf = cli_xmalloc(d->batch * d->cols * isz);
    if (csv)
      b->lines = cli_xmalloc(d->batch * sizeof *b->lines);
    if (!d->has_labels)
      continue;
    b->idx = cli_xmalloc(d->batch * sizeof *b->idx);
    if (f->int_labels)
      b->ilabels = cli_xmalloc(d->batch * sizeof *b->ilabels);
    else
      b->labels = cli_xmalloc(d->batch * sizeof *b->labels);
  }
}

void cli_data_open(cli_data *d, gmle_context *ctx, const char *path,
                   const char *labels_path, const char *label_column,
                   size_t batch_rows, size_t extra_bytes_per_row) {
  memset(d, 0, sizeof *d);
  d->ctx = ctx;
  d->rctx = reader_context();
  d->path = path;
  d->last = UINT64_MAX;
  d->feed = cli_xcalloc(1, sizeof *d->feed);
  gmle_reader_options opt;
  gmle_reader_options_init(&opt);
  opt.label_column = label_column;
  opt.header = cli_csv_header;
  gmle_status s = gmle_reader_open(d->rctx, path, &opt, &d->x);
  if (s != GMLE_OK)
    open_fail(d->rctx, s, path);
  if (label_column && strcmp(gmle_reader_format(d->x), "csv") != 0)
    cli_die(CLI_EXIT_USAGE, path,
            "--label-column needs a CSV file; this is a .%s file (use "
            "--labels FILE)",
            gmle_reader_format(d->x));
  d->cols = gmle_reader_cols(d->x);
  d->dtype = gmle_reader_dtype(d->x);
  if (!gmle_reader_rows(d->x, &d->total))
    d->total = 0;
  if (d->cols == 0)
    cli_die(CLI_EXIT_DATA, path, "no feature columns");
  if (label_column) {
    d->has_labels = 1;
    d->label_path = path;
  }
  d->ark = strcmp(gmle_reader_format(d->x), "ark") == 0;
  if (labels_path && d->ark && !cli_is_kaldi(labels_path)) {
    /* Labels per utterance: an utt2label file. */
    d->utt2 = cli_uttmap_load(labels_path);
    d->has_labels = 1;
    d->label_path = labels_path;
  } else if (labels_path) {
    if (cli_is_kaldi(labels_path) && !d->ark)
      cli_die(CLI_EXIT_USAGE, labels_path,
              "labels from a Kaldi archive need DATA in a Kaldi archive "
              "(ark:FILE or scp:FILE)");
    gmle_reader_options lo;
    gmle_reader_options_init(&lo);
    lo.labels_only = 1;
    s = gmle_reader_open(d->rctx, labels_path, &lo, &d->lab);
    if (s != GMLE_OK)
      open_fail(d->rctx, s, labels_path);
    d->has_labels = 1;
    d->label_path = labels_path;
    d->feed->int_labels = gmle_reader_int_labels(d->lab);
    uint64_t nl = 0;
    if (d->total && gmle_reader_rows(d->lab, &nl) && nl != d->total)
      cli_die(CLI_EXIT_DATA, labels_path, "%llu labels, but %s has %llu rows",
              (unsigned long long)nl, path, (unsigned long long)d->total);
  }
  size_t isz = d->dtype == GMLE_F32 ? 4 : 8;
  size_t per_row = d->cols * isz + extra_bytes_per_row;
  if (d->cols > SIZE_MAX / isz - extra_bytes_per_row)
    cli_die(CLI_EXIT_DATA, path, "rows are too wide (%zu columns)", d->cols);
  size_t b = batch_rows;
  if (!b) {
    b = CLI_BATCH_BYTES / per_row;
    if (b > CLI_BATCH_ROWS)
      b = CLI_BATCH_ROWS;
    if (b < 1)
      b = 1;
  }
  /* No batch larger than the data: --batch-rows 1e12 on a file of ten
   * rows allocates ten rows (when the reader knows its row count). */
  if (d->total > 0 && b > d->total)
    b = (size_t)d->total;
  if (b > SIZE_MAX / 2 / per_row)
    cli_usage_error("--batch-rows %zu is too large", b);
  d->batch = b;
  alloc_batches(d, isz);
  pthread_mutex_init(&d->feed->mu, NULL);
  pthread_cond_init(&d->feed->cv, NULL);
  cli_dist_share(d);
}

void cli_data_use_classes(cli_data *d, const cli_classes *c,
                          const char *model_path, int late) {
  d->feed->cls = d->has_labels ? c : NULL;
  d->feed->model = model_path;
  d->feed->late_labels = late;
}

/* ---- reading one batch -------------------------------------------------- */

static void free_kept(cli_feed *f) {
  for (size_t i = 0; i < f->n_kept; i++)
    free(f->kept[i]);
  free(f->kept);
  f->kept = NULL;
  f->n_kept = 0;
}

/* Read exactly n labels from the labels file (fewer only at its end). */
static size_t read_labels(cli_data *d, batch *b, size_t n) {
  cli_feed *f = d->feed;
  size_t got = 0;
  free_kept(f);
  while (got < n) {
    size_t k = 0;
    gmle_status s;
    if (f->int_labels) {
      s = gmle_reader_read_int_labels(d->lab, b->ilabels + got, n - got, &k);
    } else {
      if (got > 0) { /* keep what the next read would invalidate */
        f->kept = cli_xrealloc(f->kept, got * sizeof *f->kept);
        for (size_t i = f->n_kept; i < got; i++) {
          f->kept[i] = cli_xstrdup(b->labels[i]);
          b->labels[i] = f->kept[i];
        }
        f->n_kept = got;
      }
      s = gmle_reader_read(d->lab, NULL, n - got, &k, b->labels + got);
    }
    if (s != GMLE_OK)
      cli_fail(d->rctx, s, d->label_path, -1);
    if (k == 0)
      break;
    got += k;
  }
  return got;
}

/* Labels of the batch from the utt2label map. */
static void utt_labels(cli_data *d, batch *b, const gmle_utterance *utts,
                       size_t n_utts) {
  for (size_t u = 0; u < n_utts; u++) {
    const gmle_utterance *g = &utts[u];
    const char *l = cli_uttmap_get(d->utt2, g->key);
    if (!l)
      cli_die(CLI_EXIT_DATA, d->label_path, "no label for utterance '%s' of %s",
              cli_show(g->key), d->path);
    for (size_t i = g->row0; i < g->row0 + g->n_rows; i++)
      b->labels[i] = l;
  }
}

/* Frame labels from an alignment archive: one read of n labels, whose
 * utterances must be the data's, frame for frame. */
static void ali_labels(cli_data *d, batch *b, size_t n,
                       const gmle_utterance *utts, size_t n_utts) {
  size_t k = 0;
  gmle_status s = d->feed->int_labels
                      ? gmle_reader_read_int_labels(d->lab, b->ilabels, n, &k)
                      : gmle_reader_read(d->lab, NULL, n, &k, b->labels);
  if (s != GMLE_OK)
    cli_fail(d->rctx, s, d->label_path, -1);
  const gmle_utterance *a;
  size_t na = gmle_reader_utterances(d->lab, &a), j = 0, used = 0;
  for (size_t u = 0; u < n_utts; u++) {
    const gmle_utterance *g = &utts[u];
    for (size_t i = 0; i < g->n_rows;) {
      if (j >= na)
        cli_die(CLI_EXIT_DATA, d->label_path,
                "the alignments end before frame %llu of utterance '%s' of "
                "%s",
                (unsigned long long)(g->frame0 + i), cli_show(g->key), d->path);
      if (strcmp(a[j].key, g->key) != 0 || a[j].frame0 + used != g->frame0 + i)
        cli_die(CLI_EXIT_DATA, d->label_path,
                "frame %llu of utterance '%s' of %s has the alignment of "
                "'%s' frame %llu (the utterances or their frame counts "
                "differ)",
                (unsigned long long)(g->frame0 + i), cli_show(g->key), d->path,
                cli_show(a[j].key), (unsigned long long)(a[j].frame0 + used));
      size_t m = g->n_rows - i < a[j].n_rows - used ? g->n_rows - i
                                                    : a[j].n_rows - used;
      i += m;
      used += m;
      if (used == a[j].n_rows) {
        j++;
        used = 0;
      }
    }
    if (g->last && (used != 0 || j == 0 || !a[j - 1].last))
      cli_die(CLI_EXIT_DATA, d->label_path,
              "the alignment of '%s' is longer than its %llu frames in %s",
              cli_show(g->key), (unsigned long long)(g->frame0 + g->n_rows),
              d->path);
  }
  if (k < n)
    cli_die(CLI_EXIT_DATA, d->label_path, "%llu labels, but %s has more rows",
            (unsigned long long)(b->row0 + k), d->path);
}

/* The utterances of the data reader's last read, kept with the batch (the
 * reader's own are gone at its next read). */
static void keep_utterances(batch *b, const gmle_utterance *u, size_t n) {
  size_t bytes = 0;
  for (size_t i = 0; i < n; i++)
    bytes += strlen(u[i].key) + 1;
  if (n > b->utts_cap) {
    b->utts = cli_xrealloc(b->utts, n * sizeof *b->utts);
    b->utts_cap = n;
  }
  if (bytes > b->keys_cap) {
    b->keys = cli_xrealloc(b->keys, bytes);
    b->keys_cap = bytes;
  }
  size_t at = 0;
  for (size_t i = 0; i < n; i++) {
    const size_t len = strlen(u[i].key) + 1;
    memcpy(b->keys + at, u[i].key, len);
    b->utts[i] = u[i];
    b->utts[i].key = b->keys + at;
    at += len;
  }
  b->n_utts = n;
}

/* A label that is not a class: exits 2 naming the file and row. */
CLI_NORETURN static void unknown_label(const cli_data *d, const batch *b,
                                       size_t i) {
  const cli_feed *f = d->feed;
  const cli_classes *c = f->cls;
  char num[32];
  const char *label = num;
  if (b->ilabels)
    snprintf(num, sizeof num, "%lld", (long long)b->ilabels[i]);
  else
    label = b->labels[i];
  if (f->model)
    cli_die(CLI_EXIT_DATA, d->label_path,
            "row %llu: label '%s' is not a class of the model %s",
            (unsigned long long)(b->row0 + i), cli_show(label), f->model);
  /* Name a few classes to help. */
  char list[256] = "";
  size_t len = 0;
  for (size_t j = 0; j < c->n && len < 200; j++)
    len += (size_t)snprintf(list + len, sizeof list - len, "%s%s",
                            j ? ", " : "", c->names[j]);
  if (len >= 200)
    snprintf(list + 196, sizeof list - 196, ", ...");
  cli_die(CLI_EXIT_DATA, d->label_path,
          "row %llu: label '%s' is not one of the classes (%s)",
          (unsigned long long)(b->row0 + i), cli_show(label), cli_show(list));
}

/* The one place labels become class indices: once per row, a table look-up
 * (classes.c), integers without text. */
static void cli_data_map(const cli_data *d, batch *b) {
  const cli_classes *c = d->feed->cls;
  for (size_t i = 0; i < b->n; i++) {
    const long k = b->ilabels ? cli_classes_find_int(c, b->ilabels[i])
                              : cli_classes_find(c, b->labels[i]);
    if (k < 0)
      unknown_label(d, b, i);
    b->idx[i] = (int32_t)k;
  }
}

/* Read the next batch into b: rows, utterances, CSV lines, labels and,
 * when classes were given, class indices. Failures exit through cli_die /
 * cli_fail (caught on the reader thread). */
static void fill(cli_data *d, batch *b) {
  cli_feed *f = d->feed;
  size_t n = 0;
  b->n = 0;
  b->n_utts = 0;
  b->row0 = f->rows_read;
  const size_t want = d->last - f->rows_read < d->batch
                          ? (size_t)(d->last - f->rows_read)
                          : d->batch;
  if (want == 0) /* the end of the range, not of the file */
    return;
  gmle_status s = gmle_reader_read(
      d->x, b->buf, want, &n,
      d->lab || d->utt2 ? NULL : (d->has_labels ? b->labels : NULL));
  if (s != GMLE_OK)
    cli_fail(d->rctx, s, d->path, -1);
  const gmle_utterance *utts = NULL;
  const size_t n_utts = gmle_reader_utterances(d->x, &utts);
  keep_utterances(b, utts, n_utts);
  for (size_t i = 0; b->lines && i < n; i++)
    b->lines[i] = gmle_reader_row_line(d->x, i);
  if (d->utt2)
    utt_labels(d, b, b->utts, b->n_utts);
  if (d->lab && d->ark && n > 0) {
    ali_labels(d, b, n, b->utts, b->n_utts);
  } else if (d->lab) {
    if (n > 0) {
      /* Label texts are owned by the reader until its next read: read them
       * all in one call when possible. */
      size_t k = read_labels(d, b, n);
      if (k < n)
        cli_die(CLI_EXIT_DATA, d->label_path,
                "%llu labels, but %s has more rows",
                (unsigned long long)(b->row0 + k), d->path);
    } else {
      const char *extra = NULL;
      int64_t iextra = 0;
      size_t k = 0;
      s = f->int_labels ? gmle_reader_read_int_labels(d->lab, &iextra, 1, &k)
                        : gmle_reader_read(d->lab, NULL, 1, &k, &extra);
      if (s != GMLE_OK)
        cli_fail(d->rctx, s, d->label_path, -1);
      if (k)
        cli_die(CLI_EXIT_DATA, d->label_path,
                "more labels than the %llu rows of %s",
                (unsigned long long)b->row0, d->path);
    }
  }
  b->n = n;
  f->rows_read += n;
  if (f->cls && n > 0) {
    f->mapping = 1;
    cli_data_map(d, b);
    f->mapping = 0;
  }
}

/* fill(), catching its failure; 1 when no batch follows (the end, or a
 * failure: the reader stops at the first). */
static int fill_caught(cli_data *d, batch *b) {
  cli_feed *f = d->feed;
  b->failed = b->label_failed = 0;
  f->mapping = 0;
  if (setjmp(f->caught.env) == 0) {
    cli_catch_failures(&f->caught);
    fill(d, b);
    cli_catch_failures(NULL);
    return b->n == 0;
  }
  b->failed = 1;
  b->label_failed = f->mapping;
  return 1;
}

/* ---- the reader thread -------------------------------------------------- */

static void *reader_main(void *arg) {
  cli_data *d = arg;
  cli_feed *f = d->feed;
  for (;;) {
    pthread_mutex_lock(&f->mu);
    batch *b = &f->b[f->put];
    while (!f->stop && b->state != SLOT_FREE)
      pthread_cond_wait(&f->cv, &f->mu);
    if (f->stop) {
      pthread_mutex_unlock(&f->mu);
      return NULL;
    }
    b->state = SLOT_FILLING;
    pthread_mutex_unlock(&f->mu);
    const int last = fill_caught(d, b);
    pthread_mutex_lock(&f->mu);
    b->state = SLOT_READY;
    f->put ^= 1;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
    if (last)
      return NULL;
  }
}

/* Start the reader thread; read in place when it cannot start (a tight
 * address-space limit). Signals go to the command's thread. */
static void feed_start(cli_data *d) {
  cli_feed *f = d->feed;
  pthread_attr_t attr;
  sigset_t all, old;
  sigfillset(&all);
  int ok = pthread_attr_init(&attr) == 0;
  if (ok) {
    pthread_attr_setstacksize(&attr, CLI_READER_STACK);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    ok = pthread_create(&f->thread, &attr, reader_main, d) == 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
  }
  f->running = ok;
  f->inplace = !ok;
}

/* Stop the reader thread (after the batch it is reading) and forget the
 * batches read ahead. */
static void feed_reset(cli_feed *f) {
  if (f->running) {
    pthread_mutex_lock(&f->mu);
    f->stop = 1;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
    pthread_join(f->thread, NULL);
    f->running = 0;
  }
  f->stop = f->ended = 0;
  f->take = f->put = 0;
  f->held = NULL;
  f->b[0].state = f->b[1].state = SLOT_FREE;
}

/* The next batch, in order: from the reader thread, or read here. NULL
 * after the last. */
static batch *take(cli_data *d) {
  cli_feed *f = d->feed;
  if (f->ended)
    return NULL;
  if (!f->running && !f->inplace)
    feed_start(d);
  batch *b = &f->b[f->take];
  if (f->inplace) {
    if (f->held)
      f->held->state = SLOT_FREE;
    fill_caught(d, b);
    b->state = SLOT_HELD;
  } else {
    pthread_mutex_lock(&f->mu);
    if (f->held) {
      f->held->state = SLOT_FREE;
      pthread_cond_broadcast(&f->cv);
    }
    while (b->state != SLOT_READY)
      pthread_cond_wait(&f->cv, &f->mu);
    b->state = SLOT_HELD;
    pthread_mutex_unlock(&f->mu);
  }
  f->held = b;
  f->take ^= 1;
  f->ended = b->failed || b->n == 0;
  return b;
}

size_t cli_data_next(cli_data *d) {
  cli_feed *f = d->feed;
  batch *b = take(d);
  if (!b) {
    d->n_utts = 0;
    return 0;
  }
  if (b->failed && !(b->label_failed && f->late_labels))
    cli_die_caught(&f->caught);
  d->buf = b->buf;
  d->idx = b->idx;
  d->utts = b->utts;
  d->n_utts = b->n_utts;
  d->row0 = b->row0;
  d->rows_done = b->row0 + b->n;
  return b->n;
}

void cli_data_check_labels(cli_data *d) {
  cli_feed *f = d->feed;
  if (f->held && f->held->failed)
    cli_die_caught(&f->caught);
}

/* Back to row `first` of a reader. */
static gmle_status go_first(gmle_reader *r, uint64_t first) {
  return first ? gmle_reader_seek(r, first) : gmle_reader_rewind(r);
}

void cli_data_rewind(cli_data *d) {
  feed_reset(d->feed);
  gmle_status s = go_first(d->x, d->first);
  if (s != GMLE_OK)
    cli_fail(d->rctx, s, d->path, -1);
  if (d->lab) {
    s = go_first(d->lab, d->first);
    if (s != GMLE_OK)
      cli_fail(d->rctx, s, d->label_path, -1);
  }
  d->feed->rows_read = d->first;
  d->rows_done = d->first;
  d->row0 = d->first;
}

void cli_data_range(cli_data *d, uint64_t first, uint64_t last) {
  d->first = first;
  d->last = last < first ? first : last;
  cli_data_rewind(d);
}

uint64_t cli_data_rows(const cli_data *d) { return d->rows_done - d->first; }

/* ---- the class set ------------------------------------------------------ */

/* The distinct labels of the labels file: read alone, integers as such. */
static void labels_file_classes(cli_data *d, cli_label_set *set,
                                cli_progress *pr) {
  cli_feed *f = d->feed;
  batch *b = &f->b[0];
  uint64_t done = 0;
  for (;;) {
    size_t k = 0;
    const uint64_t left = d->last - d->first - done;
    const size_t want = left < d->batch ? (size_t)left : d->batch;
    gmle_status s =
        f->int_labels
            ? gmle_reader_read_int_labels(d->lab, b->ilabels, want, &k)
            : gmle_reader_read(d->lab, NULL, want, &k, b->labels);
    if (s != GMLE_OK)
      cli_fail(d->rctx, s, d->label_path, -1);
    if (!k)
      break;
    for (size_t i = 0; i < k; i++) {
      if (f->int_labels)
        cli_label_set_add_int(set, b->ilabels[i]);
      else
        cli_label_set_add(set, b->labels[i]);
    }
    done += k;
    cli_progress_update(pr, done);
  }
  cli_progress_end(pr, done);
  cli_data_rewind(d);
}

void cli_data_classes(cli_data *d, cli_classes *out) {
  if (d->utt2) { /* the labels of the utt2label file */
    cli_uttmap_classes(d->utt2, out);
    return;
  }
  cli_label_set *set = cli_label_set_new();
  cli_progress pr;
  cli_progress_start(&pr, "finding classes", d->total);
  if (d->lab) {
    labels_file_classes(d, set, &pr);
  } else {
    /* A CSV label column: the whole file is read, here. */
    batch *b = &d->feed->b[0];
    for (;;) {
      fill(d, b);
      if (b->n == 0)
        break;
      for (size_t i = 0; i < b->n; i++)
        cli_label_set_add(set, b->labels[i]);
      cli_progress_update(&pr, d->feed->rows_read);
    }
    cli_progress_end(&pr, d->feed->rows_read);
    cli_data_rewind(d);
  }
  cli_label_set_finish(set, out);
}

/* ---- failures of the library on a batch --------------------------------- */

void cli_data_fail(cli_data *d, gmle_status s) {
  long long r = d->ark ? cli_find_row(d->ctx) : -1;
  for (size_t u = 0; r >= 0 && u < d->n_utts; u++) {
    const gmle_utterance *g = &d->utts[u];
    if ((size_t)r >= g->row0 && (size_t)r < g->row0 + g->n_rows)
      cli_die(cli_exit_code(s), d->path, "utterance '%s' frame %llu: %s",
              cli_show(g->key),
              (unsigned long long)(g->frame0 + (size_t)r - g->row0),
              gmle_context_error(d->ctx));
  }
  /* CSV: name the file line too, as a parse error does ("FILE:LINE"). */
  long long br = cli_find_row(d->ctx);
  const batch *b = d->feed->held;
  uint64_t fl =
      br >= 0 && b && b->lines && (size_t)br < b->n ? b->lines[br] : 0;
  if (fl) {
    char what[4096];
    snprintf(what, sizeof what, "%s:%llu", d->path, (unsigned long long)fl);
    cli_fail(d->ctx, s, what, (long long)d->row0);
  }
  cli_fail(d->ctx, s, d->path, (long long)d->row0);
}

void cli_data_close(cli_data *d) {
  cli_feed *f = d->feed;
  feed_reset(f);
  pthread_mutex_destroy(&f->mu);
  pthread_cond_destroy(&f->cv);
  for (int k = 0; k < 2; k++) {
    batch *b = &f->b[k];
    free(b->buf);
    free(b->labels);
    free(b->ilabels);
    free(b->idx);
    free(b->utts);
    free(b->keys);
    free(b->lines);
  }
  free_kept(f);
  free(f);
  cli_uttmap_free(d->utt2);
  gmle_reader_free(d->x);
  gmle_reader_free(d->lab);
  gmle_context_free(d->rctx);
  memset(d, 0, sizeof *d);
}
