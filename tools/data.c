/* data.c -- data files read in batches through gmle_reader, with their
 * labels streamed alongside. */
#include "cli.h"
#include "dist.h"

#include <stdlib.h>
#include <string.h>

/* Default batch: at most 65536 rows and about 32 MiB of input values. */
#define CLI_BATCH_BYTES ((size_t)32 << 20)
#define CLI_BATCH_ROWS ((size_t)65536)

static void open_fail(gmle_context *ctx, gmle_status s, const char *path) {
  cli_fail(ctx, s, path, -1);
}

void cli_data_open(cli_data *d, gmle_context *ctx, const char *path,
                   const char *labels_path, const char *label_column,
                   size_t batch_rows, size_t extra_bytes_per_row) {
  memset(d, 0, sizeof *d);
  d->ctx = ctx;
  d->path = path;
  d->last = UINT64_MAX;
  gmle_reader_options opt;
  gmle_reader_options_init(&opt);
  opt.label_column = label_column;
  opt.header = cli_csv_header;
  gmle_status s = gmle_reader_open(ctx, path, &opt, &d->x);
  if (s != GMLE_OK)
    open_fail(ctx, s, path);
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
    s = gmle_reader_open(ctx, labels_path, &lo, &d->lab);
    if (s != GMLE_OK)
      open_fail(ctx, s, labels_path);
    d->has_labels = 1;
    d->label_path = labels_path;
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
  if (b > SIZE_MAX / per_row)
    cli_usage_error("--batch-rows %zu is too large", b);
  d->batch = b;
  d->buf = cli_xmalloc(b * d->cols * isz);
  if (d->has_labels) {
    d->labels = cli_xmalloc(b * sizeof *d->labels);
    d->idx = cli_xmalloc(b * sizeof *d->idx);
  }
  cli_dist_share(d);
}

/* Copies of label texts kept across reads (a labels file that returns a
 * batch in more than one read: its texts are valid only until the next). */
static char **kept;
static size_t n_kept;

static void free_kept(void) {
  for (size_t i = 0; i < n_kept; i++)
    free(kept[i]);
  free(kept);
  kept = NULL;
  n_kept = 0;
}

/* Read exactly n labels from the labels file (fewer only at its end). */
static size_t read_labels(cli_data *d, size_t n) {
  size_t got = 0;
  free_kept();
  while (got < n) {
    size_t k = 0;
    if (got > 0) { /* keep what the next read would invalidate */
      kept = cli_xrealloc(kept, got * sizeof *kept);
      for (size_t i = n_kept; i < got; i++) {
        kept[i] = cli_xstrdup(d->labels[i]);
        d->labels[i] = kept[i];
      }
      n_kept = got;
    }
    gmle_status s =
        gmle_reader_read(d->lab, NULL, n - got, &k, d->labels + got);
    if (s != GMLE_OK)
      cli_fail(d->ctx, s, d->label_path, -1);
    if (k == 0)
      break;
    got += k;
  }
  return got;
}

/* Labels of the batch from the utt2label map. */
static void utt_labels(cli_data *d) {
  for (size_t u = 0; u < d->n_utts; u++) {
    const gmle_utterance *g = &d->utts[u];
    const char *l = cli_uttmap_get(d->utt2, g->key);
    if (!l)
      cli_die(CLI_EXIT_DATA, d->label_path, "no label for utterance '%s' of %s",
              cli_show(g->key), d->path);
    for (size_t i = g->row0; i < g->row0 + g->n_rows; i++)
      d->labels[i] = l;
  }
}

/* Frame labels from an alignment archive: one read of n labels, whose
 * utterances must be the data's, frame for frame. */
static void ali_labels(cli_data *d, size_t n) {
  size_t k = 0;
  gmle_status s = gmle_reader_read(d->lab, NULL, n, &k, d->labels);
  if (s != GMLE_OK)
    cli_fail(d->ctx, s, d->label_path, -1);
  const gmle_utterance *a;
  size_t na = gmle_reader_utterances(d->lab, &a), j = 0, used = 0;
  for (size_t u = 0; u < d->n_utts; u++) {
    const gmle_utterance *g = &d->utts[u];
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
            (unsigned long long)(d->rows_done + k), d->path);
}

