/* synth and eval: search a trained model for programs, check them with the domain. */
#define _GNU_SOURCE
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "lpsynth/checkpoint.h"
#include "lpsynth/metrics.h"
#include "lpsynth/model.h"

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
  if (threads > 0) lp_engine_set_threads(threads);
out:
  free(beside);
  return rc;
}

static void unload(loaded *L) {
  lp_model_free(L->m);
  lp_domain_free(L->d);
}

/* Search one task; fills res. */
static int search_task(loaded *L, const enc_task *t, int beam, int latent_beam, int max_len,
                       lp_beam_result *res, lp_err *e) {
  lp_task_ids ti = {0};
  ti.n_examples = t->n_ex;
  ti.spec = t->spec;
  ti.spec_len = t->spec_len;
  lp_batch b = {0};
  int rc = lp_batch_fill(&b, &ti, 1, (int)L->dom.n_parts, L->dom.spec.pad, L->dom.prog.pad,
                         lp_model_config(L->m), e);
  if (rc == LP_OK) {
    lp_beam_opts o = {beam, latent_beam, max_len, 0.0f};
    rc = lp_model_search(L->m, &b, &o, res, e);
  }
  lp_batch_free(&b);
  return rc;
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
    cli_error(verb, "%s", st == 0 ? "examples file is empty" : e.msg);
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
                                     {"json", no_argument, 0, 'j'},
                                     {"help", no_argument, 0, 'h'},
                                     {0, 0, 0, 0}};
  const char *domain = NULL, *dopts = NULL, *ckpt = NULL, *exfile = NULL;
  int64_t beam = 10, lbeam = 0, threads = 0, maxlen = 0;
  int json = 0, c, rc = EXIT_USAGE;
  lp_strs in = {0}, out = {0};
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
      case 'b':
        if (cli_parse_i64("synth", "--beam", optarg, 1, 100000, &beam)) goto done;
        break;
      case 'L':
        if (cli_parse_i64("synth", "--latent-beam", optarg, 1, 100000, &lbeam)) goto done;
        break;
      case 'M':
        if (cli_parse_i64("synth", "--max-len", optarg, 1, 100000, &maxlen)) goto done;
        break;
      case 't':
        if (cli_parse_i64("synth", "--threads", optarg, 1, 256, &threads)) goto done;
        break;
      case 'j': json = 1; break;
      case 'h':
        printf("usage: lpsynth synth --domain D --model CKPT (--examples FILE.json | --io 'IN => OUT' ...\n"
               "                     | --spec TEXT) [--beam B] [--latent-beam L] [--max-len N] [--threads T]\n"
               "                     [--domain-options STR] [--json]\n\n"
               "Searches the model for programs and prints the B best, ranked by\n"
               "log-probability, as text. For domains that can check programs, the first one\n"
               "consistent with the examples is marked with '*' and its outputs on the inputs\n"
               "are shown. LP models print each program's latent code (TOK_k | ...). A program\n"
               "of several lines (python) is printed below its rank and score, indented by eight\n"
               "spaces, then a blank line. --examples reads the first JSON line of FILE: its \"inputs\" and\n"
               "\"outputs\" arrays, or its \"docstring\" (a line of `lpsynth corpus`); --io gives\n"
               "one example (repeatable); --spec gives a text specification (docstring domains\n"
               "such as python; a spec longer than the model's max_spec_len tokens is cut to\n"
               "its first max_spec_len tokens, with a warning).\n\n"
               "  --beam B          programs returned (default 10)\n"
               "  --latent-beam L   LP: latent beams (default floor(sqrt(B)))\n"
               "  --max-len N       longest program searched, in tokens incl. EOS\n"
               "                    (default: the model's max_program_len)\n"
               "  --threads T       OpenBLAS threads\n"
               "  --domain-options STR  the domain's options (default: CKPT.spm beside the\n"
               "                    checkpoint when it exists, as `lpsynth train` writes it)\n"
               "  --json            one JSON object with every program\n");
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
  if (!domain || !ckpt) {
    cli_error("synth", "%s is required", !domain ? "--domain" : "--model CKPT");
    goto done;
  }
  if (exfile && read_examples_file("synth", exfile, &in, &out)) {
    rc = EXIT_FAIL;
    goto done;
  }
  if (in.len == 0) {
    cli_error("synth", "no examples: give --examples FILE, --io 'IN => OUT' or --spec TEXT");
    goto done;
  }
  rc = EXIT_FAIL;
  loaded L;
  if (load_model("synth", domain, dopts, ckpt, (int)threads, &L)) goto done;
  lp_err e = {0};
  enc_task t;
  size_t unk = 0;
  if (enc_task_make(L.d, &in, L.dom.n_parts == 2 ? &out : NULL, L.dom.n_parts, &t, &unk, &e)) {
    cli_error("synth", "%s", e.msg);
    unload(&L);
    goto done;
  }
  if (unk) fprintf(stderr, "lpsynth synth: warning: %zu characters outside the domain's alphabet (encoded as UNK)\n", unk);
  if (L.dom.n_parts == 1) {
    size_t max = (size_t)lp_model_config(L.m)->max_spec_len;
    for (size_t i = 0; i < t.n_ex; i++)
      if (t.spec_len[i] > max) {
        fprintf(stderr, "lpsynth synth: warning: spec %zu has %zu tokens; cut to the model's "
                "max_spec_len %zu\n", i + 1, t.spec_len[i], max);
        t.spec_len[i] = max;
      }
  }
  lp_beam_result res = {0};
  double t0 = cli_now();
  if (search_task(&L, &t, (int)beam, (int)lbeam, (int)maxlen, &res, &e)) {
    cli_error("synth", "%s", e.msg);
    enc_task_free(&t);
    unload(&L);
    goto done;
  }
  double el = cli_now() - t0;
  int can_check = L.dom.n_parts == 2 && lp_domain_has(L.d, LP_CAP_CHECK);
  int first = -1;
  json_t *arr = json_array();
  lp_buf text = {0}, o = {0};
  for (int k = 0; k < res.n; k++) {
    lp_hyp *h = &res.hyps[k];
    text.len = 0;
    int ok = 0, valid = lp_domain_program_decode(L.d, h->prog, (size_t)h->prog_len, &text, &e) == 0;
    if (valid && can_check) lp_domain_check(L.d, h->prog, (size_t)h->prog_len, t.ex, t.n_ex, &ok, &e);
    if (ok && first < 0) first = k;
    char latent[1024] = "";
    size_t lu = 0;
    for (int j = 0; j < h->latent_len && lu + 16 < sizeof latent; j++)
      lu += (size_t)snprintf(latent + lu, sizeof latent - lu, "%sTOK_%d", j ? " | " : "", h->latent[j]);
    if (json) {
      json_t *hj = json_pack("{s:i, s:o, s:f, s:b}", "rank", k + 1, "program",
                             valid ? json_text(text.data, text.len)
                                   : json_string("(not a well-formed program)"),
                             "score", (double)h->score, "consistent", ok);
      if (h->latent_len) json_object_set_new(hj, "latent", json_string(latent));
      json_array_append_new(arr, hj);
    } else if (valid && text.data && memchr(text.data, '\n', text.len)) {
      /* several lines: rank and score, then the program indented */
      printf("%c %3d  %9.4f%s%s\n", ok && first == k ? '*' : ' ', k + 1, h->score,
             h->latent_len ? "  " : "", h->latent_len ? latent : "");
      const char *p = text.data, *end = text.data + text.len;
      while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        printf("        %.*s\n", (int)n, p);
        p += n + (nl ? 1 : 0);
      }
      printf("\n");
    } else {
      printf("%c %3d  %9.4f  %s%s%s\n", ok && first == k ? '*' : ' ', k + 1, h->score,
             h->latent_len ? latent : "", h->latent_len ? "  ||  " : "",
             valid ? text.data : "(not a well-formed program)");
    }
  }
  if (first >= 0 && lp_domain_has(L.d, LP_CAP_EXECUTE)) {
    lp_hyp *h = &res.hyps[first];
    json_t *outs = json_array();
    if (!json) printf("\nfirst consistent program (rank %d), its outputs:\n", first + 1);
    for (size_t i = 0; i < t.n_ex; i++) {
      o.len = 0;
      if (lp_domain_execute(L.d, h->prog, (size_t)h->prog_len, t.ex[i].part[0], t.ex[i].len[0], &o, &e)) continue;
      if (json)
        json_array_append_new(outs, json_stringn(o.data ? o.data : "", o.len));
      else
        printf("  %s -> %s\n", t.ex[i].part[0], o.data ? o.data : "");
    }
    if (json) {
      json_t *top = json_pack("{s:o, s:i, s:o, s:f}", "programs", arr, "first_consistent", first + 1,
                              "outputs", outs, "seconds", el);
      json_dumpf(top, stdout, JSON_COMPACT);
      putchar('\n');
      json_decref(top);
      arr = NULL;
    } else {
      json_decref(outs);
    }
  } else if (json) {
    json_t *top = json_pack("{s:o, s:n, s:f}", "programs", arr, "first_consistent", "seconds", el);
    json_dumpf(top, stdout, JSON_COMPACT);
    putchar('\n');
    json_decref(top);
    arr = NULL;
  } else if (can_check) {
    printf("\nno consistent program among the %d found (%.2f s)\n", res.n, el);
  }
  json_decref(arr);
  lp_buf_free(&text);
  lp_buf_free(&o);
  lp_beam_free(&res);
  enc_task_free(&t);
  unload(&L);
  rc = EXIT_OK;
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
} run_acc;

