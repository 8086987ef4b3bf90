/* test_queue_chaos.c - producers and consumers SIGKILLed at random instants
 * (bounded ring; and unbounded with a tiny ring so the overflow list and
 * large by-reference messages are under fire too)
 * while millions of messages flow (slow) or a few hundred thousand (quick).
 * Checks: the queue never wedges, every surviving message is intact byte for
 * byte, nothing is delivered twice, and a message whose put returned is lost
 * only to a killed consumer (at most one per consumer kill). */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define MAXP 4
#define MAXC 4

typedef struct chaos {
  uint64_t n;                     /* messages in all */
  int np, nc;                     /* producer lanes, consumers */
  _Atomic int64_t attempt[MAXP];  /* lane's index being put (or last) */
  _Atomic uint8_t *done_put;      /* [n] put returned */
  _Atomic uint8_t *recv;          /* [n] times received */
  _Atomic uint64_t corrupt;       /* messages failing the byte check */
  _Atomic uint64_t received;      /* total received */
} chaos;

static int g_large; /* variant: every 16th message is 1..6 KiB (by reference) */
#define MSG_MAX 6400

static size_t msg_size(uint64_t id) {
  uint64_t h = id * 2654435761u;
  if (g_large && id % 16 == 5) return 300 + (size_t)(h % 6000);
  return 8 + (size_t)(h % 233);
}

static void msg_fill(unsigned char *m, uint64_t id) {
  size_t n = msg_size(id);
  memcpy(m, &id, 8);
  uint64_t x = id * 0x9E3779B97F4A7C15ull + 7;
  for (size_t i = 8; i < n; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    m[i] = (unsigned char)x;
  }
}

static void producer(chaos *c, mproc_queue_t *q, int lane) {
  unsigned char m[MSG_MAX];
  for (int64_t i = atomic_load(&c->attempt[lane]) + 1;; i++) {
    uint64_t id = (uint64_t)i * (uint64_t)c->np + (uint64_t)lane;
    if (id >= c->n) _exit(0);
    /* Skip the index a killed predecessor was putting: at most once. */
    atomic_store(&c->attempt[lane], i);
    msg_fill(m, id);
    if (mproc_queue_put(q, m, msg_size(id), 30) != 0) _exit(3);
    atomic_store(&c->done_put[id], 1);
  }
}

static void consumer(chaos *c, mproc_queue_t *q) {
  unsigned char m[MSG_MAX], e[MSG_MAX];
  for (;;) {
    size_t len;
    int rc = mproc_queue_get(q, m, sizeof m, &len, 30);
    if (rc == MPROC_ECLOSED) _exit(0);
    if (rc) _exit(4); /* a 30 s stall means the queue wedged */
    uint64_t id;
    memcpy(&id, m, 8);
    if (len < 8 || id >= c->n || len != msg_size(id)) {
      atomic_fetch_add(&c->corrupt, 1);
      continue;
    }
    msg_fill(e, id);
    if (memcmp(m, e, len) != 0) atomic_fetch_add(&c->corrupt, 1);
    atomic_fetch_add(&c->recv[id], 1);
    atomic_fetch_add(&c->received, 1);
  }
}

