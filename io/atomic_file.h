/*
 * atomic_file.h -- write a file all at once or not at all (internal).
 *
 * gmle__atomic_open creates "<path>.tmp.<pid>.<n>" in the same directory
 * (O_EXCL, mode 0666 & ~umask), writes go to it, and gmle__atomic_commit
 * flushes, fsyncs, closes and renames it over `path` (then fsyncs the
 * directory, best effort). Any failure, and gmle__atomic_abort, removes the
 * temporary file, so `path` is either untouched or complete.
 */
#ifndef GMLE_ATOMIC_FILE_H
#define GMLE_ATOMIC_FILE_H

#include "io_internal.h"

#include <stdio.h>

typedef struct gmle__atomic_file {
  const gmle_context *ctx;
  FILE *f;         /* NULL once committed or aborted */
  char *path;      /* final path (owned copy) */
  char *tmp_path;  /* temporary path (owned) */
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
