/* devices.c -- gmle_device_list: what each compiled backend can run on.
 * Backends describe their devices through the optional list_devices entry
 * of their table; for the others the device a context would get is opened
 * and its description reported. */
#include "internal.h"

#include <string.h>
#include <unistd.h>

/* Append "name: text\n" to why (bounded). */
static void add_reason(char *why, size_t cap, const char *name,
                       const char *text) {
  if (!why || cap == 0)
    return;
  size_t used = strlen(why);
  if (used + 1 < cap)
    snprintf(why + used, cap - used, "%s: %s\n", name,
             text[0] ? text : "no device");
}

/* The default description: open device -1 and report it. */
static gmle_status list_by_init(const gmle__backend_ops *ops, gmle_context *tmp,
                                gmle_device_info *out, size_t cap,
                                size_t *n_found) {
  void *state = NULL;
  *n_found = 0;
  GMLE_TRY(ops->init(tmp, -1, &state));
  if (cap > 0) {
    memset(out, 0, sizeof *out);
    out->backend = ops->id;
    out->index = 0;
    out->is_default = 1;
    out->fp64 = 1;
    out->compute_units = tmp->n_threads > 0 ? (unsigned)tmp->n_threads : 1;
    snprintf(out->name, sizeof out->name, "%.127s", tmp->device_name);
#if defined(_SC_PHYS_PAGES) && defined(_SC_PAGESIZE)
    if (ops->id == GMLE_BACKEND_CPU) {
      long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
      if (pages > 0 && page > 0)
        out->global_mem = (uint64_t)pages * (uint64_t)page;
    }
#endif
  }
  if (ops->shutdown)
    ops->shutdown(state);
  *n_found = 1;
  return GMLE_OK;
}

gmle_status gmle_device_list(gmle_backend b, gmle_device_info *out, size_t cap,
                             size_t *n_found, char *why, size_t why_cap) {
  if (why && why_cap > 0)
    why[0] = '\0';
  if (!n_found || (!out && cap > 0))
    return GMLE_E_INVALID_ARG;
  *n_found = 0;
  static const gmle_backend order[] = {GMLE_BACKEND_CUDA, GMLE_BACKEND_OPENCL,
                                       GMLE_BACKEND_CPU};
  const size_t n_order = sizeof order / sizeof order[0];
  /* A scratch context carries the backends' messages. */
  gmle_context *tmp = gmle__calloc(1, sizeof *tmp);
  if (!tmp)
    return GMLE_E_OUT_OF_MEMORY;
  gmle_status result = GMLE_OK;
  size_t total = 0;
  for (size_t i = 0; i < n_order; i++) {
    if (b != GMLE_BACKEND_AUTO && order[i] != b)
      continue;
    const gmle__backend_ops *ops = gmle__backend_lookup(order[i]);
    if (!ops) {
      if (b != GMLE_BACKEND_AUTO)
        add_reason(why, why_cap, gmle_backend_name(order[i]),
                   "not compiled into this build of gmle");
      continue;
    }
    memset(tmp, 0, sizeof *tmp);
    tmp->backend = ops->id;
    const size_t room = total < cap ? cap - total : 0;
    gmle_device_info *dst = room ? out + total : NULL;
    size_t n = 0;
    gmle_status s = ops->list_devices ? ops->list_devices(tmp, dst, room, &n)
                                      : list_by_init(ops, tmp, dst, room, &n);
    if (s == GMLE_E_OUT_OF_MEMORY) {
      result = s;
      break;
    }
    if (s != GMLE_OK || n == 0) {
      add_reason(why, why_cap, ops->name, tmp->err);
      continue;
    }
    for (size_t k = 0; k < n && k < room; k++)
      dst[k].backend = ops->id;
    total += n;
  }
  gmle__free(tmp);
  *n_found = total;
  if (result == GMLE_OK && total == 0)
    result = GMLE_E_NO_DEVICE;
  return result;
}
