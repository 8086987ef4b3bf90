/* test_sem.c - Semaphore and BoundedSemaphore: counts, bad input,
 * over-release, timeouts, cross-process hand-off, no CPU while waiting. */
#include <limits.h>
#include <math.h>
#include <pthread.h>

#include "sync_util.h"

typedef struct shared {
  mproc_sem_t *sem;
  mproc_sem_t *done;
  volatile int stage;
  volatile int inside, max_inside;
  mproc_lock_t *lock;
} shared;

static void sem_counts(void **state) {
  (void)state;
  mproc_sem_t *s;
  int v = -1;
  MPROC_PASS(mproc_sem_create(&s, 2));
  MPROC_PASS(mproc_sem_get_value(s, &v));
  assert_int_equal(v, 2);
  MPROC_PASS(mproc_sem_acquire(s, -1));
  MPROC_PASS(mproc_sem_acquire(s, 0));
  MPROC_ASSERT_RC(mproc_sem_acquire(s, 0), MPROC_ETIMEDOUT);
  double t0 = mproc_test_now();
  MPROC_ASSERT_RC(mproc_sem_acquire(s, 0.15), MPROC_ETIMEDOUT);
  assert_true(mproc_test_now() - t0 >= 0.14);
  MPROC_PASS(mproc_sem_get_value(s, &v));
  assert_int_equal(v, 0);
  /* An unbounded semaphore may go above its initial value. */
  for (int i = 0; i < 5; i++) MPROC_PASS(mproc_sem_release(s));
  MPROC_PASS(mproc_sem_get_value(s, &v));
  assert_int_equal(v, 5);
  MPROC_PASS(mproc_sem_destroy(s));
  MPROC_ASSERT_RC(mproc_sem_destroy(NULL), 0);
  /* Zero is a valid start; INT_MAX is the ceiling. */
  MPROC_PASS(mproc_sem_create(&s, INT_MAX));
  MPROC_ASSERT_RC(mproc_sem_release(s), MPROC_EOVERFLOW);
  MPROC_PASS(mproc_sem_acquire(s, 0));
  MPROC_PASS(mproc_sem_release(s));
  MPROC_PASS(mproc_sem_destroy(s));
}

static void bsem_over_release(void **state) {
  (void)state;
  mproc_sem_t *s;
  int v;
  MPROC_PASS(mproc_bsem_create(&s, 2));
  MPROC_ASSERT_RC(mproc_sem_release(s), MPROC_EOVERFLOW);
  MPROC_PASS(mproc_sem_get_value(s, &v));
  assert_int_equal(v, 2);
  MPROC_PASS(mproc_sem_acquire(s, 0));
  MPROC_PASS(mproc_sem_release(s));
  MPROC_ASSERT_RC(mproc_sem_release(s), MPROC_EOVERFLOW);
  MPROC_PASS(mproc_sem_destroy(s));
  /* BoundedSemaphore(0), as Python allows: never acquirable, never
   * releasable. */
  MPROC_PASS(mproc_bsem_create(&s, 0));
  MPROC_ASSERT_RC(mproc_sem_acquire(s, 0), MPROC_ETIMEDOUT);
  MPROC_ASSERT_RC(mproc_sem_release(s), MPROC_EOVERFLOW);
  MPROC_PASS(mproc_sem_destroy(s));
}

static void sem_bad_input(void **state) {
  (void)state;
  mproc_sem_t *s;
  int v, junk = 0;
  MPROC_ASSERT_RC(mproc_sem_create(NULL, 1), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_sem_create(&s, -1), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_bsem_create(&s, -5), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_bsem_create(NULL, 1), MPROC_EINVAL);
  MPROC_PASS(mproc_sem_create(&s, 1));
  MPROC_ASSERT_RC(mproc_sem_acquire(NULL, -1), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_sem_acquire(s, -7), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_sem_acquire(s, NAN), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_sem_release(NULL), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_sem_get_value(NULL, &v), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_sem_get_value(s, NULL), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_sem_acquire((mproc_sem_t *)(void *)&junk, 0), MPROC_EINVAL);
  mproc_lock_t *l;
  MPROC_PASS(mproc_lock_create(&l));
  MPROC_ASSERT_RC(mproc_sem_release((mproc_sem_t *)(void *)l), MPROC_EINVAL);
  MPROC_PASS(mproc_lock_destroy(l));
  MPROC_PASS(mproc_sem_destroy(s));
  MPROC_ASSERT_RC(mproc_sem_acquire(s, 0), MPROC_EDESTROYED);
  MPROC_ASSERT_RC(mproc_sem_release(s), MPROC_EDESTROYED);
  MPROC_ASSERT_RC(mproc_sem_get_value(s, &v), MPROC_EDESTROYED);
  MPROC_ASSERT_RC(mproc_sem_destroy(s), MPROC_EDESTROYED);
}

