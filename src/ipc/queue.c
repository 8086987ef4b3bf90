/*
 * queue.c - Queue / JoinableQueue / SimpleQueue in the shared heap.
 *
 * DESIGN
 * A bounded MPMC ring of slots (Vyukov's sequence-number ring) extended so
 * that a process killed at any instant cannot wedge it:
 *
 *   slot.word (64 bits) = seq (32) | state (2) | owner tid (30)
 *     seq == FREE(pos),     IDLE   free for position pos (a put may claim it)
 *     seq == FREE(pos),     W,tid  claimed by producer tid, being written
 *     seq == FULL(pos),     IDLE   committed: a message for position pos
 *     seq == FULL(pos),     SKIP   committed hole (its producer died)
 *     seq == FULL(pos),     R,tid  claimed by consumer tid, being read
 *     seq == FREE(pos+cap), IDLE   released: free for the next lap
 *   with FREE(p) = 2p and FULL(p) = 2p + 1 (mod 2^32).
 *
 * put: claim the slot at `tail` with one CAS on its word (which names the
 * claimer), advance `tail` (anyone who sees a claimed slot at tail helps),
 * fill the slot, commit with one release store. get mirrors it on `head`.
 * Every transition is a single atomic store or CAS on the word, so a process
 * can die only *between* transitions, leaving a slot in W or R owned by a
 * dead tid. Waiters that see such a claim for a few milliseconds check the
 * owner's liveness (ipcutil.c) and take the claim over with a CAS:
 *   - dead writer: the message is dropped (its put never returned) and the
 *     slot committed as SKIP, which consumers step over;
 *   - dead reader: its get never returned; the message went with it (at most
 *     one per killed consumer) and the slot is released for producers.
 * Nothing is ever delivered twice: a committed slot is claimed by exactly one
 * successful CAS, and `head` only moves past claimed slots.
 *
 * Large messages (> inline_max) are copied into a heap block *before* the
 * slot is claimed, so a slot stays in W for a few stores only; the slot
 * holds the block's address. Invariant: a free slot has len == 0, so a
 * recoverer frees a block only if the dead owner had stored both pointer and
 * length (a death between allocating and storing leaks that one block).
 *
 * Unbounded queues (maxsize 0) have a fixed ring plus an overflow list under
 * a robust mutex (mproc__rmutex: a holder's death gives EOWNERDEAD and the
 * list is re-walked to repair tail and count). Puts go to the overflow while
 * it is non-empty; gets take from it only when the ring is empty. So one
 * producer's messages stay in order for one consumer.
 *
 * Sleeping uses eventcounts (ipc.h): getters on ec_get, putters on ec_put,
 * join on ec_join. Sleeps are sliced (100 ms backstop, 2-5 ms while a dead
 * owner may be involved), so a notifier killed between commit and wake
 * delays a sleeper, never strands it.
 *
 * Lock order: only ov_lock exists, taken alone.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "heap/heap.h"
#include "ipc/ipc.h"
#include "platform/robust.h"

#define Q_MAGIC MPROC__MAGIC('m', 'q', 'u', 'e')
#define Q_DEFAULT_INLINE 240u
#define Q_MAX_INLINE 65536u
#define Q_DEFAULT_SLOTS 256u
#define Q_MAX_SLOTS ((uint64_t)1 << 24)
#define SLICE_BACKSTOP_NS 100000000L /* 100 ms */
#define SLICE_RECOVER_NS 3000000L    /* 3 ms */
#define SPIN_NS 10000.0              /* bounded spin before sleeping */
#define Q_SPARES 4                   /* large-message blocks cached per queue */
#define Q_SPARE_MAX ((size_t)1 << 20) /* ... each at most this big */

enum { ST_IDLE = 0, ST_W = 1, ST_R = 2, ST_SKIP = 3 };
#define TID_MASK 0x3fffffffu

/* Sequence numbers are doubled positions, so that "committed for pos" and
 * "free for pos + cap" differ even when cap is 1. */
static inline uint32_t FREE(uint64_t pos) { return (uint32_t)(pos * 2); }
static inline uint32_t FULL(uint64_t pos) { return (uint32_t)(pos * 2 + 1); }

