/*
 * value.c - Value and Array (Python's Value/Array/RawValue/RawArray from
 * multiprocessing.sharedctypes), of any element size, in the shared heap.
 *
 * Design: one block holds a header and the bytes. A synchronized object
 * points to a Lock (its own, created with it, or the caller's, as Python's
 * lock= argument); a raw one has none. get/set copy under that lock; the
 * pointer accessors give direct access for raw use or for code that holds
 * the lock itself.
 *
 * The lock is a plain (non-recursive) mproc Lock, returned by get_lock()
 * for use with the whole lock API. Python makes it an RLock so that
 *     with v.get_lock(): v.value += 1
 * does not deadlock; we get the same by having the accessors skip locking
 * when the calling thread already holds the lock.
 *
 * Crashes: if a process died holding the lock, the next accessor performs
 * its copy and returns MPROC_EOWNERDEAD (the bytes may be half-written: the
 * caller decides whether to repair them). The lock is free again afterwards.
 *
 * Invariants: data is 16-byte aligned; size = elem_size * count never
 * overflows (checked at create); count >= 1, elem_size >= 1.
 */
#include <errno.h>
#include <string.h>

#include "sync/sync.h"

typedef struct sync_val {
  _Atomic uint32_t magic; /* SYNC_MAGIC_VALUE / _ARRAY; DEAD after destroy */
  uint32_t own_lock;      /* 1: lock created with us, destroyed with us */
  sync_lock *lock;        /* NULL for raw objects */
  size_t elem_size;       /* bytes per element (the whole size for a Value) */
  size_t count;           /* elements (1 for a Value) */
  unsigned char data[];   /* elem_size * count bytes */
} sync_val;
STATIC_ASSERT(offsetof(sync_val, data) % 16 == 0, "value data alignment");

static int val_new(sync_val **out, uint32_t magic, size_t elem_size, size_t count,
                   const void *init, const mproc_value_opts *opts) {
  if (!out || elem_size == 0 || count == 0) return -EINVAL;
  if (count > (SIZE_MAX - sizeof(sync_val)) / elem_size) return -EINVAL;
  unsigned flags = opts ? opts->flags : 0;
  if (flags & ~(unsigned)MPROC_VALUE_RAW) return -EINVAL;
  sync_lock *user = opts ? (sync_lock *)(void *)opts->lock : NULL;
  if ((flags & MPROC_VALUE_RAW) && user) return -EINVAL;
  int rc;
  if (user && (rc = sync_check(user, SYNC_MAGIC_LOCK))) return rc;
  size_t size = elem_size * count;
  void *p;
  if ((rc = mproc__heap_alloc(sizeof(sync_val) + size, &p))) return rc;
  sync_val *v = p;
  v->elem_size = elem_size;
  v->count = count;
  if (user) {
    v->lock = user;
  } else if (!(flags & MPROC_VALUE_RAW)) {
    if ((rc = mproc__sync_lock_new(&v->lock, SYNC_MAGIC_LOCK))) {
      mproc__heap_free(p);
      return rc;
    }
    v->own_lock = 1;
  }
  if (init) memcpy(v->data, init, size); /* heap blocks come zeroed */
  sync_stamp(v, magic);
  *out = v;
  return 0;
}

static int val_destroy(void *obj, uint32_t magic) {
  if (!obj) return 0;
  int rc = sync_check(obj, magic);
  if (rc) return rc;
  sync_val *v = obj;
  if (v->own_lock) {
    sync_lock *l = v->lock;
    if (mproc__rmutex_owner(&l->mu) != 0) {
      if (!mproc__rmutex_held(&l->mu)) return -EBUSY;
      mproc__rmutex_unlock(&l->mu);
    }
    mproc__sync_lock_free(l);
  }
  atomic_store_explicit(&v->magic, MPROC__DEAD_MAGIC, memory_order_release);
  mproc__heap_free(v);
  return 0;
}

/* Take the object's lock unless it is raw or the caller already holds it.
 * *taken says whether to release it after. 0, MPROC_EOWNERDEAD or an error
 * (the lock was destroyed under us). */
