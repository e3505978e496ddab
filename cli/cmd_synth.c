/* synth and eval: search a trained model for programs, check them with the domain. */
#define _GNU_SOURCE
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "lpsynth/checkpoint.h"
#include "lpsynth/metrics.h"
#include "lpsynth/model.h"
#include "lpsynth/synth.h"

/* A task's specification encoded for the model, plus its examples as text. */
typedef struct enc_task {
  size_t n_ex, n_parts;
  lp_ids *parts;             /* [n_ex * n_parts] */
  const int32_t **spec;      /* views for lp_task_ids */
  size_t *spec_len;
  lp_example *ex;            /* text views for check */
} enc_task;

static void enc_task_free(enc_task *t) {
  if (!t->parts) return;
  for (size_t i = 0; i < t->n_ex * t->n_parts; i++) lp_ids_free(&t->parts[i]);
  free(t->parts);
  free(t->spec);
  free(t->spec_len);
  free(t->ex);
  memset(t, 0, sizeof *t);
}

/* Encode examples: part p of example i is strs[p]->items[i]. */
static int enc_task_make(lp_domain *d, const lp_strs *in, const lp_strs *out, size_t n_parts,
                         enc_task *t, size_t *n_unknown, lp_err *e) {
  memset(t, 0, sizeof *t);
  size_t n = in->len;
  if (n == 0) return lp_err_set(e, LP_EINVAL, "no examples");
  if (n_parts == 2 && (!out || out->len != n))
    return lp_err_set(e, LP_EINVAL, "%zu inputs but %zu outputs", n, out ? out->len : 0);
  t->n_ex = n;
  t->n_parts = n_parts;
  t->parts = calloc(n * n_parts, sizeof *t->parts);
  t->spec = calloc(n * n_parts, sizeof *t->spec);
  t->spec_len = calloc(n * n_parts, sizeof *t->spec_len);
  t->ex = calloc(n, sizeof *t->ex);
  if (!t->parts || !t->spec || !t->spec_len || !t->ex) {
    enc_task_free(t);
    return lp_err_set(e, LP_ENOMEM, "out of memory");
  }
  for (size_t i = 0; i < n; i++)
    for (size_t p = 0; p < n_parts; p++) {
      const lp_buf *s = p == 0 ? &in->items[i] : &out->items[i];
      const char *txt = s->data ? s->data : "";
      t->ex[i].part[p] = txt;
      t->ex[i].len[p] = s->len;
      lp_ids *ids = &t->parts[i * n_parts + p];
      if (lp_domain_spec_encode(d, (uint32_t)p, txt, s->len, ids, n_unknown, e)) {
        lp_err_prefix(e, "%s %zu", p ? "output" : "input", i + 1);
        enc_task_free(t);
        return LP_EINVAL;
      }
      t->spec[i * n_parts + p] = ids->data;
      t->spec_len[i * n_parts + p] = ids->len;
    }
  return LP_OK;
}

/* A JSON string of text[0..n): as is when it is UTF-8, else each byte that is
 * not part of a well-formed sequence becomes U+FFFD (a sampled program of a
 * byte-fallback vocabulary may end inside a character). */
static json_t *json_text(const char *s, size_t n) {
  json_t *j = json_stringn(s ? s : "", n);
  if (j) return j;
  lp_buf b = {0};
  const unsigned char *u = (const unsigned char *)s;
  for (size_t i = 0; i < n;) {
    size_t k = u[i] < 0x80 ? 1 : u[i] >= 0xC2 && u[i] <= 0xDF ? 2 : u[i] >= 0xE0 && u[i] <= 0xEF ? 3
             : u[i] >= 0xF0 && u[i] <= 0xF4 ? 4 : 0;
    int ok = k > 0 && i + k <= n;
    for (size_t m = 1; ok && m < k; m++) ok = (u[i + m] & 0xC0) == 0x80;
    if (ok && k == 3)
      ok = !(u[i] == 0xE0 && u[i + 1] < 0xA0) && !(u[i] == 0xED && u[i + 1] >= 0xA0);
    if (ok && k == 4)
      ok = !(u[i] == 0xF0 && u[i + 1] < 0x90) && !(u[i] == 0xF4 && u[i + 1] >= 0x90);
    if (ok) {
      lp_buf_append(&b, s + i, k);
      i += k;
    } else {
      lp_buf_append(&b, "\xEF\xBF\xBD", 3);
      i++;
    }
  }
  j = json_stringn(b.data ? b.data : "", b.len);
  lp_buf_free(&b);
  return j ? j : json_string("");
}

/* Comma-separated positive integers ("1,10,100"). */
static int parse_list(const char *verb, const char *opt, const char *s, int *v, int max, int *n) {
  *n = 0;
  const char *p = s;
  while (*p) {
    char *end;
    long x = strtol(p, &end, 10);
    if (end == p || x < 1 || x > 100000 || (*end && *end != ',') || *n >= max) {
      cli_error(verb, "%s expects a comma-separated list of integers 1..100000, got \"%s\"", opt, s);
      return -1;
    }
    v[(*n)++] = (int)x;
    p = *end ? end + 1 : end;
  }
  if (*n == 0) {
    cli_error(verb, "%s is empty", opt);
    return -1;
  }
  return 0;
}

typedef struct loaded {
  lp_domain *d;
  lp_model *m;
  lp_ckpt_domain dom;
  char *dopts; /* the domain options used (given, or CKPT.spm), or NULL */
} loaded;

/* Opens the domain (options: dopts, else the CKPT.spm that `lpsynth train`
 * copied beside the checkpoint, if any) and loads the checkpoint, which must
 * match the domain's vocabularies (lp_ckpt_load checks the fingerprint). */
static int load_model(const char *verb, const char *domain, const char *dopts, const char *ckpt,
                      int threads, loaded *L) {
  memset(L, 0, sizeof *L);
  lp_err e = {0};
  char *beside = dopts ? NULL : cli_options_beside(ckpt);
  if (beside) dopts = beside;
  int rc = -1;
  L->d = lp_domain_open(domain, dopts, &e);
  if (!L->d) {
    cli_error(verb, "%s", e.msg);
    goto out;
  }
  if (lp_ckpt_domain_of(L->d, &L->dom, &e)) {
    if (!dopts)
      cli_error(verb, "%s (no --domain-options given, and no %s.spm beside the checkpoint)",
                e.msg, ckpt);
    else
      cli_error(verb, "%s (domain options: %s)", e.msg, dopts);
  } else if (lp_ckpt_load(ckpt, &L->dom, &L->m, NULL, NULL, NULL, &e)) {
    if (dopts && strstr(e.msg, "fingerprint mismatch"))
      cli_error(verb, "%s; the domain options %s%s are not those the model was trained with",
                e.msg, dopts, beside ? " (found beside the checkpoint)" : "");
    else
      cli_error(verb, "%s", e.msg);
  } else {
    rc = 0;
  }
  if (rc) {
    lp_domain_free(L->d);
    L->d = NULL;
    goto out;
  }
  if (dopts && !(L->dopts = strdup(dopts))) {
    cli_error(verb, "out of memory");
    lp_model_free(L->m);
    lp_domain_free(L->d);
    memset(L, 0, sizeof *L);
    rc = -1;
    goto out;
  }
  if (threads > 0) lp_engine_set_threads(threads);
out:
  free(beside);
  return rc;
}

static void unload(loaded *L) {
  lp_model_free(L->m);
  lp_domain_free(L->d);
  free(L->dopts);
  memset(L, 0, sizeof *L);
}

/* Opens the domain alone (no model): synth / eval with the domain's solver. */
static int open_solver_domain(const char *verb, const char *domain, const char *dopts,
                              loaded *L) {
  memset(L, 0, sizeof *L);
  lp_err e = {0};
  L->d = lp_domain_open(domain, dopts, &e);
  if (!L->d) {
    cli_error(verb, "%s", e.msg);
    return -1;
  }
  if (!lp_domain_has(L->d, LP_CAP_SOLVE)) {
    cli_error(verb, "--model CKPT is required: domain %s has no exact solver to search without "
              "a model", lp_domain_name(L->d));
    lp_domain_free(L->d);
    L->d = NULL;
    return -1;
  }
  if (lp_ckpt_domain_of(L->d, &L->dom, &e)) {
    cli_error(verb, "%s", e.msg);
    lp_domain_free(L->d);
    L->d = NULL;
    return -1;
  }
  if (dopts && !(L->dopts = strdup(dopts))) {
    cli_error(verb, "out of memory");
    lp_domain_free(L->d);
    L->d = NULL;
    return -1;
  }
  return 0;
}

/* ---------------- synth ---------------- */

static int read_examples_file(const char *verb, const char *path, lp_strs *in, lp_strs *out) {
  lp_err e = {0};
  lp_jsonl *r = lp_jsonl_open(path, 0, &e);
  if (!r) {
    cli_error(verb, "%s", e.msg);
    return -1;
  }
  const char *line;
  size_t len, lineno;
  int st = lp_jsonl_next(r, &line, &len, &lineno, &e), rc = -1;
  lp_record rec;
  if (st <= 0) {
    if (st == 0)
      cli_error(verb, "%s: the examples file is empty", path);
    else
      cli_error(verb, "%s", e.msg);
  } else if (lp_record_parse(line, len, &rec, &e)) {
    cli_error(verb, "%s:%zu: %s", path, lineno, e.msg);
  } else if (rec.docstring) {
    /* a docstring/code pair: the docstring is the specification */
    lp_strs_push(in, rec.docstring, rec.docstring_len);
    lp_record_free(&rec);
    rc = 0;
  } else if (lp_record_require(&rec, LP_REC_INPUTS, &e)) {
    cli_error(verb, "%s:%zu: %s (or \"docstring\")", path, lineno, e.msg);
    lp_record_free(&rec);
  } else {
    for (size_t i = 0; i < rec.inputs.len; i++)
      lp_strs_push(in, rec.inputs.items[i].data ? rec.inputs.items[i].data : "", rec.inputs.items[i].len);
    for (size_t i = 0; i < rec.outputs.len; i++)
      lp_strs_push(out, rec.outputs.items[i].data ? rec.outputs.items[i].data : "", rec.outputs.items[i].len);
    lp_record_free(&rec);
    rc = 0;
  }
  lp_jsonl_free(r);
  return rc;
}

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

