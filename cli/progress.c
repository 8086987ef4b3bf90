/*
 * progress.c - see progress.h.
 */
#include "progress.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

void cli_progress_init(cli_progress *p, int bar, int eta, int jobs) {
  memset(p, 0, sizeof *p);
  p->tty = isatty(2);
  p->bar = bar && p->tty;
  p->eta = eta;
  p->t0 = cli_now();
  p->jobs = jobs;
}

static void fmt_secs(char *out, size_t n, double s) {
  if (s < 0) {
    snprintf(out, n, "?");
  } else if (s < 60) {
    snprintf(out, n, "%.0fs", s);
  } else if (s < 3600) {
    snprintf(out, n, "%dm%02ds", (int)s / 60, (int)s % 60);
  } else {
    snprintf(out, n, "%dh%02dm", (int)(s / 3600), (int)s % 3600 / 60);
  }
}

static void draw(cli_progress *p, unsigned long long done, long long total, int running) {
  double el = cli_now() - p->t0;
  double eta = -1;
  if (total >= 0 && done > 0) eta = el / (double)done * (double)((unsigned long long)total - done);
  char etas[32];
  fmt_secs(etas, sizeof etas, eta);
  char line[256];
  int n;
  if (p->bar) {
    char bar[32];
    int width = 20, fill = 0;
    int pct = 0;
    if (total > 0) {
      pct = (int)(100.0 * (double)done / (double)total);
      fill = (int)((double)width * (double)done / (double)total);
    }
    for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
    bar[width] = 0;
    if (total >= 0)
      n = snprintf(line, sizeof line, "\r[%s] %3d%% %llu/%lld done, %d running, ETA %s \033[K", bar,
                   pct, done, total, running, etas);
    else
      n = snprintf(line, sizeof line, "\r[%s] %llu done, %d running \033[K", bar, done, running);
  } else {
    double avg = done ? el / (double)done : 0;
    if (total >= 0)
      n = snprintf(line, sizeof line, "\rETA: %s Left: %lld AVG: %.3fs Done: %llu Running: %d \033[K",
                   etas, total - (long long)done, avg * p->jobs, done, running);
    else
      n = snprintf(line, sizeof line, "\rETA: ? Left: ? AVG: %.3fs Done: %llu Running: %d \033[K",
                   avg * p->jobs, done, running);
  }
  if (n > 0) cli_write_all(2, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
  p->drawn = 1;
}

void cli_progress_update(cli_progress *p, unsigned long long done, long long total, int running,
                         int force) {
  if (!p->bar && !(p->eta && p->tty)) return;
  double now = cli_now();
  if (!force && now - p->last < 0.2) return;
  p->last = now;
  draw(p, done, total, running);
}

double cli_progress_next(const cli_progress *p) {
  if (!p->bar && !(p->eta && p->tty)) return -1;
  double d = p->last + 0.2 - cli_now();
  return d < 0 ? 0 : d;
}

void cli_progress_end(cli_progress *p, unsigned long long done, long long total,
                      unsigned long long failed, int verbose) {
  if (p->bar || (p->eta && p->tty)) {
    draw(p, done, total < 0 ? (long long)done : total, 0);
    cli_write_all(2, "\n", 1);
  } else if (p->eta) {
    char line[128];
    int n = snprintf(line, sizeof line, "ETA: 0s Left: 0 Done: %llu\n", done);
    cli_write_all(2, line, (size_t)n);
  }
  if (verbose) {
    double el = cli_now() - p->t0;
    char line[256];
    int n = snprintf(line, sizeof line,
                     "mproc: %llu job%s done, %llu failed, %.3f s, %.1f jobs/s, %d in parallel\n",
                     done, done == 1 ? "" : "s", failed, el, el > 0 ? (double)done / el : 0.0,
                     p->jobs);
    cli_write_all(2, line, (size_t)n);
  }
}
