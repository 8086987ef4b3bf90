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

/* Captured bytes beyond this (per stream) go to a temporary file. */
#define CLI_SPILL_BYTES (64 * 1024)

/* A job's captured output: [0] stdout, [1] stderr. */
typedef struct cli_jobout {
  cli_buf buf[2];         /* bytes in memory (after those in spill) */
  int spill[2];           /* unnamed temporary file, -1 = none */
  unsigned long long spilled[2]; /* bytes in the spill file */
  int spill_failed;       /* no temporary file could be made: keep in memory */
  int midline[2];         /* --tag: the last byte written was not '\n' */
  const char *tag;        /* line prefix (without the tab), NULL = none */
} cli_jobout;

/* Set up an empty capture (no spill files). */
void cli_jobout_init(cli_jobout *jo, const char *tag);

/* New bytes were appended to jo->buf[stream]; in line mode, when the job
 * may write now, write its complete lines; otherwise spill a large buffer
 * to a temporary file. */
void cli_output_more(cli_output *o, cli_jobout *jo, int stream, int may_write);

/* The job is over and may write: write everything left (stdout first) and
 * release the buffers. */
void cli_output_finish(cli_output *o, cli_jobout *jo);

/* Drop captured bytes and spill files (a job retried, or freed). */
void cli_output_discard(cli_jobout *jo);

#endif
