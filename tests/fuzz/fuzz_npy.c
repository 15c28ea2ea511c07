/*
 * fuzz_npy.c -- the .npy reader: the header codec (io/npy.c) on the whole
 * input, and the streaming reader (io/io_npy_stream.c) on the input as a
 * file, for data and for labels (labels_only), each read to the end twice
 * with different batch sizes (a Fortran-order file is transposed batch by
 * batch, so the batch size must not change what is read).
 */
#include "fuzzutil.h"

#include "npy.h"

#include <stdlib.h>
#include <unistd.h>

static void check_header(const uint8_t *data, size_t size) {
  gmle_context *ctx = fz_context();
  gmle__npy_header h;
  gmle_status s =
      gmle__npy_parse_header(ctx, "fuzz.npy", data, size, (uint64_t)size, &h);
  if (s != GMLE_OK) {
    FZ_REQUIRE(gmle_context_error(ctx)[0] != '\0',
               "header refused (%s) without a message", gmle_status_name(s));
    return;
  }
  /* The data lies within the input, and the sizes agree. */
  FZ_REQUIRE(h.header_len <= size && h.data_bytes <= size - h.header_len,
             "header %zu + data %zu bytes in a %zu-byte file", h.header_len,
             h.data_bytes, size);
  FZ_REQUIRE(h.ndim <= GMLE__NPY_MAX_NDIM, "%zu dimensions", h.ndim);
  size_t n = 1;
  for (size_t k = 0; k < h.ndim; k++)
    n *= h.shape[k];
  FZ_REQUIRE(n == h.n_elements && n * h.itemsize == h.data_bytes,
             "shape product %zu, n_elements %zu, itemsize %zu, data_bytes "
             "%zu",
             n, h.n_elements, h.itemsize, h.data_bytes);
  if (!gmle__npy_is_numeric(&h) || n == 0)
    return;
  /* Whole-array conversion (C order whatever fortran_order says). */
  double *f = malloc(n * sizeof *f);
  int64_t *i = malloc(n * sizeof *i);
  FZ_REQUIRE(f && i, "out of memory in the harness");
  const unsigned char *payload = data + h.header_len;
  gmle__npy_array_to_f64(&h, payload, f);
  size_t bad = gmle__npy_array_to_i64(&h, payload, i);
  FZ_REQUIRE(bad <= n, "first bad element %zu of %zu", bad, n);
  /* Elements that are exact integers agree with their float64 value (up
   * to 2^53, where float64 rounds). */
  for (size_t k = 0; k < bad; k++)
    FZ_REQUIRE(
        (double)i[k] == f[k] || i[k] > (1ll << 53) || i[k] < -(1ll << 53),
        "element %zu: int64 %lld, float64 %.17g", k, (long long)i[k], f[k]);
  free(f);
  free(i);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  check_header(data, size);
  int fd = fz_memfd(data, size);
  const size_t small = 1 + size % 5;
  gmle_reader_options opt;
  gmle_reader_options_init(&opt);
  fz_read_twice(fd, "fuzz.npy", &opt, small, 4096);
  opt.labels_only = 1;
  fz_read_twice(fd, "fuzz-labels.npy", &opt, 4096, small);
  close(fd);
  return 0;
}
