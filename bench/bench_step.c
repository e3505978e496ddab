/* One training step of a plain Transformer encoder-decoder, built from the
 * engine's blocks - the model of bench/torch_step.py, op for op:
 *   src[B,S] -> embed(V,D) + sinusoidal positions -> n_enc pre-LN encoder blocks -> LN
 *   tgt[B,T] -> embed(V,D) + positions -> n_dec pre-LN decoder blocks (causal
 *   self-attention, cross-attention to the encoder output) -> LN -> linear(D,V)
 *   -> cross-entropy; then global-norm clipping and one Adam step.
 * Blocks: attention without biases, FFN with biases, GELU (tanh), LN eps 1e-6,
 * dropout 0.1 on residual branches, FFN hidden and attention probabilities.
 * usage: bench_step [--steps N] [--warmup W] [--threads T] [--mode data|blas]
 *                   [--precision fp32|bf16] [--json]
 * --precision bf16: the matrix products in bf16 with fp32 accumulation
 * (lp_engine_set_precision; fp32 where the CPU lacks AVX512_BF16).
 * --mode data (default): T data-parallel workers (lp_engine_parallel), each
 * running forward/backward on B/T rows with one-thread OpenBLAS, gradients
 * combined before the update - how `lpsynth train --threads T` trains
 * RobustFill. --mode blas: one pass over the batch with T OpenBLAS threads.
 * Prints the median and mean milliseconds per step, and the loss of the last
 * step (the batch is fixed, so both implementations should drive it down alike). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lpsynth/engine.h"

enum { B = 32, S = 64, T = 32, V = 100, D = 128, H = 4, F = 512, NENC = 3, NDEC = 3 };
static size_t g_num_params; /* parameters (set once in main) */

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmpd(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

#define CHECK(x)                                              \
  do {                                                        \
    int rc_ = (x);                                            \
    if (rc_ != LP_OK) {                                       \
      fprintf(stderr, "bench_step: %s failed (%d)\n", #x, rc_); \
      return 1;                                               \
    }                                                         \
  } while (0)

/* A worker's share of the step: forward and backward of rows [b0, b0 + nb). */
typedef struct rep {
  int b0, nb, rc;
  const float *P;
  float *G;
  const int32_t *src, *tin, *tout;
  size_t o_src_emb, o_tgt_emb, o_enc_lng, o_enc_lnb, o_dec_lng, o_dec_lnb, o_out_w, o_out_b;
  lp_enc_block *enc;
  lp_dec_block *dec;
  lp_enc_block_acts *ea[NENC];
  lp_dec_block_acts *da[NDEC];
  /* x[l] is the input of encoder block l, x[NENC] its output (same for dx_) */
  float *ex[NENC + 1], *dx_[NDEC + 1];
  float *mem, *emean, *erstd, *dh, *dmean, *drstd, *logits, *probs, *dlogits;
  float *g_a, *g_b, *gm_a, *gm_b, *gmem;
  lp_rng rng;
  double loss;
} rep;

static int rep_init(rep *r, lp_enc_block *enc, lp_dec_block *dec, int b0, int nb, size_t np) {
  memset(r, 0, sizeof *r);
  r->b0 = b0, r->nb = nb, r->enc = enc, r->dec = dec;
  for (int l = 0; l < NENC; l++)
    if (!(r->ea[l] = lp_enc_block_acts_new(&enc[l], nb, S))) return LP_ENOMEM;
  for (int l = 0; l < NDEC; l++)
    if (!(r->da[l] = lp_dec_block_acts_new(&dec[l], nb, T, S))) return LP_ENOMEM;
  size_t ns = (size_t)nb * S * D, nt = (size_t)nb * T * D, nv = (size_t)nb * T * V;
  for (int l = 0; l <= NENC; l++) r->ex[l] = malloc(ns * sizeof(float));
  for (int l = 0; l <= NDEC; l++) r->dx_[l] = malloc(nt * sizeof(float));
  r->mem = malloc(ns * sizeof(float));
  r->emean = malloc((size_t)nb * S * sizeof(float));
  r->erstd = malloc((size_t)nb * S * sizeof(float));
  r->dh = malloc(nt * sizeof(float));
  r->dmean = malloc((size_t)nb * T * sizeof(float));
  r->drstd = malloc((size_t)nb * T * sizeof(float));
  r->logits = malloc(nv * sizeof(float));
  r->probs = malloc(nv * sizeof(float));
  r->dlogits = malloc(nv * sizeof(float));
  r->g_a = malloc(nt * sizeof(float));
  r->g_b = malloc(nt * sizeof(float));
  r->gm_a = malloc(ns * sizeof(float));
  r->gm_b = malloc(ns * sizeof(float));
  r->gmem = malloc(ns * sizeof(float));
  r->G = malloc(np * sizeof(float));
  return r->G ? LP_OK : LP_ENOMEM;
}

#define TRY(x)                           \
  do {                                   \
    if ((r->rc = (x)) != LP_OK) return;  \
  } while (0)

static void rep_step(void *ctx, int w) {
  rep *r = (rep *)ctx + w;
  const int nb = r->nb;
  const float *P = r->P;
  float *G = r->G;
  const int32_t *src = r->src + (size_t)r->b0 * S, *tin = r->tin + (size_t)r->b0 * T,
                *tout = r->tout + (size_t)r->b0 * T;
  const size_t ns = (size_t)nb * S * D, nt = (size_t)nb * T * D, nv = (size_t)nb * T * V;
  float **ex = r->ex, **dx_ = r->dx_;
  memset(G, 0, g_num_params * sizeof *G);
  /* ---- forward ---- */
  TRY(lp_embedding_forward(ex[0], src, P + r->o_src_emb, nb * S, V, D, -1));
  TRY(lp_posenc_forward(ex[0], ex[0], nb, S, D, 0));
  for (int l = 0; l < NENC; l++)
    TRY(lp_enc_block_forward(&r->enc[l], P, r->ea[l], ex[l + 1], ex[l], NULL, nb, S, &r->rng));
  TRY(lp_layernorm_forward(r->mem, r->emean, r->erstd, ex[NENC], P + r->o_enc_lng,
                           P + r->o_enc_lnb, nb * S, D, 1e-6f));
  TRY(lp_embedding_forward(dx_[0], tin, P + r->o_tgt_emb, nb * T, V, D, -1));
  TRY(lp_posenc_forward(dx_[0], dx_[0], nb, T, D, 0));
  for (int l = 0; l < NDEC; l++)
    TRY(lp_dec_block_forward(&r->dec[l], P, r->da[l], dx_[l + 1], dx_[l], NULL, r->mem, NULL, nb,
                             T, S, &r->rng));
  TRY(lp_layernorm_forward(r->dh, r->dmean, r->drstd, dx_[NDEC], P + r->o_dec_lng,
                           P + r->o_dec_lnb, nb * T, D, 1e-6f));
  TRY(lp_linear_forward(r->logits, r->dh, P + r->o_out_w, P + r->o_out_b, nb * T, D, V));
  TRY(lp_cross_entropy_forward(&r->loss, r->probs, NULL, NULL, r->logits, tout, nb * T, V, -1));
  /* ---- backward ---- */
  float *g_a = r->g_a, *g_b = r->g_b, *gm_a = r->gm_a, *gm_b = r->gm_b, *t;
  memset(r->dlogits, 0, nv * sizeof(float));
  TRY(lp_cross_entropy_backward(r->dlogits, r->probs, tout, nb * T, V, -1, 1.0f));
  memset(g_a, 0, nt * sizeof(float));
  TRY(lp_linear_backward(g_a, G + r->o_out_w, G + r->o_out_b, r->dlogits, r->dh, P + r->o_out_w,
                         nb * T, D, V));
  memset(g_b, 0, nt * sizeof(float));
  TRY(lp_layernorm_backward(g_b, G + r->o_dec_lng, G + r->o_dec_lnb, g_a, dx_[NDEC], r->dmean,
                            r->drstd, P + r->o_dec_lng, nb * T, D));
  memset(r->gmem, 0, ns * sizeof(float));
  for (int l = NDEC - 1; l >= 0; l--) {
    memset(g_a, 0, nt * sizeof(float));
    TRY(lp_dec_block_backward(&r->dec[l], P, G, r->da[l], g_a, r->gmem, g_b));
    t = g_a, g_a = g_b, g_b = t;
  }
  TRY(lp_embedding_backward(G + r->o_tgt_emb, g_b, tin, nb * T, V, D, -1));
  memset(gm_a, 0, ns * sizeof(float));
  TRY(lp_layernorm_backward(gm_a, G + r->o_enc_lng, G + r->o_enc_lnb, r->gmem, ex[NENC],
                            r->emean, r->erstd, P + r->o_enc_lng, nb * S, D));
  for (int l = NENC - 1; l >= 0; l--) {
    memset(gm_b, 0, ns * sizeof(float));
    TRY(lp_enc_block_backward(&r->enc[l], P, G, r->ea[l], gm_b, gm_a));
    t = gm_a, gm_a = gm_b, gm_b = t;
  }
  TRY(lp_embedding_backward(G + r->o_src_emb, gm_a, src, nb * S, V, D, -1));
}

int main(int argc, char **argv) {
  int steps = 20, warmup = 3, threads = 2, json = 0, data_parallel = 1;
  lp_precision prec = LP_PREC_FP32;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--warmup") && i + 1 < argc) warmup = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--json")) json = 1;
    else if (!strcmp(argv[i], "--precision") && i + 1 < argc) {
      const char *m = argv[++i];
      if (strcmp(m, "fp32") && strcmp(m, "bf16")) return 2;
      prec = strcmp(m, "bf16") ? LP_PREC_FP32 : LP_PREC_BF16;
    }
    else if (!strcmp(argv[i], "--mode") && i + 1 < argc) {
      const char *m = argv[++i];
      if (strcmp(m, "data") && strcmp(m, "blas")) return 2;
      data_parallel = !strcmp(m, "data");
    } else {
      fprintf(stderr, "usage: bench_step [--steps N] [--warmup W] [--threads T] "
                      "[--mode data|blas] [--precision fp32|bf16] [--json]\n");
      return 2;
    }
  }
  if (steps < 1 || warmup < 0 || threads < 1 || threads > LP_ENGINE_MAX_WORKERS) return 2;
  CHECK(lp_engine_set_threads(threads));
  prec = lp_engine_set_precision(prec); /* workers inherit it */
  const char *prec_name = prec == LP_PREC_BF16 ? "bf16" : "fp32";

  lp_layout *L = lp_layout_new();
  size_t o_src_emb, o_tgt_emb, o_enc_lng, o_enc_lnb, o_dec_lng, o_dec_lnb, o_out_w, o_out_b;
  int sh_emb[2] = {V, D}, sh_d[1] = {D}, sh_out[2] = {D, V}, sh_v[1] = {V};
  CHECK(lp_layout_add(L, "src_emb", 2, sh_emb, LP_INIT_NORMAL, 1.0f, &o_src_emb));
  CHECK(lp_layout_add(L, "tgt_emb", 2, sh_emb, LP_INIT_NORMAL, 1.0f, &o_tgt_emb));
  lp_block_cfg cfg;
  lp_block_cfg_default(&cfg, D, H, F);
  lp_enc_block enc[NENC];
  lp_dec_block dec[NDEC];
  char name[32];
  for (int l = 0; l < NENC; l++) {
    snprintf(name, sizeof name, "enc%d", l);
    CHECK(lp_enc_block_init(&enc[l], &cfg, L, name));
  }
  for (int l = 0; l < NDEC; l++) {
    snprintf(name, sizeof name, "dec%d", l);
    CHECK(lp_dec_block_init(&dec[l], &cfg, L, name));
  }
  CHECK(lp_layout_add(L, "enc_ln.g", 1, sh_d, LP_INIT_ONES, 1.0f, &o_enc_lng));
  CHECK(lp_layout_add(L, "enc_ln.b", 1, sh_d, LP_INIT_ZEROS, 1.0f, &o_enc_lnb));
  CHECK(lp_layout_add(L, "dec_ln.g", 1, sh_d, LP_INIT_ONES, 1.0f, &o_dec_lng));
  CHECK(lp_layout_add(L, "dec_ln.b", 1, sh_d, LP_INIT_ZEROS, 1.0f, &o_dec_lnb));
  CHECK(lp_layout_add(L, "out.w", 2, sh_out, LP_INIT_XAVIER_UNIFORM, 1.0f, &o_out_w));
  CHECK(lp_layout_add(L, "out.b", 1, sh_v, LP_INIT_ZEROS, 1.0f, &o_out_b));
  size_t np = lp_layout_numel(L);
  g_num_params = np;
  float *P = malloc(np * sizeof *P), *G = malloc(np * sizeof *G);
  uint8_t *decay = malloc(np);
  CHECK(lp_layout_init_params(L, P, 1));
  CHECK(lp_layout_decay_mask(L, decay));
  lp_adam *opt = lp_adam_new(np, NULL);

  int32_t *src = malloc(sizeof(int32_t) * B * S), *tin = malloc(sizeof(int32_t) * B * T),
          *tout = malloc(sizeof(int32_t) * B * T);
  lp_rng data;
  lp_rng_seed(&data, 42);
  for (int i = 0; i < B * S; i++) src[i] = 1 + (int32_t)(lp_rng_next(&data) % (V - 1));
  for (int i = 0; i < B * T; i++) tout[i] = 1 + (int32_t)(lp_rng_next(&data) % (V - 1));
  for (int b = 0; b < B; b++) {
    tin[b * T] = 1;
    for (int t = 1; t < T; t++) tin[b * T + t] = tout[b * T + t - 1];
  }
  /* One replica per worker: rows [b0, b0 + nb) of the batch, own activations
   * and gradients (worker 0's gradients are G). */
  const int W = data_parallel ? threads : 1;
  rep reps[LP_ENGINE_MAX_WORKERS];
  for (int w = 0; w < W; w++) {
    int b0 = B * w / W, b1 = B * (w + 1) / W;
    CHECK(rep_init(&reps[w], enc, dec, b0, b1 - b0, np));
    reps[w].P = P;
    reps[w].src = src, reps[w].tin = tin, reps[w].tout = tout;
    reps[w].o_src_emb = o_src_emb, reps[w].o_tgt_emb = o_tgt_emb;
    reps[w].o_enc_lng = o_enc_lng, reps[w].o_enc_lnb = o_enc_lnb;
    reps[w].o_dec_lng = o_dec_lng, reps[w].o_dec_lnb = o_dec_lnb;
    reps[w].o_out_w = o_out_w, reps[w].o_out_b = o_out_b;
    lp_rng_seed(&reps[w].rng, 7 + (uint64_t)w);
  }
  free(reps[0].G);
  reps[0].G = G;
  if (data_parallel) CHECK(lp_engine_set_threads(1));

  double *ms = malloc(sizeof(double) * (size_t)steps);
  double loss = 0;
  for (int it = 0; it < warmup + steps; it++) {
    double t0 = now();
    CHECK(lp_engine_parallel(W, rep_step, reps));
    loss = 0;
    for (int w = 0; w < W; w++) {
      CHECK(reps[w].rc);
      const float f = (float)reps[w].nb / B; /* every target token counts: share of rows */
      loss += f * reps[w].loss;
      if (w == 0) {
        for (size_t i = 0; i < np; i++) G[i] *= f;
      } else {
        const float *g = reps[w].G;
        for (size_t i = 0; i < np; i++) G[i] += f * g[i];
      }
    }
    /* ---- update ---- */
    double gn;
    CHECK(lp_grad_clip(G, np, 1.0f, &gn));
    CHECK(lp_adam_step(opt, P, G, 1e-3f, decay)); /* constant, as the PyTorch twin */
    double el = (now() - t0) * 1e3;
    if (it >= warmup) ms[it - warmup] = el;
  }
  double sum = 0;
  for (int i = 0; i < steps; i++) sum += ms[i];
  qsort(ms, (size_t)steps, sizeof *ms, cmpd);
  double med = ms[steps / 2], mean = sum / steps;
  const char *mode = data_parallel ? "data" : "blas";
  if (json)
    printf("{\"impl\":\"lpsynth\",\"mode\":\"%s\",\"threads\":%d,\"steps\":%d,\"median_ms\":%.2f,\"mean_ms\":%.2f,"
           "\"params\":%zu,\"final_loss\":%.4f,\"precision\":\"%s\"}\n",
           mode, threads, steps, med, mean, np, loss, prec_name);
  else
    printf("lpsynth: %zu parameters, %d steps: median %.2f ms/step, mean %.2f ms (%d threads, %s, "
           "%s), loss %.4f\n",
           np, steps, med, mean, threads,
           data_parallel ? "data-parallel workers" : "OpenBLAS threads", prec_name, loss);
  return 0;
}
