/*
 * spawn.c - vfork + execve of one job (spawn.h).
 *
 * Order in the child, and why:
 *  1. setpgid(0, 0): the job leads its own process group so a timeout, a
 *     halt or a second Ctrl-C can kill everything it started with one
 *     kill(-pgid). Done in the child while the parent is suspended (vfork),
 *     so the group exists before the parent can signal it.
 *  2. PR_SET_PDEATHSIG(SIGKILL), then check the parent is still ours: if
 *     mproc is killed outright, the job does not run on as an orphan.
 *  3. dup2 the pipes onto 0/1/2 (they are CLOEXEC, the copies are not).
 *  4. SIGPIPE back to default (mproc ignores it) and the original signal
 *     mask (mproc blocks the signals it reads through a signalfd).
 *  5. execve; on failure write the reason to the job's stderr and
 *     _exit(127) (126 when found but not executable), as sh does. errno is
 *     also stored where the parent can read it (memory is shared until
 *     exec or exit with a real vfork; sanitizers may turn vfork into fork,
 *     so nothing depends on it).
 * The child calls only async-signal-safe functions and never returns.
 */
#include "spawn.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

/* Shared with the vfork child; volatile because the child writes it. */
static volatile int g_child_errno;
static pid_t g_parent;

static void __attribute__((noreturn)) child(const cli_spawn_req *r) {
  setpgid(0, 0);
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != g_parent) _exit(127);
  if ((r->in_fd >= 0 && dup2(r->in_fd, 0) < 0) || (r->out_fd >= 0 && dup2(r->out_fd, 1) < 0) ||
      (r->err_fd >= 0 && dup2(r->err_fd, 2) < 0)) {
    g_child_errno = errno;
    _exit(127);
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_DFL;
  sigaction(SIGPIPE, &sa, NULL);
  sigprocmask(SIG_SETMASK, r->mask, NULL);
  if (strchr(r->path, '/'))
    execve(r->path, r->argv, r->envp);
  else
    execvpe(r->path, r->argv, r->envp);
  int e = errno ? errno : ENOEXEC;
  g_child_errno = e;
  /* Say why on the job's stderr, as a shell would. Only write(), and
   * strerrordesc_np() which reads a static table: safe in this child. */
  const char *desc = strerrordesc_np(e);
  if (!desc) desc = "cannot execute";
  ssize_t w = write(2, "mproc: ", 7);
  w = write(2, r->path, strlen(r->path));
  w = write(2, ": ", 2);
  w = write(2, desc, strlen(desc));
  w = write(2, "\n", 1);
  (void)w;
  _exit(e == ENOENT ? 127 : 126);
}

int cli_spawn_have_pidfd(void) {
  static int have = -1;
  if (have < 0) {
    int fd = (int)syscall(SYS_pidfd_open, getpid(), 0);
    have = fd >= 0;
    if (fd >= 0) close(fd);
    /* For tests of the fallback on kernels that have pidfds. */
    const char *force = getenv("MPROC_CLI_NO_PIDFD");
    if (force && *force == '1') have = 0;
  }
  return have;
}

int cli_spawn(const cli_spawn_req *r, pid_t *pid, int *pidfd, int *exec_err) {
  g_child_errno = 0;
  g_parent = getpid();
  pid_t p = vfork();
  if (p < 0) return -errno;
  if (p == 0) child(r);
  *exec_err = g_child_errno;
  int fd = -1;
  if (cli_spawn_have_pidfd()) fd = (int)syscall(SYS_pidfd_open, p, 0);
  if (fd < 0 && cli_spawn_have_pidfd()) {
    int e = errno;
    /* Cannot watch it: kill and reap it so it is not left behind. */
    kill(-p, SIGKILL);
    kill(p, SIGKILL);
    while (waitpid(p, NULL, 0) < 0 && errno == EINTR) {
    }
    return -e;
  }
  *pid = p;
  *pidfd = fd;
  return 0;
}
