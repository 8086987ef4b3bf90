/*
 * bench_queue.c - Queue throughput: 1 producer and 1 consumer process with
 * 64-byte and 64 KiB messages, and 2 producers x 2 consumers with 64 bytes.
 * Baselines in the same run: a raw shared-memory SPSC ring between two
 * processes (per-slot sequence words, copy in and out, spin-then-futex when
 * empty or full) and Python's multiprocessing.Queue / SimpleQueue (bench/py/mpqueue.py).
 */
#include <mproc.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "rawsync.h"

/* ---- mproc ---- */

static double mproc_run(size_t size, long n, int np, int nc) {
  mproc_queue_t *q;
  mproc_queue_opts o = {.maxsize = size > 1024 ? 32 : 1024};
  if (mproc_queue_create(&q, &o)) return -1;
  pid_t kids[8];
  int k = 0;
  long per_c = n / nc, per_p = n / np;
  _Atomic int *go = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  *go = 0;
  for (int p = 0; p < np; p++) {
    if ((kids[k++] = fork()) == 0) {
      char *m = calloc(1, size);
      while (!atomic_load(go)) raw_pause();
      for (long i = 0; i < per_p; i++)
        if (mproc_queue_put(q, m, size, -1)) _exit(1);
      _exit(0);
    }
  }
  for (int c = 1; c < nc; c++) {
    if ((kids[k++] = fork()) == 0) {
      char *m = malloc(size);
      size_t len;
      for (long i = 0; i < per_c; i++)
        if (mproc_queue_get(q, m, size, &len, -1)) _exit(1);
      _exit(0);
    }
  }
  char *m = malloc(size);
  size_t len;
  double t0 = bench_now();
  atomic_store(go, 1);
  for (long i = 0; i < per_c; i++)
    if (mproc_queue_get(q, m, size, &len, -1)) return -1;
  for (int i = 0; i < k; i++) waitpid(kids[i], NULL, 0);
  double dt = bench_now() - t0;
  free(m);
  munmap((void *)go, 4096);
  mproc_queue_destroy(q);
  return (double)(per_c * nc) / dt;
}

/* ---- raw SPSC ring ----
 * The fastest plain design we know for one producer and one consumer: each
 * slot carries its own sequence word (FastForward/Vyukov style), so the two
 * sides never share a counter cache line; no crash safety, no MPMC, no
 * variable sizes beyond the slot. Waits: the same bounded spin, then futex. */

typedef struct rslot {
  _Atomic uint32_t seq; /* == pos: free for pos; == pos + 1: holds pos */
  uint32_t len;
} rslot;

typedef struct ring {
  _Atomic uint32_t ec_c; /* consumer sleeps here (eventcount, bit 0 = asleep) */
  char pad[60];
  _Atomic uint32_t ec_p; /* producer sleeps here */
} ring;

static double raw_run(size_t size, long n) {
  uint32_t cap = size > 1024 ? 32 : 1024;
  size_t slot = (size + sizeof(rslot) + 63) & ~(size_t)63;
  size_t bytes = 4096 + (size_t)cap * slot;
  ring *r = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  char *slots = (char *)r + 4096;
  for (uint32_t i = 0; i < cap; i++) ((rslot *)(void *)(slots + (size_t)i * slot))->seq = i;
  pid_t c = fork();
  if (c == 0) {
    char *m = calloc(1, size);
    for (uint32_t t = 0; t < (uint32_t)n; t++) {
      rslot *s = (rslot *)(void *)(slots + (size_t)(t % cap) * slot);
      uint32_t v;
      while ((v = atomic_load_explicit(&s->seq, memory_order_acquire)) != t)
        raw_ec_wait(&r->ec_p, &s->seq, t, 10);
      s->len = (uint32_t)size;
      memcpy(s + 1, m, size);
      atomic_store_explicit(&s->seq, t + 1, memory_order_release);
      raw_ec_notify(&r->ec_c);
    }
    _exit(0);
  }
  char *m = malloc(size);
  double t0 = bench_now();
  for (uint32_t h = 0; h < (uint32_t)n; h++) {
    rslot *s = (rslot *)(void *)(slots + (size_t)(h % cap) * slot);
    uint32_t v;
    while ((v = atomic_load_explicit(&s->seq, memory_order_acquire)) != h + 1)
      raw_ec_wait(&r->ec_c, &s->seq, h + 1, 10);
    memcpy(m, s + 1, s->len);
    atomic_store_explicit(&s->seq, h + cap, memory_order_release);
    raw_ec_notify(&r->ec_p);
  }
  double dt = bench_now() - t0;
  waitpid(c, NULL, 0);
  free(m);
  munmap(r, bytes);
  return (double)n / dt;
}

int main(void) {
  char args[64];
  /* 64-byte messages */
  double m64 = mproc_run(64, 2000000, 1, 1);
  double r64 = raw_run(64, 2000000);
  double pq64 = bench_python("mpqueue.py", "queue 64 200000 1");
  double ps64 = bench_python("mpqueue.py", "simple 64 200000 1");
  bench_report("queue_1p1c_64B (vs Queue)", "msgs/s", 1, m64, r64, pq64);
  bench_report("queue_1p1c_64B (vs SimpleQueue)", "msgs/s", 1, m64, r64, ps64);
  bench_report("queue_1p1c_64B bytes", "MB/s", 1, m64 * 64 / 1e6, r64 * 64 / 1e6,
               pq64 > 0 ? pq64 * 64 / 1e6 : -1);
  /* 64 KiB messages */
  double mb = mproc_run(65536, 40000, 1, 1);
  double rb = raw_run(65536, 40000);
  snprintf(args, sizeof args, "queue 65536 10000 1");
  double pqb = bench_python("mpqueue.py", args);
  double psb = bench_python("mpqueue.py", "simple 65536 10000 1");
  bench_report("queue_1p1c_64KiB (vs Queue)", "msgs/s", 1, mb, rb, pqb);
  bench_report("queue_1p1c_64KiB (vs SimpleQueue)", "msgs/s", 1, mb, rb, psb);
  bench_report("queue_1p1c_64KiB bytes", "MB/s", 1, mb * 65536 / 1e6, rb * 65536 / 1e6,
               pqb > 0 ? pqb * 65536 / 1e6 : -1);
  /* 2 producers x 2 consumers (no raw MPMC baseline) */
  double m22 = mproc_run(64, 2000000, 2, 2);
  double p22 = bench_python("mpqueue.py", "queue 64 200000 2");
  bench_report("queue_2p2c_64B (vs Queue)", "msgs/s", 1, m22, -1, p22);
  return 0;
}
