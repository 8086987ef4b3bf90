/*
 * wait.c - mproc_wait: wait on connections, queues and fds at once
 * (Python's multiprocessing.connection.wait).
 *
 * DESIGN
 * fds and connections are waited on with poll(2). Queues have no fd (they
 * are futex words in the shared heap, usable by processes that did not exist
 * when the queue was made, so a per-queue eventfd could not be shared), so a
 * waiting call bridges each queue to an fd: one short-lived thread per queue
 * arms the queue's getter eventcount, re-checks readiness and sleeps on the
 * futex; when the queue becomes ready it writes to an eventfd that poll()
 * watches with the other fds. Nothing spins: the bridge sleeps in the kernel
 * (plus the queue's 100 ms backstop slice). On return the bridges are told
 * to stop and kicked awake (a bump of the eventcount, which other sleepers
 * treat as a spurious wake-up), then joined.
 * Readiness is reported level-triggered, as Python does: ready is computed
 * for every object when the call returns.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "ipc/ipc.h"

#define MAX_WAIT 1024

typedef struct bridge {
  pthread_t th;
  struct mproc_queue *q;
  int efd;
  _Atomic int *stop;
  int started;
} bridge;

static void *bridge_main(void *arg) {
  bridge *b = arg;
  _Atomic uint32_t *ec = mproc__queue_get_ec(b->q);
  while (!atomic_load(b->stop)) {
    uint32_t v = mproc__ec_arm(ec);
    if (atomic_load(b->stop)) break;
    if (mproc__queue_ready(b->q) != 0) {
      uint64_t one = 1;
      ssize_t w = write(b->efd, &one, sizeof one);
      (void)w;
      break;
    }
    mproc__ec_sleep(ec, v, NULL, 100000000L);
  }
  return NULL;
}

/* Fill ready flags without blocking; returns the count or an error. */
static int scan(mproc_waitable *o, size_t n, struct pollfd *pf) {
  int cnt = 0;
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    o[i].ready = 0;
    if (o[i].kind == MPROC_WAIT_QUEUE) {
      int r = mproc__queue_ready(o[i].u.queue);
      if (r < 0) return r;
      o[i].ready = r;
    } else if (o[i].kind == MPROC_WAIT_CONN) {
      int r = mproc__conn_buffered(o[i].u.conn);
      if (r < 0) return r;
      o[i].ready = r;
    }
  }
  for (size_t i = 0; i < n; i++)
    if (o[i].kind != MPROC_WAIT_QUEUE) {
      pf[k].fd = o[i].kind == MPROC_WAIT_FD ? o[i].u.fd : mproc__conn_fd(o[i].u.conn);
      pf[k].events = POLLIN;
      pf[k].revents = 0;
      k++;
    }
  if (k) {
    int r;
    while ((r = poll(pf, k, 0)) < 0 && errno == EINTR) {
    }
    if (r < 0) return -errno;
  }
  k = 0;
  for (size_t i = 0; i < n; i++) {
    if (o[i].kind != MPROC_WAIT_QUEUE) {
      if (pf[k].revents & POLLNVAL) return -EINVAL;
      if (pf[k].revents) o[i].ready = 1;
      k++;
    }
    cnt += o[i].ready;
  }
  return cnt;
}

int mproc_wait(mproc_waitable *o, size_t n, double timeout) {
  if ((!o && n) || n > MAX_WAIT || !mproc__timeout_ok(timeout)) return -EINVAL;
  size_t nq = 0;
  for (size_t i = 0; i < n; i++) {
    switch (o[i].kind) {
      case MPROC_WAIT_FD:
        if (o[i].u.fd < 0) return -EINVAL;
        break;
      case MPROC_WAIT_CONN: {
        int r = mproc__conn_buffered(o[i].u.conn);
        if (r < 0) return r;
        break;
      }
      case MPROC_WAIT_QUEUE: {
        int r = mproc__queue_check(o[i].u.queue);
        if (r) return r;
        nq++;
        break;
      }
      default:
        return -EINVAL;
    }
  }
  struct pollfd *pf = calloc(n + 1, sizeof *pf);
  if (!pf) return -ENOMEM;
  int rc = scan(o, n, pf);
  if (rc != 0 || timeout == 0) {
    free(pf);
    return rc;
  }
  struct timespec dlb, *dl = mproc__deadline(timeout, &dlb);
  bridge *br = NULL;
  _Atomic int stop = 0;
  int efd = -1;
  if (nq) {
    efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    br = calloc(nq, sizeof *br);
    if (efd < 0 || !br) {
      rc = efd < 0 ? -errno : -ENOMEM;
      goto out;
    }
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
      if (o[i].kind != MPROC_WAIT_QUEUE) continue;
      br[j] = (bridge){.q = o[i].u.queue, .efd = efd, .stop = &stop};
      if (pthread_create(&br[j].th, NULL, bridge_main, &br[j]) != 0) {
        rc = -EAGAIN;
        goto out;
      }
      br[j++].started = 1;
    }
  }
  for (;;) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
      if (o[i].kind != MPROC_WAIT_QUEUE) {
        pf[k].fd = o[i].kind == MPROC_WAIT_FD ? o[i].u.fd : mproc__conn_fd(o[i].u.conn);
        pf[k].events = POLLIN;
        k++;
      }
    if (efd >= 0) {
      pf[k].fd = efd;
      pf[k].events = POLLIN;
      k++;
    }
    int r = poll(pf, k, mproc__deadline_ms(dl));
    if (r < 0 && errno != EINTR) {
      rc = -errno;
      goto out;
    }
    if (r > 0 || mproc__deadline_passed(dl)) break;
  }
  rc = 0;
out:
  atomic_store(&stop, 1);
  if (br) {
    for (size_t j = 0; j < nq; j++)
      if (br[j].started) mproc__ec_kick(mproc__queue_get_ec(br[j].q));
    for (size_t j = 0; j < nq; j++)
      if (br[j].started) pthread_join(br[j].th, NULL);
    free(br);
  }
  if (efd >= 0) close(efd);
  if (rc == 0) rc = scan(o, n, pf);
  free(pf);
  return rc;
}
