/* demo.h -- what the two halves of gmle demo share: the pictures' files and
 * shapes (demo.c) and the EM example (demo_em.c). */
#ifndef GMLE_CLI_DEMO_H
#define GMLE_CLI_DEMO_H

#include "cli.h"
#include "svg.h"

/* cli_fail unless s is GMLE_OK. */
void demo_check(gmle_context *ctx, gmle_status s, const char *what);

/* Open PATH.tmp for writing; demo_close renames it into place. Both exit
 * (CLI_EXIT_FILE) on failure, leaving no file behind. */
FILE *demo_open(const char *path, char **tmp);
void demo_close(FILE *f, char *tmp, const char *path);

/* A square view (data range) around the n 2-D points x, padded. */
void demo_square_view(const double *x, size_t n, svg_plot *p);
/* The k-sigma ellipse of N(mu, S), S a 2 x 2 covariance (row-major). */
void demo_ellipse(const svg_plot *p, const double mu[2], const double S[4],
                  double k, const char *style);
/* A black 12-pixel cross centred on the data point (x, y). */
void demo_cross(const svg_plot *p, double x, double y);

/* A legend's frame; its entries are 18 pixels apart. An entry at pixel
 * (x, y): a line sample drawn with `style`, or a dot of colour `fill`, from
 * x to x + 16 at height y, and the text from x + 22. */
void demo_legend_box(FILE *f, double x, double y, double w, double h);
void demo_legend_line(FILE *f, double x, double y, const char *style,
                      const char *text);
void demo_legend_dot(FILE *f, double x, double y, const char *fill,
                     const char *text);

/* The EM example: the n points x (2-D) without labels, a two-component
 * full mixture fitted by gmle_em_fit from its k-means++ start, compared
 * with the true class means; prints its lines on stdout, writes the two
 * pictures and returns the number of EM iterations. */
size_t demo_em(gmle_context *ctx, const double *x, size_t n,
               const double mu_true[2][2], const char *fit_path,
               const char *loglik_path);

#endif
