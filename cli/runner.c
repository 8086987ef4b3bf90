/*
 * runner.c - the scheduler (runner.h).
 *
 * Design
 *  - One thread, one epoll set: per running job its pidfd and the read ends
 *    of its stdout/stderr pipes; plus the signalfd. Waits block in
 *    epoll_wait with a timeout set by the nearest deadline (job timeouts,
 *    kill-sequence steps, progress redraws): no polling loops.
 *  - Lazy input: the next input is read only when a slot is free, so the
 *    memory used is bounded by the number of running jobs, not the input.
 *    With -k, finished jobs wait in an ordered list for the oldest to end;
 *    that window is capped (ORDER_WINDOW), and no new job starts while it
 *    is full, so memory stays bounded even behind one slow job.
 *  - A job is complete when its process was reaped (waitid as soon as its
 *    pidfd is readable: no zombie lingers) and both pipes reached EOF (a
 *    grandchild may hold them a little longer).
 *  - Killing always targets the job's process group (kill(-pgid)) through
 *    the --termseq steps, so a job that forked children, or ignores SIGTERM,
 *    still ends.
 *  - Invariants: running == number of non-NULL slots; every live job is in
 *    exactly one slot; with -k every started job is in the order list until
 *    its output is written.
 */
#include "runner.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "input.h"
#include "joblog.h"
#include "output.h"
#include "progress.h"
#include "signals.h"
#include "spawn.h"
#include "template.h"
#include "util.h"

extern char **environ;

#define EV_SIGNAL UINT64_MAX
#define EV_INPUT (UINT64_MAX - 1)
#define ORDER_WINDOW_MIN 256

typedef struct job {
  unsigned long long seq;  /* {#}, 1-based input order */
  int slot;                /* index into slots; {%} is slot + 1 */
  int attempts;            /* runs so far (--retries) */
  char **args;             /* the job's input values (one allocation) */
  size_t nargs;
  pid_t pid;               /* also the process group id */
  int pidfd;               /* watches the process; -1 once reaped or without pidfds */
  int alive;               /* started and not reaped yet */
  int fd[2];               /* read ends of stdout/stderr pipes, -1 = closed */
  cli_jobout out;          /* captured output and tag */
  char *tag;               /* --tag prefix (owned) */
  int exitval;             /* exit code, or -1 when mproc killed it */
  int sig;                 /* signal that ended it, 0 = none */
  int killed;              /* mproc killed it: 1 timeout, 2 halt now/Ctrl-C */
  int kill_step;           /* next --termseq step; -1 = not being killed */
  double deadline;         /* timeout or next kill step (0 = none) */
  double start, start_wall;
  unsigned long long recv; /* stdout bytes (joblog Receive) */
  int finished;            /* done; waiting for its turn to write (-k) */
  double runtime;          /* seconds, set when it ended */
  struct job *next;        /* order list (-k) */
} job;

typedef struct runner {
  const cli_opts *o;
  cli_input *in;
  cli_tmpl *tmpl;
  cli_cmd cmd;             /* reused for every spawn */
  cli_output out;
  cli_joblog log;
  cli_progress prog;
  int maxjobs;
  job **slots;             /* running (or finishing) jobs by slot */
  int *freeslots;          /* stack of free slot indexes */
  int nfree;
  int running;             /* jobs holding a slot */
  job *head, *tail;        /* -k order list */
  size_t waiting;          /* finished jobs in the order list */
  size_t window;           /* cap on waiting */
  int epfd, sigfd, devnull;
  sigset_t origmask;
  char **envp;             /* environ + PARALLEL_SEQ + PARALLEL_JOBSLOT */
  size_t envn;
  char envseq[48], envslot[48];
  unsigned long long next_seq, ndone, nfailed, nsucceeded;
  long long total;
  int input_done, stop_starting, nsignals, lastsig, fatal;
  int input_wait;          /* waiting for the input fd to become readable */
  int input_fd_added;      /* the input fd is in the epoll set */
  int halted, halt_exit;   /* halt_exit >= 0: exit status decided by --halt */
  int ntimers;             /* jobs with a deadline */
  double sigtime;          /* when the last signal arrived */
  char rbuf[65536];
} runner;

