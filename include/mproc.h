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
  XX(ENOSYS, -ENOSYS, "system call missing in this kernel")              \
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
  size_t heap_size; /* bytes of address space for the family's shared heap,
                       1 MiB .. 1 TiB (sparse: memory is used only when
                       touched; about 0.4 % goes to metadata). 0 = the
                       environment variable MPROC_HEAP_SIZE, else 1 GiB.
                       MPROC_HEAP_SIZE is decimal digits with an optional
                       suffix K, M, G or T (powers of 1024, any case) and an
                       optional B: "512M", "2g", "1048576", "8MB". Anything
                       else (signs, spaces, hex, fractions, overflow, out of
                       range) makes initialisation fail with -EINVAL. */
  int start_method; /* mproc_start_method_t default; 0 = fork */
  unsigned flags;   /* reserved, must be 0 */
} mproc_init_opts;

/*
 * Initialise the library explicitly. Optional: every call initialises it
 * lazily with defaults (and $MPROC_HEAP_SIZE). opts may be NULL.
 * Returns 0; -EINVAL on bad options (flags != 0, unknown start method,
 * heap_size outside 1 MiB .. 1 TiB, invalid $MPROC_HEAP_SIZE); -EBUSY if
 * already initialised with a different non-zero heap_size (same size or 0:
 * 0); -ENOMEM or another -errno if the heap cannot be created. A failed
 * initialisation leaves the library uninitialised (it may be retried).
 * Call it early, before threads and children, to set the heap size. Forked
 * and spawned children inherit the parent's heap: init in a child is a
 * no-op. Thread-safe.
 */
MPROC_EXPORT int mproc_init(const mproc_init_opts *opts);

typedef struct mproc_heap_stats {
  size_t capacity;    /* bytes of data pages (heap_size minus metadata) */
  size_t used;        /* bytes handed out to live blocks, rounded up to the
                         block's size class (small) or to pages (large) */
  size_t live_blocks; /* blocks allocated and not yet freed, family-wide */
  size_t resident;    /* bytes of the heap's memfd backed by memory now */
  size_t recoveries;  /* times a lock of the heap was taken over from a dead
                         process and its half-done change rolled back */
} mproc_heap_stats;

/*
 * Allocate size bytes (1 .. capacity) in the family's shared heap. *out is
 * a pointer valid at the same address in every process of the family
 * (parent, forked, forkserver-made and spawned children, including those
 * started before the allocation), 16-byte aligned (64-byte aligned when size
 * is a multiple of 64, as for structs declared aligned(64); 4096-byte
 * aligned above 16 KiB), contents zeroed; it stays
 * valid until freed by any process. Blocks up to 16 KiB come from size
 * classes (16-byte steps to 128, then four per power of two), larger ones
 * are whole 4 KiB pages.
 * Returns 0; -EINVAL (out NULL, size 0; *out untouched); -ENOMEM when the
 * heap has no room (after giving cached memory back and retrying), never a
 * crash. Thread-safe; any process may call it concurrently. Crash-safe: a
 * process killed at any instant inside it leaves the heap consistent and
 * unlocked, and the block it was allocating is freed again (by the heap's
 * next reaper of the dead thread's in-flight record); only a block already
 * returned to a caller that died before storing the pointer is the
 * caller's leak. Not async-signal-safe.
 */
MPROC_EXPORT int mproc_heap_alloc(size_t size, void **out);

/*
 * Free a block from mproc_heap_alloc; any process of the family may free
 * any block. NULL is a no-op (0). -EINVAL if p is not the start of a live
 * heap block: pointers outside the heap, into the middle of a block, to free
 * memory, and double frees are detected (a double free after the block was
 * handed out again cannot be told from a valid free). Large blocks' pages go
 * back to the OS (beyond a bounded resident cache, see mproc_heap_trim);
 * the first 4 KiB of a freed block keep their contents until reused, so an
 * object's "destroyed" magic stays readable. Thread- and crash-safe as
 * mproc_heap_alloc: a process killed inside it leaves the block either
 * freed or still allocated and then freed by the heap's reaper, never
 * leaked.
 */
MPROC_EXPORT int mproc_heap_free(void *p);

/* Fill *st with the heap's current figures (a lock-free snapshot: exact
 * when the family is quiet). -EINVAL on NULL, or an init error. */
MPROC_EXPORT int mproc_heap_stats_get(mproc_heap_stats *st);

/* 1 when p points into the data area of the family's shared heap (a block
 * or free memory), 0 otherwise (NULL, not initialised, elsewhere). */
MPROC_EXPORT int mproc_heap_contains(const void *p);

/* Give memory the heap keeps for reuse back to the OS: empty slabs cached
 * per size class and recently freed spans kept resident (the cache: at
 * most $MPROC_HEAP_CACHE bytes, a size like "64M" or a percentage of the
 * heap like "10%", "0" for none; default 1/4 of the heap up to 256 MiB; an
 * invalid value makes initialisation fail with -EINVAL). Returns 0, or an
 * init error. The heap also does this by itself before reporting -ENOMEM.
 * Thread-safe. */
MPROC_EXPORT int mproc_heap_trim(void);

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
 * holds it and should repair the data; notified or not is unknown), -ENOMEM
 * (no room in the shared heap for the waiter's small queue node; the lock
 * was not released).
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

/* A barrier for parties (1 .. 65536) waiters, without an action.
 * Returns 0, -EINVAL (NULL barrier, parties out of range), -ENOMEM. */
MPROC_EXPORT int mproc_barrier_create(mproc_barrier_t **barrier, int parties);

/* A barrier action (Python's Barrier(parties, action)): return 0 for
 * success, anything else for failure. */
typedef int (*mproc_barrier_action_fn)(void *arg);

