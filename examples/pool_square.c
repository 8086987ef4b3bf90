/* pool_square.c - `with Pool(processes=4) as pool: pool.map(square,
 * range(10))` (seed 004), each task sleeping 0.2 s as in the seed. */
#include <stdio.h>
#include <unistd.h>

#include "mproc.h"

static int square(const void *in, size_t n, void *out, mproc_task_ctx *ctx) {
  (void)n;
  (void)ctx;
  usleep(200000);
  long x = *(const long *)in;
  *(long *)out = x * x;
  return 0;
}

int main(void) {
  mproc_pool_opts o = {.processes = 4};
  mproc_pool_t *pool;
  if (mproc_pool_create(&pool, &o)) return 1;
  long in[10], results[10];
  for (long i = 0; i < 10; i++) in[i] = i;
  int rc = mproc_pool_map(pool, square, in, 10, sizeof(long), results, sizeof(long), NULL);
  mproc_pool_destroy(pool); /* the `with` block's exit */
  if (rc) return 1;
  printf("[");
  for (int i = 0; i < 10; i++) printf("%s%ld", i ? ", " : "", results[i]);
  printf("]\n");
  return 0;
}
