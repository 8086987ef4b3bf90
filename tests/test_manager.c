/* test_manager.c - manager server and proxies: every object kind through
 * its proxy, custom operations, authentication, forked children. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define S(x) (x), strlen(x)

static mproc_manager_t *start(void) {
  mproc_manager_t *m;
  MPROC_PASS(mproc_manager_start(&m, NULL));
  return m;
}

static void start_ping_shutdown(void **state) {
  (void)state;
  mproc_manager_t *m = start();
  assert_non_null(mproc_manager_address(m));
  assert_true(strncmp(mproc_manager_address(m), "unix:@", 6) == 0);
  MPROC_PASS(mproc_manager_ping(m));
  MPROC_PASS(mproc_manager_shutdown(m));
  /* The server is gone: calls fail fast, they do not hang. */
  int rc = mproc_manager_ping(m);
  assert_true(rc == MPROC_EEOF || rc == -ECONNREFUSED || rc == -ECONNRESET);
  MPROC_PASS(mproc_manager_destroy(m));
  /* destroy also shuts a running server down. */
  m = start();
  MPROC_PASS(mproc_manager_destroy(m));
  MPROC_PASS(mproc_manager_destroy(NULL));
}

static void dict_proxy(void **state) {
  (void)state;
  mproc_manager_t *m = start();
  mproc_dict_t *d, *d2;
  MPROC_PASS(mproc_manager_dict(m, "config", &d));
  MPROC_PASS(mproc_manager_dict(m, "config", &d2)); /* same object */
  MPROC_PASS(mproc_dict_set(d, S("host"), S("example.org")));
  MPROC_PASS(mproc_dict_set(d, S("port"), S("8080")));
  char buf[32];
  size_t n;
  MPROC_PASS(mproc_dict_get(d2, S("host"), buf, sizeof buf, &n));
  assert_int_equal(n, 11);
  assert_memory_equal(buf, "example.org", 11);
  MPROC_ASSERT_RC(mproc_dict_get(d2, S("host"), buf, 4, &n), MPROC_ETOOSHORT);
  assert_int_equal(n, 11);
  MPROC_ASSERT_RC(mproc_dict_get(d, S("nope"), buf, sizeof buf, &n), -ENOENT);
  void *v;
  MPROC_PASS(mproc_dict_get_alloc(d, S("port"), &v, &n));
  assert_string_equal(v, "8080");
  free(v);
  assert_int_equal(mproc_dict_contains(d, S("port")), 1);
  assert_int_equal(mproc_dict_contains(d, S("x")), 0);
  MPROC_PASS(mproc_dict_len(d, &n));
  assert_int_equal(n, 2);
  mproc_blob *items;
  MPROC_PASS(mproc_dict_items(d, &items, &n));
  assert_int_equal(n, 2);
  for (size_t i = 0; i < n; i++) {
    if (!strcmp(items[2 * i].data, "host")) assert_string_equal(items[2 * i + 1].data, "example.org");
    else assert_string_equal(items[2 * i + 1].data, "8080");
  }
  mproc_blobs_free(items);
  mproc_dict_iter_t *it;
  MPROC_PASS(mproc_dict_iter_create(d, &it));
  int cnt = 0;
  while (mproc_dict_iter_next(it, NULL, NULL, NULL, NULL) == 0) cnt++;
  assert_int_equal(cnt, 2);
  MPROC_PASS(mproc_dict_iter_destroy(it));
  MPROC_PASS(mproc_dict_delete(d, S("port")));
  MPROC_ASSERT_RC(mproc_dict_delete(d, S("port")), -ENOENT);
  MPROC_PASS(mproc_dict_clear(d));
  MPROC_PASS(mproc_dict_len(d2, &n));
  assert_int_equal(n, 0);
  /* A name holds one kind of object. */
  mproc_list_t *l;
  MPROC_ASSERT_RC(mproc_manager_list(m, "config", &l), -EEXIST);
  /* Removing the object invalidates proxies. */
  MPROC_PASS(mproc_manager_remove(m, "config"));
  MPROC_ASSERT_RC(mproc_dict_len(d, &n), -ENOENT);
  MPROC_ASSERT_RC(mproc_manager_remove(m, "config"), -ENOENT);
  MPROC_PASS(mproc_dict_destroy(d));
  MPROC_PASS(mproc_proxy_destroy(d2));
  MPROC_PASS(mproc_manager_destroy(m));
}

