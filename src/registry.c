/* registry.c -- the only place that knows which backends exist and the only
 * place that reads GMLE_BACKEND / GMLE_DEVICE. */
#include "internal.h"

#include <limits.h>
#include <string.h>

static const gmle__backend_ops *const backends[] = {
/* AUTO order: CUDA, then OpenCL, then CPU. Device backends are added
 * here, one line each, as they land. */
#ifdef GMLE_HAVE_CUDA
    &gmle__cuda_backend,
#endif
#ifdef GMLE_HAVE_OPENCL
    &gmle__opencl_backend,
#endif
    &gmle__cpu_backend,
};

const gmle__backend_ops *gmle__backend_lookup(gmle_backend b) {
  for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++)
    if (backends[i]->id == b)
      return backends[i];
  return NULL;
}

/* The host backend, for calls a device backend declines (src/score.c). */
const gmle__backend_ops *gmle__backend_host_fallback(void) {
  return &gmle__cpu_backend;
}

gmle_status gmle__backend_fallback_state(gmle_context *ctx, void **state) {
  *state = ctx->fallback_state;
  if (*state)
    return GMLE_OK;
  /* init describes its device into the context it is given: a scratch one,
   * so that ctx keeps its own description; only an error is carried over. */
  static const gmle_context blank;
  gmle_context *tmp = gmle__malloc(sizeof *tmp);
  GMLE_RETURN_IF(!tmp, ctx, GMLE_E_OUT_OF_MEMORY,
                 "score: out of memory (host fallback backend)");
  *tmp = blank;
  gmle_status s = gmle__backend_host_fallback()->init(tmp, -1, state);
  if (s != GMLE_OK)
    gmle__error(ctx, s, "score: host fallback backend: %s", tmp->err);
  else
    ctx->fallback_state = *state;
  gmle__free(tmp);
  return s;
}

void *gmle__backend_state(const gmle_context *ctx,
                          const gmle__backend_ops *ops) {
  return ops == ctx->ops ? ctx->bstate : ctx->fallback_state;
}

void gmle__backend_score_end(gmle_context *ctx) {
  const gmle__backend_ops *host = gmle__backend_host_fallback();
  if (ctx->ops && ctx->ops->score_end)
    ctx->ops->score_end(ctx->bstate);
  if (ctx->fallback_state && host->score_end)
    host->score_end(ctx->fallback_state);
}

int gmle_backend_compiled(gmle_backend b) {
  return b == GMLE_BACKEND_AUTO || gmle__backend_lookup(b) != NULL;
}

const char *gmle_backend_name(gmle_backend b) {
  switch (b) {
  case GMLE_BACKEND_AUTO:
    return "auto";
  case GMLE_BACKEND_CPU:
    return "cpu";
  case GMLE_BACKEND_OPENCL:
    return "opencl";
  case GMLE_BACKEND_CUDA:
    return "cuda";
  }
  return "unknown";
}

gmle_status gmle_backend_parse(const char *name, gmle_backend *out) {
  static const gmle_backend all[] = {GMLE_BACKEND_AUTO, GMLE_BACKEND_CPU,
                                     GMLE_BACKEND_OPENCL, GMLE_BACKEND_CUDA};
  if (!name || !out)
    return GMLE_E_INVALID_ARG;
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
    if (strcmp(name, gmle_backend_name(all[i])) == 0) {
      *out = all[i];
      return GMLE_OK;
    }
  return GMLE_E_INVALID_ARG;
}

static gmle_status try_backend(gmle_context *ctx, const gmle__backend_ops *ops,
                               int device) {
  void *state = NULL;
  gmle_status s = ops->init(ctx, device, &state);
  if (s == GMLE_OK) {
    ctx->ops = ops;
    ctx->backend = ops->id;
    ctx->bstate = state;
  }
  return s;
}

/* A device index from the environment: decimal digits only, below
 * INT_MAX; atoi would take "abc" as 0 and "1x" as 1 and pick a device the
 * user did not name. */
