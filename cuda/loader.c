/* loader.c -- libgmle's side of the CUDA backend (compiled into libgmle when
 * GMLE_ENABLE_CUDA is on). libgmle never links the CUDA runtime or cuBLAS:
 * the backend lives in the module libgmle_cuda.so, loaded with dlopen when
 * the first CUDA context is created, from
 *   1. $GMLE_CUDA_MODULE when set (that file only), else
 *   2. the directory libgmle itself was loaded from (dladdr), then
 *   3. the dynamic linker's default search path.
 * A missing module, or a missing libcudart/libcublas behind it, is
 * GMLE_E_NO_DEVICE naming the dlopen error, so that AUTO falls back to the
 * next backend and programs start on machines without NVIDIA software. The
 * module's table is checked against this build (ABI major, minor and table
 * size, cuda_abi.h) before use: a table of this major holding at least the
 * ABI 4.0 entries is accepted, and an entry of a later minor is used only
 * where the table's size covers it (accumulate_resp, 4.1). Once loaded, the
 * module stays loaded.
 *
 * This file is the only translator between the core's internal structs and
 * the module's plain views (cuda_abi.h): the backend table here builds the
 * views and calls the module's table; include/gmle_cuda.h's functions are
 * implemented here too (argument checks and the commit of device-computed
 * statistics are the core's, src/stats.c). */
#define _GNU_SOURCE /* dladdr */
#include "cuda_abi.h"
#include "internal.h"

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <string.h>

static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;
static const gmle__cuda_module *module;

/* The module's handle for a context is the context itself. */
static gmle__cuda_hctx *hctx(gmle_context *ctx) {
  return (gmle__cuda_hctx *)ctx;
}
static gmle_context *from_hctx(gmle__cuda_hctx *h) { return (gmle_context *)h; }

static gmle_status host_verror(gmle__cuda_hctx *h, gmle_status s,
                               const gmle_error_location *loc, const char *fmt,
                               va_list ap) {
  return gmle__verror_at(from_hctx(h), s, loc, fmt, ap);
}

static void host_log(gmle__cuda_hctx *h, gmle_log_level lvl, const char *msg) {
  gmle__log(from_hctx(h), lvl, "%s", msg);
}

static const gmle__cuda_host host_services = {
    .abi_major = GMLE__CUDA_ABI_MAJOR,
    .abi_minor = GMLE__CUDA_ABI_MINOR,
    .size = sizeof(gmle__cuda_host),
    .verror = host_verror,
    .log = host_log,
};

/* A module of this major whose table holds at least the entries of ABI
 * 4.0, which this loader always calls (minors only append entries, so the
 * table's size says which it has). Only the table's first three fields are
 * read before that is known. */
static int module_fits(const gmle__cuda_module *m) {
  return m->abi_major == GMLE__CUDA_ABI_MAJOR &&
         m->size >= GMLE__CUDA_MODULE_SIZE_4_0;
}

/* The optional entries of later minors: read only where the module's table
 * covers them. */
static int module_has_accumulate_resp(const gmle__cuda_module *m) {
  return m->size >= offsetof(gmle__cuda_module, accumulate_resp) +
                        sizeof m->accumulate_resp &&
         m->accumulate_resp != NULL;
}

static gmle_status px_accumulate_resp(gmle_context *ctx,
                                      const gmle__resp_batch *b,
                                      const gmle__resp_out *out);

/* Why a module that does not fit is refused. Its minor is named only
 * within this major: an older table's second field is not a minor. */
static void refusal(const gmle__cuda_module *m, char *why, size_t len) {
  char minor[16] = "";
  if (m->abi_major == GMLE__CUDA_ABI_MAJOR)
    snprintf(minor, sizeof minor, ".%u", m->abi_minor);
  snprintf(why, len,
           "the CUDA module was built for another gmle (module ABI %u%s, "
           "this library ABI %u.%u); install the libgmle_cuda.so of this "
           "build",
           m->abi_major, minor, (unsigned)GMLE__CUDA_ABI_MAJOR,
           (unsigned)GMLE__CUDA_ABI_MINOR);
}

