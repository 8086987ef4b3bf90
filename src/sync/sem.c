/*
 * sem.c - Semaphore and BoundedSemaphore (Python's multiprocessing ones).
 *
 * Design: the count is the futex word itself. acquire takes one unit with a
 * CAS (fast path, no syscall); when the count is 0 it spins a bounded,
 * adaptive while, then registers in `sleepers` and sleeps on the word while
 * it reads 0. release adds one unit with a CAS (refusing to pass `max`) and
 * wakes one sleeper only when `sleepers` says someone may sleep.
 *
 * Ordering (the classic Dekker pair, both sides seq_cst): the sleeper
 * increments `sleepers` then re-reads the count inside futex_wait; the
 * releaser increments the count then reads `sleepers`. Either the sleeper
 * sees the new count, or the releaser sees the sleeper and wakes it.
 *
 * Crashes: a semaphore has no owner, so a process dying while it "holds" a
 * unit cannot be detected - the unit is lost, as in Python. A process dying
 * while asleep leaves `sleepers` one too high: that only costs an extra
 * wake syscall on later releases, never a missed wake-up.
 *
 * Invariants: 0 <= value <= max (max = INT32_MAX for Semaphore, the initial
 * value for BoundedSemaphore).
 */
#include <errno.h>
#include <limits.h>

#include "sync/sync.h"

typedef struct mproc_sem {
  _Atomic uint32_t magic;    /* SYNC_MAGIC_SEM; MPROC__DEAD_MAGIC after destroy */
  _Atomic uint32_t value;    /* the count and the futex word */
  _Atomic uint32_t sleepers; /* processes that may be asleep on value */
  _Atomic uint32_t spin;     /* adaptive spin estimate (a hint) */
  uint32_t max;              /* release beyond this is -EOVERFLOW */
  uint32_t bounded;          /* 1 for BoundedSemaphore (for diagnostics) */
} sync_sem;

static int sem_new(mproc_sem_t **s, int value, int bounded) {
  if (!s || value < 0) return -EINVAL;
  void *p;
  int rc = mproc__heap_alloc(sizeof(sync_sem), &p);
  if (rc) return rc;
  sync_sem *m = p;
  atomic_store(&m->value, (uint32_t)value);
  m->max = bounded ? (uint32_t)value : (uint32_t)INT_MAX;
  m->bounded = (uint32_t)bounded;
  atomic_store(&m->spin, 64);
  sync_stamp(m, SYNC_MAGIC_SEM);
  *s = (mproc_sem_t *)m;
  return 0;
}

int mproc_sem_create(mproc_sem_t **s, int value) { return sem_new(s, value, 0); }
int mproc_bsem_create(mproc_sem_t **s, int value) { return sem_new(s, value, 1); }

int mproc_sem_destroy(mproc_sem_t *s) {
  if (!s) return 0;
  int rc = sync_check(s, SYNC_MAGIC_SEM);
  if (rc) return rc;
  sync_sem *m = (sync_sem *)s;
  atomic_store_explicit(&m->magic, MPROC__DEAD_MAGIC, memory_order_release);
  mproc__heap_free(m);
  return 0;
}

/* Take one unit if there is one: 1 taken, 0 none. */
static int sem_try(sync_sem *m) {
  uint32_t v = atomic_load_explicit(&m->value, memory_order_relaxed);
  while (v > 0) {
    if (atomic_compare_exchange_weak_explicit(&m->value, &v, v - 1,
                                              memory_order_acquire,
                                              memory_order_relaxed))
      return 1;
  }
  return 0;
}

int mproc_sem_acquire(mproc_sem_t *s, double timeout) {
  int rc = sync_check(s, SYNC_MAGIC_SEM);
  if (rc) return rc;
  sync_sem *m = (sync_sem *)s;
  struct timespec dl, *dlp;
  if ((rc = sync_deadline(timeout, &dl, &dlp))) return rc;
  if (sem_try(m)) return 0;
  if (timeout == 0) return -ETIMEDOUT;
  if (sync_spin(&m->value, 0, &m->spin) && sem_try(m)) return 0;
  for (;;) {
    atomic_fetch_add(&m->sleepers, 1);
    rc = sync_sleep(&m->value, 0, dlp);
    atomic_fetch_sub(&m->sleepers, 1);
    if (sem_try(m)) return 0;
    if (rc == -ETIMEDOUT || mproc__deadline_passed(dlp)) return -ETIMEDOUT;
  }
}

int mproc_sem_release(mproc_sem_t *s) {
  int rc = sync_check(s, SYNC_MAGIC_SEM);
  if (rc) return rc;
  sync_sem *m = (sync_sem *)s;
  uint32_t v = atomic_load_explicit(&m->value, memory_order_relaxed);
  do {
    if (v >= m->max) return -EOVERFLOW;
  } while (!atomic_compare_exchange_weak(&m->value, &v, v + 1));
  if (atomic_load(&m->sleepers) > 0) mproc__futex_wake(&m->value, 1);
  return 0;
}

int mproc_sem_get_value(const mproc_sem_t *s, int *value) {
  int rc = sync_check(s, SYNC_MAGIC_SEM);
  if (rc) return rc;
  if (!value) return -EINVAL;
  *value = (int)atomic_load(&((sync_sem *)(uintptr_t)s)->value);
  return 0;
}
