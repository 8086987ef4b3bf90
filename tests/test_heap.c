/* test_heap.c - the shared heap: every public call and bad input, zeroing
 * and alignment, millions of small blocks, memory returned to the OS,
 * exhaustion of a small heap, visibility across fork, spawn-style re-attach,
 * a process killed at every crash point inside alloc and free, and a chaos
 * run where children are SIGKILLed at random while allocating. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "heap/heap.h"

void mproc__mark_inited(size_t heap_size);

#define SUBPROC_ENV "MPROC_TEST_HEAP_SUBPROC"

static size_t live_now(void) {
  mproc_heap_stats st;
  MPROC_PASS(mproc_heap_stats_get(&st));
  return st.live_blocks;
}

static void assert_heap_ok(void) {
  int rc = mproc__heap_check();
  if (rc) fail_msg("heap check failed: %s", mproc__heap_check_msg());
}

static long memfd_bytes(void) {
  struct stat sb;
  assert_int_equal(fstat(mproc__heap_fd(), &sb), 0);
  return (long)sb.st_blocks * 512;
}

/* Re-run this test binary's case `test` in a fresh process (exec), with
 * MPROC_HEAP_SIZE set to heap_env (NULL: unset) and extra env (may be NULL,
 * "NAME=value"). Returns the exit status (or 128+signal). */
static int run_self(const char *test, const char *heap_env, const char *extra) {
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    if (heap_env)
      setenv("MPROC_HEAP_SIZE", heap_env, 1);
    else
      unsetenv("MPROC_HEAP_SIZE");
    setenv(SUBPROC_ENV, "1", 1);
    if (extra) putenv((char *)extra);
    char *argv[] = {(char *)"test_heap", (char *)test, NULL};
    execv("/proc/self/exe", argv);
    _exit(127);
  }
  int st;
  assert_int_equal(waitpid(pid, &st, 0), pid);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
static int in_subproc(void) { return getenv(SUBPROC_ENV) != NULL; }

/* ---- public calls and bad input ---- */

static void alloc_sizes_aligned_zeroed(void **state) {
  (void)state;
  size_t base = live_now();
  size_t sizes[] = {1, 15, 16, 17, 100, 128, 129, 1000, 4096, 4097, 16384, 16385, 65536, 1 << 20};
  void *p[sizeof sizes / sizeof sizes[0]];
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    MPROC_PASS(mproc_heap_alloc(sizes[i], &p[i]));
    assert_non_null(p[i]);
    assert_int_equal((uintptr_t)p[i] % 16, 0);
    assert_true(mproc_heap_contains(p[i]));
    assert_true(mproc__heap_block_size(p[i]) >= sizes[i]);
    for (size_t k = 0; k < sizes[i]; k++)
      if (((unsigned char *)p[i])[k]) fail_msg("block of %zu not zeroed at %zu", sizes[i], k);
    memset(p[i], 0xa5, sizes[i]);
  }
  assert_int_equal(live_now(), base + sizeof sizes / sizeof sizes[0]);
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    MPROC_PASS(mproc_heap_free(p[i]));
    assert_int_equal(mproc__heap_block_size(p[i]), 0);
  }
  assert_int_equal(live_now(), base);
  assert_heap_ok();
}

static void multiples_of_64_are_cache_aligned(void **state) {
  (void)state;
  void *p[300];
  for (int i = 0; i < 300; i++) {
    size_t n = (size_t)(1 + i % 300) * 64;
    MPROC_PASS(mproc_heap_alloc(n, &p[i]));
    if ((uintptr_t)p[i] % 64) fail_msg("block of %zu not 64-byte aligned", n);
    if (n > 16384 && (uintptr_t)p[i] % 4096) fail_msg("large block not page aligned");
  }
  for (int i = 0; i < 300; i++) MPROC_PASS(mproc_heap_free(p[i]));
}

static void alloc_bad_input(void **state) {
  (void)state;
  void *p = (void *)1;
  mproc_heap_stats st;
  MPROC_PASS(mproc_heap_stats_get(&st));
  MPROC_ASSERT_RC(mproc_heap_alloc(0, &p), MPROC_EINVAL);
  assert_ptr_equal(p, (void *)1); /* untouched on failure */
  MPROC_ASSERT_RC(mproc_heap_alloc(16, NULL), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_heap_alloc(SIZE_MAX, &p), MPROC_ENOMEM);
  MPROC_ASSERT_RC(mproc_heap_alloc(SIZE_MAX / 2, &p), MPROC_ENOMEM);
  MPROC_ASSERT_RC(mproc_heap_alloc(st.capacity + 1, &p), MPROC_ENOMEM);
  assert_ptr_equal(p, (void *)1);
  assert_heap_ok();
}

static void free_bad_input(void **state) {
  (void)state;
  size_t base = live_now();
  int on_stack = 0;
  void *m = malloc(64);
  MPROC_PASS(mproc_heap_free(NULL));
  MPROC_ASSERT_RC(mproc_heap_free(&on_stack), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_heap_free(m), MPROC_EINVAL);
  free(m);
  MPROC_ASSERT_RC(mproc_heap_free(mproc__heap_root(MPROC__ROOT_SYNC)), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_heap_free((char *)mproc__heap_base() + mproc__heap_size()), MPROC_EINVAL);

  char *s, *l;
  MPROC_PASS(mproc_heap_alloc(64, (void **)&s));
  MPROC_PASS(mproc_heap_alloc(100000, (void **)&l));
  MPROC_ASSERT_RC(mproc_heap_free(s + 1), MPROC_EINVAL);   /* unaligned */
  MPROC_ASSERT_RC(mproc_heap_free(s + 16), MPROC_EINVAL);  /* inside a block */
  MPROC_ASSERT_RC(mproc_heap_free(s + 64), MPROC_EINVAL);  /* next block, free */
  MPROC_ASSERT_RC(mproc_heap_free(l + 16), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_heap_free(l + 4096), MPROC_EINVAL); /* large interior */
  MPROC_ASSERT_RC(mproc_heap_free(l + 200000), MPROC_EINVAL); /* free pages */
  assert_int_equal(live_now(), base + 2);
  MPROC_PASS(mproc_heap_free(s));
  MPROC_PASS(mproc_heap_free(l));
  MPROC_ASSERT_RC(mproc_heap_free(s), MPROC_EINVAL); /* double free, small */
  MPROC_ASSERT_RC(mproc_heap_free(l), MPROC_EINVAL); /* double free, large */
  assert_int_equal(live_now(), base);
  assert_heap_ok();
}

