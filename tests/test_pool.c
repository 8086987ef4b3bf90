/* test_pool.c - unit tests of the process pool: every call, every bad input,
 * worker death, timeouts, cancellation, retries, imap laziness, callbacks,
 * stats, nested pools, idle CPU. */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
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

/* Variable-size: returns the input reversed. */
static int rev(const void *in, size_t n, void *out, mproc_task_ctx *c) {
  (void)out;
  char *b = malloc(n ? n : 1);
  for (size_t i = 0; i < n; i++) b[i] = ((const char *)in)[n - 1 - i];
  int rc = mproc_task_return(c, b, n);
  free(b);
  return rc;
}

/* Fails on odd inputs. */
static int even_only(const void *in, size_t n, void *out, mproc_task_ctx *c) {
  (void)n;
  long x = *(const long *)in;
  if (x % 2) return mproc_task_fail(c, -EDOM, "odd input %ld", x);
  *(long *)out = x;
  return 0;
}

/* Dies in various ways depending on the input. */
static int die(const void *in, size_t n, void *out, mproc_task_ctx *c) {
  (void)n;
  (void)c;
  long x = *(const long *)in;
  if (x == 1) raise(SIGKILL);
  if (x == 2) raise(SIGSEGV);
  if (x == 3) abort();
  if (x == 4) _exit(7);
  if (x == 5) {
    /* Grow, then die as the OOM killer would kill us. */
    size_t sz = 64u << 20;
    volatile char *p = malloc(sz);
    for (size_t i = 0; i < sz; i += 4096) p[i] = 1;
    raise(SIGKILL);
  }
  if (out) *(long *)out = x;
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

static int pid_of(const void *in, size_t n, void *out, mproc_task_ctx *c) {
  (void)in;
  (void)n;
  (void)c;
  *(long *)out = getpid();
  return 0;
}

static mproc_pool_t *mkpool(int n) {
  mproc_pool_t *p = NULL;
  mproc_pool_opts o = {.processes = n};
  MPROC_PASS(mproc_pool_create(&p, &o));
  return p;
}

static size_t heap_live(void) {
  mproc_heap_stats st;
  mproc_heap_stats_get(&st);
  return st.live_blocks;
}

/* ---- basics ---- */

static int init_never(void *arg) {
  (void)arg;
  return 0;
}

static void test_create_bad(void **s) {
  (void)s;
  mproc_pool_t *p;
  int x;
  MPROC_ASSERT_RC(mproc_pool_create(NULL, NULL), -EINVAL);
  mproc_pool_opts o = {.processes = -1};
  MPROC_ASSERT_RC(mproc_pool_create(&p, &o), -EINVAL);
  o = (mproc_pool_opts){.processes = 5000};
  MPROC_ASSERT_RC(mproc_pool_create(&p, &o), -EINVAL);
  o = (mproc_pool_opts){.flags = 1};
  MPROC_ASSERT_RC(mproc_pool_create(&p, &o), -EINVAL);
  o = (mproc_pool_opts){.task_timeout = -1};
  MPROC_ASSERT_RC(mproc_pool_create(&p, &o), -EINVAL);
  /* spawn: an initializer never registered as a target, an initarg the
   * exec'd worker cannot see (test_pool_methods.c has the rest) */
  o = (mproc_pool_opts){.start_method = MPROC_START_SPAWN, .initializer = init_never};
  MPROC_ASSERT_RC(mproc_pool_create(&p, &o), MPROC_ENOTREG);
  o = (mproc_pool_opts){.start_method = MPROC_START_SPAWN, .initarg = &x};
  MPROC_ASSERT_RC(mproc_pool_create(&p, &o), -EINVAL);
  o = (mproc_pool_opts){.start_method = -1};
  MPROC_ASSERT_RC(mproc_pool_create(&p, &o), -EINVAL);
  o = (mproc_pool_opts){.start_method = 99};
  MPROC_ASSERT_RC(mproc_pool_create(&p, &o), -EINVAL);
  MPROC_ASSERT_RC(mproc_pool_destroy(NULL), 0);
  MPROC_ASSERT_RC(mproc_pool_size(NULL), -EINVAL);
  MPROC_ASSERT_RC(mproc_pool_close((mproc_pool_t *)&x), -EINVAL);
}

static void test_default_size(void **s) {
  (void)s;
  mproc_pool_t *p = NULL;
  MPROC_PASS(mproc_pool_create(&p, NULL));
  assert_int_equal(mproc_pool_size(p), mproc_cpu_count());
  MPROC_PASS(mproc_pool_destroy(p));
}

static void test_apply(void **s) {
  (void)s;
  mproc_pool_t *p = mkpool(2);
  long x = 12, r = 0;
  size_t rl = 0;
  mproc_call_opts o = {0};
  /* variable-size result (apply): sq writes to out, which is NULL for
   * variable results, so use rev and a long-returning helper */
  MPROC_PASS(mproc_pool_apply(p, rev, "hello", 5, &r, sizeof r, &rl, &o));
  assert_int_equal(rl, 5);
  assert_memory_equal(&r, "olleh", 5);
  char big[100];
  memset(big, 'a', sizeof big);
  big[0] = 'z';
  char back[100];
  MPROC_PASS(mproc_pool_apply(p, rev, big, sizeof big, back, sizeof back, &rl, NULL));
  assert_int_equal(rl, 100);
  assert_int_equal(back[99], 'z');
  char small[10];
  MPROC_ASSERT_RC(mproc_pool_apply(p, rev, big, sizeof big, small, sizeof small, &rl, NULL),
                  MPROC_ETOOSHORT);
  assert_int_equal(rl, 100);
  (void)x;
  MPROC_PASS(mproc_pool_destroy(p));
}

static int ret_long(const void *in, size_t n, void *out, mproc_task_ctx *c) {
  (void)n;
  (void)out;
  long v = *(const long *)in * 3;
  return mproc_task_return(c, &v, sizeof v);
}

static void test_apply_bad(void **s) {
  (void)s;
  mproc_pool_t *p = mkpool(1);
  long x = 1, r;
  MPROC_ASSERT_RC(mproc_pool_apply(NULL, ret_long, &x, sizeof x, &r, sizeof r, NULL, NULL), -EINVAL);
  MPROC_ASSERT_RC(mproc_pool_apply(p, NULL, &x, sizeof x, &r, sizeof r, NULL, NULL), -EINVAL);
  MPROC_ASSERT_RC(mproc_pool_apply(p, ret_long, NULL, 8, &r, sizeof r, NULL, NULL), -EINVAL);
  MPROC_ASSERT_RC(mproc_pool_apply(p, ret_long, &x, sizeof x, NULL, 8, NULL, NULL), -EINVAL);
  mproc_call_opts o = {.timeout = -2};
  MPROC_ASSERT_RC(mproc_pool_apply(p, ret_long, &x, sizeof x, &r, sizeof r, NULL, &o), -EINVAL);
  o = (mproc_call_opts){.retries = 40};
  MPROC_ASSERT_RC(mproc_pool_apply(p, ret_long, &x, sizeof x, &r, sizeof r, NULL, &o), -EINVAL);
  o = (mproc_call_opts){.fn_name = "no-such-fn"};
  MPROC_ASSERT_RC(mproc_pool_apply(p, NULL, &x, sizeof x, &r, sizeof r, NULL, &o), MPROC_ENOTREG);
  o = (mproc_call_opts){.fn_name = ""};
  MPROC_ASSERT_RC(mproc_pool_apply(p, NULL, &x, sizeof x, &r, sizeof r, NULL, &o), -EINVAL);
  mproc_async_t *ar;
  MPROC_ASSERT_RC(mproc_pool_apply_async(p, ret_long, &x, sizeof x, NULL, NULL), -EINVAL);
  MPROC_ASSERT_RC(mproc_pool_apply_async(p, NULL, &x, sizeof x, NULL, &ar), -EINVAL);
  MPROC_PASS(mproc_pool_apply(p, ret_long, &x, sizeof x, &r, sizeof r, NULL, NULL));
  assert_int_equal(r, 3);
  MPROC_PASS(mproc_pool_close(p));
  MPROC_ASSERT_RC(mproc_pool_apply(p, ret_long, &x, sizeof x, &r, sizeof r, NULL, NULL),
                  MPROC_ESTATE);
  MPROC_PASS(mproc_pool_join(p, -1));
  MPROC_PASS(mproc_pool_destroy(p));
  MPROC_ASSERT_RC(mproc_pool_apply(p, ret_long, &x, sizeof x, &r, sizeof r, NULL, NULL),
                  MPROC_EDESTROYED);
  MPROC_ASSERT_RC(mproc_pool_size(p), MPROC_EDESTROYED);
}

static void test_register(void **s) {
  (void)s;
  MPROC_ASSERT_RC(mproc_pool_register(NULL, sq), -EINVAL);
  MPROC_ASSERT_RC(mproc_pool_register("x", NULL), -EINVAL);
  MPROC_ASSERT_RC(mproc_pool_register("", sq), -EINVAL);
  char longname[80];
  memset(longname, 'a', sizeof longname - 1);
  longname[79] = 0;
  MPROC_ASSERT_RC(mproc_pool_register(longname, sq), -EINVAL);
  MPROC_PASS(mproc_pool_register("test.ret_long", ret_long));
  MPROC_PASS(mproc_pool_register("test.ret_long", ret_long));
  MPROC_ASSERT_RC(mproc_pool_register("test.ret_long", sq), -EEXIST);
  mproc_pool_t *p = mkpool(1);
  long x = 5, r = 0;
  mproc_call_opts o = {.fn_name = "test.ret_long"};
  MPROC_PASS(mproc_pool_apply(p, NULL, &x, sizeof x, &r, sizeof r, NULL, &o));
  assert_int_equal(r, 15);
  MPROC_PASS(mproc_pool_destroy(p));
}

static void test_map_fixed(void **s) {
  (void)s;
  mproc_pool_t *p = mkpool(2);
  size_t base = heap_live();
  enum { N = 10000 };
  static long in[N], out[N];
  for (long i = 0; i < N; i++) in[i] = i;
  MPROC_PASS(mproc_pool_map(p, sq, in, N, sizeof(long), out, sizeof(long), NULL));
  for (long i = 0; i < N; i++) assert_int_equal(out[i], i * i);
  /* chunksize 1 and a chunksize larger than n */
  memset(out, 0, sizeof out);
  mproc_call_opts o = {.chunksize = 1};
  MPROC_PASS(mproc_pool_map(p, sq, in, 1000, sizeof(long), out, sizeof(long), &o));
  for (long i = 0; i < 1000; i++) assert_int_equal(out[i], i * i);
  o.chunksize = 100000;
  MPROC_PASS(mproc_pool_starmap(p, sq, in, N, sizeof(long), out, sizeof(long), &o));
  for (long i = 0; i < N; i++) assert_int_equal(out[i], i * i);
  /* empty map */
  MPROC_PASS(mproc_pool_map(p, sq, in, 0, sizeof(long), out, sizeof(long), NULL));
  MPROC_PASS(mproc_pool_close(p));
  MPROC_PASS(mproc_pool_join(p, -1));
  assert_int_equal(heap_live(), base);
  MPROC_PASS(mproc_pool_destroy(p));
}

static void test_map_heap_inout(void **s) {
  (void)s;
  mproc_pool_t *p = mkpool(2);
  long *in, *out;
  enum { N = 5000 };
  MPROC_PASS(mproc_heap_alloc(N * sizeof(long), (void **)&in));
  MPROC_PASS(mproc_heap_alloc(N * sizeof(long), (void **)&out));
  for (long i = 0; i < N; i++) in[i] = i + 1;
  MPROC_PASS(mproc_pool_map(p, sq, in, N, sizeof(long), out, sizeof(long), NULL));
  for (long i = 0; i < N; i++) assert_int_equal(out[i], (i + 1) * (i + 1));
  mproc_heap_free(in);
  mproc_heap_free(out);
  MPROC_PASS(mproc_pool_destroy(p));
}

static void test_map_variable(void **s) {
  (void)s;
  mproc_pool_t *p = mkpool(2);
  size_t base = heap_live();
  enum { N = 200 };
  mproc_buf in[N], out[N];
  char *store = malloc(N * 64);
  for (int i = 0; i < N; i++) {
    int len = i % 40;
    for (int k = 0; k < len; k++) store[i * 64 + k] = (char)('a' + (k + i) % 26);
    in[i].data = store + i * 64;
    in[i].size = (size_t)len;
  }
  MPROC_PASS(mproc_pool_map(p, rev, in, N, 0, out, 0, NULL));
  for (int i = 0; i < N; i++) {
    assert_int_equal(out[i].size, in[i].size);
    for (size_t k = 0; k < in[i].size; k++)
      assert_int_equal(((char *)out[i].data)[k], ((char *)in[i].data)[in[i].size - 1 - k]);
    MPROC_PASS(mproc_buf_free(&out[i]));
  }
  free(store);
  MPROC_PASS(mproc_pool_close(p));
  MPROC_PASS(mproc_pool_join(p, -1));
  assert_int_equal(heap_live(), base);
  MPROC_PASS(mproc_pool_destroy(p));
}

static void test_map_bad(void **s) {
  (void)s;
  mproc_pool_t *p = mkpool(1);
  long in[4] = {0}, out[4];
  mproc_async_t *ar;
  MPROC_ASSERT_RC(mproc_pool_map(NULL, sq, in, 4, 8, out, 8, NULL), -EINVAL);
  MPROC_ASSERT_RC(mproc_pool_map(p, NULL, in, 4, 8, out, 8, NULL), -EINVAL);
  MPROC_ASSERT_RC(mproc_pool_map(p, sq, NULL, 4, 8, out, 8, NULL), -EINVAL);
  MPROC_ASSERT_RC(mproc_pool_map(p, sq, in, 4, 8, NULL, 8, NULL), -EINVAL);
  MPROC_ASSERT_RC(mproc_pool_map(p, sq, in, SIZE_MAX, 8, out, 8, NULL), -EINVAL);
  mproc_call_opts o = {.flags = 99};
  MPROC_ASSERT_RC(mproc_pool_map(p, sq, in, 4, 8, out, 8, &o), -EINVAL);
  MPROC_ASSERT_RC(mproc_pool_map_async(p, sq, in, 4, 8, out, 8, NULL, NULL), -EINVAL);
  MPROC_ASSERT_RC(mproc_pool_starmap_async(p, NULL, in, 4, 8, out, 8, NULL, &ar), -EINVAL);
  mproc_buf bad[1] = {{NULL, 5}};
  MPROC_ASSERT_RC(mproc_pool_map(p, rev, bad, 1, 0, out, 0, NULL), -EINVAL);
  MPROC_PASS(mproc_pool_destroy(p));
}

static void test_task_errors(void **s) {
  (void)s;
  mproc_pool_t *p = mkpool(2);
  enum { N = 20 };
  long in[N], out[N];
  int errs[N];
  for (long i = 0; i < N; i++) in[i] = i;
  mproc_task_error e;
  mproc_call_opts o = {.errors = errs, .error = &e, .chunksize = 3};
  MPROC_ASSERT_RC(mproc_pool_map(p, even_only, in, N, 8, out, 8, &o), -EDOM);
  assert_int_equal(e.code, -EDOM);
  assert_int_equal(e.index, 1);
  assert_string_equal(e.message, "odd input 1");
  for (int i = 0; i < N; i++) {
    assert_int_equal(errs[i], i % 2 ? -EDOM : 0);
    if (i % 2 == 0) assert_int_equal(out[i], i);
  }
  /* positive return means ETASK */
  MPROC_PASS(mproc_task_fail(NULL, 5, "x") == MPROC_ETASK ? 0 : -1);
  MPROC_PASS(mproc_pool_destroy(p));
}

/* ---- worker death ---- */

static void check_death(mproc_pool_t *p, long how, int signo, int status, const char *word) {
  long r;
  mproc_task_error e;
  mproc_call_opts o = {.error = &e};
  MPROC_ASSERT_RC(mproc_pool_map(p, die, &how, 1, sizeof how, &r, sizeof r, &o),
                  MPROC_EWORKERDIED);
  assert_int_equal(e.code, MPROC_EWORKERDIED);
  assert_int_equal(e.signo, signo);
  assert_int_equal(e.exit_status, status);
  if (!strstr(e.message, word)) fail_msg("message '%s' lacks '%s'", e.message, word);
  if (!strstr(e.message, "peak RSS")) fail_msg("message '%s' lacks peak RSS", e.message);
}

static void test_worker_death(void **s) {
  (void)s;
  mproc_pool_t *p = mkpool(2);
  check_death(p, 1, SIGKILL, -1, "SIGKILL");
  check_death(p, 2, SIGSEGV, -1, "SIGSEGV");
  check_death(p, 3, SIGABRT, -1, "SIGABRT");
  check_death(p, 4, 0, 7, "status 7");
  /* OOM-kill look-alike: the peak memory is reported. */
  long how = 5, r;
  mproc_task_error e;
  mproc_call_opts o = {.error = &e};
  MPROC_ASSERT_RC(mproc_pool_map(p, die, &how, 1, sizeof how, &r, sizeof r, &o),
                  MPROC_EWORKERDIED);
  if (e.peak_rss_kb < 60 * 1024) fail_msg("peak %ld KiB: %s", e.peak_rss_kb, e.message);
  /* The pool goes on with replaced workers. */
  enum { N = 1000 };
  static long in[N], out[N];
  for (long i = 0; i < N; i++) in[i] = i;
  MPROC_PASS(mproc_pool_map(p, sq, in, N, 8, out, 8, NULL));
  for (long i = 0; i < N; i++) assert_int_equal(out[i], i * i);
  mproc_pool_stats st;
  MPROC_PASS(mproc_pool_stats_get(p, &st));
  assert_int_equal(st.worker_deaths, 5);
  assert_true(st.worker_restarts >= 5);
  MPROC_PASS(mproc_pool_destroy(p));
}

/* Only the dead worker's chunk fails; every other task of the map is fine. */
static void test_death_in_map(void **s) {
  (void)s;
  mproc_pool_t *p = mkpool(2);
  enum { N = 100 };
  long in[N], out[N];
  int errs[N];
  for (long i = 0; i < N; i++) in[i] = i == 37 ? 1 : 100 + i;
  mproc_call_opts o = {.errors = errs, .chunksize = 1};
  MPROC_ASSERT_RC(mproc_pool_map(p, die, in, N, 8, out, 8, &o), MPROC_EWORKERDIED);
  for (int i = 0; i < N; i++) {
    if (i == 37) assert_int_equal(errs[i], MPROC_EWORKERDIED);
    else {
      assert_int_equal(errs[i], 0);
      assert_int_equal(out[i], 100 + i);
    }
  }
  MPROC_PASS(mproc_pool_destroy(p));
}

static int kill_once(const void *in, size_t n, void *out, mproc_task_ctx *c) {
  (void)n;
  (void)c;
  /* The flag lives in the shared heap: the first attempt dies. */
  _Atomic int *flag = *(_Atomic int *const *)in;
  if (atomic_fetch_add(flag, 1) == 0) raise(SIGKILL);
  *(long *)out = 42;
  return 0;
}

static void test_retries(void **s) {
  (void)s;
  mproc_pool_t *p = mkpool(2);
  _Atomic int *flag;
  MPROC_PASS(mproc_heap_alloc(sizeof *flag, (void **)&flag));
  long r = 0;
  mproc_call_opts o = {.retries = 2};
  MPROC_PASS(mproc_pool_map(p, kill_once, &flag, 1, sizeof flag, &r, sizeof r, &o));
  assert_int_equal(r, 42);
  assert_int_equal(atomic_load(flag), 2);
  mproc_pool_stats st;
  MPROC_PASS(mproc_pool_stats_get(p, &st));
  assert_int_equal(st.retries, 1);
  /* retries = -1: no retry even with a pool default */
  atomic_store(flag, 0);
  o.retries = -1;
  MPROC_ASSERT_RC(mproc_pool_map(p, kill_once, &flag, 1, sizeof flag, &r, sizeof r, &o),
                  MPROC_EWORKERDIED);
  mproc_heap_free(flag);
  MPROC_PASS(mproc_pool_destroy(p));
}

static void test_timeout(void **s) {
  (void)s;
  mproc_pool_t *p = mkpool(2);
  double in[6] = {0.01, 30, 0.01, 0.01, 30, 0.01}, out[6];
  int errs[6];
  /* The quick tasks (10 ms) must not time out: 2 s leaves room for a
   * sanitizer build on a loaded 2-CPU machine (0.3 s was once overrun by a
   * 10 ms task under TSan). */
  mproc_call_opts o = {.timeout = 2.0, .chunksize = 1, .errors = errs};
  double t0 = mproc_test_now();
  MPROC_ASSERT_RC(mproc_pool_map(p, sleeper, in, 6, 8, out, 8, &o), -ETIMEDOUT);
  assert_true(mproc_test_now() - t0 < 10);
  for (int i = 0; i < 6; i++) assert_int_equal(errs[i], in[i] > 1 ? -ETIMEDOUT : 0);
  mproc_pool_stats st;
  MPROC_PASS(mproc_pool_stats_get(p, &st));
  assert_int_equal(st.timeouts, 2);
  /* pool default timeout */
  mproc_pool_t *q = NULL;
  mproc_pool_opts po = {.processes = 1, .task_timeout = 0.2};
  MPROC_PASS(mproc_pool_create(&q, &po));
  double x = 30, r;
  mproc_task_error e;
  mproc_call_opts o2 = {.error = &e};
  MPROC_ASSERT_RC(mproc_pool_map(q, sleeper, &x, 1, 8, &r, 8, &o2), -ETIMEDOUT);
  assert_non_null(strstr(e.message, "timed out"));
  x = 0.01;
  MPROC_PASS(mproc_pool_map(q, sleeper, &x, 1, 8, &r, 8, NULL));
  MPROC_PASS(mproc_pool_destroy(q));
  MPROC_PASS(mproc_pool_destroy(p));
}

/* ---- async ---- */

static int g_cb_count, g_ecb_count;
static long g_cb_sum;
static void cb(mproc_async_t *ar, const void *res, size_t size, void *user) {
  (void)ar;
  (void)user;
  assert_int_equal(size, sizeof(long));
  g_cb_sum += *(const long *)res;
  g_cb_count++;
}
static void ecb(mproc_async_t *ar, const mproc_task_error *e, void *user) {
  (void)ar;
  (void)user;
  assert_int_equal(e->code, -EDOM);
  g_ecb_count++;
}

static void test_apply_async(void **s) {
  (void)s;
  mproc_pool_t *p = mkpool(2);
  enum { N = 50 };
  mproc_async_t *ar[N];
  mproc_call_opts o = {.callback = cb, .error_callback = ecb};
  for (long i = 0; i < N; i++) MPROC_PASS(mproc_pool_apply_async(p, ret_long, &i, sizeof i, &o, &ar[i]));
  long sum = 0;
  for (long i = 0; i < N; i++) {
    const void *r;
    size_t n;
    MPROC_PASS(mproc_async_get(ar[i], -1, &r, &n));
    assert_int_equal(n, sizeof(long));
    assert_int_equal(*(const long *)r, 3 * i);
    sum += 3 * i;
    assert_int_equal(mproc_async_ready(ar[i]), 1);
    assert_int_equal(mproc_async_successful(ar[i]), 1);
    mproc_task_error e;
    MPROC_ASSERT_RC(mproc_async_error(ar[i], &e), MPROC_ESTATE);
  }
  MPROC_PASS(mproc_pool_close(p));
  MPROC_PASS(mproc_pool_join(p, -1));
  assert_int_equal(g_cb_count, N);
  assert_int_equal(g_cb_sum, sum);
  for (int i = 0; i < N; i++) MPROC_PASS(mproc_async_destroy(ar[i]));
  MPROC_ASSERT_RC(mproc_async_ready(ar[0]), MPROC_EDESTROYED);
  MPROC_PASS(mproc_pool_destroy(p));
}

static void test_callback_after_destroy(void **s) {
  (void)s;
  mproc_pool_t *p = mkpool(2);
  g_cb_count = 0;
  g_cb_sum = 0;
  mproc_call_opts o = {.callback = cb};
  for (long i = 1; i <= 20; i++) {
    mproc_async_t *ar;
    MPROC_PASS(mproc_pool_apply_async(p, ret_long, &i, sizeof i, &o, &ar));
    MPROC_PASS(mproc_async_destroy(ar)); /* fire and forget */
  }
  MPROC_PASS(mproc_pool_close(p));
  MPROC_PASS(mproc_pool_join(p, -1));
  assert_int_equal(g_cb_count, 20);
  assert_int_equal(g_cb_sum, 3 * 210);
  MPROC_PASS(mproc_pool_destroy(p));
}

static void test_async_fail_and_timeout(void **s) {
  (void)s;
  mproc_pool_t *p = mkpool(1);
  long odd = 3;
  mproc_async_t *a, *b;
  mproc_call_opts o = {.error_callback = ecb};
  MPROC_PASS(mproc_pool_map_async(p, even_only, &odd, 1, 8, &odd, 8, &o, &a));
  MPROC_ASSERT_RC(mproc_async_get(a, 10, NULL, NULL), -EDOM);
  assert_int_equal(mproc_async_successful(a), 0);
  mproc_task_error e;
  MPROC_PASS(mproc_async_error(a, &e));
  assert_string_equal(e.message, "odd input 3");
  assert_int_equal(g_ecb_count, 1);
  /* get with a timeout on a slow task */
  double slow = 2.0;
  MPROC_PASS(mproc_pool_apply_async(p, sleeper, &slow, sizeof slow, NULL, &b));
  double t0 = mproc_test_now();
  MPROC_ASSERT_RC(mproc_async_get(b, 0.1, NULL, NULL), -ETIMEDOUT);
  assert_true(mproc_test_now() - t0 < 1.5);
  assert_int_equal(mproc_async_ready(b), 0);
  MPROC_ASSERT_RC(mproc_async_successful(b), MPROC_ESTATE);
  MPROC_ASSERT_RC(mproc_async_wait(b, -3), -EINVAL);
  MPROC_ASSERT_RC(mproc_async_get(NULL, 0, NULL, NULL), -EINVAL);
  MPROC_ASSERT_RC(mproc_async_error(b, NULL), -EINVAL);
  MPROC_PASS(mproc_async_wait(b, -1));
  MPROC_PASS(mproc_async_destroy(a));
  MPROC_PASS(mproc_async_destroy(b));
  MPROC_PASS(mproc_pool_destroy(p));
}

static void test_cancel(void **s) {
  (void)s;
  mproc_pool_t *p = mkpool(1);
  double slow = 0.5, quick[10] = {0}, out[10];
  int errs[10];
  mproc_async_t *a, *b;
  MPROC_PASS(mproc_pool_apply_async(p, sleeper, &slow, sizeof slow, NULL, &a));
  mproc_call_opts o = {.chunksize = 1, .errors = errs};
  MPROC_PASS(mproc_pool_map_async(p, sleeper, quick, 10, 8, out, 8, &o, &b));
  int n = mproc_async_cancel(b);
  assert_true(n >= 9 && n <= 10);
  MPROC_ASSERT_RC(mproc_async_get(b, 10, NULL, NULL), -ECANCELED);
  int nc = 0;
  for (int i = 0; i < 10; i++) nc += errs[i] == -ECANCELED;
  assert_int_equal(nc, n);
  MPROC_PASS(mproc_async_get(a, 10, NULL, NULL));
  assert_int_equal(mproc_async_cancel(a), 0);
  uint64_t done, failed, pending;
  MPROC_PASS(mproc_pool_progress(p, &done, &failed, &pending));
  assert_int_equal(pending, 0);
  assert_int_equal(done + failed, 11);
  MPROC_PASS(mproc_async_destroy(a));
  MPROC_PASS(mproc_async_destroy(b));
  MPROC_PASS(mproc_pool_destroy(p));
}

/* ---- imap ---- */

typedef struct gen_state {
  long next, end;
  long produced;
  long item;
} gen_state;

static int gen_range(void *u, const void **item, size_t *size) {
  gen_state *g = u;
  if (g->end >= 0 && g->next >= g->end) return 0;
  g->item = g->next++;
  g->produced++;
  *item = &g->item;
  *size = sizeof g->item;
  return 1;
}

static void test_imap_ordered(void **s) {
  (void)s;
  mproc_pool_t *p = mkpool(2);
  gen_state g = {.next = 0, .end = 200};
  mproc_imap_t *it;
  mproc_call_opts o = {.chunksize = 3};
  MPROC_PASS(mproc_pool_imap(p, sq, gen_range, &g, sizeof(long), &o, &it));
  for (long i = 0; i < 200; i++) {
    const void *r;
    size_t n, idx;
    MPROC_PASS(mproc_imap_next(it, -1, &r, &n, &idx));
    assert_int_equal(idx, i);
    assert_int_equal(n, sizeof(long));
    assert_int_equal(*(const long *)r, i * i);
  }
  MPROC_ASSERT_RC(mproc_imap_next(it, -1, NULL, NULL, NULL), MPROC_ESTOPITER);
  MPROC_ASSERT_RC(mproc_imap_next(it, -1, NULL, NULL, NULL), MPROC_ESTOPITER);
  MPROC_PASS(mproc_imap_destroy(it));
  MPROC_PASS(mproc_pool_destroy(p));
}

static void test_imap_unordered_lazy(void **s) {
  (void)s;
  mproc_pool_t *p = mkpool(2);
  /* An endless generator: only max_inflight items are ever pulled ahead. */
  gen_state g = {.next = 0, .end = -1};
  mproc_imap_t *it;
  mproc_call_opts o = {.flags = MPROC_IMAP_UNORDERED, .max_inflight = 8};
  MPROC_PASS(mproc_pool_imap(p, sq, gen_range, &g, sizeof(long), &o, &it));
  static char seen[1000];
  for (int k = 0; k < 500; k++) {
    const void *r;
    size_t idx;
    MPROC_PASS(mproc_imap_next(it, 10, &r, NULL, &idx));
    assert_true(idx < 1000);
    assert_int_equal(*(const long *)r, (long)idx * (long)idx);
    assert_false(seen[idx]);
    seen[idx] = 1;
    assert_true(g.produced <= k + 1 + 8);
  }
  MPROC_PASS(mproc_imap_destroy(it));
  MPROC_PASS(mproc_pool_destroy(p));
}

static void test_imap_errors_timeout(void **s) {
  (void)s;
  mproc_pool_t *p = mkpool(1);
  gen_state g = {.next = 0, .end = 6};
  mproc_imap_t *it;
  MPROC_PASS(mproc_pool_imap(p, even_only, gen_range, &g, sizeof(long), NULL, &it));
  for (long i = 0; i < 6; i++) {
    const void *r;
    int rc = mproc_imap_next(it, -1, &r, NULL, NULL);
    if (i % 2) {
      MPROC_ASSERT_RC(rc, -EDOM);
      mproc_task_error e;
      MPROC_PASS(mproc_imap_error(it, &e));
      assert_int_equal(e.index, i);
      char want[32];
      snprintf(want, sizeof want, "odd input %ld", i);
      assert_string_equal(e.message, want);
    } else {
      MPROC_PASS(rc);
      assert_int_equal(*(const long *)r, i);
    }
  }
  MPROC_ASSERT_RC(mproc_imap_next(it, -1, NULL, NULL, NULL), MPROC_ESTOPITER);
  MPROC_PASS(mproc_imap_destroy(it));
  MPROC_ASSERT_RC(mproc_pool_imap(p, sleeper, NULL, NULL, 8, NULL, &it), -EINVAL);
  MPROC_ASSERT_RC(mproc_pool_imap(p, sleeper, gen_range, &g, 8, NULL, NULL), -EINVAL);
  MPROC_PASS(mproc_pool_destroy(p));
}

static double g_slow = 1.0;
static int gen_slow(void *u, const void **item, size_t *size) {
  int *n = u;
  if ((*n)++ >= 1) return 0;
  *item = &g_slow;
  *size = sizeof g_slow;
  return 1;
}

static void test_imap_next_timeout(void **s) {
  (void)s;
  mproc_pool_t *p = mkpool(1);
  int n = 0;
  mproc_imap_t *it;
  MPROC_PASS(mproc_pool_imap(p, sleeper, gen_slow, &n, 8, NULL, &it));
  MPROC_ASSERT_RC(mproc_imap_next(it, 0.05, NULL, NULL, NULL), -ETIMEDOUT);
  MPROC_ASSERT_RC(mproc_imap_next(it, -5, NULL, NULL, NULL), -EINVAL);
  const void *r;
  MPROC_PASS(mproc_imap_next(it, 30, &r, NULL, NULL));
  assert_true(*(const double *)r == 1.0);
  MPROC_ASSERT_RC(mproc_imap_next(it, 0, NULL, NULL, NULL), MPROC_ESTOPITER);
  MPROC_PASS(mproc_imap_destroy(it));
  MPROC_PASS(mproc_pool_destroy(p));
}

static int gen_fail(void *u, const void **item, size_t *size) {
  int *n = u;
  static long v = 4;
  if ((*n)++ >= 2) return -EIO;
  *item = &v;
  *size = sizeof v;
  return 1;
}

static void test_imap_gen_error(void **s) {
  (void)s;
  mproc_pool_t *p = mkpool(1);
  int n = 0;
  mproc_imap_t *it;
  MPROC_PASS(mproc_pool_imap(p, sq, gen_fail, &n, sizeof(long), NULL, &it));
  MPROC_PASS(mproc_imap_next(it, -1, NULL, NULL, NULL));
  MPROC_PASS(mproc_imap_next(it, -1, NULL, NULL, NULL));
  MPROC_ASSERT_RC(mproc_imap_next(it, -1, NULL, NULL, NULL), -EIO);
  MPROC_ASSERT_RC(mproc_imap_next(it, -1, NULL, NULL, NULL), MPROC_ESTOPITER);
  MPROC_PASS(mproc_imap_destroy(it));
  MPROC_ASSERT_RC(mproc_imap_next(it, -1, NULL, NULL, NULL), MPROC_EDESTROYED);
  MPROC_PASS(mproc_pool_destroy(p));
}

/* ---- lifecycle ---- */

static int g_init_calls;
static int init_ok(void *arg) {
  /* runs in the worker: record it in the shared heap */
  atomic_fetch_add((_Atomic int *)arg, 1);
  return 0;
}
static int init_bad(void *arg) {
  (void)arg;
  return -1;
}

static void test_initializer_maxtasks(void **s) {
  (void)s;
  _Atomic int *cnt;
  MPROC_PASS(mproc_heap_alloc(sizeof *cnt, (void **)&cnt));
  mproc_pool_t *p = NULL;
  mproc_pool_opts o = {.processes = 2, .initializer = init_ok, .initarg = (void *)cnt,
                       .maxtasksperchild = 5};
  MPROC_PASS(mproc_pool_create(&p, &o));
  enum { N = 100 };
  long in[N], out[N];
  mproc_call_opts co = {.chunksize = 2};
  MPROC_PASS(mproc_pool_map(p, pid_of, in, N, 8, out, 8, &co));
  /* 50 chunks, 5 per worker: at least 10 distinct workers ran. */
  int distinct = 0;
  for (int i = 0; i < N; i++) {
    int dup = 0;
    for (int k = 0; k < i; k++) dup |= out[k] == out[i];
    distinct += !dup;
  }
  assert_true(distinct >= 10);
  MPROC_PASS(mproc_pool_close(p));
  MPROC_PASS(mproc_pool_join(p, -1));
  assert_true(atomic_load(cnt) >= 10);
  mproc_pool_stats st;
  MPROC_PASS(mproc_pool_stats_get(p, &st));
  assert_int_equal(st.worker_deaths, 0);
  assert_true(st.worker_restarts >= 8);
  MPROC_PASS(mproc_pool_destroy(p));
  mproc_heap_free(cnt);
  (void)g_init_calls;
}

static void test_initializer_fails(void **s) {
  (void)s;
  mproc_pool_t *p = NULL;
  mproc_pool_opts o = {.processes = 2, .initializer = init_bad};
  MPROC_PASS(mproc_pool_create(&p, &o));
  long x = 2, r;
  mproc_task_error e;
  mproc_call_opts co = {.error = &e};
  MPROC_ASSERT_RC(mproc_pool_map(p, sq, &x, 1, 8, &r, 8, &co), MPROC_ECHILDFAIL);
  assert_non_null(strstr(e.message, "initializer"));
  MPROC_ASSERT_RC(mproc_pool_map(p, sq, &x, 1, 8, &r, 8, &co), MPROC_ECHILDFAIL);
  MPROC_PASS(mproc_pool_destroy(p));
}

static void test_close_join_terminate(void **s) {
  (void)s;
  mproc_pool_t *p = mkpool(2);
  MPROC_ASSERT_RC(mproc_pool_join(p, -1), MPROC_ESTATE);
  MPROC_ASSERT_RC(mproc_pool_join(p, -7), -EINVAL);
  double slow[4] = {30, 30, 30, 30}, out[4];
  mproc_async_t *a;
  MPROC_PASS(mproc_pool_map_async(p, sleeper, slow, 4, 8, out, 8, NULL, &a));
  MPROC_PASS(mproc_pool_close(p));
  MPROC_ASSERT_RC(mproc_pool_join(p, 0.1), -ETIMEDOUT);
  double t0 = mproc_test_now();
  MPROC_PASS(mproc_pool_terminate(p));
  MPROC_PASS(mproc_pool_join(p, 20));
  assert_true(mproc_test_now() - t0 < 10);
  MPROC_ASSERT_RC(mproc_async_get(a, 0, NULL, NULL), -ECANCELED);
  MPROC_PASS(mproc_pool_join(p, 0));
  MPROC_PASS(mproc_async_destroy(a));
  MPROC_PASS(mproc_pool_destroy(p));
}

static void test_destroy_with_pending(void **s) {
  (void)s;
  size_t base = heap_live();
  mproc_pool_t *p = mkpool(2);
  double slow[8] = {30, 30, 30, 30, 30, 30, 30, 30}, out[8];
  mproc_async_t *a;
  mproc_call_opts o = {.chunksize = 1};
  MPROC_PASS(mproc_pool_map_async(p, sleeper, slow, 8, 8, out, 8, &o, &a));
  gen_state g = {.next = 0, .end = -1};
  mproc_imap_t *it;
  MPROC_PASS(mproc_pool_imap(p, sq, gen_range, &g, 8, NULL, &it));
  MPROC_PASS(mproc_pool_destroy(p));
  /* handles outliving the pool answer, then free */
  MPROC_ASSERT_RC(mproc_async_get(a, 0, NULL, NULL), -ECANCELED);
  MPROC_ASSERT_RC(mproc_imap_next(it, 0, NULL, NULL, NULL), MPROC_EDESTROYED);
  MPROC_PASS(mproc_imap_destroy(it));
  MPROC_PASS(mproc_async_destroy(a));
  assert_int_equal(heap_live(), base);
}

static void test_progress_stats(void **s) {
  (void)s;
  mproc_pool_t *p = mkpool(2);
  enum { N = 3000 };
  static long in[N], out[N];
  for (long i = 0; i < N; i++) in[i] = i;
  MPROC_PASS(mproc_pool_map(p, sq, in, N, 8, out, 8, NULL));
  uint64_t d, f, pe;
  MPROC_PASS(mproc_pool_progress(p, &d, &f, &pe));
  assert_int_equal(d, N);
  assert_int_equal(f, 0);
  assert_int_equal(pe, 0);
  MPROC_PASS(mproc_pool_progress(p, NULL, NULL, NULL));
  mproc_pool_stats st;
  MPROC_ASSERT_RC(mproc_pool_stats_get(p, NULL), -EINVAL);
  MPROC_PASS(mproc_pool_stats_get(p, &st));
  assert_int_equal(st.tasks_submitted, N);
  assert_int_equal(st.tasks_done, N);
  assert_int_equal(st.nworkers, 2);
  assert_true(st.chunks_done >= 8);
  assert_true(st.busy_sec[0] + st.busy_sec[1] > 0);
  MPROC_ASSERT_RC(mproc_pool_progress(NULL, &d, &f, &pe), -EINVAL);
  MPROC_PASS(mproc_pool_destroy(p));
}

static void test_idle_no_cpu(void **s) {
  (void)s;
  mproc_pool_t *p = mkpool(2);
  long x = 3, r;
  MPROC_PASS(mproc_pool_apply(p, ret_long, &x, sizeof x, &r, sizeof r, NULL, NULL));
  usleep(200000); /* let spins end */
  struct rusage a, b, ca, cb2;
  getrusage(RUSAGE_SELF, &a);
  mproc_pool_stats st0;
  mproc_pool_stats_get(p, &st0);
  /* Workers are not reaped yet, so measure them through /proc. */
  char path[64];
  long t0[2] = {0}, t1[2] = {0};
  (void)ca;
  (void)cb2;
  pid_t pids[2];
  {
    /* find the workers: ask them */
    long in[2] = {0, 0}, out[2];
    mproc_call_opts o = {.chunksize = 1};
    MPROC_PASS(mproc_pool_map(p, pid_of, in, 2, 8, out, 8, &o));
    pids[0] = (pid_t)out[0];
    pids[1] = (pid_t)out[1];
  }
  usleep(200000);
  for (int k = 0; k < 2; k++) {
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pids[k]);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    long ut, st;
    char buf[1024];
    assert_non_null(fgets(buf, sizeof buf, f));
    fclose(f);
    char *q = strrchr(buf, ')');
    sscanf(q + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld", &ut, &st);
    t0[k] = ut + st;
  }
  getrusage(RUSAGE_SELF, &a);
  sleep(1);
  getrusage(RUSAGE_SELF, &b);
  for (int k = 0; k < 2; k++) {
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pids[k]);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    long ut, st;
    char buf[1024];
    assert_non_null(fgets(buf, sizeof buf, f));
    fclose(f);
    char *q = strrchr(buf, ')');
    sscanf(q + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld", &ut, &st);
    t1[k] = ut + st;
  }
  double self = (double)(b.ru_utime.tv_sec - a.ru_utime.tv_sec) +
                (double)(b.ru_utime.tv_usec - a.ru_utime.tv_usec) * 1e-6 +
                (double)(b.ru_stime.tv_sec - a.ru_stime.tv_sec) +
                (double)(b.ru_stime.tv_usec - a.ru_stime.tv_usec) * 1e-6;
  /* One idle second: the owner (pool thread included) and the workers use
   * (almost) no CPU: ticks are 10 ms. */
  assert_true(self < 0.02);
  assert_true(t1[0] - t0[0] <= 1);
  assert_true(t1[1] - t0[1] <= 1);
  MPROC_PASS(mproc_pool_destroy(p));
}

/* ---- nested pools ---- */

static int nested_task(const void *in, size_t n, void *out, mproc_task_ctx *c) {
  (void)n;
  (void)c;
  long x = *(const long *)in;
  mproc_pool_t *q = NULL;
  mproc_pool_opts o = {.processes = 8};
  int rc = mproc_pool_create(&q, &o);
  if (rc) return rc;
  long v[4] = {x, x + 1, x + 2, x + 3}, r[4];
  rc = mproc_pool_map(q, sq, v, 4, 8, r, 8, NULL);
  long size = mproc_pool_size(q);
  mproc_pool_destroy(q);
  if (rc) return rc;
  ((long *)out)[0] = r[0] + r[1] + r[2] + r[3];
  ((long *)out)[1] = size;
  return 0;
}

/* $MPROC_POOL_LIMIT is the default limit when it is a whole number in
 * 1..4096; anything else leaves mproc_cpu_count(). (Read only while no
 * limit was set in the family: ctest runs each case in a fresh one.) */
static void test_family_limit_env(void **s) {
  (void)s;
  const char *bad[] = {"0", "-3", "5000", "abc", "3x", "", " "};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    setenv("MPROC_POOL_LIMIT", bad[i], 1);
    assert_int_equal(mproc_pool_get_family_limit(), mproc_cpu_count());
  }
  setenv("MPROC_POOL_LIMIT", "3", 1);
  assert_int_equal(mproc_pool_get_family_limit(), 3);
  setenv("MPROC_POOL_LIMIT", "4096", 1);
  assert_int_equal(mproc_pool_get_family_limit(), 4096);
  /* It clips nested pools like a limit that was set (not under TSan: see
   * test_nested). */
#if !defined(__SANITIZE_THREAD__)
  setenv("MPROC_POOL_LIMIT", "3", 1);
  mproc_pool_t *p = mkpool(2);
  long in[2] = {1, 10}, out[4];
  mproc_call_opts o = {.chunksize = 1};
  MPROC_PASS(mproc_pool_map(p, nested_task, in, 2, 8, out, 16, &o));
  assert_int_equal(out[0], 1 + 4 + 9 + 16);
  /* limit 3 - 2 outer workers = room for 1 */
  assert_int_equal(out[1], 1);
  assert_int_equal(out[3], 1);
  MPROC_PASS(mproc_pool_destroy(p));
#endif
  unsetenv("MPROC_POOL_LIMIT");
}

