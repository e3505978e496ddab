/* The Latent Programmer (paper sections 3.1-3.3, spec/model.md), built on the
 * RobustFill parts of struct lp_model (spec encoder, program embedding
 * "dec.embed", the spec-attending decoder stack "dec.block<i>" + "dec.ln",
 * output layer "out.w/b").
 *
 * Program encoder ec(Y) (training only):
 *   h0 = LN(EncBlocks^n(Drop(Embed_penc(Y_enc) + PE)))  [B,T,D], key mask = non-pad;
 *   padded positions are zeroed, then l convolutions (kernel 2, stride 2,
 *   "same"; no activation between them), each followed by zeroing the
 *   positions whose window holds no program token: z = [B,S,D], S = ceil(T/2^l).
 *   A latent is valid when its window holds a non-pad token.
 * With vq_norm = 1 the quantiser's input is LN(z) (layer norm without gain or
 *   bias, per latent) instead of z; everything below then reads LN(z) for z.
 * Vector quantiser: K codes [K,D] (the codebook lives in lp_model_state, not in
 *   the parameters: no gradient, no Adam); idx = argmin_k ||z - c_k||^2;
 *   forward value q = c_idx, backward straight-through (dz += dq);
 *   commitment = beta * mean over valid latents of ||q - z||^2 (sum over D).
 *   EMA (train steps only, after the backward): n_k = d n_k + (1-d) count_k,
 *   w_k = d w_k + (1-d) sum_{z -> k} z, c_k = w_k / n~_k with the Laplace-
 *   smoothed n~_k = (n_k + eps) / (N + K eps) * N, N = sum n. The codebook is
 *   initialised from data: at the first train step, before quantising, codes
 *   are set to K encoder outputs of the batch (random N(0,1) until then, for
 *   forwards before any training); n_k = 1, w_k = c_k. With kmeans_init = 1
 *   the codes are instead the centres of k-means over the batch's encoder
 *   outputs (n_k, w_k: each cluster's size and sum), at the first step and again
 *   at the first step after pretraining. Codes unused
 *   for LPM_DEAD_AFTER steps are "dead" (lp_step_stats.dead_codes); with
 *   dead_code_restart = 1 they are re-initialised from a (deterministically
 *   chosen) valid encoder output of the current batch.
 * State layout (lp_model_state, n = 2*K*D + 2*K floats):
 *   codebook [K,D] | ema_w [K,D] | ema_n [K] | idle [K] (steps since last use).
 * Latent predictor lp(X): latent vocabulary Vl = K+2: codes 0..K-1, EOS = K,
 *   BOS = K+1 (BOS also pads the teacher-forced targets; it is never predicted).
 *   x = Drop(Embed_lat(BOS z_1..z_S) + PE) per example slot, "lat.block<i>"
 *   (n_dec_layers decoder blocks attending to that example's spec encoding),
 *   "lat.ln", max-pool across examples, "lat.out" [D,Vl]; targets z_1..z_S EOS.
 * Latent program decoder (eq. 4): over the program prefix BOS y_1..y_{T-1}
 *   (embedding "dec.embed" + PE, shared by both stacks, own dropout masks):
 *   stack A = "dec.block<i>"/"dec.ln" attending to the spec encoding of each
 *   example [B*E,T,D]; stack Z = "zdec.block<i>"/"zdec.ln" attending to the latent
 *   memory Zm = Z + PE [B,S,D] (key mask = valid latents) [B,T,D];
 *   h = [hA_e, hZ] W_cat + b_cat ("dec.cat", [2D,D]) per example, max-pooled
 *   across examples, logits = pooled out.w + out.b.
 * Loss (eq. 5) = w_ae * (CE(Y | q, X) + commitment)
 *             + w_latent * CE(codes + EOS | lp(X))
 *             + w_e2e * CE(Y | Zsoft, X),
 *   Zsoft[s] = softmax over the K code logits of the predictor's teacher-forced
 *   position s, times the codebook (the gradient reaches the predictor; the
 *   codebook gets none). Stack A runs once (same input, same memory: both
 *   passes share its activations and dropout masks); stack Z runs twice.
 *   Pretraining (step <= pretrain_steps): the autoencoder pass gets Z = the mean
 *   of "penc.embed" rows of the window's non-pad program tokens instead of q;
 *   the encoder, quantiser (commitment, EMA), predictor and e2e terms run as
 *   after pretraining.
 * Stats: loss_prog = AE cross-entropy, loss_commit = beta * mean ||q - z||^2,
 *   loss_latent, loss_e2e; token_acc of the AE pass.
 *
 * Latent RobustFill [AE] and [VAE] (kinds latent-ae / latent-vae; paper
 * section 5, the ablations with a continuous latent; struct lpm's mode LPM_AE /
 * LPM_VAE instead of LPM_VQ). The program encoder, both decoder stacks, the
 * combine and the predictor's Transformer stack are the LP's; what changes:
 *   latent: no quantiser, no codebook, no state, no pretraining phase
 *     (pretrain_steps, ema_*, latent_k, commit_beta, dead_code_restart,
 *     kmeans_init, ref_pretrain are ignored). AE: zl = z (the encoder's
 *     output). VAE: heads "penc.mu" and "penc.lv" [D,D] on z give the mean mu
 *     and log-variance lv per latent; zl = mu + exp(lv/2) * eps, eps ~ N(0, I)
 *     from the step's rng (zl = mu without an rng: evaluation); the term
 *     KL = mean over valid latents of 0.5 sum_d (mu^2 + e^lv - 1 - lv),
 *     weighted by kl_weight inside the w_ae term (reported as loss_commit).
 *     Valid latents: as the LP's (windows holding a program token).
 *   the AE pass decodes from Zm = zl + PE.
 *   latent predictor: continuous, teacher-forced: input position s (0..S-1)
 *     = Drop("lat.embed" [1,D] + PE) + tgt_{s-1} (0 at s = 0: the start),
 *     stack, LN, max-pool as the LP's, then the head "lat.out" [D,D] gives the
 *     predicted latent pred_s. tgt = z (AE) or mu (VAE), STOP-GRADIENT both as
 *     the input and as the target: the predictor follows the autoencoder (as
 *     the LP's predictor follows its codes) and cannot pull the latents
 *     toward what is easy to predict. No end token: the length is given.
 *     loss_latent = the mean squared error, over valid latents and the D
 *     dimensions, of pred - tgt (per dimension: a term of the other terms'
 *     size whatever D, so clipping the gradient's norm does not starve them).
 *   end-to-end: the second stack-Z pass decodes from pred (valid latents)
 *     + PE; its gradient reaches the predictor.
 *   Loss = w_ae * (CE(Y | zl, X) [+ kl_weight * KL]) + w_latent * MSE
 *        + w_e2e * CE(Y | pred, X).
 *   Stats: latent_acc, codebook_perplexity, dead_codes are 0.
 * Inference (lp_search.c) is given the true program length (the batch's
 * reference program): see lpm_search.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lpsynth/runtime.h"
#include "model_internal.h"

#define LPM_DEAD_AFTER 25 /* steps without use after which a code is dead */


typedef struct lpm_acts {
  int cB, cBE, cT, cS, cSL, cSm, cV; /* capacities */
  lp_enc_block_acts **penc;          /* [n_enc] */
  lp_dec_block_acts **zb[2];         /* [n_dec] stack Z, pass 0 = AE, 1 = e2e */
  lp_dec_block_acts **lat;           /* [n_dec] */
  void *mem;
  /* program encoder */
  uint8_t *kp, *drop_p, *cvm;         /* cvm: validity per conv level (layout of cv) */
  float *hp, *mean_p, *rstd_p, *cv;   /* cv: levels 0..l, [B,T_j,D] each */
  int32_t *idx;                       /* [B,S] */
  uint8_t *zmask;                     /* [B,S] */
  float *zm[2];                       /* [B,S,D] decoder memories (incl. PE) */
  float *qd;                          /* [B,S,D] q - z of the last unfrozen forward */
  float *psoft;                       /* [B,S,K] */
  float *zn, *mean_z, *rstd_z;        /* vq_norm: LN(z) [B,S,D] and its statistics */
  float *ln1;                         /* vq_norm: [2D] gain 1 | bias 0 */
  float *g_zn;                        /* vq_norm: [B,S,D] gradient of LN(z) */
  int *cnt;                           /* [B,S] tokens per window (pretraining) */
  /* stack Z */
  int32_t *ids_b;
  uint8_t *drop_b;
  float *xb, *hb[2], *hbn[2], *mean_b[2], *rstd_b[2];
  /* combine */
  float *cat[2], *yc[2], *pool[2], *logits[2], *probs[2];
  int32_t *pam[2];
  /* latent predictor */
  int32_t *lin, *ltgt;
  uint8_t *drop_l;
  float *hl, *hln, *mean_l, *rstd_l, *lpool, *llog, *lprob;
  int32_t *lam;
  /* backward scratch */
  float *g_log, *g_pool, *g_yc, *g_cat, *g_hn, *g_hb, *g_t1, *g_t2, *g_xb, *g_zm[2], *g_cv;
  float *g_llog, *g_lpool, *g_l1, *g_l2;
  /* AE/VAE: the latent the AE pass decodes [B,S,D]; VAE: mean, log-variance,
   * noise [B,S,D] and the gradients of mean and log-variance */
  float *zl, *vmu, *vlv, *veps, *g_mu, *g_lv;
  float *ztg; /* [B,S,D] the predictor's targets (stop-gradient), kept while frozen */
} lpm_acts;

struct lpm {
  int mode; /* LPM_VQ, LPM_AE, LPM_VAE (from the kind) */
  /* Vl: latent embedding rows (K+2; AE/VAE: 1), Vo: predictor outputs (Vl; AE/VAE: D) */
  int K, l, W, Vl, Vo;
  size_t mu_w, mu_b, lv_w, lv_b; /* VAE heads */
  size_t penc_emb;
  lp_enc_block *penc;
  lp_ln_off penc_ln;
  size_t conv_w[8], conv_b[8];
  lp_dec_block *zdec;
  lp_ln_off zdec_ln;
  size_t cat_w, cat_b;
  size_t lat_emb;
  lp_dec_block *lat;
  lp_ln_off lat_ln;
  size_t lat_w, lat_b;
  /* state */
  float *state;
  size_t n_state;
  float *codebook, *ema_w, *ema_n, *idle;
  int freeze;
  int hide_spec; /* ref_pretrain = 1 (or the test hook lpm_set_hide_spec):
                    reference-style pretraining instead of the paper's: while
                    pretraining, the AE pass's decoder gets the quantised latents
                    (not averaged embeddings) and no spec (the spec half of the
                    concatenation is zero), and the codebook is frozen (no EMA) */
  lpm_acts a;
  /* last forward */
  int B, E, T, S, SL, Sm, pretrain, dropped, fwd_ok, nvalid, nlat;
  double commit_raw;
  /* length-bucketed steps: a chunk's shares of the batch's program tokens,
   * valid latents and latent targets, multiplying the gradients of the terms
   * normalised by each (1 outside chunked steps) */
  float sc_tok, sc_valid, sc_lat;
};

/* ---- construction --------------------------------------------------------------- */

