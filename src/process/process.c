/*
 * process.c - mproc_process_t (Python's multiprocessing.Process), the
 * registry of this process's children, reaping, exit-time handling and the
 * calling process's own identity.
 *
 * DESIGN
 *  - A handle is process-local (malloc), owned by the process that created
 *    it: calls from any other process get MPROC_ENOTOWNER.
 *  - Every handle of this process is on one list (g_head..g_tail) from
 *    create until destroy; a child closes the fds of all of them first
 *    thing (mproc__child_reset), so no sibling's pidfd leaks into it.
 *  - Lifecycle uses pidfds, never SIGCHLD: a child is "reaped" with
 *    waitid(P_PIDFD, WNOHANG) whenever start(), is_alive(), join(),
 *    exitcode() or active_children() runs, so zombies never pile up.
 *    Blocking waits poll() the pidfd without holding any lock.
 *  - fork() runs on a long-lived thread (launcher.c) with all signals
 *    blocked and g_reg_mu held, so the child's copy of the list is
 *    consistent and no signal handler runs in the child before it reset
 *    its state. PR_SET_PDEATHSIG plus a getppid() check make the child die
 *    with this process.
 *  - A handle destroyed while its child runs is "detached": it stays on the
 *    list, is reaped like any other and freed when the child has ended.
 *  - Exit (atexit, and the end of every child): daemon children get SIGTERM,
 *    then SIGKILL after MPROC__DAEMON_GRACE; the others are joined, as in
 *    Python. Handles being waited on at exit are pinned (hold > 0).
 *
 * Invariants: state changes and list changes happen under g_reg_mu; a
 * RUNNING handle has pidfd >= 0; an ENDED one has its exitcode set.
 * Lock order: g_reg_mu -> launcher -> forkserver.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "heap/heap.h"
#include "platform/platform.h"
#include "process/process_int.h"

/* ---- cached pid and tid ---- */

/* mproc__my_pid()/gettid() are real system calls; every call on a handle checks
 * its owner. The caches are cleared in a child by a pthread_atfork handler
 * (every fork through glibc, ours included) and by mproc__child_reset. */
static _Atomic pid_t g_mypid;
static _Thread_local pid_t tl_tid;
static pthread_once_t g_atfork_once = PTHREAD_ONCE_INIT;

/* In the child of any fork (ours or the application's own fork()): the
 * launcher thread and the forkserver belong to the parent. The handle list
 * is left alone (another thread may have been changing it); its entries
 * carry the parent's pid as owner and are skipped here. */
static void atfork_child(void) {
  atomic_store(&g_mypid, 0);
  tl_tid = 0;
  mproc__launcher_reset_child();
  mproc__forkserver_reset_child();
}
static void atfork_init(void) { pthread_atfork(NULL, NULL, atfork_child); }

pid_t mproc__my_pid(void) {
  pid_t p = atomic_load_explicit(&g_mypid, memory_order_relaxed);
  if (MPROC_LIKELY(p)) return p;
  pthread_once(&g_atfork_once, atfork_init);
  p = getpid();
  atomic_store(&g_mypid, p);
  return p;
}

int mproc__is_main_thread(void) {
  if (!tl_tid) tl_tid = mproc__gettid();
  return tl_tid == mproc__my_pid();
}

/* ---- pidfd support ---- */

static _Atomic int g_pidfd_mode; /* 0 unknown, 1 pidfds, 2 death pipes */
static int g_death_w = -1;       /* our own death pipe's write end */

int mproc__have_pidfd(void) {
  int m = atomic_load_explicit(&g_pidfd_mode, memory_order_relaxed);
  if (MPROC_LIKELY(m)) return m == 1;
  /* Probe with the real call: an injected failure is not "unsupported". */
  int fd = mproc__sys_real.pidfd_open(getpid(), 0);
  if (fd >= 0) {
    close(fd);
    m = 1;
  } else {
    m = errno == ENOSYS ? 2 : 1;
  }
  atomic_store(&g_pidfd_mode, m);
  return m == 1;
}

void mproc__force_no_pidfd(int on) { atomic_store(&g_pidfd_mode, on ? 2 : 0); }

