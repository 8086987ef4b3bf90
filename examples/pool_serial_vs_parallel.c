/* pool_serial_vs_parallel.c - the timing comparison of seed 001: cube over
 * range(10000) with a pool of cpus-1 workers, then serially. The results of
 * both runs are compared; the times are printed (they vary by machine). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "mproc.h"

static long cube_of(long number) {
  long total = 0;
  for (long i = 0; i < number; i++) total += i * i * i;
  return total;
}

static int cube(const void *in, size_t n, void *out, mproc_task_ctx *ctx) {
  (void)n;
  (void)ctx;
  *(long *)out = cube_of(*(const long *)in);
  return 0;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(void) {
  enum { N = 10000 };
  static long numbers[N], par[N], ser[N];
  for (long i = 0; i < N; i++) numbers[i] = i;

  double start = now();
  int cpus = mproc_cpu_count();
  mproc_pool_opts o = {.processes = cpus > 1 ? cpus - 1 : 1};
  mproc_pool_t *p;
  if (mproc_pool_create(&p, &o)) return 1;
  int rc = mproc_pool_map(p, cube, numbers, N, sizeof(long), par, sizeof(long), NULL);
  mproc_pool_close(p);
  mproc_pool_join(p, -1);
  mproc_pool_destroy(p);
  if (rc) return 1;
  printf("Multiprocess time:  %.6f\n", now() - start);

  start = now();
  for (long i = 0; i < N; i++) ser[i] = cube_of(numbers[i]);
  printf("Serial time:  %.6f\n", now() - start);

  int same = 1;
  for (long i = 0; i < N; i++) same &= par[i] == ser[i];
  printf("results identical: %s\n", same ? "yes" : "no");
  printf("cube(9999) = %ld\n", par[N - 1]);
  return same ? 0 : 1;
}
