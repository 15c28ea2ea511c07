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
#include <string.h>

#define GMLE__CL_PTR_DEF(name) __typeof__(name) *gmle__cl_##name;
GMLE__CL_API(GMLE__CL_PTR_DEF)
#undef GMLE__CL_PTR_DEF

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
