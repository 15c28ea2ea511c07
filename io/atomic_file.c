/* atomic_file.c -- outputs: straight through, or a temporary file renamed
 * into place; the registry of temporary files for signal handlers. */
#define _XOPEN_SOURCE 700 /* realpath */
#include "atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The longest file name component (NAME_MAX of Linux file systems). */
#define NAME_LIMIT 255
/* Temporary files alive at once that a signal handler can remove. */
#define LIVE_MAX 64

static atomic_uint tmp_counter;
static _Atomic(char *) live_tmp[LIVE_MAX];

/* ---- the registry of temporary files ------------------------------------ */

static int live_add(char *tmp) {
  for (int i = 0; i < LIVE_MAX; i++) {
    char *none = NULL;
    if (atomic_compare_exchange_strong(&live_tmp[i], &none, tmp))
      return i;
  }
  return -1; /* full: still removed on errors, not on signals */
}

static void live_del(int slot) {
  if (slot >= 0)
    atomic_store(&live_tmp[slot], NULL);
}

/* Only unlink(2) and atomic loads: safe in a signal handler. */
void gmle_remove_temporary_files(void) {
  for (int i = 0; i < LIVE_MAX; i++) {
    char *p = atomic_load(&live_tmp[i]);
    if (p)
      (void)unlink(p);
  }
}

/* ---- where an output goes ------------------------------------------------ */

static char *dup_str(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = gmle__malloc(n);
  if (d)
    memcpy(d, s, n);
  return d;
}

/* Names that mean the process's own standard streams. */
static int is_stream_name(const char *path) {
  return strcmp(path, "-") == 0 || strcmp(path, "/dev/stdout") == 0 ||
         strcmp(path, "/dev/stderr") == 0 ||
         strncmp(path, "/dev/fd/", 8) == 0 ||
         strncmp(path, "/proc/self/fd/", 14) == 0;
}

/* The end of a chain of symlinks whose last target does not exist yet
 * (realpath needs an existing file). NULL on loops or errors. */
static char *follow_dangling(const char *path) {
  char *cur = dup_str(path);
  for (int hops = 0; cur && hops < 40; hops++) {
    struct stat st;
    if (lstat(cur, &st) != 0 || !S_ISLNK(st.st_mode))
      return cur;
    char link[PATH_MAX];
    ssize_t n = readlink(cur, link, sizeof link - 1);
    if (n < 0) {
      gmle__free(cur);
      return NULL;
    }
    link[n] = '\0';
    const char *slash = strrchr(cur, '/');
    size_t dlen = link[0] == '/' || !slash ? 0 : (size_t)(slash - cur) + 1;
    char *next = gmle__malloc(dlen + (size_t)n + 1);
    if (next) {
      memcpy(next, cur, dlen);
      memcpy(next + dlen, link, (size_t)n + 1);
    }
    gmle__free(cur);
    cur = next;
  }
  gmle__free(cur);
  return NULL;
}

/* The file a rename must replace: path itself, or the end of its symlinks
 * (*out). GMLE_E_OUT_OF_MEMORY, GMLE_E_IO for a link that cannot be read. */
static gmle_status rename_target(const gmle_context *ctx, const char *path,
                                 int exists, char **out) {
  struct stat lst;
  int dangling = 0;
  if (lstat(path, &lst) != 0 || !S_ISLNK(lst.st_mode)) {
    *out = dup_str(path);
  } else if (!exists) {
    dangling = 1;
    *out = follow_dangling(path);
  } else {
    char *real = realpath(path, NULL);
    if (!real)
      return gmle__error(ctx, GMLE_E_IO, "%s: cannot resolve the link: %s",
                         path, strerror(errno));
    *out = dup_str(real);
    free(real);
  }
  if (*out)
    return GMLE_OK;
  return gmle__error(ctx, dangling ? GMLE_E_IO : GMLE_E_OUT_OF_MEMORY,
                     "%s: cannot resolve the link (out of memory or a loop)",
                     path);
}

/* "<dir>/<name>.tmp-<pid>-<k>", the name cut so that it fits NAME_LIMIT. */
static char *temp_name(const char *target, unsigned k) {
  char suffix[64];
  int sl = snprintf(suffix, sizeof suffix, ".tmp-%ld-%u", (long)getpid(), k);
  const char *slash = strrchr(target, '/');
  size_t dlen = slash ? (size_t)(slash - target) + 1 : 0;
  size_t blen = strlen(target) - dlen;
  if (blen + (size_t)sl > NAME_LIMIT)
    blen = NAME_LIMIT - (size_t)sl;
  char *t = gmle__malloc(dlen + blen + (size_t)sl + 1);
  if (t) {
    memcpy(t, target, dlen + blen);
    memcpy(t + dlen + blen, suffix, (size_t)sl + 1);
  }
  return t;
}

