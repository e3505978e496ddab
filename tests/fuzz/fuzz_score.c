/* Fuzz target: `lpsynth score`'s readers - the line reader of its
 * hypothesis and reference files (cli_lines_read, the CLI's own code), the
 * two tokenisers and BLEU over what they give.
 * Input: the hypotheses file, then "\0\0" and the references file (without
 * the separator, each line is its own reference).
 * Invariants: no crash, no leak; the lines hold every byte but the line ends;
 * counting tokens gives the number that tokenising gives; every BLEU is
 * finite and within [0, 1] for both smoothings and tokenisers; hypotheses
 * scored against themselves have BLEU 1 when every line has 4+ tokens. */
#define _GNU_SOURCE
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "lpsynth/metrics.h"

static int read_part(const uint8_t *p, size_t n, cli_lines *out) {
  FILE *f = fmemopen(n ? (void *)p : (void *)"", n, "rb");
  if (!f) abort();
  int rc = cli_lines_read(f, out);
  fclose(f);
  if (rc) return rc;
  /* only the line ends are dropped: one '\n' per line but maybe the last,
   * and a '\r' before it */
  size_t kept = 0;
  for (size_t i = 0; i < out->n; i++) kept += out->len[i];
  if (kept > n || n - kept > 2 * out->n || n - kept + 1 < out->n) abort();
  return 0;
}

static void check_bleu(double b) {
  if (!isfinite(b) || b < 0.0 || b > 1.0 + 1e-12) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const uint8_t *sep = NULL;
  for (size_t i = 0; i + 1 < size; i++)
    if (!data[i] && !data[i + 1]) {
      sep = data + i;
      break;
    }
  cli_lines h = {0}, r = {0};
  size_t nh = sep ? (size_t)(sep - data) : size;
  if (read_part(data, nh, &h)) abort();
  if (sep && read_part(sep + 2, size - nh - 2, &r)) abort();
  const cli_lines *ref = sep ? &r : &h;
  if (ref->n == h.n) {
    for (int how = 0; how < 2; how++) {
      lp_bleu_stats st;
      memset(&st, 0, sizeof st);
      int all_long = 1;
      for (size_t i = 0; i < h.n; i++) {
        size_t nt = lp_bleu_tokenize(h.v[i], h.len[i], (lp_bleu_tokenizer)how, NULL, 0);
        lp_token *tk = malloc((nt ? nt : 1) * sizeof *tk);
        if (lp_bleu_tokenize(h.v[i], h.len[i], (lp_bleu_tokenizer)how, tk, nt) != nt) abort();
        free(tk);
        if (nt < 4) all_long = 0;
        const char *rs[1] = {ref->v[i]};
        size_t rl[1] = {ref->len[i]};
        lp_err e = {0};
        lp_bleu_stats one;
        memset(&one, 0, sizeof one);
        if (lp_bleu_add(&one, h.v[i], h.len[i], rs, rl, 1, (lp_bleu_tokenizer)how, &e) != LP_OK)
          abort();
        if (lp_bleu_add(&st, h.v[i], h.len[i], rs, rl, 1, (lp_bleu_tokenizer)how, &e) != LP_OK)
          abort();
        check_bleu(lp_bleu_score(&one, LP_BLEU_SMOOTH_NONE, NULL));
        check_bleu(lp_bleu_score(&one, LP_BLEU_SMOOTH_METHOD1, NULL));
      }
      lp_bleu_result res;
      double b0 = lp_bleu_score(&st, LP_BLEU_SMOOTH_NONE, &res);
      double b1 = lp_bleu_score(&st, LP_BLEU_SMOOTH_METHOD1, NULL);
      check_bleu(b0);
      check_bleu(b1);
      if (res.n_sentences != h.n) abort();
      if (!sep && h.n && all_long && fabs(b0 - 1.0) > 1e-9) abort();
    }
  }
  cli_lines_free(&h);
  cli_lines_free(&r);
  return 0;
}
