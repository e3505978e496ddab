/* Tests of lp_gemm (core/engine/gemm.c): the bf16 kernel against a double
 * reference, fp32 mode against cblas_sgemm bit for bit, the fallback, and the
 * precision that lp_engine_parallel's workers inherit.
 *
 * Usage: gemm_tests <case>   (fp32 | bf16 | fallback | parallel | errors | all)
 * bf16 exits 77 (ctest: skipped) after checking the fallback when the CPU has
 * no AVX512_BF16; fallback expects LPSYNTH_PRECISION=fp32 in the environment
 * (tests/engine/CMakeLists.txt sets it), so the fp32 path is tested on every
 * machine. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "lpsynth/engine.h"

static int g_failures;

#define EXPECT(cond)                                                      \
  do {                                                                    \
    if (!(cond)) {                                                        \
      fprintf(stderr, "%s:%d: expected %s\n", __FILE__, __LINE__, #cond); \
      g_failures++;                                                       \
    }                                                                     \
  } while (0)

static void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) {
    fprintf(stderr, "out of memory\n");
    exit(2);
  }
  return p;
}

/* ---- problems ------------------------------------------------------------ */

/* One product with its own storage: A, B with leading dimensions padded by
 * NaN (a kernel that reads outside op(A), op(B) gets NaN), C padded by a
 * sentinel that must survive. */
typedef struct prob {
  int ta, tb, M, N, K, lda, ldb, ldc;
  float alpha, beta;
  float *A, *B, *C0; /* C0: C before the call */
  size_t na, nb, nc;
} prob;

static const float k_sentinel = 12345.0f;

static void prob_make(prob *p, int ta, int tb, int M, int N, int K, float alpha, float beta,
                      lp_rng *r) {
  memset(p, 0, sizeof *p);
  p->ta = ta, p->tb = tb, p->M = M, p->N = N, p->K = K, p->alpha = alpha, p->beta = beta;
  const int ar = ta ? K : M, ac = ta ? M : K; /* stored shapes */
  const int br = tb ? N : K, bc = tb ? K : N;
  p->lda = ac + (int)(lp_rng_next(r) % 4);
  p->ldb = bc + (int)(lp_rng_next(r) % 4);
  p->ldc = N + (int)(lp_rng_next(r) % 4);
  p->na = (size_t)ar * p->lda, p->nb = (size_t)br * p->ldb, p->nc = (size_t)M * p->ldc;
  p->A = xmalloc(sizeof(float) * p->na);
  p->B = xmalloc(sizeof(float) * p->nb);
  p->C0 = xmalloc(sizeof(float) * p->nc);
  for (size_t i = 0; i < p->na; i++)
    p->A[i] = (int)(i % (size_t)p->lda) < ac ? lp_rng_normal(r) : NAN;
  for (size_t i = 0; i < p->nb; i++)
    p->B[i] = (int)(i % (size_t)p->ldb) < bc ? lp_rng_normal(r) : NAN;
  for (size_t i = 0; i < p->nc; i++)
    p->C0[i] = (int)(i % (size_t)p->ldc) >= N ? k_sentinel
               : beta == 0.0f                ? NAN /* must not be read */
                                             : lp_rng_normal(r);
}

static void prob_free(prob *p) {
  free(p->A);
  free(p->B);
  free(p->C0);
}

static double a_at(const prob *p, const float *A, int i, int k) {
  return p->ta ? A[(size_t)k * p->lda + i] : A[(size_t)i * p->lda + k];
}
static double b_at(const prob *p, const float *B, int k, int j) {
  return p->tb ? B[(size_t)j * p->ldb + k] : B[(size_t)k * p->ldb + j];
}

static void run_cblas(const prob *p, float *C) {
  memcpy(C, p->C0, sizeof(float) * p->nc);
  cblas_sgemm(CblasRowMajor, p->ta ? CblasTrans : CblasNoTrans,
              p->tb ? CblasTrans : CblasNoTrans, p->M, p->N, p->K, p->alpha, p->A, p->lda,
              p->B, p->ldb, p->beta, C, p->ldc);
}

