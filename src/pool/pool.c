/*
 * pool.c - pool lifecycle (create, close, terminate, join, destroy), the
 * task-function registry, progress and stats.
 *
 * The handle itself lives in the shared heap so that a call on a destroyed
 * pool reads a dead magic number (-EDESTROYED) instead of freed malloc
 * memory; only the owner process uses it (others get -ENOTOWNER).
 *
 * States: RUNNING -> CLOSED (close) -> JOINED (join), or RUNNING/CLOSED ->
 * TERMINATED (terminate) -> JOINED. destroy = terminate if needed + join +
 * free, which is what Python's `with Pool() as p:` does on exit.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "heap/heap.h"
#include "platform/platform.h"
#include "pool/pool_internal.h"

/* ---- registry (process-local; inherited by forked workers) ---- */

#define REG_MAX 256
static struct {
  char name[MPROC_POOL_NAME_MAX + 1];
  mproc_task_fn fn;
} g_reg[REG_MAX];
static int g_nreg;
static pthread_mutex_t g_reg_mu = PTHREAD_MUTEX_INITIALIZER;

int mproc_pool_register(const char *name, mproc_task_fn fn) {
  if (!name || !*name || !fn || strlen(name) > MPROC_POOL_NAME_MAX) return -EINVAL;
  pthread_mutex_lock(&g_reg_mu);
  int rc = 0;
  for (int i = 0; i < g_nreg; i++)
    if (strcmp(g_reg[i].name, name) == 0) {
      rc = g_reg[i].fn == fn ? 0 : -EEXIST;
      pthread_mutex_unlock(&g_reg_mu);
      return rc;
    }
  if (g_nreg == REG_MAX) {
    rc = -ENOSPC;
  } else {
    strcpy(g_reg[g_nreg].name, name);
    g_reg[g_nreg].fn = fn;
    g_nreg++;
  }
  pthread_mutex_unlock(&g_reg_mu);
  return rc;
}

const char *mproc__pool_name_of(mproc_task_fn fn) {
  const char *name = NULL;
  pthread_mutex_lock(&g_reg_mu);
  for (int i = 0; i < g_nreg && !name; i++)
    if (g_reg[i].fn == fn) name = g_reg[i].name;
  pthread_mutex_unlock(&g_reg_mu);
  return name; /* entries are never removed: stays valid */
}

mproc_task_fn mproc__pool_lookup(const char *name) {
  /* Workers call this without the lock: after fork only this thread
   * exists, and the table is append-only. */
  int n = g_nreg;
  for (int i = 0; i < n; i++)
    if (strcmp(g_reg[i].name, name) == 0) return g_reg[i].fn;
  return NULL;
}

/* ---- create ---- */

static uint32_t spin_default(void) {
  const char *e = getenv("MPROC_POOL_SPIN_US");
  if (e) return (uint32_t)(atoi(e) < 0 ? 0 : atoi(e)) * 1000u;
  /* No spinning on one CPU: the spinner would only delay the waker. */
  return mproc__ncpu_online() > 1 ? 50000u : 0u;
}

static void pool_free(mproc_pool_t *p) {
  mproc__pool_relay_stop(p);
  mproc__pool_stage_drop(p);
  if (p->epfd >= 0) close(p->epfd);
  if (p->fsproc)
    for (int i = 0; i < p->nworkers; i++) mproc__pool_fs_forget(p, i);
  free(p->fsproc);
  free(p->is_pidfd);
  if (p->initarg_copy) mproc__heap_free(p->initarg_copy);
  if (p->sh) {
    if (p->sh->evfd >= 0) close(p->sh->evfd);
    p->sh->magic = MPROC__DEAD_MAGIC;
    mproc__heap_free(p->sh);
  }
  free(p->pidfd);
  free(p->pid);
  free(p->kill_reason);
  free(p->respawn_due);
  if (p->family_ent >= 0) mproc__pool_family_release(p->family_ent);
  pthread_mutex_destroy(&p->mu);
  pthread_cond_destroy(&p->cv);
  p->magic = MPROC__DEAD_MAGIC;
  mproc__heap_free(p);
}

