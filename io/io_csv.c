/*
 * io_csv.c -- streaming reader of delimited text (CSV, TSV, whitespace) and
 * of text labels files (one label per line).
 *
 * The file is read with pread into a buffer that holds at least one whole
 * line (it grows to the longest line, at most GMLE__CSV_MAX_LINE bytes), so
 * memory does not depend on the number of rows. Numbers are parsed with
 * strtod under a private "C" locale (uselocale), so LC_NUMERIC does not
 * matter. The rules are documented in include/gmle.h (DATA-FILES section).
 */
#include "reader_format.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

#define CSV_FIRST_CAP ((size_t)64 * 1024)
/* Fields a data line may have beyond the first line's before reading it
 * stops (the error is the same; the count is bounded). */
#define CSV_EXTRA_FIELDS 64

typedef struct csv_field {
  size_t beg, len; /* in the line; the text is NUL-terminated at beg+len */
  size_t col;      /* 1-based column of the field's first byte */
  int quoted;
} csv_field;

typedef struct csv_state {
  /* Input: buf[beg, end) are unconsumed bytes; fpos is the file offset of
   * buf[end]. One spare byte is always kept for a terminating NUL. */
  unsigned char *buf;
  size_t cap, beg, end;
  uint64_t fpos;
  int eof;
  uint64_t line_no; /* 1-based number of the last line returned */
  /* Layout */
  char delim;
  int ws;           /* fields are separated by runs of spaces/tabs */
  size_t nfields;   /* fields per line, label column included */
  size_t label_idx; /* SIZE_MAX: none */
  uint64_t header_line;
  uint64_t data_pos, data_line; /* rewind point */
  char **names;                 /* [r->cols] feature column names, or NULL */
  locale_t cloc;
  csv_field *f;
  size_t f_cap;
  uint64_t blank_line; /* text labels: first blank line not yet resolved */
  /* Where the last seek ended (row seek_row starts at byte seek_pos, after
   * line seek_line), so that seeking there again reads nothing. */
  int seek_known;
  uint64_t seek_row, seek_pos, seek_line, seek_blank;
} csv_state;

/* ------------------------------------------------------------------------ */
/* Lines                                                                    */
/* ------------------------------------------------------------------------ */

static uint64_t cur_pos(const csv_state *st) {
  return st->fpos - (uint64_t)(st->end - st->beg);
}

static void reset_to(csv_state *st, uint64_t pos, uint64_t line) {
  st->beg = st->end = 0;
  st->fpos = pos;
  st->eof = 0;
  st->line_no = line;
}

/* The next line, without its "\n" or "\r\n", NUL-terminated, writable, valid
 * until the next call; *line is NULL at the end of the file. */
static gmle_status next_line(gmle_reader *r, csv_state *st, char **line,
                             size_t *len) {
  for (;;) {
    unsigned char *s = st->buf + st->beg;
    size_t avail = st->end - st->beg;
    unsigned char *nl = avail ? memchr(s, '\n', avail) : NULL;
    if (nl || (st->eof && avail)) {
      size_t n = nl ? (size_t)(nl - s) : avail;
      st->beg += n + (nl ? 1 : 0);
      st->line_no++;
      if (n && s[n - 1] == '\r')
        n--;
      s[n] = '\0'; /* the '\n', the '\r', or the spare byte */
      *line = (char *)s;
      *len = n;
      return GMLE_OK;
    }
    if (st->eof) {
      *line = NULL;
      *len = 0;
      return GMLE_OK;
    }
    if (st->beg) {
      memmove(st->buf, st->buf + st->beg, avail);
      st->end = avail;
      st->beg = 0;
    }
    if (st->end + 1 >= st->cap) {
      if (st->cap >= GMLE__CSV_MAX_LINE) /* the buffer stays <= the limit */
        return gmle__error(
            r->ctx, GMLE_E_TOO_LARGE, "%s:%llu: line longer than %zu bytes",
            r->path, (unsigned long long)st->line_no + 1, GMLE__CSV_MAX_LINE);
      void *p = st->buf;
      GMLE_TRY(gmle__io_grow(r->ctx, &p, &st->cap, st->cap * 2, st->end, 1));
      st->buf = p;
    }
    ssize_t got =
        pread(r->fd, st->buf + st->end, st->cap - st->end - 1, (off_t)st->fpos);
    if (got < 0) {
      if (errno == EINTR)
        continue;
      return gmle__error(r->ctx, GMLE_E_IO, "%s: byte %llu: read failed: %s",
                         r->path, (unsigned long long)st->fpos,
                         strerror(errno));
    }
    if (got == 0)
      st->eof = 1;
    st->end += (size_t)got;
    st->fpos += (uint64_t)got;
  }
}

