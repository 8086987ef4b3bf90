/* pool_dummy_dataset.c - generate a table of fake people with apply_async
 * (seed 001 uses Faker; here a small built-in faker): one task per record,
 * then collect every AsyncResult, print the count and a few rows. */
#include <stdio.h>
#include <string.h>

#include "mproc.h"

typedef struct record {
  char name[32];
  char city[24];
  char plate[12];
  char job[32];
} record;

static const char *first[] = {"Alice", "Bruno", "Chen", "Dana", "Emeka", "Farah", "Goran", "Hana",
                              "Ivan", "Julia", "Kenji", "Lena", "Mateo", "Nadia", "Omar", "Priya"};
static const char *last[] = {"Smith", "Garcia", "Wang", "Okafor", "Novak", "Silva", "Kim",
                             "Müller", "Rossi", "Haddad", "Sato", "Jensen"};
static const char *cities[] = {"Lisbon", "Osaka", "Lagos", "Lyon", "Austin", "Porto", "Gdansk",
                               "Quito", "Tampere", "Cairo", "Leeds", "Perth"};
static const char *jobs[] = {"Engineer", "Teacher", "Nurse", "Chef", "Pilot", "Librarian",
                             "Architect", "Plumber", "Translator", "Geologist"};
#define PICK(a, r) a[(r) % (sizeof a / sizeof a[0])]

/* xorshift seeded by the task index: reproducible, different per record */
static unsigned long next_rand(unsigned long *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

static int get_a_dummy_record(const void *in, size_t n, void *out, mproc_task_ctx *ctx) {
  (void)n;
  (void)out;
  unsigned long s = 0x9e3779b97f4a7c15ul ^ (*(const unsigned long *)in * 0xbf58476d1ce4e5b9ul);
  if (!s) s = 1;
  record r;
  memset(&r, 0, sizeof r);
  snprintf(r.name, sizeof r.name, "%s %s", PICK(first, next_rand(&s)), PICK(last, next_rand(&s)));
  snprintf(r.city, sizeof r.city, "%s", PICK(cities, next_rand(&s)));
  snprintf(r.plate, sizeof r.plate, "%c%c%c-%04lu", (char)('A' + next_rand(&s) % 26),
           (char)('A' + next_rand(&s) % 26), (char)('A' + next_rand(&s) % 26),
           next_rand(&s) % 10000);
  snprintf(r.job, sizeof r.job, "%s", PICK(jobs, next_rand(&s)));
  return mproc_task_return(ctx, &r, sizeof r);
}

enum { N = 20000 };
static mproc_async_t *results[N];

int main(void) {
  int cpus = mproc_cpu_count();
  mproc_pool_opts o = {.processes = cpus > 1 ? cpus - 1 : 1};
  mproc_pool_t *p;
  if (mproc_pool_create(&p, &o)) return 1;
  for (unsigned long i = 0; i < N; i++) {
    int rc = mproc_pool_apply_async(p, get_a_dummy_record, &i, sizeof i, NULL, &results[i]);
    if (rc) {
      fprintf(stderr, "apply_async: %s\n", mproc_strerror(rc));
      return 1;
    }
  }
  mproc_pool_close(p);
  mproc_pool_join(p, -1);
  static record data[N];
  size_t count = 0;
  for (int i = 0; i < N; i++) {
    const void *r;
    size_t len;
    if (mproc_async_get(results[i], -1, &r, &len) == 0 && len == sizeof(record))
      memcpy(&data[count++], r, sizeof(record));
    mproc_async_destroy(results[i]);
  }
  mproc_pool_destroy(p);
  printf("records: %zu\n", count);
  printf("%-5s | %-22s | %-10s | %-8s | %s\n", "row", "name", "city", "plate", "job");
  for (int i = 0; i < 5; i++)
    printf("%-5d | %-22s | %-10s | %-8s | %s\n", i, data[i].name, data[i].city, data[i].plate,
           data[i].job);
  return count == N ? 0 : 1;
}
