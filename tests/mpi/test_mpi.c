/* test_mpi.c -- libgmle_mpi under mpirun (1 to 4 ranks): statistics
 * combined across ranks equal the float64 reference of all the rows
 * (uneven shares, an empty rank, classes missing on some ranks) and are the
 * same bits on every rank; messages in pieces give the same bytes; EM from
 * a given start equals one process's gmle_em_fit; a failure on one rank
 * makes every rank return its status, never hang. Every rank builds the
 * same data and keeps its own share. */
#define _POSIX_C_SOURCE 200809L
#include "check.h"
#include "gmle_io.h"
#include "gmle_mpi.h"
#include "mpi_internal.h"
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static gmle_context *ctx;
static int rank, size;

#define N_ROWS 2000
#define DIM 5
#define N_CLASSES 4

static double X[N_ROWS * DIM];
static int32_t Y[N_ROWS];

/* Classes in blocks of rows (class c is rows [c N / C, (c + 1) N / C)), so
 * that most ranks miss some class. */
static void make_data(void) {
  tu_rng r;
  tu_seed(&r, 42);
  double means[N_CLASSES * DIM], covs[N_CLASSES * DIM * DIM];
  for (size_t c = 0; c < N_CLASSES; c++) {
    for (size_t j = 0; j < DIM; j++)
      means[c * DIM + j] = 100.0 + 3.0 * (double)c + tu_normal(&r);
    tu_random_spd(&r, DIM, 0.25, 4, covs + c * DIM * DIM);
  }
  for (size_t i = 0; i < N_ROWS; i++)
    Y[i] = (int32_t)(i * N_CLASSES / N_ROWS);
  tu_gen_gaussian(&r, N_ROWS, DIM, N_CLASSES, means, covs, Y, GMLE_F64, DIM, X);
}

/* Rank r's rows: [n r^2 / P^2, n (r + 1)^2 / P^2): uneven, and rank 0 has
 * none when P > 1. */
static void share(size_t n, size_t *first, size_t *count) {
  const size_t P = (size_t)size, r = (size_t)rank;
  const size_t a = r == 0 && P > 1 ? 0 : n * r * r / (P * P);
  const size_t b = n * (r + 1) * (r + 1) / (P * P);
  *first = a;
  *count = b - a;
}

/* Every rank's bytes of st equal rank 0's. */
static int same_on_every_rank(gmle_mpi *h, const gmle_stats *st) {
  size_t len = 0;
  if (gmle_stats_save_mem(st, NULL, 0, &len) != GMLE_OK)
    return 0;
  unsigned char *b = malloc(len);
  gmle_stats_save_mem(st, b, len, &len);
  void *all = NULL;
  size_t *off = malloc(((size_t)size + 1) * sizeof *off);
  int same = gmle_mpi_allgather(h, GMLE_OK, b, len, &all, off) == GMLE_OK;
  for (int r = 1; same && r < size; r++)
    same = off[r + 1] - off[r] == len &&
           memcmp((unsigned char *)all + off[r], all, len) == 0;
  free(all);
  free(off);
  free(b);
  return same;
}

/* This rank's statistics of its share (full or diagonal). */
static gmle_stats *local_stats(gmle_stats_mode mode) {
  size_t first, count;
  share(N_ROWS, &first, &count);
  gmle_stats *st = NULL;
  if (gmle_stats_create_mode(ctx, DIM, N_CLASSES, mode, &st) != GMLE_OK)
    return NULL;
  /* In two batches, as a reader would give them. */
  const size_t half = count / 2;
  if (gmle_stats_add(st, X + first * DIM, GMLE_F64, half, DIM, Y + first,
                     NULL) != GMLE_OK ||
      gmle_stats_add(st, X + (first + half) * DIM, GMLE_F64, count - half, DIM,
                     Y + first + half, NULL) != GMLE_OK) {
    gmle_stats_free(st);
    return NULL;
  }
  return st;
}