static void run_chaos(uint64_t n, int np, int nc, double kill_every_ms, double max_s,
                      const mproc_queue_opts *qo) {
  chaos *c;
  MPROC_PASS(mproc_heap_alloc(sizeof *c, (void **)&c));
  MPROC_PASS(mproc_heap_alloc(n, (void **)&c->done_put));
  MPROC_PASS(mproc_heap_alloc(n, (void **)&c->recv));
  c->n = n;
  c->np = np;
  c->nc = nc;
  for (int i = 0; i < np; i++) atomic_store(&c->attempt[i], -1);
  mproc_queue_t *q;
  MPROC_PASS(mproc_queue_create(&q, qo));

  pid_t prod[MAXP] = {0}, cons[MAXC] = {0};
  int lane_done[MAXP] = {0};
  unsigned pkills = 0, ckills = 0;
  for (int i = 0; i < nc; i++)
    if ((cons[i] = fork()) == 0) consumer(c, q);
  for (int i = 0; i < np; i++)
    if ((prod[i] = fork()) == 0) producer(c, q, i);
  srand((unsigned)time(NULL) ^ (unsigned)getpid());
  double t0 = mproc_test_now();
  int producers_left = np;
  while (producers_left > 0) {
    assert_true(mproc_test_now() - t0 < max_s);
    usleep((useconds_t)(kill_every_ms * 1000.0 * (0.2 + (double)rand() / RAND_MAX)));
    /* Reap lanes that finished. */
    for (int i = 0; i < np; i++) {
      int st;
      if (!lane_done[i] && waitpid(prod[i], &st, WNOHANG) == prod[i]) {
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        lane_done[i] = 1;
        producers_left--;
      }
    }
    if (producers_left == 0) break;
    int victim = rand() % (np + nc);
    if (victim < np) {
      if (lane_done[victim]) continue;
      kill(prod[victim], SIGKILL);
      int st;
      waitpid(prod[victim], &st, 0);
      if (WIFEXITED(st)) { /* it finished just before the signal */
        assert_int_equal(WEXITSTATUS(st), 0);
        lane_done[victim] = 1;
        producers_left--;
        continue;
      }
      pkills++;
      if ((prod[victim] = fork()) == 0) producer(c, q, victim);
    } else {
      int k = victim - np;
      kill(cons[k], SIGKILL);
      int st;
      waitpid(cons[k], &st, 0);
      assert_true(WIFSIGNALED(st)); /* consumers exit only at close */
      ckills++;
      if ((cons[k] = fork()) == 0) consumer(c, q);
    }
  }
  MPROC_PASS(mproc_queue_close(q));
  for (int i = 0; i < nc; i++) {
    int st;
    assert_int_equal(waitpid(cons[i], &st, 0), cons[i]);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
  }
  uint64_t dups = 0, lost = 0, undelivered_unreturned = 0, returned = 0;
  for (uint64_t id = 0; id < n; id++) {
    if (c->recv[id] > 1) dups++;
    if (c->done_put[id]) {
      returned++;
      if (!c->recv[id]) lost++;
    } else if (!c->recv[id]) {
      undelivered_unreturned++;
    }
  }
  print_message("chaos: %llu msgs, %llu received, %llu puts returned, producer kills %u, "
                "consumer kills %u, dups %llu, corrupt %llu, lost-after-return %llu, "
                "not-put %llu, %.1f s\n",
                (unsigned long long)n, (unsigned long long)atomic_load(&c->received),
                (unsigned long long)returned, pkills, ckills, (unsigned long long)dups,
                (unsigned long long)atomic_load(&c->corrupt), (unsigned long long)lost,
                (unsigned long long)undelivered_unreturned, mproc_test_now() - t0);
  assert_int_equal(dups, 0);
  assert_int_equal(atomic_load(&c->corrupt), 0);
  assert_true(lost <= ckills);
  assert_true(undelivered_unreturned <= pkills);
  assert_true(pkills + ckills > 0);
  MPROC_PASS(mproc_queue_destroy(q));
  mproc_heap_free((void *)c->done_put);
  mproc_heap_free((void *)c->recv);
  mproc_heap_free(c);
}

static const mproc_queue_opts bounded = {.maxsize = 64};
/* Unbounded with a tiny ring: the overflow list (robust mutex, heap nodes)
 * is in use most of the time; large messages go through heap blocks. */
static const mproc_queue_opts overflow = {.slots = 4};

static void chaos_quick(void **state) {
  (void)state;
  run_chaos(1000000, 2, 2, 2, 50, &bounded);
}

static void chaos_quick_large_and_overflow(void **state) {
  (void)state;
  g_large = 1;
  run_chaos(300000, 2, 2, 2, 50, &overflow);
}

static void chaos_millions(void **state) {
  (void)state;
  run_chaos(20000000, 3, 3, 1.5, 58, &bounded);
}

static void chaos_millions_large_and_overflow(void **state) {
  (void)state;
  g_large = 1;
  run_chaos(2000000, 3, 3, 1.5, 58, &overflow);
}

static const struct CMUnitTest tests[] = {
    MPROC_TEST(chaos_quick),
    MPROC_TEST(chaos_quick_large_and_overflow),
    MPROC_SLOW_TEST(chaos_millions),
    MPROC_SLOW_TEST(chaos_millions_large_and_overflow),
};
MPROC_TEST_MAIN(tests)
