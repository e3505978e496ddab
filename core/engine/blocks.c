/* Pre-LayerNorm Transformer encoder and decoder blocks built from the
 * primitive ops, with parameters at layout offsets and activations in an
 * lp_*_block_acts object. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "vec.h"

#define PTR(base, off) ((off) == LP_NO_PARAM ? NULL : (base) + (off))

/* ---- fused element-wise kernels -------------------------------------------- */
/* tanh by a rational approximation (the [13/6] minimax fit used by Eigen and
 * XLA; |error| < 4e-7 absolute), clamped to the exact limits at |x| >= 7.9.
 * Branch-free. */
static inline v4f v4_tanh(v4f x) {
  const v4f c = v4_splat(7.90531110763549805f), nc = -c;
  x = v4_select(x > c, c, x);
  x = v4_select(x < nc, nc, x);
  const v4f x2 = x * x;
  v4f p = v4_splat(-2.76076847742355e-16f);
  p = p * x2 + 2.00018790482477e-13f;
  p = p * x2 + -8.60467152213735e-11f;
  p = p * x2 + 5.12229709037114e-08f;
  p = p * x2 + 1.48572235717979e-05f;
  p = p * x2 + 6.37261928875436e-04f;
  p = p * x2 + 4.89352455891786e-03f;
  p = p * x;
  v4f q = v4_splat(1.19825839466702e-06f);
  q = q * x2 + 1.18534705686654e-04f;
  q = q * x2 + 2.26843463243900e-03f;
  q = q * x2 + 4.89352518554385e-03f;
  return p / q;
}

#define GELU_K 0.7978845608028654f /* sqrt(2/pi) */
#define GELU_C 0.044715f

/* keep mask bytes k[0..3] times scale, as floats */
typedef uint8_t v4b __attribute__((vector_size(4)));
static inline v4f v4_keep(const uint8_t *k, float scale) {
  v4b b;
  memcpy(&b, k, sizeof b);
  return __builtin_convertvector(b, v4f) * scale;
}

/* gd = GELU(h) * keep * scale (keep NULL: no dropout). gd may equal h. */
static void gelu_drop_fwd(float *gd, const float *h, const uint8_t *keep, float scale,
                          size_t n) {
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const v4f v = v4_load(h + i);
    const v4f t = v4_tanh(GELU_K * (v + GELU_C * v * v * v));
    v4f g = 0.5f * v * (1.0f + t);
    if (keep) g *= v4_keep(keep + i, scale);
    v4_store(gd + i, g);
  }
  for (; i < n; i++) { /* tail: the same arithmetic, one lane used */
    const v4f v = v4_splat(h[i]);
    const v4f t = v4_tanh(GELU_K * (v + GELU_C * v * v * v));
    float g = (0.5f * v * (1.0f + t))[0];
    gd[i] = keep ? g * ((float)keep[i] * scale) : g;
  }
}

/* g = g * keep * scale * GELU'(h), in place (keep NULL: no dropout). */
static void gelu_drop_bwd(float *g, const float *h, const uint8_t *keep, float scale,
                          size_t n) {
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const v4f v = v4_load(h + i);
    const v4f t = v4_tanh(GELU_K * (v + GELU_C * v * v * v));
    const v4f du = GELU_K * (1.0f + (3.0f * GELU_C) * v * v);
    const v4f d = 0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * du;
    v4f gv = v4_load(g + i) * d;
    if (keep) gv *= v4_keep(keep + i, scale);
    v4_store(g + i, gv);
  }
  for (; i < n; i++) {
    const v4f v = v4_splat(h[i]);
    const v4f t = v4_tanh(GELU_K * (v + GELU_C * v * v * v));
    const v4f du = GELU_K * (1.0f + (3.0f * GELU_C) * v * v);
    const float d = (0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * du)[0];
    g[i] = keep ? g[i] * d * ((float)keep[i] * scale) : g[i] * d;
  }
}

/* sum_i a[i] b[i] over n elements. */
static inline float dot_f(const float *a, const float *b, int n) {
  v4f acc0 = v4_splat(0.0f), acc1 = acc0;
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    acc0 += v4_load(a + i) * v4_load(b + i);
    acc1 += v4_load(a + i + 4) * v4_load(b + i + 4);
  }
  for (; i + 4 <= n; i += 4) acc0 += v4_load(a + i) * v4_load(b + i);
  float s = v4_sum(acc0 + acc1);
  for (; i < n; i++) s += a[i] * b[i];
  return s;
}

/* y[0..n) += w x[0..n). */
static inline void axpy_f(float *y, float w, const float *x, int n) {
  const v4f wv = v4_splat(w);
  int i = 0;
  for (; i + 4 <= n; i += 4) v4_store(y + i, v4_load(y + i) + wv * v4_load(x + i));
  for (; i < n; i++) y[i] += w * x[i];
}

/* ---- configuration and parameter registration ---------------------------- */

void lp_block_cfg_default(lp_block_cfg *c, int d_model, int n_heads, int d_ff) {
  memset(c, 0, sizeof(*c));
  c->d_model = d_model;
  c->n_heads = n_heads;
  c->d_qkv = d_model;
  c->d_ff = d_ff;
  c->attn_bias = 0;
  c->dropout = 0.1f;
  c->attn_dropout = 0.1f;
  c->ln_eps = 1e-6f;
}

/* Validated copy of *in with d_qkv and ln_eps filled in. */
static int cfg_normalize(lp_block_cfg *out, const lp_block_cfg *in) {
  LP_REQUIRE(in && in->d_model >= 1 && in->n_heads >= 1 && in->d_ff >= 1);
  LP_REQUIRE(in->d_qkv >= 0);
  LP_REQUIRE(in->dropout >= 0.0f && in->dropout < 1.0f);
  LP_REQUIRE(in->attn_dropout >= 0.0f && in->attn_dropout < 1.0f);
  *out = *in;
  if (out->d_qkv == 0) out->d_qkv = out->d_model;
  LP_REQUIRE(out->d_qkv % out->n_heads == 0);
  if (!(out->ln_eps > 0.0f)) out->ln_eps = 1e-6f;
  out->attn_bias = out->attn_bias ? 1 : 0;
  out->noncausal = out->noncausal ? 1 : 0;
  return LP_OK;
}

static int add_param(lp_layout *L, const char *prefix, const char *name, int d0, int d1,
                     int init, float scale, size_t *off) {
  char full[LP_PARAM_NAME_MAX];
  int n = (prefix && prefix[0]) ? snprintf(full, sizeof full, "%s.%s", prefix, name)
                                : snprintf(full, sizeof full, "%s", name);
  LP_REQUIRE(n > 0 && (size_t)n < sizeof full);
  int shape[2] = {d0, d1};
  return lp_layout_add(L, full, d1 > 0 ? 2 : 1, shape, init, scale, off);
}

#define LP_BIAS_INIT LP_INIT_NORMAL, 1e-6f /* reference: normal(stddev=1e-6) */

static int add_ln(lp_layout *L, const char *prefix, const char *name, int D, lp_ln_off *o) {
  char sub[LP_PARAM_NAME_MAX];
  LP_REQUIRE((size_t)snprintf(sub, sizeof sub, "%s.scale", name) < sizeof sub);
  LP_TRY(add_param(L, prefix, sub, D, 0, LP_INIT_ONES, 0.0f, &o->g));
  LP_REQUIRE((size_t)snprintf(sub, sizeof sub, "%s.bias", name) < sizeof sub);
  return add_param(L, prefix, sub, D, 0, LP_INIT_ZEROS, 0.0f, &o->b);
}

