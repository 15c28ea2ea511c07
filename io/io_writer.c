/*
 * io_writer.c -- streaming writer of .npy (version 1.0) and CSV files.
 *
 * Rows go where gmle__outfile sends them (atomic_file.h): a temporary file
 * next to the destination renamed at commit, or straight through to a
 * device, a FIFO or standard output. For .npy the header is written at open
 * with room for the largest row count and patched at commit (padded with spaces
 * so that its length does not change). Commit flushes, fsyncs and renames;
 * abort unlinks.
 */
#include "atomic_file.h"
#include "io_internal.h"
#include "npy.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define WR_BUF ((size_t)1 << 20)

struct gmle_writer {
  gmle_context *ctx;
  char *path;
  gmle__outfile o;
  int fd; /* o.fd */
  int csv;
  int failed;
  gmle_elem elem;
  size_t cols, width; /* width: '<U' characters */
  size_t esize;       /* bytes per .npy element */
  uint64_t rows;
  size_t hdr_len; /* reserved .npy header bytes */
  char descr[16];
  unsigned char *buf;
  size_t len;
  locale_t cloc;
  /* Rows written at their place (gmle_writer_write_at): the buffer goes to
   * byte at_off instead of the end of the file. */
  int positioned;
  uint64_t at_off;
  int part; /* a part of another process's output (gmle_writer_open_part) */
};

/* ------------------------------------------------------------------------ */
/* Output                                                                   */
/* ------------------------------------------------------------------------ */

static gmle_status wr_fail(gmle_writer *w, gmle_status s) {
  w->failed = 1;
  return s;
}

static gmle_status flush_buf(gmle_writer *w) {
  size_t done = 0;
  while (done < w->len) {
    ssize_t n = w->positioned ? pwrite(w->fd, w->buf + done, w->len - done,
                                       (off_t)(w->at_off + done))
                              : write(w->fd, w->buf + done, w->len - done);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return wr_fail(w, gmle__error(w->ctx, GMLE_E_IO, "%s: write failed: %s",
                                    w->path, strerror(errno)));
    }
    done += (size_t)n;
  }
  if (w->positioned)
    w->at_off += done;
  w->len = 0;
  return GMLE_OK;
}

/* Room for `n` more bytes in the buffer (n <= WR_BUF). */
static gmle_status room(gmle_writer *w, size_t n) {
  if (w->len + n > WR_BUF)
    return flush_buf(w);
  return GMLE_OK;
}

static gmle_status put(gmle_writer *w, const void *p, size_t n) {
  const unsigned char *s = p;
  while (n) {
    GMLE_TRY(room(w, n < WR_BUF ? n : WR_BUF));
    size_t m = WR_BUF - w->len < n ? WR_BUF - w->len : n;
    memcpy(w->buf + w->len, s, m);
    w->len += m;
    s += m;
    n -= m;
  }
  return GMLE_OK;
}

static gmle_status npy_string(gmle_writer *w, const char *s, uint64_t row) {
  static const unsigned char zeros[256];
  const unsigned char *p = (const unsigned char *)(s ? s : "");
  size_t k = 0;
  while (*p) {
    uint32_t cp;
    size_t n = gmle__utf8_decode(p, &cp);
    if (!n)
      return wr_fail(w, gmle__error_at(w->ctx, GMLE_E_INVALID_ARG,
                                       &(gmle_error_location){
                                           .row = row, .fields = GMLE_LOC_ROW},
                                       "%s: row %llu: string is not valid "
                                       "UTF-8 (byte %zu)",
                                       w->path, (unsigned long long)row,
                                       (size_t)(p - (const unsigned char *)s)));
    if (k >= w->width)
      return wr_fail(
          w, gmle__error_at(
                 w->ctx, GMLE_E_INVALID_ARG,
                 &(gmle_error_location){.row = row, .fields = GMLE_LOC_ROW},
                 "%s: row %llu: string '%.40s' is longer "
                 "than the declared width %zu",
                 w->path, (unsigned long long)row, s, w->width));
    unsigned char b[4];
    gmle__st_le32(b, cp);
    GMLE_TRY(put(w, b, 4));
    k++;
    p += n;
  }
  for (size_t pad = w->width - k; pad;) {
    size_t m = pad < 64 ? pad : 64;
    GMLE_TRY(put(w, zeros, 4 * m));
    pad -= m;
  }
  return GMLE_OK;
}

