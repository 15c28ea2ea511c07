/*
 * npy.h -- the .npy header codec (internal).
 *
 * Format (numpy's NEP 1 / numpy.lib.format): the magic "\x93NUMPY", a major
 * and a minor version byte, the length of the header text (little-endian:
 * 2 bytes for version 1.0, 4 bytes for 2.0 and 3.0), then the header text,
 * a Python dict literal ("{'descr': '<f8', 'fortran_order': False,
 * 'shape': (3, 4), }") padded with spaces and ended by '\n'; the raw array
 * data follows. Version 3.0 only allows the header to be UTF-8; the keys and
 * descriptors gmle accepts are ASCII in every version.
 *
 * Limits (documented choices):
 * - The header text (the HEADER_LEN field) is at most GMLE__NPY_MAX_HEADER
 *   = 10000 bytes in every version, numpy's own default max_header_size.
 *   numpy writes a longer header only for structured dtypes with many
 *   fields, which gmle refuses anyway; a v2/v3 header_len of up to 4 GiB is
 *   therefore refused before anything is read or allocated from it.
 * - At most GMLE__NPY_MAX_NDIM = 8 dimensions.
 *
 * Statuses of gmle__npy_parse_header (messages name the file and the byte
 * offset, numpy style):
 *   GMLE_E_BAD_FORMAT  bad magic, malformed header text, missing or extra
 *                      keys, malformed descr ('<ixy'), negative or
 *                      non-integer shape, fortran_order not a bool, shape
 *                      product * itemsize overflowing size_t, header too long
 *   GMLE_E_UNSUPPORTED_VERSION  a version other than 1.0, 2.0, 3.0
 *   GMLE_E_UNSUPPORTED object ('|O'), structured, subarray, complex,
 *                      datetime, void dtypes; more than 8 dimensions
 *   GMLE_E_CORRUPT     truncated: the header or the data runs past the end
 *                      of the file (file_size)
 *   GMLE_E_INVALID_ARG NULL pointers, or `avail` too short although the file
 *                      is longer (pass at least min(file_size,
 *                      GMLE__NPY_MAX_PREFIX) bytes)
 */
#ifndef GMLE_NPY_H
#define GMLE_NPY_H

#include "byte_order.h"
#include "internal.h"

#include <stddef.h>
#include <stdint.h>

#define GMLE__NPY_MAX_HEADER 10000u /* bytes of header text, any version */
#define GMLE__NPY_MAX_NDIM 8
/* Enough leading bytes for gmle__npy_parse_header to see any header it
 * accepts: magic (6) + version (2) + length (4) + header text. */
#define GMLE__NPY_MAX_PREFIX (12u + GMLE__NPY_MAX_HEADER)

typedef struct gmle__npy_header {
  char kind;         /* 'f' float, 'i' signed int, 'u' unsigned int,
                        'b' bool, 'U' unicode (UCS-4), 'S' bytes */
  size_t itemsize;   /* bytes per element ('<U5': 20, '|S5': 5) */
  int big_endian;    /* 1 for '>' (or '=' on a big-endian host); 0 for
                        '<' and '|' */
  int fortran_order; /* 1: column-major data */
  size_t ndim;       /* 0 for shape=() (one element) */
  size_t shape[GMLE__NPY_MAX_NDIM];
  size_t n_elements; /* product of shape (1 for ndim 0) */
  size_t header_len; /* bytes before the data: 10 or 12 + HEADER_LEN */
  size_t data_bytes; /* n_elements * itemsize (checked, fits in size_t) */
  int major, minor;  /* format version */
  char descr[16];    /* the descr string as written ("<f8") */
} gmle__npy_header;

/* Parse and validate the header of a .npy file or .npz member `name` (for
 * messages). buf holds the first `avail` bytes, file_size is the total size
 * of the file (or member). On success the data (data_bytes of it) is known
 * to lie within file_size; bytes after it are allowed (numpy ignores
 * them). See the statuses above. */
gmle_status gmle__npy_parse_header(const gmle_context *ctx, const char *name,
                                   const unsigned char *buf, size_t avail,
                                   uint64_t file_size, gmle__npy_header *out);

/* Write a version 1.0 header for `descr` ("<f8", "<U7", ...), C order unless
 * fortran_order, and shape[ndim] into buf: numpy's layout, space padded so
 * that the data starts at a multiple of 64 bytes, ended by '\n'. Returns the
 * number of bytes written (the data offset), or 0 when it does not fit in
 * cap, ndim > GMLE__NPY_MAX_NDIM or descr is unusable. Writes no NUL. */
size_t gmle__npy_format_header(char *buf, size_t cap, const char *descr,
                               int fortran_order, size_t ndim,
                               const size_t *shape);

/* 1 when elements of h convert to numbers (kinds f with itemsize 2, 4, 8;
 * i and u with itemsize 1, 2, 4, 8; b with itemsize 1), else 0. */
int gmle__npy_is_numeric(const gmle__npy_header *h);

/* Element conversion. `src` points at element data laid out as h says
 * (byte order handled here); elements are read one itemsize apart.
 * - to_f64: any numeric kind. Exact for f2/f4/f8 and for integers of
 *   magnitude <= 2^53; larger integers are rounded to nearest.
 * - to_f32: only kind 'f' with itemsize 2 or 4 (exact); returns -1 for
 *   anything else (float64 -> float32 would lose bits silently).
 * - to_i64: kinds i, u, b; and f when the value is integral and in range.
 *   Returns the index of the first element that cannot be represented
 *   exactly as int64 (NaN, 2.5, a uint64 above INT64_MAX), or n on success.
 * src may be unaligned. */
void gmle__npy_to_f64(const gmle__npy_header *h, const unsigned char *src,
                      size_t n, double *dst);
int gmle__npy_to_f32(const gmle__npy_header *h, const unsigned char *src,
                     size_t n, float *dst);
size_t gmle__npy_to_i64(const gmle__npy_header *h, const unsigned char *src,
                        size_t n, int64_t *dst);

/* IEEE half -> double (exact). */
double gmle__npy_half_to_double(uint16_t h);

/* Whole arrays in C (row-major) order, whatever h->fortran_order says:
 * dst receives h->n_elements values. `data` is the array data (data_bytes
 * bytes after the header). array_to_f64 needs gmle__npy_is_numeric(h);
 * array_to_i64 returns the C-order index of the first element that is not
 * an exact int64 (see gmle__npy_to_i64), or n_elements on success. */
void gmle__npy_array_to_f64(const gmle__npy_header *h,
                            const unsigned char *data, double *dst);
size_t gmle__npy_array_to_i64(const gmle__npy_header *h,
                              const unsigned char *data, int64_t *dst);

#endif /* GMLE_NPY_H */
