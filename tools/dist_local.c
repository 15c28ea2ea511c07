/* dist_local.c -- gmle: one process reads all the rows, so there is nothing
 * to share or combine (dist.h; gmle-mpi links mpi/dist_mpi.c instead). */
#include "dist.h"

#include <stdlib.h>

const char *const cli_prog = "gmle";

void cli_dist_init(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
}

const char *cli_dist_main_help(void) { return NULL; }

int cli_dist_has_command(const char *name) {
  (void)name;
  return 1;
}

int cli_dist_rank(void) { return 0; }
int cli_dist_size(void) { return 1; }
const char *cli_dist_tag(void) { return ""; }

void cli_dist_parsed(cli_common *common) { (void)common; }

void cli_dist_context(gmle_context **ctx, const cli_common *common) {
  (void)ctx;
  (void)common;
}

void cli_exit(int code) { exit(code); }

void cli_dist_share(cli_data *d) { (void)d; }

void cli_dist_classes(cli_classes *cls) { (void)cls; }

gmle_stats *cli_dist_stats(gmle_context *ctx, gmle_stats *local,
                           const char *what) {
  (void)ctx;
  (void)what;
  return local;
}

gmle_em_stats *cli_dist_em_stats(gmle_context *ctx, gmle_em_stats *local,
                                 const char *what) {
  (void)ctx;
  (void)what;
  return local;
}

gmle_status cli_dist_em_fit(gmle_context *ctx, size_t dim, size_t n_classes,
                            const gmle_batch_source *src,
                            const gmle_em_options *opt, gmle_model **out) {
  return gmle_em_fit(ctx, dim, n_classes, src, opt, out);
}

void cli_dist_sum(double *v, size_t n) {
  (void)v;
  (void)n;
}

void cli_dist_sum_u64(uint64_t *v, size_t n) {
  (void)v;
  (void)n;
}

int cli_dist_writes(void) { return 1; }

gmle_writer *cli_dist_writer_open(gmle_context *ctx, const char *path,
                                  gmle_elem elem, size_t cols,
                                  size_t str_width) {
  gmle_writer *w = NULL;
  gmle_status s = gmle_writer_open(ctx, path, elem, cols, str_width, &w);
  if (s != GMLE_OK)
    cli_fail(ctx, s, path, -1);
  cli_track_writer(w);
  return w;
}

void cli_dist_writer_write(gmle_writer *w, const cli_data *d, const void *rows,
                           size_t n, const char *path) {
  gmle_status s = gmle_writer_write(w, rows, n);
  if (s != GMLE_OK)
    cli_fail(d->ctx, s, path, -1);
}

void cli_dist_writer_commit(gmle_writer *w, gmle_context *ctx, const char *path,
                            uint64_t total_rows) {
  (void)total_rows;
  cli_track_writer(NULL);
  gmle_status s = gmle_writer_commit(w);
  if (s != GMLE_OK)
    cli_fail(ctx, s, path, -1);
}
