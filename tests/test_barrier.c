/* test_barrier.c - Barrier: arrival indices over many cycles across
 * processes, timeouts break it, abort, reset (idle and with waiters), a
 * party killed while waiting, attributes, bad input, no CPU while waiting. */
#include <math.h>
#include <pthread.h>

#include "sync_util.h"

#define CYCLES 200

typedef struct shared {
  mproc_barrier_t *b;
  volatile int ready;
  volatile int result;
  volatile unsigned seen[CYCLES]; /* bitmask of indices per cycle */
} shared;

static shared *mk(int parties) {
  shared *s = su_shared(sizeof *s);
  MPROC_PASS(mproc_barrier_create(&s->b, parties));
  return s;
}

static void barrier_basic(void **state) {
  (void)state;
  shared *s = mk(1);
  MPROC_ASSERT_RC(mproc_barrier_parties(s->b), 1);
  for (int i = 0; i < 3; i++) MPROC_ASSERT_RC(mproc_barrier_wait(s->b, -1), 0);
  MPROC_ASSERT_RC(mproc_barrier_wait(s->b, 0), 0);
  MPROC_ASSERT_RC(mproc_barrier_n_waiting(s->b), 0);
  MPROC_ASSERT_RC(mproc_barrier_broken(s->b), 0);
  MPROC_PASS(mproc_barrier_destroy(s->b));
  MPROC_ASSERT_RC(mproc_barrier_destroy(NULL), 0);
}

static void barrier_bad_input(void **state) {
  (void)state;
  mproc_barrier_t *b;
  int junk = 0;
  MPROC_ASSERT_RC(mproc_barrier_create(NULL, 2), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_barrier_create(&b, 0), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_barrier_create(&b, -3), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_barrier_create(&b, 65537), MPROC_EINVAL);
  MPROC_PASS(mproc_barrier_create(&b, 2));
  MPROC_ASSERT_RC(mproc_barrier_wait(b, -2), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_barrier_wait(b, NAN), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_barrier_wait(NULL, 0), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_barrier_abort(NULL), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_barrier_reset(NULL), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_barrier_parties(NULL), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_barrier_n_waiting(NULL), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_barrier_broken(NULL), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_barrier_wait((mproc_barrier_t *)(void *)&junk, 0), MPROC_EINVAL);
  MPROC_PASS(mproc_barrier_destroy(b));
  MPROC_ASSERT_RC(mproc_barrier_wait(b, 0), MPROC_EDESTROYED);
  MPROC_ASSERT_RC(mproc_barrier_abort(b), MPROC_EDESTROYED);
  MPROC_ASSERT_RC(mproc_barrier_reset(b), MPROC_EDESTROYED);
  MPROC_ASSERT_RC(mproc_barrier_parties(b), MPROC_EDESTROYED);
  MPROC_ASSERT_RC(mproc_barrier_n_waiting(b), MPROC_EDESTROYED);
  MPROC_ASSERT_RC(mproc_barrier_broken(b), MPROC_EDESTROYED);
  MPROC_ASSERT_RC(mproc_barrier_destroy(b), MPROC_EDESTROYED);
}

static int cycler(void *arg) {
  shared *s = arg;
  for (int c = 0; c < CYCLES; c++) {
    int idx = mproc_barrier_wait(s->b, 30);
    CHILD_CHECK(idx >= 0 && idx < 3);
    __atomic_fetch_or(&s->seen[c], 1u << idx, __ATOMIC_SEQ_CST);
  }
  return 0;
}

static void barrier_indices_many_cycles(void **state) {
  (void)state;
  shared *s = mk(3);
  pid_t a = su_fork(cycler, s), b = su_fork(cycler, s);
  assert_int_equal(cycler(s), 0);
  SU_JOIN_OK(a);
  SU_JOIN_OK(b);
  /* Every cycle handed out 0, 1 and 2 exactly once. */
  for (int c = 0; c < CYCLES; c++) assert_int_equal(s->seen[c], 7u);
  MPROC_ASSERT_RC(mproc_barrier_broken(s->b), 0);
  MPROC_PASS(mproc_barrier_destroy(s->b));
}

/* Child: one wait; its result goes to s->result. */
static int one_wait(void *arg) {
  shared *s = arg;
  __atomic_add_fetch(&s->ready, 1, __ATOMIC_SEQ_CST);
  s->result = mproc_barrier_wait(s->b, 30);
  return 0;
}

