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

/* @@END pool @@ */

/* @@SECTION shared: heap dict, list, namespace @@ */

/*
 * Shared containers: a dict (byte-string keys -> byte-string values), a list
 * of byte strings and a namespace (named int64/double/string attributes).
 *
 * A container made with mproc_xxx_create() lives in the family's shared heap:
 * the handle is valid in every process of the family and is passed to a
 * child by value; no server is involved. Every call is atomic with respect to
 * every other call from any thread of any process (one robust lock per
 * container). A process killed in the middle of a call leaves the container
 * consistent: the call happened entirely or not at all (the next caller
 * repairs it from an undo log). Removed entries return their heap memory.
 *
 * The same calls work on proxies obtained from a manager
 * (mproc_manager_dict() etc., see the manager section): then each call is a
 * round trip to the server, with the same results and error codes, plus the
 * transport's errors (MPROC_EEOF / -ECONNRESET when the server died).
 *
 * Byte strings: keys and values are (pointer, length) pairs; the pointer may
 * be NULL only when the length is 0; lengths are limited to 4 GiB - 1
 * (-EMSGSIZE above). Results copied into caller buffers follow one rule: if
 * the buffer is too short the call returns MPROC_ETOOSHORT, stores the
 * required size in *len and changes nothing. "_alloc" variants return a
 * malloc()ed copy (one extra NUL byte after the data, not counted in the
 * length) that the caller frees with free().
 *
 * Errors common to every call: -EINVAL for NULL handles/pointers,
 * MPROC_EDESTROYED for a destroyed container (detected while its memory has
 * not been reused), -ENOMEM when the shared heap is full.
 */

/* A byte string returned in a snapshot. */
typedef struct mproc_blob {
  void *data; /* NUL-terminated copy (the NUL is not counted in len) */
  size_t len; /* bytes */
} mproc_blob;

/* Free an array returned by a snapshot call (keys, items, list snapshot):
 * one allocation holds the array and the bytes. NULL is a no-op. */
MPROC_EXPORT void mproc_blobs_free(mproc_blob *blobs);

/* ---- dict ---- */

typedef struct mproc_dict mproc_dict_t;
typedef struct mproc_dict_iter mproc_dict_iter_t;

/* Create an empty dict in the shared heap. opts is reserved: pass NULL.
 * 0, -EINVAL, -ENOMEM. */
MPROC_EXPORT int mproc_dict_create(mproc_dict_t **d, const void *opts);

/* Destroy a heap dict and free all its memory (any process may do it; no
 * other process may use it afterwards). For a proxy: frees the local proxy
 * only (the server's object stays; see mproc_manager_remove()). NULL is a
 * no-op. */
MPROC_EXPORT int mproc_dict_destroy(mproc_dict_t *d);

/* d[key] = val (insert or replace). 0, -EINVAL, -EMSGSIZE, -ENOMEM. */
MPROC_EXPORT int mproc_dict_set(mproc_dict_t *d, const void *key, size_t klen,
                                const void *val, size_t vlen);

/* Copy d[key] into buf (cap bytes); *vlen = its length. 0; -ENOENT when the
 * key is absent; MPROC_ETOOSHORT when cap < length (*vlen = length needed,
 * buf untouched). buf may be NULL with cap 0 to learn the length. */
MPROC_EXPORT int mproc_dict_get(mproc_dict_t *d, const void *key, size_t klen,
                                void *buf, size_t cap, size_t *vlen);

/* *val = malloc()ed copy of d[key] (NUL-terminated), *vlen = length (vlen
 * may be NULL). 0, -ENOENT, -ENOMEM. */
MPROC_EXPORT int mproc_dict_get_alloc(mproc_dict_t *d, const void *key, size_t klen,
                                      void **val, size_t *vlen);

/* del d[key]. 0, -ENOENT when absent. */
MPROC_EXPORT int mproc_dict_delete(mproc_dict_t *d, const void *key, size_t klen);

/* 1 if key is in d, 0 if not, or a negative error. */
MPROC_EXPORT int mproc_dict_contains(mproc_dict_t *d, const void *key, size_t klen);

/* *n = number of entries. 0 or an error. */
MPROC_EXPORT int mproc_dict_len(mproc_dict_t *d, size_t *n);

/* Remove every entry (frees their memory). */
MPROC_EXPORT int mproc_dict_clear(mproc_dict_t *d);

/* Snapshot of the keys: *keys = array of *n blobs, taken atomically; free
 * with mproc_blobs_free(). Order is unspecified (hash order). */
MPROC_EXPORT int mproc_dict_keys(mproc_dict_t *d, mproc_blob **keys, size_t *n);

/* Snapshot of the items: *items = array of 2 * *n blobs, key then value for
 * each of the *n entries; free with mproc_blobs_free(). */
MPROC_EXPORT int mproc_dict_items(mproc_dict_t *d, mproc_blob **items, size_t *n);

/* Iterator over a live dict (process-local object). Like Python, the dict
 * must not gain or lose keys while iterating: next() then returns
 * MPROC_ESTATE ("changed size during iteration"); replacing values is fine.
 * Each next() takes the lock once, so other processes keep working.
 * On a proxy the iterator walks a snapshot taken at create time. */
MPROC_EXPORT int mproc_dict_iter_create(mproc_dict_t *d, mproc_dict_iter_t **it);

/* Advance: *key and *val point to copies owned by the iterator, valid until the
 * next call or destroy (key, klen, val, vlen may each be NULL). 0 for an
 * entry, MPROC_ESTOPITER at the end, MPROC_ESTATE as above. */
