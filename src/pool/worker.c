/*
 * worker.c - pool worker processes: how they are forked and what they run
 * (workers of the forkserver and spawn methods are started by launch.c and
 * run the same mproc__pool_worker_main).
 *
 * Why the pool forks its workers itself instead of using mproc_process_*:
 *  - the pool thread needs the worker's pidfd at once (epoll on it to see a
 *    death immediately) and reaps it with waitid(P_PIDFD, ..., &rusage) to
 *    report the dead worker's peak memory (ru_maxrss), which the public
 *    process API does not expose;
 *  - a worker is not a Process object: it must not be counted by
 *    mproc_active_children of the owner nor joined by it.
 * The fork follows the process layer's rules: all signals blocked around
 * fork, PR_SET_PDEATHSIG(SIGKILL) plus a getppid() check in the child (so a
 * worker never outlives the pool thread that forked it, hence its owner),
 * dispositions reset, _exit only. Workers ignore SIGINT: Ctrl-C goes to the
 * owner, which decides (its death kills the workers through PDEATHSIG).
 *
 * Worker loop (see pool_internal.h): take the job at the ring head, publish
 * it as hazard, claim a chunk (fetch_add hint, then CAS on the chunk state),
 * run it, mark commit, store DONE; signal and notify the pool thread when
 * the job has no unclaimed chunk left. Sleep on sh->work after a bounded
 * spin when the ring is empty.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "heap/heap.h"
#include "platform/platform.h"
#include "pool/pool_internal.h"

static int g_in_worker;

int mproc__pool_in_worker(void) { return g_in_worker; }

void mproc__pool_signal(mproc_pool_t *p, int i, int sig) {
  if (p->pidfd[i] < 0) return;
  if (p->is_pidfd[i]) mproc__pidfd_signal(p->pidfd[i], sig);
  else kill(p->pid[i], sig);
}

/* ---- the task-side API ---- */

static pvout *ctx_vout(mproc_task_ctx *ctx) {
  if (!ctx || !ctx->job || !(ctx->job->flags & JF_VOUT)) return NULL;
  return &((pvout *)(void *)ctx->job->out)[ctx->idx];
}

int mproc_task_return(mproc_task_ctx *ctx, const void *data, size_t size) {
  if (!ctx || !ctx->job || (size && !data)) return -EINVAL;
  pjob *j = ctx->job;
  if (!(j->flags & JF_VOUT)) {
    if (size > j->out_size) return -EINVAL;
    memcpy(j->out + ctx->idx * j->out_size, data, size);
    return 0;
  }
  pvout *vo = ctx_vout(ctx);
  if (vo->p) {
    mproc__heap_free(vo->p);
    vo->p = NULL;
  }
  vo->len = 0;
  if (size <= POOL_INLINE) {
    if (size) memcpy(vo->inl, data, size);
    vo->len = size;
    return 0;
  }
  void *b;
  int rc = mproc__heap_alloc(size, &b);
  if (rc) return rc;
  memcpy(b, data, size);
  vo->p = b;
  vo->len = size;
  return 0;
}

int mproc_task_return_buf(mproc_task_ctx *ctx, size_t size, void **buf) {
  if (!ctx || !buf || !size) return -EINVAL;
  pvout *vo = ctx_vout(ctx);
  if (!vo) return -EINVAL;
  if (vo->p) {
    mproc__heap_free(vo->p);
    vo->p = NULL;
  }
  vo->len = 0;
  void *b;
  int rc = mproc__heap_alloc(size, &b);
  if (rc) return rc;
  vo->p = b;
  vo->len = size;
  *buf = b;
  return 0;
}

int mproc_task_fail(mproc_task_ctx *ctx, int code, const char *fmt, ...) {
  if (code >= 0) code = MPROC_ETASK;
  if (!ctx) return code;
  if (fmt) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->msg, sizeof ctx->msg, fmt, ap);
    va_end(ap);
    ctx->has_msg = 1;
  }
  return code;
}

long mproc_task_index(const mproc_task_ctx *ctx) {
  return ctx ? (long)ctx->idx : -EINVAL;
}

int mproc_task_worker(const mproc_task_ctx *ctx) {
  return ctx ? ctx->slot : -EINVAL;
}

/* ---- the worker loop ---- */

/* Add to a counter only this worker writes: a plain load and store, no
 * locked instruction (readers only need a recent value). */
