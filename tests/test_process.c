/* test_process.c - mproc_process_* with the fork start method: every call,
 * every bad input with its exact code, exit codes, names, sentinels,
 * reaping, dying with the parent, exit-time handling, injected faults. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "platform/platform.h"
#include "process/process_int.h"

/* ---- helpers ---- */

static int ret_arg(void *arg) { return (int)(intptr_t)arg; }

/* Block until a byte (or EOF) arrives on the pipe fd *arg, return 3. */
static int wait_pipe(void *arg) {
  int fd = *(int *)arg;
  char c;
  while (read(fd, &c, 1) < 0 && errno == EINTR) {
  }
  return 3;
}

static int sleep_forever(void *arg) {
  (void)arg;
  for (;;) pause();
  return 0;
}

static int exec_sleep(void *arg) {
  (void)arg;
  execl("/bin/sleep", "sleep", "0.2", (char *)NULL);
  return 99;
}

static int raise_self(void *arg) {
  raise((int)(intptr_t)arg);
  return 0;
}

static mproc_process_t *make(mproc_target_fn fn, void *arg) {
  mproc_process_t *p = NULL;
  MPROC_PASS(mproc_process_create(&p, fn, arg, NULL));
  return p;
}

static int read_int(int fd, int *v) {
  size_t got = 0;
  while (got < sizeof *v) {
    ssize_t r = read(fd, (char *)v + got, sizeof *v - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    got += (size_t)r;
  }
  return 0;
}

static void write_int(int fd, int v) {
  ssize_t w = write(fd, &v, sizeof v);
  (void)w;
}

/* ---- create ---- */

static void create_bad_input(void **state) {
  (void)state;
  mproc_process_t *p = NULL;
  int x = 1;
  char longname[300];
  memset(longname, 'a', sizeof longname - 1);
  longname[sizeof longname - 1] = 0;
  MPROC_ASSERT_RC(mproc_process_create(NULL, ret_arg, NULL, NULL), -EINVAL);
  MPROC_ASSERT_RC(mproc_process_create(&p, NULL, NULL, NULL), -EINVAL);
  MPROC_ASSERT_RC(mproc_process_create(&p, ret_arg, NULL, &(mproc_process_opts){.start_method = 4}), -EINVAL);
  MPROC_ASSERT_RC(mproc_process_create(&p, ret_arg, NULL, &(mproc_process_opts){.start_method = -1}), -EINVAL);
  MPROC_ASSERT_RC(mproc_process_create(&p, ret_arg, NULL, &(mproc_process_opts){.arg_size = 4}), -EINVAL);
  MPROC_ASSERT_RC(mproc_process_create(&p, ret_arg, &x, &(mproc_process_opts){.arg_size = (size_t)1 << 40}), -EINVAL);
  MPROC_ASSERT_RC(mproc_process_create(&p, ret_arg, NULL, &(mproc_process_opts){.name = longname}), -ENAMETOOLONG);
  MPROC_ASSERT_RC(mproc_process_create(&p, NULL, NULL, &(mproc_process_opts){.target_name = "nope"}), MPROC_ENOTREG);
  MPROC_ASSERT_RC(mproc_process_create(&p, ret_arg, NULL, &(mproc_process_opts){.target_name = ""}), -EINVAL);
  MPROC_ASSERT_RC(mproc_process_create(&p, ret_arg, NULL, &(mproc_process_opts){.start_method = MPROC_START_SPAWN}), MPROC_ENOTREG);
  assert_null(p);
  /* Registered under another function: the pair must agree. */
  MPROC_PASS(mproc_register_target("tp_ret_arg", ret_arg));
  MPROC_ASSERT_RC(mproc_process_create(&p, wait_pipe, NULL, &(mproc_process_opts){.target_name = "tp_ret_arg"}), -EINVAL);
  MPROC_PASS(mproc_process_create(&p, NULL, (void *)(intptr_t)4, &(mproc_process_opts){.target_name = "tp_ret_arg"}));
  MPROC_PASS(mproc_process_start(p));
  MPROC_PASS(mproc_process_join(p, -1));
  int code = -1;
  MPROC_PASS(mproc_process_exitcode(p, &code));
  assert_int_equal(code, 4);
  MPROC_PASS(mproc_process_destroy(p));
  MPROC_PASS(mproc_process_destroy(NULL));
}

static void register_target_errors(void **state) {
  (void)state;
  char longname[80];
  memset(longname, 'x', sizeof longname - 1);
  longname[sizeof longname - 1] = 0;
  MPROC_ASSERT_RC(mproc_register_target(NULL, ret_arg), -EINVAL);
  MPROC_ASSERT_RC(mproc_register_target("", ret_arg), -EINVAL);
  MPROC_ASSERT_RC(mproc_register_target("a", NULL), -EINVAL);
  MPROC_ASSERT_RC(mproc_register_target(longname, ret_arg), -ENAMETOOLONG);
  MPROC_PASS(mproc_register_target("r1", ret_arg));
  MPROC_PASS(mproc_register_target("r1", ret_arg));
  MPROC_ASSERT_RC(mproc_register_target("r1", wait_pipe), -EEXIST);
  int rc = 0;
  char name[32];
  for (int i = 0; i < 300 && rc == 0; i++) {
    snprintf(name, sizeof name, "fill%d", i);
    rc = mproc_register_target(name, ret_arg);
  }
  MPROC_ASSERT_RC(rc, -ENOSPC);
  MPROC_ASSERT_RC(mproc_spawn_main(-1, NULL), -EINVAL);
  MPROC_ASSERT_RC(mproc_spawn_main(2, NULL), -EINVAL);
  char *argv[] = {"prog", "x", NULL};
  MPROC_PASS(mproc_spawn_main(2, argv));
}

/* ---- lifecycle ---- */

static void start_join_exitcode(void **state) {
  (void)state;
  for (int v = 0; v < 3; v++) {
    mproc_process_t *p = make(ret_arg, (void *)(intptr_t)(v * 100 + 7));
    MPROC_PASS(mproc_process_start(p));
    assert_true(mproc_process_pid(p) > 0);
    assert_true(mproc_process_pid(p) != getpid());
    MPROC_PASS(mproc_process_join(p, -1));
    int code = -1;
    MPROC_PASS(mproc_process_exitcode(p, &code));
    assert_int_equal(code, (v * 100 + 7) & 0xff); /* 7, 107, 207 */
    assert_int_equal(mproc_process_is_alive(p), 0);
    MPROC_PASS(mproc_process_join(p, 0)); /* joining again is fine */
    MPROC_PASS(mproc_process_close(p));
    MPROC_PASS(mproc_process_destroy(p));
  }
  /* Return values are taken & 0xff, like an exit status. */
  mproc_process_t *p = make(ret_arg, (void *)(intptr_t)-1);
  MPROC_PASS(mproc_process_start(p));
  MPROC_PASS(mproc_process_join(p, -1));
  int code;
  MPROC_PASS(mproc_process_exitcode(p, &code));
  assert_int_equal(code, 255);
  mproc_process_destroy(p);
}

static void exitcode_signals(void **state) {
  (void)state;
  int sigs[] = {SIGTERM, SIGKILL, SIGABRT, SIGUSR1};
  for (size_t i = 0; i < 4; i++) {
    mproc_process_t *p = make(raise_self, (void *)(intptr_t)sigs[i]);
    MPROC_PASS(mproc_process_start(p));
    MPROC_PASS(mproc_process_join(p, -1));
    int code = 0;
    MPROC_PASS(mproc_process_exitcode(p, &code));
    assert_int_equal(code, -sigs[i]);
    mproc_process_destroy(p);
  }
  mproc_process_t *p = make(sleep_forever, NULL);
  MPROC_PASS(mproc_process_start(p));
  MPROC_PASS(mproc_process_terminate(p));
  MPROC_PASS(mproc_process_join(p, -1));
  int code = 0;
  MPROC_PASS(mproc_process_exitcode(p, &code));
  assert_int_equal(code, -SIGTERM);
  MPROC_PASS(mproc_process_terminate(p)); /* already ended: 0 */
  MPROC_PASS(mproc_process_kill(p));
  mproc_process_destroy(p);
  p = make(sleep_forever, NULL);
  MPROC_PASS(mproc_process_start(p));
  MPROC_PASS(mproc_process_kill(p));
  MPROC_PASS(mproc_process_join(p, -1));
  MPROC_PASS(mproc_process_exitcode(p, &code));
  assert_int_equal(code, -SIGKILL);
  mproc_process_destroy(p);
}

static void state_errors(void **state) {
  (void)state;
  int pfd[2];
  assert_int_equal(pipe(pfd), 0);
  mproc_process_t *p = make(wait_pipe, &pfd[0]);
  int code;
  /* Never started. */
  MPROC_ASSERT_RC(mproc_process_join(p, -1), MPROC_ESTATE);
  MPROC_ASSERT_RC(mproc_process_join(p, 0), MPROC_ESTATE);
  MPROC_ASSERT_RC(mproc_process_exitcode(p, &code), MPROC_ESTATE);
  MPROC_ASSERT_RC(mproc_process_pid(p), MPROC_ESTATE);
  MPROC_ASSERT_RC(mproc_process_sentinel(p), MPROC_ESTATE);
  MPROC_ASSERT_RC(mproc_process_terminate(p), MPROC_ESTATE);
  MPROC_ASSERT_RC(mproc_process_kill(p), MPROC_ESTATE);
  MPROC_ASSERT_RC(mproc_process_is_alive(p), 0);
  /* Bad arguments. */
  MPROC_ASSERT_RC(mproc_process_join(p, -2), -EINVAL);
  MPROC_ASSERT_RC(mproc_process_join(p, -0.5), -EINVAL);
  MPROC_ASSERT_RC(mproc_process_join(p, 1e300), -EINVAL);
  MPROC_ASSERT_RC(mproc_process_join(p, 0.0 / 0.0), -EINVAL);
  MPROC_ASSERT_RC(mproc_process_exitcode(p, NULL), -EINVAL);
  MPROC_ASSERT_RC(mproc_process_set_name(p, NULL), -EINVAL);
  MPROC_ASSERT_RC(mproc_process_set_name(p, ""), -EINVAL);
  /* Running. */
  MPROC_PASS(mproc_process_set_daemon(p, 0));
  MPROC_PASS(mproc_process_start(p));
  MPROC_ASSERT_RC(mproc_process_start(p), MPROC_ESTATE);
  MPROC_ASSERT_RC(mproc_process_set_daemon(p, 1), MPROC_ESTATE);
  MPROC_ASSERT_RC(mproc_process_exitcode(p, &code), MPROC_ESTATE);
  MPROC_ASSERT_RC(mproc_process_close(p), -EBUSY);
  MPROC_ASSERT_RC(mproc_process_join(p, 0), -ETIMEDOUT);
  MPROC_ASSERT_RC(mproc_process_join(p, 0.05), -ETIMEDOUT);
  assert_int_equal(mproc_process_is_alive(p), 1);
  assert_int_equal(write(pfd[1], "x", 1), 1);
  MPROC_PASS(mproc_process_join(p, 30));
  MPROC_ASSERT_RC(mproc_process_start(p), MPROC_ESTATE);
  MPROC_PASS(mproc_process_close(p));
  MPROC_PASS(mproc_process_close(p)); /* idempotent, as in Python */
  /* Use after close. */
  MPROC_ASSERT_RC(mproc_process_start(p), MPROC_EDESTROYED);
  MPROC_ASSERT_RC(mproc_process_join(p, -1), MPROC_EDESTROYED);
  MPROC_ASSERT_RC(mproc_process_is_alive(p), MPROC_EDESTROYED);
  MPROC_ASSERT_RC(mproc_process_pid(p), MPROC_EDESTROYED);
  MPROC_ASSERT_RC(mproc_process_exitcode(p, &code), MPROC_EDESTROYED);
  MPROC_ASSERT_RC(mproc_process_sentinel(p), MPROC_EDESTROYED);
  MPROC_ASSERT_RC(mproc_process_terminate(p), MPROC_EDESTROYED);
  MPROC_ASSERT_RC(mproc_process_kill(p), MPROC_EDESTROYED);
  MPROC_ASSERT_RC(mproc_process_run(p), MPROC_EDESTROYED);
  MPROC_ASSERT_RC(mproc_process_set_name(p, "x"), MPROC_EDESTROYED);
  MPROC_ASSERT_RC(mproc_process_set_daemon(p, 1), MPROC_EDESTROYED);
  assert_string_equal(mproc_process_name(p), "Process-1");
  MPROC_PASS(mproc_process_destroy(p));
  close(pfd[0]);
  close(pfd[1]);
  /* A never-started process may be closed. */
  p = make(ret_arg, NULL);
  MPROC_PASS(mproc_process_close(p));
  MPROC_ASSERT_RC(mproc_process_start(p), MPROC_EDESTROYED);
  mproc_process_destroy(p);
}

static void null_handles(void **state) {
  (void)state;
  int code;
  MPROC_ASSERT_RC(mproc_process_start(NULL), -EINVAL);
  MPROC_ASSERT_RC(mproc_process_run(NULL), -EINVAL);
  MPROC_ASSERT_RC(mproc_process_join(NULL, -1), -EINVAL);
  MPROC_ASSERT_RC(mproc_process_is_alive(NULL), -EINVAL);
  MPROC_ASSERT_RC(mproc_process_terminate(NULL), -EINVAL);
  MPROC_ASSERT_RC(mproc_process_kill(NULL), -EINVAL);
  MPROC_ASSERT_RC(mproc_process_close(NULL), -EINVAL);
  MPROC_ASSERT_RC(mproc_process_pid(NULL), -EINVAL);
  MPROC_ASSERT_RC(mproc_process_exitcode(NULL, &code), -EINVAL);
  MPROC_ASSERT_RC(mproc_process_daemon(NULL), -EINVAL);
  MPROC_ASSERT_RC(mproc_process_sentinel(NULL), -EINVAL);
  MPROC_ASSERT_RC(mproc_process_set_name(NULL, "a"), -EINVAL);
  MPROC_ASSERT_RC(mproc_process_set_daemon(NULL, 1), -EINVAL);
  assert_string_equal(mproc_process_name(NULL), "");
  MPROC_ASSERT_RC(mproc_active_children(NULL, 1), -EINVAL);
  MPROC_ASSERT_RC(mproc_active_children(NULL, -1), -EINVAL);
  MPROC_ASSERT_RC(mproc_set_start_method(0), -EINVAL);
  MPROC_ASSERT_RC(mproc_set_start_method(9), -EINVAL);
  /* A non-handle is refused, not followed. */
  long junk[64] = {0};
  MPROC_ASSERT_RC(mproc_process_start((mproc_process_t *)junk), -EINVAL);
  MPROC_ASSERT_RC(mproc_process_destroy((mproc_process_t *)junk), -EINVAL);
}

/* Names: 255 bytes is the longest accepted by create and set_name; one
 * more, or far more, is -ENAMETOOLONG and leaves the name unchanged. */
static void set_name_too_long(void **state) {
  (void)state;
  static char longest[256], one_more[257], huge[10000];
  memset(longest, 'L', 255);
  memset(one_more, 'M', 256);
  memset(huge, 'H', sizeof huge - 1);
  mproc_process_t *p = NULL;
  MPROC_ASSERT_RC(mproc_process_create(&p, ret_arg, NULL, &(mproc_process_opts){.name = one_more}),
                  -ENAMETOOLONG);
  assert_null(p);
  MPROC_PASS(mproc_process_create(&p, ret_arg, NULL, &(mproc_process_opts){.name = longest}));
  assert_string_equal(mproc_process_name(p), longest);
  MPROC_PASS(mproc_process_set_name(p, "short"));
  MPROC_ASSERT_RC(mproc_process_set_name(p, one_more), -ENAMETOOLONG);
  MPROC_ASSERT_RC(mproc_process_set_name(p, huge), -ENAMETOOLONG);
  assert_string_equal(mproc_process_name(p), "short");
  MPROC_PASS(mproc_process_set_name(p, longest));
  assert_string_equal(mproc_process_name(p), longest);
  MPROC_PASS(mproc_process_destroy(p));
}

/* In a child made by a raw fork(), report the first call on an inherited
 * handle that does not return what it should. */
#define NONOWNER_RC(expr, want)                                                 \
  do {                                                                          \
    int no__rc = (int)(expr);                                                   \
    if (no__rc != (int)(want)) {                                                \
      fprintf(stderr, "non-owner child: %s returned %d (%s), expected %d\n",   \
              #expr, no__rc, mproc_err_name(no__rc), (int)(want));              \
      _exit(99);                                                                \
    }                                                                           \
  } while (0)

/* Handles belong to their creator: every call from a forked copy of the
 * parent returns MPROC_ENOTOWNER before looking at state or arguments
 * (double start, join on a never-started process, a bad timeout), except
 * the read-only name and daemon; destroy frees only the copy. The parent's
 * child is untouched. */
static void calls_from_non_owner(void **state) {
  (void)state;
  int pfd[2], code = -1;
  assert_int_equal(pipe(pfd), 0);
  mproc_process_t *running = make(wait_pipe, &pfd[0]);
  mproc_process_t *never = make(ret_arg, NULL);
  MPROC_PASS(mproc_process_set_name(never, "never-started"));
  MPROC_PASS(mproc_process_start(running));
  pid_t child = fork();
  assert_true(child >= 0);
  if (child == 0) {
    mproc_process_t *both[] = {running, never};
    for (int i = 0; i < 2; i++) {
      mproc_process_t *p = both[i];
      NONOWNER_RC(mproc_process_start(p), MPROC_ENOTOWNER);
      NONOWNER_RC(mproc_process_run(p), MPROC_ENOTOWNER);
      NONOWNER_RC(mproc_process_join(p, 0), MPROC_ENOTOWNER);
      NONOWNER_RC(mproc_process_join(p, -1), MPROC_ENOTOWNER);
      NONOWNER_RC(mproc_process_join(p, -5), MPROC_ENOTOWNER);
      NONOWNER_RC(mproc_process_is_alive(p), MPROC_ENOTOWNER);
      NONOWNER_RC(mproc_process_terminate(p), MPROC_ENOTOWNER);
      NONOWNER_RC(mproc_process_kill(p), MPROC_ENOTOWNER);
      NONOWNER_RC(mproc_process_close(p), MPROC_ENOTOWNER);
      NONOWNER_RC(mproc_process_pid(p), MPROC_ENOTOWNER);
      NONOWNER_RC(mproc_process_exitcode(p, &code), MPROC_ENOTOWNER);
      NONOWNER_RC(mproc_process_sentinel(p), MPROC_ENOTOWNER);
      NONOWNER_RC(mproc_process_set_name(p, "stolen"), MPROC_ENOTOWNER);
      NONOWNER_RC(mproc_process_set_daemon(p, 1), MPROC_ENOTOWNER);
      NONOWNER_RC(mproc_process_daemon(p), 0);
    }
    NONOWNER_RC(strcmp(mproc_process_name(never), "never-started"), 0);
    NONOWNER_RC(mproc_process_destroy(running), 0);
    NONOWNER_RC(mproc_process_destroy(never), 0);
    _exit(0);
  }
  int st = 0;
  assert_int_equal(waitpid(child, &st, 0), child);
  assert_true(WIFEXITED(st));
  assert_int_equal(WEXITSTATUS(st), 0);
  /* Nothing the child tried reached the parent's objects. */
  assert_int_equal(mproc_process_is_alive(running), 1);
  assert_string_equal(mproc_process_name(never), "never-started");
  MPROC_ASSERT_RC(mproc_process_daemon(never), 0);
  MPROC_ASSERT_RC(mproc_process_join(never, 0), MPROC_ESTATE);
  assert_int_equal(write(pfd[1], "x", 1), 1);
  MPROC_PASS(mproc_process_join(running, 30));
  MPROC_PASS(mproc_process_exitcode(running, &code));
  assert_int_equal(code, 3);
  MPROC_PASS(mproc_process_destroy(running));
  MPROC_PASS(mproc_process_destroy(never));
  close(pfd[0]);
  close(pfd[1]);
}

static int run_target(void *arg) {
  *(pid_t *)arg = getpid();
  return 42;
}

static void run_in_caller(void **state) {
  (void)state;
  pid_t seen = 0;
  mproc_process_t *p = make(run_target, &seen);
  assert_int_equal(mproc_process_run(p), 42);
  assert_int_equal(seen, getpid());
  MPROC_ASSERT_RC(mproc_process_pid(p), MPROC_ESTATE); /* run() is not start() */
  mproc_process_destroy(p);
}

static void join_timeout(void **state) {
  (void)state;
  int pfd[2];
  assert_int_equal(pipe(pfd), 0);
  mproc_process_t *p = make(wait_pipe, &pfd[0]);
  MPROC_PASS(mproc_process_start(p));
  double t0 = mproc_test_now();
  MPROC_ASSERT_RC(mproc_process_join(p, 0.2), -ETIMEDOUT);
  assert_true(mproc_test_now() - t0 >= 0.19);
  assert_int_equal(mproc_process_is_alive(p), 1);
  assert_int_equal(write(pfd[1], "x", 1), 1);
  MPROC_PASS(mproc_process_join(p, 30));
  assert_int_equal(mproc_process_is_alive(p), 0);
  int code;
  MPROC_PASS(mproc_process_exitcode(p, &code));
  assert_int_equal(code, 3);
  close(pfd[0]);
  close(pfd[1]);
  mproc_process_destroy(p);
}

/* ---- names and identity ---- */

typedef struct name_report {
  int fd;                 /* where the child writes its report */
  int nest;               /* start a grandchild too */
} name_report;

static int report_name(void *arg) {
  name_report *r = arg;
  char buf[600];
  int n = snprintf(buf, sizeof buf, "%s|%d|%d", mproc_current_name(), (int)mproc_parent_pid(),
                   (int)mproc_current_pid());
  if (r->nest) {
    name_report inner = {.fd = r->fd, .nest = 0};
    mproc_process_t *a, *b;
    mproc_process_create(&a, report_name, &inner, NULL);
    mproc_process_create(&b, report_name, &inner, NULL);
    snprintf(buf + n, sizeof buf - (size_t)n, "|%s|%s", mproc_process_name(a), mproc_process_name(b));
    mproc_process_destroy(a);
    mproc_process_destroy(b);
  }
  ssize_t w = write(r->fd, buf, strlen(buf) + 1);
  (void)w;
  return 0;
}

static void names(void **state) {
  (void)state;
  assert_string_equal(mproc_current_name(), "MainProcess");
  assert_int_equal(mproc_current_pid(), getpid());
  assert_int_equal(mproc_parent_pid(), 0);
  mproc_process_t *a = make(ret_arg, NULL), *b = make(ret_arg, NULL);
  assert_string_equal(mproc_process_name(a), "Process-1");
  assert_string_equal(mproc_process_name(b), "Process-2");
  mproc_process_t *c = NULL;
  MPROC_PASS(mproc_process_create(&c, ret_arg, NULL, &(mproc_process_opts){.name = "worker1"}));
  assert_string_equal(mproc_process_name(c), "worker1");
  MPROC_PASS(mproc_process_set_name(c, "renamed"));
  assert_string_equal(mproc_process_name(c), "renamed");
  mproc_process_destroy(a);
  mproc_process_destroy(b);
  mproc_process_destroy(c);

  /* In the child: its own name, its parent's pid; a nested child is
   * "Process-4:1" (the fourth process created here, its first child). */
  int pfd[2];
  assert_int_equal(pipe(pfd), 0);
  name_report r = {.fd = pfd[1], .nest = 1};
  mproc_process_t *p = make(report_name, &r);
  assert_string_equal(mproc_process_name(p), "Process-4");
  MPROC_PASS(mproc_process_start(p));
  MPROC_PASS(mproc_process_join(p, -1));
  char buf[600] = {0};
  assert_true(read(pfd[0], buf, sizeof buf - 1) > 0);
  char want[600];
  snprintf(want, sizeof want, "Process-4|%d|%d|Process-4:1|Process-4:2", (int)getpid(),
           (int)mproc_process_pid(p));
  assert_string_equal(buf, want);
  mproc_process_destroy(p);
  close(pfd[0]);
  close(pfd[1]);
}

static void daemon_flag(void **state) {
  (void)state;
  mproc_process_t *p = NULL;
  MPROC_PASS(mproc_process_create(&p, ret_arg, NULL, &(mproc_process_opts){.daemon = 5}));
  assert_int_equal(mproc_process_daemon(p), 1);
  MPROC_PASS(mproc_process_set_daemon(p, 0));
  assert_int_equal(mproc_process_daemon(p), 0);
  mproc_process_destroy(p);
}

static int try_start_child(void *arg) {
  (void)arg;
  mproc_process_t *p = NULL;
  if (mproc_process_create(&p, ret_arg, NULL, NULL)) return 1;
  int rc = mproc_process_start(p);
  mproc_process_destroy(p);
  return rc == -EPERM ? 77 : 2;
}

static void daemon_may_not_have_children(void **state) {
  (void)state;
  mproc_process_t *p = NULL;
  MPROC_PASS(mproc_process_create(&p, try_start_child, NULL, &(mproc_process_opts){.daemon = 1}));
  MPROC_PASS(mproc_process_start(p));
  MPROC_PASS(mproc_process_join(p, -1));
  int code;
  MPROC_PASS(mproc_process_exitcode(p, &code));
  assert_int_equal(code, 77);
  mproc_process_destroy(p);
}

/* ---- sentinel, active children, reaping ---- */

static void sentinel_poll(void **state) {
  (void)state;
  int pfd[2];
  assert_int_equal(pipe(pfd), 0);
  mproc_process_t *p = make(wait_pipe, &pfd[0]);
  MPROC_PASS(mproc_process_start(p));
  int fd = mproc_process_sentinel(p);
  assert_true(fd >= 0);
  struct pollfd q = {.fd = fd, .events = POLLIN};
  assert_int_equal(poll(&q, 1, 50), 0);
  assert_int_equal(write(pfd[1], "x", 1), 1);
  assert_int_equal(poll(&q, 1, 30000), 1);
  assert_true(q.revents & POLLIN);
  /* Readable sentinel => join(0) succeeds. */
  MPROC_PASS(mproc_process_join(p, 0));
  assert_int_equal(mproc_process_sentinel(p), fd); /* still valid */
  MPROC_PASS(mproc_process_close(p));
  mproc_process_destroy(p);
  close(pfd[0]);
  close(pfd[1]);
}

static void active_children_and_reaping(void **state) {
  (void)state;
  int pfd[2];
  assert_int_equal(pipe(pfd), 0);
  mproc_process_t *w[3], *q[5];
  for (int i = 0; i < 3; i++) {
    w[i] = make(wait_pipe, &pfd[0]);
    MPROC_PASS(mproc_process_start(w[i]));
  }
  /* Five children that end at once and are never joined. */
  for (int i = 0; i < 5; i++) {
    q[i] = make(ret_arg, NULL);
    MPROC_PASS(mproc_process_start(q[i]));
  }
  double end = mproc_test_now() + 30;
  mproc_process_t *out[8];
  int n;
  while ((n = mproc_active_children(out, 8)) != 3 && mproc_test_now() < end) usleep(2000);
  assert_int_equal(n, 3);
  for (int i = 0; i < 3; i++) assert_ptr_equal(out[i], w[i]); /* start order */
  assert_int_equal(mproc_active_children(NULL, 0), 3);
  assert_int_equal(mproc_active_children(out, 1), 3);
  /* They were reaped: no zombie left behind although nobody joined them. */
  assert_int_equal(mproc_test_zombies_of(getpid()), 0);
  for (int i = 0; i < 5; i++) {
    int code = -1;
    MPROC_PASS(mproc_process_exitcode(q[i], &code));
    assert_int_equal(code, 0);
    mproc_process_destroy(q[i]);
  }
  /* A destroyed running child is no longer listed but still reaped. */
  mproc_process_destroy(w[2]);
  assert_int_equal(mproc_active_children(NULL, 0), 2);
  assert_int_equal(write(pfd[1], "xyz", 3), 3); /* one byte each */
  for (int i = 0; i < 2; i++) MPROC_PASS(mproc_process_join(w[i], 30));
  end = mproc_test_now() + 30;
  while (mproc_test_count_children() > 0 && mproc_test_now() < end) {
    mproc_active_children(NULL, 0);
    usleep(2000);
  }
  assert_int_equal(mproc_test_count_children(), 0);
  assert_int_equal(mproc_active_children(NULL, 0), 0);
  for (int i = 0; i < 2; i++) mproc_process_destroy(w[i]);
  close(pfd[0]);
  close(pfd[1]);
}

/* ---- threads ---- */

typedef struct thr_arg {
  int base;
  int ok;
} thr_arg;

static void *thread_starts(void *a) {
  thr_arg *t = a;
  t->ok = 1;
  for (int i = 0; i < 5; i++) {
    mproc_process_t *p = NULL;
    if (mproc_process_create(&p, ret_arg, (void *)(intptr_t)(t->base + i), NULL) ||
        mproc_process_start(p) || mproc_process_join(p, -1)) {
      t->ok = 0;
      break;
    }
    int code = -1;
    mproc_process_exitcode(p, &code);
    if (code != t->base + i) t->ok = 0;
    mproc_process_destroy(p);
  }
  return NULL;
}

static void start_from_threads(void **state) {
  (void)state;
  pthread_t th[4];
  thr_arg a[4];
  for (int i = 0; i < 4; i++) {
    a[i] = (thr_arg){.base = 10 * (i + 1), .ok = 0};
    assert_int_equal(pthread_create(&th[i], NULL, thread_starts, &a[i]), 0);
  }
  for (int i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    assert_true(a[i].ok);
  }
}

/* ---- dying with the parent; exit-time handling ---- */

typedef struct mid_opts {
  int from_thread;  /* start the child from a thread that then exits */
  int daemon;       /* child's daemon flag */
  int ignore_term;  /* child ignores SIGTERM */
  int exit_after;   /* middle exits normally after reporting */
  int method;       /* start method */
} mid_opts;

typedef struct mid_ctx {
  mid_opts o;
  int ready[2];     /* the grandchild says it is set up */
  mproc_process_t *p;
} mid_ctx;

typedef struct gc_arg {
  int ignore_term;  /* ignore SIGTERM */
  int ready_fd;     /* write one byte once set up */
} gc_arg;

static int child_sleeps(void *arg) {
  gc_arg *g = arg;
  if (g->ignore_term) signal(SIGTERM, SIG_IGN);
  ssize_t w = write(g->ready_fd, "r", 1);
  (void)w;
  for (;;) pause();
  return 0;
}

static void *mid_thread(void *a) {
  mid_ctx *c = a;
  gc_arg g = {.ignore_term = c->o.ignore_term, .ready_fd = c->ready[1]};
  mproc_process_create(&c->p, child_sleeps, &g,
                       &(mproc_process_opts){.daemon = c->o.daemon, .start_method = c->o.method,
                                             .arg_size = sizeof g});
  if (mproc_process_start(c->p)) c->p = NULL;
  return NULL;
}

/* The middle process: starts an mproc child, reports its pid, then either
 * waits to be SIGKILLed or exits normally. Returns the middle's pid. */
static pid_t start_middle(mid_opts o, pid_t *grandchild) {
  int pfd[2];
  assert_int_equal(pipe(pfd), 0);
  pid_t mid = fork();
  assert_true(mid >= 0);
  if (mid == 0) {
    close(pfd[0]);
    if (o.method) mproc_set_start_method(o.method);
    mid_ctx c = {.o = o};
    if (pipe(c.ready)) _exit(1);
    if (o.from_thread) {
      pthread_t t;
      pthread_create(&t, NULL, mid_thread, &c);
      pthread_join(t, NULL); /* the forking thread is gone now */
    } else {
      mid_thread(&c);
    }
    char b;
    if (c.p && read(c.ready[0], &b, 1) != 1) c.p = NULL;
    write_int(pfd[1], c.p ? mproc_process_pid(c.p) : -1);
    if (o.exit_after) exit(0); /* atexit: terminate daemons, join others */
    for (;;) pause();
  }
  close(pfd[1]);
  int v = -1;
  assert_int_equal(read_int(pfd[0], &v), 0);
  close(pfd[0]);
  assert_true(v > 0);
  *grandchild = v;
  return mid;
}

static void reap_middle(pid_t mid) {
  int st;
  while (waitpid(mid, &st, 0) < 0 && errno == EINTR) {
  }
}

static void parent_sigkill_kills_child(void **state) {
  (void)state;
  pid_t gc;
  pid_t mid = start_middle((mid_opts){0}, &gc);
  assert_true(mproc_test_pid_running(gc));
  kill(mid, SIGKILL);
  reap_middle(mid);
  assert_true(mproc_test_wait_gone(gc, 1.0));
}

static void forking_thread_exit_keeps_child(void **state) {
  (void)state;
  pid_t gc;
  pid_t mid = start_middle((mid_opts){.from_thread = 1}, &gc);
  /* The thread that asked for the fork has exited: the child lives on. */
  usleep(300 * 1000);
  assert_true(mproc_test_pid_running(gc));
  kill(mid, SIGKILL);
  reap_middle(mid);
  assert_true(mproc_test_wait_gone(gc, 1.0));
}

static void daemon_terminated_at_exit(void **state) {
  (void)state;
  pid_t gc;
  pid_t mid = start_middle((mid_opts){.daemon = 1, .exit_after = 1}, &gc);
  reap_middle(mid);
  assert_true(mproc_test_wait_gone(gc, 1.0));
  /* One that ignores SIGTERM is SIGKILLed after the grace period. */
  double t0 = mproc_test_now();
  mid = start_middle((mid_opts){.daemon = 1, .exit_after = 1, .ignore_term = 1}, &gc);
  reap_middle(mid);
  assert_true(mproc_test_now() - t0 >= 0.9); /* the middle waited the grace */
  assert_true(mproc_test_wait_gone(gc, 1.0));
}

static int slow_child(void *arg) {
  int fd = *(int *)arg;
  usleep(300 * 1000);
  ssize_t w = write(fd, "done", 4);
  (void)w;
  return 0;
}

static void nondaemon_joined_at_exit(void **state) {
  (void)state;
  int pfd[2];
  assert_int_equal(pipe(pfd), 0);
  pid_t mid = fork();
  if (mid == 0) {
    close(pfd[0]);
    mproc_process_t *p;
    mproc_process_create(&p, slow_child, &pfd[1], NULL);
    mproc_process_start(p);
    close(pfd[1]);
    exit(0); /* must wait for the child, as Python does */
  }
  close(pfd[1]);
  reap_middle(mid);
  /* The middle is gone only after the child finished its work. */
  char buf[8] = {0};
  struct pollfd q = {.fd = pfd[0], .events = POLLIN};
  assert_int_equal(poll(&q, 1, 0), 1);
  assert_int_equal(read(pfd[0], buf, sizeof buf), 4);
  assert_string_equal(buf, "done");
  close(pfd[0]);
}

/* ---- injected faults ---- */

static pid_t fail_fork(void) {
  errno = EAGAIN;
  return -1;
}
static int fail_pidfd_open(pid_t pid, unsigned flags) {
  (void)pid;
  (void)flags;
  errno = EMFILE;
  return -1;
}

static void fault_fork(void **state) {
  (void)state;
  int fds0 = mproc_test_count_fds();
  mproc_process_t *p = make(ret_arg, (void *)(intptr_t)5);
  mproc__sys.fork = fail_fork;
  MPROC_ASSERT_RC(mproc_process_start(p), -EAGAIN);
  mproc__sys.fork = mproc__sys_real.fork;
  assert_int_equal(mproc_test_count_children(), 0);
  assert_int_equal(mproc_test_count_fds(), fds0);
  MPROC_ASSERT_RC(mproc_process_pid(p), MPROC_ESTATE);
  /* The handle is still startable once fork works again. */
  MPROC_PASS(mproc_process_start(p));
  MPROC_PASS(mproc_process_join(p, -1));
  int code;
  MPROC_PASS(mproc_process_exitcode(p, &code));
  assert_int_equal(code, 5);
  mproc_process_destroy(p);
}

static void fault_pidfd_open(void **state) {
  (void)state;
  int fds0 = mproc_test_count_fds();
  mproc_process_t *p = make(sleep_forever, NULL);
  mproc__sys.pidfd_open = fail_pidfd_open;
  MPROC_ASSERT_RC(mproc_process_start(p), -EMFILE);
  mproc__sys.pidfd_open = mproc__sys_real.pidfd_open;
  /* The child it could not manage was killed and reaped: nothing leaks. */
  assert_int_equal(mproc_test_count_children(), 0);
  assert_int_equal(mproc_test_count_fds(), fds0);
  MPROC_ASSERT_RC(mproc_process_is_alive(p), 0);
  mproc_process_destroy(p);
}

static int call_exit(void *arg) {
  exit((int)(intptr_t)arg); /* exit() in the target: atexit runs, code kept */
}

static void exit_in_target_and_lost_status(void **state) {
  (void)state;
  mproc_process_t *p = make(call_exit, (void *)(intptr_t)12);
  MPROC_PASS(mproc_process_start(p));
  MPROC_PASS(mproc_process_join(p, -1));
  int code = 0;
  MPROC_PASS(mproc_process_exitcode(p, &code));
  assert_int_equal(code, 12);
  mproc_process_destroy(p);
  /* Someone else reaps our child: the status is reported lost. */
  p = make(ret_arg, (void *)(intptr_t)1);
  MPROC_PASS(mproc_process_start(p));
  int st;
  assert_int_equal(waitpid(mproc_process_pid(p), &st, 0), mproc_process_pid(p));
  MPROC_PASS(mproc_process_join(p, 30));
  MPROC_PASS(mproc_process_exitcode(p, &code));
  assert_int_equal(code, -ECHILD);
  mproc_process_destroy(p);
}

static void destroy_running_detaches(void **state) {
  (void)state;
  int pfd[2];
  assert_int_equal(pipe(pfd), 0);
  mproc_process_t *p = make(wait_pipe, &pfd[0]);
  MPROC_PASS(mproc_process_start(p));
  pid_t pid = mproc_process_pid(p);
  MPROC_PASS(mproc_process_destroy(p)); /* not killed */
  assert_true(mproc_test_pid_running(pid)); /* not even a zombie */
  assert_int_equal(mproc_active_children(NULL, 0), 0);
  assert_int_equal(write(pfd[1], "x", 1), 1);
  /* The library still reaps it (and frees the handle: ASan would tell). */
  double end = mproc_test_now() + 30;
  while (mproc_test_count_children() > 0 && mproc_test_now() < end) {
    mproc_active_children(NULL, 0);
    usleep(2000);
  }
  assert_int_equal(mproc_test_count_children(), 0);
  close(pfd[0]);
  close(pfd[1]);
}

/* Without pidfds (old kernels, valgrind): death pipes, waitid(P_PID), kill. */
static void no_pidfd_fallback(void **state) {
  (void)state;
  mproc__force_no_pidfd(1);
  assert_false(mproc__have_pidfd());
  int fds0 = mproc_test_count_fds();
  mproc_process_t *p = make(ret_arg, (void *)(intptr_t)17);
  MPROC_PASS(mproc_process_start(p));
  MPROC_PASS(mproc_process_join(p, 30));
  int code = 0;
  MPROC_PASS(mproc_process_exitcode(p, &code));
  assert_int_equal(code, 17);
  mproc_process_destroy(p);
  /* sentinel, is_alive, timeout, terminate */
  p = make(sleep_forever, NULL);
  MPROC_PASS(mproc_process_start(p));
  struct pollfd q = {.fd = mproc_process_sentinel(p), .events = POLLIN};
  assert_true(q.fd >= 0);
  assert_int_equal(poll(&q, 1, 50), 0);
  assert_int_equal(mproc_process_is_alive(p), 1);
  MPROC_ASSERT_RC(mproc_process_join(p, 0.05), -ETIMEDOUT);
  MPROC_PASS(mproc_process_terminate(p));
  assert_int_equal(poll(&q, 1, 30000), 1);
  MPROC_PASS(mproc_process_join(p, 30));
  MPROC_PASS(mproc_process_exitcode(p, &code));
  assert_int_equal(code, -SIGTERM);
  mproc_process_destroy(p);
  /* A child that execs closes its death pipe early: join still works. */
  p = make(exec_sleep, NULL);
  MPROC_PASS(mproc_process_start(p));
  MPROC_PASS(mproc_process_join(p, 30));
  MPROC_PASS(mproc_process_exitcode(p, &code));
  assert_int_equal(code, 0);
  mproc_process_destroy(p);
  /* Nested: the grandchild does not hold its parent's death pipe. */
  int pfd[2];
  assert_int_equal(pipe(pfd), 0);
  name_report r = {.fd = pfd[1], .nest = 1};
  p = make(report_name, &r);
  MPROC_PASS(mproc_process_start(p));
  MPROC_PASS(mproc_process_join(p, 30));
  mproc_process_destroy(p);
  close(pfd[0]);
  close(pfd[1]);
  assert_int_equal(mproc_test_count_fds(), fds0);
  mproc__force_no_pidfd(0);
}

static void no_pidfd_parent_sigkill(void **state) {
  (void)state;
  mproc__force_no_pidfd(1);
  pid_t gc;
  pid_t mid = start_middle((mid_opts){.from_thread = 1}, &gc);
  kill(mid, SIGKILL);
  reap_middle(mid);
  assert_true(mproc_test_wait_gone(gc, 1.0));
  mproc__force_no_pidfd(0);
}

typedef struct key_report {
  int fd;                     /* pipe to write the child's key to */
} key_report;

static int send_key(void *arg) {
  const key_report *r = arg;
  const void *k;
  size_t n;
  if (mproc_current_authkey(&k, &n)) return 1;
  ssize_t w = write(r->fd, k, n);
  return w == (ssize_t)n ? 0 : 2;
}

static void authkey(void **state) {
  (void)state;
  const void *k = NULL;
  size_t n = 0;
  MPROC_ASSERT_RC(mproc_current_authkey(NULL, &n), -EINVAL);
  MPROC_ASSERT_RC(mproc_current_authkey(&k, NULL), -EINVAL);
  MPROC_ASSERT_RC(mproc_set_current_authkey(NULL, 4), -EINVAL);
  MPROC_ASSERT_RC(mproc_set_current_authkey("x", 0), -EINVAL);
  MPROC_ASSERT_RC(mproc_set_current_authkey("x", MPROC_AUTHKEY_MAX + 1), -EINVAL);
  mproc_process_t *p = NULL;
  MPROC_ASSERT_RC(mproc_process_create(&p, ret_arg, NULL, &(mproc_process_opts){.authkey_len = 3}), -EINVAL);
  MPROC_ASSERT_RC(mproc_process_create(&p, ret_arg, NULL, &(mproc_process_opts){.authkey = "abc"}), -EINVAL);
  MPROC_PASS(mproc_current_authkey(&k, &n));
  assert_int_equal(n, 32);
  unsigned char mine[32];
  memcpy(mine, k, 32);
  const void *k2;
  size_t n2;
  MPROC_PASS(mproc_current_authkey(&k2, &n2)); /* stable */
  assert_memory_equal(k2, mine, 32);
  /* A child inherits it; or gets the one in its opts. */
  int pfd[2];
  assert_int_equal(pipe(pfd), 0);
  key_report r = {.fd = pfd[1]};
  p = make(send_key, &r);
  MPROC_PASS(mproc_process_start(p));
  MPROC_PASS(mproc_process_join(p, 30));
  unsigned char got[64] = {0};
  assert_int_equal(read(pfd[0], got, sizeof got), 32);
  assert_memory_equal(got, mine, 32);
  mproc_process_destroy(p);
  MPROC_PASS(mproc_process_create(&p, send_key, &r, &(mproc_process_opts){.authkey = "secret", .authkey_len = 6}));
  MPROC_PASS(mproc_process_start(p));
  MPROC_PASS(mproc_process_join(p, 30));
  assert_int_equal(read(pfd[0], got, sizeof got), 6);
  assert_memory_equal(got, "secret", 6);
  mproc_process_destroy(p);
  MPROC_PASS(mproc_set_current_authkey("family", 6));
  MPROC_PASS(mproc_current_authkey(&k, &n));
  assert_int_equal(n, 6);
  assert_memory_equal(k, "family", 6);
  close(pfd[0]);
  close(pfd[1]);
}

static void start_method_default(void **state) {
  (void)state;
  assert_int_equal(mproc_get_start_method(), MPROC_START_FORK);
  MPROC_PASS(mproc_set_start_method(MPROC_START_SPAWN));
  assert_int_equal(mproc_get_start_method(), MPROC_START_SPAWN);
  MPROC_PASS(mproc_set_start_method(MPROC_START_FORK));
  assert_int_equal(mproc_get_start_method(), MPROC_START_FORK);
}

static const struct CMUnitTest tests[] = {
    MPROC_TEST(create_bad_input),
    MPROC_TEST(register_target_errors),
    MPROC_TEST(start_join_exitcode),
    MPROC_TEST(exitcode_signals),
    MPROC_TEST(state_errors),
    MPROC_TEST(null_handles),
    MPROC_TEST(set_name_too_long),
    MPROC_TEST(calls_from_non_owner),
    MPROC_TEST(run_in_caller),
    MPROC_TEST(join_timeout),
    MPROC_TEST(names),
    MPROC_TEST(daemon_flag),
    MPROC_TEST(daemon_may_not_have_children),
    MPROC_TEST(sentinel_poll),
    MPROC_TEST(active_children_and_reaping),
    MPROC_TEST(start_from_threads),
    MPROC_TEST(parent_sigkill_kills_child),
    MPROC_TEST(forking_thread_exit_keeps_child),
    MPROC_TEST(daemon_terminated_at_exit),
    MPROC_TEST(nondaemon_joined_at_exit),
    MPROC_TEST(fault_fork),
    MPROC_TEST(fault_pidfd_open),
    MPROC_TEST(start_method_default),
    MPROC_TEST(exit_in_target_and_lost_status),
    MPROC_TEST(destroy_running_detaches),
    MPROC_TEST(no_pidfd_fallback),
    MPROC_TEST(authkey),
    MPROC_TEST(no_pidfd_parent_sigkill),
};

MPROC_TEST_MAIN(tests)
