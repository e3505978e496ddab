/* Error reports: the one error setter of lpsynth (plugins get it as the host
 * table's set_error) and the prefixer. The lowest file of the runtime: it uses
 * nothing else of core/. */
#include "lpsynth/runtime.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int lp_err_set(lp_err *err, int code, const char *fmt, ...) {
  if (err) {
    va_list ap;
    va_start(ap, fmt);
    err->code = code;
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
  }
  return code;
}

int lp_err_prefix(lp_err *err, const char *fmt, ...) {
  if (!err) return LP_EINVAL;
  char pre[LP_ERR_MSG_MAX], old[LP_ERR_MSG_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(pre, sizeof pre, fmt, ap);
  va_end(ap);
  memcpy(old, err->msg, sizeof old);
  old[sizeof old - 1] = 0;
  snprintf(err->msg, sizeof err->msg, "%.400s: %.600s", pre, old);
  return err->code;
}
