/*
 * joblog.c - see joblog.h.
 */
#include "joblog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

static const char HEADER[] = "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n";

static void setbit(cli_joblog *j, uint8_t **map, unsigned long long seq) {
  if (seq >= j->nbits) {
    size_t nb = j->nbits ? j->nbits : 1024;
    while (nb <= seq) nb *= 2;
    j->seen = cli_xrealloc(j->seen, nb / 8);
    j->ok = cli_xrealloc(j->ok, nb / 8);
    memset(j->seen + j->nbits / 8, 0, (nb - j->nbits) / 8);
    memset(j->ok + j->nbits / 8, 0, (nb - j->nbits) / 8);
    j->nbits = nb;
  }
  (*map)[seq / 8] |= (uint8_t)(1u << (seq % 8));
}

static int getbit(const uint8_t *map, size_t nbits, unsigned long long seq) {
  return seq < nbits && (map[seq / 8] >> (seq % 8)) & 1;
}

/* Parse the lines of an existing log; unparsable lines are ignored. */
static void read_old(cli_joblog *j, FILE *f) {
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  while ((n = getline(&line, &cap, f)) > 0) {
    if (line[n - 1] != '\n') break; /* torn last line */
    char *cols[8];
    int nc = 0;
    char *p = line;
    while (nc < 8) {
      cols[nc++] = p;
      char *tab = strchr(p, '\t');
      if (!tab) break;
      *tab = 0;
      p = tab + 1;
    }
    if (nc < 8) continue;
    char *end;
    errno = 0;
    unsigned long long seq = strtoull(cols[0], &end, 10);
    if (errno || *end || seq == 0 || seq > (1ull << 40)) continue;
    long ev = strtol(cols[6], &end, 10);
    if (*end) continue;
    long sig = strtol(cols[7], &end, 10);
    if (*end) continue;
    setbit(j, &j->seen, seq);
    if (ev == 0 && sig == 0) setbit(j, &j->ok, seq);
  }
  free(line);
}

int cli_joblog_open(cli_joblog *j, const char *path, int resume, int resume_failed) {
  memset(j, 0, sizeof *j);
  j->fd = -1;
  if (!path) return 0;
  j->resuming = resume || resume_failed;
  j->resume_failed = resume_failed;
  if (!strcmp(path, "-")) {
    j->fd = 1;
    if (cli_write_all(1, HEADER, sizeof HEADER - 1) < 0) return -1;
    return 0;
  }
  if (j->resuming) {
    FILE *f = fopen(path, "re");
    if (f) {
      read_old(j, f);
      fclose(f);
    } else if (errno != ENOENT) {
      cli_err("cannot read joblog '%s': %s", path, strerror(errno));
      return -1;
    }
  }
  int flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (j->resuming ? 0 : O_TRUNC);
  j->fd = open(path, flags, 0644);
  if (j->fd < 0) {
    cli_err("cannot open joblog '%s': %s", path, strerror(errno));
    return -1;
  }
  struct stat st;
  if (fstat(j->fd, &st) == 0 && st.st_size == 0) cli_write_all(j->fd, HEADER, sizeof HEADER - 1);
  return 0;
}

int cli_joblog_skip(const cli_joblog *j, unsigned long long seq) {
  if (!j->resuming) return 0;
  if (j->resume_failed) return getbit(j->ok, j->nbits, seq);
  return getbit(j->seen, j->nbits, seq);
}

void cli_joblog_write(cli_joblog *j, unsigned long long seq, double start_wall, double runtime,
                      unsigned long long received, int exitval, int sig, const char *cmd,
                      size_t cmdlen) {
  if (j->fd < 0) return;
  char head[160];
  int n = snprintf(head, sizeof head, "%llu\t:\t%.3f\t%10.3f\t0\t%llu\t%d\t%d\t", seq, start_wall,
                   runtime, received, exitval, sig);
  cli_buf b = {0};
  cli_buf_add(&b, head, (size_t)n);
  /* A newline inside the command would break the one-line-per-job format. */
  for (size_t i = 0; i < cmdlen; i++) cli_buf_addc(&b, cmd[i] == '\n' ? ' ' : cmd[i]);
  cli_buf_addc(&b, '\n');
  int rc = cli_write_all(j->fd, b.s, b.len);
  if (rc < 0) {
    cli_err("writing the joblog failed: %s", strerror(-rc));
    if (j->fd != 1) close(j->fd);
    j->fd = -1;
  }
  cli_buf_free(&b);
}

void cli_joblog_close(cli_joblog *j) {
  if (j->fd > 2) close(j->fd);
  j->fd = -1;
  free(j->seen);
  free(j->ok);
  j->seen = j->ok = NULL;
}
