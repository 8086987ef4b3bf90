/*
 * test_cli.c - black-box tests of the mproc command: every option is run
 * with real commands and the output, exit status, joblog, files written
 * and process state are checked.
 *
 * The binary's path comes from MPROC_CLI_PATH (set by cli/CMakeLists.txt);
 * without it, ../cli/mproc next to this test binary. run() starts mproc
 * with the given stdin (bytes, or a generator child writing N lines), reads
 * stdout/stderr without deadlock, can send signals to mproc's process
 * group on a schedule, and returns the wait status and peak RSS (wait4).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define UNDER_SANITIZER 1
#else
#define UNDER_SANITIZER 0
#endif

static char g_mproc[PATH_MAX];
static char g_dir[64];

static const char *mproc_path(void) {
  if (g_mproc[0]) return g_mproc;
#ifdef MPROC_CLI_PATH
  snprintf(g_mproc, sizeof g_mproc, "%s", MPROC_CLI_PATH);
#else
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  assert_true(n > 0);
  self[n] = 0;
  char *slash = strrchr(self, '/');
  *slash = 0;
  snprintf(g_mproc, sizeof g_mproc, "%s/../cli/mproc", self);
#endif
  return g_mproc;
}

typedef struct res {
  int status;        /* wait status of mproc */
  char *out, *err;   /* captured, NUL-terminated */
  size_t outlen, errlen;
  long maxrss_kb;    /* peak RSS of mproc (wait4) */
  double elapsed;    /* seconds from start to exit */
  double first_out;  /* seconds to the first stdout byte, -1 if none */
} res;

typedef struct run_opts {
  const char *in;       /* stdin bytes (NULL: /dev/null unless gen_lines) */
  size_t inlen;         /* 0: strlen(in) */
  long gen_lines;       /* > 0: stdin is a pipe fed "1\n".."N\n" by a child */
  double sig_at[2];     /* > 0: send sig[i] to mproc's process group this
                           many seconds after the start (i = 0) or after
                           the previous signal, and ... */
  int wait_count[2];    /* ... once the scratch dir holds this many files */
  int sig[2];
  const char *dir;      /* working directory for mproc (NULL: inherit) */
  int pty_err;          /* mproc's stderr is a terminal (pty) */
  int keep_stdin_open;  /* after writing in, keep the pipe open (a slow producer) */
} run_opts;

static void res_free(res *r) {
  free(r->out);
  free(r->err);
  memset(r, 0, sizeof *r);
}

static int exit_code(const res *r) {
  if (!WIFEXITED(r->status)) {
    fprintf(stderr, "mproc did not exit normally (status 0x%x)\nstderr: %s\n", r->status,
            r->err ? r->err : "");
    return -1;
  }
  return WEXITSTATUS(r->status);
}

static void append(char **buf, size_t *len, const char *p, size_t n) {
  *buf = realloc(*buf, *len + n + 1);
  assert_non_null(*buf);
  memcpy(*buf + *len, p, n);
  *len += n;
  (*buf)[*len] = 0;
}

/* Files in dir, not counting *.tmp (written, then renamed into place). */
static int count_files(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return 0;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    size_t l = strlen(e->d_name);
    if (e->d_name[0] != '.' && !(l > 4 && !strcmp(e->d_name + l - 4, ".tmp"))) n++;
  }
  closedir(d);
  return n;
}

