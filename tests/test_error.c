/* test_error.c - every entry of the error table has a name and a text. */
#include <string.h>

#include "harness.h"

static void every_entry_has_name_and_text(void **state) {
  (void)state;
  struct { int code; const char *name; const char *text; } all[] = {
#define XX(name, value, text) {value, #name, text},
      MPROC_ERRNO_MAP(XX)
#undef XX
  };
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
    assert_true(all[i].code < 0);
    assert_string_equal(mproc_err_name(all[i].code), all[i].name);
    assert_string_equal(mproc_strerror(all[i].code), all[i].text);
    /* mproc's own codes stay in the reserved range; errno ones outside. */
    if (all[i].code <= MPROC_ERR_MAX_)
      assert_true(all[i].code >= MPROC_ERR_MIN_);
    for (size_t j = 0; j < i; j++) assert_int_not_equal(all[i].code, all[j].code);
  }
}

static void unknown_codes(void **state) {
  (void)state;
  assert_string_equal(mproc_err_name(0), "OK");
  assert_string_equal(mproc_strerror(0), "success");
  assert_string_equal(mproc_err_name(-4998), "UNKNOWN");
  assert_string_equal(mproc_strerror(-4998), "unknown error");
  assert_string_equal(mproc_err_name(12345), "UNKNOWN");
  /* errno values outside the table still get the system's text. */
  assert_string_equal(mproc_err_name(-EXDEV), "EXDEV");
  assert_non_null(mproc_strerror(-EXDEV));
  assert_true(MPROC_EINVAL == -EINVAL);
  assert_true(MPROC_EOWNERDEAD == -4000);
}

static const struct CMUnitTest tests[] = {
    MPROC_TEST(every_entry_has_name_and_text),
    MPROC_TEST(unknown_codes),
};
MPROC_TEST_MAIN(tests)
