/* RobustFill[LSTM]'s incremental decoder, beam search and scoring (kind
 * LP_MODEL_RF_LSTM; the model is rf_lstm.c's). The spec is encoded once
 * (rfl_encode, one task); the decoder keeps one LSTM state per (hypothesis,
 * example) row, and a step runs the decoder's step of rf_lstm.c for all rows
 * at once: the attention of every hypothesis to example e's memory is one
 * product per example (the memory is shared, not copied per hypothesis). The
 * beam loop and teacher forcing are beam.c's (rf_beam_search, rf_force).
 * Uses rf_lstm.c, beam.c, stacks.c. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lpsynth/runtime.h"
#include "model_internal.h"

static void inc_release(rfl_inc *c) {
  free(c->mem);
  memset(c, 0, sizeof *c);
}

void rfl_free(lp_model *m) {
  if (m->lstm) inc_release(&m->lstm->inc);
  rfl_release(m);
}

static void inc_carve(lp_carve *k, rfl_inc *c, int D, int H, int Cd) {
  const size_t R = (size_t)c->cap_H * c->cap_E, f = sizeof(float), h = (size_t)H;
  c->h = lp_carve_take(k, f * R * h);
  c->c = lp_carve_take(k, f * R * h);
  c->h2 = lp_carve_take(k, f * R * h);
  c->c2 = lp_carve_take(k, f * R * h);
  c->x = lp_carve_take(k, f * R * D);
  c->qi = lp_carve_take(k, f * R * h);
  c->si = lp_carve_take(k, f * R * h);
  c->qo = lp_carve_take(k, f * R * h);
  c->so = lp_carve_take(k, f * R * h);
  c->xc = lp_carve_take(k, f * R * Cd);
  c->z = lp_carve_take(k, f * R * 4 * h);
  c->p = lp_carve_take(k, f * R * h);
  c->sc = lp_carve_take(k, f * R * c->cap_S);
  c->pooled = lp_carve_take(k, f * c->cap_H * h);
  c->argmax = lp_carve_take(k, sizeof(int32_t) * c->cap_H * h);
  c->ids = lp_carve_take(k, sizeof(int32_t) * R);
  c->emask = lp_carve_take(k, R);
}

static int inc_ensure(lp_model *m, int Hy, int E, int S) {
  rfl_inc *c = &m->lstm->inc;
  if (c->mem && Hy <= c->cap_H && E <= c->cap_E && S <= c->cap_S) return LP_OK;
  const int cH = Hy > c->cap_H ? Hy : c->cap_H, cE = E > c->cap_E ? E : c->cap_E;
  const int cS = S > c->cap_S ? S : c->cap_S;
  inc_release(c);
  c->cap_H = cH, c->cap_E = cE, c->cap_S = cS;
  const int D = m->cfg.d_model, H = m->cfg.d_ff, Cd = D + m->n_parts * H;
  lp_carve k = {NULL, 0};
  inc_carve(&k, c, D, H, Cd);
  c->mem = aligned_alloc(64, lp_carve_bytes(&k));
  if (!c->mem) {
    inc_release(c);
    return LP_ENOMEM;
  }
  k.base = c->mem;
  k.used = 0;
  inc_carve(&k, c, D, H, Cd);
  return LP_OK;
}

int rfl_inc_start(lp_model *m, const uint8_t *emask, int max_hyps, int max_len, lp_err *err) {
  if (!m || !m->lstm || !emask || max_hyps < 1 || max_len < 1 || m->B != 1)
    return lp_err_set(err, LP_EINVAL, "incremental decoding needs an encoded batch of one task");
  const int E = m->E, H = m->cfg.d_ff;
  const int S = m->To > m->Ti ? m->To : m->Ti;
  if (inc_ensure(m, max_hyps, E, S) != LP_OK)
    return lp_err_set(err, LP_ENOMEM, "out of memory for the decoder state (%d x %d rows)",
                      max_hyps, E);
  rfl_inc *c = &m->lstm->inc;
  const rfl_acts *a = &m->lstm->a;
  /* every hypothesis starts from the encoders' final states */
  for (int h = 0; h < max_hyps; h++) {
    memcpy(c->h + (size_t)h * E * H, a->hf, sizeof(float) * (size_t)E * H);
    memcpy(c->c + (size_t)h * E * H, a->cf, sizeof(float) * (size_t)E * H);
    memcpy(c->emask + (size_t)h * E, emask, (size_t)E);
  }
  c->E = E, c->pos = 0, c->max_len = max_len, c->started = 1;
  return LP_OK;
}