MPROC_EXPORT int mproc_dict_iter_next(mproc_dict_iter_t *it, const void **key,
                                      size_t *klen, const void **val, size_t *vlen);

/* Free the iterator. NULL is a no-op. */
MPROC_EXPORT int mproc_dict_iter_destroy(mproc_dict_iter_t *it);

/* ---- list ---- */

typedef struct mproc_list mproc_list_t;

/* Create an empty list in the shared heap. opts reserved: NULL. */
MPROC_EXPORT int mproc_list_create(mproc_list_t **l, const void *opts);

/* Destroy (heap list: frees everything; proxy: the local proxy only). */
MPROC_EXPORT int mproc_list_destroy(mproc_list_t *l);

/* Append one item. 0, -EINVAL, -EMSGSIZE, -ENOMEM. */
MPROC_EXPORT int mproc_list_append(mproc_list_t *l, const void *data, size_t len);

/* Append n items atomically (all or none). items may be NULL when n is 0. */
MPROC_EXPORT int mproc_list_extend(mproc_list_t *l, const mproc_blob *items, size_t n);

/* Copy l[index] into buf. Negative indexes count from the end (-1 = last).
 * 0; -ERANGE when the index is out of range; MPROC_ETOOSHORT as for dicts. */
MPROC_EXPORT int mproc_list_get(mproc_list_t *l, int64_t index, void *buf,
                                size_t cap, size_t *len);

/* *data = malloc()ed copy of l[index]. 0, -ERANGE, -ENOMEM. */
MPROC_EXPORT int mproc_list_get_alloc(mproc_list_t *l, int64_t index, void **data,
                                      size_t *len);

/* l[index] = data. 0, -ERANGE. */
MPROC_EXPORT int mproc_list_set(mproc_list_t *l, int64_t index, const void *data,
                                size_t len);

/* Remove l[index] and copy it into buf; index -1 is the last item, 0 the
 * first. 0; MPROC_EEMPTY on an empty list; -ERANGE; MPROC_ETOOSHORT when
 * cap is below the item's size (the item is kept, *len = size needed). */
MPROC_EXPORT int mproc_list_pop(mproc_list_t *l, int64_t index, void *buf,
                                size_t cap, size_t *len);

/* Remove l[index]; *data = malloc()ed copy (NULL data: discard it).
 * 0, MPROC_EEMPTY, -ERANGE. */
MPROC_EXPORT int mproc_list_pop_alloc(mproc_list_t *l, int64_t index, void **data,
                                      size_t *len);

/* Insert before index, clamped like Python (0 = front, >= length or a large
 * value = append, negative from the end). 0, -ENOMEM. */
MPROC_EXPORT int mproc_list_insert(mproc_list_t *l, int64_t index, const void *data,
                                   size_t len);

/* *n = number of items. */
MPROC_EXPORT int mproc_list_len(mproc_list_t *l, size_t *n);

/* Atomic copy of every item in order; free with mproc_blobs_free(). */
MPROC_EXPORT int mproc_list_snapshot(mproc_list_t *l, mproc_blob **items, size_t *n);

/* Remove every item (frees their memory). */
MPROC_EXPORT int mproc_list_clear(mproc_list_t *l);

/* ---- namespace (Python's Namespace: named attributes) ---- */

typedef struct mproc_namespace mproc_namespace_t;

/* A namespace is a dict whose keys are attribute names (1..255 bytes, NUL-
 * terminated C strings) and whose values carry a type tag. */
MPROC_EXPORT int mproc_namespace_create(mproc_namespace_t **ns, const void *opts);
MPROC_EXPORT int mproc_namespace_destroy(mproc_namespace_t *ns);

/* Set an attribute (replacing any value of any type). 0, -EINVAL (bad name),
 * -ENOMEM. */
MPROC_EXPORT int mproc_namespace_set_int(mproc_namespace_t *ns, const char *name, int64_t v);
MPROC_EXPORT int mproc_namespace_set_double(mproc_namespace_t *ns, const char *name, double v);
MPROC_EXPORT int mproc_namespace_set_str(mproc_namespace_t *ns, const char *name, const char *v);

/* Get an attribute. 0; -ENOENT when absent; -EINVAL when it holds another
 * type; get_str: MPROC_ETOOSHORT when cap < strlen + 1 (*len, if not NULL,
 * gets the string length either way). */
MPROC_EXPORT int mproc_namespace_get_int(mproc_namespace_t *ns, const char *name, int64_t *v);
MPROC_EXPORT int mproc_namespace_get_double(mproc_namespace_t *ns, const char *name, double *v);
MPROC_EXPORT int mproc_namespace_get_str(mproc_namespace_t *ns, const char *name, char *buf,
                                         size_t cap, size_t *len);
/* *v = malloc()ed string; free() it. */
MPROC_EXPORT int mproc_namespace_get_str_alloc(mproc_namespace_t *ns, const char *name, char **v);

/* 1 if the attribute exists, 0 if not. */
MPROC_EXPORT int mproc_namespace_has(mproc_namespace_t *ns, const char *name);
/* Delete an attribute. 0, -ENOENT. */
MPROC_EXPORT int mproc_namespace_del(mproc_namespace_t *ns, const char *name);
/* The underlying dict (keys() lists the attribute names; values are tagged:
 * 'i' + 8 bytes, 'd' + 8 bytes, 's' + string bytes). Owned by ns. */
MPROC_EXPORT mproc_dict_t *mproc_namespace_dict(mproc_namespace_t *ns);

/* @@END shared @@ */

/* @@SECTION manager: manager server and proxies @@ */

/* @@END manager @@ */

#ifdef __cplusplus
}
#endif
#endif /* MPROC_H */
