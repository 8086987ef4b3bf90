/* test_cpu_count.c - mproc_cpu_count(): affinity, cgroup v2 cpu.max and v1
 * cfs quota (fed from a fake /proc/self/cgroup and cgroup tree), and the
 * $MPROC_CPU_COUNT override. */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

int mproc__cpu_quota(const char *proc_cgroup, const char *cg_root);

static char g_dir[256];

static void put(const char *rel, const char *text) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", g_dir, rel);
  /* mkdir -p of the parent */
  for (char *s = path + strlen(g_dir) + 1; (s = strchr(s, '/')); s++) {
    *s = 0;
    mkdir(path, 0700);
    *s = '/';
  }
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static int quota(void) {
  char pc[300], root[300];
  snprintf(pc, sizeof pc, "%s/cgroup", g_dir);
  snprintf(root, sizeof root, "%s/sys", g_dir);
  return mproc__cpu_quota(pc, root);
}

static void cleanup(void) {
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
  int r = system(cmd);
  (void)r;
}

static void mkroot(void) {
  snprintf(g_dir, sizeof g_dir, "/tmp/mproc-cpu-XXXXXX");
  assert_non_null(mkdtemp(g_dir));
}

static void at_least_one_and_affinity(void **state) {
  (void)state;
  unsetenv("MPROC_CPU_COUNT");
  int n = mproc_cpu_count();
  assert_true(n >= 1);
  assert_true(n <= sysconf(_SC_NPROCESSORS_ONLN));
  cpu_set_t old, one;
  assert_int_equal(sched_getaffinity(0, sizeof old, &old), 0);
  CPU_ZERO(&one);
  for (int c = 0; c < CPU_SETSIZE; c++)
    if (CPU_ISSET(c, &old)) {
      CPU_SET(c, &one);
      break;
    }
  assert_int_equal(sched_setaffinity(0, sizeof one, &one), 0);
  assert_int_equal(mproc_cpu_count(), 1);
  assert_int_equal(sched_setaffinity(0, sizeof old, &old), 0);
  assert_int_equal(mproc_cpu_count(), n);
}

static void env_override(void **state) {
  (void)state;
  setenv("MPROC_CPU_COUNT", "7", 1);
  assert_int_equal(mproc_cpu_count(), 7);
  int base;
  unsetenv("MPROC_CPU_COUNT");
  base = mproc_cpu_count();
  const char *bad[] = {"0", "-3", "abc", "4x", ""};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    setenv("MPROC_CPU_COUNT", bad[i], 1);
    assert_int_equal(mproc_cpu_count(), base); /* ignored */
  }
  unsetenv("MPROC_CPU_COUNT");
}

static void cgroup_v2(void **state) {
  (void)state;
  mkroot();
  put("cgroup", "0::/a/b\n");
  put("sys/a/b/cpu.max", "max 100000\n");
  assert_int_equal(quota(), 0); /* no limit */
  put("sys/a/b/cpu.max", "150000 100000\n");
  assert_int_equal(quota(), 2); /* 1.5 CPUs rounds up */
  put("sys/a/cpu.max", "50000 100000\n");
  assert_int_equal(quota(), 1); /* an ancestor's smaller quota wins */
  put("sys/a/cpu.max", "400000 100000\n");
  put("sys/cpu.max", "300000 100000\n");
  assert_int_equal(quota(), 2);
  put("sys/a/b/cpu.max", "garbage\n");
  assert_int_equal(quota(), 3); /* unreadable level ignored; root says 3 */
  cleanup();
}

static void cgroup_v1_and_missing(void **state) {
  (void)state;
  mkroot();
  put("cgroup", "4:memory:/x\n3:cpu,cpuacct:/grp\n0::/\n");
  put("sys/cpu,cpuacct/grp/cpu.cfs_quota_us", "250000\n");
  put("sys/cpu,cpuacct/grp/cpu.cfs_period_us", "100000\n");
  assert_int_equal(quota(), 3);
  put("sys/cpu,cpuacct/grp/cpu.cfs_quota_us", "-1\n");
  assert_int_equal(quota(), 0);
  cleanup();
  /* No file at all: no limit. */
  assert_int_equal(mproc__cpu_quota("/nonexistent/cgroup", "/nonexistent"), 0);
}

static const struct CMUnitTest tests[] = {
    MPROC_TEST(at_least_one_and_affinity),
    MPROC_TEST(env_override),
    MPROC_TEST(cgroup_v2),
    MPROC_TEST(cgroup_v1_and_missing),
};

MPROC_TEST_MAIN(tests)
