/* pool_methods.c - the same Pool.map with each start method: fork,
 * forkserver and spawn (Python's get_context(method).Pool()). Spawned
 * workers are fresh execs of this program, so main() registers the task
 * function by name and calls mproc_spawn_main() before anything else; a
 * function that is not registered is refused at the call. A method the
 * environment cannot provide is reported as unavailable (the output check
 * then fails; under valgrind only the memory checks matter). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "mproc.h"

static int square(const void *in, size_t n, void *out, mproc_task_ctx *ctx) {
  (void)n;
  (void)ctx;
  long x = *(const long *)in;
  *(long *)out = x * x;
  return 0;
}

/* Reports the worker's process name: it tells how the worker started. */
static int worker_name(const void *in, size_t n, void *out, mproc_task_ctx *ctx) {
  (void)in;
  (void)n;
  (void)out;
  const char *name = mproc_current_name();
  return mproc_task_return(ctx, name, strlen(name) + 1);
}

static int not_registered(const void *in, size_t n, void *out, mproc_task_ctx *ctx) {
  (void)in;
  (void)n;
  (void)out;
  (void)ctx;
  return 0;
}

int main(int argc, char **argv) {
  mproc_pool_register("square", square);
  mproc_pool_register("worker_name", worker_name);
  mproc_spawn_main(argc, argv); /* in a spawned worker: never returns */

  static const struct {
    int method;
    const char *name;
  } methods[] = {{MPROC_START_FORK, "fork"},
                 {MPROC_START_FORKSERVER, "forkserver"},
                 {MPROC_START_SPAWN, "spawn"}};
  for (int m = 0; m < 3; m++) {
    mproc_pool_opts o = {.processes = 2, .start_method = methods[m].method};
    mproc_pool_t *pool;
    int crc = mproc_pool_create(&pool, &o);
    if (crc) {
      /* e.g. under valgrind, which lacks pidfd_open (no fork server) and
       * cannot trace an exec of /proc/self/exe (no spawn) */
      printf("%-10s unavailable here: %s\n", methods[m].name, mproc_strerror(crc));
      continue;
    }
    long in[10], results[10];
    for (long i = 0; i < 10; i++) in[i] = i;
    int rc = mproc_pool_map(pool, square, in, 10, sizeof(long), results, sizeof(long), NULL);
    char wname[64] = "";
    long zero = 0;
    if (!rc) rc = mproc_pool_apply(pool, worker_name, &zero, sizeof zero, wname, sizeof wname,
                                   NULL, NULL);
    if (rc) return 1;
    printf("%-10s [", methods[m].name);
    for (int i = 0; i < 10; i++) printf("%s%ld", i ? ", " : "", results[i]);
    printf("] worker %s\n", wname);
    if (methods[m].method != MPROC_START_FORK) {
      long r;
      rc = mproc_pool_map(pool, not_registered, in, 1, sizeof(long), &r, sizeof r, NULL);
      printf("%-10s unregistered function: %s\n", methods[m].name, mproc_err_name(rc));
    }
    mproc_pool_destroy(pool);
  }
  return 0;
}
