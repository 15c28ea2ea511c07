/* cl_score.c -- bulk scoring on an OpenCL device.
 *
 * prepare_model uploads a model's scoring parameters once, at its first
 * score on this context (the core keeps the copy in the model): the means, the
 * inverse Cholesky factors of the host's scoring cache (full: one per
 * non-empty class; tied: one; padded to a multiple of JB rows) or the
 * inverse standard deviations (diag, spherical), lconst_c = -1/2 (D log 2pi
 * + log|Sigma_c|) (-inf for empty classes) and the log priors. score then
 * runs, per sub-batch of rows, one kernel for the n x C log-likelihoods in
 * float64 (rows in blocks of VR, transposed by the host so that a vector
 * holds one feature of VR rows; q = |L^-1 (x - mu)|^2 with x - mu formed
 * per class in float64) and one that makes the requested output of them
 * (joint, log-posterior, label, density; logsumexp as src/linalg.c), so
 * that only the output crosses back, read straight into the caller's
 * buffer. Sub-batches alternate between two staging slots: the packing and
 * copy of sub-batch i+1 overlap the kernels of sub-batch i. Devices
 * without cl_khr_fp64 answer GMLE_E_UNSUPPORTED and the core scores on
 * the host instead (src/score.c backend_score). Out of device
 * memory, sub-batches are halved and the unfinished rows retried; any
 * other failure of queued work marks the context lost.
 */
#include "cl_internal.h"

#include <math.h>
#include <string.h>

#define CL_MODEL_MAGIC 0x676d6c65636c6d64ULL /* "gmleclmd" */

typedef struct cl_model {
  uint64_t magic;
  const gmle__cl_state *owner;
  int full;      /* full or tied: inverse factors; else 1 / std */
  size_t jb, dj; /* full: outputs per pass, rows of each padded factor */
  cl_mem mu, fac, fidx, lconst, lprior;
} cl_model;

static void model_release(cl_model *cm) {
  if (!cm)
    return;
  cl_mem *bufs[5] = {&cm->mu, &cm->fac, &cm->fidx, &cm->lconst, &cm->lprior};
  for (int i = 0; i < 5; i++)
    if (*bufs[i])
      clReleaseMemObject(*bufs[i]);
  cm->magic = 0;
  gmle__free(cm);
}

/* The model's device copy made on this context, or NULL. */
static const cl_model *model_of(const gmle_context *ctx, const void *data) {
  const cl_model *cm = data;
  if (cm && cm->magic == CL_MODEL_MAGIC && cm->owner == ctx->bstate)
    return cm;
  return NULL;
}

static gmle_status upload(gmle_context *ctx, const void *host, size_t bytes,
                          const char *what, cl_mem *out) {
  gmle__cl_state *s = gmle__cl_state_of(ctx);
  cl_int e = CL_SUCCESS;
  double dummy = 0;
  *out = clCreateBuffer(s->context, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                        bytes ? bytes : sizeof dummy,
                        bytes ? (void *)(uintptr_t)host : &dummy, &e);
  if (e != CL_SUCCESS) {
    *out = NULL;
    return gmle__cl_fail(ctx, e, "clCreateBuffer",
                         "%zu bytes of model parameters (%s)", bytes, what);
  }
  return GMLE_OK;
}

/* Outputs per pass of the full kernel, and rows per vector. */
static size_t jb_of(const gmle__cl_state *s) { return s->is_cpu ? 8 : 4; }
static size_t vr_of(const gmle__cl_state *s) { return s->is_cpu ? 8 : 4; }

