/* pool_imap.c - Pool.imap (lazy, ordered) and imap_unordered (seed 001).
 * Inputs come from a generator, pulled only as results are consumed. */
#include <stdio.h>
#include <stdlib.h>

#include "mproc.h"

static int cube(const void *in, size_t n, void *out, mproc_task_ctx *ctx) {
  (void)n;
  (void)ctx;
  long number = *(const long *)in, total = 0;
  for (long i = 0; i < number; i++) total += i * i * i;
  *(long *)out = total;
  return 0;
}

/* range(start, stop) as a generator */
typedef struct range {
  long cur, stop, item;
} range;
static int range_next(void *u, const void **item, size_t *size) {
  range *r = u;
  if (r->cur >= r->stop) return 0;
  r->item = r->cur++;
  *item = &r->item;
  *size = sizeof r->item;
  return 1;
}

static int cmp(const void *a, const void *b) {
  long x = *(const long *)a, y = *(const long *)b;
  return (x > y) - (x < y);
}

int main(void) {
  mproc_pool_t *p;
  if (mproc_pool_create(&p, NULL)) return 1;
  range numbers = {0, 5, 0};
  mproc_imap_t *r;
  if (mproc_pool_imap(p, cube, range_next, &numbers, sizeof(long), NULL, &r)) return 1;
  printf("<IMapIterator %p>\n", (void *)r);
  for (int k = 0; k < 3; k++) {
    const void *v;
    if (mproc_imap_next(r, -1, &v, NULL, NULL)) return 1; /* next(r) */
    printf("%ld\n", *(const long *)v);
  }
  mproc_imap_destroy(r);
  printf("___\n");
  numbers = (range){0, 5, 0};
  if (mproc_pool_imap(p, cube, range_next, &numbers, sizeof(long), NULL, &r)) return 1;
  const void *v;
  int rc;
  while ((rc = mproc_imap_next(r, -1, &v, NULL, NULL)) == 0) printf("%ld\n", *(const long *)v);
  mproc_imap_destroy(r);
  if (rc != MPROC_ESTOPITER) return 1;

  /* imap_unordered: completion order; sort to show the same set */
  printf("___ unordered\n");
  numbers = (range){0, 10, 0};
  mproc_call_opts o = {.flags = MPROC_IMAP_UNORDERED};
  if (mproc_pool_imap(p, cube, range_next, &numbers, sizeof(long), &o, &r)) return 1;
  long got[10];
  int n = 0;
  size_t idx;
  while (n < 10 && mproc_imap_next(r, -1, &v, NULL, &idx) == 0) got[n++] = *(const long *)v;
  mproc_imap_destroy(r);
  qsort(got, (size_t)n, sizeof(long), cmp);
  printf("sorted:");
  for (int i = 0; i < n; i++) printf(" %ld", got[i]);
  printf("\n");
  mproc_pool_close(p);
  mproc_pool_join(p, -1);
  mproc_pool_destroy(p);
  return 0;
}
