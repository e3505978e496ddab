/* RobustFill[LSTM]: the paper's LSTM baseline (Appendix A; Devlin et al. 2017,
 * "Attention-A" with double attention), kind LP_MODEL_RF_LSTM. Embeddings of
 * width D (d_model), LSTMs of hidden size H (d_ff), gates i, f, g, o
 * (lp_lstm_*); attention is scaled dot-product, one head, keys = values = the
 * encoder states, the query a projection (lp_attention_*, Tq = 1):
 *
 *   input encoder:  (h_in, c_in) = LSTM_in(Drop(Embed_in(I)))         [N,Ti,H]
 *   output encoder, from the input encoder's final state, per step
 *     a_t  = Attn(g_{t-1} Q_out, h_in)
 *     g_t  = LSTM_out(g_{t-1}, [Drop(Embed_out(O_t)); a_t])          [N,To,H]
 *   decoder, from the last encoder's final state (its last valid step), per
 *   step t and example i
 *     sI_t = Attn(h_{t-1} Q_i, h_in)
 *     sO_t = Attn([h_{t-1}; sI_t] Q_o, g)                (two parts only)
 *     h_t  = LSTM_dec(h_{t-1}, [Drop(Embed_prog(y_{t-1})); sI_t; sO_t])
 *   logits_t = MaxPool_i(tanh(h_t,i V)) W + b;  loss = mean token cross-entropy
 *
 * (Appendix A's decoder input is [sI; sO]; the previous token's embedding is
 * added as in Devlin et al., so the model is autoregressive.) N = B*E rows.
 * With one spec part the decoder attends to the input only. Dropout (cfg
 * dropout) on the three embeddings.
 *
 * This file: the tensors, the encoders, the teacher-forced loss and its
 * backward, the train steps (parallel.c's rf_train_step_pass over this pass).
 * Search and scoring: rf_lstm_search.c. Uses stacks.c (batch checks, the
 * embedding backward, the max-pool, the FLOP count), parallel.c, batch.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lpsynth/runtime.h"
#include "model_internal.h"

#define RFL_CHUNK_DEFAULT 8

/* ---- construction ----------------------------------------------------------- */

static int add(lp_layout *L, const char *name, int r, int c, int init, float scale,
               size_t *off) {
  int sh[2] = {r, c};
  return lp_layout_add(L, name, c > 0 ? 2 : 1, sh, init, scale, off);
}

int rfl_build(lp_model *m, uint64_t seed, lp_err *err) {
  (void)seed;
  const lp_model_cfg *c = &m->cfg;
  if (c->n_enc_layers != 1 || c->n_dec_layers != 1)
    return lp_err_set(err, LP_EINVAL,
                      "robustfill-lstm has one LSTM layer per encoder and in the decoder: "
                      "enc_layers and dec_layers must be 1 (got %d and %d)",
                      c->n_enc_layers, c->n_dec_layers);
  struct rfl *R = calloc(1, sizeof *R);
  if (!R) return lp_err_set(err, LP_ENOMEM, "out of memory");
  m->lstm = R;
  /* default chunks of 8 tasks (lp_model_set_chunk changes it): a step runs its
   * recurrences as sequences of products of N = tasks x examples rows, which
   * one task (4 rows) leaves too thin. The paper-sized config, 2 workers, on
   * this project's 2-core machine: 2.0 tasks/s in chunks of 1, 2.7 in one
   * padded pass per worker, 4.2 in chunks of 8 (`lpsynth bench train`). */
  m->chunk_tasks = RFL_CHUNK_DEFAULT;
  const int D = c->d_model, H = c->d_ff, G = 4 * H, Vs = m->spec_v.size, Vp = m->prog_v.size;
  const int two = m->n_parts == 2;
  lp_layout *L = m->L;
  const int XU = LP_INIT_XAVIER_UNIFORM;
  int rc = add(L, "lstm.in.embed", Vs, D, LP_INIT_NORMAL, 1.0f, &R->in_emb);
  if (rc == LP_OK) rc = add(L, "lstm.in.wx", D, G, XU, 1.0f, &R->in_wx);
  if (rc == LP_OK) rc = add(L, "lstm.in.wh", H, G, XU, 1.0f, &R->in_wh);
  if (rc == LP_OK) rc = add(L, "lstm.in.b", G, 0, LP_INIT_ZEROS, 0.0f, &R->in_b);
  if (two) {
    if (rc == LP_OK) rc = add(L, "lstm.out.embed", Vs, D, LP_INIT_NORMAL, 1.0f, &R->out_emb);
    if (rc == LP_OK) rc = add(L, "lstm.out.q", H, H, XU, 1.0f, &R->out_q);
    if (rc == LP_OK) rc = add(L, "lstm.out.wx", D + H, G, XU, 1.0f, &R->out_wx);
    if (rc == LP_OK) rc = add(L, "lstm.out.wh", H, G, XU, 1.0f, &R->out_wh);
    if (rc == LP_OK) rc = add(L, "lstm.out.b", G, 0, LP_INIT_ZEROS, 0.0f, &R->out_b);
  }
  if (rc == LP_OK) rc = add(L, "lstm.dec.embed", Vp, D, LP_INIT_NORMAL, 1.0f, &R->dec_emb);
  if (rc == LP_OK) rc = add(L, "lstm.dec.qi", H, H, XU, 1.0f, &R->dec_qi);
  if (two && rc == LP_OK) rc = add(L, "lstm.dec.qo", 2 * H, H, XU, 1.0f, &R->dec_qo);
  if (rc == LP_OK) rc = add(L, "lstm.dec.wx", D + (two ? 2 : 1) * H, G, XU, 1.0f, &R->dec_wx);
  if (rc == LP_OK) rc = add(L, "lstm.dec.wh", H, G, XU, 1.0f, &R->dec_wh);
  if (rc == LP_OK) rc = add(L, "lstm.dec.b", G, 0, LP_INIT_ZEROS, 0.0f, &R->dec_b);
  if (rc == LP_OK) rc = add(L, "lstm.pool.v", H, H, XU, 1.0f, &R->pool_v);
  if (rc == LP_OK) rc = add(L, "out.w", H, Vp, XU, 1.0f, &R->ow);
  if (rc == LP_OK) rc = add(L, "out.b", Vp, 0, LP_INIT_NORMAL, 1e-6f, &R->ob);
  LP_TRY_MSG(rc, "layout");
  return LP_OK;
}

