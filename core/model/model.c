/* The model front: the public calls of include/lpsynth/model.h that depend on
 * the model's kind dispatch through k_ops, one entry per enum lp_model_kind
 * (as ggml dispatches on its op enum); the rest (construction of the shared
 * stacks, accessors, the step profile) is the same for every kind.
 *
 *   RobustFill (LP_MODEL_ROBUSTFILL): robustfill.c (steps), rf_search.c (search)
 *   Latent Programmer (LP_MODEL_LP):  lp.c (build, state, steps), lp_search.c
 *   RobustFill[LSTM] (LP_MODEL_RF_LSTM): rf_lstm.c (build, steps, encoder),
 *                                        rf_lstm_search.c (search, scoring, free)
 *   Latent RobustFill [AE] / [VAE] (LP_MODEL_LATENT_AE / _VAE): lp.c and
 *     lp_search.c, the LP's code in its continuous latent modes
 *
 * Uses every model file; no model file uses it (they are below it): its
 * callers are synth.c, train.c, tr_ckpt.c, the CLI and tests. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lpsynth/runtime.h"
#include "model_internal.h"

/* What a kind provides; NULL members: nothing to do (layout, build, free,
 * state, replica_init, replica_free). */
typedef struct lp_model_ops {
  /* The shared Transformer stacks' tensors (rf_layout_build), first in m->L;
   * NULL for a kind without them. */
  int (*layout)(lp_model *m, lp_err *err);
  /* Encodes the spec of a one-task batch for lp_model_score (rng NULL). */
  int (*encode)(lp_model *m, const lp_batch *b, lp_rng *rng, lp_err *err);
  /* After the shared stacks' tensors: adds the kind's own to m->L and
   * allocates its parts (state initialised from seed). */
  int (*build)(lp_model *m, uint64_t seed, lp_err *err);
  void (*free)(lp_model *m);
  float *(*state)(lp_model *m, size_t *n);
  /* Data-parallel replicas: r is a shallow copy of m; gives it its own parts. */
  int (*replica_init)(lp_model *r, const lp_model *m);
  void (*replica_free)(lp_model *r);
  int (*train_step)(lp_model *m, const lp_batch *b, int64_t step, lp_rng *rng,
                    lp_step_stats *st, lp_err *err);
  int (*eval_loss)(lp_model *m, const lp_batch *b, lp_step_stats *st, lp_err *err);
  /* out is emptied by the caller; the batch is not encoded yet. */
  int (*search)(lp_model *m, const lp_batch *b, const lp_beam_opts *o, lp_beam_result *out,
                lp_err *err);
  /* The batch is encoded and the programs checked (rf_search_prep,
   * rf_score_check); n > 0. */
  int (*score)(lp_model *m, const lp_batch *b, const int32_t *const *progs, const int *lens,
               int n, int latent_beam, int max_len, double *scores, lp_err *err);
} lp_model_ops;

static const lp_model_ops k_ops[] = {
    [LP_MODEL_ROBUSTFILL] = {.layout = rf_layout_build, .encode = rf_encode,
                             .build = NULL, .free = NULL, .state = NULL, .replica_init = NULL,
                             .replica_free = NULL, .train_step = rf_train_step,
                             .eval_loss = rf_eval_loss, .search = rf_search, .score = rf_score},
    [LP_MODEL_LP] = {.layout = rf_layout_build, .encode = rf_encode, .build = lpm_build, .free = lpm_free, .state = lpm_state,
                     .replica_init = lpm_replica_init, .replica_free = lpm_replica_free,
                     .train_step = lpm_train_step, .eval_loss = lpm_eval_loss,
                     .search = lpm_search, .score = lpm_score},
    /* Latent RobustFill [AE] / [VAE]: the LP's code in another latent mode */
    [LP_MODEL_LATENT_AE] = {.layout = rf_layout_build, .encode = rf_encode, .build = lpm_build,
                            .free = lpm_free, .state = lpm_state,
                            .replica_init = lpm_replica_init, .replica_free = lpm_replica_free,
                            .train_step = lpm_train_step, .eval_loss = lpm_eval_loss,
                            .search = lpm_search, .score = lpm_score},
    [LP_MODEL_LATENT_VAE] = {.layout = rf_layout_build, .encode = rf_encode, .build = lpm_build,
                             .free = lpm_free, .state = lpm_state,
                             .replica_init = lpm_replica_init, .replica_free = lpm_replica_free,
                             .train_step = lpm_train_step, .eval_loss = lpm_eval_loss,
                             .search = lpm_search, .score = lpm_score},
    [LP_MODEL_RF_LSTM] = {.layout = NULL, .encode = rfl_encode, .build = rfl_build,
                          .free = rfl_free, .state = NULL, .replica_init = rfl_replica_init,
                          .replica_free = rfl_replica_free, .train_step = rfl_train_step,
                          .eval_loss = rfl_eval_loss, .search = rfl_search,
                          .score = rfl_score},
};

/* The ops of kind k, NULL when no model of that kind is implemented. */
static const lp_model_ops *ops_of_kind(int k) {
  if (k < 0 || (size_t)k >= sizeof k_ops / sizeof k_ops[0] || !k_ops[k].train_step) return NULL;
  return &k_ops[k];
}