/* Child: enter the region guarded by a semaphore of 2 many times, and
 * record how many are inside at once. */
static int region(void *arg) {
  shared *s = arg;
  for (int i = 0; i < 300; i++) {
    CHILD_RC(mproc_sem_acquire(s->sem, -1), 0);
    int n = __atomic_add_fetch(&s->inside, 1, __ATOMIC_SEQ_CST);
    int m = s->max_inside;
    while (n > m && !__atomic_compare_exchange_n(&s->max_inside, &m, n, 0,
                                                  __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
    }
    if (i % 16 == 0) sched_yield();
    __atomic_sub_fetch(&s->inside, 1, __ATOMIC_SEQ_CST);
    CHILD_RC(mproc_sem_release(s->sem), 0);
  }
  return 0;
}

/* NaN, infinite, below -1 and huge timeouts: -EINVAL, no unit taken. */
static void sem_bad_timeouts(void **state) {
  (void)state;
  mproc_sem_t *s, *b;
  int v = -1;
  MPROC_PASS(mproc_sem_create(&s, 1));
  MPROC_PASS(mproc_bsem_create(&b, 0));
  for (size_t i = 0; i < SU_N_BAD_TIMEOUTS; i++) {
    double t = su_bad_timeouts[i];
    SU_ASSERT_TIMEOUT_RC(mproc_sem_acquire(s, t), t, MPROC_EINVAL);
    SU_ASSERT_TIMEOUT_RC(mproc_sem_acquire(b, t), t, MPROC_EINVAL);
  }
  MPROC_PASS(mproc_sem_get_value(s, &v));
  assert_int_equal(v, 1);
  MPROC_PASS(mproc_sem_get_value(b, &v));
  assert_int_equal(v, 0);
  MPROC_PASS(mproc_sem_destroy(s));
  MPROC_PASS(mproc_sem_destroy(b));
  MPROC_ASSERT_RC(mproc_sem_acquire(s, NAN), MPROC_EDESTROYED);
  MPROC_ASSERT_RC(mproc_sem_destroy(b), MPROC_EDESTROYED);
}

static void sem_limits_concurrency(void **state) {
  (void)state;
  shared *s = su_shared(sizeof *s);
  MPROC_PASS(mproc_bsem_create(&s->sem, 2));
  pid_t p[4];
  for (int i = 0; i < 4; i++) p[i] = su_fork(region, s);
  for (int i = 0; i < 4; i++) SU_JOIN_OK(p[i]);
  assert_true(s->max_inside >= 1 && s->max_inside <= 2);
  int v;
  MPROC_PASS(mproc_sem_get_value(s->sem, &v));
  assert_int_equal(v, 2);
  MPROC_PASS(mproc_sem_destroy(s->sem));
}

/* Child: wait for a unit the parent gives ~0.3 s later (no spinning), then
 * signal back through a second semaphore. */
static int waiter(void *arg) {
  shared *s = arg;
  s->stage = 1;
  CHILD_RC(mproc_sem_acquire(s->sem, 30), 0);
  CHILD_RC(mproc_sem_release(s->done), 0);
  return 0;
}

static void sem_cross_process_no_cpu(void **state) {
  (void)state;
  shared *s = su_shared(sizeof *s);
  MPROC_PASS(mproc_sem_create(&s->sem, 0));
  MPROC_PASS(mproc_sem_create(&s->done, 0));
  pid_t p = su_fork(waiter, s);
  assert_true(su_await(&s->stage, 1));
  su_sleep(0.3);
  MPROC_PASS(mproc_sem_release(s->sem));
  MPROC_PASS(mproc_sem_acquire(s->done, 30));
  struct rusage ru = {0};
  assert_int_equal(su_wait(p, &ru), 0);
  assert_true(su_cpu(&ru) < 0.1);
  MPROC_PASS(mproc_sem_destroy(s->sem));
  MPROC_PASS(mproc_sem_destroy(s->done));
}

/* A unit held by a killed process is lost (no owner to detect): documented
 * behaviour, checked so a change is noticed. The semaphore still works. */
static int take_and_die(void *arg) {
  shared *s = arg;
  CHILD_RC(mproc_sem_acquire(s->sem, -1), 0);
  raise(SIGKILL);
  return 0;
}

static void sem_holder_killed_loses_unit(void **state) {
  (void)state;
  shared *s = su_shared(sizeof *s);
  MPROC_PASS(mproc_sem_create(&s->sem, 2));
  assert_int_equal(su_wait(su_fork(take_and_die, s), NULL), -SIGKILL);
  int v;
  MPROC_PASS(mproc_sem_get_value(s->sem, &v));
  assert_int_equal(v, 1);
  MPROC_PASS(mproc_sem_acquire(s->sem, 0));
  MPROC_ASSERT_RC(mproc_sem_acquire(s->sem, 0), MPROC_ETIMEDOUT);
  MPROC_PASS(mproc_sem_release(s->sem));
  MPROC_PASS(mproc_sem_destroy(s->sem));
}

/* A waiter killed while asleep does not disturb the others. */
static int wait_forever(void *arg) {
  shared *s = arg;
  __atomic_add_fetch(&s->stage, 1, __ATOMIC_SEQ_CST);
  CHILD_RC(mproc_sem_acquire(s->sem, -1), 0);
  CHILD_RC(mproc_sem_release(s->done), 0);
  return 0;
}

static void sem_waiter_killed(void **state) {
  (void)state;
  shared *s = su_shared(sizeof *s);
  MPROC_PASS(mproc_sem_create(&s->sem, 0));
  MPROC_PASS(mproc_sem_create(&s->done, 0));
  pid_t a = su_fork(wait_forever, s), b = su_fork(wait_forever, s);
  assert_true(su_await(&s->stage, 2));
  assert_true(su_await_sleeping(a));
  kill(a, SIGKILL);
  assert_int_equal(su_wait(a, NULL), -SIGKILL);
  MPROC_PASS(mproc_sem_release(s->sem));
  MPROC_PASS(mproc_sem_acquire(s->done, 30));
  SU_JOIN_OK(b);
  MPROC_PASS(mproc_sem_destroy(s->sem));
  MPROC_PASS(mproc_sem_destroy(s->done));
}

/* Threads hand units through a semaphore; the counts must balance. */
typedef struct ts {
  mproc_sem_t *items, *slots;
  int buf[4], head, tail, sum;
  mproc_lock_t *lock;
} ts;

static void *ts_consumer(void *arg) {
  ts *q = arg;
  for (int i = 0; i < 5000; i++) {
    if (mproc_sem_acquire(q->items, 30)) return (void *)1;
    mproc_lock_acquire(q->lock, -1);
    q->sum += q->buf[q->tail++ % 4];
    mproc_lock_release(q->lock);
    if (mproc_sem_release(q->slots)) return (void *)2;
  }
  return NULL;
}

static void sem_threads_bounded_buffer(void **state) {
  (void)state;
  ts *q = su_shared(sizeof *q);
  MPROC_PASS(mproc_sem_create(&q->items, 0));
  MPROC_PASS(mproc_bsem_create(&q->slots, 4));
  MPROC_PASS(mproc_lock_create(&q->lock));
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, ts_consumer, q), 0);
  for (int i = 0; i < 5000; i++) {
    MPROC_PASS(mproc_sem_acquire(q->slots, 30));
    MPROC_PASS(mproc_lock_acquire(q->lock, -1));
    q->buf[q->head++ % 4] = 1;
    MPROC_PASS(mproc_lock_release(q->lock));
    MPROC_PASS(mproc_sem_release(q->items));
  }
  void *r;
  pthread_join(t, &r);
  assert_null(r);
  assert_int_equal(q->sum, 5000);
  MPROC_PASS(mproc_sem_destroy(q->items));
  MPROC_PASS(mproc_sem_destroy(q->slots));
  MPROC_PASS(mproc_lock_destroy(q->lock));
}

static const struct CMUnitTest tests[] = {
    MPROC_TEST(sem_threads_bounded_buffer),
    MPROC_TEST(sem_counts),
    MPROC_TEST(bsem_over_release),
    MPROC_TEST(sem_bad_input),
    MPROC_TEST(sem_bad_timeouts),
    MPROC_TEST(sem_limits_concurrency),
    MPROC_TEST(sem_cross_process_no_cpu),
    MPROC_TEST(sem_holder_killed_loses_unit),
    MPROC_TEST(sem_waiter_killed),
};
MPROC_TEST_MAIN(tests)
