/* model_file_mixture.c -- the members of mixture models in model files:
 * scikit-learn GaussianMixture's arrays (weights, means, covariances,
 * precisions_cholesky, covariance_type), with a leading class axis for
 * per-class mixtures, and the EM report as em_* members. The archive and
 * the members every model has: io/model_file.c. The layout:
 * docs/FORMATS.md.
 */
#include "model_file.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* How far a class's weights may sum from 1 in a file. */
#define WEIGHT_SUM_TOL 1e-6

/* ------------------------------------------------------------------------ */
/* Shapes                                                                   */
/* ------------------------------------------------------------------------ */

/* The shape of a mixture: C classes of K components in D features; an
 * unsupervised mixture (per_class 0) has no class axis. */
typedef struct mix_shape {
  int per_class;
  size_t C, K, D;
} mix_shape;

enum mix_array { MIX_WEIGHTS, MIX_MEANS, MIX_COVS };

/* The shape of one of the arrays into shape[]; returns its ndim. */
static size_t array_shape(const mix_shape *ms, gmle_cov_type cov,
                          enum mix_array a, size_t *shape) {
  size_t n = 0;
  if (ms->per_class)
    shape[n++] = ms->C;
  if (a == MIX_COVS && cov == GMLE_COV_TIED) {
    shape[n++] = ms->D;
    shape[n++] = ms->D;
    return n;
  }
  shape[n++] = ms->K;
  if (a == MIX_MEANS || (a == MIX_COVS && cov != GMLE_COV_SPHERICAL))
    shape[n++] = ms->D;
  if (a == MIX_COVS && cov == GMLE_COV_FULL)
    shape[n++] = ms->D;
  return n;
}

static size_t array_len(const mix_shape *ms, gmle_cov_type cov,
                        enum mix_array a) {
  size_t shape[4], len = 1;
  const size_t ndim = array_shape(ms, cov, a, shape);
  for (size_t k = 0; k < ndim; k++)
    len *= shape[k];
  return len;
}

/* ------------------------------------------------------------------------ */
/* The EM report members                                                    */
/* ------------------------------------------------------------------------ */

enum em_field {
  EM_N_ITER,
  EM_CONVERGED,
  EM_LOWER_BOUND,
  EM_HISTORY,
  EM_N_RESEEDED,
  EM_N_INIT,
  EM_BEST_INIT,
  EM_MODE,
  EM_INIT,
  EM_REG_COVAR,
  EM_N_ROWS,
  EM_COUNT
};
_Static_assert(EM_COUNT == GMLE__MF_N_EM, "em_* members");

/* How each is stored: 'u' a 0-d <u8 count, 'b' a 0-d |b1, 'f' a 0-d <f8,
 * 'h' an (n,) <f8, 's' a 0-d <U name. */
static const struct {
  const char *name;
  char kind;
} em_members[EM_COUNT] = {
    {"em_n_iter", 'u'},    {"em_converged", 'b'},  {"em_lower_bound", 'f'},
    {"em_history", 'h'},   {"em_n_reseeded", 'u'}, {"em_n_init", 'u'},
    {"em_best_init", 'u'}, {"em_mode", 's'},       {"em_init", 's'},
    {"em_reg_covar", 'f'}, {"em_n_rows", 'f'}};

/* Where field f lives in a report: a count ('u'), a real ('f'), or
 * NULL for the others. */
static size_t *count_of(gmle_em_report *r, enum em_field f) {
  switch (f) {
  case EM_N_ITER:
    return &r->n_iter;
  case EM_N_RESEEDED:
    return &r->n_reseeded;
  case EM_N_INIT:
    return &r->n_init;
  case EM_BEST_INIT:
    return &r->best_init;
  default:
    return NULL;
  }
}

static double *real_of(gmle_em_report *r, enum em_field f) {
  switch (f) {
  case EM_LOWER_BOUND:
    return &r->lower_bound;
  case EM_REG_COVAR:
    return &r->reg_covar;
  case EM_N_ROWS:
    return &r->n_rows;
  default:
    return NULL;
  }
}

