/*
 * kaldi.c -- parsing the objects of Kaldi tables (see kaldi.h for the
 * formats). Everything is read front to back through a buffered source, so
 * archives on pipes work as well as files; every size read from the file
 * is checked against the bytes that remain (when the size of the source is
 * known) before it is used, and nothing is allocated from such a size:
 * buffers grow only as bytes actually arrive.
 */
#include "kaldi.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------------ */
/* Byte source                                                              */
/* ------------------------------------------------------------------------ */

gmle_status gmle__kd_in_fd(gmle__kd_in *in, const gmle_context *ctx,
                           const char *name, int fd, uint64_t base,
                           uint64_t size) {
  memset(in, 0, sizeof *in);
  in->ctx = ctx;
  in->name = name;
  in->fd = fd;
  in->base = base;
  in->size = size;
  in->cap = GMLE__KD_BUF;
  in->buf = gmle__malloc(in->cap);
  if (!in->buf)
    return gmle__error(ctx, GMLE_E_OUT_OF_MEMORY,
                       "%s: cannot allocate a %zu-byte read buffer", name,
                       in->cap);
  return GMLE_OK;
}

void gmle__kd_in_mem(gmle__kd_in *in, const gmle_context *ctx, const char *name,
                     const void *data, size_t size) {
  memset(in, 0, sizeof *in);
  in->ctx = ctx;
  in->name = name;
  in->fd = -1;
  in->buf = (unsigned char *)(uintptr_t)data;
  in->cap = in->len = size;
  in->size = size;
  in->eof = 1;
}

void gmle__kd_in_free(gmle__kd_in *in) {
  if (in->fd >= 0)
    gmle__free(in->buf);
  in->buf = NULL;
  in->cap = in->len = in->pos = 0;
}

uint64_t gmle__kd_in_off(const gmle__kd_in *in) { return in->base + in->pos; }

gmle_status gmle__kd_in_seek(gmle__kd_in *in, uint64_t off) {
  if (in->fd < 0) {
    in->pos = off < in->len ? (size_t)off : in->len;
    return GMLE_OK;
  }
  if (off > (uint64_t)INT64_MAX ||
      lseek(in->fd, (off_t)off, SEEK_SET) == (off_t)-1)
    return gmle__error(in->ctx, GMLE_E_IO, "%s: cannot seek to byte %llu: %s",
                       in->name, (unsigned long long)off, strerror(errno));
  in->base = off;
  in->pos = in->len = 0;
  in->eof = 0;
  return GMLE_OK;
}

/* Make at least `need` (<= cap) bytes available from pos, fewer only at
 * the end of the source. */
static gmle_status fill(gmle__kd_in *in, size_t need) {
  if (in->len - in->pos >= need || in->eof)
    return GMLE_OK;
  size_t rem = in->len - in->pos;
  if (in->pos) {
    memmove(in->buf, in->buf + in->pos, rem);
    in->base += in->pos;
    in->pos = 0;
    in->len = rem;
  }
  while (in->len < need) {
    ssize_t got = read(in->fd, in->buf + in->len, in->cap - in->len);
    if (got < 0) {
      if (errno == EINTR)
        continue;
      return gmle__error(in->ctx, GMLE_E_IO, "%s: byte %llu: read failed: %s",
                         in->name, (unsigned long long)(in->base + in->len),
                         strerror(errno));
    }
    if (got == 0) {
      in->eof = 1;
      break;
    }
    in->len += (size_t)got;
  }
  return GMLE_OK;
}

static size_t avail(const gmle__kd_in *in) { return in->len - in->pos; }

/* The next byte, or -1 at the end. */
static gmle_status peekc(gmle__kd_in *in, int *c) {
  GMLE_TRY(fill(in, 1));
  *c = avail(in) ? in->buf[in->pos] : -1;
  return GMLE_OK;
}

/* Bytes that remain after the position, when the source's size is known. */
static int remaining(const gmle__kd_in *in, uint64_t *rem) {
  if (in->size == UINT64_MAX)
    return 0;
  uint64_t off = gmle__kd_in_off(in);
  *rem = off < in->size ? in->size - off : 0;
  return 1;
}

