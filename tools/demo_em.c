/* demo_em.c -- gmle demo's EM example: the demo's two-class points without
 * their labels, a mixture of two full Gaussians fitted by gmle_em_fit from
 * its k-means++ start, and two pictures: the points with the start and the
 * fitted components, and the mean log-likelihood per EM iteration. */
#include "demo.h"

#include <math.h>
#include <stdlib.h>

enum { EM_K = 2, EM_BATCH_ROWS = 256 };
static const uint64_t em_seed = 1;

/* ---- the rows in memory as EM's batch source ------------------------------
 */

typedef struct mem_rows {
  const double *x;
  size_t n, next_row;
} mem_rows;

static gmle_status mem_rewind(void *user) {
  ((mem_rows *)user)->next_row = 0;
  return GMLE_OK;
}

static gmle_status mem_next(void *user, const void **x, gmle_dtype *dtype,
                            size_t *n_rows, size_t *row_stride,
                            const int32_t **labels, const double **weights) {
  mem_rows *m = user;
  size_t n = m->n - m->next_row;
  if (n > EM_BATCH_ROWS)
    n = EM_BATCH_ROWS;
  *x = m->x + 2 * m->next_row;
  *dtype = GMLE_F64;
  *n_rows = n;
  *row_stride = 2;
  *labels = NULL; /* unsupervised: one class */
  *weights = NULL;
  m->next_row += n;
  return GMLE_OK;
}

/* ---- the fit ---------------------------------------------------------------
 */

/* A 2-D mixture's parameters, as gmle_mixture_params lays them out. */
typedef struct mixture2 {
  double weight[EM_K], mean[EM_K][2], cov[EM_K][4];
} mixture2;

static void read_mixture(gmle_context *ctx, const gmle_model *m,
                         mixture2 *out) {
  demo_check(
      ctx,
      gmle_mixture_params(m, out->weight, &out->mean[0][0], &out->cov[0][0]),
      "reading the mixture");
}

/* The mean log-likelihood per row of the data a mixture was fitted to
 * (gmle_em_fit's final pass). */
static double mean_loglik(gmle_context *ctx, const gmle_model *m,
                          double n_rows) {
  double total = 0;
  demo_check(ctx, gmle_model_loglik(m, 0, &total), "the log-likelihood");
  return total / n_rows;
}

/* EM's k-means++ start (gmle_em_fit with max_iter 0: the initialisation
 * only) and the fit from it (the start as init_model, default tol), which
 * is the default fit from the same seed, one step at a time. */
static void fit(gmle_context *ctx, const double *x, size_t n,
                gmle_model **start, gmle_model **fitted) {
  mem_rows rows = {x, n, 0};
  const gmle_batch_source src = {&rows, mem_rewind, mem_next};
  gmle_em_options o;
  gmle_em_options_init(&o);
  o.n_components = EM_K;
  o.cov = GMLE_COV_FULL;
  o.seed = em_seed;
  const size_t max_iter = o.max_iter;
  o.max_iter = 0;
  demo_check(ctx, gmle_em_fit(ctx, 2, 1, &src, &o, start),
             "the k-means++ start of EM");
  o.max_iter = max_iter;
  o.init = GMLE_INIT_MODEL;
  o.init_model = *start;
  demo_check(ctx, gmle_em_fit(ctx, 2, 1, &src, &o, fitted),
             "fitting the mixture by EM");
}

/* ---- the pictures ----------------------------------------------------------
 */

static const char *const comp_colour[EM_K] = {"#2ca02c", "#9467bd"};
static const char start_colour[] = "#ff7f0e";

