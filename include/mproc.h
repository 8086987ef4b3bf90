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

/*
 * Synchronisation primitives (docs/sync.md). Every object lives in the
 * family's shared heap: the pointer is valid in every process of the family
 * (fork, forkserver and spawn children) and is passed to a child by value.
 * Objects created after a child started are usable by it too.
 *
 * Common contract:
 *  - create(&obj, ...) returns 0, -EINVAL (NULL out pointer or bad
 *    argument) or -ENOMEM (shared heap full). destroy(NULL) is a no-op (0).
 *  - Every call on a destroyed object returns MPROC_EDESTROYED (detected by
 *    a magic number until the heap reuses the block); a pointer that is not
 *    such an object (outside the heap or of another kind) returns -EINVAL.
 *  - timeout: seconds, -1 = forever, 0 = poll, > 0 = at most that long;
 *    any other value (< -1, NaN, huge) is -EINVAL. A wait that runs out
 *    (including a poll that finds the object busy) returns -ETIMEDOUT.
 *  - Waiting spins for a bounded, adaptive few microseconds, then sleeps on
 *    a futex: no CPU is used while asleep.
 *  - Thread-safe, and usable from any process of the family.
 */

/* ---- Lock (Python's multiprocessing.Lock) ---- */

/* A robust, non-recursive mutex owned by the thread that acquired it. */
typedef struct mproc_lock mproc_lock_t;

/* Create an unlocked Lock. 0, -EINVAL, -ENOMEM. */
MPROC_EXPORT int mproc_lock_create(mproc_lock_t **lock);

/* Free a Lock. A lock held by the calling thread is released first; one
 * held by another thread gives -EBUSY (nothing freed). NULL: 0. */
MPROC_EXPORT int mproc_lock_destroy(mproc_lock_t *lock);

/*
 * Acquire, waiting up to timeout seconds. Returns:
 *   0                  acquired;
 *   MPROC_EOWNERDEAD   acquired, but the previous owner (a thread or a
 *                      process) died holding it: the protected data may be
 *                      half-updated; repair it, then release as usual;
 *   -ETIMEDOUT         not acquired in time (timeout 0: it was held);
 *   -EDEADLK           the calling thread already holds it (Python would
 *                      hang forever);
 *   -EINVAL / MPROC_EDESTROYED as in the common contract.
 */
MPROC_EXPORT int mproc_lock_acquire(mproc_lock_t *lock, double timeout);

/* Release. -EPERM if the calling thread does not hold it (unlike Python,
 * where any process may release a Lock: ownership is what makes it robust). */
MPROC_EXPORT int mproc_lock_release(mproc_lock_t *lock);

/* 1 if held by anyone, 0 if free (a snapshot), or an error code. */
MPROC_EXPORT int mproc_lock_locked(const mproc_lock_t *lock);

/* 1 if held by the calling thread, 0 if not, or an error code. */
MPROC_EXPORT int mproc_lock_is_mine(const mproc_lock_t *lock);

/* ---- RLock (Python's multiprocessing.RLock) ---- */

/* A robust recursive mutex: the owning thread may acquire it again; it is
 * free once released as many times as acquired. */
typedef struct mproc_rlock mproc_rlock_t;

MPROC_EXPORT int mproc_rlock_create(mproc_rlock_t **rlock);
/* As mproc_lock_destroy. */
MPROC_EXPORT int mproc_rlock_destroy(mproc_rlock_t *rlock);
/* As mproc_lock_acquire, but re-acquiring by the owner returns 0 at once
 * (depth + 1; -EOVERFLOW past 2^32 - 1 levels). MPROC_EOWNERDEAD: the dead
 * owner's depth is discarded, the caller holds it with depth 1. */
MPROC_EXPORT int mproc_rlock_acquire(mproc_rlock_t *rlock, double timeout);
/* Drop one level. -EPERM if the calling thread does not hold it. */
MPROC_EXPORT int mproc_rlock_release(mproc_rlock_t *rlock);
/* 1 if held by anyone, 0 if free, or an error code. */
MPROC_EXPORT int mproc_rlock_locked(const mproc_rlock_t *rlock);
/* The calling thread's recursion depth (0 when it does not hold it). */
MPROC_EXPORT int mproc_rlock_depth(const mproc_rlock_t *rlock);

