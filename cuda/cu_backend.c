/* cu_backend.c -- the CUDA module's table, device discovery and opening,
 * error mapping, fault injection and workspace (libgmle_cuda.so).
 *
 * Errors: every CUDA and cuBLAS failure becomes a status with a message
 * naming the call, the error's name and number. Out-of-memory is cleared
 * (cudaGetLastError) and reported as GMLE_E_DEVICE_OOM with the bytes asked
 * for and free, so that callers can split and retry; sticky errors (illegal
 * address, launch failure, ...) mark the context lost: GMLE_E_DEVICE_LOST on
 * that call and every later one. Host statistics are never touched here
 * (the core commits only after success). Nothing prints, nothing aborts. */
#include "cu_module.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

const gmle__cuda_host *gmle__cu_host;

/* ------------------------------------------------------------------------ */
/* Messages                                                                 */
/* ------------------------------------------------------------------------ */

gmle_status gmle__cu_error_at(gmle__cuda_hctx *h, gmle_status s,
                              const gmle_error_location *loc, const char *fmt,
                              ...) {
  va_list ap;
  va_start(ap, fmt);
  if (gmle__cu_host && gmle__cu_host->verror)
    s = gmle__cu_host->verror(h, s, loc, fmt, ap);
  va_end(ap);
  return s;
}

void gmle__cu_log(gmle__cuda_hctx *h, gmle_log_level lvl, const char *fmt,
                  ...) {
  if (!gmle__cu_host || !gmle__cu_host->log)
    return;
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  gmle__cu_host->log(h, lvl, msg);
}

/* The classification (cu_classify.c) names the codes as integers: they
 * must be the runtime's. */
_Static_assert(
    cudaErrorMemoryAllocation == 2 && cudaErrorDevicesUnavailable == 46 &&
        cudaErrorECCUncorrectable == 214 &&
        cudaErrorNvlinkUncorrectable == 220 && cudaErrorIllegalAddress == 700 &&
        cudaErrorLaunchTimeout == 702 && cudaErrorContextIsDestroyed == 709 &&
        cudaErrorAssert == 710 && cudaErrorHardwareStackError == 714 &&
        cudaErrorIllegalInstruction == 715 &&
        cudaErrorMisalignedAddress == 716 &&
        cudaErrorInvalidAddressSpace == 717 && cudaErrorInvalidPc == 718 &&
        cudaErrorLaunchFailure == 719 && cudaErrorExternalDevice == 911 &&
        cudaErrorUnknown == 999,
    "CUDA error codes differ from cu_classify.c");

_Static_assert(GMLE_CUDA_SITE_ALLOC == GMLE__CU_SITE_ALLOC &&
                   GMLE_CUDA_SITE_COPY == GMLE__CU_SITE_COPY &&
                   GMLE_CUDA_SITE_KERNEL == GMLE__CU_SITE_KERNEL &&
                   GMLE_CUDA_SITE_BLAS == GMLE__CU_SITE_BLAS &&
                   GMLE_CUDA_SITE_SYNC == GMLE__CU_SITE_SYNC &&
                   GMLE_CUDA_SITE_ALL == GMLE__CU_SITE_ALL,
               "gmle_cuda_site differs from cu_classify.h");

/* Errors after which the CUDA context cannot be used again. */
static int is_sticky(cudaError_t e) {
  return gmle__cu_error_kind((int)e) == GMLE__CU_STICKY;
}

