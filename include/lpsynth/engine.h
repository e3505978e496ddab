/* lpsynth generic neural engine: float32 tensor ops with forward and backward,
 * Transformer blocks, parameter layouts and Adam. No domain knowledge lives
 * here. (The finite-difference gradient checker and the op table that checks
 * every op are test code: tests/engine/gradcheck.h.)
 *
 * DESIGN (after karpathy/llm.c train_gpt2.c and ggml's op table)
 *
 * Tensors. A tensor is a plain `float *` to row-major, contiguous float32 data;
 * its shape is given by int arguments and written in comments as [B,T,D]
 * (last index fastest). Token ids are int32_t, masks are uint8_t (1 = valid /
 * keep, 0 = masked). Sizes of whole buffers are size_t.
 *
 * Forward / backward pairs. Every op is a pair lp_<op>_forward and
 * lp_<op>_backward. Forward writes (=) its outputs and fills the activations
 * the backward needs (named in each comment: mean/rstd of a layer norm, the
 * attention probabilities, a dropout mask, ...). Backward ACCUMULATES (+=)
 * into every gradient it is given: input gradients (dx) and parameter
 * gradients (dW, db). So one parameter used twice, or a tensor feeding two
 * consumers, gets the sum without extra code; the caller zeroes gradient
 * buffers once per step (memset 0 of the whole gradient buffer). A gradient
 * pointer that is NULL is skipped (no work for that input). Unless a comment
 * says otherwise, an output must not alias an input, and dx must not alias dy;
 * element-wise ops (posenc, gelu, dropout, residual) allow out == in.
 *
 * Parameters. A model owns ONE contiguous float array of parameters and ONE
 * parallel array of gradients of the same size (same offsets). An lp_layout
 * records every parameter tensor as (name, shape, offset, init, decay) and
 * gives the total size; blocks (lp_enc_block, lp_dec_block) register their
 * parameters in a layout under a name prefix and keep only offsets, and their
 * forward/backward take the base pointers `params` and `grads`. Adam works on
 * the whole arrays at once.
 *
 * Activations. Primitive ops take caller-allocated activation buffers. Blocks
 * keep theirs (and their backward scratch) in an opaque lp_*_acts object
 * sized for a maximum batch shape; a forward with a smaller shape reuses it.
 * A block's backward uses what its last forward stored (inputs are copied, so
 * the caller may overwrite or reuse its input buffer after forward).
 *
 * Dropout and randomness. lp_rng is a small deterministic generator
 * (splitmix64) whose whole state is one uint64_t, so it can be checkpointed.
 * Ops that drop take an lp_rng *; a NULL rng (or rate 0) means evaluation
 * mode: no dropout, no randomness consumed. The order in which an op consumes
 * random numbers is fixed, so the same seed gives the same masks.
 *
 * Errors. Library code never prints, exits or aborts. Functions that can fail
 * return int: LP_OK (0) or a negative code of <lpsynth/plugin.h> (LP_EINVAL for
 * bad shapes, NULL required pointers, ids out of range; LP_ENOMEM when an
 * allocation fails). On failure the outputs are unspecified but no memory is
 * leaked. Constructors (_new) return NULL on failure.
 *
 * Ownership. Objects returned by *_new are owned by the caller and released by
 * the matching *_free; *_free(NULL) is a no-op. Pointers returned by accessors
 * (lp_layout_param, lp_adam_m ...) are borrowed: they stay
 * valid until the owning object is freed (or, for a layout, until the next
 * lp_layout_add), and static tables live for the whole program. All buffers
 * passed in are owned by the caller; the library keeps no pointer to them
 * after a call returns.
 *
 * Threads. Two ways to use several cores, never both at full width: OpenBLAS
 * threads (lp_engine_set_threads(): large matrix products are split, the rest
 * is single-threaded), or data-parallel workers (lp_engine_parallel(): each
 * worker runs a whole forward/backward on its share of the batch with
 * one-thread OpenBLAS; models use it through lp_model_set_threads()).
 * Distinct objects may be used from distinct threads, but OpenBLAS's thread
 * count is process-wide.
 *
 * Numerics: float32 storage, double accumulation in reductions (layer norm
 * statistics, softmax sums, losses, gradient norms). GELU is the tanh
 * approximation (as flax nn.gelu, the reference's default).
 */
#ifndef LPSYNTH_ENGINE_H
#define LPSYNTH_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "lpsynth/plugin.h" /* LP_OK, LP_EINVAL, LP_ENOMEM ... */

