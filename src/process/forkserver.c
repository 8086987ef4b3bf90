/*
 * forkserver.c - the MPROC_START_FORKSERVER start method.
 *
 * DESIGN
 *  - Each process that uses the method has its own server: a child forked
 *    (from a long-lived thread, with the heap already mapped) when
 *    mproc_set_start_method(MPROC_START_FORKSERVER) is called or at first
 *    use. The server is single-threaded, so the children it forks are safe
 *    even when the requesting process has many threads. Call
 *    mproc_set_start_method() early in main(): the children are copies of
 *    the program as it was when the server started.
 *  - Death chain: the requester dies -> the server gets SIGKILL (its
 *    PR_SET_PDEATHSIG) -> the server's children get SIGKILL (theirs). So a
 *    forkserver child dies with the process that asked for it.
 *  - Protocol (all over AF_UNIX stream sockets, no file-system names):
 *      ctl: one socketpair between requester and server. Per start, the
 *           requester sends one byte with a fresh socket ("status socket")
 *           attached (SCM_RIGHTS).
 *      status socket: requester -> server: fs_req header, name, identity,
 *           arg bytes; server -> requester: int32 pid (or -errno) with the
 *           child's pidfd attached, later int32 exit code when the server
 *           reaped the child. The server opens the pidfd before it can
 *           reap the child, so the pid is never stale.
 *  - The requester's sentinel is that pidfd (readable when the child
 *    exits); its exit code arrives on the status socket a moment later.
 *  - Targets and pointer args are passed as addresses: valid because the
 *    server is a fork of the requester (same binary, same mappings, same
 *    heap). Bytes passed with arg_size are copied through the socket.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "platform/platform.h"
#include "process/process_int.h"

#define FS_MAGIC 0x6d706673u /* "mpfs" */

typedef struct fs_req {
  uint32_t magic;      /* FS_MAGIC */
  uint32_t name_len;   /* bytes of name that follow */
  uint32_t ident_len;  /* bytes of identity that follow */
  int32_t daemon;      /* the child's daemon flag */
  uint64_t target;     /* mproc_target_fn as an address */
  uint64_t arg;        /* pointer passed when arg_size == 0 */
  uint64_t arg_size;   /* bytes of arg that follow */
  int32_t requester;   /* the requester's pid: the child's parent_pid */
  int32_t start_method;/* family default to inherit */
  uint32_t authkey_len;/* bytes of authkey that follow the arg */
  sigset_t mask;       /* the requesting thread's signal mask */
} fs_req;

static pthread_mutex_t g_fs_mu = PTHREAD_MUTEX_INITIALIZER;
static _Atomic pid_t g_fs_pid; /* server pid, 0 when none */
static int g_fs_pidfd = -1; /* pidfd of the server */
static int g_fs_ctl = -1;   /* requester's end of ctl */

/* ---- small socket helpers ---- */

static int write_all(int fd, const void *buf, size_t n) {
  const char *p = buf;
  while (n) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static int read_all(int fd, void *buf, size_t n) {
  char *p = buf;
  while (n) {
    ssize_t r = recv(fd, p, n, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (r == 0) return -EPIPE;
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

/* Send an int32 with an optional fd attached. */
static int send_int_fd(int sock, int32_t v, int fd) {
  struct iovec iov = {.iov_base = &v, .iov_len = sizeof v};
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } u;
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
  if (fd >= 0) {
    memset(&u, 0, sizeof u);
    msg.msg_control = u.buf;
    msg.msg_controllen = sizeof u.buf;
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
  }
  for (;;) {
    ssize_t w = sendmsg(sock, &msg, MSG_NOSIGNAL);
    if (w == (ssize_t)sizeof v) return 0;
    if (w < 0 && errno == EINTR) continue;
    return w < 0 ? -errno : -EPIPE;
  }
}

/* Receive an int32 and the fd attached to it (-1 if none). 0, -EPIPE on
 * EOF, -errno. */
static int recv_int_fd(int sock, int32_t *v, int *fd) {
  struct iovec iov = {.iov_base = v, .iov_len = sizeof *v};
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } u;
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1,
                       .msg_control = u.buf, .msg_controllen = sizeof u.buf};
  *fd = -1;
  ssize_t r;
  do r = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | MSG_WAITALL);
  while (r < 0 && errno == EINTR);
  if (r < 0) return -errno;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
      memcpy(fd, CMSG_DATA(c), sizeof *fd);
  if (r != (ssize_t)sizeof *v) {
    if (*fd >= 0) close(*fd);
    *fd = -1;
    return -EPIPE;
  }
  return 0;
}

