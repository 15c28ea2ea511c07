/* dist_mpi.c -- gmle-mpi: the gmle command as one process per MPI rank
 * (dist.h). Rank r reads rows [r N / P, (r + 1) N / P) of DATA; statistics
 * are combined on every rank by libgmle_mpi; rank 0 writes models and
 * statistics, every rank writes its own rows of a score or classify
 * output. Every collective starts with an agreement (gmle_mpi_agree), and
 * every exit goes through one (cli_exit), so a rank that fails makes every
 * rank exit, none waits. */
#include "../dist.h"
#include "gmle_mpi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const cli_prog = "gmle-mpi";

static gmle_mpi *H;
static int rank, size, node_rank;
static char tag[32];

static const char mpi_help[] =
    "Usage: mpirun -np P gmle-mpi COMMAND [ARGS] [OPTIONS]\n"
    "\n"
    "gmle across the processes of an MPI job: rank r reads rows\n"
    "[r N / P, (r + 1) N / P) of DATA (a .npy or CSV file), the statistics of\n"
    "every rank are combined exactly (one collective per pass), and the\n"
    "result is the one gmle gives on the whole file.\n"
    "\n"
    "Commands (options as gmle's; 'gmle-mpi COMMAND --help'):\n"
    "  fit DATA [--labels FILE] -o MODEL.npz   fit one Gaussian per class,\n"
    "                                          or a mixture (--components K)\n"
    "  stats DATA [--labels FILE] -o STATS     statistics of all the rows\n"
    "  score MODEL DATA -o OUT.npy             each rank writes its rows\n"
    "  classify MODEL DATA [--truth FILE]      accuracy over all the rows\n"
    "  eval MODEL DATA [--labels FILE]         total/mean log-likelihood\n"
    "\n"
    "Rank 0 writes models and statistics; score and classify outputs are\n"
    ".npy files that every rank writes its rows into. A mixture's EM\n"
    "combines the EM statistics at every iteration; its initialisation\n"
    "(other than --init-model) is made by rank 0 from a sample of every\n"
    "rank's rows. --backend cuda|opencl without --device gives rank r the\n"
    "device r mod the number of devices of its node. Set OMP_NUM_THREADS to\n"
    "the cores of each rank.\n"
    "\n"
    "A failure on any rank (bad data, a missing file, a device error) makes\n"
    "every rank exit with its code; the failing rank's message names it\n"
    "('gmle-mpi fit: rank 2: x.npy: ...'); no output is left.\n"
    "\n"
    "Exit codes: as gmle's (0 ok, 1 usage, 2 bad data, 3 file, 4 device).\n";

/* A representative status of an exit code, so that the ranks that did not
 * fail exit with the failing rank's code (cli_exit_code maps it back). */
static gmle_status status_of_exit(int code) {
  switch (code) {
  case CLI_EXIT_OK:
    return GMLE_OK;
  case CLI_EXIT_USAGE:
    return GMLE_E_INVALID_ARG;
  case CLI_EXIT_DATA:
    return GMLE_E_DIM_MISMATCH;
  case CLI_EXIT_FILE:
    return GMLE_E_IO;
  default:
    return GMLE_E_DEVICE;
  }
}

/* Leave MPI and the process. */
CLI_NORETURN static void finish(int code) {
  fflush(stdout);
  fflush(stderr);
  gmle_mpi_free(H);
  H = NULL;
  MPI_Finalize();
  exit(code);
}

/* Another rank failed (it said why): undo this rank's outputs and exit
 * with its code. Rank 0 says which rank stopped the job. */
CLI_NORETURN static void stopped_by_other(gmle_status s) {
  if (rank == 0 && gmle_mpi_failed_rank(H) != rank)
    fprintf(stderr,
            "%s %s: stopped: rank %d of %d failed (its message says "
            "why)\n",
            cli_prog, cli_cmd, gmle_mpi_failed_rank(H), size);
  cli_cleanup();
  finish(cli_exit_code(s));
}

void cli_exit(int code) {
  const gmle_status s = gmle_mpi_agree(H, status_of_exit(code));
  if (code == CLI_EXIT_OK && s != GMLE_OK)
    stopped_by_other(s);
  finish(code);
}

/* A gmle_mpi call failed: another rank's failure, or this rank's. */
CLI_NORETURN static void dist_fail(gmle_context *ctx, gmle_status s,
                                   const char *what) {
  if (gmle_mpi_failed_rank(H) != rank)
    stopped_by_other(s);
  const char *msg = ctx ? gmle_context_error(ctx) : "";
  if (msg && msg[0])
    cli_fail(ctx, s, what, -1);
  cli_die(cli_exit_code(s), what, "%s",
          gmle_mpi_error(H)[0] ? gmle_mpi_error(H) : gmle_status_string(s));
}