/* dlopen `path`; on failure append the dlerror text to why. */
static void *try_open(const char *path, char *why, size_t len) {
  void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char *e = dlerror();
    size_t used = strlen(why);
    snprintf(why + used, len - used, "%sdlopen(%s): %s", used ? "; " : "", path,
             e ? e : "unknown error");
  }
  return h;
}

/* The module's table, loading it on first use; NULL with the reason in why. */
static const gmle__cuda_module *load_module(char *why, size_t len) {
  why[0] = '\0';
  pthread_mutex_lock(&load_lock);
  const gmle__cuda_module *m = module;
  if (m) {
    pthread_mutex_unlock(&load_lock);
    return m;
  }
  void *h = NULL;
  const char *env = getenv("GMLE_CUDA_MODULE");
  if (env && *env) {
    h = try_open(env, why, len);
  } else {
    Dl_info info;
    memset(&info, 0, sizeof info);
    if (dladdr((const void *)&gmle__cuda_backend, &info) && info.dli_fname) {
      char path[PATH_MAX];
      const char *slash = strrchr(info.dli_fname, '/');
      const int dir = slash ? (int)(slash - info.dli_fname) : 0;
      if (slash && snprintf(path, sizeof path, "%.*s/%s", dir, info.dli_fname,
                            GMLE__CUDA_MODULE_FILE) < (int)sizeof path)
        h = try_open(path, why, len);
    }
    if (!h)
      h = try_open(GMLE__CUDA_MODULE_FILE, why, len);
  }
  if (h) {
    void *sym = dlsym(h, GMLE__CUDA_ENTRY_NAME);
    gmle__cuda_entry_fn entry = NULL;
    if (sym)
      memcpy(&entry, &sym, sizeof entry);
    const gmle__cuda_module *cand = entry ? entry(&host_services) : NULL;
    if (!cand) {
      snprintf(why, len, "the CUDA module has no %s", GMLE__CUDA_ENTRY_NAME);
    } else if (!module_fits(cand)) {
      refusal(cand, why, len);
    } else {
      /* The backend table offers what the module provides, before any
       * context can use it (under load_lock, once per process). */
      if (module_has_accumulate_resp(cand))
        gmle__cuda_backend.accumulate_resp = px_accumulate_resp;
      module = m = cand;
    }
    if (!m)
      dlclose(h);
  }
  pthread_mutex_unlock(&load_lock);
  return m;
}

/* ------------------------------------------------------------------------ */
/* The backend table: forwards to the module's                              */
/* ------------------------------------------------------------------------ */

static gmle_status no_module(gmle_context *ctx, const char *why) {
  return gmle__error(ctx, GMLE_E_NO_DEVICE,
                     "CUDA: cannot load the CUDA backend: %s", why);
}

static gmle__cuda_batch_view batch_view(const gmle__batch *b) {
  const gmle__cuda_batch_view v = {b->x,   b->dtype,  b->n_rows, b->row_stride,
                                   b->dim, b->labels, b->weights};
  return v;
}

/* The model as the module reads it: the prepared arrays and, when the core
 * built one, its score cache. */
static gmle__cuda_model_view model_view(const gmle_model *m) {
  gmle__cuda_model_view v = {.dim = m->dim,
                             .n_classes = m->n_classes,
                             .cov = m->cov,
                             .means = m->means,
                             .factor = m->factor,
                             .logdet = m->logdet,
                             .log_priors = m->log_priors,
                             .empty = m->empty};
  const gmle__score_cache *sc = m->score_cache;
  if (sc) {
    v.has_cache = 1;
    v.n_active = sc->n_active;
    v.active = sc->active;
    v.center = sc->center;
    v.w = sc->w;
    v.b = sc->b;
    v.lconst = sc->lconst;
  }
  return v;
}

