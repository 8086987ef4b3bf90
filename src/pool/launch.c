/*
 * launch.c - pool workers started through the fork server
 * (MPROC_START_FORKSERVER) or by exec (MPROC_START_SPAWN), and the kick
 * relay these pools need.
 *
 * DESIGN
 *  - A worker of any method runs the same code (mproc__pool_worker_main)
 *    on the pool's shared state, which lives in the family heap: a forkserver
 *    child inherits the heap mapping from the server, a spawned child
 *    re-attaches it at the same address (mproc_spawn_main). All it needs is
 *    where that state is: {pshared *, slot, incarnation} travel as the
 *    target's arg bytes, copied by the process layer (through the server's
 *    socket, or a heap block for spawn).
 *  - The process layer's start paths are used as they are
 *    (mproc__forkserver_start / mproc__spawn_start on a private
 *    struct mproc_process that is never put on its registry): the worker is
 *    not a Process of the owner (not in mproc_active_children, not joined at
 *    exit), and the pool keeps reaping it itself:
 *      spawn:      our child (forked by the launcher thread), so the pool
 *                  thread reaps it with waitid and gets its rusage, as for
 *                  fork workers;
 *      forkserver: the server's child: the pidfd it hands over tells the
 *                  death, the exit status comes on the request's status
 *                  socket (mproc__forkserver_poll), and there is no rusage
 *                  (peak RSS reported as unknown, -1).
 *  - The spawn target must be registered in the exec'd program before
 *    mproc_spawn_main() looks it up: a constructor registers it whenever
 *    this file is linked (every program that uses pools).
 *  - Death with the owner: spawned workers are forked by the launcher
 *    thread (lives as long as the process) with PR_SET_PDEATHSIG;
 *    forkserver workers die with the server, which dies with its requester.
 *  - Kicks: a fork worker wakes the pool thread by writing the eventfd it
 *    inherited. Workers of the other methods have no copy of it, and no
 *    portable way to get one (pidfd_getfd needs ptrace rights over the
 *    owner), so they bump a futex word in the shared state instead and a
 *    small relay thread in the owner turns that into an eventfd write. It
 *    only matters when the pool thread sleeps (kicks are skipped otherwise),
 *    and sync calls never need the pool thread: apply and map latency do not
 *    depend on the method.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <unistd.h>

/* process_int.h names its handle states PS_*, as pool_internal.h does. */
#define PS_CREATED PROC_PS_CREATED
#define PS_RUNNING PROC_PS_RUNNING
#define PS_ENDED PROC_PS_ENDED
#include "process/process_int.h"
#undef PS_CREATED
#undef PS_RUNNING
#undef PS_ENDED

#include "heap/heap.h"
#include "platform/platform.h"
#include "pool/pool_internal.h"

#define WSTART_MAGIC MPROC__MAGIC('P', 'W', 'S', 'T')

/* What a forkserver or spawn worker is told (copied bytes). */
typedef struct wstart {
  uint32_t magic;
  uint32_t slot;
  uint32_t gen;
  uint32_t pad;
  pshared *sh; /* heap address: the same in every process of the family */
} wstart;

/* The worker's target, run by mproc__child_main in the new process. */
static int worker_target(void *arg) {
  const wstart *w = arg;
  /* The pool thread that asked has every signal blocked, and the child
   * starts with that mask: give the worker a fork worker's state. */
  signal(SIGINT, SIG_IGN);
  sigset_t none;
  sigemptyset(&none);
  pthread_sigmask(SIG_SETMASK, &none, NULL);
  pshared *sh = w ? w->sh : NULL;
  if (!w || w->magic != WSTART_MAGIC || !mproc__heap_contains(sh) || sh->magic != PSH_MAGIC ||
      w->slot >= sh->nworkers || sh->w[w->slot].gen != w->gen)
    return 2; /* not for this pool any more: exit, the pool sees a death */
  mproc__pool_worker_main(sh, (int)w->slot);
}

__attribute__((constructor)) static void register_worker_target(void) {
  mproc_register_target(POOL_WORKER_TARGET, worker_target);
}

void mproc__pool_fork_identity(int slot, pid_t owner) {
  /* Python's names: ForkPoolWorker-N, as the others' below. The child has
   * no other thread: nothing else reads the identity meanwhile. */
  char name[48];
  snprintf(name, sizeof name, "ForkPoolWorker-%d", slot + 1);
  mproc__self_set(name, "", 0, owner);
}

