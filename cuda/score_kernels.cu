// score_kernels.cu -- the scoring kernels of the CUDA module: centring, the
// per-(row, class) reductions after the cuBLAS DGEMMs, and the outputs
// (log-likelihood, joint, log-posterior, label, mixture density) reduced on
// the device so that only what was asked for is copied back; and the one
// kernel of EM's GEMM-form statistics (cuda/cu_em.c), which also works on
// centred rows. Everything is
// float64; sums over a warp use a fixed shuffle tree (lane 0's result), so
// repeated runs are bit-identical.
#include "cu_kernels.h"

#include <math.h>

namespace {

constexpr int kThreads = 256;

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

inline unsigned grid_for(int64_t work, int64_t per_block, int64_t cap) {
  int64_t g = ceil_div(work, per_block);
  if (g < 1)
    g = 1;
  if (g > cap)
    g = cap;
  return (unsigned)g;
}

// The values of gmle_output (include/gmle.h).
constexpr int kLoglik = 0, kJoint = 1, kLabel = 3, kDensity = 4; // kLogpost = 2

template <typename T>
__global__ void k_centre(const T *__restrict__ x, int64_t n, int64_t D,
                         int64_t stride, const double *__restrict__ center,
                         int64_t P, int mode, double *__restrict__ Xc) {
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n * D;
       e += (int64_t)gridDim.x * blockDim.x) {
    const int64_t r = e / D, j = e % D;
    const double d = (double)x[r * stride + j] - center[j];
    Xc[r * P + j] = d;
    if (mode == 1)
      Xc[r * P + D + j] = d * d;
  }
}

// Spherical: |x - m|^2 in column order, one row per thread.
__global__ void k_sumsq(int64_t n, int64_t D, int64_t P, double *Xc) {
  for (int64_t r = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; r < n;
       r += (int64_t)gridDim.x * blockDim.x) {
    const double *xr = Xc + r * P;
    double q = 0.0;
    for (int64_t j = 0; j < D; j++)
      q += xr[j] * xr[j];
    Xc[r * P + D] = q;
  }
}

// One warp per (row, class).
__global__ void k_reduce_full(const double *__restrict__ Z, int64_t ldz,
                              int64_t zcs, const double *__restrict__ b,
                              const double *__restrict__ lconst,
                              const int32_t *__restrict__ active, int64_t a0,
                              int64_t an, int64_t n, int64_t D, int64_t C,
                              double *__restrict__ J) {
  const int lane = threadIdx.x & 31;
  const int64_t warps = (int64_t)gridDim.x * (blockDim.x >> 5);
  for (int64_t w = (blockIdx.x * (int64_t)blockDim.x + threadIdx.x) >> 5;
       w < n * an; w += warps) {
    const int64_t r = w / an, al = w % an, a = a0 + al;
    const double *z = Z + r * ldz + al * zcs;
    const double *bb = b + a * D;
    double q = 0.0;
    for (int64_t i = lane; i < D; i += 32) {
      const double d = z[i] - bb[i];
      q = fma(d, d, q);
    }
    for (int off = 16; off > 0; off >>= 1)
      q += __shfl_xor_sync(0xffffffffu, q, off);
    if (lane == 0)
      J[r * C + active[a]] = lconst[a] - 0.5 * q;
  }
}

template <typename T>
__global__ void
k_reduce_diag(const double *__restrict__ Q, int64_t Ca,
              const double *__restrict__ b, const double *__restrict__ lconst,
              const int32_t *__restrict__ active, int64_t n, int64_t D,
              int64_t C, int diag, const T *__restrict__ x, int64_t stride,
              const double *__restrict__ means, const double *__restrict__ sd,
              double *__restrict__ J) {
  for (int64_t t = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; t < n * Ca;
       t += (int64_t)gridDim.x * blockDim.x) {
    const int64_t r = t / Ca, a = t % Ca, c = active[a];
    double q = Q[r * Ca + a] + b[a];
    if (b[a] > 16.0 * (q + (double)D)) {
      // The expanded form cancelled: recompute (x - mu)/sd directly.
      const double *mu = means + c * D;
      const double *s = diag ? sd + c * D : sd + c;
      q = 0.0;
      for (int64_t j = 0; j < D; j++) {
        const double d = ((double)x[r * stride + j] - mu[j]) / s[diag ? j : 0];
        q += d * d;
      }
    }
    J[r * C + c] = lconst[a] - 0.5 * (q > 0 ? q : 0.0);
  }
}

