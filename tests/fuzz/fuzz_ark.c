/* fuzz_ark.c -- libFuzzer target for the Kaldi archive parser (io/kaldi.c,
 * io/io_ark.c) through gmle_reader_open_ark_memory: every input is read
 * to the end as a feature archive (float32 and float64 batches, the
 * utterance records checked for consistency) and as an alignment archive,
 * then rewound and read again. Seeds in tests/fuzz/corpus/ark/; see
 * tests/fuzz/FUZZING.md. */
#include "fuzzutil.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Read r to the end in batches of 7 rows; abort() on an inconsistency the
 * API promises cannot happen (libFuzzer reports it as a crash). */
static void drain(gmle_reader *r) {
  size_t cols = gmle_reader_cols(r);
  size_t esz = gmle_reader_dtype(r) == GMLE_F32 ? 4 : 8;
  void *buf = cols ? malloc(7 * cols * esz) : NULL;
  const char *labels[7];
  if (cols && !buf)
    return;
  for (int pass = 0; pass < 2; pass++) {
    for (;;) {
      size_t n = 0;
      if (gmle_reader_read(r, buf, 7, &n, labels) != GMLE_OK || n == 0)
        break;
      const gmle_utterance *u;
      size_t nu = gmle_reader_utterances(r, &u), covered = 0;
      for (size_t i = 0; i < nu; i++) {
        if (u[i].row0 != covered || u[i].n_rows == 0 || !u[i].key[0])
          abort();
        covered += u[i].n_rows;
      }
      if (covered != n)
        abort();
      for (size_t i = 0; !cols && i < n; i++)
        if (!labels[i] || !labels[i][0])
          abort();
    }
    if (gmle_reader_rewind(r) != GMLE_OK)
      break;
  }
  free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  gmle_context *ctx = fz_context();
  for (int mode = 0; mode < 3; mode++) {
    gmle_reader_options o;
    gmle_reader_options_init(&o);
    o.labels_only = mode == 2;
    o.ark_dtype = mode == 1 ? GMLE_F64 : 0;
    gmle_reader *r = NULL;
    if (gmle_reader_open_ark_memory(ctx, data, size, &o, &r) == GMLE_OK) {
      drain(r);
      gmle_reader_free(r);
    } else if (r != NULL || gmle_context_error(ctx)[0] == '\0') {
      abort(); /* a failed open returns no reader and says why */
    }
  }
  return 0;
}
