/*
 * mproc-manager - run a manager server (Python's BaseManager.serve_forever).
 *
 *   mproc-manager --listen ADDRESS [--authkey-file FILE] [--max-connections N]
 *                 [--max-objects N] [--max-message BYTES] [--frame-timeout SEC]
 *
 * ADDRESS is unix:/path, unix:@name or tcp:HOST:PORT (port 0 = any free
 * port). The authkey is the file's bytes (one trailing newline is dropped);
 * it is required for TCP. Prints "listening on ADDRESS" (the real port for
 * port 0) once it accepts clients, and serves until a client with the key
 * asks it to shut down, or SIGTERM/SIGINT. Exit status 0 after a clean
 * shutdown, 1 on an error, 2 on bad usage.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mproc.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: mproc-manager --listen ADDRESS [--authkey-file FILE]\n"
          "                     [--max-connections N] [--max-objects N]\n"
          "                     [--max-message BYTES] [--frame-timeout SEC]\n"
          "ADDRESS: unix:/path | unix:@name | tcp:HOST:PORT (authkey required)\n");
}

static void ready(const char *address, void *arg) {
  (void)arg;
  printf("listening on %s\n", address);
  fflush(stdout);
}

static int read_key(const char *path, unsigned char *key, size_t cap, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return -errno;
  size_t n = fread(key, 1, cap + 1, f);
  fclose(f);
  if (n > 0 && key[n - 1] == '\n') n--;
  if (n == 0 || n > cap) return -EINVAL;
  *len = n;
  return 0;
}

static int num(const char *s, long long lo, long long hi, long long *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || *end || end == s || v < lo || v > hi) return -1;
  *out = v;
  return 0;
}

int main(int argc, char **argv) {
  mproc_manager_opts o = {0};
  unsigned char key[1024];
  size_t klen = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    long long x;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      usage(stdout);
      return 0;
    }
    if (!v) {
      usage(stderr);
      return 2;
    }
    i++;
    if (!strcmp(a, "--listen")) {
      o.address = v;
    } else if (!strcmp(a, "--authkey-file")) {
      int rc = read_key(v, key, sizeof key, &klen);
      if (rc) {
        fprintf(stderr, "mproc-manager: cannot use authkey file %s: %s\n", v,
                rc == -EINVAL ? "empty or over 1024 bytes" : mproc_strerror(rc));
        return 1;
      }
      o.authkey = key;
      o.authkey_len = klen;
    } else if (!strcmp(a, "--max-connections") && !num(v, 1, 1 << 20, &x)) {
      o.max_connections = (int)x;
    } else if (!strcmp(a, "--max-objects") && !num(v, 1, 1 << 30, &x)) {
      o.max_objects = (int)x;
    } else if (!strcmp(a, "--max-message") && !num(v, 64, (long long)UINT32_MAX - 64, &x)) {
      o.max_message = (size_t)x;
    } else if (!strcmp(a, "--frame-timeout") && !num(v, 1, 86400, &x)) {
      o.frame_timeout = (double)x;
    } else {
      usage(stderr);
      return 2;
    }
  }
  if (!o.address) {
    usage(stderr);
    return 2;
  }
  int rc = mproc_manager_serve(&o, ready, NULL);
  if (rc) {
    fprintf(stderr, "mproc-manager: %s: %s\n", o.address,
            rc == -EINVAL && !o.authkey ? "invalid address, or TCP without --authkey-file"
                                        : mproc_strerror(rc));
    return 1;
  }
  return 0;
}