/* Every heap call on a library whose initialisation failed returns the
 * init error (or its documented neutral result), never crashes, and a
 * later good initialisation still works. Runs in an exec'd copy with an
 * invalid $MPROC_HEAP_SIZE, so the harness's own init failed too. */
static void calls_after_failed_init(void **state) {
  (void)state;
  if (!in_subproc()) {
    assert_int_equal(run_self("calls_after_failed_init", "bogus", NULL), 0);
    return;
  }
  /* Absurd sizes are refused before anything is created. */
  mproc_init_opts o = {0};
  o.heap_size = ((size_t)1 << 40) + 1; /* just past 1 TiB */
  MPROC_ASSERT_RC(mproc_init(&o), MPROC_EINVAL);
  o.heap_size = (size_t)2 << 40;
  MPROC_ASSERT_RC(mproc_init(&o), MPROC_EINVAL);
  o.heap_size = ((size_t)1 << 20) - 1; /* just under 1 MiB */
  MPROC_ASSERT_RC(mproc_init(&o), MPROC_EINVAL);
  o.heap_size = SIZE_MAX;
  MPROC_ASSERT_RC(mproc_init(&o), MPROC_EINVAL);
  assert_null(mproc__heap_base());
  /* Still uninitialised: each call's lazy init fails on the variable. */
  int on_stack = 0;
  void *p = (void *)1;
  mproc_heap_stats st;
  MPROC_ASSERT_RC(mproc_heap_trim(), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_heap_stats_get(&st), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_heap_stats_get(NULL), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_heap_alloc(64, &p), MPROC_EINVAL);
  assert_ptr_equal(p, (void *)1);
  MPROC_ASSERT_RC(mproc_heap_free(NULL), 0);
  MPROC_ASSERT_RC(mproc_heap_free(&on_stack), MPROC_EINVAL);
  assert_int_equal(mproc_heap_contains(&on_stack), 0);
  assert_int_equal(mproc_heap_contains(NULL), 0);
  /* Objects living in the heap cannot be created either, and a stray
   * pointer is not taken for one. */
  mproc_lock_t *l = NULL;
  MPROC_ASSERT_RC(mproc_lock_create(&l), MPROC_EINVAL);
  assert_null(l);
  MPROC_ASSERT_RC(mproc_lock_acquire((mproc_lock_t *)(void *)&on_stack, 0), MPROC_EINVAL);
  assert_null(mproc__heap_base());
  /* With a valid variable the next call initialises the library. */
  setenv("MPROC_HEAP_SIZE", "4M", 1);
  MPROC_PASS(mproc_heap_trim());
  assert_int_equal(mproc__heap_size(), (size_t)4 << 20);
  MPROC_PASS(mproc_heap_alloc(64, &p));
  assert_true(mproc_heap_contains(p));
  MPROC_PASS(mproc_heap_free(p));
  MPROC_PASS(mproc_heap_stats_get(&st));
  assert_int_equal(st.live_blocks, 0);
  _exit(0); /* skip the harness's fd check: the heap's memfd is new here */
}

static void stats_contains_root(void **state) {
  (void)state;
  int x;
  MPROC_ASSERT_RC(mproc_heap_stats_get(NULL), MPROC_EINVAL);
  mproc_heap_stats st;
  MPROC_PASS(mproc_heap_stats_get(&st));
  assert_true(st.capacity > ((size_t)900 << 20) && st.capacity <= ((size_t)1 << 30));
  assert_true(st.used <= st.capacity);
  assert_int_equal(st.recoveries, 0);
  assert_false(mproc_heap_contains(NULL));
  assert_false(mproc_heap_contains(&x));
  void *roots[MPROC__ROOT_NSLOTS];
  for (int i = 0; i < MPROC__ROOT_NSLOTS; i++) {
    roots[i] = mproc__heap_root((enum mproc__root_slot)i);
    assert_non_null(roots[i]);
    if (i) assert_int_equal((char *)roots[i] - (char *)roots[i - 1], MPROC__HEAP_ROOT_SLOT);
  }
  assert_null(mproc__heap_root(MPROC__ROOT_NSLOTS));
  assert_null(mproc__heap_root((enum mproc__root_slot)-1));
  void *p;
  MPROC_PASS(mproc_heap_alloc(48, &p));
  MPROC_PASS(mproc_heap_stats_get(&st));
  assert_true(st.used >= 48);
  MPROC_PASS(mproc_heap_free(p));
  assert_int_equal(mproc__heap_block_size(&x), 0);
}

static void reuse_is_zeroed(void **state) {
  (void)state;
  for (int round = 0; round < 3; round++) {
    void *p[300];
    for (int i = 0; i < 300; i++) {
      size_t n = 1 + (size_t)(i * 97) % 40000;
      MPROC_PASS(mproc_heap_alloc(n, &p[i]));
      for (size_t k = 0; k < n; k += 7)
        if (((char *)p[i])[k]) fail_msg("round %d: stale byte in a reused block", round);
      memset(p[i], 0xff, n);
    }
    for (int i = 0; i < 300; i++) MPROC_PASS(mproc_heap_free(p[i]));
  }
  assert_heap_ok();
}

/* ---- scale ---- */

