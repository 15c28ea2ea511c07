/*
 * io_ark_writer.c -- writing Kaldi archives ("ark:FILE" binary, "ark,t:FILE"
 * text) of float/double matrices or vectors, one object per key, streamed
 * row by row. A binary object's row count is written as 0 at begin and
 * patched at end, so an utterance never has to be held whole. The file is
 * written through gmle__atomic_file (temporary file, renamed at commit).
 */
#include "atomic_file.h"
#include "io_internal.h"
#include "kaldi.h"

#include <stdint.h>
#include <string.h>
#include <sys/types.h>

struct gmle_ark_writer {
  gmle_context *ctx;
  gmle__atomic_file af;
  int text;
  int failed;
  gmle_elem elem;
  size_t cols; /* 0: vectors */
  int open_obj;
  uint64_t count_off; /* binary: offset of the row count of the object */
  uint64_t rows;      /* rows of the current object */
  char *key;          /* of the current object (messages) */
  locale_t cloc;
};

static gmle_status wfail(gmle_ark_writer *w, gmle_status s) {
  w->failed = 1;
  return s;
}

static gmle_status wput(gmle_ark_writer *w, const void *p, size_t n) {
  gmle_status s = gmle__atomic_write(&w->af, p, n);
  return s == GMLE_OK ? s : wfail(w, s);
}

static void st_le32(unsigned char *b, uint32_t v) {
  for (int i = 0; i < 4; i++)
    b[i] = (unsigned char)(v >> (8 * i));
}

gmle_status gmle_ark_writer_open(gmle_context *ctx, const char *wspecifier,
                                 gmle_elem elem, size_t cols,
                                 gmle_ark_writer **out) {
  gmle__clear_error(ctx);
  if (!out)
    return gmle__error(ctx, GMLE_E_INVALID_ARG,
                       "gmle_ark_writer_open: out is NULL");
  *out = NULL;
  if (!ctx || !wspecifier)
    return gmle__error(ctx, GMLE_E_INVALID_ARG,
                       "gmle_ark_writer_open: NULL context or wspecifier");
  if (elem != GMLE_ELEM_F32 && elem != GMLE_ELEM_F64)
    return gmle__error(ctx, GMLE_E_INVALID_ARG,
                       "%s: Kaldi archives hold float32 or float64 values",
                       wspecifier);
  if (cols > INT32_MAX)
    return gmle__error(ctx, GMLE_E_TOO_LARGE,
                       "%s: %zu columns (Kaldi allows at most %d)", wspecifier,
                       cols, INT32_MAX);
  const char *colon = strchr(wspecifier, ':');
  int text = 0, is_ark = 0;
  for (const char *p = wspecifier; colon && p < colon;) {
    const char *e = memchr(p, ',', (size_t)(colon - p));
    if (!e)
      e = colon;
    size_t n = (size_t)(e - p);
    if (n == 3 && memcmp(p, "ark", 3) == 0)
      is_ark = 1;
    else if (n == 3 && memcmp(p, "scp", 3) == 0)
      return gmle__error(ctx, GMLE_E_UNSUPPORTED,
                         "%s: writing script files is not supported; write "
                         "ark:FILE",
                         wspecifier);
    else if (n == 1 && (*p == 't' || *p == 'b'))
      text = *p == 't';
    else if (!((n == 1 && (*p == 'f' || *p == 'p')) ||
               (n == 2 && memcmp(p, "nf", 2) == 0)))
      return gmle__error(ctx, GMLE_E_INVALID_ARG,
                         "%s: unknown option '%.*s' in a Kaldi wspecifier",
                         wspecifier, (int)n, p);
    p = e + 1;
  }
  if (!colon || !is_ark || !colon[1])
    return gmle__error(ctx, GMLE_E_INVALID_ARG,
                       "'%s' is not a Kaldi wspecifier (ark:FILE or "
                       "ark,t:FILE)",
                       wspecifier);
  const char *path = colon + 1;
  size_t pl = strlen(path);
  if (strcmp(path, "-") == 0 || path[pl - 1] == '|' || path[0] == '|')
    return gmle__error(ctx, GMLE_E_UNSUPPORTED,
                       "%s: writing to standard output or a pipe is not "
                       "supported (outputs are written to a temporary file "
                       "and renamed)",
                       wspecifier);
  gmle_ark_writer *w = gmle__calloc(1, sizeof *w);
  if (!w)
    return gmle__error(ctx, GMLE_E_OUT_OF_MEMORY,
                       "%s: cannot allocate a writer", wspecifier);
  w->ctx = ctx;
  w->text = text;
  w->elem = elem;
  w->cols = cols;
  if (text) {
    w->cloc = gmle__io_new_c_locale(ctx);
    if (w->cloc == (locale_t)0) {
      gmle__free(w);
      return GMLE_E_OUT_OF_MEMORY;
    }
  }
  gmle_status s = gmle__atomic_open(ctx, path, &w->af);
  if (s == GMLE_OK && !text && !w->af.o.seekable) {
    gmle__atomic_abort(&w->af);
    s = gmle__error(ctx, GMLE_E_UNSUPPORTED,
                    "%s: a binary archive needs a seekable file (row counts "
                    "are patched); write a text archive (ark,t:) to a pipe",
                    wspecifier);
  }
  if (s != GMLE_OK) {
    if (w->cloc != (locale_t)0)
      freelocale(w->cloc);
    gmle__free(w);
    return s;
  }
  *out = w;
  return GMLE_OK;
}

