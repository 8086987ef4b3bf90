/* pool_apply.c - Pool.apply (seed 001): a blocking call; the worker prints
 * its pid, the parent prints the result. */
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
  /* apply returns bytes of any size: hand back the long */
  return mproc_task_return(ctx, &total, sizeof total);
}

int main(void) {
  mproc_pool_t *p;
  if (mproc_pool_create(&p, NULL)) return 1;
  setvbuf(stdout, NULL, _IOLBF, 0);
  long args[2] = {50, 10};
  for (int k = 0; k < 2; k++) {
    long result = 0;
    int rc = mproc_pool_apply(p, cube, &args[k], sizeof args[k], &result, sizeof result, NULL, NULL);
    if (rc) {
      fprintf(stderr, "apply: %s\n", mproc_strerror(rc));
      return 1;
    }
    printf("result:  %ld\n", result);
  }
  mproc_pool_close(p);
  printf("end\n");
  mproc_pool_join(p, -1);
  mproc_pool_destroy(p);
  return 0;
}
