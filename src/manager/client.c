/*
 * client.c - the manager handle, its connection pool, proxies and the
 * remote-call path of the shared containers.
 *
 * DESIGN
 * A handle keeps the server address and authkey and a small pool of idle,
 * authenticated connections. A call takes an idle connection (or opens a
 * new one), sends one request, reads its reply, and puts the connection
 * back; so concurrent calls from several threads each use their own
 * connection and a call blocked on the server (queue get, lock acquire)
 * never holds up another thread. A transport error closes that connection
 * and is returned (MPROC_EEOF / -ECONNRESET when the server died: never a
 * hang, since a dead server's sockets are closed by the kernel).
 *
 * Fork: the pool belongs to the process that filled it (pid stamp). A
 * forked child that uses an inherited handle closes its copies of the
 * parent's connections and opens its own, so parent and child never
 * interleave bytes on one socket.
 *
 * Proxies for dict/list/namespace plug into the shared layer through
 * mproc__remote_call (shared/remote.h); the rest have their calls here.
 */
#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "manager/manager.h"
#include "platform/platform.h"
#include "shared/remote.h"

#define MGR_MAGIC MPROC__MAGIC('M', 'G', 'R', '!')
#define POOL 16
#define REPLY_FRAME_TIMEOUT 60.0

struct mproc_manager {
  uint32_t magic;                 /* MGR_MAGIC */
  char addr[MPROC__MT_ADDR_MAX];  /* server address */
  unsigned char key[MPROC__MGR_KEY_MAX]; /* authkey */
  size_t klen;
  double timeout;                 /* connect + handshake, seconds */
  pthread_mutex_t mu;             /* guards the pool */
  pid_t pid;                      /* process owning the pool */
  int idle[POOL];                 /* idle connections */
  int nidle;
  _Atomic uint32_t next_id;       /* request ids */
  pid_t owner;                    /* process that started the server, or 0 */
  mproc_process_t *server;        /* the server child (owner only) */
};

typedef struct proxy {
  mproc__proxy_hdr h;  /* magic PROXY, kind */
  mproc_manager_t *m;  /* the handle it calls through */
  int64_t handle;      /* server object handle */
} proxy;

/* ---- registry of custom operations ---- */

static pthread_mutex_t g_ops_mu = PTHREAD_MUTEX_INITIALIZER;
static mproc__mgr_op g_ops[MPROC__MGR_MAX_OPS];
static _Atomic int g_nops;

int mproc_manager_register(const char *name, mproc_manager_fn fn, void *ctx) {
  if (!name || !fn) return -EINVAL;
  size_t n = strnlen(name, 256);
  if (n == 0 || n > 255) return -EINVAL;
  pthread_mutex_lock(&g_ops_mu);
  int rc = 0, k = atomic_load(&g_nops);
  for (int i = 0; i < k; i++)
    if (strcmp(g_ops[i].name, name) == 0) rc = -EEXIST;
  if (!rc && k >= MPROC__MGR_MAX_OPS) rc = -ENOSPC;
  if (!rc) {
    memcpy(g_ops[k].name, name, n + 1);
    g_ops[k].fn = fn;
    g_ops[k].ctx = ctx;
    atomic_store(&g_nops, k + 1);
  }
  pthread_mutex_unlock(&g_ops_mu);
  return rc;
}

const mproc__mgr_op *mproc__mgr_find_op(const char *name, size_t len) {
  int k = atomic_load(&g_nops);
  for (int i = 0; i < k; i++)
    if (strlen(g_ops[i].name) == len && memcmp(g_ops[i].name, name, len) == 0) return &g_ops[i];
  return NULL;
}

/* ---- configuration ---- */

