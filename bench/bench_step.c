/* One training step of a plain Transformer encoder-decoder, built from the
 * engine's blocks - the model of bench/torch_step.py, op for op:
 *   src[B,S] -> embed(V,D) + sinusoidal positions -> n_enc pre-LN encoder blocks -> LN
 *   tgt[B,T] -> embed(V,D) + positions -> n_dec pre-LN decoder blocks (causal
 *   self-attention, cross-attention to the encoder output) -> LN -> linear(D,V)
 *   -> cross-entropy; then global-norm clipping and one Adam step.
 * Blocks: attention without biases, FFN with biases, GELU (tanh), LN eps 1e-6,
 * dropout 0.1 on residual branches, FFN hidden and attention probabilities.
 * usage: bench_step [--steps N] [--warmup W] [--threads T] [--json]
 * Prints the median and mean milliseconds per step, and the loss of the last
 * step (the batch is fixed, so both implementations should drive it down alike). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lpsynth/engine.h"

enum { B = 32, S = 64, T = 32, V = 100, D = 128, H = 4, F = 512, NENC = 3, NDEC = 3 };

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

int main(int argc, char **argv) {
  int steps = 20, warmup = 3, threads = 2, json = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--warmup") && i + 1 < argc) warmup = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--json")) json = 1;
    else {
      fprintf(stderr, "usage: bench_step [--steps N] [--warmup W] [--threads T] [--json]\n");
      return 2;
    }
  }
  if (steps < 1 || warmup < 0 || threads < 1) return 2;
  CHECK(lp_engine_set_threads(threads));

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
  float *P = malloc(np * sizeof *P), *G = malloc(np * sizeof *G);
  uint8_t *decay = malloc(np);
  CHECK(lp_layout_init_params(L, P, 1));
  CHECK(lp_layout_decay_mask(L, decay));
  lp_adam *opt = lp_adam_new(np, NULL);

  lp_enc_block_acts *ea[NENC];
  lp_dec_block_acts *da[NDEC];
  for (int l = 0; l < NENC; l++) ea[l] = lp_enc_block_acts_new(&enc[l], B, S);
  for (int l = 0; l < NDEC; l++) da[l] = lp_dec_block_acts_new(&dec[l], B, T, S);

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
  /* Activations: x[l] is the input of encoder block l, x[NENC] its output. */
  size_t ns = (size_t)B * S * D, nt = (size_t)B * T * D;
  float *ex[NENC + 1], *dx_[NDEC + 1];
  for (int l = 0; l <= NENC; l++) ex[l] = malloc(ns * sizeof(float));
  for (int l = 0; l <= NDEC; l++) dx_[l] = malloc(nt * sizeof(float));
  float *mem = malloc(ns * sizeof(float)), *emean = malloc(B * S * sizeof(float)),
        *erstd = malloc(B * S * sizeof(float));
  float *dh = malloc(nt * sizeof(float)), *dmean = malloc(B * T * sizeof(float)),
        *drstd = malloc(B * T * sizeof(float));
  float *logits = malloc((size_t)B * T * V * sizeof(float)),
        *probs = malloc((size_t)B * T * V * sizeof(float));
  float *dlogits = malloc((size_t)B * T * V * sizeof(float));
  float *g_a = malloc(nt * sizeof(float)), *g_b = malloc(nt * sizeof(float));
  float *gm_a = malloc(ns * sizeof(float)), *gm_b = malloc(ns * sizeof(float)),
        *gmem = malloc(ns * sizeof(float));
  lp_rng rng;
  lp_rng_seed(&rng, 7);

  double *ms = malloc(sizeof(double) * (size_t)steps);
  double loss = 0;
  for (int it = 0; it < warmup + steps; it++) {
    double t0 = now();
    memset(G, 0, np * sizeof *G);
    /* ---- forward ---- */
    CHECK(lp_embedding_forward(ex[0], src, P + o_src_emb, B * S, V, D, -1));
    CHECK(lp_posenc_forward(ex[0], ex[0], B, S, D, 0));
    for (int l = 0; l < NENC; l++)
      CHECK(lp_enc_block_forward(&enc[l], P, ea[l], ex[l + 1], ex[l], NULL, B, S, &rng));
    CHECK(lp_layernorm_forward(mem, emean, erstd, ex[NENC], P + o_enc_lng, P + o_enc_lnb, B * S, D, 1e-6f));
    CHECK(lp_embedding_forward(dx_[0], tin, P + o_tgt_emb, B * T, V, D, -1));
    CHECK(lp_posenc_forward(dx_[0], dx_[0], B, T, D, 0));
    for (int l = 0; l < NDEC; l++)
      CHECK(lp_dec_block_forward(&dec[l], P, da[l], dx_[l + 1], dx_[l], NULL, mem, NULL, B, T, S, &rng));
    CHECK(lp_layernorm_forward(dh, dmean, drstd, dx_[NDEC], P + o_dec_lng, P + o_dec_lnb, B * T, D, 1e-6f));
    CHECK(lp_linear_forward(logits, dh, P + o_out_w, P + o_out_b, B * T, D, V));
    CHECK(lp_cross_entropy_forward(&loss, probs, NULL, NULL, logits, tout, B * T, V, -1));
    /* ---- backward ---- */
    memset(dlogits, 0, (size_t)B * T * V * sizeof(float));
    CHECK(lp_cross_entropy_backward(dlogits, probs, tout, B * T, V, -1, 1.0f));
    memset(g_a, 0, nt * sizeof(float));
    CHECK(lp_linear_backward(g_a, G + o_out_w, G + o_out_b, dlogits, dh, P + o_out_w, B * T, D, V));
    memset(g_b, 0, nt * sizeof(float));
    CHECK(lp_layernorm_backward(g_b, G + o_dec_lng, G + o_dec_lnb, g_a, dx_[NDEC], dmean, drstd, P + o_dec_lng, B * T, D));
    memset(gmem, 0, ns * sizeof(float));
    for (int l = NDEC - 1; l >= 0; l--) {
      memset(g_a, 0, nt * sizeof(float));
      CHECK(lp_dec_block_backward(&dec[l], P, G, da[l], g_a, gmem, g_b));
      float *t = g_a; g_a = g_b; g_b = t;
    }
    CHECK(lp_embedding_backward(G + o_tgt_emb, g_b, tin, B * T, V, D, -1));
    memset(gm_a, 0, ns * sizeof(float));
    CHECK(lp_layernorm_backward(gm_a, G + o_enc_lng, G + o_enc_lnb, gmem, ex[NENC], emean, erstd, P + o_enc_lng, B * S, D));
    for (int l = NENC - 1; l >= 0; l--) {
      memset(gm_b, 0, ns * sizeof(float));
      CHECK(lp_enc_block_backward(&enc[l], P, G, ea[l], gm_b, gm_a));
      float *t = gm_a; gm_a = gm_b; gm_b = t;
    }
    CHECK(lp_embedding_backward(G + o_src_emb, gm_a, src, B * S, V, D, -1));
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
  if (json)
    printf("{\"impl\":\"lpsynth\",\"threads\":%d,\"steps\":%d,\"median_ms\":%.2f,\"mean_ms\":%.2f,"
           "\"params\":%zu,\"final_loss\":%.4f}\n",
           threads, steps, med, mean, np, loss);
  else
    printf("lpsynth: %zu parameters, %d steps: median %.2f ms/step, mean %.2f ms (OpenBLAS threads %d), loss %.4f\n",
           np, steps, med, mean, threads, loss);
  return 0;
}
