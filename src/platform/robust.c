/*
 * robust.c - robust process-shared futex mutex (see robust.h).
 *
 * DESIGN
 * The kernel's robust-futex support lets a thread register one list head
 * (set_robust_list); at thread death the kernel walks the list and, for each
 * entry whose futex word holds the dead TID, sets FUTEX_OWNER_DIED and wakes
 * one waiter. glibc registers such a head for every thread and links its
 * robust pthread mutexes into it. We link our mutexes into the same list,
 * following glibc's conventions exactly:
 *   - an entry is the address of a mutex's `next` field; the futex word sits
 *     at entry + head->futex_offset (glibc: -32, as in pthread_mutex_t);
 *   - the word 8 bytes before an entry is that node's `prev` (glibc's
 *     __pthread_list_t {prev, next}); glibc's DEQUEUE writes through it, so
 *     our layout keeps prev at entry - 8;
 *   - list_op_pending covers the window between taking the word and linking
 *     (and between unlinking and releasing), so a death there is handled.
 * Only the owning thread touches its list, so no lock protects it.
 * If the C library registered no head, or one with a different futex_offset,
 * we register/keep nothing and the mutex is still correct but not robust
 * against death (mproc__rmutex_robust() reports which).
 *
 * Lock word: 0 free; tid (low 30 bits) held; | FUTEX_WAITERS when someone
 * may sleep; FUTEX_OWNER_DIED set by the kernel when the owner died.
 * Waiting: spin a bounded, adaptive number of sparse probes (only with >1
 * CPU), then sleep on the futex (glibc's lowlevelrobustlock protocol plus
 * a sleeper count, see lock_sleep). No CPU is used while asleep.
 */
#include "platform/robust.h"

#include <errno.h>
#include <pthread.h>
#include <linux/futex.h>
#include <stddef.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"
#include "platform/platform.h"

STATIC_ASSERT(offsetof(mproc__rmutex, prev) == 24, "glibc robust layout");
STATIC_ASSERT(offsetof(mproc__rmutex, next) == 32, "glibc robust layout");

#define TID_MASK FUTEX_TID_MASK
#define SPIN_GAP 64u   /* pauses between two probes (~0.8 us here) */
#define SPIN_MIN 128u  /* least spin budget, in pauses: two probes */
#define SPIN_MAX 512u  /* most: eight probes, ~6 us at ~12 ns a pause */

struct rl_head {       /* struct robust_list_head */
  void *list;
  long futex_offset;
  void *list_op_pending;
};

/* Per-thread cache of the robust list head. After fork the child thread has
 * the same TCB address, and glibc re-registers the same head, so the cache
 * stays valid; the tid is re-read (it changes in the child). */
static _Thread_local struct rl_head *t_head;
static _Thread_local int t_state; /* 0 unknown, 1 robust, -1 not robust */
static _Thread_local pid_t t_tid;

/* The forking thread's cached tid is wrong in the child: an atfork handler
 * bumps a generation so the child re-reads it. Every fork in the library
 * goes through fork(), so the handler always runs. */
static _Atomic unsigned g_fork_gen;
static _Thread_local unsigned t_tid_gen;
static pthread_once_t g_atfork_once = PTHREAD_ONCE_INIT;
static void on_fork_child(void) { atomic_fetch_add(&g_fork_gen, 1); }
static void register_atfork(void) { pthread_atfork(NULL, NULL, on_fork_child); }

static pid_t self_tid(void) {
  unsigned gen = atomic_load_explicit(&g_fork_gen, memory_order_relaxed);
  if (MPROC_UNLIKELY(!t_tid || t_tid_gen != gen)) {
    pthread_once(&g_atfork_once, register_atfork);
    gen = atomic_load_explicit(&g_fork_gen, memory_order_relaxed);
    t_tid = mproc__gettid();
    t_tid_gen = gen;
  }
  return t_tid;
}

static struct rl_head *head(void) {
  if (MPROC_LIKELY(t_state == 1)) return t_head;
  if (t_state == -1) return NULL;
  struct rl_head *h = NULL;
  size_t len = 0;
  if (syscall(SYS_get_robust_list, 0, &h, &len) == 0 && h &&
      len == sizeof(struct rl_head) &&
      h->futex_offset == -(long)offsetof(mproc__rmutex, next)) {
    t_head = h;
    t_state = 1;
    return h;
  }
  t_state = -1;
  return NULL;
}

int mproc__rmutex_robust(void) { return head() != NULL; }

void mproc__rmutex_init(mproc__rmutex *m) {
  atomic_store_explicit(&m->word, 0, memory_order_relaxed);
  __atomic_store_n(&m->spins, 0, __ATOMIC_RELAXED);
  atomic_store_explicit(&m->sleepers, 0, memory_order_relaxed);
  m->prev = m->next = NULL;
}

