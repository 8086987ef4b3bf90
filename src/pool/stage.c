/*
 * stage.c - the pool's staging block: where large inputs from private
 * memory (and fixed-size results bound for private memory) are placed.
 *
 * Why: a task sees only the shared heap, so private inputs are copied into
 * it once (unavoidable). What made that copy slow was not the copy but the
 * memory it lands in: a large heap block is fresh pages every time (the
 * heap gives large spans back to the OS on free, and zeroes what it hands
 * out), so a 256 MiB map paid ~65,000 page faults plus the zeroing before
 * the first byte was copied - 3 to 4 times the cost of the copy itself.
 * The pool keeps the last large staging block instead of freeing it and
 * reuses it for the next large call: its pages are resident, nothing needs
 * zeroing (inputs overwrite it; the result part is cleared explicitly).
 *
 * Bounds: only calls staging >= POOL_STAGE_MIN bytes use it, a block is
 * never larger than half the heap, the pool keeps at most one, and
 * the pool thread frees it after POOL_STAGE_IDLE_NS without use (one timed
 * wake-up, then the idle pool sleeps without a timeout again). Destroy
 * frees it.
 *
 * Concurrency: the one cached block is an atomic pointer (exchange to take
 * or give back), so any thread of the owner may stage or free a job.
 */
#include <errno.h>
#include <string.h>

#include "heap/heap.h"
#include "pool/pool_internal.h"

void *mproc__pool_stage_get(mproc_pool_t *p, size_t size) {
  if (size < POOL_STAGE_MIN || size > mproc__heap_size() / 2) return NULL;
  void *b = atomic_exchange(&p->stage, NULL);
  if (b && mproc__heap_block_size(b) >= size) return b;
  if (b) mproc__heap_free(b); /* too small: make room for a bigger one */
  if (mproc__heap_alloc(size, &b)) return NULL; /* the caller copies into the job */
  return b;
}

void mproc__pool_stage_put(mproc_pool_t *p, void *b) {
  atomic_store(&p->stage_ns, mproc__pool_now_ns());
  void *old = atomic_exchange(&p->stage, b);
  if (old) mproc__heap_free(old); /* keep the most recent one only */
  else mproc__pool_kick(p->sh);   /* the pool thread arms the idle timer */
}

int mproc__pool_stage_idle(mproc_pool_t *p) {
  if (!atomic_load(&p->stage)) return -1;
  uint64_t now = mproc__pool_now_ns(), t = atomic_load(&p->stage_ns);
  if (now - t < POOL_STAGE_IDLE_NS) return (int)((POOL_STAGE_IDLE_NS - (now - t)) / 1000000) + 1;
  void *b = atomic_exchange(&p->stage, NULL);
  if (b) mproc__heap_free(b);
  return -1;
}

void mproc__pool_job_unstage(pjob *j) {
  /* Complete: every chunk is terminal, so no worker reads its inputs or
   * writes its results any more (a worker still holding the job as its
   * hazard reads only the header); the results were copied out. The next
   * large call can have the block at once instead of when the job is
   * freed (after the workers dropped their hazards). */
  void *b = j->stage;
  if (!b) return;
  j->stage = NULL;
  j->in = NULL;
  if (!(j->flags & JF_VOUT)) j->out = NULL;
  mproc__pool_stage_put(j->pool, b);
}

void mproc__pool_stage_drop(mproc_pool_t *p) {
  void *b = atomic_exchange(&p->stage, NULL);
  if (b) mproc__heap_free(b);
}
