/* test_queue.c - Queue, JoinableQueue, SimpleQueue: contract, bad input,
 * sizes through both paths (inline and by reference), blocking and timeouts,
 * close, byte bound, overflow of unbounded queues, processes and threads,
 * recovery from claims left by dead processes, no CPU while waiting. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "ipc/ipc.h"

static void fill(unsigned char *p, size_t n, uint64_t seed) {
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    p[i] = (unsigned char)x;
  }
}

static int check(const unsigned char *p, size_t n, uint64_t seed) {
  unsigned char *e = malloc(n ? n : 1);
  fill(e, n, seed);
  int ok = memcmp(p, e, n) == 0;
  free(e);
  return ok;
}

static int wait_child(pid_t pid) {
  int st;
  if (waitpid(pid, &st, 0) != pid) return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void bad_input(void **state) {
  (void)state;
  mproc_queue_t *q;
  MPROC_ASSERT_RC(mproc_queue_create(NULL, NULL), -EINVAL);
  mproc_queue_opts o = {.flags = 1u << 7};
  MPROC_ASSERT_RC(mproc_queue_create(&q, &o), -EINVAL);
  o = (mproc_queue_opts){.inline_max = 65537};
  MPROC_ASSERT_RC(mproc_queue_create(&q, &o), -EINVAL);
  o = (mproc_queue_opts){.maxsize = ((size_t)1 << 24) + 1};
  MPROC_ASSERT_RC(mproc_queue_create(&q, &o), -EINVAL);
  o = (mproc_queue_opts){.slots = ((size_t)1 << 25)};
  MPROC_ASSERT_RC(mproc_queue_create(&q, &o), -EINVAL);
  MPROC_PASS(mproc_queue_create(&q, NULL));
  char buf[8];
  size_t len;
  void *d;
  MPROC_ASSERT_RC(mproc_queue_put(NULL, "x", 1, 0), -EINVAL);
  MPROC_ASSERT_RC(mproc_queue_put(q, NULL, 1, 0), -EINVAL);
  MPROC_ASSERT_RC(mproc_queue_put(q, "x", 1, -2), -EINVAL);
  MPROC_ASSERT_RC(mproc_queue_put(q, "x", 1, 1.0 / 0.0), -EINVAL);
  MPROC_ASSERT_RC(mproc_queue_put((mproc_queue_t *)buf, "x", 1, 0), -EINVAL);
  MPROC_ASSERT_RC(mproc_queue_get(q, buf, sizeof buf, NULL, 0), -EINVAL);
  MPROC_ASSERT_RC(mproc_queue_get(q, NULL, 4, &len, 0), -EINVAL);
  MPROC_ASSERT_RC(mproc_queue_get(q, buf, sizeof buf, &len, -1.5), -EINVAL);
  MPROC_ASSERT_RC(mproc_queue_get(NULL, buf, sizeof buf, &len, 0), -EINVAL);
  MPROC_ASSERT_RC(mproc_queue_get_alloc(q, NULL, &len, 0), -EINVAL);
  MPROC_ASSERT_RC(mproc_queue_get_alloc(q, &d, NULL, 0), -EINVAL);
  MPROC_ASSERT_RC(mproc_queue_qsize(NULL), -EINVAL);
  MPROC_ASSERT_RC(mproc_queue_empty(NULL), -EINVAL);
  MPROC_ASSERT_RC(mproc_queue_full(NULL), -EINVAL);
  MPROC_ASSERT_RC(mproc_queue_close(NULL), -EINVAL);
  MPROC_ASSERT_RC(mproc_queue_task_done(q), -ENOTSUP);
  MPROC_ASSERT_RC(mproc_queue_join(q, 0), -ENOTSUP);
  MPROC_ASSERT_RC(mproc_queue_task_done(NULL), -EINVAL);
  MPROC_PASS(mproc_queue_destroy(NULL));
  MPROC_PASS(mproc_queue_destroy(q));
  /* Use after destroy is detected while the block is not reused. */
  MPROC_ASSERT_RC(mproc_queue_put(q, "x", 1, 0), MPROC_EDESTROYED);
  MPROC_ASSERT_RC(mproc_queue_get(q, buf, sizeof buf, &len, 0), MPROC_EDESTROYED);
  MPROC_ASSERT_RC(mproc_queue_qsize(q), MPROC_EDESTROYED);
  MPROC_ASSERT_RC(mproc_queue_destroy(q), MPROC_EDESTROYED);
}

