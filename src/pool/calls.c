/*
 * calls.c - apply, apply_async, map, map_async, starmap(_async) and the
 * AsyncResult handle.
 *
 * Each call builds one job (dispatch.c). Inputs already in the shared heap
 * are used by reference; others are copied once into the job. Fixed-size
 * results are written by the workers straight into the caller's array when
 * it lies in the heap, else into the job and copied once at the end.
 *
 * Sync calls wait on the job itself (spin, then futex): the fast path of an
 * apply round trip involves no other thread. Async calls complete when the
 * pool thread delivered them (after callbacks), like Python's.
 *
 * AsyncResult handles live in the shared heap so that a use after destroy
 * reads a dead magic number; only the owner process may use them.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "heap/heap.h"
#include "platform/platform.h"
#include "pool/pool_internal.h"


static int opts_ok(const mproc_call_opts *o) {
  if (!o) return 1;
  if (!(o->timeout == -1 || (o->timeout >= 0 && o->timeout < 1e9))) return 0;
  if (o->retries < -1 || o->retries > 31) return 0;
  if (o->flags & ~MPROC_IMAP_UNORDERED) return 0;
  return 1;
}

/* Build a job for n inputs; see mproc_pool_map for the layouts.
 * Copies: inputs already in the heap are referenced; private ones are
 * copied once, into the job or - for large calls - into the pool's staging
 * block (stage.c: resident pages, no zeroing), where fixed-size results
 * bound for private memory go too. Nothing is copied twice. */
static int build(mproc_pool_t *p, mproc_task_fn fn, const char *name,
                 const void *in, size_t n, size_t in_size, void *out,
                 size_t out_size, size_t chunksize, const mproc_call_opts *o,
                 uint32_t flags, pjob **jp) {
  uint64_t in_meta = 0, in_copy = 0, out_bytes = 0;
  int in_ref = 0, out_ref = 0;
  if (in_size) {
    if (n > UINT64_MAX / in_size) return -EINVAL;
    in_ref = mproc__heap_contains(in);
    if (!in_ref) in_copy = n * in_size;
  } else {
    flags |= JF_VIN;
    const mproc_buf *b = in;
    in_meta = n * sizeof(pvin);
    for (size_t i = 0; i < n; i++) {
      if (b[i].size && !b[i].data) return -EINVAL;
      if (b[i].size && !mproc__heap_contains(b[i].data))
        in_copy += MPROC_ALIGN_UP(b[i].size, 16);
    }
  }
  if (out_size) {
    if (n > UINT64_MAX / out_size) return -EINVAL;
    out_ref = out && mproc__heap_contains(out);
    if (!out_ref) out_bytes = n * out_size;
  } else {
    flags |= JF_VOUT;
    out_bytes = n * sizeof(pvout);
  }
  /* Stage the copied inputs, and fixed results (variable ones are records
   * that must start zeroed: they stay in the job). */
  uint64_t stage_out = out_size ? out_bytes : 0;
  uint64_t in_al = MPROC_ALIGN_UP(in_copy, 64);
  uint8_t *stage = NULL;
  if (in_copy + stage_out >= POOL_STAGE_MIN && in_al + stage_out <= SIZE_MAX)
    stage = mproc__pool_stage_get(p, (size_t)(in_al + stage_out));
  if (chunksize > UINT32_MAX) chunksize = UINT32_MAX;
  pjob *j;
  int rc = mproc__pool_job_new(p, fn, name, n, (uint32_t)chunksize, in_size,
                               in_meta + (stage ? 0 : in_copy), out_size,
                               stage ? out_bytes - stage_out : out_bytes, flags, &j);
  if (rc) {
    if (stage) mproc__pool_stage_put(p, stage);
    return rc;
  }
  if (stage) {
    j->stage = stage;
    if (stage_out) {
      j->out = stage + in_al;
      memset(j->out, 0, stage_out); /* a failed task's slot reads 0 */
    }
  }
  /* Where private input bytes go. */
  uint8_t *blob = stage ? stage : (uint8_t *)j->in + in_meta;
  if (in_size) {
    if (in_ref) j->in = in;
    else if (in_copy) {
      memcpy(blob, in, in_copy);
      j->in = blob;
    }
  } else {
    const mproc_buf *b = in;
    pvin *vi = (pvin *)(void *)j->in;
    for (size_t i = 0; i < n; i++) {
      vi[i].len = b[i].size;
      if (!b[i].size) {
        vi[i].p = NULL;
      } else if (mproc__heap_contains(b[i].data)) {
        vi[i].p = b[i].data; /* by reference: zero copy */
      } else {
        memcpy(blob, b[i].data, b[i].size);
        vi[i].p = blob;
        blob += MPROC_ALIGN_UP(b[i].size, 16);
      }
    }
  }
  if (out_ref) j->out = out;
  mproc__pool_call_params(p, o, &j->timeout, &j->retries);
  *jp = j;
  return 0;
}

