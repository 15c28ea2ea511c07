/* cl_backend.c -- the OpenCL backend's table: discovery through the ICD
 * loader, context and queues, the per-context program cache, staging
 * buffers, error names, and the test hooks. */
#include "cl_internal.h"

#include <dirent.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */
/* ------------------------------------------------------------------------ */

const char *gmle__cl_error_name(cl_int err) {
  switch (err) {
#define GMLE__CL_ERR(name, value)                                              \
  case value:                                                                  \
    return #name;
    GMLE__CL_ERR(CL_SUCCESS, 0)
    GMLE__CL_ERR(CL_DEVICE_NOT_FOUND, -1)
    GMLE__CL_ERR(CL_DEVICE_NOT_AVAILABLE, -2)
    GMLE__CL_ERR(CL_COMPILER_NOT_AVAILABLE, -3)
    GMLE__CL_ERR(CL_MEM_OBJECT_ALLOCATION_FAILURE, -4)
    GMLE__CL_ERR(CL_OUT_OF_RESOURCES, -5)
    GMLE__CL_ERR(CL_OUT_OF_HOST_MEMORY, -6)
    GMLE__CL_ERR(CL_PROFILING_INFO_NOT_AVAILABLE, -7)
    GMLE__CL_ERR(CL_MEM_COPY_OVERLAP, -8)
    GMLE__CL_ERR(CL_IMAGE_FORMAT_MISMATCH, -9)
    GMLE__CL_ERR(CL_IMAGE_FORMAT_NOT_SUPPORTED, -10)
    GMLE__CL_ERR(CL_BUILD_PROGRAM_FAILURE, -11)
    GMLE__CL_ERR(CL_MAP_FAILURE, -12)
    GMLE__CL_ERR(CL_MISALIGNED_SUB_BUFFER_OFFSET, -13)
    GMLE__CL_ERR(CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST, -14)
    GMLE__CL_ERR(CL_COMPILE_PROGRAM_FAILURE, -15)
    GMLE__CL_ERR(CL_LINKER_NOT_AVAILABLE, -16)
    GMLE__CL_ERR(CL_LINK_PROGRAM_FAILURE, -17)
    GMLE__CL_ERR(CL_DEVICE_PARTITION_FAILED, -18)
    GMLE__CL_ERR(CL_KERNEL_ARG_INFO_NOT_AVAILABLE, -19)
    GMLE__CL_ERR(CL_INVALID_VALUE, -30)
    GMLE__CL_ERR(CL_INVALID_DEVICE_TYPE, -31)
    GMLE__CL_ERR(CL_INVALID_PLATFORM, -32)
    GMLE__CL_ERR(CL_INVALID_DEVICE, -33)
    GMLE__CL_ERR(CL_INVALID_CONTEXT, -34)
    GMLE__CL_ERR(CL_INVALID_QUEUE_PROPERTIES, -35)
    GMLE__CL_ERR(CL_INVALID_COMMAND_QUEUE, -36)
    GMLE__CL_ERR(CL_INVALID_HOST_PTR, -37)
    GMLE__CL_ERR(CL_INVALID_MEM_OBJECT, -38)
    GMLE__CL_ERR(CL_INVALID_IMAGE_FORMAT_DESCRIPTOR, -39)
    GMLE__CL_ERR(CL_INVALID_IMAGE_SIZE, -40)
    GMLE__CL_ERR(CL_INVALID_SAMPLER, -41)
    GMLE__CL_ERR(CL_INVALID_BINARY, -42)
    GMLE__CL_ERR(CL_INVALID_BUILD_OPTIONS, -43)
    GMLE__CL_ERR(CL_INVALID_PROGRAM, -44)
    GMLE__CL_ERR(CL_INVALID_PROGRAM_EXECUTABLE, -45)
    GMLE__CL_ERR(CL_INVALID_KERNEL_NAME, -46)
    GMLE__CL_ERR(CL_INVALID_KERNEL_DEFINITION, -47)
    GMLE__CL_ERR(CL_INVALID_KERNEL, -48)
    GMLE__CL_ERR(CL_INVALID_ARG_INDEX, -49)
    GMLE__CL_ERR(CL_INVALID_ARG_VALUE, -50)
    GMLE__CL_ERR(CL_INVALID_ARG_SIZE, -51)
    GMLE__CL_ERR(CL_INVALID_KERNEL_ARGS, -52)
    GMLE__CL_ERR(CL_INVALID_WORK_DIMENSION, -53)
    GMLE__CL_ERR(CL_INVALID_WORK_GROUP_SIZE, -54)
    GMLE__CL_ERR(CL_INVALID_WORK_ITEM_SIZE, -55)
    GMLE__CL_ERR(CL_INVALID_GLOBAL_OFFSET, -56)
    GMLE__CL_ERR(CL_INVALID_EVENT_WAIT_LIST, -57)
    GMLE__CL_ERR(CL_INVALID_EVENT, -58)
    GMLE__CL_ERR(CL_INVALID_OPERATION, -59)
    GMLE__CL_ERR(CL_INVALID_GL_OBJECT, -60)
    GMLE__CL_ERR(CL_INVALID_BUFFER_SIZE, -61)
    GMLE__CL_ERR(CL_INVALID_MIP_LEVEL, -62)
    GMLE__CL_ERR(CL_INVALID_GLOBAL_WORK_SIZE, -63)
    GMLE__CL_ERR(CL_INVALID_PROPERTY, -64)
    GMLE__CL_ERR(CL_INVALID_IMAGE_DESCRIPTOR, -65)
    GMLE__CL_ERR(CL_INVALID_COMPILER_OPTIONS, -66)
    GMLE__CL_ERR(CL_INVALID_LINKER_OPTIONS, -67)
    GMLE__CL_ERR(CL_INVALID_DEVICE_PARTITION_COUNT, -68)
    GMLE__CL_ERR(CL_INVALID_PIPE_SIZE, -69)
    GMLE__CL_ERR(CL_INVALID_DEVICE_QUEUE, -70)
    GMLE__CL_ERR(CL_PLATFORM_NOT_FOUND_KHR, -1001)
#undef GMLE__CL_ERR
  }
  return "unknown OpenCL error";
}

