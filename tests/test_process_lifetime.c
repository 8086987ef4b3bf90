/* test_process_lifetime.c - a child's life around its parent, for the
 * forkserver and spawn start methods where test_process.c covers fork only,
 * and for all three where nothing did: death with the parent after the
 * starting thread exited, exit-time handling of daemon and non-daemon
 * children, no SIGCHLD handler behind the application's back, no zombie
 * build-up, the sentinel in epoll. This binary is also the spawned child
 * (main() calls mproc_spawn_main first). Children report through a block of
 * the shared heap: spawn and forkserver children share no fds made later. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "process/process_int.h"

/* What a child and its parent (the "middle" process) report. */
typedef struct box {
  _Atomic int ready;     /* 1: the child is set up; < 0: the middle failed */
  _Atomic int release;   /* the parent lets a waiting child return */
  _Atomic int done;      /* the slow child finished its work */
  _Atomic int reported;  /* the middle's late atexit hook ran */
  int ignore_term;       /* the child ignores SIGTERM */
  pid_t pid;             /* the child's getpid() */
  int exitcode;          /* the child's exit code, seen at the middle's exit */
  double exit_secs;      /* how long the middle's exit handling took */
} box;

static box *box_new(void) {
  box *b = NULL;
  MPROC_PASS(mproc_heap_alloc(sizeof *b, (void **)&b));
  memset(b, 0, sizeof *b);
  return b;
}

/* ---- targets (registered by name for spawn) ---- */

static int lt_record_and_wait(void *arg) {
  box *b = arg;
  if (b->ignore_term) signal(SIGTERM, SIG_IGN);
  b->pid = getpid();
  atomic_store(&b->ready, 1);
  for (;;) pause();
  return 0;
}

static int lt_slow_done(void *arg) {
  box *b = arg;
  b->pid = getpid();
  atomic_store(&b->ready, 1);
  usleep(300 * 1000);
  atomic_store(&b->done, 1);
  return 7;
}

static int lt_wait_release(void *arg) {
  box *b = arg;
  while (!atomic_load(&b->release)) usleep(1000);
  return 5;
}

static int lt_quick(void *arg) {
  (void)arg;
  return 0;
}

static int lt_square(const void *in, size_t n, void *out, mproc_task_ctx *ctx) {
  (void)n;
  (void)ctx;
  *(long *)out = *(const long *)in * *(const long *)in;
  return 0;
}

/* Spin (with sleeps) until b->ready is set; returns it (0 on timeout). */
static int wait_ready(box *b, double secs) {
  double end = mproc_test_now() + secs;
  int r;
  while ((r = atomic_load(&b->ready)) == 0 && mproc_test_now() < end) usleep(1000);
  return r;
}

/* pid exists and is not a zombie (an orphaned zombie may wait a while for
 * init to reap it, and kill(pid, 0) still succeeds on it). */
static int is_running(pid_t pid) {
  char path[64], buf[512] = {0};
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  size_t r = fread(buf, 1, sizeof buf - 1, f);
  (void)r;
  fclose(f);
  char *rp = strrchr(buf, ')');
  return rp && rp[1] && rp[2] != 'Z' && rp[2] != 'X';
}

static void reap(pid_t pid) {
  int st;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
}

/* ---- the middle process ---- */

typedef struct mid_opts {
  int method;       /* the child's start method (opts, not the default) */
  int from_thread;  /* start the child from a thread that then exits */
  int daemon;       /* the child's daemon flag */
  int exit_after;   /* the middle exits normally once the child is set up */
  mproc_target_fn target;
} mid_opts;

/* The middle's globals: it is a fork of the test, so they are its own. */
static mid_opts g_mid;
static box *g_box;
static mproc_process_t *g_child;
static double g_exit_t0;

static void *mid_start(void *unused) {
  (void)unused;
  mproc_process_opts o = {.daemon = g_mid.daemon, .start_method = g_mid.method};
  int rc = mproc_process_create(&g_child, g_mid.target, g_box, &o);
  if (rc == 0) rc = mproc_process_start(g_child);
  if (rc) atomic_store(&g_box->ready, rc < 0 ? rc : -1);
  return NULL;
}

