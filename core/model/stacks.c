/* The Transformer stacks RobustFill and the Latent Programmer share (see
 * robustfill.c for the model): the spec encoder(s) and the spec-attending
 * program decoder stack over struct lp_model's parameters, their activations
 * (grown on demand, never shrunk), the embedding + positions + dropout front
 * of a stack, the max-pool across examples, and the backward of the stacks.
 *
 *   Ein  = LN(EncBlocks^n(Drop(Embed_in(I) + PE)))                  [B*E,Ti,D]
 *   Eout = LN(XBlocks^n(Drop(Embed_out(O) + PE), Ein))              [B*E,To,D]
 *   h    = LN(DecBlocks^n(Drop(Embed_prog(ids) + PE), Eout_e))      [B*E,T,D]
 *
 * Uses the engine only: neither model file, nor search, nor the parallel
 * machinery (they all use this file). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lpsynth/runtime.h"
#include "model_internal.h"

/* ---- construction ----------------------------------------------------------- */

int rf_layout_ln(lp_layout *L, const char *prefix, int D, lp_ln_off *o) {
  char name[LP_PARAM_NAME_MAX];
  snprintf(name, sizeof name, "%s.scale", prefix);
  int rc = lp_layout_add(L, name, 1, &D, LP_INIT_ONES, 0.0f, &o->g);
  if (rc != LP_OK) return rc;
  snprintf(name, sizeof name, "%s.bias", prefix);
  return lp_layout_add(L, name, 1, &D, LP_INIT_ZEROS, 0.0f, &o->b);
}

/* The shared tensors (spec encoder(s), program embedding, decoder stack, output
 * layer) of m->L, in checkpoint order. */
int rf_layout_build(lp_model *m, lp_err *err) {
  const lp_model_cfg *c = &m->cfg;
  const int D = c->d_model;
  lp_layout *L = m->L;
  char name[LP_PARAM_NAME_MAX];
  int sh[2];
  sh[0] = m->spec_v.size, sh[1] = D;
  LP_TRY_MSG(lp_layout_add(L, "spec.in.embed", 2, sh, LP_INIT_NORMAL, 1.0f, &m->emb_in), "layout");
  for (int l = 0; l < c->n_enc_layers; l++) {
    snprintf(name, sizeof name, "spec.in.block%d", l);
    LP_TRY_MSG(lp_enc_block_init(&m->enc_in[l], &m->bcfg, L, name), "encoder block");
  }
  LP_TRY_MSG(rf_layout_ln(L, "spec.in.ln", D, &m->ln_in), "layout");
  if (m->n_parts == 2) {
    LP_TRY_MSG(lp_layout_add(L, "spec.out.embed", 2, sh, LP_INIT_NORMAL, 1.0f, &m->emb_out),
         "layout");
    lp_block_cfg xc = m->bcfg;
    xc.noncausal = 1;
    for (int l = 0; l < c->n_enc_layers; l++) {
      snprintf(name, sizeof name, "spec.out.block%d", l);
      LP_TRY_MSG(lp_dec_block_init(&m->enc_out[l], &xc, L, name), "output encoder block");
    }
    LP_TRY_MSG(rf_layout_ln(L, "spec.out.ln", D, &m->ln_out), "layout");
  }
  sh[0] = m->prog_v.size;
  LP_TRY_MSG(lp_layout_add(L, "dec.embed", 2, sh, LP_INIT_NORMAL, 1.0f, &m->emb_prog), "layout");
  for (int l = 0; l < c->n_dec_layers; l++) {
    snprintf(name, sizeof name, "dec.block%d", l);
    LP_TRY_MSG(lp_dec_block_init(&m->dec[l], &m->bcfg, L, name), "decoder block");
  }
  LP_TRY_MSG(rf_layout_ln(L, "dec.ln", D, &m->ln_dec), "layout");
  sh[0] = D, sh[1] = m->prog_v.size;
  LP_TRY_MSG(lp_layout_add(L, "out.w", 2, sh, LP_INIT_XAVIER_UNIFORM, 1.0f, &m->out_w), "layout");
  LP_TRY_MSG(lp_layout_add(L, "out.b", 1, &sh[1], LP_INIT_NORMAL, 1e-6f, &m->out_b), "layout");
  return LP_OK;
}

/* ---- activations -------------------------------------------------------------- */