static void barrier_timeout_breaks(void **state) {
  (void)state;
  shared *s = mk(2);
  double t0 = mproc_test_now();
  MPROC_ASSERT_RC(mproc_barrier_wait(s->b, 0.15), MPROC_ETIMEDOUT);
  assert_true(mproc_test_now() - t0 >= 0.14);
  MPROC_ASSERT_RC(mproc_barrier_broken(s->b), 1);
  MPROC_ASSERT_RC(mproc_barrier_wait(s->b, -1), MPROC_EBROKEN);
  MPROC_ASSERT_RC(mproc_barrier_wait(s->b, 0), MPROC_EBROKEN);
  MPROC_PASS(mproc_barrier_reset(s->b));
  MPROC_ASSERT_RC(mproc_barrier_broken(s->b), 0);
  /* A poll that is not the last arrival breaks it too (as a timeout). */
  MPROC_ASSERT_RC(mproc_barrier_wait(s->b, 0), MPROC_ETIMEDOUT);
  MPROC_ASSERT_RC(mproc_barrier_broken(s->b), 1);
  MPROC_PASS(mproc_barrier_reset(s->b));
  /* Other waiters of a cycle broken by a timeout get EBROKEN. */
  shared *t = mk(3);
  pid_t p = su_fork(one_wait, t);
  assert_true(su_await(&t->ready, 1));
  assert_true(su_await_sleeping(p));
  MPROC_ASSERT_RC(mproc_barrier_wait(t->b, 0.05), MPROC_ETIMEDOUT);
  SU_JOIN_OK(p);
  assert_int_equal(t->result, MPROC_EBROKEN);
  MPROC_PASS(mproc_barrier_destroy(t->b));
  /* And the reset barrier works for a whole cycle. */
  p = su_fork(one_wait, s);
  int idx = mproc_barrier_wait(s->b, 30);
  SU_JOIN_OK(p);
  assert_true((idx == 0 && s->result == 1) || (idx == 1 && s->result == 0));
  MPROC_PASS(mproc_barrier_destroy(s->b));
}

static void barrier_abort(void **state) {
  (void)state;
  shared *s = mk(2);
  pid_t p = su_fork(one_wait, s);
  assert_true(su_await(&s->ready, 1));
  assert_true(su_await_sleeping(p));
  MPROC_ASSERT_RC(mproc_barrier_n_waiting(s->b), 1);
  MPROC_ASSERT_RC(mproc_barrier_destroy(s->b), MPROC_EBUSY);
  MPROC_PASS(mproc_barrier_abort(s->b));
  SU_JOIN_OK(p);
  assert_int_equal(s->result, MPROC_EBROKEN);
  MPROC_ASSERT_RC(mproc_barrier_broken(s->b), 1);
  MPROC_ASSERT_RC(mproc_barrier_wait(s->b, 1), MPROC_EBROKEN);
  MPROC_PASS(mproc_barrier_reset(s->b));
  MPROC_ASSERT_RC(mproc_barrier_broken(s->b), 0);
  MPROC_ASSERT_RC(mproc_barrier_n_waiting(s->b), 0);
  s->ready = 0;
  p = su_fork(one_wait, s);
  int idx = mproc_barrier_wait(s->b, 30);
  SU_JOIN_OK(p);
  assert_true(idx == 0 || idx == 1);
  assert_int_equal(s->result, 1 - idx);
  MPROC_PASS(mproc_barrier_destroy(s->b));
}

static void barrier_reset_with_waiters(void **state) {
  (void)state;
  shared *s = mk(3);
  pid_t p = su_fork(one_wait, s);
  assert_true(su_await(&s->ready, 1));
  assert_true(su_await_sleeping(p));
  MPROC_PASS(mproc_barrier_reset(s->b));
  SU_JOIN_OK(p);
  assert_int_equal(s->result, MPROC_EBROKEN);
  /* Reset leaves it usable, not broken, once the waiter left. */
  MPROC_ASSERT_RC(mproc_barrier_broken(s->b), 0);
  s->ready = 0;
  pid_t a = su_fork(cycler, s), b = su_fork(cycler, s);
  assert_int_equal(cycler(s), 0);
  SU_JOIN_OK(a);
  SU_JOIN_OK(b);
  MPROC_PASS(mproc_barrier_destroy(s->b));
}

static void barrier_party_killed(void **state) {
  (void)state;
  shared *s = mk(3);
  pid_t victim = su_fork(one_wait, s);
  assert_true(su_await(&s->ready, 1));
  assert_true(su_await_sleeping(victim));
  pid_t other = su_fork(one_wait, s);
  assert_true(su_await(&s->ready, 2));
  assert_true(su_await_sleeping(other));
  MPROC_ASSERT_RC(mproc_barrier_n_waiting(s->b), 2);
  kill(victim, SIGKILL);
  su_wait_zombie(victim); /* dead but not reaped: must count as dead */
  /* The survivor notices the dead party and the barrier breaks. */
  SU_JOIN_OK(other);
  assert_int_equal(su_wait(victim, NULL), -SIGKILL);
  assert_int_equal(s->result, MPROC_EBROKEN);
  MPROC_ASSERT_RC(mproc_barrier_broken(s->b), 1);
  MPROC_ASSERT_RC(mproc_barrier_n_waiting(s->b), 0);
  MPROC_PASS(mproc_barrier_reset(s->b));
  pid_t a = su_fork(cycler, s), b = su_fork(cycler, s);
  assert_int_equal(cycler(s), 0);
  SU_JOIN_OK(a);
  SU_JOIN_OK(b);
  MPROC_PASS(mproc_barrier_destroy(s->b));
}