static inline uint64_t mkw(uint32_t seq, uint32_t st, uint32_t tid) {
  return ((uint64_t)seq << 32) | ((uint64_t)st << 30) | (tid & TID_MASK);
}
static inline uint32_t w_seq(uint64_t w) { return (uint32_t)(w >> 32); }
static inline uint32_t w_st(uint64_t w) { return ((uint32_t)w >> 30) & 3u; }
static inline uint32_t w_tid(uint64_t w) { return (uint32_t)w & TID_MASK; }

typedef struct slot {
  _Atomic uint64_t word; /* seq | state | tid, see above */
  _Atomic uint64_t len;  /* payload bytes; 0 while free */
  /* then inline_max bytes: the payload, or a void* to a heap block */
} slot;

typedef struct ov_node {
  struct ov_node *next; /* next older-to-newer node, NULL at the tail */
  uint64_t len;         /* payload bytes, which follow the node */
} ov_node;

struct mproc_queue {
  uint64_t heap_words[2]; /* untouched: an allocator may link a freed block
                             through its first words; the magic below must
                             survive the free to report use after destroy */
  uint32_t magic;      /* Q_MAGIC; MPROC__DEAD_MAGIC after destroy */
  uint32_t flags;      /* MPROC_QUEUE_* */
  uint64_t cap;        /* ring slots */
  uint64_t mask;       /* cap - 1 when cap is a power of two, else 0 */
  uint64_t maxsize;    /* 0 = unbounded (overflow list in use) */
  uint64_t maxbytes;   /* 0 = no byte bound */
  uint64_t inline_max; /* largest payload stored in a slot */
  uint64_t slot_size;  /* bytes per slot */
  uint64_t slots_off;  /* offset of slot 0 from the struct */
  _Atomic uint32_t closed; /* set once by close */
  char pad0[64];
  _Atomic uint64_t tail;   /* next position to put (producers) */
  char pad1[56];
  _Atomic uint64_t head;   /* next position to get (consumers) */
  char pad2[56];
  _Atomic uint32_t ec_get; /* getters sleep here */
  char pad3[60];
  _Atomic uint32_t ec_put; /* putters sleep here */
  char pad4[60];
  _Atomic int64_t bytes;      /* payload bytes held (soft, see header) */
  _Atomic uint64_t ov_count;  /* messages in the overflow list */
  mproc__rmutex ov_lock;      /* guards ov_head/ov_tail */
  ov_node *ov_head, *ov_tail; /* overflow list, oldest first */
  char pad5[64];
  _Atomic uint64_t tasks_put;  /* joinable: messages committed */
  _Atomic uint64_t tasks_done; /* joinable: task_done calls */
  _Atomic uint32_t ec_join;    /* join sleeps here */
  char pad6[60];
  void *_Atomic spare[Q_SPARES]; /* freed large-message blocks kept for reuse */
};

static inline slot *SLOT(const mproc_queue_t *q, uint64_t pos) {
  uint64_t i = q->mask ? (pos & q->mask) : (pos % q->cap);
  return (slot *)(void *)((char *)q + q->slots_off + i * q->slot_size);
}
static inline char *DATA(slot *s) { return (char *)(s + 1); }
static inline void *REF(slot *s) {
  void *p;
  memcpy(&p, DATA(s), sizeof p);
  return p;
}

/* Large-message blocks: a consumer hands a freed block to the next producer
 * through a few atomic spare pointers instead of the heap (no allocator
 * round trip, no page faults on every message). Taking and giving are single
 * exchanges, so a process killed with a block in hand leaks only it. */
static void *blk_get(mproc_queue_t *q, size_t len) {
  for (int i = 0; i < Q_SPARES; i++) {
    if (!atomic_load_explicit(&q->spare[i], memory_order_relaxed)) continue;
    void *b = atomic_exchange(&q->spare[i], NULL);
    if (!b) continue;
    if (mproc__heap_block_size(b) >= len) return b;
    mproc__heap_free(b);
  }
  void *b = NULL;
  return mproc__heap_alloc(len, &b) == 0 ? b : NULL;
}

static void blk_put(mproc_queue_t *q, void *b) {
  /* Keep only moderate blocks: a cached 1 GiB block would pin the heap. */
  for (int i = 0; i < Q_SPARES && mproc__heap_block_size(b) <= Q_SPARE_MAX; i++) {
    void *expect = NULL;
    if (atomic_compare_exchange_strong(&q->spare[i], &expect, b)) return;
  }
  mproc__heap_free(b);
}

