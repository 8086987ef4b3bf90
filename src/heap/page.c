/*
 * page.c - the page heap: spans of 4 KiB pages carved out of the data area.
 *
 * Design: boundary tags in the page map (a FREE span has FREE|HEAD on its
 * first page and FREE|TAIL on its last), so a freed span merges with free
 * neighbours in O(1); free spans sit in doubly linked bucket lists (exact
 * sizes up to 64 pages, then one bucket per power of two) whose links live in
 * the page map, never in the free pages themselves: a free page is never
 * touched, so memory returned to the OS stays returned.
 *
 * Invariants (checked by check.c):
 *  - every page belongs to exactly one span; walking heads by their n covers
 *    the data area;
 *  - no two FREE spans are adjacent (frees coalesce);
 *  - every FREE span is in the bucket of its size, and its pages read as
 *    zero (a span is punched out of the memfd before it becomes free), so
 *    allocation never needs to clear a span -- except its first page when
 *    the head carries HP_F_DIRTY. That page is kept on purpose: objects
 *    stamp a magic number near their start and mark it dead on destroy, so
 *    use after destroy stays detectable after the free (the memory reads
 *    as it was left, not as zeros) until the span is reused or merged. A
 *    dirty head that becomes interior in a merge is punched then.
 *
 * Every caller holds the page lock (ph.lock); every reachable metadata word
 * is written with hp_jset() and the journal is committed before returning.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>

#include "heap/heap_int.h"

#define NIL32 0xffffffffull

unsigned mproc__hp_bucket_of(uint64_t n) {
  if (n <= 64) return (unsigned)(n - 1);
  unsigned lg = 63u - (unsigned)__builtin_clzll(n); /* >= 6 */
  unsigned b = 64u + (lg - 6u);
  return b < HP_NBUCKET ? b : HP_NBUCKET - 1;
}

static inline hp_journal *PJ(void) { return &mproc__hp->ph.j; }

/* w1 holds next+1 in the low half and prev+1 in the high half. */
static inline uint64_t link_next(uint64_t w1) { return w1 & NIL32; }
static inline uint64_t link_prev(uint64_t w1) { return w1 >> 32; }

static void fl_push(uint64_t idx, uint64_t n) {
  hp_pageheap *ph = &mproc__hp->ph;
  unsigned b = mproc__hp_bucket_of(n);
  uint64_t first = ph->bucket[b];
  hp_jset(PJ(), &hp_pe(idx)->w1, first); /* prev = 0: list head */
  if (first) {
    hp_pent *f = hp_pe(first - 1);
    hp_jset(PJ(), &f->w1, link_next(f->w1) | ((idx + 1) << 32));
  }
  hp_jset(PJ(), &ph->bucket[b], idx + 1);
}

static void fl_remove(uint64_t idx, uint64_t n) {
  hp_pageheap *ph = &mproc__hp->ph;
  uint64_t w1 = hp_pe(idx)->w1;
  uint64_t next = link_next(w1), prev = link_prev(w1);
  if (prev) {
    hp_pent *p = hp_pe(prev - 1);
    hp_jset(PJ(), &p->w1, (p->w1 & ~NIL32) | next);
  } else {
    hp_jset(PJ(), &ph->bucket[mproc__hp_bucket_of(n)], next);
  }
  if (next) {
    hp_pent *q = hp_pe(next - 1);
    hp_jset(PJ(), &q->w1, link_next(q->w1) | (prev << 32));
  }
}

void mproc__hp_pages_init(void) {
  /* Runs before the heap is published: plain writes, no journal. */
  uint64_t n = mproc__hp->npages;
  hp_pe(0)->w0 = hp_w0(HP_K_FREE, HP_F_HEAD | (n == 1 ? HP_F_TAIL : 0), 0, 0, n);
  if (n > 1) hp_pe(n - 1)->w0 = hp_w0(HP_K_FREE, HP_F_TAIL, 0, 0, n);
  hp_pe(0)->w1 = 0;
  mproc__hp->ph.bucket[mproc__hp_bucket_of(n)] = 1;
  mproc__hp->ph.free_pages = n;
}

