/* test_pool_contract.c - the pool's promises that test_pool.c does not pin
 * down: exact codes of every lifecycle/AsyncResult/imap call on bad input,
 * closed pools and foreign processes; the callback thread and completion
 * order; Python's default chunksize; progress while a map runs; pool-level
 * retries and timeouts; an empty map_async; inputs and results by reference. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

/* ---- task functions ---- */

static int sq(const void *in, size_t n, void *out, mproc_task_ctx *c) {
  (void)n;
  (void)c;
  long x = *(const long *)in;
  *(long *)out = x * x;
  return 0;
}

static int sleeper(const void *in, size_t n, void *out, mproc_task_ctx *c) {
  (void)n;
  (void)c;
  double s = *(const double *)in;
  usleep((useconds_t)(s * 1e6));
  if (out) *(double *)out = s;
  return 0;
}

static mproc_pool_t *mkpool(int n) {
  mproc_pool_t *p = NULL;
  mproc_pool_opts o = {.processes = n};
  MPROC_PASS(mproc_pool_create(&p, &o));
  return p;
}

static int gen_three(void *u, const void **item, size_t *size) {
  long *g = u;
  if (g[0] >= 3) return 0;
  g[1] = g[0]++;
  *item = &g[1];
  *size = sizeof g[1];
  return 1;
}

/* ---- bad input ---- */

static void test_lifecycle_bad(void **s) {
  (void)s;
  int junk[64] = {0};
  mproc_pool_stats st;
  MPROC_ASSERT_RC(mproc_pool_terminate(NULL), -EINVAL);
  MPROC_ASSERT_RC(mproc_pool_terminate((mproc_pool_t *)junk), -EINVAL);
  MPROC_ASSERT_RC(mproc_pool_join(NULL, -1), -EINVAL);
  MPROC_ASSERT_RC(mproc_pool_close(NULL), -EINVAL);
  MPROC_ASSERT_RC(mproc_pool_stats_get(NULL, &st), -EINVAL);
  MPROC_ASSERT_RC(mproc_pool_progress(NULL, NULL, NULL, NULL), -EINVAL);
  mproc_pool_t *p;
  mproc_pool_opts po = {.processes = 1, .retries = 32};
  MPROC_ASSERT_RC(mproc_pool_create(&p, &po), -EINVAL);
  po = (mproc_pool_opts){.processes = 1, .task_timeout = NAN};
  MPROC_ASSERT_RC(mproc_pool_create(&p, &po), -EINVAL);
  p = mkpool(1);
  MPROC_ASSERT_RC(mproc_pool_join(p, -1), MPROC_ESTATE); /* neither close nor terminate */
  MPROC_ASSERT_RC(mproc_pool_join(p, -2), -EINVAL);
  MPROC_ASSERT_RC(mproc_pool_join(p, NAN), -EINVAL);
  long x = 2, r;
  mproc_call_opts o = {.retries = 32};
  MPROC_ASSERT_RC(mproc_pool_map(p, sq, &x, 1, 8, &r, 8, &o), -EINVAL);
  o = (mproc_call_opts){.retries = -2};
  MPROC_ASSERT_RC(mproc_pool_map(p, sq, &x, 1, 8, &r, 8, &o), -EINVAL);
  o = (mproc_call_opts){.timeout = NAN};
  MPROC_ASSERT_RC(mproc_pool_map(p, sq, &x, 1, 8, &r, 8, &o), -EINVAL);
  MPROC_ASSERT_RC(mproc_pool_starmap(p, NULL, &x, 1, 8, &r, 8, NULL), -EINVAL);
  MPROC_ASSERT_RC(mproc_pool_starmap(p, sq, NULL, 1, 8, &r, 8, NULL), -EINVAL);
  MPROC_ASSERT_RC(mproc_pool_starmap(p, sq, &x, 1, 8, NULL, 8, NULL), -EINVAL);
  MPROC_PASS(mproc_pool_terminate(p));
  MPROC_PASS(mproc_pool_terminate(p)); /* twice: still 0 */
  MPROC_PASS(mproc_pool_join(p, 10));
  MPROC_PASS(mproc_pool_destroy(p));
  MPROC_ASSERT_RC(mproc_pool_terminate(p), MPROC_EDESTROYED);
  MPROC_ASSERT_RC(mproc_pool_join(p, 0), MPROC_EDESTROYED);
  MPROC_ASSERT_RC(mproc_pool_close(p), MPROC_EDESTROYED);
  MPROC_ASSERT_RC(mproc_pool_stats_get(p, &st), MPROC_EDESTROYED);
  MPROC_ASSERT_RC(mproc_pool_progress(p, NULL, NULL, NULL), MPROC_EDESTROYED);
}

