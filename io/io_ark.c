/*
 * io_ark.c -- the Kaldi table reader behind gmle_reader_open("ark:...",
 * "scp:...", "ark:-") and gmle_reader_open_ark_memory: rspecifiers, script
 * files, and the rows of successive utterances streamed into the caller's
 * batches (kaldi.c parses the objects).
 */
#include "kaldi.h"
#include "reader_format.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef enum ark_src { SRC_FILE, SRC_STDIN, SRC_MEM, SRC_SCP } ark_src;

typedef struct ark_state {
  ark_src src;
  char *file;     /* ark: the archive's path; scp: the script's path */
  gmle__kd_in in; /* the archive, or the data file of the current entry */
  int in_open;
  char *cur_path; /* scp: the path of the file open in `in` */
  size_t cur_cap;
  gmle__kd_in scp; /* scp: the script file */
  uint64_t scp_line;
  char *line; /* scp: the current line */
  size_t line_cap;
  const void *mem;
  size_t mem_size;
  gmle_dtype text_dtype;
  gmle__kd_obj obj;
  int have_obj; /* an object begun and not finished */
  int ended;    /* no more objects */
  char *key;
  size_t key_cap;
  uint64_t index; /* of the current object */
  int32_t *ibuf;  /* labels */
  size_t ibuf_cap;
  int64_t *iout;       /* read_int_labels: where the labels go, not as text */
  gmle_utterance *utt; /* of the last read */
  size_t n_utt, utt_cap;
  char *keys; /* their keys, NUL-separated */
  size_t keys_len, keys_cap;
} ark_state;

/* ------------------------------------------------------------------------ */
/* Specifiers                                                               */
/* ------------------------------------------------------------------------ */

/* "ark,t:path" -> *kind 'a' or 's', *path after the colon; the options in
 * `allowed` (comma-separated list) are accepted, t/b reported in *text.
 * Returns 0 when s is not a specifier (no "ark"/"scp" before a colon), 1
 * when it is, -1 (message on ctx) for an unknown option. */
static int parse_spec(const gmle_context *ctx, const char *s,
                      const char *const *allowed, char *kind, const char **path,
                      int *text) {
  const char *colon = strchr(s, ':');
  if (!colon)
    return 0;
  *kind = 0;
  *text = 0;
  const char *p = s;
  while (p < colon) {
    const char *e = memchr(p, ',', (size_t)(colon - p));
    if (!e)
      e = colon;
    size_t n = (size_t)(e - p);
    if (n == 3 && memcmp(p, "ark", 3) == 0 && !*kind) {
      *kind = 'a';
    } else if (n == 3 && memcmp(p, "scp", 3) == 0 && !*kind) {
      *kind = 's';
    } else {
      if (p == s)
        return 0; /* not a specifier ("C:/..."): a plain path */
      size_t k = 0;
      while (allowed[k] &&
             !(strlen(allowed[k]) == n && memcmp(allowed[k], p, n) == 0))
        k++;
      if (!allowed[k]) {
        gmle__error(ctx, GMLE_E_INVALID_ARG,
                    "%s: unknown option '%.*s' in a Kaldi specifier", s, (int)n,
                    p);
        return -1;
      }
      if (n == 1 && (*p == 't' || *p == 'b'))
        *text = *p == 't';
    }
    p = e + 1;
  }
  if (!*kind)
    return 0;
  *path = colon + 1;
  return 1;
}

int gmle__ark_is_rspecifier(const char *s) {
  return (strncmp(s, "ark", 3) == 0 || strncmp(s, "scp", 3) == 0) &&
         (s[3] == ':' || s[3] == ',');
}

static const char *const read_opts[] = {"t", "b", "s", "cs", "ns", "nf",
                                        "f", "o", "p", "bg", NULL};

/* ------------------------------------------------------------------------ */
/* Objects                                                                  */
/* ------------------------------------------------------------------------ */

/* Prefix the context's message with the script file and line. */
static gmle_status scp_context(gmle_reader *r, ark_state *st, gmle_status s) {
  char msg[GMLE__ERR_LEN];
  snprintf(msg, sizeof msg, "%s", gmle_context_error(r->ctx));
  return gmle__error(r->ctx, s, "%s (entry of %s line %llu)", msg, st->file,
                     (unsigned long long)st->scp_line);
}

