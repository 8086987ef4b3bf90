/*
 * heap_int.h - layout of the shared heap, shared by the heap's own files
 * (heap.c: mapping and public calls, page.c: page spans, slab.c: size
 * classes, check.c: consistency checker). Nothing outside src/heap/ includes
 * it.
 *
 * Memory layout (offsets from the heap base, identical in every process):
 *
 *   [0, hdr)            heap_hdr: geometry, root slots, the page heap's state,
 *                       one class state per (arena, size class)
 *   [pagemap, data)     one pent (16 bytes) per data page
 *   [data, size)        data pages (4 KiB), handed out as spans
 *
 * A span is a run of pages: FREE (in a bucket list of the page heap), LARGE
 * (one block of npages pages) or SLAB (a run of equal-size small blocks of
 * one size class with a header and an allocation bitmap at its start).
 *
 * Crash safety (why it is built this way): every metadata word that is
 * reachable from committed state is only changed under a robust mutex and
 * through jset(), which first appends (address, old value) to that lock's
 * undo journal. Commit empties the journal before the unlock. When a process
 * dies holding the lock, the next acquirer gets MPROC_EOWNERDEAD and rolls the
 * journal back, newest entry first, which restores the state as it was before
 * the dead process's critical section began. Memory that is not yet reachable
 * (a new slab's header before it is linked) is written without the journal.
 * Two journals are never both holding entries of one logical operation: a
 * slab is carved out of the page heap (page journal committed) before the
 * class links it (class journal), and unlinked and committed by the class
 * before it is given back to the page heap. A crash between the two leaves
 * an orphan slab that the class's next repairer gives back.
 * The block a dead thread had in flight is recorded in its hp_slot (written
 * in the same commits, see heap.c "Leak on kill") and freed by a reaper.
 *
 * Lock order: slot owner mutex (held for the thread's life, or by a reaper)
 * -> class lock (any arena) -> page lock. Never two class locks.
 */
#ifndef MPROC_HEAP_INT_H
#define MPROC_HEAP_INT_H

#include <stddef.h>
#include <stdint.h>

#include "heap/heap.h"
#include "internal.h"
#include "platform/robust.h"

#define HP_PAGE 4096u
#define HP_PAGE_SHIFT 12
#define HP_MAGIC 0x6d70726f63686570ull /* "mprochep" */
#define HP_VERSION 2u
#define HP_SLAB_MAGIC 0x736c6162u /* "slab" */

#define HP_NARENA 4     /* independent class states, to spread contention */
#define HP_NCLASS 36    /* small size classes, 16 B .. HP_SMALL_MAX */
#define HP_SMALL_MAX 16384u
#define HP_NBUCKET 96   /* page heap free lists (exact to 64 pages, then log2) */
#define HP_PJOURNAL 64  /* undo entries for the page heap's critical sections */
#define HP_CJOURNAL 32  /* undo entries for a class's critical sections */
#define HP_MAX_SLAB_BLOCKS 4096

/* One undo record: the word at base+off held old before the write. */
typedef struct hp_jent {
  uint64_t off; /* byte offset of the word from the heap base */
  uint64_t old; /* its value before the write */
} hp_jent;

/* Journal header; hp_jent entries follow it directly in memory. */
typedef struct hp_journal {
  uint64_t n;   /* entries in use; 0 = committed / nothing to undo */
  uint64_t cap; /* capacity (set at heap creation) */
} hp_journal;