static void kill_job(runner *r, job *j);

static void fatal_err(runner *r) {
  r->fatal = 1;
  r->stop_starting = 1;
}

static void build_env(runner *r) {
  size_t n = 0;
  while (environ[n]) n++;
  r->envp = cli_xmalloc((n + 3) * sizeof *r->envp);
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (strncmp(environ[i], "PARALLEL_SEQ=", 13) && strncmp(environ[i], "PARALLEL_JOBSLOT=", 17))
      r->envp[k++] = environ[i];
  r->envn = k;
  r->envp[k] = r->envseq;
  r->envp[k + 1] = r->envslot;
  r->envp[k + 2] = NULL;
}

/* Max jobs the fd limit allows (3 fds each), after raising the soft limit. */
static int fd_budget(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) < 0) return 64;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
  }
  rlim_t n = rl.rlim_cur;
  if (n == RLIM_INFINITY || n > 1u << 20) n = 1u << 20;
  long b = ((long)n - 64) / 3;
  return b < 1 ? 1 : (int)b;
}

static void job_free(job *j) {
  if (!j) return;
  cli_output_discard(&j->out);
  free(j->args);
  free(j->tag);
  free(j);
}

static job *job_new(runner *r, char **args, size_t nargs) {
  job *j = cli_xmalloc(sizeof *j);
  memset(j, 0, sizeof *j);
  size_t bytes = (nargs + 1) * sizeof(char *);
  for (size_t i = 0; i < nargs; i++) bytes += strlen(args[i]) + 1;
  j->args = cli_xmalloc(bytes);
  char *p = (char *)(j->args + nargs + 1);
  for (size_t i = 0; i < nargs; i++) {
    size_t l = strlen(args[i]) + 1;
    memcpy(p, args[i], l);
    j->args[i] = p;
    p += l;
  }
  j->args[nargs] = NULL;
  j->nargs = nargs;
  j->pidfd = j->fd[0] = j->fd[1] = -1;
  j->kill_step = -1;
  cli_jobout_init(&j->out, NULL);
  if (r->o->tag) {
    cli_buf b = {0};
    for (size_t i = 0; i < nargs; i++) {
      if (i) cli_buf_addc(&b, ' ');
      cli_buf_adds(&b, args[i]);
    }
    j->tag = b.s ? b.s : cli_xstrdup("");
    j->out.tag = j->tag;
  }
  return j;
}

static void set_deadline(runner *r, job *j, double d) {
  if (j->deadline == 0 && d != 0) r->ntimers++;
  if (j->deadline != 0 && d == 0) r->ntimers--;
  j->deadline = d;
}

static int ep_add(runner *r, int fd, uint64_t tag) {
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = tag};
  return epoll_ctl(r->epfd, EPOLL_CTL_ADD, fd, &ev);
}

/* Start (or restart) job j in its slot. 0, or -errno when no process could
 * be created (nothing is left open then). */
