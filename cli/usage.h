/* usage.h - the --help text. */
#ifndef MPROC_CLI_USAGE_H
#define MPROC_CLI_USAGE_H

#include <stdio.h>

#include "mproc.h"

#define MPROC_CLI_VERSION MPROC_VERSION_STRING

void cli_usage(FILE *f);

#endif
