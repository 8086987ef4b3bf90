/*
 * queue_producer_consumer.c - C twin of the seed's Queue example: a producer
 * process puts 10 random values (sleeping a random moment before each) and
 * then a stop marker; a consumer process multiplies each value by a random
 * number until it sees the marker.
 *
 * The queue lives in the shared heap, so the child processes get it by
 * pointer, as Python's get it in args. The stop marker (Python's None) is
 * an empty message. Sleeps are the seed's random() seconds divided by 10
 * (by 100 under MPROC_EXAMPLE_QUICK) to keep the run short.
 */
#include <mproc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double g_scale = 0.1;

static double rnd(void) { return drand48(); }

static int producer(void *arg) {
  mproc_queue_t *queue = arg;
  srand48((long)time(NULL) ^ (long)getpid());
  printf("Producer is running\n");
  for (int i = 0; i < 10; i++) {
    double value = rnd();
    usleep((useconds_t)(value * g_scale * 1e6));
    printf("Producer generated:  %.17g\n", value);
    if (mproc_queue_put(queue, &value, sizeof value, -1) != 0) return 1;
  }
  /* all done: the stop marker */
  if (mproc_queue_put(queue, NULL, 0, -1) != 0) return 1;
  printf("Producer finished\n");
  return 0;
}

static int consumer(void *arg) {
  mproc_queue_t *queue = arg;
  srand48((long)time(NULL) ^ ((long)getpid() << 8));
  printf("Consumer is running\n");
  for (;;) {
    double item;
    size_t len;
    int rc = mproc_queue_get(queue, &item, sizeof item, &len, -1);
    if (rc != 0) {
      fprintf(stderr, "get: %s\n", mproc_strerror(rc));
      return 1;
    }
    if (len == 0) break; /* check for stop */
    double value = rnd();
    double new_val = item * value;
    printf(">from producer: %.17g and new value: %.17g\n", item, new_val);
  }
  printf("Consumer finished\n");
  return 0;
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0); /* lines from two processes interleave whole */
  if (getenv("MPROC_EXAMPLE_QUICK")) g_scale = 0.01;
  mproc_queue_t *queue;
  int rc = mproc_queue_create(&queue, NULL);
  if (rc) {
    fprintf(stderr, "queue: %s\n", mproc_strerror(rc));
    return 1;
  }
  mproc_process_t *consumer_p, *producer_p;
  if ((rc = mproc_process_create(&consumer_p, consumer, queue, NULL)) ||
      (rc = mproc_process_start(consumer_p)) ||
      (rc = mproc_process_create(&producer_p, producer, queue, NULL)) ||
      (rc = mproc_process_start(producer_p))) {
    fprintf(stderr, "process: %s\n", mproc_strerror(rc));
    return 1;
  }
  /* wait for all processes to finish */
  mproc_process_join(producer_p, -1);
  mproc_process_join(consumer_p, -1);
  int pc = -1, cc = -1;
  mproc_process_exitcode(producer_p, &pc);
  mproc_process_exitcode(consumer_p, &cc);
  mproc_process_destroy(producer_p);
  mproc_process_destroy(consumer_p);
  mproc_queue_destroy(queue);
  return pc == 0 && cc == 0 ? 0 : 1;
}
