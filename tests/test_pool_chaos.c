/* test_pool_chaos.c - the pool under attack: a killer SIGKILLs random
 * workers during a 100,000-task map; the owner is SIGKILLed; SIGINT hits the
 * whole process group. Nothing may hang, be lost, or be left behind. */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <dirent.h>
#include <unistd.h>

#include "harness.h"

static int slow_sq(const void *in, size_t n, void *out, mproc_task_ctx *c) {
  (void)n;
  (void)c;
  long x = *(const long *)in;
  /* ~10 us of work so the map lasts long enough for hundreds of kills */
  double t0 = mproc_test_now();
  while (mproc_test_now() - t0 < 10e-6) {
  }
  *(long *)out = x * x;
  return 0;
}

static int sleepy(const void *in, size_t n, void *out, mproc_task_ctx *c) {
  (void)in;
  (void)n;
  (void)c;
  sleep(60);
  *(long *)out = 0;
  return 0;
}

/* Children of every thread of pid (the pool thread forks the workers). */
static int list_children(pid_t pid, pid_t *out, int cap) {
  char path[96];
  snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
  DIR *d = opendir(path);
  if (!d) return 0;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) && n < cap) {
    if (e->d_name[0] == '.') continue;
    char p2[300];
    snprintf(p2, sizeof p2, "/proc/%d/task/%.200s/children", (int)pid, e->d_name);
    FILE *f = fopen(p2, "r");
    if (!f) continue;
    int c;
    while (n < cap && fscanf(f, "%d", &c) == 1) out[n++] = c;
    fclose(f);
  }
  closedir(d);
  return n;
}

/* A killed worker stays a zombie until the pool reaps it: killing it again
 * would count a kill that killed nothing. */
static int is_zombie(pid_t pid) {
  char path[64], buf[512];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  if (!f) return 1;
  size_t r = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[r] = 0;
  char *q = strrchr(buf, ')');
  return !q || q[2] == 'Z' || q[2] == 'X';
}

typedef struct killer_ctl {
  _Atomic int stop;
  _Atomic int kills;
} killer_ctl;

static void killer(pid_t owner, pid_t self_skip, killer_ctl *ctl) {
  unsigned seed = (unsigned)getpid();
  while (!atomic_load(&ctl->stop)) {
    pid_t kids[64];
    int n = list_children(owner, kids, 64);
    int cand = 0;
    pid_t pick[64];
    for (int i = 0; i < n; i++)
      if (kids[i] != self_skip && kids[i] != getpid() && !is_zombie(kids[i]))
        pick[cand++] = kids[i];
    if (cand) {
      pid_t v = pick[rand_r(&seed) % cand];
      if (kill(v, SIGKILL) == 0) atomic_fetch_add(&ctl->kills, 1);
    }
    usleep(3000 + rand_r(&seed) % 4000);
  }
  _exit(0);
}

static size_t heap_live(void) {
  mproc_heap_stats st;
  mproc_heap_stats_get(&st);
  return st.live_blocks;
}

static void test_chaos_map_killer(void **s) {
  (void)s;
  size_t base = heap_live();
  killer_ctl *ctl;
  MPROC_PASS(mproc_heap_alloc(sizeof *ctl, (void **)&ctl));
  mproc_pool_t *p = NULL;
  mproc_pool_opts po = {.processes = 3};
  MPROC_PASS(mproc_pool_create(&p, &po));
  enum { N = 100000 };
  long *in = malloc(N * sizeof(long)), *out = malloc(N * sizeof(long));
  int *errs = malloc(N * sizeof(int));
  for (long i = 0; i < N; i++) in[i] = i;
  pid_t me = getpid();
  pid_t k = fork();
  assert_true(k >= 0);
  if (k == 0) killer(me, 0, ctl);
  uint64_t total_fail = 0;
  int rounds = 0;
  double t0 = mproc_test_now();
  /* Repeat the map until the killer has struck hundreds of times. */
  while (atomic_load(&ctl->kills) < 300 && mproc_test_now() - t0 < 40) {
    mproc_call_opts o = {.chunksize = 10, .errors = errs};
    memset(out, 0xff, N * sizeof(long));
    int rc = mproc_pool_map(p, slow_sq, in, N, sizeof(long), out, sizeof(long), &o);
    assert_true(rc == 0 || rc == MPROC_EWORKERDIED);
    uint64_t fails = 0;
    for (long i = 0; i < N; i++) {
      if (errs[i] == 0) {
        if (out[i] != i * i) fail_msg("task %ld: wrong result %ld", i, out[i]);
      } else if (errs[i] != MPROC_EWORKERDIED) {
        fail_msg("task %ld: unexpected code %d", i, errs[i]);
      } else {
        fails++;
      }
    }
    total_fail += fails;
    rounds++;
  }
  atomic_store(&ctl->stop, 1);
  int st;
  assert_int_equal(waitpid(k, &st, 0), k);
  int kills = atomic_load(&ctl->kills);
  fprintf(stderr, "chaos: %d rounds, %d kills, %llu tasks failed\n", rounds, kills,
          (unsigned long long)total_fail);
  assert_true(kills >= 200); /* "hundreds of kills" */
  /* A dying process can be hit twice, so kills >= deaths; the invariant is
   * per death: it fails at most the one chunk (10 tasks) it held. */
  mproc_pool_stats pst;
  MPROC_PASS(mproc_pool_stats_get(p, &pst));
  fprintf(stderr, "chaos: %llu worker deaths, %llu restarts\n",
          (unsigned long long)pst.worker_deaths, (unsigned long long)pst.worker_restarts);
  assert_true(pst.worker_deaths >= 200);
  assert_true(total_fail <= pst.worker_deaths * 10);
  assert_true(pst.worker_restarts >= pst.worker_deaths);
  /* The pool still works after the storm. */
  mproc_call_opts o = {.errors = errs};
  MPROC_PASS(mproc_pool_map(p, slow_sq, in, 1000, sizeof(long), out, sizeof(long), &o));
  for (long i = 0; i < 1000; i++) assert_int_equal(out[i], i * i);
  MPROC_PASS(mproc_pool_close(p));
  MPROC_PASS(mproc_pool_join(p, 30));
  MPROC_PASS(mproc_pool_destroy(p));
  mproc_heap_free(ctl);
  assert_int_equal(heap_live(), base);
  free(in);
  free(out);
  free(errs);
}

