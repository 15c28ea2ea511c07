/*
 * fuzz_csv.c -- the CSV and text readers (io/io_csv.c) on the input as a
 * file, under the option sets the gmle command uses: detection of the
 * delimiter and the header, a label column by index and by name, a labels
 * file, a fixed blank delimiter with no header. Each is read to the end
 * twice with different batch sizes, which must read the same rows, values
 * and labels. Inputs that start like a .npy file are left to fuzz_npy.
 */
#include "fuzzutil.h"

#include <unistd.h>

/* The option sets: delimiter, header, label column, labels_only, name. */
static const struct {
  char delimiter;
  int header;
  const char *label_column;
  int labels_only;
  const char *name;
} sets[] = {
    {0, -1, NULL, 0, "fuzz.csv"},       {0, -1, "0", 0, "fuzz.csv"},
    {0, 1, "label", 0, "fuzz.csv"},     {0, -1, NULL, 1, "fuzz-labels.txt"},
    {0, -1, "1", 1, "fuzz-labels.csv"}, {' ', 0, NULL, 0, "fuzz.txt"},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 0 && data[0] == 0x93)
    return 0;
  int fd = fz_memfd(data, size);
  /* Small batches (1..3 rows) and large ones, in both orders. */
  const size_t small = 1 + size % 3;
  for (size_t k = 0; k < sizeof sets / sizeof *sets; k++) {
    gmle_reader_options opt;
    gmle_reader_options_init(&opt);
    opt.delimiter = sets[k].delimiter;
    opt.header = sets[k].header;
    opt.label_column = sets[k].label_column;
    opt.labels_only = sets[k].labels_only;
    fz_read_twice(fd, sets[k].name, &opt, k % 2 ? 1000 : small,
                  k % 2 ? small : 1000);
  }
  close(fd);
  return 0;
}
