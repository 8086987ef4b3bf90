/*
 * collector.c - the pool thread: one thread per pool in the owner process.
 *
 * It forks the workers (so PR_SET_PDEATHSIG ties them to this thread's
 * lifetime, which is the pool's), and then loops:
 *  - drain the workers' completion rings, deliver complete jobs in the order
 *    they arrive (copy results for AsyncResults, run callbacks - here, never
 *    in a signal handler - and wake waiters);
 *  - reap dead workers from their pidfds (epoll) with waitid(P_PIDFD) and
 *    rusage, repair the chunk each held, start replacements;
 *  - kill workers whose task passed its timeout;
 *  - free jobs released by their callers.
 * It sleeps in epoll_wait on the pidfds plus an eventfd that workers and
 * callers write only when `coll_sleeping` is set, with no timeout unless a
 * timed task runs or jobs wait to be freed: an idle pool uses no CPU.
 *
 * Lock order: p->mu only; callbacks run without it.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "heap/heap.h"
#include "platform/platform.h"
#include "pool/pool_internal.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

void mproc__pool_kick(pshared *sh) {
  if (atomic_load(&sh->coll_sleeping) &&
      atomic_exchange(&sh->coll_sleeping, 0)) {
    if (sh->relay) {
      /* Forkserver and spawn workers have no copy of the eventfd: they
       * wake the owner's relay thread through the heap (launch.c). */
      atomic_fetch_add(&sh->kickw, 1);
      mproc__futex_wake(&sh->kickw, 1);
      return;
    }
    uint64_t one = 1;
    ssize_t r = write(sh->evfd, &one, sizeof one);
    (void)r;
  }
}

/* ---- delivery ---- */

static void to_bufs(pjob *j, mproc_buf *dst) {
  pvout *vo = (pvout *)(void *)j->out;
  for (uint64_t i = 0; i < j->n; i++) {
    dst[i].data = NULL;
    dst[i].size = 0;
    if (vo[i].p) {
      dst[i].data = vo[i].p;
      dst[i].size = vo[i].len;
      vo[i].p = NULL; /* ownership moves to the caller */
    } else if (vo[i].len) {
      void *b;
      if (mproc__heap_alloc(vo[i].len, &b) == 0) {
        memcpy(b, vo[i].inl, vo[i].len);
        dst[i].data = b;
        dst[i].size = vo[i].len;
      }
    }
  }
}

/* Copy a job's outputs to the caller's arrays (sync map or delivery). */
void mproc__pool_job_copyout(pjob *j, void *user_out, int *user_errs) {
  if (user_out) {
    if (j->flags & JF_VOUT) to_bufs(j, user_out);
    else if (j->out && j->out != user_out) memcpy(user_out, j->out, j->n * j->out_size);
  }
  if (user_errs) memcpy(user_errs, j->errs, j->n * sizeof(int));
}

