/* test_conn.c - Pipe/Connection: framing of every size, BufferTooShort with
 * the message kept, poll and timeouts, one-way ends, peer close and death
 * (EOF, never SIGPIPE), a peer cutting or corrupting frames, max message
 * size, and mproc_wait over connections, queues and process sentinels.
 * An idle receiver uses no CPU. */
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "internal.h"
#include "platform/platform.h"

static void fill(unsigned char *p, size_t n, uint64_t seed) {
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 3;
  for (size_t i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    p[i] = (unsigned char)x;
  }
}

static int wait_child(pid_t pid) {
  int st;
  if (waitpid(pid, &st, 0) != pid) return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void bad_input(void **state) {
  (void)state;
  mproc_conn_t *a, *b;
  MPROC_ASSERT_RC(mproc_pipe(NULL, &b, 1), -EINVAL);
  MPROC_ASSERT_RC(mproc_pipe(&a, NULL, 1), -EINVAL);
  MPROC_PASS(mproc_pipe(&a, &b, 1));
  char buf[4];
  size_t len;
  void *d;
  MPROC_ASSERT_RC(mproc_conn_send(NULL, "x", 1), -EINVAL);
  MPROC_ASSERT_RC(mproc_conn_send(a, NULL, 1), -EINVAL);
  MPROC_ASSERT_RC(mproc_conn_recv(a, buf, 4, NULL, 0), -EINVAL);
  MPROC_ASSERT_RC(mproc_conn_recv(a, NULL, 4, &len, 0), -EINVAL);
  MPROC_ASSERT_RC(mproc_conn_recv(a, buf, 4, &len, -2), -EINVAL);
  MPROC_ASSERT_RC(mproc_conn_recv_alloc(a, NULL, &len, 0), -EINVAL);
  MPROC_ASSERT_RC(mproc_conn_recv_alloc(a, &d, NULL, 0), -EINVAL);
  MPROC_ASSERT_RC(mproc_conn_poll(a, -7), -EINVAL);
  MPROC_ASSERT_RC(mproc_conn_poll(NULL, 0), -EINVAL);
  MPROC_ASSERT_RC(mproc_conn_fileno(NULL), -EINVAL);
  MPROC_ASSERT_RC(mproc_conn_fileno((mproc_conn_t *)buf), -EINVAL);
  MPROC_ASSERT_RC(mproc_conn_set_max_message(NULL, 1), -EINVAL);
  MPROC_ASSERT_RC(mproc_conn_recv(a, buf, 4, &len, 0), -ETIMEDOUT);
  MPROC_PASS(mproc_conn_close(a));
  MPROC_PASS(mproc_conn_close(a));
  MPROC_ASSERT_RC(mproc_conn_send(a, "x", 1), MPROC_ECLOSED);
  MPROC_ASSERT_RC(mproc_conn_recv(a, buf, 4, &len, 0), MPROC_ECLOSED);
  MPROC_ASSERT_RC(mproc_conn_poll(a, 0), MPROC_ECLOSED);
  MPROC_ASSERT_RC(mproc_conn_fileno(a), MPROC_ECLOSED);
  MPROC_PASS(mproc_conn_destroy(a));
  MPROC_PASS(mproc_conn_destroy(b));
  MPROC_PASS(mproc_conn_destroy(NULL));
}

static void sizes_roundtrip_across_fork(void **state) {
  (void)state;
  size_t sizes[] = {0, 1, 3, 4, 5, 64, 4095, 65536, 1 << 20, 16u << 20};
  mproc_conn_t *a, *b;
  MPROC_PASS(mproc_pipe(&a, &b, 1));
  pid_t c = fork();
  if (c == 0) { /* echo every message back */
    mproc_conn_close(a);
    for (;;) {
      void *d;
      size_t len;
      int rc = mproc_conn_recv_alloc(b, &d, &len, -1);
      if (rc == MPROC_EEOF) _exit(0);
      if (rc || mproc_conn_send(b, d, len)) _exit(1);
      free(d);
    }
  }
  MPROC_PASS(mproc_conn_close(b));
  for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
    unsigned char *m = malloc(sizes[i] + 1), *r = malloc(sizes[i] + 1);
    fill(m, sizes[i], i);
    MPROC_PASS(mproc_conn_send(a, m, sizes[i]));
    size_t len = 0;
    MPROC_PASS(mproc_conn_recv(a, r, sizes[i] + 1, &len, 30));
    assert_int_equal(len, sizes[i]);
    assert_memory_equal(r, m, sizes[i]);
    free(m);
    free(r);
  }
  MPROC_PASS(mproc_conn_destroy(a)); /* child sees EOF */
  assert_int_equal(wait_child(c), 0);
  MPROC_PASS(mproc_conn_destroy(b));
}

