/* pool_apply_async.c - Pool.apply_async with a callback (seed 001). The
 * callback runs in the pool's thread of the parent, in completion order. */
#include <stdio.h>
#include <unistd.h>

#include "mproc.h"

static int cube(const void *in, size_t n, void *out, mproc_task_ctx *ctx) {
  (void)n;
  (void)out;
  long number = *(const long *)in, total = 0;
  printf("number: %ld ; process id: %d\n", number, (int)getpid());
  fflush(stdout);
  for (long i = 0; i < number; i++) total += i * i * i;
  return mproc_task_return(ctx, &total, sizeof total);
}

static void custom_callback(mproc_async_t *ar, const void *result, size_t size, void *user) {
  (void)ar;
  (void)size;
  (void)user;
  printf("Got result: %ld\n", *(const long *)result);
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  mproc_pool_t *p;
  if (mproc_pool_create(&p, NULL)) return 1;
  mproc_call_opts o = {.callback = custom_callback};
  long args[2] = {50, 10};
  mproc_async_t *res[2];
  for (int k = 0; k < 2; k++) {
    if (mproc_pool_apply_async(p, cube, &args[k], sizeof args[k], &o, &res[k])) return 1;
    printf("result:  <AsyncResult %p>\n", (void *)res[k]);
  }
  mproc_pool_close(p);
  mproc_pool_join(p, -1); /* every callback has run when join returns */
  for (int k = 0; k < 2; k++) mproc_async_destroy(res[k]);
  mproc_pool_destroy(p);
  printf("end\n");
  return 0;
}