int mproc__mgr_cfg_init(mproc__mgr_cfg *cfg, const mproc_manager_opts *o, int random_key) {
  static const mproc_manager_opts zero;
  if (!o) o = &zero;
  memset(cfg, 0, sizeof *cfg);
  cfg->lfd = -1;
  if (sodium_init() < 0) return -ENOSYS;
  if (o->address) {
    size_t n = strnlen(o->address, MPROC__MT_ADDR_MAX);
    if (n == 0 || n >= MPROC__MT_ADDR_MAX) return -EINVAL;
    memcpy(cfg->addr, o->address, n + 1);
  } else {
    snprintf(cfg->addr, sizeof cfg->addr, "unix:@mproc-mgr-%d-%08x", (int)getpid(),
             randombytes_random());
  }
  if (o->authkey) {
    if (o->authkey_len < 1 || o->authkey_len > MPROC__MGR_KEY_MAX) return -EINVAL;
    memcpy(cfg->key, o->authkey, o->authkey_len);
    cfg->klen = o->authkey_len;
  } else if (o->authkey_len) {
    return -EINVAL;
  } else if (random_key) {
    randombytes_buf(cfg->key, 32);
    cfg->klen = 32;
  }
  if (mproc__mt_is_tcp(cfg->addr) && cfg->klen == 0) return -EINVAL; /* key mandatory */
  if (o->max_message > (size_t)UINT32_MAX - 64 || (o->max_message && o->max_message < 64))
    return -EINVAL;
  if (o->max_connections < 0 || o->max_objects < 0) return -EINVAL;
  if (!(o->frame_timeout >= 0 && o->frame_timeout < 1e9)) return -EINVAL;
  cfg->max_msg = o->max_message ? o->max_message : MPROC__MGR_DEF_MAX_MSG;
  cfg->max_conn = o->max_connections ? o->max_connections : MPROC__MGR_DEF_MAX_CONN;
  cfg->max_obj = o->max_objects ? o->max_objects : MPROC__MGR_DEF_MAX_OBJ;
  cfg->frame_timeout = o->frame_timeout > 0 ? o->frame_timeout : MPROC__MGR_DEF_FRAME_TIMEOUT;
  return 0;
}

/* ---- connections ---- */

static int open_conn(mproc_manager_t *m, int *fd) {
  struct timespec dl, *pdl = mproc__deadline(m->timeout, &dl);
  int rc = mproc__mt_connect(m->addr, pdl, fd);
  if (rc) return rc;
  if ((rc = mproc__mt_auth_client(*fd, m->key, m->klen, pdl))) {
    close(*fd);
    return rc;
  }
  return 0;
}

/* Make the pool this process's own (after fork). Caller holds nothing. */
static void own_pool(mproc_manager_t *m) {
  pid_t me = getpid();
  if (MPROC_LIKELY(m->pid == me)) return;
  /* The inherited mutex may have been held by a thread that does not exist
   * here; the pool's fds are the parent's connections. */
  pthread_mutex_init(&m->mu, NULL);
  for (int i = 0; i < m->nidle; i++) close(m->idle[i]);
  m->nidle = 0;
  m->pid = me;
}

static int get_conn(mproc_manager_t *m, int *fd) {
  own_pool(m);
  pthread_mutex_lock(&m->mu);
  if (m->nidle > 0) {
    *fd = m->idle[--m->nidle];
    pthread_mutex_unlock(&m->mu);
    return 0;
  }
  pthread_mutex_unlock(&m->mu);
  return open_conn(m, fd);
}

static void put_conn(mproc_manager_t *m, int fd) {
  pthread_mutex_lock(&m->mu);
  if (m->pid == getpid() && m->nidle < POOL) {
    m->idle[m->nidle++] = fd;
    fd = -1;
  }
  pthread_mutex_unlock(&m->mu);
  if (fd >= 0) close(fd);
}

static void drop_pool(mproc_manager_t *m) {
  own_pool(m);
  pthread_mutex_lock(&m->mu);
  for (int i = 0; i < m->nidle; i++) close(m->idle[i]);
  m->nidle = 0;
  pthread_mutex_unlock(&m->mu);
}

/* One request/reply. Returns the server status, or a transport error.
 * rep (may be NULL) gets the result fields on status 0 and ETOOSHORT. */
