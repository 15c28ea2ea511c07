/*
 * io_util.c -- the helpers every file of the data-file layer shares: growing
 * buffers, whole reads, the C locale, the one UTF-8 codec, and the label
 * texts a reader returns.
 */
#include "reader_format.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------------ */
/* Buffers and reads */
/* ------------------------------------------------------------------------ */

locale_t gmle__io_new_c_locale(const gmle_context *ctx) {
  locale_t loc = newlocale(LC_ALL_MASK, "C", (locale_t)0);
  if (loc == (locale_t)0)
    gmle__error(ctx, GMLE_E_OUT_OF_MEMORY,
                "cannot create the C locale for number conversion: %s",
                strerror(errno));
  return loc;
}

gmle_status gmle__io_grow(const gmle_context *ctx, void **p, size_t *cap,
                          size_t need, size_t keep, size_t elem) {
  if (need <= *cap)
    return GMLE_OK;
  size_t ncap = *cap ? *cap : 16;
  while (ncap < need) {
    if (ncap > SIZE_MAX / 2) {
      ncap = need;
      break;
    }
    ncap *= 2;
  }
  size_t bytes;
  if (gmle__mul_size(ncap, elem, &bytes))
    return gmle__error(ctx, GMLE_E_TOO_LARGE,
                       "buffer of %zu elements of %zu bytes overflows size_t",
                       ncap, elem);
  void *q = gmle__malloc(bytes);
  if (!q)
    return gmle__error(ctx, GMLE_E_OUT_OF_MEMORY, "cannot allocate %zu bytes",
                       bytes);
  if (keep && *p)
    memcpy(q, *p, keep * elem);
  gmle__free(*p);
  *p = q;
  *cap = ncap;
  return GMLE_OK;
}

gmle_status gmle__io_pread_full(const gmle_context *ctx, const char *path,
                                int fd, void *buf, size_t n, uint64_t off) {
  unsigned char *p = buf;
  size_t done = 0;
  while (done < n) {
    size_t want = n - done;
    if (want > ((size_t)1 << 30))
      want = (size_t)1 << 30;
    ssize_t got = pread(fd, p + done, want, (off_t)(off + done));
    if (got < 0) {
      if (errno == EINTR)
        continue;
      return gmle__error(ctx, GMLE_E_IO, "%s: byte %llu: read failed: %s", path,
                         (unsigned long long)(off + done), strerror(errno));
    }
    if (got == 0)
      return gmle__error(ctx, GMLE_E_CORRUPT,
                         "%s: byte %llu: unexpected end of file (wanted %zu "
                         "more bytes; was the file truncated while open?)",
                         path, (unsigned long long)(off + done), n - done);
    done += (size_t)got;
  }
  return GMLE_OK;
}

void gmle__rd_labels_reset(gmle_reader *r) {
  r->lab_len = 0;
  r->lab_n = 0;
}

gmle_status gmle__rd_label_push(gmle_reader *r, const char *s, size_t n) {
  if (n > SIZE_MAX - r->lab_len - 1)
    return gmle__error(r->ctx, GMLE_E_TOO_LARGE, "%s: label text too long",
                       r->path);
  void *lab = r->lab, *off = r->lab_off;
  GMLE_TRY(gmle__io_grow(r->ctx, &lab, &r->lab_cap, r->lab_len + n + 1,
                         r->lab_len, 1));
  r->lab = lab;
  GMLE_TRY(gmle__io_grow(r->ctx, &off, &r->lab_off_cap, r->lab_n + 1, r->lab_n,
                         sizeof(size_t)));
  r->lab_off = off;
  if (n)
    memcpy(r->lab + r->lab_len, s, n);
  r->lab[r->lab_len + n] = '\0';
  r->lab_off[r->lab_n++] = r->lab_len;
  r->lab_len += n + 1;
  return GMLE_OK;
}

/* ------------------------------------------------------------------------ */
/* UTF-8                                                                    */
/* ------------------------------------------------------------------------ */

size_t gmle__utf8_decode(const unsigned char *s, uint32_t *cp) {
  unsigned char c = s[0];
  size_t n;
  uint32_t v;
  if (c < 0x80) {
    *cp = c;
    return 1;
  } else if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
    v = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    v = c & 0x0F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    v = c & 0x07;
  } else {
    return 0;
  }
  for (size_t i = 1; i < n; i++) {
    if ((s[i] & 0xC0) != 0x80)
      return 0;
    v = (v << 6) | (s[i] & 0x3F);
  }
  if ((n == 3 && v < 0x800) || (n == 4 && (v < 0x10000 || v > 0x10FFFF)) ||
      (v >= 0xD800 && v <= 0xDFFF))
    return 0;
  *cp = v;
  return n;
}

size_t gmle__utf8_encode(uint32_t cp, char *out) {
  unsigned char *o = (unsigned char *)out;
  if (cp < 0x80) {
    o[0] = (unsigned char)cp;
    return 1;
  }
  if (cp < 0x800) {
    o[0] = (unsigned char)(0xC0 | (cp >> 6));
    o[1] = (unsigned char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    o[0] = (unsigned char)(0xE0 | (cp >> 12));
    o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[2] = (unsigned char)(0x80 | (cp & 0x3F));
    return 3;
  }
  o[0] = (unsigned char)(0xF0 | (cp >> 18));
  o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
  o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
  o[3] = (unsigned char)(0x80 | (cp & 0x3F));
  return 4;
}
