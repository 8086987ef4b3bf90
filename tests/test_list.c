/* test_list.c - the shared-heap list: Python index semantics, bad input,
 * ring growth/shrink, memory return, concurrent appends, random kills. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "shared/shared.h"

#define S(x) (x), strlen(x)

static size_t heap_used(void) {
  mproc_heap_stats st;
  assert_int_equal(mproc_heap_stats_get(&st), 0);
  return st.used;
}

/* The list's content as "a,b,c". */
static void expect(mproc_list_t *l, const char *want) {
  mproc_blob *b;
  size_t n;
  MPROC_PASS(mproc_list_snapshot(l, &b, &n));
  char got[512] = "";
  for (size_t i = 0; i < n; i++) {
    if (i) strcat(got, ",");
    strncat(got, b[i].data, 64);
  }
  mproc_blobs_free(b);
  assert_string_equal(got, want);
  MPROC_PASS(mproc__list_validate(l));
}

static void python_semantics(void **state) {
  (void)state;
  mproc_list_t *l;
  MPROC_PASS(mproc_list_create(&l, NULL));
  expect(l, "");
  MPROC_PASS(mproc_list_append(l, S("a")));
  MPROC_PASS(mproc_list_append(l, S("b")));
  mproc_blob more[] = {{"c", 1}, {"d", 1}, {"e", 1}};
  MPROC_PASS(mproc_list_extend(l, more, 3));
  expect(l, "a,b,c,d,e");
  char buf[8];
  size_t len;
  MPROC_PASS(mproc_list_get(l, -1, buf, sizeof buf, &len));
  assert_memory_equal(buf, "e", 1);
  MPROC_PASS(mproc_list_get(l, 0, buf, sizeof buf, &len));
  assert_memory_equal(buf, "a", 1);
  MPROC_PASS(mproc_list_get(l, -5, buf, sizeof buf, &len));
  assert_memory_equal(buf, "a", 1);
  MPROC_ASSERT_RC(mproc_list_get(l, 5, buf, sizeof buf, &len), -ERANGE);
  MPROC_ASSERT_RC(mproc_list_get(l, -6, buf, sizeof buf, &len), -ERANGE);
  MPROC_PASS(mproc_list_set(l, -2, S("D")));
  MPROC_ASSERT_RC(mproc_list_set(l, 9, S("x")), -ERANGE);
  expect(l, "a,b,c,D,e");
  MPROC_PASS(mproc_list_insert(l, 0, S("front")));
  MPROC_PASS(mproc_list_insert(l, 2, S("mid")));
  MPROC_PASS(mproc_list_insert(l, 100, S("end")));
  MPROC_PASS(mproc_list_insert(l, -1, S("pen")));
  MPROC_PASS(mproc_list_insert(l, -100, S("first")));
  expect(l, "first,front,a,mid,b,c,D,e,pen,end");
  MPROC_PASS(mproc_list_pop(l, -1, buf, sizeof buf, &len));
  assert_int_equal(len, 3);
  assert_memory_equal(buf, "end", 3);
  MPROC_PASS(mproc_list_pop(l, 0, buf, sizeof buf, &len));
  assert_memory_equal(buf, "first", 5);
  MPROC_PASS(mproc_list_pop(l, 2, buf, sizeof buf, &len));
  assert_memory_equal(buf, "mid", 3);
  expect(l, "front,a,b,c,D,e,pen");
  /* Too-short buffer keeps the item. */
  MPROC_ASSERT_RC(mproc_list_pop(l, 0, buf, 2, &len), MPROC_ETOOSHORT);
  assert_int_equal(len, 5);
  expect(l, "front,a,b,c,D,e,pen");
  void *p;
  MPROC_PASS(mproc_list_pop_alloc(l, 0, &p, &len));
  assert_string_equal(p, "front");
  free(p);
  MPROC_PASS(mproc_list_pop_alloc(l, -1, NULL, NULL)); /* discard */
  MPROC_PASS(mproc_list_get_alloc(l, 1, &p, &len));
  assert_string_equal(p, "b");
  free(p);
  expect(l, "a,b,c,D,e");
  size_t n;
  MPROC_PASS(mproc_list_len(l, &n));
  assert_int_equal(n, 5);
  MPROC_PASS(mproc_list_clear(l));
  MPROC_PASS(mproc_list_len(l, &n));
  assert_int_equal(n, 0);
  MPROC_ASSERT_RC(mproc_list_pop(l, -1, buf, sizeof buf, &len), MPROC_EEMPTY);
  MPROC_ASSERT_RC(mproc_list_get(l, 0, buf, sizeof buf, &len), -ERANGE);
  MPROC_PASS(mproc_list_insert(l, 3, S("only")));
  expect(l, "only");
  MPROC_PASS(mproc_list_append(l, NULL, 0)); /* empty item */
  MPROC_PASS(mproc_list_get(l, 1, NULL, 0, &len));
  assert_int_equal(len, 0);
  MPROC_PASS(mproc_list_destroy(l));
}

