/* image_blur.c - Gaussian blur of a folder of PNG images in parallel
 * (seed 004's Pillow example), with libpng. The program makes its own test
 * images in a temporary directory, blurs them with imap_unordered (one task
 * per file, the path as input), writes blurred_<name>.png beside each, and
 * then reads every output back to check it is a blur of its input: same
 * size, about the same mean brightness, much less pixel-to-pixel variation. */
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mproc.h"

typedef struct image {
  int w, h;
  unsigned char *px; /* RGB, row-major */
} image;

static int png_load(const char *path, image *im) {
  png_image pi;
  memset(&pi, 0, sizeof pi);
  pi.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&pi, path)) return -1;
  pi.format = PNG_FORMAT_RGB;
  im->w = (int)pi.width;
  im->h = (int)pi.height;
  im->px = malloc(PNG_IMAGE_SIZE(pi));
  if (!im->px || !png_image_finish_read(&pi, NULL, im->px, 0, NULL)) {
    free(im->px);
    png_image_free(&pi);
    return -1;
  }
  return 0;
}

static int png_save(const char *path, const image *im) {
  png_image pi;
  memset(&pi, 0, sizeof pi);
  pi.version = PNG_IMAGE_VERSION;
  pi.width = (png_uint_32)im->w;
  pi.height = (png_uint_32)im->h;
  pi.format = PNG_FORMAT_RGB;
  return png_image_write_to_file(&pi, path, 0, im->px, 0, NULL) ? 0 : -1;
}

/* Separable Gaussian blur, radius 2 as ImageFilter.GaussianBlur(radius=2):
 * sigma 2, kernel of 13 taps, edges clamped. */
static void gaussian_blur(image *im, double sigma) {
  int r = (int)ceil(3 * sigma);
  double k[64], sum = 0;
  for (int i = -r; i <= r; i++) sum += k[i + r] = exp(-(double)(i * i) / (2 * sigma * sigma));
  for (int i = 0; i <= 2 * r; i++) k[i] /= sum;
  size_t n = (size_t)im->w * (size_t)im->h * 3;
  double *tmp = malloc(n * sizeof(double));
  for (int y = 0; y < im->h; y++)
    for (int x = 0; x < im->w; x++)
      for (int c = 0; c < 3; c++) {
        double a = 0;
        for (int i = -r; i <= r; i++) {
          int xx = x + i < 0 ? 0 : x + i >= im->w ? im->w - 1 : x + i;
          a += k[i + r] * im->px[((size_t)y * im->w + xx) * 3 + c];
        }
        tmp[((size_t)y * im->w + x) * 3 + c] = a;
      }
  for (int y = 0; y < im->h; y++)
    for (int x = 0; x < im->w; x++)
      for (int c = 0; c < 3; c++) {
        double a = 0;
        for (int i = -r; i <= r; i++) {
          int yy = y + i < 0 ? 0 : y + i >= im->h ? im->h - 1 : y + i;
          a += k[i + r] * tmp[((size_t)yy * im->w + x) * 3 + c];
        }
        im->px[((size_t)y * im->w + x) * 3 + c] = (unsigned char)lround(a);
      }
  free(tmp);
}

/* Total variation (mean abs difference of horizontal neighbours) and mean. */
static void measure(const image *im, double *tv, double *mean) {
  double t = 0, m = 0;
  for (int y = 0; y < im->h; y++)
    for (int x = 0; x < im->w; x++)
      for (int c = 0; c < 3; c++) {
        int v = im->px[((size_t)y * im->w + x) * 3 + c];
        m += v;
        if (x + 1 < im->w) t += abs(v - im->px[((size_t)y * im->w + x + 1) * 3 + c]);
      }
  *tv = t / ((double)(im->w - 1) * im->h * 3);
  *mean = m / ((double)im->w * im->h * 3);
}

