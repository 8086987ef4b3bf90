/* test_process_forkserver.c - the forkserver start method: results through
 * the shared heap (the server's children do not share fds opened after the
 * server started), a multithreaded parent, signals and sentinels, the
 * server dying, death with the requester, injected faults. Each test stops
 * the server at the end so the harness sees no child left behind. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "platform/platform.h"
#include "process/process_int.h"

typedef struct report {
  pid_t pid;        /* getpid() in the child */
  pid_t ppid;       /* mproc_parent_pid() in the child */
  char name[64];    /* mproc_current_name() in the child */
  int value;        /* what the child was given */
} report;

static int fill_report(void *arg) {
  report *r = arg;
  r->pid = getpid();
  r->ppid = mproc_parent_pid();
  snprintf(r->name, sizeof r->name, "%s", mproc_current_name());
  return r->value;
}

static int sum_bytes(void *arg) {
  const unsigned char *b = arg;
  int s = 0;
  for (int i = 0; i < 100; i++) s += b[i];
  return s % 256;
}

static int ret_arg(void *arg);

#define BIG_ARG ((size_t)3 << 20) /* far more than a socket buffer */

static int check_big(void *arg) {
  const unsigned char *b = arg;
  for (size_t i = 0; i < BIG_ARG; i++)
    if (b[i] != (unsigned char)(i * 7 + i / 4096)) return 1;
  return 0;
}

static int sleep_forever(void *arg) {
  (void)arg;
  for (;;) pause();
  return 0;
}

static int raise_self(void *arg) {
  raise((int)(intptr_t)arg);
  return 0;
}

static void *heap_new(size_t n) {
  void *p = NULL;
  MPROC_PASS(mproc_heap_alloc(n, &p));
  return p;
}

static void basic(void **state) {
  (void)state;
  MPROC_PASS(mproc_set_start_method(MPROC_START_FORKSERVER));
  assert_int_equal(mproc_get_start_method(), MPROC_START_FORKSERVER);
  pid_t server = mproc__forkserver_pid();
  assert_true(server > 0);
  report *r = heap_new(sizeof *r);
  r->value = 33;
  mproc_process_t *p = NULL;
  MPROC_PASS(mproc_process_create(&p, fill_report, r, &(mproc_process_opts){.name = "fs-child"}));
  MPROC_PASS(mproc_process_start(p));
  MPROC_PASS(mproc_process_join(p, 30));
  int code = -1;
  MPROC_PASS(mproc_process_exitcode(p, &code));
  assert_int_equal(code, 33);
  assert_int_equal(r->pid, mproc_process_pid(p));
  assert_int_equal(r->ppid, getpid()); /* the requester, not the server */
  assert_string_equal(r->name, "fs-child");
  assert_int_equal(mproc__forkserver_pid(), server); /* one server, reused */
  mproc_process_destroy(p);
  /* Bytes copied with arg_size travel through the server. */
  unsigned char bytes[100];
  int want = 0;
  for (int i = 0; i < 100; i++) want += bytes[i] = (unsigned char)(i * 7);
  MPROC_PASS(mproc_process_create(&p, sum_bytes, bytes, &(mproc_process_opts){.arg_size = sizeof bytes}));
  memset(bytes, 0, sizeof bytes); /* the copy was taken at create */
  MPROC_PASS(mproc_process_start(p));
  MPROC_PASS(mproc_process_join(p, 30));
  MPROC_PASS(mproc_process_exitcode(p, &code));
  assert_int_equal(code, want % 256);
  mproc_process_destroy(p);
  mproc_heap_free(r);
  mproc__forkserver_stop();
  assert_int_equal(mproc__forkserver_pid(), 0);
}

typedef struct storm {
  pthread_t target;   /* thread to interrupt */
  _Atomic int stop;
} storm;

static void on_storm(int sig) { (void)sig; }

static void *storm_main(void *a) {
  storm *st = a;
  while (!atomic_load(&st->stop)) {
    pthread_kill(st->target, SIGUSR1);
    usleep(50);
  }
  return NULL;
}

