/*
 * dispatch.c - pool jobs: allocation, publication in the job ring,
 * completion scans, waits, cancellation, error records and freeing.
 *
 * See pool_internal.h for the protocol. Owner-side code here runs under
 * pool->mu where it touches the owner-only fields of a job (lists, refs);
 * the shared fields are atomics written by workers and the pool thread.
 *
 * Invariants:
 *  - A chunk's terminal state (DONE/FAILED/CANCELLED) never changes, so the
 *    completion cursor `scan` only moves forward.
 *  - A job is freed only when its refs are 0, the ring head has passed its
 *    last ring position and no live worker's hazard names it: a worker can
 *    never dereference a freed job.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "heap/heap.h"
#include "platform/platform.h"
#include "pool/pool_internal.h"

int mproc__pool_sig_wait(psig *s, uint32_t seen, const struct timespec *dl) {
  atomic_fetch_add(&s->nwait, 1);
  int rc = 0;
  if (atomic_load(&s->seq) == seen) rc = mproc__futex_wait(&s->seq, seen, dl);
  atomic_fetch_sub(&s->nwait, 1);
  return rc == -ETIMEDOUT ? -ETIMEDOUT : 0;
}

void mproc__pool_sig_post(psig *s) {
  /* seq_cst on both sides (Dekker): a waiter that incremented nwait before
   * we read it is woken; one that did so after sees the new seq. */
  atomic_fetch_add(&s->seq, 1);
  if (atomic_load(&s->nwait)) mproc__futex_wake(&s->seq, INT32_MAX);
}

size_t mproc__pool_chunksize(size_t n, int workers) {
  /* Python: chunksize, extra = divmod(len, len(pool) * 4); if extra: +1 */
  if (n == 0) return 1;
  size_t d = (size_t)workers * 4;
  size_t cs = n / d;
  if (n % d) cs++;
  return cs ? cs : 1;
}

void mproc__pool_call_params(mproc_pool_t *p, const mproc_call_opts *o,
                             double *timeout, uint32_t *retries) {
  double t = o ? o->timeout : 0;
  if (t == 0) t = p->task_timeout;
  if (t < 0) t = 0;
  *timeout = t;
  int r = o ? o->retries : 0;
  *retries = r < 0 ? 0 : r == 0 ? p->retries : (uint32_t)r;
  if (*retries > 31) *retries = 31; /* 5 bits of attempts in a state word */
}

int mproc__pool_resolve(const mproc_pool_t *p, mproc_task_fn *fn, const char **name) {
  if (*name) {
    if (!**name || strlen(*name) > MPROC_POOL_NAME_MAX) return -EINVAL;
    mproc_task_fn reg = mproc__pool_lookup(*name);
    if (!reg) return MPROC_ENOTREG;
    /* fork: the worker looks the name up (the pointer, if any, is unused);
     * forkserver: the address is the worker's fallback (worker.c). */
    if (p->sh->method != MPROC_START_FORK || !*fn) *fn = reg;
    return 0;
  }
  if (!*fn) return -EINVAL;
  if (p->sh->method == MPROC_START_FORK) return 0;
  /* A worker that is not a fork cannot call an address of ours: it finds
   * the function by its registered name, or the call fails here. */
  *name = mproc__pool_name_of(*fn);
  return *name ? 0 : MPROC_ENOTREG;
}

int mproc__pool_check(const mproc_pool_t *p) {
  if (!p || !mproc__heap_contains(p)) return -EINVAL;
  if (p->magic == MPROC__DEAD_MAGIC) return MPROC_EDESTROYED;
  if (p->magic != POOL_MAGIC) return -EINVAL;
  if (p->owner != getpid()) return MPROC_ENOTOWNER;
  return 0;
}

