/*
 * cond.c - Condition (Python's multiprocessing.Condition): wait, wait_for,
 * notify(n), notify_all, over a Lock or an RLock.
 *
 * Design: a FIFO queue of waiter nodes, as Python's threading.Condition
 * keeps a deque of per-waiter locks. wait() (lock held) allocates a small
 * node in the shared heap, appends it, releases the lock fully (every RLock
 * level) and sleeps on the node's own futex word until a notifier flips it.
 * notify(n) (lock held) pops up to n nodes from the head, flips each and
 * wakes exactly its sleeper. So exactly min(n, waiting) waits return 0, and
 * only waiters that were waiting when notify was called can be woken (a
 * shared token counter lets a later waiter steal a wake-up meant for an
 * earlier one, which can deadlock producer/consumer code).
 * A waiter that times out re-acquires the lock (wait always returns with
 * it held, as in Python); if its node is still queued it removes it and
 * reports -ETIMEDOUT, otherwise a notify raced with the timeout and it
 * reports success. The waiter frees its node.
 *
 * Every queue change happens with the condition's lock held, so the queue
 * needs no lock of its own; only the node's `signaled` word is shared with
 * the sleeper outside the lock. A notified node moves to the `handed` list
 * until its waiter has the lock back and frees it, so a waiter killed in
 * between does not leak its node: notify and destroy free dead ones.
 *
 * Crashes: each waiter holds a robust mutex inside its node for as long as
 * the node is queued. When the waiter dies the kernel clears the owner from
 * that word at exit - before the process is even a zombie, so an unreaped
 * child counts as dead - and notify skips (and frees) such nodes: a waiter
 * killed while asleep never absorbs a notify meant for a live one. (Where
 * the C library registers no robust list, a pid check stands in.) A waiter
 * killed in the few instructions between allocating its node and queueing
 * it, or between unqueueing and freeing it (both with the lock held, so the
 * next locker sees MPROC_EOWNERDEAD), leaks that one small node.
 * The lock is robust: if its owner died, wait returns MPROC_EOWNERDEAD with
 * the lock held (notified or not: re-check the predicate).
 *
 * Lock order: the user's lock, then (inside the heap allocator) the heap's.
 */
#include <errno.h>
#include <signal.h>
#include <unistd.h>

#include "sync/sync.h"

typedef struct cond_node {
  _Atomic uint32_t signaled; /* 0 waiting, 1 notified: the sleeper's futex word */
  pid_t pid;                 /* the waiter's process (fallback liveness) */
  mproc__rmutex alive;       /* held by the waiter while the node is queued */
  struct cond_node *next;    /* queue links (under the condition's lock) */
  struct cond_node *prev;
} cond_node;

typedef struct mproc_cond {
  _Atomic uint32_t magic;  /* SYNC_MAGIC_COND; MPROC__DEAD_MAGIC after destroy */
  _Atomic uint32_t spin;   /* adaptive spin estimate (a hint) */
  uint32_t own_lock;       /* 1: lock was created by us and dies with us */
  uint32_t nwait;          /* queued nodes (under the lock) */
  sync_lock *lock;         /* the Lock or RLock the condition works with */
  cond_node *head, *tail;  /* FIFO of waiters (under the lock) */
  cond_node *handed;       /* notified nodes whose waiter has not taken the
                              lock back yet (under the lock) */
} sync_cond;

static void q_remove(struct mproc_cond *cv, cond_node *n);
static void h_remove(struct mproc_cond *cv, cond_node *n);

/* The node's waiter is gone (its exit cleared the owner of `alive`, or no
 * robust list and its process no longer exists). Another thread of the
 * calling process is never dead. */
