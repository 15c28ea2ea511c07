/* model_file.c -- gmle_model_save / gmle_model_load: models as uncompressed
 * .npz archives that numpy.load reads, and that numpy.savez can write. This
 * half holds the archive, the members of models of plain Gaussians and those
 * every model has; io/model_file_mixture.c the members of mixtures.
 *
 * The members and their layout: docs/FORMATS.md.
 */
#include "model_file.h"

#include "io_mem.h"

#include "atomic_file.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static char native_order(void) { return gmle__host_big_endian() ? '>' : '<'; }

/* ------------------------------------------------------------------------ */
/* UTF-8 <-> code points (surrogateescape for bytes that are not UTF-8)     */
/* ------------------------------------------------------------------------ */

/* Decode one code point at s (NUL-terminated); returns bytes consumed. A
 * byte that does not start valid UTF-8 becomes U+DC80..U+DCFF, as Python's
 * surrogateescape does, so any bytes survive a round trip through numpy. */
static size_t utf8_next(const unsigned char *s, uint32_t *cp) {
  size_t n = gmle__utf8_decode(s, cp);
  if (n)
    return n;
  *cp = 0xdc00u + s[0];
  return 1;
}

static size_t utf8_count(const char *s) {
  size_t n = 0;
  uint32_t cp;
  for (const unsigned char *p = (const unsigned char *)s; *p;
       p += utf8_next(p, &cp))
    n++;
  return n;
}

/* Encode cp; returns bytes written (at most 4) into out. An escaped byte
 * (U+DC80..U+DCFF) is written back as that byte. */
static size_t utf8_put(uint32_t cp, char *out) {
  if (cp >= 0xdc80 && cp <= 0xdcff) {
    out[0] = (char)(unsigned char)(cp - 0xdc00);
    return 1;
  }
  return gmle__utf8_encode(cp, out);
}

/* ------------------------------------------------------------------------ */
/* Save                                                                     */
/* ------------------------------------------------------------------------ */

gmle_status gmle__mf_add_array(gmle__mf_save *s, const char *member,
                               const char *descr, size_t ndim,
                               const size_t *shape, const void *data,
                               size_t bytes) {
  char hdr[512];
  size_t hl = gmle__npy_format_header(hdr, sizeof hdr, descr, 0, ndim, shape);
  if (hl == 0)
    return gmle__error(s->ctx, GMLE_E_INTERNAL,
                       "%s: cannot format the .npy header of '%s'", s->path,
                       member);
  const void *parts[2] = {hdr, data};
  const size_t lens[2] = {hl, bytes};
  return gmle__zip_add(&s->zw, member, parts, lens, 2);
}

/* UCS-4 array of n strings of width w code points (at least 1). */
static gmle_status ucs4_strings(const gmle_context *ctx, const char *path,
                                const char *const *strs, size_t n,
                                unsigned char **out, size_t *width,
                                size_t *bytes) {
  size_t w = 1;
  for (size_t i = 0; i < n; i++) {
    size_t k = utf8_count(strs[i]);
    w = k > w ? k : w;
  }
  size_t total;
  if (gmle__mul3_size(n, w, 4, &total))
    return gmle__error(ctx, GMLE_E_TOO_LARGE, "%s: class names too long", path);
  unsigned char *b = gmle__calloc(total ? total : 1, 1);
  if (!b)
    return gmle__error(ctx, GMLE_E_OUT_OF_MEMORY,
                       "%s: out of memory for class names", path);
  for (size_t i = 0; i < n; i++) {
    const unsigned char *p = (const unsigned char *)strs[i];
    for (size_t k = 0; *p; k++) {
      uint32_t cp;
      p += utf8_next(p, &cp);
      gmle__st_le32(b + (i * w + k) * 4, cp);
    }
  }
  *out = b;
  *width = w;
  *bytes = total;
  return GMLE_OK;
}

/* Which field of gmle_class_report a report_* member holds. */
enum report_field {
  REP_MIN_EIG,
  REP_MAX_EIG,
  REP_CONDITION,
  REP_N_FLOORED,
  REP_EMPTY,
  REP_SHRINKAGE,
  REP_COUNT
};
_Static_assert(REP_COUNT == GMLE__MF_N_REPORT, "report_* members");
static const char *const report_members[REP_COUNT] = {
    "report_min_eigenvalue", "report_max_eigenvalue", "report_condition",
    "report_n_floored",      "report_empty",          "report_shrinkage"};