static void bad_input(void **state) {
  (void)state;
  mproc_list_t *l;
  char buf[4];
  size_t n;
  MPROC_ASSERT_RC(mproc_list_create(NULL, NULL), -EINVAL);
  MPROC_ASSERT_RC(mproc_list_create(&l, buf), -EINVAL);
  MPROC_PASS(mproc_list_create(&l, NULL));
  MPROC_ASSERT_RC(mproc_list_append(NULL, S("a")), -EINVAL);
  MPROC_ASSERT_RC(mproc_list_append(l, NULL, 2), -EINVAL);
  MPROC_ASSERT_RC(mproc_list_append(l, "a", (size_t)UINT32_MAX + 1), -EMSGSIZE);
  MPROC_ASSERT_RC(mproc_list_extend(l, NULL, 2), -EINVAL);
  mproc_blob bad[] = {{"a", 1}, {NULL, 3}};
  MPROC_ASSERT_RC(mproc_list_extend(l, bad, 2), -EINVAL);
  MPROC_PASS(mproc_list_extend(l, NULL, 0));
  MPROC_ASSERT_RC(mproc_list_get(l, 0, buf, sizeof buf, NULL), -EINVAL);
  MPROC_ASSERT_RC(mproc_list_get(l, 0, NULL, 3, &n), -EINVAL);
  MPROC_ASSERT_RC(mproc_list_get_alloc(l, 0, NULL, &n), -EINVAL);
  MPROC_ASSERT_RC(mproc_list_set(NULL, 0, S("a")), -EINVAL);
  MPROC_ASSERT_RC(mproc_list_pop(l, 0, buf, sizeof buf, NULL), -EINVAL);
  MPROC_ASSERT_RC(mproc_list_insert(l, 0, NULL, 1), -EINVAL);
  MPROC_ASSERT_RC(mproc_list_len(l, NULL), -EINVAL);
  MPROC_ASSERT_RC(mproc_list_snapshot(l, NULL, &n), -EINVAL);
  MPROC_ASSERT_RC(mproc_list_clear(NULL), -EINVAL);
  static uint64_t not_list[16];
  MPROC_ASSERT_RC(mproc_list_append((mproc_list_t *)not_list, S("a")), -EINVAL);
  MPROC_PASS(mproc_list_destroy(l));
  MPROC_ASSERT_RC(mproc_list_append(l, S("a")), MPROC_EDESTROYED);
  MPROC_ASSERT_RC(mproc_list_len(l, &n), MPROC_EDESTROYED);
  MPROC_PASS(mproc_list_destroy(NULL));
}

/* A FIFO through the ring: wrap-around, growth, shrink, memory return. */
static void fifo_and_memory(void **state) {
  (void)state;
  size_t before = heap_used();
  mproc_list_t *l;
  MPROC_PASS(mproc_list_create(&l, NULL));
  int next_in = 0, next_out = 0;
  for (int round = 0; round < 50; round++) {
    int burst = (round * 37) % 300 + 1;
    for (int i = 0; i < burst; i++, next_in++)
      MPROC_PASS(mproc_list_append(l, &next_in, sizeof next_in));
    int take = burst - (round % 3);
    for (int i = 0; i < take && next_out < next_in; i++, next_out++) {
      int x;
      size_t len;
      MPROC_PASS(mproc_list_pop(l, 0, &x, sizeof x, &len));
      assert_int_equal(x, next_out);
    }
    MPROC_PASS(mproc__list_validate(l));
  }
  /* Middle inserts and pops keep order. */
  int marker = -7;
  MPROC_PASS(mproc_list_insert(l, 3, &marker, sizeof marker));
  int x;
  size_t len;
  MPROC_PASS(mproc_list_pop(l, 3, &x, sizeof x, &len));
  assert_int_equal(x, marker);
  while (next_out < next_in) {
    MPROC_PASS(mproc_list_pop(l, 0, &x, sizeof x, &len));
    assert_int_equal(x, next_out++);
  }
  MPROC_PASS(mproc__list_validate(l));
  for (int i = 0; i < 10000; i++) MPROC_PASS(mproc_list_append(l, &i, sizeof i));
  MPROC_PASS(mproc_list_clear(l));
  MPROC_PASS(mproc_list_destroy(l));
  assert_int_equal(heap_used(), before);
}

