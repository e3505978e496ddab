/* Private to lpsynth_model (and its tests): the model object and what the
 * model's files share, grouped by the file that defines it. Who may use whom
 * (no circle; core/model/README.md):
 *
 *   model.c (the public front, dispatch by kind)
 *     -> robustfill.c, rf_search.c   (RobustFill)
 *     -> lp.c, lp_search.c           (Latent Programmer)
 *     -> rf_lstm.c, rf_lstm_search.c (RobustFill[LSTM])
 *   robustfill.c, lp.c, rf_lstm.c -> parallel.c -> stacks.c, rf_search.c (release only)
 *   rf_lstm_search.c -> rf_lstm.c, beam.c
 *   rf_search.c, lp_search.c -> beam.c -> stacks.c
 *   lp_search.c -> lp.c (lpm_get_view)
 *
 * plus the test hooks at the end (tests only). */
#ifndef LPSYNTH_MODEL_INTERNAL_H
#define LPSYNTH_MODEL_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "lpsynth/engine.h"
#include "lpsynth/model.h"
#include "engine/internal.h" /* LP_TRY_MSG, lp_carve */

/* Activations of the teacher-forced forward, grown on demand to the largest
 * batch shape seen (never shrunk), so steady-state steps do not allocate. */
typedef struct rf_acts {
  int cap_BE, cap_B, cap_Ti, cap_To, cap_T; /* capacities (0 = nothing yet) */
  lp_enc_block_acts **enc_in;  /* [n_enc] */
  lp_dec_block_acts **enc_out; /* [n_enc] (noncausal decoder blocks), n_parts == 2 */
  lp_dec_block_acts **dec;     /* [n_dec] */
  void *mem;                   /* one block for every array below */
  /* spec input encoder: [BE,Ti,*] (ids: the batch's spec[0]) */
  uint8_t *kin, *drop_in;
  float *h_in, *e_in, *mean_in, *rstd_in;
  /* spec output encoder: [BE,To,*] (ids: the batch's spec[1]) */
  uint8_t *kout, *drop_out;
  float *h_out, *e_out, *mean_out, *rstd_out;
  /* program decoder: [BE,T,*], pooled [B,T,*] */
  int32_t *ids_dec;
  uint8_t *drop_dec;
  float *h_dec, *hn_dec, *mean_dec, *rstd_dec;
  float *pooled;     /* [B,T,D] */
  int32_t *argmax;   /* [B,T*D] */
  float *logits;     /* [B*T,V] */
  float *probs;      /* [B*T,V] */
  /* backward scratch */
  float *g_a, *g_b;  /* [BE, max(Ti,To,T), D] ping-pong */
  float *g_mem;      /* [BE, max(Ti,To), D] gradient of the decoder's memory */
  float *g_mem2;     /* [BE, Ti, D] gradient of Ein from the output encoder */
  float *g_pooled;   /* [B,T,D] */
  float *g_logits;   /* [B*T,V] */
} rf_acts;

/* Incremental decoder state for beam search: one cache per decoder layer.
 * Rows are hypothesis-major: row h*E + e is hypothesis h on example e. */
typedef struct rf_inc {
  int cap_H, cap_T, cap_S, cap_E; /* capacities (hypotheses, positions, memory) */
  int E, started;
  lp_dec_block_cache **cache;     /* [n_dec] */
  float *x, *xn;                  /* [cap_H*cap_E, D] */
  float *pooled;                  /* [cap_H, D] */
  int32_t *argmax;                /* [cap_H, D] */
  uint8_t *emask;                 /* [cap_H*cap_E] the task's mask per hypothesis */
  int32_t *ids, *src;             /* [cap_H*cap_E] */
} rf_inc;

