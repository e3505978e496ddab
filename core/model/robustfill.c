/* RobustFill[Transformer]: the paper's baseline (an LP without latents).
 *
 *   Ein  = LN(EncBlocks^n(Drop(Embed_in(I) + PE)))                  [B*E,Ti,D]
 *   Eout = LN(XBlocks^n(Drop(Embed_out(O) + PE), Ein))  (self-attention not
 *          causal, cross-attention to Ein of the same example)      [B*E,To,D]
 *   h    = LN(DecBlocks^n(Drop(Embed_prog(BOS y_1..y_{T-1}) + PE), Eout_e))
 *          for every example slot e                                 [B*E,T,D]
 *   logits = MaxPool_e(h) W + b                                     [B,T,Vp]
 *   loss = mean over non-pad targets of -log softmax(logits)[y_t]
 * With one spec part (n_parts = 1) the decoder attends to Ein.
 * Every stack runs on all B*E sequences at once (one sgemm per projection);
 * batches are padded to their longest sequence; activations are grown on
 * demand to the largest shape seen and reused. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lpsynth/runtime.h"
#include "model_internal.h"

/* ---- construction ----------------------------------------------------------- */

static int check_cfg(const lp_model_cfg *c, lp_err *err) {
  if (c->kind != LP_MODEL_ROBUSTFILL && c->kind != LP_MODEL_LP)
    return lp_err_set(err, LP_EUNSUP, "model kind %d is not implemented", c->kind);
  if (c->d_model < 2 || c->n_heads < 1 || c->d_model % c->n_heads != 0)
    return lp_err_set(err, LP_EINVAL, "d_model (%d) must be a positive multiple of n_heads (%d)",
                      c->d_model, c->n_heads);
  if (c->d_ff < 1 || c->n_enc_layers < 0 || c->n_dec_layers < 1)
    return lp_err_set(err, LP_EINVAL,
                      "bad sizes: d_ff %d, enc_layers %d, dec_layers %d (need d_ff >= 1, "
                      "enc_layers >= 0, dec_layers >= 1)",
                      c->d_ff, c->n_enc_layers, c->n_dec_layers);
  if (!(c->dropout >= 0.0f && c->dropout < 1.0f) ||
      !(c->attn_dropout >= 0.0f && c->attn_dropout < 1.0f))
    return lp_err_set(err, LP_EINVAL, "dropout rates must be in [0, 1)");
  if (c->max_spec_len < 1 || c->max_program_len < 2 || c->max_spec_len > 65536 ||
      c->max_program_len > 65536)
    return lp_err_set(err, LP_EINVAL, "bad max_spec_len %d / max_program_len %d",
                      c->max_spec_len, c->max_program_len);
  return LP_OK;
}

static int check_vocab(const lp_vocab_info *v, const char *what, int need_bos_eos,
                       lp_err *err) {
  if (v->size < 1 || v->size > (1 << 24))
    return lp_err_set(err, LP_EINVAL, "%s vocabulary size %d", what, (int)v->size);
  if (v->pad < 0 || v->pad >= v->size)
    return lp_err_set(err, LP_EINVAL, "%s vocabulary: pad id %d outside [0, %d)", what,
                      (int)v->pad, (int)v->size);
  if (need_bos_eos && (v->bos < 0 || v->bos >= v->size || v->eos < 0 || v->eos >= v->size))
    return lp_err_set(err, LP_EINVAL, "%s vocabulary: bos %d / eos %d outside [0, %d)", what,
                      (int)v->bos, (int)v->eos, (int)v->size);
  return LP_OK;
}

int rf_layout_ln(lp_layout *L, const char *prefix, int D, lp_ln_off *o) {
  char name[LP_PARAM_NAME_MAX];
  snprintf(name, sizeof name, "%s.scale", prefix);
  int rc = lp_layout_add(L, name, 1, &D, LP_INIT_ONES, 0.0f, &o->g);
  if (rc != LP_OK) return rc;
  snprintf(name, sizeof name, "%s.bias", prefix);
  return lp_layout_add(L, name, 1, &D, LP_INIT_ZEROS, 0.0f, &o->b);
}

