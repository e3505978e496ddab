/* Sequence-level ops: cross-entropy with padding, strided convolution,
 * max-pool across examples. */
#include <math.h>
#include <string.h>

#include "internal.h"
#include "vec.h"

/* ---- cross-entropy ------------------------------------------------------- */

/* loss = mean_{n: targets[n] != pad} -log softmax(logits[n])[targets[n]]. */
int lp_cross_entropy_forward(double *loss, float *probs, float *losses, int *n_valid,
                             const float *logits, const int32_t *targets, int N,
                             int V, int pad_id) {
  LP_REQUIRE(loss && probs && logits && targets && N >= 1 && V >= 1);
  double total = 0.0;
  int count = 0;
  for (int n = 0; n < N; n++) {
    const float *x = logits + (size_t)n * V;
    float *p = probs + (size_t)n * V;
    int32_t t = targets[n];
    int is_pad = pad_id >= 0 && t == pad_id;
    LP_REQUIRE(is_pad || (t >= 0 && t < V));
    const float mx = v4_max_row(x, V);
    /* p = e^(x - mx) / s: one 4-wide exp per logit (the vocabulary projection
     * of the python domain has 16K of them per token) */
    double s = v4_sum_exp(p, x, V, mx);
    double lse = (double)mx + log(s);
    const float inv = (float)(1.0 / s);
    for (int i = 0; i < V; i++) p[i] *= inv;
    double l = is_pad ? 0.0 : lse - (double)x[t];
    if (losses) losses[n] = (float)l;
    if (!is_pad) {
      total += l;
      count++;
    }
  }
  *loss = count > 0 ? total / count : 0.0;
  if (n_valid) *n_valid = count;
  return LP_OK;
}

int lp_cross_entropy_backward(float *dlogits, const float *probs,
                              const int32_t *targets, int N, int V, int pad_id,
                              float dloss) {
  LP_REQUIRE(dlogits && probs && targets && N >= 1 && V >= 1);
  int count = 0;
  for (int n = 0; n < N; n++) {
    int32_t t = targets[n];
    if (pad_id >= 0 && t == pad_id) continue;
    LP_REQUIRE(t >= 0 && t < V);
    count++;
  }
  if (count == 0) return LP_OK;
  float s = dloss / (float)count;
  for (int n = 0; n < N; n++) {
    int32_t t = targets[n];
    if (pad_id >= 0 && t == pad_id) continue;
    const float *p = probs + (size_t)n * V;
    float *d = dlogits + (size_t)n * V;
    for (int i = 0; i < V; i++) d[i] += s * p[i];
    d[t] -= s;
  }
  return LP_OK;
}

/* ---- conv1d, kernel 2, stride 2, same padding ---------------------------- */

int lp_conv1d_s2_out_len(int T) { return T < 1 ? 0 : (T + 1) / 2; }

/* Row t of the even / odd taps of batch b is x[b, 2t] / x[b, 2t+1]: a strided
 * matrix with leading dimension 2C. The odd taps have floor(T/2) rows. */
int lp_conv1d_s2_forward(float *y, const float *x, const float *W, const float *bias,
                         int B, int T, int C, int OC) {
  LP_REQUIRE(y && x && W && lp_prod3(B, T, C) > 0 && lp_prod3(B, T, OC) > 0);
  const int To = lp_conv1d_s2_out_len(T), Te = T / 2;
  const float *W0 = W, *W1 = W + (size_t)C * OC;
  for (int b = 0; b < B; b++) {
    const float *xb = x + (size_t)b * T * C;
    float *yb = y + (size_t)b * To * OC;
    float beta = 0.0f;
    if (bias) {
      for (int t = 0; t < To; t++) memcpy(yb + (size_t)t * OC, bias, sizeof(float) * (size_t)OC);
      beta = 1.0f;
    }
    lp_gemm(0, 0, To, OC, C, 1.0f, xb, 2 * C, W0, OC, beta, yb, OC);
    if (Te > 0)
      lp_gemm(0, 0, Te, OC, C, 1.0f, xb + C, 2 * C, W1, OC, 1.0f, yb, OC);
  }
  return LP_OK;
}

int lp_conv1d_s2_backward(float *dx, float *dW, float *db, const float *dy,
                          const float *x, const float *W, int B, int T, int C, int OC) {
  LP_REQUIRE(dy && lp_prod3(B, T, C) > 0 && lp_prod3(B, T, OC) > 0);
  LP_REQUIRE(!dx || W);
  LP_REQUIRE(!dW || x);
  const int To = lp_conv1d_s2_out_len(T), Te = T / 2;
  const float *W0 = W, *W1 = W ? W + (size_t)C * OC : NULL;
  for (int b = 0; b < B; b++) {
    const float *dyb = dy + (size_t)b * To * OC;
    if (dx) {
      float *dxb = dx + (size_t)b * T * C;
      lp_gemm(0, 1, To, C, OC, 1.0f, dyb, OC, W0, OC, 1.0f, dxb, 2 * C);
      if (Te > 0)
        lp_gemm(0, 1, Te, C, OC, 1.0f, dyb, OC, W1, OC, 1.0f, dxb + C, 2 * C);
    }
    if (dW) {
      const float *xb = x + (size_t)b * T * C;
      lp_gemm(1, 0, C, OC, To, 1.0f, xb, 2 * C, dyb, OC, 1.0f, dW, OC);
      if (Te > 0)
        lp_gemm(1, 0, C, OC, Te, 1.0f, xb + C, 2 * C, dyb, OC, 1.0f, dW + (size_t)C * OC, OC);
    }
    if (db)
      for (int t = 0; t < To; t++)
        for (int o = 0; o < OC; o++) db[o] += dyb[(size_t)t * OC + o];
  }
  return LP_OK;
}

/* ---- max-pool across examples -------------------------------------------- */

int lp_maxpool_examples_forward(float *y, int32_t *argmax, const float *x,
                                const uint8_t *emask, int B, int E, int M) {
  LP_REQUIRE(y && argmax && x && lp_prod3(B, E, M) > 0);
  for (int b = 0; b < B; b++) {
    float *yb = y + (size_t)b * M;
    int32_t *ab = argmax + (size_t)b * M;
    int first = 1;
    for (int e = 0; e < E; e++) {
      if (emask && !emask[(size_t)b * E + e]) continue;
      const float *xe = x + ((size_t)b * E + e) * M;
      if (first) {
        memcpy(yb, xe, sizeof(float) * (size_t)M);
        for (int m = 0; m < M; m++) ab[m] = e;
        first = 0;
        continue;
      }
      for (int m = 0; m < M; m++)
        if (xe[m] > yb[m]) {
          yb[m] = xe[m];
          ab[m] = e;
        }
    }
    if (first) {
      memset(yb, 0, sizeof(float) * (size_t)M);
      for (int m = 0; m < M; m++) ab[m] = -1;
    }
  }
  return LP_OK;
}

int lp_maxpool_examples_backward(float *dx, const float *dy, const int32_t *argmax,
                                 int B, int E, int M) {
  LP_REQUIRE(dx && dy && argmax && lp_prod3(B, E, M) > 0);
  for (int b = 0; b < B; b++)
    for (int m = 0; m < M; m++) {
      int32_t e = argmax[(size_t)b * M + m];
      if (e < 0) continue;
      LP_REQUIRE(e < E);
      dx[((size_t)b * E + e) * M + m] += dy[(size_t)b * M + m];
    }
  return LP_OK;
}
