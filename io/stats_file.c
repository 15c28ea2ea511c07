/* stats_file.c -- gmle_stats_save / gmle_stats_load.
 *
 * The layout: docs/FORMATS.md ("Statistics files").
 */
#include "io_internal.h"
#include "io_mem.h"

#include "atomic_file.h"
#include "npy.h"
#include "zip.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define STATS_MAGIC "GMLESTAT"
#define STATS_VERSION 2u
#define STATS_BOM 0x01020304u
#define HEADER_LEN 64u
#define FLAG_SAW_F32 1u
#define FLAG_EM 2u /* EM statistics: an EM block follows the names */
#define EM_BLOCK_LEN 32u
#define STATS_MAX_NAME 65536u /* bytes of one class name */

typedef struct layout {
  size_t C, D, G;
  uint64_t weight, rows, shift, sum, gram, has_shift, pad, payload;
} layout;

/* Byte sizes of the payload sections; -1 when they overflow uint64. */
static int make_layout(uint64_t D, uint64_t C, unsigned mode, layout *l) {
  const uint64_t M = UINT64_MAX / 16;
  if (D == 0 || C == 0 || D > M || C > M)
    return -1;
  uint64_t G = D;
  if (mode == GMLE_STATS_FULL) {
    if (D > M / D)
      return -1;
    G = D * D;
  }
  if (C > M / D || C > M / G || C * G > M / 8 || C * D > M / 8)
    return -1;
  l->weight = 8 * C;
  l->rows = 8 * C;
  l->shift = 8 * C * D;
  l->sum = 8 * C * D;
  l->gram = 8 * C * G;
  l->has_shift = C;
  l->pad = (8 - C % 8) % 8;
  uint64_t p = l->weight + l->rows;
  if (l->shift > M - p || l->sum > M - p - l->shift ||
      l->gram > M - p - l->shift - l->sum)
    return -1;
  p += l->shift + l->sum + l->gram;
  if (C + 8 > M - p)
    return -1;
  l->payload = p + C + l->pad;
  l->C = (size_t)C;
  l->D = (size_t)D;
  l->G = (size_t)G;
  return (uint64_t)(size_t)l->payload == l->payload ? 0 : -1;
}

/* ------------------------------------------------------------------------ */
/* Save                                                                     */
/* ------------------------------------------------------------------------ */

typedef struct writer {
  gmle__atomic_file af;
  uint32_t crc;
} writer;

static gmle_status put(writer *w, const void *p, size_t n) {
  w->crc = gmle__crc32(w->crc, p, n);
  return gmle__atomic_write(&w->af, p, n);
}

/* n 8-byte values (double or uint64) in little-endian order. */
static gmle_status put_words(writer *w, const void *src, size_t n) {
  if (!gmle__host_big_endian())
    return put(w, src, n * 8);
  unsigned char buf[4096];
  const unsigned char *s = src;
  while (n > 0) {
    size_t k = n < sizeof buf / 8 ? n : sizeof buf / 8;
    for (size_t i = 0; i < k; i++) {
      uint64_t v;
      memcpy(&v, s + 8 * i, 8);
      gmle__st_le64(buf + 8 * i, v);
    }
    GMLE_TRY(put(w, buf, k * 8));
    s += k * 8;
    n -= k;
  }
  return GMLE_OK;
}

/* Bytes of the class-name section of st (0 without names); -1 when a name
 * is longer than STATS_MAX_NAME (*bad its class) or the total overflows. */
static int names_bytes(const gmle_stats *st, uint64_t *out, size_t *bad) {
  *out = 0;
  if (!st->names)
    return 0;
  const size_t C = st->n_classes;
  if (C > UINT64_MAX / 8)
    return -1;
  uint64_t total = 4 * (uint64_t)C;
  for (size_t c = 0; c < C; c++) {
    size_t len = strlen(st->names[c]);
    if (len > STATS_MAX_NAME) {
      *bad = c;
      return -1;
    }
    if (total > UINT64_MAX / 4 - STATS_MAX_NAME - 8) /* load bound */
      return -1;
    total += len;
  }
  *out = (total + 7) / 8 * 8;
  return 0;
}