static int is_blank_line(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
      return 0;
  return 1;
}

static gmle_status check_nul(gmle_reader *r, csv_state *st, const char *s,
                             size_t n) {
  const char *z = memchr(s, '\0', n);
  if (z)
    return gmle__error(r->ctx, GMLE_E_BAD_FORMAT,
                       "%s:%llu:%zu: embedded NUL character (is this a "
                       "binary file?)",
                       r->path, (unsigned long long)st->line_no,
                       (size_t)(z - s) + 1);
  return GMLE_OK;
}

/* A printable excerpt of s[0..n) for messages (at most ~40 characters). */
static void excerpt(char *dst, size_t cap, const char *s, size_t n) {
  size_t j = 0;
  for (size_t i = 0; i < n && j + 8 < cap; i++) {
    unsigned char c = (unsigned char)s[i];
    if (i >= 40) {
      memcpy(dst + j, "...", 3);
      j += 3;
      break;
    }
    if (c >= 0x20 && c != 0x7f && c != '\\')
      dst[j++] = (char)c;
    else
      j += (size_t)snprintf(dst + j, cap - j, "\\x%02x", c);
  }
  dst[j] = '\0';
}

/* ------------------------------------------------------------------------ */
/* Fields                                                                   */
/* ------------------------------------------------------------------------ */

static int is_pad(char c, const csv_state *st) {
  return (c == ' ' || c == '\t') && c != st->delim;
}

static gmle_status push_field(gmle_reader *r, csv_state *st, size_t *nf,
                              char *line, size_t beg, size_t len, size_t col,
                              int quoted) {
  /* The fields of a line are bounded before they are stored (32 bytes
   * each): a line of 537 million fields must not take 17 GB to be found
   * wrong. Past the first line a row may only have a few more fields than
   * it (trailing delimiters, trimmed later). */
  if (st->nfields && *nf >= st->nfields + CSV_EXTRA_FIELDS)
    return gmle__error(r->ctx, GMLE_E_BAD_FORMAT,
                       "%s:%llu: the number of columns changed from %zu to "
                       "more than %zu at this line",
                       r->path, (unsigned long long)st->line_no, st->nfields,
                       *nf);
  if (*nf >= GMLE__CSV_MAX_FIELDS)
    return gmle__error(r->ctx, GMLE_E_TOO_LARGE,
                       "%s:%llu: more than %zu fields on one line (the limit "
                       "of a CSV line)",
                       r->path, (unsigned long long)st->line_no,
                       (size_t)GMLE__CSV_MAX_FIELDS);
  void *p = st->f;
  GMLE_TRY(
      gmle__io_grow(r->ctx, &p, &st->f_cap, *nf + 1, *nf, sizeof(csv_field)));
  st->f = p;
  st->f[*nf] = (csv_field){beg, len, col, quoted};
  line[beg + len] = '\0';
  (*nf)++;
  return GMLE_OK;
}

/* A quoted field starting at line[q] == '"': unquoted in place from q.
 * Sets *end to the index after the closing quote, *w to the end of the
 * unquoted text. */