int mproc__queue_check(const mproc_queue_t *q) {
  if (!q || !mproc__heap_contains(q)) return -EINVAL;
  uint32_t m = __atomic_load_n(&q->magic, __ATOMIC_ACQUIRE);
  if (m == MPROC__DEAD_MAGIC) return MPROC_EDESTROYED;
  if (m != Q_MAGIC) return -EINVAL;
  return 0;
}

/* ------------------------------------------------------------------ */

int mproc_queue_create(mproc_queue_t **out, const mproc_queue_opts *opts) {
  if (!out) return -EINVAL;
  *out = NULL;
  mproc_queue_opts o = {0};
  if (opts) o = *opts;
  if (o.flags & ~(unsigned)(MPROC_QUEUE_JOINABLE | MPROC_QUEUE_SIMPLE)) return -EINVAL;
  if (o.maxsize > Q_MAX_SLOTS || o.slots > Q_MAX_SLOTS || o.inline_max > Q_MAX_INLINE)
    return -EINVAL;
  int rc = mproc__ensure_init();
  if (rc) return rc;
  uint64_t inl = o.inline_max ? o.inline_max : Q_DEFAULT_INLINE;
  if (inl < sizeof(void *)) inl = sizeof(void *);
  uint64_t cap = o.maxsize ? o.maxsize : (o.slots ? o.slots : Q_DEFAULT_SLOTS);
  uint64_t slot_size = MPROC_ALIGN_UP(sizeof(slot) + inl, 16);
  uint64_t off = MPROC_ALIGN_UP(sizeof(struct mproc_queue), 64);
  if (cap > (mproc__heap_size() - off) / slot_size) return -ENOMEM;
  mproc_queue_t *q;
  rc = mproc__heap_alloc(off + cap * slot_size, (void **)&q);
  if (rc) return rc;
  memset(q, 0, off); /* slots: zero = (seq 0, IDLE, len 0); seq fixed below */
  q->flags = o.flags;
  q->cap = cap;
  q->mask = (cap & (cap - 1)) == 0 ? cap - 1 : 0;
  q->maxsize = o.maxsize;
  q->maxbytes = o.maxbytes;
  q->inline_max = inl;
  q->slot_size = slot_size;
  q->slots_off = off;
  mproc__rmutex_init(&q->ov_lock);
  for (uint64_t i = 0; i < cap; i++) {
    slot *s = SLOT(q, i);
    atomic_store_explicit(&s->word, mkw(FREE(i), ST_IDLE, 0), memory_order_relaxed);
    atomic_store_explicit(&s->len, 0, memory_order_relaxed);
  }
  __atomic_store_n(&q->magic, Q_MAGIC, __ATOMIC_RELEASE);
  *out = q;
  return 0;
}

int mproc_joinablequeue_create(mproc_queue_t **q, size_t maxsize) {
  mproc_queue_opts o = {.maxsize = maxsize, .flags = MPROC_QUEUE_JOINABLE};
  return mproc_queue_create(q, &o);
}

int mproc_simplequeue_create(mproc_queue_t **q) {
  mproc_queue_opts o = {.flags = MPROC_QUEUE_SIMPLE};
  return mproc_queue_create(q, &o);
}

int mproc_queue_destroy(mproc_queue_t *q) {
  if (!q) return 0;
  int rc = mproc__queue_check(q);
  if (rc) return rc;
  __atomic_store_n(&q->magic, MPROC__DEAD_MAGIC, __ATOMIC_RELEASE);
  for (uint64_t i = 0; i < q->cap; i++) {
    slot *s = SLOT(q, i);
    uint64_t len = atomic_load_explicit(&s->len, memory_order_relaxed);
    if (len > q->inline_max) mproc__heap_free(REF(s));
  }
  for (int i = 0; i < Q_SPARES; i++) {
    void *b = atomic_exchange(&q->spare[i], NULL);
    if (b) mproc__heap_free(b);
  }
  for (ov_node *n = q->ov_head, *nx; n; n = nx) {
    nx = n->next;
    mproc__heap_free(n);
  }
  return mproc__heap_free(q);
}

/* ---- crash recovery ------------------------------------------------ */