#ifdef __cplusplus
extern "C" {
#endif

#define LP_ENGINE_VERSION 1

/* ------------------------------------------------------------------------ */
/* Threads                                                                   */

/* Sets the number of OpenBLAS threads (n >= 1). LP_OK or LP_EINVAL. */
int lp_engine_set_threads(int n);
/* The number of OpenBLAS threads now in use. */
int lp_engine_get_threads(void);

#define LP_ENGINE_MAX_WORKERS 64
/* Data parallelism: runs fn(ctx, w) for w = 0 .. n-1 at once, w = 0 on the
 * calling thread and the others on threads of their own, and returns when all
 * have finished (n = 1: a plain call). While they run OpenBLAS is set to one
 * thread, so the two pools never compete (restored afterwards). fn must touch
 * only what worker w owns (its activations, its gradient buffer) plus shared
 * read-only data. If a thread cannot be started its share runs on the calling
 * thread afterwards (same result, slower). LP_OK, or LP_EINVAL when n is not in
 * 1..LP_ENGINE_MAX_WORKERS or fn is NULL. Not reentrant: one call at a time.
 * The workers run with the calling thread's precision (lp_engine_precision). */
int lp_engine_parallel(int n, void (*fn)(void *ctx, int w), void *ctx);

/* ------------------------------------------------------------------------ */
/* Matrix products and their precision                                       */

/* Precision of the matrix products of the CALLING THREAD (thread-local; a new
 * thread starts in LP_PREC_FP32, and lp_engine_parallel gives its workers the
 * caller's). LP_PREC_FP32: every product is cblas_sgemm, bit for bit.
 * LP_PREC_BF16: products big enough to pay round both operands to bfloat16
 * (round to nearest even, NaN stays NaN, denormals flushed to zero) and
 * accumulate in float32 (AVX512_BF16); each product term then has a relative
 * error of about 2^-7. Gradient checks and inference keep the default fp32.
 * The environment variable LPSYNTH_PRECISION=fp32 (read once, at the first
 * use) turns bf16 off for the whole process. */
typedef enum lp_precision { LP_PREC_FP32 = 0, LP_PREC_BF16 = 1 } lp_precision;

/* Sets the calling thread's precision; returns the precision now in effect:
 * LP_PREC_BF16 only when asked for and lp_engine_has_bf16(), otherwise
 * LP_PREC_FP32. */
lp_precision lp_engine_set_precision(lp_precision p);
/* The calling thread's precision. */
lp_precision lp_engine_precision(void);
/* 1 when bf16 products can run in this process: the CPU and OS support
 * AVX512_BF16 (checked at run time with cpuid / XGETBV) and LPSYNTH_PRECISION
 * is not "fp32"; 0 otherwise. */
int lp_engine_has_bf16(void);

/* C[M,N] = alpha op(A)[M,K] op(B)[K,N] + beta C, row-major: exactly
 * cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, ...).
 * op(A) = A (stored [M,K], lda >= K) or A^T (trans_a != 0: stored [K,M],
 * lda >= M); likewise B ([K,N], ldb >= N, or [N,K], ldb >= K); ldc >= N.
 * beta == 0 does not read C. C must not overlap A or B. All buffers are the
 * caller's. In LP_PREC_FP32 (the default) this IS cblas_sgemm (bit for bit,
 * OpenBLAS's threads). In LP_PREC_BF16 a product of at least
 * lp_gemm_bf16_min_macs() multiply-adds (M*N*K; and alpha != 0) runs the bf16
 * kernel of lp_gemm_bf16 on the calling thread alone (use data-parallel
 * workers, lp_engine_parallel, for several cores); smaller ones, and any case
 * the kernel cannot take (no memory for its packing buffer), go to
 * cblas_sgemm. Thread-safe. */
void lp_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
             int lda, const float *B, int ldb, float beta, float *C, int ldc);
/* The bf16 kernel itself, whatever the size and the thread's precision (tests,
 * benchmarks). Same arguments as lp_gemm, M, N, K >= 1. Packs op(A) and op(B)
 * to bf16 in a buffer of the calling thread (allocated once, grown when a
 * bigger product needs it, freed when the thread exits or by
 * lp_gemm_release). LP_OK; LP_EINVAL (bad sizes, NULL pointer); LP_EUNSUP
 * when !lp_engine_has_bf16(); LP_ENOMEM. C is untouched on failure. */
int lp_gemm_bf16(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                 int lda, const float *B, int ldb, float beta, float *C, int ldc);
/* Frees the calling thread's packing buffer now (it is grown again when
 * needed). Worker threads' buffers go when the threads exit. */
void lp_gemm_release(void);
/* The size (M*N*K multiply-adds) from which lp_gemm runs bf16, chosen by
 * measurement (bench/bench_gemm --sweep, BENCHMARKS.md) against the sgemm
 * kernel OpenBLAS runs here: 8192 (e.g. 16 x 16 x 32) when it is an AVX2
 * kernel (Haswell, Zen: bf16 is 1.4-3x faster already at 20 x 20 x 32), 1e5
 * (about 60 x 32 x 60) when it is an AVX-512 one (SkylakeX, Cooperlake,
 * SapphireRapids, e.g. OPENBLAS_CORETYPE unset on a Zen 4/5), below which that
 * kernel keeps up with bf16. */
