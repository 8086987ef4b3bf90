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
 * Departures from Python: no `action` callable (a function pointer is not
 * valid in spawned children); the waiter whose wait timed out gets
 * -ETIMEDOUT (the others -EBROKEN) instead of BrokenBarrierError for all; a
 * timeout also applies to the wait for a previous cycle to drain, and then
 * leaves the barrier intact.
 *
 * Lock order: mu only. The futex sleep always happens with mu released.
 */
#include <errno.h>
#include <signal.h>
#include <unistd.h>

#include "sync/sync.h"

#define SYNC_BARRIER_SCAN_SEC 0.1
#define SYNC_BARRIER_MAX_PARTIES (1 << 16)

enum { B_FILLING = 0, B_DRAINING = 1, B_RESETTING = 2, B_BROKEN = 3 };

typedef struct mproc_barrier {
  _Atomic uint32_t magic;  /* SYNC_MAGIC_BARRIER; MPROC__DEAD_MAGIC after destroy */
  _Atomic uint32_t seq;    /* futex word, bumped on every state change */
  _Atomic uint32_t spin;   /* adaptive spin estimate (a hint) */
  uint32_t parties;        /* fixed at create */
  uint32_t count;          /* parties inside wait (under mu) */
  uint32_t state;          /* B_* (under mu) */
  mproc__rmutex mu;        /* guards count, state, slots */
  struct bslot {
    pid_t pid;             /* the waiter with this arrival index, 0 free */
    uint32_t pad;
    mproc__rmutex alive;   /* held by that waiter while inside wait */
  } slots[];
} sync_barrier;

int mproc_barrier_create(mproc_barrier_t **b, int parties) {
  if (!b || parties < 1 || parties > SYNC_BARRIER_MAX_PARTIES) return -EINVAL;
  void *p;
  int rc = mproc__heap_alloc(sizeof(sync_barrier) + (size_t)parties * sizeof(struct bslot), &p);
  if (rc) return rc;
  sync_barrier *br = p;
  br->parties = (uint32_t)parties;
  mproc__rmutex_init(&br->mu);
  atomic_store(&br->spin, 64);
  sync_stamp(br, SYNC_MAGIC_BARRIER);
  *b = (mproc_barrier_t *)br;
  return 0;
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
    if (br->state == B_FILLING) br->state = B_BROKEN;
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

int mproc_barrier_wait(mproc_barrier_t *b, double timeout) {
  int rc = sync_check(b, SYNC_MAGIC_BARRIER);
  if (rc) return rc;
  sync_barrier *br = (sync_barrier *)b;
  struct timespec dl, *dlp;
  if ((rc = sync_deadline(timeout, &dl, &dlp))) return rc;
  blk(br);
  /* Wait for the previous cycle to drain or a reset to finish. */
  while (br->state == B_DRAINING || br->state == B_RESETTING) {
    if (timeout == 0 || bsleep(br, dlp) == -ETIMEDOUT) {
      if (br->state == B_DRAINING || br->state == B_RESETTING) {
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
    br->state = B_DRAINING; /* release everyone */
    bump(br);
  } else {
    while (br->state == B_FILLING) {
      if (timeout == 0 || bsleep(br, dlp) == -ETIMEDOUT) {
        if (br->state == B_FILLING) {
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
    if (br->state == B_FILLING || br->state == B_BROKEN) br->state = B_RESETTING;
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
