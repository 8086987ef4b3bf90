/* test_error.c - the error table: known codes have their real names and
 * texts (spelled out here, not read back from the table), names agree with
 * the enum identifiers and with libc's errno names, every entry is unique
 * and has a text, unknown codes get the documented fallbacks. */
/* strerrorname_np (libc's own errno names) needs _GNU_SOURCE, which the build defines. */
#include <string.h>

#include "harness.h"

/* The table as the header declares it, for the structural checks. */
static const struct { int code; const char *name; const char *text; } table[] = {
#define XX(name, value, text) {value, #name, text},
    MPROC_ERRNO_MAP(XX)
#undef XX
};
#define TABLE_LEN (sizeof table / sizeof table[0])

static void every_entry_has_name_and_text(void **state) {
  (void)state;
  assert_true(TABLE_LEN >= 40); /* not emptied by accident */
  for (size_t i = 0; i < TABLE_LEN; i++) {
    assert_true(table[i].code < 0);
    assert_string_equal(mproc_err_name(table[i].code), table[i].name);
    assert_string_equal(mproc_strerror(table[i].code), table[i].text);
    assert_true(strlen(table[i].text) > 0);
    /* mproc's own codes stay in the reserved range; errno ones outside. */
    if (table[i].code <= MPROC_ERR_MAX_)
      assert_true(table[i].code >= MPROC_ERR_MIN_);
    for (size_t j = 0; j < i; j++) {
      assert_int_not_equal(table[i].code, table[j].code);
      assert_string_not_equal(table[i].name, table[j].name);
    }
  }
}

/* Names and texts written out literally: a table whose name, value or text
 * drifted fails here even though it still agrees with itself. */
static void known_codes_literally(void **state) {
  (void)state;
  assert_string_equal(mproc_err_name(-EINVAL), "EINVAL");
  assert_string_equal(mproc_strerror(-EINVAL), "invalid argument");
  assert_string_equal(mproc_err_name(-ETIMEDOUT), "ETIMEDOUT");
  assert_string_equal(mproc_strerror(-ETIMEDOUT), "timed out");
  assert_string_equal(mproc_err_name(-ENOMEM), "ENOMEM");
  assert_string_equal(mproc_err_name(-4000), "EOWNERDEAD");
  assert_string_equal(mproc_err_name(MPROC_EOWNERDEAD), "EOWNERDEAD");
  assert_string_equal(mproc_strerror(MPROC_EOWNERDEAD),
                      "the previous owner died holding the lock; it is now held by the caller");
  assert_string_equal(mproc_err_name(-4003), "EDESTROYED");
  assert_string_equal(mproc_strerror(MPROC_EDESTROYED), "object was destroyed (use after destroy)");
  assert_string_equal(mproc_err_name(-4015), "ENOTOWNER");
  assert_string_equal(mproc_err_name(-4016), "ESTOPITER");
  assert_true(MPROC_EINVAL == -EINVAL);
  assert_true(MPROC_ENAMETOOLONG == -ENAMETOOLONG);
  assert_true(MPROC_EOWNERDEAD == -4000);
  assert_true(MPROC_EBROKEN == -4006);
  assert_true(MPROC_ESTOPITER == -4016);
}

/* Each enum identifier, stringified here (not through the table), is the
 * name mproc_err_name gives its value. */