/* Drop the payload a slot holds (len == 0 afterwards); returns its size. */
static uint64_t slot_clear(mproc_queue_t *q, slot *s) {
  uint64_t len = atomic_load_explicit(&s->len, memory_order_relaxed);
  if (len > q->inline_max) {
    void *b = REF(s);
    atomic_store_explicit(&s->len, 0, memory_order_relaxed);
    blk_put(q, b);
  } else {
    atomic_store_explicit(&s->len, 0, memory_order_relaxed);
  }
  return len;
}

/* A producer died holding slot `pos` in W: take it over, commit a hole. */
static void recover_write(mproc_queue_t *q, slot *s, uint64_t w, uint64_t pos, uint32_t me) {
  if (!atomic_compare_exchange_strong(&s->word, &w, mkw(FREE(pos), ST_W, me))) return;
  slot_clear(q, s);
  atomic_store_explicit(&s->word, mkw(FULL(pos), ST_SKIP, 0), memory_order_release);
  mproc__ec_notify(&q->ec_get);
}

/* A consumer died holding a slot in R: take it over and release it. */
static void recover_read(mproc_queue_t *q, slot *s, uint64_t w, uint32_t me) {
  uint32_t seq = w_seq(w); /* == FULL(its position) */
  if (!atomic_compare_exchange_strong(&s->word, &w, mkw(seq, ST_R, me))) return;
  uint64_t len = slot_clear(q, s);
  if (q->maxbytes) atomic_fetch_sub(&q->bytes, (int64_t)len);
  atomic_store_explicit(&s->word, mkw(seq - 1u + 2u * (uint32_t)q->cap, ST_IDLE, 0),
                        memory_order_release);
  mproc__ec_notify(&q->ec_put);
}

/* ---- ring ----------------------------------------------------------- */

static inline uint64_t qcount(mproc_queue_t *q) {
  uint64_t h = atomic_load_explicit(&q->head, memory_order_acquire);
  uint64_t t = atomic_load_explicit(&q->tail, memory_order_acquire);
  uint64_t n = t > h ? t - h : 0;
  return n + atomic_load_explicit(&q->ov_count, memory_order_relaxed);
}

static inline int bytes_full(mproc_queue_t *q, size_t len) {
  if (!q->maxbytes) return 0;
  int64_t b = atomic_load_explicit(&q->bytes, memory_order_relaxed);
  if (b <= 0 || (uint64_t)b + len <= q->maxbytes) return 0;
  return qcount(q) > 0; /* an empty queue always takes one message */
}

/* Try to put into the ring. 0 committed; -EAGAIN full. */
static int ring_put(mproc_queue_t *q, uint32_t me, const void *data, size_t len, void *blk,
                    int recover) {
  for (;;) {
    uint64_t pos = atomic_load_explicit(&q->tail, memory_order_acquire);
    slot *s = SLOT(q, pos);
    uint64_t w = atomic_load_explicit(&s->word, memory_order_acquire);
    int32_t dif = (int32_t)(w_seq(w) - FREE(pos));
    if (dif == 0) {
      if (w_st(w) != ST_IDLE) { /* claimed, tail not advanced yet: help */
        atomic_compare_exchange_strong(&q->tail, &pos, pos + 1);
        continue;
      }
      if (!atomic_compare_exchange_weak_explicit(&s->word, &w, mkw(FREE(pos), ST_W, me),
                                                 memory_order_acq_rel, memory_order_relaxed))
        continue;
      uint64_t p = pos;
      atomic_compare_exchange_strong(&q->tail, &p, pos + 1);
      if (blk) {
        memcpy(DATA(s), &blk, sizeof blk);
      } else if (len) {
        memcpy(DATA(s), data, len);
      }
      atomic_store_explicit(&s->len, len, memory_order_relaxed);
      atomic_store_explicit(&s->word, mkw(FULL(pos), ST_IDLE, 0), memory_order_release);
      return 0;
    }
    if (dif > 0) { /* slot already claimed for pos: tail is stale */
      atomic_compare_exchange_strong(&q->tail, &pos, pos + 1);
      continue;
    }
    /* The slot still holds the previous lap: full, or a consumer reads it. */
    if (atomic_load_explicit(&q->tail, memory_order_acquire) != pos) continue;
    if (recover && w_st(w) == ST_R && mproc__tid_dead(w_tid(w))) {
      recover_read(q, s, w, me);
      continue;
    }
    return w_st(w) == ST_R ? -EBUSY : -EAGAIN;
  }
}

