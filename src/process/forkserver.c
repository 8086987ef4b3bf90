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
 *  - The requester watches its server through the server's pidfd or,
 *    without pidfds, a death pipe the server holds (confirmed by waitid
 *    WNOWAIT: the server is our own child). A dead server is replaced at
 *    the next start.
 *  - Protocol (AF_UNIX stream sockets, no file-system names): one socket
 *    pair "ctl" between requester and server; one round trip per start.
 *    The requester sends fs_req, name, identity, authkey and arg bytes in
 *    one sendmsg; the server replies with an int32 pid (or -errno)
 *    carrying two fds (SCM_RIGHTS): the child's pidfd and the requester's
 *    end of a per-child "status socket" on which the server later writes
 *    the int32 exit code when it reaped the child. The server opens the
 *    pidfd before it can reap the child, so the pid is never stale. ctl is
 *    shared by the requester's threads: a start holds g_fs_mu for its
 *    whole exchange (starts are serialised by the registry lock anyway).
 *    The requester waits for the reply in poll, then reads it: blocked in
 *    recvmsg it would also be woken each time the server read a part of
 *    the request.
 *  - No fork on a start's critical path: the server keeps a spare, a child
 *    forked ahead that waits on a socket of its own (as Android's zygote
 *    keeps USAP processes). A start hands the request to the spare, which
 *    becomes the child; the server replies, then, idle again, makes the
 *    next status socket pair and the next spare. The spare costs one idle
 *    process per server, its pages shared copy-on-write with the server.
 *    A spare killed while it waits is reaped at once and replaced by the
 *    next start. The child only undoes the server's two signal
 *    dispositions (SIGINT, SIGPIPE ignored) instead of resetting all 64,
 *    and sets a signal mask only when the requester's was not empty.
 *  - A child gets what a fork child of the requesting thread would have:
 *    its signal mask and its CPU affinity (set only when it differs from
 *    the server's, which is the process's affinity when the server
 *    started), not the server's.
 *  - The requester's sentinel is that pidfd (readable when the child
 *    exits). Exit codes: with pidfds the requester puts a 4-byte "exit
 *    slot" in the shared heap into the request; a child returning from its
 *    target stores SET|code there just before _exit, so join needs only
 *    the pidfd: one wake-up, and no wait for the server to reap and relay.
 *    A child that ended otherwise (a signal, exit() in the target) leaves
 *    the slot empty and its code comes on the status socket. The slot is
 *    freed once the child can no longer write it. Without pidfds the
 *    status socket is the sentinel and the only channel.
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

#include "heap/heap.h"
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
  uint64_t exit_slot;  /* heap word for the child's exit code, or 0 */
} fs_req;

static pthread_mutex_t g_fs_mu = PTHREAD_MUTEX_INITIALIZER;
static _Atomic pid_t g_fs_pid; /* server pid, 0 when none */
static int g_fs_pidfd = -1; /* pidfd of the server, or the read end of its
                              death pipe (EOF = gone) without pidfds */
static int g_fs_is_pidfd;   /* g_fs_pidfd above is a real pidfd */
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
  /* Wait in poll, not in recvmsg: a thread blocked in recvmsg is also
   * woken each time the peer reads what we sent (the socket's write-space
   * wake-up), poll only for what it asked for. */
  struct pollfd pfd = {.fd = sock, .events = POLLIN};
  while (poll(&pfd, 1, -1) < 0 && errno == EINTR) {
  }
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

/* Server side: the spare, a child forked ahead of the next request that
 * waits for it on `job` (a socket of its own). A start then costs a hand-off
 * and a reply, not a fork: the fork, and the child's own set-up (atfork
 * handlers, PR_SET_PDEATHSIG, the page faults of both), happen while the
 * server is idle. Android's zygote keeps a pool of such processes (USAP). */
typedef struct fs_spare {
  pid_t pid;    /* 0 when there is none */
  int pidfd;    /* its pidfd, or its death pipe's read end */
  int is_pidfd; /* pidfd above is a real pidfd */
  int job;      /* server's end of the socket the spare reads its job from */
} fs_spare;
#define SPARE_NONE ((fs_spare){.pid = 0, .pidfd = -1, .is_pidfd = 0, .job = -1})
static fs_spare g_spare = {.pid = 0, .pidfd = -1, .is_pidfd = 0, .job = -1};
static int g_srv_ctl = -1; /* server side: its end of ctl (children close it) */

