/* The op table: one entry per op (and per variant worth checking on its own)
 * with its forward/backward names and a finite-difference case.
 *
 * A case builds small random inputs, defines out = forward(inputs) and the
 * scalar loss L = sum_i w_i out_i for a fixed random w, runs backward with
 * dout = w into gradients pre-filled with noise (so a backward that assigns
 * instead of accumulating fails), subtracts the noise and compares each
 * input's gradient with central differences of L (lp_gradcheck). Randomness
 * inside forward (dropout) is reseeded on every call so L is deterministic. */
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h" /* LP_TRY, LP_REQUIRE */
#include "gradcheck.h"

#define GC_MAX_IN 6
#define GC_MAX_ALLOC 48

typedef struct gc_case gc_case;
struct gc_case {
  int n_in;
  float *in[GC_MAX_IN];
  float *gin[GC_MAX_IN];
  size_t in_n[GC_MAX_IN];
  float *out, *w; /* [out_n] */
  size_t out_n;
  int scalar;        /* the output is the double scalar_out (out_n == 1) */
  double scalar_out;
  int (*fwd)(gc_case *c);
  int (*bwd)(gc_case *c); /* dout = c->w */
  lp_rng rng;             /* for building inputs */
  uint64_t fwd_seed;      /* reseeds forward randomness */
  int err;                /* first forward error during the check */
  void *allocs[GC_MAX_ALLOC];
  int n_alloc;
  /* op-specific state */
  int i[8];
  float f[2];
  int32_t *ids;
  uint8_t *m0, *m1;
  float *s0, *s1, *s2;
  int32_t *am;
  const void *blk;
  void *acts;
  void (*acts_free)(void *);
};

static void *gc_alloc(gc_case *c, size_t bytes) {
  if (c->n_alloc >= GC_MAX_ALLOC) return NULL;
  void *p = calloc(bytes ? bytes : 1, 1);
  if (p) c->allocs[c->n_alloc++] = p;
  return p;
}

static float *gc_floats(gc_case *c, size_t n) { return gc_alloc(c, n * sizeof(float)); }

static void gc_free(gc_case *c) {
  for (int i = 0; i < c->n_alloc; i++) free(c->allocs[i]);
  if (c->acts && c->acts_free) c->acts_free(c->acts);
  c->n_alloc = 0;
  c->acts = NULL;
}

/* Adds an input of n floats filled with N(0, scale^2) (+ shift). */
static float *gc_input(gc_case *c, size_t n, float scale, float shift) {
  if (c->n_in >= GC_MAX_IN) return NULL;
  float *x = gc_floats(c, n), *g = gc_floats(c, n);
  if (!x || !g) return NULL;
  for (size_t i = 0; i < n; i++) x[i] = shift + scale * lp_rng_normal(&c->rng);
  c->in[c->n_in] = x;
  c->gin[c->n_in] = g;
  c->in_n[c->n_in] = n;
  c->n_in++;
  return x;
}

static int gc_output(gc_case *c, size_t n) {
  c->out = gc_floats(c, n);
  c->w = gc_floats(c, n);
  c->out_n = n;
  if (!c->out || !c->w) return LP_ENOMEM;
  for (size_t i = 0; i < n; i++) c->w[i] = lp_rng_normal(&c->rng);
  return LP_OK;
}

static double gc_loss(void *ctx) {
  gc_case *c = ctx;
  int rc = c->fwd(c);
  if (rc != LP_OK && c->err == LP_OK) c->err = rc;
  if (c->scalar) return (double)c->w[0] * c->scalar_out;
  double s = 0.0;
  for (size_t i = 0; i < c->out_n; i++) s += (double)c->w[i] * c->out[i];
  return s;
}

static int gc_run(gc_case *c, const lp_gc_opts *o, lp_gc_result *res) {
  LP_TRY(c->fwd(c));
  float *noise[GC_MAX_IN];
  for (int k = 0; k < c->n_in; k++) {
    noise[k] = gc_floats(c, c->in_n[k]);
    if (!noise[k]) return LP_ENOMEM;
    for (size_t i = 0; i < c->in_n[k]; i++) {
      noise[k][i] = lp_rng_normal(&c->rng);
      c->gin[k][i] = noise[k][i];
    }
  }
  LP_TRY(c->bwd(c));
  for (int k = 0; k < c->n_in; k++)
    for (size_t i = 0; i < c->in_n[k]; i++) c->gin[k][i] -= noise[k][i];
  lp_gc_result_init(res);
  for (int k = 0; k < c->n_in; k++) {
    lp_gc_result r;
    LP_TRY(lp_gradcheck(gc_loss, c, c->in[k], c->gin[k], c->in_n[k], o, &r));
    lp_gc_result_merge(res, &r);
  }
  return c->err;
}