int gmle__cl_is_oom(cl_int err) {
  return err == CL_OUT_OF_RESOURCES || err == CL_MEM_OBJECT_ALLOCATION_FAILURE;
}

gmle_status gmle__cl_status(cl_int err) {
  switch (err) {
  case CL_OUT_OF_RESOURCES:
  case CL_MEM_OBJECT_ALLOCATION_FAILURE:
    return GMLE_E_DEVICE_OOM;
  case CL_OUT_OF_HOST_MEMORY:
    return GMLE_E_OUT_OF_MEMORY;
  case CL_DEVICE_NOT_FOUND:
  case CL_DEVICE_NOT_AVAILABLE:
  case -1001: /* CL_PLATFORM_NOT_FOUND_KHR */
    return GMLE_E_NO_DEVICE;
  default:
    return GMLE_E_DEVICE;
  }
}

gmle_status gmle__cl_fail(const gmle_context *ctx, cl_int err, const char *call,
                          const char *fmt, ...) {
  char detail[GMLE__ERR_LEN] = "";
  if (fmt) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
  }
  return gmle__error(ctx, gmle__cl_status(err), "%s: %s (%d)%s%s", call,
                     gmle__cl_error_name(err), (int)err, detail[0] ? ": " : "",
                     detail);
}

gmle_status gmle__cl_enter(gmle_context *ctx) {
  const gmle__cl_state *s = gmle__cl_state_of(ctx);
  if (!s->lost)
    return GMLE_OK;
  return gmle__error(ctx, GMLE_E_DEVICE_LOST,
                     "OpenCL device was lost earlier (%s); create a new "
                     "context (statistics accumulated so far are intact on "
                     "the host)",
                     s->lost_msg);
}

gmle_status gmle__cl_lose(gmle_context *ctx, gmle_status st) {
  if (st == GMLE_OK || st == GMLE_E_DEVICE_OOM || st == GMLE_E_OUT_OF_MEMORY)
    return st;
  gmle__cl_state *s = gmle__cl_state_of(ctx);
  s->lost = 1;
  snprintf(s->lost_msg, sizeof s->lost_msg, "%.500s", gmle_context_error(ctx));
  return gmle__error(ctx, GMLE_E_DEVICE_LOST,
                     "OpenCL device lost: %s; this context can no longer be "
                     "used (statistics accumulated so far are intact on the "
                     "host: save, merge or continue them on a new context)",
                     s->lost_msg);
}

gmle_status gmle__cl_arg(gmle_context *ctx, cl_kernel k, cl_uint i, size_t size,
                         const void *value) {
  cl_int e = clSetKernelArg(k, i, size, value);
  if (e != CL_SUCCESS)
    return gmle__cl_fail(ctx, e, "clSetKernelArg", "argument %u", (unsigned)i);
  return GMLE_OK;
}

void gmle__cl_event_release(cl_event *ev) {
  if (*ev)
    clReleaseEvent(*ev);
  *ev = NULL;
}

gmle_status gmle__cl_wait(gmle_context *ctx, cl_event ev, const char *what,
                          cl_int *err_out) {
  cl_int e = clWaitForEvents(1, &ev), st = CL_COMPLETE;
  if (clGetEventInfo(ev, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof st, &st,
                     NULL) == CL_SUCCESS &&
      st < 0)
    e = st; /* the command's own error is more telling than -14 */
  if (err_out)
    *err_out = e;
  if (e != CL_SUCCESS)
    return gmle__cl_fail(ctx, e, "clWaitForEvents", "%s", what);
  return GMLE_OK;
}

void gmle__cl_drain(gmle__cl_state *s) {
  if (s->q_copy)
    clFinish(s->q_copy);
  if (s->q_run)
    clFinish(s->q_run);
}

/* ------------------------------------------------------------------------ */
/* Buffers                                                                  */
/* ------------------------------------------------------------------------ */