/* Open the data file of a script entry (kept open while entries name it). */
static gmle_status scp_open_data(gmle_reader *r, ark_state *st,
                                 const char *path) {
  if (st->in_open && strcmp(path, st->cur_path) == 0)
    return GMLE_OK;
  if (st->in_open) {
    close(st->in.fd);
    gmle__kd_in_free(&st->in);
    st->in_open = 0;
  }
  size_t n = strlen(path);
  void *p = st->cur_path;
  GMLE_TRY(gmle__io_grow(r->ctx, &p, &st->cur_cap, n + 1, 0, 1));
  st->cur_path = p;
  memcpy(st->cur_path, path, n + 1);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return gmle__error(
        r->ctx, GMLE_E_IO, "%s: cannot open: %s (named by %s line %llu)", path,
        strerror(errno), st->file, (unsigned long long)st->scp_line);
  struct stat sb;
  if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
    close(fd);
    return gmle__error(r->ctx, GMLE_E_UNSUPPORTED,
                       "%s: not a regular file (named by %s line %llu)", path,
                       st->file, (unsigned long long)st->scp_line);
  }
  gmle_status s = gmle__kd_in_fd(&st->in, r->ctx, st->cur_path, fd, 0,
                                 (uint64_t)sb.st_size);
  if (s != GMLE_OK) {
    close(fd);
    return s;
  }
  st->in_open = 1;
  return GMLE_OK;
}

/* The next script entry: key, data file, offset. */
static gmle_status scp_next(gmle_reader *r, ark_state *st) {
  size_t len;
  int at_end;
  char *ln;
  do {
    GMLE_TRY(
        gmle__kd_read_line(&st->scp, &st->line, &st->line_cap, &len, &at_end));
    if (at_end) {
      st->ended = 1;
      return GMLE_OK;
    }
    st->scp_line++;
    ln = st->line;
    while (*ln == ' ' || *ln == '\t')
      ln++;
    while (len && (st->line[len - 1] == ' ' || st->line[len - 1] == '\t' ||
                   st->line[len - 1] == '\r'))
      st->line[--len] = '\0';
  } while (*ln == '\0');
  char *sp = ln;
  while (*sp && *sp != ' ' && *sp != '\t')
    sp++;
  if (!*sp)
    return gmle__error(r->ctx, GMLE_E_BAD_ARK,
                       "%s: line %llu: '%.200s' has a key but no file",
                       st->file, (unsigned long long)st->scp_line, ln);
  size_t klen = (size_t)(sp - ln);
  void *p = st->key;
  GMLE_TRY(gmle__io_grow(r->ctx, &p, &st->key_cap, klen + 1, 0, 1));
  st->key = p;
  memcpy(st->key, ln, klen);
  st->key[klen] = '\0';
  char *rx = sp;
  while (*rx == ' ' || *rx == '\t')
    rx++;
  size_t rlen = strlen(rx);
  if (rx[rlen - 1] == '|' || strcmp(rx, "-") == 0)
    return gmle__error(r->ctx, GMLE_E_UNSUPPORTED,
                       "%s: line %llu: '%.200s': pipes and standard input "
                       "are not supported in script files",
                       st->file, (unsigned long long)st->scp_line, rx);
  if (rx[rlen - 1] == ']')
    return gmle__error(r->ctx, GMLE_E_UNSUPPORTED,
                       "%s: line %llu: '%.200s': row/column ranges are not "
                       "supported",
                       st->file, (unsigned long long)st->scp_line, rx);
  uint64_t off = 0;
  char *colon = strrchr(rx, ':');
  if (colon && colon[1]) {
    char *q = colon + 1;
    while (*q >= '0' && *q <= '9')
      q++;
    if (*q == '\0') {
      errno = 0;
      unsigned long long v = strtoull(colon + 1, NULL, 10);
      if (errno == ERANGE)
        return gmle__error(r->ctx, GMLE_E_BAD_ARK,
                           "%s: line %llu: offset '%s' is too large", st->file,
                           (unsigned long long)st->scp_line, colon + 1);
      off = v;
      *colon = '\0';
    }
  }
  GMLE_TRY(scp_open_data(r, st, rx));
  if (off > st->in.size)
    return gmle__error(r->ctx, GMLE_E_BAD_ARK,
                       "%s: line %llu: key '%.200s': offset %llu is beyond the "
                       "end of %s (%llu bytes)",
                       st->file, (unsigned long long)st->scp_line, st->key,
                       (unsigned long long)off, st->cur_path,
                       (unsigned long long)st->in.size);
  return gmle__kd_in_seek(&st->in, off);
}