static int add_mha(lp_layout *L, const char *prefix, const char *name, const lp_block_cfg *c,
                   lp_mha_off *o) {
  static const char *const wn[4] = {"wq", "wk", "wv", "wo"};
  static const char *const bn[4] = {"bq", "bk", "bv", "bo"};
  size_t *w[4] = {&o->wq, &o->wk, &o->wv, &o->wo};
  size_t *b[4] = {&o->bq, &o->bk, &o->bv, &o->bo};
  char sub[LP_PARAM_NAME_MAX];
  for (int i = 0; i < 4; i++) {
    int rows = i < 3 ? c->d_model : c->d_qkv, cols = i < 3 ? c->d_qkv : c->d_model;
    LP_REQUIRE((size_t)snprintf(sub, sizeof sub, "%s.%s", name, wn[i]) < sizeof sub);
    LP_TRY(add_param(L, prefix, sub, rows, cols, LP_INIT_XAVIER_UNIFORM, 1.0f, w[i]));
    *b[i] = LP_NO_PARAM;
    if (c->attn_bias) {
      LP_REQUIRE((size_t)snprintf(sub, sizeof sub, "%s.%s", name, bn[i]) < sizeof sub);
      LP_TRY(add_param(L, prefix, sub, cols, 0, LP_BIAS_INIT, b[i]));
    }
  }
  return LP_OK;
}

static int add_ffn(lp_layout *L, const char *prefix, const lp_block_cfg *c, lp_ffn_off *o) {
  LP_TRY(add_param(L, prefix, "ffn.w1", c->d_model, c->d_ff, LP_INIT_XAVIER_UNIFORM, 1.0f,
                   &o->w1));
  LP_TRY(add_param(L, prefix, "ffn.b1", c->d_ff, 0, LP_BIAS_INIT, &o->b1));
  LP_TRY(add_param(L, prefix, "ffn.w2", c->d_ff, c->d_model, LP_INIT_XAVIER_UNIFORM, 1.0f,
                   &o->w2));
  return add_param(L, prefix, "ffn.b2", c->d_model, 0, LP_BIAS_INIT, &o->b2);
}

int lp_enc_block_init(lp_enc_block *blk, const lp_block_cfg *cfg, lp_layout *L,
                      const char *prefix) {
  LP_REQUIRE(blk && L);
  lp_enc_block b;
  LP_TRY(cfg_normalize(&b.cfg, cfg));
  LP_TRY(add_ln(L, prefix, "ln1", b.cfg.d_model, &b.ln1));
  LP_TRY(add_mha(L, prefix, "attn", &b.cfg, &b.attn));
  LP_TRY(add_ln(L, prefix, "ln2", b.cfg.d_model, &b.ln2));
  LP_TRY(add_ffn(L, prefix, &b.cfg, &b.ffn));
  *blk = b;
  return LP_OK;
}

int lp_dec_block_init(lp_dec_block *blk, const lp_block_cfg *cfg, lp_layout *L,
                      const char *prefix) {
  LP_REQUIRE(blk && L);
  lp_dec_block b;
  LP_TRY(cfg_normalize(&b.cfg, cfg));
  LP_TRY(add_ln(L, prefix, "ln1", b.cfg.d_model, &b.ln1));
  LP_TRY(add_mha(L, prefix, "self_attn", &b.cfg, &b.self_attn));
  LP_TRY(add_ln(L, prefix, "ln2", b.cfg.d_model, &b.ln2));
  LP_TRY(add_mha(L, prefix, "cross_attn", &b.cfg, &b.cross_attn));
  LP_TRY(add_ln(L, prefix, "ln3", b.cfg.d_model, &b.ln3));
  LP_TRY(add_ffn(L, prefix, &b.cfg, &b.ffn));
  *blk = b;
  return LP_OK;
}

/* ---- sub-layers ---------------------------------------------------------- */

typedef struct mha_acts {
  float *q, *k, *v; /* [B,Tq,Dq], [B,Tk,Dq], [B,Tk,Dq] */
  float *att;       /* [B,H,Tq,Tk] */
  uint8_t *dmask;   /* [B,H,Tq,Tk], NULL when attn_dropout == 0 */
  float *ctx;       /* [B,Tq,Dq] attention output before Wo */
  float *pd;        /* [Tq,Tk] dropped probabilities of one (sequence, head) */
  float *kmf;       /* [Tk] key mask of one sequence as 0/1 floats */
} mha_acts;

typedef struct mha_scratch {
  float *dq, *dk, *dv, *dctx; /* [B,Tq,Dq], [B,Tk,Dq] x2, [B,Tq,Dq] */
  float *pd, *dp;             /* [Tq,Tk] each */
} mha_scratch;

static void carve_mha(lp_carve *c, mha_acts *a, const lp_block_cfg *cfg, int B, int Tq,
                      int Tk) {
  size_t Dq = (size_t)cfg->d_qkv;
  a->q = lp_carve_take(c, sizeof(float) * (size_t)B * Tq * Dq);
  a->k = lp_carve_take(c, sizeof(float) * (size_t)B * Tk * Dq);
  a->v = lp_carve_take(c, sizeof(float) * (size_t)B * Tk * Dq);
  size_t natt = (size_t)B * cfg->n_heads * Tq * Tk;
  a->att = lp_carve_take(c, sizeof(float) * natt);
  a->dmask = cfg->attn_dropout > 0.0f ? lp_carve_take(c, natt) : NULL;
  a->ctx = lp_carve_take(c, sizeof(float) * (size_t)B * Tq * Dq);
  a->pd = lp_carve_take(c, sizeof(float) * (size_t)Tq * Tk);
  a->kmf = lp_carve_take(c, sizeof(float) * (size_t)Tk);
}

static void carve_mha_scratch(lp_carve *c, mha_scratch *s, const lp_block_cfg *cfg, int B,
                              int Tq, int Tk) {
  size_t Dq = (size_t)cfg->d_qkv;
  s->dq = lp_carve_take(c, sizeof(float) * (size_t)B * Tq * Dq);
  s->dk = lp_carve_take(c, sizeof(float) * (size_t)B * Tk * Dq);
  s->dv = lp_carve_take(c, sizeof(float) * (size_t)B * Tk * Dq);
  s->dctx = lp_carve_take(c, sizeof(float) * (size_t)B * Tq * Dq);
  s->pd = lp_carve_take(c, sizeof(float) * (size_t)Tq * Tk);
  s->dp = lp_carve_take(c, sizeof(float) * (size_t)Tq * Tk);
}

/* ---- attention (the math of lp_attention_forward/backward, vectorized) ---- */
/* Same definition, masks, dropout stream (one lp_keep_mask per (sequence,
 * head), in the same order) and results up to float rounding as the engine's
 * lp_attention_* ops; the softmax and dropout passes run on 4-wide vectors
 * and the scratch comes from the block's activations (no malloc per call). */

/* Softmax of row s[0..L) restricted to keys j with kmf[j] = 1 (kmf NULL:
 * all); s[L..Tk) = 0. A row with no visible key becomes all zeros. */
