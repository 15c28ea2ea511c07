/* testing.h -- the core's test hooks, for the test suites only (linked with
 * gmle_internal). Not installed and not exported by libgmle. The data-file
 * layer's in-memory loaders for the fuzz harnesses are in io/io_mem.h. */
#ifndef GMLE_TESTING_H
#define GMLE_TESTING_H

/* Make the k-th allocation from now fail (k >= 1); 0 disables
 * (src/alloc.c). */
void gmle__test_fail_alloc_after(long k);
/* The number of allocations seen since the last gmle__test_fail_alloc_after:
 * a sweep over k stops once k exceeds the count of an undisturbed call. */
long gmle__test_alloc_count(void);

#endif /* GMLE_TESTING_H */
