/*
 * bench_heap.c - the shared heap against glibc malloc and Python's
 * multiprocessing heap.
 *
 * Work: a window of 1024 live blocks; each step frees the oldest and
 * allocates a new one of a pseudo-random size (small: 16..512 bytes; large:
 * 1 MiB with every page touched). Figures are ns per alloc+free pair.
 *  - mproc: mproc_heap_alloc/free (shared, zeroed, crash-safe).
 *  - raw:   glibc calloc/free in the same process (process-local, zeroed),
 *           the "C programmer without mproc" baseline.
 *  - python: multiprocessing.heap.BufferWrapper (the shared heap behind
 *           RawArray/Value) through bench/py/heap.py, same pattern.
 * "64 MiB" figure: one block of 64 MiB allocated, every page touched, freed,
 * in a loop: mproc reuses the span from its cache of freed memory (a memset
 * instead of 16384 page faults); malloc maps and unmaps it every time;
 * Python's heap gives blocks over 4 MiB their own arena (mmap) each time.
 * 2-process figures: two processes run the loop at once on the same shared
 * heap (mproc) or each on its own malloc (raw) / its own Python heap; the
 * figure is wall time / all pairs (aggregate), so perfect scaling halves it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "mproc.h"

#define WINDOW 1024

typedef int (*alloc_fn)(size_t, void **);
typedef int (*free_fn)(void *);

static int raw_alloc(size_t n, void **out) {
  *out = calloc(1, n);
  return *out ? 0 : -1;
}
static int raw_free(void *p) {
  free(p);
  return 0;
}

static void loop_small(alloc_fn af, free_fn ff, long n, uint64_t seed) {
  void *win[WINDOW] = {0};
  uint64_t x = seed;
  for (long i = 0; i < n; i++) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    int k = (int)(i & (WINDOW - 1));
    if (win[k]) ff(win[k]);
    if (af(16 + (size_t)((x >> 33) % 497), &win[k])) {
      fprintf(stderr, "allocation failed\n");
      exit(1);
    }
    *(volatile char *)win[k] = 1;
  }
  for (int k = 0; k < WINDOW; k++)
    if (win[k]) ff(win[k]);
}

static size_t g_large = (size_t)1 << 20;

static void loop_large(alloc_fn af, free_fn ff, long n) {
  for (long i = 0; i < n; i++) {
    char *p;
    if (af(g_large, (void **)&p)) exit(1);
    for (size_t off = 0; off < g_large; off += 4096) p[off] = 1;
    bench_keep(p);
    ff(p);
  }
}

/* ns per pair with nproc processes running the loop at once. */
static double run(int large, alloc_fn af, free_fn ff, long n, int nproc) {
  if (nproc == 1) {
    double t0 = bench_now();
    if (large)
      loop_large(af, ff, n);
    else
      loop_small(af, ff, n, 1);
    return (bench_now() - t0) * 1e9 / (double)n;
  }
  int go[2];
  if (pipe(go)) exit(1);
  pid_t pids[8];
  for (int p = 0; p < nproc; p++) {
    pids[p] = fork();
    if (pids[p] == 0) {
      close(go[1]);
      char c;
      if (read(go[0], &c, 1) < 0) _exit(1); /* EOF = start */
      if (large)
        loop_large(af, ff, n);
      else
        loop_small(af, ff, n, (uint64_t)p + 1);
      _exit(0);
    }
  }
  close(go[0]);
  double t0 = bench_now();
  close(go[1]);
  for (int p = 0; p < nproc; p++) waitpid(pids[p], NULL, 0);
  return (bench_now() - t0) * 1e9 / (double)(n * nproc);
}

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 2000000;
  if (mproc_init(NULL)) return 1;
  /* Warm up both allocators (first-touch page faults are not the point). */
  run(0, mproc_heap_alloc, mproc_heap_free, 200000, 1);
  run(0, raw_alloc, raw_free, 200000, 1);

  char args[128];
  snprintf(args, sizeof args, "small %ld", n / 20);
  double m = run(0, mproc_heap_alloc, mproc_heap_free, n, 1);
  double r = run(0, raw_alloc, raw_free, n, 1);
  double py = bench_python("heap.py", args);
  bench_report("heap small alloc+free, 1 process", "ns/pair", 0, m, r, py);

  snprintf(args, sizeof args, "small %ld 2", n / 20);
  m = run(0, mproc_heap_alloc, mproc_heap_free, n, 2);
  r = run(0, raw_alloc, raw_free, n, 2);
  py = bench_python("heap.py", args);
  bench_report("heap small alloc+free, 2 processes", "ns/pair", 0, m, r, py);

  long nl = n / 1000 > 200 ? n / 1000 : 200;
  snprintf(args, sizeof args, "large %ld", nl);
  m = run(1, mproc_heap_alloc, mproc_heap_free, nl, 1);
  r = run(1, raw_alloc, raw_free, nl, 1);
  py = bench_python("heap.py", args);
  bench_report("heap 1 MiB alloc+touch+free, 1 process", "ns/pair", 0, m, r, py);

  g_large = (size_t)64 << 20;
  long nh = 40;
  run(1, mproc_heap_alloc, mproc_heap_free, 2, 1); /* first touch is not the point */
  m = run(1, mproc_heap_alloc, mproc_heap_free, nh, 1);
  r = run(1, raw_alloc, raw_free, nh, 1);
  snprintf(args, sizeof args, "huge %ld", nh / 2);
  py = bench_python("heap.py", args);
  bench_report("heap 64 MiB alloc+touch+free, 1 process", "ns/pair", 0, m, r, py);

  mproc_heap_stats st;
  mproc_heap_stats_get(&st);
  printf("# heap after the run: live_blocks=%zu resident=%zu bytes\n", st.live_blocks, st.resident);
  return 0;
}