static void picture_fit(const double *x, size_t n, const double mu_true[2][2],
                        const mixture2 *start, const mixture2 *fitted,
                        size_t n_iter, double final_ll, const char *path) {
  svg_plot p = {NULL, 0, 0, 0, 0, 80, 70, 540, 540};
  demo_square_view(x, n, &p);
  char *tmp;
  FILE *out = demo_open(path, &tmp);
  p.f = out;
  char buf[200], style[200];
  snprintf(buf, sizeof buf,
           "EM: 2 Gaussians, %zu iterations, final mean log-likelihood %.4f",
           n_iter, final_ll);
  svg_begin(out, 680, 690, buf);
  svg_text(out, 350, 30, "middle", 17, "font-weight=\"bold\"", buf);
  snprintf(buf, sizeof buf,
           "the %zu points without labels: k-means++ start (dashed) and "
           "the mixture EM fitted from it",
           n);
  svg_text(out, 350, 52, "middle", 13, NULL, buf);
  svg_axes(&p, "x\xE2\x82\x81", "x\xE2\x82\x82");
  for (size_t i = 0; i < n; i++)
    svg_circle(&p, x[2 * i], x[2 * i + 1], 2.6,
               "fill=\"#555\" fill-opacity=\"0.4\" stroke=\"none\"");
  for (size_t k = 0; k < EM_K; k++) {
    snprintf(style, sizeof style, "stroke=\"%s\" stroke-width=\"2.5\"",
             comp_colour[k]);
    demo_ellipse(&p, fitted->mean[k], fitted->cov[k], 1.0, style);
    snprintf(style, sizeof style,
             "stroke=\"%s\" stroke-width=\"1.5\" stroke-dasharray=\"2 3\"",
             comp_colour[k]);
    demo_ellipse(&p, fitted->mean[k], fitted->cov[k], 2.0, style);
  }
  /* The start on top (dashed, hollow rings), so that both stay visible. */
  snprintf(style, sizeof style,
           "stroke=\"%s\" stroke-width=\"2\" stroke-dasharray=\"7 5\"",
           start_colour);
  for (size_t k = 0; k < EM_K; k++)
    demo_ellipse(&p, start->mean[k], start->cov[k], 1.0, style);
  for (size_t k = 0; k < EM_K; k++) {
    snprintf(style, sizeof style,
             "fill=\"%s\" stroke=\"white\" stroke-width=\"1.5\"",
             comp_colour[k]);
    svg_circle(&p, fitted->mean[k][0], fitted->mean[k][1], 5, style);
    demo_cross(&p, mu_true[k][0], mu_true[k][1]);
  }
  snprintf(style, sizeof style,
           "fill=\"none\" stroke=\"%s\" stroke-width=\"2.5\"", start_colour);
  for (size_t k = 0; k < EM_K; k++)
    svg_circle(&p, start->mean[k][0], start->mean[k][1], 7, style);
  /* Legend. */
  double lx = p.left + 12, ly = p.top + 14;
  demo_legend_box(out, lx - 6, ly - 8, 316, 118);
  demo_legend_dot(out, lx, ly + 6, "#555", "the points (labels not used)");
  snprintf(style, sizeof style,
           "stroke=\"%s\" stroke-width=\"2\" stroke-dasharray=\"7 5\"",
           start_colour);
  demo_legend_line(out, lx, ly + 24, style,
                   "k-means++ start: 1-sigma ellipses, means (rings)");
  for (size_t k = 0; k < EM_K; k++) {
    snprintf(style, sizeof style, "stroke=\"%s\" stroke-width=\"2.5\"",
             comp_colour[k]);
    snprintf(buf, sizeof buf, "fitted component %zu (weight %.3f): 1-sigma", k,
             fitted->weight[k]);
    demo_legend_line(out, lx, ly + 42 + 18 * (double)k, style, buf);
  }
  demo_legend_line(out, lx, ly + 78,
                   "stroke=\"#555\" stroke-width=\"1.5\" "
                   "stroke-dasharray=\"2 3\"",
                   "2-sigma ellipses of the fitted components");
  svg_text(out, lx + 22, ly + 100, "start", 12, NULL,
           "dots: fitted means; crosses: true class means");
  svg_end(out);
  demo_close(out, tmp, path);
}

/* The mean log-likelihood after i iterations, i = 0 .. n_iter: the
 * report's history (entry i: under the parameters iteration i + 1 started
 * from, so entry 0 is the start) and the fitted model's own value. */