/* Sets up a case, runs it, frees it. build() returns LP_OK or an error. */
static int gc_do(int (*build)(gc_case *c), const lp_gc_opts *o, lp_gc_result *res) {
  LP_REQUIRE(res);
  lp_gc_opts opt;
  if (o)
    opt = *o;
  else
    lp_gc_opts_default(&opt);
  gc_case c;
  memset(&c, 0, sizeof c);
  lp_rng_seed(&c.rng, opt.seed);
  c.fwd_seed = opt.seed ^ 0x5eedull;
  int rc = build(&c);
  if (rc == LP_OK) rc = gc_run(&c, &opt, res);
  gc_free(&c);
  return rc;
}

#define NEED(p)                 \
  do {                          \
    if (!(p)) return LP_ENOMEM; \
  } while (0)

/* ---- embedding ----------------------------------------------------------- */

static int emb_fwd(gc_case *c) {
  return lp_embedding_forward(c->out, c->ids, c->in[0], c->i[0], c->i[1], c->i[2], 0);
}
static int emb_bwd(gc_case *c) {
  return lp_embedding_backward(c->gin[0], c->w, c->ids, c->i[0], c->i[1], c->i[2], 0);
}
static int emb_build(gc_case *c) {
  int N = 9, V = 7, D = 5;
  static const int32_t ids[9] = {3, 0, 1, 3, 6, 2, 0, 5, 3}; /* 0 = pad, 4 unused */
  c->i[0] = N, c->i[1] = V, c->i[2] = D;
  NEED(c->ids = gc_alloc(c, sizeof ids));
  memcpy(c->ids, ids, sizeof ids);
  NEED(gc_input(c, (size_t)V * D, 1.0f, 0.0f));
  c->fwd = emb_fwd, c->bwd = emb_bwd;
  return gc_output(c, (size_t)N * D);
}

/* ---- position encoding --------------------------------------------------- */

static int pe_fwd(gc_case *c) {
  return lp_posenc_forward(c->out, c->in[0], c->i[0], c->i[1], c->i[2], 3);
}
static int pe_bwd(gc_case *c) {
  return lp_posenc_backward(c->gin[0], c->w, c->i[0], c->i[1], c->i[2]);
}
static int pe_build(gc_case *c) {
  c->i[0] = 2, c->i[1] = 5, c->i[2] = 6;
  NEED(gc_input(c, 60, 1.0f, 0.0f));
  c->fwd = pe_fwd, c->bwd = pe_bwd;
  return gc_output(c, 60);
}

/* ---- linear -------------------------------------------------------------- */

static int lin_fwd(gc_case *c) {
  return lp_linear_forward(c->out, c->in[0], c->in[1], c->in[2], c->i[0], c->i[1], c->i[2]);
}
static int lin_bwd(gc_case *c) {
  return lp_linear_backward(c->gin[0], c->gin[1], c->gin[2], c->w, c->in[0], c->in[1],
                            c->i[0], c->i[1], c->i[2]);
}
static int lin_build(gc_case *c) {
  int N = 6, C = 5, OC = 4;
  c->i[0] = N, c->i[1] = C, c->i[2] = OC;
  NEED(gc_input(c, (size_t)N * C, 1.0f, 0.0f));
  NEED(gc_input(c, (size_t)C * OC, 0.5f, 0.0f));
  NEED(gc_input(c, (size_t)OC, 0.5f, 0.0f));
  c->fwd = lin_fwd, c->bwd = lin_bwd;
  return gc_output(c, (size_t)N * OC);
}

/* ---- layer norm ---------------------------------------------------------- */

static int ln_fwd(gc_case *c) {
  return lp_layernorm_forward(c->out, c->s0, c->s1, c->in[0], c->in[1], c->in[2], c->i[0],
                              c->i[1], 1e-5f);
}
static int ln_bwd(gc_case *c) {
  return lp_layernorm_backward(c->gin[0], c->gin[1], c->gin[2], c->w, c->in[0], c->s0, c->s1,
                               c->in[1], c->i[0], c->i[1]);
}
static int ln_build(gc_case *c) {
  int N = 5, C = 8;
  c->i[0] = N, c->i[1] = C;
  NEED(gc_input(c, (size_t)N * C, 1.0f, 0.3f));
  NEED(gc_input(c, (size_t)C, 0.3f, 1.0f));
  NEED(gc_input(c, (size_t)C, 0.3f, 0.0f));
  NEED(c->s0 = gc_floats(c, (size_t)N));
  NEED(c->s1 = gc_floats(c, (size_t)N));
  c->fwd = ln_fwd, c->bwd = ln_bwd;
  return gc_output(c, (size_t)N * C);
}