static void test_nested(void **s) {
  (void)s;
#if defined(__SANITIZE_THREAD__)
  /* TSan kills a child of a multithreaded fork that starts a thread, and a
   * nested pool starts its pool thread inside a worker. */
  skip();
#endif
  int old = mproc_pool_get_family_limit();
  MPROC_ASSERT_RC(mproc_pool_set_family_limit(0), -EINVAL);
  MPROC_ASSERT_RC(mproc_pool_set_family_limit(5000), -EINVAL);
  MPROC_PASS(mproc_pool_set_family_limit(4));
  assert_int_equal(mproc_pool_get_family_limit(), 4);
  mproc_pool_t *p = mkpool(2);
  long in[2] = {1, 10}, out[4];
  mproc_call_opts o = {.chunksize = 1};
  MPROC_PASS(mproc_pool_map(p, nested_task, in, 2, 8, out, 16, &o));
  assert_int_equal(out[0], 1 + 4 + 9 + 16);
  assert_int_equal(out[2], 100 + 121 + 144 + 169);
  /* each nested pool was clipped: limit 4 - 2 outer workers = room for 2 */
  assert_true(out[1] >= 1 && out[1] <= 2);
  assert_true(out[3] >= 1 && out[3] <= 2);
  MPROC_PASS(mproc_pool_destroy(p));
  MPROC_PASS(mproc_pool_set_family_limit(old));
}

