/*
 * shared.h - internal helpers of the shared-containers layer.
 */
#ifndef MPROC_SHARED_SHARED_H
#define MPROC_SHARED_SHARED_H

#include <stddef.h>

#include "internal.h"
#include "shared/remote.h"

/* One malloc() for n blobs plus bytes of data (+ a NUL each). */
int mproc__blobs_new(size_t n, size_t bytes, mproc_blob **out, char **data);
/* Copy len bytes to dst (plus NUL), point b at it; returns the next dst. */
char *mproc__blob_put(mproc_blob *b, char *dst, const void *src, size_t len);
/* Turn a reply's BYTES fields into a snapshot array. */
int mproc__blobs_from_reply(const mproc__rreply *rep, mproc_blob **out, size_t *n);
/* Copy into a caller buffer with the MPROC_ETOOSHORT rule. */
int mproc__copy_out(const void *src, size_t len, void *buf, size_t cap, size_t *outlen);
/* malloc()ed NUL-terminated copy. */
int mproc__dup_out(const void *src, size_t len, void **out, size_t *outlen);
/* Forward a call to a proxy's server (rep may be NULL: results dropped). */
int mproc__remote(void *proxy, int op, const mproc__rfield *args, int nargs,
                  mproc__rreply *rep);

/* Flag of a dict that is a namespace. */
#define MPROC__DICT_F_NAMESPACE 1u
/* Create a heap dict with flags (namespace.c). */
int mproc__dict_create_flags(mproc_dict_t **d, uint32_t flags);

/* Test support: full invariant check (0 or -EIO), taking the lock. */
int mproc__dict_validate(mproc_dict_t *d);
int mproc__list_validate(mproc_list_t *l);

#endif