/*
 * A barrier whose every cycle runs action(arg) once, in exactly one of the
 * released parties (the last to arrive), before any party is released.
 * If the action returns non-zero the barrier breaks: every party of that
 * cycle, the runner included, gets MPROC_EBROKEN, as do later waits until
 * mproc_barrier_reset(). While it runs, the other parties are still
 * waiting: their timeouts, abort() and reset() act as before the last
 * arrival (the cycle breaks, the runner gets MPROC_EBROKEN once the action
 * returns), and the runner's process dying breaks the barrier.
 * The action must be a function of the program or of a library loaded in
 * every process that may run it: it is found again by module and offset,
 * so it works in fork, forkserver and spawn children alike (a runner that
 * lacks the module breaks the barrier). arg is passed as is: in spawn
 * children only NULL, an integer or a shared-heap pointer mean anything.
 * The action runs with no mproc lock held; it must not wait on this
 * barrier. Returns 0, -EINVAL (NULL barrier or action, parties out of
 * range, action not inside any loaded object), -ENAMETOOLONG (the module's
 * path is 256 bytes or longer), -ENOMEM. Thread- and fork-safe as the
 * rest of the barrier.
 */
MPROC_EXPORT int mproc_barrier_create_action(mproc_barrier_t **barrier, int parties,
                                             mproc_barrier_action_fn action, void *arg);
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
/* parties; the number waiting in the current cycle (0 once all arrived,
 * also while the action runs); 1 if broken, 0 if not.
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
 * n = 0 is a no-op (the buffer may then be NULL); -EINVAL for a NULL
 * buffer otherwise. */
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

/*
 * Processes (Python's multiprocessing.Process). See docs/process.md.
 *
 * Lifecycle: create -> [start -> join] -> close -> destroy, as in Python.
 * A child dies with its parent: it gets SIGKILL within moments of the
 * parent's death, however the parent died (PR_SET_PDEATHSIG, armed from a
 * thread that lives as long as the process). At the parent's normal exit
 * (exit() or return from main) daemon children are terminated (SIGTERM,
 * SIGKILL after 1 s) and the others are joined, as in Python. No SIGCHLD
 * handler is installed: finished children are reaped whenever start(),
 * join(), is_alive(), exitcode() or mproc_active_children() runs.
 *
 * In the child: the target runs, then the child's own exit processing (its
 * children are joined or terminated), stdout and stderr are flushed and the
 * child calls _exit(target's return value & 0xff). The parent's atexit
 * handlers do not run in the child. The parent flushes stdout and stderr
 * before starting a child so buffered output is not written twice.
 *
 * Handles are process-local: every call on a handle from a process other
 * than its creator returns MPROC_ENOTOWNER, except the read-only name and
 * daemon (destroy just frees the copy).
 * Calls on one handle are thread-safe.
 */

/* A child process. Opaque, process-local, owned by the creating process. */
typedef struct mproc_process mproc_process_t;

/* The target runs in the child with the user's argument; its return value
 * & 0xff is the child's exit code. Subclassing Process and overriding run()
 * maps to a target plus a user struct passed as arg. */
typedef int (*mproc_target_fn)(void *arg);

typedef struct mproc_process_opts {
  const char *name;  /* NULL or "" = "Process-N" ("Process-N:M" when created
                        in a child, like Python's _identity); copied, at most
                        255 bytes */
  int daemon;        /* non-zero: terminated when the parent exits normally,
                        and may not start children of its own (-EPERM) */
  int start_method;  /* mproc_start_method_t; 0 = the family default at
                        create time */
  const char *target_name; /* a name given to mproc_register_target(): the
                              target may then be NULL. Required (or found
                              from the function) for spawn. */
  size_t arg_size;   /* > 0: copy arg_size bytes at arg now (max 64 MiB);
                        the child's target gets a pointer to its own copy.
                        0 = pass the pointer value itself: valid for fork,
                        for forkserver when it points into the heap or
                        into data that existed when the server started, and
                        for spawn only when it points into the shared heap
                        (checked: -EINVAL otherwise) */
  const void *authkey; /* the child's authkey (copied, 1..MPROC_AUTHKEY_MAX
                          bytes with authkey_len); NULL = the parent's */
  size_t authkey_len;
} mproc_process_opts;

#define MPROC_AUTHKEY_MAX 1024 /* longest authkey, bytes */

/* Register a target under a stable name so spawn children (a fresh exec of
 * the program) can find it. Call it in every process, before
 * mproc_spawn_main(), typically at the start of main(). Registering the same
 * (name, fn) pair again is a no-op. Returns 0; -EINVAL (NULL/empty name,
 * NULL fn), -ENAMETOOLONG (> 63 bytes), -EEXIST (name taken by another
 * function), -ENOSPC (256 targets already). Thread-safe. */
MPROC_EXPORT int mproc_register_target(const char *name, mproc_target_fn fn);

/* For programs that use the spawn start method: call it at the start of
 * main(), after mproc_register_target() calls and before anything else. In
 * a spawned child it attaches the family heap, runs the requested target
 * and exits (never returns; a malformed request exits with status 127). In
 * any other process it returns 0 at once; -EINVAL if argv is NULL with
 * argc > 0 or argc < 0. */
MPROC_EXPORT int mproc_spawn_main(int argc, char **argv);

/* Create a process object (not started). target may be NULL only with
 * opts->target_name naming a registered target. opts may be NULL. The
 * name and Python-style identity are fixed here (the counter advances at
 * create, as in Python). Returns 0 and sets *p; -EINVAL (NULL p; no target;
 * bad start_method; arg_size > 64 MiB or arg_size with NULL arg; target and
 * target_name naming different functions; spawn with a pointer arg outside
 * the heap), -ENAMETOOLONG (name > 255 bytes), MPROC_ENOTREG (target_name
 * not registered; spawn with an unregistered target), -ENOMEM. */
MPROC_EXPORT int mproc_process_create(mproc_process_t **p, mproc_target_fn target,
                                      void *arg, const mproc_process_opts *opts);

/* Start the child; returns once it exists (spawn: once it exec'd, attached
 * the heap and found its target). Returns 0; MPROC_ESTATE if already
 * started; -EPERM when the calling process is a daemon child;
 * MPROC_EDESTROYED after close; MPROC_ENOTOWNER; -EINVAL (NULL); a system
 * error from fork/pidfd_open/socketpair/pipe2 (-EAGAIN, -ENOMEM, -EMFILE,
 * ...) or MPROC_ECHILDFAIL (forkserver or spawn child failed to start), in
 * which case nothing leaked and the handle stays startable. Forks happen
 * on the calling thread if it is the main thread, else on the library's
 * launcher thread. */
