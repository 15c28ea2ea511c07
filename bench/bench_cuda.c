/*
 * bench_cuda.c -- gmle on an NVIDIA GPU against the machine's own limits
 * (built only when GMLE_ENABLE_CUDA is on; needs a GPU to run).
 *
 * Limits measured in the same run:
 *   - host-to-device bandwidth from pinned memory (and from pageable);
 *   - device memory read bandwidth (cublasSasum over 1 GiB);
 *   - float32 / float64 nominal peaks (SMs x lanes x 2 x clock) and the
 *     cuBLAS SGEMM / DGEMM rate on 8192^3;
 *   - cuBLAS SSYRK / DSYRK on the fit's shapes (N x D -> D x D).
 * gmle:
 *   - streamed fit from pinned host memory (gmle_stats_add, float32, full
 *     covariance statistics) for D in {13, 40, 128, 512, 1024} and
 *     C in {1, 1000}: rows/s, input GB/s and the fraction of pinned H2D;
 *   - device-resident fit (gmle_cuda_stats_add_device), same shapes: rows/s
 *     and the fraction of the device read bandwidth (D <= 64) or of the
 *     float64 peak (D >= 128, N D (D+1) flops: the Gram kernel multiplies
 *     in float64, two FMAs per shared-memory load, which bounds it near half
 *     of that peak, so the target is 35%), and against cuBLAS DSYRK on the
 *     same shape (target 0.5: DSYRK may run on the float64 tensor cores);
 *     SSYRK is shown for reference only; the time with 1000 classes over
 *     the time with 1, a target (<= 1.2x) only where the 1000 classes'
 *     float64 statistics (C D^2 8 bytes, zeroed, copied back and added on
 *     the host per batch) are at most a tenth of the batch's input, which
 *     they exceed by far at D = 512 and 1024;
 *   - full-covariance scoring (gmle_cuda_score_device, log-posteriors,
 *     float32 out) in useful TFLOP/s (2 N C D^2) against cuBLAS SGEMM on
 *     the same product (C D x N x D, N up to a tile of 2^28 outputs), and
 *     the same from pinned host memory through gmle_score.
 * Prints one summary table at the end: every measurement with its limit,
 * and for the acceptance criteria the target and PASS / FAIL.
 *
 *   - with --em only: an EM iteration (E-step, statistics, M-step) of float32
 *     rows, D = 40, N = 10^6, diag K = 64 and full K = 16 (the bench
 *     shapes), on CUDA and on the CPU backend in the same run: seconds,
 *     rows/s, N K D per second and the speed-up, and one line per shape for
 *     BENCHMARKS.md ("EM iteration ...").
 *
 * Usage: bench_cuda [--quick] [--em]   (--quick: smaller data, fewer
 *        repetitions; --em: only the EM measurements)
 * Exit status: 0 (whatever the criteria say: the table reports them), or 2
 * when there is no usable GPU or a call fails.
 */
#include <gmle.h>
#include <gmle_cuda.h>

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int quick;

#define CK(call)                                                               \
  do {                                                                         \
    cudaError_t e_ = (call);                                                   \
    if (e_ != cudaSuccess) {                                                   \
      fprintf(stderr, "%s:%d: %s: %s (%d)\n", __FILE__, __LINE__, #call,       \
              cudaGetErrorName(e_), (int)e_);                                  \
      exit(2);                                                                 \
    }                                                                          \
  } while (0)
#define CB(call)                                                               \
  do {                                                                         \
    cublasStatus_t e_ = (call);                                                \
    if (e_ != CUBLAS_STATUS_SUCCESS) {                                         \
      fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call,            \
              cublasGetStatusName(e_));                                        \
      exit(2);                                                                 \
    }                                                                          \
  } while (0)
#define GK(ctx, call)                                                          \
  do {                                                                         \
    gmle_status s_ = (call);                                                   \
    if (s_ != GMLE_OK) {                                                       \
      fprintf(stderr, "%s:%d: %s: %s: %s\n", __FILE__, __LINE__, #call,        \
              gmle_status_name(s_), gmle_context_error(ctx));                  \
      exit(2);                                                                 \
    }                                                                          \
  } while (0)

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ------------------------------------------------------------------------ */
/* Summary table                                                            */
/* ------------------------------------------------------------------------ */

