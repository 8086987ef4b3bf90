/*
 * signals.h - mproc's own signal handling.
 *
 * SIGINT, SIGTERM and SIGHUP are blocked and read from a signalfd in the
 * runner's event loop (no handlers, so no async-signal-safety traps and no
 * EINTR surprises). SIGPIPE is ignored: a closed stdout shows up as EPIPE
 * and the runner stops cleanly. Jobs get the original mask and default
 * SIGPIPE back (spawn.c). At the end, an interrupted run re-raises the
 * signal with its default action so the calling shell sees it (a shell
 * loop around mproc stops on Ctrl-C).
 */
#ifndef MPROC_CLI_SIGNALS_H
#define MPROC_CLI_SIGNALS_H

#include <signal.h>

/* Block the signals, ignore SIGPIPE; *orig gets the previous mask.
 * with_chld: also deliver SIGCHLD through the signalfd (the fallback when
 * the kernel has no pidfds). Returns the signalfd or -1 (message printed). */
int cli_signals_init(sigset_t *orig, int with_chld);
/* Read one pending signal from fd: the signal number, or 0 if none. */
int cli_signals_read(int fd);
/* Die of sig with its default action (returns only if that fails). */
void cli_signals_reraise(int sig, const sigset_t *orig);

#endif