static void test_async_imap_bad(void **s) {
  (void)s;
  int junk[64] = {0};
  mproc_task_error e;
  MPROC_ASSERT_RC(mproc_async_ready(NULL), -EINVAL);
  MPROC_ASSERT_RC(mproc_async_successful(NULL), -EINVAL);
  MPROC_ASSERT_RC(mproc_async_wait(NULL, 0), -EINVAL);
  MPROC_ASSERT_RC(mproc_async_cancel(NULL), -EINVAL);
  MPROC_ASSERT_RC(mproc_async_error(NULL, &e), -EINVAL);
  MPROC_ASSERT_RC(mproc_async_get(NULL, 0, NULL, NULL), -EINVAL);
  MPROC_ASSERT_RC(mproc_async_destroy(NULL), 0);
  MPROC_ASSERT_RC(mproc_async_ready((mproc_async_t *)junk), -EINVAL);
  MPROC_ASSERT_RC(mproc_async_destroy((mproc_async_t *)junk), -EINVAL);
  MPROC_ASSERT_RC(mproc_imap_next(NULL, 0, NULL, NULL, NULL), -EINVAL);
  MPROC_ASSERT_RC(mproc_imap_error(NULL, &e), -EINVAL);
  MPROC_ASSERT_RC(mproc_imap_destroy(NULL), 0);
  MPROC_ASSERT_RC(mproc_imap_next((mproc_imap_t *)junk, 0, NULL, NULL, NULL), -EINVAL);

  mproc_pool_t *p = mkpool(1);
  long x = 3;
  mproc_async_t *ar;
  MPROC_PASS(mproc_pool_apply_async(p, sq, &x, sizeof x, NULL, &ar));
  MPROC_ASSERT_RC(mproc_async_wait(ar, -2), -EINVAL);
  MPROC_ASSERT_RC(mproc_async_get(ar, NAN, NULL, NULL), -EINVAL);
  MPROC_ASSERT_RC(mproc_async_error(ar, NULL), -EINVAL);
  MPROC_PASS(mproc_async_wait(ar, -1));
  MPROC_PASS(mproc_async_destroy(ar));
  /* use after destroy, while the handle's memory is not reused */
  MPROC_ASSERT_RC(mproc_async_destroy(ar), MPROC_EDESTROYED);
  MPROC_ASSERT_RC(mproc_async_wait(ar, 0), MPROC_EDESTROYED);
  MPROC_ASSERT_RC(mproc_async_cancel(ar), MPROC_EDESTROYED);
  MPROC_ASSERT_RC(mproc_async_successful(ar), MPROC_EDESTROYED);
  MPROC_ASSERT_RC(mproc_async_get(ar, 0, NULL, NULL), MPROC_EDESTROYED);

  long g[2] = {0, 0};
  mproc_imap_t *it;
  MPROC_ASSERT_RC(mproc_pool_imap(p, sq, NULL, g, 8, NULL, &it), -EINVAL);
  MPROC_ASSERT_RC(mproc_pool_imap(p, sq, gen_three, g, 8, NULL, NULL), -EINVAL);
  MPROC_ASSERT_RC(mproc_pool_imap(p, NULL, gen_three, g, 8, NULL, &it), -EINVAL);
  mproc_call_opts o = {.flags = 1u << 7};
  MPROC_ASSERT_RC(mproc_pool_imap(p, sq, gen_three, g, 8, &o, &it), -EINVAL);
  MPROC_PASS(mproc_pool_imap(p, sq, gen_three, g, 8, NULL, &it));
  MPROC_ASSERT_RC(mproc_imap_next(it, -2, NULL, NULL, NULL), -EINVAL);
  MPROC_ASSERT_RC(mproc_imap_error(it, NULL), -EINVAL);
  MPROC_PASS(mproc_imap_destroy(it));
  MPROC_ASSERT_RC(mproc_imap_destroy(it), MPROC_EDESTROYED);
  MPROC_ASSERT_RC(mproc_imap_error(it, &e), MPROC_EDESTROYED);
  MPROC_PASS(mproc_pool_destroy(p));
}

