/* test_process_spawn.c - the spawn start method: this test binary is also
 * the spawned child (main() calls mproc_spawn_main first). Registered
 * targets, a heap object handed to the child, arg bytes, names, errors,
 * injected faults, death with the parent. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "platform/platform.h"
#include "process/process_int.h"

typedef struct shared_obj {
  pid_t pid;         /* the child's getpid() */
  pid_t ppid;        /* the child's mproc_parent_pid() */
  int value;         /* set by the parent, doubled by the child */
  char name[64];     /* the child's mproc_current_name() */
  char nested[64];   /* name of a child the child created */
} shared_obj;

static int sp_double(void *arg) {
  shared_obj *o = arg;
  o->pid = getpid();
  o->ppid = mproc_parent_pid();
  o->value *= 2;
  snprintf(o->name, sizeof o->name, "%s", mproc_current_name());
  mproc_process_t *p = NULL;
  if (mproc_process_create(&p, sp_double, NULL, NULL) == 0)
    snprintf(o->nested, sizeof o->nested, "%s", mproc_process_name(p));
  mproc_process_destroy(p);
  return 21;
}

static int sp_sum(void *arg) {
  const int *v = arg;
  return v[0] + v[1] + v[2];
}

static int sp_key(void *arg) {
  shared_obj *o = arg;
  const void *k;
  size_t n;
  if (mproc_current_authkey(&k, &n) || n >= sizeof o->name) return 1;
  memcpy(o->name, k, n);
  o->value = (int)n;
  return 0;
}

static int sp_sleep(void *arg) {
  (void)arg;
  for (;;) pause();
  return 0;
}

/* What a new program should see: default dispositions, the mask of the
 * thread that called start. */
typedef struct sig_state {
  int usr1_dfl, usr2_dfl, int_dfl; /* dispositions are SIG_DFL */
  int hup_blocked, usr1_blocked;   /* in the blocked mask */
  int done;
} sig_state;

static int sp_sigstate(void *arg) {
  sig_state *s = arg;
  struct sigaction sa;
  sigaction(SIGUSR1, NULL, &sa);
  s->usr1_dfl = sa.sa_handler == SIG_DFL;
  sigaction(SIGUSR2, NULL, &sa);
  s->usr2_dfl = sa.sa_handler == SIG_DFL;
  sigaction(SIGINT, NULL, &sa);
  s->int_dfl = sa.sa_handler == SIG_DFL;
  sigset_t m;
  pthread_sigmask(SIG_SETMASK, NULL, &m);
  s->hup_blocked = sigismember(&m, SIGHUP);
  s->usr1_blocked = sigismember(&m, SIGUSR1);
  s->done = 1;
  return 0;
}

static void on_usr1(int sig) { (void)sig; }

/* The parent has a handler (SIGUSR1), an ignored signal (SIGUSR2) and a
 * blocked one (SIGHUP): the spawned program starts with default
 * dispositions and the caller's mask - also when the caller is not the
 * main thread (the launcher forks for it). */
typedef struct sig_run {
  sig_state *st;
  int rc;
} sig_run;

static void *start_sigstate(void *a) {
  sig_run *r = a;
  sigset_t m;
  sigemptyset(&m);
  sigaddset(&m, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &m, NULL);
  mproc_process_t *p = NULL;
  r->rc = mproc_process_create(&p, sp_sigstate, r->st,
                               &(mproc_process_opts){.start_method = MPROC_START_SPAWN});
  if (!r->rc) r->rc = mproc_process_start(p);
  if (!r->rc) r->rc = mproc_process_join(p, 30);
  mproc_process_destroy(p);
  return NULL;
}

static void signal_state(void **state) {
  (void)state;
  struct sigaction sa, old1, old2;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr1;
  sigaction(SIGUSR1, &sa, &old1);
  sa.sa_handler = SIG_IGN;
  sigaction(SIGUSR2, &sa, &old2);
  for (int threaded = 0; threaded < 2; threaded++) {
    sig_state *st = NULL;
    MPROC_PASS(mproc_heap_alloc(sizeof *st, (void **)&st));
    memset(st, 0, sizeof *st);
    sig_run r = {.st = st, .rc = -1};
    if (threaded) {
      pthread_t t;
      assert_int_equal(pthread_create(&t, NULL, start_sigstate, &r), 0);
      pthread_join(t, NULL);
    } else {
      sigset_t m, prev;
      sigemptyset(&m);
      sigaddset(&m, SIGHUP);
      pthread_sigmask(SIG_BLOCK, &m, &prev);
      start_sigstate(&r);
      pthread_sigmask(SIG_SETMASK, &prev, NULL);
    }
    MPROC_PASS(r.rc);
    assert_int_equal(st->done, 1);
    assert_int_equal(st->usr1_dfl, 1);
    assert_int_equal(st->usr2_dfl, 1);
    assert_int_equal(st->int_dfl, 1);
    assert_int_equal(st->hup_blocked, 1);
    assert_int_equal(st->usr1_blocked, 0);
    mproc_heap_free(st);
  }
  sigaction(SIGUSR1, &old1, NULL);
  sigaction(SIGUSR2, &old2, NULL);
}

