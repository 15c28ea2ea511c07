/*
 * byte_order.h -- the one byte-order helper of the file formats: the host's
 * order and unaligned little-endian loads and stores (.npy, zip, model,
 * statistics and Kaldi files). Not installed.
 */
#ifndef GMLE_BYTE_ORDER_H
#define GMLE_BYTE_ORDER_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* 1 on a big-endian host. */
static inline int gmle__host_big_endian(void) {
  const uint16_t one = 1;
  unsigned char b[2];
  memcpy(b, &one, 2);
  return b[0] == 0;
}

/* Little- and big-endian loads and stores, unaligned-safe. */
static inline uint16_t gmle__ld_le16(const unsigned char *p) {
  return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t gmle__ld_le32(const unsigned char *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
         ((uint32_t)p[3] << 24);
}
static inline uint64_t gmle__ld_le64(const unsigned char *p) {
  return (uint64_t)gmle__ld_le32(p) | ((uint64_t)gmle__ld_le32(p + 4) << 32);
}
static inline void gmle__st_le16(unsigned char *p, uint16_t v) {
  p[0] = (unsigned char)(v & 0xff);
  p[1] = (unsigned char)(v >> 8);
}
static inline void gmle__st_le32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++)
    p[i] = (unsigned char)((v >> (8 * i)) & 0xff);
}
static inline void gmle__st_le64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++)
    p[i] = (unsigned char)((v >> (8 * i)) & 0xff);
}

/* An unsigned integer of `size` bytes (1 to 8) stored in either byte order
 * (big: 1 for big endian), as .npy elements are. */
static inline uint64_t gmle__ld_uint(const unsigned char *p, size_t size,
                                     int big) {
  uint64_t v = 0;
  if (big)
    for (size_t i = 0; i < size; i++)
      v = (v << 8) | p[i];
  else
    for (size_t i = size; i-- > 0;)
      v = (v << 8) | p[i];
  return v;
}

#endif /* GMLE_BYTE_ORDER_H */