/* prev pointer of the list entry e (entries may carry the PI bit 0). */
static void **prev_of(void *e) {
  return (void **)((char *)((uintptr_t)e & ~(uintptr_t)1) - sizeof(void *));
}

static void link_held(mproc__rmutex *m, struct rl_head *h) {
  void *first = h->list;
  m->next = first;
  m->prev = &h->list;
  *prev_of(first) = &m->next;
  atomic_signal_fence(memory_order_seq_cst);
  h->list = &m->next;
}

static void unlink_held(mproc__rmutex *m) {
  void *next = m->next, *prev = m->prev;
  *prev_of(next) = prev;
  *(void **)((uintptr_t)prev & ~(uintptr_t)1) = next;
  atomic_signal_fence(memory_order_seq_cst);
  m->prev = m->next = NULL;
}

/* Called with the word just taken (CAS succeeded). */
static int took(mproc__rmutex *m, struct rl_head *h, uint32_t old) {
  if (h) {
    link_held(m, h);
    atomic_signal_fence(memory_order_seq_cst);
    h->list_op_pending = NULL;
  }
  return (old & FUTEX_OWNER_DIED) ? MPROC_EOWNERDEAD : 0;
}

/* Try once. Returns 1 taken (*rc set), 0 busy. `want_waiters` keeps the
 * WAITERS bit when we were a sleeper: others may still be asleep. */
static int try_take(mproc__rmutex *m, pid_t tid, struct rl_head *h,
                    uint32_t want_waiters, int *rc) {
  uint32_t cur = atomic_load_explicit(&m->word, memory_order_relaxed);
  for (;;) {
    if (cur & TID_MASK) return 0;
    /* Free, or free with OWNER_DIED left by the kernel. */
    uint32_t nv = (uint32_t)tid | (cur & FUTEX_WAITERS) | want_waiters;
    if (h) {
      h->list_op_pending = &m->next;
      atomic_signal_fence(memory_order_seq_cst);
    }
    if (atomic_compare_exchange_weak_explicit(&m->word, &cur, nv,
                                              memory_order_acquire,
                                              memory_order_relaxed)) {
      *rc = took(m, h, cur);
      return 1;
    }
    if (h) h->list_op_pending = NULL;
  }
}

/* WAITERS bit a new owner must set: another thread may still be asleep.
 * The sleeper count is read on the mutex's line, which the caller is about
 * to take anyway. */
static uint32_t waiters_wanted(mproc__rmutex *m) {
  return atomic_load_explicit(&m->sleepers, memory_order_seq_cst) ? FUTEX_WAITERS
                                                                    : 0;
}

int mproc__rmutex_trylock(mproc__rmutex *m) {
  pid_t tid = self_tid();
  uint32_t cur = atomic_load_explicit(&m->word, memory_order_relaxed);
  if ((cur & TID_MASK) == (uint32_t)tid) return -EDEADLK;
  int rc;
  if (try_take(m, tid, head(), waiters_wanted(m), &rc)) return rc;
  return -EBUSY;
}

/* Bounded spin before sleeping. Returns 1 with *rc set when it took m.
 * Probes are SPIN_GAP pauses apart, not one: every probe pulls the
 * mutex's cache line away from the owner, so probing at each pause slows
 * the owner's own lock/unlock, and in a tight lock loop the probe mostly
 * lands in the few-ns gap between the owner's unlock and its next lock,
 * turning the loop into cache-line ping-pong between the CPUs (measured
 * with bench_lock: 0.35x of glibc's robust mutex, which never spins;
 * probing at 1, 3, 7 .. pauses still cost ~25%). Sparse probes leave the
 * owner at full speed and still catch a release within ~1 us, well below
 * the ~25 us a futex wake-up costs on these VMs. The budget (in pauses)
 * adapts, glibc-style but shrinking on failure: +25% when a spin ends in
 * the lock, halved when it ends in sleep. */
static int spin_take(mproc__rmutex *m, pid_t tid, struct rl_head *h, int *rc) {
  uint32_t limit = __atomic_load_n(&m->spins, __ATOMIC_RELAXED);
  if (limit < SPIN_MIN) limit = SPIN_MIN;
  if (limit > SPIN_MAX) limit = SPIN_MAX;
  for (uint32_t i = 0; i < limit; i += SPIN_GAP) {
    for (uint32_t k = 0; k < SPIN_GAP; k++) mproc__cpu_relax();
    uint32_t cur = atomic_load_explicit(&m->word, memory_order_relaxed);
    if (!(cur & TID_MASK) && try_take(m, tid, h, waiters_wanted(m), rc)) {
      uint32_t n = limit + limit / 4;
      if (n != limit)
        __atomic_store_n(&m->spins, n > SPIN_MAX ? SPIN_MAX : n, __ATOMIC_RELAXED);
      return 1;
    }
  }
  /* Skip the store when nothing changes: it would pull the line again. */
  if (limit / 2 != __atomic_load_n(&m->spins, __ATOMIC_RELAXED))
    __atomic_store_n(&m->spins, limit / 2, __ATOMIC_RELAXED);
  return 0;
}