int lpm_build(lp_model *m, uint64_t seed, lp_err *err) {
  const lp_model_cfg *c = &m->cfg;
  const int D = c->d_model, K = c->latent_K;
  if (K < 1 || c->latent_l < 0 || c->latent_l > 8)
    return lp_err_set(err, LP_EINVAL, "model kind lp: latent_k %d / latent_l %d out of range", K,
                      c->latent_l);
  if (!(c->ema_decay >= 0.0f && c->ema_decay < 1.0f) || !(c->ema_eps > 0.0f))
    return lp_err_set(err, LP_EINVAL, "model kind lp: ema_decay must be in [0,1), ema_eps > 0");
  struct lpm *p = calloc(1, sizeof *p);
  if (!p) return lp_err_set(err, LP_ENOMEM, "lp_model_new: out of memory");
  m->lp = p;
  p->mode = c->kind == LP_MODEL_LATENT_AE    ? LPM_AE
            : c->kind == LP_MODEL_LATENT_VAE ? LPM_VAE
                                             : LPM_VQ;
  const int vq = p->mode == LPM_VQ;
  p->K = K, p->l = c->latent_l, p->W = 1 << c->latent_l, p->Vl = vq ? K + 2 : 1;
  p->Vo = vq ? p->Vl : D;
  p->hide_spec = vq && c->ref_pretrain;
  const int ne = c->n_enc_layers, nd = c->n_dec_layers;
  p->penc = calloc((size_t)(ne ? ne : 1), sizeof *p->penc);
  p->zdec = calloc((size_t)nd, sizeof *p->zdec);
  p->lat = calloc((size_t)nd, sizeof *p->lat);
  p->n_state = vq ? 2 * (size_t)K * D + 2 * (size_t)K : 0; /* AE/VAE: no state */
  p->state = vq ? malloc(sizeof(float) * p->n_state) : NULL;
  if (!p->penc || !p->zdec || !p->lat || (vq && !p->state))
    return lp_err_set(err, LP_ENOMEM, "lp_model_new: out of memory");
  lp_layout *L = m->L;
  char name[LP_PARAM_NAME_MAX];
  int sh[3];
  sh[0] = m->prog_v.size, sh[1] = D;
  LP_TRY_MSG(lp_layout_add(L, "penc.embed", 2, sh, LP_INIT_NORMAL, 1.0f, &p->penc_emb), "layout");
  for (int i = 0; i < ne; i++) {
    snprintf(name, sizeof name, "penc.block%d", i);
    LP_TRY_MSG(lp_enc_block_init(&p->penc[i], &m->bcfg, L, name), "program encoder block");
  }
  LP_TRY_MSG(rf_layout_ln(L, "penc.ln", D, &p->penc_ln), "layout");
  for (int j = 0; j < p->l; j++) {
    sh[0] = 2, sh[1] = D, sh[2] = D;
    snprintf(name, sizeof name, "penc.conv%d.w", j);
    LP_TRY_MSG(lp_layout_add(L, name, 3, sh, LP_INIT_XAVIER_UNIFORM, 1.0f, &p->conv_w[j]), "layout");
    snprintf(name, sizeof name, "penc.conv%d.b", j);
    LP_TRY_MSG(lp_layout_add(L, name, 1, &D, LP_INIT_ZEROS, 0.0f, &p->conv_b[j]), "layout");
  }
  if (p->mode == LPM_VAE) { /* mean and log-variance heads (lv near 0 at the start) */
    sh[0] = D, sh[1] = D;
    LP_TRY_MSG(lp_layout_add(L, "penc.mu.w", 2, sh, LP_INIT_XAVIER_UNIFORM, 1.0f, &p->mu_w),
               "layout");
    LP_TRY_MSG(lp_layout_add(L, "penc.mu.b", 1, &D, LP_INIT_ZEROS, 0.0f, &p->mu_b), "layout");
    LP_TRY_MSG(lp_layout_add(L, "penc.lv.w", 2, sh, LP_INIT_XAVIER_UNIFORM, 0.1f, &p->lv_w),
               "layout");
    LP_TRY_MSG(lp_layout_add(L, "penc.lv.b", 1, &D, LP_INIT_ZEROS, 0.0f, &p->lv_b), "layout");
  }
  for (int i = 0; i < nd; i++) {
    snprintf(name, sizeof name, "zdec.block%d", i);
    LP_TRY_MSG(lp_dec_block_init(&p->zdec[i], &m->bcfg, L, name), "latent decoder block");
  }
  LP_TRY_MSG(rf_layout_ln(L, "zdec.ln", D, &p->zdec_ln), "layout");
  sh[0] = 2 * D, sh[1] = D;
  LP_TRY_MSG(lp_layout_add(L, "dec.cat.w", 2, sh, LP_INIT_XAVIER_UNIFORM, 1.0f, &p->cat_w), "layout");
  LP_TRY_MSG(lp_layout_add(L, "dec.cat.b", 1, &D, LP_INIT_ZEROS, 0.0f, &p->cat_b), "layout");
  sh[0] = p->Vl, sh[1] = D;
  LP_TRY_MSG(lp_layout_add(L, "lat.embed", 2, sh, LP_INIT_NORMAL, 1.0f, &p->lat_emb), "layout");
  for (int i = 0; i < nd; i++) {
    snprintf(name, sizeof name, "lat.block%d", i);
    LP_TRY_MSG(lp_dec_block_init(&p->lat[i], &m->bcfg, L, name), "latent predictor block");
  }
  LP_TRY_MSG(rf_layout_ln(L, "lat.ln", D, &p->lat_ln), "layout");
  sh[0] = D, sh[1] = p->Vo;
  LP_TRY_MSG(lp_layout_add(L, "lat.out.w", 2, sh, LP_INIT_XAVIER_UNIFORM, 1.0f, &p->lat_w), "layout");
  LP_TRY_MSG(lp_layout_add(L, "lat.out.b", 1, &sh[1], LP_INIT_NORMAL, 1e-6f, &p->lat_b), "layout");
  p->sc_tok = p->sc_valid = p->sc_lat = 1.0f;
  if (!vq) return LP_OK;
  /* state */
  p->codebook = p->state;
  p->ema_w = p->codebook + (size_t)K * D;
  p->ema_n = p->ema_w + (size_t)K * D;
  p->idle = p->ema_n + K;
  lp_rng r;
  lp_rng_seed(&r, seed ^ 0x6c70636f6465626bULL);
  for (size_t i = 0; i < (size_t)K * D; i++) p->codebook[i] = lp_rng_normal(&r);
  memcpy(p->ema_w, p->codebook, sizeof(float) * (size_t)K * D);
  /* idle = -1: not yet initialised from data (first train step) */
  for (int k = 0; k < K; k++) p->ema_n[k] = 1.0f, p->idle[k] = -1.0f;
  p->sc_tok = p->sc_valid = p->sc_lat = 1.0f;
  return LP_OK;
}

static void acts_release(lp_model *m) {
  struct lpm *p = m->lp;
  lpm_acts *a = &p->a;
  for (int i = 0; i < m->cfg.n_enc_layers; i++)
    if (a->penc) lp_enc_block_acts_free(a->penc[i]);
  for (int i = 0; i < m->cfg.n_dec_layers; i++) {
    if (a->zb[0]) lp_dec_block_acts_free(a->zb[0][i]);
    if (a->zb[1]) lp_dec_block_acts_free(a->zb[1][i]);
    if (a->lat) lp_dec_block_acts_free(a->lat[i]);
  }
  free(a->penc);
  free(a->zb[0]);
  free(a->zb[1]);
  free(a->lat);
  free(a->mem);
  memset(a, 0, sizeof *a);
}

void lpm_free(lp_model *m) {
  if (!m || !m->lp) return;
  acts_release(m);
  free(m->lp->penc);
  free(m->lp->zdec);
  free(m->lp->lat);
  free(m->lp->state);
  free(m->lp);
  m->lp = NULL;
}

float *lpm_state(lp_model *m, size_t *n) {
  if (n) *n = m->lp->n_state;
  return m->lp->state;
}

void lpm_set_hide_spec(lp_model *m, int hide) {
  if (m && m->lp) m->lp->hide_spec = hide;
}

void lpm_set_freeze(lp_model *m, int freeze) {
  if (m && m->lp) m->lp->freeze = freeze;
}

const int32_t *lpm_last_codes(const lp_model *m, int *B, int *S) {
  if (B) *B = m->lp->B;
  if (S) *S = m->lp->S;
  return m->lp->a.idx;
}

float *lpm_codebook(lp_model *m) { return m->lp->codebook; }

/* for lp_search.c */
void lpm_get_view(const lp_model *m, lpm_view *v) {
  const struct lpm *p = m->lp;
  v->mode = p->mode;
  v->K = p->K, v->l = p->l, v->W = p->W, v->Vl = p->Vl, v->Vo = p->Vo;
  v->lat_emb = p->lat_emb, v->lat_w = p->lat_w, v->lat_b = p->lat_b;
  v->lat = p->lat, v->zdec = p->zdec;
  v->lat_ln = p->lat_ln, v->zdec_ln = p->zdec_ln;
  v->cat_w = p->cat_w, v->cat_b = p->cat_b;
  v->codebook = p->codebook;
}

/* ---- activations ------------------------------------------------------------------ */

/* total positions of conv levels 0..l for length T */
static size_t levels_len(int T, int l) {
  size_t n = 0;
  for (int j = 0; j <= l; j++, T = lp_conv1d_s2_out_len(T)) n += (size_t)T;
  return n;
}

static void carve_acts(lp_carve *c, lpm_acts *a, int D, int V, int K, int Vl, int l) {
  const size_t B = (size_t)a->cB, BE = (size_t)a->cBE, T = (size_t)a->cT, S = (size_t)a->cS,
               SL = (size_t)a->cSL;
  const size_t nlev = B * levels_len(a->cT, l);
  const size_t F = sizeof(float);
  a->kp = lp_carve_take(c, B * T);
  a->drop_p = lp_carve_take(c, B * T * D);
  a->cvm = lp_carve_take(c, nlev);
  a->hp = lp_carve_take(c, F * B * T * D);
  a->mean_p = lp_carve_take(c, F * B * T);
  a->rstd_p = lp_carve_take(c, F * B * T);
  a->cv = lp_carve_take(c, F * nlev * D);
  a->idx = lp_carve_take(c, sizeof(int32_t) * B * S);
  a->zmask = lp_carve_take(c, B * S);
  a->psoft = lp_carve_take(c, F * B * S * K);
  a->zn = lp_carve_take(c, F * B * S * D);
  a->mean_z = lp_carve_take(c, F * B * S);
  a->rstd_z = lp_carve_take(c, F * B * S);
  a->ln1 = lp_carve_take(c, F * 2 * D);
  a->g_zn = lp_carve_take(c, F * B * S * D);
  a->qd = lp_carve_take(c, F * B * S * D);
  a->cnt = lp_carve_take(c, sizeof(int) * B * S);
  a->ids_b = lp_carve_take(c, sizeof(int32_t) * B * T);
  a->drop_b = lp_carve_take(c, B * T * D);
  a->xb = lp_carve_take(c, F * B * T * D);
  for (int p = 0; p < 2; p++) {
    a->zm[p] = lp_carve_take(c, F * B * S * D);
    a->hb[p] = lp_carve_take(c, F * B * T * D);
    a->hbn[p] = lp_carve_take(c, F * B * T * D);
    a->mean_b[p] = lp_carve_take(c, F * B * T);
    a->rstd_b[p] = lp_carve_take(c, F * B * T);
    a->cat[p] = lp_carve_take(c, F * BE * T * 2 * D);
    a->yc[p] = lp_carve_take(c, F * BE * T * D);
    a->pool[p] = lp_carve_take(c, F * B * T * D);
    a->pam[p] = lp_carve_take(c, sizeof(int32_t) * B * T * D);
    a->logits[p] = lp_carve_take(c, F * B * T * V);
    a->probs[p] = lp_carve_take(c, F * B * T * V);
    a->g_zm[p] = lp_carve_take(c, F * B * S * D);
  }
  a->lin = lp_carve_take(c, sizeof(int32_t) * BE * SL);
  a->ltgt = lp_carve_take(c, sizeof(int32_t) * B * SL);
  a->drop_l = lp_carve_take(c, BE * SL * D);
  a->hl = lp_carve_take(c, F * BE * SL * D);
  a->hln = lp_carve_take(c, F * BE * SL * D);
  a->mean_l = lp_carve_take(c, F * BE * SL);
  a->rstd_l = lp_carve_take(c, F * BE * SL);
  a->lpool = lp_carve_take(c, F * B * SL * D);
  a->lam = lp_carve_take(c, sizeof(int32_t) * B * SL * D);
  a->llog = lp_carve_take(c, F * B * SL * Vl);
  a->lprob = lp_carve_take(c, F * B * SL * Vl);
  a->g_log = lp_carve_take(c, F * B * T * V);
  a->g_pool = lp_carve_take(c, F * B * T * D);
  a->g_yc = lp_carve_take(c, F * BE * T * D);
  a->g_cat = lp_carve_take(c, F * BE * T * 2 * D);
  a->g_hn = lp_carve_take(c, F * BE * T * D);
  a->g_hb = lp_carve_take(c, F * B * T * D);
  a->g_t1 = lp_carve_take(c, F * B * T * D);
  a->g_t2 = lp_carve_take(c, F * B * T * D);
  a->g_xb = lp_carve_take(c, F * B * T * D);
  a->g_cv = lp_carve_take(c, F * nlev * D);
  a->g_llog = lp_carve_take(c, F * B * SL * Vl);
  a->g_lpool = lp_carve_take(c, F * B * SL * D);
  a->g_l1 = lp_carve_take(c, F * BE * SL * D);
  a->g_l2 = lp_carve_take(c, F * BE * SL * D);
  a->zl = lp_carve_take(c, F * B * S * D);
  a->vmu = lp_carve_take(c, F * B * S * D);
  a->vlv = lp_carve_take(c, F * B * S * D);
  a->veps = lp_carve_take(c, F * B * S * D);
  a->g_mu = lp_carve_take(c, F * B * S * D);
  a->g_lv = lp_carve_take(c, F * B * S * D);
  a->ztg = lp_carve_take(c, F * B * S * D);
}

