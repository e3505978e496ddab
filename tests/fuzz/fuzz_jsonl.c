/* Fuzz target: the JSONL line reader and the task-record parser, as `exec`,
 * `check` and training read files. Invariants: no crash, no leak; every line
 * either parses or fails with a non-empty message; line numbers increase. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "lpsynth/runtime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lp_err e = {0};
  lp_jsonl *r = lp_jsonl_open_mem((const char *)data, size, 512, &e);
  if (!r) abort();
  const char *line;
  size_t len, lineno = 0, last = 0;
  int st;
  while ((st = lp_jsonl_next(r, &line, &len, &lineno, &e)) != 0) {
    if (lineno <= last) abort();
    last = lineno;
    if (st < 0) {
      if (st != LP_ELIMIT || !e.msg[0]) abort();
      continue;
    }
    if (len > 512) abort();
    lp_record rec;
    e.msg[0] = 0;
    if (lp_record_parse(line, len, &rec, &e) != 0) {
      if (!e.msg[0]) abort();
    } else {
      lp_record_require(&rec, LP_REC_PROGRAM | LP_REC_INPUTS | LP_REC_OUTPUTS, &e);
      lp_record_free(&rec);
    }
  }
  lp_jsonl_free(r);
  return 0;
}
