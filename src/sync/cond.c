/*
 * cond.c - Condition (Python's multiprocessing.Condition): wait, wait_for,
 * notify(n), notify_all, over a Lock or an RLock.
 *
 * Design: a token-counting condition variable on one futex word.
 *   - `nwait`  waiters registered and not yet handed a wake-up token;
 *   - `tokens` wake-ups handed out and not yet taken;
 *   - `seq`    the futex word, bumped by every notify.
 * wait(): holding the lock, nwait++, read seq, release the lock fully (every
 * RLock level), then loop { take a token -> woken; sleep on seq }. notify(n)
 * (lock held): k = min(n, nwait); nwait -= k; tokens += k; seq++; wake k.
 * A token may be taken by any waiter that was registered when it was handed
 * out - exactly k waiters return per notify(k), though not necessarily the
 * k that slept longest. Because tokens are added before seq moves and a
 * waiter reads seq before looking for a token, a notify between the two
 * makes futex_wait return at once: no lost wake-up.
 * A waiter that times out re-acquires the lock first (wait always returns
 * with the lock held, as in Python), then takes a token if one is left
 * (a notify raced with the timeout: report success) or unregisters.
 *
 * nwait and tokens change under the condition's lock, except that waking
 * waiters take tokens with a CAS without the lock; so both are atomics.
 *
 * Crashes: a waiter killed while asleep stays counted in nwait; a later
 * notify may hand it a token nobody claims, which a later waiter takes at
 * once - a spurious wake-up, which wait_for's predicate loop absorbs. The
 * lock is robust: if its owner died, wait returns MPROC_EOWNERDEAD with the
 * lock held (whether or not a notify came: re-check the predicate).
 *
 * Lock order: the user's lock only (the condition has no lock of its own).
 */
#include <errno.h>

#include "sync/sync.h"

typedef struct mproc_cond {
  _Atomic uint32_t magic;  /* SYNC_MAGIC_COND; MPROC__DEAD_MAGIC after destroy */
  _Atomic uint32_t seq;    /* futex word, bumped by every notify */
  _Atomic uint32_t nwait;  /* registered waiters without a token */
  _Atomic uint32_t tokens; /* wake-ups handed out, not yet taken */
  _Atomic uint32_t spin;   /* adaptive spin estimate (a hint) */
  uint32_t own_lock;       /* 1: lock was created by us and dies with us */
  sync_lock *lock;         /* the Lock or RLock the condition works with */
} sync_cond;

static int cond_new(mproc_cond_t **c, void *lock, uint32_t kind) {
  if (!c) return -EINVAL;
  int rc;
  sync_lock *l = lock;
  if (l && (rc = sync_check(l, kind))) return rc;
  void *p;
  if ((rc = mproc__heap_alloc(sizeof(sync_cond), &p))) return rc;
  sync_cond *cv = p;
  if (!l) {
    /* Python's default: Condition() makes its own RLock. */
    if ((rc = mproc__sync_lock_new(&l, SYNC_MAGIC_RLOCK))) {
      mproc__heap_free(p);
      return rc;
    }
    cv->own_lock = 1;
  }
  cv->lock = l;
  atomic_store(&cv->spin, 64);
  sync_stamp(cv, SYNC_MAGIC_COND);
  *c = (mproc_cond_t *)cv;
  return 0;
}

int mproc_cond_create(mproc_cond_t **c, mproc_lock_t *lock) {
  return cond_new(c, lock, SYNC_MAGIC_LOCK);
}

int mproc_cond_create_rlock(mproc_cond_t **c, mproc_rlock_t *rlock) {
  return cond_new(c, rlock, SYNC_MAGIC_RLOCK);
}

/* Check the condition and that its lock is still alive. */
static int cond_check(const mproc_cond_t *c) {
  int rc = sync_check(c, SYNC_MAGIC_COND);
  if (rc) return rc;
  const sync_cond *cv = (const sync_cond *)c;
  uint32_t m = atomic_load_explicit(&cv->lock->magic, memory_order_relaxed);
  if (m != SYNC_MAGIC_LOCK && m != SYNC_MAGIC_RLOCK) return MPROC_EDESTROYED;
  return 0;
}

int mproc_cond_destroy(mproc_cond_t *c) {
  if (!c) return 0;
  int rc = sync_check(c, SYNC_MAGIC_COND);
  if (rc) return rc;
  sync_cond *cv = (sync_cond *)c;
  if (cv->own_lock) {
    sync_lock *l = cv->lock;
    if (mproc__rmutex_owner(&l->mu) != 0) {
      if (!mproc__rmutex_held(&l->mu)) return -EBUSY;
      l->count = 0;
      mproc__rmutex_unlock(&l->mu);
    }
    mproc__sync_lock_free(l);
  }
  atomic_store_explicit(&cv->magic, MPROC__DEAD_MAGIC, memory_order_release);
  mproc__heap_free(cv);
  return 0;
}

