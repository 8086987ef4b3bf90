/*
 * heap.c - the family's shared heap: the memfd and its mapping, the locks
 * and their crash repair, and the public mproc_heap_* calls.
 *
 * Design (see heap_int.h for the layout and docs/heap.md for the why):
 *  - One memfd, sized once (sparse), mapped MAP_SHARED. The address is a
 *    fixed high hint taken with MAP_FIXED_NOREPLACE (fallback: anywhere), so
 *    a spawned child, whose fresh address space has the same general layout,
 *    can map it again at the same address (mproc__heap_attach).
 *  - Small blocks (<= 16 KiB) come from size-class slabs (slab.c), larger
 *    ones are page spans (page.c) whose pages go back to the OS on free.
 *  - Every lock is a robust mutex with an undo journal: a process killed
 *    inside alloc or free leaves a journal that the next locker rolls back.
 *  - Freed large spans are cached resident up to a budget ($MPROC_HEAP_CACHE,
 *    page.c); mproc__heap_alloc_ex can skip clearing reused memory or
 *    pre-fault fresh pages for callers that overwrite or touch all of it.
 *
 * Leak on kill -- the guarantee. A thread killed at any instant inside
 * mproc__heap_alloc or mproc__heap_free leaks nothing: the block it was
 * allocating (allocated but not yet returned) or freeing (not yet freed) is
 * freed by whoever reaps its in-flight record. Out of scope: a block that
 * alloc has returned and the caller then dies before storing it anywhere
 * (that pointer is the caller's), and threads that found no free record
 * (more than HP_NSLOT = 512 live threads in the family, or a C library
 * without a robust list: those calls run unrecorded, and a kill inside one
 * may leak its one block, as before).
 * How: each thread claims a record (hp_slot) and holds its robust mutex for
 * life, so the kernel marks the record when the thread dies. The block's
 * offset enters the record in the same journaled commit that allocates it
 * (so a rollback removes both), and leaves it by a plain store just before
 * alloc returns; a free stores it before its critical section and clears it
 * in the commit that frees. The record names the lock whose journal may
 * hold its entries; a reaper takes that lock first (rolling back what the
 * dead thread left half-done) and only then trusts the record. Reapers: a
 * thread claiming a record (lowest first, so a dead process's record is
 * reused soon), mproc__heap_reap(), mproc_heap_trim(), the checker, and an
 * allocation about to fail with -ENOMEM.
 *
 * Fork: the mapping and the fd are inherited; nothing here is per-process
 * except the cached base/fd and the thread's arena choice.
 */
#include "heap/heap.h"

#include <ctype.h>
#include <errno.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "heap/heap_int.h"
#include "platform/platform.h"

STATIC_ASSERT(offsetof(hp_pageheap, je) == offsetof(hp_pageheap, j) + sizeof(hp_journal),
              "journal entries follow the journal header");
STATIC_ASSERT(offsetof(hp_class, je) == offsetof(hp_class, j) + sizeof(hp_journal),
              "journal entries follow the journal header");
STATIC_ASSERT(sizeof(hp_pent) == 16, "page map entry is 16 bytes");

/* High, rarely used part of the x86-64/aarch64 user address space: below
 * the usual mmap base (0x7f...), far above PIE text and brk. */
#define HP_MAX_SIZE MPROC__HEAP_MAX_SIZE

#if defined(__SANITIZE_THREAD__)
#define HP_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define HP_TSAN 1
#endif
#endif
#ifdef HP_TSAN
/* TSan only allows application memory in its own ranges; its modules range
 * (0x7e8...) is where an exec'd child's libraries land at random, so a heap
 * the kernel placed there collided with them now and then (seen: 1 spawn in
 * ~2000). Its low application range (below 0x80_0000_0000) is empty. */
#define HP_ADDR_HINT ((uintptr_t)0x004000000000ull)
#define HP_HINT_MAX ((size_t)1 << 38)
#else
#define HP_ADDR_HINT ((uintptr_t)0x6d7000000000ull)
#define HP_HINT_MAX HP_MAX_SIZE
#endif

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif
/* With $MPROC_HEAP_POPULATE=1, public allocations of at least this many
 * pages are pre-faulted too. */
#define HP_POPULATE_MIN 16

char *mproc__hp_base;
hp_hdr *mproc__hp;
static size_t g_size;
static int g_fd = -1;
static int g_populate; /* $MPROC_HEAP_POPULATE: pre-fault large blocks */

