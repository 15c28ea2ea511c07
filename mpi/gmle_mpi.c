/* gmle_mpi.c -- the communicator handle, agreements, and every rank's
 * statistics combined on every rank as the bytes of their files
 * (include/gmle_mpi.h). */
#include "gmle_io.h"
#include "mpi_internal.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct gmle_mpi {
  MPI_Comm comm;
  int rank, size;
  gmle_status failed; /* GMLE_OK until an agreement fails */
  int failed_rank;    /* -1 */
  int *statuses;      /* [size], the last agreement */
  char err[512];
};

/* One MPI call moves at most this many bytes (INT_MAX is MPI's limit). */
static size_t max_message = (size_t)1 << 30;

void gmle_mpi__set_max_message(size_t bytes) {
  max_message = bytes ? bytes : (size_t)1 << 30;
}

gmle_status gmle_mpi__fail(gmle_mpi *h, const char *call, int rc) {
  char why[MPI_MAX_ERROR_STRING] = "";
  int len = 0;
  MPI_Error_string(rc, why, &len);
  snprintf(h->err, sizeof h->err, "rank %d of %d: %s failed: %s", h->rank,
           h->size, call, why);
  h->failed = GMLE_E_DEVICE;
  h->failed_rank = h->rank;
  return h->failed;
}

gmle_status gmle_mpi_create(MPI_Comm comm, gmle_mpi **out) {
  if (!out)
    return GMLE_E_INVALID_ARG;
  *out = NULL;
  gmle_mpi *h = calloc(1, sizeof *h);
  if (!h)
    return GMLE_E_OUT_OF_MEMORY;
  h->failed_rank = -1;
  int rc = MPI_Comm_dup(comm, &h->comm);
  if (rc != MPI_SUCCESS) {
    free(h);
    return GMLE_E_DEVICE;
  }
  /* Errors come back as return codes, to be reported as statuses. */
  MPI_Comm_set_errhandler(h->comm, MPI_ERRORS_RETURN);
  MPI_Comm_rank(h->comm, &h->rank);
  MPI_Comm_size(h->comm, &h->size);
  h->statuses = calloc((size_t)h->size, sizeof *h->statuses);
  if (!h->statuses) {
    gmle_mpi_free(h);
    return GMLE_E_OUT_OF_MEMORY;
  }
  *out = h;
  return GMLE_OK;
}

void gmle_mpi_free(gmle_mpi *h) {
  if (!h)
    return;
  if (h->comm != MPI_COMM_NULL)
    MPI_Comm_free(&h->comm);
  free(h->statuses);
  free(h);
}

int gmle_mpi_rank(const gmle_mpi *h) { return h ? h->rank : 0; }
int gmle_mpi_size(const gmle_mpi *h) { return h ? h->size : 1; }
MPI_Comm gmle_mpi_comm(const gmle_mpi *h) {
  return h ? h->comm : MPI_COMM_NULL;
}
const char *gmle_mpi_error(const gmle_mpi *h) { return h ? h->err : ""; }
int gmle_mpi_failed_rank(const gmle_mpi *h) { return h ? h->failed_rank : -1; }

gmle_status gmle_mpi_agree(gmle_mpi *h, gmle_status local) {
  if (!h)
    return GMLE_E_INVALID_ARG;
  if (h->failed != GMLE_OK)
    return h->failed;
  int mine = (int)local;
  int rc = MPI_Allgather(&mine, 1, MPI_INT, h->statuses, 1, MPI_INT, h->comm);
  if (rc != MPI_SUCCESS)
    return gmle_mpi__fail(h, "MPI_Allgather", rc);
  for (int r = 0; r < h->size; r++) {
    if (h->statuses[r] == GMLE_OK)
      continue;
    h->failed_rank = r;
    h->failed = local != GMLE_OK ? local : (gmle_status)h->statuses[r];
    snprintf(h->err, sizeof h->err, "rank %d of %d failed (%s)", r, h->size,
             gmle_status_string((gmle_status)h->statuses[r]));
    return h->failed;
  }
  return GMLE_OK;
}

/* ---- moving bytes ---------------------------------------------------------
 */