/* The page heap (one per family). */
typedef struct hp_pageheap {
  mproc__rmutex lock;
  uint64_t bucket[HP_NBUCKET]; /* first clean free span's page index + 1; 0 = none */
  uint64_t rbucket[HP_NBUCKET]; /* the same for retained (not punched) spans */
  uint64_t free_pages;         /* pages in free spans (clean and retained) */
  uint64_t dirty_pages;        /* pages in retained free spans */
  uint64_t retain_max;         /* budget for dirty_pages (set at creation:
                                  $MPROC_HEAP_CACHE, default 1/4 of the heap
                                  up to 256 MiB) */
  uint64_t large_live;         /* LARGE spans (blocks) allocated */
  uint64_t large_pages;        /* pages in LARGE spans */
  uint64_t slab_pages;         /* pages in SLAB spans */
  hp_journal j;
  hp_jent je[HP_PJOURNAL];
} hp_pageheap;

/* One size class of one arena. */
typedef struct hp_class {
  mproc__rmutex lock;
  uint64_t partial; /* first slab with free blocks: page index + 1; 0 = none */
  uint64_t live;    /* blocks allocated from this class state */
  uint64_t nslabs;  /* slabs linked to this class state (partial or full) */
  hp_journal j;
  hp_jent je[HP_CJOURNAL];
} __attribute__((aligned(MPROC_CACHELINE))) hp_class;

/* In-flight record of one thread (see heap.c, "Leak on kill"). The owner
 * thread holds `owner` for as long as it lives, so the robust-futex
 * machinery tells everyone when it died. `lock` names the heap lock whose
 * journal may hold entries for `ptr` (0 none, HP_SLOCK_PAGE, or
 * HP_SLOCK_CLASS + arena * HP_NCLASS + class); `ptr` is the byte offset of
 * a block that is allocated but owned by nobody else yet: the block being
 * allocated (set in the same commit that allocates it, cleared just before
 * the pointer is returned) or being freed (set before the free's critical
 * section, cleared in its commit). A dead owner's non-zero ptr is a block
 * to free. */
typedef struct hp_slot {
  mproc__rmutex owner;
  uint64_t lock;
  uint64_t ptr;
  uint64_t pad;
} __attribute__((aligned(64))) hp_slot;

#define HP_NSLOT 512
#define HP_SLOCK_PAGE 1u
#define HP_SLOCK_CLASS 2u

typedef struct hp_hdr {
  uint64_t magic;     /* HP_MAGIC once fully initialised */
  uint64_t version;   /* HP_VERSION */
  uint64_t size;      /* bytes mapped */
  uint64_t npages;    /* data pages */
  uint64_t pagemap;   /* offset of the page map */
  uint64_t data;      /* offset of data page 0 */
  _Atomic uint64_t recoveries; /* journals rolled back after an owner died */
  char root[MPROC__ROOT_NSLOTS][MPROC__HEAP_ROOT_SLOT] __attribute__((aligned(64)));
  hp_pageheap ph __attribute__((aligned(64)));
  hp_class cls[HP_NARENA][HP_NCLASS];
  hp_slot slots[HP_NSLOT];
} hp_hdr;

/* Page map entry. w0: kind | flags | class | arena | n, w1: free-list links.
 * For FREE/LARGE/SLAB heads and FREE/LARGE tails n = the span's page count;
 * for SLABPART (every page of a slab after its head) n = the head's index.
 * Entries not at a span boundary may be stale: the free path validates by
 * following SLABPART to a SLAB head whose span must cover the page. */
typedef struct hp_pent {
  uint64_t w0;
  uint64_t w1; /* FREE heads: next index + 1 (low 32) | prev index + 1 (high) */
} hp_pent;

enum { HP_K_NONE = 0, HP_K_FREE = 1, HP_K_LARGE = 2, HP_K_SLAB = 3, HP_K_SLABPART = 4 };
#define HP_F_HEAD 0x10u
#define HP_F_TAIL 0x20u
#define HP_F_DIRTY 0x40u    /* clean FREE head: its first page was not punched */
#define HP_F_ALLDIRTY 0x80u /* retained FREE span (head and tail): not punched */

