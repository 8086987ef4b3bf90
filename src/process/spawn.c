/*
 * spawn.c - the MPROC_START_SPAWN start method and the target registry.
 *
 * DESIGN
 *  - A spawned child is a fresh exec of /proc/self/exe, so function
 *    pointers and ordinary pointers of the parent mean nothing in it. The
 *    target is found by the name it was registered under
 *    (mproc_register_target), and the only memory shared is the family's
 *    heap, re-attached at the same address (mproc__heap_attach) from the
 *    memfd the child inherits. Arg bytes (arg_size > 0) travel in a heap
 *    block the parent frees once the child reported it copied them.
 *  - The child is told what to do by its argv:
 *      argv[0] argv[1]="--mproc-spawn" argv[2]=spec argv[3]=name
 *      argv[4]=identity argv[5]=target name argv[6]=authkey in hex
 *    and mproc_spawn_main(), called first thing in main(), acts on it.
 *  - Start-up handshake (libuv's CLOEXEC-pipe idea, extended past exec):
 *    the child gets the write end of a pipe that stays open across exec;
 *    it writes an int32: -errno if exec failed, the result of attaching
 *    the heap and finding the target otherwise (0 = running). EOF without
 *    a word means it died on the way. start() returns only after that.
 *  - Between fork and exec the child may be the copy of a multithreaded
 *    process, so it only makes async-signal-safe calls; argv is built
 *    before the fork. The child is made with clone(CLONE_VM|CLONE_VFORK)
 *    (posix_spawn's way) rather than fork(): the parent's page tables are
 *    not copied, which saves ~50 us for a small program and milliseconds
 *    for one with a large heap (fork+exec of a process with 100 MB
 *    touched: ~2.8 ms; vfork+exec: ~0.8 ms on the 2-CPU test VM).
 *    Sanitizer builds use fork() (their runtimes' per-thread state would
 *    be shared with the child).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "heap/heap.h"
#include "platform/platform.h"
#include "process/process_int.h"

#define SPAWN_FLAG "--mproc-spawn"
#define MAX_TARGETS 256

/* ---- registry of targets ---- */

typedef struct target_ent {
  char name[MPROC__TARGET_NAME_MAX + 1]; /* registered name */
  mproc_target_fn fn;                    /* the function */
} target_ent;

static pthread_mutex_t g_tmu = PTHREAD_MUTEX_INITIALIZER;
static target_ent g_targets[MAX_TARGETS];
static int g_ntargets;

int mproc_register_target(const char *name, mproc_target_fn fn) {
  if (!name || !*name || !fn) return -EINVAL;
  if (strlen(name) > MPROC__TARGET_NAME_MAX) return -ENAMETOOLONG;
  pthread_mutex_lock(&g_tmu);
  int rc = 0;
  int i;
  for (i = 0; i < g_ntargets; i++)
    if (strcmp(g_targets[i].name, name) == 0) break;
  if (i < g_ntargets) {
    rc = g_targets[i].fn == fn ? 0 : -EEXIST; /* same pair twice is fine */
  } else if (g_ntargets == MAX_TARGETS) {
    rc = -ENOSPC;
  } else {
    snprintf(g_targets[i].name, sizeof g_targets[i].name, "%s", name);
    g_targets[i].fn = fn;
    g_ntargets++;
  }
  pthread_mutex_unlock(&g_tmu);
  return rc;
}

void mproc__targets_reset_child(void) {
  /* Another thread may have held the lock at fork time; the table itself
   * is only appended to under it, so entries below g_ntargets are whole. */
  g_tmu = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
}

mproc_target_fn mproc__target_lookup(const char *name) {
  mproc_target_fn fn = NULL;
  if (!name) return NULL;
  pthread_mutex_lock(&g_tmu);
  for (int i = 0; i < g_ntargets; i++)
    if (strcmp(g_targets[i].name, name) == 0) fn = g_targets[i].fn;
  pthread_mutex_unlock(&g_tmu);
  return fn;
}

const char *mproc__target_name_of(mproc_target_fn fn) {
  const char *name = NULL;
  pthread_mutex_lock(&g_tmu);
  for (int i = 0; i < g_ntargets && !name; i++)
    if (g_targets[i].fn == fn) name = g_targets[i].name;
  pthread_mutex_unlock(&g_tmu);
  return name; /* entries are never removed: stays valid */
}

/* ---- parent side ---- */

