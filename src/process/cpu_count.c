/*
 * cpu_count.c - mproc_cpu_count(): the CPUs this process may really use.
 *
 * The smallest of: the CPUs in the affinity mask (sched_getaffinity, like
 * os.process_cpu_count() in Python 3.13), and the CPU quota of the
 * process's cgroup and every ancestor cgroup, rounded up: cgroup v2
 * "cpu.max" ("max 100000" or "<quota> <period>"), or v1
 * cpu.cfs_quota_us / cpu.cfs_period_us. $MPROC_CPU_COUNT, a positive
 * integer, overrides everything. Never less than 1.
 *
 * The cgroup part reads paths relative to a root so tests can feed it a
 * fake /proc/self/cgroup and /sys/fs/cgroup (mproc__cpu_quota).
 */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "process/process_int.h"

int mproc__cpu_quota(const char *proc_cgroup, const char *cg_root);

/* Read "<quota> <period>" (v2) or two single-number files (v1); returns
 * ceil(quota/period), or 0 for "no limit". */
static long read_v2_max(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  char q[32] = "";
  long period = 0;
  int n = fscanf(f, "%31s %ld", q, &period);
  fclose(f);
  if (n != 2 || period <= 0 || strcmp(q, "max") == 0) return 0;
  long quota = strtol(q, NULL, 10);
  if (quota <= 0) return 0;
  return (quota + period - 1) / period;
}

static long read_long(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  long v = 0;
  if (fscanf(f, "%ld", &v) != 1) v = 0;
  fclose(f);
  return v;
}

static long min_pos(long a, long b) {
  if (a <= 0) return b;
  if (b <= 0) return a;
  return a < b ? a : b;
}

/* Walk from dir up to root, taking the smallest limit seen. */
static long walk_up(const char *root, const char *cgpath, int v2) {
  char path[4096];
  long best = 0;
  char rel[3072];
  snprintf(rel, sizeof rel, "%s", cgpath);
  for (;;) {
    size_t len = strlen(rel);
    while (len > 1 && rel[len - 1] == '/') rel[--len] = 0;
    if (v2) {
      snprintf(path, sizeof path, "%s%s/cpu.max", root, strcmp(rel, "/") ? rel : "");
      best = min_pos(best, read_v2_max(path));
    } else {
      snprintf(path, sizeof path, "%s%s/cpu.cfs_quota_us", root, strcmp(rel, "/") ? rel : "");
      long q = read_long(path);
      snprintf(path, sizeof path, "%s%s/cpu.cfs_period_us", root, strcmp(rel, "/") ? rel : "");
      long p = read_long(path);
      if (q > 0 && p > 0) best = min_pos(best, (q + p - 1) / p);
    }
    char *slash = strrchr(rel, '/');
    if (!slash || (slash == rel && rel[1] == 0)) break;
    if (slash == rel) rel[1] = 0;
    else *slash = 0;
  }
  return best;
}

int mproc__cpu_quota(const char *proc_cgroup, const char *cg_root) {
  FILE *f = fopen(proc_cgroup, "r");
  if (!f) return 0;
  char line[4096];
  long best = 0;
  while (fgets(line, sizeof line, f)) {
    line[strcspn(line, "\n")] = 0;
    /* "hierarchy-id:controllers:path" */
    char *c1 = strchr(line, ':');
    if (!c1) continue;
    char *c2 = strchr(c1 + 1, ':');
    if (!c2) continue;
    *c2 = 0;
    const char *ctrls = c1 + 1, *path = c2 + 1;
    if (path[0] != '/') continue;
    char root[1024];
    if (strncmp(line, "0:", 2) == 0 && *ctrls == 0) {
      best = min_pos(best, walk_up(cg_root, path, 1));
    } else {
      /* v1: a hierarchy whose controller list has "cpu". */
      char list[256];
      snprintf(list, sizeof list, ",%s,", ctrls);
      if (!strstr(list, ",cpu,")) continue;
      snprintf(root, sizeof root, "%s/%s", cg_root, ctrls);
      best = min_pos(best, walk_up(root, path, 0));
    }
  }
  fclose(f);
  return best > 0 ? (int)(best > 1 << 20 ? 1 << 20 : best) : 0;
}

int mproc_cpu_count(void) {
  const char *env = getenv("MPROC_CPU_COUNT");
  if (env && *env) {
    char *end;
    long v = strtol(env, &end, 10);
    if (*end == 0 && v >= 1 && v <= 1 << 20) return (int)v;
  }
  long n = 0;
  for (int ncpu = 1024; ncpu <= 1 << 16 && n == 0; ncpu *= 4) {
    cpu_set_t *set = CPU_ALLOC(ncpu);
    if (!set) break;
    size_t sz = CPU_ALLOC_SIZE(ncpu);
    if (sched_getaffinity(0, sz, set) == 0) n = CPU_COUNT_S(sz, set);
    CPU_FREE(set);
  }
  if (n <= 0) n = sysconf(_SC_NPROCESSORS_ONLN);
  long q = mproc__cpu_quota("/proc/self/cgroup", "/sys/fs/cgroup");
  if (q > 0 && q < n) n = q;
  return n >= 1 ? (int)n : 1;
}
