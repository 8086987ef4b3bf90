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
 * Two kinds of free span:
 *  - CLEAN: punched out of the memfd (the OS has the memory back), reads as
 *    zero -- except its head page when the head carries HP_F_DIRTY. That
 *    page is kept on purpose: objects stamp a magic number near their start
 *    and mark it dead on destroy, so use after destroy stays detectable after
 *    the free until the span is reused or merged (a dirty head that becomes
 *    interior in a merge is punched then).
 *  - RETAINED (HP_F_ALLDIRTY on head and tail): freed recently and kept
 *    resident, contents left as they were, up to a budget (the cache:
 *    $MPROC_HEAP_CACHE, default 1/4 of the heap up to 256 MiB). Punching
 *    and re-faulting costs ~10x a memset (a shared-memory fault allocates,
 *    zeroes and maps each page: 256 MiB fault in ~110-240 ms, memset of
 *    resident memory ~26 ms), so a program that frees and allocates large
 *    blocks in a loop reuses warm memory. Allocation clears what it takes
 *    from a retained span (unless the caller asked for MPROC__HEAP_UNINIT).
 *    A free that does not fit the budget keeps what fits (the span's first
 *    pages) and punches the rest; mproc_heap_trim(), and an allocation that
 *    would otherwise fail, punch every retained span.
 *  - An allocation prefers one retained span that fits; else a retained
 *    span together with the clean free span next to it (find_mixed: a
 *    block a little larger than what was freed, the common case of a
 *    buffer rebuilt at a slightly different size); else a clean span.
 *
 * Invariants (checked by check.c):
 *  - every page belongs to exactly one span; walking heads by their n covers
 *    the data area;
 *  - no two adjacent FREE spans of the same kind (frees coalesce; a clean
 *    and a retained span may touch);
 *  - every FREE span is in the bucket list of its kind and size;
 *    ph.free_pages and ph.dirty_pages count their pages.
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

static inline uint64_t *bucket(int retained, unsigned b) {
  return retained ? &mproc__hp->ph.rbucket[b] : &mproc__hp->ph.bucket[b];
}

static void fl_push(uint64_t idx, uint64_t n, int retained) {
  uint64_t *head = bucket(retained, mproc__hp_bucket_of(n));
  uint64_t first = *head;
  hp_jset(PJ(), &hp_pe(idx)->w1, first); /* prev = 0: list head */
  if (first) {
    hp_pent *f = hp_pe(first - 1);
    hp_jset(PJ(), &f->w1, link_next(f->w1) | ((idx + 1) << 32));
  }
  hp_jset(PJ(), head, idx + 1);
}

static void fl_remove(uint64_t idx, uint64_t n, int retained) {
  uint64_t w1 = hp_pe(idx)->w1;
  uint64_t next = link_next(w1), prev = link_prev(w1);
  if (prev) {
    hp_pent *p = hp_pe(prev - 1);
    hp_jset(PJ(), &p->w1, (p->w1 & ~NIL32) | next);
  } else {
    hp_jset(PJ(), bucket(retained, mproc__hp_bucket_of(n)), next);
  }
  if (next) {
    hp_pent *q = hp_pe(next - 1);
    hp_jset(PJ(), &q->w1, link_next(q->w1) | (prev << 32));
  }
}

static inline int is_retained(uint64_t w) { return (hp_flags(w) & HP_F_ALLDIRTY) != 0; }

/* Write head and tail of a free span and list it. */
static void put_free(uint64_t start, uint64_t total, int retained, unsigned headdirty) {
  unsigned kf = retained ? HP_F_ALLDIRTY : headdirty;
  hp_jset(PJ(), &hp_pe(start)->w0,
          hp_w0(HP_K_FREE, HP_F_HEAD | kf | (total == 1 ? HP_F_TAIL : 0), 0, 0, total));
  if (total > 1)
    hp_jset(PJ(), &hp_pe(start + total - 1)->w0,
            hp_w0(HP_K_FREE, HP_F_TAIL | (retained ? HP_F_ALLDIRTY : 0), 0, 0, total));
  fl_push(start, total, retained);
}