/* The largest relative error of a fit against the long double two-pass
 * reference of all the rows. */
static double error_vs_reference(const gmle_model *m, gmle_cov_type cov) {
  tu_ref ref;
  if (tu_ref_compute(&ref, X, GMLE_F64, N_ROWS, DIM, DIM, N_CLASSES, Y, NULL) !=
      0)
    return INFINITY;
  double worst = 0, want[DIM * DIM], got[DIM * DIM];
  for (size_t c = 0; c < N_CLASSES; c++) {
    tu_ref_mean(&ref, c, want);
    gmle_model_mean(m, c, got);
    for (size_t j = 0; j < DIM; j++)
      worst = fmax(worst, fabs(got[j] - want[j]) / fabs(want[j]));
    tu_ref_cov(&ref, cov, c, want);
    gmle_model_covariance(m, c, got);
    double scale = 0;
    for (size_t k = 0; k < DIM * DIM; k++)
      scale = fmax(scale, fabs(want[k]));
    for (size_t k = 0; k < DIM * DIM; k++)
      worst = fmax(worst, fabs(got[k] - want[k]) / scale);
  }
  tu_ref_free(&ref);
  return worst;
}

TEST(stats_allreduce_equals_the_reference_and_every_rank_holds_the_same_bits) {
  gmle_mpi *h = NULL;
  CHECK_STATUS(gmle_mpi_create(MPI_COMM_WORLD, &h), GMLE_OK);
  const gmle_stats_mode modes[2] = {GMLE_STATS_FULL, GMLE_STATS_DIAG};
  const gmle_cov_type covs[2] = {GMLE_COV_FULL, GMLE_COV_DIAG};
  for (int k = 0; k < 2; k++) {
    gmle_stats *mine = local_stats(modes[k]), *all = NULL;
    CHECK(mine != NULL);
    CHECK_STATUS(gmle_mpi_stats_allreduce(h, ctx, mine, &all), GMLE_OK);
    if (!all) {
      gmle_stats_free(mine);
      continue;
    }
    uint64_t rows = 0;
    for (size_t c = 0; c < N_CLASSES; c++) {
      uint64_t r = 0;
      gmle_stats_rows(all, c, &r);
      rows += r;
    }
    CHECK(rows == N_ROWS);
    gmle_fit_options fo;
    gmle_fit_options_init(&fo);
    fo.cov = covs[k];
    gmle_model *m = NULL;
    CHECK_STATUS(gmle_fit(all, &fo, &m), GMLE_OK);
    const double err = m ? error_vs_reference(m, covs[k]) : INFINITY;
    CHECK_MSG(err <= 1e-12, "P=%d %s: relative error %.3g", size,
              gmle_cov_name(covs[k]), err);
    CHECK(same_on_every_rank(h, all));
    /* In pieces of 7 bytes: the same bytes. */
    gmle_stats *again = NULL;
    gmle_mpi__set_max_message(7);
    CHECK_STATUS(gmle_mpi_stats_allreduce(h, ctx, mine, &again), GMLE_OK);
    gmle_mpi__set_max_message(0);
    size_t l1 = 0, l2 = 0;
    gmle_stats_save_mem(all, NULL, 0, &l1);
    unsigned char *b1 = malloc(l1), *b2 = malloc(l1);
    gmle_stats_save_mem(all, b1, l1, &l1);
    CHECK(again && gmle_stats_save_mem(again, b2, l1, &l2) == GMLE_OK &&
          l1 == l2 && memcmp(b1, b2, l1) == 0);
    free(b1);
    free(b2);
    gmle_stats_free(again);
    gmle_model_free(m);
    gmle_stats_free(all);
    gmle_stats_free(mine);
  }
  gmle_mpi_free(h);
}

