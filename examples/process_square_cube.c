/*
 * process_square_cube.c - C twin of seed 003: a square and a cube process,
 * then two workers whose own pid equals the parent's view of it (p.pid),
 * and is_alive() false after join.
 *
 *   multiprocessing.Process(target=print_square, args=(10,))
 *        -> mproc_process_create(&p1, print_square, &ten, &(opts){.arg_size = sizeof ten})
 *   p1.pid -> mproc_process_pid(p1)      p1.is_alive() -> mproc_process_is_alive(p1)
 */
#include <mproc.h>
#include <stdio.h>
#include <unistd.h>

static int print_cube(void *arg) {
  int num = *(const int *)arg;
  printf("Cube: %d\n", num * num * num);
  return 0;
}

static int print_square(void *arg) {
  int num = *(const int *)arg;
  printf("Square: %d\n", num * num);
  return 0;
}

static int worker1(void *arg) {
  (void)arg;
  printf("ID of process running worker1: %d\n", (int)getpid());
  return 0;
}

static int worker2(void *arg) {
  (void)arg;
  printf("ID of process running worker2: %d\n", (int)getpid());
  return 0;
}

int main(void) {
  const int ten = 10;
  mproc_process_opts o = {.arg_size = sizeof ten};
  mproc_process_t *p1, *p2;

  /* creating processes */
  mproc_process_create(&p1, print_square, (void *)&ten, &o);
  mproc_process_create(&p2, print_cube, (void *)&ten, &o);
  /* starting process 1 & 2 */
  mproc_process_start(p1);
  mproc_process_start(p2);
  /* wait until process 1 & 2 are finished */
  mproc_process_join(p1, -1);
  mproc_process_join(p2, -1);
  printf("Done!\n");
  mproc_process_destroy(p1);
  mproc_process_destroy(p2);

  printf("ID of main process: %d\n", (int)getpid());
  fflush(stdout);
  mproc_process_create(&p1, worker1, NULL, NULL);
  mproc_process_create(&p2, worker2, NULL, NULL);
  mproc_process_start(p1);
  mproc_process_start(p2);
  /* process IDs as the parent sees them */
  printf("ID of process p1: %d\n", (int)mproc_process_pid(p1));
  printf("ID of process p2: %d\n", (int)mproc_process_pid(p2));
  fflush(stdout);
  mproc_process_join(p1, -1);
  mproc_process_join(p2, -1);
  printf("Both processes finished execution!\n");
  printf("Process p1 is alive: %s\n", mproc_process_is_alive(p1) ? "True" : "False");
  printf("Process p2 is alive: %s\n", mproc_process_is_alive(p2) ? "True" : "False");
  mproc_process_destroy(p1);
  mproc_process_destroy(p2);
  return 0;
}