static void run_lp(const prob *p, float *C) {
  memcpy(C, p->C0, sizeof(float) * p->nc);
  lp_gemm(p->ta, p->tb, p->M, p->N, p->K, p->alpha, p->A, p->lda, p->B, p->ldb, p->beta, C,
          p->ldc);
}

static int run_bf16(const prob *p, float *C) {
  memcpy(C, p->C0, sizeof(float) * p->nc);
  return lp_gemm_bf16(p->ta, p->tb, p->M, p->N, p->K, p->alpha, p->A, p->lda, p->B, p->ldb,
                      p->beta, C, p->ldc);
}

/* Bitwise equality of two C arrays (NaN patterns included). */
static int same_bits(const float *x, const float *y, size_t n) {
  return memcmp(x, y, sizeof(float) * n) == 0;
}

/* The bf16 value of x, as the hardware rounds it (nearest even; NaN stays a
 * quiet NaN; denormals to zero - the test data has none). */
static float bf16_round(float x) {
  uint32_t u;
  memcpy(&u, &x, sizeof u);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u)
    u = (u | 0x00400000u) & 0xFFFF0000u;
  else if ((u & 0x7F800000u) == 0)
    u &= 0x80000000u;
  else
    u = (u + 0x7FFFu + ((u >> 16) & 1u)) & 0xFFFF0000u;
  memcpy(&x, &u, sizeof x);
  return x;
}

static const double k_u = 1.0 / 256.0;         /* bf16 unit roundoff 2^-8 */
static const double k_u32 = 1.0 / 16777216.0;  /* fp32 unit roundoff 2^-24 */

/* Checks the bf16 result C against two double references:
 * (1) the exact product of the fp32 inputs: each term a*b becomes
 *     a(1+d1) b(1+d2), |d| <= 2^-8, so it is off by <= (2u + u^2)|ab|; the
 *     float32 accumulation of K terms (+ alpha, beta C) adds <= (K+6) u32 of
 *     the sum of magnitudes:
 *     |err| <= |alpha| S (2u + u^2 + (K+6) u32 (1+2u+u^2)) + 3 u32 |beta c0|,
 *     S = sum_k |a_ik b_kj|;
 * (2) the exact product of the inputs rounded to bf16 by bf16_round: only the
 *     float32 accumulation is left, |err| <= (K+6) u32 (|alpha| S' + |beta c0|)
 *     - this one catches a wrong rounding or a wrong pairing along K.
 * Also: the padding of C untouched. Returns the worst error of (1) / bound. */
