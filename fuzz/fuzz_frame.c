/*
 * fuzz_frame.c - libFuzzer harness for connection framing.
 *
 * Input byte 0 picks the receiver's settings (max message size, buffer
 * size, recv vs recv_alloc); the rest is a byte stream a peer sends. It is
 * checked twice: by the pure header parser (invariants, and encode/parse
 * agreement), and end to end through a real connection, the stream written
 * into the peer end of a socketpair and read until error or end of file.
 * Any crash, sanitizer report, or broken invariant aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ipc/framing.h"
#include "mproc.h"

#define CHECK(x) \
  do {           \
    if (!(x)) abort(); \
  } while (0)

static void parser(const uint8_t *d, size_t n, uint64_t max) {
  uint64_t len = 0;
  size_t h = 0;
  int rc = mproc__frame_parse(d, n, max, &len, &h);
  if (rc == 0) {
    CHECK(h == 4 || h == 12);
    CHECK(h <= n);
    CHECK(!max || len <= max);
    unsigned char e[MPROC__FRAME_HDR_MAX];
    size_t eh = mproc__frame_encode(e, len);
    CHECK(eh == h && memcmp(e, d, h) == 0); /* canonical: one encoding */
  } else if (rc == -EAGAIN) {
    CHECK(h > n && (h == 4 || h == 12));
  } else {
    CHECK(rc == -EMSGSIZE || rc == MPROC_EPROTO);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1 || size > 65536) return 0;
  uint8_t mode = data[0];
  const uint8_t *d = data + 1;
  size_t n = size - 1;
  uint64_t max = (mode & 3) == 0 ? 0 : (mode & 3) == 1 ? 16 : (mode & 3) == 2 ? 1024 : 1u << 20;
  parser(d, n, max);

  mproc_conn_t *a, *b;
  if (mproc_pipe(&a, &b, 1)) return 0;
  mproc_conn_set_max_message(a, max ? max : (1u << 20)); /* bound allocations */
  int raw = mproc_conn_fileno(b);
  size_t off = 0;
  while (off < n) {
    ssize_t w = send(raw, d + off, n - off, MSG_NOSIGNAL);
    if (w <= 0) break;
    off += (size_t)w;
  }
  mproc_conn_close(b); /* then end of file */
  size_t cap = (mode >> 2) & 1 ? 8 : 4096;
  unsigned char *buf = malloc(cap);
  for (int i = 0; i < 10000; i++) {
    size_t len = 0;
    int rc;
    if ((mode >> 3) & 1) {
      void *p = NULL;
      rc = mproc_conn_recv_alloc(a, &p, &len, 1);
      if (rc == 0) {
        CHECK(p != NULL);
        free(p);
      }
    } else {
      rc = mproc_conn_recv(a, buf, cap, &len, 1);
      if (rc == MPROC_ETOOSHORT) { /* message kept: fetch it with room */
        CHECK(len > cap);
        void *p = NULL;
        rc = mproc_conn_recv_alloc(a, &p, &len, 1);
        free(p);
      }
    }
    if (rc == 0) {
      CHECK(len <= (max ? max : (1u << 20)));
      continue;
    }
    CHECK(rc == MPROC_EEOF || rc == -EMSGSIZE || rc == MPROC_EPROTO || rc == -ECONNABORTED ||
          rc == -ETIMEDOUT);
    break;
  }
  free(buf);
  mproc_conn_destroy(a);
  mproc_conn_destroy(b);
  return 0;
}
