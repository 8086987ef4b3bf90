/*
 * barrier.c - Barrier (Python's multiprocessing.Barrier / threading.Barrier):
 * wait returning the arrival index, abort, reset, parties, n_waiting, broken.
 *
 * Design: Python's state machine, kept under a small internal robust mutex
 * `mu`, with one futex word `seq` that is bumped (and broadcast) on every
 * state change:
 *   FILLING   parties arrive; index = count++; the last one switches to
 *             DRAINING and releases everyone.
 *   DRAINING  released waiters leave (count--); the last one out switches
 *             back to FILLING. Arrivals for the next cycle wait meanwhile.
 *   RESETTING reset() while parties wait: they leave with -EBROKEN; the last
 *             one out switches to FILLING.
 *   BROKEN    abort(), a wait that timed out, or a dead party: every wait
 *             returns -EBROKEN until reset().
 *
 * Dead parties: a process killed while waiting can never leave, which would
 * wedge a Python barrier for good. Each waiter takes slots[index] (indices
 * are unique within a cycle, and a new cycle starts only when count is 0, so
 * slots never collide) and holds the slot's robust mutex while inside wait.
 * A dying process's exit clears the owner from that word - before it is
 * even a zombie, so a killed child its blocked parent cannot reap still
 * counts as dead (a pid check stands in without robust lists). Sleepers wake
 * every SYNC_BARRIER_SCAN_SEC to look for such slots: the party is removed (count--,
 * slot cleared); if it died while the barrier was FILLING, the barrier
 * breaks, since the dead party cannot arrive again. A process dying while it
 * holds `mu` (a few instructions) also breaks the barrier.
 *
 *   ACTION    (only with an action) the last party to arrive runs the
 *             action with mu released, the others still waiting; success
 *             switches to DRAINING, failure (non-zero) to BROKEN. A wait
 *             timing out, abort(), reset() or the runner dying meanwhile
 *             act as in FILLING; the runner then returns MPROC_EBROKEN.
 *
 * The action is stored as (module name, offset in that module), not as a
 * raw pointer: a spawned child is a fresh exec of the same program, laid
 * out elsewhere by ASLR, so the runner finds the module by name among its
 * own loaded objects (dl_iterate_phdr; the main program's name is "") and
 * adds its own load address. Fork and forkserver children get the same
 * address back. A runner that cannot find the module breaks the barrier.
 *
 * Departures from Python: the action is a C function returning non-zero
 * for failure (Python: raising); its runner gets MPROC_EBROKEN like the
 * others rather than the action's own error; the waiter whose wait timed
 * out gets
 * -ETIMEDOUT (the others -EBROKEN) instead of BrokenBarrierError for all; a
 * timeout also applies to the wait for a previous cycle to drain, and then
 * leaves the barrier intact.
 *
 * Lock order: mu only. The futex sleep always happens with mu released.
 */
#include <errno.h>
#include <link.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "sync/sync.h"

#define SYNC_BARRIER_SCAN_SEC 0.1
#define SYNC_BARRIER_MAX_PARTIES (1 << 16)
#define SYNC_BARRIER_MODULE_MAX 256 /* bytes of an action's module path */

enum { B_FILLING = 0, B_DRAINING = 1, B_RESETTING = 2, B_BROKEN = 3, B_ACTION = 4 };

typedef struct mproc_barrier {
  _Atomic uint32_t magic;  /* SYNC_MAGIC_BARRIER; MPROC__DEAD_MAGIC after destroy */
  _Atomic uint32_t seq;    /* futex word, bumped on every state change */
  _Atomic uint32_t spin;   /* adaptive spin estimate (a hint) */
  uint32_t parties;        /* fixed at create */
  uint32_t count;          /* parties inside wait (under mu) */
  uint32_t state;          /* B_* (under mu) */
  mproc__rmutex mu;        /* guards count, state, slots */
  /* The action (fixed at create; has_action 0 = none): */
  uintptr_t act_off;       /* offset of the function in its module */
  void *act_arg;           /* passed as is */
  uint32_t has_action;
  char act_module[SYNC_BARRIER_MODULE_MAX]; /* dl_iterate_phdr name */
  struct bslot {
    pid_t pid;             /* the waiter with this arrival index, 0 free */
    uint32_t pad;
    mproc__rmutex alive;   /* held by that waiter while inside wait */
  } slots[];
} sync_barrier;