static gmle_status open_direct(const gmle_context *ctx, const char *path,
                               gmle__outfile *o) {
  o->direct = 1;
  o->fd = strcmp(path, "-") == 0 ? fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3)
                                 : open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY);
  if (o->fd < 0)
    return gmle__error(ctx, GMLE_E_IO, "%s: cannot open for writing: %s", path,
                       strerror(errno));
  o->seekable = lseek(o->fd, 0, SEEK_CUR) != (off_t)-1 &&
                !(fcntl(o->fd, F_GETFL) & O_APPEND);
  return GMLE_OK;
}

/* The mode, and the owner where allowed, of the file being replaced. */
static void keep_mode(int fd, const struct stat *st) {
  if (fchown(fd, st->st_uid, st->st_gid) != 0) {
    /* not the owner's right: the file becomes the caller's */
  }
  (void)fchmod(fd, st->st_mode & 07777);
}

static gmle_status open_temp(const gmle_context *ctx, const char *path,
                             gmle__outfile *o, const struct stat *old) {
  for (int attempt = 0; attempt < 100; attempt++) {
    gmle__free(o->tmp);
    o->tmp = temp_name(o->target, atomic_fetch_add(&tmp_counter, 1u));
    if (!o->tmp)
      return gmle__error(ctx, GMLE_E_OUT_OF_MEMORY,
                         "%s: out of memory opening for writing", path);
    o->fd = open(o->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
                 old ? 0600 : 0666);
    if (o->fd >= 0 || errno != EEXIST)
      break;
  }
  if (o->fd < 0)
    return gmle__error(ctx, GMLE_E_IO,
                       "%s: cannot create a temporary file next to it: %s",
                       path, strerror(errno));
  o->slot = live_add(o->tmp);
  o->seekable = 1;
  if (old)
    keep_mode(o->fd, old);
  return GMLE_OK;
}

gmle_status gmle__outfile_open(const gmle_context *ctx, const char *path,
                               gmle__outfile *o) {
  memset(o, 0, sizeof *o);
  o->fd = -1;
  o->slot = -1;
  if (!path || !*path)
    return gmle__error(ctx, GMLE_E_INVALID_ARG, "empty or NULL file path");
  struct stat st;
  int exists = stat(path, &st) == 0;
  if (is_stream_name(path) ||
      (exists && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)))
    return open_direct(ctx, path, o);
  if (exists && S_ISDIR(st.st_mode))
    return gmle__error(ctx, GMLE_E_IO, "%s: is a directory", path);
  gmle_status s = rename_target(ctx, path, exists, &o->target);
  if (s != GMLE_OK)
    return s;
  s = open_temp(ctx, path, o, exists ? &st : NULL);
  if (s != GMLE_OK)
    gmle__outfile_abort(o);
  return s;
}

gmle_status gmle__outfile_sync(const gmle_context *ctx, const char *path,
                               gmle__outfile *o) {
  if (o->direct || fsync(o->fd) == 0)
    return GMLE_OK;
  return gmle__error(ctx, GMLE_E_IO, "%s: fsync failed: %s", path,
                     strerror(errno));
}

static void release(gmle__outfile *o) {
  live_del(o->slot);
  o->slot = -1;
  gmle__free(o->target);
  gmle__free(o->tmp);
  o->target = o->tmp = NULL;
}

void gmle__outfile_abort(gmle__outfile *o) {
  if (o->fd >= 0)
    close(o->fd);
  o->fd = -1;
  if (o->tmp)
    (void)unlink(o->tmp);
  release(o);
}

/* fsync the directory holding path, so that the rename is durable. Best
 * effort: some file systems refuse fsync on directories. */
static void sync_dir(const char *path) {
  const char *slash = strrchr(path, '/');
  char dir[PATH_MAX];
  if (!slash) {
    strcpy(dir, ".");
  } else {
    size_t len = (size_t)(slash - path);
    if (len == 0)
      len = 1; /* "/file" */
    if (len >= sizeof dir)
      return;
    memcpy(dir, path, len);
    dir[len] = '\0';
  }
  int fd = open(dir, O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    (void)fsync(fd);
    close(fd);
  }
}

gmle_status gmle__outfile_place(const gmle_context *ctx, const char *path,
                                gmle__outfile *o) {
  gmle_status s = GMLE_OK;
  if (o->tmp && rename(o->tmp, o->target) != 0) {
    s = gmle__error(ctx, GMLE_E_IO, "%s: cannot rename %s into place: %s", path,
                    o->tmp, strerror(errno));
    (void)unlink(o->tmp);
  } else if (o->tmp) {
    sync_dir(o->target);
  }
  release(o);
  return s;
}

