/*
 * heap.h - the family's shared heap (internal interface).
 *
 * One memfd mapped MAP_SHARED at the same address in every process of the
 * family. Forked children inherit the mapping; spawned children re-attach it
 * at the same address from the fd they inherit (mproc__heap_attach).
 *
 * The first MPROC__HEAP_ROOT_SIZE bytes after the heap header are the "root":
 * fixed slots where layers keep family-wide state (process counters, the
 * forkserver's address, ...). Each layer owns a slot (see heap_root below).
 */
#ifndef MPROC_HEAP_H
#define MPROC_HEAP_H

#include <stddef.h>
#include <stdint.h>

#define MPROC__HEAP_DEFAULT_SIZE ((size_t)1 << 30)
#define MPROC__HEAP_MIN_SIZE ((size_t)1 << 20)
#define MPROC__HEAP_MAX_SIZE ((size_t)1 << 40)
#define MPROC__HEAP_ROOT_SLOT 512 /* bytes per layer slot */

/* Layer slots in the heap root. Each layer casts its slot to its own struct
 * (checked by STATIC_ASSERT against MPROC__HEAP_ROOT_SLOT). */
enum mproc__root_slot {
  MPROC__ROOT_PROCESS = 0,
  MPROC__ROOT_SYNC = 1,
  MPROC__ROOT_IPC = 2,
  MPROC__ROOT_POOL = 3,
  MPROC__ROOT_SHARED = 4,
  MPROC__ROOT_MANAGER = 5,
  MPROC__ROOT_NSLOTS = 8
};

/* Create the heap (size bytes of address space, sparse). 0 or -errno. */
int mproc__heap_init(size_t size);
/* Attach to an existing heap fd at base (spawned children). */
int mproc__heap_attach(int fd, void *base, size_t size);
int mproc__heap_alloc(size_t size, void **out);
/* mproc__heap_alloc with flags:
 *  MPROC__HEAP_UNINIT: the block's contents are unspecified (old data of
 *    the family's own freed blocks, or zero), for a caller that overwrites
 *    all of it at once: reusing cached memory then costs no memset (a 4 MiB
 *    copy into a reused block runs at memcpy speed, ~2x faster).
 *  MPROC__HEAP_POPULATE: pre-fault the block's fresh pages with one
 *    madvise(MADV_POPULATE_WRITE) (Linux >= 5.14, else ignored), about 2x
 *    cheaper than a fault per page, for a caller that will touch every page.
 * Same returns as mproc__heap_alloc; -EINVAL on unknown flags. */
#define MPROC__HEAP_UNINIT 1u
#define MPROC__HEAP_POPULATE 2u
int mproc__heap_alloc_ex(size_t size, unsigned flags, void **out);
int mproc__heap_free(void *p);
/* Free the blocks that threads killed inside mproc__heap_alloc/free left in
 * flight (see docs/heap.md, "Leak on kill"). The heap does this by itself
 * (a new thread reuses a dead one's record, the checker, mproc_heap_trim,
 * and before -ENOMEM); layers that reap dead children (process, pool) may
 * call it to give the memory back at once. Returns the blocks freed. */
size_t mproc__heap_reap(void);
int mproc__heap_contains(const void *p);
/* Usable size of a live block (>= the size asked for), 0 if not a block. */
size_t mproc__heap_block_size(const void *p);
/* Bytes of freed large spans the heap keeps resident for reuse at most
 * ($MPROC_HEAP_CACHE; see docs/heap.md). */
size_t mproc__heap_cache_max(void);
int mproc__heap_fd(void);
void *mproc__heap_base(void);
size_t mproc__heap_size(void);
/* The layer's root slot (zeroed at heap creation). */
void *mproc__heap_root(enum mproc__root_slot slot);

/* Consistency checker for tests: locks the whole heap (repairing journals
 * left by dead processes), walks every piece of metadata and returns 0, or
 * MPROC_EPROTO with a description in mproc__heap_check_msg(). Slabs leaked
 * by a process killed between the page heap and a size class ("orphans",
 * no live block in them) are tolerated and counted in mproc__heap_orphans(). */
int mproc__heap_check(void);
const char *mproc__heap_check_msg(void);
size_t mproc__heap_orphans(void);
/* Tests: SIGKILL the calling process at the n-th crash point inside the
 * heap's critical sections from now on (0 = off). Process-local. */
void mproc__heap_crash_after(int n);

#endif