static gmle_status model_build(gmle_context *ctx, const gmle_model *m,
                               cl_model **out) {
  const gmle__cl_state *s = gmle__cl_state_of(ctx);
  const gmle__score_cache *sc = m->score_cache;
  const size_t C = m->n_classes, D = m->dim;
  *out = NULL;
  GMLE_RETURN_IF(!sc, ctx, GMLE_E_INTERNAL,
                 "OpenCL score: the model has no host scoring cache");
  const int full = m->cov == GMLE_COV_FULL || m->cov == GMLE_COV_TIED;
  const size_t jb = jb_of(s), dj = (D + jb - 1) / jb * jb;
  /* Factors: full, one padded inverse per non-empty class; tied, one;
   * diag and spherical, C x D inverse standard deviations. */
  const size_t nfac = m->cov == GMLE_COV_FULL   ? sc->n_active
                      : m->cov == GMLE_COV_TIED ? (sc->n_active > 0)
                                                : 0;
  size_t fac_len = full ? nfac * dj * D : C * D;
  cl_model *cm = gmle__calloc(1, sizeof *cm);
  double *lconst = gmle__malloc(C * sizeof(double));
  uint32_t *fidx = gmle__calloc(C, sizeof(uint32_t));
  double *fac = gmle__calloc(fac_len ? fac_len : 1, sizeof(double));
  gmle_status st = GMLE_OK;
  if (!cm || !lconst || !fidx || !fac)
    st = gmle__error(ctx, GMLE_E_OUT_OF_MEMORY,
                     "OpenCL score: out of memory preparing the model (%zu "
                     "classes x %zu features)",
                     C, D);
  if (st == GMLE_OK) {
    cm->magic = CL_MODEL_MAGIC;
    cm->owner = ctx->bstate;
    cm->full = full;
    cm->jb = jb;
    cm->dj = dj;
    for (size_t c = 0, a = 0; c < C; c++) {
      lconst[c] = m->empty[c]
                      ? -INFINITY
                      : -0.5 * ((double)D * GMLE__LOG_2PI + m->logdet[c]);
      if (!m->empty[c] && m->cov == GMLE_COV_FULL)
        fidx[c] = (uint32_t)a++;
      for (size_t j = 0; !full && j < D; j++)
        fac[c * D + j] = 1.0 / (m->cov == GMLE_COV_DIAG ? m->factor[c * D + j]
                                                        : m->factor[c]);
    }
    for (size_t f = 0; f < nfac; f++)
      memcpy(fac + f * dj * D, sc->w + f * D * D, D * D * sizeof(double));
    st = upload(ctx, m->means, C * D * sizeof(double), "means", &cm->mu);
    if (st == GMLE_OK)
      st = upload(ctx, fac, fac_len * sizeof(double),
                  full ? "inverse factors" : "inverse deviations", &cm->fac);
    if (st == GMLE_OK)
      st = upload(ctx, fidx, C * sizeof(uint32_t), "factor index", &cm->fidx);
    if (st == GMLE_OK)
      st = upload(ctx, lconst, C * sizeof(double), "constants", &cm->lconst);
    if (st == GMLE_OK)
      st = upload(ctx, m->log_priors, C * sizeof(double), "log priors",
                  &cm->lprior);
  }
  gmle__free(lconst);
  gmle__free(fidx);
  gmle__free(fac);
  if (st != GMLE_OK) {
    model_release(cm);
    return st;
  }
  *out = cm;
  return GMLE_OK;
}

gmle_status gmle__cl_prepare_model(gmle_context *ctx, const gmle_model *m,
                                   void **data) {
  gmle__cl_state *s = gmle__cl_state_of(ctx);
  *data = NULL;
  GMLE_TRY(gmle__cl_enter(ctx));
  if (!s->fp64)
    return GMLE_OK; /* scored on the host */
  cl_model *cm = NULL;
  GMLE_TRY(model_build(ctx, m, &cm));
  *data = cm;
  return GMLE_OK;
}

void gmle__cl_free_model(void *state, void *data) {
  (void)state;
  model_release(data);
}

/* ------------------------------------------------------------------------ */
/* Scoring                                                                  */
/* ------------------------------------------------------------------------ */

typedef struct sjob {
  int busy;
  size_t r0, r1;
  cl_event ev_read;
} sjob;

typedef struct splan {
  const gmle_model *m;
  const cl_model *cm;
  const gmle__batch *b;
  size_t D, C, isz, vr, out_vals, out_sz;
  cl_kernel k_ll, k_fin;
  void *out;
} splan;