void rf_acts_release(lp_model *m) {
  rf_acts *a = &m->acts;
  for (int l = 0; l < m->cfg.n_enc_layers; l++) {
    if (a->enc_in) lp_enc_block_acts_free(a->enc_in[l]);
    if (a->enc_out) lp_dec_block_acts_free(a->enc_out[l]);
  }
  for (int l = 0; l < m->cfg.n_dec_layers; l++)
    if (a->dec) lp_dec_block_acts_free(a->dec[l]);
  free(a->enc_in);
  free(a->enc_out);
  free(a->dec);
  free(a->mem);
  memset(a, 0, sizeof *a);
}

static void carve_acts(lp_carve *c, rf_acts *a, int D, int V) {
  const size_t BE = (size_t)a->cap_BE, B = (size_t)a->cap_B, Ti = (size_t)a->cap_Ti,
               To = (size_t)a->cap_To, T = (size_t)a->cap_T;
  const size_t nin = BE * Ti, nout = BE * To, ndec = BE * T;
  size_t tmax = Ti > To ? Ti : To, smax = tmax;
  tmax = T > tmax ? T : tmax;
  a->kin = lp_carve_take(c, nin);
  a->drop_in = lp_carve_take(c, nin * D);
  a->h_in = lp_carve_take(c, sizeof(float) * nin * D);
  a->e_in = lp_carve_take(c, sizeof(float) * nin * D);
  a->mean_in = lp_carve_take(c, sizeof(float) * nin);
  a->rstd_in = lp_carve_take(c, sizeof(float) * nin);
  a->kout = lp_carve_take(c, nout);
  a->drop_out = lp_carve_take(c, nout * D);
  a->h_out = lp_carve_take(c, sizeof(float) * nout * D);
  a->e_out = lp_carve_take(c, sizeof(float) * nout * D);
  a->mean_out = lp_carve_take(c, sizeof(float) * nout);
  a->rstd_out = lp_carve_take(c, sizeof(float) * nout);
  a->ids_dec = lp_carve_take(c, sizeof(int32_t) * ndec);
  a->drop_dec = lp_carve_take(c, ndec * D);
  a->h_dec = lp_carve_take(c, sizeof(float) * ndec * D);
  a->hn_dec = lp_carve_take(c, sizeof(float) * ndec * D);
  a->mean_dec = lp_carve_take(c, sizeof(float) * ndec);
  a->rstd_dec = lp_carve_take(c, sizeof(float) * ndec);
  a->pooled = lp_carve_take(c, sizeof(float) * B * T * D);
  a->argmax = lp_carve_take(c, sizeof(int32_t) * B * T * D);
  a->logits = lp_carve_take(c, sizeof(float) * B * T * V);
  a->probs = lp_carve_take(c, sizeof(float) * B * T * V);
  a->g_a = lp_carve_take(c, sizeof(float) * BE * tmax * D);
  a->g_b = lp_carve_take(c, sizeof(float) * BE * tmax * D);
  a->g_mem = lp_carve_take(c, sizeof(float) * BE * smax * D);
  a->g_mem2 = lp_carve_take(c, sizeof(float) * BE * Ti * D);
  a->g_pooled = lp_carve_take(c, sizeof(float) * B * T * D);
  a->g_logits = lp_carve_take(c, sizeof(float) * B * T * V);
}

static int round_up(int x, int q) { return (x + q - 1) / q * q; }

