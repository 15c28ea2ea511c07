/*
 * cpu_state.h -- what the CPU backend keeps: its state (one per context,
 * and one more where the core uses it as the host fallback of a device
 * backend) and its per-model scoring data.
 */
#ifndef GMLE_CPU_STATE_H
#define GMLE_CPU_STATE_H

#include "internal.h"

/* The CPU backend's state: the scorer's scratch, grown by host/score_cpu.c
 * and kept across the batches of one scoring call (a call of many batches
 * allocates once), released when the core says the call ended (score_end). */
typedef struct gmle__cpu_state {
  void *scratch;
  size_t scratch_bytes;
} gmle__cpu_state;

/* host/score_pack.c: the CPU kernels' parameters for m, packed from its
 * scoring cache (m->score_cache) into *kp (64-byte aligned; free with
 * gmle__aligned_free). This is the CPU backend's model data. */
gmle_status gmle__cpu_score_pack(gmle_context *ctx, const gmle_model *m,
                                 double **kp);

/* host/score_cpu.c: score a batch with the CPU state cs (its scratch) and
 * the packed parameters kp (model_data). */
gmle_status gmle__cpu_score(gmle_context *ctx, gmle__cpu_state *cs,
                            const gmle_model *m, const void *model_data,
                            const gmle__batch *b, gmle_output what,
                            gmle_dtype out_dtype, void *out);

#endif /* GMLE_CPU_STATE_H */
