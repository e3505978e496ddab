/* Incremental decoding with key/value caches and batched beam search for one
 * task. The spec is encoded once; every decoder layer keeps the cross-
 * attention keys/values of the E examples' memories and a self-attention
 * cache of (hypotheses x E) rows; a step feeds one token per hypothesis.
 * The beam loop (rf_beam_run, beam.c) takes the decoder as step / reorder
 * callbacks: RobustFill's search (here) passes rf_inc_step / rf_inc_reorder,
 * the Latent Programmer's two levels (lp_search.c) their own. model.c's
 * lp_model_search / lp_model_score dispatch here for kind
 * LP_MODEL_ROBUSTFILL. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lpsynth/runtime.h"
#include "model_internal.h"

void rf_inc_release(lp_model *m) {
  rf_inc *c = &m->inc;
  if (c->cache)
    for (int l = 0; l < m->cfg.n_dec_layers; l++) lp_dec_block_cache_free(c->cache[l]);
  free(c->cache);
  free(c->x);
  free(c->xn);
  free(c->pooled);
  free(c->argmax);
  free(c->emask);
  free(c->ids);
  free(c->src);
  memset(c, 0, sizeof *c);
}

static int inc_ensure(lp_model *m, int H, int T, int E, int S) {
  rf_inc *c = &m->inc;
  if (c->cache && H <= c->cap_H && T <= c->cap_T && E <= c->cap_E && S <= c->cap_S)
    return LP_OK;
  int cH = H > c->cap_H ? H : c->cap_H, cT = T > c->cap_T ? T : c->cap_T;
  int cE = E > c->cap_E ? E : c->cap_E, cS = S > c->cap_S ? S : c->cap_S;
  rf_inc_release(m);
  c->cap_H = cH, c->cap_T = cT, c->cap_E = cE, c->cap_S = cS;
  const size_t N = (size_t)cH * cE, D = (size_t)m->cfg.d_model;
  c->cache = calloc((size_t)m->cfg.n_dec_layers, sizeof *c->cache);
  c->x = malloc(sizeof(float) * N * D);
  c->xn = malloc(sizeof(float) * N * D);
  c->pooled = malloc(sizeof(float) * (size_t)cH * D);
  c->argmax = malloc(sizeof(int32_t) * (size_t)cH * D);
  c->emask = malloc(N);
  c->ids = malloc(sizeof(int32_t) * N);
  c->src = malloc(sizeof(int32_t) * N);
  int ok = c->cache && c->x && c->xn && c->pooled && c->argmax && c->emask && c->ids && c->src;
  for (int l = 0; ok && l < m->cfg.n_dec_layers; l++)
    ok = (c->cache[l] = lp_dec_block_cache_new(&m->dec[l], (int)N, cT, cE, cS)) != NULL;
  if (!ok) {
    rf_inc_release(m);
    return LP_ENOMEM;
  }
  return LP_OK;
}

int rf_inc_start(lp_model *m, const uint8_t *emask, int max_hyps, int max_len, lp_err *err) {
  if (!m || !emask || max_hyps < 1 || max_len < 1 || m->B != 1)
    return lp_err_set(err, LP_EINVAL, "incremental decoding needs an encoded batch of one task");
  const int E = m->E;
  int S;
  const uint8_t *mmask;
  const float *mem = rf_memory(m, &S, &mmask);
  if (inc_ensure(m, max_hyps, max_len, E, S) != LP_OK)
    return lp_err_set(err, LP_ENOMEM, "out of memory for the decoder caches (%d x %d rows, %d "
                      "positions)", max_hyps, E, max_len);
  rf_inc *c = &m->inc;
  for (int l = 0; l < m->cfg.n_dec_layers; l++)
    if (lp_dec_block_cache_set_mem(&m->dec[l], m->params, c->cache[l], mem, mmask, E, S) !=
        LP_OK)
      return lp_err_set(err, LP_EINVAL, "decoder cache: bad memory shape");
  for (int h = 0; h < c->cap_H; h++) memcpy(c->emask + (size_t)h * E, emask, (size_t)E);
  c->E = E;
  c->started = 1;
  return LP_OK;
}

int rf_inc_step(lp_model *m, const int32_t *tokens, int n, float *logits, lp_err *err) {
  rf_inc *c = &m->inc;
  if (!c->started || !tokens || !logits || n < 1 || n > c->cap_H)
    return lp_err_set(err, LP_EINVAL, "incremental step: bad arguments (%d hypotheses)", n);
  const int E = c->E, N = n * E, D = m->cfg.d_model, V = m->prog_v.size;
  const float *P = m->params;
  const int pos = lp_dec_block_cache_len(c->cache[0]);
  if (pos >= c->cap_T)
    return lp_err_set(err, LP_EINVAL, "incremental step: past the last position (%d)", pos);
  for (int h = 0; h < n; h++) {
    if (tokens[h] < 0 || tokens[h] >= V)
      return lp_err_set(err, LP_EINVAL, "incremental step: token %d outside [0, %d)",
                        (int)tokens[h], V);
    for (int e = 0; e < E; e++) c->ids[h * E + e] = tokens[h];
  }
  int rc = lp_embedding_forward(c->x, c->ids, P + m->emb_prog, N, V, D, m->prog_v.pad);
  if (rc == LP_OK) rc = lp_posenc_forward(c->x, c->x, N, 1, D, pos);
  for (int l = 0; rc == LP_OK && l < m->cfg.n_dec_layers; l++)
    rc = lp_dec_block_step(&m->dec[l], P, c->cache[l], c->x, c->x, N);
  if (rc == LP_OK)
    rc = lp_layernorm_forward(c->xn, NULL, NULL, c->x, P + m->ln_dec.g, P + m->ln_dec.b, N, D,
                              m->bcfg.ln_eps);
  if (rc == LP_OK)
    rc = lp_maxpool_examples_forward(c->pooled, c->argmax, c->xn, c->emask, n, E, D);
  if (rc == LP_OK) rc = lp_linear_forward(logits, c->pooled, P + m->out_w, P + m->out_b, n, D, V);
  if (rc != LP_OK)
    return lp_err_set(err, rc, "incremental step failed (%s)",
                      rc == LP_ENOMEM ? "out of memory" : "bad arguments");
  return LP_OK;
}

int rf_inc_reorder(lp_model *m, const int32_t *parent, int n, lp_err *err) {
  rf_inc *c = &m->inc;
  if (!c->started || !parent || n < 1 || n > c->cap_H)
    return lp_err_set(err, LP_EINVAL, "reorder: bad arguments");
  const int E = c->E;
  for (int h = 0; h < n; h++)
    for (int e = 0; e < E; e++) c->src[h * E + e] = parent[h] * E + e;
  for (int l = 0; l < m->cfg.n_dec_layers; l++)
    if (lp_dec_block_cache_reorder(c->cache[l], c->src, n * E) != LP_OK)
      return lp_err_set(err, LP_EINVAL, "reorder: parent index out of range");
  return LP_OK;
}

/* ---- beam search ---------------------------------------------------------------- */