static gmle_status csv_string(gmle_writer *w, const char *s) {
  if (!s)
    s = "";
  size_t n = strlen(s);
  int quote = n == 0 || s[0] == ' ' || s[0] == '\t' || s[n - 1] == ' ' ||
              s[n - 1] == '\t' || strpbrk(s, ",;\"\n\r") != NULL;
  if (!quote)
    return put(w, s, n);
  GMLE_TRY(put(w, "\"", 1));
  for (const char *q = s; *q; q++) {
    GMLE_TRY(put(w, q, 1));
    if (*q == '"')
      GMLE_TRY(put(w, "\"", 1));
  }
  return put(w, "\"", 1);
}

/* n rows as .npy elements; row0 numbers the first in messages. */
static gmle_status write_npy(gmle_writer *w, const void *rows, size_t n,
                             uint64_t row0) {
  size_t per = w->cols ? w->cols : 1, count;
  if (gmle__mul_size(n, per, &count))
    return wr_fail(w, gmle__error(w->ctx, GMLE_E_TOO_LARGE,
                                  "%s: %zu rows x %zu overflows size_t",
                                  w->path, n, per));
  if (w->elem == GMLE_ELEM_STR) {
    const char *const *s = rows;
    for (size_t i = 0; i < count; i++)
      GMLE_TRY(npy_string(w, s[i], row0 + i / per));
    return GMLE_OK;
  }
  if (!gmle__host_big_endian()) {
    size_t bytes;
    if (gmle__mul_size(count, w->esize, &bytes))
      return wr_fail(w,
                     gmle__error(w->ctx, GMLE_E_TOO_LARGE,
                                 "%s: batch size overflows size_t", w->path));
    return put(w, rows, bytes);
  }
  const unsigned char *p = rows;
  for (size_t i = 0; i < count; i++, p += w->esize) {
    unsigned char b[8];
    for (size_t k = 0; k < w->esize; k++)
      b[k] = p[w->esize - 1 - k];
    GMLE_TRY(put(w, b, w->esize));
  }
  return GMLE_OK;
}

static gmle_status write_csv(gmle_writer *w, const void *rows, size_t n) {
  size_t per = w->cols ? w->cols : 1;
  for (size_t i = 0; i < n; i++) {
    for (size_t j = 0; j < per; j++) {
      size_t e = i * per + j;
      char num[64];
      int len = 0;
      if (j)
        GMLE_TRY(put(w, ",", 1));
      switch (w->elem) {
      case GMLE_ELEM_F32:
        len =
            snprintf(num, sizeof num, "%.9g", (double)((const float *)rows)[e]);
        break;
      case GMLE_ELEM_F64:
        len = snprintf(num, sizeof num, "%.17g", ((const double *)rows)[e]);
        break;
      case GMLE_ELEM_I32:
        len = snprintf(num, sizeof num, "%" PRId32, ((const int32_t *)rows)[e]);
        break;
      case GMLE_ELEM_I64:
        len = snprintf(num, sizeof num, "%" PRId64, ((const int64_t *)rows)[e]);
        break;
      case GMLE_ELEM_STR:
        GMLE_TRY(csv_string(w, ((const char *const *)rows)[e]));
        break;
      }
      if (len > 0)
        GMLE_TRY(put(w, num, (size_t)len));
    }
    GMLE_TRY(put(w, "\n", 1));
  }
  return GMLE_OK;
}

/* ------------------------------------------------------------------------ */
/* Header                                                                   */
/* ------------------------------------------------------------------------ */

/* Format the v1.0 header for `rows` rows into hdr, padded with spaces to
 * exactly `want` bytes when want > 0. Returns the length or 0. */
static size_t npy_header(const gmle_writer *w, char *hdr, size_t cap,
                         size_t rows, size_t want) {
  size_t shape[2] = {rows, w->cols};
  size_t n =
      gmle__npy_format_header(hdr, cap, w->descr, 0, w->cols ? 2 : 1, shape);
  if (!n || !want || n == want)
    return n;
  if (n > want || want > cap || want - 10 > 65535)
    return 0;
  /* Widen the space padding before the final '\n'. */
  memset(hdr + n - 1, ' ', want - n);
  hdr[want - 1] = '\n';
  gmle__st_le16((unsigned char *)hdr + 8, (uint16_t)(want - 10));
  return want;
}