static inline void bump(_Atomic uint64_t *c, uint64_t v) {
  atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v,
                        memory_order_relaxed);
}

/* Registered names never change meaning (the table is append-only and a
 * name cannot be re-registered to another function), so the worker keeps
 * the last one it resolved: forkserver and spawn jobs always carry a name,
 * and chunksize-1 maps would otherwise scan the table per task. */
static char g_last_name[MPROC_POOL_NAME_MAX + 1];
static mproc_task_fn g_last_fn;

static mproc_task_fn lookup_cached(const char *name) {
  if (g_last_fn && strcmp(name, g_last_name) == 0) return g_last_fn;
  mproc_task_fn fn = mproc__pool_lookup(name);
  if (fn) {
    snprintf(g_last_name, sizeof g_last_name, "%s", name);
    g_last_fn = fn;
  }
  return fn;
}

/* t_start: when the worker began this chunk (the previous chunk's end when
 * it went straight on: one clock read per chunk on the hot path). Returns
 * the time the chunk ended. */
static uint64_t run_chunk(pshared *sh, pjob *j, uint32_t c, int slot, uint64_t t_start) {
  pwslot *ws = &sh->w[slot];
  uint64_t lo = (uint64_t)c * j->chunksize, hi = lo + j->chunksize;
  if (hi > j->n) hi = j->n;
  mproc_task_fn fn = j->fn_name[0] ? lookup_cached(j->fn_name) : j->fn;
  /* A forkserver worker is a copy of the program as it was when the server
   * started: a name registered later is unknown here, but the address the
   * owner resolved is valid in this image. (Never for spawn: another
   * exec, other addresses.) */
  if (!fn && sh->method == MPROC_START_FORKSERVER) fn = j->fn;
  mproc_task_ctx ctx = {.job = j, .ws = ws, .slot = slot};
  uint64_t nfail = 0;
  int timed = j->timeout > 0;
  if (timed) ws->cur_timeout = j->timeout;
  for (uint64_t i = lo; i < hi; i++) {
    const void *in;
    size_t in_len;
    if (j->flags & JF_VIN) {
      const pvin *vi = &((const pvin *)(const void *)j->in)[i];
      in = vi->p;
      in_len = (size_t)vi->len;
    } else {
      in = j->in + i * j->in_size;
      in_len = (size_t)j->in_size;
    }
    void *out = (j->flags & JF_VOUT) ? NULL : j->out + i * j->out_size;
    ctx.idx = i;
    ctx.has_msg = 0;
    if (timed) atomic_store(&ws->t0_ns, mproc__pool_now_ns());
    int rc;
    if (fn) {
      rc = fn(in, in_len, out, &ctx);
    } else {
      rc = MPROC_ENOTREG;
      snprintf(ctx.msg, sizeof ctx.msg, "no task function registered as '%s' in the worker",
               j->fn_name);
      ctx.has_msg = 1;
    }
    if (rc) {
      if (rc > 0) rc = MPROC_ETASK;
      j->errs[i] = rc;
      mproc__pool_job_seterr(j, i, rc, 0, -1, 0, ctx.has_msg ? ctx.msg : NULL, ws->gen);
      nfail++;
    } else if (j->errs[i]) {
      j->errs[i] = 0; /* a retried chunk: clear the earlier attempt's code */
    }
  }
  if (timed) atomic_store(&ws->t0_ns, 0);
  /* Commit: the pool thread trusts results of a TAKEN chunk named here. */
  /* Read only by the pool thread after this process died (waitid orders
   * everything we wrote): relaxed is enough. */
  ws->commit_c = c;
  atomic_store_explicit(&ws->commit_job, j, memory_order_relaxed);
  uint32_t s = atomic_load_explicit(&j->states[c], memory_order_relaxed);
  atomic_store_explicit(&j->states[c], ST_MAKE(CK_DONE, ST_ATT(s), ws->gen),
                        memory_order_release);
  uint64_t now = mproc__pool_now_ns();
  bump(&ws->tasks_done, (hi - lo) - nfail);
  if (nfail) bump(&ws->tasks_failed, nfail);
  bump(&ws->chunks_done, 1);
  bump(&ws->busy_ns, now - t_start);
  return now;
}

