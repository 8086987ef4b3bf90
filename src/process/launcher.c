/*
 * launcher.c - fork from a thread that lives as long as the process.
 *
 * Why: PR_SET_PDEATHSIG fires when the *thread* that forked the child
 * exits, not when its process does. A child forked from a worker thread
 * would be SIGKILLed as soon as that thread returned. So a fork requested
 * from the main thread runs right there (the main thread lives as long as
 * the process, unless the program calls pthread_exit() from main - see
 * docs/process.md), and a fork requested from any other thread is handed to
 * the "launcher": one library-owned thread, created on first use with every
 * signal blocked, that never exits.
 *
 * Requests are served one at a time (g_req); the requester sleeps on g_cv
 * until its request is done. The caller's signal mask travels with the
 * request so the child restores the mask of the thread that asked; so does
 * its CPU affinity, which the launcher takes on before it forks, so the
 * child inherits the affinity of the thread that asked, as a fork() from
 * that thread would.
 *
 * A child has no launcher thread: mproc__launcher_reset_child() forgets it.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include "platform/platform.h"
#include "process/process_int.h"

typedef struct launch_req {
  int (*fn)(void *ctx, const sigset_t *caller_mask); /* work to run */
  void *ctx;          /* its argument */
  sigset_t mask;      /* the requesting thread's signal mask */
  cpu_set_t cpus;     /* its CPU affinity */
  int have_cpus;      /* cpus is valid */
  int rc;             /* fn's result */
  int done;           /* set by the launcher when rc is valid */
} launch_req;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static int g_running;     /* the launcher thread exists in this process */
static launch_req *g_req; /* request being served, NULL when idle */

static void *launcher_main(void *unused) {
  (void)unused;
  pthread_mutex_lock(&g_mu);
  for (;;) {
    while (!g_req || g_req->done) pthread_cond_wait(&g_cv, &g_mu);
    launch_req *r = g_req;
    pthread_mutex_unlock(&g_mu);
    cpu_set_t mine;
    if (r->have_cpus && (sched_getaffinity(0, sizeof mine, &mine) || !CPU_EQUAL(&mine, &r->cpus)))
      sched_setaffinity(0, sizeof r->cpus, &r->cpus); /* failure: keep ours */
    int rc = r->fn(r->ctx, &r->mask); /* only the parent returns here */
    pthread_mutex_lock(&g_mu);
    r->rc = rc;
    r->done = 1;
    pthread_cond_broadcast(&g_cv);
  }
  return NULL;
}

/* Caller holds g_mu. */
static int launcher_start_locked(void) {
  if (g_running) return 0;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  /* The new thread inherits the creator's mask: make it "all blocked", so
   * process-directed signals never land on the launcher. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_t t;
  int e = pthread_create(&t, &attr, launcher_main, NULL);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  pthread_attr_destroy(&attr);
  if (e) return -e;
  g_running = 1;
  return 0;
}

int mproc__run_on_long_lived_thread(int (*fn)(void *ctx, const sigset_t *caller_mask),
                                    void *ctx) {
  if (mproc__is_main_thread()) {
    /* The main thread: fork here, with every signal blocked so that no
     * handler runs in the child before it reset its state (libuv). */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = fn(ctx, &old);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
  }
  launch_req r = {.fn = fn, .ctx = ctx, .rc = 0, .done = 0};
  pthread_sigmask(SIG_SETMASK, NULL, &r.mask);
  r.have_cpus = sched_getaffinity(0, sizeof r.cpus, &r.cpus) == 0;
  pthread_mutex_lock(&g_mu);
  int rc = launcher_start_locked();
  if (rc) {
    pthread_mutex_unlock(&g_mu);
    return rc;
  }
  while (g_req) pthread_cond_wait(&g_cv, &g_mu); /* one at a time */
  g_req = &r;
  pthread_cond_broadcast(&g_cv);
  while (!r.done) pthread_cond_wait(&g_cv, &g_mu);
  g_req = NULL;
  pthread_cond_broadcast(&g_cv);
  pthread_mutex_unlock(&g_mu);
  return r.rc;
}

void mproc__launcher_reset_child(void) {
  /* Only the forking thread survives fork: no launcher here, and the
   * mutex/condvar copies may be in any state. */
  g_mu = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
  g_cv = (pthread_cond_t)PTHREAD_COND_INITIALIZER;
  g_running = 0;
  g_req = NULL;
}