static gmle_status save_names(writer *w, const gmle_stats *st,
                              uint64_t names_len) {
  if (names_len == 0)
    return GMLE_OK;
  const size_t C = st->n_classes;
  unsigned char buf[4096];
  uint64_t written = 0;
  for (size_t c = 0; c < C;) {
    size_t k = 0;
    for (; c < C && k < sizeof buf / 4; c++, k++)
      gmle__st_le32(buf + 4 * k, (uint32_t)strlen(st->names[c]));
    GMLE_TRY(put(w, buf, 4 * k));
    written += 4 * k;
  }
  for (size_t c = 0; c < C; c++) {
    size_t len = strlen(st->names[c]);
    GMLE_TRY(put(w, st->names[c], len));
    written += len;
  }
  static const unsigned char zeros[8];
  return put(w, zeros, (size_t)(names_len - written));
}

/* The EM block (FLAG_EM): K, the EM mode, the log-likelihood sums. */
typedef struct em_block {
  uint64_t K;
  uint32_t mode;
  double ll_sum, ll_weight;
} em_block;

static gmle_status save_body(writer *w, const gmle_stats *st, const layout *l,
                             uint64_t names_len, const em_block *em) {
  unsigned char h[HEADER_LEN] = {0};
  memcpy(h, STATS_MAGIC, 8);
  gmle__st_le32(h + 8, STATS_VERSION);
  gmle__st_le32(h + 12, STATS_BOM);
  gmle__st_le32(h + 16, (uint32_t)st->mode);
  gmle__st_le32(h + 20,
                (st->saw_f32 ? FLAG_SAW_F32 : 0u) | (em ? FLAG_EM : 0u));
  gmle__st_le64(h + 24, st->dim);
  gmle__st_le64(h + 32, st->n_classes);
  gmle__st_le64(h + 40, st->n_batches);
  gmle__st_le64(h + 48, l->payload);
  gmle__st_le64(h + 56, names_len);
  GMLE_TRY(put(w, h, sizeof h));
  const size_t C = l->C, D = l->D;
  GMLE_TRY(put_words(w, st->weight, C));
  GMLE_TRY(put_words(w, st->rows, C));
  GMLE_TRY(put_words(w, st->shift, C * D));
  GMLE_TRY(put_words(w, st->sum, C * D));
  GMLE_TRY(put_words(w, st->gram, C * l->G));
  GMLE_TRY(put(w, st->has_shift, C));
  static const unsigned char zeros[8];
  GMLE_TRY(put(w, zeros, (size_t)l->pad));
  GMLE_TRY(save_names(w, st, names_len));
  if (em) {
    unsigned char b[EM_BLOCK_LEN] = {0};
    uint64_t u;
    gmle__st_le64(b, em->K);
    gmle__st_le32(b + 8, em->mode);
    memcpy(&u, &em->ll_sum, 8);
    gmle__st_le64(b + 16, u);
    memcpy(&u, &em->ll_weight, 8);
    gmle__st_le64(b + 24, u);
    GMLE_TRY(put(w, b, sizeof b));
  }
  unsigned char t[4];
  gmle__st_le32(t, w->crc);
  return gmle__atomic_write(&w->af, t, 4);
}