struct lp_model {
  lp_model_cfg cfg;
  lp_vocab_info spec_v, prog_v;
  int n_parts;
  lp_layout *L;
  float *params, *grads;
  size_t n_params;
  lp_block_cfg bcfg;        /* shared block config (dropout rates from cfg) */
  /* parameter offsets */
  size_t emb_in, emb_out, emb_prog; /* [Vs,D], [Vs,D], [Vp,D] */
  lp_enc_block *enc_in;     /* [n_enc] "spec.in.block<i>" */
  lp_ln_off ln_in;          /* "spec.in.ln" */
  lp_dec_block *enc_out;    /* [n_enc] "spec.out.block<i>" (noncausal) */
  lp_ln_off ln_out;         /* "spec.out.ln" */
  lp_dec_block *dec;        /* [n_dec] "dec.block<i>" */
  lp_ln_off ln_dec;         /* "dec.ln" */
  size_t out_w, out_b;      /* "out.w" [D,Vp], "out.b" [Vp] */
  rf_acts acts;
  rf_inc inc;
  /* shape of the last forward */
  int B, E, Ti, To, T;
  int dropped; /* the last forward ran with an rng */
  int fwd_ok;  /* the last rf_forward completed (backward allowed) */
  /* Latent Programmer parts (kind LP_MODEL_LP; NULL for RobustFill): see lp.c. */
  struct lpm *lp;
  /* RobustFill[LSTM] (kind LP_MODEL_RF_LSTM; NULL otherwise): its tensors'
   * offsets, activations and decoder state, see rf_lstm.c. Such a model has
   * none of the Transformer stacks above (the offsets, enc_in ... stay 0). */
  struct rfl *lstm;
  /* Data-parallel training (lp_model_set_threads): n_workers >= 1; worker w > 0
   * is replica[w - 1], a shallow copy sharing params, layout and block offsets
   * but with its own gradients and activations (is_replica = 1). */
  int n_workers;
  struct lp_model **replica;
  int is_replica;
  /* Length-bucketed steps (lp_model_set_chunk): a train step runs as chunks of
   * chunk_tasks tasks, each re-padded to its own lengths (cbatch: this model's
   * or replica's copy); 0 = one padded pass per worker share. loss_scale
   * multiplies the loss's gradient (a chunk's share of the batch's tokens). */
  int chunk_tasks;
  float loss_scale;
  lp_batch cbatch;
  /* Step profile (lp_model_profile): seconds per phase, added up while on. */
  int prof_on;
  lp_model_profile prof;
  /* Multi-process steps (lp_model_set_comm): comm.size > 1 when set (a copy of
   * the caller's struct; replicas copy it too but never call it). */
  lp_comm comm;
  /* TEST HOOK, tests only (see "test hooks" at the end of this header): when
   * set ([B,T*D] example indices, as the max-pool's argmax), the decoder's
   * max-pool selects these examples instead of the maxima, so finite
   * differences see no kinks where two examples tie. NULL otherwise. */
  const int32_t *freeze_argmax;
};

/* ---- stacks.c: the Transformer stacks both models share ------------------------------
 * The spec encoder(s), the spec-attending program decoder stack, their
 * activations (m->acts) and backward. RobustFill (robustfill.c) and the LP
 * (lp.c) run them; neither calls the other. */
/* The shared tensors of m->L (spec encoder(s), "dec.embed", "dec.block<i>",
 * "dec.ln", "out.w/b"), in checkpoint order (lp_model_new, model.c). */
int rf_layout_build(lp_model *m, lp_err *err);
/* Frees m->acts (and empties it). */
void rf_acts_release(lp_model *m);
/* Validates the ids and shapes of a batch against the model (message in err). */
int rf_check_batch(const lp_model *m, const lp_batch *b, int need_prog, lp_err *err);
/* Runs only the spec encoder(s) on b (rng NULL). The decoder's memory is then
 * rf_memory(): [B*E,S,D] with key mask [B*E,S]. */
int rf_encode(lp_model *m, const lp_batch *b, lp_rng *rng, lp_err *err);
const float *rf_memory(const lp_model *m, int *S, const uint8_t **mask);

/* Adds the layer norm "<prefix>.scale" (ones) and "<prefix>.bias" (zeros), [D]. */
int rf_layout_ln(lp_layout *L, const char *prefix, int D, lp_ln_off *o);
/* x[B*T,D] = Drop(Embed(ids) + PE); km[B*T] = (id != pad) when km != NULL. */
int rf_embed_seq(const lp_model *m, float *x, uint8_t *drop, uint8_t *km, const int32_t *ids,
                 size_t table, int V, int pad, int B, int T, lp_rng *rng);
/* Backward of Drop(Embed(ids) + PE) over N rows: dx is the gradient of the
 * stack's input, scratch [N,D] is overwritten; dropped: the forward had an rng. */
int rf_embed_backward(lp_model *m, float *scratch, const float *dx, const uint8_t *drop,
                      const int32_t *ids, size_t table, int V, int pad, int N, int dropped);
/* The spec-attending decoder stack on m->acts.ids_dec [BE,T] (filled by the
 * caller) over the last rf_encode's memory: m->acts.hn_dec = LN(DecBlocks^n(
 * Drop(Embed_prog(ids) + PE))). */
int rf_decoder_forward(lp_model *m, int BE, int T, lp_rng *rng, lp_err *err);
/* Max-pool across examples of x[B,E,M] into y[B,M], or (frozen) the selection
 * already in am[B,M]. */
