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
 *  - Protocol (AF_UNIX stream sockets, no file-system names): one socket
 *    pair "ctl" between requester and server; one round trip per start.
 *    The requester sends fs_req, name, identity, authkey and arg bytes in
 *    one sendmsg; the server forks and replies with an int32 pid (or
 *    -errno) carrying two fds (SCM_RIGHTS): the child's pidfd and the
 *    requester's end of a per-child "status socket" on which the server
 *    later writes the int32 exit code when it reaped the child. The server
 *    opens the pidfd before it can reap the child, so the pid is never
 *    stale. ctl is shared by the requester's threads: a start holds
 *    g_fs_mu for its whole exchange (starts are serialised by the registry
 *    lock anyway).
 *  - Cheap per start: the server makes the next status socket pair while
 *    idle (after replying), so only fork + pidfd_open + one sendmsg are on
 *    the critical path; the child only undoes the server's two signal
 *    dispositions (SIGINT, SIGPIPE ignored) instead of resetting all 64,
 *    and sets a signal mask only when the requester's was not empty.
 *  - A child gets what a fork child of the requesting thread would have:
 *    its signal mask and its CPU affinity (set only when it differs from
 *    the server's, which is the process's affinity when the server
 *    started), not the server's.
 *  - The requester's sentinel is that pidfd (readable when the child
 *    exits); its exit code arrives on the status socket a moment later.
 *    join waits on the status socket, not the pidfd: one wake-up, when the
 *    code is there.
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
#include <sched.h>
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
  cpu_set_t cpus;      /* the requesting thread's CPU affinity */
} fs_req;

static pthread_mutex_t g_fs_mu = PTHREAD_MUTEX_INITIALIZER;
static _Atomic pid_t g_fs_pid; /* server pid, 0 when none */
static int g_fs_pidfd = -1; /* pidfd of the server */
static int g_fs_ctl = -1;   /* requester's end of ctl */
/* Through a pointer: a libc call only children make would be bound lazily
 * by the dynamic linker in every one of them. */
static int (*volatile p_setaffinity)(pid_t, size_t, const cpu_set_t *) = sched_setaffinity;

/* ---- small socket helpers ---- */

/* Send every byte of iov[0..n) (the array is consumed). 0 or -errno. */
static int send_iov(int fd, struct iovec *iov, int n) {
  while (n > 0) {
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)n};
    ssize_t w = sendmsg(fd, &msg, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    while (n > 0 && (size_t)w >= iov->iov_len) {
      w -= (ssize_t)iov->iov_len;
      iov++;
      n--;
    }
    if (n > 0) {
      iov->iov_base = (char *)iov->iov_base + w;
      iov->iov_len -= (size_t)w;
    }
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

/* Send an int32 with nfds (0..2) fds attached. */
static int send_int_fds(int sock, int32_t v, const int *fds, int nfds) {
  struct iovec iov = {.iov_base = &v, .iov_len = sizeof v};
  union {
    char buf[CMSG_SPACE(2 * sizeof(int))];
    struct cmsghdr align;
  } u;
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
  if (nfds > 0) {
    memset(&u, 0, sizeof u);
    msg.msg_control = u.buf;
    msg.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
    memcpy(CMSG_DATA(c), fds, (size_t)nfds * sizeof(int));
  }
  for (;;) {
    ssize_t w = sendmsg(sock, &msg, MSG_NOSIGNAL);
    if (w == (ssize_t)sizeof v) return 0;
    if (w < 0 && errno == EINTR) continue;
    return w < 0 ? -errno : -EPIPE;
  }
}

static int send_int_fd(int sock, int32_t v, int fd) {
  return send_int_fds(sock, v, &fd, fd >= 0);
}

/* Receive an int32 and up to 2 fds attached to it (*nfds of them, in
 * order). 0, -EPIPE on EOF, -EMFILE when the fds did not fit, -errno. */
static int recv_int_fds(int sock, int32_t *v, int fds[2], int *nfds) {
  struct iovec iov = {.iov_base = v, .iov_len = sizeof *v};
  union {
    char buf[CMSG_SPACE(2 * sizeof(int))];
    struct cmsghdr align;
  } u;
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1,
                       .msg_control = u.buf, .msg_controllen = sizeof u.buf};
  *nfds = 0;
  ssize_t r;
  do r = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | MSG_WAITALL);
  while (r < 0 && errno == EINTR);
  if (r < 0) return -errno;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < n; i++) {
        int fd;
        memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
        if (*nfds < 2) fds[(*nfds)++] = fd;
        else close(fd);
      }
    }
  int rc = r != (ssize_t)sizeof *v ? -EPIPE : (msg.msg_flags & MSG_CTRUNC) ? -EMFILE : 0;
  if (rc) {
    for (int i = 0; i < *nfds; i++) close(fds[i]);
    *nfds = 0;
  }
  return rc;
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
/* Server side: the status socket pair for the next request, made while
 * the server is idle so that it is not on a start's critical path. */
