/*
 * event.c - Event (Python's multiprocessing.Event): set, clear, is_set, wait.
 *
 * Design: one futex word, `state` = (generation << 1) | flag. set() turns
 * the flag on and bumps the generation in one CAS, then wakes every sleeper
 * (only when `sleepers` says there may be one). clear() turns the flag off
 * and leaves the generation alone. A waiter remembers the word it saw; it
 * returns success as soon as the flag is on or the generation moved, so a
 * set() followed at once by clear() still releases everyone who was waiting
 * (threading.Event's semantics; multiprocessing.Event can miss that case).
 *
 * The generation wraps after 2^31 sets; a waiter would have to sleep across
 * exactly 2^31 set/clear pairs to miss one.
 *
 * Crashes: an Event has no owner; a process dying asleep only leaves
 * `sleepers` high (extra wake syscalls, never a missed wake-up).
 */
#include <errno.h>

#include "sync/sync.h"

typedef struct mproc_event {
  _Atomic uint32_t magic;    /* SYNC_MAGIC_EVENT; MPROC__DEAD_MAGIC after destroy */
  _Atomic uint32_t state;    /* (generation << 1) | flag; the futex word */
  _Atomic uint32_t sleepers; /* processes that may be asleep on state */
  _Atomic uint32_t spin;     /* adaptive spin estimate (a hint) */
} sync_event;

int mproc_event_create(mproc_event_t **e) {
  if (!e) return -EINVAL;
  void *p;
  int rc = mproc__heap_alloc(sizeof(sync_event), &p);
  if (rc) return rc;
  sync_event *ev = p;
  atomic_store(&ev->spin, 64);
  sync_stamp(ev, SYNC_MAGIC_EVENT);
  *e = (mproc_event_t *)ev;
  return 0;
}

int mproc_event_destroy(mproc_event_t *e) {
  if (!e) return 0;
  int rc = sync_check(e, SYNC_MAGIC_EVENT);
  if (rc) return rc;
  sync_event *ev = (sync_event *)e;
  atomic_store_explicit(&ev->magic, MPROC__DEAD_MAGIC, memory_order_release);
  mproc__heap_free(ev);
  return 0;
}

int mproc_event_set(mproc_event_t *e) {
  int rc = sync_check(e, SYNC_MAGIC_EVENT);
  if (rc) return rc;
  sync_event *ev = (sync_event *)e;
  uint32_t s = atomic_load(&ev->state);
  do {
    if (s & 1u) return 0; /* already set: nobody can be waiting */
  } while (!atomic_compare_exchange_weak(&ev->state, &s, (s + 2u) | 1u));
  if (atomic_load(&ev->sleepers) > 0) mproc__futex_wake(&ev->state, INT32_MAX);
  return 0;
}

int mproc_event_clear(mproc_event_t *e) {
  int rc = sync_check(e, SYNC_MAGIC_EVENT);
  if (rc) return rc;
  atomic_fetch_and(&((sync_event *)e)->state, ~1u);
  return 0;
}

int mproc_event_is_set(const mproc_event_t *e) {
  int rc = sync_check(e, SYNC_MAGIC_EVENT);
  if (rc) return rc;
  return (int)(atomic_load(&((sync_event *)(uintptr_t)e)->state) & 1u);
}

int mproc_event_wait(mproc_event_t *e, double timeout) {
  int rc = sync_check(e, SYNC_MAGIC_EVENT);
  if (rc) return rc;
  sync_event *ev = (sync_event *)e;
  struct timespec dl, *dlp;
  if ((rc = sync_deadline(timeout, &dl, &dlp))) return rc;
  uint32_t s0 = atomic_load_explicit(&ev->state, memory_order_acquire);
  if (s0 & 1u) return 0;
  if (timeout == 0) return -ETIMEDOUT;
  if (sync_spin(&ev->state, s0, &ev->spin) &&
      (atomic_load(&ev->state) >> 1) != (s0 >> 1))
    return 0;
  for (;;) {
    atomic_fetch_add(&ev->sleepers, 1);
    rc = sync_sleep(&ev->state, s0, dlp);
    atomic_fetch_sub(&ev->sleepers, 1);
    /* Any generation change means a set() happened since we looked. */
    uint32_t s = atomic_load_explicit(&ev->state, memory_order_acquire);
    if ((s >> 1) != (s0 >> 1) || (s & 1u)) return 0;
    if (rc == -ETIMEDOUT || mproc__deadline_passed(dlp)) return -ETIMEDOUT;
    s0 = s; /* a clear() changed nothing that matters: sleep on */
  }
}
