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
 * chunked: parallel.c runs the workers given here). Its search is
 * rf_search.c's; the public calls dispatch here from model.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lpsynth/runtime.h"
#include "model_internal.h"

/* ---- forward ---------------------------------------------------------------------- */

/* Adds the forward-and-backward FLOPs (3x the forward's) of batch b as run
 * (padded shapes) to *run and as counted on its non-pad positions to *useful. */
static void rf_count_flops(const lp_model *m, const lp_batch *b, double *run, double *useful) {
  const int B = b->B, E = b->E, T = b->T_prog;
  const int Ti = b->T_spec[0], To = m->n_parts == 2 ? b->T_spec[1] : 0;
  const double D = m->cfg.d_model, V = m->prog_v.size;
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

int rf_forward(lp_model *m, const lp_batch *b, lp_rng *rng, lp_step_stats *st, lp_err *err) {
  if (rf_check_batch(m, b, 1, err) != LP_OK) return err ? err->code : LP_EINVAL;
  double t0 = m->prof_on ? lp_now() : 0.0, t1 = 0.0;
  int rc = rf_encode(m, b, rng, err);
  if (rc != LP_OK) return rc;
  if (m->prof_on) {
    t1 = lp_now();
    m->prof.enc_fwd += t1 - t0;
    rf_count_flops(m, b, &m->prof.flops_run, &m->prof.flops_useful);
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

/* ---- data-parallel training ---------------------------------------------------------- */

static void par_worker(void *ctx, int w) {
  rf_par *j = ctx;
  lp_model *m = w == 0 ? j->m : j->m->replica[w - 1];
  memset(m->grads, 0, sizeof(float) * m->n_params);
  j->rc[w] = rf_forward(m, &j->view[w], j->use_rng ? &j->rng[w] : NULL, &j->st[w], &j->err[w]);
  if (j->rc[w] == LP_OK) j->rc[w] = rf_backward(m, &j->view[w], &j->err[w]);
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

/* ---- length-bucketed steps ---------------------------------------------------------- */

static void chunk_worker(void *ctx, int w) {
  rf_chunks *c = ctx;
  lp_model *m = w == 0 ? c->m : c->m->replica[w - 1];
  memset(m->grads, 0, sizeof(float) * m->n_params);
  int rc = LP_OK;
  for (int i = 0; rc == LP_OK && i < c->n; i++) {
    if (c->owner[i] != c->w0 + w) continue;
    rc = lp_batch_subset(&m->cbatch, c->b, c->order + c->start[i], c->start[i + 1] - c->start[i],
                         m->spec_v.pad, m->prog_v.pad, &c->err[w]);
    m->loss_scale = c->n_tok ? (float)((double)c->tok[i] / c->n_tok) : 1.0f / c->n;
    if (rc == LP_OK)
      rc = rf_forward(m, &m->cbatch, c->use_rng ? &c->rng[i] : NULL, &c->st[i], &c->err[w]);
    if (rc == LP_OK) rc = rf_backward(m, &m->cbatch, &c->err[w]);
    m->loss_scale = 1.0f;
  }
  c->rc[w] = rc;
}

/* One train step as chunks (lp_model_set_chunk): the same loss as one padded
 * pass - the token-weighted mean of the chunks' token means - and its gradient. */
static int rf_train_chunked(lp_model *m, const lp_batch *b, lp_rng *rng, lp_step_stats *st,
                            lp_err *err) {
  const int W = m->n_workers;
  rf_chunks *c = NULL;
  int rc = rf_check_batch(m, b, 1, err);
  if (rc == LP_OK) {
    c = rf_chunks_plan(m, b, rf_comm_chunk(m, b), rng, err);
    if (!c) rc = err && err->code ? err->code : LP_ENOMEM;
  }
  if (rc == LP_OK)
    rc = W > 1 ? lp_engine_parallel(W, chunk_worker, c) : (chunk_worker(c, 0), LP_OK);
  for (int w = 0; rc == LP_OK && w < W; w++)
    if (c->rc[w] != LP_OK) {
      rc = c->rc[w];
      if (err) *err = c->err[w];
    }
  /* multi-process: every rank learns whether any failed, before the sums */
  rc = rf_comm_agree(m, rc, err);
  if (rc == LP_OK) {
    for (int w = 1; w < W; w++) rf_par_add_grads(m, w, 1.0f);
    if (rf_comm_on(m)) rc = rf_comm_reduce(m, c, NULL, 0, err);
  }
  if (rc == LP_OK) {
    lp_step_stats sum;
    memset(&sum, 0, sizeof sum);
    for (int i = 0; i < c->n; i++) {
      const double f = c->n_tok ? (double)c->tok[i] / c->n_tok : 1.0 / c->n;
      sum.loss += f * c->st[i].loss;
      sum.token_acc += f * c->st[i].token_acc;
    }
    sum.loss_prog = sum.loss;
    sum.n_tokens = c->n_tok;
    if (st) *st = sum;
  }
  rf_chunks_free(c);
  return rc;
}

/* ---- steps (lp_model_train_step / _eval_loss for kind LP_MODEL_ROBUSTFILL) ---------- */

int rf_train_step(lp_model *m, const lp_batch *b, int64_t step, lp_rng *rng, lp_step_stats *st,
                  lp_err *err) {
  (void)step;
  memset(m->grads, 0, sizeof(float) * m->n_params);
  if (rf_comm_on(m) || (m->chunk_tasks > 0 && b->B > m->chunk_tasks))
    return rf_train_chunked(m, b, rng, st, err);
  if (m->n_workers > 1 && b->B >= m->n_workers) return rf_train_parallel(m, b, rng, st, err);
  lp_step_stats local;
  int rc = rf_forward(m, b, rng, st ? st : &local, err);
  if (rc != LP_OK) return rc;
  return rf_backward(m, b, err);
}

int rf_eval_loss(lp_model *m, const lp_batch *b, lp_step_stats *st, lp_err *err) {
  lp_step_stats local;
  return rf_forward(m, b, NULL, st ? st : &local, err);
}