gmle_status gmle__mf_save_train_and_reports(gmle__mf_save *s,
                                            const gmle_model *m) {
  const size_t C = m->n_classes;
  const char *f8 = s->f8, *u8 = s->u8;
  if (m->has_train) {
    GMLE_TRY(gmle__mf_add_array(s, "train_loglik.npy", f8, 0, NULL,
                                &m->train_loglik, 8));
    GMLE_TRY(gmle__mf_add_array(s, "train_loglik_joint.npy", f8, 0, NULL,
                                &m->train_loglik_joint, 8));
    GMLE_TRY(gmle__mf_add_array(s, "train_n.npy", f8, 0, NULL, &m->train_n, 8));
  }
  if (!m->reports)
    return GMLE_OK;
  unsigned char *buf = gmle__malloc(C * 8);
  if (!buf)
    return gmle__error(s->ctx, GMLE_E_OUT_OF_MEMORY, "%s: out of memory",
                       s->path);
  gmle_status st = GMLE_OK;
  for (int f = 0; f < REP_COUNT && st == GMLE_OK; f++) {
    const char *descr = f8;
    size_t item = 8;
    for (size_t c = 0; c < C; c++) {
      const gmle_class_report *r = &m->reports[c];
      double d = 0;
      switch ((enum report_field)f) {
      case REP_MIN_EIG:
        d = r->min_eigenvalue;
        break;
      case REP_MAX_EIG:
        d = r->max_eigenvalue;
        break;
      case REP_CONDITION:
        d = r->condition;
        break;
      case REP_SHRINKAGE:
        d = r->shrinkage;
        break;
      case REP_N_FLOORED: {
        const uint64_t u = (uint64_t)r->n_floored;
        memcpy(buf + 8 * c, &u, 8);
        descr = u8;
        continue;
      }
      case REP_EMPTY:
        buf[c] = r->empty != 0;
        descr = "|b1";
        item = 1;
        continue;
      case REP_COUNT:
        break;
      }
      memcpy(buf + 8 * c, &d, 8);
    }
    char name[64];
    snprintf(name, sizeof name, "%s.npy", report_members[f]);
    const size_t shape[1] = {C};
    st = gmle__mf_add_array(s, name, descr, 1, shape, buf, C * item);
  }
  gmle__free(buf);
  return st;
}

gmle_status gmle__mf_add_text(gmle__mf_save *s, const char *member,
                              const char *text) {
  unsigned char ucs4[GMLE__MF_MAX_TEXT * 4];
  size_t len = strlen(text);
  if (len > GMLE__MF_MAX_TEXT)
    return gmle__error(s->ctx, GMLE_E_INTERNAL, "%s: '%s' is too long", s->path,
                       member);
  for (size_t k = 0; k < len; k++)
    gmle__st_le32(ucs4 + 4 * k, (uint32_t)(unsigned char)text[k]);
  char ud[32];
  snprintf(ud, sizeof ud, "<U%zu", len);
  return gmle__mf_add_array(s, member, ud, 0, NULL, ucs4, len * 4);
}

gmle_status gmle__mf_save_header(gmle__mf_save *s, int version,
                                 gmle_cov_type cov) {
  unsigned char v8[8];
  gmle__st_le64(v8, (uint64_t)version);
  GMLE_TRY(gmle__mf_add_array(s, "format_version.npy", "<i8", 0, NULL, v8, 8));
  return gmle__mf_add_text(s, "covariance_type.npy", gmle_cov_name(cov));
}

gmle_status gmle__mf_save_classes(gmle__mf_save *s, const gmle_model *m,
                                  int with_priors, int with_classes) {
  const size_t C = m->n_classes;
  const size_t shape[1] = {C};
  if (with_priors)
    GMLE_TRY(
        gmle__mf_add_array(s, "priors.npy", s->f8, 1, shape, m->priors, C * 8));
  if (m->counts)
    GMLE_TRY(
        gmle__mf_add_array(s, "counts.npy", s->f8, 1, shape, m->counts, C * 8));
  if (m->rows)
    GMLE_TRY(
        gmle__mf_add_array(s, "rows.npy", s->u8, 1, shape, m->rows, C * 8));
  if (!with_classes)
    return GMLE_OK;
  unsigned char *cls = NULL;
  size_t bytes = 0;
  gmle_status st;
  if (m->names) {
    size_t w = 0;
    GMLE_TRY(ucs4_strings(s->ctx, s->path, (const char *const *)m->names, C,
                          &cls, &w, &bytes));
    char ud2[32];
    snprintf(ud2, sizeof ud2, "<U%zu", w);
    st = gmle__mf_add_array(s, "classes.npy", ud2, 1, shape, cls, bytes);
  } else {
    cls = gmle__malloc(C * 8);
    if (!cls)
      return gmle__error(s->ctx, GMLE_E_OUT_OF_MEMORY, "%s: out of memory",
                         s->path);
    for (size_t c = 0; c < C; c++)
      gmle__st_le64(cls + 8 * c, (uint64_t)c);
    st = gmle__mf_add_array(s, "classes.npy", "<i8", 1, shape, cls, C * 8);
  }
  gmle__free(cls);
  return st;
}

/* A model of plain Gaussians: means (C, D) and covariances shaped as
 * scikit-learn's GaussianMixture's for the type. */
static gmle_status save_plain(gmle__mf_save *s, const gmle_model *m) {
  const size_t C = m->n_classes, D = m->dim;
  GMLE_TRY(gmle__mf_save_header(s, GMLE__MF_VERSION_PLAIN, m->cov));
  const size_t shape[3] = {C, D, D};
  GMLE_TRY(
      gmle__mf_add_array(s, "means.npy", s->f8, 2, shape, m->means, C * D * 8));
  static const size_t cov_ndim[4] = {3, 2, 1, 2}; /* full diag sph. tied */
  const size_t cov_bytes = gmle__cov_len(m->cov, D, C) * 8;
  GMLE_TRY(gmle__mf_add_array(s, "covariances.npy", s->f8, cov_ndim[m->cov],
                              m->cov == GMLE_COV_TIED ? shape + 1 : shape,
                              m->covars, cov_bytes));
  GMLE_TRY(gmle__mf_save_classes(s, m, 1, 1));
  return gmle__mf_save_train_and_reports(s, m);
}