static gmle_status save_em_report(gmle__mf_save *s, const gmle_em_report *r) {
  gmle_em_report rc = *r;
  for (int f = 0; f < EM_COUNT; f++) {
    char name[64];
    snprintf(name, sizeof name, "%s.npy", em_members[f].name);
    switch (em_members[f].kind) {
    case 'u': {
      const uint64_t u = *count_of(&rc, (enum em_field)f);
      GMLE_TRY(gmle__mf_add_array(s, name, s->u8, 0, NULL, &u, 8));
      break;
    }
    case 'b': {
      const unsigned char b = r->converged != 0;
      GMLE_TRY(gmle__mf_add_array(s, name, "|b1", 0, NULL, &b, 1));
      break;
    }
    case 'f':
      GMLE_TRY(gmle__mf_add_array(s, name, s->f8, 0, NULL,
                                  real_of(&rc, (enum em_field)f), 8));
      break;
    case 'h': {
      const size_t shape[1] = {r->n_history};
      GMLE_TRY(gmle__mf_add_array(s, name, s->f8, 1, shape, r->history,
                                  r->n_history * 8));
      break;
    }
    default: {
      const char *text = f == EM_MODE ? gmle_em_mode_name(r->mode)
                                      : gmle_em_init_name(r->init);
      GMLE_TRY(gmle__mf_add_text(s, name, text ? text : "unknown"));
      break;
    }
    }
  }
  return GMLE_OK;
}

/* The em_* members: all or none, each typed and shaped right. */
static gmle_status load_em_members(gmle__mf_load *L) {
  int have = 0;
  for (int f = 0; f < EM_COUNT; f++) {
    gmle__mf_member *mb = &L->em[f];
    GMLE_TRY(gmle__mf_load_member(L, mb, em_members[f].name, 0));
    if (!mb->buf)
      continue;
    have++;
    const char kind = em_members[f].kind, k = mb->h.kind;
    if (kind == 's')
      continue; /* checked as a name by restore_em_report */
    if (mb->h.ndim != (kind == 'h' ? 1u : 0u))
      return gmle__mf_wrong_shape(
          L, mb, kind == 'h' ? "(n_history,)" : "() (a scalar)");
    if ((kind == 'u' && k != 'i' && k != 'u') ||
        (kind == 'b' && k != 'b' && k != 'i' && k != 'u'))
      return gmle__error(L->ctx, GMLE_E_BAD_FORMAT,
                         "%s: dtype '%s' is not an integer%s", mb->label,
                         mb->h.descr, kind == 'b' ? " or a boolean" : "");
    if (kind == 'f' || kind == 'h')
      GMLE_TRY(gmle__mf_need_numeric(L, mb));
  }
  if (have == 0 || have == EM_COUNT)
    return GMLE_OK;
  int f = 0;
  while (L->em[f].buf)
    f++;
  return gmle__error(L->ctx, GMLE_E_BAD_FORMAT,
                     "%s: no member '%s.npy', although the archive has other "
                     "em_* members (the EM report's members go together)",
                     L->path, em_members[f].name);
}

static gmle_status bad_em(gmle__mf_load *L, const gmle__mf_member *mb,
                          const char *rule) {
  return gmle__error(L->ctx, GMLE_E_INVALID_MODEL,
                     "%s: byte %zu: the value must be %s", mb->label,
                     mb->h.header_len, rule);
}

