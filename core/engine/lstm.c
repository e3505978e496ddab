/* LSTM: the cell (element-wise, on pre-activations whose products the caller
 * runs) and a whole layer over T steps (its products through lp_gemm).
 * Gates in the order i, f, g, o (columns [0,H), [H,2H), [2H,3H), [3H,4H)):
 *   i = sigmoid(z_i), f = sigmoid(z_f), g = tanh(z_g), o = sigmoid(z_o)
 *   c = f * c0 + i * g,  h = o * tanh(c)
 * Rows may be strided (ld* arguments of the helpers below), so the layer runs
 * the cell on step t of batch-major [N,T,*] arrays without copies. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

/* gates[n] = act(z[n]) (may alias z), c[n], h[n]; c0 NULL: zero state. Row n
 * of each array starts at n * ld<array>. */
static void cell_fwd(float *h, int ldh, float *c, int ldc, float *gates, int ldg,
                     const float *z, int ldz, const float *c0, int ldc0, int N, int H) {
  for (int n = 0; n < N; n++) {
    const float *zr = z + (size_t)n * ldz;
    float *gr = gates + (size_t)n * ldg, *cr = c + (size_t)n * ldc, *hr = h + (size_t)n * ldh;
    const float *c0r = c0 ? c0 + (size_t)n * ldc0 : NULL;
    for (int j = 0; j < H; j++) {
      const float i = sigmoidf(zr[j]), f = sigmoidf(zr[H + j]);
      const float g = tanhf(zr[2 * H + j]), o = sigmoidf(zr[3 * H + j]);
      gr[j] = i, gr[H + j] = f, gr[2 * H + j] = g, gr[3 * H + j] = o;
      const float cv = (c0r ? f * c0r[j] : 0.0f) + i * g;
      cr[j] = cv;
      hr[j] = o * tanhf(cv);
    }
  }
}

/* dz[n] += d z (from dh, dc: either may be NULL = 0), dc0[n] += f * dc_total
 * (when both dc0 and c0 are given). */
static void cell_bwd(float *dz, int lddz, float *dc0, int lddc0, const float *dh, int lddh,
                     const float *dc, int lddc, const float *gates, int ldg, const float *c,
                     int ldc, const float *c0, int ldc0, int N, int H) {
  for (int n = 0; n < N; n++) {
    const float *gr = gates + (size_t)n * ldg, *cr = c + (size_t)n * ldc;
    const float *dhr = dh ? dh + (size_t)n * lddh : NULL, *dcr = dc ? dc + (size_t)n * lddc : NULL;
    const float *c0r = c0 ? c0 + (size_t)n * ldc0 : NULL;
    float *dzr = dz + (size_t)n * lddz, *dc0r = dc0 && c0 ? dc0 + (size_t)n * lddc0 : NULL;
    for (int j = 0; j < H; j++) {
      const float i = gr[j], f = gr[H + j], g = gr[2 * H + j], o = gr[3 * H + j];
      const float tc = tanhf(cr[j]), gh = dhr ? dhr[j] : 0.0f;
      const float gc = (dcr ? dcr[j] : 0.0f) + gh * o * (1.0f - tc * tc);
      const float cprev = c0r ? c0r[j] : 0.0f;
      dzr[j] += gc * g * i * (1.0f - i);
      dzr[H + j] += gc * cprev * f * (1.0f - f);
      dzr[2 * H + j] += gc * i * (1.0f - g * g);
      dzr[3 * H + j] += gh * tc * o * (1.0f - o);
      if (dc0r) dc0r[j] += gc * f;
    }
  }
}

/* ---- the cell --------------------------------------------------------------- */

int lp_lstm_cell_forward(float *h, float *c, float *gates, const float *z, const float *c0,
                         int N, int H) {
  LP_REQUIRE(h && c && gates && z && lp_prod2(N, 4 * H) > 0 && H >= 1);
  cell_fwd(h, H, c, H, gates, 4 * H, z, 4 * H, c0, H, N, H);
  return LP_OK;
}

int lp_lstm_cell_backward(float *dz, float *dc0, const float *dh, const float *dc,
                          const float *gates, const float *c, const float *c0, int N, int H) {
  LP_REQUIRE(dz && gates && c && lp_prod2(N, 4 * H) > 0 && H >= 1);
  cell_bwd(dz, 4 * H, dc0, H, dh, H, dc, H, gates, 4 * H, c, H, c0, H, N, H);
  return LP_OK;
}

/* ---- the layer --------------------------------------------------------------- */

