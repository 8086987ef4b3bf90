/* test_listener.c - Listener/Client over Unix (file and abstract) sockets and
 * TCP loopback, with and without an authkey: wrong keys fail on both sides
 * with EAUTH; clients that send garbage, stall in the handshake or hang up
 * mid-frame are dropped and the listener keeps serving; fake servers are
 * refused by the client; max message size; address parsing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static const char KEY[] = "secret key";

static int wait_child(pid_t pid) {
  int st;
  if (waitpid(pid, &st, 0) != pid) return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void sock_path(char *out, size_t n) {
  snprintf(out, n, "/tmp/mproc-test-%d.sock", (int)getpid());
}

/* Abstract socket names are shared by every process of the machine (and
 * other suites run these tests concurrently): suffix them with our pid. */
static const char *U(const char *name) {
  static char pool[16][128];
  static int next;
  char *b = pool[next++ % 16];
  snprintf(b, 128, "%s-%d", name, (int)getpid());
  return b;
}

static mproc_conn_opts key_opts(const char *key) {
  mproc_conn_opts o = {.authkey = key, .authkey_len = key ? strlen(key) : 0};
  return o;
}

static void bad_input(void **state) {
  (void)state;
  mproc_listener_t *l;
  mproc_conn_t *c;
  mproc_conn_opts o = key_opts(KEY);
  MPROC_ASSERT_RC(mproc_listener_create(NULL, "unix:@x", &o), -EINVAL);
  const char *bad[] = {"", "relative/path", "unix:", "unix:@", "tcp:", "tcp:127.0.0.1",
                       "tcp:127.0.0.1:99999", "tcp::80", "tcp:127.0.0.1:x"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    MPROC_ASSERT_RC(mproc_listener_create(&l, bad[i], &o), -EINVAL);
    MPROC_ASSERT_RC(mproc_client_connect(&c, bad[i], &o), -EINVAL);
  }
  MPROC_ASSERT_RC(mproc_listener_create(&l, NULL, &o), -EINVAL);
  char longp[300];
  memset(longp, 'a', sizeof longp);
  longp[0] = '/';
  longp[sizeof longp - 1] = 0;
  MPROC_ASSERT_RC(mproc_listener_create(&l, longp, &o), -ENAMETOOLONG);
  mproc_conn_opts k0 = {.authkey = KEY, .authkey_len = 0};
  MPROC_ASSERT_RC(mproc_listener_create(&l, "unix:@mproc-bad", &k0), -EINVAL);
  mproc_conn_opts k1 = {.authkey = NULL, .authkey_len = 3};
  MPROC_ASSERT_RC(mproc_client_connect(&c, "unix:@mproc-bad", &k1), -EINVAL);
  mproc_conn_opts k2 = {.handshake_timeout = -1};
  MPROC_ASSERT_RC(mproc_listener_create(&l, "unix:@mproc-bad", &k2), -EINVAL);
  MPROC_ASSERT_RC(mproc_client_connect(NULL, "unix:@x", &o), -EINVAL);
  MPROC_PASS(mproc_listener_create(&l, U("unix:@mproc-bad-input"), &o));
  MPROC_ASSERT_RC(mproc_listener_accept(l, NULL, 0), -EINVAL);
  MPROC_ASSERT_RC(mproc_listener_accept(l, &c, -3), -EINVAL);
  MPROC_ASSERT_RC(mproc_listener_accept(NULL, &c, 0), -EINVAL);
  MPROC_ASSERT_RC(mproc_listener_accept(l, &c, 0), -ETIMEDOUT);
  MPROC_ASSERT_RC(mproc_listener_accept(l, &c, 0.05), -ETIMEDOUT);
  assert_null(mproc_listener_address(NULL));
  MPROC_ASSERT_RC(mproc_listener_fileno(NULL), -EINVAL);
  assert_true(mproc_listener_fileno(l) >= 0);
  MPROC_PASS(mproc_listener_destroy(l));
  MPROC_PASS(mproc_listener_destroy(NULL));
  /* Nobody listening. */
  char p[108];
  sock_path(p, sizeof p);
  MPROC_ASSERT_RC(mproc_client_connect(&c, p, &o), -ENOENT);
  MPROC_ASSERT_RC(mproc_client_connect(&c, U("unix:@mproc-nobody-here"), &o), -ECONNREFUSED);
}

/* A client in a child process: connect, echo one message upper-cased. */
static int child_client(const char *addr, const char *key) {
  mproc_conn_opts o = key_opts(key);
  mproc_conn_t *c;
  int rc = mproc_client_connect(&c, addr, &o);
  if (rc) return rc == MPROC_EAUTH ? 42 : 10;
  char buf[64];
  size_t len;
  if (mproc_conn_recv(c, buf, sizeof buf, &len, 10)) return 11;
  for (size_t i = 0; i < len; i++) buf[i] = (char)(buf[i] - 32);
  if (mproc_conn_send(c, buf, len)) return 12;
  if (mproc_conn_recv(c, buf, sizeof buf, &len, 10) != MPROC_EEOF) return 13;
  mproc_conn_destroy(c);
  return 0;
}