/* ---- Semaphore and BoundedSemaphore ---- */

/* A counting semaphore. A process that dies "holding" a unit cannot be
 * detected (a semaphore has no owner): the unit is lost, as in Python. */
typedef struct mproc_sem mproc_sem_t;

/* Semaphore with an initial value 0 .. INT_MAX (-EINVAL if negative). */
MPROC_EXPORT int mproc_sem_create(mproc_sem_t **sem, int value);
/* BoundedSemaphore: like a Semaphore whose value may never exceed the
 * initial one; an extra release returns -EOVERFLOW. */
MPROC_EXPORT int mproc_bsem_create(mproc_sem_t **sem, int value);
/* Free either kind. Destroying a semaphore others still wait on is a bug
 * that cannot be detected. NULL: 0. */
MPROC_EXPORT int mproc_sem_destroy(mproc_sem_t *sem);
/* Take one unit, waiting up to timeout. 0, -ETIMEDOUT, -EINVAL, EDESTROYED. */
MPROC_EXPORT int mproc_sem_acquire(mproc_sem_t *sem, double timeout);
/* Give one unit back (any thread or process may). -EOVERFLOW when a
 * BoundedSemaphore is already at its initial value or a Semaphore at
 * INT_MAX (the value is unchanged). */
MPROC_EXPORT int mproc_sem_release(mproc_sem_t *sem);
/* The current value (a snapshot). -EINVAL on NULL value. */
MPROC_EXPORT int mproc_sem_get_value(const mproc_sem_t *sem, int *value);

/* ---- Condition (Python's multiprocessing.Condition) ---- */

typedef struct mproc_cond mproc_cond_t;

/* Create a condition over a Lock, or over its own new RLock when lock is
 * NULL (Python's default). The lock must outlive the condition. -EINVAL if
 * lock is not a live Lock (MPROC_EDESTROYED if destroyed). */
MPROC_EXPORT int mproc_cond_create(mproc_cond_t **cond, mproc_lock_t *lock);
/* Create a condition over an existing RLock. */
MPROC_EXPORT int mproc_cond_create_rlock(mproc_cond_t **cond, mproc_rlock_t *rlock);
/* Free the condition (and its own RLock, -EBUSY if another thread holds
 * it). Waiters must be gone. NULL: 0. */
MPROC_EXPORT int mproc_cond_destroy(mproc_cond_t *cond);
/* Acquire / release the condition's lock: the results of the underlying
 * mproc_lock_* / mproc_rlock_* call. */
MPROC_EXPORT int mproc_cond_acquire(mproc_cond_t *cond, double timeout);
MPROC_EXPORT int mproc_cond_release(mproc_cond_t *cond);
/*
 * Wait for a notify. The caller must hold the lock (-EPERM otherwise); it is
 * released completely (every RLock level) while waiting and always held
 * again when the call returns. Returns 0 when notified (rarely spuriously,
 * e.g. after a waiter was killed: re-check your predicate), -ETIMEDOUT,
 * MPROC_EOWNERDEAD (re-acquiring found the lock's owner dead; the caller
 * holds it and should repair the data; notified or not is unknown).
 */
MPROC_EXPORT int mproc_cond_wait(mproc_cond_t *cond, double timeout);
/* Python's wait_for: wait until pred(arg) returns non-zero, evaluating it
 * with the lock held, at most timeout seconds in all. 0 when the predicate
 * holds, -ETIMEDOUT when it still does not, MPROC_EOWNERDEAD (returned at
 * once, lock held), -EPERM, -EINVAL (NULL pred). */
MPROC_EXPORT int mproc_cond_wait_for(mproc_cond_t *cond, int (*pred)(void *arg),
                                     void *arg, double timeout);
/* Wake up to n waiters (n >= 0; -EINVAL if negative). The caller must hold
 * the lock (-EPERM). Exactly min(n, waiting) waits return 0. */