static gmle_status score_launch(gmle_context *ctx, const splan *p, size_t r0,
                                size_t r1, int sl, sjob *jb, cl_int *err) {
  gmle__cl_state *s = gmle__cl_state_of(ctx);
  const size_t n = r1 - r0, D = p->D, C = p->C, vr = p->vr;
  const size_t nb = (n + vr - 1) / vr;
  const size_t in_bytes = nb * vr * D * p->isz;
  const size_t ll_bytes = n * C * sizeof(double);
  const size_t out_bytes = n * p->out_vals * p->out_sz;
  gmle_status st;
  *err = CL_SUCCESS;
  st = gmle__cl_devbuf_reserve(ctx, &s->dev_aux[sl], ll_bytes,
                               CL_MEM_READ_WRITE);
  if (st == GMLE_OK)
    st = gmle__cl_devbuf_reserve(ctx, &s->dev_out[sl], out_bytes,
                                 CL_MEM_WRITE_ONLY);
  void *ptr = NULL;
  if (st == GMLE_OK)
    st = gmle__cl_stage_begin(ctx, sl, in_bytes, &ptr);
  if (st != GMLE_OK) {
    *err = st == GMLE_E_DEVICE_OOM ? CL_MEM_OBJECT_ALLOCATION_FAILURE
                                   : CL_INVALID_VALUE;
    return st;
  }
  /* Blocks of vr rows, transposed: feature k of a block's rows is one
   * vector; rows past the end are zeros. */
  unsigned char *up = ptr;
  if (n % vr)
    memset(up + (nb - 1) * vr * D * p->isz, 0, vr * D * p->isz);
  if (p->isz == sizeof(double)) {
    const double *x = (const double *)p->b->x;
    double *xt = (double *)(void *)up;
    for (size_t r = 0; r < n; r++) {
      const double *src = x + (r0 + r) * p->b->row_stride;
      double *dst = xt + (r / vr) * D * vr + r % vr;
      for (size_t k = 0; k < D; k++)
        dst[k * vr] = src[k];
    }
  } else {
    const float *x = (const float *)p->b->x;
    float *xt = (float *)(void *)up;
    for (size_t r = 0; r < n; r++) {
      const float *src = x + (r0 + r) * p->b->row_stride;
      float *dst = xt + (r / vr) * D * vr + r % vr;
      for (size_t k = 0; k < D; k++)
        dst[k * vr] = src[k];
    }
  }
  cl_event ev_w = NULL;
  st = gmle__cl_stage_end(ctx, sl, in_bytes, &ev_w);
  if (st != GMLE_OK) {
    *err = st == GMLE_E_DEVICE_OOM ? CL_MEM_OBJECT_ALLOCATION_FAILURE
                                   : CL_INVALID_VALUE;
    return st;
  }
  const cl_uint nn = (cl_uint)n, cc = (cl_uint)C, nbb = (cl_uint)nb;
  cl_mem in = s->dev_in[sl].buf, ll = s->dev_aux[sl].buf;
  cl_mem ob = s->dev_out[sl].buf;
  cl_kernel k = p->k_ll;
  cl_uint a = 0;
  st = gmle__cl_arg(ctx, k, a++, sizeof in, &in);
  if (st == GMLE_OK)
    st = gmle__cl_arg(ctx, k, a++, sizeof nbb, &nbb);
  if (st == GMLE_OK)
    st = gmle__cl_arg(ctx, k, a++, sizeof nn, &nn);
  if (st == GMLE_OK)
    st = gmle__cl_arg(ctx, k, a++, sizeof(cl_mem), &p->cm->mu);
  if (st == GMLE_OK)
    st = gmle__cl_arg(ctx, k, a++, sizeof(cl_mem), &p->cm->fac);
  if (st == GMLE_OK && p->cm->full)
    st = gmle__cl_arg(ctx, k, a++, sizeof(cl_mem), &p->cm->fidx);
  if (st == GMLE_OK)
    st = gmle__cl_arg(ctx, k, a++, sizeof(cl_mem), &p->cm->lconst);
  if (st == GMLE_OK)
    st = gmle__cl_arg(ctx, k, a++, sizeof ll, &ll);
  if (st == GMLE_OK)
    st = gmle__cl_arg(ctx, k, a++, sizeof cc, &cc);
  k = p->k_fin;
  if (st == GMLE_OK)
    st = gmle__cl_arg(ctx, k, 0, sizeof ll, &ll);
  if (st == GMLE_OK)
    st = gmle__cl_arg(ctx, k, 1, sizeof nn, &nn);
  if (st == GMLE_OK)
    st = gmle__cl_arg(ctx, k, 2, sizeof cc, &cc);
  if (st == GMLE_OK)
    st = gmle__cl_arg(ctx, k, 3, sizeof(cl_mem), &p->cm->lprior);
  if (st == GMLE_OK)
    st = gmle__cl_arg(ctx, k, 4, sizeof ob, &ob);
  if (st != GMLE_OK) {
    gmle__cl_event_release(&ev_w);
    /* an out-of-resources failure may pass with a smaller sub-batch */
    *err =
        st == GMLE_E_DEVICE_OOM ? CL_OUT_OF_RESOURCES : CL_INVALID_KERNEL_ARGS;
    return st;
  }
  const size_t g[2] = {nb, C};
  cl_int e = clEnqueueNDRangeKernel(s->q_run, p->k_ll, 2, NULL, g, NULL, 1,
                                    &ev_w, NULL);
  gmle__cl_event_release(&ev_w);
  if (e == CL_SUCCESS) {
    size_t l1 = s->max_wg < 64 ? s->max_wg : 64;
    size_t g1 = (n + l1 - 1) / l1 * l1;
    e = clEnqueueNDRangeKernel(s->q_run, p->k_fin, 1, NULL, &g1, &l1, 0, NULL,
                               NULL);
  }
  if (e != CL_SUCCESS) {
    *err = e;
    return gmle__cl_fail(ctx, e, "clEnqueueNDRangeKernel",
                         "scoring %zu rows x %zu classes", n, C);
  }
  e = clEnqueueReadBuffer(s->q_run, ob, CL_FALSE, 0, out_bytes,
                          (char *)p->out + r0 * p->out_vals * p->out_sz, 0,
                          NULL, &jb->ev_read);
  if (e != CL_SUCCESS) {
    *err = e;
    return gmle__cl_fail(ctx, e, "clEnqueueReadBuffer", "%zu bytes of scores",
                         out_bytes);
  }
  clFlush(s->q_run);
  jb->busy = 1;
  jb->r0 = r0;
  jb->r1 = r1;
  return GMLE_OK;
}

