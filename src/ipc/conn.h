/*
 * conn.h - the connection object shared by conn.c (Pipe, send/recv),
 * auth.c (handshake), listener.c (Listener/Client) and wait.c.
 */
#ifndef MPROC_IPC_CONN_H
#define MPROC_IPC_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "ipc/framing.h"
#include "mproc.h"

#define CONN_MAGIC MPROC__MAGIC('m', 'c', 'o', 'n')

struct mproc_conn {
  uint32_t magic;       /* CONN_MAGIC; MPROC__DEAD_MAGIC after destroy */
  int fd;               /* socket; -1 after close */
  int can_read;         /* this end receives */
  int can_write;        /* this end sends */
  int broken;           /* a frame was cut: the stream lost sync */
  uint64_t max_msg;     /* largest message accepted/sent; 0 = no limit */
  unsigned char hdr[MPROC__FRAME_HDR_MAX]; /* header bytes read so far */
  size_t hdr_got;       /* how many */
  int hdr_done;         /* header complete, payload of msg_len pending */
  uint64_t msg_len;     /* pending payload size when hdr_done */
  unsigned spin_misses; /* consecutive receives whose spin found nothing */
  unsigned spin_skip;   /* receives left that skip the spin */
};

/* Wrap an fd (takes ownership). 0 or -ENOMEM. */
int mproc__conn_wrap(int fd, int can_read, int can_write, uint64_t max_msg,
                     struct mproc_conn **out);
/* Validate a conn pointer: 0, -EINVAL, -EDESTROYED, -ECLOSED. */
int mproc__conn_check(const struct mproc_conn *c);
/* send/recv with an absolute deadline (NULL forever) on the whole message. */
int mproc__conn_send(struct mproc_conn *c, const void *data, size_t len);
int mproc__conn_recv_dl(struct mproc_conn *c, void *buf, size_t cap, int alloc, void **out,
                        size_t *len, const struct timespec *dl);

/* Handshake (auth.c). key may be NULL (then nothing is exchanged). */
int mproc__auth_server(struct mproc_conn *c, const void *key, size_t keylen,
                       const struct timespec *dl);
int mproc__auth_client(struct mproc_conn *c, const void *key, size_t keylen,
                       const struct timespec *dl);

#endif
