/* test_event.c - Event: set/clear/is_set/wait, timeouts, bad input,
 * waking many processes, set-then-clear still releases waiters, no CPU
 * while waiting. */
#include <math.h>
#include <pthread.h>

#include "sync_util.h"

typedef struct shared {
  mproc_event_t *ev;
  volatile int ready;
  volatile int woke;
} shared;

static void event_basic(void **state) {
  (void)state;
  mproc_event_t *e;
  MPROC_PASS(mproc_event_create(&e));
  MPROC_ASSERT_RC(mproc_event_is_set(e), 0);
  MPROC_ASSERT_RC(mproc_event_wait(e, 0), MPROC_ETIMEDOUT);
  double t0 = mproc_test_now();
  MPROC_ASSERT_RC(mproc_event_wait(e, 0.15), MPROC_ETIMEDOUT);
  assert_true(mproc_test_now() - t0 >= 0.14);
  MPROC_PASS(mproc_event_set(e));
  MPROC_PASS(mproc_event_set(e)); /* idempotent */
  MPROC_ASSERT_RC(mproc_event_is_set(e), 1);
  MPROC_PASS(mproc_event_wait(e, 0));
  MPROC_PASS(mproc_event_wait(e, -1));
  MPROC_PASS(mproc_event_clear(e));
  MPROC_PASS(mproc_event_clear(e));
  MPROC_ASSERT_RC(mproc_event_is_set(e), 0);
  MPROC_ASSERT_RC(mproc_event_wait(e, 0.01), MPROC_ETIMEDOUT);
  MPROC_PASS(mproc_event_destroy(e));
  MPROC_ASSERT_RC(mproc_event_destroy(NULL), 0);
}

static void event_bad_input(void **state) {
  (void)state;
  mproc_event_t *e;
  int junk = 0;
  MPROC_ASSERT_RC(mproc_event_create(NULL), MPROC_EINVAL);
  MPROC_PASS(mproc_event_create(&e));
  MPROC_ASSERT_RC(mproc_event_wait(e, -2), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_event_wait(e, NAN), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_event_wait(NULL, 0), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_event_set(NULL), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_event_clear(NULL), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_event_is_set(NULL), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_event_set((mproc_event_t *)(void *)&junk), MPROC_EINVAL);
  MPROC_PASS(mproc_event_destroy(e));
  MPROC_ASSERT_RC(mproc_event_set(e), MPROC_EDESTROYED);
  MPROC_ASSERT_RC(mproc_event_clear(e), MPROC_EDESTROYED);
  MPROC_ASSERT_RC(mproc_event_is_set(e), MPROC_EDESTROYED);
  MPROC_ASSERT_RC(mproc_event_wait(e, 0), MPROC_EDESTROYED);
  MPROC_ASSERT_RC(mproc_event_destroy(e), MPROC_EDESTROYED);
}

static int waiter(void *arg) {
  shared *s = arg;
  __atomic_add_fetch(&s->ready, 1, __ATOMIC_SEQ_CST);
  CHILD_RC(mproc_event_wait(s->ev, 30), 0);
  __atomic_add_fetch(&s->woke, 1, __ATOMIC_SEQ_CST);
  return 0;
}

/* NaN, infinite, below -1 and huge timeouts: -EINVAL, set or not. */
static void event_bad_timeouts(void **state) {
  (void)state;
  mproc_event_t *e;
  MPROC_PASS(mproc_event_create(&e));
  for (int set = 0; set < 2; set++) {
    for (size_t i = 0; i < SU_N_BAD_TIMEOUTS; i++) {
      double t = su_bad_timeouts[i];
      SU_ASSERT_TIMEOUT_RC(mproc_event_wait(e, t), t, MPROC_EINVAL);
    }
    MPROC_ASSERT_RC(mproc_event_is_set(e), set);
    MPROC_PASS(mproc_event_set(e));
  }
  MPROC_PASS(mproc_event_destroy(e));
  MPROC_ASSERT_RC(mproc_event_wait(e, INFINITY), MPROC_EDESTROYED);
  MPROC_ASSERT_RC(mproc_event_destroy(e), MPROC_EDESTROYED);
}

