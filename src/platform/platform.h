/*
 * platform.h - the only place that makes raw system calls.
 *
 * Fork contract: fork is the default start method, so everything here must
 * keep working in a child created by fork() from any thread. Per-process
 * state is keyed by pid and reset in the child (see mproc__pid_changed()).
 *
 * System calls that tests want to fail on purpose go through the table
 * mproc__sys (SQLite aSyscall[] style): a test replaces an entry to inject
 * ENOMEM/EMFILE/EAGAIN on the Nth call and checks nothing leaks.
 */
#ifndef MPROC_PLATFORM_H
#define MPROC_PLATFORM_H

#include <signal.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

typedef struct mproc__syscalls {
  pid_t (*fork)(void);
  int (*memfd_create)(const char *name, unsigned flags);
  void *(*mmap)(void *addr, size_t len, int prot, int flags, int fd, off_t off);
  int (*pidfd_open)(pid_t pid, unsigned flags);
  int (*pipe2)(int fds[2], int flags);
  int (*socketpair)(int domain, int type, int proto, int fds[2]);
} mproc__syscalls;

/* The live table; tests may overwrite entries (restore them after). */
extern mproc__syscalls mproc__sys;
/* The real implementations, for tests that wrap them. */
extern const mproc__syscalls mproc__sys_real;

/* ---- futex (shared, not PRIVATE: the words live in the shared heap) ---- */

/* Sleep while *addr == val, until woken or the absolute CLOCK_MONOTONIC
 * deadline (NULL = forever). Returns 0 when woken (or spuriously), -EAGAIN
 * if *addr != val, -ETIMEDOUT, -EINTR. */
int mproc__futex_wait(_Atomic uint32_t *addr, uint32_t val,
                      const struct timespec *deadline);
/* Wake up to n waiters (INT32_MAX = all). Returns the number woken. */
int mproc__futex_wake(_Atomic uint32_t *addr, int n);

/* ---- time and deadlines ---- */

/* CLOCK_MONOTONIC now. */
void mproc__now(struct timespec *ts);
double mproc__now_sec(void);
/* Turn a timeout in seconds (-1 forever, 0 poll, > 0) into an absolute
 * deadline. Returns NULL for forever, else dl. */
struct timespec *mproc__deadline(double timeout, struct timespec *dl);
/* Non-zero when the deadline has passed (NULL never passes). */
int mproc__deadline_passed(const struct timespec *dl);
/* Seconds left until dl (>= 0), or -1 for NULL. */
double mproc__deadline_left(const struct timespec *dl);
/* Milliseconds for poll(): -1 for NULL, else ceil(left ms). */
int mproc__deadline_ms(const struct timespec *dl);

/* ---- processes ---- */

pid_t mproc__gettid(void);
/* pidfd_send_signal(2). */
int mproc__pidfd_signal(int pidfd, int sig);
/* Short CPU pause for spin loops. */
static inline void mproc__cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

/* Number of online CPUs (sysconf), for spin decisions. */
int mproc__ncpu_online(void);

#endif