MPROC_EXPORT int mproc_process_start(mproc_process_t *p);

/* Run the target in the calling process (Python's run()); returns the
 * target's return value as is. -EINVAL, MPROC_EDESTROYED, ENOTOWNER. */
MPROC_EXPORT int mproc_process_run(mproc_process_t *p);

/* Wait for the child to end, up to timeout seconds (-1 forever, 0 poll).
 * Returns 0 when it ended (exitcode is then known), -ETIMEDOUT if still
 * running, MPROC_ESTATE if never started, -EINVAL on NULL or a bad
 * timeout, MPROC_EDESTROYED after close, MPROC_ENOTOWNER. Uses no CPU
 * while waiting (poll on the pidfd). */
MPROC_EXPORT int mproc_process_join(mproc_process_t *p, double timeout);

/* 1 if started and not yet ended, 0 otherwise (never started, or ended:
 * then it is reaped). -EINVAL, MPROC_EDESTROYED, MPROC_ENOTOWNER. */
MPROC_EXPORT int mproc_process_is_alive(mproc_process_t *p);

/* Send SIGTERM / SIGKILL (through the pidfd: never hits a recycled pid).
 * 0, also when the child already ended. MPROC_ESTATE if never started;
 * -EINVAL, MPROC_EDESTROYED, MPROC_ENOTOWNER. */
MPROC_EXPORT int mproc_process_terminate(mproc_process_t *p);
MPROC_EXPORT int mproc_process_kill(mproc_process_t *p);

/* Release the process's resources (its pidfd): 0 (also when never started
 * or already closed); -EBUSY if still running; -EINVAL; MPROC_ENOTOWNER.
 * After close every call on p returns MPROC_EDESTROYED except close,
 * destroy, name and daemon. */
MPROC_EXPORT int mproc_process_close(mproc_process_t *p);

/* Free the handle. NULL is a no-op. A still-running child is not killed:
 * the library keeps reaping it and applies its daemon flag at exit, and
 * frees the handle's memory once it ended. Returns 0 or -EINVAL. */
MPROC_EXPORT int mproc_process_destroy(mproc_process_t *p);

/* Change the name (any time; the child's own name is fixed at start) or
 * the daemon flag (before start only: MPROC_ESTATE after). -EINVAL (NULL or
 * empty name), -ENAMETOOLONG, MPROC_EDESTROYED, MPROC_ENOTOWNER. */
MPROC_EXPORT int mproc_process_set_name(mproc_process_t *p, const char *name);
MPROC_EXPORT int mproc_process_set_daemon(mproc_process_t *p, int daemon);

/* The child's pid once started. MPROC_ESTATE before start, -EINVAL,
 * MPROC_EDESTROYED, MPROC_ENOTOWNER. */
MPROC_EXPORT pid_t mproc_process_pid(const mproc_process_t *p);

/* *code = the target's return value & 0xff when the child exited, -signo
 * when a signal killed it (Python's exitcode), -ECHILD if its status was
 * taken by someone else (a waitpid(-1) elsewhere or SIGCHLD ignored).
 * Returns 0 when known; MPROC_ESTATE while not started or still running;
 * -EINVAL (NULL p or code), MPROC_EDESTROYED, MPROC_ENOTOWNER. */
MPROC_EXPORT int mproc_process_exitcode(mproc_process_t *p, int *code);

/* The name ("" for NULL or an invalid handle). Valid until destroy. */
MPROC_EXPORT const char *mproc_process_name(const mproc_process_t *p);
/* The daemon flag: 0 or 1; -EINVAL. */
MPROC_EXPORT int mproc_process_daemon(const mproc_process_t *p);
/* A pidfd that becomes readable when the child ends (poll/epoll/select;
 * Python's sentinel). Owned by p: do not close it; valid until close or
 * destroy. MPROC_ESTATE before start, -EINVAL, MPROC_EDESTROYED,
 * MPROC_ENOTOWNER. */
MPROC_EXPORT int mproc_process_sentinel(const mproc_process_t *p);

/* The calling process: its name ("MainProcess" in the top process, the
 * Process name in a child; static storage), its pid, and its parent's pid
 * (the process that started it - for forkserver children too - or 0 in a
 * process not started by mproc). Async-signal-safe: current_pid only. */
MPROC_EXPORT const char *mproc_current_name(void);
MPROC_EXPORT pid_t mproc_current_pid(void);
MPROC_EXPORT pid_t mproc_parent_pid(void);

/* The calling process's authkey (Python's current_process().authkey): 32
 * random bytes made on first use in the top process; a child gets its
 * parent's (as it was at start) or the one in its opts. *key points to
 * static storage valid until the next set; copy it if threads may set it.
 * Returns 0; -EINVAL (NULL key or len); an error if no randomness.
 * set copies 1..MPROC_AUTHKEY_MAX bytes (-EINVAL otherwise); children
 * started afterwards inherit the new key. Thread-safe. */
MPROC_EXPORT int mproc_current_authkey(const void **key, size_t *len);
MPROC_EXPORT int mproc_set_current_authkey(const void *key, size_t len);

/* Reap finished children and store up to cap of the running ones (in start
 * order) in out (may be NULL with cap 0). Returns the number of running
 * children (may exceed cap); handles destroyed while running are reaped but
 * neither counted nor returned. -EINVAL (cap < 0, NULL out with cap > 0). */
MPROC_EXPORT int mproc_active_children(mproc_process_t **out, int cap);

/* CPUs this process may use: the affinity mask (sched_getaffinity), capped
 * by the cgroup CPU quota (v2 cpu.max, v1 cfs quota; the process's cgroup
 * and its ancestors, rounded up); $MPROC_CPU_COUNT (a positive integer)
 * overrides both. Always >= 1. Thread-safe. */
MPROC_EXPORT int mproc_cpu_count(void);

/* Set the default start method of this process's future children
 * (MPROC_START_FORK, _FORKSERVER or _SPAWN). FORKSERVER starts the fork
 * server at once: call it early in main(), before creating threads.
 * Returns 0, -EINVAL (unknown method), or the error starting the server.
 * get returns the current default (MPROC_START_FORK unless changed). */
