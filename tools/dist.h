/*
 * dist.h -- where gmle-mpi differs from gmle.
 *
 * gmle-mpi is the gmle command's own sources, run as one process per MPI
 * rank: each reads its share of the rows, and the results of every rank
 * are combined where gmle has them whole. These are the places; gmle links
 * dist_local.c (one process: nothing to share or combine), gmle-mpi links
 * mpi/dist_mpi.c (libgmle_mpi).
 */
#ifndef GMLE_CLI_DIST_H
#define GMLE_CLI_DIST_H

#include "cli.h"

/* The program's name in messages: "gmle" or "gmle-mpi". */
extern const char *const cli_prog;

/* Called first by main (gmle-mpi: MPI_Init, the ranks). */
void cli_dist_init(int *argc, char ***argv);
/* gmle-mpi's own usage text, or NULL (gmle's). */
const char *cli_dist_main_help(void);
/* Whether the program has command `name` (gmle-mpi: those that read
 * data). */
int cli_dist_has_command(const char *name);
/* This process's rank and the number of processes (1 for gmle). */
int cli_dist_rank(void);
int cli_dist_size(void);
/* What messages say after "gmle CMD: " ("" or "rank 2: "). */
const char *cli_dist_tag(void);
/* After the options are parsed (gmle-mpi: only rank 0 reports). */
void cli_dist_parsed(cli_common *common);
/* After the context is made: gmle-mpi gives rank r device r mod the
 * number of devices of a GPU backend when no --device was given. */
void cli_dist_context(gmle_context **ctx, const cli_common *common);

/* The share of DATA this process reads (gmle: all of it), applied with
 * cli_data_range. Called by cli_data_open. */
void cli_dist_share(cli_data *d);
/* The class set of every process's labels (gmle: cls as it is). */
void cli_dist_classes(cli_classes *cls);
/* Every process's statistics combined (takes over local). */
gmle_stats *cli_dist_stats(gmle_context *ctx, gmle_stats *local,
                           const char *what);
gmle_em_stats *cli_dist_em_stats(gmle_context *ctx, gmle_em_stats *local,
                                 const char *what);
/* gmle_em_fit over every process's rows (src gives this process's). */
gmle_status cli_dist_em_fit(gmle_context *ctx, size_t dim, size_t n_classes,
                            const gmle_batch_source *src,
                            const gmle_em_options *opt, gmle_model **out);
/* Sums over the processes (doubles added in rank order). */
void cli_dist_sum(double *v, size_t n);
void cli_dist_sum_u64(uint64_t *v, size_t n);
/* Whether this process writes the command's model or statistics (rank
 * 0). */
int cli_dist_writes(void);

/* The score and classify outputs: every process writes its rows at their
 * place (gmle-mpi: .npy files only). open exits on failure and removes the
 * output if the command fails; write exits on failure; commit takes the
 * total row count (of every process) and exits on failure. */
gmle_writer *cli_dist_writer_open(gmle_context *ctx, const char *path,
                                  gmle_elem elem, size_t cols,
                                  size_t str_width);
void cli_dist_writer_write(gmle_writer *w, const cli_data *d, const void *rows,
                           size_t n, const char *path);
void cli_dist_writer_commit(gmle_writer *w, gmle_context *ctx, const char *path,
                            uint64_t total_rows);

#endif /* GMLE_CLI_DIST_H */