static void test_task_ctx_bad(void **s) {
  (void)s;
  MPROC_ASSERT_RC(mproc_task_return(NULL, "x", 1), -EINVAL);
  void *b;
  MPROC_ASSERT_RC(mproc_task_return_buf(NULL, 4, &b), -EINVAL);
  MPROC_ASSERT_RC(mproc_task_index(NULL), -EINVAL);
  MPROC_ASSERT_RC(mproc_task_worker(NULL), -EINVAL);
  MPROC_ASSERT_RC(mproc_task_fail(NULL, -EIO, "x"), -EIO);
  MPROC_ASSERT_RC(mproc_buf_free(NULL), 0);
  mproc_buf nb = {0};
  MPROC_ASSERT_RC(mproc_buf_free(&nb), 0);
}

static int big_result(const void *in, size_t n, void *out, mproc_task_ctx *c) {
  (void)out;
  size_t sz = *(const size_t *)in;
  (void)n;
  char *b;
  int rc = mproc_task_return_buf(c, sz, (void **)&b);
  if (rc) return rc;
  for (size_t i = 0; i < sz; i++) b[i] = (char)(i * 7);
  return 0;
}

static void test_big_results(void **s) {
  (void)s;
  mproc_pool_t *p = mkpool(2);
  size_t sizes[3] = {1 << 20, 3 << 20, 17};
  mproc_buf out[3];
  mproc_call_opts o = {.chunksize = 1};
  MPROC_PASS(mproc_pool_map(p, big_result, sizes, 3, sizeof(size_t), out, 0, &o));
  for (int k = 0; k < 3; k++) {
    assert_int_equal(out[k].size, sizes[k]);
    assert_true(mproc_heap_contains(out[k].data));
    for (size_t i = 0; i < sizes[k]; i += 4099)
      assert_int_equal(((char *)out[k].data)[i], (char)(i * 7));
    mproc_buf_free(&out[k]);
  }
  MPROC_PASS(mproc_pool_destroy(p));
}