MPROC_EXPORT int mproc_set_start_method(int method);
MPROC_EXPORT int mproc_get_start_method(void);

/* @@END process @@ */

/* @@SECTION ipc: Queue, Pipe/Connection, wait, Listener/Client @@ */

/* ------------------------------------------------------------------------
 * Queues (Python's Queue, JoinableQueue, SimpleQueue).
 *
 * A queue lives in the family's shared heap: pass the pointer to children by
 * value (fork) or inside heap memory. Messages are byte strings of 0 bytes up
 * to what the heap can hold. Small messages (<= inline_max) are copied into a
 * ring slot; larger ones travel by reference through the heap (one copy in,
 * one copy out, no kernel pipe). Any number of producers and consumers, any
 * thread of any process of the family. No feeder thread: a put is complete
 * when it returns, so a producer may exit right after it.
 *
 * Crash behaviour: a producer or consumer killed at any instant never wedges
 * or corrupts the queue. A message whose put returned is delivered exactly
 * once, unless a consumer is killed while taking it (then it is lost with that
 * consumer: at most one message per killed consumer). A put whose process
 * died before it returned is delivered at most once. Never duplicated.
 * A process killed inside put/get of a large message may leak that one heap
 * block. See docs/queue.md.
 *
 * Ordering: FIFO for one producer seen by one consumer (as in Python).
 * ------------------------------------------------------------------------ */
typedef struct mproc_queue mproc_queue_t;

/* Queue kinds (mproc_queue_opts.flags). */
#define MPROC_QUEUE_JOINABLE (1u << 0) /* JoinableQueue: task_done/join */
#define MPROC_QUEUE_SIMPLE (1u << 1)   /* SimpleQueue (informational: an
                                          unbounded queue; every call works) */

typedef struct mproc_queue_opts {
  size_t maxsize;    /* max messages held; 0 = unbounded (Python's default) */
  size_t maxbytes;   /* max payload bytes held; 0 = no byte bound. A put that
                        would exceed it waits, except into an empty queue (so
                        one message larger than maxbytes still passes). Soft
                        after crashes: a killed process may loosen it by one
                        message. */
  size_t inline_max; /* messages up to this many bytes are copied into ring
                        slots; larger ones go by reference through the heap.
                        0 = 240 (256-byte slots). At most 65536. */
  size_t slots;      /* ring slots of an unbounded queue (0 = 256); past
                        them, messages go to an overflow list in the heap.
                        Ignored when maxsize > 0 (the ring has maxsize slots).
                        At most 2^24. */
  unsigned flags;    /* MPROC_QUEUE_* */
} mproc_queue_opts;

/* Create a queue in the shared heap. opts may be NULL (unbounded Queue).
 * Returns 0, -EINVAL (NULL q, flags unknown, inline_max/slots/maxsize out of
 * range: maxsize at most 2^24), -ENOMEM (heap full). */
MPROC_EXPORT int mproc_queue_create(mproc_queue_t **q, const mproc_queue_opts *opts);
/* JoinableQueue(maxsize) and SimpleQueue() shorthands for mproc_queue_create. */
MPROC_EXPORT int mproc_joinablequeue_create(mproc_queue_t **q, size_t maxsize);
MPROC_EXPORT int mproc_simplequeue_create(mproc_queue_t **q);

/* Free the queue and every message still in it. No process may use q during
 * or after the call (later calls return -EDESTROYED where detectable).
 * NULL is a no-op. -EDESTROYED/-EINVAL on a pointer that is not a queue. */
MPROC_EXPORT int mproc_queue_destroy(mproc_queue_t *q);

/* Put len bytes (data may be NULL when len is 0). Waits up to timeout
 * seconds (-1 forever, 0 no wait) while the queue is full.
 * Returns 0; -EFULL when still full at the deadline (Python's queue.Full);
 * -ECLOSED after mproc_queue_close; -ENOMEM when a large message does not fit
 * in the heap; -EINVAL (NULL q, NULL data with len > 0, bad timeout);
 * -EDESTROYED. */
MPROC_EXPORT int mproc_queue_put(mproc_queue_t *q, const void *data, size_t len,
                                 double timeout);

/* Take the oldest message into buf (cap bytes; buf may be NULL if cap is 0).
 * *len receives the message size. Waits up to timeout seconds while empty.
 * Returns 0; -ETOOSHORT when cap is smaller than the message: the message
 * stays in the queue and *len is the size needed (Python's BufferTooShort);
 * -EEMPTY when still empty at the deadline (queue.Empty); -ECLOSED when the
 * queue is closed and drained (a blocked getter wakes at close); -EINVAL;
 * -EDESTROYED. */
MPROC_EXPORT int mproc_queue_get(mproc_queue_t *q, void *buf, size_t cap, size_t *len,
                                 double timeout);

/* As mproc_queue_get, but the message is returned in a malloc'd buffer the
 * caller frees with free() (*data is non-NULL even for 0 bytes).
 * Extra error: -ENOMEM (process memory; the message is then lost). */
MPROC_EXPORT int mproc_queue_get_alloc(mproc_queue_t *q, void **data, size_t *len,
                                       double timeout);

/* Approximate number of messages (>= 0), as Python's qsize: exact when no
 * put/get runs concurrently. -EINVAL/-EDESTROYED on a bad q. */
MPROC_EXPORT long mproc_queue_qsize(mproc_queue_t *q);
/* 1 when empty / full, 0 otherwise (approximate as in Python); negative error. */
MPROC_EXPORT int mproc_queue_empty(mproc_queue_t *q);
MPROC_EXPORT int mproc_queue_full(mproc_queue_t *q);

/* Close: later puts return -ECLOSED; gets drain what is left, then return
 * -ECLOSED at once; blocked getters and putters wake. Unlike Python's
 * close (per process) this is family-wide. Idempotent: 0. */
MPROC_EXPORT int mproc_queue_close(mproc_queue_t *q);

/* JoinableQueue: mark one fetched task done; join waits until every put
 * message has been task_done'd. task_done: 0, -EOVERFLOW if called more
 * times than messages were put (Python's ValueError), -ENOTSUP on a queue
 * created without MPROC_QUEUE_JOINABLE. join: 0, -ETIMEDOUT, -ENOTSUP,
 * -EINVAL (bad timeout). */