TEST(sums_are_added_in_rank_order_and_u64_sums_are_exact) {
  gmle_mpi *h = NULL;
  CHECK_STATUS(gmle_mpi_create(MPI_COMM_WORLD, &h), GMLE_OK);
  double v[2] = {1e16, (double)(rank + 1) * 0.1};
  if (rank == 1)
    v[0] = 1.0; /* 1e16 + 1 + 1e16 ... depends on the order */
  CHECK_STATUS(gmle_mpi_sum(h, v, 2), GMLE_OK);
  double want0 = 0, want1 = 0;
  for (int r = 0; r < size; r++) {
    want0 += r == 1 ? 1.0 : 1e16;
    want1 += (double)(r + 1) * 0.1;
  }
  CHECK(memcmp(&v[0], &want0, 8) == 0 && memcmp(&v[1], &want1, 8) == 0);
  uint64_t u[3] = {(uint64_t)rank, 1, UINT64_C(1) << 62};
  CHECK_STATUS(gmle_mpi_sum_u64(h, u, 3), GMLE_OK);
  CHECK(u[0] == (uint64_t)(size * (size - 1) / 2) && u[1] == (uint64_t)size &&
        u[2] == (UINT64_C(1) << 62) * (uint64_t)size);
  gmle_mpi_free(h);
}

/* A batch source over this rank's share, in batches of 97 rows; it can be
 * made to fail at a given pass. */
typedef struct share_src {
  size_t first, count, at, pass, fail_pass;
  int labelled;
} share_src;

static gmle_status src_rewind(void *user) {
  share_src *s = user;
  s->at = 0;
  s->pass++;
  return GMLE_OK;
}

static gmle_status src_next(void *user, const void **x, gmle_dtype *dtype,
                            size_t *n_rows, size_t *row_stride,
                            const int32_t **labels, const double **weights) {
  share_src *s = user;
  if (s->pass == s->fail_pass && s->at > 0)
    return GMLE_E_IO;
  const size_t k = s->count - s->at < 97 ? s->count - s->at : 97;
  *x = X + (s->first + s->at) * DIM;
  *dtype = GMLE_F64;
  *n_rows = k;
  *row_stride = DIM;
  *labels = s->labelled ? Y + s->first + s->at : NULL;
  *weights = NULL;
  s->at += k;
  return GMLE_OK;
}

static double max_rel_diff(const double *a, const double *b, size_t n) {
  double scale = 0, d = 0;
  for (size_t i = 0; i < n; i++)
    scale = fmax(scale, fabs(b[i]));
  for (size_t i = 0; i < n; i++)
    d = fmax(d, fabs(a[i] - b[i]) / (scale > 0 ? scale : 1));
  return d;
}

/* Both mixtures' weights, means and covariances agree within tol. */
static int mixtures_agree(const gmle_model *a, const gmle_model *b,
                          size_t len_cov, double tol, double *worst) {
  const size_t G = gmle_model_n_classes(a) * gmle_model_n_components(a);
  double *pa = malloc((G + G * DIM + len_cov) * sizeof *pa);
  double *pb = malloc((G + G * DIM + len_cov) * sizeof *pb);
  gmle_mixture_params(a, pa, pa + G, pa + G + G * DIM);
  gmle_mixture_params(b, pb, pb + G, pb + G + G * DIM);
  *worst =
      fmax(fmax(max_rel_diff(pa, pb, G), max_rel_diff(pa + G, pb + G, G * DIM)),
           max_rel_diff(pa + G + G * DIM, pb + G + G * DIM, len_cov));
  free(pa);
  free(pb);
  return *worst <= tol;
}

