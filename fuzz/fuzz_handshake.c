/*
 * fuzz_handshake.c - libFuzzer harness for the authkey handshake.
 *
 * Input byte 0 bit 0 picks our role (server or client); the rest is what the
 * peer sends, written into the peer end of a socketpair followed by end of
 * file. The handshake must end with an error (the peer cannot know the MAC
 * of our random nonce) and never crash, hang or read out of bounds.
 */
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ipc/conn.h"
#include "platform/platform.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1 || size > 16384) return 0;
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds)) return 0;
  size_t off = 1;
  while (off < size) {
    ssize_t w = send(fds[1], data + off, size - off, MSG_NOSIGNAL);
    if (w <= 0) break;
    off += (size_t)w;
  }
  shutdown(fds[1], SHUT_WR);
  struct mproc_conn *c;
  if (mproc__conn_wrap(fds[0], 1, 1, 1 << 20, &c)) return 0;
  struct timespec dlb, *dl = mproc__deadline(2.0, &dlb);
  static const char key[] = "fuzz key";
  int rc = (data[0] & 1) ? mproc__auth_server(c, key, sizeof key - 1, dl)
                         : mproc__auth_client(c, key, sizeof key - 1, dl);
  if (rc == 0) abort(); /* authenticated without the key */
  mproc_conn_destroy(c);
  close(fds[1]);
  return 0;
}
