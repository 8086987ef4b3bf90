/* test_value.c - Value and Array (synchronized and raw): every call, bad
 * input, get_lock() with the lock API (no self-deadlock), counters from many
 * processes, a Value created after fork reaching the child through an
 * earlier Value, a lock holder killed mid-update, any element size. */
#include <string.h>

#include "sync_util.h"

static void value_basic(void **state) {
  (void)state;
  mproc_value_t *v;
  int32_t init = 1000, x = 0;
  MPROC_PASS(mproc_value_create(&v, sizeof init, &init, NULL));
  assert_int_equal(mproc_value_size(v), 4);
  MPROC_PASS(mproc_value_get(v, &x, sizeof x));
  assert_int_equal(x, 1000);
  x = -5;
  MPROC_PASS(mproc_value_set(v, &x, sizeof x));
  assert_int_equal(*(int32_t *)mproc_value_ptr(v), -5);
  assert_true(((uintptr_t)mproc_value_ptr(v) & 15) == 0);
  assert_true(mproc_heap_contains(mproc_value_ptr(v)));
  mproc_lock_t *l = NULL;
  MPROC_PASS(mproc_value_get_lock(v, &l));
  assert_non_null(l);
  MPROC_PASS(mproc_lock_acquire(l, -1));
  MPROC_ASSERT_RC(mproc_lock_acquire(l, 0), -EDEADLK);
  MPROC_PASS(mproc_lock_release(l));
  MPROC_PASS(mproc_value_destroy(v));
  MPROC_ASSERT_RC(mproc_value_destroy(NULL), 0);
  /* Zeroed when init is NULL. */
  MPROC_PASS(mproc_value_create(&v, 64, NULL, NULL));
  unsigned char buf[64];
  memset(buf, 0xff, sizeof buf);
  MPROC_PASS(mproc_value_get(v, buf, sizeof buf));
  for (int i = 0; i < 64; i++) assert_int_equal(buf[i], 0);
  MPROC_PASS(mproc_value_destroy(v));
}

static void value_typed(void **state) {
  (void)state;
  mproc_value_t *v, *d;
  int64_t x = 0, r = 0;
  double f = 0;
  MPROC_PASS(mproc_value_create(&v, 8, NULL, NULL));
  MPROC_PASS(mproc_value_set_i64(v, 40));
  MPROC_PASS(mproc_value_add_i64(v, 2, &r));
  assert_int_equal(r, 42);
  MPROC_PASS(mproc_value_add_i64(v, -50, NULL));
  MPROC_PASS(mproc_value_get_i64(v, &x));
  assert_int_equal(x, -8);
  MPROC_PASS(mproc_value_set_i64(v, INT64_MAX));
  MPROC_PASS(mproc_value_add_i64(v, 1, &r)); /* wraps, no UB */
  assert_true(r == INT64_MIN);
  MPROC_PASS(mproc_value_create(&d, sizeof(double), NULL, &(mproc_value_opts){.flags = MPROC_VALUE_RAW}));
  MPROC_PASS(mproc_value_set_f64(d, 2.5));
  MPROC_PASS(mproc_value_get_f64(d, &f));
  assert_true(f == 2.5);
  MPROC_PASS(mproc_value_destroy(v));
  MPROC_PASS(mproc_value_destroy(d));
}