/* ---- locating the action in any process of the family ---- */

typedef struct mod_find {
  uintptr_t addr;   /* find the module holding addr ... */
  const char *name; /* ... or the module with this name */
  uintptr_t base;   /* out: its load address */
  const char *found_name;
  int found;
} mod_find;

static int mod_find_cb(struct dl_phdr_info *info, size_t size, void *data) {
  (void)size;
  mod_find *f = data;
  const char *name = info->dlpi_name ? info->dlpi_name : "";
  if (f->name) {
    if (strcmp(name, f->name) != 0) return 0;
    f->base = (uintptr_t)info->dlpi_addr;
    f->found = 1;
    return 1;
  }
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD) continue;
    uintptr_t lo = (uintptr_t)info->dlpi_addr + (uintptr_t)ph->p_vaddr;
    if (f->addr >= lo && f->addr - lo < (uintptr_t)ph->p_memsz) {
      f->base = (uintptr_t)info->dlpi_addr;
      f->found_name = name;
      f->found = 1;
      return 1;
    }
  }
  return 0;
}

/* The function at act_off in the named module of the calling process, or
 * NULL when this process has no such module loaded. */
static mproc_barrier_action_fn resolve_action(const sync_barrier *br) {
  mod_find f = {.name = br->act_module};
  dl_iterate_phdr(mod_find_cb, &f);
  if (!f.found) return NULL;
  uintptr_t a = f.base + br->act_off;
  mproc_barrier_action_fn fn;
  memcpy(&fn, &a, sizeof fn); /* object-to-function pointer, as dlsym */
  return fn;
}

static int create(mproc_barrier_t **b, int parties, mproc_barrier_action_fn action,
                  void *arg) {
  if (!b || parties < 1 || parties > SYNC_BARRIER_MAX_PARTIES) return -EINVAL;
  mod_find f = {0};
  if (action) {
    memcpy(&f.addr, &action, sizeof f.addr);
    dl_iterate_phdr(mod_find_cb, &f);
    if (!f.found) return -EINVAL; /* not in any loaded object */
    if (strlen(f.found_name) >= SYNC_BARRIER_MODULE_MAX) return -ENAMETOOLONG;
  }
  void *p;
  int rc = mproc__heap_alloc(sizeof(sync_barrier) + (size_t)parties * sizeof(struct bslot), &p);
  if (rc) return rc;
  sync_barrier *br = p;
  br->parties = (uint32_t)parties;
  mproc__rmutex_init(&br->mu);
  if (action) {
    br->has_action = 1;
    br->act_off = f.addr - f.base;
    br->act_arg = arg;
    strcpy(br->act_module, f.found_name);
  } else {
    br->has_action = 0;
  }
  atomic_store(&br->spin, 64);
  sync_stamp(br, SYNC_MAGIC_BARRIER);
  *b = (mproc_barrier_t *)br;
  return 0;
}

int mproc_barrier_create(mproc_barrier_t **b, int parties) {
  return create(b, parties, NULL, NULL);
}

int mproc_barrier_create_action(mproc_barrier_t **b, int parties,
                                mproc_barrier_action_fn action, void *arg) {
  if (!action) return -EINVAL;
  return create(b, parties, action, arg);
}

static void bump(sync_barrier *br) {
  atomic_fetch_add(&br->seq, 1);
  mproc__futex_wake(&br->seq, INT32_MAX);
}

/* Lock mu. If its previous holder died mid-update the state cannot be
 * trusted: break the barrier (waiters see it and leave). */
