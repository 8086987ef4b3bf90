/*
 * template.h - the command template, replacement strings and quoting.
 *
 * Replacement strings: {} {.} {/} {//} {/.} {#} {%} and {N} {N.} {N/}
 * {N//} {N/.} (N-th argument of the job, 1-based). With none of them in
 * the command the job's arguments are appended.
 *
 * Two execution forms, decided once when the template is compiled:
 *  - direct: the command words contain no shell syntax and the program is
 *    found in $PATH, so the job is exec'd with an argv built from the
 *    words; values need no quoting (xargs' speed);
 *  - shell: otherwise the words are joined with spaces (as GNU parallel
 *    does) and run with /bin/sh -c; every substituted value is
 *    single-quoted so spaces, quotes and $ in inputs stay literal.
 * With no command words at all, each job's arguments are the command
 * (shell form, unquoted), as in GNU parallel.
 */
#ifndef MPROC_CLI_TEMPLATE_H
#define MPROC_CLI_TEMPLATE_H

#include <stddef.h>

#include "util.h"

typedef struct cli_tmpl cli_tmpl;

/* A job's command, built by cli_tmpl_expand(); reuse it between jobs. */
typedef struct cli_cmd {
  const char *path;  /* program to execve: resolved path or "/bin/sh" */
  char **argv;       /* NULL-terminated argv (strings in store or argv) */
  size_t argc, argcap;
  cli_buf store;     /* bytes of expanded words, NUL-separated */
  size_t *offs;      /* offsets of argv strings held in store (-1: external) */
  cli_buf shell;     /* shell form: the command text */
  int is_shell;      /* argv is {"/bin/sh","-c",text} */
} cli_cmd;

/* Compile the words; returns 0 (never fails: malformed braces are text). */
cli_tmpl *cli_tmpl_compile(char **words, size_t n);
int cli_tmpl_is_shell(const cli_tmpl *t);
void cli_tmpl_free(cli_tmpl *t);

/* Build the command for one job: args[nargs], job number seq, slot. */
void cli_tmpl_expand(const cli_tmpl *t, char **args, size_t nargs, unsigned long long seq,
                     int slot, cli_cmd *out);

/* The command as a shell would read it (shell text, or the argv with
 * quoting where needed): for --dry-run, -t, the joblog. Appends to b. */
void cli_cmd_display(const cli_cmd *c, cli_buf *b);

void cli_cmd_free(cli_cmd *c);

#endif