MPROC_EXPORT int mproc_queue_task_done(mproc_queue_t *q);
MPROC_EXPORT int mproc_queue_join(mproc_queue_t *q, double timeout);

/* ------------------------------------------------------------------------
 * Pipes and connections (Python's Pipe, Connection, Listener, Client).
 *
 * A connection is a process-local handle around one socket fd: a forked
 * child inherits it (pass the pointer by value); close the end you do not use
 * in each process (mproc_conn_close). Messages are framed byte strings of any
 * size. Sends never raise SIGPIPE: a closed or dead peer gives -EEOF.
 * One thread at a time may send, and one may receive, on a connection.
 * ------------------------------------------------------------------------ */
typedef struct mproc_conn mproc_conn_t;

/* Create a connected pair. duplex != 0: both ends send and receive.
 * duplex == 0: *a only receives, *b only sends (as Python's Pipe(False)).
 * Returns 0, -EINVAL, -EMFILE/-ENFILE, -ENOMEM. */
MPROC_EXPORT int mproc_pipe(mproc_conn_t **a, mproc_conn_t **b, int duplex);

/* Send one message of len bytes (data may be NULL if len is 0); blocks until
 * it is written to the socket. Returns 0; -EEOF when the peer closed or died;
 * -EPERM on a receive-only end; -EMSGSIZE when len exceeds the connection's
 * max message size; -ECLOSED after close; -EINVAL. */
MPROC_EXPORT int mproc_conn_send(mproc_conn_t *c, const void *data, size_t len);

/* Receive one message into buf (cap bytes), waiting up to timeout seconds
 * (-1 forever) for it. *len receives its size. Returns 0; -ETOOSHORT when cap
 * is too small: the message is kept (the next recv returns it) and *len is
 * the size needed; -ETIMEDOUT when no message started before the deadline;
 * -EEOF when the peer closed or died (also in the middle of a frame);
 * -EMSGSIZE when the peer announced a message larger than the max message
 * size, -EPROTO on a malformed frame, -ETIMEDOUT mid-frame: these three break
 * the connection (later calls return -ECONNABORTED); -EPERM on a send-only
 * end; -ECLOSED; -EINVAL. */
MPROC_EXPORT int mproc_conn_recv(mproc_conn_t *c, void *buf, size_t cap, size_t *len,
                                 double timeout);

/* As mproc_conn_recv, into a malloc'd buffer the caller frees with free(). */
MPROC_EXPORT int mproc_conn_recv_alloc(mproc_conn_t *c, void **data, size_t *len,
                                       double timeout);

/* 1 when a message (or end of file) is ready to read, 0 at the deadline
 * (timeout 0 = check, -1 = wait forever); negative error. */
MPROC_EXPORT int mproc_conn_poll(mproc_conn_t *c, double timeout);

/* The socket fd, for the caller's own event loop (readable = poll ready).
 * Owned by c. -ECLOSED after close. */
MPROC_EXPORT int mproc_conn_fileno(const mproc_conn_t *c);

/* Set the largest message this end accepts from the peer (recv) and sends
 * (send). 0 = no limit (the default for pipes). -EINVAL. */
MPROC_EXPORT int mproc_conn_set_max_message(mproc_conn_t *c, size_t max);

/* Close the fd; the handle stays valid until destroy (calls return
 * -ECLOSED). Idempotent. mproc_conn_destroy closes and frees; NULL no-op. */
MPROC_EXPORT int mproc_conn_close(mproc_conn_t *c);
MPROC_EXPORT int mproc_conn_destroy(mproc_conn_t *c);

/* ------------------------------------------------------------------------
 * Waiting on many objects at once (Python's multiprocessing.connection.wait).
 * Connections, queues and any fd (a process sentinel from
 * mproc_process_sentinel, a socket, ...). A queue is ready when it holds a
 * message or is closed; a connection when a message or EOF is readable.
 * ------------------------------------------------------------------------ */
typedef enum mproc_wait_kind {
  MPROC_WAIT_FD = 1,    /* u.fd: readable (or hung up) */
  MPROC_WAIT_CONN = 2,  /* u.conn */
  MPROC_WAIT_QUEUE = 3  /* u.queue */
} mproc_wait_kind;

typedef struct mproc_waitable {
  int kind;  /* mproc_wait_kind */
  union {
    int fd;
    mproc_conn_t *conn;
    mproc_queue_t *queue;
  } u;
  int ready; /* out: 1 when ready */
} mproc_waitable;

/* Wait until at least one object is ready or timeout seconds pass. Sets
 * ready on each object and returns how many are ready (0 at the deadline).
 * Waiting uses no CPU (queues are watched by futex, see docs/connection.md).
 * -EINVAL (NULL with n > 0, n > 1024, unknown kind, bad fd, bad timeout),
 * -ECLOSED (a closed connection), -EDESTROYED, or a system error. */
MPROC_EXPORT int mproc_wait(mproc_waitable *objs, size_t n, double timeout);

/* ------------------------------------------------------------------------
 * Listener and Client: connections between unrelated processes over a Unix
 * socket ("unix:/path", "/path", or "unix:@name" for the abstract namespace)
 * or TCP ("tcp:HOST:PORT"; port 0 picks a free port). With an authkey both
 * sides prove knowledge of it by HMAC-SHA256 challenge-response, in both
 * directions (libsodium); a wrong key fails on both sides with -EAUTH.
 * ------------------------------------------------------------------------ */
typedef struct mproc_listener mproc_listener_t;

typedef struct mproc_conn_opts {
  const void *authkey;      /* NULL = no authentication (both sides must agree) */
  size_t authkey_len;       /* bytes of authkey (1..1024 when authkey given) */
  size_t max_message;       /* largest accepted message; 0 = 64 MiB */
  double handshake_timeout; /* seconds for connect+handshake; 0 = 10 s */
  int backlog;              /* listener backlog; 0 = 128 */
} mproc_conn_opts;