/* ---- GELU ---------------------------------------------------------------- */

static int gelu_fwd(gc_case *c) { return lp_gelu_forward(c->out, c->in[0], c->out_n); }
static int gelu_bwd(gc_case *c) {
  return lp_gelu_backward(c->gin[0], c->w, c->in[0], c->out_n);
}
static int gelu_build(gc_case *c) {
  NEED(gc_input(c, 48, 1.5f, 0.0f));
  c->fwd = gelu_fwd, c->bwd = gelu_bwd;
  return gc_output(c, 48);
}

/* ---- softmax / log-softmax ----------------------------------------------- */

static int sm_fwd(gc_case *c) { return lp_softmax_forward(c->out, c->in[0], c->i[0], c->i[1]); }
static int sm_bwd(gc_case *c) {
  return lp_softmax_backward(c->gin[0], c->w, c->out, c->i[0], c->i[1]);
}
static int lsm_fwd(gc_case *c) {
  return lp_log_softmax_forward(c->out, c->in[0], c->i[0], c->i[1]);
}
static int lsm_bwd(gc_case *c) {
  return lp_log_softmax_backward(c->gin[0], c->w, c->out, c->i[0], c->i[1]);
}
static int sm_build_common(gc_case *c) {
  c->i[0] = 4, c->i[1] = 7;
  NEED(gc_input(c, 28, 1.5f, 0.0f));
  return gc_output(c, 28);
}
static int sm_build(gc_case *c) {
  c->fwd = sm_fwd, c->bwd = sm_bwd;
  return sm_build_common(c);
}
static int lsm_build(gc_case *c) {
  c->fwd = lsm_fwd, c->bwd = lsm_bwd;
  return sm_build_common(c);
}

/* ---- residual / concat --------------------------------------------------- */

static int res_fwd(gc_case *c) { return lp_residual_forward(c->out, c->in[0], c->in[1], 30); }
static int res_bwd(gc_case *c) { return lp_residual_backward(c->gin[0], c->gin[1], c->w, 30); }
static int res_build(gc_case *c) {
  NEED(gc_input(c, 30, 1.0f, 0.0f));
  NEED(gc_input(c, 30, 1.0f, 0.0f));
  c->fwd = res_fwd, c->bwd = res_bwd;
  return gc_output(c, 30);
}

static int cat_fwd(gc_case *c) { return lp_concat_forward(c->out, c->in[0], c->in[1], 4, 3, 5); }
static int cat_bwd(gc_case *c) { return lp_concat_backward(c->gin[0], c->gin[1], c->w, 4, 3, 5); }
static int cat_build(gc_case *c) {
  NEED(gc_input(c, 12, 1.0f, 0.0f));
  NEED(gc_input(c, 20, 1.0f, 0.0f));
  c->fwd = cat_fwd, c->bwd = cat_bwd;
  return gc_output(c, 32);
}

/* ---- dropout ------------------------------------------------------------- */

static int drop_fwd(gc_case *c) {
  lp_rng r;
  lp_rng_seed(&r, c->fwd_seed);
  return lp_dropout_forward(c->out, c->m0, c->in[0], c->out_n, c->f[0], &r);
}
static int drop_bwd(gc_case *c) {
  return lp_dropout_backward(c->gin[0], c->w, c->m0, c->out_n, c->f[0]);
}
static int drop_build(gc_case *c) {
  c->f[0] = 0.3f;
  NEED(gc_input(c, 64, 1.0f, 0.0f));
  NEED(c->m0 = gc_alloc(c, 64));
  c->fwd = drop_fwd, c->bwd = drop_bwd;
  return gc_output(c, 64);
}

/* ---- attention ----------------------------------------------------------- */
/* i: B, Tq, Tk, H, dh, causal, with key mask (m1), with dropout (f[0]) */