static int g_next_st[2] = {-1, -1};

static void premake_status(void) {
  if (g_next_st[0] >= 0) return;
  if (mproc__sys.socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, g_next_st) < 0)
    g_next_st[0] = g_next_st[1] = -1;
}

/* Read and throw away n bytes of a request we cannot serve. */
static int skip_bytes(int ctl, uint64_t n) {
  char buf[4096];
  while (n) {
    size_t k = n < sizeof buf ? (size_t)n : sizeof buf;
    int rc = read_all(ctl, buf, k);
    if (rc) return rc;
    n -= k;
  }
  return 0;
}

/* Read one request from ctl, fork its child and reply on ctl. Returns -1
 * when ctl is broken (the requester is gone, or the stream is out of step):
 * the server then exits. */
static int serve_one(int ctl) {
  fs_req h;
  char name[MPROC__NAME_MAX + 1], ident[MPROC__IDENT_MAX + 1];
  unsigned char key[MPROC_AUTHKEY_MAX];
  char *arg = NULL;
  if (read_all(ctl, &h, sizeof h) || h.magic != FS_MAGIC ||
      h.name_len > MPROC__NAME_MAX || h.ident_len > MPROC__IDENT_MAX ||
      h.arg_size > MPROC__ARG_MAX || h.authkey_len > MPROC_AUTHKEY_MAX)
    return -1;
  /* name, identity and key in one read (they came in one sendmsg). */
  char strs[MPROC__NAME_MAX + MPROC__IDENT_MAX + MPROC_AUTHKEY_MAX];
  if (read_all(ctl, strs, (size_t)h.name_len + h.ident_len + h.authkey_len)) return -1;
  memcpy(name, strs, h.name_len);
  name[h.name_len] = 0;
  memcpy(ident, strs + h.name_len, h.ident_len);
  ident[h.ident_len] = 0;
  memcpy(key, strs + h.name_len + h.ident_len, h.authkey_len);
  int32_t e = 0;
  if (h.arg_size && !(arg = malloc(h.arg_size))) {
    if (skip_bytes(ctl, h.arg_size)) return -1;
    e = -ENOMEM;
  } else if (h.arg_size && read_all(ctl, arg, h.arg_size)) {
    free(arg);
    return -1;
  }
  if (!e && g_nkids == g_capkids) {
    size_t cap = g_capkids ? g_capkids * 2 : 16;
    fs_child *k = realloc(g_kids, cap * sizeof *k);
    if (k) {
      g_kids = k;
      g_capkids = cap;
    } else {
      e = -ENOMEM;
    }
  }
  if (!e) {
    premake_status(); /* normally made already, after the last request */
    if (g_next_st[0] < 0) e = -errno;
  }
  int have_pidfd = mproc__have_pidfd();
  int death[2] = {-1, -1};
  if (!e && !have_pidfd && mproc__sys.pipe2(death, O_CLOEXEC) < 0) e = -errno;
  pid_t pid = -1;
  /* Decided here, not in the child: a libc call only children make would
   * be bound lazily by the dynamic linker in every one of them. */
  sigset_t none;
  sigemptyset(&none);
  int set_mask = memcmp(&h.mask, &none, sizeof none) != 0;
  cpu_set_t mine;
  int set_cpus = CPU_COUNT(&h.cpus) > 0 && sched_getaffinity(0, sizeof mine, &mine) == 0 &&
                 !CPU_EQUAL(&mine, &h.cpus);
  if (!e) {
    pid_t server = mproc__my_pid();
    pid = mproc__sys.fork();
    if (pid == 0) {
      mproc__child_pdeathsig(server);
      close(ctl);
      /* Closes the status sockets (ours and the other children's) and
       * frees the table; the atfork hook did it already. */
      mproc__forkserver_reset_child();
      if (death[1] >= 0) {
        close(death[0]);
        mproc__set_death_fd(death[1]);
      }
      /* The server runs with default dispositions except these two (see
       * server_main), and with no signal blocked: undo just that, instead
       * of ~64 sigaction calls per child. */
      signal(SIGINT, SIG_DFL);
      signal(SIGPIPE, SIG_DFL);
      if (set_mask) pthread_sigmask(SIG_SETMASK, &h.mask, NULL);
      if (set_cpus) p_setaffinity(0, sizeof h.cpus, &h.cpus);
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
    if (pid < 0) e = -errno;
  }
  free(arg);
  if (death[1] >= 0) close(death[1]);
  int pidfd = death[0];
  if (!e && have_pidfd) {
    pidfd = mproc__sys.pidfd_open(pid, 0);
    if (pidfd < 0) {
      e = -errno;
      kill(pid, SIGKILL);
      while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
      }
    }
  }
  if (e) {
    if (death[0] >= 0) close(death[0]);
    return send_int_fd(ctl, e, -1) ? -1 : 0;
  }
  g_kids[g_nkids++] = (fs_child){
      .pid = pid, .pidfd = pidfd, .is_pidfd = have_pidfd, .stfd = g_next_st[0]};
  /* The requester gets the child's pidfd (its sentinel) and its end of the
   * status socket; without pidfds only the socket, which then serves as
   * the sentinel too. */
  int fds[2] = {pidfd, g_next_st[1]};
  int rc = have_pidfd ? send_int_fds(ctl, (int32_t)pid, fds, 2)
                      : send_int_fds(ctl, (int32_t)pid, fds + 1, 1);
  close(g_next_st[1]);
  g_next_st[0] = g_next_st[1] = -1;
  /* If the requester is gone the child is reaped like any other and its
   * status dropped; the server leaves once ctl reads EOF. */
  premake_status();
  return rc ? -1 : 0;
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
  premake_status();
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
    if (pf[0].revents && serve_one(ctl) < 0) break; /* requester gone */
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

/* Send one request (header, name, identity, key, arg bytes) on ctl, in one
 * sendmsg as a rule. */
static int send_request(int ctl, fs_req *h, struct mproc_process *p,
                        const unsigned char *key) {
  struct iovec iov[5] = {
      {.iov_base = h, .iov_len = sizeof *h},
      {.iov_base = p->name, .iov_len = h->name_len},
      {.iov_base = p->identity, .iov_len = h->ident_len},
      {.iov_base = (void *)key, .iov_len = h->authkey_len},
      {.iov_base = p->arg_copy, .iov_len = p->arg_size},
  };
  return send_iov(ctl, iov, p->arg_size ? 5 : 4);
}

int mproc__forkserver_start(struct mproc_process *p) {
  fs_req h;
  memset(&h, 0, sizeof h);
  h.magic = FS_MAGIC;
  h.name_len = (uint32_t)strlen(p->name);
  h.ident_len = (uint32_t)strlen(p->identity);
  h.daemon = p->daemon;
  h.target = (uint64_t)(uintptr_t)p->target;
  h.arg = (uint64_t)(uintptr_t)p->arg;
  h.arg_size = p->arg_size;
  h.requester = mproc__my_pid();
  h.start_method = mproc__init_start_method();
  /* The server's copy of our key may be stale: send the current one. */
  unsigned char key[MPROC_AUTHKEY_MAX];
  size_t klen = p->authkey_len;
  if (klen) memcpy(key, p->authkey, klen);
  else klen = mproc__authkey_copy(key);
  h.authkey_len = (uint32_t)klen;
  pthread_sigmask(SIG_SETMASK, NULL, &h.mask);
  if (sched_getaffinity(0, sizeof h.cpus, &h.cpus)) CPU_ZERO(&h.cpus);

  /* One round trip on ctl: request out, reply (pid, fds) back. ctl is
   * shared by the process's threads, so the exchange holds g_fs_mu. */
  int32_t pid = 0;
  int fds[2], nfds = 0;
  pthread_mutex_lock(&g_fs_mu);
  int rc = ensure_locked();
  if (rc == 0) {
    rc = send_request(g_fs_ctl, &h, p, key);
    if (rc == -EPIPE || rc == -ECONNRESET) {
      /* The server died under us (nothing of ours reached it): start a
       * new one and try once more. */
      server_forget_locked();
      rc = ensure_locked();
      if (rc == 0) rc = send_request(g_fs_ctl, &h, p, key);
    }
    if (rc == 0) rc = recv_int_fds(g_fs_ctl, &pid, fds, &nfds);
    if (rc && rc != -EMFILE) {
      /* The stream is out of step or the server is gone: drop it (a
       * new one starts on the next request). */
      server_forget_locked();
    }
  }
  pthread_mutex_unlock(&g_fs_mu);
  if (rc == -EMFILE && pid > 0) {
    /* The reply's fds did not fit in our table: the child must go (the
     * server still holds it unreaped, so its pid is still its own). */
    kill(pid, SIGKILL);
  }
  if (rc) return rc == -EPIPE || rc == -ECONNRESET ? MPROC_ECHILDFAIL : rc;
  if (pid <= 0) {
    for (int i = 0; i < nfds; i++) close(fds[i]);
    return pid < 0 ? pid : MPROC_ECHILDFAIL;
  }
  int pidfd, st, is_pidfd = nfds == 2;
  if (nfds == 2) {
    pidfd = fds[0];
    st = fds[1];
  } else if (nfds == 1) {
    /* No pidfds (the server said so by sending none): the status socket,
     * readable once the server reported the exit, is the sentinel. */
    st = fds[0];
    pidfd = fcntl(st, F_DUPFD_CLOEXEC, 0);
    if (pidfd < 0) {
      rc = -errno;
      kill(pid, SIGKILL); /* the server reaps it */
      close(st);
      return rc;
    }
  } else {
    kill(pid, SIGKILL);
    return MPROC_ECHILDFAIL;
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
    if (poll(&pfd, 1, 0) <= 0) return 0; /* EINTR too: not joinable yet */
    /* A signal must not cut this wait short (the report would be lost and
     * the child misreported as -ECHILD): poll again until the deadline. */
    struct timespec dl;
    mproc__deadline(wait, &dl);
    struct pollfd sf = {.fd = p->status_fd, .events = POLLIN};
    int pr;
    do pr = poll(&sf, 1, mproc__deadline_ms(&dl));
    while (pr < 0 && errno == EINTR);
    if (pr <= 0) {
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
  if (g_next_st[0] >= 0) close(g_next_st[0]);
  if (g_next_st[1] >= 0) close(g_next_st[1]);
  g_next_st[0] = g_next_st[1] = -1;
  for (size_t i = 0; i < g_nkids; i++) { /* set only in a server */
    close(g_kids[i].pidfd);
    close(g_kids[i].stfd);
  }
  /* The table's memory is kept (still reachable, reused if this process
   * becomes a server): freeing it would cost every forkserver child a
   * copy-on-write fault in malloc's data. */
  g_nkids = 0;
}
