/* test_shm.c - named shared memory: create/attach/ptr/size/name/close/
 * unlink, bad input, another process attaching by name, and cleanup: a
 * non-KEEP segment disappears when the creating family exits (normally or
 * by SIGKILL) and not before, a KEEP one stays, attaching never owns,
 * an explicit unlink unregisters.
 *
 * Only KEEP segments are created in the test process itself: creating a
 * tracked one starts the family's tracker, whose socket is a deliberate
 * process-lifetime fd that the harness's fd-leak check would count.
 *
 * Every case points $MPROC_SHM_DIR at a private directory: /dev/shm/mproc*
 * is machine-wide, and the harness of every other test running at the same
 * time (ours or another checkout's) would count our segments as its leaks.
 * The cases check their own cleanup instead. */
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "sync_util.h"

static char *nm(char *buf, const char *tag) {
  snprintf(buf, 64, "test-%s-%d", tag, (int)getpid());
  return buf;
}

static char g_dir[64];

/* Use a fresh private directory for this case's segments. */
static void private_dir(void) {
  snprintf(g_dir, sizeof g_dir, "/dev/shm/tshm-XXXXXX");
  assert_non_null(mkdtemp(g_dir));
  setenv("MPROC_SHM_DIR", g_dir, 1);
}

/* Remove it (it must be empty: every segment cleaned up). */
static void private_dir_done(void) {
  assert_int_equal(rmdir(g_dir), 0);
  unsetenv("MPROC_SHM_DIR");
}

static int entry_exists(const char *name) {
  char path[160];
  snprintf(path, sizeof path, "%s/mproc.%s", g_dir, name);
  struct stat st;
  return stat(path, &st) == 0;
}

/* Wait up to 20 s for the /dev/shm entry to go away. */
static int entry_gone(const char *name) {
  double end = mproc_test_now() + 20;
  while (entry_exists(name)) {
    if (mproc_test_now() > end) return 0;
    usleep(5000);
  }
  return 1;
}

static void shm_create_attach_unlink(void **state) {
  (void)state;
  private_dir();
  char name[64];
  mproc_shm_t *a, *b;
  MPROC_PASS(mproc_shm_create(&a, nm(name, "basic"), 100, MPROC_SHM_KEEP));
  assert_true(entry_exists(name));
  assert_string_equal(mproc_shm_name(a), name);
  assert_int_equal(mproc_shm_size(a), 100);
  char *p = mproc_shm_ptr(a);
  assert_non_null(p);
  for (int i = 0; i < 100; i++) assert_int_equal(p[i], 0);
  strcpy(p, "shared hello");
  MPROC_PASS(mproc_shm_attach(&b, name));
  assert_int_equal(mproc_shm_size(b), 100);
  assert_string_equal((char *)mproc_shm_ptr(b), "shared hello");
  ((char *)mproc_shm_ptr(b))[0] = 'S';
  assert_int_equal(p[0], 'S');
  MPROC_PASS(mproc_shm_unlink(a));
  assert_false(entry_exists(name));
  MPROC_ASSERT_RC(mproc_shm_unlink(b), MPROC_ENOENT);
  MPROC_ASSERT_RC(mproc_shm_attach(&b, name), MPROC_ENOENT);
  /* Mappings outlive the name. */
  assert_string_equal(p, "Shared hello");
  MPROC_PASS(mproc_shm_close(a));
  assert_string_equal((char *)mproc_shm_ptr(b), "Shared hello");
  MPROC_PASS(mproc_shm_close(b));
  MPROC_ASSERT_RC(mproc_shm_close(NULL), 0);
  private_dir_done();
}

