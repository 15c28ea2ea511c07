/* common.c -- option parsing, messages, exit codes, progress (gmle CLI). */
#include "cli.h"
#include "dist.h"

#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

const char *cli_cmd = "";
int cli_quiet = 0;
int cli_csv_header = -1;

/* ---- exit codes --------------------------------------------------------- */

int cli_exit_code(gmle_status s) {
  switch (s) {
  case GMLE_OK:
    return CLI_EXIT_OK;
  case GMLE_E_INVALID_ARG: /* an option the library rejected (priors, ...) */
    return CLI_EXIT_USAGE;
  case GMLE_E_NONFINITE_INPUT:
  case GMLE_E_OVERFLOW:
  case GMLE_E_DIM_MISMATCH:
  case GMLE_E_BAD_LABEL:
  case GMLE_E_INVALID_WEIGHTS:
  case GMLE_E_ILL_DEFINED_COV:
  case GMLE_E_SINGULAR_COV:
  case GMLE_E_NONFINITE_STATS:
  case GMLE_E_EMPTY:
  case GMLE_E_TOO_LARGE:
    return CLI_EXIT_DATA;
  case GMLE_E_IO:
  case GMLE_E_BAD_FORMAT:
  case GMLE_E_BAD_ARK:
  case GMLE_E_CORRUPT:
  case GMLE_E_UNSUPPORTED_VERSION:
  case GMLE_E_INVALID_MODEL:
  case GMLE_E_UNSUPPORTED:
    return CLI_EXIT_FILE;
  case GMLE_E_OUT_OF_MEMORY:
  case GMLE_E_NO_DEVICE:
  case GMLE_E_DEVICE:
  case GMLE_E_DEVICE_OOM:
  case GMLE_E_DEVICE_LOST:
  case GMLE_E_INTERNAL:
    return CLI_EXIT_DEVICE;
  }
  return CLI_EXIT_DEVICE;
}

/* ---- messages ----------------------------------------------------------- */

/* "gmle CMD: " (gmle-mpi: "gmle-mpi CMD: rank R: ") into buf; its length,
 * at most cap. */
static size_t head(char *buf, size_t cap) {
  const int n = snprintf(buf, cap, "%s%s%s: %s", cli_prog,
                         cli_cmd[0] ? " " : "", cli_cmd, cli_dist_tag());
  return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap;
}

/* One line on stderr in one write, so that the lines of the ranks of
 * gmle-mpi do not interleave. */
static void say(const char *text) {
  char line[CLI_MESSAGE_MAX + 2];
  snprintf(line, sizeof line, "%s\n", text);
  fputs(line, stderr);
}

/* "gmle CMD: [PREFIX][WHAT: ]MSG" into buf (cut at cap). */
static void vformat(char *buf, size_t cap, const char *prefix, const char *what,
                    const char *fmt, va_list ap) {
  size_t k = head(buf, cap);
  if (k < cap)
    k += (size_t)snprintf(buf + k, cap - k, "%s", prefix ? prefix : "");
  if (k < cap && what && what[0])
    k += (size_t)snprintf(buf + k, cap - k, "%s: ", what);
  if (k < cap)
    vsnprintf(buf + k, cap - k, fmt, ap);
}

static void vmsg(const char *prefix, const char *what, const char *fmt,
                 va_list ap) {
  char text[CLI_MESSAGE_MAX];
  vformat(text, sizeof text, prefix, what, fmt, ap);
  say(text);
}

void cli_warn(const char *fmt, ...) {
  if (cli_quiet)
    return;
  va_list ap;
  va_start(ap, fmt);
  vmsg("warning: ", NULL, fmt, ap);
  va_end(ap);
}

void cli_usage_error(const char *fmt, ...) {
  /* Every rank of gmle-mpi parses the same command line: one says it. */
  if (cli_dist_rank() == 0) {
    va_list ap;
    va_start(ap, fmt);
    vmsg(NULL, NULL, fmt, ap);
    va_end(ap);
    fprintf(stderr, "Run '%s %s%s--help' for usage.\n", cli_prog, cli_cmd,
            cli_cmd[0] ? " " : "");
  }
  cli_cleanup();
  cli_exit(CLI_EXIT_USAGE);
}