/* Every submitting call on a closed pool: MPROC_ESTATE (Python's
 * ValueError "Pool not running"), even with nothing to run. */
static void test_closed_pool_calls(void **s) {
  (void)s;
  mproc_pool_t *p = mkpool(1);
  MPROC_PASS(mproc_pool_close(p));
  long in[2] = {1, 2}, out[2];
  mproc_async_t *ar = (mproc_async_t *)1;
  mproc_imap_t *it = (mproc_imap_t *)1;
  MPROC_ASSERT_RC(mproc_pool_map(p, sq, in, 2, 8, out, 8, NULL), MPROC_ESTATE);
  MPROC_ASSERT_RC(mproc_pool_map(p, sq, in, 0, 8, out, 8, NULL), MPROC_ESTATE);
  MPROC_ASSERT_RC(mproc_pool_starmap(p, sq, in, 2, 8, out, 8, NULL), MPROC_ESTATE);
  MPROC_ASSERT_RC(mproc_pool_map_async(p, sq, in, 2, 8, out, 8, NULL, &ar), MPROC_ESTATE);
  assert_null(ar);
  MPROC_ASSERT_RC(mproc_pool_map_async(p, sq, in, 0, 8, out, 8, NULL, &ar), MPROC_ESTATE);
  MPROC_ASSERT_RC(mproc_pool_starmap_async(p, sq, in, 2, 8, out, 8, NULL, &ar), MPROC_ESTATE);
  MPROC_ASSERT_RC(mproc_pool_apply_async(p, sq, in, 8, NULL, &ar), MPROC_ESTATE);
  MPROC_ASSERT_RC(mproc_pool_apply(p, sq, in, 8, out, 8, NULL, NULL), MPROC_ESTATE);
  long g[2] = {0, 0};
  MPROC_ASSERT_RC(mproc_pool_imap(p, sq, gen_three, g, 8, NULL, &it), MPROC_ESTATE);
  assert_int_equal(g[0], 0); /* the generator was not called */
  MPROC_PASS(mproc_pool_join(p, 10));
  MPROC_PASS(mproc_pool_destroy(p));
}

/* A forked child of the owner holds copies of the handles: every call on
 * them returns MPROC_ENOTOWNER instead of touching the owner's threads. */
static void test_not_owner(void **s) {
  (void)s;
  mproc_pool_t *p = mkpool(1);
  double slow = 5;
  mproc_async_t *ar;
  MPROC_PASS(mproc_pool_apply_async(p, sleeper, &slow, sizeof slow, NULL, &ar));
  long g[2] = {0, 0};
  mproc_imap_t *it;
  MPROC_PASS(mproc_pool_imap(p, sq, gen_three, g, 8, NULL, &it));
  pid_t c = fork();
  assert_true(c >= 0);
  if (c == 0) {
    long x = 1, r;
    int rcs[] = {
        mproc_pool_map(p, sq, &x, 1, 8, &r, 8, NULL),
        mproc_pool_apply(p, sq, &x, 8, &r, 8, NULL, NULL),
        mproc_pool_close(p),
        mproc_pool_terminate(p),
        mproc_pool_join(p, 0),
        mproc_pool_size(p),
        mproc_pool_progress(p, NULL, NULL, NULL),
        mproc_async_ready(ar),
        mproc_async_wait(ar, 0),
        mproc_async_cancel(ar),
        mproc_async_destroy(ar),
        mproc_imap_next(it, 0, NULL, NULL, NULL),
        mproc_imap_destroy(it),
        mproc_pool_destroy(p),
    };
    int bad = 0;
    for (size_t k = 0; k < sizeof rcs / sizeof rcs[0]; k++)
      if (rcs[k] != MPROC_ENOTOWNER) bad = (int)k + 1;
    _exit(bad);
  }
  int st;
  assert_int_equal(waitpid(c, &st, 0), c);
  assert_true(WIFEXITED(st));
  assert_int_equal(WEXITSTATUS(st), 0); /* else: 1 + index of the call that was wrong */
  /* the owner's objects are untouched */
  assert_int_equal(mproc_async_ready(ar), 0);
  assert_true(mproc_async_cancel(ar) >= 0);
  MPROC_PASS(mproc_imap_destroy(it));
  MPROC_PASS(mproc_async_destroy(ar));
  MPROC_PASS(mproc_pool_destroy(p));
}

