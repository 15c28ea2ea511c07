/* cl_loader.c -- the OpenCL ICD loader, opened at run time.
 *
 * libgmle is not linked against libOpenCL: a machine without it must still
 * load the library and run on the CPU (BAD_INPUTS case 29). The loader is
 * opened once per process with dlopen and every entry point the backend
 * uses is looked up; a missing library or symbol is GMLE_E_NO_DEVICE
 * naming it. The handle is never closed (drivers do not unload cleanly). */
#define GMLE__CL_NO_RENAME
#include "cl_internal.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#define GMLE__CL_PTR_DEF(name) __typeof__(name) *gmle__cl_##name;
GMLE__CL_API(GMLE__CL_PTR_DEF)
#undef GMLE__CL_PTR_DEF

/* ------------------------------------------------------------------------ */
/* Fault injection (tests): the k-th counted call fails                     */
/* ------------------------------------------------------------------------ */
/* The calls that can fail while work is set up or running go through a
 * wrapper that counts them and, when armed, makes the k-th one fail with
 * the chosen error instead of calling the driver (one shot). Queries
 * (clGet*Info, discovery) and releases are not counted. The dispatch
 * pointers point at the wrappers; the driver's own entry points are kept in
 * real_*. */
#define GMLE__CL_FAULTY(X)                                                     \
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
  X(clSetKernelArg)                                                            \
  X(clWaitForEvents)
#define GMLE__CL_REAL_DEF(name) static __typeof__(name) *real_##name;
GMLE__CL_FAULTY(GMLE__CL_REAL_DEF)
#undef GMLE__CL_REAL_DEF

static atomic_long fault_at; /* 0: off */
static atomic_long fault_calls;
static atomic_int fault_err;

void gmle__opencl_test_fail_call(long k, int err) {
  atomic_store(&fault_calls, 0);
  atomic_store(&fault_err, err);
  atomic_store(&fault_at, k > 0 ? k : 0);
}

long gmle__opencl_test_call_count(void) { return atomic_load(&fault_calls); }

/* CL_SUCCESS, or the error the current call is to fail with. */
static cl_int inject(void) {
  const long n = atomic_fetch_add(&fault_calls, 1) + 1;
  long k = atomic_load(&fault_at);
  if (k <= 0 || n != k ||
      !atomic_compare_exchange_strong(&fault_at, &k, 0)) /* one shot */
    return CL_SUCCESS;
  return (cl_int)atomic_load(&fault_err);
}

/* Calls returning an error code: fail before the driver sees them (no
 * event is made). */
#define INJECT_RET(ev)                                                         \
  do {                                                                         \
    const cl_int e_ = inject();                                                \
    if (e_ != CL_SUCCESS) {                                                    \
      if (ev)                                                                  \
        *(ev) = NULL;                                                          \
      return e_;                                                               \
    }                                                                          \
  } while (0)
/* Calls returning an object: NULL with the error in *errcode_ret. */
#define INJECT_OBJ(errcode_ret)                                                \
  do {                                                                         \
    const cl_int e_ = inject();                                                \
    if (e_ != CL_SUCCESS) {                                                    \
      if (errcode_ret)                                                         \
        *(errcode_ret) = e_;                                                   \
      return NULL;                                                             \
    }                                                                          \
  } while (0)

static cl_int CL_API_CALL
w_clBuildProgram(cl_program p, cl_uint nd, const cl_device_id *d, const char *o,
                 void(CL_CALLBACK *cb)(cl_program, void *), void *u) {
  INJECT_RET((cl_event *)NULL);
  return real_clBuildProgram(p, nd, d, o, cb, u);
}

static cl_mem CL_API_CALL w_clCreateBuffer(cl_context c, cl_mem_flags f,
                                           size_t n, void *h, cl_int *e) {
  INJECT_OBJ(e);
  return real_clCreateBuffer(c, f, n, h, e);
}

static cl_command_queue CL_API_CALL w_clCreateCommandQueue(
    cl_context c, cl_device_id d, cl_command_queue_properties p, cl_int *e) {
  INJECT_OBJ(e);
  return real_clCreateCommandQueue(c, d, p, e);
}

static cl_context CL_API_CALL w_clCreateContext(
    const cl_context_properties *p, cl_uint nd, const cl_device_id *d,
    void(CL_CALLBACK *cb)(const char *, const void *, size_t, void *), void *u,
    cl_int *e) {
  INJECT_OBJ(e);
  return real_clCreateContext(p, nd, d, cb, u, e);
}

static cl_kernel CL_API_CALL w_clCreateKernel(cl_program p, const char *name,
                                              cl_int *e) {
  INJECT_OBJ(e);
  return real_clCreateKernel(p, name, e);
}

static cl_program CL_API_CALL w_clCreateProgramWithSource(
    cl_context c, cl_uint n, const char **s, const size_t *len, cl_int *e) {
  INJECT_OBJ(e);
  return real_clCreateProgramWithSource(c, n, s, len, e);
}

