/* Element-wise and row-wise ops: embedding, position encoding, linear, layer
 * norm, GELU, softmax, log-softmax, residual, concat, dropout. */
#include <math.h>
#include <string.h>

#include "internal.h"
#include "vec.h"

/* ---- embedding ----------------------------------------------------------- */

/* out[N,D] = table[ids[n]] (0 for pad). */
int lp_embedding_forward(float *out, const int32_t *ids, const float *table, int N,
                         int V, int D, int pad_id) {
  LP_REQUIRE(out && ids && table && N >= 1 && V >= 1 && D >= 1);
  for (int n = 0; n < N; n++) {
    int32_t id = ids[n];
    float *o = out + (size_t)n * D;
    if (pad_id >= 0 && id == pad_id) {
      memset(o, 0, sizeof(float) * (size_t)D);
      continue;
    }
    LP_REQUIRE(id >= 0 && id < V);
    memcpy(o, table + (size_t)id * D, sizeof(float) * (size_t)D);
  }
  return LP_OK;
}

/* dtable[V,D] += scatter(dout[N,D]). */
int lp_embedding_backward(float *dtable, const float *dout, const int32_t *ids, int N,
                          int V, int D, int pad_id) {
  LP_REQUIRE(dtable && dout && ids && N >= 1 && V >= 1 && D >= 1);
  for (int n = 0; n < N; n++) {
    int32_t id = ids[n];
    if (pad_id >= 0 && id == pad_id) continue;
    LP_REQUIRE(id >= 0 && id < V);
    float *dt = dtable + (size_t)id * D;
    const float *d = dout + (size_t)n * D;
    for (int i = 0; i < D; i++) dt[i] += d[i];
  }
  return LP_OK;
}

/* ---- sinusoidal position encoding ---------------------------------------- */

float lp_posenc_value(int pos, int i, int D) {
  int j2 = i - (i & 1); /* 2j */
  double w = exp(-(double)j2 * (log(10000.0) / (double)D));
  double a = (double)pos * w;
  return (float)((i & 1) ? cos(a) : sin(a));
}

/* out[B,T,D] = x + PE[pos0 + t]. */
int lp_posenc_forward(float *out, const float *x, int B, int T, int D, int pos0) {
  LP_REQUIRE(out && x && B >= 1 && T >= 1 && D >= 1 && pos0 >= 0);
  for (int t = 0; t < T; t++) {
    for (int i = 0; i < D; i++) {
      float pe = lp_posenc_value(pos0 + t, i, D);
      for (int b = 0; b < B; b++) {
        size_t at = ((size_t)b * T + t) * D + i;
        out[at] = x[at] + pe;
      }
    }
  }
  return LP_OK;
}

int lp_posenc_backward(float *dx, const float *dout, int B, int T, int D) {
  size_t n = lp_prod3(B, T, D);
  LP_REQUIRE(dx && dout && n > 0);
  for (size_t i = 0; i < n; i++) dx[i] += dout[i];
  return LP_OK;
}

/* ---- linear -------------------------------------------------------------- */

/* y[N,OC] = x[N,C] W[C,OC] + b[OC]. */
int lp_linear_forward(float *y, const float *x, const float *W, const float *b, int N,
                      int C, int OC) {
  LP_REQUIRE(y && x && W && N >= 1 && C >= 1 && OC >= 1);
  float beta = 0.0f;
  if (b) {
    for (int n = 0; n < N; n++) memcpy(y + (size_t)n * OC, b, sizeof(float) * (size_t)OC);
    beta = 1.0f;
  }
  lp_gemm(0, 0, N, OC, C, 1.0f, x, C, W, OC, beta, y, OC);
  return LP_OK;
}

/* dx[N,C] += dy W^T; dW[C,OC] += x^T dy; db[OC] += sum_n dy. */
int lp_linear_backward(float *dx, float *dW, float *db, const float *dy, const float *x,
                       const float *W, int N, int C, int OC) {
  LP_REQUIRE(dy && N >= 1 && C >= 1 && OC >= 1);
  LP_REQUIRE(!dx || W);
  LP_REQUIRE(!dW || x);
  if (dx)
    lp_gemm(0, 1, N, C, OC, 1.0f, dy, OC, W, OC, 1.0f, dx, C);
  if (dW)
    lp_gemm(1, 0, C, OC, N, 1.0f, x, C, dy, OC, 1.0f, dW, OC);
  if (db) {
    for (int o = 0; o < OC; o++) {
      double s = 0.0;
      for (int n = 0; n < N; n++) s += dy[(size_t)n * OC + o];
      db[o] += (float)s;
    }
  }
  return LP_OK;
}

/* ---- layer norm ---------------------------------------------------------- */

