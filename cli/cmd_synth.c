/* lpsynth synth: search a trained model (and the domain's solver) for the
 * programs of one task, check them with the domain and print them. */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const cli_verb_spec synth_verb = {
    CLI_SYNTH, "synth", NULL,
    "Finds programs for the examples and prints them best first: the top-ranked\n"
    "program consistent with the examples is marked '*' and its outputs on the\n"
    "inputs are shown. Each line: rank, score, the stage that found the program,\n"
    "(LP models: its latent code TOK_k | ...), the program. Search modes:\n"
    "  beam    the model's beam search of B programs, checked afterwards\n"
    "  guided  execution-guided beam search: a prefix that can no longer fit the\n"
    "          examples is dropped before it takes a beam slot (the domain's\n"
    "          prefix check); only consistent programs finish, one per behaviour\n"
    "  solver  the domain's exact solver (string: a version-space search)\n"
    "          enumerates up to --candidates consistent programs, best first by\n"
    "          the domain's prior; with a model they are re-ranked by the model's\n"
    "          log-probability\n"
    "  auto    (default) the solver, its programs ranked by the model (without\n"
    "          one: by the prior); the guided beam when the domain has no solver\n"
    "          or the solver found nothing within the time limit\n"
    "--model is optional where the domain has a solver. The task is one of:\n"
    "--examples FILE, the first JSON line of FILE read as train and eval read a\n"
    "task line (lpsynth/task.h): its \"inputs\" and \"outputs\" arrays, or its\n"
    "\"docstring\" (a line of `lpsynth corpus`; cut to the model's max_spec_len\n"
    "tokens, with a warning); --io, one example (repeatable); --spec, a text\n"
    "specification (repeatable; docstring domains such as python). Exit status 1\n"
    "when no consistent program was found (domains that check programs).",
    NULL};

int cli_synth(const cli_loaded *L, const lp_enc_task *t, const lp_synth_opts *so,
              lp_synth_result *res, lp_err *e) {
  lp_batch b = {0};
  int rc = LP_OK;
  if (L->m) rc = cli_batch_task(L, t, &b, e);
  if (rc == LP_OK)
    rc = lp_synthesize(L->d, L->m, L->m ? &b : NULL, t->ex, t->n_examples, so, res, e);
  lp_batch_free(&b);
  return rc;
}

/* ---------- the task ---------- */

/* The first line of the examples file, parsed into *rec. 0, or -1 after a
 * message (FILE:LINE). */
static int read_examples_file(const char *path, lp_record *rec, size_t *lineno) {
  lp_err e = {0};
  lp_jsonl *r = lp_jsonl_open(path, 0, &e);
  if (!r) {
    cli_error("synth", "%s", e.msg);
    return -1;
  }
  const char *line;
  size_t len;
  int st = lp_jsonl_next(r, &line, &len, lineno, &e), rc = -1;
  if (st == 0)
    cli_error("synth", "%s: the examples file is empty", path);
  else if (st < 0)
    cli_error("synth", "%s", e.msg);
  else if (lp_record_parse(line, len, rec, &e))
    cli_error("synth", "%s:%zu: %s", path, *lineno, e.msg);
  else
    rc = 0;
  lp_jsonl_free(r);
  return rc;
}

/* The task of the command line (--io / --spec) or of the examples file
 * (rec), encoded for L; warnings for unknown characters and cut texts. */
static int synth_task(const cli_opts *o, const cli_loaded *L, const lp_record *rec,
                      size_t lineno, lp_enc_task *t) {
  lp_err e = {0};
  lp_task_opts to = {.max_spec_len = cli_max_spec_len(L)};
  int rc;
  if (rec) {
    if ((rc = lp_enc_task_read(L->d, rec, &to, t, &e)))
      cli_error("synth", "%s:%zu: %s", o->examples_file, lineno, e.msg);
  } else {
    const lp_strs *in = &o->io_in, *out = &o->io_out;
    const size_t np = L->dom.n_parts, n = in->len;
    lp_example *ex = calloc(n, sizeof *ex);
    if (!ex) {
      cli_error("synth", "out of memory");
      return -1;
    }
    for (size_t i = 0; i < n; i++) {
      ex[i].part[0] = in->items[i].data ? in->items[i].data : "";
      ex[i].len[0] = in->items[i].len;
      if (np == 2 && i < out->len) {
        ex[i].part[1] = out->items[i].data ? out->items[i].data : "";
        ex[i].len[1] = out->items[i].len;
      }
    }
    const char *src = o->given[CLI_O_IO] ? "--io" : "--spec";
    if (np == 2 && out->len != n) {
      cli_error("synth", "%s: %zu inputs but %zu outputs", src, n, out->len);
      rc = -1;
    } else if ((rc = lp_enc_task_encode(L->d, ex, n, &to, !o->given[CLI_O_IO], t, &e))) {
      cli_error("synth", "%s: %s", src, e.msg);
    }
    free(ex);
  }
  if (rc) return -1;
  if (t->n_unknown && L->m)
    fprintf(stderr, "lpsynth synth: warning: %zu characters outside the domain's alphabet "
            "(encoded as UNK)\n", t->n_unknown);
  for (size_t i = 0; i < t->n_examples * t->n_parts; i++)
    if (t->spec_len[i] < t->parts[i].len)
      fprintf(stderr, "lpsynth synth: warning: spec %zu has %zu tokens; cut to the model's "
              "max_spec_len %zu\n", i + 1, t->parts[i].len, to.max_spec_len);
  return 0;
}