/* Begin the next object (st->ended when there is none). */
static gmle_status next_object(gmle_reader *r, ark_state *st) {
  if (st->ended)
    return GMLE_OK;
  gmle_status s;
  if (st->src == SRC_SCP) {
    s = scp_next(r, st);
    if (s == GMLE_OK && !st->ended) {
      s = gmle__kd_begin(&st->in, &st->obj, st->key, r->labels_only,
                         st->text_dtype);
      if (s != GMLE_OK)
        s = scp_context(r, st, s);
    }
  } else {
    uint64_t koff = 0;
    int at_end = 0;
    s = gmle__kd_read_key(&st->in, &st->key, &st->key_cap, &koff, &at_end);
    if (s == GMLE_OK && at_end)
      st->ended = 1;
    else if (s == GMLE_OK)
      s = gmle__kd_begin(&st->in, &st->obj, st->key, r->labels_only,
                         st->text_dtype);
  }
  if (s == GMLE_OK && !st->ended)
    st->have_obj = 1;
  return s;
}

/* ------------------------------------------------------------------------ */
/* Reading                                                                  */
/* ------------------------------------------------------------------------ */

static gmle_status add_segment(gmle_reader *r, ark_state *st, size_t row0,
                               size_t k) {
  gmle__kd_obj *o = &st->obj;
  if (st->n_utt && st->utt[st->n_utt - 1].index == st->index) {
    st->utt[st->n_utt - 1].n_rows += k;
    st->utt[st->n_utt - 1].last = o->done;
    return GMLE_OK;
  }
  void *p = st->utt;
  GMLE_TRY(gmle__io_grow(r->ctx, &p, &st->utt_cap, st->n_utt + 1, st->n_utt,
                         sizeof *st->utt));
  st->utt = p;
  size_t kl = strlen(st->key);
  p = st->keys;
  GMLE_TRY(gmle__io_grow(r->ctx, &p, &st->keys_cap, st->keys_len + kl + 1,
                         st->keys_len, 1));
  st->keys = p;
  memcpy(st->keys + st->keys_len, st->key, kl + 1);
  gmle_utterance *u = &st->utt[st->n_utt++];
  u->key = (const char *)(uintptr_t)st->keys_len; /* fixed up after read */
  st->keys_len += kl + 1;
  u->index = st->index;
  u->frame0 = o->row - k;
  u->row0 = row0;
  u->n_rows = k;
  u->last = o->done;
  return GMLE_OK;
}

static gmle_status ark_read(gmle_reader *r, void *buf, size_t max_rows,
                            size_t *n_read) {
  ark_state *st = r->impl;
  st->n_utt = 0;
  st->keys_len = 0;
  const size_t row_bytes = r->cols * gmle__dtype_size(r->dtype);
  size_t n = 0;
  gmle_status s = GMLE_OK;
  while (n < max_rows) {
    if (!st->have_obj) {
      s = next_object(r, st);
      if (s != GMLE_OK || st->ended)
        break;
    }
    size_t k = 0;
    if (r->labels_only) {
      void *p = st->ibuf;
      size_t want = max_rows - n;
      if (want > 65536)
        want = 65536;
      s = gmle__io_grow(r->ctx, &p, &st->ibuf_cap, want, 0, sizeof(int32_t));
      st->ibuf = p;
      if (s == GMLE_OK)
        s = gmle__kd_ints(&st->in, &st->obj, st->ibuf, want, &k);
      for (size_t i = 0; s == GMLE_OK && st->iout && i < k; i++)
        st->iout[n + i] = st->ibuf[i];
      for (size_t i = 0; s == GMLE_OK && !st->iout && i < k; i++) {
        char t[16];
        int len = snprintf(t, sizeof t, "%" PRId32, st->ibuf[i]);
        s = gmle__rd_label_push(r, t, (size_t)len);
      }
    } else {
      s = gmle__kd_rows(&st->in, &st->obj, r->dtype,
                        (unsigned char *)buf + n * row_bytes, max_rows - n,
                        r->cols, &k);
    }
    if (s == GMLE_OK && k)
      s = add_segment(r, st, n, k);
    if (s != GMLE_OK)
      break;
    n += k;
    if (st->obj.done) {
      st->have_obj = 0;
      st->index++;
    }
  }
  if (s != GMLE_OK) {
    if (st->src == SRC_SCP && s == GMLE_E_BAD_ARK)
      s = scp_context(r, st, s);
    st->n_utt = 0;
    st->ended = 1; /* the stream is lost; rewind to read again */
    st->have_obj = 0;
    return s;
  }
  for (size_t i = 0; i < st->n_utt; i++)
    st->utt[i].key = st->keys + (uintptr_t)st->utt[i].key;
  *n_read = n;
  return GMLE_OK;
}

/* Alignments as integers (gmle_reader_read_int_labels): the int32 elements
 * of the vectors, with the utterances of the read as for ark_read. */
