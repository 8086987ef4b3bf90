/* test_dict.c - the shared-heap dict: API contract, bad input, iteration,
 * memory return, concurrent processes, and random SIGKILLs mid-operation. */
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

static void basic_ops(void **state) {
  (void)state;
  mproc_dict_t *d;
  MPROC_PASS(mproc_dict_create(&d, NULL));
  size_t n = 99;
  MPROC_PASS(mproc_dict_len(d, &n));
  assert_int_equal(n, 0);
  MPROC_PASS(mproc_dict_set(d, S("alpha"), S("one")));
  MPROC_PASS(mproc_dict_set(d, S("beta"), S("two")));
  MPROC_PASS(mproc_dict_set(d, "", 0, "", 0)); /* empty key and value */
  assert_int_equal(mproc_dict_contains(d, S("alpha")), 1);
  assert_int_equal(mproc_dict_contains(d, "", 0), 1);
  assert_int_equal(mproc_dict_contains(d, S("gamma")), 0);
  char buf[16];
  size_t vl;
  MPROC_PASS(mproc_dict_get(d, S("beta"), buf, sizeof buf, &vl));
  assert_int_equal(vl, 3);
  assert_memory_equal(buf, "two", 3);
  MPROC_PASS(mproc_dict_get(d, "", 0, buf, sizeof buf, &vl));
  assert_int_equal(vl, 0);
  /* Replace keeps the count. */
  MPROC_PASS(mproc_dict_set(d, S("beta"), S("deux!")));
  MPROC_PASS(mproc_dict_len(d, &n));
  assert_int_equal(n, 3);
  void *v;
  MPROC_PASS(mproc_dict_get_alloc(d, S("beta"), &v, &vl));
  assert_int_equal(vl, 5);
  assert_string_equal(v, "deux!"); /* NUL-terminated copy */
  free(v);
  MPROC_PASS(mproc_dict_delete(d, S("alpha")));
  MPROC_ASSERT_RC(mproc_dict_delete(d, S("alpha")), -ENOENT);
  MPROC_ASSERT_RC(mproc_dict_get(d, S("alpha"), buf, sizeof buf, &vl), -ENOENT);
  MPROC_ASSERT_RC(mproc_dict_get_alloc(d, S("alpha"), &v, &vl), -ENOENT);
  MPROC_PASS(mproc_dict_len(d, &n));
  assert_int_equal(n, 2);
  MPROC_PASS(mproc__dict_validate(d));
  MPROC_PASS(mproc_dict_clear(d));
  MPROC_PASS(mproc_dict_len(d, &n));
  assert_int_equal(n, 0);
  assert_int_equal(mproc_dict_contains(d, S("beta")), 0);
  MPROC_PASS(mproc_dict_set(d, S("after"), S("clear")));
  MPROC_PASS(mproc__dict_validate(d));
  MPROC_PASS(mproc_dict_destroy(d));
}

static void get_too_short(void **state) {
  (void)state;
  mproc_dict_t *d;
  MPROC_PASS(mproc_dict_create(&d, NULL));
  MPROC_PASS(mproc_dict_set(d, S("k"), S("0123456789")));
  char buf[4] = "xyz";
  size_t vl = 0;
  MPROC_ASSERT_RC(mproc_dict_get(d, S("k"), buf, sizeof buf, &vl), MPROC_ETOOSHORT);
  assert_int_equal(vl, 10);
  assert_string_equal(buf, "xyz"); /* untouched */
  /* Length probe with no buffer. */
  MPROC_ASSERT_RC(mproc_dict_get(d, S("k"), NULL, 0, &vl), MPROC_ETOOSHORT);
  assert_int_equal(vl, 10);
  char big[10];
  MPROC_PASS(mproc_dict_get(d, S("k"), big, sizeof big, &vl));
  assert_memory_equal(big, "0123456789", 10);
  MPROC_PASS(mproc_dict_destroy(d));
}

