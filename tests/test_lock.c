/* test_lock.c - Lock and RLock: every call, bad input, timeouts, owner
 * death (SIGKILL of a holder, also a recursive one), many processes on one
 * counter, no CPU while waiting, both of two tight loopers progress, timed
 * and forever waiters mixed (no lost wake-up), two sleepers on a dead owner. */
#include <math.h>
#include <pthread.h>

#include "sync_util.h"

typedef struct shared {
  mproc_lock_t *lock;
  mproc_rlock_t *rlock;
  volatile int stage;
  volatile int64_t counter;
  volatile int64_t rcounter; /* guarded by rlock (counter by lock) */
  int iters;
} shared;

static shared *mk(void) {
  shared *s = su_shared(sizeof *s);
  MPROC_PASS(mproc_lock_create(&s->lock));
  MPROC_PASS(mproc_rlock_create(&s->rlock));
  return s;
}
static void rm(shared *s) {
  MPROC_PASS(mproc_lock_destroy(s->lock));
  MPROC_PASS(mproc_rlock_destroy(s->rlock));
  mproc_heap_free(s);
}

static void lock_basic(void **state) {
  (void)state;
  shared *s = mk();
  MPROC_ASSERT_RC(mproc_lock_locked(s->lock), 0);
  MPROC_ASSERT_RC(mproc_lock_is_mine(s->lock), 0);
  MPROC_PASS(mproc_lock_acquire(s->lock, -1));
  MPROC_ASSERT_RC(mproc_lock_locked(s->lock), 1);
  MPROC_ASSERT_RC(mproc_lock_is_mine(s->lock), 1);
  MPROC_PASS(mproc_lock_release(s->lock));
  MPROC_PASS(mproc_lock_acquire(s->lock, 0));
  MPROC_PASS(mproc_lock_release(s->lock));
  MPROC_PASS(mproc_lock_acquire(s->lock, 1.5));
  MPROC_PASS(mproc_lock_release(s->lock));
  MPROC_ASSERT_RC(mproc_lock_destroy(NULL), 0);
  MPROC_ASSERT_RC(mproc_rlock_destroy(NULL), 0);
  rm(s);
}

static void lock_bad_input(void **state) {
  (void)state;
  mproc_lock_t *l;
  int on_stack = 0;
  MPROC_ASSERT_RC(mproc_lock_create(NULL), MPROC_EINVAL);
  MPROC_PASS(mproc_lock_create(&l));
  MPROC_ASSERT_RC(mproc_lock_acquire(NULL, -1), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_lock_acquire(l, -2), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_lock_acquire(l, -0.5), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_lock_acquire(l, NAN), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_lock_acquire(l, INFINITY), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_lock_release(NULL), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_lock_release(l), MPROC_EPERM);
  MPROC_ASSERT_RC(mproc_lock_locked(NULL), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_lock_is_mine(NULL), MPROC_EINVAL);
  /* Not a heap object, or an object of another kind. */
  MPROC_ASSERT_RC(mproc_lock_acquire((mproc_lock_t *)(void *)&on_stack, -1), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_lock_destroy((mproc_lock_t *)(void *)&on_stack), MPROC_EINVAL);
  mproc_rlock_t *r;
  MPROC_PASS(mproc_rlock_create(&r));
  MPROC_ASSERT_RC(mproc_lock_acquire((mproc_lock_t *)(void *)r, -1), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_rlock_acquire((mproc_rlock_t *)(void *)l, -1), MPROC_EINVAL);
  /* Re-acquiring a Lock from the owning thread. */
  MPROC_PASS(mproc_lock_acquire(l, -1));
  MPROC_ASSERT_RC(mproc_lock_acquire(l, -1), -EDEADLK);
  MPROC_ASSERT_RC(mproc_lock_acquire(l, 0), -EDEADLK);
  /* Destroy while held by the caller releases and frees. */
  MPROC_PASS(mproc_lock_destroy(l));
  MPROC_ASSERT_RC(mproc_lock_acquire(l, -1), MPROC_EDESTROYED);
  MPROC_ASSERT_RC(mproc_lock_release(l), MPROC_EDESTROYED);
  MPROC_ASSERT_RC(mproc_lock_locked(l), MPROC_EDESTROYED);
  MPROC_ASSERT_RC(mproc_lock_is_mine(l), MPROC_EDESTROYED);
  MPROC_ASSERT_RC(mproc_lock_destroy(l), MPROC_EDESTROYED);
  MPROC_ASSERT_RC(mproc_rlock_create(NULL), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_rlock_acquire(r, -3), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_rlock_acquire(NULL, 0), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_rlock_release(r), MPROC_EPERM);
  MPROC_ASSERT_RC(mproc_rlock_release(NULL), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_rlock_depth(NULL), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_rlock_locked(NULL), MPROC_EINVAL);
  MPROC_PASS(mproc_rlock_destroy(r));
  MPROC_ASSERT_RC(mproc_rlock_acquire(r, -1), MPROC_EDESTROYED);
  MPROC_ASSERT_RC(mproc_rlock_release(r), MPROC_EDESTROYED);
  MPROC_ASSERT_RC(mproc_rlock_depth(r), MPROC_EDESTROYED);
  MPROC_ASSERT_RC(mproc_rlock_locked(r), MPROC_EDESTROYED);
  MPROC_ASSERT_RC(mproc_rlock_destroy(r), MPROC_EDESTROYED);
}

