/* Tests of the generic neural engine.
 *
 * Usage: engine_tests <case>     run one case (exit 0 = pass)
 *        engine_tests op <name>  forward reference check + gradient check of
 *                                the op-table entry <name>
 *        engine_tests all        everything
 *        engine_tests --list     case names
 * Every op of lp_ops() is registered as its own ctest test by
 * tests/engine/CMakeLists.txt (engine.op.<name>). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gradcheck.h" /* lp_gradcheck, lp_ops: test code (lpsynth_engine_testkit) */
#include "lpsynth/engine.h"

static int g_failures;

#define EXPECT(cond)                                                          \
  do {                                                                        \
    if (!(cond)) {                                                            \
      fprintf(stderr, "%s:%d: expected %s\n", __FILE__, __LINE__, #cond);     \
      g_failures++;                                                           \
    }                                                                         \
  } while (0)

#define EXPECT_NEAR(a, b, tol)                                                     \
  do {                                                                             \
    double a_ = (double)(a), b_ = (double)(b);                                     \
    if (!(fabs(a_ - b_) <= (tol))) {                                               \
      fprintf(stderr, "%s:%d: %s = %.9g, expected %.9g (tol %g)\n", __FILE__,      \
              __LINE__, #a, a_, b_, (double)(tol));                                \
      g_failures++;                                                                \
    }                                                                              \
  } while (0)

#define EXPECT_OK(expr) EXPECT((expr) == LP_OK)

static void *xcalloc(size_t n, size_t sz) {
  void *p = calloc(n ? n : 1, sz);
  if (!p) {
    fprintf(stderr, "out of memory\n");
    exit(2);
  }
  return p;
}

static float *fvec(size_t n) { return xcalloc(n, sizeof(float)); }

static void fill(float *x, size_t n, lp_rng *r, float scale) {
  for (size_t i = 0; i < n; i++) x[i] = scale * lp_rng_normal(r);
}

static double max_abs_diff_fd(const float *a, const double *b, size_t n) {
  double m = 0.0;
  for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
  return m;
}

static double max_abs_diff(const float *a, const float *b, size_t n) {
  double m = 0.0;
  for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - (double)b[i]));
  return m;
}

/* ======================================================================== */
/* Forward reference checks, one per op of the table (naive double code).   */

static void fwd_embedding(void) {
  lp_rng r;
  lp_rng_seed(&r, 1);
  int V = 6, D = 4, N = 5;
  float *table = fvec((size_t)V * D), *out = fvec((size_t)N * D);
  fill(table, (size_t)V * D, &r, 1.0f);
  int32_t ids[5] = {2, 0, 5, 2, 1};
  EXPECT_OK(lp_embedding_forward(out, ids, table, N, V, D, 0));
  for (int n = 0; n < N; n++)
    for (int i = 0; i < D; i++)
      EXPECT(out[n * D + i] == (ids[n] == 0 ? 0.0f : table[ids[n] * D + i]));
  /* no padding id: id 0 is a normal row */
  EXPECT_OK(lp_embedding_forward(out, ids, table, N, V, D, -1));
  EXPECT(out[1 * D + 3] == table[0 * D + 3]);
  int32_t bad[2] = {1, 6};
  EXPECT(lp_embedding_forward(out, bad, table, 2, V, D, 0) == LP_EINVAL);
  bad[1] = -3;
  EXPECT(lp_embedding_forward(out, bad, table, 2, V, D, 0) == LP_EINVAL);
  free(table);
  free(out);
}

static void fwd_posenc(void) {
  int B = 2, T = 7, D = 10, pos0 = 4;
  float *x = fvec((size_t)B * T * D), *y = fvec((size_t)B * T * D);
  lp_rng r;
  lp_rng_seed(&r, 2);
  fill(x, (size_t)B * T * D, &r, 1.0f);
  EXPECT_OK(lp_posenc_forward(y, x, B, T, D, pos0));
  double worst = 0.0;
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T; t++)
      for (int i = 0; i < D; i++) {
        int p = pos0 + t;
        double w = exp(-(double)(i - i % 2) * log(10000.0) / D);
        double pe = (i % 2) ? cos(p * w) : sin(p * w);
        size_t at = ((size_t)b * T + t) * D + i;
        worst = fmax(worst, fabs((double)y[at] - x[at] - pe));
      }
  EXPECT(worst < 1e-5);
  EXPECT_NEAR(lp_posenc_value(0, 0, D), 0.0, 0.0);
  EXPECT_NEAR(lp_posenc_value(0, 1, D), 1.0, 0.0);
  EXPECT_NEAR(lp_posenc_value(3, 0, D), sin(3.0), 1e-7);
  /* in place */
  EXPECT_OK(lp_posenc_forward(x, x, B, T, D, pos0));
  EXPECT(max_abs_diff(x, y, (size_t)B * T * D) == 0.0);
  free(x);
  free(y);
}

static void fwd_linear(void) {
  int N = 7, C = 5, OC = 6;
  lp_rng r;
  lp_rng_seed(&r, 3);
  float *x = fvec((size_t)N * C), *W = fvec((size_t)C * OC), *b = fvec((size_t)OC);
  float *y = fvec((size_t)N * OC), *y2 = fvec((size_t)N * OC);
  double *ref = xcalloc((size_t)N * OC, sizeof(double));
  fill(x, (size_t)N * C, &r, 1.0f);
  fill(W, (size_t)C * OC, &r, 1.0f);
  fill(b, (size_t)OC, &r, 1.0f);
  for (int n = 0; n < N; n++)
    for (int o = 0; o < OC; o++) {
      double s = b[o];
      for (int c = 0; c < C; c++) s += (double)x[n * C + c] * W[c * OC + o];
      ref[n * OC + o] = s;
    }
  EXPECT_OK(lp_linear_forward(y, x, W, b, N, C, OC));
  EXPECT(max_abs_diff_fd(y, ref, (size_t)N * OC) < 1e-5);
  EXPECT_OK(lp_linear_forward(y2, x, W, NULL, N, C, OC));
  for (int n = 0; n < N; n++)
    for (int o = 0; o < OC; o++) EXPECT_NEAR(y2[n * OC + o], ref[n * OC + o] - b[o], 1e-5);
  /* backward vs naive */
  float *dy = fvec((size_t)N * OC), *dx = fvec((size_t)N * C), *dW = fvec((size_t)C * OC);
  float *db = fvec((size_t)OC);
  fill(dy, (size_t)N * OC, &r, 1.0f);
  EXPECT_OK(lp_linear_backward(dx, dW, db, dy, x, W, N, C, OC));
  double worst = 0.0;
  for (int n = 0; n < N; n++)
    for (int c = 0; c < C; c++) {
      double s = 0.0;
      for (int o = 0; o < OC; o++) s += (double)dy[n * OC + o] * W[c * OC + o];
      worst = fmax(worst, fabs(s - dx[n * C + c]));
    }
  for (int c = 0; c < C; c++)
    for (int o = 0; o < OC; o++) {
      double s = 0.0;
      for (int n = 0; n < N; n++) s += (double)x[n * C + c] * dy[n * OC + o];
      worst = fmax(worst, fabs(s - dW[c * OC + o]));
    }
  for (int o = 0; o < OC; o++) {
    double s = 0.0;
    for (int n = 0; n < N; n++) s += dy[n * OC + o];
    worst = fmax(worst, fabs(s - db[o]));
  }
  EXPECT(worst < 1e-5);
  EXPECT(lp_linear_forward(y, x, W, b, 0, C, OC) == LP_EINVAL);
  EXPECT(lp_linear_forward(NULL, x, W, b, N, C, OC) == LP_EINVAL);
  free(x), free(W), free(b), free(y), free(y2), free(ref), free(dy), free(dx), free(dW),
      free(db);
}

static void fwd_layernorm(void) {
  int N = 4, C = 9;
  lp_rng r;
  lp_rng_seed(&r, 4);
  float *x = fvec((size_t)N * C), *g = fvec(C), *b = fvec(C), *y = fvec((size_t)N * C);
  float mean[4], rstd[4];
  fill(x, (size_t)N * C, &r, 2.0f);
  fill(g, C, &r, 1.0f);
  fill(b, C, &r, 1.0f);
  EXPECT_OK(lp_layernorm_forward(y, mean, rstd, x, g, b, N, C, 1e-6f));
  for (int n = 0; n < N; n++) {
    double m = 0.0, v = 0.0;
    for (int i = 0; i < C; i++) m += x[n * C + i];
    m /= C;
    for (int i = 0; i < C; i++) v += (x[n * C + i] - m) * (x[n * C + i] - m);
    v /= C;
    double rs = 1.0 / sqrt(v + 1e-6);
    EXPECT_NEAR(mean[n], m, 1e-6);
    EXPECT_NEAR(rstd[n], rs, 1e-5 * rs);
    for (int i = 0; i < C; i++)
      EXPECT_NEAR(y[n * C + i], (x[n * C + i] - m) * rs * g[i] + b[i], 1e-5);
  }
  /* without saved statistics */
  EXPECT_OK(lp_layernorm_forward(y, NULL, NULL, x, g, b, N, C, 1e-6f));
  free(x), free(g), free(b), free(y);
}

static void fwd_gelu(void) {
  const float xs[5] = {1.0f, -1.0f, 2.0f, -3.0f, 0.5f};
  const double ref[5] = {0.8411919906082768, -0.15880800939172324, 1.954597694087775,
                         -0.0036373920817729943, 0.34571400982514394};
  float y[5];
  EXPECT_OK(lp_gelu_forward(y, xs, 5));
  for (int i = 0; i < 5; i++) EXPECT_NEAR(y[i], ref[i], 2e-6);
  float z = 0.0f, yz;
  EXPECT_OK(lp_gelu_forward(&yz, &z, 1));
  EXPECT(yz == 0.0f);
}

static void fwd_softmax(void) {
  float x[6] = {1.0f, 2.0f, 3.0f, 1000.0f, 1001.0f, 1002.0f}, y[6];
  EXPECT_OK(lp_softmax_forward(y, x, 2, 3));
  double e = exp(1.0), e2 = exp(2.0), s = 1.0 + e + e2;
  for (int r = 0; r < 2; r++) {
    EXPECT_NEAR(y[r * 3 + 0], 1.0 / s, 1e-6);
    EXPECT_NEAR(y[r * 3 + 1], e / s, 1e-6);
    EXPECT_NEAR(y[r * 3 + 2], e2 / s, 1e-6);
  }
}

