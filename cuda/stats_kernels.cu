// stats_kernels.cu -- the statistics kernels of the CUDA module.
//
// A batch on the device is routed by class with a stable radix sort of its
// row indices by label (CUB), so every class is a contiguous run of the
// routed order whatever the number of classes. The host cuts the runs into
// chunks (cuda/cu_plan.c: fixed segments and chunk boundaries, so that the
// order does not depend on how a batch is split); each thread block owns one
// (chunk, output tile) pair and reads the chunk's rows through the routed
// order:
//   d = x - k_c in double, products and sums in double (FMA), never TF32.
// Work is proportional to rows x tiles, never to rows x classes.
//
// Determinism: no floating-point atomics. Every sum has a fixed order: rows
// of a chunk by position relative to the chunk's start (split over a fixed
// number of row groups that are combined in group order), then the chunks
// of a class in a segment in a fixed order (gmle__cu_reduce_*), then the
// segments in row order (one launch each), then batches in call order. A
// class's only chunk in a segment adds straight into the accumulators:
// exactly one block owns each (class, tile) in a launch. The integer atomics of
// the validation scan (atomicMin of positions, flags) give the same result in
// any order.
#include "cu_kernels.h"

#include <cub/device/device_radix_sort.cuh>

#include <math.h>

namespace {

constexpr int kThreads = GMLE__CU_THREADS;
// Blocks per launch along x (the grid's limit is 2^31 - 1; launches
// larger than this are split).
constexpr int64_t kMaxBlocks = (int64_t)1 << 30;

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

inline unsigned grid_for(int64_t work, int64_t per_block, int64_t cap) {
  int64_t g = ceil_div(work, per_block);
  if (g < 1)
    g = 1;
  if (g > cap)
    g = cap;
  return (unsigned)g;
}

// (ti, tj), ti >= tj, of lower tile number `tile` (row-major lower order).
__device__ inline void tile_coords(int64_t tile, int64_t *ti, int64_t *tj) {
  int64_t i = (int64_t)((sqrt(8.0 * (double)tile + 1.0) - 1.0) * 0.5);
  while ((i + 1) * (i + 2) / 2 <= tile)
    i++;
  while (i * (i + 1) / 2 > tile)
    i--;
  *ti = i;
  *tj = tile - i * (i + 1) / 2;
}

// ---- routing ----------------------------------------------------------------

__global__ void k_route_keys(const int32_t *__restrict__ labels, int64_t n,
                             int64_t seg, int64_t nseg,
                             uint32_t *__restrict__ keys,
                             uint32_t *__restrict__ rows) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x) {
    keys[i] = (uint32_t)((int64_t)labels[i] * nseg + i / seg);
    rows[i] = (uint32_t)i;
  }
}

__global__ void k_bounds(const uint32_t *__restrict__ keys, int64_t n,
                         uint32_t *__restrict__ start,
                         uint32_t *__restrict__ end) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x) {
    const uint32_t k = keys[i];
    if (i == 0 || keys[i - 1] != k)
      start[k] = (uint32_t)i;
    if (i == n - 1 || keys[i + 1] != k)
      end[k] = (uint32_t)(i + 1);
  }
}

// ---- moments: weights, sums, sums of squares
// ---------------------------------