static void *CL_API_CALL w_clEnqueueMapBuffer(cl_command_queue q, cl_mem b,
                                              cl_bool blk, cl_map_flags f,
                                              size_t off, size_t n, cl_uint nw,
                                              const cl_event *w, cl_event *ev,
                                              cl_int *e) {
  const cl_int e_ = inject();
  if (e_ != CL_SUCCESS) {
    if (ev)
      *ev = NULL;
    if (e)
      *e = e_;
    return NULL;
  }
  return real_clEnqueueMapBuffer(q, b, blk, f, off, n, nw, w, ev, e);
}

static cl_int CL_API_CALL
w_clEnqueueNDRangeKernel(cl_command_queue q, cl_kernel k, cl_uint dim,
                         const size_t *off, const size_t *g, const size_t *l,
                         cl_uint nw, const cl_event *w, cl_event *ev) {
  INJECT_RET(ev);
  return real_clEnqueueNDRangeKernel(q, k, dim, off, g, l, nw, w, ev);
}

static cl_int CL_API_CALL w_clEnqueueReadBuffer(cl_command_queue q, cl_mem b,
                                                cl_bool blk, size_t off,
                                                size_t n, void *p, cl_uint nw,
                                                const cl_event *w,
                                                cl_event *ev) {
  INJECT_RET(ev);
  return real_clEnqueueReadBuffer(q, b, blk, off, n, p, nw, w, ev);
}

static cl_int CL_API_CALL w_clEnqueueUnmapMemObject(cl_command_queue q,
                                                    cl_mem b, void *p,
                                                    cl_uint nw,
                                                    const cl_event *w,
                                                    cl_event *ev) {
  INJECT_RET(ev);
  return real_clEnqueueUnmapMemObject(q, b, p, nw, w, ev);
}

static cl_int CL_API_CALL w_clEnqueueWriteBuffer(cl_command_queue q, cl_mem b,
                                                 cl_bool blk, size_t off,
                                                 size_t n, const void *p,
                                                 cl_uint nw, const cl_event *w,
                                                 cl_event *ev) {
  INJECT_RET(ev);
  return real_clEnqueueWriteBuffer(q, b, blk, off, n, p, nw, w, ev);
}

static cl_int CL_API_CALL w_clFinish(cl_command_queue q) {
  INJECT_RET((cl_event *)NULL);
  return real_clFinish(q);
}

static cl_int CL_API_CALL w_clFlush(cl_command_queue q) {
  INJECT_RET((cl_event *)NULL);
  return real_clFlush(q);
}

static cl_int CL_API_CALL w_clSetKernelArg(cl_kernel k, cl_uint i, size_t n,
                                           const void *v) {
  INJECT_RET((cl_event *)NULL);
  return real_clSetKernelArg(k, i, n, v);
}

/* A failing wait reports the commands' failure after they have finished,
 * as a device does, so that nothing is left running on the caller's
 * buffers. */
static cl_int CL_API_CALL w_clWaitForEvents(cl_uint n, const cl_event *ev) {
  const cl_int e_ = inject();
  const cl_int e = real_clWaitForEvents(n, ev);
  return e_ != CL_SUCCESS ? e_ : e;
}

#if defined(__APPLE__)
#define DEFAULT_LIBRARY "/System/Library/Frameworks/OpenCL.framework/OpenCL"
#else
#define DEFAULT_LIBRARY "libOpenCL.so.1"
#endif

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static const char *library = DEFAULT_LIBRARY;
static int loaded;
static char load_error[512];

void gmle__opencl_test_library(const char *name) {
  library = name ? name : DEFAULT_LIBRARY;
}

static void load(void) {
  void *h = dlopen(library, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char *why = dlerror();
    snprintf(load_error, sizeof load_error, "%s", why ? why : "not found");
    return;
  }
  void *sym;
#define GMLE__CL_LOOKUP(name)                                                  \
  sym = dlsym(h, #name);                                                       \
  if (!sym) {                                                                  \
    snprintf(load_error, sizeof load_error, "%s has no %s", library, #name);   \
    return;                                                                    \
  }                                                                            \
  memcpy(&gmle__cl_##name, &sym, sizeof sym);
  GMLE__CL_API(GMLE__CL_LOOKUP)
#undef GMLE__CL_LOOKUP
#define GMLE__CL_WRAP(name)                                                    \
  real_##name = gmle__cl_##name;                                               \
  gmle__cl_##name = w_##name;
  GMLE__CL_FAULTY(GMLE__CL_WRAP)
#undef GMLE__CL_WRAP
  loaded = 1;
}

gmle_status gmle__cl_load(const gmle_context *ctx) {
  pthread_once(&load_once, load);
  if (loaded)
    return GMLE_OK;
  return gmle__error(ctx, GMLE_E_NO_DEVICE,
                     "OpenCL: cannot load the ICD loader %s (%s); install one "
                     "(Debian/Ubuntu: ocl-icd-libopencl1) and a driver",
                     library, load_error);
}