static gmle_status unquote(gmle_reader *r, csv_state *st, char *line,
                           size_t len, size_t q, size_t *w_out, size_t *end) {
  size_t w = q, k = q + 1;
  for (;;) {
    if (k >= len)
      return gmle__error(r->ctx, GMLE_E_BAD_FORMAT,
                         "%s:%llu:%zu: unterminated quoted field (quoted "
                         "fields cannot span lines)",
                         r->path, (unsigned long long)st->line_no, q + 1);
    if (line[k] == '"') {
      if (k + 1 < len && line[k + 1] == '"') {
        line[w++] = '"';
        k += 2;
        continue;
      }
      k++;
      break;
    }
    line[w++] = line[k++];
  }
  *w_out = w;
  *end = k;
  return GMLE_OK;
}

/* Split a line into st->f; *nf_out fields. */
static gmle_status split_line(gmle_reader *r, csv_state *st, char *line,
                              size_t len, size_t *nf_out) {
  size_t nf = 0, i = 0;
  if (st->ws) {
    for (;;) {
      while (i < len && (line[i] == ' ' || line[i] == '\t'))
        i++;
      if (i >= len)
        break;
      if (line[i] == '"') {
        size_t w = 0, k = 0;
        GMLE_TRY(unquote(r, st, line, len, i, &w, &k));
        if (k < len && line[k] != ' ' && line[k] != '\t')
          return gmle__error(r->ctx, GMLE_E_BAD_FORMAT,
                             "%s:%llu:%zu: unexpected character after the "
                             "closing quote",
                             r->path, (unsigned long long)st->line_no, k + 1);
        GMLE_TRY(push_field(r, st, &nf, line, i, w - i, i + 1, 1));
        i = k;
      } else {
        size_t b = i;
        while (i < len && line[i] != ' ' && line[i] != '\t')
          i++;
        size_t e = i;
        int at_end = i >= len;
        GMLE_TRY(push_field(r, st, &nf, line, b, e - b, b + 1, 0));
        if (at_end)
          break;
        i++; /* the NUL written over the separator */
      }
    }
    *nf_out = nf;
    return GMLE_OK;
  }
  for (;;) {
    size_t start = i;
    while (i < len && is_pad(line[i], st))
      i++;
    if (i < len && line[i] == '"') {
      size_t w = 0, k = 0;
      GMLE_TRY(unquote(r, st, line, len, i, &w, &k));
      while (k < len && is_pad(line[k], st))
        k++;
      if (k < len && line[k] != st->delim)
        return gmle__error(r->ctx, GMLE_E_BAD_FORMAT,
                           "%s:%llu:%zu: unexpected character after the "
                           "closing quote",
                           r->path, (unsigned long long)st->line_no, k + 1);
      size_t q = i;
      i = k;
      GMLE_TRY(push_field(r, st, &nf, line, q, w - q, q + 1, 1));
    } else {
      const char *d = i < len ? memchr(line + i, st->delim, len - i) : NULL;
      size_t e = d ? (size_t)(d - line) : len;
      size_t t = e;
      while (t > i && is_pad(line[t - 1], st))
        t--;
      size_t col = (t > i ? i : start) + 1;
      size_t b = i;
      i = e;
      GMLE_TRY(push_field(r, st, &nf, line, b, t - b, col, 0));
    }
    if (i >= len)
      break;
    i++; /* past the delimiter: another field follows, maybe empty */
  }
  *nf_out = nf;
  return GMLE_OK;
}

/* Clinger's fast path: a plain decimal with at most 15 significant digits
 * m and a decimal exponent |e| <= 22 is m * 10^e or m / 10^-e, one
 * correctly rounded operation on exact operands, so the result is what
 * strtod gives. Returns 0 (use strtod) for anything else. */