static void fwd_log_softmax(void) {
  float x[6] = {1.0f, 2.0f, 3.0f, -500.0f, 0.0f, 500.0f}, y[6];
  EXPECT_OK(lp_log_softmax_forward(y, x, 2, 3));
  double lse = log(exp(1.0) + exp(2.0) + exp(3.0));
  for (int i = 0; i < 3; i++) EXPECT_NEAR(y[i], x[i] - lse, 1e-6);
  EXPECT_NEAR(y[5], 0.0, 1e-6);
  EXPECT(isfinite(y[3]) && y[3] < -999.0f);
}

static void fwd_residual(void) {
  float a[3] = {1, 2, 3}, b[3] = {10, 20, 30}, y[3];
  EXPECT_OK(lp_residual_forward(y, a, b, 3));
  EXPECT(y[0] == 11 && y[1] == 22 && y[2] == 33);
  EXPECT_OK(lp_residual_forward(a, a, b, 3)); /* in place */
  EXPECT(a[2] == 33);
}

static void fwd_concat(void) {
  float a[4] = {1, 2, 3, 4}, b[2] = {9, 8}, y[6];
  EXPECT_OK(lp_concat_forward(y, a, b, 2, 2, 1));
  const float ref[6] = {1, 2, 9, 3, 4, 8};
  EXPECT(memcmp(y, ref, sizeof ref) == 0);
}

static void fwd_dropout(void) {
  size_t n = 20000;
  float *x = fvec(n), *y = fvec(n), *y2 = fvec(n);
  uint8_t *m = xcalloc(n, 1), *m2 = xcalloc(n, 1);
  for (size_t i = 0; i < n; i++) x[i] = 1.0f + (float)(i % 7);
  lp_rng r;
  lp_rng_seed(&r, 99);
  EXPECT_OK(lp_dropout_forward(y, m, x, n, 0.3f, &r));
  size_t kept = 0;
  for (size_t i = 0; i < n; i++) {
    kept += m[i];
    EXPECT(m[i] ? fabsf(y[i] - x[i] / 0.7f) < 1e-5f : y[i] == 0.0f);
  }
  double frac = (double)kept / n;
  EXPECT(frac > 0.68 && frac < 0.72);
  /* deterministic */
  lp_rng_seed(&r, 99);
  EXPECT_OK(lp_dropout_forward(y2, m2, x, n, 0.3f, &r));
  EXPECT(memcmp(m, m2, n) == 0 && max_abs_diff(y, y2, n) == 0.0);
  /* evaluation: identity, no randomness used */
  lp_rng_seed(&r, 5);
  EXPECT_OK(lp_dropout_forward(y, m, x, n, 0.3f, NULL));
  EXPECT(max_abs_diff(x, y, n) == 0.0 && m[17] == 1);
  EXPECT_OK(lp_dropout_forward(y, m, x, n, 0.0f, &r));
  EXPECT(max_abs_diff(x, y, n) == 0.0 && r.state == 5);
  EXPECT(lp_dropout_forward(y, m, x, n, 1.0f, &r) == LP_EINVAL);
  EXPECT(lp_dropout_forward(y, NULL, x, n, 0.5f, &r) == LP_EINVAL);
  free(x), free(y), free(y2), free(m), free(m2);
}

/* Naive attention in double. */
static void ref_attention(double *out, const float *q, const float *k, const float *v,
                          const uint8_t *km, const uint8_t *dm, float p, int B, int Tq,
                          int Tk, int H, int dh, int causal) {
  int Dq = H * dh;
  double *s = xcalloc((size_t)Tk, sizeof(double));
  for (int b = 0; b < B; b++)
    for (int h = 0; h < H; h++)
      for (int i = 0; i < Tq; i++) {
        double mx = -INFINITY;
        for (int j = 0; j < Tk; j++) {
          int vis = (!km || km[b * Tk + j]) && (!causal || j <= i + Tk - Tq);
          s[j] = -INFINITY;
          if (!vis) continue;
          double d = 0.0;
          for (int e = 0; e < dh; e++)
            d += (double)q[((size_t)b * Tq + i) * Dq + h * dh + e] *
                 k[((size_t)b * Tk + j) * Dq + h * dh + e];
          s[j] = d / sqrt((double)dh);
          mx = fmax(mx, s[j]);
        }
        double z = 0.0;
        for (int j = 0; j < Tk; j++) z += s[j] == -INFINITY ? 0.0 : exp(s[j] - mx);
        for (int e = 0; e < dh; e++) {
          double o = 0.0;
          for (int j = 0; j < Tk; j++) {
            if (s[j] == -INFINITY) continue;
            double pj = exp(s[j] - mx) / z;
            if (dm) pj = dm[(((size_t)b * H + h) * Tq + i) * Tk + j] ? pj / (1.0 - p) : 0.0;
            o += pj * v[((size_t)b * Tk + j) * Dq + h * dh + e];
          }
          out[((size_t)b * Tq + i) * Dq + h * dh + e] = mx == -INFINITY ? 0.0 : o;
        }
      }
  free(s);
}

static void check_attention(int B, int Tq, int Tk, int H, int dh, int causal, int masked,
                            float p) {
  lp_rng r;
  lp_rng_seed(&r, 77 + (uint64_t)Tq * 13 + (uint64_t)Tk + (uint64_t)causal);
  int Dq = H * dh;
  float *q = fvec((size_t)B * Tq * Dq), *k = fvec((size_t)B * Tk * Dq),
        *v = fvec((size_t)B * Tk * Dq), *o = fvec((size_t)B * Tq * Dq),
        *att = fvec((size_t)B * H * Tq * Tk);
  uint8_t *dm = xcalloc((size_t)B * H * Tq * Tk, 1), *km = NULL;
  double *ref = xcalloc((size_t)B * Tq * Dq, sizeof(double));
  fill(q, (size_t)B * Tq * Dq, &r, 1.0f);
  fill(k, (size_t)B * Tk * Dq, &r, 1.0f);
  fill(v, (size_t)B * Tk * Dq, &r, 1.0f);
  if (masked) {
    km = xcalloc((size_t)B * Tk, 1);
    for (int b = 0; b < B; b++)
      for (int j = 0; j < Tk; j++) km[b * Tk + j] = j < Tk - 1 - b;
    if (B > 2) memset(km + 2 * Tk, 0, (size_t)Tk); /* batch 2: nothing visible */
  }
  lp_rng dr;
  lp_rng_seed(&dr, 3);
  EXPECT_OK(lp_attention_forward(o, att, dm, q, k, v, km, B, Tq, Tk, H, dh, causal, p,
                                 p > 0.0f ? &dr : NULL));
  ref_attention(ref, q, k, v, km, p > 0.0f ? dm : NULL, p, B, Tq, Tk, H, dh, causal);
  EXPECT(max_abs_diff_fd(o, ref, (size_t)B * Tq * Dq) < 1e-5);
  /* probabilities: rows sum to 1 (or 0 when nothing is visible), masked = 0 */
  for (int b = 0; b < B; b++)
    for (int h = 0; h < H; h++)
      for (int i = 0; i < Tq; i++) {
        const float *row = att + (((size_t)b * H + h) * Tq + i) * Tk;
        double s = 0.0;
        int any = 0;
        for (int j = 0; j < Tk; j++) {
          int vis = (!km || km[b * Tk + j]) && (!causal || j <= i + Tk - Tq);
          any |= vis;
          if (!vis) EXPECT(row[j] == 0.0f);
          s += row[j];
        }
        EXPECT_NEAR(s, any ? 1.0 : 0.0, 1e-5);
      }
  free(q), free(k), free(v), free(o), free(att), free(dm), free(km), free(ref);
}

static void fwd_attention_self(void) { check_attention(3, 6, 6, 2, 4, 0, 1, 0.0f); }
static void fwd_attention_causal(void) {
  check_attention(3, 6, 6, 2, 4, 1, 1, 0.0f);
  check_attention(2, 5, 5, 4, 2, 1, 0, 0.0f);
}
static void fwd_attention_cross(void) { check_attention(3, 4, 7, 3, 2, 0, 1, 0.0f); }
static void fwd_attention_prefix(void) {
  check_attention(2, 1, 6, 2, 3, 1, 0, 0.0f);
  check_attention(2, 3, 6, 2, 3, 1, 1, 0.0f);
  /* causal needs Tq <= Tk */
  float buf[64];
  EXPECT(lp_attention_forward(buf, buf, NULL, buf, buf, buf, NULL, 1, 3, 2, 1, 2, 1, 0.0f,
                              NULL) == LP_EINVAL);
}
static void fwd_attention_dropout(void) { check_attention(2, 5, 5, 2, 3, 1, 1, 0.3f); }

static void fwd_cross_entropy(void) {
  /* uniform logits: loss ln V; targets 0 (pad) ignored */
  float logits[12] = {0}, probs[12], losses[3];
  double loss;
  int32_t t[3] = {1, 0, 3};
  int nv = -1;
  EXPECT_OK(lp_cross_entropy_forward(&loss, probs, losses, &nv, logits, t, 3, 4, 0));
  EXPECT_NEAR(loss, log(4.0), 1e-6);
  EXPECT(nv == 2 && losses[1] == 0.0f);
  /* hand example: logits (ln1, ln2, ln3, ln4) target 2 -> -ln(3/10) */
  float l2[4] = {0.0f, (float)log(2.0), (float)log(3.0), (float)log(4.0)}, p2[4];
  int32_t t2 = 2;
  EXPECT_OK(lp_cross_entropy_forward(&loss, p2, NULL, NULL, l2, &t2, 1, 4, -1));
  EXPECT_NEAR(loss, -log(0.3), 1e-6);
  EXPECT_NEAR(p2[3], 0.4, 1e-6);
  /* dlogits = (p - onehot) / n_valid */
  float d[4] = {0};
  EXPECT_OK(lp_cross_entropy_backward(d, p2, &t2, 1, 4, -1, 1.0f));
  EXPECT_NEAR(d[0], 0.1, 1e-6);
  EXPECT_NEAR(d[2], 0.3 - 1.0, 1e-6);
  /* all pad: loss 0 and no gradient */
  int32_t tp[3] = {0, 0, 0};
  float dl[12] = {0};
  EXPECT_OK(lp_cross_entropy_forward(&loss, probs, NULL, &nv, logits, tp, 3, 4, 0));
  EXPECT(loss == 0.0 && nv == 0);
  EXPECT_OK(lp_cross_entropy_backward(dl, probs, tp, 3, 4, 0, 1.0f));
  for (int i = 0; i < 12; i++) EXPECT(dl[i] == 0.0f);
  int32_t tb[1] = {4};
  EXPECT(lp_cross_entropy_forward(&loss, probs, NULL, NULL, logits, tb, 1, 4, 0) ==
         LP_EINVAL);
  /* large logits stay finite */
  float big[2] = {1000.0f, -1000.0f};
  int32_t t1 = 1;
  EXPECT_OK(lp_cross_entropy_forward(&loss, probs, NULL, NULL, big, &t1, 1, 2, -1));
  EXPECT_NEAR(loss, 2000.0, 1e-3);
}