static int job_spawn(runner *r, job *j) {
  const cli_opts *o = r->o;
  cli_tmpl_expand(r->tmpl, j->args, j->nargs, j->seq, j->slot + 1, &r->cmd);
  if (o->print_cmd) {
    cli_buf b = {0};
    cli_cmd_display(&r->cmd, &b);
    cli_buf_addc(&b, '\n');
    cli_write_all(2, b.s, b.len);
    cli_buf_free(&b);
  }
  int p_out[2] = {-1, -1}, p_err[2] = {-1, -1};
  if (o->group_mode != CLI_OUT_UNGROUP) {
    if (pipe2(p_out, O_CLOEXEC) < 0) return -errno;
    if (pipe2(p_err, O_CLOEXEC) < 0) {
      int e = -errno;
      close(p_out[0]);
      close(p_out[1]);
      return e;
    }
    fcntl(p_out[0], F_SETFL, O_NONBLOCK);
    fcntl(p_err[0], F_SETFL, O_NONBLOCK);
  }
  snprintf(r->envseq, sizeof r->envseq, "PARALLEL_SEQ=%llu", j->seq);
  snprintf(r->envslot, sizeof r->envslot, "PARALLEL_JOBSLOT=%d", j->slot + 1);
  cli_spawn_req req = {.path = r->cmd.path,
                       .argv = r->cmd.argv,
                       .envp = r->envp,
                       .in_fd = r->devnull,
                       .out_fd = p_out[1],
                       .err_fd = p_err[1],
                       .mask = &r->origmask};
  int exec_err = 0;
  j->start = cli_now();
  j->start_wall = cli_wallnow();
  int rc = cli_spawn(&req, &j->pid, &j->pidfd, &exec_err);
  if (p_out[1] >= 0) close(p_out[1]);
  if (p_err[1] >= 0) close(p_err[1]);
  if (rc < 0) {
    if (p_out[0] >= 0) close(p_out[0]);
    if (p_err[0] >= 0) close(p_err[0]);
    return rc;
  }
  j->attempts++;
  j->fd[0] = p_out[0];
  j->fd[1] = p_err[0];
  (void)exec_err; /* the child already explained on the job's stderr */
  uint64_t base = (uint64_t)j->slot << 2;
  j->alive = 1;
  if ((j->pidfd >= 0 && ep_add(r, j->pidfd, base | 2) < 0) ||
      (j->fd[0] >= 0 && ep_add(r, j->fd[0], base | 0) < 0) ||
      (j->fd[1] >= 0 && ep_add(r, j->fd[1], base | 1) < 0)) {
    cli_err("epoll: %s", strerror(errno));
    fatal_err(r);
  }
  j->kill_step = -1;
  j->killed = 0;
  set_deadline(r, j, o->timeout > 0 ? j->start + o->timeout : 0);
  return 0;
}

/* May this job write output now? (-k: only the oldest.) */
static int may_write(runner *r, job *j) { return !r->o->keep_order || r->head == j; }

/* Write the job's output, then its joblog line (GNU parallel's order),
 * and free it. */
static void job_retire(runner *r, job *j) {
  cli_output_finish(&r->out, &j->out);
  if (r->log.fd >= 0) {
    cli_tmpl_expand(r->tmpl, j->args, j->nargs, j->seq, j->slot + 1, &r->cmd);
    cli_buf b = {0};
    cli_cmd_display(&r->cmd, &b);
    cli_joblog_write(&r->log, j->seq, j->start_wall, j->runtime, j->recv, j->exitval, j->sig,
                     b.s ? b.s : "", b.len);
    cli_buf_free(&b);
  }
  job_free(j);
}

static void flush_order(runner *r) {
  while (r->head && r->head->finished) {
    job *j = r->head;
    r->head = j->next;
    if (!r->head) r->tail = NULL;
    r->waiting--;
    job_retire(r, j);
  }
  /* The new oldest job may write what it has buffered (line mode). */
  if (r->head && r->out.mode == CLI_OUT_LINE) {
    cli_output_more(&r->out, &r->head->out, 0, 1);
    cli_output_more(&r->out, &r->head->out, 1, 1);
  }
}

static void release_slot(runner *r, job *j) {
  set_deadline(r, j, 0);
  r->slots[j->slot] = NULL;
  r->freeslots[r->nfree++] = j->slot;
  r->running--;
}

static int job_exit_status(const job *j) {
  if (j->sig) return 128 + j->sig;
  return j->exitval < 0 ? 255 : j->exitval;
}

static void check_halt(runner *r, job *j) {
  const cli_opts *o = r->o;
  if (o->halt_when == CLI_HALT_NEVER || r->halted || j->killed == 2) return;
  unsigned long long cnt = o->halt_on_fail == 1 ? r->nfailed
                           : o->halt_on_fail == 0 ? r->nsucceeded
                                                  : r->ndone;
  int failed = j->sig != 0 || j->exitval != 0;
  if (o->halt_on_fail == 1 && !failed) return;
  if (o->halt_on_fail == 0 && failed) return;
  int hit;
  if (o->halt_percent) {
    /* Of the jobs done so far, once at least 3 are (GNU parallel's rule). */
    hit = r->ndone >= 3 && 100.0 * (double)cnt / (double)r->ndone >= o->halt_value;
  } else {
    hit = (double)cnt >= o->halt_value;
  }
  if (!hit) return;
  r->halted = 1;
  r->stop_starting = 1;
  if (o->halt_on_fail == 1 && !o->halt_percent && o->halt_value == 1)
    r->halt_exit = job_exit_status(j);
  else if (o->halt_on_fail != 1)
    r->halt_exit = 0;
  if (o->halt_when == CLI_HALT_NOW) {
    for (int s = 0; s < r->maxjobs; s++)
      if (r->slots[s] && r->slots[s]->alive) kill_job(r, r->slots[s]);
  } else if (r->running > 0) {
    cli_err("halting: starting no more jobs; waiting for %d running job%s to finish", r->running,
            r->running == 1 ? "" : "s");
  }
}