int rf_pool_forward(int frozen, float *y, int32_t *am, const float *x, const uint8_t *emask,
                    int B, int E, int M);
/* How many of the n rows of logits[n,V] whose target is not pad have their
 * target as the (first) largest logit. */
int rf_count_correct(const float *logits, const int32_t *tgt, size_t n, int V, int pad);
/* Backward of the decoder stack and the spec encoder(s) of the last forward
 * (shape m->B, m->E, m->T, m->Ti, m->To) from g_hn [B*E,T,D], the gradient of
 * the decoder's layer-norm output (may be m->acts.g_a). The memory's gradient
 * accumulates in m->acts.g_mem (zeroed by the caller) before it goes through
 * the encoder(s); g_a and g_b are overwritten. */
int rf_stacks_backward(lp_model *m, const lp_batch *b, const float *g_hn, int dropped,
                       lp_err *err);

/* Forward FLOPs of one example of lengths i (input), o (output; 0 with one
 * spec part), t (program) (profile, and parallel.c's chunk costs), of m's
 * kind (the Transformer stacks, or RobustFill[LSTM]'s LSTMs). */
double rf_example_flops(const lp_model *m, double i, double o, double t);
/* Adds the forward-and-backward FLOPs (3x the forward's) of batch b as run
 * (padded shapes) to *run and as counted on its non-pad positions to *useful
 * (the examples, rf_example_flops, and the output layer from `width`). */
void rf_count_flops(const lp_model *m, const lp_batch *b, int width, double *run,
                    double *useful);

/* ---- robustfill.c: RobustFill's loss and train steps ---------------------------------- */
/* Teacher-forced forward of the whole batch (rng: dropout or NULL); fills
 * st (loss, accuracy, tokens). After it, m->acts.logits holds [B*T,V]. */
int rf_forward(lp_model *m, const lp_batch *b, lp_rng *rng, lp_step_stats *st, lp_err *err);
/* Backward of the last rf_forward on the same batch b (grads += ...; the
 * caller zeroes them). */
int rf_backward(lp_model *m, const lp_batch *b, lp_err *err);
/* lp_model_train_step / lp_model_eval_loss for RobustFill (model.c's k_ops). */
int rf_train_step(lp_model *m, const lp_batch *b, int64_t step, lp_rng *rng, lp_step_stats *st,
                  lp_err *err);
int rf_eval_loss(lp_model *m, const lp_batch *b, lp_step_stats *st, lp_err *err);

/* ---- rf_search.c: RobustFill's incremental decoder, search and scoring --------------- */
/* Incremental decoding of ONE task (the last rf_encode must have had B = 1):
 * rf_inc_start prepares the caches for up to max_hyps hypotheses of up to
 * max_len tokens; rf_inc_step feeds one token per hypothesis (n hypotheses,
 * tokens[n]) at the next position and writes logits[n,V]; rf_inc_reorder
 * makes hypothesis i continue old hypothesis parent[i] (i < n). */
int rf_inc_start(lp_model *m, const uint8_t *emask, int max_hyps, int max_len, lp_err *err);
int rf_inc_step(lp_model *m, const int32_t *tokens, int n, float *logits, lp_err *err);
int rf_inc_reorder(lp_model *m, const int32_t *parent, int n, lp_err *err);
void rf_inc_release(lp_model *m);

/* lp_model_search / lp_model_score for RobustFill (model.c's k_ops): out is
 * emptied by the caller; for rf_score the batch is encoded and the programs
 * checked (latent_beam unused). */
int rf_search(lp_model *m, const lp_batch *b, const lp_beam_opts *o, lp_beam_result *out,
              lp_err *err);
int rf_score(lp_model *m, const lp_batch *b, const int32_t *const *progs, const int *lens, int n,
             int latent_beam, int max_len, double *scores, lp_err *err);

/* ---- beam.c: batched beam search and teacher forcing ------------------------------
 * RobustFill's search (rf_search.c) and both levels of the LP's (lp_search.c)
 * run this one loop over a decoder given as callbacks. */
/* Checks the search arguments (beam in [1, 4096], one task, *max_len <= 0 ->
 * the model's max_program_len, at most 65536, alpha in [0, 10]) and the batch,
 * then encodes it (rf_encode). */
int rf_search_prep(lp_model *m, const lp_batch *b, int beam, int *max_len, float alpha,
                   lp_err *err);