size_t gmle__cu_free_mem(cu_state *S) {
  (void)S;
  size_t fr = 0, tot = 0;
  if (cudaMemGetInfo(&fr, &tot) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return fr;
}

static gmle_status lose(cu_state *S, const char *call, const char *err) {
  S->lost = 1;
  snprintf(S->lost_msg, sizeof S->lost_msg, "%.300s: %.300s", call, err);
  return gmle__cu_error(S->h, GMLE_E_DEVICE_LOST,
                        "CUDA device %d: %s: %s; the device context is lost "
                        "and this gmle context can no longer be used "
                        "(statistics accumulated so far are intact on the "
                        "host: save, merge or continue them on a new context)",
                        S->device, call, err);
}

gmle_status gmle__cu_fail(cu_state *S, cudaError_t e, const char *what, ...) {
  char call[320], err[320];
  va_list ap;
  va_start(ap, what);
  vsnprintf(call, sizeof call, what, ap);
  va_end(ap);
  snprintf(err, sizeof err, "%s (%s, %d)", cudaGetErrorString(e),
           cudaGetErrorName(e), (int)e);
  if (e == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError(); /* not sticky: clear it */
    size_t fr = 0, tot = 0;
    if (cudaMemGetInfo(&fr, &tot) != cudaSuccess)
      (void)cudaGetLastError();
    return gmle__cu_error(S->h, GMLE_E_DEVICE_OOM,
                          "CUDA device %d: %s: %s; %zu bytes free of %zu",
                          S->device, call, err, fr, tot);
  }
  int sticky = is_sticky(e);
  if (!sticky) {
    (void)cudaGetLastError();
    const cudaError_t again = cudaPeekAtLastError();
    sticky = again != cudaSuccess && is_sticky(again);
  }
  if (sticky)
    return lose(S, call, err);
  return gmle__cu_error(S->h, GMLE_E_DEVICE, "CUDA device %d: %s: %s",
                        S->device, call, err);
}

gmle_status gmle__cu_blas_fail(cu_state *S, cublasStatus_t e, const char *what,
                               ...) {
  char call[320], err[320];
  va_list ap;
  va_start(ap, what);
  vsnprintf(call, sizeof call, what, ap);
  va_end(ap);
  snprintf(err, sizeof err, "%s (%s, %d)", cublasGetStatusString(e),
           cublasGetStatusName(e), (int)e);
  if (e == CUBLAS_STATUS_ALLOC_FAILED)
    return gmle__cu_error(S->h, GMLE_E_DEVICE_OOM,
                          "CUDA device %d: %s: %s; %zu bytes free", S->device,
                          call, err, gmle__cu_free_mem(S));
  /* An execution failure may be a kernel fault underneath: the last
   * error, or what the stream reports once its work has finished. */
  cudaError_t under = cudaPeekAtLastError();
  if (under == cudaSuccess && (e == CUBLAS_STATUS_EXECUTION_FAILED ||
                               e == CUBLAS_STATUS_INTERNAL_ERROR))
    under = cudaStreamSynchronize(S->compute);
  if (under != cudaSuccess && is_sticky(under)) {
    char both[640];
    snprintf(both, sizeof both, "%s; underlying CUDA error %s (%d)", err,
             cudaGetErrorName(under), (int)under);
    return lose(S, call, both);
  }
  (void)cudaGetLastError();
  return gmle__cu_error(S->h, GMLE_E_DEVICE, "CUDA device %d: %s: %s",
                        S->device, call, err);
}

gmle_status gmle__cu_enter(cu_state *S) {
  if (S->lost)
    return gmle__cu_error(S->h, GMLE_E_DEVICE_LOST,
                          "CUDA device %d was lost earlier (%s); create a new "
                          "context (statistics accumulated so far are intact "
                          "on the host)",
                          S->device, S->lost_msg);
  const cudaError_t e = cudaSetDevice(S->device);
  if (e != cudaSuccess)
    return gmle__cu_fail(S, e, "cudaSetDevice(%d)", S->device);
  return GMLE_OK;
}

/* ------------------------------------------------------------------------ */
/* Fault injection                                                          */
/* ------------------------------------------------------------------------ */

cudaError_t gmle__cu_inject(cu_state *S, unsigned site) {
  const unsigned want =
      S->fault == GMLE_CUDA_FAULT_OOM ? GMLE__CU_SITE_ALLOC : S->fault_sites;
  if (!(site & want))
    return cudaSuccess;
  const long n = ++S->calls;
  if (S->fault == GMLE_CUDA_FAULT_NONE || S->fault_at <= 0 || n != S->fault_at)
    return cudaSuccess;
  const gmle_cuda_fault kind = S->fault;
  S->fault_at = 0; /* one shot */
  switch (kind) {
  case GMLE_CUDA_FAULT_OOM:
    return cudaErrorMemoryAllocation;
  case GMLE_CUDA_FAULT_STICKY:
    return cudaErrorIllegalAddress;
  default:
    return cudaErrorInvalidValue;
  }
}

static gmle_status cu_inject_fault(void *state, gmle_cuda_fault kind,
                                   unsigned sites, long k) {
  cu_state *S = state;
  gmle__cuda_hctx *ctx = S->h;
  if (kind != GMLE_CUDA_FAULT_NONE && kind != GMLE_CUDA_FAULT_ERROR &&
      kind != GMLE_CUDA_FAULT_OOM && kind != GMLE_CUDA_FAULT_STICKY)
    return gmle__cu_error(ctx, GMLE_E_INVALID_ARG,
                          "cuda_inject_fault: unknown fault kind %d",
                          (int)kind);
  if (sites & ~GMLE__CU_SITE_ALL)
    return gmle__cu_error(ctx, GMLE_E_INVALID_ARG,
                          "cuda_inject_fault: unknown call sites 0x%x", sites);
  S->fault = k > 0 ? kind : GMLE_CUDA_FAULT_NONE;
  S->fault_at = k > 0 ? k : 0;
  S->fault_sites = sites ? sites : GMLE__CU_SITE_ALL;
  S->calls = 0;
  return GMLE_OK;
}

static long cu_call_count(const void *state) {
  const cu_state *S = state;
  return S->calls;
}

static int cu_device_index(const void *state) {
  const cu_state *S = state;
  return S ? S->device : -1;
}

/* GMLE_CUDA_FAIL_AT=k[:error|oom|sticky] */
static void fault_from_env(cu_state *S) {
  const char *v = getenv("GMLE_CUDA_FAIL_AT");
  if (!v || !*v)
    return;
  char *end = NULL;
  const long k = strtol(v, &end, 10);
  gmle_cuda_fault kind = GMLE_CUDA_FAULT_ERROR;
  if (end && *end == ':') {
    if (strcmp(end + 1, "oom") == 0)
      kind = GMLE_CUDA_FAULT_OOM;
    else if (strcmp(end + 1, "sticky") == 0)
      kind = GMLE_CUDA_FAULT_STICKY;
  }
  if (k > 0) {
    S->fault = kind;
    S->fault_at = k;
  }
}

/* Counting starts with every site selected (the environment variable and
 * gmle__cuda_inject_fault without sites). */
static void fault_init(cu_state *S) {
  S->fault_sites = GMLE__CU_SITE_ALL;
  fault_from_env(S);
}

/* ------------------------------------------------------------------------ */
/* Workspace                                                                */
/* ------------------------------------------------------------------------ */

static const char *const dev_buf_name[] = {"staging slot 0",
                                           "staging slot 1",
                                           "staging slot 2",
                                           "routing keys",
                                           "sorted labels",
                                           "routed order",
                                           "row indices",
                                           "sort scratch",
                                           "class bounds",
                                           "chunk table",
                                           "moment partials",
                                           "Gram partials",
                                           "statistics accumulators",
                                           "shifts",
                                           "validation flags",
                                           "scoring / EM rows",
                                           "scoring / EM centred rows",
                                           "log-likelihoods / responsibilities",
                                           "scoring GEMM tile / EM scaled rows",
                                           "scoring output",
                                           "cuBLAS workspace"};

_Static_assert(sizeof dev_buf_name / sizeof dev_buf_name[0] == DB_N,
               "a name for every device buffer");

gmle_status gmle__cu_dev(cu_state *S, int id, size_t bytes, void **p) {
  cu_buf *b = &S->dev[id];
  if (b->p && b->bytes >= bytes) {
    *p = b->p;
    return GMLE_OK;
  }
  if (b->p) {
    /* cudaFree synchronises the device: a fault of earlier work shows
     * here. */
    const cudaError_t fe = cudaFree(b->p);
    b->p = NULL;
    b->bytes = 0;
    if (fe != cudaSuccess)
      return gmle__cu_fail(S, fe, "cudaFree(the %s, to grow it)",
                           dev_buf_name[id]);
  }
  /* Whole 2 MiB pages above 2 MiB, 256 bytes below (the allocator's own
   * granularity), so that near sizes reuse the buffer. */
  const size_t gran = bytes > ((size_t)2 << 20) ? (size_t)2 << 20 : 256;
  const size_t want = bytes == 0 ? gran : (bytes + gran - 1) / gran * gran;
  cudaError_t e = gmle__cu_inject(S, GMLE__CU_SITE_ALLOC);
  if (e == cudaSuccess)
    e = cudaMalloc(&b->p, want);
  if (e != cudaSuccess) {
    b->p = NULL;
    return gmle__cu_fail(S, e, "cudaMalloc(%zu bytes for the %s)", want,
                         dev_buf_name[id]);
  }
  b->bytes = want;
  *p = b->p;
  return GMLE_OK;
}

gmle_status gmle__cu_pinned(cu_state *S, int id, size_t bytes, void **p) {
  cu_buf *b = &S->host[id];
  if (b->p && b->bytes >= bytes) {
    *p = b->p;
    return GMLE_OK;
  }
  if (b->p) {
    const cudaError_t fe = cudaFreeHost(b->p);
    b->p = NULL;
    b->bytes = 0;
    if (fe != cudaSuccess)
      return gmle__cu_fail(S, fe, "cudaFreeHost(pinned staging, to grow it)");
  }
  const size_t gran = (size_t)64 << 10;
  const size_t want = bytes == 0 ? gran : (bytes + gran - 1) / gran * gran;
  cudaError_t e = gmle__cu_inject(S, GMLE__CU_SITE_ALLOC);
  if (e == cudaSuccess)
    e = cudaHostAlloc(&b->p, want, cudaHostAllocDefault);
  if (e != cudaSuccess) {
    b->p = NULL;
    return gmle__cu_fail(S, e, "cudaHostAlloc(%zu bytes of pinned staging)",
                         want);
  }
  b->bytes = want;
  *p = b->p;
  return GMLE_OK;
}

void gmle__cu_quiesce(cu_state *S) {
  if (cudaStreamSynchronize(S->copy) != cudaSuccess)
    (void)cudaGetLastError();
  if (cudaStreamSynchronize(S->compute) != cudaSuccess)
    (void)cudaGetLastError();
}

gmle_status gmle__cu_settle(cu_state *S, gmle_status st) {
  if (S->lost)
    return st;
  cudaError_t e = cudaStreamSynchronize(S->copy);
  const char *what = "cudaStreamSynchronize(copy), after a failure";
  if (e == cudaSuccess) {
    e = cudaStreamSynchronize(S->compute);
    what = "cudaStreamSynchronize(compute), after a failure";
  }
  if (e != cudaSuccess && is_sticky(e)) {
    char err[320];
    snprintf(err, sizeof err, "%s (%s, %d)", cudaGetErrorString(e),
             cudaGetErrorName(e), (int)e);
    return lose(S, what, err);
  }
  if (e != cudaSuccess)
    (void)cudaGetLastError();
  gmle__cu_quiesce(S);
  return st;
}

void gmle__cu_release_all(cu_state *S) {
  gmle__cu_quiesce(S);
  for (int i = 0; i < DB_N; i++) {
    if (S->dev[i].p && cudaFree(S->dev[i].p) != cudaSuccess)
      (void)cudaGetLastError();
    S->dev[i].p = NULL;
    S->dev[i].bytes = 0;
  }
  for (int i = 0; i < HB_N; i++) {
    if (S->host[i].p && cudaFreeHost(S->host[i].p) != cudaSuccess)
      (void)cudaGetLastError();
    S->host[i].p = NULL;
    S->host[i].bytes = 0;
  }
}

/* ------------------------------------------------------------------------ */
/* Host-side copies                                                         */
/* ------------------------------------------------------------------------ */

typedef struct pack_job {
  char *dst;
  const char *src;
  size_t lo, hi, row_bytes, src_stride;
} pack_job;

static void pack_range(const pack_job *j) {
  if (j->src_stride == j->row_bytes) {
    memcpy(j->dst + j->lo * j->row_bytes, j->src + j->lo * j->row_bytes,
           (j->hi - j->lo) * j->row_bytes);
    return;
  }
  for (size_t r = j->lo; r < j->hi; r++)
    memcpy(j->dst + r * j->row_bytes, j->src + r * j->src_stride, j->row_bytes);
}

static void *pack_thread(void *arg) {
  pack_range(arg);
  return NULL;
}

#define PACK_MAX_THREADS 16
#define PACK_MIN_BYTES ((size_t)8 << 20)

void gmle__cu_pack_rows(cu_state *S, void *dst, const void *src, size_t n,
                        size_t row_bytes, size_t src_stride_bytes) {
  size_t k = (size_t)(S->n_threads > 0 ? S->n_threads : 1);
  if (k > PACK_MAX_THREADS)
    k = PACK_MAX_THREADS;
  if (n * row_bytes < PACK_MIN_BYTES || k > n)
    k = 1;
  pack_job jobs[PACK_MAX_THREADS];
  pthread_t th[PACK_MAX_THREADS];
  int started[PACK_MAX_THREADS];
  for (size_t i = 0; i < k; i++) {
    jobs[i] = (pack_job){
        dst, src, n * i / k, n * (i + 1) / k, row_bytes, src_stride_bytes};
    started[i] =
        i > 0 && pthread_create(&th[i], NULL, pack_thread, &jobs[i]) == 0;
  }
  pack_range(&jobs[0]);
  for (size_t i = 1; i < k; i++) {
    if (started[i])
      pthread_join(th[i], NULL);
    else
      pack_range(&jobs[i]);
  }
}

int gmle__cu_is_pinned(const void *p) {
  struct cudaPointerAttributes a;
  if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return a.type == cudaMemoryTypeHost;
}

int gmle__cu_check_device_ptr(const void *p, int dev, char *buf, size_t len) {
  struct cudaPointerAttributes a;
  const cudaError_t e = cudaPointerGetAttributes(&a, p);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    snprintf(buf, len, "cudaPointerGetAttributes: %s (%d)", cudaGetErrorName(e),
             (int)e);
    return -1;
  }
  switch (a.type) {
  case cudaMemoryTypeManaged:
    return 0;
  case cudaMemoryTypeDevice:
    if (a.device == dev)
      return 0;
    snprintf(buf, len, "it is memory of CUDA device %d, not %d", a.device, dev);
    return -1;
  case cudaMemoryTypeHost:
    snprintf(buf, len, "it is pinned host memory (use gmle_stats_add)");
    return -1;
  default:
    snprintf(buf, len, "it is not CUDA memory");
    return -1;
  }
}

