/* test_pool_methods.c - pools whose workers are started through the fork
 * server or by spawn (a fresh exec of this test binary: main() registers the
 * task functions and the initializer, then calls mproc_spawn_main). Every
 * reliability property of fork pools is checked for both methods: map,
 * apply(_async), imap, worker death with its cause, replacement, per-task
 * timeout, cancellation, maxtasksperchild, initializer, owner death, idle
 * CPU, and the bad inputs specific to these methods (unregistered functions
 * are refused at the call, never crash a worker). */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "process/process_int.h"

/* ---- task functions (registered in main) ---- */

/* Fixed-size results are written to out; apply's are variable (out NULL). */
static int put(mproc_task_ctx *c, void *out, const void *v, size_t n) {
  if (out) {
    memcpy(out, v, n);
    return 0;
  }
  return mproc_task_return(c, v, n);
}

static int t_sq(const void *in, size_t n, void *out, mproc_task_ctx *c) {
  (void)n;
  long x = *(const long *)in;
  x *= x;
  return put(c, out, &x, sizeof x);
}

static int t_rev(const void *in, size_t n, void *out, mproc_task_ctx *c) {
  (void)out;
  char *b = malloc(n ? n : 1);
  for (size_t i = 0; i < n; i++) b[i] = ((const char *)in)[n - 1 - i];
  int rc = mproc_task_return(c, b, n);
  free(b);
  return rc;
}

static int t_die(const void *in, size_t n, void *out, mproc_task_ctx *c) {
  (void)n;
  (void)c;
  long x = *(const long *)in;
  if (x == 1) raise(SIGKILL);
  if (x == 2) {
    signal(SIGSEGV, SIG_DFL); /* a sanitizer runtime in an exec'd worker catches it */
    raise(SIGSEGV);
  }
  if (x == 4) _exit(7);
  if (x == 5) {
    size_t sz = 64u << 20;
    volatile char *p = malloc(sz);
    for (size_t i = 0; i < sz; i += 4096) p[i] = 1;
    raise(SIGKILL);
  }
  *(long *)out = x;
  return 0;
}

static int t_sleep(const void *in, size_t n, void *out, mproc_task_ctx *c) {
  (void)n;
  double d = *(const double *)in;
  usleep((useconds_t)(d * 1e6));
  return put(c, out, &d, sizeof d);
}

static int t_pid(const void *in, size_t n, void *out, mproc_task_ctx *c) {
  (void)in;
  (void)n;
  (void)c;
  *(long *)out = (long)getpid();
  return 0;
}

static long g_init_value; /* set by the initializer in each worker */

static int t_initval(const void *in, size_t n, void *out, mproc_task_ctx *c) {
  (void)in;
  (void)n;
  (void)c;
  *(long *)out = g_init_value;
  return 0;
}

static int t_fail(const void *in, size_t n, void *out, mproc_task_ctx *c) {
  (void)in;
  (void)n;
  (void)out;
  return mproc_task_fail(c, -EDOM, "failed on purpose");
}

static int t_unregistered(const void *in, size_t n, void *out, mproc_task_ctx *c) {
  (void)in;
  (void)n;
  (void)out;
  (void)c;
  return 0;
}

static int init_set(void *arg) {
  g_init_value = arg ? *(const long *)arg : -1;
  return 0;
}

static int init_fail(void *arg) {
  (void)arg;
  return 1;
}

static int init_unregistered(void *arg) {
  (void)arg;
  return 0;
}

/* A task function registered only after the fork server started. */
static int t_late(const void *in, size_t n, void *out, mproc_task_ctx *c) {
  (void)n;
  (void)c;
  *(long *)out = *(const long *)in + 1000;
  return 0;
}

/* Runs a fork pool inside the worker (nested pools): sum of squares. */
static int t_nested(const void *in, size_t n, void *out, mproc_task_ctx *c) {
  (void)n;
  long k = *(const long *)in, v[4] = {1, 2, 3, 4}, r[4], sum = 0;
  mproc_pool_t *q;
  mproc_pool_opts o = {.processes = 2, .start_method = MPROC_START_FORK};
  int rc = mproc_pool_create(&q, &o);
  if (rc) return mproc_task_fail(c, rc, "nested create: %s", mproc_strerror(rc));
  rc = mproc_pool_map(q, t_sq, v, 4, sizeof(long), r, sizeof(long), NULL);
  mproc_pool_destroy(q);
  if (rc) return mproc_task_fail(c, rc, "nested map: %s", mproc_strerror(rc));
  for (int i = 0; i < 4; i++) sum += r[i];
  sum *= k;
  return put(c, out, &sum, sizeof sum);
}

/* ---- helpers ---- */

static mproc_pool_t *mk(int method, int n, mproc_pool_opts *o) {
  mproc_pool_opts d = {0};
  if (!o) o = &d;
  o->processes = n;
  o->start_method = method;
  mproc_pool_t *p = NULL;
  MPROC_PASS(mproc_pool_create(&p, o));
  return p;
}

static void done(mproc_pool_t *p) {
  MPROC_PASS(mproc_pool_destroy(p));
  /* The fork server is a child of ours: the harness would count it. */
  mproc__forkserver_stop();
}

