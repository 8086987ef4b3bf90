/*
 * list.c - the shared-heap list of byte strings.
 *
 * DESIGN
 * A ring buffer (power-of-two capacity) of pointers to items; an item is one
 * heap block {length, bytes}. The ring makes append, pop(-1), pop(0) and
 * insert(0) O(1), so a list doubles as a FIFO queue (the manager's queue is
 * one). Inserting or popping in the middle rebuilds the ring into a new,
 * unpublished block and publishes it with a few logged stores, so every
 * operation is crash-atomic through the undo log of tx.h.
 *
 * Invariants (lock held, no transaction open): the live items are the count
 * slots starting at head; every other slot is 0 (a garbage sweep of a
 * detached ring frees exactly its non-zero slots). extend() fills slots
 * beyond the live range before publishing the new count; those stores are
 * not logged, so recovery re-zeroes every slot outside the live range after
 * rolling back.
 *
 * The ring shrinks when fewer than 1/8 of its slots are used, so popping
 * returns memory. Lock order: list lock -> heap lock.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "heap/heap.h"
#include "internal.h"
#include "platform/robust.h"
#include "shared/shared.h"
#include "shared/tx.h"

#define LIST_MAGIC MPROC__MAGIC('L', 'I', 'S', 'T')
#define MIN_CAP 8u
#define MAX_LEN ((size_t)UINT32_MAX)

typedef struct item {
  uint64_t len;          /* bytes */
  unsigned char data[];  /* the bytes */
} item;

struct mproc_list {
  uint64_t scratch[2]; /* left to the allocator (see mproc__proxy_hdr) */
  uint32_t magic;   /* LIST_MAGIC, MPROC__DEAD_MAGIC after destroy */
  uint32_t flags;   /* reserved */
  mproc__rmutex mu; /* protects everything below */
  uint64_t head;    /* slot of item 0 */
  uint64_t count;   /* items */
  uint64_t cap;     /* slots (power of two) or 0 */
  uint64_t ring;    /* uint64_t[cap] of item * */
  mproc__tx tx;     /* undo log and garbage slots */
};

static inline uint64_t *RING(const mproc_list_t *l) { return mproc__u2p(l->ring); }
static inline uint64_t *SLOT(const mproc_list_t *l, uint64_t i) {
  return &RING(l)[(l->head + i) & (l->cap - 1)];
}

static int is_proxy(const void *l) { return mproc__is_proxy(l, MPROC__OBJ_LIST); }

static int check(const mproc_list_t *l) {
  if (!mproc__heap_contains(l)) return -EINVAL;
  if (l->magic == MPROC__DEAD_MAGIC) return MPROC_EDESTROYED;
  if (l->magic != LIST_MAGIC) return -EINVAL;
  return 0;
}

static void recover(mproc_list_t *l) {
  mproc__tx_recover(&l->tx);
  /* extend() may have left unpublished pointers beyond the live range. */
  for (uint64_t i = l->count; i < l->cap; i++) *SLOT(l, i) = 0;
}

static int lock(mproc_list_t *l) {
  int rc = mproc__rmutex_lock(&l->mu, NULL);
  if (rc == MPROC_EOWNERDEAD) {
    recover(l);
    rc = 0;
  }
  if (rc) return rc;
  if (l->magic != LIST_MAGIC) {
    mproc__rmutex_unlock(&l->mu);
    return MPROC_EDESTROYED;
  }
  return 0;
}

static void unlock(mproc_list_t *l) { mproc__rmutex_unlock(&l->mu); }

static int bytes_ok(const void *p, size_t len) {
  if (!p && len) return -EINVAL;
  if (len > MAX_LEN) return -EMSGSIZE;
  return 0;
}

static uint64_t pow2_at_least(uint64_t n) {
  uint64_t c = MIN_CAP;
  while (c < n) c <<= 1;
  return c;
}

/* Map a Python index to 0..count-1; -ERANGE if out of range. */
static int norm(const mproc_list_t *l, int64_t idx, uint64_t *out) {
  int64_t n = (int64_t)l->count;
  if (idx < 0) idx += n;
  if (idx < 0 || idx >= n) return -ERANGE;
  *out = (uint64_t)idx;
  return 0;
}

/* New ring of ncap slots holding the items, with a hole at `gap` (or
 * without item `skip`); -1 = neither. Returns the unpublished ring. */