void mproc__hp_pages_init(uint64_t retain_pages) {
  /* Runs before the heap is published: plain writes, no journal. */
  uint64_t n = mproc__hp->npages;
  hp_pe(0)->w0 = hp_w0(HP_K_FREE, HP_F_HEAD | (n == 1 ? HP_F_TAIL : 0), 0, 0, n);
  if (n > 1) hp_pe(n - 1)->w0 = hp_w0(HP_K_FREE, HP_F_TAIL, 0, 0, n);
  hp_pe(0)->w1 = 0;
  mproc__hp->ph.bucket[mproc__hp_bucket_of(n)] = 1;
  mproc__hp->ph.free_pages = n;
  mproc__hp->ph.retain_max = retain_pages < n ? retain_pages : n;
}

/* Find a free span of at least npages in one kind's lists. */
static uint64_t find(uint64_t npages, int retained, uint64_t *have) {
  unsigned b0 = mproc__hp_bucket_of(npages);
  for (unsigned b = b0; b < HP_NBUCKET; b++) {
    /* Above the first bucket every span fits; in a range bucket (> 64
     * pages) the first bucket needs a first-fit scan. */
    uint64_t guard = mproc__hp->npages;
    for (uint64_t i = *bucket(retained, b); i && guard--; i = link_next(hp_pe(i - 1)->w1)) {
      uint64_t n = hp_n(hp_pe(i - 1)->w0);
      if (n >= npages) {
        *have = n;
        return i - 1;
      }
      if (b != b0 || b < 64) break;
    }
  }
  return UINT64_MAX;
}

/* No retained span is big enough: find one whose clean free neighbour
 * makes up the rest, so a large block reuses warm memory for most of its
 * pages instead of faulting in fresh ones (a freed block that is reallocated
 * a little bigger, e.g. 64 freed 4 MiB inputs and then one 256 MiB + 1 page
 * copy of them). Bounded scan, largest buckets first. Returns the retained
 * span's head or UINT64_MAX; *right says on which side the clean span is. */
static uint64_t find_mixed(uint64_t npages, uint64_t *rn, uint64_t *c, uint64_t *cn, int *right) {
  uint64_t np = mproc__hp->npages;
  int budget = 64;
  for (unsigned b = HP_NBUCKET; b-- > 0 && budget > 0;) {
    uint64_t guard = np;
    for (uint64_t i = mproc__hp->ph.rbucket[b]; i && guard-- && budget-- > 0;
         i = link_next(hp_pe(i - 1)->w1)) {
      uint64_t r = i - 1, n = hp_n(hp_pe(r)->w0);
      if (r + n < np) {
        uint64_t w = hp_pe(r + n)->w0;
        if (hp_kind(w) == HP_K_FREE && (hp_flags(w) & HP_F_HEAD) && !is_retained(w) &&
            n + hp_n(w) >= npages) {
          *rn = n, *c = r + n, *cn = hp_n(w), *right = 1;
          return r;
        }
      }
      if (r > 0) {
        uint64_t w = hp_pe(r - 1)->w0;
        if (hp_kind(w) == HP_K_FREE && (hp_flags(w) & HP_F_TAIL) && !is_retained(w) &&
            n + hp_n(w) >= npages) {
          *rn = n, *c = r - hp_n(w), *cn = hp_n(w), *right = 0;
          return r;
        }
      }
    }
  }
  return UINT64_MAX;
}

