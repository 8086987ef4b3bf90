/*
 * spawn.h - start one job's process: vfork + execve, in its own process
 * group, with a pidfd to wait on.
 *
 * Why not the library's mproc_process_*: those run a C function in a
 * forked child; a job is an external program, and the cheapest way to start
 * one is vfork (the parent's memory is borrowed until execve, so nothing is
 * copied - posix_spawn does the same inside glibc). vfork is used directly
 * rather than posix_spawn because the child must also set
 * PR_SET_PDEATHSIG (a job never outlives a killed mproc), which
 * posix_spawn cannot do.
 */
#ifndef MPROC_CLI_SPAWN_H
#define MPROC_CLI_SPAWN_H

#include <signal.h>
#include <sys/types.h>

typedef struct cli_spawn_req {
  const char *path;       /* program; no '/' = searched in $PATH */
  char *const *argv;      /* NULL-terminated */
  char *const *envp;      /* environment */
  int in_fd;              /* becomes fd 0 (-1: inherit) */
  int out_fd;             /* becomes fd 1 (-1: inherit) */
  int err_fd;             /* becomes fd 2 (-1: inherit) */
  const sigset_t *mask;   /* signal mask the program starts with */
} cli_spawn_req;

/* Start the program. On success returns 0 with *pid and *pidfd (CLOEXEC);
 * when execve failed the child has written the reason to its stderr and
 * exited with 127 (126: not executable) - it is reaped like any job; with
 * a real vfork *exec_err also holds its errno (0 otherwise).
 * Returns -errno when no process could be created (EAGAIN, ENOMEM...). */
int cli_spawn(const cli_spawn_req *r, pid_t *pid, int *pidfd, int *exec_err);

/* 1 when the kernel gives pidfds (Linux >= 5.3; not under valgrind 3.19).
 * Without them cli_spawn() returns *pidfd = -1 and the runner reaps on
 * SIGCHLD instead. Probed once. */
int cli_spawn_have_pidfd(void);

#endif