/* Child: take the lock, say so, hold it until told, release. */
static int holder(void *arg) {
  shared *s = arg;
  CHILD_RC(mproc_lock_acquire(s->lock, -1), 0);
  s->stage = 1;
  CHILD_CHECK(su_await(&s->stage, 2));
  CHILD_RC(mproc_lock_release(s->lock), 0);
  return 0;
}

/* NaN, infinite, below -1 and huge timeouts: -EINVAL from Lock and RLock
 * acquire, free or held, and the lock is left as it was. */
static void lock_bad_timeouts(void **state) {
  (void)state;
  mproc_lock_t *l;
  mproc_rlock_t *r;
  MPROC_PASS(mproc_lock_create(&l));
  MPROC_PASS(mproc_rlock_create(&r));
  for (size_t i = 0; i < SU_N_BAD_TIMEOUTS; i++) {
    double t = su_bad_timeouts[i];
    SU_ASSERT_TIMEOUT_RC(mproc_lock_acquire(l, t), t, MPROC_EINVAL);
    SU_ASSERT_TIMEOUT_RC(mproc_rlock_acquire(r, t), t, MPROC_EINVAL);
    MPROC_ASSERT_RC(mproc_lock_locked(l), 0);
    MPROC_ASSERT_RC(mproc_rlock_locked(r), 0);
  }
  /* Held by the caller: still -EINVAL (not -EDEADLK, nor a level more). */
  MPROC_PASS(mproc_lock_acquire(l, -1));
  MPROC_PASS(mproc_rlock_acquire(r, -1));
  for (size_t i = 0; i < SU_N_BAD_TIMEOUTS; i++) {
    double t = su_bad_timeouts[i];
    SU_ASSERT_TIMEOUT_RC(mproc_lock_acquire(l, t), t, MPROC_EINVAL);
    SU_ASSERT_TIMEOUT_RC(mproc_rlock_acquire(r, t), t, MPROC_EINVAL);
  }
  MPROC_ASSERT_RC(mproc_rlock_depth(r), 1);
  MPROC_PASS(mproc_lock_release(l));
  MPROC_PASS(mproc_rlock_release(r));
  MPROC_ASSERT_RC(mproc_rlock_locked(r), 0);
  /* Destroyed objects report that first, whatever the timeout. */
  MPROC_PASS(mproc_lock_destroy(l));
  MPROC_PASS(mproc_rlock_destroy(r));
  MPROC_ASSERT_RC(mproc_lock_acquire(l, NAN), MPROC_EDESTROYED);
  MPROC_ASSERT_RC(mproc_rlock_acquire(r, -INFINITY), MPROC_EDESTROYED);
}

