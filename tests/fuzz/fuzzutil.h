/*
 * fuzzutil.h -- what the fuzzing harnesses (tests/fuzz/fuzz_*.c) share.
 *
 * Each harness defines LLVMFuzzerTestOneInput and is linked either with
 * libFuzzer (clang, -DGMLE_FUZZ=ON) or with replay_main.c, which runs it on
 * the files of a corpus. A harness checks invariants of the library and
 * calls FZ_REQUIRE, which aborts (so that libFuzzer reports the input) when
 * one does not hold. The library itself must never abort, crash, leak or
 * hang on any input.
 */
#ifndef GMLE_FUZZUTIL_H
#define GMLE_FUZZUTIL_H

#include "gmle_io.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Print the invariant, file:line and the context's last message, then
 * abort. */
void fz_fail(const char *file, int line, const char *what, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5), noreturn))
#endif
    ;

#define FZ_REQUIRE(cond, ...)                                                  \
  do {                                                                         \
    if (!(cond))                                                               \
      fz_fail(__FILE__, __LINE__, #cond, __VA_ARGS__);                         \
  } while (0)

/* The CPU context every harness uses, created on first use and kept for
 * the life of the process. */
gmle_context *fz_context(void);

/* After a call that returned s and, through an out-parameter, `out`: on
 * failure out must be NULL and the context must hold a message naming what
 * went wrong. Returns 1 when s is GMLE_OK (then out must be set). */
int fz_outcome(gmle_status s, const void *out, const char *call);

/* A new memory file descriptor (memfd, a regular file in RAM) holding the
 * `size` bytes at `data`; aborts if the system refuses. */
int fz_memfd(const uint8_t *data, size_t size);

/* Open a reader on a duplicate of fd (options opt) and read it to the end
 * twice, in batches of batch1 rows and then, after a rewind, of batch2
 * rows, checking that both passes give the same rows, values and labels
 * (or both fail). Returns the status of opening. */
gmle_status fz_read_twice(int fd, const char *name,
                          const gmle_reader_options *opt, size_t batch1,
                          size_t batch2);

/* Check a model (loaded or fitted): every getter answers for every class,
 * and scoring a few finite rows (the class means, the origin, a point off
 * the first mean) gives no NaN, no +Inf, log-posteriors that sum to 1,
 * labels that pick the largest joint score, and densities equal to the
 * log-sum-exp of the joint scores. */
void fz_check_model(const gmle_model *m);

/* FNV-1a over bytes, chained through h. */
uint64_t fz_hash(uint64_t h, const void *p, size_t n);
#define FZ_HASH_INIT 0xcbf29ce484222325ull

#endif /* GMLE_FUZZUTIL_H */
