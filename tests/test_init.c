/* test_init.c - library initialisation: mproc_init options and the
 * MPROC_HEAP_SIZE environment variable. Cases that need a process whose
 * library is not initialised yet re-execute this binary with the variable
 * set (the harness initialises the library before every case; an invalid
 * MPROC_HEAP_SIZE makes that first attempt fail and leaves it uninitialised). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "heap/heap.h"
#include "platform/platform.h"

#define SUBPROC_ENV "MPROC_TEST_INIT_SUBPROC"

static int run_self(const char *test, const char *heap_env) {
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    if (heap_env)
      setenv("MPROC_HEAP_SIZE", heap_env, 1);
    else
      unsetenv("MPROC_HEAP_SIZE");
    setenv(SUBPROC_ENV, heap_env ? heap_env : "", 1);
    char *argv[] = {(char *)"test_init", (char *)test, NULL};
    execv("/proc/self/exe", argv);
    _exit(127);
  }
  int st;
  assert_int_equal(waitpid(pid, &st, 0), pid);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static size_t capacity(void) {
  mproc_heap_stats st;
  MPROC_PASS(mproc_heap_stats_get(&st));
  return st.capacity;
}

/* ---- in-process (library already initialised with defaults) ---- */

static void init_bad_options(void **state) {
  (void)state;
  mproc_init_opts o = {0};
  o.flags = 1;
  MPROC_ASSERT_RC(mproc_init(&o), MPROC_EINVAL);
  o.flags = 0;
  o.start_method = 4;
  MPROC_ASSERT_RC(mproc_init(&o), MPROC_EINVAL);
  o.start_method = -1;
  MPROC_ASSERT_RC(mproc_init(&o), MPROC_EINVAL);
  o.start_method = 0;
  o.heap_size = 4096; /* below the 1 MiB minimum */
  MPROC_ASSERT_RC(mproc_init(&o), MPROC_EINVAL);
  o.heap_size = (size_t)1 << 41; /* above the 1 TiB maximum */
  MPROC_ASSERT_RC(mproc_init(&o), MPROC_EINVAL);
  o.heap_size = SIZE_MAX;
  MPROC_ASSERT_RC(mproc_init(&o), MPROC_EINVAL);
}

static void init_again(void **state) {
  (void)state;
  MPROC_PASS(mproc_init(NULL));
  mproc_init_opts o = {0};
  MPROC_PASS(mproc_init(&o));
  o.heap_size = (size_t)1 << 30; /* the default: same as the running heap */
  MPROC_PASS(mproc_init(&o));
  o.heap_size = (size_t)64 << 20;
  MPROC_ASSERT_RC(mproc_init(&o), MPROC_EBUSY);
  assert_true(capacity() > ((size_t)1000 << 20));
}

/* ---- fresh processes ---- */

/* Runs in the child: MPROC_HEAP_SIZE (as given to run_self) must produce a
 * heap of about want bytes; the child reads want from the variable itself. */
static void env_size_child(void) {
  const char *v = getenv(SUBPROC_ENV);
  size_t want = 0;
  if (!strcmp(v, "3M")) want = (size_t)3 << 20;
  else if (!strcmp(v, "2097152")) want = 2097152;
  else if (!strcmp(v, "4096k")) want = (size_t)4 << 20;
  else if (!strcmp(v, "8MB")) want = (size_t)8 << 20;
  else if (!strcmp(v, "1g")) want = (size_t)1 << 30;
  else if (!strcmp(v, "16G")) want = (size_t)16 << 30;
  else if (!strcmp(v, "1T")) want = (size_t)1 << 40;
  else fail_msg("unexpected size %s", v);
  int rc = mproc_init(NULL);
  /* 1 TiB is accepted; whether the address space has a free 1 TiB range
   * (sanitizers reserve much of it) is another matter. */
  if (want == ((size_t)1 << 40) && rc == MPROC_ENOMEM) _exit(0);
  MPROC_PASS(rc);
  assert_int_equal(mproc__heap_size(), want);
  size_t cap = capacity();
  assert_true(cap < want && cap > want - want / 8 - (256 << 10));
  void *p;
  MPROC_PASS(mproc_heap_alloc(1000, &p));
  MPROC_PASS(mproc_heap_free(p));
}