static size_t test_alloc_limit; /* test hook: 0 = no limit */

void gmle__opencl_test_limit_alloc(size_t bytes) { test_alloc_limit = bytes; }

static cl_int create_buffer(gmle__cl_state *s, cl_mem_flags flags, size_t bytes,
                            cl_mem *out) {
  cl_int e = CL_SUCCESS;
  *out = NULL;
  if ((test_alloc_limit && bytes > test_alloc_limit) ||
      (s->max_alloc && bytes > s->max_alloc))
    return CL_MEM_OBJECT_ALLOCATION_FAILURE;
  *out = clCreateBuffer(s->context, flags, bytes, NULL, &e);
  if (e != CL_SUCCESS)
    *out = NULL;
  return e;
}

static void pinned_release(gmle__cl_state *s, gmle__cl_pinned *p) {
  if (p->buf) {
    if (p->ptr) {
      cl_event ev = NULL;
      if (clEnqueueUnmapMemObject(s->q_run, p->buf, p->ptr, 0, NULL, &ev) ==
          CL_SUCCESS) {
        clWaitForEvents(1, &ev);
        clReleaseEvent(ev);
      }
    }
    clReleaseMemObject(p->buf);
  }
  memset(p, 0, sizeof *p);
}

gmle_status gmle__cl_pinned_reserve(gmle_context *ctx, gmle__cl_pinned *p,
                                    size_t bytes) {
  gmle__cl_state *s = gmle__cl_state_of(ctx);
  if (bytes == 0)
    bytes = 1;
  if (test_alloc_limit && bytes > test_alloc_limit)
    return gmle__cl_fail(ctx, CL_MEM_OBJECT_ALLOCATION_FAILURE,
                         "clCreateBuffer",
                         "%zu bytes of pinned host staging "
                         "(test limit)",
                         bytes);
  if (p->buf && p->bytes >= bytes)
    return GMLE_OK;
  pinned_release(s, p);
  cl_int e = create_buffer(s, CL_MEM_READ_WRITE | CL_MEM_ALLOC_HOST_PTR, bytes,
                           &p->buf);
  if (e != CL_SUCCESS)
    return gmle__cl_fail(ctx, e, "clCreateBuffer",
                         "%zu bytes of pinned host staging", bytes);
  p->ptr =
      clEnqueueMapBuffer(s->q_run, p->buf, CL_TRUE, CL_MAP_READ | CL_MAP_WRITE,
                         0, bytes, 0, NULL, NULL, &e);
  if (e != CL_SUCCESS) {
    p->ptr = NULL;
    pinned_release(s, p);
    return gmle__cl_fail(ctx, e, "clEnqueueMapBuffer",
                         "%zu bytes of pinned host staging", bytes);
  }
  p->bytes = bytes;
  return GMLE_OK;
}

gmle_status gmle__cl_devbuf_reserve(gmle_context *ctx, gmle__cl_devbuf *d,
                                    size_t bytes, cl_mem_flags flags) {
  gmle__cl_state *s = gmle__cl_state_of(ctx);
  if (bytes == 0)
    bytes = 1;
  if (test_alloc_limit && bytes > test_alloc_limit)
    return gmle__cl_fail(ctx, CL_MEM_OBJECT_ALLOCATION_FAILURE,
                         "clCreateBuffer",
                         "%zu bytes of device memory (test "
                         "limit)",
                         bytes);
  if (d->buf && d->bytes >= bytes)
    return GMLE_OK;
  if (d->buf)
    clReleaseMemObject(d->buf);
  d->buf = NULL;
  d->bytes = 0;
  cl_int e = create_buffer(s, flags, bytes, &d->buf);
  if (e != CL_SUCCESS)
    return gmle__cl_fail(ctx, e, "clCreateBuffer", "%zu bytes of device memory",
                         bytes);
  d->bytes = bytes;
  return GMLE_OK;
}

gmle_status gmle__cl_stage_begin(gmle_context *ctx, int sl, size_t bytes,
                                 void **ptr) {
  gmle__cl_state *s = gmle__cl_state_of(ctx);
  *ptr = NULL;
  if (!s->unified) {
    GMLE_TRY(gmle__cl_pinned_reserve(ctx, &s->up[sl], bytes));
    GMLE_TRY(
        gmle__cl_devbuf_reserve(ctx, &s->dev_in[sl], bytes, CL_MEM_READ_ONLY));
    *ptr = s->up[sl].ptr;
    return GMLE_OK;
  }
  GMLE_TRY(gmle__cl_devbuf_reserve(ctx, &s->dev_in[sl], bytes,
                                   CL_MEM_READ_ONLY | CL_MEM_ALLOC_HOST_PTR));
  cl_int e = CL_SUCCESS;
  s->in_map[sl] = clEnqueueMapBuffer(s->q_copy, s->dev_in[sl].buf, CL_TRUE,
                                     CL_MAP_WRITE_INVALIDATE_REGION, 0,
                                     bytes ? bytes : 1, 0, NULL, NULL, &e);
  if (e != CL_SUCCESS) {
    s->in_map[sl] = NULL;
    return gmle__cl_fail(ctx, e, "clEnqueueMapBuffer",
                         "%zu bytes of input staging", bytes);
  }
  *ptr = s->in_map[sl];
  return GMLE_OK;
}

