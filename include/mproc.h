/*
 * mproc.h - Python's multiprocessing, for C.
 *
 * This header is the whole public API of libmproc. Every function documents
 * its contract: what it returns, its errors, thread and fork safety, and who
 * owns what.
 *
 * Conventions (see docs/design.md):
 *  - Every fallible call returns int: 0 (or a non-negative count) on success,
 *    a negative error code otherwise: -errno values (MPROC_EINVAL, ...) or
 *    mproc's own codes in the reserved range [-4999, -4000].
 *    mproc_strerror() gives the text, mproc_err_name() the symbol.
 *  - No call aborts on bad input: NULL pointers, absurd sizes, timeouts below
 *    -1, use after destroy (where detectable) all return an error.
 *  - Objects are opaque: mproc_xxx_create(&obj, ...) / mproc_xxx_destroy(obj);
 *    destroy(NULL) is a no-op returning 0.
 *  - Options come in structs whose all-zero value means "Python's defaults".
 *  - Timeouts are seconds as double: -1 = wait forever, 0 = poll.
 *  - Cross-process objects live in the family's shared heap: a pointer to one
 *    is valid in every process of the family (parent, forked, forkserver-made
 *    and spawned children), so it is passed to a child by value.
 *  - Thread-safe: any call may come from any thread of any process of the
 *    family unless its comment says otherwise.
 */
#ifndef MPROC_H
#define MPROC_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MPROC_VERSION_MAJOR 0
#define MPROC_VERSION_MINOR 1
#define MPROC_VERSION_PATCH 0
#define MPROC_VERSION_STRING "0.1.0"

#if defined(__GNUC__)
#define MPROC_EXPORT __attribute__((visibility("default")))
#else
#define MPROC_EXPORT
#endif

/* ======================================================================== */
/* Errors                                                                    */
/* ======================================================================== */

/*
 * The one table of error codes. XX(NAME, value, "text").
 * System codes are negated errno values; mproc's own live in [-4999, -4000].
 * It generates the MPROC_E* enum, mproc_strerror() and mproc_err_name().
 */
#define MPROC_ERRNO_MAP(XX)                                                    \
  XX(EPERM, -EPERM, "operation not permitted (e.g. releasing a lock not held)") \
  XX(ENOENT, -ENOENT, "no such file, object or name")                         \
  XX(ESRCH, -ESRCH, "no such process")                                        \
  XX(EINTR, -EINTR, "interrupted system call")                                \
  XX(EIO, -EIO, "i/o error")                                                  \
  XX(EBADF, -EBADF, "bad file descriptor")                                    \
  XX(ECHILD, -ECHILD, "no child process")                                     \
  XX(EAGAIN, -EAGAIN, "resource temporarily unavailable")                     \
  XX(ENOMEM, -ENOMEM, "out of memory (process or shared heap)")               \
  XX(EACCES, -EACCES, "permission denied")                                    \
  XX(EFAULT, -EFAULT, "bad address")                                          \
  XX(EBUSY, -EBUSY, "resource busy (e.g. closing a running process)")         \
  XX(EEXIST, -EEXIST, "already exists")                                       \
  XX(EINVAL, -EINVAL, "invalid argument")                                     \
  XX(EMFILE, -EMFILE, "too many open files")                                  \
  XX(ENOSPC, -ENOSPC, "no space left")                                        \
  XX(EPIPE, -EPIPE, "broken pipe")                                            \
  XX(ERANGE, -ERANGE, "result out of range")                                  \
  XX(ENAMETOOLONG, -ENAMETOOLONG, "name too long")                            \
  XX(ENOSYS, -ENOSYS, "function not implemented by this kernel")              \
  XX(EOVERFLOW, -EOVERFLOW, "value too large (e.g. over-released semaphore)") \
  XX(EMSGSIZE, -EMSGSIZE, "message too long")                                 \
  XX(ENOTSUP, -ENOTSUP, "operation not supported")                            \
  XX(EADDRINUSE, -EADDRINUSE, "address already in use")                       \
  XX(ECONNABORTED, -ECONNABORTED, "connection aborted")                       \
  XX(ECONNRESET, -ECONNRESET, "connection reset by peer")                     \
  XX(ECONNREFUSED, -ECONNREFUSED, "connection refused")                       \
  XX(ETIMEDOUT, -ETIMEDOUT, "timed out")                                      \
  XX(ECANCELED, -ECANCELED, "operation cancelled")                            \
  XX(EOWNERDEAD, -4000, "the previous owner died holding the lock; it is now held by the caller") \
  XX(ECLOSED, -4001, "object is closed")                                      \
  XX(ESTATE, -4002, "call not valid in the object's current state")           \
  XX(EDESTROYED, -4003, "object was destroyed (use after destroy)")           \
  XX(EWORKERDIED, -4004, "the worker process running the task died")          \
  XX(ETASK, -4005, "the task reported failure")                               \
  XX(EBROKEN, -4006, "barrier is broken")                                     \
  XX(ETOOSHORT, -4007, "buffer too short for the message; message kept")      \
  XX(EEOF, -4008, "end of file: the peer closed or died")                     \
  XX(EAUTH, -4009, "authentication failed (wrong authkey)")                   \
  XX(EPROTO, -4010, "protocol error: malformed data from the peer")           \
  XX(ENOTREG, -4011, "no function registered under that name")               \
  XX(EFULL, -4012, "queue or container is full")                              \
  XX(EEMPTY, -4013, "queue or container is empty")                            \
  XX(ECHILDFAIL, -4014, "child process could not be started")                 \
  XX(ENOTOWNER, -4015, "object not owned by the calling process")             \
  XX(ESTOPITER, -4016, "iterator exhausted")

