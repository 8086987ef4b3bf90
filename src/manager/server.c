/*
 * server.c - the manager server: named objects, request dispatch, clients.
 *
 * DESIGN
 * One acceptor loop (the serving thread) and one thread per client
 * connection. A client thread authenticates its connection, then loops:
 * read a frame, decode it (wire.c: the only parser of untrusted bytes),
 * dispatch, send the reply. So a client that stalls or dies only ever
 * blocks its own thread: a half-sent frame is dropped after frame_timeout,
 * a dead peer gives EOF, and nothing another client does waits on it.
 *
 * Objects live in a table indexed by handle = (generation << 32) | slot; a
 * removed object's slot gets a new generation so stale proxies get -ENOENT.
 * Dict, list, namespace and queue contents are the shared layer's heap
 * containers (in this server's heap); lock, event and value are plain
 * fields. One mutex (mu) guards the table and every object; blocking calls
 * (queue get/put, lock acquire, event wait) wait on one condition variable,
 * broadcast on every change, in slices of at most 1 s so a waiter whose
 * client hung up is noticed and dropped. Custom operations run without mu.
 *
 * Limits: message size (max_msg), connections (max_conn: extra ones are
 * closed at once), objects (max_obj: OPEN gets -ENOSPC), fields per message
 * (wire.h). The server never executes received data: ops are a fixed table,
 * custom ops a table of C functions registered before the server started.
 *
 * Shutdown (a SHUTDOWN request, SIGTERM/SIGINT when serving in the
 * foreground, or the owner's death seen on its pidfd): stop accepting,
 * shut down every client socket (their threads wake with EOF), wait for the
 * threads, free the objects.
 *
 * Lock order: mu -> container locks -> heap lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "manager/manager.h"
#include "platform/platform.h"
#include "shared/remote.h"

typedef struct sobj {
  int kind;       /* enum mproc__obj_kind, 0 = free slot */
  uint32_t gen;   /* bumped when the slot is freed */
  char name[256]; /* NUL-terminated */
  union {
    mproc_dict_t *dict; /* DICT, NAMESPACE */
    mproc_list_t *list; /* LIST */
    struct {
      mproc_list_t *items; /* FIFO */
      size_t maxsize;      /* 0 = unbounded */
    } q;
    struct {
      uint64_t owner; /* client id holding it, 0 = free */
    } lock;
    int ev; /* event flag */
    struct {
      void *p;
      size_t len;
    } val;
  } u;
} sobj;

typedef struct server server;

typedef struct client {
  server *s;
  int fd;
  uint64_t id;                /* non-zero, unique per connection */
  struct client *prev, *next; /* s->clients list, under mu */
} client;

struct server {
  mproc__mgr_cfg *cfg;
  pthread_mutex_t mu;
  pthread_cond_t cv;   /* any object or client-set change */
  sobj *objs;          /* table */
  uint32_t cap;        /* slots in objs */
  uint32_t nobj;       /* live objects */
  client *clients;     /* live client threads */
  int nclients;
  uint64_t next_id;
  _Atomic int stopping;
  int wake[2];         /* pipe: wakes the acceptor loop */
  int fuzz;            /* fuzzing: blocking calls time out at once */
};

/* The foreground server's wake pipe, for its signal handler. */
static _Atomic int g_sig_wake_fd = -1;

static void on_signal(int sig) {
  (void)sig;
  int fd = atomic_load(&g_sig_wake_fd);
  if (fd >= 0) {
    char c = 's';
    ssize_t r = write(fd, &c, 1);
    (void)r;
  }
}

static void request_stop(server *s) {
  atomic_store(&s->stopping, 1);
  char c = 's';
  ssize_t r = write(s->wake[1], &c, 1);
  (void)r;
}

/* ---- object table (mu held) ---- */

static int64_t handle_of(const server *s, const sobj *o) {
  return (int64_t)(((uint64_t)o->gen << 32) | (uint64_t)(o - s->objs));
}