static void list_proxy(void **state) {
  (void)state;
  mproc_manager_t *m = start();
  mproc_list_t *l;
  MPROC_PASS(mproc_manager_list(m, "l", &l));
  MPROC_PASS(mproc_list_append(l, S("a")));
  mproc_blob more[] = {{"b", 1}, {"c", 1}};
  MPROC_PASS(mproc_list_extend(l, more, 2));
  MPROC_PASS(mproc_list_insert(l, 0, S("z")));
  MPROC_PASS(mproc_list_set(l, -1, S("C")));
  char buf[8];
  size_t n;
  MPROC_PASS(mproc_list_get(l, -1, buf, sizeof buf, &n));
  assert_memory_equal(buf, "C", 1);
  MPROC_ASSERT_RC(mproc_list_get(l, 10, buf, sizeof buf, &n), -ERANGE);
  mproc_blob *b;
  MPROC_PASS(mproc_list_snapshot(l, &b, &n));
  assert_int_equal(n, 4);
  assert_string_equal(b[0].data, "z");
  assert_string_equal(b[3].data, "C");
  mproc_blobs_free(b);
  MPROC_PASS(mproc_list_append(l, S("long-item")));
  MPROC_ASSERT_RC(mproc_list_pop(l, -1, buf, 2, &n), MPROC_ETOOSHORT);
  assert_int_equal(n, 9);
  MPROC_PASS(mproc_list_len(l, &n));
  assert_int_equal(n, 5); /* kept */
  char big[16];
  MPROC_PASS(mproc_list_pop(l, -1, big, sizeof big, &n));
  assert_memory_equal(big, "long-item", 9);
  void *p;
  MPROC_PASS(mproc_list_pop_alloc(l, 0, &p, &n));
  assert_string_equal(p, "z");
  free(p);
  MPROC_PASS(mproc_list_clear(l));
  MPROC_ASSERT_RC(mproc_list_pop(l, -1, buf, sizeof buf, &n), MPROC_EEMPTY);
  MPROC_PASS(mproc_list_destroy(l));
  MPROC_PASS(mproc_manager_destroy(m));
}

static void namespace_value_event(void **state) {
  (void)state;
  mproc_manager_t *m = start();
  mproc_namespace_t *ns;
  MPROC_PASS(mproc_manager_namespace(m, "ns", &ns));
  MPROC_PASS(mproc_namespace_set_int(ns, "x", 7));
  MPROC_PASS(mproc_namespace_set_str(ns, "s", "hello"));
  int64_t x;
  MPROC_PASS(mproc_namespace_get_int(ns, "x", &x));
  assert_int_equal(x, 7);
  char s[8];
  MPROC_PASS(mproc_namespace_get_str(ns, "s", s, sizeof s, NULL));
  assert_string_equal(s, "hello");
  MPROC_ASSERT_RC(mproc_namespace_get_double(ns, "x", &(double){0}), -EINVAL);
  MPROC_PASS(mproc_namespace_destroy(ns));

  mproc_mvalue_t *v;
  MPROC_PASS(mproc_manager_value(m, "v", &v));
  MPROC_ASSERT_RC(mproc_mvalue_get_int(v, &x), -EINVAL); /* empty */
  MPROC_PASS(mproc_mvalue_set_int(v, -5));
  MPROC_PASS(mproc_mvalue_get_int(v, &x));
  assert_int_equal(x, -5);
  double dv;
  MPROC_PASS(mproc_mvalue_set_double(v, 2.5));
  MPROC_PASS(mproc_mvalue_get_double(v, &dv));
  assert_true(dv == 2.5);
  MPROC_PASS(mproc_mvalue_set(v, S("bytes!")));
  size_t n;
  MPROC_ASSERT_RC(mproc_mvalue_get(v, s, 3, &n), MPROC_ETOOSHORT);
  assert_int_equal(n, 6);
  MPROC_PASS(mproc_proxy_destroy(v));

  mproc_mevent_t *e;
  MPROC_PASS(mproc_manager_event(m, "e", &e));
  assert_int_equal(mproc_mevent_is_set(e), 0);
  MPROC_ASSERT_RC(mproc_mevent_wait(e, 0.05), -ETIMEDOUT);
  pid_t pid = fork();
  if (pid == 0) {
    usleep(50000);
    _exit(mproc_mevent_set(e) != 0);
  }
  MPROC_PASS(mproc_mevent_wait(e, 30));
  assert_int_equal(mproc_mevent_is_set(e), 1);
  MPROC_PASS(mproc_mevent_clear(e));
  assert_int_equal(mproc_mevent_is_set(e), 0);
  int st;
  waitpid(pid, &st, 0);
  assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  MPROC_PASS(mproc_proxy_destroy(e));
  MPROC_PASS(mproc_manager_destroy(m));
}

