/*
 * dict.c - the shared-heap dict: byte-string keys -> byte-string values.
 *
 * DESIGN
 * Open addressing with linear probing over a power-of-two table of 16-byte
 * slots {hash, entry pointer}; an entry is one heap block holding the hash,
 * the key and the value. Slot pointer 0 = empty, 1 = tombstone (deleted).
 * Open addressing was chosen over chaining for crash safety: entries are
 * never relinked, so a resize builds a new, unpublished table and publishes
 * it with one logged store; every other change is at most four logged word
 * stores (see tx.h). So a process killed anywhere leaves the dict as it was
 * before or after its call, never in between.
 *
 * Keys are hashed with SipHash-2-4 (libsodium crypto_shorthash) under a
 * random per-dict key, so remote clients of a manager cannot mount
 * hash-flooding attacks.
 *
 * Load: the table grows (doubling) when live + tombstones would exceed 1/2 of
 * the slots, and shrinks when live entries fall under 1/8, so deleting
 * entries returns the table's memory as well as the entries'.
 *
 * Invariants (per shard, with its lock held and no transaction open): count = live
 * slots; used = live + tombstone slots; used * 2 <= cap so probing always
 * meets an empty slot; gen changes whenever a key is added or removed or the
 * table is rebuilt (iterators detect it).
 *
 * Shards: the dict is 16 independent tables (shard = the hash's top 4
 * bits), each with its own robust lock, undo log and generation, so
 * processes working on different keys rarely touch the same lock or cache
 * lines. Single-key calls lock one shard; len, clear, keys/items and
 * destroy lock all shards in index order, so they stay atomic snapshots.
 *
 * Lock order: shard locks in index order -> heap lock. The hot path takes
 * one shard lock once.
 */
#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "heap/heap.h"
#include "internal.h"
#include "platform/robust.h"
#include "shared/shared.h"
#include "shared/tx.h"

#define DICT_MAGIC MPROC__MAGIC('D', 'I', 'C', 'T')
#define TOMB ((uint64_t)1)
#define MIN_CAP 8u
#define MAX_LEN ((size_t)UINT32_MAX)
#define NSHARD_BITS 4
#define NSHARD (1u << NSHARD_BITS)

typedef struct slot {
  uint64_t hash; /* hash of the entry's key (meaningless unless ptr > 1) */
  uint64_t ptr;  /* entry *, 0 empty, 1 tombstone */
} slot;

typedef struct entry {
  uint64_t hash;         /* same as the slot's */
  uint32_t klen;         /* key bytes */
  uint32_t vlen;         /* value bytes */
  unsigned char data[];  /* key then value */
} entry;

/* One independently locked part of a dict. */
typedef struct shard {
  mproc__rmutex mu; /* protects everything below */
  uint64_t count;   /* live entries */
  uint64_t used;    /* live + tombstones */
  uint64_t cap;     /* slots (power of two) or 0 before the first insert */
  uint64_t table;   /* slot * */
  uint64_t gen;     /* structure generation, for iterators */
  mproc__tx tx;     /* undo log and garbage slot */
  uint64_t pad[4];  /* keeps neighbouring shards' hot words apart */
} shard;

struct mproc_dict {
  uint64_t scratch[2]; /* left to the allocator (see mproc__proxy_hdr) */
  uint32_t magic;   /* DICT_MAGIC, MPROC__DEAD_MAGIC after destroy */
  uint32_t flags;   /* MPROC__DICT_F_* */
  unsigned char seed[crypto_shorthash_KEYBYTES]; /* SipHash key */
  shard sh[NSHARD]; /* by the hash's top bits */
};

struct mproc_dict_iter {
  mproc_dict_t *d;     /* heap dict, or NULL when walking a snapshot */
  uint64_t gen[NSHARD]; /* each shard's gen when created */
  uint32_t shard;      /* shard being walked */
  uint64_t pos;        /* next slot to look at / next snapshot item */
  mproc_blob *snap;    /* proxy: items snapshot */
  size_t nsnap;        /* proxy: entries in snap */
  void *buf;           /* copies handed out by next() */
  size_t bufcap;
};