static sobj *lookup(server *s, int64_t h, int kind) {
  uint64_t u = (uint64_t)h;
  uint32_t idx = (uint32_t)u, gen = (uint32_t)(u >> 32);
  if (idx >= s->cap) return NULL;
  sobj *o = &s->objs[idx];
  if (!o->kind || o->gen != gen) return NULL;
  if (o->kind != kind && !(kind == MPROC__OBJ_DICT && o->kind == MPROC__OBJ_NAMESPACE))
    return NULL;
  return o;
}

static sobj *find_name(server *s, const void *name, size_t len) {
  for (uint32_t i = 0; i < s->cap; i++)
    if (s->objs[i].kind && strlen(s->objs[i].name) == len && !memcmp(s->objs[i].name, name, len))
      return &s->objs[i];
  return NULL;
}

static void obj_free(sobj *o) {
  switch (o->kind) {
    case MPROC__OBJ_DICT:
    case MPROC__OBJ_NAMESPACE:
      mproc_dict_destroy(o->u.dict);
      break;
    case MPROC__OBJ_LIST:
      mproc_list_destroy(o->u.list);
      break;
    case MPROC__OBJ_QUEUE:
      mproc_list_destroy(o->u.q.items);
      break;
    case MPROC__OBJ_VALUE:
      free(o->u.val.p);
      break;
    default:
      break;
  }
  memset(&o->u, 0, sizeof o->u);
  o->kind = 0;
  o->gen++;
}

static int obj_open(server *s, int kind, const mproc__rfield *name, int64_t param,
                    int64_t *h) {
  if (kind < 1 || kind > MPROC__OBJ_MAX_) return -EINVAL;
  sobj *o = find_name(s, name->p, name->len);
  if (o) {
    if (o->kind != kind) return -EEXIST;
    *h = handle_of(s, o);
    return 0;
  }
  if (s->nobj >= (uint32_t)s->cfg->max_obj) return -ENOSPC;
  uint32_t i;
  for (i = 0; i < s->cap && s->objs[i].kind; i++) {
  }
  if (i == s->cap) {
    uint32_t ncap = s->cap ? s->cap * 2 : 64;
    sobj *n = realloc(s->objs, ncap * sizeof *n);
    if (!n) return -ENOMEM;
    memset(n + s->cap, 0, (ncap - s->cap) * sizeof *n);
    s->objs = n;
    s->cap = ncap;
  }
  o = &s->objs[i];
  int rc = 0;
  switch (kind) {
    case MPROC__OBJ_DICT:
      rc = mproc_dict_create(&o->u.dict, NULL);
      break;
    case MPROC__OBJ_NAMESPACE:
      rc = mproc_namespace_create((mproc_namespace_t **)(void *)&o->u.dict, NULL);
      break;
    case MPROC__OBJ_LIST:
      rc = mproc_list_create(&o->u.list, NULL);
      break;
    case MPROC__OBJ_QUEUE:
      if (param < 0) return -EINVAL;
      rc = mproc_list_create(&o->u.q.items, NULL);
      o->u.q.maxsize = (size_t)param;
      break;
    default:
      break;
  }
  if (rc) return rc;
  o->kind = kind;
  memcpy(o->name, name->p, name->len);
  o->name[name->len] = 0;
  s->nobj++;
  *h = handle_of(s, o);
  return 0;
}

/* ---- replies ---- */

typedef struct reply {
  int64_t status;
  mproc__rfield fixed[3]; /* small results */
  mproc__rfield *f;       /* results: fixed or dyn */
  uint32_t nf;
  mproc__rfield *dyn;     /* malloc()ed fields for snapshots */
  void *own[2];           /* buffers to free after sending */
} reply;

static void r_bytes(reply *r, void *p, size_t len, int owned) {
  r->fixed[r->nf++] = mproc__rf_bytes(p, len);
  if (owned) r->own[r->own[0] ? 1 : 0] = p;
}

static void r_i64(reply *r, int64_t v) { r->fixed[r->nf++] = mproc__rf_i64(v); }

