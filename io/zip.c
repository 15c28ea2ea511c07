/* zip.c -- stored-only zip writer and reader for .npz files. */
#include "zip.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define SIG_LOCAL 0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_EOCD 0x06054b50u
#define SIG_Z64_LOCATOR 0x07064b50u
#define LOCAL_LEN 30u
#define CENTRAL_LEN 46u
#define EOCD_LEN 22u
#define MAX_COMMENT 65535u
#define READ_MAX_ENTRIES 4096u
#define U32_SENTINEL 0xffffffffu

/* What the writer puts in every header. */
#define W_VERSION_NEEDED 20u             /* 2.0 */
#define W_VERSION_MADE_BY 0x0314u        /* Unix, 2.0 */
#define W_DOS_TIME 0u                    /* 00:00:00 */
#define W_DOS_DATE 0x0021u               /* 1980-01-01 */
#define W_EXTERNAL_ATTR (0100644u << 16) /* regular file, rw-r--r-- */

uint32_t gmle__crc32(uint32_t crc, const void *p, size_t n) {
  const unsigned char *b = p;
  uLong c = crc;
  while (n > 0) {
    uInt chunk = n > (1u << 30) ? (1u << 30) : (uInt)n;
    c = crc32(c, b, chunk);
    b += chunk;
    n -= chunk;
  }
  return (uint32_t)c;
}

/* ------------------------------------------------------------------------ */
/* Writer                                                                   */
/* ------------------------------------------------------------------------ */

void gmle__zip_writer_init(gmle__zip_writer *w, const gmle_context *ctx,
                           FILE *f, const char *path) {
  memset(w, 0, sizeof *w);
  w->ctx = ctx;
  w->f = f;
  w->path = path ? path : "(zip)";
}

static gmle_status w_put(gmle__zip_writer *w, const void *p, size_t n) {
  if (n && fwrite(p, 1, n, w->f) != n) {
    int err = errno;
    w->failed = 1;
    return gmle__error(w->ctx, GMLE_E_IO, "%s: write failed at byte %llu: %s",
                       w->path, (unsigned long long)w->offset, strerror(err));
  }
  w->offset += n;
  return GMLE_OK;
}

gmle_status gmle__zip_add(gmle__zip_writer *w, const char *name,
                          const void *const *parts, const size_t *lens,
                          size_t n_parts) {
  if (w->failed)
    return gmle__error(w->ctx, GMLE_E_IO, "%s: earlier write failed", w->path);
  size_t nlen = name ? strlen(name) : 0;
  if (nlen == 0 || nlen >= GMLE__ZIP_MAX_NAME)
    return gmle__error(w->ctx, GMLE_E_INVALID_ARG,
                       "%s: zip member name empty or longer than %d bytes",
                       w->path, GMLE__ZIP_MAX_NAME - 1);
  if (w->n >= GMLE__ZIP_MAX_MEMBERS)
    return gmle__error(w->ctx, GMLE_E_INVALID_ARG,
                       "%s: more than %d zip members", w->path,
                       GMLE__ZIP_MAX_MEMBERS);
  uint64_t total = 0;
  uint32_t crc = gmle__crc32(0, NULL, 0);
  for (size_t k = 0; k < n_parts; k++) {
    total += lens[k];
    if (total >= U32_SENTINEL)
      break;
    crc = gmle__crc32(crc, parts[k], lens[k]);
  }
  if (total >= U32_SENTINEL || w->offset >= U32_SENTINEL)
    return gmle__error(w->ctx, GMLE_E_TOO_LARGE,
                       "%s: member '%s' would need zip64 (over 4 GiB), which "
                       "gmle does not write",
                       w->path, name);
  unsigned char h[LOCAL_LEN];
  gmle__st_le32(h, SIG_LOCAL);
  gmle__st_le16(h + 4, W_VERSION_NEEDED);
  gmle__st_le16(h + 6, 0);
  gmle__st_le16(h + 8, 0);
  gmle__st_le16(h + 10, W_DOS_TIME);
  gmle__st_le16(h + 12, W_DOS_DATE);
  gmle__st_le32(h + 14, crc);
  gmle__st_le32(h + 18, (uint32_t)total);
  gmle__st_le32(h + 22, (uint32_t)total);
  gmle__st_le16(h + 26, (uint16_t)nlen);
  gmle__st_le16(h + 28, 0);
  uint32_t off = (uint32_t)w->offset;
  GMLE_TRY(w_put(w, h, sizeof h));
  GMLE_TRY(w_put(w, name, nlen));
  for (size_t k = 0; k < n_parts; k++)
    GMLE_TRY(w_put(w, parts[k], lens[k]));
  memcpy(w->m[w->n].name, name, nlen + 1);
  w->m[w->n].crc = crc;
  w->m[w->n].size = (uint32_t)total;
  w->m[w->n].offset = off;
  w->n++;
  return GMLE_OK;
}