static void millions_of_blocks(size_t n) {
  size_t base = live_now();
  uint64_t **p = malloc(n * sizeof *p);
  assert_non_null(p);
  for (size_t i = 0; i < n; i++) {
    MPROC_PASS(mproc_heap_alloc(24 + (i % 3) * 8, (void **)&p[i]));
    p[i][0] = i;
  }
  assert_int_equal(live_now(), base + n);
  assert_heap_ok();
  for (size_t i = 0; i < n; i++) {
    if (p[i][0] != i) fail_msg("block %zu overwritten", i);
    if (i % 2) MPROC_PASS(mproc_heap_free(p[i]));
  }
  for (size_t i = 0; i < n; i += 2) MPROC_PASS(mproc_heap_free(p[i]));
  free(p);
  assert_int_equal(live_now(), base);
  assert_heap_ok();
}
static void one_million_small_blocks(void **state) {
  (void)state;
  millions_of_blocks(1000000);
}
static void ten_million_small_blocks(void **state) {
  (void)state;
  millions_of_blocks(10000000);
}

static void *thread_churn(void *arg) {
  unsigned seed = (unsigned)(uintptr_t)arg, tag = seed % 7;
  void *held[64] = {0};
  for (int i = 0; i < 20000; i++) {
    int k = (int)(rand_r(&seed) % 64);
    if (held[k]) {
      if (*(unsigned *)held[k] != (unsigned)k + tag) return (void *)1;
      if (mproc_heap_free(held[k])) return (void *)2;
      held[k] = NULL;
    } else {
      size_t n = rand_r(&seed) % 8 == 0 ? 1 + rand_r(&seed) % 70000 : 4 + rand_r(&seed) % 600;
      if (mproc_heap_alloc(n, &held[k])) return (void *)3;
      *(unsigned *)held[k] = (unsigned)k + tag;
    }
  }
  for (int k = 0; k < 64; k++)
    if (held[k] && mproc_heap_free(held[k])) return (void *)4;
  return NULL;
}

/* Under TSan the churners run as processes, not threads: TSan reports the
 * robust mutex's deliberately racy spin estimate (platform/robust.c, plain
 * uint32_t `spins` updated by contending threads) as a data race. The
 * threaded version runs in the plain and ASan builds. */
#if defined(__SANITIZE_THREAD__)
#define CHURN_THREADS 1
#define CHURN_PROCS 4
#else
#define CHURN_THREADS 3
#define CHURN_PROCS 2
#endif

static void threads_and_processes_concurrently(void **state) {
  (void)state;
  size_t base = live_now();
  pid_t pids[CHURN_PROCS - 1] = {0};
  int me = 0;
  for (int p = 1; p < CHURN_PROCS; p++) {
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
      me = p;
      break;
    }
    pids[p - 1] = pid;
  }
  pthread_t t[CHURN_THREADS];
  for (uintptr_t i = 0; i < CHURN_THREADS; i++)
    assert_int_equal(pthread_create(&t[i], NULL, thread_churn, (void *)(i * 7919 + (uintptr_t)me)), 0);
  int bad = 0;
  for (int i = 0; i < CHURN_THREADS; i++) {
    void *r;
    pthread_join(t[i], &r);
    bad |= r != NULL;
  }
  if (me) _exit(bad);
  for (int p = 0; p < CHURN_PROCS - 1; p++) {
    int st;
    assert_int_equal(waitpid(pids[p], &st, 0), pids[p]);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  }
  assert_false(bad);
  assert_int_equal(live_now(), base);
  assert_heap_ok();
}

/* ---- memory goes back to the OS ---- */

static void large_free_returns_memory(void **state) {
  (void)state;
  /* Bigger than the cache of freed spans, so its pages go back at once. */
  const size_t big = mproc__heap_cache_max() + ((size_t)16 << 20);
  long b0 = memfd_bytes();
  char *p;
  MPROC_PASS(mproc_heap_alloc(big, (void **)&p));
  memset(p, 0xab, big);
  long b1 = memfd_bytes();
  assert_true(b1 - b0 >= (long)big);
  mproc_heap_stats st;
  MPROC_PASS(mproc_heap_stats_get(&st));
  assert_true(st.resident >= (size_t)b1 - 4096 && st.used >= big);
  strcpy(p + 16, "magic");
  MPROC_PASS(mproc_heap_free(p));
  long b2 = memfd_bytes();
  /* The cache keeps the first cache_max bytes resident, the rest is gone. */
  assert_true(b1 - b2 >= (long)(big - mproc__heap_cache_max()) - 4096);
  assert_int_equal(p[big - 4096], 0);
  /* The first page is kept until reuse: a destroyed object's dead magic
   * stays readable (use-after-destroy detection). */
  assert_string_equal(p + 16, "magic");
  /* A trim gives the cached part back too. */
  MPROC_PASS(mproc_heap_trim());
  b2 = memfd_bytes();
  assert_true(b1 - b2 >= (long)big - 65536);
  assert_int_equal(p[4096], 0);
  /* The same range comes back zeroed without being touched. */
  MPROC_PASS(mproc_heap_alloc(big, (void **)&p));
  assert_true(memfd_bytes() - b2 < (long)(1 << 20));
  for (size_t k = 0; k < big; k += 4096)
    if (p[k]) fail_msg("reused large block not zero");
  MPROC_PASS(mproc_heap_free(p));
  assert_heap_ok();
}

static void retained_spans_reused_then_trimmed(void **state) {
  (void)state;
  size_t base = live_now();
  long b0 = memfd_bytes();
  char *p[8];
  for (int i = 0; i < 8; i++) {
    MPROC_PASS(mproc_heap_alloc((size_t)1 << 20, (void **)&p[i]));
    memset(p[i], 0x5a, (size_t)1 << 20);
  }
  long b1 = memfd_bytes();
  assert_true(b1 - b0 >= 8l << 20);
  for (int i = 0; i < 8; i++) MPROC_PASS(mproc_heap_free(p[i]));
  /* Kept resident for reuse (under the budget)... */
  assert_true(memfd_bytes() >= b1 - (1 << 20));
  assert_heap_ok();
  /* ...and handed out zeroed again, without new memory. */
  for (int i = 0; i < 8; i++) {
    MPROC_PASS(mproc_heap_alloc(((size_t)1 << 20) - 100, (void **)&p[i]));
    for (size_t k = 0; k < ((size_t)1 << 20) - 100; k += 512)
      if (p[i][k]) fail_msg("retained span not cleared");
  }
  assert_true(memfd_bytes() <= b1 + (1 << 20));
  for (int i = 0; i < 8; i++) MPROC_PASS(mproc_heap_free(p[i]));
  MPROC_PASS(mproc_heap_trim());
  assert_true(b1 - memfd_bytes() >= (8l << 20) - (1 << 20));
  assert_int_equal(live_now(), base);
  assert_heap_ok();
}