/* A request larger than the socket buffers arrives whole, also when
 * signals interrupt the sending (a sendmsg cut short part-way through the
 * iovec, resumed where it stopped); the stream stays in step for the next
 * start. */
static void big_arg(void **state) {
  (void)state;
  MPROC_PASS(mproc_set_start_method(MPROC_START_FORKSERVER));
  struct sigaction sa, old;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_storm; /* no SA_RESTART: sendmsg returns short */
  sigaction(SIGUSR1, &sa, &old);
  storm stm = {.target = pthread_self(), .stop = 0};
  pthread_t storm_thr;
  assert_int_equal(pthread_create(&storm_thr, NULL, storm_main, &stm), 0);
  unsigned char *b = malloc(BIG_ARG);
  assert_non_null(b);
  for (size_t i = 0; i < BIG_ARG; i++) b[i] = (unsigned char)(i * 7 + i / 4096);
  char name[200];
  memset(name, 'n', sizeof name - 1);
  name[sizeof name - 1] = 0;
  for (int round = 0; round < 2; round++) {
    mproc_process_t *p = NULL;
    MPROC_PASS(mproc_process_create(&p, check_big, b,
                                    &(mproc_process_opts){.arg_size = BIG_ARG, .name = name}));
    MPROC_PASS(mproc_process_start(p));
    MPROC_PASS(mproc_process_join(p, 60));
    int code = -1;
    MPROC_PASS(mproc_process_exitcode(p, &code));
    assert_int_equal(code, 0);
    mproc_process_destroy(p);
  }
  atomic_store(&stm.stop, 1);
  pthread_join(storm_thr, NULL);
  sigaction(SIGUSR1, &old, NULL);
  free(b);
  mproc_process_t *p = NULL;
  MPROC_PASS(mproc_process_create(&p, ret_arg, (void *)(intptr_t)6, NULL));
  MPROC_PASS(mproc_process_start(p));
  MPROC_PASS(mproc_process_join(p, 30));
  int code = -1;
  MPROC_PASS(mproc_process_exitcode(p, &code));
  assert_int_equal(code, 6);
  mproc_process_destroy(p);
  mproc__forkserver_stop();
}

static void signals_and_sentinel(void **state) {
  (void)state;
  MPROC_PASS(mproc_set_start_method(MPROC_START_FORKSERVER));
  mproc_process_t *p = NULL;
  MPROC_PASS(mproc_process_create(&p, sleep_forever, NULL, NULL));
  MPROC_PASS(mproc_process_start(p));
  int fd = mproc_process_sentinel(p);
  assert_true(fd >= 0);
  struct pollfd q = {.fd = fd, .events = POLLIN};
  assert_int_equal(poll(&q, 1, 50), 0);
  assert_int_equal(mproc_process_is_alive(p), 1);
  MPROC_ASSERT_RC(mproc_process_join(p, 0.05), -ETIMEDOUT);
  MPROC_ASSERT_RC(mproc_process_close(p), -EBUSY);
  MPROC_PASS(mproc_process_terminate(p));
  assert_int_equal(poll(&q, 1, 30000), 1);
  MPROC_PASS(mproc_process_join(p, 0)); /* readable sentinel => joinable */
  int code = 0;
  MPROC_PASS(mproc_process_exitcode(p, &code));
  assert_int_equal(code, -SIGTERM);
  mproc_process_destroy(p);
  MPROC_PASS(mproc_process_create(&p, raise_self, (void *)(intptr_t)SIGUSR2, NULL));
  MPROC_PASS(mproc_process_start(p));
  MPROC_PASS(mproc_process_join(p, 30));
  MPROC_PASS(mproc_process_exitcode(p, &code));
  assert_int_equal(code, -SIGUSR2);
  mproc_process_destroy(p);
  mproc__forkserver_stop();
}

/* The server ignores SIGINT and SIGPIPE and runs with nothing blocked;
 * its children get default dispositions and the requester's mask. */
