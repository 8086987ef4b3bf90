/* wire.c - encode and decode manager messages (format in wire.h). */
#include "manager/wire.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void put32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void put64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t get32(const unsigned char *p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}
static uint64_t get64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}

static size_t field_len(const mproc__rfield *f) {
  return f->type == MPROC__F_I64 || f->type == MPROC__F_F64 ? 8 : f->len;
}

size_t mproc__wire_size(const mproc__rfield *f, uint32_t nf) {
  size_t n = MPROC__WIRE_HDR;
  for (uint32_t i = 0; i < nf; i++) n += MPROC__WIRE_FHDR + field_len(&f[i]);
  return n;
}

void mproc__wire_encode(void *buf, uint8_t kind, uint16_t op, uint32_t id,
                        const mproc__rfield *f, uint32_t nf) {
  unsigned char *p = buf;
  size_t total = mproc__wire_size(f, nf);
  p[0] = MPROC__WIRE_VERSION;
  p[1] = kind;
  p[2] = (unsigned char)op;
  p[3] = (unsigned char)(op >> 8);
  put32(p + 4, id);
  put32(p + 8, nf);
  put32(p + 12, (uint32_t)(total - MPROC__WIRE_HDR));
  p += MPROC__WIRE_HDR;
  for (uint32_t i = 0; i < nf; i++) {
    uint32_t len = (uint32_t)field_len(&f[i]);
    p[0] = (unsigned char)f[i].type;
    p[1] = p[2] = p[3] = 0;
    put32(p + 4, len);
    p += MPROC__WIRE_FHDR;
    if (f[i].type == MPROC__F_I64) {
      put64(p, (uint64_t)f[i].i);
    } else if (f[i].type == MPROC__F_F64) {
      uint64_t u;
      memcpy(&u, &f[i].f, 8);
      put64(p, u);
    } else if (len) {
      memcpy(p, f[i].p, len);
    }
    p += len;
  }
}

int mproc__wire_build(void **out, size_t *len, uint8_t kind, uint16_t op, uint32_t id,
                      const mproc__rfield *f, uint32_t nf) {
  if (nf > MPROC__WIRE_MAX_FIELDS) return -EMSGSIZE;
  size_t n = mproc__wire_size(f, nf);
  if (n - MPROC__WIRE_HDR > UINT32_MAX) return -EMSGSIZE;
  void *b = malloc(n);
  if (!b) return -ENOMEM;
  mproc__wire_encode(b, kind, op, id, f, nf);
  *out = b;
  *len = n;
  return 0;
}

int mproc__wire_decode(const void *buf, size_t len, mproc__msg *m) {
  const unsigned char *p = buf;
  if (!buf || len < MPROC__WIRE_HDR) return MPROC_EPROTO;
  if (p[0] != MPROC__WIRE_VERSION) return MPROC_EPROTO;
  if (p[1] != MPROC__WIRE_REQUEST && p[1] != MPROC__WIRE_REPLY) return MPROC_EPROTO;
  uint32_t nf = get32(p + 8), plen = get32(p + 12);
  if ((size_t)plen != len - MPROC__WIRE_HDR) return MPROC_EPROTO;
  if (nf > MPROC__WIRE_MAX_FIELDS || (size_t)nf * MPROC__WIRE_FHDR > plen) return MPROC_EPROTO;
  m->kind = p[1];
  m->op = (uint16_t)(p[2] | (p[3] << 8));
  m->id = get32(p + 4);
  m->nf = nf;
  m->f = calloc(nf ? nf : 1, sizeof *m->f);
  if (!m->f) return -ENOMEM;
  size_t off = MPROC__WIRE_HDR;
  for (uint32_t i = 0; i < nf; i++) {
    if (len - off < MPROC__WIRE_FHDR) goto bad;
    const unsigned char *h = p + off;
    uint32_t type = h[0], flen = get32(h + 4);
    if (h[1] || h[2] || h[3]) goto bad;
    off += MPROC__WIRE_FHDR;
    if ((size_t)flen > len - off) goto bad;
    mproc__rfield *f = &m->f[i];
    f->type = type;
    f->len = flen;
    switch (type) {
      case MPROC__F_BYTES:
        f->p = p + off;
        break;
      case MPROC__F_NAME:
        if (flen < 1 || flen > 255 || memchr(p + off, 0, flen)) goto bad;
        f->p = p + off;
        break;
      case MPROC__F_I64:
        if (flen != 8) goto bad;
        f->i = (int64_t)get64(p + off);
        break;
      case MPROC__F_F64: {
        if (flen != 8) goto bad;
        uint64_t u = get64(p + off);
        memcpy(&f->f, &u, 8);
        break;
      }
      default:
        goto bad;
    }
    off += flen;
  }
  if (off != len) goto bad;
  return 0;
bad:
  free(m->f);
  m->f = NULL;
  return MPROC_EPROTO;
}