gmle_status gmle_ark_writer_begin(gmle_ark_writer *w, const char *key) {
  if (!w)
    return GMLE_E_INVALID_ARG;
  gmle__clear_error(w->ctx);
  if (w->failed || !w->af.f)
    return gmle__error(w->ctx, GMLE_E_INVALID_ARG,
                       "gmle_ark_writer_begin: the writer has failed");
  if (w->open_obj)
    return gmle__error(w->ctx, GMLE_E_INVALID_ARG,
                       "%s: key '%.200s': the object of key '%.200s' is not "
                       "ended",
                       w->af.path, key ? key : "", w->key);
  size_t n = key ? strlen(key) : 0;
  if (n == 0 || n >= GMLE__KD_MAX_KEY)
    return gmle__error(w->ctx, GMLE_E_INVALID_ARG,
                       "%s: a key must have 1 to %zu bytes (got %zu)",
                       w->af.path, GMLE__KD_MAX_KEY - 1, n);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)key[i];
    if (c <= 0x20 || c == 0x7f)
      return gmle__error(w->ctx, GMLE_E_INVALID_ARG,
                         "%s: key '%.200s': byte %zu is a space or a control "
                         "character",
                         w->af.path, key, i);
  }
  char *k = gmle__malloc(n + 1);
  if (!k)
    return gmle__error(w->ctx, GMLE_E_OUT_OF_MEMORY, "out of memory");
  memcpy(k, key, n + 1);
  gmle__free(w->key);
  w->key = k;
  GMLE_TRY(wput(w, key, n));
  const int dbl = w->elem == GMLE_ELEM_F64;
  if (w->text)
    GMLE_TRY(wput(w, w->cols ? "  [" : "  [ ", w->cols ? 3 : 4));
  else {
    unsigned char h[16];
    size_t len = 0;
    memcpy(h, " \0B", 3);
    h[3] = dbl ? 'D' : 'F';
    h[4] = w->cols ? 'M' : 'V';
    h[5] = ' ';
    h[6] = 4;
    st_le32(h + 7, 0); /* rows, patched at end */
    len = 11;
    if (w->cols) {
      h[11] = 4;
      st_le32(h + 12, (uint32_t)w->cols);
      len = 16;
    }
    w->count_off = w->af.offset + 7; /* ' ' \0B "FM " 4 */
    GMLE_TRY(wput(w, h, len));
  }
  w->open_obj = 1;
  w->rows = 0;
  return GMLE_OK;
}

static gmle_status put_text(gmle_ark_writer *w, const unsigned char *p,
                            size_t n_rows) {
  const int dbl = w->elem == GMLE_ELEM_F64;
  const size_t per = w->cols ? w->cols : 1;
  char num[40];
  locale_t old = uselocale(w->cloc);
  gmle_status s = GMLE_OK;
  for (size_t i = 0; i < n_rows && s == GMLE_OK; i++) {
    if (w->cols)
      s = wput(w, "\n  ", 3);
    for (size_t j = 0; j < per && s == GMLE_OK; j++) {
      int len;
      if (dbl) {
        double v;
        memcpy(&v, p + (i * per + j) * 8, 8);
        len = snprintf(num, sizeof num, "%.17g ", v);
      } else {
        float v;
        memcpy(&v, p + (i * per + j) * 4, 4);
        len = snprintf(num, sizeof num, "%.9g ", (double)v);
      }
      s = wput(w, num, (size_t)len);
    }
  }
  uselocale(old);
  return s;
}