static void softmax_row_v(float *s, int L, int Tk, const float *kmf) {
  float mx = -INFINITY;
  for (int j = 0; j < L; j++)
    if ((!kmf || kmf[j] != 0.0f) && s[j] > mx) mx = s[j];
  if (mx == -INFINITY) {
    memset(s, 0, sizeof(float) * (size_t)Tk);
    return;
  }
  const v4f mv = v4_splat(mx);
  v4f acc = v4_splat(0.0f);
  int j = 0;
  for (; j + 4 <= L; j += 4) {
    v4f e = v4_exp_neg(v4_load(s + j) - mv);
    if (kmf) e *= v4_load(kmf + j);
    v4_store(s + j, e);
    acc += e;
  }
  float sum = v4_sum(acc);
  for (; j < L; j++) {
    float e = (!kmf || kmf[j] != 0.0f) ? v4_exp_neg(v4_splat(s[j] - mx))[0] : 0.0f;
    s[j] = e;
    sum += e;
  }
  if (L < Tk) memset(s + L, 0, sizeof(float) * (size_t)(Tk - L));
  const v4f inv = v4_splat(1.0f / sum);
  j = 0;
  for (; j + 4 <= L; j += 4) v4_store(s + j, v4_load(s + j) * inv);
  for (; j < L; j++) s[j] *= inv[0];
}

/* out = P * keep * scale over n elements */
static void apply_keep(float *out, const float *P, const uint8_t *keep, float scale, size_t n) {
  size_t i = 0;
  for (; i + 4 <= n; i += 4) v4_store(out + i, v4_load(P + i) * v4_keep(keep + i, scale));
  for (; i < n; i++) out[i] = keep[i] ? P[i] * scale : 0.0f;
}

/* a->ctx[B,Tq,H*dh] = softmax(q k^T / sqrt(dh) + masks) (dropped) v; a->att saved. */
static void attn_forward(mha_acts *a, const uint8_t *key_mask, int B, int Tq, int Tk, int H,
                         int dh, int causal, float p_drop, lp_rng *rng) {
  const int Dq = H * dh, dropping = rng != NULL && p_drop > 0.0f;
  const float scale = 1.0f / sqrtf((float)dh);
  const float keep_scale = dropping ? 1.0f / (1.0f - p_drop) : 1.0f;
  const size_t TT = (size_t)Tq * Tk;
  for (int b = 0; b < B; b++) {
    const uint8_t *km = key_mask ? key_mask + (size_t)b * Tk : NULL;
    if (km)
      for (int j = 0; j < Tk; j++) a->kmf[j] = km[j] ? 1.0f : 0.0f;
    for (int h = 0; h < H; h++) {
      const float *qb = a->q + (size_t)b * Tq * Dq + (size_t)h * dh;
      const float *kb = a->k + (size_t)b * Tk * Dq + (size_t)h * dh;
      const float *vb = a->v + (size_t)b * Tk * Dq + (size_t)h * dh;
      float *ob = a->ctx + (size_t)b * Tq * Dq + (size_t)h * dh;
      float *P = a->att + ((size_t)b * H + h) * TT;
      lp_gemm(0, 1, Tq, Tk, dh, scale, qb, Dq, kb, Dq, 0.0f, P, Tk);
      for (int i = 0; i < Tq; i++)
        softmax_row_v(P + (size_t)i * Tk, causal ? i + (Tk - Tq) + 1 : Tk, Tk,
                      km ? a->kmf : NULL);
      const float *A = P;
      if (dropping) {
        uint8_t *dm = a->dmask + ((size_t)b * H + h) * TT;
        lp_keep_mask(dm, TT, p_drop, rng);
        apply_keep(a->pd, P, dm, keep_scale, TT);
        A = a->pd;
      }
      lp_gemm(0, 0, Tq, dh, Tk, 1.0f, A, Tk, vb, Dq, 0.0f, ob, Dq);
    }
  }
}

/* s->dq, dk, dv += gradients for dout = s->dctx (p_drop: the effective rate of
 * the forward, 0 when it did not drop). */
static void attn_backward(const mha_acts *a, const mha_scratch *s, int B, int Tq, int Tk,
                          int H, int dh, float p_drop) {
  const int Dq = H * dh, dropping = p_drop > 0.0f;
  const float scale = 1.0f / sqrtf((float)dh);
  const float keep_scale = dropping ? 1.0f / (1.0f - p_drop) : 1.0f;
  const size_t TT = (size_t)Tq * Tk;
  float *dP = s->dp;
  for (int b = 0; b < B; b++) {
    for (int h = 0; h < H; h++) {
      const size_t qoff = (size_t)b * Tq * Dq + (size_t)h * dh;
      const size_t koff = (size_t)b * Tk * Dq + (size_t)h * dh;
      const float *P = a->att + ((size_t)b * H + h) * TT;
      const float *dob = s->dctx + qoff;
      const uint8_t *dm = dropping ? a->dmask + ((size_t)b * H + h) * TT : NULL;
      const float *A = P;
      if (dropping) {
        apply_keep(s->pd, P, dm, keep_scale, TT);
        A = s->pd;
      }
      /* dV += A^T dO;  dA = dO V^T */
      lp_gemm(1, 0, Tk, dh, Tq, 1.0f, A, Tk, dob, Dq, 1.0f, s->dv + koff, Dq);
      lp_gemm(0, 1, Tq, Tk, dh, 1.0f, dob, Dq, a->v + koff, Dq, 0.0f, dP, Tk);
      if (dropping) apply_keep(dP, dP, dm, keep_scale, TT);
      /* dS = P * (dP - rowsum(dP * P)) */
      for (int i = 0; i < Tq; i++) {
        const float *pr = P + (size_t)i * Tk;
        float *dr = dP + (size_t)i * Tk;
        const float dot = dot_f(pr, dr, Tk);
        const v4f dv4 = v4_splat(dot);
        int j = 0;
        for (; j + 4 <= Tk; j += 4) v4_store(dr + j, v4_load(pr + j) * (v4_load(dr + j) - dv4));
        for (; j < Tk; j++) dr[j] = pr[j] * (dr[j] - dot);
      }
      /* dQ += scale dS K;  dK += scale dS^T Q */
      lp_gemm(0, 0, Tq, dh, Tk, scale, dP, Tk, a->k + koff, Dq, 1.0f, s->dq + qoff, Dq);
      lp_gemm(1, 0, Tk, dh, Tq, scale, dP, Tk, a->q + qoff, Dq, 1.0f, s->dk + koff, Dq);
    }
  }
}

/* The attention op runs one small sgemm per (sequence, head) (T x T x dh,
 * e.g. 100 x 100 x 32). OpenBLAS splits products of that size across its
 * threads, and the wake-up/sync per call costs more than it saves (much more
 * on a loaded machine), so the attention runs with one OpenBLAS thread; the
 * large projections and FFN products around it keep all threads. */
static int attn_threads_begin(void) {
  int n = lp_engine_get_threads();
  if (n > 1) lp_engine_set_threads(1);
  return n;
}
static void attn_threads_end(int n) {
  if (n > 1) lp_engine_set_threads(n);
}

/* out[B,Tq,D] = MHA(zq[B,Tq,D], zkv[B,Tk,D]). */
static int mha_forward(const lp_block_cfg *c, const lp_mha_off *o, const float *P,
                       mha_acts *a, float *out, const float *zq, const float *zkv,
                       const uint8_t *kmask, int B, int Tq, int Tk, int causal,
                       lp_rng *rng) {
  const int D = c->d_model, Dq = c->d_qkv, H = c->n_heads;
  const int Nq = B * Tq, Nk = B * Tk;
  LP_TRY(lp_linear_forward(a->q, zq, P + o->wq, PTR(P, o->bq), Nq, D, Dq));
  LP_TRY(lp_linear_forward(a->k, zkv, P + o->wk, PTR(P, o->bk), Nk, D, Dq));
  LP_TRY(lp_linear_forward(a->v, zkv, P + o->wv, PTR(P, o->bv), Nk, D, Dq));
  const int nt = attn_threads_begin();
  attn_forward(a, kmask, B, Tq, Tk, H, Dq / H, causal, c->attn_dropout, rng);
  attn_threads_end(nt);
  return lp_linear_forward(out, a->ctx, P + o->wo, PTR(P, o->bo), Nq, Dq, D);
}

