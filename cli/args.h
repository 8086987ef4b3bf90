/*
 * args.h - the mproc command line: options, the command template words and
 * the input-source markers (:::, :::+, ::::, ::::+), parsed into one struct.
 *
 * Grammar (GNU parallel's):  mproc [options] [COMMAND [WORDS...]] [SOURCES...]
 *   options come first; the first word that is not an option starts the
 *   command; a word that is exactly ":::", ":::+", "::::" or "::::+" starts
 *   an input source and ends the command.
 * Parse errors print a clear message and make cli_parse_args() return -1;
 * main() then exits with 255 without running anything.
 */
#ifndef MPROC_CLI_ARGS_H
#define MPROC_CLI_ARGS_H

#include <stddef.h>

enum cli_src_kind {
  CLI_SRC_LIST = 0, /* ::: values given on the command line */
  CLI_SRC_FILE = 1  /* :::: FILE (or -a FILE); "-" is standard input */
};

typedef struct cli_src_spec {
  int kind;          /* enum cli_src_kind */
  int linked;        /* 1: joined to the previous source (:::+ / ::::+) */
  char **vals;       /* LIST: values (point into argv) */
  size_t nvals;      /* LIST: number of values */
  const char *path;  /* FILE: path, "-" = stdin */
} cli_src_spec;

enum cli_halt_when { CLI_HALT_NEVER = 0, CLI_HALT_SOON = 1, CLI_HALT_NOW = 2 };

typedef struct cli_opts {
  /* Jobs */
  int jobs;            /* parallel jobs, >= 1 after resolution */
  int keep_order;      /* -k */
  int group_mode;      /* CLI_OUT_* from output.h */
  int tag;             /* --tag */
  int dry_run;         /* --dry-run */
  int print_cmd;       /* -t: print each command on stderr before it runs */
  int verbose;         /* --verbose: final summary line on stderr */
  int bar;             /* --bar */
  int eta;             /* --eta */
  int max_args;        /* -n N (>= 1) */
  double timeout;      /* --timeout seconds, 0 = none */
  int retries;         /* --retries N: total attempts (>= 1) */
  /* --halt */
  int halt_when;       /* enum cli_halt_when */
  int halt_on_fail;    /* 1: fail=, 0: success= */
  double halt_value;   /* count, or percent when halt_percent */
  int halt_percent;    /* halt_value is a percentage */
  /* Input */
  char delim;          /* record delimiter: '\n', '\0' for -0, -d CHAR */
  cli_src_spec *srcs;  /* input sources in order */
  size_t nsrcs;
  int link_all;        /* --link: every source linked, shorter ones wrap */
  /* Joblog */
  const char *joblog;  /* --joblog FILE ("-" = stdout), NULL = none */
  int resume;          /* --resume */
  int resume_failed;   /* --resume-failed */
  /* The command */
  char **cmd;          /* template words (point into argv) */
  size_t ncmd;
  /* Termination sequence for timeouts, halt now and the second Ctrl-C:
   * signal then milliseconds to wait, repeated; the last step is KILL. */
  int termseq_sig[8];
  int termseq_ms[8];
  int ntermseq;
} cli_opts;

/* Parse argv into o (zeroed by the caller is not required). Returns 0,
 * 1 when --help/--version was printed (exit 0), -1 on a usage error (the
 * message is already printed). */
int cli_parse_args(int argc, char **argv, cli_opts *o);

/* Resolve the -j value given as text ("4", "50%", "0", "+1", "-1") into a
 * job count; exposed for tests of the parser. */
int cli_parse_jobs(const char *s, int cpus, int *out);

void cli_opts_free(cli_opts *o);

#endif