static int guard_enter(sync_val *v, int *taken) {
  *taken = 0;
  sync_lock *l = v->lock;
  if (!l) return 0;
  int rc = sync_check(l, SYNC_MAGIC_LOCK);
  if (rc) return rc;
  if (mproc__rmutex_held(&l->mu)) return 0;
  rc = mproc__rmutex_lock(&l->mu, NULL);
  if (rc == 0 || rc == MPROC_EOWNERDEAD) *taken = 1;
  return rc;
}

static void guard_exit(sync_val *v, int taken) {
  if (taken) mproc__rmutex_unlock(&v->lock->mu);
}

/* Copy `len` bytes at byte offset `off`, in (to object) or out (from it). */
static int val_copy(sync_val *v, size_t off, void *buf, size_t len, int to_obj) {
  int taken, rc = guard_enter(v, &taken);
  if (rc && rc != MPROC_EOWNERDEAD) return rc;
  if (to_obj)
    memcpy(v->data + off, buf, len);
  else
    memcpy(buf, v->data + off, len);
  guard_exit(v, taken);
  return rc;
}

static int val_get_lock(void *obj, uint32_t magic, mproc_lock_t **lock) {
  int rc = sync_check(obj, magic);
  if (rc) return rc;
  if (!lock) return -EINVAL;
  sync_val *v = obj;
  if (!v->lock) return -ENOTSUP;
  *lock = (mproc_lock_t *)(void *)v->lock;
  return 0;
}

/* ---- Value ---- */

int mproc_value_create(mproc_value_t **v, size_t size, const void *init,
                       const mproc_value_opts *opts) {
  if (!v) return -EINVAL;
  return val_new((sync_val **)(void *)v, SYNC_MAGIC_VALUE, size, 1, init, opts);
}

int mproc_value_destroy(mproc_value_t *v) { return val_destroy(v, SYNC_MAGIC_VALUE); }

int mproc_value_get(mproc_value_t *v, void *out, size_t size) {
  int rc = sync_check(v, SYNC_MAGIC_VALUE);
  if (rc) return rc;
  sync_val *s = (sync_val *)(void *)v;
  if (!out || size != s->elem_size) return -EINVAL;
  return val_copy(s, 0, out, size, 0);
}

int mproc_value_set(mproc_value_t *v, const void *in, size_t size) {
  int rc = sync_check(v, SYNC_MAGIC_VALUE);
  if (rc) return rc;
  sync_val *s = (sync_val *)(void *)v;
  if (!in || size != s->elem_size) return -EINVAL;
  return val_copy(s, 0, (void *)(uintptr_t)in, size, 1);
}

void *mproc_value_ptr(mproc_value_t *v) {
  if (sync_check(v, SYNC_MAGIC_VALUE)) return NULL;
  return ((sync_val *)(void *)v)->data;
}

size_t mproc_value_size(const mproc_value_t *v) {
  if (sync_check(v, SYNC_MAGIC_VALUE)) return 0;
  return ((const sync_val *)(const void *)v)->elem_size;
}

int mproc_value_get_lock(mproc_value_t *v, mproc_lock_t **lock) {
  return val_get_lock(v, SYNC_MAGIC_VALUE, lock);
}

int mproc_value_get_i64(mproc_value_t *v, int64_t *out) {
  return mproc_value_get(v, out, sizeof *out);
}
int mproc_value_set_i64(mproc_value_t *v, int64_t x) {
  return mproc_value_set(v, &x, sizeof x);
}
int mproc_value_get_f64(mproc_value_t *v, double *out) {
  return mproc_value_get(v, out, sizeof *out);
}
int mproc_value_set_f64(mproc_value_t *v, double x) {
  return mproc_value_set(v, &x, sizeof x);
}

int mproc_value_add_i64(mproc_value_t *v, int64_t delta, int64_t *result) {
  int rc = sync_check(v, SYNC_MAGIC_VALUE);
  if (rc) return rc;
  sync_val *s = (sync_val *)(void *)v;
  if (s->elem_size != sizeof(int64_t)) return -EINVAL;
  int taken;
  rc = guard_enter(s, &taken);
  if (rc && rc != MPROC_EOWNERDEAD) return rc;
  int64_t x;
  memcpy(&x, s->data, sizeof x);
  /* Wrap like the hardware does, without signed-overflow UB. */
  x = (int64_t)((uint64_t)x + (uint64_t)delta);
  memcpy(s->data, &x, sizeof x);
  guard_exit(s, taken);
  if (result) *result = x;
  return rc;
}

