/* gram_generic.c -- portable C kernels of the per-class Gram (see
 * gram_kern.h). The same blocking as the SIMD kernels, written so that a
 * compiler can vectorise the 8-wide inner loops for any target. */
#include "gram_kern.h"

static double row_value(const gmle__gram_src *s, size_t r, size_t c) {
  if (s->dtype == GMLE_F32)
    return (double)((const float *)s->x)[r * s->row_stride + c];
  return ((const double *)s->x)[r * s->row_stride + c];
}

static size_t tile_row(const gmle__gram_src *s, size_t k) {
  return s->base + (s->idx ? s->idx[k] : k);
}

static double pack_generic(const gmle__gram_src *s, size_t m, size_t p0,
                           size_t ldp, double *bp, double *vp, double *st) {
  const size_t dim = s->dim, np = (dim + 7) / 8;
  double wsum = 0.0;
  for (size_t k = 0; k < m; k++) {
    const size_t r = tile_row(s, k);
    const double w = s->weights ? s->weights[r] : 1.0;
    wsum += w;
    for (size_t p = p0; p < np; p++) {
      double *b = bp + p * ldp + k * 8;
      double *v = vp ? vp + p * ldp + k * 8 : b;
      for (size_t l = 0; l < 8; l++) {
        const size_t c = p * 8 + l;
        b[l] = c < dim ? row_value(s, r, c) - s->shift[c] : 0.0;
        if (vp)
          v[l] = w * b[l];
        if (st)
          st[c] += v[l];
      }
    }
  }
  return s->weights ? wsum : (double)m;
}

static void full_generic(const double *bp, const double *vp, size_t ldp,
                         size_t m, size_t dim, size_t ja, size_t jb,
                         double *g) {
  const size_t np = (dim + 7) / 8;
  double acc[8][8];
  for (size_t I = ja; I < np; I++) {
    const size_t nb = dim - 8 * I < 8 ? dim - 8 * I : 8;
    const size_t jhi = I + 1 < jb ? I + 1 : jb;
    const double *bpi = bp + I * ldp;
    for (size_t J = ja; J < jhi; J++) {
      const double *vpj = vp + J * ldp;
      for (size_t b = 0; b < 8; b++)
        for (size_t l = 0; l < 8; l++)
          acc[b][l] = 0.0;
      for (size_t r = 0; r < m; r++)
        for (size_t b = 0; b < nb; b++) {
          const double x = bpi[r * 8 + b];
          for (size_t l = 0; l < 8; l++)
            acc[b][l] += vpj[r * 8 + l] * x;
        }
      for (size_t b = 0; b < nb; b++) {
        const size_t i = 8 * I + b;
        for (size_t l = 0; l < 8 && 8 * J + l <= i; l++)
          g[i * dim + 8 * J + l] += acc[b][l];
      }
    }
  }
}

static double diag_generic(const gmle__gram_src *s, size_t m, double *st,
                           double *sq) {
  const size_t dim = s->dim;
  double wsum = 0.0;
  for (size_t k = 0; k < m; k++) {
    const size_t r = tile_row(s, k);
    const double w = s->weights ? s->weights[r] : 1.0;
    wsum += w;
    for (size_t c = 0; c < dim; c++) {
      const double d = row_value(s, r, c) - s->shift[c];
      const double v = s->weights ? w * d : d;
      st[c] += v;
      sq[c] += v * d;
    }
  }
  return s->weights ? wsum : (double)m;
}

size_t gmle__gram_scatter_generic(const gmle__gram_bucket *bk, size_t r0,
                                  size_t r1, size_t *full) {
  const size_t dim = bk->dim, np = (dim + 7) / 8;
  gmle__gram_src s = {
      .x = bk->x, .dtype = bk->dtype, .row_stride = bk->row_stride};
  for (size_t r = r0; r < r1; r++) {
    const size_t c = (size_t)(uint32_t)bk->labels[r] - bk->c_lo;
    if (c >= bk->n_cls)
      continue;
    const size_t slot = bk->stage_rows[c];
    const double *sh = bk->shift + (bk->c_lo + c) * dim;
    const double w = bk->weights ? bk->weights[r] : 1.0;
    double *st = bk->stage_sum + c * bk->dpad;
    if (bk->stage_sumsq) {
      double *sq = bk->stage_sumsq + c * bk->dpad;
      for (size_t j = 0; j < dim; j++) {
        const double d = row_value(&s, r, j) - sh[j];
        const double v = bk->weights ? w * d : d;
        st[j] += v;
        sq[j] += v * d;
      }
    } else {
      for (size_t p = 0; p < np; p++) {
        double *b = bk->stage_d + c * bk->stage + p * bk->ldp + slot * 8;
        double *v = bk->stage_wd
                        ? bk->stage_wd + c * bk->stage + p * bk->ldp + slot * 8
                        : b;
        for (size_t l = 0; l < 8; l++) {
          const size_t j = p * 8 + l;
          b[l] = j < dim ? row_value(&s, r, j) - sh[j] : 0.0;
          if (bk->stage_wd)
            v[l] = w * b[l];
          st[j] += v[l];
        }
      }
    }
    if (bk->weights)
      bk->wsum[c] += w;
    if (++bk->stage_rows[c] == bk->tile) {
      *full = c;
      return r + 1;
    }
  }
  *full = SIZE_MAX;
  return r1;
}

const gmle__gram_isa gmle__gram_isa_generic = {.name = "generic",
                                               .pack = pack_generic,
                                               .full = full_generic,
                                               .diag = diag_generic,
                                               .scatter =
                                                   gmle__gram_scatter_generic};
