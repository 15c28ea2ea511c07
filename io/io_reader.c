/*
 * io_reader.c -- the public data-file reader: opening (the format chosen
 * from the path and the content, through reader_format.h) and the getters.
 */
#include "io_mem.h"
#include "reader_format.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------------ */
/* Public API                                                               */
/* ------------------------------------------------------------------------ */

/* The first version of gmle_reader_options ended with labels_only. */
#define READER_OPTIONS_FIRST_SIZE                                              \
  (offsetof(gmle_reader_options, labels_only) + sizeof(int))

void gmle_reader_options_init(gmle_reader_options *opt) {
  if (!opt)
    return;
  memset(opt, 0, sizeof *opt);
  opt->struct_size = sizeof *opt;
  opt->delimiter = 0;
  opt->header = -1;
  opt->label_column = NULL;
  opt->ark_dtype = 0;
  opt->labels_only = 0;
}

static const unsigned char npy_magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

/* NULL opt means the defaults. */
static gmle_status check_options(const gmle_context *ctx,
                                 const gmle_reader_options *opt) {
  if (!opt)
    return GMLE_OK;
  if (opt->header < -1 || opt->header > 1)
    return gmle__error(ctx, GMLE_E_INVALID_ARG,
                       "gmle_reader_open: header must be -1, 0 or 1, not %d",
                       opt->header);
  if (opt->delimiter == '"' || opt->delimiter == '\n' || opt->delimiter == '\r')
    return gmle__error(ctx, GMLE_E_INVALID_ARG,
                       "gmle_reader_open: a delimiter cannot be a quote or "
                       "a line break");
  return GMLE_OK;
}

gmle_status gmle_reader_open(gmle_context *ctx, const char *path,
                             const gmle_reader_options *opt,
                             gmle_reader **out) {
  gmle__clear_error(ctx);
  if (!out)
    return gmle__error(ctx, GMLE_E_INVALID_ARG,
                       "gmle_reader_open: out is NULL");
  *out = NULL;
  if (!ctx || !path)
    return gmle__error(ctx, GMLE_E_INVALID_ARG,
                       "gmle_reader_open: NULL context or path");
  if (strcmp(path, "-") == 0)
    return gmle__error(ctx, GMLE_E_UNSUPPORTED,
                       "reading data from standard input ('-') is not "
                       "supported; give a file name");
  gmle_reader_options given;
  gmle_reader_options_init(&given);
  if (opt)
    GMLE_TRY(gmle__read_options(ctx, &given, sizeof given, opt,
                                READER_OPTIONS_FIRST_SIZE, "gmle_reader_open"));
  opt = &given;
  GMLE_TRY(check_options(ctx, opt));
  if (gmle__ark_is_rspecifier(path))
    return gmle__ark_reader_open(ctx, path, opt, out);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return gmle__error(ctx, GMLE_E_IO, "%s: cannot open: %s", path,
                       strerror(errno));
  return gmle__reader_open_fd(ctx, fd, path, opt, out);
}

