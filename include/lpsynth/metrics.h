/* lpsynth metrics: BLEU-4, generic (no domain), as NLTK 3.8 computes it.
 *
 * BLEU-4 (Papineni et al., 2002) is the geometric mean of the modified
 * (clipped) 1..4-gram precisions, times the brevity penalty:
 *
 *   BLEU = BP * exp(sum_{n=1..4} 1/4 * log p_n)
 *   p_n  = sum over sentences of clipped n-gram matches
 *          / sum over sentences of max(1, number of hypothesis n-grams)
 *   BP   = 1 if c > r, 0 if c == 0, else exp(1 - r/c)
 *
 * where c is the total hypothesis length and r the total of the reference
 * lengths closest to each hypothesis length (ties: the shorter reference).
 * A hypothesis n-gram's count is clipped to its largest count in any one
 * reference. This is exactly nltk.translate.bleu_score.corpus_bleu (and
 * sentence_bleu, which is corpus_bleu of one sentence), including its
 * max(1, .) denominators and "0 when no unigram matches at all".
 *
 * Smoothing (for n-gram orders without any match):
 *   LP_BLEU_SMOOTH_NONE     NLTK's method0: a zero precision counts as the
 *                           smallest positive double, so the score is ~0.
 *   LP_BLEU_SMOOTH_METHOD1  NLTK's SmoothingFunction().method1 (Chen &
 *                           Cherry 2014, "add epsilon"): a zero numerator
 *                           becomes epsilon = 0.1, p_n = 0.1 / denominator.
 *
 * Tokens (lp_bleu_tokenize, "code" tokenisation): maximal runs of word bytes
 * ([A-Za-z0-9_] and every byte >= 0x80, so any non-ASCII text stays inside
 * words), and every other non-whitespace byte on its own. Whitespace is
 * space, \t, \n, \v, \f, \r. "x.attr+=f(1)" -> x . attr + = f ( 1 ).
 * LP_BLEU_TOK_WHITESPACE splits on whitespace only (NLTK's str.split()).
 */
#ifndef LPSYNTH_METRICS_H
#define LPSYNTH_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "lpsynth/plugin.h" /* lp_err, LP_E* codes */

#ifdef __cplusplus
extern "C" {
#endif

#define LP_BLEU_MAX_N 4

typedef enum { LP_BLEU_SMOOTH_NONE = 0, LP_BLEU_SMOOTH_METHOD1 = 1 } lp_bleu_smoothing;
typedef enum { LP_BLEU_TOK_CODE = 0, LP_BLEU_TOK_WHITESPACE = 1 } lp_bleu_tokenizer;

/* A token: a view into the text it came from. */
typedef struct lp_token {
  const char *s;
  size_t len;
} lp_token;

/* Corpus accumulators; zero-initialise, then lp_bleu_add once per sentence. */
typedef struct lp_bleu_stats {
  uint64_t match[LP_BLEU_MAX_N]; /* clipped n-gram matches, n = 1..4 */
  uint64_t total[LP_BLEU_MAX_N]; /* sum of max(1, hypothesis n-grams) */
  uint64_t hyp_len, ref_len;     /* c and r */
  uint64_t n_sentences;
} lp_bleu_stats;

typedef struct lp_bleu_result {
  double bleu;                       /* 0..1 */
  double precision[LP_BLEU_MAX_N];   /* p_1..p_4 after smoothing */
  double bp;                         /* brevity penalty */
  uint64_t hyp_len, ref_len, n_sentences;
} lp_bleu_result;

/* Splits text[0..len) into tokens. Returns the number of tokens; writes at
 * most max of them into out (out may be NULL with max 0 to count). */
size_t lp_bleu_tokenize(const char *text, size_t len, lp_bleu_tokenizer how, lp_token *out,
                        size_t max);

/* Adds one hypothesis with its references (n_refs >= 1), already tokenised.
 * LP_OK, LP_EINVAL (no reference) or LP_ENOMEM. */
int lp_bleu_add_tokens(lp_bleu_stats *st, const lp_token *hyp, size_t n_hyp,
                       const lp_token *const *refs, const size_t *n_ref, size_t n_refs,
                       lp_err *err);
/* Same, tokenising the texts with `how` first. */
int lp_bleu_add(lp_bleu_stats *st, const char *hyp, size_t hyp_len, const char *const *refs,
                const size_t *ref_lens, size_t n_refs, lp_bleu_tokenizer how, lp_err *err);

/* Corpus BLEU-4 of the accumulated sentences (0 when there are none).
 * Fills out (if not NULL) and returns the score. */
double lp_bleu_score(const lp_bleu_stats *st, lp_bleu_smoothing sm, lp_bleu_result *out);

/* Sentence BLEU-4 of one hypothesis against one reference (texts). Returns
 * the score, or a negative LP_E* code on failure (out of memory). */
double lp_bleu_sentence(const char *hyp, size_t hyp_len, const char *ref, size_t ref_len,
                        lp_bleu_tokenizer how, lp_bleu_smoothing sm);

/* "none" / "method1" <-> enum. parse returns LP_OK or LP_EINVAL. */
int lp_bleu_smoothing_parse(const char *name, lp_bleu_smoothing *out);
const char *lp_bleu_smoothing_name(lp_bleu_smoothing sm);

#ifdef __cplusplus
}
#endif
#endif
