/* npy.c -- the .npy header codec and element conversions. */
#include "npy.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */
/* ------------------------------------------------------------------------ */

static gmle_status fail(const gmle_context *ctx, gmle_status s,
                        const char *name, size_t off, const char *fmt, ...)
    GMLE__PRINTF(5, 6);

static gmle_status fail(const gmle_context *ctx, gmle_status s,
                        const char *name, size_t off, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return gmle__error(ctx, s, "%s: byte %zu: %s", name ? name : "(npy)", off,
                     msg);
}

/* Printable excerpt of header text for messages. */
static void excerpt(char *dst, size_t cap, const unsigned char *p, size_t n) {
  size_t j = 0;
  for (size_t i = 0; i < n && j + 5 < cap; i++) {
    unsigned char c = p[i];
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      dst[j++] = (char)c;
    } else {
      j += (size_t)snprintf(dst + j, cap - j, "\\x%02x", c);
    }
  }
  if (j >= cap)
    j = cap - 1;
  dst[j] = '\0';
}

/* ------------------------------------------------------------------------ */
/* Header text parser                                                       */
/* ------------------------------------------------------------------------ */

typedef struct parser {
  const gmle_context *ctx;
  const char *name;
  const unsigned char *s; /* header text */
  size_t n, i;            /* length, cursor */
  size_t base;            /* file offset of s[0] */
} parser;

static size_t at(const parser *p) { return p->base + p->i; }

static void skip_ws(parser *p) {
  while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' ||
                         p->s[p->i] == '\n' || p->s[p->i] == '\r'))
    p->i++;
}

static gmle_status syntax(parser *p, const char *what) {
  char ex[64];
  size_t left = p->n - p->i;
  excerpt(ex, sizeof ex, p->s + p->i, left < 12 ? left : 12);
  return fail(p->ctx, GMLE_E_BAD_FORMAT, p->name, at(p),
              "cannot parse header: %s, found '%s'%s", what, ex,
              p->i >= p->n ? " (end of header)" : "");
}

/* A Python string literal without escapes, at most cap-1 bytes. */
static gmle_status parse_str(parser *p, char *dst, size_t cap,
                             const char *what) {
  if (p->i >= p->n || (p->s[p->i] != '\'' && p->s[p->i] != '"'))
    return syntax(p, what);
  unsigned char q = p->s[p->i];
  size_t start = ++p->i, len = 0;
  while (p->i < p->n && p->s[p->i] != q) {
    unsigned char c = p->s[p->i];
    if (c < 0x20 || c >= 0x7f || c == '\\')
      return fail(p->ctx, GMLE_E_BAD_FORMAT, p->name, at(p),
                  "cannot parse header: unexpected byte 0x%02x in %s", c, what);
    if (len + 1 >= cap)
      return fail(p->ctx, GMLE_E_BAD_FORMAT, p->name, p->base + start,
                  "cannot parse header: %s is too long", what);
    dst[len++] = (char)c;
    p->i++;
  }
  if (p->i >= p->n)
    return syntax(p, "unterminated string");
  p->i++; /* closing quote */
  dst[len] = '\0';
  return GMLE_OK;
}

static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

