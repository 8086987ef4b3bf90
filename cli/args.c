/*
 * args.c - command-line parsing for mproc (see args.h for the grammar).
 *
 * Hand-written rather than getopt_long: GNU parallel's grammar stops option
 * parsing at the command and then scans for ":::" markers, and a few
 * options take values that look like options ("-j -1"). Every error names
 * the offending word.
 */
#include "args.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "output.h"
#include "usage.h"
#include "util.h"

int cli_cpu_count(void);

static int parse_int(const char *s, long lo, long hi, long *out) {
  if (!s || !*s) return -1;
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || *end || v < lo || v > hi) return -1;
  *out = v;
  return 0;
}

int cli_parse_jobs(const char *s, int cpus, int *out) {
  if (!s || !*s) return -1;
  size_t n = strlen(s);
  long v;
  if (s[n - 1] == '%') {
    char tmp[32];
    if (n >= sizeof tmp) return -1;
    memcpy(tmp, s, n - 1);
    tmp[n - 1] = 0;
    if (parse_int(tmp, 0, 1000000, &v) < 0) return -1;
    long j = (long)cpus * v / 100;
    *out = j < 1 ? 1 : (int)j;
    return 0;
  }
  if (s[0] == '+' || s[0] == '-') {
    if (parse_int(s + 1, 0, 1000000, &v) < 0) return -1;
    long j = s[0] == '+' ? cpus + v : cpus - v;
    *out = j < 1 ? 1 : (int)j;
    return 0;
  }
  if (parse_int(s, 0, 1000000, &v) < 0) return -1;
  *out = (int)v; /* 0 = as many as possible, resolved by the runner */
  return 0;
}

static int parse_seconds(const char *s, double *out) {
  if (!s || !*s) return -1;
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || *end || !(v >= 0) || v > 1e9 || v != v) return -1;
  *out = v;
  return 0;
}

/* "-d" argument: one character, or an escape \n \t \r \0 \\ \xHH. */
static int parse_delim(const char *s, char *out) {
  if (s[0] && !s[1]) {
    *out = s[0];
    return 0;
  }
  if (s[0] != '\\') return -1;
  if (!s[2]) {
    switch (s[1]) {
      case 'n': *out = '\n'; return 0;
      case 't': *out = '\t'; return 0;
      case 'r': *out = '\r'; return 0;
      case '0': *out = '\0'; return 0;
      case '\\': *out = '\\'; return 0;
      default: return -1;
    }
  }
  if (s[1] == 'x' && s[2] && s[3] && !s[4]) {
    char *end;
    long v = strtol(s + 2, &end, 16);
    if (*end) return -1;
    *out = (char)v;
    return 0;
  }
  return -1;
}

/* --halt: "never", "0", "1" (soon,fail=1), "2" (now,fail=1) or
 * "soon|now,fail|success=N|N%". */
static int parse_halt(const char *s, cli_opts *o) {
  if (!strcmp(s, "never") || !strcmp(s, "0")) {
    o->halt_when = CLI_HALT_NEVER;
    return 0;
  }
  if (!strcmp(s, "1") || !strcmp(s, "2")) {
    o->halt_when = s[0] == '1' ? CLI_HALT_SOON : CLI_HALT_NOW;
    o->halt_on_fail = 1;
    o->halt_value = 1;
    o->halt_percent = 0;
    return 0;
  }
  const char *comma = strchr(s, ',');
  if (!comma) return -1;
  size_t wl = (size_t)(comma - s);
  if (wl == 4 && !strncmp(s, "soon", 4))
    o->halt_when = CLI_HALT_SOON;
  else if (wl == 3 && !strncmp(s, "now", 3))
    o->halt_when = CLI_HALT_NOW;
  else
    return -1;
  const char *cond = comma + 1;
  const char *val;
  if (!strncmp(cond, "fail=", 5)) {
    o->halt_on_fail = 1;
    val = cond + 5;
  } else if (!strncmp(cond, "success=", 8)) {
    o->halt_on_fail = 0;
    val = cond + 8;
  } else if (!strncmp(cond, "done=", 5)) {
    o->halt_on_fail = 2; /* any completed job counts */
    val = cond + 5;
  } else {
    return -1;
  }
  size_t n = strlen(val);
  if (n == 0 || n > 30) return -1;
  char tmp[32];
  memcpy(tmp, val, n + 1);
  o->halt_percent = 0;
  if (tmp[n - 1] == '%') {
    tmp[n - 1] = 0;
    o->halt_percent = 1;
  }
  char *end;
  errno = 0;
  double v = strtod(tmp, &end);
  if (errno || *end || !(v > 0) || (o->halt_percent && v > 100) || v > 1e12) return -1;
  if (!o->halt_percent && v != (double)(long long)v) return -1;
  o->halt_value = v;
  return 0;
}

