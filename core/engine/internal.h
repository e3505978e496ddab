/* Private helpers of the engine (not installed), and the ones core's model
 * library shares with it (model may include engine; see core/README.md):
 *  - the one set of early-return macros of core/ (LP_REQUIRE, LP_TRY,
 *    LP_TRY_MSG);
 *  - the one arena carver of core/ (lp_carve, lp_carve_take), defined in
 *    engine.c.
 * The model reaches this file as "engine/internal.h" (core/ is on its private
 * include path). */
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

/* Propagates a non-zero status from a function that has an `lp_err *err` in
 * scope, with a message naming the failed step: "<what> failed (out of
 * memory)" or "<what> failed (bad arguments)". The caller includes
 * lpsynth/runtime.h (lp_err_set). */
#define LP_TRY_MSG(expr, what)                                                \
  do {                                                                        \
    int lp_try_rc_ = (expr);                                                  \
    if (lp_try_rc_ != LP_OK)                                                  \
      return lp_err_set(err, lp_try_rc_, "%s failed (%s)", what,              \
                        lp_try_rc_ == LP_ENOMEM ? "out of memory" : "bad arguments"); \
  } while (0)

/* a*b*c... in size_t; 0 when any factor is < 1 or the product overflows. */
size_t lp_prod2(int a, int b);
size_t lp_prod3(int a, int b, int c);
size_t lp_prod4(int a, int b, int c, int d);

/* Dropout keep-mask: mask[i] = (u_i >= p) for uniforms u_i = k_i / 2^24, two
 * per 64-bit draw (high 24 bits first). Returns the number of elements kept. */
size_t lp_keep_mask(uint8_t *mask, size_t n, float p, lp_rng *rng);

/* Arena carver: typed arrays carved out of one block. Two passes over the
 * same sequence of takes: with base == NULL it only measures (c->used grows,
 * NULL is returned), then the caller allocates lp_carve_bytes(c) bytes
 * 64-byte aligned (aligned_alloc(64, n), n > 0), sets base, zeroes used and
 * takes again. Every piece starts on a 64-byte boundary of base. The block is
 * the caller's; the carver owns nothing. */
typedef struct lp_carve {
  char *base;
  size_t used;
} lp_carve;
void *lp_carve_take(lp_carve *c, size_t bytes);
/* The block size the measured takes need: c->used rounded up to a multiple of
 * 64 (what aligned_alloc(64, n) requires). */
static inline size_t lp_carve_bytes(const lp_carve *c) {
  return (c->used + 63u) & ~(size_t)63u;
}

#endif