static void value_bad_input(void **state) {
  (void)state;
  mproc_value_t *v;
  mproc_array_t *a;
  int32_t x = 0;
  int64_t y;
  double f;
  mproc_lock_t *l;
  MPROC_PASS(mproc_lock_create(&l));
  MPROC_ASSERT_RC(mproc_value_create(NULL, 4, NULL, NULL), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_value_create(&v, 0, NULL, NULL), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_value_create(&v, SIZE_MAX, NULL, NULL), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_value_create(&v, (size_t)1 << 45, NULL, NULL), MPROC_ENOMEM);
  MPROC_ASSERT_RC(mproc_value_create(&v, 4, NULL, &(mproc_value_opts){.flags = 8}), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_value_create(&v, 4, NULL,
                                     &(mproc_value_opts){.flags = MPROC_VALUE_RAW, .lock = l}),
                  MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_value_create(&v, 4, NULL, &(mproc_value_opts){.lock = (mproc_lock_t *)(void *)&x}),
                  MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_array_create(NULL, 4, 2, NULL, NULL), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_array_create(&a, 0, 2, NULL, NULL), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_array_create(&a, 4, 0, NULL, NULL), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_array_create(&a, SIZE_MAX / 2, 4, NULL, NULL), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_array_create(&a, 8, (size_t)1 << 42, NULL, NULL), MPROC_ENOMEM);

  MPROC_PASS(mproc_value_create(&v, 4, NULL, NULL));
  MPROC_ASSERT_RC(mproc_value_get(v, &x, 8), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_value_get(v, NULL, 4), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_value_set(v, &x, 2), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_value_set(v, NULL, 4), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_value_get(NULL, &x, 4), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_value_set(NULL, &x, 4), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_value_get_i64(v, &y), MPROC_EINVAL); /* size 4 */
  MPROC_ASSERT_RC(mproc_value_set_i64(v, 1), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_value_add_i64(v, 1, NULL), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_value_get_f64(v, &f), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_value_set_f64(v, 1), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_value_get_lock(v, NULL), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_value_get_lock(NULL, &l), MPROC_EINVAL);
  assert_null(mproc_value_ptr(NULL));
  assert_int_equal(mproc_value_size(NULL), 0);
  /* Value and Array are different kinds. */
  MPROC_ASSERT_RC(mproc_array_get((mproc_array_t *)(void *)v, 0, &x), MPROC_EINVAL);
  MPROC_PASS(mproc_value_destroy(v));
  MPROC_ASSERT_RC(mproc_value_get(v, &x, 4), MPROC_EDESTROYED);
  MPROC_ASSERT_RC(mproc_value_set(v, &x, 4), MPROC_EDESTROYED);
  MPROC_ASSERT_RC(mproc_value_get_lock(v, &l), MPROC_EDESTROYED);
  MPROC_ASSERT_RC(mproc_value_add_i64(v, 1, NULL), MPROC_EDESTROYED);
  MPROC_ASSERT_RC(mproc_value_destroy(v), MPROC_EDESTROYED);
  assert_null(mproc_value_ptr(v));
  assert_int_equal(mproc_value_size(v), 0);
  /* A raw value has no lock. */
  MPROC_PASS(mproc_value_create(&v, 4, NULL, &(mproc_value_opts){.flags = MPROC_VALUE_RAW}));
  MPROC_ASSERT_RC(mproc_value_get_lock(v, &l), MPROC_ENOTSUP);
  MPROC_PASS(mproc_value_destroy(v));
  /* The caller's lock destroyed under a value that uses it. */
  MPROC_PASS(mproc_lock_create(&l));
  MPROC_PASS(mproc_value_create(&v, 4, NULL, &(mproc_value_opts){.lock = l}));
  MPROC_PASS(mproc_lock_destroy(l));
  MPROC_ASSERT_RC(mproc_value_get(v, &x, 4), MPROC_EDESTROYED);
  MPROC_PASS(mproc_value_destroy(v));
  MPROC_ASSERT_RC(mproc_value_create(&v, 4, NULL, &(mproc_value_opts){.lock = l}), MPROC_EDESTROYED);
}

