/*
 * bench_conn.c - Listener/Client over a Unix socket with an authkey:
 * handshake time (connect + two-way HMAC challenge, measured by the client)
 * and the 64-byte round trip on the authenticated connection.
 * Baselines in the same run: a raw Unix-socket connect/accept without
 * authentication and a raw Unix-socket ping-pong; Python's Listener/Client
 * with an authkey (bench/py/conn.py). Microseconds (lower is better; the
 * speed ratios are inverted so > 1 means mproc is faster).
 */
#include <mproc.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

#define NH 300
#define NR 50000
static const char KEY[] = "bench authkey";

static double mproc_handshake(const char *addr) {
  mproc_conn_opts o = {.authkey = KEY, .authkey_len = sizeof KEY - 1};
  mproc_listener_t *l;
  if (mproc_listener_create(&l, addr, &o)) return -1;
  pid_t c = fork();
  if (c == 0) {
    for (int i = 0; i < NH; i++) {
      mproc_conn_t *s;
      if (mproc_listener_accept(l, &s, 30)) _exit(1);
      mproc_conn_destroy(s);
    }
    _exit(0);
  }
  double t0 = bench_now();
  for (int i = 0; i < NH; i++) {
    mproc_conn_t *k;
    if (mproc_client_connect(&k, addr, &o)) return -1;
    mproc_conn_destroy(k);
  }
  double dt = bench_now() - t0;
  waitpid(c, NULL, 0);
  mproc_listener_destroy(l);
  return dt / NH * 1e6;
}

static double mproc_rt(const char *addr) {
  mproc_conn_opts o = {.authkey = KEY, .authkey_len = sizeof KEY - 1};
  mproc_listener_t *l;
  if (mproc_listener_create(&l, addr, &o)) return -1;
  pid_t c = fork();
  if (c == 0) {
    mproc_conn_t *s;
    if (mproc_listener_accept(l, &s, 30)) _exit(1);
    char m[64];
    size_t len;
    while (mproc_conn_recv(s, m, sizeof m, &len, -1) == 0) mproc_conn_send(s, m, len);
    _exit(0);
  }
  mproc_conn_t *k;
  if (mproc_client_connect(&k, addr, &o)) return -1;
  char m[64] = {0};
  size_t len;
  for (int i = 0; i < 1000; i++) {
    mproc_conn_send(k, m, 64);
    mproc_conn_recv(k, m, 64, &len, -1);
  }
  double t0 = bench_now();
  for (int i = 0; i < NR; i++) {
    mproc_conn_send(k, m, 64);
    mproc_conn_recv(k, m, 64, &len, -1);
  }
  double dt = bench_now() - t0;
  mproc_conn_destroy(k);
  waitpid(c, NULL, 0);
  mproc_listener_destroy(l);
  return dt / NR * 1e6;
}

static int raw_listen(const char *path, struct sockaddr_un *un) {
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  *un = (struct sockaddr_un){.sun_family = AF_UNIX};
  snprintf(un->sun_path, sizeof un->sun_path, "%s", path);
  unlink(path);
  bind(fd, (struct sockaddr *)un, sizeof *un);
  listen(fd, 128);
  return fd;
}

static double raw_connect_time(const char *path) {
  struct sockaddr_un un;
  int lfd = raw_listen(path, &un);
  pid_t c = fork();
  if (c == 0) {
    for (int i = 0; i < NH; i++) {
      int s = accept(lfd, NULL, NULL);
      char b;
      if (read(s, &b, 1) != 1) _exit(1); /* one byte: the server saw it */
      if (write(s, &b, 1) != 1) _exit(1);
      close(s);
    }
    _exit(0);
  }
  double t0 = bench_now();
  for (int i = 0; i < NH; i++) {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    char b = 1;
    if (connect(fd, (struct sockaddr *)&un, sizeof un) || write(fd, &b, 1) != 1 ||
        read(fd, &b, 1) != 1)
      return -1;
    close(fd);
  }
  double dt = bench_now() - t0;
  waitpid(c, NULL, 0);
  close(lfd);
  unlink(path);
  return dt / NH * 1e6;
}

static double raw_rt(const char *path) {
  struct sockaddr_un un;
  int lfd = raw_listen(path, &un);
  pid_t c = fork();
  if (c == 0) {
    int s = accept(lfd, NULL, NULL);
    char m[64];
    while (read(s, m, 64) == 64)
      if (write(s, m, 64) != 64) break;
    _exit(0);
  }
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  if (connect(fd, (struct sockaddr *)&un, sizeof un)) return -1;
  char m[64] = {0};
  double t0 = bench_now();
  for (int i = 0; i < NR; i++)
    if (write(fd, m, 64) != 64 || read(fd, m, 64) != 64) return -1;
  double dt = bench_now() - t0;
  close(fd);
  waitpid(c, NULL, 0);
  close(lfd);
  unlink(path);
  return dt / NR * 1e6;
}

int main(void) {
  char addr[128], path[96], args[200];
  snprintf(path, sizeof path, "/tmp/mproc-bench-%d.sock", (int)getpid());
  snprintf(addr, sizeof addr, "unix:%s", path);
  double mh = mproc_handshake(addr);
  double rh = raw_connect_time(path);
  snprintf(args, sizeof args, "handshake %s 200", path);
  double ph = bench_python("conn.py", args);
  bench_report("conn_unix_authkey_handshake", "us", 0, mh, rh, ph);
  double mr = mproc_rt(addr);
  double rr = raw_rt(path);
  snprintf(args, sizeof args, "rt %s 20000", path);
  double pr = bench_python("conn.py", args);
  bench_report("conn_unix_authkey_roundtrip_64B", "us", 0, mr, rr, pr);
  return 0;
}
