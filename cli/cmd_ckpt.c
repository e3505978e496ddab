/* lpsynth ckpt info (verify a checkpoint and print what it holds) and ckpt
 * strip (the checkpoint without its optimiser state). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const cli_verb_spec info_verb = {
    CLI_CKPT_INFO, "ckpt info", "CKPT",
    "Verifies a checkpoint as synth, eval and train --resume load it - the file\n"
    "(magic, format version, length, CRC-32C, every section), its domain's plugin\n"
    "and vocabularies (the fingerprint), the stored config, and the model that\n"
    "config makes against the stored tensor layout - and prints its domain, step,\n"
    "training position, model config and metadata. Exit status 1 when it would\n"
    "not load. The domain's options are --domain-options, else the domain resource\n"
    "beside the checkpoint, if any, as synth and eval find it.",
    NULL};

static const cli_verb_spec strip_verb = {
    CLI_CKPT_STRIP, "ckpt strip", "IN.ckpt OUT.ckpt",
    "Writes IN without its Adam moments (OUT is about a third of the size): a\n"
    "model for synth and eval, with its config, domain fingerprint, parameters,\n"
    "model state, training position and metadata. Training cannot resume from\n"
    "it (`train --resume` refuses). OUT is written atomically; it may equal IN.\n"
    "\n"
    "With --half, the parameters are stored in 16 bits (about a sixth of the full\n"
    "checkpoint, half of the stripped one); everything else - the model state\n"
    "(an LP's codebook), config, layout, position, statistics, metadata - stays\n"
    "exactly as it was. A checkpoint stripped with --half keeps its storage when\n"
    "stripped again; another --half is refused (strip the full checkpoint).",
    NULL};

/* ---------- info ---------- */

static json_t *config_json(const char *text) {
  json_t *o = json_object();
  const char *p = text;
  while (*p) {
    const char *nl = strchr(p, '\n');
    size_t n = nl ? (size_t)(nl - p) : strlen(p);
    char line[256];
    if (n < sizeof line) {
      memcpy(line, p, n);
      line[n] = 0;
      char *eq = strstr(line, " = ");
      if (eq) {
        *eq = 0;
        const char *v = eq + 3;
        char *end;
        long long ll = strtoll(v, &end, 10);
        if (*v && !*end) {
          json_object_set_new(o, line, json_integer(ll));
        } else {
          double dv = strtod(v, &end);
          json_object_set_new(o, line, *v && !*end ? json_real(dv) : json_string(v));
        }
      }
    }
    p += n + (nl ? 1 : 0);
  }
  return o;
}

/* Checks checkpoint k (read from path) as synth, eval and --resume load it:
 * against the domain `domain` (NULL: the one the checkpoint names) opened
 * with `dopts` (NULL: the domain resource beside it, if any), then
 * lp_ckpt_check_model - the checks of lp_ckpt_load. 0, or prints why not
 * and returns -1. *plugin gets the plugin's file (malloc'd) on success. */
static int ckpt_info_check(const char *path, const lp_ckpt *k, const char *domain,
                           const char *dopts, char **plugin) {
  const char *V = "ckpt info";
  lp_err e = {0};
  char *beside = dopts ? NULL : cli_resource_beside(path);
  if (beside) dopts = beside;
  int rc = -1;
  lp_domain *d = lp_domain_open(domain ? domain : k->domain.name, dopts, &e);
  lp_ckpt_domain dom;
  if (!d) {
    cli_error(V, "%s: cannot check the checkpoint against its domain: %s%s", path, e.msg,
              domain ? "" : " (give the plugin with --domain PATH.so)");
  } else if (lp_ckpt_domain_of(d, &dom, &e)) {
    char why[2 * 4096];
    if (dopts)
      cli_error(V, "%s: %s (domain options: %s)", path, e.msg, dopts);
    else
      cli_error(V, "%s: %s (%s)", path, e.msg, cli_resource_missing(path, why, sizeof why));
  } else if (lp_ckpt_check_model(k, path, &dom, &e)) {
    cli_error(V, "%s", e.msg);
  } else {
    const char *pp = lp_domain_path(d);
    *plugin = strdup(pp ? pp : lp_domain_name(d));
    rc = *plugin ? 0 : -1;
    if (rc) cli_error(V, "out of memory");
  }
  lp_domain_free(d);
  free(beside);
  return rc;
}