/* The report from the em_* members (all present), its values checked. */
static gmle_status read_em_report(gmle__mf_load *L, gmle_em_report *r,
                                  double *history) {
  memset(r, 0, sizeof *r);
  for (int f = 0; f < EM_COUNT; f++) {
    const gmle__mf_member *mb = &L->em[f];
    const char kind = em_members[f].kind;
    if (kind == 's') {
      char text[GMLE__MF_MAX_TEXT + 1];
      GMLE_TRY(gmle__mf_scalar_text(L, mb, text, sizeof text));
      if (f == EM_MODE ? gmle_em_mode_parse(text, &r->mode) != GMLE_OK
                       : gmle_em_init_parse(text, &r->init) != GMLE_OK)
        return bad_em(L, mb,
                      f == EM_MODE ? "'soft', 'hard' or 'top'"
                                   : "'kmeans++', 'random', 'model' or "
                                     "'split'");
      continue;
    }
    if (kind == 'h') {
      gmle__npy_array_to_f64(&mb->h, mb->data, history);
      r->n_history = mb->h.n_elements;
      r->history = history;
      continue;
    }
    if (kind == 'f') {
      double *v = real_of(r, (enum em_field)f);
      gmle__npy_to_f64(&mb->h, mb->data, 1, v);
      if (f != EM_LOWER_BOUND && !(isfinite(*v) && *v >= 0))
        return bad_em(L, mb, "finite and >= 0");
      continue;
    }
    int64_t iv = 0;
    if (gmle__npy_to_i64(&mb->h, mb->data, 1, &iv) != 1 || iv < 0 ||
        (kind == 'b' && iv > 1))
      return bad_em(L, mb, kind == 'b' ? "0 or 1" : "an integer >= 0");
    if (kind == 'b')
      r->converged = (int)iv;
    else
      *count_of(r, (enum em_field)f) = (size_t)iv;
  }
  if (r->n_init > 0 && r->best_init >= r->n_init)
    return bad_em(L, &L->em[EM_BEST_INIT], "below em_n_init");
  return GMLE_OK;
}

/* ------------------------------------------------------------------------ */
/* Save                                                                     */
/* ------------------------------------------------------------------------ */

/* Parameter arrays of a mixture, as gmle_mixture_params writes them. */
typedef struct mix_params {
  double *weights, *means, *covs, *prec;
} mix_params;

static void params_free(mix_params *p) {
  gmle__free(p->weights);
  gmle__free(p->means);
  gmle__free(p->covs);
  gmle__free(p->prec);
}

static gmle_status save_params(gmle__mf_save *s, const gmle_model *m,
                               const mix_shape *ms, gmle_cov_type cov) {
  mix_params p;
  p.weights = gmle__malloc(array_len(ms, cov, MIX_WEIGHTS) * 8);
  p.means = gmle__malloc(array_len(ms, cov, MIX_MEANS) * 8);
  p.covs = gmle__malloc(array_len(ms, cov, MIX_COVS) * 8);
  p.prec = gmle__malloc(array_len(ms, cov, MIX_COVS) * 8);
  gmle_status st = GMLE_OK;
  if (!p.weights || !p.means || !p.covs || !p.prec)
    st =
        gmle__error(s->ctx, GMLE_E_OUT_OF_MEMORY, "%s: out of memory", s->path);
  if (st == GMLE_OK)
    st = gmle_mixture_params(m, p.weights, p.means, p.covs);
  if (st == GMLE_OK)
    st = gmle_mixture_precisions_cholesky(m, p.prec);
  static const char *const names[4] = {
      "weights.npy", "means.npy", "covariances.npy", "precisions_cholesky.npy"};
  const double *data[4] = {p.weights, p.means, p.covs, p.prec};
  for (int a = 0; a < 4 && st == GMLE_OK; a++) {
    const enum mix_array which = a == 3 ? MIX_COVS : (enum mix_array)a;
    size_t shape[4];
    const size_t ndim = array_shape(ms, cov, which, shape);
    st = gmle__mf_add_array(s, names[a], s->f8, ndim, shape, data[a],
                            array_len(ms, cov, which) * 8);
  }
  params_free(&p);
  return st;
}

gmle_status gmle__mf_save_mixture(gmle__mf_save *s, const gmle_model *m) {
  const gmle_cov_type cov = gmle_model_cov_type(m);
  mix_shape ms = {.C = gmle_model_n_classes(m),
                  .K = gmle_model_n_components(m),
                  .D = gmle_model_dim(m)};
  /* One class without a name: an unsupervised mixture, stored exactly as
   * scikit-learn's arrays (no class axis, no priors or classes). */
  ms.per_class = ms.C > 1 || gmle_model_class_name(m, 0) != NULL;
  GMLE_TRY(gmle__mf_save_header(s, GMLE__MF_VERSION_MIXTURE, cov));
  GMLE_TRY(save_params(s, m, &ms, cov));
  GMLE_TRY(gmle__mf_save_classes(s, m, ms.per_class, ms.per_class));
  GMLE_TRY(gmle__mf_save_train_and_reports(s, m));
  gmle_em_report r;
  if (gmle_model_em_report(m, &r) != GMLE_OK) {
    gmle__clear_error(s->ctx); /* a mixture without a report */
    return GMLE_OK;
  }
  return save_em_report(s, &r);
}