/* ---- map, apply, imap ---- */

static void map_case(int method) {
  mproc_pool_t *p = mk(method, 2, NULL);
  enum { N = 2000 };
  static long in[N], out[N];
  for (long i = 0; i < N; i++) in[i] = i;
  MPROC_PASS(mproc_pool_map(p, t_sq, in, N, sizeof(long), out, sizeof(long), NULL));
  for (long i = 0; i < N; i++) assert_int_equal(out[i], i * i);
  /* by name, chunksize 1 */
  memset(out, 0, sizeof out);
  mproc_call_opts o = {.fn_name = "t_sq", .chunksize = 1};
  MPROC_PASS(mproc_pool_map(p, NULL, in, 100, sizeof(long), out, sizeof(long), &o));
  for (long i = 0; i < 100; i++) assert_int_equal(out[i], i * i);
  /* variable-size inputs and results */
  const char *words[3] = {"abc", "a longer string than sixteen bytes", ""};
  mproc_buf bin[3], bout[3];
  for (int i = 0; i < 3; i++) bin[i] = (mproc_buf){(void *)words[i], strlen(words[i])};
  MPROC_PASS(mproc_pool_map(p, t_rev, bin, 3, 0, bout, 0, NULL));
  for (int i = 0; i < 3; i++) {
    assert_int_equal(bout[i].size, strlen(words[i]));
    for (size_t k = 0; k < bout[i].size; k++)
      assert_int_equal(((char *)bout[i].data)[k], words[i][bout[i].size - 1 - k]);
    mproc_buf_free(&bout[i]);
  }
  /* a task error travels back with its message */
  mproc_task_error e;
  mproc_call_opts oe = {.error = &e};
  MPROC_ASSERT_RC(mproc_pool_map(p, t_fail, in, 4, sizeof(long), out, sizeof(long), &oe),
                  -EDOM);
  assert_string_equal(e.message, "failed on purpose");
  done(p);
}

static int cb_count;
static long cb_value;
static void on_result(mproc_async_t *ar, const void *res, size_t size, void *user) {
  (void)ar;
  (void)user;
  if (size == sizeof(long)) cb_value = *(const long *)res;
  cb_count++;
}

static int gen_n;
static long gen_v;
static int gen(void *user, const void **item, size_t *size) {
  (void)user;
  if (gen_n >= 50) return 0;
  gen_v = gen_n++;
  *item = &gen_v;
  *size = sizeof gen_v;
  return 1;
}

static void apply_case(int method) {
  mproc_pool_t *p = mk(method, 2, NULL);
  long x = 12, r = 0;
  size_t rs = 0;
  MPROC_PASS(mproc_pool_apply(p, t_sq, &x, sizeof x, &r, sizeof r, &rs, NULL));
  assert_int_equal(r, 144);
  assert_int_equal(rs, sizeof r);
  cb_count = 0;
  mproc_call_opts o = {.callback = on_result};
  mproc_async_t *ar = NULL;
  x = 9;
  MPROC_PASS(mproc_pool_apply_async(p, t_sq, &x, sizeof x, &o, &ar));
  const void *res;
  size_t size;
  MPROC_PASS(mproc_async_get(ar, 30, &res, &size));
  assert_int_equal(size, sizeof(long));
  assert_int_equal(*(const long *)res, 81);
  assert_int_equal(mproc_async_successful(ar), 1);
  MPROC_PASS(mproc_async_destroy(ar));
  assert_int_equal(cb_count, 1);
  assert_int_equal(cb_value, 81);
  /* map_async */
  long in[10], out[10];
  for (long i = 0; i < 10; i++) in[i] = i;
  MPROC_PASS(mproc_pool_map_async(p, t_sq, in, 10, 8, out, 8, NULL, &ar));
  MPROC_PASS(mproc_async_get(ar, 30, NULL, NULL));
  for (long i = 0; i < 10; i++) assert_int_equal(out[i], i * i);
  MPROC_PASS(mproc_async_destroy(ar));
  /* imap, unordered: every result exactly once */
  gen_n = 0;
  mproc_imap_t *it;
  mproc_call_opts io = {.flags = MPROC_IMAP_UNORDERED};
  MPROC_PASS(mproc_pool_imap(p, t_sq, gen, NULL, sizeof(long), &io, &it));
  int seen[50] = {0}, k = 0, rc;
  size_t idx;
  while ((rc = mproc_imap_next(it, 30, &res, &size, &idx)) == 0) {
    assert_true(idx < 50);
    assert_int_equal(*(const long *)res, (long)(idx * idx));
    seen[idx]++;
    k++;
  }
  assert_int_equal(rc, MPROC_ESTOPITER);
  assert_int_equal(k, 50);
  for (int i = 0; i < 50; i++) assert_int_equal(seen[i], 1);
  MPROC_PASS(mproc_imap_destroy(it));
  done(p);
}

/* ---- worker death, timeout, cancellation, maxtasksperchild ---- */

