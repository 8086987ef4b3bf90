/*
 * ipcutil.c - small shared pieces of the ipc layer: eventcount sleep, thread
 * identity cached across fork, owner liveness for crash recovery, and the
 * spin budget.
 *
 * Liveness is how queues recover from a process killed mid-operation: slots
 * claimed by a thread carry its tid; a waiter that finds a claim lasting
 * longer than a few milliseconds asks whether that tid still runs, and takes
 * the claim over if not (see queue.c).
 */
#include "ipc/ipc.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int mproc__ec_sleep(_Atomic uint32_t *ec, uint32_t v, const struct timespec *deadline,
                    long slice_ns) {
  struct timespec dl, *use = (struct timespec *)deadline;
  if (slice_ns > 0) {
    mproc__now(&dl);
    dl.tv_nsec += slice_ns;
    while (dl.tv_nsec >= 1000000000L) {
      dl.tv_sec++;
      dl.tv_nsec -= 1000000000L;
    }
    if (!deadline || dl.tv_sec < deadline->tv_sec ||
        (dl.tv_sec == deadline->tv_sec && dl.tv_nsec < deadline->tv_nsec))
      use = &dl;
  }
  int rc = mproc__futex_wait(ec, v, use);
  if (rc == -ETIMEDOUT && use == deadline) return -ETIMEDOUT;
  if (deadline && mproc__deadline_passed(deadline)) return -ETIMEDOUT;
  return 0;
}

static _Thread_local uint32_t t_tid;
static _Thread_local unsigned t_gen;
static _Atomic unsigned g_gen = 1;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static void on_child(void) { atomic_fetch_add(&g_gen, 1); }
static void reg(void) { pthread_atfork(NULL, NULL, on_child); }

uint32_t mproc__ipc_tid(void) {
  unsigned gen = atomic_load_explicit(&g_gen, memory_order_relaxed);
  if (MPROC_UNLIKELY(t_gen != gen)) {
    pthread_once(&g_once, reg);
    t_tid = (uint32_t)mproc__gettid();
    t_gen = atomic_load_explicit(&g_gen, memory_order_relaxed);
  }
  return t_tid;
}

int mproc__tid_dead(uint32_t tid) {
  if (tid == 0) return 1;
  /* /proc/<tid>/stat exists for any thread id (not only group leaders);
   * a zombie or dead task ('Z', 'X') no longer touches shared memory. */
  char path[48], buf[256];
  snprintf(path, sizeof path, "/proc/%u/stat", tid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT || errno == ESRCH;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return 1;
  buf[n] = 0;
  char *rp = strrchr(buf, ')');
  if (!rp || rp[1] != ' ') return 0;
  return rp[2] == 'Z' || rp[2] == 'X' || rp[2] == 'x';
}

unsigned mproc__ipc_spin_budget(void) {
  /* Spinning only helps when the waker runs on another CPU. ~2000 pauses is
   * a few microseconds on current x86 (pause ~ 10-140 cycles). */
  return mproc__ncpu_online() > 1 ? 2000u : 0u;
}