typedef enum mproc_errno {
#define MPROC__ERR_ENUM(name, value, text) MPROC_##name = (value),
  MPROC_ERRNO_MAP(MPROC__ERR_ENUM)
#undef MPROC__ERR_ENUM
  MPROC_ERR_MIN_ = -4999, /* lowest value of mproc's reserved range */
  MPROC_ERR_MAX_ = -4000  /* highest value of mproc's reserved range */
} mproc_errno_t;

/* Text for an error code. Never NULL; unknown codes get a generic text.
 * The string is static (thread-safe, never freed). */
MPROC_EXPORT const char *mproc_strerror(int err);

/* Symbolic name of an error code ("EINVAL", "EOWNERDEAD", ...), or
 * "UNKNOWN" for codes outside the table. Static storage. */
MPROC_EXPORT const char *mproc_err_name(int err);

/* ======================================================================== */
/* Library initialisation and the shared heap                               */
/* ======================================================================== */

/* Start methods for processes (see docs/process.md for what each can pass). */
typedef enum mproc_start_method {
  MPROC_START_DEFAULT = 0, /* the family default (fork unless changed) */
  MPROC_START_FORK = 1,     /* fork(): everything is inherited */
  MPROC_START_FORKSERVER = 2, /* a single-threaded server forks on request */
  MPROC_START_SPAWN = 3     /* fork+exec of the program, target by name */
} mproc_start_method_t;

typedef struct mproc_init_opts {
  size_t heap_size; /* bytes reserved for the shared heap (sparse: memory is
                       used only when touched). 0 = $MPROC_HEAP_SIZE (bytes,
                       suffixes K/M/G allowed) or the default, 1 GiB. */
  int start_method; /* mproc_start_method_t default; 0 = fork */
  unsigned flags;   /* reserved, must be 0 */
} mproc_init_opts;

/*
 * Initialise the library explicitly. Optional: every call initialises it
 * lazily with defaults. Returns 0, -EINVAL on bad options, -EBUSY if already
 * initialised with different options, or a system error (mapping the heap).
 * Call it early, before threads and children, to set the heap size.
 */
MPROC_EXPORT int mproc_init(const mproc_init_opts *opts);

typedef struct mproc_heap_stats {
  size_t capacity;    /* bytes the heap can hold in all */
  size_t used;        /* bytes handed out to live blocks (with rounding) */
  size_t live_blocks; /* blocks allocated and not yet freed */
  size_t resident;    /* bytes of the heap backed by memory now (approx.) */
  size_t recoveries;  /* times the heap was repaired after a process died
                         inside an allocation or free */
} mproc_heap_stats;