// Block: 8 row groups x 32 columns (column tile ct of the chunk).
template <typename T>
__global__ void __launch_bounds__(kThreads)
    k_moments(gmle__cu_input in, const gmle__cu_chunk *__restrict__ chunks,
              int64_t n_ct, int64_t block0, int diag, double *acc_w,
              double *acc_sum, double *acc_sq, double *part) {
  constexpr int kGroups = kThreads / 32;
  __shared__ double red[3][kGroups][32];
  const int64_t bid = block0 + blockIdx.x;
  const int64_t ct = bid % n_ct;
  const gmle__cu_chunk ch = chunks[bid / n_ct];
  const int lane = threadIdx.x & 31, g = threadIdx.x >> 5;
  const int64_t D = in.dim, col = ct * 32 + lane;
  const bool has = col < D;
  const T *x = static_cast<const T *>(in.x);
  const double k = has ? in.shift[(int64_t)ch.slot * D + col] : 0.0;
  double s = 0.0, q = 0.0, ws = 0.0;
  for (int64_t p = ch.begin + g; p < ch.end; p += kGroups) {
    const int64_t row = in.idx ? (int64_t)in.idx[p] : p;
    const double w = in.w ? in.w[row] : 1.0;
    ws += w;
    if (has) {
      const double d = (double)x[row * in.stride + col] - k;
      const double wd = w * d;
      s += wd;
      q = fma(wd, d, q);
    }
  }
  red[0][g][lane] = s;
  red[1][g][lane] = q;
  red[2][g][lane] = ws;
  __syncthreads();
  if (g != 0)
    return;
  for (int gg = 1; gg < kGroups; gg++) {
    s += red[0][gg][lane];
    q += red[1][gg][lane];
    ws += red[2][gg][lane];
  }
  if (ch.part < 0) {
    if (has) {
      acc_sum[(int64_t)ch.slot * D + col] += s;
      if (diag)
        acc_sq[(int64_t)ch.slot * D + col] += q;
    }
    if (ct == 0 && lane == 0)
      acc_w[ch.slot] += ws;
  } else {
    double *pp = part + (int64_t)ch.part * (1 + 2 * D);
    if (has) {
      pp[1 + col] = s;
      pp[1 + D + col] = q;
    }
    if (ct == 0 && lane == 0)
      pp[0] = ws;
  }
}

// ---- Gram tiles
// ---------------------------------------------------------------

// One block computes the T x T tile (ti, tj) of sum w d d^T over a chunk:
// slabs of kSlab rows are centred into shared memory (A: columns of ti,
// B: w times columns of tj); each thread holds a 4 x 4 register tile, and
// the 256 / (T/4)^2 row groups are combined in group order at the end.
template <typename T, int TS>
__global__ void __launch_bounds__(kThreads)
    k_gram(gmle__cu_input in, const gmle__cu_chunk *__restrict__ chunks,
           int64_t n_tiles, int64_t block0, double *acc, double *part) {
  constexpr int kTpr = TS / 4;           // threads per tile row
  constexpr int kGroup = kTpr * kTpr;    // threads per row group
  constexpr int kRG = kThreads / kGroup; // row groups
  constexpr int kSlab = 32;              // rows per slab
  constexpr int kSmem = 4096;            // doubles (32 KiB)
  static_assert(kRG * kGroup == kThreads, "tile/threads mismatch");
  static_assert(2 * kSlab * TS <= kSmem, "slab too large");
  static_assert(kRG * TS * TS <= kSmem, "reduction too large");
  __shared__ double sm[kSmem];
  __shared__ double shA[TS], shB[TS];
  __shared__ int64_t rows[kSlab];
  __shared__ double wts[kSlab];

  const int64_t bid = block0 + blockIdx.x;
  const int64_t tile = bid % n_tiles;
  const gmle__cu_chunk ch = chunks[bid / n_tiles];
  int64_t ti, tj;
  tile_coords(tile, &ti, &tj);
  const int64_t D = in.dim, i0 = ti * TS, j0 = tj * TS;
  const T *x = static_cast<const T *>(in.x);
  const double *shift = in.shift + (int64_t)ch.slot * D;
  const int tid = threadIdx.x;
  const int g = tid / kGroup, lt = tid % kGroup;
  const int ty = lt / kTpr, tx = lt % kTpr;
  for (int k = tid; k < TS; k += kThreads) {
    shA[k] = i0 + k < D ? shift[i0 + k] : 0.0;
    shB[k] = j0 + k < D ? shift[j0 + k] : 0.0;
  }
  double acc_r[4][4];
#pragma unroll
  for (int p = 0; p < 4; p++)
#pragma unroll
    for (int q = 0; q < 4; q++)
      acc_r[p][q] = 0.0;
  double *As = sm, *Bs = sm + kSlab * TS;
  for (int64_t base = ch.begin; base < ch.end; base += kSlab) {
    const int nr = (int)(ch.end - base < kSlab ? ch.end - base : kSlab);
    __syncthreads(); // the previous slab is consumed; shA/shB are written
    if (tid < kSlab) {
      int64_t row = -1;
      double w = 0.0;
      if (tid < nr) {
        const int64_t p = base + tid;
        row = in.idx ? (int64_t)in.idx[p] : p;
        w = in.w ? in.w[row] : 1.0;
      }
      rows[tid] = row;
      wts[tid] = w;
    }
    __syncthreads();
    for (int e = tid; e < kSlab * TS; e += kThreads) {
      const int r = e / TS, c = e % TS;
      double a = 0.0, b = 0.0;
      if (r < nr) {
        const T *xr = x + rows[r] * in.stride;
        if (i0 + c < D)
          a = (double)xr[i0 + c] - shA[c];
        if (j0 + c < D)
          b = ((double)xr[j0 + c] - shB[c]) * wts[r];
      }
      As[e] = a;
      Bs[e] = b;
    }
    __syncthreads();
    for (int r = g; r < nr; r += kRG) {
      double a[4], b[4];
#pragma unroll
      for (int k = 0; k < 4; k++) {
        a[k] = As[r * TS + ty + k * kTpr];
        b[k] = Bs[r * TS + tx + k * kTpr];
      }
#pragma unroll
      for (int p = 0; p < 4; p++)
#pragma unroll
        for (int q = 0; q < 4; q++)
          acc_r[p][q] = fma(a[p], b[q], acc_r[p][q]);
    }
  }
  __syncthreads();
#pragma unroll
  for (int p = 0; p < 4; p++)
#pragma unroll
    for (int q = 0; q < 4; q++)
      sm[g * TS * TS + (ty + p * kTpr) * TS + tx + q * kTpr] = acc_r[p][q];
  __syncthreads();
  for (int e = tid; e < TS * TS; e += kThreads) {
    double s = sm[e];
    for (int gg = 1; gg < kRG; gg++)
      s += sm[gg * TS * TS + e];
    if (ch.part < 0) {
      const int64_t i = i0 + e / TS, j = j0 + e % TS;
      if (i < D && j <= i)
        acc[(int64_t)ch.slot * D * D + i * D + j] += s;
    } else {
      part[((int64_t)ch.part * n_tiles + tile) * TS * TS + e] = s;
    }
  }
}