/* dzq[B,Tq,D] += ..., dzkv[B,Tk,D] += ... (may alias dzq for self-attention,
 * may be NULL), G += ... */
static int mha_backward(const lp_block_cfg *c, const lp_mha_off *o, const float *P,
                        float *G, const mha_acts *a, const mha_scratch *s, float *dzq,
                        float *dzkv, const float *dout, const float *zq, const float *zkv,
                        int B, int Tq, int Tk, int dropped) {
  const int D = c->d_model, Dq = c->d_qkv, H = c->n_heads;
  const int Nq = B * Tq, Nk = B * Tk;
  memset(s->dctx, 0, sizeof(float) * (size_t)Nq * Dq);
  LP_TRY(lp_linear_backward(s->dctx, G + o->wo, PTR(G, o->bo), dout, a->ctx, P + o->wo, Nq,
                            Dq, D));
  memset(s->dq, 0, sizeof(float) * (size_t)Nq * Dq);
  memset(s->dk, 0, sizeof(float) * (size_t)Nk * Dq);
  memset(s->dv, 0, sizeof(float) * (size_t)Nk * Dq);
  const int nt = attn_threads_begin();
  attn_backward(a, s, B, Tq, Tk, H, Dq / H,
                dropped && c->attn_dropout > 0.0f ? c->attn_dropout : 0.0f);
  attn_threads_end(nt);
  LP_TRY(lp_linear_backward(dzq, G + o->wq, PTR(G, o->bq), s->dq, zq, P + o->wq, Nq, D, Dq));
  LP_TRY(lp_linear_backward(dzkv, G + o->wk, PTR(G, o->bk), s->dk, zkv, P + o->wk, Nk, D, Dq));
  return lp_linear_backward(dzkv, G + o->wv, PTR(G, o->bv), s->dv, zkv, P + o->wv, Nk, D, Dq);
}

typedef struct ffn_acts {
  float *h;    /* [N,F] pre-activation */
  float *gd;   /* [N,F] dropout(gelu(h)) */
  uint8_t *m;  /* [N,F] dropout mask */
  float *s0;   /* [N,F] backward scratch */
  double *acc; /* [max(F,D)] bias-gradient accumulator */
} ffn_acts;

static void carve_ffn(lp_carve *c, ffn_acts *a, const lp_block_cfg *cfg, size_t N) {
  size_t nf = N * (size_t)cfg->d_ff;
  a->h = lp_carve_take(c, sizeof(float) * nf);
  a->gd = lp_carve_take(c, sizeof(float) * nf);
  a->m = lp_carve_take(c, nf);
  a->s0 = lp_carve_take(c, sizeof(float) * nf);
  a->acc = lp_carve_take(c, sizeof(double) * (size_t)(cfg->d_ff > cfg->d_model ? cfg->d_ff
                                                                                  : cfg->d_model));
}

/* db[OC] += sum_n dy[n,:], accumulated in double row by row (contiguous). */
static void bias_grad(float *db, const float *dy, int N, int OC, double *acc) {
  for (int o = 0; o < OC; o++) acc[o] = 0.0;
  for (int n = 0; n < N; n++) {
    const float *r = dy + (size_t)n * OC;
    for (int o = 0; o < OC; o++) acc[o] += r[o];
  }
  for (int o = 0; o < OC; o++) db[o] += (float)acc[o];
}

/* out[N,D] = Drop(GELU(z W1 + b1)) W2 + b2 (the final dropout is the caller's). */
static int ffn_forward(const lp_block_cfg *c, const lp_ffn_off *o, const float *P,
                       ffn_acts *a, float *out, const float *z, int N, lp_rng *rng) {
  const int D = c->d_model, F = c->d_ff;
  const size_t nf = (size_t)N * F;
  LP_TRY(lp_linear_forward(a->h, z, P + o->w1, P + o->b1, N, D, F));
  const int dropping = rng != NULL && c->dropout > 0.0f;
  if (dropping) lp_keep_mask(a->m, nf, c->dropout, rng);
  gelu_drop_fwd(a->gd, a->h, dropping ? a->m : NULL,
                dropping ? 1.0f / (1.0f - c->dropout) : 1.0f, nf);
  return lp_linear_forward(out, a->gd, P + o->w2, P + o->b2, N, F, D);
}

static int ffn_backward(const lp_block_cfg *c, const lp_ffn_off *o, const float *P,
                        float *G, ffn_acts *a, float *dz, const float *dout, const float *z,
                        int N, int dropped) {
  const int D = c->d_model, F = c->d_ff;
  const size_t nf = (size_t)N * F;
  const int dropping = dropped && c->dropout > 0.0f;
  /* s0 = dout W2^T (assigned), dW2 += gd^T dout, db2 += sum dout */
  lp_gemm(0, 1, N, F, D, 1.0f, dout, D, P + o->w2, D, 0.0f, a->s0, F);
  LP_TRY(lp_linear_backward(NULL, G + o->w2, NULL, dout, a->gd, P + o->w2, N, F, D));
  bias_grad(G + o->b2, dout, N, D, a->acc);
  /* through dropout and GELU, in place */
  gelu_drop_bwd(a->s0, a->h, dropping ? a->m : NULL,
                dropping ? 1.0f / (1.0f - c->dropout) : 1.0f, nf);
  LP_TRY(lp_linear_backward(dz, G + o->w1, NULL, a->s0, z, P + o->w1, N, D, F));
  bias_grad(G + o->b1, a->s0, N, F, a->acc);
  return LP_OK;
}

/* ---- encoder block -------------------------------------------------------- */

struct lp_enc_block_acts {
  lp_block_cfg cfg;
  int max_B, max_T;
  int B, T;     /* shape of the last forward (0: none yet) */
  int dropped;  /* the last forward ran with an rng */
  void *mem;
  float *x;                   /* [B,T,D] copy of the input */
  float *ln1, *mean1, *rstd1; /* [B,T,D], [B,T], [B,T] */
  mha_acts attn;
  uint8_t *m_a;               /* [B,T,D] dropout after attention */
  float *r1;                  /* [B,T,D] x + Drop(attn) */
  float *ln2, *mean2, *rstd2;
  ffn_acts ffn;
  uint8_t *m_f;               /* [B,T,D] dropout after FFN */
  float *s0, *s1, *s2;        /* [B,T,D] scratch */
  mha_scratch ms;
};