static int att_fwd(gc_case *c) {
  lp_rng r;
  lp_rng_seed(&r, c->fwd_seed);
  return lp_attention_forward(c->out, c->s0, c->m0, c->in[0], c->in[1], c->in[2], c->m1,
                              c->i[0], c->i[1], c->i[2], c->i[3], c->i[4], c->i[5], c->f[0],
                              c->f[0] > 0.0f ? &r : NULL);
}
static int att_bwd(gc_case *c) {
  return lp_attention_backward(c->gin[0], c->gin[1], c->gin[2], c->w, c->s0,
                               c->f[0] > 0.0f ? c->m0 : NULL, c->in[0], c->in[1], c->in[2],
                               c->i[0], c->i[1], c->i[2], c->i[3], c->i[4], c->f[0]);
}
static int att_build_common(gc_case *c, int B, int Tq, int Tk, int H, int dh, int causal,
                            int masked, float p) {
  c->i[0] = B, c->i[1] = Tq, c->i[2] = Tk, c->i[3] = H, c->i[4] = dh, c->i[5] = causal;
  c->f[0] = p;
  size_t Dq = (size_t)H * dh;
  NEED(gc_input(c, (size_t)B * Tq * Dq, 1.0f, 0.0f));
  NEED(gc_input(c, (size_t)B * Tk * Dq, 1.0f, 0.0f));
  NEED(gc_input(c, (size_t)B * Tk * Dq, 1.0f, 0.0f));
  size_t natt = (size_t)B * H * Tq * Tk;
  NEED(c->s0 = gc_floats(c, natt));
  NEED(c->m0 = gc_alloc(c, natt));
  if (masked) {
    NEED(c->m1 = gc_alloc(c, (size_t)B * Tk));
    for (int b = 0; b < B; b++)
      for (int j = 0; j < Tk; j++) /* batch b has its last b+1 keys padded */
        c->m1[(size_t)b * Tk + j] = j < Tk - 1 - b;
  }
  c->fwd = att_fwd, c->bwd = att_bwd;
  return gc_output(c, (size_t)B * Tq * Dq);
}
static int att_self_build(gc_case *c) { return att_build_common(c, 2, 5, 5, 2, 3, 0, 1, 0.0f); }
static int att_causal_build(gc_case *c) {
  return att_build_common(c, 2, 5, 5, 2, 3, 1, 1, 0.0f);
}
static int att_cross_build(gc_case *c) {
  return att_build_common(c, 2, 4, 6, 3, 2, 0, 1, 0.0f);
}
static int att_prefix_build(gc_case *c) { /* causal, Tq < Tk: cached prefix */
  return att_build_common(c, 2, 2, 5, 2, 3, 1, 0, 0.0f);
}
static int att_drop_build(gc_case *c) {
  return att_build_common(c, 2, 4, 5, 2, 3, 1, 1, 0.25f);
}

/* ---- cross-entropy ------------------------------------------------------- */

static int ce_fwd(gc_case *c) {
  c->scalar = 1;
  return lp_cross_entropy_forward(&c->scalar_out, c->s0, NULL, NULL, c->in[0], c->ids,
                                  c->i[0], c->i[1], 0);
}
static int ce_bwd(gc_case *c) {
  return lp_cross_entropy_backward(c->gin[0], c->s0, c->ids, c->i[0], c->i[1], 0, c->w[0]);
}
static int ce_build(gc_case *c) {
  int N = 7, V = 5;
  static const int32_t t[7] = {2, 0, 4, 1, 3, 0, 2}; /* two pad rows */
  c->i[0] = N, c->i[1] = V;
  NEED(c->ids = gc_alloc(c, sizeof t));
  memcpy(c->ids, t, sizeof t);
  NEED(gc_input(c, (size_t)N * V, 1.5f, 0.0f));
  NEED(c->s0 = gc_floats(c, (size_t)N * V));
  c->fwd = ce_fwd, c->bwd = ce_bwd;
  return gc_output(c, 1);
}

/* ---- conv1d, kernel 2, stride 2 ------------------------------------------ */

static int conv_fwd(gc_case *c) {
  return lp_conv1d_s2_forward(c->out, c->in[0], c->in[1], c->in[2], c->i[0], c->i[1], c->i[2],
                              c->i[3]);
}
static int conv_bwd(gc_case *c) {
  return lp_conv1d_s2_backward(c->gin[0], c->gin[1], c->gin[2], c->w, c->in[0], c->in[1],
                               c->i[0], c->i[1], c->i[2], c->i[3]);
}
static int conv_build_common(gc_case *c, int T) {
  int B = 2, C = 3, OC = 4;
  c->i[0] = B, c->i[1] = T, c->i[2] = C, c->i[3] = OC;
  NEED(gc_input(c, (size_t)B * T * C, 1.0f, 0.0f));
  NEED(gc_input(c, (size_t)2 * C * OC, 0.5f, 0.0f));
  NEED(gc_input(c, (size_t)OC, 0.5f, 0.0f));
  c->fwd = conv_fwd, c->bwd = conv_bwd;
  return gc_output(c, (size_t)B * lp_conv1d_s2_out_len(T) * OC);
}
static int conv_even_build(gc_case *c) { return conv_build_common(c, 6); }
static int conv_odd_build(gc_case *c) { return conv_build_common(c, 7); }