/* What the server sends a spare: the request as received, plus the two
 * decisions taken in the server; then name, identity, key and arg bytes. */
typedef struct fs_job {
  fs_req h;
  int32_t set_mask; /* restore h.mask */
  int32_t set_cpus; /* apply h.cpus */
} fs_job;

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

/* ---- the spare ---- */

/* The spare's life: wait for a job, become that child. A job that does not
 * arrive whole (the server died or dropped us) ends the spare quietly. */
_Noreturn static void spare_main(int jfd) {
  fs_job j;
  char strs[MPROC__NAME_MAX + MPROC__IDENT_MAX + MPROC_AUTHKEY_MAX];
  char name[MPROC__NAME_MAX + 1], ident[MPROC__IDENT_MAX + 1];
  unsigned char key[MPROC_AUTHKEY_MAX];
  char *arg = NULL;
  const fs_req *h = &j.h;
  if (read_all(jfd, &j, sizeof j) || h->name_len > MPROC__NAME_MAX ||
      h->ident_len > MPROC__IDENT_MAX || h->authkey_len > MPROC_AUTHKEY_MAX ||
      h->arg_size > MPROC__ARG_MAX ||
      read_all(jfd, strs, (size_t)h->name_len + h->ident_len + h->authkey_len) ||
      (h->arg_size && (!(arg = malloc(h->arg_size)) || read_all(jfd, arg, h->arg_size))))
    _exit(0);
  close(jfd);
  memcpy(name, strs, h->name_len);
  name[h->name_len] = 0;
  memcpy(ident, strs + h->name_len, h->ident_len);
  ident[h->ident_len] = 0;
  memcpy(key, strs + h->name_len + h->ident_len, h->authkey_len);
  /* The server runs with default dispositions except these two (see
   * server_main), and with no signal blocked: undo just that, instead of
   * ~64 sigaction calls per child. While it waited, the spare ignored
   * Ctrl-C like the server. */
  signal(SIGINT, SIG_DFL);
  signal(SIGPIPE, SIG_DFL);
  if (j.set_mask) pthread_sigmask(SIG_SETMASK, &h->mask, NULL);
  if (j.set_cpus) p_setaffinity(0, sizeof h->cpus, &h->cpus);
  mproc__child_spec spec = {
      .target = (mproc_target_fn)(uintptr_t)h->target,
      .arg = h->arg_size ? (void *)arg : (void *)(uintptr_t)h->arg,
      .name = name,
      .identity = ident,
      .daemon = h->daemon,
      .parent_pid = h->requester,
      .start_method = h->start_method,
      .authkey = h->authkey_len ? key : NULL,
      .authkey_len = h->authkey_len,
      .exit_slot = (_Atomic uint32_t *)(uintptr_t)h->exit_slot,
  };
  mproc__child_main(&spec);
}

/* Fork a spare if there is none. 0 or -errno (then there is none). */
static int spare_make(void) {
  if (g_spare.pid) return 0;
  int have_pidfd = mproc__have_pidfd();
  int jv[2], death[2] = {-1, -1};
  if (mproc__sys.socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, jv) < 0) return -errno;
  if (!have_pidfd && mproc__sys.pipe2(death, O_CLOEXEC) < 0) {
    int e = -errno;
    close(jv[0]);
    close(jv[1]);
    return e;
  }
  pid_t server = mproc__my_pid();
  pid_t pid = mproc__sys.fork();
  if (pid == 0) {
    mproc__child_pdeathsig(server);
    close(g_srv_ctl);
    /* Closes the status sockets (ours and the other children's) and
     * frees the table; the atfork hook did it already. */
    mproc__forkserver_reset_child();
    close(jv[1]);
    if (death[1] >= 0) {
      close(death[0]);
      mproc__set_death_fd(death[1]);
    }
    spare_main(jv[0]);
  }
  int e = pid < 0 ? -errno : 0;
  close(jv[0]);
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
    close(jv[1]);
    return e;
  }
  g_spare = (fs_spare){.pid = pid, .pidfd = pidfd, .is_pidfd = have_pidfd, .job = jv[1]};
  return 0;
}

