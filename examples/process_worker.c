/*
 * process_worker.c - C twin of seed 004's two ways to make a process.
 *
 * 1. A target function with arguments:
 *      Process(target=worker, args=("A",), kwargs={"duration": 1})
 *    -> a struct of the arguments, copied into the child with arg_size.
 * 2. Subclassing Process and overriding run():
 *      class MyProcess(Process): def run(self): ...
 *    -> a user struct that embeds the process handle, and a "run" target
 *       that receives the struct: the same power, C-shaped.
 */
#include <mproc.h>
#include <stdio.h>
#include <unistd.h>

/* ---- 1. target + arguments ---- */

typedef struct worker_args {
  char name[16];   /* the worker's label */
  double duration; /* seconds to work */
} worker_args;

static int worker(void *arg) {
  const worker_args *a = arg;
  printf("Child process %s started, PID=%d\n", a->name, (int)getpid());
  fflush(stdout);
  usleep((useconds_t)(a->duration * 1e6));
  printf("Child process %s finished\n", a->name);
  fflush(stdout);
  return 0;
}

/* ---- 2. the subclass idiom ---- */

typedef struct my_process {
  mproc_process_t *proc; /* the "base class" */
  char name[16];         /* self.name */
} my_process;

static int my_process_run(void *self_) {
  my_process *self = self_; /* the child's copy of the object (fork) */
  printf("[%s] running in PID %d\n", self->name, (int)getpid());
  fflush(stdout);
  sleep(1);
  printf("[%s] finished\n", self->name);
  fflush(stdout);
  return 0;
}

static int my_process_init(my_process *self, const char *name) {
  snprintf(self->name, sizeof self->name, "%s", name);
  /* The name is also the process's name, as `self.name = name` does. */
  mproc_process_opts o = {.name = self->name};
  return mproc_process_create(&self->proc, my_process_run, self, &o);
}

int main(void) {
  printf("Main process PID=%d\n", (int)getpid());
  fflush(stdout);
  worker_args a = {.name = "A", .duration = 1.0};
  mproc_process_t *p;
  mproc_process_create(&p, worker, &a, &(mproc_process_opts){.arg_size = sizeof a});
  mproc_process_start(p);
  mproc_process_join(p, -1); /* wait for the child */
  mproc_process_destroy(p);
  printf("Main process finished\n");
  fflush(stdout);

  my_process p1, p2;
  my_process_init(&p1, "P1");
  my_process_init(&p2, "P2");
  mproc_process_start(p1.proc);
  mproc_process_start(p2.proc);
  mproc_process_join(p1.proc, -1);
  mproc_process_join(p2.proc, -1);
  printf("All child processes finished (%s, %s)\n", mproc_process_name(p1.proc),
         mproc_process_name(p2.proc));
  mproc_process_destroy(p1.proc);
  mproc_process_destroy(p2.proc);
  return 0;
}
