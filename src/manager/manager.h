/*
 * manager.h - internals shared by the manager's files.
 *
 *   wire.c       message encoding/decoding (the fuzzed parser)
 *   transport.c  sockets, authentication, framing
 *   server.c     the server: object store, dispatch, one thread per client
 *   client.c     the handle, connection pool, proxies, remote calls
 */
#ifndef MPROC_MANAGER_MANAGER_H
#define MPROC_MANAGER_MANAGER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "internal.h"
#include "manager/transport.h"
#include "manager/wire.h"

#define MPROC__MGR_KEY_MAX 1024
#define MPROC__MGR_DEF_MAX_MSG ((size_t)64 << 20)
#define MPROC__MGR_DEF_MAX_CONN 256
#define MPROC__MGR_DEF_MAX_OBJ 65536
#define MPROC__MGR_DEF_FRAME_TIMEOUT 30.0
#define MPROC__MGR_MAX_OPS 256

/* Resolved server configuration (defaults applied). */
typedef struct mproc__mgr_cfg {
  int lfd;                 /* listening socket */
  char addr[MPROC__MT_ADDR_MAX];       /* bound address */
  unsigned char key[MPROC__MGR_KEY_MAX]; /* authkey */
  size_t klen;             /* bytes of key (0 = none: Unix only) */
  size_t max_msg;          /* largest message */
  int max_conn;            /* concurrent clients */
  int max_obj;             /* named objects */
  double frame_timeout;    /* seconds to finish a started frame */
  pid_t owner;             /* exit when this process dies (0 = none) */
  int unlink_path;         /* remove the Unix socket file at exit */
  int handle_signals;      /* SIGTERM/SIGINT stop the server */
} mproc__mgr_cfg;

/* Validate opts and fill cfg (without listening). */
int mproc__mgr_cfg_init(mproc__mgr_cfg *cfg, const mproc_manager_opts *opts, int random_key);
/* Run the server on cfg->lfd until shutdown; closes lfd. */
int mproc__mgr_serve(mproc__mgr_cfg *cfg, void (*ready)(const char *, void *), void *arg);

/* Registered custom operations (process-global, inherited by fork). */
typedef struct mproc__mgr_op {
  char name[256];
  mproc_manager_fn fn;
  void *ctx;
} mproc__mgr_op;
const mproc__mgr_op *mproc__mgr_find_op(const char *name, size_t len);

#endif