int lp_layernorm_forward(float *y, float *mean, float *rstd, const float *x,
                         const float *g, const float *b, int N, int C, float eps) {
  LP_REQUIRE(y && x && g && b && N >= 1 && C >= 1 && eps >= 0.0f);
  for (int n = 0; n < N; n++) {
    const float *xr = x + (size_t)n * C;
    float *yr = y + (size_t)n * C;
    double m = 0.0;
    for (int i = 0; i < C; i++) m += xr[i];
    m /= C;
    double v = 0.0;
    for (int i = 0; i < C; i++) {
      double d = xr[i] - m;
      v += d * d;
    }
    v /= C;
    double rs = 1.0 / sqrt(v + (double)eps);
    for (int i = 0; i < C; i++) yr[i] = (float)((xr[i] - m) * rs) * g[i] + b[i];
    if (mean) mean[n] = (float)m;
    if (rstd) rstd[n] = (float)rs;
  }
  return LP_OK;
}

int lp_layernorm_backward(float *dx, float *dg, float *db, const float *dy,
                          const float *x, const float *mean, const float *rstd,
                          const float *g, int N, int C) {
  LP_REQUIRE(dy && x && mean && rstd && g && N >= 1 && C >= 1);
  for (int n = 0; n < N; n++) {
    const float *xr = x + (size_t)n * C;
    const float *dyr = dy + (size_t)n * C;
    float m = mean[n], rs = rstd[n];
    double sum_dn = 0.0, sum_dn_xn = 0.0;
    for (int i = 0; i < C; i++) {
      double xn = (double)(xr[i] - m) * rs;
      double dn = (double)g[i] * dyr[i];
      sum_dn += dn;
      sum_dn_xn += dn * xn;
    }
    double mean_dn = sum_dn / C, mean_dn_xn = sum_dn_xn / C;
    for (int i = 0; i < C; i++) {
      double xn = (double)(xr[i] - m) * rs;
      if (db) db[i] += dyr[i];
      if (dg) dg[i] += (float)(xn * dyr[i]);
      if (dx) {
        double dn = (double)g[i] * dyr[i];
        dx[(size_t)n * C + i] += (float)((dn - mean_dn - xn * mean_dn_xn) * rs);
      }
    }
  }
  return LP_OK;
}

/* ---- GELU (tanh approximation) ------------------------------------------- */

#define LP_GELU_K 0.7978845608028654f /* sqrt(2/pi) */
#define LP_GELU_C 0.044715f

/* tanh(u) = 1 - 2 / (exp(2u) + 1): glibc's expf is several times faster than
 * its tanhf; the absolute error (~1e-7 near 0) is harmless here, and the
 * limits are exact (exp overflow -> 1, underflow -> -1). */
static inline float fast_tanh(float u) { return 1.0f - 2.0f / (expf(2.0f * u) + 1.0f); }

int lp_gelu_forward(float *y, const float *x, size_t n) {
  LP_REQUIRE(y && x && n > 0);
  for (size_t i = 0; i < n; i++) {
    float v = x[i];
    float u = LP_GELU_K * (v + LP_GELU_C * v * v * v);
    y[i] = 0.5f * v * (1.0f + fast_tanh(u));
  }
  return LP_OK;
}

int lp_gelu_backward(float *dx, const float *dy, const float *x, size_t n) {
  LP_REQUIRE(dx && dy && x && n > 0);
  for (size_t i = 0; i < n; i++) {
    float v = x[i];
    float u = LP_GELU_K * (v + LP_GELU_C * v * v * v);
    float t = fast_tanh(u);
    float du = LP_GELU_K * (1.0f + 3.0f * LP_GELU_C * v * v);
    float d = 0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * du;
    dx[i] += d * dy[i];
  }
  return LP_OK;
}

/* ---- softmax / log-softmax ----------------------------------------------- */

int lp_softmax_forward(float *y, const float *x, int N, int C) {
  LP_REQUIRE(y && x && N >= 1 && C >= 1);
  for (int n = 0; n < N; n++) {
    const float *xr = x + (size_t)n * C;
    float *yr = y + (size_t)n * C;
    const float mx = v4_max_row(xr, C);
    double s = v4_sum_exp(yr, xr, C, mx);
    float inv = (float)(1.0 / s);
    for (int i = 0; i < C; i++) yr[i] *= inv;
  }
  return LP_OK;
}

int lp_softmax_backward(float *dx, const float *dy, const float *y, int N, int C) {
  LP_REQUIRE(dx && dy && y && N >= 1 && C >= 1);
  for (int n = 0; n < N; n++) {
    const float *yr = y + (size_t)n * C;
    const float *dyr = dy + (size_t)n * C;
    double dot = 0.0;
    for (int i = 0; i < C; i++) dot += (double)dyr[i] * yr[i];
    for (int i = 0; i < C; i++) dx[(size_t)n * C + i] += yr[i] * (dyr[i] - (float)dot);
  }
  return LP_OK;
}

