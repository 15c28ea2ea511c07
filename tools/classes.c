/* classes.c -- class sets: distinct labels, sorted numerically when every
 * label is an integer (of any size), else lexicographically; --classes
 * keeps the order it gives. */
#include "cli.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An optional sign and decimal digits within int64, as strtoll reads them
 * (no blanks, no overflow), without its locale and errno: this runs once
 * per row of text labels. */
int cli_parse_int_label(const char *s, long long *v) {
  const char *p = s;
  const int neg = *p == '-';
  if (*p == '+' || *p == '-')
    p++;
  if (*p < '0' || *p > '9')
    return 0;
  const unsigned long long limit =
      neg ? (unsigned long long)LLONG_MAX + 1 : (unsigned long long)LLONG_MAX;
  unsigned long long acc = 0;
  for (; *p; p++) {
    if (*p < '0' || *p > '9')
      return 0;
    const unsigned digit = (unsigned)(*p - '0');
    if (acc > (limit - digit) / 10)
      return 0;
    acc = acc * 10 + digit;
  }
  *v = neg ? (acc == limit ? LLONG_MIN : -(long long)acc) : (long long)acc;
  return 1;
}

static uint64_t hash_str(const char *s) {
  uint64_t h = 1469598103934665603ull; /* FNV-1a */
  for (; *s; s++) {
    h ^= (unsigned char)*s;
    h *= 1099511628211ull;
  }
  return h;
}

static size_t hash_int(long long v) { /* Fibonacci hashing */
  return (size_t)(((uint64_t)v * 0x9E3779B97F4A7C15ull) >> 32);
}

/* The smallest power of two >= 2 n, at least 16: open addressing at most
 * half full. */
static size_t table_cap(size_t n) {
  size_t cap = 16;
  while (cap < 2 * n)
    cap *= 2;
  return cap;
}

/* Open-addressing hash sets: integer labels by value (canonical text made
 * only once, at the end), other labels by their text. */
struct cli_label_set {
  size_t cap, n;
  char **slot;
  size_t icap, in;
  long long *ikey;
  unsigned char *iused;
  uint64_t small[1024]; /* bits of the integers 0..65535 already added */
};

cli_label_set *cli_label_set_new(void) {
  cli_label_set *s = cli_xcalloc(1, sizeof *s);
  s->cap = s->icap = 16;
  s->slot = cli_xcalloc(s->cap, sizeof *s->slot);
  s->ikey = cli_xcalloc(s->icap, sizeof *s->ikey);
  s->iused = cli_xcalloc(s->icap, 1);
  return s;
}

static void set_insert(cli_label_set *s, char *owned) {
  size_t i = (size_t)hash_str(owned) & (s->cap - 1);
  while (s->slot[i])
    i = (i + 1) & (s->cap - 1);
  s->slot[i] = owned;
  s->n++;
}

static void set_grow(cli_label_set *s) {
  char **old = s->slot;
  size_t oldcap = s->cap;
  s->cap *= 2;
  s->n = 0;
  s->slot = cli_xcalloc(s->cap, sizeof *s->slot);
  for (size_t i = 0; i < oldcap; i++)
    if (old[i])
      set_insert(s, old[i]);
  free(old);
}

/* Insert v into the integer hash (grown first when half full). */
static void set_insert_int(cli_label_set *s, long long v) {
  if (2 * (s->in + 1) > s->icap) {
    long long *ok = s->ikey;
    unsigned char *ou = s->iused;
    const size_t oc = s->icap;
    s->icap *= 2;
    s->in = 0;
    s->ikey = cli_xcalloc(s->icap, sizeof *s->ikey);
    s->iused = cli_xcalloc(s->icap, 1);
    for (size_t i = 0; i < oc; i++)
      if (ou[i])
        set_insert_int(s, ok[i]);
    free(ok);
    free(ou);
  }
  size_t i = hash_int(v) & (s->icap - 1);
  while (s->iused[i]) {
    if (s->ikey[i] == v)
      return;
    i = (i + 1) & (s->icap - 1);
  }
  s->iused[i] = 1;
  s->ikey[i] = v;
  s->in++;
}

void cli_label_set_add_int(cli_label_set *s, long long v) {
  /* Most labels are small integers seen before: one bit, no hash. */
  if (v >= 0 && v < 65536) {
    const uint64_t bit = (uint64_t)1 << (v & 63);
    if (s->small[v >> 6] & bit)
      return;
    s->small[v >> 6] |= bit;
  }
  set_insert_int(s, v);
}

