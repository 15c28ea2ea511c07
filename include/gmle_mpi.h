/*
 * gmle_mpi.h -- gmle across the processes of an MPI job (libgmle_mpi).
 *
 * gmle's statistics merge exactly, so a fit over data spread across the
 * ranks of an MPI communicator is one collective per pass: every rank
 * accumulates its own rows, the statistics of every rank are combined into
 * every rank, and each rank then holds what one process reading all the
 * rows would hold. This library does the combining; libgmle itself never
 * links MPI. It needs gmle.h and the MPI implementation's <mpi.h>.
 *
 * Conventions (as gmle.h): calls return gmle_status; the collective calls
 * must be made by every rank of the handle's communicator in the same
 * order.
 *
 * Failures never hang a job. Every collective call starts with an
 * agreement (gmle_mpi_agree): each rank says whether it is fine, and when
 * one is not, every rank returns that rank's status instead of exchanging
 * data. A rank that fails between collectives (bad data, a missing file)
 * therefore calls gmle_mpi_agree with its status: that call meets the
 * other ranks' next collective, and they all return. From then on the
 * handle is failed: every collective returns the failure at once, without
 * communicating, so every rank can unwind to its exit.
 *
 * Determinism: statistics travel as the bytes of their files
 * (gmle_stats_save_mem) and are merged in rank order on every rank, so the
 * combined statistics are bit-identical on every rank and from run to run
 * for the same number of ranks and the same rows on each.
 */
#ifndef GMLE_MPI_H
#define GMLE_MPI_H

#include "gmle.h"

#include <mpi.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A communicator gmle_mpi works on, with the outcome of its agreements. */
typedef struct gmle_mpi gmle_mpi;

/** A handle on a duplicate of comm (so that gmle_mpi's collectives never
 *  meet the caller's); MPI must be initialised. Collective.
 *  GMLE_E_OUT_OF_MEMORY, GMLE_E_DEVICE (an MPI call failed). */
GMLE_API gmle_status gmle_mpi_create(MPI_Comm comm, gmle_mpi **out);
/** Free a handle (frees its communicator). NULL is a no-op. */
GMLE_API void gmle_mpi_free(gmle_mpi *h);
/** This process's rank, and the number of ranks. */
GMLE_API int gmle_mpi_rank(const gmle_mpi *h);
GMLE_API int gmle_mpi_size(const gmle_mpi *h);
/** The handle's communicator, for the caller's own collectives (call
 *  gmle_mpi_agree before each, so that a failed rank cannot hang them). */
GMLE_API MPI_Comm gmle_mpi_comm(const gmle_mpi *h);

/** The message of the handle's failure ("" when none): which rank failed,
 *  with what status, or which MPI call failed. */
GMLE_API const char *gmle_mpi_error(const gmle_mpi *h);
/** The lowest rank that reported a failure, or -1. */
GMLE_API int gmle_mpi_failed_rank(const gmle_mpi *h);

/** Collective: every rank gives its status. GMLE_OK when every rank's is
 *  GMLE_OK; otherwise the status of the lowest failing rank (a failing
 *  rank gets its own), and the handle is failed from then on. */
GMLE_API gmle_status gmle_mpi_agree(gmle_mpi *h, gmle_status local);

/** Every rank's `len` bytes at `mine` on every rank, in rank order, after
 *  the agreement on `local` (so a rank whose work failed passes its status
 *  here, and every rank returns it): *all receives a buffer (release it
 *  with free()) holding rank r's bytes at offsets off[r] .. off[r + 1]
 *  (off has gmle_mpi_size(h) + 1 entries). Any size: messages beyond
 *  MPI's int counts go in pieces. Collective. */
GMLE_API gmle_status gmle_mpi_allgather(gmle_mpi *h, gmle_status local,
                                        const void *mine, size_t len,
                                        void **all, size_t *off);
/** `len` bytes at buf (the same len on every rank) from rank root to every
 *  rank, after the agreement on `local`. Collective. */
GMLE_API gmle_status gmle_mpi_bcast(gmle_mpi *h, gmle_status local, int root,
                                    void *buf, size_t len);

/** Combine every rank's statistics into every rank: *out receives, on each
 *  rank, new statistics on ctx equal to the merge (gmle_stats_merge) of
 *  every rank's `local` in rank order, bit-identical on every rank. A rank
 *  with no rows gives empty statistics of the same shape. Collective.
 *  Errors: those of gmle_stats_save_mem, gmle_stats_load_mem and
 *  gmle_stats_merge (statistics of different shapes or class names),
 *  GMLE_E_DEVICE when MPI fails, and another rank's failure. Each rank
 *  sends its statistics' bytes once: about 8 C (D^2 + 2 D + 2) bytes
 *  for C classes of D features (8 C (3 D + 2) for diagonal statistics),
 *  whatever the row count. */
GMLE_API gmle_status gmle_mpi_stats_allreduce(gmle_mpi *h, gmle_context *ctx,
                                              const gmle_stats *local,
                                              gmle_stats **out);
/** The same for EM statistics (gmle_em_stats_merge in rank order). */
GMLE_API gmle_status gmle_mpi_em_stats_allreduce(gmle_mpi *h, gmle_context *ctx,
                                                 const gmle_em_stats *local,
                                                 gmle_em_stats **out);
/** v[0..n) summed over the ranks, into v on every rank, added in rank
 *  order (bit-identical everywhere). Collective. */
GMLE_API gmle_status gmle_mpi_sum(gmle_mpi *h, double *v, size_t n);
/** v[0..n) summed over the ranks (exact), into v on every rank. */
GMLE_API gmle_status gmle_mpi_sum_u64(gmle_mpi *h, uint64_t *v, size_t n);

/** gmle_em_fit over the rows of every rank: each rank's src yields only its
 *  own rows (its share), opt and n_classes are the same on every rank, and
 *  every rank returns the same model. Each EM iteration is a pass over
 *  every share, then gmle_mpi_em_stats_allreduce, then the M-step
 *  (gmle_em_step) on every rank; the final training log-likelihood is a
 *  sum over the ranks. So from a given start (GMLE_INIT_MODEL, init_model
 *  the same model on every rank) the result equals gmle_em_fit on all the
 *  rows in one process, to rounding (docs/MIXTURES.md). The other
 *  initialisations are computed by rank 0 from a sample it gathers (each
 *  rank's reservoir sample of its rows, at most opt->sample_rows per
 *  class) and broadcast: k-means++, random and split run as in gmle_em_fit
 *  but on that sample (split's EM iterations between splits too), so
 *  they start EM from another point than one process would. With n_init >
 *  1, initialisation r uses the seed opt->seed + r. Collective; a failing
 *  batch source on one rank (it returns its status) fails every rank.
 *  Errors: those of gmle_em_fit, and another rank's failure. */
GMLE_API gmle_status gmle_mpi_em_fit(gmle_mpi *h, gmle_context *ctx, size_t dim,
                                     size_t n_classes,
                                     const gmle_batch_source *src,
                                     const gmle_em_options *opt,
                                     gmle_model **out);

#ifdef __cplusplus
}
#endif

#endif /* GMLE_MPI_H */
