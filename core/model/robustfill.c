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
 * demand to the largest shape seen and reused.
 *
 * This file: RobustFill's teacher-forced forward/backward (the loss on top of
 * the shared stacks of stacks.c) and its train steps (one pass, data-parallel,
 * chunked: parallel.c's rf_train_step_pass runs them over this pass). Its search is
 * rf_search.c's; the public calls dispatch here from model.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lpsynth/runtime.h"
#include "model_internal.h"

/* ---- forward ---------------------------------------------------------------------- */

int rf_forward(lp_model *m, const lp_batch *b, lp_rng *rng, lp_step_stats *st, lp_err *err) {
  if (rf_check_batch(m, b, 1, err) != LP_OK) return err ? err->code : LP_EINVAL;
  double t0 = m->prof_on ? lp_now() : 0.0, t1 = 0.0;
  int rc = rf_encode(m, b, rng, err);
  if (rc != LP_OK) return rc;
  if (m->prof_on) {
    t1 = lp_now();
    m->prof.enc_fwd += t1 - t0;
    rf_count_flops(m, b, m->cfg.d_model, &m->prof.flops_run, &m->prof.flops_useful);
    m->prof.chunks++;
  }
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
  if (m->prof_on) {
    double t2 = lp_now();
    m->prof.dec_fwd += t2 - t1;
    t1 = t2;
  }
  if (m->freeze_argmax) /* tests: a fixed selection (see model_internal.h) */
    memcpy(a->argmax, m->freeze_argmax, sizeof(int32_t) * (size_t)B * T * D);
  LP_TRY_MSG(rf_pool_forward(m->freeze_argmax != NULL, a->pooled, a->argmax, a->hn_dec, b->emask, B, E,
                       T * D),
       "max-pool");
  LP_TRY_MSG(lp_linear_forward(a->logits, a->pooled, P + m->out_w, P + m->out_b, B * T, D, V),
       "output layer");
  double loss = 0.0;
  int n_valid = 0;
  LP_TRY_MSG(lp_cross_entropy_forward(&loss, a->probs, NULL, &n_valid, a->logits, b->prog, B * T, V,
                                pad),
       "cross-entropy");
  m->fwd_ok = 1;
  if (m->prof_on) m->prof.loss_fwd += lp_now() - t1;
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

int rf_backward(lp_model *m, const lp_batch *b, lp_err *err) {
  rf_acts *a = &m->acts;
  const int B = m->B, E = m->E, BE = B * E, T = m->T;
  const int D = m->cfg.d_model, V = m->prog_v.size, pad = m->prog_v.pad;
  const float *P = m->params;
  float *G = m->grads;
  if (!m->fwd_ok || !b || b->B != B || b->E != E || b->T_prog != T)
    return lp_err_set(err, LP_EINVAL, "backward without a matching forward");
  const double t0 = m->prof_on ? lp_now() : 0.0;
  /* logits -> pooled -> per-example decoder states */
  memset(a->g_logits, 0, sizeof(float) * (size_t)B * T * V);
  LP_TRY_MSG(lp_cross_entropy_backward(a->g_logits, a->probs, b->prog, B * T, V, pad, m->loss_scale),
       "cross-entropy backward");
  memset(a->g_pooled, 0, sizeof(float) * (size_t)B * T * D);
  LP_TRY_MSG(lp_linear_backward(a->g_pooled, G + m->out_w, G + m->out_b, a->g_logits, a->pooled,
                          P + m->out_w, B * T, D, V),
       "output layer backward");
  float *dy = a->g_a; /* gradient of the decoder's layer-norm output */
  memset(dy, 0, sizeof(float) * (size_t)BE * T * D);
  LP_TRY_MSG(lp_maxpool_examples_backward(dy, a->g_pooled, a->argmax, B, E, T * D),
       "max-pool backward");
  const int S = m->n_parts == 2 ? m->To : m->Ti;
  memset(a->g_mem, 0, sizeof(float) * (size_t)BE * S * D);
  int rc = rf_stacks_backward(m, b, dy, m->dropped, err);
  if (m->prof_on) m->prof.bwd += lp_now() - t0;
  return rc;
}

/* ---- steps (lp_model_train_step / _eval_loss for kind LP_MODEL_ROBUSTFILL) ---------- */

static const rf_pass k_rf_pass = {rf_forward, rf_backward};

int rf_train_step(lp_model *m, const lp_batch *b, int64_t step, lp_rng *rng, lp_step_stats *st,
                  lp_err *err) {
  (void)step;
  return rf_train_step_pass(m, b, rng, st, &k_rf_pass, err);
}

int rf_eval_loss(lp_model *m, const lp_batch *b, lp_step_stats *st, lp_err *err) {
  lp_step_stats local;
  return rf_forward(m, b, NULL, st ? st : &local, err);
}
