/*
 * mpi_internal.h -- what the files of libgmle_mpi share: moving bytes
 * between ranks whatever their count (MPI counts are int: larger messages
 * go in pieces). Not installed.
 */
#ifndef GMLE_MPI_INTERNAL_H
#define GMLE_MPI_INTERNAL_H

#include "gmle_mpi.h"

#include <stddef.h>

/* Return the status of a call that fails. */
#define GMLE_MPI_TRY(call)                                                     \
  do {                                                                         \
    const gmle_status try_s_ = (call);                                         \
    if (try_s_ != GMLE_OK)                                                     \
      return try_s_;                                                           \
  } while (0)

/* Every rank's `len` bytes at `mine`, in rank order, on rank `root` (every
 * rank when root is -1): *all (malloc'd; NULL on the ranks that receive
 * nothing) holds rank r's bytes at off[r] .. off[r + 1] (off has size + 1
 * entries, filled on every rank). Starts with the agreement on `local`: a
 * rank whose work failed passes its status and gets it back, and so does
 * every other rank. */
gmle_status gmle_mpi__gather(gmle_mpi *h, gmle_status local, int root,
                             const void *mine, size_t len, unsigned char **all,
                             size_t *off);
/* `len` bytes at buf from rank root to every rank (no agreement). */
gmle_status gmle_mpi__bcast(gmle_mpi *h, int root, void *buf, size_t len);
/* An MPI call that returned rc: the handle fails with GMLE_E_DEVICE and a
 * message naming the call. */
gmle_status gmle_mpi__fail(gmle_mpi *h, const char *call, int rc);
/* The largest message sent in one MPI call (tests lower it to check the
 * pieces). */
void gmle_mpi__set_max_message(size_t bytes);

#endif /* GMLE_MPI_INTERNAL_H */
