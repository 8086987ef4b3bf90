/*
 * listener.c - Listener and Client (Python's multiprocessing.connection):
 * Unix-socket and TCP endpoints whose connections start with the authkey
 * handshake of auth.c.
 *
 * Addresses: "unix:/path", "/path" (filesystem Unix socket), "unix:@name"
 * (abstract namespace, no file), "tcp:HOST:PORT" (IPv4 literal or name;
 * port 0 = any free port, mproc_listener_address() reports the real one).
 *
 * DESIGN
 * accept() runs the handshake inline with its own deadline
 * (handshake_timeout): a client that connects and stalls, sends garbage or
 * hangs up mid-frame costs at most that long, is closed, and accept returns
 * the error so the caller can loop. Connections get max_message (default
 * 64 MiB) so a hostile peer cannot make the receiver allocate without bound.
 * A filesystem socket left by an earlier run is replaced when it is a
 * socket (never another kind of file), and removed by the creating process
 * at destroy.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "internal.h"
#include "ipc/conn.h"
#include "platform/platform.h"

#define L_MAGIC MPROC__MAGIC('m', 'l', 's', 'n')
#define DEFAULT_MAX_MSG ((size_t)64 << 20)
#define DEFAULT_HS_TIMEOUT 10.0
#define MAX_KEY 1024

typedef struct addr {
  struct sockaddr_storage ss;
  socklen_t len;
  int family;
  char path[sizeof(((struct sockaddr_un *)0)->sun_path)]; /* unix file, or "" */
} addr;

struct mproc_listener {
  uint32_t magic;         /* L_MAGIC, MPROC__DEAD_MAGIC after destroy */
  int fd;                 /* listening socket */
  pid_t owner;            /* creator: only it unlinks the socket file */
  addr a;                 /* bound address */
  char name[160];         /* address string with the real port */
  unsigned char *key;     /* copy of the authkey, or NULL */
  size_t keylen;
  size_t max_msg;         /* for accepted connections */
  double hs_timeout;      /* handshake deadline */
};

static int parse_addr(const char *s, addr *a) {
  memset(a, 0, sizeof *a);
  if (!s || !*s) return -EINVAL;
  if (strncmp(s, "tcp:", 4) == 0) {
    const char *hp = s + 4, *colon = strrchr(hp, ':');
    if (!colon || colon == hp || !colon[1]) return -EINVAL;
    char host[128], *end;
    if ((size_t)(colon - hp) >= sizeof host) return -ENAMETOOLONG;
    memcpy(host, hp, (size_t)(colon - hp));
    host[colon - hp] = 0;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535) return -EINVAL;
    struct sockaddr_in *in = (struct sockaddr_in *)&a->ss;
    in->sin_family = AF_INET;
    in->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &in->sin_addr) != 1) {
      struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res;
      if (getaddrinfo(host, NULL, &hints, &res) != 0 || !res) return -ENOENT;
      in->sin_addr = ((struct sockaddr_in *)res->ai_addr)->sin_addr;
      freeaddrinfo(res);
    }
    a->len = sizeof *in;
    a->family = AF_INET;
    return 0;
  }
  const char *p = strncmp(s, "unix:", 5) == 0 ? s + 5 : s;
  if (p == s && *p != '/') return -EINVAL;
  struct sockaddr_un *un = (struct sockaddr_un *)&a->ss;
  un->sun_family = AF_UNIX;
  size_t n = strlen(p);
  if (n == 0) return -EINVAL;
  if (n >= sizeof un->sun_path) return -ENAMETOOLONG;
  if (p[0] == '@') { /* abstract: leading NUL, no file */
    if (n < 2) return -EINVAL;
    memcpy(un->sun_path + 1, p + 1, n - 1);
    a->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
  } else {
    memcpy(un->sun_path, p, n);
    memcpy(a->path, p, n + 1);
    a->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
  }
  a->family = AF_UNIX;
  return 0;
}

static int check_opts(const mproc_conn_opts *o) {
  if (!o) return 0;
  if (o->authkey && (o->authkey_len == 0 || o->authkey_len > MAX_KEY)) return -EINVAL;
  if (!o->authkey && o->authkey_len) return -EINVAL;
  if (o->backlog < 0 || o->handshake_timeout < 0 || o->handshake_timeout > 1e9) return -EINVAL;
  return 0;
}

static double hs_timeout(const mproc_conn_opts *o) {
  return o && o->handshake_timeout > 0 ? o->handshake_timeout : DEFAULT_HS_TIMEOUT;
}

