/*
 * fuzz_csv.c -- the CSV and text readers (src/io_csv.c) on the input as a
 * file, under the option sets the gmle command uses: detection of the
 * delimiter and the header, a label column by index and by name, a labels
 * file, a fixed blank delimiter with no header. Each is read to the end
 * twice with different batch sizes, which must read the same rows, values
 * and labels. Inputs that start like a .npy file are left to fuzz_npy.
 */
#include "fuzzutil.h"

#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 0 && data[0] == 0x93)
    return 0;
  int fd = fz_memfd(data, size);
  const size_t small = 1 + size % 3;
  gmle_reader_options opt;

  gmle_reader_options_init(&opt);
  fz_read_twice(fd, "fuzz.csv", &opt, small, 1000);

  gmle_reader_options_init(&opt);
  opt.label_column = "0";
  fz_read_twice(fd, "fuzz.csv", &opt, 1000, small);

  gmle_reader_options_init(&opt);
  opt.label_column = "label";
  opt.header = 1;
  fz_read_twice(fd, "fuzz.csv", &opt, small, 7);

  gmle_reader_options_init(&opt);
  opt.labels_only = 1;
  fz_read_twice(fd, "fuzz-labels.txt", &opt, small, 1000);

  gmle_reader_options_init(&opt);
  opt.labels_only = 1;
  opt.label_column = "1";
  fz_read_twice(fd, "fuzz-labels.csv", &opt, 1000, small);

  gmle_reader_options_init(&opt);
  opt.delimiter = ' ';
  opt.header = 0;
  fz_read_twice(fd, "fuzz.txt", &opt, small, 1000);

  close(fd);
  return 0;
}
