/* transport.c - sockets, mutual HMAC authentication and framing for the
 * manager (see transport.h).
 *
 * Why the manager has its own: it needs (1) a listening socket created in
 * the owner and inherited by the forked server, so the owner knows the
 * address (and a TCP port 0's real port) before the server runs, without the
 * socket file being removed when the owner drops its copy; (2) the handshake
 * to run on each client's own server thread with its own deadline, so a
 * client stalling mid-handshake never delays other clients; (3) a frame
 * timeout that starts at a frame's first byte, so an idle client may wait
 * forever while a client that stops mid-frame is dropped. The IPC layer's
 * Listener/Client was not on main when this was written; its handshake is
 * the same construction (HMAC-SHA256 challenge-response both ways). */
#include "manager/transport.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "internal.h"
#include "platform/platform.h"

#define NONCE 32
#define MAC crypto_auth_hmacsha256_BYTES
static const char HELLO[8] = {'M', 'P', 'M', 'G', 'R', 1, 0, 0};

int mproc__mt_is_tcp(const char *addr) { return addr && strncmp(addr, "tcp:", 4) == 0; }

/* Parse into a sockaddr. For TCP, host and port are resolved numerically or
 * by getaddrinfo (IPv4 and IPv6 literals in [brackets]). */
static int parse(const char *addr, struct sockaddr_storage *ss, socklen_t *sl) {
  memset(ss, 0, sizeof *ss);
  if (!addr) return -EINVAL;
  if (strncmp(addr, "unix:", 5) == 0) {
    const char *path = addr + 5;
    struct sockaddr_un *un = (struct sockaddr_un *)ss;
    size_t n = strlen(path);
    if (n == 0) return -EINVAL;
    if (n >= sizeof un->sun_path) return -ENAMETOOLONG;
    un->sun_family = AF_UNIX;
    memcpy(un->sun_path, path, n);
    if (path[0] == '@') un->sun_path[0] = 0; /* abstract namespace */
    *sl = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (path[0] == '@' ? 0 : 1));
    return 0;
  }
  if (!mproc__mt_is_tcp(addr)) return -EINVAL;
  char host[256];
  const char *hp = addr + 4, *colon = strrchr(hp, ':');
  if (!colon || colon == hp || (size_t)(colon - hp) >= sizeof host) return -EINVAL;
  memcpy(host, hp, (size_t)(colon - hp));
  host[colon - hp] = 0;
  char *h = host;
  if (h[0] == '[') {
    size_t hl = strlen(h);
    if (hl < 3 || h[hl - 1] != ']') return -EINVAL;
    h[hl - 1] = 0;
    h++;
  }
  char *end;
  long port = strtol(colon + 1, &end, 10);
  if (*end || end == colon + 1 || port < 0 || port > 65535) return -EINVAL;
  struct addrinfo hints = {0}, *res;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  char ps[8];
  snprintf(ps, sizeof ps, "%ld", port);
  if (getaddrinfo(h, ps, &hints, &res) != 0 || !res) return -EINVAL;
  memcpy(ss, res->ai_addr, res->ai_addrlen);
  *sl = res->ai_addrlen;
  freeaddrinfo(res);
  return 0;
}

int mproc__mt_listen(const char *addr, int backlog, int *fd, char *bound, size_t cap) {
  struct sockaddr_storage ss;
  socklen_t sl;
  int rc = parse(addr, &ss, &sl);
  if (rc) return rc;
  int s = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return -errno;
  if (ss.ss_family != AF_UNIX) {
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  } else if (addr[5] != '@') {
    /* A stale socket file from a dead server would block the bind. Only
     * remove it if nobody answers on it. */
    int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe >= 0) {
      if (connect(probe, (struct sockaddr *)&ss, sl) < 0 && errno == ECONNREFUSED)
        unlink(addr + 5);
      close(probe);
    }
  }
  if (bind(s, (struct sockaddr *)&ss, sl) < 0 || listen(s, backlog) < 0) {
    rc = -errno;
    close(s);
    return rc;
  }
  if (bound) {
    if (ss.ss_family == AF_UNIX) {
      snprintf(bound, cap, "%s", addr);
    } else {
      struct sockaddr_storage got;
      socklen_t gl = sizeof got;
      getsockname(s, (struct sockaddr *)&got, &gl);
      char host[128], port[16];
      getnameinfo((struct sockaddr *)&got, gl, host, sizeof host, port, sizeof port,
                  NI_NUMERICHOST | NI_NUMERICSERV);
      snprintf(bound, cap, got.ss_family == AF_INET6 ? "tcp:[%s]:%s" : "tcp:%s:%s", host, port);
    }
  }
  *fd = s;
  return 0;
}

/* Wait for fd to be ready for events until deadline. */
static int wait_fd(int fd, short events, const struct timespec *dl) {
  for (;;) {
    struct pollfd p = {fd, events, 0};
    int r = poll(&p, 1, mproc__deadline_ms(dl));
    if (r > 0) return 0;
    if (r == 0) return -ETIMEDOUT;
    if (errno != EINTR) return -errno;
  }
}

