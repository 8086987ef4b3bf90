/*
 * heavy.c - the demo: C twin of seed 000. heavy(500) is a CPU-bound double
 * loop computing x**y for x, y in 1..n-1 (integer powers modulo 2^64, by
 * repeated multiplication like Python's naive semantics, accumulated into
 * a checksum so the compiler cannot drop the work). It runs 80 times:
 * serially, then in 80 processes (one mproc_process_t each, as the seed
 * does), printing the wall times and the speed-up.
 *
 * The third section does the same with a pool of cpu_count() workers
 * (seed 000's pooled(): Pool().map over range(80)).
 *
 * Each section is one entry of `sections` below; a section returns its wall
 * time and fills the 80 checksums, which must equal the serial ones (the
 * processes report theirs through the shared heap).
 *
 * Usage: heavy [n [tasks]]  (defaults 500 and 80; $MPROC_HEAVY_N and
 * $MPROC_HEAVY_TASKS too; under valgrind the defaults are 100 and 8).
 */
#include <mproc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

typedef struct config {
  int n;      /* heavy(n) */
  int tasks;  /* how many heavy() calls */
} config;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The CPU-heavy calculation. Returns a checksum of every x**y. */
static uint64_t heavy(int n) {
  uint64_t acc = 0;
  for (uint64_t x = 1; x < (uint64_t)n; x++)
    for (uint64_t y = 1; y < (uint64_t)n; y++) {
      uint64_t r = 1;
      for (uint64_t k = 0; k < y; k++) r *= x; /* x**y mod 2^64 */
      acc = acc * 31 + r;
    }
  return acc;
}

/* ---- section 1: serial ---- */

static double run_serial(const config *c, uint64_t *sums) {
  double t0 = now();
  for (int i = 0; i < c->tasks; i++) sums[i] = heavy(c->n);
  return now() - t0;
}

/* ---- section 2: one process per call ---- */

typedef struct heavy_job {
  int n;          /* argument of heavy() */
  int id;         /* the seed's myid */
  uint64_t *out;  /* where to put the checksum: in the shared heap */
} heavy_job;

static int heavy_target(void *arg) {
  const heavy_job *j = arg;
  *j->out = heavy(j->n);
  printf("%d is done\n", j->id);
  return 0;
}

static double run_processes(const config *c, uint64_t *sums) {
  uint64_t *shared = NULL;
  mproc_process_t **procs = calloc((size_t)c->tasks, sizeof *procs);
  int rc = mproc_heap_alloc((size_t)c->tasks * sizeof *shared, (void **)&shared);
  if (rc || !procs) {
    fprintf(stderr, "heavy: %s\n", rc ? mproc_strerror(rc) : "out of memory");
    exit(1);
  }
  double t0 = now();
  for (int i = 0; i < c->tasks; i++) {
    heavy_job j = {.n = c->n, .id = i, .out = &shared[i]};
    mproc_process_opts o = {.arg_size = sizeof j};
    rc = mproc_process_create(&procs[i], heavy_target, &j, &o);
    if (!rc) rc = mproc_process_start(procs[i]);
    if (rc) {
      fprintf(stderr, "heavy: process %d: %s\n", i, mproc_strerror(rc));
      exit(1);
    }
  }
  for (int i = 0; i < c->tasks; i++) {
    mproc_process_join(procs[i], -1);
    mproc_process_destroy(procs[i]);
  }
  double t = now() - t0;
  memcpy(sums, shared, (size_t)c->tasks * sizeof *shared);
  mproc_heap_free(shared);
  free(procs);
  return t;
}

/* ---- section 3: a pool of cpu_count() workers (seed 000's pooled()) ---- */

/* doit(myid): heavy(n) then "myid is done", as in the seed; in = {n, id} */
static int heavy_task(const void *in, size_t size, void *out, mproc_task_ctx *ctx) {
  (void)size;
  (void)ctx;
  const int *a = in;
  *(uint64_t *)out = heavy(a[0]);
  printf("%d is done\n", a[1]);
  fflush(stdout); /* workers leave with _exit */
  return 0;
}

static double run_pool(const config *c, uint64_t *sums) {
  int(*args)[2] = calloc((size_t)c->tasks, sizeof *args);
  if (!args) exit(1);
  for (int i = 0; i < c->tasks; i++) {
    args[i][0] = c->n;
    args[i][1] = i;
  }
  double t0 = now();
  mproc_pool_t *pool;
  int rc = mproc_pool_create(&pool, NULL); /* with multiprocessing.Pool() as pool: */
  mproc_call_opts o = {.chunksize = 1};    /* one heavy() per task, like the seed */
  if (!rc) rc = mproc_pool_map(pool, heavy_task, args, (size_t)c->tasks, sizeof args[0], sums,
                               sizeof *sums, &o);
  if (rc) {
    fprintf(stderr, "heavy: pool: %s\n", mproc_strerror(rc));
    exit(1);
  }
  mproc_pool_destroy(pool);
  double t = now() - t0;
  free(args);
  return t;
}

/* ---- the sections ---- */

typedef struct section {
  const char *title;                            /* printed as "== title" */
  double (*run)(const config *c, uint64_t *sums); /* returns wall seconds */
} section;

static const section sections[] = {
    {"serial", run_serial},
    {"processes", run_processes},
    {"pool", run_pool},
};

static int arg_or_env(int argc, char **argv, int i, const char *env, int dflt) {
  const char *s = argc > i ? argv[i] : getenv(env);
  int v = s ? atoi(s) : dflt;
  return v > 1 ? v : dflt;
}

int main(int argc, char **argv) {
  int slow = RUNNING_ON_VALGRIND; /* ~50x slower: keep the run short */
  config c = {.n = arg_or_env(argc, argv, 1, "MPROC_HEAVY_N", slow ? 100 : 500),
              .tasks = arg_or_env(argc, argv, 2, "MPROC_HEAVY_TASKS", slow ? 8 : 80)};
  uint64_t *ref = calloc((size_t)c.tasks, sizeof *ref);
  uint64_t *sums = calloc((size_t)c.tasks, sizeof *sums);
  if (!ref || !sums) return 1;
  printf("heavy(%d) x %d, %d CPUs\n", c.n, c.tasks, mproc_cpu_count());
  double serial = 0;
  int ok = 1;
  for (size_t s = 0; s < sizeof sections / sizeof sections[0]; s++) {
    printf("== %s\n", sections[s].title);
    fflush(stdout);
    double t = sections[s].run(&c, s == 0 ? ref : sums);
    if (s == 0) {
      serial = t;
      printf("%-10s Took: %.3f s\n", sections[s].title, t);
    } else {
      int same = memcmp(ref, sums, (size_t)c.tasks * sizeof *ref) == 0;
      ok &= same;
      printf("%-10s Took: %.3f s  speed-up: %.2fx  results match serial: %s\n",
             sections[s].title, t, serial / t, same ? "yes" : "NO");
    }
    fflush(stdout);
  }
  free(ref);
  free(sums);
  return ok ? 0 : 1;
}
