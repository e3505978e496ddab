/* Matrix products: lp_gemm is cblas_sgemm, or a bf16 x bf16 -> fp32 kernel
 * (AVX512_BF16, vdpbf16ps) when the calling thread asked for bf16, the CPU
 * has it and the product is big enough to pay for the packing.
 *
 * The kernel (GotoBLAS / BLIS structure):
 *   for jc over N in NC columns
 *     for pc over K in KC (= 2 KCP) steps: pack op(B)[pc.., jc..] to bf16
 *       for ic over M in MC rows: pack op(A)[ic.., pc..] to bf16
 *         for each NR = 32 column panel of B, for each MR = 14 row panel of A:
 *           microkernel: 14 x 32 fp32 accumulators in 28 zmm registers,
 *           one vdpbf16ps per (row, 16 columns, pair of k).
 * vdpbf16ps multiplies PAIRS along K: a 32-bit lane of the B operand holds
 * (op(B)[2p, j], op(B)[2p+1, j]) and the broadcast A dword holds
 * (op(A)[i, 2p], op(A)[i, 2p+1]). Packed layouts (uint32_t = one bf16 pair,
 * low half = even k):
 *   B panel: [kp][32]        (2 zmm per k pair)
 *   A panel, op(A) = A   : [row][KCP]  row-major pairs, fixed row stride KCP
 *                          (conversion of contiguous rows, no transposition)
 *   A panel, op(A) = A^T : [kp][MR]    (two rows of A interleaved)
 * The microkernel is compiled once per A layout with the strides as
 * constants, so each broadcast is one memory operand base + displacement.
 * Missing rows / columns / the odd last k of a panel are packed as zeros;
 * edge tiles store through masks and a row count.
 *
 * Everything that uses AVX-512 is compiled with function target attributes,
 * so the rest of the build stays generic x86-64; the CPU is checked at run
 * time (cpuid + XCR0). */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* LP_GEMM_BF16: 1 when this compiler can build the AVX512_BF16 kernel (x86,
 * gcc >= 10 or clang >= 9); -DLP_GEMM_BF16=0 builds the fp32-only path. */
#ifndef LP_GEMM_BF16
#if (defined(__x86_64__) || defined(__i386__)) && \
    ((defined(__clang__) && __clang_major__ >= 9) || \
     (!defined(__clang__) && defined(__GNUC__) && __GNUC__ >= 10))
#define LP_GEMM_BF16 1
#else
#define LP_GEMM_BF16 0
#endif
#endif
#if LP_GEMM_BF16
#include <cpuid.h>
#include <immintrin.h>
#endif

/* ---- blocking ------------------------------------------------------------ */

/* Chosen with bench/bench_gemm (the thread's CPU clock, on a shared machine):
 * 12 or 14 rows, 64..256 pairs and 8..24 row panels were all within the
 * noise; 256 pairs (one K block for the FFN's K = 512, one pass over C) were
 * a little ahead on average. Overridable with -D for such experiments. */
#ifndef LP_GEMM_MR
#define LP_GEMM_MR 14
#endif
#ifndef LP_GEMM_KCP
#define LP_GEMM_KCP 256
#endif
#ifndef LP_GEMM_MCP
#define LP_GEMM_MCP 24
#endif
enum {
  MR = LP_GEMM_MR,               /* rows of the microkernel tile */
  NR = 32,                       /* columns of the microkernel tile (2 zmm) */
  KCP = LP_GEMM_KCP,             /* k pairs per K block (KC = 512 values of k) */
  MC = LP_GEMM_MR * LP_GEMM_MCP, /* rows of A packed at once (336 x 512 bf16 = 336 KiB) */
  NC = 512                       /* columns of B packed at once (512 x 512 bf16 = 512 KiB) */
};
_Static_assert(LP_GEMM_MR >= 1 && LP_GEMM_MR <= 15, "28..30 accumulators + 2 B registers");
_Static_assert(LP_GEMM_KCP % 16 == 0, "A rows stay 64-byte aligned");

/* ---- run-time choice ---------------------------------------------------- */

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static pthread_key_t g_key;
static int g_key_ok;
static int g_has_bf16;       /* CPU + OS support, and not forced off */
static double g_min_macs;    /* lp_gemm_bf16_min_macs() */
static _Thread_local int tl_prec = LP_PREC_FP32;

typedef struct gemm_buf {
  void *mem;
  size_t cap;
} gemm_buf;

