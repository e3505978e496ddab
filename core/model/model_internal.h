/* Private to lpsynth_model (and its tests): the model object, RobustFill's
 * forward/backward and the incremental decoder used by beam search. */
#ifndef LPSYNTH_MODEL_INTERNAL_H
#define LPSYNTH_MODEL_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "lpsynth/engine.h"
#include "lpsynth/model.h"

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
  /* Tests only: when set ([B,T*D] example indices, as the max-pool's argmax),
   * the decoder's max-pool selects these examples instead of the maxima, so
   * finite differences see no kinks where two examples tie. */
  const int32_t *freeze_argmax;
  /* Latent Programmer parts (kind LP_MODEL_LP; NULL for RobustFill): see lp.c. */
  struct lpm *lp;
  /* Data-parallel training (lp_model_set_threads): n_workers >= 1; worker w > 0
   * is replica[w - 1], a shallow copy sharing params, layout and block offsets
   * but with its own gradients and activations (is_replica = 1). */
  int n_workers;
  struct lp_model **replica;
  int is_replica;
};

/* Validates the ids and shapes of a batch against the model (message in err). */
int rf_check_batch(const lp_model *m, const lp_batch *b, int need_prog, lp_err *err);
/* Teacher-forced forward of the whole batch (rng: dropout or NULL); fills
 * st (loss, accuracy, tokens). After it, m->acts.logits holds [B*T,V]. */
int rf_forward(lp_model *m, const lp_batch *b, lp_rng *rng, lp_step_stats *st, lp_err *err);
/* Backward of the last rf_forward on the same batch b (grads += ...; the
 * caller zeroes them). */
int rf_backward(lp_model *m, const lp_batch *b, lp_err *err);
/* Runs only the spec encoder(s) on b (rng NULL). The decoder's memory is then
 * rf_memory(): [B*E,S,D] with key mask [B*E,S]. */
int rf_encode(lp_model *m, const lp_batch *b, lp_rng *rng, lp_err *err);
const float *rf_memory(const lp_model *m, int *S, const uint8_t **mask);

/* ---- parts of RobustFill the LP (lp.c) runs as well ---- */
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

/* Incremental decoding of ONE task (the last rf_encode must have had B = 1):
 * rf_inc_start prepares the caches for up to max_hyps hypotheses of up to
 * max_len tokens; rf_inc_step feeds one token per hypothesis (n hypotheses,
 * tokens[n]) at the next position and writes logits[n,V]; rf_inc_reorder
 * makes hypothesis i continue old hypothesis parent[i] (i < n). */
int rf_inc_start(lp_model *m, const uint8_t *emask, int max_hyps, int max_len, lp_err *err);
int rf_inc_step(lp_model *m, const int32_t *tokens, int n, float *logits, lp_err *err);
int rf_inc_reorder(lp_model *m, const int32_t *parent, int n, lp_err *err);
void rf_inc_release(lp_model *m);

/* ---- batched beam search (search.c): RobustFill's search and both levels of the
 * LP's (lp_search.c) run this one loop over a decoder given as callbacks. */
/* Checks the search arguments (beam in [1, 4096], one task, *max_len <= 0 ->
 * the model's max_program_len, at most 65536, alpha in [0, 10]) and the batch,
 * then encodes it (rf_encode). */
