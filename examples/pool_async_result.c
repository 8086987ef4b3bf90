/* pool_async_result.c - AsyncResult (seed 004): apply_async of cube over
 * range(6), get with a timeout, ready()/successful(), a task that fails and
 * one that times out (killed after its per-task timeout; the pool goes on). */
#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include "mproc.h"

static int cube(const void *in, size_t n, void *out, mproc_task_ctx *ctx) {
  (void)n;
  (void)out;
  long x = *(const long *)in;
  usleep(100000);
  if (x < 0) return mproc_task_fail(ctx, -EDOM, "negative input %ld", x);
  if (x > 1000) sleep(60); /* never finishes in time */
  long r = x * x * x;
  return mproc_task_return(ctx, &r, sizeof r);
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  mproc_pool_opts po = {.processes = 4};
  mproc_pool_t *pool;
  if (mproc_pool_create(&pool, &po)) return 1;

  mproc_async_t *ar[6];
  for (long i = 0; i < 6; i++)
    if (mproc_pool_apply_async(pool, cube, &i, sizeof i, NULL, &ar[i])) return 1;
  printf("results: [");
  for (int i = 0; i < 6; i++) {
    const void *r;
    int rc = mproc_async_get(ar[i], 3, &r, NULL);
    if (rc == 0) printf("%s%ld", i ? ", " : "", *(const long *)r);
    else printf("%stask failed: %s", i ? ", " : "", mproc_strerror(rc));
    mproc_async_destroy(ar[i]);
  }
  printf("]\n");

  long five = 5;
  mproc_async_t *res;
  if (mproc_pool_apply_async(pool, cube, &five, sizeof five, NULL, &res)) return 1;
  printf("ready: %s\n", mproc_async_ready(res) ? "True" : "False");
  const void *r;
  if (mproc_async_get(res, 2, &r, NULL)) return 1;
  printf("ready: %s\n", mproc_async_ready(res) ? "True" : "False");
  printf("successful: %s\n", mproc_async_successful(res) == 1 ? "True" : "False");
  printf("get: %ld\n", *(const long *)r);
  mproc_async_destroy(res);

  /* a task that raises */
  long neg = -3;
  mproc_async_t *bad;
  if (mproc_pool_apply_async(pool, cube, &neg, sizeof neg, NULL, &bad)) return 1;
  int rc = mproc_async_get(bad, 5, NULL, NULL);
  mproc_task_error e;
  mproc_async_error(bad, &e);
  printf("failing task: successful=%s code=%s message='%s'\n",
         mproc_async_successful(bad) == 1 ? "True" : "False", mproc_err_name(rc), e.message);
  mproc_async_destroy(bad);

  /* get(timeout) that expires, then a per-task timeout that kills it */
  long slow = 5000;
  mproc_call_opts to = {.timeout = 0.5};
  mproc_async_t *hang;
  if (mproc_pool_apply_async(pool, cube, &slow, sizeof slow, &to, &hang)) return 1;
  rc = mproc_async_get(hang, 0.2, NULL, NULL);
  printf("get(timeout=0.2): %s\n", mproc_err_name(rc));
  rc = mproc_async_get(hang, 10, NULL, NULL);
  mproc_async_error(hang, &e);
  printf("timed-out task: code=%s worker replaced: %s\n", mproc_err_name(rc),
         e.message[0] ? "yes" : "no");
  mproc_async_destroy(hang);

  /* the pool goes on */
  long two = 2, v = 0;
  rc = mproc_pool_apply(pool, cube, &two, sizeof two, &v, sizeof v, NULL, NULL);
  printf("after timeout: cube(2) = %ld (%s)\n", v, mproc_err_name(rc));
  mproc_pool_close(pool);
  mproc_pool_join(pool, -1);
  mproc_pool_destroy(pool);
  return 0;
}
