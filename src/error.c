/* error.c -- status strings and the per-context error message and location.
 */
#include "internal.h"

#include <string.h>

const char *gmle_status_string(gmle_status s) {
  switch (s) {
#define GMLE__STATUS_TEXT(name, value, text)                                   \
  case name:                                                                   \
    return text;
    GMLE_STATUS_TABLE(GMLE__STATUS_TEXT)
#undef GMLE__STATUS_TEXT
  }
  return "unknown status";
}

const char *gmle_status_name(gmle_status s) {
  switch (s) {
#define GMLE__STATUS_NAME(name, value, text)                                   \
  case name:                                                                   \
    return #name;
    GMLE_STATUS_TABLE(GMLE__STATUS_NAME)
#undef GMLE__STATUS_NAME
  }
  return "GMLE_E_UNKNOWN";
}

/* The message buffer is logically mutable state of the context even when the
 * call that fails holds a const pointer to an object on it (a const stats or
 * model). */
static char *err_buf(const gmle_context *ctx) {
  return ((gmle_context *)(uintptr_t)ctx)->err;
}

static gmle_error_location *err_loc(const gmle_context *ctx) {
  return &((gmle_context *)(uintptr_t)ctx)->err_loc;
}

gmle_status gmle__verror(const gmle_context *ctx, gmle_status s,
                         const char *fmt, va_list ap) {
  if (ctx) {
    char *buf = err_buf(ctx);
    vsnprintf(buf, GMLE__ERR_LEN, fmt, ap);
    memset(err_loc(ctx), 0, sizeof *err_loc(ctx));
  }
  return s;
}

gmle_status gmle__error(const gmle_context *ctx, gmle_status s, const char *fmt,
                        ...) {
  va_list ap;
  va_start(ap, fmt);
  gmle__verror(ctx, s, fmt, ap);
  va_end(ap);
  return s;
}

gmle_status gmle__verror_at(const gmle_context *ctx, gmle_status s,
                            const gmle_error_location *loc, const char *fmt,
                            va_list ap) {
  gmle__verror(ctx, s, fmt, ap);
  if (ctx && loc)
    *err_loc(ctx) = *loc;
  return s;
}

gmle_status gmle__error_at(const gmle_context *ctx, gmle_status s,
                           const gmle_error_location *loc, const char *fmt,
                           ...) {
  va_list ap;
  va_start(ap, fmt);
  gmle__verror_at(ctx, s, loc, fmt, ap);
  va_end(ap);
  return s;
}

void gmle__clear_error(const gmle_context *ctx) {
  if (ctx) {
    err_buf(ctx)[0] = '\0';
    memset(err_loc(ctx), 0, sizeof *err_loc(ctx));
  }
}

void gmle__log(const gmle_context *ctx, gmle_log_level lvl, const char *fmt,
               ...) {
  if (!ctx || !ctx->log_fn)
    return;
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  ctx->log_fn(ctx->log_user, lvl, msg);
}

const char *gmle_context_error(const gmle_context *ctx) {
  return ctx ? ctx->err : "(null context)";
}

gmle_status gmle_context_error_location(const gmle_context *ctx,
                                        gmle_error_location *out) {
  if (!ctx || !out)
    return GMLE_E_INVALID_ARG;
  *out = ctx->err_loc;
  return GMLE_OK;
}