static int fast_decimal(const char *s, size_t n, double *v) {
#if FLT_EVAL_METHOD == 0
  static const double p10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                 1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
  size_t i = 0;
  int neg = 0, nd = 0, any = 0, e10 = 0;
  uint64_t m = 0;
  if (s[i] == '+' || s[i] == '-')
    neg = s[i++] == '-';
  for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
    any = 1;
    if (m == 0 && s[i] == '0')
      continue;
    if (nd++ == 15)
      return 0;
    m = m * 10 + (uint64_t)(s[i] - '0');
  }
  if (i < n && s[i] == '.')
    for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
      any = 1;
      e10--;
      if (m == 0 && s[i] == '0')
        continue;
      if (nd++ == 15)
        return 0;
      m = m * 10 + (uint64_t)(s[i] - '0');
    }
  if (!any)
    return 0;
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    int eneg = 0, e = 0;
    i++;
    if (i < n && (s[i] == '+' || s[i] == '-'))
      eneg = s[i++] == '-';
    if (i >= n || s[i] < '0' || s[i] > '9')
      return 0;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
      if (e > 100000)
        return 0;
      e = e * 10 + (s[i] - '0');
    }
    e10 += eneg ? -e : e;
  }
  if (i != n)
    return 0;
  double x;
  if (m == 0)
    x = 0.0;
  else if (e10 >= 0 && e10 <= 22)
    x = (double)m * p10[e10];
  else if (e10 < 0 && e10 >= -22)
    x = (double)m / p10[-e10];
  else
    return 0;
  *v = neg ? -x : x;
  return 1;
#else
  (void)s;
  (void)n;
  (void)v;
  return 0;
#endif
}

/* 0: a number in *v; 1: not a number; 2: out of range. s is NUL-terminated
 * at s[n]; the C locale must be in effect. */
static int parse_num(const char *s, size_t n, double *v) {
  if (n == 0 || s[0] == ' ' || s[0] == '\t' || s[0] == '\n' || s[0] == '\v' ||
      s[0] == '\f' || s[0] == '\r')
    return 1;
  if (fast_decimal(s, n, v))
    return 0;
  char *end = NULL;
  errno = 0;
  double x = strtod(s, &end);
  if (end != s + n)
    return 1;
  if (errno == ERANGE && (x == HUGE_VAL || x == -HUGE_VAL))
    return 2;
  *v = x; /* underflow (1e-400) rounds to the nearest: 0 or subnormal */
  return 0;
}

static gmle_status number_error(gmle_reader *r, csv_state *st, int why,
                                const char *line, const csv_field *f,
                                size_t j) {
  char ex[64];
  excerpt(ex, sizeof ex, line + f->beg, f->len);
  unsigned long long ln = (unsigned long long)st->line_no;
  const gmle_error_location loc = {
      .line = ln, .column = f->col, .fields = GMLE_LOC_LINE | GMLE_LOC_COLUMN};
  if (f->len == 0)
    return gmle__error_at(r->ctx, GMLE_E_BAD_FORMAT, &loc,
                          "%s:%llu:%zu: empty field (field %zu of %zu): could "
                          "not convert string '' to float64; missing values "
                          "are not supported",
                          r->path, ln, f->col, j + 1, st->nfields);
  if (why == 2)
    return gmle__error_at(r->ctx, GMLE_E_BAD_FORMAT, &loc,
                          "%s:%llu:%zu: value '%s' is out of range for float64 "
                          "(field %zu)",
                          r->path, ln, f->col, ex, j + 1);
  const char *hint = "";
  if (st->delim != ',' && memchr(line + f->beg, ',', f->len))
    hint = " (the decimal separator must be '.')";
  return gmle__error_at(r->ctx, GMLE_E_BAD_FORMAT, &loc,
                        "%s:%llu:%zu: could not convert string to float: '%s' "
                        "(field %zu)%s",
                        r->path, ln, f->col, ex, j + 1, hint);
}

/* ------------------------------------------------------------------------ */
/* Reading                                                                  */
/* ------------------------------------------------------------------------ */