static gmle_status score_run(gmle_context *ctx, const splan *p) {
  gmle__cl_state *s = gmle__cl_state_of(ctx);
  const size_t n = p->b->n_rows, grain = 64; /* rows */
  const size_t per_row =
      p->D * p->isz + p->C * sizeof(double) + p->out_vals * p->out_sz;
  size_t S = s->slot_budget / per_row;
  /* Two sub-batches at least, so that copy and compute overlap. */
  if (n >= 4 * grain && S >= n)
    S = (n + 1) / 2;
  S = S < grain ? grain : S / grain * grain;
  sjob jobs[2];
  memset(jobs, 0, sizeof jobs);
  size_t next = 0, done = 0;
  int turn = 0;
  while (done < n) {
    gmle_status st;
    cl_int err = CL_SUCCESS;
    if (next < n && !jobs[turn].busy) {
      const size_t r1 = n - next < S ? n : next + S;
      st = score_launch(ctx, p, next, r1, turn, &jobs[turn], &err);
      if (st == GMLE_OK) {
        next = r1;
        turn ^= 1;
        continue;
      }
    } else {
      sjob *jb = jobs[0].busy && jobs[0].r0 == done ? &jobs[0] : &jobs[1];
      st = gmle__cl_wait(ctx, jb->ev_read, "score (kernel or copy)", &err);
      if (st == GMLE_OK) {
        gmle__cl_event_release(&jb->ev_read);
        jb->busy = 0;
        done = jb->r1;
        continue;
      }
    }
    gmle__cl_drain(s);
    for (int i = 0; i < 2; i++) {
      gmle__cl_event_release(&jobs[i].ev_read);
      jobs[i].busy = 0;
    }
    if (!gmle__cl_is_oom(err) || S <= grain) {
      if (st == GMLE_E_DEVICE_OOM) {
        char why[GMLE__ERR_LEN];
        snprintf(why, sizeof why, "%s", gmle_context_error(ctx));
        gmle__error(ctx, st,
                    "OpenCL score: out of device memory even for %zu rows x "
                    "%zu classes after splitting the batch (%s)",
                    S, p->C, why);
      }
      gmle__cl_release_slots(s); /* nothing half-done survives the call */
      return st;
    }
    /* Out of device memory: retry the unfinished rows in halves. */
    S = S / 2 < grain ? grain : S / 2 / grain * grain;
    gmle__cl_release_slots(s);
    gmle__clear_error(ctx);
    next = done;
    turn = 0;
  }
  return GMLE_OK;
}