/* Kernels (and valgrind) without pidfd_open: death pipes and kill(). */
void mproc__force_no_pidfd(int on);
static void test_no_pidfd_fallback(void **s) {
  (void)s;
  mproc__force_no_pidfd(1);
  mproc_pool_t *p = mkpool(2);
  check_death(p, 1, SIGKILL, -1, "SIGKILL");
  check_death(p, 4, 0, 7, "status 7");
  double x = 30, r;
  mproc_call_opts o = {.timeout = 0.2};
  MPROC_ASSERT_RC(mproc_pool_map(p, sleeper, &x, 1, 8, &r, 8, &o), -ETIMEDOUT);
  enum { N = 500 };
  long in[N], out[N];
  for (long i = 0; i < N; i++) in[i] = i;
  MPROC_PASS(mproc_pool_map(p, sq, in, N, 8, out, 8, NULL));
  for (long i = 0; i < N; i++) assert_int_equal(out[i], i * i);
  MPROC_PASS(mproc_pool_destroy(p));
  mproc__force_no_pidfd(0);
}


/* ---- large private inputs: the staging block ---- */

static int sum_bytes(const void *in, size_t n, void *out, mproc_task_ctx *c) {
  (void)c;
  uint64_t s = 0;
  for (size_t i = 0; i < n; i++) s += ((const unsigned char *)in)[i];
  *(uint64_t *)out = s + n;
  return 0;
}

