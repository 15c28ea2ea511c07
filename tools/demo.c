/* demo.c -- gmle demo: the built-in example. Two classes in 2-D fitted with
 * full Gaussians, a fresh set classified, and hand-written SVG pictures: the
 * classes with their fitted ellipses and decision boundary, and the
 * log-likelihood of a 1-D sample as a function of mu; the same points
 * without labels fitted by EM are demo_em.c's. */
#include "demo.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

static const char demo_help[] =
    "Usage: gmle demo [-o DIR]\n"
    "\n"
    "The built-in example; it needs no input files. It draws (fixed seed) a\n"
    "two-class 2-D data set (class 0 around [-1,-1], class 1 around [1,1],\n"
    "300 points each, correlated), fits a full Gaussian per class with gmle,\n"
    "prints the fitted means and covariances beside the true ones,\n"
    "classifies 400 fresh points and prints the accuracy, fits the same\n"
    "600 points without their labels with a 2-component mixture (full\n"
    "covariances) by EM from its k-means++ start and prints it (weights,\n"
    "means, iterations, whether it converged), and writes:\n"
    "  DIR/demo_classes.svg     the points by class, each class's 1- and\n"
    "                           2-sigma ellipses and the decision boundary\n"
    "                           log p(0|x) = log p(1|x)\n"
    "  DIR/demo_univariate.svg  a 1-D sample's log-likelihood as a function\n"
    "                           of mu (sigma fixed), maximal at the sample\n"
    "                           mean\n"
    "  DIR/demo_em.svg          the points without labels, the k-means++\n"
    "                           start (means, dashed 1-sigma ellipses) and\n"
    "                           the mixture EM fitted from it (means, 1- and\n"
    "                           2-sigma ellipses); the title gives EM's\n"
    "                           iterations and final mean log-likelihood\n"
    "  DIR/demo_em_loglik.svg   the mean log-likelihood per row after each\n"
    "                           EM iteration (0: the k-means++ start)\n"
    "  DIR/demo_model.npz       the fitted model (try 'gmle info' on it)\n"
    "\n"
    "  -o, --output DIR   where to write (default ./gmle-demo)\n"
    "\n"
    "Exit codes: 0 ok, 1 usage, 3 cannot write DIR, 4 device error.\n";

/* ---- a seeded normal generator (splitmix64 + Box-Muller) ---------------- */

typedef struct rng {
  uint64_t s;
  int have;
  double spare;
} rng;