static void info_json(const char *path, const lp_ckpt *k, const char *plugin, int cfg_ok,
                      const lp_model_cfg *cfg, const char *fp) {
  const char *dk = k->pos.data_kind == LP_DATA_FILE ? "file" : "generated";
  json_t *o = json_pack("{s:s, s:I, s:i, s:s, s:s, s:i, s:i, s:i, s:s?, s:I, s:I, s:I, s:f, "
                        "s:s, s:I, s:I, s:I, s:s}",
                        "path", path, "bytes", (json_int_t)k->file_size, "version",
                        (int)k->version, "domain", k->domain.name, "vocab_fingerprint", fp,
                        "spec_parts", (int)k->domain.n_parts, "program_vocab",
                        (int)k->domain.prog.size, "spec_vocab", (int)k->domain.spec.size,
                        "model", cfg_ok ? cli_model_kind_name(cfg->kind) : NULL, "step",
                        (json_int_t)k->pos.step, "tasks_seen", (json_int_t)k->pos.next_task,
                        "adam_t", (json_int_t)k->adam_t, "seconds", k->pos.seconds, "data", dk,
                        "num_params", (json_int_t)k->n_params, "tensors",
                        (json_int_t)lp_layout_count(k->layout), "state_values",
                        (json_int_t)k->n_state, "config_text", k->config_text);
  if (!o) return;
  if (k->pos.data_kind == LP_DATA_GENERATED)
    json_object_set_new(o, "data_seed", cli_json_u64(k->pos.data_seed));
  json_object_set_new(o, "init_seed", cli_json_u64(k->pos.init_seed));
  json_object_set_new(o, "param_precision", json_string(lp_ckpt_prec_name(k->param_prec)));
  json_object_set_new(o, "plugin", json_string(plugin));
  json_object_set_new(o, "config", config_json(k->config_text));
  json_error_t je;
  json_t *m = k->metadata && *k->metadata ? json_loads(k->metadata, 0, &je) : NULL;
  if (m)
    json_object_set_new(o, "metadata", m);
  else
    json_object_set_new(o, "metadata", json_string(k->metadata ? k->metadata : ""));
  json_dumpf(o, stdout, JSON_COMPACT);
  fputc('\n', stdout);
  json_decref(o);
}

static void info_text(const char *path, const lp_ckpt *k, const char *plugin, int cfg_ok,
                      const lp_model_cfg *cfg, const char *fp) {
  char el[32];
  cli_fmt_secs(k->pos.seconds, el, sizeof el);
  printf("file:       %s (%zu bytes, format version %u, checksum ok)\n", path, k->file_size,
         k->version);
  printf("domain:     %s (vocabulary fingerprint %s; program %d tokens, spec %d, %u part%s)\n",
         k->domain.name, fp, k->domain.prog.size, k->domain.spec.size, k->domain.n_parts,
         k->domain.n_parts == 1 ? "" : "s");
  printf("checked:    loads with %s (vocabularies, config and tensor layout match)\n", plugin);
  printf("model:      %s, %zu parameters in %zu tensors\n",
         cfg_ok ? cli_model_kind_name(cfg->kind) : "(unreadable config)", k->n_params,
         lp_layout_count(k->layout));
  printf("storage:    parameters in %s%s\n", lp_ckpt_prec_name(k->param_prec),
         k->param_prec == LP_CKPT_FP32 ? ""
                                       : " (16 bits, widened to fp32 on load; ckpt strip --half)");
  printf("step:       %lld (%llu tasks seen, %s of training; Adam t = %lld)\n",
         (long long)k->pos.step, (unsigned long long)k->pos.next_task, el, (long long)k->adam_t);
  if (k->pos.data_kind == LP_DATA_GENERATED)
    printf("data:       generated tasks, data seed %llu; init seed %llu\n",
           (unsigned long long)k->pos.data_seed, (unsigned long long)k->pos.init_seed);
  else
    printf("data:       tasks from a file; init seed %llu\n", (unsigned long long)k->pos.init_seed);
  if (k->n_state) printf("state:      %zu values\n", k->n_state);
  printf("metadata:   %s\n", k->metadata && *k->metadata ? k->metadata : "(none)");
  printf("config:\n");
  const char *p = k->config_text;
  while (*p) {
    const char *nl = strchr(p, '\n');
    size_t n = nl ? (size_t)(nl - p) : strlen(p);
    printf("  %.*s\n", (int)n, p);
    p += n + (nl ? 1 : 0);
  }
}