gmle_status gmle__zip_finish(gmle__zip_writer *w) {
  if (w->failed)
    return gmle__error(w->ctx, GMLE_E_IO, "%s: earlier write failed", w->path);
  uint64_t cd_off = w->offset;
  for (size_t i = 0; i < w->n; i++) {
    unsigned char h[CENTRAL_LEN];
    size_t nlen = strlen(w->m[i].name);
    gmle__st_le32(h, SIG_CENTRAL);
    gmle__st_le16(h + 4, W_VERSION_MADE_BY);
    gmle__st_le16(h + 6, W_VERSION_NEEDED);
    gmle__st_le16(h + 8, 0);
    gmle__st_le16(h + 10, 0);
    gmle__st_le16(h + 12, W_DOS_TIME);
    gmle__st_le16(h + 14, W_DOS_DATE);
    gmle__st_le32(h + 16, w->m[i].crc);
    gmle__st_le32(h + 20, w->m[i].size);
    gmle__st_le32(h + 24, w->m[i].size);
    gmle__st_le16(h + 28, (uint16_t)nlen);
    gmle__st_le16(h + 30, 0);
    gmle__st_le16(h + 32, 0);
    gmle__st_le16(h + 34, 0);
    gmle__st_le16(h + 36, 0);
    gmle__st_le32(h + 38, W_EXTERNAL_ATTR);
    gmle__st_le32(h + 42, w->m[i].offset);
    GMLE_TRY(w_put(w, h, sizeof h));
    GMLE_TRY(w_put(w, w->m[i].name, nlen));
  }
  uint64_t cd_size = w->offset - cd_off;
  if (w->offset >= U32_SENTINEL)
    return gmle__error(w->ctx, GMLE_E_TOO_LARGE,
                       "%s: archive would need zip64 (over 4 GiB), which "
                       "gmle does not write",
                       w->path);
  unsigned char e[EOCD_LEN];
  gmle__st_le32(e, SIG_EOCD);
  gmle__st_le16(e + 4, 0);
  gmle__st_le16(e + 6, 0);
  gmle__st_le16(e + 8, (uint16_t)w->n);
  gmle__st_le16(e + 10, (uint16_t)w->n);
  gmle__st_le32(e + 12, (uint32_t)cd_size);
  gmle__st_le32(e + 16, (uint32_t)cd_off);
  gmle__st_le16(e + 20, 0);
  return w_put(w, e, sizeof e);
}

/* ------------------------------------------------------------------------ */
/* Reader                                                                   */
/* ------------------------------------------------------------------------ */

static gmle_status zfail(const gmle__zip_reader *r, gmle_status s,
                         const char *member, uint64_t off, const char *fmt, ...)
    GMLE__PRINTF(5, 6);

static gmle_status zfail(const gmle__zip_reader *r, gmle_status s,
                         const char *member, uint64_t off, const char *fmt,
                         ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (member)
    return gmle__error(r->ctx, s, "%s: member '%s': byte %llu: %s", r->path,
                       member, (unsigned long long)off, msg);
  return gmle__error(r->ctx, s, "%s: byte %llu: %s", r->path,
                     (unsigned long long)off, msg);
}