static int imax(int a, int b) { return a > b ? a : b; }

static int acts_ensure(lp_model *m, int B, int E, int T, int S, int SL, int Sm, lp_err *err) {
  struct lpm *p = m->lp;
  lpm_acts *a = &p->a;
  const int BE = B * E;
  if (a->mem && B <= a->cB && BE <= a->cBE && T <= a->cT && S <= a->cS && SL <= a->cSL &&
      Sm <= a->cSm)
    return LP_OK;
  lpm_acts n = {0};
  n.cB = imax(B, a->cB), n.cBE = imax(BE, a->cBE), n.cT = imax(T, a->cT);
  n.cSm = imax(Sm, a->cSm);
  /* keep S and SL consistent with T */
  int Sx = n.cT;
  for (int j = 0; j < p->l; j++) Sx = lp_conv1d_s2_out_len(Sx);
  n.cS = imax(imax(S, a->cS), Sx), n.cSL = imax(imax(SL, a->cSL), n.cS + 1);
  acts_release(m);
  *a = n;
  const int ne = m->cfg.n_enc_layers, nd = m->cfg.n_dec_layers;
  a->penc = calloc((size_t)(ne ? ne : 1), sizeof *a->penc);
  a->zb[0] = calloc((size_t)nd, sizeof *a->zb[0]);
  a->zb[1] = calloc((size_t)nd, sizeof *a->zb[1]);
  a->lat = calloc((size_t)nd, sizeof *a->lat);
  int ok = a->penc && a->zb[0] && a->zb[1] && a->lat;
  for (int i = 0; ok && i < ne; i++)
    ok = (a->penc[i] = lp_enc_block_acts_new(&p->penc[i], a->cB, a->cT)) != NULL;
  for (int i = 0; ok && i < nd; i++) {
    ok = (a->zb[0][i] = lp_dec_block_acts_new(&p->zdec[i], a->cB, a->cT, a->cS)) != NULL &&
         (a->zb[1][i] = lp_dec_block_acts_new(&p->zdec[i], a->cB, a->cT, a->cS)) != NULL &&
         (a->lat[i] = lp_dec_block_acts_new(&p->lat[i], a->cBE, a->cSL, a->cSm)) != NULL;
  }
  if (ok) {
    lp_carve c = {NULL, 0};
    carve_acts(&c, a, m->cfg.d_model, m->prog_v.size, p->K, p->Vo, p->l);
    a->mem = aligned_alloc(64, lp_carve_bytes(&c));
    if (a->mem) {
      c.base = a->mem;
      c.used = 0;
      carve_acts(&c, a, m->cfg.d_model, m->prog_v.size, p->K, p->Vo, p->l);
    }
    ok = a->mem != NULL;
  }
  if (!ok) {
    acts_release(m);
    return lp_err_set(err, LP_ENOMEM, "model kind lp: out of memory for activations");
  }
  return LP_OK;
}

void lpm_vq_ema(float *codebook, float *ema_w, float *ema_n, int K, int D, const float *z,
                const int32_t *idx, int n, float decay, float eps) {
  double *cnt = calloc((size_t)K, sizeof(double));
  double *sum = calloc((size_t)K * D, sizeof(double));
  if (!cnt || !sum) { /* no update rather than a crash */
    free(cnt);
    free(sum);
    return;
  }
  for (int i = 0; i < n; i++) {
    int k = idx[i];
    if (k < 0 || k >= K) continue;
    cnt[k] += 1.0;
    for (int d = 0; d < D; d++) sum[(size_t)k * D + d] += z[(size_t)i * D + d];
  }
  double tot = 0.0;
  for (int k = 0; k < K; k++) {
    ema_n[k] = (float)(decay * (double)ema_n[k] + (1.0 - decay) * cnt[k]);
    for (int d = 0; d < D; d++) {
      size_t j = (size_t)k * D + d;
      ema_w[j] = (float)(decay * (double)ema_w[j] + (1.0 - decay) * sum[j]);
    }
    tot += ema_n[k];
  }
  for (int k = 0; k < K; k++) {
    double nk = ((double)ema_n[k] + eps) / (tot + K * (double)eps) * tot;
    for (int d = 0; d < D; d++)
      codebook[(size_t)k * D + d] = (float)((double)ema_w[(size_t)k * D + d] / nk);
  }
  free(cnt);
  free(sum);
}

/* ---- forward / backward ------------------------------------------------------------ */

/* stack Z pass p: memory a->zm[p] -> a->hbn[p] */
static int zstack_fwd(lp_model *m, int p, lp_rng *rng, lp_err *err) {
  struct lpm *L = m->lp;
  lpm_acts *a = &L->a;
  const int B = L->B, T = L->T, S = L->S, D = m->cfg.d_model;
  const float *P = m->params;
  const float *x = a->xb;
  for (int i = 0; i < m->cfg.n_dec_layers; i++) {
    LP_TRY_MSG(lp_dec_block_forward(&L->zdec[i], P, a->zb[p][i], a->hb[p], x, NULL, a->zm[p],
                              a->zmask, B, T, S, rng),
         "latent decoder block");
    x = a->hb[p];
  }
  LP_TRY_MSG(lp_layernorm_forward(a->hbn[p], a->mean_b[p], a->rstd_b[p], a->hb[p], P + L->zdec_ln.g,
                            P + L->zdec_ln.b, B * T, D, m->bcfg.ln_eps),
       "latent decoder layer norm");
  return LP_OK;
}

/* combine pass p: [hn_dec, hbn[p]] -> cat linear -> pool -> logits -> CE */
static int combine_fwd(lp_model *m, const lp_batch *b, int p, double *loss, int *nv,
                       lp_err *err) {
  struct lpm *L = m->lp;
  lpm_acts *a = &L->a;
  const int B = L->B, E = L->E, T = L->T, D = m->cfg.d_model, V = m->prog_v.size;
  const float *P = m->params;
  const float *hA = m->acts.hn_dec;
  const int hide = p == 0 && L->pretrain && L->hide_spec;
  for (int t = 0; t < B; t++)
    for (int e = 0; e < E; e++)
      for (int s = 0; s < T; s++) {
        const size_t r = ((size_t)t * E + e) * T + s;
        float *dst = a->cat[p] + r * 2 * D;
        if (hide)
          memset(dst, 0, sizeof(float) * D);
        else
          memcpy(dst, hA + r * D, sizeof(float) * D);
        memcpy(dst + D, a->hbn[p] + ((size_t)t * T + s) * D, sizeof(float) * D);
      }
  LP_TRY_MSG(lp_linear_forward(a->yc[p], a->cat[p], P + L->cat_w, P + L->cat_b, B * E * T, 2 * D, D),
       "concat layer");
  LP_TRY_MSG(rf_pool_forward(L->freeze, a->pool[p], a->pam[p], a->yc[p], b->emask, B, E, T * D),
       "max-pool");
  LP_TRY_MSG(lp_linear_forward(a->logits[p], a->pool[p], P + m->out_w, P + m->out_b, B * T, D, V),
       "output layer");
  LP_TRY_MSG(lp_cross_entropy_forward(loss, a->probs[p], NULL, nv, a->logits[p], b->prog, B * T, V,
                                m->prog_v.pad),
       "cross-entropy");
  return LP_OK;
}

int lpm_loss(lp_model *m, const lp_batch *b, int64_t step, lp_rng *rng, int backward,
             lp_step_stats *st, lp_err *err);

/* ---- AE / VAE: the continuous latent ------------------------------------------------ */

/* From the last forward's encoder outputs z [B*S,D] (zero where not valid):
 * a->idx (0 valid, -1 not: no codes), L->nvalid, a->zl (AE: z; VAE: mu +
 * exp(lv/2) eps with eps ~ N(0, I) from rng, mu without one) and
 * L->commit_raw (VAE: the mean KL over valid latents; AE: 0). */
static int cont_latent_fwd(lp_model *m, const float *z, lp_rng *rng, lp_err *err) {
  struct lpm *L = m->lp;
  lpm_acts *a = &L->a;
  const int n = L->B * L->S, D = m->cfg.d_model;
  const float *P = m->params;
  int nvalid = 0;
  for (int i = 0; i < n; i++) {
    a->idx[i] = a->zmask[i] ? 0 : -1;
    nvalid += a->zmask[i] != 0;
  }
  L->nvalid = nvalid;
  L->commit_raw = 0.0;
  if (L->mode == LPM_AE) {
    memcpy(a->zl, z, sizeof(float) * (size_t)n * D);
    return LP_OK;
  }
  LP_TRY_MSG(lp_linear_forward(a->vmu, z, P + L->mu_w, P + L->mu_b, n, D, D), "latent mean head");
  LP_TRY_MSG(lp_linear_forward(a->vlv, z, P + L->lv_w, P + L->lv_b, n, D, D),
             "latent log-variance head");
  double kl = 0.0;
  for (int i = 0; i < n; i++) {
    const size_t r = (size_t)i * D;
    float *mu = a->vmu + r, *lv = a->vlv + r, *e = a->veps + r, *zl = a->zl + r;
    if (!a->zmask[i]) {
      memset(mu, 0, sizeof(float) * D), memset(lv, 0, sizeof(float) * D);
      memset(e, 0, sizeof(float) * D), memset(zl, 0, sizeof(float) * D);
      continue;
    }
    for (int d = 0; d < D; d++) {
      e[d] = rng ? lp_rng_normal(rng) : 0.0f;
      zl[d] = mu[d] + expf(0.5f * lv[d]) * e[d];
      kl += 0.5 * ((double)mu[d] * mu[d] + exp((double)lv[d]) - 1.0 - lv[d]);
    }
  }
  L->commit_raw = nvalid ? kl / nvalid : 0.0;
  return LP_OK;
}

/* The predictor's targets a->ztg [B*S,D]: a copy of z (AE) or the mean (VAE),
 * constants of the loss (stop-gradient); while frozen (the gradient checks'
 * lpm_set_freeze) those of the last unfrozen forward, so that finite
 * differences see the stop-gradient too. */
static const float *cont_target(struct lpm *L, const float *z, int D) {
  if (!L->freeze)
    memcpy(L->a.ztg, L->mode == LPM_VAE ? L->a.vmu : z, sizeof(float) * (size_t)L->B * L->S * D);
  return L->a.ztg;
}

