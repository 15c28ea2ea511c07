/*
 * reader_format.h -- the contract between the reader dispatch (io_reader.c,
 * which picks a format from the path and the content) and the formats
 * (io_npy_stream.c, io_csv.c, io_ark.c): the reader a format fills in, and
 * each format's one entry point. Formats know nothing else of the dispatch.
 * Not installed.
 */
#ifndef GMLE_READER_FORMAT_H
#define GMLE_READER_FORMAT_H

#include "io_internal.h"

#include <stdint.h>

typedef enum gmle__rd_format {
  GMLE__RD_NPY = 1,
  GMLE__RD_CSV = 2,
  GMLE__RD_TEXT = 3, /* labels file, one label per line */
  GMLE__RD_ARK = 4   /* Kaldi table (io_ark.c) */
} gmle__rd_format;

struct gmle_reader {
  gmle_context *ctx;
  char *path; /* copy, for messages */
  int fd;
  uint64_t file_size;
  gmle__rd_format format;
  int labels_only;
  int has_labels; /* read() can fill `labels` */
  size_t cols;
  gmle_dtype dtype;
  int rows_known;
  uint64_t n_rows;
  uint64_t offset; /* rows returned since open / rewind */
  /* Label texts of the last read(): NUL-terminated strings in `lab`, the
   * start of each at lab_off[i]. */
  char *lab;
  size_t lab_len, lab_cap;
  size_t *lab_off;
  size_t lab_n, lab_off_cap;
  /* CSV: the 1-based file line of each row of the last read(), so that a
   * value found wrong later is named by its line, as parse errors are. */
  uint64_t *row_line;
  size_t row_line_n, row_line_cap;
  /* The format's state and operations. */
  void *impl;
  gmle_status (*read)(gmle_reader *r, void *buf, size_t max_rows,
                      size_t *n_read);
  gmle_status (*rewind)(gmle_reader *r);
  /* Optional: go to data row `row` (counted from the first), *at the row
   * reached (the row count when row is beyond the end). NULL: the
   * dispatch rewinds and reads the rows before it. */
  gmle_status (*seek)(gmle_reader *r, uint64_t row, uint64_t *at);
  /* Labels as integers, without text: set by formats whose labels are all
   * exact int64 (integer .npy labels files), else NULL. */
  gmle_status (*read_int_labels)(gmle_reader *r, int64_t *labels,
                                 size_t max_rows, size_t *n_read);
  void (*free_impl)(gmle_reader *r);
  const char *(*column_name)(const gmle_reader *r, size_t j);
};

/* The label texts of the current read (io_util.c). */
void gmle__rd_labels_reset(gmle_reader *r);
/* Append label text s[0..n) (copied, NUL added). */
gmle_status gmle__rd_label_push(gmle_reader *r, const char *s, size_t n);

/* ---- The formats' entry points ------------------------------------------- */

/* io_npy_stream.c / io_csv.c: fill r (cols, dtype, rows, impl and the
 * operations) for an open r->fd. On error they free what they allocated. */
gmle_status gmle__npy_reader_open(gmle_reader *r,
                                  const gmle_reader_options *opt);
gmle_status gmle__csv_reader_open(gmle_reader *r,
                                  const gmle_reader_options *opt);

/* io_ark.c: whether a path is a Kaldi rspecifier ("ark:", "ark,t:",
 * "scp:"), and opening one (allocates and fills *out). */
int gmle__ark_is_rspecifier(const char *s);
gmle_status gmle__ark_reader_open(gmle_context *ctx, const char *spec,
                                  const gmle_reader_options *opt,
                                  gmle_reader **out);

#endif /* GMLE_READER_FORMAT_H */