/* ------------------------------------------------------------------------ */
/* Public API                                                               */
/* ------------------------------------------------------------------------ */

static void writer_free(gmle_writer *w) {
  w->o.fd = w->fd;
  gmle__outfile_abort(&w->o);
  if (w->cloc != (locale_t)0)
    freelocale(w->cloc);
  gmle__free(w->buf);
  gmle__free(w->path);
  gmle__free(w);
}

/* The destination of w (atomic_file.h); a .npy header is patched at commit,
 * so a .npy output must be seekable. */
static gmle_status open_output(gmle_writer *w, const char *path) {
  GMLE_TRY(gmle__outfile_open(w->ctx, path, &w->o));
  w->fd = w->o.fd;
  if (w->csv || w->o.seekable)
    return GMLE_OK;
  return gmle__error(w->ctx, GMLE_E_UNSUPPORTED,
                     "%s: a .npy output needs a seekable file (its row count "
                     "is written at the end); name a .csv file to write to a "
                     "pipe",
                     path);
}

static int ends_with_csv(const char *path) {
  size_t n = strlen(path);
  return n >= 4 && strcasecmp(path + n - 4, ".csv") == 0;
}

/* A writer of elem x cols, not yet writing anywhere. */
static gmle_status writer_new(gmle_context *ctx, const char *path,
                              gmle_elem elem, size_t cols, size_t str_width,
                              int csv, gmle_writer **out) {
  size_t esize = 0;
  const char *descr = NULL;
  switch (elem) {
  case GMLE_ELEM_F32:
    esize = 4, descr = "<f4";
    break;
  case GMLE_ELEM_F64:
    esize = 8, descr = "<f8";
    break;
  case GMLE_ELEM_I32:
    esize = 4, descr = "<i4";
    break;
  case GMLE_ELEM_I64:
    esize = 8, descr = "<i8";
    break;
  case GMLE_ELEM_STR:
    if (str_width == 0)
      str_width = 1; /* numpy's dtype for empty strings is '<U1' */
    if (str_width > (size_t)1 << 20)
      return gmle__error(ctx, GMLE_E_INVALID_ARG,
                         "gmle_writer_open: str_width %zu is too large",
                         str_width);
    esize = 4 * str_width;
    break;
  default:
    return gmle__error(ctx, GMLE_E_INVALID_ARG,
                       "gmle_writer_open: unknown element type %d", (int)elem);
  }

  gmle_writer *w = gmle__calloc(1, sizeof *w);
  if (!w)
    return gmle__error(ctx, GMLE_E_OUT_OF_MEMORY,
                       "%s: cannot allocate a writer", path);
  w->fd = w->o.fd = -1;
  w->o.slot = -1;
  w->ctx = ctx;
  w->elem = elem;
  w->cols = cols;
  w->width = str_width;
  w->esize = esize;
  w->csv = csv;
  if (descr)
    snprintf(w->descr, sizeof w->descr, "%s", descr);
  else
    snprintf(w->descr, sizeof w->descr, "<U%zu", str_width);
  size_t plen = strlen(path);
  w->path = gmle__malloc(plen + 1);
  w->buf = gmle__malloc(WR_BUF);
  if (!w->path || !w->buf) {
    writer_free(w);
    return gmle__error(ctx, GMLE_E_OUT_OF_MEMORY,
                       "%s: cannot allocate a writer", path);
  }
  memcpy(w->path, path, plen + 1);
  if (w->csv) {
    w->cloc = gmle__io_new_c_locale(ctx);
    if (w->cloc == (locale_t)0) {
      writer_free(w);
      return GMLE_E_OUT_OF_MEMORY;
    }
  }
  *out = w;
  return GMLE_OK;
}

/* The length of w's .npy header (room for the largest row count). */
static gmle_status header_len(gmle_writer *w, char *hdr, size_t cap) {
  w->hdr_len = npy_header(w, hdr, cap, SIZE_MAX, 0);
  if (!w->hdr_len)
    return gmle__error(w->ctx, GMLE_E_INTERNAL,
                       "%s: cannot format the .npy header", w->path);
  return GMLE_OK;
}

/* The checks every open starts with (fn names the call). */
static gmle_status open_args(gmle_context *ctx, const char *path,
                             gmle_writer **out, const char *fn) {
  gmle__clear_error(ctx);
  if (!out)
    return gmle__error(ctx, GMLE_E_INVALID_ARG, "%s: out is NULL", fn);
  *out = NULL;
  if (!ctx || !path || !*path)
    return gmle__error(ctx, GMLE_E_INVALID_ARG,
                       "%s: NULL context or empty path", fn);
  return GMLE_OK;
}