static void serve_one(const char *addr_in, const char *skey, const char *ckey, int want_srv,
                      int want_cli) {
  mproc_conn_opts o = key_opts(skey);
  mproc_listener_t *l;
  MPROC_PASS(mproc_listener_create(&l, addr_in, &o));
  const char *addr = mproc_listener_address(l);
  assert_non_null(addr);
  pid_t pid = fork();
  if (pid == 0) _exit(child_client(addr, ckey));
  mproc_conn_t *c;
  int rc = mproc_listener_accept(l, &c, 10);
  MPROC_ASSERT_RC(rc, want_srv);
  if (rc == 0) {
    char buf[64];
    size_t len;
    MPROC_PASS(mproc_conn_send(c, "hello", 5));
    MPROC_PASS(mproc_conn_recv(c, buf, sizeof buf, &len, 10));
    assert_int_equal(len, 5);
    assert_memory_equal(buf, "HELLO", 5);
    MPROC_PASS(mproc_conn_destroy(c));
  }
  assert_int_equal(wait_child(pid), want_cli);
  MPROC_PASS(mproc_listener_destroy(l));
}

static void unix_with_authkey(void **state) {
  (void)state;
  char p[108];
  sock_path(p, sizeof p);
  serve_one(p, KEY, KEY, 0, 0);
  struct stat st;
  assert_int_equal(stat(p, &st), -1); /* removed at destroy */
  char u[120];
  snprintf(u, sizeof u, "unix:%s", p);
  serve_one(u, KEY, KEY, 0, 0);
}

static void abstract_and_tcp(void **state) {
  (void)state;
  serve_one(U("unix:@mproc-test-abstract"), KEY, KEY, 0, 0);
  serve_one("tcp:127.0.0.1:0", KEY, KEY, 0, 0);
  serve_one("tcp:localhost:0", NULL, NULL, 0, 0);
}

static void wrong_key_fails_both_sides(void **state) {
  (void)state;
  serve_one(U("unix:@mproc-test-wrong"), KEY, "other key", MPROC_EAUTH, 42);
  serve_one("tcp:127.0.0.1:0", "other key", KEY, MPROC_EAUTH, 42);
  serve_one(U("unix:@mproc-test-wrong2"), KEY, "secret kez", MPROC_EAUTH, 42);
}

static void stale_socket_file_replaced(void **state) {
  (void)state;
  char p[108];
  sock_path(p, sizeof p);
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un un = {.sun_family = AF_UNIX};
  strcpy(un.sun_path, p);
  assert_int_equal(bind(fd, (struct sockaddr *)&un, sizeof un), 0);
  close(fd); /* the file stays, as after a crash */
  serve_one(p, KEY, KEY, 0, 0);
  /* A regular file is never removed. */
  FILE *f = fopen(p, "w");
  fclose(f);
  mproc_listener_t *l;
  mproc_conn_opts o = key_opts(KEY);
  MPROC_ASSERT_RC(mproc_listener_create(&l, p, &o), -EADDRINUSE);
  unlink(p);
}

/* Raw socket helpers for misbehaving clients and servers. */
static int raw_connect(const char *abstract) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un un = {.sun_family = AF_UNIX};
  size_t n = strlen(abstract);
  memcpy(un.sun_path + 1, abstract, n);
  if (connect(fd, (struct sockaddr *)&un, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n)))
    return -1;
  return fd;
}

static void bad_clients_are_dropped(void **state) {
  (void)state;
  mproc_conn_opts o = key_opts(KEY);
  o.handshake_timeout = 0.3;
  mproc_listener_t *l;
  const char *addr = U("unix:@mproc-test-bad"), *raw_name = U("mproc-test-bad");
  MPROC_PASS(mproc_listener_create(&l, addr, &o));
  mproc_conn_t *c;
  /* Garbage instead of a frame. */
  int fd = raw_connect(raw_name);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, "GET / HTTP/1.0\r\n\r\n", 18), 18);
  MPROC_ASSERT_RC(mproc_listener_accept(l, &c, 5), MPROC_EPROTO);
  close(fd);
  /* Stalls after connecting. */
  fd = raw_connect(raw_name);
  double t0 = mproc_test_now();
  MPROC_ASSERT_RC(mproc_listener_accept(l, &c, 5), -ETIMEDOUT);
  assert_true(mproc_test_now() - t0 < 3);
  close(fd);
  /* Hangs up in the middle of a frame. */
  fd = raw_connect(raw_name);
  unsigned char h[4] = {0, 0, 0, 32};
  assert_int_equal(write(fd, h, 4), 4);
  assert_int_equal(write(fd, "12345", 5), 5);
  close(fd);
  MPROC_ASSERT_RC(mproc_listener_accept(l, &c, 5), MPROC_EEOF);
  /* Stalls in the middle of a frame. */
  fd = raw_connect(raw_name);
  assert_int_equal(write(fd, h, 4), 4);
  MPROC_ASSERT_RC(mproc_listener_accept(l, &c, 5), -ETIMEDOUT);
  close(fd);
  /* A right-sized answer with the wrong digest. */
  fd = raw_connect(raw_name);
  unsigned char ans[36] = {0, 0, 0, 32};
  assert_int_equal(write(fd, ans, 36), 36);
  MPROC_ASSERT_RC(mproc_listener_accept(l, &c, 5), MPROC_EAUTH);
  close(fd);
  /* The listener still serves a good client. */
  pid_t pid = fork();
  if (pid == 0) _exit(child_client(addr, KEY));
  MPROC_PASS(mproc_listener_accept(l, &c, 10));
  char buf[16];
  size_t len;
  MPROC_PASS(mproc_conn_send(c, "abc", 3));
  MPROC_PASS(mproc_conn_recv(c, buf, sizeof buf, &len, 10));
  assert_memory_equal(buf, "ABC", 3);
  MPROC_PASS(mproc_conn_destroy(c));
  assert_int_equal(wait_child(pid), 0);
  MPROC_PASS(mproc_listener_destroy(l));
}

