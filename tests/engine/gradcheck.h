/* Test-only part of the engine: the finite-difference gradient checker
 * (gradcheck.c) and the op table (optable.c), built as the static library
 * lpsynth_engine_testkit for the tests that need them (tests/engine,
 * tests/model). Not installed and not part of lpsynth_engine: the engine's
 * public API is include/lpsynth/engine.h.
 *
 * OWNERSHIP: as engine.h (lp_op_desc entries and the table are static and
 * live for the whole program; every buffer passed in is the caller's).
 * ERRORS: LP_OK / LP_EINVAL / LP_ENOMEM as engine.h; nothing prints. */
#ifndef LPSYNTH_TESTS_GRADCHECK_H
#define LPSYNTH_TESTS_GRADCHECK_H

#include <stddef.h>
#include <stdint.h>

#include "lpsynth/engine.h"

/* ------------------------------------------------------------------------ */
/* Finite-difference gradient check                                          */

/* Loss of the current inputs, in double. Called many times; must be a
 * deterministic function of the perturbed array (reseed any rng inside). */
typedef double (*lp_gc_loss_fn)(void *ctx);

typedef struct lp_gc_opts {
  float eps;         /* central-difference step h (default 3e-2) */
  double tol;        /* max allowed relative error (default 1e-2) */
  double floor_frac; /* element i passes when
                          |a_i - n_i| <= tol * max(|a_i|, |n_i|, floor) + noise_i,
                        floor = floor_frac * max_j max(|a_j|, |n_j|) + abs_floor
                        (default 1e-2), and noise_i the rounding allowance of
                        the finite difference (noise_ulps); its relative error
                        is |a_i - n_i| / (max(|a_i|, |n_i|, floor) + noise_i / tol),
                        so it passes when that is <= tol */
  double abs_floor;  /* default 1e-6 */
  size_t max_checks; /* check at most this many elements, spread evenly with a
                        random start (0 = all; default 0) */
  int order;         /* 2: D(h) = (f(x+h) - f(x-h)) / 2h, error O(h^2);
                        4: Richardson (4 D(h) - D(2h)) / 3, error O(h^4)
                        (default), twice the evaluations. With float32
                        forwards a larger h lowers the rounding noise
                        (~ulp(f)/2h); order 4 keeps the truncation small. */
  uint64_t seed;     /* for the random start and for op cases' inputs */
  double noise_ulps; /* rounding error assumed in one float32 evaluation of the
                        loss, in units of FLT_EPSILON * |f| (default 2). The
                        difference quotient of element i then carries up to
                        noise_i = sum_k |c_k| * noise_ulps * FLT_EPSILON * F_i,
                        where c_k are the weights of the evaluations f(x +- h),
                        f(x +- 2h) in the estimate (1 / 2h each for order 2;
                        4/3 of 1 / 2h and 1/3 of 1 / 4h for order 4) and F_i the
                        largest |f| among them: what float32 arithmetic cannot
                        resolve, whatever the gradient (0: no allowance) */
} lp_gc_opts;

typedef struct lp_gc_result {
  double max_rel;       /* worst relative error (definition above) */
  double max_abs;       /* worst |analytic - numeric| */
  size_t n_checked;
  size_t n_bad;         /* elements whose relative error > tol */
  size_t worst;         /* index of the worst element */
  double worst_analytic, worst_numeric;
  int ok;               /* n_bad == 0 */
  double max_noise;     /* largest rounding allowance noise_i used */
  size_t n_unresolved;  /* elements whose |a_i| and |n_i| are both below
                           noise_i / tol: float32 cannot tell their gradient
                           from zero at this step, so they are only checked to
                           be that small */
} lp_gc_result;

void lp_gc_opts_default(lp_gc_opts *o);
/* Empty result (ok = 1) to merge into. */
void lp_gc_result_init(lp_gc_result *r);
/* acc := worst of acc and r. */
void lp_gc_result_merge(lp_gc_result *acc, const lp_gc_result *r);

/* Compares grad[n] (the analytic gradient of f with respect to x[n]) with
 * central differences (f(x + eps e_i) - f(x - eps e_i)) / 2 eps (opts->order).
 * x is
 * perturbed in place and restored. o NULL: defaults. *res gets the outcome.
 * Returns LP_OK (whether or not the check passed: see res->ok), LP_EINVAL or
 * LP_ENOMEM. */
int lp_gradcheck(lp_gc_loss_fn f, void *ctx, float *x, const float *grad, size_t n,
                 const lp_gc_opts *o, lp_gc_result *res);

/* ------------------------------------------------------------------------ */
/* Op table: every op of the engine, its forward/backward functions and a    */
/* finite-difference case that checks backward against forward on small      */
/* random inputs (loss = sum(w * out) for a random w, backward fed dy = w,   */
/* gradients pre-filled with noise to check that backward accumulates).     */

typedef struct lp_op_desc {
  const char *name;     /* "linear", "attention_causal", "encoder_block", ... */
  const char *forward;  /* C name of the forward function */
  const char *backward; /* C name of the backward function */
  const char *shapes;   /* one-line shape summary */
  /* Runs the op's gradient check with opts (NULL: defaults; opts->seed picks
   * the inputs). LP_OK (see res->ok), LP_ENOMEM, or another error of the op. */
  int (*gradcheck)(const lp_gc_opts *opts, lp_gc_result *res);
} lp_op_desc;

/* The table (static; *n_ops gets its length). */
const lp_op_desc *lp_ops(size_t *n_ops);
/* The entry named `name`, or NULL. */
const lp_op_desc *lp_op_find(const char *name);

#endif /* LPSYNTH_TESTS_GRADCHECK_H */
