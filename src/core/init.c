/* init.c - library initialisation: options, environment, the heap.
 *
 * Initialisation happens once per family: the heap created by the first
 * process is inherited by forked children and re-attached by spawned ones,
 * which call mproc__heap_attach() before anything reaches here. */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "heap/heap.h"
#include "internal.h"

static pthread_mutex_t g_init_mu = PTHREAD_MUTEX_INITIALIZER;
static _Atomic int g_inited;
static size_t g_heap_size;
static int g_start_method = MPROC_START_FORK;

/* Parse "123", "64K", "512M", "2G", "1T" (suffix case-insensitive, an
 * optional trailing B) into bytes; 0 on any error, overflow included. */
static size_t parse_size(const char *s) {
  if (!s || !isdigit((unsigned char)*s)) return 0; /* no sign, no spaces */
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || end == s) return 0;
  unsigned shift = 0;
  switch (toupper((unsigned char)*end)) {
    case 'K': shift = 10; end++; break;
    case 'M': shift = 20; end++; break;
    case 'G': shift = 30; end++; break;
    case 'T': shift = 40; end++; break;
    default: break;
  }
  if (*end == 'B' || *end == 'b') end++;
  if (*end) return 0;
  if (shift && v > (SIZE_MAX >> shift)) return 0;
  return (size_t)(v << shift);
}

static int do_init(const mproc_init_opts *opts) {
  size_t size = opts ? opts->heap_size : 0;
  if (!size) {
    const char *env = getenv("MPROC_HEAP_SIZE");
    if (env) {
      size = parse_size(env);
      if (!size) return -EINVAL;
    }
  }
  if (!size) size = MPROC__HEAP_DEFAULT_SIZE;
  if (size < MPROC__HEAP_MIN_SIZE || size > MPROC__HEAP_MAX_SIZE) return -EINVAL;
  int rc = mproc__heap_init(size);
  if (rc) return rc;
  g_heap_size = size;
  if (opts && opts->start_method) g_start_method = opts->start_method;
  atomic_store(&g_inited, 1);
  return 0;
}

int mproc_init(const mproc_init_opts *opts) {
  if (opts && (opts->flags || opts->start_method < 0 ||
               opts->start_method > MPROC_START_SPAWN ||
               (opts->heap_size && (opts->heap_size < MPROC__HEAP_MIN_SIZE ||
                                    opts->heap_size > MPROC__HEAP_MAX_SIZE))))
    return -EINVAL;
  pthread_mutex_lock(&g_init_mu);
  int rc = 0;
  if (atomic_load(&g_inited)) {
    if (opts && opts->heap_size && opts->heap_size != g_heap_size) rc = -EBUSY;
  } else {
    rc = do_init(opts);
  }
  pthread_mutex_unlock(&g_init_mu);
  return rc;
}

int mproc__ensure_init(void) {
  if (MPROC_LIKELY(atomic_load_explicit(&g_inited, memory_order_acquire)))
    return 0;
  return mproc_init(NULL);
}

/* Called by a spawned child that attached an inherited heap. */
void mproc__mark_inited(size_t heap_size) {
  g_heap_size = heap_size;
  atomic_store(&g_inited, 1);
}

int mproc__init_start_method(void) { return g_start_method; }
void mproc__init_set_start_method(int m) { g_start_method = m; }