static uint64_t expect_sum(const unsigned char *b, size_t n) {
  uint64_t s = 0;
  for (size_t i = 0; i < n; i++) s += b[i];
  return s + n;
}

/* Large private inputs go through the pool's reused staging block: each
 * call sees its own bytes (a reused block holds the previous call's), a
 * failed task's fixed result slot reads 0, and the block is freed after
 * an idle second. */
static void test_stage_reuse(void **s) {
  (void)s;
  mproc_pool_t *p = mkpool(2);
  mproc_heap_stats h0, h1;
  MPROC_PASS(mproc_heap_stats_get(&h0));
  size_t base = heap_live();
  for (int round = 0; round < 3; round++) {
    int nb = 3 + round;                             /* 3, 4, 5 buffers */
    size_t sz = ((size_t)1 << 20) + (size_t)round * 4099; /* ~1 MiB, odd sizes */
    mproc_buf in[5];
    uint64_t sums[5];
    for (int i = 0; i < nb; i++) {
      unsigned char *b = malloc(sz);
      for (size_t k = 0; k < sz; k++) b[k] = (unsigned char)(k * 7 + (size_t)i * 13 + (size_t)round);
      in[i] = (mproc_buf){b, sz - (size_t)i};
    }
    mproc_call_opts o = {.chunksize = 1};
    MPROC_PASS(mproc_pool_map(p, sum_bytes, in, (size_t)nb, 0, sums, sizeof sums[0], &o));
    for (int i = 0; i < nb; i++) {
      assert_int_equal(sums[i], expect_sum(in[i].data, in[i].size));
      free(in[i].data);
    }
  }
  /* fixed-size private inputs and results, some tasks failing */
  enum { N = 200000 }; /* 1.6 MB in, 1.6 MB out: staged */
  long *in = malloc(N * sizeof(long)), *out = malloc(N * sizeof(long));
  int *errs = malloc(N * sizeof(int));
  for (long i = 0; i < N; i++) in[i] = i;
  for (int k = 0; k < 2; k++) { /* the second call reuses the block */
    for (long i = 0; i < N; i++) in[i] = i + k; /* odd inputs fail */
    memset(out, 0x5a, N * sizeof(long));
    mproc_call_opts o = {.errors = errs};
    MPROC_ASSERT_RC(mproc_pool_map(p, even_only, in, N, sizeof(long), out, sizeof(long), &o),
                    -EDOM);
    for (long i = 0; i < N; i++) {
      if (in[i] % 2) {
        assert_int_equal(errs[i], -EDOM);
        assert_int_equal(out[i], 0);
      } else {
        assert_int_equal(errs[i], 0);
        assert_int_equal(out[i], in[i]);
      }
    }
  }
  free(in);
  free(out);
  free(errs);
  /* the cached block goes away after an idle second */
  double t0 = mproc_test_now();
  do {
    usleep(100000);
    MPROC_PASS(mproc_heap_stats_get(&h1));
  } while (heap_live() != base && mproc_test_now() - t0 < 10);
  assert_int_equal(heap_live(), base);
  assert_true(h1.used <= h0.used + 65536);
  MPROC_PASS(mproc_pool_destroy(p));
}