uint64_t mproc__hp_span_alloc(uint64_t npages, unsigned kind, unsigned cls, unsigned arena,
                              int *dirty) {
  hp_pageheap *ph = &mproc__hp->ph;
  if (npages == 0 || npages > ph->free_pages) return UINT64_MAX;
  unsigned b0 = mproc__hp_bucket_of(npages);
  uint64_t idx = UINT64_MAX, have = 0;
  for (unsigned b = b0; b < HP_NBUCKET && idx == UINT64_MAX; b++) {
    /* Above the first bucket every span fits; in a range bucket (> 64
     * pages) the first bucket needs a first-fit scan. */
    uint64_t guard = mproc__hp->npages;
    for (uint64_t i = ph->bucket[b]; i && guard--; i = link_next(hp_pe(i - 1)->w1)) {
      uint64_t n = hp_n(hp_pe(i - 1)->w0);
      if (n >= npages) {
        idx = i - 1;
        have = n;
        break;
      }
      if (b != b0 || b < 64) break;
    }
  }
  if (idx == UINT64_MAX) return UINT64_MAX;

  *dirty = (hp_flags(hp_pe(idx)->w0) & HP_F_DIRTY) != 0;
  fl_remove(idx, have);
  if (have > npages) {
    uint64_t rest = idx + npages, m = have - npages;
    hp_jset(PJ(), &hp_pe(rest)->w0,
            hp_w0(HP_K_FREE, HP_F_HEAD | (m == 1 ? HP_F_TAIL : 0), 0, 0, m));
    if (m > 1) hp_jset(PJ(), &hp_pe(rest + m - 1)->w0, hp_w0(HP_K_FREE, HP_F_TAIL, 0, 0, m));
    fl_push(rest, m);
  }
  uint64_t last = idx + npages - 1;
  if (kind == HP_K_SLAB) {
    /* Interior entries may be written without the journal: inside a FREE
     * span they are "don't care", and a stale SLABPART never validates
     * (its head must be a SLAB covering the page). The last page may be the
     * old free tail, so it goes through the journal. */
    for (uint64_t i = idx + 1; i < last; i++)
      hp_store(&hp_pe(i)->w0, hp_w0(HP_K_SLABPART, 0, 0, 0, idx));
    if (last > idx) hp_jset(PJ(), &hp_pe(last)->w0, hp_w0(HP_K_SLABPART, 0, 0, 0, idx));
    hp_jset(PJ(), &hp_pe(idx)->w0, hp_w0(HP_K_SLAB, HP_F_HEAD, cls, arena, npages));
    hp_jset(PJ(), &ph->slab_pages, ph->slab_pages + npages);
  } else {
    if (last > idx) hp_jset(PJ(), &hp_pe(last)->w0, hp_w0(HP_K_LARGE, HP_F_TAIL, 0, 0, npages));
    hp_jset(PJ(), &hp_pe(idx)->w0,
            hp_w0(HP_K_LARGE, HP_F_HEAD | (last == idx ? HP_F_TAIL : 0), 0, 0, npages));
    hp_jset(PJ(), &ph->large_live, ph->large_live + 1);
    hp_jset(PJ(), &ph->large_pages, ph->large_pages + npages);
  }
  hp_jset(PJ(), &ph->free_pages, ph->free_pages - npages);
  hp_commit(PJ());
  return idx;
}

void mproc__hp_punch(uint64_t idx, uint64_t npages) {
  char *p = hp_page(idx);
  size_t len = (size_t)npages << HP_PAGE_SHIFT;
  off_t off = (off_t)(p - mproc__hp_base);
  /* Give the pages back to the OS: the memfd's blocks are freed and the
   * range reads as zero afterwards, in every process mapping it. */
  if (fallocate(mproc__heap_fd(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off,
                (off_t)len) == 0)
    return;
  if (madvise(p, len, MADV_REMOVE) == 0) return;
  memset(p, 0, len); /* the zero-span invariant must hold regardless */
}

void mproc__hp_span_free(uint64_t idx) {
  hp_pageheap *ph = &mproc__hp->ph;
  uint64_t w = hp_pe(idx)->w0;
  unsigned kind = hp_kind(w);
  uint64_t n = hp_n(w);
  /* Punch first: if we die after it, the span is still allocated (now
   * zero-filled); a free span is never dirty beyond its head page. The head
   * page is kept (see the top of the file) unless it ends up inside a
   * merged span. */
  uint64_t lw = idx > 0 ? hp_pe(idx - 1)->w0 : 0;
  int merge_left = hp_kind(lw) == HP_K_FREE && (hp_flags(lw) & HP_F_TAIL);
  if (merge_left)
    mproc__hp_punch(idx, n);
  else if (n > 1)
    mproc__hp_punch(idx + 1, n - 1);
  HP_CRASH_POINT();

  uint64_t start = idx, total = n;
  unsigned dirty = HP_F_DIRTY;
  if (idx > 0) {
    if (merge_left) {
      uint64_t ln = hp_n(lw);
      dirty = hp_flags(hp_pe(idx - ln)->w0) & HP_F_DIRTY;
      fl_remove(idx - ln, ln);
      start = idx - ln;
      total += ln;
      if (ln > 1) hp_jset(PJ(), &hp_pe(idx - 1)->w0, 0);
      hp_jset(PJ(), &hp_pe(idx)->w0, 0);
    }
  }
  uint64_t r = idx + n;
  if (r < mproc__hp->npages) {
    uint64_t rw = hp_pe(r)->w0;
    if (hp_kind(rw) == HP_K_FREE && (hp_flags(rw) & HP_F_HEAD)) {
      uint64_t rn = hp_n(rw);
      if (hp_flags(rw) & HP_F_DIRTY) mproc__hp_punch(r, 1); /* becomes interior */
      fl_remove(r, rn);
      hp_jset(PJ(), &hp_pe(r)->w0, 0);
      if (n > 1) hp_jset(PJ(), &hp_pe(idx + n - 1)->w0, 0);
      total += rn;
    }
  }
  uint64_t end = start + total - 1;
  hp_jset(PJ(), &hp_pe(start)->w0,
          hp_w0(HP_K_FREE, HP_F_HEAD | dirty | (total == 1 ? HP_F_TAIL : 0), 0, 0, total));
  if (total > 1) hp_jset(PJ(), &hp_pe(end)->w0, hp_w0(HP_K_FREE, HP_F_TAIL, 0, 0, total));
  fl_push(start, total);
  if (kind == HP_K_LARGE) {
    hp_jset(PJ(), &ph->large_live, ph->large_live - 1);
    hp_jset(PJ(), &ph->large_pages, ph->large_pages - n);
  } else {
    hp_jset(PJ(), &ph->slab_pages, ph->slab_pages - n);
  }
  hp_jset(PJ(), &ph->free_pages, ph->free_pages + n);
  hp_commit(PJ());
}
