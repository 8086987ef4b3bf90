/*
 * authkey.c - the calling process's authentication key (Python's
 * current_process().authkey): 32 random bytes made on first use in the top
 * process, inherited by every child it starts (fork: memory; forkserver:
 * sent with the request; spawn: hex in argv), or the key given in the
 * child's mproc_process_opts. Listeners, clients and managers may use it
 * as their default key.
 *
 * One buffer per process under g_ak_mu. mproc_current_authkey() hands out
 * a pointer into it: valid until the next mproc_set_current_authkey().
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/random.h>

#include "process/process_int.h"

static pthread_mutex_t g_ak_mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned char g_key[MPROC_AUTHKEY_MAX]; /* the key */
static size_t g_key_len;                        /* 0 = not made yet */

static int make_key_locked(void) {
  if (g_key_len) return 0;
  size_t got = 0;
  while (got < 32) {
    ssize_t r = getrandom(g_key + got, 32 - got, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    got += (size_t)r;
  }
  g_key_len = 32;
  return 0;
}

int mproc_current_authkey(const void **key, size_t *len) {
  if (!key || !len) return -EINVAL;
  pthread_mutex_lock(&g_ak_mu);
  int rc = make_key_locked();
  if (!rc) {
    *key = g_key;
    *len = g_key_len;
  }
  pthread_mutex_unlock(&g_ak_mu);
  return rc;
}

int mproc_set_current_authkey(const void *key, size_t len) {
  if (!key || len == 0 || len > MPROC_AUTHKEY_MAX) return -EINVAL;
  pthread_mutex_lock(&g_ak_mu);
  memmove(g_key, key, len);
  g_key_len = len;
  pthread_mutex_unlock(&g_ak_mu);
  return 0;
}

size_t mproc__authkey_copy(unsigned char *out) {
  pthread_mutex_lock(&g_ak_mu);
  size_t n = make_key_locked() ? 0 : g_key_len;
  memcpy(out, g_key, n);
  pthread_mutex_unlock(&g_ak_mu);
  return n;
}

/* Through a pointer: a forkserver's children are the only callers of
 * memmove in some programs, and with lazy binding each of them would run
 * the dynamic linker's symbol lookup (a dozen page faults) for it. */
static void *(*volatile p_memmove)(void *, const void *, size_t) = memmove;

void mproc__authkey_reset_child(const unsigned char *key, size_t len) {
  g_ak_mu = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
  if (key && len && len <= MPROC_AUTHKEY_MAX) {
    p_memmove(g_key, key, len);
    g_key_len = len;
  }
}