static inline slot *TBL(const shard *d) { return mproc__u2p(d->table); }

static int is_dict_proxy(const void *d) {
  return mproc__is_proxy(d, MPROC__OBJ_DICT) || mproc__is_proxy(d, MPROC__OBJ_NAMESPACE);
}

/* Validate a heap dict handle (not a proxy). */
static int check(const mproc_dict_t *d) {
  if (!d) return -EINVAL;
  if (!mproc__heap_contains(d)) return -EINVAL;
  if (d->magic == MPROC__DEAD_MAGIC) return MPROC_EDESTROYED;
  if (d->magic != DICT_MAGIC) return -EINVAL;
  return 0;
}

static inline shard *SHARD(mproc_dict_t *d, uint64_t h) {
  return &d->sh[h >> (64 - NSHARD_BITS)];
}

static int lock(mproc_dict_t *dd, shard *d) {
  int rc = mproc__rmutex_lock(&d->mu, NULL);
  if (rc == MPROC_EOWNERDEAD) {
    /* The previous holder died mid-call: undo its half-made change. */
    mproc__tx_recover(&d->tx);
    rc = 0;
  }
  if (rc) return rc;
  if (dd->magic != DICT_MAGIC) { /* destroyed while we waited */
    mproc__rmutex_unlock(&d->mu);
    return MPROC_EDESTROYED;
  }
  return 0;
}

static void unlock(shard *d) { mproc__rmutex_unlock(&d->mu); }

/* Lock every shard, in index order (the one order, so no deadlock). */
static int lock_all(mproc_dict_t *d) {
  for (unsigned i = 0; i < NSHARD; i++) {
    int rc = lock(d, &d->sh[i]);
    if (rc) {
      while (i-- > 0) unlock(&d->sh[i]);
      return rc;
    }
  }
  return 0;
}

static void unlock_all(mproc_dict_t *d) {
  for (unsigned i = NSHARD; i-- > 0;) unlock(&d->sh[i]);
}

static int bytes_ok(const void *p, size_t len) {
  if (!p && len) return -EINVAL;
  if (len > MAX_LEN) return -EMSGSIZE;
  return 0;
}

static uint64_t hash_key(const mproc_dict_t *d, const void *k, size_t kl) {
  unsigned char out[crypto_shorthash_BYTES];
  crypto_shorthash(out, k ? k : (const void *)"", kl, d->seed);
  uint64_t h;
  memcpy(&h, out, sizeof h);
  return h;
}

/* Slot index holding key, or -1; *ins gets where to insert it. */
static int64_t find(const shard *d, const void *k, size_t kl, uint64_t h,
                    uint64_t *ins) {
  if (!d->cap) return -1;
  const slot *t = TBL(d);
  uint64_t mask = d->cap - 1, i = h & mask;
  int64_t free_at = -1;
  for (;;) {
    uint64_t p = t[i].ptr;
    if (p == 0) {
      if (ins) *ins = free_at >= 0 ? (uint64_t)free_at : i;
      return -1;
    }
    if (p == TOMB) {
      if (free_at < 0) free_at = (int64_t)i;
    } else if (t[i].hash == h) {
      const entry *e = mproc__u2p(p);
      if (e->klen == kl && (kl == 0 || memcmp(e->data, k, kl) == 0)) return (int64_t)i;
    }
    i = (i + 1) & mask;
  }
}

static uint64_t pow2_at_least(uint64_t n) {
  uint64_t c = MIN_CAP;
  while (c < n) c <<= 1;
  return c;
}

/* Rebuild the table with ncap slots (drops tombstones). One transaction. */
static int resize(shard *d, uint64_t ncap) {
  if (ncap > SIZE_MAX / sizeof(slot)) return -ENOMEM;
  slot *nt;
  int rc = mproc__tx_alloc(&d->tx, (size_t)ncap * sizeof(slot), (void **)&nt);
  if (rc) return rc;
  const slot *t = TBL(d);
  uint64_t mask = ncap - 1;
  for (uint64_t i = 0; i < d->cap; i++) {
    if (t[i].ptr <= TOMB) continue;
    uint64_t j = t[i].hash & mask;
    while (nt[j].ptr) j = (j + 1) & mask;
    nt[j] = t[i];
  }
  if (d->table) mproc__tx_garbage(&d->tx, mproc__u2p(d->table), 0, MPROC__GARB_BLOCK);
  mproc__tx_set(&d->tx, &d->table, mproc__p2u(nt));
  mproc__tx_set(&d->tx, &d->cap, ncap);
  mproc__tx_set(&d->tx, &d->used, d->count);
  mproc__tx_set(&d->tx, &d->gen, d->gen + 1);
  mproc__tx_commit(&d->tx);
  return 0;
}

