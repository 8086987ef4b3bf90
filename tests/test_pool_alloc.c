/* test_pool_alloc.c - the fixed-size map makes no per-task allocation.
 * This test is linked with -Wl,--wrap for the heap's allocator and for
 * malloc/calloc/realloc (tests/CMakeLists.txt): every call made by the
 * library's objects, in the owner and in the forked workers, bumps a
 * counter in MAP_SHARED memory. A map of n tasks must cost the same number
 * of allocations whatever n is. */
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "harness.h"

static _Atomic long *g_allocs; /* shared with the forked workers */

int __real_mproc__heap_alloc(size_t size, void **out);
int __real_mproc__heap_alloc_ex(size_t size, unsigned flags, void **out);
void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);

static void count(void) {
  if (g_allocs) atomic_fetch_add(g_allocs, 1);
}
int __wrap_mproc__heap_alloc(size_t size, void **out) {
  count();
  return __real_mproc__heap_alloc(size, out);
}
int __wrap_mproc__heap_alloc_ex(size_t size, unsigned flags, void **out) {
  count();
  return __real_mproc__heap_alloc_ex(size, flags, out);
}
void *__wrap_malloc(size_t n) {
  count();
  return __real_malloc(n);
}
void *__wrap_calloc(size_t n, size_t m) {
  count();
  return __real_calloc(n, m);
}
void *__wrap_realloc(void *p, size_t n) {
  count();
  return __real_realloc(p, n);
}

static int sq(const void *in, size_t n, void *out, mproc_task_ctx *c) {
  (void)n;
  (void)c;
  long x = *(const long *)in;
  *(long *)out = x * x;
  return 0;
}

enum { NMAX = 100000 };

/* Allocations made by one map of n tasks (inputs and outputs in the heap,
 * so nothing needs copying). */
static long allocs_of_map(mproc_pool_t *p, long *in, long *out, size_t n, size_t chunksize) {
  mproc_call_opts o = {.chunksize = chunksize};
  long before = atomic_load(g_allocs);
  MPROC_PASS(mproc_pool_map(p, sq, in, n, sizeof *in, out, sizeof *out, &o));
  long after = atomic_load(g_allocs);
  for (size_t i = 0; i < n; i += 997) assert_int_equal(out[i], in[i] * in[i]);
  return after - before;
}

static void test_fixed_map_allocs_do_not_grow_with_n(void **s) {
  (void)s;
  g_allocs = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  assert_true(g_allocs != MAP_FAILED);
  mproc_pool_t *p = NULL;
  mproc_pool_opts po = {.processes = 2};
  MPROC_PASS(mproc_pool_create(&p, &po));
  long *in, *out;
  MPROC_PASS(mproc_heap_alloc(NMAX * sizeof *in, (void **)&in));
  MPROC_PASS(mproc_heap_alloc(NMAX * sizeof *out, (void **)&out));
  for (long i = 0; i < NMAX; i++) in[i] = i;
  allocs_of_map(p, in, out, 100, 0); /* warm: first-use allocations */
  /* default chunking: the same count for 100 and 100000 tasks */
  long a_small = allocs_of_map(p, in, out, 100, 0);
  long a_big = allocs_of_map(p, in, out, NMAX, 0);
  assert_int_equal(a_big, a_small);
  /* one task per chunk: still nothing per task */
  long c_small = allocs_of_map(p, in, out, 100, 1);
  long c_big = allocs_of_map(p, in, out, 20000, 1);
  assert_int_equal(c_big, c_small);
  /* >= 1: the counter is live (the job itself); <= 4: little else */
  assert_true(a_small >= 1 && a_small <= 4);
  mproc_heap_free(in);
  mproc_heap_free(out);
  MPROC_PASS(mproc_pool_destroy(p));
  munmap((void *)g_allocs, 4096);
  g_allocs = NULL;
}

static const struct CMUnitTest tests[] = {
    MPROC_TEST(test_fixed_map_allocs_do_not_grow_with_n),
};

MPROC_TEST_MAIN(tests)
