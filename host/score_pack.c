/* score_pack.c -- the CPU scoring kernels' parameters (the CPU backend's
 * model data), packed once per model, at its first score on the CPU, in
 * the layouts the kernels walk (see score_kern.h). */
#include "cpu_state.h"
#include "score_kern.h"

#include <string.h>

size_t gmle__score_tri_len(size_t D) {
  size_t len = 0;
  for (size_t i0 = 0; i0 < D; i0 += IB)
    len += (min_size(i0 + IB, D) + 1) * IB;
  return len;
}

/* A lower-triangular D x D matrix W (row-major) and a D-vector b (NULL:
 * zero), by blocks of IB rows i0..i0+IB-1: for k < kmax = min(i0 + IB, D)
 * the IB values W[i0 + ii][k] (zero where k > i or i >= D), then the IB
 * values b[i0 + ii] (zero past D). */
static void pack_tri(const double *W, const double *b, size_t D, double *o) {
  for (size_t i0 = 0; i0 < D; i0 += IB) {
    const size_t kmax = min_size(i0 + IB, D);
    for (size_t k = 0; k < kmax; k++)
      for (size_t ii = 0; ii < IB; ii++) {
        const size_t i = i0 + ii;
        *o++ = i < D && k <= i ? W[i * D + k] : 0.0;
      }
    for (size_t ii = 0; ii < IB; ii++)
      *o++ = b && i0 + ii < D ? b[i0 + ii] : 0.0;
  }
}

/* Diagonal forms, by blocks of CB active classes a0..a0+CB-1: for each
 * feature j the CB centres mu[a][j], then the CB weights iv[a][j] (zero for
 * classes past the last, whose q is then 0 and never read). */
static void pack_diag(const gmle_model *m, const gmle__score_cache *sc,
                      double *o) {
  const size_t D = m->dim, Ca = sc->n_active;
  for (size_t a0 = 0; a0 < Ca; a0 += CB)
    for (size_t j = 0; j < D; j++) {
      for (size_t u = 0; u < CB; u++) {
        const size_t a = a0 + u;
        double mu = 0;
        if (a < Ca)
          mu = m->cov == GMLE_COV_TIED ? sc->b[a * D + j]
                                       : m->means[sc->active[a] * D + j];
        o[u] = mu;
      }
      for (size_t u = 0; u < CB; u++) {
        const size_t a = a0 + u;
        double iv = 0;
        if (a < Ca) {
          const size_t c = sc->active[a];
          iv = m->cov == GMLE_COV_TIED   ? 1.0
               : m->cov == GMLE_COV_DIAG ? 1.0 / m->covars[c * D + j]
                                         : 1.0 / m->covars[c];
        }
        o[CB + u] = iv;
      }
      o += 2 * CB;
    }
}

gmle_status gmle__cpu_score_pack(gmle_context *ctx, const gmle_model *m,
                                 double **out) {
  const gmle__score_cache *sc = m->score_cache;
  const size_t D = m->dim, Ca = sc->n_active, tl = gmle__score_tri_len(D);
  size_t n = 0, t;
  int bad = 0;
  switch (m->cov) {
  case GMLE_COV_FULL:
    bad = gmle__mul_size(Ca, tl, &n);
    break;
  case GMLE_COV_TIED:
    bad = gmle__mul3_size(diag_blocks(Ca), 2 * CB, D, &t) || (n = t + tl) < t;
    break;
  case GMLE_COV_DIAG:
  case GMLE_COV_SPHERICAL:
    bad = gmle__mul3_size(diag_blocks(Ca), 2 * CB, D, &n);
    break;
  }
  size_t bytes = 0;
  GMLE_RETURN_IF(bad || gmle__mul_size(n ? n : 1, sizeof(double), &bytes), ctx,
                 GMLE_E_TOO_LARGE,
                 "prepare: the scoring kernels' parameters (%zu classes x "
                 "%zu features) overflow size_t",
                 Ca, D);
  double *kp = gmle__aligned_alloc(bytes);
  GMLE_RETURN_IF(!kp, ctx, GMLE_E_OUT_OF_MEMORY,
                 "prepare: out of memory (%zu bytes of scoring kernel "
                 "parameters)",
                 bytes);
  memset(kp, 0, bytes);
  switch (m->cov) {
  case GMLE_COV_FULL:
    for (size_t a = 0; a < Ca; a++)
      pack_tri(sc->w + a * D * D, sc->b + a * D, D, kp + a * tl);
    break;
  case GMLE_COV_TIED:
    pack_tri(sc->w, NULL, D, kp);
    pack_diag(m, sc, kp + tl);
    break;
  case GMLE_COV_DIAG:
  case GMLE_COV_SPHERICAL:
    pack_diag(m, sc, kp);
    break;
  }
  *out = kp;
  return GMLE_OK;
}