void cli_dist_init(int *argc, char ***argv) {
  if (MPI_Init(argc, argv) != MPI_SUCCESS) {
    fprintf(stderr, "%s: MPI_Init failed\n", cli_prog);
    exit(CLI_EXIT_DEVICE);
  }
  if (gmle_mpi_create(MPI_COMM_WORLD, &H) != GMLE_OK) {
    fprintf(stderr, "%s: cannot set up the MPI communicator\n", cli_prog);
    MPI_Abort(MPI_COMM_WORLD, CLI_EXIT_DEVICE);
  }
  rank = gmle_mpi_rank(H);
  size = gmle_mpi_size(H);
  /* The rank within this machine, for choosing its device. */
  MPI_Comm node;
  if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0,
                          MPI_INFO_NULL, &node) == MPI_SUCCESS) {
    MPI_Comm_rank(node, &node_rank);
    MPI_Comm_free(&node);
  }
  snprintf(tag, sizeof tag, "rank %d: ", rank);
  /* Results are printed once, by rank 0. */
  if (rank != 0 && !freopen("/dev/null", "w", stdout))
    fprintf(stderr, "%s: rank %d: cannot silence stdout\n", cli_prog, rank);
}

const char *cli_dist_main_help(void) { return mpi_help; }

int cli_dist_has_command(const char *name) {
  static const char *const with_data[] = {"fit", "stats", "score", "classify",
                                          "eval"};
  for (size_t i = 0; i < sizeof with_data / sizeof with_data[0]; i++)
    if (strcmp(name, with_data[i]) == 0)
      return 1;
  return 0;
}

int cli_dist_rank(void) { return rank; }
int cli_dist_size(void) { return size; }
const char *cli_dist_tag(void) { return tag; }

void cli_dist_parsed(cli_common *common) {
  if (rank != 0) {
    common->quiet = 1;
    cli_quiet = 1;
  }
}

void cli_dist_context(gmle_context **ctx, const cli_common *common) {
  const gmle_backend b = gmle_context_backend(*ctx);
  if (common->device >= 0 || b == GMLE_BACKEND_CPU)
    return;
  size_t n = 0;
  if (gmle_device_list(b, NULL, 0, &n, NULL, 0) != GMLE_OK || n < 2)
    return;
  gmle_context *mine = NULL;
  const int device = node_rank % (int)n;
  gmle_status s = gmle_context_create(b, device, &mine);
  if (s != GMLE_OK) {
    fprintf(stderr, "%s %s: %sbackend %s device %d: %s\n", cli_prog, cli_cmd,
            tag, gmle_backend_name(b), device,
            mine ? gmle_context_error(mine) : gmle_status_string(s));
    gmle_context_free(mine);
    cli_exit(cli_exit_code(s));
  }
  gmle_context_free(*ctx);
  *ctx = mine;
}

void cli_dist_share(cli_data *d) {
  if (d->ark)
    cli_die(CLI_EXIT_USAGE, d->path,
            "gmle-mpi splits .npy and CSV files between its ranks, not "
            "Kaldi tables (run gmle on them)");
  uint64_t n = 0;
  if (!gmle_reader_rows(d->x, &n)) {
    gmle_status s = gmle_reader_count_rows(d->x, &n);
    if (s != GMLE_OK)
      cli_fail(d->rctx, s, d->path, -1);
  }
  /* r n / P without overflow; the last rank reads to the end, where the
   * length of a labels file is checked. */
  const uint64_t P = (uint64_t)size, r = (uint64_t)rank;
  const uint64_t first = n / P * r + n % P * r / P;
  const uint64_t last =
      rank == size - 1 ? UINT64_MAX : n / P * (r + 1) + n % P * (r + 1) / P;
  cli_data_range(d, first, last);
}

void cli_dist_classes(cli_classes *cls) {
  /* Every rank's names, NUL-terminated, one after another. */
  size_t len = 0;
  for (size_t c = 0; c < cls->n; c++)
    len += strlen(cls->names[c]) + 1;
  char *mine = cli_xmalloc(len);
  for (size_t c = 0, at = 0; c < cls->n; c++) {
    const size_t k = strlen(cls->names[c]) + 1;
    memcpy(mine + at, cls->names[c], k);
    at += k;
  }
  void *all = NULL;
  size_t *off = cli_xmalloc(((size_t)size + 1) * sizeof *off);
  gmle_status s = gmle_mpi_allgather(H, GMLE_OK, mine, len, &all, off);
  free(mine);
  if (s != GMLE_OK)
    dist_fail(NULL, s, "the class names");
  cli_label_set *set = cli_label_set_new();
  for (const char *p = all, *end = p + off[size]; p < end; p += strlen(p) + 1)
    cli_label_set_add(set, p);
  free(all);
  free(off);
  cli_classes_free(cls);
  cli_label_set_finish(set, cls);
}