/* The job's process is reaped and its pipes are closed. */
static void job_complete(runner *r, job *j) {
  const cli_opts *o = r->o;
  int failed = j->sig != 0 || j->exitval != 0;
  if (failed && j->killed != 2 && j->attempts < o->retries && !r->stop_starting) {
    cli_output_discard(&j->out);
    j->recv = 0;
    int rc = job_spawn(r, j);
    if (rc == 0) return;
    cli_err("cannot start a job: %s", strerror(-rc));
    fatal_err(r);
  }
  j->runtime = cli_now() - j->start;
  r->ndone++;
  if (!failed)
    r->nsucceeded++;
  else if (j->killed != 2)
    r->nfailed++; /* timeouts are failures; halt now / Ctrl-C kills are not */
  release_slot(r, j);
  check_halt(r, j);
  if (o->keep_order) {
    j->finished = 1;
    r->waiting++;
    flush_order(r);
  } else {
    job_retire(r, j);
  }
  cli_progress_update(&r->prog, r->ndone, r->total, r->running, 0);
}

static void maybe_complete(runner *r, job *j) {
  if (!j->alive && j->fd[0] < 0 && j->fd[1] < 0) job_complete(r, j);
}

/* Read what is available on one pipe; close it at EOF. */
static void drain(runner *r, job *j, int s) {
  if (j->fd[s] < 0) return;
  for (;;) {
    cli_buf *b = &j->out.buf[s];
    ssize_t n;
    if (b->cap - b->len > 4096) {
      n = read(j->fd[s], b->s + b->len, b->cap - b->len - 1);
      if (n > 0) {
        b->len += (size_t)n;
        b->s[b->len] = 0;
      }
    } else {
      n = read(j->fd[s], r->rbuf, sizeof r->rbuf);
      if (n > 0) cli_buf_add(b, r->rbuf, (size_t)n);
    }
    if (n > 0) {
      if (s == 0) j->recv += (unsigned long long)n;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) break;
    close(j->fd[s]); /* EOF or error: also leaves the epoll set */
    j->fd[s] = -1;
    break;
  }
  cli_output_more(&r->out, &j->out, s, may_write(r, j));
}

/* Collect the job's exit status (from si when the SIGCHLD fallback already
 * reaped it) and read what its pipes still hold. */
static void reap(runner *r, job *j, const siginfo_t *done) {
  siginfo_t si;
  memset(&si, 0, sizeof si);
  if (done)
    si = *done;
  else
    while (waitid(P_PID, (id_t)j->pid, &si, WEXITED) < 0 && errno == EINTR) {
    }
  if (j->pidfd >= 0) close(j->pidfd);
  j->pidfd = -1;
  j->alive = 0;
  if (si.si_code == CLD_EXITED) {
    j->exitval = si.si_status;
    j->sig = 0;
  } else {
    j->sig = si.si_status;
    j->exitval = 0;
  }
  if (j->killed) j->exitval = -1;
  /* Pipes usually hit EOF together with the exit: read them now. */
  drain(r, j, 0);
  drain(r, j, 1);
  /* If a pipe is still open, a background process of the job holds it:
   * the job completes at its EOF (or when --timeout kills the group). */
}