static double check_bf16(const prob *p, const float *C, const char *what) {
  /* op(A) by rows and op(B) by columns, as given and rounded to bf16 */
  const size_t K = (size_t)p->K;
  double *a = xmalloc(sizeof(double) * (size_t)p->M * K * 2), *a2 = a + (size_t)p->M * K;
  double *b = xmalloc(sizeof(double) * (size_t)p->N * K * 2), *b2 = b + (size_t)p->N * K;
  for (int i = 0; i < p->M; i++)
    for (int k = 0; k < p->K; k++) {
      a[i * K + k] = a_at(p, p->A, i, k);
      a2[i * K + k] = bf16_round((float)a[i * K + k]);
    }
  for (int j = 0; j < p->N; j++)
    for (int k = 0; k < p->K; k++) {
      b[j * K + k] = b_at(p, p->B, k, j);
      b2[j * K + k] = bf16_round((float)b[j * K + k]);
    }
  double worst = 0;
  int bad = 0;
  for (int i = 0; i < p->M; i++) {
    for (int j = 0; j < p->ldc; j++) {
      const float c = C[(size_t)i * p->ldc + j];
      if (j >= p->N) {
        if (c != k_sentinel) bad++;
        continue;
      }
      double ref = 0, S = 0, ref2 = 0, S2 = 0;
      const double *ai = a + i * K, *ai2 = a2 + i * K, *bj = b + j * K, *bj2 = b2 + j * K;
      for (size_t k = 0; k < K; k++) {
        const double t = ai[k] * bj[k], t2 = ai2[k] * bj2[k];
        ref += t, S += fabs(t);
        ref2 += t2, S2 += fabs(t2);
      }
      const double c0 = p->beta == 0.0f ? 0.0 : p->C0[(size_t)i * p->ldc + j];
      const double al = p->alpha, be = p->beta;
      const double e1 = fabs(c - (al * ref + be * c0));
      const double e2 = fabs(c - (al * ref2 + be * c0));
      const double t1 = fabs(al) * S * (2 * k_u + k_u * k_u + (p->K + 6) * k_u32 * 1.02) +
                        3 * k_u32 * fabs(be * c0) + 1e-30;
      const double t2 = (p->K + 6) * k_u32 * (fabs(al) * S2 + fabs(be * c0)) + 1e-30;
      if (!(e1 <= t1) || !(e2 <= t2)) {
        if (bad < 5)
          fprintf(stderr,
                  "%s %s%s %dx%dx%d alpha %g beta %g C[%d,%d] = %.9g, ref %.9g (err %.3g, "
                  "bound %.3g), bf16-input ref %.9g (err %.3g, bound %.3g)\n",
                  what, p->ta ? "T" : "N", p->tb ? "T" : "N", p->M, p->N, p->K, p->alpha,
                  p->beta, i, j, c, al * ref + be * c0, e1, t1, al * ref2 + be * c0, e2, t2);
        bad++;
      }
      if (e1 / t1 > worst) worst = e1 / t1;
    }
  }
  free(a);
  free(b);
  if (bad) g_failures++;
  return worst;
}

static const int k_dims[] = {1, 2, 3, 13, 14, 15, 16, 17, 31, 32, 33, 47, 100};
static const int k_ks[] = {1, 2, 3, 31, 32, 33, 255, 256, 257, 513};
static const float k_ab[][2] = {{1.0f, 0.0f}, {1.0f, 1.0f}, {0.5f, -2.0f}, {-1.25f, 0.0f},
                                {0.17677669f, 1.0f}};
#define N_DIMS (int)(sizeof k_dims / sizeof k_dims[0])
#define N_KS (int)(sizeof k_ks / sizeof k_ks[0])
#define N_AB (int)(sizeof k_ab / sizeof k_ab[0])

/* Calls f on a spread of problems: every (M, N) of k_dims with K, the
 * transposes and (alpha, beta) cycling, then four bigger ones, one per
 * transpose pair, that cross the row and column blocks of gemm.c (MC = 336
 * rows, NC = 512 columns) with an odd K, two of them also its K block (512). */
static void for_problems(void (*f)(const prob *p, void *ctx), void *ctx, int big) {
  lp_rng r;
  lp_rng_seed(&r, 17);
  int n = 0;
  for (int mi = 0; mi < N_DIMS; mi++)
    for (int ni = 0; ni < N_DIMS; ni++, n++) {
      prob p;
      prob_make(&p, n & 1, (n >> 1) & 1, k_dims[mi], k_dims[ni], k_ks[n % N_KS],
                k_ab[n % N_AB][0], k_ab[n % N_AB][1], &r);
      f(&p, ctx);
      prob_free(&p);
    }
  if (!big) return;
  for (int t = 0; t < 4; t++) {
    prob p;
    prob_make(&p, t & 1, t >> 1, 340, 515, t == 0 || t == 3 ? 515 : 259, k_ab[t][0],
              k_ab[t][1], &r);
    f(&p, ctx);
    prob_free(&p);
  }
}

/* ---- fp32: lp_gemm is cblas_sgemm ----------------------------------------- */