gmle_status gmle_model_save(const gmle_model *m, const char *path) {
  if (!m)
    return GMLE_E_INVALID_ARG;
  const gmle_context *ctx = m->ctx;
  gmle__clear_error(ctx);
  GMLE_RETURN_IF(!path || !*path, ctx, GMLE_E_INVALID_ARG,
                 "gmle_model_save: empty or NULL path");
  GMLE_RETURN_IF(
      (unsigned)m->cov > GMLE_COV_TIED || !m->means || !m->covars || !m->priors,
      ctx, GMLE_E_INVALID_ARG, "gmle_model_save: the model is incomplete");
  gmle__atomic_file af;
  GMLE_TRY(gmle__atomic_open(ctx, path, &af));
  gmle__mf_save s;
  s.ctx = ctx;
  s.path = path;
  snprintf(s.f8, sizeof s.f8, "%cf8", native_order());
  snprintf(s.u8, sizeof s.u8, "%cu8", native_order());
  gmle__zip_writer_init(&s.zw, ctx, af.f, path);
  gmle_status st = gmle_model_is_mixture(m) ? gmle__mf_save_mixture(&s, m)
                                            : save_plain(&s, m);
  if (st == GMLE_OK)
    st = gmle__zip_finish(&s.zw);
  if (st != GMLE_OK) {
    gmle__atomic_abort(&af);
    return st;
  }
  return gmle__atomic_commit(&af);
}

/* ------------------------------------------------------------------------ */
/* Load                                                                     */
/* ------------------------------------------------------------------------ */

typedef gmle__mf_member member;
typedef gmle__mf_load load_state;

static const char *const train_members[3] = {"train_loglik",
                                             "train_loglik_joint", "train_n"};

static void load_free(load_state *L) {
  member *all[] = {&L->fv,     &L->ct,   &L->means,   &L->covs,    &L->priors,
                   &L->counts, &L->rows, &L->classes, &L->weights, &L->prec};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++)
    gmle__free(all[i]->buf);
  for (size_t i = 0; i < 3; i++)
    gmle__free(L->train[i].buf);
  for (size_t i = 0; i < REP_COUNT; i++)
    gmle__free(L->rep[i].buf);
  for (size_t i = 0; i < GMLE__MF_N_EM; i++)
    gmle__free(L->em[i].buf);
  gmle__zip_close(&L->zr);
}

gmle_status gmle__mf_load_member(load_state *L, member *mb, const char *name,
                                 int required) {
  char zname[64];
  snprintf(zname, sizeof zname, "%s.npy", name);
  mb->name = name;
  const gmle__zip_entry *e = gmle__zip_find(&L->zr, zname);
  if (!e) {
    if (!required)
      return GMLE_OK;
    return gmle__error(
        L->ctx, GMLE_E_BAD_FORMAT,
        "%s: no member '%s': not a gmle model file (%s)", L->path, zname,
        L->mixture ? "a mixture needs weights, means, covariances "
                     "and covariance_type"
                   : "it needs means, covariances, priors, "
                     "covariance_type and format_version");
  }
  snprintf(mb->label, sizeof mb->label, "%s: member '%s' (data at byte %llu)",
           L->path, zname, (unsigned long long)e->data_offset);
  GMLE_TRY(gmle__zip_read_member(&L->zr, e, &mb->buf));
  GMLE_TRY(gmle__npy_parse_header(L->ctx, mb->label, mb->buf, (size_t)e->size,
                                  e->size, &mb->h));
  if (mb->h.header_len + mb->h.data_bytes != e->size)
    return gmle__error(
        L->ctx, GMLE_E_BAD_FORMAT,
        "%s: byte %zu: %llu stray bytes after the array data", mb->label,
        mb->h.header_len + mb->h.data_bytes,
        (unsigned long long)(e->size - mb->h.header_len - mb->h.data_bytes));
  mb->data = mb->buf + mb->h.header_len;
  return GMLE_OK;
}

int gmle__mf_shape_is(const member *mb, size_t ndim, const size_t *want) {
  if (mb->h.ndim != ndim)
    return 0;
  for (size_t k = 0; k < ndim; k++)
    if (mb->h.shape[k] != want[k])
      return 0;
  return 1;
}

void gmle__mf_shape_text(const size_t *shape, size_t ndim, char *buf,
                         size_t cap) {
  size_t j = (size_t)snprintf(buf, cap, "(");
  for (size_t k = 0; k < ndim && j < cap; k++)
    j += (size_t)snprintf(buf + j, cap - j, "%s%zu", k ? ", " : "", shape[k]);
  if (j < cap)
    snprintf(buf + j, cap - j, "%s)", ndim == 1 ? "," : "");
}

static int shape_is(const member *mb, size_t ndim, size_t a, size_t b,
                    size_t c) {
  const size_t want[3] = {a, b, c};
  return gmle__mf_shape_is(mb, ndim, want);
}

gmle_status gmle__mf_wrong_shape(load_state *L, const member *mb,
                                 const char *want) {
  char got[256];
  gmle__mf_shape_text(mb->h.shape, mb->h.ndim, got, sizeof got);
  return gmle__error(L->ctx, GMLE_E_BAD_FORMAT,
                     "%s: shape %s does not match the model: expected %s",
                     mb->label, got, want);
}