int mproc__pool_job_new(mproc_pool_t *p, mproc_task_fn fn, const char *name,
                        uint64_t n, uint32_t chunksize, uint64_t in_size,
                        uint64_t in_bytes, uint64_t out_size,
                        uint64_t out_bytes, uint32_t flags, pjob **out) {
  if (chunksize == 0) chunksize = 1;
  uint64_t nchunks = (n + chunksize - 1) / chunksize;
  /* n == 0: an empty map_async, delivered by the pool thread alone */
  if (nchunks > UINT32_MAX / 2) return -EINVAL;
  size_t off = MPROC_ALIGN_UP(sizeof(pjob), 16);
  size_t o_states = off;
  off = MPROC_ALIGN_UP(off + nchunks * sizeof(uint32_t), 16);
  size_t o_errs = off;
  off = MPROC_ALIGN_UP(off + n * sizeof(int32_t), 16);
  size_t o_in = off;
  off = MPROC_ALIGN_UP(off + in_bytes, 16);
  size_t o_out = off;
  off = MPROC_ALIGN_UP(off + out_bytes, 16);
  void *mem;
  int rc = mproc__heap_alloc(off, &mem);
  if (rc) return rc;
  pjob *j = mem;
  j->pool = p;
  j->magic = JOB_MAGIC;
  j->flags = flags;
  j->fn = fn;
  if (name) snprintf(j->fn_name, sizeof j->fn_name, "%s", name);
  j->n = n;
  j->nchunks = (uint32_t)nchunks;
  j->chunksize = chunksize;
  j->in_size = in_size;
  j->out_size = out_size;
  j->states = (_Atomic uint32_t *)(void *)((char *)mem + o_states);
  j->errs = (int32_t *)(void *)((char *)mem + o_errs);
  j->in = in_bytes ? (const uint8_t *)mem + o_in : NULL;
  j->out = out_bytes ? (uint8_t *)mem + o_out : NULL;
  j->err_status = -1;
  /* The caller's reference, plus the pool thread's for jobs it delivers. */
  j->refs = (flags & JF_SYNC) ? 1 : 2;
  *out = j;
  return 0;
}

/* Write j at ring position tail (caller holds mu; space checked). */
static void ring_put(pshared *sh, pjob *j) {
  uint64_t t = atomic_load(&sh->tail);
  atomic_store(&sh->jobs[t % POOL_JOB_RING], j);
  j->last_pos = t;
  atomic_store(&sh->tail, t + 1); /* seq_cst: publishes the slot */
}

static void wake_workers(pshared *sh, uint32_t n) {
  /* The seq bump is unconditional; the syscall is skipped when spinning
   * workers are enough for the new chunks (a spinner that stops spinning
   * after we read nspin still sees the new tail: see worker_loop). */
  atomic_fetch_add(&sh->work.seq, 1);
  if (!atomic_load(&sh->work.nwait)) return;
  uint32_t spinning = atomic_load(&sh->nspin);
  if (n <= spinning) return;
  n -= spinning;
  mproc__futex_wake(&sh->work.seq, n > (uint32_t)INT32_MAX ? INT32_MAX : (int)n);
}

void mproc__pool_job_finish_sync(mproc_pool_t *p, pjob *j) {
  pthread_mutex_lock(&p->mu);
  if (!j->delivered_local) {
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
    atomic_store(&j->delivered, 1);
    pthread_cond_broadcast(&p->cv); /* a joiner may wait for this */
  }
  mproc__pool_job_release_locked(p, j);
  pthread_mutex_unlock(&p->mu);
}

int mproc__pool_submit(mproc_pool_t *p, pjob *j) {
  pshared *sh = p->sh;
  pthread_mutex_lock(&p->mu);
  for (;;) {
    if (p->state != PS_RUNNING) {
      pthread_mutex_unlock(&p->mu);
      return MPROC_ESTATE;
    }
    uint64_t h = atomic_load(&sh->head), t = atomic_load(&sh->tail);
    if (t - h < POOL_JOB_RING) break;
    /* Ring full: workers free positions as they exhaust jobs. */
    uint32_t seen = atomic_load(&sh->space.seq);
    pthread_mutex_unlock(&p->mu);
    struct timespec dl;
    mproc__pool_sig_wait(&sh->space, seen, mproc__deadline(0.05, &dl));
    pthread_mutex_lock(&p->mu);
  }
  /* Outstanding list (owner side). */
  j->lnext = p->outstanding;
  j->lprev = NULL;
  if (p->outstanding) p->outstanding->lprev = j;
  p->outstanding = j;
  p->noutstanding++;
  p->submitted += j->n;
  if (j->timeout > 0) p->ntimed++;
  if (p->broken) {
    /* The initializer failed: nothing will ever run here. */
    mproc__pool_job_cancel(p, j, MPROC_ECHILDFAIL);
    p->recheck = 1;
  }
  /* The pool thread must start watching the clock for a timed job. */
  int kick = p->broken || j->timeout > 0;
  uint32_t nchunks = j->nchunks;
  if (nchunks == 0) {
    /* Nothing for the workers (an empty map_async): the pool thread
     * delivers it, so its callback runs there as every other one. The
     * position is one no ring ever holds, so it is freeable at once. */
    j->last_pos = UINT64_MAX;
    p->recheck = 1;
    kick = 1;
  } else {
    ring_put(sh, j);
  }
  pthread_mutex_unlock(&p->mu);
  if (nchunks) wake_workers(sh, nchunks);
  if (kick) mproc__pool_kick(sh);
  return 0;
}

