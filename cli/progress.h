/*
 * progress.h - --bar, --eta and the --verbose summary, all on stderr.
 *
 * The bar and the ETA line are redrawn in place ("\r") at most 5 times a
 * second, and only when stderr is a terminal (a log file gets no control
 * characters). The ETA is the average job time so far times the jobs left,
 * divided by the parallelism; unknown until the total is known (input from
 * a pipe: the total is known only at its end).
 */
#ifndef MPROC_CLI_PROGRESS_H
#define MPROC_CLI_PROGRESS_H

typedef struct cli_progress {
  int bar;          /* --bar and stderr is a terminal */
  int eta;          /* --eta */
  int tty;          /* stderr is a terminal */
  int drawn;        /* a line is on screen and needs a newline at the end */
  double t0;        /* start (monotonic) */
  double last;      /* last redraw */
  int jobs;         /* parallelism */
} cli_progress;

void cli_progress_init(cli_progress *p, int bar, int eta, int jobs);
/* Redraw if due (or force). total < 0: unknown. */
void cli_progress_update(cli_progress *p, unsigned long long done, long long total,
                         int running, int force);
/* Final line (newline after a bar) and the --verbose summary. */
void cli_progress_end(cli_progress *p, unsigned long long done, long long total,
                      unsigned long long failed, int verbose);
/* Seconds until the next redraw is due, -1 when nothing is drawn. */
double cli_progress_next(const cli_progress *p);

#endif