/* Kill and reap the spare, if any (it died, or the server is leaving). */
static void spare_drop(void) {
  if (!g_spare.pid) return;
  close(g_spare.job);
  kill(g_spare.pid, SIGKILL); /* not reaped yet: the pid is still its own */
  siginfo_t si;
  int r;
  do r = waitid(P_PID, (id_t)g_spare.pid, &si, WEXITED);
  while (r < 0 && errno == EINTR);
  close(g_spare.pidfd);
  g_spare = SPARE_NONE;
}

/* Read one request from ctl, fork its child and reply on ctl. Returns -1
 * when ctl is broken (the requester is gone, or the stream is out of step):
 * the server then exits. */
static int serve_one(int ctl) {
  fs_req h;
  char *arg = NULL;
  if (read_all(ctl, &h, sizeof h) || h.magic != FS_MAGIC ||
      h.name_len > MPROC__NAME_MAX || h.ident_len > MPROC__IDENT_MAX ||
      h.arg_size > MPROC__ARG_MAX || h.authkey_len > MPROC_AUTHKEY_MAX)
    return -1;
  /* name, identity and key in one read (they came in one sendmsg); the
   * spare takes them apart. */
  char strs[MPROC__NAME_MAX + MPROC__IDENT_MAX + MPROC_AUTHKEY_MAX];
  if (read_all(ctl, strs, (size_t)h.name_len + h.ident_len + h.authkey_len)) return -1;
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
  /* Decided here, not in the child: a libc call only children make would
   * be bound lazily by the dynamic linker in every one of them. */
  fs_job job = {.h = h};
  /* sigisemptyset looks at signals only: glibc's sigemptyset clears just
   * the words the kernel uses, so a memcmp would read undefined padding. */
  job.set_mask = !sigisemptyset(&h.mask);
  cpu_set_t mine;
  job.set_cpus = CPU_COUNT(&h.cpus) > 0 && sched_getaffinity(0, sizeof mine, &mine) == 0 &&
                 !CPU_EQUAL(&mine, &h.cpus);
  pid_t pid = -1;
  int pidfd = -1, is_pidfd = 0;
  /* Hand the job to the spare (made now if there is none). A spare that
   * died while waiting is replaced once. */
  for (int tries = 0; !e; tries++) {
    if (!g_spare.pid && (e = spare_make()) != 0) break;
    struct iovec iov[3] = {
        {.iov_base = &job, .iov_len = sizeof job},
        {.iov_base = strs, .iov_len = (size_t)h.name_len + h.ident_len + h.authkey_len},
        {.iov_base = arg, .iov_len = (size_t)h.arg_size},
    };
    int rc = send_iov(g_spare.job, iov, h.arg_size ? 3 : 2);
    if (rc == 0) {
      pid = g_spare.pid;
      pidfd = g_spare.pidfd;
      is_pidfd = g_spare.is_pidfd;
      close(g_spare.job);
      g_spare = SPARE_NONE;
      break;
    }
    spare_drop();
    if (tries) e = rc;
  }
  free(arg);
  if (e) return send_int_fd(ctl, e, -1) ? -1 : 0;
  g_kids[g_nkids++] = (fs_child){
      .pid = pid, .pidfd = pidfd, .is_pidfd = is_pidfd, .stfd = g_next_st[0]};
  /* The requester gets the child's pidfd (its sentinel) and its end of the
   * status socket; without pidfds only the socket, which then serves as
   * the sentinel too. */
  int fds[2] = {pidfd, g_next_st[1]};
  int rc = is_pidfd ? send_int_fds(ctl, (int32_t)pid, fds, 2)
                    : send_int_fds(ctl, (int32_t)pid, fds + 1, 1);
  close(g_next_st[1]);
  g_next_st[0] = g_next_st[1] = -1;
  /* If the requester is gone the child is reaped like any other and its
   * status dropped; the server leaves once ctl reads EOF. Then, idle
   * again: everything the next start needs. */
  premake_status();
  spare_make();
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
  g_srv_ctl = ctl;
  premake_status();
  spare_make(); /* even the first start needs no fork */
  struct pollfd *pf = NULL;
  size_t cap = 0;
  for (;;) {
    if (cap < g_nkids + 2) {
      cap = (g_nkids + 2) * 2;
      struct pollfd *n = realloc(pf, cap * sizeof *n);
      if (!n) _exit(1);
      pf = n;
    }
    pf[0] = (struct pollfd){.fd = ctl, .events = POLLIN};
    /* The spare is watched too: one killed while it waited is reaped at
     * once (the next start makes another). A negative fd is ignored. */
    pf[1] = (struct pollfd){.fd = g_spare.pid ? g_spare.pidfd : -1, .events = POLLIN};
    int slow = 0; /* some kid can only be polled for */
    for (size_t i = 0; i < g_nkids; i++) {
      pf[i + 2] = (struct pollfd){.fd = g_kids[i].pipe_eof ? -1 : g_kids[i].pidfd,
                                  .events = POLLIN};
      slow |= g_kids[i].pipe_eof;
    }
    size_t n = g_nkids + 2;
    int r = poll(pf, n, slow ? 20 : -1);
    if (r < 0) {
      if (errno == EINTR) continue;
      break;
    }
    /* Children first (back to front: reap_kid moves the last one). */
    for (size_t i = n - 1; i >= 2; i--) {
      fs_child *k = &g_kids[i - 2];
      if (pf[i].revents && k->is_pidfd) reap_kid(i - 2, 1);
      else if (pf[i].revents || k->pipe_eof) {
        if (!reap_kid(i - 2, 0)) k->pipe_eof = 1;
      }
    }
    if (pf[1].revents) spare_drop();
    if (pf[0].revents && serve_one(ctl) < 0) break; /* requester gone */
  }
  /* Our children die with us (their PR_SET_PDEATHSIG); the spare is
   * reaped here, so that the server's own reaper sees no stray process. */
  spare_drop();
  _exit(0);
}