/* The output being written, removed when the command fails. */
static gmle_writer *open_writer;

void cli_track_writer(gmle_writer *w) { open_writer = w; }

/* Other outputs, undone by their own function when the command fails. */
static struct {
  void (*fn)(void *);
  void *obj;
} on_fail[8];

void cli_on_fail(void (*fn)(void *), void *obj) {
  for (size_t i = 0; i < 8; i++)
    if (!on_fail[i].fn) {
      on_fail[i].fn = fn;
      on_fail[i].obj = obj;
      return;
    }
}

void cli_on_fail_cancel(void *obj) {
  for (size_t i = 0; i < 8; i++)
    if (on_fail[i].obj == obj)
      on_fail[i].fn = NULL, on_fail[i].obj = NULL;
}

void cli_cleanup(void) {
  if (open_writer) {
    gmle_writer_abort(open_writer);
    open_writer = NULL;
  }
  for (size_t i = 0; i < 8; i++)
    if (on_fail[i].fn) {
      void (*fn)(void *) = on_fail[i].fn;
      on_fail[i].fn = NULL;
      fn(on_fail[i].obj);
    }
}

/* The failures of a thread that must not end the process (the reader of
 * data.c): each goes back to its catcher instead. */
static _Thread_local cli_catch *catcher;

void cli_catch_failures(cli_catch *c) { catcher = c; }

/* End the command with `text` (one line) and `code`, or hand both to this
 * thread's catcher. */
CLI_NORETURN static void fail_with(int code, const char *text) {
  if (catcher) {
    cli_catch *c = catcher;
    catcher = NULL;
    snprintf(c->msg, sizeof c->msg, "%s", text);
    c->code = code;
    longjmp(c->env, 1);
  }
  say(text);
  cli_cleanup();
  cli_exit(code);
}

void cli_die_caught(const cli_catch *c) {
  catcher = NULL;
  fail_with(c->code, c->msg);
}

void cli_die(int code, const char *what, const char *fmt, ...) {
  char text[CLI_MESSAGE_MAX];
  va_list ap;
  va_start(ap, fmt);
  vformat(text, sizeof text, NULL, what, fmt, ap);
  va_end(ap);
  fail_with(code, text);
}

/* The row the context's last error names (its structured location), or -1
 * when it names none. */
long long cli_find_row(const gmle_context *ctx) {
  gmle_error_location loc;
  if (!ctx || gmle_context_error_location(ctx, &loc) != GMLE_OK ||
      !(loc.fields & GMLE_LOC_ROW))
    return -1;
  return (long long)loc.row;
}

void cli_fail(gmle_context *ctx, gmle_status s, const char *what,
              long long row0) {
  const char *msg = ctx ? gmle_context_error(ctx) : "";
  if (!msg || !msg[0])
    msg = gmle_status_string(s);
  /* The library may already name the file ("x.csv:9:4: ..." or
   * "x.npy: ..."): then do not say it twice. */
  size_t wl = what ? strlen(what) : 0;
  if (wl && strncmp(msg, what, wl) == 0 && msg[wl] == ':')
    wl = 0;
  char text[CLI_MESSAGE_MAX];
  size_t k = head(text, sizeof text);
  if (wl && k < sizeof text)
    k += (size_t)snprintf(text + k, sizeof text - k, "%s: ", what);
  if (k < sizeof text)
    k += (size_t)snprintf(text + k, sizeof text - k, "%s", msg);
  long long r = row0 > 0 ? cli_find_row(ctx) : -1;
  if (r >= 0 && k < sizeof text)
    snprintf(text + k, sizeof text - k, " (row %lld of the file)", row0 + r);
  fail_with(cli_exit_code(s), text);
}

