/* isa.c -- the instruction-set level of the CPU kernels (see isa.h). */
#include "isa.h"

static int override_level;

void gmle__cpu_isa_override(int level) { override_level = level; }

/* What the CPU has, from __builtin_cpu_supports. */
static gmle__isa_level supported(void) {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
  const int fma = __builtin_cpu_supports("fma");
  if (fma && __builtin_cpu_supports("avx512f") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
    return GMLE__ISA_AVX512;
  if (fma && __builtin_cpu_supports("avx2"))
    return GMLE__ISA_AVX2;
#endif
  return GMLE__ISA_GENERIC;
}

gmle__isa_level gmle__cpu_isa(void) {
  const gmle__isa_level have = supported();
  if (override_level > 0 && override_level < (int)have)
    return (gmle__isa_level)override_level;
  return have;
}