/* Bind and listen. For a Unix path, an existing socket file is replaced and
 * the file is removed at destroy. Returns 0, -EINVAL (bad address or opts),
 * -EADDRINUSE, -EACCES, -ENAMETOOLONG, or a system error. */
MPROC_EXPORT int mproc_listener_create(mproc_listener_t **l, const char *address,
                                       const mproc_conn_opts *opts);
/* Accept one connection and run the handshake. Returns 0 and *c; -ETIMEDOUT
 * when no client arrived in time; -EAUTH when the client failed to prove the
 * key (or rejected ours); -EPROTO/-EEOF/-ETIMEDOUT for a client that sent
 * garbage, hung up or stalled during the handshake (that client is dropped;
 * call accept again). -EINVAL, -ECLOSED. */
MPROC_EXPORT int mproc_listener_accept(mproc_listener_t *l, mproc_conn_t **c,
                                       double timeout);
/* The bound address in the same syntax (with the real port for tcp:...:0).
 * Static per listener; valid until destroy. NULL on a bad l. */
MPROC_EXPORT const char *mproc_listener_address(const mproc_listener_t *l);
/* The listening fd (readable when a client is waiting), or a negative error. */
MPROC_EXPORT int mproc_listener_fileno(const mproc_listener_t *l);
/* Close and free; removes the Unix socket file. NULL no-op. */
MPROC_EXPORT int mproc_listener_destroy(mproc_listener_t *l);

/* Connect to a listener and run the handshake. Returns 0 and *c; -EAUTH
 * (wrong key on either side); -ECONNREFUSED/-ENOENT (no listener);
 * -ETIMEDOUT; -EPROTO; -EEOF; -EINVAL. */
MPROC_EXPORT int mproc_client_connect(mproc_conn_t **c, const char *address,
                                      const mproc_conn_opts *opts);

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

/*
 * Start methods of pools (docs/pool.md, "Start methods"):
 *  - MPROC_START_FORK: workers are forks of the pool's thread; task
 *    functions, the initializer and initarg may be any pointers.
 *  - MPROC_START_FORKSERVER: workers are forked by this process's fork
 *    server (safe in a multithreaded owner); MPROC_START_SPAWN: workers are
 *    fresh execs of the program (the program's main() must call
 *    mproc_pool_register() for its task functions, mproc_register_target()
 *    for its initializer, then mproc_spawn_main()). With both, a worker
 *    finds its functions by registered name: a task function passed as a
 *    pointer must be registered with mproc_pool_register() and the
 *    initializer with mproc_register_target() (else the call, or create,
 *    returns MPROC_ENOTREG: nothing crashes in a worker), and initarg must be
 *    NULL, point into the shared heap, or be copied (initarg_size).
 * Callbacks run in the owner process: any pointer, with every method.
 */
typedef struct mproc_pool_opts {
  int processes;        /* workers; 0 = mproc_cpu_count(); clipped inside a
                           worker to the family limit (see below) */
  mproc_pool_init_fn initializer; /* NULL = none */
  void *initarg;        /* passed to initializer (see initarg_size) */
  unsigned maxtasksperchild; /* chunks a worker runs before it is replaced;
                                0 = unlimited (Python's None) */
  int start_method;     /* mproc_start_method_t; 0 = the family default
                           (mproc_get_start_method()) at create time */
  double task_timeout;  /* default per-task timeout in seconds; 0 = none */
  unsigned retries;     /* default automatic retries of a chunk whose worker
                           died (not for timeouts or task errors); 0 = none,
                           at most 31 (-EINVAL above) */
  unsigned flags;       /* reserved, must be 0 */
  const char *initializer_name; /* a name given to mproc_register_target():
                                   the initializer (initializer may then be
                                   NULL; if both are set they must agree) */
  size_t initarg_size;  /* > 0: copy initarg_size bytes at initarg (at most
                           64 MiB) into the shared heap at create; every
                           worker's initializer gets a pointer to that copy.
                           0: pass initarg as is (fork: any pointer; other
                           methods: NULL or a pointer into the shared heap) */
} mproc_pool_opts;

/* A failed task's details (the analogue of the exception's text). */
typedef struct mproc_task_error {
  int code;          /* MPROC_E* / -errno; 0 = no error */
  int signo;         /* signal that killed the worker (EWORKERDIED), else 0 */
  int exit_status;   /* worker's exit status when it exited, else -1 */
  size_t index;      /* index of the failed task within the call */
  long peak_rss_kb;  /* worker's peak resident memory (EWORKERDIED), else 0;
                        -1 when unknown (forkserver workers are not the
                        pool's children: no rusage) */
  char message[256]; /* NUL-terminated text */
} mproc_task_error;

/* Called in the pool's one callback thread of the owner process, in
 * completion order, never in a signal handler. result/size: apply: the
 * result bytes; map: the output array (out) and n * out_size (0 for variable
 * outputs). Must not wait for other results of the same pool. Callbacks
 * run even when the AsyncResult was destroyed first; ar is then NULL. */
typedef void (*mproc_result_cb)(mproc_async_t *ar, const void *result,
                                size_t size, void *user);
typedef void (*mproc_error_cb)(mproc_async_t *ar, const mproc_task_error *err,
                               void *user);

/* Produces the next input of an imap: set *item and *size and return 1; return
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
                           pool's default, 1..31 = that many (else -EINVAL) */
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

/* Register fn under a stable name so tasks can name it (call_opts.fn_name),
 * or be passed by pointer to a forkserver or spawn pool: workers that do
 * not share the owner's address space find it by that name. Call it in
 * main() before creating pools (spawn: before mproc_spawn_main(), so
 * spawned workers register it too). Registering the same (name, fn) pair
 * again is a no-op. 0; -EINVAL (NULL, empty or too long name), -EEXIST
 * (name taken by another function), -ENOSPC (table full, 256 names).
 * Thread-safe. */
MPROC_EXPORT int mproc_pool_register(const char *name, mproc_task_fn fn);