/* Fixed-size call: mproc_task_return must fit out_size, and
 * mproc_task_return_buf (variable results only) is refused. */
static int probe_returns(const void *in, size_t n, void *out, mproc_task_ctx *c) {
  (void)in;
  (void)n;
  char big[32] = {0};
  void *b = NULL;
  int r1 = mproc_task_return(c, big, 17); /* out_size is 16 */
  int r2 = mproc_task_return_buf(c, 8, &b);
  int r3 = mproc_task_return(c, NULL, 4);
  int r4 = mproc_task_return(c, "0123456789abcdef", 16);
  int32_t codes[4] = {r1, r2, r3, r4};
  memcpy(out, codes, sizeof codes); /* overwrites r4's bytes: that is fine */
  return 0;
}

static void test_task_return_fixed(void **s) {
  (void)s;
  mproc_pool_t *p = mkpool(1);
  long x = 0;
  int32_t codes[4];
  MPROC_PASS(mproc_pool_map(p, probe_returns, &x, 1, 8, codes, sizeof codes, NULL));
  assert_int_equal(codes[0], -EINVAL);
  assert_int_equal(codes[1], -EINVAL);
  assert_int_equal(codes[2], -EINVAL);
  assert_int_equal(codes[3], 0);
  MPROC_PASS(mproc_pool_destroy(p));
}

/* ---- callbacks: one pool thread, completion order ---- */

enum { NCB = 3 };
static pthread_t g_cb_thread[NCB + 1];
static long g_cb_order[NCB + 1];
static _Atomic int g_cb_n;
static pthread_t g_main;

static void record_cb(mproc_async_t *ar, const void *res, size_t size, void *user) {
  (void)ar;
  (void)res;
  (void)size;
  int k = atomic_fetch_add(&g_cb_n, 1);
  if (k <= NCB) {
    g_cb_order[k] = (long)(intptr_t)user;
    g_cb_thread[k] = pthread_self();
  }
}

static void test_callbacks_order_thread(void **s) {
  (void)s;
  g_main = pthread_self();
  atomic_store(&g_cb_n, 0);
  mproc_pool_t *p = mkpool(2);
  /* 2 workers: task 0 (0.8 s) holds one; tasks 1 (0.05 s) and 2 (0.4 s)
   * run on the other, so they complete 1, 2, 0 - not in submission order */
  double secs[NCB] = {0.8, 0.05, 0.4};
  mproc_async_t *ar[NCB];
  for (long i = 0; i < NCB; i++) {
    mproc_call_opts o = {.callback = record_cb, .user = (void *)(intptr_t)i};
    MPROC_PASS(mproc_pool_apply_async(p, sleeper, &secs[i], sizeof secs[i], &o, &ar[i]));
    usleep(20000); /* submission order = start order */
  }
  MPROC_PASS(mproc_pool_close(p));
  MPROC_PASS(mproc_pool_join(p, 30));
  assert_int_equal(atomic_load(&g_cb_n), NCB);
  assert_int_equal(g_cb_order[0], 1);
  assert_int_equal(g_cb_order[1], 2);
  assert_int_equal(g_cb_order[2], 0);
  for (int k = 0; k < NCB; k++) {
    assert_false(pthread_equal(g_cb_thread[k], g_main));
    assert_true(pthread_equal(g_cb_thread[k], g_cb_thread[0]));
    MPROC_PASS(mproc_async_destroy(ar[k]));
  }
  MPROC_PASS(mproc_pool_destroy(p));
}