typedef struct sig_state {
  int int_dfl, pipe_dfl, usr1_dfl; /* dispositions are SIG_DFL */
  int usr1_blocked, nblocked;      /* the mask */
  int done;
} sig_state;

static int fs_sigstate(void *arg) {
  sig_state *s = arg;
  struct sigaction sa;
  sigaction(SIGINT, NULL, &sa);
  s->int_dfl = sa.sa_handler == SIG_DFL;
  sigaction(SIGPIPE, NULL, &sa);
  s->pipe_dfl = sa.sa_handler == SIG_DFL;
  sigaction(SIGUSR1, NULL, &sa);
  s->usr1_dfl = sa.sa_handler == SIG_DFL;
  sigset_t m;
  pthread_sigmask(SIG_SETMASK, NULL, &m);
  s->usr1_blocked = sigismember(&m, SIGUSR1);
  for (int i = 1; i < 32; i++) s->nblocked += sigismember(&m, i) == 1;
  s->done = 1;
  return 0;
}

static void on_usr1(int sig) { (void)sig; }

static void signal_state(void **state) {
  (void)state;
  MPROC_PASS(mproc_set_start_method(MPROC_START_FORKSERVER));
  struct sigaction sa, old;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr1; /* installed after the server started */
  sigaction(SIGUSR1, &sa, &old);
  for (int blocked = 0; blocked < 2; blocked++) {
    sigset_t m, prev;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR1);
    pthread_sigmask(blocked ? SIG_BLOCK : SIG_UNBLOCK, &m, &prev);
    sig_state *st = heap_new(sizeof *st);
    memset(st, 0, sizeof *st);
    mproc_process_t *p = NULL;
    MPROC_PASS(mproc_process_create(&p, fs_sigstate, st, NULL));
    MPROC_PASS(mproc_process_start(p));
    pthread_sigmask(SIG_SETMASK, &prev, NULL);
    MPROC_PASS(mproc_process_join(p, 30));
    assert_int_equal(st->done, 1);
    assert_int_equal(st->int_dfl, 1);
    assert_int_equal(st->pipe_dfl, 1);
    assert_int_equal(st->usr1_dfl, 1);
    assert_int_equal(st->usr1_blocked, blocked);
    assert_int_equal(st->nblocked, blocked);
    mproc_process_destroy(p);
    mproc_heap_free(st);
  }
  sigaction(SIGUSR1, &old, NULL);
  mproc__forkserver_stop();
}

typedef struct thr {
  int base;  /* exit codes base+0..4 */
  int ok;    /* all five matched */
} thr;

static int ret_arg(void *arg) { return (int)(intptr_t)arg; }

static void *thread_starts(void *a) {
  thr *t = a;
  t->ok = 1;
  for (int i = 0; i < 5; i++) {
    mproc_process_t *p = NULL;
    int code = -1;
    if (mproc_process_create(&p, ret_arg, (void *)(intptr_t)(t->base + i), NULL) ||
        mproc_process_start(p) || mproc_process_join(p, 30) ||
        mproc_process_exitcode(p, &code) || code != t->base + i)
      t->ok = 0;
    mproc_process_destroy(p);
  }
  return NULL;
}

static void multithreaded_parent(void **state) {
  (void)state;
  MPROC_PASS(mproc_set_start_method(MPROC_START_FORKSERVER));
  pthread_t th[4];
  thr a[4];
  for (int i = 0; i < 4; i++) {
    a[i] = (thr){.base = 20 * (i + 1)};
    assert_int_equal(pthread_create(&th[i], NULL, thread_starts, &a[i]), 0);
  }
  for (int i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    assert_true(a[i].ok);
  }
  assert_int_equal(mproc_active_children(NULL, 0), 0);
  mproc__forkserver_stop();
}

/* With pidfds the requester watches the server on its pidfd; without, on
 * a death pipe the server holds (and its children do not). */
