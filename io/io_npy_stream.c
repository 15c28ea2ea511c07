/*
 * io_npy_stream.c -- streaming reader of .npy arrays (versions 1-3).
 *
 * The header is parsed by npy.c (gmle__npy_parse_header), which also checks
 * that the data the header claims lies within the file. Rows are then read
 * in batches with pread: straight into the caller's buffer when the file
 * holds float32/float64 in C order (byte-swapped in place when the byte
 * order differs from the host's), and through a bounded scratch buffer
 * otherwise (float16 to float64, Fortran order transposed batch by batch,
 * integer or string labels formatted as text). Integer labels are also
 * read as int64 without text (gmle_reader_read_int_labels).
 */
#include "npy.h"
#include "reader_format.h"

#include <inttypes.h>
#include <string.h>
#include <sys/types.h>

typedef struct npy_state {
  gmle__npy_header h;
  uint64_t data_off; /* file offset of element 0 */
  uint64_t rows;     /* N */
  size_t cols;       /* D in the file (1 for labels) */
  uint64_t cur;      /* next row */
  int fortran;       /* column-major with more than one column */
  int swap;          /* file byte order differs from the host's */
  unsigned char *scratch;
  size_t scratch_cap;
} npy_state;

/* ------------------------------------------------------------------------ */
/* Element conversion                                                       */
/* ------------------------------------------------------------------------ */

static void swap_bytes(unsigned char *p, size_t n, size_t size) {
  for (size_t k = 0; k < n; k++, p += size)
    for (size_t a = 0, b = size - 1; a < b; a++, b--) {
      unsigned char t = p[a];
      p[a] = p[b];
      p[b] = t;
    }
}

/* Store element src (file layout) at dst in the reader's dtype. */
static void convert_one(const gmle__npy_header *h, const unsigned char *src,
                        gmle_dtype out, void *dst) {
  uint64_t bits = gmle__ld_uint(src, h->itemsize, h->big_endian);
  double d;
  if (h->itemsize == 8) {
    memcpy(&d, &bits, 8);
  } else if (h->itemsize == 4) {
    uint32_t u = (uint32_t)bits;
    float f;
    memcpy(&f, &u, 4);
    if (out == GMLE_F32) {
      memcpy(dst, &f, 4);
      return;
    }
    d = f;
  } else {
    d = gmle__npy_half_to_double((uint16_t)bits);
  }
  memcpy(dst, &d, 8);
}

/* ------------------------------------------------------------------------ */
/* Reading                                                                  */
/* ------------------------------------------------------------------------ */

static gmle_status ensure_scratch(gmle_reader *r, npy_state *st) {
  if (st->scratch)
    return GMLE_OK;
  st->scratch_cap = GMLE__IO_CHUNK;
  st->scratch = gmle__malloc(st->scratch_cap);
  if (!st->scratch)
    return gmle__error(r->ctx, GMLE_E_OUT_OF_MEMORY,
                       "%s: cannot allocate a %zu-byte read buffer", r->path,
                       st->scratch_cap);
  return GMLE_OK;
}

/* Rows [r0, r0+k) of a C-order float array into buf. */
static gmle_status read_c(gmle_reader *r, npy_state *st, unsigned char *buf,
                          uint64_t r0, size_t k) {
  const size_t isz = st->h.itemsize, osz = gmle__dtype_size(r->dtype);
  const size_t n = k * st->cols; /* fits: checked by gmle_reader_read */
  const uint64_t off = st->data_off + r0 * st->cols * isz;
  if (isz == osz) {
    GMLE_TRY(gmle__io_pread_full(r->ctx, r->path, r->fd, buf, n * isz, off));
    if (st->swap)
      swap_bytes(buf, n, isz);
    return GMLE_OK;
  }
  GMLE_TRY(ensure_scratch(r, st));
  const size_t per = st->scratch_cap / isz;
  for (size_t done = 0; done < n;) {
    size_t m = n - done < per ? n - done : per;
    GMLE_TRY(gmle__io_pread_full(r->ctx, r->path, r->fd, st->scratch, m * isz,
                                 off + (uint64_t)done * isz));
    for (size_t i = 0; i < m; i++)
      convert_one(&st->h, st->scratch + i * isz, r->dtype,
                  buf + (done + i) * osz);
    done += m;
  }
  return GMLE_OK;
}