static void lock_timeouts(void **state) {
  (void)state;
  shared *s = mk();
  pid_t pid = su_fork(holder, s);
  assert_true(su_await(&s->stage, 1));
  MPROC_ASSERT_RC(mproc_lock_locked(s->lock), 1);
  MPROC_ASSERT_RC(mproc_lock_is_mine(s->lock), 0);
  MPROC_ASSERT_RC(mproc_lock_acquire(s->lock, 0), MPROC_ETIMEDOUT);
  double t0 = mproc_test_now();
  MPROC_ASSERT_RC(mproc_lock_acquire(s->lock, 0.2), MPROC_ETIMEDOUT);
  double dt = mproc_test_now() - t0;
  assert_true(dt >= 0.19);
  assert_true(dt < 10);
  /* Not ours: release refused, destroy refused. */
  MPROC_ASSERT_RC(mproc_lock_release(s->lock), MPROC_EPERM);
  MPROC_ASSERT_RC(mproc_lock_destroy(s->lock), MPROC_EBUSY);
  s->stage = 2;
  MPROC_PASS(mproc_lock_acquire(s->lock, 20));
  MPROC_PASS(mproc_lock_release(s->lock));
  SU_JOIN_OK(pid);
  rm(s);
}

/* Child: take the lock (recursively for the RLock) and die holding it. */
static int die_holding(void *arg) {
  shared *s = arg;
  CHILD_RC(mproc_lock_acquire(s->lock, -1), 0);
  CHILD_RC(mproc_rlock_acquire(s->rlock, -1), 0);
  CHILD_RC(mproc_rlock_acquire(s->rlock, -1), 0);
  CHILD_RC(mproc_rlock_acquire(s->rlock, 0), 0);
  CHILD_RC(mproc_rlock_depth(s->rlock), 3);
  s->stage = 1;
  for (;;) pause();
}

static void lock_owner_killed(void **state) {
  (void)state;
  shared *s = mk();
  pid_t pid = su_fork(die_holding, s);
  assert_true(su_await(&s->stage, 1));
  MPROC_ASSERT_RC(mproc_lock_acquire(s->lock, 0), MPROC_ETIMEDOUT);
  kill(pid, SIGKILL);
  assert_int_equal(su_wait(pid, NULL), -SIGKILL);
  MPROC_ASSERT_RC(mproc_lock_acquire(s->lock, 5), MPROC_EOWNERDEAD);
  MPROC_ASSERT_RC(mproc_lock_is_mine(s->lock), 1);
  MPROC_PASS(mproc_lock_release(s->lock));
  MPROC_ASSERT_RC(mproc_lock_locked(s->lock), 0);
  /* Works normally afterwards, also across processes. */
  MPROC_PASS(mproc_lock_acquire(s->lock, 0));
  MPROC_PASS(mproc_lock_release(s->lock));
  MPROC_ASSERT_RC(mproc_rlock_acquire(s->rlock, 5), MPROC_EOWNERDEAD);
  MPROC_ASSERT_RC(mproc_rlock_depth(s->rlock), 1); /* dead owner's 3 dropped */
  MPROC_PASS(mproc_rlock_release(s->rlock));
  MPROC_ASSERT_RC(mproc_rlock_locked(s->rlock), 0);
  MPROC_ASSERT_RC(mproc_rlock_release(s->rlock), MPROC_EPERM);
  s->stage = 0;
  pid = su_fork(holder, s);
  assert_true(su_await(&s->stage, 1));
  s->stage = 2;
  SU_JOIN_OK(pid);
  MPROC_PASS(mproc_lock_acquire(s->lock, 0));
  MPROC_PASS(mproc_lock_release(s->lock));
  rm(s);
}