static int build_layout(lp_model *m, lp_err *err) {
  const lp_model_cfg *c = &m->cfg;
  const int D = c->d_model;
  lp_layout *L = m->L;
  char name[LP_PARAM_NAME_MAX];
  int sh[2];
  sh[0] = m->spec_v.size, sh[1] = D;
  TRYE(lp_layout_add(L, "spec.in.embed", 2, sh, LP_INIT_NORMAL, 1.0f, &m->emb_in), "layout");
  for (int l = 0; l < c->n_enc_layers; l++) {
    snprintf(name, sizeof name, "spec.in.block%d", l);
    TRYE(lp_enc_block_init(&m->enc_in[l], &m->bcfg, L, name), "encoder block");
  }
  TRYE(rf_layout_ln(L, "spec.in.ln", D, &m->ln_in), "layout");
  if (m->n_parts == 2) {
    TRYE(lp_layout_add(L, "spec.out.embed", 2, sh, LP_INIT_NORMAL, 1.0f, &m->emb_out),
         "layout");
    lp_block_cfg xc = m->bcfg;
    xc.noncausal = 1;
    for (int l = 0; l < c->n_enc_layers; l++) {
      snprintf(name, sizeof name, "spec.out.block%d", l);
      TRYE(lp_dec_block_init(&m->enc_out[l], &xc, L, name), "output encoder block");
    }
    TRYE(rf_layout_ln(L, "spec.out.ln", D, &m->ln_out), "layout");
  }
  sh[0] = m->prog_v.size;
  TRYE(lp_layout_add(L, "dec.embed", 2, sh, LP_INIT_NORMAL, 1.0f, &m->emb_prog), "layout");
  for (int l = 0; l < c->n_dec_layers; l++) {
    snprintf(name, sizeof name, "dec.block%d", l);
    TRYE(lp_dec_block_init(&m->dec[l], &m->bcfg, L, name), "decoder block");
  }
  TRYE(rf_layout_ln(L, "dec.ln", D, &m->ln_dec), "layout");
  sh[0] = D, sh[1] = m->prog_v.size;
  TRYE(lp_layout_add(L, "out.w", 2, sh, LP_INIT_XAVIER_UNIFORM, 1.0f, &m->out_w), "layout");
  TRYE(lp_layout_add(L, "out.b", 1, &sh[1], LP_INIT_NORMAL, 1e-6f, &m->out_b), "layout");
  return LP_OK;
}

static void acts_release(lp_model *m);

lp_model *lp_model_new(const lp_model_cfg *c, const lp_vocab_info *spec,
                       const lp_vocab_info *prog, int n_parts, uint64_t seed, lp_err *err) {
  if (!c || !spec || !prog) {
    lp_err_set(err, LP_EINVAL, "lp_model_new: NULL argument");
    return NULL;
  }
  if (check_cfg(c, err) != LP_OK || check_vocab(spec, "spec", 0, err) != LP_OK ||
      check_vocab(prog, "program", 1, err) != LP_OK)
    return NULL;
  if (n_parts != 1 && n_parts != 2) {
    lp_err_set(err, LP_EINVAL, "lp_model_new: n_parts must be 1 or 2 (got %d)", n_parts);
    return NULL;
  }
  lp_model *m = calloc(1, sizeof *m);
  if (m) m->n_workers = 1;
  if (!m) {
    lp_err_set(err, LP_ENOMEM, "lp_model_new: out of memory");
    return NULL;
  }
  m->cfg = *c;
  m->spec_v = *spec;
  m->prog_v = *prog;
  m->n_parts = n_parts;
  lp_block_cfg_default(&m->bcfg, c->d_model, c->n_heads, c->d_ff);
  m->bcfg.dropout = c->dropout;
  m->bcfg.attn_dropout = c->attn_dropout;
  int ne = c->n_enc_layers, nd = c->n_dec_layers;
  m->enc_in = calloc((size_t)(ne ? ne : 1), sizeof *m->enc_in);
  m->enc_out = calloc((size_t)(ne ? ne : 1), sizeof *m->enc_out);
  m->dec = calloc((size_t)nd, sizeof *m->dec);
  m->L = lp_layout_new();
  if (!m->enc_in || !m->enc_out || !m->dec || !m->L) {
    lp_err_set(err, LP_ENOMEM, "lp_model_new: out of memory");
    lp_model_free(m);
    return NULL;
  }
  if (build_layout(m, err) != LP_OK) {
    lp_model_free(m);
    return NULL;
  }
  /* LP dispatch: the Latent Programmer's own tensors and state (lp.c) */
  if (c->kind == LP_MODEL_LP && lpm_build(m, seed, err) != LP_OK) {
    lp_model_free(m);
    return NULL;
  }
  m->n_params = lp_layout_numel(m->L);
  m->params = malloc(sizeof(float) * m->n_params);
  m->grads = calloc(m->n_params, sizeof(float));
  if (!m->params || !m->grads) {
    lp_err_set(err, LP_ENOMEM, "lp_model_new: out of memory for %zu parameters", m->n_params);
    lp_model_free(m);
    return NULL;
  }
  if (lp_layout_init_params(m->L, m->params, seed) != LP_OK) {
    lp_err_set(err, LP_EINVAL, "lp_model_new: parameter initialisation failed");
    lp_model_free(m);
    return NULL;
  }
  return m;
}