gmle_status gmle__cl_stage_end(gmle_context *ctx, int sl, size_t bytes,
                               cl_event *ev) {
  gmle__cl_state *s = gmle__cl_state_of(ctx);
  cl_int e;
  *ev = NULL;
  if (s->unified) {
    e = clEnqueueUnmapMemObject(s->q_copy, s->dev_in[sl].buf, s->in_map[sl], 0,
                                NULL, ev);
    /* Still mapped after a failure: gmle__cl_release_slots unmaps it (a
     * mapped buffer is never freed). */
    if (e == CL_SUCCESS)
      s->in_map[sl] = NULL;
  } else {
    e = clEnqueueWriteBuffer(s->q_copy, s->dev_in[sl].buf, CL_FALSE, 0, bytes,
                             s->up[sl].ptr, 0, NULL, ev);
  }
  if (e != CL_SUCCESS) {
    *ev = NULL;
    return gmle__cl_fail(
        ctx, e, s->unified ? "clEnqueueUnmapMemObject" : "clEnqueueWriteBuffer",
        "%zu bytes of input", bytes);
  }
  clFlush(s->q_copy);
  return GMLE_OK;
}

void gmle__cl_release_slots(gmle__cl_state *s) {
  for (int i = 0; i < 2; i++) {
    if (s->in_map[i] && s->dev_in[i].buf) {
      cl_event ev = NULL;
      if (clEnqueueUnmapMemObject(s->q_copy, s->dev_in[i].buf, s->in_map[i], 0,
                                  NULL, &ev) == CL_SUCCESS) {
        clWaitForEvents(1, &ev);
        clReleaseEvent(ev);
      }
    }
    s->in_map[i] = NULL;
    pinned_release(s, &s->up[i]);
    pinned_release(s, &s->down[i]);
    gmle__cl_devbuf *d[3] = {&s->dev_in[i], &s->dev_out[i], &s->dev_aux[i]};
    for (int j = 0; j < 3; j++) {
      if (d[j]->buf)
        clReleaseMemObject(d[j]->buf);
      d[j]->buf = NULL;
      d[j]->bytes = 0;
    }
  }
}

/* ------------------------------------------------------------------------ */
/* Programs                                                                 */
/* ------------------------------------------------------------------------ */

static char *dup_string(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = gmle__malloc(n);
  if (d)
    memcpy(d, s, n);
  return d;
}

static void prog_free(gmle__cl_prog *p) {
  if (!p)
    return;
  for (size_t i = 0; i < p->n_kernels; i++) {
    clReleaseKernel(p->kernels[i]);
    gmle__free(p->kernel_names[i]);
  }
  if (p->program)
    clReleaseProgram(p->program);
  gmle__free(p->options);
  gmle__free(p);
}

/* Build `src` (len bytes) with options; on failure the message holds the
 * build log. */
static gmle_status build_program(gmle_context *ctx, const char *what,
                                 const char *src, size_t len,
                                 const char *options, cl_program *out) {
  gmle__cl_state *s = gmle__cl_state_of(ctx);
  cl_int e = CL_SUCCESS;
  *out = clCreateProgramWithSource(s->context, 1, &src, &len, &e);
  if (e != CL_SUCCESS)
    return gmle__cl_fail(ctx, e, "clCreateProgramWithSource", "%s", what);
  e = clBuildProgram(*out, 1, &s->device, options, NULL, NULL);
  if (e == CL_SUCCESS)
    return GMLE_OK;
  /* The build log says why; keep as much of it as the message holds. */
  char log[GMLE__ERR_LEN] = "";
  size_t log_len = 0;
  if (clGetProgramBuildInfo(*out, s->device, CL_PROGRAM_BUILD_LOG, 0, NULL,
                            &log_len) == CL_SUCCESS &&
      log_len > 0) {
    char *full = gmle__malloc(log_len + 1);
    if (full && clGetProgramBuildInfo(*out, s->device, CL_PROGRAM_BUILD_LOG,
                                      log_len, full, NULL) == CL_SUCCESS) {
      full[log_len] = '\0';
      snprintf(log, sizeof log, "%s", full);
    }
    gmle__free(full);
  }
  clReleaseProgram(*out);
  *out = NULL;
  gmle_status st = gmle__cl_fail(ctx, e, "clBuildProgram",
                                 "%s with options \"%s\"; build log:\n%s", what,
                                 options, log[0] ? log : "(empty)");
  /* A program that does not build is a defect or a device limit, never a
   * reason to report that the device is missing. */
  return st == GMLE_E_NO_DEVICE ? GMLE_E_DEVICE : st;
}