/* ---- the server ---- */

typedef struct fs_child {
  pid_t pid;     /* the child */
  int pidfd;     /* server's pidfd for it, or its death pipe's read end */
  int is_pidfd;  /* pidfd above is a real pidfd */
  int pipe_eof;  /* death pipe at EOF but child not yet gone (it exec'd):
                    reaped by polling waitid every 20 ms */
  int stfd;      /* status socket to its requester */
} fs_child;

static fs_child *g_kids; /* server side only */
static size_t g_nkids, g_capkids;

/* Read one request from st and fork its child. Keeps st on success. */
static void serve_one(int ctl, int st) {
  fs_req h;
  char *name = NULL, *ident = NULL, *arg = NULL;
  unsigned char key[MPROC_AUTHKEY_MAX];
  if (read_all(st, &h, sizeof h) || h.magic != FS_MAGIC ||
      h.name_len > MPROC__NAME_MAX || h.ident_len > MPROC__IDENT_MAX ||
      h.arg_size > MPROC__ARG_MAX || h.authkey_len > MPROC_AUTHKEY_MAX)
    goto drop;
  name = calloc(1, (size_t)h.name_len + 1);
  ident = calloc(1, (size_t)h.ident_len + 1);
  arg = h.arg_size ? malloc(h.arg_size) : NULL;
  if (!name || !ident || (h.arg_size && !arg)) {
    send_int_fd(st, -ENOMEM, -1);
    goto drop;
  }
  if (read_all(st, name, h.name_len) || read_all(st, ident, h.ident_len) ||
      (h.arg_size && read_all(st, arg, h.arg_size)) ||
      read_all(st, key, h.authkey_len))
    goto drop;
  if (g_nkids == g_capkids) {
    size_t cap = g_capkids ? g_capkids * 2 : 16;
    fs_child *k = realloc(g_kids, cap * sizeof *k);
    if (!k) {
      send_int_fd(st, -ENOMEM, -1);
      goto drop;
    }
    g_kids = k;
    g_capkids = cap;
  }
  pid_t server = getpid();
  int have_pidfd = mproc__have_pidfd();
  int death[2] = {-1, -1};
  if (!have_pidfd && mproc__sys.pipe2(death, O_CLOEXEC) < 0) {
    send_int_fd(st, -errno, -1);
    goto drop;
  }
  pid_t pid = mproc__sys.fork();
  if (pid == 0) {
    mproc__child_pdeathsig(server);
    close(ctl);
    close(st);
    mproc__forkserver_reset_child(); /* closes and frees the server's table
                                        (already done by the atfork hook) */
    if (death[1] >= 0) {
      close(death[0]);
      mproc__set_death_fd(death[1]);
    }
    mproc__reset_signal_dispositions();
    pthread_sigmask(SIG_SETMASK, &h.mask, NULL);
    mproc__child_spec spec = {
        .target = (mproc_target_fn)(uintptr_t)h.target,
        .arg = h.arg_size ? (void *)arg : (void *)(uintptr_t)h.arg,
        .name = name,
        .identity = ident,
        .daemon = h.daemon,
        .parent_pid = h.requester,
        .start_method = h.start_method,
        .authkey = h.authkey_len ? key : NULL,
        .authkey_len = h.authkey_len,
    };
    mproc__child_main(&spec);
  }
  int e = -errno;
  if (death[1] >= 0) close(death[1]);
  if (pid < 0) {
    if (death[0] >= 0) close(death[0]);
    send_int_fd(st, e, -1);
    goto drop;
  }
  int pidfd = death[0];
  if (have_pidfd) {
    pidfd = mproc__sys.pidfd_open(pid, 0);
    if (pidfd < 0) {
      e = -errno;
      kill(pid, SIGKILL);
      while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
      }
      send_int_fd(st, e, -1);
      goto drop;
    }
  }
  g_kids[g_nkids++] =
      (fs_child){.pid = pid, .pidfd = pidfd, .is_pidfd = have_pidfd, .stfd = st};
  /* If the requester is gone the reply fails; the child is then reaped and
   * its status dropped like any other. Without pidfds the requester gets
   * no fd and uses the status socket as its sentinel. */
  send_int_fd(st, (int32_t)pid, have_pidfd ? pidfd : -1);
  free(name);
  free(ident);
  free(arg);
  return;