/* The holder dies while we are already asleep waiting for the lock. */
static int die_later(void *arg) {
  shared *s = arg;
  CHILD_RC(mproc_lock_acquire(s->lock, -1), 0);
  CHILD_RC(mproc_rlock_acquire(s->rlock, -1), 0);
  CHILD_RC(mproc_rlock_acquire(s->rlock, -1), 0);
  s->stage = 1;
  su_sleep(0.2);
  raise(SIGKILL);
  return 0;
}

static void lock_owner_dies_while_waited_on(void **state) {
  (void)state;
  shared *s = mk();
  pid_t pid = su_fork(die_later, s);
  assert_true(su_await(&s->stage, 1));
  MPROC_ASSERT_RC(mproc_lock_acquire(s->lock, -1), MPROC_EOWNERDEAD);
  MPROC_ASSERT_RC(mproc_rlock_acquire(s->rlock, 20), MPROC_EOWNERDEAD);
  assert_int_equal(su_wait(pid, NULL), -SIGKILL);
  MPROC_PASS(mproc_rlock_acquire(s->rlock, 0));
  MPROC_ASSERT_RC(mproc_rlock_depth(s->rlock), 2);
  MPROC_PASS(mproc_rlock_release(s->rlock));
  MPROC_PASS(mproc_rlock_release(s->rlock));
  MPROC_PASS(mproc_lock_release(s->lock));
  rm(s);
}

static void rlock_recursion(void **state) {
  (void)state;
  shared *s = mk();
  MPROC_ASSERT_RC(mproc_rlock_depth(s->rlock), 0);
  for (int i = 1; i <= 5; i++) {
    MPROC_PASS(mproc_rlock_acquire(s->rlock, i % 2 ? -1 : 0));
    MPROC_ASSERT_RC(mproc_rlock_depth(s->rlock), i);
  }
  MPROC_ASSERT_RC(mproc_rlock_locked(s->rlock), 1);
  for (int i = 4; i >= 0; i--) {
    MPROC_PASS(mproc_rlock_release(s->rlock));
    MPROC_ASSERT_RC(mproc_rlock_depth(s->rlock), i);
  }
  MPROC_ASSERT_RC(mproc_rlock_locked(s->rlock), 0);
  MPROC_ASSERT_RC(mproc_rlock_release(s->rlock), MPROC_EPERM);
  /* Destroy while held (recursively) by the caller is allowed. */
  MPROC_PASS(mproc_rlock_acquire(s->rlock, -1));
  MPROC_PASS(mproc_rlock_acquire(s->rlock, -1));
  MPROC_PASS(mproc_rlock_destroy(s->rlock));
  MPROC_PASS(mproc_rlock_create(&s->rlock));
  rm(s);
}

/* Child: hold the RLock twice until told, so the parent sees it busy. */
static int rholder(void *arg) {
  shared *s = arg;
  CHILD_RC(mproc_rlock_acquire(s->rlock, -1), 0);
  CHILD_RC(mproc_rlock_acquire(s->rlock, -1), 0);
  s->stage = 1;
  CHILD_CHECK(su_await(&s->stage, 2));
  CHILD_RC(mproc_rlock_release(s->rlock), 0);
  s->stage = 3; /* still held once */
  CHILD_CHECK(su_await(&s->stage, 4));
  CHILD_RC(mproc_rlock_release(s->rlock), 0);
  return 0;
}