/* A waiter is killed before the others arrive: no hang either way. */
static void barrier_dead_party_then_arrivals(void **state) {
  (void)state;
  shared *s = mk(2);
  pid_t victim = su_fork(one_wait, s);
  assert_true(su_await(&s->ready, 1));
  assert_true(su_await_sleeping(victim));
  kill(victim, SIGKILL);
  assert_int_equal(su_wait(victim, NULL), -SIGKILL);
  /* Arriving now would complete a cycle with a dead party; either the
   * arrival completes it (index 1) or finds the barrier broken - never a
   * hang, and the barrier is usable after a reset. */
  int rc = mproc_barrier_wait(s->b, 10);
  assert_true(rc == 1 || rc == MPROC_EBROKEN);
  MPROC_PASS(mproc_barrier_reset(s->b));
  s->ready = 0;
  pid_t p = su_fork(one_wait, s);
  int idx = mproc_barrier_wait(s->b, 30);
  SU_JOIN_OK(p);
  assert_true(idx == 0 || idx == 1);
  MPROC_PASS(mproc_barrier_destroy(s->b));
}

/* The waiting parent is a party and its own child, also a party, is killed:
 * the parent cannot reap it while blocked, yet must not hang. */
static void barrier_unreaped_child_party(void **state) {
  (void)state;
  shared *s = mk(3);
  pid_t victim = su_fork(one_wait, s);
  assert_true(su_await(&s->ready, 1));
  assert_true(su_await_sleeping(victim));
  kill(victim, SIGKILL);
  su_wait_zombie(victim);
  MPROC_ASSERT_RC(mproc_barrier_wait(s->b, 20), MPROC_EBROKEN);
  assert_int_equal(su_wait(victim, NULL), -SIGKILL);
  MPROC_PASS(mproc_barrier_reset(s->b));
  MPROC_PASS(mproc_barrier_destroy(s->b));
}

static void barrier_waiter_uses_no_cpu(void **state) {
  (void)state;
  shared *s = mk(2);
  pid_t p = su_fork(one_wait, s);
  assert_true(su_await(&s->ready, 1));
  su_sleep(0.3);
  MPROC_ASSERT_RC(mproc_barrier_wait(s->b, 30), 1);
  struct rusage ru = {0};
  assert_int_equal(su_wait(p, &ru), 0);
  assert_int_equal(s->result, 0);
  assert_true(su_cpu(&ru) < 0.1);
  MPROC_PASS(mproc_barrier_destroy(s->b));
}

/* Threads of one process as parties; also sem and event from threads. */
typedef struct tb {
  mproc_barrier_t *b;
  int slot[4][CYCLES];
} tb;
static tb *g_tb;

static void *tb_party(void *arg) {
  int me = (int)(intptr_t)arg;
  for (int c = 0; c < CYCLES; c++) {
    int idx = mproc_barrier_wait(g_tb->b, 30);
    if (idx < 0 || idx > 3) return (void *)1;
    g_tb->slot[me][c] = idx;
    /* A second wait keeps cycle c's writes ordered before anyone reads. */
    if (mproc_barrier_wait(g_tb->b, 30) < 0) return (void *)2;
  }
  return NULL;
}

static void barrier_threads(void **state) {
  (void)state;
  g_tb = su_shared(sizeof *g_tb);
  MPROC_PASS(mproc_barrier_create(&g_tb->b, 4));
  pthread_t t[4];
  for (int i = 0; i < 4; i++)
    assert_int_equal(pthread_create(&t[i], NULL, tb_party, (void *)(intptr_t)i), 0);
  for (int i = 0; i < 4; i++) {
    void *r;
    pthread_join(t[i], &r);
    assert_null(r);
  }
  for (int c = 0; c < CYCLES; c++) {
    unsigned mask = 0;
    for (int i = 0; i < 4; i++) mask |= 1u << g_tb->slot[i][c];
    assert_int_equal(mask, 15u);
  }
  MPROC_PASS(mproc_barrier_destroy(g_tb->b));
}

static const struct CMUnitTest tests[] = {
    MPROC_TEST(barrier_threads),
    MPROC_TEST(barrier_basic),
    MPROC_TEST(barrier_bad_input),
    MPROC_TEST(barrier_indices_many_cycles),
    MPROC_TEST(barrier_timeout_breaks),
    MPROC_TEST(barrier_abort),
    MPROC_TEST(barrier_reset_with_waiters),
    MPROC_TEST(barrier_party_killed),
    MPROC_TEST(barrier_dead_party_then_arrivals),
    MPROC_TEST(barrier_unreaped_child_party),
    MPROC_TEST(barrier_waiter_uses_no_cpu),
};
MPROC_TEST_MAIN(tests)
