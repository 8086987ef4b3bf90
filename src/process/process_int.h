/*
 * process_int.h - internals shared by the process layer's files.
 *
 *   process.c     the mproc_process_t handle, the child registry, reaping,
 *                 exit-time handling (atexit), current/parent process
 *   child.c       what a new child does first (reset per-process state,
 *                 PR_SET_PDEATHSIG, signal mask) and last (exit processing)
 *   launcher.c    the long-lived "launcher" thread that forks on behalf of
 *                 short-lived threads, so PR_SET_PDEATHSIG stays armed
 *   forkserver.c  the per-process fork server (MPROC_START_FORKSERVER)
 *   spawn.c       target registry, fork+exec of /proc/self/exe, spawn_main
 *   cpu_count.c   mproc_cpu_count()
 *
 * Per-process state (the registry, the launcher, the forkserver connection,
 * this process's name and identity) belongs to the process that created it:
 * every child resets it first thing after fork (mproc__child_reset).
 *
 * Lock order: g_reg_mu (process.c) -> launcher mutex -> forkserver mutex.
 */
#ifndef MPROC_PROCESS_INT_H
#define MPROC_PROCESS_INT_H

#include <signal.h>
#include <stddef.h>
#include <sys/types.h>

#include "internal.h"

#define MPROC__PROC_MAGIC MPROC__MAGIC('p', 'r', 'o', 'c')
#define MPROC__NAME_MAX 255       /* bytes of a process name, without NUL */
#define MPROC__IDENT_MAX 255      /* bytes of an identity "2:1:3" */
#define MPROC__TARGET_NAME_MAX 63 /* bytes of a registered target's name */
#define MPROC__ARG_MAX ((size_t)64 << 20) /* largest arg_size copied */
#define MPROC__DAEMON_GRACE 1.0   /* s between SIGTERM and SIGKILL at exit */
/* us a join past its deadline still waits for a child whose death pipe is
 * at EOF (it is exiting) to become waitable. */
#define MPROC__EXITING_GRACE_US 100000

enum { PS_CREATED = 0, PS_RUNNING = 1, PS_ENDED = 2 };

struct mproc_process {
  uint32_t magic;        /* MPROC__PROC_MAGIC; DEAD_MAGIC once freed */
  int state;             /* PS_*; changed under g_reg_mu */
  int closed;            /* mproc_process_close() done */
  int detached;          /* destroyed while running: the registry frees it */
  int hold;              /* pinned by exit processing: not freed while > 0 */
  int daemon;            /* terminated at the parent's normal exit */
  int method;            /* resolved start method (never DEFAULT) */
  pid_t owner;           /* pid of the process that created the handle */
  pid_t pid;             /* child's pid once started */
  int pidfd;             /* the sentinel: a pidfd of the child, or (without
                            pidfd support) the read end of its death pipe
                            or its forkserver status socket; -1 if none */
  int fd_is_pidfd;       /* pidfd above is a real pidfd */
  int status_fd;         /* forkserver: socket delivering the exit status */
  _Atomic uint32_t *exit_slot; /* forkserver: heap word the child sets to
                            MPROC__EXIT_SLOT_SET | code as it returns
                            from its target (NULL if none) */
  int exitcode;          /* valid in PS_ENDED: 0..255 or -signo */
  mproc_target_fn target;           /* what the child runs */
  void *arg;             /* what the target receives */
  void *arg_copy;        /* private copy when arg_size > 0 (malloc) */
  size_t arg_size;       /* bytes at arg_copy, 0 = pass arg as a pointer */
  char name[MPROC__NAME_MAX + 1];       /* the child's name */
  char identity[MPROC__IDENT_MAX + 1];  /* "N" or "<parent identity>:N" */
  char target_name[MPROC__TARGET_NAME_MAX + 1]; /* spawn: registered name */
  unsigned char authkey[MPROC_AUTHKEY_MAX]; /* the child's key if given */
  size_t authkey_len;    /* 0 = the parent's key at start time */
  struct mproc_process *prev, *next;    /* registry links while running */
};

/* What a new child needs to become "itself". */
typedef struct mproc__child_spec {
  mproc_target_fn target;
  void *arg;
  const char *name;
  const char *identity;
  int daemon;
  pid_t parent_pid;      /* reported by mproc_parent_pid() in the child */
  int start_method;      /* family default start method to inherit */
  const unsigned char *authkey; /* the child's authkey, NULL = inherited */
  size_t authkey_len;
  _Atomic uint32_t *exit_slot; /* where to leave the exit code, or NULL */
} mproc__child_spec;

/* Marks an exit slot as written (a code alone may be 0). */
#define MPROC__EXIT_SLOT_SET 0x100u

/* ---- this process (process.c) ---- */

/* getpid() and "is the calling thread the main thread", cached (cleared
 * in every child by a pthread_atfork handler). */