double lp_gemm_bf16_min_macs(void);

/* ------------------------------------------------------------------------ */
/* Deterministic random numbers (splitmix64). The struct is the whole state.  */

typedef struct lp_rng {
  uint64_t state;
} lp_rng;

void lp_rng_seed(lp_rng *r, uint64_t seed);
uint64_t lp_rng_next(lp_rng *r);
/* Uniform in [0, 1), 24 random bits. */
float lp_rng_uniform(lp_rng *r);
/* Standard normal (Box-Muller, one value per call). */
float lp_rng_normal(lp_rng *r);

/* ------------------------------------------------------------------------ */
/* Parameter layout: names, shapes and offsets of all parameter tensors of a  */
/* model inside one float array.                                             */

#define LP_MAX_DIMS 4
#define LP_PARAM_NAME_MAX 96

enum lp_init_kind {
  LP_INIT_ZEROS = 0,
  LP_INIT_ONES = 1,
  LP_INIT_NORMAL = 2,        /* N(0, scale^2) */
  LP_INIT_UNIFORM = 3,       /* U(-scale, scale) */
  LP_INIT_XAVIER_UNIFORM = 4 /* U(-a, a), a = scale*sqrt(6/(fan_in+fan_out)); ndim >= 2,
                                fan_in = shape[-2]*r, fan_out = shape[-1]*r,
                                r = product of the leading dims (conv taps) */
};

typedef struct lp_param_info {
  char name[LP_PARAM_NAME_MAX];
  int ndim;
  int shape[LP_MAX_DIMS];
  size_t offset; /* in floats from the start of the parameter array */
  size_t numel;
  int init;      /* enum lp_init_kind */
  float init_scale;
  int decay;     /* 1: weight decay applies (default: 1 for every tensor, as the
                    reference's flax.optim.Adam); change with lp_layout_set_decay */
} lp_param_info;

typedef struct lp_layout lp_layout;

/* New empty layout (NULL on ENOMEM). */
lp_layout *lp_layout_new(void);
void lp_layout_free(lp_layout *L);
/* Appends a tensor. name: unique, < LP_PARAM_NAME_MAX bytes; 1 <= ndim <=
 * LP_MAX_DIMS; shape[i] >= 1. Its offset (the total before the call) goes to
 * *offset_out when offset_out != NULL. LP_OK, LP_EINVAL (bad name/shape,
 * duplicate name), LP_ENOMEM. */
int lp_layout_add(lp_layout *L, const char *name, int ndim, const int *shape,
                  int init, float init_scale, size_t *offset_out);
/* Total number of floats (the size of the parameter and gradient arrays). */
size_t lp_layout_numel(const lp_layout *L);
/* Number of tensors. */
size_t lp_layout_count(const lp_layout *L);
/* Tensor i (borrowed; valid until the next lp_layout_add or free). NULL when
 * i is out of range. */
const lp_param_info *lp_layout_param(const lp_layout *L, size_t i);
/* Tensor by exact name, or NULL. Borrowed as above. */
const lp_param_info *lp_layout_find(const lp_layout *L, const char *name);
/* Sets the weight-decay flag of every tensor whose name contains `substr`
 * (all tensors when substr is NULL or ""). Returns how many were changed. */
size_t lp_layout_set_decay(lp_layout *L, const char *substr, int decay);
/* Fills params[lp_layout_numel] by each tensor's init. Each tensor draws from
 * its own stream seeded by (seed, name), so adding tensors to a layout does
 * not change the values of the others. LP_OK or LP_EINVAL. */
int lp_layout_init_params(const lp_layout *L, float *params, uint64_t seed);
/* mask[lp_layout_numel] = the tensor's decay flag, for lp_adam_step. */
int lp_layout_decay_mask(const lp_layout *L, uint8_t *mask);

/* ------------------------------------------------------------------------ */
/* Primitive ops. Shapes in comments; N = number of rows (e.g. B*T).          */

/* Embedding lookup. out[N,D] = table[ids[n], :], and 0 where ids[n] ==
 * pad_id (pad_id < 0: no padding id). ids must be in [0, V) (or pad_id).
 * Backward: dtable[ids[n], :] += dout[n, :] (pad rows get nothing). */
int lp_embedding_forward(float *out, const int32_t *ids, const float *table,
                         int N, int V, int D, int pad_id);
int lp_embedding_backward(float *dtable, const float *dout, const int32_t *ids,
                          int N, int V, int D, int pad_id);