static void check_death(mproc_pool_t *p, long how, int signo, int status, const char *word) {
  long r;
  mproc_task_error e;
  mproc_call_opts o = {.error = &e};
  MPROC_ASSERT_RC(mproc_pool_map(p, t_die, &how, 1, sizeof how, &r, sizeof r, &o),
                  MPROC_EWORKERDIED);
  assert_int_equal(e.signo, signo);
  assert_int_equal(e.exit_status, status);
  if (!strstr(e.message, word)) fail_msg("message '%s' lacks '%s'", e.message, word);
  if (!strstr(e.message, "peak RSS")) fail_msg("message '%s' lacks peak RSS", e.message);
}

static void death_case(int method) {
  mproc_pool_t *p = mk(method, 2, NULL);
  check_death(p, 1, SIGKILL, -1, "SIGKILL");
  check_death(p, 2, SIGSEGV, -1, "SIGSEGV");
  check_death(p, 4, 0, 7, "status 7");
  long how = 5, r;
  mproc_task_error e;
  mproc_call_opts o = {.error = &e};
  MPROC_ASSERT_RC(mproc_pool_map(p, t_die, &how, 1, sizeof how, &r, sizeof r, &o),
                  MPROC_EWORKERDIED);
  if (method == MPROC_START_SPAWN) {
    /* our child: its rusage gives the peak memory */
    if (e.peak_rss_kb < 60 * 1024) fail_msg("peak %ld KiB: %s", e.peak_rss_kb, e.message);
  } else {
    /* the server's child: no rusage for us */
    assert_int_equal(e.peak_rss_kb, -1);
    assert_non_null(strstr(e.message, "unknown"));
  }
  /* Only the dead worker's task failed in a map; the pool goes on. */
  enum { N = 60 };
  long in[N], out[N];
  int errs[N];
  for (long i = 0; i < N; i++) in[i] = i == 17 ? 1 : 100 + i;
  mproc_call_opts om = {.errors = errs, .chunksize = 1};
  MPROC_ASSERT_RC(mproc_pool_map(p, t_die, in, N, 8, out, 8, &om), MPROC_EWORKERDIED);
  for (int i = 0; i < N; i++) {
    if (i == 17) {
      assert_int_equal(errs[i], MPROC_EWORKERDIED);
    } else {
      assert_int_equal(errs[i], 0);
      assert_int_equal(out[i], 100 + i);
    }
  }
  mproc_pool_stats st;
  /* the last replacement may still be starting (the pool thread starts it
   * without the pool's lock) */
  double t0 = mproc_test_now();
  do {
    MPROC_PASS(mproc_pool_stats_get(p, &st));
  } while (st.worker_restarts < 5 && mproc_test_now() - t0 < 10 && usleep(10000) == 0);
  assert_int_equal(st.worker_deaths, 5);
  assert_true(st.worker_restarts >= 5);
  done(p);
}

static void timeout_case(int method) {
  mproc_pool_t *p = mk(method, 2, NULL);
  double in[4] = {0.01, 30, 0.01, 0.01}, out[4];
  int errs[4];
  mproc_task_error e;
  /* The quick tasks (10 ms) must not time out: 2 s leaves room for a
   * sanitizer build on a loaded 2-CPU machine (0.3 s was once overrun by a
   * 10 ms task under TSan). */
  mproc_call_opts o = {.timeout = 2.0, .chunksize = 1, .errors = errs, .error = &e};
  double t0 = mproc_test_now();
  MPROC_ASSERT_RC(mproc_pool_map(p, t_sleep, in, 4, 8, out, 8, &o), -ETIMEDOUT);
  assert_true(mproc_test_now() - t0 < 20);
  assert_int_equal(errs[1], -ETIMEDOUT);
  assert_int_equal(errs[0], 0);
  assert_int_equal(errs[3], 0);
  assert_non_null(strstr(e.message, "timed out"));
  /* replaced: the pool still works */
  long x = 5, r;
  MPROC_PASS(mproc_pool_apply(p, t_sq, &x, sizeof x, &r, sizeof r, NULL, NULL));
  assert_int_equal(r, 25);
  mproc_pool_stats st;
  MPROC_PASS(mproc_pool_stats_get(p, &st));
  assert_int_equal(st.timeouts, 1);
  done(p);
}

static void cancel_case(int method) {
  mproc_pool_t *p = mk(method, 1, NULL);
  double slow = 0.5, quick = 0.0;
  mproc_async_t *a0, *a1, *a2;
  MPROC_PASS(mproc_pool_apply_async(p, t_sleep, &slow, sizeof slow, NULL, &a0));
  MPROC_PASS(mproc_pool_apply_async(p, t_sleep, &quick, sizeof quick, NULL, &a1));
  MPROC_PASS(mproc_pool_apply_async(p, t_sleep, &quick, sizeof quick, NULL, &a2));
  /* a1 waits behind a0 on the only worker: cancel it */
  int n = mproc_async_cancel(a1);
  assert_true(n == 1);
  MPROC_ASSERT_RC(mproc_async_get(a1, 30, NULL, NULL), -ECANCELED);
  MPROC_PASS(mproc_async_get(a0, 30, NULL, NULL));
  MPROC_PASS(mproc_async_get(a2, 30, NULL, NULL));
  mproc_async_destroy(a0);
  mproc_async_destroy(a1);
  mproc_async_destroy(a2);
  done(p);
}

