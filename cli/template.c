/*
 * template.c - compile the command words once into pieces (literal text and
 * replacement tokens), then expand them per job (template.h).
 *
 * Why decide "direct or shell" once: exec'ing the program directly saves a
 * /bin/sh start per job (about half the cost of a trivial job), and the
 * PATH lookup is also done once here rather than by execvp per job.
 */
#include "template.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { P_LIT, P_ARG, P_SEQ, P_SLOT };
enum { M_NONE, M_DOT, M_BASE, M_DIR, M_BASEDOT };

typedef struct piece {
  int kind;         /* P_* */
  const char *lit;  /* P_LIT: text (into argv) */
  size_t len;       /* P_LIT: length */
  int argn;         /* P_ARG: 1-based argument, 0 = all of them */
  int mod;          /* P_ARG: M_* */
} piece;

typedef struct word {
  piece *p;
  size_t n;
} word;

struct cli_tmpl {
  word *w;
  size_t nw;
  int any_token;    /* some replacement string present */
  int is_shell;     /* run via /bin/sh -c */
  int from_args;    /* no command words: arguments are the command */
  char *path;       /* direct: resolved program path (NULL: first word has a token) */
};

/* Parse one token at s ("{...}"); returns its length or 0 if not a token. */
static size_t parse_token(const char *s, piece *out) {
  if (s[0] != '{') return 0;
  const char *e = strchr(s, '}');
  if (!e) return 0;
  size_t len = (size_t)(e - s) + 1;
  const char *b = s + 1;
  size_t bl = len - 2;
  memset(out, 0, sizeof *out);
  out->kind = P_ARG;
  if (bl == 1 && b[0] == '#') { out->kind = P_SEQ; return len; }
  if (bl == 1 && b[0] == '%') { out->kind = P_SLOT; return len; }
  size_t i = 0;
  int n = 0;
  while (i < bl && b[i] >= '0' && b[i] <= '9') {
    n = n * 10 + (b[i] - '0');
    if (n > 1000000) return 0;
    i++;
  }
  if (i > 0 && n == 0) return 0;
  out->argn = n;
  const char *m = b + i;
  size_t ml = bl - i;
  if (ml == 0) out->mod = M_NONE;
  else if (ml == 1 && m[0] == '.') out->mod = M_DOT;
  else if (ml == 1 && m[0] == '/') out->mod = M_BASE;
  else if (ml == 2 && !strncmp(m, "//", 2)) out->mod = M_DIR;
  else if (ml == 2 && !strncmp(m, "/.", 2)) out->mod = M_BASEDOT;
  else return 0;
  return len;
}

static void add_piece(word *w, piece p) {
  w->p = cli_xrealloc(w->p, (w->n + 1) * sizeof *w->p);
  w->p[w->n++] = p;
}

/* Shell syntax outside replacement strings means the command needs sh. */
static int needs_shell(const word *w, int first) {
  for (size_t i = 0; i < w->n; i++) {
    if (w->p[i].kind != P_LIT) continue;
    const char *s = w->p[i].lit;
    for (size_t k = 0; k < w->p[i].len; k++) {
      char c = s[k];
      if (strchr(" \t\n'\"\\$`|&;<>()*?[]", c)) return 1;
      if (first && c == '=') return 1; /* VAR=value prefix */
      if (i == 0 && k == 0 && (c == '~' || c == '#' || c == '!' || c == '{' || c == '}'))
        return 1;
    }
  }
  return 0;
}

static char *path_lookup(const char *prog) {
  /* A path is used as given; exec reports a missing or bad program. */
  if (strchr(prog, '/')) return cli_xstrdup(prog);
  const char *path = getenv("PATH");
  if (!path) path = "/usr/local/bin:/usr/bin:/bin";
  cli_buf b = {0};
  for (const char *p = path;; ) {
    const char *c = strchr(p, ':');
    size_t dl = c ? (size_t)(c - p) : strlen(p);
    b.len = 0;
    if (dl == 0)
      cli_buf_addc(&b, '.');
    else
      cli_buf_add(&b, p, dl);
    cli_buf_addc(&b, '/');
    cli_buf_adds(&b, prog);
    struct stat st;
    if (stat(b.s, &st) == 0 && S_ISREG(st.st_mode) && access(b.s, X_OK) == 0) return b.s;
    if (!c) break;
    p = c + 1;
  }
  cli_buf_free(&b);
  return NULL;
}