/* Fake servers: the client refuses them instead of hanging or crashing. */
static void bad_servers_are_refused(void **state) {
  (void)state;
  int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un un = {.sun_family = AF_UNIX};
  const char *fake = U("mproc-fake");
  memcpy(un.sun_path + 1, fake, strlen(fake));
  socklen_t sl = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(fake));
  assert_int_equal(bind(lfd, (struct sockaddr *)&un, sl), 0);
  assert_int_equal(listen(lfd, 8), 0);
  mproc_conn_opts o = key_opts(KEY);
  o.handshake_timeout = 0.3;
  mproc_conn_t *c;
  for (int mode = 0; mode < 3; mode++) {
    pid_t pid = fork();
    if (pid == 0) {
      int fd = accept(lfd, NULL, NULL);
      if (mode == 0) { /* garbage */
        if (write(fd, "\x00\x00\x00\x05hello", 9) != 9) _exit(1);
      } else if (mode == 1) { /* a challenge of the wrong size */
        if (write(fd, "\x00\x00\x00\x0c#CHALLENGE#x", 16) != 16) _exit(1);
      }
      usleep(600000); /* mode 2: stall */
      close(fd);
      _exit(0);
    }
    int want = mode == 2 ? -ETIMEDOUT : MPROC_EPROTO;
    /* Only the stall case depends on the timeout; the others get a long one
     * so a slow fork/accept on a loaded machine cannot turn them into it. */
    o.handshake_timeout = mode == 2 ? 0.3 : 10.0;
    MPROC_ASSERT_RC(mproc_client_connect(&c, U("unix:@mproc-fake"), &o), want);
    assert_int_equal(wait_child(pid), 0);
  }
  close(lfd);
}

static void max_message_on_accepted(void **state) {
  (void)state;
  mproc_conn_opts o = key_opts(KEY);
  o.max_message = 1000;
  mproc_listener_t *l;
  const char *addr = U("unix:@mproc-test-max");
  MPROC_PASS(mproc_listener_create(&l, addr, &o));
  pid_t pid = fork();
  if (pid == 0) {
    mproc_conn_opts co = key_opts(KEY);
    mproc_conn_t *c;
    if (mproc_client_connect(&c, addr, &co)) _exit(1);
    static char big[5000];
    if (mproc_conn_send(c, big, 1000) || mproc_conn_send(c, big, 5000)) _exit(2);
    char b[4];
    size_t len;
    mproc_conn_recv(c, b, 4, &len, 10); /* until the server hangs up */
    mproc_conn_destroy(c);
    _exit(0);
  }
  mproc_conn_t *c;
  MPROC_PASS(mproc_listener_accept(l, &c, 10));
  void *d;
  size_t len;
  MPROC_PASS(mproc_conn_recv_alloc(c, &d, &len, 10));
  assert_int_equal(len, 1000);
  free(d);
  MPROC_ASSERT_RC(mproc_conn_recv_alloc(c, &d, &len, 10), -EMSGSIZE);
  MPROC_PASS(mproc_conn_destroy(c));
  assert_int_equal(wait_child(pid), 0);
  MPROC_PASS(mproc_listener_destroy(l));
}

static const struct CMUnitTest tests[] = {
    MPROC_TEST(bad_input),
    MPROC_TEST(unix_with_authkey),
    MPROC_TEST(abstract_and_tcp),
    MPROC_TEST(wrong_key_fails_both_sides),
    MPROC_TEST(stale_socket_file_replaced),
    MPROC_TEST(bad_clients_are_dropped),
    MPROC_TEST(bad_servers_are_refused),
    MPROC_TEST(max_message_on_accepted),
};
MPROC_TEST_MAIN(tests)