static void server_killed(void **state) {
  (void)state;
  for (int no_pidfd = 0; no_pidfd <= 1; no_pidfd++) {
    mproc__force_no_pidfd(no_pidfd);
    MPROC_PASS(mproc_set_start_method(MPROC_START_FORKSERVER));
    mproc_process_t *p = NULL;
    MPROC_PASS(mproc_process_create(&p, sleep_forever, NULL, NULL));
    MPROC_PASS(mproc_process_start(p));
    pid_t child = mproc_process_pid(p);
    pid_t server = mproc__forkserver_pid();
    kill(server, SIGKILL);
    /* Its children die with it, and the requester learns it. */
    MPROC_PASS(mproc_process_join(p, 30));
    int code = 0;
    MPROC_PASS(mproc_process_exitcode(p, &code));
    assert_int_equal(code, -SIGKILL);
    assert_true(mproc_test_wait_gone(child, 1.0));
    mproc_process_destroy(p);
    /* The next start replaces the dead server. */
    MPROC_PASS(mproc_process_create(&p, ret_arg, (void *)(intptr_t)9, NULL));
    MPROC_PASS(mproc_process_start(p));
    MPROC_PASS(mproc_process_join(p, 30));
    MPROC_PASS(mproc_process_exitcode(p, &code));
    assert_int_equal(code, 9);
    assert_true(mproc__forkserver_pid() != server);
    mproc_process_destroy(p);
    mproc__forkserver_stop();
  }
  mproc__force_no_pidfd(0);
}

static int write_ready(void *arg) {
  int *fd = arg;
  ssize_t w = write(*fd, "r", 1);
  (void)w;
  for (;;) pause();
  return 0;
}

/* A middle process uses the forkserver, reports its child's pid and is
 * SIGKILLed (or exits): the grandchild must be gone within 1 s. */
static void death_with_requester(int exit_normally) {
  int rep[2], ready[2];
  assert_int_equal(pipe(rep), 0);
  assert_int_equal(pipe(ready), 0);
  pid_t mid = fork();
  if (mid == 0) {
    /* The ready pipe exists before the server, so its children have it. */
    if (mproc_set_start_method(MPROC_START_FORKSERVER)) _exit(1);
    mproc_process_t *p = NULL;
    int fd = ready[1];
    if (mproc_process_create(&p, write_ready, &fd,
                             &(mproc_process_opts){.daemon = 1, .arg_size = sizeof fd}) ||
        mproc_process_start(p))
      _exit(2);
    char b;
    if (read(ready[0], &b, 1) != 1) _exit(3);
    pid_t pid = mproc_process_pid(p);
    if (write(rep[1], &pid, sizeof pid) != sizeof pid) _exit(4);
    if (exit_normally) exit(0);
    for (;;) pause();
  }
  close(rep[1]);
  close(ready[1]);
  pid_t gc = 0;
  assert_int_equal(read(rep[0], &gc, sizeof gc), (int)sizeof gc);
  assert_true(gc > 0);
  /* (After a normal exit it may already be gone: the middle does not wait.) */
  if (!exit_normally) {
    assert_true(mproc_test_pid_running(gc));
    kill(mid, SIGKILL);
  }
  int st;
  while (waitpid(mid, &st, 0) < 0 && errno == EINTR) {
  }
  /* SIGKILL: the 1 s promise. Normal exit: the daemon is terminated by the
   * exit handler, which may grant it a grace period; allow for that. */
  assert_true(mproc_test_wait_gone(gc, exit_normally ? 3.0 : 1.0));
  close(rep[0]);
  close(ready[0]);
}

static void requester_sigkill(void **state) {
  (void)state;
  death_with_requester(0);
}

static void requester_exit_daemon(void **state) {
  (void)state;
  death_with_requester(1);
}

static int fail_socketpair(int d, int t, int p, int fds[2]) {
  (void)d;
  (void)t;
  (void)p;
  (void)fds;
  errno = EMFILE;
  return -1;
}

/* The lowest fd number process pid does not use. */
static int lowest_free_fd(pid_t pid) {
  char path[64];
  for (int fd = 0;; fd++) {
    snprintf(path, sizeof path, "/proc/%d/fd/%d", (int)pid, fd);
    if (access(path, F_OK) != 0) return fd;
  }
}