static void replicas_free(lp_model *m) {
  for (int w = 1; m->replica && w < m->n_workers; w++) {
    lp_model *r = m->replica[w - 1];
    if (!r) continue;
    lpm_replica_free(r);
    acts_release(r);
    rf_inc_release(r);
    free(r->grads);
    free(r);
  }
  free(m->replica);
  m->replica = NULL;
  m->n_workers = 1;
}

void lp_model_free(lp_model *m) {
  if (!m) return;
  if (m->is_replica) return; /* never handed out; owned by its model */
  replicas_free(m);
  lpm_free(m); /* LP dispatch (no-op for RobustFill) */
  acts_release(m);
  rf_inc_release(m);
  lp_layout_free(m->L);
  free(m->params);
  free(m->grads);
  free(m->enc_in);
  free(m->enc_out);
  free(m->dec);
  free(m);
}

const lp_model_cfg *lp_model_config(const lp_model *m) { return m ? &m->cfg : NULL; }
const lp_layout *lp_model_layout(const lp_model *m) { return m ? m->L : NULL; }
size_t lp_model_num_params(const lp_model *m) { return m ? m->n_params : 0; }
float *lp_model_params(lp_model *m) { return m ? m->params : NULL; }
float *lp_model_grads(lp_model *m) { return m ? m->grads : NULL; }
float *lp_model_state(lp_model *m, size_t *n) {
  if (m && m->lp) return lpm_state(m, n); /* LP dispatch */
  if (n) *n = 0;
  return NULL;
}

/* ---- activations -------------------------------------------------------------- */