/* Fixed sinusoidal position encoding, added: out[B,T,D] = x + PE[pos0 + t],
 * PE[p, 2j] = sin(p * w_j), PE[p, 2j+1] = cos(p * w_j),
 * w_j = exp(-2j * ln(10000) / D)   (the reference's sinusoidal_init).
 * out may equal x. pos0 >= 0 is the position of t = 0 (incremental decoding).
 * Backward: dx += dout. */
int lp_posenc_forward(float *out, const float *x, int B, int T, int D, int pos0);
int lp_posenc_backward(float *dx, const float *dout, int B, int T, int D);
/* One entry PE[pos, i] of the table above (computed in double). */
float lp_posenc_value(int pos, int i, int D);

/* Linear layer. y[N,OC] = x[N,C] W[C,OC] + b[OC]; b may be NULL (no bias).
 * Backward (cblas_sgemm): dx += dy W^T, dW += x^T dy, db += sum_n dy. */
int lp_linear_forward(float *y, const float *x, const float *W, const float *b,
                      int N, int C, int OC);
int lp_linear_backward(float *dx, float *dW, float *db, const float *dy,
                       const float *x, const float *W, int N, int C, int OC);

/* Layer norm over the last dim. y[N,C] = (x - mean) * rstd * g + b,
 * rstd = 1/sqrt(var + eps), biased variance. mean[N], rstd[N] are saved for
 * backward (may be NULL in forward when no backward follows). */
int lp_layernorm_forward(float *y, float *mean, float *rstd, const float *x,
                         const float *g, const float *b, int N, int C, float eps);
int lp_layernorm_backward(float *dx, float *dg, float *db, const float *dy,
                          const float *x, const float *mean, const float *rstd,
                          const float *g, int N, int C);

/* GELU, tanh approximation: y = x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
 * y[n] (may equal x). Backward needs the input x. */
int lp_gelu_forward(float *y, const float *x, size_t n);
int lp_gelu_backward(float *dx, const float *dy, const float *x, size_t n);

/* Softmax over the last dim: y[N,C]. Backward uses y:
 * dx += y * (dy - sum(dy * y)). */
int lp_softmax_forward(float *y, const float *x, int N, int C);
int lp_softmax_backward(float *dx, const float *dy, const float *y, int N, int C);

/* Log-softmax over the last dim: y[N,C] = x - logsumexp(x). Backward uses y:
 * dx += dy - exp(y) * sum(dy). (For beam search scores and losses.) */
int lp_log_softmax_forward(float *y, const float *x, int N, int C);
int lp_log_softmax_backward(float *dx, const float *dy, const float *y, int N, int C);

/* Residual add: y[n] = a + b (y may equal a or b). Backward: da += dy, db += dy. */
int lp_residual_forward(float *y, const float *a, const float *b, size_t n);
int lp_residual_backward(float *da, float *db, const float *dy, size_t n);

/* Concatenation along the last dim: y[N,C1+C2] = [a[N,C1], b[N,C2]].
 * Backward splits dy into da, db (+=). */
int lp_concat_forward(float *y, const float *a, const float *b, int N, int C1, int C2);
int lp_concat_backward(float *da, float *db, const float *dy, int N, int C1, int C2);

/* Inverted dropout with rate p in [0, 1): mask[n] = 1 with probability 1-p
 * (uniform >= p; 24-bit uniforms, two per lp_rng_next), y = x * mask / (1-p). y may equal x. When rng is NULL or
 * p == 0 (evaluation): y = x, no randomness is used and mask (if not NULL) is
 * set to 1. mask is required when dropping.
 * Backward: dx += dy * mask / (1-p), where p is the EFFECTIVE rate of the
 * forward (pass 0 after an evaluation forward); mask NULL means dx += dy. */
int lp_dropout_forward(float *y, uint8_t *mask, const float *x, size_t n, float p,
                       lp_rng *rng);
int lp_dropout_backward(float *dx, const float *dy, const uint8_t *mask, size_t n,
                        float p);

/* Multi-head scaled dot-product attention on projected q, k, v.
 *   q[B,Tq,H*dh], k[B,Tk,H*dh], v[B,Tk,H*dh]  (head h = columns h*dh..h*dh+dh-1)
 *   out[B,Tq,H*dh]; att[B,H,Tq,Tk] = softmax(q k^T / sqrt(dh)) (saved).
 * Masks: key_mask[B,Tk] (1 = attend; NULL = all); causal: query i sees key j
 * iff j <= i + (Tk - Tq) (so Tq < Tk continues a cached prefix). A query row
 * with no visible key gets att = 0 and out = 0.
 * Attention dropout on the probabilities is active when rng != NULL and
 * p_drop > 0: drop_mask[B,H,Tq,Tk] (required then, ignored otherwise) is
 * saved, att keeps the undropped probabilities and out = (att*mask/(1-p)) v.
 * QK^T and AV are cblas_sgemm per (batch, head) on strided head columns.
 * Backward accumulates into dq, dk, dv (each may be NULL); pass the forward's
 * drop_mask and p_drop when dropout was active, drop_mask NULL otherwise.
 * LP_OK, LP_EINVAL, LP_ENOMEM (scratch of Tq*Tk floats). */