// ---- reductions of multi-chunk classes
// ----------------------------------------

// One warp per (group, element), so that a class with many chunks is summed
// by many threads: lane l adds the group's partials l, l + 32, ... in
// order, a fixed butterfly combines the 32 lane sums, and lane 0 adds the
// result into the accumulator. The order depends only on the group (one
// class in one segment), never on the sub-batch. Loops are warp-uniform.

__device__ inline double warp_sum(double s) {
  for (int off = 16; off > 0; off >>= 1)
    s += __shfl_xor_sync(0xffffffffu, s, off);
  return s;
}

__global__ void k_reduce_moments(const gmle__cu_group *__restrict__ groups,
                                 int64_t n_groups, int64_t D, int diag,
                                 const double *__restrict__ part, double *acc_w,
                                 double *acc_sum, double *acc_sq) {
  const int lane = threadIdx.x & 31;
  const int64_t per = 1 + 2 * D, en = diag ? 1 + 2 * D : 1 + D;
  const int64_t warps = (int64_t)gridDim.x * (blockDim.x >> 5);
  for (int64_t w = (blockIdx.x * (int64_t)blockDim.x + threadIdx.x) >> 5;
       w < n_groups * en; w += warps) {
    const gmle__cu_group gr = groups[w / en];
    const int64_t e = w % en;
    double s = 0.0;
    for (int k = lane; k < gr.n_parts; k += 32)
      s += part[(int64_t)(gr.part_first + k) * per + e];
    s = warp_sum(s);
    if (lane != 0)
      continue;
    if (e == 0)
      acc_w[gr.slot] += s;
    else if (e <= D)
      acc_sum[(int64_t)gr.slot * D + e - 1] += s;
    else
      acc_sq[(int64_t)gr.slot * D + e - 1 - D] += s;
  }
}

