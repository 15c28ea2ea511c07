/* cuda_abi3_module.c -- a stand-in for a CUDA module built for ABI 3 (the
 * table before cuda_abi.h's versioned one: it began with one ABI number, a
 * gmle version and struct sizes). test_cuda.abi3_module points
 * GMLE_CUDA_MODULE at it to check that the loader refuses a module of
 * another ABI with GMLE_E_NO_DEVICE naming both versions, reading nothing
 * past the table's first fields. */
#include <stddef.h>

struct abi3_table {
  unsigned abi, gmle_version;
  size_t layout[8];
  const void *ops;
};

static const struct abi3_table table = {3, 0, {0}, NULL};

__attribute__((visibility("default"))) const void *
gmle__cuda_module_entry_v1(const void *host);

const void *gmle__cuda_module_entry_v1(const void *host) {
  (void)host;
  return &table;
}