static int r_blobs(reply *r, mproc_blob *b, size_t n) {
  r->dyn = malloc((n ? n : 1) * sizeof *r->dyn);
  if (!r->dyn) {
    mproc_blobs_free(b);
    return -ENOMEM;
  }
  for (size_t i = 0; i < n; i++) r->dyn[i] = mproc__rf_bytes(b[i].data, b[i].len);
  r->nf = (uint32_t)n;
  r->f = r->dyn;
  r->own[0] = b;
  return 0;
}

/* ---- argument checks ---- */

static int want(const mproc__msg *m, const char *types) {
  size_t n = strlen(types);
  if (m->nf != n) return 0;
  for (size_t i = 0; i < n; i++) {
    uint32_t t = types[i] == 'b' ? MPROC__F_BYTES : types[i] == 'i' ? MPROC__F_I64
               : types[i] == 'f' ? MPROC__F_F64 : MPROC__F_NAME;
    if (m->f[i].type != t) return 0;
  }
  return 1;
}

static int timeout_arg(const mproc__rfield *f, struct timespec *dl, struct timespec **pdl) {
  if (!mproc__timeout_ok(f->f)) return -EINVAL;
  *pdl = mproc__deadline(f->f, dl);
  return 0;
}

/* Wait on cv until woken, the deadline, or the client hanging up. mu held.
 * Returns 0 (re-check the condition), -ETIMEDOUT, MPROC_EEOF. */
static int wait_change(server *s, client *c, const struct timespec *dl) {
  if (atomic_load(&s->stopping)) return MPROC_EEOF;
  if (mproc__deadline_passed(dl) || s->fuzz) return -ETIMEDOUT;
  struct timespec slice;
  mproc__deadline(1.0, &slice);
  if (dl && (dl->tv_sec < slice.tv_sec ||
             (dl->tv_sec == slice.tv_sec && dl->tv_nsec < slice.tv_nsec)))
    slice = *dl;
  pthread_cond_timedwait(&s->cv, &s->mu, &slice);
  struct pollfd p = {c->fd, POLLRDHUP, 0};
  if (poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR))) return MPROC_EEOF;
  return 0;
}

/* ---- dispatch ---- */

static int d_call(server *s, const mproc__msg *m, reply *r) {
  (void)s;
  if (!want(m, "nb")) return MPROC_EPROTO;
  const mproc__mgr_op *op = mproc__mgr_find_op(m->f[0].p, m->f[0].len);
  if (!op) return MPROC_ENOTREG;
  void *out = NULL;
  size_t outlen = 0;
  int rc = op->fn(op->ctx, m->f[1].p, m->f[1].len, &out, &outlen);
  if (rc > 0) rc = 0;
  if (!rc) r_bytes(r, out, out ? outlen : 0, 1);
  else free(out);
  return rc;
}

