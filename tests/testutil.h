/* testutil.h -- deterministic random data and float64 references for the
 * test suites. */
#ifndef GMLE_TESTUTIL_H
#define GMLE_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

typedef struct tu_rng {
  uint64_t s[4];
} tu_rng;

void tu_seed(tu_rng *r, uint64_t seed);
uint64_t tu_next(tu_rng *r);
double tu_uniform(tu_rng *r); /* [0, 1) */
double tu_normal(tu_rng *r);  /* N(0, 1) */

#endif
