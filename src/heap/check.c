/*
 * check.c - the heap's consistency checker, for tests and debugging.
 *
 * mproc__heap_check() takes every class lock (arena-major order) and then
 * the page lock, so it sees a quiet heap and repairs any journal left by a
 * dead process first (the same repair a normal locker would do). It then
 * walks all metadata and verifies the invariants stated in page.c and
 * slab.c. It never modifies the heap beyond that repair. Orphan slabs (left
 * by a process killed between the page heap and the class, see slab.c) are
 * reclaimed by the class repair, so any orphan found here is counted and is
 * an error only when a block in it is marked allocated.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "heap/heap_int.h"

static char g_msg[256];
static size_t g_orphans;

const char *mproc__heap_check_msg(void) { return g_msg; }
size_t mproc__heap_orphans(void) { return g_orphans; }

static int bad(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(g_msg, sizeof g_msg, fmt, ap);
  va_end(ap);
  return MPROC_EPROTO;
}

static int popcount_slab(const hp_slab *s, const hp_clsinfo *ci, uint64_t *pop) {
  uint64_t n = 0;
  for (uint32_t w = 0; w < ci->words; w++) {
    uint64_t b = s->bitmap[w];
    if (w == ci->words - 1 && (ci->nblocks % 64) && (b >> (ci->nblocks % 64)))
      return -1; /* bits past the last block */
    n += (uint64_t)__builtin_popcountll(b);
  }
  *pop = n;
  return 0;
}

