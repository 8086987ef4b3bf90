/*
 * runner.h - the job scheduler: pulls inputs as slots free up, spawns,
 * watches (epoll over pidfds, output pipes and the signalfd), applies
 * timeouts, retries and halt rules, writes output and the joblog.
 */
#ifndef MPROC_CLI_RUNNER_H
#define MPROC_CLI_RUNNER_H

#include "args.h"

/* Run everything; returns the process exit status (GNU parallel's rules).
 * An interrupted run does not return: it re-raises the signal. */
int cli_run(const cli_opts *o);

#endif
