/* pool_starmap.c - Pool.starmap and starmap_async (seed 001): a function of
 * several arguments mapped over a list of argument tuples. In C a tuple is a
 * struct; starmap maps over an array of them. */
#include <stdio.h>
#include <stdlib.h>

#include "mproc.h"

typedef struct args {
  long a;
  double b;
} args;

/* multiply(a, b) */
static int multiply(const void *in, size_t n, void *out, mproc_task_ctx *ctx) {
  (void)n;
  (void)ctx;
  const args *x = in;
  *(double *)out = (double)x->a * x->b;
  return 0;
}

int main(void) {
  mproc_pool_t *p;
  if (mproc_pool_create(&p, NULL)) return 1;
  srand(1234);
  args items[10];
  for (int i = 0; i < 10; i++) items[i] = (args){i, (double)rand() / RAND_MAX};
  double result[10];
  if (mproc_pool_starmap(p, multiply, items, 10, sizeof(args), result, sizeof(double), NULL))
    return 1;
  printf("starmap: [");
  for (int i = 0; i < 10; i++) printf("%s%.6f", i ? ", " : "", result[i]);
  printf("]\n");
  for (int i = 0; i < 10; i++) printf("item %d: %ld * %.6f = %.6f\n", i, items[i].a, items[i].b, result[i]);

  /* starmap_async: returns at once; get() waits */
  double result2[10];
  mproc_async_t *ar;
  if (mproc_pool_starmap_async(p, multiply, items, 10, sizeof(args), result2, sizeof(double), NULL, &ar))
    return 1;
  printf("<MapResult %p>\n", (void *)ar);
  const void *r;
  size_t size;
  if (mproc_async_get(ar, -1, &r, &size)) return 1;
  for (size_t i = 0; i < size / sizeof(double); i++) printf("async %zu: %.6f\n", i, ((const double *)r)[i]);
  mproc_async_destroy(ar);
  mproc_pool_close(p);
  mproc_pool_join(p, -1);
  mproc_pool_destroy(p);
  return 0;
}