gmle_status gmle_writer_open(gmle_context *ctx, const char *path,
                             gmle_elem elem, size_t cols, size_t str_width,
                             gmle_writer **out) {
  GMLE_TRY(open_args(ctx, path, out, "gmle_writer_open"));
  gmle_writer *w = NULL;
  GMLE_TRY(
      writer_new(ctx, path, elem, cols, str_width, ends_with_csv(path), &w));
  gmle_status os = open_output(w, path);
  if (os != GMLE_OK) {
    writer_free(w);
    return os;
  }
  if (!w->csv) {
    char hdr[512];
    gmle_status s = header_len(w, hdr, sizeof hdr);
    if (s == GMLE_OK)
      s = put(w, hdr, w->hdr_len);
    if (s != GMLE_OK) {
      gmle_writer_abort(w);
      return s;
    }
  }
  *out = w;
  return GMLE_OK;
}

const char *gmle_writer_temp_path(const gmle_writer *w) {
  return w && !w->csv && !w->part ? w->o.tmp : NULL;
}

gmle_status gmle_writer_open_part(gmle_context *ctx, const char *temp_path,
                                  gmle_elem elem, size_t cols, size_t str_width,
                                  gmle_writer **out) {
  GMLE_TRY(open_args(ctx, temp_path, out, "gmle_writer_open_part"));
  gmle_writer *w = NULL;
  GMLE_TRY(writer_new(ctx, temp_path, elem, cols, str_width, 0, &w));
  w->part = 1;
  char hdr[512];
  gmle_status s = header_len(w, hdr, sizeof hdr);
  struct stat sb;
  if (s == GMLE_OK) {
    w->fd = w->o.fd = open(temp_path, O_WRONLY | O_CLOEXEC);
    if (w->fd < 0)
      s = gmle__error(ctx, GMLE_E_IO, "%s: cannot open: %s", temp_path,
                      strerror(errno));
    else if (fstat(w->fd, &sb) != 0 || !S_ISREG(sb.st_mode))
      s = gmle__error(ctx, GMLE_E_IO,
                      "%s: not a regular file (the output of another "
                      "process is a temporary file)",
                      temp_path);
  }
  if (s != GMLE_OK) {
    writer_free(w); /* closes the descriptor; removes nothing */
    return s;
  }
  *out = w;
  return GMLE_OK;
}

/* The checks of a write (fn names the call): GMLE_OK when rows can be
 * written. */
static gmle_status write_args(gmle_writer *w, const void *rows, size_t n_rows,
                              const char *fn) {
  gmle__clear_error(w->ctx);
  if (w->failed)
    return gmle__error(w->ctx, GMLE_E_INVALID_ARG,
                       "%s: an earlier write failed; abort the writer",
                       w->path);
  if (n_rows && !rows)
    return gmle__error(w->ctx, GMLE_E_INVALID_ARG, "%s: rows is NULL", fn);
  return GMLE_OK;
}

gmle_status gmle_writer_write_at(gmle_writer *w, uint64_t row, const void *rows,
                                 size_t n_rows) {
  if (!w)
    return GMLE_E_INVALID_ARG;
  GMLE_TRY(write_args(w, rows, n_rows, "gmle_writer_write_at"));
  if (w->csv || (!w->part && !w->o.seekable))
    return gmle__error(w->ctx, GMLE_E_UNSUPPORTED,
                       "%s: rows are written at their place only in a .npy "
                       "file",
                       w->path);
  if (n_rows == 0)
    return GMLE_OK;
  const uint64_t per = w->cols ? w->cols : 1, row_bytes = per * w->esize;
  if (row > (UINT64_MAX - w->hdr_len) / row_bytes - n_rows ||
      row + n_rows > (uint64_t)INT64_MAX / row_bytes)
    return wr_fail(w, gmle__error(w->ctx, GMLE_E_TOO_LARGE,
                                  "%s: row %llu is beyond the largest file",
                                  w->path, (unsigned long long)row));
  if (!w->positioned) /* the header the owner has buffered goes first */
    GMLE_TRY(flush_buf(w));
  w->positioned = 1;
  w->at_off = w->hdr_len + row * row_bytes;
  gmle_status s = write_npy(w, rows, n_rows, row);
  if (s == GMLE_OK)
    s = flush_buf(w);
  if (s != GMLE_OK)
    return wr_fail(w, s);
  if (row + n_rows > w->rows)
    w->rows = row + n_rows;
  return GMLE_OK;
}