/* ---- locks and repair ---- */

int mproc__hp_crash_countdown;

void mproc__hp_crash(void) { raise(SIGKILL); }

void mproc__heap_crash_after(int n) { mproc__hp_crash_countdown = n > 0 ? n : 0; }

void mproc__hp_rollback(hp_journal *j) {
  hp_jent *e = (hp_jent *)(void *)(j + 1);
  uint64_t n = j->n;
  if (n > j->cap) n = j->cap; /* never trust a count beyond the array */
  /* Newest first, so a word written twice gets its oldest value back.
   * Idempotent: if we die here too, the next locker replays it. */
  for (uint64_t i = n; i-- > 0;) {
    uint64_t off = e[i].off;
    if (off < g_size && !(off & 7)) hp_store((uint64_t *)(void *)(mproc__hp_base + off), e[i].old);
  }
  hp_commit(j);
}

static int after_lock(int rc, hp_journal *j) {
  if (rc == MPROC_EOWNERDEAD || (rc == 0 && MPROC_UNLIKELY(j->n != 0))) {
    /* The owner died inside a critical section (or, defensively, left an
     * open journal): undo its half-done mutation. */
    mproc__hp_rollback(j);
    atomic_fetch_add(&mproc__hp->recoveries, 1);
    rc = 0;
  }
  return rc;
}

int mproc__hp_lock(mproc__rmutex *m, hp_journal *j) {
  int rc = after_lock(mproc__rmutex_lock(m, NULL), j);
  HP_CRASH_POINT();
  return rc;
}

int mproc__hp_trylock(mproc__rmutex *m, hp_journal *j) {
  return after_lock(mproc__rmutex_trylock(m), j);
}

void mproc__hp_unlock(mproc__rmutex *m) {
  HP_CRASH_POINT();
  mproc__rmutex_unlock(m);
}

/* ---- in-flight records: no block leaks when a thread dies ---- */

static int large_free_locked(uint64_t head, uint64_t *rec);

static _Thread_local hp_slot *t_slot;
static _Thread_local unsigned t_noslot; /* operations left before trying to claim again */

/* Finish what the dead owner of s left in flight. The caller holds
 * s->owner. Taking the lock named in s->lock first rolls back a critical
 * section the owner died in (which may clear s->ptr again, or restore it);
 * only then does s->ptr say the truth: a non-zero value is a block that is
 * allocated and that no live thread has, so it is freed, and s->ptr
 * cleared, in one commit. Dying in here is fine: the next reaper of s (it
 * is still ours, so the kernel marks it dead again) redoes it. Returns 1
 * when a block was freed. */
static int slot_recover(hp_slot *s) {
  uint64_t lk = hp_load(&s->lock);
  int freed = 0;
  if (lk == HP_SLOCK_PAGE) {
    hp_pageheap *ph = &mproc__hp->ph;
    if (mproc__hp_lock(&ph->lock, &ph->j) == 0) {
      uint64_t off = hp_load(&s->ptr);
      if (off) {
        char *p = mproc__hp_base + off;
        if (mproc__heap_contains(p) && !((uintptr_t)p & (HP_PAGE - 1))) {
          freed = large_free_locked(hp_page_of(p), &s->ptr) == 0;
        } else {
          hp_jset(&ph->j, &s->ptr, 0);
          hp_commit(&ph->j);
        }
      }
      mproc__hp_unlock(&ph->lock);
    }
  } else if (lk >= HP_SLOCK_CLASS && lk < HP_SLOCK_CLASS + (uint64_t)HP_NARENA * HP_NCLASS) {
    int a = (int)((lk - HP_SLOCK_CLASS) / HP_NCLASS), c = (int)((lk - HP_SLOCK_CLASS) % HP_NCLASS);
    if (mproc__hp_class_lock(a, c) == 0) {
      uint64_t off = hp_load(&s->ptr);
      if (off) freed = mproc__hp_small_free_locked(a, c, mproc__hp_base + off, &s->ptr) == 0;
      mproc__hp_unlock(&mproc__hp->cls[a][c].lock);
    }
  }
  hp_store(&s->ptr, 0);
  hp_store(&s->lock, 0);
  return freed;
}

/* The calling thread's slot, claimed on first use (and again in a forked
 * child, whose copy of t_slot names its parent's slot: rmutex_held() says
 * so). NULL when every slot is held by a live thread or owner death cannot
 * be detected: the operation then runs unrecorded (a kill may leak its
 * one block, as before). */
