/*
 * imap.c - lazy, bounded imap and imap_unordered iterators.
 *
 * Inputs come from a generator callback, called in the consumer's thread
 * only while fewer than max_inflight tasks are submitted and not yet
 * consumed, so an unbounded input stream runs in bounded memory. Each chunk
 * of inputs becomes one job (copied into the heap). Ordered iteration waits
 * on the oldest job; unordered iteration takes whichever job of the window
 * completed first, sleeping on the pool-wide imap signal word.
 *
 * A result pointer stays valid until the next call: the job it lives in is
 * released at the start of the following call.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "heap/heap.h"
#include "platform/platform.h"
#include "pool/pool_internal.h"

struct mproc_imap {
  uint64_t heap_scratch[2]; /* see struct mproc_pool */
  uint32_t magic;
  mproc_pool_t *pool;        /* NULL once the pool is destroyed */
  mproc_task_fn fn;
  char name[MPROC_POOL_NAME_MAX + 1];
  mproc_gen_fn gen;
  void *gen_user;
  size_t out_size;
  unsigned flags;
  size_t chunksize;
  size_t max_inflight;
  mproc_call_opts opts;      /* timeout/retries for the jobs */
  pjob **win;                /* submitted jobs, oldest first */
  size_t wn, wcap;
  size_t inflight;           /* tasks submitted and not consumed */
  uint64_t next_index;       /* input index of the next generated item */
  int gen_done;
  int gen_err;               /* generator's error, returned once */
  pjob *cur;                 /* job being consumed */
  uint64_t cur_i;
  pjob *to_release;          /* consumed; released on the next call */
  mproc_task_error last_err;
  struct mproc_imap *next, *prev;
};

static int it_check(const struct mproc_imap *it) {
  if (!it || !mproc__heap_contains(it)) return -EINVAL;
  if (it->magic == MPROC__DEAD_MAGIC) return MPROC_EDESTROYED;
  if (it->magic != IMAP_MAGIC) return -EINVAL;
  if (it->pool && it->pool->owner != getpid()) return MPROC_ENOTOWNER;
  return 0;
}

static void release(struct mproc_imap *it, pjob *j) {
  mproc_pool_t *p = it->pool;
  if (!p) return;
  pthread_mutex_lock(&p->mu);
  mproc__pool_job_release_locked(p, j);
  pthread_mutex_unlock(&p->mu);
}

/* Generate and submit one chunk. 1 if a job was submitted, 0 if the
 * generator is done, or a negative error. */
static int submit_chunk(struct mproc_imap *it) {
  size_t k = 0, cap = it->chunksize;
  mproc_buf *items = calloc(cap, sizeof *items);
  if (!items) return -ENOMEM;
  int rc = 0;
  while (k < cap) {
    const void *item = NULL;
    size_t size = 0;
    rc = it->gen(it->gen_user, &item, &size);
    if (rc <= 0 || (size && !item)) {
      if (rc > 0) rc = -EINVAL;
      it->gen_done = 1;
      if (rc < 0) it->gen_err = rc;
      break;
    }
    items[k].size = size;
    items[k].data = NULL;
    if (size) {
      /* Copy now: the generator may reuse its buffer. */
      items[k].data = malloc(size);
      if (!items[k].data) {
        rc = -ENOMEM;
        it->gen_done = 1;
        it->gen_err = rc;
        break;
      }
      memcpy(items[k].data, item, size);
    }
    k++;
  }
  int out = 0;
  if (k) {
    uint64_t in_bytes = k * sizeof(pvin);
    for (size_t i = 0; i < k; i++) in_bytes += MPROC_ALIGN_UP(items[i].size, 16);
    uint32_t flags = JF_VIN | (it->out_size ? 0 : JF_VOUT) |
                     ((it->flags & MPROC_IMAP_UNORDERED) ? JF_POOLSIG : 0);
    uint64_t out_bytes = it->out_size ? k * it->out_size : k * sizeof(pvout);
    pjob *j;
    out = mproc__pool_job_new(it->pool, it->fn, it->name[0] ? it->name : NULL, k,
                              (uint32_t)k, 0, in_bytes, it->out_size,
                              out_bytes, flags, &j);
    if (out == 0) {
      pvin *vi = (pvin *)(void *)j->in;
      uint8_t *blob = (uint8_t *)j->in + k * sizeof(pvin);
      for (size_t i = 0; i < k; i++) {
        vi[i].len = items[i].size;
        vi[i].p = items[i].size ? blob : NULL;
        if (items[i].size) memcpy(blob, items[i].data, items[i].size);
        blob += MPROC_ALIGN_UP(items[i].size, 16);
      }
      j->in_size = 0;
      mproc__pool_call_params(it->pool, &it->opts, &j->timeout, &j->retries);
      j->base = it->next_index;
      out = mproc__pool_submit(it->pool, j);
      if (out) {
        mproc__pool_job_free(j);
      } else {
        it->next_index += k;
        it->inflight += k;
        it->win[it->wn++] = j;
        out = 1;
      }
    }
    if (out < 0) {
      it->gen_done = 1;
      it->gen_err = out;
    }
  }
  for (size_t i = 0; i < k; i++) free(items[i].data);
  free(items);
  return out < 0 ? out : (k ? 1 : 0);
}