/*
 * Allocate size bytes (1 .. capacity) in the family's shared heap; *out is a
 * pointer valid in every process of the family, 16-byte aligned, contents
 * zeroed. Returns 0, -EINVAL (NULL out, size 0), -ENOMEM when the heap is
 * full. Async-signal-safe: no. Fork-safe: yes (a process killed inside it
 * never leaves the heap locked or corrupt).
 */
MPROC_EXPORT int mproc_heap_alloc(size_t size, void **out);

/* Free a block from mproc_heap_alloc (any process of the family may free
 * it). NULL is a no-op (0). -EINVAL if p is not a live heap block (detected
 * for pointers outside the heap and for most double frees). */
MPROC_EXPORT int mproc_heap_free(void *p);

/* Fill *st with the heap's current figures. -EINVAL on NULL. */
MPROC_EXPORT int mproc_heap_stats_get(mproc_heap_stats *st);

/* Non-zero when p points into the family's shared heap. */
MPROC_EXPORT int mproc_heap_contains(const void *p);

/* @@SECTION sync: locks, semaphores, conditions, events, barriers @@ */

/* @@END sync @@ */

/* @@SECTION values: Value, Array, named shared memory @@ */

/* @@END values @@ */

/* @@SECTION process: Process, current/parent process, cpu count @@ */

/* A child process (Python's multiprocessing.Process). Process-local handle:
 * owned by the process that created it; other processes may not use it. */
typedef struct mproc_process mproc_process_t;

/* The target runs in the child with the user's argument; its return value
 * (0..255) is the child's exit code. Subclassing Process and overriding run()
 * maps to a target plus a user struct passed as arg. */
typedef int (*mproc_target_fn)(void *arg);

typedef struct mproc_process_opts {
  const char *name;  /* NULL = "Process-N" ("Process-N:M" when nested);
                        copied, at most 255 bytes */
  int daemon;        /* non-zero: terminated when the parent exits normally
                        and may not start children of its own */
  int start_method;  /* mproc_start_method_t; 0 = the family default */
  const char *target_name; /* spawn: the name the target was registered
                              under with mproc_register_target(); for fork and
                              forkserver it is optional */
  size_t arg_size;   /* spawn/forkserver: bytes at arg copied to the child
                        (arg is then a pointer into a private copy);
                        0 = pass the pointer value itself (valid for fork, or
                        when arg points into the shared heap) */
} mproc_process_opts;

/* Register a target under a stable name so spawn children (a fresh exec of
 * the program) can find it. Call it in every process before any child is
 * spawned, typically at the start of main(). -EINVAL, -EEXIST. */
MPROC_EXPORT int mproc_register_target(const char *name, mproc_target_fn fn);

/* For programs that use the spawn start method: call first thing in main().
 * In a spawned child it runs the requested target and exits (never returns);
 * in any other process it returns 0 at once. */
MPROC_EXPORT int mproc_spawn_main(int argc, char **argv);

/* Create a process object (not started). target may be NULL only with
 * opts->target_name naming a registered target. opts may be NULL.
 * -EINVAL, -ENOMEM, -ENOTREG. */
MPROC_EXPORT int mproc_process_create(mproc_process_t **p, mproc_target_fn target,
                                      void *arg, const mproc_process_opts *opts);

/* Start the child. -ESTATE if already started, -EPERM when called from a
 * daemon process, -ECHILDFAIL/-errno if the child could not be created. */
MPROC_EXPORT int mproc_process_start(mproc_process_t *p);

/* Run the target in the calling process (Python's run()); returns the
 * target's return value (>= 0) or -EINVAL. */
MPROC_EXPORT int mproc_process_run(mproc_process_t *p);

/* Wait for the child to end, up to timeout seconds (-1 forever). Returns 0
 * when it ended (exitcode is then known), -ETIMEDOUT if still running,
 * -ESTATE if never started, -EINVAL on bad timeout. */
MPROC_EXPORT int mproc_process_join(mproc_process_t *p, double timeout);

/* 1 if started and not yet ended, 0 otherwise (reaps it if it ended);
 * -EINVAL on NULL. */
MPROC_EXPORT int mproc_process_is_alive(mproc_process_t *p);