void mproc__set_death_fd(int fd) {
  /* One inherited from our parent (a forkserver's spare has the server's)
   * must go, or our parent's watchers would wait for us too. */
  if (g_death_w >= 0 && g_death_w != fd) close(g_death_w);
  g_death_w = fd;
}

/* ---- this process's identity ---- */

static struct {
  char name[MPROC__NAME_MAX + 1];      /* "MainProcess" in the top process */
  char identity[MPROC__IDENT_MAX + 1]; /* "" in the top process */
  int daemon;                          /* may not start children */
  pid_t parent_pid;                    /* 0 when not started by mproc */
  _Atomic unsigned counter;            /* children created so far */
} g_self = {.name = "MainProcess"};

/* Bounded copy (strlcpy), by hand: snprintf or strnlen would make every
 * child fault in (and lazily bind) code the parent never ran. */
static void copy_str(char *dst, size_t cap, const char *src) {
  size_t n = 0;
  for (; src && n + 1 < cap && src[n]; n++) dst[n] = src[n];
  dst[n] = 0;
}

void mproc__self_set(const char *name, const char *identity, int daemon,
                     pid_t parent_pid) {
  copy_str(g_self.name, sizeof g_self.name, name);
  copy_str(g_self.identity, sizeof g_self.identity, identity);
  g_self.daemon = daemon;
  g_self.parent_pid = parent_pid;
  atomic_store(&g_self.counter, 0);
}

const char *mproc_current_name(void) { return g_self.name; }
pid_t mproc_current_pid(void) { return getpid(); }
pid_t mproc_parent_pid(void) { return g_self.parent_pid; }

/* ---- the registry ---- */

static pthread_mutex_t g_reg_mu = PTHREAD_MUTEX_INITIALIZER;
static mproc_process_t *g_head, *g_tail; /* every live handle, create order */
static _Atomic int g_nrunning;           /* RUNNING handles: exit fast path */
static int g_atexit_registered;          /* per image; inherited by fork */

static void list_add(mproc_process_t *p) {
  p->next = NULL;
  p->prev = g_tail;
  if (g_tail) g_tail->next = p;
  else g_head = p;
  g_tail = p;
}

static void list_del(mproc_process_t *p) {
  if (p->prev) p->prev->next = p->next;
  else g_head = p->next;
  if (p->next) p->next->prev = p->prev;
  else g_tail = p->prev;
  p->prev = p->next = NULL;
}

