/* same_file.c -- refuse, before any work, a run whose output is one of its
 * inputs or another of its outputs (gmle fit d.npy -o d.npy would replace
 * the data with the model). Files are compared by device and inode, so
 * links and other spellings of a name are caught too. */
#include "cli.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* A path's file part (after a Kaldi "ark[,opts]:" / "scp:" prefix). */
static const char *file_part(const char *path) {
  const char *colon = cli_is_kaldi(path) ? strchr(path, ':') : NULL;
  return colon ? colon + 1 : path;
}

/* The file a path names: the part after "ark[,opts]:" / "scp:" for Kaldi
 * tables. 0 when it is not an existing regular file (a new output, a
 * device, a FIFO or "-" cannot be overwritten by the rename). */
static int file_id(const char *path, struct stat *st) {
  if (!path || strcmp(path, "-") == 0)
    return 0;
  return stat(file_part(path), st) == 0 && S_ISREG(st->st_mode);
}

static int same(const struct stat *a, const struct stat *b) {
  return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* Exit when out (of stat so) is one of the archives a Kaldi script
 * ("scp:FILE": lines "KEY ARCHIVE[:OFFSET]") reads from. */
static void refuse_if_in_script(const cli_file_role *out, const struct stat *so,
                                const cli_file_role *script) {
  FILE *f = fopen(file_part(script->path), "r");
  if (!f)
    return; /* the reader names the problem */
  char line[8192], last[4096] = "";
  while (fgets(line, sizeof line, f)) {
    char *p = line;
    while (*p == ' ' || *p == '\t')
      p++;
    while (*p && *p != ' ' && *p != '\t' && *p != '\n')
      p++; /* the key */
    while (*p == ' ' || *p == '\t')
      p++;
    size_t len = strcspn(p, "\r\n");
    while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
      len--;
    /* ARCHIVE:OFFSET: the offset is the digits after the last colon */
    size_t end = len;
    for (size_t k = len; k > 0; k--) {
      if (p[k - 1] == ':') {
        size_t d = k;
        while (d < len && p[d] >= '0' && p[d] <= '9')
          d++;
        if (d == len && d > k)
          end = k - 1;
        break;
      }
    }
    if (end == 0 || end >= sizeof last)
      continue;
    p[end] = '\0';
    if (strcmp(p, last) == 0)
      continue; /* consecutive entries of one archive */
    memcpy(last, p, end + 1);
    struct stat sx;
    if (stat(p, &sx) == 0 && S_ISREG(sx.st_mode) && same(so, &sx)) {
      fclose(f);
      cli_die(CLI_EXIT_USAGE, out->path,
              "the output (%s) is the archive %s that the input %s (%s) "
              "reads from; nothing was done",
              out->role, p, script->path, script->role);
    }
  }
  fclose(f);
}

/* Exit when out (of stat so) is one of files[0..n), or an archive that one
 * of them, a Kaldi script, reads. */
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
    if (files[i].path && strncmp(files[i].path, "scp", 3) == 0 &&
        cli_is_kaldi(files[i].path))
      refuse_if_in_script(out, so, &files[i]);
  }
}

/* A new output (no file yet) as its folder's device and inode and its last
 * name: two outputs that would be created as the same file agree on all
 * three. 0 for "-", a name without a folder that exists, or an empty name. */
static int new_file_id(const char *path, struct stat *dir, const char **base) {
  if (!path || strcmp(path, "-") == 0)
    return 0;
  path = file_part(path);
  const char *slash = strrchr(path, '/');
  *base = slash ? slash + 1 : path;
  if (!**base)
    return 0;
  char folder[4096];
  if (!slash)
    snprintf(folder, sizeof folder, ".");
  else if (slash == path)
    snprintf(folder, sizeof folder, "/");
  else if ((size_t)(slash - path) < sizeof folder)
    snprintf(folder, sizeof folder, "%.*s", (int)(slash - path), path);
  else
    return 0;
  return stat(folder, dir) == 0 && S_ISDIR(dir->st_mode);
}

/* Exit when two outputs not yet on disk name the same new file. */
static void refuse_same_new_outputs(const cli_file_role *out, size_t n_out) {
  for (size_t o = 0; o < n_out; o++) {
    struct stat so, dir_o;
    const char *base_o;
    if (file_id(out[o].path, &so) || !new_file_id(out[o].path, &dir_o, &base_o))
      continue;
    for (size_t p = 0; p < o; p++) {
      struct stat sp, dir_p;
      const char *base_p;
      if (!file_id(out[p].path, &sp) &&
          new_file_id(out[p].path, &dir_p, &base_p) && same(&dir_o, &dir_p) &&
          strcmp(base_o, base_p) == 0)
        cli_die(CLI_EXIT_USAGE, out[o].path,
                "the output (%s) is the same file as the output %s (%s); "
                "nothing was done",
                out[o].role, out[p].path, out[p].role);
    }
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
  refuse_same_new_outputs(out, n_out);
}
