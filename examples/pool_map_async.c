/* pool_map_async.c - Pool.map_async with a callback (seed 001). The
 * callback receives the whole result list; then get() returns it too. */
#include <stdio.h>

#include "mproc.h"

static int cube(const void *in, size_t n, void *out, mproc_task_ctx *ctx) {
  (void)n;
  (void)ctx;
  long number = *(const long *)in, total = 0;
  for (long i = 0; i < number; i++) total += i * i * i;
  *(long *)out = total;
  return 0;
}

static void custom_callback(mproc_async_t *ar, const void *result, size_t size, void *user) {
  (void)ar;
  (void)user;
  const long *v = result;
  printf("Got result: [");
  for (size_t i = 0; i < size / sizeof(long); i++) printf("%s%ld", i ? ", " : "", v[i]);
  printf("]\n");
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  mproc_pool_t *p;
  if (mproc_pool_create(&p, NULL)) return 1;
  long numbers[5] = {0, 1, 2, 3, 4}, out[5];
  mproc_call_opts o = {.callback = custom_callback};
  mproc_async_t *result;
  if (mproc_pool_map_async(p, cube, numbers, 5, sizeof(long), out, sizeof(long), &o, &result))
    return 1;
  printf("<MapResult %p>\n", (void *)result);
  const void *r;
  size_t size;
  if (mproc_async_get(result, -1, &r, &size)) return 1;
  for (size_t i = 0; i < size / sizeof(long); i++) printf("%ld\n", ((const long *)r)[i]);
  mproc_async_destroy(result);
  mproc_pool_close(p);
  mproc_pool_join(p, -1);
  mproc_pool_destroy(p);
  return 0;
}