/* One line of a text labels file: *got = 1 when it held a label. */
static gmle_status text_line(gmle_reader *r, csv_state *st, char *line,
                             size_t len, int *got) {
  *got = 0;
  GMLE_TRY(check_nul(r, st, line, len));
  size_t b = 0, e = len;
  while (b < e && (line[b] == ' ' || line[b] == '\t'))
    b++;
  while (e > b &&
         (line[e - 1] == ' ' || line[e - 1] == '\t' || line[e - 1] == '\r'))
    e--;
  if (b == e) {
    if (!st->blank_line)
      st->blank_line = st->line_no;
    return GMLE_OK;
  }
  if (st->blank_line)
    return gmle__error(r->ctx, GMLE_E_BAD_FORMAT,
                       "%s:%llu: blank line in a labels file (one label per "
                       "line; blank lines are allowed only at the end)",
                       r->path, (unsigned long long)st->blank_line);
  if (e - b >= 2 && line[b] == '"' && line[e - 1] == '"') {
    size_t w = 0, k = 0;
    GMLE_TRY(unquote(r, st, line, e, b, &w, &k));
    if (k == e) {
      *got = 1;
      return gmle__rd_label_push(r, line + b, w - b);
    }
    return gmle__error(r->ctx, GMLE_E_BAD_FORMAT,
                       "%s:%llu:%zu: unexpected character after the closing "
                       "quote",
                       r->path, (unsigned long long)st->line_no, k + 1);
  }
  *got = 1;
  return gmle__rd_label_push(r, line + b, e - b);
}

/* Drop one trailing empty field (a trailing delimiter) when it makes the
 * count right, or on the first line. */
static void trim_trailing(const csv_state *st, size_t *nf, size_t want) {
  if (st->ws || *nf < 2)
    return;
  const csv_field *last = &st->f[*nf - 1];
  if (last->len == 0 && !last->quoted && (want == 0 || *nf == want + 1))
    (*nf)--;
}

static gmle_status data_line(gmle_reader *r, csv_state *st, char *line,
                             size_t len, double *row) {
  GMLE_TRY(check_nul(r, st, line, len));
  size_t nf;
  GMLE_TRY(split_line(r, st, line, len, &nf));
  trim_trailing(st, &nf, st->nfields);
  if (nf != st->nfields)
    return gmle__error(
        r->ctx, GMLE_E_BAD_FORMAT,
        "%s:%llu: the number of columns changed from %zu to "
        "%zu at this line (every row needs the %zu fields of "
        "line %llu)",
        r->path, (unsigned long long)st->line_no, st->nfields, nf, st->nfields,
        (unsigned long long)(st->header_line ? st->header_line
                                             : st->data_line + 1));
  size_t k = 0;
  for (size_t j = 0; j < nf; j++) {
    const csv_field *f = &st->f[j];
    if (j == st->label_idx) {
      if (f->len == 0)
        return gmle__error(r->ctx, GMLE_E_BAD_FORMAT,
                           "%s:%llu:%zu: empty label (field %zu)", r->path,
                           (unsigned long long)st->line_no, f->col, j + 1);
      GMLE_TRY(gmle__rd_label_push(r, line + f->beg, f->len));
      continue;
    }
    if (r->labels_only)
      continue;
    double v;
    int why = parse_num(line + f->beg, f->len, &v);
    if (why)
      return number_error(r, st, why, line, f, j);
    row[k++] = v;
  }
  return GMLE_OK;
}

/* Row n of this read came from file line `line` (memory: one number per
 * row of the batch). */
static gmle_status note_row_line(gmle_reader *r, size_t n, uint64_t line) {
  void *p = r->row_line;
  GMLE_TRY(
      gmle__io_grow(r->ctx, &p, &r->row_line_cap, n + 1, n, sizeof(uint64_t)));
  r->row_line = p;
  r->row_line[n] = line;
  r->row_line_n = n + 1;
  return GMLE_OK;
}