typedef struct row {
  char what[100];
  double value;
  char unit[16];
  double ref; /* a limit it is compared with (0: none) */
  char ref_name[40];
  double target; /* acceptance: value/ref >= target (> 0), value <= -target
                    (< 0; ref unused), none (0) */
} row;

static row rows[128];
static int n_rows;

static row *record(const char *what, double value, const char *unit, double ref,
                   const char *ref_name) {
  static row spare;
  if (n_rows >= (int)(sizeof rows / sizeof rows[0]))
    return &spare;
  row *r = &rows[n_rows++];
  snprintf(r->what, sizeof r->what, "%.99s", what);
  r->value = value;
  snprintf(r->unit, sizeof r->unit, "%s", unit);
  r->ref = ref;
  snprintf(r->ref_name, sizeof r->ref_name, "%s", ref_name ? ref_name : "");
  r->target = 0;
  printf("  %-56s %12.3f %-8s\n", what, value, unit);
  fflush(stdout);
  return r;
}

/* ------------------------------------------------------------------------ */
/* Data                                                                     */
/* ------------------------------------------------------------------------ */

static uint64_t rng_state = 0x2545f4914f6cdd1dull;
static uint64_t rnd(void) {
  uint64_t x = rng_state;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  rng_state = x;
  return x * 0x2545f4914f6cdd1dull;
}
/* Roughly normal (sum of 4 uniforms, centred and scaled). */
static float rnorm(void) {
  double s = 0;
  for (int i = 0; i < 4; i++)
    s += (double)(rnd() >> 11) * (1.0 / 9007199254740992.0);
  return (float)((s - 2.0) * 1.7320508);
}

/* ------------------------------------------------------------------------ */
/* Limits                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct limits {
  double h2d_pinned, h2d_pageable, dev_read; /* GB/s */
  double f32_peak, f64_peak;                 /* nominal TFLOP/s */
  double sgemm, dgemm;                       /* TFLOP/s */
} limits;

static double time_events(cudaEvent_t a, cudaEvent_t b) {
  float ms = 0;
  CK(cudaEventSynchronize(b));
  CK(cudaEventElapsedTime(&ms, a, b));
  return (double)ms * 1e-3;
}