/* Registered before the library's own atexit handler (which is registered
 * at the first start), so it runs after it: it sees what exit handling did
 * to the child. */
static void mid_atexit_report(void) {
  g_box->exit_secs = mproc_test_now() - g_exit_t0;
  int code = 1000;
  if (mproc_process_exitcode(g_child, &code) != 0) code = 1000; /* still running */
  g_box->exitcode = code;
  atomic_store(&g_box->reported, 1);
}

/* Fork a middle process that starts an mproc child (reporting in b) and
 * then waits to be killed, or exits normally once the child is set up. */
static pid_t start_middle(mid_opts o, box *b) {
  pid_t mid = fork();
  assert_true(mid >= 0);
  if (mid != 0) return mid;
  g_mid = o;
  g_box = b;
  if (o.exit_after) atexit(mid_atexit_report);
  if (o.from_thread) {
    pthread_t t;
    if (pthread_create(&t, NULL, mid_start, NULL)) _exit(1);
    pthread_join(t, NULL); /* the starting thread is gone now */
  } else {
    mid_start(NULL);
  }
  if (!g_child) _exit(1);
  if (wait_ready(b, 30) != 1) {
    atomic_store(&b->ready, -1000); /* the child died or hung before it was set up */
    _exit(2);
  }
  if (o.exit_after) {
    g_exit_t0 = mproc_test_now();
    exit(0); /* atexit: terminate daemons, join the others */
  }
  for (;;) pause();
}

/* ---- dying with the parent after the starting thread exited ---- */

static void thread_exit_then_parent_sigkill(int method) {
  box *b = box_new();
  pid_t mid = start_middle((mid_opts){.method = method, .from_thread = 1,
                                      .target = lt_record_and_wait}, b);
  assert_int_equal(wait_ready(b, 30), 1);
  pid_t gc = b->pid;
  assert_true(gc > 0);
  /* The thread that called start has exited: the child lives on... */
  usleep(300 * 1000);
  assert_true(is_running(gc));
  /* ...until the parent dies: then it is gone within 1 s. */
  kill(mid, SIGKILL);
  reap(mid);
  assert_true(mproc_test_wait_gone(gc, 1.0));
  mproc_heap_free(b);
  mproc__forkserver_stop();
}

static void thread_exit_then_parent_sigkill_forkserver(void **state) {
  (void)state;
  thread_exit_then_parent_sigkill(MPROC_START_FORKSERVER);
}

static void thread_exit_then_parent_sigkill_spawn(void **state) {
  (void)state;
  thread_exit_then_parent_sigkill(MPROC_START_SPAWN);
}

/* ---- exit-time handling ---- */

/* A middle process starts a child and exits normally: its exit handling
 * must SIGTERM a daemon child (SIGKILL after the 1 s grace if it ignores
 * SIGTERM) and join a non-daemon one. The middle's late atexit hook tells
 * what became of the child before the middle was gone. */
static void exit_handling(int method, int daemon, int ignore_term) {
  box *b = box_new();
  b->ignore_term = ignore_term;
  pid_t mid = start_middle((mid_opts){.method = method, .daemon = daemon, .exit_after = 1,
                                      .target = daemon ? lt_record_and_wait : lt_slow_done},
                           b);
  reap(mid);
  assert_int_equal(atomic_load(&b->ready), 1);
  assert_int_equal(atomic_load(&b->reported), 1);
  if (!daemon) {
    /* Joined: it finished its work and returned before the middle ended. */
    assert_int_equal(atomic_load(&b->done), 1);
    assert_int_equal(b->exitcode, 7);
    assert_true(b->exit_secs >= 0.2);
  } else if (!ignore_term) {
    assert_int_equal(b->exitcode, -SIGTERM);
    assert_true(b->exit_secs < 0.9); /* no grace period spent */
  } else {
    assert_int_equal(b->exitcode, -SIGKILL);
    assert_true(b->exit_secs >= 0.9); /* the grace period, then SIGKILL */
  }
  assert_true(mproc_test_wait_gone(b->pid, 1.0));
  mproc_heap_free(b);
  mproc__forkserver_stop();
}

