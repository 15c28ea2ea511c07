/* test_score_kern.c -- the CPU scorer's kernel sets (portable, AVX2,
 * AVX-512) agree with a direct evaluation and with each other on every
 * covariance type, output, input and output dtype, ragged dimensions and
 * tile ends, with and without empty classes; and each stops on NaN/Inf.
 * libgmle hides the kernels, so the scorer (host/score*.c, host/isa.c) is
 * compiled into this test, and the lower kernel sets are forced with
 * gmle__cpu_isa_override. */
#include "check.h"

#include "../host/cpu_state.h"
#include "../host/isa.h"
#include "internal.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_state = 12345;

static double uniform(void) {
  uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return ((double)(z >> 11) + 0.5) / 9007199254740992.0;
}

/* A model with random parameters in the score cache's terms (the scorer
 * reads nothing else), class 1 empty when `with_empty`. */
typedef struct fixture {
  gmle_model m;
  gmle__score_cache sc;
  double *kp; /* the CPU backend's model data (gmle__cpu_score_pack) */
  double *means, *covars, *log_priors, *w, *b, *center, *lconst;
  size_t *active;
  unsigned char *empty;
} fixture;

static gmle__cpu_state cpu_state; /* the scorer's scratch */

static void fixture_init(fixture *f, gmle_context *ctx, gmle_cov_type cov,
                         size_t D, size_t C, int with_empty) {
  memset(f, 0, sizeof *f);
  f->means = calloc(C * D, sizeof(double));
  f->covars = calloc(C * D, sizeof(double));
  f->log_priors = calloc(C, sizeof(double));
  f->w = calloc(C * D * D, sizeof(double));
  f->b = calloc(C * D, sizeof(double));
  f->center = calloc(D, sizeof(double));
  f->lconst = calloc(C, sizeof(double));
  f->active = calloc(C, sizeof(size_t));
  f->empty = calloc(C, 1);
  size_t Ca = 0;
  for (size_t c = 0; c < C; c++) {
    f->empty[c] = with_empty && c == 1;
    f->log_priors[c] = f->empty[c] ? -INFINITY : log(0.1 + uniform());
    if (!f->empty[c])
      f->active[Ca++] = c;
  }
  for (size_t j = 0; j < D; j++)
    f->center[j] = 4 * uniform() - 2;
  for (size_t i = 0; i < C * D; i++) {
    f->means[i] = 6 * uniform() - 3;
    f->covars[i] = 0.5 + uniform();
    f->b[i] = 2 * uniform() - 1;
  }
  /* lower-triangular inverse factors with a dominant diagonal */
  for (size_t a = 0; a < C; a++)
    for (size_t i = 0; i < D; i++)
      for (size_t k = 0; k <= i; k++)
        f->w[(a * D + i) * D + k] = k == i ? 1 + uniform() : 0.4 * uniform();
  for (size_t a = 0; a < Ca; a++)
    f->lconst[a] = -(double)D - uniform();
  f->sc = (gmle__score_cache){.n_active = Ca,
                              .active = f->active,
                              .center = f->center,
                              .w = f->w,
                              .b = f->b,
                              .lconst = f->lconst};
  f->m = (gmle_model){.ctx = ctx,
                      .dim = D,
                      .n_classes = C,
                      .cov = cov,
                      .means = f->means,
                      .covars = f->covars,
                      .log_priors = f->log_priors,
                      .empty = f->empty,
                      .score_cache = &f->sc};
}

static void fixture_free(fixture *f) {
  gmle__aligned_free(f->kp);
  free(f->means);
  free(f->covars);
  free(f->log_priors);
  free(f->w);
  free(f->b);
  free(f->center);
  free(f->lconst);
  free(f->active);
  free(f->empty);
}