static int parse_device(const char *text, int *out) {
  long v = 0;
  for (const char *p = text; *p; p++) {
    if (*p < '0' || *p > '9' || v > (INT_MAX - 9) / 10)
      return 0;
    v = v * 10 + (*p - '0');
  }
  *out = (int)v;
  return 1;
}

static gmle_status create_context(gmle_backend b, int device,
                                  gmle_context **out) {
  if (!out)
    return GMLE_E_INVALID_ARG;
  *out = NULL;
  gmle_context *ctx = gmle__calloc(1, sizeof *ctx);
  if (!ctx)
    return GMLE_E_OUT_OF_MEMORY;
  *out = ctx;
  if (b == GMLE_BACKEND_AUTO) {
    const char *env = getenv("GMLE_BACKEND");
    if (env && *env && gmle_backend_parse(env, &b) != GMLE_OK)
      return gmle__error(ctx, GMLE_E_INVALID_ARG,
                         "GMLE_BACKEND=%s is not one of auto, cpu, opencl, "
                         "cuda",
                         env);
    const char *denv = getenv("GMLE_DEVICE");
    if (denv && *denv && device < 0 && !parse_device(denv, &device))
      return gmle__error(ctx, GMLE_E_INVALID_ARG,
                         "GMLE_DEVICE=%s is not a device index (a "
                         "non-negative decimal integer)",
                         denv);
  }
  if (b != GMLE_BACKEND_AUTO) {
    const gmle__backend_ops *ops = gmle__backend_lookup(b);
    if (!ops)
      return gmle__error(ctx, GMLE_E_NO_DEVICE,
                         "the %s backend is not compiled into this build of "
                         "gmle",
                         gmle_backend_name(b));
    return try_backend(ctx, ops, device);
  }
  /* AUTO: first that works, in registry order; one notice on fallback. */
  char why[GMLE__ERR_LEN] = "";
  for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++) {
    ctx->auto_select = 1;
    gmle_status s = try_backend(ctx, backends[i], device);
    ctx->auto_select = 0;
    if (s == GMLE_OK) {
      if (why[0])
        snprintf(ctx->notice, sizeof ctx->notice,
                 "falling back to the %s backend: %.400s", backends[i]->name,
                 why);
      gmle__clear_error(ctx);
      return GMLE_OK;
    }
    snprintf(why, sizeof why, "%s", ctx->err);
  }
  return GMLE_E_NO_DEVICE;
}

gmle_status gmle_context_create(gmle_backend b, int device,
                                gmle_context **out) {
  gmle_status s = create_context(b, device, out);
  /* After the backend's own start-up, which maps memory too. */
  if (s == GMLE_OK)
    s = gmle__blas_room(*out);
  return s;
}

void gmle_context_free(gmle_context *ctx) {
  if (!ctx)
    return;
  if (ctx->ops && ctx->ops->shutdown)
    ctx->ops->shutdown(ctx->bstate);
  const gmle__backend_ops *host = gmle__backend_host_fallback();
  if (ctx->fallback_state && host->shutdown)
    host->shutdown(ctx->fallback_state);
  gmle__free(ctx);
}

gmle_backend gmle_context_backend(const gmle_context *ctx) {
  return ctx ? ctx->backend : GMLE_BACKEND_AUTO;
}

const char *gmle_context_device_name(const gmle_context *ctx) {
  return ctx ? ctx->device_name : "";
}

void gmle_context_set_log(gmle_context *ctx, gmle_log_fn fn, void *user) {
  if (!ctx)
    return;
  ctx->log_fn = fn;
  ctx->log_user = user;
  if (fn && ctx->notice[0]) {
    gmle__log(ctx, GMLE_LOG_INFO, "%s", ctx->notice);
    ctx->notice[0] = '\0';
  }
}

unsigned gmle_version_number(void) { return GMLE_VERSION_NUMBER; }

const char *gmle_version_string(void) {
#define GMLE__STR2(x) #x
#define GMLE__STR(x) GMLE__STR2(x)
  return GMLE__STR(GMLE_VERSION_MAJOR) "." GMLE__STR(
      GMLE_VERSION_MINOR) "." GMLE__STR(GMLE_VERSION_PATCH);
}
