/* lpsynth models: configuration, batches of tokenised tasks, the model object
 * (RobustFill[Transformer] and the Latent Programmer, cfg.kind), training
 * steps, incremental decoding and beam search (the LP's two-level search
 * included). Library lpsynth_model (core/model), on lpsynth_engine and the
 * runtime. Generic: no domain knowledge; a domain
 * plugin turns text into ids (see runtime.h) and decides consistency.
 *
 * OWNERSHIP: *_new returns an object the caller frees with the matching
 * *_free (free(NULL) is a no-op). Pointers returned by accessors are borrowed
 * from the object and valid until it is freed. Structs passed in are the
 * caller's; nothing keeps a pointer to them after the call returns.
 * ERRORS: negative LP_E* codes (plugin.h) with a message in lp_err; never exit.
 */
#ifndef LPSYNTH_MODEL_H
#define LPSYNTH_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "lpsynth/engine.h"
#include "lpsynth/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------- */
/* Configuration: a small text file of `key = value` lines, '#' comments.  */
/* Every key is documented in models/CONFIG.md; unknown keys are errors.   */

/* RobustFill[Transformer], the Latent Programmer, RobustFill[LSTM], and the
 * paper's ablations of the LP with a continuous latent: Latent RobustFill [AE]
 * and [VAE] (appended: a reader that does not know a kind refuses its configs
 * and checkpoints at the `model = ` line). */
enum lp_model_kind {
  LP_MODEL_ROBUSTFILL = 0,
  LP_MODEL_LP = 1,
  LP_MODEL_RF_LSTM = 2,
  LP_MODEL_LATENT_AE = 3,
  LP_MODEL_LATENT_VAE = 4
};
#define LP_MODEL_KINDS 5
/* The kinds built on the LP's parts (program encoder, latent predictor,
 * latent decoder): lp, latent-ae, latent-vae. */
#define LP_MODEL_HAS_LATENT(k) \
  ((k) == LP_MODEL_LP || (k) == LP_MODEL_LATENT_AE || (k) == LP_MODEL_LATENT_VAE)

/* The name of a kind in configs (`model = robustfill | lp | robustfill-lstm |
 * latent-ae | latent-vae`), NULL for a value that is no kind. */
const char *lp_model_kind_name(int kind);
/* The kind named s[0..len), or -1. */
int lp_model_kind_parse(const char *s, size_t len);

typedef struct lp_model_cfg {
  int kind;            /* model = robustfill | lp | robustfill-lstm | latent-ae | latent-vae */
  /* architecture (paper, string domain: 128 / 512 / 3 / 4). RobustFill[LSTM]:
   * d_model is the embedding size, d_ff the LSTMs' hidden size, one LSTM layer
   * per encoder and in the decoder (enc_layers = dec_layers = 1), n_heads and
   * attn_dropout unused. */
  int d_model;         /* d_model = 128: embedding and residual width */
  int d_ff;            /* d_ff = 512: feed-forward hidden width ("hidden size") */
  int n_heads;         /* n_heads = 4 */
  int n_enc_layers;    /* enc_layers = 3: spec encoder blocks (per part) */
  int n_dec_layers;    /* dec_layers = 3: program decoder blocks */
  float dropout;       /* dropout = 0.1 */
  float attn_dropout;  /* attn_dropout = 0.1 */
  int max_spec_len;    /* max_spec_len = 128: longest spec part in tokens */
  int max_program_len; /* max_program_len = 128: longest program incl. EOS */
  /* optimisation */
  int batch_size;      /* batch_size = 32 tasks */
  float lr;            /* lr = 1e-3 (peak) */
  int64_t warmup_steps;/* warmup = 16000 */
  float beta1, beta2, adam_eps, weight_decay; /* 0.9 0.98 1e-9 0.1 */
  float clip_norm;     /* clip_norm = 1.0 (<= 0: no clipping) */
  int64_t checkpoint_every; /* checkpoint_every = 1000 steps */
  /* Latent Programmer (kind = lp; latent-ae and latent-vae use latent_l,
   * w_ae, w_latent, w_e2e); ignored otherwise */
  int latent_K;        /* latent_k = 40 codes */
  int latent_l;        /* latent_l = 2: 2^l program tokens per latent */
  float commit_beta;   /* commit_beta = 0.25 */
  float ema_decay;     /* ema_decay = 0.99 */
  float ema_eps;       /* ema_eps = 1e-5 */
  int64_t pretrain_steps; /* pretrain_steps = 10000 */
  float w_ae, w_latent, w_e2e; /* loss weights, 1 1 1 */
  int dead_code_restart;  /* dead_code_restart = 0 (1: restart dead codes) */
  int kmeans_init;        /* kmeans_init = 0 (1: k-means codebook at the first
                             step and at the first step after pretraining) */
  int vq_norm;            /* vq_norm = 0 (1: quantise LN(z), z layer-normalised
                             without gain or bias, instead of z) */
  int ref_pretrain;       /* ref_pretrain = 0 (1: the reference implementation's
                             pretraining: the AE pass decodes the quantised
                             latents without the spec; codebook frozen) */
  float kl_weight;        /* kl_weight = 1 (latent-vae: weight of the KL term,
                             inside the w_ae term) */
} lp_model_cfg;