static void measure_limits(cublasHandle_t h, limits *L) {
  struct cudaDeviceProp p;
  CK(cudaGetDeviceProperties(&p, 0));
  int clock_khz = 0;
  if (cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, 0) !=
      cudaSuccess)
    (void)cudaGetLastError();
  /* FP32 / FP64 lanes per SM (non-tensor), by compute capability. */
  int f32_lanes = 128, f64_lanes = 2;
  if (p.major == 8 && p.minor == 0) {
    f32_lanes = 64;
    f64_lanes = 32;
  } else if (p.major == 9) {
    f64_lanes = 64;
  } else if (p.major == 10 && p.minor == 0) {
    f64_lanes = 64;
  }
  const double ghz = clock_khz * 1e-6;
  L->f32_peak = p.multiProcessorCount * f32_lanes * 2.0 * ghz * 1e-3;
  L->f64_peak = p.multiProcessorCount * f64_lanes * 2.0 * ghz * 1e-3;
  printf("device: %s, compute capability %d.%d, %d SMs, %.2f GHz, %.1f GiB\n",
         p.name, p.major, p.minor, p.multiProcessorCount, ghz,
         (double)p.totalGlobalMem / (double)(1ull << 30));
  record("nominal float32 peak (CUDA cores)", L->f32_peak, "TFLOP/s", 0, 0);
  record("nominal float64 peak (CUDA cores)", L->f64_peak, "TFLOP/s", 0, 0);

  const size_t bytes = (quick ? 256ull : 1024ull) << 20;
  void *hp = NULL, *d = NULL;
  void *hg = malloc(bytes);
  CK(cudaHostAlloc(&hp, bytes, cudaHostAllocDefault));
  CK(cudaMalloc(&d, bytes));
  memset(hp, 1, bytes);
  memset(hg, 1, bytes);
  cudaEvent_t a, b;
  CK(cudaEventCreate(&a));
  CK(cudaEventCreate(&b));
  CK(cudaMemcpy(d, hp, bytes, cudaMemcpyHostToDevice));
  double best = 1e30;
  for (int r = 0; r < 5; r++) {
    CK(cudaEventRecord(a, 0));
    CK(cudaMemcpyAsync(d, hp, bytes, cudaMemcpyHostToDevice, 0));
    CK(cudaEventRecord(b, 0));
    const double t = time_events(a, b);
    best = t < best ? t : best;
  }
  L->h2d_pinned = (double)bytes / best * 1e-9;
  record("host-to-device, pinned", L->h2d_pinned, "GB/s", 0, 0);
  best = 1e30;
  for (int r = 0; r < 3; r++) {
    const double t0 = now();
    CK(cudaMemcpy(d, hg, bytes, cudaMemcpyHostToDevice));
    const double t = now() - t0;
    best = t < best ? t : best;
  }
  L->h2d_pageable = (double)bytes / best * 1e-9;
  record("host-to-device, pageable", L->h2d_pageable, "GB/s", L->h2d_pinned,
         "pinned H2D");
  /* Device read bandwidth: Sasum reads every element once. */
  const int n = (int)(bytes / sizeof(float));
  float res = 0;
  CB(cublasSasum(h, n, d, 1, &res));
  best = 1e30;
  for (int r = 0; r < 10; r++) {
    CK(cudaEventRecord(a, 0));
    CB(cublasSasum(h, n, d, 1, &res));
    CK(cudaEventRecord(b, 0));
    const double t = time_events(a, b);
    best = t < best ? t : best;
  }
  L->dev_read = (double)bytes / best * 1e-9;
  record("device memory read (cublasSasum)", L->dev_read, "GB/s", 0, 0);
  CK(cudaFree(d));
  CK(cudaFreeHost(hp));
  free(hg);

  /* GEMM rates. */
  const int m = quick ? 4096 : 8192;
  const size_t mm = (size_t)m * m;
  void *A, *B, *C;
  CK(cudaMalloc(&A, mm * 8));
  CK(cudaMalloc(&B, mm * 8));
  CK(cudaMalloc(&C, mm * 8));
  CK(cudaMemset(A, 0, mm * 8));
  CK(cudaMemset(B, 0, mm * 8));
  const float f1 = 1, f0 = 0;
  const double d1 = 1, d0 = 0;
  for (int prec = 0; prec < 2; prec++) {
    best = 1e30;
    for (int r = 0; r < 4; r++) {
      CK(cudaEventRecord(a, 0));
      if (prec == 0)
        CB(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, m, m, m, &f1, A, m, B, m,
                       &f0, C, m));
      else
        CB(cublasDgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, m, m, m, &d1, A, m, B, m,
                       &d0, C, m));
      CK(cudaEventRecord(b, 0));
      const double t = time_events(a, b);
      best = r > 0 && t < best ? t : best; /* first is warm-up */
    }
    const double tf = 2.0 * m * (double)m * m / best * 1e-12;
    if (prec == 0) {
      L->sgemm = tf;
      record("cuBLAS SGEMM 8192^3 (default math: no TF32)", tf, "TFLOP/s",
             L->f32_peak, "f32 peak");
    } else {
      L->dgemm = tf;
      record("cuBLAS DGEMM 8192^3", tf, "TFLOP/s", L->f64_peak, "f64 peak");
    }
  }
  CK(cudaFree(A));
  CK(cudaFree(B));
  CK(cudaFree(C));
  CK(cudaEventDestroy(a));
  CK(cudaEventDestroy(b));
}

/* The best of 3 timed runs of a cuBLAS product, after a warm-up. */
typedef struct product {
  cublasHandle_t h;
  int kind; /* 0: SSYRK, 1: DSYRK, 2: SGEMM (op(A) = A^T) */
  int m, n, k;
  void *A, *B, *C;
} product;

static void product_run(const product *p) {
  const float f1 = 1, f0 = 0;
  const double d1 = 1, d0 = 0;
  switch (p->kind) {
  case 0:
    CB(cublasSsyrk(p->h, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_N, p->m, p->k, &f1,
                   p->A, p->m, &f0, p->C, p->m));
    break;
  case 1:
    CB(cublasDsyrk(p->h, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_N, p->m, p->k, &d1,
                   p->A, p->m, &d0, p->C, p->m));
    break;
  default:
    CB(cublasSgemm(p->h, CUBLAS_OP_T, CUBLAS_OP_N, p->m, p->n, p->k, &f1, p->A,
                   p->k, p->B, p->k, &f0, p->C, p->m));
  }
}