__global__ void k_reduce_gram(const gmle__cu_group *__restrict__ groups,
                              int64_t n_groups, int64_t D, int ts,
                              int64_t n_tiles, const double *__restrict__ part,
                              double *acc) {
  const int lane = threadIdx.x & 31;
  const int64_t tt = (int64_t)ts * ts, per_group = n_tiles * tt;
  const int64_t warps = (int64_t)gridDim.x * (blockDim.x >> 5);
  for (int64_t w = (blockIdx.x * (int64_t)blockDim.x + threadIdx.x) >> 5;
       w < n_groups * per_group; w += warps) {
    const gmle__cu_group gr = groups[w / per_group];
    const int64_t rem = w % per_group, tile = rem / tt, e = rem % tt;
    int64_t ti, tj;
    tile_coords(tile, &ti, &tj);
    const int64_t i = ti * ts + e / ts, j = tj * ts + e % ts;
    if (i >= D || j > i)
      continue; // the same (i, j) for the whole warp
    double s = 0.0;
    for (int k = lane; k < gr.n_parts; k += 32)
      s += part[((int64_t)(gr.part_first + k) * n_tiles + tile) * tt + e];
    s = warp_sum(s);
    if (lane == 0)
      acc[(int64_t)gr.slot * D * D + i * D + j] += s;
  }
}

// ---- shifts of classes first seen in a device batch
// ----------------------------

template <typename T>
__global__ void k_shift(gmle__cu_input in, const gmle__cu_chunk *list,
                        double *shift) {
  const gmle__cu_chunk e = list[blockIdx.x];
  const T *x = static_cast<const T *>(in.x);
  const int64_t D = in.dim, m = e.end - e.begin;
  for (int64_t col = threadIdx.x; col < D; col += blockDim.x) {
    double k = 0.0;
    for (int64_t p = e.begin; p < e.end; p++) {
      const int64_t row = in.idx ? (int64_t)in.idx[p] : p;
      k += (double)x[row * in.stride + col];
    }
    k /= (double)(m ? m : 1);
    if (sizeof(T) == sizeof(float))
      k = (double)(float)k;
    shift[(int64_t)e.slot * D + col] = k;
  }
}

// ---- validation scan
// -------------------------------------------------------------

__global__ void k_scan_init(gmle__cu_scan_result *res) {
  res->bad_cell = ~0ull;
  res->bad_label_row = ~0ull;
  res->bad_weight_row = ~0ull;
  res->any_positive = 0;
}

template <typename T>
__global__ void k_scan(const T *__restrict__ x, int64_t n, int64_t D,
                       int64_t stride, const int32_t *__restrict__ labels,
                       int64_t C, const double *__restrict__ w,
                       unsigned long long *counts, gmle__cu_scan_result *res) {
  const int64_t step = (int64_t)gridDim.x * blockDim.x;
  const int64_t t0 = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  for (int64_t e = t0; e < n * D; e += step) {
    const int64_t r = e / D, j = e % D;
    if (!isfinite(x[r * stride + j]))
      atomicMin(&res->bad_cell, (unsigned long long)e);
  }
  for (int64_t r = t0; r < n; r += step) {
    if (labels) {
      const int32_t l = labels[r];
      if (l < 0 || (int64_t)l >= C)
        atomicMin(&res->bad_label_row, (unsigned long long)r);
      else if (counts && counts[l] == 0)
        counts[l] = 1; // a presence flag: every writer stores the same value
    }
    if (w) {
      const double v = w[r];
      if (!isfinite(v) || v < 0)
        atomicMin(&res->bad_weight_row, (unsigned long long)r);
      else if (v > 0 && res->any_positive == 0)
        res->any_positive = 1;
    }
  }
}

} // namespace

// ---- launchers
// ------------------------------------------------------------------

extern "C" int gmle__cu_gram_tile(int64_t dim) {
  return dim <= 16 ? 16 : dim <= 32 ? 32 : 64;
}

extern "C" int64_t gmle__cu_gram_tiles(int64_t dim, int t) {
  const int64_t nt = ceil_div(dim, t);
  return nt * (nt + 1) / 2;
}