/* Find a PENDING chunk left behind by a dead worker and claim it. */
static int sweep_claim(pjob *j, uint32_t gen, uint32_t *out) {
  for (uint32_t c = atomic_load(&j->scan); c < j->nchunks; c++) {
    uint32_t s = atomic_load(&j->states[c]);
    if (ST_KIND(s) != CK_PENDING) continue;
    if (atomic_compare_exchange_strong(&j->states[c], &s,
                                       ST_MAKE(CK_TAKEN, ST_ATT(s), gen))) {
      *out = c;
      return 1;
    }
  }
  return 0;
}

/* Tell the pool thread that j may be complete (SPSC ring, then kick). */
static void notify(pshared *sh, pwslot *ws, pjob *j) {
  uint32_t t = atomic_load_explicit(&ws->ctail, memory_order_relaxed);
  for (;;) {
    uint32_t h = atomic_load(&ws->chead);
    if (t - h < POOL_CRING) break;
    atomic_store(&ws->cwait, 1);
    if (t - atomic_load(&ws->chead) >= POOL_CRING) {
      mproc__pool_kick(sh);
      struct timespec dl;
      mproc__futex_wait(&ws->chead, h, mproc__deadline(0.1, &dl));
    }
  }
  ws->cring[t % POOL_CRING] = j;
  atomic_store_explicit(&ws->ctail, t + 1, memory_order_release);
  mproc__pool_job_signal(sh, j);
  mproc__pool_kick(sh);
}

static void worker_loop(pshared *sh, int slot) {
  pwslot *ws = &sh->w[slot];
  uint32_t gen = ws->gen;
  uint32_t ran = 0;
  int spun = 0;
  uint64_t t_last = 0; /* end of the last chunk; 0 after idling */
  for (;;) {
    uint64_t h = atomic_load(&sh->head), t = atomic_load(&sh->tail);
    if (h >= t) {
      t_last = 0; /* idle time is not busy time */
      atomic_store(&ws->hazard, NULL);
      if (atomic_load(&sh->stop)) _exit(0);
      if (!spun && sh->spin_ns) {
        /* Bounded spin: work submitted right after a result is common
         * (apply loops), and sleeping costs a ~25 us wake-up. */
        spun = 1;
        atomic_fetch_add(&sh->nspin, 1);
        uint64_t end = mproc__pool_now_ns() + sh->spin_ns;
        for (int k = 0;; k++) {
          for (int i = 0; i < 64; i++) mproc__cpu_relax();
          if (atomic_load(&sh->tail) != h || atomic_load(&sh->stop)) break;
          if ((k & 7) == 7 && mproc__pool_now_ns() > end) break;
        }
        atomic_fetch_sub(&sh->nspin, 1);
        continue;
      }
      uint32_t seen = atomic_load(&sh->work.seq);
      if (atomic_load(&sh->tail) != atomic_load(&sh->head) || atomic_load(&sh->stop)) continue;
      mproc__pool_sig_wait(&sh->work, seen, NULL);
      continue;
    }
    pjob *j = atomic_load(&sh->jobs[h % POOL_JOB_RING]);
    atomic_store(&ws->hazard, j);
    if (atomic_load(&sh->head) != h) continue;
    /* Forget the last commit before claiming: a stale marker could name a
     * later job allocated at the same address (ABA). */
    atomic_store_explicit(&ws->commit_job, NULL, memory_order_relaxed);
    uint32_t c = atomic_fetch_add(&j->next, 1);
    if (c >= j->nchunks) {
      if (!(atomic_load(&j->sweep) && sweep_claim(j, gen, &c))) {
        if (atomic_compare_exchange_strong(&sh->head, &h, h + 1))
          if (atomic_load(&sh->space.nwait)) mproc__pool_sig_post(&sh->space);
        continue;
      }
    } else {
      uint32_t s = atomic_load(&j->states[c]);
      if (ST_KIND(s) != CK_PENDING ||
          !atomic_compare_exchange_strong(&j->states[c], &s,
                                          ST_MAKE(CK_TAKEN, ST_ATT(s), gen)))
        continue;
    }
    if (!t_last) t_last = mproc__pool_now_ns();
    t_last = run_chunk(sh, j, c, slot, t_last);
    ran++;
    if (atomic_load(&j->next) >= j->nchunks) {
      /* A sync caller waits on the job itself: no pool-thread wake-up. */
      if (j->flags & JF_SYNC) mproc__pool_job_signal(sh, j);
      else notify(sh, ws, j);
    }
    spun = 0; /* ran work: spin again before sleeping */
    if (sh->maxtasks && ran >= sh->maxtasks) {
      atomic_store(&ws->retiring, 1);
      atomic_store(&ws->hazard, NULL);
      _exit(0);
    }
  }
}