/* ---- max-pool across examples -------------------------------------------- */

static int mp_fwd(gc_case *c) {
  return lp_maxpool_examples_forward(c->out, c->am, c->in[0], c->m0, c->i[0], c->i[1],
                                     c->i[2]);
}
static int mp_bwd(gc_case *c) {
  return lp_maxpool_examples_backward(c->gin[0], c->w, c->am, c->i[0], c->i[1], c->i[2]);
}
static int mp_build(gc_case *c) {
  int B = 2, E = 3, M = 10;
  size_t n = (size_t)B * E * M;
  c->i[0] = B, c->i[1] = E, c->i[2] = M;
  float *x = gc_input(c, n, 1.0f, 0.0f);
  NEED(x);
  /* Distinct values 0.5 apart (a random permutation) so that no +-2 eps step
   * changes an argmax. */
  for (size_t i = 0; i < n; i++) x[i] = 0.5f * (float)i - 15.0f;
  for (size_t i = n - 1; i > 0; i--) {
    size_t j = (size_t)(lp_rng_next(&c->rng) % (i + 1));
    float t = x[i];
    x[i] = x[j];
    x[j] = t;
  }
  NEED(c->m0 = gc_alloc(c, (size_t)B * E));
  memset(c->m0, 1, (size_t)B * E);
  c->m0[1 * E + 2] = 0; /* batch 1, example 2 is padding */
  NEED(c->am = gc_alloc(c, sizeof(int32_t) * (size_t)B * M));
  c->fwd = mp_fwd, c->bwd = mp_bwd;
  return gc_output(c, (size_t)B * M);
}

/* ---- LSTM cell and layer --------------------------------------------------- */
/* The output is [h ; c] (both states), so backward gets dh = w[0..n) and
 * dc = w[n..2n): the gradient of both outputs is checked. */

static int lstm_cell_fwd(gc_case *c) {
  const int N = c->i[0], H = c->i[1];
  return lp_lstm_cell_forward(c->out, c->out + (size_t)N * H, c->s0, c->in[0],
                              c->i[2] ? c->in[1] : NULL, N, H);
}
static int lstm_cell_bwd(gc_case *c) {
  const int N = c->i[0], H = c->i[1];
  return lp_lstm_cell_backward(c->gin[0], c->i[2] ? c->gin[1] : NULL, c->w,
                               c->w + (size_t)N * H, c->s0, c->out + (size_t)N * H,
                               c->i[2] ? c->in[1] : NULL, N, H);
}
static int lstm_cell_build_common(gc_case *c, int with_c0) {
  const int N = 3, H = 4;
  c->i[0] = N, c->i[1] = H, c->i[2] = with_c0;
  NEED(gc_input(c, (size_t)N * 4 * H, 1.0f, 0.0f));
  if (with_c0) NEED(gc_input(c, (size_t)N * H, 1.0f, 0.0f));
  NEED(c->s0 = gc_floats(c, (size_t)N * 4 * H));
  c->fwd = lstm_cell_fwd, c->bwd = lstm_cell_bwd;
  return gc_output(c, (size_t)2 * N * H);
}
static int lstm_cell_build(gc_case *c) { return lstm_cell_build_common(c, 1); }
static int lstm_cell_zero_build(gc_case *c) { return lstm_cell_build_common(c, 0); }

/* Inputs: x, Wx, Wh, b, then (with a state) h0, c0. i: N, T, C, H, with state. */
static int lstm_fwd(gc_case *c) {
  const int N = c->i[0], T = c->i[1], C = c->i[2], H = c->i[3], st = c->i[4];
  return lp_lstm_forward(c->out, c->out + (size_t)N * T * H, c->s0, c->in[0],
                         st ? c->in[4] : NULL, st ? c->in[5] : NULL, c->in[1], c->in[2],
                         c->in[3], N, T, C, H);
}
static int lstm_bwd(gc_case *c) {
  const int N = c->i[0], T = c->i[1], C = c->i[2], H = c->i[3], st = c->i[4];
  return lp_lstm_backward(c->gin[0], st ? c->gin[4] : NULL, st ? c->gin[5] : NULL, c->gin[1],
                          c->gin[2], c->gin[3], c->w, c->w + (size_t)N * T * H, c->s0, c->out,
                          c->out + (size_t)N * T * H, c->in[0], st ? c->in[4] : NULL,
                          st ? c->in[5] : NULL, c->in[1], c->in[2], N, T, C, H);
}
static int lstm_build_common(gc_case *c, int with_state) {
  const int N = 2, T = 4, C = 3, H = 5;
  c->i[0] = N, c->i[1] = T, c->i[2] = C, c->i[3] = H, c->i[4] = with_state;
  NEED(gc_input(c, (size_t)N * T * C, 1.0f, 0.0f));
  NEED(gc_input(c, (size_t)C * 4 * H, 0.5f, 0.0f));
  NEED(gc_input(c, (size_t)H * 4 * H, 0.5f, 0.0f));
  NEED(gc_input(c, (size_t)4 * H, 0.5f, 0.0f));
  if (with_state) {
    NEED(gc_input(c, (size_t)N * H, 1.0f, 0.0f));
    NEED(gc_input(c, (size_t)N * H, 1.0f, 0.0f));
  }
  NEED(c->s0 = gc_floats(c, (size_t)N * T * 4 * H));
  c->fwd = lstm_fwd, c->bwd = lstm_bwd;
  return gc_output(c, (size_t)2 * N * T * H);
}
static int lstm_build(gc_case *c) { return lstm_build_common(c, 1); }
static int lstm_zero_build(gc_case *c) { return lstm_build_common(c, 0); }

