/*
 * input.c - input sources, groups and the combination odometer (input.h).
 *
 * Design: a record reader per streamed file (64 KiB buffer, grows only for
 * a single record longer than that); the odometer keeps the current tuple
 * of the first group (copied, as the reader's buffer moves) and an index
 * per later group. Every call builds the job's values into one arena that
 * is reused, so the steady state allocates nothing.
 */
#include "input.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

typedef struct reader {
  int fd;          /* source fd (0 for stdin) */
  int owns_fd;     /* close fd at the end */
  char *buf;       /* bytes read, [start, end) not yet returned */
  size_t cap, start, end;
  int eof;         /* read() returned 0 */
  char delim;      /* record separator */
  const char *name;/* for messages */
} reader;

typedef struct source {
  int kind;        /* enum cli_src_kind */
  char **vals;     /* list or materialised values */
  size_t nvals;
  size_t pos;      /* streaming position in a list */
  reader *rd;      /* streaming file, NULL once materialised */
  cli_buf store;   /* materialised file: the bytes of every value */
  size_t *offs;    /* materialised file: value offsets into store */
} source;

typedef struct group {
  source **srcs;   /* the linked sources */
  size_t n;
  int wrap;        /* --link: shorter sources wrap around */
  size_t len;      /* tuples (materialised groups) */
  int streamed;    /* first group read lazily */
} group;

struct cli_input {
  source *srcs;    /* every source, in command-line order */
  size_t nsrcs;
  group *groups;
  size_t ngroups;
  size_t *idx;     /* odometer index per group (group 0 unused) */
  int started;     /* first record produced */
  int done;        /* end reached */
  cli_buf cur0;    /* current first-group tuple: values NUL-separated */
  size_t *cur0_off;/* offsets of the tuple's values in cur0 */
  cli_buf arena;   /* the job's values, NUL-separated */
  size_t *arena_off;
  char **argv;     /* pointers into arena, returned to the caller */
  size_t argcap;
  int max_args;
  int uses_stdin;
  long long total; /* known job count or -1 */
};

static reader *reader_open(const char *path, char delim) {
  reader *r = cli_xmalloc(sizeof *r);
  memset(r, 0, sizeof *r);
  r->delim = delim;
  r->name = path;
  if (!strcmp(path, "-")) {
    r->fd = 0;
  } else {
    r->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0) {
      cli_err("cannot open input file '%s': %s", path, strerror(errno));
      free(r);
      return NULL;
    }
    r->owns_fd = 1;
  }
  r->cap = 65536;
  r->buf = cli_xmalloc(r->cap);
  return r;
}

static void reader_close(reader *r) {
  if (!r) return;
  if (r->owns_fd) close(r->fd);
  free(r->buf);
  free(r);
}

/* Next record: 1 with s and len (valid until the next call), 0 at EOF,
 * -1 on error. */
static int reader_next(reader *r, const char **s, size_t *len) {
  size_t scan = r->start;
  for (;;) {
    char *hit = memchr(r->buf + scan, r->delim, r->end - scan);
    if (hit) {
      *s = r->buf + r->start;
      *len = (size_t)(hit - (r->buf + r->start));
      *hit = 0;
      r->start = (size_t)(hit - r->buf) + 1;
      return 1;
    }
    if (r->eof) {
      if (r->start == r->end) return 0;
      /* Last record without a trailing delimiter. */
      if (r->end == r->cap) {
        r->cap *= 2;
        r->buf = cli_xrealloc(r->buf, r->cap);
      }
      r->buf[r->end] = 0;
      *s = r->buf + r->start;
      *len = r->end - r->start;
      r->start = r->end;
      return 1;
    }
    /* Need more bytes: compact, grow only when one record fills it all. */
    scan = r->end;
    if (r->start > 0) {
      memmove(r->buf, r->buf + r->start, r->end - r->start);
      scan -= r->start;
      r->end -= r->start;
      r->start = 0;
    }
    if (r->end == r->cap) {
      r->cap *= 2;
      r->buf = cli_xrealloc(r->buf, r->cap);
    }
    ssize_t n = read(r->fd, r->buf + r->end, r->cap - r->end);
    if (n < 0) {
      if (errno == EINTR) continue;
      cli_err("reading '%s': %s", r->name, strerror(errno));
      return -1;
    }
    if (n == 0)
      r->eof = 1;
    else
      r->end += (size_t)n;
  }
}

/* Buffer n complete records (or reach EOF) without blocking: 1 = done,
 * 0 = more bytes are needed and none are available now, -1 = error. */