static int sp_unregistered(void *arg) {
  (void)arg;
  return 0;
}

static void heap_object(void **state) {
  (void)state;
  shared_obj *o = NULL;
  MPROC_PASS(mproc_heap_alloc(sizeof *o, (void **)&o));
  o->value = 50;
  mproc_process_t *p = NULL;
  MPROC_PASS(mproc_process_create(&p, sp_double, o, &(mproc_process_opts){.start_method = MPROC_START_SPAWN}));
  MPROC_PASS(mproc_process_start(p));
  MPROC_PASS(mproc_process_join(p, 30));
  int code = -1;
  MPROC_PASS(mproc_process_exitcode(p, &code));
  assert_int_equal(code, 21);
  assert_int_equal(o->value, 100);
  assert_int_equal(o->pid, mproc_process_pid(p));
  assert_int_equal(o->ppid, getpid());
  assert_string_equal(o->name, "Process-1");
  assert_string_equal(o->nested, "Process-1:1");
  mproc_process_destroy(p);
  mproc_heap_free(o);
}

static void arg_bytes_and_by_name(void **state) {
  (void)state;
  mproc_heap_stats st0;
  MPROC_PASS(mproc_heap_stats_get(&st0));
  int v[3] = {1, 2, 39};
  mproc_process_t *p = NULL;
  MPROC_PASS(mproc_process_create(&p, NULL, v,
                                  &(mproc_process_opts){.start_method = MPROC_START_SPAWN,
                                                        .target_name = "sp_sum",
                                                        .arg_size = sizeof v}));
  MPROC_PASS(mproc_process_start(p));
  MPROC_PASS(mproc_process_join(p, 30));
  int code = -1;
  MPROC_PASS(mproc_process_exitcode(p, &code));
  assert_int_equal(code, 42);
  mproc_process_destroy(p);
  /* The heap block that carried the bytes was given back. */
  mproc_heap_stats st;
  MPROC_PASS(mproc_heap_stats_get(&st));
  assert_int_equal(st.live_blocks, st0.live_blocks);
  /* As the family default. */
  MPROC_PASS(mproc_set_start_method(MPROC_START_SPAWN));
  MPROC_PASS(mproc_process_create(&p, sp_sum, v, &(mproc_process_opts){.arg_size = sizeof v}));
  MPROC_PASS(mproc_process_start(p));
  MPROC_PASS(mproc_process_join(p, 30));
  MPROC_PASS(mproc_process_exitcode(p, &code));
  assert_int_equal(code, 42);
  mproc_process_destroy(p);
}

static void errors(void **state) {
  (void)state;
  mproc_process_t *p = NULL;
  int local = 1;
  mproc_process_opts o = {.start_method = MPROC_START_SPAWN};
  MPROC_ASSERT_RC(mproc_process_create(&p, sp_unregistered, NULL, &o), MPROC_ENOTREG);
  /* A process-local pointer means nothing after exec. */
  MPROC_ASSERT_RC(mproc_process_create(&p, sp_sum, &local, &o), -EINVAL);
  assert_null(p);
}

static void signals(void **state) {
  (void)state;
  mproc_process_t *p = NULL;
  MPROC_PASS(mproc_process_create(&p, sp_sleep, NULL, &(mproc_process_opts){.start_method = MPROC_START_SPAWN}));
  MPROC_PASS(mproc_process_start(p));
  MPROC_ASSERT_RC(mproc_process_join(p, 0.05), -ETIMEDOUT);
  MPROC_PASS(mproc_process_terminate(p));
  MPROC_PASS(mproc_process_join(p, 30));
  int code = 0;
  MPROC_PASS(mproc_process_exitcode(p, &code));
  assert_int_equal(code, -SIGTERM);
  mproc_process_destroy(p);
}

static int fail_pipe2(int fds[2], int flags) {
  (void)fds;
  (void)flags;
  errno = ENFILE;
  return -1;
}

static pid_t fail_fork(void) {
  errno = ENOMEM;
  return -1;
}