static void fault_socketpair(void **state) {
  (void)state;
  int fds0 = mproc_test_count_fds();
  mproc__sys.socketpair = fail_socketpair;
  MPROC_ASSERT_RC(mproc_set_start_method(MPROC_START_FORKSERVER), -EMFILE);
  assert_int_equal(mproc__forkserver_pid(), 0);
  mproc__sys.socketpair = mproc__sys_real.socketpair;
  MPROC_PASS(mproc_set_start_method(MPROC_START_FORKSERVER));
  mproc_process_t *p = NULL;
  MPROC_PASS(mproc_process_create(&p, ret_arg, (void *)(intptr_t)3, NULL));
  /* The server makes each child's status socket, pidfd and spare: out of
   * fds there, a start fails with the server's error and nothing leaks.
   * What the server made ahead (the next status socket and spare) may
   * still serve a start or two: those children must work as usual. */
  pid_t server = mproc__forkserver_pid();
  struct rlimit lim, none;
  assert_int_equal(prlimit(server, RLIMIT_NOFILE, NULL, &lim), 0);
  none = lim;
  none.rlim_cur = (rlim_t)lowest_free_fd(server); /* every lower one taken */
  assert_int_equal(prlimit(server, RLIMIT_NOFILE, &none, NULL), 0);
  /* Each running child holds its pidfd and status socket in the server,
   * so the fds run out within a few starts of children that keep running. */
  mproc_process_t *q[8] = {0};
  int rc = 0, nq = 0;
  while (nq < 8 && rc == 0) {
    MPROC_PASS(mproc_process_create(&q[nq], sleep_forever, NULL, NULL));
    rc = mproc_process_start(q[nq++]);
  }
  for (int i = 0; i < nq; i++) {
    if (i < nq - 1 || rc == 0) {
      MPROC_PASS(mproc_process_kill(q[i]));
      MPROC_PASS(mproc_process_join(q[i], 30));
      int code = 0;
      MPROC_PASS(mproc_process_exitcode(q[i], &code));
      assert_int_equal(code, -SIGKILL);
    }
    mproc_process_destroy(q[i]);
  }
  MPROC_ASSERT_RC(rc, -EMFILE);
  assert_int_equal(prlimit(server, RLIMIT_NOFILE, &lim, NULL), 0);
  MPROC_PASS(mproc_process_start(p)); /* still startable */
  MPROC_PASS(mproc_process_join(p, 30));
  assert_int_equal(mproc__forkserver_pid(), server); /* same server */
  mproc_process_destroy(p);
  mproc__forkserver_stop();
  assert_int_equal(mproc_test_count_fds(), fds0);
  assert_int_equal(mproc_test_count_children(), 0);
}

/* The requester out of fds: the reply's pidfd and status socket do not
 * fit, start fails with -EMFILE, the child is killed (and reaped by the
 * server), nothing leaks and the server stays usable. */