static int big_pattern(const void *in, size_t n, void *out, mproc_task_ctx *c) {
  (void)n;
  (void)out;
  size_t sz = *(const size_t *)in;
  void *b;
  int rc = mproc_task_return_buf(c, sz, &b);
  if (rc) return rc;
  for (size_t i = 0; i < sz; i++) ((unsigned char *)b)[i] = (unsigned char)(i * 31);
  return 0;
}

/* apply_async hands the task's heap result to the handle as it is. */
static void test_async_result_no_copy(void **s) {
  (void)s;
  size_t base = heap_live();
  mproc_pool_t *p = mkpool(1);
  size_t sz = (size_t)3 << 20;
  mproc_async_t *ar;
  MPROC_PASS(mproc_pool_apply_async(p, big_pattern, &sz, sizeof sz, NULL, &ar));
  const void *res;
  size_t len;
  MPROC_PASS(mproc_async_get(ar, 30, &res, &len));
  assert_int_equal(len, sz);
  assert_true(mproc_heap_contains(res)); /* the worker's block, not a copy */
  for (size_t i = 0; i < sz; i += 4093)
    assert_int_equal(((const unsigned char *)res)[i], (unsigned char)(i * 31));
  MPROC_PASS(mproc_async_destroy(ar));
  /* a small (inline) result is still a private copy */
  long x = 4;
  MPROC_PASS(mproc_pool_apply_async(p, ret_long, &x, sizeof x, NULL, &ar));
  MPROC_PASS(mproc_async_get(ar, 30, &res, &len));
  assert_int_equal(len, sizeof(long));
  assert_int_equal(*(const long *)res, 12);
  MPROC_PASS(mproc_async_destroy(ar));
  MPROC_PASS(mproc_pool_destroy(p));
  assert_int_equal(heap_live(), base);
}

