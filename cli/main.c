/*
 * main.c - the mproc command: GNU parallel's everyday options at xargs'
 * speed. Parses the arguments (args.c) and hands them to the scheduler
 * (runner.c). See docs/cli.md and docs/mproc.1.
 */
#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include "args.h"
#include "mproc.h"
#include "runner.h"
#include "util.h"

/* The library's mproc_cpu_count() (affinity, cgroup quota, $MPROC_CPU_COUNT)
 * when the process layer provides it (cli/CMakeLists.txt checks); the
 * affinity mask otherwise. */
int cli_cpu_count(void);
int cli_cpu_count(void) {
#ifdef MPROC_CLI_HAVE_CPU_COUNT
  int c = mproc_cpu_count();
  if (c >= 1) return c;
#endif
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n >= 1) return n;
  }
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n >= 1 ? (int)n : 1;
}

int main(int argc, char **argv) {
  /* fds 0-2 must exist: a pipe created later must never land on them. */
  for (int fd = 0; fd < 3; fd++)
    if (fcntl(fd, F_GETFD) < 0) {
      int nfd = open("/dev/null", O_RDWR);
      if (nfd < 0) return CLI_EXIT_ERROR;
      if (nfd != fd) {
        dup2(nfd, fd);
        close(nfd);
      }
    }
  cli_opts o;
  int rc = cli_parse_args(argc, argv, &o);
  if (rc != 0) {
    cli_opts_free(&o);
    return rc > 0 ? 0 : CLI_EXIT_ERROR;
  }
  int status = cli_run(&o);
  cli_opts_free(&o);
  return status;
}