static void concurrent_appends(void **state) {
  (void)state;
  mproc_list_t *l;
  MPROC_PASS(mproc_list_create(&l, NULL));
  enum { P = 4, N = 3000 };
  pid_t pids[P];
  for (int p = 0; p < P; p++) {
    pids[p] = fork();
    if (pids[p] == 0) {
      int bad = 0;
      for (int i = 0; i < N; i++) {
        int v = p * N + i;
        bad |= mproc_list_append(l, &v, sizeof v) != 0;
      }
      _exit(bad);
    }
  }
  for (int p = 0; p < P; p++) {
    int st;
    waitpid(pids[p], &st, 0);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  }
  mproc_blob *b;
  size_t n;
  MPROC_PASS(mproc_list_snapshot(l, &b, &n));
  assert_int_equal(n, P * N);
  int last[P];
  for (int p = 0; p < P; p++) last[p] = -1;
  for (size_t i = 0; i < n; i++) {
    int v;
    memcpy(&v, b[i].data, sizeof v);
    /* Each process's items appear in its own order. */
    assert_true(v % N > last[v / N]);
    last[v / N] = v % N;
  }
  mproc_blobs_free(b);
  MPROC_PASS(mproc_list_destroy(l));
}

/* Items are "tag:seq" with tag = who, seq strictly increasing per tag; every
 * op keeps the per-tag order, so a torn op would show as a bad item or a
 * broken invariant. */
static void chaos_loop(mproc_list_t *l, int tag) {
  srand((unsigned)tag * 7919u);
  for (int seq = 0;; seq++) {
    char it[32];
    int n = snprintf(it, sizeof it, "%d:%d", tag, seq);
    int op = rand() % 10;
    if (op < 4) mproc_list_append(l, it, (size_t)n);
    else if (op < 5) {
      mproc_blob b[3] = {{it, (size_t)n}, {it, (size_t)n}, {it, (size_t)n}};
      mproc_list_extend(l, b, 3);
    } else if (op < 6) mproc_list_insert(l, rand() % 50, it, (size_t)n);
    else if (op < 9) mproc_list_pop_alloc(l, op == 6 ? 0 : op == 7 ? -1 : rand() % 20, NULL, NULL);
    else if (rand() % 100 == 0) mproc_list_clear(l);
    else mproc_list_set(l, rand() % 10, it, (size_t)n);
  }
}

static void survives_random_kills(void **state) {
  (void)state;
  mproc_list_t *l;
  MPROC_PASS(mproc_list_create(&l, NULL));
  srand((unsigned)getpid());
  for (int round = 0; round < 40; round++) {
    pid_t kids[2];
    for (int c = 0; c < 2; c++) {
      kids[c] = fork();
      if (kids[c] == 0) chaos_loop(l, round * 2 + c);
    }
    usleep(2000 + (useconds_t)(rand() % 20000));
    for (int c = 0; c < 2; c++) {
      kill(kids[c], SIGKILL);
      waitpid(kids[c], NULL, 0);
    }
    MPROC_PASS(mproc__list_validate(l));
    mproc_blob *b;
    size_t n;
    MPROC_PASS(mproc_list_snapshot(l, &b, &n));
    for (size_t i = 0; i < n; i++) {
      int tag, seq;
      assert_int_equal(sscanf(b[i].data, "%d:%d", &tag, &seq), 2);
      assert_true(tag >= 0 && tag < 80 && seq >= 0);
    }
    mproc_blobs_free(b);
  }
  MPROC_PASS(mproc_list_destroy(l));
}

static void million_items(void **state) {
  (void)state;
  size_t before = heap_used();
  mproc_list_t *l;
  MPROC_PASS(mproc_list_create(&l, NULL));
  enum { N = 2000000 };
  for (int i = 0; i < N; i++) MPROC_PASS(mproc_list_append(l, &i, sizeof i));
  for (int i = 0; i < N; i++) {
    int x;
    size_t len;
    MPROC_PASS(mproc_list_pop(l, -1, &x, sizeof x, &len));
    assert_int_equal(x, N - 1 - i);
  }
  MPROC_PASS(mproc_list_destroy(l));
  assert_int_equal(heap_used(), before);
}

static const struct CMUnitTest tests[] = {
    MPROC_TEST(python_semantics),
    MPROC_TEST(bad_input),
    MPROC_TEST(fifo_and_memory),
    MPROC_TEST(concurrent_appends),
    MPROC_TEST(survives_random_kills),
    MPROC_SLOW_TEST(million_items),
};

MPROC_TEST_MAIN(tests)