static void shm_bad_input(void **state) {
  (void)state;
  private_dir();
  char name[64], longname[300];
  mproc_shm_t *s;
  memset(longname, 'x', sizeof longname);
  longname[MPROC_SHM_NAME_MAX + 1] = 0;
  MPROC_ASSERT_RC(mproc_shm_create(NULL, "x", 10, MPROC_SHM_KEEP), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_shm_create(&s, nm(name, "bad"), 0, MPROC_SHM_KEEP), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_shm_create(&s, name, SIZE_MAX, MPROC_SHM_KEEP), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_shm_create(&s, "", 10, MPROC_SHM_KEEP), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_shm_create(&s, "a/b", 10, MPROC_SHM_KEEP), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_shm_create(&s, longname, 10, MPROC_SHM_KEEP), MPROC_ENAMETOOLONG);
  MPROC_ASSERT_RC(mproc_shm_create(&s, name, 10, 0x10), MPROC_EINVAL);
  setenv("MPROC_SHM_DIR", "relative/dir", 1);
  MPROC_ASSERT_RC(mproc_shm_create(&s, name, 10, MPROC_SHM_KEEP), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_shm_attach(&s, name), MPROC_EINVAL);
  setenv("MPROC_SHM_DIR", g_dir, 1);
  assert_false(entry_exists(name));
  MPROC_PASS(mproc_shm_create(&s, name, 10, MPROC_SHM_KEEP));
  mproc_shm_t *dup;
  MPROC_ASSERT_RC(mproc_shm_create(&dup, name, 10, MPROC_SHM_KEEP), MPROC_EEXIST);
  MPROC_ASSERT_RC(mproc_shm_attach(NULL, name), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_shm_attach(&dup, NULL), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_shm_attach(&dup, ""), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_shm_attach(&dup, "../etc"), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_shm_attach(&dup, longname), MPROC_ENAMETOOLONG);
  MPROC_ASSERT_RC(mproc_shm_attach(&dup, "no-such-segment-anywhere"), MPROC_ENOENT);
  assert_null(mproc_shm_ptr(NULL));
  assert_int_equal(mproc_shm_size(NULL), 0);
  assert_null(mproc_shm_name(NULL));
  MPROC_ASSERT_RC(mproc_shm_unlink(NULL), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_shm_unlink_name(NULL), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_shm_unlink_name(""), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_shm_unlink_name("x/y"), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_shm_unlink_name(longname), MPROC_ENAMETOOLONG);
  MPROC_PASS(mproc_shm_unlink_name(name));
  MPROC_ASSERT_RC(mproc_shm_unlink_name(name), MPROC_ENOENT);
  MPROC_ASSERT_RC(mproc_shm_unlink(s), MPROC_ENOENT);
  MPROC_PASS(mproc_shm_close(s));
  private_dir_done();
}

/* close/unlink/ptr on pointers that are not shm handles, names and
 * $MPROC_SHM_DIR at and just past their limits (the longest of both
 * together must still fit the handle's path). */
static void shm_bad_handles_and_long_paths(void **state) {
  (void)state;
  private_dir();
  /* Not a handle: zeroed memory, and a heap object of another kind. */
  _Alignas(16) unsigned char zeros[512] = {0};
  mproc_shm_t *fake = (mproc_shm_t *)(void *)zeros;
  MPROC_ASSERT_RC(mproc_shm_close(fake), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_shm_unlink(fake), MPROC_EINVAL);
  assert_null(mproc_shm_ptr(fake));
  assert_int_equal(mproc_shm_size(fake), 0);
  assert_null(mproc_shm_name(fake));
  mproc_lock_t *l;
  MPROC_PASS(mproc_lock_create(&l));
  MPROC_ASSERT_RC(mproc_shm_close((mproc_shm_t *)(void *)l), MPROC_EINVAL);
  MPROC_PASS(mproc_lock_destroy(l));

  /* Names: far too long; exactly the longest accepted. */
  static char huge[5000], longest[MPROC_SHM_NAME_MAX + 1];
  memset(huge, 'h', sizeof huge - 1);
  memset(longest, 'n', MPROC_SHM_NAME_MAX);
  mproc_shm_t *s;
  MPROC_ASSERT_RC(mproc_shm_create(&s, huge, 10, MPROC_SHM_KEEP), MPROC_ENAMETOOLONG);
  MPROC_ASSERT_RC(mproc_shm_attach(&s, huge), MPROC_ENAMETOOLONG);
  MPROC_ASSERT_RC(mproc_shm_unlink_name(huge), MPROC_ENAMETOOLONG);

  /* $MPROC_SHM_DIR of exactly 256 bytes (a real directory) works with the
   * longest name; 257 bytes is refused with -EINVAL as documented. */
  char dir[300];
  size_t base = strlen(g_dir);
  memcpy(dir, g_dir, base);
  dir[base] = '/';
  memset(dir + base + 1, 'd', 256 - base - 1);
  dir[256] = 0;
  assert_int_equal(strlen(dir), 256);
  assert_int_equal(mkdir(dir, 0700), 0);
  setenv("MPROC_SHM_DIR", dir, 1);
  MPROC_PASS(mproc_shm_create(&s, longest, 10, MPROC_SHM_KEEP));
  assert_string_equal(mproc_shm_name(s), longest);
  mproc_shm_t *b;
  MPROC_PASS(mproc_shm_attach(&b, longest));
  MPROC_PASS(mproc_shm_close(b));
  MPROC_PASS(mproc_shm_unlink(s));
  MPROC_PASS(mproc_shm_close(s));
  char too_long_dir[300];
  memcpy(too_long_dir, dir, 256);
  too_long_dir[256] = 'd';
  too_long_dir[257] = 0;
  setenv("MPROC_SHM_DIR", too_long_dir, 1);
  MPROC_ASSERT_RC(mproc_shm_create(&s, "x", 10, MPROC_SHM_KEEP), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_shm_create(&s, NULL, 10, MPROC_SHM_KEEP), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_shm_attach(&s, "x"), MPROC_EINVAL);
  MPROC_ASSERT_RC(mproc_shm_unlink_name("x"), MPROC_EINVAL);
  setenv("MPROC_SHM_DIR", g_dir, 1);
  assert_int_equal(rmdir(dir), 0);
  private_dir_done();
}