/* Everything that touches objects; mu held. */
static int dispatch_locked(server *s, client *c, const mproc__msg *m, reply *r) {
  int rc;
  int64_t h = m->nf >= 1 && m->f[0].type == MPROC__F_I64 ? m->f[0].i : -1;
  sobj *o;
  size_t n = 0;
  void *p = NULL;
  mproc_blob *b;
  struct timespec dl, *pdl = NULL;
#define OBJ(kind)                                       \
  do {                                                  \
    if (!(o = lookup(s, h, (kind)))) return -ENOENT;    \
  } while (0)
  switch (m->op) {
    case MPROC__OP_OPEN:
      if (!want(m, "ini")) return MPROC_EPROTO;
      if ((rc = obj_open(s, (int)m->f[0].i, &m->f[1], m->f[2].i, &h))) return rc;
      r_i64(r, h);
      return 0;
    case MPROC__OP_REMOVE:
      if (!want(m, "n")) return MPROC_EPROTO;
      if (!(o = find_name(s, m->f[0].p, m->f[0].len))) return -ENOENT;
      obj_free(o);
      s->nobj--;
      pthread_cond_broadcast(&s->cv);
      return 0;
    /* dict / namespace */
    case MPROC__OP_DICT_SET:
      if (!want(m, "ibb")) return MPROC_EPROTO;
      OBJ(MPROC__OBJ_DICT);
      return mproc_dict_set(o->u.dict, m->f[1].p, m->f[1].len, m->f[2].p, m->f[2].len);
    case MPROC__OP_DICT_GET:
      if (!want(m, "ib")) return MPROC_EPROTO;
      OBJ(MPROC__OBJ_DICT);
      if ((rc = mproc_dict_get_alloc(o->u.dict, m->f[1].p, m->f[1].len, &p, &n))) return rc;
      r_bytes(r, p, n, 1);
      return 0;
    case MPROC__OP_DICT_DEL:
      if (!want(m, "ib")) return MPROC_EPROTO;
      OBJ(MPROC__OBJ_DICT);
      return mproc_dict_delete(o->u.dict, m->f[1].p, m->f[1].len);
    case MPROC__OP_DICT_CONTAINS:
      if (!want(m, "ib")) return MPROC_EPROTO;
      OBJ(MPROC__OBJ_DICT);
      if ((rc = mproc_dict_contains(o->u.dict, m->f[1].p, m->f[1].len)) < 0) return rc;
      r_i64(r, rc);
      return 0;
    case MPROC__OP_DICT_LEN:
      if (!want(m, "i")) return MPROC_EPROTO;
      OBJ(MPROC__OBJ_DICT);
      if ((rc = mproc_dict_len(o->u.dict, &n))) return rc;
      r_i64(r, (int64_t)n);
      return 0;
    case MPROC__OP_DICT_KEYS:
    case MPROC__OP_DICT_ITEMS:
      if (!want(m, "i")) return MPROC_EPROTO;
      OBJ(MPROC__OBJ_DICT);
      rc = m->op == MPROC__OP_DICT_KEYS ? mproc_dict_keys(o->u.dict, &b, &n)
                                        : mproc_dict_items(o->u.dict, &b, &n);
      if (rc) return rc;
      return r_blobs(r, b, m->op == MPROC__OP_DICT_KEYS ? n : 2 * n);
    case MPROC__OP_DICT_CLEAR:
      if (!want(m, "i")) return MPROC_EPROTO;
      OBJ(MPROC__OBJ_DICT);
      return mproc_dict_clear(o->u.dict);
    /* list */
    case MPROC__OP_LIST_APPEND:
      if (!want(m, "ib")) return MPROC_EPROTO;
      OBJ(MPROC__OBJ_LIST);
      return mproc_list_append(o->u.list, m->f[1].p, m->f[1].len);
    case MPROC__OP_LIST_EXTEND: {
      if (m->nf < 1 || m->f[0].type != MPROC__F_I64) return MPROC_EPROTO;
      for (uint32_t i = 1; i < m->nf; i++)
        if (m->f[i].type != MPROC__F_BYTES) return MPROC_EPROTO;
      OBJ(MPROC__OBJ_LIST);
      mproc_blob *v = malloc(m->nf * sizeof *v);
      if (!v) return -ENOMEM;
      for (uint32_t i = 1; i < m->nf; i++) {
        v[i - 1].data = (void *)m->f[i].p;
        v[i - 1].len = m->f[i].len;
      }
      rc = mproc_list_extend(o->u.list, v, m->nf - 1);
      free(v);
      return rc;
    }
    case MPROC__OP_LIST_GET:
      if (!want(m, "ii")) return MPROC_EPROTO;
      OBJ(MPROC__OBJ_LIST);
      if ((rc = mproc_list_get_alloc(o->u.list, m->f[1].i, &p, &n))) return rc;
      r_bytes(r, p, n, 1);
      return 0;
    case MPROC__OP_LIST_SET:
      if (!want(m, "iib")) return MPROC_EPROTO;
      OBJ(MPROC__OBJ_LIST);
      return mproc_list_set(o->u.list, m->f[1].i, m->f[2].p, m->f[2].len);
    case MPROC__OP_LIST_POP:
      if (!want(m, "iii")) return MPROC_EPROTO;
      OBJ(MPROC__OBJ_LIST);
      if (m->f[2].i >= 0) { /* the caller's buffer size: check before removing */
        rc = mproc_list_get(o->u.list, m->f[1].i, NULL, 0, &n);
        if (rc == MPROC_ETOOSHORT && n > (uint64_t)m->f[2].i) {
          r_i64(r, (int64_t)n);
          return MPROC_ETOOSHORT;
        }
        /* Other errors (empty, range) are reported by the pop itself. */
      }
      if ((rc = mproc_list_pop_alloc(o->u.list, m->f[1].i, &p, &n))) return rc;
      r_bytes(r, p, n, 1);
      return 0;
    case MPROC__OP_LIST_INSERT:
      if (!want(m, "iib")) return MPROC_EPROTO;
      OBJ(MPROC__OBJ_LIST);
      return mproc_list_insert(o->u.list, m->f[1].i, m->f[2].p, m->f[2].len);
    case MPROC__OP_LIST_LEN:
      if (!want(m, "i")) return MPROC_EPROTO;
      OBJ(MPROC__OBJ_LIST);
      if ((rc = mproc_list_len(o->u.list, &n))) return rc;
      r_i64(r, (int64_t)n);
      return 0;
    case MPROC__OP_LIST_SNAPSHOT:
      if (!want(m, "i")) return MPROC_EPROTO;
      OBJ(MPROC__OBJ_LIST);
      if ((rc = mproc_list_snapshot(o->u.list, &b, &n))) return rc;
      return r_blobs(r, b, n);
    case MPROC__OP_LIST_CLEAR:
      if (!want(m, "i")) return MPROC_EPROTO;
      OBJ(MPROC__OBJ_LIST);
      return mproc_list_clear(o->u.list);
    /* queue */
    case MPROC__OP_QUEUE_PUT:
      if (!want(m, "ibf")) return MPROC_EPROTO;
      if ((rc = timeout_arg(&m->f[2], &dl, &pdl))) return rc;
      for (;;) {
        OBJ(MPROC__OBJ_QUEUE);
        if ((rc = mproc_list_len(o->u.q.items, &n))) return rc;
        if (!o->u.q.maxsize || n < o->u.q.maxsize) break;
        if ((rc = wait_change(s, c, pdl))) return rc;
      }
      if ((rc = mproc_list_append(o->u.q.items, m->f[1].p, m->f[1].len))) return rc;
      pthread_cond_broadcast(&s->cv);
      return 0;
    case MPROC__OP_QUEUE_GET:
      if (!want(m, "ifi")) return MPROC_EPROTO;
      if ((rc = timeout_arg(&m->f[1], &dl, &pdl))) return rc;
      for (;;) {
        OBJ(MPROC__OBJ_QUEUE);
        if ((rc = mproc_list_len(o->u.q.items, &n))) return rc;
        if (n) break;
        if ((rc = wait_change(s, c, pdl))) return rc;
      }
      if (m->f[2].i >= 0) {
        rc = mproc_list_get(o->u.q.items, 0, NULL, 0, &n);
        if (rc == MPROC_ETOOSHORT && n > (uint64_t)m->f[2].i) {
          r_i64(r, (int64_t)n);
          return MPROC_ETOOSHORT;
        }
      }
      if ((rc = mproc_list_pop_alloc(o->u.q.items, 0, &p, &n))) return rc;
      r_bytes(r, p, n, 1);
      pthread_cond_broadcast(&s->cv);
      return 0;
    case MPROC__OP_QUEUE_SIZE:
      if (!want(m, "i")) return MPROC_EPROTO;
      OBJ(MPROC__OBJ_QUEUE);
      if ((rc = mproc_list_len(o->u.q.items, &n))) return rc;
      r_i64(r, (int64_t)n);
      return 0;
    /* lock */
    case MPROC__OP_LOCK_ACQUIRE:
      if (!want(m, "if")) return MPROC_EPROTO;
      if ((rc = timeout_arg(&m->f[1], &dl, &pdl))) return rc;
      for (;;) {
        OBJ(MPROC__OBJ_LOCK);
        if (!o->u.lock.owner) break;
        if ((rc = wait_change(s, c, pdl))) return rc;
      }
      o->u.lock.owner = c->id;
      return 0;
    case MPROC__OP_LOCK_RELEASE:
      if (!want(m, "i")) return MPROC_EPROTO;
      OBJ(MPROC__OBJ_LOCK);
      if (!o->u.lock.owner) return -EPERM;
      o->u.lock.owner = 0;
      pthread_cond_broadcast(&s->cv);
      return 0;
    /* event */
    case MPROC__OP_EVENT_SET:
    case MPROC__OP_EVENT_CLEAR:
    case MPROC__OP_EVENT_IS_SET:
      if (!want(m, "i")) return MPROC_EPROTO;
      OBJ(MPROC__OBJ_EVENT);
      if (m->op == MPROC__OP_EVENT_IS_SET) {
        r_i64(r, o->u.ev);
        return 0;
      }
      o->u.ev = m->op == MPROC__OP_EVENT_SET;
      pthread_cond_broadcast(&s->cv);
      return 0;
    case MPROC__OP_EVENT_WAIT:
      if (!want(m, "if")) return MPROC_EPROTO;
      if ((rc = timeout_arg(&m->f[1], &dl, &pdl))) return rc;
      for (;;) {
        OBJ(MPROC__OBJ_EVENT);
        if (o->u.ev) return 0;
        if ((rc = wait_change(s, c, pdl))) return rc;
      }
    /* value */
    case MPROC__OP_VALUE_GET:
      if (!want(m, "i")) return MPROC_EPROTO;
      OBJ(MPROC__OBJ_VALUE);
      p = malloc(o->u.val.len ? o->u.val.len : 1);
      if (!p) return -ENOMEM;
      if (o->u.val.len) memcpy(p, o->u.val.p, o->u.val.len);
      r_bytes(r, p, o->u.val.len, 1);
      return 0;
    case MPROC__OP_VALUE_SET:
      if (!want(m, "ib")) return MPROC_EPROTO;
      OBJ(MPROC__OBJ_VALUE);
      p = malloc(m->f[1].len ? m->f[1].len : 1);
      if (!p) return -ENOMEM;
      if (m->f[1].len) memcpy(p, m->f[1].p, m->f[1].len);
      free(o->u.val.p);
      o->u.val.p = p;
      o->u.val.len = m->f[1].len;
      return 0;
    default:
      return -ENOTSUP;
  }
#undef OBJ
}