/* Rows [r0, r0+k) of a Fortran-order (column-major) array: each column's
 * run of k elements is contiguous in the file. */
static gmle_status read_f(gmle_reader *r, npy_state *st, unsigned char *buf,
                          uint64_t r0, size_t k) {
  const size_t isz = st->h.itemsize, osz = gmle__dtype_size(r->dtype);
  GMLE_TRY(ensure_scratch(r, st));
  const size_t per = st->scratch_cap / isz;
  for (size_t j = 0; j < st->cols; j++) {
    uint64_t col_off = st->data_off + ((uint64_t)j * st->rows + r0) * isz;
    for (size_t done = 0; done < k;) {
      size_t m = k - done < per ? k - done : per;
      GMLE_TRY(gmle__io_pread_full(r->ctx, r->path, r->fd, st->scratch, m * isz,
                                   col_off + (uint64_t)done * isz));
      for (size_t i = 0; i < m; i++)
        convert_one(&st->h, st->scratch + i * isz, r->dtype,
                    buf + ((done + i) * st->cols + j) * osz);
      done += m;
    }
  }
  return GMLE_OK;
}

/* A float label that is not a whole number (or beyond int64). */
static gmle_status not_whole(gmle_reader *r, const gmle__npy_header *h,
                             const unsigned char *p, uint64_t row) {
  double d;
  gmle__npy_to_f64(h, p, 1, &d);
  return gmle__error_at(
      r->ctx, GMLE_E_BAD_FORMAT,
      &(gmle_error_location){.row = row, .fields = GMLE_LOC_ROW},
      "%s: row %llu: label %.17g is not an integer "
      "(floating-point labels must hold whole numbers)",
      r->path, (unsigned long long)row, d);
}

/* One label element as text. */
static gmle_status push_label(gmle_reader *r, npy_state *st,
                              const unsigned char *p, uint64_t row) {
  const gmle__npy_header *h = &st->h;
  char txt[64];
  switch (h->kind) {
  case 'i': {
    uint64_t v = gmle__ld_uint(p, h->itemsize, h->big_endian);
    int64_t sv;
    if (h->itemsize < 8) {
      uint64_t m = (uint64_t)1 << (8 * h->itemsize - 1);
      v = (v ^ m) - m;
    }
    memcpy(&sv, &v, 8);
    snprintf(txt, sizeof txt, "%" PRId64, sv);
    return gmle__rd_label_push(r, txt, strlen(txt));
  }
  case 'u':
  case 'b': {
    uint64_t v = gmle__ld_uint(p, h->itemsize, h->big_endian);
    if (h->kind == 'b')
      v = v != 0;
    snprintf(txt, sizeof txt, "%" PRIu64, v);
    return gmle__rd_label_push(r, txt, strlen(txt));
  }
  case 'f': {
    int64_t v;
    if (gmle__npy_to_i64(h, p, 1, &v) != 1)
      return not_whole(r, h, p, row);
    snprintf(txt, sizeof txt, "%" PRId64, v);
    return gmle__rd_label_push(r, txt, strlen(txt));
  }
  case 'S': {
    size_t n = 0;
    while (n < h->itemsize && p[n])
      n++;
    return gmle__rd_label_push(r, (const char *)p, n);
  }
  case 'U': {
    /* UCS-4 code points to UTF-8, up to the first NUL. */
    size_t n = h->itemsize / 4;
    char small[256] = {0};
    char *tmp = n * 4 + 1 <= sizeof small ? small : gmle__malloc(n * 4 + 1);
    if (!tmp)
      return gmle__error(r->ctx, GMLE_E_OUT_OF_MEMORY,
                         "%s: cannot allocate a label", r->path);
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
      uint32_t c = (uint32_t)gmle__ld_uint(p + 4 * i, 4, h->big_endian);
      if (c == 0)
        break;
      if (c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) {
        if (tmp != small)
          gmle__free(tmp);
        return gmle__error_at(
            r->ctx, GMLE_E_BAD_FORMAT,
            &(gmle_error_location){.row = row, .fields = GMLE_LOC_ROW},
            "%s: row %llu: invalid code point U+%04lX in a "
            "label",
            r->path, (unsigned long long)row, (unsigned long)c);
      }
      w += gmle__utf8_encode(c, tmp + w);
    }
    gmle_status s = gmle__rd_label_push(r, tmp, w);
    if (tmp != small)
      gmle__free(tmp);
    return s;
  }
  }
  return gmle__error(r->ctx, GMLE_E_INTERNAL, "%s: label kind '%c'", r->path,
                     h->kind);
}