static void maybe_shrink(shard *d) {
  if (d->cap > MIN_CAP && d->count * 8 < d->cap) {
    /* Best effort: if the heap cannot give the smaller table, keep the big
     * one (still correct). */
    (void)resize(d, pow2_at_least(d->count * 4));
  }
}

int mproc__dict_create_flags(mproc_dict_t **out, uint32_t flags) {
  if (!out) return -EINVAL;
  if (sodium_init() < 0) return -ENOSYS;
  mproc_dict_t *d;
  int rc = mproc__heap_alloc(sizeof *d, (void **)&d);
  if (rc) return rc;
  for (unsigned i = 0; i < NSHARD; i++) mproc__rmutex_init(&d->sh[i].mu);
  randombytes_buf(d->seed, sizeof d->seed);
  d->flags = flags;
  d->magic = DICT_MAGIC;
  *out = d;
  return 0;
}

int mproc_dict_create(mproc_dict_t **d, const void *opts) {
  if (!d || opts) return -EINVAL;
  return mproc__dict_create_flags(d, 0);
}

int mproc_dict_destroy(mproc_dict_t *d) {
  if (!d) return 0;
  if (is_dict_proxy(d)) {
    ((mproc__proxy_hdr *)d)->magic = MPROC__DEAD_MAGIC;
    free(d);
    return 0;
  }
  int rc = check(d);
  if (rc) return rc;
  if ((rc = lock_all(d))) return rc;
  /* Mark dead first so waiters leave; then free tables and entries (nobody
   * can resume this: the dict is gone, so a death here can only leak). */
  d->magic = MPROC__DEAD_MAGIC;
  slot *tabs[NSHARD];
  uint64_t caps[NSHARD];
  for (unsigned k = 0; k < NSHARD; k++) {
    shard *sh = &d->sh[k];
    tabs[k] = TBL(sh);
    caps[k] = sh->cap;
    sh->table = 0;
    sh->cap = sh->count = sh->used = 0;
  }
  unlock_all(d);
  for (unsigned k = 0; k < NSHARD; k++) {
    slot *t = tabs[k];
    if (!t) continue;
    for (uint64_t i = 0; i < caps[k]; i++)
      if (t[i].ptr > TOMB) mproc__heap_free(mproc__u2p(t[i].ptr));
    mproc__heap_free(t);
  }
  mproc__heap_free(d);
  return 0;
}

/* ---- remote forms ---- */

static int r_get(mproc_dict_t *d, const void *k, size_t kl, mproc__rreply *rep) {
  mproc__rfield a[] = {mproc__rf_bytes(k, kl)};
  int rc = mproc__remote(d, MPROC__OP_DICT_GET, a, 1, rep);
  if (rc) return rc;
  if (rep->nf != 1 || rep->f[0].type != MPROC__F_BYTES) {
    free(rep->mem);
    return MPROC_EPROTO;
  }
  return 0;
}

static int r_simple(mproc_dict_t *d, int op, const void *k, size_t kl, int64_t *res) {
  mproc__rfield a[] = {mproc__rf_bytes(k, kl)};
  mproc__rreply rep;
  int rc = mproc__remote(d, op, a, k || kl ? 1 : 0, &rep);
  if (rc) return rc;
  if (res) {
    if (rep.nf != 1 || rep.f[0].type != MPROC__F_I64) rc = MPROC_EPROTO;
    else *res = rep.f[0].i;
  }
  free(rep.mem);
  return rc;
}

/* ---- operations ---- */

