/*
 * zip.h -- a minimal zip writer and reader for .npz files (internal).
 *
 * Only stored (uncompressed, method 0) members, as numpy.savez writes them.
 * The writer produces plain zip (no zip64: members and the archive must stay
 * below 4 GiB, else GMLE_E_TOO_LARGE), fixed timestamps (1980-01-01) so that
 * saving the same arrays twice gives identical bytes. The reader accepts
 * what numpy.savez writes (including its zip64 extra fields in local
 * headers), checks every offset and size against the file before reading or
 * allocating, cross-checks each local header against the central directory,
 * and checks CRC-32 when a member is read. It refuses cleanly: compressed
 * members (GMLE_E_UNSUPPORTED, "save with numpy.savez, not
 * savez_compressed"), encryption, multi-disk archives and zip64 end
 * records (GMLE_E_UNSUPPORTED); truncation and damage (GMLE_E_CORRUPT);
 * files that are not zip archives at all (GMLE_E_BAD_FORMAT). Messages name
 * the file, the member and the byte offset.
 *
 * Not checked (informational in the zip format): "version made by" and the
 * internal/external attributes of central directory entries.
 */
#ifndef GMLE_ZIP_H
#define GMLE_ZIP_H

#include "byte_order.h"
#include "internal.h"

#include <stdio.h>

#define GMLE__ZIP_MAX_MEMBERS 64
#define GMLE__ZIP_MAX_NAME 128

/* CRC-32 (zlib's) of any length. */
uint32_t gmle__crc32(uint32_t crc, const void *p, size_t n);

/* ---------------------------------------------------------------- writer */

typedef struct gmle__zip_writer {
  const gmle_context *ctx;
  const char *path; /* for messages */
  FILE *f;
  uint64_t offset; /* bytes written */
  size_t n;
  struct {
    char name[GMLE__ZIP_MAX_NAME];
    uint32_t crc, size, offset;
  } m[GMLE__ZIP_MAX_MEMBERS];
  int failed;
} gmle__zip_writer;

/* Start an archive on f (positioned at its start; not closed here). */
void gmle__zip_writer_init(gmle__zip_writer *w, const gmle_context *ctx,
                           FILE *f, const char *path);
/* Add member `name` whose bytes are the concatenation of n_parts buffers. */
gmle_status gmle__zip_add(gmle__zip_writer *w, const char *name,
                          const void *const *parts, const size_t *lens,
                          size_t n_parts);
/* Write the central directory and the end record. */
gmle_status gmle__zip_finish(gmle__zip_writer *w);

/* ---------------------------------------------------------------- reader */

typedef struct gmle__zip_entry {
  const char *name; /* NUL-terminated, owned by the reader */
  uint32_t crc;
  uint64_t size;         /* stored = uncompressed size */
  uint64_t local_offset; /* of the local header */
  uint64_t data_offset;  /* of the member's first byte */
} gmle__zip_entry;

typedef struct gmle__zip_reader {
  const gmle_context *ctx;
  const char *path;         /* for messages (not owned) */
  int fd;                   /* -1 for a memory archive */
  const unsigned char *mem; /* memory archive, or NULL */
  uint64_t size;            /* bytes in the archive */
  size_t n;                 /* entries */
  gmle__zip_entry *e;
  char *names;
} gmle__zip_reader;

/* Open and validate an archive from a file or from memory (not copied; it
 * must outlive the reader). On failure nothing needs closing. */
gmle_status gmle__zip_open_file(const gmle_context *ctx, const char *path,
                                gmle__zip_reader *r);
gmle_status gmle__zip_open_mem(const gmle_context *ctx, const char *name,
                               const void *data, size_t size,
                               gmle__zip_reader *r);
void gmle__zip_close(gmle__zip_reader *r);
/* The entry called name, or NULL. */
const gmle__zip_entry *gmle__zip_find(const gmle__zip_reader *r,
                                      const char *name);
/* Read a whole member into a new gmle__malloc'd buffer (free with
 * gmle__free) and check its CRC-32. */
gmle_status gmle__zip_read_member(const gmle__zip_reader *r,
                                  const gmle__zip_entry *e,
                                  unsigned char **out);
/* Stream a member through CRC-32 in bounded memory. */
gmle_status gmle__zip_check_crc(const gmle__zip_reader *r,
                                const gmle__zip_entry *e);

#endif /* GMLE_ZIP_H */