static gmle_status read_labels(gmle_reader *r, npy_state *st, uint64_t r0,
                               size_t k) {
  const size_t isz = st->h.itemsize;
  GMLE_TRY(ensure_scratch(r, st));
  size_t per = st->scratch_cap / isz;
  if (per == 0) /* a string wider than the scratch buffer */
    return gmle__error(r->ctx, GMLE_E_UNSUPPORTED,
                       "%s: labels of %zu bytes each are too wide", r->path,
                       isz);
  for (size_t done = 0; done < k;) {
    size_t m = k - done < per ? k - done : per;
    GMLE_TRY(gmle__io_pread_full(r->ctx, r->path, r->fd, st->scratch, m * isz,
                                 st->data_off + (r0 + done) * isz));
    for (size_t i = 0; i < m; i++)
      GMLE_TRY(push_label(r, st, st->scratch + i * isz, r0 + done + i));
    done += m;
  }
  return GMLE_OK;
}

/* Native-order integers of 1, 2 or 4 bytes widened to int64 with a typed
 * loop (the common label dtypes); 0 when the layout is another. */
static int widen_native(const gmle__npy_header *h, const unsigned char *src,
                        size_t n, int64_t *dst) {
  if (h->itemsize > 1 && h->big_endian != gmle__host_big_endian())
    return 0;
#define WIDEN(T)                                                               \
  do {                                                                         \
    for (size_t i = 0; i < n; i++) {                                           \
      T v;                                                                     \
      memcpy(&v, src + i * sizeof(T), sizeof(T));                              \
      dst[i] = (int64_t)v;                                                     \
    }                                                                          \
    return 1;                                                                  \
  } while (0)
  if (h->kind == 'i') {
    if (h->itemsize == 1)
      WIDEN(int8_t);
    if (h->itemsize == 2)
      WIDEN(int16_t);
    if (h->itemsize == 4)
      WIDEN(int32_t);
  } else if (h->kind == 'u') {
    if (h->itemsize == 1)
      WIDEN(uint8_t);
    if (h->itemsize == 2)
      WIDEN(uint16_t);
    if (h->itemsize == 4)
      WIDEN(uint32_t);
  }
#undef WIDEN
  return 0;
}

/* Labels as int64 (gmle_reader_read_int_labels): native int64 straight
 * into the caller's array, other widths and floats through the scratch
 * buffer. */
static gmle_status npy_read_int_labels(gmle_reader *r, int64_t *out,
                                       size_t max_rows, size_t *n_read) {
  npy_state *st = r->impl;
  const gmle__npy_header *h = &st->h;
  const uint64_t left = st->rows - st->cur;
  const size_t k = (uint64_t)max_rows < left ? max_rows : (size_t)left;
  const size_t isz = h->itemsize;
  const uint64_t off = st->data_off + st->cur * isz;
  if (k == 0)
    return GMLE_OK;
  if (h->kind == 'i' && isz == 8 && h->big_endian == gmle__host_big_endian()) {
    GMLE_TRY(gmle__io_pread_full(r->ctx, r->path, r->fd, out, k * 8, off));
  } else {
    GMLE_TRY(ensure_scratch(r, st));
    const size_t per = st->scratch_cap / isz;
    for (size_t done = 0; done < k;) {
      const size_t m = k - done < per ? k - done : per;
      GMLE_TRY(gmle__io_pread_full(r->ctx, r->path, r->fd, st->scratch, m * isz,
                                   off + (uint64_t)done * isz));
      if (!widen_native(h, st->scratch, m, out + done)) {
        const size_t ok = gmle__npy_to_i64(h, st->scratch, m, out + done);
        if (ok < m)
          return not_whole(r, h, st->scratch + ok * isz, st->cur + done + ok);
      }
      done += m;
    }
  }
  st->cur += k;
  *n_read = k;
  return GMLE_OK;
}