static double product_seconds(const product *p) {
  cudaEvent_t a, b;
  CK(cudaEventCreate(&a));
  CK(cudaEventCreate(&b));
  double best = 1e30;
  for (int r = 0; r < 4; r++) {
    CK(cudaEventRecord(a, 0));
    product_run(p);
    CK(cudaEventRecord(b, 0));
    const double t = time_events(a, b);
    best = r > 0 && t < best ? t : best; /* the first is a warm-up */
  }
  CK(cudaEventDestroy(a));
  CK(cudaEventDestroy(b));
  return best;
}

/* Zeroed device memory for a product's operand. */
static void *zeros(size_t bytes) {
  void *p = NULL;
  CK(cudaMalloc(&p, bytes ? bytes : 1));
  CK(cudaMemset(p, 0, bytes ? bytes : 1));
  return p;
}

/* cuBLAS SYRK on N x D (row-major) -> D x D, rows per second (default
 * math: no TF32). */
static double syrk_rate(cublasHandle_t h, size_t N, int D, int dbl) {
  const size_t es = dbl ? 8 : 4;
  product p = {h, dbl ? 1 : 0, D, 0, (int)N, NULL, NULL, NULL};
  p.A = zeros(N * (size_t)D * es);
  p.C = zeros((size_t)D * D * es);
  const double t = product_seconds(&p);
  CK(cudaFree(p.A));
  CK(cudaFree(p.C));
  return (double)N / t;
}

/* cuBLAS SGEMM (default math: no TF32) on an m x n x k product, TFLOP/s. */
static double sgemm_rate(cublasHandle_t h, int m, int n, int k) {
  product p = {h, 2, m, n, k, NULL, NULL, NULL};
  p.A = zeros((size_t)m * k * 4);
  p.B = zeros((size_t)k * n * 4);
  p.C = zeros((size_t)m * n * 4);
  const double t = product_seconds(&p);
  CK(cudaFree(p.A));
  CK(cudaFree(p.B));
  CK(cudaFree(p.C));
  return 2.0 * m * (double)n * k / t * 1e-12;
}

/* ------------------------------------------------------------------------ */
/* gmle                                                                     */
/* ------------------------------------------------------------------------ */

/* Rows in bench_fit's data set and in one gmle_stats_add call. */
static size_t fit_rows(size_t D) {
  const size_t target = (quick ? 256ull : 2048ull) << 20; /* input bytes */
  const size_t N = target / (D * 4);
  return N < ((size_t)1 << 26) ? N : (size_t)1 << 26;
}
#define FIT_BATCH_ROWS ((size_t)1 << 22)

/* Whether C classes' float64 statistics (zeroed, copied back and added on
 * the host per batch) are small beside a batch's input: only then can the
 * time with C classes stay near the time with one. */
static int many_classes_holdable(size_t D, size_t C) {
  const size_t N = fit_rows(D);
  const size_t batch_rows = N < FIT_BATCH_ROWS ? N : FIT_BATCH_ROWS;
  return (double)C * (double)D * (double)D * 8.0 <=
         0.1 * (double)batch_rows * (double)D * 4.0;
}

/* Seconds for the whole data set, streamed and device-resident. */
typedef struct fit_times {
  double streamed, resident;
} fit_times;