static void maxtasks_case(int method) {
  mproc_pool_opts o = {.maxtasksperchild = 1};
  mproc_pool_t *p = mk(method, 2, &o);
  long in[8] = {0}, out[8];
  mproc_call_opts co = {.chunksize = 1};
  MPROC_PASS(mproc_pool_map(p, t_pid, in, 8, 8, out, 8, &co));
  /* every chunk ran in a new worker */
  for (int i = 0; i < 8; i++)
    for (int k = 0; k < i; k++)
      if (out[i] == out[k]) fail_msg("tasks %d and %d ran in the same worker %ld", k, i, out[i]);
  mproc_pool_stats st;
  double t0 = mproc_test_now();
  do {
    MPROC_PASS(mproc_pool_stats_get(p, &st));
  } while (st.worker_restarts < 6 && mproc_test_now() - t0 < 10 && usleep(10000) == 0);
  assert_int_equal(st.worker_deaths, 0);
  assert_true(st.worker_restarts >= 6);
  done(p);
}

/* ---- initializer ---- */

static void init_case(int method) {
  /* a registered pointer, initarg copied */
  long v = 77;
  mproc_pool_opts o = {.initializer = init_set, .initarg = &v, .initarg_size = sizeof v};
  mproc_pool_t *p = mk(method, 2, &o);
  long in[4] = {0}, out[4];
  mproc_call_opts co = {.chunksize = 1};
  MPROC_PASS(mproc_pool_map(p, t_initval, in, 4, 8, out, 8, &co));
  for (int i = 0; i < 4; i++) assert_int_equal(out[i], 77);
  done(p);
  /* by name, initarg in the heap */
  long *hv;
  MPROC_PASS(mproc_heap_alloc(sizeof *hv, (void **)&hv));
  *hv = 31;
  mproc_pool_opts o2 = {.initializer_name = "init_set", .initarg = hv};
  p = mk(method, 2, &o2);
  MPROC_PASS(mproc_pool_map(p, t_initval, in, 4, 8, out, 8, &co));
  for (int i = 0; i < 4; i++) assert_int_equal(out[i], 31);
  done(p);
  mproc_heap_free(hv);
  /* an initializer that fails breaks the pool instead of respawning forever */
  mproc_pool_opts o3 = {.initializer = init_fail};
  p = mk(method, 1, &o3);
  mproc_task_error e;
  mproc_call_opts ce = {.error = &e};
  MPROC_ASSERT_RC(mproc_pool_map(p, t_initval, in, 1, 8, out, 8, &ce), MPROC_ECHILDFAIL);
  assert_non_null(strstr(e.message, "initializer"));
  done(p);
}

/* ---- bad input ---- */

static int no_gen(void *user, const void **item, size_t *size) {
  (void)user;
  (void)item;
  (void)size;
  return 0;
}

static void bad_case(int method) {
  mproc_pool_t *p = NULL;
  long v = 1;
  /* initializer not registered as a target / unknown name / mismatch */
  mproc_pool_opts o = {.start_method = method, .processes = 1,
                       .initializer = init_unregistered};
  MPROC_ASSERT_RC(mproc_pool_create(&p, &o), MPROC_ENOTREG);
  o = (mproc_pool_opts){.start_method = method, .processes = 1, .initializer_name = "nope"};
  MPROC_ASSERT_RC(mproc_pool_create(&p, &o), MPROC_ENOTREG);
  o = (mproc_pool_opts){.start_method = method, .processes = 1, .initializer = init_fail,
                        .initializer_name = "init_set"};
  MPROC_ASSERT_RC(mproc_pool_create(&p, &o), -EINVAL);
  o = (mproc_pool_opts){.start_method = method, .processes = 1, .initializer_name = ""};
  MPROC_ASSERT_RC(mproc_pool_create(&p, &o), -EINVAL);
  /* initarg outside the heap without a copy; copy of NULL; too big */
  o = (mproc_pool_opts){.start_method = method, .processes = 1, .initializer = init_set,
                        .initarg = &v};
  MPROC_ASSERT_RC(mproc_pool_create(&p, &o), -EINVAL);
  o = (mproc_pool_opts){.start_method = method, .processes = 1, .initarg_size = 8};
  MPROC_ASSERT_RC(mproc_pool_create(&p, &o), -EINVAL);
  o = (mproc_pool_opts){.start_method = method, .processes = 1, .initarg = &v,
                        .initarg_size = ((size_t)64 << 20) + 1};
  MPROC_ASSERT_RC(mproc_pool_create(&p, &o), -EINVAL);
  assert_null(p);

  p = mk(method, 1, NULL);
  long r;
  mproc_async_t *ar = (mproc_async_t *)&v;
  mproc_imap_t *it = (mproc_imap_t *)&v;
  /* a plain pointer that is not registered: refused at the call */
  MPROC_ASSERT_RC(mproc_pool_apply(p, t_unregistered, &v, sizeof v, &r, sizeof r, NULL, NULL),
                  MPROC_ENOTREG);
  MPROC_ASSERT_RC(mproc_pool_apply_async(p, t_unregistered, &v, sizeof v, NULL, &ar),
                  MPROC_ENOTREG);
  assert_null(ar);
  MPROC_ASSERT_RC(mproc_pool_map(p, t_unregistered, &v, 1, 8, &r, 8, NULL), MPROC_ENOTREG);
  MPROC_ASSERT_RC(mproc_pool_starmap(p, t_unregistered, &v, 1, 8, &r, 8, NULL),
                  MPROC_ENOTREG);
  MPROC_ASSERT_RC(mproc_pool_map_async(p, t_unregistered, &v, 1, 8, &r, 8, NULL, &ar),
                  MPROC_ENOTREG);
  MPROC_ASSERT_RC(mproc_pool_imap(p, t_unregistered, no_gen, NULL, 8, NULL, &it),
                  MPROC_ENOTREG);
  assert_null(it);
  /* an unknown name; no function at all */
  mproc_call_opts co = {.fn_name = "no_such_task"};
  MPROC_ASSERT_RC(mproc_pool_map(p, NULL, &v, 1, 8, &r, 8, &co), MPROC_ENOTREG);
  MPROC_ASSERT_RC(mproc_pool_map(p, NULL, &v, 1, 8, &r, 8, NULL), -EINVAL);
  /* the pool is fine afterwards */
  MPROC_PASS(mproc_pool_apply(p, t_sq, &v, sizeof v, &r, sizeof r, NULL, NULL));
  assert_int_equal(r, 1);
  mproc_pool_stats st;
  MPROC_PASS(mproc_pool_stats_get(p, &st));
  assert_int_equal(st.worker_deaths, 0);
  done(p);
}