static int reader_fill(reader *r, size_t n) {
  for (;;) {
    size_t cnt = 0;
    const char *p = r->buf + r->start, *e = r->buf + r->end;
    while (cnt < n && p < e && (p = memchr(p, r->delim, (size_t)(e - p))) != NULL) {
      cnt++;
      p++;
    }
    if (cnt >= n || r->eof) return 1;
    struct pollfd pf = {.fd = r->fd, .events = POLLIN};
    int pr = poll(&pf, 1, 0);
    if (pr < 0 && errno == EINTR) continue;
    if (pr == 0) return 0;
    if (r->start > 0) {
      memmove(r->buf, r->buf + r->start, r->end - r->start);
      r->end -= r->start;
      r->start = 0;
    }
    if (r->end == r->cap) {
      r->cap *= 2;
      r->buf = cli_xrealloc(r->buf, r->cap);
    }
    ssize_t k = read(r->fd, r->buf + r->end, r->cap - r->end);
    if (k < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      cli_err("reading '%s': %s", r->name, strerror(errno));
      return -1;
    }
    if (k == 0)
      r->eof = 1;
    else
      r->end += (size_t)k;
  }
}

/* Read a whole file source into memory (non-first groups, --link). */
static int materialise(source *s) {
  if (!s->rd) return 0;
  const char *v;
  size_t len, n = 0, cap = 0;
  int rc;
  while ((rc = reader_next(s->rd, &v, &len)) == 1) {
    if (n == cap) {
      cap = cap ? cap * 2 : 64;
      s->offs = cli_xrealloc(s->offs, cap * sizeof *s->offs);
    }
    s->offs[n++] = s->store.len;
    cli_buf_add(&s->store, v, len);
    cli_buf_addc(&s->store, 0);
  }
  if (rc < 0) return -1;
  s->vals = cli_xmalloc((n ? n : 1) * sizeof *s->vals);
  for (size_t i = 0; i < n; i++) s->vals[i] = s->store.s + s->offs[i];
  s->nvals = n;
  reader_close(s->rd);
  s->rd = NULL;
  return 0;
}

static size_t group_len(const group *g) {
  size_t len = g->wrap ? 0 : (size_t)-1;
  for (size_t k = 0; k < g->n; k++) {
    size_t l = g->srcs[k]->nvals;
    if (g->wrap ? l > len : l < len) len = l;
  }
  if (g->wrap)
    for (size_t k = 0; k < g->n; k++)
      if (g->srcs[k]->nvals == 0) return 0;
  return len;
}

int cli_input_open(cli_input **out, const cli_opts *o) {
  cli_input *in = cli_xmalloc(sizeof *in);
  memset(in, 0, sizeof *in);
  in->max_args = o->max_args;
  size_t ns = o->nsrcs ? o->nsrcs : 1;
  in->srcs = cli_xmalloc(ns * sizeof *in->srcs);
  memset(in->srcs, 0, ns * sizeof *in->srcs);
  in->nsrcs = ns;
  in->groups = cli_xmalloc(ns * sizeof *in->groups);
  memset(in->groups, 0, ns * sizeof *in->groups);
  *out = in;

  for (size_t k = 0; k < ns; k++) {
    source *s = &in->srcs[k];
    const cli_src_spec *sp = o->nsrcs ? &o->srcs[k] : NULL;
    if (sp && sp->kind == CLI_SRC_LIST) {
      s->kind = CLI_SRC_LIST;
      s->vals = sp->vals;
      s->nvals = sp->nvals;
    } else {
      const char *path = sp ? sp->path : "-";
      s->kind = CLI_SRC_FILE;
      if (!strcmp(path, "-")) in->uses_stdin = 1;
      s->rd = reader_open(path, o->delim);
      if (!s->rd) return -1;
    }
    /* Grouping. */
    int linked = o->link_all ? k > 0 : (sp && sp->linked);
    if (!linked || in->ngroups == 0) in->ngroups++;
    group *g = &in->groups[in->ngroups - 1];
    g->srcs = cli_xrealloc(g->srcs, (g->n + 1) * sizeof *g->srcs);
    g->srcs[g->n++] = s;
    g->wrap = o->link_all;
  }

  /* Materialise what must be replayed; stream the first group. */
  for (size_t gi = 0; gi < in->ngroups; gi++) {
    group *g = &in->groups[gi];
    g->streamed = gi == 0 && !g->wrap;
    if (!g->streamed)
      for (size_t k = 0; k < g->n; k++)
        if (materialise(g->srcs[k]) < 0) return -1;
    if (!g->streamed) g->len = group_len(g);
  }
  in->idx = cli_xmalloc(in->ngroups * sizeof *in->idx);
  memset(in->idx, 0, in->ngroups * sizeof *in->idx);
  in->cur0_off = cli_xmalloc(in->groups[0].n * sizeof *in->cur0_off);

  /* Total jobs, when every source is known already. */
  int known = 1;
  for (size_t k = 0; k < in->nsrcs; k++)
    if (in->srcs[k].rd) known = 0;
  in->total = -1;
  if (known) {
    long double recs = 1;
    for (size_t gi = 0; gi < in->ngroups; gi++) {
      group *g = &in->groups[gi];
      recs *= (long double)(g->streamed ? group_len(g) : g->len);
    }
    if (recs < 9e18L) {
      long long r = (long long)recs;
      in->total = (r + in->max_args - 1) / in->max_args;
    }
  }
  return 0;
}