/* h[N,T,H], c[N,T,H], gates[N,T,4H] from x[N,T,C]. */
int lp_lstm_forward(float *h, float *c, float *gates, const float *x, const float *h0,
                    const float *c0, const float *Wx, const float *Wh, const float *b, int N,
                    int T, int C, int H) {
  LP_REQUIRE(h && c && gates && x && Wx && Wh && C >= 1 && H >= 1);
  LP_REQUIRE(lp_prod4(N, T, 4, H) > 0 && lp_prod3(N, T, C) > 0);
  const int G = 4 * H, ldg = T * G, ldh = T * H;
  /* gates = x Wx + b for every row and step at once */
  float beta = 0.0f;
  if (b) {
    for (size_t r = 0; r < (size_t)N * T; r++) memcpy(gates + r * G, b, sizeof(float) * (size_t)G);
    beta = 1.0f;
  }
  lp_gemm(0, 0, N * T, G, C, 1.0f, x, C, Wx, G, beta, gates, G);
  for (int t = 0; t < T; t++) {
    float *gt = gates + (size_t)t * G;
    /* += h_{t-1} Wh (h_{-1} = h0, or nothing for a zero state) */
    if (t > 0)
      lp_gemm(0, 0, N, G, H, 1.0f, h + (size_t)(t - 1) * H, ldh, Wh, G, 1.0f, gt, ldg);
    else if (h0)
      lp_gemm(0, 0, N, G, H, 1.0f, h0, H, Wh, G, 1.0f, gt, ldg);
    const float *cp = t > 0 ? c + (size_t)(t - 1) * H : c0;
    cell_fwd(h + (size_t)t * H, ldh, c + (size_t)t * H, ldh, gt, ldg, gt, ldg, cp,
             t > 0 ? ldh : H, N, H);
  }
  return LP_OK;
}

int lp_lstm_backward(float *dx, float *dh0, float *dc0, float *dWx, float *dWh, float *db,
                     const float *dh, const float *dc, const float *gates, const float *h,
                     const float *c, const float *x, const float *h0, const float *c0,
                     const float *Wx, const float *Wh, int N, int T, int C, int H) {
  LP_REQUIRE(dh && gates && h && c && x && Wx && Wh && C >= 1 && H >= 1);
  LP_REQUIRE(lp_prod4(N, T, 4, H) > 0 && lp_prod3(N, T, C) > 0);
  const int G = 4 * H, ldg = T * G, ldh = T * H;
  /* dz[N,T,4H] of every step; carry[2][N,H]: the gradient reaching h_{t-1}
   * and c_{t-1} from step t */
  float *dz = calloc((size_t)N * T * G, sizeof(float));
  float *gh = calloc((size_t)N * H, sizeof(float)), *gc = calloc((size_t)N * H, sizeof(float));
  float *sum = malloc(sizeof(float) * (size_t)N * H);
  if (!dz || !gh || !gc || !sum) {
    free(dz), free(gh), free(gc), free(sum);
    return LP_ENOMEM;
  }
  for (int t = T - 1; t >= 0; t--) {
    /* the step's output gradients: given + carried from step t + 1 */
    for (int n = 0; n < N; n++) {
      const float *d = dh + (size_t)n * ldh + (size_t)t * H;
      float *s = sum + (size_t)n * H;
      const float *g = gh + (size_t)n * H;
      for (int j = 0; j < H; j++) s[j] = d[j] + g[j];
      if (dc) {
        const float *e = dc + (size_t)n * ldh + (size_t)t * H;
        float *k = gc + (size_t)n * H;
        for (int j = 0; j < H; j++) k[j] += e[j];
      }
    }
    const float *cp = t > 0 ? c + (size_t)(t - 1) * H : c0;
    const int ldcp = t > 0 ? ldh : H;
    float *dzt = dz + (size_t)t * G;
    /* gh (free: its part is in sum) takes the total d c_t; gc becomes d c_{t-1} */
    memcpy(gh, gc, sizeof(float) * (size_t)N * H);
    memset(gc, 0, sizeof(float) * (size_t)N * H);
    cell_bwd(dzt, ldg, cp ? gc : NULL, H, sum, H, gh, H, gates + (size_t)t * G, ldg,
             c + (size_t)t * H, ldh, cp, ldcp, N, H);
    /* d h_{t-1} = dz_t Wh^T */
    if (t > 0) {
      lp_gemm(0, 1, N, H, G, 1.0f, dzt, ldg, Wh, G, 0.0f, gh, H);
      if (dWh) lp_gemm(1, 0, H, G, N, 1.0f, h + (size_t)(t - 1) * H, ldh, dzt, ldg, 1.0f, dWh, G);
    } else {
      if (dh0 && h0) lp_gemm(0, 1, N, H, G, 1.0f, dzt, ldg, Wh, G, 1.0f, dh0, H);
      if (dWh && h0) lp_gemm(1, 0, H, G, N, 1.0f, h0, H, dzt, ldg, 1.0f, dWh, G);
      if (dc0 && c0)
        for (size_t i = 0; i < (size_t)N * H; i++) dc0[i] += gc[i];
    }
  }
  /* the input products over every row and step at once */
  if (dx) lp_gemm(0, 1, N * T, C, G, 1.0f, dz, G, Wx, G, 1.0f, dx, C);
  if (dWx) lp_gemm(1, 0, C, G, N * T, 1.0f, x, C, dz, G, 1.0f, dWx, G);
  if (db)
    for (int k = 0; k < G; k++) {
      double s = 0.0;
      for (size_t r = 0; r < (size_t)N * T; r++) s += dz[r * G + k];
      db[k] += (float)s;
    }
  free(dz), free(gh), free(gc), free(sum);
  return LP_OK;
}
