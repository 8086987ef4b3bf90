/* error.c - mproc_strerror() and mproc_err_name(), generated from the one
 * table MPROC_ERRNO_MAP in mproc.h. */
#include "internal.h"

#include <string.h>

const char *mproc_strerror(int err) {
  switch (err) {
    case 0:
      return "success";
#define XX(name, value, text) \
  case value:                 \
    return text;
    MPROC_ERRNO_MAP(XX)
#undef XX
    default:
      break;
  }
  if (err < 0 && err > -4000) {
    /* An errno outside the table: strerrordesc_np is static storage. */
    const char *s = strerrordesc_np(-err);
    if (s) return s;
  }
  return "unknown error";
}

const char *mproc_err_name(int err) {
  switch (err) {
    case 0:
      return "OK";
#define XX(name, value, text) \
  case value:                 \
    return #name;
    MPROC_ERRNO_MAP(XX)
#undef XX
    default:
      break;
  }
  if (err < 0 && err > -4000) {
    const char *s = strerrorname_np(-err);
    if (s) return s;
  }
  return "UNKNOWN";
}