int mproc_cond_acquire(mproc_cond_t *c, double timeout) {
  int rc = cond_check(c);
  if (rc) return rc;
  if (!mproc__timeout_ok(timeout)) return -EINVAL;
  return mproc__sync_lock_acquire(((sync_cond *)c)->lock, timeout);
}

int mproc_cond_release(mproc_cond_t *c) {
  int rc = cond_check(c);
  if (rc) return rc;
  return mproc__sync_lock_release(((sync_cond *)c)->lock);
}

static int take_token(sync_cond *cv) {
  uint32_t t = atomic_load(&cv->tokens);
  while (t > 0)
    if (atomic_compare_exchange_weak(&cv->tokens, &t, t - 1)) return 1;
  return 0;
}

/* wait with an absolute deadline (NULL = forever); arguments checked. */
static int cond_wait_dl(sync_cond *cv, const struct timespec *dlp, int poll) {
  sync_lock *l = cv->lock;
  if (!mproc__rmutex_held(&l->mu)) return -EPERM;
  atomic_fetch_add(&cv->nwait, 1);
  uint32_t seq = atomic_load(&cv->seq);
  uint32_t depth;
  int rc = mproc__sync_lock_release_all(l, &depth);
  if (rc) {
    atomic_fetch_sub(&cv->nwait, 1);
    return rc;
  }
  int woken = 0;
  if (!poll) {
    if (sync_spin(&cv->seq, seq, &cv->spin)) {
      woken = take_token(cv);
      seq = atomic_load(&cv->seq);
    }
    while (!woken) {
      if (take_token(cv)) {
        woken = 1;
        break;
      }
      if (sync_sleep(&cv->seq, seq, dlp) == -ETIMEDOUT ||
          mproc__deadline_passed(dlp))
        break;
      seq = atomic_load(&cv->seq);
    }
  }
  int lrc = mproc__sync_lock_reacquire(l, depth);
  if (!woken) {
    /* Lock held again: a notify that raced with our timeout left a token
     * we may take; otherwise we leave without one. */
    if (take_token(cv))
      woken = 1;
    else
      atomic_fetch_sub(&cv->nwait, 1);
  }
  if (lrc == MPROC_EOWNERDEAD) return MPROC_EOWNERDEAD;
  return woken ? 0 : -ETIMEDOUT;
}

int mproc_cond_wait(mproc_cond_t *c, double timeout) {
  int rc = cond_check(c);
  if (rc) return rc;
  struct timespec dl, *dlp;
  if ((rc = sync_deadline(timeout, &dl, &dlp))) return rc;
  return cond_wait_dl((sync_cond *)c, dlp, timeout == 0);
}

int mproc_cond_wait_for(mproc_cond_t *c, int (*pred)(void *arg), void *arg,
                        double timeout) {
  int rc = cond_check(c);
  if (rc) return rc;
  if (!pred) return -EINVAL;
  struct timespec dl, *dlp;
  if ((rc = sync_deadline(timeout, &dl, &dlp))) return rc;
  sync_cond *cv = (sync_cond *)c;
  if (!mproc__rmutex_held(&cv->lock->mu)) return -EPERM;
  while (!pred(arg)) {
    if (timeout == 0 || mproc__deadline_passed(dlp)) return -ETIMEDOUT;
    rc = cond_wait_dl(cv, dlp, 0);
    if (rc == MPROC_EOWNERDEAD) return rc;
    if (rc == -ETIMEDOUT) return pred(arg) ? 0 : -ETIMEDOUT;
    if (rc) return rc;
  }
  return 0;
}

int mproc_cond_notify(mproc_cond_t *c, int n) {
  int rc = cond_check(c);
  if (rc) return rc;
  if (n < 0) return -EINVAL;
  sync_cond *cv = (sync_cond *)c;
  if (!mproc__rmutex_held(&cv->lock->mu)) return -EPERM;
  uint32_t w = atomic_load(&cv->nwait);
  uint32_t k = (uint32_t)n < w ? (uint32_t)n : w;
  if (k == 0) return 0;
  atomic_fetch_sub(&cv->nwait, k);
  atomic_fetch_add(&cv->tokens, k);
  atomic_fetch_add(&cv->seq, 1);
  mproc__futex_wake(&cv->seq, k > INT32_MAX ? INT32_MAX : (int)k);
  return 0;
}

int mproc_cond_notify_all(mproc_cond_t *c) { return mproc_cond_notify(c, INT32_MAX); }