_Noreturn void mproc__pool_worker_main(pshared *sh, int slot) {
  g_in_worker = 1;
  pwslot *ws = &sh->w[slot];
  mproc_pool_init_fn init = sh->init;
  if (sh->method != MPROC_START_FORK && sh->init_name[0]) {
    /* Found by name (checked registered in the owner at create). A
     * forkserver worker may fall back to the address (see run_chunk). */
    mproc_pool_init_fn reg = mproc__target_lookup(sh->init_name);
    if (reg || sh->method == MPROC_START_SPAWN) init = reg;
    if (!init) {
      atomic_store(&ws->init_failed, 2); /* not registered in the worker */
      _exit(3);
    }
  }
  if (init) {
    int rc = init(sh->initarg);
    if (rc) {
      atomic_store(&ws->init_failed, 1);
      _exit(3);
    }
  }
  worker_loop(sh, slot);
  _exit(0);
}

int mproc__pool_spawn(mproc_pool_t *p, int i) {
  pshared *sh = p->sh;
  pwslot *ws = &sh->w[i];
  /* Fresh slot state for the new incarnation. The completion ring was
   * drained by the pool thread before it decided to respawn. */
  atomic_store(&ws->hazard, NULL);
  atomic_store(&ws->commit_job, NULL);
  ws->commit_c = 0;
  atomic_store(&ws->t0_ns, 0);
  atomic_store(&ws->retiring, 0);
  atomic_store(&ws->init_failed, 0);
  atomic_store(&ws->tasks_done, 0);
  atomic_store(&ws->tasks_failed, 0);
  atomic_store(&ws->chunks_done, 0);
  atomic_store(&ws->busy_ns, 0);
  atomic_store(&ws->cwait, 0);
  atomic_store(&ws->chead, 0);
  atomic_store(&ws->ctail, 0);
  p->next_gen = (p->next_gen + 1) & GEN_MASK;
  if (!p->next_gen) p->next_gen = 1;
  ws->gen = p->next_gen;
  p->kill_reason[i] = 0;
  if (sh->method != MPROC_START_FORK) return mproc__pool_launch(p, i);

  /* Without pidfds (valgrind lacks pidfd_open) the worker holds the write
   * end of a death pipe: its read end reports EOF when the worker is gone. */
  int dp[2] = {-1, -1};
  p->use_pidfd = mproc__have_pidfd();
  if (!p->use_pidfd && mproc__sys.pipe2(dp, O_CLOEXEC) < 0) return -errno;
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pid_t parent = getpid();
  pid_t pid = mproc__sys.fork();
  if (pid == 0) {
    /* Child. Die with the pool thread that forked us; the check covers the
     * owner dying before prctl ran. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);
    for (int s = 1; s < NSIG; s++) {
      if (s == SIGKILL || s == SIGSTOP) continue;
      signal(s, SIG_DFL);
    }
    signal(SIGINT, SIG_IGN);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    /* The owner's pool bookkeeping fds are not ours. */
    if (dp[0] >= 0) close(dp[0]);
    if (p->epfd >= 0) close(p->epfd);
    for (int k = 0; k < p->nworkers; k++)
      if (p->pidfd[k] >= 0) close(p->pidfd[k]);
    mproc__pool_fork_identity(i, parent);
    mproc__pool_worker_main(p->sh, i);
  }
  int err = errno;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (pid < 0) {
    if (dp[0] >= 0) {
      close(dp[0]);
      close(dp[1]);
    }
    return -err;
  }
  int fd;
  if (p->use_pidfd) {
    fd = mproc__sys.pidfd_open(pid, 0);
  } else {
    close(dp[1]);
    fd = dp[0];
  }
  if (fd < 0) {
    err = errno;
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -err;
  }
  struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
  if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
    err = errno;
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    close(fd);
    return -err;
  }
  p->pidfd[i] = fd;
  p->is_pidfd[i] = p->use_pidfd;
  p->pid[i] = pid;
  ws->pid = pid;
  p->nalive++;
  return 0;
}