/* Run mproc with argv (NULL-terminated, without argv[0]). */
static void runv(res *r, const run_opts *ro, const char *const *args) {
  static const run_opts none;
  if (!ro) ro = &none;
  memset(r, 0, sizeof *r);
  r->out = calloc(1, 1);
  r->err = calloc(1, 1);
  r->first_out = -1;
  const char *argv[1024];
  int ac = 0;
  argv[ac++] = mproc_path();
  for (int i = 0; args[i]; i++) {
    assert_true(ac < 1023);
    argv[ac++] = args[i];
  }
  argv[ac] = NULL;

  int pin[2], pout[2], perr[2];
  assert_int_equal(pipe2(pin, O_CLOEXEC), 0);
  assert_int_equal(pipe2(pout, O_CLOEXEC), 0);
  assert_int_equal(pipe2(perr, O_CLOEXEC), 0);
  char slave[128] = "";
  if (ro->pty_err) {
    /* stderr on a pseudo-terminal: perr[0] becomes the master side. */
    close(perr[0]);
    close(perr[1]);
    perr[0] = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    assert_true(perr[0] >= 0);
    assert_int_equal(grantpt(perr[0]), 0);
    assert_int_equal(unlockpt(perr[0]), 0);
    assert_int_equal(ptsname_r(perr[0], slave, sizeof slave), 0);
    perr[1] = -1;
  }
  pid_t gen = -1;
  if (ro->gen_lines > 0) {
    gen = fork();
    assert_true(gen >= 0);
    if (gen == 0) {
      /* Hold only the write end of stdin: mproc's output must reach EOF
       * even while this writer is blocked. */
      close(pout[0]);
      close(pout[1]);
      close(perr[0]);
      if (perr[1] >= 0) close(perr[1]);
      close(pin[0]);
      static char buf[1 << 16];
      size_t n = 0;
      for (long i = 1; i <= ro->gen_lines; i++) {
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%ld\n", i);
        if (n > sizeof buf - 32) {
          if (write(pin[1], buf, n) != (ssize_t)n) _exit(1);
          n = 0;
        }
      }
      if (n && write(pin[1], buf, n) != (ssize_t)n) _exit(1);
      _exit(0);
    }
  }
  double t0 = mproc_test_now(), tsig = t0;
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    setpgid(0, 0); /* its own group: signals go to mproc and its shell only */
    if (ro->dir && chdir(ro->dir) < 0) _exit(126);
    if (ro->in || ro->gen_lines > 0) {
      dup2(pin[0], 0);
    } else {
      int dn = open("/dev/null", O_RDONLY);
      dup2(dn, 0);
      close(dn);
    }
    dup2(pout[1], 1);
    if (slave[0]) {
      int t = open(slave, O_RDWR | O_NOCTTY);
      if (t < 0) _exit(126);
      dup2(t, 2);
      close(t);
    } else {
      dup2(perr[1], 2);
    }
    execv(argv[0], (char *const *)argv);
    _exit(127);
  }
  setpgid(pid, pid);
  close(pin[0]);
  close(pout[1]);
  if (perr[1] >= 0) close(perr[1]);
  if (gen > 0 || !ro->in) {
    close(pin[1]);
    pin[1] = -1;
  }
  const char *inp = ro->in;
  size_t inleft = ro->in ? (ro->inlen ? ro->inlen : strlen(ro->in)) : 0;
  if (pin[1] >= 0) fcntl(pin[1], F_SETFL, O_NONBLOCK);
  int nsig = 0;
  int open_out = 2;
  int stdin_held = -1;
  while (open_out > 0) {
    struct pollfd pf[3];
    int np = 0;
    pf[np++] = (struct pollfd){.fd = pout[0], .events = POLLIN};
    pf[np++] = (struct pollfd){.fd = perr[0], .events = POLLIN};
    if (pin[1] >= 0) pf[np++] = (struct pollfd){.fd = pin[1], .events = POLLOUT};
    int to = -1;
    if (nsig < 2 && ro->sig_at[nsig] > 0) {
      double d = tsig + ro->sig_at[nsig] - mproc_test_now();
      to = d <= 0 ? 0 : (int)(d * 1000) + 1;
      if (ro->wait_count[nsig] > 0 && to < 10) to = 10;
    }
    int n = poll(pf, (nfds_t)np, to);
    if (n < 0 && errno == EINTR) continue;
    assert_true(n >= 0);
    if (nsig < 2 && ro->sig_at[nsig] > 0 && mproc_test_now() >= tsig + ro->sig_at[nsig] &&
        (ro->wait_count[nsig] == 0 || count_files(g_dir) >= ro->wait_count[nsig])) {
      kill(-pid, ro->sig[nsig]);
      nsig++;
      tsig = mproc_test_now();
    }
    for (int i = 0; i < 2; i++) {
      if (pf[i].fd < 0 || !(pf[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[65536];
      ssize_t k = read(pf[i].fd, buf, sizeof buf);
      if (k > 0) {
        if (i == 0) {
          if (r->first_out < 0) r->first_out = mproc_test_now() - t0;
          append(&r->out, &r->outlen, buf, (size_t)k);
        } else {
          append(&r->err, &r->errlen, buf, (size_t)k);
        }
      } else if (k == 0 || (k < 0 && errno != EINTR && errno != EAGAIN)) {
        close(pf[i].fd);
        if (i == 0) pout[0] = -1; else perr[0] = -1;
        open_out--;
      }
    }
    if (pout[0] < 0 && perr[0] < 0) break;
    /* Keep closed fds out of the next poll. */
    if (pout[0] < 0) pout[0] = -1;
    if (pin[1] >= 0 && np == 3 && (pf[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t w = write(pin[1], inp, inleft);
      if (w > 0) {
        inp += w;
        inleft -= (size_t)w;
      }
      if (inleft == 0 && ro->keep_stdin_open) {
        stdin_held = pin[1]; /* closed after mproc exits */
        pin[1] = -1;
      } else if (inleft == 0 || (w < 0 && errno != EAGAIN && errno != EINTR)) {
        close(pin[1]);
        pin[1] = -1;
      }
    }
    if (pout[0] < 0 || perr[0] < 0) {
      /* poll() ignores negative fds: nothing else to do. */
    }
  }
  if (pin[1] >= 0) close(pin[1]);
  if (stdin_held >= 0) close(stdin_held);
  struct rusage ru;
  memset(&ru, 0, sizeof ru);
  while (wait4(pid, &r->status, 0, &ru) < 0 && errno == EINTR) {
  }
  r->elapsed = mproc_test_now() - t0;
  r->maxrss_kb = ru.ru_maxrss;
  if (gen > 0) {
    kill(gen, SIGKILL); /* mproc may stop reading early (halt) */
    waitpid(gen, NULL, 0);
  }
}

#define RUN(r, ro, ...)                                        \
  do {                                                         \
    const char *a__[] = {__VA_ARGS__, NULL};                   \
    runv((r), (ro), a__);                                      \
  } while (0)

/* Run mproc, then check its exit code and its whole stdout. */
#define EXPECT_OUT(ro, want_code, want_out, ...)          \
  do {                                                    \
    res r__;                                              \
    RUN(&r__, (ro), __VA_ARGS__);                         \
    assert_int_equal(exit_code(&r__), (want_code));       \
    assert_string_equal(r__.out, (want_out));             \
    res_free(&r__);                                       \
  } while (0)

/* Sort the lines of s (for output whose order is not defined). */
static int cmpstr(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}
static char *sorted_lines(const char *s) {
  char *copy = strdup(s);
  char *lines[4096];
  size_t n = 0;
  char *save = NULL;
  for (char *l = strtok_r(copy, "\n", &save); l && n < 4096; l = strtok_r(NULL, "\n", &save))
    lines[n++] = l;
  qsort(lines, n, sizeof *lines, cmpstr);
  size_t len = strlen(s) + 2;
  char *out = calloc(1, len);
  for (size_t i = 0; i < n; i++) {
    strcat(out, lines[i]);
    strcat(out, "\n");
  }
  free(copy);
  return out;
}

static size_t count_lines(const char *s) {
  size_t n = 0;
  for (; *s; s++)
    if (*s == '\n') n++;
  return n;
}

/* A scratch directory per test, removed at the end (g_dir is declared at
 * the top: runv() can wait for files to appear in it). */
static void tmpdir_make(void) {
  snprintf(g_dir, sizeof g_dir, "/tmp/mproc_cli_XXXXXX");
  assert_non_null(mkdtemp(g_dir));
}
static void tmpdir_remove(void) {
  DIR *d = opendir(g_dir);
  if (d) {
    struct dirent *e;
    while ((e = readdir(d))) {
      if (e->d_name[0] == '.') continue;
      char p[PATH_MAX];
      snprintf(p, sizeof p, "%s/%s", g_dir, e->d_name);
      unlink(p);
    }
    closedir(d);
  }
  rmdir(g_dir);
}
static char *path_in(const char *name) {
  static char p[8][PATH_MAX];
  static int k;
  k = (k + 1) % 8;
  snprintf(p[k], sizeof p[k], "%s/%s", g_dir, name);
  return p[k];
}
static char *slurp(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) return NULL;
  char *buf = NULL;
  size_t len = 0;
  char chunk[4096];
  size_t n;
  append(&buf, &len, "", 0);
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) append(&buf, &len, chunk, n);
  fclose(f);
  return buf;
}
static void spit(const char *path, const char *s) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(s, f);
  fclose(f);
}

/* ---------------------------------------------------------------- inputs */

static void args_from_command_line(void **state) {
  (void)state;
  res r;
  RUN(&r, NULL, "echo", ":::", "a", "b", "c");
  assert_int_equal(exit_code(&r), 0);
  char *s = sorted_lines(r.out);
  assert_string_equal(s, "a\nb\nc\n");
  free(s);
  res_free(&r);
}

static void lines_from_stdin(void **state) {
  (void)state;
  res r;
  run_opts ro = {.in = "a\nb c\n\nd"};
  RUN(&r, &ro, "-k", "echo");
  assert_int_equal(exit_code(&r), 0);
  /* An empty line is an empty argument; the last line needs no newline. */
  assert_string_equal(r.out, "a\nb c\n\nd\n");
  res_free(&r);
}

static void null_and_custom_delimiters(void **state) {
  (void)state;
  run_opts ro = {.in = "a\nx\0b c\0", .inlen = 8};
  EXPECT_OUT(&ro, 0, "[a\nx]\n[b c]\n",
             "-k", "-0", "printf '[%s]\\n'");
  run_opts ro2 = {.in = "1,2,3"};
  EXPECT_OUT(&ro2, 0, "n 1\nn 2\nn 3\n",
             "-k", "-d", ",", "echo", "n");
}

static void all_combinations_of_sources(void **state) {
  (void)state;
  EXPECT_OUT(NULL, 0, "a 1 x\na 2 x\nb 1 x\nb 2 x\n",
             "-k", "echo", ":::", "a", "b", ":::", "1", "2", ":::", "x");
  EXPECT_OUT(NULL, 0, "1a\n2a\n1b\n2b\n",
             "-k", "echo", "{2}{1}", ":::", "a", "b", ":::", "1", "2");
}

static void linked_sources(void **state) {
  (void)state;
  /* :::+ pairs values; the shortest source decides. */
  EXPECT_OUT(NULL, 0, "a 1\nb 2\n",
             "-k", "echo", ":::", "a", "b", "c", ":::+", "1", "2");
  /* --link: shorter sources wrap around. */
  EXPECT_OUT(NULL, 0, "a 1\nb 2\na 3\n",
             "-k", "--link", "echo", ":::", "a", "b", ":::", "1", "2", "3");
}

static void file_sources(void **state) {
  (void)state;
  tmpdir_make();
  spit(path_in("f1"), "x\ny\n");
  spit(path_in("f2"), "1\n2\n");
  res r;
  EXPECT_OUT(NULL, 0, "x 1\nx 2\ny 1\ny 2\n",
             "-k", "echo", "::::", path_in("f1"), path_in("f2"));
  EXPECT_OUT(NULL, 0, "x p\ny p\n",
             "-k", "-a", path_in("f1"), "echo", ":::", "p");
  /* A missing file is an error before anything runs. */
  RUN(&r, NULL, "echo", "::::", path_in("missing"));
  assert_int_equal(exit_code(&r), 255);
  assert_non_null(strstr(r.err, "missing"));
  assert_int_equal(r.outlen, 0);
  res_free(&r);
  tmpdir_remove();
}

static void stdin_file_source_with_list(void **state) {
  (void)state;
  run_opts ro = {.in = "a\nb\n"};
  EXPECT_OUT(&ro, 0, "a 1\na 2\nb 1\nb 2\n",
             "-k", "echo", "::::", "-", ":::", "1", "2");
}

static void max_args_per_job(void **state) {
  (void)state;
  EXPECT_OUT(NULL, 0, "a b\nc d\ne\n",
             "-k", "-n", "2", "echo", ":::", "a", "b", "c", "d", "e");
  EXPECT_OUT(NULL, 0, "b-a\nd-c\n",
             "-k", "-n2", "echo", "{2}-{1}", ":::", "a", "b", "c", "d");
}

static void commands_from_input(void **state) {
  (void)state;
  EXPECT_OUT(NULL, 0, "one\nTWO\n",
             "-k", ":::", "echo one", "echo two | tr a-z A-Z");
}

/* ------------------------------------------------- replacement strings */

static void replacement_strings(void **state) {
  (void)state;
  res r;
  RUN(&r, NULL, "echo", "{}", "{.}", "{/}", "{//}", "{/.}", ":::", "dir/sub.x/file.tar.gz");
  assert_int_equal(exit_code(&r), 0);
  assert_string_equal(r.out,
                      "dir/sub.x/file.tar.gz dir/sub.x/file.tar file.tar.gz dir/sub.x file.tar\n");
  res_free(&r);
  EXPECT_OUT(NULL, 0, ". plain plain\n/ root.c /root\n",
             "-k", "echo", "{//}", "{/}", "{.}", ":::", "plain", "/root.c");
  /* {#} job number, {%} slot (1 with -j1), {N} with modifiers. */
  EXPECT_OUT(NULL, 0, "1:1:y:a\n2:1:y:b\n",
             "-k", "-j1", "echo", "{#}:{%}:{2/.}:{1}", ":::", "a", "b", ":::", "x/y.z");
  /* Without a replacement string the argument is appended. */
  EXPECT_OUT(NULL, 0, "pre x\n",
             "echo", "pre", ":::", "x");
  /* Not a replacement string: left alone. */
  EXPECT_OUT(NULL, 0, "{x} {0} v\n",
             "echo", "{x}", "{0}", ":::", "v");
}

static void slots_are_distinct_when_parallel(void **state) {
  (void)state;
  res r;
  RUN(&r, NULL, "-j", "0", "sleep 0.5; echo {%}", ":::", "a", "b", "c", "d");
  assert_int_equal(exit_code(&r), 0);
  char *s = sorted_lines(r.out);
  assert_string_equal(s, "1\n2\n3\n4\n");
  free(s);
  res_free(&r);
}

static void job_counts(void **state) {
  (void)state;
  /* -j forms against a CPU count fixed by $MPROC_CPU_COUNT (read by the
   * library's mproc_cpu_count()); the summary line says the parallelism. */
  setenv("MPROC_CPU_COUNT", "4", 1);
  const char *forms[][2] = {{NULL, "4"}, {"50%", "2"}, {"+1", "5"}, {"-1", "3"},
                            {"0", "10"}, {"3", "3"}, {"200%", "8"}};
  for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
    res r;
    if (forms[i][0])
      RUN(&r, NULL, "-v", "-j", forms[i][0], "true", ":::", "1", "2", "3", "4", "5", "6", "7", "8",
          "9", "10");
    else
      RUN(&r, NULL, "-v", "true", ":::", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10");
    assert_int_equal(exit_code(&r), 0);
    char want[64];
    snprintf(want, sizeof want, "%s in parallel", forms[i][1]);
    if (!strstr(r.err, want)) fail_msg("-j %s: %s", forms[i][0] ? forms[i][0] : "(default)", r.err);
    res_free(&r);
  }
  unsetenv("MPROC_CPU_COUNT");
}

static void environment_seq_and_slot(void **state) {
  (void)state;
  EXPECT_OUT(NULL, 0, "1 1 a\n2 1 b\n",
             "-k", "-j1", "echo $PARALLEL_SEQ $PARALLEL_JOBSLOT {}", ":::", "a", "b");
}

/* ------------------------------------------------------------- quoting */

static void quoting_in_shell_commands(void **state) {
  (void)state;
  res r;
  /* Shell syntax in the command: values are quoted so they stay literal. */
  RUN(&r, NULL, "-k", "printf '<%s>' {}; echo", ":::", "a b", "it's", "$HOME", "`id`", "x\"y",
      "back\\slash", "semi;colon", "");
  assert_int_equal(exit_code(&r), 0);
  assert_string_equal(r.out, "<a b>\n<it's>\n<$HOME>\n<`id`>\n<x\"y>\n<back\\slash>\n<semi;colon>\n<>\n");
  res_free(&r);
  /* Direct exec: each value is one argv entry, no shell involved. */
  EXPECT_OUT(NULL, 0, "a  b=it's=$HOME=",
             "-k", "-j1", "printf", "%s=", ":::", "a  b", "it's", "$HOME");
  EXPECT_OUT(NULL, 0, "a  b\nit's\n",
             "-k", "echo", ":::", "a  b", "it's");
}

static void shell_syntax_runs_through_sh(void **state) {
  (void)state;
  res r;
  EXPECT_OUT(NULL, 0, "AB\nCD\n",
             "-k", "echo {} | tr a-z A-Z", ":::", "ab", "cd");
  /* A builtin is not in PATH: it runs through the shell. */
  RUN(&r, NULL, "cd", ":::", "/", "/tmp");
  assert_int_equal(exit_code(&r), 0);
  res_free(&r);
  /* Words are joined with spaces as GNU parallel does. */
  RUN(&r, NULL, "-k", "echo", "$HOME", ":::", "x");
  char want[PATH_MAX + 8];
  snprintf(want, sizeof want, "%s x\n", getenv("HOME") ? getenv("HOME") : "");
  assert_string_equal(r.out, want);
  res_free(&r);
}

static void dry_run_prints_and_runs_nothing(void **state) {
  (void)state;
  tmpdir_make();
  res r;
  EXPECT_OUT(NULL, 0, "echo a b 'it'\\''s'\n",
             "--dry-run", "echo", "a b", "{}", ":::", "it's");
  RUN(&r, NULL, "--dry-run", "-k", "touch", ":::", path_in("f1"), path_in("f 2"));
  assert_int_equal(exit_code(&r), 0);
  char want[2 * PATH_MAX];
  snprintf(want, sizeof want, "touch %s\ntouch '%s'\n", path_in("f1"), path_in("f 2"));
  assert_string_equal(r.out, want);
  assert_int_equal(access(path_in("f1"), F_OK), -1);
  res_free(&r);
  tmpdir_remove();
}

/* -------------------------------------------------------------- output */

static void keep_order(void **state) {
  (void)state;
  res r;
  RUN(&r, NULL, "-k", "-j4", "sleep 0.{}; echo {}", ":::", "4", "3", "2", "1", "0");
  assert_int_equal(exit_code(&r), 0);
  assert_string_equal(r.out, "4\n3\n2\n1\n0\n");
  res_free(&r);
}

static void output_is_grouped(void **state) {
  (void)state;
  res r;
  RUN(&r, NULL, "-j3", "for i in 1 2 3 4; do echo {}$i; echo {}e$i >&2; sleep 0.05; done", ":::",
      "a", "b", "c");
  assert_int_equal(exit_code(&r), 0);
  /* Each job's lines are contiguous on stdout and on stderr. */
  const char *streams[2] = {r.out, r.err};
  for (int s = 0; s < 2; s++) {
    const char *p = streams[s];
    assert_int_equal(count_lines(p), 12);
    for (int job = 0; job < 3; job++) {
      char first = p[0];
      for (int i = 1; i <= 4; i++) {
        assert_int_equal(p[0], first);
        char want[8];
        snprintf(want, sizeof want, s ? "%ce%d\n" : "%c%d\n", first, i);
        assert_memory_equal(p, want, strlen(want));
        p += strlen(want);
      }
    }
  }
  res_free(&r);
}

static void line_buffer_streams_lines(void **state) {
  (void)state;
  res r;
  RUN(&r, NULL, "--line-buffer", "echo first; sleep 1.5; echo second {}", ":::", "x");
  assert_int_equal(exit_code(&r), 0);
  assert_string_equal(r.out, "first\nsecond x\n");
  if (!(r.first_out >= 0 && r.first_out < r.elapsed - 0.7))
    fail_msg("first output after %.3f s, exit after %.3f s", r.first_out, r.elapsed);
  res_free(&r);
  /* Grouped (default): nothing until the job ends. */
  RUN(&r, NULL, "echo first; sleep 1; echo second {}", ":::", "x");
  assert_string_equal(r.out, "first\nsecond x\n");
  assert_true(r.first_out >= 0.9);
  res_free(&r);
}

static void tag_prefixes_lines(void **state) {
  (void)state;
  res r;
  RUN(&r, NULL, "-k", "--tag", "printf 'l1\\nl2\\n'; true", ":::", "a", "b c");
  assert_int_equal(exit_code(&r), 0);
  assert_string_equal(r.out, "a\tl1\na\tl2\nb c\tl1\nb c\tl2\n");
  res_free(&r);
}

static void ungrouped_output(void **state) {
  (void)state;
  EXPECT_OUT(NULL, 0, "a\nb\n",
             "-u", "-j1", "echo", ":::", "a", "b");
}

static void jobs_get_dev_null_as_stdin(void **state) {
  (void)state;
  res r;
  run_opts ro = {.in = "x\ny\n"};
  /* cat must not swallow the remaining input lines. */
  RUN(&r, &ro, "-k", "-j1", "cat; echo {}");
  assert_int_equal(exit_code(&r), 0);
  assert_string_equal(r.out, "x\ny\n");
  res_free(&r);
  /* Also when the inputs come from the command line. */
  RUN(&r, &ro, "cat; echo {}", ":::", "z");
  assert_int_equal(exit_code(&r), 0);
  assert_string_equal(r.out, "z\n");
  res_free(&r);
}

/* ------------------------------------------------- exit status, errors */

static void exit_status_counts_failures(void **state) {
  (void)state;
  res r;
  RUN(&r, NULL, "exit {}", ":::", "0", "1", "2", "0", "7");
  assert_int_equal(exit_code(&r), 3);
  res_free(&r);
  const char *args[160];
  int n = 0;
  args[n++] = "-j8";
  args[n++] = "false";
  args[n++] = ":::";
  static char nums[150][8];
  for (int i = 0; i < 150; i++) {
    snprintf(nums[i], sizeof nums[i], "%d", i);
    args[n++] = nums[i];
  }
  args[n] = NULL;
  runv(&r, NULL, args);
  assert_int_equal(exit_code(&r), 101);
  res_free(&r);
  /* A job killed by a signal is a failure. */
  RUN(&r, NULL, "kill -9 $$", ":::", "1");
  assert_int_equal(exit_code(&r), 1);
  res_free(&r);
}

static void argument_errors_exit_255_and_run_nothing(void **state) {
  (void)state;
  tmpdir_make();
  const char *bad[][6] = {
      {"--bogus", "touch", NULL},
      {"-j", "abc", "touch", NULL},
      {"--halt", "sometimes", "touch", NULL},
      {"--timeout", "-1", "touch", NULL},
      {"--resume", "touch", NULL},
      {"-n", "0", "touch", NULL},
      {"-d", "ab", "touch", NULL},
      {"--retries", "x", "touch", NULL},
      {"touch", ":::+", NULL},
      {"-j", NULL},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    const char *args[10];
    int n = 0;
    for (int k = 0; bad[i][k]; k++) args[n++] = bad[i][k];
    if (n && !strcmp(args[n - 1], "touch")) {
      args[n++] = ":::";
      args[n++] = path_in("f");
    }
    args[n] = NULL;
    res r;
    runv(&r, NULL, args);
    if (exit_code(&r) != 255) fail_msg("case %zu: exit %d, stderr: %s", i, exit_code(&r), r.err);
    assert_non_null(strstr(r.err, "mproc: "));
    assert_int_equal(access(path_in("f"), F_OK), -1);
    res_free(&r);
  }
  tmpdir_remove();
}

static void missing_program_fails_the_job(void **state) {
  (void)state;
  res r;
  RUN(&r, NULL, "/nonexistent/prog", ":::", "a", "b");
  assert_int_equal(exit_code(&r), 2);
  assert_non_null(strstr(r.err, "No such file"));
  res_free(&r);
  RUN(&r, NULL, "no-such-program-mproc", ":::", "a");
  assert_int_equal(exit_code(&r), 1);
  res_free(&r);
}

static void help_and_version(void **state) {
  (void)state;
  res r;
  RUN(&r, NULL, "--help");
  assert_int_equal(exit_code(&r), 0);
  assert_non_null(strstr(r.out, "Usage: mproc"));
  assert_non_null(strstr(r.out, "--joblog"));
  res_free(&r);
  RUN(&r, NULL, "--version");
  assert_int_equal(exit_code(&r), 0);
  assert_non_null(strstr(r.out, "mproc "));
  res_free(&r);
}

static void empty_input_runs_nothing(void **state) {
  (void)state;
  res r;
  run_opts ro = {.in = ""};
  RUN(&r, &ro, "echo", "x");
  assert_int_equal(exit_code(&r), 0);
  assert_int_equal(r.outlen, 0);
  res_free(&r);
}

/* -------------------------------------------------------- joblog/resume */

static char **split(char *s, char sep, int *n) {
  static char *cols[64];
  *n = 0;
  cols[(*n)++] = s;
  for (; *s && *n < 64; s++)
    if (*s == sep) {
      *s = 0;
      cols[(*n)++] = s + 1;
    }
  return cols;
}

static void joblog_format(void **state) {
  (void)state;
  tmpdir_make();
  res r;
  RUN(&r, NULL, "-k", "--joblog", path_in("log"), "echo {}; exit {}", ":::", "0", "3");
  assert_int_equal(exit_code(&r), 1);
  res_free(&r);
  RUN(&r, NULL, "--joblog", path_in("log2"), "echo", ":::", "abc");
  res_free(&r);
  char *log = slurp(path_in("log"));
  assert_non_null(log);
  char *save = NULL;
  char *line = strtok_r(log, "\n", &save);
  assert_string_equal(line, "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand");
  int seen[2] = {0, 0};
  for (int i = 0; i < 2; i++) {
    line = strtok_r(NULL, "\n", &save);
    assert_non_null(line);
    int n;
    char **c = split(line, '\t', &n);
    assert_int_equal(n, 9);
    int seq = atoi(c[0]);
    assert_true(seq == 1 || seq == 2);
    seen[seq - 1]++;
    assert_string_equal(c[1], ":");
    /* Starttime: Unix seconds with 3 decimals, close to now. */
    char *dot = strchr(c[2], '.');
    assert_non_null(dot);
    assert_int_equal(strlen(dot + 1), 3);
    double st = atof(c[2]);
    assert_true(st > 1.6e9);
    /* JobRuntime: "%10.3f". */
    assert_int_equal(strlen(c[3]), 10);
    assert_int_equal(strchr(c[3], '.') - c[3], 6);
    assert_string_equal(c[4], "0");
    assert_string_equal(c[5], "2"); /* "0\n" / "3\n" on stdout */
    assert_string_equal(c[6], seq == 1 ? "0" : "3");
    assert_string_equal(c[7], "0");
    assert_string_equal(c[8], seq == 1 ? "echo 0; exit 0" : "echo 3; exit 3");
  }
  assert_null(strtok_r(NULL, "\n", &save));
  assert_int_equal(seen[0] + seen[1], 2);
  free(log);
  log = slurp(path_in("log2"));
  assert_non_null(strstr(log, "\t0\t4\t0\t0\techo abc\n"));
  free(log);
  tmpdir_remove();
}

static void resume_skips_logged_jobs(void **state) {
  (void)state;
  tmpdir_make();
  char cmd[PATH_MAX + 64];
  snprintf(cmd, sizeof cmd, "echo {} >> %s", path_in("out"));
  res r;
  RUN(&r, NULL, "-j1", "--joblog", path_in("log"), cmd, ":::", "1", "2", "3");
  assert_int_equal(exit_code(&r), 0);
  res_free(&r);
  RUN(&r, NULL, "-j1", "--resume", "--joblog", path_in("log"), cmd, ":::", "1", "2", "3", "4", "5");
  assert_int_equal(exit_code(&r), 0);
  res_free(&r);
  char *out = slurp(path_in("out"));
  assert_string_equal(out, "1\n2\n3\n4\n5\n");
  free(out);
  char *log = slurp(path_in("log"));
  assert_int_equal(count_lines(log), 6); /* one header, five jobs */
  free(log);
  tmpdir_remove();
}

static void resume_failed_reruns_failures(void **state) {
  (void)state;
  tmpdir_make();
  char cmd[PATH_MAX + 64], fixed[PATH_MAX + 64];
  snprintf(cmd, sizeof cmd, "echo {} >> %s; test {} -ne 2", path_in("out"));
  snprintf(fixed, sizeof fixed, "echo again{} >> %s", path_in("out"));
  res r;
  RUN(&r, NULL, "-j1", "--joblog", path_in("log"), cmd, ":::", "1", "2", "3");
  assert_int_equal(exit_code(&r), 1);
  res_free(&r);
  RUN(&r, NULL, "-j1", "--resume-failed", "--joblog", path_in("log"), fixed, ":::", "1", "2", "3");
  assert_int_equal(exit_code(&r), 0);
  res_free(&r);
  char *out = slurp(path_in("out"));
  assert_string_equal(out, "1\n2\n3\nagain2\n");
  free(out);
  /* Nothing left to do now. */
  RUN(&r, NULL, "-j1", "--resume-failed", "--joblog", path_in("log"), fixed, ":::", "1", "2", "3");
  assert_int_equal(exit_code(&r), 0);
  res_free(&r);
  out = slurp(path_in("out"));
  assert_string_equal(out, "1\n2\n3\nagain2\n");
  free(out);
  tmpdir_remove();
}

/* ------------------------------------------ timeouts, retries, halting */

static void timeout_kills_group_ignoring_term(void **state) {
  (void)state;
  tmpdir_make();
  char cmd[PATH_MAX + 128];
  snprintf(cmd, sizeof cmd, "trap '' TERM; sleep 60 & echo $! > %s; sleep 60; echo never",
           path_in("bg"));
  res r;
  RUN(&r, NULL, "--timeout", "0.5", "--joblog", path_in("log"), cmd, ":::", "1");
  assert_int_equal(exit_code(&r), 1);
  assert_true(r.elapsed < 10);
  assert_int_equal(r.outlen, 0);
  assert_non_null(strstr(r.err, "timed out"));
  char *bg = slurp(path_in("bg"));
  assert_non_null(bg);
  pid_t bgpid = (pid_t)atoi(bg);
  assert_true(bgpid > 0);
  assert_true(mproc_test_wait_gone(bgpid, 5.0));
  free(bg);
  char *log = slurp(path_in("log"));
  assert_non_null(strstr(log, "\t-1\t9\t")); /* killed by mproc, finally SIGKILL */
  free(log);
  res_free(&r);
  /* Jobs that finish in time are not affected. */
  EXPECT_OUT(NULL, 0, "ok\n",
             "--timeout", "5", "echo", ":::", "ok");
  tmpdir_remove();
}

static void retries_rerun_failing_jobs(void **state) {
  (void)state;
  tmpdir_make();
  char cmd[PATH_MAX + 64];
  snprintf(cmd, sizeof cmd, "echo x >> %s; false", path_in("a"));
  res r;
  RUN(&r, NULL, "--retries", "3", cmd, ":::", "1");
  assert_int_equal(exit_code(&r), 1);
  res_free(&r);
  char *a = slurp(path_in("a"));
  assert_string_equal(a, "x\nx\nx\n");
  free(a);
  /* Succeeds on the second attempt: exit 0, two runs. */
  snprintf(cmd, sizeof cmd, ": {}; echo x >> %s; test $(wc -l < %s) -ge 2", path_in("b"), path_in("b"));
  RUN(&r, NULL, "--retries", "3", cmd, ":::", "1");
  assert_int_equal(exit_code(&r), 0);
  res_free(&r);
  a = slurp(path_in("b"));
  assert_string_equal(a, "x\nx\n");
  free(a);
  tmpdir_remove();
}

static void halt_soon_on_first_failure(void **state) {
  (void)state;
  res r;
  RUN(&r, NULL, "-j1", "-k", "--halt", "soon,fail=1", "echo {}; exit {}", ":::", "0", "3", "0", "0");
  assert_int_equal(exit_code(&r), 3); /* the failing job's status */
  assert_string_equal(r.out, "0\n3\n");
  res_free(&r);
  /* Legacy --halt 1 is the same. */
  RUN(&r, NULL, "-j1", "--halt", "1", "exit {}", ":::", "0", "5", "0");
  assert_int_equal(exit_code(&r), 5);
  res_free(&r);
}

static void halt_now_kills_running_jobs(void **state) {
  (void)state;
  res r;
  RUN(&r, NULL, "-j2", "--halt", "now,fail=1", "sleep {}; exit 4", ":::", "30", "0.2");
  assert_int_equal(exit_code(&r), 4);
  assert_true(r.elapsed < 10);
  res_free(&r);
  /* soon waits for the running job instead. */
  RUN(&r, NULL, "-j2", "--halt", "soon,fail=1", "sleep {}; echo {}; exit 4", ":::", "1", "0.1");
  assert_int_equal(exit_code(&r), 4);
  char *s = sorted_lines(r.out);
  assert_string_equal(s, "0.1\n1\n");
  free(s);
  res_free(&r);
}

static void halt_on_success_and_percent(void **state) {
  (void)state;
  res r;
  RUN(&r, NULL, "-j1", "-k", "--halt", "soon,success=1", "echo {}; exit {}", ":::", "1", "0", "1",
      "1");
  assert_int_equal(exit_code(&r), 0);
  assert_string_equal(r.out, "1\n0\n");
  res_free(&r);
  /* fail=50%: after 3 jobs, 2 failed (67%): stop; exit = failures. */
  RUN(&r, NULL, "-j1", "-k", "--halt", "soon,fail=50%", "echo {}; exit {}", ":::", "1", "0", "1",
      "0", "0", "0", "0", "0");
  assert_int_equal(exit_code(&r), 2);
  assert_string_equal(r.out, "1\n0\n1\n");
  res_free(&r);
}

/* ------------------------------------------------------- signals, Ctrl-C */

static void first_sigint_waits_for_running_jobs(void **state) {
  (void)state;
  res r;
  tmpdir_make();
  char cmd[PATH_MAX + 64];
  snprintf(cmd, sizeof cmd, "touch %s/{}; sleep 1; echo done {}", g_dir);
  /* SIGINT once jobs 1 and 2 run. */
  run_opts ro = {.sig_at = {0.05, 0}, .sig = {SIGINT, 0}, .wait_count = {2, 0}};
  RUN(&r, &ro, "-j2", "-k", cmd, ":::", "1", "2", "3", "4");
  /* mproc re-raises SIGINT after the running jobs finished. */
  assert_true(WIFSIGNALED(r.status));
  assert_int_equal(WTERMSIG(r.status), SIGINT);
  assert_string_equal(r.out, "done 1\ndone 2\n");
  assert_non_null(strstr(r.err, "interrupted"));
  res_free(&r);
  tmpdir_remove();
}

static void second_sigint_kills_jobs(void **state) {
  (void)state;
  tmpdir_make();
  char cmd[3 * PATH_MAX];
  snprintf(cmd, sizeof cmd, "echo $$ > %s/{}.tmp; mv %s/{}.tmp %s/{}.pid; sleep 60 & wait", g_dir,
           g_dir, g_dir);
  res r;
  run_opts ro = {.sig_at = {0.05, 0.3}, .sig = {SIGINT, SIGINT}, .wait_count = {2, 2}};
  RUN(&r, &ro, "-j2", cmd, ":::", "1", "2", "3");
  assert_true(WIFSIGNALED(r.status));
  assert_int_equal(WTERMSIG(r.status), SIGINT);
  assert_true(r.elapsed < 15);
  for (int i = 1; i <= 2; i++) {
    char name[16];
    snprintf(name, sizeof name, "%d.pid", i);
    char *p = slurp(path_in(name));
    assert_non_null(p);
    assert_true(mproc_test_wait_gone((pid_t)atoi(p), 5.0));
    free(p);
  }
  /* Job 3 never started. */
  assert_int_equal(access(path_in("3.pid"), F_OK), -1);
  res_free(&r);
  tmpdir_remove();
}

static void killed_mproc_leaves_no_orphan(void **state) {
  (void)state;
  tmpdir_make();
  char cmd[3 * PATH_MAX];
  snprintf(cmd, sizeof cmd, "echo $$ > %s/{}.tmp; mv %s/{}.tmp %s/{}.pid; exec sleep 60", g_dir,
           g_dir, g_dir);
  res r;
  run_opts ro = {.sig_at = {0.05, 0}, .sig = {SIGKILL, 0}, .wait_count = {2, 0}};
  RUN(&r, &ro, "-j2", cmd, ":::", "1", "2");
  assert_true(WIFSIGNALED(r.status));
  for (int i = 1; i <= 2; i++) {
    char name[16];
    snprintf(name, sizeof name, "%d.pid", i);
    char *p = slurp(path_in(name));
    assert_non_null(p);
    assert_true(mproc_test_wait_gone((pid_t)atoi(p), 5.0));
    free(p);
  }
  res_free(&r);
  tmpdir_remove();
}

static void works_without_pidfds(void **state) {
  (void)state;
  /* The SIGCHLD fallback (old kernels, valgrind) reaps as well. */
  setenv("MPROC_CLI_NO_PIDFD", "1", 1);
  res r;
  RUN(&r, NULL, "-k", "-j3", "sleep 0.{}; echo {}; exit {}", ":::", "3", "1", "2", "0");
  assert_int_equal(exit_code(&r), 3);
  assert_string_equal(r.out, "3\n1\n2\n0\n");
  res_free(&r);
  RUN(&r, NULL, "--timeout", "0.3", "trap '' TERM; sleep 30; : {}", ":::", "1");
  assert_int_equal(exit_code(&r), 1);
  assert_true(r.elapsed < 10);
  res_free(&r);
  unsetenv("MPROC_CLI_NO_PIDFD");
}

static void slow_producer_does_not_stall_jobs(void **state) {
  (void)state;
  /* One line arrives and the pipe stays open: the job runs and its
   * timeout fires while mproc waits for more input, and Ctrl-C is
   * answered at once (mproc never blocks in read()). */
  res r;
  run_opts ro = {.in = "a\n", .keep_stdin_open = 1, .sig_at = {2.0, 0}, .sig = {SIGINT, 0}};
  RUN(&r, &ro, "--timeout", "0.5", "echo {}; sleep 30");
  assert_true(WIFSIGNALED(r.status));
  assert_int_equal(WTERMSIG(r.status), SIGINT);
  assert_true(r.elapsed < 10);
  assert_string_equal(r.out, "a\n");                 /* written when killed at 0.5 s */
  assert_true(r.first_out > 0.3 && r.first_out < 1.9); /* before the SIGINT */
  assert_non_null(strstr(r.err, "timed out"));
  res_free(&r);
}

/* --------------------------------------------------- progress, verbose */

static void progress_options_without_terminal(void **state) {
  (void)state;
  res r;
  RUN(&r, NULL, "--bar", "--eta", "--verbose", "true", ":::", "1", "2", "3");
  assert_int_equal(exit_code(&r), 0);
  /* Not a terminal: no bar or control characters, a final ETA line and
   * the summary. */
  assert_null(strchr(r.err, '\r'));
  assert_null(strchr(r.err, '\033'));
  assert_non_null(strstr(r.err, "ETA: 0s"));
  assert_non_null(strstr(r.err, "mproc: 3 jobs done, 0 failed"));
  res_free(&r);
  RUN(&r, NULL, "-t", "echo", ":::", "a b");
  assert_string_equal(r.err, "echo 'a b'\n");
  res_free(&r);
}

static void bar_and_eta_on_a_terminal(void **state) {
  (void)state;
  res r;
  run_opts ro = {.pty_err = 1};
  RUN(&r, &ro, "--bar", "-j2", "sleep 0.3; : {}", ":::", "1", "2", "3", "4", "5", "6");
  assert_int_equal(exit_code(&r), 0);
  assert_non_null(strstr(r.err, "\r["));
  assert_non_null(strstr(r.err, "100% 6/6 done"));
  assert_non_null(strstr(r.err, "ETA"));
  res_free(&r);
  RUN(&r, &ro, "--eta", "-j2", "sleep 0.3; : {}", ":::", "1", "2", "3");
  assert_int_equal(exit_code(&r), 0);
  assert_non_null(strstr(r.err, "\rETA: "));
  assert_non_null(strstr(r.err, "Left: 0"));
  res_free(&r);
}

/* ------------------------------------------------------- bounded memory */

static void keep_order_window_is_bounded(void **state) {
  (void)state;
  /* Job 1 stays running while the others finish: they wait for it in the
   * -k window, which holds at most 256 jobs, so starting stops there. */
  tmpdir_make();
  char cmd[3 * PATH_MAX];
  snprintf(cmd, sizeof cmd,
           "if [ {} = 1 ]; then i=0; while [ $(cat %s 2>/dev/null | wc -l) -lt 200 ] && "
           "[ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done; sleep 1; wc -l < %s > %s; "
           "else echo {} >> %s; echo out{}; fi",
           path_in("f"), path_in("f"), path_in("g"), path_in("f"));
  const char *args[700];
  int n = 0;
  args[n++] = "-k";
  args[n++] = "-j2";
  args[n++] = cmd;
  args[n++] = ":::";
  static char nums[600][8];
  for (int i = 0; i < 600; i++) {
    snprintf(nums[i], sizeof nums[i], "%d", i + 1);
    args[n++] = nums[i];
  }
  args[n] = NULL;
  res r;
  runv(&r, NULL, args);
  assert_int_equal(exit_code(&r), 0);
  char *g = slurp(path_in("g"));
  assert_non_null(g);
  int seen = atoi(g);
  if (seen < 200 || seen > 257) fail_msg("%d jobs ran while job 1 was running", seen);
  free(g);
  /* Output still complete and in order. */
  assert_int_equal(count_lines(r.out), 599);
  assert_memory_equal(r.out, "out2\nout3\n", 10);
  res_free(&r);
  tmpdir_remove();
}


static void large_output_spills_to_a_file(void **state) {
  (void)state;
  /* 20 MB from job 2 must wait for job 1 (-k): it goes to an unnamed
   * temporary file in $TMPDIR, not into mproc's memory. */
  tmpdir_make();
  setenv("TMPDIR", g_dir, 1);
  res r;
  RUN(&r, NULL, "-k", "-j2", "--tag",
      "if [ {} = 1 ]; then sleep 1; echo first; else head -c 20000000 /dev/zero | tr '\\0' x; echo; fi",
      ":::", "1", "2");
  unsetenv("TMPDIR");
  assert_int_equal(exit_code(&r), 0);
  assert_int_equal(r.outlen, 8 + 2 + 20000000 + 1);
  assert_memory_equal(r.out, "1\tfirst\n2\txxxx", 14);
  assert_int_equal(r.out[r.outlen - 1], '\n');
  assert_int_equal(r.out[r.outlen - 2], 'x');
  /* One tag only: the chunks of the spill file continue the same line. */
  assert_null(memchr(r.out + 12, '\t', r.outlen - 12));
  fprintf(stderr, "peak RSS of mproc: %ld KiB\n", r.maxrss_kb);
  if (!UNDER_SANITIZER) assert_true(r.maxrss_kb < 10 * 1024);
  res_free(&r);
  DIR *d = opendir(g_dir);
  struct dirent *e;
  int left = 0;
  while ((e = readdir(d)))
    if (e->d_name[0] != '.') left++;
  closedir(d);
  assert_int_equal(left, 0);
  tmpdir_remove();
}

static void million_lines_from_pipe_bounded_rss(void **state) {
  (void)state;
  if (UNDER_SANITIZER) skip();
  res r;
  run_opts ro = {.gen_lines = 1000000};
  RUN(&r, &ro, "-j2", "-k", "-n", "1000", "echo");
  assert_int_equal(exit_code(&r), 0);
  assert_int_equal(count_lines(r.out), 1000);
  /* Every value arrived, in order: the last line ends with 1000000. */
  assert_non_null(strstr(r.out, " 999999 1000000\n"));
  assert_memory_equal(r.out, "1 2 3 ", 6);
  fprintf(stderr, "peak RSS of mproc: %ld KiB\n", r.maxrss_kb);
  assert_true(r.maxrss_kb < 10 * 1024);
  res_free(&r);
}

static void queued_inputs_read_lazily(void **state) {
  (void)state;
  if (UNDER_SANITIZER) skip();
  /* A million inputs queued on a pipe, slow jobs, interrupted: mproc holds
   * only what the running jobs need. */
  res r;
  run_opts ro = {.gen_lines = 1000000, .sig_at = {1.0, 0}, .sig = {SIGINT, 0}};
  RUN(&r, &ro, "-j4", "sleep 0.3; : {}");
  assert_true(WIFSIGNALED(r.status));
  fprintf(stderr, "peak RSS of mproc: %ld KiB\n", r.maxrss_kb);
  assert_true(r.maxrss_kb < 10 * 1024);
  res_free(&r);
}

static const struct CMUnitTest tests[] = {
    MPROC_TEST(args_from_command_line),
    MPROC_TEST(lines_from_stdin),
    MPROC_TEST(null_and_custom_delimiters),
    MPROC_TEST(all_combinations_of_sources),
    MPROC_TEST(linked_sources),
    MPROC_TEST(file_sources),
    MPROC_TEST(stdin_file_source_with_list),
    MPROC_TEST(max_args_per_job),
    MPROC_TEST(commands_from_input),
    MPROC_TEST(replacement_strings),
    MPROC_TEST(slots_are_distinct_when_parallel),
    MPROC_TEST(job_counts),
    MPROC_TEST(environment_seq_and_slot),
    MPROC_TEST(quoting_in_shell_commands),
    MPROC_TEST(shell_syntax_runs_through_sh),
    MPROC_TEST(dry_run_prints_and_runs_nothing),
    MPROC_TEST(keep_order),
    MPROC_TEST(output_is_grouped),
    MPROC_TEST(line_buffer_streams_lines),
    MPROC_TEST(tag_prefixes_lines),
    MPROC_TEST(ungrouped_output),
    MPROC_TEST(jobs_get_dev_null_as_stdin),
    MPROC_TEST(exit_status_counts_failures),
    MPROC_TEST(argument_errors_exit_255_and_run_nothing),
    MPROC_TEST(missing_program_fails_the_job),
    MPROC_TEST(help_and_version),
    MPROC_TEST(empty_input_runs_nothing),
    MPROC_TEST(joblog_format),
    MPROC_TEST(resume_skips_logged_jobs),
    MPROC_TEST(resume_failed_reruns_failures),
    MPROC_TEST(timeout_kills_group_ignoring_term),
    MPROC_TEST(retries_rerun_failing_jobs),
    MPROC_TEST(halt_soon_on_first_failure),
    MPROC_TEST(halt_now_kills_running_jobs),
    MPROC_TEST(halt_on_success_and_percent),
    MPROC_TEST(first_sigint_waits_for_running_jobs),
    MPROC_TEST(second_sigint_kills_jobs),
    MPROC_TEST(killed_mproc_leaves_no_orphan),
    MPROC_TEST(works_without_pidfds),
    MPROC_TEST(slow_producer_does_not_stall_jobs),
    MPROC_TEST(progress_options_without_terminal),
    MPROC_TEST(bar_and_eta_on_a_terminal),
    MPROC_TEST(keep_order_window_is_bounded),
    MPROC_TEST(large_output_spills_to_a_file),
    MPROC_TEST(million_lines_from_pipe_bounded_rss),
    MPROC_TEST(queued_inputs_read_lazily),
};

MPROC_TEST_MAIN(tests)