static void buf_destroy(void *p) {
  gemm_buf *b = p;
  if (!b) return;
  free(b->mem);
  free(b);
}

#if LP_GEMM_BF16
static int cpu_has_bf16(void) {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
  if (!(c & (1u << 27))) return 0; /* OSXSAVE: XGETBV usable */
  unsigned lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  (void)hi;
  /* XCR0: SSE, AVX, opmask, ZMM0-15 upper halves, ZMM16-31 saved by the OS */
  if ((lo & 0xE6u) != 0xE6u) return 0;
  if (__get_cpuid_max(0, NULL) < 7) return 0;
  __cpuid_count(7, 0, a, b, c, d);
  const unsigned need = (1u << 16) | (1u << 17) | (1u << 30) | (1u << 31); /* F DQ BW VL */
  if ((b & need) != need) return 0;
  __cpuid_count(7, 1, a, b, c, d);
  return (a >> 5) & 1u; /* AVX512_BF16 */
}
#endif

/* From libopenblas: the name of the kernel set it runs (DYNAMIC_ARCH). */
char *openblas_get_corename(void);

/* 1 when OpenBLAS runs an AVX-512 sgemm kernel. */
static int blas_is_avx512(void) {
  const char *n = openblas_get_corename();
  if (!n) return 0;
  static const char *const k[] = {"skylakex", "cooperlake", "sapphirerapids"};
  for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
    size_t j = 0;
    while (k[i][j] && n[j] && (n[j] | 0x20) == k[i][j]) j++;
    if (!k[i][j] && !n[j]) return 1;
  }
  return 0;
}

static void init_once(void) {
  g_key_ok = pthread_key_create(&g_key, buf_destroy) == 0;
  const char *env = getenv("LPSYNTH_PRECISION");
  int forced_fp32 = env && strcmp(env, "fp32") == 0;
#if LP_GEMM_BF16
  g_has_bf16 = !forced_fp32 && g_key_ok && cpu_has_bf16();
#else
  (void)forced_fp32;
  g_has_bf16 = 0;
#endif
  g_min_macs = g_has_bf16 && blas_is_avx512() ? 1e5 : 8192.0;
}

double lp_gemm_bf16_min_macs(void) {
  pthread_once(&g_once, init_once);
  return g_min_macs;
}

int lp_engine_has_bf16(void) {
  pthread_once(&g_once, init_once);
  return g_has_bf16;
}

lp_precision lp_engine_set_precision(lp_precision p) {
  tl_prec = (p == LP_PREC_BF16 && lp_engine_has_bf16()) ? LP_PREC_BF16 : LP_PREC_FP32;
  return (lp_precision)tl_prec;
}

lp_precision lp_engine_precision(void) { return (lp_precision)tl_prec; }

#if LP_GEMM_BF16
/* The calling thread's packing buffer, at least `bytes` long and 64-byte
 * aligned (grown, never shrunk); NULL when it cannot be had. */
static void *thread_buf(size_t bytes) {
  if (!g_key_ok) return NULL;
  gemm_buf *b = pthread_getspecific(g_key);
  if (!b) {
    b = calloc(1, sizeof *b);
    if (!b) return NULL;
    if (pthread_setspecific(g_key, b) != 0) {
      free(b);
      return NULL;
    }
  }
  if (b->cap < bytes) {
    size_t cap = (bytes + 4095u) & ~(size_t)4095u;
    free(b->mem);
    b->mem = aligned_alloc(64, cap);
    b->cap = b->mem ? cap : 0;
  }
  return b->mem;
}
#endif

void lp_gemm_release(void) {
  pthread_once(&g_once, init_once);
  if (!g_key_ok) return;
  gemm_buf *b = pthread_getspecific(g_key);
  if (!b) return;
  pthread_setspecific(g_key, NULL);
  buf_destroy(b);
}

#if LP_GEMM_BF16

#define LP_AVX512BF16 __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,avx512bf16")))
#define LP_AVX512BF16_INLINE \
  __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,avx512bf16"), always_inline)) inline

static inline unsigned lowmask(int n) { /* n in 0..32: the n low bits */
  return n >= 32 ? 0xFFFFFFFFu : (1u << n) - 1u;
}

/* 32 bf16 lanes [lo0..lo15, hi0..hi15] -> pairs (lo_j, hi_j) in dword j. */
static LP_AVX512BF16_INLINE __m512i pair_up(__m512 lo, __m512 hi) {
  const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9,
                                       24, 8, 23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1,
                                       16, 0);
  __m512i v = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
  return _mm512_permutexvar_epi16(idx, v);
}