static int node_dead(cond_node *w) {
  if (w->pid == getpid()) return 0;
  if (mproc__rmutex_owner(&w->alive) == 0) return 1;
  return kill(w->pid, 0) < 0 && errno == ESRCH;
}

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
  /* Live waiters: refuse. Nodes of waiters that were killed: ours to free. */
  for (cond_node *w = cv->head; w; w = w->next)
    if (!node_dead(w)) return -EBUSY;
  for (cond_node *w = cv->handed; w; w = w->next)
    if (!node_dead(w)) return -EBUSY;
  sync_lock *l = cv->lock;
  if (cv->own_lock && mproc__rmutex_owner(&l->mu) != 0 && !mproc__rmutex_held(&l->mu))
    return -EBUSY;
  while (cv->head) {
    cond_node *w = cv->head;
    q_remove(cv, w);
    mproc__heap_free(w);
  }
  while (cv->handed) {
    cond_node *w = cv->handed;
    h_remove(cv, w);
    mproc__heap_free(w);
  }
  if (cv->own_lock) {
    if (mproc__rmutex_held(&l->mu)) {
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

static void h_push(sync_cond *cv, cond_node *n) {
  n->prev = NULL;
  n->next = cv->handed;
  if (cv->handed) cv->handed->prev = n;
  cv->handed = n;
}

static void h_remove(sync_cond *cv, cond_node *n) {
  if (n->prev) n->prev->next = n->next; else cv->handed = n->next;
  if (n->next) n->next->prev = n->prev;
  n->next = n->prev = NULL;
}

static void q_remove(sync_cond *cv, cond_node *n) {
  if (n->prev) n->prev->next = n->next; else cv->head = n->next;
  if (n->next) n->next->prev = n->prev; else cv->tail = n->prev;
  n->next = n->prev = NULL;
  cv->nwait--;
}

/* wait with an absolute deadline (NULL = forever); arguments checked. */
static int cond_wait_dl(sync_cond *cv, const struct timespec *dlp, int poll) {
  sync_lock *l = cv->lock;
  if (!mproc__rmutex_held(&l->mu)) return -EPERM;
  void *p;
  int rc = mproc__heap_alloc(sizeof(cond_node), &p);
  if (rc) return rc;
  cond_node *n = p;
  n->pid = getpid();
  mproc__rmutex_lock(&n->alive, NULL); /* fresh node: free, ours at once */
  n->prev = cv->tail;
  if (cv->tail) cv->tail->next = n; else cv->head = n;
  cv->tail = n;
  cv->nwait++;
  uint32_t depth;
  if ((rc = mproc__sync_lock_release_all(l, &depth))) {
    q_remove(cv, n);
    mproc__rmutex_unlock(&n->alive);
    mproc__heap_free(n);
    return rc;
  }
  if (!poll && !sync_spin(&n->signaled, 0, &cv->spin)) {
    while (!atomic_load(&n->signaled)) {
      if (sync_sleep(&n->signaled, 0, dlp) == -ETIMEDOUT ||
          mproc__deadline_passed(dlp))
        break;
    }
  }
  int lrc = mproc__sync_lock_reacquire(l, depth);
  /* Lock held again: if no notify picked us, leave the queue. */
  int woken = atomic_load(&n->signaled) != 0;
  if (woken)
    h_remove(cv, n);
  else
    q_remove(cv, n);
  mproc__rmutex_unlock(&n->alive);
  mproc__heap_free(n);
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
  /* Waiters killed after being notified, before taking the lock back:
   * nobody else will free their nodes. The list is short (it holds only
   * waiters between wake-up and re-acquiring the lock we hold). */
  for (cond_node *w = cv->handed, *nx; w; w = nx) {
    nx = w->next;
    if (node_dead(w)) {
      h_remove(cv, w);
      mproc__heap_free(w);
    }
  }
  while (n > 0 && cv->head) {
    cond_node *w = cv->head;
    q_remove(cv, w);
    if (node_dead(w)) {
      /* Killed while waiting: nobody will free its node but us. */
      mproc__heap_free(w);
      continue;
    }
    /* The waiter frees w only after re-acquiring the lock we hold, so w
     * is alive until we return. */
    h_push(cv, w);
    atomic_store(&w->signaled, 1);
    mproc__futex_wake(&w->signaled, 1);
    n--;
  }
  return 0;
}

int mproc_cond_notify_all(mproc_cond_t *c) { return mproc_cond_notify(c, INT32_MAX); }