static int roundtrip(mproc_manager_t *m, int op, const mproc__rfield *f, uint32_t nf,
                     mproc__rreply *rep) {
  if (rep) {
    rep->mem = NULL;
    rep->nf = 0;
    rep->f = NULL;
  }
  uint32_t id = atomic_fetch_add(&m->next_id, 1);
  void *req;
  size_t reqlen;
  int rc = mproc__wire_build(&req, &reqlen, MPROC__WIRE_REQUEST, (uint16_t)op, id, f, nf);
  if (rc) return rc;
  int fd;
  if ((rc = get_conn(m, &fd))) {
    free(req);
    return rc;
  }
  struct timespec dl;
  rc = mproc__mt_send(fd, req, reqlen, mproc__deadline(REPLY_FRAME_TIMEOUT, &dl));
  free(req);
  void *buf = NULL;
  size_t len;
  if (!rc)
    rc = mproc__mt_recv(fd, (size_t)UINT32_MAX, &buf, &len, NULL, REPLY_FRAME_TIMEOUT);
  if (rc) {
    close(fd);
    return rc == -EPIPE ? MPROC_EEOF : rc;
  }
  mproc__msg msg;
  rc = mproc__wire_decode(buf, len, &msg);
  if (!rc && (msg.kind != MPROC__WIRE_REPLY || msg.id != id || msg.op != op || msg.nf < 1 ||
              msg.f[0].type != MPROC__F_I64)) {
    free(msg.f);
    rc = MPROC_EPROTO;
  }
  if (rc) { /* a server speaking garbage: do not reuse this connection */
    free(buf);
    close(fd);
    return rc;
  }
  put_conn(m, fd);
  int status = (int)msg.f[0].i;
  if (msg.f[0].i < -4999 || msg.f[0].i > 0) status = MPROC_EPROTO;
  if (rep && (status == 0 || status == MPROC_ETOOSHORT)) {
    /* One block: the fields, then the frame they point into. */
    uint32_t n = msg.nf - 1;
    size_t fsz = n * sizeof(mproc__rfield);
    char *blk = malloc(fsz + len + 1);
    if (!blk) {
      status = -ENOMEM;
    } else {
      char *data = blk + fsz;
      memcpy(data, buf, len);
      mproc__rfield *rf = (mproc__rfield *)(void *)blk;
      for (uint32_t i = 0; i < n; i++) {
        rf[i] = msg.f[i + 1];
        if (rf[i].p) rf[i].p = data + ((const char *)rf[i].p - (const char *)buf);
      }
      rep->mem = blk;
      rep->f = rf;
      rep->nf = (int)n;
    }
  }
  free(msg.f);
  free(buf);
  return status;
}

/* The shared layer's hook: container calls on dict/list/namespace proxies. */
static int remote_call(void *px, int op, const mproc__rfield *args, int nargs,
                       mproc__rreply *rep) {
  proxy *p = px;
  mproc__rfield small[4], *f = small;
  if (nargs + 1 > 4) {
    f = malloc((size_t)(nargs + 1) * sizeof *f);
    if (!f) return -ENOMEM;
  }
  f[0] = mproc__rf_i64(p->handle);
  for (int i = 0; i < nargs; i++) f[i + 1] = args[i];
  int rc = roundtrip(p->m, op, f, (uint32_t)nargs + 1, rep);
  if (f != small) free(f);
  if (rc && rc != MPROC_ETOOSHORT && rep) {
    free(rep->mem);
    rep->mem = NULL;
  }
  return rc;
}

/* ---- handles ---- */

static int check_m(const mproc_manager_t *m) {
  if (!m) return -EINVAL;
  if (m->magic == MPROC__DEAD_MAGIC) return MPROC_EDESTROYED;
  return m->magic == MGR_MAGIC ? 0 : -EINVAL;
}