static void queue_proxy(void **state) {
  (void)state;
  mproc_manager_t *m = start();
  mproc_mqueue_t *q;
  MPROC_PASS(mproc_manager_queue(m, "jobs", 2, &q));
  char buf[16];
  size_t n;
  MPROC_ASSERT_RC(mproc_mqueue_get(q, buf, sizeof buf, &n, 0), -ETIMEDOUT);
  MPROC_PASS(mproc_mqueue_put(q, S("one"), 0));
  MPROC_PASS(mproc_mqueue_put(q, S("two"), 0));
  MPROC_ASSERT_RC(mproc_mqueue_put(q, S("three"), 0.05), -ETIMEDOUT); /* full */
  MPROC_PASS(mproc_mqueue_qsize(q, &n));
  assert_int_equal(n, 2);
  MPROC_ASSERT_RC(mproc_mqueue_get(q, buf, 2, &n, 0), MPROC_ETOOSHORT);
  assert_int_equal(n, 3);
  MPROC_PASS(mproc_mqueue_get(q, buf, sizeof buf, &n, -1));
  assert_memory_equal(buf, "one", 3);
  /* A getter in another process blocks until we put. */
  pid_t pid = fork();
  if (pid == 0) {
    int bad = 0;
    char b[16];
    size_t len;
    bad |= mproc_mqueue_get(q, b, sizeof b, &len, 30) != 0 || memcmp(b, "two", 3);
    bad |= mproc_mqueue_get(q, b, sizeof b, &len, 30) != 0 || memcmp(b, "late", 4);
    _exit(bad);
  }
  usleep(100000);
  MPROC_PASS(mproc_mqueue_put(q, S("late"), 30));
  int st;
  waitpid(pid, &st, 0);
  assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  MPROC_PASS(mproc_mqueue_qsize(q, &n));
  assert_int_equal(n, 0);
  void *p;
  MPROC_PASS(mproc_mqueue_put(q, S("x"), -1));
  MPROC_PASS(mproc_mqueue_get_alloc(q, &p, &n, 1));
  assert_string_equal(p, "x");
  free(p);
  MPROC_ASSERT_RC(mproc_mqueue_put(q, S("x"), -2), -EINVAL);
  MPROC_PASS(mproc_proxy_destroy(q));
  MPROC_PASS(mproc_manager_destroy(m));
}

static void lock_proxy_released_on_death(void **state) {
  (void)state;
  mproc_manager_t *m = start();
  mproc_mlock_t *l;
  MPROC_PASS(mproc_manager_lock(m, "lk", &l));
  MPROC_ASSERT_RC(mproc_mlock_release(l), -EPERM);
  MPROC_PASS(mproc_mlock_acquire(l, -1));
  pid_t pid = fork();
  if (pid == 0) _exit(mproc_mlock_acquire(l, 0.05) == -ETIMEDOUT ? 0 : 1);
  int st;
  waitpid(pid, &st, 0);
  assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  MPROC_PASS(mproc_mlock_release(l));
  /* A child takes the lock and dies holding it: the server frees it. */
  int pfd[2];
  assert_int_equal(pipe(pfd), 0);
  pid = fork();
  if (pid == 0) {
    if (mproc_mlock_acquire(l, 5) == 0) {
      ssize_t w = write(pfd[1], "k", 1);
      (void)w;
    }
    pause();
    _exit(0);
  }
  char c;
  assert_int_equal(read(pfd[0], &c, 1), 1);
  MPROC_ASSERT_RC(mproc_mlock_acquire(l, 0), -ETIMEDOUT);
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  MPROC_PASS(mproc_mlock_acquire(l, 30));
  MPROC_PASS(mproc_mlock_release(l));
  close(pfd[0]);
  close(pfd[1]);
  MPROC_PASS(mproc_proxy_destroy(l));
  MPROC_PASS(mproc_manager_destroy(m));
}