void cli_label_set_add(cli_label_set *s, const char *label) {
  long long v;
  if (cli_parse_int_label(label, &v)) { /* "007" is 7 */
    cli_label_set_add_int(s, v);
    return;
  }
  size_t i = (size_t)hash_str(label) & (s->cap - 1);
  while (s->slot[i]) {
    if (strcmp(s->slot[i], label) == 0)
      return;
    i = (i + 1) & (s->cap - 1);
  }
  if (2 * (s->n + 1) > s->cap) {
    set_grow(s);
    cli_label_set_add(s, label);
    return;
  }
  s->slot[i] = cli_xstrdup(label);
  s->n++;
}

size_t cli_label_set_size(const cli_label_set *s) { return s->n + s->in; }

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_num(const void *a, const void *b) {
  long long x = 0, y = 0;
  cli_parse_int_label(*(char *const *)a, &x);
  cli_parse_int_label(*(char *const *)b, &y);
  return (x > y) - (x < y);
}

/* 1 when s is an optional sign and decimal digits, whatever its size. */
static int integer_shaped(const char *s) {
  s += *s == '+' || *s == '-';
  if (!*s)
    return 0;
  for (; *s; s++)
    if (*s < '0' || *s > '9')
      return 0;
  return 1;
}

/* Integers of any size in numeric order (labels beyond int64 are still
 * integers: "10000000000000000000000" sorts after "9", not before). */
static int cmp_big(const void *a, const void *b) {
  const char *x = *(char *const *)a, *y = *(char *const *)b;
  const int nx = *x == '-', ny = *y == '-';
  if (nx != ny)
    return nx ? -1 : 1;
  const char *dx = x + (*x == '+' || *x == '-');
  const char *dy = y + (*y == '+' || *y == '-');
  while (*dx == '0' && dx[1])
    dx++;
  while (*dy == '0' && dy[1])
    dy++;
  const size_t lx = strlen(dx), ly = strlen(dy);
  int r = lx != ly ? (lx < ly ? -1 : 1) : strcmp(dx, dy);
  if (nx)
    r = -r;
  return r ? r : strcmp(x, y);
}

/* ---- labels to class indices ------------------------------------------- */

/* Built once per class set, so that each row's label costs a table look-up:
 * integer labels through a dense table when the classes' integers span a
 * small range (else an open-addressing hash of the values), other labels
 * through a hash of the names. Integer keys: every value of a numeric set;
 * of another set, the names that are an integer's canonical text (a label
 * "007" is the class "7" in both). The first of equal keys wins. */
struct cli_label_map {
  long long lo;
  size_t span;    /* dense: keys lo .. lo + span - 1 */
  int32_t *dense; /* [span], -1: not a class */
  size_t icap;    /* hash (when not dense) */
  long long *ikey;
  int32_t *ival; /* [icap], -1: empty */
  size_t scap;
  int32_t *sidx; /* [scap] index of a non-integer name, -1: empty */
  char **names;
};

static long map_int(const cli_label_map *m, long long v) {
  if (m->dense) {
    const uint64_t k = (uint64_t)v - (uint64_t)m->lo;
    return k < m->span ? m->dense[k] : -1;
  }
  for (size_t i = hash_int(v) & (m->icap - 1);; i = (i + 1) & (m->icap - 1)) {
    if (m->ival[i] < 0)
      return -1;
    if (m->ikey[i] == v)
      return m->ival[i];
  }
}

static long map_text(const cli_label_map *m, const char *label) {
  long long v;
  if (cli_parse_int_label(label, &v))
    return map_int(m, v);
  for (size_t i = (size_t)hash_str(label) & (m->scap - 1);;
       i = (i + 1) & (m->scap - 1)) {
    if (m->sidx[i] < 0)
      return -1;
    if (strcmp(m->names[m->sidx[i]], label) == 0)
      return m->sidx[i];
  }
}

/* The integer key of class j, 0 when it has none. */
static int class_int_key(const cli_classes *c, size_t j, long long *v) {
  if (c->numeric) {
    *v = c->values[j];
    return 1;
  }
  char canon[32];
  if (!cli_parse_int_label(c->names[j], v))
    return 0;
  snprintf(canon, sizeof canon, "%lld", *v);
  return strcmp(canon, c->names[j]) == 0;
}