cli_tmpl *cli_tmpl_compile(char **words, size_t n) {
  cli_tmpl *t = cli_xmalloc(sizeof *t);
  memset(t, 0, sizeof *t);
  t->w = cli_xmalloc((n ? n : 1) * sizeof *t->w);
  memset(t->w, 0, (n ? n : 1) * sizeof *t->w);
  t->nw = n;
  if (n == 0) {
    t->from_args = 1;
    t->is_shell = 1;
    return t;
  }
  for (size_t i = 0; i < n; i++) {
    const char *s = words[i];
    const char *lit = s;
    while (*s) {
      piece tok;
      size_t tl = parse_token(s, &tok);
      if (tl) {
        if (s > lit) add_piece(&t->w[i], (piece){.kind = P_LIT, .lit = lit, .len = (size_t)(s - lit)});
        add_piece(&t->w[i], tok);
        t->any_token = 1;
        s += tl;
        lit = s;
      } else {
        s++;
      }
    }
    if (s > lit || t->w[i].n == 0)
      add_piece(&t->w[i], (piece){.kind = P_LIT, .lit = lit, .len = (size_t)(s - lit)});
  }
  for (size_t i = 0; i < n && !t->is_shell; i++) t->is_shell = needs_shell(&t->w[i], i == 0);
  if (!t->is_shell) {
    const word *w0 = &t->w[0];
    if (w0->n == 1 && w0->p[0].kind == P_LIT) {
      t->path = path_lookup(words[0]);
      /* Not an executable in PATH: a builtin, keyword or function, or a
       * missing program: let the shell run it and report. */
      if (!t->path) t->is_shell = 1;
    }
  }
  return t;
}

int cli_tmpl_is_shell(const cli_tmpl *t) { return t->is_shell; }

void cli_tmpl_free(cli_tmpl *t) {
  if (!t) return;
  for (size_t i = 0; i < t->nw; i++) free(t->w[i].p);
  free(t->w);
  free(t->path);
  free(t);
}

/* Append value v transformed by mod. */
static void add_mod(cli_buf *b, const char *v, int mod) {
  const char *slash = strrchr(v, '/');
  const char *base = slash ? slash + 1 : v;
  switch (mod) {
    case M_NONE:
      cli_buf_adds(b, v);
      return;
    case M_BASE:
      cli_buf_adds(b, base);
      return;
    case M_DIR:
      if (!slash)
        cli_buf_addc(b, '.');
      else if (slash == v)
        cli_buf_addc(b, '/');
      else
        cli_buf_add(b, v, (size_t)(slash - v));
      return;
    case M_DOT:
    case M_BASEDOT: {
      const char *start = mod == M_DOT ? v : base;
      const char *dot = strrchr(base, '.');
      size_t end = dot ? (size_t)(dot - start) : strlen(start);
      cli_buf_add(b, start, end);
      return;
    }
  }
}

/* Append value (quoted when shell). */
static void add_value(cli_buf *b, const char *v, int mod, int quote) {
  if (!quote) {
    add_mod(b, v, mod);
    return;
  }
  if (mod == M_NONE) {
    cli_shell_quote(b, v);
    return;
  }
  cli_buf tmp = {0};
  add_mod(&tmp, v, mod);
  cli_shell_quote(b, tmp.s ? tmp.s : "");
  cli_buf_free(&tmp);
}