static gmle_status npy_read(gmle_reader *r, void *buf, size_t max_rows,
                            size_t *n_read) {
  npy_state *st = r->impl;
  uint64_t left = st->rows - st->cur;
  size_t k = (uint64_t)max_rows < left ? max_rows : (size_t)left;
  if (k == 0)
    return GMLE_OK;
  if (r->labels_only)
    GMLE_TRY(read_labels(r, st, st->cur, k));
  else if (st->fortran)
    GMLE_TRY(read_f(r, st, buf, st->cur, k));
  else
    GMLE_TRY(read_c(r, st, buf, st->cur, k));
  st->cur += k;
  *n_read = k;
  return GMLE_OK;
}

static gmle_status npy_rewind(gmle_reader *r) {
  npy_state *st = r->impl;
  st->cur = 0;
  return GMLE_OK;
}

static gmle_status npy_seek(gmle_reader *r, uint64_t row, uint64_t *at) {
  npy_state *st = r->impl;
  st->cur = row < st->rows ? row : st->rows;
  *at = st->cur;
  return GMLE_OK;
}

static void npy_free(gmle_reader *r) {
  npy_state *st = r->impl;
  if (!st)
    return;
  gmle__free(st->scratch);
  gmle__free(st);
  r->impl = NULL;
}

/* ------------------------------------------------------------------------ */
/* Opening                                                                  */
/* ------------------------------------------------------------------------ */

static const char *kind_name(const gmle__npy_header *h, char *buf, size_t cap) {
  switch (h->kind) {
  case 'f':
    snprintf(buf, cap, "float%zu", h->itemsize * 8);
    break;
  case 'i':
    snprintf(buf, cap, "int%zu", h->itemsize * 8);
    break;
  case 'u':
    snprintf(buf, cap, "uint%zu", h->itemsize * 8);
    break;
  case 'b':
    snprintf(buf, cap, "bool");
    break;
  case 'U':
    snprintf(buf, cap, "str (<U%zu)", h->itemsize / 4);
    break;
  case 'S':
    snprintf(buf, cap, "bytes (|S%zu)", h->itemsize);
    break;
  default:
    snprintf(buf, cap, "kind '%c'", h->kind);
  }
  return buf;
}

static void shape_text(const gmle__npy_header *h, char *buf, size_t cap) {
  size_t j = 0;
  j += (size_t)snprintf(buf + j, cap - j, "(");
  for (size_t k = 0; k < h->ndim && j < cap; k++)
    j +=
        (size_t)snprintf(buf + j, cap - j, "%s%zu", k ? ", " : "", h->shape[k]);
  if (j < cap)
    snprintf(buf + j, cap - j, h->ndim == 1 ? ",)" : ")");
}