/* ctx[rows,H] (row h*E+e) = attention of q[rows,H] to example e's memory
 * mem[E,S,H] (key mask km[E,S]) for n hypotheses: per example one product of
 * the n queries with its keys, a masked softmax (a row without a valid key
 * gets 0, as lp_attention), one product with its values. sc: [n,S] scratch. */
static void attend(float *ctx, const float *q, const float *mem, const uint8_t *km, float *sc,
                   int n, int E, int S, int H) {
  const float scale = 1.0f / sqrtf((float)H);
  const int ld = E * H;
  for (int e = 0; e < E; e++) {
    const float *me = mem + (size_t)e * S * H;
    const uint8_t *ke = km + (size_t)e * S;
    lp_gemm(0, 1, n, S, H, scale, q + (size_t)e * H, ld, me, H, 0.0f, sc, S);
    int any = 0;
    for (int j = 0; j < S; j++) any |= ke[j];
    for (int i = 0; i < n; i++) {
      float *r = sc + (size_t)i * S, mx = -INFINITY;
      for (int j = 0; j < S; j++)
        if (ke[j] && r[j] > mx) mx = r[j];
      double sum = 0.0;
      for (int j = 0; j < S; j++) {
        r[j] = any && ke[j] ? expf(r[j] - mx) : 0.0f;
        sum += r[j];
      }
      const float inv = sum > 0.0 ? (float)(1.0 / sum) : 0.0f;
      for (int j = 0; j < S; j++) r[j] *= inv;
    }
    lp_gemm(0, 0, n, H, S, 1.0f, sc, S, me, H, 0.0f, ctx + (size_t)e * H, ld);
  }
}

int rfl_inc_step(lp_model *m, const int32_t *tokens, int n, float *logits, lp_err *err) {
  rfl_inc *c = m->lstm ? &m->lstm->inc : NULL;
  if (!c || !c->started || !tokens || !logits || n < 1 || n > c->cap_H)
    return lp_err_set(err, LP_EINVAL, "incremental step: bad arguments (%d hypotheses)", n);
  if (c->pos >= c->max_len)
    return lp_err_set(err, LP_EINVAL, "incremental step: past the last position (%d)", c->pos);
  const struct rfl *R = m->lstm;
  const rfl_acts *a = &m->lstm->a;
  const int E = c->E, N = n * E, D = m->cfg.d_model, H = m->cfg.d_ff, V = m->prog_v.size;
  const int two = m->n_parts == 2, Cd = D + (two ? 2 : 1) * H, G = 4 * H;
  const float *P = m->params;
  for (int h = 0; h < n; h++) {
    if (tokens[h] < 0 || tokens[h] >= V)
      return lp_err_set(err, LP_EINVAL, "incremental step: token %d outside [0, %d)",
                        (int)tokens[h], V);
    for (int e = 0; e < E; e++) c->ids[h * E + e] = tokens[h];
  }
  int rc = lp_embedding_forward(c->x, c->ids, P + R->dec_emb, N, V, D, m->prog_v.pad);
  if (rc == LP_OK) rc = lp_linear_forward(c->qi, c->h, P + R->dec_qi, NULL, N, H, H);
  if (rc == LP_OK) attend(c->si, c->qi, a->h_in, a->k_in, c->sc, n, E, m->Ti, H);
  if (rc == LP_OK && two) {
    rc = lp_linear_forward(c->qo, c->h, P + R->dec_qo, NULL, N, H, H);
    lp_gemm(0, 0, N, H, H, 1.0f, c->si, H, P + R->dec_qo + (size_t)H * H, H, 1.0f, c->qo, H);
    if (rc == LP_OK) attend(c->so, c->qo, a->e_out, a->k_out, c->sc, n, E, m->To, H);
  }
  for (int r = 0; rc == LP_OK && r < N; r++) {
    float *xr = c->xc + (size_t)r * Cd;
    memcpy(xr, c->x + (size_t)r * D, sizeof(float) * (size_t)D);
    memcpy(xr + D, c->si + (size_t)r * H, sizeof(float) * (size_t)H);
    if (two) memcpy(xr + D + H, c->so + (size_t)r * H, sizeof(float) * (size_t)H);
  }
  /* the LSTM step, its state updated in place (c0 is read before c is written) */
  if (rc == LP_OK) rc = lp_linear_forward(c->z, c->xc, P + R->dec_wx, P + R->dec_b, N, Cd, G);
  if (rc == LP_OK) {
    lp_gemm(0, 0, N, G, H, 1.0f, c->h, H, P + R->dec_wh, G, 1.0f, c->z, G);
    rc = lp_lstm_cell_forward(c->h, c->c, c->z, c->z, c->c, N, H);
  }
  if (rc == LP_OK) rc = lp_linear_forward(c->p, c->h, P + R->pool_v, NULL, N, H, H);
  for (size_t i = 0; rc == LP_OK && i < (size_t)N * H; i++) c->p[i] = tanhf(c->p[i]);
  if (rc == LP_OK) rc = lp_maxpool_examples_forward(c->pooled, c->argmax, c->p, c->emask, n, E, H);
  if (rc == LP_OK) rc = lp_linear_forward(logits, c->pooled, P + R->ow, P + R->ob, n, H, V);
  if (rc != LP_OK)
    return lp_err_set(err, rc, "incremental step failed (%s)",
                      rc == LP_ENOMEM ? "out of memory" : "bad arguments");
  c->pos++;
  return LP_OK;
}