static void fp32_one(const prob *p, void *ctx) {
  (void)ctx;
  float *c1 = xmalloc(sizeof(float) * p->nc), *c2 = xmalloc(sizeof(float) * p->nc);
  run_cblas(p, c1);
  run_lp(p, c2);
  if (!same_bits(c1, c2, p->nc)) {
    fprintf(stderr, "fp32 lp_gemm != cblas_sgemm: %dx%dx%d\n", p->M, p->N, p->K);
    g_failures++;
  }
  free(c1);
  free(c2);
}

static void test_fp32(void) {
  EXPECT(lp_engine_precision() == LP_PREC_FP32); /* the default */
  EXPECT(lp_engine_set_precision(LP_PREC_FP32) == LP_PREC_FP32);
  for_problems(fp32_one, NULL, 1);
  /* bf16 mode, products below the threshold: still cblas_sgemm */
  lp_engine_set_precision(LP_PREC_BF16);
  lp_rng r;
  lp_rng_seed(&r, 3);
  prob p;
  prob_make(&p, 0, 1, 8, 8, 8, 1.0f, 1.0f, &r);
  EXPECT(8.0 * 8 * 8 < lp_gemm_bf16_min_macs());
  fp32_one(&p, NULL);
  prob_free(&p);
  lp_engine_set_precision(LP_PREC_FP32);
  printf("fp32: lp_gemm == cblas_sgemm bit for bit on %d problems\n", N_DIMS * N_DIMS + 5);
}

/* ---- fallback (no bf16 here, or LPSYNTH_PRECISION=fp32) ------------------- */

static void fallback_one(const prob *p, void *ctx) {
  (void)ctx;
  float *c1 = xmalloc(sizeof(float) * p->nc), *c2 = xmalloc(sizeof(float) * p->nc);
  run_cblas(p, c1);
  run_lp(p, c2); /* the thread asked for bf16 and got fp32 */
  if (!same_bits(c1, c2, p->nc)) {
    fprintf(stderr, "fallback lp_gemm != cblas_sgemm: %dx%dx%d\n", p->M, p->N, p->K);
    g_failures++;
  }
  memcpy(c2, p->C0, sizeof(float) * p->nc);
  EXPECT(lp_gemm_bf16(p->ta, p->tb, p->M, p->N, p->K, p->alpha, p->A, p->lda, p->B, p->ldb,
                      p->beta, c2, p->ldc) == LP_EUNSUP);
  EXPECT(same_bits(c2, p->C0, p->nc)); /* untouched */
  free(c1);
  free(c2);
}

/* Without bf16: asking for it gives fp32, and lp_gemm stays cblas_sgemm. */
static void check_fallback(void) {
  EXPECT(!lp_engine_has_bf16());
  EXPECT(lp_engine_set_precision(LP_PREC_BF16) == LP_PREC_FP32);
  EXPECT(lp_engine_precision() == LP_PREC_FP32);
  for_problems(fallback_one, NULL, 0);
  lp_engine_set_precision(LP_PREC_FP32);
}

static void test_fallback(void) {
  const char *env = getenv("LPSYNTH_PRECISION");
  if (!env || strcmp(env, "fp32") != 0) {
    fprintf(stderr, "fallback: run with LPSYNTH_PRECISION=fp32\n");
    g_failures++;
    return;
  }
  check_fallback();
  printf("fallback: bf16 off, lp_gemm == cblas_sgemm bit for bit, lp_gemm_bf16 -> "
         "LP_EUNSUP\n");
}

/* ---- bf16 ----------------------------------------------------------------- */

typedef struct bf16_stats {
  double worst;
  int n, differs;
} bf16_stats;