static void acts_release(rfl_acts *a) {
  free(a->mem);
  memset(a, 0, sizeof *a);
}

void rfl_release(lp_model *m) {
  if (!m->lstm) return;
  acts_release(&m->lstm->a);
  free(m->lstm);
  m->lstm = NULL;
}

int rfl_replica_init(lp_model *r, const lp_model *m) {
  r->lstm = malloc(sizeof *r->lstm);
  if (!r->lstm) return LP_ENOMEM;
  *r->lstm = *m->lstm; /* the offsets; activations and decoder state of its own */
  memset(&r->lstm->a, 0, sizeof r->lstm->a);
  memset(&r->lstm->inc, 0, sizeof r->lstm->inc);
  return LP_OK;
}

void rfl_replica_free(lp_model *r) { rfl_release(r); }

/* ---- activations ---------------------------------------------------------------- */

static void carve(lp_carve *k, rfl_acts *a, int D, int H, int V, int two) {
  const size_t N = (size_t)a->cap_N, B = (size_t)a->cap_B, Ti = (size_t)a->cap_Ti;
  const size_t To = (size_t)a->cap_To, T = (size_t)a->cap_T, G = 4 * (size_t)H, h = (size_t)H;
  const size_t Co = (size_t)D + h, Cd = (size_t)D + (two ? 2 : 1) * h, f = sizeof(float);
  size_t tm = Ti > To ? Ti : To, tz = T > To ? T : To;
  tm = T > tm ? T : tm;
  a->len_in = lp_carve_take(k, sizeof(int32_t) * N);
  a->k_in = lp_carve_take(k, N * Ti);
  a->drop_in = lp_carve_take(k, N * Ti * D);
  a->x_in = lp_carve_take(k, f * N * Ti * D);
  a->h_in = lp_carve_take(k, f * N * Ti * h);
  a->c_in = lp_carve_take(k, f * N * Ti * h);
  a->g_in = lp_carve_take(k, f * N * Ti * G);
  a->len_out = lp_carve_take(k, sizeof(int32_t) * N);
  a->k_out = lp_carve_take(k, N * To);
  a->drop_out = lp_carve_take(k, N * To * D);
  a->x_out = lp_carve_take(k, f * N * To * D);
  a->hs_out = lp_carve_take(k, f * (To + 1) * N * h);
  a->cs_out = lp_carve_take(k, f * (To + 1) * N * h);
  a->q_out = lp_carve_take(k, f * To * N * h);
  a->a_out = lp_carve_take(k, f * To * N * h);
  a->att_out = lp_carve_take(k, f * To * N * Ti);
  a->xc_out = lp_carve_take(k, f * To * N * Co);
  a->g_out = lp_carve_take(k, f * To * N * G);
  a->e_out = lp_carve_take(k, f * N * To * h);
  a->hf = lp_carve_take(k, f * N * h);
  a->cf = lp_carve_take(k, f * N * h);
  a->ids_dec = lp_carve_take(k, sizeof(int32_t) * N * T);
  a->drop_dec = lp_carve_take(k, N * T * D);
  a->emask_t = lp_carve_take(k, T * N);
  a->x_dec = lp_carve_take(k, f * N * T * D);
  a->hs_dec = lp_carve_take(k, f * (T + 1) * N * h);
  a->cs_dec = lp_carve_take(k, f * (T + 1) * N * h);
  a->qi = lp_carve_take(k, f * T * N * h);
  a->si = lp_carve_take(k, f * T * N * h);
  a->qo = lp_carve_take(k, f * T * N * h);
  a->so = lp_carve_take(k, f * T * N * h);
  a->atti = lp_carve_take(k, f * T * N * Ti);
  a->atto = lp_carve_take(k, f * T * N * To);
  a->xc = lp_carve_take(k, f * T * N * Cd);
  a->g_dec = lp_carve_take(k, f * T * N * G);
  a->p = lp_carve_take(k, f * T * N * h);
  a->pooled = lp_carve_take(k, f * T * B * h);
  a->argmax = lp_carve_take(k, sizeof(int32_t) * T * B * h);
  a->tgt = lp_carve_take(k, sizeof(int32_t) * T * B);
  a->logits = lp_carve_take(k, f * T * B * V);
  a->probs = lp_carve_take(k, f * T * B * V);
  a->g_logits = lp_carve_take(k, f * T * B * V);
  a->g_pooled = lp_carve_take(k, f * T * B * h);
  a->g_p = lp_carve_take(k, f * T * N * h);
  a->g_hs = lp_carve_take(k, f * (T + 1) * N * h);
  a->g_cs = lp_carve_take(k, f * (T + 1) * N * h);
  a->g_hso = lp_carve_take(k, f * (To + 1) * N * h);
  a->g_cso = lp_carve_take(k, f * (To + 1) * N * h);
  a->g_z = lp_carve_take(k, f * tz * N * G);
  a->g_xc = lp_carve_take(k, f * N * Cd);
  a->g_q = lp_carve_take(k, f * N * h);
  a->g_s = lp_carve_take(k, f * N * h);
  a->g_s2 = lp_carve_take(k, f * N * h);
  a->g_x = lp_carve_take(k, f * N * tm * D);
  a->g_scratch = lp_carve_take(k, f * N * tm * D);
  a->g_mem_in = lp_carve_take(k, f * N * Ti * h);
  a->g_c_in = lp_carve_take(k, f * N * Ti * h);
  a->g_mem_out = lp_carve_take(k, f * N * To * h);
}

