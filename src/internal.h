/*
 * internal.h - helpers shared by every layer (nng's nng_impl.h role).
 * Internal non-static symbols are named mproc__xxx (greppable, never
 * exported: the library is built with hidden visibility).
 */
#ifndef MPROC_INTERNAL_H
#define MPROC_INTERNAL_H

#include <assert.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "mproc.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define container_of(ptr, type, member) \
  ((type *)(void *)((char *)(ptr)-offsetof(type, member)))
#define STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)
#define MPROC_LIKELY(x) __builtin_expect(!!(x), 1)
#define MPROC_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define MPROC_CACHELINE 64
#define MPROC_ALIGN_UP(x, a) (((x) + ((a)-1)) & ~((size_t)(a)-1))

/* Invariants on internal state (never on user input: that gets -EINVAL). */
#define ALWAYS(x) (assert(x), (x))
#define NEVER(x) (assert(!(x)), (x))

/* Validate a timeout in seconds: -1 (forever) or >= 0 and finite. */
static inline int mproc__timeout_ok(double t) {
  return t == -1.0 || (t >= 0.0 && t < 1e12);
}

/* Lazily initialise the library with defaults; 0 or a negative error. Every
 * public entry point that needs the heap calls it. */
int mproc__ensure_init(void);

/* Magic numbers stamped into heap objects so use-after-destroy and wrong-type
 * pointers are detected (value differs per object kind). */
#define MPROC__MAGIC(a, b, c, d) \
  ((uint32_t)(a) | ((uint32_t)(b) << 8) | ((uint32_t)(c) << 16) | ((uint32_t)(d) << 24))
#define MPROC__DEAD_MAGIC 0xdeadbeefu

#endif