/* Read n bytes at off of the archive; anything past the end is truncation. */
static gmle_status rd(const gmle__zip_reader *r, uint64_t off, void *dst,
                      size_t n, const char *member, const char *what) {
  if (off > r->size || n > r->size - off)
    return zfail(r, GMLE_E_CORRUPT, member, off,
                 "truncated: %s needs %zu bytes, the file has %llu", what, n,
                 (unsigned long long)r->size);
  if (r->mem) {
    if (n)
      memcpy(dst, r->mem + off, n);
    return GMLE_OK;
  }
  unsigned char *p = dst;
  while (n > 0) {
    size_t chunk = n > (1u << 30) ? (1u << 30) : n;
    ssize_t got = pread(r->fd, p, chunk, (off_t)off);
    if (got < 0 && errno == EINTR)
      continue;
    if (got < 0)
      return zfail(r, GMLE_E_IO, member, off, "read failed (%s): %s", what,
                   strerror(errno));
    if (got == 0)
      return zfail(r, GMLE_E_CORRUPT, member, off,
                   "truncated while reading %s (the file shrank?)", what);
    p += got;
    off += (uint64_t)got;
    n -= (size_t)got;
  }
  return GMLE_OK;
}

/* The zip64 extended information extra field (id 1): replace the sentinel
 * values that are present, in the order the format defines. */
static gmle_status zip64_extra(const gmle__zip_reader *r, const char *member,
                               uint64_t off, const unsigned char *x,
                               size_t xlen, uint64_t *usize, uint64_t *csize,
                               uint64_t *local, uint32_t *disk) {
  size_t pos = 0;
  while (pos < xlen) {
    if (xlen - pos < 4)
      return zfail(r, GMLE_E_CORRUPT, member, off + pos,
                   "malformed extra field (%zu stray bytes)", xlen - pos);
    unsigned id = gmle__ld_le16(x + pos);
    size_t len = gmle__ld_le16(x + pos + 2);
    if (len > xlen - pos - 4)
      return zfail(r, GMLE_E_CORRUPT, member, off + pos,
                   "malformed extra field: record 0x%04x of %zu bytes runs "
                   "past the field",
                   id, len);
    if (id == 1) {
      const unsigned char *q = x + pos + 4;
      size_t need = (*usize == U32_SENTINEL ? 8 : 0) +
                    (*csize == U32_SENTINEL ? 8 : 0) +
                    (local && *local == U32_SENTINEL ? 8 : 0) +
                    (disk && *disk == 0xffffu ? 4 : 0);
      if (len < need)
        return zfail(r, GMLE_E_CORRUPT, member, off + pos,
                     "zip64 extra field has %zu bytes, needs %zu", len, need);
      if (*usize == U32_SENTINEL)
        *usize = gmle__ld_le64(q), q += 8;
      if (*csize == U32_SENTINEL)
        *csize = gmle__ld_le64(q), q += 8;
      if (local && *local == U32_SENTINEL)
        *local = gmle__ld_le64(q), q += 8;
      if (disk && *disk == 0xffffu)
        *disk = gmle__ld_le32(q);
    }
    pos += 4 + len;
  }
  return GMLE_OK;
}