static void array_basic(void **state) {
  (void)state;
  mproc_array_t *a;
  int64_t init[10], out[10];
  for (int i = 0; i < 10; i++) init[i] = i * i;
  MPROC_PASS(mproc_array_create(&a, 8, 10, init, NULL));
  assert_int_equal(mproc_array_len(a), 10);
  assert_int_equal(mproc_array_elem_size(a), 8);
  int64_t x;
  MPROC_PASS(mproc_array_get(a, 3, &x));
  assert_int_equal(x, 9);
  x = -1;
  MPROC_PASS(mproc_array_set(a, 9, &x));
  MPROC_PASS(mproc_array_get_i64(a, 9, &x));
  assert_int_equal(x, -1);
  MPROC_PASS(mproc_array_set_i64(a, 0, 77));
  MPROC_PASS(mproc_array_set_f64(a, 1, 0.5));
  double f;
  MPROC_PASS(mproc_array_get_f64(a, 1, &f));
  assert_true(f == 0.5);
  MPROC_PASS(mproc_array_read(a, 0, 10, out));
  assert_int_equal(out[0], 77);
  assert_int_equal(out[5], 25);
  int64_t two[2] = {100, 200};
  MPROC_PASS(mproc_array_write(a, 8, 2, two));
  MPROC_PASS(mproc_array_read(a, 8, 2, out));
  assert_int_equal(out[0], 100);
  assert_int_equal(out[1], 200);
  MPROC_PASS(mproc_array_read(a, 10, 0, out)); /* empty slice at the end */
  MPROC_PASS(mproc_array_read(a, 3, 0, NULL));  /* empty: no buffer needed */
  MPROC_PASS(mproc_array_write(a, 10, 0, NULL));
  MPROC_ASSERT_RC(mproc_array_write(a, 11, 0, NULL), MPROC_ERANGE);
  MPROC_ASSERT_RC(mproc_array_get(a, 10, &x), MPROC_ERANGE);
  MPROC_ASSERT_RC(mproc_array_set(a, SIZE_MAX, &x), MPROC_ERANGE);
  MPROC_ASSERT_RC(mproc_array_read(a, 9, 2, out), MPROC_ERANGE);
  MPROC_ASSERT_RC(mproc_array_write(a, 11, 0, out), MPROC_ERANGE);
  MPROC_ASSERT_RC(mproc_array_write(a, 1, SIZE_MAX, out), MPROC_ERANGE);
  MPROC_ASSERT_RC(mproc_array_get_i64(a, 10, &x), MPROC_ERANGE);
  MPROC_ASSERT_RC(mproc_array_get(a, 0, NULL), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_array_read(a, 0, 1, NULL), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_array_get(NULL, 0, &x), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_array_get_lock(a, NULL), MPROC_EINVAL);
  assert_int_equal(((int64_t *)mproc_array_ptr(a))[5], 25);
  mproc_lock_t *l;
  MPROC_PASS(mproc_array_get_lock(a, &l));
  MPROC_PASS(mproc_array_destroy(a));
  MPROC_ASSERT_RC(mproc_array_get(a, 0, &x), MPROC_EDESTROYED);
  MPROC_ASSERT_RC(mproc_array_read(a, 0, 1, out), MPROC_EDESTROYED);
  MPROC_ASSERT_RC(mproc_array_get_lock(a, &l), MPROC_EDESTROYED);
  MPROC_ASSERT_RC(mproc_array_destroy(a), MPROC_EDESTROYED);
  assert_null(mproc_array_ptr(a));
  assert_int_equal(mproc_array_len(a), 0);
  assert_int_equal(mproc_array_elem_size(a), 0);
  MPROC_ASSERT_RC(mproc_array_destroy(NULL), 0);
  /* Odd element sizes; typed helpers refuse them. */
  struct rec { char name[13]; } r = {"hello world!"}, r2;
  MPROC_PASS(mproc_array_create(&a, sizeof r, 1000, NULL, &(mproc_value_opts){.flags = MPROC_VALUE_RAW}));
  MPROC_PASS(mproc_array_set(a, 999, &r));
  MPROC_PASS(mproc_array_get(a, 999, &r2));
  assert_string_equal(r2.name, "hello world!");
  MPROC_ASSERT_RC(mproc_array_get_i64(a, 0, &x), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_array_set_f64(a, 0, 1), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_array_get_lock(a, &l), MPROC_ENOTSUP);
  MPROC_PASS(mproc_array_destroy(a));
}

/* The Array's typed and untyped accessors on bad input: index past the end,
 * element size other than 8, NULL arrays and buffers, a Value passed as an
 * Array, a destroyed array; the Value's typed getters with NULL out. */