/* Submit and wait for a sync job; copies results out. */
static int run_sync(mproc_pool_t *p, pjob *j, void *user_out, int *user_errs,
                    mproc_task_error *err) {
  int rc = mproc__pool_submit(p, j);
  if (rc) {
    mproc__pool_job_free(j);
    return rc;
  }
  mproc__pool_job_wait(p, j, NULL);
  mproc__pool_job_copyout(j, user_out, user_errs);
  mproc__pool_job_unstage(j);
  rc = j->err_set ? j->err_code : 0;
  if (err) mproc__pool_job_error(j, err);
  mproc__pool_job_finish_sync(p, j);
  return rc;
}

/* ---- apply ---- */

static int apply_build(mproc_pool_t *p, mproc_task_fn fn, const void *in,
                       size_t in_size, const mproc_call_opts *o, uint32_t flags,
                       pjob **jp) {
  int rc = mproc__pool_check(p);
  if (rc) return rc;
  if ((in_size && !in) || !opts_ok(o)) return -EINVAL;
  const char *name = o ? o->fn_name : NULL;
  if ((rc = mproc__pool_resolve(p, &fn, &name))) return rc;
  mproc_buf b = {(void *)(uintptr_t)in, in_size};
  return build(p, fn, name, &b, 1, 0, NULL, 0, 1, o, flags, jp);
}

int mproc_pool_apply(mproc_pool_t *p, mproc_task_fn fn, const void *in,
                     size_t in_size, void *out, size_t out_cap, size_t *out_size,
                     const mproc_call_opts *opts) {
  if (out_cap && !out) return -EINVAL;
  pjob *j;
  int rc = apply_build(p, fn, in, in_size, opts, JF_SYNC, &j);
  if (rc) return rc;
  rc = mproc__pool_submit(p, j);
  if (rc) {
    mproc__pool_job_free(j);
    return rc;
  }
  mproc__pool_job_wait(p, j, NULL);
  mproc__pool_job_unstage(j); /* the result is not in the staging block */
  if (j->err_set) {
    rc = j->err_code;
  } else {
    pvout *vo = (pvout *)(void *)j->out;
    if (out_size) *out_size = vo->len;
    if (vo->len > out_cap) rc = MPROC_ETOOSHORT;
    else if (vo->len) memcpy(out, vo->p ? vo->p : vo->inl, vo->len);
  }
  if (opts && opts->error) mproc__pool_job_error(j, opts->error);
  mproc__pool_job_finish_sync(p, j);
  return rc;
}

static int async_new(mproc_pool_t *p, pjob *j, int kind, const mproc_call_opts *o,
                     void *user_out, mproc_async_t **arp) {
  void *mem;
  int rc = mproc__heap_alloc(sizeof(struct mproc_async), &mem);
  if (rc) return rc;
  struct mproc_async *ar = mem;
  ar->magic = ASYNC_MAGIC;
  ar->pool = p;
  ar->job = j;
  j->ar = ar;
  j->is_async = kind;
  j->user_out = user_out;
  j->user_errs = o ? o->errors : NULL;
  j->cb = o ? o->callback : NULL;
  j->ecb = o ? o->error_callback : NULL;
  j->cb_user = o ? o->user : NULL;
  pthread_mutex_lock(&p->mu);
  ar->next = p->asyncs;
  if (p->asyncs) p->asyncs->prev = ar;
  p->asyncs = ar;
  pthread_mutex_unlock(&p->mu);
  rc = mproc__pool_submit(p, j);
  if (rc) {
    pthread_mutex_lock(&p->mu);
    if (ar->prev) ar->prev->next = ar->next;
    else p->asyncs = ar->next;
    if (ar->next) ar->next->prev = ar->prev;
    pthread_mutex_unlock(&p->mu);
    ar->magic = MPROC__DEAD_MAGIC;
    mproc__heap_free(ar);
    mproc__pool_job_free(j);
    return rc;
  }
  *arp = ar;
  return 0;
}