static gmle_status ark_read_int_labels(gmle_reader *r, int64_t *labels,
                                       size_t max_rows, size_t *n_read) {
  ark_state *st = r->impl;
  st->iout = labels;
  gmle_status s = ark_read(r, NULL, max_rows, n_read);
  st->iout = NULL;
  return s;
}

static gmle_status ark_start(gmle_reader *r, ark_state *st) {
  st->ended = 0;
  st->have_obj = 0;
  st->index = 0;
  st->n_utt = 0;
  st->scp_line = 0;
  if (st->src == SRC_SCP)
    GMLE_TRY(gmle__kd_in_seek(&st->scp, 0));
  else
    GMLE_TRY(gmle__kd_in_seek(&st->in, 0));
  return next_object(r, st);
}

static gmle_status ark_rewind(gmle_reader *r) {
  ark_state *st = r->impl;
  if (st->src == SRC_STDIN)
    return gmle__error(r->ctx, GMLE_E_UNSUPPORTED,
                       "%s: an archive on standard input can be read only "
                       "once",
                       r->path);
  return ark_start(r, st);
}

static void ark_free(gmle_reader *r) {
  ark_state *st = r->impl;
  if (!st)
    return;
  if (st->in_open) {
    if (st->src == SRC_FILE || st->src == SRC_SCP)
      close(st->in.fd);
    gmle__kd_in_free(&st->in);
  }
  if (st->src == SRC_SCP) {
    close(st->scp.fd);
    gmle__kd_in_free(&st->scp);
  }
  gmle__kd_obj_free(&st->obj);
  gmle__free(st->file);
  gmle__free(st->cur_path);
  gmle__free(st->line);
  gmle__free(st->key);
  gmle__free(st->ibuf);
  gmle__free(st->utt);
  gmle__free(st->keys);
  gmle__free(st);
  r->impl = NULL;
}

size_t gmle_reader_utterances(const gmle_reader *r,
                              const gmle_utterance **out) {
  if (out)
    *out = NULL;
  if (!r || r->format != GMLE__RD_ARK || !r->impl)
    return 0;
  const ark_state *st = r->impl;
  if (out && st->n_utt)
    *out = st->utt;
  return st->n_utt;
}

/* ------------------------------------------------------------------------ */
/* Opening                                                                  */
/* ------------------------------------------------------------------------ */

static gmle_status open_fd(gmle_reader *r, ark_state *st, gmle__kd_in *in,
                           const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return gmle__error(r->ctx, GMLE_E_IO, "%s: cannot open: %s", path,
                       strerror(errno));
  struct stat sb;
  if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
    close(fd);
    return gmle__error(r->ctx, GMLE_E_UNSUPPORTED,
                       "%s: not a regular file (for standard input say "
                       "ark:-)",
                       path);
  }
  /* Messages name the archive as it was given ("ark:feats.ark"). */
  gmle_status s =
      gmle__kd_in_fd(in, r->ctx, in == &st->scp ? st->file : r->path, fd, 0,
                     (uint64_t)sb.st_size);
  if (s != GMLE_OK)
    close(fd);
  return s;
}

static gmle_status ark_setup(gmle_reader *r, ark_state *st,
                             const gmle_reader_options *opt) {
  if (opt->ark_dtype != 0 && opt->ark_dtype != GMLE_F32 &&
      opt->ark_dtype != GMLE_F64)
    return gmle__error(r->ctx, GMLE_E_INVALID_ARG,
                       "gmle_reader_open: ark_dtype must be 0, GMLE_F32 or "
                       "GMLE_F64, not %d",
                       opt->ark_dtype);
  if (opt->label_column)
    return gmle__error(r->ctx, GMLE_E_INVALID_ARG,
                       "%s: a Kaldi table has no label column", r->path);
  st->text_dtype = opt->ark_dtype ? (gmle_dtype)opt->ark_dtype : GMLE_F32;
  r->format = GMLE__RD_ARK;
  r->labels_only = opt->labels_only != 0;
  r->has_labels = r->labels_only;
  r->impl = st;
  r->read = ark_read;
  if (r->labels_only)
    r->read_int_labels = ark_read_int_labels;
  r->rewind = ark_rewind;
  r->free_impl = ark_free;
  r->dtype = st->text_dtype;
  GMLE_TRY(next_object(r, st));
  if (!st->ended && !r->labels_only) {
    r->cols = st->obj.cols;
    if (!opt->ark_dtype)
      r->dtype = st->obj.kind == GMLE__KD_DM ? GMLE_F64 : GMLE_F32;
  }
  st->text_dtype = r->dtype; /* later text matrices: in the reader's type */
  return GMLE_OK;
}

