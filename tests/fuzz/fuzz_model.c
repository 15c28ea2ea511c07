/*
 * fuzz_model.c -- the model file reader (io/model_file.c over io/zip.c
 * and io/npy.c), from memory. Every input is loaded as it is, and once more
 * with the CRC-32 of every zip member it can locate recomputed, so that
 * mutations get past the checksums to the parsing and validation behind
 * them (the same in the libFuzzer build and in the ctest replay: the
 * library is not changed for fuzzing). A model that loads is checked with
 * fz_check_model (getters and scoring).
 */
#include "fuzzutil.h"

#include "internal.h"
#include "io_mem.h"
#include "npy.h"
#include "zip.h"

#include <stdlib.h>
#include <string.h>

/* Recompute the CRC-32 of every member found through the end record and
 * the central directory, in the central and the local header. Returns 1
 * when a byte changed. Bounds are checked; anything odd is left alone. */
static int fix_crcs(unsigned char *z, size_t n) {
  if (n < 22)
    return 0;
  size_t eocd = n - 22;
  while (gmle__ld_le32(z + eocd) != 0x06054b50u) {
    if (eocd == 0 || n - eocd > 22 + 65535)
      return 0;
    eocd--;
  }
  const size_t count = gmle__ld_le16(z + eocd + 10);
  size_t cd = gmle__ld_le32(z + eocd + 16);
  int changed = 0;
  for (size_t i = 0; i < count && i < 256; i++) {
    if (cd > n || n - cd < 46 || gmle__ld_le32(z + cd) != 0x02014b50u)
      break;
    const size_t size = gmle__ld_le32(z + cd + 20);
    const size_t loc = gmle__ld_le32(z + cd + 42);
    const size_t next = cd + 46 + gmle__ld_le16(z + cd + 28) +
                        gmle__ld_le16(z + cd + 30) + gmle__ld_le16(z + cd + 32);
    if (loc <= n && n - loc >= 30 && gmle__ld_le32(z + loc) == 0x04034b50u) {
      const size_t data =
          loc + 30 + gmle__ld_le16(z + loc + 26) + gmle__ld_le16(z + loc + 28);
      if (data <= n && size <= n - data) {
        const uint32_t crc =
            gmle__crc32(gmle__crc32(0, NULL, 0), z + data, size);
        if (gmle__ld_le32(z + cd + 16) != crc ||
            gmle__ld_le32(z + loc + 14) != crc)
          changed = 1;
        gmle__st_le32(z + cd + 16, crc);
        gmle__st_le32(z + loc + 14, crc);
      }
    }
    cd = next;
  }
  return changed;
}

static void load(const unsigned char *data, size_t size) {
  gmle_context *ctx = fz_context();
  gmle_model *m = NULL;
  gmle_status s = gmle__model_load_mem(ctx, "fuzz.npz", data, size, &m);
  if (!fz_outcome(s, m, "gmle__model_load_mem"))
    return;
  fz_check_model(m);
  gmle_model_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  load(data, size);
  unsigned char *copy = malloc(size ? size : 1);
  FZ_REQUIRE(copy != NULL, "out of memory in the harness");
  memcpy(copy, data, size);
  if (fix_crcs(copy, size))
    load(copy, size);
  free(copy);
  return 0;
}