static void blk(sync_barrier *br) {
  if (mproc__rmutex_lock(&br->mu, NULL) == MPROC_EOWNERDEAD) {
    br->state = B_BROKEN;
    bump(br);
  }
}
static void bunlk(sync_barrier *br) { mproc__rmutex_unlock(&br->mu); }

/* Remove parties whose process is gone (mu held). */
static void reap_dead(sync_barrier *br) {
  int changed = 0;
  pid_t self = getpid();
  for (uint32_t i = 0; i < br->parties; i++) {
    struct bslot *sl = &br->slots[i];
    if (sl->pid <= 0 || sl->pid == self) continue;
    if (mproc__rmutex_owner(&sl->alive) != 0 && (kill(sl->pid, 0) == 0 || errno != ESRCH))
      continue;
    sl->pid = 0;
    mproc__rmutex_init(&sl->alive); /* clear the OWNER_DIED the kernel left */
    if (br->count > 0) br->count--;
    if (br->state == B_FILLING || br->state == B_ACTION) br->state = B_BROKEN;
    changed = 1;
  }
  if (br->count == 0 && (br->state == B_DRAINING || br->state == B_RESETTING)) {
    br->state = B_FILLING;
    changed = 1;
  }
  if (changed) bump(br);
}

/* Sleep with mu released until seq moves, a scan slice ends or the
 * deadline passes; returns with mu held. -ETIMEDOUT when the deadline
 * passed, else 0. */
static int bsleep(sync_barrier *br, const struct timespec *dlp) {
  uint32_t seq = atomic_load(&br->seq);
  bunlk(br);
  int changed = sync_spin(&br->seq, seq, &br->spin);
  if (!changed) {
    struct timespec slice;
    mproc__deadline(SYNC_BARRIER_SCAN_SEC, &slice);
    const struct timespec *until = &slice;
    if (dlp && (dlp->tv_sec < slice.tv_sec ||
                (dlp->tv_sec == slice.tv_sec && dlp->tv_nsec < slice.tv_nsec)))
      until = dlp;
    changed = sync_sleep(&br->seq, seq, until) == 0;
  }
  blk(br);
  if (!changed && atomic_load(&br->seq) == seq) reap_dead(br);
  return mproc__deadline_passed(dlp) ? -ETIMEDOUT : 0;
}

/* The last arrival runs the action (mu held on entry and on return; the
 * action itself runs with mu released so the others can time out, abort
 * or reset meanwhile, and a slow action never holds up the scan for dead
 * parties). Sets DRAINING or BROKEN; 0 or MPROC_EBROKEN for the runner. */
static int run_action(sync_barrier *br) {
  br->state = B_ACTION;
  bunlk(br);
  mproc_barrier_action_fn fn = resolve_action(br);
  int arc = fn ? fn(br->act_arg) : -1;
  blk(br);
  if (br->state != B_ACTION) return MPROC_EBROKEN; /* broken/reset meanwhile */
  br->state = arc == 0 ? B_DRAINING : B_BROKEN;
  return arc == 0 ? 0 : MPROC_EBROKEN;
}