static fit_times bench_fit(gmle_context *ctx, cublasHandle_t h, const limits *L,
                           size_t D, size_t C) {
  fit_times ft;
  const size_t N = fit_rows(D);
  float *x = NULL;
  int32_t *lab = NULL;
  CK(cudaHostAlloc((void **)&x, N * D * 4, cudaHostAllocDefault));
  CK(cudaHostAlloc((void **)&lab, N * 4, cudaHostAllocDefault));
  for (size_t i = 0; i < N; i++) {
    lab[i] = (int32_t)(rnd() % C);
    for (size_t j = 0; j < D; j++)
      x[i * D + j] = 1000.0f + (float)lab[i] + rnorm();
  }
  const size_t batch = FIT_BATCH_ROWS; /* rows per gmle_stats_add */
  char what[96];
  /* Streamed from pinned host memory. */
  double best = 1e30;
  for (int r = 0; r < (quick ? 1 : 2); r++) {
    gmle_stats *st = NULL;
    GK(ctx, gmle_stats_create(ctx, D, C, &st));
    const double t0 = now();
    for (size_t r0 = 0; r0 < N; r0 += batch) {
      const size_t k = N - r0 < batch ? N - r0 : batch;
      GK(ctx, gmle_stats_add(st, x + r0 * D, GMLE_F32, k, D,
                             C > 1 ? lab + r0 : NULL, NULL));
    }
    const double t = now() - t0;
    best = t < best ? t : best;
    gmle_stats_free(st);
  }
  const double gbs = (double)N * (D * 4 + (C > 1 ? 4 : 0)) / best * 1e-9;
  snprintf(what, sizeof what, "fit streamed, pinned: D=%zu C=%zu (Mrows/s)", D,
           C);
  record(what, (double)N / best * 1e-6, "Mrows/s", 0, 0);
  snprintf(what, sizeof what, "fit streamed, pinned: D=%zu C=%zu (input)", D,
           C);
  record(what, gbs, "GB/s", L->h2d_pinned, "pinned H2D")->target = 0.90;
  ft.streamed = best;
  /* Device-resident. */
  void *dx = NULL, *dl = NULL;
  CK(cudaMalloc(&dx, N * D * 4));
  CK(cudaMalloc(&dl, N * 4));
  CK(cudaMemcpy(dx, x, N * D * 4, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(dl, lab, N * 4, cudaMemcpyHostToDevice));
  best = 1e30;
  for (int r = 0; r < (quick ? 1 : 3); r++) {
    gmle_stats *st = NULL;
    GK(ctx, gmle_stats_create(ctx, D, C, &st));
    const double t0 = now();
    GK(ctx, gmle_cuda_stats_add_device(st, dx, GMLE_F32, N, D,
                                       C > 1 ? dl : NULL, NULL));
    const double t = now() - t0;
    best = t < best ? t : best;
    gmle_stats_free(st);
  }
  ft.resident = best;
  const size_t ns = N < ((size_t)1 << 22) ? N : (size_t)1 << 22;
  const double dsyrk = syrk_rate(h, ns, (int)D, 1);
  const double ssyrk = syrk_rate(h, ns, (int)D, 0);
  snprintf(what, sizeof what, "fit device-resident: D=%zu C=%zu", D, C);
  record(what, (double)N / best * 1e-6, "Mrows/s", dsyrk * 1e-6, "cuBLAS DSYRK")
      ->target = 0.5;
  snprintf(what, sizeof what, "  same, against SSYRK: D=%zu C=%zu", D, C);
  record(what, (double)N / best * 1e-6, "Mrows/s", ssyrk * 1e-6,
         "cuBLAS SSYRK");
  snprintf(what, sizeof what, "fit device-resident: D=%zu C=%zu (input)", D, C);
  record(what, (double)N * (D * 4 + (C > 1 ? 4 : 0)) / best * 1e-9, "GB/s",
         L->dev_read, "device read")
      ->target = D <= 64 ? 0.80 : 0;
  snprintf(what, sizeof what, "fit device-resident: D=%zu C=%zu (flops)", D, C);
  record(what, (double)N * (double)D * (double)(D + 1) / best * 1e-12,
         "TFLOP/s", L->f64_peak, "f64 peak")
      ->target = D >= 128 ? 0.35 : 0;
  CK(cudaFree(dx));
  CK(cudaFree(dl));
  CK(cudaFreeHost(x));
  CK(cudaFreeHost(lab));
  return ft;
}

static void bench_score(gmle_context *ctx, cublasHandle_t h, const limits *L,
                        size_t D, size_t C) {
  const size_t N = quick ? 65536 : 262144;
  double *means = malloc(C * D * 8), *covs = calloc(C * D * D, 8);
  for (size_t c = 0; c < C; c++)
    for (size_t j = 0; j < D; j++) {
      means[c * D + j] = (double)rnorm();
      covs[c * D * D + j * D + j] = 0.5 + (double)(rnd() % 100) / 100.0;
    }
  gmle_model *m = NULL;
  GK(ctx,
     gmle_model_create(ctx, D, C, GMLE_COV_FULL, means, covs, NULL, NULL, &m));
  float *x = NULL;
  CK(cudaHostAlloc((void **)&x, N * D * 4, cudaHostAllocDefault));
  for (size_t i = 0; i < N * D; i++)
    x[i] = rnorm();
  float *out = NULL;
  CK(cudaHostAlloc((void **)&out, N * C * 4, cudaHostAllocDefault));
  void *dx = NULL, *dout = NULL;
  CK(cudaMalloc(&dx, N * D * 4));
  CK(cudaMalloc(&dout, N * C * 4));
  CK(cudaMemcpy(dx, x, N * D * 4, cudaMemcpyHostToDevice));
  const double flops = 2.0 * (double)N * (double)C * (double)D * (double)D;
  char what[96];
  double best = 1e30;
  for (int r = 0; r < 3; r++) {
    const double t0 = now();
    GK(ctx, gmle_cuda_score_device(ctx, m, dx, GMLE_F32, N, D, GMLE_OUT_LOGPOST,
                                   GMLE_F32, dout));
    const double t = now() - t0;
    best = r > 0 && t < best ? t : best;
  }
  snprintf(what, sizeof what, "  same, against DGEMM 8192^3: D=%zu C=%zu", D,
           C);
  record(what, flops / best * 1e-12, "TFLOP/s", L->dgemm, "cuBLAS DGEMM");
  /* cuBLAS SGEMM on the same product: (C D) x N x D, N cut to a tile of
   * at most 2^28 outputs. */
  const size_t cd = C * D;
  size_t nt = ((size_t)1 << 28) / cd;
  nt = nt < N ? nt : N;
  const double sg = sgemm_rate(h, (int)cd, (int)nt, (int)D);
  snprintf(what, sizeof what, "score full, device-resident: D=%zu C=%zu", D, C);
  record(what, flops / best * 1e-12, "TFLOP/s", sg, "SGEMM same shape")
      ->target = 0.70;
  snprintf(what, sizeof what, "  same, against SGEMM 8192^3: D=%zu C=%zu", D,
           C);
  record(what, flops / best * 1e-12, "TFLOP/s", L->sgemm, "cuBLAS SGEMM");
  best = 1e30;
  for (int r = 0; r < 2; r++) {
    const double t0 = now();
    GK(ctx,
       gmle_score(ctx, m, x, GMLE_F32, N, D, GMLE_OUT_LOGPOST, GMLE_F32, out));
    const double t = now() - t0;
    best = t < best ? t : best;
  }
  snprintf(what, sizeof what, "score full, pinned host: D=%zu C=%zu", D, C);
  record(what, (double)N / best * 1e-6, "Mrows/s", 0, 0);
  CK(cudaFree(dx));
  CK(cudaFree(dout));
  CK(cudaFreeHost(x));
  CK(cudaFreeHost(out));
  gmle_model_free(m);
  free(means);
  free(covs);
}

/* ------------------------------------------------------------------------ */
/* EM                                                                       */
/* ------------------------------------------------------------------------ */

#define EM_D 40
#define EM_BATCH 65536

/* One EM iteration from m (the E-step and the statistics over the rows in
 * batches of EM_BATCH, then the M-step): seconds. */
static double em_iteration(gmle_context *ctx, const gmle_model *m,
                           const float *x, size_t N, gmle_cov_type cov) {
  gmle_em_options opt;
  gmle_em_options_init(&opt);
  opt.n_components = gmle_model_n_components(m);
  opt.cov = cov;
  const double t0 = now();
  gmle_em_stats *es = NULL;
  GK(ctx, gmle_em_stats_create(ctx, m, &opt, &es));
  for (size_t r0 = 0; r0 < N; r0 += EM_BATCH)
    GK(ctx, gmle_em_stats_add(es, x + r0 * EM_D, GMLE_F32,
                              N - r0 < EM_BATCH ? N - r0 : EM_BATCH, EM_D, NULL,
                              NULL));
  gmle_model *next = NULL;
  GK(ctx, gmle_em_step(es, m, &opt, &next));
  const double t = now() - t0;
  gmle_model_free(next);
  gmle_em_stats_free(es);
  return t;
}

/* The start on ctx: K rows of x as means, unit variances, equal weights. */
static gmle_model *em_start(gmle_context *ctx, const float *x, size_t N,
                            size_t K, gmle_cov_type cov) {
  const size_t D = EM_D, cl = cov == GMLE_COV_FULL ? D * D : D;
  double *w = malloc(K * 8), *mu = malloc(K * D * 8), *cv = calloc(K * cl, 8);
  for (size_t k = 0; k < K; k++) {
    w[k] = 1.0 / (double)K;
    for (size_t j = 0; j < D; j++) {
      mu[k * D + j] = (double)x[(k * (N / K)) * D + j];
      cv[k * cl + (cov == GMLE_COV_FULL ? j * D + j : j)] = 1.0;
    }
  }
  gmle_model *m = NULL;
  GK(ctx, gmle_mixture_create(ctx, D, 1, K, cov, w, mu, cv, NULL, NULL, &m));
  free(w);
  free(mu);
  free(cv);
  return m;
}

/* Per EM iteration, float32 rows, D = 40, N = 10^6 (--quick: 2.5 10^5), K
 * components (the bench shapes): on the CUDA context (best of
 * three after one warm-up) and on the CPU backend in the same run (one
 * after a warm-up): seconds, rows/s and N K D per second. */
static void bench_em(gmle_context *gpu, size_t K, gmle_cov_type cov) {
  const size_t N = quick ? 250000 : 1000000, D = EM_D;
  float *x = NULL;
  CK(cudaHostAlloc((void **)&x, N * D * 4, cudaHostAllocDefault));
  /* K clusters: centres spread by 4 standard deviations. */
  float *centre = malloc(K * D * 4);
  for (size_t i = 0; i < K * D; i++)
    centre[i] = 4.0f * rnorm();
  for (size_t r = 0; r < N; r++)
    for (size_t j = 0; j < D; j++)
      x[r * D + j] = centre[(r % K) * D + j] + rnorm();
  free(centre);
  const char *name = gmle_cov_name(cov);
  gmle_model *mg = em_start(gpu, x, N, K, cov);
  (void)em_iteration(gpu, mg, x, N, cov);
  double tg = 1e30;
  for (int r = 0; r < 3; r++) {
    const double t = em_iteration(gpu, mg, x, N, cov);
    tg = t < tg ? t : tg;
  }
  gmle_model_free(mg);
  gmle_context *cpu = NULL;
  double tc = 0;
  if (gmle_context_create(GMLE_BACKEND_CPU, -1, &cpu) == GMLE_OK) {
    gmle_model *mc = em_start(cpu, x, N, K, cov);
    (void)em_iteration(cpu, mc, x, N, cov);
    tc = em_iteration(cpu, mc, x, N, cov);
    gmle_model_free(mc);
  }
  gmle_context_free(cpu);
  const double nkd = (double)N * (double)K * (double)D;
  char what[100];
  snprintf(what, sizeof what, "EM iteration, CUDA: %s K=%zu D=%zu N=%zu f32",
           name, K, D, N);
  record(what, tg, "s", 0, 0);
  snprintf(what, sizeof what, "  rows/s, CUDA: %s K=%zu", name, K);
  record(what, (double)N / tg * 1e-6, "Mrows/s", 0, 0);
  snprintf(what, sizeof what, "  N K D per second, CUDA: %s K=%zu", name, K);
  record(what, nkd / tg * 1e-9, "G/s", 0, 0);
  snprintf(what, sizeof what, "EM iteration, CPU backend: %s K=%zu D=%zu", name,
           K, D);
  record(what, tc, "s", 0, 0);
  snprintf(what, sizeof what, "  CUDA speed-up over the CPU: %s K=%zu", name,
           K);
  record(what, tc / tg, "x", 0, 0);
  /* The line for BENCHMARKS.md. */
  printf(
      "EM iteration %s K=%zu D=%zu N=%zu float32: CUDA %.3f s (%.2f Mrows/s, "
      "%.2f G NKD/s), CPU backend %.3f s (%.2f Mrows/s, OMP_NUM_THREADS=%s), "
      "%.1fx\n",
      name, K, D, N, tg, (double)N / tg * 1e-6, nkd / tg * 1e-9, tc,
      tc > 0 ? (double)N / tc * 1e-6 : 0.0,
      getenv("OMP_NUM_THREADS") ? getenv("OMP_NUM_THREADS") : "unset",
      tc / tg);
  fflush(stdout);
  CK(cudaFreeHost(x));
}

static int summary(void);

int main(int argc, char **argv) {
  int em_only = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--quick") == 0) {
      quick = 1;
    } else if (strcmp(argv[i], "--em") == 0) {
      em_only = 1;
    } else {
      fprintf(stderr, "usage: %s [--quick] [--em]\n", argv[0]);
      return 2;
    }
  }
  gmle_context *ctx = NULL;
  if (gmle_context_create(GMLE_BACKEND_CUDA, 0, &ctx) != GMLE_OK) {
    fprintf(stderr, "bench_cuda: no CUDA device: %s\n",
            gmle_context_error(ctx));
    gmle_context_free(ctx);
    return 2;
  }
  printf("gmle %s on %s\n", gmle_version_string(),
         gmle_context_device_name(ctx));
  if (em_only) {
    printf("== em\n");
    bench_em(ctx, 64, GMLE_COV_DIAG);
    bench_em(ctx, 16, GMLE_COV_FULL);
    gmle_context_free(ctx);
    return summary();
  }
  cublasHandle_t h;
  CK(cudaSetDevice(0));
  CB(cublasCreate(&h));
  limits L;
  memset(&L, 0, sizeof L);
  printf("== limits\n");
  measure_limits(h, &L);
  printf("== fit\n");
  static const size_t dims[] = {13, 40, 128, 512, 1024};
  for (size_t a = 0; a < sizeof dims / sizeof dims[0]; a++) {
    const fit_times one = bench_fit(ctx, h, &L, dims[a], 1);
    const fit_times many = bench_fit(ctx, h, &L, dims[a], 1000);
    char what[96];
    snprintf(what, sizeof what, "fit time C=1000 / C=1, streamed: D=%zu",
             dims[a]);
    const double limit = many_classes_holdable(dims[a], 1000) ? -1.2 : 0;
    record(what, many.streamed / one.streamed, "x", 0, 0)->target = limit;
    snprintf(what, sizeof what, "fit time C=1000 / C=1, device-resident: D=%zu",
             dims[a]);
    record(what, many.resident / one.resident, "x", 0, 0)->target = limit;
  }
  printf("== score\n");
  bench_score(ctx, h, &L, 40, 64);
  bench_score(ctx, h, &L, 128, 64);
  bench_score(ctx, h, &L, 40, 1000);
  CB(cublasDestroy(h));
  gmle_context_free(ctx);
  return summary();
}