/* ---- the stdio form -------------------------------------------------------
 */

static void af_release(gmle__atomic_file *af) {
  gmle__free(af->path);
  af->path = NULL;
  af->f = NULL;
}

gmle_status gmle__atomic_open(const gmle_context *ctx, const char *path,
                              gmle__atomic_file *af) {
  if (!af)
    return gmle__error(ctx, GMLE_E_INVALID_ARG, "atomic file: NULL handle");
  memset(af, 0, sizeof *af);
  af->ctx = ctx;
  af->o.fd = -1;
  af->o.slot = -1;
  if (!path || !*path)
    return gmle__error(ctx, GMLE_E_INVALID_ARG, "empty or NULL file path");
  af->path = dup_str(path);
  if (!af->path)
    return gmle__error(ctx, GMLE_E_OUT_OF_MEMORY,
                       "%s: out of memory opening for writing", path);
  gmle_status s = gmle__outfile_open(ctx, path, &af->o);
  if (s == GMLE_OK) {
    af->f = fdopen(af->o.fd, "wb");
    if (!af->f) {
      s = gmle__error(ctx, GMLE_E_IO, "%s: fdopen failed: %s", path,
                      strerror(errno));
      gmle__outfile_abort(&af->o);
    }
  }
  if (s != GMLE_OK)
    af_release(af);
  return s;
}

void gmle__atomic_abort(gmle__atomic_file *af) {
  if (!af || !af->f)
    return;
  fclose(af->f);
  af->o.fd = -1;
  af->o.slot = -1;
  gmle__outfile_abort(&af->o);
  af_release(af);
}

gmle_status gmle__atomic_write(gmle__atomic_file *af, const void *p, size_t n) {
  if (!af || !af->f)
    return gmle__error(af ? af->ctx : NULL, GMLE_E_INVALID_ARG,
                       "write to a closed atomic file");
  if (n && fwrite(p, 1, n, af->f) != n) {
    int err = errno;
    gmle_status s =
        gmle__error(af->ctx, GMLE_E_IO, "%s: write failed at byte %llu: %s",
                    af->path, (unsigned long long)af->offset, strerror(err));
    gmle__atomic_abort(af);
    return s;
  }
  af->offset += n;
  return GMLE_OK;
}

gmle_status gmle__atomic_commit(gmle__atomic_file *af) {
  if (!af || !af->f)
    return gmle__error(af ? af->ctx : NULL, GMLE_E_INVALID_ARG,
                       "commit of a closed atomic file");
  const gmle_context *ctx = af->ctx;
  gmle_status s = GMLE_OK;
  if (ferror(af->f) || fflush(af->f) != 0)
    s = gmle__error(ctx, GMLE_E_IO, "%s: write failed: %s", af->path,
                    strerror(errno));
  if (s == GMLE_OK)
    s = gmle__outfile_sync(ctx, af->path, &af->o);
  if (s != GMLE_OK) {
    gmle__atomic_abort(af);
    return s;
  }
  int rc = fclose(af->f);
  af->o.fd = -1;
  af->o.slot = -1;
  if (rc != 0) {
    s = gmle__error(ctx, GMLE_E_IO, "%s: close failed: %s", af->path,
                    strerror(errno));
    gmle__outfile_abort(&af->o);
  } else {
    s = gmle__outfile_place(ctx, af->path, &af->o);
  }
  af_release(af);
  return s;
}

/* ---- the public form (text outputs of the command) ----------------------
 */

struct gmle_outfile {
  gmle__atomic_file af;
};

gmle_status gmle_outfile_open(gmle_context *ctx, const char *path,
                              gmle_outfile **out) {
  gmle__clear_error(ctx);
  if (!out)
    return gmle__error(ctx, GMLE_E_INVALID_ARG,
                       "gmle_outfile_open: out is NULL");
  *out = gmle__calloc(1, sizeof **out);
  if (!*out)
    return gmle__error(ctx, GMLE_E_OUT_OF_MEMORY,
                       "%s: out of memory opening for writing", path);
  gmle_status s = gmle__atomic_open(ctx, path, &(*out)->af);
  if (s != GMLE_OK) {
    gmle__free(*out);
    *out = NULL;
  }
  return s;
}

FILE *gmle_outfile_file(gmle_outfile *o) { return o ? o->af.f : NULL; }

gmle_status gmle_outfile_commit(gmle_outfile *o) {
  if (!o)
    return GMLE_E_INVALID_ARG;
  gmle__clear_error(o->af.ctx);
  gmle_status s = gmle__atomic_commit(&o->af);
  gmle__free(o);
  return s;
}

void gmle_outfile_abort(gmle_outfile *o) {
  if (!o)
    return;
  gmle__atomic_abort(&o->af);
  gmle__free(o);
}