static gmle_status px_init(gmle_context *ctx, int device, void **state) {
  *state = NULL;
  char why[1536];
  const gmle__cuda_module *m = load_module(why, sizeof why);
  if (!m)
    return no_module(ctx, why);
  return m->init(hctx(ctx), device, ctx->device_name, sizeof ctx->device_name,
                 &ctx->n_threads, state);
}

static void px_shutdown(void *state) {
  if (module && state)
    module->shutdown(state);
}

static gmle_status px_accumulate(gmle_context *ctx, const gmle__batch *b,
                                 gmle__partial *out) {
  const gmle__cuda_batch_view bv = batch_view(b);
  gmle__cuda_partial_view pv = {out->dim,  out->n_classes, out->gram_len,
                                out->mode, out->shift,     out->weight,
                                out->rows, out->sum,       out->gram};
  return module->accumulate(ctx->bstate, &bv, &pv);
}

/* EM's statistics (set in the table only when the module has the entry:
 * load_module), with the centre of their GEMM form as the CPU's. */
static gmle_status px_accumulate_resp(gmle_context *ctx,
                                      const gmle__resp_batch *b,
                                      const gmle__resp_out *out) {
  const size_t D = b->dim, G = b->n_comp;
  double *centre = gmle__malloc((G + 1) * D * sizeof(double));
  GMLE_RETURN_IF(!centre, ctx, GMLE_E_OUT_OF_MEMORY,
                 "CUDA: EM: out of memory (%zu components x %zu features)", G,
                 D);
  double *kshift = centre + D;
  gmle__em_centre(b->shift, G, D, centre, kshift);
  const gmle__cuda_resp_view bv = {.x = b->x,
                                   .dtype = b->dtype,
                                   .n_rows = b->n_rows,
                                   .row_stride = b->row_stride,
                                   .dim = D,
                                   .n_comp = G,
                                   .resp = b->resp,
                                   .centre = centre,
                                   .kshift = kshift,
                                   .diag = b->diag};
  const gmle__cuda_resp_out_view ov = {out->weight, out->sum, out->gram,
                                       out->rows};
  const gmle_status s = module->accumulate_resp(ctx->bstate, &bv, &ov);
  gmle__free(centre);
  return s;
}

/* The model's device copy: built by the core at the first score on this
 * context (gmle__model_backend_data), kept in the model, freed through
 * free_model with the state that built it. */
static gmle_status px_prepare_model(gmle_context *ctx, const gmle_model *m,
                                    void **data) {
  const gmle__cuda_model_view mv = model_view(m);
  return module->prepare_model(ctx->bstate, &mv, data);
}

static void px_free_model(void *state, void *data) {
  if (module && data)
    module->free_model(state, data);
}

static gmle_status px_score(gmle_context *ctx, const gmle_model *m,
                            const void *model_data, const gmle__batch *b,
                            gmle_output what, gmle_dtype out_dtype, void *out) {
  const gmle__cuda_model_view mv = model_view(m);
  const gmle__cuda_batch_view bv = batch_view(b);
  return module->score(ctx->bstate, &mv, model_data, &bv, what, out_dtype, out);
}

static gmle_status px_synchronize(gmle_context *ctx) {
  return module->synchronize(ctx->bstate);
}

static gmle_status px_list_devices(gmle_context *ctx, gmle_device_info *out,
                                   size_t cap, size_t *n_found) {
  *n_found = 0;
  char why[1536];
  const gmle__cuda_module *m = load_module(why, sizeof why);
  if (!m)
    return no_module(ctx, why);
  return m->list_devices(hctx(ctx), out, cap, n_found);
}

/* Not const: accumulate_resp is filled in when the loaded module provides
 * it (load_module); NULL until then, so the core's fallback serves a
 * module of ABI 4.0. */
gmle__backend_ops gmle__cuda_backend = {
    .id = GMLE_BACKEND_CUDA,
    .name = "cuda",
    .init = px_init,
    .shutdown = px_shutdown,
    .accumulate = px_accumulate,
    .prepare_model = px_prepare_model,
    .free_model = px_free_model,
    .score = px_score,
    .synchronize = px_synchronize,
    .list_devices = px_list_devices,
};