static uint64_t next_u64(rng *r) {
  uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static double uniform01(rng *r) { /* (0, 1) */
  return ((double)(next_u64(r) >> 11) + 0.5) / 9007199254740992.0;
}

static double normal(rng *r) {
  if (r->have) {
    r->have = 0;
    return r->spare;
  }
  double u = uniform01(r), v = uniform01(r);
  double rad = sqrt(-2.0 * log(u)), th = 6.283185307179586 * v;
  r->spare = rad * sin(th);
  r->have = 1;
  return rad * cos(th);
}

/* n points of N(mu, S) (2-D) through the Cholesky factor of S. */
static void draw2(rng *r, const double mu[2], const double S[4], size_t n,
                  double *out) {
  double l11 = sqrt(S[0]), l21 = S[2] / l11, l22 = sqrt(S[3] - l21 * l21);
  for (size_t i = 0; i < n; i++) {
    double z1 = normal(r), z2 = normal(r);
    out[2 * i] = mu[0] + l11 * z1;
    out[2 * i + 1] = mu[1] + l21 * z1 + l22 * z2;
  }
}

#ifndef DEMO_SEED_1D
#define DEMO_SEED_1D 5u
#endif

/* ---- files --------------------------------------------------------------- */

static char *join(const char *dir, const char *name) {
  size_t a = strlen(dir), b = strlen(name);
  char *p = cli_xmalloc(a + b + 2);
  memcpy(p, dir, a);
  p[a] = '/';
  memcpy(p + a + 1, name, b + 1);
  return p;
}

FILE *demo_open(const char *path, char **tmp) {
  size_t n = strlen(path);
  *tmp = cli_xmalloc(n + 5);
  snprintf(*tmp, n + 5, "%s.tmp", path);
  FILE *f = fopen(*tmp, "w");
  if (!f)
    cli_die(CLI_EXIT_FILE, *tmp, "%s", strerror(errno));
  return f;
}

void demo_close(FILE *f, char *tmp, const char *path) {
  int bad = ferror(f);
  if (fclose(f) != 0 || bad) {
    remove(tmp);
    cli_die(CLI_EXIT_FILE, path, "write failed: %s", strerror(errno));
  }
  if (rename(tmp, path) != 0) {
    int e = errno;
    remove(tmp);
    cli_die(CLI_EXIT_FILE, path, "%s", strerror(e));
  }
  free(tmp);
}

/* ---- 2x2 eigen-decomposition --------------------------------------------- */

/* S = [a b; b c]: eigenvalues l1 >= l2, the angle of l1's eigenvector. */
static void eig2(const double S[4], double *l1, double *l2, double *angle) {
  double a = S[0], b = S[1], c = S[3];
  double mid = 0.5 * (a + c), rad = hypot(0.5 * (a - c), b);
  *l1 = mid + rad;
  *l2 = mid - rad;
  *angle = 0.5 * atan2(2 * b, a - c);
}

void demo_ellipse(const svg_plot *p, const double mu[2], const double S[4],
                  double k, const char *style) {
  enum { N = 120 };
  double l1, l2, th, x[N], y[N];
  eig2(S, &l1, &l2, &th);
  double r1 = k * sqrt(l1 > 0 ? l1 : 0), r2 = k * sqrt(l2 > 0 ? l2 : 0);
  double ct = cos(th), st = sin(th);
  for (int i = 0; i < N; i++) {
    double t = 6.283185307179586 * i / N;
    double u = r1 * cos(t), v = r2 * sin(t);
    x[i] = mu[0] + u * ct - v * st;
    y[i] = mu[1] + u * st + v * ct;
  }
  svg_polyline(p, x, y, N, 1, style);
}

/* ---- marching squares ------------------------------------------------------
 * The zero level of f on a G x G grid of nodes (f[j*G+i] at xs[i], ys[j]),
 * as polylines. Crossings lie on grid edges; an edge id is
 * horizontal (i,j)-(i+1,j): j*(G-1)+i, vertical (i,j)-(i,j+1): NH + j*G+i. */

typedef struct contour {
  size_t n_lines;
  size_t *start, *len; /* into px/py */
  double *px, *py;
  size_t n_pts;
} contour;

static void edge_point(const double *f, const double *xs, const double *ys,
                       size_t G, size_t e, double *x, double *y) {
  size_t NH = (G - 1) * G;
  size_t ia, ib;
  if (e < NH) {
    size_t j = e / (G - 1), i = e % (G - 1);
    ia = j * G + i;
    ib = ia + 1;
  } else {
    size_t k = e - NH, j = k / G, i = k % G;
    ia = j * G + i;
    ib = ia + G;
  }
  double fa = f[ia], fb = f[ib];
  double t = fa / (fa - fb);
  double xa = xs[ia % G], ya = ys[ia / G], xb = xs[ib % G], yb = ys[ib / G];
  *x = xa + t * (xb - xa);
  *y = ya + t * (yb - ya);
}

static void marching_squares(const double *f, const double *xs,
                             const double *ys, size_t G, contour *out) {
  size_t NH = (G - 1) * G, NE = NH + G * (G - 1);
  size_t cap = 16, nseg = 0;
  size_t *sa = cli_xmalloc(cap * sizeof *sa),
         *sb = cli_xmalloc(cap * sizeof *sb);
  for (size_t j = 0; j + 1 < G; j++)
    for (size_t i = 0; i + 1 < G; i++) {
      double v[4] = {f[j * G + i], f[j * G + i + 1], f[(j + 1) * G + i + 1],
                     f[(j + 1) * G + i]};
      int s[4];
      for (int k = 0; k < 4; k++)
        s[k] = v[k] > 0;
      /* e0 bottom (v0-v1), e1 right (v1-v2), e2 top (v3-v2), e3 left
       * (v0-v3) */
      size_t e[4] = {j * (G - 1) + i, NH + j * G + i + 1, (j + 1) * (G - 1) + i,
                     NH + j * G + i};
      int cross[4] = {s[0] != s[1], s[1] != s[2], s[3] != s[2], s[0] != s[3]};
      size_t pairs[2][2];
      int np = 0;
      int nc = cross[0] + cross[1] + cross[2] + cross[3];
      if (nc == 2) {
        size_t a = 4, b = 4;
        for (size_t k = 0; k < 4; k++)
          if (cross[k]) {
            if (a == 4)
              a = k;
            else
              b = k;
          }
        pairs[0][0] = e[a];
        pairs[0][1] = e[b];
        np = 1;
      } else if (nc == 4) { /* saddle: decide by the centre value */
        int sc = (v[0] + v[1] + v[2] + v[3]) > 0;
        if (sc == s[0]) { /* v0 and v2 joined: cut off v1 and v3 */
          pairs[0][0] = e[0], pairs[0][1] = e[1];
          pairs[1][0] = e[2], pairs[1][1] = e[3];
        } else { /* cut off v0 and v2 */
          pairs[0][0] = e[3], pairs[0][1] = e[0];
          pairs[1][0] = e[1], pairs[1][1] = e[2];
        }
        np = 2;
      }
      for (int k = 0; k < np; k++) {
        if (nseg == cap) {
          cap *= 2;
          sa = cli_xrealloc(sa, cap * sizeof *sa);
          sb = cli_xrealloc(sb, cap * sizeof *sb);
        }
        sa[nseg] = pairs[k][0];
        sb[nseg] = pairs[k][1];
        nseg++;
      }
    }
  /* Chain the segments: every edge holds at most two segment ends. */
  size_t *slot = cli_xmalloc(2 * NE * sizeof *slot);
  unsigned char *deg = cli_xcalloc(NE, 1),
                *used = cli_xcalloc(nseg ? nseg : 1, 1);
  for (size_t s = 0; s < nseg; s++) {
    slot[2 * sa[s] + deg[sa[s]]++] = s;
    slot[2 * sb[s] + deg[sb[s]]++] = s;
  }
  out->n_lines = 0;
  out->n_pts = 0;
  out->start = cli_xmalloc((nseg + 1) * sizeof *out->start);
  out->len = cli_xmalloc((nseg + 1) * sizeof *out->len);
  out->px = cli_xmalloc((2 * nseg + 1) * sizeof *out->px);
  out->py = cli_xmalloc((2 * nseg + 1) * sizeof *out->py);
  for (int pass = 0; pass < 2; pass++) /* open chains first, then loops */
    for (size_t e0 = 0; e0 < NE; e0++) {
      if (deg[e0] == 0 || (pass == 0 && deg[e0] != 1))
        continue;
      size_t cur = e0;
      size_t first = out->n_pts;
      for (;;) {
        size_t s = nseg;
        for (unsigned k = 0; k < deg[cur]; k++)
          if (!used[slot[2 * cur + k]]) {
            s = slot[2 * cur + k];
            break;
          }
        if (s == nseg)
          break;
        if (out->n_pts == first) {
          edge_point(f, xs, ys, G, cur, &out->px[out->n_pts],
                     &out->py[out->n_pts]);
          out->n_pts++;
        }
        used[s] = 1;
        cur = sa[s] == cur ? sb[s] : sa[s];
        edge_point(f, xs, ys, G, cur, &out->px[out->n_pts],
                   &out->py[out->n_pts]);
        out->n_pts++;
      }
      if (out->n_pts > first) {
        out->start[out->n_lines] = first;
        out->len[out->n_lines] = out->n_pts - first;
        out->n_lines++;
      }
    }
  free(slot);
  free(deg);
  free(used);
  free(sa);
  free(sb);
}

static void contour_free(contour *c) {
  free(c->start);
  free(c->len);
  free(c->px);
  free(c->py);
}

/* ---- the demo --------------------------------------------------------------
 */

void demo_check(gmle_context *ctx, gmle_status s, const char *what) {
  if (s != GMLE_OK)
    cli_fail(ctx, s, what, -1);
}

void demo_square_view(const double *x, size_t n, svg_plot *p) {
  double lo[2] = {1e300, 1e300}, hi[2] = {-1e300, -1e300};
  for (size_t i = 0; i < n; i++)
    for (int k = 0; k < 2; k++) {
      lo[k] = fmin(lo[k], x[2 * i + k]);
      hi[k] = fmax(hi[k], x[2 * i + k]);
    }
  double cx = 0.5 * (lo[0] + hi[0]), cy = 0.5 * (lo[1] + hi[1]);
  double half = 0.5 * fmax(hi[0] - lo[0], hi[1] - lo[1]) + 0.4;
  p->x0 = cx - half;
  p->x1 = cx + half;
  p->y0 = cy - half;
  p->y1 = cy + half;
}

void demo_cross(const svg_plot *p, double x, double y) {
  double px = svg_px(p, x), py = svg_py(p, y);
  fprintf(p->f,
          "<path d=\"M%.2f %.2fl12 12M%.2f %.2fl-12 12\" stroke=\"black\" "
          "stroke-width=\"1.5\" transform=\"translate(-6 -6)\"/>\n",
          px, py, px + 12, py);
}

void demo_legend_box(FILE *f, double x, double y, double w, double h) {
  fprintf(f,
          "<rect x=\"%.1f\" y=\"%.1f\" width=\"%g\" height=\"%g\" "
          "fill=\"white\" fill-opacity=\"0.85\" stroke=\"#999\"/>\n",
          x, y, w, h);
}

void demo_legend_line(FILE *f, double x, double y, const char *style,
                      const char *text) {
  fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" %s/>\n", x,
          y, x + 16, y, style);
  svg_text(f, x + 22, y + 4, "start", 12, NULL, text);
}

