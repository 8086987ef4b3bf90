/*
 * slab.c - size classes: small blocks (16 B .. 16 KiB) carved out of slabs.
 *
 * Design: a slab is a span of 16 or 64 pages holding equal-size blocks of
 * one class; its header carries a bitmap with one bit per block, so the
 * metadata per block is one bit (a dict with millions of 32-byte entries
 * costs 1/256 of its size in bitmaps). Each (arena, class) pair has its own
 * robust lock and a list of the slabs that still have free blocks. A thread
 * sticks to one arena and moves to another when its lock is busy, so two
 * processes allocating at once mostly take different locks (the critical
 * section is a bitmap scan and a handful of journaled stores).
 *
 * A slab whose last block is freed goes back to the page heap unless it is
 * the only slab with free blocks left in its class (one empty slab per class
 * is kept to avoid churn at a boundary).
 *
 * Crash safety: see heap_int.h. New slab: page heap allocates the span
 * (committed), the header is initialised (unreachable through the class
 * lists, so no journal), then the class links it (journaled). Release: the
 * class unlinks it and commits, then the page heap frees it. Both happen
 * entirely under the class lock, so a death between the two steps leaves an
 * "orphan" slab (a SLAB span of this class, not linked, no block allocated)
 * that the next locker of the class, who gets MPROC_EOWNERDEAD, finds and
 * gives back to the page heap (reclaim_orphans). The block a dying thread
 * was allocating or freeing is in its in-flight record (take_block and
 * free_locked set/clear it in their commits) and is freed by a reaper.
 *
 * Under memory pressure (-ENOMEM from the page heap) mproc__hp_trim() gives
 * every cached empty slab back and the allocation is retried once.
 */
#include <errno.h>
#include <string.h>

#include "heap/heap_int.h"
#include "platform/platform.h"

hp_clsinfo mproc__hp_cls[HP_NCLASS];

void mproc__hp_classes_setup(void) {
  /* 16..128 step 16, then four classes per power of two up to 16 KiB. */
  uint32_t sizes[HP_NCLASS];
  int k = 0;
  for (uint32_t s = 16; s <= 128; s += 16) sizes[k++] = s;
  for (uint32_t base = 128; base < HP_SMALL_MAX; base *= 2)
    for (uint32_t q = 1; q <= 4; q++) sizes[k++] = base + q * (base / 4);
  for (int c = 0; c < HP_NCLASS; c++) {
    hp_clsinfo *ci = &mproc__hp_cls[c];
    ci->size = sizes[c];
    ci->pages = sizes[c] <= 4096 ? 16 : 64;
    uint32_t bytes = ci->pages * HP_PAGE;
    uint32_t nb = bytes / ci->size;
    if (nb > HP_MAX_SLAB_BLOCKS) nb = HP_MAX_SLAB_BLOCKS;
    for (;; nb--) {
      uint32_t words = (nb + 63) / 64;
      /* Blocks start on a cache line: every class that a multiple of 64
       * maps to is itself a multiple of 64, so such blocks (structs
       * declared aligned(64)) are 64-byte aligned. */
      uint32_t first = (uint32_t)MPROC_ALIGN_UP(sizeof(hp_slab) + words * 8u, 64);
      if (first + nb * ci->size <= bytes) {
        ci->nblocks = nb;
        ci->words = words;
        ci->first = first;
        break;
      }
    }
  }
}

int mproc__hp_class_of(size_t size) {
  if (size > HP_SMALL_MAX) return -1;
  if (size <= 128) return size == 0 ? 0 : (int)((size + 15) / 16) - 1;
  /* Binary search would do; the table is short and this is not the hot
   * spot (the lock is). */
  int lo = 8, hi = HP_NCLASS - 1;
  while (lo < hi) {
    int mid = (lo + hi) / 2;
    if (mproc__hp_cls[mid].size >= size)
      hi = mid;
    else
      lo = mid + 1;
  }
  return lo;
}

static inline hp_slab *slab_at(uint64_t idx) { return (hp_slab *)(void *)hp_page(idx); }

static _Thread_local int t_arena = -1;

/* Is the slab at idx (a SLAB head of class state c) linked to c, or full?
 * Unlinked slabs with free blocks exist only inside a critical section of
 * c's lock: creation (span allocated, not linked yet) and release (unlinked,
 * not yet given back). Both run entirely under c's lock, so a holder of c's
 * lock who sees one knows its maker died. */
static int is_orphan(const hp_class *c, uint64_t idx) {
  const hp_slab *s = slab_at(idx);
  if (s->magic != HP_SLAB_MAGIC) return 1;
  return s->nfree > 0 && s->prev == 0 && c->partial != idx + 1;
}

/* Give orphan slabs of (arena, cls) back to the page heap. Caller holds the
 * class lock and has rolled its journal back. */