static int dispatch(server *s, client *c, const mproc__msg *m, reply *r) {
  switch (m->op) {
    case MPROC__OP_PING:
      return 0;
    case MPROC__OP_SHUTDOWN:
      return 0; /* acted on after the reply is sent */
    case MPROC__OP_CALL:
      return d_call(s, m, r);
    default:
      break;
  }
  pthread_mutex_lock(&s->mu);
  int rc = dispatch_locked(s, c, m, r);
  pthread_mutex_unlock(&s->mu);
  return rc;
}

/* Decode and answer one request. Returns 0 to keep the connection, else an
 * error that closes it. */
int mproc__mgr_handle(server *s, client *c, const void *buf, size_t len, void **out,
                      size_t *outlen);

int mproc__mgr_handle(server *s, client *c, const void *buf, size_t len, void **out,
                      size_t *outlen) {
  mproc__msg m;
  int rc = mproc__wire_decode(buf, len, &m);
  if (rc) return rc;
  if (m.kind != MPROC__WIRE_REQUEST) {
    free(m.f);
    return MPROC_EPROTO;
  }
  reply r;
  memset(&r, 0, sizeof r);
  r.f = r.fixed;
  r.status = dispatch(s, c, &m, &r);
  if (r.status && r.status != MPROC_ETOOSHORT) r.nf = 0;
  /* Status first, then the results. */
  mproc__rfield *all = malloc((r.nf + 1) * sizeof *all);
  if (!all) {
    rc = -ENOMEM;
  } else {
    all[0] = mproc__rf_i64(r.status);
    if (r.nf) memcpy(all + 1, r.f, r.nf * sizeof *all);
    rc = mproc__wire_build(out, outlen, MPROC__WIRE_REPLY, m.op, m.id, all, r.nf + 1);
    if (!rc && *outlen > s->cfg->max_msg + MPROC__WIRE_HDR) {
      /* A reply too big to send: say so instead. */
      free(*out);
      all[0] = mproc__rf_i64(-EMSGSIZE);
      rc = mproc__wire_build(out, outlen, MPROC__WIRE_REPLY, m.op, m.id, all, 1);
    }
    free(all);
  }
  free(r.dyn);
  free(r.own[0]);
  free(r.own[1]);
  if (!rc && m.op == MPROC__OP_SHUTDOWN) rc = 1; /* send, then stop */
  free(m.f);
  return rc;
}