/* descr: [<>|=]?kind[digits] */
static gmle_status parse_descr(parser *p, size_t off, const char *d,
                               gmle__npy_header *h) {
  const char *q = d;
  int big = gmle__host_big_endian();
  if (*q == '<')
    big = 0, q++;
  else if (*q == '>')
    big = 1, q++;
  else if (*q == '|' || *q == '=')
    q++;
  char kind = *q ? *q++ : '\0';
  size_t num = 0, ndig = 0;
  for (; is_digit((unsigned char)*q); q++, ndig++) {
    if (num > 100000000u)
      return fail(p->ctx, GMLE_E_BAD_FORMAT, p->name, off,
                  "descr is not a valid dtype descriptor: '%s' (size too "
                  "large)",
                  d);
    num = num * 10 + (size_t)(*q - '0');
  }
  int has_junk = *q != '\0';
  switch (kind) {
  case 'O':
    return fail(p->ctx, GMLE_E_UNSUPPORTED, p->name, off,
                "descr '%s': object arrays cannot be loaded (they need "
                "pickle, which gmle never runs)",
                d);
  case 'c':
  case 'M':
  case 'm':
  case 'V':
    if (!has_junk)
      return fail(p->ctx, GMLE_E_UNSUPPORTED, p->name, off,
                  "unsupported dtype '%s' (gmle reads float, integer, bool "
                  "and string arrays)",
                  d);
    break;
  default:
    break;
  }
  if (has_junk || kind == '\0')
    return fail(p->ctx, GMLE_E_BAD_FORMAT, p->name, off,
                "descr is not a valid dtype descriptor: '%s'", d);
  size_t isz = 0;
  switch (kind) {
  case 'f':
    if (num == 2 || num == 4 || num == 8)
      isz = num;
    else if (num == 12 || num == 16)
      return fail(p->ctx, GMLE_E_UNSUPPORTED, p->name, off,
                  "unsupported dtype '%s' (long double)", d);
    break;
  case 'i':
  case 'u':
    if (num == 1 || num == 2 || num == 4 || num == 8)
      isz = num;
    break;
  case 'b':
    if (num == 1)
      isz = 1;
    break;
  case '?':
    if (ndig == 0)
      isz = 1, kind = 'b';
    break;
  case 'U':
    if (num >= 1 && num <= SIZE_MAX / 4)
      isz = num * 4;
    break;
  case 'S':
  case 'a':
    if (num >= 1)
      isz = num, kind = 'S';
    break;
  default:
    break;
  }
  if (isz == 0)
    return fail(p->ctx, GMLE_E_BAD_FORMAT, p->name, off,
                "descr is not a valid dtype descriptor: '%s'", d);
  h->kind = kind;
  h->itemsize = isz;
  h->big_endian = (isz > 1 && kind != 'S') ? big : 0;
  snprintf(h->descr, sizeof h->descr, "%s", d);
  return GMLE_OK;
}

/* A non-negative Python int literal (legacy 'L' suffix allowed). */
static gmle_status parse_dim(parser *p, size_t *out) {
  size_t start = at(p);
  if (p->i < p->n && (p->s[p->i] == '-' || p->s[p->i] == '+')) {
    if (p->s[p->i] == '-')
      return fail(p->ctx, GMLE_E_BAD_FORMAT, p->name, start,
                  "shape is not valid: negative dimension");
    return syntax(p, "a dimension");
  }
  if (p->i >= p->n || !is_digit(p->s[p->i]))
    return fail(p->ctx, GMLE_E_BAD_FORMAT, p->name, start,
                "shape is not valid: dimensions must be integers");
  if (p->s[p->i] == '0' && p->i + 1 < p->n && is_digit(p->s[p->i + 1]))
    return syntax(p, "an integer without leading zeros");
  size_t v = 0;
  while (p->i < p->n && is_digit(p->s[p->i])) {
    size_t d = (size_t)(p->s[p->i] - '0');
    if (v > (SIZE_MAX - d) / 10)
      return fail(p->ctx, GMLE_E_BAD_FORMAT, p->name, start,
                  "shape is not valid: dimension does not fit in size_t");
    v = v * 10 + d;
    p->i++;
  }
  if (p->i < p->n && (p->s[p->i] == 'L' || p->s[p->i] == 'l'))
    p->i++;
  if (p->i < p->n &&
      (p->s[p->i] == '.' || p->s[p->i] == 'e' || p->s[p->i] == 'E' ||
       p->s[p->i] == 'j' || p->s[p->i] == 'x' || p->s[p->i] == '_'))
    return fail(p->ctx, GMLE_E_BAD_FORMAT, p->name, start,
                "shape is not valid: dimensions must be integers");
  *out = v;
  return GMLE_OK;
}