/* ---- encoder / decoder blocks -------------------------------------------- */
/* Inputs: x (and mem), then the whole parameter array. i: B, T, S, train. */

typedef struct blk_holder {
  lp_enc_block enc;
  lp_dec_block dec;
} blk_holder;

static void enc_acts_free(void *a) { lp_enc_block_acts_free(a); }
static void dec_acts_free(void *a) { lp_dec_block_acts_free(a); }

static int enc_fwd(gc_case *c) {
  lp_rng r;
  lp_rng_seed(&r, c->fwd_seed);
  const blk_holder *h = c->blk;
  return lp_enc_block_forward(&h->enc, c->in[1], c->acts, c->out, c->in[0], c->m0, c->i[0],
                              c->i[1], c->i[3] ? &r : NULL);
}
static int enc_bwd(gc_case *c) {
  const blk_holder *h = c->blk;
  return lp_enc_block_backward(&h->enc, c->in[1], c->gin[1], c->acts, c->gin[0], c->w);
}

static void blk_cfg(lp_block_cfg *cfg, int train) {
  lp_block_cfg_default(cfg, 8, 2, 16);
  cfg->attn_bias = 1; /* exercise the bias path too */
  cfg->dropout = train ? 0.2f : 0.0f;
  cfg->attn_dropout = train ? 0.2f : 0.0f;
}

static uint8_t *pad_mask(gc_case *c, int B, int T) {
  uint8_t *m = gc_alloc(c, (size_t)B * T);
  if (!m) return NULL;
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T; t++) m[(size_t)b * T + t] = t < T - b; /* b pads at the end */
  return m;
}

static int enc_build_common(gc_case *c, int train) {
  int B = 2, T = 4;
  c->i[0] = B, c->i[1] = T, c->i[3] = train;
  blk_holder *h = gc_alloc(c, sizeof *h);
  NEED(h);
  c->blk = h;
  lp_block_cfg cfg;
  blk_cfg(&cfg, train);
  lp_layout *L = lp_layout_new();
  NEED(L);
  int rc = lp_enc_block_init(&h->enc, &cfg, L, "enc");
  size_t np = lp_layout_numel(L);
  float *x = gc_input(c, (size_t)B * T * cfg.d_model, 1.0f, 0.0f);
  float *P = gc_input(c, np, 1.0f, 0.0f);
  if (rc == LP_OK && (!x || !P)) rc = LP_ENOMEM;
  if (rc == LP_OK) rc = lp_layout_init_params(L, P, lp_rng_next(&c->rng));
  lp_layout_free(L);
  LP_TRY(rc);
  /* perturb the init so biases and LN parameters are not trivial */
  for (size_t i = 0; i < np; i++) P[i] += 0.1f * lp_rng_normal(&c->rng);
  NEED(c->m0 = pad_mask(c, B, T));
  c->acts = lp_enc_block_acts_new(&h->enc, B, T);
  c->acts_free = enc_acts_free;
  NEED(c->acts);
  c->fwd = enc_fwd, c->bwd = enc_bwd;
  return gc_output(c, (size_t)B * T * cfg.d_model);
}
static int enc_build(gc_case *c) { return enc_build_common(c, 1); }
static int enc_eval_build(gc_case *c) { return enc_build_common(c, 0); }

