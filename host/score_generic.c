/* score_generic.c -- portable C kernels of the CPU scorer (see
 * score_kern.h): the reference the AVX2 and AVX-512 kernels follow, and
 * what runs where neither is available. */
#include "score_kern.h"

#include <string.h>

static int load_gen(const gmle__batch *b, size_t t0, size_t rn, size_t rp,
                    const double *center, double *xt, size_t ldx) {
  const size_t D = b->dim;
  int ok = 1;
  for (size_t r = 0; r < rn; r++) {
    for (size_t j = 0; j < D; j++) {
      const size_t k = (t0 + r) * b->row_stride + j;
      const double v = b->dtype == GMLE_F32 ? (double)((const float *)b->x)[k]
                                            : ((const double *)b->x)[k];
      ok &= finite_d(v);
      xt[j * ldx + r] = center ? v - center[j] : v;
    }
  }
  for (size_t j = 0; j < D && rn < rp; j++)
    memset(xt + j * ldx + rn, 0, (rp - rn) * sizeof(double));
  return !ok;
}

static void write_gen(const gmle__score_job *jb, const double *pt, size_t rn,
                      size_t t0) {
  const size_t C = jb->model->n_classes, ldp = jb->ld;
  if (jb->out_dtype == GMLE_F32) {
    float *o = (float *)jb->out + t0 * C;
    for (size_t r = 0; r < rn; r++, o += C)
      for (size_t c = 0; c < C; c++)
        o[c] = (float)pt[c * ldp + r];
  } else {
    double *o = (double *)jb->out + t0 * C;
    for (size_t r = 0; r < rn; r++, o += C)
      for (size_t c = 0; c < C; c++)
        o[c] = pt[c * ldp + r];
  }
}

/* acc[ii][r] += sum_k x_r[k] W[i0 + ii][k] over the kmax columns of one
 * packed block of IB rows (wp at its start); returns wp at the block's b
 * values. */
static const double *tri_block_gen(const double *wp, size_t kmax,
                                   const double *xt, size_t ldx, size_t n,
                                   double acc[IB][GR]) {
  for (size_t k = 0; k < kmax; k++, wp += IB) {
    const double *x = xt + k * ldx;
    for (size_t ii = 0; ii < IB; ii++)
      for (size_t r = 0; r < n; r++)
        acc[ii][r] += x[r] * wp[ii];
  }
  return wp;
}

static void tri_q_gen(const double *wp, size_t D, const double *xt, size_t ldx,
                      size_t nv, double *q) {
  const size_t n = nv * VW;
  double qa[GR] = {0};
  for (size_t i0 = 0; i0 < D; i0 += IB) {
    const size_t kmax = min_size(i0 + IB, D);
    double acc[IB][GR] = {{0}};
    wp = tri_block_gen(wp, kmax, xt, ldx, n, acc);
    for (size_t ii = 0; ii < IB; ii++)
      for (size_t r = 0; r < n; r++) {
        const double z = acc[ii][r] - wp[ii];
        qa[r] += z * z;
      }
    wp += IB;
  }
  memcpy(q, qa, n * sizeof(double));
}

static void tri_z_gen(const double *wp, size_t D, const double *xt, size_t ldx,
                      size_t nv, double *zt, size_t ldz) {
  const size_t n = nv * VW;
  for (size_t i0 = 0; i0 < D; i0 += IB) {
    const size_t kmax = min_size(i0 + IB, D);
    double acc[IB][GR] = {{0}};
    wp = tri_block_gen(wp, kmax, xt, ldx, n, acc);
    for (size_t ii = 0; ii < IB && i0 + ii < D; ii++)
      memcpy(zt + (i0 + ii) * ldz, acc[ii], n * sizeof(double));
    wp += IB;
  }
}

static void diag_q_gen(const double *dp, size_t D, size_t nc, const double *xt,
                       size_t ldx, size_t nv, double *pt, size_t ldp) {
  const size_t n = nv * VW;
  double acc[CB][GR] = {{0}};
  for (size_t j = 0; j < D; j++, dp += 2 * CB) {
    const double *x = xt + j * ldx;
    for (size_t u = 0; u < CB; u++)
      for (size_t r = 0; r < n; r++) {
        const double d = x[r] - dp[u];
        acc[u][r] += d * dp[CB + u] * d;
      }
  }
  for (size_t u = 0; u < nc; u++)
    memcpy(pt + u * ldp, acc[u], n * sizeof(double));
}

static void emit_gen(const gmle__score_job *jb, double *pt, size_t nvec,
                     size_t rn, size_t t0) {
  const gmle__score_cache *sc = jb->model->score_cache;
  const size_t Ca = sc->n_active, ldp = jb->ld;
  const double *jc = jb->class_const;
  (void)nvec;
  for (size_t r = 0; r < rn; r++) {
    double mx = -INFINITY;
    size_t best = 0;
    for (size_t a = 0; a < Ca; a++) {
      const double j = jc[a] - 0.5 * pt[a * ldp + r];
      pt[a * ldp + r] = j;
      if (j > mx) {
        mx = j;
        best = sc->active[a];
      }
    }
    switch (jb->what) {
    case GMLE_OUT_LOGLIK:
    case GMLE_OUT_JOINT:
    case GMLE_OUT_RESP: /* the core's (src/mixture.c), never a backend's */
      break;
    case GMLE_OUT_LABEL:
      ((int32_t *)jb->out)[t0 + r] = mx == -INFINITY ? -1 : (int32_t)best;
      break;
    case GMLE_OUT_LOGPOST:
    case GMLE_OUT_DENSITY: {
      double s = 0;
      for (size_t a = 0; a < Ca; a++)
        s += exp(pt[a * ldp + r] - mx);
      const double ls = log(s);
      if (jb->what == GMLE_OUT_DENSITY) {
        put(jb->out, jb->out_dtype, t0 + r,
            mx == -INFINITY ? -INFINITY : mx + ls);
        break;
      }
      for (size_t a = 0; a < Ca; a++)
        pt[a * ldp + r] =
            mx == -INFINITY ? -INFINITY : (pt[a * ldp + r] - mx) - ls;
      break;
    }
    }
  }
  if (jb->what == GMLE_OUT_LOGLIK || jb->what == GMLE_OUT_JOINT ||
      jb->what == GMLE_OUT_LOGPOST)
    gmle__score_write_rows(jb, pt, rn, t0);
}

const gmle__score_kern gmle__score_kern_generic = {
    "generic", tri_q_gen, tri_z_gen, diag_q_gen, emit_gen, load_gen, write_gen};
