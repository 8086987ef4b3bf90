/*
 * manager_list.c - C twin of seed 001's Manager example:
 *
 *   m = Manager(); liste = m.list()
 *   p1 = Process(name='worker1', target=worker, args=(liste, 30))
 *   p2 = Process(name='worker2', target=worker, args=(liste, 70))
 *   ... each worker appends x and prints the list; then the final list.
 *
 * The list lives in a manager server process; the workers reach it through
 * the proxy they inherit (a forked child opens its own connection on first
 * use). mproc_list_* calls are the same as for a heap list.
 */
#include <mproc.h>
#include <stdio.h>
#include <string.h>

typedef struct job {
  mproc_list_t *liste; /* proxy, passed by value as in Python's args */
  int x;
} job;

/* Print the list as Python does: [30, 70]. */
static void print_list(const char *prefix, mproc_list_t *l) {
  mproc_blob *items;
  size_t n;
  if (mproc_list_snapshot(l, &items, &n) != 0) return;
  printf("%s[", prefix);
  for (size_t i = 0; i < n; i++) printf("%s%s", i ? ", " : "", (char *)items[i].data);
  printf("]\n");
  fflush(stdout);
  mproc_blobs_free(items);
}

static int worker(void *arg) {
  job *j = arg;
  char s[16];
  snprintf(s, sizeof s, "%d", j->x);
  if (mproc_list_append(j->liste, s, strlen(s)) != 0) return 1;
  char prefix[64];
  snprintf(prefix, sizeof prefix, "list by:  %s ", mproc_current_name());
  print_list(prefix, j->liste);
  return 0;
}

int main(void) {
  mproc_manager_t *m;
  mproc_list_t *liste;
  int rc = mproc_manager_start(&m, NULL);
  if (rc == 0) rc = mproc_manager_list(m, "liste", &liste);
  if (rc) {
    fprintf(stderr, "manager: %s\n", mproc_strerror(rc));
    return 1;
  }
  job j1 = {liste, 30}, j2 = {liste, 70};
  mproc_process_opts o1 = {.name = "worker1"}, o2 = {.name = "worker2"};
  mproc_process_t *p1, *p2;
  if (mproc_process_create(&p1, worker, &j1, &o1) || mproc_process_create(&p2, worker, &j2, &o2) ||
      mproc_process_start(p1) || mproc_process_start(p2))
    return 1;
  mproc_process_join(p1, -1);
  mproc_process_join(p2, -1);
  int c1 = -1, c2 = -1;
  mproc_process_exitcode(p1, &c1);
  mproc_process_exitcode(p2, &c2);
  print_list("final list:  ", liste);
  mproc_process_destroy(p1);
  mproc_process_destroy(p2);
  mproc_list_destroy(liste);
  mproc_manager_destroy(m);
  return c1 || c2;
}