static int new_handle(mproc_manager_t **out, const char *addr, const void *key, size_t klen,
                      double timeout) {
  mproc_manager_t *m = calloc(1, sizeof *m);
  if (!m) return -ENOMEM;
  snprintf(m->addr, sizeof m->addr, "%s", addr);
  if (klen) memcpy(m->key, key, klen);
  m->klen = klen;
  m->timeout = timeout;
  pthread_mutex_init(&m->mu, NULL);
  m->pid = getpid();
  m->magic = MGR_MAGIC;
  mproc__remote_call = remote_call;
  *out = m;
  return 0;
}

static int server_target(void *arg) {
  mproc__mgr_cfg *cfg = arg;
  return mproc__mgr_serve(cfg, NULL, NULL) ? 1 : 0;
}

int mproc_manager_start(mproc_manager_t **out, const mproc_manager_opts *opts) {
  if (!out) return -EINVAL;
  int rc = mproc__ensure_init();
  if (rc) return rc;
  mproc__mgr_cfg *cfg = malloc(sizeof *cfg);
  if (!cfg) return -ENOMEM;
  if ((rc = mproc__mgr_cfg_init(cfg, opts, 1))) goto fail;
  char want[MPROC__MT_ADDR_MAX];
  memcpy(want, cfg->addr, sizeof want);
  if ((rc = mproc__mt_listen(want, 128, &cfg->lfd, cfg->addr, sizeof cfg->addr))) goto fail;
  cfg->owner = getpid();
  cfg->unlink_path = 1;
  /* fork: the child must inherit the listening socket and cfg itself. */
  mproc_process_opts po = {.name = "mproc-manager", .daemon = 1,
                           .start_method = MPROC_START_FORK};
  mproc_process_t *p;
  if ((rc = mproc_process_create(&p, server_target, cfg, &po))) goto fail_fd;
  if ((rc = mproc_process_start(p))) {
    mproc_process_destroy(p);
    goto fail_fd;
  }
  close(cfg->lfd);
  mproc_manager_t *m;
  if ((rc = new_handle(&m, cfg->addr, cfg->key, cfg->klen, 30.0))) {
    mproc_process_kill(p);
    mproc_process_join(p, -1);
    mproc_process_destroy(p);
    goto fail;
  }
  m->owner = getpid();
  m->server = p;
  sodium_memzero(cfg, sizeof *cfg);
  free(cfg);
  *out = m;
  return 0;
fail_fd:
  close(cfg->lfd);
fail:
  sodium_memzero(cfg, sizeof *cfg);
  free(cfg);
  return rc;
}

int mproc_manager_serve(const mproc_manager_opts *opts, void (*ready)(const char *, void *),
                        void *arg) {
  int rc = mproc__ensure_init();
  if (rc) return rc;
  mproc__mgr_cfg *cfg = malloc(sizeof *cfg);
  if (!cfg) return -ENOMEM;
  if ((rc = mproc__mgr_cfg_init(cfg, opts, 0)) == 0) {
    char want[MPROC__MT_ADDR_MAX];
    memcpy(want, cfg->addr, sizeof want);
    rc = mproc__mt_listen(want, 128, &cfg->lfd, cfg->addr, sizeof cfg->addr);
  }
  if (!rc) {
    cfg->unlink_path = 1;
    cfg->handle_signals = 1;
    rc = mproc__mgr_serve(cfg, ready, arg);
  }
  sodium_memzero(cfg, sizeof *cfg);
  free(cfg);
  return rc;
}

int mproc_manager_connect(mproc_manager_t **out, const char *address, const void *key,
                          size_t klen, double timeout) {
  if (!out || !address || (!key && klen) || klen > MPROC__MGR_KEY_MAX) return -EINVAL;
  if (!mproc__timeout_ok(timeout)) return -EINVAL;
  if (strnlen(address, MPROC__MT_ADDR_MAX) >= MPROC__MT_ADDR_MAX) return -EINVAL;
  if (mproc__mt_is_tcp(address) && klen == 0) return -EINVAL;
  if (strncmp(address, "unix:", 5) && !mproc__mt_is_tcp(address)) return -EINVAL;
  if (sodium_init() < 0) return -ENOSYS;
  mproc_manager_t *m;
  int rc = new_handle(&m, address, key, klen, timeout);
  if (rc) return rc;
  int fd;
  if ((rc = open_conn(m, &fd))) { /* fail early on a bad address or key */
    m->magic = MPROC__DEAD_MAGIC;
    pthread_mutex_destroy(&m->mu);
    free(m);
    return rc;
  }
  put_conn(m, fd);
  *out = m;
  return 0;
}

