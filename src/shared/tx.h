/*
 * tx.h - crash-atomic updates of heap containers (undo log + garbage slot).
 *
 * DESIGN
 * A container (dict, list) is changed only while its robust mutex is held.
 * A process may be SIGKILLed at any instruction, so every multi-word change
 * goes through a small undo log kept inside the container's header:
 *
 *   tx_set(tx, &field, value)  records (address, old value), bumps tx->n,
 *                              then stores the new value;
 *   tx_alloc(tx, size, &p)     allocates a heap block and records it so a
 *                              rollback frees it (the block is not yet
 *                              reachable from the container);
 *   tx_commit(tx)              forgets the allocations, then empties the log.
 *
 * The next locker that gets MPROC_EOWNERDEAD calls tx_recover(): it restores
 * the logged words newest-first (idempotent, so a death during recovery is
 * recovered again), frees the recorded allocations, then finishes any
 * garbage sweep. So an interrupted operation has not happened.
 *
 * Memory a committed operation released (a replaced entry, an old table, the
 * entries of a cleared container) is published in the one "garbage" slot as
 * part of the transaction and swept after the commit; a sweep interrupted by
 * death is resumed by recovery. Each free is preceded by erasing its
 * reference, so a death between the two can leak one block but never free a
 * block twice.
 *
 * Only the compiler can reorder our stores in a way a dead process would
 * expose (the kernel keeps every store it made), so signal fences suffice;
 * other processes see the data through the mutex's acquire/release.
 */
#ifndef MPROC_SHARED_TX_H
#define MPROC_SHARED_TX_H

#include <stdatomic.h>
#include <stdint.h>

#include "heap/heap.h"
#include "internal.h"

#define MPROC__TX_MAX 8   /* logged words per transaction */
#define MPROC__TX_ALLOCS 3 /* blocks allocated per transaction */

/* What the garbage slot holds. */
enum mproc__garb_kind {
  MPROC__GARB_BLOCK = 1,   /* one heap block */
  MPROC__GARB_SLOTS16 = 2, /* dict table: 16-byte slots {hash, ptr}; frees
                              each ptr > 1 then the table */
  MPROC__GARB_SLOTS8 = 3,  /* list ring: 8-byte slots; frees each non-zero
                              slot then the ring */
  MPROC__GARB_VEC = 4      /* word 0 = n, words 1..n entries: frees them */
};

typedef struct mproc__tx {
  uint64_t n; /* valid undo records */
  struct {
    uint64_t *addr; /* word that was changed */
    uint64_t old;   /* its value before */
  } rec[MPROC__TX_MAX];
  uint64_t alloc[MPROC__TX_ALLOCS]; /* blocks to free on rollback */
  uint64_t vec;       /* a VEC block to free (entries too) on rollback */
  uint64_t garbage;   /* block awaiting the sweep, 0 = none */
  uint64_t garbage_n; /* slots still to sweep (SLOTS16/SLOTS8) */
  uint64_t garbage_kind; /* enum mproc__garb_kind */
  uint64_t garbage2;  /* a second single block to free, 0 = none */
} mproc__tx;

#define MPROC__TX_FENCE() atomic_signal_fence(memory_order_seq_cst)

static inline void *mproc__u2p(uint64_t u) { return (void *)(uintptr_t)u; }
static inline uint64_t mproc__p2u(const void *p) { return (uint64_t)(uintptr_t)p; }

static inline void mproc__tx_set(mproc__tx *t, uint64_t *addr, uint64_t val) {
  uint64_t n = t->n;
  assert(n < MPROC__TX_MAX);
  t->rec[n].addr = addr;
  t->rec[n].old = *addr;
  MPROC__TX_FENCE();
  t->n = n + 1;
  MPROC__TX_FENCE();
  *addr = val;
  MPROC__TX_FENCE();
}

/* Allocate a block owned by the transaction until commit. */
static inline int mproc__tx_alloc(mproc__tx *t, size_t size, void **out) {
  int k;
  for (k = 0; k < MPROC__TX_ALLOCS; k++)
    if (!t->alloc[k]) break;
  assert(k < MPROC__TX_ALLOCS);
  int rc = mproc__heap_alloc(size, out);
  if (rc) return rc;
  MPROC__TX_FENCE();
  t->alloc[k] = mproc__p2u(*out);
  MPROC__TX_FENCE();
  return 0;
}

/* Hand a block allocated before the lock was taken to the transaction (so
 * the allocation stays out of the critical section). A death between the
 * allocation and this call leaks that one block. */