/* A block a little bigger than any cached span reuses a cached span plus
 * the clean free span next to it (on either side): only the missing part is
 * new memory, and the whole block reads as zero. */
static void cached_span_grows_into_clean_neighbour(void **state) {
  (void)state;
  const size_t M = (size_t)1 << 20;
  size_t base = live_now();
  MPROC_PASS(mproc_heap_trim());
  /* Right: A cached, clean space after it. */
  char *a, *b;
  MPROC_PASS(mproc_heap_alloc(3 * M, (void **)&a));
  memset(a, 0x11, 3 * M);
  MPROC_PASS(mproc_heap_free(a));
  long f0 = memfd_bytes();
  MPROC_PASS(mproc_heap_alloc(5 * M, (void **)&b));
  assert_ptr_equal(b, a); /* grew to the right over clean pages */
  for (size_t k = 0; k < 5 * M; k += 256)
    if (b[k]) fail_msg("grown block not zero at %zu", k);
  memset(b, 0x22, 5 * M);
  /* Only the 2 MiB that were not cached are new memory. */
  assert_true(memfd_bytes() - f0 <= (long)(2 * M + 65536));
  assert_heap_ok();
  /* Left: C clean (trimmed), D cached, E allocated after D. */
  char *c, *d, *e, *f;
  MPROC_PASS(mproc_heap_alloc(2 * M, (void **)&c));
  MPROC_PASS(mproc_heap_alloc(2 * M, (void **)&d));
  MPROC_PASS(mproc_heap_alloc(64 * 1024, (void **)&e));
  assert_ptr_equal(d, c + 2 * M);
  assert_ptr_equal(e, d + 2 * M);
  memset(c, 0x33, 2 * M);
  memset(d, 0x44, 2 * M);
  MPROC_PASS(mproc_heap_free(c));
  MPROC_PASS(mproc_heap_trim()); /* c's pages go back: a clean span */
  MPROC_PASS(mproc_heap_free(d)); /* cached */
  f0 = memfd_bytes();
  MPROC_PASS(mproc_heap_alloc(3 * M, (void **)&f));
  assert_ptr_equal(f, d - M); /* ends where d ended, grew to the left */
  for (size_t k = 0; k < 3 * M; k += 256)
    if (f[k]) fail_msg("left-grown block not zero at %zu", k);
  assert_true(memfd_bytes() - f0 <= (long)(M + 65536));
  assert_heap_ok();
  MPROC_PASS(mproc_heap_free(f));
  MPROC_PASS(mproc_heap_free(e));
  MPROC_PASS(mproc_heap_free(b));
  assert_int_equal(live_now(), base);
  assert_heap_ok();
}

/* Internal flags: UNINIT skips the clearing of reused memory, POPULATE
 * faults fresh pages in at once; bad flags are refused. */
static void alloc_ex_flags(void **state) {
  (void)state;
  const size_t M = (size_t)1 << 20;
  void *p;
  MPROC_ASSERT_RC(mproc__heap_alloc_ex(64, 8, &p), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc__heap_alloc_ex(0, 0, &p), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc__heap_alloc_ex(64, 0, NULL), MPROC_EINVAL);
  MPROC_PASS(mproc_heap_trim());
  char *a, *b;
  MPROC_PASS(mproc__heap_alloc_ex(2 * M, MPROC__HEAP_UNINIT, (void **)&a));
  memset(a, 0x5a, 2 * M);
  MPROC_PASS(mproc_heap_free(a));
  MPROC_PASS(mproc__heap_alloc_ex(2 * M, MPROC__HEAP_UNINIT, (void **)&b));
  assert_ptr_equal(a, b);
  assert_int_equal((unsigned char)b[M], 0x5a); /* reused as it was */
  MPROC_PASS(mproc_heap_free(b));
  MPROC_PASS(mproc_heap_alloc(2 * M, (void **)&b));
  assert_ptr_equal(a, b);
  assert_int_equal(b[M], 0); /* the default clears it */
  MPROC_PASS(mproc_heap_free(b));
  /* Small blocks too. */
  char *s;
  MPROC_PASS(mproc__heap_alloc_ex(100, MPROC__HEAP_UNINIT, (void **)&s));
  memset(s, 7, 100);
  MPROC_PASS(mproc_heap_free(s));
  MPROC_PASS(mproc__heap_alloc_ex(100, 0, (void **)&s));
  for (int k = 0; k < 100; k++) assert_int_equal(s[k], 0);
  MPROC_PASS(mproc_heap_free(s));
  /* POPULATE: the pages are resident before the first touch. */
  MPROC_PASS(mproc_heap_trim());
  long f0 = memfd_bytes();
  MPROC_PASS(mproc__heap_alloc_ex(8 * M, MPROC__HEAP_POPULATE, (void **)&a));
  assert_true(memfd_bytes() - f0 >= (long)(8 * M) - 8192);
  for (size_t k = 0; k < 8 * M; k += 4096)
    if (a[k]) fail_msg("populated block not zero");
  MPROC_PASS(mproc_heap_free(a));
  assert_heap_ok();
}

/* $MPROC_HEAP_CACHE: a size, a percentage of the heap, 0 (no cache), or
 * invalid (initialisation fails with -EINVAL). Checked in exec'd copies. */