/* Send SIGTERM / SIGKILL. 0 also when the child already ended.
 * -ESTATE if never started. */
MPROC_EXPORT int mproc_process_terminate(mproc_process_t *p);
MPROC_EXPORT int mproc_process_kill(mproc_process_t *p);

/* Release the process's resources (pidfd). -EBUSY if still running. After
 * close, every call on p returns -EDESTROYED except destroy. */
MPROC_EXPORT int mproc_process_close(mproc_process_t *p);

/* Free the handle. A still-running child is not killed (its daemon flag
 * decides what happens at exit). NULL is a no-op. */
MPROC_EXPORT int mproc_process_destroy(mproc_process_t *p);

/* Attributes. pid: > 0 once started, -ESTATE before. */
MPROC_EXPORT pid_t mproc_process_pid(const mproc_process_t *p);
/* *code = exit code (0..255) or -signo; returns 0 when known, -ESTATE while
 * not started or still running. */
MPROC_EXPORT int mproc_process_exitcode(mproc_process_t *p, int *code);
/* Name (never NULL for a valid p; "" for NULL). */
MPROC_EXPORT const char *mproc_process_name(const mproc_process_t *p);
MPROC_EXPORT int mproc_process_daemon(const mproc_process_t *p);
/* A pidfd that becomes readable when the child ends (poll/epoll). Owned by
 * p; valid until close/destroy. -ESTATE before start. */
MPROC_EXPORT int mproc_process_sentinel(const mproc_process_t *p);

/* The calling process: its name ("MainProcess" in the top process) and pid,
 * the parent's pid (0 in a process not started by mproc). */
MPROC_EXPORT const char *mproc_current_name(void);
MPROC_EXPORT pid_t mproc_current_pid(void);
MPROC_EXPORT pid_t mproc_parent_pid(void);

/* Reap finished children and store up to cap live ones in out (may be NULL
 * with cap 0). Returns the number of live children. */
MPROC_EXPORT int mproc_active_children(mproc_process_t **out, int cap);

/* CPUs this process may use: affinity mask, cgroup v2 cpu.max quota, and
 * $MPROC_CPU_COUNT override. Always >= 1. */
MPROC_EXPORT int mproc_cpu_count(void);

/* Set the family default start method (before starting processes).
 * -EINVAL on unknown method. Get returns the current default. */
MPROC_EXPORT int mproc_set_start_method(int method);
MPROC_EXPORT int mproc_get_start_method(void);

/* @@END process @@ */

/* @@SECTION ipc: Queue, Pipe/Connection, wait, Listener/Client @@ */

/* @@END ipc @@ */

/* @@SECTION pool: Pool and AsyncResult @@ */

/*
 * A pool of worker processes (Python's multiprocessing.Pool, plus what
 * concurrent.futures, loky and pebble add). See docs/pool.md.
 *
 * Tasks are C functions taking input bytes and producing output bytes.
 * Inputs and results travel through the family's shared heap: fixed-size
 * elements are read and written in place (no per-task allocation), large
 * ones by reference. A worker that dies (any signal, _exit, OOM-kill) fails
 * only the chunk it was running, with MPROC_EWORKERDIED and a message naming
 * the signal or exit status and the worker's peak memory; it is replaced and
 * nothing waits forever because of it.
 *
 * Handles (mproc_pool_t, mproc_async_t, mproc_imap_t) are process-local: they
 * belong to the process that created the pool; any thread of that process
 * may use them. A pool may be created inside a pool worker (nested pools,
 * limited by mproc_pool_set_family_limit()).
 */
typedef struct mproc_pool mproc_pool_t;
typedef struct mproc_async mproc_async_t;
typedef struct mproc_imap mproc_imap_t;
/* Per-task context handed to a task function (valid during the call only). */
typedef struct mproc_task_ctx mproc_task_ctx;

/* A byte string: variable-size inputs and results (in_size/out_size 0). */
typedef struct mproc_buf {
  void *data;  /* bytes; results are blocks of the shared heap */
  size_t size; /* length in bytes */
} mproc_buf;