/* The continuous predictor's teacher-forced input into a->hl [B*E,S,D]:
 * Drop("lat.embed" row 0 + PE) (a->lin all 0), plus the target latent s-1 at
 * positions s >= 1 where it is valid (stop-gradient). */
static int cont_pred_input(lp_model *m, const float *tg, lp_rng *rng, lp_err *err) {
  struct lpm *L = m->lp;
  lpm_acts *a = &L->a;
  const int B = L->B, E = L->E, S = L->S, SL = L->SL, D = m->cfg.d_model;
  memset(a->lin, 0, sizeof(int32_t) * (size_t)B * E * SL);
  LP_TRY_MSG(rf_embed_seq(m, a->hl, a->drop_l, NULL, a->lin, L->lat_emb, 1, -1, B * E, SL, rng),
             "latent predictor input");
  for (int t = 0; t < B; t++)
    for (int e = 0; e < E; e++)
      for (int s = 1; s < SL; s++) {
        if (!a->zmask[t * S + s - 1]) continue;
        float *x = a->hl + (((size_t)t * E + e) * SL + s) * D;
        const float *zp = tg + ((size_t)t * S + s - 1) * D;
        for (int d = 0; d < D; d++) x[d] += zp[d];
      }
  return LP_OK;
}

/* Backward of the continuous latent into gz [B*S,D] (the encoder outputs'
 * gradient, accumulated): g0 = the AE pass's gradient of zl; VAE: through the
 * reparameterisation and the KL term (weight kl), then the two heads. */
static int cont_latent_bwd(lp_model *m, const float *z, const float *g0, float *gz, double kl,
                           lp_err *err) {
  struct lpm *L = m->lp;
  lpm_acts *a = &L->a;
  const int n = L->B * L->S, D = m->cfg.d_model;
  if (L->mode == LPM_AE) {
    for (int i = 0; i < n; i++)
      if (a->zmask[i])
        for (int d = 0; d < D; d++) gz[(size_t)i * D + d] += g0[(size_t)i * D + d];
    return LP_OK;
  }
  const float *P = m->params;
  float *G = m->grads;
  const double c = L->nvalid ? kl / L->nvalid : 0.0;
  for (int i = 0; i < n; i++) {
    const size_t r = (size_t)i * D;
    float *gm = a->g_mu + r, *gl = a->g_lv + r;
    if (!a->zmask[i]) {
      memset(gm, 0, sizeof(float) * D), memset(gl, 0, sizeof(float) * D);
      continue;
    }
    const float *mu = a->vmu + r, *lv = a->vlv + r, *e = a->veps + r, *g = g0 + r;
    for (int d = 0; d < D; d++) {
      const double sd = exp(0.5 * (double)lv[d]);
      gm[d] = (float)((double)g[d] + c * mu[d]);
      gl[d] = (float)(0.5 * (double)g[d] * e[d] * sd + c * 0.5 * (sd * sd - 1.0));
    }
  }
  LP_TRY_MSG(lp_linear_backward(gz, G + L->mu_w, G + L->mu_b, a->g_mu, z, P + L->mu_w, n, D, D),
             "latent mean head backward");
  LP_TRY_MSG(lp_linear_backward(gz, G + L->lv_w, G + L->lv_b, a->g_lv, z, P + L->lv_w, n, D, D),
             "latent log-variance head backward");
  return LP_OK;
}

static int lpm_backward(lp_model *m, const lp_batch *b, lp_err *err);

int lpm_loss(lp_model *m, const lp_batch *b, int64_t step, lp_rng *rng, int backward,
             lp_step_stats *st, lp_err *err) {
  if (rf_check_batch(m, b, 1, err) != LP_OK) return err ? err->code : LP_EINVAL;
  struct lpm *L = m->lp;
  int rc = rf_encode(m, b, rng, err);
  if (rc != LP_OK) return rc;
  rf_acts *ra = &m->acts;
  const int B = b->B, E = b->E, BE = B * E, T = b->T_prog, D = m->cfg.d_model;
  const int V = m->prog_v.size, pad = m->prog_v.pad, K = L->K, Vl = L->Vl, Vo = L->Vo;
  const int vq = L->mode == LPM_VQ;
  const float *P = m->params;
  int S = T;
  for (int j = 0; j < L->l; j++) S = lp_conv1d_s2_out_len(S);
  const int SL = vq ? S + 1 : S; /* AE/VAE: no end token */
  int Sm;
  const uint8_t *mmask;
  const float *mem = rf_memory(m, &Sm, &mmask);
  if (L->freeze && !(L->fwd_ok && L->B == B && L->E == E && L->T == T))
    return lp_err_set(err, LP_EINVAL, "frozen forward on another batch shape");
  if ((rc = acts_ensure(m, B, E, T, S, SL, Sm, err)) != LP_OK) return rc;
  lpm_acts *a = &L->a;
  L->fwd_ok = 0;
  m->fwd_ok = 0;
  L->B = B, L->E = E, L->T = T, L->S = S, L->SL = SL, L->Sm = Sm;
  L->dropped = rng != NULL;
  L->pretrain = vq && step <= m->cfg.pretrain_steps;
  m->T = T;
  const int32_t *penc_ids = b->prog_enc ? b->prog_enc : b->prog;

  /* 1. stack A (spec-attending decoder), as RobustFill */
  for (int t = 0; t < B; t++) {
    const int32_t *y = b->prog + (size_t)t * T;
    int32_t *d = a->ids_b + (size_t)t * T;
    d[0] = m->prog_v.bos;
    memcpy(d + 1, y, sizeof(int32_t) * (size_t)(T - 1));
    for (int e = 0; e < E; e++) memcpy(ra->ids_dec + ((size_t)t * E + e) * T, d, sizeof(int32_t) * T);
  }
  if ((rc = rf_decoder_forward(m, BE, T, rng, err)) != LP_OK) return rc;

  /* 2. program encoder */
  LP_TRY_MSG(rf_embed_seq(m, a->hp, a->drop_p, a->kp, penc_ids, L->penc_emb, V, pad, B, T, rng),
       "program encoder embedding");
  for (int i = 0; i < m->cfg.n_enc_layers; i++)
    LP_TRY_MSG(lp_enc_block_forward(&L->penc[i], P, a->penc[i], a->hp, a->hp, a->kp, B, T, rng),
         "program encoder block");
  LP_TRY_MSG(lp_layernorm_forward(a->cv, a->mean_p, a->rstd_p, a->hp, P + L->penc_ln.g,
                            P + L->penc_ln.b, B * T, D, m->bcfg.ln_eps),
       "program encoder layer norm");
  memcpy(a->cvm, a->kp, (size_t)B * T);
  {
    size_t off = 0;
    int Tj = T;
    for (size_t i = 0; i < (size_t)B * T; i++)
      if (!a->cvm[i]) memset(a->cv + i * D, 0, sizeof(float) * D);
    for (int j = 0; j < L->l; j++) {
      const int To = lp_conv1d_s2_out_len(Tj);
      const size_t noff = off + (size_t)B * Tj;
      float *x = a->cv + off * D, *y = a->cv + noff * D;
      LP_TRY_MSG(lp_conv1d_s2_forward(y, x, P + L->conv_w[j], P + L->conv_b[j], B, Tj, D, D),
           "convolution");
      for (int t = 0; t < B; t++)
        for (int s = 0; s < To; s++) {
          const uint8_t *vm = a->cvm + off + (size_t)t * Tj;
          uint8_t v = vm[2 * s] | (2 * s + 1 < Tj ? vm[2 * s + 1] : 0);
          a->cvm[noff + (size_t)t * To + s] = v;
          if (!v) memset(y + ((size_t)t * To + s) * D, 0, sizeof(float) * D);
        }
      off = noff, Tj = To;
    }
  }
  size_t zoff = (size_t)B * (levels_len(T, L->l) - (size_t)S);
  const float *z = a->cv + zoff * D;
  memcpy(a->zmask, a->cvm + zoff, (size_t)B * S);
  if (vq && m->cfg.vq_norm) { /* the quantiser's input: LN(z), no gain or bias */
    for (int d = 0; d < D; d++) a->ln1[d] = 1.0f, a->ln1[D + d] = 0.0f;
    LP_TRY_MSG(lp_layernorm_forward(a->zn, a->mean_z, a->rstd_z, z, a->ln1, a->ln1 + D, B * S, D,
                                    m->bcfg.ln_eps),
               "quantiser layer norm");
    for (int i = 0; i < B * S; i++)
      if (!a->zmask[i]) memset(a->zn + (size_t)i * D, 0, sizeof(float) * D);
    z = a->zn;
  }

  /* 3. quantiser (AE/VAE: the continuous latent) */
  int nvalid = 0;
  double commit = 0.0;
  const float *cb = L->codebook;
  if (!vq) {
    if ((rc = cont_latent_fwd(m, z, rng, err)) != LP_OK) return rc;
    nvalid = L->nvalid;
  }
  for (int i = 0; vq && i < B * S; i++) {
    if (!a->zmask[i]) {
      a->idx[i] = -1;
      continue;
    }
    nvalid++;
    const float *zi = z + (size_t)i * D;
    if (!L->freeze) {
      int best = 0;
      double bd = INFINITY;
      for (int k = 0; k < K; k++) {
        double d2 = 0.0;
        for (int d = 0; d < D; d++) {
          double u = (double)zi[d] - cb[(size_t)k * D + d];
          d2 += u * u;
        }
        if (d2 < bd) bd = d2, best = k;
      }
      a->idx[i] = best;
    }
    const float *q = cb + (size_t)a->idx[i] * D;
    for (int d = 0; d < D; d++) {
      double u = (double)q[d] - zi[d];
      commit += u * u;
    }
  }
  if (vq) {
    L->nvalid = nvalid;
    L->commit_raw = nvalid ? commit / nvalid : 0.0;
  }
  /* AE memory */
  for (int i = 0; i < B * S; i++) {
    float *dst = a->zm[0] + (size_t)i * D;
    if (!a->zmask[i]) {
      memset(dst, 0, sizeof(float) * D);
      continue;
    }
    if (!vq) {
      memcpy(dst, a->zl + (size_t)i * D, sizeof(float) * D);
      continue;
    }
    if (L->pretrain && !L->hide_spec) { /* paper: averaged embeddings */
      const int t = i / S, s = i % S;
      int n = 0;
      memset(dst, 0, sizeof(float) * D);
      for (int u = s * L->W; u < (s + 1) * L->W && u < T; u++) {
        int32_t id = penc_ids[(size_t)t * T + u];
        if (id == pad) continue;
        n++;
        const float *row = P + L->penc_emb + (size_t)id * D;
        for (int d = 0; d < D; d++) dst[d] += row[d];
      }
      a->cnt[i] = n;
      for (int d = 0; d < D; d++) dst[d] /= (float)(n ? n : 1);
    } else if (L->freeze) {
      /* tests: z + sg(q - z) with q - z frozen, so finite differences see the
       * straight-through gradient (identity) */
      const float *zi = z + (size_t)i * D, *qd = a->qd + (size_t)i * D;
      for (int d = 0; d < D; d++) dst[d] = zi[d] + qd[d];
    } else {
      memcpy(dst, cb + (size_t)a->idx[i] * D, sizeof(float) * D);
    }
    if (!L->freeze) {
      const float *zi = z + (size_t)i * D, *q = cb + (size_t)a->idx[i] * D;
      for (int d = 0; d < D; d++) a->qd[(size_t)i * D + d] = q[d] - zi[d];
    }
  }
  LP_TRY_MSG(lp_posenc_forward(a->zm[0], a->zm[0], B, S, D, 0), "latent positions");

  /* 4. stack Z (AE) and the AE combine */
  LP_TRY_MSG(rf_embed_seq(m, a->xb, a->drop_b, NULL, a->ids_b, m->emb_prog, V, pad, B, T, rng),
       "program embedding");
  if ((rc = zstack_fwd(m, 0, rng, err)) != LP_OK) return rc;
  double ce_ae = 0.0, ce_e2e = 0.0, ce_lat = 0.0;
  int ntok = 0, nlat = 0;
  if ((rc = combine_fwd(m, b, 0, &ce_ae, &ntok, err)) != LP_OK) return rc;

  /* 5. latent predictor */
  const float *ztg = vq ? NULL : cont_target(L, z, D);
  if (!vq && (rc = cont_pred_input(m, ztg, rng, err)) != LP_OK) return rc;
  for (int t = 0; vq && t < B; t++) {
    int32_t *tg = a->ltgt + (size_t)t * SL;
    int n = 0;
    for (int s = 0; s < S; s++)
      if (a->idx[t * S + s] >= 0) tg[n++] = a->idx[t * S + s];
    tg[n++] = K; /* EOS */
    for (; n < SL; n++) tg[n] = K + 1;
    for (int e = 0; e < E; e++) {
      int32_t *in = a->lin + ((size_t)t * E + e) * SL;
      in[0] = K + 1;
      memcpy(in + 1, tg, sizeof(int32_t) * (size_t)(SL - 1));
      for (int s = 1; s < SL; s++)
        if (in[s] == K) in[s] = K + 1; /* after the last code: filler (causal, never seen) */
    }
  }
  if (vq)
    LP_TRY_MSG(rf_embed_seq(m, a->hl, a->drop_l, NULL, a->lin, L->lat_emb, Vl, -1, BE, SL, rng),
               "latent embedding");
  for (int i = 0; i < m->cfg.n_dec_layers; i++)
    LP_TRY_MSG(lp_dec_block_forward(&L->lat[i], P, a->lat[i], a->hl, a->hl, NULL, mem, mmask, BE, SL,
                              Sm, rng),
         "latent predictor block");
  LP_TRY_MSG(lp_layernorm_forward(a->hln, a->mean_l, a->rstd_l, a->hl, P + L->lat_ln.g,
                            P + L->lat_ln.b, BE * SL, D, m->bcfg.ln_eps),
       "latent predictor layer norm");
  LP_TRY_MSG(rf_pool_forward(L->freeze, a->lpool, a->lam, a->hln, b->emask, B, E, SL * D), "max-pool");
  LP_TRY_MSG(lp_linear_forward(a->llog, a->lpool, P + L->lat_w, P + L->lat_b, B * SL, D, Vo),
       "latent output layer");
  if (vq) {
    LP_TRY_MSG(lp_cross_entropy_forward(&ce_lat, a->lprob, NULL, &nlat, a->llog, a->ltgt, B * SL,
                                        Vl, K + 1),
               "latent cross-entropy");
  } else { /* squared error over valid latents; SL = S */
    double se = 0.0;
    for (int i = 0; i < B * S; i++) {
      if (!a->zmask[i]) continue;
      const float *pr = a->llog + (size_t)i * D, *tg = ztg + (size_t)i * D;
      for (int d = 0; d < D; d++) se += ((double)pr[d] - tg[d]) * ((double)pr[d] - tg[d]);
      nlat++;
    }
    ce_lat = nlat ? se / ((double)nlat * D) : 0.0;
  }
  L->nlat = nlat;

  /* 6. end-to-end: soft latents (AE/VAE: the predicted latents) */
  for (int i = 0; !vq && i < B * S; i++) {
    float *dst = a->zm[1] + (size_t)i * D;
    if (a->zmask[i])
      memcpy(dst, a->llog + (size_t)i * D, sizeof(float) * D);
    else
      memset(dst, 0, sizeof(float) * D);
  }
  for (int t = 0; vq && t < B; t++)
    for (int s = 0; s < S; s++) {
      const int i = t * S + s;
      float *ps = a->psoft + (size_t)i * K, *dst = a->zm[1] + (size_t)i * D;
      memset(dst, 0, sizeof(float) * D);
      if (!a->zmask[i]) {
        memset(ps, 0, sizeof(float) * K);
        continue;
      }
      LP_TRY_MSG(lp_softmax_forward(ps, a->llog + ((size_t)t * SL + s) * Vl, 1, K), "softmax");
      for (int k = 0; k < K; k++) {
        const float w = ps[k], *row = cb + (size_t)k * D;
        for (int d = 0; d < D; d++) dst[d] += w * row[d];
      }
    }
  LP_TRY_MSG(lp_posenc_forward(a->zm[1], a->zm[1], B, S, D, 0), "latent positions");
  if ((rc = zstack_fwd(m, 1, rng, err)) != LP_OK) return rc;
  int ntok2 = 0;
  if ((rc = combine_fwd(m, b, 1, &ce_e2e, &ntok2, err)) != LP_OK) return rc;

  const lp_model_cfg *c = &m->cfg;
  const double commit_term =
      (vq ? c->commit_beta : L->mode == LPM_VAE ? c->kl_weight : 0.0f) * L->commit_raw;
  L->fwd_ok = 1;
  if (st) {
    const int correct = rf_count_correct(a->logits[0], b->prog, (size_t)B * T, V, pad);
    memset(st, 0, sizeof *st);
    st->loss = c->w_ae * (ce_ae + commit_term) + c->w_latent * ce_lat + c->w_e2e * ce_e2e;
    st->loss_prog = ce_ae;
    st->loss_commit = commit_term;
    st->loss_latent = ce_lat;
    st->loss_e2e = ce_e2e;
    st->n_tokens = ntok;
    st->token_acc = ntok ? (double)correct / ntok : 0.0;
    if (!vq) {
      if (backward) return lpm_backward(m, b, err);
      return LP_OK;
    }
    st->latent_acc =
        nlat ? (double)rf_count_correct(a->llog, a->ltgt, (size_t)B * SL, Vl, K + 1) / nlat : 0.0;
    /* codebook usage of this batch */
    double *cnt = calloc((size_t)K, sizeof(double));
    if (cnt) {
      for (int i = 0; i < B * S; i++)
        if (a->idx[i] >= 0) cnt[a->idx[i]] += 1.0;
      double h = 0.0;
      for (int k = 0; k < K; k++)
        if (cnt[k] > 0) {
          double q = cnt[k] / nvalid;
          h -= q * log(q);
        }
      st->codebook_perplexity = exp(h);
      free(cnt);
    }
    int dead = 0;
    for (int k = 0; k < K; k++) dead += L->idle[k] >= LPM_DEAD_AFTER;
    st->dead_codes = dead;
  }
  if (backward) return lpm_backward(m, b, err);
  return LP_OK;
}