static inline void mproc__tx_adopt(mproc__tx *t, void *p) {
  int k;
  for (k = 0; k < MPROC__TX_ALLOCS; k++)
    if (!t->alloc[k]) break;
  assert(k < MPROC__TX_ALLOCS);
  t->alloc[k] = mproc__p2u(p);
  MPROC__TX_FENCE();
}

/* Publish a block to sweep after the commit (logged: part of the tx). */
static inline void mproc__tx_garbage(mproc__tx *t, void *p, uint64_t n, int kind) {
  mproc__tx_set(t, &t->garbage_kind, (uint64_t)kind);
  mproc__tx_set(t, &t->garbage_n, n);
  mproc__tx_set(t, &t->garbage, mproc__p2u(p));
}

/* Free the entries a VEC block lists (not the block). Entries go from the
 * end, shrinking the count first, so a death here leaks at most one entry,
 * never double-frees, and a later call resumes. */
/* Publish a second single block (e.g. the item a list pop removed while the
 * ring is rebuilt). */
static inline void mproc__tx_garbage2(mproc__tx *t, void *p) {
  mproc__tx_set(t, &t->garbage2, mproc__p2u(p));
}

static inline void mproc__tx_free_vec_entries(uint64_t *v) {
  while (v[0] > 0) {
    uint64_t i = v[0];
    void *e = mproc__u2p(v[i]);
    v[0] = i - 1;
    MPROC__TX_FENCE();
    mproc__heap_free(e);
  }
}

/* Free what the garbage slot holds; resumable after a death. */
static inline void mproc__tx_sweep(mproc__tx *t) {
  if (t->garbage2) {
    void *g2 = mproc__u2p(t->garbage2);
    t->garbage2 = 0;
    MPROC__TX_FENCE();
    mproc__heap_free(g2);
  }
  if (!t->garbage) return;
  void *g = mproc__u2p(t->garbage);
  switch (t->garbage_kind) {
    case MPROC__GARB_SLOTS16: {
      uint64_t *s = g;
      while (t->garbage_n > 0) {
        uint64_t i = t->garbage_n - 1;
        uint64_t p = s[2 * i + 1];
        if (p > 1) {
          s[2 * i + 1] = 0;
          MPROC__TX_FENCE();
          mproc__heap_free(mproc__u2p(p));
        }
        t->garbage_n = i;
        MPROC__TX_FENCE();
      }
      break;
    }
    case MPROC__GARB_SLOTS8: {
      uint64_t *s = g;
      while (t->garbage_n > 0) {
        uint64_t i = t->garbage_n - 1;
        uint64_t p = s[i];
        if (p) {
          s[i] = 0;
          MPROC__TX_FENCE();
          mproc__heap_free(mproc__u2p(p));
        }
        t->garbage_n = i;
        MPROC__TX_FENCE();
      }
      break;
    }
    case MPROC__GARB_VEC:
      mproc__tx_free_vec_entries(g);
      break;
    default:
      break;
  }
  t->garbage = 0;
  MPROC__TX_FENCE();
  mproc__heap_free(g);
}

static inline void mproc__tx_commit(mproc__tx *t) {
  MPROC__TX_FENCE();
  for (int k = 0; k < MPROC__TX_ALLOCS; k++) t->alloc[k] = 0;
  t->vec = 0;
  MPROC__TX_FENCE();
  t->n = 0;
  MPROC__TX_FENCE();
  mproc__tx_sweep(t);
}

/* Undo an interrupted transaction (caller holds the lock after
 * MPROC_EOWNERDEAD), then finish a pending sweep. */
static inline void mproc__tx_recover(mproc__tx *t) {
  for (uint64_t i = t->n; i-- > 0;) {
    *t->rec[i].addr = t->rec[i].old;
    MPROC__TX_FENCE();
  }
  t->n = 0;
  MPROC__TX_FENCE();
  for (int k = 0; k < MPROC__TX_ALLOCS; k++) {
    uint64_t p = t->alloc[k];
    if (!p) continue;
    t->alloc[k] = 0;
    MPROC__TX_FENCE();
    mproc__heap_free(mproc__u2p(p));
  }
  if (t->vec) {
    uint64_t *v = mproc__u2p(t->vec);
    mproc__tx_free_vec_entries(v);
    t->vec = 0;
    MPROC__TX_FENCE();
    mproc__heap_free(v);
  }
  mproc__tx_sweep(t);
}

#endif