/* Sleep until we own m (glibc's lowlevelrobustlock protocol, plus a
 * sleeper count). A sleeper registers in `sleepers`, makes sure the word
 * carries WAITERS, and waits on the exact value it saw. Unlock clears the
 * whole word and wakes one sleeper only when WAITERS was set. Whoever then
 * takes the mutex sets WAITERS again only if someone is still registered
 * (glibc sets it unconditionally after every wake-up, so the next unlock
 * pays a futex_wake syscall even when nobody sleeps). Lost wake-ups cannot
 * happen: a sleeper increments `sleepers` (seq_cst) before it reads the
 * word it will wait on, and the unlock that clears WAITERS comes later in
 * the word's order, so the woken thread's seq_cst read of `sleepers` (after
 * the futex wake) sees every thread still asleep; it either takes the
 * mutex with WAITERS set or goes back to sleep, setting WAITERS itself. */
static int lock_sleep(mproc__rmutex *m, pid_t tid, struct rl_head *h,
                      const struct timespec *deadline) {
  int rc;
  for (;;) {
    if (try_take(m, tid, h, waiters_wanted(m), &rc)) return rc;
    atomic_fetch_add_explicit(&m->sleepers, 1, memory_order_seq_cst);
    uint32_t cur = atomic_load_explicit(&m->word, memory_order_seq_cst);
    int w = 0;
    if (cur & TID_MASK) {
      if ((cur & FUTEX_WAITERS) ||
          atomic_compare_exchange_strong_explicit(&m->word, &cur,
                                                  cur | FUTEX_WAITERS,
                                                  memory_order_seq_cst,
                                                  memory_order_relaxed))
        w = mproc__futex_wait(&m->word, cur | FUTEX_WAITERS, deadline);
    }
    atomic_fetch_sub_explicit(&m->sleepers, 1, memory_order_seq_cst);
    if (w == -ETIMEDOUT) {
      /* One last try: the release may have raced with the timeout. The
       * WAITERS bit we set stays, so remaining sleepers still get woken. */
      if (try_take(m, tid, h, waiters_wanted(m), &rc)) return rc;
      return -ETIMEDOUT;
    }
  }
}

int mproc__rmutex_lock(mproc__rmutex *m, const struct timespec *deadline) {
  pid_t tid = self_tid();
  struct rl_head *h = head();
  int rc;
  uint32_t cur = atomic_load_explicit(&m->word, memory_order_relaxed);
  if (MPROC_LIKELY(cur == 0)) {
    if (h) {
      h->list_op_pending = &m->next;
      atomic_signal_fence(memory_order_seq_cst);
    }
    if (atomic_compare_exchange_strong_explicit(&m->word, &cur, (uint32_t)tid,
                                                memory_order_acquire,
                                                memory_order_relaxed))
      return took(m, h, 0);
    if (h) h->list_op_pending = NULL;
  }
  if ((cur & TID_MASK) == (uint32_t)tid) return -EDEADLK;
  /* Spinning only pays when the owner runs on another CPU. */
  if (mproc__ncpu_online() > 1 && spin_take(m, tid, h, &rc)) return rc;
  return lock_sleep(m, tid, h, deadline);
}

int mproc__rmutex_unlock(mproc__rmutex *m) {
  pid_t tid = self_tid();
  uint32_t cur = atomic_load_explicit(&m->word, memory_order_relaxed);
  if ((cur & TID_MASK) != (uint32_t)tid) return -EPERM;
  struct rl_head *h = head();
  if (h && m->next) {
    h->list_op_pending = &m->next;
    atomic_signal_fence(memory_order_seq_cst);
    unlink_held(m);
  }
  /* OWNER_DIED is cleared: the new owner saw it and repaired the data. */
  uint32_t old = atomic_exchange_explicit(&m->word, 0, memory_order_release);
  if (h) {
    atomic_signal_fence(memory_order_seq_cst);
    h->list_op_pending = NULL;
  }
  if (old & FUTEX_WAITERS) mproc__futex_wake(&m->word, 1);
  return 0;
}

int mproc__rmutex_held(const mproc__rmutex *m) {
  uint32_t cur = atomic_load_explicit(&((mproc__rmutex *)m)->word,
                                      memory_order_relaxed);
  return (cur & TID_MASK) == (uint32_t)self_tid();
}

uint32_t mproc__rmutex_owner(const mproc__rmutex *m) {
  return atomic_load_explicit(&((mproc__rmutex *)m)->word,
                              memory_order_relaxed) & TID_MASK;
}