int mproc_dict_set(mproc_dict_t *d, const void *key, size_t klen, const void *val,
                   size_t vlen) {
  if (!d) return -EINVAL;
  int rc;
  if ((rc = bytes_ok(key, klen)) || (rc = bytes_ok(val, vlen))) return rc;
  if (is_dict_proxy(d)) {
    mproc__rfield a[] = {mproc__rf_bytes(key, klen), mproc__rf_bytes(val, vlen)};
    return mproc__remote(d, MPROC__OP_DICT_SET, a, 2, NULL);
  }
  if ((rc = check(d))) return rc;
  if (klen + vlen > SIZE_MAX - sizeof(entry)) return -EMSGSIZE;
  uint64_t h = hash_key(d, key, klen);
  shard *sh = SHARD(d, h);
  /* Build the entry before taking the lock: the allocation and the copy
   * stay out of the critical section. */
  entry *e;
  if ((rc = mproc__heap_alloc(sizeof(entry) + klen + vlen, (void **)&e))) return rc;
  e->hash = h;
  e->klen = (uint32_t)klen;
  e->vlen = (uint32_t)vlen;
  if (klen) memcpy(e->data, key, klen);
  if (vlen) memcpy(e->data + klen, val, vlen);
  if ((rc = lock(d, sh))) {
    mproc__heap_free(e);
    return rc;
  }
  mproc__tx_adopt(&sh->tx, e);
  uint64_t ins = 0;
  int64_t at = find(sh, key, klen, h, &ins);
  if (at < 0 && (sh->cap == 0 || (sh->used + 1) * 2 > sh->cap)) {
    rc = resize(sh, pow2_at_least((sh->count + 1) * 4));
    if (rc) {
      mproc__tx_recover(&sh->tx); /* frees e */
      goto out;
    }
    mproc__tx_adopt(&sh->tx, e); /* the resize's commit released it */
    at = find(sh, key, klen, h, &ins);
  }
  slot *t = TBL(sh);
  if (at >= 0) {
    /* Replace: same slot, so iterators are not disturbed. */
    mproc__tx_garbage(&sh->tx, mproc__u2p(t[at].ptr), 0, MPROC__GARB_BLOCK);
    mproc__tx_set(&sh->tx, &t[at].ptr, mproc__p2u(e));
  } else {
    uint64_t was = t[ins].ptr;
    t[ins].hash = h; /* harmless before ptr is set: slot is free */
    mproc__tx_set(&sh->tx, &t[ins].ptr, mproc__p2u(e));
    mproc__tx_set(&sh->tx, &sh->count, sh->count + 1);
    if (was == 0) mproc__tx_set(&sh->tx, &sh->used, sh->used + 1);
    mproc__tx_set(&sh->tx, &sh->gen, sh->gen + 1);
  }
  mproc__tx_commit(&sh->tx);
out:
  unlock(sh);
  return rc;
}

/* Check d, lock the shard of key and find the key: *at is its slot, or
 * negative when absent. On success the caller holds (*sh)'s lock. */
static int lock_find(mproc_dict_t *d, const void *key, size_t klen, shard **sh,
                     int64_t *at) {
  int rc = check(d);
  if (rc) return rc;
  uint64_t h = hash_key(d, key, klen);
  *sh = SHARD(d, h);
  if ((rc = lock(d, *sh))) return rc;
  *at = find(*sh, key, klen, h, NULL);
  return 0;
}

/* The value of key: copied into buf (val NULL) or into a malloc'd buffer
 * returned in *val. */
static int get_value(mproc_dict_t *d, const void *key, size_t klen, void *buf, size_t cap,
                     void **val, size_t *vlen) {
  int rc = bytes_ok(key, klen);
  if (rc) return rc;
  const void *v;
  size_t n;
  mproc__rreply rep = {0};
  shard *sh = NULL;
  if (is_dict_proxy(d)) {
    if ((rc = r_get(d, key, klen, &rep))) return rc;
    v = rep.f[0].p;
    n = rep.f[0].len;
  } else {
    int64_t at;
    if ((rc = lock_find(d, key, klen, &sh, &at))) return rc;
    if (at < 0) {
      unlock(sh);
      return -ENOENT;
    }
    const entry *e = mproc__u2p(TBL(sh)[at].ptr);
    v = e->data + e->klen;
    n = e->vlen;
  }
  rc = val ? mproc__dup_out(v, n, val, vlen) : mproc__copy_out(v, n, buf, cap, vlen);
  if (sh) unlock(sh);
  free(rep.mem);
  return rc;
}