/* Parse central entry at cd[pos], check it and its local header. */
static gmle_status read_entry(gmle__zip_reader *r, const unsigned char *cd,
                              size_t cd_size, uint64_t cd_off, size_t *pos,
                              gmle__zip_entry *e, char *name_store) {
  uint64_t at = cd_off + *pos;
  if (cd_size - *pos < CENTRAL_LEN)
    return zfail(r, GMLE_E_CORRUPT, NULL, at,
                 "central directory entry runs past the directory");
  const unsigned char *h = cd + *pos;
  if (gmle__ld_le32(h) != SIG_CENTRAL)
    return zfail(r, GMLE_E_CORRUPT, NULL, at,
                 "bad central directory entry signature 0x%08lx",
                 (unsigned long)gmle__ld_le32(h));
  unsigned needed = gmle__ld_le16(h + 6), flags = gmle__ld_le16(h + 8);
  unsigned method = gmle__ld_le16(h + 10), mtime = gmle__ld_le16(h + 12);
  unsigned mdate = gmle__ld_le16(h + 14);
  uint32_t crc = gmle__ld_le32(h + 16);
  uint64_t csize = gmle__ld_le32(h + 20), usize = gmle__ld_le32(h + 24);
  size_t nlen = gmle__ld_le16(h + 28), xlen = gmle__ld_le16(h + 30);
  size_t clen = gmle__ld_le16(h + 32);
  uint32_t disk = gmle__ld_le16(h + 34);
  uint64_t local = gmle__ld_le32(h + 42);
  if (cd_size - *pos - CENTRAL_LEN < nlen + xlen + clen)
    return zfail(r, GMLE_E_CORRUPT, NULL, at,
                 "central directory entry (name %zu, extra %zu, comment %zu "
                 "bytes) runs past the directory",
                 nlen, xlen, clen);
  const unsigned char *nm = h + CENTRAL_LEN;
  if (nlen == 0 || memchr(nm, 0, nlen))
    return zfail(r, GMLE_E_CORRUPT, NULL, at, "empty or invalid member name");
  memcpy(name_store, nm, nlen);
  name_store[nlen] = '\0';
  const char *name = name_store;
  *pos += CENTRAL_LEN + nlen + xlen + clen;

  GMLE_TRY(zip64_extra(r, name, at + CENTRAL_LEN + nlen, nm + nlen, xlen,
                       &usize, &csize, &local, &disk));
  if (flags & (1u | 0x40u | 0x2000u))
    return zfail(r, GMLE_E_UNSUPPORTED, name, at,
                 "encrypted zip members are not supported");
  if (method != 0)
    return zfail(r, GMLE_E_UNSUPPORTED, name, at,
                 "compressed .npz members are not supported (method %u); "
                 "save with numpy.savez, not savez_compressed",
                 method);
  if ((needed & 0xffu) > 45u)
    return zfail(r, GMLE_E_UNSUPPORTED, name, at,
                 "member needs zip version %u.%u, which is not supported",
                 (needed & 0xffu) / 10, (needed & 0xffu) % 10);
  if (disk != 0)
    return zfail(r, GMLE_E_UNSUPPORTED, name, at,
                 "multi-disk zip archives are not supported");
  if (csize != usize)
    return zfail(r, GMLE_E_CORRUPT, name, at,
                 "stored member has compressed size %llu but size %llu",
                 (unsigned long long)csize, (unsigned long long)usize);
  if (local > cd_off || cd_off - local < LOCAL_LEN)
    return zfail(r, GMLE_E_CORRUPT, name, at,
                 "local header offset %llu is outside the archive data",
                 (unsigned long long)local);

  unsigned char l[LOCAL_LEN];
  GMLE_TRY(rd(r, local, l, LOCAL_LEN, name, "local header"));
  if (gmle__ld_le32(l) != SIG_LOCAL)
    return zfail(r, GMLE_E_CORRUPT, name, local,
                 "bad local header signature 0x%08lx",
                 (unsigned long)gmle__ld_le32(l));
  size_t lnlen = gmle__ld_le16(l + 26), lxlen = gmle__ld_le16(l + 28);
  if (gmle__ld_le16(l + 4) != needed || gmle__ld_le16(l + 6) != flags ||
      gmle__ld_le16(l + 8) != method || gmle__ld_le16(l + 10) != mtime ||
      gmle__ld_le16(l + 12) != mdate || lnlen != nlen)
    return zfail(r, GMLE_E_CORRUPT, name, local,
                 "local header disagrees with the central directory");
  uint64_t data = local + LOCAL_LEN + lnlen + lxlen;
  if (data > cd_off)
    return zfail(r, GMLE_E_CORRUPT, name, local,
                 "local header runs into the central directory");
  /* Both lengths are below 64 KiB and lie before the directory. */
  unsigned char *var = gmle__malloc(lnlen + lxlen);
  if (!var)
    return zfail(r, GMLE_E_OUT_OF_MEMORY, name, local, "out of memory");
  gmle_status s = rd(r, local + LOCAL_LEN, var, lnlen + lxlen, name,
                     "local header name and extra field");
  if (s == GMLE_OK && memcmp(var, nm, nlen) != 0)
    s = zfail(r, GMLE_E_CORRUPT, name, local + LOCAL_LEN,
              "local header names another member");
  if (s == GMLE_OK && !(flags & 8u)) {
    uint64_t lcs = gmle__ld_le32(l + 18), lus = gmle__ld_le32(l + 22);
    s = zip64_extra(r, name, local + LOCAL_LEN + lnlen, var + lnlen, lxlen,
                    &lus, &lcs, NULL, NULL);
    if (s == GMLE_OK &&
        (gmle__ld_le32(l + 14) != crc || lcs != csize || lus != usize))
      s = zfail(r, GMLE_E_CORRUPT, name, local,
                "local header CRC or sizes disagree with the central "
                "directory");
  }
  gmle__free(var);
  if (s != GMLE_OK)
    return s;
  if (usize > cd_off - data)
    return zfail(r, GMLE_E_CORRUPT, name, data,
                 "member of %llu bytes runs past the archive data (%llu "
                 "bytes available)",
                 (unsigned long long)usize,
                 (unsigned long long)(cd_off - data));
  e->name = name;
  e->crc = crc;
  e->size = usize;
  e->local_offset = local;
  e->data_offset = data;
  return GMLE_OK;
}