static int build(mproc_list_t *l, uint64_t ncap, int64_t gap, int64_t skip, uint64_t **out) {
  if (ncap > SIZE_MAX / 8) return -ENOMEM;
  uint64_t *nr;
  int rc = mproc__tx_alloc(&l->tx, (size_t)ncap * 8, (void **)&nr);
  if (rc) return rc;
  uint64_t j = 0;
  for (uint64_t i = 0; i < l->count; i++) {
    if ((int64_t)i == gap) j++;
    if ((int64_t)i == skip) continue;
    nr[j++] = *SLOT(l, i);
  }
  *out = nr;
  return 0;
}

/* Publish ring nr (cap ncap, head 0, count n); the old ring is garbage. */
static void publish(mproc_list_t *l, uint64_t *nr, uint64_t ncap, uint64_t n) {
  if (l->ring) mproc__tx_garbage(&l->tx, RING(l), 0, MPROC__GARB_BLOCK);
  mproc__tx_set(&l->tx, &l->ring, mproc__p2u(nr));
  mproc__tx_set(&l->tx, &l->cap, ncap);
  mproc__tx_set(&l->tx, &l->head, 0);
  mproc__tx_set(&l->tx, &l->count, n);
}

/* Make room for `more` items (own transaction). */
static int reserve(mproc_list_t *l, uint64_t more) {
  if (l->count + more <= l->cap) return 0;
  uint64_t ncap = pow2_at_least(l->count + more);
  uint64_t *nr;
  int rc = build(l, ncap, -1, -1, &nr);
  if (rc) return rc;
  publish(l, nr, ncap, l->count);
  mproc__tx_commit(&l->tx);
  return 0;
}

static void maybe_shrink(mproc_list_t *l) {
  if (l->cap <= MIN_CAP || l->count * 8 >= l->cap) return;
  uint64_t ncap = pow2_at_least(l->count * 2);
  uint64_t *nr;
  if (build(l, ncap, -1, -1, &nr)) return; /* keep the big ring: still correct */
  publish(l, nr, ncap, l->count);
  mproc__tx_commit(&l->tx);
}

static int new_item(mproc_list_t *l, const void *data, size_t len, item **out) {
  int rc = mproc__tx_alloc(&l->tx, sizeof(item) + (len ? len : 1), (void **)out);
  if (rc) return rc;
  (*out)->len = len;
  if (len) memcpy((*out)->data, data, len);
  return 0;
}

int mproc_list_create(mproc_list_t **out, const void *opts) {
  if (!out || opts) return -EINVAL;
  mproc_list_t *l;
  int rc = mproc__heap_alloc(sizeof *l, (void **)&l);
  if (rc) return rc;
  mproc__rmutex_init(&l->mu);
  l->magic = LIST_MAGIC;
  *out = l;
  return 0;
}

int mproc_list_destroy(mproc_list_t *l) {
  if (!l) return 0;
  if (is_proxy(l)) {
    ((mproc__proxy_hdr *)l)->magic = MPROC__DEAD_MAGIC;
    free(l);
    return 0;
  }
  int rc = check(l);
  if (rc || (rc = lock(l))) return rc;
  l->magic = MPROC__DEAD_MAGIC;
  uint64_t *r = RING(l);
  uint64_t cap = l->cap;
  l->ring = l->cap = l->count = l->head = 0;
  unlock(l);
  if (r) {
    for (uint64_t i = 0; i < cap; i++)
      if (r[i]) mproc__heap_free(mproc__u2p(r[i]));
    mproc__heap_free(r);
  }
  mproc__heap_free(l);
  return 0;
}

/* ---- remote forms ---- */

static int r_item(mproc_list_t *l, int op, int64_t idx, mproc__rreply *rep) {
  mproc__rfield a[] = {mproc__rf_i64(idx)};
  int rc = mproc__remote(l, op, a, 1, rep);
  if (rc) return rc;
  if (rep->nf != 1 || rep->f[0].type != MPROC__F_BYTES) {
    free(rep->mem);
    return MPROC_EPROTO;
  }
  return 0;
}

/* ---- operations ---- */

int mproc_list_append(mproc_list_t *l, const void *data, size_t len) {
  if (!l) return -EINVAL;
  int rc = bytes_ok(data, len);
  if (rc) return rc;
  if (is_proxy(l)) {
    mproc__rfield a[] = {mproc__rf_bytes(data, len)};
    return mproc__remote(l, MPROC__OP_LIST_APPEND, a, 1, NULL);
  }
  if ((rc = check(l))) return rc;
  /* Build the item before taking the lock (shorter critical section). */
  item *it;
  if ((rc = mproc__heap_alloc(sizeof(item) + (len ? len : 1), (void **)&it))) return rc;
  it->len = len;
  if (len) memcpy(it->data, data, len);
  if ((rc = lock(l))) {
    mproc__heap_free(it);
    return rc;
  }
  if (l->count == l->cap && (rc = reserve(l, 1))) {
    mproc__heap_free(it);
    goto out;
  }
  mproc__tx_adopt(&l->tx, it);
  mproc__tx_set(&l->tx, SLOT(l, l->count), mproc__p2u(it));
  mproc__tx_set(&l->tx, &l->count, l->count + 1);
  mproc__tx_commit(&l->tx);
out:
  unlock(l);
  return rc;
}