void demo_legend_dot(FILE *f, double x, double y, const char *fill,
                     const char *text) {
  fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"%s\"/>\n", x + 8,
          y, fill);
  svg_text(f, x + 22, y + 4, "start", 12, NULL, text);
}

static const char *const colour[2] = {"#1f77b4", "#d62728"};

static void picture_classes(gmle_context *ctx, const gmle_model *m,
                            const double *x, const int32_t *y, size_t n,
                            const double mu_true[2][2],
                            const double S_true[2][4], const char *path,
                            size_t *n_boundary_pts) {
  svg_plot p = {NULL, 0, 0, 0, 0, 80, 50, 560, 560};
  demo_square_view(x, n, &p);
  /* The boundary: log p(0|x) - log p(1|x) on a grid. */
  enum { G = 161 };
  double *grid = cli_xmalloc((size_t)G * G * 2 * sizeof *grid);
  double *lp = cli_xmalloc((size_t)G * G * 2 * sizeof *lp);
  double *f = cli_xmalloc((size_t)G * G * sizeof *f);
  double xs[G], ys[G];
  for (int i = 0; i < G; i++) {
    xs[i] = p.x0 + (p.x1 - p.x0) * i / (G - 1);
    ys[i] = p.y0 + (p.y1 - p.y0) * i / (G - 1);
  }
  for (int j = 0; j < G; j++)
    for (int i = 0; i < G; i++) {
      grid[2 * ((size_t)j * G + i)] = xs[i];
      grid[2 * ((size_t)j * G + i) + 1] = ys[j];
    }
  demo_check(ctx,
             gmle_score(ctx, m, grid, GMLE_F64, (size_t)G * G, 2,
                        GMLE_OUT_LOGPOST, GMLE_F64, lp),
             "scoring the grid");
  for (size_t k = 0; k < (size_t)G * G; k++)
    f[k] = lp[2 * k] - lp[2 * k + 1];
  contour ct;
  marching_squares(f, xs, ys, G, &ct);
  *n_boundary_pts = ct.n_pts;

  char *tmp;
  FILE *out = demo_open(path, &tmp);
  p.f = out;
  svg_begin(out, 680, 680,
            "gmle demo: two classes, fitted Gaussians and decision boundary");
  svg_text(out, 360, 30, "middle", 17, "font-weight=\"bold\"",
           "Two classes, one full Gaussian each (fitted by gmle)");
  svg_axes(&p, "x\xE2\x82\x81", "x\xE2\x82\x82");
  char style[160];
  for (size_t i = 0; i < n; i++) {
    snprintf(style, sizeof style,
             "fill=\"%s\" fill-opacity=\"0.55\" stroke=\"none\"", colour[y[i]]);
    svg_circle(&p, x[2 * i], x[2 * i + 1], 2.6, style);
  }
  for (size_t c = 0; c < 2; c++) {
    double mu[2], S[4];
    gmle_model_mean(m, c, mu);
    gmle_model_covariance(m, c, S);
    snprintf(style, sizeof style, "stroke=\"%s\" stroke-width=\"2\"",
             colour[c]);
    demo_ellipse(&p, mu, S, 1.0, style);
    snprintf(style, sizeof style,
             "stroke=\"%s\" stroke-width=\"1.5\" stroke-dasharray=\"6 4\"",
             colour[c]);
    demo_ellipse(&p, mu, S, 2.0, style);
    /* True means as crosses, fitted means as dots. */
    snprintf(style, sizeof style,
             "fill=\"%s\" stroke=\"white\" stroke-width=\"1.5\"", colour[c]);
    svg_circle(&p, mu[0], mu[1], 5, style);
    demo_cross(&p, mu_true[c][0], mu_true[c][1]);
    (void)S_true;
  }
  for (size_t l = 0; l < ct.n_lines; l++)
    svg_polyline(&p, ct.px + ct.start[l], ct.py + ct.start[l], ct.len[l], 0,
                 "stroke=\"black\" stroke-width=\"2.5\"");
  /* Legend. */
  double lx = p.left + 12, ly = p.top + 14;
  demo_legend_box(out, lx - 6, ly - 8, 272, 118);
  for (int c = 0; c < 2; c++)
    demo_legend_dot(out, lx, ly + 6 + 18 * c, colour[c],
                    c == 0 ? "class 0 (true mean [-1,-1])"
                           : "class 1 (true mean [1,1])");
  demo_legend_line(out, lx, ly + 42, "stroke=\"#555\" stroke-width=\"2\"",
                   "1-sigma ellipse (fitted covariance)");
  demo_legend_line(out, lx, ly + 60,
                   "stroke=\"#555\" stroke-width=\"1.5\" "
                   "stroke-dasharray=\"6 4\"",
                   "2-sigma ellipse");
  demo_legend_line(out, lx, ly + 78, "stroke=\"black\" stroke-width=\"2.5\"",
                   "boundary log p(0|x) = log p(1|x)");
  svg_text(out, lx + 22, ly + 100, "start", 12, NULL,
           "dots: fitted means; crosses: true means");
  svg_end(out);
  demo_close(out, tmp, path);
  contour_free(&ct);
  free(grid);
  free(lp);
  free(f);
}