gmle_status gmle__kd_read_line(gmle__kd_in *in, char **buf, size_t *cap,
                               size_t *len, int *at_end) {
  size_t n = 0;
  *at_end = 0;
  for (;;) {
    GMLE_TRY(fill(in, 1));
    size_t k = avail(in);
    if (k == 0) {
      *at_end = n == 0;
      break;
    }
    const unsigned char *p = in->buf + in->pos;
    const unsigned char *nl = memchr(p, '\n', k);
    size_t i = nl ? (size_t)(nl - p) : k;
    if (n + i + 1 > GMLE__CSV_MAX_LINE)
      return gmle__error(in->ctx, GMLE_E_BAD_ARK,
                         "%s: byte %llu: a line longer than %zu bytes",
                         in->name, (unsigned long long)gmle__kd_in_off(in),
                         GMLE__CSV_MAX_LINE);
    void *q = *buf;
    GMLE_TRY(gmle__io_grow(in->ctx, &q, cap, n + i + 1, n, 1));
    *buf = q;
    memcpy(*buf + n, p, i);
    n += i;
    in->pos += i;
    if (nl) {
      in->pos++;
      break;
    }
  }
  if (*cap == 0) {
    void *q = *buf;
    GMLE_TRY(gmle__io_grow(in->ctx, &q, cap, 1, 0, 1));
    *buf = q;
  }
  (*buf)[n] = '\0';
  *len = n;
  return GMLE_OK;
}

/* ------------------------------------------------------------------------ */
/* Messages                                                                 */
/* ------------------------------------------------------------------------ */

/* GMLE_E_BAD_ARK (or s) "NAME: byte OFF: key 'KEY': MSG", located at the
 * byte offset (and at a row of the object when row_plus1 > 0). */
static gmle_status GMLE__PRINTF(6, 7)
    kd_fail_row(const gmle__kd_in *in, gmle_status s, const char *key,
                uint64_t off, uint64_t row_plus1, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  gmle_error_location loc = {.byte_offset = off, .fields = GMLE_LOC_OFFSET};
  if (row_plus1) {
    loc.row = row_plus1 - 1;
    loc.fields |= GMLE_LOC_ROW;
  }
  if (key)
    return gmle__error_at(in->ctx, s, &loc, "%s: byte %llu: key '%.200s': %s",
                          in->name, (unsigned long long)off, key, msg);
  return gmle__error_at(in->ctx, s, &loc, "%s: byte %llu: %s", in->name,
                        (unsigned long long)off, msg);
}

#define kd_fail(in, s, key, off, ...)                                          \
  kd_fail_row((in), (s), (key), (off), 0, __VA_ARGS__)
#define BAD(in, o, off, ...)                                                   \
  kd_fail((in), GMLE_E_BAD_ARK, (o)->key, (off), __VA_ARGS__)
/* BAD naming row r of the object. */
#define BAD_ROW(in, o, off, r, ...)                                            \
  kd_fail_row((in), GMLE_E_BAD_ARK, (o)->key, (off), (uint64_t)(r) + 1,        \
              __VA_ARGS__)

/* A printable rendering of up to 8 bytes at the position (for "found
 * ..."). */
static void show_bytes(gmle__kd_in *in, char *out, size_t cap) {
  size_t n = 0;
  if (fill(in, 8) != GMLE_OK) {
    snprintf(out, cap, "?");
    return;
  }
  out[0] = '\0';
  for (size_t i = 0; i < 8 && i < avail(in) && n + 5 < cap; i++) {
    unsigned char c = in->buf[in->pos + i];
    if (c >= 0x21 && c < 0x7f)
      out[n++] = (char)c, out[n] = '\0';
    else
      n += (size_t)snprintf(out + n, cap - n, "\\x%02x", c);
  }
  if (!n)
    snprintf(out, cap, "the end of the file");
}

/* ------------------------------------------------------------------------ */
/* Keys                                                                     */
/* ------------------------------------------------------------------------ */

static int is_ws(int c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
         c == '\f';
}