static void names_match_enum_identifiers(void **state) {
  (void)state;
#define ID(id) {MPROC_##id, #id}
  static const struct { int code; const char *name; } ids[] = {
      ID(EPERM),      ID(ENOENT),      ID(ESRCH),        ID(EINTR),
      ID(EIO),        ID(EBADF),       ID(ECHILD),       ID(EAGAIN),
      ID(ENOMEM),     ID(EACCES),      ID(EFAULT),       ID(EBUSY),
      ID(EEXIST),     ID(EINVAL),      ID(EMFILE),       ID(ENOSPC),
      ID(EPIPE),      ID(ERANGE),      ID(ENAMETOOLONG), ID(ENOSYS),
      ID(EOVERFLOW),  ID(EMSGSIZE),    ID(ENOTSUP),      ID(EADDRINUSE),
      ID(ECONNABORTED), ID(ECONNRESET), ID(ECONNREFUSED), ID(ETIMEDOUT),
      ID(ECANCELED),  ID(EOWNERDEAD),  ID(ECLOSED),      ID(ESTATE),
      ID(EDESTROYED), ID(EWORKERDIED), ID(ETASK),        ID(EBROKEN),
      ID(ETOOSHORT),  ID(EEOF),        ID(EAUTH),        ID(EPROTO),
      ID(ENOTREG),    ID(EFULL),       ID(EEMPTY),       ID(ECHILDFAIL),
      ID(ENOTOWNER),  ID(ESTOPITER),
  };
#undef ID
  assert_int_equal(sizeof ids / sizeof ids[0], TABLE_LEN);
  for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
    assert_string_equal(mproc_err_name(ids[i].code), ids[i].name);
  /* The errno entries carry libc's own name for their value (ENOTSUP is
   * the same number as EOPNOTSUPP on Linux, which libc names). */
  for (size_t i = 0; i < TABLE_LEN; i++) {
    if (table[i].code <= MPROC_ERR_MAX_) continue;
    const char *libc = strerrorname_np(-table[i].code);
    assert_non_null(libc);
    if (table[i].code == -ENOTSUP && strcmp(libc, "EOPNOTSUPP") == 0) continue;
    assert_string_equal(mproc_err_name(table[i].code), libc);
  }
}

/* mproc's own codes have real texts, not libc's "Unknown error N". */
static void own_codes_have_own_text(void **state) {
  (void)state;
  for (int code = MPROC_ERR_MAX_; code >= MPROC_ESTOPITER; code--) {
    const char *s = mproc_strerror(code);
    assert_non_null(s);
    assert_true(strlen(s) > 0);
    assert_string_not_equal(s, strerror(-code));
    assert_string_not_equal(s, "unknown error");
    assert_string_not_equal(mproc_err_name(code), "UNKNOWN");
  }
}

/* An errno outside the table (the Lock's -EDEADLK) still gets libc's name
 * and text. */
static void errno_outside_table(void **state) {
  (void)state;
  for (size_t i = 0; i < TABLE_LEN; i++) assert_int_not_equal(table[i].code, -EDEADLK);
  assert_string_equal(mproc_err_name(-EDEADLK), "EDEADLK");
  assert_string_equal(mproc_strerror(-EDEADLK), strerror(EDEADLK));
  assert_string_equal(mproc_err_name(-EXDEV), "EXDEV");
  assert_string_equal(mproc_strerror(-EXDEV), strerror(EXDEV));
}

static void unknown_codes(void **state) {
  (void)state;
  assert_string_equal(mproc_err_name(0), "OK");
  assert_string_equal(mproc_strerror(0), "success");
  /* The documented fallbacks: "UNKNOWN" and a generic text. */
  const int unknown[] = {-4998, -4017, -99999, -3000, 1, EINVAL, 12345, INT32_MAX, INT32_MIN};
  for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
    assert_string_equal(mproc_err_name(unknown[i]), "UNKNOWN");
    assert_string_equal(mproc_strerror(unknown[i]), "unknown error");
  }
  /* Never NULL nor empty, whatever the code. */
  for (int code = -5100; code <= 200; code++) {
    assert_true(mproc_err_name(code) && mproc_err_name(code)[0]);
    assert_true(mproc_strerror(code) && mproc_strerror(code)[0]);
  }
}

static const struct CMUnitTest tests[] = {
    MPROC_TEST(every_entry_has_name_and_text),
    MPROC_TEST(known_codes_literally),
    MPROC_TEST(names_match_enum_identifiers),
    MPROC_TEST(own_codes_have_own_text),
    MPROC_TEST(errno_outside_table),
    MPROC_TEST(unknown_codes),
};
MPROC_TEST_MAIN(tests)
