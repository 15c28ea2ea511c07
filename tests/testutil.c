/* testutil.c -- deterministic random data and float64 / long double
 * references. Nothing here calls gmle's numerics: the references are
 * independent of the library they check. */
#define _POSIX_C_SOURCE 200809L
#include "testutil.h"

#include <ctype.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------------- */
/* Random numbers                                                          */
/* ---------------------------------------------------------------------- */

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void tu_seed(tu_rng *r, uint64_t seed) {
  /* splitmix64 to fill the xoshiro256** state */
  for (int i = 0; i < 4; i++) {
    uint64_t z = (seed += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    r->s[i] = z ^ (z >> 31);
  }
  r->has_spare = 0;
  r->spare = 0.0;
}

uint64_t tu_next(tu_rng *r) {
  uint64_t *s = r->s;
  uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

double tu_uniform(tu_rng *r) { return (double)(tu_next(r) >> 11) * 0x1p-53; }

double tu_normal(tu_rng *r) {
  /* Box-Muller; the second value of each pair is kept for the next call */
  if (r->has_spare) {
    r->has_spare = 0;
    return r->spare;
  }
  double u1 = tu_uniform(r), u2 = tu_uniform(r);
  if (u1 < 1e-300)
    u1 = 1e-300;
  double rad = sqrt(-2.0 * log(u1)), th = 6.283185307179586 * u2;
  r->spare = rad * sin(th);
  r->has_spare = 1;
  return rad * cos(th);
}

size_t tu_below(tu_rng *r, size_t n) {
  return n <= 1 ? 0 : (size_t)(tu_next(r) % (uint64_t)n);
}

void tu_permutation(tu_rng *r, size_t n, size_t *perm) {
  for (size_t i = 0; i < n; i++)
    perm[i] = i;
  for (size_t i = n; i > 1; i--) {
    size_t j = tu_below(r, i);
    size_t t = perm[i - 1];
    perm[i - 1] = perm[j];
    perm[j] = t;
  }
}

/* ---------------------------------------------------------------------- */
/* Linear algebra                                                          */
/* ---------------------------------------------------------------------- */

int tu_cholesky_ld(size_t d, const long double *a, long double *l) {
  for (size_t i = 0; i < d * d; i++)
    l[i] = 0.0L;
  for (size_t j = 0; j < d; j++) {
    long double s = a[j * d + j];
    for (size_t k = 0; k < j; k++)
      s -= l[j * d + k] * l[j * d + k];
    if (!(s > 0.0L) || !isfinite((double)s))
      return -1;
    long double ljj = sqrtl(s);
    l[j * d + j] = ljj;
    for (size_t i = j + 1; i < d; i++) {
      long double t = a[i * d + j];
      for (size_t k = 0; k < j; k++)
        t -= l[i * d + k] * l[j * d + k];
      l[i * d + j] = t / ljj;
    }
  }
  return 0;
}

int tu_cholesky(size_t d, const double *a, long double *l) {
  long double *al = malloc(d * d * sizeof *al);
  if (!al)
    return -1;
  for (size_t i = 0; i < d * d; i++)
    al[i] = a[i];
  int rc = tu_cholesky_ld(d, al, l);
  free(al);
  return rc;
}

static int cmp_double(const void *pa, const void *pb) {
  double a = *(const double *)pa, b = *(const double *)pb;
  return (a > b) - (a < b);
}

int tu_sym_eigvals(size_t d, const double *a, double *eig) {
  long double *m = malloc(d * d * sizeof *m);
  if (!m)
    return -1;
  for (size_t i = 0; i < d; i++)
    for (size_t j = 0; j < d; j++) /* symmetrise from both triangles */
      m[i * d + j] = 0.5L * ((long double)a[i * d + j] + a[j * d + i]);
  for (int sweep = 0; sweep < 100; sweep++) {
    long double off = 0.0L, tot = 0.0L;
    for (size_t i = 0; i < d; i++)
      for (size_t j = 0; j < d; j++) {
        tot += m[i * d + j] * m[i * d + j];
        if (i != j)
          off += m[i * d + j] * m[i * d + j];
      }
    if (off <= 1e-36L * tot || off == 0.0L)
      break;
    for (size_t p = 0; p < d; p++)
      for (size_t q = p + 1; q < d; q++) {
        long double apq = m[p * d + q];
        if (apq == 0.0L)
          continue;
        long double theta = (m[q * d + q] - m[p * d + p]) / (2.0L * apq);
        long double t = (theta >= 0 ? 1.0L : -1.0L) /
                        (fabsl(theta) + sqrtl(theta * theta + 1.0L));
        long double c = 1.0L / sqrtl(t * t + 1.0L), s = t * c;
        for (size_t k = 0; k < d; k++) { /* columns p, q */
          long double mkp = m[k * d + p], mkq = m[k * d + q];
          m[k * d + p] = c * mkp - s * mkq;
          m[k * d + q] = s * mkp + c * mkq;
        }
        for (size_t k = 0; k < d; k++) { /* rows p, q */
          long double mpk = m[p * d + k], mqk = m[q * d + k];
          m[p * d + k] = c * mpk - s * mqk;
          m[q * d + k] = s * mpk + c * mqk;
        }
      }
  }
  for (size_t i = 0; i < d; i++)
    eig[i] = (double)m[i * d + i];
  free(m);
  qsort(eig, d, sizeof *eig, cmp_double);
  return 0;
}

int tu_sym_eig_minmax(size_t d, const double *a, double *mn, double *mx) {
  double *e = malloc(d * sizeof *e);
  if (!e)
    return -1;
  int rc = tu_sym_eigvals(d, a, e);
  if (rc == 0) {
    *mn = e[0];
    *mx = e[d - 1];
  }
  free(e);
  return rc;
}

void tu_random_orthogonal(tu_rng *r, size_t d, double *q) {
  /* rows of q: modified Gram-Schmidt (twice) of Gaussian vectors */
  for (size_t i = 0; i < d; i++) {
    double *v = q + i * d;
    for (;;) {
      for (size_t k = 0; k < d; k++)
        v[k] = tu_normal(r);
      for (int pass = 0; pass < 2; pass++)
        for (size_t j = 0; j < i; j++) {
          const double *u = q + j * d;
          double dot = 0.0;
          for (size_t k = 0; k < d; k++)
            dot += u[k] * v[k];
          for (size_t k = 0; k < d; k++)
            v[k] -= dot * u[k];
        }
      double nrm = 0.0;
      for (size_t k = 0; k < d; k++)
        nrm += v[k] * v[k];
      nrm = sqrt(nrm);
      if (nrm > 1e-6) {
        for (size_t k = 0; k < d; k++)
          v[k] /= nrm;
        break;
      }
    }
  }
}

void tu_random_spd(tu_rng *r, size_t d, double eig_min, double eig_max,
                   double *out) {
  double *q = malloc(d * d * sizeof *q), *e = malloc(d * sizeof *e);
  if (!q || !e) {
    free(q);
    free(e);
    for (size_t i = 0; i < d * d; i++)
      out[i] = (i % (d + 1) == 0) ? 1.0 : 0.0;
    return;
  }
  tu_random_orthogonal(r, d, q);
  double la = log(eig_min), lb = log(eig_max);
  for (size_t i = 0; i < d; i++)
    e[i] = d == 1 ? eig_max
                  : (i == 0 ? eig_min
                            : (i == d - 1 ? eig_max
                                          : exp(la + (lb - la) * tu_uniform(r))));
  for (size_t i = 0; i < d; i++)
    for (size_t j = 0; j <= i; j++) {
      long double s = 0.0L;
      for (size_t k = 0; k < d; k++)
        s += (long double)q[k * d + i] * e[k] * q[k * d + j];
      out[i * d + j] = out[j * d + i] = (double)s;
    }
  free(q);
  free(e);
}

/* ---------------------------------------------------------------------- */
/* Data                                                                    */
/* ---------------------------------------------------------------------- */

double tu_get(const void *x, gmle_dtype dtype, size_t stride, size_t i,
              size_t j) {
  if (dtype == GMLE_F32)
    return (double)((const float *)x)[i * stride + j];
  return ((const double *)x)[i * stride + j];
}

void tu_set(void *x, gmle_dtype dtype, size_t stride, size_t i, size_t j,
            double v) {
  if (dtype == GMLE_F32)
    ((float *)x)[i * stride + j] = (float)v;
  else
    ((double *)x)[i * stride + j] = v;
}

void *tu_alloc_data(size_t n_rows, size_t stride, gmle_dtype dtype) {
  size_t isz = dtype == GMLE_F32 ? sizeof(float) : sizeof(double);
  if (stride && n_rows > SIZE_MAX / stride / isz)
    return NULL;
  size_t n = n_rows * stride;
  return calloc(n ? n : 1, isz);
}

void tu_labels_random(tu_rng *r, size_t n, size_t n_classes, int32_t *labels) {
  for (size_t i = 0; i < n; i++)
    labels[i] = (int32_t)tu_below(r, n_classes);
}

void tu_labels_cyclic(size_t n, size_t n_classes, int32_t *labels) {
  for (size_t i = 0; i < n; i++)
    labels[i] = (int32_t)(i % n_classes);
}

int tu_gen_gaussian(tu_rng *r, size_t n, size_t d, size_t n_classes,
                    const double *means, const double *covs,
                    const int32_t *labels, gmle_dtype dtype, size_t stride,
                    void *x) {
  double *l = NULL;
  long double *lt = malloc(d * d * sizeof *lt);
  double *z = malloc(d * sizeof *z);
  if (!lt || !z)
    goto fail;
  if (covs) {
    l = malloc(n_classes * d * d * sizeof *l);
    if (!l)
      goto fail;
    for (size_t c = 0; c < n_classes; c++) {
      if (tu_cholesky(d, covs + c * d * d, lt) != 0)
        goto fail;
      for (size_t i = 0; i < d * d; i++)
        l[c * d * d + i] = (double)lt[i];
    }
  }
  for (size_t i = 0; i < n; i++) {
    size_t c = labels ? (size_t)labels[i] : 0;
    if (c >= n_classes)
      c = 0; /* out-of-range labels are the caller's test; data still set */
    for (size_t k = 0; k < d; k++)
      z[k] = tu_normal(r);
    for (size_t j = 0; j < d; j++) {
      double v = 0.0;
      if (l) {
        const double *lr = l + c * d * d + j * d;
        for (size_t k = 0; k <= j; k++)
          v += lr[k] * z[k];
      } else {
        v = z[j];
      }
      if (means)
        v += means[c * d + j];
      tu_set(x, dtype, stride, i, j, v);
    }
  }
  free(l);
  free(lt);
  free(z);
  return 0;
fail:
  free(l);
  free(lt);
  free(z);
  return -1;
}

void tu_gen_offset(tu_rng *r, size_t n, size_t d, double mean, double sd,
                   gmle_dtype dtype, size_t stride, void *x) {
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < d; j++)
      tu_set(x, dtype, stride, i, j, mean + sd * tu_normal(r));
}

void tu_dataset_free(tu_dataset *ds) {
  if (!ds)
    return;
  free(ds->x);
  free(ds->labels);
  free(ds->weights);
  memset(ds, 0, sizeof *ds);
}

int tu_dataset_make(tu_dataset *ds, uint64_t seed, size_t n, size_t d,
                    size_t c, gmle_dtype dtype, size_t stride, double offset,
                    int weighted) {
  memset(ds, 0, sizeof *ds);
  tu_rng r;
  tu_seed(&r, seed);
  ds->n = n;
  ds->d = d;
  ds->c = c;
  ds->stride = stride;
  ds->dtype = dtype;
  ds->x = tu_alloc_data(n, stride, dtype);
  ds->labels = malloc((n ? n : 1) * sizeof *ds->labels);
  double *means = malloc(c * d * sizeof *means);
  double *covs = malloc(c * d * d * sizeof *covs);
  if (weighted)
    ds->weights = malloc((n ? n : 1) * sizeof *ds->weights);
  if (!ds->x || !ds->labels || !means || !covs || (weighted && !ds->weights)) {
    free(means);
    free(covs);
    tu_dataset_free(ds);
    return -1;
  }
  for (size_t k = 0; k < c; k++) {
    for (size_t j = 0; j < d; j++)
      means[k * d + j] = offset + 3.0 * (double)k + 0.5 * tu_normal(&r);
    tu_random_spd(&r, d, 0.25, 4.0, covs + k * d * d);
  }
  tu_labels_random(&r, n, c, ds->labels);
  for (size_t i = 0; i < c && i < n; i++)
    ds->labels[i] = (int32_t)i;
  if (stride > d)
    for (size_t i = 0; i < n; i++)
      for (size_t j = d; j < stride; j++)
        tu_set(ds->x, dtype, stride, i, j, NAN);
  int rc = tu_gen_gaussian(&r, n, d, c, means, covs, ds->labels, dtype,
                           stride, ds->x);
  if (weighted)
    for (size_t i = 0; i < n; i++)
      ds->weights[i] = 0.25 + 2.0 * tu_uniform(&r);
  free(means);
  free(covs);
  if (rc != 0)
    tu_dataset_free(ds);
  return rc;
}

const void *tu_dataset_row(const tu_dataset *ds, size_t i) {
  size_t isz = ds->dtype == GMLE_F32 ? sizeof(float) : sizeof(double);
  return (const char *)ds->x + i * ds->stride * isz;
}

/* ---------------------------------------------------------------------- */
/* Reference                                                               */
/* ---------------------------------------------------------------------- */

void tu_ref_free(tu_ref *ref) {
  if (!ref)
    return;
  free(ref->weight);
  free(ref->rows);
  free(ref->mean);
  free(ref->cov);
  memset(ref, 0, sizeof *ref);
}

int tu_ref_compute(tu_ref *ref, const void *x, gmle_dtype dtype, size_t n,
                   size_t stride, size_t d, size_t n_classes,
                   const int32_t *labels, const double *weights) {
  memset(ref, 0, sizeof *ref);
  ref->dim = d;
  ref->n_classes = n_classes;
  ref->weight = calloc(n_classes, sizeof *ref->weight);
  ref->rows = calloc(n_classes, sizeof *ref->rows);
  ref->mean = calloc(n_classes * d, sizeof *ref->mean);
  ref->cov = calloc(n_classes * d * d, sizeof *ref->cov);
  if (!ref->weight || !ref->rows || !ref->mean || !ref->cov) {
    tu_ref_free(ref);
    return -1;
  }
  /* pass 1: weighted sums */
  for (size_t i = 0; i < n; i++) {
    size_t c = labels ? (size_t)labels[i] : 0;
    if (c >= n_classes)
      continue;
    long double w = weights ? weights[i] : 1.0L;
    ref->rows[c]++;
    ref->weight[c] += w;
    if (w == 0.0L)
      continue;
    long double *m = ref->mean + c * d;
    for (size_t j = 0; j < d; j++)
      m[j] += w * (long double)tu_get(x, dtype, stride, i, j);
  }
  for (size_t c = 0; c < n_classes; c++)
    if (ref->weight[c] > 0.0L)
      for (size_t j = 0; j < d; j++)
        ref->mean[c * d + j] /= ref->weight[c];
  /* pass 2: weighted centred cross products (lower triangle). Deviations
   * from the long double mean are O(spread) and are multiplied in double;
   * blocks of at most 256 rows per class are summed in double and the
   * block sums added in long double (relative error ~1e-15). */
  double *blk = calloc(n_classes * d * d, sizeof *blk);
  unsigned *cnt = calloc(n_classes, sizeof *cnt);
  double *dv = malloc(d * sizeof *dv);
  if (!blk || !cnt || !dv) {
    free(blk);
    free(cnt);
    free(dv);
    tu_ref_free(ref);
    return -1;
  }
  for (size_t i = 0; i <= n; i++) {
    if (i == n) { /* flush every class */
      for (size_t c = 0; c < n_classes; c++) {
        double *b = blk + c * d * d;
        long double *s = ref->cov + c * d * d;
        for (size_t j = 0; j < d; j++)
          for (size_t k = 0; k <= j; k++) {
            s[j * d + k] += b[j * d + k];
            b[j * d + k] = 0.0;
          }
      }
      break;
    }
    size_t c = labels ? (size_t)labels[i] : 0;
    if (c >= n_classes)
      continue;
    double w = weights ? weights[i] : 1.0;
    if (w == 0.0)
      continue;
    const long double *m = ref->mean + c * d;
    double *b = blk + c * d * d;
    for (size_t j = 0; j < d; j++)
      dv[j] = (double)((long double)tu_get(x, dtype, stride, i, j) - m[j]);
    for (size_t j = 0; j < d; j++) {
      double wj = w * dv[j];
      double *br = b + j * d;
      for (size_t k = 0; k <= j; k++)
        br[k] += wj * dv[k];
    }
    if (++cnt[c] == 256) {
      cnt[c] = 0;
      long double *s = ref->cov + c * d * d;
      for (size_t j = 0; j < d; j++)
        for (size_t k = 0; k <= j; k++) {
          s[j * d + k] += b[j * d + k];
          b[j * d + k] = 0.0;
        }
    }
  }
  free(blk);
  free(cnt);
  free(dv);
  for (size_t c = 0; c < n_classes; c++) {
    long double *s = ref->cov + c * d * d;
    long double nc = ref->weight[c];
    for (size_t j = 0; j < d; j++)
      for (size_t k = 0; k <= j; k++) {
        long double v = nc > 0.0L ? s[j * d + k] / nc : 0.0L;
        s[j * d + k] = s[k * d + j] = v;
      }
  }
  return 0;
}

int tu_ref_dataset(tu_ref *ref, const tu_dataset *ds) {
  return tu_ref_compute(ref, ds->x, ds->dtype, ds->n, ds->stride, ds->d,
                        ds->c, ds->labels, ds->weights);
}

void tu_ref_mean(const tu_ref *ref, size_t c, double *out) {
  for (size_t j = 0; j < ref->dim; j++)
    out[j] = (double)ref->mean[c * ref->dim + j];
}

void tu_ref_cov(const tu_ref *ref, gmle_cov_type cov, size_t c, double *out) {
  size_t d = ref->dim, dd = d * d;
  const long double *s = ref->cov + c * dd;
  for (size_t i = 0; i < dd; i++)
    out[i] = 0.0;
  switch (cov) {
  case GMLE_COV_FULL:
    for (size_t i = 0; i < dd; i++)
      out[i] = (double)s[i];
    break;
  case GMLE_COV_DIAG:
    for (size_t j = 0; j < d; j++)
      out[j * d + j] = (double)s[j * d + j];
    break;
  case GMLE_COV_SPHERICAL: {
    long double tr = 0.0L;
    for (size_t j = 0; j < d; j++)
      tr += s[j * d + j];
    for (size_t j = 0; j < d; j++)
      out[j * d + j] = (double)(tr / (long double)d);
    break;
  }
  case GMLE_COV_TIED: {
    long double tot = 0.0L;
    for (size_t k = 0; k < ref->n_classes; k++)
      tot += ref->weight[k];
    for (size_t i = 0; i < dd; i++) {
      long double v = 0.0L;
      for (size_t k = 0; k < ref->n_classes; k++)
        v += ref->weight[k] * ref->cov[k * dd + i];
      out[i] = tot > 0.0L ? (double)(v / tot) : 0.0;
    }
    break;
  }
  }
}

long double tu_max_total_variance(const void *x, gmle_dtype dtype, size_t n,
                                  size_t stride, size_t d,
                                  const double *weights) {
  long double best = 0.0L;
  for (size_t j = 0; j < d; j++) {
    long double sw = 0.0L, s = 0.0L, ss = 0.0L;
    for (size_t i = 0; i < n; i++) {
      long double w = weights ? weights[i] : 1.0L;
      sw += w;
      s += w * (long double)tu_get(x, dtype, stride, i, j);
    }
    if (sw <= 0.0L)
      return 0.0L;
    long double m = s / sw;
    for (size_t i = 0; i < n; i++) {
      long double w = weights ? weights[i] : 1.0L;
      long double e = (long double)tu_get(x, dtype, stride, i, j) - m;
      ss += w * e * e;
    }
    if (ss / sw > best)
      best = ss / sw;
  }
  return best;
}

long double tu_ref_max_class_variance(const tu_ref *ref) {
  size_t d = ref->dim;
  long double best = 0.0L;
  for (size_t c = 0; c < ref->n_classes; c++)
    for (size_t j = 0; j < d; j++)
      if (ref->cov[c * d * d + j * d + j] > best)
        best = ref->cov[c * d * d + j * d + j];
  return best;
}

/* ---------------------------------------------------------------------- */
/* Densities                                                               */
/* ---------------------------------------------------------------------- */

long double tu_logpdf_chol(size_t d, const double *x, const double *mu,
                           const long double *l) {
  long double q = 0.0L, logdet = 0.0L;
  long double stackbuf[64];
  long double *y = d <= 64 ? stackbuf : malloc(d * sizeof *y);
  if (!y)
    return NAN;
  for (size_t i = 0; i < d; i++) { /* forward substitution L y = x - mu */
    long double t = (long double)x[i] - (long double)mu[i];
    for (size_t k = 0; k < i; k++)
      t -= l[i * d + k] * y[k];
    y[i] = t / l[i * d + i];
    q += y[i] * y[i];
    logdet += 2.0L * logl(l[i * d + i]);
  }
  if (y != stackbuf)
    free(y);
  const long double log2pi = 1.8378770664093454835606594728112353L;
  return -0.5L * ((long double)d * log2pi + logdet + q);
}

long double tu_logpdf(size_t d, const double *x, const double *mu,
                      const double *sigma) {
  long double *l = malloc(d * d * sizeof *l);
  if (!l)
    return NAN;
  long double v = NAN;
  if (tu_cholesky(d, sigma, l) == 0)
    v = tu_logpdf_chol(d, x, mu, l);
  free(l);
  return v;
}

long double tu_logsumexp(const long double *v, size_t n) {
  long double m = -INFINITY;
  for (size_t i = 0; i < n; i++)
    if (v[i] > m)
      m = v[i];
  if (isinf((double)m) && m < 0)
    return m;
  long double s = 0.0L;
  for (size_t i = 0; i < n; i++)
    s += expl(v[i] - m);
  return m + logl(s);
}

/* ---------------------------------------------------------------------- */
/* Errors                                                                  */
/* ---------------------------------------------------------------------- */

double tu_rel_frobenius(const double *a, const double *b, size_t n) {
  long double num = 0.0L, den = 0.0L;
  for (size_t i = 0; i < n; i++) {
    long double e = (long double)a[i] - (long double)b[i];
    num += e * e;
    den += (long double)b[i] * b[i];
  }
  if (isnan((double)num))
    return INFINITY;
  return den > 0.0L ? (double)sqrtl(num / den) : (double)sqrtl(num);
}

double tu_rel_frobenius_ld(const double *a, const long double *b, size_t n) {
  long double num = 0.0L, den = 0.0L;
  for (size_t i = 0; i < n; i++) {
    long double e = (long double)a[i] - b[i];
    num += e * e;
    den += b[i] * b[i];
  }
  if (isnan((double)num))
    return INFINITY;
  return den > 0.0L ? (double)sqrtl(num / den) : (double)sqrtl(num);
}

double tu_max_rel_err(const double *a, const double *b, const double *scale,
                      size_t n) {
  double worst = 0.0;
  for (size_t i = 0; i < n; i++) {
    double s = fabs(b[i]);
    if (scale && fabs(scale[i]) > s)
      s = fabs(scale[i]);
    double e = fabs(a[i] - b[i]);
    double r = s > 0.0 ? e / s : e;
    if (isnan(r))
      return INFINITY;
    if (r > worst)
      worst = r;
  }
  return worst;
}

int tu_bits_equal(const double *a, const double *b, size_t n) {
  return memcmp(a, b, n * sizeof *a) == 0;
}

/* ---------------------------------------------------------------------- */
/* Temporary directories                                                   */
/* ---------------------------------------------------------------------- */

int tu_tmpdir_create(char *buf, size_t len) {
  const char *base = getenv("TMPDIR");
  if (!base || !*base)
    base = "/tmp";
  int n = snprintf(buf, len, "%s/gmle-test-XXXXXX", base);
  if (n < 0 || (size_t)n >= len)
    return -1;
  return mkdtemp(buf) ? 0 : -1;
}

int tu_path_join(char *buf, size_t len, const char *dir, const char *name) {
  int n = snprintf(buf, len, "%s/%s", dir, name);
  return (n < 0 || (size_t)n >= len) ? -1 : 0;
}

int tu_tmpdir_remove(const char *dir) {
  DIR *dp = opendir(dir);
  if (!dp)
    return -1;
  struct dirent *e;
  char path[4096];
  while ((e = readdir(dp)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    if (tu_path_join(path, sizeof path, dir, e->d_name) == 0)
      remove(path);
  }
  closedir(dp);
  return rmdir(dir);
}

unsigned char *tu_slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *b = malloc(len > 0 ? (size_t)len : 1);
  if (b && fread(b, 1, (size_t)len, f) != (size_t)len) {
    free(b);
    b = NULL;
  }
  fclose(f);
  *n = (size_t)len;
  return b;
}

int tu_suite_start(gmle_context **ctx, char *dir, size_t cap) {
  if (gmle_context_create(GMLE_BACKEND_AUTO, -1, ctx) != GMLE_OK) {
    printf("cannot create a context: %s\n", gmle_context_error(*ctx));
    return -1;
  }
  if (tu_tmpdir_create(dir, cap) != 0) {
    printf("cannot create a temporary directory\n");
    return -1;
  }
  return 0;
}

const char *tu_tmp_path(const char *dir, const char *name) {
  static char buf[8][1024];
  static int k;
  char *b = buf[k++ % 8];
  if (tu_path_join(b, sizeof buf[0], dir, name) != 0)
    b[0] = '\0';
  return b;
}

int tu_have_python(const char *module) {
  char cmd[256];
  snprintf(cmd, sizeof cmd, "python3 -c 'import %s' >/dev/null 2>&1", module);
  return system(cmd) == 0;
}

int tu_run_python(const char *dir, const char *code, const char *arg) {
  char py[1024];
  if (tu_path_join(py, sizeof py, dir, "t.py") != 0 ||
      tu_spit(py, code, strlen(code)) != 0)
    return -1;
  char cmd[4096];
  snprintf(cmd, sizeof cmd, "python3 '%s' '%s' '%s'", py, dir, arg);
  int rc = system(cmd);
  remove(py);
  return rc;
}

int tu_spit(const char *path, const void *b, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f)
    return -1;
  size_t w = fwrite(b, 1, n, f);
  return (fclose(f) == 0 && w == n) ? 0 : -1;
}

void tu_poke(FILE *f, size_t off, unsigned char v) {
  fseek(f, (long)off, SEEK_SET);
  fputc(v, f);
  fflush(f);
}