/* ------------------------------------------------------------------------ */
/* include/gmle_cuda.h                                                      */
/* ------------------------------------------------------------------------ */

static int is_cuda(const gmle_context *ctx) {
  return ctx && module && ctx->ops == &gmle__cuda_backend && ctx->bstate;
}

static void result_free(gmle__cuda_dev_result *r) {
  free(r->class_of);
  free(r->shift);
  free(r->weight);
  free(r->rows);
  free(r->sum);
  free(r->gram);
}

/* Commit a device batch's partial statistics into st (src/stats.c). */
static gmle_status commit(gmle_stats *st, const gmle__cuda_dev_result *r,
                          uint64_t batch) {
  const gmle__present pp = {r->n_present, r->class_of, r->shift, r->weight,
                            r->sum,       r->gram,     r->rows};
  return gmle__stats_commit(st, &pp, batch);
}

gmle_status gmle_cuda_stats_add_device(gmle_stats *st, const void *d_x,
                                       gmle_dtype dtype, size_t n_rows,
                                       size_t row_stride,
                                       const int32_t *d_labels,
                                       const double *d_weights) {
  if (!st)
    return GMLE_E_INVALID_ARG;
  gmle_context *ctx = st->ctx;
  gmle__clear_error(ctx);
  GMLE_RETURN_IF(!is_cuda(ctx), ctx, GMLE_E_UNSUPPORTED,
                 "cuda_stats_add_device: the statistics are on the %s "
                 "backend; device data needs a CUDA context",
                 gmle_backend_name(ctx->backend));
  GMLE_TRY(gmle__stats_check_batch(st, "cuda_stats_add_device", d_x, dtype,
                                   n_rows, row_stride, d_labels));
  if (n_rows == 0)
    return GMLE_OK;
  const uint64_t batch = st->n_batches;
  const gmle__cuda_dev_batch b = {.x = d_x,
                                  .dtype = dtype,
                                  .n_rows = n_rows,
                                  .row_stride = row_stride,
                                  .dim = st->dim,
                                  .n_classes = st->n_classes,
                                  .labels = d_labels,
                                  .weights = d_weights,
                                  .mode = st->mode,
                                  .gram_len = st->gram_len,
                                  .shift = st->shift,
                                  .has_shift = st->has_shift,
                                  .batch_index = batch};
  gmle__cuda_dev_result r;
  memset(&r, 0, sizeof r);
  gmle_status s = module->add_device(ctx->bstate, &b, &r);
  if (s == GMLE_OK)
    s = commit(st, &r, batch);
  result_free(&r);
  if (s != GMLE_OK)
    return s;
  gmle__stats_batch_done(st, dtype);
  return GMLE_OK;
}