void mproc__pool_repost(mproc_pool_t *p, pjob *j) {
  pshared *sh = p->sh;
  uint64_t h = atomic_load(&sh->head), t = atomic_load(&sh->tail);
  if (t - h >= POOL_JOB_RING) {
    if (!j->needs_repost) p->nrepost++;
    j->needs_repost = 1;
    return;
  }
  if (j->needs_repost) p->nrepost--;
  j->needs_repost = 0;
  ring_put(sh, j);
  wake_workers(sh, INT32_MAX);
}

int mproc__pool_job_complete(pjob *j) {
  uint32_t c = atomic_load(&j->scan);
  uint32_t start = c;
  while (c < j->nchunks && ST_TERMINAL(atomic_load_explicit(&j->states[c], memory_order_acquire)))
    c++;
  if (c != start) {
    uint32_t cur = start;
    while (cur < c && !atomic_compare_exchange_weak(&j->scan, &cur, c)) {
    }
  }
  return c >= j->nchunks;
}

int mproc__pool_job_wait(mproc_pool_t *p, pjob *j, const struct timespec *dl) {
  if (mproc__pool_job_complete(j)) return 0;
  /* Bounded spin first: a short task's result usually arrives within a few
   * microseconds, far below the ~25 us cost of a futex sleep and wake. */
  uint32_t spin = p->sh->spin_ns;
  if (spin) {
    uint64_t end = mproc__pool_now_ns() + spin;
    for (int k = 0;; k++) {
      for (int i = 0; i < 64; i++) mproc__cpu_relax();
      if (mproc__pool_job_complete(j)) return 0;
      if ((k & 7) == 7 && mproc__pool_now_ns() > end) break;
    }
  }
  psig *s = (j->flags & JF_POOLSIG) ? &p->sh->isig : &j->sig;
  for (;;) {
    uint32_t seen = atomic_load(&s->seq);
    if (mproc__pool_job_complete(j)) return 0;
    if (mproc__deadline_passed(dl)) return -ETIMEDOUT;
    mproc__pool_sig_wait(s, seen, dl);
  }
}

static void errlock(pjob *j, uint32_t tag) {
  uint32_t z = 0;
  for (int k = 0; !atomic_compare_exchange_weak(&j->errlock, &z, tag); k++) {
    z = 0;
    if (k > 100) sched_yield();
    else mproc__cpu_relax();
  }
}

void mproc__pool_job_seterr(pjob *j, uint64_t idx, int code, int signo,
                            int status, long rss_kb, const char *msg,
                            uint32_t gen) {
  errlock(j, gen ? gen : 0xffffffffu);
  if (!j->err_set || idx < j->err_idx) {
    j->err_set = 1;
    j->err_idx = idx;
    j->err_code = code;
    j->err_signo = signo;
    j->err_status = status;
    j->err_rss_kb = rss_kb;
    snprintf(j->err_msg, sizeof j->err_msg, "%s", msg ? msg : mproc_strerror(code));
  }
  atomic_store(&j->errlock, 0);
}

