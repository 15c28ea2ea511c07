/*
 * atomic_file.h -- where every gmle output goes: all at once or not at all
 * (internal).
 *
 * gmle__outfile decides how an output path is written:
 *  - a regular file (or a new name): a temporary file in the directory of
 *    the file (a symlink is followed, so its target is replaced and the
 *    link stays), created with O_EXCL and given the mode (and owner where
 *    allowed) of the file it replaces; renamed over it at the end;
 *  - a character device (/dev/null), a FIFO, a socket, "-" (standard
 *    output) or /dev/stdout, /dev/fd/N: written straight through.
 * Temporary files are recorded where gmle_remove_temporary_files (async-
 * signal-safe) can unlink them, so an interrupted run leaves none.
 *
 * gmle__atomic_file is the stdio form used by the model, statistics and
 * archive writers: gmle__atomic_commit flushes, fsyncs, closes and renames;
 * any failure, and gmle__atomic_abort, removes the temporary file, so the
 * path is either untouched or complete.
 */
#ifndef GMLE_ATOMIC_FILE_H
#define GMLE_ATOMIC_FILE_H

#include "io_internal.h"

#include <stdio.h>

typedef struct gmle__outfile {
  int fd;       /* -1 once closed */
  int direct;   /* written straight through: no temporary file */
  int seekable; /* pwrite works on fd (regular files, /dev/null) */
  char *target; /* the file renamed onto (symlinks resolved); NULL: direct */
  char *tmp;    /* the temporary file; NULL: direct */
  int slot;     /* index in the signal-time registry, or -1 */
} gmle__outfile;

/* Open `path` for writing as described above. GMLE_E_IO naming the path
 * and errno's text, GMLE_E_OUT_OF_MEMORY. On failure nothing is left. */
gmle_status gmle__outfile_open(const gmle_context *ctx, const char *path,
                               gmle__outfile *o);
/* fsync fd when it is a file (devices and FIFOs are not synced). */
gmle_status gmle__outfile_sync(const gmle_context *ctx, const char *path,
                               gmle__outfile *o);
/* After the caller has closed fd (o->fd = -1): rename the temporary file
 * into place and make the rename durable; removes it on failure. Frees o's
 * strings either way. */
gmle_status gmle__outfile_place(const gmle_context *ctx, const char *path,
                                gmle__outfile *o);
/* Close fd (unless -1) and remove the temporary file; frees o's strings. */
void gmle__outfile_abort(gmle__outfile *o);

typedef struct gmle__atomic_file {
  const gmle_context *ctx;
  FILE *f;         /* NULL once committed or aborted */
  char *path;      /* final path as given (owned copy, for messages) */
  gmle__outfile o; /* o.fd belongs to f */
  uint64_t offset; /* bytes written so far */
} gmle__atomic_file;

/* GMLE_E_IO naming the path and errno's text; GMLE_E_INVALID_ARG,
 * GMLE_E_OUT_OF_MEMORY. On failure nothing is left to abort. */
gmle_status gmle__atomic_open(const gmle_context *ctx, const char *path,
                              gmle__atomic_file *af);
/* Append n bytes (GMLE_E_IO naming the path and offset; the temporary file
 * is removed on failure and later calls fail). */
gmle_status gmle__atomic_write(gmle__atomic_file *af, const void *p, size_t n);
/* Flush, fsync, close and rename into place. The temporary file is removed
 * on failure. Frees af's strings either way. */
gmle_status gmle__atomic_commit(gmle__atomic_file *af);
/* Close and remove the temporary file (no-op after commit/abort). */
void gmle__atomic_abort(gmle__atomic_file *af);

#endif /* GMLE_ATOMIC_FILE_H */