/* Converts n (0..) consecutive floats of src to n/2 rounded up bf16 pairs
 * (the odd last one paired with 0) at dst. */
static LP_AVX512BF16 void convert_row(uint32_t *dst, const float *src, int n) {
  int k = 0;
  for (; k + 32 <= n; k += 32) {
    __m512 lo = _mm512_loadu_ps(src + k), hi = _mm512_loadu_ps(src + k + 16);
    _mm512_storeu_si512((void *)(dst + k / 2), (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
  }
  const int r = n - k;
  if (r > 0) {
    const __mmask16 m0 = (__mmask16)lowmask(r < 16 ? r : 16);
    const __mmask16 m1 = (__mmask16)lowmask(r > 16 ? r - 16 : 0);
    __m512 lo = _mm512_maskz_loadu_ps(m0, src + k);
    __m512 hi = _mm512_maskz_loadu_ps(m1, src + k + 16);
    _mm512_mask_storeu_epi32(dst + k / 2, (__mmask16)lowmask((r + 1) / 2),
                             (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
  }
}

/* Pairs (r0[j], r1[j]) for j < n (n <= 16; r1 NULL = zeros), 16 dwords. */
static LP_AVX512BF16_INLINE __m512i interleave16(const float *r0, const float *r1, int n) {
  const __mmask16 m = (__mmask16)lowmask(n);
  __m512 lo = _mm512_maskz_loadu_ps(m, r0);
  __m512 hi = r1 ? _mm512_maskz_loadu_ps(m, r1) : _mm512_setzero_ps();
  return pair_up(lo, hi);
}

/* ---- packing ------------------------------------------------------------- */

/* op(A) = A (row-major, lda): rows i0..i0+mr-1, k = k0..k0+kc-1 -> [MR][KCP]. */
static LP_AVX512BF16 void pack_a_rows(uint32_t *dst, const float *A, int lda, int i0, int mr,
                                      int k0, int kc) {
  const int kpc = (kc + 1) / 2;
  for (int r = 0; r < MR; r++) {
    uint32_t *d = dst + (size_t)r * KCP;
    if (r < mr)
      convert_row(d, A + (size_t)(i0 + r) * lda + k0, kc);
    else
      memset(d, 0, sizeof(uint32_t) * (size_t)kpc);
  }
}

/* op(A) = A^T, A stored [K, M] (lda): op(A) rows i0.., k = k0.. -> [kpc][MR]. */
static LP_AVX512BF16 void pack_a_cols(uint32_t *dst, const float *A, int lda, int i0, int mr,
                                      int k0, int kc) {
  const int kpc = (kc + 1) / 2;
  const __mmask16 mrow = (__mmask16)lowmask(MR);
  for (int p = 0; p < kpc; p++) {
    const float *r0 = A + (size_t)(k0 + 2 * p) * lda + i0;
    const float *r1 = 2 * p + 1 < kc ? r0 + lda : NULL;
    _mm512_mask_storeu_epi32(dst + (size_t)p * MR, mrow, interleave16(r0, r1, mr));
  }
}

/* op(B) = B, stored [K, N] (ldb): k = k0.., columns j0..j0+nr-1 -> [kpc][NR]. */
static LP_AVX512BF16 void pack_b_rows(uint32_t *dst, const float *B, int ldb, int j0, int nr,
                                      int k0, int kc) {
  const int kpc = (kc + 1) / 2;
  const int n0 = nr < 16 ? nr : 16, n1 = nr > 16 ? nr - 16 : 0;
  for (int p = 0; p < kpc; p++) {
    const float *r0 = B + (size_t)(k0 + 2 * p) * ldb + j0;
    const float *r1 = 2 * p + 1 < kc ? r0 + ldb : NULL;
    uint32_t *d = dst + (size_t)p * NR;
    _mm512_store_si512((void *)d, interleave16(r0, r1, n0));
    _mm512_store_si512((void *)(d + 16), n1 ? interleave16(r0 + 16, r1 ? r1 + 16 : NULL, n1)
                                             : _mm512_setzero_si512());
  }
}

/* op(B) = B^T, B stored [N, K] (ldb): k = k0.., columns j0.. -> [kpc][NR]. Each
 * row of B is converted along k and scattered down a column of the panel. */
static LP_AVX512BF16 void pack_b_cols(uint32_t *dst, const float *B, int ldb, int j0, int nr,
                                      int k0, int kc) {
  const int kpc = (kc + 1) / 2;
  if (nr < NR) memset(dst, 0, sizeof(uint32_t) * (size_t)kpc * NR);
  const __m512i vidx = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7,
                                                           6, 5, 4, 3, 2, 1, 0),
                                          _mm512_set1_epi32(NR));
  for (int j = 0; j < nr; j++) {
    const float *src = B + (size_t)(j0 + j) * ldb + k0;
    for (int k = 0; k < kc; k += 32) {
      const int r = kc - k;
      const __mmask16 m0 = (__mmask16)lowmask(r < 16 ? r : 16);
      const __mmask16 m1 = (__mmask16)lowmask(r > 32 ? 16 : (r > 16 ? r - 16 : 0));
      __m512 lo = _mm512_maskz_loadu_ps(m0, src + k);
      __m512 hi = _mm512_maskz_loadu_ps(m1, src + k + 16);
      __m512i v = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
      const int np = (r >= 32 ? 32 : r + 1) / 2;
      _mm512_mask_i32scatter_epi32(dst + (size_t)(k / 2) * NR + j, (__mmask16)lowmask(np), vidx,
                                   v, 4);
    }
  }
}

/* ---- microkernel --------------------------------------------------------- */

/* C[mr, nr] (ldc) = alpha * sum_p a_p b_p + beta * C, from kpc pairs. A dword
 * of row i, pair p is a[i * AR + p * AK]; b holds NR dwords per pair. beta == 0
 * does not read C. */
static LP_AVX512BF16_INLINE void ukernel(int kpc, const uint32_t *a, const uint32_t *b,
                                         float *C, int ldc, float alpha, float beta, int mr,
                                         int nr, const int AR, const int AK) {
  __m512 c[MR][2];
#pragma GCC unroll 16
  for (int i = 0; i < MR; i++) c[i][0] = c[i][1] = _mm512_setzero_ps();
  for (int p = 0; p < kpc; p++) {
    const __m512bh b0 = (__m512bh)_mm512_load_si512((const void *)b);
    const __m512bh b1 = (__m512bh)_mm512_load_si512((const void *)(b + 16));
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++) {
      const __m512bh ai = (__m512bh)_mm512_set1_epi32((int)a[i * AR]);
      c[i][0] = _mm512_dpbf16_ps(c[i][0], b0, ai);
      c[i][1] = _mm512_dpbf16_ps(c[i][1], b1, ai);
    }
    a += AK;
    b += NR;
  }
  const __mmask16 m0 = (__mmask16)lowmask(nr < 16 ? nr : 16);
  const __mmask16 m1 = (__mmask16)lowmask(nr > 16 ? nr - 16 : 0);
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
#pragma GCC unroll 16
  for (int i = 0; i < MR; i++) {
    if (i >= mr) break;
    float *ci = C + (size_t)i * ldc;
    __m512 r0 = _mm512_mul_ps(va, c[i][0]), r1 = _mm512_mul_ps(va, c[i][1]);
    if (beta == 1.0f) {
      r0 = _mm512_add_ps(r0, _mm512_maskz_loadu_ps(m0, ci));
      r1 = _mm512_add_ps(r1, _mm512_maskz_loadu_ps(m1, ci + 16));
    } else if (beta != 0.0f) {
      r0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, ci), r0);
      r1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, ci + 16), r1);
    }
    _mm512_mask_storeu_ps(ci, m0, r0);
    _mm512_mask_storeu_ps(ci + 16, m1, r1);
  }
}