int mproc_list_extend(mproc_list_t *l, const mproc_blob *items, size_t n) {
  if (!l || (!items && n)) return -EINVAL;
  int rc;
  for (size_t i = 0; i < n; i++)
    if ((rc = bytes_ok(items[i].data, items[i].len))) return rc;
  if (is_proxy(l)) {
    if (n > 1u << 20) return -EMSGSIZE;
    mproc__rfield *a = malloc((n ? n : 1) * sizeof *a);
    if (!a) return -ENOMEM;
    for (size_t i = 0; i < n; i++) a[i] = mproc__rf_bytes(items[i].data, items[i].len);
    rc = mproc__remote(l, MPROC__OP_LIST_EXTEND, a, (int)n, NULL);
    free(a);
    return rc;
  }
  if (n == 0) return 0;
  if (n > (SIZE_MAX / 8) - 1) return -ENOMEM;
  if ((rc = check(l)) || (rc = lock(l))) return rc;
  if ((rc = reserve(l, n))) goto out;
  /* The new items are listed in a VEC block the transaction owns, so a death
   * before the commit frees them all. */
  uint64_t *vec;
  if ((rc = mproc__heap_alloc((n + 1) * 8, (void **)&vec))) goto out;
  MPROC__TX_FENCE();
  l->tx.vec = mproc__p2u(vec);
  MPROC__TX_FENCE();
  for (size_t i = 0; i < n; i++) {
    item *it;
    rc = mproc__heap_alloc(sizeof(item) + (items[i].len ? items[i].len : 1), (void **)&it);
    if (rc) {
      mproc__tx_recover(&l->tx); /* frees the VEC and its items */
      goto out;
    }
    it->len = items[i].len;
    if (items[i].len) memcpy(it->data, items[i].data, items[i].len);
    vec[i + 1] = mproc__p2u(it);
    MPROC__TX_FENCE();
    vec[0] = i + 1;
    MPROC__TX_FENCE();
  }
  for (size_t i = 0; i < n; i++) *SLOT(l, l->count + i) = vec[i + 1];
  mproc__tx_garbage(&l->tx, vec, 0, MPROC__GARB_BLOCK); /* the block, not the items */
  mproc__tx_set(&l->tx, &l->count, l->count + n);
  mproc__tx_commit(&l->tx);
out:
  unlock(l);
  return rc;
}

static int get_common(mproc_list_t *l, int64_t index, void *buf, size_t cap, size_t *len,
                      void **dup) {
  int rc;
  if (is_proxy(l)) {
    mproc__rreply rep;
    if ((rc = r_item(l, MPROC__OP_LIST_GET, index, &rep))) return rc;
    rc = dup ? mproc__dup_out(rep.f[0].p, rep.f[0].len, dup, len)
             : mproc__copy_out(rep.f[0].p, rep.f[0].len, buf, cap, len);
    free(rep.mem);
    return rc;
  }
  if ((rc = check(l)) || (rc = lock(l))) return rc;
  uint64_t i;
  if (!(rc = norm(l, index, &i))) {
    const item *it = mproc__u2p(*SLOT(l, i));
    rc = dup ? mproc__dup_out(it->data, it->len, dup, len)
             : mproc__copy_out(it->data, it->len, buf, cap, len);
  }
  unlock(l);
  return rc;
}

int mproc_list_get(mproc_list_t *l, int64_t index, void *buf, size_t cap, size_t *len) {
  if (!l || !len || (!buf && cap)) return -EINVAL;
  return get_common(l, index, buf, cap, len, NULL);
}

int mproc_list_get_alloc(mproc_list_t *l, int64_t index, void **data, size_t *len) {
  if (!l || !data) return -EINVAL;
  return get_common(l, index, NULL, 0, len, data);
}

