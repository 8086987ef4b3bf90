/*
 * util.h - small helpers shared by the mproc command's modules: error
 * messages, allocation that exits cleanly on OOM, a growable byte buffer,
 * the monotonic/real clocks and full writes.
 *
 * Design: the command is single-threaded and event driven, so these helpers
 * need no locking. Out of memory in the runner is not recoverable in a
 * useful way, so cli_xmalloc() prints a message and exits with 255 (GNU
 * parallel's "other error" code) instead of returning NULL everywhere.
 */
#ifndef MPROC_CLI_UTIL_H
#define MPROC_CLI_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CLI_EXIT_ERROR 255 /* argument and internal errors (GNU parallel) */

/* "mproc: <message>\n" on stderr. */
void cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* cli_err() then exit(255). */
void cli_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

void *cli_xmalloc(size_t n);
void *cli_xrealloc(void *p, size_t n);
char *cli_xstrdup(const char *s);

/* A growable byte buffer. len bytes valid; s is NUL-terminated when
 * cap > 0 (one spare byte is always kept). */
typedef struct cli_buf {
  char *s;    /* bytes (NULL until the first append) */
  size_t len; /* bytes used */
  size_t cap; /* bytes allocated */
} cli_buf;

void cli_buf_reserve(cli_buf *b, size_t extra); /* room for extra more bytes */
void cli_buf_add(cli_buf *b, const void *p, size_t n);
void cli_buf_adds(cli_buf *b, const char *s);
void cli_buf_addc(cli_buf *b, char c);
void cli_buf_free(cli_buf *b);
/* Drop the first n bytes (used by line buffering). */
void cli_buf_consume(cli_buf *b, size_t n);

/* Append s to b, shell-quoted when it holds characters special to sh
 * (single quotes, with ' written as '\''). Empty strings become ''. */
void cli_shell_quote(cli_buf *b, const char *s);

double cli_now(void);      /* CLOCK_MONOTONIC seconds */
double cli_wallnow(void);  /* CLOCK_REALTIME seconds (joblog Starttime) */

/* write() all n bytes, retrying on EINTR and short writes.
 * Returns 0 or -errno. */
int cli_write_all(int fd, const void *p, size_t n);

#endif
