/* test_manager_robust.c - hostile and failing peers: stalled and garbage
 * clients, limits, server death, owner death. */
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "manager/manager.h"
#include "platform/platform.h"

#define S(x) (x), strlen(x)
#define KEY "robust-key"

/* A raw, authenticated connection to addr (internal transport). */
static int raw_conn(const char *addr, int auth) {
  int fd;
  struct timespec dl;
  MPROC_PASS(mproc__mt_connect(addr, mproc__deadline(10, &dl), &fd));
  if (auth) MPROC_PASS(mproc__mt_auth_client(fd, KEY, strlen(KEY), mproc__deadline(10, &dl)));
  return fd;
}

/* 1 if the server closed fd within timeout seconds. */
static int closed_by_server(int fd, double timeout) {
  double end = mproc_test_now() + timeout;
  char buf[256];
  while (mproc_test_now() < end) {
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 100) > 0) {
      ssize_t r = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (r == 0 || (r < 0 && errno == ECONNRESET)) return 1;
    }
  }
  return 0;
}

static mproc_manager_t *start_opts(size_t max_msg, int max_conn, int max_obj, double ft) {
  mproc_manager_opts o = {.authkey = KEY, .authkey_len = strlen(KEY), .max_message = max_msg,
                          .max_connections = max_conn, .max_objects = max_obj,
                          .frame_timeout = ft};
  mproc_manager_t *m;
  MPROC_PASS(mproc_manager_start(&m, &o));
  return m;
}

static void stalled_clients_do_not_wedge(void **state) {
  (void)state;
  mproc_manager_t *m = start_opts(0, 0, 0, 0.5);
  const char *addr = mproc_manager_address(m);
  int silent = raw_conn(addr, 0);   /* never answers the handshake */
  int half = raw_conn(addr, 1);     /* starts a frame and stops */
  unsigned char part[6] = {200, 0, 0, 0, 1, 1};
  assert_int_equal(send(half, part, sizeof part, 0), (ssize_t)sizeof part);
  /* Others are served meanwhile. */
  mproc_dict_t *d;
  MPROC_PASS(mproc_manager_dict(m, "d", &d));
  for (int i = 0; i < 100; i++) MPROC_PASS(mproc_dict_set(d, &i, sizeof i, S("v")));
  size_t n;
  MPROC_PASS(mproc_dict_len(d, &n));
  assert_int_equal(n, 100);
  /* Both stalled peers are dropped after the frame timeout. */
  assert_true(closed_by_server(silent, 10));
  assert_true(closed_by_server(half, 10));
  close(silent);
  close(half);
  MPROC_PASS(mproc_dict_destroy(d));
  MPROC_PASS(mproc_manager_destroy(m));
}

static void garbage_is_rejected(void **state) {
  (void)state;
  mproc_manager_t *m = start_opts(4096, 0, 0, 0);
  const char *addr = mproc_manager_address(m);
  struct timespec dl;
  /* A frame that is not a valid message. */
  int fd = raw_conn(addr, 1);
  MPROC_PASS(mproc__mt_send(fd, "garbage garbage garbage", 23, mproc__deadline(5, &dl)));
  assert_true(closed_by_server(fd, 10));
  close(fd);
  /* A frame over the size limit. */
  fd = raw_conn(addr, 1);
  unsigned char huge[4] = {0, 0, 0, 0x40};
  assert_int_equal(send(fd, huge, 4, 0), 4);
  assert_true(closed_by_server(fd, 10));
  close(fd);
  /* A well-formed request with wrong field types gets MPROC_EPROTO back. */
  fd = raw_conn(addr, 1);
  mproc__rfield f[1] = {mproc__rf_bytes("x", 1)};
  void *req, *rep;
  size_t len;
  MPROC_PASS(mproc__wire_build(&req, &len, MPROC__WIRE_REQUEST, MPROC__OP_DICT_LEN, 7, f, 1));
  MPROC_PASS(mproc__mt_send(fd, req, len, mproc__deadline(5, &dl)));
  free(req);
  MPROC_PASS(mproc__mt_recv(fd, 1 << 20, &rep, &len, mproc__deadline(10, &dl), 10));
  mproc__msg msg;
  MPROC_PASS(mproc__wire_decode(rep, len, &msg));
  assert_int_equal(msg.id, 7);
  assert_int_equal(msg.f[0].i, MPROC_EPROTO);
  free(msg.f);
  free(rep);
  /* An unknown op: -ENOTSUP, connection kept. */
  MPROC_PASS(mproc__wire_build(&req, &len, MPROC__WIRE_REQUEST, 0x7777, 8, NULL, 0));
  MPROC_PASS(mproc__mt_send(fd, req, len, mproc__deadline(5, &dl)));
  free(req);
  MPROC_PASS(mproc__mt_recv(fd, 1 << 20, &rep, &len, mproc__deadline(10, &dl), 10));
  MPROC_PASS(mproc__wire_decode(rep, len, &msg));
  assert_int_equal(msg.f[0].i, -ENOTSUP);
  free(msg.f);
  free(rep);
  close(fd);
  /* A proxy call bigger than max_message: the server drops that connection
   * (the caller sees EOF), and keeps serving. */
  mproc_mvalue_t *v;
  MPROC_PASS(mproc_manager_value(m, "v", &v));
  char big[8192];
  memset(big, 'x', sizeof big);
  int rc = mproc_mvalue_set(v, big, sizeof big);
  assert_true(rc == MPROC_EEOF || rc == -ECONNRESET);
  MPROC_PASS(mproc_mvalue_set(v, big, 100));
  MPROC_PASS(mproc_proxy_destroy(v));
  MPROC_PASS(mproc_manager_destroy(m));
}

