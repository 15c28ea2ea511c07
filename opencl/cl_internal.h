/*
 * cl_internal.h -- internals shared by the files of the OpenCL backend.
 *
 * The backend targets the OpenCL 1.2 API (CL_TARGET_OPENCL_VERSION 120) and
 * OpenCL C 1.2 kernels (opencl/kernels/NAME.cl, embedded at build time by
 * cmake/embed_cl.cmake). Every OpenCL error becomes a gmle_status with a
 * message naming the call, the error name and its number.
 */
#ifndef GMLE_CL_INTERNAL_H
#define GMLE_CL_INTERNAL_H

#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 120
#endif
#if defined(__APPLE__)
#include <OpenCL/cl.h>
#else
#include <CL/cl.h>
#endif

#include "internal.h"

/* ------------------------------------------------------------------------ */
/* OpenCL entry points, loaded at run time (cl_loader.c)                    */
/* ------------------------------------------------------------------------ */
/* libgmle does not link against libOpenCL: the ICD loader is opened with
 * dlopen on first use, so that the library loads and runs on the CPU where
 * no OpenCL is installed (GMLE_E_NO_DEVICE for an explicit OpenCL context,
 * a fallback notice for AUTO). Every cl* call below goes through these
 * pointers. */
#define GMLE__CL_API(X)                                                        \
  X(clBuildProgram)                                                            \
  X(clCreateBuffer)                                                            \
  X(clCreateCommandQueue)                                                      \
  X(clCreateContext)                                                           \
  X(clCreateKernel)                                                            \
  X(clCreateProgramWithSource)                                                 \
  X(clEnqueueMapBuffer)                                                        \
  X(clEnqueueNDRangeKernel)                                                    \
  X(clEnqueueReadBuffer)                                                       \
  X(clEnqueueUnmapMemObject)                                                   \
  X(clEnqueueWriteBuffer)                                                      \
  X(clFinish)                                                                  \
  X(clFlush)                                                                   \
  X(clGetDeviceIDs)                                                            \
  X(clGetDeviceInfo)                                                           \
  X(clGetEventInfo)                                                            \
  X(clGetPlatformIDs)                                                          \
  X(clGetPlatformInfo)                                                         \
  X(clGetProgramBuildInfo)                                                     \
  X(clReleaseCommandQueue)                                                     \
  X(clReleaseContext)                                                          \
  X(clReleaseEvent)                                                            \
  X(clReleaseKernel)                                                           \
  X(clReleaseMemObject)                                                        \
  X(clReleaseProgram)                                                          \
  X(clSetKernelArg)                                                            \
  X(clWaitForEvents)
#define GMLE__CL_PTR_DECL(name) extern __typeof__(name) *gmle__cl_##name;
GMLE__CL_API(GMLE__CL_PTR_DECL)
#undef GMLE__CL_PTR_DECL

/* Load the ICD loader and every entry point, once per process; on failure
 * GMLE_E_NO_DEVICE naming the library and dlerror(). */
gmle_status gmle__cl_load(const gmle_context *ctx);