gmle_status gmle__cl_score(gmle_context *ctx, const gmle_model *m,
                           const void *model_data, const gmle__batch *b,
                           gmle_output what, gmle_dtype out_dtype, void *out) {
  gmle__cl_state *s = gmle__cl_state_of(ctx);
  GMLE_TRY(gmle__cl_enter(ctx));
  if (b->n_rows == 0)
    return GMLE_OK;
  GMLE_RETURN_IF(!s->fp64, ctx, GMLE_E_UNSUPPORTED,
                 "OpenCL score: the device has no cl_khr_fp64");
  GMLE_RETURN_IF(m->n_classes > UINT32_MAX || b->n_rows > UINT32_MAX, ctx,
                 GMLE_E_TOO_LARGE,
                 "OpenCL score: %zu classes x %zu rows exceed 32-bit counts",
                 m->n_classes, b->n_rows);
  const cl_model *cm = model_of(ctx, model_data);
  GMLE_RETURN_IF(!cm, ctx, GMLE_E_INTERNAL,
                 "OpenCL score: the model was not uploaded to this context");
  splan p;
  memset(&p, 0, sizeof p);
  p.m = m;
  p.cm = cm;
  p.b = b;
  p.D = m->dim;
  p.C = m->n_classes;
  p.isz = gmle__dtype_size(b->dtype);
  p.vr = vr_of(s);
  p.out_vals =
      what == GMLE_OUT_LABEL || what == GMLE_OUT_DENSITY ? 1 : m->n_classes;
  p.out_sz =
      what == GMLE_OUT_LABEL ? sizeof(int32_t) : gmle__dtype_size(out_dtype);
  p.out = out;
  char opts[192];
  snprintf(opts, sizeof opts,
           "-cl-std=CL1.2 -DIN_T=%s -DD=%zu -DVR=%zu -DJB=%zu -DDJ=%zu",
           b->dtype == GMLE_F64 ? "double" : "float", p.D, p.vr, cm->jb,
           cm->dj);
  gmle_status st =
      gmle__cl_kernel(ctx, GMLE__CL_SRC_SCORE, opts,
                      cm->full ? "score_full" : "score_diag", &p.k_ll);
  if (st == GMLE_OK) {
    snprintf(opts, sizeof opts, "-cl-std=CL1.2 -DKIND=%d -DOUT_T=%s", (int)what,
             what == GMLE_OUT_LABEL  ? "int"
             : out_dtype == GMLE_F32 ? "float"
                                     : "double");
    st = gmle__cl_kernel(ctx, GMLE__CL_SRC_SCORE, opts, "score_finish",
                         &p.k_fin);
  }
  if (st == GMLE_OK) /* work is queued: other than OOM, a failure loses */
    st = gmle__cl_lose(ctx, score_run(ctx, &p));
  return st;
}