/* backward of stack Z pass p from dhbn (a->g_hb): accumulates into g_xb and g_zm[p] */
static int zstack_bwd(lp_model *m, int p, lp_err *err) {
  struct lpm *L = m->lp;
  lpm_acts *a = &L->a;
  const int B = L->B, T = L->T, S = L->S, D = m->cfg.d_model;
  const size_t n = (size_t)B * T * D;
  const float *P = m->params;
  float *G = m->grads;
  float *dy = a->g_t1, *dx = a->g_t2, *t;
  memset(dy, 0, sizeof(float) * n);
  LP_TRY_MSG(lp_layernorm_backward(dy, G + L->zdec_ln.g, G + L->zdec_ln.b, a->g_hb, a->hb[p],
                             a->mean_b[p], a->rstd_b[p], P + L->zdec_ln.g, B * T, D),
       "latent decoder layer norm backward");
  memset(a->g_zm[p], 0, sizeof(float) * (size_t)B * S * D);
  for (int i = m->cfg.n_dec_layers - 1; i >= 0; i--) {
    float *tgt = i == 0 ? a->g_xb : dx;
    if (i != 0) memset(dx, 0, sizeof(float) * n);
    LP_TRY_MSG(lp_dec_block_backward(&L->zdec[i], P, G, a->zb[p][i], tgt, a->g_zm[p], dy),
         "latent decoder block backward");
    t = dy, dy = dx, dx = t;
  }
  return LP_OK;
}

/* backward of combine pass p with weight w: accumulates into g_hn (stack A) and
 * writes g_hb (stack Z output) */
static int combine_bwd(lp_model *m, const lp_batch *b, int p, float w, lp_err *err) {
  struct lpm *L = m->lp;
  lpm_acts *a = &L->a;
  const int B = L->B, E = L->E, T = L->T, D = m->cfg.d_model, V = m->prog_v.size;
  const float *P = m->params;
  float *G = m->grads;
  memset(a->g_log, 0, sizeof(float) * (size_t)B * T * V);
  LP_TRY_MSG(lp_cross_entropy_backward(a->g_log, a->probs[p], b->prog, B * T, V, m->prog_v.pad, w),
       "cross-entropy backward");
  memset(a->g_pool, 0, sizeof(float) * (size_t)B * T * D);
  LP_TRY_MSG(lp_linear_backward(a->g_pool, G + m->out_w, G + m->out_b, a->g_log, a->pool[p],
                          P + m->out_w, B * T, D, V),
       "output layer backward");
  memset(a->g_yc, 0, sizeof(float) * (size_t)B * E * T * D);
  LP_TRY_MSG(lp_maxpool_examples_backward(a->g_yc, a->g_pool, a->pam[p], B, E, T * D),
       "max-pool backward");
  memset(a->g_cat, 0, sizeof(float) * (size_t)B * E * T * 2 * D);
  LP_TRY_MSG(lp_linear_backward(a->g_cat, G + L->cat_w, G + L->cat_b, a->g_yc, a->cat[p],
                          P + L->cat_w, B * E * T, 2 * D, D),
       "concat layer backward");
  memset(a->g_hb, 0, sizeof(float) * (size_t)B * T * D);
  const int hide = p == 0 && L->pretrain && L->hide_spec;
  for (int t = 0; t < B; t++)
    for (int e = 0; e < E; e++)
      for (int s = 0; s < T; s++) {
        const size_t r = ((size_t)t * E + e) * T + s;
        const float *g = a->g_cat + r * 2 * D;
        float *ga = a->g_hn + r * D, *gb = a->g_hb + ((size_t)t * T + s) * D;
        if (!hide)
          for (int d = 0; d < D; d++) ga[d] += g[d];
        for (int d = 0; d < D; d++) gb[d] += g[D + d];
      }
  return LP_OK;
}