static int fail_pidfd_open(pid_t pid, unsigned flags) {
  (void)pid;
  (void)flags;
  errno = ENODEV;
  return -1;
}

static void faults(void **state) {
  (void)state;
  int fds0 = mproc_test_count_fds();
  mproc_heap_stats st0;
  MPROC_PASS(mproc_heap_stats_get(&st0));
  int v[3] = {1, 1, 1};
  mproc_process_t *p = NULL;
  MPROC_PASS(mproc_process_create(&p, sp_sum, v,
                                  &(mproc_process_opts){.start_method = MPROC_START_SPAWN,
                                                        .arg_size = sizeof v}));
  mproc__sys.pipe2 = fail_pipe2;
  MPROC_ASSERT_RC(mproc_process_start(p), -ENFILE);
  mproc__sys.pipe2 = mproc__sys_real.pipe2;
  mproc__sys.fork = fail_fork;
  MPROC_ASSERT_RC(mproc_process_start(p), -ENOMEM);
  mproc__sys.fork = mproc__sys_real.fork;
  mproc__sys.pidfd_open = fail_pidfd_open;
  MPROC_ASSERT_RC(mproc_process_start(p), -ENODEV);
  mproc__sys.pidfd_open = mproc__sys_real.pidfd_open;
  assert_int_equal(mproc_test_count_fds(), fds0);
  assert_int_equal(mproc_test_count_children(), 0);
  mproc_heap_stats st;
  MPROC_PASS(mproc_heap_stats_get(&st));
  assert_int_equal(st.live_blocks, st0.live_blocks);
  MPROC_PASS(mproc_process_start(p));
  MPROC_PASS(mproc_process_join(p, 30));
  int code = 0;
  MPROC_PASS(mproc_process_exitcode(p, &code));
  assert_int_equal(code, 3);
  mproc_process_destroy(p);
}

/* In a spawned child, before mproc_spawn_main: when $SP_BLOCK_DIR is set,
 * the first $SP_BLOCK_N children (each claims a token: mkdir dir/i) map a
 * page where the heap goes, as a library loaded there at random would. */