/* ------------------------------------------------------------------------ */
/* Load                                                                     */
/* ------------------------------------------------------------------------ */

/* What create_mixture needs beside the members. */
typedef struct mix_load {
  mix_shape ms;
  gmle_cov_type cov;
} mix_load;

/* weights: (K,) for an unsupervised mixture, (C, K) with a class axis. */
static gmle_status load_weights(gmle__mf_load *L, mix_shape *ms) {
  gmle__mf_member *mb = &L->weights;
  GMLE_TRY(gmle__mf_load_member(L, mb, "weights", 1));
  GMLE_TRY(gmle__mf_need_numeric(L, mb));
  const size_t nd = mb->h.ndim;
  if ((nd != 1 && nd != 2) || mb->h.shape[0] == 0 || mb->h.shape[nd - 1] == 0)
    return gmle__mf_wrong_shape(L, mb,
                                "(n_components,) or (n_classes, "
                                "n_components), all >= 1");
  ms->per_class = nd == 2;
  ms->C = nd == 2 ? mb->h.shape[0] : 1;
  ms->K = mb->h.shape[nd - 1];
  return GMLE_OK;
}

/* means: weights' shape and then D >= 1. */
static gmle_status load_means(gmle__mf_load *L, mix_shape *ms) {
  gmle__mf_member *mb = &L->means;
  GMLE_TRY(gmle__mf_load_member(L, mb, "means", 1));
  GMLE_TRY(gmle__mf_need_numeric(L, mb));
  const size_t nd = ms->per_class ? 3 : 2;
  const size_t lead[2] = {ms->per_class ? ms->C : ms->K, ms->K};
  int ok = mb->h.ndim == nd && mb->h.shape[nd - 1] > 0;
  for (size_t k = 0; ok && k + 1 < nd; k++)
    ok = mb->h.shape[k] == lead[k];
  if (!ok) {
    char want[128];
    if (ms->per_class)
      snprintf(want, sizeof want,
               "(%zu, %zu, n_features >= 1), as weights "
               "(n_classes, n_components) says",
               ms->C, ms->K);
    else
      snprintf(want, sizeof want,
               "(%zu, n_features >= 1), as weights "
               "(n_components,) says",
               ms->K);
    return gmle__mf_wrong_shape(L, mb, want);
  }
  ms->D = mb->h.shape[nd - 1];
  return GMLE_OK;
}

/* covariances or precisions_cholesky: the shape of covariance_type `cov`;
 * a shape of another type is named as such. */
static gmle_status check_cov_shape(gmle__mf_load *L, gmle__mf_member *mb,
                                   const mix_shape *ms, gmle_cov_type cov) {
  GMLE_TRY(gmle__mf_need_numeric(L, mb));
  size_t shape[4];
  size_t ndim = array_shape(ms, cov, MIX_COVS, shape);
  if (gmle__mf_shape_is(mb, ndim, shape))
    return GMLE_OK;
  char want[256];
  gmle__mf_shape_text(shape, ndim, want, sizeof want);
  size_t len = strlen(want);
  snprintf(want + len, sizeof want - len, " for covariance_type '%s'",
           gmle_cov_name(cov));
  for (int t = GMLE_COV_FULL; t <= GMLE_COV_TIED; t++) {
    size_t other[4];
    ndim = array_shape(ms, (gmle_cov_type)t, MIX_COVS, other);
    if (t != (int)cov && gmle__mf_shape_is(mb, ndim, other)) {
      len = strlen(want);
      snprintf(want + len, sizeof want - len,
               " (this is the shape of '%s' covariances: covariance_type "
               "and the array disagree)",
               gmle_cov_name((gmle_cov_type)t));
      break;
    }
  }
  return gmle__mf_wrong_shape(L, mb, want);
}

/* Each class's weights finite, >= 0 and summing to 1 within the
 * tolerance; the message names the file, the class and the sum. */