static gmle_status parse_shape(parser *p, gmle__npy_header *h) {
  if (p->i >= p->n || p->s[p->i] != '(') {
    if (p->i < p->n && p->s[p->i] == '[')
      return fail(p->ctx, GMLE_E_BAD_FORMAT, p->name, at(p),
                  "shape is not valid: a list, not a tuple");
    return fail(p->ctx, GMLE_E_BAD_FORMAT, p->name, at(p),
                "shape is not valid: expected a tuple of integers");
  }
  p->i++;
  size_t nd = 0;
  int trailing_comma = 0;
  for (;;) {
    skip_ws(p);
    if (p->i < p->n && p->s[p->i] == ')') {
      p->i++;
      break;
    }
    if (nd >= GMLE__NPY_MAX_NDIM)
      return fail(p->ctx, GMLE_E_UNSUPPORTED, p->name, at(p),
                  "shape has more than %d dimensions", GMLE__NPY_MAX_NDIM);
    GMLE_TRY(parse_dim(p, &h->shape[nd]));
    nd++;
    skip_ws(p);
    trailing_comma = 0;
    if (p->i < p->n && p->s[p->i] == ',') {
      p->i++;
      trailing_comma = 1;
    } else if (p->i < p->n && p->s[p->i] == ')') {
      p->i++;
      break;
    } else {
      return syntax(p, "',' or ')' in shape");
    }
  }
  if (nd == 1 && !trailing_comma)
    return fail(p->ctx, GMLE_E_BAD_FORMAT, p->name, at(p),
                "shape is not valid: '(n)' is an integer, not a tuple "
                "(write '(n,)')");
  h->ndim = nd;
  return GMLE_OK;
}

static gmle_status parse_bool(parser *p, int *out) {
  static const char t[] = "True", f[] = "False";
  size_t left = p->n - p->i;
  if (left >= 4 && memcmp(p->s + p->i, t, 4) == 0) {
    p->i += 4;
    *out = 1;
  } else if (left >= 5 && memcmp(p->s + p->i, f, 5) == 0) {
    p->i += 5;
    *out = 0;
  } else {
    return fail(p->ctx, GMLE_E_BAD_FORMAT, p->name, at(p),
                "fortran_order is not a valid bool");
  }
  if (p->i < p->n &&
      (p->s[p->i] == '_' || is_digit(p->s[p->i]) ||
       ((p->s[p->i] | 0x20) >= 'a' && (p->s[p->i] | 0x20) <= 'z')))
    return fail(p->ctx, GMLE_E_BAD_FORMAT, p->name, at(p),
                "fortran_order is not a valid bool");
  return GMLE_OK;
}

static gmle_status parse_dict(parser *p, gmle__npy_header *h) {
  int seen_descr = 0, seen_fortran = 0, seen_shape = 0;
  skip_ws(p);
  if (p->i >= p->n || p->s[p->i] != '{')
    return syntax(p, "the header is not a dict literal ('{' expected)");
  p->i++;
  for (;;) {
    skip_ws(p);
    if (p->i < p->n && p->s[p->i] == '}') {
      p->i++;
      break;
    }
    char key[32];
    size_t key_off = at(p);
    GMLE_TRY(parse_str(p, key, sizeof key, "a key"));
    skip_ws(p);
    if (p->i >= p->n || p->s[p->i] != ':')
      return syntax(p, "':' after a key");
    p->i++;
    skip_ws(p);
    int *seen;
    if (strcmp(key, "descr") == 0)
      seen = &seen_descr;
    else if (strcmp(key, "fortran_order") == 0)
      seen = &seen_fortran;
    else if (strcmp(key, "shape") == 0)
      seen = &seen_shape;
    else
      return fail(p->ctx, GMLE_E_BAD_FORMAT, p->name, key_off,
                  "Header does not contain the correct keys: unexpected key "
                  "'%s' (expected 'descr', 'fortran_order', 'shape')",
                  key);
    if (*seen)
      return fail(p->ctx, GMLE_E_BAD_FORMAT, p->name, key_off,
                  "Header contains the key '%s' twice", key);
    *seen = 1;
    if (seen == &seen_descr) {
      size_t off = at(p);
      if (p->i < p->n && (p->s[p->i] == '[' || p->s[p->i] == '('))
        return fail(p->ctx, GMLE_E_UNSUPPORTED, p->name, off,
                    "unsupported dtype: structured or subarray descr (gmle "
                    "reads plain float, integer, bool and string arrays)");
      char d[16];
      GMLE_TRY(parse_str(p, d, sizeof d, "descr"));
      GMLE_TRY(parse_descr(p, off, d, h));
    } else if (seen == &seen_fortran) {
      GMLE_TRY(parse_bool(p, &h->fortran_order));
    } else {
      GMLE_TRY(parse_shape(p, h));
    }
    skip_ws(p);
    if (p->i < p->n && p->s[p->i] == ',') {
      p->i++;
      continue;
    }
    if (p->i < p->n && p->s[p->i] == '}') {
      p->i++;
      break;
    }
    return syntax(p, "',' or '}' after a value");
  }
  skip_ws(p);
  if (p->i != p->n)
    return syntax(p, "only padding after the header dict");
  if (!seen_descr || !seen_fortran || !seen_shape)
    return fail(p->ctx, GMLE_E_BAD_FORMAT, p->name, p->base,
                "Header does not contain the correct keys: missing%s%s%s",
                seen_descr ? "" : " 'descr'",
                seen_fortran ? "" : " 'fortran_order'",
                seen_shape ? "" : " 'shape'");
  return GMLE_OK;
}