/* ------------------------------------------------------------------------ */
/* Opening a device                                                         */
/* ------------------------------------------------------------------------ */

static const char *count_hint(cudaError_t e) {
  switch ((int)e) {
  case 35: /* cudaErrorInsufficientDriver */
    return "; the NVIDIA driver is missing or older than this CUDA runtime";
  case 100: /* cudaErrorNoDevice */
    return "; no NVIDIA GPU is visible (check CUDA_VISIBLE_DEVICES)";
  case 803: /* cudaErrorSystemDriverMismatch */
    return "; the driver's kernel module and user library differ";
  default:
    return "";
  }
}

static void version_text(char *buf, size_t len) {
  int drv = 0, rt = 0;
  if (cudaDriverGetVersion(&drv) != cudaSuccess)
    (void)cudaGetLastError();
  if (cudaRuntimeGetVersion(&rt) != cudaSuccess)
    (void)cudaGetLastError();
  snprintf(buf, len, "driver %d.%d, runtime %d.%d", drv / 1000, drv % 1000 / 10,
           rt / 1000, rt % 1000 / 10);
}

static void cu_shutdown(void *state) {
  cu_state *S = state;
  if (!S)
    return;
  if (cudaSetDevice(S->device) != cudaSuccess)
    (void)cudaGetLastError();
  if (S->compute)
    gmle__cu_release_all(S);
  if (S->blas)
    (void)cublasDestroy(S->blas);
  for (int i = 0; i < CU_NSLOT; i++) {
    if (S->copied[i])
      (void)cudaEventDestroy(S->copied[i]);
    if (S->consumed[i])
      (void)cudaEventDestroy(S->consumed[i]);
  }
  if (S->meta_ready)
    (void)cudaEventDestroy(S->meta_ready);
  if (S->meta_used)
    (void)cudaEventDestroy(S->meta_used);
  if (S->copy)
    (void)cudaStreamDestroy(S->copy);
  if (S->compute)
    (void)cudaStreamDestroy(S->compute);
  (void)cudaGetLastError();
  free(S);
}