static int round8(int x) { return (x + 7) / 8 * 8; }

static int acts_ensure(lp_model *m, int B, int E, int Ti, int To, int T, lp_err *err) {
  rfl_acts *a = &m->lstm->a;
  const int N = B * E;
  if (To < 1) To = 1;
  if (T < 1) T = 1;
  if (a->mem && N <= a->cap_N && B <= a->cap_B && Ti <= a->cap_Ti && To <= a->cap_To &&
      T <= a->cap_T)
    return LP_OK;
  const int cN = N > a->cap_N ? N : a->cap_N, cB = B > a->cap_B ? B : a->cap_B;
  const int cTi = Ti > a->cap_Ti ? round8(Ti) : a->cap_Ti;
  const int cTo = To > a->cap_To ? round8(To) : a->cap_To;
  const int cT = T > a->cap_T ? round8(T) : a->cap_T;
  acts_release(a);
  a->cap_N = cN, a->cap_B = cB, a->cap_Ti = cTi, a->cap_To = cTo, a->cap_T = cT;
  const int D = m->cfg.d_model, H = m->cfg.d_ff, V = m->prog_v.size, two = m->n_parts == 2;
  lp_carve k = {NULL, 0};
  carve(&k, a, D, H, V, two);
  a->mem = aligned_alloc(64, lp_carve_bytes(&k));
  if (!a->mem) {
    acts_release(a);
    return lp_err_set(err, LP_ENOMEM,
                      "out of memory for activations (%d sequences, lengths %d/%d/%d)", N, Ti,
                      To, T);
  }
  k.base = a->mem;
  k.used = 0;
  carve(&k, a, D, H, V, two);
  return LP_OK;
}

/* ---- forward ---------------------------------------------------------------------- */

/* x[n,D] = Drop(Embed(ids)) over n rows; km[n] = (id != pad) when km != NULL. */
static int embed(const lp_model *m, float *x, uint8_t *drop, uint8_t *km, const int32_t *ids,
                 size_t table, int V, int pad, int n, lp_rng *rng) {
  const int D = m->cfg.d_model;
  int rc = lp_embedding_forward(x, ids, m->params + table, n, V, D, pad);
  if (rc == LP_OK) rc = lp_dropout_forward(x, drop, x, (size_t)n * D, m->cfg.dropout, rng);
  for (int i = 0; rc == LP_OK && km && i < n; i++) km[i] = ids[i] != pad;
  return rc;
}

/* One step of an attending LSTM over N rows: z = xc Wx + b + hp Wh, then the
 * cell from (hp, cp) into (h, c); gates saved in z. */
static int lstm_step(const float *P, size_t wx, size_t wh, size_t bias, float *h, float *c,
                     float *z, const float *xc, const float *hp, const float *cp, int N, int C,
                     int H) {
  const int G = 4 * H;
  LP_TRY(lp_linear_forward(z, xc, P + wx, P + bias, N, C, G));
  lp_gemm(0, 0, N, G, H, 1.0f, hp, H, P + wh, G, 1.0f, z, G);
  return lp_lstm_cell_forward(h, c, z, z, cp, N, H);
}