static void bad_input(void **state) {
  (void)state;
  mproc_dict_t *d;
  char buf[8];
  size_t n;
  void *v;
  MPROC_ASSERT_RC(mproc_dict_create(NULL, NULL), -EINVAL);
  MPROC_ASSERT_RC(mproc_dict_create(&d, buf), -EINVAL); /* opts reserved */
  MPROC_PASS(mproc_dict_create(&d, NULL));
  MPROC_ASSERT_RC(mproc_dict_set(NULL, S("a"), S("b")), -EINVAL);
  MPROC_ASSERT_RC(mproc_dict_set(d, NULL, 3, S("b")), -EINVAL);
  MPROC_ASSERT_RC(mproc_dict_set(d, S("a"), NULL, 3), -EINVAL);
  MPROC_ASSERT_RC(mproc_dict_set(d, "a", (size_t)UINT32_MAX + 1, S("b")), -EMSGSIZE);
  MPROC_ASSERT_RC(mproc_dict_get(d, S("a"), buf, sizeof buf, NULL), -EINVAL);
  MPROC_ASSERT_RC(mproc_dict_get(d, S("a"), NULL, 4, &n), -EINVAL);
  MPROC_ASSERT_RC(mproc_dict_get(NULL, S("a"), buf, sizeof buf, &n), -EINVAL);
  MPROC_ASSERT_RC(mproc_dict_get_alloc(d, S("a"), NULL, &n), -EINVAL);
  MPROC_ASSERT_RC(mproc_dict_delete(NULL, S("a")), -EINVAL);
  MPROC_ASSERT_RC(mproc_dict_contains(d, NULL, 1), -EINVAL);
  MPROC_ASSERT_RC(mproc_dict_len(d, NULL), -EINVAL);
  MPROC_ASSERT_RC(mproc_dict_len(NULL, &n), -EINVAL);
  MPROC_ASSERT_RC(mproc_dict_clear(NULL), -EINVAL);
  MPROC_ASSERT_RC(mproc_dict_keys(d, NULL, &n), -EINVAL);
  MPROC_ASSERT_RC(mproc_dict_items(d, (mproc_blob **)&v, NULL), -EINVAL);
  MPROC_ASSERT_RC(mproc_dict_iter_create(d, NULL), -EINVAL);
  MPROC_ASSERT_RC(mproc_dict_iter_next(NULL, NULL, NULL, NULL, NULL), -EINVAL);
  /* A pointer that is not a heap dict. */
  static uint64_t not_dict[16];
  MPROC_ASSERT_RC(mproc_dict_set((mproc_dict_t *)not_dict, S("a"), S("b")), -EINVAL);
  /* Use after destroy. */
  MPROC_PASS(mproc_dict_destroy(d));
  MPROC_ASSERT_RC(mproc_dict_set(d, S("a"), S("b")), MPROC_EDESTROYED);
  MPROC_ASSERT_RC(mproc_dict_len(d, &n), MPROC_EDESTROYED);
  MPROC_PASS(mproc_dict_destroy(NULL));
  MPROC_PASS(mproc_dict_iter_destroy(NULL));
}

static void snapshots(void **state) {
  (void)state;
  mproc_dict_t *d;
  MPROC_PASS(mproc_dict_create(&d, NULL));
  int seen[100] = {0};
  for (int i = 0; i < 100; i++) {
    char k[16], v[16];
    snprintf(k, sizeof k, "k%d", i);
    snprintf(v, sizeof v, "v%d", i * 3);
    MPROC_PASS(mproc_dict_set(d, S(k), S(v)));
  }
  mproc_blob *items;
  size_t n;
  MPROC_PASS(mproc_dict_items(d, &items, &n));
  assert_int_equal(n, 100);
  for (size_t i = 0; i < n; i++) {
    int k, v;
    assert_int_equal(sscanf(items[2 * i].data, "k%d", &k), 1);
    assert_int_equal(sscanf(items[2 * i + 1].data, "v%d", &v), 1);
    assert_int_equal(v, 3 * k);
    assert_int_equal(items[2 * i].len, strlen(items[2 * i].data));
    seen[k]++;
  }
  for (int i = 0; i < 100; i++) assert_int_equal(seen[i], 1);
  mproc_blobs_free(items);
  mproc_blob *keys;
  MPROC_PASS(mproc_dict_keys(d, &keys, &n));
  assert_int_equal(n, 100);
  mproc_blobs_free(keys);
  MPROC_PASS(mproc_dict_clear(d));
  MPROC_PASS(mproc_dict_keys(d, &keys, &n));
  assert_int_equal(n, 0);
  mproc_blobs_free(keys);
  MPROC_PASS(mproc_dict_destroy(d));
}

