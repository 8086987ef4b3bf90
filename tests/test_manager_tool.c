/* test_manager_tool.c - the standalone mproc-manager program: serves over
 * TCP with an authkey file, refuses bad usage, stops on a client's
 * shutdown. The binary is found next to the test's build directory. */
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define KEY "tool-key-0123"

static void tool_path(char *out, size_t cap) {
  char self[PATH_MAX - 64];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  self[n > 0 ? n : 0] = 0;
  char *slash = strrchr(self, '/'); /* build/tests/test_x -> build */
  if (slash) *slash = 0;
  slash = strrchr(self, '/');
  if (slash) *slash = 0;
  snprintf(out, cap, "%s/tools/mproc-manager", self);
}

/* Run the tool with args; its stdout comes back through *out_fd. */
static pid_t run_tool(char **args, int *out_fd) {
  int p[2];
  assert_int_equal(pipe(p), 0);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(p[1], 1);
    close(p[0]);
    close(p[1]);
    execv(args[0], args);
    _exit(127);
  }
  close(p[1]);
  *out_fd = p[0];
  return pid;
}

static int exit_code(pid_t pid) {
  int st;
  assert_int_equal(waitpid(pid, &st, 0), pid);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
}

static void serves_tcp_with_keyfile(void **state) {
  (void)state;
  char tool[PATH_MAX], keyfile[] = "/tmp/mproc-test-key-XXXXXX";
  tool_path(tool, sizeof tool);
  int kfd = mkstemp(keyfile);
  assert_true(kfd >= 0);
  assert_int_equal(write(kfd, KEY "\n", strlen(KEY) + 1), (ssize_t)strlen(KEY) + 1);
  close(kfd);
  char *args[] = {tool, "--listen", "tcp:127.0.0.1:0", "--authkey-file", keyfile,
                  "--max-objects", "10", NULL};
  int out;
  pid_t pid = run_tool(args, &out);
  FILE *f = fdopen(out, "r");
  char line[512], addr[256];
  assert_non_null(fgets(line, sizeof line, f));
  assert_int_equal(sscanf(line, "listening on %255s", addr), 1);
  assert_true(strncmp(addr, "tcp:127.0.0.1:", 14) == 0);
  mproc_manager_t *m;
  MPROC_ASSERT_RC(mproc_manager_connect(&m, addr, "nope", 4, 10), MPROC_EAUTH);
  MPROC_PASS(mproc_manager_connect(&m, addr, KEY, strlen(KEY), 10)); /* newline dropped */
  mproc_dict_t *d;
  MPROC_PASS(mproc_manager_dict(m, "d", &d));
  MPROC_PASS(mproc_dict_set(d, "k", 1, "v", 1));
  assert_int_equal(mproc_dict_contains(d, "k", 1), 1);
  MPROC_PASS(mproc_dict_destroy(d));
  MPROC_PASS(mproc_manager_shutdown(m));
  MPROC_PASS(mproc_manager_destroy(m));
  assert_int_equal(exit_code(pid), 0);
  fclose(f);
  unlink(keyfile);
}

static void refuses_bad_usage(void **state) {
  (void)state;
  char tool[PATH_MAX];
  tool_path(tool, sizeof tool);
  int out;
  char *no_listen[] = {tool, NULL};
  pid_t pid = run_tool(no_listen, &out);
  assert_int_equal(exit_code(pid), 2);
  close(out);
  char *tcp_no_key[] = {tool, "--listen", "tcp:127.0.0.1:0", NULL};
  pid = run_tool(tcp_no_key, &out);
  assert_int_equal(exit_code(pid), 1);
  close(out);
  char *bad_num[] = {tool, "--listen", "unix:@x", "--max-objects", "zero", NULL};
  pid = run_tool(bad_num, &out);
  assert_int_equal(exit_code(pid), 2);
  close(out);
  char *no_file[] = {tool, "--listen", "unix:@x", "--authkey-file", "/nonexistent/k", NULL};
  pid = run_tool(no_file, &out);
  assert_int_equal(exit_code(pid), 1);
  close(out);
}

static void sigterm_is_a_clean_exit(void **state) {
  (void)state;
  char tool[PATH_MAX], addr[64];
  tool_path(tool, sizeof tool);
  snprintf(addr, sizeof addr, "unix:@mproc-tool-test-%d", (int)getpid());
  char *args[] = {tool, "--listen", addr, NULL};
  int out;
  pid_t pid = run_tool(args, &out);
  char line[256];
  FILE *f = fdopen(out, "r");
  assert_non_null(fgets(line, sizeof line, f));
  mproc_manager_t *m;
  MPROC_PASS(mproc_manager_connect(&m, addr, NULL, 0, 10)); /* no key on unix */
  MPROC_PASS(mproc_manager_ping(m));
  kill(pid, SIGTERM);
  assert_int_equal(exit_code(pid), 0);
  MPROC_PASS(mproc_manager_destroy(m));
  fclose(f);
}

static const struct CMUnitTest tests[] = {
    MPROC_TEST(serves_tcp_with_keyfile),
    MPROC_TEST(refuses_bad_usage),
    MPROC_TEST(sigterm_is_a_clean_exit),
};

MPROC_TEST_MAIN(tests)