static void carve_enc(lp_carve *c, void *p) {
  lp_enc_block_acts *a = p;
  const int B = a->max_B, T = a->max_T;
  const size_t N = (size_t)B * T, nd = N * (size_t)a->cfg.d_model;
  a->x = lp_carve_take(c, sizeof(float) * nd);
  a->ln1 = lp_carve_take(c, sizeof(float) * nd);
  a->mean1 = lp_carve_take(c, sizeof(float) * N);
  a->rstd1 = lp_carve_take(c, sizeof(float) * N);
  carve_mha(c, &a->attn, &a->cfg, B, T, T);
  a->m_a = lp_carve_take(c, nd);
  a->r1 = lp_carve_take(c, sizeof(float) * nd);
  a->ln2 = lp_carve_take(c, sizeof(float) * nd);
  a->mean2 = lp_carve_take(c, sizeof(float) * N);
  a->rstd2 = lp_carve_take(c, sizeof(float) * N);
  carve_ffn(c, &a->ffn, &a->cfg, N);
  a->m_f = lp_carve_take(c, nd);
  a->s0 = lp_carve_take(c, sizeof(float) * nd);
  a->s1 = lp_carve_take(c, sizeof(float) * nd);
  a->s2 = lp_carve_take(c, sizeof(float) * nd);
  carve_mha_scratch(c, &a->ms, &a->cfg, B, T, T);
}

/* Rough check that every buffer of the block fits in size_t. */
static int acts_size_ok(const lp_block_cfg *c, int B, int T, int S) {
  int W = c->d_ff > c->d_model ? c->d_ff : c->d_model;
  W = c->d_qkv > W ? c->d_qkv : W;
  int L = T > S ? T : S;
  /* row counts B*T are passed to the ops as int */
  return lp_prod2(B, L) > 0 && lp_prod2(B, L) <= (size_t)INT_MAX &&
         lp_prod4(B, L, W, 64) > 0 && lp_prod4(B, c->n_heads, L, L) > 0 &&
         lp_prod4(B, c->n_heads, L, L) <= SIZE_MAX / 64;
}

/* Gives the new object a (calloc'ed, config and capacities set) its arrays:
 * one 64-byte-aligned block, *mem (a's own field), laid out by carve - a first
 * pass adds up the size, a second places the arrays. Returns a, or NULL with
 * a freed when out of memory. */
static void *carve_arrays(void *a, void **mem, void (*carve)(lp_carve *, void *)) {
  lp_carve c = {NULL, 0};
  carve(&c, a);
  const size_t n = (c.used + 63u) & ~(size_t)63u;
  c.base = aligned_alloc(64, n ? n : 64);
  if (!c.base) {
    free(a);
    return NULL;
  }
  *mem = c.base;
  c.used = 0;
  carve(&c, a);
  return a;
}

lp_enc_block_acts *lp_enc_block_acts_new(const lp_enc_block *blk, int max_B, int max_T) {
  if (!blk || max_B < 1 || max_T < 1) return NULL;
  lp_block_cfg cfg;
  if (cfg_normalize(&cfg, &blk->cfg) != LP_OK || !acts_size_ok(&cfg, max_B, max_T, max_T))
    return NULL;
  lp_enc_block_acts *a = calloc(1, sizeof(*a));
  if (!a) return NULL;
  a->cfg = cfg;
  a->max_B = max_B;
  a->max_T = max_T;
  return carve_arrays(a, &a->mem, carve_enc);
}

void lp_enc_block_acts_free(lp_enc_block_acts *a) {
  if (!a) return;
  free(a->mem);
  free(a);
}

static int same_cfg(const lp_block_cfg *a, const lp_block_cfg *b) {
  return a->d_model == b->d_model && a->n_heads == b->n_heads && a->d_qkv == b->d_qkv &&
         a->d_ff == b->d_ff && a->attn_dropout == b->attn_dropout;
}

int lp_enc_block_forward(const lp_enc_block *blk, const float *params,
                         lp_enc_block_acts *a, float *y, const float *x,
                         const uint8_t *mask, int B, int T, lp_rng *rng) {
  LP_REQUIRE(blk && params && a && y && x && B >= 1 && T >= 1);
  LP_REQUIRE(B <= a->max_B && T <= a->max_T && same_cfg(&blk->cfg, &a->cfg));
  const lp_block_cfg *c = &a->cfg;
  const int D = c->d_model, N = B * T;
  const size_t nd = (size_t)N * D;
  const float *P = params;
  a->B = 0; /* invalid until this forward completes */
  memmove(a->x, x, sizeof(float) * nd);
  /* r1 = x + Drop(Attn(LN1(x))) */
  LP_TRY(lp_layernorm_forward(a->ln1, a->mean1, a->rstd1, a->x, P + blk->ln1.g,
                              P + blk->ln1.b, N, D, c->ln_eps));
  LP_TRY(mha_forward(c, &blk->attn, P, &a->attn, a->s0, a->ln1, a->ln1, mask, B, T, T, 0,
                     rng));
  LP_TRY(lp_dropout_forward(a->r1, a->m_a, a->s0, nd, c->dropout, rng));
  LP_TRY(lp_residual_forward(a->r1, a->r1, a->x, nd));
  /* y = r1 + Drop(FFN(LN2(r1))) */
  LP_TRY(lp_layernorm_forward(a->ln2, a->mean2, a->rstd2, a->r1, P + blk->ln2.g,
                              P + blk->ln2.b, N, D, c->ln_eps));
  LP_TRY(ffn_forward(c, &blk->ffn, P, &a->ffn, a->s0, a->ln2, N, rng));
  LP_TRY(lp_dropout_forward(y, a->m_f, a->s0, nd, c->dropout, rng));
  LP_TRY(lp_residual_forward(y, y, a->r1, nd));
  a->B = B;
  a->T = T;
  a->dropped = rng != NULL;
  return LP_OK;
}

int lp_enc_block_backward(const lp_enc_block *blk, const float *params, float *grads,
                          lp_enc_block_acts *a, float *dx, const float *dy) {
  LP_REQUIRE(blk && params && grads && a && dy && dx != dy);
  LP_REQUIRE(a->B >= 1 && same_cfg(&blk->cfg, &a->cfg));
  const lp_block_cfg *c = &a->cfg;
  const int B = a->B, T = a->T, D = c->d_model, N = B * T;
  const size_t nd = (size_t)N * D;
  const float *P = params;
  float *G = grads;
  const int dr = a->dropped;
  const float p = dr ? c->dropout : 0.0f;
  /* y = r1 + Drop(f):  dr1 = dy;  df = Drop'(dy) */
  float *dr1 = a->s0, *df = a->s1, *dln = a->s2;
  memcpy(dr1, dy, sizeof(float) * nd);
  memset(df, 0, sizeof(float) * nd);
  LP_TRY(lp_dropout_backward(df, dy, dr ? a->m_f : NULL, nd, p));
  memset(dln, 0, sizeof(float) * nd);
  LP_TRY(ffn_backward(c, &blk->ffn, P, G, &a->ffn, dln, df, a->ln2, N, dr));
  LP_TRY(lp_layernorm_backward(dr1, G + blk->ln2.g, G + blk->ln2.b, dln, a->r1, a->mean2,
                               a->rstd2, P + blk->ln2.g, N, D));
  /* r1 = x + Drop(attn):  dx += dr1;  dattn = Drop'(dr1) */
  if (dx) LP_TRY(lp_residual_backward(dx, NULL, dr1, nd));
  float *dattn = a->s1;
  memset(dattn, 0, sizeof(float) * nd);
  LP_TRY(lp_dropout_backward(dattn, dr1, dr ? a->m_a : NULL, nd, p));
  memset(dln, 0, sizeof(float) * nd);
  LP_TRY(mha_backward(c, &blk->attn, P, G, &a->attn, &a->ms, dln, dln, dattn, a->ln1, a->ln1,
                      B, T, T, dr));
  return lp_layernorm_backward(dx, G + blk->ln1.g, G + blk->ln1.b, dln, a->x, a->mean1,
                               a->rstd1, P + blk->ln1.g, N, D);
}

/* ---- decoder block -------------------------------------------------------- */

