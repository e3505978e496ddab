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

static int load_model(const char *verb, const char *domain, const char *dopts, const char *ckpt,
                      int threads, loaded *L) {
  memset(L, 0, sizeof *L);
  lp_err e = {0};
  L->d = lp_domain_open(domain, dopts, &e);
  if (!L->d) {
    cli_error(verb, "%s", e.msg);
    return -1;
  }
  if (lp_ckpt_domain_of(L->d, &L->dom, &e) ||
      lp_ckpt_load(ckpt, &L->dom, &L->m, NULL, NULL, NULL, &e)) {
    cli_error(verb, "%s", e.msg);
    lp_domain_free(L->d);
    L->d = NULL;
    return -1;
  }
  if (threads > 0) lp_engine_set_threads(threads);
  return 0;
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
  } else if (lp_record_parse(line, len, &rec, &e) || lp_record_require(&rec, LP_REC_INPUTS, &e)) {
    cli_error(verb, "%s:%zu: %s", path, lineno, e.msg);
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
               "                     [--json]\n\n"
               "Searches the model for programs consistent with the examples and prints the B\n"
               "best, ranked by log-probability; the first consistent one is marked with '*'\n"
               "and its outputs on the inputs are shown. LP models print each program's latent\n"
               "code (TOK_k | ...). --examples reads the first JSON line of FILE with \"inputs\"\n"
               "and \"outputs\" arrays; --io gives one example (repeatable); --spec gives a text\n"
               "specification (docstring domains).\n\n"
               "  --beam B          programs returned (default 10)\n"
               "  --latent-beam L   LP: latent beams (default floor(sqrt(B)))\n"
               "  --max-len N       longest program searched, in tokens incl. EOS\n"
               "                    (default: the model's max_program_len)\n"
               "  --threads T       OpenBLAS threads\n"
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
      json_t *hj = json_pack("{s:i, s:s, s:f, s:b}", "rank", k + 1, "program",
                             valid ? text.data : "(not a well-formed program)", "score",
                             (double)h->score, "consistent", ok);
      if (h->latent_len) json_object_set_new(hj, "latent", json_string(latent));
      json_array_append_new(arr, hj);
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
                                     {"json", no_argument, 0, 'j'},
                                     {"help", no_argument, 0, 'h'},
                                     {0, 0, 0, 0}};
  const char *domain = NULL, *dopts = NULL, *ckpt = NULL, *tasks = NULL, *details = NULL;
  int beams[MAX_BEAMS] = {1, 10, 100}, n_beams = 3, lbeams[MAX_BEAMS] = {0}, n_lbeams = 1;
  int64_t limit = 0, threads = 0, maxlen = 0;
  int json = 0, c;
  while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
    switch (c) {
      case 'd': domain = optarg; break;
      case 'O': dopts = optarg; break;
      case 'm': ckpt = optarg; break;
      case 'T': tasks = optarg; break;
      case 'D': details = optarg; break;
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
        printf("usage: lpsynth eval --domain D --model CKPT --tasks FILE.jsonl [--beam 1,10,100]\n"
               "                    [--latent-beam L,...] [--limit N] [--max-len N] [--details FILE.jsonl]\n"
               "                    [--threads T] [--json]\n\n"
               "Exact accuracy: a task (a JSONL line with \"program\", \"inputs\", \"outputs\") is\n"
               "solved at beam B when any of the B programs found is consistent with all of\n"
               "its examples (the domain's check decides). Reports accuracy for each beam size\n"
               "(and latent beam size, for LP models), accuracy by program size (the domain's\n"
               "unit: expressions for the string domain) and tasks per second.\n\n"
               "  --beam LIST         beam sizes (default 1,10,100)\n"
               "  --latent-beam LIST  LP: latent beam sizes to sweep (default floor(sqrt(B)))\n"
               "  --limit N           only the first N tasks\n"
               "  --max-len N         longest program searched, tokens incl. EOS (default:\n"
               "                      the model's max_program_len)\n"
               "  --details FILE      one JSON line per task and beam (written atomically)\n"
               "  --json              the summary as one JSON object\n");
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
  if (!lp_domain_has(L.d, LP_CAP_CHECK) || L.dom.n_parts != 2) {
    cli_error("eval", "domain %s cannot check programs against examples: exact accuracy needs "
              "the check capability", lp_domain_name(L.d));
    unload(&L);
    return EXIT_FAIL;
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
  long solved[MAX_BEAMS * MAX_BEAMS] = {0}, by_size[MAX_BEAMS * MAX_BEAMS][MAX_SIZE + 1] = {{0}};
  long size_count[MAX_SIZE + 1] = {0};
  double secs[MAX_BEAMS * MAX_BEAMS] = {0};
  long n_tasks = 0, n_bad = 0;
  const char *line;
  size_t len, lineno;
  int st, rc = EXIT_OK;
  cli_progress pg;
  cli_progress_start(&pg, "eval", (uint64_t)limit);
  while ((limit == 0 || n_tasks < limit) && (st = lp_jsonl_next(r, &line, &len, &lineno, &e)) != 0) {
    lp_record rec;
    lp_ids gold = {0};
    enc_task t;
    int32_t size = 0;
    if (st < 0 || lp_record_parse(line, len, &rec, &e)) {
      cli_error("eval", "%s:%zu: %s", tasks, lineno, e.msg);
      n_bad++;
      continue;
    }
    if (lp_record_require(&rec, LP_REC_INPUTS | LP_REC_OUTPUTS, &e) ||
        enc_task_make(L.d, &rec.inputs, &rec.outputs, 2, &t, NULL, &e)) {
      cli_error("eval", "%s:%zu: %s", tasks, lineno, e.msg);
      lp_record_free(&rec);
      n_bad++;
      continue;
    }
    if (rec.program && lp_domain_program_encode(L.d, rec.program, rec.program_len, &gold, &e) == 0 &&
        lp_domain_has(L.d, LP_CAP_LENGTH))
      lp_domain_program_size(L.d, gold.data, gold.len, &size, &e);
    if (size < 0) size = 0;
    if (size > MAX_SIZE) size = MAX_SIZE;
    size_count[size]++;
    for (int bi = 0; bi < n_beams; bi++)
      for (int li = 0; li < n_lbeams; li++) {
        int k = bi * n_lbeams + li;
        lp_beam_result res = {0};
        double t0 = cli_now();
        if (search_task(&L, &t, beams[bi], lbeams[li], (int)maxlen, &res, &e)) {
          cli_error("eval", "%s:%zu: search: %s", tasks, lineno, e.msg);
          rc = EXIT_FAIL;
          break;
        }
        int first = -1;
        for (int h = 0; h < res.n && first < 0; h++) {
          int ok = 0;
          lp_err e2 = {0};
          if (lp_domain_check(L.d, res.hyps[h].prog, (size_t)res.hyps[h].prog_len, t.ex, t.n_ex, &ok, &e2) == 0 && ok)
            first = h;
        }
        secs[k] += cli_now() - t0;
        if (first >= 0) {
          solved[k]++;
          by_size[k][size]++;
        }
        if (dout.f) {
          json_t *o = json_pack("{s:I, s:i, s:i, s:i, s:b, s:i, s:i}", "line", (json_int_t)lineno,
                                "beam", beams[bi], "latent_beam", lbeams[li], "size", size,
                                "solved", first >= 0, "rank", first + 1, "found", res.n);
          json_dumpf(o, dout.f, JSON_COMPACT);
          fputc('\n', dout.f);
          json_decref(o);
        }
        lp_beam_free(&res);
      }
    enc_task_free(&t);
    lp_ids_free(&gold);
    lp_record_free(&rec);
    if (rc != EXIT_OK) break;
    n_tasks++;
    cli_progress_update(&pg, (uint64_t)n_tasks);
  }
  cli_progress_end(&pg, (uint64_t)n_tasks);
  lp_jsonl_free(r);
  if (dout.f && (rc != EXIT_OK ? (cli_out_abort(&dout), 0) : cli_out_commit(&dout, "eval"))) rc = EXIT_FAIL;
  if (n_tasks == 0) {
    cli_error("eval", "%s: no usable tasks", tasks);
    unload(&L);
    return EXIT_FAIL;
  }
  json_t *js = json_object();
  json_object_set_new(js, "tasks", json_integer(n_tasks));
  json_object_set_new(js, "bad_lines", json_integer(n_bad));
  json_t *runs = json_array();
  if (!json) printf("%ld tasks from %s (%ld bad lines)\n", n_tasks, tasks, n_bad);
  for (int bi = 0; bi < n_beams; bi++)
    for (int li = 0; li < n_lbeams; li++) {
      int k = bi * n_lbeams + li;
      double acc = (double)solved[k] / (double)n_tasks;
      json_t *run = json_pack("{s:i, s:i, s:f, s:I, s:f}", "beam", beams[bi], "latent_beam",
                              lbeams[li], "accuracy", acc, "solved", (json_int_t)solved[k],
                              "tasks_per_second", secs[k] > 0 ? n_tasks / secs[k] : 0.0);
      json_t *bys = json_object();
      char key[16];
      for (int s = 0; s <= MAX_SIZE; s++)
        if (size_count[s]) {
          snprintf(key, sizeof key, "%d", s);
          json_object_set_new(bys, key, json_pack("{s:I, s:f}", "tasks", (json_int_t)size_count[s],
                                                  "accuracy", (double)by_size[k][s] / (double)size_count[s]));
        }
      json_object_set_new(run, "by_size", bys);
      json_array_append_new(runs, run);
      if (!json) {
        printf("beam %4d", beams[bi]);
        if (lbeams[li]) printf(" latent %3d", lbeams[li]);
        printf(": accuracy %6.2f%% (%ld/%ld), %.2f tasks/s\n  by size:", 100 * acc, solved[k], n_tasks,
               secs[k] > 0 ? n_tasks / secs[k] : 0.0);
        for (int s = 0; s <= MAX_SIZE; s++)
          if (size_count[s]) printf(" %d:%.1f%%", s, 100.0 * by_size[k][s] / (double)size_count[s]);
        printf("\n");
      }
    }
  json_object_set_new(js, "runs", runs);
  if (json) {
    json_dumpf(js, stdout, JSON_COMPACT);
    putchar('\n');
  }
  json_decref(js);
  unload(&L);
  return rc;
}