int mproc_pool_create(mproc_pool_t **out, const mproc_pool_opts *o) {
  if (!out) return -EINVAL;
  *out = NULL;
  mproc_pool_opts d = {0};
  if (!o) o = &d;
  if (o->processes < 0 || o->processes > POOL_MAX_WORKERS || o->flags) return -EINVAL;
  if (!(o->task_timeout >= 0 && o->task_timeout < 1e9) || o->retries > 31) return -EINVAL;
  if (o->start_method < 0 || o->start_method > MPROC_START_SPAWN) return -EINVAL;
  if (o->initarg_size > POOL_ARG_MAX || (o->initarg_size && !o->initarg)) return -EINVAL;
  if (o->initializer_name &&
      (!*o->initializer_name || strlen(o->initializer_name) > POOL_TNAME))
    return -EINVAL;
  int rc = mproc__ensure_init();
  if (rc) return rc;
  int method = o->start_method ? o->start_method : mproc_get_start_method();
  /* Resolve the initializer: a fork worker calls the pointer; the others
   * find it by its registered name (checked here, not in the worker). */
  mproc_pool_init_fn init = o->initializer;
  const char *init_name = o->initializer_name;
  if (init_name) {
    mproc_pool_init_fn reg = mproc__target_lookup(init_name);
    if (!reg && (method != MPROC_START_FORK || !init)) return MPROC_ENOTREG;
    if (init && reg && reg != init) return -EINVAL;
    if (!init) init = reg;
  } else if (init && method != MPROC_START_FORK) {
    init_name = mproc__target_name_of(init);
    if (!init_name) return MPROC_ENOTREG;
  }
  /* A worker that is not a fork sees only the heap. */
  if (method != MPROC_START_FORK && !o->initarg_size && o->initarg &&
      !mproc__heap_contains(o->initarg))
    return -EINVAL;
  int want = o->processes ? o->processes : mproc_cpu_count();
  int n = want, ent = -1;
  rc = mproc__pool_family_acquire(want, mproc__pool_in_worker(), &n);
  ent = rc >= 0 ? rc : -1; /* -1: table full, the pool is not counted */
  if (rc < -1) n = want;

  void *mem;
  rc = mproc__heap_alloc(sizeof(mproc_pool_t), &mem);
  if (rc) {
    if (ent >= 0) mproc__pool_family_release(ent);
    return rc;
  }
  mproc_pool_t *p = mem;
  p->magic = POOL_MAGIC;
  p->owner = getpid();
  p->family_ent = ent;
  p->nworkers = n;
  p->epfd = -1;
  p->task_timeout = o->task_timeout;
  p->retries = o->retries;
  pthread_mutex_init(&p->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&p->cv, &ca);
  pthread_condattr_destroy(&ca);
  p->pidfd = malloc(sizeof(int) * (size_t)n);
  p->pid = calloc((size_t)n, sizeof(pid_t));
  p->kill_reason = calloc((size_t)n, sizeof(int));
  p->respawn_due = calloc((size_t)n, sizeof(int));
  p->is_pidfd = calloc((size_t)n, sizeof(int));
  p->fsproc = calloc((size_t)n, sizeof(struct mproc_process *));
  rc = mproc__heap_alloc(sizeof(pshared) + sizeof(pwslot) * (size_t)n, &mem);
  if (rc || !p->pidfd || !p->pid || !p->kill_reason || !p->respawn_due || !p->is_pidfd ||
      !p->fsproc) {
    if (!rc) {
      mproc__heap_free(mem); /* not initialised: pool_free must not see it */
      rc = -ENOMEM;
    }
    pool_free(p);
    return rc;
  }
  for (int i = 0; i < n; i++) p->pidfd[i] = -1;
  pshared *sh = p->sh = mem;
  sh->magic = PSH_MAGIC;
  sh->nworkers = (uint32_t)n;
  sh->evfd = -1;
  sh->maxtasks = o->maxtasksperchild;
  sh->spin_ns = spin_default();
  sh->init = init;
  sh->initarg = o->initarg;
  sh->method = method;
  sh->relay = method != MPROC_START_FORK;
  if (init_name) snprintf(sh->init_name, sizeof sh->init_name, "%s", init_name);
  if (o->initarg_size) {
    rc = mproc__heap_alloc(o->initarg_size, &p->initarg_copy);
    if (rc) {
      pool_free(p);
      return rc;
    }
    memcpy(p->initarg_copy, o->initarg, o->initarg_size);
    sh->initarg = p->initarg_copy;
  }
  sh->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  p->epfd = epoll_create1(EPOLL_CLOEXEC);
  if (sh->evfd < 0 || p->epfd < 0) {
    rc = -errno;
    pool_free(p);
    return rc;
  }
  struct epoll_event ev = {.events = EPOLLIN, .data.u32 = UINT32_MAX};
  epoll_ctl(p->epfd, EPOLL_CTL_ADD, sh->evfd, &ev);
  if (sh->relay && (rc = mproc__pool_relay_start(p))) {
    pool_free(p);
    return rc;
  }

  /* The pool thread forks the workers: it must not take the caller's
   * signals, and the workers' PDEATHSIG is tied to it. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  rc = pthread_create(&p->thr, NULL, mproc__pool_thread, p);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc) {
    pool_free(p);
    return -rc;
  }
  p->thr_started = 1;
  pthread_mutex_lock(&p->mu);
  while (!p->started) pthread_cond_wait(&p->cv, &p->mu);
  rc = p->start_err;
  pthread_mutex_unlock(&p->mu);
  if (rc) {
    pthread_join(p->thr, NULL);
    pool_free(p);
    return rc;
  }
  *out = p;
  return 0;
}

int mproc_pool_size(const mproc_pool_t *p) {
  int rc = mproc__pool_check(p);
  return rc ? rc : p->nworkers;
}

/* ---- close / terminate / join / destroy ---- */

int mproc_pool_close(mproc_pool_t *p) {
  int rc = mproc__pool_check(p);
  if (rc) return rc;
  pthread_mutex_lock(&p->mu);
  if (p->state == PS_RUNNING) p->state = PS_CLOSED;
  pthread_mutex_unlock(&p->mu);
  return 0;
}

int mproc_pool_terminate(mproc_pool_t *p) {
  int rc = mproc__pool_check(p);
  if (rc) return rc;
  pthread_mutex_lock(&p->mu);
  if (p->state < PS_TERMINATED) {
    p->state = PS_TERMINATED;
    atomic_store(&p->sh->stop, 1);
    for (pjob *j = p->outstanding; j; j = j->lnext) mproc__pool_job_cancel(p, j, -ECANCELED);
    for (int i = 0; i < p->nworkers; i++)
      if (p->pidfd[i] >= 0) {
        p->kill_reason[i] = -ECANCELED;
        mproc__pool_signal(p, i, SIGKILL);
      }
    p->recheck = 1;
    mproc__pool_sig_post(&p->sh->work);
  }
  pthread_mutex_unlock(&p->mu);
  mproc__pool_kick(p->sh);
  return 0;
}

int mproc_pool_join(mproc_pool_t *p, double timeout) {
  int rc = mproc__pool_check(p);
  if (rc) return rc;
  if (!mproc__timeout_ok(timeout)) return -EINVAL;
  struct timespec dl;
  struct timespec *d = mproc__deadline(timeout, &dl);
  pthread_mutex_lock(&p->mu);
  if (p->state == PS_RUNNING) {
    pthread_mutex_unlock(&p->mu);
    return MPROC_ESTATE;
  }
  if (p->state == PS_JOINED) {
    pthread_mutex_unlock(&p->mu);
    return 0;
  }
  p->joining = 1;
  mproc__pool_kick(p->sh);
  while (!p->thr_done) {
    if (d) {
      if (pthread_cond_timedwait(&p->cv, &p->mu, d) == ETIMEDOUT && !p->thr_done) {
        pthread_mutex_unlock(&p->mu);
        return -ETIMEDOUT;
      }
    } else {
      pthread_cond_wait(&p->cv, &p->mu);
    }
  }
  int first = p->state != PS_JOINED && p->thr_started;
  p->state = PS_JOINED;
  pthread_mutex_unlock(&p->mu);
  if (first) {
    pthread_join(p->thr, NULL);
    p->thr_started = 0;
  }
  return 0;
}

int mproc_pool_destroy(mproc_pool_t *p) {
  if (!p) return 0;
  int rc = mproc__pool_check(p);
  if (rc) return rc;
  if (p->state != PS_JOINED) {
    mproc_pool_terminate(p);
    mproc_pool_join(p, -1);
  }
  /* Every worker is reaped: hazards and the ring no longer matter. */
  pthread_mutex_lock(&p->mu);
  for (pjob *j = p->freelist, *nx; j; j = nx) {
    nx = j->fnext;
    mproc__pool_job_free(j);
  }
  p->freelist = NULL;
  for (struct mproc_async *a = p->asyncs; a; a = a->next) {
    a->pool = NULL;
    if (a->job) {
      pjob *j = a->job;
      a->job = NULL;
      if (--j->refs == 0) mproc__pool_job_free(j);
    }
  }
  p->asyncs = NULL;
  mproc__pool_imaps_orphan(p);
  pthread_mutex_unlock(&p->mu);
  pool_free(p);
  return 0;
}

/* ---- progress and stats ---- */

static void totals(mproc_pool_t *p, uint64_t *done, uint64_t *failed, uint64_t *chunks) {
  uint64_t d = p->fold_done + p->rec_done, f = p->fold_failed + p->rec_failed,
           c = p->fold_chunks;
  for (int i = 0; i < p->nworkers; i++) {
    d += atomic_load(&p->sh->w[i].tasks_done);
    f += atomic_load(&p->sh->w[i].tasks_failed);
    c += atomic_load(&p->sh->w[i].chunks_done);
  }
  *done = d;
  *failed = f;
  if (chunks) *chunks = c;
}

int mproc_pool_progress(mproc_pool_t *p, uint64_t *done, uint64_t *failed,
                        uint64_t *pending) {
  int rc = mproc__pool_check(p);
  if (rc) return rc;
  pthread_mutex_lock(&p->mu);
  uint64_t d, f;
  totals(p, &d, &f, NULL);
  uint64_t fin = d + f + p->cancelled;
  if (done) *done = d;
  if (failed) *failed = f + p->cancelled;
  if (pending) *pending = p->submitted > fin ? p->submitted - fin : 0;
  pthread_mutex_unlock(&p->mu);
  return 0;
}

int mproc_pool_stats_get(mproc_pool_t *p, mproc_pool_stats *st) {
  int rc = mproc__pool_check(p);
  if (rc) return rc;
  if (!st) return -EINVAL;
  memset(st, 0, sizeof *st);
  pthread_mutex_lock(&p->mu);
  uint64_t d, f, c;
  totals(p, &d, &f, &c);
  st->tasks_submitted = p->submitted;
  st->tasks_done = d;
  st->tasks_failed = f;
  st->tasks_cancelled = p->cancelled;
  uint64_t fin = d + f + p->cancelled;
  st->tasks_pending = p->submitted > fin ? p->submitted - fin : 0;
  st->chunks_done = c;
  st->worker_deaths = p->deaths;
  st->worker_restarts = p->restarts;
  st->timeouts = p->timeouts;
  st->retries = p->retried;
  st->nworkers = p->nworkers;
  for (int i = 0; i < p->nworkers && i < 64; i++)
    st->busy_sec[i] = p->fold_busy[i] + (double)atomic_load(&p->sh->w[i].busy_ns) * 1e-9;
  pthread_mutex_unlock(&p->mu);
  return 0;
}
