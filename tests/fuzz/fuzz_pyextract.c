/* Fuzz target: the python domain's pair extraction (py_extract, behind
 * extract_pairs and `lpsynth corpus`), and anonymisation of what it finds.
 * The input is a source file; like `corpus`, only text that is valid UTF-8
 * without NUL bytes is extracted (the rest is skipped before).
 * Invariants: no crash, no leak; a refused file has a position and a reason;
 * every pair has a name, a line, a non-empty docstring and code that are
 * valid UTF-8 without NUL, the code ends with a newline; a function skipped
 * as too long comes without docstring or code; anonymising the code works. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pyint.h"

static int on_pair(void *ctx, const py_pair *p) {
  (void)ctx;
  if (!p->name || !p->name_len || p->line < 1) abort();
  if (p->too_long) {
    if (p->doc || p->code) abort();
    return 0;
  }
  if (!p->doc_len || !p->code_len || p->code[p->code_len - 1] != '\n') abort();
  if (memchr(p->doc, 0, p->doc_len) || memchr(p->code, 0, p->code_len)) abort();
  if (!py_utf8_valid(p->doc, p->doc_len, NULL) || !py_utf8_valid(p->code, p->code_len, NULL))
    abort();
  py_buf out = {0};
  py_anon_info info;
  if (py_anonymise(p->code, p->code_len, &out, &info) != PY_OK) abort();
  if (info.status == PY_ANON_OK && !py_utf8_valid(out.data, out.len, NULL)) abort();
  py_buf_free(&out);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *s = (const char *)data;
  if (memchr(s, 0, size) || !py_utf8_valid(s, size, NULL)) return 0;
  py_extract_info info;
  int rc = py_extract(s, size, on_pair, NULL, &info);
  if (rc == PY_EPARSE && (!info.err_what[0] || info.err_line < 1 || info.err_col < 1)) abort();
  if (rc != PY_OK && rc != PY_EPARSE) abort();
  if (rc == PY_OK && info.emitted + info.only_docstring + info.broken + info.too_long >
                         info.with_docstring)
    abort();
  return 0;
}