static void connection_and_object_limits(void **state) {
  (void)state;
  mproc_manager_t *m = start_opts(0, 2, 2, 0);
  mproc_dict_t *a, *b, *c;
  MPROC_PASS(mproc_manager_dict(m, "a", &a));
  MPROC_PASS(mproc_manager_dict(m, "b", &b));
  MPROC_ASSERT_RC(mproc_manager_dict(m, "c", &c), -ENOSPC);
  MPROC_PASS(mproc_manager_remove(m, "b"));
  MPROC_PASS(mproc_manager_dict(m, "c", &c));
  /* m holds one pooled connection; one more fits, a third is refused. */
  int fd1 = raw_conn(mproc_manager_address(m), 1);
  int fd2;
  struct timespec dl;
  MPROC_PASS(mproc__mt_connect(mproc_manager_address(m), mproc__deadline(5, &dl), &fd2));
  int rc = mproc__mt_auth_client(fd2, KEY, strlen(KEY), mproc__deadline(5, &dl));
  assert_true(rc == MPROC_EEOF || rc == -ECONNRESET);
  close(fd2);
  close(fd1);
  MPROC_PASS(mproc_dict_destroy(a));
  MPROC_PASS(mproc_dict_destroy(b));
  MPROC_PASS(mproc_dict_destroy(c));
  MPROC_PASS(mproc_manager_destroy(m));
}

static void ready_cb(const char *addr, void *arg) {
  int fd = *(int *)arg;
  ssize_t w = write(fd, addr, strlen(addr) + 1);
  (void)w;
}

/* A standalone server (mproc_manager_serve) in a child; returns its pid
 * and writes its address to addr. */
static pid_t serve_child(char *addr, size_t cap) {
  int pfd[2];
  assert_int_equal(pipe(pfd), 0);
  pid_t pid = fork();
  if (pid == 0) {
    close(pfd[0]);
    char name[64];
    snprintf(name, sizeof name, "unix:@mproc-test-%d", (int)getpid());
    mproc_manager_opts o = {.address = name, .authkey = KEY, .authkey_len = strlen(KEY)};
    _exit(mproc_manager_serve(&o, ready_cb, &pfd[1]) == 0 ? 0 : 1);
  }
  close(pfd[1]);
  ssize_t r = read(pfd[0], addr, cap);
  assert_true(r > 0);
  close(pfd[0]);
  return pid;
}

static void server_death_gives_errors_not_hangs(void **state) {
  (void)state;
  char addr[256];
  pid_t srv = serve_child(addr, sizeof addr);
  mproc_manager_t *m;
  MPROC_PASS(mproc_manager_connect(&m, addr, KEY, strlen(KEY), 10));
  mproc_mqueue_t *q;
  MPROC_PASS(mproc_manager_queue(m, "q", 0, &q));
  /* A getter blocked forever in the server when it dies. */
  pid_t getter = fork();
  if (getter == 0) {
    char b[8];
    size_t n;
    int rc = mproc_mqueue_get(q, b, sizeof b, &n, -1);
    _exit(rc == MPROC_EEOF || rc == -ECONNRESET ? 0 : 1);
  }
  usleep(100000);
  kill(srv, SIGKILL);
  waitpid(srv, NULL, 0);
  int st;
  waitpid(getter, &st, 0);
  assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  int rc = mproc_mqueue_put(q, S("x"), 0);
  assert_true(rc == MPROC_EEOF || rc == -ECONNRESET || rc == -ECONNREFUSED);
  rc = mproc_manager_ping(m);
  assert_true(rc == -ECONNREFUSED || rc == MPROC_EEOF);
  MPROC_PASS(mproc_proxy_destroy(q));
  MPROC_PASS(mproc_manager_destroy(m));
}