static gmle_status save_common(const gmle_stats *st, const char *path,
                               const em_block *em) {
  const gmle_context *ctx = st->ctx;
  gmle__clear_error(ctx);
  GMLE_RETURN_IF(!path || !*path, ctx, GMLE_E_INVALID_ARG,
                 "gmle_stats_save: empty or NULL path");
  layout l;
  GMLE_RETURN_IF(make_layout(st->dim, st->n_classes, (unsigned)st->mode, &l),
                 ctx, GMLE_E_TOO_LARGE,
                 "gmle_stats_save: %zu classes x %zu features are too large "
                 "to save",
                 st->n_classes, st->dim);
  uint64_t names_len = 0;
  size_t bad = SIZE_MAX;
  if (names_bytes(st, &names_len, &bad) != 0) {
    if (bad != SIZE_MAX)
      return gmle__error(ctx, GMLE_E_TOO_LARGE,
                         "gmle_stats_save: %s: the name of class %zu is %zu "
                         "bytes long; statistics files hold names of at most "
                         "%u bytes",
                         path, bad, strlen(st->names[bad]), STATS_MAX_NAME);
    return gmle__error(ctx, GMLE_E_TOO_LARGE,
                       "gmle_stats_save: %s: the class names are too large "
                       "to save",
                       path);
  }
  writer w;
  w.crc = gmle__crc32(0, NULL, 0);
  GMLE_TRY(gmle__atomic_open(ctx, path, &w.af));
  gmle_status s = save_body(&w, st, &l, names_len, em);
  if (s != GMLE_OK) {
    gmle__atomic_abort(&w.af); /* no-op when a write already removed it */
    return s;
  }
  return gmle__atomic_commit(&w.af);
}

gmle_status gmle_stats_save(const gmle_stats *st, const char *path) {
  if (!st)
    return GMLE_E_INVALID_ARG;
  return save_common(st, path, NULL);
}

gmle_status gmle_em_stats_save(const gmle_em_stats *es, const char *path) {
  const gmle_stats *st = gmle_em_stats_components(es);
  if (!st)
    return GMLE_E_INVALID_ARG;
  double sum = 0, weight = 0;
  gmle_em_stats_loglik(es, &sum, &weight);
  const em_block em = {gmle_em_stats_n_components(es),
                       (uint32_t)gmle_em_stats_mode(es), sum, weight};
  return save_common(st, path, &em);
}

/* ------------------------------------------------------------------------ */
/* Load                                                                     */
/* ------------------------------------------------------------------------ */

typedef struct reader {
  gmle_context *ctx;
  const char *path;
  FILE *f;                  /* the file, or NULL when reading from mem */
  const unsigned char *mem; /* the file's bytes (gmle__stats_load_mem) */
  uint64_t off, size;
  uint32_t crc;
} reader;

/* Up to n bytes at r->off (which it does not advance): fewer only at the
 * end of the data or on a read error. */
static size_t raw_read(reader *r, void *dst, size_t n) {
  if (r->f)
    return fread(dst, 1, n, r->f);
  const size_t left = (size_t)(r->size - r->off);
  if (n > left)
    n = left;
  if (n)
    memcpy(dst, r->mem + r->off, n);
  return n;
}

static gmle_status get(reader *r, void *dst, size_t n, const char *what) {
  if (n > r->size - r->off)
    return gmle__error(r->ctx, GMLE_E_CORRUPT,
                       "%s: byte %llu: truncated: %s needs %zu bytes, %llu "
                       "remain",
                       r->path, (unsigned long long)r->off, what, n,
                       (unsigned long long)(r->size - r->off));
  if (n && raw_read(r, dst, n) != n) {
    const int err = r->f && ferror(r->f);
    return gmle__error(r->ctx, err ? GMLE_E_IO : GMLE_E_CORRUPT,
                       "%s: byte %llu: cannot read %s (%s)", r->path,
                       (unsigned long long)r->off, what,
                       err ? strerror(errno) : "file shrank");
  }
  r->crc = gmle__crc32(r->crc, dst, n);
  r->off += n;
  return GMLE_OK;
}

static gmle_status get_words(reader *r, void *dst, size_t n, const char *what) {
  GMLE_TRY(get(r, dst, n * 8, what));
  if (gmle__host_big_endian()) {
    unsigned char *p = dst;
    for (size_t i = 0; i < n; i++) {
      uint64_t v = gmle__ld_le64(p + 8 * i);
      memcpy(p + 8 * i, &v, 8);
    }
  }
  return GMLE_OK;
}