int lp_attention_forward(float *out, float *att, uint8_t *drop_mask, const float *q,
                         const float *k, const float *v, const uint8_t *key_mask,
                         int B, int Tq, int Tk, int H, int dh, int causal,
                         float p_drop, lp_rng *rng);
int lp_attention_backward(float *dq, float *dk, float *dv, const float *dout,
                          const float *att, const uint8_t *drop_mask, const float *q,
                          const float *k, const float *v, int B, int Tq, int Tk,
                          int H, int dh, float p_drop);

/* Cross-entropy over logits[N,V] with integer targets[N]; targets equal to
 * pad_id (pad_id >= 0) are ignored. *loss = mean over non-pad rows of
 * -log softmax(logits)[target] (0 when every row is pad), in double (a float
 * would quantize it: finite differences of a float loss of ~3 are no finer
 * than 2.4e-7 / 2 eps). probs[N,V] (the
 * softmax, saved for backward) is required; losses[N] (per-row loss, 0 on pad
 * rows) may be NULL; *n_valid (may be NULL) gets the number of non-pad rows.
 * Backward: dlogits += dloss * (probs - onehot(target)) / n_valid on non-pad
 * rows. Non-pad targets must be in [0, V). */
int lp_cross_entropy_forward(double *loss, float *probs, float *losses, int *n_valid,
                             const float *logits, const int32_t *targets, int N,
                             int V, int pad_id);
int lp_cross_entropy_backward(float *dlogits, const float *probs,
                              const int32_t *targets, int N, int V, int pad_id,
                              float dloss);

/* 1-D convolution, kernel 2, stride 2, "same" padding (one zero step at the
 * end when T is odd): x[B,T,C] -> y[B,To,OC], To = ceil(T/2),
 *   y[b,t] = x[b,2t] W[0] + x[b,2t+1] W[1] + bias   (x[b,T] = 0),
 * W[2,C,OC] (flax kernel layout), bias[OC] may be NULL. sgemm per batch row.
 * Backward: dx, dW, db accumulate (each may be NULL). */
int lp_conv1d_s2_forward(float *y, const float *x, const float *W, const float *bias,
                         int B, int T, int C, int OC);
int lp_conv1d_s2_backward(float *dx, float *dW, float *db, const float *dy,
                          const float *x, const float *W, int B, int T, int C, int OC);
/* ceil(T/2): the output length of lp_conv1d_s2 for length T. */
int lp_conv1d_s2_out_len(int T);

/* Max-pool across examples: x[B,E,M] (E examples of M = T*D values each) ->
 * y[B,M] = max over valid examples e (emask[B,E], NULL = all valid);
 * argmax[B,M] (the e chosen, or -1 when b has no valid example: y = 0) is
 * saved. Backward: dx[b, argmax, m] += dy[b, m]. Ties pick the lowest e. */
int lp_maxpool_examples_forward(float *y, int32_t *argmax, const float *x,
                                const uint8_t *emask, int B, int E, int M);
int lp_maxpool_examples_backward(float *dx, const float *dy, const int32_t *argmax,
                                 int B, int E, int M);

/* LSTM cell, one step, on pre-activations (the caller runs the products,
 * e.g. z = x Wx + h0 Wh + b with lp_linear / lp_gemm). Gates i, f, g, o are
 * the column blocks [0,H), [H,2H), [2H,3H), [3H,4H) of z[N,4H]:
 *   i = sigmoid(z_i), f = sigmoid(z_f), g = tanh(z_g), o = sigmoid(z_o)
 *   c[N,H] = f * c0 + i * g,   h[N,H] = o * tanh(c)
 * c0[N,H] NULL: zero state. gates[N,4H] (the activated i, f, g, o) is saved
 * for backward and may equal z; c may equal c0 (a state updated in place, as
 * incremental decoding does; backward then needs the old c0 kept elsewhere). Backward, from dh and dc (the gradients of h
 * and c; either may be NULL = 0): dz += d z, dc0 += d c0 (dc0 NULL or c0 NULL:
 * skipped). */
int lp_lstm_cell_forward(float *h, float *c, float *gates, const float *z, const float *c0,
                         int N, int H);