/* Defaults above for a kind. */
void lp_model_cfg_default(lp_model_cfg *c, int kind);
/* Parse text (starting from the defaults of `model = ...` if given, else of
 * *c's kind). `origin` names the file in messages: "FILE:LINE: unknown key
 * \"x\"", "FILE:LINE: d_model must be a positive multiple of n_heads". */
int lp_model_cfg_parse(lp_model_cfg *c, const char *text, size_t len, const char *origin,
                       lp_err *err);
/* Validate ranges and relations (LP_EINVAL with a message). */
int lp_model_cfg_check(const lp_model_cfg *c, lp_err *err);
/* Canonical text of every key (appended to out); parse(to_text(c)) == c. */
int lp_model_cfg_to_text(const lp_model_cfg *c, lp_buf *out);

/* ---------------------------------------------------------------------- */
/* Batches: B tasks, E example slots each, ids padded with the vocab's pad. */

typedef struct lp_batch {
  int B, E;          /* tasks, example slots per task */
  int n_parts;       /* 1 (text spec) or 2 (input/output examples) */
  int T_spec[2];     /* padded length of part 0 and part 1 */
  int32_t *spec[2];  /* [B,E,T_spec[p]] ids of part p (pad = spec vocab pad) */
  uint8_t *emask;    /* [B,E] 1 = example present */
  int T_prog;        /* padded program length incl. EOS (0 at inference) */
  int32_t *prog;     /* [B,T_prog] program ids ending with EOS, then pad */
  int32_t *prog_enc; /* [B,T_prog] what the program encoder reads (anonymised), or NULL = prog */
  /* owned storage (lp_batch_free releases it) */
  size_t cap_spec[2], cap_prog, cap_emask;
} lp_batch;

void lp_batch_free(lp_batch *b);

/* Fill a batch from n tasks (each program ids incl. EOS + examples as the
 * flat lp_task layout), truncating nothing: a spec part or program longer than
 * the config's maxima is an error naming the task (index) and its length.
 * spec_pad / prog_pad are the vocabularies' pad ids. The ids of spec parts
 * come from the caller (already encoded): spec_ids[t][e*n_parts+p]. */
typedef struct lp_task_ids {
  const int32_t *prog; size_t prog_len;       /* may be NULL at inference */
  const int32_t *prog_enc; size_t prog_enc_len; /* NULL = same as prog */
  size_t n_examples;
  const int32_t *const *spec; const size_t *spec_len; /* [n_examples * n_parts] */
} lp_task_ids;
int lp_batch_fill(lp_batch *b, const lp_task_ids *tasks, int n, int n_parts, int32_t spec_pad,
                  int32_t prog_pad, const lp_model_cfg *c, lp_err *err);

/* dst = tasks[0..n) of b (indices into b, in that order), each part padded to
 * the longest sequence among those tasks only (a re-padded copy: what a
 * length-bucketed step runs on). Rows of b must be padded at their end with
 * spec_pad / prog_pad. dst keeps its storage between calls (lp_batch_free);
 * dst != b. LP_OK, LP_EINVAL, LP_ENOMEM. */