static gmle_status bad_value(reader *r, uint64_t off, const char *what,
                             size_t c, size_t j, double v) {
  return gmle__error(r->ctx, GMLE_E_BAD_FORMAT,
                     "%s: byte %llu: class %zu: %s[%zu] is %g; saved "
                     "statistics must be finite%s",
                     r->path, (unsigned long long)off, c, what, j, v,
                     strcmp(what, "weight") == 0 ? " and >= 0" : "");
}

static gmle_status check_values(reader *r, const gmle_stats *st,
                                const layout *l) {
  const size_t C = l->C, D = l->D, G = l->G;
  const uint64_t base = HEADER_LEN;
  const uint64_t o_shift = base + l->weight + l->rows;
  const uint64_t o_sum = o_shift + l->shift, o_gram = o_sum + l->sum;
  const uint64_t o_has = o_gram + l->gram;
  for (size_t c = 0; c < C; c++) {
    if (!isfinite(st->weight[c]) || st->weight[c] < 0)
      return bad_value(r, base + 8 * c, "weight", c, 0, st->weight[c]);
    if (st->has_shift[c] > 1)
      return gmle__error(r->ctx, GMLE_E_BAD_FORMAT,
                         "%s: byte %llu: class %zu: has_shift is %u, not 0 "
                         "or 1",
                         r->path, (unsigned long long)(o_has + c), c,
                         st->has_shift[c]);
    for (size_t j = 0; j < D; j++) {
      if (!isfinite(st->shift[c * D + j]))
        return bad_value(r, o_shift + 8 * (c * D + j), "shift", c, j,
                         st->shift[c * D + j]);
      if (!isfinite(st->sum[c * D + j]))
        return bad_value(r, o_sum + 8 * (c * D + j), "sum", c, j,
                         st->sum[c * D + j]);
    }
    for (size_t k = 0; k < G; k++) {
      const double v = st->gram[c * G + k];
      if (!isfinite(v))
        return bad_value(r, o_gram + 8 * (c * G + k), "gram", c, k, v);
      if (st->mode == GMLE_STATS_FULL && k % D > k / D && v != 0)
        return gmle__error(r->ctx, GMLE_E_BAD_FORMAT,
                           "%s: byte %llu: class %zu: gram (%zu, %zu) above "
                           "the diagonal is %g; saved statistics keep the "
                           "lower triangle only",
                           r->path,
                           (unsigned long long)(o_gram + 8 * (c * G + k)), c,
                           k / D, k % D, v);
    }
  }
  return GMLE_OK;
}

/* The class-name section (n bytes at file offset base, CRC already
 * checked) into st->names. */
static gmle_status parse_names(reader *r, gmle_stats *st,
                               const unsigned char *b, size_t n,
                               uint64_t base) {
  const size_t C = st->n_classes;
  size_t at = 4 * C; /* start of the next name's bytes */
  for (size_t c = 0; c < C; c++) {
    const uint32_t len = gmle__ld_le32(b + 4 * c);
    if (len > STATS_MAX_NAME || len > n - at)
      return gmle__error(
          r->ctx, GMLE_E_BAD_FORMAT,
          "%s: byte %llu: class %zu: a name of %lu bytes %s", r->path,
          (unsigned long long)(base + 4 * c), c, (unsigned long)len,
          len > STATS_MAX_NAME ? "is longer than the limit of 65536"
                               : "runs past the class-name section");
    const unsigned char *nul = memchr(b + at, 0, len);
    if (nul)
      return gmle__error(r->ctx, GMLE_E_BAD_FORMAT,
                         "%s: byte %llu: class %zu: the name holds a NUL "
                         "byte",
                         r->path,
                         (unsigned long long)(base + (size_t)(nul - b)), c);
    at += len;
  }
  if ((at + 7) / 8 * 8 != n)
    return gmle__error(r->ctx, GMLE_E_BAD_FORMAT,
                       "%s: byte %llu: the class-name section is %zu bytes "
                       "but its names need %zu",
                       r->path, (unsigned long long)(base + at), n,
                       (at + 7) / 8 * 8);
  for (size_t k = at; k < n; k++)
    if (b[k] != 0)
      return gmle__error(r->ctx, GMLE_E_BAD_FORMAT,
                         "%s: byte %llu: class-name padding is not zero",
                         r->path, (unsigned long long)(base + k));
  char **names = gmle__calloc(C, sizeof *names);
  if (!names)
    return gmle__error(r->ctx, GMLE_E_OUT_OF_MEMORY,
                       "%s: out of memory for class names", r->path);
  st->names = names; /* freed with st, also when incomplete */
  at = 4 * C;
  for (size_t c = 0; c < C; c++) {
    const size_t len = gmle__ld_le32(b + 4 * c);
    names[c] = gmle__malloc(len + 1);
    if (!names[c])
      return gmle__error(r->ctx, GMLE_E_OUT_OF_MEMORY,
                         "%s: out of memory for class names", r->path);
    memcpy(names[c], b + at, len);
    names[c][len] = '\0';
    at += len;
  }
  return GMLE_OK;
}