gmle_status gmle__mf_need_numeric(load_state *L, const member *mb) {
  if (gmle__npy_is_numeric(&mb->h) && mb->h.kind != 'b')
    return GMLE_OK;
  return gmle__error(L->ctx, GMLE_E_BAD_FORMAT,
                     "%s: dtype '%s' is not a number array", mb->label,
                     mb->h.descr);
}

gmle_status gmle__mf_as_f64(load_state *L, const member *mb, const double **out,
                            double **owned) {
  *owned = NULL;
  GMLE_TRY(gmle__mf_need_numeric(L, mb));
  const gmle__npy_header *h = &mb->h;
  if (h->kind == 'f' && h->itemsize == 8 &&
      h->big_endian == gmle__host_big_endian() &&
      (!h->fortran_order || h->ndim < 2) &&
      ((uintptr_t)mb->data % sizeof(double)) == 0) {
    *out = (const double *)(const void *)mb->data;
    return GMLE_OK;
  }
  double *d = gmle__malloc(h->n_elements * sizeof(double));
  if (!d)
    return gmle__error(L->ctx, GMLE_E_OUT_OF_MEMORY, "%s: out of memory",
                       mb->label);
  gmle__npy_array_to_f64(h, mb->data, d);
  *owned = d;
  *out = d;
  return GMLE_OK;
}

