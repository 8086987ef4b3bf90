/*
 * listener_client.c - a Client with an authkey, talking to the separate
 * program listener_server (see there for the protocol).
 *
 *   listener_client ADDRESS   connect to a server at ADDRESS
 *   listener_client           demo: start `listener_server ADDRESS` (the
 *                             program next to this one) on a fresh Unix
 *                             socket, then connect to it
 *
 * It first shows that a wrong key is refused (EAUTH on this side, and the
 * server reports the rejection), then pings, sends a 1 MiB message and asks
 * the server to shut down.
 */
#include <libgen.h>
#include <limits.h>
#include <mproc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *authkey(void) {
  const char *k = getenv("MPROC_EXAMPLE_AUTHKEY");
  return k && *k ? k : "mproc example key";
}

static pid_t start_sibling(const char *name, const char *arg) {
  char self[PATH_MAX], path[PATH_MAX + 64];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return -1;
  self[n] = 0;
  snprintf(path, sizeof path, "%s/%s", dirname(self), name);
  pid_t pid = fork();
  if (pid == 0) {
    execl(path, name, arg, (char *)NULL);
    perror("exec");
    _exit(127);
  }
  return pid;
}

/* Connect, retrying while the server is still starting (up to 20 s). */
static int connect_retry(mproc_conn_t **c, const char *addr, const mproc_conn_opts *o) {
  for (int i = 0;; i++) {
    int rc = mproc_client_connect(c, addr, o);
    if ((rc != -ENOENT && rc != -ECONNREFUSED) || i >= 400) return rc;
    usleep(50000);
  }
}

static int request(mproc_conn_t *c, const void *msg, size_t len, char *reply, size_t cap) {
  size_t n;
  int rc = mproc_conn_send(c, msg, len);
  if (rc == 0) rc = mproc_conn_recv(c, reply, cap - 1, &n, 30);
  if (rc) {
    printf("client: request failed: %s\n", mproc_err_name(rc));
    return rc;
  }
  reply[n] = 0;
  return 0;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  char addr[128];
  pid_t server = 0;
  if (argc > 1) {
    snprintf(addr, sizeof addr, "%s", argv[1]);
  } else {
    snprintf(addr, sizeof addr, "unix:/tmp/mproc-listener-c%d.sock", (int)getpid());
    server = start_sibling("listener_server", addr);
  }
  mproc_conn_t *c;
  mproc_conn_opts bad = {.authkey = "not the key", .authkey_len = 11};
  int rc = connect_retry(&c, addr, &bad);
  printf("client: wrong key -> %s\n", rc == 0 ? "accepted?!" : mproc_err_name(rc));
  if (rc == 0) return 1;
  mproc_conn_opts o = {.authkey = authkey(), .authkey_len = strlen(authkey())};
  rc = connect_retry(&c, addr, &o);
  if (rc) {
    printf("client: connect: %s\n", mproc_err_name(rc));
    return 1;
  }
  printf("client: connected with the right key\n");
  char reply[64];
  for (int i = 1; i <= 3; i++) {
    char ping[16];
    snprintf(ping, sizeof ping, "ping %d", i);
    if (request(c, ping, strlen(ping), reply, sizeof reply)) return 1;
    printf("client: %s -> %s\n", ping, reply);
  }
  size_t big = (size_t)1 << 20;
  char *blob = calloc(1, big);
  if (!blob || request(c, blob, big, reply, sizeof reply)) return 1;
  free(blob);
  printf("client: 1 MiB message -> %s\n", reply);
  if (request(c, "shutdown", 8, reply, sizeof reply)) return 1;
  printf("client: shutdown -> %s\n", reply);
  mproc_conn_destroy(c);
  if (server > 0) {
    int st;
    waitpid(server, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) return 1;
  }
  return 0;
}