/* Makes the activations hold a batch of B tasks x E examples, lengths Ti, To, T. */
static int acts_ensure(lp_model *m, int B, int E, int Ti, int To, int T, lp_err *err) {
  rf_acts *a = &m->acts;
  const int BE = B * E;
  if (m->n_parts == 1) To = 1;
  if (T < 1) T = 1;
  if (a->mem && BE <= a->cap_BE && B <= a->cap_B && Ti <= a->cap_Ti && To <= a->cap_To &&
      T <= a->cap_T)
    return LP_OK;
  int cBE = BE > a->cap_BE ? BE : a->cap_BE, cB = B > a->cap_B ? B : a->cap_B;
  int cTi = Ti > a->cap_Ti ? round_up(Ti, 8) : a->cap_Ti;
  int cTo = To > a->cap_To ? round_up(To, 8) : a->cap_To;
  int cT = T > a->cap_T ? round_up(T, 8) : a->cap_T;
  rf_acts_release(m);
  a->cap_BE = cBE, a->cap_B = cB, a->cap_Ti = cTi, a->cap_To = cTo, a->cap_T = cT;
  const int ne = m->cfg.n_enc_layers, nd = m->cfg.n_dec_layers;
  a->enc_in = calloc((size_t)(ne ? ne : 1), sizeof *a->enc_in);
  a->enc_out = calloc((size_t)(ne ? ne : 1), sizeof *a->enc_out);
  a->dec = calloc((size_t)nd, sizeof *a->dec);
  int ok = a->enc_in && a->enc_out && a->dec;
  const int S = m->n_parts == 2 ? cTo : cTi;
  for (int l = 0; ok && l < ne; l++) {
    ok = (a->enc_in[l] = lp_enc_block_acts_new(&m->enc_in[l], cBE, cTi)) != NULL;
    if (ok && m->n_parts == 2)
      ok = (a->enc_out[l] = lp_dec_block_acts_new(&m->enc_out[l], cBE, cTo, cTi)) != NULL;
  }
  for (int l = 0; ok && l < nd; l++)
    ok = (a->dec[l] = lp_dec_block_acts_new(&m->dec[l], cBE, cT, S)) != NULL;
  if (ok) {
    lp_carve c = {NULL, 0};
    carve_acts(&c, a, m->cfg.d_model, m->prog_v.size);
    a->mem = aligned_alloc(64, lp_carve_bytes(&c));
    if (a->mem) {
      c.base = a->mem;
      c.used = 0;
      carve_acts(&c, a, m->cfg.d_model, m->prog_v.size);
    }
    ok = a->mem != NULL;
  }
  if (!ok) {
    rf_acts_release(m);
    return lp_err_set(err, LP_ENOMEM,
                      "out of memory for activations (%d sequences, lengths %d/%d/%d)", BE, Ti,
                      To, T);
  }
  return LP_OK;
}

/* ---- validation ---------------------------------------------------------------- */

int rf_check_batch(const lp_model *m, const lp_batch *b, int need_prog, lp_err *err) {
  if (!m || !b) return lp_err_set(err, LP_EINVAL, "NULL model or batch");
  if (b->B < 1 || b->E < 1 || !b->emask)
    return lp_err_set(err, LP_EINVAL, "empty batch (B %d, E %d)", b->B, b->E);
  if (b->n_parts != m->n_parts)
    return lp_err_set(err, LP_EINVAL, "batch has %d spec parts, the model %d", b->n_parts,
                      m->n_parts);
  if ((size_t)b->B * b->E > (size_t)1 << 20)
    return lp_err_set(err, LP_EINVAL, "batch too large (%d x %d)", b->B, b->E);
  const int32_t Vs = m->spec_v.size, Vp = m->prog_v.size;
  for (int p = 0; p < b->n_parts; p++) {
    int T = b->T_spec[p];
    if (T < 1 || T > m->cfg.max_spec_len || !b->spec[p])
      return lp_err_set(err, LP_EINVAL, "spec part %d: padded length %d outside [1, %d]", p, T,
                        m->cfg.max_spec_len);
    const size_t n = (size_t)b->B * b->E * T;
    const int32_t *ids = b->spec[p];
    for (size_t i = 0; i < n; i++)
      if (ids[i] < 0 || ids[i] >= Vs) {
        size_t row = i / (size_t)T;
        return lp_err_set(err, LP_EINVAL,
                          "task %zu example %zu part %d position %zu: spec id %d outside the "
                          "vocabulary [0, %d)",
                          row / (size_t)b->E, row % (size_t)b->E, p, i % (size_t)T,
                          (int)ids[i], (int)Vs);
      }
  }
  if (need_prog) {
    int T = b->T_prog;
    if (T < 1 || T > m->cfg.max_program_len || !b->prog)
      return lp_err_set(err, LP_EINVAL, "program: padded length %d outside [1, %d]", T,
                        m->cfg.max_program_len);
    const size_t n = (size_t)b->B * T;
    for (size_t i = 0; i < n; i++)
      if (b->prog[i] < 0 || b->prog[i] >= Vp)
        return lp_err_set(err, LP_EINVAL,
                          "task %zu position %zu: program id %d outside the vocabulary [0, %d)",
                          i / (size_t)T, i % (size_t)T, (int)b->prog[i], (int)Vp);
  }
  return LP_OK;
}

/* ---- forward ---------------------------------------------------------------------- */