static hp_slot *slot_get(void) {
  hp_slot *s = t_slot;
  if (MPROC_LIKELY(s && mproc__rmutex_held(&s->owner))) return s;
  t_slot = NULL;
  if (t_noslot) {
    t_noslot--;
    return NULL;
  }
  if (!mproc__rmutex_robust()) {
    t_noslot = UINT32_MAX;
    return NULL;
  }
  /* Lowest first, so the slots of dead processes are reused (and their
   * blocks freed) soon after. */
  for (int i = 0; i < HP_NSLOT; i++) {
    s = &mproc__hp->slots[i];
    int rc = mproc__rmutex_trylock(&s->owner);
    if (rc == 0 || rc == MPROC_EOWNERDEAD) {
      slot_recover(s);
      t_slot = s;
      return s;
    }
  }
  t_noslot = 4096;
  return NULL;
}

/* The operation is over: the block (if any) belongs to the caller now. */
static inline void slot_done(hp_slot *s) {
  if (!s) return;
  atomic_signal_fence(memory_order_seq_cst);
  hp_store(&s->ptr, 0);
  hp_store(&s->lock, 0);
}

size_t mproc__hp_reap(void) {
  size_t freed = 0;
  for (int i = 0; i < HP_NSLOT; i++) {
    hp_slot *s = &mproc__hp->slots[i];
    uint32_t w = atomic_load_explicit(&s->owner.word, memory_order_relaxed);
    /* Only slots the kernel marked: owner died (tid cleared). */
    if (!(w & FUTEX_OWNER_DIED) || (w & FUTEX_TID_MASK)) continue;
    if (mproc__rmutex_trylock(&s->owner) == MPROC_EOWNERDEAD) {
      freed += (size_t)slot_recover(s);
      mproc__rmutex_unlock(&s->owner); /* free for the next claimer */
    }
  }
  return freed;
}

size_t mproc__heap_reap(void) { return mproc__ensure_init() ? 0 : mproc__hp_reap(); }

/* ---- mapping ---- */

/* Geometry for a heap of size bytes: header, page map, data pages. */
static int layout(size_t size, uint64_t *pagemap, uint64_t *data, uint64_t *npages) {
  uint64_t hdr = MPROC_ALIGN_UP(sizeof(hp_hdr), HP_PAGE);
  if (size < hdr + 4 * HP_PAGE) return -EINVAL;
  uint64_t n = (size - hdr) / (HP_PAGE + sizeof(hp_pent));
  for (; n > 0; n--) {
    uint64_t pm = MPROC_ALIGN_UP(n * sizeof(hp_pent), HP_PAGE);
    if (hdr + pm + n * HP_PAGE <= size) {
      *pagemap = hdr;
      *data = hdr + pm;
      *npages = n;
      return 0;
    }
  }
  return -EINVAL;
}

static void *map_heap(int fd, size_t size) {
  void *p = MAP_FAILED;
  if (size <= HP_HINT_MAX) {
    p = mproc__sys.mmap((void *)HP_ADDR_HINT, size, PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_FIXED_NOREPLACE, fd, 0);
    if (p != MAP_FAILED && p != (void *)HP_ADDR_HINT) {
      /* A kernel without MAP_FIXED_NOREPLACE treats it as a hint. */
      munmap(p, size);
      p = MAP_FAILED;
    }
  }
  if (p == MAP_FAILED)
    p = mproc__sys.mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  return p;
}

/* $MPROC_HEAP_CACHE: the budget of freed large spans kept resident, as a
 * size ("0", "64M", "1G": the grammar of $MPROC_HEAP_SIZE, 0 allowed) or a
 * percentage of the heap ("25%"). Unset: 1/4 of the heap, at most 256 MiB.
 * Returns the budget in pages, or UINT64_MAX when the value is invalid. */