/* Every size class, both paths, byte for byte, FIFO. */
static void sizes_roundtrip(void **state) {
  (void)state;
  size_t sizes[] = {0, 1, 7, 239, 240, 241, 4096, 65536, 1000003, 8u << 20};
  for (int bounded = 0; bounded < 2; bounded++) {
    mproc_queue_t *q;
    mproc_queue_opts o = {.maxsize = bounded ? 16 : 0};
    MPROC_PASS(mproc_queue_create(&q, &o));
    for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
      unsigned char *m = malloc(sizes[i] + 1);
      fill(m, sizes[i], i);
      MPROC_PASS(mproc_queue_put(q, m, sizes[i], 0));
      free(m);
    }
    assert_int_equal(mproc_queue_qsize(q), ARRAY_SIZE(sizes));
    for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
      size_t cap = sizes[i] + 5, len = 0;
      unsigned char *m = malloc(cap);
      MPROC_PASS(mproc_queue_get(q, m, cap, &len, 0));
      assert_int_equal(len, sizes[i]);
      assert_true(check(m, len, i));
      free(m);
    }
    MPROC_ASSERT_RC(mproc_queue_get(q, NULL, 0, &(size_t){0}, 0), MPROC_EEMPTY);
    assert_int_equal(mproc_queue_empty(q), 1);
    MPROC_PASS(mproc_queue_destroy(q));
  }
}

static void get_alloc_and_zero_length(void **state) {
  (void)state;
  mproc_queue_t *q;
  MPROC_PASS(mproc_simplequeue_create(&q));
  MPROC_PASS(mproc_queue_put(q, NULL, 0, -1));
  unsigned char big[5000];
  fill(big, sizeof big, 9);
  MPROC_PASS(mproc_queue_put(q, big, sizeof big, -1));
  void *d;
  size_t len = 99;
  MPROC_PASS(mproc_queue_get_alloc(q, &d, &len, -1));
  assert_non_null(d);
  assert_int_equal(len, 0);
  free(d);
  MPROC_PASS(mproc_queue_get_alloc(q, &d, &len, -1));
  assert_int_equal(len, sizeof big);
  assert_memory_equal(d, big, sizeof big);
  free(d);
  MPROC_PASS(mproc_queue_destroy(q));
}

/* BufferTooShort: message kept, size reported; for slot, heap and overflow. */
static void too_short_keeps_message(void **state) {
  (void)state;
  size_t sizes[] = {100, 100000};
  for (int unb = 0; unb < 2; unb++) {
    mproc_queue_t *q;
    mproc_queue_opts o = {.maxsize = unb ? 0 : 4, .slots = 1};
    MPROC_PASS(mproc_queue_create(&q, &o));
    for (size_t i = 0; i < 2; i++) {
      unsigned char *m = malloc(sizes[i]);
      fill(m, sizes[i], 40 + i);
      MPROC_PASS(mproc_queue_put(q, m, sizes[i], 0));
      free(m);
    }
    for (size_t i = 0; i < 2; i++) {
      unsigned char small[10];
      size_t len = 0;
      MPROC_ASSERT_RC(mproc_queue_get(q, small, sizeof small, &len, 0), MPROC_ETOOSHORT);
      assert_int_equal(len, sizes[i]);
      MPROC_ASSERT_RC(mproc_queue_get(q, NULL, 0, &len, 1), MPROC_ETOOSHORT);
      assert_int_equal(mproc_queue_qsize(q), 2 - (long)i);
      unsigned char *m = malloc(len);
      MPROC_PASS(mproc_queue_get(q, m, len, &len, 0));
      assert_int_equal(len, sizes[i]);
      assert_true(check(m, len, 40 + i));
      free(m);
    }
    MPROC_PASS(mproc_queue_destroy(q));
  }
}