typedef struct sink {
  void *buf;     /* caller buffer (get) */
  size_t cap;    /* its size */
  int alloc;     /* get_alloc: malloc the result into out */
  void *out;     /* get_alloc result */
  size_t len;    /* message size (also the size needed on ETOOSHORT) */
} sink;

/* Copy a payload into the sink. -ENOMEM only with alloc. */
static int sink_fill(sink *k, const void *src, size_t len) {
  k->len = len;
  if (k->alloc) {
    k->out = malloc(len ? len : 1);
    if (!k->out) return -ENOMEM;
    if (len) memcpy(k->out, src, len);
  } else if (len) {
    memcpy(k->buf, src, len);
  }
  return 0;
}

/* Try to get from the ring. 0 got; -EAGAIN empty; -EBUSY the head slot is
 * being written; -ETOOSHORT; -ENOMEM. */
static int ring_get(mproc_queue_t *q, uint32_t me, sink *k, int recover) {
  for (;;) {
    uint64_t pos = atomic_load_explicit(&q->head, memory_order_acquire);
    slot *s = SLOT(q, pos);
    uint64_t w = atomic_load_explicit(&s->word, memory_order_acquire);
    int32_t dif = (int32_t)(w_seq(w) - FULL(pos));
    if (dif == 0) {
      uint32_t st = w_st(w);
      if (st == ST_R) { /* claimed, head not advanced yet: help */
        if (recover && mproc__tid_dead(w_tid(w))) recover_read(q, s, w, me);
        atomic_compare_exchange_strong(&q->head, &pos, pos + 1);
        continue;
      }
      if (st == ST_IDLE && !k->alloc) {
        uint64_t len = atomic_load_explicit(&s->len, memory_order_relaxed);
        if (len > k->cap) {
          if (atomic_load_explicit(&s->word, memory_order_acquire) != w) continue;
          k->len = len;
          return MPROC_ETOOSHORT;
        }
      }
      if (!atomic_compare_exchange_weak_explicit(&s->word, &w, mkw(FULL(pos), ST_R, me),
                                                 memory_order_acq_rel, memory_order_relaxed))
        continue;
      uint64_t p = pos;
      atomic_compare_exchange_strong(&q->head, &p, pos + 1);
      int rc = 0;
      uint64_t len = atomic_load_explicit(&s->len, memory_order_relaxed);
      if (st == ST_IDLE) {
        if (len > q->inline_max) {
          rc = sink_fill(k, REF(s), len);
        } else {
          rc = sink_fill(k, DATA(s), len);
        }
      }
      slot_clear(q, s);
      atomic_store_explicit(&s->word, mkw(FREE(pos + q->cap), ST_IDLE, 0),
                            memory_order_release);
      mproc__ec_notify(&q->ec_put);
      if (st == ST_SKIP) continue; /* a hole left by a dead producer */
      if (q->maxbytes) atomic_fetch_sub(&q->bytes, (int64_t)len);
      return rc;
    }
    if (dif < 0) { /* not committed for pos yet */
      if (atomic_load_explicit(&q->head, memory_order_acquire) != pos) continue;
      if (w_seq(w) == FREE(pos) && w_st(w) == ST_W) {
        if (recover && mproc__tid_dead(w_tid(w))) {
          recover_write(q, s, w, pos, me);
          continue;
        }
        return -EBUSY;
      }
      return -EAGAIN;
    }
    /* Consumed already (a recovered reader never advanced head): help. */
    atomic_compare_exchange_strong(&q->head, &pos, pos + 1);
  }
}

/* ---- overflow list (unbounded queues) -------------------------------- */

static void ov_repair(mproc_queue_t *q) {
  uint64_t n = 0;
  ov_node *last = NULL;
  for (ov_node *x = q->ov_head; x; x = x->next) {
    last = x;
    n++;
  }
  q->ov_tail = last;
  atomic_store(&q->ov_count, n);
}

static int ov_lock(mproc_queue_t *q) {
  int rc = mproc__rmutex_lock(&q->ov_lock, NULL);
  if (rc == MPROC_EOWNERDEAD) {
    ov_repair(q);
    rc = 0;
  }
  return rc;
}