static void refill(struct mproc_imap *it) {
  while (!it->gen_done && it->wn < it->wcap &&
         (it->inflight == 0 || it->inflight + it->chunksize <= it->max_inflight))
    if (submit_chunk(it) <= 0) break;
}

int mproc_pool_imap(mproc_pool_t *p, mproc_task_fn fn, mproc_gen_fn gen,
                    void *gen_user, size_t out_size, const mproc_call_opts *o,
                    mproc_imap_t **itp) {
  if (!itp) return -EINVAL;
  *itp = NULL;
  int rc = mproc__pool_check(p);
  if (rc) return rc;
  if (!gen) return -EINVAL;
  if (o && (!(o->timeout == -1 || (o->timeout >= 0 && o->timeout < 1e9)) ||
            o->retries < -1 || o->retries > 31 || (o->flags & ~MPROC_IMAP_UNORDERED)))
    return -EINVAL;
  const char *name = o ? o->fn_name : NULL;
  if ((rc = mproc__pool_resolve(p, &fn, &name))) return rc;
  pthread_mutex_lock(&p->mu);
  int running = p->state == PS_RUNNING;
  pthread_mutex_unlock(&p->mu);
  if (!running) return MPROC_ESTATE;
  void *mem;
  rc = mproc__heap_alloc(sizeof(struct mproc_imap), &mem);
  if (rc) return rc;
  struct mproc_imap *it = mem;
  it->magic = IMAP_MAGIC;
  it->pool = p;
  it->fn = fn;
  if (name) strcpy(it->name, name);
  it->gen = gen;
  it->gen_user = gen_user;
  it->out_size = out_size;
  it->flags = o ? o->flags : 0;
  it->chunksize = o && o->chunksize ? o->chunksize : 1;
  if (it->chunksize > 1u << 20) it->chunksize = 1u << 20;
  it->max_inflight = o && o->max_inflight ? o->max_inflight
                                          : 4 * (size_t)p->nworkers * it->chunksize;
  if (it->max_inflight < it->chunksize) it->max_inflight = it->chunksize;
  if (o) it->opts = *o;
  it->wcap = (it->max_inflight + it->chunksize - 1) / it->chunksize;
  if (it->wcap > POOL_JOB_RING / 2) it->wcap = POOL_JOB_RING / 2;
  it->win = calloc(it->wcap, sizeof(pjob *));
  if (!it->win) {
    it->magic = MPROC__DEAD_MAGIC;
    mproc__heap_free(it);
    return -ENOMEM;
  }
  pthread_mutex_lock(&p->mu);
  it->next = p->imaps;
  if (p->imaps) p->imaps->prev = it;
  p->imaps = it;
  pthread_mutex_unlock(&p->mu);
  refill(it);
  *itp = it;
  return 0;
}

static void win_remove(struct mproc_imap *it, pjob *j) {
  for (size_t i = 0; i < it->wn; i++)
    if (it->win[i] == j) {
      memmove(&it->win[i], &it->win[i + 1], (it->wn - i - 1) * sizeof(pjob *));
      it->wn--;
      return;
    }
}

