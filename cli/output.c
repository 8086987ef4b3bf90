/*
 * output.c - grouped, line-buffered and tagged job output (output.h).
 *
 * Design: capture buffers belong to the job; this module only decides what
 * to write and writes it with as few write() calls as possible (one per
 * stream per job in the grouped, untagged case - the hot path for many
 * small jobs). A failed write (a closed pipe downstream) marks the output
 * broken; nothing is retried.
 */
#include "output.h"

#include <string.h>

static void emit(cli_output *o, int fd, const char *p, size_t n, const char *tag) {
  if (n == 0 || o->broken) return;
  if (!tag) {
    if (cli_write_all(fd, p, n) < 0) o->broken = 1;
    return;
  }
  /* Prefix every line (a last line without newline too). */
  cli_buf *t = &o->tmp;
  t->len = 0;
  size_t tl = strlen(tag);
  const char *end = p + n;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *stop = nl ? nl + 1 : end;
    cli_buf_add(t, tag, tl);
    cli_buf_addc(t, '\t');
    cli_buf_add(t, p, (size_t)(stop - p));
    p = stop;
  }
  if (cli_write_all(fd, t->s, t->len) < 0) o->broken = 1;
  if (t->cap > (1u << 20)) cli_buf_free(t); /* don't keep a huge buffer */
}

void cli_output_more(cli_output *o, cli_jobout *jo, int stream, int may_write) {
  if (o->mode != CLI_OUT_LINE || !may_write) return;
  cli_buf *b = &jo->buf[stream];
  if (b->len == 0) return;
  /* Up to and including the last newline. */
  const char *last = NULL;
  for (size_t i = b->len; i-- > 0;)
    if (b->s[i] == '\n') {
      last = b->s + i;
      break;
    }
  if (!last) return;
  size_t n = (size_t)(last - b->s) + 1;
  emit(o, stream == 0 ? 1 : 2, b->s, n, jo->tag);
  cli_buf_consume(b, n);
}

void cli_output_finish(cli_output *o, cli_jobout *jo) {
  for (int s = 0; s < 2; s++) {
    cli_buf *b = &jo->buf[s];
    emit(o, s == 0 ? 1 : 2, b->s, b->len, jo->tag);
    cli_buf_free(b);
  }
}

void cli_output_discard(cli_jobout *jo) {
  cli_buf_free(&jo->buf[0]);
  cli_buf_free(&jo->buf[1]);
}