static inline uint64_t hp_w0(unsigned kind, unsigned flags, unsigned cls, unsigned arena,
                             uint64_t n) {
  return (uint64_t)kind | flags | ((uint64_t)cls << 8) | ((uint64_t)arena << 16) | (n << 32);
}
static inline unsigned hp_kind(uint64_t w0) { return (unsigned)(w0 & 0xf); }
static inline unsigned hp_flags(uint64_t w0) { return (unsigned)(w0 & 0xf0); }
static inline unsigned hp_cls(uint64_t w0) { return (unsigned)((w0 >> 8) & 0xff); }
static inline unsigned hp_arena(uint64_t w0) { return (unsigned)((w0 >> 16) & 0xff); }
static inline uint64_t hp_n(uint64_t w0) { return w0 >> 32; }

/* Slab header at the start of a SLAB span; blocks start at first_off. */
typedef struct hp_slab {
  uint32_t magic;   /* HP_SLAB_MAGIC once initialised */
  uint16_t cls;     /* size class */
  uint16_t arena;   /* arena whose class state owns it */
  uint64_t nfree;   /* free blocks */
  uint64_t next;    /* partial list: page index + 1 of the next slab */
  uint64_t prev;    /* page index + 1 of the previous slab; 0 = list head */
  uint64_t hint;    /* bitmap word to search first (a cache: any value ok) */
  uint64_t bitmap[]; /* 1 = allocated; bits >= nblocks stay 0 */
} hp_slab;

/* Geometry of one size class (computed once per process; identical in every
 * process of the family because it depends only on constants). */
typedef struct hp_clsinfo {
  uint32_t size;     /* block size (multiple of 16) */
  uint32_t pages;    /* pages per slab */
  uint32_t nblocks;  /* blocks per slab */
  uint32_t first;    /* offset of block 0 from the slab start */
  uint32_t words;    /* bitmap words */
} hp_clsinfo;

/* ---- per-process view (set by init/attach, inherited over fork) ---- */
extern char *mproc__hp_base;
extern hp_hdr *mproc__hp;
extern hp_clsinfo mproc__hp_cls[HP_NCLASS];

static inline hp_pent *hp_pe(uint64_t idx) {
  return (hp_pent *)(void *)(mproc__hp_base + mproc__hp->pagemap) + idx;
}
static inline char *hp_page(uint64_t idx) {
  return mproc__hp_base + mproc__hp->data + (idx << HP_PAGE_SHIFT);
}
static inline uint64_t hp_page_of(const void *p) {
  return (uint64_t)((const char *)p - (mproc__hp_base + mproc__hp->data)) >> HP_PAGE_SHIFT;
}
static inline uint64_t hp_load(const uint64_t *a) {
  return __atomic_load_n(a, __ATOMIC_RELAXED);
}
static inline void hp_store(uint64_t *a, uint64_t v) {
  __atomic_store_n(a, v, __ATOMIC_RELAXED);
}

/* Fault injection for tests: when mproc__hp_crash_countdown > 0, the
 * crash point that brings it to 0 SIGKILLs the calling process. Crash points
 * sit around every journaled store, commit and lock hand-over, so a test can
 * kill a process at each instant of an alloc or free in turn. */
extern int mproc__hp_crash_countdown;
void mproc__hp_crash(void);
#define HP_CRASH_POINT()                                                       \
  do {                                                                         \
    if (MPROC_UNLIKELY(mproc__hp_crash_countdown > 0) && --mproc__hp_crash_countdown == 0) \
      mproc__hp_crash();                                                       \
  } while (0)

/* Journaled write: record the old value, publish the record, then write.
 * The compiler fence keeps the record's stores before the data store; a
 * killed process's retired stores all reach memory, so the order seen by the
 * recovering process is program order. */