drop:
  close(st);
  free(name);
  free(ident);
  free(arg);
}

/* Reap kid i if it ended (blocking only when `block`). Returns 1 when it
 * was reaped and reported (and removed from the table). */
static int reap_kid(size_t i, int block) {
  siginfo_t si;
  memset(&si, 0, sizeof si);
  int r, flags = WEXITED | (block ? 0 : WNOHANG);
  do r = g_kids[i].is_pidfd ? waitid(P_PIDFD, (id_t)g_kids[i].pidfd, &si, flags)
                            : waitid(P_PID, (id_t)g_kids[i].pid, &si, flags);
  while (r < 0 && errno == EINTR);
  if (r == 0 && si.si_pid == 0) return 0; /* still running */
  int32_t code = r < 0 ? -errno
                       : (si.si_code == CLD_EXITED ? si.si_status : -si.si_status);
  send_int_fd(g_kids[i].stfd, code, -1);
  close(g_kids[i].pidfd);
  close(g_kids[i].stfd);
  g_kids[i] = g_kids[--g_nkids];
  return 1;
}

_Noreturn static void server_main(int ctl) {
  /* A clean slate: default dispositions, but Ctrl-C on the terminal is for
   * the program and its children, not for the server (Python does the
   * same); SIGPIPE would kill us when a requester vanished. */
  mproc__reset_signal_dispositions();
  signal(SIGINT, SIG_IGN);
  signal(SIGPIPE, SIG_IGN);
  sigset_t none;
  sigemptyset(&none);
  pthread_sigmask(SIG_SETMASK, &none, NULL);
  struct pollfd *pf = NULL;
  size_t cap = 0;
  for (;;) {
    if (cap < g_nkids + 1) {
      cap = (g_nkids + 1) * 2;
      struct pollfd *n = realloc(pf, cap * sizeof *n);
      if (!n) _exit(1);
      pf = n;
    }
    pf[0] = (struct pollfd){.fd = ctl, .events = POLLIN};
    int slow = 0; /* some kid can only be polled for */
    for (size_t i = 0; i < g_nkids; i++) {
      /* A negative fd is ignored by poll(). */
      pf[i + 1] = (struct pollfd){.fd = g_kids[i].pipe_eof ? -1 : g_kids[i].pidfd,
                                  .events = POLLIN};
      slow |= g_kids[i].pipe_eof;
    }
    size_t n = g_nkids + 1;
    int r = poll(pf, n, slow ? 20 : -1);
    if (r < 0) {
      if (errno == EINTR) continue;
      _exit(1);
    }
    /* Children first (back to front: reap_kid moves the last one). */
    for (size_t i = n - 1; i >= 1; i--) {
      fs_child *k = &g_kids[i - 1];
      if (pf[i].revents && k->is_pidfd) reap_kid(i - 1, 1);
      else if (pf[i].revents || k->pipe_eof) {
        if (!reap_kid(i - 1, 0)) k->pipe_eof = 1;
      }
    }
    if (pf[0].revents) {
      int32_t one;
      int st;
      int rc = recv_int_fd(ctl, &one, &st);
      if (rc == -EPIPE || (rc < 0 && rc != -EAGAIN)) break; /* requester gone */
      if (st >= 0) serve_one(ctl, st);
    }
  }
  /* Our children die with us (their PR_SET_PDEATHSIG). */
  _exit(0);
}

/* ---- requester side ---- */