static gmle_status csv_read(gmle_reader *r, void *buf, size_t max_rows,
                            size_t *n_read) {
  csv_state *st = r->impl;
  uint64_t save_pos = cur_pos(st), save_line = st->line_no;
  uint64_t save_blank = st->blank_line;
  locale_t old = uselocale(st->cloc);
  double *out = buf;
  size_t n = 0;
  gmle_status s = GMLE_OK;
  r->row_line_n = 0;
  while (n < max_rows) {
    char *line;
    size_t len;
    s = next_line(r, st, &line, &len);
    if (s != GMLE_OK || !line)
      break;
    if (r->format == GMLE__RD_TEXT) {
      int got;
      s = text_line(r, st, line, len, &got);
      if (s != GMLE_OK)
        break;
      n += (size_t)got;
      continue;
    }
    if (is_blank_line(line, len))
      continue;
    s = data_line(r, st, line, len, r->labels_only ? NULL : out + n * r->cols);
    if (s == GMLE_OK)
      s = note_row_line(r, n, st->line_no);
    if (s != GMLE_OK)
      break;
    n++;
  }
  uselocale(old);
  if (s != GMLE_OK) {
    /* Leave the reader where this call started, so the call can be
     * repeated (and fails the same way). */
    reset_to(st, save_pos, save_line);
    st->blank_line = save_blank;
    return s;
  }
  *n_read = n;
  return GMLE_OK;
}

static gmle_status csv_rewind(gmle_reader *r) {
  csv_state *st = r->impl;
  reset_to(st, st->data_pos, st->data_line);
  st->blank_line = 0;
  return GMLE_OK;
}

/* Skip lines up to data row `row` without parsing their values (a text
 * labels file still refuses a blank line before a label). */
static gmle_status csv_seek(gmle_reader *r, uint64_t row, uint64_t *at) {
  csv_state *st = r->impl;
  uint64_t n = 0;
  if (st->seek_known && st->seek_row <= row) {
    reset_to(st, st->seek_pos, st->seek_line);
    st->blank_line = st->seek_blank;
    n = st->seek_row;
  } else {
    reset_to(st, st->data_pos, st->data_line);
    st->blank_line = 0;
  }
  while (n < row) {
    char *line;
    size_t len;
    GMLE_TRY(next_line(r, st, &line, &len));
    if (!line)
      break;
    if (is_blank_line(line, len)) {
      if (r->format == GMLE__RD_TEXT && !st->blank_line)
        st->blank_line = st->line_no;
      continue;
    }
    if (r->format == GMLE__RD_TEXT && st->blank_line)
      return gmle__error(r->ctx, GMLE_E_BAD_FORMAT,
                         "%s:%llu: blank line in a labels file (one label "
                         "per line; blank lines are allowed only at the end)",
                         r->path, (unsigned long long)st->blank_line);
    n++;
  }
  st->seek_known = 1;
  st->seek_row = n;
  st->seek_pos = cur_pos(st);
  st->seek_line = st->line_no;
  st->seek_blank = st->blank_line;
  *at = n;
  return GMLE_OK;
}

static const char *csv_column_name(const gmle_reader *r, size_t j) {
  const csv_state *st = r->impl;
  return st->names ? st->names[j] : NULL;
}

static void csv_free(gmle_reader *r) {
  csv_state *st = r->impl;
  if (!st)
    return;
  if (st->names)
    for (size_t j = 0; j < r->cols; j++)
      gmle__free(st->names[j]);
  gmle__free(st->names);
  gmle__free(st->buf);
  gmle__free(st->f);
  if (st->cloc != (locale_t)0)
    freelocale(st->cloc);
  gmle__free(st);
  r->impl = NULL;
}

/* ------------------------------------------------------------------------ */
/* Opening                                                                  */
/* ------------------------------------------------------------------------ */

/* The delimiter of a first line: the most frequent of , ; TAB outside
 * quotes (';' wins over ',' when both occur: "1,5;2,5"), else ' ' when
 * there are blanks between fields, else ',' (one column). */