gmle_status gmle_mpi__bcast(gmle_mpi *h, int root, void *buf, size_t len) {
  unsigned char *p = buf;
  for (size_t done = 0; done < len;) {
    const size_t n = len - done < max_message ? len - done : max_message;
    int rc = MPI_Bcast(p + done, (int)n, MPI_BYTE, root, h->comm);
    if (rc != MPI_SUCCESS)
      return gmle_mpi__fail(h, "MPI_Bcast", rc);
    done += n;
  }
  return GMLE_OK;
}

/* Rank r's bytes to root (or to every rank), piece by piece: for messages
 * whose counts or offsets do not fit MPI's int. */
static gmle_status move_in_pieces(gmle_mpi *h, int root, const void *mine,
                                  unsigned char *all, const size_t *off) {
  for (int r = 0; r < h->size; r++) {
    const size_t len = off[r + 1] - off[r];
    if (root < 0) {
      if (r == h->rank && len)
        memcpy(all + off[r], mine, len);
      GMLE_MPI_TRY(gmle_mpi__bcast(h, r, all + off[r], len));
      continue;
    }
    for (size_t done = 0; done < len;) {
      const size_t n = len - done < max_message ? len - done : max_message;
      int rc = MPI_SUCCESS;
      if (r == root && h->rank == root)
        memcpy(all + off[r] + done, (const unsigned char *)mine + done, n);
      else if (h->rank == r)
        rc = MPI_Send((const unsigned char *)mine + done, (int)n, MPI_BYTE,
                      root, 0, h->comm);
      else if (h->rank == root)
        rc = MPI_Recv(all + off[r] + done, (int)n, MPI_BYTE, r, 0, h->comm,
                      MPI_STATUS_IGNORE);
      if (rc != MPI_SUCCESS)
        return gmle_mpi__fail(h, h->rank == r ? "MPI_Send" : "MPI_Recv", rc);
      done += n;
    }
  }
  return GMLE_OK;
}

/* The bytes with one MPI_Allgatherv (root -1) or MPI_Gatherv. */
static gmle_status move_at_once(gmle_mpi *h, int root, const void *mine,
                                size_t len, unsigned char *all,
                                const size_t *off) {
  int *counts = malloc(2 * (size_t)h->size * sizeof *counts);
  if (!counts)
    return GMLE_E_OUT_OF_MEMORY;
  int *displs = counts + h->size;
  for (int r = 0; r < h->size; r++) {
    counts[r] = (int)(off[r + 1] - off[r]);
    displs[r] = (int)off[r];
  }
  /* A rank with nothing to send still passes a valid pointer. */
  static const unsigned char none;
  const void *send = len ? mine : &none;
  int rc = root < 0 ? MPI_Allgatherv(send, (int)len, MPI_BYTE, all, counts,
                                     displs, MPI_BYTE, h->comm)
                    : MPI_Gatherv(send, (int)len, MPI_BYTE, all, counts, displs,
                                  MPI_BYTE, root, h->comm);
  free(counts);
  if (rc != MPI_SUCCESS)
    return gmle_mpi__fail(h, root < 0 ? "MPI_Allgatherv" : "MPI_Gatherv", rc);
  return GMLE_OK;
}

gmle_status gmle_mpi__gather(gmle_mpi *h, gmle_status local, int root,
                             const void *mine, size_t len, unsigned char **all,
                             size_t *off) {
  *all = NULL;
  uint64_t *lens = malloc((size_t)h->size * sizeof *lens);
  const gmle_status s0 = gmle_mpi_agree(h, local != GMLE_OK ? local
                                           : lens           ? GMLE_OK
                                                  : GMLE_E_OUT_OF_MEMORY);
  if (s0 != GMLE_OK) {
    free(lens);
    return s0;
  }
  uint64_t my_len = len;
  int rc =
      MPI_Allgather(&my_len, 1, MPI_UINT64_T, lens, 1, MPI_UINT64_T, h->comm);
  if (rc != MPI_SUCCESS) {
    free(lens);
    return gmle_mpi__fail(h, "MPI_Allgather", rc);
  }
  off[0] = 0;
  int fits = 1;
  for (int r = 0; r < h->size; r++) {
    off[r + 1] = off[r] + (size_t)lens[r];
    fits = fits && off[r + 1] <= max_message;
  }
  free(lens);
  const int receives = root < 0 || root == h->rank;
  gmle_status s = GMLE_OK;
  if (receives) {
    *all = malloc(off[h->size] ? off[h->size] : 1);
    if (!*all)
      s = GMLE_E_OUT_OF_MEMORY;
  }
  /* Every rank must know that every receiver has its buffer. */
  s = gmle_mpi_agree(h, s);
  if (s == GMLE_OK)
    s = fits ? move_at_once(h, root, mine, len, *all, off)
             : move_in_pieces(h, root, mine, *all, off);
  if (s != GMLE_OK) {
    free(*all);
    *all = NULL;
  }
  return s;
}

