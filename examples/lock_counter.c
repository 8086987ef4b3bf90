/*
 * lock_counter.c - the C twin of the seed's Lock example (001, section "锁"):
 * add() and sub() change a shared Value 50 times each by 10.
 *
 *  1. Serially: 1000 -> 1500 -> 1000.
 *  2. In two processes without a lock: each update is a read, a short
 *     pause, then a write, so the processes overwrite each other's updates
 *     and x drifts from 1000 (Python's `x.value += 10` has the same race:
 *     the Value's own lock covers the read and the write separately).
 *  3. In two processes with a Lock around each read-modify-write: exactly
 *     1000 every time.
 */
#include <stdio.h>
#include <time.h>

#include "mproc.h"

#define CHECK(call)                                                        \
  do {                                                                     \
    int rc_ = (call);                                                      \
    if (rc_ < 0) {                                                         \
      fprintf(stderr, "%s failed: %s\n", #call, mproc_strerror(rc_));     \
      return 1;                                                            \
    }                                                                      \
  } while (0)

typedef struct job {
  mproc_value_t *x;   /* the shared int64 */
  mproc_lock_t *lock; /* NULL: no lock */
  int64_t step;       /* +10 for add, -10 for sub */
} job;

static void sleep_ms(double ms) {
  struct timespec ts = {0, (long)(ms * 1e6)};
  nanosleep(&ts, NULL);
}

/* add() or sub(): 50 updates of the shared value. */
static int change(void *arg) {
  job *j = arg;
  for (int i = 0; i < 50; i++) {
    sleep_ms(10); /* time.sleep(0.01) */
    if (j->lock) CHECK(mproc_lock_acquire(j->lock, -1));
    int64_t v;
    CHECK(mproc_value_get_i64(j->x, &v)); /* read ... */
    sleep_ms(0.2);                        /* ... the other process runs ... */
    CHECK(mproc_value_set_i64(j->x, v + j->step)); /* ... write */
    if (j->lock) CHECK(mproc_lock_release(j->lock));
  }
  return 0;
}

/* Run add and sub in two processes; x ends in *out. */
static int race(mproc_value_t *x, mproc_lock_t *lock, int64_t *out) {
  CHECK(mproc_value_set_i64(x, 1000));
  job add = {x, lock, 10}, sub = {x, lock, -10};
  mproc_process_t *pa, *ps;
  CHECK(mproc_process_create(&pa, change, &add, NULL));
  CHECK(mproc_process_create(&ps, change, &sub, NULL));
  CHECK(mproc_process_start(pa));
  CHECK(mproc_process_start(ps));
  CHECK(mproc_process_join(pa, -1));
  CHECK(mproc_process_join(ps, -1));
  int ca = -1, cs = -1;
  CHECK(mproc_process_exitcode(pa, &ca));
  CHECK(mproc_process_exitcode(ps, &cs));
  mproc_process_destroy(pa);
  mproc_process_destroy(ps);
  if (ca != 0 || cs != 0) {
    fprintf(stderr, "a worker failed (%d, %d)\n", ca, cs);
    return 1;
  }
  CHECK(mproc_value_get_i64(x, out));
  return 0;
}

int main(void) {
  mproc_value_t *x;
  mproc_lock_t *lock;
  CHECK(mproc_value_create(&x, sizeof(int64_t), NULL, NULL));
  CHECK(mproc_lock_create(&lock));

  /* 1. Serially. */
  CHECK(mproc_value_set_i64(x, 1000));
  int64_t v;
  CHECK(mproc_value_get_i64(x, &v));
  printf("Initial x: %lld\n", (long long)v);
  job add = {x, NULL, 10}, sub = {x, NULL, -10};
  CHECK(change(&add));
  CHECK(mproc_value_get_i64(x, &v));
  printf("Added x: %lld\n", (long long)v);
  CHECK(change(&sub));
  CHECK(mproc_value_get_i64(x, &v));
  printf("Subtracted x: %lld\n", (long long)v);

  /* 2. Two processes, no lock. */
  if (race(x, NULL, &v)) return 1;
  printf("Without lock: %lld (%s)\n", (long long)v,
         v == 1000 ? "the race happened not to lose an update this time"
                   : "updates were lost");

  /* 3. Two processes, with the lock. */
  if (race(x, lock, &v)) return 1;
  printf("With lock: %lld\n", (long long)v);

  CHECK(mproc_lock_destroy(lock));
  CHECK(mproc_value_destroy(x));
  return 0;
}
