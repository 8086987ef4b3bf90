/* platform.c - raw system calls and the fault-injection table. */
#include "platform/platform.h"

#include <errno.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <fcntl.h>
#include <limits.h>

#include "internal.h"

static int real_memfd_create(const char *name, unsigned flags) {
  return (int)syscall(SYS_memfd_create, name, flags);
}
static int real_pidfd_open(pid_t pid, unsigned flags) {
  return (int)syscall(SYS_pidfd_open, pid, flags);
}

const mproc__syscalls mproc__sys_real = {
    .fork = fork,
    .memfd_create = real_memfd_create,
    .mmap = mmap,
    .pidfd_open = real_pidfd_open,
    .pipe2 = pipe2,
    .socketpair = socketpair,
};
mproc__syscalls mproc__sys = {
    .fork = fork,
    .memfd_create = real_memfd_create,
    .mmap = mmap,
    .pidfd_open = real_pidfd_open,
    .pipe2 = pipe2,
    .socketpair = socketpair,
};

int mproc__futex_wait(_Atomic uint32_t *addr, uint32_t val,
                      const struct timespec *deadline) {
  /* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline, so a
   * retry after EINTR does not stretch the wait. */
  long r = syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_BITSET, val,
                   deadline, NULL, FUTEX_BITSET_MATCH_ANY);
  if (r == 0) return 0;
  return -errno;
}

int mproc__futex_wake(_Atomic uint32_t *addr, int n) {
  long r = syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE, n, NULL, NULL, 0);
  return r < 0 ? -errno : (int)r;
}

void mproc__now(struct timespec *ts) { clock_gettime(CLOCK_MONOTONIC, ts); }

double mproc__now_sec(void) {
  struct timespec ts;
  mproc__now(&ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

struct timespec *mproc__deadline(double timeout, struct timespec *dl) {
  if (timeout < 0) return NULL;
  mproc__now(dl);
  double whole = (double)(time_t)timeout;
  dl->tv_sec += (time_t)timeout;
  dl->tv_nsec += (long)((timeout - whole) * 1e9);
  if (dl->tv_nsec >= 1000000000L) {
    dl->tv_sec++;
    dl->tv_nsec -= 1000000000L;
  }
  return dl;
}

int mproc__deadline_passed(const struct timespec *dl) {
  if (!dl) return 0;
  struct timespec now;
  mproc__now(&now);
  return now.tv_sec > dl->tv_sec ||
         (now.tv_sec == dl->tv_sec && now.tv_nsec >= dl->tv_nsec);
}

double mproc__deadline_left(const struct timespec *dl) {
  if (!dl) return -1;
  struct timespec now;
  mproc__now(&now);
  double left = (double)(dl->tv_sec - now.tv_sec) +
                (double)(dl->tv_nsec - now.tv_nsec) * 1e-9;
  return left > 0 ? left : 0;
}

int mproc__deadline_ms(const struct timespec *dl) {
  if (!dl) return -1;
  double left = mproc__deadline_left(dl) * 1000.0;
  if (left > (double)INT_MAX) return INT_MAX;
  int ms = (int)left;
  if ((double)ms < left) ms++;
  return ms;
}

pid_t mproc__gettid(void) { return (pid_t)syscall(SYS_gettid); }

int mproc__pidfd_signal(int pidfd, int sig) {
  long r = syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
  return r < 0 ? -errno : 0;
}

int mproc__ncpu_online(void) {
  static _Atomic int cached;
  int n = atomic_load_explicit(&cached, memory_order_relaxed);
  if (n > 0) return n;
  long v = sysconf(_SC_NPROCESSORS_ONLN);
  n = v > 0 ? (int)v : 1;
  atomic_store_explicit(&cached, n, memory_order_relaxed);
  return n;
}