const char *mproc_manager_address(const mproc_manager_t *m) {
  return check_m(m) ? NULL : m->addr;
}

int mproc_manager_authkey(const mproc_manager_t *m, const void **key, size_t *len) {
  int rc = check_m(m);
  if (rc) return rc;
  if (!key || !len) return -EINVAL;
  *key = m->key;
  *len = m->klen;
  return 0;
}

int mproc_manager_ping(mproc_manager_t *m) {
  int rc = check_m(m);
  return rc ? rc : roundtrip(m, MPROC__OP_PING, NULL, 0, NULL);
}

static int is_owner(const mproc_manager_t *m) { return m->server && m->owner == getpid(); }

int mproc_manager_shutdown(mproc_manager_t *m) {
  int rc = check_m(m);
  if (rc) return rc;
  rc = roundtrip(m, MPROC__OP_SHUTDOWN, NULL, 0, NULL);
  drop_pool(m);
  if (is_owner(m)) {
    /* Wait for the server to exit; force it if it does not. */
    if (mproc_process_join(m->server, 10.0) == -ETIMEDOUT) {
      mproc_process_kill(m->server);
      mproc_process_join(m->server, -1);
    }
    mproc_process_destroy(m->server);
    m->server = NULL;
    if (rc == MPROC_EEOF) rc = 0; /* it was already gone: same outcome */
  }
  return rc;
}

int mproc_manager_destroy(mproc_manager_t *m) {
  if (!m) return 0;
  int rc = check_m(m);
  if (rc) return rc;
  if (is_owner(m)) mproc_manager_shutdown(m);
  drop_pool(m);
  m->magic = MPROC__DEAD_MAGIC;
  pthread_mutex_destroy(&m->mu);
  sodium_memzero(m->key, sizeof m->key);
  free(m);
  return 0;
}

/* ---- proxies ---- */

static int open_obj(mproc_manager_t *m, const char *name, int kind, int64_t param,
                    void **out) {
  int rc = check_m(m);
  if (rc) return rc;
  if (!name || !out) return -EINVAL;
  size_t n = strnlen(name, 256);
  if (n == 0 || n > 255) return -EINVAL;
  mproc__rfield f[3] = {mproc__rf_i64(kind), {MPROC__F_NAME, (uint32_t)n, name, 0, 0},
                        mproc__rf_i64(param)};
  mproc__rreply rep;
  if ((rc = roundtrip(m, MPROC__OP_OPEN, f, 3, &rep))) return rc;
  int64_t h = rep.nf == 1 && rep.f[0].type == MPROC__F_I64 ? rep.f[0].i : -1;
  free(rep.mem);
  if (h < 0) return MPROC_EPROTO;
  proxy *p = calloc(1, sizeof *p);
  if (!p) return -ENOMEM;
  p->h.magic = MPROC__PROXY_MAGIC;
  p->h.kind = (uint32_t)kind;
  p->m = m;
  p->handle = h;
  *out = p;
  return 0;
}

