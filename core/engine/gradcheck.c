/* Finite-difference gradient checker (central differences, float32 inputs,
 * double comparison). */
#include <math.h>
#include <stdlib.h>

#include "internal.h"

void lp_gc_opts_default(lp_gc_opts *o) {
  o->eps = 3e-2f;
  o->tol = 1e-2;
  o->floor_frac = 1e-2;
  o->abs_floor = 1e-6;
  o->max_checks = 0;
  o->order = 4;
  o->seed = 1234;
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
}

void lp_gc_result_merge(lp_gc_result *acc, const lp_gc_result *r) {
  if (r->max_rel > acc->max_rel || acc->n_checked == 0) {
    acc->max_rel = r->max_rel;
    acc->worst = r->worst;
    acc->worst_analytic = r->worst_analytic;
    acc->worst_numeric = r->worst_numeric;
  }
  if (r->max_abs > acc->max_abs) acc->max_abs = r->max_abs;
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
  LP_REQUIRE(opt.eps > 0.0f && opt.tol > 0.0 && opt.floor_frac >= 0.0 && opt.abs_floor >= 0.0);
  LP_REQUIRE(opt.order == 2 || opt.order == 4);
  size_t k = n, stride = 1, start = 0;
  if (opt.max_checks > 0 && opt.max_checks < n) {
    k = opt.max_checks;
    stride = n / k;
    lp_rng r;
    lp_rng_seed(&r, opt.seed);
    start = (size_t)(lp_rng_next(&r) % stride);
  }
  double *num = malloc(sizeof(double) * k);
  if (!num) return LP_ENOMEM;
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
    }
    x[i] = save;
    nmax = fmax(nmax, fabs(num[j]));
  }
  double floor = opt.floor_frac * fmax(amax, nmax) + opt.abs_floor;
  lp_gc_result_init(res);
  for (size_t j = 0; j < k; j++) {
    size_t i = start + j * stride;
    double a = grad[i], nu = num[j];
    double err = fabs(a - nu);
    double rel = err / fmax(fmax(fabs(a), fabs(nu)), floor);
    if (!(rel <= opt.tol)) res->n_bad++; /* NaN counts as bad */
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