static void reclaim_orphans(hp_class *c, int cls, int arena) {
  hp_pageheap *ph = &mproc__hp->ph;
  if (mproc__hp_lock(&ph->lock, &ph->j)) return;
  const hp_clsinfo *ci = &mproc__hp_cls[cls];
  uint64_t found[16], nf = 0, np = mproc__hp->npages;
  for (uint64_t i = 0; i < np && nf < 16;) {
    uint64_t w = hp_pe(i)->w0, n = hp_n(w);
    if (!(hp_flags(w) & HP_F_HEAD) || n == 0) break; /* never on a valid heap */
    if (hp_kind(w) == HP_K_SLAB && hp_cls(w) == (unsigned)cls &&
        hp_arena(w) == (unsigned)arena && is_orphan(c, i)) {
      const hp_slab *s = slab_at(i);
      uint64_t pop = 0;
      for (uint32_t k = 0; k < ci->words; k++) pop += (uint64_t)__builtin_popcountll(s->bitmap[k]);
      if (pop == 0) found[nf++] = i;
    }
    i += n;
  }
  for (uint64_t k = 0; k < nf; k++) mproc__hp_span_free(found[k], NULL);
  mproc__hp_unlock(&ph->lock);
}

static int class_after_lock(int rc, hp_class *c, int cls, int arena) {
  if (rc == MPROC_EOWNERDEAD || (rc == 0 && MPROC_UNLIKELY(c->j.n != 0))) {
    mproc__hp_rollback(&c->j);
    atomic_fetch_add(&mproc__hp->recoveries, 1);
    reclaim_orphans(c, cls, arena);
    rc = 0;
  }
  return rc;
}

/* Lock (arena, cls); repairs the class after an owner death. */
int mproc__hp_class_lock(int arena, int cls) {
  hp_class *c = &mproc__hp->cls[arena][cls];
  int rc = class_after_lock(mproc__rmutex_lock(&c->lock, NULL), c, cls, arena);
  HP_CRASH_POINT();
  return rc;
}

static int class_trylock(int arena, int cls) {
  hp_class *c = &mproc__hp->cls[arena][cls];
  return class_after_lock(mproc__rmutex_trylock(&c->lock), c, cls, arena);
}

/* Lock some arena's state of class cls: the thread's sticky arena if free,
 * else the first free one, else wait for the sticky one. */
static int lock_arena(int cls, int *arena_out) {
  if (MPROC_UNLIKELY(t_arena < 0)) t_arena = (int)((unsigned)mproc__gettid() % HP_NARENA);
  int a = t_arena;
  for (int i = 0; i < HP_NARENA; i++) {
    int b = (a + i) % HP_NARENA;
    if (class_trylock(b, cls) == 0) {
      t_arena = b;
      *arena_out = b;
      return 0;
    }
  }
  int rc = mproc__hp_class_lock(a, cls);
  if (rc == 0) *arena_out = a;
  return rc;
}

static void unlink_slab(hp_class *c, hp_slab *s) {
  if (s->prev)
    hp_jset(&c->j, &slab_at(s->prev - 1)->next, s->next);
  else
    hp_jset(&c->j, &c->partial, s->next);
  if (s->next) hp_jset(&c->j, &slab_at(s->next - 1)->prev, s->prev);
  hp_jset(&c->j, &s->next, 0);
  hp_jset(&c->j, &s->prev, 0);
}

static void push_slab(hp_class *c, uint64_t idx) {
  hp_slab *s = slab_at(idx);
  hp_jset(&c->j, &s->next, c->partial);
  hp_jset(&c->j, &s->prev, 0);
  if (c->partial) hp_jset(&c->j, &slab_at(c->partial - 1)->prev, idx + 1);
  hp_jset(&c->j, &c->partial, idx + 1);
}

/* A fresh slab for (arena, cls), linked as the class's first partial slab.
 * Caller holds the class lock. -ENOMEM when the page heap is full. */
static int new_slab(hp_class *c, int cls, int arena) {
  const hp_clsinfo *ci = &mproc__hp_cls[cls];
  hp_pageheap *ph = &mproc__hp->ph;
  int rc = mproc__hp_lock(&ph->lock, &ph->j);
  if (rc) return rc;
  uint64_t zoff, zlen;
  uint64_t idx = mproc__hp_span_alloc(ci->pages, HP_K_SLAB, (unsigned)cls, (unsigned)arena,
                                      &zoff, &zlen, NULL);
  mproc__hp_unlock(&ph->lock);
  if (idx == UINT64_MAX) return -ENOMEM;
  hp_slab *s = slab_at(idx);
  /* The page heap cleared the header; blocks are cleared when handed out. */
  s->cls = (uint16_t)cls;
  s->arena = (uint16_t)arena;
  s->nfree = ci->nblocks;
  s->next = s->prev = s->hint = 0;
  atomic_signal_fence(memory_order_seq_cst);
  s->magic = HP_SLAB_MAGIC;
  push_slab(c, idx);
  hp_jset(&c->j, &c->nslabs, c->nslabs + 1);
  return 0;
}