static char detect_delim(const char *s, size_t n) {
  size_t c = 0, sc = 0, t = 0;
  int inq = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '"')
      inq = !inq;
    else if (!inq && s[i] == ',')
      c++;
    else if (!inq && s[i] == ';')
      sc++;
    else if (!inq && s[i] == '\t')
      t++;
  }
  if (t && t >= c && t >= sc)
    return '\t';
  if (sc)
    return ';';
  if (c)
    return ',';
  size_t b = 0, e = n;
  while (b < e && (s[b] == ' ' || s[b] == '\t'))
    b++;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t'))
    e--;
  for (size_t i = b; i < e; i++)
    if (s[i] == ' ')
      return ' ';
  return ',';
}

static int parse_index(const char *s, size_t *out) {
  size_t v = 0;
  if (!*s)
    return 0;
  for (; *s; s++) {
    if (*s < '0' || *s > '9' || v > (SIZE_MAX - 9) / 10)
      return 0;
    v = v * 10 + (size_t)(*s - '0');
  }
  *out = v;
  return 1;
}

static gmle_status copy_names(gmle_reader *r, csv_state *st, const char *line,
                              size_t nf) {
  st->names = gmle__calloc(r->cols ? r->cols : 1, sizeof(char *));
  if (!st->names)
    return gmle__error(r->ctx, GMLE_E_OUT_OF_MEMORY,
                       "%s: cannot allocate column names", r->path);
  size_t k = 0;
  for (size_t j = 0; j < nf && k < r->cols; j++) {
    if (j == st->label_idx)
      continue;
    const csv_field *f = &st->f[j];
    char *p = gmle__malloc(f->len + 1);
    if (!p)
      return gmle__error(r->ctx, GMLE_E_OUT_OF_MEMORY,
                         "%s: cannot allocate column names", r->path);
    memcpy(p, line + f->beg, f->len);
    p[f->len] = '\0';
    st->names[k++] = p;
  }
  return GMLE_OK;
}

/* Work out the layout from the first non-blank line. */
/* A first line is a header when none of its fields (the label column given
 * by index aside) parses as a number and one is not empty: "1,2x" is data
 * with a typo (an error at its field), not a header to drop. */
static int looks_like_header(csv_state *st, const char *line, size_t nf,
                             size_t skip) {
  int text = 0, number = 0;
  locale_t old = uselocale(st->cloc);
  for (size_t j = 0; j < nf; j++) {
    double v;
    const csv_field *f = &st->f[j];
    if (j == skip || !f->len)
      continue;
    if (parse_num(line + f->beg, f->len, &v) == 1)
      text = 1;
    else
      number = 1;
  }
  uselocale(old);
  return text && !number;
}