gmle_status gmle_cuda_score_device(gmle_context *ctx, const gmle_model *m,
                                   const void *d_x, gmle_dtype dtype,
                                   size_t n_rows, size_t row_stride,
                                   gmle_output what, gmle_dtype out_dtype,
                                   void *d_out) {
  if (!ctx)
    return GMLE_E_INVALID_ARG;
  gmle__clear_error(ctx);
  GMLE_RETURN_IF(!is_cuda(ctx), ctx, GMLE_E_UNSUPPORTED,
                 "cuda_score_device: the context is on the %s backend; "
                 "device data needs a CUDA context",
                 gmle_backend_name(ctx->backend));
  GMLE_RETURN_IF(!m, ctx, GMLE_E_INVALID_ARG,
                 "cuda_score_device: model is "
                 "NULL");
  GMLE_RETURN_IF(m->ctx != ctx, ctx, GMLE_E_INVALID_ARG,
                 "cuda_score_device: the model was made on another context");
  GMLE_RETURN_IF(dtype != GMLE_F32 && dtype != GMLE_F64, ctx,
                 GMLE_E_INVALID_ARG, "cuda_score_device: unknown dtype %d",
                 (int)dtype);
  GMLE_RETURN_IF(what != GMLE_OUT_LOGLIK && what != GMLE_OUT_JOINT &&
                     what != GMLE_OUT_LOGPOST && what != GMLE_OUT_LABEL &&
                     what != GMLE_OUT_DENSITY,
                 ctx, GMLE_E_INVALID_ARG,
                 "cuda_score_device: unknown output kind %d", (int)what);
  GMLE_RETURN_IF(what != GMLE_OUT_LABEL && out_dtype != GMLE_F32 &&
                     out_dtype != GMLE_F64,
                 ctx, GMLE_E_INVALID_ARG,
                 "cuda_score_device: out_dtype %d is neither GMLE_F32 nor "
                 "GMLE_F64",
                 (int)out_dtype);
  GMLE_RETURN_IF(row_stride < m->dim, ctx, GMLE_E_INVALID_ARG,
                 "cuda_score_device: row_stride %zu is smaller than the "
                 "model's %zu features",
                 row_stride, m->dim);
  size_t bytes;
  GMLE_RETURN_IF(
      gmle__mul3_size(n_rows, row_stride, gmle__dtype_size(dtype), &bytes) ||
          gmle__mul3_size(n_rows, m->n_classes, 8, &bytes),
      ctx, GMLE_E_TOO_LARGE, "cuda_score_device: %zu rows overflow size_t",
      n_rows);
  if (n_rows == 0)
    return GMLE_OK;
  GMLE_RETURN_IF(!d_x || !d_out, ctx, GMLE_E_INVALID_ARG,
                 "cuda_score_device: %s is NULL", d_x ? "out" : "x");
  /* The model's device copy, as gmle_score gets it (built at first use). */
  void *data;
  int transient;
  GMLE_TRY(gmle__model_backend_data(ctx, ctx->ops, ctx->bstate, m, &data,
                                    &transient));
  const gmle__cuda_model_view mv = model_view(m);
  const gmle_status s =
      module->score_device(ctx->bstate, &mv, data, d_x, dtype, n_rows,
                           row_stride, what, out_dtype, d_out);
  if (transient)
    px_free_model(ctx->bstate, data);
  return s;
}

gmle_status gmle_cuda_devices(gmle_cuda_device_info *out, size_t max,
                              size_t *n_found, char *why, size_t why_len) {
  char buf[1536];
  if (n_found)
    *n_found = 0;
  const gmle__cuda_module *m = load_module(buf, sizeof buf);
  if (!m) {
    if (why && why_len)
      snprintf(why, why_len, "cannot load the CUDA backend: %s", buf);
    return GMLE_E_NO_DEVICE;
  }
  return m->devices(out, max, n_found, why, why_len);
}

int gmle_cuda_context_device(const gmle_context *ctx) {
  return is_cuda(ctx) ? module->device_index(ctx->bstate) : -1;
}

gmle_status gmle__cuda_inject_fault_at(gmle_context *ctx, gmle_cuda_fault kind,
                                       unsigned sites, long k) {
  if (!ctx)
    return GMLE_E_INVALID_ARG;
  gmle__clear_error(ctx);
  GMLE_RETURN_IF(!is_cuda(ctx), ctx, GMLE_E_UNSUPPORTED,
                 "cuda_inject_fault: the context is on the %s backend",
                 gmle_backend_name(ctx->backend));
  return module->inject_fault(ctx->bstate, kind, sites, k);
}

gmle_status gmle__cuda_inject_fault(gmle_context *ctx, gmle_cuda_fault kind,
                                    long k) {
  return gmle__cuda_inject_fault_at(ctx, kind, GMLE_CUDA_SITE_ALL, k);
}

long gmle__cuda_call_count(const gmle_context *ctx) {
  return is_cuda(ctx) ? module->call_count(ctx->bstate) : -1;
}