static void picture_loglik(const gmle_em_report *r, double final_ll, double tol,
                           const char *path) {
  const size_t n = r->n_history + 1;
  double *it = cli_xmalloc(n * sizeof *it), *ll = cli_xmalloc(n * sizeof *ll);
  double lo = final_ll, hi = final_ll;
  for (size_t i = 0; i < n; i++) {
    it[i] = (double)i;
    ll[i] = i < r->n_history ? r->history[i] : final_ll;
    lo = fmin(lo, ll[i]);
    hi = fmax(hi, ll[i]);
  }
  double pad = hi > lo ? 0.08 * (hi - lo) : 0.01 * (fabs(hi) + 1);
  double x1 = (n - 1 > 5 ? (double)(n - 1) : 5.0) + 0.5;
  svg_plot p = {NULL, -0.5, x1, lo - pad, hi + pad, 110, 70, 560, 360};
  char *tmp;
  FILE *out = demo_open(path, &tmp);
  p.f = out;
  svg_begin(out, 710, 520, "gmle demo: mean log-likelihood per EM iteration");
  svg_text(out, 390, 32, "middle", 17, "font-weight=\"bold\"",
           "Mean log-likelihood per EM iteration");
  char buf[200];
  snprintf(buf, sizeof buf,
           "%s after %zu iterations (EM stops when the change is below tol = "
           "%g)",
           r->converged ? "converged" : "not converged", r->n_iter, tol);
  svg_text(out, 390, 52, "middle", 13, NULL, buf);
  svg_axes(&p, "EM iterations done (0: the k-means++ start)",
           "mean log-likelihood per row");
  svg_polyline(&p, it, ll, n, 0, "stroke=\"#1f77b4\" stroke-width=\"2\"");
  for (size_t i = 0; i < n; i++)
    svg_circle(&p, it[i], ll[i], 4.5,
               "fill=\"#1f77b4\" stroke=\"white\" stroke-width=\"1.5\"");
  const char *halo = "fill=\"#1f77b4\" stroke=\"white\" stroke-width=\"4\" "
                     "paint-order=\"stroke\"";
  snprintf(buf, sizeof buf, "start %.4f", ll[0]);
  svg_text(out, svg_px(&p, 0) + 10, svg_py(&p, ll[0]) + 4, "start", 12, halo,
           buf);
  snprintf(buf, sizeof buf, "final %.4f", final_ll);
  svg_text(out, svg_px(&p, (double)(n - 1)), svg_py(&p, final_ll) - 12,
           "middle", 12, halo, buf);
  svg_end(out);
  demo_close(out, tmp, path);
  free(it);
  free(ll);
}

/* ---- the example -----------------------------------------------------------
 */

static size_t nearest(const double mu[2], const double mu_true[2][2]) {
  return hypot(mu[0] - mu_true[0][0], mu[1] - mu_true[0][1]) <=
                 hypot(mu[0] - mu_true[1][0], mu[1] - mu_true[1][1])
             ? 0
             : 1;
}

size_t demo_em(gmle_context *ctx, const double *x, size_t n,
               const double mu_true[2][2], const char *fit_path,
               const char *loglik_path) {
  gmle_model *start = NULL, *fitted = NULL;
  fit(ctx, x, n, &start, &fitted);
  mixture2 s, f;
  read_mixture(ctx, start, &s);
  read_mixture(ctx, fitted, &f);
  gmle_em_report r;
  demo_check(ctx, gmle_model_em_report(fitted, &r), "the EM report");
  const double start_ll = mean_loglik(ctx, start, r.n_rows);
  const double final_ll = mean_loglik(ctx, fitted, r.n_rows);
  gmle_em_options defaults;
  gmle_em_options_init(&defaults);

  printf("\nUnsupervised: the same %zu points without their labels, a mixture "
         "of %d full\nGaussians fitted by EM (seed %llu) from its k-means++ "
         "start:\n",
         n, EM_K, (unsigned long long)em_seed);
  printf("  start        weights [%.4f, %.4f]  means [%.4f, %.4f] and "
         "[%.4f, %.4f]\n",
         s.weight[0], s.weight[1], s.mean[0][0], s.mean[0][1], s.mean[1][0],
         s.mean[1][1]);
  for (size_t k = 0; k < EM_K; k++) {
    const size_t c = nearest(f.mean[k], mu_true);
    printf("  component %zu  weight %.4f  mean [%7.4f, %7.4f]   nearest true "
           "mean [%5.2f, %5.2f]\n",
           k, f.weight[k], f.mean[k][0], f.mean[k][1], mu_true[c][0],
           mu_true[c][1]);
  }
  printf("  %zu EM iterations, %s (|change| < %g); mean log-likelihood per "
         "row\n  %.4f at the start, %.4f fitted\n",
         r.n_iter, r.converged ? "converged" : "not converged", defaults.tol,
         start_ll, final_ll);

  picture_fit(x, n, mu_true, &s, &f, r.n_iter, final_ll, fit_path);
  picture_loglik(&r, final_ll, defaults.tol, loglik_path);
  const size_t n_iter = r.n_iter;
  gmle_model_free(fitted);
  gmle_model_free(start);
  return n_iter;
}