/*
 * A task function. Runs in a worker process.
 *  in/in_size: the task's input bytes (read-only, in the shared heap).
 *  out: for fixed-size results (out_size > 0 in the call) out_size bytes to
 *       fill; NULL for variable-size results, which the task sets with
 *       mproc_task_return() / mproc_task_return_buf() (no result = empty).
 * Return 0 on success. On failure return a negative code, ideally through
 * mproc_task_fail() which also records a message; a positive return is
 * reported as MPROC_ETASK.
 */
typedef int (*mproc_task_fn)(const void *in, size_t in_size, void *out,
                             mproc_task_ctx *ctx);

/* Runs once in every worker before its first task (Python's initializer
 * with initargs). Non-zero return: the pool is broken (every pending and
 * later task fails with MPROC_ECHILDFAIL) instead of respawning forever. */
typedef int (*mproc_pool_init_fn)(void *arg);

typedef struct mproc_pool_opts {
  int processes;        /* workers; 0 = mproc_cpu_count(); clipped inside a
                           worker to the family limit (see below) */
  mproc_pool_init_fn initializer; /* NULL = none */
  void *initarg;        /* passed to initializer (fork: any pointer) */
  unsigned maxtasksperchild; /* chunks a worker runs before it is replaced;
                                0 = unlimited (Python's None) */
  int start_method;     /* MPROC_START_DEFAULT or MPROC_START_FORK; others
                           give -ENOTSUP (see docs/pool.md) */
  double task_timeout;  /* default per-task timeout in seconds; 0 = none */
  unsigned retries;     /* default automatic retries of a chunk whose worker
                           died (not for timeouts or task errors); 0 = none */
  unsigned flags;       /* reserved, must be 0 */
} mproc_pool_opts;

/* A failed task's details (the analogue of the exception's text). */
typedef struct mproc_task_error {
  int code;          /* MPROC_E* / -errno; 0 = no error */
  int signo;         /* signal that killed the worker (EWORKERDIED), else 0 */
  int exit_status;   /* worker's exit status when it exited, else -1 */
  size_t index;      /* index of the failed task within the call */
  long peak_rss_kb;  /* worker's peak resident memory (EWORKERDIED), else 0 */
  char message[256]; /* NUL-terminated text */
} mproc_task_error;

/* Called in the pool's one callback thread of the owner process, in
 * completion order, never in a signal handler. result/size: apply: the
 * result bytes; map: the output array (out) and n * out_size (0 for variable
 * outputs). Must not wait for other results of the same pool. */
typedef void (*mproc_result_cb)(mproc_async_t *ar, const void *result,
                                size_t size, void *user);
typedef void (*mproc_error_cb)(mproc_async_t *ar, const mproc_task_error *err,
                               void *user);

/* Produces the next input of an imap: set *item/*size and return 1; return
 * 0 at the end, a negative code on error (the iterator then ends with it).
 * The bytes are copied before the next call. Runs in the caller's thread. */
typedef int (*mproc_gen_fn)(void *user, const void **item, size_t *size);

/* Per-call options; all-zero = Python's defaults. */
typedef struct mproc_call_opts {
  size_t chunksize;     /* map: 0 = Python's rule (ceil(n / (4 * workers)));
                           imap: 0 = 1 */
  double timeout;       /* per-task timeout in seconds: 0 = the pool's
                           default, -1 = none */
  int retries;          /* retries after worker death: -1 = none, 0 = the
                           pool's default, > 0 = that many */
  const char *fn_name;  /* run the function registered under this name
                           (mproc_pool_register) instead of fn */
  mproc_result_cb callback;       /* async calls: on success */
  mproc_error_cb error_callback;  /* async calls: on failure */
  void *user;           /* passed to callbacks */
  int *errors;          /* map: optional n codes, 0 for each success */
  mproc_task_error *error; /* sync calls: details of the first failure */
  size_t max_inflight;  /* imap: tasks submitted ahead of the consumer;
                           0 = 4 * workers * chunksize */
  unsigned flags;       /* MPROC_IMAP_UNORDERED for imap; else 0 */
} mproc_call_opts;

#define MPROC_IMAP_UNORDERED (1u << 0) /* imap: results in completion order */