static void check_conv(int T) {
  int B = 2, C = 3, OC = 5, To = lp_conv1d_s2_out_len(T);
  EXPECT(To == (T + 1) / 2);
  lp_rng r;
  lp_rng_seed(&r, 11 + (uint64_t)T);
  float *x = fvec((size_t)B * T * C), *W = fvec((size_t)2 * C * OC), *b = fvec((size_t)OC),
        *y = fvec((size_t)B * To * OC);
  fill(x, (size_t)B * T * C, &r, 1.0f);
  fill(W, (size_t)2 * C * OC, &r, 1.0f);
  fill(b, (size_t)OC, &r, 1.0f);
  EXPECT_OK(lp_conv1d_s2_forward(y, x, W, b, B, T, C, OC));
  double worst = 0.0;
  for (int bb = 0; bb < B; bb++)
    for (int t = 0; t < To; t++)
      for (int o = 0; o < OC; o++) {
        double s = b[o];
        for (int k = 0; k < 2; k++) {
          int src = 2 * t + k;
          if (src >= T) continue; /* "same" padding */
          for (int c = 0; c < C; c++)
            s += (double)x[((size_t)bb * T + src) * C + c] * W[((size_t)k * C + c) * OC + o];
        }
        worst = fmax(worst, fabs(s - y[((size_t)bb * To + t) * OC + o]));
      }
  EXPECT(worst < 1e-5);
  free(x), free(W), free(b), free(y);
}

static void fwd_conv1d_s2(void) {
  check_conv(6);
  check_conv(2);
  EXPECT(lp_conv1d_s2_out_len(8) == 4 && lp_conv1d_s2_out_len(1) == 1);
}
static void fwd_conv1d_s2_odd(void) {
  check_conv(7);
  check_conv(1);
  EXPECT(lp_conv1d_s2_out_len(7) == 4);
}

static void fwd_maxpool_examples(void) {
  int B = 3, E = 3, M = 4;
  float x[36], y[12];
  int32_t am[12];
  for (int i = 0; i < 36; i++) x[i] = (float)((i * 7) % 11) - 5.0f;
  uint8_t em[9] = {1, 1, 1, 1, 0, 1, 0, 0, 0};
  EXPECT_OK(lp_maxpool_examples_forward(y, am, x, em, B, E, M));
  for (int b = 0; b < 2; b++)
    for (int m = 0; m < M; m++) {
      float best = -INFINITY;
      int arg = -1;
      for (int e = 0; e < E; e++)
        if (em[b * E + e] && x[(b * E + e) * M + m] > best) {
          best = x[(b * E + e) * M + m];
          arg = e;
        }
      EXPECT(y[b * M + m] == best && am[b * M + m] == arg);
    }
  for (int m = 0; m < M; m++) EXPECT(y[2 * M + m] == 0.0f && am[2 * M + m] == -1);
  float dx[36] = {0}, dy[12];
  for (int i = 0; i < 12; i++) dy[i] = 1.0f + i;
  EXPECT_OK(lp_maxpool_examples_backward(dx, dy, am, B, E, M));
  double s = 0.0;
  for (int i = 0; i < 36; i++) s += dx[i];
  EXPECT_NEAR(s, 1 + 2 + 3 + 4 + 5 + 6 + 7 + 8, 1e-6); /* batch 2 gets nothing */
  /* no mask */
  EXPECT_OK(lp_maxpool_examples_forward(y, am, x, NULL, B, E, M));
  EXPECT(am[2 * M] >= 0);
}

/* A block built in a fresh layout with perturbed parameters. */
typedef struct test_model {
  lp_layout *L;
  float *P, *G;
  size_t np;
} test_model;

static void model_alloc(test_model *m, uint64_t seed, float jitter) {
  m->np = lp_layout_numel(m->L);
  m->P = fvec(m->np);
  m->G = fvec(m->np);
  EXPECT_OK(lp_layout_init_params(m->L, m->P, seed));
  lp_rng r;
  lp_rng_seed(&r, seed + 1);
  for (size_t i = 0; i < m->np; i++) m->P[i] += jitter * lp_rng_normal(&r);
}

static void model_free(test_model *m) {
  lp_layout_free(m->L);
  free(m->P);
  free(m->G);
}

static void fwd_encoder_block_common(void) {
  /* eval forward == the same composition of primitive ops */
  lp_block_cfg cfg;
  lp_block_cfg_default(&cfg, 8, 2, 12);
  cfg.attn_bias = 1;
  test_model m = {lp_layout_new(), NULL, NULL, 0};
  lp_enc_block blk;
  EXPECT_OK(lp_enc_block_init(&blk, &cfg, m.L, "e"));
  model_alloc(&m, 5, 0.1f);
  int B = 2, T = 5, D = 8, F = 12, N = B * T;
  lp_rng r;
  lp_rng_seed(&r, 6);
  float *x = fvec((size_t)N * D), *y = fvec((size_t)N * D);
  fill(x, (size_t)N * D, &r, 1.0f);
  uint8_t mask[10] = {1, 1, 1, 1, 1, 1, 1, 1, 0, 0};
  lp_enc_block_acts *a = lp_enc_block_acts_new(&blk, 3, 6);
  EXPECT(a != NULL);
  EXPECT_OK(lp_enc_block_forward(&blk, m.P, a, y, x, mask, B, T, NULL));
  const float *P = m.P;
  float *ln1 = fvec((size_t)N * D), *q = fvec((size_t)N * D), *k = fvec((size_t)N * D),
        *v = fvec((size_t)N * D), *ctx = fvec((size_t)N * D), *att = fvec((size_t)B * 2 * T * T),
        *ao = fvec((size_t)N * D), *r1 = fvec((size_t)N * D), *ln2 = fvec((size_t)N * D),
        *h = fvec((size_t)N * F), *f = fvec((size_t)N * D), *ref = fvec((size_t)N * D);
  EXPECT_OK(lp_layernorm_forward(ln1, NULL, NULL, x, P + blk.ln1.g, P + blk.ln1.b, N, D, 1e-6f));
  EXPECT_OK(lp_linear_forward(q, ln1, P + blk.attn.wq, P + blk.attn.bq, N, D, D));
  EXPECT_OK(lp_linear_forward(k, ln1, P + blk.attn.wk, P + blk.attn.bk, N, D, D));
  EXPECT_OK(lp_linear_forward(v, ln1, P + blk.attn.wv, P + blk.attn.bv, N, D, D));
  EXPECT_OK(lp_attention_forward(ctx, att, NULL, q, k, v, mask, B, T, T, 2, 4, 0, 0.0f, NULL));
  EXPECT_OK(lp_linear_forward(ao, ctx, P + blk.attn.wo, P + blk.attn.bo, N, D, D));
  EXPECT_OK(lp_residual_forward(r1, x, ao, (size_t)N * D));
  EXPECT_OK(lp_layernorm_forward(ln2, NULL, NULL, r1, P + blk.ln2.g, P + blk.ln2.b, N, D, 1e-6f));
  EXPECT_OK(lp_linear_forward(h, ln2, P + blk.ffn.w1, P + blk.ffn.b1, N, D, F));
  EXPECT_OK(lp_gelu_forward(h, h, (size_t)N * F));
  EXPECT_OK(lp_linear_forward(f, h, P + blk.ffn.w2, P + blk.ffn.b2, N, F, D));
  EXPECT_OK(lp_residual_forward(ref, r1, f, (size_t)N * D));
  EXPECT(max_abs_diff(y, ref, (size_t)N * D) < 1e-5);
  /* padded positions do not influence valid ones */
  float *x2 = fvec((size_t)N * D), *y2 = fvec((size_t)N * D);
  memcpy(x2, x, sizeof(float) * (size_t)N * D);
  for (int i = 0; i < D; i++) x2[(size_t)(1 * T + 4) * D + i] += 5.0f;
  EXPECT_OK(lp_enc_block_forward(&blk, m.P, a, y2, x2, mask, B, T, NULL));
  EXPECT(max_abs_diff(y, y2, (size_t)(T + 3) * D) < 1e-6);
  /* in place (y == x) */
  EXPECT_OK(lp_enc_block_forward(&blk, m.P, a, x2, x2, mask, B, T, NULL));
  EXPECT(max_abs_diff(x2, y2, (size_t)N * D) == 0.0);
  /* capacity */
  EXPECT(lp_enc_block_forward(&blk, m.P, a, y, x, NULL, 4, 1, NULL) == LP_EINVAL);
  EXPECT(lp_enc_block_forward(&blk, m.P, a, y, x, NULL, 1, 7, NULL) == LP_EINVAL);
  lp_enc_block_acts_free(a);
  free(x), free(y), free(x2), free(y2), free(ln1), free(q), free(k), free(v), free(ctx),
      free(att), free(ao), free(r1), free(ln2), free(h), free(f), free(ref);
  model_free(&m);
}

static void fwd_encoder_block(void) { fwd_encoder_block_common(); }
static void fwd_encoder_block_eval(void) {
  /* with an rng the block drops; without, it is deterministic */
  lp_block_cfg cfg;
  lp_block_cfg_default(&cfg, 8, 2, 16);
  test_model m = {lp_layout_new(), NULL, NULL, 0};
  lp_enc_block blk;
  EXPECT_OK(lp_enc_block_init(&blk, &cfg, m.L, NULL));
  EXPECT(lp_layout_find(m.L, "ln1.scale") != NULL);
  EXPECT(lp_layout_find(m.L, "attn.bq") == NULL); /* reference: no attention bias */
  model_alloc(&m, 9, 0.0f);
  lp_enc_block_acts *a = lp_enc_block_acts_new(&blk, 2, 4);
  float x[64], y1[64], y2[64], y3[64];
  lp_rng r;
  lp_rng_seed(&r, 1);
  fill(x, 64, &r, 1.0f);
  EXPECT_OK(lp_enc_block_forward(&blk, m.P, a, y1, x, NULL, 2, 4, NULL));
  EXPECT_OK(lp_enc_block_forward(&blk, m.P, a, y2, x, NULL, 2, 4, NULL));
  EXPECT(max_abs_diff(y1, y2, 64) == 0.0);
  EXPECT_OK(lp_enc_block_forward(&blk, m.P, a, y3, x, NULL, 2, 4, &r));
  EXPECT(max_abs_diff(y1, y3, 64) > 1e-3);
  lp_enc_block_acts_free(a);
  model_free(&m);
}

