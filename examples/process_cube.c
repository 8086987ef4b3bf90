/*
 * process_cube.c - C twin of seed 001's first program: five processes each
 * compute x*x*x and print their pid and name.
 *
 *   Python                                   mproc
 *   Process(target=cube, args=(value,))      mproc_process_create(&p, cube, &x, &opts)
 *   process.run()                            mproc_process_run(p)   (in the caller)
 *   process.start()                          mproc_process_start(p)
 *   current_process().name                   mproc_current_name()
 *
 * First each process's run() is called in the main process (the seed's
 * "just change start to run" variant: every line says MainProcess), then
 * the same five are started. Like the seed, the program never joins them:
 * at exit mproc joins non-daemon children, as Python does.
 */
#include <mproc.h>
#include <stdio.h>
#include <unistd.h>

static int cube(void *arg) {
  int x = *(const int *)arg;
  int value = x * x * x;
  printf("Process ID: %d Process Name: %s x: %d value: %d\n", (int)getpid(),
         mproc_current_name(), x, value);
  fflush(stdout);
  return 0;
}

int main(void) {
  int values[] = {1, 2, 3, 4, 5};
  mproc_process_t *procs[5];
  printf("Main process ID: %d\n", (int)getpid());
  for (int i = 0; i < 5; i++) {
    /* arg_size copies the int into the child: no lifetime worries. */
    mproc_process_opts o = {.arg_size = sizeof values[i]};
    int rc = mproc_process_create(&procs[i], cube, &values[i], &o);
    if (rc) {
      fprintf(stderr, "create: %s\n", mproc_strerror(rc));
      return 1;
    }
  }
  printf("-- run() in the main process\n");
  for (int i = 0; i < 5; i++) mproc_process_run(procs[i]);
  printf("-- start()\n");
  fflush(stdout);
  for (int i = 0; i < 5; i++) {
    int rc = mproc_process_start(procs[i]);
    if (rc) {
      fprintf(stderr, "start: %s\n", mproc_strerror(rc));
      return 1;
    }
  }
  /* No join: returning from main joins the children (exit processing). */
  for (int i = 0; i < 5; i++) mproc_process_destroy(procs[i]);
  return 0;
}