static int ov_push(mproc_queue_t *q, const void *data, size_t len) {
  ov_node *n;
  int rc = mproc__heap_alloc(sizeof *n + (len ? len : 1), (void **)&n);
  if (rc) return rc;
  n->next = NULL;
  n->len = len;
  if (len) memcpy(n + 1, data, len);
  rc = ov_lock(q);
  if (rc) {
    mproc__heap_free(n);
    return rc;
  }
  if (q->ov_tail)
    q->ov_tail->next = n;
  else
    q->ov_head = n;
  q->ov_tail = n;
  atomic_fetch_add(&q->ov_count, 1);
  mproc__rmutex_unlock(&q->ov_lock);
  return 0;
}

/* 0 got; -EAGAIN empty; -ETOOSHORT; -ENOMEM. */
static int ov_pop(mproc_queue_t *q, sink *k) {
  int rc = ov_lock(q);
  if (rc) return rc;
  ov_node *n = q->ov_head;
  if (!n) {
    mproc__rmutex_unlock(&q->ov_lock);
    return -EAGAIN;
  }
  if (!k->alloc && n->len > k->cap) {
    k->len = n->len;
    mproc__rmutex_unlock(&q->ov_lock);
    return MPROC_ETOOSHORT;
  }
  /* Copy before unlinking: a consumer killed here loses nothing. */
  rc = sink_fill(k, n + 1, n->len);
  if (rc) {
    mproc__rmutex_unlock(&q->ov_lock);
    return rc;
  }
  q->ov_head = n->next;
  if (!q->ov_head) q->ov_tail = NULL;
  atomic_fetch_sub(&q->ov_count, 1);
  mproc__rmutex_unlock(&q->ov_lock);
  if (q->maxbytes) atomic_fetch_sub(&q->bytes, (int64_t)n->len);
  mproc__heap_free(n);
  return 0;
}

/* ---- put / get ------------------------------------------------------- */

static void after_put(mproc_queue_t *q, size_t len) {
  if (q->maxbytes) atomic_fetch_add(&q->bytes, (int64_t)len); /* a shared RMW: only when bounded */
  if (q->flags & MPROC_QUEUE_JOINABLE) atomic_fetch_add(&q->tasks_put, 1);
  mproc__ec_notify(&q->ec_get);
}

/* One attempt: 0 put; -EAGAIN full; -EBUSY full because a consumer is
 * reading the slot at tail; other negative errors. *blk is the filled heap
 * block of a large message (bounded queues), consumed on success. */
static int try_put(mproc_queue_t *q, uint32_t me, const void *data, size_t len, void **blk,
                   int recover) {
  if (bytes_full(q, len)) return -EAGAIN;
  if (q->maxsize) {
    int rc = ring_put(q, me, data, len, *blk, recover);
    if (rc == 0) *blk = NULL;
    return rc;
  }
  /* Unbounded: the ring unless the overflow holds older messages. */
  if (atomic_load_explicit(&q->ov_count, memory_order_acquire) == 0) {
    void *b = NULL;
    if (len > q->inline_max) {
      b = blk_get(q, len);
      if (!b) return -ENOMEM;
      memcpy(b, data, len);
    }
    if (ring_put(q, me, data, len, b, recover) == 0) return 0;
    if (b) blk_put(q, b);
  }
  return ov_push(q, data, len);
}

int mproc_queue_put(mproc_queue_t *q, const void *data, size_t len, double timeout) {
  int rc = mproc__queue_check(q);
  if (rc) return rc;
  if ((!data && len) || !mproc__timeout_ok(timeout)) return -EINVAL;
  if (atomic_load_explicit(&q->closed, memory_order_acquire)) return MPROC_ECLOSED;
  struct timespec dlb, *dl = mproc__deadline(timeout, &dlb);
  uint32_t me = mproc__ipc_tid();
  void *blk = NULL;
  if (len > q->inline_max && q->maxsize) {
    /* Fill the block before claiming a slot: the claim then lasts a few
     * stores, and a dead producer leaks at most this block. */
    blk = blk_get(q, len);
    if (!blk) return -ENOMEM;
    memcpy(blk, data, len);
  }
  int recover = 0, armed = 0;
  uint32_t v = 0;
  double spin_until = 0;
  for (;;) {
    if (atomic_load_explicit(&q->closed, memory_order_acquire)) {
      rc = MPROC_ECLOSED;
      break;
    }
    rc = try_put(q, me, data, len, &blk, recover);
    if (rc == 0) {
      after_put(q, len);
      return 0;
    }
    if (rc != -EAGAIN && rc != -EBUSY) break;
    if (armed) {
      long slice = rc == -EBUSY ? SLICE_RECOVER_NS : SLICE_BACKSTOP_NS;
      if (mproc__ec_sleep(&q->ec_put, v, dl, slice) == -ETIMEDOUT) {
        rc = MPROC_EFULL;
        break;
      }
      recover = rc == -EBUSY; /* a reader held the slot a whole slice */
      armed = 0;
      continue;
    }
    if (timeout == 0) {
      rc = MPROC_EFULL;
      break;
    }
    double now = mproc__now_sec();
    if (spin_until == 0 && mproc__ipc_spin_budget()) spin_until = now + SPIN_NS * 1e-9;
    if (now < spin_until) {
      for (int i = 0; i < 32; i++) mproc__cpu_relax();
      continue;
    }
    v = mproc__ec_arm(&q->ec_put);
    armed = 1; /* re-check once more before sleeping on v */
  }
  if (blk) blk_put(q, blk);
  return rc;
}