static void fwd_decoder_block_common(void) {
  lp_block_cfg cfg;
  lp_block_cfg_default(&cfg, 8, 2, 16);
  cfg.d_qkv = 12; /* H*dh != D is allowed */
  cfg.n_heads = 3;
  test_model m = {lp_layout_new(), NULL, NULL, 0};
  lp_dec_block blk;
  EXPECT_OK(lp_dec_block_init(&blk, &cfg, m.L, "d"));
  model_alloc(&m, 21, 0.1f);
  int B = 2, T = 5, S = 4, D = 8;
  lp_rng r;
  lp_rng_seed(&r, 22);
  float *x = fvec((size_t)B * T * D), *mem = fvec((size_t)B * S * D);
  float *y = fvec((size_t)B * T * D), *y2 = fvec((size_t)B * T * D);
  fill(x, (size_t)B * T * D, &r, 1.0f);
  fill(mem, (size_t)B * S * D, &r, 1.0f);
  uint8_t mm[8] = {1, 1, 1, 1, 1, 1, 0, 0};
  lp_dec_block_acts *a = lp_dec_block_acts_new(&blk, B, T, S);
  EXPECT(a != NULL);
  EXPECT_OK(lp_dec_block_forward(&blk, m.P, a, y, x, NULL, mem, mm, B, T, S, NULL));
  /* causality: changing position 3 leaves positions 0..2 unchanged */
  for (int i = 0; i < D; i++) x[3 * D + i] += 3.0f;
  EXPECT_OK(lp_dec_block_forward(&blk, m.P, a, y2, x, NULL, mem, mm, B, T, S, NULL));
  EXPECT(max_abs_diff(y, y2, (size_t)3 * D) < 1e-6);
  EXPECT(max_abs_diff(y + 3 * D, y2 + 3 * D, (size_t)D) > 1e-3);
  /* masked memory positions do not matter */
  for (int i = 0; i < D; i++) mem[(size_t)(S + 3) * D + i] -= 4.0f;
  EXPECT_OK(lp_dec_block_forward(&blk, m.P, a, y, x, NULL, mem, mm, B, T, S, NULL));
  EXPECT(max_abs_diff(y, y2, (size_t)B * T * D) < 1e-6);
  /* backward before any forward is an error */
  lp_dec_block_acts *a2 = lp_dec_block_acts_new(&blk, B, T, S);
  EXPECT(lp_dec_block_backward(&blk, m.P, m.G, a2, NULL, NULL, y) == LP_EINVAL);
  lp_dec_block_acts_free(a2);
  lp_dec_block_acts_free(a);
  free(x), free(mem), free(y), free(y2);
  model_free(&m);
}

static void fwd_decoder_block(void) { fwd_decoder_block_common(); }
static void fwd_decoder_block_eval(void) { fwd_decoder_block_common(); }

/* Naive double LSTM step: z[4H] -> h, c (gates i, f, g, o). */
static void ref_lstm_cell(double *h, double *c, const double *z, const double *c0, int H) {
  for (int j = 0; j < H; j++) {
    double i = 1.0 / (1.0 + exp(-z[j])), f = 1.0 / (1.0 + exp(-z[H + j]));
    double g = tanh(z[2 * H + j]), o = 1.0 / (1.0 + exp(-z[3 * H + j]));
    c[j] = f * (c0 ? c0[j] : 0.0) + i * g;
    h[j] = o * tanh(c[j]);
  }
}

static void fwd_lstm_cell_common(int with_c0) {
  const int N = 3, H = 5;
  lp_rng r;
  lp_rng_seed(&r, 31);
  float *z = fvec((size_t)N * 4 * H), *c0 = fvec((size_t)N * H), *h = fvec((size_t)N * H);
  float *c = fvec((size_t)N * H), *g = fvec((size_t)N * 4 * H);
  fill(z, (size_t)N * 4 * H, &r, 2.0f);
  fill(c0, (size_t)N * H, &r, 1.0f);
  EXPECT_OK(lp_lstm_cell_forward(h, c, g, z, with_c0 ? c0 : NULL, N, H));
  double worst = 0.0, zd[64], cd[16], hr[16], cr[16];
  for (int n = 0; n < N; n++) {
    for (int k = 0; k < 4 * H; k++) zd[k] = z[n * 4 * H + k];
    for (int k = 0; k < H; k++) cd[k] = c0[n * H + k];
    ref_lstm_cell(hr, cr, zd, with_c0 ? cd : NULL, H);
    for (int k = 0; k < H; k++) {
      worst = fmax(worst, fabs(h[n * H + k] - hr[k]));
      worst = fmax(worst, fabs(c[n * H + k] - cr[k]));
    }
    EXPECT_NEAR(g[n * 4 * H + 2 * H], tanh(zd[2 * H]), 1e-6); /* saved g gate */
  }
  EXPECT(worst < 1e-6);
  /* gates may be z itself */
  float *h2 = fvec((size_t)N * H), *c2 = fvec((size_t)N * H);
  EXPECT_OK(lp_lstm_cell_forward(h2, c2, z, z, with_c0 ? c0 : NULL, N, H));
  EXPECT(max_abs_diff(h, h2, (size_t)N * H) == 0.0 && max_abs_diff(c, c2, (size_t)N * H) == 0.0);
  EXPECT(lp_lstm_cell_forward(h, c, g, z, c0, 0, H) == LP_EINVAL);
  free(z), free(c0), free(h), free(c), free(g), free(h2), free(c2);
}
static void fwd_lstm_cell(void) { fwd_lstm_cell_common(1); }
static void fwd_lstm_cell_zero(void) { fwd_lstm_cell_common(0); }

static void fwd_lstm_common(int with_state) {
  const int N = 3, T = 6, C = 4, H = 5, G = 4 * H;
  lp_rng r;
  lp_rng_seed(&r, 32);
  float *x = fvec((size_t)N * T * C), *Wx = fvec((size_t)C * G), *Wh = fvec((size_t)H * G);
  float *b = fvec((size_t)G), *h0 = fvec((size_t)N * H), *c0 = fvec((size_t)N * H);
  float *h = fvec((size_t)N * T * H), *c = fvec((size_t)N * T * H), *g = fvec((size_t)N * T * G);
  fill(x, (size_t)N * T * C, &r, 1.0f);
  fill(Wx, (size_t)C * G, &r, 0.5f);
  fill(Wh, (size_t)H * G, &r, 0.5f);
  fill(b, (size_t)G, &r, 0.5f);
  fill(h0, (size_t)N * H, &r, 1.0f);
  fill(c0, (size_t)N * H, &r, 1.0f);
  EXPECT_OK(lp_lstm_forward(h, c, g, x, with_state ? h0 : NULL, with_state ? c0 : NULL, Wx, Wh,
                            b, N, T, C, H));
  double worst = 0.0;
  for (int n = 0; n < N; n++) {
    double hp[8], cp[8], z[32], hn[8], cn[8];
    for (int j = 0; j < H; j++) {
      hp[j] = with_state ? h0[n * H + j] : 0.0;
      cp[j] = with_state ? c0[n * H + j] : 0.0;
    }
    for (int t = 0; t < T; t++) {
      for (int k = 0; k < G; k++) {
        double s = b[k];
        for (int i = 0; i < C; i++) s += (double)x[((size_t)n * T + t) * C + i] * Wx[i * G + k];
        for (int j = 0; j < H; j++) s += hp[j] * Wh[j * G + k];
        z[k] = s;
      }
      ref_lstm_cell(hn, cn, z, cp, H);
      for (int j = 0; j < H; j++) {
        worst = fmax(worst, fabs(h[((size_t)n * T + t) * H + j] - hn[j]));
        worst = fmax(worst, fabs(c[((size_t)n * T + t) * H + j] - cn[j]));
        hp[j] = hn[j], cp[j] = cn[j];
      }
    }
  }
  EXPECT(worst < 1e-5);
  /* a later step does not change an earlier one (padding at the end is harmless) */
  float *h2 = fvec((size_t)N * T * H), *c2 = fvec((size_t)N * T * H);
  for (int i = 0; i < C; i++) x[(size_t)(T - 1) * C + i] += 3.0f;
  EXPECT_OK(lp_lstm_forward(h2, c2, g, x, with_state ? h0 : NULL, with_state ? c0 : NULL, Wx, Wh,
                            b, N, T, C, H));
  EXPECT(max_abs_diff(h, h2, (size_t)(T - 1) * H) == 0.0);
  EXPECT(max_abs_diff(h + (size_t)(T - 1) * H, h2 + (size_t)(T - 1) * H, (size_t)H) > 1e-4);
  EXPECT(lp_lstm_forward(h, c, g, x, NULL, NULL, Wx, Wh, b, N, T, 0, H) == LP_EINVAL);
  free(x), free(Wx), free(Wh), free(b), free(h0), free(c0), free(h), free(c), free(g);
  free(h2), free(c2);
}
static void fwd_lstm(void) { fwd_lstm_common(1); }
static void fwd_lstm_zero(void) { fwd_lstm_common(0); }

typedef struct fwd_entry {
  const char *op;
  void (*fn)(void);
} fwd_entry;

static const fwd_entry k_fwd[] = {
    {"embedding", fwd_embedding},
    {"posenc", fwd_posenc},
    {"linear", fwd_linear},
    {"layernorm", fwd_layernorm},
    {"gelu", fwd_gelu},
    {"softmax", fwd_softmax},
    {"log_softmax", fwd_log_softmax},
    {"residual", fwd_residual},
    {"concat", fwd_concat},
    {"dropout", fwd_dropout},
    {"attention_self", fwd_attention_self},
    {"attention_causal", fwd_attention_causal},
    {"attention_cross", fwd_attention_cross},
    {"attention_prefix", fwd_attention_prefix},
    {"attention_dropout", fwd_attention_dropout},
    {"cross_entropy", fwd_cross_entropy},
    {"conv1d_s2", fwd_conv1d_s2},
    {"conv1d_s2_odd", fwd_conv1d_s2_odd},
    {"maxpool_examples", fwd_maxpool_examples},
    {"lstm_cell", fwd_lstm_cell},
    {"lstm_cell_zero", fwd_lstm_cell_zero},
    {"lstm", fwd_lstm},
    {"lstm_zero", fwd_lstm_zero},
    {"encoder_block", fwd_encoder_block},
    {"encoder_block_eval", fwd_encoder_block_eval},
    {"decoder_block", fwd_decoder_block},
    {"decoder_block_eval", fwd_decoder_block_eval},
};

static const fwd_entry *find_fwd(const char *op) {
  for (size_t i = 0; i < sizeof k_fwd / sizeof k_fwd[0]; i++)
    if (strcmp(k_fwd[i].op, op) == 0) return &k_fwd[i];
  return NULL;
}

