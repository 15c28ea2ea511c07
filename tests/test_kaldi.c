/* test_kaldi.c -- Kaldi tables: binary/text float and double matrices,
 * compressed matrices (CM, CM2, CM3) against hand-computed values and
 * kaldiio, scp offsets, ark:- on standard input, alignments, the archive
 * writer (binary bit-exact, text exact to the printed precision), fitting
 * from an archive against fitting from the same frames in .npy, and every
 * case of BAD_INPUTS.md 26. Archives are built byte by byte here, from
 * Kaldi's definition of the format, independently of the library. */
#define _POSIX_C_SOURCE 200809L
#include "check.h"
#include "gmle_io.h"
#include "testutil.h"

#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tdir[256];
static gmle_context *ctx;
static int have_kaldiio;

static const char *tpath(const char *name) {
  static char buf[8][512];
  static int k;
  k = (k + 1) % 8;
  snprintf(buf[k], sizeof buf[k], "%s/%s", tdir, name);
  return buf[k];
}

/* ---- an independent archive builder ------------------------------------ */

typedef struct bb {
  unsigned char *p;
  size_t n, cap;
} bb;

static void bb_put(bb *b, const void *s, size_t n) {
  if (b->n + n > b->cap) {
    b->cap = (b->n + n) * 2 + 64;
    b->p = realloc(b->p, b->cap);
    if (!b->p)
      exit(2);
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
}
static void bb_str(bb *b, const char *s) { bb_put(b, s, strlen(s)); }
static void bb_u8(bb *b, unsigned v) {
  unsigned char c = (unsigned char)v;
  bb_put(b, &c, 1);
}
static void bb_le(bb *b, uint64_t v, int n) {
  for (int i = 0; i < n; i++)
    bb_u8(b, (unsigned)(v >> (8 * i)) & 0xff);
}
static void bb_i32(bb *b, int32_t v) { /* Kaldi's binary int32 */
  bb_u8(b, 4);
  bb_le(b, (uint32_t)v, 4);
}
static void bb_f32(bb *b, float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  bb_le(b, u, 4);
}
static void bb_f64(bb *b, double d) {
  uint64_t u;
  memcpy(&u, &d, 8);
  bb_le(b, u, 8);
}
/* "KEY \0BFM " rows cols values; returns the offset of the object. */
static size_t bb_fm(bb *b, const char *key, const float *x, int rows,
                    int cols) {
  bb_str(b, key);
  bb_str(b, " ");
  size_t off = b->n;
  bb_put(b, "\0BFM ", 5);
  bb_i32(b, rows);
  bb_i32(b, cols);
  for (int i = 0; i < rows * cols; i++)
    bb_f32(b, x[i]);
  return off;
}
static size_t bb_dm(bb *b, const char *key, const double *x, int rows,
                    int cols) {
  bb_str(b, key);
  bb_str(b, " ");
  size_t off = b->n;
  bb_put(b, "\0BDM ", 5);
  bb_i32(b, rows);
  bb_i32(b, cols);
  for (int i = 0; i < rows * cols; i++)
    bb_f64(b, x[i]);
  return off;
}
static void bb_save(const bb *b, const char *name) {
  if (tu_spit(tpath(name), b->p, b->n) != 0) {
    printf("cannot write %s\n", name);
    exit(2);
  }
}

/* ---- reading helpers ----------------------------------------------------- */

/* Read a whole table in batches of `batch` rows into x (cap_rows rows);
 * keys/frame of every row are checked against the utterance records.
 * Returns rows read, or (size_t)-1 with the message printed. */
typedef struct seen {
  char keys[16][32];
  size_t rows[16];
  size_t n;
} seen;

static size_t read_all_r(gmle_reader *r, void *x, size_t cap_rows, size_t batch,
                         seen *sn) {
  size_t esz = gmle_reader_dtype(r) == GMLE_F32 ? 4 : 8;
  size_t cols = gmle_reader_cols(r), total = 0;
  if (sn)
    memset(sn, 0, sizeof *sn);
  for (;;) {
    size_t n = 0;
    if (total + batch > cap_rows)
      return (size_t)-1;
    gmle_status s = gmle_reader_read(r, (unsigned char *)x + total * cols * esz,
                                     batch, &n, NULL);
    if (s != GMLE_OK) {
      printf("  read: %s\n", gmle_context_error(ctx));
      return (size_t)-1;
    }
    if (n == 0)
      break;
    const gmle_utterance *u;
    size_t nu = gmle_reader_utterances(r, &u);
    size_t covered = 0;
    for (size_t i = 0; i < nu; i++) {
      if (u[i].row0 != covered)
        return (size_t)-1;
      covered += u[i].n_rows;
      if (!sn)
        continue;
      if (sn->n && strcmp(sn->keys[sn->n - 1], u[i].key) == 0 &&
          u[i].frame0 == sn->rows[sn->n - 1]) {
        sn->rows[sn->n - 1] += u[i].n_rows; /* continued */
      } else if (sn->n < 16 && u[i].frame0 == 0) {
        snprintf(sn->keys[sn->n], 32, "%s", u[i].key);
        sn->rows[sn->n++] = u[i].n_rows;
      } else {
        return (size_t)-1;
      }
    }
    if (nu && covered != n)
      return (size_t)-1;
    if (!nu && strcmp(gmle_reader_format(r), "ark") == 0)
      return (size_t)-1;
    total += n;
  }
  return total;
}

static size_t read_all(const char *spec, const gmle_reader_options *o, void *x,
                       size_t cap_rows, size_t batch, seen *sn, size_t *cols,
                       gmle_dtype *dt) {
  gmle_reader *r = NULL;
  if (gmle_reader_open(ctx, spec, o, &r) != GMLE_OK) {
    printf("  open %s: %s\n", spec, gmle_context_error(ctx));
    return (size_t)-1;
  }
  *cols = gmle_reader_cols(r);
  *dt = gmle_reader_dtype(r);
  size_t n = read_all_r(r, x, cap_rows, batch, sn);
  gmle_reader_free(r);
  return n;
}

static char spec_buf[600];
static const char *spec(const char *prefix, const char *name) {
  snprintf(spec_buf, sizeof spec_buf, "%s:%s", prefix, tpath(name));
  return spec_buf;
}

static void fill_f32(float *x, size_t n, uint64_t seed) {
  tu_rng rng;
  tu_seed(&rng, seed);
  for (size_t i = 0; i < n; i++)
    x[i] = (float)(tu_normal(&rng) * 3.0 + 100.0);
}

/* Expected status and message fragments of a failing open or read of
 * data[0..n) (through the memory reader and a file). */
static void expect_bad(const void *data, size_t n, gmle_status want,
                       const char *frag1, const char *frag2, int labels_only) {
  gmle_reader_options o;
  gmle_reader_options_init(&o);
  o.labels_only = labels_only;
  for (int via_file = 0; via_file < 2; via_file++) {
    gmle_reader *r = NULL;
    gmle_status s;
    if (via_file) {
      if (tu_spit(tpath("bad.ark"), data, n) != 0)
        exit(2);
      s = gmle_reader_open(ctx, spec("ark", "bad.ark"), &o, &r);
    } else {
      s = gmle_reader_open_ark_memory(ctx, data, n, &o, &r);
    }
    float buf[4096];
    while (s == GMLE_OK) {
      size_t got = 0;
      s = gmle_reader_read(r, labels_only ? NULL : buf, 16, &got, NULL);
      if (s == GMLE_OK && got == 0)
        break;
    }
    gmle_reader_free(r);
    CHECK_STATUS(s, want);
    const char *msg = gmle_context_error(ctx);
    CHECK_MSG(strstr(msg, frag1) != NULL, "'%s' not in: %s", frag1, msg);
    if (frag2)
      CHECK_MSG(strstr(msg, frag2) != NULL, "'%s' not in: %s", frag2, msg);
  }
}

/* Put bytes on standard input through a pipe (small: they fit in the pipe
 * buffer); returns the saved stdin for pipe_restore, -1 on failure. */
static int pipe_stdin(const void *data, size_t n) {
  int saved = dup(0), p[2];
  if (saved < 0 || pipe(p) != 0)
    return -1;
  if (write(p[1], data, n) != (ssize_t)n || dup2(p[0], 0) != 0) {
    close(p[0]);
    close(p[1]);
    close(saved);
    return -1;
  }
  close(p[0]);
  close(p[1]);
  return saved;
}

static void pipe_restore(int saved) {
  if (saved >= 0) {
    dup2(saved, 0);
    close(saved);
  }
}

/* ---- binary and text matrices -------------------------------------------- */

TEST(ark_binary_float_matrices_read_bit_exact_with_utterances) {
  static const int rows[3] = {5, 1, 17};
  float x[23 * 4];
  fill_f32(x, 23 * 4, 1);
  bb b = {0};
  const char *keys[3] = {"spk1-utt1", "spk1-utt2", "spk2-utt1"};
  for (int u = 0, r0 = 0; u < 3; r0 += rows[u], u++)
    bb_fm(&b, keys[u], x + r0 * 4, rows[u], 4);
  bb_save(&b, "fm.ark");
  float y[64 * 4];
  size_t cols;
  gmle_dtype dt;
  seen sn;
  for (size_t batch = 1; batch <= 30; batch += 6) {
    memset(y, 0, sizeof y);
    size_t n =
        read_all(spec("ark", "fm.ark"), NULL, y, 64, batch, &sn, &cols, &dt);
    CHECK(n == 23);
    CHECK(cols == 4 && dt == GMLE_F32);
    CHECK(memcmp(x, y, sizeof x) == 0);
    CHECK(sn.n == 3);
    for (int u = 0; u < 3 && sn.n == 3; u++)
      CHECK(strcmp(sn.keys[u], keys[u]) == 0 && sn.rows[u] == (size_t)rows[u]);
  }
  /* "ark,t:" and "ark,s,cs:" read the same (options are ignored). */
  CHECK(read_all(spec("ark,s,cs", "fm.ark"), NULL, y, 64, 8, NULL, &cols,
                 &dt) == 23);
  CHECK(memcmp(x, y, sizeof x) == 0);
  free(b.p);
}

TEST(ark_utterance_records_mark_the_last_part) {
  float x[10 * 2];
  fill_f32(x, 20, 2);
  bb b = {0};
  bb_fm(&b, "a", x, 7, 2);
  bb_fm(&b, "b", x + 14, 3, 2);
  gmle_reader *r = NULL;
  CHECK_STATUS(gmle_reader_open_ark_memory(ctx, b.p, b.n, NULL, &r), GMLE_OK);
  float y[16];
  size_t n = 0;
  const gmle_utterance *u;
  /* batch of 4: a[0..4) | a[4..7) b[0..1) | b[1..3) */
  CHECK_STATUS(gmle_reader_read(r, y, 4, &n, NULL), GMLE_OK);
  CHECK(n == 4 && gmle_reader_utterances(r, &u) == 1);
  CHECK(strcmp(u[0].key, "a") == 0 && u[0].frame0 == 0 && !u[0].last);
  CHECK_STATUS(gmle_reader_read(r, y, 4, &n, NULL), GMLE_OK);
  CHECK(n == 4 && gmle_reader_utterances(r, &u) == 2);
  CHECK(u[0].index == 0 && u[0].frame0 == 4 && u[0].n_rows == 3 && u[0].last);
  CHECK(u[1].index == 1 && strcmp(u[1].key, "b") == 0 && u[1].row0 == 3 &&
        u[1].n_rows == 1 && !u[1].last);
  CHECK(memcmp(y + 6, x + 14, 2 * sizeof(float)) == 0);
  CHECK_STATUS(gmle_reader_read(r, y, 4, &n, NULL), GMLE_OK);
  CHECK(n == 2 && gmle_reader_utterances(r, &u) == 1 && u[0].last &&
        u[0].frame0 == 1);
  CHECK_STATUS(gmle_reader_read(r, y, 4, &n, NULL), GMLE_OK);
  CHECK(n == 0 && gmle_reader_utterances(r, &u) == 0);
  /* Rewind reads the same again. */
  CHECK_STATUS(gmle_reader_rewind(r), GMLE_OK);
  CHECK_STATUS(gmle_reader_read(r, y, 8, &n, NULL), GMLE_OK);
  CHECK(n == 8 && memcmp(y, x, 16 * sizeof(float)) == 0);
  CHECK(strcmp(gmle_reader_format(r), "ark") == 0);
  gmle_reader_free(r);
  free(b.p);
}

TEST(ark_double_matrices_read_as_float64_or_converted) {
  double x[9 * 3];
  tu_rng rng;
  tu_seed(&rng, 3);
  for (int i = 0; i < 27; i++)
    x[i] = tu_normal(&rng) * 1e3 + 1.0 / 3.0;
  bb b = {0};
  bb_dm(&b, "u1", x, 4, 3);
  bb_dm(&b, "u2", x + 12, 5, 3);
  bb_save(&b, "dm.ark");
  double y[32 * 3];
  size_t cols;
  gmle_dtype dt;
  CHECK(read_all(spec("ark", "dm.ark"), NULL, y, 32, 5, NULL, &cols, &dt) == 9);
  CHECK(dt == GMLE_F64 && cols == 3);
  CHECK(tu_bits_equal(x, y, 27));
  /* Forced to float32: each value rounded once, as Kaldi reads a DM into a
   * Matrix<float>. */
  gmle_reader_options o;
  gmle_reader_options_init(&o);
  o.ark_dtype = GMLE_F32;
  float f[32 * 3];
  CHECK(read_all(spec("ark", "dm.ark"), &o, f, 32, 5, NULL, &cols, &dt) == 9);
  CHECK(dt == GMLE_F32);
  int same = 1;
  for (int i = 0; i < 27; i++)
    same &= f[i] == (float)x[i];
  CHECK(same);
  free(b.p);
}

TEST(ark_text_matrices_read_exactly_at_printed_precision) {
  float x[6 * 3];
  fill_f32(x, 18, 4);
  x[4] = -0.0f;
  x[5] = 1e-40f; /* subnormal */
  bb b = {0};
  char num[64];
  /* Kaldi's text layout: "key  [\n  v v v \n  v v v ]\n" */
  for (int u = 0; u < 2; u++) {
    bb_str(&b, u ? "t2  [" : "t1  [");
    for (int i = 0; i < 3; i++) {
      bb_str(&b, "\n  ");
      for (int j = 0; j < 3; j++) {
        snprintf(num, sizeof num, "%.9g ", (double)x[(u * 3 + i) * 3 + j]);
        bb_str(&b, num);
      }
    }
    bb_str(&b, "]\n");
  }
  bb_save(&b, "text.ark");
  float y[32 * 3];
  size_t cols;
  gmle_dtype dt;
  seen sn;
  CHECK(read_all(spec("ark,t", "text.ark"), NULL, y, 32, 4, &sn, &cols, &dt) ==
        6);
  CHECK(cols == 3 && dt == GMLE_F32);
  CHECK(memcmp(x, y, sizeof x) == 0);
  CHECK(sn.n == 2 && strcmp(sn.keys[1], "t2") == 0 && sn.rows[1] == 3);
  /* float64 text at %.17g, one-line matrices and ']' on its own line. */
  double d[4] = {0.1, -1.0 / 3.0, 1e300, 5e-324};
  bb t = {0};
  snprintf(num, sizeof num, "d1 [ %.17g %.17g\n", d[0], d[1]);
  bb_str(&t, num);
  snprintf(num, sizeof num, "%.17g %.17g\n]\n", d[2], d[3]);
  bb_str(&t, num);
  bb_save(&t, "text64.ark");
  gmle_reader_options o;
  gmle_reader_options_init(&o);
  o.ark_dtype = GMLE_F64;
  double z[16];
  CHECK(read_all(spec("ark", "text64.ark"), &o, z, 8, 3, NULL, &cols, &dt) ==
        2);
  CHECK(cols == 2 && dt == GMLE_F64 && tu_bits_equal(z, d, 4));
  free(b.p);
  free(t.p);
}

/* ---- scp and stdin ---------------------------------------------------------
 */

TEST(scp_offsets_read_the_named_objects_in_script_order) {
  float x[12 * 2];
  fill_f32(x, 24, 5);
  bb b = {0};
  size_t off[3];
  off[0] = bb_fm(&b, "u0", x, 3, 2);
  off[1] = bb_fm(&b, "u1", x + 6, 4, 2);
  off[2] = bb_fm(&b, "u2", x + 14, 5, 2);
  bb_save(&b, "scp_data.ark");
  /* A single-object file without a key (what "copy-feats ... foo.mat"
   * writes), named without an offset. */
  bb one = {0};
  bb_put(&one, "\0BFM ", 5);
  bb_i32(&one, 1);
  bb_i32(&one, 2);
  bb_f32(&one, 7.5f);
  bb_f32(&one, -2.25f);
  bb_save(&one, "one.mat");
  char scp[2048];
  snprintf(scp, sizeof scp, "u2 %s:%zu\n\nu0 %s:%zu\r\n  one %s\nu1 %s:%zu\n",
           tpath("scp_data.ark"), off[2], tpath("scp_data.ark"), off[0],
           tpath("one.mat"), tpath("scp_data.ark"), off[1]);
  if (tu_spit(tpath("feats.scp"), scp, strlen(scp)) != 0)
    exit(2);
  float y[32 * 2], want[13 * 2];
  memcpy(want, x + 14, 10 * sizeof(float));
  memcpy(want + 10, x, 6 * sizeof(float));
  want[16] = 7.5f;
  want[17] = -2.25f;
  memcpy(want + 18, x + 6, 8 * sizeof(float));
  size_t cols;
  gmle_dtype dt;
  seen sn;
  CHECK(read_all(spec("scp", "feats.scp"), NULL, y, 32, 4, &sn, &cols, &dt) ==
        13);
  CHECK(memcmp(y, want, sizeof want) == 0);
  CHECK(sn.n == 4 && strcmp(sn.keys[0], "u2") == 0 &&
        strcmp(sn.keys[2], "one") == 0 && sn.rows[2] == 1 &&
        strcmp(sn.keys[3], "u1") == 0);
  /* An offset beyond the file, and one that lands in the middle of data. */
  snprintf(scp, sizeof scp, "u0 %s:%zu\n", tpath("scp_data.ark"), b.n + 10);
  tu_spit(tpath("bad.scp"), scp, strlen(scp));
  gmle_reader *r = NULL;
  CHECK_STATUS(gmle_reader_open(ctx, spec("scp", "bad.scp"), NULL, &r),
               GMLE_E_BAD_ARK);
  CHECK(strstr(gmle_context_error(ctx), "beyond the end") != NULL);
  snprintf(scp, sizeof scp, "u0 %s:%zu\n", tpath("scp_data.ark"), off[0] + 9);
  tu_spit(tpath("bad.scp"), scp, strlen(scp));
  CHECK_STATUS(gmle_reader_open(ctx, spec("scp", "bad.scp"), NULL, &r),
               GMLE_E_BAD_ARK);
  char want_msg[64];
  snprintf(want_msg, sizeof want_msg, "byte %zu: key 'u0'", off[0] + 9);
  CHECK_MSG(strstr(gmle_context_error(ctx), want_msg) != NULL, "%s",
            gmle_context_error(ctx));
  CHECK(strstr(gmle_context_error(ctx), "bad.scp line 1") != NULL);
  /* Ranges and pipes are refused clearly. */
  snprintf(scp, sizeof scp, "u0 %s:%zu[0:1]\n", tpath("scp_data.ark"), off[0]);
  tu_spit(tpath("bad.scp"), scp, strlen(scp));
  CHECK_STATUS(gmle_reader_open(ctx, spec("scp", "bad.scp"), NULL, &r),
               GMLE_E_UNSUPPORTED);
  CHECK(r == NULL);
  free(b.p);
  free(one.p);
}

TEST(ark_dash_reads_standard_input_once) {
  float x[8 * 3];
  fill_f32(x, 24, 6);
  bb b = {0};
  bb_fm(&b, "s1", x, 6, 3);
  bb_fm(&b, "s2", x + 18, 2, 3);
  bb_save(&b, "stdin.ark");
  int saved = dup(0);
  int fd = open(tpath("stdin.ark"), O_RDONLY);
  CHECK(saved >= 0 && fd >= 0 && dup2(fd, 0) == 0);
  close(fd);
  gmle_reader *r = NULL;
  CHECK_STATUS(gmle_reader_open(ctx, "ark:-", NULL, &r), GMLE_OK);
  float y[16 * 3];
  seen sn;
  CHECK(r && read_all_r(r, y, 16, 3, &sn) == 8);
  CHECK(memcmp(x, y, sizeof x) == 0 && sn.n == 2);
  CHECK_STATUS(gmle_reader_rewind(r), GMLE_E_UNSUPPORTED);
  CHECK(strstr(gmle_context_error(ctx), "only once") != NULL);
  gmle_reader_free(r);
  pipe_restore(saved);
  /* A pipe (not a file) on stdin works the same. */
  saved = pipe_stdin(b.p, b.n);
  CHECK(saved >= 0);
  CHECK_STATUS(gmle_reader_open(ctx, "ark:-", NULL, &r), GMLE_OK);
  memset(y, 0, sizeof y);
  CHECK(r && read_all_r(r, y, 16, 5, NULL) == 8);
  CHECK(memcmp(x, y, sizeof x) == 0);
  gmle_reader_free(r);
  pipe_restore(saved);
  free(b.p);
}

TEST(rspecifier_errors_are_clear) {
  gmle_reader *r = NULL;
  CHECK_STATUS(gmle_reader_open(ctx, "ark:gunzip -c x.ark.gz |", NULL, &r),
               GMLE_E_UNSUPPORTED);
  CHECK_STATUS(gmle_reader_open(ctx, "ark,zz:x.ark", NULL, &r),
               GMLE_E_INVALID_ARG);
  CHECK(strstr(gmle_context_error(ctx), "'zz'") != NULL);
  CHECK_STATUS(gmle_reader_open(ctx, "ark:", NULL, &r), GMLE_E_INVALID_ARG);
  CHECK_STATUS(gmle_reader_open(ctx, spec("ark", "no-such.ark"), NULL, &r),
               GMLE_E_IO);
  CHECK(strstr(gmle_context_error(ctx), "no-such.ark") != NULL);
  gmle_reader_options o;
  gmle_reader_options_init(&o);
  o.label_column = "x";
  const unsigned char empty[1] = {0};
  CHECK_STATUS(gmle_reader_open_ark_memory(ctx, empty, 0, &o, &r),
               GMLE_E_INVALID_ARG);
  /* An empty archive is valid: no columns, no rows. */
  CHECK_STATUS(gmle_reader_open_ark_memory(ctx, empty, 0, NULL, &r), GMLE_OK);
  size_t n = 1;
  CHECK(r && gmle_reader_cols(r) == 0);
  CHECK_STATUS(gmle_reader_read(r, NULL, 4, &n, NULL), GMLE_OK);
  CHECK(n == 0);
  gmle_reader_free(r);
}

/* ---- compressed matrices
 * ------------------------------------------------------ */

/* "KEY \0BCMx " + global header (min, range, rows, cols). */
static void bb_cm_head(bb *b, const char *key, const char *tok, float min,
                       float range, int rows, int cols) {
  bb_str(b, key);
  bb_str(b, " ");
  bb_put(b, "\0B", 2);
  bb_str(b, tok);
  bb_str(b, " ");
  bb_f32(b, min);
  bb_f32(b, range);
  bb_le(b, (uint32_t)rows, 4);
  bb_le(b, (uint32_t)cols, 4);
}

TEST(cm2_and_cm3_decode_to_hand_computed_values) {
  /* CM2: range 65535/1024 makes the increment range/65535 exactly 2^-10,
   * so value = min + q/1024 exactly. */
  bb b = {0};
  const uint16_t q2[6] = {0, 1, 1024, 65535, 32768, 3};
  bb_cm_head(&b, "c2", "CM2", -1.0f, 65535.0f / 1024.0f, 2, 3);
  for (int i = 0; i < 6; i++)
    bb_le(&b, q2[i], 2);
  /* CM3: range 255/16: increment 1/16. */
  const uint8_t q3[6] = {0, 255, 16, 128, 1, 200};
  bb_cm_head(&b, "c3", "CM3", 10.0f, 255.0f / 16.0f, 2, 3);
  bb_put(&b, q3, 6);
  bb_save(&b, "cm23.ark");
  const float want[12] = {-1.0f,    -1.0f + 1.0f / 1024,
                          0.0f,     62.9990234375f,
                          31.0f,    -1.0f + 3.0f / 1024,
                          10.0f,    25.9375f,
                          11.0f,    18.0f,
                          10.0625f, 22.5f};
  float y[16 * 3];
  size_t cols;
  gmle_dtype dt;
  CHECK(read_all(spec("ark", "cm23.ark"), NULL, y, 16, 3, NULL, &cols, &dt) ==
        4);
  CHECK(cols == 3 && dt == GMLE_F32);
  for (int i = 0; i < 12; i++)
    CHECK_MSG(y[i] == want[i], "element %d: %.9g, want %.9g", i, (double)y[i],
              (double)want[i]);
  free(b.p);
}

TEST(cm1_decodes_percentile_columns_to_hand_computed_values) {
  /* Global range 65535 makes Uint16ToFloat(v) = min + v exactly. Column 0
   * has percentiles 1000, 1064, 1192, 1192: values 1000 + q for q <= 192
   * and 1192 above (the 64- and 128-wide segments are exact). Column 1 is
   * constant 7 (all percentiles 7). Bytes are stored column by column. */
  bb b = {0};
  bb_cm_head(&b, "c1", "CM", 0.0f, 65535.0f, 5, 2);
  const uint16_t pct[8] = {1000, 1064, 1192, 1192, 7, 7, 7, 7};
  for (int i = 0; i < 8; i++)
    bb_le(&b, pct[i], 2);
  const uint8_t col0[5] = {0, 64, 65, 192, 255}, col1[5] = {0, 1, 2, 3, 255};
  bb_put(&b, col0, 5);
  bb_put(&b, col1, 5);
  bb_save(&b, "cm1.ark");
  const float want[10] = {1000, 7, 1064, 7, 1065, 7, 1192, 7, 1192, 7};
  double y[16 * 2];
  gmle_reader_options o;
  gmle_reader_options_init(&o);
  o.ark_dtype = GMLE_F64; /* decoded in float, then widened exactly */
  size_t cols;
  gmle_dtype dt;
  CHECK(read_all(spec("ark", "cm1.ark"), &o, y, 16, 2, NULL, &cols, &dt) == 5);
  CHECK(cols == 2 && dt == GMLE_F64);
  for (int i = 0; i < 10; i++)
    CHECK_MSG(y[i] == (double)want[i], "element %d: %.9g, want %.9g", i, y[i],
              (double)want[i]);
  free(b.p);
}

TEST(compressed_matrices_agree_with_kaldiio) {
  if (!have_kaldiio) {
    printf("  (kaldiio not installed: skipped)\n");
    return;
  }
  /* kaldiio's encoder writes CM, CM2, CM3 of known data; its decoder (numpy,
   * its own order of float32 operations) is the reference, to a few ulp of
   * the column range; the originals are checked to the quantisation. */
  char cmd[2048];
  snprintf(cmd, sizeof cmd,
           "python3 -c \"\nimport numpy as np, kaldiio\nd='%s'\n"
           "rng = np.random.default_rng(7)\n"
           "x = (rng.standard_normal((37, 5)) * [1, 10, 0.1, 100, 3] + "
           "[0, 5, -3, 1000, 2]).astype(np.float32)\n"
           "np.save(d + '/cm_x.npy', x)\n"
           "for m in (1, 2, 3):\n"
           "  kaldiio.save_ark(d + '/cm%%d.ark' %% m, {'utt': x}, "
           "compression_method=m)\n"
           "  y = kaldiio.load_ark(d + '/cm%%d.ark' %% m)\n"
           "  np.save(d + '/cm%%d_ref.npy' %% m, np.asarray(next(y)[1], "
           "np.float32))\n\"",
           tdir);
  CHECK(system(cmd) == 0);
  for (int m = 1; m <= 3; m++) {
    char name[32], ref[320];
    snprintf(name, sizeof name, "cm%d.ark", m);
    snprintf(ref, sizeof ref, "%s/cm%d_ref.npy", tdir, m);
    float y[64 * 5], z[64 * 5];
    size_t cols, c2;
    gmle_dtype dt, d2;
    CHECK(read_all(spec("ark", name), NULL, y, 64, 10, NULL, &cols, &dt) == 37);
    CHECK(read_all(ref, NULL, z, 64, 10, NULL, &c2, &d2) == 37);
    CHECK(cols == 5 && c2 == 5 && dt == GMLE_F32 && d2 == GMLE_F32);
    /* kaldiio's float32 operations differ from Kaldi's in order (it
     * divides by 65535 where Kaldi multiplies by a rounded increment), so
     * the two agree to a few float32 ulps of the matrix's largest value,
     * the scale of the global header's min and range. */
    double scale = 0, worst = 0;
    for (int i = 0; i < 37 * 5; i++)
      scale = fmax(scale, fabs((double)z[i]));
    for (int i = 0; i < 37 * 5; i++)
      worst = fmax(worst, fabs((double)y[i] - z[i]) / scale);
    CHECK_MSG(worst <= 8 * 6e-8, "method %d: relative difference %g", m, worst);
  }
}

/* ---- alignments -------------------------------------------------------------
 */

TEST(alignment_archives_give_one_label_per_frame) {
  bb b = {0};
  bb_str(&b, "a1 ");
  bb_put(&b, "\0B", 2);
  bb_i32(&b, 3);
  bb_i32(&b, 5);
  bb_i32(&b, -2);
  bb_i32(&b, 5);
  bb_str(&b, "a2 ");
  bb_put(&b, "\0B", 2);
  bb_i32(&b, 1);
  bb_i32(&b, 2147483647);
  bb_str(&b, "a3 7 8 9 \n");
  gmle_reader_options o;
  gmle_reader_options_init(&o);
  o.labels_only = 1;
  gmle_reader *r = NULL;
  CHECK_STATUS(gmle_reader_open_ark_memory(ctx, b.p, b.n, &o, &r), GMLE_OK);
  const char *lab[8];
  size_t n = 0;
  CHECK_STATUS(gmle_reader_read(r, NULL, 8, &n, lab), GMLE_OK);
  CHECK(n == 7);
  const char *want[7] = {"5", "-2", "5", "2147483647", "7", "8", "9"};
  for (size_t i = 0; i < n && i < 7; i++)
    CHECK_MSG(strcmp(lab[i], want[i]) == 0, "label %zu: %s", i, lab[i]);
  const gmle_utterance *u;
  CHECK(gmle_reader_utterances(r, &u) == 3);
  CHECK(strcmp(u[2].key, "a3") == 0 && u[2].row0 == 4 && u[2].n_rows == 3);
  /* The same labels as integers, in batches of 3, with the same
   * utterances. */
  CHECK(gmle_reader_int_labels(r) == 1);
  CHECK_STATUS(gmle_reader_rewind(r), GMLE_OK);
  int64_t il[8];
  size_t got = 0;
  for (int pass = 0; pass < 4; pass++) {
    CHECK_STATUS(gmle_reader_read_int_labels(r, il + got, 3, &n), GMLE_OK);
    if (pass == 1) { /* rows 3..5: the end of a2 and a3's first two */
      CHECK(gmle_reader_utterances(r, &u) == 2);
      CHECK(strcmp(u[0].key, "a2") == 0 && u[0].n_rows == 1 && u[0].last);
      CHECK(strcmp(u[1].key, "a3") == 0 && u[1].frame0 == 0 &&
            u[1].n_rows == 2 && !u[1].last);
    }
    got += n;
  }
  CHECK(got == 7);
  const int64_t iwant[7] = {5, -2, 5, 2147483647, 7, 8, 9};
  for (size_t i = 0; i < got && i < 7; i++)
    CHECK_MSG(il[i] == iwant[i], "label %zu: %lld", i, (long long)il[i]);
  gmle_reader_free(r);
  /* An element with a size byte other than 4, and a matrix where an
   * alignment is expected. */
  bb c = {0};
  bb_str(&c, "a1 ");
  bb_put(&c, "\0B", 2);
  bb_i32(&c, 2);
  bb_i32(&c, 1);
  bb_u8(&c, 8);
  bb_le(&c, 1, 8);
  expect_bad(c.p, c.n, GMLE_E_BAD_ARK, "key 'a1'", "size byte 8", 1);
  float x[2] = {1, 2};
  bb d = {0};
  bb_fm(&d, "m", x, 1, 2);
  expect_bad(d.p, d.n, GMLE_E_BAD_ARK, "key 'm'", "integer vector", 1);
  free(b.p);
  free(c.p);
  free(d.p);
}

/* ---- the writer
 * --------------------------------------------------------------- */

TEST(ark_writer_binary_round_trip_is_bit_exact_and_kaldi_layout) {
  float x[9 * 3];
  fill_f32(x, 27, 8);
  x[0] = -0.0f;
  x[1] = INFINITY;
  x[2] = 1e-45f;
  gmle_ark_writer *w = NULL;
  CHECK_STATUS(
      gmle_ark_writer_open(ctx, spec("ark", "w32.ark"), GMLE_ELEM_F32, 3, &w),
      GMLE_OK);
  /* "u1" in pieces of 1 and 3 rows (the row count is patched at end). */
  CHECK_STATUS(gmle_ark_writer_begin(w, "u1"), GMLE_OK);
  CHECK_STATUS(gmle_ark_writer_rows(w, x, 1), GMLE_OK);
  CHECK_STATUS(gmle_ark_writer_rows(w, x + 3, 3), GMLE_OK);
  CHECK_STATUS(gmle_ark_writer_end(w), GMLE_OK);
  CHECK_STATUS(gmle_ark_writer_put(w, "u2", x + 12, 5), GMLE_OK);
  CHECK_STATUS(gmle_ark_writer_commit(w), GMLE_OK);
  /* The bytes are exactly Kaldi's layout, built independently here. */
  bb b = {0};
  bb_fm(&b, "u1", x, 4, 3);
  bb_fm(&b, "u2", x + 12, 5, 3);
  size_t n = 0;
  unsigned char *got = tu_slurp(tpath("w32.ark"), &n);
  CHECK(got && n == b.n && memcmp(got, b.p, n) == 0);
  free(got);
  float y[32 * 3];
  size_t cols;
  gmle_dtype dt;
  seen sn;
  CHECK(read_all(spec("ark", "w32.ark"), NULL, y, 32, 4, &sn, &cols, &dt) == 9);
  CHECK(memcmp(x, y, sizeof x) == 0 && sn.n == 2);
  /* float64 matrices and vectors. */
  double d[5] = {0.1, -1e-310, 1e308, -0.0, 1.0 / 3.0};
  CHECK_STATUS(
      gmle_ark_writer_open(ctx, spec("ark,b", "w64.ark"), GMLE_ELEM_F64, 1, &w),
      GMLE_OK);
  CHECK_STATUS(gmle_ark_writer_put(w, "d", d, 5), GMLE_OK);
  CHECK_STATUS(gmle_ark_writer_commit(w), GMLE_OK);
  double z[16];
  CHECK(read_all(spec("ark", "w64.ark"), NULL, z, 16, 2, NULL, &cols, &dt) ==
        5);
  CHECK(dt == GMLE_F64 && cols == 1 && tu_bits_equal(d, z, 5));
  CHECK_STATUS(
      gmle_ark_writer_open(ctx, spec("ark", "v.ark"), GMLE_ELEM_F32, 0, &w),
      GMLE_OK);
  CHECK_STATUS(gmle_ark_writer_put(w, "v", x, 4), GMLE_OK);
  CHECK_STATUS(gmle_ark_writer_commit(w), GMLE_OK);
  bb v = {0};
  bb_str(&v, "v ");
  bb_put(&v, "\0BFV ", 5);
  bb_i32(&v, 4);
  for (int i = 0; i < 4; i++)
    bb_f32(&v, x[i]);
  got = tu_slurp(tpath("v.ark"), &n);
  CHECK(got && n == v.n && memcmp(got, v.p, n) == 0);
  free(got);
  if (have_kaldiio) { /* Kaldi's own reader semantics, through kaldiio */
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "python3 -c \"\nimport numpy as np, kaldiio\nd='%s'\n"
             "a = dict(kaldiio.load_ark(d + '/w32.ark'))\n"
             "assert list(a) == ['u1', 'u2'] and a['u1'].shape == (4, 3)\n"
             "b = dict(kaldiio.load_ark(d + '/v.ark'))\n"
             "assert b['v'].shape == (4,)\n\"",
             tdir);
    CHECK(system(cmd) == 0);
  }
  free(b.p);
  free(v.p);
}