gmle_status gmle_writer_set_rows(gmle_writer *w, uint64_t n_rows) {
  if (!w)
    return GMLE_E_INVALID_ARG;
  gmle__clear_error(w->ctx);
  GMLE_RETURN_IF(w->csv || w->part, w->ctx, GMLE_E_INVALID_ARG,
                 "%s: gmle_writer_set_rows: only the owner of a .npy output "
                 "sets its row count",
                 w->path);
  w->rows = n_rows;
  return GMLE_OK;
}

gmle_status gmle_writer_write(gmle_writer *w, const void *rows, size_t n_rows) {
  if (!w)
    return GMLE_E_INVALID_ARG;
  GMLE_TRY(write_args(w, rows, n_rows, "gmle_writer_write"));
  if (w->positioned)
    return gmle__error(w->ctx, GMLE_E_INVALID_ARG,
                       "%s: gmle_writer_write after gmle_writer_write_at "
                       "(a writer is written one way)",
                       w->path);
  if (n_rows == 0)
    return GMLE_OK;
  gmle_status s;
  if (w->csv) {
    locale_t old = uselocale(w->cloc);
    s = write_csv(w, rows, n_rows);
    uselocale(old);
  } else {
    s = write_npy(w, rows, n_rows, w->rows);
  }
  if (s != GMLE_OK)
    return wr_fail(w, s);
  w->rows += n_rows;
  return GMLE_OK;
}

/* A part's end: its rows synced to the file, which stays for its owner. */
static gmle_status commit_part(gmle_writer *w, gmle_status s) {
  if (s == GMLE_OK && fsync(w->fd) != 0)
    s = gmle__error(w->ctx, GMLE_E_IO, "%s: fsync failed: %s", w->path,
                    strerror(errno));
  if (close(w->fd) != 0 && s == GMLE_OK)
    s = gmle__error(w->ctx, GMLE_E_IO, "%s: close failed: %s", w->path,
                    strerror(errno));
  w->fd = w->o.fd = -1;
  writer_free(w);
  return s;
}

gmle_status gmle_writer_commit(gmle_writer *w) {
  if (!w)
    return GMLE_E_INVALID_ARG;
  gmle_context *ctx = w->ctx;
  gmle__clear_error(ctx);
  gmle_status s = GMLE_OK;
  if (w->failed)
    s = gmle__error(ctx, GMLE_E_INVALID_ARG,
                    "%s: an earlier write failed; nothing was written",
                    w->path);
  if (s == GMLE_OK)
    s = flush_buf(w);
  if (w->part)
    return commit_part(w, s);
  if (s == GMLE_OK && !w->csv) {
    char hdr[512];
    size_t n = npy_header(w, hdr, sizeof hdr, (size_t)w->rows, w->hdr_len);
    if (n != w->hdr_len) {
      s = gmle__error(ctx, GMLE_E_INTERNAL, "%s: cannot patch the .npy header",
                      w->path);
    } else {
      for (size_t done = 0; done < n && s == GMLE_OK;) {
        ssize_t k = pwrite(w->fd, hdr + done, n - done, (off_t)done);
        if (k < 0 && errno == EINTR)
          continue;
        if (k < 0)
          s = gmle__error(ctx, GMLE_E_IO, "%s: write failed: %s", w->path,
                          strerror(errno));
        else
          done += (size_t)k;
      }
    }
  }
  if (s == GMLE_OK)
    s = gmle__outfile_sync(ctx, w->path, &w->o);
  if (s == GMLE_OK) {
    int rc = close(w->fd);
    w->fd = w->o.fd = -1;
    if (rc != 0)
      s = gmle__error(ctx, GMLE_E_IO, "%s: close failed: %s", w->path,
                      strerror(errno));
  }
  if (s == GMLE_OK) {
    s = gmle__outfile_place(ctx, w->path, &w->o);
    writer_free(w);
    return s;
  }
  gmle_writer_abort(w);
  return s;
}

void gmle_writer_abort(gmle_writer *w) {
  if (!w)
    return;
  writer_free(w);
}
