/*
 * util.c - see util.h.
 */
#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void verr(const char *fmt, va_list ap) {
  /* One write so concurrent writers to the same stderr do not interleave
   * inside a message. */
  char msg[1024];
  int n = snprintf(msg, sizeof msg, "mproc: ");
  int m = vsnprintf(msg + n, sizeof msg - (size_t)n - 1, fmt, ap);
  if (m < 0) m = 0;
  size_t len = (size_t)n + (size_t)m;
  if (len > sizeof msg - 2) len = sizeof msg - 2;
  msg[len++] = '\n';
  (void)cli_write_all(2, msg, len);
}

void cli_err(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  verr(fmt, ap);
  va_end(ap);
}

void cli_die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  verr(fmt, ap);
  va_end(ap);
  exit(CLI_EXIT_ERROR);
}

void *cli_xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) cli_die("out of memory (%zu bytes)", n);
  return p;
}

void *cli_xrealloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (!q) cli_die("out of memory (%zu bytes)", n);
  return q;
}

char *cli_xstrdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = cli_xmalloc(n);
  memcpy(d, s, n);
  return d;
}

void cli_buf_reserve(cli_buf *b, size_t extra) {
  if (b->len + extra + 1 <= b->cap) return;
  size_t cap = b->cap ? b->cap : 64;
  while (cap < b->len + extra + 1) cap *= 2;
  b->s = cli_xrealloc(b->s, cap);
  b->cap = cap;
}

void cli_buf_add(cli_buf *b, const void *p, size_t n) {
  cli_buf_reserve(b, n);
  if (n) memcpy(b->s + b->len, p, n);
  b->len += n;
  b->s[b->len] = 0;
}

void cli_buf_adds(cli_buf *b, const char *s) { cli_buf_add(b, s, strlen(s)); }
void cli_buf_addc(cli_buf *b, char c) { cli_buf_add(b, &c, 1); }

void cli_buf_free(cli_buf *b) {
  free(b->s);
  b->s = NULL;
  b->len = b->cap = 0;
}

void cli_buf_consume(cli_buf *b, size_t n) {
  if (n >= b->len) {
    b->len = 0;
  } else {
    memmove(b->s, b->s + n, b->len - n);
    b->len -= n;
  }
  if (b->s) b->s[b->len] = 0;
}

static int shell_safe(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         strchr("_@%+=:,./-", c) != NULL;
}

void cli_shell_quote(cli_buf *b, const char *s) {
  int safe = *s != 0;
  for (const char *p = s; *p && safe; p++) safe = shell_safe((unsigned char)*p);
  if (safe) {
    cli_buf_adds(b, s);
    return;
  }
  cli_buf_addc(b, '\'');
  for (const char *p = s; *p; p++) {
    if (*p == '\'')
      cli_buf_adds(b, "'\\''");
    else
      cli_buf_addc(b, *p);
  }
  cli_buf_addc(b, '\'');
}

double cli_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double cli_wallnow(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int cli_write_all(int fd, const void *p, size_t n) {
  const char *c = p;
  while (n > 0) {
    ssize_t w = write(fd, c, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    c += w;
    n -= (size_t)w;
  }
  return 0;
}