static void source_of(gmle__cl_source src, const char **text, size_t *len,
                      const char **what) {
  switch (src) {
  case GMLE__CL_SRC_ACCUM:
    *text = (const char *)gmle__cl_src_accum;
    *len = gmle__cl_src_accum_len;
    *what = "kernels/accum.cl";
    return;
  case GMLE__CL_SRC_SCORE:
    *text = (const char *)gmle__cl_src_score;
    *len = gmle__cl_src_score_len;
    *what = "kernels/score.cl";
    return;
  case GMLE__CL_SRC_TEST:
    break;
  }
  *text = "";
  *len = 0;
  *what = "test source";
}

gmle_status gmle__cl_kernel(gmle_context *ctx, gmle__cl_source src,
                            const char *options, const char *name,
                            cl_kernel *out) {
  gmle__cl_state *s = gmle__cl_state_of(ctx);
  gmle__cl_prog *p = s->progs;
  while (p && !(p->src == src && strcmp(p->options, options) == 0))
    p = p->next;
  if (!p) {
    const char *text, *what;
    size_t len;
    source_of(src, &text, &len, &what);
    p = gmle__calloc(1, sizeof *p);
    if (!p || !(p->options = dup_string(options))) {
      gmle__free(p);
      return gmle__error(ctx, GMLE_E_OUT_OF_MEMORY,
                         "OpenCL program cache: out of memory");
    }
    p->src = src;
    gmle_status st = build_program(ctx, what, text, len, options, &p->program);
    if (st != GMLE_OK) {
      prog_free(p);
      return st;
    }
    p->next = s->progs;
    s->progs = p;
  }
  for (size_t i = 0; i < p->n_kernels; i++)
    if (strcmp(p->kernel_names[i], name) == 0) {
      *out = p->kernels[i];
      return GMLE_OK;
    }
  if (p->n_kernels == sizeof p->kernels / sizeof p->kernels[0])
    return gmle__error(ctx, GMLE_E_INTERNAL,
                       "OpenCL program cache: too many kernels per program");
  cl_int e = CL_SUCCESS;
  cl_kernel k = clCreateKernel(p->program, name, &e);
  if (e != CL_SUCCESS)
    return gmle__cl_fail(ctx, e, "clCreateKernel", "%s", name);
  char *nm = dup_string(name);
  if (!nm) {
    clReleaseKernel(k);
    return gmle__error(ctx, GMLE_E_OUT_OF_MEMORY,
                       "OpenCL program cache: out of memory");
  }
  p->kernel_names[p->n_kernels] = nm;
  p->kernels[p->n_kernels++] = k;
  *out = k;
  return GMLE_OK;
}

/* ------------------------------------------------------------------------ */
/* Discovery                                                                */
/* ------------------------------------------------------------------------ */

typedef struct dev_ref {
  cl_platform_id platform;
  cl_device_id device;
} dev_ref;

/* Whether platform p is PoCL (by its name, which asking for does not
 * start its devices). */
static int is_pocl(cl_platform_id p) {
  char name[128] = {0};
  if (clGetPlatformInfo(p, CL_PLATFORM_NAME, sizeof name - 1, name, NULL) !=
      CL_SUCCESS)
    return 0;
  return strstr(name, "Portable Computing Language") != NULL;
}

/* Every device of `types` on every platform, in platform order (PoCL's
 * platform left out when skip_pocl). */
static gmle_status enumerate(gmle_context *ctx, cl_device_type types,
                             int skip_pocl, dev_ref **out, size_t *n,
                             int *no_devices) {
  if (no_devices)
    *no_devices = 0;
  *out = NULL;
  *n = 0;
  cl_uint np = 0;
  cl_int e = clGetPlatformIDs(0, NULL, &np);
  if (e == CL_SUCCESS && np == 0)
    e = -1001; /* some loaders report success and zero platforms */
  if (e != CL_SUCCESS)
    return gmle__cl_fail(ctx, e, "clGetPlatformIDs",
                         "no OpenCL platform is installed (no ICD registered "
                         "in /etc/OpenCL/vendors or OCL_ICD_VENDORS)");
  cl_platform_id *plats = gmle__malloc(np * sizeof *plats);
  if (!plats)
    return gmle__error(ctx, GMLE_E_OUT_OF_MEMORY, "OpenCL: out of memory");
  e = clGetPlatformIDs(np, plats, NULL);
  if (e != CL_SUCCESS) {
    gmle__free(plats);
    return gmle__cl_fail(ctx, e, "clGetPlatformIDs", NULL);
  }
  size_t total = 0, cap = 0;
  dev_ref *devs = NULL;
  cl_int last = CL_DEVICE_NOT_FOUND;
  for (cl_uint p = 0; p < np; p++) {
    cl_uint nd = 0;
    if (skip_pocl && is_pocl(plats[p]))
      continue;
    e = clGetDeviceIDs(plats[p], types, 0, NULL, &nd);
    if (e != CL_SUCCESS || nd == 0) {
      last = e != CL_SUCCESS ? e : CL_DEVICE_NOT_FOUND;
      continue; /* a platform without devices is skipped */
    }
    if (total + nd > cap) {
      size_t ncap = (total + nd) * 2;
      dev_ref *nd_ = gmle__malloc(ncap * sizeof *nd_);
      if (!nd_) {
        gmle__free(devs);
        gmle__free(plats);
        return gmle__error(ctx, GMLE_E_OUT_OF_MEMORY, "OpenCL: out of memory");
      }
      if (devs)
        memcpy(nd_, devs, total * sizeof *devs);
      gmle__free(devs);
      devs = nd_;
      cap = ncap;
    }
    cl_device_id *ids = gmle__malloc(nd * sizeof *ids);
    if (!ids) {
      gmle__free(devs);
      gmle__free(plats);
      return gmle__error(ctx, GMLE_E_OUT_OF_MEMORY, "OpenCL: out of memory");
    }
    if (clGetDeviceIDs(plats[p], types, nd, ids, NULL) != CL_SUCCESS) {
      gmle__free(ids);
      continue;
    }
    for (cl_uint d = 0; d < nd; d++) {
      devs[total].platform = plats[p];
      devs[total].device = ids[d];
      total++;
    }
    gmle__free(ids);
  }
  gmle__free(plats);
  if (total == 0) {
    if (no_devices)
      *no_devices = 1;
    gmle__free(devs);
    return gmle__cl_fail(ctx, last, "clGetDeviceIDs",
                         "%u OpenCL platform(s) but no device", (unsigned)np);
  }
  *out = devs;
  *n = total;
  return GMLE_OK;
}