int cmd_synth(int argc, char **argv) {
  static const struct option lo[] = {{"domain", required_argument, 0, 'd'},
                                     {"domain-options", required_argument, 0, 'O'},
                                     {"model", required_argument, 0, 'm'},
                                     {"examples", required_argument, 0, 'x'},
                                     {"io", required_argument, 0, 'i'},
                                     {"spec", required_argument, 0, 's'},
                                     {"beam", required_argument, 0, 'b'},
                                     {"latent-beam", required_argument, 0, 'L'},
                                     {"threads", required_argument, 0, 't'},
                                     {"max-len", required_argument, 0, 'M'},
                                     {"search", required_argument, 0, 'S'},
                                     {"time-limit", required_argument, 0, 'l'},
                                     {"candidates", required_argument, 0, 'c'},
                                     {"show", required_argument, 0, 'w'},
                                     {"rank", required_argument, 0, 'r'},
                                     {"json", no_argument, 0, 'j'},
                                     {"help", no_argument, 0, 'h'},
                                     {0, 0, 0, 0}};
  const char *domain = NULL, *dopts = NULL, *ckpt = NULL, *exfile = NULL;
  int64_t beam = 10, lbeam = 0, threads = 0, maxlen = 0, cands = 100, show = 10;
  double tlimit = 10.0;
  int json = 0, c, rc = EXIT_USAGE, mode = LP_SEARCH_AUTO, rank = LP_RANK_HYBRID;
  lp_strs in = {0}, out = {0};
  char src[64] = "--io";
  while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
    switch (c) {
      case 'd': domain = optarg; break;
      case 'O': dopts = optarg; break;
      case 'm': ckpt = optarg; break;
      case 'x': exfile = optarg; break;
      case 's': lp_strs_push(&in, optarg, strlen(optarg)); break;
      case 'i': {
        const char *sep = strstr(optarg, " => ");
        if (!sep) {
          cli_error("synth", "--io expects 'INPUT => OUTPUT', got \"%s\"", optarg);
          goto done;
        }
        lp_strs_push(&in, optarg, (size_t)(sep - optarg));
        lp_strs_push(&out, sep + 4, strlen(sep + 4));
        break;
      }
      case 'b': /* lp_model_search's limit */
        if (cli_parse_i64("synth", "--beam", optarg, 1, 4096, &beam)) goto done;
        break;
      case 'L':
        if (cli_parse_i64("synth", "--latent-beam", optarg, 1, 4096, &lbeam)) goto done;
        break;
      case 'M':
        if (cli_parse_i64("synth", "--max-len", optarg, 1, 65536, &maxlen)) goto done;
        break;
      case 't':
        if (cli_parse_i64("synth", "--threads", optarg, 1, 256, &threads)) goto done;
        break;
      case 'c':
        if (cli_parse_i64("synth", "--candidates", optarg, 1, 100000, &cands)) goto done;
        break;
      case 'w':
        if (cli_parse_i64("synth", "--show", optarg, 1, 100000, &show)) goto done;
        break;
      case 'S':
        if ((mode = lp_search_mode_parse(optarg)) < 0) {
          cli_error("synth", "--search must be beam, guided, solver or auto, got \"%s\"", optarg);
          goto done;
        }
        break;
      case 'l':
        if (cli_parse_seconds("synth", "--time-limit", optarg, &tlimit)) goto done;
        break;
      case 'r':
        if ((rank = lp_rank_parse(optarg)) < 0) {
          cli_error("synth", "--rank must be hybrid, model or prior, got \"%s\"", optarg);
          goto done;
        }
        break;
      case 'j': json = 1; break;
      case 'h':
        printf("usage: lpsynth synth --domain D [--model CKPT] (--examples FILE.json | --io 'IN => OUT' ...\n"
               "                     | --spec TEXT) [--search auto|guided|beam|solver] [--time-limit S]\n"
               "                     [--beam B] [--latent-beam L] [--max-len N] [--candidates N]\n"
               "                     [--show N] [--threads T] [--domain-options STR] [--json]\n\n"
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
               "--model is optional where the domain has a solver. --examples reads the\n"
               "first JSON line of FILE: its \"inputs\" and \"outputs\" arrays, or its\n"
               "\"docstring\" (a line of `lpsynth corpus`); --io gives one example\n"
               "(repeatable); --spec gives a text specification (docstring domains such as\n"
               "python; a spec longer than the model's max_spec_len tokens is cut, with a\n"
               "warning). Exit status 1 when no consistent program was found (domains\n"
               "that check programs).\n\n"
               "  --search MODE     auto (default), guided, beam or solver\n"
               "  --time-limit S    seconds for the whole search (default 10; 0: none)\n"
               "  --beam B          beam size, 1..4096 (default 10)\n"
               "  --latent-beam L   LP: latent beams (default floor(sqrt(B)))\n"
               "  --max-len N       longest program searched, in tokens incl. EOS\n"
               "                    (default: the model's max_program_len)\n"
               "  --candidates N    solver: programs enumerated and ranked (default 100)\n"
               "  --rank R          with a model, the solver's programs are ranked by: hybrid\n"
               "                    (default: the domain's prior, ties broken by the model),\n"
               "                    model (its log-probability alone) or prior\n"
               "  --show N          programs printed (default 10)\n"
               "  --threads T       OpenBLAS threads\n"
               "  --domain-options STR  the domain's options (default: CKPT.spm beside the\n"
               "                    checkpoint when it exists, as `lpsynth train` writes it)\n"
               "  --json            one JSON object: programs (rank, program, score, stage,\n"
               "                    consistent, prior, latent), first_consistent, stage,\n"
               "                    outputs, seconds, timed_out\n");
        rc = EXIT_OK;
        goto done;
      default:
        goto done;
    }
  }
  if (optind < argc) {
    cli_error("synth", "unexpected argument \"%s\"", argv[optind]);
    goto done;
  }
  if (!domain) {
    cli_error("synth", "--domain is required");
    goto done;
  }
  if (exfile) {
    if (read_examples_file("synth", exfile, &in, &out)) {
      rc = EXIT_FAIL;
      goto done;
    }
    snprintf(src, sizeof src, "%.50s", exfile);
  }
  if (in.len == 0) {
    cli_error("synth", "no examples: give --examples FILE, --io 'IN => OUT' or --spec TEXT");
    goto done;
  }
  rc = EXIT_FAIL;
  loaded L;
  if (ckpt ? load_model("synth", domain, dopts, ckpt, (int)threads, &L)
           : open_solver_domain("synth", domain, dopts, &L))
    goto done;
  lp_err e = {0};
  enc_task t;
  size_t unk = 0;
  if (enc_task_make(L.d, &in, L.dom.n_parts == 2 ? &out : NULL, L.dom.n_parts, &t, &unk, &e)) {
    cli_error("synth", "%s: %s", exfile ? exfile : "--io", e.msg);
    unload(&L);
    goto done;
  }
  if (unk && L.m)
    fprintf(stderr, "lpsynth synth: warning: %zu characters outside the domain's alphabet "
            "(encoded as UNK)\n", unk);
  if (L.dom.n_parts == 1 && L.m) {
    size_t max = (size_t)lp_model_config(L.m)->max_spec_len;
    for (size_t i = 0; i < t.n_ex; i++)
      if (t.spec_len[i] > max) {
        fprintf(stderr, "lpsynth synth: warning: spec %zu has %zu tokens; cut to the model's "
                "max_spec_len %zu\n", i + 1, t.spec_len[i], max);
        t.spec_len[i] = max;
      }
  }
  lp_batch b = {0};
  lp_synth_result res = {0};
  if (L.m) {
    lp_task_ids ti = {0};
    ti.n_examples = t.n_ex;
    ti.spec = t.spec;
    ti.spec_len = t.spec_len;
    if (lp_batch_fill(&b, &ti, 1, (int)L.dom.n_parts, L.dom.spec.pad, L.dom.prog.pad,
                      lp_model_config(L.m), &e)) {
      cli_error("synth", "%s: %s", src, e.msg);
      goto out;
    }
  }
  const int can_check = L.dom.n_parts == 2 && lp_domain_has(L.d, LP_CAP_CHECK);
  if (!can_check && mode == LP_SEARCH_AUTO) mode = LP_SEARCH_BEAM; /* nothing to verify */
  lp_synth_opts so = {.mode = mode, .beam = (int)beam, .latent_beam = (int)lbeam,
                      .max_len = (int)maxlen, .time_limit = tlimit,
                      .max_candidates = (int)cands, .rank = rank};
  if (lp_synthesize(L.d, L.m, L.m ? &b : NULL, t.ex, t.n_ex, &so, &res, &e)) {
    cli_error("synth", "%s: %s", src, e.msg);
    goto out;
  }
  json_t *arr = json_array();
  lp_buf text = {0}, o = {0};
  const int n_show = res.n < show ? res.n : (int)show;
  for (int k = 0; k < n_show; k++) {
    const lp_synth_answer *a = &res.ans[k];
    text.len = 0;
    int valid = lp_domain_program_decode(L.d, a->prog, (size_t)a->prog_len, &text, &e) == 0;
    if (json) {
      json_t *hj = json_pack("{s:i, s:o, s:f, s:s, s:b}", "rank", k + 1, "program",
                             valid ? json_text(text.data, text.len)
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
    } else {
      print_answer(a, k, can_check ? res.top : -1, text.data ? text.data : "", text.len, valid);
    }
  }
  json_t *outs = json_array();
  if (res.top >= 0 && lp_domain_has(L.d, LP_CAP_EXECUTE)) {
    const lp_synth_answer *a = &res.ans[res.top];
    if (!json)
      printf("\n%s program (rank %d, found by %s search), its outputs:\n",
             res.top == 0 ? "top-ranked consistent" : "first consistent", res.top + 1,
             lp_stage_name(a->stage));
    for (size_t i = 0; i < t.n_ex; i++) {
      o.len = 0;
      if (lp_domain_execute(L.d, a->prog, (size_t)a->prog_len, t.ex[i].part[0], t.ex[i].len[0],
                            &o, &e))
        continue;
      if (json)
        json_array_append_new(outs, json_text(o.data, o.len));
      else
        printf("  %s -> %s\n", t.ex[i].part[0], o.data ? o.data : "");
    }
  }
  if (json) {
    json_t *top = json_pack("{s:o, s:o, s:s, s:s, s:o, s:f, s:b, s:i}", "programs", arr,
                            "first_consistent",
                            res.top >= 0 ? json_integer(res.top + 1) : json_null(), "search",
                            lp_search_mode_name(mode), "stage",
                            lp_stage_name(res.top >= 0 ? res.ans[res.top].stage : LP_STAGE_NONE),
                            "outputs", outs, "seconds", res.seconds, "timed_out", res.timed_out,
                            "solver_programs", res.n_solver);
    json_object_set_new(top, "prune_calls", json_integer(res.prune_calls));
    json_object_set_new(top, "prune_seconds", json_real(res.prune_seconds));
    json_dumpf(top, stdout, JSON_COMPACT);
    putchar('\n');
    json_decref(top);
  } else {
    json_decref(arr);
    json_decref(outs);
    if (can_check && res.top < 0 && res.solver_complete && !res.timed_out)
      printf("\nno program found within %g s: none fits (the solver searched its whole space)\n",
             tlimit);
    else if (can_check && res.top < 0)
      printf("\nno program found within %g s (%d programs searched%s)\n", tlimit, res.n,
             res.timed_out ? ", time limit reached" : "");
    else
      printf("(%.2f s)\n", res.seconds);
  }
  lp_buf_free(&text);
  lp_buf_free(&o);
  rc = can_check && res.top < 0 ? EXIT_FAIL : EXIT_OK;
  if (can_check && res.top < 0 && json)
    cli_error("synth", "%s: no program found within %g s", src, tlimit);
out:
  lp_synth_result_free(&res);
  lp_batch_free(&b);
  enc_task_free(&t);
  unload(&L);
done:
  lp_strs_free(&in);
  lp_strs_free(&out);
  return rc;
}