/* ---- owner death, idle CPU ---- */

static int list_children_of(pid_t pid, pid_t *out, int cap) {
  /* every thread's children (spawned workers are forked by the launcher) */
  char path[96];
  snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
  DIR *d = opendir(path);
  if (!d) return 0;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) && n < cap) {
    if (e->d_name[0] == '.') continue;
    char p2[300];
    snprintf(p2, sizeof p2, "/proc/%d/task/%.200s/children", (int)pid, e->d_name);
    FILE *f = fopen(p2, "r");
    if (!f) continue;
    int c;
    while (n < cap && fscanf(f, "%d", &c) == 1) out[n++] = c;
    fclose(f);
  }
  closedir(d);
  return n;
}

static void owner_killed_case(int method) {
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  pid_t owner = fork();
  if (owner == 0) {
    close(fds[0]);
    mproc_pool_t *p = NULL;
    mproc_pool_opts o = {.processes = 3, .start_method = method};
    if (mproc_pool_create(&p, &o)) _exit(2);
    long in[3] = {0}, pids[3];
    mproc_call_opts co = {.chunksize = 1};
    if (mproc_pool_map(p, t_pid, in, 3, 8, pids, 8, &co)) _exit(3);
    /* the three workers, plus the fork server if there is one */
    pid_t all[8];
    int n = 0;
    for (int i = 0; i < 3; i++) all[n++] = (pid_t)pids[i];
    n += list_children_of(getpid(), all + n, 8 - n);
    ssize_t w = write(fds[1], all, (size_t)n * sizeof(pid_t));
    (void)w;
    close(fds[1]);
    double busy = 30;
    mproc_async_t *ar;
    mproc_pool_apply_async(p, t_sleep, &busy, sizeof busy, NULL, &ar);
    pause();
    _exit(0);
  }
  close(fds[1]);
  pid_t all[8];
  ssize_t r = read(fds[0], all, sizeof all);
  close(fds[0]);
  assert_true(r >= (ssize_t)(3 * sizeof(pid_t)));
  int n = (int)(r / (ssize_t)sizeof(pid_t));
  usleep(100000);
  kill(owner, SIGKILL);
  int st;
  waitpid(owner, &st, 0);
  double t0 = mproc_test_now();
  for (int i = 0; i < n; i++)
    if (!mproc_test_wait_gone(all[i], 1.0)) fail_msg("pid %d outlived its owner", (int)all[i]);
  assert_true(mproc_test_now() - t0 < 1.5);
}

static volatile sig_atomic_t g_int;
static void on_int(int sig) {
  (void)sig;
  g_int = 1;
}

/* SIGINT to the owner's whole process group. Variant 0: the owner dies of
 * it; variant 1: it catches it and destroys the pool. Either way no worker
 * (nor the fork server) survives and no zombie is left. */