__device__ inline void put(void *out, int f64, int64_t k, double v) {
  if (f64)
    static_cast<double *>(out)[k] = v;
  else
    static_cast<float *>(out)[k] = (float)v;
}

// One warp per row. The log-sum-exp is src/linalg.c's: the maximum (first
// index on ties), then max + log1p(sum of the other exp(v - max)); all -inf
// gives -inf, a NaN gives NaN.
__global__ void k_emit(const double *__restrict__ J, int64_t n, int64_t C,
                       const unsigned char *__restrict__ empty,
                       const double *__restrict__ lp, int what, int f64,
                       void *out) {
  const int lane = threadIdx.x & 31;
  const int64_t warps = (int64_t)gridDim.x * (blockDim.x >> 5);
  for (int64_t r = (blockIdx.x * (int64_t)blockDim.x + threadIdx.x) >> 5;
       r < n; r += warps) {
    const double *jr = J + r * C;
    if (what == kLoglik || what == kJoint) {
      for (int64_t c = lane; c < C; c += 32) {
        double v = empty[c] ? -INFINITY : jr[c];
        if (what == kJoint)
          v += lp[c];
        put(out, f64, r * C + c, v);
      }
      continue;
    }
    double mx = -INFINITY;
    int64_t imax = C;
    int nan = 0;
    for (int64_t c = lane; c < C; c += 32) {
      const double v = (empty[c] ? -INFINITY : jr[c]) + lp[c];
      if (isnan(v))
        nan = 1;
      else if (v > mx) {
        mx = v;
        imax = c;
      }
    }
    for (int off = 16; off > 0; off >>= 1) {
      const double om = __shfl_xor_sync(0xffffffffu, mx, off);
      const int64_t oi = __shfl_xor_sync(0xffffffffu, imax, off);
      if (om > mx || (om == mx && oi < imax)) {
        mx = om;
        imax = oi;
      }
    }
    nan = __any_sync(0xffffffffu, nan);
    if (what == kLabel) {
      if (lane == 0)
        static_cast<int32_t *>(out)[r] =
            mx > -INFINITY && imax < C ? (int32_t)imax : -1;
      continue;
    }
    double l;
    if (nan) {
      l = NAN;
    } else if (!isfinite(mx)) {
      l = mx;
    } else {
      double rest = 0.0;
      for (int64_t c = lane; c < C; c += 32)
        if (c != imax)
          rest += exp((empty[c] ? -INFINITY : jr[c]) + lp[c] - mx);
      for (int off = 16; off > 0; off >>= 1)
        rest += __shfl_xor_sync(0xffffffffu, rest, off);
      rest = __shfl_sync(0xffffffffu, rest, 0);
      l = mx + log1p(rest);
    }
    if (what == kDensity) {
      if (lane == 0)
        put(out, f64, r, l);
      continue;
    }
    for (int64_t c = lane; c < C; c += 32) {
      const double v = (empty[c] ? -INFINITY : jr[c]) + lp[c];
      put(out, f64, r * C + c, l == -INFINITY ? -INFINITY : v - l);
    }
  }
}

// EM, full covariances (cuda/cu_em.c): one component's rows scaled by the
// square roots of their responsibilities v_r = R[r * ldr],
//   Z[r*D + j] = sqrt(v_r) (Y[r*ldy + j] - kp[j]),  sv[r] = sqrt(v_r),
// so that Z^T Z (a SYRK) and Z^T sv (a GEMV) are the component's Gram
// matrix and sums around its shift.
__global__ void k_resp_scale(const double *__restrict__ Y, int64_t ldy,
                             const double *__restrict__ R, int64_t ldr,
                             const double *__restrict__ kp, int64_t n,
                             int64_t D, double *__restrict__ Z,
                             double *__restrict__ sv) {
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n * D;
       e += (int64_t)gridDim.x * blockDim.x) {
    const int64_t r = e / D, j = e % D;
    const double s = sqrt(R[r * ldr]);
    Z[r * D + j] = s * (Y[r * ldy + j] - kp[j]);
    if (j == 0)
      sv[r] = s;
  }
}