static void maybe_block_heap(int argc, char **argv) {
  const char *dir = getenv("SP_BLOCK_DIR"), *n = getenv("SP_BLOCK_N");
  unsigned long base;
  int heap_fd;
  if (!dir || !n || argc < 3 || sscanf(argv[2], "1:%d:%lx:", &heap_fd, &base) != 2) return;
  for (int i = 0; i < atoi(n); i++) {
    char tok[512];
    snprintf(tok, sizeof tok, "%s/%d", dir, i);
    if (mkdir(tok, 0700) == 0) {
      mmap((void *)base, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
      return;
    }
  }
}

static int count_tokens(const char *dir, int max) {
  int n = 0;
  for (int i = 0; i < max; i++) {
    char tok[512];
    snprintf(tok, sizeof tok, "%s/%d", dir, i);
    if (rmdir(tok) == 0) n++;
  }
  return n;
}

/* A child that cannot map the heap at its address (something of its own is
 * there) says -EEXIST and the parent spawns again, up to 8 times in all;
 * then start fails with -EEXIST and leaves nothing behind. */
static void heap_address_taken(void **state) {
  (void)state;
  char dir[] = "/tmp/mproc-sp-block-XXXXXX";
  assert_non_null(mkdtemp(dir));
  setenv("SP_BLOCK_DIR", dir, 1);
  int fds0 = mproc_test_count_fds();
  int v[3] = {1, 2, 3};
  mproc_process_opts o = {.start_method = MPROC_START_SPAWN, .arg_size = sizeof v};
  mproc_process_t *p = NULL;
  setenv("SP_BLOCK_N", "3", 1);
  MPROC_PASS(mproc_process_create(&p, sp_sum, v, &o));
  MPROC_PASS(mproc_process_start(p));
  MPROC_PASS(mproc_process_join(p, 30));
  int code = 0;
  MPROC_PASS(mproc_process_exitcode(p, &code));
  assert_int_equal(code, 6);
  mproc_process_destroy(p);
  assert_int_equal(count_tokens(dir, 3), 3); /* three children were blocked */

  setenv("SP_BLOCK_N", "20", 1);
  MPROC_PASS(mproc_process_create(&p, sp_sum, v, &o));
  MPROC_ASSERT_RC(mproc_process_start(p), -EEXIST);
  assert_int_equal(count_tokens(dir, 20), 8); /* eight tries, then the error */
  assert_int_equal(mproc_test_count_children(), 0);
  assert_int_equal(mproc_test_count_fds(), fds0);
  unsetenv("SP_BLOCK_N");
  unsetenv("SP_BLOCK_DIR");
  MPROC_PASS(mproc_process_start(p)); /* and the same process starts later */
  MPROC_PASS(mproc_process_join(p, 30));
  MPROC_PASS(mproc_process_exitcode(p, &code));
  assert_int_equal(code, 6);
  mproc_process_destroy(p);
  assert_int_equal(rmdir(dir), 0);
}

static void parent_sigkill(void **state) {
  (void)state;
  int rep[2];
  assert_int_equal(pipe(rep), 0);
  pid_t mid = fork();
  if (mid == 0) {
    mproc_process_t *p = NULL;
    if (mproc_process_create(&p, sp_sleep, NULL, &(mproc_process_opts){.start_method = MPROC_START_SPAWN}) ||
        mproc_process_start(p))
      _exit(2);
    pid_t pid = mproc_process_pid(p);
    if (write(rep[1], &pid, sizeof pid) != sizeof pid) _exit(3);
    for (;;) pause();
  }
  close(rep[1]);
  pid_t gc = 0;
  assert_int_equal(read(rep[0], &gc, sizeof gc), (int)sizeof gc);
  assert_true(gc > 0);
  kill(mid, SIGKILL);
  int st;
  while (waitpid(mid, &st, 0) < 0 && errno == EINTR) {
  }
  assert_true(mproc_test_wait_gone(gc, 1.0));
  close(rep[0]);
}

static void no_pidfd(void **state) {
  (void)state;
  mproc__force_no_pidfd(1);
  int v[3] = {10, 20, 3};
  mproc_process_opts o = {.start_method = MPROC_START_SPAWN, .arg_size = sizeof v};
  mproc_process_t *p = NULL;
  MPROC_PASS(mproc_process_create(&p, sp_sum, v, &o));
  MPROC_PASS(mproc_process_start(p));
  MPROC_PASS(mproc_process_join(p, 30));
  int code = 0;
  MPROC_PASS(mproc_process_exitcode(p, &code));
  assert_int_equal(code, 33);
  mproc_process_destroy(p);
  MPROC_PASS(mproc_process_create(&p, sp_sleep, NULL, &(mproc_process_opts){.start_method = MPROC_START_SPAWN}));
  MPROC_PASS(mproc_process_start(p));
  MPROC_ASSERT_RC(mproc_process_join(p, 0.05), -ETIMEDOUT);
  MPROC_PASS(mproc_process_kill(p));
  MPROC_PASS(mproc_process_join(p, 30));
  MPROC_PASS(mproc_process_exitcode(p, &code));
  assert_int_equal(code, -SIGKILL);
  mproc_process_destroy(p);
  mproc__force_no_pidfd(0);
}

static void authkey(void **state) {
  (void)state;
  shared_obj *o = NULL;
  MPROC_PASS(mproc_heap_alloc(sizeof *o, (void **)&o));
  mproc_process_t *p = NULL;
  unsigned char key[40];
  for (int i = 0; i < 40; i++) key[i] = (unsigned char)(i * 37 + 1); /* binary */
  MPROC_PASS(mproc_process_create(&p, sp_key, o,
                                  &(mproc_process_opts){.start_method = MPROC_START_SPAWN,
                                                        .authkey = key, .authkey_len = 40}));
  MPROC_PASS(mproc_process_start(p));
  MPROC_PASS(mproc_process_join(p, 30));
  assert_int_equal(o->value, 40);
  assert_memory_equal(o->name, key, 40);
  mproc_process_destroy(p);
  mproc_heap_free(o);
}

static const struct CMUnitTest tests[] = {
    MPROC_TEST(authkey),
    MPROC_TEST(no_pidfd),
    MPROC_TEST(heap_object),
    MPROC_TEST(arg_bytes_and_by_name),
    MPROC_TEST(errors),
    MPROC_TEST(signals),
    MPROC_TEST(signal_state),
    MPROC_TEST(faults),
    MPROC_TEST(heap_address_taken),
    MPROC_TEST(parent_sigkill),
};

int main(int argc, char **argv) {
  mproc_register_target("sp_double", sp_double);
  mproc_register_target("sp_sum", sp_sum);
  mproc_register_target("sp_sleep", sp_sleep);
  mproc_register_target("sp_key", sp_key);
  mproc_register_target("sp_sigstate", sp_sigstate);
  maybe_block_heap(argc, argv);
  int rc = mproc_spawn_main(argc, argv); /* never returns in a spawned child */
  if (rc) return 1;
  return mproc_test_main(tests, sizeof tests / sizeof tests[0], argc, argv, __FILE__);
}