/* Length limit of registered task names (bytes, without the NUL). */
#define MPROC_POOL_NAME_MAX 47

/* Register fn under a stable name so tasks can name it (call_opts.fn_name):
 * the same API can then run tasks in processes that do not share the
 * address space. Call in the parent before creating pools. -EINVAL (NULL,
 * empty or too long name), -EEXIST (name taken by another function),
 * -ENOSPC (table full, 256 names). Thread-safe. */
MPROC_EXPORT int mproc_pool_register(const char *name, mproc_task_fn fn);

/*
 * Create a pool and start its workers (forked by the pool's thread, each
 * with PR_SET_PDEATHSIG so none outlives the owner). opts may be NULL.
 * Returns 0; -EINVAL (NULL p, processes < 0 or > 4096, flags, bad timeout);
 * -ENOTSUP (start method other than fork); -ENOMEM; -EAGAIN/-errno when
 * workers or the pool thread cannot be started.
 */
MPROC_EXPORT int mproc_pool_create(mproc_pool_t **p, const mproc_pool_opts *opts);

/* Number of workers the pool runs (after family-limit clipping), or
 * -EINVAL / -EDESTROYED. */
MPROC_EXPORT int mproc_pool_size(const mproc_pool_t *p);

/*
 * Run fn on one input and wait for its result (Python's apply).
 * The result bytes are copied to out (out_cap bytes; out may be NULL when
 * out_cap is 0) and their length stored in *out_size (optional).
 * Returns 0; the task's code on failure (details in opts->error):
 * MPROC_EWORKERDIED, -ETIMEDOUT, the function's own code; MPROC_ETOOSHORT
 * when out_cap is too small (*out_size tells the size needed);
 * -EINVAL (NULL p, no fn and no name, in == NULL with in_size > 0);
 * MPROC_ENOTREG; MPROC_ESTATE after close/terminate; -EDESTROYED.
 */
MPROC_EXPORT int mproc_pool_apply(mproc_pool_t *p, mproc_task_fn fn,
                                  const void *in, size_t in_size, void *out,
                                  size_t out_cap, size_t *out_size,
                                  const mproc_call_opts *opts);

/* Submit fn on one input; *ar receives the AsyncResult (destroy it with
 * mproc_async_destroy). The input is copied. Errors as mproc_pool_apply's
 * argument errors; task outcomes arrive through *ar and the callbacks. */
MPROC_EXPORT int mproc_pool_apply_async(mproc_pool_t *p, mproc_task_fn fn,
                                        const void *in, size_t in_size,
                                        const mproc_call_opts *opts,
                                        mproc_async_t **ar);

/*
 * Run fn on n inputs and wait for all results (Python's map).
 * Inputs: in_size > 0: `in` is n elements of in_size bytes (a struct array:
 * that is starmap); in_size 0: `in` is an array of n mproc_buf.
 * Results: out_size > 0: `out` receives n elements of out_size bytes (in
 * place, without copies, when out lies in the shared heap); out_size 0: out
 * is an array of n mproc_buf each set to a heap block (free with
 * mproc_buf_free) or {NULL, 0}.
 * Returns 0 when every task succeeded, else the code of the lowest-index
 * failure (details in opts->error, every code in opts->errors); results of
 * the tasks that succeeded are still written. -EINVAL (NULL p, n > 0 with
 * NULL in or out, no fn), MPROC_ENOTREG, MPROC_ESTATE, -ENOMEM (heap full).
 * n == 0 returns 0 at once.
 */
MPROC_EXPORT int mproc_pool_map(mproc_pool_t *p, mproc_task_fn fn,
                                const void *in, size_t n, size_t in_size,
                                void *out, size_t out_size,
                                const mproc_call_opts *opts);
/* map_async: as map, but returns at once; `out` (and opts->errors) must stay
 * valid until the result is ready. get() then returns map's return code. */
MPROC_EXPORT int mproc_pool_map_async(mproc_pool_t *p, mproc_task_fn fn,
                                      const void *in, size_t n, size_t in_size,
                                      void *out, size_t out_size,
                                      const mproc_call_opts *opts,
                                      mproc_async_t **ar);
/* starmap / starmap_async: map over an array of argument structs (in_size =
 * sizeof the struct); the same calls under Python's names. */