static void daemon_terminated_at_exit_forkserver(void **state) {
  (void)state;
  exit_handling(MPROC_START_FORKSERVER, 1, 0);
  exit_handling(MPROC_START_FORKSERVER, 1, 1);
}

static void daemon_terminated_at_exit_spawn(void **state) {
  (void)state;
  exit_handling(MPROC_START_SPAWN, 1, 0);
  exit_handling(MPROC_START_SPAWN, 1, 1);
}

static void nondaemon_joined_at_exit_forkserver(void **state) {
  (void)state;
  exit_handling(MPROC_START_FORKSERVER, 0, 0);
}

static void nondaemon_joined_at_exit_spawn(void **state) {
  (void)state;
  exit_handling(MPROC_START_SPAWN, 0, 0);
}

/* ---- SIGCHLD is the application's ---- */

static const int all_methods[] = {MPROC_START_FORK, MPROC_START_FORKSERVER, MPROC_START_SPAWN};

static _Atomic int g_sigchld_seen;

static void app_sigchld(int sig, siginfo_t *si, void *uc) {
  (void)sig;
  (void)si;
  (void)uc;
  atomic_fetch_add(&g_sigchld_seen, 1);
}

/* The disposition of SIGCHLD, for comparison across library calls. */
typedef struct chld_disp {
  void *handler; /* sa_handler or sa_sigaction */
  int flags;     /* the flags an application sets */
} chld_disp;

static chld_disp sigchld_now(void) {
  struct sigaction sa;
  assert_int_equal(sigaction(SIGCHLD, NULL, &sa), 0);
  chld_disp d = {.flags = sa.sa_flags & (SA_SIGINFO | SA_RESTART | SA_NOCLDSTOP | SA_NOCLDWAIT)};
  d.handler = (sa.sa_flags & SA_SIGINFO) ? (void *)(uintptr_t)sa.sa_sigaction
                                         : (void *)(uintptr_t)sa.sa_handler;
  return d;
}

static void assert_disp(chld_disp want, const char *after, int method) {
  chld_disp d = sigchld_now();
  if (d.handler != want.handler || d.flags != want.flags)
    fail_msg("SIGCHLD changed after %s (start method %d): handler %p flags %#x, want %p %#x",
             after, method, d.handler, d.flags, want.handler, want.flags);
}

/* A process started and joined, then a pool created, used and destroyed,
 * with each start method: the SIGCHLD disposition stays as it was. */
static void use_every_method(chld_disp want) {
  for (size_t i = 0; i < sizeof all_methods / sizeof all_methods[0]; i++) {
    int m = all_methods[i];
    mproc_process_t *p = NULL;
    MPROC_PASS(mproc_process_create(&p, lt_quick, NULL, &(mproc_process_opts){.start_method = m}));
    MPROC_PASS(mproc_process_start(p));
    MPROC_PASS(mproc_process_join(p, 30));
    int code = -1;
    MPROC_PASS(mproc_process_exitcode(p, &code));
    assert_int_equal(code, 0);
    mproc_process_destroy(p);
    assert_disp(want, "a process start and join", m);

    mproc_pool_t *pool = NULL;
    MPROC_PASS(mproc_pool_create(&pool, &(mproc_pool_opts){.processes = 2, .start_method = m}));
    long in[4] = {2, 3, 4, 5}, out[4] = {0};
    MPROC_PASS(mproc_pool_map(pool, lt_square, in, 4, sizeof(long), out, sizeof(long), NULL));
    for (int k = 0; k < 4; k++) assert_int_equal(out[k], in[k] * in[k]);
    MPROC_PASS(mproc_pool_destroy(pool));
    assert_disp(want, "a pool's create, map and destroy", m);
  }
  mproc__forkserver_stop();
}