static uint64_t cache_pages(const char *s, uint64_t npages) {
  uint64_t dflt = npages / 4, cap = ((uint64_t)256 << 20) >> HP_PAGE_SHIFT;
  if (!s) return dflt < cap ? dflt : cap;
  if (!isdigit((unsigned char)*s)) return UINT64_MAX;
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno) return UINT64_MAX;
  if (*end == '%') {
    if (end[1] || v > 100) return UINT64_MAX;
    return (uint64_t)((unsigned __int128)npages * v / 100);
  }
  unsigned shift = 0;
  switch (toupper((unsigned char)*end)) {
    case 'K': shift = 10; end++; break;
    case 'M': shift = 20; end++; break;
    case 'G': shift = 30; end++; break;
    case 'T': shift = 40; end++; break;
    default: break;
  }
  if (*end == 'B' || *end == 'b') end++;
  if (*end || v > (UINT64_MAX >> shift)) return UINT64_MAX;
  uint64_t pages = (v << shift) >> HP_PAGE_SHIFT;
  return pages < npages ? pages : npages;
}

int mproc__heap_init(size_t size) {
  if (mproc__hp_base) return 0;
  if (size > HP_MAX_SIZE) return -EINVAL;
  size = MPROC_ALIGN_UP(size, HP_PAGE);
  uint64_t pagemap, data, npages;
  int rc = layout(size, &pagemap, &data, &npages);
  if (rc) return rc;
  if (npages >= 0xffffffffull) return -EINVAL; /* links are 32-bit indices */
  uint64_t cache = cache_pages(getenv("MPROC_HEAP_CACHE"), npages);
  if (cache == UINT64_MAX) return -EINVAL;
  const char *pop = getenv("MPROC_HEAP_POPULATE");
  g_populate = pop && pop[0] == '1' && !pop[1];
  int fd = mproc__sys.memfd_create("mproc-heap", 0);
  if (fd < 0) return -errno;
  if (ftruncate(fd, (off_t)size) < 0) {
    int e = errno;
    close(fd);
    return -e;
  }
  void *p = map_heap(fd, size);
  if (p == MAP_FAILED) {
    int e = errno;
    close(fd);
    return -e;
  }
  mproc__hp_classes_setup();
  mproc__hp_base = p;
  mproc__hp = p;
  g_size = size;
  g_fd = fd;
  hp_hdr *h = mproc__hp;
  h->version = HP_VERSION;
  h->size = size;
  h->npages = npages;
  h->pagemap = pagemap;
  h->data = data;
  h->ph.j.cap = HP_PJOURNAL;
  for (int a = 0; a < HP_NARENA; a++)
    for (int c = 0; c < HP_NCLASS; c++) h->cls[a][c].j.cap = HP_CJOURNAL;
  mproc__hp_pages_init(cache);
  atomic_signal_fence(memory_order_seq_cst);
  h->magic = HP_MAGIC;
  return 0;
}

int mproc__heap_attach(int fd, void *base, size_t size) {
  if (fd < 0 || !base || size == 0 || (size & (HP_PAGE - 1))) return -EINVAL;
  if (mproc__hp_base) return mproc__hp_base == base && g_size == size ? 0 : -EBUSY;
  void *p = mproc__sys.mmap(base, size, PROT_READ | PROT_WRITE,
                            MAP_SHARED | MAP_FIXED_NOREPLACE, fd, 0);
  if (p == MAP_FAILED) return -errno;
  if (p != base) {
    munmap(p, size);
    return -EEXIST;
  }
  const hp_hdr *h = p;
  if (h->magic != HP_MAGIC || h->version != HP_VERSION || h->size != size) {
    munmap(p, size);
    return -EINVAL;
  }
  mproc__hp_classes_setup();
  mproc__hp_base = p;
  mproc__hp = p;
  g_size = size;
  g_fd = fd;
  return 0;
}

int mproc__heap_fd(void) { return g_fd; }
size_t mproc__heap_cache_max(void) {
  return mproc__hp ? (size_t)mproc__hp->ph.retain_max << HP_PAGE_SHIFT : 0;
}
void *mproc__heap_base(void) { return mproc__hp_base; }
size_t mproc__heap_size(void) { return g_size; }

void *mproc__heap_root(enum mproc__root_slot slot) {
  if ((unsigned)slot >= MPROC__ROOT_NSLOTS || mproc__ensure_init()) return NULL;
  return mproc__hp->root[slot];
}

int mproc__heap_contains(const void *p) {
  if (!mproc__hp_base) return 0;
  const char *c = p;
  return c >= mproc__hp_base + mproc__hp->data && c < mproc__hp_base + g_size;
}

/* ---- alloc / free ---- */