#ifndef GMLE__CL_NO_RENAME
#define clBuildProgram (*gmle__cl_clBuildProgram)
#define clCreateBuffer (*gmle__cl_clCreateBuffer)
#define clCreateCommandQueue (*gmle__cl_clCreateCommandQueue)
#define clCreateContext (*gmle__cl_clCreateContext)
#define clCreateKernel (*gmle__cl_clCreateKernel)
#define clCreateProgramWithSource (*gmle__cl_clCreateProgramWithSource)
#define clEnqueueMapBuffer (*gmle__cl_clEnqueueMapBuffer)
#define clEnqueueNDRangeKernel (*gmle__cl_clEnqueueNDRangeKernel)
#define clEnqueueReadBuffer (*gmle__cl_clEnqueueReadBuffer)
#define clEnqueueUnmapMemObject (*gmle__cl_clEnqueueUnmapMemObject)
#define clEnqueueWriteBuffer (*gmle__cl_clEnqueueWriteBuffer)
#define clFinish (*gmle__cl_clFinish)
#define clFlush (*gmle__cl_clFlush)
#define clGetDeviceIDs (*gmle__cl_clGetDeviceIDs)
#define clGetDeviceInfo (*gmle__cl_clGetDeviceInfo)
#define clGetEventInfo (*gmle__cl_clGetEventInfo)
#define clGetPlatformIDs (*gmle__cl_clGetPlatformIDs)
#define clGetPlatformInfo (*gmle__cl_clGetPlatformInfo)
#define clGetProgramBuildInfo (*gmle__cl_clGetProgramBuildInfo)
#define clReleaseCommandQueue (*gmle__cl_clReleaseCommandQueue)
#define clReleaseContext (*gmle__cl_clReleaseContext)
#define clReleaseEvent (*gmle__cl_clReleaseEvent)
#define clReleaseKernel (*gmle__cl_clReleaseKernel)
#define clReleaseMemObject (*gmle__cl_clReleaseMemObject)
#define clReleaseProgram (*gmle__cl_clReleaseProgram)
#define clSetKernelArg (*gmle__cl_clSetKernelArg)
#define clWaitForEvents (*gmle__cl_clWaitForEvents)
#endif

/* ------------------------------------------------------------------------ */
/* Embedded kernel sources (generated: gmle_cl_kernels.c)                   */
/* ------------------------------------------------------------------------ */

extern const unsigned char gmle__cl_src_accum[];
extern const size_t gmle__cl_src_accum_len;
extern const unsigned char gmle__cl_src_score[];
extern const size_t gmle__cl_src_score_len;

typedef enum gmle__cl_source {
  GMLE__CL_SRC_ACCUM = 0,
  GMLE__CL_SRC_SCORE = 1,
  GMLE__CL_SRC_TEST = 2 /* a caller-supplied source (test hook) */
} gmle__cl_source;

/* ------------------------------------------------------------------------ */
/* Backend state                                                            */
/* ------------------------------------------------------------------------ */

/* One built program and the kernels made from it, keyed by source and
 * build options (which carry the dtype, D, tile sizes and kind). */
typedef struct gmle__cl_prog {
  struct gmle__cl_prog *next;
  gmle__cl_source src;
  char *options;
  cl_program program;
  size_t n_kernels;
  char *kernel_names[4];
  cl_kernel kernels[4];
} gmle__cl_prog;

/* A host staging buffer: a CL_MEM_ALLOC_HOST_PTR buffer kept mapped (pinned
 * memory on discrete GPUs, so that non-blocking copies are true DMA). */
typedef struct gmle__cl_pinned {
  cl_mem buf;
  void *ptr;
  size_t bytes;
} gmle__cl_pinned;

/* A device buffer that grows on demand. */
typedef struct gmle__cl_devbuf {
  cl_mem buf;
  size_t bytes;
} gmle__cl_devbuf;

typedef struct gmle__cl_state {
  cl_platform_id platform;
  cl_device_id device;
  cl_context context;
  cl_command_queue q_copy; /* host -> device copies */
  cl_command_queue q_run;  /* kernels and device -> host copies */
  int dev_fp64;            /* the device has cl_khr_fp64 */
  int fp64;                /* float64 kernels in use (dev_fp64 unless a test
                              forces the float32 path) */
  int is_gpu, is_cpu;
  int unified; /* host-unified memory: stage by mapping the
                  device buffer itself (no second copy) */
  cl_ulong max_alloc, global_mem;
  size_t max_wg;
  /* Bytes a staging slot holds per sub-batch (rows in, partials or scores
   * out). Out-of-memory errors split sub-batches further, for one call. */
  size_t slot_budget;
  gmle__cl_prog *progs;
  gmle__cl_pinned up[2], down[2];
  gmle__cl_devbuf dev_in[2], dev_out[2], dev_aux[2];
  void *in_map[2]; /* unified memory: dev_in[i] mapped for packing */
  /* Lost: a device failure other than out-of-memory while a batch's work
   * was queued (staging, copies, kernels, waits). The queues' state is then
   * unknown: every later call on the context is GMLE_E_DEVICE_LOST. */
  int lost;
  char lost_msg[512];
} gmle__cl_state;