void mproc__pool_job_error(const pjob *j, mproc_task_error *err) {
  memset(err, 0, sizeof *err);
  err->exit_status = -1;
  if (!j->err_set) return;
  err->code = j->err_code;
  err->signo = j->err_signo;
  err->exit_status = j->err_status;
  err->index = (size_t)j->err_idx;
  err->peak_rss_kb = (long)j->err_rss_kb;
  snprintf(err->message, sizeof err->message, "%s", j->err_msg);
}

void mproc__pool_job_signal(pshared *sh, pjob *j) {
  if (j->flags & JF_POOLSIG) mproc__pool_sig_post(&sh->isig);
  else mproc__pool_sig_post(&j->sig);
}

uint64_t mproc__pool_job_cancel(mproc_pool_t *p, pjob *j, int code) {
  uint64_t tasks = 0;
  for (uint32_t c = atomic_load(&j->scan); c < j->nchunks; c++) {
    uint32_t s = atomic_load(&j->states[c]);
    if (ST_KIND(s) != CK_PENDING) continue;
    if (!atomic_compare_exchange_strong(&j->states[c], &s,
                                        ST_MAKE(CK_CANCELLED, ST_ATT(s), 0)))
      continue;
    uint64_t lo = (uint64_t)c * j->chunksize, hi = lo + j->chunksize;
    if (hi > j->n) hi = j->n;
    for (uint64_t i = lo; i < hi; i++) j->errs[i] = code;
    tasks += hi - lo;
    char msg[160];
    snprintf(msg, sizeof msg, "%s",
             code == MPROC_ECHILDFAIL && p->broken ? p->broken_msg
                                                   : "task cancelled before it ran");
    mproc__pool_job_seterr(j, lo, code, 0, -1, 0, msg, 0);
  }
  if (tasks) {
    p->cancelled += tasks;
    mproc__pool_job_signal(p->sh, j);
  }
  return tasks;
}

void mproc__pool_job_free(pjob *j) {
  if (j->flags & JF_VOUT) {
    pvout *vo = (pvout *)(void *)j->out;
    for (uint64_t i = 0; i < j->n; i++)
      if (vo[i].p) mproc__heap_free(vo[i].p);
  }
  if (j->stage) mproc__pool_stage_put(j->pool, j->stage);
  j->magic = MPROC__DEAD_MAGIC;
  mproc__heap_free(j);
}

/* Freeable now? (see the invariant at the top) */
static int job_freeable(mproc_pool_t *p, pjob *j) {
  pshared *sh = p->sh;
  if (atomic_load(&sh->head) <= j->last_pos && atomic_load(&sh->tail) > j->last_pos)
    return 0;
  for (int i = 0; i < p->nworkers; i++)
    if (atomic_load(&sh->w[i].hazard) == j) return 0;
  return 1;
}

/* Pool thread only (the sole consumer of the completion rings): does an
 * undrained completion entry still name j? Checked after the hazards: a
 * worker pushes while its hazard names the job. */
static int in_rings(mproc_pool_t *p, pjob *j) {
  for (int i = 0; i < p->nworkers; i++) {
    pwslot *ws = &p->sh->w[i];
    uint32_t t = atomic_load(&ws->ctail);
    for (uint32_t h = atomic_load(&ws->chead); h != t; h++)
      if (ws->cring[h % POOL_CRING] == j) return 1;
  }
  return 0;
}

void mproc__pool_job_release_locked(mproc_pool_t *p, pjob *j) {
  if (--j->refs) return;
  /* Sync jobs never enter a completion ring: the caller may free them.
   * Others go to the pool thread, which can also rule out stale ring
   * entries. */
  if ((j->flags & JF_SYNC) && job_freeable(p, j)) {
    mproc__pool_job_free(j);
    return;
  }
  int was_empty = !p->freelist;
  j->fnext = p->freelist;
  p->freelist = j;
  if (was_empty) mproc__pool_kick(p->sh);
}

/* Pool thread, under mu, after draining. */
void mproc__pool_free_jobs(mproc_pool_t *p) {
  pjob **pp = &p->freelist;
  while (*pp) {
    pjob *j = *pp;
    if (job_freeable(p, j) && !in_rings(p, j)) {
      *pp = j->fnext;
      mproc__pool_job_free(j);
    } else {
      pp = &j->fnext;
    }
  }
}