/* What the header says, once checked. */
typedef struct stats_header {
  uint32_t version, mode, flags;
  uint64_t D, C, n_batches, payload, names_len; /* as stored */
  layout l;
} stats_header;

static gmle_status not_stats(const reader *r) {
  return gmle__error(r->ctx, GMLE_E_BAD_FORMAT,
                     "%s: byte 0: not a gmle statistics file (the magic "
                     "\"GMLESTAT\" is missing)",
                     r->path);
}

/* The magic and the version (into h[0..12)); a file too short for them
 * is truncated when what it has is the magic's start, else no statistics
 * file at all. */
static gmle_status read_magic(reader *r, unsigned char *h, uint32_t *version) {
  if (r->size < 8 + 4) {
    unsigned char m[8] = {0};
    size_t n = r->size < 8 ? (size_t)r->size : 8;
    if (raw_read(r, m, n) != n || memcmp(m, STATS_MAGIC, n) != 0)
      return not_stats(r);
    return gmle__error(r->ctx, GMLE_E_CORRUPT,
                       "%s: byte %llu: truncated: %llu bytes is too short "
                       "for a statistics file",
                       r->path, (unsigned long long)r->size,
                       (unsigned long long)r->size);
  }
  GMLE_TRY(get(r, h, 12, "the magic and version"));
  if (memcmp(h, STATS_MAGIC, 8) != 0)
    return not_stats(r);
  *version = gmle__ld_le32(h + 8);
  if (*version > STATS_VERSION)
    return gmle__error(r->ctx, GMLE_E_UNSUPPORTED_VERSION,
                       "%s: byte 8: statistics format version %lu is newer "
                       "than this gmle reads (%u); upgrade gmle",
                       r->path, (unsigned long)*version, STATS_VERSION);
  if (*version == 0)
    return gmle__error(r->ctx, GMLE_E_BAD_FORMAT,
                       "%s: byte 8: format version 0 is not valid", r->path);
  return GMLE_OK;
}

/* The header's fields, each checked on its own. */
static gmle_status read_fields(reader *r, stats_header *hd) {
  unsigned char h[HEADER_LEN];
  GMLE_TRY(read_magic(r, h, &hd->version));
  GMLE_TRY(get(r, h + 12, HEADER_LEN - 12, "the header"));
  const uint32_t bom = gmle__ld_le32(h + 12);
  hd->mode = gmle__ld_le32(h + 16);
  hd->flags = gmle__ld_le32(h + 20);
  hd->D = gmle__ld_le64(h + 24);
  hd->C = gmle__ld_le64(h + 32);
  hd->n_batches = gmle__ld_le64(h + 40);
  hd->payload = gmle__ld_le64(h + 48);
  hd->names_len = gmle__ld_le64(h + 56);
  if (bom != STATS_BOM)
    return gmle__error(r->ctx, GMLE_E_BAD_FORMAT,
                       "%s: byte 12: wrong byte-order marker 0x%08lx "
                       "(expected 0x%08lx)",
                       r->path, (unsigned long)bom, (unsigned long)STATS_BOM);
  if (hd->mode != GMLE_STATS_FULL && hd->mode != GMLE_STATS_DIAG)
    return gmle__error(r->ctx, GMLE_E_BAD_FORMAT,
                       "%s: byte 16: unknown statistics mode %lu", r->path,
                       (unsigned long)hd->mode);
  if (hd->flags & ~(FLAG_SAW_F32 | FLAG_EM))
    return gmle__error(r->ctx, GMLE_E_BAD_FORMAT,
                       "%s: byte 20: unknown flags 0x%08lx", r->path,
                       (unsigned long)hd->flags);
  if (hd->version == 1 && hd->names_len != 0)
    return gmle__error(r->ctx, GMLE_E_BAD_FORMAT,
                       "%s: byte 56: reserved field is not zero", r->path);
  return GMLE_OK;
}