int lp_lstm_cell_backward(float *dz, float *dc0, const float *dh, const float *dc,
                          const float *gates, const float *c, const float *c0, int N, int H);

/* LSTM layer: the cell above over T steps of x[N,T,C] (batch-major), from
 * the state (h0, c0)[N,H] (NULL: zeros):
 *   z_t = x_t Wx[C,4H] + h_{t-1} Wh[H,4H] + b[4H]  (b may be NULL)
 * -> h[N,T,H], c[N,T,H] (every step's state); gates[N,T,4H] saved. Every row
 * runs all T steps: padding at the end of a row does not change its earlier
 * states. Products through lp_gemm: x Wx for all N*T rows in one product,
 * then h_{t-1} Wh per step. Backward from dh[N,T,H] (required) and
 * dc[N,T,H] (NULL: none), the gradients of every step's outputs (so a
 * caller that uses the state at some step, e.g. a row's last valid one, puts
 * its gradient there), given the forward's x, h0, c0, h, c, gates; it
 * accumulates into dx[N,T,C], dh0, dc0, dWx, dWh, db (each may be NULL; dh0
 * and dc0 only when h0 / c0 were given). LP_OK, LP_EINVAL, LP_ENOMEM
 * (scratch of N*T*4H + 3*N*H floats). */
int lp_lstm_forward(float *h, float *c, float *gates, const float *x, const float *h0,
                    const float *c0, const float *Wx, const float *Wh, const float *b, int N,
                    int T, int C, int H);
int lp_lstm_backward(float *dx, float *dh0, float *dc0, float *dWx, float *dWh, float *db,
                     const float *dh, const float *dc, const float *gates, const float *h,
                     const float *c, const float *x, const float *h0, const float *c0,
                     const float *Wx, const float *Wh, int N, int T, int C, int H);

/* ------------------------------------------------------------------------ */
/* Transformer blocks (pre-LayerNorm).                                        */
/*   encoder: h = x + Drop(Attn(LN1(x)));        y = h + FFN(LN2(h))          */
/*   decoder: h1 = x + Drop(CausalSelfAttn(LN1(x)));                          */
/*            h2 = h1 + Drop(CrossAttn(LN2(h1), mem));  y = h2 + FFN(LN3(h2)) */
/*   FFN(z) = Drop(Drop(GELU(z W1 + b1)) W2 + b2)  (flax MlpBlock)            */
/*   Attn: q = z Wq (+bq), k = m Wk (+bk), v = m Wv (+bv), heads of width      */
/*         d_qkv / n_heads, out = concat_heads(...) Wo (+bo).                 */

#define LP_NO_PARAM ((size_t)-1) /* offset of an absent (bias) tensor */

typedef struct lp_block_cfg {
  int d_model;        /* D: width of the residual stream and of mem */
  int n_heads;        /* H */
  int d_qkv;          /* total attention width H*dh (0 -> d_model) */
  int d_ff;           /* FFN hidden width */
  int attn_bias;      /* 1: q/k/v/out projections have biases (reference: 0) */
  float dropout;      /* residual and FFN dropout rate */
  float attn_dropout; /* dropout on attention probabilities */
  float ln_eps;       /* layer-norm epsilon (<= 0 -> 1e-6, the flax default) */
  /* Appended (v1.1). Decoder blocks only: 1 = the self-attention is NOT causal
   * (every position sees every valid key: an encoder block with
   * cross-attention, e.g. the output-example encoder of RobustFill); 0 (the
   * default, and what zero-initialised configs get) = causal. Encoder blocks
   * ignore it. */
  int noncausal;
} lp_block_cfg;

/* d_model, n_heads, d_ff as given; d_qkv = d_model, attn_bias = 0,
 * dropout = attn_dropout = 0.1, ln_eps = 1e-6. */
void lp_block_cfg_default(lp_block_cfg *c, int d_model, int n_heads, int d_ff);

typedef struct lp_ln_off {
  size_t g, b; /* scale [D] (init 1), bias [D] (init 0) */
} lp_ln_off;

typedef struct lp_mha_off {
  size_t wq, wk, wv; /* [D, d_qkv], xavier uniform */
  size_t wo;         /* [d_qkv, D] */
  size_t bq, bk, bv, bo; /* [d_qkv] / [D], or LP_NO_PARAM */
} lp_mha_off;

typedef struct lp_ffn_off {
  size_t w1, b1; /* [D, F], [F] */
  size_t w2, b2; /* [F, D], [D] */
} lp_ffn_off;

/* A block is its config and the offsets of its tensors in a layout. It is a
 * plain value (no resources). */
typedef struct lp_enc_block {
  lp_block_cfg cfg;
  lp_ln_off ln1;
  lp_mha_off attn;
  lp_ln_off ln2;
  lp_ffn_off ffn;
} lp_enc_block;