int lp_batch_subset(lp_batch *dst, const lp_batch *b, const int *tasks, int n, int32_t spec_pad,
                    int32_t prog_pad, lp_err *err);

/* ---------------------------------------------------------------------- */
/* The model.                                                              */

typedef struct lp_model lp_model;

/* A new model with parameters initialised from seed. spec/prog: the domain's
 * vocabularies (sizes and special ids). */
lp_model *lp_model_new(const lp_model_cfg *c, const lp_vocab_info *spec,
                       const lp_vocab_info *prog, int n_parts, uint64_t seed, lp_err *err);
void lp_model_free(lp_model *m);
const lp_model_cfg *lp_model_config(const lp_model *m);
const lp_layout *lp_model_layout(const lp_model *m);
size_t lp_model_num_params(const lp_model *m);
float *lp_model_params(lp_model *m);  /* [num_params], borrowed, writable */
float *lp_model_grads(lp_model *m);   /* [num_params], borrowed */
/* Non-gradient state that a checkpoint must keep (the LP's EMA codebook
 * statistics); n = 0 for RobustFill. Borrowed, writable. */
float *lp_model_state(lp_model *m, size_t *n);

typedef struct lp_step_stats {
  double loss;        /* what backward differentiated (sum of the terms) */
  double loss_prog;   /* program cross-entropy (RobustFill: == loss) */
  double loss_latent, loss_commit, loss_e2e; /* LP terms, 0 otherwise */
  double token_acc;   /* teacher-forced next-token accuracy on non-pad tokens */
  int n_tokens;       /* non-pad target tokens */
  double codebook_perplexity; int dead_codes; /* LP only */
  double latent_acc;  /* LP: teacher-forced accuracy of the latent predictor on
                         its targets (the codes and EOS) */
} lp_step_stats;

/* Zero the gradients, forward the batch, backward: grads = d loss / d params.
 * step (1-based) lets the LP switch phases; rng drives dropout (NULL = no
 * dropout, deterministic). */
int lp_model_train_step(lp_model *m, const lp_batch *b, int64_t step, lp_rng *rng,
                        lp_step_stats *st, lp_err *err);
/* Uses n cores for train_step: n data-parallel workers, each running forward
 * and backward on its share of the batch's tasks with one-thread OpenBLAS
 * (lp_engine_parallel; worker w > 0 has its own activations and gradients,
 * sharing the parameters). RobustFill: the gradients are combined weighted by
 * target tokens, so the loss differentiated is the token mean of one worker.
 * LP: weighted by tasks (its terms have different normalisers; exact when the
 * shares are alike) and one EMA codebook update with the whole batch. Equal to
 * one worker up to float rounding, except that dropout masks differ (each
 * worker has its own stream drawn from rng). n = 1: one-thread OpenBLAS. A
 * batch with fewer tasks than workers runs on one. LP_OK, LP_EINVAL, LP_ENOMEM. */
int lp_model_set_threads(lp_model *m, int n, lp_err *err);

/* Length bucketing of train steps: the batch runs as chunks of k tasks, each
 * padded only to its own longest sequences instead of the batch's, forward
 * and backward chunk by chunk with each chunk's gradient weighted by its share
 * of the batch's target tokens (k = 0: one padded pass per worker share, the
 * old way). The loss is the same function of the same tasks either way, up to
 * float rounding (BENCHMARKS.md: the speed it buys). With k > 1 tasks
 * are grouped by length first. Chunks go to the workers by estimated cost
 * (deterministic), each chunk with its own dropout stream drawn from the
 * step's rng in chunk order. Default LP_CHUNK_DEFAULT. LP_OK, LP_EINVAL. */
#define LP_CHUNK_DEFAULT 1
int lp_model_set_chunk(lp_model *m, int tasks_per_chunk, lp_err *err);

/* Where a train step's time goes, added up over steps while profiling is on
 * (all workers together, so with T workers the phases sum to about T times
 * the wall time). FLOPs are counted from the shapes of the products and
 * attention actually run (forward and backward: 3x the forward's), against
 * the same count on the non-pad positions only. RobustFill only: the LP's
 * steps add their time to `other` and count no FLOPs. */
