/*
 * conn.c - Pipe and Connection: framed byte messages over a Unix socket.
 *
 * DESIGN
 * Both Pipe(duplex) and Pipe(one-way) use socketpair(): send() with
 * MSG_NOSIGNAL then reports a dead peer as EPIPE instead of raising SIGPIPE,
 * which a plain pipe(2) cannot do without touching the process's signal
 * disposition. A one-way pair shuts down the unused directions.
 *
 * Receiving never reads past the current frame: the header is read exactly,
 * then exactly the payload, so the fd's readability always matches "a
 * message (or EOF) is waiting" for callers that poll fileno() themselves.
 * State kept across calls: a header already read (after -ETOOSHORT the
 * payload stays in the socket and the next recv returns it). A frame cut by
 * a timeout or a malformed/oversized header leaves the stream out of sync:
 * the connection is marked broken and later receives fail fast.
 *
 * Latency: waking a sleeping process on another CPU costs tens of
 * microseconds on a VM, so a receive waiting for the start of a message
 * first retries the non-blocking read for a bounded 30 us (yielding the CPU
 * between tries, in case the peer shares it), then sleeps in poll(2). The spin adapts: after 8 receives in a row whose spin found
 * nothing, the next 64 receives sleep at once (no CPU burnt on idle or slow
 * peers), and it is never used on a single CPU.
 */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "ipc/conn.h"
#include "ipc/ipc.h"

#define SPIN_RECV_SEC 30e-6
#define SPIN_MISS_LIMIT 8u
#define SPIN_SKIP_COUNT 64u

int mproc__conn_wrap(int fd, int can_read, int can_write, uint64_t max_msg,
                     struct mproc_conn **out) {
  struct mproc_conn *c = calloc(1, sizeof *c);
  if (!c) return -ENOMEM;
  c->magic = CONN_MAGIC;
  c->fd = fd;
  c->can_read = can_read;
  c->can_write = can_write;
  c->max_msg = max_msg;
  *out = c;
  return 0;
}

int mproc__conn_check(const struct mproc_conn *c) {
  if (!c) return -EINVAL;
  if (c->magic == MPROC__DEAD_MAGIC) return MPROC_EDESTROYED;
  if (c->magic != CONN_MAGIC) return -EINVAL;
  if (c->fd < 0) return MPROC_ECLOSED;
  return 0;
}

int mproc_pipe(mproc_conn_t **a, mproc_conn_t **b, int duplex) {
  if (!a || !b || a == b) return -EINVAL;
  *a = *b = NULL;
  int fds[2];
  if (mproc__sys.socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0) return -errno;
  if (!duplex) {
    shutdown(fds[0], SHUT_WR);
    shutdown(fds[1], SHUT_RD);
  }
  int rc = mproc__conn_wrap(fds[0], 1, duplex != 0, 0, a);
  if (rc == 0) rc = mproc__conn_wrap(fds[1], duplex != 0, 1, 0, b);
  if (rc) {
    if (*a) free(*a);
    *a = NULL;
    close(fds[0]);
    close(fds[1]);
  }
  return rc;
}

/* Sleep until fd is readable. 1 ready, 0 deadline passed, <0 error. */
static int wait_in(struct mproc_conn *c, const struct timespec *dl) {
  struct pollfd p = {.fd = c->fd, .events = POLLIN};
  for (;;) {
    int r = poll(&p, 1, mproc__deadline_ms(dl));
    if (r > 0) return 1;
    if (r == 0) {
      if (mproc__deadline_passed(dl)) return 0;
      continue;
    }
    if (errno != EINTR) return -errno;
  }
}

static int sock_err(int e) {
  if (e == ECONNRESET || e == EPIPE || e == ENOTCONN) return MPROC_EEOF;
  return -e;
}

/* Read exactly n bytes of payload (the frame has started). */
static int read_exact(struct mproc_conn *c, unsigned char *p, size_t n,
                      const struct timespec *dl) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = recv(c->fd, p + got, n - got, MSG_DONTWAIT);
    if (r > 0) {
      got += (size_t)r;
      continue;
    }
    if (r == 0) return MPROC_EEOF;
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return sock_err(errno);
    int w = wait_in(c, dl);
    if (w == 0) return -ETIMEDOUT;
    if (w < 0) return w;
  }
  return 0;
}