/* ---------- the answers ---------- */

/* An answer's latent code as "TOK_a | TOK_b | ..." (empty without one). */
static void latent_text(const lp_synth_answer *a, char *out, size_t n) {
  size_t lu = 0;
  out[0] = 0;
  for (int j = 0; j < a->latent_len && lu + 16 < n; j++)
    lu += (size_t)snprintf(out + lu, n - lu, "%sTOK_%d", j ? " | " : "", a->latent[j]);
}

/* Prints one answer of synth (text). */
static void print_answer(const lp_synth_answer *a, int k, int top, const char *text, size_t tlen,
                         int valid) {
  char latent[1024];
  latent_text(a, latent, sizeof latent);
  const char mark = k == top ? '*' : ' ';
  if (valid && text && memchr(text, '\n', tlen)) {
    /* several lines: rank and score, then the program indented */
    printf("%c %3d  %9.4f  %-6s%s%s\n", mark, k + 1, a->score, lp_stage_name(a->stage),
           a->latent_len ? "  " : "", a->latent_len ? latent : "");
    const char *p = text, *end = text + tlen;
    while (p < end) {
      const char *nl = memchr(p, '\n', (size_t)(end - p));
      size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
      printf("        %.*s\n", (int)n, p);
      p += n + (nl ? 1 : 0);
    }
    printf("\n");
  } else {
    printf("%c %3d  %9.4f  %-6s  %s%s%s\n", mark, k + 1, a->score, lp_stage_name(a->stage),
           a->latent_len ? latent : "", a->latent_len ? "  ||  " : "",
           valid ? text : "(not a well-formed program)");
  }
}

/* The first --show answers: printed, or as JSON objects into arr. */
static void show_answers(const cli_loaded *L, const lp_synth_result *res, int n_show, int top,
                         json_t *arr) {
  lp_buf text = {0};
  lp_err e = {0};
  for (int k = 0; k < n_show; k++) {
    const lp_synth_answer *a = &res->ans[k];
    text.len = 0;
    int valid = lp_domain_program_decode(L->d, a->prog, (size_t)a->prog_len, &text, &e) == 0;
    if (!arr) {
      print_answer(a, k, top, text.data ? text.data : "", text.len, valid);
      continue;
    }
    json_t *hj = json_pack("{s:i, s:o, s:f, s:s, s:b}", "rank", k + 1, "program",
                           valid ? cli_json_text(text.data, text.len)
                                 : json_string("(not a well-formed program)"),
                           "score", isfinite(a->score) ? a->score : -1e300, "stage",
                           lp_stage_name(a->stage), "consistent", a->consistent);
    if (!isnan(a->prior)) json_object_set_new(hj, "prior", json_real(a->prior));
    if (a->latent_len) {
      char latent[1024];
      latent_text(a, latent, sizeof latent);
      json_object_set_new(hj, "latent", json_string(latent));
    }
    json_array_append_new(arr, hj);
  }
  lp_buf_free(&text);
}

/* The outputs of the top answer on the examples' inputs: printed, or into outs. */
static void show_outputs(const cli_loaded *L, const lp_synth_result *res, const lp_enc_task *t,
                         json_t *outs) {
  if (res->top < 0 || !lp_domain_has(L->d, LP_CAP_EXECUTE)) return;
  const lp_synth_answer *a = &res->ans[res->top];
  if (!outs)
    printf("\n%s program (rank %d, found by %s search), its outputs:\n",
           res->top == 0 ? "top-ranked consistent" : "first consistent", res->top + 1,
           lp_stage_name(a->stage));
  lp_buf o = {0};
  lp_err e = {0};
  for (size_t i = 0; i < t->n_examples; i++) {
    o.len = 0;
    if (lp_domain_execute(L->d, a->prog, (size_t)a->prog_len, t->ex[i].part[0], t->ex[i].len[0],
                          &o, &e))
      continue;
    if (outs)
      json_array_append_new(outs, cli_json_text(o.data, o.len));
    else
      printf("  %s -> %s\n", t->ex[i].part[0], o.data ? o.data : "");
  }
  lp_buf_free(&o);
}

