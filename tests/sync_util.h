/*
 * sync_util.h - helpers for the sync layer's tests (test_lock.c, test_sem.c,
 * ...): forking helper children that die with the test, collecting their
 * status and CPU time, and checks usable inside a child (cmocka's asserts
 * would longjmp into the runner's copy in the child).
 */
#ifndef MPROC_SYNC_UTIL_H
#define MPROC_SYNC_UTIL_H

#include <float.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

/* Inside a child: on failure print where and exit with status 99. */
#define CHILD_CHECK(cond)                                                  \
  do {                                                                     \
    if (!(cond)) {                                                         \
      fprintf(stderr, "child check failed %s:%d: %s\n", __FILE__, __LINE__, \
              #cond);                                                      \
      _exit(99);                                                           \
    }                                                                      \
  } while (0)
#define CHILD_RC(expr, want)                                                 \
  do {                                                                       \
    int c__rc = (int)(expr);                                                 \
    if (c__rc != (int)(want)) {                                              \
      fprintf(stderr, "child %s:%d: %s returned %d (%s), expected %d\n",    \
              __FILE__, __LINE__, #expr, c__rc, mproc_err_name(c__rc),       \
              (int)(want));                                                  \
      _exit(99);                                                             \
    }                                                                        \
  } while (0)

/* Fork a child running fn(arg); its return value is the exit status. The
 * child gets SIGKILL if the test process dies. */
static inline pid_t su_fork(int (*fn)(void *), void *arg) {
  pid_t ppid = getpid();
  pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != ppid) _exit(98);
    _exit(fn(arg));
  }
  assert_true(pid > 0);
  return pid;
}

/* Wait for a child: its exit status, or -signo when killed. Fills *ru
 * with its resource usage when ru is not NULL. */
static inline int su_wait(pid_t pid, struct rusage *ru) {
  int st = 0;
  struct rusage r = {0};
  while (wait4(pid, &st, 0, &r) < 0) {
    if (errno != EINTR) return -1000;
  }
  if (ru) *ru = r;
  else (void)r;
  if (WIFSIGNALED(st)) return -WTERMSIG(st);
  return WEXITSTATUS(st);
}

/* Wait until a child has died but leave it a zombie (not reaped): the
 * state a killed child is in until its parent gets round to reaping it. */
static inline void su_wait_zombie(pid_t pid) {
  siginfo_t si;
  while (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT) < 0 && errno == EINTR) {
  }
}

/* Wait for a child and require that it exited 0. */
#define SU_JOIN_OK(pid) assert_int_equal(su_wait((pid), NULL), 0)

static inline double su_cpu(const struct rusage *ru) {
  return (double)ru->ru_utime.tv_sec + (double)ru->ru_utime.tv_usec * 1e-6 +
         (double)ru->ru_stime.tv_sec + (double)ru->ru_stime.tv_usec * 1e-6;
}

static inline void su_sleep(double s) {
  struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
  while (nanosleep(&ts, &ts) < 0) {
  }
}

/* Poll until *flag (a shared int) reaches want, up to 20 s. For tests only
 * where an Event would itself be the thing under test. */
static inline int su_await(volatile int *flag, int want) {
  double end = mproc_test_now() + 20;
  while (__atomic_load_n(flag, __ATOMIC_ACQUIRE) != want) {
    if (mproc_test_now() > end) return 0;
    usleep(1000);
  }
  return 1;
}

/* Wait (up to 20 s) until process pid is asleep ('S' in /proc/pid/stat),
 * e.g. blocked on a futex after announcing it is about to wait. Returns 1
 * when seen asleep twice in a row 10 ms apart. */
static inline int su_await_sleeping(pid_t pid) {
  double end = mproc_test_now() + 20;
  int seen = 0;
  while (mproc_test_now() < end) {
    char path[64], buf[512] = {0};
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    (void)n;
    char *rp = strrchr(buf, ')');
    if (rp && rp[1] == ' ' && rp[2] == 'S') {
      if (++seen >= 2) return 1;
    } else {
      seen = 0;
    }
    usleep(10000);
  }
  return 0;
}

/* A heap block as a plain shared scratch area for test flags. */
static inline void *su_shared(size_t n) {
  void *p = NULL;
  assert_int_equal(mproc_heap_alloc(n, &p), 0);
  return p;
}

/* Timeouts the common contract rejects with -EINVAL: NaN (either sign),
 * infinities, below -1 (even barely), huge. */
static const double su_bad_timeouts[] __attribute__((unused)) = {
    NAN, -NAN, INFINITY, -INFINITY, -1.0000001, -1.5, -2, -1e300,
    -DBL_MAX, 1e300, DBL_MAX,
};
#define SU_N_BAD_TIMEOUTS (sizeof su_bad_timeouts / sizeof su_bad_timeouts[0])

/* Assert a wait called with timeout t returned want, naming both. */
#define SU_ASSERT_TIMEOUT_RC(expr, t, want)                                   \
  do {                                                                        \
    int su__rc = (int)(expr);                                                 \
    if (su__rc != (int)(want))                                                \
      fail_msg("%s with timeout %g returned %d (%s), expected %d (%s)", #expr, \
               (t), su__rc, mproc_err_name(su__rc), (int)(want),              \
               mproc_err_name((int)(want)));                                  \
  } while (0)

#endif