/* The summary table of every measurement; 0. */
static int summary(void) {
  printf("\n%-58s %12s %-8s %12s  %-26s %s\n", "summary", "value", "unit",
         "limit", "fraction of limit", "acceptance");
  int pass = 0, fail = 0;
  for (int i = 0; i < n_rows; i++) {
    const row *r = &rows[i];
    char frac[64] = "", verdict[48] = "";
    if (r->ref > 0)
      snprintf(frac, sizeof frac, "%5.1f%% of %s", 100.0 * r->value / r->ref,
               r->ref_name);
    if (r->target > 0 && r->ref > 0) {
      const int ok = r->value >= r->target * r->ref;
      snprintf(verdict, sizeof verdict, "%s (>= %.0f%%)", ok ? "PASS" : "FAIL",
               100.0 * r->target);
      ok ? pass++ : fail++;
    } else if (r->target < 0) {
      const int ok = r->value <= -r->target;
      snprintf(verdict, sizeof verdict, "%s (<= %.2fx)", ok ? "PASS" : "FAIL",
               -r->target);
      ok ? pass++ : fail++;
    }
    if (r->ref > 0)
      printf("%-58s %12.3f %-8s %12.3f  %-26s %s\n", r->what, r->value, r->unit,
             r->ref, frac, verdict);
    else
      printf("%-58s %12.3f %-8s %12s  %-26s %s\n", r->what, r->value, r->unit,
             "", "", verdict);
  }
  printf("acceptance criteria: %d passed, %d failed\n", pass, fail);
  return 0;
}