static int do_get(mproc_queue_t *q, sink *k, double timeout) {
  struct timespec dlb, *dl = mproc__deadline(timeout, &dlb);
  uint32_t me = mproc__ipc_tid();
  int recover = 0;
  double spin_until = 0;
  uint32_t v = 0;
  int armed = 0;
  for (;;) {
    int rc = ring_get(q, me, k, recover);
    if (rc == -EAGAIN && !q->maxsize &&
        atomic_load_explicit(&q->ov_count, memory_order_acquire) > 0)
      rc = ov_pop(q, k);
    if (rc != -EAGAIN && rc != -EBUSY) return rc;
    if (armed) {
      if (rc == -EAGAIN && atomic_load_explicit(&q->closed, memory_order_acquire))
        return MPROC_ECLOSED;
      long slice = rc == -EBUSY ? SLICE_RECOVER_NS : SLICE_BACKSTOP_NS;
      if (mproc__ec_sleep(&q->ec_get, v, dl, slice) == -ETIMEDOUT) return MPROC_EEMPTY;
      recover = rc == -EBUSY;
      armed = 0;
      continue;
    }
    if (rc == -EAGAIN && atomic_load_explicit(&q->closed, memory_order_acquire)) {
      /* Closed: one more look, since a put may have raced with close. */
      rc = ring_get(q, me, k, 1);
      if (rc == -EAGAIN && !q->maxsize) rc = ov_pop(q, k);
      return rc == -EAGAIN ? MPROC_ECLOSED : rc == -EBUSY ? MPROC_ECLOSED : rc;
    }
    if (timeout == 0) return MPROC_EEMPTY;
    double now = mproc__now_sec();
    if (spin_until == 0 && mproc__ipc_spin_budget()) spin_until = now + SPIN_NS * 1e-9;
    if (now < spin_until) {
      for (int i = 0; i < 32; i++) mproc__cpu_relax();
      continue;
    }
    v = mproc__ec_arm(&q->ec_get);
    armed = 1; /* re-check once more before sleeping on v */
  }
}

int mproc_queue_get(mproc_queue_t *q, void *buf, size_t cap, size_t *len, double timeout) {
  int rc = mproc__queue_check(q);
  if (rc) return rc;
  if (!len || (!buf && cap) || !mproc__timeout_ok(timeout)) return -EINVAL;
  sink k = {.buf = buf, .cap = cap};
  rc = do_get(q, &k, timeout);
  if (rc == 0 || rc == MPROC_ETOOSHORT) *len = k.len;
  return rc;
}

int mproc_queue_get_alloc(mproc_queue_t *q, void **data, size_t *len, double timeout) {
  int rc = mproc__queue_check(q);
  if (rc) return rc;
  if (!data || !len || !mproc__timeout_ok(timeout)) return -EINVAL;
  *data = NULL;
  sink k = {.alloc = 1};
  rc = do_get(q, &k, timeout);
  if (rc == 0) {
    *data = k.out;
    *len = k.len;
  }
  return rc;
}

long mproc_queue_qsize(mproc_queue_t *q) {
  int rc = mproc__queue_check(q);
  if (rc) return rc;
  return (long)qcount(q);
}

int mproc_queue_empty(mproc_queue_t *q) {
  int rc = mproc__queue_check(q);
  if (rc) return rc;
  return qcount(q) == 0;
}