static void array_bad_input(void **state) {
  (void)state;
  mproc_array_t *a, *odd;
  mproc_value_t *v;
  int64_t x = 5;
  double f = 5;
  MPROC_PASS(mproc_array_create(&a, 8, 4, NULL, NULL));
  MPROC_PASS(mproc_array_create(&odd, 4, 4, NULL, NULL));
  MPROC_PASS(mproc_value_create(&v, 8, NULL, NULL));
  /* Index past the end, for every typed accessor. */
  MPROC_ASSERT_RC(mproc_array_set_i64(a, 4, 1), MPROC_ERANGE);
  MPROC_ASSERT_RC(mproc_array_get_i64(a, 4, &x), MPROC_ERANGE);
  MPROC_ASSERT_RC(mproc_array_set_f64(a, 4, 1.0), MPROC_ERANGE);
  MPROC_ASSERT_RC(mproc_array_get_f64(a, 4, &f), MPROC_ERANGE);
  MPROC_ASSERT_RC(mproc_array_get_f64(a, SIZE_MAX, &f), MPROC_ERANGE);
  MPROC_ASSERT_RC(mproc_array_set_i64(a, SIZE_MAX, 1), MPROC_ERANGE);
  assert_true(x == 5 && f == 5); /* outputs untouched */
  /* Element size 4: the 8-byte helpers refuse it, even at a bad index. */
  MPROC_ASSERT_RC(mproc_array_set_i64(odd, 0, 1), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_array_get_i64(odd, 0, &x), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_array_set_f64(odd, 0, 1.0), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_array_get_f64(odd, 0, &f), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_array_get_f64(odd, 99, &f), MPROC_EINVAL);
  int32_t four[4];
  MPROC_PASS(mproc_array_read(odd, 0, 4, four)); /* nothing was written */
  for (int i = 0; i < 4; i++) assert_int_equal(four[i], 0);
  /* NULL array, NULL buffers. */
  MPROC_ASSERT_RC(mproc_array_set_i64(NULL, 0, 1), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_array_get_i64(NULL, 0, &x), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_array_set_f64(NULL, 0, 1.0), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_array_get_f64(NULL, 0, &f), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_array_get_i64(a, 0, NULL), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_array_get_f64(a, 0, NULL), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_array_set(a, 0, NULL), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_array_set(NULL, 0, &x), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_array_write(a, 0, 2, NULL), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_array_write(NULL, 0, 1, &x), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_array_read(NULL, 0, 1, &x), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_array_get_lock(NULL, NULL), MPROC_EINVAL);
  assert_null(mproc_array_ptr(NULL));
  assert_int_equal(mproc_array_len(NULL), 0);
  assert_int_equal(mproc_array_elem_size(NULL), 0);
  MPROC_ASSERT_RC(mproc_value_get_i64(v, NULL), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_value_get_f64(v, NULL), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_value_get_i64(NULL, &x), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_value_get_f64(NULL, &f), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_value_set_i64(NULL, 1), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_value_set_f64(NULL, 1.0), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_value_add_i64(NULL, 1, &x), MPROC_EINVAL);
  /* A Value is not an Array and the other way round. */
  mproc_array_t *not_array = (mproc_array_t *)(void *)v;
  MPROC_ASSERT_RC(mproc_array_set_i64(not_array, 0, 1), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_array_get_f64(not_array, 0, &f), MPROC_EINVAL);
  assert_null(mproc_array_ptr(not_array));
  assert_int_equal(mproc_array_len(not_array), 0);
  assert_int_equal(mproc_array_elem_size(not_array), 0);
  MPROC_ASSERT_RC(mproc_value_get_i64((mproc_value_t *)(void *)a, &x), MPROC_EINVAL);
  assert_null(mproc_value_ptr((mproc_value_t *)(void *)a));
  MPROC_ASSERT_RC(mproc_array_destroy(not_array), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_value_destroy((mproc_value_t *)(void *)a), MPROC_EINVAL);
  /* Destroyed. */
  MPROC_PASS(mproc_array_destroy(a));
  MPROC_ASSERT_RC(mproc_array_set_i64(a, 0, 1), MPROC_EDESTROYED);
  MPROC_ASSERT_RC(mproc_array_get_i64(a, 0, &x), MPROC_EDESTROYED);
  MPROC_ASSERT_RC(mproc_array_set_f64(a, 0, 1.0), MPROC_EDESTROYED);
  MPROC_ASSERT_RC(mproc_array_get_f64(a, 0, &f), MPROC_EDESTROYED);
  MPROC_ASSERT_RC(mproc_array_set(a, 0, &x), MPROC_EDESTROYED);
  MPROC_ASSERT_RC(mproc_array_write(a, 0, 1, &x), MPROC_EDESTROYED);
  MPROC_PASS(mproc_value_destroy(v));
  MPROC_ASSERT_RC(mproc_value_get_i64(v, &x), MPROC_EDESTROYED);
  MPROC_ASSERT_RC(mproc_value_set_f64(v, 1.0), MPROC_EDESTROYED);
  MPROC_PASS(mproc_array_destroy(odd));
}