static void acts_release(lp_model *m) {
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

static void carve_acts(carve *c, rf_acts *a, int D, int V) {
  const size_t BE = (size_t)a->cap_BE, B = (size_t)a->cap_B, Ti = (size_t)a->cap_Ti,
               To = (size_t)a->cap_To, T = (size_t)a->cap_T;
  const size_t nin = BE * Ti, nout = BE * To, ndec = BE * T;
  size_t tmax = Ti > To ? Ti : To, smax = tmax;
  tmax = T > tmax ? T : tmax;
  a->kin = take(c, nin);
  a->drop_in = take(c, nin * D);
  a->h_in = take(c, sizeof(float) * nin * D);
  a->e_in = take(c, sizeof(float) * nin * D);
  a->mean_in = take(c, sizeof(float) * nin);
  a->rstd_in = take(c, sizeof(float) * nin);
  a->kout = take(c, nout);
  a->drop_out = take(c, nout * D);
  a->h_out = take(c, sizeof(float) * nout * D);
  a->e_out = take(c, sizeof(float) * nout * D);
  a->mean_out = take(c, sizeof(float) * nout);
  a->rstd_out = take(c, sizeof(float) * nout);
  a->ids_dec = take(c, sizeof(int32_t) * ndec);
  a->drop_dec = take(c, ndec * D);
  a->h_dec = take(c, sizeof(float) * ndec * D);
  a->hn_dec = take(c, sizeof(float) * ndec * D);
  a->mean_dec = take(c, sizeof(float) * ndec);
  a->rstd_dec = take(c, sizeof(float) * ndec);
  a->pooled = take(c, sizeof(float) * B * T * D);
  a->argmax = take(c, sizeof(int32_t) * B * T * D);
  a->logits = take(c, sizeof(float) * B * T * V);
  a->probs = take(c, sizeof(float) * B * T * V);
  a->g_a = take(c, sizeof(float) * BE * tmax * D);
  a->g_b = take(c, sizeof(float) * BE * tmax * D);
  a->g_mem = take(c, sizeof(float) * BE * smax * D);
  a->g_mem2 = take(c, sizeof(float) * BE * Ti * D);
  a->g_pooled = take(c, sizeof(float) * B * T * D);
  a->g_logits = take(c, sizeof(float) * B * T * V);
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
  acts_release(m);
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
    carve c = {NULL, 0};
    carve_acts(&c, a, m->cfg.d_model, m->prog_v.size);
    a->mem = aligned_alloc(64, c.used);
    if (a->mem) {
      c.base = a->mem;
      c.used = 0;
      carve_acts(&c, a, m->cfg.d_model, m->prog_v.size);
    }
    ok = a->mem != NULL;
  }
  if (!ok) {
    acts_release(m);
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
  TRYE(rf_embed_seq(m, a->h_in, a->drop_in, a->kin, b->spec[0], m->emb_in, Vs, pad, BE, Ti, rng),
       "input embedding");
  for (int l = 0; l < m->cfg.n_enc_layers; l++)
    TRYE(lp_enc_block_forward(&m->enc_in[l], P, a->enc_in[l], a->h_in, a->h_in, a->kin, BE, Ti,
                              rng),
         "input encoder block");
  TRYE(lp_layernorm_forward(a->e_in, a->mean_in, a->rstd_in, a->h_in, P + m->ln_in.g,
                            P + m->ln_in.b, BE * Ti, D, m->bcfg.ln_eps),
       "input layer norm");
  if (m->n_parts == 2) {
    TRYE(rf_embed_seq(m, a->h_out, a->drop_out, a->kout, b->spec[1], m->emb_out, Vs, pad, BE,
                      To, rng),
         "output embedding");
    for (int l = 0; l < m->cfg.n_enc_layers; l++)
      TRYE(lp_dec_block_forward(&m->enc_out[l], P, a->enc_out[l], a->h_out, a->h_out, a->kout,
                                a->e_in, a->kin, BE, To, Ti, rng),
           "output encoder block");
    TRYE(lp_layernorm_forward(a->e_out, a->mean_out, a->rstd_out, a->h_out, P + m->ln_out.g,
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
  TRYE(rf_embed_seq(m, a->h_dec, a->drop_dec, NULL, a->ids_dec, m->emb_prog, V, pad, BE, T, rng),
       "program embedding");
  int S;
  const uint8_t *mmask;
  const float *mem = rf_memory(m, &S, &mmask);
  for (int l = 0; l < m->cfg.n_dec_layers; l++)
    TRYE(lp_dec_block_forward(&m->dec[l], P, a->dec[l], a->h_dec, a->h_dec, NULL, mem, mmask,
                              BE, T, S, rng),
         "decoder block");
  TRYE(lp_layernorm_forward(a->hn_dec, a->mean_dec, a->rstd_dec, a->h_dec, P + m->ln_dec.g,
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

int rf_forward(lp_model *m, const lp_batch *b, lp_rng *rng, lp_step_stats *st, lp_err *err) {
  if (rf_check_batch(m, b, 1, err) != LP_OK) return err ? err->code : LP_EINVAL;
  int rc = rf_encode(m, b, rng, err);
  if (rc != LP_OK) return rc;
  rf_acts *a = &m->acts;
  const int B = b->B, E = b->E, BE = B * E, T = b->T_prog, D = m->cfg.d_model;
  const int V = m->prog_v.size, pad = m->prog_v.pad;
  const float *P = m->params;
  m->T = T;
  m->dropped = rng != NULL;
  m->fwd_ok = 0;
  /* decoder input: BOS y_1 .. y_{T-1}, once per example slot */
  for (int t = 0; t < B; t++) {
    const int32_t *y = b->prog + (size_t)t * T;
    for (int e = 0; e < E; e++) {
      int32_t *d = a->ids_dec + ((size_t)t * E + e) * T;
      d[0] = m->prog_v.bos;
      memcpy(d + 1, y, sizeof(int32_t) * (size_t)(T - 1));
    }
  }
  if ((rc = rf_decoder_forward(m, BE, T, rng, err)) != LP_OK) return rc;
  if (m->freeze_argmax) /* tests: a fixed selection (see model_internal.h) */
    memcpy(a->argmax, m->freeze_argmax, sizeof(int32_t) * (size_t)B * T * D);
  TRYE(rf_pool_forward(m->freeze_argmax != NULL, a->pooled, a->argmax, a->hn_dec, b->emask, B, E,
                       T * D),
       "max-pool");
  TRYE(lp_linear_forward(a->logits, a->pooled, P + m->out_w, P + m->out_b, B * T, D, V),
       "output layer");
  double loss = 0.0;
  int n_valid = 0;
  TRYE(lp_cross_entropy_forward(&loss, a->probs, NULL, &n_valid, a->logits, b->prog, B * T, V,
                                pad),
       "cross-entropy");
  m->fwd_ok = 1;
  if (st) {
    const int correct = rf_count_correct(a->logits, b->prog, (size_t)B * T, V, pad);
    memset(st, 0, sizeof *st);
    st->loss = st->loss_prog = loss;
    st->n_tokens = n_valid;
    st->token_acc = n_valid ? (double)correct / n_valid : 0.0;
  }
  return LP_OK;
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
  TRYE(lp_layernorm_backward(dy, G + m->ln_dec.g, G + m->ln_dec.b, g_hn, a->h_dec, a->mean_dec,
                             a->rstd_dec, P + m->ln_dec.g, BE * T, D),
       "decoder layer norm backward");
  float *gmem = a->g_mem;
  for (int l = m->cfg.n_dec_layers - 1; l >= 0; l--) {
    memset(dx, 0, sizeof(float) * ndec);
    TRYE(lp_dec_block_backward(&m->dec[l], P, G, a->dec[l], dx, gmem, dy),
         "decoder block backward");
    t = dy, dy = dx, dx = t;
  }
  TRYE(rf_embed_backward(m, dx, dy, a->drop_dec, a->ids_dec, m->emb_prog, V, pad, BE * T,
                         dropped),
       "program embedding backward");
  /* gmem = d loss / d memory (Eout, or Ein with one part) */
  float *g_ein = gmem;
  const int Vs = m->spec_v.size, spad = m->spec_v.pad;
  if (m->n_parts == 2) {
    const size_t nout = (size_t)BE * To * D;
    dy = a->g_a, dx = a->g_b;
    memset(dy, 0, sizeof(float) * nout);
    TRYE(lp_layernorm_backward(dy, G + m->ln_out.g, G + m->ln_out.b, gmem, a->h_out,
                               a->mean_out, a->rstd_out, P + m->ln_out.g, BE * To, D),
         "output layer norm backward");
    g_ein = a->g_mem2;
    memset(g_ein, 0, sizeof(float) * (size_t)BE * Ti * D);
    for (int l = m->cfg.n_enc_layers - 1; l >= 0; l--) {
      memset(dx, 0, sizeof(float) * nout);
      TRYE(lp_dec_block_backward(&m->enc_out[l], P, G, a->enc_out[l], dx, g_ein, dy),
           "output encoder block backward");
      t = dy, dy = dx, dx = t;
    }
    TRYE(rf_embed_backward(m, dx, dy, a->drop_out, b->spec[1], m->emb_out, Vs, spad, BE * To,
                           dropped),
         "output embedding backward");
  }
  const size_t nin = (size_t)BE * Ti * D;
  dy = a->g_a, dx = a->g_b;
  memset(dy, 0, sizeof(float) * nin);
  TRYE(lp_layernorm_backward(dy, G + m->ln_in.g, G + m->ln_in.b, g_ein, a->h_in, a->mean_in,
                             a->rstd_in, P + m->ln_in.g, BE * Ti, D),
       "input layer norm backward");
  for (int l = m->cfg.n_enc_layers - 1; l >= 0; l--) {
    memset(dx, 0, sizeof(float) * nin);
    TRYE(lp_enc_block_backward(&m->enc_in[l], P, G, a->enc_in[l], dx, dy),
         "input encoder block backward");
    t = dy, dy = dx, dx = t;
  }
  TRYE(rf_embed_backward(m, dx, dy, a->drop_in, b->spec[0], m->emb_in, Vs, spad, BE * Ti,
                         dropped),
       "input embedding backward");
  return LP_OK;
}

int rf_backward(lp_model *m, const lp_batch *b, lp_err *err) {
  rf_acts *a = &m->acts;
  const int B = m->B, E = m->E, BE = B * E, T = m->T;
  const int D = m->cfg.d_model, V = m->prog_v.size, pad = m->prog_v.pad;
  const float *P = m->params;
  float *G = m->grads;
  if (!m->fwd_ok || !b || b->B != B || b->E != E || b->T_prog != T)
    return lp_err_set(err, LP_EINVAL, "backward without a matching forward");
  /* logits -> pooled -> per-example decoder states */
  memset(a->g_logits, 0, sizeof(float) * (size_t)B * T * V);
  TRYE(lp_cross_entropy_backward(a->g_logits, a->probs, b->prog, B * T, V, pad, 1.0f),
       "cross-entropy backward");
  memset(a->g_pooled, 0, sizeof(float) * (size_t)B * T * D);
  TRYE(lp_linear_backward(a->g_pooled, G + m->out_w, G + m->out_b, a->g_logits, a->pooled,
                          P + m->out_w, B * T, D, V),
       "output layer backward");
  float *dy = a->g_a; /* gradient of the decoder's layer-norm output */
  memset(dy, 0, sizeof(float) * (size_t)BE * T * D);
  TRYE(lp_maxpool_examples_backward(dy, a->g_pooled, a->argmax, B, E, T * D),
       "max-pool backward");
  const int S = m->n_parts == 2 ? m->To : m->Ti;
  memset(a->g_mem, 0, sizeof(float) * (size_t)BE * S * D);
  return rf_stacks_backward(m, b, dy, m->dropped, err);
}

/* ---- data-parallel training ---------------------------------------------------------- */

int lp_model_set_threads(lp_model *m, int n, lp_err *err) {
  if (!m || m->is_replica) return lp_err_set(err, LP_EINVAL, "lp_model_set_threads: bad model");
  if (n < 1 || n > LP_ENGINE_MAX_WORKERS)
    return lp_err_set(err, LP_EINVAL, "threads must be 1..%d (got %d)", LP_ENGINE_MAX_WORKERS, n);
  replicas_free(m);
  lp_engine_set_threads(1);
  if (n == 1) return LP_OK;
  m->replica = calloc((size_t)n - 1, sizeof *m->replica);
  if (!m->replica) return lp_err_set(err, LP_ENOMEM, "out of memory for %d workers", n);
  m->n_workers = n;
  for (int w = 1; w < n; w++) {
    lp_model *r = malloc(sizeof *r);
    float *g = r ? calloc(m->n_params, sizeof(float)) : NULL;
    if (!g) {
      free(r);
      replicas_free(m);
      return lp_err_set(err, LP_ENOMEM, "out of memory for %d workers", n);
    }
    *r = *m; /* shares cfg, vocabularies, layout, block offsets and params */
    memset(&r->acts, 0, sizeof r->acts);
    memset(&r->inc, 0, sizeof r->inc);
    r->grads = g;
    r->replica = NULL;
    r->n_workers = 1;
    r->is_replica = 1;
    r->freeze_argmax = NULL;
    r->fwd_ok = 0;
    r->lp = NULL;
    m->replica[w - 1] = r;
    if (m->lp && lpm_replica_init(r, m) != LP_OK) {
      replicas_free(m);
      return lp_err_set(err, LP_ENOMEM, "out of memory for %d workers", n);
    }
  }
  return LP_OK;
}

static void par_worker(void *ctx, int w) {
  rf_par *j = ctx;
  lp_model *m = w == 0 ? j->m : j->m->replica[w - 1];
  memset(m->grads, 0, sizeof(float) * m->n_params);
  j->rc[w] = rf_forward(m, &j->view[w], j->use_rng ? &j->rng[w] : NULL, &j->st[w], &j->err[w]);
  if (j->rc[w] == LP_OK) j->rc[w] = rf_backward(m, &j->view[w], &j->err[w]);
}

void rf_batch_view(lp_batch *v, const lp_batch *b, int t0, int t1) {
  const int E = b->E;
  *v = *b;
  v->B = t1 - t0;
  for (int p = 0; p < 2; p++)
    if (b->spec[p]) v->spec[p] = b->spec[p] + (size_t)t0 * E * b->T_spec[p];
  v->emask = b->emask + (size_t)t0 * E;
  v->prog = b->prog ? b->prog + (size_t)t0 * b->T_prog : NULL;
  v->prog_enc = b->prog_enc ? b->prog_enc + (size_t)t0 * b->T_prog : NULL;
  memset(v->cap_spec, 0, sizeof v->cap_spec);
  v->cap_prog = v->cap_emask = 0;
}

int rf_par_run(rf_par *j, lp_model *m, const lp_batch *b, lp_rng *rng,
               void (*worker)(void *ctx, int w), lp_err *err) {
  const int W = m->n_workers, B = b->B;
  j->m = m;
  j->use_rng = rng != NULL;
  for (int w = 0; w < W; w++) {
    rf_batch_view(&j->view[w], b, B * w / W, B * (w + 1) / W);
    if (rng) lp_rng_seed(&j->rng[w], lp_rng_next(rng));
  }
  int rc = lp_engine_parallel(W, worker, j);
  for (int w = 0; rc == LP_OK && w < W; w++)
    if (j->rc[w] != LP_OK) {
      rc = j->rc[w];
      if (err) *err = j->err[w];
    }
  return rc;
}

void rf_par_add_grads(lp_model *m, int w, float c) {
  const size_t np = m->n_params;
  float *G = m->grads;
  if (w == 0) {
    for (size_t i = 0; i < np; i++) G[i] *= c;
  } else {
    const float *g = m->replica[w - 1]->grads;
    for (size_t i = 0; i < np; i++) G[i] += c * g[i];
  }
}

/* One train step split over the workers: worker w takes tasks
 * [B*w/W, B*(w+1)/W) as a view of b (same padded lengths); its gradient of its
 * own token-mean loss is weighted by its share of the batch's target tokens. */
static int rf_train_parallel(lp_model *m, const lp_batch *b, lp_rng *rng, lp_step_stats *st,
                             lp_err *err) {
  const int W = m->n_workers;
  rf_par *j = calloc(1, sizeof *j);
  if (!j) return lp_err_set(err, LP_ENOMEM, "out of memory");
  int rc = rf_par_run(j, m, b, rng, par_worker, err);
  if (rc == LP_OK) {
    int n = 0;
    for (int w = 0; w < W; w++) n += j->st[w].n_tokens;
    lp_step_stats sum;
    memset(&sum, 0, sizeof sum);
    for (int w = 0; w < W; w++) {
      const double f = n ? (double)j->st[w].n_tokens / n : 1.0 / W;
      sum.loss += f * j->st[w].loss;
      sum.token_acc += f * j->st[w].token_acc;
      rf_par_add_grads(m, w, (float)f);
    }
    sum.loss_prog = sum.loss;
    sum.n_tokens = n;
    if (st) *st = sum;
  }
  free(j);
  return rc;
}

/* ---- public steps ------------------------------------------------------------------ */

int lp_model_train_step(lp_model *m, const lp_batch *b, int64_t step, lp_rng *rng,
                        lp_step_stats *st, lp_err *err) {
  if (!m || !b) return lp_err_set(err, LP_EINVAL, "lp_model_train_step: NULL argument");
  if (m->cfg.kind == LP_MODEL_LP) return lpm_train_step(m, b, step, rng, st, err); /* LP */
  memset(m->grads, 0, sizeof(float) * m->n_params);
  if (m->n_workers > 1 && b->B >= m->n_workers) return rf_train_parallel(m, b, rng, st, err);
  lp_step_stats local;
  int rc = rf_forward(m, b, rng, st ? st : &local, err);
  if (rc != LP_OK) return rc;
  return rf_backward(m, b, err);
}

int lp_model_eval_loss(lp_model *m, const lp_batch *b, lp_step_stats *st, lp_err *err) {
  if (!m || !b) return lp_err_set(err, LP_EINVAL, "lp_model_eval_loss: NULL argument");
  if (m->cfg.kind == LP_MODEL_LP) return lpm_eval_loss(m, b, st, err); /* LP dispatch */
  lp_step_stats local;
  return rf_forward(m, b, NULL, st ? st : &local, err);
}