static void fault_requester_emfile(void **state) {
  (void)state;
  int fds00 = mproc_test_count_fds();
  MPROC_PASS(mproc_set_start_method(MPROC_START_FORKSERVER));
  int fds0 = mproc_test_count_fds();
  mproc_process_t *p = NULL;
  MPROC_PASS(mproc_process_create(&p, sleep_forever, NULL, NULL));
  struct rlimit lim, low;
  assert_int_equal(getrlimit(RLIMIT_NOFILE, &lim), 0);
  /* No free fd below the limit: fill every hole below the highest open
   * fd, then set the limit just above it. */
  int hi = -1, fill[1024], nfill = 0;
  for (int fd = 0; fd < 1024; fd++)
    if (fcntl(fd, F_GETFD) >= 0) hi = fd;
  assert_true(hi >= 0);
  for (;;) {
    int fd = dup(hi);
    if (fd < 0) break;
    if (fd > hi) {
      close(fd);
      break;
    }
    fill[nfill++] = fd;
  }
  low = lim;
  low.rlim_cur = (rlim_t)hi + 1;
  assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
  int rc = mproc_process_start(p);
  assert_int_equal(setrlimit(RLIMIT_NOFILE, &lim), 0);
  for (int i = 0; i < nfill; i++) close(fill[i]);
  MPROC_ASSERT_RC(rc, -EMFILE);
  assert_int_equal(mproc_test_count_fds(), fds0);
  mproc_process_destroy(p);
  MPROC_PASS(mproc_process_create(&p, ret_arg, (void *)(intptr_t)4, NULL));
  MPROC_PASS(mproc_process_start(p));
  MPROC_PASS(mproc_process_join(p, 30));
  int code = -1;
  MPROC_PASS(mproc_process_exitcode(p, &code));
  assert_int_equal(code, 4);
  mproc_process_destroy(p);
  mproc__forkserver_stop();
  assert_int_equal(mproc_test_count_fds(), fds00);
  assert_int_equal(mproc_test_count_children(), 0);
}

/* The server's only child while no start is running: its spare. */
static pid_t await_spare(pid_t server) {
  double end = mproc_test_now() + 10;
  pid_t kid[8];
  char st[8];
  int n;
  while ((n = mproc_test_children_of(server, kid, st, 8)) != 1 || st[0] == 'Z') {
    if (mproc_test_now() > end) fail_msg("server has %d children, not one spare", n);
    usleep(1000);
  }
  return kid[0];
}

/* The server keeps one child forked ahead (the spare) that becomes the
 * next start's child; a spare killed while it waits is reaped at once (no
 * zombie) and the next start still works, with a fresh spare after it. */
static void spare_process(void **state) {
  (void)state;
  MPROC_PASS(mproc_set_start_method(MPROC_START_FORKSERVER));
  pid_t server = mproc__forkserver_pid();
  pid_t spare = await_spare(server);
  report *r = heap_new(sizeof *r);
  r->value = 9;
  mproc_process_t *p = NULL;
  MPROC_PASS(mproc_process_create(&p, fill_report, r, NULL));
  MPROC_PASS(mproc_process_start(p));
  assert_int_equal(mproc_process_pid(p), spare); /* the spare became it */
  MPROC_PASS(mproc_process_join(p, 30));
  assert_int_equal(r->pid, spare);
  mproc_process_destroy(p);
  pid_t next = await_spare(server);
  assert_true(next != spare);
  assert_int_equal(kill(next, SIGKILL), 0);
  double end = mproc_test_now() + 10;
  pid_t kid[8];
  char st[8];
  int n;
  while ((n = mproc_test_children_of(server, kid, st, 8)) > 0) { /* reaped, not a zombie */
    if (mproc_test_now() > end) fail_msg("killed spare %d not reaped (%c)", (int)next, st[0]);
    usleep(1000);
  }
  assert_int_equal(n, 0);
  r->value = 10;
  MPROC_PASS(mproc_process_create(&p, fill_report, r, NULL));
  MPROC_PASS(mproc_process_start(p));
  MPROC_PASS(mproc_process_join(p, 30));
  int code = -1;
  MPROC_PASS(mproc_process_exitcode(p, &code));
  assert_int_equal(code, 10);
  assert_int_equal(r->pid, mproc_process_pid(p));
  mproc_process_destroy(p);
  assert_true(await_spare(server) != next);
  assert_int_equal(mproc__forkserver_pid(), server); /* the same server all along */
  mproc_heap_free(r);
  mproc__forkserver_stop();
  assert_int_equal(mproc_test_count_children(), 0);
}

static int exit_itself(void *arg) {
  exit((int)(intptr_t)arg); /* not through mproc's return path */
}

static int underscore_exit(void *arg) {
  _exit((int)(intptr_t)arg);
}

/* Every way a child can end gives the right code: returned from its target
 * (the child leaves the code in a heap slot), exit() or _exit() of its own
 * and death by a signal (the server relays the code); with and without
 * pidfds. The slots all go back to the heap. */