TEST(ark_writer_text_round_trip_is_exact_at_printed_precision) {
  float x[7 * 2];
  fill_f32(x, 14, 9);
  x[3] = 3.4028235e38f;
  x[4] = -1e-45f;
  gmle_ark_writer *w = NULL;
  CHECK_STATUS(
      gmle_ark_writer_open(ctx, spec("ark,t", "t32.ark"), GMLE_ELEM_F32, 2, &w),
      GMLE_OK);
  CHECK_STATUS(gmle_ark_writer_put(w, "a", x, 3), GMLE_OK);
  CHECK_STATUS(gmle_ark_writer_put(w, "b", x + 6, 4), GMLE_OK);
  CHECK_STATUS(gmle_ark_writer_commit(w), GMLE_OK);
  size_t n = 0;
  char *txt = (char *)tu_slurp(tpath("t32.ark"), &n);
  CHECK(txt && strncmp(txt, "a  [\n  ", 7) == 0);
  CHECK(txt && n > 3 && memcmp(txt + n - 3, " ]\n", 3) == 0);
  free(txt);
  float y[32 * 2];
  size_t cols;
  gmle_dtype dt;
  CHECK(read_all(spec("ark", "t32.ark"), NULL, y, 32, 3, NULL, &cols, &dt) ==
        7);
  CHECK(cols == 2 && dt == GMLE_F32 && memcmp(x, y, sizeof x) == 0);
  double d[6] = {0.1, 2.0 / 3.0, -1e-300, 1.7976931348623157e308, 5e-324, 0};
  CHECK_STATUS(
      gmle_ark_writer_open(ctx, spec("ark,t", "t64.ark"), GMLE_ELEM_F64, 3, &w),
      GMLE_OK);
  CHECK_STATUS(gmle_ark_writer_put(w, "d", d, 2), GMLE_OK);
  CHECK_STATUS(gmle_ark_writer_commit(w), GMLE_OK);
  gmle_reader_options o;
  gmle_reader_options_init(&o);
  o.ark_dtype = GMLE_F64;
  double z[16];
  CHECK(read_all(spec("ark", "t64.ark"), &o, z, 8, 1, NULL, &cols, &dt) == 2);
  CHECK(tu_bits_equal(d, z, 6));
  if (have_kaldiio) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "python3 -c \"\nimport numpy as np, kaldiio\nd='%s'\n"
             "a = dict(kaldiio.load_ark(d + '/t64.ark'))\n"
             "assert a['d'].shape == (2, 3) and a['d'][0, 0] == 0.1\n\"",
             tdir);
    CHECK(system(cmd) == 0);
  }
}

