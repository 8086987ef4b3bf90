/*
 * output.c - grouped, line-buffered and tagged job output (output.h).
 *
 * Design: capture buffers belong to the job; this module decides what to
 * write and writes it with as few write() calls as possible (one per
 * stream per job in the grouped, untagged case - the hot path for many
 * small jobs). A failed write (a closed pipe downstream) marks the output
 * broken; nothing is retried.
 *
 * Spilling: a stream's buffer that reaches CLI_SPILL_BYTES while the job
 * may not write yet is moved to an unnamed temporary file (O_TMPFILE in
 * $TMPDIR or /tmp), as GNU parallel keeps output in files; so a job's
 * memory stays under 2 x CLI_SPILL_BYTES however much it prints. If no
 * temporary file can be made the bytes simply stay in memory.
 * Invariant: the spill file's bytes precede the buffer's.
 */
#include "output.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Write p[0..n) to fd, with the tag before each line start. */
static void emit(cli_output *o, cli_jobout *jo, int s, const char *p, size_t n) {
  if (n == 0 || o->broken) return;
  int fd = s == 0 ? 1 : 2;
  if (!jo->tag) {
    if (cli_write_all(fd, p, n) < 0) o->broken = 1;
    return;
  }
  cli_buf *t = &o->tmp;
  t->len = 0;
  size_t tl = strlen(jo->tag);
  const char *end = p + n;
  while (p < end) {
    if (!jo->midline[s]) {
      cli_buf_add(t, jo->tag, tl);
      cli_buf_addc(t, '\t');
    }
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *stop = nl ? nl + 1 : end;
    cli_buf_add(t, p, (size_t)(stop - p));
    jo->midline[s] = nl == NULL;
    p = stop;
  }
  if (cli_write_all(fd, t->s, t->len) < 0) o->broken = 1;
  if (t->cap > (1u << 20)) cli_buf_free(t); /* don't keep a huge buffer */
}

static int tmpfile_open(void) {
  const char *dir = getenv("TMPDIR");
  if (!dir || !*dir) dir = "/tmp";
  int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd >= 0) return fd;
  char path[4096];
  snprintf(path, sizeof path, "%s/mproc-out-XXXXXX", dir);
  fd = mkostemp(path, O_CLOEXEC);
  if (fd >= 0) unlink(path);
  return fd;
}

/* Move the buffered bytes of stream s to its spill file. */
static void spill(cli_jobout *jo, int s) {
  cli_buf *b = &jo->buf[s];
  if (jo->spill[s] < 0) {
    if (jo->spill_failed) return;
    jo->spill[s] = tmpfile_open();
    if (jo->spill[s] < 0) {
      jo->spill_failed = 1; /* keep it in memory */
      return;
    }
  }
  if (cli_write_all(jo->spill[s], b->s, b->len) < 0) {
    close(jo->spill[s]);
    jo->spill[s] = -1;
    jo->spill_failed = 1;
    return;
  }
  jo->spilled[s] += b->len;
  cli_buf_free(b);
}

/* Write the spill file's bytes, then the buffer's: all of them, or (line
 * mode) up to the buffer's last newline, keeping lines whole. */
static void write_stream(cli_output *o, cli_jobout *jo, int s, int whole) {
  cli_buf *b = &jo->buf[s];
  size_t n = b->len;
  if (!whole) {
    n = 0;
    for (size_t i = b->len; i-- > 0;)
      if (b->s[i] == '\n') {
        n = i + 1;
        break;
      }
    if (n == 0) return; /* no complete line yet */
  }
  if (jo->spill[s] >= 0) {
    char chunk[65536];
    off_t off = 0;
    for (;;) {
      ssize_t k = pread(jo->spill[s], chunk, sizeof chunk, off);
      if (k < 0 && errno == EINTR) continue;
      if (k <= 0) break;
      emit(o, jo, s, chunk, (size_t)k);
      off += k;
    }
    close(jo->spill[s]);
    jo->spill[s] = -1;
    jo->spilled[s] = 0;
  }
  emit(o, jo, s, b->s, n);
  cli_buf_consume(b, n);
}

void cli_jobout_init(cli_jobout *jo, const char *tag) {
  memset(jo, 0, sizeof *jo);
  jo->tag = tag;
  jo->spill[0] = jo->spill[1] = -1;
}

void cli_output_more(cli_output *o, cli_jobout *jo, int stream, int may_write) {
  if (o->mode == CLI_OUT_UNGROUP) return;
  if (o->mode == CLI_OUT_LINE && may_write) {
    write_stream(o, jo, stream, 0);
    return;
  }
  if (jo->buf[stream].len >= CLI_SPILL_BYTES) spill(jo, stream);
}

void cli_output_finish(cli_output *o, cli_jobout *jo) {
  for (int s = 0; s < 2; s++) {
    write_stream(o, jo, s, 1);
    cli_buf_free(&jo->buf[s]);
  }
}

void cli_output_discard(cli_jobout *jo) {
  for (int s = 0; s < 2; s++) {
    cli_buf_free(&jo->buf[s]);
    if (jo->spill[s] >= 0) close(jo->spill[s]);
    jo->spill[s] = -1;
    jo->spilled[s] = 0;
    jo->midline[s] = 0;
  }
}