int mproc_list_set(mproc_list_t *l, int64_t index, const void *data, size_t len) {
  if (!l) return -EINVAL;
  int rc = bytes_ok(data, len);
  if (rc) return rc;
  if (is_proxy(l)) {
    mproc__rfield a[] = {mproc__rf_i64(index), mproc__rf_bytes(data, len)};
    return mproc__remote(l, MPROC__OP_LIST_SET, a, 2, NULL);
  }
  if ((rc = check(l)) || (rc = lock(l))) return rc;
  uint64_t i;
  item *it;
  if (!(rc = norm(l, index, &i)) && !(rc = new_item(l, data, len, &it))) {
    uint64_t *s = SLOT(l, i);
    mproc__tx_garbage(&l->tx, mproc__u2p(*s), 0, MPROC__GARB_BLOCK);
    mproc__tx_set(&l->tx, s, mproc__p2u(it));
    mproc__tx_commit(&l->tx);
  }
  unlock(l);
  return rc;
}

static int pop_common(mproc_list_t *l, int64_t index, void *buf, size_t cap, size_t *len,
                      void **dup, int discard) {
  int rc;
  if (is_proxy(l)) {
    mproc__rreply rep;
    /* The size check must happen before the server removes the item, so the
     * buffer form sends the capacity along (-1 = any size). */
    mproc__rfield a[] = {mproc__rf_i64(index),
                         mproc__rf_i64(dup || discard ? -1 : (int64_t)(cap > INT64_MAX ? INT64_MAX : cap))};
    rc = mproc__remote(l, MPROC__OP_LIST_POP, a, 2, &rep);
    if (rc == MPROC_ETOOSHORT) {
      /* Reply carries the needed size. */
      if (rep.nf == 1 && rep.f[0].type == MPROC__F_I64 && len) *len = (size_t)rep.f[0].i;
      free(rep.mem);
      return rc;
    }
    if (rc) return rc;
    if (rep.nf != 1 || rep.f[0].type != MPROC__F_BYTES) rc = MPROC_EPROTO;
    else if (dup) rc = mproc__dup_out(rep.f[0].p, rep.f[0].len, dup, len);
    else if (!discard) rc = mproc__copy_out(rep.f[0].p, rep.f[0].len, buf, cap, len);
    else if (len) *len = rep.f[0].len;
    free(rep.mem);
    return rc;
  }
  if ((rc = check(l)) || (rc = lock(l))) return rc;
  uint64_t i;
  if (l->count == 0) {
    rc = MPROC_EEMPTY;
    goto out;
  }
  if ((rc = norm(l, index, &i))) goto out;
  item *it = mproc__u2p(*SLOT(l, i));
  if (dup) rc = mproc__dup_out(it->data, it->len, dup, len);
  else if (!discard) rc = mproc__copy_out(it->data, it->len, buf, cap, len);
  else if (len) *len = it->len;
  if (rc) goto out;
  if (i == l->count - 1 || i == 0) {
    mproc__tx_garbage(&l->tx, it, 0, MPROC__GARB_BLOCK);
    mproc__tx_set(&l->tx, SLOT(l, i), 0);
    if (i == 0) mproc__tx_set(&l->tx, &l->head, (l->head + 1) & (l->cap - 1));
    mproc__tx_set(&l->tx, &l->count, l->count - 1);
    mproc__tx_commit(&l->tx);
  } else {
    uint64_t *nr;
    if ((rc = build(l, l->cap, -1, (int64_t)i, &nr))) {
      if (dup) free(*dup);
      goto out;
    }
    mproc__tx_garbage2(&l->tx, it);
    publish(l, nr, l->cap, l->count - 1);
    mproc__tx_commit(&l->tx);
  }
  maybe_shrink(l);
out:
  unlock(l);
  return rc;
}

int mproc_list_pop(mproc_list_t *l, int64_t index, void *buf, size_t cap, size_t *len) {
  if (!l || !len || (!buf && cap)) return -EINVAL;
  return pop_common(l, index, buf, cap, len, NULL, 0);
}

int mproc_list_pop_alloc(mproc_list_t *l, int64_t index, void **data, size_t *len) {
  if (!l) return -EINVAL;
  return pop_common(l, index, NULL, 0, len, data, data == NULL);
}

