/*
 * family.c - the family-wide limit on pool workers (nested pools).
 *
 * The heap root slot MPROC__ROOT_POOL holds a small table: one entry per
 * live pool of the family (owner pid, workers). A pool created inside a pool
 * worker gets min(processes, max(1, limit - sum of live entries)); top-level
 * pools are not clipped but count. Entries of owners that died (SIGKILL:
 * nobody released them) are ignored and reclaimed, so a crash never eats
 * the budget. The table is guarded by a word holding the locker's pid; a
 * dead locker's lock is taken over.
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "heap/heap.h"
#include "pool/pool_internal.h"

#define FAM_ENTRIES 60

typedef struct pfamily {
  _Atomic int32_t lock;  /* pid of the holder, 0 = free */
  int32_t limit;         /* 0 = default */
  struct {
    int32_t pid;         /* owner of the pool, 0 = free entry */
    int32_t n;           /* its workers */
  } ent[FAM_ENTRIES];
} pfamily;
STATIC_ASSERT(sizeof(pfamily) <= MPROC__HEAP_ROOT_SLOT, "pool root slot too small");

static int alive(pid_t pid) { return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM); }

static pfamily *fam(void) {
  if (mproc__ensure_init()) return NULL;
  return mproc__heap_root(MPROC__ROOT_POOL);
}

static void lock(pfamily *f) {
  int32_t me = (int32_t)getpid();
  for (int k = 0;; k++) {
    int32_t cur = 0;
    if (atomic_compare_exchange_weak(&f->lock, &cur, me)) return;
    if (cur && !alive(cur)) atomic_compare_exchange_strong(&f->lock, &cur, 0);
    if (k > 50) sched_yield();
  }
}

static void unlock(pfamily *f) { atomic_store(&f->lock, 0); }

static int limit_of(pfamily *f) {
  if (f->limit > 0) return f->limit;
  /* The same range as mproc_pool_set_family_limit; anything else (not a
   * whole number, 0, too big) is ignored rather than half-read by atoi. */
  const char *e = getenv("MPROC_POOL_LIMIT");
  char *end = NULL;
  long v = e && *e ? strtol(e, &end, 10) : 0;
  if (end && *end) v = 0;
  return v >= 1 && v <= POOL_MAX_WORKERS ? (int)v : mproc_cpu_count();
}

int mproc__pool_family_acquire(int want, int nested, int *got) {
  pfamily *f = fam();
  if (!f) return -ENOMEM;
  lock(f);
  int used = 0, free_ent = -1;
  for (int i = 0; i < FAM_ENTRIES; i++) {
    if (f->ent[i].pid && !alive(f->ent[i].pid)) f->ent[i].pid = 0;
    if (f->ent[i].pid) used += f->ent[i].n;
    else if (free_ent < 0) free_ent = i;
  }
  int n = want;
  if (nested) {
    int room = limit_of(f) - used;
    if (room < 1) room = 1;
    if (n > room) n = room;
  }
  *got = n;
  if (free_ent >= 0) {
    f->ent[free_ent].pid = (int32_t)getpid();
    f->ent[free_ent].n = n;
  }
  unlock(f);
  return free_ent; /* -1: table full, the pool is simply not counted */
}

void mproc__pool_family_release(int ent) {
  pfamily *f = fam();
  if (!f || ent < 0 || ent >= FAM_ENTRIES) return;
  lock(f);
  f->ent[ent].pid = 0;
  f->ent[ent].n = 0;
  unlock(f);
}

int mproc_pool_set_family_limit(int limit) {
  if (limit < 1 || limit > POOL_MAX_WORKERS) return -EINVAL;
  pfamily *f = fam();
  if (!f) return -ENOMEM;
  lock(f);
  f->limit = limit;
  unlock(f);
  return 0;
}

int mproc_pool_get_family_limit(void) {
  pfamily *f = fam();
  if (!f) return -ENOMEM;
  lock(f);
  int v = limit_of(f);
  unlock(f);
  return v;
}
