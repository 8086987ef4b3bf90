/*
 * remote.h - how a container call reaches a manager-hosted container.
 *
 * DESIGN
 * mproc_dict_t / mproc_list_t / mproc_namespace_t handles are either heap
 * containers or process-local proxies for objects hosted by a manager
 * server. Both begin with a 32-bit magic, so every container call checks the
 * magic first and, for a proxy, forwards the call through mproc__remote_call.
 * The shared layer defines this interface (operations and argument fields);
 * the manager layer, which sits above, implements it and installs the
 * function pointer when it creates its first proxy. So the shared layer never
 * calls upward, and a program that never uses a manager links no manager
 * code path here.
 */
#ifndef MPROC_SHARED_REMOTE_H
#define MPROC_SHARED_REMOTE_H

#include <stddef.h>
#include <stdint.h>

#include "internal.h"

#define MPROC__PROXY_MAGIC MPROC__MAGIC('P', 'R', 'X', 'Y')

/* Kinds of proxy (also the manager's object types on the wire). */
enum mproc__obj_kind {
  MPROC__OBJ_DICT = 1,
  MPROC__OBJ_LIST = 2,
  MPROC__OBJ_NAMESPACE = 3,
  MPROC__OBJ_QUEUE = 4,
  MPROC__OBJ_LOCK = 5,
  MPROC__OBJ_EVENT = 6,
  MPROC__OBJ_VALUE = 7,
  MPROC__OBJ_MAX_ = 7
};

/* Every container and proxy begins with this header. The first 16 bytes are
 * left to allocators (a freed block's first bytes hold the allocator's
 * links), so the magic survives a free and use-after-destroy is detected
 * until the memory is reused. */
typedef struct mproc__proxy_hdr {
  uint64_t scratch[2]; /* untouched by us */
  uint32_t magic;      /* MPROC__PROXY_MAGIC (proxy) or a container magic */
  uint32_t kind;       /* proxy: enum mproc__obj_kind; containers: flags */
} mproc__proxy_hdr;

/* Container operations (also the wire op codes, see docs/manager.md). */
enum mproc__rop {
  MPROC__OP_DICT_SET = 0x20,
  MPROC__OP_DICT_GET = 0x21,
  MPROC__OP_DICT_DEL = 0x22,
  MPROC__OP_DICT_CONTAINS = 0x23,
  MPROC__OP_DICT_LEN = 0x24,
  MPROC__OP_DICT_KEYS = 0x25,
  MPROC__OP_DICT_ITEMS = 0x26,
  MPROC__OP_DICT_CLEAR = 0x27,
  MPROC__OP_LIST_APPEND = 0x30,
  MPROC__OP_LIST_EXTEND = 0x31,
  MPROC__OP_LIST_GET = 0x32,
  MPROC__OP_LIST_SET = 0x33,
  MPROC__OP_LIST_POP = 0x34,
  MPROC__OP_LIST_INSERT = 0x35,
  MPROC__OP_LIST_LEN = 0x36,
  MPROC__OP_LIST_SNAPSHOT = 0x37,
  MPROC__OP_LIST_CLEAR = 0x38
};

/* Field types on the wire. */
enum mproc__ftype {
  MPROC__F_BYTES = 1, /* any bytes */
  MPROC__F_I64 = 2,   /* 8 bytes, little-endian two's complement */
  MPROC__F_F64 = 3,   /* 8 bytes, IEEE-754 binary64 little-endian */
  MPROC__F_NAME = 4   /* 1..255 bytes, no NUL */
};

/* One argument or result field. */
typedef struct mproc__rfield {
  uint32_t type;    /* enum mproc__ftype */
  uint32_t len;     /* bytes at p (BYTES, NAME) */
  const void *p;    /* BYTES/NAME data */
  int64_t i;        /* I64 value */
  double f;         /* F64 value */
} mproc__rfield;

/* A decoded reply: nf result fields (status already taken out). mem owns
 * everything (free(mem)); fields point into it. */
typedef struct mproc__rreply {
  int nf;
  mproc__rfield *f;
  void *mem;
} mproc__rreply;

/* Send op with args to the object behind proxy and wait for the reply.
 * Returns the server's status (0 or a negative mproc code) or a transport
 * error (MPROC_EEOF, -ECONNRESET, ...). On 0 the caller frees rep->mem. */
typedef int (*mproc__remote_fn)(void *proxy, int op, const mproc__rfield *args,
                                int nargs, mproc__rreply *rep);
extern mproc__remote_fn mproc__remote_call;

static inline int mproc__is_proxy(const void *h, uint32_t kind) {
  const mproc__proxy_hdr *p = h;
  return p->magic == MPROC__PROXY_MAGIC && p->kind == kind;
}

static inline mproc__rfield mproc__rf_bytes(const void *p, size_t len) {
  mproc__rfield f = {MPROC__F_BYTES, (uint32_t)len, p, 0, 0};
  return f;
}
static inline mproc__rfield mproc__rf_i64(int64_t v) {
  mproc__rfield f = {MPROC__F_I64, 8, NULL, v, 0};
  return f;
}

#endif