static void bf16_one(const prob *p, void *ctx) {
  bf16_stats *st = ctx;
  float *c = xmalloc(sizeof(float) * p->nc), *c2 = xmalloc(sizeof(float) * p->nc);
  EXPECT(run_bf16(p, c) == LP_OK);
  double w = check_bf16(p, c, "lp_gemm_bf16");
  if (w > st->worst) st->worst = w;
  st->n++;
  /* lp_gemm in bf16 mode: the kernel above the threshold, cblas below */
  lp_engine_set_precision(LP_PREC_BF16);
  run_lp(p, c2);
  lp_engine_set_precision(LP_PREC_FP32);
  if ((double)p->M * p->N * p->K >= lp_gemm_bf16_min_macs()) {
    EXPECT(same_bits(c, c2, p->nc));
    run_cblas(p, c2);
    st->differs += !same_bits(c, c2, p->nc);
  } else {
    run_cblas(p, c);
    EXPECT(same_bits(c, c2, p->nc));
  }
  free(c);
  free(c2);
}

/* NaN and Inf in the inputs reach exactly the outputs they touch. */
static void bf16_nan(void) {
  lp_rng r;
  lp_rng_seed(&r, 9);
  prob p;
  prob_make(&p, 0, 0, 20, 40, 37, 1.0f, 0.0f, &r);
  p.A[(size_t)5 * p.lda + 7] = NAN;
  p.A[(size_t)9 * p.lda + 36] = INFINITY; /* the odd last k: paired with padding */
  p.B[(size_t)3 * p.ldb + 33] = NAN;
  float *c = xmalloc(sizeof(float) * p.nc);
  EXPECT(run_bf16(&p, c) == LP_OK);
  for (int i = 0; i < p.M; i++)
    for (int j = 0; j < p.N; j++) {
      const float v = c[(size_t)i * p.ldc + j];
      if (i == 5 || j == 33)
        EXPECT(isnan(v));
      else if (i == 9)
        EXPECT(isinf(v) || isnan(v)); /* +-Inf, or NaN where Inf meets Inf of opposite sign */
      else
        EXPECT(isfinite(v));
    }
  free(c);
  prob_free(&p);
}

static void test_bf16(void) {
  if (!lp_engine_has_bf16()) {
    check_fallback();
    printf("SKIPPED bf16 accuracy: this CPU has no AVX512_BF16 (or LPSYNTH_PRECISION=fp32); "
           "checked the fp32 fallback instead (%s)\n",
           g_failures ? "FAILED" : "passed");
    if (!g_failures) exit(77);
    return;
  }
  EXPECT(lp_engine_set_precision(LP_PREC_BF16) == LP_PREC_BF16);
  EXPECT(lp_engine_precision() == LP_PREC_BF16);
  lp_engine_set_precision(LP_PREC_FP32);
  bf16_stats st = {0, 0, 0};
  for_problems(bf16_one, &st, 1);
  EXPECT(st.differs > 0); /* the kernel really ran in bf16 */
  bf16_nan();
  lp_gemm_release();
  lp_gemm_release(); /* twice: a no-op */
  printf("bf16: %d problems, worst error %.2f of the bound; %d differ from fp32\n", st.n,
         st.worst, st.differs);
}

/* ---- lp_engine_parallel ---------------------------------------------------- */

typedef struct par_ctx {
  lp_precision seen[4];
  const prob *p;
  float *out[4];
} par_ctx;

static void par_worker(void *vctx, int w) {
  par_ctx *c = vctx;
  c->seen[w] = lp_engine_precision();
  if (c->p)
    for (int rep = 0; rep < 3; rep++) run_lp(c->p, c->out[w]);
}

