/*
 * output.h - how the output of jobs reaches mproc's stdout and stderr.
 *
 * Modes:
 *  - CLI_OUT_GROUP (default): a job's stdout and stderr are captured in
 *    memory and written when the job ends, stdout then stderr, each with one
 *    write(): output of different jobs never interleaves.
 *  - CLI_OUT_LINE (--line-buffer): complete lines are written as they
 *    arrive (lines of different jobs may alternate, never mix).
 *  - CLI_OUT_UNGROUP (-u): jobs write to mproc's stdout/stderr directly
 *    (no capture; fastest; output may mix).
 * --tag prefixes every line with the job's arguments and a tab.
 * With -k the runner decides when a job may write (the oldest job first).
 */
#ifndef MPROC_CLI_OUTPUT_H
#define MPROC_CLI_OUTPUT_H

#include "util.h"

enum { CLI_OUT_GROUP = 0, CLI_OUT_LINE = 1, CLI_OUT_UNGROUP = 2 };

typedef struct cli_output {
  int mode;       /* CLI_OUT_* */
  int broken;     /* writing failed (EPIPE...): the runner stops */
  cli_buf tmp;    /* tagged copy being written */
} cli_output;

/* A job's captured bytes: [0] stdout, [1] stderr. */
typedef struct cli_jobout {
  cli_buf buf[2];
  const char *tag; /* line prefix (without the tab), NULL = none */
} cli_jobout;

/* New bytes were appended to jo->buf[stream]; in line mode, when the job
 * may write now, write its complete lines. */
void cli_output_more(cli_output *o, cli_jobout *jo, int stream, int may_write);

/* The job is over and may write: write everything left (stdout first) and
 * release the buffers. */
void cli_output_finish(cli_output *o, cli_jobout *jo);

/* Drop captured bytes (a job that will be retried). */
void cli_output_discard(cli_jobout *jo);

#endif