static void exit_codes(void **state) {
  (void)state;
  static const struct {
    mproc_target_fn fn;
    intptr_t arg;
    int code;
  } cases[] = {
      {ret_arg, 0, 0},          {ret_arg, 7, 7},
      {ret_arg, 300, 300 & 0xff}, {exit_itself, 3, 3},
      {underscore_exit, 4, 4},  {raise_self, SIGTERM, -SIGTERM},
      {raise_self, SIGKILL, -SIGKILL}, {raise_self, SIGUSR1, -SIGUSR1},
  };
  for (int no_pidfd = 0; no_pidfd <= 1; no_pidfd++) {
    mproc__force_no_pidfd(no_pidfd);
    MPROC_PASS(mproc_set_start_method(MPROC_START_FORKSERVER));
    mproc_heap_stats st0, st;
    MPROC_PASS(mproc_heap_stats_get(&st0));
    for (int round = 0; round < 3; round++)
      for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mproc_process_t *p = NULL;
        MPROC_PASS(mproc_process_create(&p, cases[i].fn, (void *)cases[i].arg, NULL));
        MPROC_PASS(mproc_process_start(p));
        /* Joined at once, and after the server had time to reap. */
        if (round == 1) usleep(20000);
        MPROC_PASS(mproc_process_join(p, 30));
        int code = 1234;
        MPROC_PASS(mproc_process_exitcode(p, &code));
        if (code != cases[i].code)
          fail_msg("case %zu (no_pidfd %d): code %d, expected %d", i, no_pidfd, code,
                   cases[i].code);
        mproc_process_destroy(p);
      }
    MPROC_PASS(mproc_heap_stats_get(&st));
    assert_int_equal(st.live_blocks, st0.live_blocks);
    mproc__forkserver_stop();
  }
  mproc__force_no_pidfd(0);
}

static pid_t fail_fork(void) {
  errno = EAGAIN;
  return -1;
}

static void fault_server_fork(void **state) {
  (void)state;
  /* From a clean state, whatever ran before in this process. */
  MPROC_PASS(mproc_set_start_method(MPROC_START_FORK));
  mproc__forkserver_stop();
  int fds0 = mproc_test_count_fds();
  mproc__sys.fork = fail_fork;
  MPROC_ASSERT_RC(mproc_set_start_method(MPROC_START_FORKSERVER), -EAGAIN);
  mproc__sys.fork = mproc__sys_real.fork;
  assert_int_equal(mproc_test_count_fds(), fds0);
  assert_int_equal(mproc_test_count_children(), 0);
  assert_int_equal(mproc_get_start_method(), MPROC_START_FORK);
}

static void no_pidfd(void **state) {
  (void)state;
  mproc__force_no_pidfd(1);
  MPROC_PASS(mproc_set_start_method(MPROC_START_FORKSERVER));
  report *r = heap_new(sizeof *r);
  r->value = 5;
  mproc_process_t *p = NULL;
  MPROC_PASS(mproc_process_create(&p, fill_report, r, NULL));
  MPROC_PASS(mproc_process_start(p));
  MPROC_PASS(mproc_process_join(p, 30));
  int code = -1;
  MPROC_PASS(mproc_process_exitcode(p, &code));
  assert_int_equal(code, 5);
  assert_int_equal(r->ppid, getpid());
  mproc_process_destroy(p);
  MPROC_PASS(mproc_process_create(&p, sleep_forever, NULL, NULL));
  MPROC_PASS(mproc_process_start(p));
  struct pollfd q = {.fd = mproc_process_sentinel(p), .events = POLLIN};
  assert_int_equal(poll(&q, 1, 50), 0);
  assert_int_equal(mproc_process_is_alive(p), 1);
  MPROC_PASS(mproc_process_kill(p));
  assert_int_equal(poll(&q, 1, 30000), 1);
  MPROC_PASS(mproc_process_join(p, 0));
  MPROC_PASS(mproc_process_exitcode(p, &code));
  assert_int_equal(code, -SIGKILL);
  mproc_process_destroy(p);
  mproc_heap_free(r);
  mproc__forkserver_stop();
  mproc__force_no_pidfd(0);
}

