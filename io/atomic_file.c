/* atomic_file.c -- temporary file in the same directory, fsync, rename. */
#include "atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static atomic_uint tmp_counter;

static char *dup_str(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = gmle__malloc(n);
  if (d)
    memcpy(d, s, n);
  return d;
}

static void release(gmle__atomic_file *af) {
  gmle__free(af->path);
  gmle__free(af->tmp_path);
  af->path = af->tmp_path = NULL;
  af->f = NULL;
}

gmle_status gmle__atomic_open(const gmle_context *ctx, const char *path,
                              gmle__atomic_file *af) {
  if (!af)
    return gmle__error(ctx, GMLE_E_INVALID_ARG, "atomic file: NULL handle");
  memset(af, 0, sizeof *af);
  af->ctx = ctx;
  if (!path || !*path)
    return gmle__error(ctx, GMLE_E_INVALID_ARG, "empty or NULL file path");
  size_t n = strlen(path) + 64;
  af->path = dup_str(path);
  af->tmp_path = gmle__malloc(n);
  if (!af->path || !af->tmp_path) {
    release(af);
    return gmle__error(ctx, GMLE_E_OUT_OF_MEMORY,
                       "%s: out of memory opening for writing", path);
  }
  int fd = -1, err = 0;
  for (int attempt = 0; attempt < 100; attempt++) {
    unsigned k = atomic_fetch_add(&tmp_counter, 1u);
    snprintf(af->tmp_path, n, "%s.tmp.%ld.%u", path, (long)getpid(), k);
    fd = open(af->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0 || errno != EEXIST)
      break;
  }
  if (fd < 0) {
    err = errno;
    gmle_status s =
        gmle__error(ctx, GMLE_E_IO, "%s: cannot create temporary file %s: %s",
                    path, af->tmp_path, strerror(err));
    release(af);
    return s;
  }
  af->f = fdopen(fd, "wb");
  if (!af->f) {
    err = errno;
    close(fd);
    unlink(af->tmp_path);
    gmle_status s = gmle__error(ctx, GMLE_E_IO, "%s: fdopen failed: %s", path,
                                strerror(err));
    release(af);
    return s;
  }
  return GMLE_OK;
}

void gmle__atomic_abort(gmle__atomic_file *af) {
  if (!af || !af->f)
    return;
  fclose(af->f);
  unlink(af->tmp_path);
  release(af);
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

/* fsync the directory holding path, so that the rename is durable. Best
 * effort: some file systems refuse fsync on directories. */
static void sync_dir(const char *path) {
  const char *slash = strrchr(path, '/');
  char dir[4096];
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

gmle_status gmle__atomic_commit(gmle__atomic_file *af) {
  if (!af || !af->f)
    return gmle__error(af ? af->ctx : NULL, GMLE_E_INVALID_ARG,
                       "commit of a closed atomic file");
  const gmle_context *ctx = af->ctx;
  const char *what = NULL;
  int err = 0;
  if (fflush(af->f) != 0)
    what = "flush", err = errno;
  else if (fsync(fileno(af->f)) != 0)
    what = "fsync", err = errno;
  if (what) {
    gmle_status s = gmle__error(ctx, GMLE_E_IO, "%s: %s failed: %s", af->path,
                                what, strerror(err));
    gmle__atomic_abort(af);
    return s;
  }
  int rc = fclose(af->f);
  af->f = NULL;
  if (rc != 0) {
    err = errno;
    unlink(af->tmp_path);
    gmle_status s = gmle__error(ctx, GMLE_E_IO, "%s: close failed: %s",
                                af->path, strerror(err));
    release(af);
    return s;
  }
  if (rename(af->tmp_path, af->path) != 0) {
    err = errno;
    unlink(af->tmp_path);
    gmle_status s =
        gmle__error(ctx, GMLE_E_IO, "%s: cannot rename %s into place: %s",
                    af->path, af->tmp_path, strerror(err));
    release(af);
    return s;
  }
  sync_dir(af->path);
  release(af);
  return GMLE_OK;
}
