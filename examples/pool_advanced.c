/* pool_advanced.c - Pool's advanced parameters (seed 004):
 *   with Pool(processes=4, maxtasksperchild=100, initializer=init_worker):
 *       pool.map(square, range(1000), chunksize=10)
 * The initializer runs once in every worker, replacements included. Here
 * maxtasksperchild is 10 instead of 100 so that replacement shows: 100
 * chunks at 10 per worker need at least 10 worker processes. */
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>

#include "mproc.h"

typedef struct shared_counts {
  _Atomic int inits; /* in the shared heap: every worker adds one */
} shared_counts;

static int init_worker(void *arg) {
  shared_counts *c = arg;
  atomic_fetch_add(&c->inits, 1);
  return 0;
}

static int square(const void *in, size_t n, void *out, mproc_task_ctx *ctx) {
  (void)n;
  (void)ctx;
  long x = *(const long *)in;
  ((long *)out)[0] = x * x;
  ((long *)out)[1] = getpid();
  return 0;
}

int main(void) {
  shared_counts *c;
  if (mproc_heap_alloc(sizeof *c, (void **)&c)) return 1;
  mproc_pool_opts o = {.processes = 4, .maxtasksperchild = 10, .initializer = init_worker,
                       .initarg = c};
  mproc_pool_t *pool;
  if (mproc_pool_create(&pool, &o)) return 1;
  enum { N = 1000 };
  static long in[N], out[N][2];
  for (long i = 0; i < N; i++) in[i] = i;
  mproc_call_opts co = {.chunksize = 10};
  int rc = mproc_pool_map(pool, square, in, N, sizeof(long), out, sizeof out[0], &co);
  mproc_pool_close(pool);
  mproc_pool_join(pool, -1);
  mproc_pool_stats st;
  mproc_pool_stats_get(pool, &st);
  mproc_pool_destroy(pool);
  if (rc) return 1;
  long sum = 0;
  int distinct = 0;
  for (int i = 0; i < N; i++) {
    sum += out[i][0];
    int seen = 0;
    for (int k = 0; k < i && !seen; k++) seen = out[k][1] == out[i][1];
    distinct += !seen;
  }
  printf("tasks: %d, chunks: %llu\n", N, (unsigned long long)st.chunks_done);
  printf("sum of squares: %ld\n", sum);
  printf("square(999) = %ld\n", out[N - 1][0]);
  printf("workers used: %s\n", distinct >= 10 ? "at least 10" : "fewer than 10");
  printf("initializer runs: %s\n", atomic_load(&c->inits) >= distinct ? "one per worker" : "missing");
  printf("worker deaths: %llu\n", (unsigned long long)st.worker_deaths);
  mproc_heap_free(c);
  return 0;
}