typedef struct spawn_ctx {
  char *const *argv;  /* prepared before fork */
  int heap_fd;        /* made inheritable in the child */
  int status_w;       /* made inheritable in the child */
  pid_t parent;
  pid_t pid;          /* out */
  const sigset_t *caller_mask; /* the mask the child restores */
} spawn_ctx;

/* Sanitizer runtimes keep per-thread state in memory a CLONE_VM child
 * would share with its parent (and intercept some of the calls below):
 * their builds use fork(). */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SPAWN_VFORK 0
#else
#define SPAWN_VFORK 1
#endif

/* The child, from fork/clone to exec. With CLONE_VM it runs in the
 * parent's memory (the parent thread waits until exec): it writes nothing
 * but its own stack (and errno), takes no lock, and every signal stays
 * blocked until the dispositions are back to SIG_DFL, so no handler of the
 * parent can run in it. Async-signal-safe calls only. */
static int spawn_child(void *c) {
  spawn_ctx *ctx = c;
  mproc__child_pdeathsig(ctx->parent); /* survives exec */
  mproc__reset_signal_dispositions();
  fcntl(ctx->heap_fd, F_SETFD, 0);
  fcntl(ctx->status_w, F_SETFD, 0);
  pthread_sigmask(SIG_SETMASK, ctx->caller_mask, NULL);
  execv("/proc/self/exe", ctx->argv);
  int32_t e = -errno;
  ssize_t w = write(ctx->status_w, &e, sizeof e);
  (void)w;
  _exit(127);
}

static int spawn_fork_fn(void *c, const sigset_t *caller_mask) {
  spawn_ctx *ctx = c;
  ctx->caller_mask = caller_mask;
  pid_t pid;
  if (SPAWN_VFORK && mproc__sys.fork == mproc__sys_real.fork) {
    /* vfork-style (as posix_spawn does): no copy of the parent's page
     * tables, and no copy-on-write faults in the parent afterwards - with
     * a large heap that is most of a fork+exec's cost. The child runs on
     * this buffer, below which this thread's own frames are suspended. */
    char stack[32768] __attribute__((aligned(64)));
    pid = clone(spawn_child, stack + sizeof stack, CLONE_VM | CLONE_VFORK | SIGCHLD, ctx);
  } else {
    pid = mproc__sys.fork(); /* also how tests inject a failure */
    if (pid == 0) spawn_child(ctx);
  }
  if (pid < 0) return -errno;
  ctx->pid = pid;
  return 0;
}

static void reap_failed(pid_t pid) {
  kill(pid, SIGKILL);
  while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
  }
}

static int spawn_once(struct mproc_process *p) {
  int heap_fd = mproc__heap_fd();
  if (heap_fd < 0) return -EBADF;
  void *blk = NULL;
  int rc;
  if (p->arg_size) {
    rc = mproc__heap_alloc(p->arg_size, &blk);
    if (rc) return rc;
    memcpy(blk, p->arg_copy, p->arg_size);
  }
  int pfd[2];
  if (mproc__sys.pipe2(pfd, O_CLOEXEC) < 0) {
    rc = -errno;
    mproc__heap_free(blk);
    return rc;
  }
  char spec[256];
  snprintf(spec, sizeof spec, "1:%d:%lx:%zx:%d:%d:%d:%lx:%zx:%d", heap_fd,
           (unsigned long)(uintptr_t)mproc__heap_base(), mproc__heap_size(),
           (int)getpid(), p->daemon, mproc__init_start_method(),
           (unsigned long)(uintptr_t)(blk ? blk : p->arg), p->arg_size, pfd[1]);
  /* The authkey, as hex: argv[6]. */
  unsigned char key[MPROC_AUTHKEY_MAX];
  size_t klen = p->authkey_len;
  if (klen) memcpy(key, p->authkey, klen);
  else klen = mproc__authkey_copy(key);
  char hex[2 * MPROC_AUTHKEY_MAX + 1];
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < klen; i++) {
    hex[2 * i] = digits[key[i] >> 4];
    hex[2 * i + 1] = digits[key[i] & 15];
  }
  hex[2 * klen] = 0;
  char *argv[] = {program_invocation_name, SPAWN_FLAG, spec, p->name, p->identity,
                  p->target_name, hex, NULL};
  spawn_ctx ctx = {.argv = argv, .heap_fd = heap_fd, .status_w = pfd[1],
                   .parent = getpid(), .pid = -1};
  mproc__flush_std();
  rc = mproc__run_on_long_lived_thread(spawn_fork_fn, &ctx);
  close(pfd[1]);
  if (rc) {
    close(pfd[0]);
    mproc__heap_free(blk);
    return rc;
  }
  int have_pidfd = mproc__have_pidfd();
  int pidfd = -1;
  if (have_pidfd) {
    pidfd = mproc__sys.pidfd_open(ctx.pid, 0);
    if (pidfd < 0) {
      rc = -errno;
      reap_failed(ctx.pid);
      close(pfd[0]);
      mproc__heap_free(blk);
      return rc;
    }
  }
  /* Wait for the child's word: it exec'd, attached the heap, found the
   * target and copied its arg (or says why not). */
  int32_t word = 0;
  size_t got = 0;
  while (got < sizeof word) {
    ssize_t r = read(pfd[0], (char *)&word + got, sizeof word - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += (size_t)r;
  }
  mproc__heap_free(blk);
  if (got != sizeof word || word != 0) {
    reap_failed(ctx.pid);
    if (pidfd >= 0) close(pidfd);
    close(pfd[0]);
    return got == sizeof word && word < 0 ? word : MPROC_ECHILDFAIL;
  }
  /* The child keeps the pipe's write end until it exits: without pidfds
   * the read end is its sentinel (EOF = gone). */
  if (have_pidfd) close(pfd[0]);
  p->pid = ctx.pid;
  p->pidfd = have_pidfd ? pidfd : pfd[0];
  p->fd_is_pidfd = have_pidfd;
  return 0;
}

