/*
 * process_doubler.c - C twin of seed 002: a doubler run in one process per
 * number, first printing each process's pid, then its name.
 *
 *   os.getpid()                    getpid()  (or mproc_current_pid())
 *   current_process().name         mproc_current_name()
 *   for proc in procs: proc.join() mproc_process_join(procs[i], -1)
 *
 * The seed's second program creates one Process before its loop and never
 * starts it; it still takes a number in the naming sequence, so (here, in
 * one program after the five of part one) the loop's processes are named
 * Process-7 .. Process-11, exactly as Python would name them.
 */
#include <mproc.h>
#include <stdio.h>
#include <unistd.h>

static int doubler(void *arg) {
  int number = *(const int *)arg;
  int result = number * 2;
  printf("%d double to %d by process id:%d\n", number, result, (int)getpid());
  fflush(stdout);
  return 0;
}

static int doubler_named(void *arg) {
  int number = *(const int *)arg;
  int result = number * 2;
  printf("%d double to %d by process id:%s\n", number, result, mproc_current_name());
  fflush(stdout);
  return 0;
}

static int run_all(mproc_target_fn fn, const int *numbers, int n) {
  mproc_process_t *procs[8];
  for (int i = 0; i < n; i++) {
    mproc_process_opts o = {.arg_size = sizeof numbers[i]};
    int rc = mproc_process_create(&procs[i], fn, (void *)&numbers[i], &o);
    if (!rc) rc = mproc_process_start(procs[i]);
    if (rc) {
      fprintf(stderr, "%s\n", mproc_strerror(rc));
      return 1;
    }
  }
  for (int i = 0; i < n; i++) {
    mproc_process_join(procs[i], -1);
    mproc_process_destroy(procs[i]);
  }
  return 0;
}

int main(void) {
  const int numbers[] = {5, 10, 15, 20, 25};
  printf("main process id:%d\n", (int)getpid());
  printf("-- with pids\n");
  fflush(stdout);
  if (run_all(doubler, numbers, 5)) return 1;

  printf("-- with names\n");
  fflush(stdout);
  mproc_process_t *unused; /* the seed's `proc = Process(target=doubler, args=(5,))` */
  const int five = 5;
  mproc_process_create(&unused, doubler_named, (void *)&five, NULL);
  if (run_all(doubler_named, numbers, 5)) return 1;
  mproc_process_destroy(unused);
  return 0;
}