/* RobustFill's decoder as the beam's step and reorder (ctx: the model) */
static int inc_step(void *m, const int32_t *tok, int n, float *logits, lp_err *err) {
  return rf_inc_step(m, tok, n, logits, err);
}

static int inc_reorder(void *m, const int32_t *parent, int n, lp_err *err) {
  return rf_inc_reorder(m, parent, n, err);
}

int rf_search(lp_model *m, const lp_batch *b, const lp_beam_opts *o, lp_beam_result *out,
              lp_err *err) {
  int max_len = o->max_len;
  int rc = rf_search_prep(m, b, o->beam, &max_len, o->len_alpha, err);
  if (rc != LP_OK) return rc;
  if ((rc = rf_inc_start(m, b->emask, o->beam, max_len, err)) != LP_OK) return rc;
  return rf_beam_search(m, o, max_len, m, inc_step, inc_reorder, out, err);
}

/* ---- teacher-forced scoring ------------------------------------------------------ */

/* RobustFill's decoder for rf_force: each chunk restarts the caches */
typedef struct rf_score_ctx {
  lp_model *m;
  const uint8_t *emask;
  int H, len;
} rf_score_ctx;

static int score_start(void *ctx, lp_err *err) {
  rf_score_ctx *c = ctx;
  return rf_inc_start(c->m, c->emask, c->H, c->len, err);
}

static int score_step(void *ctx, const int32_t *tok, int n, float *logits, lp_err *err) {
  return rf_inc_step(((rf_score_ctx *)ctx)->m, tok, n, logits, err);
}

static int score_reorder(void *ctx, const int32_t *parent, int n, lp_err *err) {
  return rf_inc_reorder(((rf_score_ctx *)ctx)->m, parent, n, err);
}

int rf_score(lp_model *m, const lp_batch *b, const int32_t *const *progs, const int *lens, int n,
             int latent_beam, int max_len, double *scores, lp_err *err) {
  (void)latent_beam;
  rf_score_ctx c = {m, b->emask, n < RF_SCORE_CHUNK ? n : RF_SCORE_CHUNK, max_len};
  const lp_vocab_info *pv = &m->prog_v;
  return rf_force(&c, score_start, score_step, score_reorder, pv->size, pv->bos, c.H, progs, lens,
                  n, scores, err);
}
