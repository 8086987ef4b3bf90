/* heap.c - bootstrap shared heap (v0): memfd + size-class free lists under a
 * futex lock. Correct but not crash-safe yet; replaced by the real allocator. */
#include "heap/heap.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"
#include "platform/platform.h"

#define HEAP_MAGIC 0x6d706870u
#define BLK_MAGIC 0x626c6b21u
#define NCLASS 9 /* 16 .. 4096 */

typedef struct blk {
  uint32_t magic;
  uint32_t cls; /* class index, or NCLASS for large */
  uint64_t size; /* usable bytes */
} blk;

typedef struct heap_hdr {
  uint32_t magic;
  _Atomic uint32_t lock;
  uint64_t size;
  uint64_t bump; /* offset of the first never-used byte */
  uint64_t free_small[NCLASS];
  uint64_t free_large; /* singly linked, first fit */
  uint64_t used, live;
  char root[MPROC__ROOT_NSLOTS][MPROC__HEAP_ROOT_SLOT];
} heap_hdr;

static char *g_base;
static size_t g_size;
static int g_fd = -1;

static heap_hdr *H(void) { return (heap_hdr *)(void *)g_base; }

static void lock(void) {
  uint32_t c = 0;
  if (atomic_compare_exchange_strong(&H()->lock, &c, 1)) return;
  if (c != 2) c = atomic_exchange(&H()->lock, 2);
  while (c != 0) {
    mproc__futex_wait(&H()->lock, 2, NULL);
    c = atomic_exchange(&H()->lock, 2);
  }
}
static void unlock(void) {
  if (atomic_exchange(&H()->lock, 0) == 2) mproc__futex_wake(&H()->lock, 1);
}

int mproc__heap_init(size_t size) {
  if (g_base) return 0;
  size = MPROC_ALIGN_UP(size, 4096);
  int fd = mproc__sys.memfd_create("mproc-heap", 0);
  if (fd < 0) return -errno;
  if (ftruncate(fd, (off_t)size) < 0) {
    int e = errno;
    close(fd);
    return -e;
  }
  void *p = mproc__sys.mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    int e = errno;
    close(fd);
    return -e;
  }
  g_base = p;
  g_size = size;
  g_fd = fd;
  heap_hdr *h = H();
  h->magic = HEAP_MAGIC;
  h->size = size;
  h->bump = MPROC_ALIGN_UP(sizeof(heap_hdr), 64);
  return 0;
}

int mproc__heap_attach(int fd, void *base, size_t size) {
  void *p = mproc__sys.mmap(base, size, PROT_READ | PROT_WRITE,
                            MAP_SHARED | MAP_FIXED_NOREPLACE, fd, 0);
  if (p == MAP_FAILED) return -errno;
  if (p != base) {
    munmap(p, size);
    return -EEXIST;
  }
  g_base = p;
  g_size = size;
  g_fd = fd;
  return 0;
}

static int size_class(size_t n) {
  size_t c = 16;
  for (int i = 0; i < NCLASS; i++, c <<= 1)
    if (n <= c) return i;
  return NCLASS;
}

int mproc__heap_alloc(size_t size, void **out) {
  if (!out || size == 0) return -EINVAL;
  int rc = mproc__ensure_init();
  if (rc) return rc;
  if (size > g_size) return -ENOMEM;
  int cls = size_class(size);
  size_t usable = cls < NCLASS ? ((size_t)16 << cls) : MPROC_ALIGN_UP(size, 4096);
  heap_hdr *h = H();
  lock();
  blk *b = NULL;
  if (cls < NCLASS && h->free_small[cls]) {
    b = (blk *)(void *)(g_base + h->free_small[cls]);
    h->free_small[cls] = *(uint64_t *)(b + 1);
  } else if (cls == NCLASS) {
    uint64_t *prev = &h->free_large;
    while (*prev) {
      blk *c = (blk *)(void *)(g_base + *prev);
      if (c->size >= usable) {
        *prev = *(uint64_t *)(c + 1);
        b = c;
        usable = c->size;
        break;
      }
      prev = (uint64_t *)(c + 1);
    }
  }
  if (!b) {
    size_t need = sizeof(blk) + usable;
    if (h->bump + need > g_size) {
      unlock();
      return -ENOMEM;
    }
    b = (blk *)(void *)(g_base + h->bump);
    h->bump += MPROC_ALIGN_UP(need, 16);
  }
  b->magic = BLK_MAGIC;
  b->cls = (uint32_t)cls;
  b->size = usable;
  h->used += usable;
  h->live++;
  unlock();
  memset(b + 1, 0, usable);
  *out = b + 1;
  return 0;
}

int mproc__heap_free(void *p) {
  if (!p) return 0;
  if (!mproc__heap_contains(p)) return -EINVAL;
  blk *b = (blk *)p - 1;
  heap_hdr *h = H();
  lock();
  if (b->magic != BLK_MAGIC) {
    unlock();
    return -EINVAL;
  }
  b->magic = 0;
  h->used -= b->size;
  h->live--;
  uint64_t off = (uint64_t)((char *)b - g_base);
  if (b->cls < NCLASS) {
    *(uint64_t *)(b + 1) = h->free_small[b->cls];
    h->free_small[b->cls] = off;
  } else {
    *(uint64_t *)(b + 1) = h->free_large;
    h->free_large = off;
  }
  unlock();
  return 0;
}

int mproc__heap_contains(const void *p) {
  return g_base && (const char *)p >= g_base + sizeof(heap_hdr) &&
         (const char *)p < g_base + g_size;
}

size_t mproc__heap_block_size(const void *p) {
  if (!mproc__heap_contains(p)) return 0;
  const blk *b = (const blk *)p - 1;
  return b->magic == BLK_MAGIC ? b->size : 0;
}

int mproc__heap_fd(void) { return g_fd; }
void *mproc__heap_base(void) { return g_base; }
size_t mproc__heap_size(void) { return g_size; }

void *mproc__heap_root(enum mproc__root_slot slot) {
  if (mproc__ensure_init()) return NULL;
  return H()->root[slot];
}

/* ---- public wrappers ---- */

int mproc_heap_alloc(size_t size, void **out) { return mproc__heap_alloc(size, out); }
int mproc_heap_free(void *p) { return mproc__heap_free(p); }
int mproc_heap_contains(const void *p) { return mproc__heap_contains(p); }

int mproc_heap_stats_get(mproc_heap_stats *st) {
  if (!st) return -EINVAL;
  int rc = mproc__ensure_init();
  if (rc) return rc;
  heap_hdr *h = H();
  lock();
  st->capacity = g_size;
  st->used = h->used;
  st->live_blocks = h->live;
  st->resident = h->bump;
  st->recoveries = 0;
  unlock();
  return 0;
}