/* Take one block from c's first partial slab. Caller holds the lock.
 * rec: the thread's slot ptr, set to the block in the same commit. */
static int take_block(hp_class *c, int cls, void **out, uint64_t *rec) {
  const hp_clsinfo *ci = &mproc__hp_cls[cls];
  if (!c->partial) return -ENOMEM;
  uint64_t idx = c->partial - 1;
  hp_slab *s = slab_at(idx);
  uint32_t words = ci->words;
  uint64_t last_mask = (ci->nblocks % 64) ? ((uint64_t)1 << (ci->nblocks % 64)) - 1 : ~0ull;
  uint32_t start = (uint32_t)(s->hint < words ? s->hint : 0);
  for (uint32_t k = 0; k < words; k++) {
    uint32_t w = (start + k) % words;
    uint64_t valid = (w == words - 1) ? last_mask : ~0ull;
    uint64_t freebits = ~s->bitmap[w] & valid;
    if (!freebits) continue;
    unsigned bit = (unsigned)__builtin_ctzll(freebits);
    hp_jset(&c->j, &s->bitmap[w], s->bitmap[w] | ((uint64_t)1 << bit));
    hp_jset(&c->j, &s->nfree, s->nfree - 1);
    if (s->nfree == 0) unlink_slab(c, s); /* full slabs leave the list */
    hp_jset(&c->j, &c->live, c->live + 1);
    char *blk = (char *)s + ci->first + (size_t)(w * 64u + bit) * ci->size;
    if (rec) hp_jset(&c->j, rec, (uint64_t)(blk - mproc__hp_base));
    hp_commit(&c->j);
    s->hint = w; /* a cache, not journaled */
    *out = blk;
    return 0;
  }
  /* nfree > 0 but no free bit: metadata is damaged. Refuse, keep going. */
  return MPROC_EPROTO;
}

static inline uint64_t class_lock_id(int arena, int cls) {
  return HP_SLOCK_CLASS + (uint64_t)arena * HP_NCLASS + (uint64_t)cls;
}

static int alloc_once(int cls, void **out, hp_slot *slot) {
  int arena;
  uint64_t *rec = slot ? &slot->ptr : NULL;
  int rc = lock_arena(cls, &arena);
  if (rc) return rc;
  /* Named before the first journaled write of the slot (see heap.c). */
  if (slot) slot->lock = class_lock_id(arena, cls);
  atomic_signal_fence(memory_order_seq_cst);
  HP_CRASH_POINT();
  hp_class *c = &mproc__hp->cls[arena][cls];
  if (!c->partial) rc = new_slab(c, cls, arena);
  if (rc == 0) rc = take_block(c, cls, out, rec);
  mproc__hp_unlock(&c->lock);
  if (rc == -ENOMEM) {
    /* The page heap is full: other arenas may still have free blocks. */
    for (int i = 1; i < HP_NARENA && rc == -ENOMEM; i++) {
      int b = (arena + i) % HP_NARENA;
      if (slot) slot->lock = class_lock_id(b, cls);
      atomic_signal_fence(memory_order_seq_cst);
      int lr = mproc__hp_class_lock(b, cls);
      if (lr) return lr;
      rc = take_block(&mproc__hp->cls[b][cls], cls, out, rec);
      mproc__hp_unlock(&mproc__hp->cls[b][cls].lock);
    }
  }
  return rc;
}

int mproc__hp_small_alloc(int cls, void **out, hp_slot *slot) {
  int rc = alloc_once(cls, out, slot);
  if (rc == -ENOMEM && mproc__hp_reap() + mproc__hp_trim() > 0) rc = alloc_once(cls, out, slot);
  return rc; /* the caller clears the block (or not, if it asked so) */
}

size_t mproc__hp_trim(void) {
  size_t freed = 0;
  hp_pageheap *ph = &mproc__hp->ph;
  for (int a = 0; a < HP_NARENA; a++)
    for (int cls = 0; cls < HP_NCLASS; cls++) {
      hp_class *c = &mproc__hp->cls[a][cls];
      if (!hp_load(&c->partial)) continue; /* racy peek; a miss is harmless */
      if (mproc__hp_class_lock(a, cls)) continue;
      const hp_clsinfo *ci = &mproc__hp_cls[cls];
      uint64_t found[32], nf = 0;
      for (uint64_t i = c->partial; i && nf < 32;) {
        hp_slab *s = slab_at(i - 1);
        uint64_t next = s->next;
        if (s->nfree == ci->nblocks) {
          unlink_slab(c, s);
          hp_jset(&c->j, &c->nslabs, c->nslabs - 1);
          hp_commit(&c->j); /* one slab per step: the journal is short */
          found[nf++] = i - 1;
        }
        i = next;
      }
      if (nf && mproc__hp_lock(&ph->lock, &ph->j) == 0) {
        for (uint64_t k = 0; k < nf; k++) mproc__hp_span_free(found[k], NULL);
        mproc__hp_unlock(&ph->lock);
        freed += nf;
      }
      mproc__hp_unlock(&c->lock);
    }
  if (mproc__hp_lock(&ph->lock, &ph->j) == 0) {
    freed += mproc__hp_purge();
    mproc__hp_unlock(&ph->lock);
  }
  return freed;
}