/* q of active class a for row x, straight from the definitions. */
static double direct_q(const fixture *f, size_t a, const double *x) {
  const size_t D = f->m.dim, c = f->active[a];
  double q = 0;
  switch (f->m.cov) {
  case GMLE_COV_FULL:
  case GMLE_COV_TIED: {
    const double *W = f->w + (f->m.cov == GMLE_COV_FULL ? a * D * D : 0);
    for (size_t i = 0; i < D; i++) {
      double z = 0;
      for (size_t k = 0; k <= i; k++)
        z += W[i * D + k] * (x[k] - f->center[k]);
      z -= f->b[a * D + i];
      q += z * z;
    }
    break;
  }
  case GMLE_COV_DIAG:
  case GMLE_COV_SPHERICAL:
    for (size_t j = 0; j < D; j++) {
      const double d = x[j] - f->means[c * D + j];
      q += d * d /
           (f->m.cov == GMLE_COV_DIAG ? f->covars[c * D + j] : f->covars[c]);
    }
    break;
  }
  return q;
}

/* The expected output of row x: out[0..C) (or out[0] for DENSITY/LABEL). */
static void direct_row(const fixture *f, gmle_output what, const double *x,
                       double *out) {
  const size_t C = f->m.n_classes;
  double j[64], mx = -INFINITY, s = 0;
  size_t best = 0;
  for (size_t c = 0, a = 0; c < C; c++) {
    if (f->empty[c]) {
      j[c] = -INFINITY;
      continue;
    }
    const double ll = f->lconst[a] - 0.5 * direct_q(f, a, x);
    j[c] = what == GMLE_OUT_LOGLIK ? ll : ll + f->log_priors[c];
    if (j[c] > mx) {
      mx = j[c];
      best = c;
    }
    a++;
  }
  for (size_t c = 0; c < C; c++)
    s += exp(j[c] - mx);
  if (what == GMLE_OUT_LABEL)
    out[0] = (double)best;
  else if (what == GMLE_OUT_DENSITY)
    out[0] = mx + log(s);
  for (size_t c = 0;
       c < C && what != GMLE_OUT_LABEL && what != GMLE_OUT_DENSITY; c++)
    out[c] = what == GMLE_OUT_LOGPOST ? j[c] - mx - log(s) : j[c];
}

static double out_at(const void *out, gmle_output what, gmle_dtype odt,
                     size_t k) {
  if (what == GMLE_OUT_LABEL)
    return ((const int32_t *)out)[k];
  return odt == GMLE_F32 ? ((const float *)out)[k] : ((const double *)out)[k];
}

/* Scores n rows with kernel set `level` and checks them against the
 * direct evaluation. */
static int check_level(gmle_context *ctx, fixture *f, int level, size_t n,
                       gmle_dtype in_dt, gmle_output what, gmle_dtype odt) {
  const size_t D = f->m.dim, C = f->m.n_classes, stride = D + 3;
  const size_t width =
      what == GMLE_OUT_LABEL || what == GMLE_OUT_DENSITY ? 1 : C;
  double *x = malloc(n * stride * sizeof(double));
  void *xin = malloc(n * stride * sizeof(double));
  void *out = calloc(n * width, sizeof(double));
  double ref[64];
  for (size_t i = 0; i < n * stride; i++) {
    const size_t j = i % stride;
    x[i] = 1.5 * (2 * uniform() - 1) + (j < D ? f->means[j] : 0);
    if (in_dt == GMLE_F32) {
      ((float *)xin)[i] = (float)x[i];
      x[i] = (float)x[i];
    } else {
      ((double *)xin)[i] = x[i];
    }
  }
  gmle__cpu_isa_override(level);
  gmle__batch b = {
      .x = xin, .dtype = in_dt, .n_rows = n, .row_stride = stride, .dim = D};
  int ok = gmle__cpu_score(ctx, &cpu_state, &f->m, f->kp, &b, what, odt, out) ==
           GMLE_OK;
  CHECK_MSG(ok, "score failed: %s", gmle_context_error(ctx));
  const double tol = odt == GMLE_F32 ? 2e-6 : 1e-10;
  for (size_t r = 0; r < n && ok; r++) {
    direct_row(f, what, x + r * stride, ref);
    for (size_t c = 0; c < width && ok; c++) {
      const double got = out_at(out, what, odt, r * width + c);
      const double want = ref[c];
      const int same = (isinf(want) && got == want) ||
                       fabs(got - want) <= tol * (1 + fabs(want));
      ok = same;
      CHECK_MSG(same,
                "level %d cov %d D %zu C %zu n %zu what %d in %d out %d: "
                "row %zu col %zu got %.17g want %.17g",
                level, (int)f->m.cov, D, C, n, (int)what, (int)in_dt, (int)odt,
                r, c, got, want);
    }
  }
  free(x);
  free(xin);
  free(out);
  return ok;
}

