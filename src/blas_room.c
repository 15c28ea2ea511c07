/* blas_room.c -- OpenBLAS under an address-space limit (ulimit -v).
 *
 * OpenBLAS maps one work buffer per thread at the thread's first BLAS call
 * (blas_memory_alloc in driver/others/memory.c) and, when the mmap fails,
 * retries forever: under a tight RLIMIT_AS, dsyevd (fit), dpotrf (model
 * load) and the scoring kernels spin at 100% CPU. The buffer is 32 to 128
 * MiB depending on the build. So, once per process, before any BLAS call:
 * measure the room the limit leaves, refuse with GMLE_E_OUT_OF_MEMORY when
 * not even one buffer fits (with room for gmle's own batches), use no more
 * OpenBLAS threads than half the room can give buffers to, and map the
 * calling thread's buffer now, while the room is known to be there (it is
 * kept and reused by every later call).
 */
#include "internal.h"

#include <cblas.h>
#include <lapacke.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/resource.h>
#include <unistd.h>

/* The largest OpenBLAS buffer (BUFFER_SIZE, 128 MiB on recent x86-64
 * builds) plus its alignment slack. */
#define BLAS_BUFFER ((uint64_t)129 << 20)
/* Room kept for gmle itself (batches, scratch) beside the buffers. */
#define GMLE_ROOM ((uint64_t)32 << 20)

static pthread_once_t room_once = PTHREAD_ONCE_INIT;
static uint64_t room_limit, room_used; /* bytes; limit 0: unlimited */

/* The process's mapped address space (what RLIMIT_AS counts); 0 when
 * unknown. */
static uint64_t address_space_used(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  if (!f)
    return 0;
  unsigned long long pages = 0;
  int ok = fscanf(f, "%llu", &pages) == 1;
  fclose(f);
  long pg = sysconf(_SC_PAGESIZE);
  return ok && pg > 0 ? (uint64_t)pages * (uint64_t)pg : 0;
}

/* Fewer threads when their buffers would not fit in half the room. */
static void cap_threads(uint64_t room) {
  uint64_t fit = room / 2 / BLAS_BUFFER;
  int threads = openblas_get_num_threads();
  if (fit < 1)
    fit = 1;
  if ((uint64_t)threads > fit)
    openblas_set_num_threads((int)fit);
}

static void measure_room(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_AS, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
    return;
  uint64_t used = address_space_used();
  if (!used)
    return;
  room_limit = (uint64_t)rl.rlim_cur;
  room_used = used;
  if (room_limit < used + BLAS_BUFFER + GMLE_ROOM)
    return; /* refused by gmle__blas_room */
  cap_threads(room_limit - used);
  /* dpotrf of a 1 x 1 matrix: OpenBLAS maps this thread's buffer. */
  double one = 1.0;
  (void)LAPACKE_dpotrf_work(LAPACK_COL_MAJOR, 'U', 1, &one, 1);
}

gmle_status gmle__blas_room(const gmle_context *ctx) {
  pthread_once(&room_once, measure_room);
  if (!room_limit || room_limit >= room_used + BLAS_BUFFER + GMLE_ROOM)
    return GMLE_OK;
  return gmle__error(
      ctx, GMLE_E_OUT_OF_MEMORY,
      "out of memory: the address-space limit (ulimit -v %llu KB) leaves "
      "%llu MB, and the linear algebra (OpenBLAS) needs %llu MB; raise the "
      "limit",
      (unsigned long long)(room_limit >> 10),
      (unsigned long long)((room_limit > room_used ? room_limit - room_used
                                                   : 0) >>
                           20),
      (unsigned long long)((BLAS_BUFFER + GMLE_ROOM) >> 20));
}

/* OpenMP threads that may each call BLAS at once (each maps its own
 * buffer at its first call): `want` without a limit; under one, the
 * calling thread (its buffer is mapped) plus as many as the room left can
 * give buffers to, and never fewer than were granted before (those
 * threads' buffers are mapped and counted in the space used). */
int gmle__blas_parallel_threads(int want) {
  static int granted = 1;
  static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
  pthread_once(&room_once, measure_room);
  if (!room_limit || want <= 1)
    return want < 1 ? 1 : want;
  const uint64_t used = address_space_used();
  uint64_t extra = 0;
  if (used && room_limit > used + GMLE_ROOM)
    extra = (room_limit - used - GMLE_ROOM) / BLAS_BUFFER;
  pthread_mutex_lock(&lock);
  int n = 1 + (int)(extra < (uint64_t)want ? extra : (uint64_t)want);
  n = n < granted ? granted : n;
  n = n > want ? want : n;
  granted = n;
  pthread_mutex_unlock(&lock);
  return n;
}