static void cache_size_from_environment(void **state) {
  (void)state;
  if (in_subproc()) {
    const char *want = getenv("MPROC_TEST_CACHE_WANT");
    if (!strcmp(want, "invalid")) {
      MPROC_ASSERT_RC(mproc_init(NULL), MPROC_EINVAL);
      return;
    }
    MPROC_PASS(mproc_init(NULL));
    if (!strcmp(want, "populate")) {
      /* $MPROC_HEAP_POPULATE=1: public large blocks are resident at once. */
      MPROC_PASS(mproc_heap_trim());
      long f0 = memfd_bytes();
      char *p;
      MPROC_PASS(mproc_heap_alloc((size_t)8 << 20, (void **)&p));
      assert_true(memfd_bytes() - f0 >= (8l << 20) - 8192);
      assert_int_equal(p[12345], 0);
      MPROC_PASS(mproc_heap_free(p));
      assert_heap_ok();
      return;
    }
    if (!strcmp(want, "all")) {
      /* Capped at the heap's data pages. */
      mproc_heap_stats st;
      MPROC_PASS(mproc_heap_stats_get(&st));
      assert_int_equal(mproc__heap_cache_max(), st.capacity);
    } else if (!strcmp(want, "half")) {
      /* 50 % of the heap's data pages. */
      mproc_heap_stats st;
      MPROC_PASS(mproc_heap_stats_get(&st));
      assert_int_equal(mproc__heap_cache_max(), (st.capacity >> 13) << 12);
    } else {
      assert_int_equal(mproc__heap_cache_max(), strtoull(want, NULL, 10));
    }
    /* With no cache, a freed large block goes back at once. */
    if (mproc__heap_cache_max() == 0) {
      char *p;
      MPROC_PASS(mproc_heap_alloc((size_t)4 << 20, (void **)&p));
      memset(p, 1, (size_t)4 << 20);
      long b1 = memfd_bytes();
      MPROC_PASS(mproc_heap_free(p));
      assert_true(b1 - memfd_bytes() >= (4l << 20) - 4096);
    }
    assert_heap_ok();
    return;
  }
  static const struct {
    const char *env, *want;
  } cases[] = {
      {"MPROC_HEAP_CACHE=8M", "8388608"},     {"MPROC_HEAP_CACHE=0", "0"},
      {"MPROC_HEAP_CACHE=1048576b", "1048576"}, {"MPROC_HEAP_CACHE=abc", "invalid"},
      {"MPROC_HEAP_CACHE=-1", "invalid"},     {"MPROC_HEAP_CACHE=101%", "invalid"},
      {"MPROC_HEAP_CACHE=12Q", "invalid"},    {"MPROC_HEAP_CACHE= 5M", "invalid"},
      {"MPROC_HEAP_CACHE=99999999999999999999", "invalid"},
      {"MPROC_HEAP_CACHE=50%", "half"},       {"MPROC_HEAP_CACHE=1T", "all"},
      {"MPROC_HEAP_POPULATE=1", "populate"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    static char want[64];
    snprintf(want, sizeof want, "MPROC_TEST_CACHE_WANT=%s", cases[i].want);
    putenv(want);
    int rc = run_self("cache_size_from_environment", "64M", cases[i].env);
    if (rc) fail_msg("%s: subprocess failed (%d)", cases[i].env, rc);
  }
  unsetenv("MPROC_TEST_CACHE_WANT");
}

static void small_free_releases_slabs(void **state) {
  (void)state;
  enum { N = 40000 };
  void **p = malloc(N * sizeof *p);
  long b0 = memfd_bytes();
  for (int i = 0; i < N; i++) {
    MPROC_PASS(mproc_heap_alloc(1000, &p[i]));
    memset(p[i], 1, 1000);
  }
  long b1 = memfd_bytes();
  assert_true(b1 - b0 >= (long)N * 1000);
  for (int i = 0; i < N; i++) MPROC_PASS(mproc_heap_free(p[i]));
  free(p);
  long b2 = memfd_bytes();
  /* Slabs went back, but for at most the retained budget and one empty
   * slab per arena (64 KiB each). */
  assert_true(b1 - b2 >= (long)N * 1000 - (long)mproc__heap_cache_max() - (4 << 16) - (1 << 20));
  assert_heap_ok();
  MPROC_PASS(mproc_heap_trim());
  long b3 = memfd_bytes();
  /* After a trim, all of it (one page per freed span may stay: magic). */
  assert_true(b1 - b3 >= (long)N * 1000 - (1 << 20));
  assert_heap_ok();
}

/* ---- exhaustion of a small heap (fresh process, MPROC_HEAP_SIZE=2M) ---- */

static void small_heap_exhaustion(void **state) {
  (void)state;
  if (!in_subproc()) {
    assert_int_equal(run_self("small_heap_exhaustion", "2M", NULL), 0);
    return;
  }
  mproc_heap_stats st;
  MPROC_PASS(mproc_heap_stats_get(&st));
  assert_true(st.capacity > (1 << 20) && st.capacity < (2 << 20));
  void *big;
  MPROC_ASSERT_RC(mproc_heap_alloc(st.capacity + 4096, &big), MPROC_ENOMEM);
  /* Fill with small blocks of several classes until the heap is full. */
  static void *p[200000];
  size_t n = 0;
  int rc = 0;
  while (n < 200000 && (rc = mproc_heap_alloc(16 + (n % 5) * 300, &p[n])) == 0) n++;
  MPROC_ASSERT_RC(rc, MPROC_ENOMEM);
  assert_true(n > 1000);
  MPROC_ASSERT_RC(mproc_heap_alloc(100000, &big), MPROC_ENOMEM);
  assert_heap_ok();
  for (size_t i = 0; i < n; i++) MPROC_PASS(mproc_heap_free(p[i]));
  assert_heap_ok();
  /* Everything coalesced: one block of most of the capacity fits. */
  MPROC_PASS(mproc_heap_alloc(st.capacity - (512 << 10), &big));
  MPROC_ASSERT_RC(mproc_heap_alloc(st.capacity / 2, &p[0]), MPROC_ENOMEM);
  MPROC_PASS(mproc_heap_free(big));
  /* Large blocks until full, then free all. */
  n = 0;
  while ((rc = mproc_heap_alloc(20000 + (n % 3) * 4096, &p[n])) == 0) n++;
  MPROC_ASSERT_RC(rc, MPROC_ENOMEM);
  assert_true(n > 20);
  for (size_t i = 0; i < n; i += 2) MPROC_PASS(mproc_heap_free(p[i]));
  for (size_t i = 1; i < n; i += 2) MPROC_PASS(mproc_heap_free(p[i]));
  assert_int_equal(live_now(), 0);
  assert_heap_ok();
}

/* ---- fork: an object made after fork reaches the child ---- */

typedef struct mailbox {
  _Atomic(char *) obj;
} mailbox;

static void object_after_fork_visible_in_child(void **state) {
  (void)state;
  size_t base = live_now();
  mailbox *mb;
  MPROC_PASS(mproc_heap_alloc(sizeof *mb, (void **)&mb));
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(fds[1]);
    char c;
    if (read(fds[0], &c, 1) != 1) _exit(2);
    char *o = atomic_load(&mb->obj);
    if (!o || strcmp(o, "made after fork") != 0) _exit(3);
    for (int i = 16; i < 100000; i++)
      if (o[i] != (char)i) _exit(4);
    /* The child frees the parent's block. */
    _exit(mproc_heap_free(o) == 0 ? 0 : 5);
  }
  close(fds[0]);
  char *o;
  MPROC_PASS(mproc_heap_alloc(100000, (void **)&o));
  strcpy(o, "made after fork");
  for (int i = 16; i < 100000; i++) o[i] = (char)i;
  atomic_store(&mb->obj, o);
  assert_int_equal(write(fds[1], "x", 1), 1);
  close(fds[1]);
  int st;
  assert_int_equal(waitpid(pid, &st, 0), pid);
  assert_true(WIFEXITED(st));
  assert_int_equal(WEXITSTATUS(st), 0);
  MPROC_PASS(mproc_heap_free(mb));
  assert_int_equal(live_now(), base);
  assert_heap_ok();
}

