/*
 * lock.c - Lock and RLock (Python's multiprocessing.Lock / RLock).
 *
 * Design: both are a sync_lock in the shared heap wrapping one robust mutex
 * (mproc__rmutex, src/platform/robust.h). The mutex gives us the fast path
 * (one CAS to acquire, one exchange to release), the bounded adaptive spin
 * before sleeping on the futex, and robustness: when the owner dies the
 * kernel marks the word OWNER_DIED and the next acquirer gets the lock with
 * MPROC_EOWNERDEAD. The mutex word is the only state a Lock has.
 *
 * RLock adds a recursion depth, `count`, written only by the owning thread
 * while it holds the mutex (so it needs no atomics beyond the mutex's own
 * ordering). When an owner died, the depth it left is garbage: the new owner
 * resets it to 1.
 *
 * Departure from Python: a Lock is owned by the thread that acquired it.
 * Python's multiprocessing.Lock is a semaphore and may be released by any
 * process; ours returns -EPERM then, because robustness needs an owner the
 * kernel can watch. Acquiring a Lock the calling thread already holds
 * returns -EDEADLK at once instead of hanging forever.
 *
 * Invariants: magic is SYNC_MAGIC_LOCK / SYNC_MAGIC_RLOCK while alive,
 * MPROC__DEAD_MAGIC after destroy. count > 0 iff an RLock is held.
 */
#include <errno.h>

#include "sync/sync.h"

_Atomic(uintptr_t) mproc__sync_heap_lo, mproc__sync_heap_hi;

int mproc__sync_in_heap_slow(const void *p) {
  if (!mproc__heap_contains(p)) return 0;
  /* The heap is mapped: remember its bounds (hi first, so a reader that
   * sees lo also sees hi). */
  uintptr_t base = (uintptr_t)mproc__heap_base();
  atomic_store_explicit(&mproc__sync_heap_hi, base + mproc__heap_size(), memory_order_relaxed);
  atomic_store_explicit(&mproc__sync_heap_lo, base, memory_order_release);
  return 1;
}

int mproc__sync_lock_new(sync_lock **out, uint32_t magic) {
  void *p;
  int rc = mproc__heap_alloc(sizeof(sync_lock), &p);
  if (rc) return rc;
  sync_lock *l = p;
  mproc__rmutex_init(&l->mu);
  l->count = 0;
  sync_stamp(l, magic);
  *out = l;
  return 0;
}

void mproc__sync_lock_free(sync_lock *l) {
  atomic_store_explicit(&l->magic, MPROC__DEAD_MAGIC, memory_order_release);
  mproc__heap_free(l);
}

/* Map the mutex's result for a fresh acquisition. */
static int lock_take(sync_lock *l, double timeout) {
  int rc;
  if (timeout == 0) {
    rc = mproc__rmutex_trylock(&l->mu);
    if (rc == -EBUSY) rc = -ETIMEDOUT;
  } else {
    struct timespec dl;
    rc = mproc__rmutex_lock(&l->mu, mproc__deadline(timeout, &dl));
  }
  return rc;
}

int mproc__sync_lock_acquire(sync_lock *l, double timeout) {
  if (atomic_load_explicit(&l->magic, memory_order_relaxed) == SYNC_MAGIC_RLOCK) {
    if (mproc__rmutex_held(&l->mu)) {
      if (l->count == UINT32_MAX) return -EOVERFLOW;
      l->count++;
      return 0;
    }
    int rc = lock_take(l, timeout);
    if (rc == 0 || rc == MPROC_EOWNERDEAD) l->count = 1;
    return rc;
  }
  return lock_take(l, timeout);
}

int mproc__sync_lock_release(sync_lock *l) {
  if (!mproc__rmutex_held(&l->mu)) return -EPERM;
  if (atomic_load_explicit(&l->magic, memory_order_relaxed) == SYNC_MAGIC_RLOCK &&
      --l->count > 0)
    return 0;
  return mproc__rmutex_unlock(&l->mu);
}

int mproc__sync_lock_release_all(sync_lock *l, uint32_t *depth) {
  if (!mproc__rmutex_held(&l->mu)) return -EPERM;
  uint32_t d = 1;
  if (atomic_load_explicit(&l->magic, memory_order_relaxed) == SYNC_MAGIC_RLOCK) {
    d = l->count;
    l->count = 0;
  }
  *depth = d;
  return mproc__rmutex_unlock(&l->mu);
}