int mproc_pool_apply_async(mproc_pool_t *p, mproc_task_fn fn, const void *in,
                           size_t in_size, const mproc_call_opts *opts,
                           mproc_async_t **ar) {
  if (!ar) return -EINVAL;
  *ar = NULL;
  pjob *j;
  int rc = apply_build(p, fn, in, in_size, opts, 0, &j);
  if (rc) return rc;
  return async_new(p, j, 1, opts, NULL, ar);
}

/* ---- map ---- */

static int map_build(mproc_pool_t *p, mproc_task_fn fn, const void *in, size_t n,
                     size_t in_size, void *out, size_t out_size,
                     const mproc_call_opts *o, uint32_t flags, pjob **jp) {
  int rc = mproc__pool_check(p);
  if (rc) return rc;
  if (!opts_ok(o) || (n && (!in || !out))) return -EINVAL;
  const char *name = o ? o->fn_name : NULL;
  if ((rc = mproc__pool_resolve(p, &fn, &name))) return rc;
  if (n == 0 && (flags & JF_SYNC)) return 1; /* map of nothing: done */
  size_t cs = o && o->chunksize ? o->chunksize : mproc__pool_chunksize(n, p->nworkers);
  return build(p, fn, name, in, n, in_size, out, out_size, cs, o, flags, jp);
}

int mproc_pool_map(mproc_pool_t *p, mproc_task_fn fn, const void *in, size_t n,
                   size_t in_size, void *out, size_t out_size,
                   const mproc_call_opts *opts) {
  pjob *j;
  int rc = map_build(p, fn, in, n, in_size, out, out_size, opts, JF_SYNC, &j);
  if (rc == 1) {
    /* Nothing to run, but a closed pool still refuses (Python's ValueError) */
    pthread_mutex_lock(&p->mu);
    rc = p->state == PS_RUNNING ? 0 : MPROC_ESTATE;
    pthread_mutex_unlock(&p->mu);
    return rc;
  }
  if (rc) return rc;
  return run_sync(p, j, out, opts ? opts->errors : NULL, opts ? opts->error : NULL);
}

int mproc_pool_map_async(mproc_pool_t *p, mproc_task_fn fn, const void *in,
                         size_t n, size_t in_size, void *out, size_t out_size,
                         const mproc_call_opts *opts, mproc_async_t **ar) {
  if (!ar) return -EINVAL;
  *ar = NULL;
  pjob *j;
  int rc = map_build(p, fn, in, n, in_size, out, out_size, opts, 0, &j);
  if (rc) return rc;
  return async_new(p, j, 2, opts, out, ar);
}

int mproc_pool_starmap(mproc_pool_t *p, mproc_task_fn fn, const void *in,
                       size_t n, size_t in_size, void *out, size_t out_size,
                       const mproc_call_opts *opts) {
  return mproc_pool_map(p, fn, in, n, in_size, out, out_size, opts);
}

int mproc_pool_starmap_async(mproc_pool_t *p, mproc_task_fn fn, const void *in,
                             size_t n, size_t in_size, void *out, size_t out_size,
                             const mproc_call_opts *opts, mproc_async_t **ar) {
  return mproc_pool_map_async(p, fn, in, n, in_size, out, out_size, opts, ar);
}

/* ---- AsyncResult ---- */