/* ---- client threads ---- */

static void client_done(client *c) {
  server *s = c->s;
  pthread_mutex_lock(&s->mu);
  /* A lock held by a connection that goes away is released (its holder
   * died or forgot it), so it can never wedge other clients. */
  for (uint32_t i = 0; i < s->cap; i++)
    if (s->objs[i].kind == MPROC__OBJ_LOCK && s->objs[i].u.lock.owner == c->id)
      s->objs[i].u.lock.owner = 0;
  if (c->prev) c->prev->next = c->next;
  else s->clients = c->next;
  if (c->next) c->next->prev = c->prev;
  s->nclients--;
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
  close(c->fd);
  free(c);
}

static void *client_main(void *arg) {
  client *c = arg;
  server *s = c->s;
  mproc__mgr_cfg *cfg = s->cfg;
  struct timespec dl;
  int rc = mproc__mt_auth_server(c->fd, cfg->key, cfg->klen,
                                 mproc__deadline(cfg->frame_timeout, &dl));
  while (!rc && !atomic_load(&s->stopping)) {
    void *buf, *out;
    size_t len, outlen;
    rc = mproc__mt_recv(c->fd, cfg->max_msg + MPROC__WIRE_HDR, &buf, &len, NULL,
                        cfg->frame_timeout);
    if (rc) break;
    rc = mproc__mgr_handle(s, c, buf, len, &out, &outlen);
    free(buf);
    if (rc < 0) break;
    int stop = rc == 1;
    rc = mproc__mt_send(c->fd, out, outlen, mproc__deadline(cfg->frame_timeout, &dl));
    free(out);
    if (stop) request_stop(s);
  }
  client_done(c);
  return NULL;
}