static void deliver(mproc_pool_t *p, pjob *j) {
  if (j->flags & JF_SYNC) {
    /* The waiting caller does its own bookkeeping; nothing to deliver. */
    return;
  }
  pthread_mutex_lock(&p->mu);
  if (j->delivered_local) {
    pthread_mutex_unlock(&p->mu);
    return;
  }
  j->delivered_local = 1;
  if (j->lprev) j->lprev->lnext = j->lnext;
  else p->outstanding = j->lnext;
  if (j->lnext) j->lnext->lprev = j->lprev;
  p->noutstanding--;
  if (j->timeout > 0) p->ntimed--;
  if (j->needs_repost) {
    j->needs_repost = 0;
    p->nrepost--;
  }
  struct mproc_async *ar = j->ar;
  int rc = j->err_set ? j->err_code : 0;
  mproc_task_error err;
  mproc__pool_job_error(j, &err);
  const void *res = NULL;
  size_t res_len = 0;
  if (ar) {
    ar->rc = rc;
    ar->err = err;
    if (j->is_async == 1) {
      /* apply_async: keep a private copy of the result bytes. */
      pvout *vo = (pvout *)(void *)j->out;
      if (rc == 0 && vo[0].p) {
        /* A heap result moves to the handle as it is: no second copy. */
        ar->res = vo[0].p;
        ar->res_heap = 1;
        ar->res_len = vo[0].len;
        vo[0].p = NULL;
      } else if (rc == 0 && vo[0].len) {
        ar->res = malloc(vo[0].len);
        if (ar->res) {
          memcpy(ar->res, vo[0].p ? vo[0].p : vo[0].inl, vo[0].len);
          ar->res_len = vo[0].len;
        } else {
          ar->rc = rc = -ENOMEM;
          ar->err.code = -ENOMEM;
        }
      }
      res = ar->res;
      res_len = ar->res_len;
    } else {
      mproc__pool_job_copyout(j, j->user_out, j->user_errs);
      ar->map_out = j->user_out;
      ar->map_len = (j->flags & JF_VOUT) ? 0 : j->n * j->out_size;
      res = ar->map_out;
      res_len = ar->map_len;
    }
  } else if (j->is_async == 1) {
    /* Handle already destroyed: callbacks still run (as in Python, where
     * dropping the AsyncResult does not cancel them), with ar == NULL. */
    pvout *vo = (pvout *)(void *)j->out;
    res = vo[0].p ? vo[0].p : vo[0].inl;
    res_len = vo[0].len;
  } else if (j->is_async == 2) {
    mproc__pool_job_copyout(j, j->user_out, j->user_errs);
    res = j->user_out;
    res_len = (j->flags & JF_VOUT) ? 0 : j->n * j->out_size;
  }
  mproc__pool_job_unstage(j); /* results are out of it */
  mproc_result_cb cb = j->cb;
  mproc_error_cb ecb = j->ecb;
  void *user = j->cb_user;
  pthread_mutex_unlock(&p->mu);

  /* Callbacks run here, in the pool thread, in delivery order. */
  if (rc == 0 && cb) cb(ar, res, res_len, user);
  else if (rc != 0 && ecb) ecb(ar, &err, user);

  pthread_mutex_lock(&p->mu);
  if (j->ar) j->ar->done = 1;
  atomic_store(&j->delivered, 1);
  mproc__pool_job_release_locked(p, j);
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
}

/* Returns the number of entries consumed. */
static int drain(mproc_pool_t *p) {
  pshared *sh = p->sh;
  int did = 0;
  for (int i = 0; i < p->nworkers; i++) {
    pwslot *ws = &sh->w[i];
    uint32_t h = atomic_load_explicit(&ws->chead, memory_order_relaxed);
    uint32_t t = atomic_load_explicit(&ws->ctail, memory_order_acquire);
    while (h != t) {
      /* Take a batch, then look at the jobs under mu: the submitter wrote
       * them under mu, and the worker that handed them over is another
       * process, invisible to the thread sanitizer's happens-before. */
      pjob *batch[64];
      int nb = 0;
      while (h != t && nb < 64) batch[nb++] = ws->cring[h++ % POOL_CRING];
      did += nb;
      pjob *ready[64];
      int nr = 0;
      pthread_mutex_lock(&p->mu);
      for (int k = 0; k < nb; k++) {
        pjob *j = batch[k];
        int dup = 0;
        for (int q = 0; q < nr; q++) dup |= ready[q] == j;
        if (!dup && !j->delivered_local && mproc__pool_job_complete(j)) ready[nr++] = j;
      }
      pthread_mutex_unlock(&p->mu);
      /* Consumed only now: the free path checks undrained entries. */
      atomic_store(&ws->chead, h);
      for (int k = 0; k < nr; k++) deliver(p, ready[k]);
    }
    if (atomic_load(&ws->cwait)) {
      atomic_store(&ws->cwait, 0);
      mproc__futex_wake(&ws->chead, 1);
    }
  }
  return did;
}

/* Deliver every outstanding job that is complete (after deaths, cancels). */
static void recheck_all(mproc_pool_t *p) {
  for (;;) {
    pthread_mutex_lock(&p->mu);
    p->recheck = 0;
    pjob *found = NULL;
    for (pjob *j = p->outstanding; j; j = j->lnext)
      if (!(j->flags & JF_SYNC) && mproc__pool_job_complete(j)) {
        found = j;
        break;
      }
    pthread_mutex_unlock(&p->mu);
    if (!found) return;
    deliver(p, found);
  }
}

/* ---- worker death ---- */

