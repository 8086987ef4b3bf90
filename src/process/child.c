/*
 * child.c - the first and last things a child started by mproc does.
 *
 * DESIGN
 *  - Dying with the parent: PR_SET_PDEATHSIG(SIGKILL) is armed in the
 *    child, then getppid() is compared with the parent's pid taken before
 *    fork: if the parent died in between, the child was re-parented and
 *    exits at once. The death signal fires when the *thread* that forked
 *    exits, which is why forks run on a long-lived thread (launcher.c).
 *  - The child runs its target, then the same exit processing as a normal
 *    exit (daemon grandchildren terminated, others joined), flushes stdout
 *    and stderr and calls _exit(): the parent's atexit handlers and other
 *    FILE buffers belong to the parent, as with Python's os._exit in the
 *    child. The exit status is the target's return value & 0xff.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "process/process_int.h"

/* Called through pointers: with lazy binding, a libc function that only
 * children call would be resolved by the dynamic linker in *every* child
 * (symbol lookup plus a dozen page faults each time), because the parent's
 * GOT never gets the answer. Data relocations are resolved at load time. */
static void (*volatile p_exit)(int) = _exit;
static int (*volatile p_prctl)(int, ...) = prctl;
static pid_t (*volatile p_getppid)(void) = getppid;

void mproc__child_pdeathsig(pid_t expected_parent) {
  p_prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  if (p_getppid() != expected_parent) p_exit(128 + SIGKILL);
}

void mproc__reset_signal_dispositions(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_DFL;
  for (int s = 1; s < NSIG; s++) {
    if (s == SIGKILL || s == SIGSTOP) continue;
    sigaction(s, &sa, NULL); /* EINVAL for the few reserved ones: fine */
  }
}

void mproc__flush_std(void) {
  /* __fpending first: most starts have nothing buffered, and fflush would
   * fault in stdio's code in every child. */
  if (__fpending(stdout)) fflush(stdout);
  if (__fpending(stderr)) fflush(stderr);
}

_Noreturn void mproc__child_main(const mproc__child_spec *spec) {
  mproc__self_set(spec->name, spec->identity, spec->daemon, spec->parent_pid);
  if (spec->authkey) mproc__authkey_reset_child(spec->authkey, spec->authkey_len);
  if (spec->start_method) mproc__init_set_start_method(spec->start_method);
  int r = spec->target(spec->arg);
  mproc__exit_work();
  mproc__flush_std();
  /* Last, so the code is the one _exit reports: the forkserver requester
   * reads it as soon as the pidfd fires, without waiting for the server
   * to reap us and relay it (a cross-CPU wake-up less on every join). */
  if (spec->exit_slot)
    atomic_store_explicit(spec->exit_slot, MPROC__EXIT_SLOT_SET | (uint32_t)(r & 0xff),
                          memory_order_release);
  p_exit(r & 0xff);
  __builtin_unreachable();
}