int mproc__mt_connect(const char *addr, const struct timespec *deadline, int *fd) {
  struct sockaddr_storage ss;
  socklen_t sl;
  int rc = parse(addr, &ss, &sl);
  if (rc) return rc;
  int s = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (s < 0) return -errno;
  if (connect(s, (struct sockaddr *)&ss, sl) < 0) {
    if (errno != EINPROGRESS && errno != EAGAIN) {
      rc = -errno;
      close(s);
      return rc;
    }
    if ((rc = wait_fd(s, POLLOUT, deadline))) {
      close(s);
      return rc;
    }
    int err = 0;
    socklen_t el = sizeof err;
    getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &el);
    if (err) {
      close(s);
      return -err;
    }
  }
  if (ss.ss_family != AF_UNIX) {
    int one = 1;
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  *fd = s;
  return 0;
}

/* Read exactly n bytes (socket may be blocking or not). */
static int read_full(int fd, void *buf, size_t n, const struct timespec *dl) {
  char *p = buf;
  while (n) {
    ssize_t r = recv(fd, p, n, MSG_DONTWAIT);
    if (r > 0) {
      p += r;
      n -= (size_t)r;
      continue;
    }
    if (r == 0) return MPROC_EEOF;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      int rc = wait_fd(fd, POLLIN, dl);
      if (rc) return rc;
      continue;
    }
    return errno == ECONNRESET || errno == EPIPE ? MPROC_EEOF : -errno;
  }
  return 0;
}

static int write_full(int fd, const void *buf, size_t n, const struct timespec *dl) {
  const char *p = buf;
  while (n) {
    ssize_t r = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (r >= 0) {
      p += r;
      n -= (size_t)r;
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      int rc = wait_fd(fd, POLLOUT, dl);
      if (rc) return rc;
      continue;
    }
    return errno == EPIPE || errno == ECONNRESET ? MPROC_EEOF : -errno;
  }
  return 0;
}

static void hmac(unsigned char out[MAC], const void *key, size_t klen, const char *label,
                 const unsigned char *a, const unsigned char *b) {
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, key, klen);
  crypto_auth_hmacsha256_update(&st, (const unsigned char *)label, strlen(label));
  crypto_auth_hmacsha256_update(&st, a, NONCE);
  crypto_auth_hmacsha256_update(&st, b, NONCE);
  crypto_auth_hmacsha256_final(&st, out);
  sodium_memzero(&st, sizeof st);
}

int mproc__mt_auth_server(int fd, const void *key, size_t klen, const struct timespec *dl) {
  if (sodium_init() < 0) return -ENOSYS;
  unsigned char hello[8 + NONCE], resp[MAC + NONCE], mac[MAC];
  memcpy(hello, HELLO, 8);
  randombytes_buf(hello + 8, NONCE);
  int rc = write_full(fd, hello, sizeof hello, dl);
  if (!rc) rc = read_full(fd, resp, sizeof resp, dl);
  if (rc) return rc;
  hmac(mac, key, klen, "mproc-client", hello + 8, resp + MAC);
  if (sodium_memcmp(mac, resp, MAC) != 0) return MPROC_EAUTH;
  hmac(mac, key, klen, "mproc-server", resp + MAC, hello + 8);
  return write_full(fd, mac, MAC, dl);
}

int mproc__mt_auth_client(int fd, const void *key, size_t klen, const struct timespec *dl) {
  if (sodium_init() < 0) return -ENOSYS;
  unsigned char hello[8 + NONCE], resp[MAC + NONCE], mac[MAC], want[MAC];
  int rc = read_full(fd, hello, sizeof hello, dl);
  if (rc) return rc;
  if (memcmp(hello, HELLO, 8) != 0) return MPROC_EPROTO;
  randombytes_buf(resp + MAC, NONCE);
  hmac(resp, key, klen, "mproc-client", hello + 8, resp + MAC);
  if ((rc = write_full(fd, resp, sizeof resp, dl))) return rc;
  rc = read_full(fd, mac, MAC, dl);
  if (rc == MPROC_EEOF) return MPROC_EAUTH; /* the server hung up on our proof */
  if (rc) return rc;
  hmac(want, key, klen, "mproc-server", resp + MAC, hello + 8);
  return sodium_memcmp(mac, want, MAC) == 0 ? 0 : MPROC_EAUTH;
}

int mproc__mt_send(int fd, const void *buf, size_t len, const struct timespec *dl) {
  if (len > UINT32_MAX) return -EMSGSIZE;
  unsigned char h[4] = {(unsigned char)len, (unsigned char)(len >> 8),
                        (unsigned char)(len >> 16), (unsigned char)(len >> 24)};
  /* One syscall for small frames (latency), two for big ones (no copy). */
  if (len <= 4096) {
    unsigned char tmp[4 + 4096];
    memcpy(tmp, h, 4);
    memcpy(tmp + 4, buf, len);
    return write_full(fd, tmp, 4 + len, dl);
  }
  int rc = write_full(fd, h, 4, dl);
  return rc ? rc : write_full(fd, buf, len, dl);
}

int mproc__mt_recv(int fd, size_t max, void **out, size_t *len, const struct timespec *first,
                   double frame_timeout) {
  unsigned char h[4];
  int rc = wait_fd(fd, POLLIN, first);
  if (rc) return rc;
  struct timespec dl;
  mproc__deadline(frame_timeout, &dl);
  if ((rc = read_full(fd, h, 4, &dl))) return rc;
  size_t n = (size_t)h[0] | ((size_t)h[1] << 8) | ((size_t)h[2] << 16) | ((size_t)h[3] << 24);
  if (n > max) return -EMSGSIZE;
  void *b = malloc(n ? n : 1);
  if (!b) return -ENOMEM;
  if ((rc = read_full(fd, b, n, &dl))) {
    free(b);
    return rc;
  }
  *out = b;
  *len = n;
  return 0;
}