static void map_build_ints(cli_label_map *m, const cli_classes *c) {
  size_t n_int = 0;
  long long lo = 0, hi = 0, v;
  for (size_t j = 0; j < c->n; j++)
    if (class_int_key(c, j, &v)) {
      lo = n_int && lo < v ? lo : v;
      hi = n_int && hi > v ? hi : v;
      n_int++;
    }
  const uint64_t range = (uint64_t)hi - (uint64_t)lo;
  const uint64_t dense_max =
      8 * (uint64_t)n_int > 4096 ? 8 * (uint64_t)n_int : 4096;
  if (range < dense_max) {
    m->lo = lo;
    m->span = (size_t)range + 1;
    m->dense = cli_xmalloc(m->span * sizeof *m->dense);
    for (size_t k = 0; k < m->span; k++)
      m->dense[k] = -1;
    for (size_t j = c->n; j-- > 0;) /* backwards: the first wins */
      if (class_int_key(c, j, &v))
        m->dense[(uint64_t)v - (uint64_t)lo] = (int32_t)j;
    return;
  }
  m->icap = table_cap(n_int);
  m->ikey = cli_xcalloc(m->icap, sizeof *m->ikey);
  m->ival = cli_xmalloc(m->icap * sizeof *m->ival);
  for (size_t i = 0; i < m->icap; i++)
    m->ival[i] = -1;
  for (size_t j = 0; j < c->n; j++) {
    if (!class_int_key(c, j, &v) || map_int(m, v) >= 0)
      continue;
    size_t i = hash_int(v) & (m->icap - 1);
    while (m->ival[i] >= 0)
      i = (i + 1) & (m->icap - 1);
    m->ikey[i] = v;
    m->ival[i] = (int32_t)j;
  }
}

static void map_build(cli_classes *c) {
  cli_label_map *m = cli_xcalloc(1, sizeof *m);
  m->names = c->names;
  map_build_ints(m, c);
  m->scap = table_cap(c->n);
  m->sidx = cli_xmalloc(m->scap * sizeof *m->sidx);
  for (size_t i = 0; i < m->scap; i++)
    m->sidx[i] = -1;
  long long v;
  for (size_t j = 0; j < c->n; j++) {
    if (cli_parse_int_label(c->names[j], &v) || map_text(m, c->names[j]) >= 0)
      continue; /* integer names are found through the integer keys */
    size_t i = (size_t)hash_str(c->names[j]) & (m->scap - 1);
    while (m->sidx[i] >= 0)
      i = (i + 1) & (m->scap - 1);
    m->sidx[i] = (int32_t)j;
  }
  c->map = m;
}

static void map_free(cli_label_map *m) {
  if (!m)
    return;
  free(m->dense);
  free(m->ikey);
  free(m->ival);
  free(m->sidx);
  free(m);
}

/* Sort names and fill numeric/values; takes ownership of names. */
static void finish_names(char **names, size_t n, cli_classes *out) {
  int numeric = n > 0, shaped = n > 0;
  long long v;
  for (size_t i = 0; i < n && numeric; i++)
    numeric = cli_parse_int_label(names[i], &v);
  for (size_t i = 0; i < n && shaped && !numeric; i++)
    shaped = integer_shaped(names[i]);
  qsort(names, n, sizeof *names,
        numeric  ? cmp_num
        : shaped ? cmp_big
                 : cmp_str);
  out->n = n;
  out->names = names;
  out->numeric = numeric;
  out->values = NULL;
  if (numeric) {
    out->values = cli_xmalloc((n ? n : 1) * sizeof *out->values);
    for (size_t i = 0; i < n; i++)
      cli_parse_int_label(names[i], &out->values[i]);
  }
  map_build(out);
}

void cli_label_set_finish(cli_label_set *s, cli_classes *out) {
  const size_t n = s->n + s->in;
  char **names = cli_xmalloc((n ? n : 1) * sizeof *names);
  size_t k = 0;
  for (size_t i = 0; i < s->cap; i++)
    if (s->slot[i])
      names[k++] = s->slot[i];
  for (size_t i = 0; i < s->icap; i++)
    if (s->iused[i]) {
      char buf[32];
      snprintf(buf, sizeof buf, "%lld", s->ikey[i]);
      names[k++] = cli_xstrdup(buf);
    }
  free(s->slot);
  free(s->ikey);
  free(s->iused);
  free(s);
  finish_names(names, k, out);
}

static void from_names(char **names, size_t n, cli_classes *out);

/* The classes of `sorted` (the distinct entries of list) in the order list
 * gives them: --classes fixes the class indices, so --priors and the
 * model follow the user's order. Takes the names from sorted. */
static void in_list_order(const char *list, cli_classes *sorted,
                          cli_classes *out) {
  const size_t n = sorted->n;
  char **names = cli_xmalloc((n ? n : 1) * sizeof *names);
  const char *p = list;
  for (size_t i = 0; i < n; i++) {
    const char *e = strchr(p, ',');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    char *tok = cli_xmalloc(len + 1);
    memcpy(tok, p, len);
    tok[len] = '\0';
    long k = cli_classes_find(sorted, tok);
    free(tok);
    names[i] = sorted->names[k]; /* moved: each is taken once */
    p = e ? e + 1 : p + len;
  }
  free(sorted->names);
  free(sorted->values);
  map_free(sorted->map);
  memset(sorted, 0, sizeof *sorted);
  from_names(names, n, out);
}