/* ---- requester side ---- */

typedef struct srv_ctx {
  int sv[2];    /* [0] requester end, [1] server end */
  int death[2]; /* without pidfds: the server's death pipe, else -1 */
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
    if (ctx->death[1] >= 0) {
      close(ctx->death[0]);
      mproc__set_death_fd(ctx->death[1]); /* our children close it */
    }
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
    do r = g_fs_is_pidfd ? waitid(P_PIDFD, (id_t)g_fs_pidfd, &si, WEXITED)
                               : waitid(P_PID, (id_t)g_fs_pid, &si, WEXITED);
    while (r < 0 && errno == EINTR);
    close(g_fs_pidfd);
  }
  g_fs_pidfd = -1;
  g_fs_pid = 0;
}

/* Is the server (our own child) gone? Its pidfd or death pipe says so;
 * without pidfds ask waitid too: a spare the server forked just before it
 * died still holds the pipe (and ctl) for a moment, until it has set
 * itself up and seen the server gone. */
static int server_gone_locked(void) {
  struct pollfd pfd = {.fd = g_fs_pidfd, .events = POLLIN};
  if (poll(&pfd, 1, 0) != 0) return 1;
  if (g_fs_is_pidfd) return 0;
  siginfo_t si;
  si.si_pid = 0;
  if (waitid(P_PID, (id_t)g_fs_pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0)
    return errno == ECHILD; /* reaped behind our back: gone too */
  return si.si_pid != 0;
}

static int ensure_locked(void) {
  if (g_fs_pid) {
    /* Still there? A server that died (killed by hand) is replaced. */
    if (!server_gone_locked()) return 0;
    server_forget_locked();
  }
  int rc = mproc__ensure_init(); /* the heap must exist before the fork */
  if (rc) return rc;
  int have_pidfd = mproc__have_pidfd(); /* probed here, for the server to inherit */
  srv_ctx ctx = {.parent = getpid(), .pid = -1, .death = {-1, -1}};
  if (mproc__sys.socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ctx.sv) < 0)
    return -errno;
  /* Without pidfds the server is watched through a death pipe: it holds
   * the write end, so ours reads EOF once it is gone. */
  if (!have_pidfd && mproc__sys.pipe2(ctx.death, O_CLOEXEC) < 0) {
    rc = -errno;
    close(ctx.sv[0]);
    close(ctx.sv[1]);
    return rc;
  }
  mproc__flush_std();
  rc = mproc__run_on_long_lived_thread(server_fork_fn, &ctx);
  close(ctx.sv[1]);
  if (ctx.death[1] >= 0) close(ctx.death[1]);
  if (rc) {
    close(ctx.sv[0]);
    if (ctx.death[0] >= 0) close(ctx.death[0]);
    return rc;
  }
  int fd = ctx.death[0];
  if (have_pidfd && (fd = mproc__sys.pidfd_open(ctx.pid, 0)) < 0) {
    rc = -errno;
    kill(ctx.pid, SIGKILL);
    while (waitpid(ctx.pid, NULL, 0) < 0 && errno == EINTR) {
    }
    close(ctx.sv[0]);
    return rc;
  }
  g_fs_pid = ctx.pid;
  g_fs_pidfd = fd;
  g_fs_is_pidfd = have_pidfd;
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
  /* With pidfds, join waits on the child's pidfd and reads the code the
   * child left here; the status socket stays as the fallback (a child
   * killed by a signal, or one that called exit() itself). No slot when the
   * heap is full: the fallback alone still works. */
  _Atomic uint32_t *slot = NULL;
  if (mproc__have_pidfd() && mproc__heap_alloc(sizeof *slot, (void **)&slot) == 0)
    atomic_store_explicit(slot, 0, memory_order_relaxed);
  else
    slot = NULL;
  h.exit_slot = (uint64_t)(uintptr_t)slot;

  /* One round trip on ctl: request out, reply (pid, fds) back. ctl is
   * shared by the process's threads, so the exchange holds g_fs_mu. */
  int32_t pid = 0;
  int fds[2], nfds = 0, sent = 0;
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
    sent = rc == 0;
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
  /* The slot goes back to the heap only when no child can write it: no
   * request reached the server, or the server said it forked none. Where a
   * child may still be running (rare failures below), its 4 bytes stay. */
  if (rc) {
    if (!sent && slot) mproc__heap_free((void *)slot);
    return rc == -EPIPE || rc == -ECONNRESET ? MPROC_ECHILDFAIL : rc;
  }
  if (pid <= 0) {
    for (int i = 0; i < nfds; i++) close(fds[i]);
    if (slot) mproc__heap_free((void *)slot);
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
  p->exit_slot = is_pidfd ? slot : NULL; /* without a pidfd: never read */
  return 0;
}

/* Give p's exit slot back to the heap once its child cannot write it any
 * more (its pidfd is readable, waiting at most `wait_ms`); otherwise leave
 * those 4 bytes to the heap rather than risk a write into a reused block. */
static void slot_release(struct mproc_process *p, int wait_ms) {
  if (!p->exit_slot) return;
  struct pollfd pfd = {.fd = p->pidfd, .events = POLLIN};
  int r;
  do r = poll(&pfd, 1, wait_ms);
  while (r < 0 && errno == EINTR);
  if (r > 0) mproc__heap_free((void *)p->exit_slot);
  p->exit_slot = NULL;
}

int mproc__forkserver_poll(struct mproc_process *p, double wait, int *code) {
  if (p->exit_slot) {
    /* Joinable once the pidfd fires; the child's own report is then
     * already in its slot unless it did not return from its target. */
    struct pollfd pfd = {.fd = p->pidfd, .events = POLLIN};
    if (poll(&pfd, 1, 0) <= 0) return 0; /* EINTR too: not joinable yet */
    uint32_t v = atomic_load_explicit(p->exit_slot, memory_order_acquire);
    if (v & MPROC__EXIT_SLOT_SET) {
      *code = (int)(v & 0xff);
      slot_release(p, 0);
      return 1;
    }
  }
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
      slot_release(p, 0);
      return 1;
    }
    do r = recv(p->status_fd, &v, sizeof v, MSG_WAITALL);
    while (r < 0 && errno == EINTR);
  }
  if (r == (ssize_t)sizeof v) {
    *code = v;
    slot_release(p, 0); /* the server reaped it */
  } else {
    *code = -SIGKILL; /* the server died: its children were SIGKILLed */
    slot_release(p, 1000); /* a moment for that SIGKILL to land */
  }
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
  if (g_spare.pid) { /* a server's spare: not ours */
    close(g_spare.pidfd);
    close(g_spare.job);
  }
  g_spare = SPARE_NONE;
  for (size_t i = 0; i < g_nkids; i++) { /* set only in a server */
    close(g_kids[i].pidfd);
    close(g_kids[i].stfd);
  }
  /* The table's memory is kept (still reachable, reused if this process
   * becomes a server): freeing it would cost every forkserver child a
   * copy-on-write fault in malloc's data. */
  g_nkids = 0;
}
