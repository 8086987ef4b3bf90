/*
 * pool_internal.h - the pool's shared structures (internal to src/pool).
 *
 * DESIGN (see docs/pool.md for the why):
 *  - Every call (apply, map, one imap chunk) becomes a *job* in the shared
 *    heap: a header, one state word per chunk, one error code per task, the
 *    inputs and the outputs. A job is one heap allocation whatever its size:
 *    no per-task allocation on the map path.
 *  - Jobs are published in a ring of job pointers (pshared.jobs). Workers
 *    take the job at the ring's head, claim a chunk index with fetch_add on
 *    job->next (a hint) and then own the chunk by CAS on its state word
 *    (PENDING -> TAKEN|gen). The CAS is what makes crash accounting exact:
 *    a chunk whose state says TAKEN by a dead worker incarnation failed with
 *    that worker; nothing else can be lost. A worker dying between the
 *    fetch_add and the CAS leaves a PENDING chunk below `next`: the pool
 *    thread then sets job->sweep and re-posts the job, and workers sweep the
 *    state array for PENDING chunks.
 *  - A worker publishes the job it is looking at in its slot's `hazard`
 *    before touching it (hazard pointer): the pool thread frees a job only
 *    when no live worker's hazard names it and the ring head has passed it.
 *  - Completion: the worker that commits a chunk of an exhausted job bumps
 *    the job's signal word (futex; waiters in the owner process sleep on it)
 *    and pushes the job on its own completion ring (SPSC, worker -> pool
 *    thread), so the pool thread delivers results and runs callbacks in
 *    completion order. Whether a job is complete is always decided by
 *    scanning its chunk states (a cursor makes the scans O(chunks) in all).
 *  - Worker death is seen on the worker's pidfd by the pool thread, which
 *    reaps it with waitid(P_PIDFD) (rusage: peak RSS; a forkserver worker's
 *    status comes from the server instead, launch.c), repairs the chunk the
 *    worker held (DONE if it had committed, else FAILED or PENDING for a
 *    retry) and starts a replacement.
 *  - Everything a worker uses is in the heap or in the program's image, so
 *    fork, forkserver and spawn workers run the same code; the latter two
 *    find functions by registered name (j->fn_name, sh->init_name).
 *
 * State word of a chunk: kind (3 bits) | attempts (5 bits) | worker
 * incarnation (24 bits). DONE, FAILED and CANCELLED are terminal and never
 * change again; retries move TAKEN back to PENDING only.
 *
 * Lock order (owner process): pool->mu, then nothing. The pool thread runs
 * callbacks without pool->mu.
 */
#ifndef MPROC_POOL_INTERNAL_H
#define MPROC_POOL_INTERNAL_H

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <time.h>

#include "internal.h"

#define POOL_MAGIC MPROC__MAGIC('P', 'O', 'O', 'L')
#define PSH_MAGIC MPROC__MAGIC('P', 'S', 'H', 'D')
#define JOB_MAGIC MPROC__MAGIC('P', 'J', 'O', 'B')
#define ASYNC_MAGIC MPROC__MAGIC('P', 'A', 'S', 'Y')
#define IMAP_MAGIC MPROC__MAGIC('P', 'I', 'M', 'P')

#define POOL_MAX_WORKERS 4096
#define POOL_JOB_RING 4096  /* jobs published and not yet exhausted */
#define POOL_CRING 1024     /* completion ring entries per worker */
#define POOL_INLINE 16      /* variable results up to this size are inline */
#define POOL_MSG 200        /* bytes of a job's first-error message */
#define POOL_STAGE_MIN ((size_t)1 << 20) /* staged calls: see stage.c */
#define POOL_STAGE_IDLE_NS 1000000000ull /* staging block freed when unused */
#define POOL_ARG_MAX ((size_t)64 << 20) /* largest initarg_size */
#define POOL_TNAME 63       /* bytes of a registered target name (process layer) */
#define POOL_WORKER_TARGET "mproc.pool.worker" /* spawn: the worker's target */

/* Chunk state word. */
enum { CK_PENDING = 0, CK_TAKEN = 1, CK_DONE = 2, CK_FAILED = 3, CK_CANCELLED = 4 };
#define ST_KIND(s) ((s)&7u)
#define ST_ATT(s) (((s) >> 3) & 31u)
#define ST_GEN(s) ((s) >> 8)
#define ST_MAKE(k, a, g) ((uint32_t)(k) | ((uint32_t)(a) << 3) | ((uint32_t)(g) << 8))
#define ST_TERMINAL(s) (ST_KIND(s) >= CK_DONE)
#define GEN_MASK 0xffffffu