static int sig_by_name(const char *name) {
  static const struct { const char *n; int s; } tab[] = {
      {"TERM", SIGTERM}, {"KILL", SIGKILL}, {"INT", SIGINT}, {"HUP", SIGHUP},
      {"QUIT", SIGQUIT}, {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"ALRM", SIGALRM}};
  if (!strncasecmp(name, "SIG", 3)) name += 3;
  for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
    if (!strcasecmp(name, tab[i].n)) return tab[i].s;
  long v;
  if (parse_int(name, 1, 64, &v) == 0) return (int)v;
  return -1;
}

/* --termseq "TERM,200,TERM,100,KILL,25": signal, ms, signal, ms... */
static int parse_termseq(const char *s, cli_opts *o) {
  char tmp[256];
  if (strlen(s) >= sizeof tmp) return -1;
  strcpy(tmp, s);
  int n = 0;
  char *save = NULL;
  for (char *tok = strtok_r(tmp, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    if (n >= 8) return -1;
    int sig = sig_by_name(tok);
    if (sig < 0) return -1;
    char *ms = strtok_r(NULL, ",", &save);
    long v = 0;
    if (ms && parse_int(ms, 0, 3600000, &v) < 0) return -1;
    o->termseq_sig[n] = sig;
    o->termseq_ms[n] = (int)v;
    n++;
    if (!ms) break;
  }
  if (n == 0) return -1;
  o->ntermseq = n;
  return 0;
}

static int is_marker(const char *w) {
  return !strcmp(w, ":::") || !strcmp(w, ":::+") || !strcmp(w, "::::") || !strcmp(w, "::::+");
}

static void add_src(cli_opts *o, cli_src_spec s) {
  o->srcs = cli_xrealloc(o->srcs, (o->nsrcs + 1) * sizeof *o->srcs);
  o->srcs[o->nsrcs++] = s;
}

static int opt_is(const char *name, ...) {
  va_list ap;
  va_start(ap, name);
  int hit = 0;
  for (const char *c = va_arg(ap, const char *); c; c = va_arg(ap, const char *))
    if (!strcmp(name, c)) hit = 1;
  va_end(ap);
  return hit;
}

#define USAGE_ERR(...)                                           \
  do {                                                           \
    cli_err(__VA_ARGS__);                                        \
    cli_err("try 'mproc --help' for the list of options");      \
    return -1;                                                   \
  } while (0)

int cli_parse_args(int argc, char **argv, cli_opts *o) {
  memset(o, 0, sizeof *o);
  o->group_mode = CLI_OUT_GROUP;
  o->max_args = 1;
  o->retries = 1;
  o->delim = '\n';
  o->jobs = -1; /* not given: the CPU count */
  /* GNU parallel's default --termseq: TERM,200,TERM,100,TERM,50,KILL,25 */
  o->termseq_sig[0] = SIGTERM; o->termseq_ms[0] = 200;
  o->termseq_sig[1] = SIGTERM; o->termseq_ms[1] = 100;
  o->termseq_sig[2] = SIGTERM; o->termseq_ms[2] = 50;
  o->termseq_sig[3] = SIGKILL; o->termseq_ms[3] = 25;
  o->ntermseq = 4;
  const char *jobs_text = NULL;

  int i = 1;
  for (; i < argc; i++) {
    char *a = argv[i];
    if (is_marker(a)) break;
    if (!strcmp(a, "--")) {
      i++;
      break;
    }
    if (a[0] != '-' || a[1] == 0) break; /* the command starts here */

    /* Split "--name=value". */
    char name[64];
    const char *inl = NULL;
    int inl_used = 0;
    if (a[1] == '-') {
      const char *eq = strchr(a, '=');
      size_t nl = eq ? (size_t)(eq - a) : strlen(a);
      if (nl >= sizeof name) USAGE_ERR("unknown option '%s'", a);
      memcpy(name, a, nl);
      name[nl] = 0;
      if (eq) inl = eq + 1;
    } else {
      /* Short option: "-j4" or "-j 4"; "-k0" style bundles of flags. */
      name[0] = '-';
      name[1] = a[1];
      name[2] = 0;
      if (a[2]) {
        if (strchr("jPnNdaL", a[1])) {
          inl = a + 2;
        } else {
          /* A bundle of flags: expand by re-parsing each. */
          for (const char *f = a + 1; *f; f++) {
            if (!strchr("k0utvh", *f)) USAGE_ERR("unknown option '-%c' in '%s'", *f, a);
          }
          for (const char *f = a + 1; *f; f++) {
            switch (*f) {
              case 'k': o->keep_order = 1; break;
              case '0': o->delim = '\0'; break;
              case 'u': o->group_mode = CLI_OUT_UNGROUP; break;
              case 't': o->print_cmd = 1; break;
              case 'v': o->verbose = 1; break;
              case 'h': cli_usage(stdout); return 1;
            }
          }
          continue;
        }
      }
    }

#define TAKES_VALUE()                                                     \
  const char *val = inl;                                                  \
  inl_used = 1;                                                           \
  if (!val) {                                                             \
    if (i + 1 >= argc) USAGE_ERR("option '%s' needs a value", name);     \
    val = argv[++i];                                                      \
  }
#define IS(...) opt_is(name, __VA_ARGS__, (const char *)NULL)

    if (IS("-h", "--help")) {
      cli_usage(stdout);
      return 1;
    } else if (IS("--version")) {
      printf("mproc %s (libmproc)\n", MPROC_CLI_VERSION);
      return 1;
    } else if (IS("-j", "-P", "--jobs", "--max-procs")) {
      TAKES_VALUE();
      jobs_text = val;
      int j;
      if (cli_parse_jobs(val, 1, &j) < 0)
        USAGE_ERR("invalid job count '%s' for %s (use N, N%%, +N, -N or 0)", val, name);
    } else if (IS("-k", "--keep-order")) {
      o->keep_order = 1;
    } else if (IS("-u", "--ungroup")) {
      o->group_mode = CLI_OUT_UNGROUP;
    } else if (IS("--group")) {
      o->group_mode = CLI_OUT_GROUP;
    } else if (IS("--line-buffer", "--lb", "--line-buffered")) {
      o->group_mode = CLI_OUT_LINE;
    } else if (IS("--tag")) {
      o->tag = 1;
    } else if (IS("--dry-run", "--dryrun")) {
      o->dry_run = 1;
    } else if (IS("-t")) {
      o->print_cmd = 1;
    } else if (IS("-v", "--verbose")) {
      o->verbose = 1;
    } else if (IS("--bar")) {
      o->bar = 1;
    } else if (IS("--eta", "--progress")) {
      o->eta = 1;
    } else if (IS("-n", "-N", "-L", "--max-args", "--max-lines")) {
      TAKES_VALUE();
      long v;
      if (parse_int(val, 1, 1 << 20, &v) < 0)
        USAGE_ERR("invalid argument count '%s' for %s (1..1048576)", val, name);
      o->max_args = (int)v;
    } else if (IS("--timeout")) {
      TAKES_VALUE();
      if (parse_seconds(val, &o->timeout) < 0 || o->timeout == 0)
        USAGE_ERR("invalid --timeout '%s' (seconds > 0)", val);
    } else if (IS("--retries")) {
      TAKES_VALUE();
      long v;
      if (parse_int(val, 0, 1000000, &v) < 0) USAGE_ERR("invalid --retries '%s'", val);
      o->retries = v < 1 ? 1 : (int)v;
    } else if (IS("--halt", "--halt-on-error")) {
      TAKES_VALUE();
      if (parse_halt(val, o) < 0)
        USAGE_ERR("invalid --halt '%s' (use soon|now,fail=N|N%%|success=N|N%%, or never)", val);
    } else if (IS("-0", "--null")) {
      o->delim = '\0';
    } else if (IS("-d", "--delimiter")) {
      TAKES_VALUE();
      if (parse_delim(val, &o->delim) < 0)
        USAGE_ERR("invalid delimiter '%s' (one character or \\n \\t \\0 \\xHH)", val);
    } else if (IS("-a", "--arg-file")) {
      TAKES_VALUE();
      cli_src_spec s = {.kind = CLI_SRC_FILE, .path = val};
      add_src(o, s);
    } else if (IS("--link", "--xapply")) {
      o->link_all = 1;
    } else if (IS("--joblog")) {
      TAKES_VALUE();
      o->joblog = val;
    } else if (IS("--resume")) {
      o->resume = 1;
    } else if (IS("--resume-failed")) {
      o->resume_failed = 1;
    } else if (IS("--termseq")) {
      TAKES_VALUE();
      if (parse_termseq(val, o) < 0) USAGE_ERR("invalid --termseq '%s' (e.g. TERM,200,KILL,25)", val);
    } else if (IS("--will-cite", "--no-notice", "--gnu")) {
      /* accepted for drop-in compatibility with GNU parallel */
    } else {
      USAGE_ERR("unknown option '%s'", a);
    }
    if (inl && !inl_used) USAGE_ERR("option '%s' takes no value", name);
  }

  /* The command: words up to the first source marker. */
  o->cmd = argv + i;
  while (i < argc && !is_marker(argv[i])) i++;
  o->ncmd = (size_t)(argv + i - o->cmd);

  /* Sources. */
  while (i < argc) {
    const char *m = argv[i++];
    int linked = m[strlen(m) - 1] == '+';
    if (!strncmp(m, "::::", 4)) {
      int any = 0;
      while (i < argc && !is_marker(argv[i])) {
        cli_src_spec s = {.kind = CLI_SRC_FILE, .path = argv[i++], .linked = linked};
        add_src(o, s);
        linked = 0;
        any = 1;
      }
      if (!any) USAGE_ERR("'%s' needs at least one file name", m);
    } else {
      cli_src_spec s = {.kind = CLI_SRC_LIST, .vals = argv + i, .linked = linked};
      while (i < argc && !is_marker(argv[i])) i++;
      s.nvals = (size_t)(argv + i - s.vals);
      add_src(o, s);
    }
  }
  if (o->nsrcs > 0 && o->srcs[0].linked) USAGE_ERR("the first input source cannot be linked (:::+)");

  int stdin_srcs = 0;
  for (size_t k = 0; k < o->nsrcs; k++)
    if (o->srcs[k].kind == CLI_SRC_FILE && !strcmp(o->srcs[k].path, "-")) stdin_srcs++;
  if (stdin_srcs > 1) USAGE_ERR("standard input can be used as an input source only once");

  if (o->resume && o->resume_failed) o->resume = 0; /* --resume-failed implies --resume */
  if ((o->resume || o->resume_failed) && !o->joblog)
    USAGE_ERR("--resume and --resume-failed need --joblog FILE");
  if (o->joblog && !strcmp(o->joblog, "-") && (o->resume || o->resume_failed))
    USAGE_ERR("--resume needs a joblog file, not '-'");

  int cpus = cli_cpu_count();
  if (jobs_text) {
    int j;
    cli_parse_jobs(jobs_text, cpus, &j);
    o->jobs = j;
  } else {
    o->jobs = cpus;
  }
  return 0;
}

void cli_opts_free(cli_opts *o) {
  free(o->srcs);
  o->srcs = NULL;
  o->nsrcs = 0;
}