int mproc_dict_get(mproc_dict_t *d, const void *key, size_t klen, void *buf, size_t cap,
                   size_t *vlen) {
  if (!d || !vlen || (!buf && cap)) return -EINVAL;
  return get_value(d, key, klen, buf, cap, NULL, vlen);
}

int mproc_dict_get_alloc(mproc_dict_t *d, const void *key, size_t klen, void **val,
                         size_t *vlen) {
  if (!d || !val) return -EINVAL;
  return get_value(d, key, klen, NULL, 0, val, vlen);
}

int mproc_dict_delete(mproc_dict_t *d, const void *key, size_t klen) {
  if (!d) return -EINVAL;
  int rc = bytes_ok(key, klen);
  if (rc) return rc;
  if (is_dict_proxy(d)) {
    mproc__rfield a[] = {mproc__rf_bytes(key, klen)};
    return mproc__remote(d, MPROC__OP_DICT_DEL, a, 1, NULL);
  }
  shard *sh;
  int64_t at;
  if ((rc = lock_find(d, key, klen, &sh, &at))) return rc;
  if (at < 0) {
    rc = -ENOENT;
  } else {
    slot *t = TBL(sh);
    mproc__tx_garbage(&sh->tx, mproc__u2p(t[at].ptr), 0, MPROC__GARB_BLOCK);
    mproc__tx_set(&sh->tx, &t[at].ptr, TOMB);
    mproc__tx_set(&sh->tx, &sh->count, sh->count - 1);
    mproc__tx_set(&sh->tx, &sh->gen, sh->gen + 1);
    mproc__tx_commit(&sh->tx);
    maybe_shrink(sh);
  }
  unlock(sh);
  return rc;
}

int mproc_dict_contains(mproc_dict_t *d, const void *key, size_t klen) {
  if (!d) return -EINVAL;
  int rc = bytes_ok(key, klen);
  if (rc) return rc;
  if (is_dict_proxy(d)) {
    int64_t r = 0;
    mproc__rfield a[] = {mproc__rf_bytes(key, klen)};
    mproc__rreply rep;
    if ((rc = mproc__remote(d, MPROC__OP_DICT_CONTAINS, a, 1, &rep))) return rc;
    if (rep.nf != 1 || rep.f[0].type != MPROC__F_I64) rc = MPROC_EPROTO;
    else r = rep.f[0].i;
    free(rep.mem);
    return rc ? rc : (r != 0);
  }
  shard *sh;
  int64_t at;
  if ((rc = lock_find(d, key, klen, &sh, &at))) return rc;
  unlock(sh);
  rc = at >= 0;
  return rc;
}

int mproc_dict_len(mproc_dict_t *d, size_t *n) {
  if (!d || !n) return -EINVAL;
  int rc;
  if (is_dict_proxy(d)) {
    int64_t r = 0;
    if ((rc = r_simple(d, MPROC__OP_DICT_LEN, NULL, 0, &r))) return rc;
    if (r < 0) return MPROC_EPROTO;
    *n = (size_t)r;
    return 0;
  }
  if ((rc = check(d))) return rc;
  if ((rc = lock_all(d))) return rc;
  size_t c = 0;
  for (unsigned k = 0; k < NSHARD; k++) c += (size_t)d->sh[k].count;
  unlock_all(d);
  *n = c;
  return 0;
}