/* The owner is SIGKILLed: every worker is gone within 1 s. */
static void test_owner_killed(void **s) {
  (void)s;
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  pid_t owner = fork();
  if (owner == 0) {
    close(fds[0]);
    mproc_pool_t *p = NULL;
    mproc_pool_opts o = {.processes = 3};
    if (mproc_pool_create(&p, &o)) _exit(2);
    long in[6] = {0}, out[6];
    mproc_async_t *ar;
    mproc_call_opts co = {.chunksize = 1};
    mproc_pool_map_async(p, sleepy, in, 6, 8, out, 8, &co, &ar);
    usleep(100000);
    pid_t kids[16];
    int n = list_children(getpid(), kids, 16);
    ssize_t w = write(fds[1], kids, (size_t)n * sizeof(pid_t));
    (void)w;
    close(fds[1]);
    pause();
    _exit(0);
  }
  close(fds[1]);
  pid_t kids[16];
  ssize_t r = read(fds[0], kids, sizeof kids);
  close(fds[0]);
  assert_true(r >= (ssize_t)(3 * sizeof(pid_t)));
  int n = (int)(r / (ssize_t)sizeof(pid_t));
  kill(owner, SIGKILL);
  int st;
  waitpid(owner, &st, 0);
  double t0 = mproc_test_now();
  for (int i = 0; i < n; i++) assert_true(mproc_test_wait_gone(kids[i], 1.0));
  assert_true(mproc_test_now() - t0 < 1.5);
}

static volatile sig_atomic_t g_int;
static void on_int(int sig) {
  (void)sig;
  g_int = 1;
}

/* SIGINT to the whole foreground process group. Variant 0: the owner dies of
 * it; variant 1: the owner catches it and tears the pool down. Either way no
 * worker survives, and nothing stays a zombie. */
static void sigint_case(int variant) {
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  pid_t owner = fork();
  if (owner == 0) {
    setpgid(0, 0);
    close(fds[0]);
    if (variant) signal(SIGINT, on_int);
    mproc_pool_t *p = NULL;
    mproc_pool_opts o = {.processes = 2};
    if (mproc_pool_create(&p, &o)) _exit(2);
    long in[4] = {0}, out[4];
    mproc_async_t *ar;
    mproc_call_opts co = {.chunksize = 1};
    mproc_pool_map_async(p, sleepy, in, 4, 8, out, 8, &co, &ar);
    usleep(100000);
    pid_t kids[16];
    int n = list_children(getpid(), kids, 16);
    ssize_t w = write(fds[1], kids, (size_t)n * sizeof(pid_t));
    (void)w;
    close(fds[1]);
    while (!g_int) pause();
    /* Caught: tear down (terminate + join + free); no zombie remains. */
    mproc_async_destroy(ar);
    mproc_pool_destroy(p);
    pid_t left[16];
    _exit(list_children(getpid(), left, 16) == 0 ? 0 : 3);
  }
  setpgid(owner, owner);
  close(fds[1]);
  pid_t kids[16];
  ssize_t r = read(fds[0], kids, sizeof kids);
  close(fds[0]);
  assert_true(r >= (ssize_t)(2 * sizeof(pid_t)));
  int n = (int)(r / (ssize_t)sizeof(pid_t));
  kill(-owner, SIGINT);
  int st;
  assert_int_equal(waitpid(owner, &st, 0), owner);
  if (variant) {
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
  } else {
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGINT);
  }
  for (int i = 0; i < n; i++) assert_true(mproc_test_wait_gone(kids[i], 1.0));
}

static void test_sigint_owner_dies(void **s) {
  (void)s;
  sigint_case(0);
}

static void test_sigint_owner_cleans_up(void **s) {
  (void)s;
  sigint_case(1);
}

static const struct CMUnitTest tests[] = {
    MPROC_SLOW_TEST(test_chaos_map_killer),
    MPROC_TEST(test_owner_killed),
    MPROC_TEST(test_sigint_owner_dies),
    MPROC_TEST(test_sigint_owner_cleans_up),
};

MPROC_TEST_MAIN(tests)
