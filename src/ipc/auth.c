/*
 * auth.c - the authkey handshake of Listener/Client (HMAC-SHA256 challenge
 * and response in both directions, libsodium).
 *
 * DESIGN (after Python's multiprocessing.connection deliver/answer_challenge)
 *   server -> client  "#CHALLENGE#" + 32 random bytes
 *   client -> server  HMAC(key, "mproc-auth-v1 client" || challenge)
 *   server -> client  "#WELCOME#" or "#FAILURE#"
 *   then the same with the roles swapped (label "... server").
 * The role label in the MAC stops a peer from reflecting a challenge back
 * at its sender to get it answered. Digests are compared in constant time
 * (crypto_verify_32). Every message is framed with a 256-byte ceiling, and
 * the whole exchange shares one deadline, so a peer that sends garbage,
 * stalls or hangs up mid-way costs at most the handshake timeout.
 * Wrong key: the side that checks the digest answers #FAILURE# and returns
 * MPROC_EAUTH; the other side reads #FAILURE# and returns MPROC_EAUTH too.
 */
#include <errno.h>
#include <sodium.h>
#include <string.h>

#include "internal.h"
#include "ipc/conn.h"

#define CHALLENGE "#CHALLENGE#"
#define WELCOME "#WELCOME#"
#define FAILURE "#FAILURE#"
#define NONCE_LEN 32
#define HS_MAX 256

static int sodium_ready(void) { return sodium_init() < 0 ? -ENOSYS : 0; }

static void mac(unsigned char out[32], const void *key, size_t keylen, const char *label,
                const unsigned char *nonce) {
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, key, keylen);
  crypto_auth_hmacsha256_update(&st, (const unsigned char *)label, strlen(label));
  crypto_auth_hmacsha256_update(&st, nonce, NONCE_LEN);
  crypto_auth_hmacsha256_final(&st, out);
  sodium_memzero(&st, sizeof st);
}

static int hs_recv(struct mproc_conn *c, unsigned char *buf, size_t *len,
                   const struct timespec *dl) {
  uint64_t saved = c->max_msg;
  c->max_msg = HS_MAX;
  int rc = mproc__conn_recv_dl(c, buf, HS_MAX, 0, NULL, len, dl);
  c->max_msg = saved;
  if (rc == MPROC_ETOOSHORT || rc == -EMSGSIZE) return MPROC_EPROTO;
  return rc;
}

/* Send a challenge, check the answer, report the verdict. */
static int deliver(struct mproc_conn *c, const void *key, size_t keylen, const char *label,
                   const struct timespec *dl) {
  unsigned char msg[sizeof CHALLENGE - 1 + NONCE_LEN], ans[HS_MAX], want[32];
  memcpy(msg, CHALLENGE, sizeof CHALLENGE - 1);
  randombytes_buf(msg + sizeof CHALLENGE - 1, NONCE_LEN);
  int rc = mproc__conn_send(c, msg, sizeof msg);
  if (rc) return rc;
  size_t len;
  rc = hs_recv(c, ans, &len, dl);
  if (rc) return rc;
  mac(want, key, keylen, label, msg + sizeof CHALLENGE - 1);
  int ok = len == 32 && crypto_verify_32(ans, want) == 0;
  rc = ok ? mproc__conn_send(c, WELCOME, sizeof WELCOME - 1)
          : mproc__conn_send(c, FAILURE, sizeof FAILURE - 1);
  if (!ok) return MPROC_EAUTH;
  return rc;
}

/* Answer the peer's challenge and read its verdict. */
static int answer(struct mproc_conn *c, const void *key, size_t keylen, const char *label,
                  const struct timespec *dl) {
  unsigned char msg[HS_MAX], out[32];
  size_t len;
  int rc = hs_recv(c, msg, &len, dl);
  if (rc) return rc;
  if (len != sizeof CHALLENGE - 1 + NONCE_LEN || memcmp(msg, CHALLENGE, sizeof CHALLENGE - 1))
    return MPROC_EPROTO;
  mac(out, key, keylen, label, msg + sizeof CHALLENGE - 1);
  rc = mproc__conn_send(c, out, sizeof out);
  if (rc) return rc;
  rc = hs_recv(c, msg, &len, dl);
  if (rc) return rc;
  if (len == sizeof WELCOME - 1 && memcmp(msg, WELCOME, len) == 0) return 0;
  if (len == sizeof FAILURE - 1 && memcmp(msg, FAILURE, len) == 0) return MPROC_EAUTH;
  return MPROC_EPROTO;
}

int mproc__auth_server(struct mproc_conn *c, const void *key, size_t keylen,
                       const struct timespec *dl) {
  if (!key) return 0;
  int rc = sodium_ready();
  if (rc == 0) rc = deliver(c, key, keylen, "mproc-auth-v1 client", dl);
  if (rc == 0) rc = answer(c, key, keylen, "mproc-auth-v1 server", dl);
  return rc;
}

int mproc__auth_client(struct mproc_conn *c, const void *key, size_t keylen,
                       const struct timespec *dl) {
  if (!key) return 0;
  int rc = sodium_ready();
  if (rc == 0) rc = answer(c, key, keylen, "mproc-auth-v1 client", dl);
  if (rc == 0) rc = deliver(c, key, keylen, "mproc-auth-v1 server", dl);
  return rc;
}