static void env_heap_size_valid(void **state) {
  (void)state;
  if (getenv(SUBPROC_ENV)) {
    env_size_child();
    return;
  }
  const char *ok[] = {"3M", "2097152", "4096k", "8MB", "1g", "16G", "1T"};
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
    if (run_self("env_heap_size_valid", ok[i]) != 0) fail_msg("MPROC_HEAP_SIZE=%s failed", ok[i]);
}

static void env_heap_size_invalid(void **state) {
  (void)state;
  if (getenv(SUBPROC_ENV)) {
    void *p;
    MPROC_ASSERT_RC(mproc_init(NULL), MPROC_EINVAL);
    MPROC_ASSERT_RC(mproc_heap_alloc(16, &p), MPROC_EINVAL); /* lazy init fails too */
    mproc_heap_stats st;
    MPROC_ASSERT_RC(mproc_heap_stats_get(&st), MPROC_EINVAL);
    MPROC_ASSERT_RC(mproc_heap_free(&st), MPROC_EINVAL);
    assert_false(mproc_heap_contains(&st));
    return;
  }
  const char *bad[] = {"",   "abc", "12Q", "0",    "-5",   "1.5G", "99999999999999999999",
                       "512K", "2T", "1M ", " 1M", "1MM", "0x100000", "1e9"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    if (run_self("env_heap_size_invalid", bad[i]) != 0)
      fail_msg("MPROC_HEAP_SIZE='%s' was not rejected with -EINVAL", bad[i]);
}

static void opts_override_env(void **state) {
  (void)state;
  if (getenv(SUBPROC_ENV)) {
    /* The harness's init failed on the invalid variable; an explicit size
     * takes precedence over it. */
    mproc_init_opts o = {0};
    o.heap_size = (size_t)5 << 20;
    MPROC_PASS(mproc_init(&o));
    assert_int_equal(mproc__heap_size(), (size_t)5 << 20);
    MPROC_PASS(mproc_init(&o));
    o.heap_size = (size_t)6 << 20;
    MPROC_ASSERT_RC(mproc_init(&o), MPROC_EBUSY);
    /* Passed. Leave before the harness's fd check, which would count the
     * heap's memfd (created after its baseline here) as a leak. */
    _exit(0);
  }
  assert_int_equal(run_self("opts_override_env", "bogus"), 0);
}

static int fail_memfd(const char *name, unsigned flags) {
  (void)name;
  (void)flags;
  errno = EMFILE;
  return -1;
}
static int g_mmap_calls;
static void *fail_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
  (void)addr, (void)len, (void)prot, (void)flags, (void)fd, (void)off;
  g_mmap_calls++;
  errno = ENOMEM;
  return (void *)-1;
}

static void init_faults_leak_nothing(void **state) {
  (void)state;
  if (!getenv(SUBPROC_ENV)) {
    assert_int_equal(run_self("init_faults_leak_nothing", "bogus"), 0);
    return;
  }
  /* Uninitialised here (the harness's init failed on the bad variable). */
  unsetenv("MPROC_HEAP_SIZE");
  int fds = mproc_test_count_fds();
  mproc__sys.memfd_create = fail_memfd;
  MPROC_ASSERT_RC(mproc_init(NULL), MPROC_EMFILE);
  void *p;
  MPROC_ASSERT_RC(mproc_heap_alloc(8, &p), MPROC_EMFILE); /* lazy init fails alike */
  mproc__sys.memfd_create = mproc__sys_real.memfd_create;
  mproc__sys.mmap = fail_mmap;
  MPROC_ASSERT_RC(mproc_init(NULL), MPROC_ENOMEM);
  assert_true(g_mmap_calls >= 1);
  assert_int_equal(mproc_test_count_fds(), fds); /* the memfd was closed */
  assert_null(mproc__heap_base());
  mproc__sys.mmap = mproc__sys_real.mmap;
  /* The faults are gone: initialisation now succeeds. */
  MPROC_PASS(mproc_init(NULL));
  MPROC_PASS(mproc_heap_alloc(8, &p));
  MPROC_PASS(mproc_heap_free(p));
  assert_int_equal(mproc_test_count_fds(), fds + 1);
  _exit(0); /* skip the harness's fd check: the heap's memfd is new here */
}

static const struct CMUnitTest tests[] = {
    MPROC_TEST(init_bad_options),
    MPROC_TEST(init_again),
    MPROC_TEST(env_heap_size_valid),
    MPROC_TEST(env_heap_size_invalid),
    MPROC_TEST(opts_override_env),
    MPROC_TEST(init_faults_leak_nothing),
};

MPROC_TEST_MAIN(tests)