static void rlock_across_processes(void **state) {
  (void)state;
  shared *s = mk();
  pid_t pid = su_fork(rholder, s);
  assert_true(su_await(&s->stage, 1));
  MPROC_ASSERT_RC(mproc_rlock_acquire(s->rlock, 0), MPROC_ETIMEDOUT);
  MPROC_ASSERT_RC(mproc_rlock_release(s->rlock), MPROC_EPERM);
  MPROC_ASSERT_RC(mproc_rlock_depth(s->rlock), 0);
  MPROC_ASSERT_RC(mproc_rlock_destroy(s->rlock), MPROC_EBUSY);
  s->stage = 2;
  assert_true(su_await(&s->stage, 3));
  MPROC_ASSERT_RC(mproc_rlock_acquire(s->rlock, 0.05), MPROC_ETIMEDOUT);
  s->stage = 4;
  MPROC_PASS(mproc_rlock_acquire(s->rlock, 20));
  SU_JOIN_OK(pid);
  MPROC_PASS(mproc_rlock_release(s->rlock));
  rm(s);
}

/* Child: increment the shared counter under the lock, racing the others
 * (read, yield, write: without the lock updates would be lost). */
static int incrementer(void *arg) {
  shared *s = arg;
  for (int i = 0; i < s->iters; i++) {
    CHILD_RC(mproc_lock_acquire(s->lock, -1), 0);
    int64_t v = s->counter;
    if (i % 64 == 0) sched_yield();
    s->counter = v + 1;
    CHILD_RC(mproc_lock_release(s->lock), 0);
  }
  return 0;
}

static void lock_counter_exact(void **state) {
  (void)state;
  shared *s = mk();
  s->iters = 20000;
  pid_t pids[4];
  for (int i = 0; i < 4; i++) pids[i] = su_fork(incrementer, s);
  for (int i = 0; i < 4; i++) SU_JOIN_OK(pids[i]);
  assert_int_equal(s->counter, 4 * 20000);
  rm(s);
}

static void *thread_inc(void *arg) {
  shared *s = arg;
  for (int i = 0; i < s->iters; i++) {
    if (mproc_lock_acquire(s->lock, -1) != 0) return (void *)1;
    int64_t v = s->counter;
    s->counter = v + 1;
    if (mproc_lock_release(s->lock) != 0) return (void *)1;
    if (mproc_rlock_acquire(s->rlock, -1) != 0) return (void *)1;
    if (mproc_rlock_acquire(s->rlock, -1) != 0) return (void *)1;
    s->rcounter++;
    if (mproc_rlock_release(s->rlock) != 0) return (void *)1;
    s->rcounter++;
    if (mproc_rlock_release(s->rlock) != 0) return (void *)1;
  }
  return NULL;
}

static void lock_threads(void **state) {
  (void)state;
  shared *s = mk();
  s->iters = 5000;
  /* Two threads of this process, each through the Lock and the RLock. */
  pthread_t t[2];
  for (int i = 0; i < 2; i++) assert_int_equal(pthread_create(&t[i], NULL, thread_inc, s), 0);
  for (int i = 0; i < 2; i++) {
    void *r;
    pthread_join(t[i], &r);
    assert_null(r);
  }
  assert_int_equal(s->counter, 2 * 5000);
  assert_int_equal(s->rcounter, 2 * 2 * 5000);
  rm(s);
}

/* Child: block on the lock the parent holds for ~0.3 s; report nothing,
 * the parent reads our CPU time. */
static int sleeper(void *arg) {
  shared *s = arg;
  s->stage = 1;
  CHILD_RC(mproc_lock_acquire(s->lock, -1), 0);
  CHILD_RC(mproc_lock_release(s->lock), 0);
  CHILD_RC(mproc_rlock_acquire(s->rlock, 30), 0);
  CHILD_RC(mproc_rlock_release(s->rlock), 0);
  return 0;
}

