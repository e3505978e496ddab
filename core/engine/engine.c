/* Threads, the random number generator and small shared helpers. */
#include <math.h>
#include <pthread.h>
#include <stdint.h>

#include "internal.h"

/* From libopenblas (pthread build). */
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);

int lp_engine_set_threads(int n) {
  LP_REQUIRE(n >= 1);
  openblas_set_num_threads(n);
  return LP_OK;
}

int lp_engine_get_threads(void) { return openblas_get_num_threads(); }

/* ---- data-parallel workers ---------------------------------------------- */

typedef struct worker_arg {
  void (*fn)(void *ctx, int w);
  void *ctx;
  int w;
  lp_precision prec; /* the caller's: workers multiply as it does */
} worker_arg;

static void *worker_main(void *p) {
  worker_arg *a = p;
  lp_engine_set_precision(a->prec);
  a->fn(a->ctx, a->w);
  return NULL;
}

int lp_engine_parallel(int n, void (*fn)(void *ctx, int w), void *ctx) {
  LP_REQUIRE(n >= 1 && n <= LP_ENGINE_MAX_WORKERS && fn);
  if (n == 1) {
    fn(ctx, 0);
    return LP_OK;
  }
  /* One pool at a time: the workers' matrix products run on their own thread. */
  const int blas = lp_engine_get_threads();
  if (blas > 1) lp_engine_set_threads(1);
  pthread_t th[LP_ENGINE_MAX_WORKERS];
  worker_arg args[LP_ENGINE_MAX_WORKERS];
  int started[LP_ENGINE_MAX_WORKERS] = {0};
  for (int w = 1; w < n; w++) {
    args[w] = (worker_arg){fn, ctx, w, lp_engine_precision()};
    started[w] = pthread_create(&th[w], NULL, worker_main, &args[w]) == 0;
  }
  fn(ctx, 0);
  for (int w = 1; w < n; w++) {
    if (started[w])
      pthread_join(th[w], NULL);
    else
      fn(ctx, w); /* no thread to be had: run it here, same result */
  }
  if (blas > 1) lp_engine_set_threads(blas);
  return LP_OK;
}

/* ---- splitmix64 ---------------------------------------------------------- */

void lp_rng_seed(lp_rng *r, uint64_t seed) { r->state = seed; }

uint64_t lp_rng_next(lp_rng *r) {
  uint64_t z = (r->state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

float lp_rng_uniform(lp_rng *r) {
  return (float)(lp_rng_next(r) >> 40) * (1.0f / 16777216.0f);
}

float lp_rng_normal(lp_rng *r) {
  /* u1 in (0, 1], u2 in [0, 1) with 53 bits each. */
  double u1 = ((double)(lp_rng_next(r) >> 11) + 1.0) * (1.0 / 9007199254740992.0);
  double u2 = (double)(lp_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
  return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

size_t lp_keep_mask(uint8_t *mask, size_t n, float p, lp_rng *rng) {
  /* u >= p  <=>  k >= ceil(p * 2^24) for integer k */
  const uint64_t thr = (uint64_t)ceil((double)p * 16777216.0);
  size_t kept = 0, i = 0;
  for (; i + 1 < n; i += 2) {
    uint64_t z = lp_rng_next(rng);
    mask[i] = (z >> 40) >= thr;
    mask[i + 1] = ((z >> 8) & 0xFFFFFFu) >= thr;
    kept += (size_t)mask[i] + mask[i + 1];
  }
  if (i < n) {
    mask[i] = (lp_rng_next(rng) >> 40) >= thr;
    kept += mask[i];
  }
  return kept;
}

/* ---- sizes --------------------------------------------------------------- */

static size_t mul_checked(size_t a, size_t b) {
  if (a == 0 || b == 0) return 0;
  if (a > SIZE_MAX / b) return 0;
  return a * b;
}

size_t lp_prod2(int a, int b) {
  if (a < 1 || b < 1) return 0;
  return mul_checked((size_t)a, (size_t)b);
}

size_t lp_prod3(int a, int b, int c) {
  if (c < 1) return 0;
  return mul_checked(lp_prod2(a, b), (size_t)c);
}

size_t lp_prod4(int a, int b, int c, int d) {
  if (d < 1) return 0;
  return mul_checked(lp_prod3(a, b, c), (size_t)d);
}

void *lp_carve_take(lp_carve *c, size_t bytes) {
  size_t at = (c->used + 63u) & ~(size_t)63u;
  c->used = at + bytes;
  return c->base ? (void *)(c->base + at) : NULL;
}