/* 1 if device d has extension ext, 0 if not, -1 when out of memory. */
static int has_extension(cl_device_id d, const char *ext) {
  size_t len = 0;
  if (clGetDeviceInfo(d, CL_DEVICE_EXTENSIONS, 0, NULL, &len) != CL_SUCCESS ||
      len == 0)
    return 0;
  char *buf = gmle__malloc(len + 1);
  if (!buf)
    return -1;
  int found = 0;
  if (clGetDeviceInfo(d, CL_DEVICE_EXTENSIONS, len, buf, NULL) == CL_SUCCESS) {
    buf[len] = '\0';
    size_t n = strlen(ext);
    for (const char *p = buf; (p = strstr(p, ext)) != NULL; p += n)
      if ((p == buf || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0')) {
        found = 1;
        break;
      }
  }
  gmle__free(buf);
  return found;
}

static void info_string(cl_device_id d, cl_device_info what, char *buf,
                        size_t cap) {
  buf[0] = '\0';
  if (clGetDeviceInfo(d, what, cap, buf, NULL) != CL_SUCCESS)
    buf[0] = '\0';
  buf[cap - 1] = '\0';
}

/* Fill out for device r; GMLE_E_OUT_OF_MEMORY (recorded on ctx) when the
 * extension list cannot be read for want of memory. */
static gmle_status describe(const gmle_context *ctx, const dev_ref *r,
                            int index, gmle_device_info *out) {
  memset(out, 0, sizeof *out);
  out->backend = GMLE_BACKEND_OPENCL;
  out->index = index;
  info_string(r->device, CL_DEVICE_NAME, out->name, sizeof out->name);
  if (clGetPlatformInfo(r->platform, CL_PLATFORM_NAME, sizeof out->platform,
                        out->platform, NULL) != CL_SUCCESS)
    out->platform[0] = '\0';
  out->platform[sizeof out->platform - 1] = '\0';
  cl_device_type type = 0;
  clGetDeviceInfo(r->device, CL_DEVICE_TYPE, sizeof type, &type, NULL);
  out->is_gpu = (type & CL_DEVICE_TYPE_GPU) != 0;
  cl_uint cu = 0;
  clGetDeviceInfo(r->device, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof cu, &cu, NULL);
  out->compute_units = cu;
  cl_ulong mem = 0;
  clGetDeviceInfo(r->device, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof mem, &mem, NULL);
  out->global_mem = mem;
  const int fp64 = has_extension(r->device, "cl_khr_fp64");
  if (fp64 < 0)
    return gmle__error(ctx, GMLE_E_OUT_OF_MEMORY,
                       "OpenCL: out of memory reading the extensions of "
                       "device %d",
                       index);
  out->fp64 = fp64;
  return GMLE_OK;
}

/* The default device: the first GPU, else the first device. */
static size_t default_device(const dev_ref *devs, size_t n) {
  for (size_t i = 0; i < n; i++) {
    cl_device_type type = 0;
    if (clGetDeviceInfo(devs[i].device, CL_DEVICE_TYPE, sizeof type, &type,
                        NULL) == CL_SUCCESS &&
        (type & CL_DEVICE_TYPE_GPU))
      return i;
  }
  return 0;
}

static gmle_status cl_list_devices(gmle_context *ctx, gmle_device_info *out,
                                   size_t cap, size_t *n_found) {
  dev_ref *devs = NULL;
  size_t n = 0;
  *n_found = 0;
  GMLE_TRY(gmle__cl_load(ctx));
  GMLE_TRY(enumerate(ctx, CL_DEVICE_TYPE_ALL, 0, &devs, &n, NULL));
  size_t def = default_device(devs, n);
  gmle_status st = GMLE_OK;
  for (size_t i = 0; st == GMLE_OK && i < n && i < cap; i++) {
    st = describe(ctx, &devs[i], (int)i, &out[i]);
    out[i].is_default = i == def;
  }
  gmle__free(devs);
  if (st == GMLE_OK)
    *n_found = n;
  return st;
}

/* ------------------------------------------------------------------------ */
/* Init and shutdown                                                        */
/* ------------------------------------------------------------------------ */

static void cl_shutdown(void *state) {
  gmle__cl_state *s = state;
  if (!s)
    return;
  gmle__cl_drain(s);
  gmle__cl_release_slots(s);
  while (s->progs) {
    gmle__cl_prog *p = s->progs;
    s->progs = p->next;
    prog_free(p);
  }
  if (s->q_copy)
    clReleaseCommandQueue(s->q_copy);
  if (s->q_run)
    clReleaseCommandQueue(s->q_run);
  if (s->context)
    clReleaseContext(s->context);
  gmle__free(s);
}

/* Whether every OpenCL driver (ICD) registered is PoCL, read from the ICD
 * loader's registry (OCL_ICD_VENDORS, a folder or one .icd file, else
 * /etc/OpenCL/vendors) without loading any of them. 0 when unsure. */
static int only_pocl_icds(void) {
  const char *env = getenv("OCL_ICD_VENDORS");
  const char *dir = env && *env ? env : "/etc/OpenCL/vendors";
  DIR *d = opendir(dir);
  if (!d)
    return 0; /* one file, or no registry: let the loader decide */
  size_t n_icd = 0, n_pocl = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    const size_t len = strlen(e->d_name);
    if (len < 5 || strcmp(e->d_name + len - 4, ".icd") != 0)
      continue;
    char path[4096], line[1024] = {0};
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    FILE *f = fopen(path, "r");
    if (!f)
      continue;
    const int got = fgets(line, sizeof line, f) != NULL;
    fclose(f);
    if (!got)
      continue;
    n_icd++;
    n_pocl += strstr(line, "libpocl") != NULL;
  }
  closedir(d);
  return n_icd > 0 && n_pocl == n_icd;
}