static int check_locked(unsigned char *listed) {
  hp_hdr *h = mproc__hp;
  hp_pageheap *ph = &h->ph;
  uint64_t np = h->npages;
  if (h->magic != HP_MAGIC) return bad("bad heap magic");
  if (ph->j.n) return bad("page journal open");

  /* Partial lists first: mark every listed slab. */
  uint64_t listed_n[HP_NARENA][HP_NCLASS] = {{0}};
  for (int a = 0; a < HP_NARENA; a++)
    for (int c = 0; c < HP_NCLASS; c++) {
      hp_class *cl = &h->cls[a][c];
      if (cl->j.n) return bad("class %d/%d journal open", a, c);
      uint64_t prev = 0, guard = np + 1;
      for (uint64_t i = cl->partial; i; i = ((hp_slab *)(void *)hp_page(i - 1))->next) {
        if (!guard--) return bad("class %d/%d list cycles", a, c);
        if (i - 1 >= np) return bad("class %d/%d list index out of range", a, c);
        uint64_t w = hp_pe(i - 1)->w0;
        if (hp_kind(w) != HP_K_SLAB || !(hp_flags(w) & HP_F_HEAD) || hp_cls(w) != (unsigned)c ||
            hp_arena(w) != (unsigned)a)
          return bad("class %d/%d lists page %llu that is not its slab", a, c,
                     (unsigned long long)(i - 1));
        hp_slab *s = (hp_slab *)(void *)hp_page(i - 1);
        if (s->magic != HP_SLAB_MAGIC) return bad("listed slab without magic");
        if (s->prev != prev) return bad("class %d/%d prev link broken", a, c);
        if (s->nfree == 0) return bad("full slab in a partial list");
        if (listed[i - 1]) return bad("slab listed twice");
        listed[i - 1] = 1;
        listed_n[a][c]++;
        prev = i;
      }
    }

  /* Walk every span. */
  uint64_t free_spans = 0, free_pages = 0, dirty_pages = 0, large = 0, large_pages = 0,
           slab_pages = 0;
  uint64_t owned[HP_NARENA][HP_NCLASS] = {{0}}, live[HP_NARENA][HP_NCLASS] = {{0}};
  g_orphans = 0;
  int prev_free = -1; /* kind of the previous span when free: 0 clean, 1 retained */
  for (uint64_t i = 0; i < np;) {
    uint64_t w = hp_pe(i)->w0, n = hp_n(w);
    unsigned k = hp_kind(w);
    if (!(hp_flags(w) & HP_F_HEAD)) return bad("page %llu: no span head", (unsigned long long)i);
    if (n == 0 || n > np - i) return bad("page %llu: bad span length", (unsigned long long)i);
    int retained = (hp_flags(w) & HP_F_ALLDIRTY) != 0;
    if (k == HP_K_FREE || k == HP_K_LARGE) {
      uint64_t tw = hp_pe(i + n - 1)->w0;
      if (n == 1 ? !(hp_flags(w) & HP_F_TAIL)
                 : (hp_kind(tw) != k || !(hp_flags(tw) & HP_F_TAIL) || hp_n(tw) != n ||
                    ((hp_flags(tw) & HP_F_ALLDIRTY) != 0) != retained))
        return bad("page %llu: bad span tail", (unsigned long long)i);
    }
    if (k == HP_K_FREE) {
      if (prev_free == retained)
        return bad("adjacent free spans of one kind at %llu", (unsigned long long)i);
      free_spans++;
      free_pages += n;
      if (retained) dirty_pages += n;
    } else if (k == HP_K_LARGE) {
      large++;
      large_pages += n;
    } else if (k == HP_K_SLAB) {
      unsigned c = hp_cls(w), a = hp_arena(w);
      if (c >= HP_NCLASS || a >= HP_NARENA) return bad("slab with bad class");
      const hp_clsinfo *ci = &mproc__hp_cls[c];
      if (n != ci->pages) return bad("slab with wrong page count");
      for (uint64_t j = i + 1; j < i + n; j++) {
        uint64_t pw = hp_pe(j)->w0;
        if (hp_kind(pw) != HP_K_SLABPART || hp_n(pw) != i) return bad("slab interior entry");
      }
      hp_slab *s = (hp_slab *)(void *)hp_page(i);
      uint64_t pop = 0;
      if (popcount_slab(s, ci, &pop)) return bad("slab bitmap has bits past the end");
      slab_pages += n;
      int orphan = s->magic != HP_SLAB_MAGIC || (!listed[i] && s->nfree > 0);
      if (orphan) {
        if (pop) return bad("unlisted slab at %llu with live blocks", (unsigned long long)i);
        if (listed[i]) return bad("listed slab without magic");
        g_orphans++;
      } else {
        if (s->cls != c || s->arena != a) return bad("slab header disagrees with page map");
        if (s->nfree + pop != ci->nblocks) return bad("slab nfree disagrees with bitmap");
        if (!listed[i] && (s->next || s->prev)) return bad("unlisted slab with links");
        owned[a][c]++;
        live[a][c] += pop;
      }
    } else {
      return bad("page %llu: bad span kind %u", (unsigned long long)i, k);
    }
    prev_free = k == HP_K_FREE ? retained : -1;
    i += n;
  }

  /* Free lists hold exactly the free spans, each in its own bucket. */
  uint64_t seen = 0;
  for (unsigned b = 0; b < 2 * HP_NBUCKET; b++) {
    uint64_t prev = 0;
    int retained = b >= HP_NBUCKET;
    uint64_t first = retained ? ph->rbucket[b - HP_NBUCKET] : ph->bucket[b];
    for (uint64_t i = first; i; i = hp_pe(i - 1)->w1 & 0xffffffffull) {
      if (++seen > free_spans) return bad("free lists longer than the free spans");
      if (i - 1 >= np) return bad("free list index out of range");
      uint64_t w = hp_pe(i - 1)->w0;
      if (hp_kind(w) != HP_K_FREE || !(hp_flags(w) & HP_F_HEAD))
        return bad("free list holds a non-free page");
      if (((hp_flags(w) & HP_F_ALLDIRTY) != 0) != retained)
        return bad("free span in the other kind's list");
      if (mproc__hp_bucket_of(hp_n(w)) != b % HP_NBUCKET) return bad("free span in the wrong bucket");
      if ((hp_pe(i - 1)->w1 >> 32) != prev) return bad("free list prev link broken");
      prev = i;
    }
  }
  if (seen != free_spans) return bad("free span missing from the free lists");
  if (free_pages != ph->free_pages) return bad("free page count");
  if (dirty_pages != ph->dirty_pages) return bad("retained page count");
  if (dirty_pages > ph->retain_max) return bad("retained pages over budget");
  if (large != ph->large_live || large_pages != ph->large_pages) return bad("large counts");
  if (slab_pages != ph->slab_pages) return bad("slab page count");
  /* In-flight records: a free slot (unlocked) records nothing. A slot
   * whose owner died after the reap above is the next reaper's. */
  for (int i = 0; i < HP_NSLOT; i++) {
    hp_slot *s = &h->slots[i];
    uint32_t w = atomic_load_explicit(&s->owner.word, memory_order_relaxed);
    if (w == 0 && (s->ptr || s->lock)) return bad("free slot %d records a block", i);
    if (s->ptr && (s->ptr < h->data || s->ptr >= h->size)) return bad("slot %d: bad block", i);
  }
  for (int a = 0; a < HP_NARENA; a++)
    for (int c = 0; c < HP_NCLASS; c++) {
      if (owned[a][c] != h->cls[a][c].nslabs) return bad("class %d/%d slab count", a, c);
      if (live[a][c] != h->cls[a][c].live) return bad("class %d/%d live count", a, c);
    }
  return 0;
}

int mproc__heap_check(void) {
  int rc = mproc__ensure_init();
  if (rc) return rc;
  g_msg[0] = 0;
  /* Finish what dead threads left in flight first: a block they were
   * allocating or freeing is freed, as any claimer of their slots would. */
  mproc__hp_reap();
  hp_hdr *h = mproc__hp;
  unsigned char *listed = calloc(h->npages, 1);
  if (!listed) return -ENOMEM;
  int a = 0, c = 0, locked_page = 0;
  for (a = 0; a < HP_NARENA && !rc; a++)
    for (c = 0; c < HP_NCLASS && !rc; c++) rc = mproc__hp_class_lock(a, c);
  if (!rc) {
    rc = mproc__hp_lock(&h->ph.lock, &h->ph.j);
    locked_page = !rc;
  }
  if (!rc) rc = check_locked(listed);
  if (locked_page) mproc__hp_unlock(&h->ph.lock);
  for (int i = 0; i < HP_NARENA; i++)
    for (int j = 0; j < HP_NCLASS; j++)
      if (mproc__rmutex_held(&h->cls[i][j].lock)) mproc__hp_unlock(&h->cls[i][j].lock);
  free(listed);
  return rc;
}