static int ckpt_info(int argc, char **argv) {
  cli_opts o;
  int rc = cli_parse(&info_verb, argc, argv, &o);
  if (rc != CLI_PARSED) return rc;
  cli_opts_free(&o); /* nothing else is allocated by this verb's options */
  if (o.first_operand + 1 != argc) {
    cli_error("ckpt info", o.first_operand < argc ? "one checkpoint file at a time"
                                                  : "a checkpoint file is required");
    return EXIT_USAGE;
  }
  const char *path = argv[o.first_operand];
  lp_ckpt k;
  lp_err e = {0};
  if (lp_ckpt_read(path, LP_CKPT_INFO_ONLY, &k, &e)) {
    cli_error("ckpt info", "%s", e.msg);
    return EXIT_FAIL;
  }
  char *plugin = NULL;
  if (ckpt_info_check(path, &k, o.domain, o.domain_options, &plugin)) {
    lp_ckpt_free(&k);
    return EXIT_FAIL;
  }
  lp_model_cfg cfg;
  lp_model_cfg_default(&cfg, LP_MODEL_ROBUSTFILL);
  lp_err ce = {0};
  int cfg_ok = lp_model_cfg_parse(&cfg, k.config_text, strlen(k.config_text), path, &ce) == 0;
  char fp[32];
  snprintf(fp, sizeof fp, "%016llx", (unsigned long long)k.domain.vocab_fp);
  if (o.json)
    info_json(path, &k, plugin, cfg_ok, &cfg, fp);
  else
    info_text(path, &k, plugin, cfg_ok, &cfg, fp);
  lp_ckpt_free(&k);
  free(plugin);
  return EXIT_OK;
}

/* ---------- strip ---------- */

/* ckpt strip [--half fp16|bf16] IN OUT: the checkpoint without its optimiser
 * state (a third of the size; --half: parameters in 16 bits, a sixth), for
 * shipping a model; `train --resume` refuses the result. */
static int ckpt_strip(int argc, char **argv) {
  cli_opts o;
  int rc = cli_parse(&strip_verb, argc, argv, &o);
  if (rc != CLI_PARSED) return rc;
  cli_opts_free(&o);
  if (o.first_operand + 2 != argc) {
    cli_error("ckpt strip", "two files are required: IN.ckpt OUT.ckpt");
    return EXIT_USAGE;
  }
  const char *in = argv[o.first_operand], *out = argv[o.first_operand + 1];
  lp_ckpt k;
  lp_err e = {0};
  if (lp_ckpt_read(in, 0, &k, &e)) {
    cli_error("ckpt strip", "%s", e.msg);
    return EXIT_FAIL;
  }
  if (o.half && k.param_prec != LP_CKPT_FP32 && k.param_prec != o.half) {
    cli_error("ckpt strip",
              "%s stores its parameters as %s already; rounding them again to %s would round "
              "twice: strip the full checkpoint with --half %s",
              in, lp_ckpt_prec_name(k.param_prec), lp_ckpt_prec_name(o.half),
              lp_ckpt_prec_name(o.half));
    lp_ckpt_free(&k);
    return EXIT_FAIL;
  }
  free(k.adam_m);
  free(k.adam_v);
  k.adam_m = k.adam_v = NULL;
  k.n_adam = 0;
  if (o.half) k.param_prec = o.half;
  rc = lp_ckpt_write(out, &k, &e);
  if (rc) cli_error("ckpt strip", "%s", e.msg);
  lp_ckpt_free(&k);
  return rc ? EXIT_FAIL : EXIT_OK;
}

/* ---------- the group ---------- */

int cmd_ckpt(int argc, char **argv) {
  static const cli_sub subs[] = {
      {&info_verb, ckpt_info, "verify a checkpoint and print what it holds"},
      {&strip_verb, ckpt_strip,
       "the model without its optimiser state (--half: parameters in 16 bits)"}};
  return cli_group("ckpt", subs, sizeof subs / sizeof *subs, argc, argv);
}