/* The sizes the header claims: consistent with each other and with the
 * file, all checked before anything is allocated from them (payload is at
 * most UINT64_MAX / 16, names_len UINT64_MAX / 4). */
static gmle_status check_sizes(reader *r, stats_header *hd) {
  layout *l = &hd->l;
  if (hd->C > INT32_MAX || make_layout(hd->D, hd->C, hd->mode, l) != 0)
    return gmle__error(r->ctx, GMLE_E_BAD_FORMAT,
                       "%s: byte 24: %llu features x %llu classes is not a "
                       "valid statistics size",
                       r->path, (unsigned long long)hd->D,
                       (unsigned long long)hd->C);
  if (hd->payload != l->payload)
    return gmle__error(r->ctx, GMLE_E_BAD_FORMAT,
                       "%s: byte 48: payload of %llu bytes does not match %llu "
                       "features x %llu classes (%llu bytes)",
                       r->path, (unsigned long long)hd->payload,
                       (unsigned long long)hd->D, (unsigned long long)hd->C,
                       (unsigned long long)l->payload);
  /* The smallest names section: C lengths, padded. */
  const uint64_t names_len = hd->names_len;
  const uint64_t names_min = (4 * (uint64_t)l->C + 7) / 8 * 8;
  if (names_len != 0 && (names_len % 8 != 0 || names_len < names_min ||
                         names_len > UINT64_MAX / 4))
    return gmle__error(r->ctx, GMLE_E_BAD_FORMAT,
                       "%s: byte 56: a class-name section of %llu bytes is "
                       "not valid for %llu classes (a multiple of 8, at "
                       "least %llu)",
                       r->path, (unsigned long long)names_len,
                       (unsigned long long)hd->C,
                       (unsigned long long)names_min);
  const uint64_t want = HEADER_LEN + l->payload + names_len +
                        (hd->flags & FLAG_EM ? EM_BLOCK_LEN : 0) + 4;
  if (r->size != want)
    return gmle__error(r->ctx, GMLE_E_CORRUPT,
                       "%s: byte %llu: the header describes %llu bytes but "
                       "the file has %llu (%s)",
                       r->path, (unsigned long long)r->size,
                       (unsigned long long)want, (unsigned long long)r->size,
                       r->size < want ? "truncated" : "trailing bytes");
  if ((uint64_t)(size_t)names_len != names_len)
    return gmle__error(r->ctx, GMLE_E_TOO_LARGE,
                       "%s: byte 56: %llu bytes of class names do not fit in "
                       "memory",
                       r->path, (unsigned long long)names_len);
  return GMLE_OK;
}

/* The payload sections into st, and the padding after them into pad. */
static gmle_status read_payload(reader *r, gmle_stats *st, const layout *l,
                                unsigned char *pad) {
  const size_t C = l->C, D = l->D;
  GMLE_TRY(get_words(r, st->weight, C, "weights"));
  GMLE_TRY(get_words(r, st->rows, C, "row counts"));
  GMLE_TRY(get_words(r, st->shift, C * D, "shifts"));
  GMLE_TRY(get_words(r, st->sum, C * D, "sums"));
  GMLE_TRY(get_words(r, st->gram, C * l->G, "Gram matrices"));
  GMLE_TRY(get(r, st->has_shift, C, "shift flags"));
  return get(r, pad, (size_t)l->pad, "padding");
}