static void describe(char *buf, size_t cap, int slot, pid_t pid, int code,
                     int signo, int status, long rss_kb) {
  char rss[48];
  if (rss_kb < 0) snprintf(rss, sizeof rss, "unknown (forkserver worker)");
  else if (rss_kb >= 1024) snprintf(rss, sizeof rss, "%.1f MiB", (double)rss_kb / 1024.0);
  else snprintf(rss, sizeof rss, "%ld KiB", rss_kb);
  if (code == -ETIMEDOUT)
    snprintf(buf, cap, "task timed out: worker %d (pid %d) killed and replaced; peak RSS %s",
             slot, (int)pid, rss);
  else if (code == -ECANCELED)
    snprintf(buf, cap, "pool terminated while the task ran (worker %d, pid %d)", slot, (int)pid);
  else if (signo)
    snprintf(buf, cap, "worker %d (pid %d) was killed by signal %d (SIG%s: %s); peak RSS %s",
             slot, (int)pid, signo, sigabbrev_np(signo) ? sigabbrev_np(signo) : "?",
             strsignal(signo), rss);
  else
    snprintf(buf, cap, "worker %d (pid %d) exited with status %d while running the task; peak RSS %s",
             slot, (int)pid, status, rss);
}

/* Repair the chunk the dead incarnation held (under mu). */
static void recover(mproc_pool_t *p, int slot, int code, int signo, int status,
                    long rss_kb) {
  pshared *sh = p->sh;
  pwslot *ws = &sh->w[slot];
  pjob *j = atomic_load(&ws->hazard);
  if (!j || j->magic != JOB_MAGIC) return;
  uint32_t gen = ws->gen;
  if (atomic_load(&j->errlock) == gen) atomic_store(&j->errlock, 0);
  uint32_t next = atomic_load(&j->next);
  if (next > j->nchunks) next = j->nchunks;
  int sweep = 0, changed = 0;
  char msg[POOL_MSG];
  for (uint32_t c = atomic_load(&j->scan); c < j->nchunks; c++) {
    uint32_t s = atomic_load(&j->states[c]);
    if (ST_KIND(s) == CK_PENDING) {
      if (c < next) sweep = 1;
      continue;
    }
    if (ST_KIND(s) != CK_TAKEN || ST_GEN(s) != gen) continue;
    uint64_t lo = (uint64_t)c * j->chunksize, hi = lo + j->chunksize;
    if (hi > j->n) hi = j->n;
    changed = 1;
    if (atomic_load(&ws->commit_job) == j && ws->commit_c == c) {
      /* Died after writing every result, before marking DONE. */
      atomic_store(&j->states[c], ST_MAKE(CK_DONE, ST_ATT(s), gen));
      p->rec_done += hi - lo;
      continue;
    }
    if (j->flags & JF_VOUT) {
      pvout *vo = (pvout *)(void *)j->out;
      for (uint64_t i = lo; i < hi; i++) {
        if (vo[i].p) mproc__heap_free(vo[i].p);
        vo[i].p = NULL;
        vo[i].len = 0;
      }
    }
    if (code == MPROC_EWORKERDIED && ST_ATT(s) < j->retries) {
      atomic_store(&j->states[c], ST_MAKE(CK_PENDING, ST_ATT(s) + 1, 0));
      p->retried++;
      sweep = 1;
      continue;
    }
    describe(msg, sizeof msg, slot, ws->pid, code, signo, status, rss_kb);
    for (uint64_t i = lo; i < hi; i++) j->errs[i] = code;
    mproc__pool_job_seterr(j, lo, code, signo, status, rss_kb, msg, 0);
    atomic_store(&j->states[c], ST_MAKE(CK_FAILED, ST_ATT(s), gen));
    p->rec_failed += hi - lo;
  }
  if (sweep && p->state != PS_TERMINATED) {
    atomic_store(&j->sweep, 1);
    mproc__pool_repost(p, j);
  } else if (sweep) {
    mproc__pool_job_cancel(p, j, -ECANCELED);
  }
  if (changed || sweep) {
    mproc__pool_job_signal(sh, j);
    p->recheck = 1;
  }
}

