/*
 * bench.h - shared helpers for bench_*.c programs.
 *
 * Every benchmark prints one line per figure in the common format
 *   BENCH <name>  mproc=<v> raw=<v> python=<v> unit=<u>  mproc/raw=<r> mproc/python=<r>
 * where the raw C baseline and the Python baseline were measured in the same
 * run (Python through bench/py/<script>.py, which prints one number).
 * A missing baseline prints "-". bench/run.sh runs every benchmark.
 */
#ifndef MPROC_BENCH_H
#define MPROC_BENCH_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static inline double bench_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Defeat constant folding of a benchmark's result. */
static inline void bench_keep(const void *p) { __asm__ __volatile__("" : : "g"(p) : "memory"); }

/* Run `python3 bench/py/<script> <args>` and parse the last number it prints.
 * Returns -1 when Python or the script is unavailable. The path is found
 * relative to $MPROC_BENCH_PY_DIR or the source tree. */
static inline double bench_python(const char *script, const char *args) {
  const char *dir = getenv("MPROC_BENCH_PY_DIR");
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "python3 %s/%s %s 2>/dev/null", dir ? dir : MPROC_BENCH_PY_DEFAULT_DIR,
           script, args ? args : "");
  FILE *f = popen(cmd, "r");
  if (!f) return -1;
  char line[256];
  double v = -1;
  while (fgets(line, sizeof line, f)) {
    char *end;
    double x = strtod(line, &end);
    if (end != line) v = x;
  }
  if (pclose(f) != 0) return -1;
  return v;
}

/* Print one benchmark line. higher_is_better decides how ratios read:
 * for throughput mproc/raw = mproc / raw, for latency raw / mproc... we always
 * print "speed ratio" = how many times faster mproc is (>1 = mproc faster). */
static inline void bench_report(const char *name, const char *unit, int higher_is_better,
                                double mproc, double raw, double python) {
  char rs[32] = "-", ps[32] = "-", rr[32] = "-", pr[32] = "-";
  if (raw > 0) {
    snprintf(rs, sizeof rs, "%.4g", raw);
    snprintf(rr, sizeof rr, "%.3f", higher_is_better ? mproc / raw : raw / mproc);
  }
  if (python > 0) {
    snprintf(ps, sizeof ps, "%.4g", python);
    snprintf(pr, sizeof pr, "%.1f", higher_is_better ? mproc / python : python / mproc);
  }
  printf("BENCH %-40s mproc=%-10.4g raw=%-10s python=%-10s unit=%-8s speed_vs_raw=%-7s speed_vs_python=%s\n",
         name, mproc, rs, ps, unit, rr, pr);
  fflush(stdout);
}

#endif
