/* test_process_affinity.c - a child starts with the CPU affinity of the
 * thread that started it, as a fork() from that thread would give it, for
 * every start method: also when the start is handed to the launcher thread
 * (a non-main caller) or to the forkserver (started before the caller
 * changed its affinity). This binary is also the spawned child. */
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "process/process_int.h"

/* Exit code: the child's affinity as a bit mask of CPUs 0..6, or 127 when
 * it has CPUs beyond those (the tests pick CPUs below 7). */
static int report_affinity(void *arg) {
  (void)arg;
  cpu_set_t s;
  if (sched_getaffinity(0, sizeof s, &s)) return 126;
  int bits = 0;
  for (int c = 0; c < CPU_SETSIZE; c++)
    if (CPU_ISSET(c, &s)) {
      if (c >= 7) return 127;
      bits |= 1 << c;
    }
  return bits;
}

/* Two allowed CPUs below 7, or skip: with one CPU there is nothing to pin. */
static void two_cpus(int *a, int *b) {
  cpu_set_t s;
  assert_int_equal(sched_getaffinity(0, sizeof s, &s), 0);
  *a = *b = -1;
  for (int c = 0; c < 7; c++)
    if (CPU_ISSET(c, &s)) {
      if (*a < 0) *a = c;
      else if (*b < 0) *b = c;
    }
  if (*b < 0) skip();
}

static void pin(int cpu) {
  cpu_set_t s;
  CPU_ZERO(&s);
  CPU_SET(cpu, &s);
  assert_int_equal(sched_setaffinity(0, sizeof s, &s), 0);
}

static int start_and_report(int method) {
  mproc_process_t *p = NULL;
  MPROC_PASS(mproc_process_create(&p, method == MPROC_START_SPAWN ? NULL : report_affinity,
                                  NULL,
                                  &(mproc_process_opts){.start_method = method,
                                                        .target_name = method == MPROC_START_SPAWN
                                                                           ? "report_affinity"
                                                                           : NULL}));
  MPROC_PASS(mproc_process_start(p));
  MPROC_PASS(mproc_process_join(p, 30));
  int code = -1;
  MPROC_PASS(mproc_process_exitcode(p, &code));
  mproc_process_destroy(p);
  return code;
}

typedef struct thread_case {
  int method, cpu, code;
} thread_case;

static void *pinned_thread(void *arg) {
  thread_case *t = arg;
  pin(t->cpu);
  t->code = start_and_report(t->method);
  return NULL;
}

/* A non-main thread pinned to one CPU: its start goes through the
 * launcher thread, whose own affinity is the process's. */
static void from_pinned_thread(int method) {
  int a, b;
  two_cpus(&a, &b);
  cpu_set_t all;
  assert_int_equal(sched_getaffinity(0, sizeof all, &all), 0);
  for (int k = 0; k < 2; k++) { /* both CPUs: the launcher follows each */
    thread_case t = {.method = method, .cpu = k ? a : b, .code = -1};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, pinned_thread, &t), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(t.code, 1 << t.cpu);
  }
  /* The main thread, not pinned, still gets its full set. */
  int want = report_affinity(NULL);
  assert_int_equal(start_and_report(method), want);
  assert_int_equal(sched_setaffinity(0, sizeof all, &all), 0);
}

static void fork_from_pinned_thread(void **state) {
  (void)state;
  from_pinned_thread(MPROC_START_FORK);
}

static void forkserver_from_pinned_thread(void **state) {
  (void)state;
  from_pinned_thread(MPROC_START_FORKSERVER);
  mproc__forkserver_stop();
}

static void spawn_from_pinned_thread(void **state) {
  (void)state;
  from_pinned_thread(MPROC_START_SPAWN);
}

/* The forkserver was started (and so has the affinity) before the main
 * thread pinned itself: its children must still get the caller's. */
static void forkserver_after_pinning(void **state) {
  (void)state;
  int a, b;
  two_cpus(&a, &b);
  cpu_set_t all;
  assert_int_equal(sched_getaffinity(0, sizeof all, &all), 0);
  int full = report_affinity(NULL);
  MPROC_PASS(mproc_set_start_method(MPROC_START_FORKSERVER)); /* server starts now */
  assert_int_equal(start_and_report(MPROC_START_FORKSERVER), full);
  pin(b);
  assert_int_equal(start_and_report(MPROC_START_FORKSERVER), 1 << b);
  pin(a);
  assert_int_equal(start_and_report(MPROC_START_FORKSERVER), 1 << a);
  assert_int_equal(sched_setaffinity(0, sizeof all, &all), 0);
  assert_int_equal(start_and_report(MPROC_START_FORKSERVER), full);
  MPROC_PASS(mproc_set_start_method(MPROC_START_FORK));
  mproc__forkserver_stop();
}

static const struct CMUnitTest tests[] = {
    MPROC_TEST(fork_from_pinned_thread),
    MPROC_TEST(forkserver_from_pinned_thread),
    MPROC_TEST(spawn_from_pinned_thread),
    MPROC_TEST(forkserver_after_pinning),
};

int main(int argc, char **argv) {
  mproc_register_target("report_affinity", report_affinity);
  if (mproc_spawn_main(argc, argv)) return 1; /* never returns in a spawned child */
  return mproc_test_main(tests, sizeof tests / sizeof tests[0], argc, argv, __FILE__);
}