/* Prints the result (text or --json); the exit status. */
static int synth_report(const cli_opts *o, const cli_loaded *L, const lp_enc_task *t,
                        const lp_synth_result *res, int can_check, int mode, const char *src) {
  const int n_show = res->n < o->show ? res->n : (int)o->show;
  json_t *arr = o->json ? json_array() : NULL, *outs = o->json ? json_array() : NULL;
  show_answers(L, res, n_show, can_check ? res->top : -1, arr);
  show_outputs(L, res, t, outs);
  if (o->json) {
    json_t *top = json_pack("{s:o, s:o, s:s, s:s, s:o, s:f, s:b, s:i}", "programs", arr,
                            "first_consistent",
                            res->top >= 0 ? json_integer(res->top + 1) : json_null(), "search",
                            lp_search_mode_name(mode), "stage",
                            lp_stage_name(res->top >= 0 ? res->ans[res->top].stage : LP_STAGE_NONE),
                            "outputs", outs, "seconds", res->seconds, "timed_out", res->timed_out,
                            "solver_programs", res->n_solver);
    json_object_set_new(top, "prune_calls", json_integer(res->prune_calls));
    json_object_set_new(top, "prune_seconds", json_real(res->prune_seconds));
    json_dumpf(top, stdout, JSON_COMPACT);
    putchar('\n');
    json_decref(top);
  } else if (can_check && res->top < 0 && res->solver_complete && !res->timed_out) {
    printf("\nno program found within %g s: none fits (the solver searched its whole space)\n",
           o->time_limit);
  } else if (can_check && res->top < 0) {
    printf("\nno program found within %g s (%d programs searched%s)\n", o->time_limit, res->n,
           res->timed_out ? ", time limit reached" : "");
  } else {
    printf("(%.2f s)\n", res->seconds);
  }
  if (!(can_check && res->top < 0)) return EXIT_OK;
  if (o->json) cli_error("synth", "%s: no program found within %g s", src, o->time_limit);
  return EXIT_FAIL;
}

int cmd_synth(int argc, char **argv) {
  cli_opts o;
  int rc = cli_parse(&synth_verb, argc, argv, &o);
  if (rc != CLI_PARSED) return rc;
  lp_record rec;
  memset(&rec, 0, sizeof rec);
  size_t lineno = 0;
  cli_loaded L;
  memset(&L, 0, sizeof L);
  lp_enc_task t = {0};
  lp_synth_result res = {0};
  if ((rc = cli_no_operands(&o, argc, argv, NULL))) goto done;
  rc = EXIT_USAGE;
  if (o.examples_file && o.io_in.len) {
    cli_error("synth", "give the task with --examples FILE or with --io/--spec, not both");
    goto done;
  }
  if (!o.examples_file && o.io_in.len == 0) {
    cli_error("synth", "no examples: give --examples FILE, --io 'IN => OUT' or --spec TEXT");
    goto done;
  }
  rc = EXIT_FAIL;
  if (o.examples_file && read_examples_file(o.examples_file, &rec, &lineno)) goto done;
  if (o.model ? cli_load_model("synth", o.domain, o.domain_options, o.model, (int)o.threads, &L)
              : cli_open_solver("synth", o.domain, o.domain_options, &L))
    goto done;
  if (synth_task(&o, &L, o.examples_file ? &rec : NULL, lineno, &t)) goto done;
  char src[64] = "--io";
  if (o.examples_file) snprintf(src, sizeof src, "%.50s", o.examples_file);
  const int can_check = L.dom.n_parts == 2 && lp_domain_has(L.d, LP_CAP_CHECK);
  int mode = o.search;
  if (!can_check && mode == LP_SEARCH_AUTO) mode = LP_SEARCH_BEAM; /* nothing to verify */
  lp_synth_opts so = {.mode = mode, .beam = (int)o.beam, .latent_beam = (int)o.latent_beam,
                      .max_len = (int)o.max_len, .time_limit = o.time_limit,
                      .max_candidates = (int)o.candidates, .rank = o.rank,
                      .len_alpha = o.len_alpha, .keep_order = o.keep_order};
  lp_err e = {0};
  if (cli_synth(&L, &t, &so, &res, &e))
    cli_error("synth", "%s: %s", src, e.msg);
  else
    rc = synth_report(&o, &L, &t, &res, can_check, mode, src);
done:
  lp_synth_result_free(&res);
  lp_enc_task_free(&t);
  cli_unload(&L);
  lp_record_free(&rec);
  cli_opts_free(&o);
  return rc;
}