gmle_status gmle__mf_scalar_text(load_state *L, const member *mb, char *out,
                                 size_t cap) {
  const gmle__npy_header *h = &mb->h;
  if ((h->kind != 'U' && h->kind != 'S') || h->n_elements != 1)
    return gmle__error(L->ctx, GMLE_E_BAD_FORMAT,
                       "%s: expected a string scalar, found dtype '%s' with "
                       "%zu elements",
                       mb->label, h->descr, h->n_elements);
  size_t step = h->kind == 'U' ? 4 : 1, n = h->itemsize / step, len = 0;
  for (size_t k = 0; k < n; k++) {
    const unsigned char *p = mb->data + k * step;
    uint32_t cp = step == 1 ? p[0]
                  : h->big_endian
                      ? ((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
                         (uint32_t)p[2] << 8 | p[3])
                      : gmle__ld_le32(p);
    if (cp == 0)
      break;
    if (cp < 0x20 || cp > 0x7e || len + 1 >= cap) {
      out[0] = '\0';
      return GMLE_OK; /* not one of the names: the caller reports it */
    }
    out[len++] = (char)cp;
  }
  out[len] = '\0';
  return GMLE_OK;
}

/* Class names from a unicode or bytes array of C strings. */
static gmle_status names_from_strings(load_state *L, const member *mb, size_t C,
                                      char ***out) {
  const gmle__npy_header *h = &mb->h;
  size_t step = h->kind == 'U' ? 4 : 1, w = h->itemsize / step;
  /* Each code point becomes at most 4 bytes; itemsize*C is bounded by the
   * member's size, which was checked against the file. */
  size_t cap = w * 4 + 1;
  char **names = gmle__calloc(C, sizeof *names);
  if (!names)
    return gmle__error(L->ctx, GMLE_E_OUT_OF_MEMORY, "%s: out of memory",
                       mb->label);
  *out = names;
  for (size_t c = 0; c < C; c++) {
    names[c] = gmle__malloc(cap);
    if (!names[c])
      return gmle__error(L->ctx, GMLE_E_OUT_OF_MEMORY, "%s: out of memory",
                         mb->label);
    const unsigned char *e = mb->data + c * h->itemsize;
    size_t end = w;
    while (end > 0) { /* trailing NULs are padding */
      const unsigned char *p = e + (end - 1) * step;
      int zero = step == 1 ? p[0] == 0 : (p[0] | p[1] | p[2] | p[3]) == 0;
      if (!zero)
        break;
      end--;
    }
    size_t len = 0;
    for (size_t k = 0; k < end; k++) {
      const unsigned char *p = e + k * step;
      uint32_t cp = step == 1 ? p[0]
                    : h->big_endian
                        ? ((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
                           (uint32_t)p[2] << 8 | p[3])
                        : gmle__ld_le32(p);
      if (cp == 0 || cp > 0x10ffff)
        return gmle__error(L->ctx, GMLE_E_BAD_FORMAT,
                           "%s: byte %zu: class %zu's name holds code point "
                           "0x%lx, which a C string cannot carry",
                           mb->label,
                           h->header_len + c * h->itemsize + k * step, c,
                           (unsigned long)cp);
      if (step == 1) {
        names[c][len++] = (char)cp;
      } else {
        len += utf8_put(cp, names[c] + len);
      }
    }
    names[c][len] = '\0';
  }
  return GMLE_OK;
}

static void names_free(char **names, size_t C) {
  if (!names)
    return;
  for (size_t c = 0; c < C; c++)
    gmle__free(names[c]);
  gmle__free(names);
}

/* Class labels from an integer array: none when they are 0..C-1. */
static gmle_status names_from_ints(load_state *L, const member *mb, size_t C,
                                   char ***out) {
  int64_t *v = gmle__malloc(C * sizeof *v);
  if (!v)
    return gmle__error(L->ctx, GMLE_E_OUT_OF_MEMORY, "%s: out of memory",
                       mb->label);
  size_t bad_at = gmle__npy_array_to_i64(&mb->h, mb->data, v);
  if (bad_at != C) {
    gmle__free(v);
    return gmle__error(L->ctx, GMLE_E_BAD_FORMAT,
                       "%s: class %zu is not an integer label", mb->label,
                       bad_at);
  }
  int identity = 1;
  for (size_t c = 0; c < C; c++)
    identity &= v[c] == (int64_t)c;
  gmle_status s = GMLE_OK;
  if (!identity) {
    char **names = gmle__calloc(C, sizeof *names);
    s = names ? GMLE_OK
              : gmle__error(L->ctx, GMLE_E_OUT_OF_MEMORY, "%s: out of memory",
                            mb->label);
    for (size_t c = 0; s == GMLE_OK && c < C; c++) {
      names[c] = gmle__malloc(24);
      if (!names[c])
        s = gmle__error(L->ctx, GMLE_E_OUT_OF_MEMORY, "%s: out of memory",
                        mb->label);
      else
        snprintf(names[c], 24, "%lld", (long long)v[c]);
    }
    *out = names;
  }
  gmle__free(v);
  return s;
}

/* The optional train_* and report_* members: present, shaped and typed
 * right (values are checked by restore_extras once the model exists). */
static gmle_status load_extras(load_state *L, size_t C) {
  int have = 0;
  for (int k = 0; k < 3; k++) {
    member *mb = &L->train[k];
    GMLE_TRY(gmle__mf_load_member(L, mb, train_members[k], 0));
    if (!mb->buf)
      continue;
    have++;
    GMLE_TRY(gmle__mf_need_numeric(L, mb));
    if (mb->h.ndim != 0)
      return gmle__mf_wrong_shape(L, mb, "() (a scalar)");
  }
  if (have != 0 && have != 3) {
    int k = 0;
    while (L->train[k].buf)
      k++;
    return gmle__error(L->ctx, GMLE_E_BAD_FORMAT,
                       "%s: no member '%s.npy', although the archive has "
                       "other train_* members (train_loglik, "
                       "train_loglik_joint and train_n go together)",
                       L->path, train_members[k]);
  }
  char want[64];
  snprintf(want, sizeof want, "(%zu,), one per class", C);
  for (int f = 0; f < REP_COUNT; f++) {
    member *mb = &L->rep[f];
    GMLE_TRY(gmle__mf_load_member(L, mb, report_members[f], 0));
    if (!mb->buf)
      continue;
    if (!shape_is(mb, 1, C, 0, 0))
      return gmle__mf_wrong_shape(L, mb, want);
    const char kind = mb->h.kind;
    if (f == REP_N_FLOORED || f == REP_EMPTY) {
      if (!gmle__npy_is_numeric(&mb->h) || kind == 'f' ||
          (kind == 'b' && f != REP_EMPTY))
        return gmle__error(L->ctx, GMLE_E_BAD_FORMAT,
                           "%s: dtype '%s' is not an integer%s array",
                           mb->label, mb->h.descr,
                           f == REP_EMPTY ? " or boolean" : "");
    } else {
      GMLE_TRY(gmle__mf_need_numeric(L, mb));
    }
  }
  return GMLE_OK;
}

/* A train_* (c == SIZE_MAX) or report_* value v that breaks `rule`. */
static gmle_status bad_extra(load_state *L, const member *mb, size_t c,
                             double v, const char *rule) {
  if (c == SIZE_MAX)
    return gmle__error(L->ctx, GMLE_E_INVALID_MODEL,
                       "%s: byte %zu: the value is %g; it must be %s",
                       mb->label, mb->h.header_len, v, rule);
  return gmle__error(L->ctx, GMLE_E_INVALID_MODEL,
                     "%s: byte %zu: class %zu: the value is %g; it must be %s",
                     mb->label, mb->h.header_len + c * mb->h.itemsize, c, v,
                     rule);
}

/* Copy the validated train_* and report_* values into m. */
static gmle_status restore_extras(load_state *L, gmle_model *m) {
  const size_t C = m->n_classes, D = m->dim;
  if (L->train[0].buf) {
    double v[3];
    for (int k = 0; k < 3; k++)
      gmle__npy_array_to_f64(&L->train[k].h, L->train[k].data, &v[k]);
    if (!isfinite(v[0]))
      return bad_extra(L, &L->train[0], SIZE_MAX, v[0], "finite");
    int zero_prior = 0;
    for (size_t c = 0; c < C; c++)
      zero_prior |= m->priors[c] == 0;
    if (isnan(v[1]) || v[1] == INFINITY || (v[1] == -INFINITY && !zero_prior))
      return bad_extra(L, &L->train[1], SIZE_MAX, v[1],
                       "finite (or -inf when a prior is 0)");
    if (!isfinite(v[2]) || v[2] < 0)
      return bad_extra(L, &L->train[2], SIZE_MAX, v[2], "finite and >= 0");
    m->has_train = 1;
    m->train_loglik = v[0];
    m->train_loglik_joint = v[1];
    m->train_n = v[2];
  }
  void *tmp = gmle__malloc(C * 8);
  if (!tmp)
    return gmle__error(L->ctx, GMLE_E_OUT_OF_MEMORY, "%s: out of memory",
                       L->path);
  double *d = tmp;
  int64_t *iv = tmp;
  gmle_status s = GMLE_OK;
  for (int f = 0; f < REP_COUNT && s == GMLE_OK; f++) {
    const member *mb = &L->rep[f];
    if (!mb->buf)
      continue;
    if (f == REP_N_FLOORED || f == REP_EMPTY) {
      const size_t bad = gmle__npy_array_to_i64(&mb->h, mb->data, iv);
      const int64_t hi = f == REP_EMPTY ? 1 : (int64_t)D;
      for (size_t c = 0; c < C && s == GMLE_OK; c++) {
        if (c == bad || iv[c] < 0 || iv[c] > hi) {
          char rule[64];
          snprintf(rule, sizeof rule, "an integer in 0..%lld", (long long)hi);
          s = gmle__error(L->ctx, GMLE_E_INVALID_MODEL,
                          "%s: byte %zu: class %zu: the value is not %s",
                          mb->label, mb->h.header_len + c * mb->h.itemsize, c,
                          rule);
        } else if (f == REP_EMPTY) {
          m->reports[c].empty = (int)iv[c];
        } else {
          m->reports[c].n_floored = (size_t)iv[c];
        }
      }
      continue;
    }
    gmle__npy_array_to_f64(&mb->h, mb->data, d);
    for (size_t c = 0; c < C && s == GMLE_OK; c++) {
      const double v = d[c];
      gmle_class_report *r = &m->reports[c];
      switch ((enum report_field)f) {
      case REP_MIN_EIG:
      case REP_MAX_EIG:
        if (!isnan(v) && !(isfinite(v) && v >= 0))
          s = bad_extra(L, mb, c, v, "finite and >= 0 (or NaN: not computed)");
        else if (f == REP_MIN_EIG)
          r->min_eigenvalue = v;
        else
          r->max_eigenvalue = v;
        break;
      case REP_CONDITION:
        if (!isnan(v) && !(v >= 0))
          s = bad_extra(L, mb, c, v, ">= 0 (or NaN: not computed)");
        else
          r->condition = v;
        break;
      case REP_SHRINKAGE:
        if (!(v >= 0 && v <= 1))
          s = bad_extra(L, mb, c, v, "in [0, 1]");
        else
          r->shrinkage = v;
        break;
      default:
        break;
      }
    }
  }
  gmle__free(tmp);
  for (size_t c = 0; s == GMLE_OK && c < C; c++) {
    const gmle_class_report *r = &m->reports[c];
    if (r->min_eigenvalue > r->max_eigenvalue) {
      const member *mb =
          L->rep[REP_MIN_EIG].buf ? &L->rep[REP_MIN_EIG] : &L->rep[REP_MAX_EIG];
      s = gmle__error(L->ctx, GMLE_E_INVALID_MODEL,
                      "%s: byte %zu: class %zu: the smallest eigenvalue %g "
                      "exceeds the largest %g",
                      mb->label, mb->h.header_len + c * mb->h.itemsize, c,
                      r->min_eigenvalue, r->max_eigenvalue);
    }
  }
  return s;
}

/* Open the archive and check every member's CRC, including those gmle
 * does not use. */
static gmle_status open_archive(load_state *L) {
  GMLE_TRY(
      L->mem ? gmle__zip_open_mem(L->ctx, L->path, L->mem, L->mem_size, &L->zr)
             : gmle__zip_open_file(L->ctx, L->path, &L->zr));
  for (size_t i = 0; i < L->zr.n; i++)
    GMLE_TRY(gmle__zip_check_crc(&L->zr, &L->zr.e[i]));
  return GMLE_OK;
}

/* format_version, read first: a newer file may differ in anything else.
 * Mixtures may lack it (an init model written by numpy). */
static gmle_status check_version(load_state *L) {
  GMLE_TRY(gmle__mf_load_member(L, &L->fv, "format_version", !L->mixture));
  if (!L->fv.buf)
    return GMLE_OK;
  int64_t v = 0;
  if (!(L->fv.h.kind == 'i' || L->fv.h.kind == 'u') ||
      L->fv.h.n_elements != 1 ||
      gmle__npy_to_i64(&L->fv.h, L->fv.data, 1, &v) != 1)
    return gmle__error(L->ctx, GMLE_E_BAD_FORMAT,
                       "%s: expected one integer, found dtype '%s' with "
                       "%zu elements",
                       L->fv.label, L->fv.h.descr, L->fv.h.n_elements);
  if (v > GMLE__MF_VERSION)
    return gmle__error(L->ctx, GMLE_E_UNSUPPORTED_VERSION,
                       "%s: format_version %lld is newer than this gmle "
                       "reads (%d); upgrade gmle",
                       L->fv.label, (long long)v, GMLE__MF_VERSION);
  if (v < 1)
    return gmle__error(L->ctx, GMLE_E_BAD_FORMAT,
                       "%s: format_version %lld is not valid", L->fv.label,
                       (long long)v);
  return GMLE_OK;
}

gmle_status gmle__mf_load_cov_type(load_state *L, gmle_cov_type *cov) {
  GMLE_TRY(gmle__mf_load_member(L, &L->ct, "covariance_type", 1));
  char ctname[16];
  GMLE_TRY(gmle__mf_scalar_text(L, &L->ct, ctname, sizeof ctname));
  if (gmle_cov_parse(ctname, cov) != GMLE_OK)
    return gmle__error(L->ctx, GMLE_E_BAD_FORMAT,
                       "%s: covariance_type '%s' is not one of 'full', "
                       "'diag', 'spherical', 'tied'",
                       L->ct.label, ctname);
  return GMLE_OK;
}

/* covariances: shaped as scikit-learn's GaussianMixture for `cov`. */
static gmle_status load_covariances(load_state *L, gmle_cov_type cov, size_t C,
                                    size_t D) {
  GMLE_TRY(gmle__mf_load_member(L, &L->covs, "covariances", 1));
  char want[128];
  int ok = 0;
  switch (cov) {
  case GMLE_COV_FULL:
    ok = shape_is(&L->covs, 3, C, D, D);
    snprintf(want, sizeof want, "(%zu, %zu, %zu) for 'full'", C, D, D);
    break;
  case GMLE_COV_DIAG:
    ok = shape_is(&L->covs, 2, C, D, 0);
    snprintf(want, sizeof want, "(%zu, %zu) for 'diag'", C, D);
    break;
  case GMLE_COV_SPHERICAL:
    ok = shape_is(&L->covs, 1, C, 0, 0);
    snprintf(want, sizeof want, "(%zu,) for 'spherical'", C);
    break;
  case GMLE_COV_TIED:
    ok = shape_is(&L->covs, 2, D, D, 0);
    snprintf(want, sizeof want, "(%zu, %zu) for 'tied'", D, D);
    break;
  }
  return ok ? GMLE_OK : gmle__mf_wrong_shape(L, &L->covs, want);
}

/* A per-class member (C,): required or optional. */
static gmle_status load_per_class(load_state *L, member *mb, const char *name,
                                  int required, size_t C) {
  char want[64];
  snprintf(want, sizeof want, "(%zu,), one per class", C);
  GMLE_TRY(gmle__mf_load_member(L, mb, name, required));
  if (mb->buf && !shape_is(mb, 1, C, 0, 0))
    return gmle__mf_wrong_shape(L, mb, want);
  return GMLE_OK;
}

gmle_status gmle__mf_load_classes(load_state *L, size_t C,
                                  int priors_required) {
  GMLE_TRY(load_per_class(L, &L->priors, "priors", priors_required, C));
  GMLE_TRY(load_per_class(L, &L->counts, "counts", 0, C));
  GMLE_TRY(load_per_class(L, &L->rows, "rows", 0, C));
  GMLE_TRY(load_per_class(L, &L->classes, "classes", 0, C));
  return load_extras(L, C);
}

/* Every member, with its shape checked; *C and *D from means. */
static gmle_status load_members(load_state *L, gmle_cov_type cov, size_t *C,
                                size_t *D) {
  GMLE_TRY(gmle__mf_load_member(L, &L->means, "means", 1));
  GMLE_TRY(gmle__mf_need_numeric(L, &L->means));
  if (L->means.h.ndim != 2 || L->means.h.shape[0] == 0 ||
      L->means.h.shape[1] == 0)
    return gmle__mf_wrong_shape(L, &L->means,
                                "(n_classes, n_features), both >= 1");
  *C = L->means.h.shape[0];
  *D = L->means.h.shape[1];
  GMLE_TRY(load_covariances(L, cov, *C, *D));
  return gmle__mf_load_classes(L, *C, 1);
}

/* rows: non-negative integers (uint64 read whole); *out NULL when the
 * member is absent. */
static gmle_status read_rows(load_state *L, size_t C, uint64_t **out) {
  *out = NULL;
  if (!L->rows.buf)
    return GMLE_OK;
  const gmle__npy_header *h = &L->rows.h;
  if (h->kind != 'i' && h->kind != 'u')
    return gmle__error(L->ctx, GMLE_E_BAD_FORMAT,
                       "%s: dtype '%s' is not an integer array", L->rows.label,
                       h->descr);
  uint64_t *rows = gmle__malloc(C * sizeof *rows);
  if (!rows)
    return gmle__error(L->ctx, GMLE_E_OUT_OF_MEMORY, "%s: out of memory",
                       L->rows.label);
  for (size_t c = 0; c < C; c++) {
    const unsigned char *p = L->rows.data + c * h->itemsize;
    int64_t v = 0;
    if (h->kind == 'u' && h->itemsize == 8) {
      rows[c] = gmle__ld_uint(p, 8, h->big_endian);
    } else if (gmle__npy_to_i64(h, p, 1, &v) == 1 && v >= 0) {
      rows[c] = (uint64_t)v;
    } else {
      gmle__free(rows);
      return gmle__error(L->ctx, GMLE_E_INVALID_MODEL,
                         "%s: byte %zu: class %zu: row count is negative",
                         L->rows.label, h->header_len + c * h->itemsize, c);
    }
  }
  *out = rows;
  return GMLE_OK;
}

/* classes: names from strings or integers; *names NULL when absent. */
static gmle_status read_names(load_state *L, size_t C, char ***names) {
  *names = NULL;
  if (!L->classes.buf)
    return GMLE_OK;
  const gmle__npy_header *h = &L->classes.h;
  if (h->kind == 'U' || h->kind == 'S')
    return names_from_strings(L, &L->classes, C, names);
  if (h->kind == 'i' || h->kind == 'u')
    return names_from_ints(L, &L->classes, C, names);
  return gmle__error(L->ctx, GMLE_E_BAD_FORMAT,
                     "%s: dtype '%s' is neither strings nor integers",
                     L->classes.label, h->descr);
}

gmle_status gmle__mf_path_error(load_state *L, gmle_status s) {
  char why[GMLE__ERR_LEN];
  snprintf(why, sizeof why, "%s", gmle_context_error(L->ctx));
  return gmle__error(L->ctx, s, "%s: %s", L->path, why);
}

/* The model from the parameter members, checked by gmle_model_create
 * (whose message is prefixed with the file's path). */
static gmle_status create_plain(load_state *L, const void *arg,
                                gmle_model **m) {
  const gmle_cov_type cov = *(const gmle_cov_type *)arg;
  const size_t C = L->means.h.shape[0], D = L->means.h.shape[1];
  const double *pm = NULL, *pc = NULL, *pp = NULL, *pn = NULL;
  double *om = NULL, *oc = NULL, *op = NULL, *on = NULL;
  gmle_status s = gmle__mf_as_f64(L, &L->means, &pm, &om);
  if (s == GMLE_OK)
    s = gmle__mf_as_f64(L, &L->covs, &pc, &oc);
  if (s == GMLE_OK)
    s = gmle__mf_as_f64(L, &L->priors, &pp, &op);
  if (s == GMLE_OK && L->counts.buf)
    s = gmle__mf_as_f64(L, &L->counts, &pn, &on);
  if (s == GMLE_OK) {
    s = gmle_model_create(L->ctx, D, C, cov, pm, pc, pp, pn, m);
    if (s != GMLE_OK)
      s = gmle__mf_path_error(L, s);
  }
  gmle__free(om);
  gmle__free(oc);
  gmle__free(op);
  gmle__free(on);
  return s;
}

/* What the file holds beside the parameters: names, row counts, the
 * training log-likelihood and the fit report. */
static gmle_status restore_metadata(load_state *L, gmle_model *m, char **names,
                                    const uint64_t *rows) {
  if (names) {
    GMLE_TRY(gmle_model_set_class_names(m, (const char *const *)names));
    gmle__clear_error(L->ctx);
  }
  for (size_t c = 0; rows && c < m->n_classes; c++) {
    m->rows[c] = rows[c];
    m->reports[c].rows = rows[c];
  }
  return restore_extras(L, m);
}

gmle_status gmle__mf_build(load_state *L, size_t C, gmle__mf_create_fn create,
                           const void *arg, gmle_model **out) {
  uint64_t *rows = NULL;
  GMLE_TRY(read_rows(L, C, &rows));
  char **names = NULL;
  gmle_model *m = NULL;
  gmle_status s = read_names(L, C, &names);
  if (s == GMLE_OK)
    s = create(L, arg, &m);
  if (s == GMLE_OK)
    s = restore_metadata(L, m, names, rows);
  gmle__free(rows);
  names_free(names, C);
  if (s != GMLE_OK) {
    gmle_model_free(m);
    return s;
  }
  *out = m;
  return GMLE_OK;
}

static gmle_status load_model(load_state *L, gmle_model **out) {
  gmle_cov_type cov = GMLE_COV_FULL;
  size_t C = 0, D = 0;
  GMLE_TRY(open_archive(L));
  L->mixture = gmle__zip_find(&L->zr, "weights.npy") != NULL;
  GMLE_TRY(check_version(L));
  if (L->mixture)
    return gmle__mf_load_mixture(L, out);
  GMLE_TRY(gmle__mf_load_cov_type(L, &cov));
  GMLE_TRY(load_members(L, cov, &C, &D));
  return gmle__mf_build(L, C, create_plain, &cov, out);
}

/* gmle_model_load from a file (mem NULL) or from mem_size bytes at mem. */
static gmle_status load_common(gmle_context *ctx, const char *path,
                               const void *mem, size_t mem_size,
                               gmle_model **out) {
  if (!ctx)
    return GMLE_E_INVALID_ARG;
  gmle__clear_error(ctx);
  GMLE_RETURN_IF(!out, ctx, GMLE_E_INVALID_ARG, "gmle_model_load: out is NULL");
  *out = NULL;
  GMLE_RETURN_IF(!path || !*path, ctx, GMLE_E_INVALID_ARG,
                 "gmle_model_load: empty or NULL path");
  load_state L;
  memset(&L, 0, sizeof L);
  L.ctx = ctx;
  L.path = path;
  L.mem = mem;
  L.mem_size = mem_size;
  L.zr.fd = -1;
  gmle_status s = load_model(&L, out);
  load_free(&L);
  return s;
}

gmle_status gmle_model_load(gmle_context *ctx, const char *path,
                            gmle_model **out) {
  return load_common(ctx, path, NULL, 0, out);
}

gmle_status gmle__model_load_mem(gmle_context *ctx, const char *name,
                                 const void *data, size_t size,
                                 gmle_model **out) {
  static const unsigned char nothing[1];
  if (!data && size)
    return gmle__error(ctx, GMLE_E_INVALID_ARG, "model_load_mem: NULL data");
  return load_common(ctx, name, data ? data : nothing, size, out);
}