int mproc_dict_clear(mproc_dict_t *d) {
  if (!d) return -EINVAL;
  int rc;
  if (is_dict_proxy(d)) return mproc__remote(d, MPROC__OP_DICT_CLEAR, NULL, 0, NULL);
  if ((rc = check(d))) return rc;
  /* All shards are held at once, so no caller sees a half-cleared dict. */
  if ((rc = lock_all(d))) return rc;
  for (unsigned k = 0; k < NSHARD; k++) {
    shard *sh = &d->sh[k];
    if (!sh->table) continue;
    /* Detach the whole table in one transaction; the sweep frees entries
     * and table and resumes after a death. */
    mproc__tx_garbage(&sh->tx, mproc__u2p(sh->table), sh->cap, MPROC__GARB_SLOTS16);
    mproc__tx_set(&sh->tx, &sh->table, 0);
    mproc__tx_set(&sh->tx, &sh->cap, 0);
    mproc__tx_set(&sh->tx, &sh->count, 0);
    mproc__tx_set(&sh->tx, &sh->used, 0);
    mproc__tx_set(&sh->tx, &sh->gen, sh->gen + 1);
    mproc__tx_commit(&sh->tx);
  }
  unlock_all(d);
  return 0;
}

static int snapshot(mproc_dict_t *d, int with_values, mproc_blob **out, size_t *n) {
  if (!d || !out || !n) return -EINVAL;
  int rc;
  if (is_dict_proxy(d)) {
    mproc__rreply rep;
    rc = mproc__remote(d, with_values ? MPROC__OP_DICT_ITEMS : MPROC__OP_DICT_KEYS, NULL, 0,
                       &rep);
    if (rc) return rc;
    if (with_values && rep.nf % 2) rc = MPROC_EPROTO;
    else rc = mproc__blobs_from_reply(&rep, out, n);
    free(rep.mem);
    if (!rc && with_values) *n /= 2;
    return rc;
  }
  if ((rc = check(d))) return rc;
  if ((rc = lock_all(d))) return rc; /* an atomic snapshot */
  size_t bytes = 0, cnt = 0;
  for (unsigned s = 0; s < NSHARD; s++) {
    const shard *sh = &d->sh[s];
    const slot *t = TBL(sh);
    for (uint64_t i = 0; i < sh->cap; i++) {
      if (t[i].ptr <= TOMB) continue;
      const entry *e = mproc__u2p(t[i].ptr);
      bytes += e->klen + (with_values ? (size_t)e->vlen + 1 : 0);
    }
    cnt += (size_t)sh->count;
  }
  char *data;
  rc = mproc__blobs_new(with_values ? cnt * 2 : cnt, bytes, out, &data);
  if (!rc) {
    size_t k = 0;
    for (unsigned s = 0; s < NSHARD; s++) {
      const shard *sh = &d->sh[s];
      const slot *t = TBL(sh);
      for (uint64_t i = 0; i < sh->cap; i++) {
        if (t[i].ptr <= TOMB) continue;
        const entry *e = mproc__u2p(t[i].ptr);
        data = mproc__blob_put(&(*out)[k++], data, e->data, e->klen);
        if (with_values) data = mproc__blob_put(&(*out)[k++], data, e->data + e->klen, e->vlen);
      }
    }
    *n = cnt;
  }
  unlock_all(d);
  return rc;
}

int mproc_dict_keys(mproc_dict_t *d, mproc_blob **keys, size_t *n) {
  return snapshot(d, 0, keys, n);
}

int mproc_dict_items(mproc_dict_t *d, mproc_blob **items, size_t *n) {
  return snapshot(d, 1, items, n);
}

/* ---- iterator ---- */

int mproc_dict_iter_create(mproc_dict_t *d, mproc_dict_iter_t **out) {
  if (!d || !out) return -EINVAL;
  mproc_dict_iter_t *it = calloc(1, sizeof *it);
  if (!it) return -ENOMEM;
  int rc;
  if (is_dict_proxy(d)) {
    rc = snapshot(d, 1, &it->snap, &it->nsnap);
    if (rc) {
      free(it);
      return rc;
    }
    *out = it;
    return 0;
  }
  if ((rc = check(d)) || (rc = lock_all(d))) {
    free(it);
    return rc;
  }
  it->d = d;
  for (unsigned k = 0; k < NSHARD; k++) it->gen[k] = d->sh[k].gen;
  unlock_all(d);
  *out = it;
  return 0;
}