gmle_status gmle__kd_read_key(gmle__kd_in *in, char **key, size_t *cap,
                              uint64_t *key_off, int *at_end) {
  int c;
  *at_end = 0;
  for (;;) {
    GMLE_TRY(peekc(in, &c));
    if (c < 0) {
      *at_end = 1;
      return GMLE_OK;
    }
    if (!is_ws(c))
      break;
    in->pos++;
  }
  *key_off = gmle__kd_in_off(in);
  size_t n = 0;
  for (;;) {
    GMLE_TRY(peekc(in, &c));
    if (c < 0 || is_ws(c) || c < 0x20 || c == 0x7f)
      break;
    if (n + 2 > GMLE__KD_MAX_KEY)
      return kd_fail(in, GMLE_E_BAD_ARK, NULL, *key_off,
                     "a key longer than %zu bytes (not a Kaldi archive?)",
                     GMLE__KD_MAX_KEY);
    void *p = *key;
    GMLE_TRY(gmle__io_grow(in->ctx, &p, cap, n + 2, n, 1));
    *key = p;
    (*key)[n++] = (char)c;
    in->pos++;
  }
  if (n == 0) {
    char found[48];
    show_bytes(in, found, sizeof found);
    return kd_fail(in, GMLE_E_BAD_ARK, NULL, *key_off,
                   "expected a key, found %s", found);
  }
  (*key)[n] = '\0';
  if (c == ' ' || c == '\t') {
    in->pos++;
    return GMLE_OK;
  }
  if (c == '\n')
    return GMLE_OK; /* Kaldi accepts a newline and leaves it */
  char found[48];
  show_bytes(in, found, sizeof found);
  return kd_fail(in, GMLE_E_BAD_ARK, *key, gmle__kd_in_off(in),
                 "the key is not followed by a space (found %s)", found);
}

/* ------------------------------------------------------------------------ */
/* Binary headers                                                           */
/* ------------------------------------------------------------------------ */

static uint32_t le32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}

static float lef32(const unsigned char *p) {
  uint32_t u = le32(p);
  float f;
  memcpy(&f, &u, 4);
  return f;
}