/* Exit unless s is GMLE_OK. */
static void must(gmle_context *ctx, gmle_status s, const char *what) {
  if (s != GMLE_OK)
    dist_fail(ctx, s, what);
}

gmle_stats *cli_dist_stats(gmle_context *ctx, gmle_stats *local,
                           const char *what) {
  gmle_stats *all = NULL;
  must(ctx, gmle_mpi_stats_allreduce(H, ctx, local, &all), what);
  gmle_stats_free(local);
  return all;
}

gmle_em_stats *cli_dist_em_stats(gmle_context *ctx, gmle_em_stats *local,
                                 const char *what) {
  gmle_em_stats *all = NULL;
  must(ctx, gmle_mpi_em_stats_allreduce(H, ctx, local, &all), what);
  gmle_em_stats_free(local);
  return all;
}

gmle_status cli_dist_em_fit(gmle_context *ctx, size_t dim, size_t n_classes,
                            const gmle_batch_source *src,
                            const gmle_em_options *opt, gmle_model **out) {
  gmle_status s = gmle_mpi_em_fit(H, ctx, dim, n_classes, src, opt, out);
  if (s != GMLE_OK && gmle_mpi_failed_rank(H) != rank)
    stopped_by_other(s);
  return s; /* this rank's failure: the command names the row or class */
}

void cli_dist_sum(double *v, size_t n) {
  must(NULL, gmle_mpi_sum(H, v, n), NULL);
}

void cli_dist_sum_u64(uint64_t *v, size_t n) {
  must(NULL, gmle_mpi_sum_u64(H, v, n), NULL);
}

int cli_dist_writes(void) { return rank == 0; }

/* ---- score and classify outputs: every rank its rows, at their place ---- */

static void abort_writer(void *w) { gmle_writer_abort(w); }

gmle_writer *cli_dist_writer_open(gmle_context *ctx, const char *path,
                                  gmle_elem elem, size_t cols,
                                  size_t str_width) {
  if (cli_ends_with(path, ".csv"))
    cli_usage_error("%s: gmle-mpi writes .npy outputs (every rank writes its "
                    "rows at their place); name a .npy file",
                    path);
  /* Rank 0 makes the output and tells the others its temporary file. */
  gmle_writer *w = NULL;
  gmle_status s = GMLE_OK;
  const char *tmp = "";
  if (rank == 0) {
    s = gmle_writer_open(ctx, path, elem, cols, str_width, &w);
    if (s == GMLE_OK) {
      cli_on_fail(abort_writer, w);
      tmp = gmle_writer_temp_path(w);
      if (!tmp)
        cli_die(CLI_EXIT_USAGE, path,
                "gmle-mpi writes its outputs to a file (every rank writes "
                "its rows at their place), not to a device or a stream");
    } else {
      cli_fail(ctx, s, path, -1);
    }
  }
  void *all = NULL;
  size_t *off = cli_xmalloc(((size_t)size + 1) * sizeof *off);
  s = gmle_mpi_allgather(H, GMLE_OK, tmp, rank == 0 ? strlen(tmp) + 1 : 0, &all,
                         off);
  if (s != GMLE_OK)
    dist_fail(NULL, s, path);
  if (rank != 0) {
    s = gmle_writer_open_part(ctx, all, elem, cols, str_width, &w);
    if (s != GMLE_OK)
      cli_fail(ctx, s, path, -1);
    cli_on_fail(abort_writer, w);
  }
  free(all);
  free(off);
  return w;
}

void cli_dist_writer_write(gmle_writer *w, const cli_data *d, const void *rows,
                           size_t n, const char *path) {
  gmle_status s = gmle_writer_write_at(w, d->row0, rows, n);
  if (s != GMLE_OK)
    cli_fail(d->ctx, s, path, -1);
}

void cli_dist_writer_commit(gmle_writer *w, gmle_context *ctx, const char *path,
                            uint64_t total_rows) {
  gmle_status s = GMLE_OK;
  if (rank != 0) { /* the parts first: their rows are in the file */
    cli_on_fail_cancel(w);
    s = gmle_writer_commit(w);
    if (s != GMLE_OK)
      cli_fail(ctx, s, path, -1);
  }
  s = gmle_mpi_agree(H, GMLE_OK);
  if (s != GMLE_OK)
    stopped_by_other(s);
  if (rank == 0) {
    cli_on_fail_cancel(w);
    s = gmle_writer_set_rows(w, total_rows);
    if (s == GMLE_OK)
      s = gmle_writer_commit(w);
    else
      gmle_writer_abort(w);
    if (s != GMLE_OK)
      cli_fail(ctx, s, path, -1);
  }
}