/* rf_search_prep's checks without the encoding (a model with its own encoder). */
int rf_search_check(lp_model *m, const lp_batch *b, int beam, int *max_len, float alpha,
                    lp_err *err);
/* Feeds tok[n] (one token per live hypothesis) at the next position and writes
 * logits[n,V]. */
typedef int (*rf_beam_step_fn)(void *ctx, const int32_t *tok, int n, float *logits, lp_err *err);
/* Makes hypothesis i continue old hypothesis parent[i] (i < n) in the caches. */
typedef int (*rf_beam_reorder_fn)(void *ctx, const int32_t *parent, int n, lp_err *err);
typedef struct rf_beam_spec {
  int V, bos, eos;  /* vocabulary size; the first token fed; the end token */
  int ban1, ban2;   /* never generated (-1: none) */
  int min_len;      /* EOS not before position min_len */
  int K, max_len;   /* beam size; longest sequence (incl. EOS) */
  double alpha;     /* finished key = log-probability / len^alpha when alpha > 0 */
  const char *who;  /* names the search in error messages */
  /* execution guidance (lp_beam_opts): NULL = none */
  lp_prune_fn prune;
  lp_signature_fn signature;
  void *gctx;
  double deadline;  /* lp_now() seconds after which the search stops (0: none) */
} rf_beam_spec;
typedef struct rf_beam_fin {
  double key, raw; /* ranking key (length-normalised when alpha > 0); log-probability */
  int32_t *seq;    /* len tokens, EOS last (owned) */
  int len;
  uint64_t order;  /* insertion order, breaks ties */
  uint64_t sig;    /* the signature (spec.signature), else 0 */
} rf_beam_fin;
/* Beam search of at most K finished sequences: *fins_out gets *n_out of them,
 * best first (free with rf_beam_fins_free). */
int rf_beam_run(const rf_beam_spec *s, void *ctx, rf_beam_step_fn step,
                rf_beam_reorder_fn reorder, rf_beam_fin **fins_out, int *n_out, int *timed_out,
                lp_err *err);
void rf_beam_fins_free(rf_beam_fin *f, int n);
/* Teacher forcing through a decoder given as callbacks: out[i] = the sum of
 * log-softmax(logits)[seqs[i][t]] over t < lens[i], the inputs being BOS then
 * seqs[i][0..lens[i]-1). The sequences are sorted and decoded in chunks of at
 * most H as prefix trees (one hypothesis per distinct prefix, moved with
 * reorder as beam search does); start(ctx) empties the decoder's caches
 * before each chunk. */
typedef int (*rf_force_start_fn)(void *ctx, lp_err *err);
int rf_force(void *ctx, rf_force_start_fn start, rf_beam_step_fn step, rf_beam_reorder_fn reorder,
             int V, int bos, int H, const int32_t *const *seqs, const int *lens, int n,
             double *out, lp_err *err);
#define RF_SCORE_CHUNK 64
/* lp_model_search's plain or guided beam over a decoder given as callbacks
 * (its caches started for o->beam hypotheses of max_len tokens): the spec
 * from m's program vocabulary (PAD and BOS never generated) and o, then
 * rf_beam_result into out. */
int rf_beam_search(const lp_model *m, const lp_beam_opts *o, int max_len, void *ctx,
                   rf_beam_step_fn step, rf_beam_reorder_fn reorder, lp_beam_result *out,
                   lp_err *err);
/* lp_model_score's checks of the programs (ids, EOS last, length). */
int rf_score_check(const lp_model *m, const int32_t *const *progs, const int *lens, int n,
                   int max_len, lp_err *err);
/* out = the n finished programs (score = key), taking their sequences; frees
 * fins in any case. */
int rf_beam_result(rf_beam_fin *fins, int n, lp_beam_result *out, const char *who, lp_err *err);

/* ---- parallel.c: data-parallel and multi-process steps ---------------------------------
 * Used by both models' steps; the kind-specific parts come in as functions. */
/* lp_model_set_threads' body: n - 1 replicas of m (n in [1, LP_ENGINE_MAX_WORKERS]),
 * each given its kind's parts by kind_init (NULL: none); kind_free undoes it. */
int rf_replicas_set(lp_model *m, int n, int (*kind_init)(lp_model *r, const lp_model *m),
                    void (*kind_free)(lp_model *r), lp_err *err);