/* ---- spawn-style re-attach in an exec'd process ---- */

static void attach_in_exec_child(void **state) {
  (void)state;
  if (!in_subproc()) {
    char *msg;
    MPROC_PASS(mproc_heap_alloc(64, (void **)&msg));
    strcpy(msg, "hello, exec'd child");
    static char env[256];
    snprintf(env, sizeof env, "MPROC_TEST_ATTACH=%d:%p:%zu:%p", mproc__heap_fd(),
             mproc__heap_base(), mproc__heap_size(), (void *)msg);
    /* An invalid MPROC_HEAP_SIZE makes the harness's own init fail, so the
     * child starts without a heap, as a spawned child does. */
    assert_int_equal(run_self("attach_in_exec_child", "invalid", env), 0);
    assert_string_equal(msg, "child was here");
    MPROC_PASS(mproc_heap_free(msg));
    assert_heap_ok();
    /* Attaching twice in one process: same mapping is fine, another is not. */
    MPROC_PASS(mproc__heap_attach(mproc__heap_fd(), mproc__heap_base(), mproc__heap_size()));
    MPROC_ASSERT_RC(mproc__heap_attach(mproc__heap_fd(), mproc__heap_base(), 8192), MPROC_EBUSY);
    MPROC_ASSERT_RC(mproc__heap_attach(-1, mproc__heap_base(), 8192), MPROC_EINVAL);
    return;
  }
  int fd;
  void *base, *msgp;
  size_t size;
  const char *e = getenv("MPROC_TEST_ATTACH");
  if (!e || sscanf(e, "%d:%p:%zu:%p", &fd, &base, &size, &msgp) != 4) fail_msg("no env");
  assert_null(mproc__heap_base());
  /* Bad attach calls first: wrong size (header mismatch), occupied range. */
  MPROC_ASSERT_RC(mproc__heap_attach(fd, base, size - 4096), MPROC_EINVAL);
  int on_stack;
  MPROC_ASSERT_RC(mproc__heap_attach(fd, (void *)((uintptr_t)&on_stack & ~(uintptr_t)4095), 4096 * 4),
                  MPROC_EEXIST);
  MPROC_PASS(mproc__heap_attach(fd, base, size));
  mproc__mark_inited(size);
  char *msg = msgp;
  assert_string_equal(msg, "hello, exec'd child");
  strcpy(msg, "child was here");
  void *q;
  MPROC_PASS(mproc_heap_alloc(5000, &q));
  MPROC_PASS(mproc_heap_free(q));
  assert_heap_ok();
}

/* ---- crash safety: die at every crash point of a fixed scenario ---- */

typedef struct record {
  void *blk[40]; /* blocks the child owns; set after alloc, cleared before free */
} record;

/* The child records a block after allocating it and forgets it after
 * freeing it, so the parent can free what a killed child left: a block
 * freed but not yet forgotten gives -EINVAL (only the one child runs). */
static void rec_alloc(record *r, int i, size_t n, int code) {
  void *p;
  if (mproc_heap_alloc(n, &p)) _exit(code);
  r->blk[i] = p;
}
static void rec_free(record *r, int i, int code) {
  if (mproc_heap_free(r->blk[i])) _exit(code);
  r->blk[i] = NULL;
}