/* The body of a free under the class lock. *release says the slab became
 * empty and was unlinked (committed): the caller gives it to the page heap
 * while still holding the class lock. */
static int free_locked(int arena, int cls, void *p, uint64_t *rec, int *release) {
  const hp_clsinfo *ci = &mproc__hp_cls[cls];
  hp_class *c = &mproc__hp->cls[arena][cls];
  *release = 0;
  /* Re-validate under the lock: the slab cannot change owner while we hold
   * its class lock, unless the caller passed a block it does not own. */
  uint64_t head = 0;
  int rc = -EINVAL;
  if (!mproc__heap_contains(p) || ((uintptr_t)p & 15)) goto out;
  head = hp_page_of(p);
  uint64_t w = hp_pe(head)->w0;
  if (hp_kind(w) == HP_K_SLABPART) {
    head = hp_n(w);
    if (head >= hp_page_of(p)) goto out;
    w = hp_pe(head)->w0;
  }
  if (hp_kind(w) != HP_K_SLAB || !(hp_flags(w) & HP_F_HEAD) || hp_cls(w) != (unsigned)cls ||
      hp_arena(w) != (unsigned)arena || head + hp_n(w) <= hp_page_of(p))
    goto out;
  hp_slab *s = slab_at(head);
  uint64_t off = (uint64_t)((char *)p - (char *)s);
  if (s->magic != HP_SLAB_MAGIC || s->cls != cls || s->arena != arena || off < ci->first ||
      (off - ci->first) % ci->size)
    goto out;
  uint64_t i = (off - ci->first) / ci->size;
  if (i >= ci->nblocks) goto out;
  uint64_t bit = (uint64_t)1 << (i % 64), *bw = &s->bitmap[i / 64];
  if (!(*bw & bit)) goto out; /* double free */
  hp_jset(&c->j, bw, *bw & ~bit);
  hp_jset(&c->j, &s->nfree, s->nfree + 1);
  if (s->nfree == 1) push_slab(c, head); /* was full: back in the list */
  hp_jset(&c->j, &c->live, c->live - 1);
  *release = s->nfree == ci->nblocks && (s->prev || s->next);
  if (*release) {
    unlink_slab(c, s);
    hp_jset(&c->j, &c->nslabs, c->nslabs - 1);
  }
  rc = 0;
out:
  if (rec) hp_jset(&c->j, rec, 0);
  hp_commit(&c->j);
  if (*release) {
    /* Committed and unlinked, still under the class lock: if we die before
     * the page heap has it, the next class locker reclaims the orphan. */
    hp_pageheap *ph = &mproc__hp->ph;
    if (mproc__hp_lock(&ph->lock, &ph->j) == 0) {
      mproc__hp_span_free(head, NULL);
      mproc__hp_unlock(&ph->lock);
    }
  }
  return rc;
}

int mproc__hp_small_free_locked(int arena, int cls, void *p, uint64_t *rec) {
  int release;
  return free_locked(arena, cls, p, rec, &release);
}

int mproc__hp_small_free(void *p, uint64_t head, hp_slot *slot) {
  uint64_t w = hp_load(&hp_pe(head)->w0);
  unsigned cls = hp_cls(w), arena = hp_arena(w);
  if (cls >= HP_NCLASS || arena >= HP_NARENA) return -EINVAL;
  if (slot) {
    /* In flight from here: if we die before the commit, whoever reaps the
     * slot finishes the free. */
    slot->lock = class_lock_id((int)arena, (int)cls);
    atomic_signal_fence(memory_order_seq_cst);
    hp_store(&slot->ptr, (uint64_t)((char *)p - mproc__hp_base));
    atomic_signal_fence(memory_order_seq_cst);
    HP_CRASH_POINT();
  }
  int rc = mproc__hp_class_lock((int)arena, (int)cls);
  if (rc) {
    if (slot) hp_store(&slot->ptr, 0);
    return rc;
  }
  int release;
  rc = free_locked((int)arena, (int)cls, p, slot ? &slot->ptr : NULL, &release);
  mproc__hp_unlock(&mproc__hp->cls[arena][cls].lock);
  return rc;
}