typedef struct key_out {
  size_t len;                 /* the child's key length */
  unsigned char key[64];      /* its first bytes */
} key_out;

static int report_key(void *arg) {
  key_out *o = arg;
  const void *k;
  if (mproc_current_authkey(&k, &o->len)) return 1;
  memcpy(o->key, k, o->len < 64 ? o->len : 64);
  return 0;
}

static void authkey_follows_requester(void **state) {
  (void)state;
  MPROC_PASS(mproc_set_start_method(MPROC_START_FORKSERVER));
  MPROC_PASS(mproc_set_current_authkey("after-the-server", 16)); /* changed later */
  key_out *o = heap_new(sizeof *o);
  mproc_process_t *p = NULL;
  MPROC_PASS(mproc_process_create(&p, report_key, o, NULL));
  MPROC_PASS(mproc_process_start(p));
  MPROC_PASS(mproc_process_join(p, 30));
  assert_int_equal(o->len, 16);
  assert_memory_equal(o->key, "after-the-server", 16);
  mproc_process_destroy(p);
  mproc_heap_free(o);
  mproc__forkserver_stop();
}

/* The application's own fork() of a process with children and a server:
 * the copy sees none of them as its own, gets its own server, and exits
 * without waiting for its parent's children. */
static void raw_fork_child_is_clean(void **state) {
  (void)state;
  MPROC_PASS(mproc_set_start_method(MPROC_START_FORKSERVER));
  mproc_process_t *p = NULL;
  MPROC_PASS(mproc_process_create(&p, sleep_forever, NULL, NULL));
  MPROC_PASS(mproc_process_start(p));
  pid_t server = mproc__forkserver_pid();
  pid_t raw = fork();
  if (raw == 0) {
    int bad = 0;
    if (mproc_active_children(NULL, 0) != 0) bad |= 1;
    if (mproc__forkserver_pid() != 0) bad |= 2;
    mproc_process_t *q = NULL;
    int code = -1;
    if (mproc_process_create(&q, ret_arg, (void *)(intptr_t)7, NULL) || mproc_process_start(q) ||
        mproc_process_join(q, 30) || mproc_process_exitcode(q, &code) || code != 7)
      bad |= 4;
    if (mproc__forkserver_pid() == server || mproc__forkserver_pid() == 0) bad |= 8;
    mproc_process_destroy(q);
    MPROC_ASSERT_RC(mproc_process_join(p, 0), MPROC_ENOTOWNER);
    exit(bad); /* exit processing: must not wait for the parent's child */
  }
  int st = 0;
  double t0 = mproc_test_now();
  assert_int_equal(waitpid(raw, &st, 0), raw);
  assert_true(mproc_test_now() - t0 < 20);
  assert_true(WIFEXITED(st));
  assert_int_equal(WEXITSTATUS(st), 0);
  MPROC_PASS(mproc_process_kill(p));
  MPROC_PASS(mproc_process_join(p, 30));
  mproc_process_destroy(p);
  mproc__forkserver_stop();
}

static const struct CMUnitTest tests[] = {
    MPROC_TEST(raw_fork_child_is_clean),
    MPROC_TEST(authkey_follows_requester),
    MPROC_TEST(no_pidfd),
    MPROC_TEST(basic),
    MPROC_TEST(signals_and_sentinel),
    MPROC_TEST(signal_state),
    MPROC_TEST(big_arg),
    MPROC_TEST(multithreaded_parent),
    MPROC_TEST(server_killed),
    MPROC_TEST(requester_sigkill),
    MPROC_TEST(requester_exit_daemon),
    MPROC_TEST(spare_process),
    MPROC_TEST(exit_codes),
    MPROC_TEST(fault_socketpair),
    MPROC_TEST(fault_server_fork),
    MPROC_TEST(fault_requester_emfile),
};

MPROC_TEST_MAIN(tests)