/*
 * Create a pool and start its workers with the pool's start method (fork:
 * forked by the pool's thread; forkserver: by the fork server; spawn: an
 * exec of the program), each dying with the owner (PR_SET_PDEATHSIG, and
 * for forkserver workers the server's death chain). Returns once every
 * worker runs. opts may be NULL.
 * Returns 0; -EINVAL (NULL p, processes < 0 or > 4096, flags, bad timeout,
 * retries > 31,
 * unknown start method, initializer and initializer_name naming different
 * functions, initarg_size > 64 MiB or with NULL initarg, forkserver/spawn
 * with an initarg outside the shared heap and initarg_size 0);
 * MPROC_ENOTREG (forkserver/spawn with an initializer not registered with
 * mproc_register_target, or an unknown initializer_name); -ENOMEM;
 * -EAGAIN/-errno when workers or the pool thread cannot be started;
 * MPROC_ECHILDFAIL when a spawned worker could not start (e.g. main() does
 * not call mproc_spawn_main()).
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
 * MPROC_ENOTREG (fn_name not registered; forkserver/spawn pool with a fn
 * not registered with mproc_pool_register); MPROC_ESTATE after
 * close/terminate; -EDESTROYED.
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
 * n == 0 returns 0 at once (MPROC_ESTATE on a closed pool).
 */
MPROC_EXPORT int mproc_pool_map(mproc_pool_t *p, mproc_task_fn fn,
                                const void *in, size_t n, size_t in_size,
                                void *out, size_t out_size,
                                const mproc_call_opts *opts);
/* map_async: as map, but returns at once; `out` (and opts->errors) must stay
 * valid until the result is ready. get() then returns map's return code.
 * n == 0 gives a result that becomes ready with 0, its callback called (in
 * the pool thread) with size 0, as Python calls it with []. */
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
 * Next result, waiting up to timeout seconds. On 0 *result and *size point at
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
 * Wait up to timeout for the result. Returns 0 with *result and *size (both
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
 * call hangs). 0, -EINVAL, MPROC_EDESTROYED, MPROC_ENOTOWNER. */
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

/*
 * Managers (Python's Manager() / BaseManager): a server process hosting
 * named objects - dict, list, namespace, queue, lock, event, value - that
 * clients reach through proxies, locally over a Unix socket or from other
 * machines over TCP.
 *
 * Start one from a program with mproc_manager_start() (forks the server as a
 * daemon child; it exits when the owner exits or dies), or run one with
 * mproc_manager_serve() / the standalone `mproc-manager` tool, and connect by
 * address with mproc_manager_connect().
 *
 * Addresses: "unix:/path", "unix:@name" (abstract socket, nothing on disk),
 * "tcp:HOST:PORT" (port 0 = any free port; mproc_manager_address() tells
 * which). Every connection is authenticated by mutual HMAC-SHA256
 * challenge-response over the authkey; an authkey is mandatory over TCP.
 * The protocol is a versioned, typed, length-prefixed binary format
 * (docs/manager.md); the server never executes anything it receives.
 *
 * Proxies for dict, list and namespace are mproc_dict_t / mproc_list_t /
 * mproc_namespace_t handles used with the ordinary mproc_dict_* /
 * mproc_list_* / mproc_namespace_* calls. Queue, lock, event and value
 * proxies have the mproc_mqueue_* / mproc_mlock_* / mproc_mevent_* /
 * mproc_mvalue_* calls below. Every proxy call may also return the
 * transport's errors: MPROC_EEOF or -ECONNRESET when the server is gone (never
 * a hang), -ECONNREFUSED when it cannot be reached.
 *
 * Proxies and the manager handle are process-local: a forked child may use
 * the ones it inherited (it opens its own connections on first use). They
 * are thread-safe (each concurrent call uses its own connection). Destroy
 * proxies before the manager handle (mproc_proxy_destroy).
 */
typedef struct mproc_manager mproc_manager_t;
typedef struct mproc_mqueue mproc_mqueue_t;
typedef struct mproc_mlock mproc_mlock_t;
typedef struct mproc_mevent mproc_mevent_t;
typedef struct mproc_mvalue mproc_mvalue_t;

typedef struct mproc_manager_opts {
  const char *address;   /* where to listen (start/serve); NULL = a fresh
                            abstract Unix socket "unix:@mproc-mgr-PID-RANDOM" */
  const void *authkey;   /* NULL = 32 random bytes (start) / none (serve on
                            a Unix socket); required for TCP */
  size_t authkey_len;    /* bytes at authkey, 1..1024 */
  size_t max_message;    /* largest request or reply in bytes; 0 = 64 MiB */
  int max_connections;   /* concurrent client connections; 0 = 256 */
  int max_objects;       /* named objects; 0 = 65536 */
  double frame_timeout;  /* seconds a client may take to finish sending a
                            request (or the handshake) once started; 0 = 30 */
} mproc_manager_opts;

/* A custom server-side operation (Python's register()): gets the request
 * bytes, returns 0 and optionally a malloc()ed reply in *out / *outlen (the
 * server frees it), or a negative error code passed to the caller. Runs on
 * the server's thread for that client, concurrently with other clients:
 * must be thread-safe. */
typedef int (*mproc_manager_fn)(void *ctx, const void *in, size_t inlen, void **out,
                                size_t *outlen);

/* Register fn under name (1..255 bytes) for servers this process starts or
 * serves afterwards (forked servers inherit the table). -EINVAL, -EEXIST,
 * -ENOSPC (more than 256). Call before mproc_manager_start/serve. */
MPROC_EXPORT int mproc_manager_register(const char *name, mproc_manager_fn fn, void *ctx);

/* Fork a server (a daemon child process) listening on opts->address and
 * connect to it. *m is the owner's handle. 0; -EINVAL (bad opts, TCP
 * without authkey); -EADDRINUSE; -ENOMEM; process errors. */
MPROC_EXPORT int mproc_manager_start(mproc_manager_t **m, const mproc_manager_opts *opts);

/* Serve in the calling process until a client asks for shutdown or
 * SIGTERM/SIGINT arrives (it installs handlers for both). If ready is not
 * NULL it is called once with the bound address as soon as the server
 * listens. 0 after a clean shutdown, or an error as for start. */
MPROC_EXPORT int mproc_manager_serve(const mproc_manager_opts *opts,
                                     void (*ready)(const char *address, void *arg),
                                     void *arg);