static void timeouts_empty_and_full(void **state) {
  (void)state;
  mproc_queue_t *q;
  mproc_queue_opts o = {.maxsize = 2};
  MPROC_PASS(mproc_queue_create(&q, &o));
  size_t len;
  char b[4];
  double t0 = mproc_test_now();
  MPROC_ASSERT_RC(mproc_queue_get(q, b, 4, &len, 0), MPROC_EEMPTY);
  MPROC_ASSERT_RC(mproc_queue_get(q, b, 4, &len, 0.1), MPROC_EEMPTY);
  double dt = mproc_test_now() - t0;
  assert_true(dt >= 0.099);
  assert_true(dt < 5);
  assert_int_equal(mproc_queue_full(q), 0);
  MPROC_PASS(mproc_queue_put(q, "a", 1, 0));
  MPROC_PASS(mproc_queue_put(q, "b", 1, 0));
  assert_int_equal(mproc_queue_full(q), 1);
  assert_int_equal(mproc_queue_qsize(q), 2);
  MPROC_ASSERT_RC(mproc_queue_put(q, "c", 1, 0), MPROC_EFULL);
  t0 = mproc_test_now();
  MPROC_ASSERT_RC(mproc_queue_put(q, "c", 1, 0.1), MPROC_EFULL);
  assert_true(mproc_test_now() - t0 >= 0.099);
  MPROC_PASS(mproc_queue_get(q, b, 4, &len, 0));
  assert_int_equal(b[0], 'a');
  MPROC_PASS(mproc_queue_put(q, "c", 1, 0));
  MPROC_PASS(mproc_queue_get(q, b, 4, &len, 0));
  assert_int_equal(b[0], 'b');
  MPROC_PASS(mproc_queue_get(q, b, 4, &len, 0));
  assert_int_equal(b[0], 'c');
  MPROC_PASS(mproc_queue_destroy(q));
}

/* maxsize = 1 across many laps, and a ring whose size is not a power of 2. */
static void odd_capacity_laps(void **state) {
  (void)state;
  for (size_t cap = 1; cap <= 7; cap += 2) {
    mproc_queue_t *q;
    mproc_queue_opts o = {.maxsize = cap};
    MPROC_PASS(mproc_queue_create(&q, &o));
    uint64_t next_put = 0, next_get = 0;
    for (int round = 0; round < 1000; round++) {
      while (mproc_queue_put(q, &next_put, sizeof next_put, 0) == 0) next_put++;
      assert_int_equal(next_put - next_get, cap);
      uint64_t v;
      size_t len;
      int k = 1 + round % (int)cap;
      for (int i = 0; i < k; i++) {
        MPROC_PASS(mproc_queue_get(q, &v, sizeof v, &len, 0));
        assert_int_equal(v, next_get);
        next_get++;
      }
    }
    MPROC_PASS(mproc_queue_destroy(q));
  }
}