gmle_status gmle__reader_open_fd(gmle_context *ctx, int fd, const char *path,
                                 const gmle_reader_options *opt,
                                 gmle_reader **out) {
  *out = NULL;
  gmle_reader_options def;
  if (!opt) {
    gmle_reader_options_init(&def);
    opt = &def;
  }
  gmle_status s = check_options(ctx, opt);
  if (s != GMLE_OK) {
    close(fd);
    return s;
  }
  struct stat stb;
  if (fstat(fd, &stb) != 0) {
    int e = errno;
    close(fd);
    return gmle__error(ctx, GMLE_E_IO, "%s: cannot stat: %s", path,
                       strerror(e));
  }
  if (!S_ISREG(stb.st_mode)) {
    close(fd);
    return gmle__error(ctx, GMLE_E_UNSUPPORTED,
                       "%s: not a regular file (pipes, directories and "
                       "devices cannot be read; data is read in passes)",
                       path);
  }

  gmle_reader *r = gmle__calloc(1, sizeof *r);
  size_t plen = strlen(path);
  char *pcopy = gmle__malloc(plen + 1);
  if (!r || !pcopy) {
    gmle__free(r);
    gmle__free(pcopy);
    close(fd);
    return gmle__error(ctx, GMLE_E_OUT_OF_MEMORY,
                       "%s: cannot allocate a reader", path);
  }
  memcpy(pcopy, path, plen + 1);
  r->ctx = ctx;
  r->path = pcopy;
  r->fd = fd;
  r->file_size = (uint64_t)stb.st_size;
  r->labels_only = opt->labels_only != 0;
  r->dtype = GMLE_F64;

  unsigned char head[6] = {0};
  size_t nh = r->file_size < 6 ? (size_t)r->file_size : 6;
  s = gmle__io_pread_full(ctx, path, fd, head, nh, 0);
  if (s == GMLE_OK) {
    if (nh >= 1 && head[0] == npy_magic[0]) {
      r->format = GMLE__RD_NPY;
      s = gmle__npy_reader_open(r, opt);
    } else if (nh >= 4 && memcmp(head, "PK\x03\x04", 4) == 0) {
      s = gmle__error(ctx, GMLE_E_UNSUPPORTED,
                      "%s: this is a zip archive (.npz?); give one .npy "
                      "array or a CSV file",
                      path);
    } else {
      r->format = GMLE__RD_CSV;
      s = gmle__csv_reader_open(r, opt);
    }
  }
  if (s != GMLE_OK) {
    r->free_impl = NULL; /* the format's open cleaned up after itself */
    r->impl = NULL;
    gmle_reader_free(r);
    return s;
  }
  *out = r;
  return GMLE_OK;
}

void gmle_reader_free(gmle_reader *r) {
  if (!r)
    return;
  if (r->free_impl)
    r->free_impl(r);
  if (r->fd >= 0)
    close(r->fd);
  gmle__free(r->lab);
  gmle__free(r->lab_off);
  gmle__free(r->row_line);
  gmle__free(r->path);
  gmle__free(r);
}

size_t gmle_reader_cols(const gmle_reader *r) { return r ? r->cols : 0; }

int gmle_reader_rows(const gmle_reader *r, uint64_t *n) {
  if (!r || !r->rows_known)
    return 0;
  if (n)
    *n = r->n_rows;
  return 1;
}

gmle_dtype gmle_reader_dtype(const gmle_reader *r) {
  return r ? r->dtype : GMLE_F64;
}

gmle_status gmle_reader_read(gmle_reader *r, void *buf, size_t max_rows,
                             size_t *n_read, const char **labels) {
  if (n_read)
    *n_read = 0;
  if (!r || !n_read)
    return gmle__error(r ? r->ctx : NULL, GMLE_E_INVALID_ARG,
                       "gmle_reader_read: NULL reader or n_read");
  gmle__clear_error(r->ctx);
  if (max_rows == 0)
    return GMLE_OK;
  size_t bytes;
  if (gmle__mul3_size(max_rows, r->cols, gmle__dtype_size(r->dtype), &bytes))
    return gmle__error(r->ctx, GMLE_E_TOO_LARGE,
                       "gmle_reader_read: %zu rows x %zu columns x %zu bytes "
                       "overflows size_t",
                       max_rows, r->cols, gmle__dtype_size(r->dtype));
  if (bytes && !buf)
    return gmle__error(r->ctx, GMLE_E_INVALID_ARG,
                       "gmle_reader_read: buf is NULL");
  gmle__rd_labels_reset(r);
  size_t n = 0;
  gmle_status s = r->read(r, buf, max_rows, &n);
  if (s != GMLE_OK) {
    gmle__rd_labels_reset(r);
    return s;
  }
  if (labels && r->has_labels) {
    if (r->lab_n != n)
      return gmle__error(r->ctx, GMLE_E_INTERNAL, "%s: %zu labels for %zu rows",
                         r->path, r->lab_n, n);
    for (size_t i = 0; i < n; i++)
      labels[i] = r->lab + r->lab_off[i];
  } else if (labels) {
    for (size_t i = 0; i < n; i++)
      labels[i] = NULL;
  }
  r->offset += n;
  *n_read = n;
  return GMLE_OK;
}

int gmle_reader_int_labels(const gmle_reader *r) {
  return r && r->read_int_labels != NULL;
}