static LP_AVX512BF16 void ukernel_rows(int kpc, const uint32_t *a, const uint32_t *b,
                                       float *C, int ldc, float alpha, float beta, int mr,
                                       int nr) {
  ukernel(kpc, a, b, C, ldc, alpha, beta, mr, nr, KCP, 1);
}

static LP_AVX512BF16 void ukernel_cols(int kpc, const uint32_t *a, const uint32_t *b,
                                       float *C, int ldc, float alpha, float beta, int mr,
                                       int nr) {
  ukernel(kpc, a, b, C, ldc, alpha, beta, mr, nr, 1, MR);
}

static size_t round_up(size_t n, size_t m) { return (n + m - 1) / m * m; }

/* Bytes of packing buffer for an M x N x K product. */
static size_t buf_bytes(int M, int N, int K) {
  const size_t kp = (size_t)(K + 1) / 2 < KCP ? (size_t)(K + 1) / 2 : KCP;
  const size_t mc = round_up((size_t)(M < MC ? M : MC), MR);
  const size_t nc = round_up((size_t)(N < NC ? N : NC), NR);
  return sizeof(uint32_t) * (mc * KCP + nc * kp) + 64;
}

static LP_AVX512BF16 void gemm_bf16(int ta, int tb, int M, int N, int K, float alpha,
                                    const float *A, int lda, const float *B, int ldb,
                                    float beta, float *C, int ldc, uint32_t *buf) {
  uint32_t *pa = buf;
  uint32_t *pb = buf + round_up((size_t)(M < MC ? M : MC), MR) * KCP;
  for (int jc = 0; jc < N; jc += NC) {
    const int nc = N - jc < NC ? N - jc : NC;
    for (int pc = 0; pc < K; pc += 2 * KCP) {
      const int kc = K - pc < 2 * KCP ? K - pc : 2 * KCP, kpc = (kc + 1) / 2;
      const size_t bstride = (size_t)kpc * NR;
      for (int jr = 0; jr < nc; jr += NR) {
        const int nr = nc - jr < NR ? nc - jr : NR;
        uint32_t *d = pb + (size_t)(jr / NR) * bstride;
        if (tb)
          pack_b_cols(d, B, ldb, jc + jr, nr, pc, kc);
        else
          pack_b_rows(d, B, ldb, jc + jr, nr, pc, kc);
      }
      const float bet = pc == 0 ? beta : 1.0f;
      for (int ic = 0; ic < M; ic += MC) {
        const int mc = M - ic < MC ? M - ic : MC;
        const size_t astride = (size_t)MR * KCP;
        for (int ir = 0; ir < mc; ir += MR) {
          const int mr = mc - ir < MR ? mc - ir : MR;
          uint32_t *d = pa + (size_t)(ir / MR) * astride;
          if (ta)
            pack_a_cols(d, A, lda, ic + ir, mr, pc, kc);
          else
            pack_a_rows(d, A, lda, ic + ir, mr, pc, kc);
        }
        for (int jr = 0; jr < nc; jr += NR) {
          const int nr = nc - jr < NR ? nc - jr : NR;
          const uint32_t *bp = pb + (size_t)(jr / NR) * bstride;
          for (int ir = 0; ir < mc; ir += MR) {
            const int mr = mc - ir < MR ? mc - ir : MR;
            const uint32_t *ap = pa + (size_t)(ir / MR) * astride;
            float *cp = C + (size_t)(ic + ir) * ldc + jc + jr;
            if (ta)
              ukernel_cols(kpc, ap, bp, cp, ldc, alpha, bet, mr, nr);
            else
              ukernel_rows(kpc, ap, bp, cp, ldc, alpha, bet, mr, nr);
          }
        }
      }
    }
  }
}

