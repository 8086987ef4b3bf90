/*
 * ipc.h - internal helpers shared by the ipc layer (queues, connections,
 * wait): futex eventcounts, thread identity, owner liveness, and the
 * queue/connection internals that wait.c needs.
 *
 * Eventcount: a 32-bit futex word whose low bit means "someone may be
 * asleep". A waiter sets the bit (seq_cst RMW), re-checks its condition and
 * sleeps on the value it saw; a notifier publishes its change, issues a
 * seq_cst fence and, only if the bit is set, clears it while bumping the
 * count and wakes everyone. The fence pairs make the classic lost-wakeup race
 * impossible, and a notifier pays a single load when nobody sleeps. A waiter
 * killed in its sleep leaves the bit set: that only costs one extra wake.
 */
#ifndef MPROC_IPC_H
#define MPROC_IPC_H

#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "internal.h"
#include "platform/platform.h"

/* Arm: returns the value to pass to mproc__ec_sleep after re-checking. */
static inline uint32_t mproc__ec_arm(_Atomic uint32_t *ec) {
  return atomic_fetch_or(ec, 1u) | 1u;
}

/* Publish-side: call after the state change (release) is visible. */
static inline void mproc__ec_notify(_Atomic uint32_t *ec) {
  atomic_thread_fence(memory_order_seq_cst);
  uint32_t v = atomic_load_explicit(ec, memory_order_relaxed);
  while (v & 1u) {
    if (atomic_compare_exchange_weak(ec, &v, v + 1u)) {
      mproc__futex_wake(ec, INT32_MAX);
      return;
    }
  }
}

/* Unconditional bump + wake (close, wait-bridge shutdown). */
static inline void mproc__ec_kick(_Atomic uint32_t *ec) {
  atomic_fetch_add(ec, 2u);
  mproc__futex_wake(ec, INT32_MAX);
}

/* Sleep while *ec == v, until the earlier of deadline (NULL forever) and
 * slice_ns from now (0 = no slice). Returns -ETIMEDOUT only when the user
 * deadline passed. */
int mproc__ec_sleep(_Atomic uint32_t *ec, uint32_t v, const struct timespec *deadline,
                    long slice_ns);

/* The calling thread's kernel tid, cached per thread and refreshed after
 * fork. Always < 2^30. */
uint32_t mproc__ipc_tid(void);

/* Non-zero when thread tid no longer runs (gone, zombie or dead). A tid
 * reused by a new thread reads as alive: recovery then waits until that
 * thread ends. */
int mproc__tid_dead(uint32_t tid);

/* Bounded spin before sleeping: iterations to spin this time (0 on one CPU). */
unsigned mproc__ipc_spin_budget(void);

/* ---- for wait.c ---- */
struct mproc_queue;
struct mproc_conn;
/* 1 when q holds a committed message or is closed; negative on a bad q. */
int mproc__queue_ready(struct mproc_queue *q);
/* The eventcount getters sleep on. */
_Atomic uint32_t *mproc__queue_get_ec(struct mproc_queue *q);
int mproc__queue_check(const struct mproc_queue *q);
/* 1 when buffered input makes c ready without touching the fd; <0 error. */
int mproc__conn_buffered(struct mproc_conn *c);
int mproc__conn_fd(const struct mproc_conn *c);
/* Test hook (queue.c): simulate a process killed mid-put/get. */
int mproc__queue_test_abandon(struct mproc_queue *q, int reader, uint32_t tid);

#endif