/* Frees m's replicas (kind_free first, when not NULL); m->n_workers = 1. */
void rf_replicas_free(lp_model *m, void (*kind_free)(lp_model *r));
/* *v = tasks [t0, t1) of b, a view (no copy) with b's padded lengths. */
void rf_batch_view(lp_batch *v, const lp_batch *b, int t0, int t1);
/* A model's teacher-forced pass, for rf_train_step_pass: forward (rng:
 * dropout, or NULL) fills st and keeps what backward needs; backward adds the
 * gradient of m->loss_scale x the loss to m->grads. */
typedef struct rf_pass {
  int (*forward)(lp_model *m, const lp_batch *b, lp_rng *rng, lp_step_stats *st, lp_err *err);
  int (*backward)(lp_model *m, const lp_batch *b, lp_err *err);
} rf_pass;
/* lp_model_train_step over pass p (RobustFill, RobustFill[LSTM]): zeroes the
 * gradients, then one pass, or m's data-parallel shares (lp_model_set_threads:
 * each weighted by its target tokens), or length-bucketed chunks
 * (lp_model_set_chunk, and every multi-process step). */
int rf_train_step_pass(lp_model *m, const lp_batch *b, lp_rng *rng, lp_step_stats *st,
                       const rf_pass *p, lp_err *err);
/* A data-parallel step of m->n_workers workers (parallel.c; the workers are
 * robustfill.c's and lp.c's): worker w
 * runs on model w (m, then m->replica[w - 1]) with tasks [B*w/W, B*(w+1)/W)
 * of the batch, view[w], its own rng (when use_rng), stats, error and status. */
typedef struct rf_par {
  lp_model *m;
  const rf_pass *pass; /* rf_train_step_pass's (NULL for lp.c's workers) */
  int64_t step; /* set by the caller for its worker */
  int use_rng;
  lp_batch view[LP_ENGINE_MAX_WORKERS];
  lp_rng rng[LP_ENGINE_MAX_WORKERS];
  lp_step_stats st[LP_ENGINE_MAX_WORKERS];
  lp_err err[LP_ENGINE_MAX_WORKERS];
  int rc[LP_ENGINE_MAX_WORKERS];
} rf_par;
/* Fills j's model, views and rngs (seeded from rng in worker order; none when
 * rng is NULL), runs worker(j, w) on the workers, then returns the first
 * failing worker's status (its message in err). */
int rf_par_run(rf_par *j, lp_model *m, const lp_batch *b, lp_rng *rng,
               void (*worker)(void *ctx, int w), lp_err *err);
/* Worker w's share of the summed gradient, in worker order: m->grads *= c
 * (w == 0), m->grads += c * (replica w's gradients) (w > 0). */
void rf_par_add_grads(lp_model *m, int w, float c);
/* ---- length-bucketed steps (lp_model_set_chunk; parallel.c) ---- */
/* A step's chunks: chunk c is tasks order[start[c] .. start[c+1]) of the batch,
 * run by worker owner[c] with its own rng; its gradient is weighted by tok[c]
 * (its target tokens) / n_tok. */
typedef struct rf_chunks {
  lp_model *m;
  const rf_pass *pass; /* rf_train_step_pass's (NULL for lp.c's workers) */
  const lp_batch *b;
  int n, n_tok, use_rng;
  int W, w0; /* virtual workers planned for (size x threads), this rank's first */
  double *red; /* multi-process: [n * RF_RED] the chunks' statistics to sum */
  int *order, *start, *owner, *tok;
  double *cost;
  lp_rng *rng;
  lp_step_stats *st;
  lp_err err[LP_ENGINE_MAX_WORKERS];
  int rc[LP_ENGINE_MAX_WORKERS];
} rf_chunks;

/* Plans the chunks of batch b (checked) for m's workers, k tasks per chunk:
 * tasks in batch order (k == 1) or grouped by estimated cost (k > 1); chunks to
 * the least loaded worker, dearest first; rngs drawn from rng in chunk order
 * (none when rng is NULL). NULL on failure (message in err). */
rf_chunks *rf_chunks_plan(lp_model *m, const lp_batch *b, int k, lp_rng *rng, lp_err *err);
void rf_chunks_free(rf_chunks *c);
/* Length of the row ids[T] without its padding at the end (batch.c). */
int rf_used_len(const int32_t *ids, int T, int32_t pad);
/* ---- multi-process steps (lp_model_set_comm; parallel.c) ---- */
#define RF_RED 11 /* doubles per chunk: lp_step_stats' fields, 1 = ran here, latent_acc */
/* 1 when m's train steps are collectives of more than one rank. */
int rf_comm_on(const lp_model *m);
/* Tasks per chunk of a step on batch b: m->chunk_tasks, or (0, or multi-process
 * with chunk_tasks >= B) what makes one chunk per virtual worker. */