static void reap(mproc_pool_t *p, int slot) {
  pshared *sh = p->sh;
  pwslot *ws = &sh->w[slot];
  int fd = p->pidfd[slot];
  if (fd < 0) return;
  int signo = 0, status = -1;
  long rss_kb;
  if (p->fsproc[slot]) {
    /* A forkserver worker is the server's child: its status comes from
     * the server, and there is no rusage for us. */
    if (!mproc__pool_fs_reap(p, slot, &signo, &status)) return;
    rss_kb = -1;
  } else {
    siginfo_t si;
    struct rusage ru;
    memset(&si, 0, sizeof si);
    memset(&ru, 0, sizeof ru);
    /* A death pipe's EOF means the worker is exiting: wait for it. */
    long r = p->is_pidfd[slot]
                 ? syscall(SYS_waitid, P_PIDFD, fd, &si, WEXITED | WNOHANG, &ru)
                 : syscall(SYS_waitid, P_PID, p->pid[slot], &si, WEXITED, &ru);
    if (r < 0 || si.si_pid == 0) return; /* not dead yet (spurious) */
    if (si.si_code == CLD_EXITED) status = si.si_status;
    else signo = si.si_status;
    rss_kb = ru.ru_maxrss;
  }
  /* Drain what the worker published before it died. */
  drain(p);
  pthread_mutex_lock(&p->mu);
  epoll_ctl(p->epfd, EPOLL_CTL_DEL, fd, NULL);
  close(fd);
  mproc__pool_fs_forget(p, slot);
  p->pidfd[slot] = -1;
  p->nalive--;
  int normal = status == 0 && (atomic_load(&ws->retiring) || atomic_load(&sh->stop));
  int init_failed = atomic_load(&ws->init_failed);
  int code = p->kill_reason[slot] ? p->kill_reason[slot] : MPROC_EWORKERDIED;
  if (p->state == PS_TERMINATED) code = -ECANCELED;
  if (!normal && !init_failed && code == MPROC_EWORKERDIED) p->deaths++;
  recover(p, slot, code, signo, status, rss_kb);
  atomic_store(&ws->hazard, NULL);
  /* Fold the incarnation's counters into the slot's history. */
  uint64_t d = atomic_load(&ws->tasks_done), f = atomic_load(&ws->tasks_failed);
  p->fold_done += d;
  p->fold_failed += f;
  p->fold_chunks += atomic_load(&ws->chunks_done);
  if (slot < 64) p->fold_busy[slot] += (double)atomic_load(&ws->busy_ns) * 1e-9;
  atomic_store(&ws->tasks_done, 0);
  atomic_store(&ws->tasks_failed, 0);
  atomic_store(&ws->chunks_done, 0);
  atomic_store(&ws->busy_ns, 0);
  if (init_failed && !p->broken) {
    p->broken = 1;
    if (init_failed == 2)
      snprintf(p->broken_msg, sizeof p->broken_msg,
               "initializer '%s' not registered in worker %d: pool broken", sh->init_name,
               slot);
    else
      snprintf(p->broken_msg, sizeof p->broken_msg,
               "pool initializer failed in worker %d (pid %d): pool is broken", slot,
               (int)ws->pid);
    for (pjob *j = p->outstanding; j; j = j->lnext)
      mproc__pool_job_cancel(p, j, MPROC_ECHILDFAIL);
    p->recheck = 1;
  }
  int again = !p->broken && p->state != PS_TERMINATED && !atomic_load(&sh->stop);
  if (again) {
    if (mproc__pool_spawn(p, slot) == 0) p->restarts++;
    else p->respawn_due[slot] = 1;
  }
  pthread_mutex_unlock(&p->mu);
}

/* Kill workers whose timed task overran; returns ms until the next check. */
static int check_timeouts(mproc_pool_t *p) {
  if (!p->ntimed) return -1;
  pshared *sh = p->sh;
  uint64_t now = mproc__pool_now_ns();
  double next = 0.5;
  for (int i = 0; i < p->nworkers; i++) {
    pwslot *ws = &sh->w[i];
    uint64_t t0 = atomic_load(&ws->t0_ns);
    if (!t0 || p->pidfd[i] < 0 || p->kill_reason[i]) continue;
    double el = (double)(now - t0) * 1e-9, lim = ws->cur_timeout;
    if (lim <= 0) continue;
    if (el >= lim) {
      p->kill_reason[i] = -ETIMEDOUT;
      p->timeouts++;
      mproc__pool_signal(p, i, SIGKILL);
    } else if (lim - el < next) {
      next = lim - el;
    }
  }
  int ms = (int)(next * 1000.0) + 1;
  return ms < 1 ? 1 : ms;
}

