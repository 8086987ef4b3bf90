/*
 * bench_cli.c - the mproc command against xargs -P and GNU parallel.
 *
 * Figures (each line measured in this one run):
 *  1. 2,000 jobs of `true` (one input each, read from a file on stdin),
 *     jobs/s with the same parallelism for all three. In the BENCH line the
 *     "raw" column is xargs -P N -n 1 and the "python" column is GNU
 *     parallel (Debian's, run with --will-cite) - the line's name says so.
 *     mproc runs with its defaults (output grouped: two pipes per job).
 *  2. The same with mproc -u (no output capture, as xargs does).
 *  3. Peak RSS of the runner while a million input lines pass through it
 *     from a pipe (-n 1000 echo: 1,000 jobs; output to /dev/null), against
 *     xargs doing the same (lower is better; ratio = xargs / mproc).
 * Best of 3 runs for mproc and xargs, one run for GNU parallel (slow).
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "mproc.h"

#ifndef MPROC_CLI_PATH
#define MPROC_CLI_PATH "mproc"
#endif

/* Run argv with stdin from in_path (or a seq pipe when gen > 0), stdout
 * and stderr to /dev/null. Returns wall seconds; *rss_kb = peak RSS. */
static double g_cpu; /* user+sys seconds of the last run, its jobs included */

static double run(const char *in_path, long gen, char *const argv[], long *rss_kb, int *status) {
  int p[2] = {-1, -1};
  pid_t g = -1;
  if (gen > 0) {
    if (pipe(p) < 0) return -1;
    g = fork();
    if (g == 0) {
      close(p[0]);
      static char buf[1 << 16];
      size_t n = 0;
      for (long i = 1; i <= gen; i++) {
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%ld\n", i);
        if (n > sizeof buf - 32) {
          if (write(p[1], buf, n) != (ssize_t)n) _exit(1);
          n = 0;
        }
      }
      if (n && write(p[1], buf, n) != (ssize_t)n) _exit(1);
      _exit(0);
    }
  }
  double t0 = bench_now();
  pid_t pid = fork();
  if (pid == 0) {
    int in = gen > 0 ? p[0] : open(in_path, O_RDONLY);
    int dn = open("/dev/null", O_WRONLY);
    dup2(in, 0);
    dup2(dn, 1);
    dup2(dn, 2);
    if (p[1] >= 0) close(p[1]);
    execvp(argv[0], argv);
    _exit(127);
  }
  if (p[0] >= 0) close(p[0]);
  if (p[1] >= 0) close(p[1]);
  struct rusage ru;
  memset(&ru, 0, sizeof ru);
  int st = 0;
  wait4(pid, &st, 0, &ru);
  double t = bench_now() - t0;
  if (g > 0) {
    kill(g, SIGKILL);
    waitpid(g, NULL, 0);
  }
  if (rss_kb) *rss_kb = ru.ru_maxrss;
  /* wait4's rusage includes the descendants the runner reaped. */
  g_cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + (double)ru.ru_stime.tv_sec +
          ru.ru_stime.tv_usec * 1e-6;
  if (status) *status = st;
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) return -1;
  return t;
}

/* Best wall time and least CPU of n runs of each command, interleaved so
 * that load changes on a shared machine hit all of them alike. */
static void best_of(int n, const char *in, char *const *argvs[], int k, double *best,
                    double *cpu) {
  for (int c = 0; c < k; c++) best[c] = cpu[c] = -1;
  for (int i = 0; i < n; i++)
    for (int c = 0; c < k; c++) {
      double t = run(in, 0, argvs[c], NULL, NULL);
      if (t > 0 && (best[c] < 0 || t < best[c])) best[c] = t;
      if (t > 0 && (cpu[c] < 0 || g_cpu < cpu[c])) cpu[c] = g_cpu;
    }
}

static int have(const char *prog) {
  char cmd[256];
  snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", prog);
  return system(cmd) == 0;
}

int main(void) {
  const int njobs = 2000;
  int cpus = mproc_cpu_count();
  char jobs[16];
  snprintf(jobs, sizeof jobs, "%d", cpus);
  char in[] = "/tmp/mproc_bench_cli_XXXXXX";
  int fd = mkstemp(in);
  if (fd < 0) return 1;
  FILE *f = fdopen(fd, "w");
  for (int i = 1; i <= njobs; i++) fprintf(f, "%d\n", i);
  fclose(f);

  char *m_argv[] = {MPROC_CLI_PATH, "-j", jobs, "true", NULL};
  char *mu_argv[] = {MPROC_CLI_PATH, "-u", "-j", jobs, "true", NULL};
  char *x_argv[] = {"xargs", "-P", jobs, "-n", "1", "true", NULL};
  char *p_argv[] = {"parallel", "--will-cite", "-j", jobs, "true", NULL};

  char *const *argvs[] = {m_argv, mu_argv, x_argv};
  double best[3], cpu[3];
  best_of(5, in, argvs, 3, best, cpu);
  double tm = best[0], tmu = best[1], tx = best[2];
  double tp = have("parallel") ? run(in, 0, p_argv, NULL, NULL) : -1;
  double cp = tp > 0 ? g_cpu : -1;
  printf("# %d jobs of true, -j %d, best of 5 interleaved (GNU parallel: 1 run)\n", njobs, cpus);
  printf("# wall s: mproc %.3f, mproc -u %.3f, xargs %.3f, GNU parallel %.3f\n", tm, tmu, tx, tp);
  printf("# cpu s (runner + jobs): mproc %.3f, mproc -u %.3f, xargs %.3f, GNU parallel %.3f\n",
         cpu[0], cpu[1], cpu[2], cp);
  bench_report("cli_true_x2000 (raw=xargs,py=GNUpar)", "jobs/s", 1, njobs / tm,
               tx > 0 ? njobs / tx : -1, tp > 0 ? njobs / tp : -1);
  bench_report("cli_true_x2000_ungrouped (raw=xargs,py=GNUpar)", "jobs/s", 1, njobs / tmu,
               tx > 0 ? njobs / tx : -1, tp > 0 ? njobs / tp : -1);

  bench_report("cli_true_x2000_cpu (raw=xargs,py=GNUpar)", "cpu-ms/job", 0, cpu[0] * 1000 / njobs,
               cpu[2] * 1000 / njobs, cp > 0 ? cp * 1000 / njobs : -1);

  /* Memory with a million inputs flowing through. */
  char *mm_argv[] = {MPROC_CLI_PATH, "-j", jobs, "-n", "1000", "echo", NULL};
  char *xm_argv[] = {"xargs", "-P", jobs, "-n", "1000", "echo", NULL};
  long rss_m = 0, rss_x = 0;
  double t1 = run(NULL, 1000000, mm_argv, &rss_m, NULL);
  double t2 = run(NULL, 1000000, xm_argv, &rss_x, NULL);
  printf("# 1,000,000 input lines from a pipe, -n 1000 echo: mproc %.2f s, xargs %.2f s\n", t1, t2);
  bench_report("cli_rss_1M_inputs (raw=xargs)", "KiB", 0, (double)rss_m, (double)rss_x, -1);
  unlink(in);
  return 0;
}