static const struct CMUnitTest tests[] = {
    MPROC_TEST(test_no_pidfd_fallback),
    MPROC_TEST(test_create_bad),
    MPROC_TEST(test_default_size),
    MPROC_TEST(test_apply),
    MPROC_TEST(test_apply_bad),
    MPROC_TEST(test_register),
    MPROC_TEST(test_map_fixed),
    MPROC_TEST(test_map_heap_inout),
    MPROC_TEST(test_map_variable),
    MPROC_TEST(test_map_bad),
    MPROC_TEST(test_task_errors),
    MPROC_TEST(test_worker_death),
    MPROC_TEST(test_death_in_map),
    MPROC_TEST(test_retries),
    MPROC_TEST(test_timeout),
    MPROC_TEST(test_apply_async),
    MPROC_TEST(test_async_fail_and_timeout),
    MPROC_TEST(test_callback_after_destroy),
    MPROC_TEST(test_cancel),
    MPROC_TEST(test_imap_ordered),
    MPROC_TEST(test_imap_unordered_lazy),
    MPROC_TEST(test_imap_errors_timeout),
    MPROC_TEST(test_imap_next_timeout),
    MPROC_TEST(test_imap_gen_error),
    MPROC_TEST(test_initializer_maxtasks),
    MPROC_TEST(test_initializer_fails),
    MPROC_TEST(test_close_join_terminate),
    MPROC_TEST(test_destroy_with_pending),
    MPROC_TEST(test_progress_stats),
    MPROC_TEST(test_idle_no_cpu),
    MPROC_TEST(test_family_limit_env),
    MPROC_TEST(test_nested),
    MPROC_TEST(test_task_ctx_bad),
    MPROC_TEST(test_big_results),
    MPROC_TEST(test_stage_reuse),
    MPROC_TEST(test_async_result_no_copy),
};

MPROC_TEST_MAIN(tests)