/* ---------------- eval ---------------- */

#define MAX_BEAMS 16
#define MAX_SIZE 32
#define DIV_N 4

enum { METRIC_DEFAULT = 0, METRIC_EXACT = 1, METRIC_BLEU = 2 };

/* Accumulators of one (beam, latent beam) run. */
typedef struct run_acc {
  double secs;
  /* exact */
  long solved, by_size[MAX_SIZE + 1];
  /* bleu */
  double best_sum;          /* sum over tasks of the best sentence BLEU in the beam */
  lp_bleu_stats top1;       /* corpus statistics of the top-1 programs */
  /* diversity */
  double div_sum[DIV_N];
  long div_tasks;           /* tasks whose beam has at least one token */
  /* exact: generalisation, stages, time per task */
  long held_tasks, generalised, timed_out, by_stage[4];
  double *times;            /* seconds per task */
  size_t n_times, cap_times;
} run_acc;

/* The task of one line, for eval. A docstring/code pair: the docstring (cut to
 * max_spec_len tokens, *truncated = 1) and the code as reference; otherwise
 * "inputs"/"outputs" (one-part domains: "inputs") and "program". The example
 * texts are copied into *in / *out, which the task's views point into. */
static int eval_task(loaded *L, const lp_record *rec, int metric, int holdout, lp_strs *in,
                     lp_strs *out, lp_strs *hin, lp_strs *hout, enc_task *t, const char **ref,
                     size_t *ref_len, int *truncated, lp_err *e) {
  size_t np = L->dom.n_parts;
  *ref = NULL;
  *ref_len = 0;
  *truncated = 0;
  if (rec->docstring || rec->code) {
    if (np != 1)
      return lp_err_set(e, LP_EINVAL, "a \"docstring\"/\"code\" pair needs a domain whose "
                        "specification is one text; domain \"%s\" has 2 parts",
                        lp_domain_name(L->d));
    if (metric == METRIC_EXACT)
      return lp_err_set(e, LP_EINVAL, "a \"docstring\"/\"code\" pair has no examples to check");
    if (lp_record_require(rec, LP_REC_DOCSTRING | LP_REC_CODE, e)) return LP_EINVAL;
    if (lp_strs_push(in, rec->docstring, rec->docstring_len))
      return lp_err_set(e, LP_ENOMEM, "out of memory");
    if (enc_task_make(L->d, in, NULL, 1, t, NULL, e)) {
      lp_err_prefix(e, "docstring");
      return LP_EINVAL;
    }
    size_t max = (size_t)lp_model_config(L->m)->max_spec_len;
    if (t->spec_len[0] > max) {
      t->spec_len[0] = max;
      *truncated = 1;
    }
    *ref = rec->code;
    *ref_len = rec->code_len;
    return LP_OK;
  }
  if (np == 2) {
    if (lp_record_require(rec, LP_REC_INPUTS | LP_REC_OUTPUTS, e)) return LP_EINVAL;
  } else if (lp_record_require(rec, LP_REC_INPUTS, e)) {
    return lp_err_set(e, LP_EINVAL, "missing field \"docstring\" (or \"inputs\")");
  }
  if (metric == METRIC_BLEU && lp_record_require(rec, LP_REC_PROGRAM, e))
    return lp_err_set(e, LP_EINVAL, "missing field \"program\" (the reference for BLEU)");
  size_t n_spec = rec->inputs.len;
  if (np == 2 && rec->outputs.len != rec->inputs.len)
    return lp_err_set(e, LP_EINVAL, "%zu inputs but %zu outputs", rec->inputs.len,
                      rec->outputs.len);
  if (holdout > 0) { /* the last K examples are held out of the specification */
    if (np != 2 || n_spec <= (size_t)holdout)
      return lp_err_set(e, LP_EINVAL, "--holdout %d needs more than %d examples (the line has "
                        "%zu)", holdout, holdout, n_spec);
    n_spec -= (size_t)holdout;
    for (size_t i = n_spec; i < rec->inputs.len; i++)
      if (lp_strs_push(hin, rec->inputs.items[i].data ? rec->inputs.items[i].data : "",
                       rec->inputs.items[i].len) ||
          lp_strs_push(hout, rec->outputs.items[i].data ? rec->outputs.items[i].data : "",
                       rec->outputs.items[i].len))
        return lp_err_set(e, LP_ENOMEM, "out of memory");
  } else if (rec->has_held && np == 2) {
    for (size_t i = 0; i < rec->held_inputs.len; i++)
      if (lp_strs_push(hin, rec->held_inputs.items[i].data ? rec->held_inputs.items[i].data : "",
                       rec->held_inputs.items[i].len) ||
          lp_strs_push(hout, rec->held_outputs.items[i].data ? rec->held_outputs.items[i].data : "",
                       rec->held_outputs.items[i].len))
        return lp_err_set(e, LP_ENOMEM, "out of memory");
  }
  for (size_t i = 0; i < n_spec; i++)
    if (lp_strs_push(in, rec->inputs.items[i].data ? rec->inputs.items[i].data : "",
                     rec->inputs.items[i].len))
      return lp_err_set(e, LP_ENOMEM, "out of memory");
  for (size_t i = 0; np == 2 && i < n_spec; i++)
    if (lp_strs_push(out, rec->outputs.items[i].data ? rec->outputs.items[i].data : "",
                     rec->outputs.items[i].len))
      return lp_err_set(e, LP_ENOMEM, "out of memory");
  if (enc_task_make(L->d, in, np == 2 ? out : NULL, np, t, NULL, e)) return LP_EINVAL;
  /* examples are never cut: one longer than the model takes is a bad line */
  size_t max = L->m ? (size_t)lp_model_config(L->m)->max_spec_len : SIZE_MAX;
  for (size_t i = 0; i < t->n_ex * np; i++)
    if (t->spec_len[i] > max)
      return lp_err_set(e, LP_EINVAL, "%s %zu has %zu tokens, more than the model's "
                        "max_spec_len %zu", i % np ? "output" : "input", i / np + 1,
                        t->spec_len[i], max);
  *ref = rec->program;
  *ref_len = rec->program_len;
  return LP_OK;
}

static int dbl_cmp(const void *pa, const void *pb) {
  const double a = *(const double *)pa, b = *(const double *)pb;
  return a < b ? -1 : a > b ? 1 : 0;
}

/* The q-quantile of sorted v[0..n) (nearest rank). */
static double pct(const double *v, size_t n, double q) {
  size_t k = (size_t)ceil(q * (double)n);
  if (k < 1) k = 1;
  return v[k - 1];
}