static void sigint_case(int method, int variant) {
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  pid_t owner = fork();
  if (owner == 0) {
    setpgid(0, 0);
    close(fds[0]);
    if (variant) signal(SIGINT, on_int);
    mproc_pool_t *p = NULL;
    mproc_pool_opts o = {.processes = 2, .start_method = method};
    if (mproc_pool_create(&p, &o)) _exit(2);
    double busy = 30;
    mproc_async_t *ar[2];
    for (int i = 0; i < 2; i++) mproc_pool_apply_async(p, t_sleep, &busy, sizeof busy, NULL, &ar[i]);
    usleep(100000);
    /* our children (spawn workers, or the fork server) and theirs */
    pid_t all[16];
    int n = list_children_of(getpid(), all, 16);
    for (int i = 0, m = n; i < m; i++) n += list_children_of(all[i], all + n, 16 - n);
    ssize_t w = write(fds[1], all, (size_t)n * sizeof(pid_t));
    (void)w;
    close(fds[1]);
    while (!g_int) pause();
    for (int i = 0; i < 2; i++) mproc_async_destroy(ar[i]);
    mproc_pool_destroy(p);
    mproc__forkserver_stop();
    pid_t left[16];
    _exit(list_children_of(getpid(), left, 16) == 0 ? 0 : 3);
  }
  setpgid(owner, owner);
  close(fds[1]);
  pid_t all[16];
  ssize_t r = read(fds[0], all, sizeof all);
  close(fds[0]);
  assert_true(r >= (ssize_t)(2 * sizeof(pid_t)));
  int n = (int)(r / (ssize_t)sizeof(pid_t));
  kill(-owner, SIGINT);
  int st;
  assert_int_equal(waitpid(owner, &st, 0), owner);
  if (variant) {
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
  } else {
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGINT);
  }
  for (int i = 0; i < n; i++)
    if (!mproc_test_wait_gone(all[i], 1.0)) fail_msg("pid %d survived SIGINT", (int)all[i]);
}

static void sigint_dies_case(int method) { sigint_case(method, 0); }
static void sigint_cleans_case(int method) { sigint_case(method, 1); }

static long cpu_ticks(pid_t pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  char *ok = fgets(buf, sizeof buf, f);
  fclose(f);
  if (!ok) return -1;
  long ut = 0, st = 0;
  char *q = strrchr(buf, ')');
  sscanf(q + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld", &ut, &st);
  return ut + st;
}

static void idle_case(int method) {
  mproc_pool_t *p = mk(method, 2, NULL);
  long in[2] = {0}, pids[2];
  mproc_call_opts co = {.chunksize = 1};
  MPROC_PASS(mproc_pool_map(p, t_pid, in, 2, 8, pids, 8, &co));
  /* an async call: the relay and the pool thread work once, then sleep */
  mproc_async_t *ar;
  long x = 2;
  MPROC_PASS(mproc_pool_apply_async(p, t_sq, &x, sizeof x, NULL, &ar));
  MPROC_PASS(mproc_async_get(ar, 30, NULL, NULL));
  mproc_async_destroy(ar);
  usleep(300000); /* let spins end */
  long t0[2], t1[2];
  struct rusage a, b;
  for (int k = 0; k < 2; k++) t0[k] = cpu_ticks((pid_t)pids[k]);
  getrusage(RUSAGE_SELF, &a);
  sleep(1);
  getrusage(RUSAGE_SELF, &b);
  for (int k = 0; k < 2; k++) t1[k] = cpu_ticks((pid_t)pids[k]);
  double self = (double)(b.ru_utime.tv_sec - a.ru_utime.tv_sec) +
                (double)(b.ru_utime.tv_usec - a.ru_utime.tv_usec) * 1e-6 +
                (double)(b.ru_stime.tv_sec - a.ru_stime.tv_sec) +
                (double)(b.ru_stime.tv_usec - a.ru_stime.tv_usec) * 1e-6;
  if (self > 0.05) fail_msg("idle owner used %.3f s of CPU in 1 s", self);
  for (int k = 0; k < 2; k++) {
    assert_true(t0[k] >= 0 && t1[k] >= 0);
    if (t1[k] - t0[k] > 3) fail_msg("idle worker used %ld ticks in 1 s", t1[k] - t0[k]);
  }
  done(p);
}


/* ---- chaos: random workers SIGKILLed during a map ---- */

/* Worker pid per slot, in the heap. The pointer travels in each input: a
 * spawned worker is a fresh exec and has no copy of the owner's globals. */
static _Atomic pid_t *g_wpid;

typedef struct chaos_in {
  long x;
  _Atomic pid_t *wpid;
} chaos_in;

static int t_slow_sq(const void *in, size_t n, void *out, mproc_task_ctx *c) {
  (void)n;
  const chaos_in *ci = in;
  ci->wpid[mproc_task_worker(c)] = getpid();
  double t0 = mproc_test_now();
  while (mproc_test_now() - t0 < 20e-6) {
  }
  *(long *)out = ci->x * ci->x;
  return 0;
}

typedef struct killer_arg {
  int nslots;
  pid_t parent; /* the workers' parent: us (spawn) or the fork server */
  _Atomic int stop;
  int kills;
} killer_arg;

static pid_t ppid_of(pid_t pid) {
  char path[64], buf[512];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  size_t r = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[r] = 0;
  char *q = strrchr(buf, ')');
  char st;
  int pp;
  if (!q || sscanf(q + 2, "%c %d", &st, &pp) != 2 || st == 'Z') return -1;
  return pp;
}

static void *killer(void *a) {
  killer_arg *k = a;
  unsigned seed = 12345;
  while (!atomic_load(&k->stop)) {
    usleep(3000 + rand_r(&seed) % 4000);
    pid_t pid = g_wpid[rand_r(&seed) % (unsigned)k->nslots];
    /* only a live worker of this pool (never a recycled pid) */
    if (pid > 0 && ppid_of(pid) == k->parent && kill(pid, SIGKILL) == 0) k->kills++;
  }
  return NULL;
}

static void chaos_case(int method) {
  enum { W = 3, N = 40000 };
  size_t base;
  {
    mproc_heap_stats st;
    MPROC_PASS(mproc_heap_stats_get(&st));
    base = st.live_blocks;
  }
  MPROC_PASS(mproc_heap_alloc(sizeof(pid_t) * W, (void **)&g_wpid));
  mproc_pool_t *p = mk(method, W, NULL);
  chaos_in *in = malloc(N * sizeof(chaos_in));
  long *out = malloc(N * sizeof(long)), *lin = malloc(N * sizeof(long));
  int *errs = malloc(N * sizeof(int));
  for (long i = 0; i < N; i++) {
    in[i] = (chaos_in){i, g_wpid};
    lin[i] = i;
  }
  killer_arg k = {.nslots = W,
                  .parent = method == MPROC_START_FORKSERVER ? mproc__forkserver_pid() : getpid()};
  assert_true(k.parent > 0);
  pthread_t thr;
  assert_int_equal(pthread_create(&thr, NULL, killer, &k), 0);
  mproc_call_opts o = {.chunksize = 1, .errors = errs};
  int rc = mproc_pool_map(p, t_slow_sq, in, N, sizeof(chaos_in), out, 8, &o);
  atomic_store(&k.stop, 1);
  pthread_join(thr, NULL);
  assert_true(rc == 0 || rc == MPROC_EWORKERDIED);
  long died = 0;
  for (long i = 0; i < N; i++) {
    if (errs[i] == MPROC_EWORKERDIED) died++;
    else if (errs[i] != 0) fail_msg("task %ld: code %d", i, errs[i]);
    else assert_int_equal(out[i], i * i);
  }
  mproc_pool_stats st;
  MPROC_PASS(mproc_pool_stats_get(p, &st));
  /* a kill that lands between two tasks fails none: deaths >= failures */
  assert_true((long)st.worker_deaths >= died);
  assert_true(st.worker_deaths <= (uint64_t)k.kills);
  printf("kills %d, worker deaths %lu, tasks failed %ld of %d\n", k.kills,
         (unsigned long)st.worker_deaths, died, (int)N);
  assert_true(k.kills >= 10);
  /* the pool still works afterwards */
  MPROC_PASS(mproc_pool_map(p, t_sq, lin, 1000, 8, out, 8, NULL));
  for (long i = 0; i < 1000; i++) assert_int_equal(out[i], i * i);
  done(p);
  mproc_heap_free(g_wpid);
  free(in);
  free(lin);
  free(out);
  free(errs);
  mproc_heap_stats hs;
  MPROC_PASS(mproc_heap_stats_get(&hs));
  assert_int_equal(hs.live_blocks, base);
}

/* ---- the cases ---- */

#define BOTH(name)                                                            \
  static void test_fs_##name(void **s) {                                      \
    (void)s;                                                                  \
    name##_case(MPROC_START_FORKSERVER);                                      \
  }                                                                           \
  static void test_spawn_##name(void **s) {                                   \
    (void)s;                                                                  \
    name##_case(MPROC_START_SPAWN);                                           \
  }