typedef struct srv_ctx {
  int sv[2];    /* [0] requester end, [1] server end */
  pid_t parent; /* requester pid */
  pid_t pid;    /* server pid (out) */
} srv_ctx;

static int server_fork_fn(void *c, const sigset_t *caller_mask) {
  (void)caller_mask;
  srv_ctx *ctx = c;
  pid_t pid = mproc__sys.fork();
  if (pid == 0) {
    mproc__child_pdeathsig(ctx->parent);
    int keep = ctx->sv[1];
    close(ctx->sv[0]);
    mproc__child_reset(); /* closes our copy of the old ctl, if any */
    server_main(keep);
  }
  if (pid < 0) return -errno;
  ctx->pid = pid;
  return 0;
}

static void server_forget_locked(void) {
  if (g_fs_ctl >= 0) close(g_fs_ctl);
  g_fs_ctl = -1;
  if (g_fs_pidfd >= 0) {
    /* Closing ctl makes the server exit; reap it. */
    siginfo_t si;
    int r;
    do r = waitid(P_PIDFD, (id_t)g_fs_pidfd, &si, WEXITED);
    while (r < 0 && errno == EINTR);
    close(g_fs_pidfd);
  }
  g_fs_pidfd = -1;
  g_fs_pid = 0;
}

static int ensure_locked(void) {
  if (g_fs_pid) {
    /* Still there? A server that died (killed by hand) is replaced. */
    struct pollfd pfd = {.fd = g_fs_pidfd, .events = POLLIN};
    if (poll(&pfd, 1, 0) == 0) return 0;
    server_forget_locked();
  }
  int rc = mproc__ensure_init(); /* the heap must exist before the fork */
  if (rc) return rc;
  mproc__have_pidfd(); /* probe once here, for the server to inherit */
  srv_ctx ctx = {.parent = getpid(), .pid = -1};
  if (mproc__sys.socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ctx.sv) < 0)
    return -errno;
  mproc__flush_std();
  rc = mproc__run_on_long_lived_thread(server_fork_fn, &ctx);
  close(ctx.sv[1]);
  if (rc) {
    close(ctx.sv[0]);
    return rc;
  }
  int fd = mproc__sys.pidfd_open(ctx.pid, 0);
  if (fd < 0) {
    rc = -errno;
    kill(ctx.pid, SIGKILL);
    while (waitpid(ctx.pid, NULL, 0) < 0 && errno == EINTR) {
    }
    close(ctx.sv[0]);
    return rc;
  }
  g_fs_pid = ctx.pid;
  g_fs_pidfd = fd;
  g_fs_ctl = ctx.sv[0];
  return 0;
}

int mproc__forkserver_ensure(void) {
  pthread_mutex_lock(&g_fs_mu);
  int rc = ensure_locked();
  pthread_mutex_unlock(&g_fs_mu);
  return rc;
}

/* Hand the server a new status socket; returns the requester's end. */
static int open_channel(int *out) {
  int st[2];
  if (mproc__sys.socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, st) < 0)
    return -errno;
  pthread_mutex_lock(&g_fs_mu);
  int rc = ensure_locked();
  if (rc == 0) {
    rc = send_int_fd(g_fs_ctl, 1, st[1]);
    if (rc) {
      /* The server died under us: start a new one and try once more. */
      server_forget_locked();
      rc = ensure_locked();
      if (rc == 0) rc = send_int_fd(g_fs_ctl, 1, st[1]);
    }
  }
  pthread_mutex_unlock(&g_fs_mu);
  close(st[1]);
  if (rc) {
    close(st[0]);
    return rc;
  }
  *out = st[0];
  return 0;
}

