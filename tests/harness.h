/*
 * harness.h - shared test support for every module's cmocka suite.
 *
 * A suite's main() is MPROC_TEST_MAIN(tests): it runs one named case (argv[1],
 * as CTest does) or all of them, and after the run checks that the test left
 * nothing behind: no child process, no new fd, no new /dev/shm entry.
 *
 * Typed assertions print both sides and, for mproc codes, the error text.
 */
#ifndef MPROC_TEST_HARNESS_H
#define MPROC_TEST_HARNESS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "mproc.h"

/* Mark test cases so CMake registers each as its own CTest test. */
#define MPROC_TEST(fn) cmocka_unit_test(fn)
#define MPROC_SLOW_TEST(fn) cmocka_unit_test(fn)

/* Assert a call returned exactly the expected mproc code; prints names. */
#define MPROC_ASSERT_RC(expr, want)                                           \
  do {                                                                        \
    int mproc__rc = (int)(expr);                                              \
    int mproc__want = (int)(want);                                            \
    if (mproc__rc != mproc__want)                                             \
      fail_msg("%s returned %d (%s: %s), expected %d (%s)", #expr, mproc__rc, \
               mproc_err_name(mproc__rc), mproc_strerror(mproc__rc),          \
               mproc__want, mproc_err_name(mproc__want));                     \
  } while (0)
#define MPROC_PASS(expr) MPROC_ASSERT_RC(expr, 0)

int mproc_test_main(const struct CMUnitTest *tests, size_t n, int argc,
                    char **argv, const char *suite);
#define MPROC_TEST_MAIN(tests)                                                \
  int main(int argc, char **argv) {                                          \
    return mproc_test_main(tests, sizeof(tests) / sizeof(tests[0]), argc,    \
                           argv, __FILE__);                                   \
  }

/* Leak probes, usable inside tests too. */
int mproc_test_count_fds(void);       /* open fds of this process */
int mproc_test_count_children(void);  /* live or zombie children */
int mproc_test_count_shm(void);       /* entries in /dev/shm named mproc* */
/* Children of pid's main thread (all of a single-threaded process's, e.g.
 * a forkserver's): up to cap pids in out and, if state is not NULL, their
 * state letters ('S', 'Z', ...). Returns how many, or -1. */
int mproc_test_children_of(pid_t pid, pid_t *out, char *state, int cap);
/* How many of those children are zombies, or -1. */
int mproc_test_zombies_of(pid_t pid);
/* Wait up to timeout seconds for pid to disappear (not even a zombie of
 * ours); returns 1 if gone. Works for non-children too. */
int mproc_test_wait_gone(pid_t pid, double timeout);
/* 1 if pid exists and is not a zombie (kill(pid, 0) succeeds on zombies). */
int mproc_test_pid_running(pid_t pid);
double mproc_test_now(void);          /* CLOCK_MONOTONIC seconds */
/* Reap child pid, require that it exited 0 and return the CPU seconds
 * (user + system) it used: the probe for "no CPU while waiting". */
double mproc_test_join_cpu(pid_t pid);

#endif