/* Send the next --termseq signal to the job's process group. */
static void kill_step(runner *r, job *j) {
  const cli_opts *o = r->o;
  if (j->kill_step < 0) j->kill_step = 0;
  if (j->kill_step >= o->ntermseq) {
    set_deadline(r, j, 0);
    return;
  }
  int sig = o->termseq_sig[j->kill_step];
  kill(-j->pid, sig);
  if (j->alive) kill(j->pid, sig); /* in case it left its group */
  double wait = o->termseq_ms[j->kill_step] / 1000.0;
  j->kill_step++;
  /* After the last step keep sending KILL now and then: a group member
   * may still hold the pipes. */
  if (j->kill_step >= o->ntermseq) j->kill_step = o->ntermseq - 1;
  set_deadline(r, j, cli_now() + (wait > 0 ? wait : 0.025));
}

static void kill_job(runner *r, job *j) {
  if (j->kill_step >= 0) return;
  j->killed = 2;
  kill_step(r, j);
}

static void on_timers(runner *r) {
  if (r->ntimers == 0) return;
  double now = cli_now();
  for (int s = 0; s < r->maxjobs; s++) {
    job *j = r->slots[s];
    if (!j || j->deadline == 0 || j->deadline > now) continue;
    if (j->kill_step < 0) {
      j->killed = 1;
      if (r->o->timeout > 0) {
        cli_buf b = {0};
        cli_tmpl_expand(r->tmpl, j->args, j->nargs, j->seq, j->slot + 1, &r->cmd);
        cli_cmd_display(&r->cmd, &b);
        cli_err("job %llu timed out after %g s, killing it: %s", j->seq, r->o->timeout,
                b.s ? b.s : "");
        cli_buf_free(&b);
      }
    }
    kill_step(r, j);
  }
}

static double next_timeout(runner *r) {
  double best = -1;
  double now = cli_now();
  if (r->ntimers) {
    for (int s = 0; s < r->maxjobs; s++) {
      job *j = r->slots[s];
      if (!j || j->deadline == 0) continue;
      double d = j->deadline - now;
      if (d < 0) d = 0;
      if (best < 0 || d < best) best = d;
    }
  }
  double p = cli_progress_next(&r->prog);
  if (p >= 0 && r->running > 0 && (best < 0 || p < best)) best = p;
  return best;
}

/* Without pidfds (kernel < 5.3, valgrind): reap whatever ended. */
static void on_sigchld(runner *r) {
  for (;;) {
    siginfo_t si;
    memset(&si, 0, sizeof si);
    if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (si.si_pid == 0) return;
    for (int s = 0; s < r->maxjobs; s++) {
      job *j = r->slots[s];
      if (j && j->alive && j->pid == si.si_pid) {
        reap(r, j, &si);
        maybe_complete(r, j);
        break;
      }
    }
  }
}

static void on_signal(runner *r) {
  int sig;
  while ((sig = cli_signals_read(r->sigfd)) > 0) {
    if (sig == SIGCHLD) {
      on_sigchld(r);
      continue;
    }
    /* One keypress can arrive twice (to mproc and to its group, as
     * timeout(1) sends it): a repeat within 50 ms is the same request. */
    double now = cli_now();
    if (r->nsignals == 1 && sig == r->lastsig && now - r->sigtime < 0.05) continue;
    r->sigtime = now;
    r->nsignals++;
    r->lastsig = sig;
    if (r->nsignals == 1) {
      r->stop_starting = 1;
      if (r->running > 0)
        cli_err("%s: starting no more jobs; waiting for %d running job%s (again to kill them)",
                sig == SIGINT ? "interrupted" : "terminated", r->running,
                r->running == 1 ? "" : "s");
    } else {
      for (int s = 0; s < r->maxjobs; s++)
        if (r->slots[s]) kill_job(r, r->slots[s]);
    }
  }
}

/* Pull the next input and start it. 1 = started (or skipped/printed),
 * 0 = no more input, -1 = could not spawn (retry later). */
static job *g_pending; /* a job whose spawn failed for lack of resources */

