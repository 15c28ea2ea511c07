/*
 * kaldi.h -- the Kaldi object parser shared by the archive reader
 * (io_ark.c): a buffered byte source and the objects of a Kaldi table
 * (binary and text matrices, compressed matrices, integer vectors), read
 * row by row. Not installed.
 *
 * Formats (Kaldi's base/io-funcs, matrix/kaldi-matrix.cc,
 * matrix/compressed-matrix.cc, util/kaldi-holder-inl.h):
 *   binary object  "\0B" then a token ("FM ", "DM ", "CM ", "CM2 ", "CM3 ")
 *   FM/DM          size byte 4, int32 rows, size byte 4, int32 cols, then
 *                  rows*cols float32/float64, row-major, little endian
 *   CM/CM2/CM3     float min, float range, int32 rows, int32 cols (16 raw
 *                  bytes), then CM: cols x 4 uint16 percentiles (p0, p25,
 *                  p75, p100) and rows bytes per column, column by column;
 *                  CM2: rows*cols uint16 row-major; CM3: rows*cols uint8
 *   text matrix    "[" rows of numbers, each ended by a line break, "]"
 *   int vector     binary: size byte 4, int32 n, then n x (size byte 4,
 *                  int32); text: the integers up to the end of the line
 */
#ifndef GMLE_KALDI_H
#define GMLE_KALDI_H

#include "io_internal.h"

#include <stdint.h>

/* Longest key accepted. */
#define GMLE__KD_MAX_KEY ((size_t)65536)
/* Buffer of a file source. */
#define GMLE__KD_BUF ((size_t)1 << 20)

/* A byte source read front to back: a file descriptor, or memory. */
typedef struct gmle__kd_in {
  const gmle_context *ctx;
  const char *name;   /* for messages (not owned) */
  int fd;             /* -1: memory */
  unsigned char *buf; /* file: owned buffer; memory: the data */
  size_t cap, pos, len;
  uint64_t base; /* source offset of buf[0] */
  uint64_t size; /* total bytes when known, else UINT64_MAX */
  int eof;       /* nothing beyond buf[len] */
} gmle__kd_in;

/* Read fd from its current position (size: the file's size, or UINT64_MAX
 * for pipes). base is the offset of that position. */
gmle_status gmle__kd_in_fd(gmle__kd_in *in, const gmle_context *ctx,
                           const char *name, int fd, uint64_t base,
                           uint64_t size);
void gmle__kd_in_mem(gmle__kd_in *in, const gmle_context *ctx, const char *name,
                     const void *data, size_t size);
/* Go to byte off (files: lseek; memory). */
gmle_status gmle__kd_in_seek(gmle__kd_in *in, uint64_t off);
void gmle__kd_in_free(gmle__kd_in *in);
/* Offset of the next byte. */
uint64_t gmle__kd_in_off(const gmle__kd_in *in);

typedef enum gmle__kd_kind {
  GMLE__KD_FM = 1, /* float matrix */
  GMLE__KD_DM,     /* double matrix */
  GMLE__KD_CM1,    /* compressed, one byte with column headers */
  GMLE__KD_CM2,    /* compressed, two bytes */
  GMLE__KD_CM3,    /* compressed, one byte */
  GMLE__KD_TEXT,   /* text matrix */
  GMLE__KD_IVEC,   /* binary int32 vector */
  GMLE__KD_IVEC_T  /* text int32 vector */
} gmle__kd_kind;

/* The object being read, and the scratch reused across objects. */
typedef struct gmle__kd_obj {
  gmle__kd_kind kind;
  const char *key; /* for messages (not owned) */
  uint64_t off;    /* byte offset of the object */
  uint64_t rows;   /* binary: rows (frames, or vector elements) */
  size_t cols;     /* matrices: columns (text: after the first row) */
  uint64_t row;    /* rows returned */
  int done;        /* every row returned and the object consumed (text:
                      the closing ']' seen) */
  int text_f32;    /* text numbers parsed as float32 */
  float cm_min, cm_range;
  float *cm_pct; /* CM: [cols*4] p0 p25 p75 p100 */
  size_t cm_pct_cap;
  unsigned char *cm_data; /* CM: the column-major bytes */
  size_t cm_data_cap;
  char *line; /* text: one row */
  size_t line_cap;
  double *trow; /* text: values of one row */
  size_t trow_cap;
  locale_t cloc; /* "C" locale for text numbers */
} gmle__kd_obj;

/* Read one line (without its '\n') into *buf (grown, NUL-terminated).
 * *at_end: 1 when the source had no byte left. */
gmle_status gmle__kd_read_line(gmle__kd_in *in, char **buf, size_t *cap,
                               size_t *len, int *at_end);
/* Skip whitespace and read a key into *key (grown, NUL-terminated) and the
 * separator after it. *at_end: 1 when the source ended before a key. */
gmle_status gmle__kd_read_key(gmle__kd_in *in, char **key, size_t *cap,
                              uint64_t *key_off, int *at_end);
/* Parse the header of the object at the source's position. int_vec: an
 * integer vector is expected (labels), else a matrix. Text vectors are
 * always accepted as labels (they are "the rest of the line"). Text
 * matrices are parsed as text_dtype (strtof for GMLE_F32, so that a float
 * printed with %.9g reads back exactly; strtod for GMLE_F64). */
gmle_status gmle__kd_begin(gmle__kd_in *in, gmle__kd_obj *o, const char *key,
                           int int_vec, gmle_dtype text_dtype);
/* Up to max_rows rows of a matrix into out (dtype, row stride o->cols);
 * cols_expected: 0 (any, on the first object) or the count every row must
 * have. *got: rows written. o->done is set when the object has ended. */
gmle_status gmle__kd_rows(gmle__kd_in *in, gmle__kd_obj *o, gmle_dtype dtype,
                          void *out, size_t max_rows, size_t cols_expected,
                          size_t *got);
/* Up to max elements of an integer vector into out. */
gmle_status gmle__kd_ints(gmle__kd_in *in, gmle__kd_obj *o, int32_t *out,
                          size_t max, size_t *got);
void gmle__kd_obj_free(gmle__kd_obj *o);

/* Kaldi's decoding of compressed matrices (exposed for the tests' sake). */
float gmle__kd_cm_u16(float min, float range, uint16_t v);
float gmle__kd_cm_char(float p0, float p25, float p75, float p100,
                       unsigned char v);

#endif /* GMLE_KALDI_H */