/* The class-name section (*nbuf, NULL when there is none), then the CRC
 * over everything before it. */
static gmle_status read_names_and_crc(reader *r, size_t names_len,
                                      unsigned char **nbuf, em_block *em) {
  if (names_len > 0) {
    *nbuf = gmle__malloc(names_len);
    if (!*nbuf)
      return gmle__error(r->ctx, GMLE_E_OUT_OF_MEMORY,
                         "%s: out of memory for %llu bytes of class names",
                         r->path, (unsigned long long)names_len);
    GMLE_TRY(get(r, *nbuf, names_len, "class names"));
  }
  if (em) {
    unsigned char b[EM_BLOCK_LEN];
    GMLE_TRY(get(r, b, sizeof b, "the EM block"));
    uint64_t u;
    em->K = gmle__ld_le64(b);
    em->mode = gmle__ld_le32(b + 8);
    u = gmle__ld_le64(b + 16);
    memcpy(&em->ll_sum, &u, 8);
    u = gmle__ld_le64(b + 24);
    memcpy(&em->ll_weight, &u, 8);
  }
  const uint32_t crc = r->crc;
  unsigned char tail[4];
  GMLE_TRY(get(r, tail, 4, "the CRC-32"));
  if (gmle__ld_le32(tail) != crc)
    return gmle__error(r->ctx, GMLE_E_CORRUPT,
                       "%s: byte %llu: CRC-32 mismatch: stored 0x%08lx, "
                       "computed 0x%08lx over bytes 0..%llu (the file is "
                       "damaged)",
                       r->path, (unsigned long long)(r->off - 4),
                       (unsigned long)gmle__ld_le32(tail), (unsigned long)crc,
                       (unsigned long long)(r->off - 4));
  return GMLE_OK;
}

/* Everything after the header into st: sections, names, CRC, then the
 * checks that need the CRC to have passed first. */
static gmle_status read_body(reader *r, gmle_stats *st, const stats_header *hd,
                             em_block *em) {
  const layout *l = &hd->l;
  unsigned char pad[8];
  unsigned char *nbuf = NULL;
  gmle_status s = read_payload(r, st, l, pad);
  if (s == GMLE_OK)
    s = read_names_and_crc(r, (size_t)hd->names_len, &nbuf, em);
  for (size_t k = 0; s == GMLE_OK && k < l->pad; k++)
    if (pad[k] != 0)
      s = gmle__error(r->ctx, GMLE_E_BAD_FORMAT,
                      "%s: byte %llu: padding is not zero", r->path,
                      (unsigned long long)(r->off - 4 - l->pad + k));
  if (s == GMLE_OK)
    s = check_values(r, st, l);
  if (s == GMLE_OK && nbuf)
    s = parse_names(r, st, nbuf, (size_t)hd->names_len,
                    HEADER_LEN + l->payload);
  gmle__free(nbuf);
  return s;
}

static gmle_status load_body(reader *r, gmle_stats **out, em_block *em) {
  stats_header hd;
  GMLE_TRY(read_fields(r, &hd));
  if ((hd.flags & FLAG_EM) && !em)
    return gmle__error(r->ctx, GMLE_E_BAD_FORMAT,
                       "%s: these are EM statistics of a mixture (from "
                       "'gmle stats --model'): fit them with 'gmle fit "
                       "--stats FILE --model CURRENT'",
                       r->path);
  if (!(hd.flags & FLAG_EM) && em)
    return gmle__error(r->ctx, GMLE_E_BAD_FORMAT,
                       "%s: these are class statistics, not EM statistics of "
                       "a mixture (make those with 'gmle stats DATA --model "
                       "CURRENT')",
                       r->path);
  GMLE_TRY(check_sizes(r, &hd));
  gmle_stats *st = NULL;
  GMLE_TRY(gmle_stats_create_mode(r->ctx, hd.l.D, hd.l.C,
                                  (gmle_stats_mode)hd.mode, &st));
  gmle_status s = read_body(r, st, &hd, em);
  if (s != GMLE_OK) {
    gmle_stats_free(st);
    return s;
  }
  st->n_batches = hd.n_batches;
  st->saw_f32 = (hd.flags & FLAG_SAW_F32) != 0;
  *out = st;
  return GMLE_OK;
}