/* Job flags. */
#define JF_VIN (1u << 0)     /* inputs are pvin records */
#define JF_VOUT (1u << 1)    /* outputs are pvout records */
#define JF_POOLSIG (1u << 2) /* signal the pool-wide imap word, not the job's */
#define JF_SYNC (1u << 3)    /* a sync call waits on it: no pool-thread delivery */

/* A futex word plus a waiter count (waking costs a syscall only when some
 * process sleeps on it). */
typedef struct psig {
  _Atomic uint32_t seq;   /* bumped on every event */
  _Atomic uint32_t nwait; /* sleepers */
} psig;

typedef struct pvin {
  const uint8_t *p; /* input bytes (heap) */
  uint64_t len;
} pvin;

typedef struct pvout {
  uint64_t len;                /* result length */
  uint8_t *p;                  /* heap block when len > POOL_INLINE */
  uint8_t inl[POOL_INLINE];    /* inline bytes otherwise */
} pvout;

struct mproc_async;
struct mproc_pool;

typedef struct pjob {
  uint32_t magic;   /* JOB_MAGIC while alive */
  uint32_t flags;   /* JF_* */
  _Alignas(64) _Atomic uint32_t next; /* claim hint: next chunk index */
  _Alignas(64) psig sig;              /* completion events of this job */
  _Atomic uint32_t sweep;     /* non-zero: PENDING chunks may sit below next */
  _Atomic uint32_t errlock;   /* 0 or the incarnation writing err_* */
  _Atomic uint32_t delivered; /* futex: 1 once the pool thread delivered */
  _Atomic uint32_t ndeliv_wait; /* sleepers on delivered */
  mproc_task_fn fn;           /* function pointer (fork pools) */
  char fn_name[MPROC_POOL_NAME_MAX + 1]; /* or a registered name */
  uint64_t n;                 /* tasks */
  uint32_t nchunks;           /* chunks */
  uint32_t chunksize;         /* tasks per chunk */
  uint64_t in_size;           /* fixed input size; 0 with JF_VIN */
  uint64_t out_size;          /* fixed result size; 0 with JF_VOUT */
  const uint8_t *in;          /* inputs (fixed array or pvin[n]) */
  uint8_t *out;               /* outputs (fixed array or pvout[n]) */
  int32_t *errs;              /* n task codes */
  _Atomic uint32_t *states;   /* nchunks chunk states */
  double timeout;             /* per task; 0 = none */
  uint32_t retries;           /* re-runs allowed after worker death */
  /* First failure (lowest index), written under errlock. */
  int32_t err_code;
  int32_t err_signo;
  int32_t err_status;
  uint32_t err_set;
  uint64_t err_idx;
  int64_t err_rss_kb;
  char err_msg[POOL_MSG];
  /* ---- owner-process bookkeeping (only the owner touches these) ---- */
  struct pjob *lnext, *lprev; /* pool's outstanding list */
  struct pjob *fnext;         /* free list */
  uint64_t last_pos;          /* last ring position holding this job */
  _Atomic uint32_t scan;      /* completion cursor */
  uint64_t base;              /* imap: input index of task 0 */
  int needs_repost;           /* sweep repost waiting for ring space */
  uint32_t refs;              /* caller + pool thread */
  int is_async;               /* delivered through an AsyncResult */
  int delivered_local;        /* pool thread processed it */
  struct mproc_pool *pool;    /* the pool (owner) */
  void *stage;                /* staging block holding copied inputs and
                                 fixed results, or NULL (stage.c) */
  void *user_out;             /* copy results there on delivery (or NULL) */
  int *user_errs;             /* copy codes there on delivery */
  mproc_result_cb cb;
  mproc_error_cb ecb;
  void *cb_user;
  struct mproc_async *ar;     /* handle, for callbacks */
  int final_rc;               /* set on delivery */
  uint8_t data[];             /* states, errs, inputs, outputs */
} pjob;

