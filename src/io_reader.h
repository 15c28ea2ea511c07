/*
 * io_reader.h -- internals shared by the data-file readers (io_reader.c,
 * io_npy_stream.c, io_csv.c) and the writer (io_writer.c). Not installed.
 */
#ifndef GMLE_IO_READER_H
#define GMLE_IO_READER_H

#include "internal.h"

#include <locale.h>
#include <stdint.h>

/* Bytes of file data converted per pread when a batch cannot be read
 * straight into the caller's buffer (float16, Fortran order, labels). */
#define GMLE__IO_CHUNK ((size_t)1 << 20)
/* The longest CSV/text line accepted (a line is buffered whole). */
#define GMLE__CSV_MAX_LINE ((size_t)1 << 30)

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
  /* The format's state and operations. */
  void *impl;
  gmle_status (*read)(gmle_reader *r, void *buf, size_t max_rows,
                      size_t *n_read);
  gmle_status (*rewind)(gmle_reader *r);
  void (*free_impl)(gmle_reader *r);
  const char *(*column_name)(const gmle_reader *r, size_t j);
};

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

/* io_reader.c: gmle_reader_open on an open file descriptor (a regular
 * file, e.g. a memfd), which the reader owns from here on: it is closed by
 * gmle_reader_free, or here on error. `path` names the data in messages.
 * For the fuzzing harnesses (tests/fuzz), which read from memory. */
GMLE_API gmle_status gmle__reader_open_fd(gmle_context *ctx, int fd,
                                          const char *path,
                                          const gmle_reader_options *opt,
                                          gmle_reader **out);

/* io_reader.c: label texts of the current read. */
void gmle__rd_labels_reset(gmle_reader *r);
/* Append label text s[0..n) (copied, NUL added). */
gmle_status gmle__rd_label_push(gmle_reader *r, const char *s, size_t n);

/* Grow *p (elements of `elem` bytes, *cap of them) to hold at least `need`,
 * keeping the first `keep` elements. GMLE_E_OUT_OF_MEMORY / TOO_LARGE. */
gmle_status gmle__io_grow(const gmle_context *ctx, void **p, size_t *cap,
                          size_t need, size_t keep, size_t elem);

/* Read exactly n bytes at offset off; a short read is GMLE_E_CORRUPT
 * ("file shrank"), a system error GMLE_E_IO; both name path and offset. */
gmle_status gmle__io_pread_full(const gmle_context *ctx, const char *path,
                                int fd, void *buf, size_t n, uint64_t off);

/* A new "C" locale for number parsing and formatting under uselocale()
 * (free with freelocale); (locale_t)0 with an error recorded on failure. */
locale_t gmle__io_new_c_locale(const gmle_context *ctx);

/* 1 on a big-endian host. */
int gmle__io_host_big_endian(void);

#endif /* GMLE_IO_READER_H */
