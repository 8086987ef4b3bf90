/*
 * bench_lock.c - Lock figures, each beside a process-shared ROBUST pthread
 * mutex (the raw C baseline doing the same work) and Python's
 * multiprocessing.Lock (bench/py/lock.py), measured in the same run:
 *
 *   lock uncontended acquire+release   ns per pair, one process
 *   lock 2-process locked counter      increments per second: two processes
 *                                      each do N x {lock; counter++; unlock}
 *                                      on one shared counter, timed from a
 *                                      common start to the last finish; each
 *                                      child is pinned to its own CPU (when
 *                                      2 are allowed) so both really run at
 *                                      once: unpinned, the scheduler often
 *                                      runs them one after the other and the
 *                                      figure measures no contention at all
 *
 * Each figure is the best of REPS runs, mproc and raw alternating (the
 * machine is shared and noisy). MPROC_BENCH_VERBOSE=1 prints every
 * contended run (with how often the lock changed hands) on stderr.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sched_setaffinity */
#endif
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "mproc.h"

#define REPS 5
#define N_UNCONTENDED 5000000L
#define N_CONTENDED 1000000L
#define PY_UNCONTENDED "2000000"
#define PY_CONTENDED "200000"

/* The counter and each lock sit on cache lines of their own, so both
 * candidates pay the same two-line traffic (mproc's Lock is a separate heap
 * object: a pthread mutex next to the counter would get one line free). */
typedef struct arena {
  _Atomic int go;             /* start flag for the contended runs */
  _Atomic int ready;          /* children waiting at the start */
  mproc_lock_t *lock;         /* mproc (the object lives elsewhere in the heap) */
  _Alignas(64) volatile int64_t counter; /* the shared counter */
  int64_t handoffs;           /* times the lock changed process (same line) */
  int last;                   /* child that incremented last */
  _Alignas(64) pthread_mutex_t mu;       /* raw baseline: robust, process-shared */
  char tail[64];
} arena;

static arena *A;

static void die(const char *what, int rc) {
  fprintf(stderr, "bench_lock: %s: %s\n", what, mproc_strerror(rc));
  exit(1);
}

static void raw_init(void) {
  pthread_mutexattr_t at;
  pthread_mutexattr_init(&at);
  pthread_mutexattr_setpshared(&at, PTHREAD_PROCESS_SHARED);
  pthread_mutexattr_setrobust(&at, PTHREAD_MUTEX_ROBUST);
  pthread_mutex_init(&A->mu, &at);
  pthread_mutexattr_destroy(&at);
}

/* One timed run of each kind; main() alternates them REPS times and keeps
 * the best of each, so a burst of load on the shared machine hits both. */
static double uncontended(int raw) {
  double t0 = bench_now();
  if (raw) {
    for (long i = 0; i < N_UNCONTENDED; i++) {
      pthread_mutex_lock(&A->mu);
      pthread_mutex_unlock(&A->mu);
    }
  } else {
    for (long i = 0; i < N_UNCONTENDED; i++) {
      mproc_lock_acquire(A->lock, -1);
      mproc_lock_release(A->lock);
    }
  }
  return (bench_now() - t0) / N_UNCONTENDED * 1e9;
}

/* Pin the calling child to the idx-th CPU it may use (no-op with < 2). */
static void pin_child(int idx) {
  cpu_set_t all, one;
  if (sched_getaffinity(0, sizeof all, &all) != 0 || CPU_COUNT(&all) < 2) return;
  for (int c = 0, seen = 0; c < CPU_SETSIZE; c++) {
    if (!CPU_ISSET(c, &all) || seen++ != idx) continue;
    CPU_ZERO(&one);
    CPU_SET(c, &one);
    sched_setaffinity(0, sizeof one, &one);
    return;
  }
}

/* The locked work: one increment, and a note when the lock changed hands
 * (a cheap measure of how the lock shares out: few long turns or many
 * short ones). */
static inline void locked_work(int me) {
  if (A->last != me) {
    A->last = me;
    A->handoffs++;
  }
  A->counter++;
}

static void child_loop(int raw, int me) {
  pin_child(me - 1);
  atomic_fetch_add(&A->ready, 1);
  while (!atomic_load(&A->go)) sched_yield();
  if (raw) {
    for (long i = 0; i < N_CONTENDED; i++) {
      if (pthread_mutex_lock(&A->mu) == EOWNERDEAD) pthread_mutex_consistent(&A->mu);
      locked_work(me);
      pthread_mutex_unlock(&A->mu);
    }
  } else {
    for (long i = 0; i < N_CONTENDED; i++) {
      mproc_lock_acquire(A->lock, -1);
      locked_work(me);
      mproc_lock_release(A->lock);
    }
  }
  _exit(0);
}

static double contended(int raw) {
  A->counter = 0;
  A->handoffs = 0;
  A->last = 0;
  atomic_store(&A->go, 0);
  atomic_store(&A->ready, 0);
  pid_t p[2];
  for (int i = 0; i < 2; i++) {
    p[i] = fork();
    if (p[i] == 0) child_loop(raw, i + 1);
  }
  while (atomic_load(&A->ready) < 2) sched_yield();
  double t0 = bench_now();
  atomic_store(&A->go, 1);
  for (int i = 0; i < 2; i++) waitpid(p[i], NULL, 0);
  double dt = bench_now() - t0;
  if (A->counter != 2 * N_CONTENDED) {
    fprintf(stderr, "bench_lock: counter %lld, expected %ld\n", (long long)A->counter,
            2 * N_CONTENDED);
    exit(1);
  }
  return 2.0 * N_CONTENDED / dt;
}

int main(void) {
  int rc;
  /* The arena lives in the mproc heap, so both candidates get the same
   * kind of shared memory (MAP_SHARED memfd). */
  if ((rc = mproc_heap_alloc(sizeof(arena), (void **)&A))) die("heap", rc);
  if ((rc = mproc_lock_create(&A->lock))) die("lock", rc);
  raw_init();

  double m = 1e30, r = 1e30;
  for (int i = 0; i < REPS; i++) {
    double a = uncontended(0), b = uncontended(1);
    if (a < m) m = a;
    if (b < r) r = b;
  }
  double py = bench_python("lock.py", "uncontended " PY_UNCONTENDED);
  bench_report("lock uncontended acquire+release", "ns", 0, m, r, py);

  m = 0;
  r = 0;
  for (int i = 0; i < REPS; i++) {
    double a = contended(0);
    int64_t ha = A->handoffs;
    double b = contended(1);
    if (getenv("MPROC_BENCH_VERBOSE"))
      fprintf(stderr, "  run %d: mproc %.4g ops/s (%lld handoffs)  raw %.4g ops/s (%lld handoffs)\n",
              i, a, (long long)ha, b, (long long)A->handoffs);
    if (a > m) m = a;
    if (b > r) r = b;
  }
  py = bench_python("lock.py", "contended " PY_CONTENDED);
  bench_report("lock 2-process locked counter", "ops/s", 1, m, r, py);

  mproc_lock_destroy(A->lock);
  pthread_mutex_destroy(&A->mu);
  mproc_heap_free(A);
  return 0;
}