/* A fresh exec places its libraries at random; now and then one lands where
 * the family's heap is, and the child cannot map it there (it says -EEXIST).
 * Another exec draws another layout. */
#define SPAWN_TRIES 8

int mproc__spawn_start(struct mproc_process *p) {
  int rc = -EEXIST;
  for (int i = 0; i < SPAWN_TRIES && rc == -EEXIST; i++) rc = spawn_once(p);
  return rc;
}

/* ---- child side ---- */

static void report(int fd, int32_t v) {
  ssize_t w;
  do w = write(fd, &v, sizeof v);
  while (w < 0 && errno == EINTR);
}

int mproc_spawn_main(int argc, char **argv) {
  if (argc < 0 || (argc > 0 && !argv)) return -EINVAL;
  if (argc < 7 || !argv[1] || strcmp(argv[1], SPAWN_FLAG) != 0) return 0;
  int ver, heap_fd, ppid, daemon, method, status_fd;
  unsigned long base, argp;
  size_t size, arg_size;
  if (sscanf(argv[2], "%d:%d:%lx:%zx:%d:%d:%d:%lx:%zx:%d", &ver, &heap_fd, &base,
             &size, &ppid, &daemon, &method, &argp, &arg_size, &status_fd) != 10 ||
      ver != 1)
    _exit(127); /* not our format: nobody to report to */
  mproc__child_pdeathsig((pid_t)ppid);
  int rc = mproc__heap_attach(heap_fd, (void *)(uintptr_t)base, size);
  if (rc) {
    report(status_fd, rc);
    _exit(127);
  }
  mproc__mark_inited(size);
  mproc_target_fn fn = mproc__target_lookup(argv[5]);
  if (!fn) {
    report(status_fd, MPROC_ENOTREG);
    _exit(127);
  }
  void *arg = (void *)(uintptr_t)argp;
  if (arg_size) {
    void *copy = malloc(arg_size);
    if (!copy) {
      report(status_fd, -ENOMEM);
      _exit(127);
    }
    memcpy(copy, arg, arg_size);
    arg = copy;
  }
  unsigned char key[MPROC_AUTHKEY_MAX];
  size_t klen = 0;
  for (const char *h = argv[6]; h[0] && h[1] && klen < sizeof key; h += 2) {
    int hi = h[0] <= '9' ? h[0] - '0' : h[0] - 'a' + 10;
    int lo = h[1] <= '9' ? h[1] - '0' : h[1] - 'a' + 10;
    key[klen++] = (unsigned char)(hi << 4 | lo);
  }
  report(status_fd, 0);
  /* Keep the pipe open until we exit: it is our death pipe (the parent's
   * sentinel when there are no pidfds); not for programs we exec. */
  fcntl(status_fd, F_SETFD, FD_CLOEXEC);
  mproc__set_death_fd(status_fd);
  mproc__child_spec spec = {
      .target = fn,
      .arg = arg,
      .name = argv[3],
      .identity = argv[4],
      .daemon = daemon,
      .parent_pid = (pid_t)ppid,
      .start_method = method,
      .authkey = klen ? key : NULL,
      .authkey_len = klen,
  };
  mproc__child_main(&spec);
}