typedef struct shared {
  mproc_value_t *v;      /* synchronized int64 counter */
  mproc_value_t *raw;    /* raw int64 counter guarded by v's lock */
  mproc_value_t *box;    /* holds a pointer to a Value created later */
  mproc_event_t *ev;
  mproc_array_t *arr;
  volatile int stage;
} shared;

static int adder(void *arg) {
  shared *s = arg;
  mproc_lock_t *l;
  CHILD_RC(mproc_value_get_lock(s->v, &l), 0);
  for (int i = 0; i < 5000; i++) {
    CHILD_RC(mproc_value_add_i64(s->v, 1, NULL), 0);
    /* Python's `with v.get_lock(): v.value += 1`, twice over. */
    CHILD_RC(mproc_lock_acquire(l, -1), 0);
    int64_t x;
    CHILD_RC(mproc_value_get_i64(s->v, &x), 0);
    if (i % 100 == 0) sched_yield();
    CHILD_RC(mproc_value_set_i64(s->v, x + 1), 0);
    int64_t *raw = mproc_value_ptr(s->raw);
    *raw += 1;
    CHILD_RC(mproc_lock_release(l), 0);
  }
  return 0;
}

static void value_counter_processes(void **state) {
  (void)state;
  shared *s = su_shared(sizeof *s);
  MPROC_PASS(mproc_value_create(&s->v, 8, NULL, NULL));
  MPROC_PASS(mproc_value_create(&s->raw, 8, NULL, &(mproc_value_opts){.flags = MPROC_VALUE_RAW}));
  pid_t p[4];
  for (int i = 0; i < 4; i++) p[i] = su_fork(adder, s);
  for (int i = 0; i < 4; i++) SU_JOIN_OK(p[i]);
  int64_t x;
  MPROC_PASS(mproc_value_get_i64(s->v, &x));
  assert_int_equal(x, 4 * 5000 * 2);
  MPROC_PASS(mproc_value_get_i64(s->raw, &x));
  assert_int_equal(x, 4 * 5000);
  MPROC_PASS(mproc_value_destroy(s->v));
  MPROC_PASS(mproc_value_destroy(s->raw));
}

/* Child: started before the Value exists; gets it through s->box. */
static int late_user(void *arg) {
  shared *s = arg;
  CHILD_RC(mproc_event_wait(s->ev, 30), 0);
  mproc_value_t *late = NULL;
  CHILD_RC(mproc_value_get(s->box, &late, sizeof late), 0);
  CHILD_CHECK(late != NULL);
  for (int i = 0; i < 100; i++) CHILD_RC(mproc_value_add_i64(late, 1, NULL), 0);
  return 0;
}

static void value_created_after_fork(void **state) {
  (void)state;
  shared *s = su_shared(sizeof *s);
  MPROC_PASS(mproc_value_create(&s->box, sizeof(mproc_value_t *), NULL, NULL));
  MPROC_PASS(mproc_event_create(&s->ev));
  pid_t p = su_fork(late_user, s);
  mproc_value_t *late;
  MPROC_PASS(mproc_value_create(&late, 8, NULL, NULL));
  MPROC_PASS(mproc_value_set_i64(late, 1000));
  MPROC_PASS(mproc_value_set(s->box, &late, sizeof late));
  MPROC_PASS(mproc_event_set(s->ev));
  SU_JOIN_OK(p);
  int64_t x;
  MPROC_PASS(mproc_value_get_i64(late, &x));
  assert_int_equal(x, 1100);
  MPROC_PASS(mproc_value_destroy(late));
  MPROC_PASS(mproc_value_destroy(s->box));
  MPROC_PASS(mproc_event_destroy(s->ev));
}

/* Child: take the value's lock, scribble half an update, die. */
static int die_mid_update(void *arg) {
  shared *s = arg;
  mproc_lock_t *l;
  CHILD_RC(mproc_array_get_lock(s->arr, &l), 0);
  CHILD_RC(mproc_lock_acquire(l, -1), 0);
  CHILD_RC(mproc_array_set_i64(s->arr, 0, 1), 0); /* lock held: no re-lock */
  s->stage = 1;
  for (;;) pause();
}