struct lp_dec_block_acts {
  lp_block_cfg cfg;
  int max_B, max_T, max_S;
  int B, T, S;
  int dropped;
  void *mem;
  float *x, *m;               /* [B,T,D], [B,S,D] copies of the inputs */
  float *ln1, *mean1, *rstd1;
  mha_acts sa;                /* causal self-attention */
  uint8_t *m_a1;
  float *r1;
  float *ln2, *mean2, *rstd2;
  mha_acts ca;                /* cross-attention */
  uint8_t *m_a2;
  float *r2;
  float *ln3, *mean3, *rstd3;
  ffn_acts ffn;
  uint8_t *m_f;
  float *s0, *s1, *s2, *s3;   /* [B,T,D] scratch */
  mha_scratch ms;             /* sized for Tk = max(T, S) */
};

static void carve_dec(lp_carve *c, void *p) {
  lp_dec_block_acts *a = p;
  const int B = a->max_B, T = a->max_T, S = a->max_S;
  const size_t N = (size_t)B * T, D = (size_t)a->cfg.d_model, nd = N * D;
  a->x = lp_carve_take(c, sizeof(float) * nd);
  a->m = lp_carve_take(c, sizeof(float) * (size_t)B * S * D);
  a->ln1 = lp_carve_take(c, sizeof(float) * nd);
  a->mean1 = lp_carve_take(c, sizeof(float) * N);
  a->rstd1 = lp_carve_take(c, sizeof(float) * N);
  carve_mha(c, &a->sa, &a->cfg, B, T, T);
  a->m_a1 = lp_carve_take(c, nd);
  a->r1 = lp_carve_take(c, sizeof(float) * nd);
  a->ln2 = lp_carve_take(c, sizeof(float) * nd);
  a->mean2 = lp_carve_take(c, sizeof(float) * N);
  a->rstd2 = lp_carve_take(c, sizeof(float) * N);
  carve_mha(c, &a->ca, &a->cfg, B, T, S);
  a->m_a2 = lp_carve_take(c, nd);
  a->r2 = lp_carve_take(c, sizeof(float) * nd);
  a->ln3 = lp_carve_take(c, sizeof(float) * nd);
  a->mean3 = lp_carve_take(c, sizeof(float) * N);
  a->rstd3 = lp_carve_take(c, sizeof(float) * N);
  carve_ffn(c, &a->ffn, &a->cfg, N);
  a->m_f = lp_carve_take(c, nd);
  a->s0 = lp_carve_take(c, sizeof(float) * nd);
  a->s1 = lp_carve_take(c, sizeof(float) * nd);
  a->s2 = lp_carve_take(c, sizeof(float) * nd);
  a->s3 = lp_carve_take(c, sizeof(float) * nd);
  carve_mha_scratch(c, &a->ms, &a->cfg, B, T, T > S ? T : S);
}

lp_dec_block_acts *lp_dec_block_acts_new(const lp_dec_block *blk, int max_B, int max_T,
                                         int max_S) {
  if (!blk || max_B < 1 || max_T < 1 || max_S < 1) return NULL;
  lp_block_cfg cfg;
  if (cfg_normalize(&cfg, &blk->cfg) != LP_OK || !acts_size_ok(&cfg, max_B, max_T, max_S))
    return NULL;
  lp_dec_block_acts *a = calloc(1, sizeof(*a));
  if (!a) return NULL;
  a->cfg = cfg;
  a->max_B = max_B;
  a->max_T = max_T;
  a->max_S = max_S;
  return carve_arrays(a, &a->mem, carve_dec);
}

void lp_dec_block_acts_free(lp_dec_block_acts *a) {
  if (!a) return;
  free(a->mem);
  free(a);
}

int lp_dec_block_forward(const lp_dec_block *blk, const float *params,
                         lp_dec_block_acts *a, float *y, const float *x,
                         const uint8_t *xmask, const float *mem, const uint8_t *mmask,
                         int B, int T, int S, lp_rng *rng) {
  LP_REQUIRE(blk && params && a && y && x && mem && B >= 1 && T >= 1 && S >= 1);
  LP_REQUIRE(B <= a->max_B && T <= a->max_T && S <= a->max_S &&
             same_cfg(&blk->cfg, &a->cfg));
  const lp_block_cfg *c = &a->cfg;
  const int D = c->d_model, N = B * T;
  const size_t nd = (size_t)N * D;
  const float *P = params;
  a->B = 0;
  memmove(a->x, x, sizeof(float) * nd);
  memmove(a->m, mem, sizeof(float) * (size_t)B * S * D);
  /* r1 = x + Drop(CausalSelfAttn(LN1(x))) */
  LP_TRY(lp_layernorm_forward(a->ln1, a->mean1, a->rstd1, a->x, P + blk->ln1.g,
                              P + blk->ln1.b, N, D, c->ln_eps));
  LP_TRY(mha_forward(c, &blk->self_attn, P, &a->sa, a->s0, a->ln1, a->ln1, xmask, B, T, T,
                     blk->cfg.noncausal ? 0 : 1, rng));
  LP_TRY(lp_dropout_forward(a->r1, a->m_a1, a->s0, nd, c->dropout, rng));
  LP_TRY(lp_residual_forward(a->r1, a->r1, a->x, nd));
  /* r2 = r1 + Drop(CrossAttn(LN2(r1), mem)) */
  LP_TRY(lp_layernorm_forward(a->ln2, a->mean2, a->rstd2, a->r1, P + blk->ln2.g,
                              P + blk->ln2.b, N, D, c->ln_eps));
  LP_TRY(mha_forward(c, &blk->cross_attn, P, &a->ca, a->s0, a->ln2, a->m, mmask, B, T, S, 0,
                     rng));
  LP_TRY(lp_dropout_forward(a->r2, a->m_a2, a->s0, nd, c->dropout, rng));
  LP_TRY(lp_residual_forward(a->r2, a->r2, a->r1, nd));
  /* y = r2 + Drop(FFN(LN3(r2))) */
  LP_TRY(lp_layernorm_forward(a->ln3, a->mean3, a->rstd3, a->r2, P + blk->ln3.g,
                              P + blk->ln3.b, N, D, c->ln_eps));
  LP_TRY(ffn_forward(c, &blk->ffn, P, &a->ffn, a->s0, a->ln3, N, rng));
  LP_TRY(lp_dropout_forward(y, a->m_f, a->s0, nd, c->dropout, rng));
  LP_TRY(lp_residual_forward(y, y, a->r2, nd));
  a->B = B;
  a->T = T;
  a->S = S;
  a->dropped = rng != NULL;
  return LP_OK;
}

