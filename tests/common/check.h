/* The CHECK macro of the C tests that count their own checks and failures
 * (include it once, from the test's .c; main reports `checks` and `failures`).
 * CHECK(cond, fmt, ...) counts a check and, when cond is false, a failure,
 * with FILE:LINE and the printf-style message: on stderr as
 * "FILE:LINE: FAILED: message", or, when CHECK_ON_STDOUT is defined before the
 * include, on stdout as "FAIL FILE:LINE: message" (in line with what such a
 * test prints there itself). */
#ifndef LPSYNTH_TESTS_CHECK_H
#define LPSYNTH_TESTS_CHECK_H

#include <stdio.h>

static int failures, checks;

#ifdef CHECK_ON_STDOUT
#define CHECK_STREAM_ stdout
#define CHECK_HEAD_ "FAIL %s:%d: "
#else
#define CHECK_STREAM_ stderr
#define CHECK_HEAD_ "%s:%d: FAILED: "
#endif

#define CHECK(cond, ...)                                           \
  do {                                                             \
    checks++;                                                      \
    if (!(cond)) {                                                 \
      failures++;                                                  \
      fprintf(CHECK_STREAM_, CHECK_HEAD_, __FILE__, __LINE__);     \
      fprintf(CHECK_STREAM_, __VA_ARGS__);                         \
      fputc('\n', CHECK_STREAM_);                                  \
    }                                                              \
  } while (0)

#endif