/* The task of one line, for eval. A docstring/code pair: the docstring (cut to
 * max_spec_len tokens, *truncated = 1) and the code as reference; otherwise
 * "inputs"/"outputs" (one-part domains: "inputs") and "program". The example
 * texts are copied into *in / *out, which the task's views point into. */
static int eval_task(loaded *L, const lp_record *rec, int metric, lp_strs *in, lp_strs *out,
                     enc_task *t, const char **ref, size_t *ref_len, int *truncated,
                     lp_err *e) {
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
  for (size_t i = 0; i < rec->inputs.len; i++)
    if (lp_strs_push(in, rec->inputs.items[i].data ? rec->inputs.items[i].data : "",
                     rec->inputs.items[i].len))
      return lp_err_set(e, LP_ENOMEM, "out of memory");
  for (size_t i = 0; np == 2 && i < rec->outputs.len; i++)
    if (lp_strs_push(out, rec->outputs.items[i].data ? rec->outputs.items[i].data : "",
                     rec->outputs.items[i].len))
      return lp_err_set(e, LP_ENOMEM, "out of memory");
  if (enc_task_make(L->d, in, np == 2 ? out : NULL, np, t, NULL, e)) return LP_EINVAL;
  *ref = rec->program;
  *ref_len = rec->program_len;
  return LP_OK;
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
      "usage: lpsynth eval --domain D --model CKPT --tasks FILE.jsonl [--metric exact|bleu]\n"
      "                    [--split NAME] [--beam 1,10,100] [--latent-beam L,...] [--limit N]\n"
      "                    [--max-len N] [--details FILE.jsonl] [--domain-options STR]\n"
      "                    [--threads T] [--json]\n\n"
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
      "Both also report tasks per second and the diversity of the beams: for n = 1..4,\n"
      "the distinct n-grams of program tokens occurring in the B programs divided by\n"
      "the total tokens of the B programs (the paper's Figure 5(a)), the mean over the\n"
      "tasks whose beam has any token. In the table, L is the latent beam actually used\n"
      "(floor(sqrt(B)) by default, clamped to [1, B]; (B, L) pairs that come out the\n"
      "same are run once) and '-' for RobustFill models, which have none.\n"
      "A line that cannot be read is reported as FILE:LINE: message, the run goes on,\n"
      "and the exit status is then 1.\n\n"
      "  --metric exact|bleu  see above\n"
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
      "                       and size, solved, rank (exact) or bleu (best, 0..1), rank\n"
      "                       (of the best), top1_bleu, top1 (the top program's text) (bleu)\n"
      "  --domain-options STR the domain's options (default: CKPT.spm beside the\n"
      "                       checkpoint when it exists, as `lpsynth train` writes it)\n"
      "  --threads T          OpenBLAS threads\n"
      "  --json               the summary as one JSON object (scores as fractions 0..1)\n");
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
                                     {"json", no_argument, 0, 'j'},
                                     {"help", no_argument, 0, 'h'},
                                     {0, 0, 0, 0}};
  const char *domain = NULL, *dopts = NULL, *ckpt = NULL, *tasks = NULL, *details = NULL,
             *split = NULL;
  int beams[MAX_BEAMS] = {1, 10, 100}, n_beams = 3, lbeams[MAX_BEAMS] = {0}, n_lbeams = 1;
  int64_t limit = 0, threads = 0, maxlen = 0;
  int json = 0, c, metric = METRIC_DEFAULT;
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
        if (cli_parse_i64("eval", "--threads", optarg, 1, 256, &threads)) return EXIT_USAGE;
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
  if (!domain || !ckpt || !tasks) {
    cli_error("eval", "%s is required", !domain ? "--domain" : !ckpt ? "--model CKPT" : "--tasks FILE");
    return EXIT_USAGE;
  }
  loaded L;
  if (load_model("eval", domain, dopts, ckpt, (int)threads, &L)) return EXIT_FAIL;
  int can_check = lp_domain_has(L.d, LP_CAP_CHECK) && L.dom.n_parts == 2;
  if (metric == METRIC_DEFAULT) metric = can_check ? METRIC_EXACT : METRIC_BLEU;
  if (metric == METRIC_EXACT && !can_check) {
    cli_error("eval", "--metric exact: domain %s cannot check programs against examples (it "
              "has no check capability); use --metric bleu", lp_domain_name(L.d));
    unload(&L);
    return EXIT_USAGE;
  }
  const lp_model_cfg *mcfg = lp_model_config(L.m);
  int is_lp = mcfg->kind == LP_MODEL_LP;
  if (!is_lp) {
    int any = 0;
    for (int i = 0; i < n_lbeams; i++) any |= lbeams[i] != 0;
    if (any)
      fprintf(stderr, "lpsynth eval: warning: --latent-beam is ignored: %s holds a robustfill "
              "model, which has no latent beam\n", ckpt);
    n_lbeams = 1;
    lbeams[0] = 0;
  }
  lp_err e = {0};
  lp_jsonl *r = lp_jsonl_open(tasks, 0, &e);
  if (!r) {
    cli_error("eval", "%s", e.msg);
    unload(&L);
    return EXIT_FAIL;
  }
  cli_out dout = {0};
  if (details && cli_out_open(&dout, details, "eval")) {
    lp_jsonl_free(r);
    unload(&L);
    return EXIT_FAIL;
  }
  const int n_runs = n_beams * n_lbeams;
  run_acc *acc = calloc((size_t)n_runs, sizeof *acc);
  if (!acc) {
    cli_error("eval", "out of memory");
    cli_out_abort(&dout);
    lp_jsonl_free(r);
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
  const char *line;
  size_t len, lineno;
  int st, rc = EXIT_OK;
  const int32_t eos = L.dom.prog.eos;
  lp_buf text = {0}, top = {0};
  const int32_t **seqs = NULL;
  int *lens = NULL, cap_seqs = 0;
  cli_progress pg;
  cli_progress_start(&pg, "eval", (uint64_t)limit);
  while ((limit == 0 || n_tasks < limit) && (st = lp_jsonl_next(r, &line, &len, &lineno, &e)) != 0) {
    lp_record rec;
    lp_ids gold = {0};
    lp_strs tin = {0}, tout = {0};
    enc_task t;
    memset(&t, 0, sizeof t);
    int32_t size = 0;
    if (st < 0 || lp_record_parse(line, len, &rec, &e)) {
      if (st < 0)
        cli_error("eval", "%s", e.msg);
      else
        cli_error("eval", "%s:%zu: %s", tasks, lineno, e.msg);
      n_bad++;
      continue;
    }
    if (split) {
      if (!rec.split) {
        cli_error("eval", "%s:%zu: missing field \"split\" (a string; --split %s needs it on "
                  "every line)", tasks, lineno, split);
        lp_record_free(&rec);
        n_bad++;
        continue;
      }
      if (rec.split_len != strlen(split) || memcmp(rec.split, split, rec.split_len)) {
        lp_record_free(&rec);
        continue;
      }
    }
    const char *ref = NULL;
    size_t ref_len = 0;
    int truncated = 0;
    if (eval_task(&L, &rec, metric, &tin, &tout, &t, &ref, &ref_len, &truncated, &e)) {
      cli_error("eval", "%s:%zu: %s", tasks, lineno, e.msg);
      enc_task_free(&t);
      lp_strs_free(&tin);
      lp_strs_free(&tout);
      lp_record_free(&rec);
      n_bad++;
      continue;
    }
    n_trunc += truncated;
    if (metric == METRIC_EXACT) {
      if (rec.program && lp_domain_program_encode(L.d, rec.program, rec.program_len, &gold, &e) == 0 &&
          lp_domain_has(L.d, LP_CAP_LENGTH))
        lp_domain_program_size(L.d, gold.data, gold.len, &size, &e);
      if (size < 0) size = 0;
      if (size > MAX_SIZE) size = MAX_SIZE;
      size_count[size]++;
    }
    for (int bi = 0; bi < n_beams && rc == EXIT_OK; bi++)
      for (int li = 0; li < n_lbeams; li++) {
        if (dup[bi * n_lbeams + li]) continue;
        run_acc *a = &acc[bi * n_lbeams + li];
        lp_beam_result res = {0};
        double t0 = cli_now();
        if (search_task(&L, &t, beams[bi], lbeams[li], (int)maxlen, &res, &e)) {
          cli_error("eval", "%s:%zu: search: %s", tasks, lineno, e.msg);
          rc = EXIT_FAIL;
          break;
        }
        /* score */
        int first = -1, best_rank = 0;
        double best = 0, top1 = 0;
        if (metric == METRIC_EXACT) {
          for (int h = 0; h < res.n && first < 0; h++) {
            int ok = 0;
            lp_err e2 = {0};
            if (lp_domain_check(L.d, res.hyps[h].prog, (size_t)res.hyps[h].prog_len, t.ex, t.n_ex, &ok, &e2) == 0 && ok)
              first = h;
          }
          if (first >= 0) {
            a->solved++;
            a->by_size[size]++;
          }
        } else {
          top.len = 0;
          for (int h = 0; h < res.n; h++) {
            lp_err e2 = {0};
            text.len = 0;
            if (lp_domain_program_decode(L.d, res.hyps[h].prog, (size_t)res.hyps[h].prog_len, &text, &e2))
              text.len = 0; /* not a well-formed program: scored as empty */
            lp_bleu_stats one;
            memset(&one, 0, sizeof one);
            const char *rs[1] = {ref};
            size_t rl[1] = {ref_len};
            if (lp_bleu_add(&one, text.data ? text.data : "", text.len, rs, rl, 1, LP_BLEU_TOK_CODE, &e2)) {
              cli_error("eval", "%s:%zu: BLEU: %s", tasks, lineno, e2.msg);
              rc = EXIT_FAIL;
              break;
            }
            double b = lp_bleu_score(&one, LP_BLEU_SMOOTH_METHOD1, NULL);
            if (h == 0) {
              top1 = b;
              if (text.len && lp_buf_append(&top, text.data, text.len)) {
                cli_error("eval", "out of memory");
                rc = EXIT_FAIL;
                break;
              }
            }
            if (best_rank == 0 || b > best) {
              best = b;
              best_rank = h + 1;
            }
          }
          const char *rs[1] = {ref};
          size_t rl[1] = {ref_len};
          lp_err e2 = {0};
          if (rc == EXIT_OK && lp_bleu_add(&a->top1, top.data ? top.data : "", top.len, rs, rl, 1,
                                           LP_BLEU_TOK_CODE, &e2)) {
            cli_error("eval", "%s:%zu: BLEU: %s", tasks, lineno, e2.msg);
            rc = EXIT_FAIL;
          }
          a->best_sum += best;
        }
        /* diversity over the programs' tokens (without EOS) */
        if (res.n > cap_seqs) {
          cap_seqs = res.n;
          free(seqs);
          free(lens);
          seqs = malloc((size_t)cap_seqs * sizeof *seqs);
          lens = malloc((size_t)cap_seqs * sizeof *lens);
          if (!seqs || !lens) {
            cli_error("eval", "out of memory");
            cap_seqs = 0;
            rc = EXIT_FAIL;
          }
        }
        double div[DIV_N] = {0};
        long ntok = 0;
        if (rc == EXIT_OK) {
          for (int h = 0; h < res.n; h++) {
            int n = res.hyps[h].prog_len;
            if (n > 0 && res.hyps[h].prog[n - 1] == eos) n--;
            seqs[h] = res.hyps[h].prog;
            lens[h] = n;
          }
          ntok = cli_beam_diversity(seqs, lens, res.n, DIV_N, div);
          if (ntok < 0) {
            cli_error("eval", "out of memory");
            rc = EXIT_FAIL;
          } else if (ntok > 0) {
            for (int n = 0; n < DIV_N; n++) a->div_sum[n] += div[n];
            a->div_tasks++;
          }
        }
        a->secs += cli_now() - t0;
        if (dout.f && rc == EXIT_OK) {
          json_t *o = json_pack("{s:I, s:i, s:i, s:i, s:I, s:[f,f,f,f]}", "line", (json_int_t)lineno,
                                "beam", beams[bi], "latent_beam", lbeams[li], "found", res.n,
                                "tokens", (json_int_t)ntok, "distinct", div[0], div[1], div[2],
                                div[3]);
          if (is_lp)
            json_object_set_new(o, "latent_beam_used", json_integer(latent_used(beams[bi], lbeams[li])));
          if (metric == METRIC_EXACT) {
            json_object_set_new(o, "size", json_integer(size));
            json_object_set_new(o, "solved", json_boolean(first >= 0));
            json_object_set_new(o, "rank", json_integer(first + 1));
          } else {
            json_object_set_new(o, "bleu", json_real(best));
            json_object_set_new(o, "rank", json_integer(best_rank));
            json_object_set_new(o, "top1_bleu", json_real(top1));
            json_object_set_new(o, "top1", res.n ? json_text(top.data, top.len) : json_null());
            if (truncated) json_object_set_new(o, "spec_truncated", json_true());
          }
          json_dumpf(o, dout.f, JSON_COMPACT);
          fputc('\n', dout.f);
          json_decref(o);
        }
        lp_beam_free(&res);
        if (rc != EXIT_OK) break;
      }
    enc_task_free(&t);
    lp_strs_free(&tin);
    lp_strs_free(&tout);
    lp_ids_free(&gold);
    lp_record_free(&rec);
    if (rc != EXIT_OK) break;
    n_tasks++;
    cli_progress_update(&pg, (uint64_t)n_tasks);
  }
  cli_progress_end(&pg, (uint64_t)n_tasks);
  lp_jsonl_free(r);
  free(seqs);
  free(lens);
  lp_buf_free(&text);
  lp_buf_free(&top);
  if (dout.f && (rc != EXIT_OK ? (cli_out_abort(&dout), 0) : cli_out_commit(&dout, "eval"))) rc = EXIT_FAIL;
  if (n_tasks == 0) {
    if (split)
      cli_error("eval", "%s: no usable task of split \"%s\"", tasks, split);
    else
      cli_error("eval", "%s: no usable tasks", tasks);
    free(acc);
    unload(&L);
    return EXIT_FAIL;
  }
  json_t *js = json_object();
  json_object_set_new(js, "metric", json_string(metric == METRIC_EXACT ? "exact" : "bleu"));
  json_object_set_new(js, "model", json_string(is_lp ? "lp" : "robustfill"));
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
           is_lp ? "lp" : "robustfill",
           metric == METRIC_EXACT ? "exact (a task is solved when one of the B programs is consistent)"
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
        if (!json) {
          char accs[64];
          snprintf(accs, sizeof accs, "%6.2f%% (%ld/%ld)", 100 * accu, a->solved, n_tasks);
          printf("%6d %6s  %-19s %10.2f  %10.3f  %10.3f  %10.3f  %10.3f\n", beams[bi], lcol, accs,
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
           "tokens, the mean over the tasks whose beam has any token\n");
  json_object_set_new(js, "runs", runs);
  if (json) {
    json_dumpf(js, stdout, JSON_COMPACT);
    putchar('\n');
  }
  json_decref(js);
  free(acc);
  unload(&L);
  if (rc == EXIT_OK && n_bad) rc = EXIT_FAIL;
  return rc;
}