static void log_cb(void *user, gmle_log_level level, const char *msg) {
  (void)user;
  if (cli_quiet || level == GMLE_LOG_DEBUG)
    return;
  char text[CLI_MESSAGE_MAX];
  const size_t k = head(text, sizeof text);
  snprintf(text + k, sizeof text - k, "%s%s",
           level == GMLE_LOG_WARNING ? "warning: " : "", msg);
  say(text);
}

gmle_context *cli_context(const cli_common *common) {
  gmle_context *ctx = NULL;
  gmle_status s = gmle_context_create(common->backend, common->device, &ctx);
  if (s != GMLE_OK) {
    const char *msg = ctx ? gmle_context_error(ctx) : "";
    char text[CLI_MESSAGE_MAX];
    const size_t k = head(text, sizeof text);
    snprintf(text + k, sizeof text - k, "backend %s: %s",
             gmle_backend_name(common->backend),
             msg && msg[0] ? msg : gmle_status_string(s));
    say(text);
    gmle_context_free(ctx);
    cli_exit(cli_exit_code(s));
  }
  cli_dist_context(&ctx, common);
  gmle_context_set_log(ctx, log_cb, NULL);
  return ctx;
}

/* ---- small helpers ------------------------------------------------------ */

void *cli_xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p)
    cli_die(CLI_EXIT_DEVICE, NULL, "out of memory (%zu bytes)", n);
  return p;
}

void *cli_xcalloc(size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size ? size : 1);
  if (!p)
    cli_die(CLI_EXIT_DEVICE, NULL, "out of memory (%zu x %zu bytes)", n, size);
  return p;
}

void *cli_xrealloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (!q)
    cli_die(CLI_EXIT_DEVICE, NULL, "out of memory (%zu bytes)", n);
  return q;
}

char *cli_xstrdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = cli_xmalloc(n);
  memcpy(d, s, n);
  return d;
}

int cli_ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  if (b > a)
    return 0;
  for (size_t i = 0; i < b; i++) {
    char x = s[a - b + i], y = suffix[i];
    if (x >= 'A' && x <= 'Z')
      x = (char)(x - 'A' + 'a');
    if (x != y)
      return 0;
  }
  return 1;
}

double cli_parse_double(const char *opt, const char *s) {
  char *end = NULL;
  errno = 0;
  double v = strtod(s, &end);
  if (!s[0] || *end || errno == ERANGE || !isfinite(v))
    cli_usage_error("%s: '%s' is not a finite number", opt, s);
  return v;
}

size_t cli_parse_size(const char *opt, const char *s) {
  char *end = NULL;
  errno = 0;
  if (s[0] == '-' || s[0] == '+')
    cli_usage_error("%s: '%s' is not a non-negative integer", opt, s);
  unsigned long long v = strtoull(s, &end, 10);
  if (!s[0] || *end || errno == ERANGE || v > (unsigned long long)SIZE_MAX)
    cli_usage_error("%s: '%s' is not a non-negative integer", opt, s);
  return (size_t)v;
}

/* ---- option parsing ----------------------------------------------------- */

static int match(const char *arg, const char *name, const char **inline_val) {
  size_t n = strlen(name);
  if (strncmp(arg, name, n) != 0)
    return 0;
  if (arg[n] == '\0') {
    *inline_val = NULL;
    return 1;
  }
  if (arg[n] == '=' && name[1] == '-') {
    *inline_val = arg + n + 1;
    return 1;
  }
  return 0;
}