static int lpm_backward(lp_model *m, const lp_batch *b, lp_err *err) {
  struct lpm *L = m->lp;
  lpm_acts *a = &L->a;
  rf_acts *ra = &m->acts;
  const lp_model_cfg *c = &m->cfg;
  const int B = L->B, E = L->E, BE = B * E, T = L->T, S = L->S, SL = L->SL, Sm = L->Sm;
  const int D = c->d_model, V = m->prog_v.size, pad = m->prog_v.pad, K = L->K, Vl = L->Vl;
  const int Vo = L->Vo, vq = L->mode == LPM_VQ;
  const float *P = m->params;
  float *G = m->grads;
  const int dr = L->dropped;
  if (!L->fwd_ok) return lp_err_set(err, LP_EINVAL, "backward without a matching forward");
  const int32_t *penc_ids = b->prog_enc ? b->prog_enc : b->prog;
  const float *cb = L->codebook;

  memset(a->g_hn, 0, sizeof(float) * (size_t)BE * T * D);
  memset(a->g_xb, 0, sizeof(float) * (size_t)B * T * D);
  /* e2e pass */
  int rc;
  if ((rc = combine_bwd(m, b, 1, c->w_e2e * L->sc_tok, err)) != LP_OK) return rc;
  if ((rc = zstack_bwd(m, 1, err)) != LP_OK) return rc;
  /* AE pass */
  if ((rc = combine_bwd(m, b, 0, c->w_ae * L->sc_tok, err)) != LP_OK) return rc;
  if ((rc = zstack_bwd(m, 0, err)) != LP_OK) return rc;
  /* stack Z input -> program embedding */
  LP_TRY_MSG(rf_embed_backward(m, a->g_t1, a->g_xb, a->drop_b, a->ids_b, m->emb_prog, V, pad, B * T,
                         dr),
       "program embedding backward");

  /* program encoder outputs (last conv level) */
  const size_t nlev = (size_t)B * levels_len(T, L->l);
  const size_t zoff = nlev - (size_t)B * S;
  const float *z = a->cv + zoff * D;

  /* latent predictor: CE + the soft latents' gradient (AE/VAE: the squared
   * error + the predicted latents' gradient) */
  memset(a->g_llog, 0, sizeof(float) * (size_t)B * SL * Vo);
  if (vq)
    LP_TRY_MSG(lp_cross_entropy_backward(a->g_llog, a->lprob, a->ltgt, B * SL, Vl, K + 1,
                                         c->w_latent * L->sc_lat),
               "latent cross-entropy backward");
  if (!vq) {
    const float *tg = a->ztg;
    const double f = L->nlat ? 2.0 * c->w_latent * L->sc_lat / ((double)L->nlat * D) : 0.0;
    for (int i = 0; i < B * S; i++) {
      if (!a->zmask[i]) continue;
      const size_t r = (size_t)i * D;
      const float *pr = a->llog + r, *g1 = a->g_zm[1] + r; /* PE: identity gradient */
      float *gl = a->g_llog + r;
      for (int d = 0; d < D; d++) gl[d] = (float)(f * ((double)pr[d] - tg[r + d])) + g1[d];
    }
  } else {
    float *dp = malloc(sizeof(float) * (size_t)K);
    if (!dp) return lp_err_set(err, LP_ENOMEM, "out of memory");
    for (int t = 0; t < B; t++)
      for (int s = 0; s < S; s++) {
        const int i = t * S + s;
        if (!a->zmask[i]) continue;
        const float *gz = a->g_zm[1] + (size_t)i * D; /* PE: identity gradient */
        for (int k = 0; k < K; k++) {
          double acc = 0.0;
          for (int d = 0; d < D; d++) acc += (double)gz[d] * cb[(size_t)k * D + d];
          dp[k] = (float)acc;
        }
        lp_softmax_backward(a->g_llog + ((size_t)t * SL + s) * Vl, dp, a->psoft + (size_t)i * K,
                            1, K);
      }
    free(dp);
  }
  memset(a->g_lpool, 0, sizeof(float) * (size_t)B * SL * D);
  LP_TRY_MSG(lp_linear_backward(a->g_lpool, G + L->lat_w, G + L->lat_b, a->g_llog, a->lpool,
                          P + L->lat_w, B * SL, D, Vo),
       "latent output backward");
  const size_t nl = (size_t)BE * SL * D;
  float *dy = a->g_l1, *dx = a->g_l2, *tp;
  memset(dx, 0, sizeof(float) * nl);
  LP_TRY_MSG(lp_maxpool_examples_backward(dx, a->g_lpool, a->lam, B, E, SL * D), "max-pool backward");
  memset(dy, 0, sizeof(float) * nl);
  LP_TRY_MSG(lp_layernorm_backward(dy, G + L->lat_ln.g, G + L->lat_ln.b, dx, a->hl, a->mean_l,
                             a->rstd_l, P + L->lat_ln.g, BE * SL, D),
       "latent layer norm backward");
  float *gmem = ra->g_mem;
  memset(gmem, 0, sizeof(float) * (size_t)BE * Sm * D);
  for (int i = c->n_dec_layers - 1; i >= 0; i--) {
    memset(dx, 0, sizeof(float) * nl);
    LP_TRY_MSG(lp_dec_block_backward(&L->lat[i], P, G, a->lat[i], dx, gmem, dy),
         "latent predictor block backward");
    tp = dy, dy = dx, dx = tp;
  }
  LP_TRY_MSG(rf_embed_backward(m, dx, dy, a->drop_l, a->lin, L->lat_emb, Vl, -1, BE * SL, dr),
       "latent embedding backward");

  /* program encoder: straight-through AE gradient (after pretraining) + commitment
   * (AE/VAE: the AE pass's gradient, VAE: through the sample, + KL) */
  memset(a->g_cv, 0, sizeof(float) * nlev * D);
  const float *zq = vq && c->vq_norm ? a->zn : z; /* the quantiser's input */
  float *gz = a->g_cv + zoff * D;
  if (vq && c->vq_norm) { /* the gradient of LN(z) first, then through the layer norm */
    gz = a->g_zn;
    memset(gz, 0, sizeof(float) * (size_t)B * S * D);
  }
  const double cscale =
      L->nvalid ? 2.0 * c->w_ae * c->commit_beta * L->sc_valid / (double)L->nvalid : 0.0;
  if (!vq && (rc = cont_latent_bwd(m, z, a->g_zm[0], gz, c->w_ae * c->kl_weight * L->sc_valid,
                                   err)) != LP_OK)
    return rc;
  for (int i = 0; vq && i < B * S; i++) {
    if (!a->zmask[i]) continue;
    const float *g0 = a->g_zm[0] + (size_t)i * D;
    const float *zi = zq + (size_t)i * D, *q = cb + (size_t)a->idx[i] * D;
    float *gi = gz + (size_t)i * D;
    if (L->pretrain && !L->hide_spec) { /* paper: averaged embeddings */
      const int t = i / S, s = i % S;
      const float inv = 1.0f / (float)(a->cnt[i] ? a->cnt[i] : 1);
      for (int u = s * L->W; u < (s + 1) * L->W && u < T; u++) {
        int32_t id = penc_ids[(size_t)t * T + u];
        if (id == pad) continue;
        float *row = G + L->penc_emb + (size_t)id * D;
        for (int d = 0; d < D; d++) row[d] += g0[d] * inv;
      }
    } else {
      for (int d = 0; d < D; d++) gi[d] += g0[d];
    }
    for (int d = 0; d < D; d++) gi[d] += (float)(cscale * ((double)zi[d] - q[d]));
  }
  if (vq && c->vq_norm)
    LP_TRY_MSG(lp_layernorm_backward(a->g_cv + zoff * D, NULL, NULL, gz, a->cv + zoff * D,
                                     a->mean_z, a->rstd_z, a->ln1, B * S, D),
               "quantiser layer norm backward");
  {
    /* conv levels backward, last to first */
    size_t offs[10];
    int lens[10];
    offs[0] = 0, lens[0] = T;
    for (int j = 1; j <= L->l; j++) {
      offs[j] = offs[j - 1] + (size_t)B * lens[j - 1];
      lens[j] = lp_conv1d_s2_out_len(lens[j - 1]);
    }
    for (int j = L->l; j >= 1; j--) {
      float *gy = a->g_cv + offs[j] * D;
      for (size_t i = 0; i < (size_t)B * lens[j]; i++)
        if (!a->cvm[offs[j] + i]) memset(gy + i * D, 0, sizeof(float) * D);
      LP_TRY_MSG(lp_conv1d_s2_backward(a->g_cv + offs[j - 1] * D, G + L->conv_w[j - 1],
                                 G + L->conv_b[j - 1], gy, a->cv + offs[j - 1] * D,
                                 P + L->conv_w[j - 1], B, lens[j - 1], D, D),
           "convolution backward");
    }
    for (size_t i = 0; i < (size_t)B * T; i++)
      if (!a->cvm[i]) memset(a->g_cv + i * D, 0, sizeof(float) * D);
  }
  {
    const size_t n = (size_t)B * T * D;
    float *pdy = a->g_t1, *pdx = a->g_t2;
    memset(pdy, 0, sizeof(float) * n);
    LP_TRY_MSG(lp_layernorm_backward(pdy, G + L->penc_ln.g, G + L->penc_ln.b, a->g_cv, a->hp,
                               a->mean_p, a->rstd_p, P + L->penc_ln.g, B * T, D),
         "program encoder layer norm backward");
    for (int i = c->n_enc_layers - 1; i >= 0; i--) {
      memset(pdx, 0, sizeof(float) * n);
      LP_TRY_MSG(lp_enc_block_backward(&L->penc[i], P, G, a->penc[i], pdx, pdy),
           "program encoder block backward");
      tp = pdy, pdy = pdx, pdx = tp;
    }
    LP_TRY_MSG(rf_embed_backward(m, pdx, pdy, a->drop_p, penc_ids, L->penc_emb, V, pad, B * T, dr),
         "program encoder embedding backward");
  }

  /* stack A (spec decoder): g_hn -> blocks -> gmem (accumulates with the predictor's),
   * then the spec encoder(s) from gmem (as rf_backward) */
  return rf_stacks_backward(m, b, a->g_hn, dr, err);
}

/* The codebook's data initialisation (first train step): K encoder outputs
 * of the batch drawn without replacement (cycled, with a little noise, when
 * the batch has fewer than K valid latents). */
static void data_init(lp_model *m, const float *z, int64_t step) {
  struct lpm *L = m->lp;
  const int D = m->cfg.d_model, K = L->K, n = L->B * L->S;
  int *valid = malloc(sizeof(int) * (size_t)(n ? n : 1));
  if (!valid) return;
  int nv = 0;
  for (int i = 0; i < n; i++)
    if (L->a.idx[i] >= 0) valid[nv++] = i;
  if (nv == 0) {
    free(valid);
    return;
  }
  lp_rng r;
  lp_rng_seed(&r, (uint64_t)step * 0x2545f4914f6cdd1dULL + 17);
  for (int k = 0; k < K; k++) {
    int j = k % nv;
    if (k < nv) { /* partial Fisher-Yates */
      int u = k + (int)(lp_rng_next(&r) % (uint64_t)(nv - k)), tmp = valid[k];
      valid[k] = valid[u], valid[u] = tmp;
      j = k;
    }
    float *c = L->codebook + (size_t)k * D;
    const float *src = z + (size_t)valid[j] * D;
    for (int d = 0; d < D; d++) c[d] = src[d] + (k >= nv ? 0.01f * lp_rng_normal(&r) : 0.0f);
    memcpy(L->ema_w + (size_t)k * D, c, sizeof(float) * D);
    L->ema_n[k] = 1.0f;
    L->idle[k] = 0.0f;
  }
  free(valid);
}

#define LPM_KMEANS_ITERS 25 /* Lloyd iterations at most */

static double sqdist(const float *a, const float *b, int D) {
  double s = 0.0;
  for (int d = 0; d < D; d++) {
    const double t = (double)a[d] - b[d];
    s += t * t;
  }
  return s;
}

/* kmeans_init = 1: the codebook as the K centres of k-means over the valid
 * encoder outputs z of the last forward (k-means++ seeding from an lp_rng
 * seeded by the step, then Lloyd iterations until no point moves; a centre
 * left without points takes the point farthest from its own centre). The EMA
 * state restarts from the clusters: w_k = their sum, n_k = their size. With
 * fewer valid outputs than codes it falls back to data_init. Deterministic. */