int mproc_manager_dict(mproc_manager_t *m, const char *name, mproc_dict_t **d) {
  return open_obj(m, name, MPROC__OBJ_DICT, 0, (void **)d);
}
int mproc_manager_list(mproc_manager_t *m, const char *name, mproc_list_t **l) {
  return open_obj(m, name, MPROC__OBJ_LIST, 0, (void **)l);
}
int mproc_manager_namespace(mproc_manager_t *m, const char *name, mproc_namespace_t **ns) {
  return open_obj(m, name, MPROC__OBJ_NAMESPACE, 0, (void **)ns);
}
int mproc_manager_queue(mproc_manager_t *m, const char *name, size_t maxsize,
                        mproc_mqueue_t **q) {
  if (maxsize > (size_t)INT64_MAX) return -EINVAL;
  return open_obj(m, name, MPROC__OBJ_QUEUE, (int64_t)maxsize, (void **)q);
}
int mproc_manager_lock(mproc_manager_t *m, const char *name, mproc_mlock_t **l) {
  return open_obj(m, name, MPROC__OBJ_LOCK, 0, (void **)l);
}
int mproc_manager_event(mproc_manager_t *m, const char *name, mproc_mevent_t **e) {
  return open_obj(m, name, MPROC__OBJ_EVENT, 0, (void **)e);
}
int mproc_manager_value(mproc_manager_t *m, const char *name, mproc_mvalue_t **v) {
  return open_obj(m, name, MPROC__OBJ_VALUE, 0, (void **)v);
}

int mproc_manager_remove(mproc_manager_t *m, const char *name) {
  int rc = check_m(m);
  if (rc) return rc;
  if (!name) return -EINVAL;
  size_t n = strnlen(name, 256);
  if (n == 0 || n > 255) return -EINVAL;
  mproc__rfield f[1] = {{MPROC__F_NAME, (uint32_t)n, name, 0, 0}};
  return roundtrip(m, MPROC__OP_REMOVE, f, 1, NULL);
}

int mproc_manager_call(mproc_manager_t *m, const char *name, const void *in, size_t inlen,
                       void **out, size_t *outlen) {
  int rc = check_m(m);
  if (rc) return rc;
  if (!name || (!in && inlen) || inlen > UINT32_MAX) return -EINVAL;
  size_t n = strnlen(name, 256);
  if (n == 0 || n > 255) return -EINVAL;
  mproc__rfield f[2] = {{MPROC__F_NAME, (uint32_t)n, name, 0, 0}, mproc__rf_bytes(in, inlen)};
  mproc__rreply rep;
  rc = roundtrip(m, MPROC__OP_CALL, f, 2, &rep);
  if (rc) {
    if (rc == MPROC_ETOOSHORT) free(rep.mem);
    return rc;
  }
  if (rep.nf != 1 || rep.f[0].type != MPROC__F_BYTES) rc = MPROC_EPROTO;
  else if (out) {
    char *b = malloc(rep.f[0].len + 1);
    if (!b) rc = -ENOMEM;
    else {
      if (rep.f[0].len) memcpy(b, rep.f[0].p, rep.f[0].len);
      b[rep.f[0].len] = 0;
      *out = b;
      if (outlen) *outlen = rep.f[0].len;
    }
  } else if (outlen) {
    *outlen = rep.f[0].len;
  }
  free(rep.mem);
  return rc;
}

int mproc_proxy_destroy(void *p) {
  if (!p) return 0;
  proxy *x = p;
  if (x->h.magic != MPROC__PROXY_MAGIC) return -EINVAL;
  x->h.magic = MPROC__DEAD_MAGIC;
  free(x);
  return 0;
}

/* ---- queue, lock, event, value proxies ---- */

static int px(const void *p, int kind, proxy **out) {
  if (!p) return -EINVAL;
  const proxy *x = p;
  if (x->h.magic == MPROC__DEAD_MAGIC) return MPROC_EDESTROYED;
  if (x->h.magic != MPROC__PROXY_MAGIC || x->h.kind != (uint32_t)kind) return -EINVAL;
  *out = (proxy *)p;
  return check_m(x->m);
}

/* Call with the handle prepended; result fields in rep (may be NULL). */
static int pcall(proxy *p, int op, const mproc__rfield *args, int nargs, mproc__rreply *rep) {
  return remote_call(p, op, args, nargs, rep);
}