static int dec_fwd(gc_case *c) {
  lp_rng r;
  lp_rng_seed(&r, c->fwd_seed);
  const blk_holder *h = c->blk;
  return lp_dec_block_forward(&h->dec, c->in[2], c->acts, c->out, c->in[0], c->m0, c->in[1],
                              c->m1, c->i[0], c->i[1], c->i[2], c->i[3] ? &r : NULL);
}
static int dec_bwd(gc_case *c) {
  const blk_holder *h = c->blk;
  return lp_dec_block_backward(&h->dec, c->in[2], c->gin[2], c->acts, c->gin[0], c->gin[1],
                               c->w);
}
static int dec_build_common(gc_case *c, int train) {
  int B = 2, T = 4, S = 5;
  c->i[0] = B, c->i[1] = T, c->i[2] = S, c->i[3] = train;
  blk_holder *h = gc_alloc(c, sizeof *h);
  NEED(h);
  c->blk = h;
  lp_block_cfg cfg;
  blk_cfg(&cfg, train);
  lp_layout *L = lp_layout_new();
  NEED(L);
  int rc = lp_dec_block_init(&h->dec, &cfg, L, "dec");
  size_t np = lp_layout_numel(L);
  float *x = gc_input(c, (size_t)B * T * cfg.d_model, 1.0f, 0.0f);
  float *m = gc_input(c, (size_t)B * S * cfg.d_model, 1.0f, 0.0f);
  float *P = gc_input(c, np, 1.0f, 0.0f);
  if (rc == LP_OK && (!x || !m || !P)) rc = LP_ENOMEM;
  if (rc == LP_OK) rc = lp_layout_init_params(L, P, lp_rng_next(&c->rng));
  lp_layout_free(L);
  LP_TRY(rc);
  for (size_t i = 0; i < np; i++) P[i] += 0.1f * lp_rng_normal(&c->rng);
  NEED(c->m0 = pad_mask(c, B, T));
  NEED(c->m1 = pad_mask(c, B, S));
  c->acts = lp_dec_block_acts_new(&h->dec, B, T, S);
  c->acts_free = dec_acts_free;
  NEED(c->acts);
  c->fwd = dec_fwd, c->bwd = dec_bwd;
  return gc_output(c, (size_t)B * T * cfg.d_model);
}
static int dec_build(gc_case *c) { return dec_build_common(c, 1); }
static int dec_eval_build(gc_case *c) { return dec_build_common(c, 0); }

/* ---- the table ----------------------------------------------------------- */

#define CASE(fn, build) \
  static int fn(const lp_gc_opts *o, lp_gc_result *r) { return gc_do(build, o, r); }
CASE(gc_embedding, emb_build)
CASE(gc_posenc, pe_build)
CASE(gc_linear, lin_build)
CASE(gc_layernorm, ln_build)
CASE(gc_gelu, gelu_build)
CASE(gc_softmax, sm_build)
CASE(gc_log_softmax, lsm_build)
CASE(gc_residual, res_build)
CASE(gc_concat, cat_build)
CASE(gc_dropout, drop_build)
CASE(gc_att_self, att_self_build)
CASE(gc_att_causal, att_causal_build)
CASE(gc_att_cross, att_cross_build)
CASE(gc_att_prefix, att_prefix_build)
CASE(gc_att_drop, att_drop_build)
CASE(gc_ce, ce_build)
CASE(gc_conv_even, conv_even_build)
CASE(gc_conv_odd, conv_odd_build)
CASE(gc_maxpool, mp_build)
CASE(gc_lstm_cell, lstm_cell_build)
CASE(gc_lstm_cell_zero, lstm_cell_zero_build)
CASE(gc_lstm, lstm_build)
CASE(gc_lstm_zero, lstm_zero_build)
CASE(gc_enc, enc_build)
CASE(gc_enc_eval, enc_eval_build)
CASE(gc_dec, dec_build)
CASE(gc_dec_eval, dec_eval_build)

/* Keep each entry starting on its own line as `    {"name",`: the names are
 * read from here by tests/engine/CMakeLists.txt (one ctest test per op), and
 * engine_tests optable checks that the count matches. */