static void kmeans_init(lp_model *m, const float *z, int64_t step) {
  struct lpm *L = m->lp;
  const int D = m->cfg.d_model, K = L->K, n = L->B * L->S;
  int nv = 0;
  for (int i = 0; i < n; i++) nv += L->a.idx[i] >= 0;
  if (nv < K) {
    data_init(m, z, step);
    return;
  }
  int *pt = malloc(sizeof(int) * (size_t)nv), *as = malloc(sizeof(int) * (size_t)nv);
  double *d2 = malloc(sizeof(double) * (size_t)nv), *sum = malloc(sizeof(double) * (size_t)K * D);
  int *cnt = malloc(sizeof(int) * (size_t)K);
  if (!pt || !as || !d2 || !sum || !cnt) { /* out of memory: the plain data init */
    free(pt), free(as), free(d2), free(sum), free(cnt);
    data_init(m, z, step);
    return;
  }
  for (int i = 0, j = 0; i < n; i++)
    if (L->a.idx[i] >= 0) pt[j++] = i;
  lp_rng r;
  lp_rng_seed(&r, (uint64_t)step * 0xd1342543de82ef95ULL + 29);
  float *cb = L->codebook;
  /* k-means++ */
  memcpy(cb, z + (size_t)pt[lp_rng_next(&r) % (uint64_t)nv] * D, sizeof(float) * D);
  for (int j = 0; j < nv; j++) d2[j] = sqdist(z + (size_t)pt[j] * D, cb, D);
  for (int k = 1; k < K; k++) {
    double tot = 0.0;
    for (int j = 0; j < nv; j++) tot += d2[j];
    int pick = (int)(lp_rng_next(&r) % (uint64_t)nv);
    if (tot > 0.0) {
      double u = lp_rng_uniform(&r) * tot;
      for (pick = 0; pick < nv - 1 && u >= d2[pick]; pick++) u -= d2[pick];
    }
    float *c = cb + (size_t)k * D;
    memcpy(c, z + (size_t)pt[pick] * D, sizeof(float) * D);
    for (int j = 0; j < nv; j++) {
      const double t = sqdist(z + (size_t)pt[j] * D, c, D);
      if (t < d2[j]) d2[j] = t;
    }
  }
  /* Lloyd */
  for (int j = 0; j < nv; j++) as[j] = -1;
  for (int it = 0; it < LPM_KMEANS_ITERS; it++) {
    int moved = 0;
    for (int j = 0; j < nv; j++) {
      const float *x = z + (size_t)pt[j] * D;
      int best = 0;
      double bd = sqdist(x, cb, D);
      for (int k = 1; k < K; k++) {
        const double t = sqdist(x, cb + (size_t)k * D, D);
        if (t < bd) bd = t, best = k;
      }
      d2[j] = bd;
      moved += as[j] != best;
      as[j] = best;
    }
    if (!moved) break;
    memset(sum, 0, sizeof(double) * (size_t)K * D);
    memset(cnt, 0, sizeof(int) * (size_t)K);
    for (int j = 0; j < nv; j++) {
      const float *x = z + (size_t)pt[j] * D;
      double *s = sum + (size_t)as[j] * D;
      for (int d = 0; d < D; d++) s[d] += x[d];
      cnt[as[j]]++;
    }
    for (int k = 0; k < K; k++) {
      float *c = cb + (size_t)k * D;
      if (cnt[k] > 0) {
        for (int d = 0; d < D; d++) c[d] = (float)(sum[(size_t)k * D + d] / cnt[k]);
        continue;
      }
      int far = 0; /* an empty cluster takes the worst-served point */
      for (int j = 1; j < nv; j++)
        if (d2[j] > d2[far]) far = j;
      memcpy(c, z + (size_t)pt[far] * D, sizeof(float) * D);
      d2[far] = 0.0;
    }
  }
  /* the EMA state of these clusters (as their centres last assigned) */
  memset(sum, 0, sizeof(double) * (size_t)K * D);
  memset(cnt, 0, sizeof(int) * (size_t)K);
  for (int j = 0; j < nv; j++) {
    int best = 0;
    const float *x = z + (size_t)pt[j] * D;
    double bd = sqdist(x, cb, D);
    for (int k = 1; k < K; k++) {
      const double t = sqdist(x, cb + (size_t)k * D, D);
      if (t < bd) bd = t, best = k;
    }
    double *s = sum + (size_t)best * D;
    for (int d = 0; d < D; d++) s[d] += x[d];
    cnt[best]++;
  }
  for (int k = 0; k < K; k++) {
    const float *c = cb + (size_t)k * D;
    float *w = L->ema_w + (size_t)k * D;
    if (cnt[k] > 0) {
      for (int d = 0; d < D; d++) w[d] = (float)sum[(size_t)k * D + d];
      L->ema_n[k] = (float)cnt[k];
    } else { /* a centre nobody is nearest to: weight 1 at itself */
      memcpy(w, c, sizeof(float) * D);
      L->ema_n[k] = 1.0f;
    }
    L->idle[k] = 0.0f;
  }
  free(pt), free(as), free(d2), free(sum), free(cnt);
}

/* EMA codebook update with the encoder outputs z[n,D] of a batch and their
 * codes idx[n] (-1 = padding; nvalid of them valid), then dead codes. */
static void codebook_update(lp_model *m, const float *z, const int32_t *idx, int n, int nvalid,
                            int64_t step) {
  struct lpm *L = m->lp;
  const int D = m->cfg.d_model, K = L->K;
  lpm_vq_ema(L->codebook, L->ema_w, L->ema_n, K, D, z, idx, n, m->cfg.ema_decay,
             m->cfg.ema_eps);
  for (int k = 0; k < K; k++) L->idle[k] = L->idle[k] < 0.0f ? 1.0f : L->idle[k] + 1.0f;
  for (int i = 0; i < n; i++)
    if (idx[i] >= 0) L->idle[idx[i]] = 0.0f;
  if (m->cfg.dead_code_restart && nvalid > 0) {
    uint64_t h = (uint64_t)step * 0x9e3779b97f4a7c15ULL;
    for (int k = 0; k < K; k++) {
      if (L->idle[k] < LPM_DEAD_AFTER) continue;
      lp_rng r;
      lp_rng_seed(&r, h ^ (uint64_t)k);
      int pick = (int)(lp_rng_next(&r) % (uint64_t)nvalid), i = 0;
      for (; i < n; i++)
        if (idx[i] >= 0 && pick-- == 0) break;
      memcpy(L->codebook + (size_t)k * D, z + (size_t)i * D, sizeof(float) * D);
      memcpy(L->ema_w + (size_t)k * D, z + (size_t)i * D, sizeof(float) * D);
      L->ema_n[k] = 1.0f;
      L->idle[k] = 0.0f;
    }
  }
}

/* The last forward's quantiser inputs [B*S, D]: the encoder outputs (last
 * conv level), or their layer norms with vq_norm. */
static const float *last_z(const lp_model *m) {
  const struct lpm *L = m->lp;
  if (m->cfg.vq_norm && L->mode == LPM_VQ) return L->a.zn;
  const size_t zoff = (size_t)L->B * (levels_len(L->T, L->l) - (size_t)L->S);
  return L->a.cv + zoff * m->cfg.d_model;
}

int lpm_replica_init(lp_model *r, const lp_model *m) {
  r->lp = malloc(sizeof *r->lp);
  if (!r->lp) return LP_ENOMEM;
  *r->lp = *m->lp; /* shares offsets, blocks and the codebook state */
  memset(&r->lp->a, 0, sizeof r->lp->a);
  r->lp->fwd_ok = 0;
  return LP_OK;
}

void lpm_replica_free(lp_model *r) {
  if (!r || !r->lp) return;
  acts_release(r);
  free(r->lp);
  r->lp = NULL;
}

static void lpm_par_worker(void *ctx, int w) {
  rf_par *j = ctx;
  lp_model *m = w == 0 ? j->m : j->m->replica[w - 1];
  memset(m->grads, 0, sizeof(float) * m->n_params);
  j->rc[w] = lpm_loss(m, &j->view[w], j->step, j->use_rng ? &j->rng[w] : NULL, 1, &j->st[w],
                      &j->err[w]);
}

/* Data-parallel step: worker w takes tasks [B*w/W, B*(w+1)/W); gradients and
 * loss terms are weighted by each share's tasks (the terms have different
 * normalisers, so this is the per-replica-mean convention of data-parallel
 * training, exact when the shares are alike); one EMA update with the
 * encoder outputs of the whole batch, in task order. */
static int lpm_train_parallel(lp_model *m, const lp_batch *b, int64_t step, lp_rng *rng,
                              lp_step_stats *st, lp_err *err) {
  struct lpm *L = m->lp;
  const int W = m->n_workers, B = b->B;
  for (int w = 1; w < W; w++) { /* refresh the replicas' flags (hide_spec, freeze, ...) */
    struct lpm *q = m->replica[w - 1]->lp;
    lpm_acts keep = q->a;
    *q = *L;
    q->a = keep;
    q->fwd_ok = 0;
  }
  rf_par *j = calloc(1, sizeof *j);
  if (!j) return lp_err_set(err, LP_ENOMEM, "out of memory");
  j->step = step;
  int rc = rf_par_run(j, m, b, rng, lpm_par_worker, err);
  float *zall = NULL;
  int32_t *iall = NULL;
  if (rc == LP_OK) {
    lp_step_stats sum;
    memset(&sum, 0, sizeof sum);
    int ntok = 0, nvalid = 0, n = 0, nlat = 0;
    for (int w = 0; w < W; w++) {
      const lp_model *r = w == 0 ? m : m->replica[w - 1];
      const double f = (double)j->view[w].B / B;
      const lp_step_stats *s = &j->st[w];
      sum.loss += f * s->loss, sum.loss_prog += f * s->loss_prog;
      sum.loss_latent += f * s->loss_latent, sum.loss_commit += f * s->loss_commit;
      sum.loss_e2e += f * s->loss_e2e;
      sum.token_acc += s->token_acc * s->n_tokens;
      ntok += s->n_tokens;
      nvalid += r->lp->nvalid;
      sum.latent_acc += s->latent_acc * r->lp->nlat;
      nlat += r->lp->nlat;
      n += r->lp->B * r->lp->S;
      rf_par_add_grads(m, w, (float)f);
    }
    sum.n_tokens = ntok;
    sum.token_acc = ntok ? sum.token_acc / ntok : 0.0;
    sum.latent_acc = nlat ? sum.latent_acc / nlat : 0.0;
    sum.dead_codes = j->st[0].dead_codes;
    const int D = m->cfg.d_model, K = L->K;
    zall = malloc(sizeof(float) * (size_t)(n ? n : 1) * D);
    iall = malloc(sizeof(int32_t) * (size_t)(n ? n : 1));
    if (!zall || !iall) rc = lp_err_set(err, LP_ENOMEM, "out of memory");
    for (int w = 0, at = 0; rc == LP_OK && w < W; w++) {
      const lp_model *r = w == 0 ? m : m->replica[w - 1];
      const int nw = r->lp->B * r->lp->S;
      memcpy(zall + (size_t)at * D, last_z(r), sizeof(float) * (size_t)nw * D);
      memcpy(iall + at, r->lp->a.idx, sizeof(int32_t) * (size_t)nw);
      at += nw;
    }
    if (rc == LP_OK && L->mode != LPM_VQ) { /* AE/VAE: no codebook */
      if (st) *st = sum;
    } else if (rc == LP_OK) {
      double *cnt = calloc((size_t)K, sizeof(double)), h = 0.0;
      if (cnt && nvalid > 0) {
        for (int i = 0; i < n; i++)
          if (iall[i] >= 0) cnt[iall[i]] += 1.0;
        for (int k = 0; k < K; k++)
          if (cnt[k] > 0) h -= cnt[k] / nvalid * log(cnt[k] / nvalid);
        sum.codebook_perplexity = exp(h);
      }
      free(cnt);
      if (st) *st = sum;
      if (!(L->pretrain && L->hide_spec)) codebook_update(m, zall, iall, n, nvalid, step);
    }
  }
  free(zall);
  free(iall);
  free(j);
  return rc;
}

/* ---- length-bucketed steps ------------------------------------------------------------ */

/* A chunked LP step: the plan (c), the step, each task's counts of program
 * tokens, valid latents and latent targets and where its valid encoder outputs
 * go in zall/iall (task order, as one padded pass would hand them to the EMA),
 * and the chunk totals. */
typedef struct lpm_cjob {
  rf_chunks *c;
  int64_t step;
  int *vt, *voff;          /* [B] valid latents of task t, their offset in zall */
  int *cv, *cl;            /* [n chunks] valid latents, latent targets */
  int nv, nl;              /* batch totals */
  float *zall;             /* [nv, D] */
  int32_t *iall;           /* [nv] */
} lpm_cjob;