/* A NaN or Inf anywhere in the batch stops every kernel set. */
static void check_nonfinite(gmle_context *ctx, fixture *f, int level) {
  const size_t D = f->m.dim, C = f->m.n_classes, n = 700;
  double *x = calloc(n * D, sizeof(double));
  double *out = calloc(n * C, sizeof(double));
  x[(n - 3) * D + D - 1] = level == 2 ? INFINITY : NAN;
  gmle__cpu_isa_override(level);
  gmle__batch b = {
      .x = x, .dtype = GMLE_F64, .n_rows = n, .row_stride = D, .dim = D};
  CHECK(gmle__cpu_score(ctx, &cpu_state, &f->m, f->kp, &b, GMLE_OUT_LOGLIK,
                        GMLE_F64, out) == GMLE_E_NONFINITE_INPUT);
  free(x);
  free(out);
}

static gmle_context ctx;

/* Every output and dtype, at tile ends, of one model at kernel set level. */
static void run_model(int level, gmle_cov_type cov, size_t D, size_t C,
                      int with_empty) {
  static const size_t rows[] = {1, 13, 300, 1100};
  static const gmle_output whats[] = {GMLE_OUT_LOGLIK, GMLE_OUT_JOINT,
                                      GMLE_OUT_LOGPOST, GMLE_OUT_DENSITY,
                                      GMLE_OUT_LABEL};
  fixture f;
  fixture_init(&f, &ctx, cov, D, C, with_empty);
  CHECK(gmle__cpu_score_pack(&ctx, &f.m, &f.kp) == GMLE_OK);
  for (size_t ri = 0; ri < sizeof rows / sizeof *rows; ri++)
    for (size_t wi = 0; wi < sizeof whats / sizeof *whats; wi++)
      for (int dt = 0; dt < 4; dt++)
        if (!check_level(&ctx, &f, level, rows[ri],
                         dt & 1 ? GMLE_F32 : GMLE_F64, whats[wi],
                         dt & 2 ? GMLE_F32 : GMLE_F64))
          goto done;
  check_nonfinite(&ctx, &f, level);
done:
  gmle__cpu_isa_override(0);
  fixture_free(&f);
}

/* Every covariance type, ragged and exact dimensions, at one level. */
static void run_level(int level) {
  static const gmle_cov_type covs[] = {GMLE_COV_FULL, GMLE_COV_TIED,
                                       GMLE_COV_DIAG, GMLE_COV_SPHERICAL};
  static const size_t dims[] = {1, 5, 13, 40};
  for (size_t ci = 0; ci < 4; ci++)
    for (size_t di = 0; di < 4; di++) {
      run_model(level, covs[ci], dims[di], 10, 0);
      run_model(level, covs[ci], dims[di], 7, 1);
    }
}

TEST(score_kernels_generic_match_direct) { run_level(GMLE__ISA_GENERIC); }
TEST(score_kernels_avx2_match_direct) { run_level(GMLE__ISA_AVX2); }
TEST(score_kernels_avx512_match_direct) { run_level(GMLE__ISA_AVX512); }

int main(int argc, char **argv) {
  CHECK_INIT(argc, argv);
  ctx.n_threads = 2;
  printf("  best kernel set on this CPU: level %d\n", (int)gmle__cpu_isa());
  RUN(score_kernels_generic_match_direct);
  RUN(score_kernels_avx2_match_direct);
  RUN(score_kernels_avx512_match_direct);
  gmle__free(cpu_state.scratch);
  return CHECK_DONE();
}
