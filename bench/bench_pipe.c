/*
 * bench_pipe.c - Pipe round trip with 64-byte messages (parent sends, child
 * echoes). Baselines in the same run: a raw socketpair ping-pong (blocking
 * read/write), a raw shared-memory ping-pong that spins ~10 us before
 * sleeping on a futex, and Python's Connection (bench/py/pipe.py).
 * Figures are microseconds per round trip (lower is better; the printed
 * speed ratios are already inverted so > 1 means mproc is faster).
 */
#include <mproc.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "rawsync.h"

#define N 30000

static double mproc_rt(void) {
  mproc_conn_t *a, *b;
  if (mproc_pipe(&a, &b, 1)) return -1;
  pid_t c = fork();
  if (c == 0) {
    char m[64];
    size_t len;
    mproc_conn_close(a); /* else the parent's close would not reach us */
    for (;;) {
      if (mproc_conn_recv(b, m, sizeof m, &len, -1)) _exit(0);
      mproc_conn_send(b, m, len);
    }
  }
  mproc_conn_close(b);
  char m[64] = {0};
  size_t len;
  for (int i = 0; i < 1000; i++) { /* warm up */
    mproc_conn_send(a, m, 64);
    mproc_conn_recv(a, m, 64, &len, -1);
  }
  double t0 = bench_now();
  for (int i = 0; i < N; i++) {
    mproc_conn_send(a, m, 64);
    mproc_conn_recv(a, m, 64, &len, -1);
  }
  double dt = bench_now() - t0;
  mproc_conn_destroy(a);
  mproc_conn_destroy(b);
  waitpid(c, NULL, 0);
  return dt / N * 1e6;
}

static double socketpair_rt(void) {
  int sv[2];
  socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
  pid_t c = fork();
  if (c == 0) {
    char m[64];
    close(sv[0]);
    while (read(sv[1], m, 64) == 64)
      if (write(sv[1], m, 64) != 64) break;
    _exit(0);
  }
  close(sv[1]);
  char m[64] = {0};
  double t0 = bench_now();
  for (int i = 0; i < N; i++) {
    if (write(sv[0], m, 64) != 64 || read(sv[0], m, 64) != 64) return -1;
  }
  double dt = bench_now() - t0;
  close(sv[0]);
  waitpid(c, NULL, 0);
  return dt / N * 1e6;
}

/* Two counters in shared memory: ping (parent) and pong (child), each with
 * 64 bytes of payload beside it, bounded spin then futex. */
typedef struct pp {
  _Atomic uint32_t ping, sleep_child;
  char pad[56];
  _Atomic uint32_t pong, sleep_parent;
  char pad2[56];
  char up[64], down[64];
} pp;

static double shm_rt(void) {
  pp *s = mmap(NULL, sizeof(pp), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  pid_t c = fork();
  if (c == 0) {
    for (uint32_t i = 0; i < N; i++) {
      raw_wait_change(&s->ping, i, &s->sleep_child, 10);
      memcpy(s->down, s->up, 64);
      raw_notify(&s->pong, &s->sleep_parent);
    }
    _exit(0);
  }
  char m[64] = {0};
  double t0 = bench_now();
  for (uint32_t i = 0; i < N; i++) {
    memcpy(s->up, m, 64);
    raw_notify(&s->ping, &s->sleep_child);
    raw_wait_change(&s->pong, i, &s->sleep_parent, 10);
    memcpy(m, s->down, 64);
  }
  double dt = bench_now() - t0;
  waitpid(c, NULL, 0);
  munmap(s, sizeof(pp));
  return dt / N * 1e6;
}

int main(void) {
  double m = mproc_rt();
  double sp = socketpair_rt();
  double sh = shm_rt();
  double py = bench_python("pipe.py", "20000");
  bench_report("pipe_roundtrip_64B (raw=socketpair)", "us", 0, m, sp, py);
  bench_report("pipe_roundtrip_64B (raw=shm spin+futex)", "us", 0, m, sh, py);
  return 0;
}