/* ------------------------------------------------------------------------ */
/* Header                                                                   */
/* ------------------------------------------------------------------------ */

static const unsigned char npy_magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

gmle_status gmle__npy_parse_header(const gmle_context *ctx, const char *name,
                                   const unsigned char *buf, size_t avail,
                                   uint64_t file_size, gmle__npy_header *out) {
  if (!out || (!buf && avail))
    return gmle__error(ctx, GMLE_E_INVALID_ARG,
                       "gmle__npy_parse_header: NULL argument");
  memset(out, 0, sizeof *out);
  if (avail > file_size)
    avail = (size_t)file_size;
  /* Magic: compare what is there first, so that a short non-npy file is
   * called what it is. */
  size_t m = avail < 6 ? avail : 6;
  if (memcmp(buf, npy_magic, m) != 0) {
    char ex[64];
    excerpt(ex, sizeof ex, buf, m);
    return fail(ctx, GMLE_E_BAD_FORMAT, name, 0,
                "the magic string is not correct; expected "
                "b'\\x93NUMPY', got b'%s'",
                ex);
  }
  if (file_size < 8)
    return fail(ctx, GMLE_E_CORRUPT, name, (size_t)file_size,
                "truncated: %llu bytes, too short for the .npy magic and "
                "version",
                (unsigned long long)file_size);
  if (avail < 8)
    goto short_buf;
  int major = buf[6], minor = buf[7];
  if ((major != 1 && major != 2 && major != 3) || minor != 0)
    return fail(ctx, GMLE_E_UNSUPPORTED_VERSION, name, 6,
                "we only support format version (1,0), (2,0), and (3,0), "
                "not (%d, %d)",
                major, minor);
  size_t pre = major == 1 ? 10 : 12;
  if (file_size < pre)
    return fail(ctx, GMLE_E_CORRUPT, name, (size_t)file_size,
                "truncated: %llu bytes, too short for the header length "
                "field of a version %d.0 file",
                (unsigned long long)file_size, major);
  if (avail < pre)
    goto short_buf;
  uint32_t hlen = major == 1 ? gmle__ld_le16(buf + 8) : gmle__ld_le32(buf + 8);
  if (hlen > GMLE__NPY_MAX_HEADER)
    return fail(ctx, GMLE_E_BAD_FORMAT, name, 8,
                "Header info length (%lu) is large and may not be safe to "
                "load securely; gmle reads headers of at most %u bytes",
                (unsigned long)hlen, GMLE__NPY_MAX_HEADER);
  if ((uint64_t)pre + hlen > file_size)
    return fail(ctx, GMLE_E_CORRUPT, name, 8,
                "truncated: header_len %lu runs past the end of the file "
                "(%llu bytes)",
                (unsigned long)hlen, (unsigned long long)file_size);
  if (avail < pre + hlen)
    goto short_buf;

  out->major = major;
  out->minor = minor;
  out->header_len = pre + hlen;
  parser p = {ctx, name, buf + pre, hlen, 0, pre};
  /* v1/v2 headers are latin-1, v3 UTF-8; accepted headers are ASCII, and a
   * non-ASCII byte is reported where the parser meets it. */
  GMLE_TRY(parse_dict(&p, out));

  size_t n = 1;
  int zero = 0;
  for (size_t k = 0; k < out->ndim; k++)
    zero |= out->shape[k] == 0;
  if (zero) {
    n = 0;
  } else {
    for (size_t k = 0; k < out->ndim; k++)
      if (gmle__mul_size(n, out->shape[k], &n))
        return fail(ctx, GMLE_E_BAD_FORMAT, name, pre,
                    "shape is not valid: the number of elements overflows "
                    "size_t");
  }
  size_t bytes;
  if (gmle__mul_size(n, out->itemsize, &bytes))
    return fail(ctx, GMLE_E_BAD_FORMAT, name, pre,
                "shape is not valid: %zu elements of %zu bytes overflow "
                "size_t",
                n, out->itemsize);
  out->n_elements = n;
  out->data_bytes = bytes;
  uint64_t left = file_size - out->header_len;
  if ((uint64_t)bytes > left)
    return fail(ctx, GMLE_E_CORRUPT, name, out->header_len,
                "truncated: shape needs %zu bytes of data (%zu elements of "
                "'%s'), only %llu remain",
                bytes, n, out->descr, (unsigned long long)left);
  return GMLE_OK;

short_buf:
  return gmle__error(ctx, GMLE_E_INVALID_ARG,
                     "%s: gmle__npy_parse_header was given %zu bytes of a "
                     "%llu-byte file; it needs the whole header",
                     name ? name : "(npy)", avail,
                     (unsigned long long)file_size);
}

