/* svg.h -- a tiny hand-written SVG writer for the demo's pictures. */
#ifndef GMLE_CLI_SVG_H
#define GMLE_CLI_SVG_H

#include <stddef.h>
#include <stdio.h>

/* A plot: data coordinates [x0,x1] x [y0,y1] mapped onto a pixel box. */
typedef struct svg_plot {
  FILE *f;
  double x0, x1, y0, y1;  /* data range */
  double left, top, w, h; /* plot box in pixels */
} svg_plot;

double svg_px(const svg_plot *p, double x);
double svg_py(const svg_plot *p, double y);

void svg_begin(FILE *f, int width, int height, const char *title);
void svg_end(FILE *f);
/* Frame, ticks, tick labels and axis names; a clip path with id "plot". */
void svg_axes(const svg_plot *p, const char *xlabel, const char *ylabel);
/* A polyline through n data points (x[i], y[i]); style is the attribute
 * text (stroke etc.). Clipped to the plot box. */
void svg_polyline(const svg_plot *p, const double *x, const double *y, size_t n,
                  int closed, const char *style);
void svg_circle(const svg_plot *p, double x, double y, double r,
                const char *style);
/* Text at pixel position, escaped. */
void svg_text(FILE *f, double px, double py, const char *anchor, int size,
              const char *style, const char *text);
/* A "nice" tick step for a range (1, 2 or 5 times a power of ten). */
double svg_tick_step(double range, int approx_ticks);

#endif