static int start_next(runner *r) {
  const cli_opts *o = r->o;
  job *j = g_pending;
  g_pending = NULL;
  if (!j) {
    char **args;
    size_t nargs;
    int rc = cli_input_next(r->in, &args, &nargs);
    if (rc < 0) {
      fatal_err(r);
      r->input_done = 1;
      return 0;
    }
    if (rc == 0) {
      r->input_done = 1;
      if (r->total < 0) r->total = (long long)r->next_seq;
      return 0;
    }
    unsigned long long seq = ++r->next_seq;
    if (cli_joblog_skip(&r->log, seq)) return 1;
    if (o->dry_run) {
      cli_tmpl_expand(r->tmpl, args, nargs, seq, 1, &r->cmd);
      cli_buf b = {0};
      cli_cmd_display(&r->cmd, &b);
      cli_buf_addc(&b, '\n');
      if (cli_write_all(1, b.s, b.len) < 0) r->out.broken = 1;
      cli_buf_free(&b);
      return 1;
    }
    j = job_new(r, args, nargs);
    j->seq = seq;
    j->slot = r->freeslots[--r->nfree];
    r->slots[j->slot] = j;
    r->running++;
    if (o->keep_order) {
      if (r->tail)
        r->tail->next = j;
      else
        r->head = j;
      r->tail = j;
    }
  }
  int rc = job_spawn(r, j);
  if (rc < 0) {
    if ((rc == -EAGAIN || rc == -ENOMEM || rc == -EMFILE || rc == -ENFILE) && r->running > 1) {
      g_pending = j; /* try again when a running job ends */
      return -1;
    }
    cli_err("cannot start a job: %s", strerror(-rc));
    j->exitval = -1;
    j->killed = 2;
    j->pidfd = -1;
    j->alive = 0;
    fatal_err(r);
    job_complete(r, j);
    return 0;
  }
  return 1;
}

/* Can the next input be read without blocking? If not, watch its fd
 * (one-shot, re-armed each time: level-triggered would spin while all
 * slots are busy) and come back when it is readable. */
static int input_ready(runner *r) {
  int fd = -1;
  int rc = cli_input_ready(r->in, &fd);
  if (rc > 0) return 1;
  if (rc < 0) {
    fatal_err(r);
    r->input_done = 1;
    return 0;
  }
  struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT, .data.u64 = EV_INPUT};
  int op = r->input_fd_added ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
  if (epoll_ctl(r->epfd, op, fd, &ev) < 0) return 1; /* cannot wait: read blocking */
  r->input_fd_added = 1;
  r->input_wait = 1;
  return 0;
}

static void handle_event(runner *r, uint64_t tag) {
  if (tag == EV_SIGNAL) {
    on_signal(r);
    return;
  }
  if (tag == EV_INPUT) {
    r->input_wait = 0;
    return;
  }
  int slot = (int)(tag >> 2), kind = (int)(tag & 3);
  job *j = r->slots[slot];
  if (!j) return;
  if (kind == 2) {
    if (j->alive) reap(r, j, NULL);
  } else {
    drain(r, j, kind);
  }
  maybe_complete(r, j);
}

