/* Private helpers of the engine (not installed). */
#ifndef LPSYNTH_ENGINE_INTERNAL_H
#define LPSYNTH_ENGINE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "lpsynth/engine.h"

/* Returns LP_EINVAL from the calling function when cond is false. */
#define LP_REQUIRE(cond)      \
  do {                        \
    if (!(cond)) {            \
      return LP_EINVAL;       \
    }                         \
  } while (0)

/* Propagates a non-zero status. */
#define LP_TRY(expr)          \
  do {                        \
    int lp_try_rc_ = (expr);  \
    if (lp_try_rc_ != LP_OK) { \
      return lp_try_rc_;      \
    }                         \
  } while (0)

/* a*b*c... in size_t; 0 when any factor is < 1 or the product overflows. */
size_t lp_prod2(int a, int b);
size_t lp_prod3(int a, int b, int c);
size_t lp_prod4(int a, int b, int c, int d);

/* Dropout keep-mask: mask[i] = (u_i >= p) for uniforms u_i = k_i / 2^24, two
 * per 64-bit draw (high 24 bits first). Returns the number of elements kept. */
size_t lp_keep_mask(uint8_t *mask, size_t n, float p, lp_rng *rng);

/* Bump allocator carving typed arrays out of one malloc'ed block (64-byte
 * aligned pieces). Two passes: with base == NULL it only measures. */
typedef struct lp_carve {
  char *base;
  size_t used;
} lp_carve;
void *lp_carve_take(lp_carve *c, size_t bytes);

#endif