static void sigchld_left_default(void **state) {
  (void)state;
  chld_disp dfl = {.handler = (void *)(uintptr_t)SIG_DFL, .flags = 0};
  assert_disp(dfl, "nothing", 0);
  use_every_method(dfl);
}

static void sigchld_app_handler_kept(void **state) {
  (void)state;
  struct sigaction sa = {.sa_sigaction = app_sigchld, .sa_flags = SA_SIGINFO | SA_RESTART};
  sigemptyset(&sa.sa_mask);
  assert_int_equal(sigaction(SIGCHLD, &sa, NULL), 0);
  chld_disp mine = {.handler = (void *)(uintptr_t)app_sigchld, .flags = SA_SIGINFO | SA_RESTART};
  use_every_method(mine);
  /* And it still gets the signals: the library did not block SIGCHLD. */
  assert_true(atomic_load(&g_sigchld_seen) > 0);
  sigset_t cur;
  pthread_sigmask(SIG_SETMASK, NULL, &cur);
  assert_false(sigismember(&cur, SIGCHLD));
  signal(SIGCHLD, SIG_DFL);
}

/* ---- no zombie build-up ---- */

#define NQUICK 200
/* Children that end between a start's reaping and our look are zombies for
 * a moment: on a loaded 2-CPU machine a burst of ~25 was seen. Without
 * reaping the count would climb towards NQUICK. */
#define ZOMBIE_BOUND (NQUICK / 4)

/* Start NQUICK short children and never join them: the starts (and, at the
 * end, mproc_active_children) reap the finished ones, as docs/process.md
 * promises, so the zombies never pile up. */
static void zombies_bounded(int method) {
  static mproc_process_t *ps[NQUICK];
  int worst = 0;
  pid_t reaper = getpid();
  for (int i = 0; i < NQUICK; i++) {
    MPROC_PASS(mproc_process_create(&ps[i], lt_quick, NULL,
                                    &(mproc_process_opts){.start_method = method}));
    MPROC_PASS(mproc_process_start(ps[i]));
    if (method == MPROC_START_FORKSERVER) reaper = mproc__forkserver_pid();
    if (i % 5 == 4) {
      int z = mproc_test_zombies_of(reaper);
      assert_true(z >= 0);
      if (z > worst) worst = z;
    }
  }
  if (worst > ZOMBIE_BOUND)
    fail_msg("%d zombies at once while starting %d children (bound %d)", worst, NQUICK,
             ZOMBIE_BOUND);
  double end = mproc_test_now() + 30;
  while (mproc_active_children(NULL, 0) > 0 && mproc_test_now() < end) usleep(2000);
  assert_int_equal(mproc_active_children(NULL, 0), 0);
  /* The forkserver reaps its children on its own time: allow it a moment. */
  end = mproc_test_now() + 5;
  while (mproc_test_zombies_of(reaper) > 0 && mproc_test_now() < end) usleep(2000);
  assert_int_equal(mproc_test_zombies_of(reaper), 0);
  for (int i = 0; i < NQUICK; i++) {
    int code = -1;
    MPROC_PASS(mproc_process_exitcode(ps[i], &code));
    assert_int_equal(code, 0);
    mproc_process_destroy(ps[i]);
  }
  mproc__forkserver_stop();
}

static void zombies_bounded_fork(void **state) {
  (void)state;
  zombies_bounded(MPROC_START_FORK);
}

static void zombies_bounded_forkserver(void **state) {
  (void)state;
  zombies_bounded(MPROC_START_FORKSERVER);
}

static void zombies_bounded_spawn(void **state) {
  (void)state;
  zombies_bounded(MPROC_START_SPAWN);
}

/* ---- the sentinel in epoll ---- */

/* epoll reports the sentinel readable only once the child has ended, with
 * pidfds and with the no-pidfd fallback (death pipe / status socket). */
