/* harness.c - see harness.h. The leak check runs after the selected cases:
 * a child, fd or /dev/shm entry that outlives a test fails the run. */
#include "harness.h"

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

double mproc_test_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double mproc_test_join_cpu(pid_t pid) {
  struct rusage ru;
  int st;
  assert_int_equal(wait4(pid, &st, 0, &ru), pid);
  assert_true(WIFEXITED(st));
  assert_int_equal(WEXITSTATUS(st), 0);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

int mproc_test_count_fds(void) {
  int n = 0;
  DIR *d = opendir("/proc/self/fd");
  if (!d) return -1;
  struct dirent *e;
  while ((e = readdir(d)))
    if (e->d_name[0] != '.') n++;
  closedir(d);
  return n - 1; /* the DIR's own fd */
}

int mproc_test_count_children(void) {
  /* Sum the children of every thread of this process. */
  int n = 0;
  DIR *d = opendir("/proc/self/task");
  if (!d) return -1;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    char path[300];
    snprintf(path, sizeof path, "/proc/self/task/%.200s/children", e->d_name);
    FILE *f = fopen(path, "r");
    if (!f) continue;
    int pid;
    while (fscanf(f, "%d", &pid) == 1) n++;
    fclose(f);
  }
  closedir(d);
  return n;
}

int mproc_test_children_of(pid_t pid, pid_t *out, char *state, int cap) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)pid, (int)pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  int n = 0, kid;
  while (n < cap && fscanf(f, "%d", &kid) == 1) {
    char sp[64], buf[512] = {0};
    snprintf(sp, sizeof sp, "/proc/%d/stat", kid);
    FILE *s = fopen(sp, "r");
    if (!s) continue; /* gone since the list was read */
    size_t r = fread(buf, 1, sizeof buf - 1, s);
    (void)r;
    fclose(s);
    /* The state follows the command name, which may hold ") ". */
    char *rp = strrchr(buf, ')');
    out[n] = kid;
    if (state) state[n] = rp && rp[1] ? rp[2] : '?';
    n++;
  }
  fclose(f);
  return n;
}

int mproc_test_zombies_of(pid_t pid) {
  pid_t kids[4096];
  char st[4096];
  int n = mproc_test_children_of(pid, kids, st, 4096);
  int z = 0;
  for (int i = 0; i < n; i++) z += st[i] == 'Z';
  return n < 0 ? -1 : z;
}

int mproc_test_count_shm(void) {
  int n = 0;
  DIR *d = opendir("/dev/shm");
  if (!d) return 0;
  struct dirent *e;
  while ((e = readdir(d)))
    if (strncmp(e->d_name, "mproc", 5) == 0) n++;
  closedir(d);
  return n;
}

/* pid's state letter from /proc ('R', 'S', 'Z', ...), 0 when it is gone. */
static char pid_state(pid_t pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  char buf[512] = {0};
  size_t r = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  (void)r;
  /* The state follows the command name, which may hold ") ". */
  char *rp = strrchr(buf, ')');
  return rp && rp[1] ? rp[2] : '?';
}

int mproc_test_pid_running(pid_t pid) {
  char st = pid_state(pid);
  return st && st != 'Z' && st != 'X';
}

int mproc_test_wait_gone(pid_t pid, double timeout) {
  double end = mproc_test_now() + timeout;
  for (;;) {
    /* Reap it if it is our zombie; then check existence. */
    waitpid(pid, NULL, WNOHANG);
    char st = pid_state(pid);
    if (!st) return 1;
    if (st == 'Z' || st == 'X') {
      /* A zombie that is not ours counts as gone (its parent reaps it). */
      if (waitpid(pid, NULL, WNOHANG) < 0) return 1;
    }
    if (mproc_test_now() > end) return 0;
    usleep(2000);
  }
}

static int g_fds0, g_shm0;
static int g_leaked; /* teardown failures do not count in cmocka's result */

static int leak_setup(void **state) {
  (void)state;
  g_fds0 = mproc_test_count_fds();
  g_shm0 = mproc_test_count_shm();
  return 0;
}

static int leak_teardown(void **state) {
  (void)state;
  /* Children may take a moment to be reaped by the code under test. */
  double end = mproc_test_now() + 2.0;
  int kids;
  while ((kids = mproc_test_count_children()) > 0 && mproc_test_now() < end)
    usleep(5000);
  int fds = mproc_test_count_fds(), shm = mproc_test_count_shm();
  int bad = 0;
  if (kids > 0) {
    fprintf(stderr, "LEAK: %d child process(es) left behind\n", kids);
    bad = 1;
  }
  if (fds > g_fds0) {
    fprintf(stderr, "LEAK: %d fd(s) left open (before %d, after %d)\n",
            fds - g_fds0, g_fds0, fds);
    bad = 1;
  }
  if (shm > g_shm0) {
    fprintf(stderr, "LEAK: %d /dev/shm/mproc* entr(ies) left\n", shm - g_shm0);
    bad = 1;
  }
  if (bad) g_leaked = 1;
  return bad ? -1 : 0;
}

int mproc_test_main(const struct CMUnitTest *tests, size_t n, int argc,
                    char **argv, const char *suite) {
  /* A test that hangs is killed by CTest; make sure our children die too. */
  setvbuf(stdout, NULL, _IONBF, 0);
  if (argc > 1) {
    /* A filter that names no case would run nothing and pass: refuse it
     * (e.g. a case renamed without re-running cmake). */
    int found = strpbrk(argv[1], "*?") != NULL;
    for (size_t i = 0; i < n && !found; i++) found = strcmp(tests[i].name, argv[1]) == 0;
    if (!found) {
      fprintf(stderr, "%s: no test case named '%s'\n", suite, argv[1]);
      return 1;
    }
    cmocka_set_test_filter(argv[1]);
  }
  /* Initialise the library before taking the fd baseline: the heap's memfd
   * and similar per-family fds are not leaks. */
  mproc_init(NULL);
  const char *name = strrchr(suite, '/');
  name = name ? name + 1 : suite;
  int failed = _cmocka_run_group_tests(name, tests, n, leak_setup, leak_teardown);
  return (failed || g_leaked) ? 1 : 0;
}