static void print_gc(const char *name, const lp_gc_result *r) {
  printf("gradcheck %-20s max_rel %.3e  max_abs %.3e  checked %zu  bad %zu  %s\n", name,
         r->max_rel, r->max_abs, r->n_checked, r->n_bad, r->ok ? "ok" : "FAIL");
  if (!r->ok)
    printf("  worst element %zu: analytic %.6g numeric %.6g\n", r->worst, r->worst_analytic,
           r->worst_numeric);
}

/* Forward reference check + gradient check of one op; a few seeds. */
static int run_op(const char *name) {
  const lp_op_desc *op = lp_op_find(name);
  if (!op) {
    fprintf(stderr, "unknown op %s\n", name);
    return 1;
  }
  const fwd_entry *f = find_fwd(name);
  EXPECT(f != NULL); /* every op needs a forward reference check */
  if (f) f->fn();
  lp_gc_result all;
  lp_gc_result_init(&all);
  for (uint64_t seed = 1; seed <= 3; seed++) {
    lp_gc_opts o;
    lp_gc_opts_default(&o);
    o.seed = seed;
    lp_gc_result r;
    int rc = op->gradcheck(&o, &r);
    EXPECT(rc == LP_OK);
    if (rc == LP_OK) lp_gc_result_merge(&all, &r);
  }
  print_gc(name, &all);
  EXPECT(all.ok && all.n_checked > 0);
  return 0;
}

/* ======================================================================== */
/* The checker must catch wrong backwards.                                  */

typedef struct bug_ctx {
  float *x, *W, *y, *w;
  int N, C, OC;
} bug_ctx;

static double bug_loss(void *p) {
  bug_ctx *c = p;
  lp_linear_forward(c->y, c->x, c->W, NULL, c->N, c->C, c->OC);
  double s = 0.0;
  for (int i = 0; i < c->N * c->OC; i++) s += (double)c->w[i] * c->y[i];
  return s;
}

typedef struct sm_ctx {
  float *x, *y, *w;
} sm_ctx;

static double sm_loss(void *p) {
  sm_ctx *c = p;
  lp_softmax_forward(c->y, c->x, 3, 4);
  double s = 0.0;
  for (int i = 0; i < 12; i++) s += (double)c->w[i] * c->y[i];
  return s;
}

static void test_detects_bugs(void) {
  bug_ctx c = {NULL, NULL, NULL, NULL, 5, 4, 3};
  lp_rng r;
  lp_rng_seed(&r, 8);
  c.x = fvec(20), c.W = fvec(12), c.y = fvec(15), c.w = fvec(15);
  fill(c.x, 20, &r, 1.0f);
  fill(c.W, 12, &r, 1.0f);
  fill(c.w, 15, &r, 1.0f);
  float dW[12] = {0}, dx[20] = {0};
  EXPECT_OK(lp_linear_backward(dx, dW, NULL, c.w, c.x, c.W, 5, 4, 3));
  lp_gc_result res;
  EXPECT_OK(lp_gradcheck(bug_loss, &c, c.W, dW, 12, NULL, &res));
  EXPECT(res.ok);
  EXPECT_OK(lp_gradcheck(bug_loss, &c, c.x, dx, 20, NULL, &res));
  EXPECT(res.ok);
  /* a 3% error in one element */
  dW[5] *= 1.03f;
  EXPECT_OK(lp_gradcheck(bug_loss, &c, c.W, dW, 12, NULL, &res));
  EXPECT(!res.ok && res.worst == 5);
  /* a transposition bug: dW computed as if W were [OC,C] */
  float bad[12] = {0};
  for (int cc = 0; cc < 4; cc++)
    for (int o = 0; o < 3; o++) {
      double s = 0.0;
      for (int n = 0; n < 5; n++) s += (double)c.x[n * 4 + cc] * c.w[n * 3 + o];
      bad[o * 4 + cc] = (float)s;
    }
  EXPECT_OK(lp_gradcheck(bug_loss, &c, c.W, bad, 12, NULL, &res));
  EXPECT(!res.ok);
  /* a gradient that is zero where it should not be */
  float zeros[20] = {0};
  EXPECT_OK(lp_gradcheck(bug_loss, &c, c.x, zeros, 20, NULL, &res));
  EXPECT(!res.ok);
  /* softmax backward missing the "- sum(dy*y)" term */
  sm_ctx sc;
  sc.x = fvec(12), sc.y = fvec(12), sc.w = fvec(12);
  fill(sc.x, 12, &r, 1.0f);
  fill(sc.w, 12, &r, 1.0f);
  lp_softmax_forward(sc.y, sc.x, 3, 4);
  float good[12] = {0}, wrong[12];
  EXPECT_OK(lp_softmax_backward(good, sc.w, sc.y, 3, 4));
  for (int i = 0; i < 12; i++) wrong[i] = sc.y[i] * sc.w[i];
  EXPECT_OK(lp_gradcheck(sm_loss, &sc, sc.x, good, 12, NULL, &res));
  EXPECT(res.ok);
  EXPECT_OK(lp_gradcheck(sm_loss, &sc, sc.x, wrong, 12, NULL, &res));
  EXPECT(!res.ok);
  free(sc.x), free(sc.y), free(sc.w);
  free(c.x), free(c.W), free(c.y), free(c.w);
}

/* ======================================================================== */
/* Rounding: a float32 loss cannot resolve a gradient below ulp(f) / 2h. The  */
/* checker must pass such gradients (they are what float32 gives, not a bug) */
/* and still catch a wrong gradient that float32 can resolve.               */

typedef struct round_ctx {
  const float *x, *w;
  int n;
  double offset; /* a large loss value: ulp(1000) = 6.1e-5 */
  double lin;    /* loss = offset + sum(lin * w_i * x_i + quad * x_i^2) */
  double quad;
} round_ctx;

/* The loss, summed in double and rounded once to float32 (at most half an
 * ulp of error: what a float32 forward would at best return). */
static double round_loss(void *p) {
  const round_ctx *c = p;
  double s = c->offset;
  for (int i = 0; i < c->n; i++) s += c->lin * c->w[i] * c->x[i] + c->quad * c->x[i] * c->x[i];
  return (double)(float)s;
}

static void test_rounding(void) {
  enum { N = 16 };
  float x[N], w[N], g[N];
  lp_rng r;
  lp_rng_seed(&r, 5);
  fill(x, N, &r, 1.0f);
  fill(w, N, &r, 1.0f);
  for (int i = 0; i < N; i++) x[i] += x[i] < 0 ? -1.0f : 1.0f; /* |x| >= 1 */
  lp_gc_result res;
  /* 1. gradients of about 1e-4 under a loss of 1000: below what float32
   *    resolves (2 ulp(1000) / 2h ~ 2e-3), so the numeric gradient is mostly
   *    rounding. Exact analytic gradient: must pass. */
  round_ctx c = {x, w, N, 1000.0, 1e-4, 0.0};
  for (int i = 0; i < N; i++) g[i] = (float)(c.lin * w[i]);
  EXPECT_OK(lp_gradcheck(round_loss, &c, x, g, N, NULL, &res));
  printf("rounding: tiny gradients max_rel %.3e max_abs %.3e noise %.3e unresolved %zu/%zu %s\n",
         res.max_rel, res.max_abs, res.max_noise, res.n_unresolved, res.n_checked,
         res.ok ? "ok" : "FAIL");
  EXPECT(res.ok);
  EXPECT(res.n_unresolved == N && res.max_noise > 0.0);
  /* ... which a purely relative comparison (no rounding allowance) fails:
   *    the case this allowance exists for */
  lp_gc_opts o;
  lp_gc_opts_default(&o);
  o.noise_ulps = 0.0;
  EXPECT_OK(lp_gradcheck(round_loss, &c, x, g, N, &o, &res));
  EXPECT(!res.ok);
  /* ... and the allowance is no wider than the rounding: with the loss
   *    rounded to float32 the numeric error stays within it */
  EXPECT_OK(lp_gradcheck(round_loss, &c, x, g, N, NULL, &res));
  EXPECT(res.max_abs <= res.max_noise);
  /* 2. resolvable gradients (2 x_i, |x_i| >= 1) under the same offset: the
   *    right ones pass, every wrong one is caught */
  round_ctx q = {x, w, N, 1000.0, 0.0, 1.0};
  for (int i = 0; i < N; i++) g[i] = 2.0f * x[i];
  EXPECT_OK(lp_gradcheck(round_loss, &q, x, g, N, NULL, &res));
  EXPECT(res.ok && res.n_unresolved == 0);
  g[7] *= 1.1f; /* a 10% error in one element */
  EXPECT_OK(lp_gradcheck(round_loss, &q, x, g, N, NULL, &res));
  EXPECT(!res.ok && res.n_bad == 1 && res.worst == 7);
  g[7] = 2.0f * x[7];
  for (int i = 0; i < N; i++) g[i] = x[i]; /* a factor of 2 lost everywhere */
  EXPECT_OK(lp_gradcheck(round_loss, &q, x, g, N, NULL, &res));
  EXPECT(!res.ok && res.n_bad == N);
  /* 3. the same wrong gradient of a loss near 1 (small allowance) is caught
   *    at 3% already */
  round_ctx q1 = {x, w, N, 1.0, 0.0, 1.0};
  for (int i = 0; i < N; i++) g[i] = 2.0f * x[i];
  g[3] *= 1.03f;
  EXPECT_OK(lp_gradcheck(round_loss, &q1, x, g, N, NULL, &res));
  EXPECT(!res.ok && res.worst == 3);
}

/* ======================================================================== */
/* A whole small encoder-decoder stack, end to end through cross-entropy.   */

typedef struct stack {
  lp_layout *L;
  float *P, *G;
  size_t np;
  size_t emb_src, emb_tgt, enc_g, enc_b, dec_g, dec_b, out_w, out_b;
  lp_enc_block enc[2];
  lp_dec_block dec[2];
  lp_enc_block_acts *ea[2];
  lp_dec_block_acts *da[2];
  int B, S, T, Vs, Vt, D;
  const int32_t *src, *tgt_in, *tgt_out;
  uint8_t smask[10], tmask[12];
  float *e[3], *mem, *mean_e, *rstd_e;
  float *d[3], *dln, *mean_d, *rstd_d, *logits, *probs;
  float *ge[3], *gmem, *gd[3], *gdln, *glogits;
  double loss;
  int train;
  uint64_t seed;
  int err;
} stack;