int lp_dec_block_backward(const lp_dec_block *blk, const float *params, float *grads,
                          lp_dec_block_acts *a, float *dx, float *dmem,
                          const float *dy) {
  LP_REQUIRE(blk && params && grads && a && dy && dx != dy);
  LP_REQUIRE(a->B >= 1 && same_cfg(&blk->cfg, &a->cfg));
  const lp_block_cfg *c = &a->cfg;
  const int B = a->B, T = a->T, S = a->S, D = c->d_model, N = B * T;
  const size_t nd = (size_t)N * D;
  const float *P = params;
  float *G = grads;
  const int dr = a->dropped;
  const float p = dr ? c->dropout : 0.0f;
  float *dr2 = a->s0, *tmp = a->s1, *dln = a->s2, *dr1 = a->s3;
  /* y = r2 + Drop(FFN(LN3(r2))) */
  memcpy(dr2, dy, sizeof(float) * nd);
  memset(tmp, 0, sizeof(float) * nd);
  LP_TRY(lp_dropout_backward(tmp, dy, dr ? a->m_f : NULL, nd, p));
  memset(dln, 0, sizeof(float) * nd);
  LP_TRY(ffn_backward(c, &blk->ffn, P, G, &a->ffn, dln, tmp, a->ln3, N, dr));
  LP_TRY(lp_layernorm_backward(dr2, G + blk->ln3.g, G + blk->ln3.b, dln, a->r2, a->mean3,
                               a->rstd3, P + blk->ln3.g, N, D));
  /* r2 = r1 + Drop(CrossAttn(LN2(r1), mem)) */
  memcpy(dr1, dr2, sizeof(float) * nd);
  memset(tmp, 0, sizeof(float) * nd);
  LP_TRY(lp_dropout_backward(tmp, dr2, dr ? a->m_a2 : NULL, nd, p));
  memset(dln, 0, sizeof(float) * nd);
  LP_TRY(mha_backward(c, &blk->cross_attn, P, G, &a->ca, &a->ms, dln, dmem, tmp, a->ln2, a->m,
                      B, T, S, dr));
  LP_TRY(lp_layernorm_backward(dr1, G + blk->ln2.g, G + blk->ln2.b, dln, a->r1, a->mean2,
                               a->rstd2, P + blk->ln2.g, N, D));
  /* r1 = x + Drop(CausalSelfAttn(LN1(x))) */
  if (dx) LP_TRY(lp_residual_backward(dx, NULL, dr1, nd));
  memset(tmp, 0, sizeof(float) * nd);
  LP_TRY(lp_dropout_backward(tmp, dr1, dr ? a->m_a1 : NULL, nd, p));
  memset(dln, 0, sizeof(float) * nd);
  LP_TRY(mha_backward(c, &blk->self_attn, P, G, &a->sa, &a->ms, dln, dln, tmp, a->ln1, a->ln1,
                      B, T, T, dr));
  return lp_layernorm_backward(dx, G + blk->ln1.g, G + blk->ln1.b, dln, a->x, a->mean1,
                               a->rstd1, P + blk->ln1.g, N, D);
}

/* ---- incremental decoding with a key/value cache --------------------------- */

struct lp_dec_block_cache {
  lp_block_cfg cfg;
  int max_N, max_T, max_M, max_S;
  int M, S;   /* memory rows and length (M = 0: no memory set yet) */
  int N;      /* rows of the self-attention cache (0 before the first step) */
  int len;    /* cached positions */
  void *mem;
  float *kc, *vc;          /* [max_M,max_S,Dq] cross-attention keys / values */
  float *mmask;            /* [max_M,max_S] key mask as 0/1 floats */
  float *k, *v, *k2, *v2;  /* [max_N,max_T,Dq] self-attention cache (+ gather target) */
  float *ln, *o, *r1, *r2; /* [max_N,D] */
  float *q, *ctx;          /* [max_N,Dq] */
  float *h;                /* [max_N,F] */
  float *sc;               /* [max(H*max_T, max_N*max_S)] scores */
};

static void carve_cache(lp_carve *c, void *p) {
  lp_dec_block_cache *a = p;
  const size_t D = (size_t)a->cfg.d_model, Dq = (size_t)a->cfg.d_qkv, F = (size_t)a->cfg.d_ff;
  const size_t N = (size_t)a->max_N, ms = (size_t)a->max_M * a->max_S;
  const size_t kv = N * (size_t)a->max_T * Dq;
  a->kc = lp_carve_take(c, sizeof(float) * ms * Dq);
  a->vc = lp_carve_take(c, sizeof(float) * ms * Dq);
  a->mmask = lp_carve_take(c, sizeof(float) * ms);
  a->k = lp_carve_take(c, sizeof(float) * kv);
  a->v = lp_carve_take(c, sizeof(float) * kv);
  a->k2 = lp_carve_take(c, sizeof(float) * kv);
  a->v2 = lp_carve_take(c, sizeof(float) * kv);
  a->ln = lp_carve_take(c, sizeof(float) * N * D);
  a->o = lp_carve_take(c, sizeof(float) * N * D);
  a->r1 = lp_carve_take(c, sizeof(float) * N * D);
  a->r2 = lp_carve_take(c, sizeof(float) * N * D);
  a->q = lp_carve_take(c, sizeof(float) * N * Dq);
  a->ctx = lp_carve_take(c, sizeof(float) * N * Dq);
  a->h = lp_carve_take(c, sizeof(float) * N * F);
  size_t nsc = N * (size_t)a->max_S;
  if ((size_t)a->max_T * a->cfg.n_heads > nsc) nsc = (size_t)a->max_T * a->cfg.n_heads;
  a->sc = lp_carve_take(c, sizeof(float) * nsc);
}

lp_dec_block_cache *lp_dec_block_cache_new(const lp_dec_block *blk, int max_N, int max_T,
                                           int max_M, int max_S) {
  if (!blk || max_N < 1 || max_T < 1 || max_M < 1 || max_S < 1) return NULL;
  lp_block_cfg cfg;
  if (cfg_normalize(&cfg, &blk->cfg) != LP_OK || cfg.noncausal) return NULL;
  if (!acts_size_ok(&cfg, max_N, max_T, max_S) || !acts_size_ok(&cfg, max_M, max_S, max_S) ||
      lp_prod4(max_N, max_T, cfg.d_qkv, 64) == 0 || lp_prod2(max_N, max_S) > (size_t)INT_MAX)
    return NULL;
  lp_dec_block_cache *a = calloc(1, sizeof(*a));
  if (!a) return NULL;
  a->cfg = cfg;
  a->max_N = max_N;
  a->max_T = max_T;
  a->max_M = max_M;
  a->max_S = max_S;
  return carve_arrays(a, &a->mem, carve_cache);
}

void lp_dec_block_cache_free(lp_dec_block_cache *c) {
  if (!c) return;
  free(c->mem);
  free(c);
}

void lp_dec_block_cache_reset(lp_dec_block_cache *c) {
  if (!c) return;
  c->len = 0;
  c->N = 0;
}

int lp_dec_block_cache_len(const lp_dec_block_cache *c) { return c ? c->len : 0; }

/* C[N,OC] (leading dimension ldc) = A[N,C] W[C,OC] + b (b may be NULL). */
static void linear_ld(float *C, int ldc, const float *A, const float *W, const float *b, int N,
                      int Cin, int OC) {
  if (b)
    for (int n = 0; n < N; n++) memcpy(C + (size_t)n * ldc, b, sizeof(float) * (size_t)OC);
  lp_gemm(0, 0, N, OC, Cin, 1.0f, A, Cin, W, OC, b ? 1.0f : 0.0f, C, ldc);
}

int lp_dec_block_cache_set_mem(const lp_dec_block *blk, const float *params,
                               lp_dec_block_cache *c, const float *mem,
                               const uint8_t *mmask, int M, int S) {
  LP_REQUIRE(blk && params && c && mem && M >= 1 && S >= 1);
  LP_REQUIRE(M <= c->max_M && S <= c->max_S && same_cfg(&blk->cfg, &c->cfg) &&
             !blk->cfg.noncausal);
  const int D = c->cfg.d_model, Dq = c->cfg.d_qkv;
  const float *P = params;
  const lp_mha_off *o = &blk->cross_attn;
  LP_TRY(lp_linear_forward(c->kc, mem, P + o->wk, PTR(P, o->bk), M * S, D, Dq));
  LP_TRY(lp_linear_forward(c->vc, mem, P + o->wv, PTR(P, o->bv), M * S, D, Dq));
  for (size_t i = 0; i < (size_t)M * S; i++) c->mmask[i] = !mmask || mmask[i] ? 1.0f : 0.0f;
  c->M = M;
  c->S = S;
  c->len = 0;
  c->N = 0;
  return LP_OK;
}