static gmle_status npy_layout(gmle_reader *r, npy_state *st) {
  const gmle__npy_header *h = &st->h;
  char kn[48], sh[256];
  kind_name(h, kn, sizeof kn);
  shape_text(h, sh, sizeof sh);
  if (r->labels_only) {
    int ok = ((h->kind == 'i' || h->kind == 'u') &&
              (h->itemsize == 1 || h->itemsize == 2 || h->itemsize == 4 ||
               h->itemsize == 8)) ||
             (h->kind == 'b' && h->itemsize == 1) ||
             (h->kind == 'f' && gmle__npy_is_numeric(h)) ||
             (h->kind == 'U' && h->itemsize % 4 == 0 && h->itemsize > 0) ||
             (h->kind == 'S' && h->itemsize > 0);
    if (!ok)
      return gmle__error(r->ctx, GMLE_E_UNSUPPORTED,
                         "%s: unsupported dtype '%s' (%s) for labels: "
                         "labels must be integers or strings",
                         r->path, h->descr, kn);
    if (h->ndim > 2 || (h->ndim == 2 && h->shape[1] != 1))
      return gmle__error(r->ctx, GMLE_E_UNSUPPORTED,
                         "%s: labels must have shape (N,) or (N, 1), not %s",
                         r->path, sh);
    st->rows = h->ndim == 0 ? 1 : h->shape[0];
    st->cols = 1;
    r->cols = 0;
    r->has_labels = 1;
    r->dtype = GMLE_F64;
    return GMLE_OK;
  }
  if (h->kind != 'f' || !gmle__npy_is_numeric(h))
    return gmle__error(r->ctx, GMLE_E_UNSUPPORTED,
                       "%s: unsupported dtype '%s' (%s): data must be "
                       "float16, float32 or float64%s",
                       r->path, h->descr, kn,
                       (h->kind == 'i' || h->kind == 'u' || h->kind == 'b')
                           ? " (integer arrays are read only as labels)"
                           : "");
  if (h->ndim > 2)
    return gmle__error(r->ctx, GMLE_E_UNSUPPORTED,
                       "%s: shape %s: only 1-D (N,) and 2-D (N, D) arrays "
                       "can be read; reshape to (N, D)",
                       r->path, sh);
  st->rows = h->ndim == 0 ? 1 : h->shape[0];
  st->cols = h->ndim == 2 ? h->shape[1] : 1;
  if (st->cols == 0)
    return gmle__error(r->ctx, GMLE_E_UNSUPPORTED,
                       "%s: shape %s has no feature columns", r->path, sh);
  st->fortran =
      h->fortran_order && h->ndim == 2 && st->cols > 1 && st->rows > 1;
  r->cols = st->cols;
  r->dtype = h->itemsize == 4 ? GMLE_F32 : GMLE_F64;
  st->swap = h->itemsize > 1 && h->big_endian != gmle__host_big_endian();
  return GMLE_OK;
}

gmle_status gmle__npy_reader_open(gmle_reader *r,
                                  const gmle_reader_options *opt) {
  (void)opt;
  npy_state *st = gmle__calloc(1, sizeof *st);
  if (!st)
    return gmle__error(r->ctx, GMLE_E_OUT_OF_MEMORY,
                       "%s: cannot allocate a .npy reader", r->path);
  size_t avail = r->file_size < GMLE__NPY_MAX_PREFIX ? (size_t)r->file_size
                                                     : GMLE__NPY_MAX_PREFIX;
  unsigned char *head = gmle__malloc(avail);
  gmle_status s = GMLE_OK;
  if (!head)
    s = gmle__error(r->ctx, GMLE_E_OUT_OF_MEMORY,
                    "%s: cannot allocate %zu bytes for the header", r->path,
                    avail);
  if (s == GMLE_OK)
    s = gmle__io_pread_full(r->ctx, r->path, r->fd, head, avail, 0);
  if (s == GMLE_OK)
    s = gmle__npy_parse_header(r->ctx, r->path, head, avail, r->file_size,
                               &st->h);
  gmle__free(head);
  if (s == GMLE_OK)
    s = npy_layout(r, st);
  if (s != GMLE_OK) {
    gmle__free(st);
    return s;
  }
  st->data_off = st->h.header_len;
  r->impl = st;
  r->read = npy_read;
  r->rewind = npy_rewind;
  r->seek = npy_seek;
  r->free_impl = npy_free;
  r->column_name = NULL;
  /* Every label an exact int64: signed integers, bool, unsigned up to 32
   * bits, floats (whole values checked as read); uint64 can exceed int64
   * and stays text. */
  const gmle__npy_header *h = &st->h;
  if (r->labels_only && (h->kind == 'i' || h->kind == 'b' || h->kind == 'f' ||
                         (h->kind == 'u' && h->itemsize < 8)))
    r->read_int_labels = npy_read_int_labels;
  r->rows_known = 1;
  r->n_rows = st->rows;
  return GMLE_OK;
}