static void picture_univariate(gmle_context *ctx, const double *s, size_t n,
                               double sigma, double xbar, const char *path,
                               double *mu_best) {
  enum { K = 241 };
  double lo = xbar - 2.5 * sigma, hi = xbar + 2.5 * sigma;
  double mus[K], ll[K];
  double ymin = 1e300, ymax = -1e300;
  double var = sigma * sigma;
  size_t best = 0;
  for (int k = 0; k < K; k++) {
    mus[k] = lo + (hi - lo) * k / (K - 1);
    gmle_model *mk = NULL;
    demo_check(ctx,
               gmle_model_create(ctx, 1, 1, GMLE_COV_FULL, &mus[k], &var, NULL,
                                 NULL, &mk),
               "building a 1-D model");
    demo_check(
        ctx, gmle_total_loglik(ctx, mk, s, GMLE_F64, n, 1, NULL, NULL, &ll[k]),
        "scoring the 1-D sample");
    gmle_model_free(mk);
    ymin = fmin(ymin, ll[k]);
    ymax = fmax(ymax, ll[k]);
    if (ll[k] > ll[best])
      best = (size_t)k;
  }
  *mu_best = mus[best];
  /* The value at the sample mean itself. */
  double lmax = 0;
  gmle_model *mk = NULL;
  demo_check(
      ctx,
      gmle_model_create(ctx, 1, 1, GMLE_COV_FULL, &xbar, &var, NULL, NULL, &mk),
      "building a 1-D model");
  demo_check(ctx,
             gmle_total_loglik(ctx, mk, s, GMLE_F64, n, 1, NULL, NULL, &lmax),
             "scoring the 1-D sample");
  gmle_model_free(mk);
  double pad = 0.06 * (ymax - ymin);
  svg_plot p = {NULL, lo, hi,  ymin - pad, fmax(ymax, lmax) + pad,
                100,  60, 560, 380};
  char *tmp;
  FILE *out = demo_open(path, &tmp);
  p.f = out;
  svg_begin(out, 700, 520,
            "gmle demo: log-likelihood of a 1-D sample as a function of mu");
  svg_text(out, 380, 32, "middle", 17, "font-weight=\"bold\"",
           "Log-likelihood of a 1-D sample as a function of \xCE\xBC");
  char buf[160];
  snprintf(buf, sizeof buf, "n = %zu points, \xCF\x83 fixed at the MLE %.4f", n,
           sigma);
  svg_text(out, 380, 50, "middle", 13, NULL, buf);
  svg_axes(&p, "\xCE\xBC", "log-likelihood \xE2\x84\x93(\xCE\xBC)");
  /* The sample as a rug along the bottom. */
  for (size_t i = 0; i < n; i++) {
    if (s[i] < lo || s[i] > hi)
      continue;
    double px = svg_px(&p, s[i]);
    fprintf(out,
            "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" "
            "stroke=\"#2ca02c\" stroke-width=\"1.2\"/>\n",
            px, p.top + p.h - 12, px, p.top + p.h);
  }
  svg_polyline(&p, mus, ll, K, 0, "stroke=\"#1f77b4\" stroke-width=\"2.5\"");
  double px = svg_px(&p, xbar), py = svg_py(&p, lmax);
  fprintf(out,
          "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" "
          "stroke=\"#d62728\" stroke-width=\"1.5\" "
          "stroke-dasharray=\"5 4\"/>\n",
          px, p.top, px, p.top + p.h);
  fprintf(out,
          "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"6\" fill=\"#d62728\" "
          "stroke=\"white\" stroke-width=\"1.5\"/>\n",
          px, py);
  snprintf(buf, sizeof buf, "maximum at the sample mean x\xCC\x84 = %.4f",
           xbar);
  svg_text(out, px + 12, p.top + 64, "start", 13,
           "fill=\"#d62728\" stroke=\"white\" stroke-width=\"4\" "
           "paint-order=\"stroke\"",
           buf);
  snprintf(buf, sizeof buf, "\xE2\x84\x93(x\xCC\x84) = %.4f", lmax);
  svg_text(out, px + 12, p.top + 82, "start", 13,
           "fill=\"#d62728\" stroke=\"white\" stroke-width=\"4\" "
           "paint-order=\"stroke\"",
           buf);
  svg_text(out, p.left + 8, p.top + p.h - 18, "start", 12, "fill=\"#2ca02c\"",
           "the sample");
  svg_end(out);
  demo_close(out, tmp, path);
}