static void unbounded_overflow_keeps_order(void **state) {
  (void)state;
  mproc_queue_t *q;
  mproc_queue_opts o = {.slots = 8};
  MPROC_PASS(mproc_queue_create(&q, &o));
  const int n = 20000;
  for (int i = 0; i < n; i++) {
    size_t sz = (size_t)(i % 7 == 0 ? 1000 : 8);
    unsigned char m[1000];
    memcpy(m, &i, sizeof i);
    fill(m + 4, sz - 4, (uint64_t)i);
    MPROC_PASS(mproc_queue_put(q, m, sz, 0));
    if (i % 3 == 0 && i > 100) { /* interleave gets: ring and overflow mix */
      static int expect;
      unsigned char r[1000];
      size_t len;
      MPROC_PASS(mproc_queue_get(q, r, sizeof r, &len, 0));
      int id;
      memcpy(&id, r, sizeof id);
      assert_int_equal(id, expect);
      assert_true(check(r + 4, len - 4, (uint64_t)id));
      expect++;
      if (i == n - 2) {
        for (; expect < n - 1; expect++) {
          MPROC_PASS(mproc_queue_get(q, r, sizeof r, &len, 0));
          memcpy(&id, r, sizeof id);
          assert_int_equal(id, expect);
        }
      }
    }
  }
  assert_true(mproc_queue_qsize(q) >= 1);
  MPROC_PASS(mproc_queue_destroy(q)); /* frees ring and overflow leftovers */
}

static void close_drains_then_reports_closed(void **state) {
  (void)state;
  mproc_queue_t *q;
  MPROC_PASS(mproc_queue_create(&q, NULL));
  MPROC_PASS(mproc_queue_put(q, "a", 1, 0));
  MPROC_PASS(mproc_queue_close(q));
  MPROC_PASS(mproc_queue_close(q));
  MPROC_ASSERT_RC(mproc_queue_put(q, "b", 1, 0), MPROC_ECLOSED);
  char b[4];
  size_t len;
  MPROC_PASS(mproc_queue_get(q, b, 4, &len, -1));
  double t0 = mproc_test_now();
  MPROC_ASSERT_RC(mproc_queue_get(q, b, 4, &len, -1), MPROC_ECLOSED);
  assert_true(mproc_test_now() - t0 < 1);
  MPROC_PASS(mproc_queue_destroy(q));
}

/* A getter blocked forever in another process wakes when the queue closes;
 * a putter blocked on a full queue too. */
static void close_wakes_blocked_processes(void **state) {
  (void)state;
  mproc_queue_t *q;
  mproc_queue_opts o = {.maxsize = 1};
  mproc_queue_t *full;
  MPROC_PASS(mproc_queue_create(&q, NULL));
  MPROC_PASS(mproc_queue_create(&full, &o));
  MPROC_PASS(mproc_queue_put(full, "x", 1, 0));
  pid_t g = fork();
  if (g == 0) {
    char b[4];
    size_t len;
    _exit(mproc_queue_get(q, b, 4, &len, -1) == MPROC_ECLOSED ? 0 : 1);
  }
  pid_t p = fork();
  if (p == 0) _exit(mproc_queue_put(full, "y", 1, -1) == MPROC_ECLOSED ? 0 : 1);
  usleep(100000);
  MPROC_PASS(mproc_queue_close(q));
  MPROC_PASS(mproc_queue_close(full));
  assert_int_equal(wait_child(g), 0);
  assert_int_equal(wait_child(p), 0);
  MPROC_PASS(mproc_queue_destroy(q));
  MPROC_PASS(mproc_queue_destroy(full));
}

static void byte_bound(void **state) {
  (void)state;
  mproc_queue_t *q;
  mproc_queue_opts o = {.maxbytes = 100};
  MPROC_PASS(mproc_queue_create(&q, &o));
  char m[500] = {0};
  MPROC_PASS(mproc_queue_put(q, m, 60, 0));
  MPROC_ASSERT_RC(mproc_queue_put(q, m, 60, 0), MPROC_EFULL);
  MPROC_PASS(mproc_queue_put(q, m, 40, 0));
  assert_int_equal(mproc_queue_full(q), 1);
  size_t len;
  MPROC_PASS(mproc_queue_get(q, m, sizeof m, &len, 0));
  MPROC_PASS(mproc_queue_get(q, m, sizeof m, &len, 0));
  /* An empty queue takes one message larger than the bound. */
  MPROC_PASS(mproc_queue_put(q, m, 500, 0));
  MPROC_ASSERT_RC(mproc_queue_put(q, m, 1, 0), MPROC_EFULL);
  MPROC_PASS(mproc_queue_get(q, m, sizeof m, &len, 0));
  assert_int_equal(len, 500);
  MPROC_PASS(mproc_queue_destroy(q));
}

