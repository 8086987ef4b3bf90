/*
 * input.h - input sources and their combinations: the arguments of each job.
 *
 * Sources are ::: lists (already in argv), :::: files and standard input
 * (read lazily, record by record, split on the delimiter). Sources form
 * groups: ":::+" (or "::::+") links a source to the previous one (values
 * paired, the shortest source decides the length); --link links every
 * source (shorter ones wrap around, as GNU parallel does). The groups are
 * combined in all combinations, the first group varying slowest.
 *
 * Bounded memory: the first group is streamed - a record is read only when
 * the runner asks for the next job, which it does only when a job slot is
 * free - so a million lines on a pipe are never held at once. The other
 * groups must be replayed for every value of the first, so they are read
 * into memory when the input is opened (documented in docs/cli.md).
 */
#ifndef MPROC_CLI_INPUT_H
#define MPROC_CLI_INPUT_H

#include <stddef.h>

#include "args.h"

typedef struct cli_input cli_input;

/* Open the sources of o (files, stdin) and read the non-streamed groups.
 * Returns 0, or -1 after printing a message (unreadable file). */
int cli_input_open(cli_input **in, const cli_opts *o);

/* The next job's arguments: max_args records, each with one value per
 * source, flattened into *args (nargs values). The strings stay valid
 * until the next call. Returns 1 for a job, 0 at the end of input, -1 on a
 * read error (message printed). */
int cli_input_next(cli_input *in, char ***args, size_t *nargs);

/* Would cli_input_next() block? Reads what is available without blocking
 * (poll with a zero timeout, then one read) until the streamed sources
 * hold the records one job needs, or EOF. Returns 1 when the next call
 * cannot block, 0 when it would (*fd is then the source to wait for),
 * -1 on a read error (message printed). Lets the runner keep reaping,
 * timing out and answering Ctrl-C while a slow producer writes. */
int cli_input_ready(cli_input *in, int *fd);

/* Jobs in all, when known before reading (every streamed source is a :::
 * list); -1 when it depends on input not read yet. */
long long cli_input_total(const cli_input *in);

/* 1 when standard input is one of the sources (jobs then get /dev/null). */
int cli_input_uses_stdin(const cli_input *in);

void cli_input_close(cli_input *in);

#endif