int rf_embed_seq(const lp_model *m, float *x, uint8_t *drop, uint8_t *km, const int32_t *ids,
                 size_t table, int V, int pad, int B, int T, lp_rng *rng) {
  const int D = m->cfg.d_model;
  const size_t n = (size_t)B * T;
  int rc = lp_embedding_forward(x, ids, m->params + table, B * T, V, D, pad);
  if (rc == LP_OK) rc = lp_posenc_forward(x, x, B, T, D, 0);
  if (rc == LP_OK) rc = lp_dropout_forward(x, drop, x, n * D, m->cfg.dropout, rng);
  if (rc == LP_OK && km)
    for (size_t i = 0; i < n; i++) km[i] = ids[i] != pad;
  return rc;
}

int rf_encode(lp_model *m, const lp_batch *b, lp_rng *rng, lp_err *err) {
  rf_acts *a = &m->acts;
  const int BE = b->B * b->E, D = m->cfg.d_model, Vs = m->spec_v.size, pad = m->spec_v.pad;
  const int Ti = b->T_spec[0], To = m->n_parts == 2 ? b->T_spec[1] : 1;
  const float *P = m->params;
  if (acts_ensure(m, b->B, b->E, Ti, To, b->T_prog > 0 ? b->T_prog : 1, err) != LP_OK)
    return err ? err->code : LP_ENOMEM;
  m->B = b->B, m->E = b->E, m->Ti = Ti, m->To = To;
  m->fwd_ok = 0;
  LP_TRY_MSG(rf_embed_seq(m, a->h_in, a->drop_in, a->kin, b->spec[0], m->emb_in, Vs, pad, BE, Ti, rng),
       "input embedding");
  for (int l = 0; l < m->cfg.n_enc_layers; l++)
    LP_TRY_MSG(lp_enc_block_forward(&m->enc_in[l], P, a->enc_in[l], a->h_in, a->h_in, a->kin, BE, Ti,
                              rng),
         "input encoder block");
  LP_TRY_MSG(lp_layernorm_forward(a->e_in, a->mean_in, a->rstd_in, a->h_in, P + m->ln_in.g,
                            P + m->ln_in.b, BE * Ti, D, m->bcfg.ln_eps),
       "input layer norm");
  if (m->n_parts == 2) {
    LP_TRY_MSG(rf_embed_seq(m, a->h_out, a->drop_out, a->kout, b->spec[1], m->emb_out, Vs, pad, BE,
                      To, rng),
         "output embedding");
    for (int l = 0; l < m->cfg.n_enc_layers; l++)
      LP_TRY_MSG(lp_dec_block_forward(&m->enc_out[l], P, a->enc_out[l], a->h_out, a->h_out, a->kout,
                                a->e_in, a->kin, BE, To, Ti, rng),
           "output encoder block");
    LP_TRY_MSG(lp_layernorm_forward(a->e_out, a->mean_out, a->rstd_out, a->h_out, P + m->ln_out.g,
                              P + m->ln_out.b, BE * To, D, m->bcfg.ln_eps),
         "output layer norm");
  }
  return LP_OK;
}

const float *rf_memory(const lp_model *m, int *S, const uint8_t **mask) {
  const rf_acts *a = &m->acts;
  if (m->n_parts == 2) {
    if (S) *S = m->To;
    if (mask) *mask = a->kout;
    return a->e_out;
  }
  if (S) *S = m->Ti;
  if (mask) *mask = a->kin;
  return a->e_in;
}

int rf_decoder_forward(lp_model *m, int BE, int T, lp_rng *rng, lp_err *err) {
  rf_acts *a = &m->acts;
  const int D = m->cfg.d_model, V = m->prog_v.size, pad = m->prog_v.pad;
  const float *P = m->params;
  LP_TRY_MSG(rf_embed_seq(m, a->h_dec, a->drop_dec, NULL, a->ids_dec, m->emb_prog, V, pad, BE, T, rng),
       "program embedding");
  int S;
  const uint8_t *mmask;
  const float *mem = rf_memory(m, &S, &mmask);
  for (int l = 0; l < m->cfg.n_dec_layers; l++)
    LP_TRY_MSG(lp_dec_block_forward(&m->dec[l], P, a->dec[l], a->h_dec, a->h_dec, NULL, mem, mmask,
                              BE, T, S, rng),
         "decoder block");
  LP_TRY_MSG(lp_layernorm_forward(a->hn_dec, a->mean_dec, a->rstd_dec, a->h_dec, P + m->ln_dec.g,
                            P + m->ln_dec.b, BE * T, D, m->bcfg.ln_eps),
       "decoder layer norm");
  return LP_OK;
}