static void test_parallel(void) {
  par_ctx c;
  memset(&c, 0, sizeof c);
  /* fp32 caller: fp32 workers */
  EXPECT(lp_engine_parallel(4, par_worker, &c) == LP_OK);
  for (int w = 0; w < 4; w++) EXPECT(c.seen[w] == LP_PREC_FP32);
  /* bf16 caller: bf16 workers, each with its own packing buffer, all giving
   * the caller's answer */
  const lp_precision want = lp_engine_set_precision(LP_PREC_BF16);
  lp_rng r;
  lp_rng_seed(&r, 11);
  prob p;
  prob_make(&p, 1, 0, 100, 70, 300, 1.0f, 1.0f, &r);
  float *ref = xmalloc(sizeof(float) * p.nc);
  run_lp(&p, ref);
  c.p = &p;
  for (int w = 0; w < 4; w++) c.out[w] = xmalloc(sizeof(float) * p.nc);
  EXPECT(lp_engine_parallel(4, par_worker, &c) == LP_OK);
  for (int w = 0; w < 4; w++) {
    EXPECT(c.seen[w] == want);
    EXPECT(same_bits(c.out[w], ref, p.nc));
    free(c.out[w]);
  }
  EXPECT(lp_engine_precision() == want); /* the caller's is unchanged */
  lp_engine_set_precision(LP_PREC_FP32);
  free(ref);
  prob_free(&p);
  lp_gemm_release();
  printf("parallel: workers ran in %s like their caller\n",
         want == LP_PREC_BF16 ? "bf16" : "fp32 (no bf16 here)");
}

/* ---- errors ---------------------------------------------------------------- */

static void test_errors(void) {
  float a[4] = {1, 2, 3, 4}, c[4] = {0};
  const int st = lp_engine_has_bf16() ? LP_EINVAL : LP_EUNSUP;
  EXPECT(lp_gemm_bf16(0, 0, 0, 2, 2, 1.0f, a, 2, a, 2, 0.0f, c, 2) == LP_EINVAL);
  EXPECT(lp_gemm_bf16(0, 0, 2, 2, 2, 1.0f, NULL, 2, a, 2, 0.0f, c, 2) == LP_EINVAL);
  EXPECT(lp_gemm_bf16(0, 0, 2, 2, 2, 1.0f, a, 1, a, 2, 0.0f, c, 2) == LP_EINVAL); /* lda < K */
  EXPECT(lp_gemm_bf16(1, 0, 2, 2, 1, 1.0f, a, 1, a, 2, 0.0f, c, 2) == LP_EINVAL); /* lda < M */
  EXPECT(lp_gemm_bf16(0, 1, 2, 2, 2, 1.0f, a, 2, a, 1, 0.0f, c, 2) == LP_EINVAL); /* ldb < K */
  EXPECT(lp_gemm_bf16(0, 0, 2, 2, 2, 1.0f, a, 2, a, 2, 0.0f, c, 1) == LP_EINVAL); /* ldc < N */
  EXPECT(st == LP_EINVAL || lp_gemm_bf16(0, 0, 2, 2, 2, 1.0f, a, 2, a, 2, 0.0f, c, 2) == st);
  EXPECT(lp_engine_set_precision((lp_precision)7) == LP_PREC_FP32);
  EXPECT(lp_engine_precision() == LP_PREC_FP32);
  EXPECT(lp_gemm_bf16_min_macs() >= 1.0);
}

/* ------------------------------------------------------------------------- */

typedef struct test_case {
  const char *name;
  void (*fn)(void);
} test_case;

static const test_case k_cases[] = {{"fp32", test_fp32},         {"bf16", test_bf16},
                                    {"fallback", test_fallback}, {"parallel", test_parallel},
                                    {"errors", test_errors}};

int main(int argc, char **argv) {
  lp_engine_set_threads(1);
  const size_t n = sizeof k_cases / sizeof k_cases[0];
  if (argc != 2) {
    fprintf(stderr, "usage: %s fp32|bf16|fallback|parallel|errors|all\n", argv[0]);
    return 2;
  }
  int found = 0;
  for (size_t i = 0; i < n; i++) {
    if (strcmp(argv[1], "all") == 0 ? strcmp(k_cases[i].name, "fallback") != 0
                                    : strcmp(argv[1], k_cases[i].name) == 0) {
      k_cases[i].fn();
      found = 1;
    }
  }
  if (!found) {
    fprintf(stderr, "unknown case %s\n", argv[1]);
    return 2;
  }
  lp_gemm_release();
  if (g_failures) fprintf(stderr, "%d failure(s)\n", g_failures);
  return g_failures ? 1 : 0;
}