static void scenario(record *r) {
  /* Small: fill more than one slab of the 3072 class, free all (one slab is
   * released to the page heap). Large: split, free with coalescing on each
   * side; a block over the cache budget (partly kept, the rest punched) and
   * one freed with the budget full (punched, merged clean); a trim
   * (retained spans punched and merged); cached spans grown over clean
   * neighbours. */
  for (int i = 0; i < 25; i++) rec_alloc(r, i, 3000, 10);
  for (int i = 0; i < 25; i++) rec_free(r, i, 11);
  for (int i = 30; i < 33; i++) rec_alloc(r, i, (size_t)(i - 29) * 20000, 12);
  rec_free(r, 31, 13);
  rec_free(r, 30, 13);
  rec_free(r, 32, 13);
  /* Bigger than the cache: its first pages are kept up to the budget, the
   * rest punched; the next free finds the budget full and punches all. */
  rec_alloc(r, 35, mproc__heap_cache_max() + ((size_t)2 << 20), 14);
  rec_alloc(r, 34, (size_t)2 << 20, 14);
  rec_free(r, 35, 15);
  rec_free(r, 34, 15);
  if (mproc_heap_trim()) _exit(16);
  /* A cached span grown over its clean neighbour, right then left (see
   * cached_span_grows_into_clean_neighbour). */
  const size_t M = (size_t)256 << 10; /* small units: each run is cheap */
  rec_alloc(r, 36, 3 * M, 17);
  rec_free(r, 36, 17);
  rec_alloc(r, 36, 5 * M, 17);
  /* C, D, E carved out of X, then the only cached span, so they are
   * adjacent; C made clean, D cached: F grows D to the left. */
  if (mproc_heap_trim()) _exit(18);
  rec_alloc(r, 37, 6 * M, 18);
  rec_free(r, 37, 18);
  rec_alloc(r, 37, 2 * M, 18);
  rec_alloc(r, 38, 2 * M, 18);
  rec_alloc(r, 39, 2 * M, 18);
  rec_free(r, 37, 18);
  if (mproc_heap_trim()) _exit(18);
  rec_free(r, 38, 18);
  rec_alloc(r, 37, 3 * M, 19);
  rec_free(r, 37, 19);
  rec_free(r, 39, 19);
  rec_free(r, 36, 19);
}

static void killed_at_every_crash_point(void **state) {
  (void)state;
  if (!in_subproc()) {
    /* In a fresh copy with a 2 MiB cache: the scenario's "bigger than the
     * cache" block stays small, and a cache left full by a kill does not
     * make the next run clear hundreds of MiB. */
    assert_int_equal(run_self("killed_at_every_crash_point", NULL, "MPROC_HEAP_CACHE=2M"), 0);
    return;
  }
  assert_int_equal(mproc__heap_cache_max(), (size_t)2 << 20);
  record *r;
  MPROC_PASS(mproc_heap_alloc(sizeof *r, (void **)&r));
  size_t base = live_now();
  int crashes = 0, reaper_kills = 0;
  for (int n = 1; n < 100000; n++) {
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
      mproc__heap_crash_after(n);
      scenario(r);
      _exit(0);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (WIFEXITED(st)) {
      if (WEXITSTATUS(st)) fail_msg("scenario failed with %d at crash point %d", WEXITSTATUS(st), n);
      break; /* n passed the last crash point: the scenario completed */
    }
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    crashes++;
    if (n % 64 == 0) {
      /* A reaper killed at each of its own crash points: the dead child's
       * record stays marked (now by the reaper's death) and the next reaper
       * finishes the job. */
      for (int m = 1; m < 10000; m++) {
        pid_t rp = fork();
        assert_true(rp >= 0);
        if (rp == 0) {
          mproc__heap_crash_after(m);
          mproc__heap_reap();
          _exit(0);
        }
        assert_int_equal(waitpid(rp, &st, 0), rp);
        if (WIFEXITED(st)) break;
        reaper_kills++;
      }
    }
    int rc = mproc__heap_check();
    if (rc) fail_msg("after a crash at point %d: %s", n, mproc__heap_check_msg());
    for (int i = 0; i < 40; i++)
      if (r->blk[i]) {
        int frc = mproc_heap_free(r->blk[i]);
        if (frc != 0 && frc != MPROC_EINVAL) fail_msg("free after crash: %d", frc);
        r->blk[i] = NULL;
      }
    /* Nothing leaked: the checker reaped the dead child's in-flight
     * record (a block it was allocating, or freeing, is freed). */
    size_t live = live_now();
    if (live != base) fail_msg("crash point %d leaked %zu blocks", n, live - base);
  }
  assert_true(crashes > 200);
  mproc_heap_stats st;
  MPROC_PASS(mproc_heap_stats_get(&st));
  assert_true(st.recoveries > 0);
  print_message("%d crash points, %d reapers killed, %zu recoveries, %zu orphan slabs\n", crashes,
                reaper_kills, st.recoveries, mproc__heap_orphans());
  assert_true(reaper_kills > 0);
  MPROC_PASS(mproc_heap_free(r));
  assert_heap_ok();
}

/* ---- in-flight records: one per live thread, reused after death ---- */

#define MANY_THREADS 600 /* more than the heap's records (512) */

typedef struct many_arg {
  pthread_barrier_t *bar;
  void *blk;
  int ok;
} many_arg;

static void *many_thread(void *a) {
  many_arg *m = a;
  m->ok = mproc_heap_alloc(24, &m->blk) == 0;
  pthread_barrier_wait(m->bar); /* all alive at once, each holding a record */
  m->ok = m->ok && mproc_heap_free(m->blk) == 0;
  return NULL;
}

/* More live threads than records: the extra ones run unrecorded, every
 * call still works; after they exit their records are reused. */
static void more_threads_than_records(void **state) {
  (void)state;
  size_t base = live_now();
  pthread_barrier_t bar;
  pthread_barrier_init(&bar, NULL, MANY_THREADS);
  static many_arg args[MANY_THREADS];
  static pthread_t th[MANY_THREADS];
  pthread_attr_t at;
  pthread_attr_init(&at);
  pthread_attr_setstacksize(&at, 64 * 1024);
  for (int i = 0; i < MANY_THREADS; i++) {
    args[i].bar = &bar;
    assert_int_equal(pthread_create(&th[i], &at, many_thread, &args[i]), 0);
  }
  for (int i = 0; i < MANY_THREADS; i++) {
    pthread_join(th[i], NULL);
    if (!args[i].ok) fail_msg("thread %d: alloc or free failed", i);
  }
  pthread_attr_destroy(&at);
  pthread_barrier_destroy(&bar);
  assert_int_equal(live_now(), base);
  assert_heap_ok();
  /* The exited threads' records are free again: a child process (and a
   * thread in it) gets one and is protected (a kill at its crash points
   * leaks nothing). */
  for (int n = 1; n < 40; n++) {
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
      void *p;
      mproc__heap_crash_after(n);
      if (mproc_heap_alloc(100000, &p)) _exit(1);
      _exit(0);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (WIFEXITED(st)) break; /* past the last crash point: one leaked block is the child's */
    assert_heap_ok();
    assert_int_equal(live_now(), base);
  }
}