/* dst[n] = src[n] row by row: rows of width w taken at stride ss, put at stride ds. */
static void rows_copy(float *dst, size_t ds, const float *src, size_t ss, int n, int w) {
  for (int i = 0; i < n; i++) memcpy(dst + (size_t)i * ds, src + (size_t)i * ss, sizeof(float) * (size_t)w);
}

/* The state after `len` steps of row n: h_all[N,T,H] at step len-1, or zeros. */
static void final_state(float *hf, float *cf, const float *h_all, const float *c_all,
                        const int32_t *len, int N, int T, int H) {
  for (int n = 0; n < N; n++) {
    const size_t o = ((size_t)n * T + (size_t)(len[n] > 0 ? len[n] - 1 : 0)) * H;
    if (len[n] > 0) {
      memcpy(hf + (size_t)n * H, h_all + o, sizeof(float) * (size_t)H);
      memcpy(cf + (size_t)n * H, c_all + o, sizeof(float) * (size_t)H);
    } else {
      memset(hf + (size_t)n * H, 0, sizeof(float) * (size_t)H);
      memset(cf + (size_t)n * H, 0, sizeof(float) * (size_t)H);
    }
  }
}

int rfl_encode(lp_model *m, const lp_batch *b, lp_rng *rng, lp_err *err) {
  rfl_acts *a = &m->lstm->a;
  const struct rfl *R = m->lstm;
  const int B = b->B, E = b->E, N = B * E, D = m->cfg.d_model, H = m->cfg.d_ff;
  const int Vs = m->spec_v.size, pad = m->spec_v.pad, two = m->n_parts == 2;
  const int Ti = b->T_spec[0], To = two ? b->T_spec[1] : 1, Co = D + H;
  const size_t NH = (size_t)N * H;
  const float *P = m->params;
  if (acts_ensure(m, B, E, Ti, To, b->T_prog > 0 ? b->T_prog : 1, err) != LP_OK)
    return err ? err->code : LP_ENOMEM;
  m->B = B, m->E = E, m->Ti = Ti, m->To = two ? To : 0;
  m->fwd_ok = 0;
  LP_TRY_MSG(embed(m, a->x_in, a->drop_in, a->k_in, b->spec[0], R->in_emb, Vs, pad, N * Ti, rng),
             "input embedding");
  for (int n = 0; n < N; n++) a->len_in[n] = rf_used_len(b->spec[0] + (size_t)n * Ti, Ti, pad);
  LP_TRY_MSG(lp_lstm_forward(a->h_in, a->c_in, a->g_in, a->x_in, NULL, NULL, P + R->in_wx,
                             P + R->in_wh, P + R->in_b, N, Ti, D, H),
             "input LSTM");
  if (!two) {
    final_state(a->hf, a->cf, a->h_in, a->c_in, a->len_in, N, Ti, H);
    return LP_OK;
  }
  /* the output encoder, from the input encoder's final state, attending to h_in */
  final_state(a->hs_out, a->cs_out, a->h_in, a->c_in, a->len_in, N, Ti, H);
  LP_TRY_MSG(embed(m, a->x_out, a->drop_out, a->k_out, b->spec[1], R->out_emb, Vs, pad, N * To,
                   rng),
             "output embedding");
  for (int n = 0; n < N; n++) a->len_out[n] = rf_used_len(b->spec[1] + (size_t)n * To, To, pad);
  for (int t = 0; t < To; t++) {
    const float *hp = a->hs_out + t * NH, *cp = a->cs_out + t * NH;
    float *q = a->q_out + t * NH, *ctx = a->a_out + t * NH, *xc = a->xc_out + t * N * (size_t)Co;
    LP_TRY_MSG(lp_linear_forward(q, hp, P + R->out_q, NULL, N, H, H), "output encoder query");
    LP_TRY_MSG(lp_attention_forward(ctx, a->att_out + t * (size_t)N * Ti, NULL, q, a->h_in,
                                    a->h_in, a->k_in, N, 1, Ti, 1, H, 0, 0.0f, NULL),
               "output encoder attention");
    rows_copy(xc, Co, a->x_out + (size_t)t * D, (size_t)To * D, N, D);
    rows_copy(xc + D, Co, ctx, H, N, H);
    LP_TRY_MSG(lstm_step(P, R->out_wx, R->out_wh, R->out_b, a->hs_out + (t + 1) * NH,
                         a->cs_out + (t + 1) * NH, a->g_out + t * NH * 4, xc, hp, cp, N, Co, H),
               "output LSTM");
    rows_copy(a->e_out + (size_t)t * H, (size_t)To * H, a->hs_out + (t + 1) * NH, H, N, H);
  }
  /* its final state: slot len of hs_out */
  for (int n = 0; n < N; n++) {
    const size_t o = (size_t)a->len_out[n] * NH + (size_t)n * H;
    memcpy(a->hf + (size_t)n * H, a->hs_out + o, sizeof(float) * (size_t)H);
    memcpy(a->cf + (size_t)n * H, a->cs_out + o, sizeof(float) * (size_t)H);
  }
  return LP_OK;
}