static mproc__rfield rf_f64(double v) {
  mproc__rfield f = {MPROC__F_F64, 8, NULL, 0, v};
  return f;
}

static int one_i64(proxy *p, int op, int64_t *v) {
  mproc__rreply rep;
  int rc = pcall(p, op, NULL, 0, &rep);
  if (rc) return rc;
  if (rep.nf != 1 || rep.f[0].type != MPROC__F_I64) rc = MPROC_EPROTO;
  else *v = rep.f[0].i;
  free(rep.mem);
  return rc;
}

int mproc_mqueue_put(mproc_mqueue_t *q, const void *data, size_t len, double timeout) {
  proxy *p;
  int rc = px(q, MPROC__OBJ_QUEUE, &p);
  if (rc) return rc;
  if ((!data && len) || !mproc__timeout_ok(timeout)) return -EINVAL;
  if (len > UINT32_MAX) return -EMSGSIZE;
  mproc__rfield a[2] = {mproc__rf_bytes(data, len), rf_f64(timeout)};
  return pcall(p, MPROC__OP_QUEUE_PUT, a, 2, NULL);
}

static int qget(mproc_mqueue_t *q, void *buf, size_t cap, size_t *len, void **dup,
                double timeout) {
  proxy *p;
  int rc = px(q, MPROC__OBJ_QUEUE, &p);
  if (rc) return rc;
  if (!mproc__timeout_ok(timeout)) return -EINVAL;
  mproc__rfield a[2] = {rf_f64(timeout),
                        mproc__rf_i64(dup ? -1 : (int64_t)(cap > INT64_MAX ? INT64_MAX : cap))};
  mproc__rreply rep;
  rc = pcall(p, MPROC__OP_QUEUE_GET, a, 2, &rep);
  if (rc == MPROC_ETOOSHORT) {
    if (len && rep.nf == 1 && rep.f[0].type == MPROC__F_I64) *len = (size_t)rep.f[0].i;
    free(rep.mem);
    return rc;
  }
  if (rc) return rc;
  if (rep.nf != 1 || rep.f[0].type != MPROC__F_BYTES) {
    rc = MPROC_EPROTO;
  } else if (dup) {
    char *b = malloc(rep.f[0].len + 1);
    if (!b) rc = -ENOMEM;
    else {
      if (rep.f[0].len) memcpy(b, rep.f[0].p, rep.f[0].len);
      b[rep.f[0].len] = 0;
      *dup = b;
      if (len) *len = rep.f[0].len;
    }
  } else {
    *len = rep.f[0].len;
    if (rep.f[0].len > cap) rc = MPROC_ETOOSHORT; /* cannot happen: checked server-side */
    else if (rep.f[0].len && buf) memcpy(buf, rep.f[0].p, rep.f[0].len);
  }
  free(rep.mem);
  return rc;
}

int mproc_mqueue_get(mproc_mqueue_t *q, void *buf, size_t cap, size_t *len, double timeout) {
  if (!len || (!buf && cap)) return -EINVAL;
  return qget(q, buf, cap, len, NULL, timeout);
}

int mproc_mqueue_get_alloc(mproc_mqueue_t *q, void **data, size_t *len, double timeout) {
  if (!data) return -EINVAL;
  return qget(q, NULL, 0, len, data, timeout);
}

int mproc_mqueue_qsize(mproc_mqueue_t *q, size_t *n) {
  proxy *p;
  int rc = px(q, MPROC__OBJ_QUEUE, &p);
  if (rc) return rc;
  if (!n) return -EINVAL;
  int64_t v;
  if ((rc = one_i64(p, MPROC__OP_QUEUE_SIZE, &v))) return rc;
  *n = (size_t)v;
  return 0;
}

int mproc_mlock_acquire(mproc_mlock_t *l, double timeout) {
  proxy *p;
  int rc = px(l, MPROC__OBJ_LOCK, &p);
  if (rc) return rc;
  if (!mproc__timeout_ok(timeout)) return -EINVAL;
  mproc__rfield a[1] = {rf_f64(timeout)};
  return pcall(p, MPROC__OP_LOCK_ACQUIRE, a, 1, NULL);
}