static void value_lock_holder_killed(void **state) {
  (void)state;
  shared *s = su_shared(sizeof *s);
  MPROC_PASS(mproc_array_create(&s->arr, 8, 2, NULL, NULL));
  pid_t p = su_fork(die_mid_update, s);
  assert_true(su_await(&s->stage, 1));
  kill(p, SIGKILL);
  assert_int_equal(su_wait(p, NULL), -SIGKILL);
  int64_t two[2] = {-1, -1};
  MPROC_ASSERT_RC(mproc_array_read(s->arr, 0, 2, two), MPROC_EOWNERDEAD);
  assert_int_equal(two[0], 1); /* the half-done update is visible */
  assert_int_equal(two[1], 0);
  MPROC_PASS(mproc_array_set_i64(s->arr, 1, 1)); /* repaired */
  MPROC_PASS(mproc_array_read(s->arr, 0, 2, two));
  assert_int_equal(two[1], 1);
  MPROC_PASS(mproc_array_destroy(s->arr));
}

/* Each child fills its own slice of a shared array of structs. */
typedef struct pt { double x, y, z; } pt;
static int filler(void *arg) {
  shared *s = arg;
  int me = __atomic_fetch_add(&s->stage, 1, __ATOMIC_SEQ_CST);
  pt buf[250];
  for (int i = 0; i < 250; i++) buf[i] = (pt){me, i, me * 1000.0 + i};
  CHILD_RC(mproc_array_write(s->arr, (size_t)me * 250, 250, buf), 0);
  return 0;
}

static void array_slices_from_processes(void **state) {
  (void)state;
  shared *s = su_shared(sizeof *s);
  MPROC_PASS(mproc_array_create(&s->arr, sizeof(pt), 1000, NULL, NULL));
  pid_t p[4];
  for (int i = 0; i < 4; i++) p[i] = su_fork(filler, s);
  for (int i = 0; i < 4; i++) SU_JOIN_OK(p[i]);
  pt *all = mproc_array_ptr(s->arr);
  for (int i = 0; i < 1000; i++) {
    int me = (int)all[i].x;
    assert_true(me >= 0 && me < 4);
    assert_true(all[i].z == me * 1000.0 + all[i].y);
    assert_int_equal((int)all[i].y, i % 250);
  }
  MPROC_PASS(mproc_array_destroy(s->arr));
}

static void value_user_lock_shared(void **state) {
  (void)state;
  mproc_lock_t *l, *got;
  mproc_value_t *a, *b;
  MPROC_PASS(mproc_lock_create(&l));
  MPROC_PASS(mproc_value_create(&a, 8, NULL, &(mproc_value_opts){.lock = l}));
  MPROC_PASS(mproc_value_create(&b, 8, NULL, &(mproc_value_opts){.lock = l}));
  MPROC_PASS(mproc_value_get_lock(a, &got));
  assert_ptr_equal(got, l);
  /* One lock guards both: a transfer is atomic. */
  MPROC_PASS(mproc_lock_acquire(l, -1));
  MPROC_PASS(mproc_value_add_i64(a, -10, NULL));
  MPROC_PASS(mproc_value_add_i64(b, 10, NULL));
  MPROC_PASS(mproc_lock_release(l));
  MPROC_PASS(mproc_value_destroy(a));
  MPROC_PASS(mproc_value_destroy(b));
  MPROC_ASSERT_RC(mproc_lock_locked(l), 0); /* not destroyed with them */
  MPROC_PASS(mproc_lock_destroy(l));
}

static const struct CMUnitTest tests[] = {
    MPROC_TEST(value_basic),
    MPROC_TEST(value_typed),
    MPROC_TEST(value_bad_input),
    MPROC_TEST(array_basic),
    MPROC_TEST(array_bad_input),
    MPROC_TEST(value_counter_processes),
    MPROC_TEST(value_created_after_fork),
    MPROC_TEST(value_lock_holder_killed),
    MPROC_TEST(array_slices_from_processes),
    MPROC_TEST(value_user_lock_shared),
};
MPROC_TEST_MAIN(tests)
