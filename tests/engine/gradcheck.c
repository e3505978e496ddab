/* Finite-difference gradient checker (central differences, float32 inputs,
 * double comparison).
 *
 * The loss is computed in float32, so each evaluation carries a rounding
 * error of a few ulps of |f|; divided by the step it becomes the noise of the
 * difference quotient (about 1e-5 for a loss of 14 at h = 5e-2). Comparing
 * only relatively, a gradient of that size fails on rounding alone - and on
 * some machines only (OpenBLAS kernels sum in different orders). Each element
 * therefore gets an absolute allowance noise_i derived from FLT_EPSILON and
 * the loss values it was estimated from, on top of the relative tolerance:
 *   |a_i - n_i| <= tol * max(|a_i|, |n_i|, floor) + noise_i.
 * A gradient that float32 can resolve (|a_i| well above noise_i / tol) is still
 * held to tol; test_engine's detects_bugs and rounding cases check both. */
#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "engine/internal.h" /* LP_TRY, LP_REQUIRE */
#include "gradcheck.h"

void lp_gc_opts_default(lp_gc_opts *o) {
  o->eps = 3e-2f;
  o->tol = 1e-2;
  o->floor_frac = 1e-2;
  o->abs_floor = 1e-6;
  o->max_checks = 0;
  o->order = 4;
  o->seed = 1234;
  o->noise_ulps = 2.0;
}

void lp_gc_result_init(lp_gc_result *r) {
  r->max_rel = 0.0;
  r->max_abs = 0.0;
  r->n_checked = 0;
  r->n_bad = 0;
  r->worst = 0;
  r->worst_analytic = 0.0;
  r->worst_numeric = 0.0;
  r->ok = 1;
  r->max_noise = 0.0;
  r->n_unresolved = 0;
}

void lp_gc_result_merge(lp_gc_result *acc, const lp_gc_result *r) {
  if (r->max_rel > acc->max_rel || acc->n_checked == 0) {
    acc->max_rel = r->max_rel;
    acc->worst = r->worst;
    acc->worst_analytic = r->worst_analytic;
    acc->worst_numeric = r->worst_numeric;
  }
  if (r->max_abs > acc->max_abs) acc->max_abs = r->max_abs;
  if (r->max_noise > acc->max_noise) acc->max_noise = r->max_noise;
  acc->n_unresolved += r->n_unresolved;
  acc->n_checked += r->n_checked;
  acc->n_bad += r->n_bad;
  acc->ok = acc->ok && r->ok;
}

int lp_gradcheck(lp_gc_loss_fn f, void *ctx, float *x, const float *grad, size_t n,
                 const lp_gc_opts *o, lp_gc_result *res) {
  LP_REQUIRE(f && x && grad && res && n > 0);
  lp_gc_opts opt;
  if (o)
    opt = *o;
  else
    lp_gc_opts_default(&opt);
  LP_REQUIRE(opt.eps > 0.0f && opt.tol > 0.0 && opt.floor_frac >= 0.0 && opt.abs_floor >= 0.0 &&
             opt.noise_ulps >= 0.0);
  LP_REQUIRE(opt.order == 2 || opt.order == 4);
  size_t k = n, stride = 1, start = 0;
  if (opt.max_checks > 0 && opt.max_checks < n) {
    k = opt.max_checks;
    stride = n / k;
    lp_rng r;
    lp_rng_seed(&r, opt.seed);
    start = (size_t)(lp_rng_next(&r) % stride);
  }
  double *num = malloc(sizeof(double) * 2 * k), *noise = num ? num + k : NULL;
  if (!num) return LP_ENOMEM;
  /* one evaluation's rounding error, per unit of |f| */
  const double u = opt.noise_ulps * (double)FLT_EPSILON;
  double amax = 0.0, nmax = 0.0;
  for (size_t i = 0; i < n; i++) amax = fmax(amax, fabs((double)grad[i]));
  for (size_t j = 0; j < k; j++) {
    size_t i = start + j * stride;
    float save = x[i];
    float xp = save + opt.eps, xm = save - opt.eps;
    x[i] = xp;
    double fp = f(ctx);
    x[i] = xm;
    double fm = f(ctx);
    num[j] = (fp - fm) / ((double)xp - (double)xm);
    double fs = fmax(fabs(fp), fabs(fm));
    /* |error of D(h)| <= (u |f(x+h)| + u |f(x-h)|) / 2h <= 2 u F / 2h */
    double w1 = 2.0 / ((double)xp - (double)xm), wsum = w1;
    if (opt.order == 4) {
      /* Richardson: D(h) = (f(x+h) - f(x-h)) / 2h has error c h^2 + O(h^4),
       * so (4 D(h) - D(2h)) / 3 is O(h^4). */
      float xp2 = save + 2.0f * opt.eps, xm2 = save - 2.0f * opt.eps;
      x[i] = xp2;
      double fp2 = f(ctx);
      x[i] = xm2;
      double fm2 = f(ctx);
      double num2 = (fp2 - fm2) / ((double)xp2 - (double)xm2);
      num[j] = (4.0 * num[j] - num2) / 3.0;
      fs = fmax(fs, fmax(fabs(fp2), fabs(fm2)));
      wsum = (4.0 * w1 + 2.0 / ((double)xp2 - (double)xm2)) / 3.0;
    }
    noise[j] = isfinite(fs) ? wsum * u * fs : 0.0;
    x[i] = save;
    nmax = fmax(nmax, fabs(num[j]));
  }
  double floor = opt.floor_frac * fmax(amax, nmax) + opt.abs_floor;
  lp_gc_result_init(res);
  for (size_t j = 0; j < k; j++) {
    size_t i = start + j * stride;
    double a = grad[i], nu = num[j];
    double err = fabs(a - nu), big = fmax(fabs(a), fabs(nu));
    double rel = err / (fmax(big, floor) + noise[j] / opt.tol);
    if (!(rel <= opt.tol)) res->n_bad++; /* NaN counts as bad */
    if (noise[j] > res->max_noise) res->max_noise = noise[j];
    if (opt.tol * big < noise[j]) res->n_unresolved++;
    if (!(rel <= res->max_rel) || j == 0) {
      res->max_rel = isnan(rel) ? INFINITY : rel;
      res->worst = i;
      res->worst_analytic = a;
      res->worst_numeric = nu;
    }
    if (err > res->max_abs || isnan(err)) res->max_abs = isnan(err) ? INFINITY : err;
  }
  res->n_checked = k;
  res->ok = res->n_bad == 0;
  free(num);
  return LP_OK;
}
