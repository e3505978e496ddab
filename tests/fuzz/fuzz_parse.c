/* Fuzz target: the string DSL's program parser, printer, token reader and
 * interpreter. Invariants checked (abort on violation):
 *   parse(text) ok  =>  print(parse(text)) == text (canonical text is strict),
 *                       from_tokens(to_tokens(p)) prints the same text;
 *   any id sequence =>  from_tokens never crashes; when it succeeds the
 *                       program runs on arbitrary bytes without crashing.
 * The first byte selects the mode: even = text, odd = ids + input bytes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strdsl.h"

static void fail(const char *what) {
  fprintf(stderr, "fuzz_parse: invariant violated: %s\n", what);
  abort();
}

static void run_all(const sd_prog *p, const uint8_t *in, size_t n) {
  sd_str s = {0}, out = {0};
  if (sd_decode((const char *)in, n, &s) == 0 && sd_eval(p, s.c, s.n, &out) == 0) {
    char *b = NULL;
    size_t bl = 0;
    if (sd_encode(out.c, out.n, &b, &bl) == 0) free(b);
  }
  sd_str_free(&s);
  sd_str_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  char err[256];
  sd_prog p = {0}, q = {0};
  if ((data[0] & 1) == 0) {
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    if (sd_parse(text, len, &p, err, sizeof err) == 0) {
      char *t = NULL;
      size_t tl = 0;
      if (sd_print(&p, &t, &tl) != 0) fail("print failed");
      if (tl != len || memcmp(t, text, len) != 0) fail("print(parse(text)) != text");
      int32_t *ids = NULL;
      size_t n = 0, cap = 0;
      if (sd_to_tokens(&p, &ids, &n, &cap) != 0) fail("to_tokens failed");
      if (sd_from_tokens(ids, n, &q, err, sizeof err) != 0) fail("from_tokens(to_tokens) failed");
      char *t2 = NULL;
      size_t tl2 = 0;
      if (sd_print(&q, &t2, &tl2) != 0 || tl2 != tl || memcmp(t2, t, tl) != 0)
        fail("tokens round trip changed the program");
      static const uint8_t in[] = "Mason Smith 42, e-mail@ex.com (x) \t ";
      run_all(&p, in, sizeof in - 1);
      free(t);
      free(t2);
      free(ids);
    }
  } else {
    size_t n_ids = (size - 1) / 4 < 64 ? (size - 1) / 4 : 64;
    int32_t ids[64];
    for (size_t i = 0; i < n_ids; i++) {
      /* Map bytes mostly into the vocabulary, sometimes outside it. */
      uint32_t v;
      memcpy(&v, data + 1 + 4 * i, 4);
      ids[i] = (v & 0x80000000u) ? (int32_t)v : (int32_t)(v % 320);
    }
    if (sd_from_tokens(ids, n_ids, &p, err, sizeof err) == 0) {
      size_t used = 1 + 4 * n_ids;
      run_all(&p, data + used, size - used);
    }
  }
  sd_prog_clear(&p);
  sd_prog_clear(&q);
  return 0;
}