static void shm_random_name(void **state) {
  (void)state;
  private_dir();
  mproc_shm_t *a, *b;
  MPROC_PASS(mproc_shm_create(&a, NULL, 4096 * 3 + 1, MPROC_SHM_KEEP));
  MPROC_PASS(mproc_shm_create(&b, NULL, 1, MPROC_SHM_KEEP));
  assert_true(strncmp(mproc_shm_name(a), "psm_", 4) == 0);
  assert_string_not_equal(mproc_shm_name(a), mproc_shm_name(b));
  assert_int_equal(mproc_shm_size(a), 4096 * 3 + 1);
  ((char *)mproc_shm_ptr(a))[4096 * 3] = 7;
  MPROC_PASS(mproc_shm_unlink(a));
  MPROC_PASS(mproc_shm_unlink(b));
  MPROC_PASS(mproc_shm_close(a));
  MPROC_PASS(mproc_shm_close(b));
  private_dir_done();
}

typedef struct shared {
  char name[64];
  char marker[64];
  volatile int stage;
  volatile pid_t grandchild;
} shared;

/* Child: attach by name (as an unrelated process would), add to a count. */
static int attacher(void *arg) {
  shared *s = arg;
  mproc_shm_t *h;
  CHILD_RC(mproc_shm_attach(&h, s->name), 0);
  CHILD_CHECK(mproc_shm_size(h) == 4096);
  int *n = mproc_shm_ptr(h);
  __atomic_add_fetch(n, 1, __ATOMIC_SEQ_CST);
  CHILD_RC(mproc_shm_close(h), 0);
  return 0;
}

static void shm_attach_from_other_processes(void **state) {
  (void)state;
  private_dir();
  shared *s = su_shared(sizeof *s);
  mproc_shm_t *h;
  MPROC_PASS(mproc_shm_create(&h, nm(s->name, "other"), 4096, MPROC_SHM_KEEP));
  pid_t p[3];
  for (int i = 0; i < 3; i++) p[i] = su_fork(attacher, s);
  for (int i = 0; i < 3; i++) SU_JOIN_OK(p[i]);
  assert_int_equal(*(int *)mproc_shm_ptr(h), 3);
  /* Attaching processes exited: the segment is still there (they never
   * owned it, unlike Python's resource tracker). */
  assert_true(entry_exists(s->name));
  MPROC_PASS(mproc_shm_unlink(h));
  MPROC_PASS(mproc_shm_close(h));
  private_dir_done();
}

/* Child: create a tracked segment and exit without unlinking it. */
static int create_and_exit(void *arg) {
  shared *s = arg;
  mproc_shm_t *h;
  CHILD_RC(mproc_shm_create(&h, s->name, 1 << 16, 0), 0);
  memset(mproc_shm_ptr(h), 1, 1 << 16);
  CHILD_RC(mproc_shm_close(h), 0);
  s->stage = 1;
  return 0;
}

