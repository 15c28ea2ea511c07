/*
 * check.h -- the minimal test harness of gmle's suites.
 *
 * A suite is one executable with TEST(name) functions registered in main()
 * through RUN(name). Each failing CHECK prints file:line and the values
 * compared, and the suite ends with "N passed, N failed". The exit status is
 * non-zero when anything failed.
 */
#ifndef GMLE_TEST_CHECK_H
#define GMLE_TEST_CHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check__failed_in_test;
static int check__passed, check__failed;
static const char *check__filter;

#define TEST(name) static void name(void)

#define RUN(name)                                                              \
  do {                                                                         \
    if (check__filter && !strstr(#name, check__filter))                        \
      break;                                                                   \
    check__failed_in_test = 0;                                                 \
    name();                                                                    \
    if (check__failed_in_test) {                                               \
      check__failed++;                                                         \
      printf("FAIL %s\n", #name);                                              \
    } else {                                                                   \
      check__passed++;                                                         \
      printf("ok   %s\n", #name);                                              \
    }                                                                          \
    fflush(stdout);                                                            \
  } while (0)

#define CHECK_INIT(argc, argv)                                                 \
  do {                                                                         \
    check__filter = (argc) > 1 ? (argv)[1] : NULL;                             \
  } while (0)

#define CHECK_DONE()                                                           \
  (printf("%d passed, %d failed\n", check__passed, check__failed),             \
   check__failed ? 1 : 0)

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      printf("  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);        \
      check__failed_in_test = 1;                                               \
    }                                                                          \
  } while (0)

#define CHECK_MSG(cond, ...)                                                   \
  do {                                                                         \
    if (!(cond)) {                                                             \
      printf("  %s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, #cond);        \
      printf(__VA_ARGS__);                                                     \
      printf("\n");                                                            \
      check__failed_in_test = 1;                                               \
    }                                                                          \
  } while (0)

/* Status equality, printing both names on failure. */
#define CHECK_STATUS(got, want)                                                \
  do {                                                                         \
    gmle_status check__g = (got), check__w = (want);                           \
    if (check__g != check__w) {                                                \
      printf("  %s:%d: %s returned %s, expected %s\n", __FILE__, __LINE__,     \
             #got, gmle_status_name(check__g), gmle_status_name(check__w));    \
      check__failed_in_test = 1;                                               \
    }                                                                          \
  } while (0)

/* |got - want| <= tol * max(1, |want|)  (relative, with absolute floor) */
#define CHECK_CLOSE(got, want, tol)                                            \
  do {                                                                         \
    double check__a = (double)(got), check__b = (double)(want);                \
    double check__d = fabs(check__a - check__b);                               \
    double check__s = fabs(check__b) > 1.0 ? fabs(check__b) : 1.0;             \
    if (!(check__d <= (tol) * check__s)) {                                     \
      printf("  %s:%d: %s = %.17g, expected %.17g (diff %.3g, tol %.3g)\n",    \
             __FILE__, __LINE__, #got, check__a, check__b, check__d,           \
             (double)(tol));                                                   \
      check__failed_in_test = 1;                                               \
    }                                                                          \
  } while (0)

/* |got - want| <= tol * |want| (pure relative) */
#define CHECK_REL(got, want, tol)                                              \
  do {                                                                         \
    double check__a = (double)(got), check__b = (double)(want);                \
    double check__d = fabs(check__a - check__b);                               \
    if (!(check__d <= (tol) * fabs(check__b))) {                               \
      printf("  %s:%d: %s = %.17g, expected %.17g (rel %.3g, tol %.3g)\n",     \
             __FILE__, __LINE__, #got, check__a, check__b,                     \
             check__d / fabs(check__b), (double)(tol));                        \
      check__failed_in_test = 1;                                               \
    }                                                                          \
  } while (0)

/* The message on a context contains a substring. */
#define CHECK_ERROR_HAS(ctx, sub)                                              \
  do {                                                                         \
    const char *check__m = gmle_context_error(ctx);                            \
    if (!strstr(check__m, (sub))) {                                            \
      printf("  %s:%d: error message \"%s\" lacks \"%s\"\n", __FILE__,         \
             __LINE__, check__m, (sub));                                       \
      check__failed_in_test = 1;                                               \
    }                                                                          \
  } while (0)

#endif