/* One worker slot; the slot's process is replaced, the slot stays. */
typedef struct pwslot {
  _Alignas(64) _Atomic(pjob *) hazard; /* job the worker is looking at */
  _Atomic(pjob *) commit_job; /* last chunk whose results are complete */
  uint32_t commit_c;
  uint32_t gen;               /* incarnation (24 bits), set by the parent */
  _Atomic uint64_t t0_ns;     /* start of the running timed task, 0 = none */
  double cur_timeout;         /* timeout of that task */
  int32_t pid;                /* worker pid */
  _Atomic uint32_t retiring;  /* exiting after maxtasksperchild */
  _Atomic uint32_t init_failed; /* initializer failed */
  _Atomic uint64_t tasks_done;  /* counters of this incarnation */
  _Atomic uint64_t tasks_failed;
  _Atomic uint64_t chunks_done;
  _Atomic uint64_t busy_ns;
  _Alignas(64) _Atomic uint32_t ctail; /* completion ring: worker writes */
  _Alignas(64) _Atomic uint32_t chead; /* pool thread consumes */
  _Atomic uint32_t cwait;     /* worker sleeps for space (futex on chead) */
  pjob *cring[POOL_CRING];
} pwslot;

/* The pool's shared part (in the heap, seen by the workers). */
typedef struct pshared {
  uint32_t magic;
  uint32_t nworkers;
  _Alignas(64) _Atomic uint64_t head; /* first ring position not exhausted */
  _Alignas(64) _Atomic uint64_t tail; /* next ring position to fill */
  _Alignas(64) psig work;   /* workers sleep here when the ring is empty */
  _Atomic uint32_t nspin;   /* workers spinning for work right now */
  psig space;               /* submitters sleep here when the ring is full */
  psig isig;                /* imap iterators' shared completion word */
  _Atomic uint32_t stop;    /* workers exit when the ring is empty */
  _Atomic uint32_t coll_sleeping; /* the pool thread sleeps in epoll */
  int evfd;                 /* eventfd waking the pool thread */
  uint32_t maxtasks;        /* maxtasksperchild */
  uint32_t spin_ns;         /* bounded spin before sleeping */
  mproc_pool_init_fn init;   /* fork (and forkserver fallback) */
  void *initarg;
  int32_t method;           /* MPROC_START_FORK/_FORKSERVER/_SPAWN */
  uint32_t relay;           /* kicks go through kickw (non-fork pools) */
  _Atomic uint32_t kickw;   /* futex: the owner's relay thread sleeps here */
  _Atomic uint32_t relay_stop; /* owner: relay thread exits */
  char init_name[POOL_TNAME + 1]; /* registered initializer, or "" */
  _Atomic(pjob *) jobs[POOL_JOB_RING];
  pwslot w[];               /* nworkers slots */
} pshared;

/* Owner-process pool handle. */
struct mproc_pool {
  uint64_t heap_scratch[2]; /* a freed heap block's first bytes are the
                               allocator's: keep the magic clear of them */
  uint32_t magic;
  int nworkers;
  pshared *sh;
  pthread_mutex_t mu;
  pthread_cond_t cv;        /* joiners, submitters waiting on jobs */
  pthread_t thr;            /* the pool thread */
  int thr_started;
  int epfd;                 /* epoll: pidfds + eventfd (pool thread) */
  int *pidfd;               /* per slot: pidfd, or a death pipe's read end
                               without pidfds (valgrind); -1 when none */
  int use_pidfd;            /* pidfds available */
  pid_t *pid;               /* per slot */
  int state;                /* PS_* */
  int thr_exit;             /* pool thread should exit */
  int thr_done;             /* pool thread exited */
  int start_err;            /* first fork error at start */
  int broken;               /* initializer failed: fail everything */
  char broken_msg[128];
  uint32_t next_gen;
  pid_t owner;              /* process that created the pool */
  int family_ent;           /* entry in the family table, -1 */
  double task_timeout;      /* defaults */
  unsigned retries;
  pjob *outstanding;        /* jobs not yet delivered (list) */
  uint64_t noutstanding;
  pjob *freelist;           /* jobs to free (pool thread) */
  pjob *deferred;           /* jobs waiting for hazards / ring head */
  int recheck;              /* pool thread: rescan outstanding jobs */
  int ntimed;               /* outstanding jobs with a timeout */
  int nrepost;              /* jobs with needs_repost */
  int nalive;               /* worker processes not yet reaped */
  int joining;              /* join() asked the pool thread to finish */
  int started;              /* pool thread finished starting workers */
  int *kill_reason;         /* per slot: code for a kill we sent, 0 */
  int *is_pidfd;            /* per slot: pidfd[] is a real pidfd */
  struct mproc_process **fsproc; /* per slot: forkserver worker's request
                               (status socket), NULL for fork/spawn */
  pthread_t relay_thr;      /* non-fork pools: kickw -> eventfd relay */
  int relay_started;
  void *initarg_copy;       /* heap copy of initarg (initarg_size), or NULL */
  _Atomic(void *) stage;    /* cached staging block (stage.c), or NULL */
  _Atomic uint64_t stage_ns; /* when it was last given back */
  int *respawn_due;         /* per slot: spawn failed, retry later */
  /* stats (owner side, under mu) */
  uint64_t submitted, cancelled, rec_failed, rec_done, deaths, restarts,
      timeouts, retried;
  uint64_t dead_done[64], dead_failed[64]; /* folded counters per slot */
  uint64_t fold_done, fold_failed, fold_chunks;
  double fold_busy[64];
  struct mproc_async *asyncs; /* live handles (destroy orphans them) */
  struct mproc_imap *imaps;
};