int lp_dec_block_cache_reorder(lp_dec_block_cache *c, const int32_t *src, int N) {
  LP_REQUIRE(c && src && N >= 1 && N <= c->max_N && c->M >= 1 && N % c->M == 0);
  /* In place when every source row keeps its place (src[s] == s for every
   * s = src[i]): then no row that is read is written. Beam search arranges
   * that (each parent's first child stays in the parent's row), so only the
   * extra children are copied. Otherwise gather into the spare buffers. */
  int in_place = 1, identity = N == c->N;
  for (int i = 0; i < N; i++) {
    LP_REQUIRE(src[i] >= 0 && src[i] < c->N);
    identity = identity && src[i] == i;
    if (src[i] != i && !(src[i] < N && src[src[i]] == src[i])) in_place = 0;
  }
  const size_t row = (size_t)c->max_T * c->cfg.d_qkv;
  const size_t used = sizeof(float) * (size_t)c->len * c->cfg.d_qkv;
  if (identity) {
    /* nothing moves */
  } else if (in_place) {
    for (int i = 0; i < N; i++)
      if (src[i] != i) {
        memcpy(c->k + (size_t)i * row, c->k + (size_t)src[i] * row, used);
        memcpy(c->v + (size_t)i * row, c->v + (size_t)src[i] * row, used);
      }
  } else {
    for (int i = 0; i < N; i++) {
      memcpy(c->k2 + (size_t)i * row, c->k + (size_t)src[i] * row, used);
      memcpy(c->v2 + (size_t)i * row, c->v + (size_t)src[i] * row, used);
    }
    float *t = c->k;
    c->k = c->k2;
    c->k2 = t;
    t = c->v;
    c->v = c->v2;
    c->v2 = t;
  }
  c->N = N;
  return LP_OK;
}

int lp_dec_block_step(const lp_dec_block *blk, const float *params, lp_dec_block_cache *c,
                      float *y, const float *x, int N) {
  LP_REQUIRE(blk && params && c && y && x && N >= 1 && N <= c->max_N);
  LP_REQUIRE(same_cfg(&blk->cfg, &c->cfg) && !blk->cfg.noncausal);
  LP_REQUIRE(c->M >= 1 && N % c->M == 0 && c->len < c->max_T);
  LP_REQUIRE(c->len == 0 || N == c->N);
  const lp_block_cfg *cf = &c->cfg;
  const int D = cf->d_model, Dq = cf->d_qkv, F = cf->d_ff, H = cf->n_heads, dh = Dq / H;
  const int M = c->M, S = c->S, R = N / M, t = c->len, L = t + 1;
  const float scale = 1.0f / sqrtf((float)dh);
  const size_t row = (size_t)c->max_T * Dq;
  const float *P = params;
  /* r1 = x + SelfAttn(LN1(x)) over the cached positions 0..t */
  LP_TRY(lp_layernorm_forward(c->ln, NULL, NULL, x, P + blk->ln1.g, P + blk->ln1.b, N, D,
                              cf->ln_eps));
  const lp_mha_off *sa = &blk->self_attn;
  LP_TRY(lp_linear_forward(c->q, c->ln, P + sa->wq, PTR(P, sa->bq), N, D, Dq));
  linear_ld(c->k + (size_t)t * Dq, (int)row, c->ln, P + sa->wk, PTR(P, sa->bk), N, D, Dq);
  linear_ld(c->v + (size_t)t * Dq, (int)row, c->ln, P + sa->wv, PTR(P, sa->bv), N, D, Dq);
  float *sc = c->sc; /* [H, L] scores of one row */
  for (int n = 0; n < N; n++) {
    const float *Kn = c->k + (size_t)n * row, *Vn = c->v + (size_t)n * row;
    const float *qn = c->q + (size_t)n * Dq;
    float *out = c->ctx + (size_t)n * Dq;
    for (int j = 0; j < L; j++) {
      const float *kj = Kn + (size_t)j * Dq;
      for (int h = 0; h < H; h++)
        sc[(size_t)h * L + j] = scale * dot_f(qn + h * dh, kj + h * dh, dh);
    }
    memset(out, 0, sizeof(float) * (size_t)Dq);
    for (int h = 0; h < H; h++) {
      float *sh = sc + (size_t)h * L;
      softmax_row_v(sh, L, L, NULL);
      for (int j = 0; j < L; j++) axpy_f(out + h * dh, sh[j], Vn + (size_t)j * Dq + h * dh, dh);
    }
  }
  LP_TRY(lp_linear_forward(c->o, c->ctx, P + sa->wo, PTR(P, sa->bo), N, Dq, D));
  LP_TRY(lp_residual_forward(c->r1, x, c->o, (size_t)N * D));
  /* r2 = r1 + CrossAttn(LN2(r1), memory row n % M) */
  LP_TRY(lp_layernorm_forward(c->ln, NULL, NULL, c->r1, P + blk->ln2.g, P + blk->ln2.b, N, D,
                              cf->ln_eps));
  const lp_mha_off *ca = &blk->cross_attn;
  LP_TRY(lp_linear_forward(c->q, c->ln, P + ca->wq, PTR(P, ca->bq), N, D, Dq));
  for (int m = 0; m < M; m++) {
    const float *km = c->mmask + (size_t)m * S;
    for (int h = 0; h < H; h++) {
      const float *Q = c->q + (size_t)m * Dq + (size_t)h * dh; /* R rows, ld M*Dq */
      const float *K = c->kc + (size_t)m * S * Dq + (size_t)h * dh;
      const float *V = c->vc + (size_t)m * S * Dq + (size_t)h * dh;
      float *O = c->ctx + (size_t)m * Dq + (size_t)h * dh;
      lp_gemm(0, 1, R, S, dh, scale, Q, M * Dq, K, Dq, 0.0f, sc, S);
      for (int r = 0; r < R; r++) softmax_row_v(sc + (size_t)r * S, S, S, km);
      lp_gemm(0, 0, R, dh, S, 1.0f, sc, S, V, Dq, 0.0f, O, M * Dq);
    }
  }
  LP_TRY(lp_linear_forward(c->o, c->ctx, P + ca->wo, PTR(P, ca->bo), N, Dq, D));
  LP_TRY(lp_residual_forward(c->r2, c->r1, c->o, (size_t)N * D));
  /* y = r2 + FFN(LN3(r2)) */
  LP_TRY(lp_layernorm_forward(c->ln, NULL, NULL, c->r2, P + blk->ln3.g, P + blk->ln3.b, N, D,
                              cf->ln_eps));
  LP_TRY(lp_linear_forward(c->h, c->ln, P + blk->ffn.w1, P + blk->ffn.b1, N, D, F));
  gelu_drop_fwd(c->h, c->h, NULL, 1.0f, (size_t)N * F);
  LP_TRY(lp_linear_forward(c->o, c->h, P + blk->ffn.w2, P + blk->ffn.b2, N, F, D));
  LP_TRY(lp_residual_forward(y, c->r2, c->o, (size_t)N * D));
  c->N = N;
  c->len = t + 1;
  return LP_OK;
}
