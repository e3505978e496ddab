/* BLEU (core/metrics.c) on the cases of a JSONL file, for check_bleu.py:
 *   test_python_bleu CASES.jsonl
 * Each case is {"hyp": S, "refs": [S, ...], "tokenize": "code"|"whitespace"}.
 * Prints one JSON object: per case the tokens and the sentence BLEU with
 * smoothing method1 and none, and the corpus BLEU of all cases (each
 * tokenisation separately). Also checks a few fixed values itself. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lpsynth/metrics.h"
#include "lpsynth/runtime.h"

static json_t *tokens_json(const char *s, size_t n, lp_bleu_tokenizer how) {
  size_t k = lp_bleu_tokenize(s, n, how, NULL, 0);
  lp_token *t = malloc((k ? k : 1) * sizeof *t);
  lp_bleu_tokenize(s, n, how, t, k);
  json_t *a = json_array();
  for (size_t i = 0; i < k; i++) json_array_append_new(a, json_stringn(t[i].s, t[i].len));
  free(t);
  return a;
}

static int self_checks(void) {
  int bad = 0;
  /* identical sentences of 4+ tokens: 1; nothing in common: 0 */
  const char *s = "return a + b";
  double b = lp_bleu_sentence(s, strlen(s), s, strlen(s), LP_BLEU_TOK_CODE, LP_BLEU_SMOOTH_NONE);
  if (fabs(b - 1.0) > 1e-12) bad++, fprintf(stderr, "identical: %g\n", b);
  b = lp_bleu_sentence("x y z w", 7, "a b c d", 7, LP_BLEU_TOK_CODE, LP_BLEU_SMOOTH_METHOD1);
  if (b != 0.0) bad++, fprintf(stderr, "disjoint: %g\n", b);
  /* tokenisation */
  lp_token t[16];
  size_t n = lp_bleu_tokenize("self.x+=f(1)  caf\xc3\xa9_2", 21, LP_BLEU_TOK_CODE, t, 16);
  const char *want[] = {"self", ".", "x", "+", "=", "f", "(", "1", ")", "caf\xc3\xa9_2"};
  if (n != 10) bad++, fprintf(stderr, "%zu tokens\n", n);
  for (size_t i = 0; i < n && i < 10; i++)
    if (t[i].len != strlen(want[i]) || memcmp(t[i].s, want[i], t[i].len) != 0)
      bad++, fprintf(stderr, "token %zu: %.*s\n", i, (int)t[i].len, t[i].s);
  /* empty corpus, smoothing names */
  lp_bleu_stats st;
  memset(&st, 0, sizeof st);
  if (lp_bleu_score(&st, LP_BLEU_SMOOTH_METHOD1, NULL) != 0.0) bad++;
  lp_bleu_smoothing sm;
  if (lp_bleu_smoothing_parse("method1", &sm) || sm != LP_BLEU_SMOOTH_METHOD1 ||
      lp_bleu_smoothing_parse("method4", &sm) != LP_EINVAL ||
      strcmp(lp_bleu_smoothing_name(LP_BLEU_SMOOTH_NONE), "none") != 0)
    bad++, fprintf(stderr, "smoothing names\n");
  lp_err e = {0};
  if (lp_bleu_add(&st, "a", 1, NULL, NULL, 0, LP_BLEU_TOK_CODE, &e) != LP_EINVAL) bad++;
  return bad;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: test_python_bleu CASES.jsonl\n");
    return 2;
  }
  if (self_checks()) return 1;
  lp_err e = {0};
  lp_jsonl *r = lp_jsonl_open(argv[1], LP_JSONL_DEFAULT_MAX_LINE, &e);
  if (!r) {
    fprintf(stderr, "%s\n", e.msg);
    return 1;
  }
  lp_bleu_stats corpus[2];
  memset(corpus, 0, sizeof corpus);
  json_t *cases = json_array();
  const char *line;
  size_t len, lineno;
  int st;
  while ((st = lp_jsonl_next(r, &line, &len, &lineno, &e)) > 0) {
    json_error_t je;
    json_t *o = json_loadb(line, len, 0, &je);
    json_t *hyp = json_object_get(o, "hyp"), *refs = json_object_get(o, "refs");
    json_t *tk = json_object_get(o, "tokenize");
    if (!o || !json_is_string(hyp) || !json_is_array(refs) || json_array_size(refs) == 0) {
      fprintf(stderr, "%s:%zu: bad case\n", argv[1], lineno);
      return 1;
    }
    lp_bleu_tokenizer how = tk && json_is_string(tk) && !strcmp(json_string_value(tk), "whitespace")
                                ? LP_BLEU_TOK_WHITESPACE
                                : LP_BLEU_TOK_CODE;
    size_t nr = json_array_size(refs);
    const char **rs = calloc(nr, sizeof *rs);
    size_t *rl = calloc(nr, sizeof *rl);
    json_t *rt = json_array();
    for (size_t i = 0; i < nr; i++) {
      json_t *x = json_array_get(refs, i);
      rs[i] = json_string_value(x);
      rl[i] = json_string_length(x);
      json_array_append_new(rt, tokens_json(rs[i], rl[i], how));
    }
    lp_bleu_stats one;
    memset(&one, 0, sizeof one);
    if (lp_bleu_add(&one, json_string_value(hyp), json_string_length(hyp), rs, rl, nr, how, &e) ||
        lp_bleu_add(&corpus[how], json_string_value(hyp), json_string_length(hyp), rs, rl, nr,
                    how, &e)) {
      fprintf(stderr, "%s:%zu: %s\n", argv[1], lineno, e.msg);
      return 1;
    }
    json_t *c = json_object();
    json_object_set_new(c, "hyp_tokens",
                        tokens_json(json_string_value(hyp), json_string_length(hyp), how));
    json_object_set_new(c, "ref_tokens", rt);
    json_object_set_new(c, "method1", json_real(lp_bleu_score(&one, LP_BLEU_SMOOTH_METHOD1, NULL)));
    json_object_set_new(c, "none", json_real(lp_bleu_score(&one, LP_BLEU_SMOOTH_NONE, NULL)));
    json_array_append_new(cases, c);
    free(rs);
    free(rl);
    json_decref(o);
  }
  lp_jsonl_free(r);
  if (st < 0) {
    fprintf(stderr, "%s\n", e.msg);
    return 1;
  }
  json_t *out = json_object();
  json_object_set_new(out, "cases", cases);
  const char *names[2] = {"code", "whitespace"};
  for (int k = 0; k < 2; k++) {
    json_t *c = json_object();
    json_object_set_new(c, "method1", json_real(lp_bleu_score(&corpus[k], LP_BLEU_SMOOTH_METHOD1, NULL)));
    json_object_set_new(c, "none", json_real(lp_bleu_score(&corpus[k], LP_BLEU_SMOOTH_NONE, NULL)));
    char key[32];
    snprintf(key, sizeof key, "corpus_%s", names[k]);
    json_object_set_new(out, key, c);
  }
  json_dumpf(out, stdout, JSON_COMPACT | JSON_REAL_PRECISION(17));
  fputc('\n', stdout);
  json_decref(out);
  return 0;
}