enum { PS_RUNNING = 0, PS_CLOSED = 1, PS_TERMINATED = 2, PS_JOINED = 3 };

struct mproc_async {
  uint64_t heap_scratch[2]; /* see struct mproc_pool */
  uint32_t magic;
  mproc_pool_t *pool;      /* NULL once the pool is gone */
  pjob *job;
  struct mproc_async *next, *prev;
  /* copied on delivery so the handle outlives the job */
  int done;
  int rc;
  mproc_task_error err;
  uint8_t *res;            /* apply result: the task's heap block (res_heap)
                              or a malloc copy of an inline one */
  int res_heap;
  size_t res_len;
  const void *map_out;     /* map: user's out */
  size_t map_len;
};

struct mproc_task_ctx {
  pjob *job;
  pwslot *ws;
  int slot;
  uint64_t idx;
  int has_msg;
  char msg[POOL_MSG];
};

/* ---- dispatch.c ---- */
/* Allocate a job for n tasks in nchunks chunks with the given layout. */
int mproc__pool_job_new(mproc_pool_t *p, mproc_task_fn fn, const char *name,
                        uint64_t n, uint32_t chunksize, uint64_t in_size,
                        uint64_t in_bytes, uint64_t out_size,
                        uint64_t out_bytes, uint32_t flags, pjob **out);
/* Publish a job in the ring (waits while the ring is full). Caller holds no
 * lock. 0 or MPROC_ESTATE if the pool stopped meanwhile. */
int mproc__pool_submit(mproc_pool_t *p, pjob *j);
/* Re-publish a job whose chunks need a sweep (pool thread, under mu). */
void mproc__pool_repost(mproc_pool_t *p, pjob *j);
/* Non-zero when every chunk is terminal (advances j->scan; owner only). */
int mproc__pool_job_complete(pjob *j);
/* Wait until the job is complete: 0 or -ETIMEDOUT. */
int mproc__pool_job_wait(mproc_pool_t *p, pjob *j, const struct timespec *dl);
/* Cancel PENDING chunks; returns tasks cancelled. */
uint64_t mproc__pool_job_cancel(mproc_pool_t *p, pjob *j, int code);
/* Record a task failure (worker or pool thread side). */
void mproc__pool_job_seterr(pjob *j, uint64_t idx, int code, int signo,
                            int status, long rss_kb, const char *msg,
                            uint32_t gen);
/* Wake waiters of the job (and the pool-wide imap word). */
void mproc__pool_job_signal(pshared *sh, pjob *j);
/* Fill an error struct from the job's first failure. */
void mproc__pool_job_error(const pjob *j, mproc_task_error *err);
/* Drop one reference (under mu); the pool thread frees at zero. */
void mproc__pool_job_release_locked(mproc_pool_t *p, pjob *j);
/* Free a job now (no checks). */
void mproc__pool_job_free(pjob *j);
/* Copy a job's outputs/codes to the caller's arrays (owner). */
void mproc__pool_job_copyout(pjob *j, void *user_out, int *user_errs);
/* Detach every imap iterator from a pool being destroyed (under mu). */
void mproc__pool_imaps_orphan(mproc_pool_t *p);
/* Sync caller: take a completed sync job off the outstanding list. */
void mproc__pool_job_finish_sync(mproc_pool_t *p, pjob *j);
/* Free jobs on the free list whose hazards are clear (pool thread). */
void mproc__pool_free_jobs(mproc_pool_t *p);
/* Default chunksize (Python's rule). */
size_t mproc__pool_chunksize(size_t n, int workers);
/* Resolve the call's timeout/retries against the pool defaults. */
void mproc__pool_call_params(mproc_pool_t *p, const mproc_call_opts *o,
                             double *timeout, uint32_t *retries);
