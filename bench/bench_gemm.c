/* Micro-benchmark of the matrix products of the real RobustFill training step
 * (models/robustfill-string-1h.cfg: d_model 128, d_ff 512, 4 heads of 32,
 * program vocabulary ~100, N = 2000..12000 token rows): cblas_sgemm against
 * the bf16 kernel (lp_gemm_bf16, what lp_gemm runs in LP_PREC_BF16 above its
 * threshold), on ONE thread (the trainer runs one OpenBLAS thread per
 * data-parallel worker).
 *
 * usage: bench_gemm [--reps R] [--min-ms T] [--quick] [--sweep]
 *   each shape: R repetitions, alternating cblas / bf16, each timing enough
 *   calls to last >= T ms of wall time (default 7 and 60); prints the median
 *   GFLOP/s of each and their ratio, by the wall clock and by the thread's CPU
 *   clock (which leaves out the time the thread waited for a core on a shared
 *   machine), the kernel's largest error relative to
 *   sum_k |a_ik b_kj| (against the fp32 result), what lp_gemm chooses in bf16
 *   mode, and the load average before and after.
 *   --sweep: cubes n x n x n and the attention shapes, for the threshold.
 * Exits 0 with a note when the CPU has no AVX512_BF16 (nothing to compare). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>

#include "lpsynth/engine.h"

char *openblas_get_corename(void); /* libopenblas */