static void sentinel_epoll(int method) {
  for (int no_pidfd = 0; no_pidfd <= 1; no_pidfd++) {
    mproc__force_no_pidfd(no_pidfd);
    box *b = box_new();
    mproc_process_t *p = NULL;
    /* daemon: a failed assertion then ends the test at once instead of
     * exit handling joining a child nobody releases. */
    MPROC_PASS(mproc_process_create(&p, lt_wait_release, b,
                                    &(mproc_process_opts){.start_method = method, .daemon = 1}));
    MPROC_PASS(mproc_process_start(p));
    int ep = epoll_create1(EPOLL_CLOEXEC);
    assert_true(ep >= 0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0x5e47};
    assert_int_equal(epoll_ctl(ep, EPOLL_CTL_ADD, mproc_process_sentinel(p), &ev), 0);
    struct epoll_event got[2];
    assert_int_equal(epoll_wait(ep, got, 2, 100), 0); /* running: not readable */
    atomic_store(&b->release, 1);
    int n;
    while ((n = epoll_wait(ep, got, 2, 30000)) < 0 && errno == EINTR) {
    }
    assert_int_equal(n, 1);
    /* A pidfd is readable. The fallback's death pipe at EOF reports
     * EPOLLHUP instead (Linux pipes do), which epoll always delivers. */
    if (!(got[0].events & (no_pidfd ? EPOLLIN | EPOLLHUP : EPOLLIN)))
      fail_msg("sentinel events %#x (no_pidfd %d)", got[0].events, no_pidfd);
    assert_int_equal(got[0].data.u64, 0x5e47);
    /* Readable sentinel => joinable now. */
    MPROC_PASS(mproc_process_join(p, 0));
    int code = -1;
    MPROC_PASS(mproc_process_exitcode(p, &code));
    assert_int_equal(code, 5);
    close(ep);
    mproc_process_destroy(p);
    mproc_heap_free(b);
    mproc__forkserver_stop(); /* the next round's server inherits the mode */
  }
  mproc__force_no_pidfd(0);
}

static void sentinel_epoll_fork(void **state) {
  (void)state;
  sentinel_epoll(MPROC_START_FORK);
}

static void sentinel_epoll_forkserver(void **state) {
  (void)state;
  sentinel_epoll(MPROC_START_FORKSERVER);
}

static void sentinel_epoll_spawn(void **state) {
  (void)state;
  sentinel_epoll(MPROC_START_SPAWN);
}

static const struct CMUnitTest tests[] = {
    MPROC_TEST(thread_exit_then_parent_sigkill_forkserver),
    MPROC_TEST(thread_exit_then_parent_sigkill_spawn),
    MPROC_TEST(daemon_terminated_at_exit_forkserver),
    MPROC_TEST(daemon_terminated_at_exit_spawn),
    MPROC_TEST(nondaemon_joined_at_exit_forkserver),
    MPROC_TEST(nondaemon_joined_at_exit_spawn),
    MPROC_TEST(sigchld_left_default),
    MPROC_TEST(sigchld_app_handler_kept),
    MPROC_TEST(zombies_bounded_fork),
    MPROC_TEST(zombies_bounded_forkserver),
    MPROC_TEST(zombies_bounded_spawn),
    MPROC_TEST(sentinel_epoll_fork),
    MPROC_TEST(sentinel_epoll_forkserver),
    MPROC_TEST(sentinel_epoll_spawn),
};

int main(int argc, char **argv) {
  mproc_register_target("lt_record_and_wait", lt_record_and_wait);
  mproc_register_target("lt_slow_done", lt_slow_done);
  mproc_register_target("lt_wait_release", lt_wait_release);
  mproc_register_target("lt_quick", lt_quick);
  mproc_pool_register("lt_square", lt_square);
  int rc = mproc_spawn_main(argc, argv); /* never returns in a spawned child */
  if (rc) return 1;
  return mproc_test_main(tests, sizeof tests / sizeof tests[0], argc, argv, __FILE__);
}