uint64_t mproc__hp_span_alloc(uint64_t npages, unsigned kind, unsigned cls, unsigned arena,
                              uint64_t *zoff, uint64_t *zlen, uint64_t *rec) {
  hp_pageheap *ph = &mproc__hp->ph;
  *zoff = *zlen = 0;
  if (npages == 0 || npages > ph->free_pages) return UINT64_MAX;
  uint64_t have = 0, idx, warm = 0; /* warm: retained pages taken */
  /* Warm retained memory first; then retained plus a clean neighbour;
   * then clean spans. */
  idx = ph->dirty_pages >= npages ? find(npages, 1, &have) : UINT64_MAX;
  if (idx != UINT64_MAX) {
    fl_remove(idx, have, 1);
    if (have > npages && kind == HP_K_SLAB) {
      /* Slabs are carved from the end of a span, large blocks from the
       * start: small and large memory stay apart, so a freed large block
       * is not fenced in by a slab and can grow into its neighbour. */
      put_free(idx, have - npages, 1, 0);
      idx += have - npages;
    } else if (have > npages) {
      put_free(idx + npages, have - npages, 1, 0);
    }
    warm = npages;
    *zlen = npages;
  } else {
    uint64_t rn = 0, c = 0, cn = 0;
    int right = 0;
    uint64_t r = ph->dirty_pages ? find_mixed(npages, &rn, &c, &cn, &right) : UINT64_MAX;
    if (r != UINT64_MAX) {
      unsigned cdirty = hp_flags(hp_pe(c)->w0) & HP_F_DIRTY;
      fl_remove(r, rn, 1);
      fl_remove(c, cn, 0);
      /* The four old boundary tags become interior (or are rewritten
       * below): clear them through the journal, so a rollback restores
       * them and nothing stale looks like a span boundary. */
      hp_jset(PJ(), &hp_pe(r)->w0, 0);
      if (rn > 1) hp_jset(PJ(), &hp_pe(r + rn - 1)->w0, 0);
      hp_jset(PJ(), &hp_pe(c)->w0, 0);
      if (cn > 1) hp_jset(PJ(), &hp_pe(c + cn - 1)->w0, 0);
      warm = rn;
      if (right) {
        /* [r .. r+rn) warm, then [c .. c+cn) clean: take from r. */
        idx = r;
        if (rn + cn > npages) put_free(r + npages, rn + cn - npages, 0, 0);
        *zlen = rn + (cdirty ? 1 : 0);
      } else {
        /* [c .. c+cn) clean, then [r .. r+rn) warm: take the end. */
        idx = r + rn - npages;
        if (idx > c) put_free(c, idx - c, 0, cdirty);
        if (idx == c && cdirty) {
          *zlen = npages;
        } else {
          *zoff = r - idx;
          *zlen = rn;
        }
      }
    } else {
      idx = find(npages, 0, &have);
      if (idx == UINT64_MAX) return UINT64_MAX;
      unsigned hdirty = hp_flags(hp_pe(idx)->w0) & HP_F_DIRTY;
      fl_remove(idx, have, 0);
      if (have > npages && kind == HP_K_SLAB) {
        /* From the end (see above): the kept head page stays with the
         * remainder, the slab's pages are all punched. */
        put_free(idx, have - npages, 0, hdirty);
        idx += have - npages;
      } else {
        if (hdirty) *zlen = 1;
        if (have > npages) put_free(idx + npages, have - npages, 0, 0);
      }
    }
  }

  uint64_t last = idx + npages - 1;
  if (kind == HP_K_SLAB && *zoff == 0 && *zlen) {
    /* A slab's header must read as zero before the span becomes a SLAB in
     * committed state: an old header (magic, counts, bitmap) there would
     * fool the orphan check if we died before the caller initialised it.
     * The span is not reachable yet, so no journal. */
    memset(hp_page(idx), 0, mproc__hp_cls[cls].first);
    *zlen = 0; /* the blocks are cleared when handed out */
  }
  if (kind == HP_K_SLAB) {
    /* Interior entries may be written without the journal: inside a FREE
     * span they are "don't care" (the mixed path journaled the old
     * boundaries above), and a stale SLABPART never validates (its head
     * must be a SLAB covering the page). The last page may be the old free
     * tail, so it goes through the journal. */
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
  if (warm) hp_jset(PJ(), &ph->dirty_pages, ph->dirty_pages - warm);
  hp_jset(PJ(), &ph->free_pages, ph->free_pages - npages);
  if (rec) hp_jset(PJ(), rec, (uint64_t)(hp_page(idx) - mproc__hp_base));
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

/* Insert [idx, idx+n) as a free span of the given kind, merging with free
 * neighbours of the same kind. For a clean span the caller has punched
 * [idx+1, idx+n) (and idx too when the left neighbour is clean and free). */
static void insert_free(uint64_t idx, uint64_t n, int retained, int head_punched) {
  uint64_t start = idx, total = n;
  unsigned headdirty = head_punched ? 0 : HP_F_DIRTY;
  if (idx > 0) {
    uint64_t lw = hp_pe(idx - 1)->w0;
    if (hp_kind(lw) == HP_K_FREE && (hp_flags(lw) & HP_F_TAIL) && is_retained(lw) == retained) {
      uint64_t ln = hp_n(lw);
      if (!retained) headdirty = hp_flags(hp_pe(idx - ln)->w0) & HP_F_DIRTY;
      fl_remove(idx - ln, ln, retained);
      start = idx - ln;
      total += ln;
      if (ln > 1) hp_jset(PJ(), &hp_pe(idx - 1)->w0, 0);
      hp_jset(PJ(), &hp_pe(idx)->w0, 0);
    }
  }
  uint64_t r = idx + n;
  if (r < mproc__hp->npages) {
    uint64_t rw = hp_pe(r)->w0;
    if (hp_kind(rw) == HP_K_FREE && (hp_flags(rw) & HP_F_HEAD) && is_retained(rw) == retained) {
      uint64_t rn = hp_n(rw);
      if (!retained && (hp_flags(rw) & HP_F_DIRTY)) mproc__hp_punch(r, 1); /* now interior */
      fl_remove(r, rn, retained);
      hp_jset(PJ(), &hp_pe(r)->w0, 0);
      if (n > 1) hp_jset(PJ(), &hp_pe(idx + n - 1)->w0, 0);
      total += rn;
    }
  }
  put_free(start, total, retained, headdirty);
}

/* Punch a clean-to-be span [idx, idx+n): all of it when its head will be
 * interior (clean free left neighbour) or when asked, else all but the
 * head page. Returns whether the head page was punched. */
static int punch_for_clean(uint64_t idx, uint64_t n, int whole) {
  uint64_t lw = idx > 0 ? hp_pe(idx - 1)->w0 : 0;
  int left_clean = hp_kind(lw) == HP_K_FREE && (hp_flags(lw) & HP_F_TAIL) && !is_retained(lw);
  if (whole || left_clean) {
    mproc__hp_punch(idx, n);
    return 1;
  }
  if (n > 1) mproc__hp_punch(idx + 1, n - 1);
  return 0;
}

void mproc__hp_span_free(uint64_t idx, uint64_t *rec) {
  hp_pageheap *ph = &mproc__hp->ph;
  uint64_t w = hp_pe(idx)->w0;
  unsigned kind = hp_kind(w);
  uint64_t n = hp_n(w);
  /* Keep as much of the span resident as the budget allows: all of it,
   * its first `keep` pages (the rest punched), or none. */
  uint64_t room = ph->retain_max > ph->dirty_pages ? ph->retain_max - ph->dirty_pages : 0;
  uint64_t keep = n <= room ? n : room;
  if (keep == n) {
    insert_free(idx, n, 1, 0);
  } else if (keep == 0) {
    /* Punch first: if we die after it, the span is still allocated (now
     * zero-filled); a clean free span is never dirty beyond its head page. */
    int head_punched = punch_for_clean(idx, n, 0);
    HP_CRASH_POINT();
    insert_free(idx, n, 0, head_punched);
  } else {
    /* Split: [idx, idx+keep) retained, [idx+keep, idx+n) punched clean.
     * The two tags at the cut are interior words of the span now (stale
     * values there must not look like a neighbour's boundary): clear them
     * through the journal before inserting either part. */
    mproc__hp_punch(idx + keep, n - keep);
    HP_CRASH_POINT();
    hp_jset(PJ(), &hp_pe(idx + keep - 1)->w0, 0);
    hp_jset(PJ(), &hp_pe(idx + keep)->w0, 0);
    insert_free(idx + keep, n - keep, 0, 1);
    insert_free(idx, keep, 1, 0);
  }
  if (kind == HP_K_LARGE) {
    hp_jset(PJ(), &ph->large_live, ph->large_live - 1);
    hp_jset(PJ(), &ph->large_pages, ph->large_pages - n);
  } else {
    hp_jset(PJ(), &ph->slab_pages, ph->slab_pages - n);
  }
  if (keep) hp_jset(PJ(), &ph->dirty_pages, ph->dirty_pages + keep);
  hp_jset(PJ(), &ph->free_pages, ph->free_pages + n);
  if (rec) hp_jset(PJ(), rec, 0);
  hp_commit(PJ());
}

uint64_t mproc__hp_purge(void) {
  hp_pageheap *ph = &mproc__hp->ph;
  uint64_t pages = 0;
  for (unsigned b = 0; b < HP_NBUCKET; b++) {
    uint64_t i;
    while ((i = ph->rbucket[b]) != 0) {
      uint64_t idx = i - 1, n = hp_n(hp_pe(idx)->w0);
      /* Punch the whole span, then turn it into a clean one (one committed
       * step per span keeps the journal short). Dying in between leaves a
       * retained span that happens to read as zero: harmless. */
      mproc__hp_punch(idx, n);
      HP_CRASH_POINT();
      fl_remove(idx, n, 1);
      insert_free(idx, n, 0, 1);
      hp_jset(PJ(), &ph->dirty_pages, ph->dirty_pages - n);
      hp_commit(PJ());
      pages += n;
    }
  }
  return pages;
}