int mproc__pool_launch(mproc_pool_t *p, int i) {
  /* Called by the pool thread with p->mu held; drops it while starting. */
  pshared *sh = p->sh;
  int fs = sh->method == MPROC_START_FORKSERVER;
  struct mproc_process *pr = calloc(1, sizeof *pr);
  if (!pr) return -ENOMEM;
  wstart w = {.magic = WSTART_MAGIC, .slot = (uint32_t)i, .gen = sh->w[i].gen, .sh = sh};
  pr->magic = MPROC__PROC_MAGIC;
  pr->method = sh->method;
  pr->owner = getpid();
  pr->pidfd = -1;
  pr->status_fd = -1;
  pr->target = worker_target;
  pr->arg_copy = &w; /* read during the start call only */
  pr->arg_size = sizeof w;
  pr->arg = &w;
  snprintf(pr->name, sizeof pr->name, "%sPoolWorker-%d", fs ? "ForkServer" : "Spawn", i + 1);
  snprintf(pr->target_name, sizeof pr->target_name, "%s", POOL_WORKER_TARGET);
  /* The start blocks until the worker runs (spawn: an exec, ~1.4 ms): let
   * submitters, cancels and terminate take the lock meanwhile. Only the
   * pool thread starts workers, and slot i has no process (pidfd -1) until
   * it is registered below, so nothing else touches the slot. */
  pthread_mutex_unlock(&p->mu);
  int rc = fs ? mproc__forkserver_start(pr) : mproc__spawn_start(pr);
  pthread_mutex_lock(&p->mu);
  if (rc) {
    free(pr);
    return rc;
  }
  struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
  if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, pr->pidfd, &ev) < 0) {
    rc = -errno;
    if (pr->fd_is_pidfd) mproc__pidfd_signal(pr->pidfd, SIGKILL);
    else kill(pr->pid, SIGKILL);
    if (!fs) {
      while (waitpid(pr->pid, NULL, 0) < 0 && errno == EINTR) {
      }
    }
    /* forkserver: the server reaps it and drops the status we ignore. */
    close(pr->pidfd);
    if (pr->status_fd >= 0) close(pr->status_fd);
    free(pr);
    return rc;
  }
  p->pidfd[i] = pr->pidfd;
  p->is_pidfd[i] = pr->fd_is_pidfd;
  p->pid[i] = pr->pid;
  sh->w[i].pid = pr->pid;
  p->nalive++;
  if (fs) {
    p->fsproc[i] = pr; /* keeps the status socket */
  } else {
    free(pr); /* spawn: a child of ours, reaped like a fork worker */
  }
  if (p->state == PS_TERMINATED) {
    /* terminate ran while we started it, and killed the others */
    p->kill_reason[i] = -ECANCELED;
    mproc__pool_signal(p, i, SIGKILL);
  }
  return 0;
}

int mproc__pool_fs_reap(mproc_pool_t *p, int i, int *signo, int *status) {
  struct mproc_process *pr = p->fsproc[i];
  int code;
  if (!pr || !mproc__forkserver_poll(pr, 5.0, &code)) return 0;
  /* 0..255: exit status; -signo: killed; -ECHILD: the server's report
   * never came (it is itself dead: its children got SIGKILL). */
  if (code >= 0) *status = code;
  else if (code == -ECHILD) *signo = SIGKILL;
  else *signo = -code;
  return 1;
}

void mproc__pool_fs_forget(mproc_pool_t *p, int i) {
  if (!p->fsproc || !p->fsproc[i]) return;
  if (p->fsproc[i]->status_fd >= 0) close(p->fsproc[i]->status_fd);
  free(p->fsproc[i]);
  p->fsproc[i] = NULL;
}

/* ---- the kick relay ---- */

static void *relay_main(void *arg) {
  mproc_pool_t *p = arg;
  pshared *sh = p->sh;
  /* `seen` is the last value relayed: a kick landing while we write the
   * eventfd makes the next wait return at once instead of being lost. It
   * starts at 0, the value before any worker existed (the relay starts
   * first): a kick made before this thread ran is still relayed. */
  uint32_t seen = 0;
  for (;;) {
    if (atomic_load(&sh->relay_stop)) break;
    mproc__futex_wait(&sh->kickw, seen, NULL);
    uint32_t now = atomic_load(&sh->kickw);
    if (now == seen) continue; /* spurious wake-up */
    seen = now;
    uint64_t one = 1;
    ssize_t r = write(sh->evfd, &one, sizeof one);
    (void)r;
  }
  return NULL;
}

int mproc__pool_relay_start(mproc_pool_t *p) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int e = pthread_create(&p->relay_thr, NULL, relay_main, p);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (e) return -e;
  p->relay_started = 1;
  return 0;
}

void mproc__pool_relay_stop(mproc_pool_t *p) {
  if (!p->relay_started) return;
  atomic_store(&p->sh->relay_stop, 1);
  atomic_fetch_add(&p->sh->kickw, 1);
  mproc__futex_wake(&p->sh->kickw, INT32_MAX);
  pthread_join(p->relay_thr, NULL);
  p->relay_started = 0;
}