static gmle_status open_common(gmle__zip_reader *r) {
  unsigned char head[4] = {0};
  size_t hn = r->size < 4 ? (size_t)r->size : 4;
  GMLE_TRY(rd(r, 0, head, hn, NULL, "signature"));
  int looks_zip = hn == 4 && gmle__ld_le32(head) == SIG_LOCAL;
  int empty_zip = hn == 4 && gmle__ld_le32(head) == SIG_EOCD;
  if (!looks_zip && !empty_zip)
    return zfail(r, GMLE_E_BAD_FORMAT, NULL, 0,
                 "not a zip archive (an .npz file starts with 'PK\\3\\4')");

  size_t tail = r->size < EOCD_LEN + MAX_COMMENT ? (size_t)r->size
                                                 : EOCD_LEN + MAX_COMMENT;
  uint64_t tail_off = r->size - tail;
  unsigned char *t = gmle__malloc(tail);
  if (!t)
    return zfail(r, GMLE_E_OUT_OF_MEMORY, NULL, 0, "out of memory");
  gmle_status s = rd(r, tail_off, t, tail, NULL, "end record");
  if (s != GMLE_OK) {
    gmle__free(t);
    return s;
  }
  size_t found = SIZE_MAX;
  for (size_t i = tail >= EOCD_LEN ? tail - EOCD_LEN + 1 : 0; i-- > 0;) {
    if (gmle__ld_le32(t + i) == SIG_EOCD &&
        gmle__ld_le16(t + i + 20) == tail - i - EOCD_LEN) {
      found = i;
      break;
    }
  }
  if (found == SIZE_MAX) {
    gmle__free(t);
    return zfail(r, GMLE_E_CORRUPT, NULL, r->size,
                 "no end-of-central-directory record: the file is truncated "
                 "or damaged");
  }
  const unsigned char *e = t + found;
  uint64_t eocd = tail_off + found;
  unsigned disk = gmle__ld_le16(e + 4), cd_disk = gmle__ld_le16(e + 6);
  unsigned n_disk = gmle__ld_le16(e + 8), n_total = gmle__ld_le16(e + 10);
  uint64_t cd_size = gmle__ld_le32(e + 12), cd_off = gmle__ld_le32(e + 16);
  int z64_loc = found >= 20 && gmle__ld_le32(t + found - 20) == SIG_Z64_LOCATOR;
  gmle__free(t);
  if (n_disk == 0xffffu || n_total == 0xffffu || cd_size == U32_SENTINEL ||
      cd_off == U32_SENTINEL || (z64_loc && cd_off + cd_size != eocd))
    return zfail(r, GMLE_E_UNSUPPORTED, NULL, eocd,
                 "zip64 archives (over 4 GiB or 65535 members) are not "
                 "supported");
  if (disk != 0 || cd_disk != 0 || n_disk != n_total)
    return zfail(r, GMLE_E_UNSUPPORTED, NULL, eocd,
                 "multi-disk zip archives are not supported");
  if (cd_off + cd_size != eocd)
    return zfail(r, GMLE_E_CORRUPT, NULL, eocd,
                 "central directory (%llu bytes at %llu) does not end where "
                 "the end record starts",
                 (unsigned long long)cd_size, (unsigned long long)cd_off);
  if ((uint64_t)n_total * CENTRAL_LEN > cd_size)
    return zfail(r, GMLE_E_CORRUPT, NULL, eocd,
                 "%u members cannot fit in a %llu-byte central directory",
                 n_total, (unsigned long long)cd_size);
  if (n_total > READ_MAX_ENTRIES)
    return zfail(r, GMLE_E_UNSUPPORTED, NULL, eocd, "more than %u members",
                 READ_MAX_ENTRIES);
  r->n = n_total;
  if (n_total == 0)
    return cd_size == 0 ? GMLE_OK
                        : zfail(r, GMLE_E_CORRUPT, NULL, cd_off,
                                "central directory has %llu stray bytes",
                                (unsigned long long)cd_size);

  unsigned char *cd = gmle__malloc((size_t)cd_size);
  r->e = gmle__calloc(n_total, sizeof *r->e);
  r->names = gmle__malloc((size_t)cd_size + n_total);
  if (!cd || !r->e || !r->names) {
    gmle__free(cd);
    return zfail(r, GMLE_E_OUT_OF_MEMORY, NULL, 0, "out of memory");
  }
  s = rd(r, cd_off, cd, (size_t)cd_size, NULL, "central directory");
  size_t pos = 0, name_pos = 0;
  for (size_t i = 0; s == GMLE_OK && i < n_total; i++) {
    size_t before = pos;
    s = read_entry(r, cd, (size_t)cd_size, cd_off, &pos, &r->e[i],
                   r->names + name_pos);
    if (s != GMLE_OK)
      break;
    /* An entry of k bytes holds a name of at most k - 46 bytes, so the
     * names fit in cd_size + n_total bytes. */
    name_pos += pos - before - CENTRAL_LEN + 1;
    for (size_t j = 0; s == GMLE_OK && j < i; j++)
      if (strcmp(r->e[j].name, r->e[i].name) == 0)
        s = zfail(r, GMLE_E_CORRUPT, r->e[i].name, cd_off + before,
                  "duplicate member name");
  }
  if (s == GMLE_OK && pos != cd_size)
    s = zfail(r, GMLE_E_CORRUPT, NULL, cd_off + pos,
              "central directory has %llu bytes after its %u entries",
              (unsigned long long)(cd_size - pos), n_total);
  gmle__free(cd);
  return s;
}

