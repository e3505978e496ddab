/* Private to the engine: 4-wide float vector helpers shared by the fused
 * kernels (blocks.c) and the softmax / cross-entropy ops (ops.c, seqops.c). */
#ifndef LP_ENGINE_VEC_H
#define LP_ENGINE_VEC_H

#include <stdint.h>
#include <string.h>

/* 4-wide float vectors (GCC/clang vector extensions; SSE2 on any x86-64, NEON
 * on arm64), so these loops are SIMD without -O3 or -march flags. Loads and
 * stores go through memcpy (no alignment assumed). */
typedef float v4f __attribute__((vector_size(16)));
typedef int32_t v4i __attribute__((vector_size(16)));

static inline v4f v4_load(const float *p) {
  v4f v;
  memcpy(&v, p, sizeof v);
  return v;
}
static inline void v4_store(float *p, v4f v) { memcpy(p, &v, sizeof v); }
static inline v4f v4_splat(float x) { return (v4f){x, x, x, x}; }
static inline v4f v4_select(v4i m, v4f a, v4f b) { /* m ? a : b (m lanes all 0 or all 1) */
  return (v4f)(((v4i)a & m) | ((v4i)b & ~m));
}
static inline float v4_sum(v4f v) { return (v[0] + v[2]) + (v[1] + v[3]); }

/* e^x for x <= 0 (softmax arguments; x > 0 is taken as 0), Cephes
 * polynomial, ~2 ulp; x < -87 gives 0. */
static inline v4f v4_exp_neg(v4f x) {
  const v4f lo = v4_splat(-87.0f), zero = v4_splat(0.0f);
  const v4i under = x < lo;
  x = v4_select(under, lo, x);
  x = v4_select(x > zero, zero, x); /* masked keys may score above the max */
  const v4f magic = v4_splat(12582912.0f); /* 1.5 * 2^23: round to nearest */
  v4f n = (x * 1.44269504088896341f + magic) - magic;
  v4f f = x - n * 0.693359375f + n * 2.12194440e-4f;
  v4f p = v4_splat(1.9875691500e-4f);
  p = p * f + 1.3981999507e-3f;
  p = p * f + 8.3334519073e-3f;
  p = p * f + 4.1665795894e-2f;
  p = p * f + 1.6666665459e-1f;
  p = p * f + 5.0000001201e-1f;
  v4f y = p * f * f + f + 1.0f;
  v4i e = (__builtin_convertvector(n, v4i) + 127) << 23;
  y = y * (v4f)e;
  return v4_select(under, v4_splat(0.0f), y);
}

/* max of x[0..n), n >= 1 (4 lanes at a time; NaN lanes are skipped as by
 * the scalar "x > m ? x : m") */
static inline float v4_max_row(const float *x, int n) {
  float mx = x[0];
  int i = 0;
  if (n >= 4) {
    v4f m = v4_load(x);
    for (i = 4; i + 4 <= n; i += 4) {
      v4f v = v4_load(x + i);
      m = v4_select(v > m, v, m);
    }
    mx = m[0];
    for (int k = 1; k < 4; k++) mx = m[k] > mx ? m[k] : mx;
  }
  for (; i < n; i++) mx = x[i] > mx ? x[i] : mx;
  return mx;
}

/* Sum over i < n of e^(x[i] - mx) for x[i] <= mx (4-wide exp; lanes summed
 * in float over blocks of 256 values, the blocks added in double); when y is
 * not NULL, y[i] = e^(x[i] - mx). */
static inline double v4_sum_exp(float *y, const float *x, int n, float mx) {
  const v4f mv = v4_splat(mx);
  double s = 0.0;
  int i = 0;
  while (i + 4 <= n) {
    v4f acc = v4_splat(0.0f);
    const int end = i + 256 < n ? i + 256 : n;
    for (; i + 4 <= end; i += 4) {
      v4f e = v4_exp_neg(v4_load(x + i) - mv);
      if (y) v4_store(y + i, e);
      acc += e;
    }
    s += (double)v4_sum(acc);
  }
  for (; i < n; i++) {
    float e = v4_exp_neg(v4_splat(x[i] - mx))[0];
    if (y) y[i] = e;
    s += e;
  }
  return s;
}

/* y[i] = x[i] - c for i < n */
static inline void v4_sub_row(float *y, const float *x, int n, float c) {
  const v4f cv = v4_splat(c);
  int i = 0;
  for (; i + 4 <= n; i += 4) v4_store(y + i, v4_load(x + i) - cv);
  for (; i < n; i++) y[i] = x[i] - c;
}

#endif
