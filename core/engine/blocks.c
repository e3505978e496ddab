/* Pre-LayerNorm Transformer encoder and decoder blocks built from the
 * primitive ops, with parameters at layout offsets and activations in an
 * lp_*_block_acts object. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define PTR(base, off) ((off) == LP_NO_PARAM ? NULL : (base) + (off))

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
} mha_acts;

typedef struct mha_scratch {
  float *dq, *dk, *dv, *dctx; /* [B,Tq,Dq], [B,Tk,Dq] x2, [B,Tq,Dq] */
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
}

static void carve_mha_scratch(lp_carve *c, mha_scratch *s, const lp_block_cfg *cfg, int B,
                              int Tq, int Tk) {
  size_t Dq = (size_t)cfg->d_qkv;
  s->dq = lp_carve_take(c, sizeof(float) * (size_t)B * Tq * Dq);
  s->dk = lp_carve_take(c, sizeof(float) * (size_t)B * Tk * Dq);
  s->dv = lp_carve_take(c, sizeof(float) * (size_t)B * Tk * Dq);
  s->dctx = lp_carve_take(c, sizeof(float) * (size_t)B * Tq * Dq);
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
  LP_TRY(lp_attention_forward(a->ctx, a->att, a->dmask, a->q, a->k, a->v, kmask, B, Tq, Tk,
                              H, Dq / H, causal, c->attn_dropout, rng));
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
  LP_TRY(lp_attention_backward(s->dq, s->dk, s->dv, s->dctx, a->att,
                               dropped ? a->dmask : NULL, a->q, a->k, a->v, B, Tq, Tk, H,
                               Dq / H, dropped ? c->attn_dropout : 0.0f));
  LP_TRY(lp_linear_backward(dzq, G + o->wq, PTR(G, o->bq), s->dq, zq, P + o->wq, Nq, D, Dq));
  LP_TRY(lp_linear_backward(dzkv, G + o->wk, PTR(G, o->bk), s->dk, zkv, P + o->wk, Nk, D, Dq));
  return lp_linear_backward(dzkv, G + o->wv, PTR(G, o->bv), s->dv, zkv, P + o->wv, Nk, D, Dq);
}

typedef struct ffn_acts {
  float *h;    /* [N,F] pre-activation */
  float *gd;   /* [N,F] dropout(gelu(h)) */
  uint8_t *m;  /* [N,F] dropout mask */
  float *s0, *s1; /* [N,F] backward scratch */
} ffn_acts;

static void carve_ffn(lp_carve *c, ffn_acts *a, const lp_block_cfg *cfg, size_t N) {
  size_t nf = N * (size_t)cfg->d_ff;
  a->h = lp_carve_take(c, sizeof(float) * nf);
  a->gd = lp_carve_take(c, sizeof(float) * nf);
  a->m = lp_carve_take(c, nf);
  a->s0 = lp_carve_take(c, sizeof(float) * nf);
  a->s1 = lp_carve_take(c, sizeof(float) * nf);
}

/* out[N,D] = Drop(GELU(z W1 + b1)) W2 + b2 (the final dropout is the caller's). */
static int ffn_forward(const lp_block_cfg *c, const lp_ffn_off *o, const float *P,
                       ffn_acts *a, float *out, const float *z, int N, lp_rng *rng) {
  const int D = c->d_model, F = c->d_ff;
  const size_t nf = (size_t)N * F;
  LP_TRY(lp_linear_forward(a->h, z, P + o->w1, P + o->b1, N, D, F));
  LP_TRY(lp_gelu_forward(a->gd, a->h, nf));
  LP_TRY(lp_dropout_forward(a->gd, a->m, a->gd, nf, c->dropout, rng));
  return lp_linear_forward(out, a->gd, P + o->w2, P + o->b2, N, F, D);
}

static int ffn_backward(const lp_block_cfg *c, const lp_ffn_off *o, const float *P,
                        float *G, ffn_acts *a, float *dz, const float *dout, const float *z,
                        int N, int dropped) {
  const int D = c->d_model, F = c->d_ff;
  const size_t nf = (size_t)N * F;
  memset(a->s0, 0, sizeof(float) * nf);
  LP_TRY(lp_linear_backward(a->s0, G + o->w2, G + o->b2, dout, a->gd, P + o->w2, N, F, D));
  memset(a->s1, 0, sizeof(float) * nf);
  LP_TRY(lp_dropout_backward(a->s1, a->s0, dropped ? a->m : NULL, nf,
                             dropped ? c->dropout : 0.0f));
  memset(a->s0, 0, sizeof(float) * nf);
  LP_TRY(lp_gelu_backward(a->s0, a->s1, a->h, nf));
  return lp_linear_backward(dz, G + o->w1, G + o->b1, a->s0, z, P + o->w1, N, D, F);
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

static void carve_enc(lp_carve *c, lp_enc_block_acts *a) {
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

static void *alloc_carved(size_t bytes) {
  size_t n = (bytes + 63u) & ~(size_t)63u;
  return aligned_alloc(64, n ? n : 64);
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
  lp_carve c = {NULL, 0};
  carve_enc(&c, a);
  a->mem = alloc_carved(c.used);
  if (!a->mem) {
    free(a);
    return NULL;
  }
  c.base = a->mem;
  c.used = 0;
  carve_enc(&c, a);
  return a;
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

static void carve_dec(lp_carve *c, lp_dec_block_acts *a) {
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
  lp_carve c = {NULL, 0};
  carve_dec(&c, a);
  a->mem = alloc_carved(c.used);
  if (!a->mem) {
    free(a);
    return NULL;
  }
  c.base = a->mem;
  c.used = 0;
  carve_dec(&c, a);
  return a;
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
  LP_TRY(mha_forward(c, &blk->self_attn, P, &a->sa, a->s0, a->ln1, a->ln1, xmask, B, T, T, 1,
                     rng));
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
