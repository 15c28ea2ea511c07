/* alloc.c -- every allocation of the library goes through here, so that the
 * test suite can make the k-th one fail. */
#include "internal.h"
#include "testing.h"

#include <stdatomic.h>
#include <string.h>

static atomic_long fail_after; /* 0: off; k: the k-th allocation fails */
static atomic_long alloc_count;

void gmle__test_fail_alloc_after(long k) {
  atomic_store(&alloc_count, 0);
  atomic_store(&fail_after, k);
}

long gmle__test_alloc_count(void) { return atomic_load(&alloc_count); }

static int should_fail(void) {
  long n = atomic_fetch_add(&alloc_count, 1) + 1;
  long k = atomic_load(&fail_after);
  return k > 0 && n == k;
}

void *gmle__malloc(size_t n) {
  if (should_fail())
    return NULL;
  return malloc(n ? n : 1);
}

void *gmle__calloc(size_t count, size_t size) {
  if (should_fail())
    return NULL;
  if (count == 0 || size == 0)
    return calloc(1, 1);
  return calloc(count, size);
}

void *gmle__aligned_alloc(size_t n) {
  if (should_fail())
    return NULL;
  void *p = NULL;
  if (posix_memalign(&p, 64, n ? n : 64) != 0)
    return NULL;
  return p;
}

void gmle__free(void *p) { free(p); }
void gmle__aligned_free(void *p) { free(p); }

int gmle__mul_size(size_t a, size_t b, size_t *out) {
  if (a != 0 && b > SIZE_MAX / a)
    return -1;
  *out = a * b;
  return 0;
}

int gmle__mul3_size(size_t a, size_t b, size_t c, size_t *out) {
  size_t ab;
  if (gmle__mul_size(a, b, &ab))
    return -1;
  return gmle__mul_size(ab, c, out);
}

size_t gmle__dtype_size(gmle_dtype t) {
  switch (t) {
  case GMLE_F32:
    return 4;
  case GMLE_F64:
    return 8;
  }
  return 0;
}