static void too_short_keeps_message(void **state) {
  (void)state;
  mproc_conn_t *a, *b;
  MPROC_PASS(mproc_pipe(&a, &b, 0));
  unsigned char m[1000];
  fill(m, sizeof m, 5);
  MPROC_PASS(mproc_conn_send(b, m, sizeof m));
  MPROC_PASS(mproc_conn_send(b, "next", 4));
  unsigned char r[1000];
  size_t len = 0;
  MPROC_ASSERT_RC(mproc_conn_recv(a, r, 10, &len, 1), MPROC_ETOOSHORT);
  assert_int_equal(len, 1000);
  assert_int_equal(mproc_conn_poll(a, 0), 1);
  MPROC_ASSERT_RC(mproc_conn_recv(a, NULL, 0, &len, 1), MPROC_ETOOSHORT);
  MPROC_PASS(mproc_conn_recv(a, r, sizeof r, &len, 1));
  assert_int_equal(len, 1000);
  assert_memory_equal(r, m, 1000);
  MPROC_PASS(mproc_conn_recv(a, r, sizeof r, &len, 1));
  assert_int_equal(len, 4);
  assert_memory_equal(r, "next", 4);
  MPROC_PASS(mproc_conn_destroy(a));
  MPROC_PASS(mproc_conn_destroy(b));
}

static void one_way_ends(void **state) {
  (void)state;
  mproc_conn_t *r, *w;
  MPROC_PASS(mproc_pipe(&r, &w, 0));
  char buf[8];
  size_t len;
  MPROC_ASSERT_RC(mproc_conn_send(r, "x", 1), -EPERM);
  MPROC_ASSERT_RC(mproc_conn_recv(w, buf, 8, &len, 0), -EPERM);
  MPROC_ASSERT_RC(mproc_conn_poll(w, 0), -EPERM);
  MPROC_PASS(mproc_conn_send(w, "hi", 2));
  MPROC_PASS(mproc_conn_recv(r, buf, 8, &len, 1));
  assert_int_equal(len, 2);
  MPROC_PASS(mproc_conn_destroy(r));
  MPROC_PASS(mproc_conn_destroy(w));
}

static void poll_and_timeouts(void **state) {
  (void)state;
  mproc_conn_t *a, *b;
  MPROC_PASS(mproc_pipe(&a, &b, 1));
  assert_int_equal(mproc_conn_poll(a, 0), 0);
  double t0 = mproc_test_now();
  assert_int_equal(mproc_conn_poll(a, 0.1), 0);
  assert_true(mproc_test_now() - t0 >= 0.099);
  char buf[8];
  size_t len;
  t0 = mproc_test_now();
  MPROC_ASSERT_RC(mproc_conn_recv(a, buf, 8, &len, 0.1), -ETIMEDOUT);
  assert_true(mproc_test_now() - t0 >= 0.099);
  MPROC_PASS(mproc_conn_send(b, "abc", 3));
  assert_int_equal(mproc_conn_poll(a, 5), 1);
  struct pollfd p = {.fd = mproc_conn_fileno(a), .events = POLLIN};
  assert_int_equal(poll(&p, 1, 0), 1);
  MPROC_PASS(mproc_conn_recv(a, buf, 8, &len, 0));
  assert_int_equal(poll(&p, 1, 0), 0); /* never reads ahead of a frame */
  MPROC_PASS(mproc_conn_destroy(a));
  MPROC_PASS(mproc_conn_destroy(b));
}

/* Peer closes or is SIGKILLed: EOF on recv and send, and no SIGPIPE (the
 * default SIGPIPE disposition would kill this test). */
static void peer_death_gives_eof_not_sigpipe(void **state) {
  (void)state;
  signal(SIGPIPE, SIG_DFL);
  mproc_conn_t *a, *b;
  MPROC_PASS(mproc_pipe(&a, &b, 1));
  pid_t c = fork();
  if (c == 0) {
    mproc_conn_close(a);
    pause();
    _exit(0);
  }
  MPROC_PASS(mproc_conn_close(b));
  kill(c, SIGKILL);
  assert_int_equal(wait_child(c), 128 + SIGKILL);
  char buf[8];
  size_t len;
  MPROC_ASSERT_RC(mproc_conn_recv(a, buf, 8, &len, 5), MPROC_EEOF);
  assert_int_equal(mproc_conn_poll(a, 0), 1);
  unsigned char big[200000] = {0};
  MPROC_ASSERT_RC(mproc_conn_send(a, big, sizeof big), MPROC_EEOF);
  MPROC_ASSERT_RC(mproc_conn_send(a, "x", 1), MPROC_EEOF);
  MPROC_PASS(mproc_conn_destroy(a));
  MPROC_PASS(mproc_conn_destroy(b));
}