int rfl_forward(lp_model *m, const lp_batch *b, lp_rng *rng, lp_step_stats *st, lp_err *err) {
  if (rf_check_batch(m, b, 1, err) != LP_OK) return err ? err->code : LP_EINVAL;
  double t0 = m->prof_on ? lp_now() : 0.0, t1 = 0.0;
  int rc = rfl_encode(m, b, rng, err);
  if (rc != LP_OK) return rc;
  const struct rfl *R = m->lstm;
  rfl_acts *a = &m->lstm->a;
  const int B = b->B, E = b->E, N = B * E, T = b->T_prog, D = m->cfg.d_model, H = m->cfg.d_ff;
  const int V = m->prog_v.size, pad = m->prog_v.pad, two = m->n_parts == 2;
  const int Ti = m->Ti, To = m->To, Cd = D + (two ? 2 : 1) * H;
  const size_t NH = (size_t)N * H;
  const float *P = m->params;
  if (m->prof_on) {
    t1 = lp_now();
    m->prof.enc_fwd += t1 - t0;
    rf_count_flops(m, b, H, &m->prof.flops_run, &m->prof.flops_useful);
    m->prof.chunks++;
  }
  m->T = T;
  m->dropped = rng != NULL;
  /* decoder input: BOS y_1 .. y_{T-1}, once per example slot */
  for (int k = 0; k < B; k++)
    for (int e = 0; e < E; e++) {
      int32_t *d = a->ids_dec + ((size_t)k * E + e) * T;
      d[0] = m->prog_v.bos;
      memcpy(d + 1, b->prog + (size_t)k * T, sizeof(int32_t) * (size_t)(T - 1));
    }
  LP_TRY_MSG(embed(m, a->x_dec, a->drop_dec, NULL, a->ids_dec, R->dec_emb, V, pad, N * T, rng),
             "program embedding");
  memcpy(a->hs_dec, a->hf, sizeof(float) * NH);
  memcpy(a->cs_dec, a->cf, sizeof(float) * NH);
  for (int t = 0; t < T; t++) {
    const float *hp = a->hs_dec + t * NH, *cp = a->cs_dec + t * NH;
    float *qi = a->qi + t * NH, *si = a->si + t * NH, *xc = a->xc + t * (size_t)N * Cd;
    LP_TRY_MSG(lp_linear_forward(qi, hp, P + R->dec_qi, NULL, N, H, H), "decoder query");
    LP_TRY_MSG(lp_attention_forward(si, a->atti + t * (size_t)N * Ti, NULL, qi, a->h_in, a->h_in,
                                    a->k_in, N, 1, Ti, 1, H, 0, 0.0f, NULL),
               "decoder input attention");
    rows_copy(xc, Cd, a->x_dec + (size_t)t * D, (size_t)T * D, N, D);
    rows_copy(xc + D, Cd, si, H, N, H);
    if (two) {
      float *qo = a->qo + t * NH, *so = a->so + t * NH;
      /* [h; sI] Q_o as two products over Q_o's row blocks */
      LP_TRY_MSG(lp_linear_forward(qo, hp, P + R->dec_qo, NULL, N, H, H), "decoder query");
      lp_gemm(0, 0, N, H, H, 1.0f, si, H, P + R->dec_qo + (size_t)H * H, H, 1.0f, qo, H);
      LP_TRY_MSG(lp_attention_forward(so, a->atto + t * (size_t)N * To, NULL, qo, a->e_out,
                                      a->e_out, a->k_out, N, 1, To, 1, H, 0, 0.0f, NULL),
                 "decoder output attention");
      rows_copy(xc + D + H, Cd, so, H, N, H);
    }
    LP_TRY_MSG(lstm_step(P, R->dec_wx, R->dec_wh, R->dec_b, a->hs_dec + (t + 1) * NH,
                         a->cs_dec + (t + 1) * NH, a->g_dec + t * NH * 4, xc, hp, cp, N, Cd, H),
               "decoder LSTM");
  }
  if (m->prof_on) {
    double t2 = lp_now();
    m->prof.dec_fwd += t2 - t1;
    t1 = t2;
  }
  /* p = tanh(h V) for every step; max-pool over the examples; output layer */
  const size_t np = (size_t)T * NH;
  LP_TRY_MSG(lp_linear_forward(a->p, a->hs_dec + NH, P + R->pool_v, NULL, T * N, H, H), "tanh(V h)");
  for (size_t i = 0; i < np; i++) a->p[i] = tanhf(a->p[i]);
  for (int t = 0; t < T; t++) memcpy(a->emask_t + (size_t)t * N, b->emask, (size_t)N);
  if (m->freeze_argmax) /* tests: a fixed selection (see model_internal.h) */
    memcpy(a->argmax, m->freeze_argmax, sizeof(int32_t) * (size_t)T * B * H);
  LP_TRY_MSG(rf_pool_forward(m->freeze_argmax != NULL, a->pooled, a->argmax, a->p, a->emask_t,
                             T * B, E, H),
             "max-pool");
  LP_TRY_MSG(lp_linear_forward(a->logits, a->pooled, P + R->ow, P + R->ob, T * B, H, V),
             "output layer");
  for (int t = 0; t < T; t++)
    for (int k = 0; k < B; k++) a->tgt[(size_t)t * B + k] = b->prog[(size_t)k * T + t];
  double loss = 0.0;
  int n_valid = 0;
  LP_TRY_MSG(lp_cross_entropy_forward(&loss, a->probs, NULL, &n_valid, a->logits, a->tgt, T * B,
                                      V, pad),
             "cross-entropy");
  m->fwd_ok = 1;
  if (m->prof_on) m->prof.loss_fwd += lp_now() - t1;
  if (st) {
    const int correct = rf_count_correct(a->logits, a->tgt, (size_t)T * B, V, pad);
    memset(st, 0, sizeof *st);
    st->loss = st->loss_prog = loss;
    st->n_tokens = n_valid;
    st->token_acc = n_valid ? (double)correct / n_valid : 0.0;
  }
  return LP_OK;
}