/* The task: blur one file; the result is the saved path. */
static int blur_image(const void *in, size_t n, void *out, mproc_task_ctx *ctx) {
  (void)out;
  char path[512], save[600];
  if (n >= sizeof path) return mproc_task_fail(ctx, -ENAMETOOLONG, "path too long");
  memcpy(path, in, n);
  path[n] = 0;
  image im;
  if (png_load(path, &im)) return mproc_task_fail(ctx, -EIO, "cannot read %s", path);
  gaussian_blur(&im, 2.0);
  const char *slash = strrchr(path, '/');
  snprintf(save, sizeof save, "%.*s/blurred_%s", (int)(slash - path), path, slash + 1);
  int rc = png_save(save, &im);
  free(im.px);
  if (rc) return mproc_task_fail(ctx, -EIO, "cannot write %s", save);
  return mproc_task_return(ctx, save, strlen(save));
}

/* Test images: checkerboards, stripes and noise, 96x64. */
static void make_image(const char *path, int kind) {
  image im = {96, 64, malloc(96 * 64 * 3)};
  unsigned s = 77u + (unsigned)kind;
  for (int y = 0; y < im.h; y++)
    for (int x = 0; x < im.w; x++)
      for (int c = 0; c < 3; c++) {
        int v;
        switch (kind % 3) {
          case 0: v = ((x / 4 + y / 4) % 2) ? 230 : 25; break;
          case 1: v = (x % 6 < 3) ? 200 + c * 10 : 40; break;
          default: s = s * 1103515245u + 12345u; v = (int)((s >> 16) & 255); break;
        }
        im.px[((size_t)y * im.w + x) * 3 + c] = (unsigned char)v;
      }
  png_save(path, &im);
  free(im.px);
}

typedef struct files {
  char (*paths)[512];
  int n, next;
} files;

static int next_file(void *u, const void **item, size_t *size) {
  files *f = u;
  if (f->next >= f->n) return 0;
  *item = f->paths[f->next];
  *size = strlen(f->paths[f->next]);
  f->next++;
  return 1;
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  char dir[] = "/tmp/mproc-blur-XXXXXX";
  if (!mkdtemp(dir)) return 1;
  enum { NIMG = 6 };
  char paths[NIMG][512];
  for (int i = 0; i < NIMG; i++) {
    snprintf(paths[i], sizeof paths[i], "%s/img%d.png", dir, i);
    make_image(paths[i], i);
  }
  mproc_pool_t *pool;
  if (mproc_pool_create(&pool, NULL)) return 1;
  files f = {paths, NIMG, 0};
  mproc_call_opts o = {.flags = MPROC_IMAP_UNORDERED};
  mproc_imap_t *it;
  if (mproc_pool_imap(pool, blur_image, next_file, &f, 0, &o, &it)) return 1;
  int saved = 0, good = 0;
  const void *r;
  size_t len, idx;
  int rc;
  while ((rc = mproc_imap_next(it, 60, &r, &len, &idx)) != MPROC_ESTOPITER) {
    if (rc) {
      mproc_task_error e;
      mproc_imap_error(it, &e);
      printf("failed: %s\n", e.message);
      continue;
    }
    printf("saved: %.*s\n", (int)len, (const char *)r);
    saved++;
  }
  mproc_imap_destroy(it);
  mproc_pool_destroy(pool);
  /* Verify every output against its input, in input order. */
  for (int i = 0; i < NIMG; i++) {
    char out[600];
    snprintf(out, sizeof out, "%s/blurred_img%d.png", dir, i);
    image a, b;
    if (png_load(paths[i], &a) || png_load(out, &b)) {
      printf("img%d: missing output\n", i);
      continue;
    }
    double tva, tvb, ma, mb;
    measure(&a, &tva, &ma);
    measure(&b, &tvb, &mb);
    int ok = a.w == b.w && a.h == b.h && tvb < tva * 0.7 && fabs(ma - mb) < 3.0;
    good += ok;
    printf("img%d: %dx%d variation %.1f -> %.1f, mean %.1f -> %.1f: %s\n", i, b.w, b.h, tva, tvb,
           ma, mb, ok ? "blurred" : "NOT BLURRED");
    free(a.px);
    free(b.px);
    unlink(out);
    unlink(paths[i]);
  }
  rmdir(dir);
  printf("%d of %d images blurred\n", good, NIMG);
  return saved == NIMG && good == NIMG ? 0 : 1;
}