static void reset(gmle__zip_reader *r, const gmle_context *ctx,
                  const char *path) {
  memset(r, 0, sizeof *r);
  r->ctx = ctx;
  r->path = path ? path : "(zip)";
  r->fd = -1;
}

void gmle__zip_close(gmle__zip_reader *r) {
  if (!r)
    return;
  if (r->fd >= 0)
    close(r->fd);
  gmle__free(r->e);
  gmle__free(r->names);
  r->fd = -1;
  r->e = NULL;
  r->names = NULL;
  r->n = 0;
}

gmle_status gmle__zip_open_mem(const gmle_context *ctx, const char *name,
                               const void *data, size_t size,
                               gmle__zip_reader *r) {
  if (!r || (!data && size))
    return gmle__error(ctx, GMLE_E_INVALID_ARG, "zip: NULL argument");
  reset(r, ctx, name);
  static const unsigned char nothing[1];
  r->mem = data ? data : nothing;
  r->size = size;
  gmle_status s = open_common(r);
  if (s != GMLE_OK)
    gmle__zip_close(r);
  return s;
}

gmle_status gmle__zip_open_file(const gmle_context *ctx, const char *path,
                                gmle__zip_reader *r) {
  if (!r || !path)
    return gmle__error(ctx, GMLE_E_INVALID_ARG, "zip: NULL argument");
  reset(r, ctx, path);
  r->fd = open(path, O_RDONLY | O_CLOEXEC);
  if (r->fd < 0)
    return gmle__error(ctx, GMLE_E_IO, "%s: cannot open: %s", path,
                       strerror(errno));
  struct stat st;
  if (fstat(r->fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    int err = errno;
    gmle__zip_close(r);
    return gmle__error(ctx, GMLE_E_IO, "%s: not a regular file%s%s", path,
                       err ? ": " : "", err ? strerror(err) : "");
  }
  r->size = (uint64_t)st.st_size;
  gmle_status s = open_common(r);
  if (s != GMLE_OK)
    gmle__zip_close(r);
  return s;
}

const gmle__zip_entry *gmle__zip_find(const gmle__zip_reader *r,
                                      const char *name) {
  for (size_t i = 0; i < r->n; i++)
    if (strcmp(r->e[i].name, name) == 0)
      return &r->e[i];
  return NULL;
}

static gmle_status crc_mismatch(const gmle__zip_reader *r,
                                const gmle__zip_entry *e, uint32_t got) {
  return zfail(r, GMLE_E_CORRUPT, e->name, e->data_offset,
               "CRC-32 mismatch over bytes %llu..%llu: stored 0x%08lx, "
               "computed 0x%08lx (the file is damaged)",
               (unsigned long long)e->data_offset,
               (unsigned long long)(e->data_offset + e->size),
               (unsigned long)e->crc, (unsigned long)got);
}

gmle_status gmle__zip_read_member(const gmle__zip_reader *r,
                                  const gmle__zip_entry *e,
                                  unsigned char **out) {
  *out = NULL;
  if (e->size > SIZE_MAX - 1)
    return zfail(r, GMLE_E_TOO_LARGE, e->name, e->data_offset,
                 "member of %llu bytes does not fit in memory",
                 (unsigned long long)e->size);
  /* e->size was checked against the archive when it was opened. */
  unsigned char *buf = gmle__malloc((size_t)e->size);
  if (!buf)
    return zfail(r, GMLE_E_OUT_OF_MEMORY, e->name, e->data_offset,
                 "out of memory for %llu bytes", (unsigned long long)e->size);
  gmle_status s =
      rd(r, e->data_offset, buf, (size_t)e->size, e->name, "member data");
  if (s == GMLE_OK) {
    uint32_t got = gmle__crc32(gmle__crc32(0, NULL, 0), buf, (size_t)e->size);
    if (got != e->crc)
      s = crc_mismatch(r, e, got);
  }
  if (s != GMLE_OK) {
    gmle__free(buf);
    return s;
  }
  *out = buf;
  return GMLE_OK;
}

gmle_status gmle__zip_check_crc(const gmle__zip_reader *r,
                                const gmle__zip_entry *e) {
  enum { CHUNK = 1 << 16 };
  unsigned char *buf = gmle__malloc(CHUNK);
  if (!buf)
    return zfail(r, GMLE_E_OUT_OF_MEMORY, e->name, e->data_offset,
                 "out of memory");
  uint32_t crc = gmle__crc32(0, NULL, 0);
  gmle_status s = GMLE_OK;
  for (uint64_t off = 0; off < e->size && s == GMLE_OK;) {
    size_t n = e->size - off < CHUNK ? (size_t)(e->size - off) : CHUNK;
    s = rd(r, e->data_offset + off, buf, n, e->name, "member data");
    crc = gmle__crc32(crc, buf, n);
    off += n;
  }
  gmle__free(buf);
  if (s == GMLE_OK && crc != e->crc)
    s = crc_mismatch(r, e, crc);
  return s;
}