int mproc__forkserver_start(struct mproc_process *p) {
  int st = -1;
  int rc = open_channel(&st);
  if (rc) return rc;
  fs_req h;
  memset(&h, 0, sizeof h);
  h.magic = FS_MAGIC;
  h.name_len = (uint32_t)strlen(p->name);
  h.ident_len = (uint32_t)strlen(p->identity);
  h.daemon = p->daemon;
  h.target = (uint64_t)(uintptr_t)p->target;
  h.arg = (uint64_t)(uintptr_t)p->arg;
  h.arg_size = p->arg_size;
  h.requester = getpid();
  h.start_method = mproc__init_start_method();
  /* The server's copy of our key may be stale: send the current one. */
  unsigned char key[MPROC_AUTHKEY_MAX];
  size_t klen = p->authkey_len;
  if (klen) memcpy(key, p->authkey, klen);
  else klen = mproc__authkey_copy(key);
  h.authkey_len = (uint32_t)klen;
  pthread_sigmask(SIG_SETMASK, NULL, &h.mask);
  if ((rc = write_all(st, &h, sizeof h)) || (rc = write_all(st, p->name, h.name_len)) ||
      (rc = write_all(st, p->identity, h.ident_len)) ||
      (p->arg_size && (rc = write_all(st, p->arg_copy, p->arg_size))) ||
      (rc = write_all(st, key, klen))) {
    close(st);
    return rc;
  }
  int32_t pid;
  int pidfd;
  rc = recv_int_fd(st, &pid, &pidfd);
  int is_pidfd = pidfd >= 0;
  if (rc == 0 && pid > 0 && pidfd < 0) {
    /* No pidfds (the server said so by sending none): the status socket,
     * readable once the server reported the exit, is the sentinel. */
    pidfd = fcntl(st, F_DUPFD_CLOEXEC, 0);
    if (pidfd < 0) {
      rc = -errno;
      kill(pid, SIGKILL); /* the server reaps it */
    }
  }
  if (rc == 0 && pid <= 0) {
    rc = pid < 0 ? pid : MPROC_ECHILDFAIL;
    if (pidfd >= 0) close(pidfd);
  }
  if (rc) {
    close(st);
    return rc == -EPIPE ? MPROC_ECHILDFAIL : rc;
  }
  p->pid = pid;
  p->pidfd = pidfd;
  p->fd_is_pidfd = is_pidfd;
  p->status_fd = st;
  return 0;
}

int mproc__forkserver_poll(struct mproc_process *p, double wait, int *code) {
  int32_t v;
  ssize_t r;
  do r = recv(p->status_fd, &v, sizeof v, MSG_DONTWAIT | MSG_WAITALL);
  while (r < 0 && errno == EINTR);
  if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
    /* No report yet. If the child is gone, the server's report is a
     * moment away: wait for it, so a readable sentinel means "joinable". */
    struct pollfd pfd = {.fd = p->pidfd, .events = POLLIN};
    if (poll(&pfd, 1, 0) <= 0) return 0;
    struct pollfd sf = {.fd = p->status_fd, .events = POLLIN};
    if (poll(&sf, 1, (int)(wait * 1000)) <= 0) {
      *code = -ECHILD;
      return 1;
    }
    do r = recv(p->status_fd, &v, sizeof v, MSG_WAITALL);
    while (r < 0 && errno == EINTR);
  }
  if (r == (ssize_t)sizeof v) *code = v;
  else *code = -SIGKILL; /* the server died: its children were SIGKILLed */
  return 1;
}

void mproc__forkserver_stop(void) {
  pthread_mutex_lock(&g_fs_mu);
  server_forget_locked();
  pthread_mutex_unlock(&g_fs_mu);
}

int mproc__forkserver_running(void) { return atomic_load(&g_fs_pid) != 0; }

pid_t mproc__forkserver_pid(void) {
  pthread_mutex_lock(&g_fs_mu);
  pid_t pid = g_fs_pid;
  pthread_mutex_unlock(&g_fs_mu);
  return pid;
}

void mproc__forkserver_reset_child(void) {
  /* Runs from the atfork handler too, so twice after our own forks: the
   * fds are set to -1 once closed. */
  if (g_fs_ctl >= 0) close(g_fs_ctl);
  if (g_fs_pidfd >= 0) close(g_fs_pidfd);
  g_fs_ctl = g_fs_pidfd = -1;
  g_fs_pid = 0;
  g_fs_mu = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
  for (size_t i = 0; i < g_nkids; i++) { /* set only in a server */
    close(g_kids[i].pidfd);
    close(g_kids[i].stfd);
  }
  if (g_kids) free(g_kids);
  g_kids = NULL;
  g_nkids = g_capkids = 0;
}