BOTH(map)
BOTH(apply)
BOTH(death)
BOTH(timeout)
BOTH(cancel)
BOTH(maxtasks)
BOTH(init)
BOTH(bad)
BOTH(owner_killed)
BOTH(idle)
BOTH(chaos)
BOTH(sigint_dies)
BOTH(sigint_cleans)

/* A spawned worker is an exec of this program: check it is one. */
static void test_spawn_workers_are_execs(void **s) {
  (void)s;
  mproc_pool_t *p = mk(MPROC_START_SPAWN, 1, NULL);
  long in = 0, pid;
  MPROC_PASS(mproc_pool_map(p, t_pid, &in, 1, 8, &pid, 8, NULL));
  char path[64], buf[512] = {0};
  snprintf(path, sizeof path, "/proc/%ld/cmdline", pid);
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  size_t r = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  int found = 0;
  for (size_t i = 0; i < r; i += strlen(buf + i) + 1)
    if (strcmp(buf + i, "--mproc-spawn") == 0) found = 1;
  assert_true(found);
  assert_true(pid != getpid());
  done(p);
}

/* A spawned worker may run a pool of its own. */
static void test_spawn_nested_pool(void **s) {
  (void)s;
  mproc_pool_t *p = mk(MPROC_START_SPAWN, 2, NULL);
  long in[3] = {1, 2, 3}, out[3];
  mproc_task_error e;
  mproc_call_opts o = {.chunksize = 1, .error = &e};
  int rc = mproc_pool_map(p, t_nested, in, 3, 8, out, 8, &o);
  if (rc) fail_msg("map: %s: %s", mproc_strerror(rc), e.message);
  for (int i = 0; i < 3; i++) assert_int_equal(out[i], 30 * in[i]);
  done(p);
}