int mproc__heap_alloc_ex(size_t size, unsigned flags, void **out) {
  if (!out || size == 0 || (flags & ~(MPROC__HEAP_UNINIT | MPROC__HEAP_POPULATE))) return -EINVAL;
  int rc = mproc__ensure_init();
  if (rc) return rc;
  hp_slot *slot = slot_get();
  int cls = mproc__hp_class_of(size);
  if (cls >= 0) {
    rc = mproc__hp_small_alloc(cls, out, slot);
    if (rc == 0 && !(flags & MPROC__HEAP_UNINIT)) memset(*out, 0, mproc__hp_cls[cls].size);
    HP_CRASH_POINT(); /* allocated, not yet handed over: the slot has it */
    slot_done(slot);
    return rc;
  }
  if (size > (size_t)mproc__hp->npages << HP_PAGE_SHIFT) {
    slot_done(slot);
    return -ENOMEM;
  }
  uint64_t np = (size + HP_PAGE - 1) >> HP_PAGE_SHIFT;
  hp_pageheap *ph = &mproc__hp->ph;
  uint64_t idx = UINT64_MAX, zoff = 0, zlen = 0;
  for (int attempt = 0; attempt < 2 && idx == UINT64_MAX; attempt++) {
    /* On failure, free what dead threads left in flight, give cached
     * memory back, and try once more. */
    if (attempt && mproc__hp_reap() + mproc__hp_trim() == 0) break;
    if (slot) hp_store(&slot->lock, HP_SLOCK_PAGE);
    atomic_signal_fence(memory_order_seq_cst);
    rc = mproc__hp_lock(&ph->lock, &ph->j);
    if (rc) break;
    idx = mproc__hp_span_alloc(np, HP_K_LARGE, 0, 0, &zoff, &zlen, slot ? &slot->ptr : NULL);
    mproc__hp_unlock(&ph->lock);
  }
  if (idx == UINT64_MAX) {
    slot_done(slot);
    return rc ? rc : -ENOMEM;
  }
  char *p = hp_page(idx);
  *out = p;
  if (zlen && !(flags & MPROC__HEAP_UNINIT))
    memset(p + (zoff << HP_PAGE_SHIFT), 0, zlen << HP_PAGE_SHIFT);
  if ((flags & MPROC__HEAP_POPULATE) || (g_populate && np >= HP_POPULATE_MIN)) {
    /* Fault the fresh (clean) pages in with one call: about 2x cheaper
     * than taking a fault per page on first touch. Retained pages are
     * resident already; the kernel skips them quickly. Best effort
     * (Linux >= 5.14; older kernels say EINVAL and the pages fault in
     * lazily as before). */
    if (zlen < np) (void)madvise(p, np << HP_PAGE_SHIFT, MADV_POPULATE_WRITE);
  }
  HP_CRASH_POINT(); /* allocated, not yet handed over: the slot has it */
  slot_done(slot);
  return 0;
}

int mproc__heap_alloc(size_t size, void **out) { return mproc__heap_alloc_ex(size, 0, out); }

/* Find the span head for p and its kind without locking (validated again
 * under the lock by the caller). Returns the kind or HP_K_NONE. */
static unsigned locate(const void *p, uint64_t *head) {
  if (!mproc__heap_contains(p) || ((uintptr_t)p & 15)) return HP_K_NONE;
  uint64_t idx = hp_page_of(p);
  uint64_t w = hp_load(&hp_pe(idx)->w0);
  switch (hp_kind(w)) {
    case HP_K_LARGE:
      if (!(hp_flags(w) & HP_F_HEAD) || p != hp_page(idx)) return HP_K_NONE;
      *head = idx;
      return HP_K_LARGE;
    case HP_K_SLAB:
      if (!(hp_flags(w) & HP_F_HEAD)) return HP_K_NONE;
      *head = idx;
      return HP_K_SLAB;
    case HP_K_SLABPART: {
      uint64_t h = hp_n(w);
      if (h >= idx) return HP_K_NONE;
      uint64_t hw = hp_load(&hp_pe(h)->w0);
      if (hp_kind(hw) != HP_K_SLAB || !(hp_flags(hw) & HP_F_HEAD) || h + hp_n(hw) <= idx)
        return HP_K_NONE;
      *head = h;
      return HP_K_SLAB;
    }
    default:
      return HP_K_NONE;
  }
}

/* Free the LARGE span at head under the page lock (held), clearing *rec
 * in the same commit. 0 or -EINVAL (not a live large block: *rec cleared
 * anyway). */