static void accept_one(server *s) {
  int fd = accept4(s->cfg->lfd, NULL, NULL, SOCK_CLOEXEC);
  if (fd < 0) return;
  pthread_mutex_lock(&s->mu);
  if (s->nclients >= s->cfg->max_conn || atomic_load(&s->stopping)) {
    pthread_mutex_unlock(&s->mu);
    close(fd); /* over the limit: the client sees EOF */
    return;
  }
  client *c = calloc(1, sizeof *c);
  if (!c) {
    pthread_mutex_unlock(&s->mu);
    close(fd);
    return;
  }
  c->s = s;
  c->fd = fd;
  c->id = ++s->next_id;
  c->next = s->clients;
  if (c->next) c->next->prev = c;
  s->clients = c;
  s->nclients++;
  pthread_attr_t a;
  pthread_attr_init(&a);
  pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&a, 256 * 1024);
  pthread_t th;
  int e = pthread_create(&th, &a, client_main, c);
  pthread_attr_destroy(&a);
  pthread_mutex_unlock(&s->mu);
  if (e) client_done(c);
}

int mproc__mgr_serve(mproc__mgr_cfg *cfg, void (*ready)(const char *, void *), void *arg) {
  server *s = calloc(1, sizeof *s);
  if (!s) {
    close(cfg->lfd);
    return -ENOMEM;
  }
  s->cfg = cfg;
  pthread_mutex_init(&s->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&s->cv, &ca);
  pthread_condattr_destroy(&ca);
  if (pipe2(s->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
    int e = -errno;
    close(cfg->lfd);
    free(s);
    return e;
  }
  int owner_fd = -1;
  if (cfg->owner > 0) {
    /* Without pidfds (old kernels, valgrind) the loop checks getppid()
     * every second instead. The owner may have died before we looked: then
     * stop at once. */
    owner_fd = mproc__sys.pidfd_open(cfg->owner, 0);
    if (getppid() != cfg->owner) atomic_store(&s->stopping, 1);
  }
  struct sigaction old_term, old_int;
  if (cfg->handle_signals) {
    atomic_store(&g_sig_wake_fd, s->wake[1]);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, &old_term);
    sigaction(SIGINT, &sa, &old_int);
  }
  if (ready) ready(cfg->addr, arg);
  while (!atomic_load(&s->stopping)) {
    struct pollfd p[3] = {{cfg->lfd, POLLIN, 0}, {s->wake[0], POLLIN, 0}, {owner_fd, POLLIN, 0}};
    int watch_ppid = cfg->owner > 0 && owner_fd < 0;
    int r = poll(p, owner_fd >= 0 ? 3 : 2, watch_ppid ? 1000 : -1);
    if (watch_ppid && getppid() != cfg->owner) break;
    if (r < 0 && errno != EINTR) break;
    if (r <= 0) continue;
    if (p[1].revents) break;
    if (owner_fd >= 0 && p[2].revents) break; /* the owner died */
    if (p[0].revents & POLLIN) accept_one(s);
  }
  atomic_store(&s->stopping, 1);
  close(cfg->lfd);
  if (cfg->unlink_path && strncmp(cfg->addr, "unix:", 5) == 0 && cfg->addr[5] != '@')
    unlink(cfg->addr + 5);
  /* Wake every client thread: blocked reads get EOF, waits see stopping.
   * Only the read side is shut, so a request being served still gets its
   * reply out (a client whose put landed must not see an error). */
  pthread_mutex_lock(&s->mu);
  for (client *c = s->clients; c; c = c->next) shutdown(c->fd, SHUT_RD);
  pthread_cond_broadcast(&s->cv);
  struct timespec dl;
  mproc__deadline(10.0, &dl);
  while (s->nclients > 0) {
    if (pthread_cond_timedwait(&s->cv, &s->mu, &dl) == ETIMEDOUT) break;
  }
  int left = s->nclients;
  for (uint32_t i = 0; !left && i < s->cap; i++)
    if (s->objs[i].kind) obj_free(&s->objs[i]);
  pthread_mutex_unlock(&s->mu);
  if (cfg->handle_signals) {
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGINT, &old_int, NULL);
    atomic_store(&g_sig_wake_fd, -1);
  }
  if (owner_fd >= 0) close(owner_fd);
  if (left) return 0; /* a custom op is still running: leave s to it */
  close(s->wake[0]);
  close(s->wake[1]);
  free(s->objs);
  pthread_cond_destroy(&s->cv);
  pthread_mutex_destroy(&s->mu);
  free(s);
  return 0;
}