TEST(ark_writer_refuses_bad_keys_and_specifiers_and_leaves_no_file) {
  gmle_ark_writer *w = NULL;
  CHECK_STATUS(gmle_ark_writer_open(ctx, "ark:-", GMLE_ELEM_F32, 2, &w),
               GMLE_E_UNSUPPORTED);
  CHECK_STATUS(gmle_ark_writer_open(ctx, tpath("x.ark"), GMLE_ELEM_F32, 2, &w),
               GMLE_E_INVALID_ARG);
  CHECK_STATUS(
      gmle_ark_writer_open(ctx, spec("ark", "x.ark"), GMLE_ELEM_I32, 2, &w),
      GMLE_E_INVALID_ARG);
  CHECK_STATUS(
      gmle_ark_writer_open(ctx, spec("ark", "x.ark"), GMLE_ELEM_F32, 2, &w),
      GMLE_OK);
  float x[2] = {1, 2};
  CHECK_STATUS(gmle_ark_writer_begin(w, "two words"), GMLE_E_INVALID_ARG);
  CHECK_STATUS(gmle_ark_writer_begin(w, ""), GMLE_E_INVALID_ARG);
  CHECK_STATUS(gmle_ark_writer_begin(w, "k"), GMLE_OK);
  CHECK_STATUS(gmle_ark_writer_begin(w, "k2"), GMLE_E_INVALID_ARG);
  CHECK_STATUS(gmle_ark_writer_rows(w, x, 1), GMLE_OK);
  gmle_ark_writer_abort(w);
  CHECK(access(tpath("x.ark"), F_OK) != 0);
  CHECK_STATUS(
      gmle_ark_writer_open(ctx, spec("ark", "x.ark"), GMLE_ELEM_F32, 2, &w),
      GMLE_OK);
  CHECK_STATUS(gmle_ark_writer_begin(w, "k"), GMLE_OK);
  CHECK_STATUS(gmle_ark_writer_commit(w), GMLE_E_INVALID_ARG); /* open obj */
  CHECK(access(tpath("x.ark"), F_OK) != 0);
}