static void add_number(cli_buf *b, unsigned long long v) {
  char num[24];
  int l = 0;
  char rev[24];
  do {
    rev[l++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  for (int i = 0; i < l; i++) num[i] = rev[l - 1 - i];
  cli_buf_add(b, num, (size_t)l);
}

/* Expand one word into b. */
static void expand_word(const word *w, char **args, size_t nargs, unsigned long long seq,
                        int slot, int quote, cli_buf *b) {
  for (size_t i = 0; i < w->n; i++) {
    const piece *p = &w->p[i];
    switch (p->kind) {
      case P_LIT: cli_buf_add(b, p->lit, p->len); break;
      case P_SEQ: add_number(b, seq); break;
      case P_SLOT: add_number(b, (unsigned long long)slot); break;
      case P_ARG:
        if (p->argn == 0) {
          for (size_t k = 0; k < nargs; k++) {
            if (k) cli_buf_addc(b, ' ');
            add_value(b, args[k], p->mod, quote);
          }
        } else if ((size_t)p->argn <= nargs) {
          add_value(b, args[p->argn - 1], p->mod, quote);
        } else if (quote) {
          cli_buf_adds(b, "''");
        }
        break;
    }
  }
}

static void argv_push_off(cli_cmd *c, size_t off) {
  if (c->argc + 2 > c->argcap) {
    c->argcap = c->argcap ? c->argcap * 2 : 16;
    c->argv = cli_xrealloc(c->argv, c->argcap * sizeof *c->argv);
    c->offs = cli_xrealloc(c->offs, c->argcap * sizeof *c->offs);
  }
  c->offs[c->argc++] = off;
}

void cli_tmpl_expand(const cli_tmpl *t, char **args, size_t nargs, unsigned long long seq,
                     int slot, cli_cmd *c) {
  c->argc = 0;
  c->store.len = 0;
  c->shell.len = 0;
  c->is_shell = t->is_shell;
  if (t->is_shell) {
    cli_buf *b = &c->shell;
    cli_buf_reserve(b, 64);
    if (t->from_args) {
      for (size_t k = 0; k < nargs; k++) {
        if (k) cli_buf_addc(b, ' ');
        cli_buf_adds(b, args[k]);
      }
    } else {
      for (size_t i = 0; i < t->nw; i++) {
        if (i) cli_buf_addc(b, ' ');
        expand_word(&t->w[i], args, nargs, seq, slot, 1, b);
      }
      if (!t->any_token)
        for (size_t k = 0; k < nargs; k++) {
          cli_buf_addc(b, ' ');
          cli_shell_quote(b, args[k]);
        }
    }
    c->path = "/bin/sh";
    if (c->argcap < 4) {
      c->argcap = 4;
      c->argv = cli_xrealloc(c->argv, c->argcap * sizeof *c->argv);
      c->offs = cli_xrealloc(c->offs, c->argcap * sizeof *c->offs);
    }
    c->argv[0] = "sh";
    c->argv[1] = "-c";
    c->argv[2] = c->shell.s;
    c->argv[3] = NULL;
    c->argc = 3;
    return;
  }
  cli_buf *b = &c->store;
  for (size_t i = 0; i < t->nw; i++) {
    const word *w = &t->w[i];
    if (w->n == 1 && w->p[0].kind == P_ARG && w->p[0].argn == 0) {
      /* A bare {} (or {.} ...) word: one argv entry per argument. */
      for (size_t k = 0; k < nargs; k++) {
        argv_push_off(c, b->len);
        add_mod(b, args[k], w->p[0].mod);
        cli_buf_addc(b, 0);
      }
      continue;
    }
    argv_push_off(c, b->len);
    expand_word(w, args, nargs, seq, slot, 0, b);
    cli_buf_addc(b, 0);
  }
  if (!t->any_token)
    for (size_t k = 0; k < nargs; k++) {
      argv_push_off(c, b->len);
      cli_buf_adds(b, args[k]);
      cli_buf_addc(b, 0);
    }
  for (size_t i = 0; i < c->argc; i++) c->argv[i] = b->s + c->offs[i];
  c->argv[c->argc] = NULL;
  c->path = t->path ? t->path : c->argv[0];
}

void cli_cmd_display(const cli_cmd *c, cli_buf *b) {
  if (c->is_shell) {
    cli_buf_add(b, c->shell.s, c->shell.len);
    return;
  }
  for (size_t i = 0; i < c->argc; i++) {
    if (i) cli_buf_addc(b, ' ');
    cli_shell_quote(b, c->argv[i]);
  }
}

void cli_cmd_free(cli_cmd *c) {
  free(c->argv);
  free(c->offs);
  cli_buf_free(&c->store);
  cli_buf_free(&c->shell);
}
