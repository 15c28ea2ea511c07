/*
 * replay_main.c -- runs a fuzzing harness without libFuzzer: every file
 * named on the command line, and every file in every directory named
 * (recursively, in name order), is passed to LLVMFuzzerTestOneInput once.
 * This is how ctest replays the checked-in corpora (fuzz_replay.TARGET) with
 * the normal compiler, under ASan/UBSan in the sanitizer build. A harness
 * that finds a broken invariant aborts; a crash is a crash. Exit status 1
 * when a path cannot be read or when no input at all was found.
 */
#include "fuzzutil.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int run_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    perror(path);
    return -1;
  }
  size_t cap = 4096, n = 0;
  unsigned char *buf = malloc(cap);
  for (;;) {
    if (!buf) {
      fclose(f);
      fprintf(stderr, "%s: out of memory\n", path);
      return -1;
    }
    n += fread(buf + n, 1, cap - n, f);
    if (n < cap)
      break;
    cap *= 2;
    buf = realloc(buf, cap);
  }
  int bad = ferror(f);
  fclose(f);
  if (bad) {
    free(buf);
    fprintf(stderr, "%s: read error\n", path);
    return -1;
  }
  /* An exact-size copy, so that ASan sees reads past the input's end. */
  unsigned char *in = malloc(n ? n : 1);
  if (!in) {
    free(buf);
    return -1;
  }
  memcpy(in, buf, n);
  free(buf);
  LLVMFuzzerTestOneInput(in, n);
  free(in);
  return 0;
}

static int by_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Returns the number of inputs run, or -1 on an unreadable path. */
static long run_path(const char *path) {
  struct stat sb;
  if (stat(path, &sb) != 0) {
    perror(path);
    return -1;
  }
  if (!S_ISDIR(sb.st_mode))
    return run_file(path) == 0 ? 1 : -1;
  DIR *d = opendir(path);
  if (!d) {
    perror(path);
    return -1;
  }
  char **names = NULL;
  size_t n = 0, cap = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.')
      continue; /* ".", "..", and hidden files such as .gitkeep */
    if (n == cap) {
      cap = cap ? 2 * cap : 64;
      char **grown = realloc(names, cap * sizeof *names);
      if (!grown)
        break;
      names = grown;
    }
    size_t len = strlen(path) + strlen(e->d_name) + 2;
    names[n] = malloc(len);
    if (!names[n])
      break;
    snprintf(names[n], len, "%s/%s", path, e->d_name);
    n++;
  }
  closedir(d);
  if (n)
    qsort(names, n, sizeof *names, by_name);
  long total = 0;
  for (size_t i = 0; i < n; i++) {
    long k = total < 0 ? 0 : run_path(names[i]);
    total = k < 0 ? -1 : (total < 0 ? -1 : total + k);
    free(names[i]);
  }
  free(names);
  return total;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s FILE_OR_DIR...\n", argv[0]);
    return 2;
  }
  long total = 0;
  for (int i = 1; i < argc; i++) {
    long k = run_path(argv[i]);
    if (k < 0)
      return 1;
    total += k;
  }
  printf("%s: replayed %ld inputs\n", argv[0], total);
  if (total == 0) {
    fprintf(stderr, "%s: no inputs found\n", argv[0]);
    return 1;
  }
  return 0;
}