static void lock_waiter_uses_no_cpu(void **state) {
  (void)state;
  shared *s = mk();
  MPROC_PASS(mproc_lock_acquire(s->lock, -1));
  MPROC_PASS(mproc_rlock_acquire(s->rlock, -1));
  pid_t pid = su_fork(sleeper, s);
  assert_true(su_await(&s->stage, 1));
  su_sleep(0.3);
  MPROC_PASS(mproc_lock_release(s->lock));
  su_sleep(0.3);
  MPROC_PASS(mproc_rlock_release(s->rlock));
  struct rusage ru = {0};
  assert_int_equal(su_wait(pid, &ru), 0);
  /* Two ~0.3 s waits: spinning would burn ~0.6 s of CPU. */
  assert_true(su_cpu(&ru) < 0.1);
  rm(s);
}

/* ---- contention: fairness, mixed timed/forever waiters, dead owner ---- */

typedef struct contend {
  mproc_lock_t *lock;
  volatile int stop;
  volatile int started;
  volatile int64_t turns[4];   /* acquisitions per child */
  volatile int64_t timeouts;   /* timed acquires that gave up */
  volatile int64_t inside;     /* processes inside the lock: must stay <= 1 */
  volatile int64_t violations;
  volatile int done;
  volatile int results[4];
} contend;

static contend *contend_new(void) {
  contend *c = su_shared(sizeof *c);
  memset((void *)c, 0, sizeof *c);
  MPROC_PASS(mproc_lock_create(&c->lock));
  return c;
}

static void contend_free(contend *c) {
  MPROC_PASS(mproc_lock_destroy(c->lock));
  mproc_heap_free(c);
}

/* Child `me` of two: take the lock in a tight loop (the worst case for
 * fairness: the holder re-takes it a few ns after releasing) until the
 * parent says stop. */
static int tight_locker(contend *c, int me) {
  __atomic_fetch_add(&c->started, 1, __ATOMIC_SEQ_CST);
  while (__atomic_load_n(&c->started, __ATOMIC_ACQUIRE) < 2) sched_yield();
  while (!__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE)) {
    CHILD_RC(mproc_lock_acquire(c->lock, -1), 0);
    if (c->inside++ != 0) c->violations++;
    c->turns[me]++;
    c->inside--;
    CHILD_RC(mproc_lock_release(c->lock), 0);
  }
  return 0;
}
static int tight0(void *a) { return tight_locker(a, 0); }
static int tight1(void *a) { return tight_locker(a, 1); }

/* Two processes hammering one Lock: both make progress (neither starves
 * while the other loops), and mutual exclusion holds. */
static void lock_two_processes_both_progress(void **state) {
  (void)state;
  contend *c = contend_new();
  pid_t a = su_fork(tight0, c), b = su_fork(tight1, c);
  double end = mproc_test_now() + 30;
  while (mproc_test_now() < end && (c->turns[0] < 2000 || c->turns[1] < 2000)) usleep(2000);
  __atomic_store_n(&c->stop, 1, __ATOMIC_RELEASE);
  SU_JOIN_OK(a);
  SU_JOIN_OK(b);
  assert_true(c->turns[0] >= 2000);
  assert_true(c->turns[1] >= 2000);
  assert_int_equal(c->violations, 0);
  contend_free(c);
}

/* Waiters with short timeouts, polls and forever waits mixed: a timed
 * waiter that gives up must never strand a forever waiter asleep (a lost
 * wake-up would hang it; the parent then sees `done` stuck and fails). */
static int mixed_waiter(void *arg) {
  contend *c = arg;
  int me = (int)__atomic_fetch_add(&c->started, 1, __ATOMIC_SEQ_CST);
  for (int i = 0; i < 3000; i++) {
    int rc;
    switch ((i + me) % 4) {
      case 0: rc = mproc_lock_acquire(c->lock, 0.0002); break;
      case 1: rc = mproc_lock_acquire(c->lock, 0); break;
      default: rc = mproc_lock_acquire(c->lock, -1); break;
    }
    if (rc == MPROC_ETIMEDOUT) {
      __atomic_fetch_add(&c->timeouts, 1, __ATOMIC_RELAXED);
      continue;
    }
    CHILD_RC(rc, 0);
    if (c->inside++ != 0) c->violations++;
    c->turns[me]++;
    if (i % 16 == 0) sched_yield(); /* sometimes hold it across a yield */
    c->inside--;
    CHILD_RC(mproc_lock_release(c->lock), 0);
  }
  __atomic_fetch_add(&c->done, 1, __ATOMIC_SEQ_CST);
  return 0;
}