size_t cli_data_next(cli_data *d) {
  size_t n = 0;
  d->row0 = d->rows_done;
  const size_t want = d->last - d->rows_done < d->batch
                          ? (size_t)(d->last - d->rows_done)
                          : d->batch;
  if (want == 0) { /* the end of the range, not of the file */
    d->n_utts = 0;
    return 0;
  }
  gmle_status s = gmle_reader_read(
      d->x, d->buf, want, &n,
      d->lab || d->utt2 ? NULL : (d->has_labels ? d->labels : NULL));
  if (s != GMLE_OK)
    cli_fail(d->ctx, s, d->path, -1);
  d->n_utts = gmle_reader_utterances(d->x, &d->utts);
  if (d->utt2)
    utt_labels(d);
  if (d->lab && d->ark && n > 0) {
    ali_labels(d, n);
  } else if (d->lab) {
    if (n > 0) {
      /* Label texts are owned by the reader until its next read: read them
       * all in one call when possible. */
      size_t k = read_labels(d, n);
      if (k < n)
        cli_die(CLI_EXIT_DATA, d->label_path,
                "%llu labels, but %s has more rows",
                (unsigned long long)(d->rows_done + k), d->path);
    } else {
      const char *extra = NULL;
      size_t k = 0;
      s = gmle_reader_read(d->lab, NULL, 1, &k, &extra);
      if (s != GMLE_OK)
        cli_fail(d->ctx, s, d->label_path, -1);
      if (k)
        cli_die(CLI_EXIT_DATA, d->label_path,
                "more labels than the %llu rows of %s",
                (unsigned long long)d->rows_done, d->path);
    }
  }
  d->rows_done += n;
  return n;
}

/* Back to row `first` of a reader. */
static gmle_status go_first(gmle_reader *r, uint64_t first) {
  return first ? gmle_reader_seek(r, first) : gmle_reader_rewind(r);
}

void cli_data_rewind(cli_data *d) {
  gmle_status s = go_first(d->x, d->first);
  if (s != GMLE_OK)
    cli_fail(d->ctx, s, d->path, -1);
  if (d->lab) {
    s = go_first(d->lab, d->first);
    if (s != GMLE_OK)
      cli_fail(d->ctx, s, d->label_path, -1);
  }
  d->rows_done = d->first;
  d->row0 = d->first;
}

void cli_data_range(cli_data *d, uint64_t first, uint64_t last) {
  d->first = first;
  d->last = last < first ? first : last;
  cli_data_rewind(d);
}

uint64_t cli_data_rows(const cli_data *d) { return d->rows_done - d->first; }

void cli_data_classes(cli_data *d, cli_classes *out) {
  if (d->utt2) { /* the labels of the utt2label file */
    cli_uttmap_classes(d->utt2, out);
    return;
  }
  cli_label_set *set = cli_label_set_new();
  cli_progress pr;
  if (d->lab) {
    /* Only the labels file is read. */
    cli_progress_start(&pr, "finding classes", d->total);
    uint64_t done = 0;
    for (;;) {
      size_t k = 0;
      const uint64_t left = d->last - d->first - done;
      gmle_status s = gmle_reader_read(
          d->lab, NULL, left < d->batch ? (size_t)left : d->batch, &k,
          d->labels);
      if (s != GMLE_OK)
        cli_fail(d->ctx, s, d->label_path, -1);
      if (!k)
        break;
      for (size_t i = 0; i < k; i++)
        cli_label_set_add(set, d->labels[i]);
      done += k;
      cli_progress_update(&pr, done);
    }
    cli_progress_end(&pr, done);
    cli_data_rewind(d);
  } else {
    cli_progress_start(&pr, "finding classes", d->total);
    size_t k;
    while ((k = cli_data_next(d)) > 0) {
      for (size_t i = 0; i < k; i++)
        cli_label_set_add(set, d->labels[i]);
      cli_progress_update(&pr, d->rows_done);
    }
    cli_progress_end(&pr, d->rows_done);
    cli_data_rewind(d);
  }
  cli_label_set_finish(set, out);
}

void cli_data_map(cli_data *d, const cli_classes *c, size_t n) {
  for (size_t i = 0; i < n; i++) {
    long k = cli_classes_find(c, d->labels[i]);
    if (k < 0) {
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
              (unsigned long long)(d->row0 + i), cli_show(d->labels[i]),
              cli_show(list));
    }
    d->idx[i] = (int32_t)k;
  }
}

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
  uint64_t fl = br >= 0 ? gmle_reader_row_line(d->x, (size_t)br) : 0;
  if (fl) {
    char what[4096];
    snprintf(what, sizeof what, "%s:%llu", d->path, (unsigned long long)fl);
    cli_fail(d->ctx, s, what, (long long)d->row0);
  }
  cli_fail(d->ctx, s, d->path, (long long)d->row0);
}

void cli_data_close(cli_data *d) {
  cli_uttmap_free(d->utt2);
  gmle_reader_free(d->x);
  gmle_reader_free(d->lab);
  free(d->buf);
  free(d->labels);
  free(d->idx);
  free_kept();
  memset(d, 0, sizeof *d);
}
