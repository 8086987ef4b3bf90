/*
 * wire.h - the manager's binary message format (see docs/manager.md).
 *
 * A message (one transport frame) is a 16-byte header and nfields fields:
 *
 *   header: u8 version (1) | u8 kind (1 request, 2 reply) | u16 op |
 *           u32 id (echoed in the reply) | u32 nfields | u32 payload bytes
 *   field:  u8 type (1 bytes, 2 i64, 3 f64, 4 name) | u8 0 | u16 0 |
 *           u32 len | len bytes
 *
 * All integers little-endian. i64/f64 fields have len 8; names 1..255 bytes
 * without NUL. A reply's first field is the i64 status (0 or a negative mproc
 * error code), then the op's results.
 *
 * The decoder is the one place that reads untrusted bytes: it checks every
 * length against the buffer and the limits before touching data, never
 * allocates more than the message's own size, and rejects anything odd with
 * MPROC_EPROTO. It is the libFuzzer target (fuzz/fuzz_manager_wire.c).
 */
#ifndef MPROC_MANAGER_WIRE_H
#define MPROC_MANAGER_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "shared/remote.h"

#define MPROC__WIRE_VERSION 1
#define MPROC__WIRE_HDR 16
#define MPROC__WIRE_FHDR 8
#define MPROC__WIRE_REQUEST 1
#define MPROC__WIRE_REPLY 2
#define MPROC__WIRE_MAX_FIELDS (1u << 20)

/* Manager-level ops (container ops are in shared/remote.h). */
enum mproc__mop {
  MPROC__OP_PING = 0x01,
  MPROC__OP_OPEN = 0x02,     /* kind:i64 name:name param:i64 -> handle:i64 */
  MPROC__OP_REMOVE = 0x03,   /* name:name */
  MPROC__OP_SHUTDOWN = 0x04,
  MPROC__OP_CALL = 0x05,     /* name:name arg:bytes -> bytes */
  MPROC__OP_QUEUE_PUT = 0x40,  /* h data:bytes timeout:f64 */
  MPROC__OP_QUEUE_GET = 0x41,  /* h timeout:f64 -> bytes */
  MPROC__OP_QUEUE_SIZE = 0x42, /* h -> i64 */
  MPROC__OP_LOCK_ACQUIRE = 0x50, /* h timeout:f64 */
  MPROC__OP_LOCK_RELEASE = 0x51, /* h */
  MPROC__OP_EVENT_SET = 0x60,
  MPROC__OP_EVENT_CLEAR = 0x61,
  MPROC__OP_EVENT_IS_SET = 0x62, /* -> i64 */
  MPROC__OP_EVENT_WAIT = 0x63,   /* h timeout:f64 */
  MPROC__OP_VALUE_GET = 0x70,    /* -> bytes */
  MPROC__OP_VALUE_SET = 0x71     /* h data:bytes */
};

/* A decoded message. Fields point into the caller's buffer. */
typedef struct mproc__msg {
  uint8_t kind;     /* MPROC__WIRE_REQUEST / REPLY */
  uint16_t op;      /* operation */
  uint32_t id;      /* request id */
  uint32_t nf;      /* fields */
  mproc__rfield *f; /* nf fields (malloc, caller frees) */
} mproc__msg;

/* Size of the encoding of nf fields (header included). */
size_t mproc__wire_size(const mproc__rfield *f, uint32_t nf);
/* Encode into buf (wire_size bytes). */
void mproc__wire_encode(void *buf, uint8_t kind, uint16_t op, uint32_t id,
                        const mproc__rfield *f, uint32_t nf);
/* Encode into a malloc()ed buffer. 0 or -ENOMEM/-EMSGSIZE. */
int mproc__wire_build(void **out, size_t *len, uint8_t kind, uint16_t op, uint32_t id,
                      const mproc__rfield *f, uint32_t nf);
/* Decode len bytes at buf. 0, MPROC_EPROTO (malformed), -ENOMEM.
 * m->f must be freed by the caller on success. */
int mproc__wire_decode(const void *buf, size_t len, mproc__msg *m);

#endif