/* Every failure to open a device is GMLE_E_NO_DEVICE, so that AUTO falls
 * back to the next backend. */
static gmle_status no_device(gmle__cuda_hctx *ctx, int dev, const char *call,
                             cudaError_t e) {
  (void)cudaGetLastError();
  return gmle__cu_error(ctx, GMLE_E_NO_DEVICE,
                        "CUDA device %d: %s failed: %s (%s, %d)", dev, call,
                        cudaGetErrorString(e), cudaGetErrorName(e), (int)e);
}

static gmle_status cu_init(gmle__cuda_hctx *ctx, int device, char *name,
                           size_t name_len, int *n_threads, void **state) {
  *state = NULL;
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    char ver[96];
    version_text(ver, sizeof ver);
    return gmle__cu_error(ctx, GMLE_E_NO_DEVICE,
                          "CUDA: cudaGetDeviceCount failed: %s (%s, %d)%s (%s)",
                          cudaGetErrorString(e), cudaGetErrorName(e), (int)e,
                          count_hint(e), ver);
  }
  if (n <= 0)
    return gmle__cu_error(ctx, GMLE_E_NO_DEVICE,
                          "CUDA: no CUDA device (cudaGetDeviceCount found 0)");
  const int dev = device < 0 ? 0 : device;
  if (dev >= n)
    return gmle__cu_error(ctx, GMLE_E_NO_DEVICE,
                          "CUDA: device %d was asked for; %d device%s found "
                          "(0..%d)",
                          dev, n, n == 1 ? "" : "s", n - 1);
  struct cudaDeviceProp prop;
  e = cudaGetDeviceProperties(&prop, dev);
  if (e != cudaSuccess)
    return no_device(ctx, dev, "cudaGetDeviceProperties", e);
  if (prop.major < 8)
    return gmle__cu_error(ctx, GMLE_E_NO_DEVICE,
                          "CUDA device %d (%s) has compute capability %d.%d; "
                          "this build of gmle runs on 8.0 and newer (it is "
                          "compiled for sm_80, sm_90 and compute_90)",
                          dev, prop.name, prop.major, prop.minor);
  e = cudaSetDevice(dev);
  if (e != cudaSuccess)
    return no_device(ctx, dev, "cudaSetDevice", e);
  cu_state *S = calloc(1, sizeof *S);
  if (!S)
    return gmle__cu_error(ctx, GMLE_E_OUT_OF_MEMORY, "CUDA: out of memory");
  S->h = ctx;
  S->device = dev;
  S->sms = prop.multiProcessorCount > 0 ? prop.multiProcessorCount : 1;
  S->cc_major = prop.major;
  S->cc_minor = prop.minor;
  S->total_mem = prop.totalGlobalMem;
  const long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  S->n_threads = ncpu < 1 ? 1 : ncpu > 8 ? 8 : (int)ncpu;
  const char *what = "cudaStreamCreate";
  e = cudaStreamCreate(&S->copy);
  if (e == cudaSuccess)
    e = cudaStreamCreate(&S->compute);
  for (int i = 0; e == cudaSuccess && i < CU_NSLOT; i++) {
    what = "cudaEventCreateWithFlags";
    e = cudaEventCreateWithFlags(&S->copied[i], cudaEventDisableTiming);
    if (e == cudaSuccess)
      e = cudaEventCreateWithFlags(&S->consumed[i], cudaEventDisableTiming);
  }
  if (e == cudaSuccess)
    e = cudaEventCreateWithFlags(&S->meta_ready, cudaEventDisableTiming);
  if (e == cudaSuccess)
    e = cudaEventCreateWithFlags(&S->meta_used, cudaEventDisableTiming);
  if (e == cudaSuccess) {
    what = "launching a probe kernel";
    e = gmle__cu_probe(S->compute);
    if (e == cudaSuccess)
      e = cudaStreamSynchronize(S->compute);
  }
  if (e != cudaSuccess) {
    gmle_status st = no_device(ctx, dev, what, e);
    cu_shutdown(S);
    return st;
  }
  cublasStatus_t be = cublasCreate(&S->blas);
  if (be == CUBLAS_STATUS_SUCCESS)
    be = cublasSetStream(S->blas, S->compute);
  /* float64 throughout; no TF32 (it only ever applies to float32), no
   * atomics, so that results are the same from run to run. */
  if (be == CUBLAS_STATUS_SUCCESS)
    be = cublasSetMathMode(S->blas, CUBLAS_DEFAULT_MATH);
  if (be == CUBLAS_STATUS_SUCCESS)
    be = cublasSetAtomicsMode(S->blas, CUBLAS_ATOMICS_NOT_ALLOWED);
  if (be == CUBLAS_STATUS_SUCCESS)
    be = cublasSetPointerMode(S->blas, CUBLAS_POINTER_MODE_HOST);
  if (be != CUBLAS_STATUS_SUCCESS) {
    gmle_status st = gmle__cu_error(
        ctx, GMLE_E_NO_DEVICE,
        "CUDA device %d: cuBLAS could not start: %s (%s, %d)", dev,
        cublasGetStatusString(be), cublasGetStatusName(be), (int)be);
    cu_shutdown(S);
    return st;
  }
  fault_init(S);
  char ver[96];
  version_text(ver, sizeof ver);
  snprintf(name, name_len,
           "%.100s (CUDA device %d, compute capability %d.%d, %d SMs, %.1f "
           "GiB; %.60s)",
           prop.name, dev, prop.major, prop.minor, prop.multiProcessorCount,
           (double)prop.totalGlobalMem / (double)((size_t)1 << 30), ver);
  *n_threads = S->n_threads;
  *state = S;
  return GMLE_OK;
}