typedef struct lp_model_profile {
  double enc_fwd;    /* spec encoder(s) forward, seconds */
  double dec_fwd;    /* program decoder forward */
  double loss_fwd;   /* max-pool, output layer, softmax and cross-entropy */
  double bwd;        /* the whole backward */
  double other;      /* LP steps (not split) */
  double flops_run, flops_useful;
  long long chunks;  /* forward passes run */
} lp_model_profile;
/* Turns profiling on (zeroing the counters) or off, for m and its workers. */
void lp_model_profile_enable(lp_model *m, int on);
/* *out = the counters summed over m's workers (zeros when m is NULL). */
void lp_model_profile_get(const lp_model *m, lp_model_profile *out);

/* Forward only, no dropout: the same loss as train_step would report. */
int lp_model_eval_loss(lp_model *m, const lp_batch *b, lp_step_stats *st, lp_err *err);

/* ---------------------------------------------------------------------- */
/* Search.                                                                 */

typedef struct lp_hyp {
  int32_t *prog; int prog_len;      /* ids incl. EOS (malloc'd, freed by lp_beam_free) */
  float score;                      /* log-probability (length-normalised if asked) */
  int32_t *latent; int latent_len;  /* LP: the latent code used (codes 0..K-1), else NULL */
  float latent_score;
} lp_hyp;

/* Execution guidance for search (optional). prune(ctx, ids, n, &ok): ids[0..n)
 * is a candidate prefix (a finished program when its last id is EOS); *ok = 0
 * when no completion of it can be consistent with the task's examples (a
 * finished program: when it is not consistent). A non-zero return is an
 * error (the message in err) and stops the search. */
typedef int (*lp_prune_fn)(void *ctx, const int32_t *ids, int n, int *ok, lp_err *err);
/* signature(ctx, ids, n, &sig): a hash of what the finished program ids[0..n)
 * does (e.g. of its outputs on the examples); finished programs with equal
 * signatures are one answer (the best-scored is kept). */
typedef int (*lp_signature_fn)(void *ctx, const int32_t *ids, int n, uint64_t *sig, lp_err *err);

typedef struct lp_beam_opts {
  int beam;          /* B programs returned (at most) */
  int latent_beam;   /* LP: L latent beams (0 = floor(sqrt(B))) */
  int max_len;       /* longest program incl. EOS (0 = config max_program_len) */
  float len_alpha;   /* length normalisation exponent (0 = none): score / len^alpha */
  /* appended: execution-guided search (all optional; zero = plain beam search) */
  lp_prune_fn prune;         /* drop candidates before they take a beam slot */
  lp_signature_fn signature; /* one answer per signature among finished programs */
  void *ctx;                 /* passed to prune and signature */
  double time_limit;         /* seconds (<= 0: none); the search returns what it has then */
} lp_beam_opts;

typedef struct lp_beam_result {
  lp_hyp *hyps; int n;              /* best first */
  int timed_out;                    /* 1 when the time limit stopped the search */
} lp_beam_result;
void lp_beam_free(lp_beam_result *r);

/* Beam search for ONE task (batch b with B = 1; prog ignored, except by the
 * kinds latent-ae / latent-vae: as the paper's Latent RobustFill baselines they
 * are given the true program length, that of b's program, which b must then
 * carry - LP_EINVAL otherwise; the same for lp_model_score). Beams are
 * batched through the decoder and keys/values are cached, so no prefix is
 * recomputed. Returns the best hypotheses that ended with EOS (best first). */
int lp_model_search(lp_model *m, const lp_batch *b, const lp_beam_opts *o,
                    lp_beam_result *out, lp_err *err);
/* With o->prune set (execution-guided search): at every step the candidates
 * are taken best first, and one that prune refuses is dropped before it
 * takes a beam slot, so the beam keeps B live prefixes while there are
 * candidates. Only programs prune accepts finish. For LP models both levels
 * are guided: latent codes are tried in the latent predictor's order (a beam
 * of B codes) until L of them have led to an accepted program (or none is
 * left). With o->signature, finished programs of equal signature are one
 * answer, and when every accepted program has the same signature (as when
 * prune accepts only consistent programs) the search stops as soon as no live
 * prefix can beat the best answer. */

