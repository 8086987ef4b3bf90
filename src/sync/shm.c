/*
 * shm.c - named shared memory for unrelated processes (Python's
 * multiprocessing.shared_memory.SharedMemory): create, attach, ptr, size,
 * name, close, unlink.
 *
 * A segment named N is the POSIX shared memory object "/mproc.N", i.e. the
 * file /dev/shm/mproc.N (or $MPROC_SHM_DIR/mproc.N: tests point it at a
 * private directory so that concurrent test runs on the machine never see
 * each other's segments). Its size is the file's size. A handle
 * (mproc_shm_t) is private to the process that opened it (malloc'd, not in
 * the family heap): other processes attach by name. The fd is closed right
 * after mmap, so an open handle holds no file descriptor.
 *
 * Cleanup (the part Python gets wrong): a segment created without
 * MPROC_SHM_KEEP is registered with a *tracker* process, which unlinks every
 * segment still registered once the whole family that can register with it
 * has exited. The tracker is started on the first such create: a
 * double-forked process (so it is nobody's child to reap and survives its
 * creator), in its own session, ignoring SIGINT/SIGTERM/SIGHUP so that a
 * Ctrl-C or a kill of the process group leaves it to clean up. It holds the
 * read end of a SOCK_SEQPACKET socket pair; every process of the family
 * holds the write end (inherited over fork, CLOEXEC so exec'd programs do
 * not keep it). Messages are "R<path>" (register) and "U<path>"
 * (unregister, sent by an explicit unlink). When the last write end closes
 * - every holder exited, normally or by SIGKILL - recv() returns 0 and the
 * tracker unlinks what is left and exits.
 *
 * Guarantees: after every process of the family has exited, by any means,
 * non-KEEP segments are unlinked within moments, unless the tracker itself
 * was SIGKILLed (e.g. kill -9 of the whole session, the OOM killer) or a
 * process crashed between creating the file and registering it (a few
 * instructions). Attaching never registers: an attaching process's exit
 * does not unlink a segment another family still uses (Python's
 * resource_tracker does, bpo-39959). Mappings stay valid after unlink; only
 * the name goes away.
 *
 * Thread safety: handles may be used from any thread; starting the tracker
 * is serialised by g_trk_mu (re-initialised in a fork child).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sync/sync.h"

#define SHM_PREFIX "/mproc."
#define SHM_DIR_MAX 256 /* longest $MPROC_SHM_DIR accepted */
#define SHM_PATH_MAX (SHM_DIR_MAX + sizeof(SHM_PREFIX) + MPROC_SHM_NAME_MAX)
#define SHM_MAGIC MPROC__MAGIC('S', 'h', 'm', '!')

struct mproc_shm {
  uint32_t magic;   /* SHM_MAGIC while open */
  uint32_t tracked; /* 1: registered with our tracker (created, not KEEP) */
  void *ptr;        /* the mapping */
  size_t size;      /* bytes mapped (the file's size) */
  uint32_t name_off; /* where the name starts in path */
  char path[SHM_PATH_MAX]; /* "<dir>/mproc.<name>" */
};

/* ---- the tracker ---- */

static pthread_mutex_t g_trk_mu = PTHREAD_MUTEX_INITIALIZER;
static int g_trk_fd = -1; /* write end, -1 until started (guarded by g_trk_mu) */
static dev_t g_trk_dev;   /* identity of that socket: the application may */
static ino_t g_trk_ino;   /* have closed the fd number and reused it */
static pthread_once_t g_trk_once = PTHREAD_ONCE_INIT;

/* A fork may happen while another thread holds g_trk_mu: the child gets a
 * fresh mutex (the fd itself is inherited and stays valid). */
static void trk_atfork_child(void) {
  pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
  g_trk_mu = fresh;
}
static void trk_init_once(void) { pthread_atfork(NULL, NULL, trk_atfork_child); }

/* The tracker process: collect names, unlink the survivors at EOF. Only
 * plain system calls and malloc (fork-safe in glibc). Never returns. */