static double clock_s(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmpd(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void loadavg(char *out, size_t n) {
  FILE *f = fopen("/proc/loadavg", "r");
  out[0] = 0;
  if (!f) return;
  if (fgets(out, (int)n, f)) {
    char *sp = out;
    for (int i = 0; i < 3 && sp; i++) sp = strchr(sp + 1, ' ');
    if (sp) *sp = 0;
  }
  fclose(f);
}

typedef struct shape {
  const char *what;
  int ta, tb, M, N, K;
  int lda, ldb, ldc; /* 0: packed */
} shape;

static int g_reps = 7;
static double g_min_s = 0.06;
static float *g_a, *g_b, *g_c;

static void run_one(const shape *s, int bf16) {
  const int lda = s->lda ? s->lda : (s->ta ? s->M : s->K);
  const int ldb = s->ldb ? s->ldb : (s->tb ? s->K : s->N);
  const int ldc = s->ldc ? s->ldc : s->N;
  if (bf16)
    lp_gemm_bf16(s->ta, s->tb, s->M, s->N, s->K, 1.0f, g_a, lda, g_b, ldb, 0.0f, g_c, ldc);
  else
    cblas_sgemm(CblasRowMajor, s->ta ? CblasTrans : CblasNoTrans,
                s->tb ? CblasTrans : CblasNoTrans, s->M, s->N, s->K, 1.0f, g_a, lda, g_b, ldb,
                0.0f, g_c, ldc);
}

/* Seconds per call, wall clock and the thread's CPU clock: calls repeated
 * until g_min_s of wall time has passed. */
static void time_calls(const shape *s, int bf16, double *wall, double *cpu) {
  int n = 1;
  for (;;) {
    double t0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
    for (int i = 0; i < n; i++) run_one(s, bf16);
    double dt = clock_s(CLOCK_MONOTONIC) - t0, dc = clock_s(CLOCK_THREAD_CPUTIME_ID) - c0;
    if (dt >= g_min_s) {
      *wall = dt / n;
      *cpu = dc / n;
      return;
    }
    n = dt <= 0 ? n * 16 : (int)(n * (g_min_s * 1.3 / dt)) + 1;
  }
}

/* max_ij |bf16 - fp32| / sum_k |a_ik b_kj| */
static double rel_err(const shape *s) {
  const int lda = s->lda ? s->lda : (s->ta ? s->M : s->K);
  const int ldb = s->ldb ? s->ldb : (s->tb ? s->K : s->N);
  const int ldc = s->ldc ? s->ldc : s->N;
  const size_t nc = (size_t)s->M * ldc;
  float *ref = malloc(sizeof(float) * nc);
  if (!ref) return -1;
  run_one(s, 0);
  memcpy(ref, g_c, sizeof(float) * nc);
  run_one(s, 1);
  double worst = 0;
  for (int i = 0; i < s->M; i += 7)
    for (int j = 0; j < s->N; j++) {
      double mag = 0;
      for (int k = 0; k < s->K; k++) {
        double a = s->ta ? g_a[(size_t)k * lda + i] : g_a[(size_t)i * lda + k];
        double b = s->tb ? g_b[(size_t)j * ldb + k] : g_b[(size_t)k * ldb + j];
        mag += fabs(a * b);
      }
      double e = fabs((double)g_c[(size_t)i * ldc + j] - ref[(size_t)i * ldc + j]);
      if (mag > 0 && e / mag > worst) worst = e / mag;
    }
  free(ref);
  return worst;
}

static double median(double *x, int n) {
  qsort(x, (size_t)n, sizeof(double), cmpd);
  return n % 2 ? x[n / 2] : 0.5 * (x[n / 2 - 1] + x[n / 2]);
}

static void bench(const shape *s) {
  double *t = malloc(sizeof(double) * (size_t)g_reps * 4);
  if (!t) return;
  double *cw = t, *bw = t + g_reps, *cc = t + 2 * g_reps, *bc = t + 3 * g_reps;
  run_one(s, 0); /* warm the caches and the packing buffer */
  run_one(s, 1);
  for (int r = 0; r < g_reps; r++) {
    if (r % 2 == 0) {
      time_calls(s, 0, &cw[r], &cc[r]);
      time_calls(s, 1, &bw[r], &bc[r]);
    } else {
      time_calls(s, 1, &bw[r], &bc[r]);
      time_calls(s, 0, &cw[r], &cc[r]);
    }
  }
  const double gf = 2.0 * s->M * s->N * s->K * 1e-9;
  const double gcw = gf / median(cw, g_reps), gbw = gf / median(bw, g_reps);
  const double gcc = gf / median(cc, g_reps), gbc = gf / median(bc, g_reps);
  const double macs = (double)s->M * s->N * s->K;
  const char *uses = macs >= lp_gemm_bf16_min_macs() ? "bf16" : "fp32";
  char dims[64];
  snprintf(dims, sizeof dims, "%s%s %dx%dx%d", s->ta ? "T" : "N", s->tb ? "T" : "N", s->M,
           s->N, s->K);
  printf("| %-24s | %-17s | %6.1f | %6.1f | %5.2fx | %6.1f | %6.1f | %5.2fx | %7.1e | %s |\n",
         s->what, dims, gcw, gbw, gbw / gcw, gcc, gbc, gbc / gcc, rel_err(s), uses);
  fflush(stdout);
  free(t);
}

static void header(void) {
  printf("| product | op M x N x K | cblas GFLOP/s | bf16 GFLOP/s | ratio | cblas (cpu) | "
         "bf16 (cpu) | ratio (cpu) | max err / sum|ab| | lp_gemm in bf16 mode |\n");
  printf("|---|---|---:|---:|---:|---:|---:|---:|---:|---|\n");
}

int main(int argc, char **argv) {
  int quick = 0, sweep = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--reps") && i + 1 < argc)
      g_reps = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--min-ms") && i + 1 < argc)
      g_min_s = atof(argv[++i]) * 1e-3;
    else if (!strcmp(argv[i], "--quick"))
      quick = 1;
    else if (!strcmp(argv[i], "--sweep"))
      sweep = 1;
    else {
      fprintf(stderr, "usage: bench_gemm [--reps R] [--min-ms T] [--quick] [--sweep]\n");
      return 2;
    }
  }
  if (g_reps < 1) g_reps = 1;
  lp_engine_set_threads(1);
  if (!lp_engine_has_bf16()) {
    printf("bench_gemm: this CPU has no AVX512_BF16 (or LPSYNTH_PRECISION=fp32): lp_gemm "
           "is cblas_sgemm here, nothing to compare\n");
    return 0;
  }
  const size_t big = (size_t)12000 * 512 + 4096;
  g_a = malloc(sizeof(float) * big);
  g_b = malloc(sizeof(float) * big);
  g_c = malloc(sizeof(float) * big);
  if (!g_a || !g_b || !g_c) return 1;
  lp_rng r;
  lp_rng_seed(&r, 1);
  for (size_t i = 0; i < big; i++) {
    g_a[i] = lp_rng_normal(&r);
    g_b[i] = lp_rng_normal(&r);
    g_c[i] = 0.0f;
  }
  char la[64];
  loadavg(la, sizeof la);
  printf("bench_gemm: 1 thread, %d reps alternating, >= %.0f ms each, medians; OpenBLAS "
         "core %s; lp_gemm runs bf16 from %.0f multiply-adds; load average before: %s\n\n",
         g_reps, g_min_s * 1e3, openblas_get_corename(), lp_gemm_bf16_min_macs(), la);
  header();
  if (sweep) {
    static const int ns[] = {8, 16, 24, 32, 48, 64, 96, 128, 192, 256};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
      shape s = {"cube", 0, 0, ns[i], ns[i], ns[i], 0, 0, 0};
      bench(&s);
    }
    static const int ts[] = {20, 40, 60, 80, 100};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) {
      const int T = ts[i];
      shape s1 = {"attn S = Q K^T", 0, 1, T, T, 32, 128, 128, 0};
      shape s2 = {"attn O = P V", 0, 0, T, 32, T, 0, 128, 128};
      shape s3 = {"attn dV = P^T dO", 1, 0, T, 32, T, 0, 128, 128};
      bench(&s1);
      bench(&s2);
      bench(&s3);
    }
  } else {
    static const int rows[] = {2000, 6000, 12000};
    const int nrows = quick ? 1 : 3;
    for (int i = 0; i < nrows; i++) {
      const int N = rows[quick ? 1 : i];
      const shape ss[] = {
          {"fwd x W1 (FFN in)", 0, 0, N, 512, 128, 0, 0, 0},
          {"fwd h W2 (FFN out)", 0, 0, N, 128, 512, 0, 0, 0},
          {"fwd x Wq (projection)", 0, 0, N, 128, 128, 0, 0, 0},
          {"fwd x Wout (vocab 100)", 0, 0, N, 100, 128, 0, 0, 0},
          {"dX = dY W1^T", 0, 1, N, 128, 512, 0, 0, 0},
          {"dX = dY W2^T", 0, 1, N, 512, 128, 0, 0, 0},
          {"dX = dY Wq^T", 0, 1, N, 128, 128, 0, 0, 0},
          {"dW1 = X^T dY", 1, 0, 128, 512, N, 0, 0, 0},
          {"dW2 = H^T dY", 1, 0, 512, 128, N, 0, 0, 0},
          {"dWq = X^T dY", 1, 0, 128, 128, N, 0, 0, 0},
      };
      for (size_t j = 0; j < sizeof ss / sizeof ss[0]; j++) bench(&ss[j]);
    }
    static const int ts[] = {20, 60, 100};
    for (size_t i = 0; i < (quick ? 1u : sizeof ts / sizeof ts[0]); i++) {
      const int T = ts[quick ? 1 : i];
      const shape ss[] = {
          {"attn S = Q K^T (head)", 0, 1, T, T, 32, 128, 128, 0},
          {"attn O = P V", 0, 0, T, 32, T, 0, 128, 128},
          {"attn dV = P^T dO", 1, 0, T, 32, T, 0, 128, 128},
          {"attn dQ = dS K", 0, 0, T, 32, T, 0, 128, 128},
      };
      for (size_t j = 0; j < sizeof ss / sizeof ss[0]; j++) bench(&ss[j]);
    }
  }
  loadavg(la, sizeof la);
  printf("\nload average after: %s\n", la);
  free(g_a);
  free(g_b);
  free(g_c);
  lp_gemm_release();
  return 0;
}