/* Raw bytes from a misbehaving peer through the other socket end. */
static void cut_and_bad_frames(void **state) {
  (void)state;
  char buf[64];
  size_t len;
  /* Header announces 10 bytes, 3 arrive, then the peer stalls. Raw bytes
   * are written on the peer end's fd. */
  mproc_conn_t *a, *b;
  MPROC_PASS(mproc_pipe(&a, &b, 1));
  int raw = mproc_conn_fileno(b);
  unsigned char h[4] = {0, 0, 0, 10};
  assert_int_equal(write(raw, h, 4), 4);
  assert_int_equal(write(raw, "abc", 3), 3);
  MPROC_ASSERT_RC(mproc_conn_recv(a, buf, sizeof buf, &len, 0.1), -ETIMEDOUT);
  MPROC_ASSERT_RC(mproc_conn_recv(a, buf, sizeof buf, &len, 0.1), -ECONNABORTED);
  MPROC_PASS(mproc_conn_destroy(a));
  MPROC_PASS(mproc_conn_destroy(b));

  MPROC_PASS(mproc_pipe(&a, &b, 1));
  raw = mproc_conn_fileno(b);
  assert_int_equal(write(raw, h, 4), 4);
  assert_int_equal(write(raw, "abc", 3), 3);
  MPROC_PASS(mproc_conn_close(b));
  MPROC_ASSERT_RC(mproc_conn_recv(a, buf, sizeof buf, &len, 5), MPROC_EEOF);
  MPROC_PASS(mproc_conn_destroy(a));
  MPROC_PASS(mproc_conn_destroy(b));

  /* Partial header then EOF. */
  MPROC_PASS(mproc_pipe(&a, &b, 1));
  assert_int_equal(write(mproc_conn_fileno(b), h, 2), 2);
  MPROC_PASS(mproc_conn_close(b));
  MPROC_ASSERT_RC(mproc_conn_recv(a, buf, sizeof buf, &len, 5), MPROC_EEOF);
  MPROC_PASS(mproc_conn_destroy(a));
  MPROC_PASS(mproc_conn_destroy(b));

  /* Non-canonical extended header. */
  MPROC_PASS(mproc_pipe(&a, &b, 1));
  unsigned char x[12] = {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 5};
  assert_int_equal(write(mproc_conn_fileno(b), x, 12), 12);
  MPROC_ASSERT_RC(mproc_conn_recv(a, buf, sizeof buf, &len, 5), MPROC_EPROTO);
  MPROC_ASSERT_RC(mproc_conn_recv(a, buf, sizeof buf, &len, 5), -ECONNABORTED);
  MPROC_PASS(mproc_conn_destroy(a));
  MPROC_PASS(mproc_conn_destroy(b));
}

static void max_message_protects_receiver(void **state) {
  (void)state;
  mproc_conn_t *a, *b;
  MPROC_PASS(mproc_pipe(&a, &b, 1));
  MPROC_PASS(mproc_conn_set_max_message(a, 100));
  MPROC_PASS(mproc_conn_set_max_message(b, 1000));
  unsigned char m[2000] = {0};
  MPROC_ASSERT_RC(mproc_conn_send(b, m, 1001), -EMSGSIZE);
  MPROC_PASS(mproc_conn_send(b, m, 100));
  MPROC_PASS(mproc_conn_send(b, m, 101));
  void *d;
  size_t len;
  MPROC_PASS(mproc_conn_recv_alloc(a, &d, &len, 1));
  assert_int_equal(len, 100);
  free(d);
  MPROC_ASSERT_RC(mproc_conn_recv_alloc(a, &d, &len, 1), -EMSGSIZE);
  assert_null(d);
  /* A header announcing 2^62 bytes is refused before any allocation. */
  MPROC_PASS(mproc_conn_destroy(a));
  MPROC_PASS(mproc_conn_destroy(b));
  MPROC_PASS(mproc_pipe(&a, &b, 1));
  MPROC_PASS(mproc_conn_set_max_message(a, 1 << 20));
  unsigned char x[12] = {0xff, 0xff, 0xff, 0xff, 0x40, 0, 0, 0, 0, 0, 0, 0};
  assert_int_equal(write(mproc_conn_fileno(b), x, 12), 12);
  MPROC_ASSERT_RC(mproc_conn_recv_alloc(a, &d, &len, 1), -EMSGSIZE);
  MPROC_PASS(mproc_conn_destroy(a));
  MPROC_PASS(mproc_conn_destroy(b));
}

