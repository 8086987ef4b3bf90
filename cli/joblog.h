/*
 * joblog.h - --joblog in GNU parallel's exact format, and --resume /
 * --resume-failed from such a file.
 *
 * Format: a header line, then one tab-separated line per finished job:
 *   Seq Host Starttime JobRuntime Send Receive Exitval Signal Command
 * Host is ":" (local), Starttime is Unix time with 3 decimals, JobRuntime
 * is "%10.3f" seconds, Send is 0, Receive is the bytes the job wrote to
 * stdout, Exitval is -1 for a job mproc killed (timeout, halt, Ctrl-C),
 * Signal is the signal that ended it (0 if none). Each line is written with
 * one write() on an O_APPEND fd, so a crash never leaves half a line that
 * --resume would misread (a torn last line is ignored anyway).
 */
#ifndef MPROC_CLI_JOBLOG_H
#define MPROC_CLI_JOBLOG_H

#include <stddef.h>
#include <stdint.h>

typedef struct cli_joblog {
  int fd;            /* -1: no joblog */
  uint8_t *seen;     /* resume: bit per Seq present in the old log */
  uint8_t *ok;       /* resume: bit per Seq that succeeded */
  size_t nbits;      /* bits in seen/ok */
  int resume_failed; /* rerun the failed ones */
  int resuming;      /* --resume or --resume-failed */
} cli_joblog;

/* Read the old log (resume) and open the log for appending (resume) or
 * truncate it. Returns 0 or -1 after a message. */
int cli_joblog_open(cli_joblog *j, const char *path, int resume, int resume_failed);

/* 1 when job seq must not run again (resume). */
int cli_joblog_skip(const cli_joblog *j, unsigned long long seq);

/* Append one line. */
void cli_joblog_write(cli_joblog *j, unsigned long long seq, double start_wall, double runtime,
                      unsigned long long received, int exitval, int sig, const char *cmd,
                      size_t cmdlen);

void cli_joblog_close(cli_joblog *j);

#endif