int mproc__sync_lock_reacquire(sync_lock *l, uint32_t depth) {
  int rc = mproc__rmutex_lock(&l->mu, NULL);
  if (atomic_load_explicit(&l->magic, memory_order_relaxed) == SYNC_MAGIC_RLOCK)
    l->count = depth;
  /* -EDEADLK cannot happen: release_all proved we did not hold it. */
  return rc;
}

/* Shared create/destroy/acquire/release bodies for the two public types. */
static int create_kind(void **out, uint32_t magic) {
  if (!out) return -EINVAL;
  sync_lock *l;
  int rc = mproc__sync_lock_new(&l, magic);
  if (rc) return rc;
  *out = l;
  return 0;
}

static int destroy_kind(void *obj, uint32_t magic) {
  if (!obj) return 0;
  int rc = sync_check(obj, magic);
  if (rc) return rc;
  sync_lock *l = obj;
  uint32_t owner = mproc__rmutex_owner(&l->mu);
  if (owner != 0) {
    /* Held by someone else: freeing it would pull it from under them. */
    if (!mproc__rmutex_held(&l->mu)) return -EBUSY;
    /* Held by the caller: release so the mutex leaves our robust list. */
    l->count = 0;
    mproc__rmutex_unlock(&l->mu);
  }
  mproc__sync_lock_free(l);
  return 0;
}

static int acquire_kind(void *obj, uint32_t magic, double timeout) {
  int rc = sync_check(obj, magic);
  if (rc) return rc;
  if (!mproc__timeout_ok(timeout)) return -EINVAL;
  return mproc__sync_lock_acquire(obj, timeout);
}

static int release_kind(void *obj, uint32_t magic) {
  int rc = sync_check(obj, magic);
  if (rc) return rc;
  return mproc__sync_lock_release(obj);
}

static int locked_kind(const void *obj, uint32_t magic) {
  int rc = sync_check(obj, magic);
  if (rc) return rc;
  return mproc__rmutex_owner(&((const sync_lock *)obj)->mu) != 0;
}

/* ---- Lock ---- */

int mproc_lock_create(mproc_lock_t **l) {
  return create_kind((void **)l, SYNC_MAGIC_LOCK);
}
int mproc_lock_destroy(mproc_lock_t *l) { return destroy_kind(l, SYNC_MAGIC_LOCK); }
int mproc_lock_acquire(mproc_lock_t *l, double timeout) {
  /* Hot path: straight to the mutex once the object checks out. */
  int rc = sync_check(l, SYNC_MAGIC_LOCK);
  if (MPROC_UNLIKELY(rc)) return rc;
  if (MPROC_LIKELY(timeout == -1.0))
    return mproc__rmutex_lock(&((sync_lock *)(void *)l)->mu, NULL);
  if (!mproc__timeout_ok(timeout)) return -EINVAL;
  return lock_take((sync_lock *)(void *)l, timeout);
}
int mproc_lock_release(mproc_lock_t *l) {
  int rc = sync_check(l, SYNC_MAGIC_LOCK);
  if (MPROC_UNLIKELY(rc)) return rc;
  return mproc__rmutex_unlock(&((sync_lock *)(void *)l)->mu); /* -EPERM if not ours */
}
int mproc_lock_locked(const mproc_lock_t *l) { return locked_kind(l, SYNC_MAGIC_LOCK); }
int mproc_lock_is_mine(const mproc_lock_t *l) {
  int rc = sync_check(l, SYNC_MAGIC_LOCK);
  if (rc) return rc;
  return mproc__rmutex_held(&((const sync_lock *)(const void *)l)->mu) != 0;
}

/* ---- RLock ---- */

int mproc_rlock_create(mproc_rlock_t **l) {
  return create_kind((void **)l, SYNC_MAGIC_RLOCK);
}
int mproc_rlock_destroy(mproc_rlock_t *l) { return destroy_kind(l, SYNC_MAGIC_RLOCK); }
int mproc_rlock_acquire(mproc_rlock_t *l, double timeout) {
  return acquire_kind(l, SYNC_MAGIC_RLOCK, timeout);
}
int mproc_rlock_release(mproc_rlock_t *l) { return release_kind(l, SYNC_MAGIC_RLOCK); }
int mproc_rlock_locked(const mproc_rlock_t *l) {
  return locked_kind(l, SYNC_MAGIC_RLOCK);
}
int mproc_rlock_depth(const mproc_rlock_t *l) {
  int rc = sync_check(l, SYNC_MAGIC_RLOCK);
  if (rc) return rc;
  const sync_lock *s = (const void *)l;
  if (!mproc__rmutex_held(&s->mu)) return 0;
  return s->count > INT32_MAX ? INT32_MAX : (int)s->count;
}