static void iterator(void **state) {
  (void)state;
  mproc_dict_t *d;
  MPROC_PASS(mproc_dict_create(&d, NULL));
  for (int i = 0; i < 50; i++) {
    char k[16];
    snprintf(k, sizeof k, "%d", i);
    MPROC_PASS(mproc_dict_set(d, S(k), &i, sizeof i));
  }
  mproc_dict_iter_t *it;
  MPROC_PASS(mproc_dict_iter_create(d, &it));
  int sum = 0, cnt = 0, rc;
  const void *k, *v;
  size_t kl, vl;
  while ((rc = mproc_dict_iter_next(it, &k, &kl, &v, &vl)) == 0) {
    int x;
    assert_int_equal(vl, sizeof x);
    memcpy(&x, v, sizeof x);
    assert_int_equal(atoi(k), x);
    /* Replacing values while iterating is allowed (as in Python). */
    int y = x * 2;
    MPROC_PASS(mproc_dict_set(d, k, kl, &y, sizeof y));
    sum += x;
    cnt++;
  }
  MPROC_ASSERT_RC(rc, MPROC_ESTOPITER);
  MPROC_ASSERT_RC(mproc_dict_iter_next(it, &k, &kl, &v, &vl), MPROC_ESTOPITER);
  assert_int_equal(cnt, 50);
  assert_int_equal(sum, 49 * 50 / 2);
  MPROC_PASS(mproc_dict_iter_destroy(it));
  /* Adding a key during iteration is detected. */
  MPROC_PASS(mproc_dict_iter_create(d, &it));
  MPROC_PASS(mproc_dict_iter_next(it, NULL, NULL, NULL, NULL));
  MPROC_PASS(mproc_dict_set(d, S("new"), S("key")));
  MPROC_ASSERT_RC(mproc_dict_iter_next(it, &k, &kl, &v, &vl), MPROC_ESTATE);
  MPROC_PASS(mproc_dict_iter_destroy(it));
  /* An empty dict iterates nothing. */
  MPROC_PASS(mproc_dict_clear(d));
  MPROC_PASS(mproc_dict_iter_create(d, &it));
  MPROC_ASSERT_RC(mproc_dict_iter_next(it, &k, &kl, &v, &vl), MPROC_ESTOPITER);
  MPROC_PASS(mproc_dict_iter_destroy(it));
  MPROC_PASS(mproc_dict_destroy(d));
}

/* Inserting, deleting and destroying returns heap memory (entries and
 * table shrink). */
static void memory_returns(void **state) {
  (void)state;
  size_t before = heap_used();
  mproc_dict_t *d;
  MPROC_PASS(mproc_dict_create(&d, NULL));
  size_t base = heap_used();
  enum { N = 100000 };
  for (int i = 0; i < N; i++) MPROC_PASS(mproc_dict_set(d, &i, sizeof i, &i, sizeof i));
  size_t full = heap_used();
  assert_true(full > base + N * 16);
  MPROC_PASS(mproc__dict_validate(d));
  for (int i = 0; i < N; i++) {
    int x;
    size_t vl;
    MPROC_PASS(mproc_dict_get(d, &i, sizeof i, &x, sizeof x, &vl));
    assert_int_equal(x, i);
  }
  for (int i = 0; i < N; i++) MPROC_PASS(mproc_dict_delete(d, &i, sizeof i));
  MPROC_PASS(mproc__dict_validate(d));
  /* Only the minimal table may remain. */
  assert_true(heap_used() <= base + 4096); /* the shards' minimal tables */
  for (int i = 0; i < 1000; i++) MPROC_PASS(mproc_dict_set(d, &i, sizeof i, &i, sizeof i));
  MPROC_PASS(mproc_dict_clear(d));
  assert_true(heap_used() <= base + 4096); /* the shards' minimal tables */
  MPROC_PASS(mproc_dict_destroy(d));
  assert_int_equal(heap_used(), before);
}

/* Four processes insert, read back and delete their own keys and bump a
 * shared set of keys; all must agree at the end. */
static void concurrent_processes(void **state) {
  (void)state;
  mproc_dict_t *d;
  MPROC_PASS(mproc_dict_create(&d, NULL));
  enum { P = 4, N = 5000 };
  pid_t pids[P];
  for (int p = 0; p < P; p++) {
    pids[p] = fork();
    assert_true(pids[p] >= 0);
    if (pids[p] == 0) {
      int bad = 0;
      for (int i = 0; i < N; i++) {
        char k[32];
        int v = p * N + i, got = -1;
        size_t vl;
        snprintf(k, sizeof k, "p%d-%d", p, i);
        bad |= mproc_dict_set(d, S(k), &v, sizeof v) != 0;
        bad |= mproc_dict_get(d, S(k), &got, sizeof got, &vl) != 0 || got != v;
        if (i % 2) bad |= mproc_dict_delete(d, S(k)) != 0;
      }
      _exit(bad);
    }
  }
  for (int p = 0; p < P; p++) {
    int st;
    assert_int_equal(waitpid(pids[p], &st, 0), pids[p]);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  }
  size_t n;
  MPROC_PASS(mproc_dict_len(d, &n));
  assert_int_equal(n, P * N / 2);
  MPROC_PASS(mproc__dict_validate(d));
  MPROC_PASS(mproc_dict_destroy(d));
}