/* Python's map_async over an empty iterable calls the callback with []. */
static void test_map_async_empty(void **s) {
  (void)s;
  g_main = pthread_self();
  atomic_store(&g_cb_n, 0);
  mproc_pool_t *p = mkpool(1);
  long out[1];
  mproc_async_t *ar;
  mproc_call_opts o = {.callback = record_cb, .user = (void *)(intptr_t)7};
  MPROC_PASS(mproc_pool_map_async(p, sq, NULL, 0, 8, NULL, 8, &o, &ar));
  MPROC_PASS(mproc_async_get(ar, 10, NULL, NULL));
  assert_int_equal(mproc_async_ready(ar), 1);
  assert_int_equal(mproc_async_successful(ar), 1);
  /* ready means callbacks done */
  assert_int_equal(atomic_load(&g_cb_n), 1);
  assert_int_equal(g_cb_order[0], 7);
  assert_false(pthread_equal(g_cb_thread[0], g_main));
  MPROC_PASS(mproc_async_destroy(ar));
  /* starmap_async too, and without a callback */
  MPROC_PASS(mproc_pool_starmap_async(p, sq, out, 0, 8, out, 8, NULL, &ar));
  MPROC_PASS(mproc_async_wait(ar, 10));
  MPROC_PASS(mproc_async_destroy(ar));
  /* fire and forget: the callback still runs */
  MPROC_PASS(mproc_pool_map_async(p, sq, NULL, 0, 8, NULL, 8, &o, &ar));
  MPROC_PASS(mproc_async_destroy(ar));
  MPROC_PASS(mproc_pool_close(p));
  MPROC_PASS(mproc_pool_join(p, 10));
  assert_int_equal(atomic_load(&g_cb_n), 2);
  MPROC_PASS(mproc_pool_destroy(p));
}

/* ---- chunksize: Python's rule ---- */

static uint64_t chunks_for(mproc_pool_t *p, size_t n) {
  static long in[1000], out[1000];
  mproc_pool_stats a, b;
  MPROC_PASS(mproc_pool_stats_get(p, &a));
  MPROC_PASS(mproc_pool_map(p, sq, in, n, 8, out, 8, NULL));
  MPROC_PASS(mproc_pool_stats_get(p, &b));
  return b.chunks_done - a.chunks_done;
}

static void test_default_chunksize(void **s) {
  (void)s;
  mproc_pool_t *p = mkpool(2);
  /* chunksize, extra = divmod(n, 4 * 2); chunksize += extra > 0 */
  assert_int_equal(chunks_for(p, 97), 8);  /* 13 per chunk (floor would give 9 chunks) */
  assert_int_equal(chunks_for(p, 96), 8);  /* 12 */
  assert_int_equal(chunks_for(p, 7), 7);   /* 1 */
  assert_int_equal(chunks_for(p, 1), 1);
  assert_int_equal(chunks_for(p, 1000), 8); /* 125 */
  assert_int_equal(chunks_for(p, 999), 8);  /* 125 */
  mproc_pool_t *q = mkpool(3);
  assert_int_equal(chunks_for(q, 100), 12); /* divmod(100, 12) = 8 r 4: 9 per chunk */
  MPROC_PASS(mproc_pool_destroy(q));
  MPROC_PASS(mproc_pool_destroy(p));
}

/* ---- progress while a map runs ---- */

typedef struct gated {
  long i;
  mproc_event_t *gate;
} gated;

static int gated_task(const void *in, size_t n, void *out, mproc_task_ctx *c) {
  (void)n;
  const gated *g = in;
  if (g->i >= 6) {
    int rc = mproc_event_wait(g->gate, 30);
    if (rc != 1 && rc != 0) return rc;
  }
  if (g->i % 2) return mproc_task_fail(c, -EDOM, "odd %ld", g->i);
  *(long *)out = g->i;
  return 0;
}