/* ---- fitting
 * ------------------------------------------------------------------ */

/* Accumulate a reader in batches of `batch` rows, labels from the
 * utterance index mod C. */
static gmle_stats *stats_of(gmle_reader *r, size_t C, size_t batch,
                            const int32_t *frame_labels) {
  size_t D = gmle_reader_cols(r);
  gmle_dtype dt = gmle_reader_dtype(r);
  gmle_stats *st = NULL;
  if (gmle_stats_create(ctx, D, C, &st) != GMLE_OK)
    return NULL;
  void *buf = malloc(batch * D * 8);
  int32_t *lab = malloc(batch * sizeof *lab);
  size_t done = 0;
  for (;;) {
    size_t n = 0;
    if (gmle_reader_read(r, buf, batch, &n, NULL) != GMLE_OK) {
      printf("  read: %s\n", gmle_context_error(ctx));
      gmle_stats_free(st);
      st = NULL;
      break;
    }
    if (!n)
      break;
    memcpy(lab, frame_labels + done, n * sizeof *lab);
    if (gmle_stats_add(st, buf, dt, n, D, lab, NULL) != GMLE_OK) {
      gmle_stats_free(st);
      st = NULL;
      break;
    }
    done += n;
  }
  free(buf);
  free(lab);
  return st;
}