TEST(em_from_a_given_start_equals_one_process) {
  const size_t K = 2;
  gmle_em_options o;
  gmle_em_options_init(&o);
  o.n_components = K;
  o.max_iter = 2;
  o.tol = 0;
  /* The start: 2 iterations of one process from k-means++. */
  share_src all = {0, N_ROWS, 0, 0, 0, 1};
  gmle_batch_source whole = {&all, src_rewind, src_next};
  gmle_model *start = NULL, *one = NULL, *many = NULL;
  CHECK_STATUS(gmle_em_fit(ctx, DIM, N_CLASSES, &whole, &o, &start), GMLE_OK);
  if (!start)
    return;
  o.init = GMLE_INIT_MODEL;
  o.init_model = start;
  o.max_iter = 15;
  CHECK_STATUS(gmle_em_fit(ctx, DIM, N_CLASSES, &whole, &o, &one), GMLE_OK);
  share_src mine = {0, 0, 0, 0, 0, 1};
  share(N_ROWS, &mine.first, &mine.count);
  gmle_batch_source part = {&mine, src_rewind, src_next};
  gmle_mpi *h = NULL;
  CHECK_STATUS(gmle_mpi_create(MPI_COMM_WORLD, &h), GMLE_OK);
  CHECK_STATUS(gmle_mpi_em_fit(h, ctx, DIM, N_CLASSES, &part, &o, &many),
               GMLE_OK);
  double worst = 0;
  CHECK_MSG(
      one && many &&
          mixtures_agree(many, one, N_CLASSES * K * DIM * DIM, 1e-10, &worst),
      "P=%d: largest relative difference %.3g", size, worst);
  gmle_em_report ra, rb;
  CHECK(one && many && gmle_model_em_report(one, &ra) == GMLE_OK &&
        gmle_model_em_report(many, &rb) == GMLE_OK && ra.n_iter == rb.n_iter &&
        ra.n_iter == 15 && fabs(ra.lower_bound - rb.lower_bound) <= 1e-12 &&
        ra.n_rows == rb.n_rows && rb.init == GMLE_INIT_MODEL);
  double la = 0, lb = 0;
  CHECK(one && many && gmle_model_loglik(one, 0, &la) == GMLE_OK &&
        gmle_model_loglik(many, 0, &lb) == GMLE_OK &&
        fabs(la - lb) <= 1e-10 * fabs(la));
  /* The same bits on every rank: each rank's weights, means, covariances. */
  if (many) {
    const size_t len = N_CLASSES * K * (1 + DIM + DIM * DIM);
    double *p = malloc(len * sizeof *p);
    gmle_mixture_params(many, p, p + N_CLASSES * K,
                        p + N_CLASSES * K * (1 + DIM));
    void *every = NULL;
    size_t *off = malloc(((size_t)size + 1) * sizeof *off);
    CHECK_STATUS(
        gmle_mpi_allgather(h, GMLE_OK, p, len * sizeof *p, &every, off),
        GMLE_OK);
    for (int r = 1; every && r < size; r++)
      CHECK(memcmp((char *)every + off[r], every, len * sizeof *p) == 0);
    free(every);
    free(off);
    free(p);
  }
  gmle_model_free(many);
  gmle_model_free(one);
  gmle_model_free(start);
  gmle_mpi_free(h);
}

TEST(em_from_a_sample_runs_and_gives_every_rank_the_same_model) {
  gmle_em_options o;
  gmle_em_options_init(&o);
  o.n_components = 3;
  o.n_init = 2;
  o.max_iter = 5;
  const gmle_em_init inits[2] = {GMLE_INIT_KMEANSPP, GMLE_INIT_SPLIT};
  for (int k = 0; k < 2; k++) {
    o.init = inits[k];
    share_src mine = {0, 0, 0, 0, 0, 1};
    share(N_ROWS, &mine.first, &mine.count);
    gmle_batch_source part = {&mine, src_rewind, src_next};
    gmle_mpi *h = NULL;
    CHECK_STATUS(gmle_mpi_create(MPI_COMM_WORLD, &h), GMLE_OK);
    gmle_model *m = NULL;
    CHECK_STATUS(gmle_mpi_em_fit(h, ctx, DIM, N_CLASSES, &part, &o, &m),
                 GMLE_OK);
    gmle_em_report rep;
    CHECK(m && gmle_model_em_report(m, &rep) == GMLE_OK && rep.n_init == 2 &&
          rep.init == inits[k] && rep.n_rows == N_ROWS &&
          isfinite(rep.lower_bound));
    double bic = 0;
    CHECK(m && gmle_model_information(m, &bic, NULL) == GMLE_OK &&
          isfinite(bic));
    double lb[1] = {m ? rep.lower_bound : 0}, lb0 = lb[0];
    /* Every rank the same: the sum is P times rank 0's value. */
    CHECK_STATUS(gmle_mpi_sum(h, lb, 1), GMLE_OK);
    double want = 0;
    for (int r = 0; r < size; r++)
      want += lb0;
    CHECK(lb[0] == want);
    gmle_model_free(m);
    gmle_mpi_free(h);
  }
}