MPROC_EXPORT int mproc_cond_notify(mproc_cond_t *cond, int n);
/* Wake every waiter. The caller must hold the lock (-EPERM). */
MPROC_EXPORT int mproc_cond_notify_all(mproc_cond_t *cond);

/* ---- Event (Python's multiprocessing.Event) ---- */

typedef struct mproc_event mproc_event_t;

/* Create a cleared Event. */
MPROC_EXPORT int mproc_event_create(mproc_event_t **event);
MPROC_EXPORT int mproc_event_destroy(mproc_event_t *event);
/* Set the flag and wake every waiter. */
MPROC_EXPORT int mproc_event_set(mproc_event_t *event);
/* Clear the flag. */
MPROC_EXPORT int mproc_event_clear(mproc_event_t *event);
/* 1 if set, 0 if not, or an error code. */
MPROC_EXPORT int mproc_event_is_set(const mproc_event_t *event);
/* Wait until the flag is set. 0 when set (also when a set() happened while
 * waiting and a clear() followed at once), -ETIMEDOUT. */
MPROC_EXPORT int mproc_event_wait(mproc_event_t *event, double timeout);

/* ---- Barrier (Python's multiprocessing.Barrier) ---- */

typedef struct mproc_barrier mproc_barrier_t;

/* A barrier for parties (1 .. 2^20) waiters. No action callable. */
MPROC_EXPORT int mproc_barrier_create(mproc_barrier_t **barrier, int parties);
/* Free it. -EBUSY while parties are waiting in it. NULL: 0. */
MPROC_EXPORT int mproc_barrier_destroy(mproc_barrier_t *barrier);
/*
 * Wait until `parties` callers are waiting, then release them all.
 * Returns the arrival index 0 .. parties-1 (unique per cycle; the last to
 * arrive gets parties-1). Errors:
 *   MPROC_EBROKEN  the barrier is broken (abort(), another waiter timed
 *                  out, a waiting party's process died) or was reset while
 *                  waiting; it stays broken until mproc_barrier_reset();
 *   -ETIMEDOUT     this wait ran out: the barrier is now broken (others get
 *                  MPROC_EBROKEN), as in Python; or (barrier intact) the
 *                  previous cycle did not drain in time.
 */
MPROC_EXPORT int mproc_barrier_wait(mproc_barrier_t *barrier, double timeout);
/* Put it in the broken state: current and future waits return
 * MPROC_EBROKEN until reset. */
MPROC_EXPORT int mproc_barrier_abort(mproc_barrier_t *barrier);
/* Return it to the empty state; current waiters get MPROC_EBROKEN. */
MPROC_EXPORT int mproc_barrier_reset(mproc_barrier_t *barrier);
/* parties; the number waiting in the current cycle; 1 if broken, 0 if not.
 * Each returns an error code for a bad barrier. */
MPROC_EXPORT int mproc_barrier_parties(const mproc_barrier_t *barrier);
MPROC_EXPORT int mproc_barrier_n_waiting(mproc_barrier_t *barrier);
MPROC_EXPORT int mproc_barrier_broken(mproc_barrier_t *barrier);

/* @@END sync @@ */

/* @@SECTION values: Value, Array, named shared memory @@ */

/*
 * Shared values (docs/values.md): Python's Value, Array, RawValue,
 * RawArray, of any element size, in the family's shared heap (pointers valid
 * in every process of the family, also for objects created after a child
 * started). Same common contract as the sync section (NULL/-EINVAL,
 * -ENOMEM, MPROC_EDESTROYED, destroy(NULL) = 0).
 *
 * Synchronized objects copy under a Lock (get_lock() returns it, usable with
 * the mproc_lock_* API). The accessors skip locking when the calling thread
 * already holds that lock, so "acquire get_lock(); get; set; release" is
 * the way to make a read-modify-write atomic (Python's
 * `with v.get_lock(): v.value += 1`). If the lock's previous owner died
 * holding it, an accessor still does its copy and returns MPROC_EOWNERDEAD.
 */

typedef struct mproc_value mproc_value_t;
typedef struct mproc_array mproc_array_t;