static void tracker_main(int rfd) {
  setsid();
  prctl(PR_SET_NAME, "mproc-shm-trk", 0, 0, 0);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_IGN;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
  sigaction(SIGQUIT, &sa, NULL);
  sigaction(SIGPIPE, &sa, NULL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  /* Hold nothing of the family's: not its stdio (a pipe to a test runner
   * would never see EOF), not its fds, not the heap's memory. */
  int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (nul >= 0) {
    dup2(nul, 0);
    dup2(nul, 1);
    dup2(nul, 2);
  }
  if (rfd != 3) {
    dup2(rfd, 3);
    rfd = 3;
  }
  syscall(SYS_close_range, 4u, ~0u, 0u);
  if (mproc__heap_base()) munmap(mproc__heap_base(), mproc__heap_size());

  char **names = NULL;
  size_t n = 0, cap = 0;
  char buf[SHM_PATH_MAX + 2];
  for (;;) {
    ssize_t r = recv(rfd, buf, sizeof buf - 1, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break; /* EOF: every process of the family is gone */
    buf[r] = 0;
    if (buf[0] == 'R') {
      if (n == cap) {
        size_t nc = cap ? cap * 2 : 16;
        char **nn = realloc(names, nc * sizeof *nn);
        if (!nn) continue;
        names = nn;
        cap = nc;
      }
      char *dup = strdup(buf + 1);
      if (dup) names[n++] = dup;
    } else if (buf[0] == 'U') {
      for (size_t i = 0; i < n; i++)
        if (names[i] && strcmp(names[i], buf + 1) == 0) {
          free(names[i]);
          names[i] = NULL;
          break;
        }
    }
  }
  for (size_t i = 0; i < n; i++)
    if (names[i]) unlink(names[i]);
  _exit(0);
}

/* Start the tracker (g_trk_mu held). 0 or -errno. */
static int tracker_start(void) {
  int sv[2];
  if (mproc__sys.socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
    return -errno;
  pid_t mid = mproc__sys.fork();
  if (mid < 0) {
    int e = errno;
    close(sv[0]);
    close(sv[1]);
    return -e;
  }
  if (mid == 0) {
    /* Intermediate: fork the tracker and exit, so the tracker is
     * re-parented (to init or a subreaper) and is nobody's child. */
    close(sv[1]);
    pid_t t = fork();
    if (t == 0) tracker_main(sv[0]);
    _exit(t < 0 ? 1 : 0);
  }
  close(sv[0]);
  int st = 0;
  while (waitpid(mid, &st, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    close(sv[1]);
    return -ECHILD;
  }
  struct stat sb;
  if (fstat(sv[1], &sb) < 0) {
    close(sv[1]);
    return -errno;
  }
  g_trk_fd = sv[1];
  g_trk_dev = sb.st_dev;
  g_trk_ino = sb.st_ino;
  return 0;
}

/* Still our socket behind g_trk_fd? */
static int tracker_fd_is_ours(void) {
  struct stat st;
  return g_trk_fd >= 0 && fstat(g_trk_fd, &st) == 0 && st.st_dev == g_trk_dev &&
         st.st_ino == g_trk_ino;
}

/* Send "<op><path>" to the tracker, starting it if needed (once more if
 * the one we knew is gone). 0 or -errno. */
static int tracker_send(char op, const char *path) {
  pthread_once(&g_trk_once, trk_init_once);
  char msg[SHM_PATH_MAX + 1];
  int len = snprintf(msg, sizeof msg, "%c%s", op, path);
  pthread_mutex_lock(&g_trk_mu);
  int rc = 0;
  for (int attempt = 0; attempt < 2; attempt++) {
    if (g_trk_fd < 0) {
      if (op == 'U') break; /* nothing to unregister from */
      if ((rc = tracker_start())) break;
    }
    if (send(g_trk_fd, msg, (size_t)len, MSG_NOSIGNAL) == len) {
      rc = 0;
      break;
    }
    rc = -errno;
    /* The tracker died (or the application closed our fd): start a fresh
     * one, closing the old fd only if it is still ours. */
    if (tracker_fd_is_ours()) close(g_trk_fd);
    g_trk_fd = -1;
  }
  pthread_mutex_unlock(&g_trk_mu);
  return rc;
}

/* ---- segments ---- */

/* "<dir>/mproc.<name>" into out (SHM_PATH_MAX bytes); *name_off gets the
 * offset of the name. The directory is /dev/shm (where shm_open puts POSIX
 * shared memory: we open the file directly, which is what shm_open does) or
 * $MPROC_SHM_DIR, an absolute path, for tests and sandboxes. */
static int make_path(char *out, const char *name, uint32_t *name_off) {
  if (!name || !*name || strchr(name, '/')) return -EINVAL;
  if (strlen(name) > MPROC_SHM_NAME_MAX) return -ENAMETOOLONG;
  const char *dir = getenv("MPROC_SHM_DIR");
  if (!dir || !*dir) dir = "/dev/shm";
  if (dir[0] != '/' || strlen(dir) > SHM_DIR_MAX) return -EINVAL;
  int n = snprintf(out, SHM_PATH_MAX, "%s%s", dir, SHM_PREFIX);
  if (name_off) *name_off = (uint32_t)n;
  snprintf(out + n, SHM_PATH_MAX - (size_t)n, "%s", name);
  return 0;
}

static int map_fd(struct mproc_shm *s, int fd) {
  void *p = mproc__sys.mmap(NULL, s->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return -errno;
  s->ptr = p;
  return 0;
}

int mproc_shm_create(mproc_shm_t **out, const char *name, size_t size, unsigned flags) {
  if (!out || size == 0 || size > (size_t)PTRDIFF_MAX) return -EINVAL;
  if (flags & ~(unsigned)MPROC_SHM_KEEP) return -EINVAL;
  struct mproc_shm *s = calloc(1, sizeof *s);
  if (!s) return -ENOMEM;
  s->size = size;
  int rc = -EEXIST, fd = -1;
  for (int tries = 0; fd < 0 && tries < 16; tries++) {
    if (name) {
      rc = make_path(s->path, name, &s->name_off);
    } else {
      /* Python's default: a random name. */
      uint64_t r = 0;
      if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r) r ^= (uint64_t)(mproc__now_sec() * 1e9) ^ (uint64_t)getpid();
      char gen[32];
      snprintf(gen, sizeof gen, "psm_%016llx", (unsigned long long)r);
      rc = make_path(s->path, gen, &s->name_off);
    }
    if (rc) goto fail;
    fd = open(s->path, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
      rc = -errno;
      if (name || rc != -EEXIST) goto fail;
    }
  }
  if (fd < 0) goto fail;
  if (!(flags & MPROC_SHM_KEEP)) {
    if ((rc = tracker_send('R', s->path))) goto fail_unlink;
    s->tracked = 1;
  }
  if (ftruncate(fd, (off_t)size) < 0) {
    rc = -errno;
    goto fail_unlink;
  }
  if ((rc = map_fd(s, fd))) goto fail_unlink;
  close(fd);
  s->magic = SHM_MAGIC;
  *out = s;
  return 0;
fail_unlink:
  unlink(s->path);
  if (s->tracked) tracker_send('U', s->path);
  close(fd);
fail:
  free(s);
  return rc;
}

int mproc_shm_attach(mproc_shm_t **out, const char *name) {
  if (!out) return -EINVAL;
  struct mproc_shm *s = calloc(1, sizeof *s);
  if (!s) return -ENOMEM;
  int rc = make_path(s->path, name, &s->name_off);
  if (rc) goto fail;
  int fd = open(s->path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    rc = -errno;
    goto fail;
  }
  struct stat st;
  if (fstat(fd, &st) < 0) {
    rc = -errno;
  } else if (st.st_size <= 0) {
    rc = -EAGAIN; /* its creator has not sized it yet */
  } else {
    s->size = (size_t)st.st_size;
    rc = map_fd(s, fd);
  }
  close(fd);
  if (rc) goto fail;
  s->magic = SHM_MAGIC;
  *out = s;
  return 0;
fail:
  free(s);
  return rc;
}

static int shm_ok(const mproc_shm_t *s) {
  if (!s) return -EINVAL;
  if (s->magic != SHM_MAGIC) return s->magic == MPROC__DEAD_MAGIC ? MPROC_EDESTROYED : -EINVAL;
  return 0;
}

void *mproc_shm_ptr(const mproc_shm_t *s) { return shm_ok(s) ? NULL : s->ptr; }
size_t mproc_shm_size(const mproc_shm_t *s) { return shm_ok(s) ? 0 : s->size; }
const char *mproc_shm_name(const mproc_shm_t *s) {
  return shm_ok(s) ? NULL : s->path + s->name_off;
}

int mproc_shm_close(mproc_shm_t *s) {
  if (!s) return 0;
  int rc = shm_ok(s);
  if (rc) return rc;
  munmap(s->ptr, s->size);
  s->magic = MPROC__DEAD_MAGIC;
  free(s);
  return 0;
}

int mproc_shm_unlink(mproc_shm_t *s) {
  int rc = shm_ok(s);
  if (rc) return rc;
  if (unlink(s->path) < 0) return -errno;
  if (s->tracked) {
    tracker_send('U', s->path);
    s->tracked = 0;
  }
  return 0;
}

int mproc_shm_unlink_name(const char *name) {
  char path[SHM_PATH_MAX];
  int rc = make_path(path, name, NULL);
  if (rc) return rc;
  if (unlink(path) < 0) return -errno;
  tracker_send('U', path); /* no-op when this process never started one */
  return 0;
}
