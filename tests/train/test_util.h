/* Shared harness of the training tests (test_train_format.c,
 * test_train_model.c): the CHECK macro, config / position comparisons, the
 * paths given on the command line, a temporary directory per run, and the
 * case table. Included by one source file per executable (the statics are per
 * executable), after _POSIX_C_SOURCE is defined (mkdtemp). */
#ifndef LP_TESTS_TRAIN_TEST_UTIL_H
#define LP_TESTS_TRAIN_TEST_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lpsynth/checkpoint.h"
#include "lpsynth/model.h"
#include "lpsynth/runtime.h"

static int failures;
#define CHECK(cond, ...)                                    \
  do {                                                      \
    if (!(cond)) {                                          \
      fprintf(stderr, "%s:%d: FAIL: ", __FILE__, __LINE__); \
      fprintf(stderr, __VA_ARGS__);                         \
      fputc('\n', stderr);                                  \
      failures++;                                           \
    }                                                       \
  } while (0)

static inline int has(const char *s, const char *sub) { return strstr(s, sub) != NULL; }

/* Configs compare by their canonical text (no padding bytes involved). */
static inline int cfg_eq(const lp_model_cfg *a, const lp_model_cfg *b) {
  lp_buf x = {0}, y = {0};
  lp_model_cfg_to_text(a, &x);
  lp_model_cfg_to_text(b, &y);
  int eq = x.len == y.len && !memcmp(x.data, y.data, x.len);
  lp_buf_free(&x);
  lp_buf_free(&y);
  return eq;
}

static inline int pos_eq(const lp_train_pos *a, const lp_train_pos *b) {
  return a->step == b->step && a->rng_state == b->rng_state && a->init_seed == b->init_seed &&
         a->data_kind == b->data_kind && a->data_seed == b->data_seed &&
         a->next_task == b->next_task && a->seconds == b->seconds &&
         a->gen_min_size == b->gen_min_size && a->gen_max_size == b->gen_max_size &&
         a->gen_n_examples == b->gen_n_examples && a->hist_n == b->hist_n &&
         !memcmp(a->hist_loss, b->hist_loss,
                 (a->hist_n < LP_TRAIN_HIST_N ? a->hist_n : LP_TRAIN_HIST_N) * sizeof(double)) &&
         !memcmp(a->hist_acc, b->hist_acc,
                 (a->hist_n < LP_TRAIN_HIST_N ? a->hist_n : LP_TRAIN_HIST_N) * sizeof(double)) &&
         a->win_n == b->win_n && !memcmp(a->win, b->win, sizeof a->win);
}

static const char *string_so, *toy_so, *models_dir;
static char tmpdir[64];

/* tmpdir/name, in one of 8 rotating buffers. */
static inline const char *tmp(const char *name) {
  static char buf[8][256];
  static int k;
  k = (k + 1) % 8;
  snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
  return buf[k];
}

typedef struct test_case {
  const char *name;
  void (*fn)(void);
} test_case;

/* Runs the case called `name` in a fresh directory tmpdir (made from the
 * mkdtemp template `tmp_template`, removed afterwards) and reports it; the
 * exit status: 0 pass, 1 failures, 2 unknown case. */
static inline int run_case(const char *name, const test_case *cases, size_t n,
                           const char *tmp_template) {
  snprintf(tmpdir, sizeof tmpdir, "%s", tmp_template);
  if (!mkdtemp(tmpdir)) return 1;
  size_t i = 0;
  while (i < n && strcmp(cases[i].name, name) != 0) i++;
  if (i < n) cases[i].fn();
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf -- '%s'", tmpdir);
  if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", tmpdir);
  if (i == n) {
    fprintf(stderr, "unknown case %s\n", name);
    return 2;
  }
  if (failures) {
    fprintf(stderr, "%s: %d failure(s)\n", name, failures);
    return 1;
  }
  printf("%s: ok\n", name);
  return 0;
}

#endif