int mproc__conn_recv_dl(struct mproc_conn *c, void *buf, size_t cap, int alloc, void **out,
                        size_t *len, const struct timespec *dl) {
  if (!c->can_read) return -EPERM;
  if (c->broken) return -ECONNABORTED;
  double spin_end = 0;
  while (!c->hdr_done) {
    uint64_t mlen;
    size_t need;
    int pr = mproc__frame_parse(c->hdr, c->hdr_got, c->max_msg, &mlen, &need);
    if (pr == 0) {
      c->hdr_done = 1;
      c->msg_len = mlen;
      c->hdr_got = 0;
      break;
    }
    if (pr != -EAGAIN) {
      c->broken = 1;
      return pr;
    }
    ssize_t r = recv(c->fd, c->hdr + c->hdr_got, need - c->hdr_got, MSG_DONTWAIT);
    if (r > 0) {
      if (spin_end != 0 && c->hdr_got == 0) c->spin_misses = 0; /* the spin paid off */
      c->hdr_got += (size_t)r;
      continue;
    }
    if (r == 0) {
      if (c->hdr_got) c->broken = 1;
      return MPROC_EEOF;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return sock_err(errno);
    if (c->hdr_got == 0 && !c->spin_skip && mproc__ncpu_online() > 1) {
      /* Spin by retrying the read itself (one syscall per round instead of
       * poll + read), yielding between rounds, for at most SPIN_RECV_SEC. */
      double now = mproc__now_sec();
      if (spin_end == 0) spin_end = now + SPIN_RECV_SEC;
      if (now < spin_end) {
        sched_yield();
        continue;
      }
      if (++c->spin_misses >= SPIN_MISS_LIMIT) {
        c->spin_misses = 0;
        c->spin_skip = SPIN_SKIP_COUNT;
      }
    } else if (c->hdr_got == 0 && c->spin_skip) {
      c->spin_skip--;
    }
    int w = wait_in(c, dl);
    if (w < 0) return w;
    if (w == 0) {
      if (c->hdr_got) c->broken = 1; /* stalled inside a header */
      return -ETIMEDOUT;
    }
  }
  if (c->msg_len > SIZE_MAX / 2) {
    c->broken = 1;
    return -EMSGSIZE;
  }
  size_t n = (size_t)c->msg_len;
  *len = n;
  if (!alloc && n > cap) return MPROC_ETOOSHORT;
  unsigned char *dst = buf;
  if (alloc) {
    dst = malloc(n ? n : 1);
    if (!dst) return -ENOMEM; /* header kept: a recv into a buffer can follow */
  }
  int rc = read_exact(c, dst, n, dl);
  if (rc) {
    if (alloc) free(dst);
    c->broken = 1; /* part of the payload is gone */
    return rc;
  }
  c->hdr_done = 0;
  if (alloc) *out = dst;
  return 0;
}

int mproc__conn_send(struct mproc_conn *c, const void *data, size_t len) {
  if (!c->can_write) return -EPERM;
  if (c->max_msg && len > c->max_msg) return -EMSGSIZE;
  unsigned char hdr[MPROC__FRAME_HDR_MAX];
  size_t hl = mproc__frame_encode(hdr, len);
  struct iovec iov[2] = {{hdr, hl}, {(void *)(uintptr_t)data, len}};
  struct msghdr m = {.msg_iov = iov, .msg_iovlen = len ? 2 : 1};
  size_t left = hl + len;
  while (left) {
    ssize_t r = sendmsg(c->fd, &m, MSG_NOSIGNAL);
    if (r < 0) {
      if (errno == EINTR) continue;
      return sock_err(errno);
    }
    left -= (size_t)r;
    while (r > 0 && m.msg_iovlen) { /* skip what was written */
      if ((size_t)r >= m.msg_iov[0].iov_len) {
        r -= (ssize_t)m.msg_iov[0].iov_len;
        m.msg_iov++;
        m.msg_iovlen--;
      } else {
        m.msg_iov[0].iov_base = (char *)m.msg_iov[0].iov_base + r;
        m.msg_iov[0].iov_len -= (size_t)r;
        r = 0;
      }
    }
  }
  return 0;
}

/* ---- public API ------------------------------------------------------ */

int mproc_conn_send(mproc_conn_t *c, const void *data, size_t len) {
  int rc = mproc__conn_check(c);
  if (rc) return rc;
  if (!data && len) return -EINVAL;
  return mproc__conn_send(c, data, len);
}

int mproc_conn_recv(mproc_conn_t *c, void *buf, size_t cap, size_t *len, double timeout) {
  int rc = mproc__conn_check(c);
  if (rc) return rc;
  if (!len || (!buf && cap) || !mproc__timeout_ok(timeout)) return -EINVAL;
  struct timespec dlb, *dl = mproc__deadline(timeout, &dlb);
  return mproc__conn_recv_dl(c, buf, cap, 0, NULL, len, dl);
}

int mproc_conn_recv_alloc(mproc_conn_t *c, void **data, size_t *len, double timeout) {
  int rc = mproc__conn_check(c);
  if (rc) return rc;
  if (!data || !len || !mproc__timeout_ok(timeout)) return -EINVAL;
  *data = NULL;
  struct timespec dlb, *dl = mproc__deadline(timeout, &dlb);
  return mproc__conn_recv_dl(c, NULL, 0, 1, data, len, dl);
}

int mproc_conn_poll(mproc_conn_t *c, double timeout) {
  int rc = mproc__conn_check(c);
  if (rc) return rc;
  if (!mproc__timeout_ok(timeout)) return -EINVAL;
  if (!c->can_read) return -EPERM;
  if (c->hdr_done || c->broken) return 1;
  struct timespec dlb, *dl = mproc__deadline(timeout, &dlb);
  return wait_in(c, dl);
}

int mproc_conn_fileno(const mproc_conn_t *c) {
  int rc = mproc__conn_check(c);
  return rc ? rc : c->fd;
}

int mproc_conn_set_max_message(mproc_conn_t *c, size_t max) {
  int rc = mproc__conn_check(c);
  if (rc) return rc;
  c->max_msg = max;
  return 0;
}

int mproc_conn_close(mproc_conn_t *c) {
  int rc = mproc__conn_check(c);
  if (rc == MPROC_ECLOSED) return 0;
  if (rc) return rc;
  close(c->fd);
  c->fd = -1;
  return 0;
}

int mproc_conn_destroy(mproc_conn_t *c) {
  if (!c) return 0;
  int rc = mproc__conn_check(c);
  if (rc && rc != MPROC_ECLOSED) return rc;
  if (c->fd >= 0) close(c->fd);
  c->fd = -1;
  c->magic = MPROC__DEAD_MAGIC;
  free(c);
  return 0;
}

int mproc__conn_buffered(struct mproc_conn *c) {
  int rc = mproc__conn_check(c);
  if (rc) return rc;
  return c->hdr_done || c->broken;
}

int mproc__conn_fd(const struct mproc_conn *c) { return c->fd; }