int mproc_barrier_wait(mproc_barrier_t *b, double timeout) {
  int rc = sync_check(b, SYNC_MAGIC_BARRIER);
  if (rc) return rc;
  sync_barrier *br = (sync_barrier *)b;
  struct timespec dl, *dlp;
  if ((rc = sync_deadline(timeout, &dl, &dlp))) return rc;
  blk(br);
  /* Wait for the previous cycle to drain or a reset to finish. */
  while (br->state == B_DRAINING || br->state == B_RESETTING || br->state == B_ACTION) {
    if (timeout == 0 || bsleep(br, dlp) == -ETIMEDOUT) {
      if (br->state == B_DRAINING || br->state == B_RESETTING || br->state == B_ACTION) {
        bunlk(br);
        return -ETIMEDOUT;
      }
    }
  }
  if (br->state == B_BROKEN) {
    bunlk(br);
    return MPROC_EBROKEN;
  }
  uint32_t index = br->count++;
  br->slots[index].pid = getpid();
  mproc__rmutex_lock(&br->slots[index].alive, NULL); /* free: ours at once */
  int result = 0;
  if (index + 1 == br->parties) {
    if (br->has_action) result = run_action(br);
    else br->state = B_DRAINING; /* release everyone */
    bump(br);
  } else {
    while (br->state == B_FILLING || br->state == B_ACTION) {
      if (timeout == 0 || bsleep(br, dlp) == -ETIMEDOUT) {
        if (br->state == B_FILLING || br->state == B_ACTION) {
          br->state = B_BROKEN; /* as Python: a timeout breaks the barrier */
          bump(br);
          result = -ETIMEDOUT;
        }
        break;
      }
    }
    if (result == 0 && (br->state == B_BROKEN || br->state == B_RESETTING))
      result = MPROC_EBROKEN;
  }
  /* Leave: the last one out of a drain or reset reopens the barrier. A
   * scan may already have counted us out if it wrongly took us for dead
   * (only possible without robust lists, through pid reuse): never
   * underflow. */
  struct bslot *sl = &br->slots[index];
  if (mproc__rmutex_held(&sl->alive)) mproc__rmutex_unlock(&sl->alive);
  if (sl->pid == getpid()) {
    sl->pid = 0;
    if (br->count > 0) br->count--;
  }
  if (br->count == 0 && (br->state == B_DRAINING || br->state == B_RESETTING)) {
    br->state = B_FILLING;
    bump(br);
  }
  bunlk(br);
  return result ? result : (int)index;
}

int mproc_barrier_abort(mproc_barrier_t *b) {
  int rc = sync_check(b, SYNC_MAGIC_BARRIER);
  if (rc) return rc;
  sync_barrier *br = (sync_barrier *)b;
  blk(br);
  br->state = B_BROKEN;
  bump(br);
  bunlk(br);
  return 0;
}

int mproc_barrier_reset(mproc_barrier_t *b) {
  int rc = sync_check(b, SYNC_MAGIC_BARRIER);
  if (rc) return rc;
  sync_barrier *br = (sync_barrier *)b;
  blk(br);
  reap_dead(br);
  if (br->count > 0) {
    if (br->state == B_FILLING || br->state == B_BROKEN || br->state == B_ACTION)
      br->state = B_RESETTING;
  } else {
    br->state = B_FILLING;
  }
  bump(br);
  bunlk(br);
  return 0;
}

int mproc_barrier_parties(const mproc_barrier_t *b) {
  int rc = sync_check(b, SYNC_MAGIC_BARRIER);
  if (rc) return rc;
  return (int)((const sync_barrier *)b)->parties;
}

int mproc_barrier_n_waiting(mproc_barrier_t *b) {
  int rc = sync_check(b, SYNC_MAGIC_BARRIER);
  if (rc) return rc;
  sync_barrier *br = (sync_barrier *)b;
  blk(br);
  int n = br->state == B_FILLING ? (int)br->count : 0;
  bunlk(br);
  return n;
}

int mproc_barrier_broken(mproc_barrier_t *b) {
  int rc = sync_check(b, SYNC_MAGIC_BARRIER);
  if (rc) return rc;
  sync_barrier *br = (sync_barrier *)b;
  blk(br);
  int broken = br->state == B_BROKEN;
  bunlk(br);
  return broken;
}

int mproc_barrier_destroy(mproc_barrier_t *b) {
  if (!b) return 0;
  int rc = sync_check(b, SYNC_MAGIC_BARRIER);
  if (rc) return rc;
  sync_barrier *br = (sync_barrier *)b;
  blk(br);
  reap_dead(br);
  uint32_t busy = br->count;
  bunlk(br);
  if (busy) return -EBUSY;
  atomic_store_explicit(&br->magic, MPROC__DEAD_MAGIC, memory_order_release);
  mproc__heap_free(br);
  return 0;
}