/* The family default start method applies to pools too. */
static void test_default_method_is_family_default(void **s) {
  (void)s;
  MPROC_PASS(mproc_set_start_method(MPROC_START_SPAWN));
  mproc_pool_t *p = NULL;
  mproc_pool_opts o = {.processes = 1};
  MPROC_PASS(mproc_pool_create(&p, &o));
  long v = 3, r;
  /* a spawn pool: an unregistered pointer is refused */
  MPROC_ASSERT_RC(mproc_pool_map(p, t_unregistered, &v, 1, 8, &r, 8, NULL), MPROC_ENOTREG);
  MPROC_PASS(mproc_pool_map(p, t_sq, &v, 1, 8, &r, 8, NULL));
  assert_int_equal(r, 9);
  done(p);
  MPROC_PASS(mproc_set_start_method(MPROC_START_FORK));
}

/* Forkserver: a name registered after the server started is unknown in the
 * worker's image, but the address is valid there: it still runs. */
static void test_fs_registered_after_server_start(void **s) {
  (void)s;
  MPROC_PASS(mproc_set_start_method(MPROC_START_FORKSERVER)); /* server starts now */
  MPROC_PASS(mproc_pool_register("t_late", t_late));
  mproc_pool_t *p = mk(MPROC_START_FORKSERVER, 1, NULL);
  long v = 5, r = 0;
  MPROC_PASS(mproc_pool_map(p, t_late, &v, 1, 8, &r, 8, NULL));
  assert_int_equal(r, 1005);
  mproc_call_opts o = {.fn_name = "t_late"};
  MPROC_PASS(mproc_pool_map(p, NULL, &v, 1, 8, &r, 8, &o));
  assert_int_equal(r, 1005);
  done(p);
  MPROC_PASS(mproc_set_start_method(MPROC_START_FORK));
}

/* Spawn: a spawned program must call mproc_spawn_main(); the pool start
 * fails cleanly with the worker's own report if the task table lacks an
 * entry at the worker: covered by the name check at the call. Here: a pool
 * of many spawn workers starts and stops without leaks. */
static void test_spawn_many_workers(void **s) {
  (void)s;
  mproc_pool_t *p = mk(MPROC_START_SPAWN, 6, NULL);
  enum { N = 600 };
  static long in[N], out[N];
  for (long i = 0; i < N; i++) in[i] = i;
  mproc_call_opts o = {.chunksize = 1};
  MPROC_PASS(mproc_pool_map(p, t_sq, in, N, 8, out, 8, &o));
  for (long i = 0; i < N; i++) assert_int_equal(out[i], i * i);
  MPROC_PASS(mproc_pool_close(p));
  MPROC_PASS(mproc_pool_join(p, 30));
  done(p);
}

static const struct CMUnitTest tests[] = {
    MPROC_TEST(test_fs_map),
    MPROC_TEST(test_spawn_map),
    MPROC_TEST(test_fs_apply),
    MPROC_TEST(test_spawn_apply),
    MPROC_TEST(test_fs_death),
    MPROC_TEST(test_spawn_death),
    MPROC_TEST(test_fs_timeout),
    MPROC_TEST(test_spawn_timeout),
    MPROC_TEST(test_fs_cancel),
    MPROC_TEST(test_spawn_cancel),
    MPROC_TEST(test_fs_maxtasks),
    MPROC_TEST(test_spawn_maxtasks),
    MPROC_TEST(test_fs_init),
    MPROC_TEST(test_spawn_init),
    MPROC_TEST(test_fs_bad),
    MPROC_TEST(test_spawn_bad),
    MPROC_TEST(test_fs_owner_killed),
    MPROC_TEST(test_spawn_owner_killed),
    MPROC_TEST(test_fs_idle),
    MPROC_TEST(test_spawn_idle),
    MPROC_TEST(test_spawn_workers_are_execs),
    MPROC_TEST(test_default_method_is_family_default),
    MPROC_TEST(test_fs_registered_after_server_start),
    MPROC_TEST(test_spawn_many_workers),
    MPROC_TEST(test_spawn_nested_pool),
    MPROC_TEST(test_fs_sigint_dies),
    MPROC_TEST(test_spawn_sigint_dies),
    MPROC_TEST(test_fs_sigint_cleans),
    MPROC_TEST(test_spawn_sigint_cleans),
    MPROC_SLOW_TEST(test_fs_chaos),
    MPROC_SLOW_TEST(test_spawn_chaos),
};

int main(int argc, char **argv) {
  mproc_pool_register("t_sq", t_sq);
  mproc_pool_register("t_rev", t_rev);
  mproc_pool_register("t_die", t_die);
  mproc_pool_register("t_sleep", t_sleep);
  mproc_pool_register("t_pid", t_pid);
  mproc_pool_register("t_initval", t_initval);
  mproc_pool_register("t_fail", t_fail);
  mproc_pool_register("t_slow_sq", t_slow_sq);
  mproc_pool_register("t_nested", t_nested);
  mproc_register_target("init_set", init_set);
  mproc_register_target("init_fail", init_fail);
  mproc_spawn_main(argc, argv); /* a spawned worker never returns from it */
  return mproc_test_main(tests, sizeof tests / sizeof tests[0], argc, argv, __FILE__);
}