gmle_status gmle_reader_read_int_labels(gmle_reader *r, int64_t *labels,
                                        size_t max_rows, size_t *n_read) {
  if (n_read)
    *n_read = 0;
  if (!r || !n_read)
    return gmle__error(r ? r->ctx : NULL, GMLE_E_INVALID_ARG,
                       "gmle_reader_read_int_labels: NULL reader or n_read");
  gmle__clear_error(r->ctx);
  if (!r->read_int_labels)
    return gmle__error(r->ctx, GMLE_E_UNSUPPORTED,
                       "%s: the labels are not all integers (read them as "
                       "text with gmle_reader_read)",
                       r->path);
  if (max_rows == 0)
    return GMLE_OK;
  if (!labels)
    return gmle__error(r->ctx, GMLE_E_INVALID_ARG,
                       "gmle_reader_read_int_labels: labels is NULL");
  gmle__rd_labels_reset(r);
  size_t n = 0;
  GMLE_TRY(r->read_int_labels(r, labels, max_rows, &n));
  r->offset += n;
  *n_read = n;
  return GMLE_OK;
}

gmle_status gmle_reader_rewind(gmle_reader *r) {
  if (!r)
    return GMLE_E_INVALID_ARG;
  gmle__clear_error(r->ctx);
  gmle__rd_labels_reset(r);
  GMLE_TRY(r->rewind(r));
  r->offset = 0;
  return GMLE_OK;
}

/* A format without its own seek: rewind, then read and drop the rows
 * before `row`. */
static gmle_status seek_by_reading(gmle_reader *r, uint64_t row, uint64_t *at) {
  GMLE_TRY(r->rewind(r));
  const size_t isz = gmle__dtype_size(r->dtype);
  const size_t per = r->cols ? GMLE__IO_CHUNK / (r->cols * isz) : 65536;
  const size_t batch = per ? per : 1;
  void *buf = r->cols ? gmle__malloc(batch * r->cols * isz) : NULL;
  GMLE_RETURN_IF(r->cols && !buf, r->ctx, GMLE_E_OUT_OF_MEMORY,
                 "%s: out of memory for skipping rows", r->path);
  uint64_t n = 0;
  gmle_status s = GMLE_OK;
  while (n < row) {
    size_t k = 0;
    gmle__rd_labels_reset(r);
    s = r->read(r, buf, row - n < batch ? (size_t)(row - n) : batch, &k);
    if (s != GMLE_OK || k == 0)
      break;
    n += k;
  }
  gmle__rd_labels_reset(r);
  gmle__free(buf);
  *at = n;
  return s;
}

gmle_status gmle_reader_seek(gmle_reader *r, uint64_t row) {
  if (!r)
    return GMLE_E_INVALID_ARG;
  gmle__clear_error(r->ctx);
  gmle__rd_labels_reset(r);
  r->row_line_n = 0;
  uint64_t at = 0;
  GMLE_TRY(r->seek ? r->seek(r, row, &at) : seek_by_reading(r, row, &at));
  r->offset = at;
  return GMLE_OK;
}

gmle_status gmle_reader_count_rows(gmle_reader *r, uint64_t *n) {
  if (!r)
    return GMLE_E_INVALID_ARG;
  GMLE_RETURN_IF(!n, r->ctx, GMLE_E_INVALID_ARG,
                 "gmle_reader_count_rows: n is NULL");
  if (r->rows_known) {
    *n = r->n_rows;
  } else {
    GMLE_TRY(gmle_reader_seek(r, UINT64_MAX));
    *n = r->offset;
  }
  return gmle_reader_rewind(r);
}

uint64_t gmle_reader_offset(const gmle_reader *r) { return r ? r->offset : 0; }

uint64_t gmle_reader_row_line(const gmle_reader *r, size_t i) {
  return r && i < r->row_line_n ? r->row_line[i] : 0;
}

const char *gmle_reader_column_name(const gmle_reader *r, size_t j) {
  if (!r || j >= r->cols || !r->column_name)
    return NULL;
  return r->column_name(r, j);
}

const char *gmle_reader_format(const gmle_reader *r) {
  if (!r)
    return NULL;
  switch (r->format) {
  case GMLE__RD_NPY:
    return "npy";
  case GMLE__RD_CSV:
    return "csv";
  case GMLE__RD_TEXT:
    return "text";
  case GMLE__RD_ARK:
    return "ark";
  }
  return NULL;
}