TEST(fit_from_ark_and_scp_equals_fit_from_the_same_frames_in_npy) {
  enum { U = 12, D = 5, C = 3 };
  int rows[U];
  size_t N = 0;
  for (int u = 0; u < U; u++)
    N += (size_t)(rows[u] = 20 + 13 * u % 37);
  float *x = malloc(N * D * sizeof *x);
  int32_t *lab = malloc(N * sizeof *lab);
  tu_rng rng;
  tu_seed(&rng, 10);
  bb b = {0};
  size_t off[U];
  char scp[4096] = "";
  for (size_t u = 0, r0 = 0; u < U; r0 += (size_t)rows[u], u++) {
    for (size_t i = r0; i < r0 + (size_t)rows[u]; i++) {
      lab[i] = (int32_t)(u % C);
      for (int j = 0; j < D; j++)
        x[i * D + j] =
            (float)(tu_normal(&rng) * (1 + j) + 1000.0 * (double)(u % C));
    }
    char key[16];
    snprintf(key, sizeof key, "utt%02zu", u);
    off[u] = bb_fm(&b, key, x + r0 * D, rows[u], D);
    size_t l = strlen(scp);
    snprintf(scp + l, sizeof scp - l, "%s %s:%zu\n", key, tpath("fit.ark"),
             off[u]);
  }
  bb_save(&b, "fit.ark");
  tu_spit(tpath("fit.scp"), scp, strlen(scp));
  gmle_writer *w = NULL;
  CHECK_STATUS(gmle_writer_open(ctx, tpath("fit.npy"), GMLE_ELEM_F32, D, 0, &w),
               GMLE_OK);
  CHECK_STATUS(gmle_writer_write(w, x, N), GMLE_OK);
  CHECK_STATUS(gmle_writer_commit(w), GMLE_OK);
  const char *srcs[3] = {tpath("fit.npy"), spec("ark", "fit.ark"), NULL};
  char scp_spec[600];
  snprintf(scp_spec, sizeof scp_spec, "scp:%s", tpath("fit.scp"));
  srcs[2] = scp_spec;
  gmle_model *m[3] = {NULL, NULL, NULL};
  for (int k = 0; k < 3; k++) {
    gmle_reader *r = NULL;
    CHECK_STATUS(gmle_reader_open(ctx, srcs[k], NULL, &r), GMLE_OK);
    gmle_stats *st = r ? stats_of(r, C, 64, lab) : NULL;
    CHECK(st != NULL);
    if (st)
      CHECK_STATUS(gmle_fit(st, NULL, &m[k]), GMLE_OK);
    gmle_stats_free(st);
    gmle_reader_free(r);
  }
  /* The same rows in the same batches: the same model, bit for bit. */
  CHECK(m[0] && m[1] && m[2] && tu_models_bit_equal(m[0], m[1]) &&
        tu_models_bit_equal(m[0], m[2]));
  /* And the model is right: against the float64 two-pass reference. */
  tu_ref ref;
  CHECK(tu_ref_compute(&ref, x, GMLE_F32, N, D, D, C, lab, NULL) == 0);
  double mu[D], cov[D * D], rmu[D], rcov[D * D];
  for (size_t c = 0; c < C && m[1]; c++) {
    gmle_model_mean(m[1], c, mu);
    gmle_model_covariance(m[1], c, cov);
    tu_ref_mean(&ref, c, rmu);
    tu_ref_cov(&ref, GMLE_COV_FULL, c, rcov);
    for (int j = 0; j < D; j++)
      CHECK_CLOSE(mu[j], rmu[j], 1e-7);
    CHECK(tu_rel_frobenius(cov, rcov, D * D) <= 1e-6);
  }
  tu_ref_free(&ref);
  for (int k = 0; k < 3; k++)
    gmle_model_free(m[k]);
  free(x);
  free(lab);
  free(b.p);
}