pid_t mproc__my_pid(void);
int mproc__is_main_thread(void);
/* Non-zero when the kernel (or valgrind, which lacks them) gives pidfds.
 * Without them a child holds the write end of a "death pipe" whose read
 * end is the parent's sentinel (EOF when the child is gone), children are
 * reaped with waitid(P_PID) and signalled with kill() (safe: a child's pid
 * is not reused before we reap it). */
int mproc__have_pidfd(void);
/* Tests: force the no-pidfd fallback (1) or probe again (0). */
void mproc__force_no_pidfd(int on);
/* This process's death-pipe write end (fallback mode), kept open until it
 * exits; closed in its children by mproc__child_reset. */
void mproc__set_death_fd(int fd);

/* Set the calling process's identity after it was started by mproc. */
void mproc__self_set(const char *name, const char *identity, int daemon,
                     pid_t parent_pid);
/* Forget the parent's children and per-process helpers in a new child:
 * close the inherited pidfds and sockets, empty the registry, reset the
 * launcher and the forkserver connection. Single-threaded context only. */
void mproc__child_reset(void);
/* Exit processing, Python's _exit_function: terminate daemon children
 * (SIGTERM, SIGKILL after MPROC__DAEMON_GRACE), join the others, stop
 * the forkserver. Safe to call more than once. */
void mproc__exit_work(void);
/* Registry cleanup in a child (used by mproc__child_reset). */
void mproc__registry_reset_child(void);

/* ---- authkey (authkey.c) ---- */

/* Copy this process's key (made if needed) to out (MPROC_AUTHKEY_MAX
 * bytes); returns its length (0 if no randomness was available). */
size_t mproc__authkey_copy(unsigned char *out);
/* In a new child: re-make the lock; set the key when one is given. */
void mproc__authkey_reset_child(const unsigned char *key, size_t len);

/* ---- child side (child.c) ---- */

/* Arm PR_SET_PDEATHSIG(SIGKILL) and check the parent did not die before it
 * was armed (getppid() != expected): _exit at once if it did. */
void mproc__child_pdeathsig(pid_t expected_parent);
/* Reset every signal disposition to SIG_DFL (SIG_IGN ones too), as a fresh
 * program expects. Async-signal-safe. */
void mproc__reset_signal_dispositions(void);
/* Become the child described by spec, run its target, do the exit
 * processing, flush stdout/stderr and _exit with the target's value. */
_Noreturn void mproc__child_main(const mproc__child_spec *spec);
/* Flush stdout and stderr before a fork (so buffered output is not
 * written twice) - Python's _flush_std_streams. */
void mproc__flush_std(void);

/* ---- launcher (launcher.c) ---- */

/* Run fn(ctx) on a long-lived thread: the calling thread itself when it is
 * the process's main thread, else the library's launcher thread (created on
 * first use, never exits). fn typically forks; PR_SET_PDEATHSIG in the
 * child then fires only when the whole process dies. All signals are
 * blocked while fn runs; *caller_mask receives the caller's signal mask for
 * the child to restore. Returns fn's result, or a negative error if the
 * launcher thread could not be created. */
int mproc__run_on_long_lived_thread(int (*fn)(void *ctx, const sigset_t *caller_mask),
                                    void *ctx);
/* Forget the launcher in a new child (it has no such thread). */
void mproc__launcher_reset_child(void);

/* ---- forkserver (forkserver.c) ---- */

/* Start this process's forkserver if it is not running. 0 or -errno. */
int mproc__forkserver_ensure(void);
/* Have the forkserver start p. On success p->pid, p->pidfd and
 * p->status_fd are set. */
int mproc__forkserver_start(struct mproc_process *p);
/* Collect a forkserver child's exit status without blocking (wait up to
 * `wait` seconds when the child is known to have exited). Returns 1 when
 * ended (*code set), 0 when still running. */
int mproc__forkserver_poll(struct mproc_process *p, double wait, int *code);
/* Stop this process's forkserver (if any) and reap it. */
void mproc__forkserver_stop(void);
/* pid of the running forkserver, 0 if none (tests). */
pid_t mproc__forkserver_pid(void);
/* Non-zero when this process has a forkserver (lock-free). */
int mproc__forkserver_running(void);
/* Forget the forkserver in a new child: close the inherited fds. */
void mproc__forkserver_reset_child(void);

/* ---- spawn (spawn.c) ---- */

/* Forget a target-table lock copied from the parent (new child). */
void mproc__targets_reset_child(void);
/* Find a registered target: by name (fn may be NULL) or by function. */
mproc_target_fn mproc__target_lookup(const char *name);
const char *mproc__target_name_of(mproc_target_fn fn);
/* fork+exec a spawn child for p; sets p->pid and p->pidfd. */
int mproc__spawn_start(struct mproc_process *p);

/* ---- core/init.c ---- */
int mproc__init_start_method(void);
void mproc__init_set_start_method(int m);
void mproc__mark_inited(size_t heap_size);

#endif