/* ---- backward --------------------------------------------------------------------- */

/* dst[i] += src[i] row by row (widths w, strides ds / ss). */
static void rows_add(float *dst, size_t ds, const float *src, size_t ss, int n, int w) {
  for (int i = 0; i < n; i++) {
    float *d = dst + (size_t)i * ds;
    const float *s = src + (size_t)i * ss;
    for (int j = 0; j < w; j++) d[j] += s[j];
  }
}

/* Backward of one attention with query q = x Q (x [N,H]): g_ctx -> g_x (+=),
 * dQ (+=), and the memory's gradient g_mem (+=, keys and values). g_q is
 * scratch [N,H]. */
static int attn_backward(lp_model *m, float *g_x, size_t q_w, float *g_q, float *g_mem,
                         const float *g_ctx, const float *att, const float *q, const float *mem,
                         const float *x, int N, int S) {
  const int H = m->cfg.d_ff;
  memset(g_q, 0, sizeof(float) * (size_t)N * H);
  LP_TRY(lp_attention_backward(g_q, g_mem, g_mem, g_ctx, att, NULL, q, mem, mem, N, 1, S, 1, H,
                               0.0f));
  return lp_linear_backward(g_x, m->grads + q_w, NULL, g_q, x, m->params + q_w, N, H, H);
}

/* Backward of step t of an attending LSTM (lstm_step) over N rows with
 * states hs, cs [T+1,N,H] (slot 0 initial), gates [T,N,G], inputs of width C:
 * from the step's output gradients g_hs[t+1], g_cs[t+1] into g_z[t] (+=), the
 * previous state's g_hs[t], g_cs[t] (+=), the embedding gradient
 * g_x[n, t] (+=, of [N,Tx,D]) and the attention context's a->g_s [N,H]
 * (columns D..D+H of the input; a->g_xc [N,C] holds the whole input's). */
static int step_backward(lp_model *m, int t, float *g_z, float *g_hs, float *g_cs,
                         const float *gates, const float *cs, size_t wx, size_t wh, int C,
                         int Tx, int N) {
  rfl_acts *a = &m->lstm->a;
  const int D = m->cfg.d_model, H = m->cfg.d_ff, G = 4 * H;
  const size_t NH = (size_t)N * H;
  const float *P = m->params;
  float *gz = g_z + t * NH * 4;
  LP_TRY(lp_lstm_cell_backward(gz, g_cs + t * NH, g_hs + (t + 1) * NH, g_cs + (t + 1) * NH,
                               gates + t * NH * 4, cs + (t + 1) * NH, cs + t * NH, N, H));
  lp_gemm(0, 1, N, H, G, 1.0f, gz, G, P + wh, G, 1.0f, g_hs + t * NH, H);
  lp_gemm(0, 1, N, C, G, 1.0f, gz, G, P + wx, G, 0.0f, a->g_xc, C);
  rows_add(a->g_x + (size_t)t * D, (size_t)Tx * D, a->g_xc, C, N, D);
  rows_copy(a->g_s, H, a->g_xc + D, C, N, H);
  return LP_OK;
}

/* The output encoder's and the input encoder's backward, from the gradients
 * of the decoder's initial state (g_h0, g_c0 [N,H]) and of the memories
 * (a->g_mem_in, a->g_mem_out, accumulated by the decoder). */