TEST(fit_from_compressed_archives_equals_fit_from_their_exact_values) {
  /* CM2 and CM3 with increments 2^-10 and 2^-4, and CM with a percentile
   * header whose segments are exact (see the decoding tests above): every
   * decoded value is known exactly here, min + q * increment, so fitting
   * the archive must give the model of those values in .npy, bit for bit. */
  enum { U = 6, R = 50, D = 3 };
  tu_rng rng;
  tu_seed(&rng, 12);
  float *want = malloc((size_t)U * R * D * sizeof *want);
  int32_t lab[U * R];
  bb b = {0};
  char key[16];
  for (int u = 0; u < U; u++) {
    float *w = want + (size_t)u * R * D;
    snprintf(key, sizeof key, "c%d", u);
    int kind = u % 3;
    if (kind == 0) { /* CM2: -1 + q/1024 */
      bb_cm_head(&b, key, "CM2", -1.0f, 65535.0f / 1024.0f, R, D);
      for (int i = 0; i < R * D; i++) {
        uint16_t q = (uint16_t)tu_below(&rng, 65536);
        bb_le(&b, q, 2);
        w[i] = -1.0f + (float)q / 1024.0f;
      }
    } else if (kind == 1) { /* CM3: 10 + q/16 */
      bb_cm_head(&b, key, "CM3", 10.0f, 255.0f / 16.0f, R, D);
      for (int i = 0; i < R * D; i++) {
        uint8_t q = (uint8_t)tu_below(&rng, 256);
        bb_u8(&b, q);
        w[i] = 10.0f + (float)q / 16.0f;
      }
    } else { /* CM: 1000 + q for q <= 192, 1192 above; column-major */
      bb_cm_head(&b, key, "CM", 0.0f, 65535.0f, R, D);
      for (int j = 0; j < D; j++) {
        const uint16_t pct[4] = {1000, 1064, 1192, 1192};
        for (int k = 0; k < 4; k++)
          bb_le(&b, pct[k], 2);
      }
      for (int j = 0; j < D; j++)
        for (int i = 0; i < R; i++) {
          uint8_t q = (uint8_t)tu_below(&rng, 256);
          bb_u8(&b, q);
          w[i * D + j] = q <= 192 ? 1000.0f + q : 1192.0f;
        }
    }
    for (int i = 0; i < R; i++)
      lab[u * R + i] = u % 2;
  }
  bb_save(&b, "cmfit.ark");
  gmle_writer *wr = NULL;
  CHECK_STATUS(
      gmle_writer_open(ctx, tpath("cmfit.npy"), GMLE_ELEM_F32, D, 0, &wr),
      GMLE_OK);
  CHECK_STATUS(gmle_writer_write(wr, want, (size_t)U * R), GMLE_OK);
  CHECK_STATUS(gmle_writer_commit(wr), GMLE_OK);
  float got[(U * R + 20) * D];
  size_t cols;
  gmle_dtype dt;
  CHECK(read_all(spec("ark", "cmfit.ark"), NULL, got, U * R + 20, 20, NULL,
                 &cols, &dt) == U * R);
  CHECK(memcmp(got, want, (size_t)U * R * D * sizeof *got) == 0);
  gmle_model *m[2] = {NULL, NULL};
  const char *srcs[2] = {tpath("cmfit.npy"), spec("ark", "cmfit.ark")};
  for (int k = 0; k < 2; k++) {
    gmle_reader *r = NULL;
    CHECK_STATUS(gmle_reader_open(ctx, srcs[k], NULL, &r), GMLE_OK);
    gmle_stats *st = r ? stats_of(r, 2, 64, lab) : NULL;
    CHECK(st && gmle_fit(st, NULL, &m[k]) == GMLE_OK);
    gmle_stats_free(st);
    gmle_reader_free(r);
  }
  CHECK(m[0] && m[1] && tu_models_bit_equal(m[0], m[1]));
  gmle_model_free(m[0]);
  gmle_model_free(m[1]);
  free(want);
  free(b.p);
}