int cli_run(const cli_opts *o) {
  runner R;
  runner *r = &R;
  memset(r, 0, sizeof *r);
  r->o = o;
  r->epfd = r->sigfd = r->devnull = -1;
  r->halt_exit = -1;
  r->out.mode = o->group_mode;

  int budget = fd_budget();
  r->maxjobs = o->jobs;
  if (r->maxjobs <= 0 || r->maxjobs > budget) {
    if (o->jobs > budget) cli_err("-j %d is more than the open-file limit allows; using %d", o->jobs, budget);
    r->maxjobs = budget < 32768 ? budget : 32768;
  }
  if (cli_input_open(&r->in, o) < 0) {
    cli_input_close(r->in);
    return CLI_EXIT_ERROR;
  }
  r->total = cli_input_total(r->in);
  if (o->jobs <= 0 && r->total >= 0 && r->total < r->maxjobs)
    r->maxjobs = r->total > 0 ? (int)r->total : 1;
  if (cli_joblog_open(&r->log, o->dry_run ? NULL : o->joblog, o->resume, o->resume_failed) < 0) {
    cli_input_close(r->in);
    return CLI_EXIT_ERROR;
  }
  r->tmpl = cli_tmpl_compile(o->cmd, o->ncmd);
  r->window = (size_t)r->maxjobs * 8;
  if (r->window < ORDER_WINDOW_MIN) r->window = ORDER_WINDOW_MIN;
  r->slots = cli_xmalloc((size_t)r->maxjobs * sizeof *r->slots);
  memset(r->slots, 0, (size_t)r->maxjobs * sizeof *r->slots);
  r->freeslots = cli_xmalloc((size_t)r->maxjobs * sizeof *r->freeslots);
  for (int s = 0; s < r->maxjobs; s++) r->freeslots[s] = r->maxjobs - 1 - s;
  r->nfree = r->maxjobs;
  build_env(r);
  cli_progress_init(&r->prog, o->bar, o->eta, r->maxjobs);

  r->sigfd = cli_signals_init(&r->origmask, !cli_spawn_have_pidfd());
  r->epfd = epoll_create1(EPOLL_CLOEXEC);
  /* Jobs read /dev/null, as in GNU parallel: they must not eat mproc's
   * input, and in their own process groups a read from the terminal would
   * stop them (SIGTTIN). */
  r->devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  struct epoll_event sev = {.events = EPOLLIN, .data.u64 = EV_SIGNAL};
  if (r->sigfd < 0 || r->epfd < 0 || epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->sigfd, &sev) < 0) {
    cli_err("cannot set up the event loop: %s", strerror(errno));
    r->fatal = 1;
    r->stop_starting = 1;
  }

  struct epoll_event evs[64];
  for (;;) {
    while (!r->stop_starting && !r->input_done && r->running < r->maxjobs &&
           r->waiting < r->window && !r->out.broken && !r->input_wait) {
      if (!g_pending && !input_ready(r)) break;
      if (start_next(r) <= 0) break;
    }
    if (r->out.broken && !r->stop_starting) {
      r->stop_starting = 1;
      r->fatal = 1;
      for (int s = 0; s < r->maxjobs; s++)
        if (r->slots[s]) kill_job(r, r->slots[s]);
    }
    if (r->running == 0 && (r->input_done || r->stop_starting) && !g_pending) break;
    if (r->running == 0 && g_pending) {
      /* Cannot start even one job: give up. */
      job *j = g_pending;
      g_pending = NULL;
      int rc = job_spawn(r, j);
      if (rc < 0) {
        cli_err("cannot start a job: %s", strerror(-rc));
        r->fatal = 1;
        release_slot(r, j);
        job_free(j);
        break;
      }
    }
    double to = next_timeout(r);
    int ms = to < 0 ? -1 : (int)(to * 1000.0 + 0.999);
    int n = epoll_wait(r->epfd, evs, (int)(sizeof evs / sizeof evs[0]), ms);
    if (n < 0) {
      if (errno == EINTR) continue;
      cli_err("epoll_wait: %s", strerror(errno));
      r->fatal = 1;
      break;
    }
    for (int i = 0; i < n; i++) handle_event(r, evs[i].data.u64);
    on_timers(r);
    cli_progress_update(&r->prog, r->ndone, r->total, r->running, 0);
  }
  flush_order(r);
  cli_progress_end(&r->prog, r->ndone, r->total, r->nfailed, o->verbose);

  int status;
  if (r->fatal)
    status = CLI_EXIT_ERROR;
  else if (r->halted && r->halt_exit >= 0)
    status = r->halt_exit;
  else
    status = r->nfailed > 101 ? 101 : (int)r->nfailed;

  /* Release everything (no job is running: the loop ends only then). */
  for (int s = 0; s < r->maxjobs; s++) job_free(r->slots[s]);
  while (r->head) {
    job *j = r->head;
    r->head = j->next;
    job_free(j);
  }
  cli_joblog_close(&r->log);
  cli_input_close(r->in);
  cli_tmpl_free(r->tmpl);
  cli_cmd_free(&r->cmd);
  cli_buf_free(&r->out.tmp);
  free(r->slots);
  free(r->freeslots);
  free(r->envp);
  if (r->epfd >= 0) close(r->epfd);
  if (r->sigfd >= 0) close(r->sigfd);
  if (r->devnull >= 0) close(r->devnull);
  if (r->nsignals > 0) {
    fflush(stdout);
    cli_signals_reraise(r->lastsig, &r->origmask);
    return 128 + r->lastsig;
  }
  return status;
}