typedef struct lp_dec_block {
  lp_block_cfg cfg;
  lp_ln_off ln1;
  lp_mha_off self_attn;
  lp_ln_off ln2;
  lp_mha_off cross_attn;
  lp_ln_off ln3;
  lp_ffn_off ffn;
} lp_dec_block;

/* Registers the block's tensors in L as "<prefix>.ln1.scale", "<prefix>.attn.wq",
 * ... (no prefix and no dot when prefix is NULL or "") and fills *blk.
 * Checks the config (d_qkv divisible by n_heads, rates in [0,1), ...).
 * LP_OK, LP_EINVAL, LP_ENOMEM. */
int lp_enc_block_init(lp_enc_block *blk, const lp_block_cfg *cfg, lp_layout *L,
                      const char *prefix);
int lp_dec_block_init(lp_dec_block *blk, const lp_block_cfg *cfg, lp_layout *L,
                      const char *prefix);

/* Activations + backward scratch of one block for batches of at most max_B
 * sequences of at most max_T (decoder: memory of at most max_S) positions.
 * NULL on ENOMEM or bad sizes. */
typedef struct lp_enc_block_acts lp_enc_block_acts;
typedef struct lp_dec_block_acts lp_dec_block_acts;
lp_enc_block_acts *lp_enc_block_acts_new(const lp_enc_block *blk, int max_B, int max_T);
void lp_enc_block_acts_free(lp_enc_block_acts *a);
lp_dec_block_acts *lp_dec_block_acts_new(const lp_dec_block *blk, int max_B, int max_T,
                                         int max_S);
void lp_dec_block_acts_free(lp_dec_block_acts *a);

/* Encoder block. x[B,T,D] -> y[B,T,D] (y may equal x). mask[B,T]: key padding
 * mask of the self-attention (NULL = all valid). rng NULL: eval (no dropout).
 * LP_EINVAL when B > max_B or T > max_T. */
int lp_enc_block_forward(const lp_enc_block *blk, const float *params,
                         lp_enc_block_acts *a, float *y, const float *x,
                         const uint8_t *mask, int B, int T, lp_rng *rng);
/* Backward of the last forward: dy[B,T,D] -> dx[B,T,D] += ..., grads += ...
 * (grads: the gradient array parallel to params). dx may be NULL; dx must not
 * alias dy. LP_EINVAL when no forward was run. */
int lp_enc_block_backward(const lp_enc_block *blk, const float *params, float *grads,
                          lp_enc_block_acts *a, float *dx, const float *dy);

/* Decoder block. x[B,T,D] -> y[B,T,D]; self-attention is causal with key mask
 * xmask[B,T] (NULL = all valid); cross-attention attends to mem[B,S,D] with key
 * mask mmask[B,S] (NULL = all valid). */
int lp_dec_block_forward(const lp_dec_block *blk, const float *params,
                         lp_dec_block_acts *a, float *y, const float *x,
                         const uint8_t *xmask, const float *mem, const uint8_t *mmask,
                         int B, int T, int S, lp_rng *rng);
/* dx[B,T,D] += ..., dmem[B,S,D] += ... (either may be NULL), grads += ... */
int lp_dec_block_backward(const lp_dec_block *blk, const float *params, float *grads,
                          lp_dec_block_acts *a, float *dx, float *dmem,
                          const float *dy);

/* Notes on the blocks (v1.1): the FFN's GELU (+ dropout) and the attention's
 * softmax (+ dropout) inside the blocks run as fused 4-wide SIMD loops with
 * the same definitions, masks and random streams as the primitive ops (GELU
 * and exp by polynomial approximations, errors < 4e-7); and the attention
 * inside a block runs its per-(sequence, head) products with ONE OpenBLAS
 * thread (lp_engine_set_threads(1) around them, restored after), since
 * OpenBLAS threading costs more than it gains on products of that size. */

/* Incremental decoding with a key/value cache (inference: no dropout, no
 * backward). One cache per decoder block (causal blocks only). It holds
 *  - the cross-attention keys/values of M memory sequences mem[M,S,D],
 *    computed once by lp_dec_block_cache_set_mem;
 *  - the self-attention keys/values of N rows (sequences) for positions
 *    0..len-1, appended one position per lp_dec_block_step.
 * Row n attends to memory row n % M (so N = R*M rows: R hypotheses of M
 * examples each, laid out hypothesis-major: n = r*M + m). A step computes,
 * for every row, exactly what lp_dec_block_forward (rng NULL, xmask NULL)
 * computes at position len of that row's sequence.
 * lp_dec_block_cache_reorder gathers rows (beam search: new row i continues
 * old row src[i]; rows may be duplicated or dropped).
 * Sizes: at most max_N rows, max_T positions, max_M memory rows of at most
 * max_S positions. NULL on ENOMEM or bad sizes. */