extern "C" cudaError_t gmle__cu_route_keys(const int32_t *labels, int64_t n,
                                           int64_t seg, int64_t nseg,
                                           uint32_t *keys, uint32_t *rows,
                                           cudaStream_t stream) {
  if (n <= 0)
    return cudaSuccess;
  if (n > INT32_MAX || seg <= 0 || nseg <= 0)
    return cudaErrorInvalidValue;
  k_route_keys<<<grid_for(n, kThreads, 65535), kThreads, 0, stream>>>(
      labels, n, seg, nseg, keys, rows);
  return cudaGetLastError();
}

extern "C" cudaError_t gmle__cu_sort_bytes(int64_t n, size_t *bytes) {
  *bytes = 0;
  if (n < 0 || n > INT32_MAX)
    return cudaErrorInvalidValue;
  return cub::DeviceRadixSort::SortPairs(
      nullptr, *bytes, static_cast<const uint32_t *>(nullptr),
      static_cast<uint32_t *>(nullptr), static_cast<const uint32_t *>(nullptr),
      static_cast<uint32_t *>(nullptr), (int)n, 0, 32);
}

extern "C" cudaError_t
gmle__cu_sort(void *scratch, size_t scratch_bytes, const uint32_t *keys_in,
              uint32_t *keys_out, const uint32_t *vals_in, uint32_t *vals_out,
              int64_t n, int end_bit, cudaStream_t stream) {
  if (n < 0 || n > INT32_MAX || end_bit < 1 || end_bit > 32)
    return cudaErrorInvalidValue;
  size_t bytes = scratch_bytes;
  cudaError_t e = cub::DeviceRadixSort::SortPairs(scratch, bytes, keys_in,
                                                  keys_out, vals_in, vals_out,
                                                  (int)n, 0, end_bit, stream);
  if (e != cudaSuccess)
    return e;
  return cudaGetLastError();
}

extern "C" cudaError_t gmle__cu_bounds(const uint32_t *keys, int64_t n,
                                       uint32_t *start, uint32_t *end,
                                       cudaStream_t stream) {
  if (n <= 0)
    return cudaSuccess;
  k_bounds<<<grid_for(n, kThreads, 65535), kThreads, 0, stream>>>(keys, n,
                                                                  start, end);
  return cudaGetLastError();
}

extern "C" cudaError_t
gmle__cu_moments(const gmle__cu_input *in, const gmle__cu_chunk *chunks,
                 int64_t n_chunks, int diag, double *acc_w, double *acc_sum,
                 double *acc_sq, double *part, cudaStream_t stream) {
  const int64_t n_ct = ceil_div(in->dim, 32);
  const int64_t total = n_chunks * n_ct;
  for (int64_t b0 = 0; b0 < total; b0 += kMaxBlocks) {
    const unsigned g =
        (unsigned)(total - b0 < kMaxBlocks ? total - b0 : kMaxBlocks);
    if (in->f64)
      k_moments<double><<<g, kThreads, 0, stream>>>(
          *in, chunks, n_ct, b0, diag, acc_w, acc_sum, acc_sq, part);
    else
      k_moments<float><<<g, kThreads, 0, stream>>>(
          *in, chunks, n_ct, b0, diag, acc_w, acc_sum, acc_sq, part);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess)
      return e;
  }
  return cudaSuccess;
}

template <typename T>
static cudaError_t launch_gram(const gmle__cu_input *in,
                               const gmle__cu_chunk *chunks, int64_t n_tiles,
                               int64_t b0, unsigned g, int t, double *acc,
                               double *part, cudaStream_t stream) {
  switch (t) {
  case 16:
    k_gram<T, 16>
        <<<g, kThreads, 0, stream>>>(*in, chunks, n_tiles, b0, acc, part);
    break;
  case 32:
    k_gram<T, 32>
        <<<g, kThreads, 0, stream>>>(*in, chunks, n_tiles, b0, acc, part);
    break;
  case 64:
    k_gram<T, 64>
        <<<g, kThreads, 0, stream>>>(*in, chunks, n_tiles, b0, acc, part);
    break;
  default:
    return cudaErrorInvalidValue;
  }
  return cudaGetLastError();
}