/* Load the next tuple of the streamed first group into cur0. */
static int next_first(cli_input *in) {
  group *g = &in->groups[0];
  if (!g->streamed) {
    size_t i = in->idx[0]++;
    if (i >= g->len) return 0;
    in->cur0.len = 0;
    for (size_t k = 0; k < g->n; k++) {
      source *s = g->srcs[k];
      in->cur0_off[k] = in->cur0.len;
      cli_buf_adds(&in->cur0, s->vals[i % s->nvals]);
      cli_buf_addc(&in->cur0, 0);
    }
    return 1;
  }
  in->cur0.len = 0;
  for (size_t k = 0; k < g->n; k++) {
    source *s = g->srcs[k];
    in->cur0_off[k] = in->cur0.len;
    if (s->rd) {
      const char *v;
      size_t len;
      int rc = reader_next(s->rd, &v, &len);
      if (rc <= 0) return rc;
      cli_buf_add(&in->cur0, v, len);
    } else {
      if (s->pos >= s->nvals) return 0;
      cli_buf_adds(&in->cur0, s->vals[s->pos++]);
    }
    cli_buf_addc(&in->cur0, 0);
  }
  return 1;
}

/* Advance the odometer; 1 = a record is ready, 0 = end, -1 = error. */
static int next_record(cli_input *in) {
  if (in->done) return 0;
  if (!in->started) {
    in->started = 1;
    for (size_t gi = 1; gi < in->ngroups; gi++)
      if (in->groups[gi].len == 0) {
        in->done = 1;
        return 0;
      }
    int rc = next_first(in);
    if (rc <= 0) in->done = 1;
    return rc;
  }
  for (size_t gi = in->ngroups; gi-- > 1;) {
    if (++in->idx[gi] < in->groups[gi].len) return 1;
    in->idx[gi] = 0;
  }
  int rc = next_first(in);
  if (rc <= 0) in->done = 1;
  return rc;
}

static void arena_push(cli_input *in, size_t *n, const char *v) {
  if (*n == in->argcap) {
    in->argcap = in->argcap ? in->argcap * 2 : 16;
    in->arena_off = cli_xrealloc(in->arena_off, in->argcap * sizeof *in->arena_off);
    in->argv = cli_xrealloc(in->argv, in->argcap * sizeof *in->argv);
  }
  in->arena_off[(*n)++] = in->arena.len;
  cli_buf_adds(&in->arena, v);
  cli_buf_addc(&in->arena, 0);
}

int cli_input_next(cli_input *in, char ***args, size_t *nargs) {
  in->arena.len = 0;
  size_t n = 0;
  int recs = 0;
  for (; recs < in->max_args; recs++) {
    int rc = next_record(in);
    if (rc < 0) return -1;
    if (rc == 0) break;
    group *g0 = &in->groups[0];
    for (size_t k = 0; k < g0->n; k++) arena_push(in, &n, in->cur0.s + in->cur0_off[k]);
    for (size_t gi = 1; gi < in->ngroups; gi++) {
      group *g = &in->groups[gi];
      size_t i = in->idx[gi];
      for (size_t k = 0; k < g->n; k++) {
        source *s = g->srcs[k];
        arena_push(in, &n, s->vals[i % s->nvals]);
      }
    }
  }
  if (recs == 0) return 0;
  for (size_t i = 0; i < n; i++) in->argv[i] = in->arena.s + in->arena_off[i];
  *args = in->argv;
  *nargs = n;
  return 1;
}

int cli_input_ready(cli_input *in, int *fd) {
  if (in->done) return 1;
  group *g = &in->groups[0];
  if (!g->streamed) return 1;
  for (size_t k = 0; k < g->n; k++) {
    reader *rd = g->srcs[k]->rd;
    if (!rd) continue;
    int rc = reader_fill(rd, (size_t)in->max_args);
    if (rc <= 0) {
      *fd = rd->fd;
      return rc;
    }
  }
  return 1;
}

long long cli_input_total(const cli_input *in) { return in->total; }
int cli_input_uses_stdin(const cli_input *in) { return in->uses_stdin; }

void cli_input_close(cli_input *in) {
  if (!in) return;
  for (size_t k = 0; k < in->nsrcs; k++) {
    source *s = &in->srcs[k];
    reader_close(s->rd);
    if (s->kind == CLI_SRC_FILE) free(s->vals);
    free(s->offs);
    cli_buf_free(&s->store);
  }
  for (size_t gi = 0; gi < in->ngroups; gi++) free(in->groups[gi].srcs);
  free(in->srcs);
  free(in->groups);
  free(in->idx);
  free(in->cur0_off);
  cli_buf_free(&in->cur0);
  cli_buf_free(&in->arena);
  free(in->arena_off);
  free(in->argv);
  free(in);
}