int lp_log_softmax_forward(float *y, const float *x, int N, int C) {
  LP_REQUIRE(y && x && N >= 1 && C >= 1);
  for (int n = 0; n < N; n++) {
    const float *xr = x + (size_t)n * C;
    float *yr = y + (size_t)n * C;
    const float mx = v4_max_row(xr, C);
    double s = v4_sum_exp(NULL, xr, C, mx);
    float lse = mx + (float)log(s);
    v4_sub_row(yr, xr, C, lse);
  }
  return LP_OK;
}

int lp_log_softmax_backward(float *dx, const float *dy, const float *y, int N, int C) {
  LP_REQUIRE(dx && dy && y && N >= 1 && C >= 1);
  for (int n = 0; n < N; n++) {
    const float *yr = y + (size_t)n * C;
    const float *dyr = dy + (size_t)n * C;
    double s = 0.0;
    for (int i = 0; i < C; i++) s += dyr[i];
    float *dxr = dx + (size_t)n * C;
    const v4f sv = v4_splat((float)s);
    int i = 0;
    for (; i + 4 <= C; i += 4)
      v4_store(dxr + i, v4_load(dxr + i) + v4_load(dyr + i) - v4_exp_neg(v4_load(yr + i)) * sv);
    for (; i < C; i++) dxr[i] += dyr[i] - v4_exp_neg(v4_splat(yr[i]))[0] * (float)s;
  }
  return LP_OK;
}

/* ---- residual / concat --------------------------------------------------- */

int lp_residual_forward(float *y, const float *a, const float *b, size_t n) {
  LP_REQUIRE(y && a && b && n > 0);
  for (size_t i = 0; i < n; i++) y[i] = a[i] + b[i];
  return LP_OK;
}

int lp_residual_backward(float *da, float *db, const float *dy, size_t n) {
  LP_REQUIRE(dy && n > 0);
  if (da)
    for (size_t i = 0; i < n; i++) da[i] += dy[i];
  if (db)
    for (size_t i = 0; i < n; i++) db[i] += dy[i];
  return LP_OK;
}

int lp_concat_forward(float *y, const float *a, const float *b, int N, int C1, int C2) {
  LP_REQUIRE(y && a && b && N >= 1 && C1 >= 1 && C2 >= 1);
  size_t C = (size_t)C1 + (size_t)C2;
  for (int n = 0; n < N; n++) {
    memcpy(y + n * C, a + (size_t)n * C1, sizeof(float) * (size_t)C1);
    memcpy(y + n * C + C1, b + (size_t)n * C2, sizeof(float) * (size_t)C2);
  }
  return LP_OK;
}

int lp_concat_backward(float *da, float *db, const float *dy, int N, int C1, int C2) {
  LP_REQUIRE(dy && N >= 1 && C1 >= 1 && C2 >= 1);
  size_t C = (size_t)C1 + (size_t)C2;
  for (int n = 0; n < N; n++) {
    const float *d = dy + n * C;
    if (da)
      for (int i = 0; i < C1; i++) da[(size_t)n * C1 + i] += d[i];
    if (db)
      for (int i = 0; i < C2; i++) db[(size_t)n * C2 + i] += d[C1 + i];
  }
  return LP_OK;
}

/* ---- dropout ------------------------------------------------------------- */

int lp_dropout_forward(float *y, uint8_t *mask, const float *x, size_t n, float p,
                       lp_rng *rng) {
  LP_REQUIRE(y && x && n > 0 && p >= 0.0f && p < 1.0f);
  if (!rng || p == 0.0f) {
    if (y != x) memmove(y, x, sizeof(float) * n);
    if (mask) memset(mask, 1, n);
    return LP_OK;
  }
  LP_REQUIRE(mask);
  float scale = 1.0f / (1.0f - p);
  lp_keep_mask(mask, n, p, rng);
  for (size_t i = 0; i < n; i++) y[i] = mask[i] ? x[i] * scale : 0.0f;
  return LP_OK;
}

int lp_dropout_backward(float *dx, const float *dy, const uint8_t *mask, size_t n,
                        float p) {
  LP_REQUIRE(dx && dy && n > 0 && p >= 0.0f && p < 1.0f);
  if (!mask) {
    for (size_t i = 0; i < n; i++) dx[i] += dy[i];
    return LP_OK;
  }
  float scale = 1.0f / (1.0f - p);
  for (size_t i = 0; i < n; i++)
    if (mask[i]) dx[i] += dy[i] * scale;
  return LP_OK;
}