#define GMLE__CL_SLOT_BYTES ((size_t)64 << 20)     /* default slot budget */
#define GMLE__CL_MIN_SLOT_BYTES ((size_t)64 << 10) /* smallest before OOM */

static inline gmle__cl_state *gmle__cl_state_of(const gmle_context *ctx) {
  return (gmle__cl_state *)ctx->bstate;
}

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */
/* ------------------------------------------------------------------------ */

/* The symbolic name of an OpenCL error code ("CL_OUT_OF_RESOURCES"). */
const char *gmle__cl_error_name(cl_int err);
/* The gmle_status an OpenCL error maps to: CL_OUT_OF_RESOURCES and
 * CL_MEM_OBJECT_ALLOCATION_FAILURE -> GMLE_E_DEVICE_OOM, CL_OUT_OF_HOST_MEMORY
 * -> GMLE_E_OUT_OF_MEMORY, no platform / device -> GMLE_E_NO_DEVICE, the
 * rest -> GMLE_E_DEVICE. */
gmle_status gmle__cl_status(cl_int err);
/* Record "<call>: <NAME> (<number>)[: detail]" on ctx and return the
 * mapped status. */
gmle_status gmle__cl_fail(const gmle_context *ctx, cl_int err, const char *call,
                          const char *fmt, ...) GMLE__PRINTF(4, 5);
/* 1 for the errors after which a smaller batch may succeed. */
int gmle__cl_is_oom(cl_int err);
/* Start of every entry point that uses the device: GMLE_E_DEVICE_LOST
 * (naming the first failure) once the context is lost, else GMLE_OK. */
gmle_status gmle__cl_enter(gmle_context *ctx);
/* The end of a failed run of queued work: out-of-memory statuses pass
 * through (the caller split and retried already; the context stays
 * usable); any other failure marks the context lost and becomes
 * GMLE_E_DEVICE_LOST with the original message. */
gmle_status gmle__cl_lose(gmle_context *ctx, gmle_status st);