static void sigterm_stops_standalone_server(void **state) {
  (void)state;
  char addr[256];
  pid_t srv = serve_child(addr, sizeof addr);
  mproc_manager_t *m;
  MPROC_PASS(mproc_manager_connect(&m, addr, KEY, strlen(KEY), 10));
  MPROC_PASS(mproc_manager_ping(m));
  kill(srv, SIGTERM);
  int st;
  waitpid(srv, &st, 0);
  assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0); /* clean exit */
  MPROC_PASS(mproc_manager_destroy(m));
}

static void server_exits_when_owner_dies(void **state) {
  (void)state;
  int pfd[2];
  assert_int_equal(pipe(pfd), 0);
  pid_t owner = fork();
  if (owner == 0) {
    close(pfd[0]);
    mproc_manager_opts o = {.authkey = KEY, .authkey_len = strlen(KEY)};
    mproc_manager_t *m;
    if (mproc_manager_start(&m, &o)) _exit(1);
    ssize_t w = write(pfd[1], mproc_manager_address(m), strlen(mproc_manager_address(m)) + 1);
    (void)w;
    pause();
    _exit(0);
  }
  close(pfd[1]);
  char addr[256];
  assert_true(read(pfd[0], addr, sizeof addr) > 0);
  close(pfd[0]);
  mproc_manager_t *c;
  MPROC_PASS(mproc_manager_connect(&c, addr, KEY, strlen(KEY), 10));
  MPROC_PASS(mproc_manager_ping(c));
  kill(owner, SIGKILL);
  waitpid(owner, NULL, 0);
  /* The orphaned server goes away by itself. */
  double end = mproc_test_now() + 20;
  int rc = 0;
  while (mproc_test_now() < end && (rc = mproc_manager_ping(c)) == 0) usleep(20000);
  assert_true(rc == MPROC_EEOF || rc == -ECONNREFUSED || rc == -ECONNRESET);
  MPROC_PASS(mproc_manager_destroy(c));
}

/* Many clients in parallel against one server, with some dying mid-way. */
static void many_clients_some_killed(void **state) {
  (void)state;
  mproc_manager_t *m = start_opts(0, 0, 0, 0);
  mproc_list_t *l;
  MPROC_PASS(mproc_manager_list(m, "l", &l));
  enum { P = 6, N = 200 };
  pid_t kids[P];
  for (int i = 0; i < P; i++) {
    kids[i] = fork();
    if (kids[i] == 0) {
      int bad = 0;
      for (int j = 0; j < N; j++) bad |= mproc_list_append(l, &j, sizeof j) != 0;
      if (i % 2) pause(); /* these get killed */
      _exit(bad);
    }
  }
  size_t n = 0;
  double end = mproc_test_now() + 30;
  while (mproc_test_now() < end) {
    MPROC_PASS(mproc_list_len(l, &n));
    if (n == P * N) break;
    usleep(10000);
  }
  assert_int_equal(n, P * N);
  for (int i = 0; i < P; i++) {
    if (i % 2) kill(kids[i], SIGKILL);
    int st;
    waitpid(kids[i], &st, 0);
    if (i % 2 == 0) assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  }
  MPROC_PASS(mproc_manager_ping(m));
  MPROC_PASS(mproc_list_destroy(l));
  MPROC_PASS(mproc_manager_destroy(m));
}

static const struct CMUnitTest tests[] = {
    MPROC_TEST(stalled_clients_do_not_wedge),
    MPROC_TEST(garbage_is_rejected),
    MPROC_TEST(connection_and_object_limits),
    MPROC_TEST(server_death_gives_errors_not_hangs),
    MPROC_TEST(sigterm_stops_standalone_server),
    MPROC_TEST(server_exits_when_owner_dies),
    MPROC_TEST(many_clients_some_killed),
};

MPROC_TEST_MAIN(tests)
