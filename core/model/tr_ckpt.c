/* Checkpoints of models: lp_ckpt_save / lp_ckpt_load (the glue between the
 * file format of checkpoint.c and lp_model / lp_adam). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lpsynth/checkpoint.h"

int lp_ckpt_save(const char *path, lp_model *m, lp_adam *opt, const lp_ckpt_domain *dom,
                 const lp_train_pos *pos, const char *metadata, lp_err *err) {
  if (!path || !m || !dom || !pos)
    return lp_err_set(err, LP_EINVAL, "checkpoint save: NULL argument");
  lp_buf conf = {0};
  if (lp_model_cfg_to_text(lp_model_config(m), &conf))
    return lp_err_set(err, LP_ENOMEM, "%s: out of memory", path);
  lp_ckpt c;
  memset(&c, 0, sizeof c);
  c.version = LP_CKPT_VERSION;
  c.config_text = conf.data;
  c.domain = *dom;
  c.layout = (lp_layout *)lp_model_layout(m);
  c.pos = *pos;
  c.n_params = lp_model_num_params(m);
  c.params = lp_model_params(m);
  if (opt) {
    if (lp_adam_size(opt) != c.n_params) {
      lp_buf_free(&conf);
      return lp_err_set(err, LP_EINVAL, "%s: optimiser has %zu values for %zu parameters", path,
                        lp_adam_size(opt), c.n_params);
    }
    c.adam_t = lp_adam_t(opt);
    c.n_adam = c.n_params;
    c.adam_m = lp_adam_m(opt);
    c.adam_v = lp_adam_v(opt);
  }
  c.state = lp_model_state(m, &c.n_state);
  if (!c.state) c.n_state = 0;
  c.metadata = (char *)(metadata ? metadata : "");
  int rc = lp_ckpt_write(path, &c, err);
  lp_buf_free(&conf);
  return rc;
}

/* What lp_ckpt_load checks before it copies any array, shared with
 * lp_ckpt_check_model (so that `ckpt info` accepts exactly what synth, eval
 * and --resume load): the domain (dom; NULL: the checkpoint's own record),
 * the stored config, the model that config makes for the domain, and that
 * model's layout, parameter count and state size against the file's. On
 * success *out (may be NULL: freed here) gets the model, *cfg its config. */
static int check_and_build(const lp_ckpt *c, const char *path, const lp_ckpt_domain *dom,
                           lp_model_cfg *cfg, lp_model **out, lp_err *err) {
  if (out) *out = NULL;
  int rc = LP_OK;
  if (dom) {
    rc = lp_ckpt_check_domain(c, path, dom, err);
    if (rc) return rc;
  } else {
    dom = &c->domain;
  }
  if (!c->config_text || !c->layout)
    return lp_err_set(err, LP_EINVAL, "%s: checkpoint has no config or layout", path);
  lp_model_cfg_default(cfg, LP_MODEL_ROBUSTFILL);
  char origin[1024];
  snprintf(origin, sizeof origin, "%s (stored config)", path);
  rc = lp_model_cfg_parse(cfg, c->config_text, strlen(c->config_text), origin, err);
  if (rc) return rc;
  lp_model *m = lp_model_new(cfg, &dom->spec, &dom->prog, (int)dom->n_parts, c->pos.init_seed,
                             err);
  if (!m) {
    rc = err && err->code ? err->code : LP_EINVAL;
    lp_err_prefix(err, "%s: cannot build the stored model", path);
    return rc;
  }
  rc = lp_ckpt_check_layout(c->layout, lp_model_layout(m), path, err);
  if (rc == LP_OK && lp_model_num_params(m) != c->n_params)
    rc = lp_err_set(err, LP_EINVAL, "%s: %zu parameters, this build's model has %zu", path,
                    c->n_params, lp_model_num_params(m));
  if (rc == LP_OK) {
    size_t ns = 0;
    if (!lp_model_state(m, &ns)) ns = 0;
    if (ns != c->n_state)
      rc = lp_err_set(err, LP_EINVAL,
                      "%s: %zu values of model state, this build's model has %zu", path,
                      c->n_state, ns);
  }
  if (rc == LP_OK && c->n_adam != 0 && c->n_adam != c->n_params)
    rc = lp_err_set(err, LP_EINVAL, "%s: optimiser state of %zu values for %zu parameters", path,
                    c->n_adam, c->n_params);
  if (rc || !out) {
    lp_model_free(m);
    return rc;
  }
  *out = m;
  return LP_OK;
}

int lp_ckpt_check_model(const lp_ckpt *c, const char *origin, const lp_ckpt_domain *dom,
                        lp_err *err) {
  if (!c) return lp_err_set(err, LP_EINVAL, "checkpoint check: NULL argument");
  if (!origin) origin = "<checkpoint>";
  lp_model_cfg cfg;
  return check_and_build(c, origin, dom, &cfg, NULL, err);
}

int lp_ckpt_load(const char *path, const lp_ckpt_domain *dom, lp_model **model, lp_adam **opt,
                 lp_train_pos *pos, char **metadata, lp_err *err) {
  if (model) *model = NULL;
  if (opt) *opt = NULL;
  if (metadata) *metadata = NULL;
  if (!path || !dom || !model) return lp_err_set(err, LP_EINVAL, "checkpoint load: NULL argument");
  lp_ckpt c;
  int rc = lp_ckpt_read(path, 0, &c, err);
  if (rc) return rc;
  lp_model *m = NULL;
  lp_adam *a = NULL;
  char *meta = NULL;
  lp_model_cfg cfg;
  rc = check_and_build(&c, path, dom, &cfg, &m, err);
  if (rc) goto fail;
  memcpy(lp_model_params(m), c.params, c.n_params * sizeof(float));
  size_t ns = 0;
  float *st = lp_model_state(m, &ns);
  if (st && ns) memcpy(st, c.state, ns * sizeof(float));
  if (opt) {
    lp_adam_cfg ac = {cfg.beta1, cfg.beta2, cfg.adam_eps, cfg.weight_decay};
    a = lp_adam_new(c.n_params, &ac);
    if (!a) {
      rc = lp_err_set(err, LP_ENOMEM, "%s: cannot create the optimiser", path);
      goto fail;
    }
    if (c.n_adam) {
      memcpy(lp_adam_m(a), c.adam_m, c.n_adam * sizeof(float));
      memcpy(lp_adam_v(a), c.adam_v, c.n_adam * sizeof(float));
      lp_adam_set_t(a, c.adam_t);
    }
  }
  if (metadata) {
    meta = c.metadata;
    c.metadata = NULL;
  }
  if (pos) *pos = c.pos;
  lp_ckpt_free(&c);
  *model = m;
  if (opt) *opt = a;
  if (metadata) *metadata = meta;
  return LP_OK;
fail:
  lp_model_free(m);
  lp_adam_free(a);
  free(meta);
  lp_ckpt_free(&c);
  return rc;
}