/* The latent beam lp_model_search uses for an LP model (lp_search.c). */
static int latent_used(int beam, int lbeam) {
  int l = lbeam > 0 ? lbeam : (int)floor(sqrt((double)beam));
  if (l < 1) l = 1;
  if (l > beam) l = beam;
  return l;
}

static void eval_help(void) {
  printf(
      "usage: lpsynth eval --domain D [--model CKPT] --tasks FILE.jsonl [--metric exact|bleu]\n"
      "                    [--search auto|guided|beam|solver] [--time-limit S] [--holdout K]\n"
      "                    [--candidates N] [--split NAME] [--beam 1,10,100] [--latent-beam L,...]\n"
      "                    [--limit N] [--max-len N] [--details FILE.jsonl]\n"
      "                    [--domain-options STR] [--threads T] [--json]\n\n"
      "Searches the model for each task (one JSONL line) at every beam size B (and, for\n"
      "LP models, every latent beam size L) and reports, per (B, L):\n\n"
      "  exact (the default for domains that can check programs, e.g. string): a task\n"
      "      (\"inputs\", \"outputs\", optional \"program\") is solved when any of the B\n"
      "      programs is consistent with all of its examples (the domain's check);\n"
      "      accuracy, and accuracy by the reference program's size (the domain's unit:\n"
      "      expressions for the string domain).\n"
      "  bleu (the default, and the only metric, for domains without check, e.g. python):\n"
      "      a task (a \"docstring\"/\"code\" pair as `lpsynth corpus` writes it; or a\n"
      "      spec with a reference \"program\") scores the best sentence BLEU-4 among its\n"
      "      B programs (decoded to text) against the reference, as the Latent\n"
      "      Programmer paper does; reported: the mean of these scores x 100, and the\n"
      "      corpus BLEU-4 x 100 of the top-1 programs. Tokenisation `code` and smoothing\n"
      "      method1, as `lpsynth score` does by default. A docstring longer than the\n"
      "      model's max_spec_len tokens is cut to its first max_spec_len tokens (counted).\n\n"
      "Both also report tasks per second (of one worker: tasks / seconds of search and\n"
      "scoring at that (B, L), summed over the workers) and the diversity of the beams:\n"
      "for n = 1..4, the distinct n-grams of program tokens occurring in the B programs\n"
      "divided by the total tokens of the B programs (the paper's Figure 5(a)), the mean\n"
      "over the tasks whose beam has any token. In the table, L is the latent beam used\n"
      "(floor(sqrt(B)) by default, clamped to [1, B]; (B, L) pairs that come out the\n"
      "same are run once) and '-' for RobustFill models, which have none.\n"
      "A line that cannot be read or encoded (e.g. an example longer than the model's\n"
      "max_spec_len) is reported as FILE:LINE: message, the run goes on, and the exit\n"
      "status is then 1; a search that fails stops the run (FILE:LINE: search: ...).\n\n"
      "With --threads T > 1, T workers search the tasks at once, each with its own copy\n"
      "of the model and its own domain instance and one OpenBLAS thread, taking tasks\n"
      "in turn; results are collected and reported in line order, so everything but the\n"
      "times (tasks/s, wall time, \"seconds\") is the same for every T.\n\n"
      "With --metric exact each task is searched as `lpsynth synth --search MODE` does\n"
      "(auto: the domain's solver, its programs ranked by the model; guided: the\n"
      "execution-guided beam; beam: the model's beam; solver: the solver alone or\n"
      "ranked by the model), within --time-limit seconds; the answer is the top-ranked\n"
      "consistent program. Without --model the domain's solver runs alone (one row, B\n"
      "'-'). A line may carry \"held_inputs\"/\"held_outputs\" (examples never shown to\n"
      "the search), or --holdout K keeps its last K examples out: a second table then\n"
      "reports generalisation (the answer is right on every held-out example), the\n"
      "median/p90/max seconds per task, the tasks the time limit cut short and the\n"
      "stage that found each answer; a line whose \"program\" does not parse is a bad\n"
      "line.\n\n"
      "  --metric exact|bleu  see above\n"
      "  --search MODE        auto (default), guided, beam or solver (exact only)\n"
      "  --time-limit S       seconds per task and (B, L) run (default 10; 0: none)\n"
      "  --holdout K          hold out the last K examples of every task\n"
      "  --candidates N       solver: programs enumerated and ranked (default 100)\n"
      "  --rank R             with a model: hybrid (default: prior, ties by the model),\n"
      "                       model or prior (see synth --help)\n"
      "  --split NAME         only the lines whose \"split\" is NAME (e.g. test; a line\n"
      "                       without \"split\" is an error)\n"
      "  --beam LIST          beam sizes (default 1,10,100)\n"
      "  --latent-beam LIST   LP: latent beam sizes to sweep (default floor(sqrt(B)));\n"
      "                       ignored, with a warning, for RobustFill models\n"
      "  --limit N            only the first N tasks (of the split)\n"
      "  --max-len N          longest program searched, tokens incl. EOS (default: the\n"
      "                       model's max_program_len)\n"
      "  --details FILE       one JSON line per task and (B, L), written atomically:\n"
      "                       line, beam, latent_beam, found, tokens, distinct [n=1..4],\n"
      "                       and size, solved, rank, stage, seconds, generalised, timed_out\n"
      "                       (exact) or bleu (best, 0..1), rank\n"
      "                       (of the best), top1_bleu, top1 (the top program's text) (bleu)\n"
      "  --domain-options STR the domain's options (default: CKPT.spm beside the\n"
      "                       checkpoint when it exists, as `lpsynth train` writes it)\n"
      "  --threads T          T worker threads, 1..64 (default 1: one worker, with\n"
      "                       OpenBLAS's own thread count; --threads 1: one OpenBLAS\n"
      "                       thread). Each worker holds a copy of the model\n"
      "  --json               the summary as one JSON object (scores as fractions 0..1;\n"
      "                       \"seconds\": the wall time)\n");
}

/* ---- the work of eval: tasks read in order, searched by T workers ----
 *
 * The main thread reads a chunk of lines (parsing, encoding and batching each
 * task, which needs only the loaded domain and config), the workers search and
 * score the chunk's tasks, taking the next task from a shared counter, each
 * with its own model and its own domain instance, and the main thread then
 * accumulates the results and writes --details lines in line order. Everything
 * reported is therefore the same for any T, except times. */

/* The result of one (B, L) run on one task. */
typedef struct run_res {
  double secs;
  int found;                /* programs returned */
  int first;                /* exact: index of the first consistent program, or -1 */
  double best, top1;        /* bleu: best sentence BLEU in the beam, and the top program's */
  int best_rank;            /* bleu: 1-based rank of the best (0: empty beam) */
  char *top;                /* bleu: the top program's text (malloc'd), NULL when none */
  size_t top_len;
  lp_bleu_stats top_stats;  /* bleu: corpus statistics of the top program */
  long ntok;                /* tokens of the beam's programs (without EOS) */
  double div[DIV_N];
  int stage;                /* exact: the stage that found the top answer */
  int generalised;          /* exact: the top answer is right on every held-out example */
  int timed_out;
} run_res;

/* One line of the tasks file that is a task or a bad line (lines of other
 * splits are not kept). */
typedef struct eval_job {
  size_t lineno;
  int bad;                  /* a bad line: msg (NULL when out of memory) is printed */
  char *msg;
  lp_record rec;
  lp_strs tin, tout;
  enc_task t;
  lp_batch b;
  const char *ref;          /* bleu reference, into rec */
  size_t ref_len;
  int truncated;            /* the docstring was cut to max_spec_len */
  int32_t size;             /* exact: the reference program's size, 0..MAX_SIZE */
  lp_strs hin, hout;        /* exact: held-out examples (never shown to the search) */
  lp_example *hex;          /* views of them */
  run_res *runs;            /* [n_runs], index bi * n_lbeams + li */
  int failed_run;           /* -1, or the run whose search or scoring failed (msg says why) */
} eval_job;

/* What one worker owns: a model, a domain instance and scratch space. */
typedef struct eval_worker {
  lp_model *m;
  lp_domain *d;
  int own;                  /* 1: m and d are this worker's copies (freed with it) */
  lp_buf text;
  const int32_t **seqs;
  int *lens, cap_seqs;
} eval_worker;

typedef struct eval_ctx {
  eval_worker *w;
  eval_job *jobs;
  size_t n_jobs;
  atomic_size_t next;       /* the next job to take */
  atomic_size_t stop;       /* the first failed job (SIZE_MAX: none); later ones are skipped */
  atomic_size_t done;       /* tasks searched in this chunk */
  /* settings */
  const char *tasks;
  int metric, n_beams, n_lbeams, max_len;
  const int *beams, *lbeams;
  const unsigned char *dup;
  int32_t eos;
  int mode, cands, rank;    /* exact: --search, --candidates, --rank */
  double tlimit;            /* exact: --time-limit */
  cli_progress *pg;
  uint64_t done_before;     /* tasks of earlier chunks */
} eval_ctx;

static char *fmt_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *fmt_msg(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = NULL;
  if (vasprintf(&s, fmt, ap) < 0) s = NULL;
  va_end(ap);
  return s;
}

static void job_free(eval_job *J, int n_runs) {
  if (J->runs)
    for (int r = 0; r < n_runs; r++) free(J->runs[r].top);
  free(J->runs);
  free(J->msg);
  lp_batch_free(&J->b);
  enc_task_free(&J->t);
  lp_strs_free(&J->tin);
  lp_strs_free(&J->tout);
  lp_strs_free(&J->hin);
  lp_strs_free(&J->hout);
  free(J->hex);
  lp_record_free(&J->rec);
  memset(J, 0, sizeof *J);
}