size_t cli_parse(int argc, char **argv, const cli_opt *opts, const char *help,
                 cli_common *common, const char **pos, size_t max_pos) {
  common->backend = GMLE_BACKEND_AUTO;
  common->device = -1;
  common->batch_rows = 0;
  common->quiet = 0;
  size_t npos = 0;
  int only_pos = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (only_pos || a[0] != '-' || a[1] == '\0') {
      if (npos >= max_pos)
        cli_usage_error("unexpected argument '%s'", a);
      pos[npos++] = a;
      continue;
    }
    if (strcmp(a, "--") == 0) {
      only_pos = 1;
      continue;
    }
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      fputs(help, stdout);
      cli_exit(CLI_EXIT_OK);
    }
    const char *val = NULL;
    int found = 0;
    /* Common options. */
    static const char *const common_names[] = {"--backend", "--device",
                                               "--batch-rows", "--header"};
    for (size_t k = 0; k < 4 && !found; k++) {
      if (!match(a, common_names[k], &val))
        continue;
      found = 1;
      if (!val) {
        if (i + 1 >= argc)
          cli_usage_error("%s needs a value", common_names[k]);
        val = argv[++i];
      }
      if (k == 0) {
        if (gmle_backend_parse(val, &common->backend) != GMLE_OK)
          cli_usage_error("--backend: '%s' is not one of auto, cpu, opencl, "
                          "cuda",
                          val);
      } else if (k == 1) {
        size_t d = cli_parse_size("--device", val);
        if (d > 1000000)
          cli_usage_error("--device: %s is out of range", val);
        common->device = (int)d;
      } else if (k == 2) {
        common->batch_rows = cli_parse_size("--batch-rows", val);
        if (common->batch_rows == 0)
          cli_usage_error("--batch-rows must be at least 1");
      } else if (strcmp(val, "yes") == 0 || strcmp(val, "no") == 0 ||
                 strcmp(val, "auto") == 0) {
        cli_csv_header = val[0] == 'y' ? 1 : val[0] == 'n' ? 0 : -1;
      } else {
        cli_usage_error("--header: '%s' is not one of yes, no, auto", val);
      }
    }
    if (!found && (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0)) {
      common->quiet = 1;
      cli_quiet = 1;
      found = 1;
    }
    for (const cli_opt *o = opts; o && o->name && !found; o++) {
      if (!match(a, o->name, &val))
        continue;
      found = 1;
      if (o->has_arg) {
        if (!val) {
          if (i + 1 >= argc)
            cli_usage_error("%s needs a value", o->name);
          val = argv[++i];
        }
        *o->value = val;
      } else {
        if (val)
          cli_usage_error("%s takes no value", o->name);
        *o->flag = 1;
      }
    }
    if (!found)
      cli_usage_error("unknown option '%s'", a);
  }
  cli_dist_parsed(common);
  return npos;
}

/* ---- progress ----------------------------------------------------------- */

double cli_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void cli_progress_start(cli_progress *p, const char *label, uint64_t total) {
  p->on = !cli_quiet && isatty(STDERR_FILENO);
  p->t0 = cli_now();
  p->last = 0;
  p->total = total;
  p->label = label;
}

static void fmt_time(double s, char *buf, size_t n) {
  if (!(s >= 0) || s > 1e7) {
    snprintf(buf, n, "?");
    return;
  }
  long t = (long)(s + 0.5);
  if (t >= 3600)
    snprintf(buf, n, "%ldh%02ldm", t / 3600, (t / 60) % 60);
  else if (t >= 60)
    snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
  else
    snprintf(buf, n, "%lds", t);
}

static void progress_line(cli_progress *p, uint64_t done, double now) {
  double el = now - p->t0;
  double rate = el > 0 ? (double)done / el : 0;
  if (p->total) {
    char left[32];
    fmt_time(rate > 0
                 ? (double)(p->total - (done < p->total ? done : p->total)) /
                       rate
                 : -1,
             left, sizeof left);
    fprintf(stderr, "\r%s: %llu/%llu rows (%.1f%%), %.3g rows/s, %s left   ",
            p->label, (unsigned long long)done, (unsigned long long)p->total,
            100.0 * (double)done / (double)p->total, rate, left);
  } else {
    fprintf(stderr, "\r%s: %llu rows, %.3g rows/s   ", p->label,
            (unsigned long long)done, rate);
  }
  fflush(stderr);
}

void cli_progress_update(cli_progress *p, uint64_t done) {
  if (!p->on)
    return;
  double now = cli_now();
  if (now - p->last < 0.25)
    return;
  p->last = now;
  progress_line(p, done, now);
}

void cli_progress_end(cli_progress *p, uint64_t done) {
  if (!p->on)
    return;
  progress_line(p, done, cli_now());
  fputc('\n', stderr);
}