/* Connect to a running server. timeout: seconds for connect + handshake
 * (-1 forever). 0; MPROC_EAUTH (wrong key); -ECONNREFUSED/-ENOENT (no
 * server); -ETIMEDOUT; -EINVAL. */
MPROC_EXPORT int mproc_manager_connect(mproc_manager_t **m, const char *address,
                                       const void *authkey, size_t authkey_len,
                                       double timeout);

/* The server's address (static per handle). NULL on a bad m. */
MPROC_EXPORT const char *mproc_manager_address(const mproc_manager_t *m);

/* The authkey (to hand to other programs): *key points into m. */
MPROC_EXPORT int mproc_manager_authkey(const mproc_manager_t *m, const void **key,
                                       size_t *len);

/* Round trip to the server. 0 or a transport error. */
MPROC_EXPORT int mproc_manager_ping(mproc_manager_t *m);

/* Ask the server to exit (any authenticated client may). The owner's handle
 * also waits for the server process to end. Proxies then get MPROC_EEOF. */
MPROC_EXPORT int mproc_manager_shutdown(mproc_manager_t *m);

/* Close the handle's connections and free it. If this is the owner's handle
 * (and in the owner process), shuts the server down first. NULL no-op. */
MPROC_EXPORT int mproc_manager_destroy(mproc_manager_t *m);

/* Get-or-create the named object (name 1..255 bytes) and a proxy for it.
 * -EEXIST if the name holds another kind of object; -ENOSPC at the object
 * limit; -EINVAL. The proxy is freed with the matching destroy call
 * (mproc_dict_destroy, mproc_list_destroy, mproc_namespace_destroy) or
 * mproc_proxy_destroy; that never removes the server's object. */
MPROC_EXPORT int mproc_manager_dict(mproc_manager_t *m, const char *name, mproc_dict_t **d);
MPROC_EXPORT int mproc_manager_list(mproc_manager_t *m, const char *name, mproc_list_t **l);
MPROC_EXPORT int mproc_manager_namespace(mproc_manager_t *m, const char *name,
                                         mproc_namespace_t **ns);
/* maxsize: queue capacity in items, 0 = unbounded (used on creation). */
MPROC_EXPORT int mproc_manager_queue(mproc_manager_t *m, const char *name, size_t maxsize,
                                     mproc_mqueue_t **q);
MPROC_EXPORT int mproc_manager_lock(mproc_manager_t *m, const char *name, mproc_mlock_t **l);
MPROC_EXPORT int mproc_manager_event(mproc_manager_t *m, const char *name, mproc_mevent_t **e);
MPROC_EXPORT int mproc_manager_value(mproc_manager_t *m, const char *name, mproc_mvalue_t **v);

/* Remove a named object from the server (frees it; proxies to it then get
 * -ENOENT; blocked waiters on it return -ENOENT). 0, -ENOENT. */
MPROC_EXPORT int mproc_manager_remove(mproc_manager_t *m, const char *name);

/* Call a registered custom operation with in bytes; *out = malloc()ed reply
 * (NUL-terminated, free() it; out may be NULL to drop it). Returns the
 * operation's own return code, MPROC_ENOTREG for an unknown name. */
MPROC_EXPORT int mproc_manager_call(mproc_manager_t *m, const char *name, const void *in,
                                    size_t inlen, void **out, size_t *outlen);

/* Free any proxy (dict, list, namespace, queue, lock, event, value). NULL
 * no-op; -EINVAL if p is not a proxy. */
MPROC_EXPORT int mproc_proxy_destroy(void *p);

/* Queue (FIFO of byte strings). put blocks while a bounded queue is full,
 * get while it is empty, up to timeout seconds (-1 forever, 0 poll):
 * -ETIMEDOUT (put: Python's Full; get: Empty). get: MPROC_ETOOSHORT as for
 * dicts (item kept). */
MPROC_EXPORT int mproc_mqueue_put(mproc_mqueue_t *q, const void *data, size_t len,
                                  double timeout);
MPROC_EXPORT int mproc_mqueue_get(mproc_mqueue_t *q, void *buf, size_t cap, size_t *len,
                                  double timeout);
MPROC_EXPORT int mproc_mqueue_get_alloc(mproc_mqueue_t *q, void **data, size_t *len,
                                        double timeout);
MPROC_EXPORT int mproc_mqueue_qsize(mproc_mqueue_t *q, size_t *n);

/* Lock (Python's manager Lock: any client may release it). A lock held by
 * a connection that closes or dies is released by the server.
 * acquire: 0, -ETIMEDOUT. release: 0, -EPERM when not held. */
MPROC_EXPORT int mproc_mlock_acquire(mproc_mlock_t *l, double timeout);
MPROC_EXPORT int mproc_mlock_release(mproc_mlock_t *l);

/* Event. is_set: 1/0. wait: 0 when set, -ETIMEDOUT. */
MPROC_EXPORT int mproc_mevent_set(mproc_mevent_t *e);
MPROC_EXPORT int mproc_mevent_clear(mproc_mevent_t *e);
MPROC_EXPORT int mproc_mevent_is_set(mproc_mevent_t *e);
MPROC_EXPORT int mproc_mevent_wait(mproc_mevent_t *e, double timeout);

/* Value: one byte string (initially empty), with int64/double helpers
 * (8 bytes, host order). get: MPROC_ETOOSHORT rule; get_int/get_double:
 * -EINVAL if the value is not 8 bytes. */
MPROC_EXPORT int mproc_mvalue_set(mproc_mvalue_t *v, const void *data, size_t len);
MPROC_EXPORT int mproc_mvalue_get(mproc_mvalue_t *v, void *buf, size_t cap, size_t *len);
MPROC_EXPORT int mproc_mvalue_set_int(mproc_mvalue_t *v, int64_t x);
MPROC_EXPORT int mproc_mvalue_get_int(mproc_mvalue_t *v, int64_t *x);
MPROC_EXPORT int mproc_mvalue_set_double(mproc_mvalue_t *v, double x);
MPROC_EXPORT int mproc_mvalue_get_double(mproc_mvalue_t *v, double *x);

/* @@END manager @@ */

#ifdef __cplusplus
}
#endif
#endif /* MPROC_H */