int cli_classes_from_list(const char *list, cli_classes *out) {
  cli_label_set *s = cli_label_set_new();
  size_t given = 0;
  const char *p = list;
  for (;;) {
    const char *e = strchr(p, ',');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (len == 0) {
      cli_label_set_finish(s, out);
      cli_classes_free(out);
      return 0;
    }
    char *tok = cli_xmalloc(len + 1);
    memcpy(tok, p, len);
    tok[len] = '\0';
    cli_label_set_add(s, tok);
    free(tok);
    given++;
    if (!e)
      break;
    p = e + 1;
  }
  int ok = cli_label_set_size(s) == given;
  cli_classes sorted;
  cli_label_set_finish(s, &sorted);
  if (!ok) {
    cli_classes_free(&sorted);
    return 0;
  }
  in_list_order(list, &sorted, out);
  return 1;
}

/* A class set in a given (class-index) order. */
static void from_names(char **names, size_t n, cli_classes *out) {
  out->n = n;
  out->names = names;
  long long v;
  int numeric = n > 0;
  for (size_t i = 0; i < n && numeric; i++)
    numeric = cli_parse_int_label(names[i], &v);
  out->numeric = numeric;
  out->values = NULL;
  if (numeric) {
    out->values = cli_xmalloc(n * sizeof *out->values);
    for (size_t i = 0; i < n; i++)
      cli_parse_int_label(names[i], &out->values[i]);
  }
  map_build(out);
}

void cli_classes_from_model(const gmle_model *m, cli_classes *out) {
  size_t n = gmle_model_n_classes(m);
  char **names = cli_xmalloc((n ? n : 1) * sizeof *names);
  for (size_t c = 0; c < n; c++) {
    const char *nm = gmle_model_class_name(m, c);
    char buf[32];
    if (!nm) {
      snprintf(buf, sizeof buf, "%zu", c);
      nm = buf;
    }
    names[c] = cli_xstrdup(nm);
  }
  from_names(names, n, out); /* the model's order: index c is class c */
}

long cli_classes_find_int(const cli_classes *c, long long v) {
  return map_int(c->map, v);
}

long cli_classes_find(const cli_classes *c, const char *label) {
  return map_text(c->map, label);
}

int cli_classes_equal(const cli_classes *a, const cli_classes *b) {
  if (a->n != b->n)
    return 0;
  for (size_t i = 0; i < a->n; i++)
    if (strcmp(a->names[i], b->names[i]) != 0)
      return 0;
  return 1;
}

void cli_classes_free(cli_classes *c) {
  if (!c)
    return;
  for (size_t i = 0; c->names && i < c->n; i++)
    free(c->names[i]);
  free(c->names);
  free(c->values);
  map_free(c->map);
  memset(c, 0, sizeof *c);
}

int cli_classes_from_stats(const gmle_stats *st, cli_classes *out) {
  memset(out, 0, sizeof *out);
  size_t n = gmle_stats_n_classes(st);
  if (n == 0 || !gmle_stats_class_name(st, 0))
    return 0;
  char **names = cli_xmalloc(n * sizeof *names);
  for (size_t c = 0; c < n; c++) {
    const char *nm = gmle_stats_class_name(st, c);
    names[c] = cli_xstrdup(nm ? nm : "");
  }
  from_names(names, n, out);
  return 1;
}

/* Text from the data (class names, labels, utterance keys) shown on a
 * terminal: control bytes (below 0x20, and 0x7f) become \xNN so that a
 * name cannot move the cursor, clear the screen or forge a line. Returns
 * one of a few rotating buffers, so that several can appear in one printf;
 * long texts are cut (with "...") at 200 bytes. */
const char *cli_show(const char *s) {
  static _Thread_local char ring[4][216]; /* the reader thread's own */
  static _Thread_local unsigned next;
  char *out = ring[next++ % 4];
  size_t k = 0;
  if (!s)
    s = "";
  for (; *s && k < 200; s++) {
    const unsigned char ch = (unsigned char)*s;
    if (ch < 0x20 || ch == 0x7f)
      k += (size_t)snprintf(out + k, 8, "\\x%02x", ch);
    else
      out[k++] = (char)ch;
  }
  if (*s)
    memcpy(out + k, "...", 4);
  else
    out[k] = '\0';
  return out;
}