MPROC_EXPORT int mproc_pool_starmap(mproc_pool_t *p, mproc_task_fn fn,
                                    const void *in, size_t n, size_t in_size,
                                    void *out, size_t out_size,
                                    const mproc_call_opts *opts);
MPROC_EXPORT int mproc_pool_starmap_async(mproc_pool_t *p, mproc_task_fn fn,
                                          const void *in, size_t n,
                                          size_t in_size, void *out,
                                          size_t out_size,
                                          const mproc_call_opts *opts,
                                          mproc_async_t **ar);

/*
 * imap / imap_unordered (flags MPROC_IMAP_UNORDERED): lazy and bounded.
 * Inputs come from gen, called in the consumer's thread only as results are
 * consumed, so at most max_inflight tasks exist at a time. out_size > 0:
 * fixed-size results; 0: variable. -EINVAL, MPROC_ENOTREG, MPROC_ESTATE.
 */
MPROC_EXPORT int mproc_pool_imap(mproc_pool_t *p, mproc_task_fn fn,
                                 mproc_gen_fn gen, void *gen_user,
                                 size_t out_size, const mproc_call_opts *opts,
                                 mproc_imap_t **it);
/*
 * Next result, waiting up to timeout seconds. On 0 *result/*size point at
 * the result bytes (valid until the next call or destroy) and *index (all
 * optional) holds the input's position. Returns 0; MPROC_ESTOPITER at the
 * end; -ETIMEDOUT (call again later); the task's error code (details with
 * mproc_imap_error; iteration goes on); the generator's error once.
 * -EINVAL on bad arguments.
 */
MPROC_EXPORT int mproc_imap_next(mproc_imap_t *it, double timeout,
                                 const void **result, size_t *size,
                                 size_t *index);
/* Details of the last error returned by mproc_imap_next. */
MPROC_EXPORT int mproc_imap_error(mproc_imap_t *it, mproc_task_error *err);
/* Cancel what is still pending, wait for running tasks, free. NULL: 0. */
MPROC_EXPORT int mproc_imap_destroy(mproc_imap_t *it);

/* ---- AsyncResult ---- */

/* 1 when the result is ready (callbacks done), 0 if not; -EINVAL. */
MPROC_EXPORT int mproc_async_ready(mproc_async_t *ar);
/* 1 when ready and successful, 0 when ready and failed, MPROC_ESTATE when
 * not ready (Python raises ValueError), -EINVAL. */
MPROC_EXPORT int mproc_async_successful(mproc_async_t *ar);
/* Wait until ready: 0, -ETIMEDOUT, -EINVAL (bad timeout). */
MPROC_EXPORT int mproc_async_wait(mproc_async_t *ar, double timeout);
/*
 * Wait up to timeout for the result. Returns 0 with *result/*size (both
 * optional) pointing at the result bytes (apply: the task's result, owned
 * by ar; map: the caller's out array); -ETIMEDOUT; or the task's error code
 * (see mproc_async_error). -EINVAL on bad arguments.
 */
MPROC_EXPORT int mproc_async_get(mproc_async_t *ar, double timeout,
                                 const void **result, size_t *size);
/* Error details of a ready, failed result (0); MPROC_ESTATE if not ready or
 * successful; -EINVAL. */
MPROC_EXPORT int mproc_async_error(mproc_async_t *ar, mproc_task_error *err);
/* Cancel the tasks not yet started (they fail with -ECANCELED); running
 * ones finish. Returns how many tasks were cancelled (>= 0) or -EINVAL. */
MPROC_EXPORT int mproc_async_cancel(mproc_async_t *ar);
/* Release the handle (a pending task still runs; its result is dropped).
 * NULL is a no-op. */
MPROC_EXPORT int mproc_async_destroy(mproc_async_t *ar);

/* ---- lifecycle ---- */

/* Stop accepting tasks (Python's close). 0, -EINVAL, -EDESTROYED. */
MPROC_EXPORT int mproc_pool_close(mproc_pool_t *p);
/* Kill the workers now; every unfinished task fails with -ECANCELED (no
 * call hangs). 0, -EINVAL. */
