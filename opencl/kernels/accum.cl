/*
 * accum.cl -- per-class shifted sums and Gram matrices of class-sorted rows.
 *
 * The host sorts the rows of a batch by class and cuts every class into
 * chunks of at most R rows; chunk q is tab[4q..4q+3] = (first row, row
 * count, class, 0). Rows are packed with a padded stride DP (a multiple of
 * VW): full mode appends the constant column x_D = 1 (with shift 0) and
 * zeros, diagonal mode zeros. Rows, weights and the chunk table travel in
 * one buffer: w and tab are offsets into it (w_off, t_off elements of their
 * own type).
 *
 * Each work-item owns a fixed block of outputs of one chunk and runs over
 * the chunk's rows in order, keeping its sums in registers: no local
 * memory, no barriers, no atomics. The result of a chunk is the same
 * whichever launch it is part of; the host adds the chunk partials of a
 * class in chunk order, in float64.
 *
 * Full mode: work-item t of chunk q owns the MB x (NV VW) micro-tile at
 * (i0, j0)
 * = tiles[2t], tiles[2t+1] of the augmented Gram sum w a a^T, a = [x - k,
 * 1, 0...]; rows i < D, columns j <= i give sum w d_i d_j, row D gives
 * sum w d_j.
 * Diagonal mode: work-item t owns columns [t VW, (t+1) VW): sums w d_j and
 * w d_j^2; out[q] = [sums (DP) | sums of squares (DP)].
 *
 * Build options (opencl/cl_accum.c): IN_T (float, double) the rows' type;
 * ACC_T (double with cl_khr_fp64, else float); COMP 1: compensated (Kahan)
 * sums for the float path; D, DP, VW (2, 4, 8), MB (micro-tile rows, 2 or
 * 4), NV (column vectors per micro-tile, 1 or 2), NT (micro-tiles per
 * chunk, full mode).
 */
#if defined(NEED_FP64)
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#endif

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define ACCV CAT(ACC_T, VW)
#define VLOAD CAT(vload, VW)
#define VSTORE CAT(vstore, VW)
#define TO_ACCV CAT(convert_, ACCV)

#if COMP
#define ACCUM(acc, cmp, v)                                                     \
  do {                                                                         \
    const ACCV y_ = (v) - (cmp);                                               \
    const ACCV t_ = (acc) + y_;                                                \
    (cmp) = (t_ - (acc)) - y_;                                                 \
    (acc) = t_;                                                                \
  } while (0)
#else
#define ACCUM(acc, cmp, v) ((acc) += (v))
#endif

#ifdef NT
/* Micro-tile: MB rows (2 or 4) x NV vectors of VW columns. The MB row
 * values come as one vector, the NV column vectors are shared by the MB
 * rows: MB * NV vector multiply-adds per row. */
#define ACCM CAT(ACC_T, MB)
#define INM CAT(IN_T, MB)
#define VLOADM CAT(vload, MB)
#define TO_ACCM CAT(convert_, ACCM)
#if COMP
#define DECL(m, v) ACCV a##m##v = (ACCV)0, c##m##v = (ACCV)0
#else
#define DECL(m, v) ACCV a##m##v = (ACCV)0
#endif
#define MAC(m, v, s) ACCUM(a##m##v, c##m##v, (s) * dj##v)
#if NV == 2
#define ROW(m, s)                                                              \
  MAC(m, 0, s);                                                                \
  MAC(m, 1, s)
#define DECLS(m)                                                               \
  DECL(m, 0);                                                                  \
  DECL(m, 1)
#define STORE(m)                                                               \
  VSTORE(a##m##0, 2 * m, o);                                                   \
  VSTORE(a##m##1, 2 * m + 1, o)
#else
#define ROW(m, s) MAC(m, 0, s)
#define DECLS(m) DECL(m, 0)
#define STORE(m) VSTORE(a##m##0, m, o)
#endif

__kernel void gram_full(__global const IN_T *x, __global const ACC_T *w,
                        ulong w_off, int has_w, __global const uint *tab,
                        ulong t_off, __global const ACC_T *shift,
                        __global const uint *tiles, __global ACC_T *out) {
  const uint t = get_global_id(0), q = get_global_id(1);
  if (t >= NT)
    return;
  w += w_off;
  tab += t_off;
  const uint i0 = tiles[2 * t], j0 = tiles[2 * t + 1];
  const uint start = tab[4 * q], cnt = tab[4 * q + 1], cls = tab[4 * q + 2];
  __global const ACC_T *k = shift + (ulong)cls * DP;
  const ACCM ki = VLOADM(0, k + i0);
  const ACCV kj0 = VLOAD(0, k + j0);
  DECLS(0);
  DECLS(1);
#if MB == 4
  DECLS(2);
  DECLS(3);
#endif
#if NV == 2
  const ACCV kj1 = VLOAD(0, k + j0 + VW);
#endif
  __global const IN_T *xr = x + (ulong)start * DP;
  __global const ACC_T *wr = w + start;
  for (uint r = 0; r < cnt; r++, xr += DP) {
    const ACCV dj0 = TO_ACCV(VLOAD(0, xr + j0)) - kj0;
#if NV == 2
    const ACCV dj1 = TO_ACCV(VLOAD(0, xr + j0 + VW)) - kj1;
#endif
    ACCM di = TO_ACCM(VLOADM(0, xr + i0)) - ki;
    if (has_w)
      di *= wr[r];
    ROW(0, di.s0);
    ROW(1, di.s1);
#if MB == 4
    ROW(2, di.s2);
    ROW(3, di.s3);
#endif
  }
  __global ACC_T *o = out + ((ulong)q * NT + t) * (MB * NV * VW);
  STORE(0);
  STORE(1);
#if MB == 4
  STORE(2);
  STORE(3);
#endif
}
#endif

__kernel void gram_diag(__global const IN_T *x, __global const ACC_T *w,
                        ulong w_off, int has_w, __global const uint *tab,
                        ulong t_off, __global const ACC_T *shift,
                        __global ACC_T *out) {
  const uint t = get_global_id(0), q = get_global_id(1);
  if (t >= DP / VW)
    return;
  w += w_off;
  tab += t_off;
  const uint j0 = t * VW;
  const uint start = tab[4 * q], cnt = tab[4 * q + 1], cls = tab[4 * q + 2];
  const ACCV kj = VLOAD(0, shift + (ulong)cls * DP + j0);
  ACCV s1 = (ACCV)0, c1 = (ACCV)0, s2 = (ACCV)0, c2 = (ACCV)0;
  __global const IN_T *xr = x + (ulong)start * DP;
  __global const ACC_T *wr = w + start;
  for (uint r = 0; r < cnt; r++, xr += DP) {
    const ACCV d = TO_ACCV(VLOAD(0, xr + j0)) - kj;
    const ACCV wd = has_w ? d * wr[r] : d;
    ACCUM(s1, c1, wd);
    ACCUM(s2, c2, wd * d);
  }
  (void)c1;
  (void)c2;
  VSTORE(s1, 0, out + (ulong)q * (2 * DP) + j0);
  VSTORE(s2, 0, out + (ulong)q * (2 * DP) + DP + j0);
}