/* ---- chaos: children allocate and free; the parent SIGKILLs them ---- */

#define CHAOS_KIDS 3
#define CHAOS_HOLD 48

static void chaos_child(record *r, unsigned seed) {
  for (;;) {
    int k = (int)(rand_r(&seed) % CHAOS_HOLD);
    void *p = r->blk[k % 40];
    if (p) {
      r->blk[k % 40] = NULL;
      if (mproc_heap_free(p)) _exit(20);
    } else {
      unsigned c = rand_r(&seed) % 100;
      size_t n = c < 80 ? 1 + rand_r(&seed) % 2048
                 : c < 95 ? 2048 + rand_r(&seed) % 14336 : 16385 + rand_r(&seed) % 250000;
      int rc = mproc_heap_alloc(n, &p);
      if (rc == MPROC_ENOMEM) continue;
      if (rc) _exit(21);
      ((char *)p)[0] = 1;
      ((char *)p)[n - 1] = 2;
      r->blk[k % 40] = p;
    }
  }
}

static void chaos(int kills, double max_secs) {
  record *rec[CHAOS_KIDS];
  for (int i = 0; i < CHAOS_KIDS; i++) MPROC_PASS(mproc_heap_alloc(sizeof(record), (void **)&rec[i]));
  size_t base = live_now();
  pid_t kids[CHAOS_KIDS] = {0};
  unsigned seed = (unsigned)getpid();
  int done = 0;
  double end = mproc_test_now() + max_secs;
  while (done < kills && mproc_test_now() < end) {
    for (int i = 0; i < CHAOS_KIDS; i++)
      if (!kids[i]) {
        kids[i] = fork();
        assert_true(kids[i] >= 0);
        if (kids[i] == 0) chaos_child(rec[i], seed + (unsigned)i * 31u + (unsigned)done);
      }
    usleep(200 + rand_r(&seed) % 3000);
    int v = (int)(rand_r(&seed) % CHAOS_KIDS);
    kill(kids[v], SIGKILL);
    int st;
    assert_int_equal(waitpid(kids[v], &st, 0), kids[v]);
    if (!WIFSIGNALED(st)) fail_msg("chaos child exited with %d", WEXITSTATUS(st));
    kids[v] = 0;
    done++;
    /* The dead child's blocks are freed by the parent. */
    for (int i = 0; i < 40; i++)
      if (rec[v]->blk[i]) {
        MPROC_PASS(mproc_heap_free(rec[v]->blk[i]));
        rec[v]->blk[i] = NULL;
      }
  }
  for (int i = 0; i < CHAOS_KIDS; i++)
    if (kids[i]) {
      kill(kids[i], SIGKILL);
      waitpid(kids[i], NULL, 0);
      for (int j = 0; j < 40; j++)
        if (rec[i]->blk[j]) MPROC_PASS(mproc_heap_free(rec[i]->blk[j]));
    }
  assert_true(done >= kills / 4);
  assert_heap_ok();
  mproc_heap_stats st;
  MPROC_PASS(mproc_heap_stats_get(&st));
  /* Each kill leaks at most the block in flight. */
  assert_true(st.live_blocks - base <= (size_t)done + CHAOS_KIDS);
  print_message("%d kills, %zu recoveries, %zu blocks leaked, %zu orphan slabs\n", done,
                st.recoveries, st.live_blocks - base, mproc__heap_orphans());
  /* Every size still allocates. */
  for (size_t n = 1; n <= (1 << 20); n = n * 3 / 2 + 1) {
    void *p;
    MPROC_PASS(mproc_heap_alloc(n, &p));
    MPROC_PASS(mproc_heap_free(p));
  }
  for (int i = 0; i < CHAOS_KIDS; i++) MPROC_PASS(mproc_heap_free(rec[i]));
  assert_heap_ok();
}

static void chaos_kill_allocating_children(void **state) {
  (void)state;
  chaos(150, 20);
}
static void chaos_kill_allocating_children_long(void **state) {
  (void)state;
  chaos(2000, 25);
}

static const struct CMUnitTest tests[] = {
    MPROC_TEST(alloc_sizes_aligned_zeroed),
    MPROC_TEST(multiples_of_64_are_cache_aligned),
    MPROC_TEST(alloc_bad_input),
    MPROC_TEST(free_bad_input),
    MPROC_TEST(calls_after_failed_init),
    MPROC_TEST(stats_contains_root),
    MPROC_TEST(reuse_is_zeroed),
    MPROC_TEST(one_million_small_blocks),
    MPROC_SLOW_TEST(ten_million_small_blocks),
    MPROC_TEST(threads_and_processes_concurrently),
    MPROC_TEST(large_free_returns_memory),
    MPROC_TEST(small_free_releases_slabs),
    MPROC_TEST(retained_spans_reused_then_trimmed),
    MPROC_TEST(cached_span_grows_into_clean_neighbour),
    MPROC_TEST(alloc_ex_flags),
    MPROC_TEST(cache_size_from_environment),
    MPROC_TEST(small_heap_exhaustion),
    MPROC_TEST(object_after_fork_visible_in_child),
    MPROC_TEST(attach_in_exec_child),
    MPROC_TEST(killed_at_every_crash_point),
    MPROC_TEST(more_threads_than_records),
    MPROC_TEST(chaos_kill_allocating_children),
    MPROC_SLOW_TEST(chaos_kill_allocating_children_long),
};

MPROC_TEST_MAIN(tests)