static void test_progress_mid_map(void **s) {
  (void)s;
  mproc_pool_t *p = mkpool(2);
  mproc_event_t *gate;
  MPROC_PASS(mproc_event_create(&gate));
  enum { N = 10 };
  gated in[N];
  long out[N];
  for (long i = 0; i < N; i++) in[i] = (gated){i, gate};
  mproc_call_opts o = {.chunksize = 1};
  mproc_async_t *ar;
  MPROC_PASS(mproc_pool_map_async(p, gated_task, in, N, sizeof in[0], out, 8, &o, &ar));
  /* tasks 0..5 finish (3 succeed, 3 fail); 6 and 7 hold both workers; 8, 9
   * wait */
  uint64_t d = 0, f = 0, pe = 0;
  double t0 = mproc_test_now();
  while (mproc_test_now() - t0 < 20) {
    MPROC_PASS(mproc_pool_progress(p, &d, &f, &pe));
    if (d + f >= 6) break;
    usleep(5000);
  }
  usleep(100000); /* nothing else may finish while the gate is shut */
  MPROC_PASS(mproc_pool_progress(p, &d, &f, &pe));
  assert_int_equal(d, 3);
  assert_int_equal(f, 3);
  assert_int_equal(pe, 4);
  mproc_pool_stats st;
  MPROC_PASS(mproc_pool_stats_get(p, &st));
  assert_int_equal(st.tasks_submitted, N);
  assert_int_equal(st.tasks_pending, 4);
  assert_int_equal(mproc_async_ready(ar), 0);
  MPROC_PASS(mproc_event_set(gate));
  MPROC_ASSERT_RC(mproc_async_get(ar, 20, NULL, NULL), -EDOM);
  MPROC_PASS(mproc_pool_progress(p, &d, &f, &pe));
  assert_int_equal(d, 5);
  assert_int_equal(f, 5);
  assert_int_equal(pe, 0);
  MPROC_PASS(mproc_async_destroy(ar));
  MPROC_PASS(mproc_pool_destroy(p));
  MPROC_PASS(mproc_event_destroy(gate));
}

/* ---- pool-level retries and timeouts ---- */

/* Kills its worker while the shared counter is below the task's k. */
typedef struct kill_k {
  _Atomic int *tries;
  int k;
} kill_k;

static int kill_first_k(const void *in, size_t n, void *out, mproc_task_ctx *c) {
  (void)n;
  (void)c;
  const kill_k *a = in;
  if (atomic_fetch_add(a->tries, 1) < a->k) raise(SIGKILL);
  *(long *)out = 42;
  return 0;
}

static int run_kill_k(mproc_pool_t *p, _Atomic int *tries, int k, const mproc_call_opts *o) {
  atomic_store(tries, 0);
  kill_k a = {tries, k};
  long r = 0;
  int rc = mproc_pool_map(p, kill_first_k, &a, 1, sizeof a, &r, sizeof r, o);
  if (rc == 0) assert_int_equal(r, 42);
  return rc;
}

static void test_pool_retries(void **s) {
  (void)s;
  _Atomic int *tries;
  MPROC_PASS(mproc_heap_alloc(sizeof *tries, (void **)&tries));
  mproc_pool_t *p = NULL;
  mproc_pool_opts po = {.processes = 2, .retries = 2};
  MPROC_PASS(mproc_pool_create(&p, &po));
  MPROC_PASS(run_kill_k(p, tries, 2, NULL)); /* two deaths, two retries */
  assert_int_equal(atomic_load(tries), 3);
  MPROC_ASSERT_RC(run_kill_k(p, tries, 3, NULL), MPROC_EWORKERDIED);
  assert_int_equal(atomic_load(tries), 3); /* no fourth attempt */
  mproc_call_opts none = {.retries = -1};
  MPROC_ASSERT_RC(run_kill_k(p, tries, 1, &none), MPROC_EWORKERDIED);
  assert_int_equal(atomic_load(tries), 1);
  mproc_call_opts more = {.retries = 4};
  MPROC_PASS(run_kill_k(p, tries, 4, &more));
  mproc_pool_stats st;
  MPROC_PASS(mproc_pool_stats_get(p, &st));
  assert_int_equal(st.retries, 2 + 2 + 4);
  assert_int_equal(st.worker_deaths, 2 + 3 + 1 + 4);
  MPROC_PASS(mproc_pool_destroy(p));
  mproc_heap_free(tries);
}

static void test_timeout_override(void **s) {
  (void)s;
  mproc_pool_t *p = NULL;
  mproc_pool_opts po = {.processes = 1, .task_timeout = 0.2};
  MPROC_PASS(mproc_pool_create(&p, &po));
  double x = 0.6, r = 0;
  mproc_call_opts never = {.timeout = -1};
  MPROC_PASS(mproc_pool_map(p, sleeper, &x, 1, 8, &r, 8, &never));
  assert_true(r == 0.6);
  MPROC_ASSERT_RC(mproc_pool_map(p, sleeper, &x, 1, 8, &r, 8, NULL), -ETIMEDOUT);
  mproc_call_opts longer = {.timeout = 5};
  MPROC_PASS(mproc_pool_map(p, sleeper, &x, 1, 8, &r, 8, &longer));
  mproc_pool_stats st;
  MPROC_PASS(mproc_pool_stats_get(p, &st));
  assert_int_equal(st.timeouts, 1);
  MPROC_PASS(mproc_pool_destroy(p));
}

