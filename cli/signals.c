/*
 * signals.c - see signals.h.
 */
#include "signals.h"

#include <errno.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "util.h"

int cli_signals_init(sigset_t *orig, int with_chld) {
  sigset_t set;
  sigemptyset(&set);
  if (with_chld) sigaddset(&set, SIGCHLD);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  if (sigprocmask(SIG_BLOCK, &set, orig) < 0) return -1;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_IGN;
  sigaction(SIGPIPE, &sa, NULL);
  int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd < 0) cli_err("signalfd: %s", strerror(errno));
  return fd;
}

int cli_signals_read(int fd) {
  struct signalfd_siginfo si;
  ssize_t n = read(fd, &si, sizeof si);
  if (n != (ssize_t)sizeof si) return 0;
  return (int)si.ssi_signo;
}

void cli_signals_reraise(int sig, const sigset_t *orig) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_DFL;
  sigaction(sig, &sa, NULL);
  sigset_t set = *orig;
  sigdelset(&set, sig);
  sigprocmask(SIG_SETMASK, &set, NULL);
  raise(sig);
  /* Still alive (sig was ignored by our parent? default action now): */
}
