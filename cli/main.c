/*
 * main.c - the mproc command: GNU parallel's everyday options at xargs'
 * speed. Parses the arguments (args.c) and hands them to the scheduler
 * (runner.c). See docs/cli.md and docs/mproc.1.
 */
#include <fcntl.h>
#include <unistd.h>

#include "args.h"
#include "mproc.h"
#include "runner.h"
#include "util.h"

/* The default -j: the library's count of usable CPUs (affinity mask,
 * cgroup v2 quota, $MPROC_CPU_COUNT). */
int cli_cpu_count(void);
int cli_cpu_count(void) {
  int c = mproc_cpu_count();
  return c >= 1 ? c : 1;
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
