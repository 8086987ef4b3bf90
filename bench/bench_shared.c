/*
 * bench_shared.c - shared containers and the manager against Python.
 *
 * Figures (ops/s over two processes working at once; each line measured in
 * this one run):
 *  1. dict set+get: each process sets and reads back its own keys.
 *     mproc = the shared-heap dict; raw = the same work on a private C hash
 *     table in each process (no sharing: the ceiling); python =
 *     Manager().dict() (bench/py/shared.py).
 *  2. the same through a manager dict proxy (mproc_manager_dict) vs Python.
 *  3. list append: heap list / private C array / Manager().list().
 *  4. list append through a manager list proxy vs Python.
 * Every figure is the best of 3 runs (the machine may be busy).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "mproc.h"

enum { HEAP_N = 200000, MGR_N = 20000, PY_N = 3000 };

/* ---- raw baselines: private to one process ---- */

typedef struct rent {
  struct rent *next;
  size_t klen, vlen;
  char data[];
} rent;

static unsigned long fnv(const char *s, size_t n) {
  unsigned long h = 1469598103934665603UL;
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211UL;
  return h;
}

static void raw_dict(int wid, int n) {
  size_t cap = 1 << 20;
  rent **t = calloc(cap, sizeof *t);
  for (int i = 0; i < n; i++) {
    char k[32], v[32], out[32];
    size_t kl = (size_t)snprintf(k, sizeof k, "k%d-%d", wid, i);
    size_t vl = (size_t)snprintf(v, sizeof v, "value-%d", i);
    unsigned long h = fnv(k, kl) & (cap - 1);
    rent *e = malloc(sizeof *e + kl + vl);
    e->klen = kl;
    e->vlen = vl;
    memcpy(e->data, k, kl);
    memcpy(e->data + kl, v, vl);
    e->next = t[h];
    t[h] = e;
    for (rent *x = t[h]; x; x = x->next)
      if (x->klen == kl && !memcmp(x->data, k, kl)) {
        memcpy(out, x->data + kl, x->vlen);
        bench_keep(out);
        break;
      }
  }
  bench_keep(t);
}

static void raw_list(int wid, int n) {
  size_t cap = 16, len = 0;
  char **a = malloc(cap * sizeof *a);
  for (int i = 0; i < n; i++) {
    char it[32];
    size_t l = (size_t)snprintf(it, sizeof it, "item-%d-%d", wid, i);
    if (len == cap) a = realloc(a, (cap *= 2) * sizeof *a);
    a[len] = malloc(l);
    memcpy(a[len++], it, l);
  }
  bench_keep(a);
}

/* ---- mproc work (dict/list handles: heap containers or proxies) ---- */

static void do_dict(mproc_dict_t *d, int wid, int n) {
  for (int i = 0; i < n; i++) {
    char k[32], v[32], out[32];
    size_t vl;
    int kl = snprintf(k, sizeof k, "k%d-%d", wid, i);
    int l = snprintf(v, sizeof v, "value-%d", i);
    if (mproc_dict_set(d, k, (size_t)kl, v, (size_t)l) ||
        mproc_dict_get(d, k, (size_t)kl, out, sizeof out, &vl))
      _exit(1);
  }
}

static void do_list(mproc_list_t *lst, int wid, int n) {
  for (int i = 0; i < n; i++) {
    char it[32];
    int l = snprintf(it, sizeof it, "item-%d-%d", wid, i);
    if (mproc_list_append(lst, it, (size_t)l)) _exit(1);
  }
}

typedef enum { RAW_DICT, RAW_LIST, DICT, LIST } work_t;

static double two_procs_once(work_t w, void *obj, int n);

/* Best of 3. */
static double two_procs(work_t w, void *obj, int n) {
  double best = -1;
  for (int i = 0; i < 3; i++) {
    if (w == DICT) mproc_dict_clear(obj);
    if (w == LIST) mproc_list_clear(obj);
    double v = two_procs_once(w, obj, n);
    if (v > best) best = v;
  }
  return best;
}

static double best_python(const char *args) {
  double best = -1;
  for (int i = 0; i < 3; i++) {
    double v = bench_python("shared.py", args);
    if (v > best) best = v;
  }
  return best;
}

/* Two processes do n ops each, released together; returns total ops/s. */
static double two_procs_once(work_t w, void *obj, int n) {
  int go[2], ready[2];
  if (pipe(go) || pipe(ready)) return -1;
  pid_t kids[2];
  for (int k = 0; k < 2; k++) {
    kids[k] = fork();
    if (kids[k] == 0) {
      close(go[1]);
      char c = 'r';
      /* Warm up (a proxy opens its connection here), then wait. */
      if (w == DICT) mproc_dict_contains(obj, "warm", 4);
      if (w == LIST) mproc_list_len(obj, &(size_t){0});
      if (write(ready[1], &c, 1) != 1 || read(go[0], &c, 1) != 1) _exit(1);
      switch (w) {
        case RAW_DICT: raw_dict(k, n); break;
        case RAW_LIST: raw_list(k, n); break;
        case DICT: do_dict(obj, k, n); break;
        case LIST: do_list(obj, k, n); break;
      }
      _exit(0);
    }
  }
  char c[2];
  if (read(ready[0], c, 1) != 1 || read(ready[0], c, 1) != 1) return -1;
  double t0 = bench_now();
  if (write(go[1], "gg", 2) != 2) return -1;
  int ok = 1;
  for (int k = 0; k < 2; k++) {
    int st;
    waitpid(kids[k], &st, 0);
    ok &= WIFEXITED(st) && WEXITSTATUS(st) == 0;
  }
  double dt = bench_now() - t0;
  close(go[0]);
  close(go[1]);
  close(ready[0]);
  close(ready[1]);
  return ok ? 2.0 * n / dt : -1;
}

int main(void) {
  mproc_init(&(mproc_init_opts){.heap_size = (size_t)4 << 30});
  char args[64];
  snprintf(args, sizeof args, "dict %d", PY_N);
  double py_dict = best_python(args);
  snprintf(args, sizeof args, "list %d", PY_N);
  double py_list = best_python(args);

  mproc_dict_t *d;
  mproc_list_t *l;
  mproc_dict_create(&d, NULL);
  mproc_list_create(&l, NULL);
  double heap_dict = two_procs(DICT, d, HEAP_N);
  double raw_d = two_procs(RAW_DICT, NULL, HEAP_N);
  double heap_list = two_procs(LIST, l, HEAP_N);
  double raw_l = two_procs(RAW_LIST, NULL, HEAP_N);
  mproc_dict_destroy(d);
  mproc_list_destroy(l);

  mproc_manager_t *m;
  double mgr_dict = -1, mgr_list = -1;
  if (mproc_manager_start(&m, NULL) == 0) {
    mproc_manager_dict(m, "d", &d);
    mproc_manager_list(m, "l", &l);
    mgr_dict = two_procs(DICT, d, MGR_N);
    mgr_list = two_procs(LIST, l, MGR_N);
    mproc_dict_destroy(d);
    mproc_list_destroy(l);
    mproc_manager_destroy(m);
  }
  bench_report("dict set+get 2 procs (heap dict)", "ops/s", 1, heap_dict, raw_d, py_dict);
  bench_report("dict set+get 2 procs (manager proxy)", "ops/s", 1, mgr_dict, -1, py_dict);
  bench_report("list append 2 procs (heap list)", "ops/s", 1, heap_list, raw_l, py_list);
  bench_report("list append 2 procs (manager proxy)", "ops/s", 1, mgr_list, -1, py_list);
  return 0;
}
