/* test_barrier.c - Barrier: arrival indices over many cycles across
 * processes, timeouts break it, abort, reset (idle and with waiters), a
 * party killed while waiting, attributes, bad input, no CPU while waiting;
 * the action: once per cycle before release, failure breaks, runner death,
 * a timeout while it runs, bad input, threads. */
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

/* NaN, infinite, below -1 and huge timeouts: -EINVAL, and the call neither
 * counts as an arrival nor breaks the barrier (a 1-party barrier would
 * otherwise pass at once). */
static void barrier_bad_timeouts(void **state) {
  (void)state;
  mproc_barrier_t *b, *one;
  MPROC_PASS(mproc_barrier_create(&b, 2));
  MPROC_PASS(mproc_barrier_create(&one, 1));
  for (size_t i = 0; i < SU_N_BAD_TIMEOUTS; i++) {
    double t = su_bad_timeouts[i];
    SU_ASSERT_TIMEOUT_RC(mproc_barrier_wait(b, t), t, MPROC_EINVAL);
    SU_ASSERT_TIMEOUT_RC(mproc_barrier_wait(one, t), t, MPROC_EINVAL);
    MPROC_ASSERT_RC(mproc_barrier_n_waiting(b), 0);
    MPROC_ASSERT_RC(mproc_barrier_broken(b), 0);
    MPROC_ASSERT_RC(mproc_barrier_broken(one), 0);
  }
  MPROC_ASSERT_RC(mproc_barrier_wait(one, 0), 0);
  MPROC_PASS(mproc_barrier_destroy(b));
  MPROC_PASS(mproc_barrier_destroy(one));
  MPROC_ASSERT_RC(mproc_barrier_wait(b, NAN), MPROC_EDESTROYED);
  MPROC_ASSERT_RC(mproc_barrier_destroy(one), MPROC_EDESTROYED);
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

/* ---- the action (Python's Barrier(parties, action)) ---- */

#define ACYCLES 100

typedef struct act {
  mproc_barrier_t *b;
  volatile int64_t runs;              /* action calls */
  volatile int64_t arrived[ACYCLES];  /* parties that entered wait, per cycle */
  volatile int64_t released[ACYCLES]; /* parties whose wait returned */
  volatile int64_t early;             /* action ran before all arrived */
  volatile int64_t late;              /* action ran after someone left */
  volatile int runner[ACYCLES];       /* pid that ran it */
  volatile int fail_at;               /* run number that fails (-1 none) */
  volatile int kill_runner;           /* the action SIGKILLs a child runner */
  volatile int parent;
  volatile double action_sleep;       /* seconds the action takes */
  volatile int ready;
  volatile int result;
} act;

static int count_action(void *arg) {
  act *a = arg;
  int64_t c = a->runs;
  if (c < ACYCLES) {
    if (__atomic_load_n(&a->arrived[c], __ATOMIC_SEQ_CST) != 3) a->early++;
    if (__atomic_load_n(&a->released[c], __ATOMIC_SEQ_CST) != 0) a->late++;
    a->runner[c] = getpid();
  }
  if (a->kill_runner && getpid() != a->parent) raise(SIGKILL);
  if (a->action_sleep > 0) su_sleep(a->action_sleep);
  a->runs = c + 1;
  return c == a->fail_at ? 7 : 0;
}

static act *mk_act(int parties) {
  act *a = su_shared(sizeof *a);
  memset((void *)a, 0, sizeof *a);
  a->fail_at = -1;
  a->parent = getpid();
  MPROC_PASS(mproc_barrier_create_action(&a->b, parties, count_action, a));
  return a;
}

static int act_cycler(void *arg) {
  act *a = arg;
  for (int c = 0; c < ACYCLES; c++) {
    __atomic_fetch_add(&a->arrived[c], 1, __ATOMIC_SEQ_CST);
    int idx = mproc_barrier_wait(a->b, 30);
    CHILD_CHECK(idx >= 0 && idx < 3);
    __atomic_fetch_add(&a->released[c], 1, __ATOMIC_SEQ_CST);
  }
  return 0;
}

/* Three processes, 100 cycles: the action runs exactly once per cycle,
 * after all three arrived and before any was released, in one of them. */
static void barrier_action_once_per_cycle(void **state) {
  (void)state;
  act *a = mk_act(3);
  pid_t p1 = su_fork(act_cycler, a), p2 = su_fork(act_cycler, a);
  assert_int_equal(act_cycler(a), 0);
  SU_JOIN_OK(p1);
  SU_JOIN_OK(p2);
  assert_int_equal(a->runs, ACYCLES);
  assert_int_equal(a->early, 0);
  assert_int_equal(a->late, 0);
  for (int c = 0; c < ACYCLES; c++) {
    assert_int_equal(a->released[c], 3);
    assert_true(a->runner[c] == a->parent || a->runner[c] == p1 || a->runner[c] == p2);
  }
  MPROC_ASSERT_RC(mproc_barrier_broken(a->b), 0);
  MPROC_PASS(mproc_barrier_destroy(a->b));
  mproc_heap_free(a);
}

static int act_one_wait(void *arg) {
  act *a = arg;
  __atomic_fetch_add(&a->ready, 1, __ATOMIC_SEQ_CST);
  return mproc_barrier_wait(a->b, 30) == MPROC_EBROKEN ? 0 : 1;
}

/* A failing action breaks the barrier: every party, the runner included,
 * gets MPROC_EBROKEN; later waits too until reset; after it, cycles work. */
static void barrier_action_failure_breaks(void **state) {
  (void)state;
  act *a = mk_act(3);
  a->fail_at = 0;
  pid_t p1 = su_fork(act_one_wait, a), p2 = su_fork(act_one_wait, a);
  MPROC_ASSERT_RC(mproc_barrier_wait(a->b, 30), MPROC_EBROKEN);
  SU_JOIN_OK(p1);
  SU_JOIN_OK(p2);
  assert_int_equal(a->runs, 1);
  MPROC_ASSERT_RC(mproc_barrier_broken(a->b), 1);
  MPROC_ASSERT_RC(mproc_barrier_wait(a->b, 1), MPROC_EBROKEN);
  assert_int_equal(a->runs, 1); /* a broken barrier runs no action */
  MPROC_PASS(mproc_barrier_reset(a->b));
  memset((void *)a->arrived, 0, sizeof a->arrived);
  a->runs = 0;
  a->early = a->late = 0; /* the failing cycle had no arrival counts */
  a->fail_at = -1;
  p1 = su_fork(act_cycler, a);
  p2 = su_fork(act_cycler, a);
  assert_int_equal(act_cycler(a), 0);
  SU_JOIN_OK(p1);
  SU_JOIN_OK(p2);
  assert_int_equal(a->runs, ACYCLES);
  assert_int_equal(a->early, 0);
  assert_int_equal(a->late, 0);
  MPROC_PASS(mproc_barrier_destroy(a->b));
  mproc_heap_free(a);
}

static int noop_action(void *arg) {
  (void)arg;
  return 0;
}

static void barrier_action_bad_input(void **state) {
  (void)state;
  mproc_barrier_t *b;
  uintptr_t bogus = 16; /* no loaded object lives there */
  mproc_barrier_action_fn bad;
  memcpy(&bad, &bogus, sizeof bad);
  MPROC_ASSERT_RC(mproc_barrier_create_action(NULL, 2, noop_action, NULL), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_barrier_create_action(&b, 0, noop_action, NULL), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_barrier_create_action(&b, 65537, noop_action, NULL), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_barrier_create_action(&b, 2, NULL, NULL), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_barrier_create_action(&b, 2, bad, NULL), MPROC_EINVAL);
  /* One party: the action runs in every wait of that party. */
  MPROC_PASS(mproc_barrier_create_action(&b, 1, noop_action, NULL));
  MPROC_ASSERT_RC(mproc_barrier_wait(b, 0), 0);
  MPROC_ASSERT_RC(mproc_barrier_wait(b, -1), 0);
  MPROC_PASS(mproc_barrier_destroy(b));
  MPROC_ASSERT_RC(mproc_barrier_wait(b, 0), MPROC_EDESTROYED);
}

/* The last party arrives in a child whose action kills it: the waiting
 * parent is not left hanging, the barrier breaks. */
static int arrive_last(void *arg) {
  act *a = arg;
  double end = mproc_test_now() + 20;
  while (mproc_barrier_n_waiting(a->b) != 1 && mproc_test_now() < end) usleep(1000);
  mproc_barrier_wait(a->b, 30); /* the action kills us in there */
  return 3;
}

static void barrier_action_runner_dies(void **state) {
  (void)state;
  act *a = mk_act(2);
  a->kill_runner = 1;
  pid_t p = su_fork(arrive_last, a);
  MPROC_ASSERT_RC(mproc_barrier_wait(a->b, 30), MPROC_EBROKEN);
  assert_int_equal(su_wait(p, NULL), -SIGKILL);
  MPROC_ASSERT_RC(mproc_barrier_broken(a->b), 1);
  MPROC_PASS(mproc_barrier_reset(a->b));
  MPROC_PASS(mproc_barrier_destroy(a->b));
  mproc_heap_free(a);
}

/* A wait that times out while the action runs breaks the barrier then and
 * there (not after the action); the runner gets MPROC_EBROKEN. */
static int arrive_last_report(void *arg) {
  act *a = arg;
  double end = mproc_test_now() + 20;
  while (mproc_barrier_n_waiting(a->b) != 1 && mproc_test_now() < end) usleep(1000);
  a->result = mproc_barrier_wait(a->b, 30);
  return 0;
}

static void barrier_action_timeout_while_running(void **state) {
  (void)state;
  act *a = mk_act(2);
  a->action_sleep = 3;
  pid_t p = su_fork(arrive_last_report, a);
  double t0 = mproc_test_now();
  MPROC_ASSERT_RC(mproc_barrier_wait(a->b, 1), MPROC_ETIMEDOUT);
  assert_true(mproc_test_now() - t0 < 2.9); /* did not wait for the action */
  MPROC_ASSERT_RC(mproc_barrier_broken(a->b), 1);
  SU_JOIN_OK(p);
  assert_int_equal(a->result, MPROC_EBROKEN);
  assert_int_equal(a->runs, 1);
  MPROC_PASS(mproc_barrier_reset(a->b));
  MPROC_PASS(mproc_barrier_destroy(a->b));
  mproc_heap_free(a);
}

/* Threads as parties (TSan): the action's plain writes are ordered before
 * every party's release and after every arrival. */
typedef struct tact {
  mproc_barrier_t *b;
  int64_t runs;       /* plain: only the action writes it */
  int64_t seen[4][ACYCLES];
} tact;
static tact *g_ta;

static int tact_action(void *arg) {
  ((tact *)arg)->runs++;
  return 0;
}

static void *tact_party(void *arg) {
  int me = (int)(intptr_t)arg;
  for (int c = 0; c < ACYCLES; c++) {
    if (mproc_barrier_wait(g_ta->b, 30) < 0) return (void *)1;
    g_ta->seen[me][c] = g_ta->runs;
    if (mproc_barrier_wait(g_ta->b, 30) < 0) return (void *)2;
  }
  return NULL;
}

static void barrier_action_threads(void **state) {
  (void)state;
  g_ta = su_shared(sizeof *g_ta);
  memset(g_ta, 0, sizeof *g_ta);
  MPROC_PASS(mproc_barrier_create_action(&g_ta->b, 4, tact_action, g_ta));
  pthread_t t[4];
  for (int i = 0; i < 4; i++)
    assert_int_equal(pthread_create(&t[i], NULL, tact_party, (void *)(intptr_t)i), 0);
  for (int i = 0; i < 4; i++) {
    void *r;
    pthread_join(t[i], &r);
    assert_null(r);
  }
  /* Two waits (two actions) per cycle: after cycle c's first wait, every
   * thread saw exactly 2c+1 runs. */
  for (int c = 0; c < ACYCLES; c++)
    for (int i = 0; i < 4; i++) assert_int_equal(g_ta->seen[i][c], 2 * c + 1);
  assert_int_equal(g_ta->runs, 2 * ACYCLES);
  MPROC_PASS(mproc_barrier_destroy(g_ta->b));
  mproc_heap_free(g_ta);
}

/* The runner is a spawned child: a fresh exec of this program, laid out
 * elsewhere by ASLR; it still finds and runs the action. */
static int spawn_party(void *arg) {
  act *a = arg;
  a->result = (int)((uintptr_t)count_action & 0x7fffffff); /* its address here */
  double end = mproc_test_now() + 20;
  while (mproc_barrier_n_waiting(a->b) != 1 && mproc_test_now() < end) usleep(1000);
  int idx = mproc_barrier_wait(a->b, 30);
  return idx == 1 ? 0 : 10 + (idx < 0 ? -idx % 50 : idx);
}

static void barrier_action_in_spawned_child(void **state) {
  (void)state;
  act *a = mk_act(2);
  a->arrived[0] = 3; /* count_action's arrival check is for 3 parties */
  mproc_process_t *p = NULL;
  MPROC_PASS(mproc_process_create(&p, spawn_party, a,
                                  &(mproc_process_opts){.start_method = MPROC_START_SPAWN}));
  MPROC_PASS(mproc_process_start(p));
  MPROC_ASSERT_RC(mproc_barrier_wait(a->b, 30), 0);
  MPROC_PASS(mproc_process_join(p, 30));
  int code = -1;
  MPROC_PASS(mproc_process_exitcode(p, &code));
  assert_int_equal(code, 0);
  assert_int_equal(a->runs, 1);
  assert_int_equal(a->runner[0], mproc_process_pid(p));
  if (a->result != (int)((uintptr_t)count_action & 0x7fffffff))
    printf("(the spawned child had the action at another address)\n");
  mproc_process_destroy(p);
  MPROC_PASS(mproc_barrier_destroy(a->b));
  mproc_heap_free(a);
}

static const struct CMUnitTest tests[] = {
    MPROC_TEST(barrier_threads),
    MPROC_TEST(barrier_basic),
    MPROC_TEST(barrier_bad_input),
    MPROC_TEST(barrier_bad_timeouts),
    MPROC_TEST(barrier_indices_many_cycles),
    MPROC_TEST(barrier_timeout_breaks),
    MPROC_TEST(barrier_abort),
    MPROC_TEST(barrier_reset_with_waiters),
    MPROC_TEST(barrier_party_killed),
    MPROC_TEST(barrier_dead_party_then_arrivals),
    MPROC_TEST(barrier_unreaped_child_party),
    MPROC_TEST(barrier_waiter_uses_no_cpu),
    MPROC_TEST(barrier_action_once_per_cycle),
    MPROC_TEST(barrier_action_failure_breaks),
    MPROC_TEST(barrier_action_bad_input),
    MPROC_TEST(barrier_action_runner_dies),
    MPROC_TEST(barrier_action_timeout_while_running),
    MPROC_TEST(barrier_action_threads),
    MPROC_TEST(barrier_action_in_spawned_child),
};
int main(int argc, char **argv) {
  mproc_register_target("spawn_party", spawn_party);
  if (mproc_spawn_main(argc, argv)) return 1; /* never returns in a spawned child */
  return mproc_test_main(tests, sizeof tests / sizeof tests[0], argc, argv, __FILE__);
}
