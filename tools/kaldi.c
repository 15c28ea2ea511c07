/* kaldi.c -- the command's side of Kaldi tables: utt2label files, text
 * outputs written atomically, and per-utterance accumulation of scores. */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cli_is_kaldi(const char *path) {
  return (strncmp(path, "ark", 3) == 0 || strncmp(path, "scp", 3) == 0) &&
         (path[3] == ':' || path[3] == ',');
}

/* ---- utt2label --------------------------------------------------------------
 */

struct cli_uttmap {
  size_t cap, n;
  char **key, **label;
};

static uint64_t hash_key(const char *s) {
  uint64_t h = 1469598103934665603ull; /* FNV-1a */
  for (; *s; s++) {
    h ^= (unsigned char)*s;
    h *= 1099511628211ull;
  }
  return h;
}

static size_t slot_of(const cli_uttmap *m, const char *key) {
  size_t i = (size_t)hash_key(key) & (m->cap - 1);
  while (m->key[i] && strcmp(m->key[i], key) != 0)
    i = (i + 1) & (m->cap - 1);
  return i;
}

static void map_grow(cli_uttmap *m) {
  char **ok = m->key, **ol = m->label;
  size_t oc = m->cap;
  m->cap = oc ? oc * 2 : 1024;
  m->key = cli_xcalloc(m->cap, sizeof *m->key);
  m->label = cli_xcalloc(m->cap, sizeof *m->label);
  for (size_t i = 0; i < oc; i++)
    if (ok[i]) {
      size_t j = slot_of(m, ok[i]);
      m->key[j] = ok[i];
      m->label[j] = ol[i];
    }
  free(ok);
  free(ol);
}

cli_uttmap *cli_uttmap_load(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f)
    cli_die(CLI_EXIT_FILE, path, "cannot open: %s", strerror(errno));
  cli_uttmap *m = cli_xcalloc(1, sizeof *m);
  map_grow(m);
  char *line = NULL;
  size_t cap = 0, lineno = 0;
  ssize_t len;
  while ((len = getline(&line, &cap, f)) >= 0) {
    lineno++;
    if (memchr(line, '\0', (size_t)len))
      cli_die(CLI_EXIT_FILE, path, "line %zu: a NUL byte (not a text file)",
              lineno);
    char *tok[3] = {NULL, NULL, NULL};
    size_t nt = 0;
    for (char *p = strtok(line, " \t\r\n"); p; p = strtok(NULL, " \t\r\n"))
      if (nt < 3)
        tok[nt++] = p;
      else
        nt++;
    if (nt == 0)
      continue;
    if (nt != 2)
      cli_die(CLI_EXIT_FILE, path,
              "line %zu: %zu fields; an utt2label line is 'UTTERANCE LABEL'",
              lineno, nt);
    if ((m->n + 1) * 2 > m->cap)
      map_grow(m);
    size_t i = slot_of(m, tok[0]);
    if (m->key[i])
      cli_die(CLI_EXIT_FILE, path, "line %zu: utterance '%s' is listed twice",
              lineno, cli_show(tok[0]));
    m->key[i] = cli_xstrdup(tok[0]);
    m->label[i] = cli_xstrdup(tok[1]);
    m->n++;
  }
  int err = ferror(f);
  free(line);
  fclose(f);
  if (err)
    cli_die(CLI_EXIT_FILE, path, "read error");
  if (m->n == 0)
    cli_die(CLI_EXIT_DATA, path, "no 'UTTERANCE LABEL' lines");
  return m;
}

const char *cli_uttmap_get(const cli_uttmap *m, const char *utt) {
  size_t i = slot_of(m, utt);
  return m->key[i] ? m->label[i] : NULL;
}

void cli_uttmap_classes(const cli_uttmap *m, cli_classes *out) {
  cli_label_set *set = cli_label_set_new();
  for (size_t i = 0; i < m->cap; i++)
    if (m->key[i])
      cli_label_set_add(set, m->label[i]);
  cli_label_set_finish(set, out);
}

void cli_uttmap_free(cli_uttmap *m) {
  if (!m)
    return;
  for (size_t i = 0; i < m->cap; i++) {
    free(m->key[i]);
    free(m->label[i]);
  }
  free(m->key);
  free(m->label);
  free(m);
}

/* ---- text outputs
 * ------------------------------------------------------------ */

static void textout_abort(void *p) {
  cli_textout *t = p;
  gmle_outfile_abort(t->out);
  t->out = NULL;
  t->f = NULL;
}

void cli_textout_open(cli_textout *t, gmle_context *ctx, const char *path) {
  t->path = cli_xstrdup(path);
  t->ctx = ctx;
  gmle_status s = gmle_outfile_open(ctx, path, &t->out);
  if (s != GMLE_OK)
    cli_fail(ctx, s, path, -1);
  t->f = gmle_outfile_file(t->out);
  cli_on_fail(textout_abort, t);
}

void cli_textout_commit(cli_textout *t) {
  cli_on_fail_cancel(t);
  gmle_status s = gmle_outfile_commit(t->out);
  t->out = NULL;
  t->f = NULL;
  if (s != GMLE_OK)
    cli_fail(t->ctx, s, t->path, -1);
  free(t->path);
  t->path = NULL;
}

/* ---- per-utterance accumulation
 * ------------------------------------------------ */

struct cli_uttacc {
  size_t C;
  double *log_prior; /* [C] */
  double *sums;      /* [C] of the utterance in progress */
  uint64_t frames;
};

cli_uttacc *cli_uttacc_new(const gmle_model *m, const cli_classes *cls) {
  cli_uttacc *a = cli_xcalloc(1, sizeof *a);
  a->C = cls->n;
  a->log_prior = cli_xmalloc(a->C * sizeof *a->log_prior);
  a->sums = cli_xcalloc(a->C, sizeof *a->sums);
  for (size_t c = 0; c < a->C; c++) {
    double p = 0;
    gmle_model_prior(m, c, &p);
    a->log_prior[c] = p > 0 ? log(p) : -INFINITY;
  }
  return a;
}

void cli_uttacc_add(cli_uttacc *a, const cli_data *d, const double *loglik,
                    void (*done)(void *user, const char *key, uint64_t frames,
                                 const double *sums, long pred),
                    void *user) {
  const size_t C = a->C;
  for (size_t u = 0; u < d->n_utts; u++) {
    const gmle_utterance *g = &d->utts[u];
    if (g->frame0 == 0) {
      memset(a->sums, 0, C * sizeof *a->sums);
      a->frames = 0;
    }
    for (size_t i = g->row0; i < g->row0 + g->n_rows; i++)
      for (size_t c = 0; c < C; c++)
        a->sums[c] += loglik[i * C + c];
    a->frames += g->n_rows;
    if (!g->last)
      continue;
    long pred = -1; /* -1: every class scores -inf */
    double best = -INFINITY;
    for (size_t c = 0; c < C; c++) {
      double j = a->log_prior[c] + a->sums[c];
      if (j > best) {
        best = j;
        pred = (long)c;
      }
    }
    done(user, g->key, a->frames, a->sums, pred);
  }
}

void cli_uttacc_free(cli_uttacc *a) {
  if (!a)
    return;
  free(a->log_prior);
  free(a->sums);
  free(a);
}