static void bleu_stats_sum(lp_bleu_stats *a, const lp_bleu_stats *b) {
  for (int n = 0; n < LP_BLEU_MAX_N; n++) {
    a->match[n] += b->match[n];
    a->total[n] += b->total[n];
  }
  a->hyp_len += b->hyp_len;
  a->ref_len += b->ref_len;
  a->n_sentences += b->n_sentences;
}

/* Run (bi, li) on job J with worker W: search, score, diversity. Returns 0,
 * or -1 with J->msg set (the message names the file and line). */
static int eval_run(eval_ctx *C, eval_worker *W, eval_job *J, int bi, int li, run_res *R) {
  lp_err e = {0};
  lp_beam_result res = {0};
  double t0 = cli_now();
  int rc = 0;
  R->first = -1;
  if (C->metric == METRIC_EXACT) {
    lp_synth_opts so = {.mode = C->mode, .beam = C->beams[bi], .latent_beam = C->lbeams[li],
                        .max_len = C->max_len, .time_limit = C->tlimit,
                        .max_candidates = C->cands, .rank = C->rank};
    lp_synth_result sr = {0};
    if (lp_synthesize(W->d, W->m, W->m ? &J->b : NULL, J->t.ex, J->t.n_ex, &so, &sr, &e)) {
      J->msg = fmt_msg("%s:%zu: search: %s", C->tasks, J->lineno, e.msg);
      return -1;
    }
    R->first = sr.top;
    R->timed_out = sr.timed_out;
    if (sr.top >= 0) {
      const lp_synth_answer *a = &sr.ans[sr.top];
      R->stage = a->stage;
      int ok = 0;
      lp_err e2 = {0};
      if (J->hin.len &&
          lp_domain_check(W->d, a->prog, (size_t)a->prog_len, J->hex, J->hin.len, &ok, &e2) == 0)
        R->generalised = ok;
    }
    /* hand the answers to the diversity code below as a beam result */
    res.n = sr.n;
    res.hyps = sr.n ? calloc((size_t)sr.n, sizeof *res.hyps) : NULL;
    if (sr.n && !res.hyps) {
      lp_synth_result_free(&sr);
      J->msg = fmt_msg("%s:%zu: out of memory", C->tasks, J->lineno);
      return -1;
    }
    for (int h = 0; h < sr.n; h++) {
      res.hyps[h].prog = sr.ans[h].prog, res.hyps[h].prog_len = sr.ans[h].prog_len;
      sr.ans[h].prog = NULL;
    }
    lp_synth_result_free(&sr);
    R->found = res.n;
  } else {
    lp_beam_opts o = {.beam = C->beams[bi], .latent_beam = C->lbeams[li],
                      .max_len = C->max_len, .len_alpha = 0.0f};
    if (lp_model_search(W->m, &J->b, &o, &res, &e)) {
      J->msg = fmt_msg("%s:%zu: search: %s", C->tasks, J->lineno, e.msg);
      return -1;
    }
    R->found = res.n;
    const char *rs[1] = {J->ref};
    size_t rl[1] = {J->ref_len};
    for (int h = 0; h < res.n && rc == 0; h++) {
      lp_err e2 = {0};
      W->text.len = 0;
      if (lp_domain_program_decode(W->d, res.hyps[h].prog, (size_t)res.hyps[h].prog_len,
                                   &W->text, &e2))
        W->text.len = 0; /* not a well-formed program: scored as empty */
      const char *txt = W->text.data ? W->text.data : "";
      lp_bleu_stats one;
      memset(&one, 0, sizeof one);
      if (lp_bleu_add(&one, txt, W->text.len, rs, rl, 1, LP_BLEU_TOK_CODE, &e2)) {
        J->msg = fmt_msg("%s:%zu: BLEU: %s", C->tasks, J->lineno, e2.msg);
        rc = -1;
        break;
      }
      double b = lp_bleu_score(&one, LP_BLEU_SMOOTH_METHOD1, NULL);
      if (h == 0) {
        R->top1 = b;
        R->top_stats = one;
        R->top_len = W->text.len;
        if (!(R->top = malloc(W->text.len + 1))) {
          J->msg = fmt_msg("%s:%zu: out of memory", C->tasks, J->lineno);
          rc = -1;
          break;
        }
        memcpy(R->top, txt, W->text.len);
        R->top[W->text.len] = '\0';
      }
      if (R->best_rank == 0 || b > R->best) {
        R->best = b;
        R->best_rank = h + 1;
      }
    }
    /* an empty beam counts as an empty top program in the corpus BLEU */
    lp_err e2 = {0};
    if (rc == 0 && res.n == 0 &&
        lp_bleu_add(&R->top_stats, "", 0, rs, rl, 1, LP_BLEU_TOK_CODE, &e2)) {
      J->msg = fmt_msg("%s:%zu: BLEU: %s", C->tasks, J->lineno, e2.msg);
      rc = -1;
    }
  }
  /* diversity over the programs' tokens (without EOS) */
  if (rc == 0 && res.n > W->cap_seqs) {
    free(W->seqs);
    free(W->lens);
    W->seqs = malloc((size_t)res.n * sizeof *W->seqs);
    W->lens = malloc((size_t)res.n * sizeof *W->lens);
    W->cap_seqs = W->seqs && W->lens ? res.n : 0;
    if (!W->cap_seqs) {
      J->msg = fmt_msg("%s:%zu: out of memory", C->tasks, J->lineno);
      rc = -1;
    }
  }
  if (rc == 0) {
    for (int h = 0; h < res.n; h++) {
      int n = res.hyps[h].prog_len;
      if (n > 0 && res.hyps[h].prog[n - 1] == C->eos) n--;
      W->seqs[h] = res.hyps[h].prog;
      W->lens[h] = n;
    }
    R->ntok = cli_beam_diversity(W->seqs, W->lens, res.n, DIV_N, R->div);
    if (R->ntok < 0) {
      J->msg = fmt_msg("%s:%zu: out of memory", C->tasks, J->lineno);
      rc = -1;
    }
  }
  lp_beam_free(&res);
  R->secs = cli_now() - t0;
  return rc;
}

static void eval_worker_main(void *ctx, int w) {
  eval_ctx *C = ctx;
  eval_worker *W = &C->w[w];
  for (;;) {
    size_t j = atomic_fetch_add(&C->next, 1);
    if (j >= C->n_jobs || j > atomic_load(&C->stop)) break;
    eval_job *J = &C->jobs[j];
    if (J->bad) continue;
    for (int bi = 0; bi < C->n_beams && J->failed_run < 0; bi++)
      for (int li = 0; li < C->n_lbeams; li++) {
        int r = bi * C->n_lbeams + li;
        if (C->dup[r]) continue;
        if (eval_run(C, W, J, bi, li, &J->runs[r])) {
          J->failed_run = r;
          break;
        }
      }
    if (J->failed_run >= 0) { /* later jobs need not run: stop = min(stop, j) */
      size_t s = atomic_load(&C->stop);
      while (j < s && !atomic_compare_exchange_weak(&C->stop, &s, j)) {
      }
    }
    size_t d = atomic_fetch_add(&C->done, 1) + 1;
    if (w == 0) cli_progress_update(C->pg, C->done_before + d);
  }
}

static void worker_free(eval_worker *W) {
  if (W->own) {
    lp_model_free(W->m);
    lp_domain_free(W->d);
  }
  lp_buf_free(&W->text);
  free(W->seqs);
  free(W->lens);
  memset(W, 0, sizeof *W);
}

/* Worker w > 0: a domain instance of its own (created with the options the
 * first one was) and a copy of the model (a new model of the same config with
 * the loaded parameters and state, as lp_ckpt_load makes it). */
static int worker_make(const char *domain, const loaded *L, eval_worker *W) {
  lp_err e = {0};
  memset(W, 0, sizeof *W);
  W->own = 1;
  W->d = lp_domain_open(domain, L->dopts, &e);
  if (!W->d) {
    cli_error("eval", "worker domain: %s", e.msg);
    return -1;
  }
  lp_ckpt_domain dom;
  if (lp_ckpt_domain_of(W->d, &dom, &e) || dom.vocab_fp != L->dom.vocab_fp) {
    cli_error("eval", "worker domain: %s", e.msg[0] ? e.msg : "another vocabulary than the first "
              "instance's (did the domain options file change?)");
    return -1;
  }
  lp_model *m0 = L->m;
  if (!m0) return 0; /* the solver alone: a domain instance is all a worker needs */
  W->m = lp_model_new(lp_model_config(m0), &L->dom.spec, &L->dom.prog, (int)L->dom.n_parts, 0, &e);
  if (!W->m) {
    cli_error("eval", "worker model: %s", e.msg);
    return -1;
  }
  size_t n0 = 0, n1 = 0;
  float *s0 = lp_model_state(m0, &n0), *s1 = lp_model_state(W->m, &n1);
  if (!s0) n0 = 0;
  if (!s1) n1 = 0;
  if (lp_model_num_params(W->m) != lp_model_num_params(m0) || n0 != n1) {
    cli_error("eval", "worker model: the copy has another size than the loaded model");
    return -1;
  }
  memcpy(lp_model_params(W->m), lp_model_params(m0), lp_model_num_params(m0) * sizeof(float));
  if (n0) memcpy(s1, s0, n0 * sizeof(float));
  return 0;
}

