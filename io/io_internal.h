/*
 * io_internal.h -- what the files of the data-file layer (io/) share: the
 * buffer and read helpers, byte order and the one UTF-8 codec. The layer sits
 * on the core (internal.h, gmle.h) and the core never includes this. Not
 * installed.
 */
#ifndef GMLE_IO_INTERNAL_H
#define GMLE_IO_INTERNAL_H

#include "byte_order.h"
#include "gmle_io.h"
#include "internal.h"

#include <locale.h>
#include <stdint.h>

/* Bytes of file data converted per pread when a batch cannot be read
 * straight into the caller's buffer (float16, Fortran order, labels). */
#define GMLE__IO_CHUNK ((size_t)1 << 20)
/* The longest CSV/text line accepted (a line is buffered whole). */
#define GMLE__CSV_MAX_LINE ((size_t)1 << 30)
/* Fields on one CSV line (16,777,216; 512 MiB of field records). */
#define GMLE__CSV_MAX_FIELDS ((size_t)1 << 24)

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

/* ---- UTF-8: the one codec ------------------------------------------------ */

/* Decode one UTF-8 sequence at s (NUL-terminated): its length in bytes
 * with the code point in *cp, or 0 when the bytes there are not valid
 * UTF-8 (overlong, surrogate, beyond U+10FFFF, a bad continuation). */
size_t gmle__utf8_decode(const unsigned char *s, uint32_t *cp);
/* Encode cp (at most U+10FFFF) into out; returns the bytes written (1-4). */
size_t gmle__utf8_encode(uint32_t cp, char *out);

#endif /* GMLE_IO_INTERNAL_H */