/* ---- BAD_INPUTS.md 26 -------------------------------------------------------
 */

/* A valid two-utterance archive whose second object is replaced by `obj`. */
static bb with_second(const void *obj, size_t n) {
  float x[4] = {1, 2, 3, 4};
  bb b = {0};
  bb_fm(&b, "good", x, 2, 2);
  bb_str(&b, "utt7 ");
  bb_put(&b, obj, n);
  return b;
}

static char at_buf[64];
static const char *at(size_t off) {
  snprintf(at_buf, sizeof at_buf, "byte %zu: key 'utt7'", off);
  return at_buf;
}

TEST(badinput_26_missing_binary_header_is_read_as_text_and_refused) {
  bb o = {0};
  bb_put(&o, "FM ", 3);
  bb_i32(&o, 1);
  bb_i32(&o, 2);
  bb_f32(&o, 1);
  bb_f32(&o, 2);
  bb b = with_second(o.p, o.n);
  size_t obj = b.n - o.n;
  expect_bad(b.p, b.n, GMLE_E_BAD_ARK, at(obj), "expected a binary object", 0);
  free(o.p);
  free(b.p);
}

TEST(badinput_26_vector_where_a_matrix_is_expected) {
  bb o = {0};
  bb_put(&o, "\0BFV ", 5);
  bb_i32(&o, 2);
  bb_f32(&o, 1);
  bb_f32(&o, 2);
  bb b = with_second(o.p, o.n);
  expect_bad(b.p, b.n, GMLE_E_BAD_ARK, at(b.n - o.n),
             "float vector (FV) where a matrix is expected", 0);
  free(o.p);
  free(b.p);
}

TEST(badinput_26_dm_is_converted_and_cm_kinds_are_decoded) {
  /* A DM after an FM: read as float32, each value rounded once. */
  bb b = {0};
  float x[2] = {1.5f, -2.5f};
  double d[4] = {0.1, 1.0 / 3.0, -7.0, 1e10};
  bb_fm(&b, "f", x, 1, 2);
  bb_dm(&b, "d", d, 2, 2);
  bb_cm_head(&b, "c", "CM3", 0.0f, 255.0f, 1, 2);
  bb_u8(&b, 3);
  bb_u8(&b, 250);
  gmle_reader *r = NULL;
  CHECK_STATUS(gmle_reader_open_ark_memory(ctx, b.p, b.n, NULL, &r), GMLE_OK);
  float y[8];
  size_t n = 0;
  CHECK_STATUS(gmle_reader_read(r, y, 8, &n, NULL), GMLE_OK);
  CHECK(n == 4 && gmle_reader_dtype(r) == GMLE_F32);
  const float want[8] = {1.5f,  -2.5f, (float)0.1, (float)(1.0 / 3.0),
                         -7.0f, 1e10f, 3.0f,       250.0f};
  CHECK(memcmp(y, want, sizeof want) == 0);
  gmle_reader_free(r);
  free(b.p);
}

TEST(badinput_26_size_byte_not_4) {
  bb o = {0};
  bb_put(&o, "\0BFM ", 5);
  bb_u8(&o, 8); /* an int64 where Kaldi writes int32 */
  bb_le(&o, 1, 8);
  bb_i32(&o, 2);
  bb_f32(&o, 1);
  bb_f32(&o, 2);
  bb b = with_second(o.p, o.n);
  expect_bad(b.p, b.n, GMLE_E_BAD_ARK, at(b.n - o.n + 5), "size byte 8", 0);
  free(o.p);
  free(b.p);
}

TEST(badinput_26_rows_or_cols_not_positive) {
  const int32_t dims[4][2] = {{0, 2}, {-1, 2}, {1, 0}, {2, -5}};
  for (int k = 0; k < 4; k++) {
    bb o = {0};
    bb_put(&o, "\0BFM ", 5);
    bb_i32(&o, dims[k][0]);
    bb_i32(&o, dims[k][1]);
    bb_f32(&o, 1);
    bb_f32(&o, 2);
    bb b = with_second(o.p, o.n);
    expect_bad(b.p, b.n, GMLE_E_BAD_ARK, at(b.n - o.n), "must be >= 1", 0);
    free(o.p);
    free(b.p);
  }
  /* The same for compressed matrices and text ("[ ]"). */
  bb c = {0};
  bb_cm_head(&c, "utt7", "CM2", 0, 1, 0, 0);
  expect_bad(c.p, c.n, GMLE_E_BAD_ARK, "key 'utt7'", "must be >= 1", 0);
  expect_bad("utt7 [ ]\n", 9, GMLE_E_BAD_ARK, "byte 5: key 'utt7'",
             "empty text matrix", 0);
  free(c.p);
}

TEST(badinput_26_sizes_beyond_the_remaining_bytes_fail_before_allocating) {
  /* 1e6 x 1e3 floats claimed by a 40-byte object: refused from the header,
   * with at most a handful of small allocations. */
  bb o = {0};
  bb_put(&o, "\0BFM ", 5);
  bb_i32(&o, 1000000);
  bb_i32(&o, 1000);
  bb_f32(&o, 1);
  bb b = with_second(o.p, o.n);
  expect_bad(b.p, b.n, GMLE_E_BAD_ARK, at(b.n - o.n + 15), "remain", 0);
  /* CM with 2^31-1 rows and columns: the bytes claimed are never
   * allocated (the file is checked first; on a pipe, buffers grow only
   * as bytes arrive). */
  bb c = {0};
  bb_cm_head(&c, "utt7", "CM", 0, 1, INT32_MAX, INT32_MAX);
  bb_le(&c, 0, 8);
  expect_bad(c.p, c.n, GMLE_E_BAD_ARK, "key 'utt7'", "remain", 0);
  /* On a pipe the size is unknown: the 2^31 x 2^31 claim must end in
   * "truncated" (buffers grown only as bytes arrive), not in an attempt to
   * allocate it (GMLE_E_OUT_OF_MEMORY). */
  int saved = pipe_stdin(c.p, c.n);
  CHECK(saved >= 0);
  gmle_reader *r = NULL;
  CHECK_STATUS(gmle_reader_open(ctx, "ark:-", NULL, &r), GMLE_E_BAD_ARK);
  CHECK_MSG(strstr(gmle_context_error(ctx), "truncated: CM column headers"),
            "%s", gmle_context_error(ctx));
  pipe_restore(saved);
  bb d = {0};
  bb_cm_head(&d, "utt7", "CM2", 0, 1, 70000, 70000);
  expect_bad(d.p, d.n, GMLE_E_BAD_ARK, "key 'utt7'", "remain", 0);
  free(o.p);
  free(b.p);
  free(c.p);
  free(d.p);
}

TEST(badinput_26_truncated_data_at_every_byte) {
  float x[6 * 2];
  fill_f32(x, 12, 11);
  bb b = {0};
  bb_fm(&b, "u1", x, 3, 2);
  size_t end1 = b.n;
  bb_cm_head(&b, "u2", "CM", 0, 65535, 2, 2);
  for (int i = 0; i < 8; i++)
    bb_le(&b, (uint64_t)(i * 100), 2);
  bb_put(&b, "\1\2\3\4", 4);
  size_t end2 = b.n;
  bb_str(&b, "u3  [\n  1 2 \n  3 4 ]\n");
  /* Every prefix: success only at an object boundary (or in the trailing
   * line break), BAD_ARK with a byte offset otherwise; never a crash. */
  int ok = 1;
  for (size_t n = 0; n <= b.n; n++) {
    gmle_reader *r = NULL;
    gmle_status s = gmle_reader_open_ark_memory(ctx, b.p, n, NULL, &r);
    float y[64];
    while (s == GMLE_OK) {
      size_t got = 0;
      s = gmle_reader_read(r, y, 2, &got, NULL);
      if (s == GMLE_OK && got == 0)
        break;
    }
    gmle_reader_free(r);
    int boundary = n == 0 || n == end1 || n == end2 || n >= b.n - 1;
    if (boundary ? s != GMLE_OK : s != GMLE_E_BAD_ARK) {
      printf("  prefix %zu: %s (%s)\n", n, gmle_status_name(s),
             gmle_context_error(ctx));
      ok = 0;
    } else if (!boundary && !strstr(gmle_context_error(ctx), "byte ")) {
      printf("  prefix %zu: no offset: %s\n", n, gmle_context_error(ctx));
      ok = 0;
    }
  }
  CHECK(ok);
  /* A file cut in the data: refused from the header (the bytes that
   * remain are known) ... */
  expect_bad(b.p, end1 - 5, GMLE_E_BAD_ARK, "key 'u1'", "only 19 bytes remain",
             0);
  /* ... and on a pipe, where they are not, when the data run out. */
  int saved = pipe_stdin(b.p, end1 - 5);
  CHECK(saved >= 0);
  gmle_reader *r = NULL;
  CHECK_STATUS(gmle_reader_open(ctx, "ark:-", NULL, &r), GMLE_OK);
  float y[8];
  size_t got = 0;
  CHECK_STATUS(gmle_reader_read(r, y, 4, &got, NULL), GMLE_E_BAD_ARK);
  CHECK_MSG(strstr(gmle_context_error(ctx), "ark:-: byte 34: key 'u1': "
                                            "truncated in row 2 (of 3)"),
            "%s", gmle_context_error(ctx));
  gmle_reader_free(r);
  pipe_restore(saved);
  free(b.p);
}

