/* options.c -- reading a caller's option struct that may be older or newer
 * than the library's: option structs lead with struct_size, so they can
 * grow without an ABI break (gmle.h, "Option structs"). */
#include "internal.h"

#include <string.h>

gmle_status gmle__read_options(const gmle_context *ctx, void *dst,
                               size_t dst_size, const void *src,
                               size_t first_size, const char *what) {
  size_t given;
  memcpy(&given, src, sizeof given); /* struct_size leads every struct */
  GMLE_RETURN_IF(given < first_size, ctx, GMLE_E_INVALID_ARG,
                 "%s: struct_size %zu is smaller than the first version's "
                 "(%zu): fill the options with their _init function first",
                 what, given, first_size);
  /* dst holds the defaults: take the members the caller's struct has. */
  memcpy(dst, src, given < dst_size ? given : dst_size);
  memcpy(dst, &dst_size, sizeof dst_size);
  return GMLE_OK;
}
