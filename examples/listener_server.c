/*
 * listener_server.c - a Listener with an authkey, talking to the separate
 * program listener_client (Python's multiprocessing.connection.Listener /
 * Client between two unrelated programs).
 *
 *   listener_server ADDRESS   serve at ADDRESS until a client says shutdown
 *   listener_server           demo: serve at a fresh Unix socket and start
 *                             `listener_client ADDRESS` (the program next to
 *                             this one) to talk to it
 *
 * The key comes from $MPROC_EXAMPLE_AUTHKEY (default "mproc example key").
 * Requests: "ping N" -> "pong N"; any other bytes -> "got N bytes";
 * "shutdown" -> "bye", then the server exits. A client with a wrong key is
 * rejected (EAUTH) and the server goes on accepting.
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

/* Start the sibling program `name` with one argument; returns its pid. */
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

static int serve(mproc_listener_t *l) {
  int clients = 0;
  for (;;) {
    mproc_conn_t *c;
    int rc = mproc_listener_accept(l, &c, 30);
    if (rc == -ETIMEDOUT) {
      printf("server: no client for 30 s, giving up\n");
      return 1;
    }
    if (rc) { /* a bad client was dropped: keep serving */
      printf("server: rejected a client (%s)\n", mproc_err_name(rc));
      continue;
    }
    printf("server: client %d authenticated\n", ++clients);
    int shutdown = 0;
    for (;;) {
      void *msg;
      size_t len;
      rc = mproc_conn_recv_alloc(c, &msg, &len, -1);
      if (rc == MPROC_EEOF) break;
      if (rc) {
        printf("server: recv: %s\n", mproc_err_name(rc));
        break;
      }
      char reply[64];
      if (len > 5 && len < 32 && memcmp(msg, "ping ", 5) == 0)
        snprintf(reply, sizeof reply, "pong %.*s", (int)len - 5, (char *)msg + 5);
      else if (len == 8 && memcmp(msg, "shutdown", 8) == 0)
        snprintf(reply, sizeof reply, "bye"), shutdown = 1;
      else
        snprintf(reply, sizeof reply, "got %zu bytes", len);
      free(msg);
      mproc_conn_send(c, reply, strlen(reply));
      if (shutdown) break;
    }
    mproc_conn_destroy(c);
    if (shutdown) {
      printf("server: shutdown after %d client(s)\n", clients);
      return 0;
    }
  }
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  char addr[128];
  if (argc > 1)
    snprintf(addr, sizeof addr, "%s", argv[1]);
  else
    snprintf(addr, sizeof addr, "unix:/tmp/mproc-listener-%d.sock", (int)getpid());
  mproc_conn_opts o = {.authkey = authkey(), .authkey_len = strlen(authkey())};
  mproc_listener_t *l;
  int rc = mproc_listener_create(&l, addr, &o);
  if (rc) {
    fprintf(stderr, "listen %s: %s\n", addr, mproc_strerror(rc));
    return 1;
  }
  printf("server: listening with an authkey\n");
  pid_t client = argc > 1 ? 0 : start_sibling("listener_client", mproc_listener_address(l));
  rc = serve(l);
  mproc_listener_destroy(l);
  if (client > 0) {
    int st;
    waitpid(client, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) rc = 1;
  }
  return rc;
}