TEST(badinput_26_key_without_space) {
  float x[2] = {1, 2};
  bb b = {0};
  bb_fm(&b, "good", x, 1, 2);
  bb_str(&b, "utt7");
  size_t off = b.n;
  bb_put(&b, "\0BFM ", 5);
  bb_i32(&b, 1);
  bb_i32(&b, 2);
  bb_f32(&b, 1);
  bb_f32(&b, 2);
  char want[64];
  snprintf(want, sizeof want, "byte %zu: key 'utt7'", off);
  expect_bad(b.p, b.n, GMLE_E_BAD_ARK, want, "not followed by a space", 0);
  free(b.p);
}

TEST(badinput_26_ragged_text_rows) {
  const char *t = "good  [\n  1 2 3 \n  4 5 6 ]\nutt7  [\n  1 2 3 \n  4 5 ]\n";
  /* byte of the ragged row "  4 5 ]": after "utt7  [\n  1 2 3 \n" */
  size_t off = (size_t)(strstr(t, "  4 5 ]") - t) + 2;
  char want[64];
  snprintf(want, sizeof want, "byte %zu: key 'utt7'", off);
  expect_bad(t, strlen(t), GMLE_E_BAD_ARK, want, "row 1 has 2 values", 0);
  const char *u = "utt7  [\n  1 2 x3 ]\n";
  expect_bad(u, strlen(u), GMLE_E_BAD_ARK, "key 'utt7'", "'x3' is not a number",
             0);
  const char *v = "utt7  [\n  1 2 1e999 ]\n";
  expect_bad(v, strlen(v), GMLE_E_BAD_ARK, "key 'utt7'", "beyond the range", 0);
  /* A different column count in a later utterance: a dimension mismatch. */
  const char *w = "good  [ 1 2 3 ]\nutt7  [ 1 2 ]\n";
  expect_bad(w, strlen(w), GMLE_E_DIM_MISMATCH, "key 'utt7'",
             "2 columns, but the first matrix has 3", 0);
}

TEST(badinput_26_text_nan_and_inf_reach_the_nonfinite_policy) {
  const char *t = "u1  [\n  1 2 \n  3 4 ]\nutt7  [\n  5 6 \n  7 nan \n"
                  "  -inf 8 ]\n";
  gmle_reader *r = NULL;
  CHECK_STATUS(gmle_reader_open_ark_memory(ctx, t, strlen(t), NULL, &r),
               GMLE_OK);
  float y[16];
  size_t n = 0;
  CHECK_STATUS(gmle_reader_read(r, y, 8, &n, NULL), GMLE_OK);
  CHECK(n == 5 && isnan(y[7]) && isinf(y[8]) && y[8] < 0);
  gmle_reader_free(r);
  /* The non-finite policy of case 1: the batch is refused naming row and
   * column, and the statistics are unchanged. */
  gmle_stats *st = NULL;
  CHECK_STATUS(gmle_stats_create(ctx, 2, 1, &st), GMLE_OK);
  CHECK_STATUS(gmle_stats_add(st, y, GMLE_F32, 2, 2, NULL, NULL), GMLE_OK);
  tu_snapshot before;
  CHECK(tu_snapshot_take(st, &before) == 0);
  CHECK_STATUS(gmle_stats_add(st, y + 4, GMLE_F32, 3, 2, NULL, NULL),
               GMLE_E_NONFINITE_INPUT);
  CHECK(strstr(gmle_context_error(ctx), "row 1 col 1") != NULL);
  tu_snapshot after;
  CHECK(tu_snapshot_take(st, &after) == 0);
  CHECK(tu_snapshot_equal(&before, &after));
  tu_snapshot_free(&before);
  tu_snapshot_free(&after);
  gmle_stats_free(st);
}

TEST(badinput_26_other_malformed_objects) {
  bb o = {0};
  bb_put(&o, "\0BXM ", 5);
  bb b = with_second(o.p, o.n);
  expect_bad(b.p, b.n, GMLE_E_BAD_ARK, at(b.n - o.n), "unknown binary object",
             0);
  bb p = {0};
  bb_put(&p, "\0C", 2);
  bb c = with_second(p.p, p.n);
  expect_bad(c.p, c.n, GMLE_E_BAD_ARK, at(c.n - p.n), "not followed by 'B'", 0);
  const char *nul = "utt7  [\n  1 \0 2 ]\n";
  expect_bad(nul, 18, GMLE_E_BAD_ARK, "key 'utt7'", "NUL byte", 0);
  const char *unclosed = "utt7  [\n  1 2 \n";
  expect_bad(unclosed, strlen(unclosed), GMLE_E_BAD_ARK, "key 'utt7'",
             "not closed", 0);
  free(o.p);
  free(b.p);
  free(p.p);
  free(c.p);
}

int main(int argc, char **argv) {
  CHECK_INIT(argc, argv);
  snprintf(tdir, sizeof tdir, "/tmp/gmle_kaldi_XXXXXX");
  if (!mkdtemp(tdir)) {
    printf("mkdtemp failed\n");
    return 2;
  }
  if (gmle_context_create(GMLE_BACKEND_AUTO, -1, &ctx) != GMLE_OK) {
    printf("context: %s\n", gmle_context_error(ctx));
    return 2;
  }
  have_kaldiio =
      system("python3 -c 'import kaldiio, numpy' >/dev/null 2>&1") == 0;
  if (!have_kaldiio)
    printf("note: kaldiio not installed; its cross-checks are skipped\n");
  RUN(ark_binary_float_matrices_read_bit_exact_with_utterances);
  RUN(ark_utterance_records_mark_the_last_part);
  RUN(ark_double_matrices_read_as_float64_or_converted);
  RUN(ark_text_matrices_read_exactly_at_printed_precision);
  RUN(scp_offsets_read_the_named_objects_in_script_order);
  RUN(ark_dash_reads_standard_input_once);
  RUN(rspecifier_errors_are_clear);
  RUN(cm2_and_cm3_decode_to_hand_computed_values);
  RUN(cm1_decodes_percentile_columns_to_hand_computed_values);
  RUN(compressed_matrices_agree_with_kaldiio);
  RUN(alignment_archives_give_one_label_per_frame);
  RUN(ark_writer_binary_round_trip_is_bit_exact_and_kaldi_layout);
  RUN(ark_writer_text_round_trip_is_exact_at_printed_precision);
  RUN(ark_writer_refuses_bad_keys_and_specifiers_and_leaves_no_file);
  RUN(fit_from_ark_and_scp_equals_fit_from_the_same_frames_in_npy);
  RUN(fit_from_compressed_archives_equals_fit_from_their_exact_values);
  RUN(badinput_26_missing_binary_header_is_read_as_text_and_refused);
  RUN(badinput_26_vector_where_a_matrix_is_expected);
  RUN(badinput_26_dm_is_converted_and_cm_kinds_are_decoded);
  RUN(badinput_26_size_byte_not_4);
  RUN(badinput_26_rows_or_cols_not_positive);
  RUN(badinput_26_sizes_beyond_the_remaining_bytes_fail_before_allocating);
  RUN(badinput_26_truncated_data_at_every_byte);
  RUN(badinput_26_key_without_space);
  RUN(badinput_26_ragged_text_rows);
  RUN(badinput_26_text_nan_and_inf_reach_the_nonfinite_policy);
  RUN(badinput_26_other_malformed_objects);
  gmle_context_free(ctx);
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tdir);
  if (system(cmd) != 0)
    printf("could not remove %s\n", tdir);
  return CHECK_DONE();
}