extern "C" cudaError_t gmle__cu_gram(const gmle__cu_input *in,
                                     const gmle__cu_chunk *chunks,
                                     int64_t n_chunks, int t, double *acc_gram,
                                     double *part, cudaStream_t stream) {
  const int64_t n_tiles = gmle__cu_gram_tiles(in->dim, t);
  const int64_t total = n_chunks * n_tiles;
  for (int64_t b0 = 0; b0 < total; b0 += kMaxBlocks) {
    const unsigned g =
        (unsigned)(total - b0 < kMaxBlocks ? total - b0 : kMaxBlocks);
    cudaError_t e = in->f64 ? launch_gram<double>(in, chunks, n_tiles, b0, g, t,
                                                  acc_gram, part, stream)
                            : launch_gram<float>(in, chunks, n_tiles, b0, g, t,
                                                 acc_gram, part, stream);
    if (e != cudaSuccess)
      return e;
  }
  return cudaSuccess;
}

extern "C" cudaError_t gmle__cu_reduce_moments(const gmle__cu_group *groups,
                                               int64_t n_groups, int64_t dim,
                                               int diag, const double *part,
                                               double *acc_w, double *acc_sum,
                                               double *acc_sq,
                                               cudaStream_t stream) {
  if (n_groups <= 0)
    return cudaSuccess;
  const int64_t work = n_groups * (1 + 2 * dim); // warps
  k_reduce_moments<<<grid_for(work, kThreads / 32, 65535), kThreads, 0,
                     stream>>>(groups, n_groups, dim, diag, part, acc_w,
                               acc_sum, acc_sq);
  return cudaGetLastError();
}

extern "C" cudaError_t gmle__cu_reduce_gram(const gmle__cu_group *groups,
                                            int64_t n_groups, int64_t dim,
                                            int t, const double *part,
                                            double *acc_gram,
                                            cudaStream_t stream) {
  if (n_groups <= 0)
    return cudaSuccess;
  const int64_t n_tiles = gmle__cu_gram_tiles(dim, t);
  const int64_t work = n_groups * n_tiles * t * t; // warps
  k_reduce_gram<<<grid_for(work, kThreads / 32, 65535), kThreads, 0, stream>>>(
      groups, n_groups, dim, t, n_tiles, part, acc_gram);
  return cudaGetLastError();
}

extern "C" cudaError_t gmle__cu_choose_shift(const gmle__cu_input *in,
                                             const gmle__cu_chunk *list,
                                             int64_t n, double *shift,
                                             cudaStream_t stream) {
  if (n <= 0)
    return cudaSuccess;
  if (n > 65535 * (int64_t)65535)
    return cudaErrorInvalidValue;
  for (int64_t b0 = 0; b0 < n; b0 += 65535) {
    const unsigned g = (unsigned)(n - b0 < 65535 ? n - b0 : 65535);
    if (in->f64)
      k_shift<double><<<g, 128, 0, stream>>>(*in, list + b0, shift);
    else
      k_shift<float><<<g, 128, 0, stream>>>(*in, list + b0, shift);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess)
      return e;
  }
  return cudaSuccess;
}

extern "C" cudaError_t gmle__cu_scan_init(gmle__cu_scan_result *res,
                                          cudaStream_t stream) {
  k_scan_init<<<1, 1, 0, stream>>>(res);
  return cudaGetLastError();
}

extern "C" cudaError_t
gmle__cu_scan(const void *x, int f64, int64_t n, int64_t dim, int64_t stride,
              const int32_t *labels, int64_t n_classes, const double *weights,
              unsigned long long *counts, gmle__cu_scan_result *res,
              cudaStream_t stream) {
  if (n <= 0)
    return cudaSuccess;
  const unsigned g = grid_for(n * dim, kThreads, 8192);
  if (f64)
    k_scan<double><<<g, kThreads, 0, stream>>>(static_cast<const double *>(x),
                                               n, dim, stride, labels,
                                               n_classes, weights, counts, res);
  else
    k_scan<float><<<g, kThreads, 0, stream>>>(static_cast<const float *>(x), n,
                                              dim, stride, labels, n_classes,
                                              weights, counts, res);
  return cudaGetLastError();
}