/* Fuzzing entry (fuzz/fuzz_manager_wire.c): one untrusted request through
 * the decoder and the whole dispatcher of a server with small limits and no
 * sockets. Returns what the connection loop would do with it. */
int mproc__mgr_fuzz_one(const void *buf, size_t len);

int mproc__mgr_fuzz_one(const void *buf, size_t len) {
  static mproc__mgr_cfg cfg;
  static server *s;
  static client c;
  if (!s) {
    cfg.max_msg = 1 << 16;
    cfg.max_conn = 4;
    cfg.max_obj = 32;
    cfg.frame_timeout = 1;
    s = calloc(1, sizeof *s);
    if (!s) return -ENOMEM;
    s->cfg = &cfg;
    s->fuzz = 1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    c.s = s;
    c.fd = -1;
    c.id = 1;
  }
  if (len > cfg.max_msg + MPROC__WIRE_HDR) return -EMSGSIZE; /* the transport's check */
  void *out = NULL;
  size_t outlen = 0;
  int rc = mproc__mgr_handle(s, &c, buf, len, &out, &outlen);
  if (rc >= 0) {
    /* A reply must itself decode. */
    mproc__msg m;
    if (mproc__wire_decode(out, outlen, &m) != 0) abort();
    free(m.f);
  }
  free(out);
  return rc;
}