int rf_search_prep(lp_model *m, const lp_batch *b, int beam, int *max_len, float alpha,
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
/* Monotonic seconds. */
double lp_now(void);
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
/* lp_model_score's checks of the programs (ids, EOS last, length). */
int rf_score_check(const lp_model *m, const int32_t *const *progs, const int *lens, int n,
                   int max_len, lp_err *err);
/* out = the n finished programs (score = key), taking their sequences; frees
 * fins in any case. */
int rf_beam_result(rf_beam_fin *fins, int n, lp_beam_result *out, const char *who, lp_err *err);

/* ---- Latent Programmer (core/model/lp.c) --------------------------------------------
 * An LP model is a RobustFill model (spec encoder, program embedding "dec.embed",
 * spec-attending decoder stack "dec.block<i>"/"dec.ln", output layer "out.w/b")
 * plus the parts of struct lpm. lp_model_new / _free / _state / _train_step /
 * _eval_loss / _search route here when cfg.kind == LP_MODEL_LP. */
struct lpm;
/* Adds the LP tensors to m->L and allocates m->lp (state initialised from seed). */
int lpm_build(lp_model *m, uint64_t seed, lp_err *err);
void lpm_free(lp_model *m);
float *lpm_state(lp_model *m, size_t *n);
int lpm_train_step(lp_model *m, const lp_batch *b, int64_t step, lp_rng *rng, lp_step_stats *st,
                   lp_err *err);
int lpm_eval_loss(lp_model *m, const lp_batch *b, lp_step_stats *st, lp_err *err);
/* Data-parallel replicas (robustfill.c's lp_model_set_threads): r is a shallow
 * copy of m; gives it its own LP activations, sharing everything else. */
int lpm_replica_init(lp_model *r, const lp_model *m);
void lpm_replica_free(lp_model *r);
/* *v = tasks [t0, t1) of b, a view (no copy) with b's padded lengths. */
void rf_batch_view(lp_batch *v, const lp_batch *b, int t0, int t1);
/* A data-parallel step of m->n_workers workers (robustfill.c, lp.c): worker w
 * runs on model w (m, then m->replica[w - 1]) with tasks [B*w/W, B*(w+1)/W)
 * of the batch, view[w], its own rng (when use_rng), stats, error and status. */
typedef struct rf_par {
  lp_model *m;
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
/* lp_model_score for LP models (lp_search.c): the best over L codes. The
 * batch is encoded already (rf_search_prep). */
int lpm_score(lp_model *m, const lp_batch *b, const int32_t *const *progs, const int *lens, int n,
              int L, int max_len, double *scores, lp_err *err);
int lpm_search(lp_model *m, const lp_batch *b, const lp_beam_opts *o, lp_beam_result *out,
               lp_err *err);
/* Forward (and, when backward != 0, backward into the zeroed-by-caller grads)
 * of the whole LP loss without touching the EMA state. step selects the phase
 * (step <= pretrain_steps: pretraining). */
int lpm_loss(lp_model *m, const lp_batch *b, int64_t step, lp_rng *rng, int backward,
             lp_step_stats *st, lp_err *err);
/* Tests: freeze = 1 makes later forwards reuse the last forward's VQ codes and
 * max-pool selections (finite differences see no kinks); 0 releases. */
void lpm_set_freeze(lp_model *m, int freeze);
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
typedef struct lpm_view {
  int K, l, W, Vl;
  size_t lat_emb, lat_w, lat_b;
  const lp_dec_block *lat, *zdec;
  lp_ln_off lat_ln, zdec_ln;
  size_t cat_w, cat_b;
  const float *codebook;
} lpm_view;
void lpm_get_view(const lp_model *m, lpm_view *v);

/* Shared by the model sources. TRYE returns from a function that has an
 * `lp_err *err` in scope, with a message naming the failed step. */
#define TRYE(expr, what)                                                      \
  do {                                                                        \
    int rc_ = (expr);                                                         \
    if (rc_ != LP_OK)                                                         \
      return lp_err_set(err, rc_, "%s failed (%s)", what,                     \
                        rc_ == LP_ENOMEM ? "out of memory" : "bad arguments"); \
  } while (0)

typedef struct carve {
  char *base;
  size_t used;
} carve;

/* Arena layout: take() hands out 64-byte-aligned pieces of c->base; with
 * base == NULL it only adds up the size needed (first pass). */
static inline void *take(carve *c, size_t bytes) {
  void *p = c->base ? c->base + c->used : NULL;
  c->used += (bytes + 63u) & ~(size_t)63u;
  return p;
}

#endif