static void stack_init(stack *st, int train) {
  static const int32_t src[10] = {3, 5, 2, 7, 4, /**/ 6, 2, 8, 0, 0};
  static const int32_t tin[12] = {1, 4, 9, 3, 7, 2, /**/ 1, 5, 5, 10, 0, 0};
  static const int32_t tout[12] = {4, 9, 3, 7, 2, 2, /**/ 5, 5, 10, 2, 0, 0};
  memset(st, 0, sizeof *st);
  st->B = 2, st->S = 5, st->T = 6, st->Vs = 9, st->Vt = 11, st->D = 16;
  st->src = src, st->tgt_in = tin, st->tgt_out = tout;
  st->train = train;
  st->seed = 4242;
  for (int i = 0; i < 10; i++) st->smask[i] = src[i] != 0;
  for (int i = 0; i < 12; i++) st->tmask[i] = tin[i] != 0;
  lp_block_cfg cfg;
  lp_block_cfg_default(&cfg, 16, 2, 32);
  cfg.dropout = train ? 0.1f : 0.0f;
  cfg.attn_dropout = train ? 0.1f : 0.0f;
  st->L = lp_layout_new();
  int sh[2];
  sh[0] = st->Vs, sh[1] = st->D;
  EXPECT_OK(lp_layout_add(st->L, "emb_src", 2, sh, LP_INIT_NORMAL, 1.0f, &st->emb_src));
  EXPECT_OK(lp_enc_block_init(&st->enc[0], &cfg, st->L, "enc0"));
  EXPECT_OK(lp_enc_block_init(&st->enc[1], &cfg, st->L, "enc1"));
  sh[0] = st->D;
  EXPECT_OK(lp_layout_add(st->L, "enc_norm.scale", 1, sh, LP_INIT_ONES, 0.0f, &st->enc_g));
  EXPECT_OK(lp_layout_add(st->L, "enc_norm.bias", 1, sh, LP_INIT_ZEROS, 0.0f, &st->enc_b));
  sh[0] = st->Vt, sh[1] = st->D;
  EXPECT_OK(lp_layout_add(st->L, "emb_tgt", 2, sh, LP_INIT_NORMAL, 1.0f, &st->emb_tgt));
  EXPECT_OK(lp_dec_block_init(&st->dec[0], &cfg, st->L, "dec0"));
  EXPECT_OK(lp_dec_block_init(&st->dec[1], &cfg, st->L, "dec1"));
  sh[0] = st->D;
  EXPECT_OK(lp_layout_add(st->L, "dec_norm.scale", 1, sh, LP_INIT_ONES, 0.0f, &st->dec_g));
  EXPECT_OK(lp_layout_add(st->L, "dec_norm.bias", 1, sh, LP_INIT_ZEROS, 0.0f, &st->dec_b));
  sh[0] = st->D, sh[1] = st->Vt;
  EXPECT_OK(lp_layout_add(st->L, "out.w", 2, sh, LP_INIT_XAVIER_UNIFORM, 1.0f, &st->out_w));
  sh[0] = st->Vt;
  EXPECT_OK(lp_layout_add(st->L, "out.b", 1, sh, LP_INIT_ZEROS, 0.0f, &st->out_b));
  st->np = lp_layout_numel(st->L);
  st->P = fvec(st->np);
  st->G = fvec(st->np);
  EXPECT_OK(lp_layout_init_params(st->L, st->P, 77));
  lp_rng r;
  lp_rng_seed(&r, 78);
  for (size_t i = 0; i < st->np; i++) st->P[i] += 0.05f * lp_rng_normal(&r);
  for (int l = 0; l < 2; l++) {
    st->ea[l] = lp_enc_block_acts_new(&st->enc[l], st->B, st->S);
    st->da[l] = lp_dec_block_acts_new(&st->dec[l], st->B, st->T, st->S);
    EXPECT(st->ea[l] && st->da[l]);
  }
  size_t ns = (size_t)st->B * st->S, nt = (size_t)st->B * st->T, D = (size_t)st->D;
  for (int i = 0; i < 3; i++) {
    st->e[i] = fvec(ns * D), st->ge[i] = fvec(ns * D);
    st->d[i] = fvec(nt * D), st->gd[i] = fvec(nt * D);
  }
  st->mem = fvec(ns * D), st->gmem = fvec(ns * D);
  st->mean_e = fvec(ns), st->rstd_e = fvec(ns);
  st->dln = fvec(nt * D), st->gdln = fvec(nt * D);
  st->mean_d = fvec(nt), st->rstd_d = fvec(nt);
  st->logits = fvec(nt * (size_t)st->Vt), st->probs = fvec(nt * (size_t)st->Vt);
  st->glogits = fvec(nt * (size_t)st->Vt);
}

static void stack_free(stack *st) {
  lp_layout_free(st->L);
  free(st->P), free(st->G);
  for (int l = 0; l < 2; l++) lp_enc_block_acts_free(st->ea[l]), lp_dec_block_acts_free(st->da[l]);
  for (int i = 0; i < 3; i++) free(st->e[i]), free(st->ge[i]), free(st->d[i]), free(st->gd[i]);
  free(st->mem), free(st->gmem), free(st->mean_e), free(st->rstd_e), free(st->dln),
      free(st->gdln), free(st->mean_d), free(st->rstd_d), free(st->logits), free(st->probs),
      free(st->glogits);
}