static void shm_removed_when_family_exits(void **state) {
  (void)state;
  private_dir();
  shared *s = su_shared(sizeof *s);
  nm(s->name, "auto");
  SU_JOIN_OK(su_fork(create_and_exit, s));
  assert_int_equal(s->stage, 1);
  assert_true(entry_gone(s->name));
  private_dir_done();
}

/* Child: create a tracked segment, then wait to be killed. */
static int create_and_hang(void *arg) {
  shared *s = arg;
  mproc_shm_t *h;
  CHILD_RC(mproc_shm_create(&h, s->name, 4096, 0), 0);
  s->stage = 1;
  for (;;) pause();
}

static void shm_removed_after_sigkill(void **state) {
  (void)state;
  private_dir();
  shared *s = su_shared(sizeof *s);
  nm(s->name, "kill");
  pid_t p = su_fork(create_and_hang, s);
  assert_true(su_await(&s->stage, 1));
  assert_true(entry_exists(s->name));
  kill(p, SIGKILL);
  assert_int_equal(su_wait(p, NULL), -SIGKILL);
  assert_true(entry_gone(s->name));
  private_dir_done();
}

/* Grandchild: part of the family; holds the segment alive until told. */
static int linger(void *arg) {
  shared *s = arg;
  double end = mproc_test_now() + 20;
  while (s->stage != 2 && mproc_test_now() < end) usleep(2000);
  return 0;
}

/* Child: create, start a family member that outlives us, exit. */
static int create_fork_exit(void *arg) {
  shared *s = arg;
  mproc_shm_t *h;
  CHILD_RC(mproc_shm_create(&h, s->name, 4096, 0), 0);
  pid_t g = fork();
  if (g == 0) _exit(linger(s));
  CHILD_CHECK(g > 0);
  s->grandchild = g;
  s->stage = 1;
  return 0;
}

static void shm_kept_while_family_lives(void **state) {
  (void)state;
  private_dir();
  shared *s = su_shared(sizeof *s);
  nm(s->name, "family");
  SU_JOIN_OK(su_fork(create_fork_exit, s));
  assert_int_equal(s->stage, 1);
  /* The creator exited but a family member still runs. */
  su_sleep(0.3);
  assert_true(entry_exists(s->name));
  s->stage = 2;
  assert_true(mproc_test_wait_gone(s->grandchild, 20));
  assert_true(entry_gone(s->name));
  private_dir_done();
}

/* Child: a KEEP segment, and a tracked one unlinked then re-created KEEP
 * under the same name; a tracked marker tells when the tracker is done. */
static int keep_and_unregister(void *arg) {
  shared *s = arg;
  mproc_shm_t *h, *m;
  CHILD_RC(mproc_shm_create(&h, s->name, 4096, 0), 0);
  CHILD_RC(mproc_shm_unlink(h), 0);
  CHILD_RC(mproc_shm_close(h), 0);
  CHILD_RC(mproc_shm_create(&h, s->name, 4096, MPROC_SHM_KEEP), 0);
  CHILD_RC(mproc_shm_close(h), 0);
  CHILD_RC(mproc_shm_create(&m, s->marker, 16, 0), 0);
  CHILD_RC(mproc_shm_close(m), 0);
  return 0;
}

static void shm_keep_and_explicit_unlink(void **state) {
  (void)state;
  private_dir();
  shared *s = su_shared(sizeof *s);
  nm(s->name, "keep");
  nm(s->marker, "marker");
  SU_JOIN_OK(su_fork(keep_and_unregister, s));
  /* The tracker has run its final sweep once the marker is gone. */
  assert_true(entry_gone(s->marker));
  assert_true(entry_exists(s->name));
  MPROC_PASS(mproc_shm_unlink_name(s->name));
  private_dir_done();
}

static const struct CMUnitTest tests[] = {
    MPROC_TEST(shm_create_attach_unlink),
    MPROC_TEST(shm_bad_input),
    MPROC_TEST(shm_bad_handles_and_long_paths),
    MPROC_TEST(shm_random_name),
    MPROC_TEST(shm_attach_from_other_processes),
    MPROC_TEST(shm_removed_when_family_exits),
    MPROC_TEST(shm_removed_after_sigkill),
    MPROC_TEST(shm_kept_while_family_lives),
    MPROC_TEST(shm_keep_and_explicit_unlink),
};
MPROC_TEST_MAIN(tests)