static void joinable_task_done_and_join(void **state) {
  (void)state;
  mproc_queue_t *q;
  MPROC_PASS(mproc_joinablequeue_create(&q, 0));
  MPROC_PASS(mproc_queue_join(q, 0));
  MPROC_ASSERT_RC(mproc_queue_task_done(q), -EOVERFLOW);
  for (int i = 0; i < 3; i++) MPROC_PASS(mproc_queue_put(q, &i, sizeof i, 0));
  MPROC_ASSERT_RC(mproc_queue_join(q, 0), -ETIMEDOUT);
  MPROC_ASSERT_RC(mproc_queue_join(q, 0.05), -ETIMEDOUT);
  MPROC_ASSERT_RC(mproc_queue_join(q, -3), -EINVAL);
  pid_t c = fork();
  if (c == 0) {
    for (int i = 0; i < 3; i++) {
      int v;
      size_t len;
      if (mproc_queue_get(q, &v, sizeof v, &len, 10) || v != i) _exit(1);
      usleep(20000);
      if (mproc_queue_task_done(q)) _exit(2);
    }
    _exit(0);
  }
  MPROC_PASS(mproc_queue_join(q, 30));
  assert_int_equal(wait_child(c), 0);
  MPROC_ASSERT_RC(mproc_queue_task_done(q), -EOVERFLOW);
  MPROC_PASS(mproc_queue_destroy(q));
}

/* A producer may exit right after put (no feeder thread to flush). */
static void producer_exits_right_after_put(void **state) {
  (void)state;
  mproc_queue_t *q;
  MPROC_PASS(mproc_queue_create(&q, NULL));
  pid_t c = fork();
  if (c == 0) {
    unsigned char *m = malloc(300000);
    fill(m, 300000, 77);
    int rc = mproc_queue_put(q, m, 300000, 0);
    rc |= mproc_queue_put(q, "end", 3, 0);
    _exit(rc ? 1 : 0);
  }
  assert_int_equal(wait_child(c), 0);
  void *d;
  size_t len;
  MPROC_PASS(mproc_queue_get_alloc(q, &d, &len, 0));
  assert_int_equal(len, 300000);
  assert_true(check(d, len, 77));
  free(d);
  char b[8];
  MPROC_PASS(mproc_queue_get(q, b, sizeof b, &len, 0));
  assert_memory_equal(b, "end", 3);
  MPROC_PASS(mproc_queue_destroy(q));
}

/* 2 producer processes x 2 consumer processes, every message exactly once. */
static void mpmc_processes(void **state) {
  (void)state;
  const int per = 20000, np = 2, nc = 2;
  mproc_queue_t *q;
  mproc_queue_opts o = {.maxsize = 64};
  MPROC_PASS(mproc_queue_create(&q, &o));
  _Atomic uint8_t *seen;
  MPROC_PASS(mproc_heap_alloc((size_t)per * np, (void **)&seen));
  pid_t kids[4];
  for (int c = 0; c < nc; c++) {
    if ((kids[c] = fork()) == 0) {
      for (;;) {
        unsigned char m[600];
        size_t len;
        int rc = mproc_queue_get(q, m, sizeof m, &len, 30);
        if (rc == MPROC_ECLOSED) _exit(0);
        if (rc) _exit(10);
        uint32_t id;
        memcpy(&id, m, 4);
        if (id >= (uint32_t)(per * np) || !check(m + 4, len - 4, id)) _exit(11);
        atomic_fetch_add(&seen[id], 1);
      }
    }
  }
  for (int p = 0; p < np; p++) {
    if ((kids[nc + p] = fork()) == 0) {
      for (int i = 0; i < per; i++) {
        uint32_t id = (uint32_t)(p * per + i);
        unsigned char m[600];
        size_t sz = 4 + (id % 13 == 0 ? 500 : id % 50);
        memcpy(m, &id, 4);
        fill(m + 4, sz - 4, id);
        if (mproc_queue_put(q, m, sz, 30)) _exit(12);
      }
      _exit(0);
    }
  }
  for (int p = 0; p < np; p++) assert_int_equal(wait_child(kids[nc + p]), 0);
  MPROC_PASS(mproc_queue_close(q));
  for (int c = 0; c < nc; c++) assert_int_equal(wait_child(kids[c]), 0);
  for (int i = 0; i < per * np; i++) assert_int_equal(seen[i], 1);
  mproc_heap_free(seen);
  MPROC_PASS(mproc_queue_destroy(q));
}