static int op_upper(void *ctx, const void *in, size_t inlen, void **out, size_t *outlen) {
  (void)ctx;
  if (inlen == 0) return MPROC_EEMPTY;
  char *o = malloc(inlen);
  for (size_t i = 0; i < inlen; i++) {
    char ch = ((const char *)in)[i];
    o[i] = (char)(ch >= 'a' && ch <= 'z' ? ch - 32 : ch);
  }
  *out = o;
  *outlen = inlen;
  return 0;
}

static void custom_operation(void **state) {
  (void)state;
  MPROC_PASS(mproc_manager_register("upper", op_upper, NULL));
  MPROC_ASSERT_RC(mproc_manager_register("upper", op_upper, NULL), -EEXIST);
  MPROC_ASSERT_RC(mproc_manager_register("", op_upper, NULL), -EINVAL);
  MPROC_ASSERT_RC(mproc_manager_register("x", NULL, NULL), -EINVAL);
  mproc_manager_t *m = start();
  void *out;
  size_t n;
  MPROC_PASS(mproc_manager_call(m, "upper", S("hello"), &out, &n));
  assert_int_equal(n, 5);
  assert_string_equal(out, "HELLO");
  free(out);
  MPROC_ASSERT_RC(mproc_manager_call(m, "upper", NULL, 0, &out, &n), MPROC_EEMPTY);
  MPROC_ASSERT_RC(mproc_manager_call(m, "nope", S("x"), &out, &n), MPROC_ENOTREG);
  MPROC_PASS(mproc_manager_destroy(m));
}

static void authentication(void **state) {
  (void)state;
  mproc_manager_opts o = {.address = "tcp:127.0.0.1:0", .authkey = "sekrit", .authkey_len = 6};
  mproc_manager_t *m, *c;
  MPROC_PASS(mproc_manager_start(&m, &o));
  const char *addr = mproc_manager_address(m);
  assert_true(strncmp(addr, "tcp:127.0.0.1:", 14) == 0);
  assert_true(strcmp(addr, "tcp:127.0.0.1:0") != 0);
  MPROC_ASSERT_RC(mproc_manager_connect(&c, addr, "wrong!", 6, 10), MPROC_EAUTH);
  MPROC_ASSERT_RC(mproc_manager_connect(&c, addr, NULL, 0, 10), -EINVAL); /* TCP needs a key */
  MPROC_PASS(mproc_manager_connect(&c, addr, "sekrit", 6, 10));
  mproc_list_t *l;
  MPROC_PASS(mproc_manager_list(c, "shared", &l));
  MPROC_PASS(mproc_list_append(l, S("over tcp")));
  MPROC_PASS(mproc_list_destroy(l));
  MPROC_PASS(mproc_manager_list(m, "shared", &l));
  size_t n;
  MPROC_PASS(mproc_list_len(l, &n));
  assert_int_equal(n, 1);
  MPROC_PASS(mproc_list_destroy(l));
  /* A client (not the owner) may shut the server down with the key. */
  MPROC_PASS(mproc_manager_shutdown(c));
  MPROC_PASS(mproc_manager_destroy(c));
  MPROC_PASS(mproc_manager_destroy(m)); /* joins the exited server */
  /* No key over TCP is refused at start. */
  mproc_manager_opts bad = {.address = "tcp:127.0.0.1:0"};
  bad.authkey = NULL;
  MPROC_ASSERT_RC(mproc_manager_serve(&bad, NULL, NULL), -EINVAL);
}

