/*
 * robust.h - robust, process-shared futex mutex: the base of Lock, RLock,
 * Condition and of every internal lock in the shared heap.
 *
 * The word holds the owner's TID (low 30 bits) plus FUTEX_WAITERS and
 * FUTEX_OWNER_DIED, the layout the kernel's robust-futex machinery
 * understands. Each held mutex is linked into the owning thread's robust list
 * (the one glibc registers with set_robust_list), so when a thread or process
 * dies holding it the kernel marks the word OWNER_DIED and wakes a waiter; the
 * next acquirer gets the mutex together with MPROC_EOWNERDEAD.
 *
 * Layout mirrors glibc's pthread_mutex_t robust fields (word at 0, list
 * prev/next at 24/32) because the kernel finds the word from a list entry
 * through the list head's single futex_offset, shared with glibc's mutexes.
 *
 * Rules: unlock from the thread that locked (else -EPERM). Waits spin for a
 * bounded few microseconds, then sleep on the futex (no CPU while waiting).
 * Zero-initialised memory is an unlocked mutex.
 */
#ifndef MPROC_ROBUST_H
#define MPROC_ROBUST_H

#include <stdint.h>
#include <time.h>

typedef struct mproc__rmutex {
  _Atomic uint32_t word; /* owner tid | WAITERS | OWNER_DIED; 0 = free */
  uint32_t spins;        /* adaptive spin budget in pauses (relaxed atomics) */
  _Atomic uint32_t sleepers; /* threads in the sleep path (a hint, see .c) */
  uint32_t reserved;     /* keeps prev/next at glibc's offsets */
  uint64_t reserved2;
  void *prev;            /* robust list links, valid while held */
  void *next;
} mproc__rmutex;

/* Make m an unlocked mutex (same as zeroing it). */
void mproc__rmutex_init(mproc__rmutex *m);

/* Acquire, waiting until the absolute CLOCK_MONOTONIC deadline (NULL =
 * forever). Returns 0; MPROC_EOWNERDEAD when the previous owner died holding
 * it (the caller now holds it and should repair the protected data);
 * -ETIMEDOUT; -EDEADLK if the calling thread already holds it. */
int mproc__rmutex_lock(mproc__rmutex *m, const struct timespec *deadline);

/* Acquire without waiting: 0, MPROC_EOWNERDEAD, -EBUSY, -EDEADLK. */
int mproc__rmutex_trylock(mproc__rmutex *m);

/* Release. -EPERM if the calling thread does not hold it. */
int mproc__rmutex_unlock(mproc__rmutex *m);

/* Non-zero when the calling thread holds m. */
int mproc__rmutex_held(const mproc__rmutex *m);

/* Non-zero when owner death is detected for mutexes locked by the calling
 * thread (the C library registered a compatible robust list). */
int mproc__rmutex_robust(void);

/* Owner TID (0 if free). Racy; for diagnostics and tests. */
uint32_t mproc__rmutex_owner(const mproc__rmutex *m);

#endif