int rf_pool_forward(int frozen, float *y, int32_t *am, const float *x, const uint8_t *emask,
                    int B, int E, int M) {
  if (!frozen) return lp_maxpool_examples_forward(y, am, x, emask, B, E, M);
  for (size_t i = 0; i < (size_t)B * M; i++) {
    int32_t e = am[i];
    y[i] = e < 0 ? 0.0f : x[((i / M) * E + (size_t)e) * M + i % M];
  }
  return LP_OK;
}

int rf_count_correct(const float *logits, const int32_t *tgt, size_t n, int V, int pad) {
  int correct = 0;
  for (size_t r = 0; r < n; r++) {
    if (tgt[r] == pad) continue;
    const float *row = logits + r * V;
    int best = 0;
    for (int v = 1; v < V; v++)
      if (row[v] > row[best]) best = v;
    correct += best == tgt[r];
  }
  return correct;
}

/* RobustFill[LSTM]'s (rf_lstm.c): embeddings D, hidden size H; per input step
 * the LSTM's products, per output step the query, the attention to the input
 * and the LSTM's products, per program step two queries, two attentions, the
 * LSTM's products and tanh(V h). */
static double lstm_example_flops(const lp_model *m, double i, double o, double t) {
  const double D = m->cfg.d_model, H = m->cfg.d_ff, G = 4 * H;
  double f = i * (2 * D * G + 2 * H * G);
  double ctx = H; /* the decoder's attention contexts: H per spec part */
  double att = 2 * H * H + 4 * i * H;
  if (m->n_parts == 2) {
    f += o * (2 * H * H + 4 * i * H + 2 * (D + H) * G + 2 * H * G);
    ctx += H;
    att += 2 * 2 * H * H + 4 * o * H;
  }
  return f + t * (att + 2 * (D + ctx) * G + 2 * H * G + 2 * H * H);
}

/* Forward FLOPs of one example of lengths i (input), o (output; 0 with one
 * spec part), t (program) through the products and attention of the model
 * (2 per multiply-add; layer norms, softmax and the like not counted). */
double rf_example_flops(const lp_model *m, double i, double o, double t) {
  if (m->cfg.kind == LP_MODEL_RF_LSTM) return lstm_example_flops(m, i, o, t);
  const double D = m->cfg.d_model, F = m->cfg.d_ff;
  const double ne = m->cfg.n_enc_layers, nd = m->cfg.n_dec_layers;
  double f = ne * (8 * i * D * D + 4 * i * i * D + 4 * i * D * F); /* input encoder */
  double s = i;                                                     /* the decoder's memory */
  if (m->n_parts == 2) {
    f += ne * (8 * o * D * D + 4 * o * o * D + 4 * o * D * D + 4 * i * D * D + 4 * o * i * D +
               4 * o * D * F);
    s = o;
  }
  f += nd * (8 * t * D * D + 4 * t * t * D + 4 * t * D * D + 4 * s * D * D + 4 * t * s * D +
             4 * t * D * F);
  return f;
}

void rf_count_flops(const lp_model *m, const lp_batch *b, int width, double *run,
                    double *useful) {
  const int B = b->B, E = b->E, T = b->T_prog;
  const int Ti = b->T_spec[0], To = m->n_parts == 2 ? b->T_spec[1] : 0;
  const double D = width, V = m->prog_v.size;
  const int32_t sp = m->spec_v.pad, pp = m->prog_v.pad;
  double r = 0.0, u = 0.0;
  for (int k = 0; k < B; k++) {
    const int t = rf_used_len(b->prog + (size_t)k * T, T, pp);
    r += E * rf_example_flops(m, Ti, To, T) + 2.0 * T * D * V;
    u += 2.0 * t * D * V;
    for (int e = 0; e < E; e++) {
      if (!b->emask[(size_t)k * E + e]) continue;
      const int i = rf_used_len(b->spec[0] + ((size_t)k * E + e) * Ti, Ti, sp);
      const int o = To ? rf_used_len(b->spec[1] + ((size_t)k * E + e) * To, To, sp) : 0;
      u += rf_example_flops(m, i, o, t);
    }
  }
  *run += 3.0 * r;
  *useful += 3.0 * u;
}

/* ---- backward --------------------------------------------------------------------- */