static gmle_status cl_init(gmle_context *ctx, int device, void **state) {
  *state = NULL;
  dev_ref *devs = NULL;
  size_t n = 0;
  if (ctx->auto_select && device < 0 && only_pocl_icds())
    return gmle__error(ctx, GMLE_E_NO_DEVICE,
                       "OpenCL has only PoCL here (host-CPU devices); AUTO "
                       "leaves the CPU to the native CPU backend, which is "
                       "faster, without loading OpenCL (--backend opencl "
                       "selects PoCL)");
  GMLE_TRY(gmle__cl_load(ctx));
  /* AUTO asks only for GPUs and accelerators, and not PoCL's platform at
   * all: it leaves host-CPU devices to the native CPU backend, which is
   * faster, and never starts them (PoCL starts its CPU device's thread pool
   * as soon as any of its devices are listed: tens of milliseconds, hundreds
   * of MB of address space, and an abort inside PoCL under a tight
   * ulimit -v). NVIDIA GPUs are the CUDA backend's, which AUTO tries
   * first. */
  const int auto_only = ctx->auto_select && device < 0;
  int no_devices = 0;
  gmle_status es =
      enumerate(ctx,
                auto_only ? CL_DEVICE_TYPE_GPU | CL_DEVICE_TYPE_ACCELERATOR
                          : CL_DEVICE_TYPE_ALL,
                auto_only, &devs, &n, &no_devices);
  if (es != GMLE_OK && auto_only && no_devices)
    return gmle__error(ctx, GMLE_E_NO_DEVICE,
                       "OpenCL has no GPU or accelerator here (only host-CPU "
                       "devices, e.g. PoCL, or none); AUTO leaves the CPU to "
                       "the native CPU backend, which is faster (--backend "
                       "opencl selects an OpenCL CPU device)");
  GMLE_TRY(es);
  size_t idx = device < 0 ? default_device(devs, n) : (size_t)device;
  if (idx >= n) {
    gmle__free(devs);
    return gmle__error(ctx, GMLE_E_NO_DEVICE,
                       "OpenCL device %d was asked for; there %s %zu (0 to "
                       "%zu; `gmle devices` lists them)",
                       device, n == 1 ? "is" : "are", n, n - 1);
  }
  dev_ref r = devs[idx];
  gmle__free(devs);
  gmle_device_info info;
  GMLE_TRY(describe(ctx, &r, (int)idx, &info));
  cl_bool avail = CL_FALSE, compiler = CL_FALSE;
  clGetDeviceInfo(r.device, CL_DEVICE_AVAILABLE, sizeof avail, &avail, NULL);
  clGetDeviceInfo(r.device, CL_DEVICE_COMPILER_AVAILABLE, sizeof compiler,
                  &compiler, NULL);
  if (!avail || !compiler)
    return gmle__cl_fail(
        ctx, avail ? CL_COMPILER_NOT_AVAILABLE : CL_DEVICE_NOT_AVAILABLE,
        "clGetDeviceInfo", "OpenCL device %zu (%s) %s", idx, info.name,
        avail ? "has no kernel compiler" : "is not available");
  gmle__cl_state *s = gmle__calloc(1, sizeof *s);
  if (!s)
    return gmle__error(ctx, GMLE_E_OUT_OF_MEMORY, "OpenCL: out of memory");
  s->platform = r.platform;
  s->device = r.device;
  s->dev_fp64 = s->fp64 = info.fp64;
  s->is_gpu = info.is_gpu;
  cl_device_type type = 0;
  clGetDeviceInfo(r.device, CL_DEVICE_TYPE, sizeof type, &type, NULL);
  s->is_cpu = (type & CL_DEVICE_TYPE_CPU) != 0;
  cl_bool unified = CL_FALSE;
  if (clGetDeviceInfo(r.device, CL_DEVICE_HOST_UNIFIED_MEMORY, sizeof unified,
                      &unified, NULL) == CL_SUCCESS)
    s->unified = unified == CL_TRUE;
  s->global_mem = info.global_mem;
  clGetDeviceInfo(r.device, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof s->max_alloc,
                  &s->max_alloc, NULL);
  clGetDeviceInfo(r.device, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof s->max_wg,
                  &s->max_wg, NULL);
  s->slot_budget = GMLE__CL_SLOT_BYTES;
  cl_context_properties props[] = {CL_CONTEXT_PLATFORM,
                                   (cl_context_properties)r.platform, 0};
  cl_int e = CL_SUCCESS;
  s->context = clCreateContext(props, 1, &r.device, NULL, NULL, &e);
  if (e != CL_SUCCESS) {
    s->context = NULL;
    cl_shutdown(s);
    return gmle__cl_fail(ctx, e, "clCreateContext", "OpenCL device %zu (%s)",
                         idx, info.name);
  }
  s->q_copy = clCreateCommandQueue(s->context, r.device, 0, &e);
  if (e == CL_SUCCESS)
    s->q_run = clCreateCommandQueue(s->context, r.device, 0, &e);
  if (e != CL_SUCCESS) {
    cl_shutdown(s);
    return gmle__cl_fail(ctx, e, "clCreateCommandQueue",
                         "OpenCL device %zu (%s)", idx, info.name);
  }
  /* The host-side helpers (model preparation, scoring fallback) use the
   * same threads as the CPU backend. */
  ctx->n_threads = omp_get_max_threads();
  if (ctx->n_threads < 1)
    ctx->n_threads = 1;
  double gib = (double)info.global_mem / (1024.0 * 1024.0 * 1024.0);
  snprintf(ctx->device_name, sizeof ctx->device_name,
           "OpenCL %zu: %.100s (%.60s; %u compute units, %.1f GiB%s)", idx,
           info.name, info.platform, info.compute_units, gib,
           info.fp64 ? ", fp64" : ", no fp64");
  *state = s;
  return GMLE_OK;
}

