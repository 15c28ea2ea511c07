/*
 * isa.h -- which instruction-set kernels the CPU backend runs.
 *
 * The Gram (host/gram.c) and the scorer (host/score_cpu.c) both pick their
 * kernel set here, so one override lowers both: tests and benchmarks use it
 * to run the portable and AVX2 kernels on an AVX-512 machine.
 */
#ifndef GMLE_ISA_H
#define GMLE_ISA_H

typedef enum gmle__isa_level {
  GMLE__ISA_GENERIC = 1, /* portable C */
  GMLE__ISA_AVX2 = 2,    /* AVX2 + FMA */
  GMLE__ISA_AVX512 = 3   /* AVX-512 F, DQ, VL + FMA */
} gmle__isa_level;

/* The best level the CPU runs, at most the override's. */
gmle__isa_level gmle__cpu_isa(void);

/* Test and benchmark hook (not thread safe): use at most `level` from now
 * on; 0 removes the limit. */
void gmle__cpu_isa_override(int level);

#endif
