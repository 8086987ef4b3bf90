/* blob.c - snapshot arrays of byte strings (mproc_blob) and the remote-call
 * hook the manager layer installs (see remote.h).
 *
 * A snapshot is one malloc() block: the mproc_blob array, then every item's
 * bytes each followed by a NUL, so mproc_blobs_free() is a single free(). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "shared/shared.h"

mproc__remote_fn mproc__remote_call;

void mproc_blobs_free(mproc_blob *blobs) { free(blobs); }

int mproc__blobs_new(size_t n, size_t bytes, mproc_blob **out, char **data) {
  if (n > SIZE_MAX / sizeof(mproc_blob) / 2) return -ENOMEM;
  size_t head = n * sizeof(mproc_blob);
  if (bytes > SIZE_MAX - head - n - 1) return -ENOMEM;
  mproc_blob *b = malloc(head + bytes + n + 1);
  if (!b) return -ENOMEM;
  *out = b;
  *data = (char *)b + head;
  return 0;
}

char *mproc__blob_put(mproc_blob *b, char *dst, const void *src, size_t len) {
  if (len) memcpy(dst, src, len);
  dst[len] = 0;
  b->data = dst;
  b->len = len;
  return dst + len + 1;
}

int mproc__blobs_from_reply(const mproc__rreply *rep, mproc_blob **out, size_t *n) {
  size_t bytes = 0;
  for (int i = 0; i < rep->nf; i++) {
    if (rep->f[i].type != MPROC__F_BYTES) return MPROC_EPROTO;
    bytes += rep->f[i].len;
  }
  char *data;
  int rc = mproc__blobs_new((size_t)rep->nf, bytes, out, &data);
  if (rc) return rc;
  for (int i = 0; i < rep->nf; i++)
    data = mproc__blob_put(&(*out)[i], data, rep->f[i].p, rep->f[i].len);
  *n = (size_t)rep->nf;
  return 0;
}

int mproc__copy_out(const void *src, size_t len, void *buf, size_t cap, size_t *outlen) {
  if (outlen) *outlen = len;
  if (cap < len) return MPROC_ETOOSHORT;
  if (len) memcpy(buf, src, len);
  return 0;
}

int mproc__dup_out(const void *src, size_t len, void **out, size_t *outlen) {
  char *p = malloc(len + 1);
  if (!p) return -ENOMEM;
  if (len) memcpy(p, src, len);
  p[len] = 0;
  *out = p;
  if (outlen) *outlen = len;
  return 0;
}

int mproc__remote(void *proxy, int op, const mproc__rfield *args, int nargs,
                  mproc__rreply *rep) {
  mproc__rreply tmp;
  if (!rep) rep = &tmp;
  rep->mem = NULL;
  rep->nf = 0;
  if (!mproc__remote_call) return -ENOTSUP;
  int rc = mproc__remote_call(proxy, op, args, nargs, rep);
  if (rep == &tmp) free(tmp.mem);
  return rc;
}