static gmle_status cu_synchronize(void *state) {
  cu_state *S = state;
  gmle_status st = gmle__cu_enter(S);
  if (st != GMLE_OK)
    return st;
  CU_TRY(S, cudaStreamSynchronize(S->copy), "cudaStreamSynchronize(copy)");
  CU_TRY(S, cudaStreamSynchronize(S->compute),
         "cudaStreamSynchronize(compute)");
done:
  return st;
}

static gmle_status cu_devices(gmle_cuda_device_info *out, size_t max,
                              size_t *n_found, char *why, size_t why_len) {
  if (n_found)
    *n_found = 0;
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    if (why && why_len) {
      char ver[96];
      version_text(ver, sizeof ver);
      snprintf(why, why_len, "cudaGetDeviceCount failed: %s (%s, %d)%s (%s)",
               cudaGetErrorString(e), cudaGetErrorName(e), (int)e,
               count_hint(e), ver);
    }
    return GMLE_E_NO_DEVICE;
  }
  if (n_found)
    *n_found = (size_t)(n > 0 ? n : 0);
  if (n <= 0) {
    if (why && why_len)
      snprintf(why, why_len, "no CUDA device (cudaGetDeviceCount found 0)");
    return GMLE_E_NO_DEVICE;
  }
  for (int i = 0; i < n && (size_t)i < max && out; i++) {
    gmle_cuda_device_info *d = &out[i];
    memset(d, 0, sizeof *d);
    d->index = i;
    struct cudaDeviceProp p;
    e = cudaGetDeviceProperties(&p, i);
    if (e != cudaSuccess) {
      (void)cudaGetLastError();
      snprintf(d->name, sizeof d->name, "(cudaGetDeviceProperties: %s, %d)",
               cudaGetErrorName(e), (int)e);
      continue;
    }
    snprintf(d->name, sizeof d->name, "%s", p.name);
    d->total_memory = p.totalGlobalMem;
    d->cc_major = p.major;
    d->cc_minor = p.minor;
    d->multiprocessors = p.multiProcessorCount;
    d->pci_domain = p.pciDomainID;
    d->pci_bus = p.pciBusID;
    d->pci_device = p.pciDeviceID;
    d->usable = p.major >= 8;
  }
  if (why && why_len)
    why[0] = '\0';
  return GMLE_OK;
}