int rf_comm_chunk(const lp_model *m, const lp_batch *b);
/* The ranks' agreement on this rank's status rc (message in *err): returns
 * LP_OK when no rank failed, else the failing rank's code with its message
 * ("rank R: ...") in *err, on every rank. */
int rf_comm_agree(lp_model *m, int rc, lp_err *err);
/* After the local workers of a multi-process chunked step (m->grads holds this
 * rank's sum): sums the gradients, the chunks' statistics c->st (zero where
 * another rank ran the chunk) and extra[0..n_extra) (f64, each slot written by
 * one rank, -0.0 elsewhere) over the ranks, and checks that every chunk ran on
 * exactly one rank. Every rank gets the same result (an error on all of them). */
int rf_comm_reduce(lp_model *m, rf_chunks *c, double *extra, size_t n_extra, lp_err *err);
/* Sums x[0..n) (f32) over the ranks. */
int rf_comm_sum_f32(lp_model *m, float *x, size_t n, lp_err *err);

/* ---- Latent Programmer (core/model/lp.c) --------------------------------------------
 * An LP model is a RobustFill model (spec encoder, program embedding "dec.embed",
 * spec-attending decoder stack "dec.block<i>"/"dec.ln", output layer "out.w/b")
 * plus the parts of struct lpm. model.c's lp_model_new / _free / _state /
 * _set_threads / _train_step / _eval_loss / _search / _score dispatch here
 * (k_ops[LP_MODEL_LP], and k_ops[LP_MODEL_LATENT_AE / _VAE]: the same code in
 * its continuous latent modes, LPM_AE / LPM_VAE, see lp.c). */
struct lpm;
/* Adds the LP tensors to m->L and allocates m->lp (state initialised from seed). */
int lpm_build(lp_model *m, uint64_t seed, lp_err *err);
void lpm_free(lp_model *m);
float *lpm_state(lp_model *m, size_t *n);
/* lp_model_train_step's body for LP models (its time counts as the profile's
 * "other"). */
int lpm_train_step(lp_model *m, const lp_batch *b, int64_t step, lp_rng *rng, lp_step_stats *st,
                   lp_err *err);
int lpm_eval_loss(lp_model *m, const lp_batch *b, lp_step_stats *st, lp_err *err);
/* Data-parallel replicas (model.c's lp_model_set_threads, parallel.c): r is a shallow
 * copy of m; gives it its own LP activations, sharing everything else. */
int lpm_replica_init(lp_model *r, const lp_model *m);
void lpm_replica_free(lp_model *r);
/* lp_model_score for LP models (lp_search.c): the best over L = latent_beam
 * (0: 3) codes. The batch is encoded and the programs checked already
 * (rf_search_prep, rf_score_check). */
int lpm_score(lp_model *m, const lp_batch *b, const int32_t *const *progs, const int *lens, int n,
              int latent_beam, int max_len, double *scores, lp_err *err);
/* lp_model_search for LP models (lp_search.c): the two-level search (AE/VAE:
 * latent sequences of the batch's true program length, then program beams). */
int lpm_search(lp_model *m, const lp_batch *b, const lp_beam_opts *o, lp_beam_result *out,
               lp_err *err);
/* Forward (and, when backward != 0, backward into the zeroed-by-caller grads)
 * of the whole LP loss without touching the EMA state. step selects the phase
 * (step <= pretrain_steps: pretraining). */
int lpm_loss(lp_model *m, const lp_batch *b, int64_t step, lp_rng *rng, int backward,
             lp_step_stats *st, lp_err *err);
/* Reference-style pretraining (spec/model.md) instead of the paper's: while
 * step <= pretrain_steps the autoencoder pass's decoder gets the quantised
 * latents (not averaged embeddings) and does not see the spec (the spec half
 * of the concatenation is zero), and the codebook is frozen (no EMA). Off by
 * default; no config key yet (set it after lp_model_new). */
void lpm_set_hide_spec(lp_model *m, int hide);
/* The last forward's codes: [B,S] (-1 = padded latent); *B, *S get the shape. */
const int32_t *lpm_last_codes(const lp_model *m, int *B, int *S);
/* The codebook [K,D] (state, borrowed). */
float *lpm_codebook(lp_model *m);
/* One EMA step of the codebook (see lp.c): n vectors z[n,D] assigned to
 * idx[n] (< 0: skipped). ema_n[K], ema_w[K,D] are the statistics. */
void lpm_vq_ema(float *codebook, float *ema_w, float *ema_n, int K, int D, const float *z,
                const int32_t *idx, int n, float decay, float eps);