int rf_embed_backward(lp_model *m, float *scratch, const float *dx, const uint8_t *drop,
                      const int32_t *ids, size_t table, int V, int pad, int N, int dropped) {
  const int D = m->cfg.d_model;
  const size_t n = (size_t)N * D;
  memset(scratch, 0, sizeof(float) * n);
  int rc = lp_dropout_backward(scratch, dx, dropped ? drop : NULL, n,
                               dropped ? m->cfg.dropout : 0.0f);
  if (rc != LP_OK) return rc;
  return lp_embedding_backward(m->grads + table, scratch, ids, N, V, D, pad);
}

int rf_stacks_backward(lp_model *m, const lp_batch *b, const float *g_hn, int dropped,
                       lp_err *err) {
  rf_acts *a = &m->acts;
  const int BE = m->B * m->E, T = m->T, Ti = m->Ti, To = m->To;
  const int D = m->cfg.d_model, V = m->prog_v.size, pad = m->prog_v.pad;
  const float *P = m->params;
  float *G = m->grads;
  /* decoder: g_hn -> layer norm -> blocks (memory gradient into g_mem) -> embedding */
  const size_t ndec = (size_t)BE * T * D;
  float *dy = g_hn == a->g_a ? a->g_b : a->g_a, *dx = dy == a->g_a ? a->g_b : a->g_a, *t;
  memset(dy, 0, sizeof(float) * ndec);
  LP_TRY_MSG(lp_layernorm_backward(dy, G + m->ln_dec.g, G + m->ln_dec.b, g_hn, a->h_dec, a->mean_dec,
                             a->rstd_dec, P + m->ln_dec.g, BE * T, D),
       "decoder layer norm backward");
  float *gmem = a->g_mem;
  for (int l = m->cfg.n_dec_layers - 1; l >= 0; l--) {
    memset(dx, 0, sizeof(float) * ndec);
    LP_TRY_MSG(lp_dec_block_backward(&m->dec[l], P, G, a->dec[l], dx, gmem, dy),
         "decoder block backward");
    t = dy, dy = dx, dx = t;
  }
  LP_TRY_MSG(rf_embed_backward(m, dx, dy, a->drop_dec, a->ids_dec, m->emb_prog, V, pad, BE * T,
                         dropped),
       "program embedding backward");
  /* gmem = d loss / d memory (Eout, or Ein with one part) */
  float *g_ein = gmem;
  const int Vs = m->spec_v.size, spad = m->spec_v.pad;
  if (m->n_parts == 2) {
    const size_t nout = (size_t)BE * To * D;
    dy = a->g_a, dx = a->g_b;
    memset(dy, 0, sizeof(float) * nout);
    LP_TRY_MSG(lp_layernorm_backward(dy, G + m->ln_out.g, G + m->ln_out.b, gmem, a->h_out,
                               a->mean_out, a->rstd_out, P + m->ln_out.g, BE * To, D),
         "output layer norm backward");
    g_ein = a->g_mem2;
    memset(g_ein, 0, sizeof(float) * (size_t)BE * Ti * D);
    for (int l = m->cfg.n_enc_layers - 1; l >= 0; l--) {
      memset(dx, 0, sizeof(float) * nout);
      LP_TRY_MSG(lp_dec_block_backward(&m->enc_out[l], P, G, a->enc_out[l], dx, g_ein, dy),
           "output encoder block backward");
      t = dy, dy = dx, dx = t;
    }
    LP_TRY_MSG(rf_embed_backward(m, dx, dy, a->drop_out, b->spec[1], m->emb_out, Vs, spad, BE * To,
                           dropped),
         "output embedding backward");
  }
  const size_t nin = (size_t)BE * Ti * D;
  dy = a->g_a, dx = a->g_b;
  memset(dy, 0, sizeof(float) * nin);
  LP_TRY_MSG(lp_layernorm_backward(dy, G + m->ln_in.g, G + m->ln_in.b, g_ein, a->h_in, a->mean_in,
                             a->rstd_in, P + m->ln_in.g, BE * Ti, D),
       "input layer norm backward");
  for (int l = m->cfg.n_enc_layers - 1; l >= 0; l--) {
    memset(dx, 0, sizeof(float) * nin);
    LP_TRY_MSG(lp_enc_block_backward(&m->enc_in[l], P, G, a->enc_in[l], dx, dy),
         "input encoder block backward");
    t = dy, dy = dx, dx = t;
  }
  LP_TRY_MSG(rf_embed_backward(m, dx, dy, a->drop_in, b->spec[0], m->emb_in, Vs, spad, BE * Ti,
                         dropped),
       "input embedding backward");
  return LP_OK;
}