size_t gmle__npy_format_header(char *buf, size_t cap, const char *descr,
                               int fortran_order, size_t ndim,
                               const size_t *shape) {
  char text[512], dims[GMLE__NPY_MAX_NDIM * 24 + 8];
  if (!buf || !descr || ndim > GMLE__NPY_MAX_NDIM || (ndim && !shape))
    return 0;
  size_t dl = strlen(descr);
  if (dl == 0 || dl > 15)
    return 0;
  for (size_t i = 0; i < dl; i++)
    if (descr[i] == '\'' || descr[i] == '\\' || descr[i] < 0x21 ||
        descr[i] > 0x7e)
      return 0;
  size_t j = 0;
  dims[j++] = '(';
  for (size_t k = 0; k < ndim; k++)
    j += (size_t)snprintf(dims + j, sizeof dims - j, "%s%zu", k ? ", " : "",
                          shape[k]);
  if (ndim == 1)
    dims[j++] = ',';
  dims[j++] = ')';
  dims[j] = '\0';
  int tl = snprintf(text, sizeof text,
                    "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }",
                    descr, fortran_order ? "True" : "False", dims);
  if (tl < 0 || (size_t)tl >= sizeof text)
    return 0;
  size_t total = 10 + (size_t)tl + 1;
  total = (total + 63) / 64 * 64;
  if (total > cap || total - 10 > 65535)
    return 0;
  memcpy(buf, npy_magic, 6);
  buf[6] = 1;
  buf[7] = 0;
  gmle__st_le16((unsigned char *)buf + 8, (uint16_t)(total - 10));
  memcpy(buf + 10, text, (size_t)tl);
  memset(buf + 10 + tl, ' ', total - 10 - (size_t)tl - 1);
  buf[total - 1] = '\n';
  return total;
}

/* ------------------------------------------------------------------------ */
/* Elements                                                                 */
/* ------------------------------------------------------------------------ */

int gmle__npy_is_numeric(const gmle__npy_header *h) {
  switch (h->kind) {
  case 'f':
    return h->itemsize == 2 || h->itemsize == 4 || h->itemsize == 8;
  case 'i':
  case 'u':
    return h->itemsize == 1 || h->itemsize == 2 || h->itemsize == 4 ||
           h->itemsize == 8;
  case 'b':
    return h->itemsize == 1;
  default:
    return 0;
  }
}

double gmle__npy_half_to_double(uint16_t h) {
  int sign = h >> 15, e = (h >> 10) & 0x1f;
  unsigned mant = h & 0x3ffu;
  double v;
  if (e == 0)
    v = ldexp((double)mant, -24);
  else if (e == 31)
    v = mant ? NAN : INFINITY;
  else
    v = ldexp((double)(mant | 0x400u), e - 25);
  return sign ? -v : v;
}

static int64_t sign_extend(uint64_t v, size_t size) {
  if (size < 8) {
    uint64_t m = (uint64_t)1 << (8 * size - 1);
    v = (v ^ m) - m;
  }
  int64_t r;
  memcpy(&r, &v, sizeof r); /* two's complement */
  return r;
}