static void wait_many(void **state) {
  (void)state;
  mproc_conn_t *a, *b;
  MPROC_PASS(mproc_pipe(&a, &b, 1));
  mproc_queue_t *q;
  MPROC_PASS(mproc_queue_create(&q, NULL));
  pid_t c = fork();
  if (c == 0) {
    usleep(150000);
    _exit(7);
  }
  int pidfd = mproc__sys.pidfd_open(c, 0);
  assert_true(pidfd >= 0);
  mproc_waitable w[3] = {{.kind = MPROC_WAIT_CONN, .u.conn = a},
                         {.kind = MPROC_WAIT_QUEUE, .u.queue = q},
                         {.kind = MPROC_WAIT_FD, .u.fd = pidfd}};
  assert_int_equal(mproc_wait(w, 3, 0), 0);
  assert_int_equal(mproc_wait(w, 3, 0.05), 0);
  /* The process ends: its sentinel becomes ready. */
  assert_int_equal(mproc_wait(w, 3, 10), 1);
  assert_int_equal(w[2].ready, 1);
  assert_int_equal(w[0].ready + w[1].ready, 0);
  assert_int_equal(wait_child(c), 7);
  close(pidfd);
  /* A queue put from another process wakes the waiter. */
  c = fork();
  if (c == 0) {
    usleep(100000);
    _exit(mproc_queue_put(q, "q", 1, 0) ? 1 : 0);
  }
  double t0 = mproc_test_now();
  assert_int_equal(mproc_wait(w, 2, 10), 1);
  assert_true(mproc_test_now() - t0 < 5);
  assert_int_equal(w[1].ready, 1);
  assert_int_equal(wait_child(c), 0);
  MPROC_PASS(mproc_conn_send(b, "c", 1));
  assert_int_equal(mproc_wait(w, 2, 10), 2);
  /* Bad input. */
  mproc_waitable bad = {.kind = 99};
  MPROC_ASSERT_RC(mproc_wait(&bad, 1, 0), -EINVAL);
  MPROC_ASSERT_RC(mproc_wait(NULL, 1, 0), -EINVAL);
  MPROC_ASSERT_RC(mproc_wait(w, 2, -2), -EINVAL);
  bad = (mproc_waitable){.kind = MPROC_WAIT_FD, .u.fd = -1};
  MPROC_ASSERT_RC(mproc_wait(&bad, 1, 0), -EINVAL);
  MPROC_PASS(mproc_queue_close(q));
  MPROC_PASS(mproc_conn_close(b));
  size_t len;
  char buf[4];
  MPROC_PASS(mproc_conn_recv(a, buf, 4, &len, 0));
  mproc_waitable w2 = {.kind = MPROC_WAIT_CONN, .u.conn = a};
  assert_int_equal(mproc_wait(&w2, 1, 5), 1); /* EOF counts as ready */
  mproc_waitable wc = {.kind = MPROC_WAIT_CONN, .u.conn = b};
  MPROC_ASSERT_RC(mproc_wait(&wc, 1, 0), MPROC_ECLOSED);
  assert_int_equal(mproc_wait(NULL, 0, 0.01), 0);
  MPROC_PASS(mproc_queue_destroy(q));
  MPROC_PASS(mproc_conn_destroy(a));
  MPROC_PASS(mproc_conn_destroy(b));
}

/* An idle receiver sleeps: bounded spin, then poll(2). */
static void idle_recv_uses_no_cpu(void **state) {
  (void)state;
  mproc_conn_t *a, *b;
  MPROC_PASS(mproc_pipe(&a, &b, 1));
  pid_t c = fork();
  if (c == 0) {
    char buf[8];
    size_t len;
    for (int i = 0; i < 20; i++) /* also after the spin adapted */
      if (mproc_conn_recv(b, buf, sizeof buf, &len, -1) || mproc_conn_send(b, "k", 1)) _exit(1);
    _exit(mproc_conn_recv(b, buf, sizeof buf, &len, -1) == 0 ? 0 : 2);
  }
  char buf[8];
  size_t len;
  for (int i = 0; i < 20; i++) {
    MPROC_PASS(mproc_conn_send(a, "p", 1));
    MPROC_PASS(mproc_conn_recv(a, buf, sizeof buf, &len, 10));
  }
  usleep(800000);
  MPROC_PASS(mproc_conn_send(a, "x", 1));
  double cpu = mproc_test_join_cpu(c);
  print_message("idle receiver cpu: %.4f s\n", cpu);
  assert_true(cpu < 0.08);
  MPROC_PASS(mproc_conn_destroy(a));
  MPROC_PASS(mproc_conn_destroy(b));
}

static const struct CMUnitTest tests[] = {
    MPROC_TEST(bad_input),
    MPROC_TEST(sizes_roundtrip_across_fork),
    MPROC_TEST(too_short_keeps_message),
    MPROC_TEST(one_way_ends),
    MPROC_TEST(poll_and_timeouts),
    MPROC_TEST(peer_death_gives_eof_not_sigpipe),
    MPROC_TEST(cut_and_bad_frames),
    MPROC_TEST(max_message_protects_receiver),
    MPROC_TEST(wait_many),
    MPROC_TEST(idle_recv_uses_no_cpu),
};
MPROC_TEST_MAIN(tests)
