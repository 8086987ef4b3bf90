/* pool_cube.c - Pool.map of cube over range(5) (seed 001).
 *
 *   p = Pool(cpus - 1); result = p.map(cube, range(5)); print(result)
 *
 * Prints [0, 0, 1, 9, 36]. */
#include <stdio.h>

#include "mproc.h"

/* cube(number): sum of i**3 for i in range(number) */
static int cube(const void *in, size_t n, void *out, mproc_task_ctx *ctx) {
  (void)n;
  (void)ctx;
  long number = *(const long *)in, total = 0;
  for (long i = 0; i < number; i++) total += i * i * i;
  *(long *)out = total;
  return 0;
}

int main(void) {
  int cpus = mproc_cpu_count();
  mproc_pool_opts o = {.processes = cpus > 1 ? cpus - 1 : 1};
  mproc_pool_t *p;
  int rc = mproc_pool_create(&p, &o);
  if (rc) {
    fprintf(stderr, "pool: %s\n", mproc_strerror(rc));
    return 1;
  }
  long numbers[5] = {0, 1, 2, 3, 4}, result[5];
  rc = mproc_pool_map(p, cube, numbers, 5, sizeof(long), result, sizeof(long), NULL);
  if (rc) {
    fprintf(stderr, "map: %s\n", mproc_strerror(rc));
    return 1;
  }
  printf("[");
  for (int i = 0; i < 5; i++) printf("%s%ld", i ? ", " : "", result[i]);
  printf("]\n");
  mproc_pool_close(p);
  mproc_pool_join(p, -1);
  mproc_pool_destroy(p);
  return 0;
}
