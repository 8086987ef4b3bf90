/*
 * namespace.c - Python's Namespace: typed, named attributes over a dict.
 *
 * DESIGN
 * A namespace handle is a dict handle (a heap dict flagged as a namespace,
 * or a manager proxy of kind NAMESPACE), so every call here is one dict call
 * and works locally and remotely alike. Values carry a one-byte type tag:
 * 'i' + int64, 'd' + double (both in host byte order locally; the manager
 * moves them as opaque bytes, so remote peers must share endianness, which
 * holds for every Linux target we build for), 's' + string bytes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "shared/shared.h"

static mproc_dict_t *D(mproc_namespace_t *ns) { return (mproc_dict_t *)(void *)ns; }

static int ns_ok(mproc_namespace_t *ns, const char *name, size_t *nl) {
  if (!ns || !name) return -EINVAL;
  if (!mproc__is_proxy(ns, MPROC__OBJ_NAMESPACE) && !mproc_heap_contains(ns)) return -EINVAL;
  size_t n = strnlen(name, 256);
  if (n == 0 || n > 255) return -EINVAL;
  *nl = n;
  return 0;
}

int mproc_namespace_create(mproc_namespace_t **ns, const void *opts) {
  if (!ns || opts) return -EINVAL;
  return mproc__dict_create_flags((mproc_dict_t **)(void *)ns, MPROC__DICT_F_NAMESPACE);
}

int mproc_namespace_destroy(mproc_namespace_t *ns) { return mproc_dict_destroy(D(ns)); }

mproc_dict_t *mproc_namespace_dict(mproc_namespace_t *ns) { return D(ns); }

static int set_tagged(mproc_namespace_t *ns, const char *name, char tag, const void *v,
                      size_t len) {
  size_t nl;
  int rc = ns_ok(ns, name, &nl);
  if (rc) return rc;
  char small[64];
  char *buf = len + 1 <= sizeof small ? small : malloc(len + 1);
  if (!buf) return -ENOMEM;
  buf[0] = tag;
  if (len) memcpy(buf + 1, v, len);
  rc = mproc_dict_set(D(ns), name, nl, buf, len + 1);
  if (buf != small) free(buf);
  return rc;
}

int mproc_namespace_set_int(mproc_namespace_t *ns, const char *name, int64_t v) {
  return set_tagged(ns, name, 'i', &v, sizeof v);
}

int mproc_namespace_set_double(mproc_namespace_t *ns, const char *name, double v) {
  return set_tagged(ns, name, 'd', &v, sizeof v);
}

int mproc_namespace_set_str(mproc_namespace_t *ns, const char *name, const char *v) {
  if (!v) return -EINVAL;
  return set_tagged(ns, name, 's', v, strlen(v));
}

/* Fetch a fixed-size tagged value. */
static int get_fixed(mproc_namespace_t *ns, const char *name, char tag, void *out) {
  size_t nl;
  int rc = ns_ok(ns, name, &nl);
  if (rc || !out) return rc ? rc : -EINVAL;
  unsigned char buf[9];
  size_t len;
  rc = mproc_dict_get(D(ns), name, nl, buf, sizeof buf, &len);
  if (rc == MPROC_ETOOSHORT) return -EINVAL; /* a (long) string */
  if (rc) return rc;
  if (len != 9 || buf[0] != (unsigned char)tag) return -EINVAL;
  memcpy(out, buf + 1, 8);
  return 0;
}

int mproc_namespace_get_int(mproc_namespace_t *ns, const char *name, int64_t *v) {
  return get_fixed(ns, name, 'i', v);
}

int mproc_namespace_get_double(mproc_namespace_t *ns, const char *name, double *v) {
  return get_fixed(ns, name, 'd', v);
}

int mproc_namespace_get_str_alloc(mproc_namespace_t *ns, const char *name, char **v) {
  size_t nl;
  int rc = ns_ok(ns, name, &nl);
  if (rc || !v) return rc ? rc : -EINVAL;
  void *raw;
  size_t len;
  if ((rc = mproc_dict_get_alloc(D(ns), name, nl, &raw, &len))) return rc;
  char *s = raw;
  if (len < 1 || s[0] != 's') {
    free(raw);
    return -EINVAL;
  }
  memmove(s, s + 1, len); /* moves the trailing NUL too */
  *v = s;
  return 0;
}

int mproc_namespace_get_str(mproc_namespace_t *ns, const char *name, char *buf, size_t cap,
                            size_t *len) {
  if (!buf && cap) return -EINVAL;
  char *s;
  int rc = mproc_namespace_get_str_alloc(ns, name, &s);
  if (rc) return rc;
  size_t n = strlen(s);
  if (len) *len = n;
  if (cap < n + 1) rc = MPROC_ETOOSHORT;
  else memcpy(buf, s, n + 1);
  free(s);
  return rc;
}

int mproc_namespace_has(mproc_namespace_t *ns, const char *name) {
  size_t nl;
  int rc = ns_ok(ns, name, &nl);
  if (rc) return rc;
  return mproc_dict_contains(D(ns), name, nl);
}

int mproc_namespace_del(mproc_namespace_t *ns, const char *name) {
  size_t nl;
  int rc = ns_ok(ns, name, &nl);
  if (rc) return rc;
  return mproc_dict_delete(D(ns), name, nl);
}
