/*
 * process_join.c - C twin of seed 001's start/join/is_alive programs.
 *
 *   p = Process(target=sleeping)          mproc_process_create(&p, sleeping, NULL, NULL)
 *   p.start(); p.join()                   mproc_process_start(p); mproc_process_join(p, -1)
 *   p.join(timeout=3)                     mproc_process_join(p, 3.0)
 *   p.is_alive()                          mproc_process_is_alive(p)
 *
 * Three sections: with join (the parent waits), is_alive around a join with
 * a timeout, and without join (the parent goes on at once; the child's
 * lines come later, and exit processing waits for it before the program
 * ends, as in Python). The child sleeps 1 s where the seed sleeps 2.
 * Every line is flushed at once so the interleaving shows.
 */
#include <mproc.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

static void say(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  putchar('\n');
  fflush(stdout);
}

static int sleeping(void *arg) {
  (void)arg;
  say("Before sleep");
  usleep(1000 * 1000);
  say("After sleep");
  return 0;
}

static const char *py_bool(int v) { return v > 0 ? "True" : "False"; }

int main(void) {
  mproc_process_t *p;

  say("== with join");
  mproc_process_create(&p, sleeping, NULL, NULL);
  say("Before start");
  mproc_process_start(p);
  say("After start");
  mproc_process_join(p, -1);
  say("After join");
  mproc_process_destroy(p);

  say("== is_alive and join(timeout=3)");
  mproc_process_create(&p, sleeping, NULL, &(mproc_process_opts){.daemon = 0});
  say("Before start");
  mproc_process_start(p);
  say("%s", py_bool(mproc_process_is_alive(p)));
  say("After start");
  int rc = mproc_process_join(p, 3.0);
  say("After join");
  say("%s", py_bool(mproc_process_is_alive(p)));
  if (rc) say("join: %s", mproc_strerror(rc));
  mproc_process_destroy(p);

  say("== without join");
  mproc_process_create(&p, sleeping, NULL, NULL);
  say("Before start");
  mproc_process_start(p);
  say("After start");
  /* p.join() left out */
  say("After join");
  mproc_process_destroy(p); /* the child keeps running; exit joins it */
  return 0;
}