gmle_status gmle_ark_writer_rows(gmle_ark_writer *w, const void *rows,
                                 size_t n_rows) {
  if (!w)
    return GMLE_E_INVALID_ARG;
  gmle__clear_error(w->ctx);
  if (!w->open_obj || w->failed)
    return gmle__error(w->ctx, GMLE_E_INVALID_ARG,
                       "gmle_ark_writer_rows: no object begun (or the writer "
                       "has failed)");
  if (n_rows == 0)
    return GMLE_OK;
  if (!rows)
    return gmle__error(w->ctx, GMLE_E_INVALID_ARG,
                       "gmle_ark_writer_rows: rows is NULL");
  if (n_rows > (uint64_t)INT32_MAX - w->rows)
    return wfail(w, gmle__error(w->ctx, GMLE_E_TOO_LARGE,
                                "%s: key '%.200s': more than %d rows in one "
                                "object",
                                w->af.path, w->key, INT32_MAX));
  const size_t esz = w->elem == GMLE_ELEM_F64 ? 8 : 4;
  const size_t per = w->cols ? w->cols : 1;
  size_t bytes;
  if (gmle__mul3_size(n_rows, per, esz, &bytes))
    return wfail(w, gmle__error(w->ctx, GMLE_E_TOO_LARGE,
                                "%s: %zu rows overflow size_t", w->af.path,
                                n_rows));
  w->rows += n_rows;
  if (w->text)
    return put_text(w, rows, n_rows);
  if (!gmle__host_big_endian())
    return wput(w, rows, bytes);
  const unsigned char *p = rows;
  for (size_t i = 0; i < bytes; i += esz) {
    unsigned char b[8];
    for (size_t k = 0; k < esz; k++)
      b[k] = p[i + esz - 1 - k];
    GMLE_TRY(wput(w, b, esz));
  }
  return GMLE_OK;
}

gmle_status gmle_ark_writer_end(gmle_ark_writer *w) {
  if (!w)
    return GMLE_E_INVALID_ARG;
  gmle__clear_error(w->ctx);
  if (!w->open_obj || w->failed)
    return gmle__error(w->ctx, GMLE_E_INVALID_ARG,
                       "gmle_ark_writer_end: no object begun (or the writer "
                       "has failed)");
  if (w->rows == 0)
    return wfail(w, gmle__error(w->ctx, GMLE_E_INVALID_ARG,
                                "%s: key '%.200s': an object with no rows",
                                w->af.path, w->key));
  w->open_obj = 0;
  if (w->text)
    return wput(w, "]\n", 2);
  unsigned char b[4];
  st_le32(b, (uint32_t)w->rows);
  FILE *f = w->af.f;
  if (fflush(f) != 0 || fseeko(f, (off_t)w->count_off, SEEK_SET) != 0 ||
      fwrite(b, 1, 4, f) != 4 || fflush(f) != 0 ||
      fseeko(f, (off_t)w->af.offset, SEEK_SET) != 0)
    return wfail(w, gmle__error(w->ctx, GMLE_E_IO,
                                "%s: byte %llu: cannot write the row count of "
                                "key '%.200s'",
                                w->af.path, (unsigned long long)w->count_off,
                                w->key));
  return GMLE_OK;
}

gmle_status gmle_ark_writer_put(gmle_ark_writer *w, const char *key,
                                const void *rows, size_t n_rows) {
  GMLE_TRY(gmle_ark_writer_begin(w, key));
  GMLE_TRY(gmle_ark_writer_rows(w, rows, n_rows));
  return gmle_ark_writer_end(w);
}

static void writer_free(gmle_ark_writer *w) {
  if (w->cloc != (locale_t)0)
    freelocale(w->cloc);
  gmle__free(w->key);
  gmle__free(w);
}

gmle_status gmle_ark_writer_commit(gmle_ark_writer *w) {
  if (!w)
    return GMLE_E_INVALID_ARG;
  gmle_context *ctx = w->ctx;
  gmle__clear_error(ctx);
  gmle_status s = GMLE_OK;
  if (w->failed)
    s = gmle__error(ctx, GMLE_E_INVALID_ARG,
                    "gmle_ark_writer_commit: the writer has failed");
  else if (w->open_obj)
    s = gmle__error(ctx, GMLE_E_INVALID_ARG,
                    "%s: key '%.200s': the last object is not ended",
                    w->af.path, w->key);
  if (s == GMLE_OK)
    s = gmle__atomic_commit(&w->af);
  else
    gmle__atomic_abort(&w->af);
  writer_free(w);
  return s;
}

void gmle_ark_writer_abort(gmle_ark_writer *w) {
  if (!w)
    return;
  gmle__atomic_abort(&w->af);
  writer_free(w);
}