static void lpm_chunk_worker(void *ctx, int w) {
  lpm_cjob *j = ctx;
  rf_chunks *c = j->c;
  lp_model *m = w == 0 ? c->m : c->m->replica[w - 1];
  struct lpm *L = m->lp;
  const int D = m->cfg.d_model;
  memset(m->grads, 0, sizeof(float) * m->n_params);
  int rc = LP_OK;
  for (int i = 0; rc == LP_OK && i < c->n; i++) {
    if (c->owner[i] != c->w0 + w) continue;
    const int *tasks = c->order + c->start[i], nt = c->start[i + 1] - c->start[i];
    rc = lp_batch_subset(&m->cbatch, c->b, tasks, nt, m->spec_v.pad, m->prog_v.pad, &c->err[w]);
    L->sc_tok = c->n_tok ? (float)((double)c->tok[i] / c->n_tok) : 1.0f;
    L->sc_valid = j->nv ? (float)((double)j->cv[i] / j->nv) : 1.0f;
    L->sc_lat = j->nl ? (float)((double)j->cl[i] / j->nl) : 1.0f;
    if (rc == LP_OK)
      rc = lpm_loss(m, &m->cbatch, j->step, c->use_rng ? &c->rng[i] : NULL, 1, &c->st[i],
                    &c->err[w]);
    L->sc_tok = L->sc_valid = L->sc_lat = 1.0f;
    if (rc != LP_OK) break;
    if (L->nvalid != j->cv[i]) {
      rc = lp_err_set(&c->err[w], LP_EINVAL, "chunk %d: %d valid latents, %d expected", i,
                      L->nvalid, j->cv[i]);
      break;
    }
    /* this chunk's valid encoder outputs, to their tasks' places (task order) */
    const float *z = last_z(m);
    for (int k = 0; k < nt; k++) {
      const int t = tasks[k];
      for (int s = 0, at = j->voff[t]; s < L->S; s++) {
        const int r = k * L->S + s;
        if (L->a.idx[r] < 0) continue;
        memcpy(j->zall + (size_t)at * D, z + (size_t)r * D, sizeof(float) * D);
        j->iall[at++] = L->a.idx[r];
      }
    }
  }
  c->rc[w] = rc;
}

/* One LP train step as chunks: each term keeps its normaliser over the whole
 * batch (program tokens, valid latents, latent targets), so the loss and its
 * gradient are those of one padded pass up to float rounding; one EMA update
 * with the valid encoder outputs of the whole batch in task order. */
static int lpm_train_chunked(lp_model *m, const lp_batch *b, int64_t step, lp_rng *rng,
                             lp_step_stats *st, lp_err *err) {
  const int rc_batch = rf_check_batch(m, b, 1, err);
  if (rc_batch != LP_OK) return rf_comm_agree(m, rc_batch, err); /* (multi-process: agreed) */
  struct lpm *L = m->lp;
  const int W = m->n_workers, B = b->B, T = b->T_prog, D = m->cfg.d_model, K = L->K;
  for (int w = 1; w < W; w++) { /* refresh the replicas' flags (hide_spec, freeze, ...) */
    struct lpm *q = m->replica[w - 1]->lp;
    lpm_acts keep = q->a;
    *q = *L;
    q->a = keep;
    q->fwd_ok = 0;
  }
  lpm_cjob j;
  memset(&j, 0, sizeof j);
  j.step = step;
  /* multi-process (lp_model_set_comm): the failures of every rank are agreed
   * on before the sums; ired holds iall as doubles to sum (-0.0 in the slots
   * of tasks another rank ran, as zall) */
  const int multi = rf_comm_on(m);
  double *ired = NULL;
  int rc = LP_OK, n = 0;
  j.c = rf_chunks_plan(m, b, rf_comm_chunk(m, b), rng, err);
  if (!j.c) rc = err && err->code ? err->code : LP_ENOMEM;
  if (rc == LP_OK) {
    n = j.c->n;
    j.vt = malloc(sizeof(int) * (2 * (size_t)B + 2 * (size_t)n));
    if (!j.vt) rc = lp_err_set(err, LP_ENOMEM, "out of memory");
  }
  if (rc == LP_OK) {
    j.voff = j.vt + B, j.cv = j.voff + B, j.cl = j.cv + n;
    const int32_t *penc = b->prog_enc ? b->prog_enc : b->prog;
    for (int t = 0; t < B; t++) {
      int v = rf_used_len(penc + (size_t)t * T, T, m->prog_v.pad);
      for (int l = 0; l < L->l; l++) v = (v + 1) / 2; /* windows holding a token */
      j.vt[t] = v;
      j.voff[t] = j.nv;
      j.nv += v;
    }
    for (int i = 0; i < n; i++) {
      j.cv[i] = j.cl[i] = 0;
      for (int k = j.c->start[i]; k < j.c->start[i + 1]; k++) {
        j.cv[i] += j.vt[j.c->order[k]];
        /* the codes and EOS (AE/VAE: the latents) */
        j.cl[i] += j.vt[j.c->order[k]] + (L->mode == LPM_VQ);
      }
      j.nl += j.cl[i];
    }
    j.zall = malloc(sizeof(float) * (size_t)(j.nv ? j.nv : 1) * D);
    j.iall = malloc(sizeof(int32_t) * (size_t)(j.nv ? j.nv : 1));
    if (multi) ired = malloc(sizeof(double) * (size_t)(j.nv ? j.nv : 1));
    if (!j.zall || !j.iall || (multi && !ired)) rc = lp_err_set(err, LP_ENOMEM, "out of memory");
    for (size_t i = 0; rc == LP_OK && multi && i < (size_t)j.nv * D; i++) j.zall[i] = -0.0f;
  }
  if (rc == LP_OK) {
    rc = W > 1 ? lp_engine_parallel(W, lpm_chunk_worker, &j) : (lpm_chunk_worker(&j, 0), LP_OK);
    for (int w = 0; rc == LP_OK && w < W; w++)
      if (j.c->rc[w] != LP_OK) {
        rc = j.c->rc[w];
        if (err) *err = j.c->err[w];
      }
  }
  rc = rf_comm_agree(m, rc, err);
  if (rc == LP_OK) {
    for (int w = 1; w < W; w++) rf_par_add_grads(m, w, 1.0f);
    if (multi) {
      /* the gradients, the chunks' statistics, then the encoder outputs and
       * their codes of the whole batch, each task's from the rank that ran it */
      for (int k = 0; k < j.nv; k++) ired[k] = -0.0;
      for (int i = 0; i < n; i++) {
        if (j.c->owner[i] < j.c->w0 || j.c->owner[i] >= j.c->w0 + W) continue;
        for (int k = j.c->start[i]; k < j.c->start[i + 1]; k++) {
          const int t = j.c->order[k];
          for (int v = j.voff[t]; v < j.voff[t] + j.vt[t]; v++) ired[v] = j.iall[v];
        }
      }
      rc = rf_comm_reduce(m, j.c, ired, (size_t)j.nv, err);
      if (rc == LP_OK) rc = rf_comm_sum_f32(m, j.zall, (size_t)j.nv * D, err);
      for (int k = 0; rc == LP_OK && k < j.nv; k++) {
        j.iall[k] = (int32_t)ired[k];
        if (j.iall[k] < 0 || j.iall[k] >= K)
          rc = lp_err_set(err, LP_EINVAL, "latent %d of the step has code %g after the sum over "
                          "the ranks", k, ired[k]);
      }
    }
  }
  if (rc == LP_OK) {
    const lp_model_cfg *cf = &m->cfg;
    lp_step_stats sum;
    memset(&sum, 0, sizeof sum);
    for (int i = 0; i < n; i++) {
      const lp_step_stats *x = &j.c->st[i];
      const double ft = j.c->n_tok ? (double)j.c->tok[i] / j.c->n_tok : 0.0;
      const double fv = j.nv ? (double)j.cv[i] / j.nv : 0.0;
      const double fl = j.nl ? (double)j.cl[i] / j.nl : 0.0;
      sum.loss_prog += ft * x->loss_prog;
      sum.loss_e2e += ft * x->loss_e2e;
      sum.token_acc += ft * x->token_acc;
      sum.loss_commit += fv * x->loss_commit;
      sum.loss_latent += fl * x->loss_latent;
      sum.latent_acc += fl * x->latent_acc;
    }
    sum.loss = cf->w_ae * (sum.loss_prog + sum.loss_commit) + cf->w_latent * sum.loss_latent +
               cf->w_e2e * sum.loss_e2e;
    sum.n_tokens = j.c->n_tok;
    sum.dead_codes = j.c->st[0].dead_codes;
    double *cnt = L->mode == LPM_VQ ? calloc((size_t)K, sizeof(double)) : NULL, h = 0.0;
    if (cnt && j.nv > 0) {
      for (int i = 0; i < j.nv; i++) cnt[j.iall[i]] += 1.0;
      for (int k = 0; k < K; k++)
        if (cnt[k] > 0) h -= cnt[k] / j.nv * log(cnt[k] / j.nv);
      sum.codebook_perplexity = exp(h);
    }
    free(cnt);
    if (st) *st = sum;
    if (L->mode == LPM_VQ && !(step <= cf->pretrain_steps && L->hide_spec))
      codebook_update(m, j.zall, j.iall, j.nv, j.nv, step);
  }
  free(j.zall);
  free(j.iall);
  free(ired);
  free(j.vt);
  rf_chunks_free(j.c);
  return rc;
}

static int lpm_step(lp_model *m, const lp_batch *b, int64_t step, lp_rng *rng, lp_step_stats *st,
                    lp_err *err) {
  struct lpm *L = m->lp;
  int rc;
  /* the codebook from data: at the first step, and with kmeans_init again at
   * the first step after pretraining (a codebook fitted to the encoder the
   * pretraining made) */
  const int first = L->mode == LPM_VQ && L->idle[0] < 0.0f;
  const int refit = L->mode == LPM_VQ && m->cfg.kmeans_init && m->cfg.pretrain_steps > 0 &&
                    step == m->cfg.pretrain_steps + 1;
  if (first || refit) {
    lp_step_stats tmp;
    /* every rank runs it on the whole batch (multi-process: agreed) */
    if ((rc = rf_comm_agree(m, lpm_loss(m, b, step, NULL, 0, &tmp, err), err)) != LP_OK)
      return rc;
    if (m->cfg.kmeans_init)
      kmeans_init(m, last_z(m), step);
    else
      data_init(m, last_z(m), step);
  }
  if (rf_comm_on(m) || (m->chunk_tasks > 0 && b->B > m->chunk_tasks))
    return lpm_train_chunked(m, b, step, rng, st, err);
  if (m->n_workers > 1 && b->B >= m->n_workers)
    return lpm_train_parallel(m, b, step, rng, st, err);
  memset(m->grads, 0, sizeof(float) * m->n_params);
  lp_step_stats local;
  rc = lpm_loss(m, b, step, rng, 1, st ? st : &local, err);
  if (rc != LP_OK) return rc;
  /* reference-style pretraining freezes the codebook; AE/VAE have none */
  if ((L->pretrain && L->hide_spec) || L->mode != LPM_VQ) return LP_OK;
  codebook_update(m, last_z(m), L->a.idx, L->B * L->S, L->nvalid, step);
  return LP_OK;
}

int lpm_train_step(lp_model *m, const lp_batch *b, int64_t step, lp_rng *rng, lp_step_stats *st,
                   lp_err *err) {
  const double t0 = m->prof_on ? lp_now() : 0.0;
  int rc = lpm_step(m, b, step, rng, st, err);
  if (m->prof_on) m->prof.other += lp_now() - t0;
  return rc;
}

int lpm_eval_loss(lp_model *m, const lp_batch *b, lp_step_stats *st, lp_err *err) {
  lp_step_stats local;
  /* evaluation: the phase after pretraining */
  return lpm_loss(m, b, INT64_MAX, NULL, 0, st ? st : &local, err);
}
