/* BLEU-4 as NLTK 3.8 computes it (see include/lpsynth/metrics.h). */
#include "lpsynth/metrics.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lpsynth/runtime.h"

static int is_space(unsigned char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}
static int is_word(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c >= 0x80;
}

size_t lp_bleu_tokenize(const char *text, size_t len, lp_bleu_tokenizer how, lp_token *out,
                        size_t max) {
  const unsigned char *u = (const unsigned char *)text;
  size_t n = 0, i = 0;
  while (i < len) {
    if (is_space(u[i])) {
      i++;
      continue;
    }
    size_t a = i;
    if (how == LP_BLEU_TOK_WHITESPACE) {
      while (i < len && !is_space(u[i])) i++;
    } else if (is_word(u[i])) {
      while (i < len && is_word(u[i])) i++;
    } else {
      i++;
    }
    if (n < max && out) {
      out[n].s = text + a;
      out[n].len = i - a;
    }
    n++;
  }
  return n;
}

/* ---- interning tokens of one sentence as small integers ---- */

typedef struct intern {
  const lp_token **slot; /* open addressing; NULL = empty */
  int32_t *id;
  size_t cap, n;
} intern;

static uint64_t tok_hash(const lp_token *t) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < t->len; i++) h = (h ^ (unsigned char)t->s[i]) * 1099511628211ull;
  return h;
}

static int intern_init(intern *in, size_t n_tokens) {
  size_t cap = 16;
  while (cap < 2 * n_tokens + 1) cap *= 2;
  in->slot = calloc(cap, sizeof *in->slot);
  in->id = calloc(cap, sizeof *in->id);
  in->cap = cap;
  in->n = 0;
  return in->slot && in->id ? 0 : -1;
}

static void intern_free(intern *in) {
  free(in->slot);
  free(in->id);
}

static int32_t intern_id(intern *in, const lp_token *t) {
  size_t i = (size_t)tok_hash(t) & (in->cap - 1);
  while (in->slot[i]) {
    const lp_token *o = in->slot[i];
    if (o->len == t->len && (t->len == 0 || memcmp(o->s, t->s, t->len) == 0)) return in->id[i];
    i = (i + 1) & (in->cap - 1);
  }
  in->slot[i] = t;
  in->id[i] = (int32_t)in->n++;
  return in->id[i];
}

typedef struct gram {
  int32_t t[LP_BLEU_MAX_N];
} gram;

static int cmp_gram(const void *a, const void *b) {
  const gram *x = a, *y = b;
  for (int i = 0; i < LP_BLEU_MAX_N; i++)
    if (x->t[i] != y->t[i]) return x->t[i] < y->t[i] ? -1 : 1;
  return 0;
}

/* The sorted n-grams of ids[0..n); returns their number. */
static size_t grams(const int32_t *ids, size_t n, int order, gram *out) {
  if (n < (size_t)order) return 0;
  size_t k = n - (size_t)order + 1;
  for (size_t i = 0; i < k; i++) {
    for (int j = 0; j < LP_BLEU_MAX_N; j++) out[i].t[j] = j < order ? ids[i + (size_t)j] : -1;
  }
  qsort(out, k, sizeof *out, cmp_gram);
  return k;
}

/* Occurrences of g in the sorted v[0..n). */
static size_t count_in(const gram *v, size_t n, const gram *g) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (cmp_gram(&v[mid], g) < 0) lo = mid + 1;
    else hi = mid;
  }
  size_t c = 0;
  while (lo + c < n && cmp_gram(&v[lo + c], g) == 0) c++;
  return c;
}

int lp_bleu_add_tokens(lp_bleu_stats *st, const lp_token *hyp, size_t n_hyp,
                       const lp_token *const *refs, const size_t *n_ref, size_t n_refs,
                       lp_err *err) {
  if (!st || n_refs == 0 || !refs || !n_ref)
    return lp_err_set(err, LP_EINVAL, "BLEU: a hypothesis needs at least one reference");
  size_t total = n_hyp, longest = n_hyp;
  for (size_t r = 0; r < n_refs; r++) {
    total += n_ref[r];
    if (n_ref[r] > longest) longest = n_ref[r];
  }
  intern in;
  int32_t *hid = malloc((n_hyp ? n_hyp : 1) * sizeof *hid);
  int32_t *rid = malloc((longest ? longest : 1) * sizeof *rid);
  gram *hg = malloc((n_hyp ? n_hyp : 1) * sizeof *hg);
  gram *rg = malloc((longest ? longest : 1) * sizeof *rg);
  size_t *best = calloc(n_hyp ? n_hyp : 1, sizeof *best);
  if (intern_init(&in, total) || !hid || !rid || !hg || !rg || !best) {
    intern_free(&in);
    free(hid), free(rid), free(hg), free(rg), free(best);
    return lp_err_set(err, LP_ENOMEM, "BLEU: out of memory");
  }
  for (size_t i = 0; i < n_hyp; i++) hid[i] = intern_id(&in, &hyp[i]);
  for (int order = 1; order <= LP_BLEU_MAX_N; order++) {
    size_t nh = grams(hid, n_hyp, order, hg);
    memset(best, 0, (n_hyp ? n_hyp : 1) * sizeof *best);
    for (size_t r = 0; r < n_refs; r++) {
      for (size_t i = 0; i < n_ref[r]; i++) rid[i] = intern_id(&in, &refs[r][i]);
      size_t nr = grams(rid, n_ref[r], order, rg);
      /* for each distinct hypothesis n-gram (first of its run), its count here */
      for (size_t i = 0; i < nh; i++) {
        if (i > 0 && cmp_gram(&hg[i - 1], &hg[i]) == 0) continue;
        size_t c = count_in(rg, nr, &hg[i]);
        if (c > best[i]) best[i] = c;
      }
    }
    uint64_t matched = 0;
    for (size_t i = 0; i < nh;) {
      size_t j = i;
      while (j < nh && cmp_gram(&hg[i], &hg[j]) == 0) j++;
      size_t have = j - i;
      matched += have < best[i] ? have : best[i];
      i = j;
    }
    st->match[order - 1] += matched;
    st->total[order - 1] += nh > 0 ? nh : 1;
  }
  /* closest reference length; ties go to the shorter one */
  size_t closest = n_ref[0];
  for (size_t r = 1; r < n_refs; r++) {
    size_t d = n_ref[r] > n_hyp ? n_ref[r] - n_hyp : n_hyp - n_ref[r];
    size_t dc = closest > n_hyp ? closest - n_hyp : n_hyp - closest;
    if (d < dc || (d == dc && n_ref[r] < closest)) closest = n_ref[r];
  }
  st->hyp_len += n_hyp;
  st->ref_len += closest;
  st->n_sentences++;
  intern_free(&in);
  free(hid), free(rid), free(hg), free(rg), free(best);
  return LP_OK;
}