static int ar_check(const struct mproc_async *ar) {
  if (!ar || !mproc__heap_contains(ar)) return -EINVAL;
  if (ar->magic == MPROC__DEAD_MAGIC) return MPROC_EDESTROYED;
  if (ar->magic != ASYNC_MAGIC) return -EINVAL;
  if (ar->pool && ar->pool->owner != getpid()) return MPROC_ENOTOWNER;
  return 0;
}

int mproc_async_ready(mproc_async_t *ar) {
  int rc = ar_check(ar);
  if (rc) return rc;
  if (!ar->pool) return 1;
  pthread_mutex_lock(&ar->pool->mu);
  int d = ar->done;
  pthread_mutex_unlock(&ar->pool->mu);
  return d;
}

int mproc_async_wait(mproc_async_t *ar, double timeout) {
  int rc = ar_check(ar);
  if (rc) return rc;
  if (!mproc__timeout_ok(timeout)) return -EINVAL;
  mproc_pool_t *p = ar->pool;
  if (!p) return 0;
  struct timespec dl;
  struct timespec *d = mproc__deadline(timeout, &dl);
  pthread_mutex_lock(&p->mu);
  while (!ar->done) {
    if (d) {
      if (pthread_cond_timedwait(&p->cv, &p->mu, d) == ETIMEDOUT && !ar->done) {
        pthread_mutex_unlock(&p->mu);
        return -ETIMEDOUT;
      }
    } else {
      pthread_cond_wait(&p->cv, &p->mu);
    }
  }
  pthread_mutex_unlock(&p->mu);
  return 0;
}

int mproc_async_successful(mproc_async_t *ar) {
  int rc = mproc_async_ready(ar);
  if (rc < 0) return rc;
  if (!rc) return MPROC_ESTATE;
  return ar->rc == 0;
}

int mproc_async_get(mproc_async_t *ar, double timeout, const void **result,
                    size_t *size) {
  int rc = mproc_async_wait(ar, timeout);
  if (rc) return rc;
  if (ar->rc) return ar->rc;
  if (ar->res || !ar->map_out) {
    if (result) *result = ar->res;
    if (size) *size = ar->res_len;
  } else {
    if (result) *result = ar->map_out;
    if (size) *size = ar->map_len;
  }
  return 0;
}

int mproc_async_error(mproc_async_t *ar, mproc_task_error *err) {
  if (!err) return -EINVAL;
  int rc = mproc_async_ready(ar);
  if (rc < 0) return rc;
  if (!rc || ar->rc == 0) return MPROC_ESTATE;
  *err = ar->err;
  return 0;
}

int mproc_async_cancel(mproc_async_t *ar) {
  int rc = ar_check(ar);
  if (rc) return rc;
  mproc_pool_t *p = ar->pool;
  if (!p) return 0;
  pthread_mutex_lock(&p->mu);
  uint64_t n = 0;
  if (ar->job && !ar->done) {
    n = mproc__pool_job_cancel(p, ar->job, -ECANCELED);
    p->recheck = 1;
  }
  pthread_mutex_unlock(&p->mu);
  mproc__pool_kick(p->sh);
  return n > INT32_MAX ? INT32_MAX : (int)n;
}

int mproc_async_destroy(mproc_async_t *ar) {
  if (!ar) return 0;
  int rc = ar_check(ar);
  if (rc) return rc;
  mproc_pool_t *p = ar->pool;
  if (p) {
    pthread_mutex_lock(&p->mu);
    if (ar->prev) ar->prev->next = ar->next;
    else if (p->asyncs == ar) p->asyncs = ar->next;
    if (ar->next) ar->next->prev = ar->prev;
    if (ar->job) {
      ar->job->ar = NULL;
      mproc__pool_job_release_locked(p, ar->job);
      ar->job = NULL;
    }
    pthread_mutex_unlock(&p->mu);
  }
  if (ar->res_heap) mproc__heap_free(ar->res);
  else free(ar->res);
  ar->magic = MPROC__DEAD_MAGIC;
  mproc__heap_free(ar);
  return 0;
}

int mproc_buf_free(mproc_buf *b) {
  if (!b || !b->data) return 0;
  int rc = mproc__heap_free(b->data);
  b->data = NULL;
  b->size = 0;
  return rc;
}