static void lock_mixed_timed_waiters(void **state) {
  (void)state;
  contend *c = contend_new();
  pid_t p[4];
  for (int i = 0; i < 4; i++) p[i] = su_fork(mixed_waiter, c);
  int ok = su_await(&c->done, 4);
  if (!ok)
    for (int i = 0; i < 4; i++) kill(p[i], SIGKILL);
  for (int i = 0; i < 4; i++) {
    int st = su_wait(p[i], NULL);
    if (ok) assert_int_equal(st, 0);
  }
  assert_true(ok);
  assert_int_equal(c->violations, 0);
  for (int i = 0; i < 4; i++) assert_true(c->turns[i] > 0);
  MPROC_ASSERT_RC(mproc_lock_locked(c->lock), 0);
  contend_free(c);
}

/* The holder dies while two processes sleep on the lock: the kernel wakes
 * one, which gets MPROC_EOWNERDEAD; the other must still be woken when it
 * is released (the WAITERS bit survives the dead owner's hand-over). */
static int die_holding_lock(void *arg) {
  contend *c = arg;
  CHILD_RC(mproc_lock_acquire(c->lock, -1), 0);
  c->started = 1;
  for (;;) pause();
}

static int wait_forever(void *arg) {
  contend *c = arg;
  int rc = mproc_lock_acquire(c->lock, -1);
  CHILD_CHECK(rc == 0 || rc == MPROC_EOWNERDEAD);
  int me = (int)__atomic_fetch_add(&c->done, 1, __ATOMIC_SEQ_CST);
  c->results[me] = rc;
  su_sleep(0.05); /* let the other sleeper stay asleep a while */
  CHILD_RC(mproc_lock_release(c->lock), 0);
  return 0;
}

static void lock_owner_dies_two_sleepers(void **state) {
  (void)state;
  contend *c = contend_new();
  pid_t h = su_fork(die_holding_lock, c);
  assert_true(su_await(&c->started, 1));
  pid_t w1 = su_fork(wait_forever, c), w2 = su_fork(wait_forever, c);
  assert_true(su_await_sleeping(w1));
  assert_true(su_await_sleeping(w2));
  kill(h, SIGKILL);
  assert_int_equal(su_wait(h, NULL), -SIGKILL);
  int ok = su_await(&c->done, 2);
  if (!ok) {
    kill(w1, SIGKILL);
    kill(w2, SIGKILL);
  }
  su_wait(w1, NULL);
  su_wait(w2, NULL);
  assert_true(ok);
  assert_int_equal(c->results[0], MPROC_EOWNERDEAD);
  assert_int_equal(c->results[1], 0);
  MPROC_ASSERT_RC(mproc_lock_locked(c->lock), 0);
  contend_free(c);
}

/* Chaos: workers update a pair (a, b) that must stay equal, under the
 * Lock and the RLock in turn; a killer SIGKILLs them at random, mid-update
 * included. Every acquire that finds a dead owner repairs the pair. In the
 * end nothing is wedged, no worker ever timed out, and the pair is equal. */
typedef struct chaos {
  mproc_lock_t *lock;
  mproc_rlock_t *rlock;
  volatile int64_t a, b, ra, rb;
  volatile int64_t repairs, ops;
} chaos;