gmle_status gmle_mpi_allgather(gmle_mpi *h, gmle_status local, const void *mine,
                               size_t len, void **all, size_t *off) {
  if (!h)
    return GMLE_E_INVALID_ARG;
  if (!all || !off || (!mine && len))
    local = local != GMLE_OK ? local : GMLE_E_INVALID_ARG;
  unsigned char *bytes = NULL;
  size_t *o = off ? off : malloc(((size_t)h->size + 1) * sizeof *o);
  if (!o)
    local = local != GMLE_OK ? local : GMLE_E_OUT_OF_MEMORY;
  size_t one[2]; /* never written beyond: the agreement fails first */
  gmle_status s =
      gmle_mpi__gather(h, local, -1, mine, len, &bytes, o ? o : one);
  if (o != off)
    free(o);
  if (all)
    *all = bytes;
  else
    free(bytes);
  return s;
}

gmle_status gmle_mpi_bcast(gmle_mpi *h, gmle_status local, int root, void *buf,
                           size_t len) {
  if (!h)
    return GMLE_E_INVALID_ARG;
  GMLE_MPI_TRY(gmle_mpi_agree(
      h, local != GMLE_OK || (buf || !len) ? local : GMLE_E_INVALID_ARG));
  return gmle_mpi__bcast(h, root, buf, len);
}

/* ---- statistics ------------------------------------------------------------
 */

/* Statistics or EM statistics, so that both travel through one path. */
typedef struct stats_kind {
  gmle_status (*save_mem)(const void *st, void *buf, size_t cap, size_t *size);
  gmle_status (*load_mem)(gmle_context *ctx, const void *data, size_t size,
                          void **out);
  gmle_status (*merge)(void *dst, const void *src);
  void (*free)(void *st);
} stats_kind;

static gmle_status st_save(const void *st, void *buf, size_t cap,
                           size_t *size) {
  return gmle_stats_save_mem(st, buf, cap, size);
}
static gmle_status st_load(gmle_context *ctx, const void *data, size_t size,
                           void **out) {
  return gmle_stats_load_mem(ctx, data, size, (gmle_stats **)out);
}
static gmle_status st_merge(void *dst, const void *src) {
  return gmle_stats_merge(dst, src);
}
static void st_free(void *st) { gmle_stats_free(st); }

static gmle_status em_save(const void *st, void *buf, size_t cap,
                           size_t *size) {
  return gmle_em_stats_save_mem(st, buf, cap, size);
}
static gmle_status em_load(gmle_context *ctx, const void *data, size_t size,
                           void **out) {
  return gmle_em_stats_load_mem(ctx, data, size, (gmle_em_stats **)out);
}
static gmle_status em_merge(void *dst, const void *src) {
  return gmle_em_stats_merge(dst, src);
}
static void em_free(void *st) { gmle_em_stats_free(st); }

static const stats_kind class_stats = {st_save, st_load, st_merge, st_free};
static const stats_kind em_stats = {em_save, em_load, em_merge, em_free};

/* The local statistics as bytes (*bytes malloc'd). */
static gmle_status to_bytes(const stats_kind *k, const void *local,
                            unsigned char **bytes, size_t *len) {
  *bytes = NULL;
  *len = 0;
  if (!local)
    return GMLE_E_INVALID_ARG;
  GMLE_MPI_TRY(k->save_mem(local, NULL, 0, len));
  *bytes = malloc(*len ? *len : 1);
  if (!*bytes)
    return GMLE_E_OUT_OF_MEMORY;
  gmle_status s = k->save_mem(local, *bytes, *len, len);
  if (s != GMLE_OK) {
    free(*bytes);
    *bytes = NULL;
  }
  return s;
}