static void bad_input(void **state) {
  (void)state;
  mproc_manager_t *m;
  mproc_manager_opts o = {0};
  MPROC_ASSERT_RC(mproc_manager_start(NULL, NULL), -EINVAL);
  o.address = "bogus:addr";
  MPROC_ASSERT_RC(mproc_manager_start(&m, &o), -EINVAL);
  o.address = NULL;
  o.authkey = "k";
  o.authkey_len = 0;
  MPROC_ASSERT_RC(mproc_manager_start(&m, &o), -EINVAL);
  o.authkey = NULL;
  o.max_connections = -1;
  MPROC_ASSERT_RC(mproc_manager_start(&m, &o), -EINVAL);
  o.max_connections = 0;
  o.frame_timeout = -1;
  MPROC_ASSERT_RC(mproc_manager_start(&m, &o), -EINVAL);
  MPROC_ASSERT_RC(mproc_manager_connect(&m, NULL, NULL, 0, 1), -EINVAL);
  MPROC_ASSERT_RC(mproc_manager_connect(&m, "unix:@x", NULL, 0, -3), -EINVAL);
  MPROC_ASSERT_RC(mproc_manager_connect(&m, "unix:@mproc-no-such-server", NULL, 0, 1),
                  -ECONNREFUSED);
  MPROC_ASSERT_RC(mproc_manager_ping(NULL), -EINVAL);
  m = start();
  mproc_dict_t *d;
  char big[300];
  memset(big, 'n', sizeof big - 1);
  big[sizeof big - 1] = 0;
  MPROC_ASSERT_RC(mproc_manager_dict(m, NULL, &d), -EINVAL);
  MPROC_ASSERT_RC(mproc_manager_dict(m, "", &d), -EINVAL);
  MPROC_ASSERT_RC(mproc_manager_dict(m, big, &d), -EINVAL);
  MPROC_ASSERT_RC(mproc_manager_dict(m, "d", NULL), -EINVAL);
  MPROC_ASSERT_RC(mproc_manager_call(m, NULL, NULL, 0, NULL, NULL), -EINVAL);
  MPROC_ASSERT_RC(mproc_mqueue_put(NULL, "x", 1, 0), -EINVAL);
  MPROC_ASSERT_RC(mproc_mlock_acquire(NULL, 0), -EINVAL);
  MPROC_ASSERT_RC(mproc_proxy_destroy((void *)big), -EINVAL);
  mproc_mqueue_t *q;
  MPROC_PASS(mproc_manager_queue(m, "q", 0, &q));
  MPROC_ASSERT_RC(mproc_mevent_set((mproc_mevent_t *)q), -EINVAL); /* wrong kind */
  MPROC_ASSERT_RC(mproc_mqueue_get(q, NULL, 4, &(size_t){0}, 0), -EINVAL);
  MPROC_ASSERT_RC(mproc_mqueue_get(q, big, 4, &(size_t){0}, -5), -EINVAL);
  MPROC_PASS(mproc_proxy_destroy(q));
  MPROC_PASS(mproc_manager_destroy(m));
}

/* The seed's Manager example: two forked workers append to a shared list
 * through inherited proxies. */
static void forked_workers_share_a_list(void **state) {
  (void)state;
  mproc_manager_t *m = start();
  mproc_list_t *l;
  MPROC_PASS(mproc_manager_list(m, "liste", &l));
  MPROC_PASS(mproc_manager_ping(m)); /* the parent has a pooled connection */
  pid_t kids[4];
  for (int i = 0; i < 4; i++) {
    kids[i] = fork();
    if (kids[i] == 0) {
      int bad = 0;
      for (int j = 0; j < 50; j++) {
        int v = i * 1000 + j;
        bad |= mproc_list_append(l, &v, sizeof v) != 0;
      }
      _exit(bad);
    }
  }
  for (int i = 0; i < 4; i++) {
    int st;
    waitpid(kids[i], &st, 0);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  }
  size_t n;
  MPROC_PASS(mproc_list_len(l, &n));
  assert_int_equal(n, 200);
  MPROC_PASS(mproc_list_destroy(l));
  MPROC_PASS(mproc_manager_destroy(m));
}

static const struct CMUnitTest tests[] = {
    MPROC_TEST(start_ping_shutdown),
    MPROC_TEST(dict_proxy),
    MPROC_TEST(list_proxy),
    MPROC_TEST(namespace_value_event),
    MPROC_TEST(queue_proxy),
    MPROC_TEST(lock_proxy_released_on_death),
    MPROC_TEST(custom_operation),
    MPROC_TEST(authentication),
    MPROC_TEST(bad_input),
    MPROC_TEST(forked_workers_share_a_list),
};

MPROC_TEST_MAIN(tests)
