/* text_search.c - which files under a tree contain a keyword, searched in
 * parallel with Pool.map (seed 004). The program builds its own tree of
 * markdown files in a temporary directory, maps the search over the paths
 * (a path and the keyword per task: a starmap-style struct would do too;
 * here the task takes the path and reads the keyword from the pool's
 * initializer argument), and prints the hits sorted. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mproc.h"

static const char *g_keyword; /* set before the pool forks its workers */

/* search_in_file(path): 1 if the file contains the keyword, else 0 */
static int search_in_file(const void *in, size_t n, void *out, mproc_task_ctx *ctx) {
  char path[512];
  if (n >= sizeof path) return mproc_task_fail(ctx, -ENAMETOOLONG, "path too long");
  memcpy(path, in, n);
  path[n] = 0;
  FILE *f = fopen(path, "r");
  if (!f) return mproc_task_fail(ctx, -ENOENT, "cannot open %s", path);
  char buf[8192];
  size_t len = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[len] = 0;
  *(int *)out = strstr(buf, g_keyword) != NULL;
  return 0;
}

/* Recursively collect *.md files (Path('.').rglob('*.md')). */
static void rglob(const char *dir, char (**paths)[512], int *n, int *cap) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    struct stat st;
    if (stat(p, &st)) continue;
    if (S_ISDIR(st.st_mode)) {
      rglob(p, paths, n, cap);
    } else {
      size_t l = strlen(p);
      if (l > 3 && strcmp(p + l - 3, ".md") == 0) {
        if (*n == *cap) {
          *cap *= 2;
          *paths = realloc(*paths, (size_t)*cap * sizeof **paths);
        }
        strcpy((*paths)[(*n)++], p);
      }
    }
  }
  closedir(d);
}

static int cmpstr(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (f) {
    fputs(text, f);
    fclose(f);
  }
}

int main(void) {
  /* Create the pool first, as in Python's `if __name__ == "__main__":`
   * idiom: the workers then inherit nothing they do not need. */
  g_keyword = "multiprocessing";
  mproc_pool_opts o = {.processes = 4};
  mproc_pool_t *pool;
  if (mproc_pool_create(&pool, &o)) return 1;
  char root[] = "/tmp/mproc-search-XXXXXX";
  if (!mkdtemp(root)) return 1;
  /* A tree: 4 folders x 10 files; every 3rd file mentions the keyword,
   * plus .txt files that do but must not be searched. */
  for (int d = 0; d < 4; d++) {
    char dir[600];
    snprintf(dir, sizeof dir, "%s/part%d", root, d);
    mkdir(dir, 0700);
    for (int i = 0; i < 10; i++) {
      char path[700];
      snprintf(path, sizeof path, "%s/note%02d.md", dir, i);
      int k = d * 10 + i;
      write_file(path, k % 3 == 0 ? "# Notes\nUsing multiprocessing pools.\n"
                                  : "# Notes\nUsing threads only.\n");
      snprintf(path, sizeof path, "%s/skip%02d.txt", dir, i);
      write_file(path, "multiprocessing\n");
    }
  }
  int n = 0, cap = 16;
  char(*files)[512] = malloc((size_t)cap * sizeof *files);
  rglob(root, &files, &n, &cap);

  mproc_buf *in = calloc((size_t)n, sizeof *in);
  int *found = calloc((size_t)n, sizeof *found);
  for (int i = 0; i < n; i++) {
    in[i].data = files[i];
    in[i].size = strlen(files[i]);
  }
  int rc = mproc_pool_map(pool, search_in_file, in, (size_t)n, 0, found, sizeof(int), NULL);
  mproc_pool_destroy(pool);
  if (rc) {
    fprintf(stderr, "map: %s\n", mproc_strerror(rc));
    return 1;
  }
  char **hits = calloc((size_t)n, sizeof *hits);
  int nh = 0;
  for (int i = 0; i < n; i++)
    if (found[i]) hits[nh++] = files[i] + strlen(root) + 1;
  qsort(hits, (size_t)nh, sizeof *hits, cmpstr);
  printf("files searched: %d\n", n);
  printf("files containing the keyword: %d\n", nh);
  for (int i = 0; i < nh; i++) printf("%s\n", hits[i]);
  /* clean up the tree */
  for (int d = 0; d < 4; d++) {
    for (int i = 0; i < 10; i++) {
      char path[700];
      snprintf(path, sizeof path, "%s/part%d/note%02d.md", root, d, i);
      unlink(path);
      snprintf(path, sizeof path, "%s/part%d/skip%02d.txt", root, d, i);
      unlink(path);
    }
    char dir[600];
    snprintf(dir, sizeof dir, "%s/part%d", root, d);
    rmdir(dir);
  }
  rmdir(root);
  free(files);
  free(in);
  free(found);
  free(hits);
  return 0;
}