static int encoders_backward(lp_model *m, const lp_batch *b, const float *g_h0,
                             const float *g_c0, lp_err *err) {
  const struct rfl *R = m->lstm;
  rfl_acts *a = &m->lstm->a;
  const int N = m->B * m->E, Ti = m->Ti, To = m->To, D = m->cfg.d_model, H = m->cfg.d_ff;
  const int G = 4 * H, Co = D + H, Vs = m->spec_v.size, spad = m->spec_v.pad;
  const size_t NH = (size_t)N * H;
  const float *P = m->params;
  float *Gr = m->grads;
  if (m->n_parts == 2) {
    memset(a->g_hso, 0, sizeof(float) * (size_t)(To + 1) * NH);
    memset(a->g_cso, 0, sizeof(float) * (size_t)(To + 1) * NH);
    /* the final state (slot len) fed the decoder; every state fed the memory */
    for (int n = 0; n < N; n++) {
      const size_t o = (size_t)a->len_out[n] * NH + (size_t)n * H;
      rows_add(a->g_hso + o, 0, g_h0 + (size_t)n * H, 0, 1, H);
      rows_add(a->g_cso + o, 0, g_c0 + (size_t)n * H, 0, 1, H);
    }
    for (int t = 0; t < To; t++)
      rows_add(a->g_hso + (t + 1) * NH, H, a->g_mem_out + (size_t)t * H, (size_t)To * H, N, H);
    memset(a->g_z, 0, sizeof(float) * (size_t)To * NH * 4);
    memset(a->g_x, 0, sizeof(float) * (size_t)N * To * D);
    for (int t = To - 1; t >= 0; t--) {
      float *gh = a->g_hso + t * NH;
      const float *hp = a->hs_out + t * NH;
      LP_TRY_MSG(step_backward(m, t, a->g_z, a->g_hso, a->g_cso, a->g_out, a->cs_out, R->out_wx,
                               R->out_wh, Co, To, N),
                 "output LSTM backward");
      LP_TRY_MSG(attn_backward(m, gh, R->out_q, a->g_q, a->g_mem_in, a->g_s,
                               a->att_out + t * (size_t)N * Ti, a->q_out + t * NH, a->h_in, hp, N,
                               Ti),
                 "output encoder attention backward");
    }
    LP_TRY_MSG(lp_linear_backward(NULL, Gr + R->out_wx, Gr + R->out_b, a->g_z, a->xc_out,
                                  P + R->out_wx, To * N, Co, G),
               "output LSTM backward");
    LP_TRY_MSG(lp_linear_backward(NULL, Gr + R->out_wh, NULL, a->g_z, a->hs_out, P + R->out_wh,
                                  To * N, H, G),
               "output LSTM backward");
    LP_TRY_MSG(rf_embed_backward(m, a->g_scratch, a->g_x, a->drop_out, b->spec[1], R->out_emb,
                                 Vs, spad, N * To, m->dropped),
               "output embedding backward");
    g_h0 = a->g_hso, g_c0 = a->g_cso; /* slot 0: the input encoder's final state */
  }
  /* input encoder: the memory's gradient, and the final state's at step len-1 */
  memset(a->g_c_in, 0, sizeof(float) * (size_t)N * Ti * H);
  for (int n = 0; n < N; n++) {
    if (a->len_in[n] < 1) continue;
    const size_t o = ((size_t)n * Ti + (size_t)a->len_in[n] - 1) * H;
    rows_add(a->g_mem_in + o, 0, g_h0 + (size_t)n * H, 0, 1, H);
    rows_add(a->g_c_in + o, 0, g_c0 + (size_t)n * H, 0, 1, H);
  }
  memset(a->g_x, 0, sizeof(float) * (size_t)N * Ti * D);
  LP_TRY_MSG(lp_lstm_backward(a->g_x, NULL, NULL, Gr + R->in_wx, Gr + R->in_wh, Gr + R->in_b,
                              a->g_mem_in, a->g_c_in, a->g_in, a->h_in, a->c_in, a->x_in, NULL,
                              NULL, P + R->in_wx, P + R->in_wh, N, Ti, D, H),
             "input LSTM backward");
  LP_TRY_MSG(rf_embed_backward(m, a->g_scratch, a->g_x, a->drop_in, b->spec[0], R->in_emb, Vs,
                               spad, N * Ti, m->dropped),
             "input embedding backward");
  return LP_OK;
}