static double elem_f64(const gmle__npy_header *h, const unsigned char *p) {
  uint64_t v = gmle__ld_uint(p, h->itemsize, h->big_endian);
  switch (h->kind) {
  case 'f':
    if (h->itemsize == 8) {
      double d;
      memcpy(&d, &v, 8);
      return d;
    }
    if (h->itemsize == 4) {
      uint32_t u = (uint32_t)v;
      float f;
      memcpy(&f, &u, 4);
      return (double)f;
    }
    return gmle__npy_half_to_double((uint16_t)v);
  case 'i':
    return (double)sign_extend(v, h->itemsize);
  case 'b':
    return v != 0;
  default:
    return (double)v;
  }
}

void gmle__npy_to_f64(const gmle__npy_header *h, const unsigned char *src,
                      size_t n, double *dst) {
  if (h->kind == 'f' && h->itemsize == 8 && !h->big_endian &&
      !gmle__host_big_endian()) {
    if (n)
      memcpy(dst, src, n * 8);
    return;
  }
  for (size_t k = 0; k < n; k++)
    dst[k] = elem_f64(h, src + k * h->itemsize);
}

int gmle__npy_to_f32(const gmle__npy_header *h, const unsigned char *src,
                     size_t n, float *dst) {
  if (h->kind != 'f' || (h->itemsize != 2 && h->itemsize != 4))
    return -1;
  for (size_t k = 0; k < n; k++)
    dst[k] = (float)elem_f64(h, src + k * h->itemsize);
  return 0;
}

size_t gmle__npy_to_i64(const gmle__npy_header *h, const unsigned char *src,
                        size_t n, int64_t *dst) {
  for (size_t k = 0; k < n; k++) {
    const unsigned char *p = src + k * h->itemsize;
    if (h->kind == 'i') {
      dst[k] = sign_extend(gmle__ld_uint(p, h->itemsize, h->big_endian),
                           h->itemsize);
    } else if (h->kind == 'u' || h->kind == 'b') {
      uint64_t v = gmle__ld_uint(p, h->itemsize, h->big_endian);
      if (h->kind == 'b')
        v = v != 0;
      if (v > (uint64_t)INT64_MAX)
        return k;
      dst[k] = (int64_t)v;
    } else if (h->kind == 'f' && gmle__npy_is_numeric(h)) {
      double v = elem_f64(h, p);
      if (!(v >= -9223372036854775808.0 && v < 9223372036854775808.0) ||
          v != floor(v))
        return k;
      dst[k] = (int64_t)v;
    } else {
      return k;
    }
  }
  return n;
}

/* Visit the elements of an n-d array in C order and yield, for each, its
 * position in Fortran-ordered storage. */
static size_t fortran_pos(const gmle__npy_header *h, const size_t *idx) {
  size_t pos = 0, stride = 1;
  for (size_t k = 0; k < h->ndim; k++) {
    pos += idx[k] * stride;
    stride *= h->shape[k];
  }
  return pos;
}

static void next_index(const gmle__npy_header *h, size_t *idx) {
  for (size_t k = h->ndim; k-- > 0;) {
    if (++idx[k] < h->shape[k])
      return;
    idx[k] = 0;
  }
}

void gmle__npy_array_to_f64(const gmle__npy_header *h,
                            const unsigned char *data, double *dst) {
  if (!h->fortran_order || h->ndim < 2) {
    gmle__npy_to_f64(h, data, h->n_elements, dst);
    return;
  }
  size_t idx[GMLE__NPY_MAX_NDIM] = {0};
  for (size_t k = 0; k < h->n_elements; k++) {
    gmle__npy_to_f64(h, data + fortran_pos(h, idx) * h->itemsize, 1, dst + k);
    next_index(h, idx);
  }
}

size_t gmle__npy_array_to_i64(const gmle__npy_header *h,
                              const unsigned char *data, int64_t *dst) {
  if (!h->fortran_order || h->ndim < 2)
    return gmle__npy_to_i64(h, data, h->n_elements, dst);
  size_t idx[GMLE__NPY_MAX_NDIM] = {0};
  for (size_t k = 0; k < h->n_elements; k++) {
    if (gmle__npy_to_i64(h, data + fortran_pos(h, idx) * h->itemsize, 1,
                         dst + k) != 1)
      return k;
    next_index(h, idx);
  }
  return h->n_elements;
}
