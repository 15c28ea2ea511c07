/* classes.c -- class sets: distinct labels, sorted numerically when every
 * label is an integer (of any size), else lexicographically; --classes
 * keeps the order it gives. */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_parse_int_label(const char *s, long long *v) {
  const char *p = s;
  if (*p == '+' || *p == '-')
    p++;
  if (*p < '0' || *p > '9')
    return 0;
  for (const char *q = p; *q; q++)
    if (*q < '0' || *q > '9')
      return 0;
  errno = 0;
  char *end = NULL;
  long long x = strtoll(s, &end, 10);
  if (errno == ERANGE || *end)
    return 0;
  *v = x;
  return 1;
}

/* Open-addressing hash set of strings. */
struct cli_label_set {
  size_t cap, n;
  char **slot;
};

static uint64_t hash_str(const char *s) {
  uint64_t h = 1469598103934665603ull; /* FNV-1a */
  for (; *s; s++) {
    h ^= (unsigned char)*s;
    h *= 1099511628211ull;
  }
  return h;
}

cli_label_set *cli_label_set_new(void) {
  cli_label_set *s = cli_xcalloc(1, sizeof *s);
  s->cap = 64;
  s->slot = cli_xcalloc(s->cap, sizeof *s->slot);
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

void cli_label_set_add(cli_label_set *s, const char *label) {
  long long v;
  char buf[32];
  if (cli_parse_int_label(label, &v)) { /* canonical form: "007" is 7 */
    snprintf(buf, sizeof buf, "%lld", v);
    label = buf;
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

size_t cli_label_set_size(const cli_label_set *s) { return s->n; }

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
}

void cli_label_set_finish(cli_label_set *s, cli_classes *out) {
  char **names = cli_xmalloc((s->n ? s->n : 1) * sizeof *names);
  size_t k = 0;
  for (size_t i = 0; i < s->cap; i++)
    if (s->slot[i])
      names[k++] = s->slot[i];
  free(s->slot);
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
  if (c->numeric) {
    /* values are sorted for sets we built; models keep their own order,
     * which is sorted too when written by gmle, but search linearly when
     * not. */
    size_t lo = 0, hi = c->n;
    while (lo < hi) {
      size_t mid = lo + (hi - lo) / 2;
      if (c->values[mid] < v)
        lo = mid + 1;
      else
        hi = mid;
    }
    if (lo < c->n && c->values[lo] == v)
      return (long)lo;
    for (size_t i = 0; i < c->n; i++)
      if (c->values[i] == v)
        return (long)i;
    return -1;
  }
  char buf[32];
  snprintf(buf, sizeof buf, "%lld", v);
  return cli_classes_find(c, buf);
}

long cli_classes_find(const cli_classes *c, const char *label) {
  long long v;
  if (c->numeric) {
    if (!cli_parse_int_label(label, &v))
      return -1;
    return cli_classes_find_int(c, v);
  }
  char buf[32];
  if (cli_parse_int_label(label, &v)) { /* stored canonically ("007": "7") */
    snprintf(buf, sizeof buf, "%lld", v);
    label = buf;
  }
  size_t lo = 0, hi = c->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (strcmp(c->names[mid], label) < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo < c->n && strcmp(c->names[lo], label) == 0)
    return (long)lo;
  for (size_t i = 0; i < c->n; i++) /* unsorted (model) order */
    if (strcmp(c->names[i], label) == 0)
      return (long)i;
  return -1;
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
  static char ring[4][216];
  static unsigned next;
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
