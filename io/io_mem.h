/*
 * io_mem.h -- the data-file layer's entry points on data already in memory
 * or an open descriptor, for the fuzzing harnesses (tests/fuzz) and their
 * regression suite, which read inputs without writing a file each. Not
 * installed.
 */
#ifndef GMLE_IO_MEM_H
#define GMLE_IO_MEM_H

#include "gmle_io.h"

/* io_reader.c: gmle_reader_open on an open file descriptor (a regular
 * file, e.g. a memfd), which the reader owns from here on: it is closed by
 * gmle_reader_free, or here on error. `path` names the data in messages. */
gmle_status gmle__reader_open_fd(gmle_context *ctx, int fd, const char *path,
                                 const gmle_reader_options *opt,
                                 gmle_reader **out);

/* gmle_model_load (model_file.c) and gmle_stats_load (stats_file.c) of the
 * `size` bytes at `data` (not copied; `name` names them in messages). */
gmle_status gmle__model_load_mem(gmle_context *ctx, const char *name,
                                 const void *data, size_t size,
                                 gmle_model **out);
gmle_status gmle__stats_load_mem(gmle_context *ctx, const char *name,
                                 const void *data, size_t size,
                                 gmle_stats **out);

#endif /* GMLE_IO_MEM_H */