#endif /* LP_GEMM_BF16 */

/* ---- entry points -------------------------------------------------------- */

static int args_ok(int ta, int tb, int M, int N, int K, const float *A, int lda,
                   const float *B, int ldb, const float *C, int ldc) {
  if (M < 1 || N < 1 || K < 1 || !A || !B || !C) return 0;
  if (lda < (ta ? M : K) || ldb < (tb ? K : N) || ldc < N) return 0;
  return 1;
}

int lp_gemm_bf16(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                 int lda, const float *B, int ldb, float beta, float *C, int ldc) {
  LP_REQUIRE(args_ok(trans_a, trans_b, M, N, K, A, lda, B, ldb, C, ldc));
  if (!lp_engine_has_bf16()) return LP_EUNSUP;
#if LP_GEMM_BF16
  uint32_t *buf = thread_buf(buf_bytes(M, N, K));
  if (!buf) return LP_ENOMEM;
  gemm_bf16(trans_a != 0, trans_b != 0, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, buf);
  return LP_OK;
#else
  (void)alpha, (void)beta;
  return LP_EUNSUP;
#endif
}

void lp_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
             int lda, const float *B, int ldb, float beta, float *C, int ldc) {
  /* bf16 pays when the product is big enough for the packing (O(MK + KN))
   * and the per-call set-up to vanish against the O(MNK) arithmetic. tl_prec
   * is BF16 only after init_once has run. */
  if (tl_prec == LP_PREC_BF16 && alpha != 0.0f && (double)M * N * K >= g_min_macs &&
      lp_gemm_bf16(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc) == LP_OK)
    return;
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
              trans_b ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B, ldb, beta, C,
              ldc);
}