/* ---- by reference ---- */

typedef struct where {
  uintptr_t in, out;
  uint64_t in_size;
} where;

static int where_task(const void *in, size_t n, void *out, mproc_task_ctx *c) {
  (void)c;
  where w = {(uintptr_t)in, (uintptr_t)out, n};
  memcpy(out, &w, sizeof w);
  return 0;
}

static int where_var(const void *in, size_t n, void *out, mproc_task_ctx *c) {
  (void)out;
  where w = {(uintptr_t)in, 0, n};
  return mproc_task_return(c, &w, sizeof w);
}

static void test_by_reference(void **s) {
  (void)s;
  mproc_pool_t *p = mkpool(2);
  enum { N = 64, ISZ = 4096 };
  char *in;
  where *out;
  MPROC_PASS(mproc_heap_alloc((size_t)N * ISZ, (void **)&in));
  MPROC_PASS(mproc_heap_alloc(N * sizeof *out, (void **)&out));
  mproc_call_opts o = {.chunksize = 3};
  /* heap struct array in, heap array out: tasks see the caller's memory */
  MPROC_PASS(mproc_pool_map(p, where_task, in, N, ISZ, out, sizeof *out, &o));
  for (int i = 0; i < N; i++) {
    assert_int_equal(out[i].in, (uintptr_t)(in + (size_t)i * ISZ));
    assert_int_equal(out[i].out, (uintptr_t)&out[i]);
    assert_int_equal(out[i].in_size, ISZ);
  }
  /* mproc_buf inputs in the heap: each task gets that very block */
  mproc_buf bufs[N];
  for (int i = 0; i < N; i++) bufs[i] = (mproc_buf){in + (size_t)i * ISZ, (size_t)ISZ - (size_t)i};
  where *vout = malloc(N * sizeof *vout);
  MPROC_PASS(mproc_pool_map(p, where_task, bufs, N, 0, vout, sizeof *vout, &o));
  for (int i = 0; i < N; i++) {
    assert_int_equal(vout[i].in, (uintptr_t)bufs[i].data);
    assert_int_equal(vout[i].in_size, bufs[i].size);
  }
  /* private inputs are copied: the task sees heap memory, not ours */
  char *priv = malloc((size_t)N * ISZ);
  memset(priv, 1, (size_t)N * ISZ);
  mproc_buf res[N];
  MPROC_PASS(mproc_pool_map(p, where_var, priv, N, ISZ, res, 0, &o));
  for (int i = 0; i < N; i++) {
    assert_int_equal(res[i].size, sizeof(where));
    where w;
    memcpy(&w, res[i].data, sizeof w);
    assert_true(mproc_heap_contains((void *)w.in));
    assert_true(w.in < (uintptr_t)priv || w.in >= (uintptr_t)(priv + (size_t)N * ISZ));
    MPROC_PASS(mproc_buf_free(&res[i]));
  }
  free(priv);
  free(vout);
  mproc_heap_free(out);
  mproc_heap_free(in);
  MPROC_PASS(mproc_pool_destroy(p));
}

static const struct CMUnitTest tests[] = {
    MPROC_TEST(test_lifecycle_bad),
    MPROC_TEST(test_async_imap_bad),
    MPROC_TEST(test_closed_pool_calls),
    MPROC_TEST(test_not_owner),
    MPROC_TEST(test_task_return_fixed),
    MPROC_TEST(test_callbacks_order_thread),
    MPROC_TEST(test_map_async_empty),
    MPROC_TEST(test_default_chunksize),
    MPROC_TEST(test_progress_mid_map),
    MPROC_TEST(test_pool_retries),
    MPROC_TEST(test_timeout_override),
    MPROC_TEST(test_by_reference),
};

MPROC_TEST_MAIN(tests)