/* Threads of one process (exercises the ring under TSan). */
static mproc_queue_t *g_tq;
static _Atomic int g_tsum;
static void *thr_prod(void *a) {
  int base = (int)(intptr_t)a;
  for (int i = 0; i < 5000; i++) {
    int v = base + i;
    if (mproc_queue_put(g_tq, &v, sizeof v, 30)) return (void *)1;
  }
  return NULL;
}
static void *thr_cons(void *a) {
  (void)a;
  for (;;) {
    int v;
    size_t len;
    int rc = mproc_queue_get(g_tq, &v, sizeof v, &len, 30);
    if (rc == MPROC_ECLOSED) return NULL;
    if (rc) return (void *)1;
    atomic_fetch_add(&g_tsum, v);
  }
}
static void mpmc_threads(void **state) {
  (void)state;
  mproc_queue_opts o = {.maxsize = 8};
  MPROC_PASS(mproc_queue_create(&g_tq, &o));
  pthread_t p[3], c[3];
  for (int i = 0; i < 3; i++) pthread_create(&c[i], NULL, thr_cons, NULL);
  for (int i = 0; i < 3; i++) pthread_create(&p[i], NULL, thr_prod, (void *)(intptr_t)(i * 5000));
  void *r;
  for (int i = 0; i < 3; i++) {
    pthread_join(p[i], &r);
    assert_null(r);
  }
  MPROC_PASS(mproc_queue_close(g_tq));
  for (int i = 0; i < 3; i++) {
    pthread_join(c[i], &r);
    assert_null(r);
  }
  assert_int_equal(g_tsum, 15000 * 14999 / 2);
  MPROC_PASS(mproc_queue_destroy(g_tq));
}

static pid_t dead_pid(void) {
  pid_t c = fork();
  if (c == 0) _exit(0);
  return c; /* left as a zombie on purpose: dead but not reaped */
}

/* A producer that died holding a slot: the hole is skipped, others flow. */
static void dead_writer_is_skipped(void **state) {
  (void)state;
  for (int variant = 0; variant < 2; variant++) {
    mproc_queue_t *q;
    mproc_queue_opts o = {.maxsize = 4};
    MPROC_PASS(mproc_queue_create(&q, &o));
    pid_t d = dead_pid();
    if (variant) MPROC_PASS(mproc_queue_put(q, "a", 1, 0)); /* shift position parity */
    MPROC_PASS(mproc_queue_put(q, "b", 1, 0));
    MPROC_PASS(mproc__queue_test_abandon(q, 0, (uint32_t)d));
    MPROC_PASS(mproc_queue_put(q, "c", 1, 5));
    char b[4];
    size_t len;
    if (variant) {
      MPROC_PASS(mproc_queue_get(q, b, 4, &len, 5));
      assert_int_equal(b[0], 'a');
    }
    MPROC_PASS(mproc_queue_get(q, b, 4, &len, 5));
    assert_int_equal(b[0], 'b');
    MPROC_PASS(mproc_queue_get(q, b, 4, &len, 5));
    assert_int_equal(b[0], 'c');
    MPROC_ASSERT_RC(mproc_queue_get(q, b, 4, &len, 0.05), MPROC_EEMPTY);
    /* The ring still works for laps after the repair. */
    for (int i = 0; i < 20; i++) {
      MPROC_PASS(mproc_queue_put(q, &i, 1, 1));
      MPROC_PASS(mproc_queue_get(q, b, 4, &len, 1));
      assert_int_equal(b[0], i);
    }
    assert_int_equal(wait_child(d), 0);
    MPROC_PASS(mproc_queue_destroy(q));
  }
}