static double lef64(const unsigned char *p) {
  uint64_t u = (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
  double d;
  memcpy(&d, &u, 8);
  return d;
}

/* A binary int32: the size byte 4, then 4 bytes. */
static gmle_status read_i32(gmle__kd_in *in, const gmle__kd_obj *o,
                            const char *what, int32_t *v) {
  uint64_t off = gmle__kd_in_off(in);
  GMLE_TRY(fill(in, 5));
  if (avail(in) < 1)
    return BAD(in, o, off, "truncated before %s", what);
  unsigned char sz = in->buf[in->pos];
  if (sz != 4)
    return BAD(in, o, off,
               "size byte %u before %s (expected 4: a 32-bit "
               "integer)",
               sz, what);
  if (avail(in) < 5)
    return BAD(in, o, off, "truncated in %s", what);
  *v = (int32_t)le32(in->buf + in->pos + 1);
  in->pos += 5;
  return GMLE_OK;
}

/* Check that n items of `size` bytes fit in what remains. */
static gmle_status check_room(gmle__kd_in *in, const gmle__kd_obj *o,
                              uint64_t n, uint64_t size, const char *what) {
  uint64_t rem;
  if (!remaining(in, &rem))
    return GMLE_OK;
  if (n > UINT64_MAX / size || n * size > rem)
    return BAD(in, o, gmle__kd_in_off(in),
               "%s: %llu x %llu bytes, but only %llu bytes remain in the "
               "file",
               what, (unsigned long long)n, (unsigned long long)size,
               (unsigned long long)rem);
  return GMLE_OK;
}

/* Read n bytes into *buf (grown as the bytes arrive, never ahead of them).
 */
static gmle_status read_grow(gmle__kd_in *in, const gmle__kd_obj *o,
                             unsigned char **buf, size_t *cap, uint64_t n,
                             const char *what) {
  if (n > SIZE_MAX)
    return BAD(in, o, gmle__kd_in_off(in), "%s: %llu bytes is too large", what,
               (unsigned long long)n);
  size_t done = 0;
  while (done < n) {
    GMLE_TRY(fill(in, 1));
    size_t k = avail(in);
    if (k == 0)
      return BAD(in, o, gmle__kd_in_off(in),
                 "truncated: %s needs %llu more bytes", what,
                 (unsigned long long)(n - done));
    if (k > n - done)
      k = (size_t)n - done;
    void *p = *buf;
    GMLE_TRY(gmle__io_grow(in->ctx, &p, cap, done + k, done, 1));
    *buf = p;
    memcpy(*buf + done, in->buf + in->pos, k);
    in->pos += k;
    done += k;
  }
  return GMLE_OK;
}

static gmle_status begin_binary(gmle__kd_in *in, gmle__kd_obj *o, int int_vec) {
  const uint64_t off = o->off; /* the object's "\0B" */
  GMLE_TRY(fill(in, 8));
  if (avail(in) && in->buf[in->pos] == 4) { /* an integer vector */
    if (!int_vec)
      return BAD(in, o, off,
                 "an integer vector (alignment) where a matrix "
                 "is expected");
    int32_t n;
    GMLE_TRY(read_i32(in, o, "the vector's length", &n));
    if (n <= 0)
      return BAD(in, o, off, "vector length %d (must be >= 1)", (int)n);
    GMLE_TRY(check_room(in, o, (uint64_t)n, 5, "the vector's elements"));
    o->kind = GMLE__KD_IVEC;
    o->rows = (uint64_t)n;
    o->cols = 1;
    return GMLE_OK;
  }
  char tok[8];
  size_t t = 0;
  while (t < avail(in) && t < 4 && in->buf[in->pos + t] != ' ')
    tok[t] = (char)in->buf[in->pos + t], t++;
  tok[t] = '\0';
  if (t == avail(in))
    return BAD(in, o, off, "truncated in the object's type token");
  if (t == 4 || t == 0) {
    char found[48];
    show_bytes(in, found, sizeof found);
    return BAD(in, o, off,
               "unknown binary object (found %s; expected FM, "
               "DM, CM, CM2 or CM3)",
               found);
  }
  in->pos += t + 1;
  static const struct {
    const char *tok;
    gmle__kd_kind kind;
  } mats[] = {{"FM", GMLE__KD_FM},
              {"DM", GMLE__KD_DM},
              {"CM", GMLE__KD_CM1},
              {"CM2", GMLE__KD_CM2},
              {"CM3", GMLE__KD_CM3}};
  size_t k = 0;
  while (k < 5 && strcmp(tok, mats[k].tok) != 0)
    k++;
  if (k == 5) {
    if (strcmp(tok, "FV") == 0 || strcmp(tok, "DV") == 0)
      return BAD(in, o, off, "a %s vector (%s) where %s is expected",
                 tok[0] == 'F' ? "float" : "double", tok,
                 int_vec ? "an integer vector (alignment)" : "a matrix");
    return BAD(in, o, off,
               "unknown binary object '%s' (expected FM, DM, "
               "CM, CM2 or CM3)",
               tok);
  }
  if (int_vec)
    return BAD(in, o, off,
               "a matrix (%s) where an integer vector "
               "(alignment) is expected",
               tok);
  o->kind = mats[k].kind;
  int32_t rows, cols;
  if (o->kind == GMLE__KD_FM || o->kind == GMLE__KD_DM) {
    GMLE_TRY(read_i32(in, o, "the row count", &rows));
    GMLE_TRY(read_i32(in, o, "the column count", &cols));
  } else {
    uint64_t hoff = gmle__kd_in_off(in);
    GMLE_TRY(fill(in, 16));
    if (avail(in) < 16)
      return BAD(in, o, hoff, "truncated in the %s header", tok);
    const unsigned char *h = in->buf + in->pos;
    o->cm_min = lef32(h);
    o->cm_range = lef32(h + 4);
    rows = (int32_t)le32(h + 8);
    cols = (int32_t)le32(h + 12);
    in->pos += 16;
  }
  if (rows <= 0 || cols <= 0)
    return BAD(in, o, off,
               "%s matrix of %d rows and %d columns (both must "
               "be >= 1)",
               tok, (int)rows, (int)cols);
  o->rows = (uint64_t)rows;
  o->cols = (size_t)cols;
  const uint64_t nel = (uint64_t)rows * (uint64_t)cols;
  switch (o->kind) {
  case GMLE__KD_FM:
    return check_room(in, o, nel, 4, "the FM values");
  case GMLE__KD_DM:
    return check_room(in, o, nel, 8, "the DM values");
  case GMLE__KD_CM2:
    return check_room(in, o, nel, 2, "the CM2 values");
  case GMLE__KD_CM3:
    return check_room(in, o, nel, 1, "the CM3 values");
  default:
    break;
  }
  /* CM: per-column percentiles, then the bytes column by column. */
  uint64_t rem;
  if (remaining(in, &rem) && (nel + 8 * (uint64_t)cols > rem))
    return BAD(in, o, gmle__kd_in_off(in),
               "CM: %d columns x (8 + %d) bytes, but only %llu bytes remain "
               "in the file",
               (int)cols, (int)rows, (unsigned long long)rem);
  unsigned char *raw = NULL;
  size_t raw_cap = 0;
  gmle_status s =
      read_grow(in, o, &raw, &raw_cap, 8 * (uint64_t)cols, "CM column headers");
  if (s == GMLE_OK) {
    void *p = o->cm_pct;
    s = gmle__io_grow(in->ctx, &p, &o->cm_pct_cap, 4 * o->cols, 0,
                      sizeof(float));
    o->cm_pct = p;
  }
  if (s == GMLE_OK)
    for (size_t j = 0; j < 4 * o->cols; j++)
      o->cm_pct[j] = gmle__kd_cm_u16(
          o->cm_min, o->cm_range,
          (uint16_t)(raw[2 * j] | (unsigned)raw[2 * j + 1] << 8));
  gmle__free(raw);
  GMLE_TRY(s);
  return read_grow(in, o, &o->cm_data, &o->cm_data_cap, nel, "CM values");
}

/* ------------------------------------------------------------------------ */
/* Compressed matrices, decoded as Kaldi's CompressedMatrix::CopyToMat      */
/* ------------------------------------------------------------------------ */

/* Each operation is its own statement, in Kaldi's order, in float. */
float gmle__kd_cm_u16(float min, float range, uint16_t v) {
  float step = range * 1.52590218966964e-05F;
  float t = step * (float)v;
  return min + t;
}

float gmle__kd_cm_char(float p0, float p25, float p75, float p100,
                       unsigned char v) {
  float d, t;
  if (v <= 64) {
    d = p25 - p0;
    t = d * (float)v;
    t = t * (1 / 64.0f);
    return p0 + t;
  } else if (v <= 192) {
    d = p75 - p25;
    t = d * (float)(v - 64);
    t = t * (1 / 128.0f);
    return p25 + t;
  }
  d = p100 - p75;
  t = d * (float)(v - 192);
  t = t * (1 / 63.0f);
  return p75 + t;
}

/* ------------------------------------------------------------------------ */
/* Text                                                                     */
/* ------------------------------------------------------------------------ */

/* Skip blanks and line breaks; at ']' the matrix is closed (the ']' and
 * the rest of its line are consumed). */
static gmle_status text_lookahead(gmle__kd_in *in, gmle__kd_obj *o) {
  int c;
  for (;;) {
    GMLE_TRY(peekc(in, &c));
    if (c < 0)
      return BAD(in, o, gmle__kd_in_off(in),
                 "truncated: the text matrix is not closed by ']'");
    if (!is_ws(c))
      break;
    in->pos++;
  }
  if (c != ']')
    return GMLE_OK;
  in->pos++;
  o->done = 1; /* no more rows (the caller clears it for a first row) */
  for (;;) {   /* the rest of the line */
    GMLE_TRY(peekc(in, &c));
    if (c < 0 || c == '\n') {
      if (c == '\n')
        in->pos++;
      return GMLE_OK;
    }
    if (c != ' ' && c != '\t' && c != '\r')
      return GMLE_OK; /* the next key follows on the same line */
    in->pos++;
  }
}

/* Read the text up to (not including) a line break or, for matrices, ']'
 * into o->line. *term: the terminator ('\n', ']' or -1 at the end). */
static gmle_status text_line(gmle__kd_in *in, gmle__kd_obj *o, int matrix,
                             size_t *len, int *term) {
  size_t n = 0;
  uint64_t off = gmle__kd_in_off(in);
  for (;;) {
    GMLE_TRY(fill(in, 1));
    size_t k = avail(in);
    if (k == 0) {
      *term = -1;
      break;
    }
    const unsigned char *p = in->buf + in->pos;
    size_t i = 0;
    while (i < k && p[i] != '\n' && !(matrix && p[i] == ']') && p[i] != 0)
      i++;
    if (i < k && p[i] == 0)
      return BAD(in, o, gmle__kd_in_off(in) + i,
                 "a NUL byte in a text object (a binary object without "
                 "its \\0B header?)");
    if (n + i + 1 > GMLE__CSV_MAX_LINE)
      return BAD(in, o, off, "a text row longer than %zu bytes",
                 GMLE__CSV_MAX_LINE);
    void *q = o->line;
    GMLE_TRY(gmle__io_grow(in->ctx, &q, &o->line_cap, n + i + 1, n, 1));
    o->line = q;
    memcpy(o->line + n, p, i);
    n += i;
    in->pos += i;
    if (i < k) {
      *term = p[i];
      in->pos++;
      break;
    }
  }
  void *q = o->line;
  GMLE_TRY(gmle__io_grow(in->ctx, &q, &o->line_cap, n + 1, n, 1));
  o->line = q;
  o->line[n] = '\0';
  *len = n;
  return GMLE_OK;
}

/* Parse the numbers of o->line[0..len) into o->trow; *n receives the
 * count. f32: parse as float (strtof), so that a float printed with %.9g
 * reads back exactly. */
static gmle_status parse_numbers(gmle__kd_in *in, gmle__kd_obj *o, uint64_t off,
                                 size_t len, int f32, int ints, size_t *n) {
  size_t k = 0;
  char *p = o->line, *end = o->line + len;
  locale_t old = uselocale(o->cloc);
  gmle_status s = GMLE_OK;
  while (s == GMLE_OK) {
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r'))
      p++;
    if (p >= end)
      break;
    char *e = p;
    while (e < end && *e != ' ' && *e != '\t' && *e != '\r')
      e++;
    char save = *e;
    *e = '\0';
    char *stop = NULL;
    double v;
    errno = 0;
    if (ints) {
      long long x = strtoll(p, &stop, 10);
      v = (double)x;
      if (stop != e || errno == ERANGE || x < INT32_MIN || x > INT32_MAX)
        s = BAD(in, o, off + (uint64_t)(p - o->line),
                "'%.40s' is not a 32-bit integer", p);
    } else {
      v = f32 ? (double)strtof(p, &stop) : strtod(p, &stop);
      if (stop != e || stop == p)
        s = BAD(in, o, off + (uint64_t)(p - o->line), "'%.40s' is not a number",
                p);
      else if (errno == ERANGE && isinf(v))
        s = BAD(in, o, off + (uint64_t)(p - o->line),
                "'%.40s' is beyond the range of %s", p,
                f32 ? "float32" : "float64");
    }
    *e = save;
    if (s != GMLE_OK)
      break;
    void *q = o->trow;
    s = gmle__io_grow(in->ctx, &q, &o->trow_cap, k + 1, k, sizeof(double));
    o->trow = q;
    if (s == GMLE_OK)
      o->trow[k++] = v;
    p = e;
  }
  uselocale(old);
  *n = k;
  return s;
}

/* Read the next text row into o->trow (o->cols values on later rows). */
static gmle_status text_row(gmle__kd_in *in, gmle__kd_obj *o) {
  uint64_t off = gmle__kd_in_off(in);
  size_t len = 0, n = 0;
  int term = 0;
  GMLE_TRY(text_line(in, o, 1, &len, &term));
  if (term < 0)
    return BAD_ROW(in, o, off, o->row,
                   "truncated: text row %llu is not ended (no line "
                   "break or ']')",
                   (unsigned long long)o->row);
  GMLE_TRY(parse_numbers(in, o, off, len, o->text_f32, 0, &n));
  if (o->row == 0 && o->cols == 0) {
    o->cols = n;
  } else if (n != o->cols) {
    return BAD_ROW(in, o, off, o->row,
                   "text row %llu has %zu values, but row 0 has %zu "
                   "(ragged rows)",
                   (unsigned long long)o->row, n, o->cols);
  }
  if (term == ']') { /* the rest of the line */
    in->pos--;       /* let the lookahead see the ']' */
  }
  return text_lookahead(in, o);
}

/* ------------------------------------------------------------------------ */
/* Objects                                                                  */
/* ------------------------------------------------------------------------ */

void gmle__kd_obj_free(gmle__kd_obj *o) {
  gmle__free(o->cm_pct);
  gmle__free(o->cm_data);
  gmle__free(o->line);
  gmle__free(o->trow);
  if (o->cloc != (locale_t)0)
    freelocale(o->cloc);
  memset(o, 0, sizeof *o);
}

gmle_status gmle__kd_begin(gmle__kd_in *in, gmle__kd_obj *o, const char *key,
                           int int_vec, gmle_dtype text_dtype) {
  o->key = key;
  o->text_f32 = text_dtype == GMLE_F32;
  o->rows = 0;
  o->cols = 0;
  o->row = 0;
  o->done = 0;
  if (o->cloc == (locale_t)0) {
    o->cloc = gmle__io_new_c_locale(in->ctx);
    if (o->cloc == (locale_t)0)
      return GMLE_E_OUT_OF_MEMORY;
  }
  o->off = gmle__kd_in_off(in);
  GMLE_TRY(fill(in, 2));
  if (avail(in) == 0)
    return BAD(in, o, o->off, "truncated: the key has no object");
  if (in->buf[in->pos] == '\0') {
    if (avail(in) < 2 || in->buf[in->pos + 1] != 'B')
      return BAD(in, o, o->off,
                 "a NUL byte not followed by 'B' (a broken "
                 "binary header)");
    in->pos += 2;
    return begin_binary(in, o, int_vec);
  }
  if (int_vec) { /* text: the integers up to the end of the line */
    size_t len = 0, n = 0;
    int term = 0;
    GMLE_TRY(text_line(in, o, 0, &len, &term));
    GMLE_TRY(parse_numbers(in, o, o->off, len, 0, 1, &n));
    if (n == 0)
      return BAD(in, o, o->off, "an empty integer vector");
    o->kind = GMLE__KD_IVEC_T;
    o->rows = n;
    o->cols = 1;
    return GMLE_OK;
  }
  int c;
  for (;;) {
    GMLE_TRY(peekc(in, &c));
    if (c < 0 || !is_ws(c))
      break;
    in->pos++;
  }
  if (c != '[') {
    char found[48];
    show_bytes(in, found, sizeof found);
    return BAD(in, o, gmle__kd_in_off(in),
               "expected a binary object (\\0B) or a text matrix ('['), "
               "found %s",
               found);
  }
  in->pos++;
  o->kind = GMLE__KD_TEXT;
  /* Read the first row now, so that the column count is known. */
  GMLE_TRY(text_lookahead(in, o));
  if (o->done)
    return BAD(in, o, o->off,
               "an empty text matrix (0 rows; at least one "
               "is needed)");
  GMLE_TRY(text_row(in, o));
  if (o->cols == 0)
    return BAD(in, o, o->off, "a text matrix with 0 columns");
  o->rows = 1; /* rows parsed (the first is pending) */
  return GMLE_OK;
}

static void put_value(gmle_dtype dtype, void *out, size_t i, double v) {
  if (dtype == GMLE_F32)
    ((float *)out)[i] = (float)v;
  else
    ((double *)out)[i] = v;
}

/* Rows of a binary FM/DM/CM2/CM3 matrix (row-major element streams). */
static gmle_status rows_binary(gmle__kd_in *in, gmle__kd_obj *o,
                               gmle_dtype dtype, void *out, size_t k) {
  size_t esz = o->kind == GMLE__KD_DM    ? 8
               : o->kind == GMLE__KD_FM  ? 4
               : o->kind == GMLE__KD_CM2 ? 2
                                         : 1;
  const size_t n = k * o->cols;
  float incr = 0;
  if (o->kind == GMLE__KD_CM2)
    incr = (float)((double)o->cm_range * (1.0 / 65535.0));
  else if (o->kind == GMLE__KD_CM3)
    incr = (float)((double)o->cm_range * (1.0 / 255.0));
  for (size_t done = 0; done < n;) {
    GMLE_TRY(fill(in, esz));
    size_t m = avail(in) / esz;
    if (m == 0)
      return BAD_ROW(in, o, gmle__kd_in_off(in), o->row + done / o->cols,
                     "truncated in row %llu (of %llu)",
                     (unsigned long long)(o->row + done / o->cols),
                     (unsigned long long)o->rows);
    if (m > n - done)
      m = n - done;
    const unsigned char *p = in->buf + in->pos;
    if (o->kind == GMLE__KD_FM && dtype == GMLE_F32 &&
        !gmle__host_big_endian()) {
      memcpy((float *)out + done, p, m * 4);
    } else if (o->kind == GMLE__KD_DM && dtype == GMLE_F64 &&
               !gmle__host_big_endian()) {
      memcpy((double *)out + done, p, m * 8);
    } else {
      for (size_t i = 0; i < m; i++, p += esz) {
        double v;
        if (o->kind == GMLE__KD_FM) {
          v = lef32(p);
        } else if (o->kind == GMLE__KD_DM) {
          v = lef64(p);
        } else {
          unsigned q =
              o->kind == GMLE__KD_CM2 ? (unsigned)(p[0] | p[1] << 8) : p[0];
          float t = (float)q * incr;
          v = o->cm_min + t;
        }
        put_value(dtype, out, done + i, v);
      }
    }
    in->pos += m * esz;
    done += m;
  }
  return GMLE_OK;
}

gmle_status gmle__kd_rows(gmle__kd_in *in, gmle__kd_obj *o, gmle_dtype dtype,
                          void *out, size_t max_rows, size_t cols_expected,
                          size_t *got) {
  *got = 0;
  if (cols_expected && o->cols != cols_expected)
    return kd_fail(in, GMLE_E_DIM_MISMATCH, o->key, o->off,
                   "%zu columns, but the first matrix has %zu", o->cols,
                   cols_expected);
  const size_t osz = gmle__dtype_size(dtype);
  unsigned char *dst = out;
  if (o->kind == GMLE__KD_TEXT) {
    size_t k = 0;
    while (k < max_rows && !(o->done && o->row >= o->rows)) {
      if (o->row == o->rows) { /* nothing pending: parse the next row */
        GMLE_TRY(text_row(in, o));
        o->rows++;
      }
      for (size_t j = 0; j < o->cols; j++)
        put_value(dtype, dst + k * o->cols * osz, j, o->trow[j]);
      o->row++;
      k++;
    }
    *got = k;
    return GMLE_OK;
  }
  uint64_t left = o->rows - o->row;
  size_t k = left < max_rows ? (size_t)left : max_rows;
  if (o->kind == GMLE__KD_CM1) {
    for (size_t i = 0; i < k; i++)
      for (size_t j = 0; j < o->cols; j++) {
        const float *pc = o->cm_pct + 4 * j;
        unsigned char v = o->cm_data[j * o->rows + o->row + i];
        put_value(dtype, dst + i * o->cols * osz, j,
                  gmle__kd_cm_char(pc[0], pc[1], pc[2], pc[3], v));
      }
  } else {
    GMLE_TRY(rows_binary(in, o, dtype, out, k));
  }
  o->row += k;
  o->done = o->row == o->rows;
  *got = k;
  return GMLE_OK;
}

gmle_status gmle__kd_ints(gmle__kd_in *in, gmle__kd_obj *o, int32_t *out,
                          size_t max, size_t *got) {
  uint64_t left = o->rows - o->row;
  size_t k = left < max ? (size_t)left : max;
  for (size_t i = 0; i < k; i++) {
    if (o->kind == GMLE__KD_IVEC_T) {
      out[i] = (int32_t)o->trow[o->row + i];
    } else {
      char what[64];
      snprintf(what, sizeof what, "element %llu",
               (unsigned long long)(o->row + i));
      GMLE_TRY(read_i32(in, o, what, &out[i]));
    }
  }
  o->row += k;
  o->done = o->row == o->rows;
  *got = k;
  return GMLE_OK;
}