int lp_bleu_add(lp_bleu_stats *st, const char *hyp, size_t hyp_len, const char *const *refs,
                const size_t *ref_lens, size_t n_refs, lp_bleu_tokenizer how, lp_err *err) {
  if (n_refs == 0 || !refs || !ref_lens)
    return lp_err_set(err, LP_EINVAL, "BLEU: a hypothesis needs at least one reference");
  size_t nh = lp_bleu_tokenize(hyp, hyp_len, how, NULL, 0);
  lp_token *ht = malloc((nh ? nh : 1) * sizeof *ht);
  lp_token **rt = calloc(n_refs, sizeof *rt);
  size_t *nr = calloc(n_refs, sizeof *nr);
  int rc = ht && rt && nr ? LP_OK : LP_ENOMEM;
  if (rc == LP_OK) lp_bleu_tokenize(hyp, hyp_len, how, ht, nh);
  for (size_t r = 0; rc == LP_OK && r < n_refs; r++) {
    nr[r] = lp_bleu_tokenize(refs[r], ref_lens[r], how, NULL, 0);
    rt[r] = malloc((nr[r] ? nr[r] : 1) * sizeof **rt);
    if (!rt[r]) rc = LP_ENOMEM;
    else lp_bleu_tokenize(refs[r], ref_lens[r], how, rt[r], nr[r]);
  }
  if (rc == LP_OK)
    rc = lp_bleu_add_tokens(st, ht, nh, (const lp_token *const *)rt, nr, n_refs, err);
  else
    lp_err_set(err, LP_ENOMEM, "BLEU: out of memory");
  for (size_t r = 0; rt && r < n_refs; r++) free(rt[r]);
  free(rt);
  free(nr);
  free(ht);
  return rc;
}

double lp_bleu_score(const lp_bleu_stats *st, lp_bleu_smoothing sm, lp_bleu_result *out) {
  lp_bleu_result r;
  memset(&r, 0, sizeof r);
  if (st) {
    r.hyp_len = st->hyp_len;
    r.ref_len = st->ref_len;
    r.n_sentences = st->n_sentences;
  }
  if (!st || st->n_sentences == 0) {
    if (out) *out = r;
    return 0.0;
  }
  double c = (double)st->hyp_len, rl = (double)st->ref_len;
  r.bp = st->hyp_len > st->ref_len ? 1.0 : st->hyp_len == 0 ? 0.0 : exp(1.0 - rl / c);
  for (int n = 0; n < LP_BLEU_MAX_N; n++) {
    double d = (double)st->total[n];
    if (st->match[n] > 0) r.precision[n] = (double)st->match[n] / d;
    else if (sm == LP_BLEU_SMOOTH_METHOD1) r.precision[n] = 0.1 / d;
    else r.precision[n] = DBL_MIN; /* NLTK method0: sys.float_info.min */
  }
  if (st->match[0] == 0) {
    r.bleu = 0.0; /* NLTK: no unigram matches at all */
  } else {
    double s = 0.0;
    for (int n = 0; n < LP_BLEU_MAX_N; n++)
      if (r.precision[n] > 0) s += 0.25 * log(r.precision[n]);
    r.bleu = r.bp * exp(s);
  }
  if (out) *out = r;
  return r.bleu;
}

double lp_bleu_sentence(const char *hyp, size_t hyp_len, const char *ref, size_t ref_len,
                        lp_bleu_tokenizer how, lp_bleu_smoothing sm) {
  lp_bleu_stats st;
  memset(&st, 0, sizeof st);
  const char *refs[1] = {ref};
  size_t lens[1] = {ref_len};
  int rc = lp_bleu_add(&st, hyp, hyp_len, refs, lens, 1, how, NULL);
  if (rc) return rc;
  return lp_bleu_score(&st, sm, NULL);
}

int lp_bleu_smoothing_parse(const char *name, lp_bleu_smoothing *out) {
  if (name && strcmp(name, "none") == 0) *out = LP_BLEU_SMOOTH_NONE;
  else if (name && strcmp(name, "method1") == 0) *out = LP_BLEU_SMOOTH_METHOD1;
  else return LP_EINVAL;
  return LP_OK;
}

const char *lp_bleu_smoothing_name(lp_bleu_smoothing sm) {
  return sm == LP_BLEU_SMOOTH_METHOD1 ? "method1" : "none";
}
