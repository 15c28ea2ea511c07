/* cu_classify.c -- error kinds and call sites of the CUDA module (see
 * cu_classify.h). */
#include "cu_classify.h"

#include <string.h>

gmle__cu_kind gmle__cu_error_kind(int e) {
  switch (e) {
  case 2: /* cudaErrorMemoryAllocation */
    return GMLE__CU_OOM;
  case 46:  /* cudaErrorDevicesUnavailable */
  case 214: /* cudaErrorECCUncorrectable */
  case 220: /* cudaErrorNvlinkUncorrectable */
  case 700: /* cudaErrorIllegalAddress */
  case 702: /* cudaErrorLaunchTimeout */
  case 709: /* cudaErrorContextIsDestroyed */
  case 710: /* cudaErrorAssert */
  case 714: /* cudaErrorHardwareStackError */
  case 715: /* cudaErrorIllegalInstruction */
  case 716: /* cudaErrorMisalignedAddress */
  case 717: /* cudaErrorInvalidAddressSpace */
  case 718: /* cudaErrorInvalidPc */
  case 719: /* cudaErrorLaunchFailure */
  case 911: /* cudaErrorExternalDevice */
  case 999: /* cudaErrorUnknown */
    return GMLE__CU_STICKY;
  default:
    return GMLE__CU_TRANSIENT;
  }
}

static int starts(const char *s, const char *prefix) {
  return strncmp(s, prefix, strlen(prefix)) == 0;
}

unsigned gmle__cu_site_of(const char *expr) {
  while (*expr == ' ' || *expr == '(')
    expr++;
  if (starts(expr, "cudaMemcpy") || starts(expr, "cudaMemset"))
    return GMLE__CU_SITE_COPY;
  if (starts(expr, "cudaStream") || starts(expr, "cudaEvent") ||
      starts(expr, "cudaDeviceSynchronize"))
    return GMLE__CU_SITE_SYNC;
  if (starts(expr, "cudaMalloc") || starts(expr, "cudaHostAlloc"))
    return GMLE__CU_SITE_ALLOC;
  if (starts(expr, "cublas"))
    return GMLE__CU_SITE_BLAS;
  return GMLE__CU_SITE_KERNEL;
}