#define MPROC_VALUE_RAW (1u << 0) /* no lock: RawValue / RawArray */

typedef struct mproc_value_opts {
  unsigned flags;      /* MPROC_VALUE_* (0 = synchronized with its own Lock);
                          unknown bits: -EINVAL */
  mproc_lock_t *lock;  /* use this Lock instead of a new one (Python's lock=
                          argument); not owned: it must outlive the object.
                          With MPROC_VALUE_RAW: -EINVAL */
} mproc_value_opts;

/* Create a Value of size bytes (>= 1), initialised from init (size bytes)
 * or zeroed when init is NULL. opts NULL = synchronized with its own Lock.
 * -EINVAL (NULL value, size 0, bad opts, opts->lock not a live Lock:
 * MPROC_EDESTROYED if destroyed), -ENOMEM. */
MPROC_EXPORT int mproc_value_create(mproc_value_t **value, size_t size,
                                    const void *init, const mproc_value_opts *opts);
/* Free it (and its own Lock; -EBUSY if another thread holds that). */
MPROC_EXPORT int mproc_value_destroy(mproc_value_t *value);
/* Copy the value out / in under its lock. size must be the value's size
 * (-EINVAL otherwise). 0 or MPROC_EOWNERDEAD (copy done). */
MPROC_EXPORT int mproc_value_get(mproc_value_t *value, void *out, size_t size);
MPROC_EXPORT int mproc_value_set(mproc_value_t *value, const void *in, size_t size);
/* The bytes themselves (16-byte aligned), for raw use or under get_lock().
 * NULL for a bad value. Valid in every process of the family. */
MPROC_EXPORT void *mproc_value_ptr(mproc_value_t *value);
/* Size in bytes (0 for a bad value). */
MPROC_EXPORT size_t mproc_value_size(const mproc_value_t *value);
/* The Lock guarding the value. -ENOTSUP for a raw value. */
MPROC_EXPORT int mproc_value_get_lock(mproc_value_t *value, mproc_lock_t **lock);
/* Typed helpers for 8-byte values (-EINVAL when the size is not 8).
 * add_i64 adds delta atomically under the lock (wrapping) and stores the
 * new value in *result when result is not NULL. */
MPROC_EXPORT int mproc_value_get_i64(mproc_value_t *value, int64_t *out);
MPROC_EXPORT int mproc_value_set_i64(mproc_value_t *value, int64_t x);
MPROC_EXPORT int mproc_value_add_i64(mproc_value_t *value, int64_t delta, int64_t *result);
MPROC_EXPORT int mproc_value_get_f64(mproc_value_t *value, double *out);
MPROC_EXPORT int mproc_value_set_f64(mproc_value_t *value, double x);

/* Create an Array of count (>= 1) elements of elem_size (>= 1) bytes,
 * initialised from init (elem_size * count bytes) or zeroed. -EINVAL also
 * when elem_size * count overflows. */
MPROC_EXPORT int mproc_array_create(mproc_array_t **array, size_t elem_size, size_t count,
                                    const void *init, const mproc_value_opts *opts);
MPROC_EXPORT int mproc_array_destroy(mproc_array_t *array);
/* Number of elements / element size (0 for a bad array). */
MPROC_EXPORT size_t mproc_array_len(const mproc_array_t *array);
MPROC_EXPORT size_t mproc_array_elem_size(const mproc_array_t *array);
/* Element i copied out / in under the lock. -ERANGE if i >= len. */
MPROC_EXPORT int mproc_array_get(mproc_array_t *array, size_t i, void *out);
MPROC_EXPORT int mproc_array_set(mproc_array_t *array, size_t i, const void *in);
/* Elements [start, start + n) copied out / in under the lock, as one
 * atomic step (Python's slices). -ERANGE if the range passes the end;
 * n = 0 is a no-op. */
MPROC_EXPORT int mproc_array_read(mproc_array_t *array, size_t start, size_t n, void *out);
MPROC_EXPORT int mproc_array_write(mproc_array_t *array, size_t start, size_t n,
                                   const void *in);
