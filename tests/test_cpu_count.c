/* test_cpu_count.c - mproc_cpu_count(): affinity, cgroup v2 cpu.max and v1
 * cfs quota (fed from a fake /proc/self/cgroup and cgroup tree, and, when
 * this runs as root with a writable cgroup mount, from a real cgroup), and
 * the $MPROC_CPU_COUNT override. */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
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

/* ---- a real cgroup ---- */

#define CGROUP2_MAGIC 0x63677270 /* CGROUP2_SUPER_MAGIC */
#define CGROUP1_MAGIC 0x27e0eb   /* CGROUP_SUPER_MAGIC */

static int write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (!f) return -errno;
  int ok = fputs(text, f) >= 0;
  ok &= fclose(f) == 0; /* cgroup files report errors on the write-out */
  return ok ? 0 : -1;
}

static int file_has_word(const char *path, const char *word) {
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  char w[64];
  int found = 0;
  while (!found && fscanf(f, "%63s", w) == 1) found = strcmp(w, word) == 0;
  fclose(f);
  return found;
}

static int is_mount_type(const char *dir, long magic) {
  struct statfs st;
  return statfs(dir, &st) == 0 && (long)st.f_type == magic;
}

/* Fork a child, move it into the cgroup dir (via cgroup.procs), and return
 * what mproc_cpu_count() says in there; -1 if the move failed. */
static int cpu_count_inside(const char *dir) {
  int go[2], res[2];
  assert_int_equal(pipe(go), 0);
  assert_int_equal(pipe(res), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    char c;
    if (read(go[0], &c, 1) != 1) _exit(1);
    int n = mproc_cpu_count();
    _exit(write(res[1], &n, sizeof n) == sizeof n ? 0 : 2);
  }
  close(go[0]);
  close(res[1]);
  char path[512], num[32];
  snprintf(path, sizeof path, "%s/cgroup.procs", dir);
  snprintf(num, sizeof num, "%d\n", (int)pid);
  int moved = write_file(path, num) == 0;
  int n = -1;
  if (moved) {
    assert_int_equal(write(go[1], "g", 1), 1);
    assert_int_equal(read(res[0], &n, sizeof n), (int)sizeof n);
  } else {
    kill(pid, SIGKILL);
  }
  int st;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  close(go[1]);
  close(res[0]);
  return n;
}

/* rmdir of a cgroup fails with EBUSY until its last (reaped) member is
 * fully gone: retry briefly. */
static void remove_cgroup(const char *dir) {
  for (int i = 0; i < 500 && rmdir(dir) < 0 && errno == EBUSY; i++) usleep(2000);
  struct stat st;
  if (stat(dir, &st) == 0) fail_msg("could not remove the test cgroup %s", dir);
}

/* The quota must be what decides: with one CPU of affinity the test would
 * pass without it. */
static int enough_cpus(void) {
  unsetenv("MPROC_CPU_COUNT");
  if (mproc_cpu_count() >= 2) return 1;
  print_message("needs 2+ usable CPUs to tell a 0.5 CPU quota from the affinity; skipped\n");
  return 0;
}

static void real_cgroup_v2_cpu_max(void **state) {
  (void)state;
  const char *root = "/sys/fs/cgroup";
  if (!is_mount_type(root, CGROUP2_MAGIC) || access(root, W_OK) != 0) {
    print_message("%s is not a writable cgroup2 mount (needs root and a unified "
                  "hierarchy); skipped\n", root);
    skip();
  }
  if (!enough_cpus()) skip();
  if (!file_has_word("/sys/fs/cgroup/cgroup.controllers", "cpu")) {
    print_message("the cpu controller is not available in %s; skipped\n", root);
    skip();
  }
  /* The root cgroup may hold processes and enable controllers for its
   * children (the no-internal-process rule exempts it). */
  int enabled_cpu = 0;
  if (!file_has_word("/sys/fs/cgroup/cgroup.subtree_control", "cpu")) {
    if (write_file("/sys/fs/cgroup/cgroup.subtree_control", "+cpu\n") != 0) {
      print_message("cannot enable the cpu controller in %s; skipped\n", root);
      skip();
    }
    enabled_cpu = 1;
  }
  char dir[128], path[256];
  snprintf(dir, sizeof dir, "%s/mproc-test-%d", root, (int)getpid());
  assert_int_equal(mkdir(dir, 0755), 0);
  snprintf(path, sizeof path, "%s/cpu.max", dir);
  int set = write_file(path, "50000 100000\n");
  int n = set == 0 ? cpu_count_inside(dir) : -1;
  remove_cgroup(dir);
  if (enabled_cpu) write_file("/sys/fs/cgroup/cgroup.subtree_control", "-cpu\n");
  assert_int_equal(set, 0);
  /* docs/process.md: the quota, rounded up: half a CPU is 1. */
  assert_int_equal(n, 1);
}

/* The same through a v1 cpu hierarchy (hybrid or legacy hosts), since the
 * library reads cpu.cfs_quota_us/cpu.cfs_period_us there. */
static void real_cgroup_v1_cfs_quota(void **state) {
  (void)state;
  /* The library looks for the hierarchy under the controller list that
   * /proc/self/cgroup names ("cpu" or "cpu,cpuacct"). */
  const char *roots[] = {"/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct"};
  const char *root = NULL;
  for (size_t i = 0; i < 2 && !root; i++) {
    char q[256];
    snprintf(q, sizeof q, "%s/cpu.cfs_quota_us", roots[i]);
    if (is_mount_type(roots[i], CGROUP1_MAGIC) && access(q, F_OK) == 0 &&
        access(roots[i], W_OK) == 0)
      root = roots[i];
  }
  if (!root) {
    print_message("no writable cgroup v1 cpu hierarchy under /sys/fs/cgroup; skipped\n");
    skip();
  }
  if (!enough_cpus()) skip();
  char dir[256], path[512];
  snprintf(dir, sizeof dir, "%s/mproc-test-%d", root, (int)getpid());
  assert_int_equal(mkdir(dir, 0755), 0);
  snprintf(path, sizeof path, "%s/cpu.cfs_period_us", dir);
  int set = write_file(path, "100000\n");
  snprintf(path, sizeof path, "%s/cpu.cfs_quota_us", dir);
  if (set == 0) set = write_file(path, "50000\n");
  int n = set == 0 ? cpu_count_inside(dir) : -1;
  remove_cgroup(dir);
  assert_int_equal(set, 0);
  assert_int_equal(n, 1);
}

static const struct CMUnitTest tests[] = {
    MPROC_TEST(at_least_one_and_affinity),
    MPROC_TEST(env_override),
    MPROC_TEST(cgroup_v2),
    MPROC_TEST(cgroup_v1_and_missing),
    MPROC_TEST(real_cgroup_v2_cpu_max),
    MPROC_TEST(real_cgroup_v1_cfs_quota),
};

MPROC_TEST_MAIN(tests)