static int chaos_worker(void *arg) {
  chaos *c = arg;
  for (unsigned i = 0;; i++) {
    int rc = mproc_lock_acquire(c->lock, 20);
    CHILD_CHECK(rc == 0 || rc == MPROC_EOWNERDEAD);
    if (rc == MPROC_EOWNERDEAD) {
      c->b = c->a;
      c->repairs++;
    }
    c->a++;
    if (i % 8 == 0) sched_yield();
    c->b++;
    c->ops++;
    CHILD_RC(mproc_lock_release(c->lock), 0);
    rc = mproc_rlock_acquire(c->rlock, 20);
    CHILD_CHECK(rc == 0 || rc == MPROC_EOWNERDEAD);
    if (rc == MPROC_EOWNERDEAD) c->rb = c->ra;
    CHILD_RC(mproc_rlock_acquire(c->rlock, 0), 0);
    c->ra++;
    if (i % 8 == 4) sched_yield();
    c->rb++;
    CHILD_RC(mproc_rlock_release(c->rlock), 0);
    CHILD_RC(mproc_rlock_release(c->rlock), 0);
  }
}

static void lock_chaos_random_kills(void **state) {
  (void)state;
  chaos *c = su_shared(sizeof *c);
  MPROC_PASS(mproc_lock_create(&c->lock));
  MPROC_PASS(mproc_rlock_create(&c->rlock));
  pid_t w[4];
  for (int i = 0; i < 4; i++) w[i] = su_fork(chaos_worker, c);
  unsigned seed = 12345;
  int kills = 0;
  double end = mproc_test_now() + 4;
  while (mproc_test_now() < end) {
    su_sleep(0.002 + (rand_r(&seed) % 8) * 0.001);
    int k = rand_r(&seed) % 4;
    kill(w[k], SIGKILL);
    /* Killed, never failed: a worker that timed out would exit 99. */
    assert_int_equal(su_wait(w[k], NULL), -SIGKILL);
    kills++;
    w[k] = su_fork(chaos_worker, c);
  }
  for (int i = 0; i < 4; i++) {
    kill(w[i], SIGKILL);
    assert_int_equal(su_wait(w[i], NULL), -SIGKILL);
  }
  int rc = mproc_lock_acquire(c->lock, 5);
  assert_true(rc == 0 || rc == MPROC_EOWNERDEAD);
  if (rc == MPROC_EOWNERDEAD) c->b = c->a;
  assert_true(c->a == c->b);
  MPROC_PASS(mproc_lock_release(c->lock));
  rc = mproc_rlock_acquire(c->rlock, 5);
  assert_true(rc == 0 || rc == MPROC_EOWNERDEAD);
  if (rc == MPROC_EOWNERDEAD) c->rb = c->ra;
  assert_true(c->ra == c->rb);
  MPROC_PASS(mproc_rlock_release(c->rlock));
  assert_true(kills > 50);
  assert_true(c->ops > 0);
  print_message("chaos: %d kills, %lld ops, %lld repairs\n", kills, (long long)c->ops,
                (long long)c->repairs);
  MPROC_PASS(mproc_lock_destroy(c->lock));
  MPROC_PASS(mproc_rlock_destroy(c->rlock));
}

static const struct CMUnitTest tests[] = {
    MPROC_SLOW_TEST(lock_chaos_random_kills),
    MPROC_TEST(lock_basic),
    MPROC_TEST(lock_bad_input),
    MPROC_TEST(lock_bad_timeouts),
    MPROC_TEST(lock_timeouts),
    MPROC_TEST(lock_owner_killed),
    MPROC_TEST(lock_owner_dies_while_waited_on),
    MPROC_TEST(rlock_recursion),
    MPROC_TEST(rlock_across_processes),
    MPROC_TEST(lock_counter_exact),
    MPROC_TEST(lock_threads),
    MPROC_TEST(lock_waiter_uses_no_cpu),
    MPROC_TEST(lock_two_processes_both_progress),
    MPROC_TEST(lock_mixed_timed_waiters),
    MPROC_TEST(lock_owner_dies_two_sleepers),
};
MPROC_TEST_MAIN(tests)