int mproc_list_insert(mproc_list_t *l, int64_t index, const void *data, size_t len) {
  if (!l) return -EINVAL;
  int rc = bytes_ok(data, len);
  if (rc) return rc;
  if (is_proxy(l)) {
    mproc__rfield a[] = {mproc__rf_i64(index), mproc__rf_bytes(data, len)};
    return mproc__remote(l, MPROC__OP_LIST_INSERT, a, 2, NULL);
  }
  if ((rc = check(l)) || (rc = lock(l))) return rc;
  int64_t n = (int64_t)l->count;
  if (index < 0) index += n;
  if (index < 0) index = 0;
  if (index > n) index = n;
  if ((rc = reserve(l, 1))) goto out;
  item *it;
  if ((rc = new_item(l, data, len, &it))) goto out;
  if (index == n) {
    mproc__tx_set(&l->tx, SLOT(l, l->count), mproc__p2u(it));
    mproc__tx_set(&l->tx, &l->count, l->count + 1);
  } else if (index == 0) {
    uint64_t h = (l->head - 1) & (l->cap - 1);
    mproc__tx_set(&l->tx, &RING(l)[h], mproc__p2u(it));
    mproc__tx_set(&l->tx, &l->head, h);
    mproc__tx_set(&l->tx, &l->count, l->count + 1);
  } else {
    uint64_t *nr;
    if ((rc = build(l, l->cap, index, -1, &nr))) {
      mproc__tx_recover(&l->tx); /* frees the new item */
      goto out;
    }
    nr[index] = mproc__p2u(it);
    publish(l, nr, l->cap, l->count + 1);
  }
  mproc__tx_commit(&l->tx);
out:
  unlock(l);
  return rc;
}

int mproc_list_len(mproc_list_t *l, size_t *n) {
  if (!l || !n) return -EINVAL;
  int rc;
  if (is_proxy(l)) {
    mproc__rreply rep;
    if ((rc = mproc__remote(l, MPROC__OP_LIST_LEN, NULL, 0, &rep))) return rc;
    if (rep.nf != 1 || rep.f[0].type != MPROC__F_I64 || rep.f[0].i < 0) rc = MPROC_EPROTO;
    else *n = (size_t)rep.f[0].i;
    free(rep.mem);
    return rc;
  }
  if ((rc = check(l)) || (rc = lock(l))) return rc;
  *n = (size_t)l->count;
  unlock(l);
  return 0;
}

int mproc_list_snapshot(mproc_list_t *l, mproc_blob **out, size_t *n) {
  if (!l || !out || !n) return -EINVAL;
  int rc;
  if (is_proxy(l)) {
    mproc__rreply rep;
    if ((rc = mproc__remote(l, MPROC__OP_LIST_SNAPSHOT, NULL, 0, &rep))) return rc;
    rc = mproc__blobs_from_reply(&rep, out, n);
    free(rep.mem);
    return rc;
  }
  if ((rc = check(l)) || (rc = lock(l))) return rc;
  size_t bytes = 0;
  for (uint64_t i = 0; i < l->count; i++) bytes += ((item *)mproc__u2p(*SLOT(l, i)))->len;
  char *data;
  if (!(rc = mproc__blobs_new((size_t)l->count, bytes, out, &data))) {
    for (uint64_t i = 0; i < l->count; i++) {
      const item *it = mproc__u2p(*SLOT(l, i));
      data = mproc__blob_put(&(*out)[i], data, it->data, it->len);
    }
    *n = (size_t)l->count;
  }
  unlock(l);
  return rc;
}

int mproc_list_clear(mproc_list_t *l) {
  if (!l) return -EINVAL;
  int rc;
  if (is_proxy(l)) return mproc__remote(l, MPROC__OP_LIST_CLEAR, NULL, 0, NULL);
  if ((rc = check(l)) || (rc = lock(l))) return rc;
  if (l->ring) {
    mproc__tx_garbage(&l->tx, RING(l), l->cap, MPROC__GARB_SLOTS8);
    mproc__tx_set(&l->tx, &l->ring, 0);
    mproc__tx_set(&l->tx, &l->cap, 0);
    mproc__tx_set(&l->tx, &l->head, 0);
    mproc__tx_set(&l->tx, &l->count, 0);
    mproc__tx_commit(&l->tx);
  }
  unlock(l);
  return 0;
}

STATIC_ASSERT(offsetof(struct mproc_list, magic) == offsetof(mproc__proxy_hdr, magic),
              "list and proxy magic at the same offset");

int mproc__list_validate(mproc_list_t *l) {
  int rc;
  if ((rc = check(l)) || (rc = lock(l))) return rc;
  rc = 0;
  if (l->count > l->cap || l->tx.n || l->tx.garbage || l->tx.garbage2) rc = -EIO;
  for (uint64_t i = 0; !rc && i < l->cap; i++) {
    uint64_t p = *SLOT(l, i);
    if (i < l->count ? (!p || !mproc__heap_contains(mproc__u2p(p))) : p != 0) rc = -EIO;
  }
  unlock(l);
  return rc;
}