#define ST(expr)                              \
  do {                                        \
    int rc_ = (expr);                         \
    if (rc_ != LP_OK && st->err == LP_OK) {   \
      st->err = rc_;                          \
      fprintf(stderr, "%s failed: %d\n", #expr, rc_); \
    }                                         \
  } while (0)

static double stack_forward(void *ctx) {
  stack *st = ctx;
  const float *P = st->P;
  int B = st->B, S = st->S, T = st->T, D = st->D;
  lp_rng r;
  lp_rng_seed(&r, st->seed);
  lp_rng *rng = st->train ? &r : NULL;
  ST(lp_embedding_forward(st->e[0], st->src, P + st->emb_src, B * S, st->Vs, D, 0));
  ST(lp_posenc_forward(st->e[0], st->e[0], B, S, D, 0));
  for (int l = 0; l < 2; l++)
    ST(lp_enc_block_forward(&st->enc[l], P, st->ea[l], st->e[l + 1], st->e[l], st->smask, B, S,
                            rng));
  ST(lp_layernorm_forward(st->mem, st->mean_e, st->rstd_e, st->e[2], P + st->enc_g,
                          P + st->enc_b, B * S, D, 1e-6f));
  ST(lp_embedding_forward(st->d[0], st->tgt_in, P + st->emb_tgt, B * T, st->Vt, D, 0));
  ST(lp_posenc_forward(st->d[0], st->d[0], B, T, D, 0));
  for (int l = 0; l < 2; l++)
    ST(lp_dec_block_forward(&st->dec[l], P, st->da[l], st->d[l + 1], st->d[l], st->tmask,
                            st->mem, st->smask, B, T, S, rng));
  ST(lp_layernorm_forward(st->dln, st->mean_d, st->rstd_d, st->d[2], P + st->dec_g,
                          P + st->dec_b, B * T, D, 1e-6f));
  ST(lp_linear_forward(st->logits, st->dln, P + st->out_w, P + st->out_b, B * T, D, st->Vt));
  ST(lp_cross_entropy_forward(&st->loss, st->probs, NULL, NULL, st->logits, st->tgt_out, B * T,
                              st->Vt, 0));
  return st->loss;
}

static void stack_backward(stack *st) {
  const float *P = st->P;
  float *G = st->G;
  int B = st->B, S = st->S, T = st->T, D = st->D;
  size_t ns = (size_t)B * S * D, nt = (size_t)B * T * D;
  for (int i = 0; i < 3; i++) {
    memset(st->ge[i], 0, sizeof(float) * ns);
    memset(st->gd[i], 0, sizeof(float) * nt);
  }
  memset(st->gmem, 0, sizeof(float) * ns);
  memset(st->gdln, 0, sizeof(float) * nt);
  memset(st->glogits, 0, sizeof(float) * (size_t)B * T * st->Vt);
  ST(lp_cross_entropy_backward(st->glogits, st->probs, st->tgt_out, B * T, st->Vt, 0, 1.0f));
  ST(lp_linear_backward(st->gdln, G + st->out_w, G + st->out_b, st->glogits, st->dln,
                        P + st->out_w, B * T, D, st->Vt));
  ST(lp_layernorm_backward(st->gd[2], G + st->dec_g, G + st->dec_b, st->gdln, st->d[2],
                           st->mean_d, st->rstd_d, P + st->dec_g, B * T, D));
  for (int l = 1; l >= 0; l--)
    ST(lp_dec_block_backward(&st->dec[l], P, G, st->da[l], st->gd[l], st->gmem, st->gd[l + 1]));
  /* posenc adds a constant: its backward is the identity, so gd[0] is the
   * gradient of the embedding output */
  ST(lp_embedding_backward(G + st->emb_tgt, st->gd[0], st->tgt_in, B * T, st->Vt, D, 0));
  ST(lp_layernorm_backward(st->ge[2], G + st->enc_g, G + st->enc_b, st->gmem, st->e[2],
                           st->mean_e, st->rstd_e, P + st->enc_g, B * S, D));
  for (int l = 1; l >= 0; l--)
    ST(lp_enc_block_backward(&st->enc[l], P, G, st->ea[l], st->ge[l], st->ge[l + 1]));
  ST(lp_embedding_backward(G + st->emb_src, st->ge[0], st->src, B * S, st->Vs, D, 0));
}

static void run_stack(int train) {
  struct timespec t0, t1;
  timespec_get(&t0, TIME_UTC);
  stack st;
  stack_init(&st, train);
  double loss = stack_forward(&st);
  EXPECT(isfinite(loss) && loss > 0.5 && loss < 10.0);
  memset(st.G, 0, sizeof(float) * st.np);
  stack_backward(&st);
  EXPECT(st.err == LP_OK);
  /* The float32 forward of this 8-sub-layer stack has a loss noise of about
   * one ulp (2.4e-7 at loss 3), i.e. ~2.4e-6 / 2h in a numeric derivative;
   * many tensors here have gradients of only 1e-4..1e-3. So: a larger step
   * (Richardson keeps the truncation error O(h^4)) and 2% (a wrong backward
   * is off by far more: see detects_bugs). Each tensor is checked alone, so
   * the relative-error floor is 1% of that tensor's largest gradient. */
  lp_gc_opts o;
  lp_gc_opts_default(&o);
  o.eps = 5e-2f;
  o.order = 4;
  o.tol = 2e-2;
  lp_gc_result all;
  lp_gc_result_init(&all);
  for (size_t i = 0; i < lp_layout_count(st.L); i++) {
    const lp_param_info *p = lp_layout_param(st.L, i);
    lp_gc_result r;
    EXPECT_OK(lp_gradcheck(stack_forward, &st, st.P + p->offset, st.G + p->offset, p->numel,
                           &o, &r));
    if (!r.ok) {
      printf("  tensor %s: ", p->name);
      print_gc(p->name, &r);
    }
    lp_gc_result_merge(&all, &r);
  }
  EXPECT(st.err == LP_OK);
  timespec_get(&t1, TIME_UTC);
  printf("stack (2 enc + 2 dec, d=16, 2 heads, %zu params, loss %.4f, %s): ", st.np, loss,
         train ? "dropout 0.1" : "eval");
  print_gc(train ? "stack" : "stack_eval", &all);
  printf("  %.2f s\n", (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
  EXPECT(all.ok && all.n_checked == st.np);
  stack_free(&st);
}

static void test_stack(void) { run_stack(1); }
static void test_stack_eval(void) { run_stack(0); }

/* Backward accumulates: two backward passes give twice the gradient. */
static void test_accumulate(void) {
  stack st;
  stack_init(&st, 1);
  stack_forward(&st);
  memset(st.G, 0, sizeof(float) * st.np);
  stack_backward(&st);
  float *g1 = fvec(st.np);
  memcpy(g1, st.G, sizeof(float) * st.np);
  stack_backward(&st);
  double worst = 0.0, gmax = 0.0;
  for (size_t i = 0; i < st.np; i++) {
    worst = fmax(worst, fabs((double)st.G[i] - 2.0 * g1[i]));
    gmax = fmax(gmax, fabs((double)g1[i]));
  }
  EXPECT(gmax > 0.0 && worst <= 1e-6 * gmax);
  EXPECT(st.err == LP_OK);
  free(g1);
  stack_free(&st);
}

/* ======================================================================== */
/* Optimiser                                                                */

static void test_adam(void) {
  lp_adam_cfg c;
  lp_adam_cfg_default(&c);
  EXPECT(c.beta1 == 0.9f && c.beta2 == 0.98f && c.eps == 1e-9f && c.weight_decay == 0.1f);
  lp_adam *o = lp_adam_new(2, NULL);
  EXPECT(o != NULL);
  if (!o) return;
  EXPECT(lp_adam_size(o) == 2 && lp_adam_t(o) == 0);
  float p[2] = {1.0f, 1.0f}, g[2] = {0.5f, 0.5f};
  uint8_t mask[2] = {1, 0};
  /* hand-computed (python, double):
   * t=1: m=0.05 v=0.005 mhat=0.5 vhat=0.25 -> p = 1 - 0.1*(1 + 0.1*1) = 0.89
   *      (no decay: 0.9)
   * t=2, g=-0.2: m=0.025 v=0.0057 -> 0.8464186040967564 (no decay 0.8653186040987564) */
  EXPECT_OK(lp_adam_step(o, p, g, 0.1f, mask));
  EXPECT_NEAR(p[0], 0.89, 1e-6);
  EXPECT_NEAR(p[1], 0.9, 1e-6);
  EXPECT_NEAR(lp_adam_m(o)[0], 0.05, 1e-7);
  EXPECT_NEAR(lp_adam_v(o)[0], 0.005, 1e-8);
  g[0] = g[1] = -0.2f;
  EXPECT_OK(lp_adam_step(o, p, g, 0.1f, mask));
  EXPECT_NEAR(p[0], 0.8464186040967564, 1e-6);
  EXPECT_NEAR(p[1], 0.8653186040987564, 1e-6);
  EXPECT_NEAR(lp_adam_m(o)[0], 0.025, 1e-7);
  EXPECT_NEAR(lp_adam_v(o)[0], 0.0057, 1e-8);
  EXPECT(lp_adam_t(o) == 2);
  /* NULL mask: everything decays; zero gradient -> pure decay p *= 1 - lr*wd */
  lp_adam *o2 = lp_adam_new(1, NULL);
  float q = 2.0f, z = 0.0f;
  EXPECT_OK(lp_adam_step(o2, &q, &z, 0.5f, NULL));
  EXPECT_NEAR(q, 2.0 * (1.0 - 0.5 * 0.1), 1e-6);
  /* restore of the step count */
  lp_adam_set_t(o2, 100);
  EXPECT(lp_adam_t(o2) == 100);
  lp_adam_free(o2);
  lp_adam_free(o);
  /* bad configs */
  c.beta1 = 1.0f;
  EXPECT(lp_adam_new(3, &c) == NULL);
  lp_adam_cfg_default(&c);
  c.eps = -1.0f;
  EXPECT(lp_adam_new(3, &c) == NULL);
  /* optimising a quadratic converges */
  lp_adam_cfg_default(&c);
  c.weight_decay = 0.0f;
  lp_adam *o3 = lp_adam_new(3, &c);
  float x[3] = {3.0f, -2.0f, 1.0f}, gx[3];
  for (int it = 0; it < 500; it++) {
    for (int i = 0; i < 3; i++) gx[i] = 2.0f * (x[i] - (float)i);
    EXPECT_OK(lp_adam_step(o3, x, gx, 0.05f, NULL));
  }
  for (int i = 0; i < 3; i++) EXPECT_NEAR(x[i], i, 0.05);
  lp_adam_free(o3);
}

static void test_lr_schedule(void) {
  lp_lr_schedule s = {1e-3f, 16000};
  EXPECT_NEAR(lp_lr_at(&s, 0), 0.0, 0.0);
  EXPECT_NEAR(lp_lr_at(&s, 1), 1e-3 / 16000.0, 1e-12);
  EXPECT_NEAR(lp_lr_at(&s, 8000), 5e-4, 1e-9);
  EXPECT_NEAR(lp_lr_at(&s, 16000), 1e-3, 1e-9);
  EXPECT_NEAR(lp_lr_at(&s, 64000), 5e-4, 1e-9);
  EXPECT_NEAR(lp_lr_at(&s, 160000), 1e-3 * sqrt(0.1), 1e-9);
  /* increasing during warm-up, decreasing after */
  EXPECT(lp_lr_at(&s, 100) < lp_lr_at(&s, 200));
  EXPECT(lp_lr_at(&s, 20000) > lp_lr_at(&s, 30000));
  lp_lr_schedule s0 = {0.5f, 0};
  EXPECT_NEAR(lp_lr_at(&s0, 0), 0.5, 1e-7);
  EXPECT_NEAR(lp_lr_at(&s0, 4), 0.25, 1e-7);
}

static void test_clip(void) {
  float g[2] = {3.0f, 4.0f};
  double norm = 0.0;
  EXPECT_NEAR(lp_grad_norm(g, 2), 5.0, 1e-9);
  EXPECT_OK(lp_grad_clip(g, 2, 10.0f, &norm));
  EXPECT(norm == 5.0 && g[0] == 3.0f && g[1] == 4.0f);
  EXPECT_OK(lp_grad_clip(g, 2, 1.0f, &norm));
  EXPECT_NEAR(norm, 5.0, 1e-9);
  EXPECT_NEAR(g[0], 0.6, 1e-7);
  EXPECT_NEAR(g[1], 0.8, 1e-7);
  EXPECT_NEAR(lp_grad_norm(g, 2), 1.0, 1e-6);
  /* a big vector */
  size_t n = 10000;
  float *v = fvec(n);
  lp_rng r;
  lp_rng_seed(&r, 3);
  fill(v, n, &r, 1.0f);
  EXPECT_OK(lp_grad_clip(v, n, 2.5f, NULL));
  EXPECT_NEAR(lp_grad_norm(v, n), 2.5, 1e-5);
  free(v);
  EXPECT(lp_grad_clip(g, 2, 0.0f, NULL) == LP_EINVAL);
  EXPECT(lp_grad_clip(g, 2, -1.0f, NULL) == LP_EINVAL);
}

/* ======================================================================== */
/* Layout, rng, errors, threads, op table                                    */

static void test_layout(void) {
  lp_layout *L = lp_layout_new();
  EXPECT(L != NULL);
  int sa[2] = {3, 4}, sb[1] = {5}, big[3] = {200, 100, 2};
  size_t off = 99;
  EXPECT_OK(lp_layout_add(L, "a", 2, sa, LP_INIT_XAVIER_UNIFORM, 1.0f, &off));
  EXPECT(off == 0);
  EXPECT_OK(lp_layout_add(L, "b", 1, sb, LP_INIT_ONES, 0.0f, &off));
  EXPECT(off == 12);
  EXPECT_OK(lp_layout_add(L, "n", 3, big, LP_INIT_NORMAL, 0.5f, &off));
  EXPECT(off == 17);
  EXPECT(lp_layout_numel(L) == 17 + 40000 && lp_layout_count(L) == 3);
  EXPECT(lp_layout_add(L, "a", 1, sb, LP_INIT_ZEROS, 0.0f, NULL) == LP_EINVAL);
  EXPECT(lp_layout_add(L, "c", 0, sb, LP_INIT_ZEROS, 0.0f, NULL) == LP_EINVAL);
  EXPECT(lp_layout_add(L, "c", 5, sb, LP_INIT_ZEROS, 0.0f, NULL) == LP_EINVAL);
  EXPECT(lp_layout_add(L, "c", 1, sb, 17, 0.0f, NULL) == LP_EINVAL);
  EXPECT(lp_layout_add(L, "c", 1, sb, LP_INIT_XAVIER_UNIFORM, 1.0f, NULL) == LP_EINVAL);
  int zero[1] = {0};
  EXPECT(lp_layout_add(L, "c", 1, zero, LP_INIT_ZEROS, 0.0f, NULL) == LP_EINVAL);
  char longname[200];
  memset(longname, 'x', sizeof longname - 1);
  longname[sizeof longname - 1] = 0;
  EXPECT(lp_layout_add(L, longname, 1, sb, LP_INIT_ZEROS, 0.0f, NULL) == LP_EINVAL);
  EXPECT(lp_layout_count(L) == 3);
  const lp_param_info *pb = lp_layout_find(L, "b");
  EXPECT(pb && pb->offset == 12 && pb->numel == 5 && pb->ndim == 1 && pb->shape[0] == 5);
  EXPECT(lp_layout_find(L, "zz") == NULL && lp_layout_param(L, 3) == NULL);
  float *P = fvec(lp_layout_numel(L));
  EXPECT_OK(lp_layout_init_params(L, P, 7));
  double lim = sqrt(6.0 / 7.0), amax = 0.0;
  for (int i = 0; i < 12; i++) amax = fmax(amax, fabs(P[i]));
  EXPECT(amax <= lim && amax > 0.2 * lim);
  for (int i = 12; i < 17; i++) EXPECT(P[i] == 1.0f);
  double s = 0.0, s2 = 0.0;
  for (int i = 17; i < 40017; i++) s += P[i], s2 += (double)P[i] * P[i];
  EXPECT_NEAR(s / 40000, 0.0, 0.01);
  EXPECT_NEAR(sqrt(s2 / 40000), 0.5, 0.01);
  /* a tensor's init does not depend on the others */
  lp_layout *L2 = lp_layout_new();
  EXPECT_OK(lp_layout_add(L2, "zzz", 1, sb, LP_INIT_NORMAL, 1.0f, NULL));
  EXPECT_OK(lp_layout_add(L2, "a", 2, sa, LP_INIT_XAVIER_UNIFORM, 1.0f, &off));
  float P2[17];
  EXPECT_OK(lp_layout_init_params(L2, P2, 7));
  EXPECT(memcmp(P2 + off, P, 12 * sizeof(float)) == 0);
  /* decay flags */
  uint8_t *mask = xcalloc(lp_layout_numel(L), 1);
  EXPECT(lp_layout_set_decay(L, "b", 0) == 1);
  EXPECT_OK(lp_layout_decay_mask(L, mask));
  EXPECT(mask[0] == 1 && mask[11] == 1 && mask[12] == 0 && mask[16] == 0 && mask[17] == 1);
  EXPECT(lp_layout_set_decay(L, NULL, 0) == 3);
  /* block parameter names and sizes */
  lp_layout *L3 = lp_layout_new();
  lp_block_cfg cfg;
  lp_block_cfg_default(&cfg, 8, 2, 16);
  lp_dec_block db;
  EXPECT_OK(lp_dec_block_init(&db, &cfg, L3, "decoder.0"));
  EXPECT(lp_layout_count(L3) == 6 + 4 + 4 + 4);
  /* 3 LN (2*8 each) + 2 attention (4*64) + FFN (8*16+16+16*8+8) */
  EXPECT(lp_layout_numel(L3) == 3 * 16 + 2 * 256 + 280);
  const lp_param_info *w = lp_layout_find(L3, "decoder.0.cross_attn.wo");
  EXPECT(w && w->offset == db.cross_attn.wo && w->ndim == 2);
  EXPECT(db.self_attn.bq == LP_NO_PARAM);
  cfg.d_qkv = 9; /* not divisible by 2 heads */
  EXPECT(lp_dec_block_init(&db, &cfg, L3, "x") == LP_EINVAL);
  lp_block_cfg_default(&cfg, 8, 2, 16);
  cfg.dropout = 1.0f;
  EXPECT(lp_dec_block_init(&db, &cfg, L3, "y") == LP_EINVAL);
  free(mask);
  free(P);
  lp_layout_free(L);
  lp_layout_free(L2);
  lp_layout_free(L3);
}

static void test_rng(void) {
  lp_rng a, b;
  lp_rng_seed(&a, 123);
  lp_rng_seed(&b, 123);
  for (int i = 0; i < 100; i++) EXPECT(lp_rng_next(&a) == lp_rng_next(&b));
  lp_rng_seed(&b, 124);
  EXPECT(lp_rng_next(&a) != lp_rng_next(&b));
  double s = 0.0, s2 = 0.0, umin = 1.0, umax = 0.0;
  int n = 200000;
  for (int i = 0; i < n; i++) {
    float u = lp_rng_uniform(&a);
    umin = fmin(umin, u), umax = fmax(umax, u);
    float z = lp_rng_normal(&a);
    s += z, s2 += (double)z * z;
  }
  EXPECT(umin >= 0.0 && umax < 1.0 && umin < 1e-3 && umax > 0.999);
  EXPECT_NEAR(s / n, 0.0, 0.01);
  EXPECT_NEAR(s2 / n, 1.0, 0.02);
}

static void test_errors(void) {
  /* _free(NULL) is a no-op */
  lp_layout_free(NULL);
  lp_adam_free(NULL);
  lp_enc_block_acts_free(NULL);
  lp_dec_block_acts_free(NULL);
  float buf[16] = {0};
  uint8_t m8[16] = {0};
  int32_t id[4] = {0};
  EXPECT(lp_softmax_forward(buf, buf, 0, 4) == LP_EINVAL);
  EXPECT(lp_layernorm_forward(buf, NULL, NULL, buf, NULL, buf, 1, 4, 1e-5f) == LP_EINVAL);
  EXPECT(lp_gelu_forward(buf, NULL, 4) == LP_EINVAL);
  EXPECT(lp_attention_forward(buf, buf, NULL, buf, buf, buf, NULL, 1, 1, 1, 0, 1, 0, 0.0f,
                              NULL) == LP_EINVAL);
  lp_rng r;
  lp_rng_seed(&r, 1);
  EXPECT(lp_attention_forward(buf, buf, NULL, buf, buf, buf, NULL, 1, 2, 2, 1, 2, 0, 0.5f,
                              &r) == LP_EINVAL); /* dropout needs a mask buffer */
  EXPECT(lp_conv1d_s2_forward(buf, buf, buf, NULL, 1, 0, 2, 2) == LP_EINVAL);
  EXPECT(lp_maxpool_examples_forward(buf, id, buf, m8, 1, 0, 4) == LP_EINVAL);
  EXPECT(lp_cross_entropy_forward(NULL, buf, NULL, NULL, buf, id, 1, 4, 0) == LP_EINVAL);
  EXPECT(lp_posenc_forward(buf, buf, 1, 2, 2, -1) == LP_EINVAL);
  EXPECT(lp_op_find("no_such_op") == NULL && lp_op_find(NULL) == NULL);
  lp_enc_block blk;
  memset(&blk, 0, sizeof blk);
  EXPECT(lp_enc_block_acts_new(&blk, 1, 1) == NULL); /* bad config */
  lp_block_cfg cfg;
  lp_block_cfg_default(&cfg, 4, 1, 4);
  lp_layout *L = lp_layout_new();
  EXPECT_OK(lp_enc_block_init(&blk, &cfg, L, "b"));
  EXPECT(lp_enc_block_acts_new(&blk, 0, 1) == NULL);
  lp_enc_block_acts *a = lp_enc_block_acts_new(&blk, 1, 2);
  float *P = fvec(lp_layout_numel(L)), *G = fvec(lp_layout_numel(L));
  EXPECT(lp_enc_block_backward(&blk, P, G, a, NULL, buf) == LP_EINVAL); /* no forward yet */
  EXPECT(lp_enc_block_backward(&blk, P, G, a, buf, buf) == LP_EINVAL);  /* dx == dy */
  lp_enc_block_acts_free(a);
  free(P), free(G);
  lp_layout_free(L);
  lp_gc_result res;
  EXPECT(lp_gradcheck(NULL, NULL, buf, buf, 4, NULL, &res) == LP_EINVAL);
}

static void test_threads(void) {
  EXPECT(lp_engine_set_threads(0) == LP_EINVAL);
  EXPECT_OK(lp_engine_set_threads(2));
  int n = lp_engine_get_threads();
  EXPECT(n >= 1 && n <= 2);
  /* a product big enough to use the threads gives the same answer */
  int N = 256;
  float *a = fvec((size_t)N * N), *b = fvec((size_t)N * N), *y1 = fvec((size_t)N * N),
        *y2 = fvec((size_t)N * N);
  lp_rng r;
  lp_rng_seed(&r, 5);
  fill(a, (size_t)N * N, &r, 1.0f);
  fill(b, (size_t)N * N, &r, 1.0f);
  EXPECT_OK(lp_linear_forward(y1, a, b, NULL, N, N, N));
  EXPECT_OK(lp_engine_set_threads(1));
  EXPECT(lp_engine_get_threads() == 1);
  EXPECT_OK(lp_linear_forward(y2, a, b, NULL, N, N, N));
  EXPECT(max_abs_diff(y1, y2, (size_t)N * N) < 1e-3);
  free(a), free(b), free(y1), free(y2);
}

static void test_optable(void) {
  size_t n = 0;
  const lp_op_desc *ops = lp_ops(&n);
  EXPECT(ops != NULL && n >= 19);
#ifdef LP_ENGINE_OPS_REGISTERED
  /* tests/engine/CMakeLists.txt registered one ctest test per op */
  EXPECT(n == (size_t)LP_ENGINE_OPS_REGISTERED);
#endif
  for (size_t i = 0; i < n; i++) {
    EXPECT(ops[i].name && ops[i].forward && ops[i].backward && ops[i].shapes);
    EXPECT(ops[i].gradcheck != NULL);
    EXPECT(lp_op_find(ops[i].name) == &ops[i]);
    if (!find_fwd(ops[i].name)) {
      fprintf(stderr, "op %s has no forward reference check\n", ops[i].name);
      g_failures++;
    }
    printf("%-20s %-30s %-30s %s\n", ops[i].name, ops[i].forward, ops[i].backward,
           ops[i].shapes);
  }
}

/* ======================================================================== */

typedef struct test_case {
  const char *name;
  void (*fn)(void);
} test_case;

static const test_case k_cases[] = {
    {"optable", test_optable},       {"detects_bugs", test_detects_bugs},
    {"stack", test_stack},           {"stack_eval", test_stack_eval},
    {"accumulate", test_accumulate}, {"adam", test_adam},
    {"lr_schedule", test_lr_schedule}, {"clip", test_clip},
    {"layout", test_layout},         {"rng", test_rng},
    {"errors", test_errors},         {"threads", test_threads},
    {"rounding", test_rounding},
};

int main(int argc, char **argv) {
  lp_engine_set_threads(1);
  const size_t ncases = sizeof k_cases / sizeof k_cases[0];
  if (argc < 2) {
    fprintf(stderr, "usage: %s <case> | op <name> | all | --list\n", argv[0]);
    return 2;
  }
  if (strcmp(argv[1], "--list") == 0) {
    for (size_t i = 0; i < ncases; i++) printf("%s\n", k_cases[i].name);
    size_t n = 0;
    const lp_op_desc *ops = lp_ops(&n);
    for (size_t i = 0; i < n; i++) printf("op %s\n", ops[i].name);
    return 0;
  }
  if (strcmp(argv[1], "op") == 0) {
    if (argc < 3) return 2;
    if (run_op(argv[2])) return 1;
  } else if (strcmp(argv[1], "all") == 0) {
    size_t n = 0;
    const lp_op_desc *ops = lp_ops(&n);
    for (size_t i = 0; i < n; i++) run_op(ops[i].name);
    for (size_t i = 0; i < ncases; i++) {
      printf("== %s\n", k_cases[i].name);
      k_cases[i].fn();
    }
  } else {
    size_t i = 0;
    while (i < ncases && strcmp(k_cases[i].name, argv[1]) != 0) i++;
    if (i == ncases) {
      fprintf(stderr, "unknown case %s\n", argv[1]);
      return 2;
    }
    k_cases[i].fn();
  }
  if (g_failures) {
    printf("FAILED: %d check(s)\n", g_failures);
    return 1;
  }
  printf("PASS\n");
  return 0;
}