int mproc_mlock_release(mproc_mlock_t *l) {
  proxy *p;
  int rc = px(l, MPROC__OBJ_LOCK, &p);
  return rc ? rc : pcall(p, MPROC__OP_LOCK_RELEASE, NULL, 0, NULL);
}

int mproc_mevent_set(mproc_mevent_t *e) {
  proxy *p;
  int rc = px(e, MPROC__OBJ_EVENT, &p);
  return rc ? rc : pcall(p, MPROC__OP_EVENT_SET, NULL, 0, NULL);
}

int mproc_mevent_clear(mproc_mevent_t *e) {
  proxy *p;
  int rc = px(e, MPROC__OBJ_EVENT, &p);
  return rc ? rc : pcall(p, MPROC__OP_EVENT_CLEAR, NULL, 0, NULL);
}

int mproc_mevent_is_set(mproc_mevent_t *e) {
  proxy *p;
  int rc = px(e, MPROC__OBJ_EVENT, &p);
  if (rc) return rc;
  int64_t v;
  if ((rc = one_i64(p, MPROC__OP_EVENT_IS_SET, &v))) return rc;
  return v != 0;
}

int mproc_mevent_wait(mproc_mevent_t *e, double timeout) {
  proxy *p;
  int rc = px(e, MPROC__OBJ_EVENT, &p);
  if (rc) return rc;
  if (!mproc__timeout_ok(timeout)) return -EINVAL;
  mproc__rfield a[1] = {rf_f64(timeout)};
  return pcall(p, MPROC__OP_EVENT_WAIT, a, 1, NULL);
}

int mproc_mvalue_set(mproc_mvalue_t *v, const void *data, size_t len) {
  proxy *p;
  int rc = px(v, MPROC__OBJ_VALUE, &p);
  if (rc) return rc;
  if (!data && len) return -EINVAL;
  if (len > UINT32_MAX) return -EMSGSIZE;
  mproc__rfield a[1] = {mproc__rf_bytes(data, len)};
  return pcall(p, MPROC__OP_VALUE_SET, a, 1, NULL);
}

int mproc_mvalue_get(mproc_mvalue_t *v, void *buf, size_t cap, size_t *len) {
  proxy *p;
  int rc = px(v, MPROC__OBJ_VALUE, &p);
  if (rc) return rc;
  if (!len || (!buf && cap)) return -EINVAL;
  mproc__rreply rep;
  if ((rc = pcall(p, MPROC__OP_VALUE_GET, NULL, 0, &rep))) return rc;
  if (rep.nf != 1 || rep.f[0].type != MPROC__F_BYTES) {
    rc = MPROC_EPROTO;
  } else {
    *len = rep.f[0].len;
    if (rep.f[0].len > cap) rc = MPROC_ETOOSHORT;
    else if (rep.f[0].len) memcpy(buf, rep.f[0].p, rep.f[0].len);
  }
  free(rep.mem);
  return rc;
}

int mproc_mvalue_set_int(mproc_mvalue_t *v, int64_t x) { return mproc_mvalue_set(v, &x, 8); }
int mproc_mvalue_set_double(mproc_mvalue_t *v, double x) { return mproc_mvalue_set(v, &x, 8); }

static int get8(mproc_mvalue_t *v, void *x) {
  if (!x) return -EINVAL;
  unsigned char b[8];
  size_t len;
  int rc = mproc_mvalue_get(v, b, sizeof b, &len);
  if (rc == MPROC_ETOOSHORT) return -EINVAL;
  if (rc) return rc;
  if (len != 8) return -EINVAL;
  memcpy(x, b, 8);
  return 0;
}

int mproc_mvalue_get_int(mproc_mvalue_t *v, int64_t *x) { return get8(v, x); }
int mproc_mvalue_get_double(mproc_mvalue_t *v, double *x) { return get8(v, x); }