static gmle_status cl_synchronize(gmle_context *ctx) {
  gmle__cl_state *s = gmle__cl_state_of(ctx);
  GMLE_TRY(gmle__cl_enter(ctx));
  cl_int e = clFinish(s->q_copy);
  if (e == CL_SUCCESS)
    e = clFinish(s->q_run);
  if (e != CL_SUCCESS)
    return gmle__cl_lose(ctx, gmle__cl_fail(ctx, e, "clFinish", NULL));
  return GMLE_OK;
}

/* ------------------------------------------------------------------------ */
/* Test hooks                                                               */
/* ------------------------------------------------------------------------ */

gmle_status gmle__opencl_test_build(gmle_context *ctx, const char *source,
                                    const char *options) {
  if (!ctx || !source || !options || ctx->backend != GMLE_BACKEND_OPENCL)
    return GMLE_E_INVALID_ARG;
  cl_program prog = NULL;
  GMLE_TRY(build_program(ctx, "test source", source, strlen(source), options,
                         &prog));
  clReleaseProgram(prog);
  return GMLE_OK;
}

gmle_status gmle__opencl_test_force_fp32(gmle_context *ctx, int on) {
  if (!ctx || ctx->backend != GMLE_BACKEND_OPENCL)
    return GMLE_E_INVALID_ARG;
  gmle__cl_state *s = gmle__cl_state_of(ctx);
  s->fp64 = on ? 0 : s->dev_fp64;
  return GMLE_OK;
}

/* ------------------------------------------------------------------------ */
/* The table                                                                */
/* ------------------------------------------------------------------------ */

const gmle__backend_ops gmle__opencl_backend = {
    .id = GMLE_BACKEND_OPENCL,
    .name = "opencl",
    .init = cl_init,
    .shutdown = cl_shutdown,
    .accumulate = gmle__cl_accumulate,
    .prepare_model = gmle__cl_prepare_model,
    .free_model = gmle__cl_free_model,
    .score = gmle__cl_score,
    .synchronize = cl_synchronize,
    .list_devices = cl_list_devices,
};
