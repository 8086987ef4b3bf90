/* test_namespace.c - typed attributes over a dict, bad input, sharing with a
 * child process. */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static void typed_attributes(void **state) {
  (void)state;
  mproc_namespace_t *ns;
  MPROC_PASS(mproc_namespace_create(&ns, NULL));
  MPROC_PASS(mproc_namespace_set_int(ns, "count", -42));
  MPROC_PASS(mproc_namespace_set_double(ns, "ratio", 0.25));
  MPROC_PASS(mproc_namespace_set_str(ns, "name", "worker"));
  int64_t i;
  double d;
  MPROC_PASS(mproc_namespace_get_int(ns, "count", &i));
  assert_int_equal(i, -42);
  MPROC_PASS(mproc_namespace_get_double(ns, "ratio", &d));
  assert_true(d == 0.25);
  char buf[16];
  size_t len;
  MPROC_PASS(mproc_namespace_get_str(ns, "name", buf, sizeof buf, &len));
  assert_string_equal(buf, "worker");
  assert_int_equal(len, 6);
  MPROC_ASSERT_RC(mproc_namespace_get_str(ns, "name", buf, 6, &len), MPROC_ETOOSHORT);
  assert_int_equal(len, 6);
  char *s;
  MPROC_PASS(mproc_namespace_get_str_alloc(ns, "name", &s));
  assert_string_equal(s, "worker");
  free(s);
  /* Wrong type, absent attribute. */
  MPROC_ASSERT_RC(mproc_namespace_get_int(ns, "ratio", &i), -EINVAL);
  MPROC_ASSERT_RC(mproc_namespace_get_double(ns, "name", &d), -EINVAL);
  MPROC_ASSERT_RC(mproc_namespace_get_str(ns, "count", buf, sizeof buf, &len), -EINVAL);
  MPROC_ASSERT_RC(mproc_namespace_get_int(ns, "nope", &i), -ENOENT);
  /* Re-typing an attribute replaces it. */
  MPROC_PASS(mproc_namespace_set_str(ns, "count", "many"));
  MPROC_ASSERT_RC(mproc_namespace_get_int(ns, "count", &i), -EINVAL);
  assert_int_equal(mproc_namespace_has(ns, "count"), 1);
  MPROC_PASS(mproc_namespace_del(ns, "count"));
  assert_int_equal(mproc_namespace_has(ns, "count"), 0);
  MPROC_ASSERT_RC(mproc_namespace_del(ns, "count"), -ENOENT);
  size_t n;
  MPROC_PASS(mproc_dict_len(mproc_namespace_dict(ns), &n));
  assert_int_equal(n, 2);
  MPROC_PASS(mproc_namespace_destroy(ns));
}

static void bad_input(void **state) {
  (void)state;
  mproc_namespace_t *ns;
  int64_t i;
  char big[300];
  memset(big, 'a', sizeof big - 1);
  big[sizeof big - 1] = 0;
  MPROC_ASSERT_RC(mproc_namespace_create(NULL, NULL), -EINVAL);
  MPROC_PASS(mproc_namespace_create(&ns, NULL));
  MPROC_ASSERT_RC(mproc_namespace_set_int(NULL, "a", 1), -EINVAL);
  MPROC_ASSERT_RC(mproc_namespace_set_int(ns, NULL, 1), -EINVAL);
  MPROC_ASSERT_RC(mproc_namespace_set_int(ns, "", 1), -EINVAL);
  MPROC_ASSERT_RC(mproc_namespace_set_int(ns, big, 1), -EINVAL);
  MPROC_ASSERT_RC(mproc_namespace_set_str(ns, "a", NULL), -EINVAL);
  MPROC_ASSERT_RC(mproc_namespace_get_int(ns, "a", NULL), -EINVAL);
  MPROC_ASSERT_RC(mproc_namespace_get_str(ns, "a", NULL, 4, NULL), -EINVAL);
  MPROC_ASSERT_RC(mproc_namespace_get_str_alloc(ns, "a", NULL), -EINVAL);
  MPROC_ASSERT_RC(mproc_namespace_has(ns, NULL), -EINVAL);
  static uint64_t not_ns[16];
  MPROC_ASSERT_RC(mproc_namespace_get_int((mproc_namespace_t *)not_ns, "a", &i), -EINVAL);
  MPROC_PASS(mproc_namespace_destroy(ns));
  MPROC_ASSERT_RC(mproc_namespace_set_int(ns, "a", 1), MPROC_EDESTROYED);
  MPROC_PASS(mproc_namespace_destroy(NULL));
}

static void shared_with_child(void **state) {
  (void)state;
  mproc_namespace_t *ns;
  MPROC_PASS(mproc_namespace_create(&ns, NULL));
  MPROC_PASS(mproc_namespace_set_int(ns, "x", 1));
  pid_t pid = fork();
  if (pid == 0) {
    int64_t x = 0;
    int bad = mproc_namespace_get_int(ns, "x", &x) != 0 || x != 1;
    bad |= mproc_namespace_set_int(ns, "x", x + 10) != 0;
    bad |= mproc_namespace_set_str(ns, "from", "child") != 0;
    _exit(bad);
  }
  int st;
  waitpid(pid, &st, 0);
  assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  int64_t x;
  MPROC_PASS(mproc_namespace_get_int(ns, "x", &x));
  assert_int_equal(x, 11);
  char buf[8];
  MPROC_PASS(mproc_namespace_get_str(ns, "from", buf, sizeof buf, NULL));
  assert_string_equal(buf, "child");
  MPROC_PASS(mproc_namespace_destroy(ns));
}

static const struct CMUnitTest tests[] = {
    MPROC_TEST(typed_attributes),
    MPROC_TEST(bad_input),
    MPROC_TEST(shared_with_child),
};

MPROC_TEST_MAIN(tests)
