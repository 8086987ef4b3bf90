/*
 * bench_process.c - Process start+join for each start method against raw
 * fork()+waitpid() and Python's Process(...).start()/join(); and the
 * speed-up of heavy() x 80 run in 2 processes over running it serially
 * (mproc processes vs raw forks vs Python's multiprocessing).
 *
 * Lines (see bench.h): latencies in microseconds (speed_vs_raw > 1 means
 * mproc is faster than raw fork), speed-ups as "x" (higher is better).
 * Python's heavy() (exact big-integer powers) is far slower than the C one,
 * so its speed-up is measured on heavy(120) x 20: only the ratio compares.
 * Start+join figures are the best of 40 batches (raw and mproc batches
 * interleaved, so both get the machine's quiet moments): the 2-CPU machine
 * is shared and its noise only ever adds.
 * The raw baseline of fork and forkserver is fork()+waitpid() of a child
 * that _exits at once; that of spawn is fork()+exec of this same program
 * (which returns at once from main)+waitpid(), the same work as a spawn.
 * Usage: bench_process [quick]   ("quick" = fewer rounds)
 */
#include <mproc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

static int noop(void *arg) {
  (void)arg;
  return 0;
}

/* ---- start + join ---- */

static double raw_fork_us(int count) {
  double t0 = bench_now();
  for (int i = 0; i < count; i++) {
    pid_t pid = fork();
    if (pid == 0) _exit(0);
    int st;
    waitpid(pid, &st, 0);
  }
  return (bench_now() - t0) / count * 1e6;
}

/* The same work as a spawn start: fork, exec this program (which returns
 * at once), wait. */
static const char *g_self_argv0;
static double raw_exec_us(int count) {
  double t0 = bench_now();
  for (int i = 0; i < count; i++) {
    pid_t pid = fork();
    if (pid == 0) {
      execl("/proc/self/exe", g_self_argv0, "--noop", (char *)NULL);
      _exit(127);
    }
    int st;
    waitpid(pid, &st, 0);
  }
  return (bench_now() - t0) / count * 1e6;
}

static void warm_up(int method) {
  mproc_process_opts o = {.start_method = method};
  mproc_process_t *p;
  /* starts the forkserver, faults in the code paths */
  if (mproc_process_create(&p, noop, NULL, &o) || mproc_process_start(p) ||
      mproc_process_join(p, -1)) {
    fprintf(stderr, "bench_process: method %d failed\n", method);
    exit(1);
  }
  mproc_process_destroy(p);
}

static double mproc_us(int method, int count) {
  mproc_process_opts o = {.start_method = method};
  mproc_process_t *p;
  double t0 = bench_now();
  for (int i = 0; i < count; i++) {
    mproc_process_create(&p, noop, NULL, &o);
    mproc_process_start(p);
    mproc_process_join(p, -1);
    mproc_process_destroy(p);
  }
  return (bench_now() - t0) / count * 1e6;
}

/* ---- heavy ---- */

static uint64_t heavy(int n) {
  uint64_t acc = 0;
  for (uint64_t x = 1; x < (uint64_t)n; x++)
    for (uint64_t y = 1; y < (uint64_t)n; y++) {
      uint64_t r = 1;
      for (uint64_t k = 0; k < y; k++) r *= x;
      acc = acc * 31 + r;
    }
  return acc;
}

typedef struct heavy_job {
  int n, count;     /* heavy(n), count times */
  uint64_t *out;    /* checksum, in the shared heap */
} heavy_job;

static int heavy_many(void *arg) {
  heavy_job *j = arg;
  uint64_t s = 0;
  for (int i = 0; i < j->count; i++) s += heavy(j->n);
  *j->out = s;
  return 0;
}

static double serial_heavy(int n, int tasks) {
  double t0 = bench_now();
  uint64_t s = 0;
  for (int i = 0; i < tasks; i++) s += heavy(n);
  bench_keep(&s);
  return bench_now() - t0;
}

static double mproc_heavy(int n, int tasks) {
  uint64_t *out;
  mproc_heap_alloc(2 * sizeof *out, (void **)&out);
  mproc_process_t *p[2];
  double t0 = bench_now();
  for (int i = 0; i < 2; i++) {
    heavy_job j = {.n = n, .count = tasks / 2, .out = &out[i]};
    mproc_process_create(&p[i], heavy_many, &j, &(mproc_process_opts){.arg_size = sizeof j});
    mproc_process_start(p[i]);
  }
  for (int i = 0; i < 2; i++) {
    mproc_process_join(p[i], -1);
    mproc_process_destroy(p[i]);
  }
  double t = bench_now() - t0;
  mproc_heap_free(out);
  return t;
}

static double raw_heavy(int n, int tasks) {
  double t0 = bench_now();
  pid_t pid[2];
  for (int i = 0; i < 2; i++) {
    pid[i] = fork();
    if (pid[i] == 0) {
      uint64_t s = 0;
      for (int k = 0; k < tasks / 2; k++) s += heavy(n);
      _exit((int)(s & 1));
    }
  }
  for (int i = 0; i < 2; i++) waitpid(pid[i], NULL, 0);
  return bench_now() - t0;
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--noop") == 0) return 0; /* raw_exec_us */
  g_self_argv0 = argv[0];
  mproc_register_target("noop", noop);
  if (mproc_spawn_main(argc, argv)) return 1;
  int quick = argc > 1 && strcmp(argv[1], "quick") == 0;
  int forks = quick ? 200 : 2000, spawns = quick ? 40 : 200; /* >= 40: batches */
  char args[64];

  static const struct { const char *name; int method; int count; const char *py; } m[] = {
      {"process start+join fork", MPROC_START_FORK, 0, "fork"},
      {"process start+join forkserver", MPROC_START_FORKSERVER, 0, "forkserver"},
      {"process start+join spawn", MPROC_START_SPAWN, 1, "spawn"},
  };
  for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) {
    int count = m[i].count ? spawns : forks;
    warm_up(m[i].method);
    double raw = 1e30, mp = 1e30;
    for (int b = 0; b < 40; b++) {
      double r = m[i].method == MPROC_START_SPAWN ? raw_exec_us(count / 40)
                                                  : raw_fork_us(count / 40);
      double x = mproc_us(m[i].method, count / 40);
      if (r < raw) raw = r;
      if (x < mp) mp = x;
    }
    snprintf(args, sizeof args, "start %s %d", m[i].py, m[i].count ? spawns / 10 : forks / 10);
    double py = bench_python("process.py", args);
    bench_report(m[i].name, "us", 0, mp, raw, py);
  }

  int n = quick ? 200 : 500, tasks = quick ? 20 : 80;
  int cpus = mproc_cpu_count();
  double serial = serial_heavy(n, tasks);
  double mp = serial / mproc_heavy(n, tasks);
  double raw = serial / raw_heavy(n, tasks);
  snprintf(args, sizeof args, "heavy %d %d", quick ? 60 : 120, 20);
  double py = bench_python("process.py", args);
  char name[64];
  snprintf(name, sizeof name, "heavy(%d) x%d speed-up, 2 procs/%d cpu", n, tasks, cpus);
  bench_report(name, "x", 1, mp, raw, py);
  return 0;
}