static void print_mat2(const char *label, const double *fit,
                       const double *truth) {
  printf("  %-11s fitted [[%7.4f, %7.4f], [%7.4f, %7.4f]]   true [[%5.2f, "
         "%5.2f], [%5.2f, %5.2f]]\n",
         label, fit[0], fit[1], fit[2], fit[3], truth[0], truth[1], truth[2],
         truth[3]);
}

int cmd_demo(int argc, char **argv) {
  const char *dir = "gmle-demo";
  const cli_opt opts[] = {{"--output", 1, &dir, NULL},
                          {"-o", 1, &dir, NULL},
                          {NULL, 0, NULL, NULL}};
  cli_common common;
  const char *pos[1];
  cli_parse(argc, argv, opts, demo_help, &common, pos, 0);
  if (!dir[0])
    cli_usage_error("-o: empty directory name");
  if (mkdir(dir, 0777) != 0 && errno != EEXIST)
    cli_die(CLI_EXIT_FILE, dir, "cannot create the directory: %s",
            strerror(errno));
  struct stat sb;
  if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
    cli_die(CLI_EXIT_FILE, dir, "not a directory");
  gmle_context *ctx = cli_context(&common);

  /* The data set. */
  static const double mu_true[2][2] = {{-1, -1}, {1, 1}};
  static const double S_true[2][4] = {{0.60, 0.30, 0.30, 0.50},
                                      {0.50, -0.20, -0.20, 0.80}};
  enum { NTRAIN = 300, NTEST = 200 };
  rng r = {20240611u, 0, 0};
  double *x = cli_xmalloc(2 * NTRAIN * 2 * sizeof *x);
  int32_t *y = cli_xmalloc(2 * NTRAIN * sizeof *y);
  for (int c = 0; c < 2; c++) {
    draw2(&r, mu_true[c], S_true[c], NTRAIN, x + 2 * NTRAIN * c);
    for (int i = 0; i < NTRAIN; i++)
      y[NTRAIN * c + i] = c;
  }
  printf("gmle demo (gmle %s, %s)\n\n", gmle_version_string(),
         gmle_context_device_name(ctx));
  printf("Training data: 2 classes x %d points in 2-D, drawn with a fixed "
         "seed.\n\n",
         NTRAIN);

  /* Fit: accumulate the statistics, then the closed-form MLE. */
  gmle_stats *st = NULL;
  demo_check(ctx, gmle_stats_create(ctx, 2, 2, &st), "statistics");
  demo_check(ctx, gmle_stats_add(st, x, GMLE_F64, 2 * NTRAIN, 2, y, NULL),
             "accumulating");
  gmle_model *m = NULL;
  demo_check(ctx, gmle_fit(st, NULL, &m), "fitting");
  static const char *const names[2] = {"0", "1"};
  demo_check(ctx, gmle_model_set_class_names(m, names), "naming the classes");
  printf("Fitted by maximum likelihood (full covariance, divide by n):\n");
  for (size_t c = 0; c < 2; c++) {
    double mu[2], S[4], prior;
    demo_check(ctx, gmle_model_mean(m, c, mu), "mean");
    demo_check(ctx, gmle_model_covariance(m, c, S), "covariance");
    demo_check(ctx, gmle_model_prior(m, c, &prior), "prior");
    printf("class %zu (prior %.3f)\n", c, prior);
    printf("  %-11s fitted [%7.4f, %7.4f]                        true [%5.2f, "
           "%5.2f]\n",
           "mean", mu[0], mu[1], mu_true[c][0], mu_true[c][1]);
    print_mat2("covariance", S, S_true[c]);
  }

  /* Classify a fresh, unlabelled set. */
  double *xt = cli_xmalloc(2 * NTEST * 2 * sizeof *xt);
  int32_t *yt = cli_xmalloc(2 * NTEST * sizeof *yt);
  int32_t *pred = cli_xmalloc(2 * NTEST * sizeof *pred);
  for (int c = 0; c < 2; c++) {
    draw2(&r, mu_true[c], S_true[c], NTEST, xt + 2 * NTEST * c);
    for (int i = 0; i < NTEST; i++)
      yt[NTEST * c + i] = c;
  }
  demo_check(ctx,
             gmle_score(ctx, m, xt, GMLE_F64, 2 * NTEST, 2, GMLE_OUT_LABEL,
                        GMLE_F64, pred),
             "classifying");
  int correct = 0;
  for (int i = 0; i < 2 * NTEST; i++)
    correct += pred[i] == yt[i];
  printf("\nClassified %d fresh points (not used in the fit): accuracy "
         "%.4f (%d of %d correct)\n",
         2 * NTEST, (double)correct / (2 * NTEST), correct, 2 * NTEST);

  /* The pictures. */
  char *p1 = join(dir, "demo_classes.svg");
  char *p2 = join(dir, "demo_univariate.svg");
  char *p3 = join(dir, "demo_model.npz");
  char *p4 = join(dir, "demo_em.svg");
  char *p5 = join(dir, "demo_em_loglik.svg");
  size_t nb = 0;
  picture_classes(ctx, m, x, y, 2 * NTRAIN, mu_true, S_true, p1, &nb);

  /* The univariate case: a 1-D sample, fitted with gmle (D = 1). */
  enum { N1 = 40 };
  double s1[N1], sum = 0;
  rng r1 = {DEMO_SEED_1D, 0, 0};
  for (int i = 0; i < N1; i++) {
    s1[i] = 2.0 + 1.5 * normal(&r1);
    sum += s1[i];
  }
  double xbar_direct = sum / N1;
  gmle_stats *st1 = NULL;
  gmle_model *m1 = NULL;
  demo_check(ctx, gmle_stats_create(ctx, 1, 1, &st1), "statistics");
  demo_check(ctx, gmle_stats_add(st1, s1, GMLE_F64, N1, 1, NULL, NULL),
             "accumulating");
  demo_check(ctx, gmle_fit(st1, NULL, &m1), "fitting");
  double mu1, var1;
  demo_check(ctx, gmle_model_mean(m1, 0, &mu1), "mean");
  demo_check(ctx, gmle_model_covariance(m1, 0, &var1), "variance");
  double mu_best = 0;
  picture_univariate(ctx, s1, N1, sqrt(var1), mu1, p2, &mu_best);
  printf("\nUnivariate case: %d points from N(2, 1.5^2).\n", N1);
  printf("  sample mean %.6f (gmle's MLE of mu: %.6f); MLE of sigma %.6f\n",
         xbar_direct, mu1, sqrt(var1));
  printf("  the log-likelihood l(mu) with sigma fixed peaks at the sample "
         "mean\n  (grid maximum at mu = %.4f)\n",
         mu_best);

  /* The same points without their labels: a mixture fitted by EM. */
  size_t em_iter = demo_em(ctx, x, 2 * NTRAIN, mu_true, p4, p5);

  gmle_status s = gmle_model_save(m, p3);
  printf("\nWrote\n  %s  (points, 1- and 2-sigma ellipses, decision boundary "
         "of %zu points)\n  %s  (log-likelihood of mu)\n",
         p1, nb, p2);
  printf("  %s  (the points without labels, the k-means++ start and the "
         "mixture after %zu EM iterations)\n  %s  (mean log-likelihood per "
         "EM iteration)\n",
         p4, em_iter, p5);
  if (s == GMLE_OK)
    printf("  %s  (the fitted model: try 'gmle info %s')\n", p3, p3);
  else
    cli_warn("%s: %s", p3, gmle_context_error(ctx));
  gmle_model_free(m1);
  gmle_stats_free(st1);
  gmle_model_free(m);
  gmle_stats_free(st);
  gmle_context_free(ctx);
  free(x);
  free(y);
  free(xt);
  free(yt);
  free(pred);
  free(p1);
  free(p2);
  free(p3);
  free(p4);
  free(p5);
  return CLI_EXIT_OK;
}
