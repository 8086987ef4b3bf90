/*
 * transport.h - the manager's connections: addresses, authentication,
 * framing. A small interface so the server and the client do not care how
 * bytes move.
 *
 * Addresses: "unix:/path", "unix:@name" (Linux abstract namespace: nothing
 * left on disk), "tcp:HOST:PORT" (port 0 = pick a free one).
 *
 * Authentication: mutual HMAC-SHA256 challenge-response over the authkey
 * (libsodium), before any message:
 *   S->C  "MPMGR\x01\0\0" + 32-byte server nonce
 *   C->S  HMAC(key, "mproc-client" | snonce | cnonce) + cnonce
 *   S->C  HMAC(key, "mproc-server" | cnonce | snonce)
 * Each side compares in constant time and hangs up on a mismatch
 * (MPROC_EAUTH for the client). Nonces come from the kernel's CSPRNG, so a
 * recorded exchange cannot be replayed. The key never crosses the wire.
 *
 * Frames: u32 little-endian length + that many bytes (one wire.h message).
 * Sends use MSG_NOSIGNAL: a dead peer is an error code, never SIGPIPE.
 */
#ifndef MPROC_MANAGER_TRANSPORT_H
#define MPROC_MANAGER_TRANSPORT_H

#include <stddef.h>
#include <time.h>

#define MPROC__MT_ADDR_MAX 256

/* Bind and listen on addr; *fd is the listening socket (CLOEXEC), bound
 * gets the address with the real port. 0, -EINVAL, -EADDRINUSE, ... */
int mproc__mt_listen(const char *addr, int backlog, int *fd, char *bound, size_t cap);
/* Non-zero if addr is a TCP address. */
int mproc__mt_is_tcp(const char *addr);
/* Connect (blocking, bounded by deadline). */
int mproc__mt_connect(const char *addr, const struct timespec *deadline, int *fd);
/* Handshakes; 0, MPROC_EAUTH, MPROC_EEOF, -ETIMEDOUT, MPROC_EPROTO. */
int mproc__mt_auth_server(int fd, const void *key, size_t klen, const struct timespec *deadline);
int mproc__mt_auth_client(int fd, const void *key, size_t klen, const struct timespec *deadline);
/* Send one frame. 0, MPROC_EEOF (peer gone), -ETIMEDOUT, -EMSGSIZE. */
int mproc__mt_send(int fd, const void *buf, size_t len, const struct timespec *deadline);
/* Receive one frame into a malloc()ed buffer. Waits for its first byte
 * until first (NULL = forever): -ETIMEDOUT then means "nothing came" and
 * the connection is still good. Once a frame started, the rest must arrive
 * within frame_timeout seconds, else -ETIMEDOUT and the connection must be
 * dropped. MPROC_EEOF, -ECONNRESET, -EMSGSIZE (over max). */
int mproc__mt_recv(int fd, size_t max, void **out, size_t *len,
                   const struct timespec *first, double frame_timeout);

#endif