int mproc_listener_create(mproc_listener_t **out, const char *address,
                          const mproc_conn_opts *opts) {
  if (!out) return -EINVAL;
  *out = NULL;
  int rc = check_opts(opts);
  if (rc) return rc;
  mproc_listener_t *l = calloc(1, sizeof *l);
  if (!l) return -ENOMEM;
  rc = parse_addr(address, &l->a);
  if (rc) goto fail;
  l->fd = socket(l->a.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (l->fd < 0) {
    rc = -errno;
    goto fail;
  }
  if (l->a.family == AF_INET) {
    int one = 1;
    setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  } else if (l->a.path[0]) {
    struct stat st;
    if (lstat(l->a.path, &st) == 0 && S_ISSOCK(st.st_mode)) unlink(l->a.path);
  }
  if (bind(l->fd, (struct sockaddr *)&l->a.ss, l->a.len) < 0 ||
      listen(l->fd, opts && opts->backlog ? opts->backlog : 128) < 0) {
    rc = -errno;
    close(l->fd);
    goto fail;
  }
  l->owner = getpid();
  if (l->a.family == AF_INET) {
    struct sockaddr_in in;
    socklen_t sl = sizeof in;
    getsockname(l->fd, (struct sockaddr *)&in, &sl);
    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &in.sin_addr, ip, sizeof ip);
    snprintf(l->name, sizeof l->name, "tcp:%s:%u", ip, (unsigned)ntohs(in.sin_port));
  } else {
    snprintf(l->name, sizeof l->name, "unix:%s", strncmp(address, "unix:", 5) == 0 ? address + 5 : address);
  }
  if (opts && opts->authkey) {
    l->key = malloc(opts->authkey_len);
    if (!l->key) {
      rc = -ENOMEM;
      close(l->fd);
      if (l->a.path[0]) unlink(l->a.path);
      goto fail;
    }
    memcpy(l->key, opts->authkey, opts->authkey_len);
    l->keylen = opts->authkey_len;
  }
  l->max_msg = opts && opts->max_message ? opts->max_message : DEFAULT_MAX_MSG;
  l->hs_timeout = hs_timeout(opts);
  l->magic = L_MAGIC;
  *out = l;
  return 0;
fail:
  free(l);
  return rc;
}

static int l_check(const mproc_listener_t *l) {
  if (!l) return -EINVAL;
  if (l->magic == MPROC__DEAD_MAGIC) return MPROC_EDESTROYED;
  if (l->magic != L_MAGIC) return -EINVAL;
  return 0;
}

int mproc_listener_accept(mproc_listener_t *l, mproc_conn_t **c, double timeout) {
  int rc = l_check(l);
  if (rc) return rc;
  if (!c || !mproc__timeout_ok(timeout)) return -EINVAL;
  *c = NULL;
  struct timespec dlb, *dl = mproc__deadline(timeout, &dlb);
  int fd;
  for (;;) {
    struct pollfd p = {.fd = l->fd, .events = POLLIN};
    int r = poll(&p, 1, mproc__deadline_ms(dl));
    if (r < 0 && errno != EINTR) return -errno;
    if (r == 0 && mproc__deadline_passed(dl)) return -ETIMEDOUT;
    if (r <= 0) continue;
    fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd >= 0) break;
    if (errno == EINTR || errno == EAGAIN || errno == ECONNABORTED) continue;
    return -errno;
  }
  if (l->a.family == AF_INET) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  mproc_conn_t *conn;
  rc = mproc__conn_wrap(fd, 1, 1, l->max_msg, &conn);
  if (rc) {
    close(fd);
    return rc;
  }
  struct timespec hb;
  rc = mproc__auth_server(conn, l->key, l->keylen, mproc__deadline(l->hs_timeout, &hb));
  if (rc) {
    mproc_conn_destroy(conn);
    return rc;
  }
  *c = conn;
  return 0;
}

const char *mproc_listener_address(const mproc_listener_t *l) {
  return l_check(l) ? NULL : l->name;
}

int mproc_listener_fileno(const mproc_listener_t *l) {
  int rc = l_check(l);
  return rc ? rc : l->fd;
}

int mproc_listener_destroy(mproc_listener_t *l) {
  if (!l) return 0;
  int rc = l_check(l);
  if (rc) return rc;
  close(l->fd);
  if (l->a.path[0] && l->owner == getpid()) unlink(l->a.path);
  if (l->key) {
    memset(l->key, 0, l->keylen);
    free(l->key);
  }
  l->magic = MPROC__DEAD_MAGIC;
  free(l);
  return 0;
}

/* Connect with a deadline (non-blocking connect, then poll). */
static int connect_dl(int fd, const addr *a, const struct timespec *dl) {
  int fl = fcntl(fd, F_GETFL);
  fcntl(fd, F_SETFL, fl | O_NONBLOCK);
  int rc = 0;
  if (connect(fd, (const struct sockaddr *)&a->ss, a->len) < 0) {
    if (errno == EINPROGRESS || errno == EAGAIN) {
      struct pollfd p = {.fd = fd, .events = POLLOUT};
      for (;;) {
        int r = poll(&p, 1, mproc__deadline_ms(dl));
        if (r > 0) break;
        if (r == 0 && mproc__deadline_passed(dl)) {
          rc = -ETIMEDOUT;
          break;
        }
        if (r < 0 && errno != EINTR) {
          rc = -errno;
          break;
        }
      }
      if (rc == 0) {
        int err = 0;
        socklen_t sl = sizeof err;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl);
        rc = -err;
      }
    } else {
      rc = -errno;
    }
  }
  fcntl(fd, F_SETFL, fl);
  return rc;
}

int mproc_client_connect(mproc_conn_t **c, const char *address, const mproc_conn_opts *opts) {
  if (!c) return -EINVAL;
  *c = NULL;
  int rc = check_opts(opts);
  if (rc) return rc;
  addr a;
  rc = parse_addr(address, &a);
  if (rc) return rc;
  struct timespec dlb, *dl = mproc__deadline(hs_timeout(opts), &dlb);
  int fd = socket(a.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  rc = connect_dl(fd, &a, dl);
  if (rc) {
    close(fd);
    return rc;
  }
  if (a.family == AF_INET) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  mproc_conn_t *conn;
  rc = mproc__conn_wrap(fd, 1, 1, opts && opts->max_message ? opts->max_message : DEFAULT_MAX_MSG,
                        &conn);
  if (rc) {
    close(fd);
    return rc;
  }
  rc = mproc__auth_client(conn, opts ? opts->authkey : NULL, opts ? opts->authkey_len : 0, dl);
  if (rc) {
    mproc_conn_destroy(conn);
    return rc;
  }
  *c = conn;
  return 0;
}