TEST(a_failing_rank_fails_every_rank_without_a_hang) {
  /* A failure between collectives, agreed at the others' next one. */
  gmle_mpi *h = NULL;
  CHECK_STATUS(gmle_mpi_create(MPI_COMM_WORLD, &h), GMLE_OK);
  gmle_stats *mine = local_stats(GMLE_STATS_FULL), *all = NULL;
  const int bad = size - 1;
  gmle_status s = rank == bad ? gmle_mpi_agree(h, GMLE_E_NONFINITE_INPUT)
                              : gmle_mpi_stats_allreduce(h, ctx, mine, &all);
  CHECK(s == GMLE_E_NONFINITE_INPUT && all == NULL);
  CHECK(gmle_mpi_failed_rank(h) == bad);
  CHECK(rank == bad || strstr(gmle_mpi_error(h), "rank") != NULL);
  /* The handle stays failed: no more communication. */
  CHECK_STATUS(gmle_mpi_agree(h, GMLE_OK), GMLE_E_NONFINITE_INPUT);
  gmle_stats_free(mine);
  gmle_mpi_free(h);
  /* A batch source failing on one rank at EM's third pass. */
  CHECK_STATUS(gmle_mpi_create(MPI_COMM_WORLD, &h), GMLE_OK);
  gmle_em_options o;
  gmle_em_options_init(&o);
  o.n_components = 2;
  share_src src = {0, 0, 0, 0, rank == bad ? 3 : 0, 1};
  share(N_ROWS, &src.first, &src.count); /* the last rank's is the largest */
  gmle_batch_source part = {&src, src_rewind, src_next};
  gmle_model *m = NULL;
  s = gmle_mpi_em_fit(h, ctx, DIM, N_CLASSES, &part, &o, &m);
  CHECK_MSG(s == GMLE_E_IO && m == NULL, "rank %d: %s", rank,
            gmle_status_name(s));
  CHECK(gmle_mpi_failed_rank(h) == bad);
  gmle_model_free(m);
  gmle_mpi_free(h);
  /* A combined fit must start from a given model. */
  gmle_em_combine none = {NULL, NULL, NULL};
  o.combine = &none;
  share_src whole = {0, N_ROWS, 0, 0, 0, 1};
  gmle_batch_source all_rows = {&whole, src_rewind, src_next};
  CHECK_STATUS(gmle_em_fit(ctx, DIM, N_CLASSES, &all_rows, &o, &m),
               GMLE_E_INVALID_ARG);
  CHECK_ERROR_HAS(ctx, "GMLE_INIT_MODEL");
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  CHECK_INIT(argc, argv);
  if (gmle_context_create(GMLE_BACKEND_CPU, -1, &ctx) != GMLE_OK) {
    printf("cannot create a context: %s\n", gmle_context_error(ctx));
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  make_data();
  RUN(stats_allreduce_equals_the_reference_and_every_rank_holds_the_same_bits);
  RUN(sums_are_added_in_rank_order_and_u64_sums_are_exact);
  RUN(em_from_a_given_start_equals_one_process);
  RUN(em_from_a_sample_runs_and_gives_every_rank_the_same_model);
  RUN(a_failing_rank_fails_every_rank_without_a_hang);
  gmle_context_free(ctx);
  const int failed = CHECK_DONE();
  int any = 0;
  MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  MPI_Finalize();
  return any;
}
