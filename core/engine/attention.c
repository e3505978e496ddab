/* Multi-head scaled dot-product attention (self, causal, cross; key padding
 * masks; optional dropout on the probabilities). Heads are column blocks of
 * the [B,T,H*dh] projections, so each (batch, head) product is one
 * lp_gemm on a strided view (leading dimension H*dh): no transposes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static int attn_dims_ok(int B, int Tq, int Tk, int H, int dh) {
  return B >= 1 && Tq >= 1 && Tk >= 1 && H >= 1 && dh >= 1 &&
         lp_prod4(B, H, Tq, Tk) > 0 && lp_prod4(B, Tk, H, dh) > 0 &&
         lp_prod4(B, Tq, H, dh) > 0;
}

/* Masked, numerically stable softmax of one row of scores in place. */
static void softmax_row(float *s, int Tk, int last_visible, const uint8_t *kmask) {
  float mx = -INFINITY;
  for (int j = 0; j <= last_visible; j++)
    if (!kmask || kmask[j]) mx = s[j] > mx ? s[j] : mx;
  if (mx == -INFINITY) { /* no visible key */
    memset(s, 0, sizeof(float) * (size_t)Tk);
    return;
  }
  double sum = 0.0;
  for (int j = 0; j < Tk; j++) {
    if (j <= last_visible && (!kmask || kmask[j])) {
      float e = expf(s[j] - mx);
      s[j] = e;
      sum += e;
    } else {
      s[j] = 0.0f;
    }
  }
  float inv = (float)(1.0 / sum);
  for (int j = 0; j <= last_visible; j++) s[j] *= inv;
}

/* out[B,Tq,H*dh], att[B,H,Tq,Tk]. */
int lp_attention_forward(float *out, float *att, uint8_t *drop_mask, const float *q,
                         const float *k, const float *v, const uint8_t *key_mask,
                         int B, int Tq, int Tk, int H, int dh, int causal,
                         float p_drop, lp_rng *rng) {
  LP_REQUIRE(out && att && q && k && v && attn_dims_ok(B, Tq, Tk, H, dh));
  LP_REQUIRE(p_drop >= 0.0f && p_drop < 1.0f);
  LP_REQUIRE(!causal || Tq <= Tk);
  int dropping = rng != NULL && p_drop > 0.0f;
  LP_REQUIRE(!dropping || drop_mask);
  const int Dq = H * dh;
  const float scale = 1.0f / sqrtf((float)dh);
  const size_t TT = (size_t)Tq * Tk;
  float *pd = NULL;
  if (dropping) {
    pd = malloc(sizeof(float) * TT);
    if (!pd) return LP_ENOMEM;
  }
  const float keep_scale = dropping ? 1.0f / (1.0f - p_drop) : 1.0f;
  for (int b = 0; b < B; b++) {
    const uint8_t *km = key_mask ? key_mask + (size_t)b * Tk : NULL;
    for (int h = 0; h < H; h++) {
      const float *qb = q + (size_t)b * Tq * Dq + (size_t)h * dh;
      const float *kb = k + (size_t)b * Tk * Dq + (size_t)h * dh;
      const float *vb = v + (size_t)b * Tk * Dq + (size_t)h * dh;
      float *ob = out + (size_t)b * Tq * Dq + (size_t)h * dh;
      float *P = att + ((size_t)b * H + h) * TT;
      /* S[Tq,Tk] = scale * Q K^T */
      lp_gemm(0, 1, Tq, Tk, dh, scale, qb, Dq, kb, Dq, 0.0f, P, Tk);
      for (int i = 0; i < Tq; i++) {
        int last = causal ? i + (Tk - Tq) : Tk - 1;
        softmax_row(P + (size_t)i * Tk, Tk, last, km);
      }
      const float *A = P;
      if (dropping) {
        uint8_t *dm = drop_mask + ((size_t)b * H + h) * TT;
        lp_keep_mask(dm, TT, p_drop, rng);
        for (size_t j = 0; j < TT; j++) pd[j] = dm[j] ? P[j] * keep_scale : 0.0f;
        A = pd;
      }
      /* O[Tq,dh] = A V */
      lp_gemm(0, 0, Tq, dh, Tk, 1.0f, A, Tk, vb, Dq, 0.0f, ob, Dq);
    }
  }
  free(pd);
  return LP_OK;
}

int lp_attention_backward(float *dq, float *dk, float *dv, const float *dout,
                          const float *att, const uint8_t *drop_mask, const float *q,
                          const float *k, const float *v, int B, int Tq, int Tk,
                          int H, int dh, float p_drop) {
  LP_REQUIRE(dout && att && q && k && v && attn_dims_ok(B, Tq, Tk, H, dh));
  LP_REQUIRE(p_drop >= 0.0f && p_drop < 1.0f);
  const int Dq = H * dh;
  const float scale = 1.0f / sqrtf((float)dh);
  const size_t TT = (size_t)Tq * Tk;
  const int dropping = drop_mask != NULL;
  const float keep_scale = dropping ? 1.0f / (1.0f - p_drop) : 1.0f;
  float *dP = malloc(sizeof(float) * TT * (dropping ? 2 : 1));
  if (!dP) return LP_ENOMEM;
  float *pd = dropping ? dP + TT : NULL;
  for (int b = 0; b < B; b++) {
    for (int h = 0; h < H; h++) {
      size_t qoff = (size_t)b * Tq * Dq + (size_t)h * dh;
      size_t koff = (size_t)b * Tk * Dq + (size_t)h * dh;
      const float *P = att + ((size_t)b * H + h) * TT;
      const float *dob = dout + qoff;
      const float *A = P;
      const uint8_t *dm = dropping ? drop_mask + ((size_t)b * H + h) * TT : NULL;
      if (dropping) {
        for (size_t j = 0; j < TT; j++) pd[j] = dm[j] ? P[j] * keep_scale : 0.0f;
        A = pd;
      }
      /* dV[Tk,dh] += A^T dO */
      if (dv)
        lp_gemm(1, 0, Tk, dh, Tq, 1.0f, A, Tk, dob, Dq, 1.0f, dv + koff, Dq);
      if (!dq && !dk) continue;
      /* dA[Tq,Tk] = dO V^T */
      lp_gemm(0, 1, Tq, Tk, dh, 1.0f, dob, Dq, v + koff, Dq, 0.0f, dP, Tk);
      if (dropping)
        for (size_t j = 0; j < TT; j++) dP[j] = dm[j] ? dP[j] * keep_scale : 0.0f;
      /* dS = P * (dP - rowsum(dP * P)); masked entries have P = 0. */
      for (int i = 0; i < Tq; i++) {
        const float *pr = P + (size_t)i * Tk;
        float *dr = dP + (size_t)i * Tk;
        double dot = 0.0;
        for (int j = 0; j < Tk; j++) dot += (double)pr[j] * dr[j];
        for (int j = 0; j < Tk; j++) dr[j] = pr[j] * (dr[j] - (float)dot);
      }
      /* dQ += scale dS K;  dK += scale dS^T Q */
      if (dq)
        lp_gemm(0, 0, Tq, dh, Tk, scale, dP, Tk, k + koff, Dq, 1.0f, dq + qoff, Dq);
      if (dk)
        lp_gemm(1, 0, Tk, dh, Tq, scale, dP, Tk, q + qoff, Dq, 1.0f, dk + koff, Dq);
    }
  }
  free(dP);
  return LP_OK;
}