int rfl_backward(lp_model *m, const lp_batch *b, lp_err *err) {
  const struct rfl *R = m->lstm;
  rfl_acts *a = &m->lstm->a;
  const int B = m->B, E = m->E, N = B * E, T = m->T, Ti = m->Ti, To = m->To;
  const int D = m->cfg.d_model, H = m->cfg.d_ff, G = 4 * H, V = m->prog_v.size;
  const int pad = m->prog_v.pad, two = m->n_parts == 2, Cd = D + (two ? 2 : 1) * H;
  const size_t NH = (size_t)N * H;
  const float *P = m->params;
  float *Gr = m->grads;
  if (!m->fwd_ok || !b || b->B != B || b->E != E || b->T_prog != T)
    return lp_err_set(err, LP_EINVAL, "backward without a matching forward");
  const double t0 = m->prof_on ? lp_now() : 0.0;
  /* logits -> pooled -> p = tanh(h V) -> the decoder states */
  memset(a->g_logits, 0, sizeof(float) * (size_t)T * B * V);
  LP_TRY_MSG(lp_cross_entropy_backward(a->g_logits, a->probs, a->tgt, T * B, V, pad,
                                       m->loss_scale),
             "cross-entropy backward");
  memset(a->g_pooled, 0, sizeof(float) * (size_t)T * B * H);
  LP_TRY_MSG(lp_linear_backward(a->g_pooled, Gr + R->ow, Gr + R->ob, a->g_logits, a->pooled,
                                P + R->ow, T * B, H, V),
             "output layer backward");
  const size_t np = (size_t)T * NH;
  memset(a->g_p, 0, sizeof(float) * np);
  LP_TRY_MSG(lp_maxpool_examples_backward(a->g_p, a->g_pooled, a->argmax, T * B, E, H),
             "max-pool backward");
  for (size_t i = 0; i < np; i++) a->g_p[i] *= 1.0f - a->p[i] * a->p[i];
  memset(a->g_hs, 0, sizeof(float) * (size_t)(T + 1) * NH);
  memset(a->g_cs, 0, sizeof(float) * (size_t)(T + 1) * NH);
  LP_TRY_MSG(lp_linear_backward(a->g_hs + NH, Gr + R->pool_v, NULL, a->g_p, a->hs_dec + NH,
                                P + R->pool_v, T * N, H, H),
             "tanh(V h) backward");
  /* the decoder's steps, last first */
  memset(a->g_mem_in, 0, sizeof(float) * (size_t)N * Ti * H);
  if (two) memset(a->g_mem_out, 0, sizeof(float) * (size_t)N * To * H);
  memset(a->g_z, 0, sizeof(float) * (size_t)T * NH * 4);
  memset(a->g_x, 0, sizeof(float) * (size_t)N * T * D);
  for (int t = T - 1; t >= 0; t--) {
    float *gh = a->g_hs + t * NH;
    const float *hp = a->hs_dec + t * NH;
    LP_TRY_MSG(step_backward(m, t, a->g_z, a->g_hs, a->g_cs, a->g_dec, a->cs_dec, R->dec_wx,
                             R->dec_wh, Cd, T, N),
               "decoder LSTM backward"); /* a->g_s: d sI */
    if (two) {
      const float *qo = a->qo + t * NH, *si = a->si + t * NH;
      rows_copy(a->g_s2, H, a->g_xc + D + H, Cd, N, H); /* d sO */
      memset(a->g_q, 0, sizeof(float) * NH);
      LP_TRY_MSG(lp_attention_backward(a->g_q, a->g_mem_out, a->g_mem_out, a->g_s2,
                                       a->atto + t * (size_t)N * To, NULL, qo, a->e_out, a->e_out,
                                       N, 1, To, 1, H, 0.0f),
                 "decoder output attention backward");
      /* q_o = h Q_o[0:H] + sI Q_o[H:2H] */
      const size_t q2 = R->dec_qo + (size_t)H * H;
      lp_gemm(0, 1, N, H, H, 1.0f, a->g_q, H, P + R->dec_qo, H, 1.0f, gh, H);
      lp_gemm(0, 1, N, H, H, 1.0f, a->g_q, H, P + q2, H, 1.0f, a->g_s, H);
      lp_gemm(1, 0, H, H, N, 1.0f, hp, H, a->g_q, H, 1.0f, Gr + R->dec_qo, H);
      lp_gemm(1, 0, H, H, N, 1.0f, si, H, a->g_q, H, 1.0f, Gr + q2, H);
    }
    LP_TRY_MSG(attn_backward(m, gh, R->dec_qi, a->g_q, a->g_mem_in, a->g_s,
                             a->atti + t * (size_t)N * Ti, a->qi + t * NH, a->h_in, hp, N, Ti),
               "decoder input attention backward");
  }
  /* the LSTM's products over every step at once */
  LP_TRY_MSG(lp_linear_backward(NULL, Gr + R->dec_wx, Gr + R->dec_b, a->g_z, a->xc, P + R->dec_wx,
                                T * N, Cd, G),
             "decoder LSTM backward");
  LP_TRY_MSG(lp_linear_backward(NULL, Gr + R->dec_wh, NULL, a->g_z, a->hs_dec, P + R->dec_wh,
                                T * N, H, G),
             "decoder LSTM backward");
  LP_TRY_MSG(rf_embed_backward(m, a->g_scratch, a->g_x, a->drop_dec, a->ids_dec, R->dec_emb, V,
                               pad, N * T, m->dropped),
             "program embedding backward");
  int rc = encoders_backward(m, b, a->g_hs, a->g_cs, err);
  if (m->prof_on) m->prof.bwd += lp_now() - t0;
  return rc;
}

/* ---- steps (lp_model_train_step / _eval_loss for kind LP_MODEL_RF_LSTM) -------------- */

static const rf_pass k_rfl_pass = {rfl_forward, rfl_backward};

int rfl_train_step(lp_model *m, const lp_batch *b, int64_t step, lp_rng *rng, lp_step_stats *st,
                   lp_err *err) {
  (void)step;
  return rf_train_step_pass(m, b, rng, st, &k_rfl_pass, err);
}

int rfl_eval_loss(lp_model *m, const lp_batch *b, lp_step_stats *st, lp_err *err) {
  lp_step_stats local;
  return rfl_forward(m, b, NULL, st ? st : &local, err);
}
