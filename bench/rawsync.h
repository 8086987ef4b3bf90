/* rawsync.h - the raw C baselines' futex helpers (bench only): a bounded
 * spin, then sleep on a shared futex word. Used by bench_queue.c's raw ring
 * and bench_pipe.c's raw shared-memory ping-pong. */
#ifndef MPROC_BENCH_RAWSYNC_H
#define MPROC_BENCH_RAWSYNC_H

#include <linux/futex.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static inline void raw_futex_wait(_Atomic uint32_t *w, uint32_t v) {
  syscall(SYS_futex, (uint32_t *)w, FUTEX_WAIT, v, NULL, NULL, 0);
}
static inline void raw_futex_wake(_Atomic uint32_t *w) {
  syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE, INT32_MAX, NULL, NULL, 0);
}
static inline void raw_pause(void) { __builtin_ia32_pause(); }

static inline double raw_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Wait until *w != old: spin for spin_us microseconds (the same bounded
 * spin as mproc's waits), then sleep. The waker must change *w and then
 * call raw_futex_wake if *sleepers is non-zero (raw_notify). */
static inline void raw_wait_change(_Atomic uint32_t *w, uint32_t old, _Atomic uint32_t *sleepers,
                                   double spin_us) {
  double end = raw_now() + spin_us * 1e-6;
  do {
    for (int i = 0; i < 32; i++) {
      if (atomic_load_explicit(w, memory_order_acquire) != old) return;
      raw_pause();
    }
  } while (raw_now() < end);
  while (atomic_load_explicit(w, memory_order_acquire) == old) {
    atomic_fetch_add(sleepers, 1);
    if (atomic_load(w) == old) raw_futex_wait(w, old);
    atomic_fetch_sub(sleepers, 1);
  }
}
static inline void raw_notify(_Atomic uint32_t *w, _Atomic uint32_t *sleepers) {
  atomic_fetch_add_explicit(w, 1, memory_order_release);
  atomic_thread_fence(memory_order_seq_cst);
  if (atomic_load_explicit(sleepers, memory_order_relaxed)) raw_futex_wake(w);
}

/* Eventcount: wait until *word == want (spin spin_us, then sleep on ec);
 * the other side calls raw_ec_notify(ec) after changing a word. Only a
 * notifier that sees the "asleep" bit pays a futex wake. */
static inline void raw_ec_wait(_Atomic uint32_t *ec, _Atomic uint32_t *word, uint32_t want,
                               double spin_us) {
  double end = raw_now() + spin_us * 1e-6;
  do {
    for (int i = 0; i < 32; i++) {
      if (atomic_load_explicit(word, memory_order_acquire) == want) return;
      raw_pause();
    }
  } while (raw_now() < end);
  for (;;) {
    uint32_t v = atomic_fetch_or(ec, 1u) | 1u;
    if (atomic_load(word) == want) return;
    raw_futex_wait(ec, v);
    if (atomic_load_explicit(word, memory_order_acquire) == want) return;
  }
}
static inline void raw_ec_notify(_Atomic uint32_t *ec) {
  atomic_thread_fence(memory_order_seq_cst);
  uint32_t v = atomic_load_explicit(ec, memory_order_relaxed);
  while (v & 1u)
    if (atomic_compare_exchange_weak(ec, &v, v + 1u)) {
      raw_futex_wake(ec);
      return;
    }
}

#endif
