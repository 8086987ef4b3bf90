/*
 * manager_queue_get.c - take jobs from a remote manager's queue until
 * "STOP", then ask the server to shut down (any client holding the authkey
 * may).
 *
 *   manager_queue_get tcp:HOST:PORT KEYFILE
 *   manager_queue_get                         run the whole demo
 */
#include <limits.h>
#include <mproc.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static size_t read_key(const char *path, char *key, size_t cap) {
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  size_t n = fread(key, 1, cap, f);
  fclose(f);
  while (n > 0 && key[n - 1] == '\n') n--;
  return n;
}

int main(int argc, char **argv) {
  if (argc == 1) {
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 32);
    self[n > 0 ? n : 0] = 0;
    char *slash = strrchr(self, '/');
    strcpy(slash ? slash + 1 : self, "manager_queue_server");
    execl(self, self, (char *)NULL);
    perror("exec manager_queue_server");
    return 1;
  }
  if (argc != 3) return 2;
  char key[256];
  size_t klen = read_key(argv[2], key, sizeof key);
  mproc_manager_t *m;
  mproc_mqueue_t *q;
  int rc = mproc_manager_connect(&m, argv[1], key, klen, 10);
  if (rc == 0) rc = mproc_manager_queue(m, "jobs", 0, &q);
  if (rc) {
    fprintf(stderr, "get: %s\n", mproc_strerror(rc));
    return 1;
  }
  for (;;) {
    char job[64];
    size_t len;
    /* A generous timeout: never hang forever if the putter died. */
    if ((rc = mproc_mqueue_get(q, job, sizeof job - 1, &len, 60))) break;
    job[len] = 0;
    if (strcmp(job, "STOP") == 0) break;
    printf("got: %s\n", job);
    fflush(stdout);
  }
  mproc_proxy_destroy(q);
  if (!rc) {
    rc = mproc_manager_shutdown(m);
    printf("get: asked the server to shut down\n");
  }
  mproc_manager_destroy(m);
  if (rc) fprintf(stderr, "get: %s\n", mproc_strerror(rc));
  return rc ? 1 : 0;
}
