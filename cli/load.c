/* A model and its domain, as synth, eval and demo load them (cli.h). */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cli_load_model(const char *verb, const char *domain, const char *dopts, const char *ckpt,
                   int threads, cli_loaded *L) {
  memset(L, 0, sizeof *L);
  lp_err e = {0};
  char *beside = dopts ? NULL : cli_resource_beside(ckpt);
  if (beside) dopts = beside;
  int rc = -1;
  L->d = lp_domain_open(domain, dopts, &e);
  if (!L->d) {
    cli_error(verb, "%s", e.msg);
    goto out;
  }
  if (lp_ckpt_domain_of(L->d, &L->dom, &e)) {
    char why[2 * 4096];
    if (!dopts)
      cli_error(verb, "%s (%s)", e.msg, cli_resource_missing(ckpt, why, sizeof why));
    else
      cli_error(verb, "%s (domain options: %s)", e.msg, dopts);
  } else if (lp_ckpt_load(ckpt, &L->dom, &L->m, NULL, NULL, NULL, &e)) {
    if (dopts && strstr(e.msg, "fingerprint mismatch"))
      cli_error(verb, "%s; the domain options %s%s are not those the model was trained with",
                e.msg, dopts, beside ? " (found beside the checkpoint)" : "");
    else
      cli_error(verb, "%s", e.msg);
  } else if (dopts && !(L->dopts = strdup(dopts))) {
    cli_error(verb, "out of memory");
  } else {
    rc = 0;
  }
  if (rc) {
    cli_unload(L);
    goto out;
  }
  if (threads > 0) lp_engine_set_threads(threads);
out:
  free(beside);
  return rc;
}

int cli_open_solver(const char *verb, const char *domain, const char *dopts, cli_loaded *L) {
  memset(L, 0, sizeof *L);
  lp_err e = {0};
  L->d = lp_domain_open(domain, dopts, &e);
  if (!L->d) {
    cli_error(verb, "%s", e.msg);
    return -1;
  }
  int rc = -1;
  if (!lp_domain_has(L->d, LP_CAP_SOLVE))
    cli_error(verb, "--model CKPT is required: domain %s has no exact solver to search without "
              "a model", lp_domain_name(L->d));
  else if (lp_ckpt_domain_of(L->d, &L->dom, &e))
    cli_error(verb, "%s", e.msg);
  else if (dopts && !(L->dopts = strdup(dopts)))
    cli_error(verb, "out of memory");
  else
    rc = 0;
  if (rc) cli_unload(L);
  return rc;
}

void cli_unload(cli_loaded *L) {
  lp_model_free(L->m);
  lp_domain_free(L->d);
  free(L->dopts);
  memset(L, 0, sizeof *L);
}

size_t cli_max_spec_len(const cli_loaded *L) {
  return L->m ? (size_t)lp_model_config(L->m)->max_spec_len : 0;
}

int cli_batch_task(const cli_loaded *L, const lp_enc_task *t, lp_batch *b, lp_err *e) {
  lp_task_ids ti = {0};
  ti.n_examples = t->n_examples;
  ti.spec = t->spec;
  ti.spec_len = t->spec_len;
  /* Latent RobustFill [AE]/[VAE] are given the true program length at
   * inference (as in the paper): the reference program goes into the batch */
  const int kind = lp_model_config(L->m)->kind;
  if ((kind == LP_MODEL_LATENT_AE || kind == LP_MODEL_LATENT_VAE) && t->has_prog) {
    ti.prog = t->prog.data;
    ti.prog_len = t->prog.len;
  }
  return lp_batch_fill(b, &ti, 1, (int)L->dom.n_parts, L->dom.spec.pad, L->dom.prog.pad,
                       lp_model_config(L->m), e);
}