static inline void hp_jset(hp_journal *j, uint64_t *addr, uint64_t v) {
  hp_jent *e = (hp_jent *)(void *)(j + 1);
  uint64_t n = j->n;
  if (MPROC_UNLIKELY(n >= j->cap)) __builtin_trap(); /* sized for the worst path */
  e[n].off = (uint64_t)((char *)addr - mproc__hp_base);
  e[n].old = hp_load(addr);
  atomic_signal_fence(memory_order_seq_cst);
  HP_CRASH_POINT();
  hp_store(&j->n, n + 1);
  atomic_signal_fence(memory_order_seq_cst);
  HP_CRASH_POINT();
  hp_store(addr, v);
  atomic_signal_fence(memory_order_seq_cst);
  HP_CRASH_POINT();
}
static inline void hp_commit(hp_journal *j) {
  atomic_signal_fence(memory_order_seq_cst);
  hp_store(&j->n, 0);
  atomic_signal_fence(memory_order_seq_cst);
  HP_CRASH_POINT();
}
/* Undo an interrupted critical section (caller holds the lock). */
void mproc__hp_rollback(hp_journal *j);
/* Take a heap lock, repairing its journal when the owner died. 0 or -errno. */
int mproc__hp_lock(mproc__rmutex *m, hp_journal *j);
/* Try to take it: 0, -EBUSY. */
int mproc__hp_trylock(mproc__rmutex *m, hp_journal *j);
void mproc__hp_unlock(mproc__rmutex *m);

/* ---- page heap (page.c) ---- */
/* One free span of every data page; retain_pages is the cache budget. */
void mproc__hp_pages_init(uint64_t retain_pages);
/* Allocate npages as a span of kind LARGE or SLAB (cls/arena for SLAB).
 * Returns the head index, or UINT64_MAX when no span is big enough.
 * Caller holds the page lock; the journal is committed on return. On return
 * pages [*zoff, *zoff + *zlen) of the span (relative) may hold old data and
 * must be cleared by a caller that needs zeroes (after unlocking); the rest
 * reads as zero (fresh memory). */
uint64_t mproc__hp_span_alloc(uint64_t npages, unsigned kind, unsigned cls, unsigned arena,
                              uint64_t *zoff, uint64_t *zlen, uint64_t *rec);
/* Free the span at head idx (LARGE or SLAB): punch its pages, coalesce,
 * commit. Caller holds the page lock. */
void mproc__hp_span_free(uint64_t idx, uint64_t *rec);
/* rec (may be NULL): a slot's ptr word, set to the new block's offset by
 * span_alloc / cleared by span_free in the same commit. */
/* Punch every retained span and make it clean; returns the pages. Caller
 * holds the page lock. */
uint64_t mproc__hp_purge(void);
unsigned mproc__hp_bucket_of(uint64_t npages);
/* Return a range of data pages to the OS (contents read as zero after). */
void mproc__hp_punch(uint64_t idx, uint64_t npages);

/* ---- size classes (slab.c) ---- */
void mproc__hp_classes_setup(void); /* fill mproc__hp_cls */
int mproc__hp_class_of(size_t size); /* smallest class >= size; -1 if large */
/* slot (may be NULL): the calling thread's in-flight record. */
int mproc__hp_small_alloc(int cls, void **out, hp_slot *slot);
int mproc__hp_small_free(void *p, uint64_t head, hp_slot *slot);
/* Free block p (a slab block of class state (arena, cls)) whose lock the
 * caller holds, clearing *rec in the same commit. Returns 0 or -EINVAL
 * (not a live block of that class state: *rec cleared anyway). */
int mproc__hp_small_free_locked(int arena, int cls, void *p, uint64_t *rec);
/* Recover every slot whose owner died (free its in-flight block). Returns
 * the number of blocks freed. Caller holds no heap lock. */
size_t mproc__hp_reap(void);
/* Lock class state (arena, cls), reclaiming orphan slabs after a death. */
int mproc__hp_class_lock(int arena, int cls);
/* Give every empty slab back to the page heap and punch every retained
 * span; returns how many slabs and pages were released. Caller holds no heap
 * lock. */
size_t mproc__hp_trim(void);

#endif