/* The checks every load starts with. */
static gmle_status load_args(gmle_context *ctx, const char *path,
                             gmle_stats **out) {
  if (!ctx)
    return GMLE_E_INVALID_ARG;
  gmle__clear_error(ctx);
  GMLE_RETURN_IF(!out, ctx, GMLE_E_INVALID_ARG, "gmle_stats_load: out is NULL");
  *out = NULL;
  GMLE_RETURN_IF(!path || !*path, ctx, GMLE_E_INVALID_ARG,
                 "gmle_stats_load: empty or NULL path");
  return GMLE_OK;
}

static gmle_status load_file(gmle_context *ctx, const char *path,
                             gmle_stats **out, em_block *em) {
  GMLE_TRY(load_args(ctx, path, out));
  reader r = {ctx, path, NULL, NULL, 0, 0, gmle__crc32(0, NULL, 0)};
  r.f = fopen(path, "rb");
  if (!r.f)
    return gmle__error(ctx, GMLE_E_IO, "%s: cannot open: %s", path,
                       strerror(errno));
  struct stat sb;
  if (fstat(fileno(r.f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
    fclose(r.f);
    return gmle__error(ctx, GMLE_E_IO, "%s: not a regular file", path);
  }
  r.size = (uint64_t)sb.st_size;
  gmle_status s = load_body(&r, out, em);
  fclose(r.f);
  return s;
}

gmle_status gmle_stats_load(gmle_context *ctx, const char *path,
                            gmle_stats **out) {
  return load_file(ctx, path, out, NULL);
}

gmle_status gmle_em_stats_load(gmle_context *ctx, const char *path,
                               gmle_em_stats **out) {
  if (!ctx)
    return GMLE_E_INVALID_ARG;
  GMLE_RETURN_IF(!out, ctx, GMLE_E_INVALID_ARG,
                 "gmle_em_stats_load: out is NULL");
  *out = NULL;
  em_block em;
  gmle_stats *st = NULL;
  GMLE_TRY(load_file(ctx, path, &st, &em));
  if (em.K == 0 || st->n_classes % em.K != 0 || em.mode > GMLE_EM_TOP_N ||
      !isfinite(em.ll_sum) || !(em.ll_weight >= 0)) {
    gmle_stats_free(st);
    return gmle__error(ctx, GMLE_E_BAD_FORMAT,
                       "%s: the EM block is not valid (K %llu for %zu "
                       "component statistics, mode %lu, log-likelihood %g "
                       "over weight %g)",
                       path, (unsigned long long)em.K, st->n_classes,
                       (unsigned long)em.mode, em.ll_sum, em.ll_weight);
  }
  gmle_status s = gmle_em_stats_wrap(st, (size_t)em.K, (gmle_em_mode)em.mode,
                                     em.ll_sum, em.ll_weight, out);
  if (s != GMLE_OK)
    gmle_stats_free(st);
  return s;
}

gmle_status gmle__stats_load_mem(gmle_context *ctx, const char *name,
                                 const void *data, size_t size,
                                 gmle_stats **out) {
  GMLE_TRY(load_args(ctx, name, out));
  GMLE_RETURN_IF(!data && size, ctx, GMLE_E_INVALID_ARG,
                 "stats_load_mem: NULL data");
  reader r = {ctx, name, NULL, data, 0, size, gmle__crc32(0, NULL, 0)};
  return load_body(&r, out, NULL);
}