/* gmle_device_list: the CUDA devices this build runs on (compute
 * capability 8.0 and newer), by ordinal. */
static gmle_status cu_list_devices(gmle__cuda_hctx *ctx, gmle_device_info *out,
                                   size_t cap, size_t *n_found) {
  *n_found = 0;
  int n = 0;
  char ver[96];
  version_text(ver, sizeof ver);
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    return gmle__cu_error(ctx, GMLE_E_NO_DEVICE,
                          "CUDA: cudaGetDeviceCount failed: %s (%s, %d)%s (%s)",
                          cudaGetErrorString(e), cudaGetErrorName(e), (int)e,
                          count_hint(e), ver);
  }
  size_t k = 0;
  int old = 0;
  for (int i = 0; i < n; i++) {
    struct cudaDeviceProp p;
    e = cudaGetDeviceProperties(&p, i);
    if (e != cudaSuccess) {
      (void)cudaGetLastError();
      continue;
    }
    if (p.major < 8) {
      old++;
      continue;
    }
    if (k < cap) {
      gmle_device_info *d = &out[k];
      memset(d, 0, sizeof *d);
      d->backend = GMLE_BACKEND_CUDA;
      d->index = i;
      d->is_default = i == 0;
      d->is_gpu = 1;
      d->fp64 = 1;
      d->compute_units = (unsigned)p.multiProcessorCount;
      d->global_mem = (uint64_t)p.totalGlobalMem;
      snprintf(d->name, sizeof d->name, "%.127s", p.name);
      snprintf(d->platform, sizeof d->platform,
               "CUDA %.60s; compute capability %d.%d", ver, p.major, p.minor);
    }
    k++;
  }
  *n_found = k;
  if (k == 0)
    return gmle__cu_error(ctx, GMLE_E_NO_DEVICE,
                          n == 0 ? "CUDA: no CUDA device (cudaGetDeviceCount "
                                   "found 0)"
                                 : "CUDA: %d device(s) older than compute "
                                   "capability 8.0, which this build needs",
                          old);
  return GMLE_OK;
}