static int iter_keep(mproc_dict_iter_t *it, const void *k, size_t kl, const void *v,
                     size_t vl, const void **key, size_t *klen, const void **val,
                     size_t *vlen) {
  size_t need = kl + vl + 2;
  if (need > it->bufcap) {
    void *nb = realloc(it->buf, need);
    if (!nb) return -ENOMEM;
    it->buf = nb;
    it->bufcap = need;
  }
  char *b = it->buf;
  if (kl) memcpy(b, k, kl);
  b[kl] = 0;
  if (vl) memcpy(b + kl + 1, v, vl);
  b[kl + 1 + vl] = 0;
  if (key) *key = b;
  if (klen) *klen = kl;
  if (val) *val = b + kl + 1;
  if (vlen) *vlen = vl;
  return 0;
}

int mproc_dict_iter_next(mproc_dict_iter_t *it, const void **key, size_t *klen,
                         const void **val, size_t *vlen) {
  if (!it) return -EINVAL;
  if (!it->d) {
    if (it->pos >= it->nsnap) return MPROC_ESTOPITER;
    const mproc_blob *b = &it->snap[2 * it->pos++];
    return iter_keep(it, b[0].data, b[0].len, b[1].data, b[1].len, key, klen, val, vlen);
  }
  mproc_dict_t *d = it->d;
  int rc;
  if ((rc = check(d))) return rc;
  /* Keys added or removed anywhere since create: Python's "changed size
   * during iteration". The generations are read without the shard locks
   * (a word-sized relaxed load: at worst a change in flight is seen one
   * call later); the shard being walked is re-checked under its lock. */
  for (unsigned k = 0; k < NSHARD; k++)
    if (__atomic_load_n(&d->sh[k].gen, __ATOMIC_RELAXED) != it->gen[k]) return MPROC_ESTATE;
  /* Walk shard by shard, holding one shard at a time so other processes
   * keep working. */
  for (;;) {
    if (it->shard >= NSHARD) return MPROC_ESTOPITER;
    shard *sh = &d->sh[it->shard];
    if ((rc = lock(d, sh))) return rc;
    if (sh->gen != it->gen[it->shard]) {
      unlock(sh);
      return MPROC_ESTATE;
    }
    const slot *t = TBL(sh);
    while (it->pos < sh->cap && t[it->pos].ptr <= TOMB) it->pos++;
    if (it->pos < sh->cap) {
      const entry *e = mproc__u2p(t[it->pos++].ptr);
      rc = iter_keep(it, e->data, e->klen, e->data + e->klen, e->vlen, key, klen, val, vlen);
      unlock(sh);
      return rc;
    }
    unlock(sh);
    it->shard++;
    it->pos = 0;
  }
}

int mproc_dict_iter_destroy(mproc_dict_iter_t *it) {
  if (!it) return 0;
  free(it->snap);
  free(it->buf);
  free(it);
  return 0;
}

STATIC_ASSERT(offsetof(struct mproc_dict, magic) == offsetof(mproc__proxy_hdr, magic),
              "dict and proxy magic at the same offset");

int mproc__dict_validate(mproc_dict_t *d) {
  int rc;
  if ((rc = check(d)) || (rc = lock_all(d))) return rc;
  rc = 0;
  for (unsigned k = 0; k < NSHARD; k++) {
    const shard *sh = &d->sh[k];
    const slot *t = TBL(sh);
    uint64_t live = 0, used = 0;
    for (uint64_t i = 0; i < sh->cap; i++) {
      if (t[i].ptr == 0) continue;
      used++;
      if (t[i].ptr == TOMB) continue;
      live++;
      const entry *e = mproc__u2p(t[i].ptr);
      if (!mproc__heap_contains(e) || e->hash != t[i].hash ||
          hash_key(d, e->data, e->klen) != e->hash || SHARD(d, e->hash) != sh ||
          find(sh, e->data, e->klen, e->hash, NULL) != (int64_t)i)
        rc = -EIO;
    }
    if (live != sh->count || used != sh->used || (sh->cap && used * 2 > sh->cap) ||
        sh->tx.n || sh->tx.garbage || sh->tx.garbage2)
      rc = -EIO;
  }
  unlock_all(d);
  return rc;
}