int rfl_inc_reorder(lp_model *m, const int32_t *parent, int n, lp_err *err) {
  rfl_inc *c = m->lstm ? &m->lstm->inc : NULL;
  if (!c || !c->started || !parent || n < 1 || n > c->cap_H)
    return lp_err_set(err, LP_EINVAL, "reorder: bad arguments");
  const size_t row = (size_t)c->E * m->cfg.d_ff;
  for (int h = 0; h < n; h++) {
    if (parent[h] < 0 || parent[h] >= c->cap_H)
      return lp_err_set(err, LP_EINVAL, "reorder: parent index out of range");
    memcpy(c->h2 + h * row, c->h + (size_t)parent[h] * row, sizeof(float) * row);
    memcpy(c->c2 + h * row, c->c + (size_t)parent[h] * row, sizeof(float) * row);
  }
  memcpy(c->h, c->h2, sizeof(float) * n * row);
  memcpy(c->c, c->c2, sizeof(float) * n * row);
  return LP_OK;
}

/* ---- search and scoring ---------------------------------------------------------- */

static int step_cb(void *m, const int32_t *tok, int n, float *logits, lp_err *err) {
  return rfl_inc_step(m, tok, n, logits, err);
}

static int reorder_cb(void *m, const int32_t *parent, int n, lp_err *err) {
  return rfl_inc_reorder(m, parent, n, err);
}

int rfl_search(lp_model *m, const lp_batch *b, const lp_beam_opts *o, lp_beam_result *out,
               lp_err *err) {
  int max_len = o->max_len;
  int rc = rf_search_check(m, b, o->beam, &max_len, o->len_alpha, err);
  if (rc == LP_OK) rc = rfl_encode(m, b, NULL, err);
  if (rc == LP_OK) rc = rfl_inc_start(m, b->emask, o->beam, max_len, err);
  if (rc != LP_OK) return rc;
  return rf_beam_search(m, o, max_len, m, step_cb, reorder_cb, out, err);
}

typedef struct score_ctx {
  lp_model *m;
  const uint8_t *emask;
  int H, len;
} score_ctx;

static int score_start(void *ctx, lp_err *err) {
  score_ctx *c = ctx;
  return rfl_inc_start(c->m, c->emask, c->H, c->len, err);
}

static int score_step(void *ctx, const int32_t *tok, int n, float *logits, lp_err *err) {
  return rfl_inc_step(((score_ctx *)ctx)->m, tok, n, logits, err);
}

static int score_reorder(void *ctx, const int32_t *parent, int n, lp_err *err) {
  return rfl_inc_reorder(((score_ctx *)ctx)->m, parent, n, err);
}

int rfl_score(lp_model *m, const lp_batch *b, const int32_t *const *progs, const int *lens,
              int n, int latent_beam, int max_len, double *scores, lp_err *err) {
  (void)latent_beam;
  score_ctx c = {m, b->emask, n < RF_SCORE_CHUNK ? n : RF_SCORE_CHUNK, max_len};
  const lp_vocab_info *pv = &m->prog_v;
  return rf_force(&c, score_start, score_step, score_reorder, pv->size, pv->bos, c.H, progs, lens,
                  n, scores, err);
}