static void event_wakes_all_processes(void **state) {
  (void)state;
  shared *s = su_shared(sizeof *s);
  MPROC_PASS(mproc_event_create(&s->ev));
  pid_t p[4];
  for (int i = 0; i < 4; i++) p[i] = su_fork(waiter, s);
  assert_true(su_await(&s->ready, 4));
  su_sleep(0.3); /* let them fall asleep */
  assert_int_equal(s->woke, 0);
  MPROC_PASS(mproc_event_set(s->ev));
  for (int i = 0; i < 4; i++) {
    struct rusage ru = {0};
    assert_int_equal(su_wait(p[i], &ru), 0);
    assert_true(su_cpu(&ru) < 0.1); /* slept, did not spin */
  }
  assert_int_equal(s->woke, 4);
  MPROC_PASS(mproc_event_destroy(s->ev));
}

static void event_set_then_clear_releases_waiters(void **state) {
  (void)state;
  shared *s = su_shared(sizeof *s);
  MPROC_PASS(mproc_event_create(&s->ev));
  pid_t p[2];
  for (int i = 0; i < 2; i++) p[i] = su_fork(waiter, s);
  assert_true(su_await(&s->ready, 2));
  for (int i = 0; i < 2; i++) assert_true(su_await_sleeping(p[i]));
  MPROC_PASS(mproc_event_set(s->ev));
  MPROC_PASS(mproc_event_clear(s->ev));
  for (int i = 0; i < 2; i++) SU_JOIN_OK(p[i]);
  assert_int_equal(s->woke, 2);
  MPROC_ASSERT_RC(mproc_event_is_set(s->ev), 0);
  MPROC_PASS(mproc_event_destroy(s->ev));
}

static int killed_waiter(void *arg) {
  shared *s = arg;
  __atomic_add_fetch(&s->ready, 1, __ATOMIC_SEQ_CST);
  mproc_event_wait(s->ev, -1);
  return 0;
}

static void event_waiter_killed(void **state) {
  (void)state;
  shared *s = su_shared(sizeof *s);
  MPROC_PASS(mproc_event_create(&s->ev));
  pid_t k = su_fork(killed_waiter, s);
  pid_t w = su_fork(waiter, s);
  assert_true(su_await(&s->ready, 2));
  assert_true(su_await_sleeping(k));
  kill(k, SIGKILL);
  assert_int_equal(su_wait(k, NULL), -SIGKILL);
  MPROC_PASS(mproc_event_set(s->ev));
  SU_JOIN_OK(w);
  MPROC_PASS(mproc_event_destroy(s->ev));
}

/* Ping-pong between two threads through two events. */
typedef struct pp {
  mproc_event_t *ping, *pong;
  int count;
} pp;

static void *pp_thread(void *arg) {
  pp *p = arg;
  for (int i = 0; i < 2000; i++) {
    if (mproc_event_wait(p->ping, 30)) return (void *)1;
    mproc_event_clear(p->ping);
    p->count++;
    mproc_event_set(p->pong);
  }
  return NULL;
}

static void event_threads_ping_pong(void **state) {
  (void)state;
  pp *p = su_shared(sizeof *p);
  MPROC_PASS(mproc_event_create(&p->ping));
  MPROC_PASS(mproc_event_create(&p->pong));
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, pp_thread, p), 0);
  for (int i = 0; i < 2000; i++) {
    MPROC_PASS(mproc_event_set(p->ping));
    MPROC_PASS(mproc_event_wait(p->pong, 30));
    MPROC_PASS(mproc_event_clear(p->pong));
    assert_int_equal(p->count, i + 1);
  }
  void *r;
  pthread_join(t, &r);
  assert_null(r);
  MPROC_PASS(mproc_event_destroy(p->ping));
  MPROC_PASS(mproc_event_destroy(p->pong));
}

static const struct CMUnitTest tests[] = {
    MPROC_TEST(event_threads_ping_pong),
    MPROC_TEST(event_basic),
    MPROC_TEST(event_bad_input),
    MPROC_TEST(event_bad_timeouts),
    MPROC_TEST(event_wakes_all_processes),
    MPROC_TEST(event_set_then_clear_releases_waiters),
    MPROC_TEST(event_waiter_killed),
};
MPROC_TEST_MAIN(tests)
