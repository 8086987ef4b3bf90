/*
 * pipe_hello.c - C twin of the seed's Pipe example: a child process sends
 * ["Hello", "World", None] through one end of a duplex pipe, the parent
 * receives it on the other end and prints it.
 *
 * C has no pickled lists, so the child encodes the list as the message's
 * bytes: per item a tag byte ('s' string, 'n' None), then for strings a
 * length byte and the characters. The parent decodes and prints it in
 * Python's notation.
 */
#include <mproc.h>
#include <stdio.h>
#include <string.h>

static int foo(void *arg) {
  mproc_conn_t *conn = arg;
  const char *items[] = {"Hello", "World", NULL};
  unsigned char msg[64];
  size_t n = 0;
  for (int i = 0; i < 3; i++) {
    if (!items[i]) {
      msg[n++] = 'n';
      continue;
    }
    size_t len = strlen(items[i]);
    msg[n++] = 's';
    msg[n++] = (unsigned char)len;
    memcpy(msg + n, items[i], len);
    n += len;
  }
  int rc = mproc_conn_send(conn, msg, n);
  mproc_conn_close(conn);
  return rc == 0 ? 0 : 1;
}

int main(void) {
  mproc_conn_t *parent, *child;
  int rc = mproc_pipe(&parent, &child, 1);
  if (rc) {
    fprintf(stderr, "pipe: %s\n", mproc_strerror(rc));
    return 1;
  }
  mproc_process_t *p;
  if ((rc = mproc_process_create(&p, foo, child, NULL)) || (rc = mproc_process_start(p))) {
    fprintf(stderr, "process: %s\n", mproc_strerror(rc));
    return 1;
  }
  unsigned char msg[64];
  size_t len;
  rc = mproc_conn_recv(parent, msg, sizeof msg, &len, 30);
  if (rc) {
    fprintf(stderr, "recv: %s\n", mproc_strerror(rc));
    return 1;
  }
  printf("[");
  for (size_t i = 0; i < len;) {
    if (i) printf(", ");
    if (msg[i] == 'n') {
      printf("None");
      i++;
    } else {
      size_t n = msg[i + 1];
      printf("'%.*s'", (int)n, (const char *)msg + i + 2);
      i += 2 + n;
    }
  }
  printf("]\n");
  mproc_process_join(p, -1);
  int code = -1;
  mproc_process_exitcode(p, &code);
  mproc_process_destroy(p);
  mproc_conn_destroy(parent);
  mproc_conn_destroy(child);
  return code == 0 ? 0 : 1;
}