int mproc_imap_next(mproc_imap_t *it, double timeout, const void **result,
                    size_t *size, size_t *index) {
  int rc = it_check(it);
  if (rc) return rc;
  if (!mproc__timeout_ok(timeout)) return -EINVAL;
  if (!it->pool) return MPROC_EDESTROYED;
  mproc_pool_t *p = it->pool;
  if (it->to_release) {
    release(it, it->to_release);
    it->to_release = NULL;
  }
  refill(it);
  struct timespec dl;
  struct timespec *d = mproc__deadline(timeout, &dl);
  for (;;) {
    if (it->cur) {
      pjob *j = it->cur;
      uint64_t i = it->cur_i++;
      it->inflight--;
      if (it->cur_i >= j->n) {
        win_remove(it, j);
        it->cur = NULL;
        it->to_release = j;
      }
      if (index) *index = (size_t)(j->base + i);
      int code = j->errs[i];
      if (code) {
        memset(&it->last_err, 0, sizeof it->last_err);
        mproc__pool_job_error(j, &it->last_err);
        if (it->last_err.index != i) {
          it->last_err.code = code;
          it->last_err.signo = 0;
          it->last_err.exit_status = -1;
          it->last_err.peak_rss_kb = 0;
          snprintf(it->last_err.message, sizeof it->last_err.message, "%s",
                   mproc_strerror(code));
        }
        it->last_err.index = (size_t)(j->base + i);
        return code;
      }
      const void *r;
      size_t len;
      if (j->flags & JF_VOUT) {
        pvout *vo = &((pvout *)(void *)j->out)[i];
        r = vo->p ? vo->p : vo->inl;
        len = vo->len;
      } else {
        r = j->out + i * j->out_size;
        len = j->out_size;
      }
      if (result) *result = r;
      if (size) *size = len;
      return 0;
    }
    if (it->wn == 0) {
      if (it->gen_err) {
        int e = it->gen_err;
        it->gen_err = 0;
        memset(&it->last_err, 0, sizeof it->last_err);
        it->last_err.code = e;
        it->last_err.exit_status = -1;
        snprintf(it->last_err.message, sizeof it->last_err.message,
                 "input generator failed: %s", mproc_strerror(e));
        return e;
      }
      return MPROC_ESTOPITER;
    }
    if (!(it->flags & MPROC_IMAP_UNORDERED)) {
      rc = mproc__pool_job_wait(p, it->win[0], d);
      if (rc) return rc;
      it->cur = it->win[0];
      it->cur_i = 0;
      continue;
    }
    for (;;) {
      uint32_t seen = atomic_load(&p->sh->isig.seq);
      for (size_t k = 0; k < it->wn; k++)
        if (mproc__pool_job_complete(it->win[k])) {
          it->cur = it->win[k];
          it->cur_i = 0;
          break;
        }
      if (it->cur) break;
      if (mproc__deadline_passed(d)) return -ETIMEDOUT;
      mproc__pool_sig_wait(&p->sh->isig, seen, d);
    }
  }
}

int mproc_imap_error(mproc_imap_t *it, mproc_task_error *err) {
  int rc = it_check(it);
  if (rc) return rc;
  if (!err) return -EINVAL;
  *err = it->last_err;
  return 0;
}

int mproc_imap_destroy(mproc_imap_t *it) {
  if (!it) return 0;
  int rc = it_check(it);
  if (rc) return rc;
  mproc_pool_t *p = it->pool;
  if (p) {
    pthread_mutex_lock(&p->mu);
    for (size_t k = 0; k < it->wn; k++) mproc__pool_job_cancel(p, it->win[k], -ECANCELED);
    p->recheck = 1;
    pthread_mutex_unlock(&p->mu);
    mproc__pool_kick(p->sh);
    for (size_t k = 0; k < it->wn; k++) {
      mproc__pool_job_wait(p, it->win[k], NULL);
      release(it, it->win[k]);
    }
    if (it->to_release) release(it, it->to_release);
    pthread_mutex_lock(&p->mu);
    if (it->prev) it->prev->next = it->next;
    else if (p->imaps == it) p->imaps = it->next;
    if (it->next) it->next->prev = it->prev;
    pthread_mutex_unlock(&p->mu);
  }
  free(it->win);
  it->magic = MPROC__DEAD_MAGIC;
  mproc__heap_free(it);
  return 0;
}

void mproc__pool_imaps_orphan(mproc_pool_t *p) {
  for (struct mproc_imap *it = p->imaps; it; it = it->next) {
    for (size_t k = 0; k < it->wn; k++)
      if (--it->win[k]->refs == 0) mproc__pool_job_free(it->win[k]);
    if (it->to_release && --it->to_release->refs == 0) mproc__pool_job_free(it->to_release);
    it->to_release = NULL;
    it->wn = 0;
    it->cur = NULL;
    it->pool = NULL;
  }
  p->imaps = NULL;
}