int cmd_eval(int argc, char **argv) {
  static const struct option lo[] = {{"domain", required_argument, 0, 'd'},
                                     {"domain-options", required_argument, 0, 'O'},
                                     {"model", required_argument, 0, 'm'},
                                     {"tasks", required_argument, 0, 'T'},
                                     {"beam", required_argument, 0, 'b'},
                                     {"latent-beam", required_argument, 0, 'L'},
                                     {"limit", required_argument, 0, 'n'},
                                     {"threads", required_argument, 0, 't'},
                                     {"max-len", required_argument, 0, 'M'},
                                     {"details", required_argument, 0, 'D'},
                                     {"metric", required_argument, 0, 'k'},
                                     {"split", required_argument, 0, 'S'},
                                     {"search", required_argument, 0, 'E'},
                                     {"time-limit", required_argument, 0, 'l'},
                                     {"candidates", required_argument, 0, 'c'},
                                     {"holdout", required_argument, 0, 'H'},
                                     {"rank", required_argument, 0, 'R'},
                                     {"json", no_argument, 0, 'j'},
                                     {"help", no_argument, 0, 'h'},
                                     {0, 0, 0, 0}};
  const char *domain = NULL, *dopts = NULL, *ckpt = NULL, *tasks = NULL, *details = NULL,
             *split = NULL;
  int beams[MAX_BEAMS] = {1, 10, 100}, n_beams = 3, lbeams[MAX_BEAMS] = {0}, n_lbeams = 1;
  int64_t limit = 0, threads = 0, maxlen = 0, cands = 100, holdout = 0;
  int json = 0, c, metric = METRIC_DEFAULT, mode = LP_SEARCH_AUTO, beams_given = 0;
  int rank = LP_RANK_HYBRID;
  double tlimit = 10.0;
  while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
    switch (c) {
      case 'd': domain = optarg; break;
      case 'O': dopts = optarg; break;
      case 'm': ckpt = optarg; break;
      case 'T': tasks = optarg; break;
      case 'D': details = optarg; break;
      case 'S':
        if (!*optarg) {
          cli_error("eval", "--split expects a split name (train, valid, test)");
          return EXIT_USAGE;
        }
        split = optarg;
        break;
      case 'k':
        if (!strcmp(optarg, "exact"))
          metric = METRIC_EXACT;
        else if (!strcmp(optarg, "bleu"))
          metric = METRIC_BLEU;
        else {
          cli_error("eval", "--metric must be exact or bleu, got \"%s\"", optarg);
          return EXIT_USAGE;
        }
        break;
      case 'b':
        if (parse_list("eval", "--beam", optarg, beams, MAX_BEAMS, &n_beams)) return EXIT_USAGE;
        beams_given = 1;
        break;
      case 'E':
        if ((mode = lp_search_mode_parse(optarg)) < 0) {
          cli_error("eval", "--search must be beam, guided, solver or auto, got \"%s\"", optarg);
          return EXIT_USAGE;
        }
        break;
      case 'l':
        if (cli_parse_seconds("eval", "--time-limit", optarg, &tlimit)) return EXIT_USAGE;
        break;
      case 'c':
        if (cli_parse_i64("eval", "--candidates", optarg, 1, 100000, &cands)) return EXIT_USAGE;
        break;
      case 'H':
        if (cli_parse_i64("eval", "--holdout", optarg, 1, 1000, &holdout)) return EXIT_USAGE;
        break;
      case 'R':
        if ((rank = lp_rank_parse(optarg)) < 0) {
          cli_error("eval", "--rank must be hybrid, model or prior, got \"%s\"", optarg);
          return EXIT_USAGE;
        }
        break;
      case 'L':
        if (parse_list("eval", "--latent-beam", optarg, lbeams, MAX_BEAMS, &n_lbeams)) return EXIT_USAGE;
        break;
      case 'n':
        if (cli_parse_i64("eval", "--limit", optarg, 1, INT64_MAX, &limit)) return EXIT_USAGE;
        break;
      case 'M':
        if (cli_parse_i64("eval", "--max-len", optarg, 1, 100000, &maxlen)) return EXIT_USAGE;
        break;
      case 't':
        if (cli_parse_i64("eval", "--threads", optarg, 1, LP_ENGINE_MAX_WORKERS, &threads))
          return EXIT_USAGE;
        break;
      case 'j': json = 1; break;
      case 'h':
        eval_help();
        return EXIT_OK;
      default:
        return EXIT_USAGE;
    }
  }
  if (optind < argc) {
    cli_error("eval", "unexpected argument \"%s\"", argv[optind]);
    return EXIT_USAGE;
  }
  if (!domain || !tasks) {
    cli_error("eval", "%s is required", !domain ? "--domain" : "--tasks FILE");
    return EXIT_USAGE;
  }
  if (ckpt && mode == LP_SEARCH_SOLVER && metric != METRIC_BLEU) { /* no beam: one run */
    if (beams_given)
      fprintf(stderr, "lpsynth eval: warning: --beam is ignored with --search solver\n");
    n_beams = 1;
    beams[0] = 0;
  }
  if (!ckpt) { /* the domain's solver alone: one run, no beam */
    if (mode == LP_SEARCH_BEAM || mode == LP_SEARCH_GUIDED || metric == METRIC_BLEU) {
      cli_error("eval", "--model CKPT is required (%s)",
                metric == METRIC_BLEU ? "--metric bleu scores a model's programs"
                                      : "--search beam and guided search a model");
      return EXIT_USAGE;
    }
    if (beams_given)
      fprintf(stderr, "lpsynth eval: warning: --beam is ignored without a model\n");
    n_beams = 1;
    beams[0] = 0;
  }
  for (int bi = 0; bi < n_beams; bi++)
    if (beams[bi] > 4096) { /* lp_model_search's limit */
      cli_error("eval", "--beam: %d is more than the largest beam, 4096", beams[bi]);
      return EXIT_USAGE;
    }
  const int n_workers = threads > 1 ? (int)threads : 1;
  loaded L;
  /* T workers: each runs its products on one OpenBLAS thread; one worker:
   * --threads 1 sets one OpenBLAS thread, no --threads leaves OpenBLAS as it is */
  if (ckpt ? load_model("eval", domain, dopts, ckpt, n_workers > 1 ? 1 : (int)threads, &L)
           : open_solver_domain("eval", domain, dopts, &L))
    return EXIT_FAIL;
  int can_check = lp_domain_has(L.d, LP_CAP_CHECK) && L.dom.n_parts == 2;
  if (metric == METRIC_DEFAULT) metric = can_check ? METRIC_EXACT : METRIC_BLEU;
  if (metric == METRIC_EXACT && !can_check) {
    cli_error("eval", "--metric exact: domain %s cannot check programs against examples (it "
              "has no check capability); use --metric bleu", lp_domain_name(L.d));
    unload(&L);
    return EXIT_USAGE;
  }
  if (metric != METRIC_EXACT && holdout) {
    cli_error("eval", "--holdout needs --metric exact (examples to check)");
    unload(&L);
    return EXIT_USAGE;
  }
  const lp_model_cfg *mcfg = L.m ? lp_model_config(L.m) : NULL;
  int is_lp = mcfg && mcfg->kind == LP_MODEL_LP;
  if (!is_lp) {
    int any = 0;
    for (int i = 0; i < n_lbeams; i++) any |= lbeams[i] != 0;
    if (any)
      fprintf(stderr, "lpsynth eval: warning: --latent-beam is ignored: %s holds a robustfill "
              "model, which has no latent beam\n", ckpt);
    n_lbeams = 1;
    lbeams[0] = 0;
  }
  const int n_runs = n_beams * n_lbeams;
  const size_t chunk = (size_t)64 * (size_t)n_workers; /* lines read per round */
  eval_worker *workers = calloc((size_t)n_workers, sizeof *workers);
  eval_job *jobs = calloc(chunk, sizeof *jobs);
  run_acc *acc = calloc((size_t)n_runs, sizeof *acc);
  if (!workers || !jobs || !acc) {
    cli_error("eval", "out of memory");
    free(workers);
    free(jobs);
    free(acc);
    unload(&L);
    return EXIT_FAIL;
  }
  workers[0].m = L.m;
  workers[0].d = L.d;
  int wfail = 0;
  for (int w = 1; w < n_workers && !wfail; w++) wfail = worker_make(domain, &L, &workers[w]);
  lp_err e = {0};
  lp_jsonl *r = wfail ? NULL : lp_jsonl_open(tasks, 0, &e);
  if (!wfail && !r) cli_error("eval", "%s", e.msg);
  cli_out dout = {0};
  if (r && details && cli_out_open(&dout, details, "eval")) {
    lp_jsonl_free(r);
    r = NULL;
  }
  if (!r) {
    for (int w = 0; w < n_workers; w++) worker_free(&workers[w]);
    free(workers);
    free(jobs);
    free(acc);
    unload(&L);
    return EXIT_FAIL;
  }
  /* (B, L) pairs whose latent beam, clamped to [1, B], repeats an earlier one are run once */
  unsigned char dup[MAX_BEAMS * MAX_BEAMS] = {0};
  for (int bi = 0; bi < n_beams && is_lp; bi++)
    for (int li = 0; li < n_lbeams; li++)
      for (int lj = 0; lj < li; lj++)
        if (!dup[bi * n_lbeams + lj] &&
            latent_used(beams[bi], lbeams[lj]) == latent_used(beams[bi], lbeams[li]))
          dup[bi * n_lbeams + li] = 1;
  long size_count[MAX_SIZE + 1] = {0};
  long n_tasks = 0, n_bad = 0, n_trunc = 0;
  int64_t n_read = 0; /* tasks read (bad lines and other splits not counted) */
  const char *line;
  size_t len, lineno;
  int st, rc = EXIT_OK, eof = 0;
  cli_progress pg;
  eval_ctx C;
  memset(&C, 0, sizeof C);
  C.w = workers;
  C.jobs = jobs;
  C.tasks = tasks;
  C.metric = metric;
  C.n_beams = n_beams;
  C.n_lbeams = n_lbeams;
  C.max_len = (int)maxlen;
  C.beams = beams;
  C.lbeams = lbeams;
  C.dup = dup;
  C.eos = L.dom.prog.eos;
  C.mode = mode;
  C.tlimit = tlimit;
  C.cands = (int)cands;
  C.rank = rank;
  C.pg = &pg;
  double wall0 = cli_now();
  cli_progress_start(&pg, "eval", (uint64_t)limit);
  while (rc == EXIT_OK && !eof && (limit == 0 || n_read < limit)) {
    /* read: up to `chunk` tasks and bad lines */
    size_t n_jobs = 0;
    while (n_jobs < chunk && (limit == 0 || n_read < limit)) {
      st = lp_jsonl_next(r, &line, &len, &lineno, &e);
      if (st == 0) {
        eof = 1;
        break;
      }
      eval_job *J = &jobs[n_jobs];
      memset(J, 0, sizeof *J);
      J->lineno = lineno;
      J->failed_run = -1;
      if (st < 0) {
        J->bad = 1;
        J->msg = fmt_msg("%s", e.msg);
        n_jobs++;
        continue;
      }
      if (lp_record_parse(line, len, &J->rec, &e)) {
        J->bad = 1;
        J->msg = fmt_msg("%s:%zu: %s", tasks, lineno, e.msg);
        n_jobs++;
        continue;
      }
      if (split) {
        if (!J->rec.split) {
          J->bad = 1;
          J->msg = fmt_msg("%s:%zu: missing field \"split\" (a string; --split %s needs it on "
                           "every line)", tasks, lineno, split);
          n_jobs++;
          continue;
        }
        if (J->rec.split_len != strlen(split) || memcmp(J->rec.split, split, J->rec.split_len)) {
          job_free(J, 0);
          continue;
        }
      }
      n_jobs++;
      if (eval_task(&L, &J->rec, metric, (int)holdout, &J->tin, &J->tout, &J->hin, &J->hout,
                    &J->t, &J->ref, &J->ref_len, &J->truncated, &e)) {
        J->bad = 1;
        J->msg = fmt_msg("%s:%zu: %s", tasks, lineno, e.msg);
        continue;
      }
      if (J->hin.len) {
        if (!(J->hex = calloc(J->hin.len, sizeof *J->hex))) {
          J->bad = 1;
          continue;
        }
        for (size_t i = 0; i < J->hin.len; i++) {
          J->hex[i].part[0] = J->hin.items[i].data ? J->hin.items[i].data : "";
          J->hex[i].len[0] = J->hin.items[i].len;
          J->hex[i].part[1] = J->hout.items[i].data ? J->hout.items[i].data : "";
          J->hex[i].len[1] = J->hout.items[i].len;
        }
      }
      lp_task_ids ti = {0};
      ti.n_examples = J->t.n_ex;
      ti.spec = J->t.spec;
      ti.spec_len = J->t.spec_len;
      if (mcfg && lp_batch_fill(&J->b, &ti, 1, (int)L.dom.n_parts, L.dom.spec.pad,
                                L.dom.prog.pad, mcfg, &e)) {
        J->bad = 1;
        J->msg = fmt_msg("%s:%zu: %s", tasks, lineno, e.msg);
        continue;
      }
      if (metric == METRIC_EXACT) {
        lp_ids gold = {0};
        lp_err e2 = {0};
        if (J->rec.program &&
            lp_domain_program_encode(L.d, J->rec.program, J->rec.program_len, &gold, &e2)) {
          /* a reference that does not parse is a bad line, not a task of size 0 */
          J->bad = 1;
          J->msg = fmt_msg("%s:%zu: field \"program\": %s", tasks, lineno, e2.msg);
          lp_ids_free(&gold);
          continue;
        }
        if (J->rec.program && lp_domain_has(L.d, LP_CAP_LENGTH))
          lp_domain_program_size(L.d, gold.data, gold.len, &J->size, &e2);
        lp_ids_free(&gold);
        if (J->size < 0) J->size = 0;
        if (J->size > MAX_SIZE) J->size = MAX_SIZE;
      }
      if (!(J->runs = calloc((size_t)n_runs, sizeof *J->runs))) {
        J->bad = 1;
        continue;
      }
      n_read++;
    }
    /* search */
    C.n_jobs = n_jobs;
    atomic_store(&C.next, 0);
    atomic_store(&C.stop, SIZE_MAX);
    atomic_store(&C.done, 0);
    C.done_before = (uint64_t)n_tasks;
    if (n_jobs) lp_engine_parallel(n_workers, eval_worker_main, &C);
    /* report, in line order */
    for (size_t j = 0; j < n_jobs && rc == EXIT_OK; j++) {
      eval_job *J = &jobs[j];
      if (J->bad) {
        cli_error("eval", "%s", J->msg ? J->msg : "out of memory");
        n_bad++;
        continue;
      }
      n_trunc += J->truncated;
      if (metric == METRIC_EXACT) size_count[J->size]++;
      for (int bi = 0; bi < n_beams && rc == EXIT_OK; bi++)
        for (int li = 0; li < n_lbeams; li++) {
          int ri = bi * n_lbeams + li;
          if (dup[ri]) continue;
          if (ri == J->failed_run) {
            cli_error("eval", "%s", J->msg ? J->msg : "out of memory");
            rc = EXIT_FAIL;
            break;
          }
          run_acc *a = &acc[ri];
          const run_res *R = &J->runs[ri];
          a->secs += R->secs;
          if (metric == METRIC_EXACT) {
            if (R->first >= 0) {
              a->solved++;
              a->by_size[J->size]++;
              a->by_stage[R->stage & 3]++;
            }
            if (J->hin.len) {
              a->held_tasks++;
              a->generalised += R->generalised;
            }
            a->timed_out += R->timed_out;
            if (a->n_times == a->cap_times) {
              size_t cap = a->cap_times ? 2 * a->cap_times : 256;
              double *tt = realloc(a->times, cap * sizeof *tt);
              if (!tt) {
                cli_error("eval", "out of memory");
                rc = EXIT_FAIL;
                break;
              }
              a->times = tt, a->cap_times = cap;
            }
            a->times[a->n_times++] = R->secs;
          } else {
            bleu_stats_sum(&a->top1, &R->top_stats);
            a->best_sum += R->best;
          }
          if (R->ntok > 0) {
            for (int n = 0; n < DIV_N; n++) a->div_sum[n] += R->div[n];
            a->div_tasks++;
          }
          if (dout.f) {
            json_t *o = json_pack("{s:I, s:i, s:i, s:i, s:I, s:[f,f,f,f]}", "line",
                                  (json_int_t)J->lineno, "beam", beams[bi], "latent_beam",
                                  lbeams[li], "found", R->found, "tokens", (json_int_t)R->ntok,
                                  "distinct", R->div[0], R->div[1], R->div[2], R->div[3]);
            if (is_lp)
              json_object_set_new(o, "latent_beam_used", json_integer(latent_used(beams[bi], lbeams[li])));
            if (metric == METRIC_EXACT) {
              json_object_set_new(o, "size", json_integer(J->size));
              json_object_set_new(o, "solved", json_boolean(R->first >= 0));
              json_object_set_new(o, "rank", json_integer(R->first + 1));
              json_object_set_new(o, "stage", json_string(lp_stage_name(R->stage)));
              json_object_set_new(o, "seconds", json_real(R->secs));
              if (R->timed_out) json_object_set_new(o, "timed_out", json_true());
              if (J->hin.len)
                json_object_set_new(o, "generalised", json_boolean(R->generalised));
            } else {
              json_object_set_new(o, "bleu", json_real(R->best));
              json_object_set_new(o, "rank", json_integer(R->best_rank));
              json_object_set_new(o, "top1_bleu", json_real(R->top1));
              json_object_set_new(o, "top1", R->found ? json_text(R->top, R->top_len) : json_null());
              if (J->truncated) json_object_set_new(o, "spec_truncated", json_true());
            }
            json_dumpf(o, dout.f, JSON_COMPACT);
            fputc('\n', dout.f);
            json_decref(o);
          }
        }
      if (rc == EXIT_OK) n_tasks++;
    }
    for (size_t j = 0; j < n_jobs; j++) job_free(&jobs[j], n_runs);
  }
  cli_progress_end(&pg, (uint64_t)n_tasks);
  double wall = cli_now() - wall0;
  lp_jsonl_free(r);
  for (int w = 0; w < n_workers; w++) worker_free(&workers[w]);
  free(workers);
  free(jobs);
  if (dout.f && (rc != EXIT_OK ? (cli_out_abort(&dout), 0) : cli_out_commit(&dout, "eval"))) rc = EXIT_FAIL;
  if (n_tasks == 0) {
    if (split)
      cli_error("eval", "%s: no usable task of split \"%s\"", tasks, split);
    else
      cli_error("eval", "%s: no usable tasks", tasks);
    for (int ri = 0; ri < n_runs; ri++) free(acc[ri].times);
    free(acc);
    unload(&L);
    return EXIT_FAIL;
  }
  json_t *js = json_object();
  json_object_set_new(js, "metric", json_string(metric == METRIC_EXACT ? "exact" : "bleu"));
  json_object_set_new(js, "model", json_string(!L.m ? "none" : is_lp ? "lp" : "robustfill"));
  json_object_set_new(js, "tasks", json_integer(n_tasks));
  json_object_set_new(js, "bad_lines", json_integer(n_bad));
  if (split) json_object_set_new(js, "split", json_string(split));
  if (metric == METRIC_BLEU) {
    json_object_set_new(js, "truncated_specs", json_integer(n_trunc));
    json_object_set_new(js, "tokenize", json_string("code"));
    json_object_set_new(js, "smoothing", json_string("method1"));
  }
  json_t *runs = json_array();
  if (!json) {
    printf("%ld tasks from %s%s%s%s (%ld bad lines), %s model, metric %s\n", n_tasks, tasks,
           split ? " (split " : "", split ? split : "", split ? ")" : "", n_bad,
           !L.m ? "no" : is_lp ? "lp" : "robustfill",
           metric == METRIC_EXACT ? "exact (a task is solved when a program found is consistent)"
                                  : "bleu (sentence BLEU-4 of the best of the B programs; code tokens, smoothing method1)");
    if (metric == METRIC_BLEU && n_trunc)
      printf("%ld docstring%s cut to max_spec_len %d tokens\n", n_trunc, n_trunc == 1 ? "" : "s",
             mcfg->max_spec_len);
    if (metric == METRIC_EXACT)
      printf("\n     B      L  accuracy               tasks/s  distinct-1  distinct-2  distinct-3  distinct-4\n");
    else
      printf("\n     B      L  BLEU best-of-B  corpus BLEU top-1    tasks/s  distinct-1  distinct-2  distinct-3  distinct-4\n");
  }
  for (int bi = 0; bi < n_beams; bi++)
    for (int li = 0; li < n_lbeams; li++) {
      if (dup[bi * n_lbeams + li]) continue;
      run_acc *a = &acc[bi * n_lbeams + li];
      double tps = a->secs > 0 ? n_tasks / a->secs : 0.0;
      double dv[DIV_N];
      for (int n = 0; n < DIV_N; n++) dv[n] = a->div_tasks ? a->div_sum[n] / (double)a->div_tasks : 0.0;
      json_t *run = json_pack("{s:i, s:i, s:f}", "beam", beams[bi], "latent_beam", lbeams[li],
                              "tasks_per_second", tps);
      json_object_set_new(run, "latent_beam_used",
                          is_lp ? json_integer(latent_used(beams[bi], lbeams[li])) : json_null());
      json_object_set_new(run, "diversity",
                          json_pack("{s:f, s:f, s:f, s:f, s:I}", "distinct_1", dv[0], "distinct_2",
                                    dv[1], "distinct_3", dv[2], "distinct_4", dv[3], "tasks",
                                    (json_int_t)a->div_tasks));
      char lcol[16];
      if (is_lp)
        snprintf(lcol, sizeof lcol, "%d", latent_used(beams[bi], lbeams[li]));
      else
        snprintf(lcol, sizeof lcol, "-");
      if (metric == METRIC_EXACT) {
        double accu = (double)a->solved / (double)n_tasks;
        json_object_set_new(run, "accuracy", json_real(accu));
        json_object_set_new(run, "solved", json_integer(a->solved));
        json_t *bys = json_object();
        char key[16];
        for (int s = 0; s <= MAX_SIZE; s++)
          if (size_count[s]) {
            snprintf(key, sizeof key, "%d", s);
            json_object_set_new(bys, key, json_pack("{s:I, s:f}", "tasks", (json_int_t)size_count[s],
                                                    "accuracy", (double)a->by_size[s] / (double)size_count[s]));
          }
        json_object_set_new(run, "by_size", bys);
        double q[3] = {0, 0, 0}; /* median, p90, max seconds per task */
        if (a->n_times) {
          qsort(a->times, a->n_times, sizeof *a->times, dbl_cmp);
          q[0] = pct(a->times, a->n_times, 0.5);
          q[1] = pct(a->times, a->n_times, 0.9);
          q[2] = a->times[a->n_times - 1];
        }
        json_object_set_new(run, "median_seconds", json_real(q[0]));
        json_object_set_new(run, "p90_seconds", json_real(q[1]));
        json_object_set_new(run, "max_seconds", json_real(q[2]));
        json_object_set_new(run, "timed_out", json_integer(a->timed_out));
        json_object_set_new(run, "held_tasks", json_integer(a->held_tasks));
        json_object_set_new(run, "generalised", json_integer(a->generalised));
        json_object_set_new(run, "generalisation",
                            a->held_tasks ? json_real((double)a->generalised / (double)a->held_tasks)
                                          : json_null());
        json_object_set_new(run, "found_by",
                            json_pack("{s:I, s:I, s:I}", "beam", (json_int_t)a->by_stage[LP_STAGE_BEAM],
                                      "guided", (json_int_t)a->by_stage[LP_STAGE_GUIDED],
                                      "solver", (json_int_t)a->by_stage[LP_STAGE_SOLVER]));
        if (!json) {
          char accs[64];
          snprintf(accs, sizeof accs, "%6.2f%% (%ld/%ld)", 100 * accu, a->solved, n_tasks);
          char bcol[16];
          snprintf(bcol, sizeof bcol, beams[bi] ? "%d" : "-", beams[bi]);
          printf("%6s %6s  %-19s %10.2f  %10.3f  %10.3f  %10.3f  %10.3f\n", bcol, lcol, accs,
                 tps, dv[0], dv[1], dv[2], dv[3]);
        }
      } else {
        double mean = a->best_sum / (double)n_tasks;
        lp_bleu_result br;
        double corpus = lp_bleu_score(&a->top1, LP_BLEU_SMOOTH_METHOD1, &br);
        json_object_set_new(run, "bleu", json_real(mean));
        json_object_set_new(run, "corpus_bleu_top1", json_real(corpus));
        if (!json)
          printf("%6d %6s  %14.2f  %17.2f  %9.2f  %10.3f  %10.3f  %10.3f  %10.3f\n", beams[bi], lcol,
                 100 * mean, 100 * corpus, tps, dv[0], dv[1], dv[2], dv[3]);
      }
      json_array_append_new(runs, run);
    }
  if (!json && metric == METRIC_EXACT) {
    printf("\nsearch %s, time limit %g s per task; generalisation: the top-ranked consistent\n"
           "program is right on every held-out example; seconds per task:\n",
           lp_search_mode_name(mode), tlimit);
    for (int bi = 0; bi < n_beams; bi++)
      for (int li = 0; li < n_lbeams; li++) {
        if (dup[bi * n_lbeams + li]) continue;
        run_acc *a = &acc[bi * n_lbeams + li];
        char gen[64];
        if (a->held_tasks)
          snprintf(gen, sizeof gen, "%.2f%% (%ld/%ld)",
                   100.0 * (double)a->generalised / (double)a->held_tasks, a->generalised,
                   a->held_tasks);
        else
          snprintf(gen, sizeof gen, "- (no held-out examples)");
        double q[3] = {0, 0, 0};
        if (a->n_times) { /* sorted above */
          q[0] = pct(a->times, a->n_times, 0.5);
          q[1] = pct(a->times, a->n_times, 0.9);
          q[2] = a->times[a->n_times - 1];
        }
        if (beams[bi]) printf("  B %d", beams[bi]);
        else printf("  solver");
        if (is_lp) printf(" L %d", latent_used(beams[bi], lbeams[li]));
        printf(": generalisation %s, median %.3f, p90 %.3f, max %.3f s, timed out %ld; found by "
               "beam %ld, guided %ld, solver %ld\n", gen, q[0], q[1], q[2], a->timed_out,
               a->by_stage[LP_STAGE_BEAM], a->by_stage[LP_STAGE_GUIDED],
               a->by_stage[LP_STAGE_SOLVER]);
      }
    printf("\naccuracy by program size (the domain's unit):\n");
    for (int bi = 0; bi < n_beams; bi++)
      for (int li = 0; li < n_lbeams; li++) {
        if (dup[bi * n_lbeams + li]) continue;
        run_acc *a = &acc[bi * n_lbeams + li];
        printf("  B %d", beams[bi]);
        if (is_lp) printf(" L %d", latent_used(beams[bi], lbeams[li]));
        printf(":");
        for (int s = 0; s <= MAX_SIZE; s++)
          if (size_count[s]) printf(" %d:%.1f%%", s, 100.0 * a->by_size[s] / (double)size_count[s]);
        printf("\n");
      }
  }
  if (!json)
    printf("\nB: beam size; L: latent beam size (LP models; '-': RobustFill has none);\n"
           "distinct-n: distinct n-grams of program tokens in the B programs / their total\n"
           "tokens, the mean over the tasks whose beam has any token; tasks/s: tasks per\n"
           "second of search and scoring at that (B, L) for one worker (the time summed\n"
           "over the workers); wall time %.2f s\n", wall);
  json_object_set_new(js, "runs", runs);
  if (metric == METRIC_EXACT) {
    json_object_set_new(js, "search", json_string(lp_search_mode_name(mode)));
    json_object_set_new(js, "time_limit", json_real(tlimit));
    json_object_set_new(js, "rank", json_string(lp_rank_name(rank)));
  }
  json_object_set_new(js, "seconds", json_real(wall));
  if (json) {
    json_dumpf(js, stdout, JSON_COMPACT);
    putchar('\n');
  }
  json_decref(js);
  for (int ri = 0; ri < n_runs; ri++) free(acc[ri].times);
  free(acc);
  unload(&L);
  if (rc == EXIT_OK && n_bad) rc = EXIT_FAIL;
  return rc;
}
