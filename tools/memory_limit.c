/* memory_limit.c -- start OpenBLAS with a thread count that fits an
 * address-space limit (ulimit -v).
 *
 * OpenBLAS starts its worker threads when the library is loaded, before
 * main, and each maps a work buffer (up to 128 MiB) at once, retrying
 * forever when the mmap fails; exit then waits for those threads, so a run
 * under a tight limit hangs. The thread count is read from
 * OPENBLAS_NUM_THREADS at load time only, so when a limit is set and the
 * count is unset or too large for it, the command sets it and executes
 * itself again (main.c; once: the second start finds it set). The library
 * then checks the room left before its first BLAS call (src/blas_room.c). */
#include "cli.h"

#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

/* One OpenBLAS buffer and its slack (src/blas_room.c's BLAS_BUFFER). */
#define BLAS_BUFFER_BYTES ((unsigned long long)129 << 20)

int cli_fit_blas_threads_to_limit(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_AS, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
    return 0;
  /* At most half the limit for the buffers, and one thread at least. */
  unsigned long long fit =
      (unsigned long long)rl.rlim_cur / 2 / BLAS_BUFFER_BYTES;
  if (fit < 1)
    fit = 1;
  const char *cur = getenv("OPENBLAS_NUM_THREADS");
  if (cur && *cur && strtoull(cur, NULL, 10) >= 1 &&
      strtoull(cur, NULL, 10) <= fit)
    return 0;
  /* Unset, OpenBLAS starts one thread per core: fine when those fit. */
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  if (!(cur && *cur) && cores > 0 && (unsigned long long)cores <= fit)
    return 0;
  char val[32];
  snprintf(val, sizeof val, "%llu", fit);
  return setenv("OPENBLAS_NUM_THREADS", val, 1) == 0;
}