/* Call fn(args); on error record the message and return the status. */
#define GMLE_CL_TRY(ctx, fn, args)                                             \
  do {                                                                         \
    cl_int gmle__e_ = fn args;                                                 \
    if (gmle__e_ != CL_SUCCESS)                                                \
      return gmle__cl_fail((ctx), gmle__e_, #fn, NULL);                        \
  } while (0)

/* ------------------------------------------------------------------------ */
/* Programs, buffers (cl_backend.c)                                         */
/* ------------------------------------------------------------------------ */

/* The kernel `name` of the program built from source `src` with `options`,
 * building and caching the program on first use. A build failure returns
 * GMLE_E_DEVICE with the build log in the message. */
gmle_status gmle__cl_kernel(gmle_context *ctx, gmle__cl_source src,
                            const char *options, const char *name,
                            cl_kernel *out);
/* Make sure a pinned staging buffer holds at least `bytes`. */
gmle_status gmle__cl_pinned_reserve(gmle_context *ctx, gmle__cl_pinned *p,
                                    size_t bytes);
/* Make sure a device buffer holds at least `bytes`. */
gmle_status gmle__cl_devbuf_reserve(gmle_context *ctx, gmle__cl_devbuf *d,
                                    size_t bytes, cl_mem_flags flags);
/* Upload through slot sl's input buffer dev_in[sl]: stage_begin returns a
 * host pointer of `bytes` to fill (the pinned staging buffer, or on
 * host-unified devices the mapped device buffer itself); stage_end queues
 * the copy (or unmap) on the copy queue without blocking and returns the
 * event the kernel must wait for. The slot's previous kernel must be done. */
gmle_status gmle__cl_stage_begin(gmle_context *ctx, int sl, size_t bytes,
                                 void **ptr);
gmle_status gmle__cl_stage_end(gmle_context *ctx, int sl, size_t bytes,
                               cl_event *ev);
/* Release the staging and device buffers of the two slots (after an
 * out-of-memory failure, before retrying with smaller batches). */
void gmle__cl_release_slots(gmle__cl_state *s);
/* Wait for both queues, ignoring errors (cleanup after a failure). */
void gmle__cl_drain(gmle__cl_state *s);
/* Release an event if not NULL and clear it. */
void gmle__cl_event_release(cl_event *ev);
/* clWaitForEvents plus the command's own execution status; on failure
 * records "<what>: <NAME> (<n>)". */
gmle_status gmle__cl_wait(gmle_context *ctx, cl_event ev, const char *what,
                          cl_int *err_out);
/* Set kernel argument i, recording errors. */
gmle_status gmle__cl_arg(gmle_context *ctx, cl_kernel k, cl_uint i, size_t size,
                         const void *value);

/* ------------------------------------------------------------------------ */
/* Entries of the backend table                                             */
/* ------------------------------------------------------------------------ */

/* cl_accum.c */
gmle_status gmle__cl_accumulate(gmle_context *ctx, const gmle__batch *b,
                                gmle__partial *out);
/* cl_score.c */
gmle_status gmle__cl_prepare_model(gmle_context *ctx, const gmle_model *m,
                                   void **data);
void gmle__cl_free_model(void *state, void *data);
gmle_status gmle__cl_score(gmle_context *ctx, const gmle_model *m,
                           const void *model_data, const gmle__batch *b,
                           gmle_output what, gmle_dtype out_dtype, void *out);

/* ------------------------------------------------------------------------ */
/* Test hooks (tests/test_opencl.c, through gmle_internal)                  */
/* ------------------------------------------------------------------------ */

/* Build `source` with `options` on ctx's device through the backend's own
 * path (GMLE_E_DEVICE with the build log when it fails). The program is not
 * cached. ctx must be an OpenCL context (GMLE_E_INVALID_ARG otherwise). */
gmle_status gmle__opencl_test_build(gmle_context *ctx, const char *source,
                                    const char *options);
/* Make every device buffer allocation of more than `bytes` bytes fail with
 * CL_MEM_OBJECT_ALLOCATION_FAILURE (0 disables): the batch-splitting path. */
void gmle__opencl_test_limit_alloc(size_t bytes);
/* The file name dlopen is given for the ICD loader (default
 * "libOpenCL.so.1"); only before the first OpenCL use in the process. */
void gmle__opencl_test_library(const char *name);
/* 1: behave as a device without cl_khr_fp64 (float32 accumulation, host
 * scoring, float64 input refused); 0: the device's own capability. */
gmle_status gmle__opencl_test_force_fp32(gmle_context *ctx, int on);
/* Device-fault injection (cl_loader.c): the k-th counted OpenCL call from
 * now (k >= 1) fails with `err` (a cl_int: CL_OUT_OF_RESOURCES,
 * CL_MEM_OBJECT_ALLOCATION_FAILURE, CL_INVALID_KERNEL_ARGS, ...) instead of
 * reaching the driver, once; k = 0 disarms. Counted, process-wide: program
 * builds, kernel, buffer, context and queue creation, kernel arguments,
 * enqueues (kernels, reads, writes, maps, unmaps), flush, finish and waits
 * (a failing wait waits first, as a device reports a command's failure).
 * Queries and releases are not counted. */
void gmle__opencl_test_fail_call(long k, int err);
/* Calls counted since the last gmle__opencl_test_fail_call: a sweep over k
 * stops once k exceeds the count of an undisturbed call. */
long gmle__opencl_test_call_count(void);

#endif /* GMLE_CL_INTERNAL_H */
