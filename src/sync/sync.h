/*
 * sync.h - internal helpers shared by the sync layer's files (lock.c, sem.c,
 * cond.c, event.c, barrier.c, value.c, array.c, shm.c).
 *
 * Every sync object lives in the family's shared heap and starts with a
 * 32-bit magic number naming its kind. Public calls check a pointer with
 * sync_check() before touching it: a pointer outside the heap is -EINVAL
 * (we never dereference it), a destroyed object (magic overwritten with
 * MPROC__DEAD_MAGIC by destroy, or a block the heap no longer counts as
 * live) is MPROC_EDESTROYED, any other magic -EINVAL.
 * The check is best effort: once the heap reuses a destroyed block for a new
 * object, a stale pointer looks valid again (as in any allocator).
 *
 * Waiting: spin a bounded, adaptive number of iterations (sync_spin), then
 * sleep on a futex word of the object (mproc__futex_wait, shared). Nothing
 * here uses CPU while asleep.
 */
#ifndef MPROC_SYNC_H
#define MPROC_SYNC_H

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "heap/heap.h"
#include "internal.h"
#include "platform/platform.h"
#include "platform/robust.h"

/* Magic numbers, one per object kind. */
#define SYNC_MAGIC_LOCK MPROC__MAGIC('L', 'o', 'c', 'k')
#define SYNC_MAGIC_RLOCK MPROC__MAGIC('R', 'l', 'c', 'k')
#define SYNC_MAGIC_SEM MPROC__MAGIC('S', 'e', 'm', 'a')
#define SYNC_MAGIC_COND MPROC__MAGIC('C', 'o', 'n', 'd')
#define SYNC_MAGIC_EVENT MPROC__MAGIC('E', 'v', 'n', 't')
#define SYNC_MAGIC_BARRIER MPROC__MAGIC('B', 'a', 'r', 'r')
#define SYNC_MAGIC_VALUE MPROC__MAGIC('V', 'a', 'l', 'u')
#define SYNC_MAGIC_ARRAY MPROC__MAGIC('A', 'r', 'r', 'y')

/* The heap's bounds, cached for the hot path (a Lock acquire checks its
 * pointer on every call). The heap never moves once mapped in a process, so
 * a cached non-NULL base stays right; a process without a heap yet simply
 * asks the heap layer. */
extern _Atomic(uintptr_t) mproc__sync_heap_lo, mproc__sync_heap_hi;
int mproc__sync_in_heap_slow(const void *p);
static inline int sync_in_heap(const void *p) {
  uintptr_t lo = atomic_load_explicit(&mproc__sync_heap_lo, memory_order_acquire);
  if (MPROC_LIKELY(lo != 0)) {
    uintptr_t hi = atomic_load_explicit(&mproc__sync_heap_hi, memory_order_relaxed);
    return (uintptr_t)p >= lo && (uintptr_t)p < hi;
  }
  return mproc__sync_in_heap_slow(p);
}

/* Validate a heap object pointer whose first field is a uint32_t magic. */
static inline int sync_check(const void *obj, uint32_t magic) {
  if (MPROC_UNLIKELY(!obj)) return -EINVAL;
  if (MPROC_UNLIKELY(!sync_in_heap(obj))) return -EINVAL;
  uint32_t m = atomic_load_explicit((_Atomic uint32_t *)(uintptr_t)obj,
                                    memory_order_relaxed);
  if (MPROC_LIKELY(m == magic)) return 0;
  /* Slow path. The allocator may have written its free-list link over the
   * magic, so a block that is no longer live also counts as destroyed. */
  if (m == MPROC__DEAD_MAGIC) return MPROC_EDESTROYED;
  if (!mproc__heap_contains(obj)) return -EINVAL; /* e.g. the heap's header */
  return mproc__heap_block_size(obj) == 0 ? MPROC_EDESTROYED : -EINVAL;
}

/* Stamp the magic (release: the object's fields are visible before it). */
static inline void sync_stamp(void *obj, uint32_t magic) {
  atomic_store_explicit((_Atomic uint32_t *)obj, magic, memory_order_release);
}