/* Children hammer the dict with every mutating call; the parent SIGKILLs
 * them at random moments. After each kill the dict must be consistent and
 * every value must belong to its key (never half-written). */
static void chaos_loop(mproc_dict_t *d, unsigned seed) {
  srand(seed);
  for (;;) {
    int k = rand() % 3000, op = rand() % 10;
    char key[16], val[64];
    int kl = snprintf(key, sizeof key, "%d", k);
    int vl = snprintf(val, sizeof val, "%d:%0*d", k, rand() % 40, k);
    if (op < 5) mproc_dict_set(d, key, (size_t)kl, val, (size_t)vl);
    else if (op < 8) mproc_dict_delete(d, key, (size_t)kl);
    else if (op == 8 && rand() % 200 == 0) mproc_dict_clear(d);
    else {
      void *v;
      size_t n;
      if (mproc_dict_get_alloc(d, key, (size_t)kl, &v, &n) == 0) free(v);
    }
  }
}

static void check_values(mproc_dict_t *d) {
  MPROC_PASS(mproc__dict_validate(d));
  mproc_blob *items;
  size_t n, len;
  MPROC_PASS(mproc_dict_items(d, &items, &n));
  MPROC_PASS(mproc_dict_len(d, &len));
  assert_int_equal(n, len);
  for (size_t i = 0; i < n; i++) {
    int k = atoi(items[2 * i].data), a, b;
    assert_int_equal(sscanf(items[2 * i + 1].data, "%d:%d", &a, &b), 2);
    assert_int_equal(a, k);
    assert_int_equal(b, k);
  }
  mproc_blobs_free(items);
}

static void survives_random_kills(void **state) {
  (void)state;
  mproc_dict_t *d;
  MPROC_PASS(mproc_dict_create(&d, NULL));
  srand((unsigned)getpid());
  for (int round = 0; round < 40; round++) {
    pid_t kids[2];
    for (int c = 0; c < 2; c++) {
      kids[c] = fork();
      assert_true(kids[c] >= 0);
      if (kids[c] == 0) chaos_loop(d, (unsigned)(round * 2 + c + 1));
    }
    usleep(2000 + (useconds_t)(rand() % 20000));
    for (int c = 0; c < 2; c++) {
      kill(kids[c], SIGKILL);
      waitpid(kids[c], NULL, 0);
    }
    check_values(d); /* repairs the dict if a kill hit mid-call */
  }
  MPROC_PASS(mproc_dict_clear(d));
  MPROC_PASS(mproc_dict_destroy(d));
}

/* A few million small entries; memory comes back after deletion. */
static void millions_of_entries(void **state) {
  (void)state;
  mproc_dict_t *d;
  size_t before = heap_used();
  MPROC_PASS(mproc_dict_create(&d, NULL));
  enum { N = 3000000 };
  for (uint32_t i = 0; i < N; i++) MPROC_PASS(mproc_dict_set(d, &i, sizeof i, &i, 2));
  size_t n;
  MPROC_PASS(mproc_dict_len(d, &n));
  assert_int_equal(n, N);
  for (uint32_t i = 0; i < N; i += 7) {
    uint32_t x = 0;
    size_t vl;
    MPROC_PASS(mproc_dict_get(d, &i, sizeof i, &x, sizeof x, &vl));
    assert_int_equal(vl, 2);
    assert_int_equal(x, i & 0xffff);
  }
  for (uint32_t i = 0; i < N; i++) MPROC_PASS(mproc_dict_delete(d, &i, sizeof i));
  MPROC_PASS(mproc_dict_len(d, &n));
  assert_int_equal(n, 0);
  MPROC_PASS(mproc_dict_destroy(d));
  assert_int_equal(heap_used(), before);
}

static const struct CMUnitTest tests[] = {
    MPROC_TEST(basic_ops),
    MPROC_TEST(get_too_short),
    MPROC_TEST(bad_input),
    MPROC_TEST(snapshots),
    MPROC_TEST(iterator),
    MPROC_TEST(memory_returns),
    MPROC_TEST(concurrent_processes),
    MPROC_TEST(survives_random_kills),
    MPROC_SLOW_TEST(millions_of_entries),
};

MPROC_TEST_MAIN(tests)
