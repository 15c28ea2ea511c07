/* same_file.c -- refuse, before any work, a run whose output is one of its
 * inputs or another of its outputs (gmle fit d.npy -o d.npy would replace
 * the data with the model). Files are compared by device and inode, so
 * links and other spellings of a name are caught too. */
#include "cli.h"

#include <string.h>
#include <sys/stat.h>

/* The file a path names: the part after "ark[,opts]:" / "scp:" for Kaldi
 * tables. 0 when it is not an existing regular file (a new output, a
 * device, a FIFO or "-" cannot be overwritten by the rename). */
static int file_id(const char *path, struct stat *st) {
  if (!path || strcmp(path, "-") == 0)
    return 0;
  if (cli_is_kaldi(path)) {
    const char *colon = strchr(path, ':');
    if (!colon)
      return 0;
    path = colon + 1;
  }
  return stat(path, st) == 0 && S_ISREG(st->st_mode);
}

static int same(const struct stat *a, const struct stat *b) {
  return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* Exit when out (of stat so) is one of files[0..n). */
static void refuse_if_among(const cli_file_role *out, const struct stat *so,
                            const cli_file_role *files, size_t n,
                            const char *kind) {
  for (size_t i = 0; i < n; i++) {
    struct stat sx;
    if (file_id(files[i].path, &sx) && same(so, &sx))
      cli_die(CLI_EXIT_USAGE, out->path,
              "the output (%s) is the same file as the %s %s (%s); nothing "
              "was done",
              out->role, kind, files[i].path, files[i].role);
  }
}

void cli_refuse_same_files(const cli_file_role *in, size_t n_in,
                           const cli_file_role *out, size_t n_out) {
  for (size_t o = 0; o < n_out; o++) {
    struct stat so;
    if (!file_id(out[o].path, &so))
      continue;
    refuse_if_among(&out[o], &so, in, n_in, "input");
    refuse_if_among(&out[o], &so, out, o, "output");
  }
}