/* The elements themselves (16-byte aligned), NULL for a bad array. */
MPROC_EXPORT void *mproc_array_ptr(mproc_array_t *array);
/* The Lock guarding the array. -ENOTSUP for a raw array. */
MPROC_EXPORT int mproc_array_get_lock(mproc_array_t *array, mproc_lock_t **lock);
/* Typed element helpers for 8-byte elements (-EINVAL otherwise). */
MPROC_EXPORT int mproc_array_get_i64(mproc_array_t *array, size_t i, int64_t *out);
MPROC_EXPORT int mproc_array_set_i64(mproc_array_t *array, size_t i, int64_t x);
MPROC_EXPORT int mproc_array_get_f64(mproc_array_t *array, size_t i, double *out);
MPROC_EXPORT int mproc_array_set_f64(mproc_array_t *array, size_t i, double x);

/* ---- Named shared memory (Python's shared_memory.SharedMemory) ---- */

/*
 * A segment named N is /dev/shm/mproc.N, attachable by any process that
 * knows the name (not only the family). $MPROC_SHM_DIR (an absolute path)
 * replaces /dev/shm, for tests and sandboxes: every process using a segment
 * must see the same value. A handle is private to the process that opened
 * it; it holds no file descriptor.
 *
 * Lifetime: a segment created without MPROC_SHM_KEEP is unlinked
 * automatically once every process of the creating family has exited -
 * normally, by a signal, or by SIGKILL (a tracker process watches the
 * family; see docs/values.md for the exact guarantee). With MPROC_SHM_KEEP
 * it stays until someone calls mproc_shm_unlink*(). Attaching never ties
 * the segment's life to the attaching process.
 */
typedef struct mproc_shm mproc_shm_t;

#define MPROC_SHM_KEEP (1u << 0) /* keep the segment after the family exits */
#define MPROC_SHM_NAME_MAX 200   /* longest name accepted */

/*
 * Create a new segment of size bytes (zeroed) and map it. name: 1 ..
 * MPROC_SHM_NAME_MAX bytes, no '/'; NULL = a random unique name (read it
 * with mproc_shm_name). Returns 0, -EINVAL (NULL out, size 0 or >
 * PTRDIFF_MAX, bad name, unknown flags, $MPROC_SHM_DIR not absolute or
 * longer than 256 bytes), -ENAMETOOLONG, -EEXIST (name
 * taken), -ENOMEM, or another -errno from the system.
 */
MPROC_EXPORT int mproc_shm_create(mproc_shm_t **shm, const char *name, size_t size,
                                  unsigned flags);
/* Map an existing segment. -ENOENT if there is none by that name, -EINVAL
 * / -ENAMETOOLONG for a bad name, -EAGAIN if its creator has not sized it
 * yet. */
MPROC_EXPORT int mproc_shm_attach(mproc_shm_t **shm, const char *name);
/* The mapping (page aligned), its size in bytes, the segment's name (owned
 * by the handle). NULL / 0 / NULL for a bad handle. */
MPROC_EXPORT void *mproc_shm_ptr(const mproc_shm_t *shm);
MPROC_EXPORT size_t mproc_shm_size(const mproc_shm_t *shm);
MPROC_EXPORT const char *mproc_shm_name(const mproc_shm_t *shm);
/* Unmap and free the handle (the segment itself stays; see unlink). The
 * handle is invalid afterwards. NULL: 0. */
MPROC_EXPORT int mproc_shm_close(mproc_shm_t *shm);
/* Remove the segment's name now (existing mappings stay valid). -ENOENT if
 * already removed. Call before close. */
MPROC_EXPORT int mproc_shm_unlink(mproc_shm_t *shm);
/* Remove a segment by name (for cleaning up KEEP segments). -ENOENT, -EINVAL,
 * -ENAMETOOLONG. */
MPROC_EXPORT int mproc_shm_unlink_name(const char *name);

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

/* @@END shared @@ */

/* @@SECTION manager: manager server and proxies @@ */

/* @@END manager @@ */

#ifdef __cplusplus
}
#endif
#endif /* MPROC_H */