static void close_fd(int *fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

/* Free a handle (off the list). Only the owner closes the fds: in any other
 * process the numbers may name unrelated files. */
static void handle_free(mproc_process_t *p) {
  if (p->owner == mproc__my_pid()) {
    close_fd(&p->pidfd);
    close_fd(&p->status_fd);
  }
  free(p->arg_copy);
  p->magic = MPROC__DEAD_MAGIC;
  free(p);
}

void mproc__registry_reset_child(void) {
  /* Single-threaded here (right after fork): the parent held g_reg_mu
   * across the fork, so the list is consistent; the mutex copy is re-made
   * because the thread that held it does not exist in the child. */
  for (mproc_process_t *p = g_head; p; p = p->next) {
    close_fd(&p->pidfd);
    close_fd(&p->status_fd);
  }
  g_head = g_tail = NULL;
  atomic_store(&g_nrunning, 0);
  g_reg_mu = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
}

void mproc__child_reset(void) {
  atfork_child();
  if (g_death_w >= 0) close(g_death_w); /* our parent's, not ours */
  g_death_w = -1;
  mproc__registry_reset_child();
  mproc__targets_reset_child();
  mproc__authkey_reset_child(NULL, 0);
  mproc__launcher_reset_child();
  mproc__forkserver_reset_child();
}

/* Decode a waitid() result into Python's exitcode. */
static int decode_status(const siginfo_t *si) {
  return si->si_code == CLD_EXITED ? si->si_status : -si->si_status;
}

/* Collect p's exit status if it ended (never blocks, except for a brief
 * wait on the forkserver's report once the child is known to be gone).
 * Caller holds g_reg_mu. Returns 1 when p is (now) ENDED. */
static int reap_locked(mproc_process_t *p) {
  if (p->state != PS_RUNNING) return p->state == PS_ENDED;
  int code;
  if (p->method == MPROC_START_FORKSERVER) {
    if (!mproc__forkserver_poll(p, 5.0, &code)) return 0;
  } else {
    siginfo_t si;
    int r;
    do {
      memset(&si, 0, sizeof si);
      r = p->fd_is_pidfd ? waitid(P_PIDFD, (id_t)p->pidfd, &si, WEXITED | WNOHANG)
                         : waitid(P_PID, (id_t)p->pid, &si, WEXITED | WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
      /* ECHILD: someone else reaped it (a waitpid(-1) in the application,
       * or SIGCHLD set to SIG_IGN): the status is lost. */
      code = -errno;
    } else if (si.si_pid == 0) {
      return 0;
    } else {
      code = decode_status(&si);
    }
  }
  p->exitcode = code;
  p->state = PS_ENDED;
  atomic_fetch_sub(&g_nrunning, 1);
  return 1;
}

/* Reap every running child; free detached handles that ended. */
static void reap_all_locked(void) {
  mproc_process_t *n;
  pid_t me = mproc__my_pid();
  for (mproc_process_t *p = g_head; p; p = n) {
    n = p->next;
    if (p->owner != me) continue; /* a parent's, copied by a raw fork() */
    if (p->state == PS_RUNNING) reap_locked(p);
    if (p->detached && p->state != PS_RUNNING && p->hold == 0) {
      list_del(p);
      handle_free(p);
    }
  }
}

/* Wait until p ended or the deadline passed. 0 or -ETIMEDOUT. p must stay
 * valid (the caller owns it, or holds it pinned). */
static int wait_ended(mproc_process_t *p, const struct timespec *dl) {
  useconds_t backoff = 50, grace_us = 0;
  for (;;) {
    pthread_mutex_lock(&g_reg_mu);
    int state = p->state;
    /* A forkserver child with an exit slot is waited for on its pidfd (the
     * child's exit wakes us directly); without one its code comes on the
     * status socket after the pidfd fired: waiting on the socket takes one
     * wake-up, not two. */
    int fd = p->method == MPROC_START_FORKSERVER && p->status_fd >= 0 && !p->exit_slot
                 ? p->status_fd
                 : p->pidfd;
    pthread_mutex_unlock(&g_reg_mu);
    if (state != PS_RUNNING) return 0;
    /* poll first: when the child is still running this saves a waitid. */
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int r = poll(&pfd, 1, mproc__deadline_ms(dl));
    if (r < 0 && errno != EINTR) return -errno;
    pthread_mutex_lock(&g_reg_mu);
    int ended = reap_locked(p);
    pthread_mutex_unlock(&g_reg_mu);
    if (ended) return 0;
    if (r == 0) return -ETIMEDOUT;
    if (r > 0 && !p->fd_is_pidfd) {
      /* A death pipe at EOF for a child still running. Either it is
       * exiting: its fds close a moment before it becomes waitable, so a
       * readable sentinel gets a short grace past the deadline and then
       * means joinable. Or it exec'd (the pipe is close-on-exec): only
       * polling is left; back off to 20 ms. */
      int past = mproc__deadline_passed(dl);
      if (past && grace_us >= MPROC__EXITING_GRACE_US) return -ETIMEDOUT;
      double left = mproc__deadline_left(dl);
      useconds_t us = backoff;
      if (!past && left >= 0 && left * 1e6 < us) us = (useconds_t)(left * 1e6) + 1;
      usleep(us);
      if (past) grace_us += us;
      if (backoff < 20000) backoff *= 2;
    } else if (mproc__deadline_passed(dl)) {
      return -ETIMEDOUT;
    }
  }
}

static int signal_locked(mproc_process_t *p, int sig) {
  if (p->state == PS_CREATED) return MPROC_ESTATE;
  if (reap_locked(p)) return 0;
  int r = p->fd_is_pidfd ? mproc__pidfd_signal(p->pidfd, sig)
                         : (kill(p->pid, sig) < 0 ? -errno : 0);
  return r == -ESRCH ? 0 : r;
}

void mproc__exit_work(void) {
  /* Fast path, the usual case in a child: nothing to wait for. (Keeps the
   * child from faulting in code it does not need.) */
  if (atomic_load(&g_nrunning) == 0 && !mproc__forkserver_running()) return;
  /* Pin the running children, so the loop below may wait without the lock
   * while other threads keep using the registry. */
  pthread_mutex_lock(&g_reg_mu);
  reap_all_locked();
  size_t n = 0;
  pid_t me = mproc__my_pid();
  for (mproc_process_t *p = g_head; p; p = p->next)
    if (p->state == PS_RUNNING && p->owner == me) n++;
  mproc_process_t **v = n ? calloc(n, sizeof *v) : NULL;
  size_t k = 0;
  if (v) {
    for (mproc_process_t *p = g_head; p && k < n; p = p->next)
      if (p->state == PS_RUNNING && p->owner == me) {
        p->hold++;
        v[k++] = p;
        if (p->daemon) signal_locked(p, SIGTERM);
      }
  } else {
    /* Out of memory: still terminate the daemons; joining needs the list. */
    for (mproc_process_t *p = g_head; p; p = p->next)
      if (p->state == PS_RUNNING && p->owner == me && p->daemon) signal_locked(p, SIGTERM);
  }
  pthread_mutex_unlock(&g_reg_mu);

  struct timespec dl;
  mproc__deadline(MPROC__DAEMON_GRACE, &dl);
  for (size_t i = 0; i < k; i++)
    if (v[i]->daemon && wait_ended(v[i], &dl) == -ETIMEDOUT) {
      pthread_mutex_lock(&g_reg_mu);
      signal_locked(v[i], SIGKILL);
      pthread_mutex_unlock(&g_reg_mu);
    }
  for (size_t i = 0; i < k; i++) wait_ended(v[i], NULL);

  pthread_mutex_lock(&g_reg_mu);
  for (size_t i = 0; i < k; i++) v[i]->hold--;
  reap_all_locked();
  pthread_mutex_unlock(&g_reg_mu);
  free(v);
  mproc__forkserver_stop();
}

static void atexit_handler(void) { mproc__exit_work(); }

/* ---- validation ---- */

static int check_handle(const mproc_process_t *p) {
  if (!p || p->magic != MPROC__PROC_MAGIC) return -EINVAL;
  if (p->owner != mproc__my_pid()) return MPROC_ENOTOWNER;
  if (p->closed) return MPROC_EDESTROYED;
  return 0;
}

static int method_ok(int m) {
  return m >= MPROC_START_DEFAULT && m <= MPROC_START_SPAWN;
}

/* ---- create / destroy ---- */

int mproc_process_create(mproc_process_t **out, mproc_target_fn target, void *arg,
                         const mproc_process_opts *opts) {
  if (!out) return -EINVAL;
  mproc_process_opts o = {0};
  if (opts) o = *opts;
  if (!method_ok(o.start_method)) return -EINVAL;
  if (o.arg_size > MPROC__ARG_MAX || (o.arg_size && !arg)) return -EINVAL;
  if (o.name && strlen(o.name) > MPROC__NAME_MAX) return -ENAMETOOLONG;
  if (o.target_name &&
      (!*o.target_name || strlen(o.target_name) > MPROC__TARGET_NAME_MAX))
    return -EINVAL;
  if ((o.authkey && (o.authkey_len == 0 || o.authkey_len > MPROC_AUTHKEY_MAX)) ||
      (!o.authkey && o.authkey_len))
    return -EINVAL;
  int rc = mproc__ensure_init();
  if (rc) return rc;

  /* Resolve the target: by function, by registered name, or both (then
   * they must agree). */
  const char *tname = o.target_name;
  if (tname) {
    mproc_target_fn reg = mproc__target_lookup(tname);
    if (!target && !reg) return MPROC_ENOTREG;
    if (target && reg && reg != target) return -EINVAL;
    if (!target) target = reg;
  } else if (!target) {
    return -EINVAL;
  }
  int method = o.start_method ? o.start_method : mproc__init_start_method();
  if (!method_ok(method) || method == MPROC_START_DEFAULT) method = MPROC_START_FORK;
  if (method == MPROC_START_SPAWN) {
    if (!tname) tname = mproc__target_name_of(target);
    if (!tname || mproc__target_lookup(tname) != target) return MPROC_ENOTREG;
    /* A fresh exec sees only the heap: any other pointer would dangle. */
    if (!o.arg_size && arg && !mproc__heap_contains(arg)) return -EINVAL;
  }

  mproc_process_t *p = calloc(1, sizeof *p);
  if (!p) return -ENOMEM;
  if (o.arg_size) {
    p->arg_copy = malloc(o.arg_size);
    if (!p->arg_copy) {
      free(p);
      return -ENOMEM;
    }
    memcpy(p->arg_copy, arg, o.arg_size);
    p->arg_size = o.arg_size;
    arg = p->arg_copy;
  }
  p->magic = MPROC__PROC_MAGIC;
  p->state = PS_CREATED;
  p->daemon = o.daemon != 0;
  p->method = method;
  p->owner = mproc__my_pid();
  p->pidfd = -1;
  p->status_fd = -1;
  p->target = target;
  p->arg = arg;
  if (o.authkey) {
    memcpy(p->authkey, o.authkey, o.authkey_len);
    p->authkey_len = o.authkey_len;
  }
  if (tname) snprintf(p->target_name, sizeof p->target_name, "%s", tname);
  /* Python's _identity: the parent's identity plus a per-process counter
   * taken at construction, so nested children are "Process-N:M". */
  unsigned count = atomic_fetch_add(&g_self.counter, 1) + 1;
  int n = g_self.identity[0]
              ? snprintf(p->identity, sizeof p->identity, "%s:%u", g_self.identity, count)
              : snprintf(p->identity, sizeof p->identity, "%u", count);
  if (o.name && *o.name)
    n = snprintf(p->name, sizeof p->name, "%s", o.name);
  else if (n >= 0 && (size_t)n < sizeof p->identity)
    n = snprintf(p->name, sizeof p->name, "Process-%s", p->identity);
  if (n < 0 || (size_t)n >= sizeof p->name) {
    /* Nesting deeper than a name can say (over ~60 levels). */
    handle_free(p);
    return -ENAMETOOLONG;
  }

  pthread_mutex_lock(&g_reg_mu);
  list_add(p);
  pthread_mutex_unlock(&g_reg_mu);
  *out = p;
  return 0;
}

int mproc_process_destroy(mproc_process_t *p) {
  if (!p) return 0;
  if (p->magic != MPROC__PROC_MAGIC) return -EINVAL;
  if (p->owner != mproc__my_pid()) {
    /* A parent's handle copied into a child by fork: only the memory is
     * ours to free (it is on no list of this process). */
    handle_free(p);
    return 0;
  }
  pthread_mutex_lock(&g_reg_mu);
  if (p->state == PS_RUNNING) reap_locked(p);
  if (p->state == PS_RUNNING || p->hold > 0) {
    p->detached = 1; /* the registry frees it once it ended */
  } else {
    list_del(p);
    handle_free(p);
  }
  pthread_mutex_unlock(&g_reg_mu);
  return 0;
}

int mproc_process_set_name(mproc_process_t *p, const char *name) {
  int rc = check_handle(p);
  if (rc) return rc;
  if (!name || !*name) return -EINVAL;
  if (strlen(name) > MPROC__NAME_MAX) return -ENAMETOOLONG;
  pthread_mutex_lock(&g_reg_mu);
  snprintf(p->name, sizeof p->name, "%s", name);
  pthread_mutex_unlock(&g_reg_mu);
  return 0;
}

int mproc_process_set_daemon(mproc_process_t *p, int daemon) {
  int rc = check_handle(p);
  if (rc) return rc;
  pthread_mutex_lock(&g_reg_mu);
  if (p->state != PS_CREATED) rc = MPROC_ESTATE;
  else p->daemon = daemon != 0;
  pthread_mutex_unlock(&g_reg_mu);
  return rc;
}

/* ---- start ---- */

typedef struct fork_ctx {
  mproc_process_t *p;
  pid_t parent;
  pid_t pid;
  int death[2];  /* death pipe (no-pidfd fallback), else -1 -1 */
} fork_ctx;

/* Runs on a long-lived thread with every signal blocked. */
static int fork_fn(void *c, const sigset_t *caller_mask) {
  fork_ctx *ctx = c;
  pid_t pid = mproc__sys.fork();
  if (pid == 0) {
    /* The child: arm the death signal first (the getppid() check inside
     * closes the race with a parent that died in between), then forget
     * the parent's per-process state, then let signals in again. */
    mproc__child_pdeathsig(ctx->parent);
    mproc__child_reset();
    if (ctx->death[1] >= 0) {
      close(ctx->death[0]);
      mproc__set_death_fd(ctx->death[1]);
    }
    pthread_sigmask(SIG_SETMASK, caller_mask, NULL);
    mproc_process_t *p = ctx->p;
    mproc__child_spec spec = {
        .target = p->target,
        .arg = p->arg,
        .name = p->name,
        .identity = p->identity,
        .daemon = p->daemon,
        .parent_pid = ctx->parent,
        .start_method = 0,
        .authkey = p->authkey_len ? p->authkey : NULL, /* else inherited */
        .authkey_len = p->authkey_len,
    };
    mproc__child_main(&spec);
  }
  if (pid < 0) return -errno;
  ctx->pid = pid;
  return 0;
}

static int start_fork(mproc_process_t *p) {
  fork_ctx ctx = {.p = p, .parent = mproc__my_pid(), .pid = -1, .death = {-1, -1}};
  int have_pidfd = mproc__have_pidfd();
  /* Make our authkey now if it does not exist, so the child inherits it
   * instead of making its own. */
  const void *key;
  size_t klen;
  mproc_current_authkey(&key, &klen);
  if (!have_pidfd && mproc__sys.pipe2(ctx.death, O_CLOEXEC) < 0) return -errno;
  mproc__flush_std();
  int rc = mproc__run_on_long_lived_thread(fork_fn, &ctx);
  if (ctx.death[1] >= 0) close(ctx.death[1]);
  if (rc) {
    if (ctx.death[0] >= 0) close(ctx.death[0]);
    return rc;
  }
  if (!have_pidfd) {
    p->pid = ctx.pid;
    p->pidfd = ctx.death[0];
    p->fd_is_pidfd = 0;
    return 0;
  }
  int fd = mproc__sys.pidfd_open(ctx.pid, 0);
  if (fd < 0) {
    /* Without a pidfd we cannot manage the child: take it back. */
    rc = -errno;
    kill(ctx.pid, SIGKILL);
    while (waitpid(ctx.pid, NULL, 0) < 0 && errno == EINTR) {
    }
    return rc;
  }
  p->pid = ctx.pid;
  p->pidfd = fd;
  p->fd_is_pidfd = 1;
  return 0;
}

int mproc_process_start(mproc_process_t *p) {
  int rc = check_handle(p);
  if (rc) return rc;
  /* Python: "daemonic processes are not allowed to have children". */
  if (g_self.daemon) return -EPERM;
  rc = mproc__ensure_init();
  if (rc) return rc;
  pthread_mutex_lock(&g_reg_mu);
  if (p->state != PS_CREATED) {
    pthread_mutex_unlock(&g_reg_mu);
    return MPROC_ESTATE;
  }
  reap_all_locked();
  if (!g_atexit_registered) {
    if (atexit(atexit_handler) == 0) g_atexit_registered = 1;
  }
  switch (p->method) {
    case MPROC_START_FORKSERVER:
      rc = mproc__forkserver_start(p);
      break;
    case MPROC_START_SPAWN:
      rc = mproc__spawn_start(p);
      break;
    default:
      rc = start_fork(p);
      break;
  }
  if (rc == 0) {
    p->state = PS_RUNNING;
    atomic_fetch_add(&g_nrunning, 1);
  }
  pthread_mutex_unlock(&g_reg_mu);
  return rc;
}

int mproc_process_run(mproc_process_t *p) {
  int rc = check_handle(p);
  if (rc) return rc;
  return p->target(p->arg);
}

/* ---- join / state ---- */

int mproc_process_join(mproc_process_t *p, double timeout) {
  int rc = check_handle(p);
  if (rc) return rc;
  if (!mproc__timeout_ok(timeout)) return -EINVAL;
  pthread_mutex_lock(&g_reg_mu);
  int state = p->state;
  pthread_mutex_unlock(&g_reg_mu);
  if (state == PS_CREATED) return MPROC_ESTATE;
  struct timespec dl;
  return wait_ended(p, mproc__deadline(timeout, &dl));
}

int mproc_process_is_alive(mproc_process_t *p) {
  int rc = check_handle(p);
  if (rc) return rc;
  pthread_mutex_lock(&g_reg_mu);
  int alive = p->state == PS_RUNNING && !reap_locked(p);
  pthread_mutex_unlock(&g_reg_mu);
  return alive;
}

int mproc_process_terminate(mproc_process_t *p) {
  int rc = check_handle(p);
  if (rc) return rc;
  pthread_mutex_lock(&g_reg_mu);
  rc = signal_locked(p, SIGTERM);
  pthread_mutex_unlock(&g_reg_mu);
  return rc;
}

int mproc_process_kill(mproc_process_t *p) {
  int rc = check_handle(p);
  if (rc) return rc;
  pthread_mutex_lock(&g_reg_mu);
  rc = signal_locked(p, SIGKILL);
  pthread_mutex_unlock(&g_reg_mu);
  return rc;
}

int mproc_process_close(mproc_process_t *p) {
  if (!p || p->magic != MPROC__PROC_MAGIC) return -EINVAL;
  if (p->owner != mproc__my_pid()) return MPROC_ENOTOWNER;
  pthread_mutex_lock(&g_reg_mu);
  int rc = 0;
  if (!p->closed) {
    if (p->state == PS_RUNNING && !reap_locked(p)) {
      rc = -EBUSY;
    } else {
      close_fd(&p->pidfd);
      close_fd(&p->status_fd);
      p->closed = 1;
    }
  }
  pthread_mutex_unlock(&g_reg_mu);
  return rc;
}

pid_t mproc_process_pid(const mproc_process_t *p) {
  int rc = check_handle(p);
  if (rc) return rc;
  return p->state == PS_CREATED ? MPROC_ESTATE : p->pid;
}

int mproc_process_exitcode(mproc_process_t *p, int *code) {
  int rc = check_handle(p);
  if (rc) return rc;
  if (!code) return -EINVAL;
  pthread_mutex_lock(&g_reg_mu);
  if (reap_locked(p)) *code = p->exitcode;
  else rc = MPROC_ESTATE;
  pthread_mutex_unlock(&g_reg_mu);
  return rc;
}

const char *mproc_process_name(const mproc_process_t *p) {
  if (!p || p->magic != MPROC__PROC_MAGIC) return "";
  return p->name;
}

int mproc_process_daemon(const mproc_process_t *p) {
  if (!p || p->magic != MPROC__PROC_MAGIC) return -EINVAL;
  return p->daemon;
}

int mproc_process_sentinel(const mproc_process_t *p) {
  int rc = check_handle(p);
  if (rc) return rc;
  return p->state == PS_CREATED ? MPROC_ESTATE : p->pidfd;
}

int mproc_active_children(mproc_process_t **out, int cap) {
  if (cap < 0 || (cap > 0 && !out)) return -EINVAL;
  pthread_mutex_lock(&g_reg_mu);
  reap_all_locked();
  int n = 0;
  for (mproc_process_t *p = g_head; p; p = p->next) {
    if (p->state != PS_RUNNING || p->detached || p->owner != mproc__my_pid()) continue;
    if (n < cap) out[n] = p;
    n++;
  }
  pthread_mutex_unlock(&g_reg_mu);
  return n;
}

/* ---- start methods ---- */

int mproc_set_start_method(int method) {
  if (method < MPROC_START_FORK || method > MPROC_START_SPAWN) return -EINVAL;
  int rc = mproc__ensure_init();
  if (rc) return rc;
  if (method == MPROC_START_FORKSERVER) {
    /* Start the server now, while the program is (ideally) still
     * single-threaded: its children are forks of this moment's image. */
    rc = mproc__forkserver_ensure();
    if (rc) return rc;
  }
  mproc__init_set_start_method(method);
  return 0;
}

int mproc_get_start_method(void) {
  int m = mproc__init_start_method();
  return m == MPROC_START_DEFAULT ? MPROC_START_FORK : m;
}