static gmle_status new_reader(gmle_context *ctx, const char *name,
                              gmle_reader **out, ark_state **st) {
  gmle_reader *r = gmle__calloc(1, sizeof *r);
  ark_state *s = gmle__calloc(1, sizeof *s);
  size_t n = strlen(name);
  char *path = gmle__malloc(n + 1);
  if (!r || !s || !path) {
    gmle__free(r);
    gmle__free(s);
    gmle__free(path);
    return gmle__error(ctx, GMLE_E_OUT_OF_MEMORY,
                       "%s: cannot allocate a reader", name);
  }
  memcpy(path, name, n + 1);
  r->ctx = ctx;
  r->path = path;
  r->fd = -1;
  r->format = GMLE__RD_ARK;
  *out = r;
  *st = s;
  return GMLE_OK;
}

static gmle_status finish_open(gmle_reader *r, ark_state *st,
                               const gmle_reader_options *opt, gmle_status s,
                               gmle_reader **out) {
  if (s == GMLE_OK)
    s = ark_setup(r, st, opt);
  if (s != GMLE_OK) {
    if (!r->impl) {
      r->impl = st;
      r->free_impl = ark_free;
    }
    gmle_reader_free(r);
    return s;
  }
  *out = r;
  return GMLE_OK;
}

gmle_status gmle__ark_reader_open(gmle_context *ctx, const char *spec,
                                  const gmle_reader_options *opt,
                                  gmle_reader **out) {
  char kind;
  const char *path = NULL;
  int text;
  int k = parse_spec(ctx, spec, read_opts, &kind, &path, &text);
  if (k < 0)
    return GMLE_E_INVALID_ARG;
  if (k == 0 || !path[0])
    return gmle__error(ctx, GMLE_E_INVALID_ARG,
                       "'%s' is not a Kaldi rspecifier (ark:FILE, scp:FILE "
                       "or ark:-)",
                       spec);
  size_t pl = strlen(path);
  if (path[pl - 1] == '|' || (kind == 's' && strcmp(path, "-") == 0))
    return gmle__error(ctx, GMLE_E_UNSUPPORTED,
                       "%s: pipes (and scp:-) are not supported; run the "
                       "command first, or pipe an archive to ark:-",
                       spec);
  gmle_reader *r;
  ark_state *st;
  GMLE_TRY(new_reader(ctx, spec, &r, &st));
  gmle_status s = GMLE_OK;
  st->file = gmle__malloc(pl + 1);
  if (!st->file)
    s = gmle__error(ctx, GMLE_E_OUT_OF_MEMORY, "%s: out of memory", spec);
  else
    memcpy(st->file, path, pl + 1);
  if (s == GMLE_OK && kind == 's') {
    st->src = SRC_SCP;
    s = open_fd(r, st, &st->scp, path); /* closed by ark_free */
    if (s != GMLE_OK)
      st->src = SRC_FILE; /* nothing of the script to close */
  } else if (s == GMLE_OK && strcmp(path, "-") == 0) {
    st->src = SRC_STDIN;
    s = gmle__kd_in_fd(&st->in, ctx, "ark:-", STDIN_FILENO, 0, UINT64_MAX);
    st->in_open = s == GMLE_OK;
  } else if (s == GMLE_OK) {
    st->src = SRC_FILE;
    s = open_fd(r, st, &st->in, path);
    st->in_open = s == GMLE_OK;
  }
  return finish_open(r, st, opt, s, out);
}

gmle_status gmle_reader_open_ark_memory(gmle_context *ctx, const void *data,
                                        size_t size,
                                        const gmle_reader_options *opt,
                                        gmle_reader **out) {
  gmle__clear_error(ctx);
  if (!out)
    return gmle__error(ctx, GMLE_E_INVALID_ARG,
                       "gmle_reader_open_ark_memory: out is NULL");
  *out = NULL;
  if (!ctx || (!data && size))
    return gmle__error(ctx, GMLE_E_INVALID_ARG,
                       "gmle_reader_open_ark_memory: NULL context or data");
  gmle_reader_options def;
  if (!opt) {
    gmle_reader_options_init(&def);
    opt = &def;
  }
  gmle_reader *r;
  ark_state *st;
  GMLE_TRY(new_reader(ctx, "<memory>", &r, &st));
  st->src = SRC_MEM;
  gmle__kd_in_mem(&st->in, ctx, "<memory>", data ? data : "", size);
  st->in_open = 1;
  return finish_open(r, st, opt, GMLE_OK, out);
}