/* A consumer that died holding a slot: its message is gone with it, the
 * slot comes back to producers, nothing is delivered twice. */
static void dead_reader_releases_slot(void **state) {
  (void)state;
  for (int variant = 0; variant < 2; variant++) {
    mproc_queue_t *q;
    mproc_queue_opts o = {.maxsize = 2};
    MPROC_PASS(mproc_queue_create(&q, &o));
    pid_t d = dead_pid();
    char b[4];
    size_t len;
    if (variant) { /* shift position parity */
      MPROC_PASS(mproc_queue_put(q, "z", 1, 0));
      MPROC_PASS(mproc_queue_get(q, b, 4, &len, 0));
    }
    MPROC_PASS(mproc_queue_put(q, "a", 1, 0));
    MPROC_PASS(mproc_queue_put(q, "b", 1, 0));
    MPROC_PASS(mproc__queue_test_abandon(q, 1, (uint32_t)d));
    MPROC_PASS(mproc_queue_put(q, "c", 1, 5)); /* needs the dead reader's slot */
    MPROC_PASS(mproc_queue_get(q, b, 4, &len, 5));
    assert_int_equal(b[0], 'b');
    MPROC_PASS(mproc_queue_get(q, b, 4, &len, 5));
    assert_int_equal(b[0], 'c');
    MPROC_ASSERT_RC(mproc_queue_get(q, b, 4, &len, 0.05), MPROC_EEMPTY);
    assert_int_equal(wait_child(d), 0);
    MPROC_PASS(mproc_queue_destroy(q));
  }
}

/* A getter asleep on an empty queue uses no CPU (bounded spin, then futex). */
static void idle_getter_uses_no_cpu(void **state) {
  (void)state;
  mproc_queue_t *q;
  MPROC_PASS(mproc_queue_create(&q, NULL));
  pid_t c = fork();
  if (c == 0) {
    char b[4];
    size_t len;
    _exit(mproc_queue_get(q, b, 4, &len, -1) == 0 ? 0 : 1);
  }
  usleep(800000);
  MPROC_PASS(mproc_queue_put(q, "x", 1, 0));
  double cpu = mproc_test_join_cpu(c);
  /* 0.8 s asleep: allow 80 ms for fork, startup and the 100 ms backstop. */
  print_message("idle getter cpu: %.4f s\n", cpu);
  assert_true(cpu < 0.08);
  MPROC_PASS(mproc_queue_destroy(q));
}

static const struct CMUnitTest tests[] = {
    MPROC_TEST(bad_input),
    MPROC_TEST(sizes_roundtrip),
    MPROC_TEST(get_alloc_and_zero_length),
    MPROC_TEST(too_short_keeps_message),
    MPROC_TEST(timeouts_empty_and_full),
    MPROC_TEST(odd_capacity_laps),
    MPROC_TEST(unbounded_overflow_keeps_order),
    MPROC_TEST(close_drains_then_reports_closed),
    MPROC_TEST(close_wakes_blocked_processes),
    MPROC_TEST(byte_bound),
    MPROC_TEST(joinable_task_done_and_join),
    MPROC_TEST(producer_exits_right_after_put),
    MPROC_TEST(mpmc_processes),
    MPROC_TEST(mpmc_threads),
    MPROC_TEST(dead_writer_is_skipped),
    MPROC_TEST(dead_reader_releases_slot),
    MPROC_TEST(idle_getter_uses_no_cpu),
};
MPROC_TEST_MAIN(tests)
