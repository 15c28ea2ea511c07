/* svg.c -- a tiny hand-written SVG writer for the demo's pictures. */
#include "svg.h"

#include <math.h>
#include <string.h>

double svg_px(const svg_plot *p, double x) {
  return p->left + (x - p->x0) / (p->x1 - p->x0) * p->w;
}

double svg_py(const svg_plot *p, double y) {
  return p->top + (p->y1 - y) / (p->y1 - p->y0) * p->h;
}

static void put_escaped(FILE *f, const char *s) {
  for (; *s; s++) {
    switch (*s) {
    case '&':
      fputs("&amp;", f);
      break;
    case '<':
      fputs("&lt;", f);
      break;
    case '>':
      fputs("&gt;", f);
      break;
    case '"':
      fputs("&quot;", f);
      break;
    default:
      fputc(*s, f);
    }
  }
}

void svg_begin(FILE *f, int width, int height, const char *title) {
  fprintf(f,
          "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
          "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
          "height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"Helvetica, "
          "Arial, sans-serif\">\n<title>",
          width, height, width, height);
  put_escaped(f, title);
  fprintf(f,
          "</title>\n<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" "
          "fill=\"white\"/>\n",
          width, height);
}

void svg_end(FILE *f) { fputs("</svg>\n", f); }

double svg_tick_step(double range, int approx_ticks) {
  if (!(range > 0))
    return 1;
  double raw = range / (approx_ticks > 0 ? approx_ticks : 5);
  double p10 = pow(10.0, floor(log10(raw)));
  double m = raw / p10;
  double step = m < 1.5 ? 1 : (m < 3.5 ? 2 : (m < 7.5 ? 5 : 10));
  return step * p10;
}

static void tick_label(double v, double step, char *buf, size_t n) {
  int dec = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
  if (fabs(v) < step * 1e-9)
    v = 0;
  if (v < 0) /* a real minus sign (U+2212) */
    snprintf(buf, n, "\xE2\x88\x92%.*f", dec, -v);
  else
    snprintf(buf, n, "%.*f", dec, v);
}

void svg_axes(const svg_plot *p, const char *xlabel, const char *ylabel) {
  FILE *f = p->f;
  fprintf(f,
          "<defs><clipPath id=\"plot\"><rect x=\"%.2f\" y=\"%.2f\" "
          "width=\"%.2f\" height=\"%.2f\"/></clipPath></defs>\n",
          p->left, p->top, p->w, p->h);
  fprintf(f, "<g stroke=\"#e4e4e4\" stroke-width=\"1\">\n");
  double sx = svg_tick_step(p->x1 - p->x0, 8);
  double sy = svg_tick_step(p->y1 - p->y0, 6);
  for (double v = ceil(p->x0 / sx) * sx; v <= p->x1 + 1e-9 * sx; v += sx)
    fprintf(f, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n",
            svg_px(p, v), p->top, svg_px(p, v), p->top + p->h);
  for (double v = ceil(p->y0 / sy) * sy; v <= p->y1 + 1e-9 * sy; v += sy)
    fprintf(f, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n",
            p->left, svg_py(p, v), p->left + p->w, svg_py(p, v));
  fprintf(f, "</g>\n");
  fprintf(f,
          "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" "
          "fill=\"none\" stroke=\"#333\" stroke-width=\"1\"/>\n",
          p->left, p->top, p->w, p->h);
  char buf[64];
  for (double v = ceil(p->x0 / sx) * sx; v <= p->x1 + 1e-9 * sx; v += sx) {
    tick_label(v, sx, buf, sizeof buf);
    fprintf(f,
            "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" "
            "stroke=\"#333\"/>\n",
            svg_px(p, v), p->top + p->h, svg_px(p, v), p->top + p->h + 5);
    svg_text(f, svg_px(p, v), p->top + p->h + 19, "middle", 12, NULL, buf);
  }
  for (double v = ceil(p->y0 / sy) * sy; v <= p->y1 + 1e-9 * sy; v += sy) {
    tick_label(v, sy, buf, sizeof buf);
    fprintf(f,
            "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" "
            "stroke=\"#333\"/>\n",
            p->left - 5, svg_py(p, v), p->left, svg_py(p, v));
    svg_text(f, p->left - 8, svg_py(p, v) + 4, "end", 12, NULL, buf);
  }
  svg_text(f, p->left + p->w / 2, p->top + p->h + 40, "middle", 14, NULL,
           xlabel);
  fprintf(f,
          "<text x=\"0\" y=\"0\" font-size=\"14\" text-anchor=\"middle\" "
          "transform=\"translate(%.2f %.2f) rotate(-90)\">",
          p->left - 58, p->top + p->h / 2);
  put_escaped(f, ylabel);
  fputs("</text>\n", f);
}

void svg_polyline(const svg_plot *p, const double *x, const double *y, size_t n,
                  int closed, const char *style) {
  FILE *f = p->f;
  fprintf(f, "<%s clip-path=\"url(#plot)\" fill=\"none\" %s points=\"",
          closed ? "polygon" : "polyline", style);
  for (size_t i = 0; i < n; i++)
    fprintf(f, "%s%.2f,%.2f", i ? " " : "", svg_px(p, x[i]), svg_py(p, y[i]));
  fputs("\"/>\n", f);
}

void svg_circle(const svg_plot *p, double x, double y, double r,
                const char *style) {
  fprintf(p->f, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"%.2f\" %s/>\n",
          svg_px(p, x), svg_py(p, y), r, style);
}

void svg_text(FILE *f, double px, double py, const char *anchor, int size,
              const char *style, const char *text) {
  fprintf(
      f, "<text x=\"%.2f\" y=\"%.2f\" font-size=\"%d\" text-anchor=\"%s\"%s%s>",
      px, py, size, anchor, style ? " " : "", style ? style : "");
  put_escaped(f, text);
  fputs("</text>\n", f);
}