static const gmle__cuda_module cu_module = {
    .abi_major = GMLE__CUDA_ABI_MAJOR,
    .abi_minor = GMLE__CUDA_ABI_MINOR,
    .size = sizeof(gmle__cuda_module),
    .gmle_version = GMLE_VERSION_NUMBER,
    .init = cu_init,
    .shutdown = cu_shutdown,
    .accumulate = gmle__cu_accumulate,
    .prepare_model = gmle__cu_prepare_model,
    .free_model = gmle__cu_free_model,
    .score = gmle__cu_score,
    .synchronize = cu_synchronize,
    .list_devices = cu_list_devices,
    .add_device = gmle__cu_add_device,
    .score_device = gmle__cu_score_device,
    .devices = cu_devices,
    .inject_fault = cu_inject_fault,
    .call_count = cu_call_count,
    .device_index = cu_device_index,
    .accumulate_resp = gmle__cu_accumulate_resp,
};

/* The host table is kept only when it is of this major and holds every
 * callback this module calls; the table is returned regardless, so that
 * the loader can refuse a mismatch with both versions named. */
__attribute__((visibility("default"))) const gmle__cuda_module *
gmle__cuda_module_entry_v1(const gmle__cuda_host *host) {
  if (host && host->abi_major == GMLE__CUDA_ABI_MAJOR &&
      host->size >= sizeof(gmle__cuda_host))
    gmle__cu_host = host;
  return &cu_module;
}
