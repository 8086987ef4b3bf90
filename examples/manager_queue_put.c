/*
 * manager_queue_put.c - put jobs on a remote manager's queue (Python:
 * BaseManager.register('get_queue'); m.connect(); q.put(job)).
 *
 *   manager_queue_put tcp:HOST:PORT KEYFILE   put job-0..job-4, then "STOP"
 *   manager_queue_put                         run the whole demo (see
 *                                             manager_queue_server.c)
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
  if (argc == 1) { /* the demo lives in the server program */
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
    fprintf(stderr, "put: %s\n", mproc_strerror(rc));
    return 1;
  }
  for (int i = 0; i < 5 && !rc; i++) {
    char job[32];
    snprintf(job, sizeof job, "job-%d", i);
    rc = mproc_mqueue_put(q, job, strlen(job), -1);
    printf("put: %s\n", job);
    fflush(stdout);
  }
  if (!rc) rc = mproc_mqueue_put(q, "STOP", 4, -1);
  mproc_proxy_destroy(q);
  mproc_manager_destroy(m);
  return rc ? 1 : 0;
}
