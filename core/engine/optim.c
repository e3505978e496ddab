/* Adam with decoupled weight decay, the warm-up / inverse-square-root
 * learning-rate schedule, and global gradient-norm clipping. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct lp_adam {
  lp_adam_cfg cfg;
  size_t n;
  int64_t t;
  float *m, *v;
};

void lp_adam_cfg_default(lp_adam_cfg *c) {
  c->beta1 = 0.9f;
  c->beta2 = 0.98f;
  c->eps = 1e-9f;
  c->weight_decay = 0.1f;
}

static int cfg_ok(const lp_adam_cfg *c) {
  return c->beta1 >= 0.0f && c->beta1 < 1.0f && c->beta2 >= 0.0f && c->beta2 < 1.0f &&
         c->eps >= 0.0f && c->weight_decay >= 0.0f && isfinite(c->eps) &&
         isfinite(c->weight_decay);
}

lp_adam *lp_adam_new(size_t n, const lp_adam_cfg *cfg) {
  lp_adam_cfg c;
  if (cfg)
    c = *cfg;
  else
    lp_adam_cfg_default(&c);
  if (!cfg_ok(&c) || n > SIZE_MAX / (2 * sizeof(float))) return NULL;
  lp_adam *o = calloc(1, sizeof(*o));
  if (!o) return NULL;
  o->cfg = c;
  o->n = n;
  o->m = calloc(n ? n : 1, sizeof(float));
  o->v = calloc(n ? n : 1, sizeof(float));
  if (!o->m || !o->v) {
    lp_adam_free(o);
    return NULL;
  }
  return o;
}

void lp_adam_free(lp_adam *opt) {
  if (!opt) return;
  free(opt->m);
  free(opt->v);
  free(opt);
}

int lp_adam_step(lp_adam *opt, float *params, const float *grads, float lr,
                 const uint8_t *decay_mask) {
  LP_REQUIRE(opt && (opt->n == 0 || (params && grads)) && isfinite(lr) && lr >= 0.0f);
  const float b1 = opt->cfg.beta1, b2 = opt->cfg.beta2, eps = opt->cfg.eps;
  const float wd = opt->cfg.weight_decay;
  opt->t += 1;
  const float c1 = (float)(1.0 / (1.0 - pow((double)b1, (double)opt->t)));
  const float c2 = (float)(1.0 / (1.0 - pow((double)b2, (double)opt->t)));
  float *m = opt->m, *v = opt->v;
  for (size_t i = 0; i < opt->n; i++) {
    float g = grads[i];
    m[i] = b1 * m[i] + (1.0f - b1) * g;
    v[i] = b2 * v[i] + (1.0f - b2) * g * g;
    float upd = (m[i] * c1) / (sqrtf(v[i] * c2) + eps);
    if (wd != 0.0f && (!decay_mask || decay_mask[i])) upd += wd * params[i];
    params[i] -= lr * upd;
  }
  return LP_OK;
}

size_t lp_adam_size(const lp_adam *opt) { return opt ? opt->n : 0; }
int64_t lp_adam_t(const lp_adam *opt) { return opt ? opt->t : 0; }
void lp_adam_set_t(lp_adam *opt, int64_t t) {
  if (opt) opt->t = t < 0 ? 0 : t;
}
float *lp_adam_m(lp_adam *opt) { return opt ? opt->m : NULL; }
float *lp_adam_v(lp_adam *opt) { return opt ? opt->v : NULL; }
const lp_adam_cfg *lp_adam_config(const lp_adam *opt) { return opt ? &opt->cfg : NULL; }

float lp_lr_at(const lp_lr_schedule *s, int64_t step) {
  if (!s) return 0.0f;
  double st = step < 0 ? 0.0 : (double)step;
  if (s->warmup_steps <= 0) return (float)(s->base_lr / sqrt(st > 1.0 ? st : 1.0));
  double w = (double)s->warmup_steps;
  double warm = st < w ? st / w : 1.0;
  double decay = sqrt(w / (st > w ? st : w));
  return (float)(s->base_lr * warm * decay);
}

double lp_grad_norm(const float *g, size_t n) {
  if (!g) return 0.0;
  double s = 0.0;
  for (size_t i = 0; i < n; i++) s += (double)g[i] * g[i];
  return sqrt(s);
}

int lp_grad_clip(float *g, size_t n, float max_norm, double *norm_out) {
  LP_REQUIRE((g || n == 0) && max_norm > 0.0f && isfinite(max_norm));
  double norm = lp_grad_norm(g, n);
  if (norm_out) *norm_out = norm;
  if (norm > (double)max_norm) {
    float s = (float)((double)max_norm / norm);
    for (size_t i = 0; i < n; i++) g[i] *= s;
  }
  return LP_OK;
}