/* ---- Array ---- */

int mproc_array_create(mproc_array_t **a, size_t elem_size, size_t count,
                       const void *init, const mproc_value_opts *opts) {
  if (!a) return -EINVAL;
  return val_new((sync_val **)(void *)a, SYNC_MAGIC_ARRAY, elem_size, count, init, opts);
}

int mproc_array_destroy(mproc_array_t *a) { return val_destroy(a, SYNC_MAGIC_ARRAY); }

size_t mproc_array_len(const mproc_array_t *a) {
  if (sync_check(a, SYNC_MAGIC_ARRAY)) return 0;
  return ((const sync_val *)(const void *)a)->count;
}

size_t mproc_array_elem_size(const mproc_array_t *a) {
  if (sync_check(a, SYNC_MAGIC_ARRAY)) return 0;
  return ((const sync_val *)(const void *)a)->elem_size;
}

void *mproc_array_ptr(mproc_array_t *a) {
  if (sync_check(a, SYNC_MAGIC_ARRAY)) return NULL;
  return ((sync_val *)(void *)a)->data;
}

int mproc_array_get_lock(mproc_array_t *a, mproc_lock_t **lock) {
  return val_get_lock(a, SYNC_MAGIC_ARRAY, lock);
}

/* Elements [start, start+n) as a byte range, or -ERANGE. */
static int array_range(mproc_array_t *a, size_t start, size_t n, const void *buf,
                       sync_val **sv, size_t *off, size_t *len) {
  int rc = sync_check(a, SYNC_MAGIC_ARRAY);
  if (rc) return rc;
  sync_val *s = (sync_val *)(void *)a;
  if (!buf && n) return -EINVAL; /* an empty slice needs no buffer */
  if (start > s->count || n > s->count - start) return -ERANGE;
  *sv = s;
  *off = start * s->elem_size;
  *len = n * s->elem_size;
  return 0;
}

int mproc_array_read(mproc_array_t *a, size_t start, size_t n, void *out) {
  sync_val *s;
  size_t off, len;
  int rc = array_range(a, start, n, out, &s, &off, &len);
  if (rc) return rc;
  return len ? val_copy(s, off, out, len, 0) : 0;
}

int mproc_array_write(mproc_array_t *a, size_t start, size_t n, const void *in) {
  sync_val *s;
  size_t off, len;
  int rc = array_range(a, start, n, in, &s, &off, &len);
  if (rc) return rc;
  return len ? val_copy(s, off, (void *)(uintptr_t)in, len, 1) : 0;
}

int mproc_array_get(mproc_array_t *a, size_t i, void *out) {
  return mproc_array_read(a, i, 1, out);
}

int mproc_array_set(mproc_array_t *a, size_t i, const void *in) {
  return mproc_array_write(a, i, 1, in);
}

/* Typed element helpers: the array's element size must be 8. */
static int array_is8(mproc_array_t *a) {
  int rc = sync_check(a, SYNC_MAGIC_ARRAY);
  if (rc) return rc;
  return ((sync_val *)(void *)a)->elem_size == 8 ? 0 : -EINVAL;
}

int mproc_array_get_i64(mproc_array_t *a, size_t i, int64_t *out) {
  int rc = array_is8(a);
  return rc ? rc : mproc_array_read(a, i, 1, out);
}
int mproc_array_set_i64(mproc_array_t *a, size_t i, int64_t x) {
  int rc = array_is8(a);
  return rc ? rc : mproc_array_write(a, i, 1, &x);
}
int mproc_array_get_f64(mproc_array_t *a, size_t i, double *out) {
  int rc = array_is8(a);
  return rc ? rc : mproc_array_read(a, i, 1, out);
}
int mproc_array_set_f64(mproc_array_t *a, size_t i, double x) {
  int rc = array_is8(a);
  return rc ? rc : mproc_array_write(a, i, 1, &x);
}
