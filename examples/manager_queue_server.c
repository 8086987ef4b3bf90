/*
 * manager_queue_server.c - a manager serving a job queue over TCP with an
 * authkey (Python's BaseManager(address=('127.0.0.1', port),
 * authkey=...).get_server().serve_forever()); its clients are
 * manager_queue_put.c and manager_queue_get.c.
 *
 *   manager_queue_server tcp:127.0.0.1:PORT KEYFILE   serve until shut down
 *   manager_queue_server                              the demo: write a key
 *       file, run this server (port 0), then the putter and the getter
 *       against it, and wait for all three.
 */
#include <errno.h>
#include <limits.h>
#include <mproc.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static void ready(const char *address, void *arg) {
  (void)arg;
  printf("server: listening on %s\n", address);
  fflush(stdout);
}

static int serve(const char *address, const char *keyfile) {
  char key[256];
  FILE *f = fopen(keyfile, "r");
  if (!f) return 1;
  size_t n = fread(key, 1, sizeof key, f);
  fclose(f);
  while (n > 0 && key[n - 1] == '\n') n--;
  mproc_manager_opts o = {.address = address, .authkey = key, .authkey_len = n};
  int rc = mproc_manager_serve(&o, ready, NULL);
  if (rc) {
    fprintf(stderr, "server: %s\n", mproc_strerror(rc));
    return 1;
  }
  printf("server: shut down cleanly\n");
  return 0;
}

/* Path of a program next to this one. */
static void sibling(char *out, size_t cap, const char *name) {
  char self[PATH_MAX - 64];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  self[n > 0 ? n : 0] = 0;
  char *slash = strrchr(self, '/');
  if (slash) *slash = 0;
  snprintf(out, cap, "%s/%s", self, name);
}

static pid_t run(char *const argv[], int out_fd) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  if (out_fd >= 0) posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
  pid_t pid;
  int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  return rc ? -1 : pid;
}

static int demo(void) {
  /* A fresh random key, shared with the clients through a file. */
  unsigned char raw[16];
  if (getrandom(raw, sizeof raw, 0) != sizeof raw) return 1;
  FILE *f = fopen("authkey", "w");
  if (!f) return 1;
  for (size_t i = 0; i < sizeof raw; i++) fprintf(f, "%02x", raw[i]);
  fprintf(f, "\n");
  fclose(f);

  char self[PATH_MAX], put[PATH_MAX], get[PATH_MAX];
  sibling(self, sizeof self, "manager_queue_server");
  sibling(put, sizeof put, "manager_queue_put");
  sibling(get, sizeof get, "manager_queue_get");
  /* The server tells us its port on its first line. */
  int pfd[2];
  if (pipe(pfd)) return 1;
  char *sargv[] = {self, "tcp:127.0.0.1:0", "authkey", NULL};
  pid_t srv = run(sargv, pfd[1]);
  close(pfd[1]);
  if (srv < 0) return 1;
  FILE *sout = fdopen(pfd[0], "r");
  char line[512], addr[256] = "";
  if (!fgets(line, sizeof line, sout) || sscanf(line, "server: listening on %255s", addr) != 1) {
    fprintf(stderr, "demo: the server did not start\n");
    kill(srv, SIGTERM);
    waitpid(srv, NULL, 0);
    return 1;
  }
  fputs(line, stdout);
  fflush(stdout);
  char *pargv[] = {put, addr, "authkey", NULL}, *gargv[] = {get, addr, "authkey", NULL};
  pid_t getter = run(gargv, -1), putter = run(pargv, -1);
  int st, bad = 0;
  if (putter < 0 || waitpid(putter, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st)) bad = 1;
  if (getter < 0 || waitpid(getter, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st)) bad = 1;
  /* The getter shut the server down; relay its last words. */
  while (fgets(line, sizeof line, sout)) fputs(line, stdout);
  fclose(sout);
  if (waitpid(srv, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st)) bad = 1;
  printf("demo: %s\n", bad ? "FAILED" : "all three programs exited cleanly");
  return bad;
}

int main(int argc, char **argv) {
  if (argc == 3) return serve(argv[1], argv[2]);
  if (argc == 1) return demo();
  fprintf(stderr, "usage: %s [tcp:HOST:PORT KEYFILE]\n", argv[0]);
  return 2;
}