MPROC_EXPORT int mproc_pool_terminate(mproc_pool_t *p);
/* Wait for the workers to exit after close (all tasks done) or terminate.
 * MPROC_ESTATE if neither was called; -ETIMEDOUT; -EINVAL. Callbacks have
 * all run when it returns 0. Not from a callback. */
MPROC_EXPORT int mproc_pool_join(mproc_pool_t *p, double timeout);
/* terminate (if still running) + join + free (Python's `with` exit).
 * AsyncResults and iterators of the pool must be destroyed first or after;
 * their calls then return -EDESTROYED. NULL is a no-op. */
MPROC_EXPORT int mproc_pool_destroy(mproc_pool_t *p);

/* ---- progress and stats ---- */

typedef struct mproc_pool_stats {
  uint64_t tasks_submitted; /* tasks (elements) submitted so far */
  uint64_t tasks_done;      /* finished successfully */
  uint64_t tasks_failed;    /* failed: task error, worker died, timeout */
  uint64_t tasks_cancelled; /* cancelled before they ran */
  uint64_t tasks_pending;   /* submitted - done - failed - cancelled */
  uint64_t chunks_done;     /* chunks committed by workers */
  uint64_t worker_deaths;   /* workers that died (signal or bad exit) */
  uint64_t worker_restarts; /* workers started to replace others */
  uint64_t timeouts;        /* workers killed for a task timeout */
  uint64_t retries;         /* chunks re-run after a worker death */
  int nworkers;             /* workers of the pool */
  double busy_sec[64];      /* per-worker slot busy time (first 64 slots) */
} mproc_pool_stats;

/* Progress for progress bars: any argument may be NULL. Cheap; exact when
 * no worker died mid-chunk (else off by at most that chunk). */
MPROC_EXPORT int mproc_pool_progress(mproc_pool_t *p, uint64_t *done,
                                     uint64_t *failed, uint64_t *pending);
MPROC_EXPORT int mproc_pool_stats_get(mproc_pool_t *p, mproc_pool_stats *st);

/* Family-wide limit on pool workers used to clip pools created inside a
 * pool worker (nested pools): such a pool gets min(processes, max(1, limit -
 * workers of all live pools of the family)). Top-level pools are never
 * clipped but count. Default mproc_cpu_count() (or $MPROC_POOL_LIMIT).
 * Set: -EINVAL unless 1..4096. Get returns the limit. */
MPROC_EXPORT int mproc_pool_set_family_limit(int limit);
MPROC_EXPORT int mproc_pool_get_family_limit(void);

/* ---- inside a task ---- */

/* Set the task's variable-size result (copied into the shared heap; up to
 * 16 bytes are stored inline). For fixed-size results it copies size bytes
 * (<= out_size) to out. 0, -EINVAL, -ENOMEM. Worker-side only. */
MPROC_EXPORT int mproc_task_return(mproc_task_ctx *ctx, const void *data,
                                   size_t size);
/* Allocate a size-byte result in the shared heap and return it in *buf to
 * be filled in place (zero copy). Variable-size results only. */
MPROC_EXPORT int mproc_task_return_buf(mproc_task_ctx *ctx, size_t size,
                                       void **buf);
/* Record a failure message (printf format) and return code (a negative
 * code; anything else becomes MPROC_ETASK), for `return mproc_task_fail(..)`. */
MPROC_EXPORT int mproc_task_fail(mproc_task_ctx *ctx, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* Index of the running task within its call, and the worker's slot number
 * (0 .. processes-1); -EINVAL on NULL. */
MPROC_EXPORT long mproc_task_index(const mproc_task_ctx *ctx);
MPROC_EXPORT int mproc_task_worker(const mproc_task_ctx *ctx);

/* Free a variable-size result (a heap block). NULL or {NULL,..}: 0. */
MPROC_EXPORT int mproc_buf_free(mproc_buf *b);

/* @@END pool @@ */

/* @@SECTION shared: heap dict, list, namespace @@ */

/* @@END shared @@ */

/* @@SECTION manager: manager server and proxies @@ */

/* @@END manager @@ */

#ifdef __cplusplus
}
#endif
#endif /* MPROC_H */