__global__ void k_probe() {}

} // namespace

extern "C" cudaError_t gmle__cu_probe(cudaStream_t stream) {
  k_probe<<<1, 1, 0, stream>>>();
  return cudaGetLastError();
}

extern "C" cudaError_t gmle__cu_centre(const void *x, int f64, int64_t n,
                                       int64_t dim, int64_t stride,
                                       const double *center, int64_t P,
                                       int mode, double *Xc,
                                       cudaStream_t stream) {
  if (n <= 0)
    return cudaSuccess;
  const unsigned g = grid_for(n * dim, kThreads, 65535);
  if (f64)
    k_centre<double><<<g, kThreads, 0, stream>>>(
        static_cast<const double *>(x), n, dim, stride, center, P, mode, Xc);
  else
    k_centre<float><<<g, kThreads, 0, stream>>>(
        static_cast<const float *>(x), n, dim, stride, center, P, mode, Xc);
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess || mode != 2)
    return e;
  k_sumsq<<<grid_for(n, kThreads, 65535), kThreads, 0, stream>>>(n, dim, P,
                                                                 Xc);
  return cudaGetLastError();
}

extern "C" cudaError_t gmle__cu_resp_scale(const double *Y, int64_t ldy,
                                           const double *R, int64_t ldr,
                                           const double *kp, int64_t n,
                                           int64_t dim, double *Z, double *sv,
                                           cudaStream_t stream) {
  if (n <= 0)
    return cudaSuccess;
  k_resp_scale<<<grid_for(n * dim, kThreads, 65535), kThreads, 0, stream>>>(
      Y, ldy, R, ldr, kp, n, dim, Z, sv);
  return cudaGetLastError();
}

extern "C" cudaError_t gmle__cu_reduce_full(const double *Z, int64_t ldz,
                                            int64_t zcs, const double *b,
                                            const double *lconst,
                                            const int32_t *active, int64_t a0,
                                            int64_t an, int64_t n, int64_t dim,
                                            int64_t C, double *J,
                                            cudaStream_t stream) {
  if (n <= 0 || an <= 0)
    return cudaSuccess;
  k_reduce_full<<<grid_for(n * an, kThreads / 32, 65535), kThreads, 0,
                  stream>>>(Z, ldz, zcs, b, lconst, active, a0, an, n, dim, C,
                            J);
  return cudaGetLastError();
}

extern "C" cudaError_t gmle__cu_reduce_diag(
    const double *Q, int64_t Ca, const double *b, const double *lconst,
    const int32_t *active, int64_t n, int64_t dim, int64_t C, int diag,
    const void *x, int f64, int64_t stride, const double *means,
    const double *sd, double *J, cudaStream_t stream) {
  if (n <= 0 || Ca <= 0)
    return cudaSuccess;
  const unsigned g = grid_for(n * Ca, kThreads, 65535);
  if (f64)
    k_reduce_diag<double><<<g, kThreads, 0, stream>>>(
        Q, Ca, b, lconst, active, n, dim, C, diag,
        static_cast<const double *>(x), stride, means, sd, J);
  else
    k_reduce_diag<float><<<g, kThreads, 0, stream>>>(
        Q, Ca, b, lconst, active, n, dim, C, diag,
        static_cast<const float *>(x), stride, means, sd, J);
  return cudaGetLastError();
}

extern "C" cudaError_t gmle__cu_emit(const double *J, int64_t n, int64_t C,
                                     const unsigned char *empty,
                                     const double *log_priors, int what,
                                     int out_f64, void *out,
                                     cudaStream_t stream) {
  if (n <= 0)
    return cudaSuccess;
  if (what < kLoglik || what > kDensity)
    return cudaErrorInvalidValue;
  k_emit<<<grid_for(n, kThreads / 32, 65535), kThreads, 0, stream>>>(
      J, n, C, empty, log_priors, what, out_f64, out);
  return cudaGetLastError();
}