/* Teacher-forced scores of n programs for ONE task (batch b with B = 1):
 * scores[i] = log p(progs[i] | spec) (ids incl. EOS; lens[i] of them), the
 * sum over tokens, batched through the cached decoder. LP models: the best
 * over the latent beam's codes of (latent log-probability + program
 * log-probability) over a latent beam of latent_beam codes (0: 3). A program longer than
 * the model's ma_program_len or with ids outside the vocabulary is an error. */
int lp_model_score(lp_model *m, const lp_batch *b, const int32_t *const *progs, const int *lens,
                   int n, int latent_beam, double *scores, lp_err *err);

/* ---------------------------------------------------------------------- */
/* Training across processes (MPI or any other transport).                 */

/* Bits of lp_comm.agree's flags. */
#define LP_COMM_FAIL 1 /* this rank failed (its message in msg) */
#define LP_COMM_STOP 2 /* this rank wants to stop (lp_train_run: a signal, the time limit) */

/* A communicator of `size` processes ("ranks"), this one being `rank`
 * (0 <= rank < size), given by the caller (the lpsynth CLI implements it with
 * MPI; the model library never calls MPI itself). Every callback is a
 * collective: all ranks call it, in the same order, with the same n. Each
 * returns LP_OK or a negative LP_E* code (the transport failed: the ranks may
 * be out of step, and the caller should end the job).
 *   allreduce_sum_f32/_f64: buf[0..n) becomes the element-wise sum over ranks
 *     of every rank's buf[0..n), the same on every rank.
 *   agree: *flags (the LP_COMM_* bits, and any other bits the caller uses,
 *     but not the sign bit) becomes the bitwise OR over ranks of every rank's
 *     *flags; when the result has LP_COMM_FAIL, *code (a negative LP_E* code)
 *     and msg (cap bytes, NUL-terminated; on input this rank's when it passed
 *     LP_COMM_FAIL) become those of the lowest-numbered failing rank, on every
 *     rank (cap is the same on every rank).
 * user is passed to every callback. OWNERSHIP: lp_model_set_comm and
 * lp_train_run copy the struct; `user` is the caller's and must outlive its
 * use (until the model is freed or its comm set to NULL, or lp_train_run
 * returns). */
typedef struct lp_comm {
  int rank, size;
  int (*allreduce_sum_f32)(void *user, float *buf, size_t n);
  int (*allreduce_sum_f64)(void *user, double *buf, size_t n);
  int (*agree)(void *user, int *flags, int *code, char *msg, size_t cap);
  void *user;
} lp_comm;

/* Makes lp_model_train_step a collective step of c->size ranks (c NULL or
 * c->size == 1: one process, the default). Every rank holds the same
 * parameters and state and calls train_step with the same batch, step and
 * rng state; the step's chunk plan (lp_model_set_chunk) is made over
 * size x threads "virtual workers" (every rank must use the same threads and
 * chunk settings), and rank r runs the chunks of workers r*T .. r*T+T-1 only.
 * So task i of the batch runs on the rank the plan gives it (not i mod size),
 * with the dropout stream it would have in one process, and the union is the
 * whole batch. The gradients are then summed over ranks (MPI_Allreduce), as
 * are the chunks' statistics and, for the LP, the valid encoder outputs the
 * EMA codebook update takes (each task's at its own place), so every rank
 * ends the step with the same gradients, statistics and codebook: those of
 * one process with size x T workers, up to float rounding (with 2 ranks,
 * bitwise). Chunk 0 (lp_model_set_chunk) means one chunk per virtual worker
 * here. An error on any rank (found before the gradients are summed) is
 * returned on every rank with that rank's message ("rank R: ..."), agreed
 * through c->agree, so no rank waits forever. LP_OK, LP_EINVAL. */
int lp_model_set_comm(lp_model *m, const lp_comm *c, lp_err *err);

#ifdef __cplusplus
}
#endif
#endif