/* Program beam search of one task conditioned on the latent code
 * code[0..len) (no latent search): what the two-level search runs per code.
 * Scores are the program log-probabilities only. */
int lpm_search_programs(lp_model *m, const lp_batch *b, const int32_t *code, int len, int beam,
                        int max_len, float len_alpha, lp_beam_result *out, lp_err *err);

/* The LP parts the search (lp_search.c) reads. */
/* The latent of an LP-family model (struct lpm's mode, from the kind):
 * LPM_VQ: the LP's vector quantiser (kind lp); LPM_AE: the program encoder's
 * continuous output (latent-ae); LPM_VAE: a Gaussian latent (latent-vae). */
enum { LPM_VQ = 0, LPM_AE = 1, LPM_VAE = 2 };
typedef struct lpm_view {
  int mode;
  int K, l, W, Vl, Vo; /* Vo: the latent predictor's output width (Vl; D for AE/VAE) */
  size_t lat_emb, lat_w, lat_b;
  const lp_dec_block *lat, *zdec;
  lp_ln_off lat_ln, zdec_ln;
  size_t cat_w, cat_b;
  const float *codebook;
} lpm_view;
void lpm_get_view(const lp_model *m, lpm_view *v);

/* ---- RobustFill[LSTM] (rf_lstm.c, rf_lstm_search.c) ------------------------------------
 * Kind LP_MODEL_RF_LSTM: LSTM encoders and an attending LSTM decoder instead of
 * the Transformer stacks (see rf_lstm.c). model.c's lp_model_new / _free /
 * _set_threads / _train_step / _eval_loss / _search / _score dispatch here. */

/* Activations of the last forward (rfl_encode, then the decoder), grown on
 * demand to the largest shape seen. N = B*E rows (task-major, example
 * fastest); D embedding, H hidden, G = 4H gates, Co = D + H (output encoder
 * input), Cd = D + n_parts*H (decoder input). Arrays named [T,N,*] are
 * time-major (step t's rows contiguous); slot 0 of hs/cs is the initial state. */
typedef struct rfl_acts {
  int cap_N, cap_B, cap_Ti, cap_To, cap_T;
  void *mem; /* one block for every array below */
  /* input encoder: x_in [N,Ti,D] (embedded, dropped), h_in, c_in [N,Ti,H], g_in [N,Ti,G] */
  int32_t *len_in;
  uint8_t *k_in, *drop_in;
  float *x_in, *h_in, *c_in, *g_in;
  /* output encoder (n_parts 2): x_out [N,To,D]; hs_out, cs_out [To+1,N,H]; q_out, a_out
   * [To,N,H] (query, input context); att_out [To,N,Ti]; xc_out [To,N,Co]; g_out
   * [To,N,G]; e_out [N,To,H] (its states, batch-major: the decoder's memory) */
  int32_t *len_out;
  uint8_t *k_out, *drop_out;
  float *x_out, *hs_out, *cs_out, *q_out, *a_out, *att_out, *xc_out, *g_out, *e_out;
  /* the decoder's initial state [N,H]: the last encoder's final state */
  float *hf, *cf;
  /* decoder: ids_dec, x_dec [N,T,(D)]; hs_dec, cs_dec [T+1,N,H]; qi, si, qo, so [T,N,H];
   * atti [T,N,Ti], atto [T,N,To]; xc [T,N,Cd]; g_dec [T,N,G]; p = tanh(h V) [T,N,H];
   * emask_t [T,N]; pooled, argmax [T,B,H]; tgt [T,B]; logits, probs [T*B,V] */
  int32_t *ids_dec;
  uint8_t *drop_dec, *emask_t;
  float *x_dec, *hs_dec, *cs_dec, *qi, *si, *qo, *so, *atti, *atto, *xc, *g_dec, *p;
  float *pooled;
  int32_t *argmax, *tgt;
  float *logits, *probs;
  /* backward scratch */
  float *g_logits, *g_pooled, *g_p;  /* [T*B,V], [T*B,H], [T*N,H] */
  float *g_hs, *g_cs;                /* [T+1,N,H] decoder state gradients */
  float *g_hso, *g_cso;              /* [To+1,N,H] output encoder's */
  float *g_z;                        /* [max(T,To),N,G] */
  float *g_xc, *g_q, *g_s, *g_s2;    /* [N,Cd], [N,H] x3 */
  float *g_x, *g_scratch;            /* [N,max(Ti,To,T),D] embedding gradients, scratch */
  float *g_mem_in, *g_c_in;          /* [N,Ti,H] */
  float *g_mem_out;                  /* [N,To,H] */
} rfl_acts;