static const lp_model_ops *ops_of(const lp_model *m) { return ops_of_kind(m->cfg.kind); }

/* ---- construction ----------------------------------------------------------- */

static int check_cfg(const lp_model_cfg *c, lp_err *err) {
  if (!ops_of_kind(c->kind))
    return lp_err_set(err, LP_EUNSUP, "model kind %d is not implemented", c->kind);
  if (c->d_model < 2 || c->n_heads < 1 ||
      (c->kind != LP_MODEL_RF_LSTM && c->d_model % c->n_heads != 0)) /* LSTM: no heads */
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
  if (m) m->n_workers = 1, m->loss_scale = 1.0f, m->chunk_tasks = LP_CHUNK_DEFAULT;
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
  /* the shared stacks' tensors, then the kind's own and its state (the LP's:
   * lp.c; RobustFill[LSTM] has only its own: rf_lstm.c) */
  const lp_model_ops *o = ops_of(m);
  if (o->layout && o->layout(m, err) != LP_OK) {
    lp_model_free(m);
    return NULL;
  }
  if (o->build && o->build(m, seed, err) != LP_OK) {
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

void lp_model_free(lp_model *m) {
  if (!m) return;
  if (m->is_replica) return; /* never handed out; owned by its model */
  const lp_model_ops *o = ops_of(m);
  rf_replicas_free(m, o->replica_free);
  if (o->free) o->free(m);
  rf_acts_release(m);
  rf_inc_release(m);
  lp_batch_free(&m->cbatch);
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
  if (m && ops_of(m)->state) return ops_of(m)->state(m, n);
  if (n) *n = 0;
  return NULL;
}

/* ---- execution settings ------------------------------------------------------ */

/* (parallel.c makes the replicas; the kind gives each its own parts) */
int lp_model_set_threads(lp_model *m, int n, lp_err *err) {
  if (!m || m->is_replica) return lp_err_set(err, LP_EINVAL, "lp_model_set_threads: bad model");
  const lp_model_ops *o = ops_of(m);
  return rf_replicas_set(m, n, o->replica_init, o->replica_free, err);
}

void lp_model_profile_enable(lp_model *m, int on) {
  if (!m) return;
  for (int w = 0; w < m->n_workers; w++) {
    lp_model *r = w == 0 ? m : m->replica[w - 1];
    r->prof_on = on != 0;
    memset(&r->prof, 0, sizeof r->prof);
  }
}

void lp_model_profile_get(const lp_model *m, lp_model_profile *out) {
  if (!out) return;
  memset(out, 0, sizeof *out);
  for (int w = 0; m && w < m->n_workers; w++) {
    const lp_model_profile *p = w == 0 ? &m->prof : &m->replica[w - 1]->prof;
    out->enc_fwd += p->enc_fwd, out->dec_fwd += p->dec_fwd, out->loss_fwd += p->loss_fwd;
    out->bwd += p->bwd, out->other += p->other;
    out->flops_run += p->flops_run, out->flops_useful += p->flops_useful;
    out->chunks += p->chunks;
  }
}

/* ---- public steps ------------------------------------------------------------------ */

int lp_model_train_step(lp_model *m, const lp_batch *b, int64_t step, lp_rng *rng,
                        lp_step_stats *st, lp_err *err) {
  if (!m || !b) return lp_err_set(err, LP_EINVAL, "lp_model_train_step: NULL argument");
  return ops_of(m)->train_step(m, b, step, rng, st, err);
}

int lp_model_eval_loss(lp_model *m, const lp_batch *b, lp_step_stats *st, lp_err *err) {
  if (!m || !b) return lp_err_set(err, LP_EINVAL, "lp_model_eval_loss: NULL argument");
  return ops_of(m)->eval_loss(m, b, st, err);
}

/* ---- search and scoring --------------------------------------------------------------- */

int lp_model_search(lp_model *m, const lp_batch *b, const lp_beam_opts *o,
                    lp_beam_result *out, lp_err *err) {
  if (!m || !b || !o || !out) return lp_err_set(err, LP_EINVAL, "lp_model_search: NULL argument");
  out->hyps = NULL;
  out->n = 0;
  out->timed_out = 0;
  return ops_of(m)->search(m, b, o, out, err);
}

int lp_model_score(lp_model *m, const lp_batch *b, const int32_t *const *progs, const int *lens,
                   int n, int latent_beam, double *scores, lp_err *err) {
  if (!m || !b || (n > 0 && !scores))
    return lp_err_set(err, LP_EINVAL, "lp_model_score: NULL argument");
  if (latent_beam < 0 || latent_beam > 4096)
    return lp_err_set(err, LP_EINVAL, "latent beam %d outside [0, 4096]", latent_beam);
  int max_len = 0;
  int rc = rf_search_check(m, b, 1, &max_len, 0.0f, err);
  if (rc == LP_OK) rc = ops_of(m)->encode(m, b, NULL, err);
  if (rc == LP_OK) rc = rf_score_check(m, progs, lens, n, max_len, err);
  if (rc != LP_OK || n == 0) return rc;
  return ops_of(m)->score(m, b, progs, lens, n, latent_beam, max_len, scores, err);
}