int mproc_queue_full(mproc_queue_t *q) {
  int rc = mproc__queue_check(q);
  if (rc) return rc;
  if (q->maxsize && qcount(q) >= q->maxsize) return 1;
  if (q->maxbytes &&
      atomic_load_explicit(&q->bytes, memory_order_relaxed) >= (int64_t)q->maxbytes)
    return 1;
  return 0;
}

int mproc_queue_close(mproc_queue_t *q) {
  int rc = mproc__queue_check(q);
  if (rc) return rc;
  atomic_store_explicit(&q->closed, 1, memory_order_release);
  mproc__ec_kick(&q->ec_get);
  mproc__ec_kick(&q->ec_put);
  return 0;
}

/* ---- JoinableQueue ---------------------------------------------------- */

int mproc_queue_task_done(mproc_queue_t *q) {
  int rc = mproc__queue_check(q);
  if (rc) return rc;
  if (!(q->flags & MPROC_QUEUE_JOINABLE)) return -ENOTSUP;
  uint64_t d = atomic_load(&q->tasks_done);
  do {
    if (d >= atomic_load(&q->tasks_put)) return -EOVERFLOW;
  } while (!atomic_compare_exchange_weak(&q->tasks_done, &d, d + 1));
  if (d + 1 == atomic_load(&q->tasks_put)) mproc__ec_notify(&q->ec_join);
  return 0;
}

int mproc_queue_join(mproc_queue_t *q, double timeout) {
  int rc = mproc__queue_check(q);
  if (rc) return rc;
  if (!(q->flags & MPROC_QUEUE_JOINABLE)) return -ENOTSUP;
  if (!mproc__timeout_ok(timeout)) return -EINVAL;
  struct timespec dlb, *dl = mproc__deadline(timeout, &dlb);
  for (;;) {
    if (atomic_load(&q->tasks_done) >= atomic_load(&q->tasks_put)) return 0;
    if (timeout == 0) return -ETIMEDOUT;
    uint32_t v = mproc__ec_arm(&q->ec_join);
    if (atomic_load(&q->tasks_done) >= atomic_load(&q->tasks_put)) return 0;
    if (mproc__ec_sleep(&q->ec_join, v, dl, SLICE_BACKSTOP_NS) == -ETIMEDOUT)
      return -ETIMEDOUT;
  }
}

/* ---- for wait.c --------------------------------------------------------- */

int mproc__queue_ready(mproc_queue_t *q) {
  int rc = mproc__queue_check(q);
  if (rc) return rc;
  if (atomic_load_explicit(&q->closed, memory_order_acquire)) return 1;
  if (atomic_load_explicit(&q->ov_count, memory_order_acquire)) return 1;
  uint64_t pos = atomic_load_explicit(&q->head, memory_order_acquire);
  uint64_t w = atomic_load_explicit(&SLOT(q, pos)->word, memory_order_acquire);
  return w_seq(w) == FULL(pos) && w_st(w) != ST_R;
}

_Atomic uint32_t *mproc__queue_get_ec(mproc_queue_t *q) { return &q->ec_get; }

/* Test hook: leave the next slot claimed by `tid` as a process killed in the
 * middle of a put (reader == 0: at tail, in W, nothing written) or of a get
 * (reader != 0: at head, in R, message not yet copied) would. 0 or -EAGAIN
 * (no free / committed slot there). */
int mproc__queue_test_abandon(mproc_queue_t *q, int reader, uint32_t tid) {
  if (mproc__queue_check(q)) return -EINVAL;
  _Atomic uint64_t *end = reader ? &q->head : &q->tail;
  uint64_t pos = atomic_load(end);
  slot *s = SLOT(q, pos);
  uint64_t w = atomic_load(&s->word);
  uint32_t want = reader ? FULL(pos) : FREE(pos);
  if (w_seq(w) != want || w_st(w) != ST_IDLE) return -EAGAIN;
  if (!atomic_compare_exchange_strong(&s->word, &w, mkw(want, reader ? ST_R : ST_W, tid)))
    return -EAGAIN;
  if (!reader) atomic_store(&s->len, 0);
  /* The victim died before advancing the position half the time. */
  if (pos & 1) atomic_compare_exchange_strong(end, &pos, pos + 1);
  return 0;
}