/* Validate a pool handle: 0, -EINVAL, -EDESTROYED. */
int mproc__pool_check(const mproc_pool_t *p);
/* Resolve a call's function: *name (may be NULL) and *fn as given;
 * checks the name is registered and, for forkserver/spawn pools, finds the
 * name of a plain pointer. 0, -EINVAL, MPROC_ENOTREG. */
int mproc__pool_resolve(const mproc_pool_t *p, mproc_task_fn *fn, const char **name);
/* Look a registered function up. */
mproc_task_fn mproc__pool_lookup(const char *name);

/* ---- worker.c ---- */
/* Fork the worker of slot i (pool thread). 0 or -errno. */
int mproc__pool_spawn(mproc_pool_t *p, int i);
/* Send sig to the worker of slot i (pidfd, or kill() on kernels and tools
 * without pidfds: safe, the pid is not reaped yet). */
void mproc__pool_signal(mproc_pool_t *p, int i, int sig);
/* Non-zero inside a pool worker process. */
int mproc__pool_in_worker(void);
/* The worker's life in its own process (any start method): initializer,
 * then the worker loop; never returns. */
_Noreturn void mproc__pool_worker_main(pshared *sh, int slot);

/* ---- from the process layer (src/process/process_int.h is not included
 * here: its PS_* names clash with ours; launch.c includes it) ---- */
int mproc__have_pidfd(void);
mproc_target_fn mproc__target_lookup(const char *name);
const char *mproc__target_name_of(mproc_target_fn fn);

/* ---- launch.c (forkserver and spawn workers) ---- */
/* Start the worker of slot i through the fork server or by spawn (pool
 * thread, under mu, which it releases while the start blocks; the slot was
 * reset by mproc__pool_spawn). 0 or < 0. */
int mproc__pool_launch(mproc_pool_t *p, int i);
/* In a new fork worker: its process name and parent pid. */
void mproc__pool_fork_identity(int slot, pid_t owner);
/* Collect the exit of a forkserver worker whose pidfd fired: 1 with the
 * status decoded (signo or status), 0 if it still runs. */
int mproc__pool_fs_reap(mproc_pool_t *p, int i, int *signo, int *status);
/* Forget slot i's forkserver request (close its status socket). */
void mproc__pool_fs_forget(mproc_pool_t *p, int i);
/* Relay thread of a non-fork pool (kickw futex -> eventfd). */
int mproc__pool_relay_start(mproc_pool_t *p);
void mproc__pool_relay_stop(mproc_pool_t *p);
/* Name a registered task function has, or NULL. */
const char *mproc__pool_name_of(mproc_task_fn fn);

/* ---- stage.c ---- */
/* A heap block of at least size bytes for a call's copied inputs and
 * results (resident pages, contents undefined), or NULL: copy into the job
 * as usual (size below POOL_STAGE_MIN, too large, or no memory). */
void *mproc__pool_stage_get(mproc_pool_t *p, size_t size);
/* Give a staging block back (the pool keeps one). Any owner thread. */
void mproc__pool_stage_put(mproc_pool_t *p, void *b);
/* Pool thread: free the cached block once unused for POOL_STAGE_IDLE_NS;
 * returns ms until it should look again, -1 for never. */
int mproc__pool_stage_idle(mproc_pool_t *p);
/* Give a complete job's staging block back once its results were copied
 * out (owner; the job stays until freed as usual). */
void mproc__pool_job_unstage(pjob *j);
/* Free the cached block now (destroy). */
void mproc__pool_stage_drop(mproc_pool_t *p);

/* ---- collector.c ---- */
void *mproc__pool_thread(void *arg);
/* Wake the pool thread (any thread, any process). */
void mproc__pool_kick(pshared *sh);

/* ---- family.c ---- */
int mproc__pool_family_acquire(int want, int nested, int *got);
void mproc__pool_family_release(int ent);

/* ---- helpers ---- */
static inline uint64_t mproc__pool_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Wait on a psig word until it moves from `seen` or the deadline. */
int mproc__pool_sig_wait(psig *s, uint32_t seen, const struct timespec *dl);
void mproc__pool_sig_post(psig *s);

#endif
