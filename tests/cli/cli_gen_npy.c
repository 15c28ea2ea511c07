/* cli_gen_npy.c -- test helper: write a large .npy of normal random numbers
 * without holding it in memory (and without numpy).
 *   cli_gen_npy PATH ROWS COLS f32|f64 [SEED]
 * Column j has mean j and standard deviation 1 + j/10. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t state;

static double uniform01(void) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return ((double)(z >> 11) + 0.5) / 9007199254740992.0;
}

static double normal(void) {
  double u = uniform01(), v = uniform01();
  return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: cli_gen_npy PATH ROWS COLS f32|f64 [SEED]\n");
    return 2;
  }
  unsigned long long rows = strtoull(argv[2], NULL, 10);
  unsigned long cols = strtoul(argv[3], NULL, 10);
  int f32 = strcmp(argv[4], "f32") == 0;
  state = argc > 5 ? strtoull(argv[5], NULL, 10) : 1;
  FILE *f = fopen(argv[1], "wb");
  if (!f || cols == 0) {
    perror(argv[1]);
    return 2;
  }
  char hdr[128];
  int len = snprintf(hdr, sizeof hdr,
                     "{'descr': '<%s', 'fortran_order': False, 'shape': "
                     "(%llu, %lu), }",
                     f32 ? "f4" : "f8", rows, cols);
  int total = 10 + len + 1;
  int pad = (64 - total % 64) % 64;
  fwrite("\x93NUMPY\x01\x00", 1, 8, f);
  unsigned hl = (unsigned)(len + pad + 1);
  unsigned char le[2] = {(unsigned char)(hl & 0xff), (unsigned char)(hl >> 8)};
  fwrite(le, 1, 2, f);
  fwrite(hdr, 1, (size_t)len, f);
  for (int i = 0; i < pad; i++)
    fputc(' ', f);
  fputc('\n', f);
  enum { B = 4096 };
  float *bf = malloc(B * cols * sizeof *bf);
  double *bd = malloc(B * cols * sizeof *bd);
  for (unsigned long long r = 0; r < rows; r += B) {
    size_t n = rows - r < B ? (size_t)(rows - r) : B;
    for (size_t i = 0; i < n; i++)
      for (size_t j = 0; j < cols; j++) {
        double v = (double)j + (1.0 + (double)j / 10.0) * normal();
        if (f32)
          bf[i * cols + j] = (float)v;
        else
          bd[i * cols + j] = v;
      }
    size_t w = f32 ? fwrite(bf, sizeof *bf, n * cols, f)
                   : fwrite(bd, sizeof *bd, n * cols, f);
    if (w != n * cols) {
      perror(argv[1]);
      return 2;
    }
  }
  free(bf);
  free(bd);
  if (fclose(f) != 0) {
    perror(argv[1]);
    return 2;
  }
  return 0;
}