static int rings_empty(mproc_pool_t *p) {
  for (int i = 0; i < p->nworkers; i++)
    if (atomic_load(&p->sh->w[i].ctail) != atomic_load(&p->sh->w[i].chead)) return 0;
  return 1;
}

void *mproc__pool_thread(void *arg) {
  mproc_pool_t *p = arg;
  pshared *sh = p->sh;
  pthread_mutex_lock(&p->mu);
  for (int i = 0; i < p->nworkers; i++) {
    int rc = mproc__pool_spawn(p, i);
    if (rc) {
      p->start_err = rc;
      break;
    }
  }
  p->started = 1;
  if (p->start_err) {
    /* Undo: the creator sees start_err and destroys the pool. */
    atomic_store(&sh->stop, 1);
    for (int i = 0; i < p->nworkers; i++)
      if (p->pidfd[i] >= 0) mproc__pool_signal(p, i, SIGKILL);
  }
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);

  struct epoll_event ev[16];
  for (;;) {
    int did = drain(p);
    pthread_mutex_lock(&p->mu);
    int recheck = p->recheck;
    pthread_mutex_unlock(&p->mu);
    if (recheck) recheck_all(p);
    pthread_mutex_lock(&p->mu);
    if (p->nrepost) {
      for (pjob *j = p->outstanding; j && p->nrepost; j = j->lnext)
        if (j->needs_repost) mproc__pool_repost(p, j);
    }
    mproc__pool_free_jobs(p);
    for (int i = 0; i < p->nworkers; i++)
      if (p->respawn_due[i] && !p->broken && p->state < PS_TERMINATED &&
          !atomic_load(&sh->stop) && p->pidfd[i] < 0 &&
          mproc__pool_spawn(p, i) == 0) {
        p->respawn_due[i] = 0;
        p->restarts++;
      }
    /* close + join: stop the workers once every job was delivered. */
    if (p->joining && p->state == PS_CLOSED && !p->noutstanding && !atomic_load(&sh->stop)) {
      atomic_store(&sh->stop, 1);
      mproc__pool_sig_post(&sh->work);
    }
    if ((p->joining || p->start_err) && atomic_load(&sh->stop) && p->nalive == 0 &&
        (!p->noutstanding || p->start_err)) {
      p->thr_done = 1;
      pthread_cond_broadcast(&p->cv);
      pthread_mutex_unlock(&p->mu);
      break;
    }
    int ms = check_timeouts(p);
    int sms = mproc__pool_stage_idle(p);
    if (sms >= 0 && (ms < 0 || sms < ms)) ms = sms;
    if (p->freelist || p->nrepost) ms = (ms < 0 || ms > 10) ? 10 : ms;
    for (int i = 0; i < p->nworkers; i++)
      if (p->respawn_due[i]) ms = (ms < 0 || ms > 100) ? 100 : ms;
    recheck = p->recheck;
    pthread_mutex_unlock(&p->mu);
    if (did || recheck) continue;

    atomic_store(&sh->coll_sleeping, 1);
    /* A recheck asked for after the read above kicked nobody (we were not
     * sleeping yet): look again now that coll_sleeping is visible. */
    pthread_mutex_lock(&p->mu);
    recheck = p->recheck;
    pthread_mutex_unlock(&p->mu);
    if (recheck || !rings_empty(p)) {
      atomic_store(&sh->coll_sleeping, 0);
      continue;
    }
    int n = epoll_wait(p->epfd, ev, 16, ms);
    atomic_store(&sh->coll_sleeping, 0);
    for (int k = 0; k < n; k++) {
      if (ev[k].data.u32 == UINT32_MAX) {
        uint64_t v;
        ssize_t r = read(sh->evfd, &v, sizeof v);
        (void)r;
      } else {
        reap(p, (int)ev[k].data.u32);
      }
    }
  }
  return NULL;
}