#define ATT "lp_attention_forward", "lp_attention_backward"
static const lp_op_desc k_ops[] = {
    {"embedding", "lp_embedding_forward", "lp_embedding_backward",
     "ids[N] (pad -> 0), table[V,D] -> out[N,D]", gc_embedding},
    {"posenc", "lp_posenc_forward", "lp_posenc_backward",
     "x[B,T,D] -> x + PE[pos0+t] (sinusoidal, fixed)", gc_posenc},
    {"linear", "lp_linear_forward", "lp_linear_backward",
     "x[N,C] W[C,OC] + b[OC] -> y[N,OC] (sgemm)", gc_linear},
    {"layernorm", "lp_layernorm_forward", "lp_layernorm_backward",
     "x[N,C], g[C], b[C] -> y[N,C]; saves mean[N], rstd[N]", gc_layernorm},
    {"gelu", "lp_gelu_forward", "lp_gelu_backward", "x[n] -> y[n] (tanh approximation)",
     gc_gelu},
    {"softmax", "lp_softmax_forward", "lp_softmax_backward", "x[N,C] -> y[N,C] (last dim)",
     gc_softmax},
    {"log_softmax", "lp_log_softmax_forward", "lp_log_softmax_backward",
     "x[N,C] -> y[N,C] = x - logsumexp(x)", gc_log_softmax},
    {"residual", "lp_residual_forward", "lp_residual_backward", "a[n] + b[n] -> y[n]",
     gc_residual},
    {"concat", "lp_concat_forward", "lp_concat_backward", "a[N,C1], b[N,C2] -> y[N,C1+C2]",
     gc_concat},
    {"dropout", "lp_dropout_forward", "lp_dropout_backward",
     "x[n] -> y[n] = x*mask/(1-p); saves mask[n]", gc_dropout},
    {"attention_self", ATT, "q,k,v[B,T,H*dh] + key mask -> out[B,T,H*dh]; att[B,H,T,T]",
     gc_att_self},
    {"attention_causal", ATT, "causal + key mask, Tq = Tk", gc_att_causal},
    {"attention_cross", ATT, "q[B,Tq,.], k,v[B,Tk,.] + key mask", gc_att_cross},
    {"attention_prefix", ATT, "causal with Tq < Tk (continuing a cached prefix)",
     gc_att_prefix},
    {"attention_dropout", ATT, "causal + key mask + dropout on probabilities; saves mask",
     gc_att_drop},
    {"cross_entropy", "lp_cross_entropy_forward", "lp_cross_entropy_backward",
     "logits[N,V], targets[N] (pad ignored) -> mean loss; saves probs[N,V]", gc_ce},
    {"conv1d_s2", "lp_conv1d_s2_forward", "lp_conv1d_s2_backward",
     "x[B,T,C], W[2,C,OC], b[OC] -> y[B,ceil(T/2),OC], T even", gc_conv_even},
    {"conv1d_s2_odd", "lp_conv1d_s2_forward", "lp_conv1d_s2_backward",
     "as conv1d_s2 with T odd (zero step padded at the end)", gc_conv_odd},
    {"maxpool_examples", "lp_maxpool_examples_forward", "lp_maxpool_examples_backward",
     "x[B,E,M] + example mask -> y[B,M]; saves argmax[B,M]", gc_maxpool},
    {"lstm_cell", "lp_lstm_cell_forward", "lp_lstm_cell_backward",
     "z[N,4H] (i,f,g,o pre-activations), c0[N,H] -> h[N,H], c[N,H]; saves gates[N,4H]",
     gc_lstm_cell},
    {"lstm_cell_zero", "lp_lstm_cell_forward", "lp_lstm_cell_backward",
     "LSTM cell from the zero state (c0 NULL)", gc_lstm_cell_zero},
    {"lstm", "lp_lstm_forward", "lp_lstm_backward",
     "x[N,T,C], Wx[C,4H], Wh[H,4H], b[4H], h0,c0[N,H] -> h,c[N,T,H] (sgemm); saves gates",
     gc_lstm},
    {"lstm_zero", "lp_lstm_forward", "lp_lstm_backward",
     "LSTM layer from the zero state (h0, c0 NULL)", gc_lstm_zero},
    {"encoder_block", "lp_enc_block_forward", "lp_enc_block_backward",
     "pre-LN self-attn + FFN(GELU), dropout on: x[B,T,D], params", gc_enc},
    {"encoder_block_eval", "lp_enc_block_forward", "lp_enc_block_backward",
     "encoder block without dropout (rng NULL)", gc_enc_eval},
    {"decoder_block", "lp_dec_block_forward", "lp_dec_block_backward",
     "pre-LN causal self-attn + cross-attn + FFN, dropout on: x[B,T,D], mem[B,S,D], params",
     gc_dec},
    {"decoder_block_eval", "lp_dec_block_forward", "lp_dec_block_backward",
     "decoder block without dropout (rng NULL)", gc_dec_eval},
};

const lp_op_desc *lp_ops(size_t *n_ops) {
  if (n_ops) *n_ops = sizeof k_ops / sizeof k_ops[0];
  return k_ops;
}

const lp_op_desc *lp_op_find(const char *name) {
  if (!name) return NULL;
  for (size_t i = 0; i < sizeof k_ops / sizeof k_ops[0]; i++)
    if (strcmp(k_ops[i].name, name) == 0) return &k_ops[i];
  return NULL;
}