static gmle_status csv_layout(gmle_reader *r, csv_state *st,
                              const gmle_reader_options *opt) {
  char *line;
  size_t len;
  uint64_t pos;
  for (;;) {
    pos = cur_pos(st);
    GMLE_TRY(next_line(r, st, &line, &len));
    if (!line)
      return gmle__error(r->ctx, GMLE_E_EMPTY,
                         "%s: no data: the file has no non-blank line",
                         r->path);
    if (!is_blank_line(line, len))
      break;
  }
  uint64_t first = st->line_no;
  GMLE_TRY(check_nul(r, st, line, len));
  char d = opt->delimiter ? opt->delimiter : detect_delim(line, len);
  st->delim = d;
  st->ws = d == ' ';
  size_t nf;
  GMLE_TRY(split_line(r, st, line, len, &nf));
  trim_trailing(st, &nf, 0);

  const char *lc = opt->label_column;
  size_t idx = SIZE_MAX, named = SIZE_MAX;
  int by_index = lc && parse_index(lc, &idx);
  if (lc && !*lc)
    return gmle__error(r->ctx, GMLE_E_INVALID_ARG,
                       "%s: the label column name is empty", r->path);
  if (lc)
    for (size_t j = 0; j < nf; j++)
      if (strcmp(line + st->f[j].beg, lc) == 0 && strlen(lc) == st->f[j].len) {
        named = j;
        break;
      }
  int header = opt->header;
  if (header < 0) {
    if (lc && !by_index && named != SIZE_MAX) {
      header = 1;
    } else {
      header = looks_like_header(st, line, nf, by_index ? idx : SIZE_MAX);
    }
    if (header)
      gmle__log(r->ctx, GMLE_LOG_INFO,
                "%s: line %llu is taken as a header (none of its fields is a "
                "number)",
                r->path, (unsigned long long)first);
  }
  if (lc) {
    if (header && named != SIZE_MAX)
      idx = named;
    else if (!by_index && header)
      return gmle__error(r->ctx, GMLE_E_INVALID_ARG,
                         "%s: label column '%s' is not in the header (line "
                         "%llu, %zu columns)",
                         r->path, lc, (unsigned long long)first, nf);
    else if (!by_index)
      return gmle__error(r->ctx, GMLE_E_INVALID_ARG,
                         "%s: label column '%s' is given by name but the "
                         "file has no header (give a 0-based index)",
                         r->path, lc);
    if (idx >= nf)
      return gmle__error(r->ctx, GMLE_E_INVALID_ARG,
                         "%s: label column %zu is out of range: line %llu "
                         "has %zu columns (0-based indices 0..%zu)",
                         r->path, idx, (unsigned long long)first, nf, nf - 1);
  }
  st->label_idx = lc ? idx : SIZE_MAX;
  st->nfields = nf;
  r->has_labels = lc != NULL;
  r->cols = r->labels_only ? 0 : nf - (lc ? 1 : 0);
  if (!r->labels_only && r->cols == 0)
    return gmle__error(r->ctx, GMLE_E_BAD_FORMAT,
                       "%s:%llu: no feature columns: the only column is the "
                       "label column",
                       r->path, (unsigned long long)first);
  if (header) {
    st->header_line = first;
    if (!r->labels_only)
      GMLE_TRY(copy_names(r, st, line, nf));
    st->data_pos = cur_pos(st);
    st->data_line = st->line_no;
  } else {
    st->data_pos = pos;
    st->data_line = first - 1;
  }
  reset_to(st, st->data_pos, st->data_line);
  return GMLE_OK;
}

gmle_status gmle__csv_reader_open(gmle_reader *r,
                                  const gmle_reader_options *opt) {
  csv_state *st = gmle__calloc(1, sizeof *st);
  if (!st)
    return gmle__error(r->ctx, GMLE_E_OUT_OF_MEMORY,
                       "%s: cannot allocate a CSV reader", r->path);
  r->impl = st;
  r->read = csv_read;
  r->rewind = csv_rewind;
  r->seek = csv_seek;
  r->free_impl = csv_free;
  r->column_name = csv_column_name;
  r->dtype = GMLE_F64;
  st->label_idx = SIZE_MAX;
  st->cap = CSV_FIRST_CAP;
  st->buf = gmle__malloc(st->cap);
  gmle_status s = GMLE_OK;
  if (!st->buf)
    s = gmle__error(r->ctx, GMLE_E_OUT_OF_MEMORY,
                    "%s: cannot allocate a CSV buffer", r->path);
  if (s == GMLE_OK) {
    st->cloc = gmle__io_new_c_locale(r->ctx);
    if (st->cloc == (locale_t)0)
      s = GMLE_E_OUT_OF_MEMORY;
  }
  if (s == GMLE_OK) {
    unsigned char bom[3] = {0};
    uint64_t start = 0;
    if (r->file_size >= 3) {
      s = gmle__io_pread_full(r->ctx, r->path, r->fd, bom, 3, 0);
      if (s == GMLE_OK && bom[0] == 0xEF && bom[1] == 0xBB && bom[2] == 0xBF)
        start = 3;
    }
    reset_to(st, start, 0);
    if (s == GMLE_OK && r->labels_only && !opt->label_column) {
      r->format = GMLE__RD_TEXT;
      r->has_labels = 1;
      r->cols = 0;
      st->data_pos = start;
      st->data_line = 0;
    } else if (s == GMLE_OK) {
      s = csv_layout(r, st, opt);
    }
  }
  if (s != GMLE_OK) {
    csv_free(r);
    r->free_impl = NULL;
  }
  return s;
}