/* Incremental decoder state for beam search of one task: rows h*E + e are
 * hypothesis h on example e (rows = n*E for n live hypotheses). */
typedef struct rfl_inc {
  int cap_H, cap_E, cap_S, E, pos, max_len, started;
  void *mem;
  float *h, *c, *h2, *c2;                 /* [rows,H] state; reorder scratch */
  float *x, *qi, *si, *qo, *so, *xc, *z, *p; /* [rows, D|H|Cd|G] */
  float *sc;                               /* [rows,S] attention scores */
  float *pooled;                           /* [cap_H,H] */
  int32_t *argmax, *ids;                   /* [cap_H,H], [rows] */
  uint8_t *emask;                          /* [rows] */
} rfl_inc;

struct rfl {
  /* tensor offsets */
  size_t in_emb, in_wx, in_wh, in_b;               /* "lstm.in.*" */
  size_t out_emb, out_q, out_wx, out_wh, out_b;    /* "lstm.out.*" (n_parts 2) */
  size_t dec_emb, dec_qi, dec_qo, dec_wx, dec_wh, dec_b; /* "lstm.dec.*" (qo: n_parts 2) */
  size_t pool_v, ow, ob;                           /* "lstm.pool.v", "out.w", "out.b" */
  rfl_acts a;
  rfl_inc inc;
};

/* rf_lstm.c: the tensors (after model.c's checks: one layer per stack) */
int rfl_build(lp_model *m, uint64_t seed, lp_err *err);
/* Frees the activations and the struct (not the incremental state: rfl_free). */
void rfl_release(lp_model *m);
int rfl_replica_init(lp_model *r, const lp_model *m);
void rfl_replica_free(lp_model *r);
/* The spec encoders on b (rng: dropout or NULL): the memories h_in, e_out and
 * the decoder's initial state hf, cf of m->lstm->a. */
int rfl_encode(lp_model *m, const lp_batch *b, lp_rng *rng, lp_err *err);
/* Teacher-forced forward of the whole loss (fills st; after it a.logits holds
 * [T,B,V], time-major) and its backward (grads += d(loss_scale x loss)). */
int rfl_forward(lp_model *m, const lp_batch *b, lp_rng *rng, lp_step_stats *st, lp_err *err);
int rfl_backward(lp_model *m, const lp_batch *b, lp_err *err);
int rfl_train_step(lp_model *m, const lp_batch *b, int64_t step, lp_rng *rng, lp_step_stats *st,
                   lp_err *err);
int rfl_eval_loss(lp_model *m, const lp_batch *b, lp_step_stats *st, lp_err *err);
/* rf_lstm_search.c: incremental decoding of the last rfl_encode's one task
 * (as rf_inc_*), search, scoring; rfl_free releases everything. */
int rfl_inc_start(lp_model *m, const uint8_t *emask, int max_hyps, int max_len, lp_err *err);
int rfl_inc_step(lp_model *m, const int32_t *tokens, int n, float *logits, lp_err *err);
int rfl_inc_reorder(lp_model *m, const int32_t *parent, int n, lp_err *err);
int rfl_search(lp_model *m, const lp_batch *b, const lp_beam_opts *o, lp_beam_result *out,
               lp_err *err);
int rfl_score(lp_model *m, const lp_batch *b, const int32_t *const *progs, const int *lens,
              int n, int latent_beam, int max_len, double *scores, lp_err *err);
void rfl_free(lp_model *m);

/* ---- test hooks (tests only) -----------------------------------------------------------
 * For the gradient checks (tests/model): they take away the max-pool's and the
 * quantiser's kinks so that finite differences match the analytic gradient.
 * Nothing outside tests sets them; they are not part of include/lpsynth.
 *  - lp_model.freeze_argmax (RobustFill): when set ([B,T*D] example indices,
 *    as the max-pool's argmax), rf_forward's max-pool selects these examples
 *    instead of the maxima (RobustFill[LSTM]: [T,B,H], its pool's layout,
 *    rf_lstm.c). The caller owns the array; replicas never copy it.
 *    It stays a field of struct lp_model (rather than, say, a table beside it)
 *    because rf_forward reads it per model and per call: a field costs one
 *    pointer, while anything outside the struct would need global state. */
/* LP: freeze = 1 makes later forwards reuse the last forward's VQ codes and
 * max-pool selections (finite differences see no kinks); 0 releases. */
void lpm_set_freeze(lp_model *m, int freeze);

#endif