/* Every rank's statistics from their bytes, merged in rank order. */
static gmle_status merge_in_order(const stats_kind *k, gmle_context *ctx,
                                  int size, const unsigned char *all,
                                  const size_t *off, void **out) {
  void *acc = NULL;
  gmle_status s = GMLE_OK;
  for (int r = 0; r < size && s == GMLE_OK; r++) {
    void *st = NULL;
    s = k->load_mem(ctx, all + off[r], off[r + 1] - off[r], &st);
    if (s == GMLE_OK && !acc) {
      acc = st;
      continue;
    }
    if (s == GMLE_OK)
      s = k->merge(acc, st);
    k->free(st);
  }
  if (s != GMLE_OK) {
    k->free(acc);
    return s;
  }
  *out = acc;
  return GMLE_OK;
}

static gmle_status allreduce(gmle_mpi *h, const stats_kind *k,
                             gmle_context *ctx, const void *local, void **out) {
  *out = NULL;
  unsigned char *mine = NULL, *all = NULL;
  size_t len = 0;
  gmle_status s = to_bytes(k, local, &mine, &len);
  size_t *off = malloc(((size_t)h->size + 1) * sizeof *off);
  if (s == GMLE_OK && !off)
    s = GMLE_E_OUT_OF_MEMORY;
  s = off ? gmle_mpi__gather(h, s, -1, mine, len, &all, off)
          : gmle_mpi_agree(h, s);
  free(mine);
  if (s == GMLE_OK)
    s = merge_in_order(k, ctx, h->size, all, off, out);
  free(all);
  free(off);
  return s;
}

gmle_status gmle_mpi_stats_allreduce(gmle_mpi *h, gmle_context *ctx,
                                     const gmle_stats *local,
                                     gmle_stats **out) {
  if (!h || !ctx || !out)
    return GMLE_E_INVALID_ARG;
  void *o = NULL;
  gmle_status s = allreduce(h, &class_stats, ctx, local, &o);
  *out = o;
  return s;
}

gmle_status gmle_mpi_em_stats_allreduce(gmle_mpi *h, gmle_context *ctx,
                                        const gmle_em_stats *local,
                                        gmle_em_stats **out) {
  if (!h || !ctx || !out)
    return GMLE_E_INVALID_ARG;
  void *o = NULL;
  gmle_status s = allreduce(h, &em_stats, ctx, local, &o);
  *out = o;
  return s;
}

/* ---- sums ------------------------------------------------------------------
 */

gmle_status gmle_mpi_sum(gmle_mpi *h, double *v, size_t n) {
  if (!h || (!v && n))
    return GMLE_E_INVALID_ARG;
  size_t *off = malloc(((size_t)h->size + 1) * sizeof *off);
  unsigned char *all = NULL;
  gmle_status s =
      off ? gmle_mpi__gather(h, GMLE_OK, -1, v, n * sizeof *v, &all, off)
          : gmle_mpi_agree(h, GMLE_E_OUT_OF_MEMORY);
  if (s == GMLE_OK) {
    for (size_t i = 0; i < n; i++) {
      double total = 0;
      for (int r = 0; r < h->size; r++) {
        double x;
        memcpy(&x, all + off[r] + i * sizeof x, sizeof x);
        total += x;
      }
      v[i] = total;
    }
  }
  free(all);
  free(off);
  return s;
}

gmle_status gmle_mpi_sum_u64(gmle_mpi *h, uint64_t *v, size_t n) {
  if (!h || (!v && n))
    return GMLE_E_INVALID_ARG;
  GMLE_MPI_TRY(gmle_mpi_agree(h, GMLE_OK));
  const size_t piece = max_message / sizeof *v;
  for (size_t done = 0; done < n;) {
    const size_t k = n - done < piece ? n - done : piece;
    int rc = MPI_Allreduce(MPI_IN_PLACE, v + done, (int)k, MPI_UINT64_T,
                           MPI_SUM, h->comm);
    if (rc != MPI_SUCCESS)
      return gmle_mpi__fail(h, "MPI_Allreduce", rc);
    done += k;
  }
  return GMLE_OK;
}