static gmle_status check_weights(gmle__mf_load *L, const mix_shape *ms,
                                 const double *w) {
  for (size_t c = 0; c < ms->C; c++) {
    char cls[64] = "";
    if (ms->per_class)
      snprintf(cls, sizeof cls, "class %zu: ", c);
    double sum = 0;
    for (size_t k = 0; k < ms->K; k++) {
      const double v = w[c * ms->K + k];
      if (!(isfinite(v) && v >= 0))
        return gmle__error(L->ctx, GMLE_E_INVALID_MODEL,
                           "%s: %scomponent %zu's weight is %g; weights must "
                           "be finite and >= 0",
                           L->weights.label, cls, k, v);
      sum += v;
    }
    if (!(fabs(sum - 1) <= WEIGHT_SUM_TOL))
      return gmle__error(L->ctx, GMLE_E_INVALID_MODEL,
                         "%s: %sthe weights sum to %.10g; they must sum to 1 "
                         "(within %g)",
                         L->weights.label, cls, sum, WEIGHT_SUM_TOL);
  }
  return GMLE_OK;
}

/* The EM report from the em_* members onto m, when the file has them. */
static gmle_status restore_em_report(gmle__mf_load *L, gmle_model *m) {
  if (!L->em[0].buf)
    return GMLE_OK;
  const size_t n = L->em[EM_HISTORY].h.n_elements;
  double *history = gmle__malloc((n ? n : 1) * sizeof *history);
  if (!history)
    return gmle__error(L->ctx, GMLE_E_OUT_OF_MEMORY, "%s: out of memory",
                       L->path);
  gmle_em_report r;
  gmle_status s = read_em_report(L, &r, history);
  if (s == GMLE_OK) {
    s = gmle_model_set_em_report(m, &r);
    if (s != GMLE_OK)
      s = gmle__mf_path_error(L, s);
  }
  gmle__free(history);
  return s;
}

/* The mixture from the checked members, through gmle_mixture_create. */
static gmle_status create_mixture(gmle__mf_load *L, const void *arg,
                                  gmle_model **m) {
  const mix_load *ml = arg;
  const mix_shape *ms = &ml->ms;
  gmle__mf_member *src[5] = {&L->weights, &L->means, &L->covs, &L->priors,
                             &L->counts};
  const double *p[5] = {NULL, NULL, NULL, NULL, NULL};
  double *owned[5] = {NULL, NULL, NULL, NULL, NULL};
  gmle_status s = GMLE_OK;
  for (int i = 0; i < 5 && s == GMLE_OK; i++)
    if (src[i]->buf)
      s = gmle__mf_as_f64(L, src[i], &p[i], &owned[i]);
  if (s == GMLE_OK)
    s = check_weights(L, ms, p[0]);
  if (s == GMLE_OK) {
    s = gmle_mixture_create(L->ctx, ms->D, ms->C, ms->K, ml->cov, p[0], p[1],
                            p[2], p[3], p[4], m);
    if (s != GMLE_OK)
      s = gmle__mf_path_error(L, s);
  }
  for (int i = 0; i < 5; i++)
    gmle__free(owned[i]);
  if (s == GMLE_OK)
    s = restore_em_report(L, *m);
  return s;
}

gmle_status gmle__mf_load_mixture(gmle__mf_load *L, gmle_model **out) {
  mix_load ml;
  memset(&ml, 0, sizeof ml);
  GMLE_TRY(gmle__mf_load_cov_type(L, &ml.cov));
  GMLE_TRY(load_weights(L, &ml.ms));
  GMLE_TRY(load_means(L, &ml.ms));
  GMLE_TRY(gmle__mf_load_member(L, &L->covs, "covariances", 1));
  GMLE_TRY(check_cov_shape(L, &L->covs, &ml.ms, ml.cov));
  /* precisions_cholesky is for scikit-learn: its shape is checked, its
   * values are recomputed from the covariances. */
  GMLE_TRY(gmle__mf_load_member(L, &L->prec, "precisions_cholesky", 0));
  if (L->prec.buf)
    GMLE_TRY(check_cov_shape(L, &L->prec, &ml.ms, ml.cov));
  GMLE_TRY(gmle__mf_load_classes(L, ml.ms.C, 0));
  GMLE_TRY(load_em_members(L));
  return gmle__mf_build(L, ml.ms.C, create_mixture, &ml, out);
}