typedef struct lp_dec_block_cache lp_dec_block_cache;
lp_dec_block_cache *lp_dec_block_cache_new(const lp_dec_block *blk, int max_N, int max_T,
                                           int max_M, int max_S);
void lp_dec_block_cache_free(lp_dec_block_cache *c);
/* Computes the cross-attention K/V of mem[M,S,D] (mmask[M,S], NULL = all
 * valid) and empties the self-attention cache (len = 0). */
int lp_dec_block_cache_set_mem(const lp_dec_block *blk, const float *params,
                               lp_dec_block_cache *c, const float *mem,
                               const uint8_t *mmask, int M, int S);
/* Empties the self-attention cache (len = 0); the memory is kept. */
void lp_dec_block_cache_reset(lp_dec_block_cache *c);
/* Positions cached so far (the position of the next step). */
int lp_dec_block_cache_len(const lp_dec_block_cache *c);
/* One position for N rows: x[N,D] -> y[N,D] (y may equal x). N must be a
 * multiple of M and, after the first step (len > 0), equal the cache's row
 * count (set by the first step or by reorder). len += 1.
 * LP_EINVAL (bad shapes, no memory set, len == max_T, noncausal block). */
int lp_dec_block_step(const lp_dec_block *blk, const float *params, lp_dec_block_cache *c,
                      float *y, const float *x, int N);
/* Row gather: new row i = old row src[i] for i < N (0 <= src[i] < old row
 * count; N a multiple of M, N <= max_N). LP_OK or LP_EINVAL. */
int lp_dec_block_cache_reorder(lp_dec_block_cache *c, const int32_t *src, int N);

/* ------------------------------------------------------------------------ */
/* Optimisation                                                              */

typedef struct lp_adam_cfg {
  float beta1;        /* 0.9 */
  float beta2;        /* 0.98 */
  float eps;          /* 1e-9 */
  float weight_decay; /* 0.1, decoupled */
} lp_adam_cfg;

void lp_adam_cfg_default(lp_adam_cfg *c);

typedef struct lp_adam lp_adam;

/* Adam state (m, v zeroed, t = 0) for n parameters. cfg NULL: defaults.
 * NULL on ENOMEM or a bad cfg (betas outside [0,1), eps or decay < 0). */
lp_adam *lp_adam_new(size_t n, const lp_adam_cfg *cfg);
void lp_adam_free(lp_adam *opt);
/* One update with learning rate lr (t += 1 first):
 *   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
 *   p -= lr * ( (m/(1-b1^t)) / (sqrt(v/(1-b2^t)) + eps) + wd * decay[i] * p )
 * (decoupled weight decay on the old p, as flax.optim.Adam / AdamW).
 * decay_mask[n] may be NULL (every parameter decays). params[n], grads[n]. */
int lp_adam_step(lp_adam *opt, float *params, const float *grads, float lr,
                 const uint8_t *decay_mask);
size_t lp_adam_size(const lp_adam *opt);
/* Number of steps taken; settable (checkpoint restore). */
int64_t lp_adam_t(const lp_adam *opt);
void lp_adam_set_t(lp_adam *opt, int64_t t);
/* First and second moment arrays [n] (borrowed, writable for restore). */
float *lp_adam_m(lp_adam *opt);
float *lp_adam_v(lp_adam *opt);
const lp_adam_cfg *lp_adam_config(const lp_adam *opt);

/* Learning rate schedule: linear warm-up then inverse-square-root decay,
 *   lr(step) = base_lr * min(1, step/warmup) * sqrt(warmup / max(step, warmup))
 * (the reference's "constant * linear_warmup * rsqrt_normalized_decay"; peak
 * base_lr at step == warmup). With warmup <= 0: base_lr / sqrt(max(step, 1)).
 * step counts updates from 1 (pass lp_adam_t() + 1 before lp_adam_step). */
typedef struct lp_lr_schedule {
  float base_lr;        /* reference: 1e-3 */
  int64_t warmup_steps; /* reference: 16000 */
} lp_lr_schedule;
float lp_lr_at(const lp_lr_schedule *s, int64_t step);

/* Global L2 norm of g[n] (double accumulation). */
double lp_grad_norm(const float *g, size_t n);
/* Global norm clipping: when ||g|| > max_norm, g *= max_norm / ||g||.
 * *norm_out (may be NULL) gets the norm before clipping. max_norm > 0.
 * LP_OK or LP_EINVAL. */
int lp_grad_clip(float *g, size_t n, float max_norm, double *norm_out);

#ifdef __cplusplus
}
#endif

#endif /* LPSYNTH_ENGINE_H */