static int large_free_locked(uint64_t head, uint64_t *rec) {
  hp_pageheap *ph = &mproc__hp->ph;
  uint64_t w = hp_pe(head)->w0;
  if (hp_kind(w) == HP_K_LARGE && (hp_flags(w) & HP_F_HEAD)) {
    mproc__hp_span_free(head, rec);
    return 0;
  }
  /* Freed by someone else meanwhile. */
  if (rec) {
    hp_jset(&ph->j, rec, 0);
    hp_commit(&ph->j);
  }
  return -EINVAL;
}

int mproc__heap_free(void *p) {
  if (!p) return 0;
  uint64_t head = 0;
  switch (locate(p, &head)) {
    case HP_K_SLAB: {
      hp_slot *slot = slot_get();
      int rc = mproc__hp_small_free(p, head, slot);
      slot_done(slot);
      return rc;
    }
    case HP_K_LARGE: {
      hp_slot *slot = slot_get();
      hp_pageheap *ph = &mproc__hp->ph;
      if (slot) {
        /* In flight from here (see "Leak on kill" above). */
        hp_store(&slot->lock, HP_SLOCK_PAGE);
        atomic_signal_fence(memory_order_seq_cst);
        hp_store(&slot->ptr, (uint64_t)((char *)p - mproc__hp_base));
        atomic_signal_fence(memory_order_seq_cst);
        HP_CRASH_POINT();
      }
      int rc = mproc__hp_lock(&ph->lock, &ph->j);
      if (rc == 0) {
        rc = large_free_locked(head, slot ? &slot->ptr : NULL);
        mproc__hp_unlock(&ph->lock);
      }
      slot_done(slot);
      return rc;
    }
    default:
      return -EINVAL;
  }
}

size_t mproc__heap_block_size(const void *p) {
  uint64_t head = 0;
  switch (locate(p, &head)) {
    case HP_K_LARGE:
      return (size_t)hp_n(hp_load(&hp_pe(head)->w0)) << HP_PAGE_SHIFT;
    case HP_K_SLAB: {
      unsigned cls = hp_cls(hp_load(&hp_pe(head)->w0));
      if (cls >= HP_NCLASS) return 0;
      const hp_clsinfo *ci = &mproc__hp_cls[cls];
      const hp_slab *s = (const hp_slab *)(const void *)hp_page(head);
      uint64_t off = (uint64_t)((const char *)p - (const char *)s);
      if (off < ci->first || (off - ci->first) % ci->size) return 0;
      uint64_t i = (off - ci->first) / ci->size;
      if (i >= ci->nblocks) return 0;
      uint64_t bw = hp_load(&s->bitmap[i / 64]);
      return (bw >> (i % 64)) & 1 ? ci->size : 0;
    }
    default:
      return 0;
  }
}

/* ---- public wrappers ---- */

int mproc_heap_alloc(size_t size, void **out) { return mproc__heap_alloc(size, out); }
int mproc_heap_free(void *p) { return mproc__heap_free(p); }
int mproc_heap_contains(const void *p) { return p && mproc__heap_contains(p); }

int mproc_heap_trim(void) {
  int rc = mproc__ensure_init();
  if (rc) return rc;
  mproc__hp_reap();
  mproc__hp_trim();
  return 0;
}

int mproc_heap_stats_get(mproc_heap_stats *st) {
  if (!st) return -EINVAL;
  int rc = mproc__ensure_init();
  if (rc) return rc;
  hp_hdr *h = mproc__hp;
  /* Lock-free snapshot: exact when the heap is quiet, approximate while
   * other processes allocate. */
  size_t used = 0, live = 0;
  for (int a = 0; a < HP_NARENA; a++)
    for (int c = 0; c < HP_NCLASS; c++) {
      uint64_t n = hp_load(&h->cls[a][c].live);
      live += n;
      used += n * mproc__hp_cls[c].size;
    }
  live += hp_load(&h->ph.large_live);
  used += hp_load(&h->ph.large_pages) << HP_PAGE_SHIFT;
  struct stat sb;
  st->capacity = (size_t)h->npages << HP_PAGE_SHIFT;
  st->used = used;
  st->live_blocks = live;
  st->resident = fstat(g_fd, &sb) == 0 ? (size_t)sb.st_blocks * 512 : 0;
  st->recoveries = atomic_load(&h->recoveries);
  return 0;
}