/* The common Lock/RLock body (lock.c). Condition and Value use it through
 * the helpers below whatever the public type. */
typedef struct sync_lock {
  _Atomic uint32_t magic; /* SYNC_MAGIC_LOCK or SYNC_MAGIC_RLOCK */
  /* The magic has a cache line to itself: every call reads it, and sharing
   * the contended mutex's line would cost an extra coherence round trip per
   * acquire when two CPUs take turns (measured in bench_lock). */
  char pad_[MPROC_CACHELINE - sizeof(uint32_t)];
  mproc__rmutex mu;       /* the robust mutex doing the work */
  uint32_t count;         /* RLock recursion depth; only the owner touches it
                             (on the mutex's line, which the owner has) */
} sync_lock;

/* Acquire/release for either kind, no argument checks (callers did them).
 * sync_lock_acquire: 0, MPROC_EOWNERDEAD, -ETIMEDOUT, -EDEADLK (Lock only). */
int mproc__sync_lock_acquire(sync_lock *l, double timeout);
int mproc__sync_lock_release(sync_lock *l);
/* Release every recursion level of a lock held by the caller, returning the
 * depth to restore (1 for a Lock); -EPERM if the caller does not hold it. */
int mproc__sync_lock_release_all(sync_lock *l, uint32_t *depth);
/* Re-acquire after release_all and restore the depth: 0, MPROC_EOWNERDEAD. */
int mproc__sync_lock_reacquire(sync_lock *l, uint32_t depth);
/* Create a Lock or RLock (magic selects the kind). */
int mproc__sync_lock_new(sync_lock **out, uint32_t magic);
void mproc__sync_lock_free(sync_lock *l);

/*
 * Bounded adaptive spin: wait up to *est iterations for *word to differ from
 * val. Returns 1 if it changed. The estimate grows when spinning paid off
 * and shrinks when it did not (racy updates are fine: it is a hint). No spin
 * at all on a single CPU, where the waker cannot run while we spin.
 */
#define SYNC_SPIN_MAX 256u /* x ~40-140 cycles per pause: at most ~10 us */
#define SYNC_SPIN_MIN 16u
static inline int sync_spin(_Atomic uint32_t *word, uint32_t val,
                            _Atomic uint32_t *est) {
  if (mproc__ncpu_online() < 2) return 0;
  uint32_t limit = atomic_load_explicit(est, memory_order_relaxed);
  if (limit < SYNC_SPIN_MIN) limit = SYNC_SPIN_MIN;
  if (limit > SYNC_SPIN_MAX) limit = SYNC_SPIN_MAX;
  for (uint32_t i = 0; i < limit; i++) {
    if (atomic_load_explicit(word, memory_order_acquire) != val) {
      uint32_t n = limit + limit / 4 + 1;
      atomic_store_explicit(est, n > SYNC_SPIN_MAX ? SYNC_SPIN_MAX : n,
                            memory_order_relaxed);
      return 1;
    }
    mproc__cpu_relax();
  }
  atomic_store_explicit(est, limit / 2, memory_order_relaxed);
  return 0;
}

/* Sleep on word while it equals val, until deadline (NULL = forever).
 * Returns 0 (woken, changed or spurious) or -ETIMEDOUT; EINTR is a
 * spurious wake-up for our callers (they re-check their condition). */
static inline int sync_sleep(_Atomic uint32_t *word, uint32_t val,
                             const struct timespec *deadline) {
  int rc = mproc__futex_wait(word, val, deadline);
  return rc == -ETIMEDOUT ? -ETIMEDOUT : 0;
}

/* Validate a timeout and turn it into a deadline: 0 or -EINVAL. *dlp is
 * NULL for "forever". */
static inline int sync_deadline(double timeout, struct timespec *dl,
                                struct timespec **dlp) {
  if (!mproc__timeout_ok(timeout)) return -EINVAL;
  *dlp = mproc__deadline(timeout, dl);
  return 0;
}

#endif
