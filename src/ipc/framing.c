/* framing.c - frame header encoding and parsing (see framing.h). */
#include "ipc/framing.h"

#include <errno.h>

#include "internal.h"

size_t mproc__frame_encode(unsigned char out[MPROC__FRAME_HDR_MAX], uint64_t len) {
  if (len < 0xFFFFFFFFu) {
    for (int i = 0; i < 4; i++) out[i] = (unsigned char)(len >> (24 - 8 * i));
    return 4;
  }
  out[0] = out[1] = out[2] = out[3] = 0xFF;
  for (int i = 0; i < 8; i++) out[4 + i] = (unsigned char)(len >> (56 - 8 * i));
  return 12;
}

int mproc__frame_parse(const unsigned char *b, size_t n, uint64_t max, uint64_t *len,
                       size_t *hdr_len) {
  if (n < 4) {
    *hdr_len = 4;
    return -EAGAIN;
  }
  uint64_t v = ((uint64_t)b[0] << 24) | ((uint64_t)b[1] << 16) | ((uint64_t)b[2] << 8) | b[3];
  size_t h = 4;
  if (v == 0xFFFFFFFFu) {
    if (n < 12) {
      *hdr_len = 12;
      return -EAGAIN;
    }
    v = 0;
    for (int i = 0; i < 8; i++) v = (v << 8) | b[4 + i];
    if (v < 0xFFFFFFFFu) return MPROC_EPROTO;
    h = 12;
  }
  if (max && v > max) return -EMSGSIZE;
  *len = v;
  *hdr_len = h;
  return 0;
}
