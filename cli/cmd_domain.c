/* Verbs that need only a domain plugin: domains, run, exec, gen, check, demo. */
#define _GNU_SOURCE
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "lpsynth/checkpoint.h"
#include "lpsynth/synth.h"

/* ---------- shared helpers ---------- */

static lp_domain *open_domain(const char *verb, const char *name, const char *options) {
  lp_err e = {0};
  lp_domain *d = lp_domain_open(name, options, &e);
  if (!d) cli_error(verb, "%s", e.msg);
  return d;
}

static json_t *jstr(const char *s, size_t n) { return json_stringn(s, n); }

static json_t *jids(const lp_ids *v) {
  json_t *a = json_array();
  for (size_t i = 0; a && i < v->len; i++) json_array_append_new(a, json_integer(v->data[i]));
  return a;
}

/* Write one JSON value as a line; 0 or -1 (an output string was not UTF-8). */
static int emit(FILE *f, json_t *o) {
  if (json_dumpf(o, f, JSON_COMPACT) != 0) return -1;
  fputc('\n', f);
  return 0;
}

static void emit_error(FILE *f, const char *verb, const char *src, size_t lineno, const char *msg) {
  json_t *o = json_pack("{s:I, s:s}", "line", (json_int_t)lineno, "error", msg);
  if (o) {
    emit(f, o);
    json_decref(o);
  }
  fprintf(stderr, "lpsynth %s: %s:%zu: %s\n", verb, src, lineno, msg);
}

/* Build an array of JSON strings; NULL (and names the element) if one is not UTF-8. */
static json_t *jstrs(const lp_strs *v, size_t start, size_t step, lp_err *e, const char *field) {
  json_t *a = json_array();
  for (size_t i = start; a && i < v->len; i += step) {
    json_t *s = jstr(v->items[i].data ? v->items[i].data : "", v->items[i].len);
    if (!s) {
      lp_err_set(e, LP_EINVAL, "%s %zu is not valid UTF-8 and cannot be written as JSON", field,
                 (i - start) / step + 1);
      json_decref(a);
      return NULL;
    }
    json_array_append_new(a, s);
  }
  return a;
}

/* ---------- domains ---------- */

static const cli_verb_spec domains_verb = {
    CLI_DOMAINS, "domains", NULL,
    "Lists every lpsynth_*.so domain plugin on the search path, in search order:\n"
    "$LPSYNTH_PLUGIN_PATH, then the plugins folder beside the executable, the\n"
    "installed plugin folder, the build tree's. Plugins that fail to load are\n"
    "listed with the reason.",
    NULL};

int cmd_domains(int argc, char **argv) {
  cli_opts o;
  int rc = cli_parse(&domains_verb, argc, argv, &o);
  if (rc != CLI_PARSED) return rc;
  const int json = o.json;
  cli_opts_free(&o);
  if ((rc = cli_no_operands(&o, argc, argv, NULL))) return rc;
  lp_plugin_info *v;
  size_t n;
  lp_err e = {0};
  if (lp_plugin_list(&v, &n, &e)) {
    cli_error("domains", "%s", e.msg);
    return EXIT_FAIL;
  }
  if (!json) {
    const char *dirs[32];
    size_t nd = lp_plugin_search_path(dirs, 32);
    printf("search path:");
    for (size_t i = 0; i < nd; i++) printf(" %s", dirs[i]);
    printf("\n");
    if (n == 0) printf("no domain plugins found\n");
  }
  for (size_t i = 0; i < n; i++) {
    char caps[128];
    lp_caps_string(v[i].caps, caps, sizeof caps);
    if (json) {
      json_t *o;
      if (v[i].error) {
        o = json_pack("{s:s, s:s}", "path", v[i].path, "error", v[i].error);
      } else {
        char abi[32];
        snprintf(abi, sizeof abi, "%u.%u", v[i].abi_major, v[i].abi_minor);
        o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "name", v[i].name, "version", v[i].version,
                      "abi", abi, "capabilities", caps, "description", v[i].description, "path",
                      v[i].path);
      }
      if (o) emit(stdout, o);
      json_decref(o);
    } else if (v[i].error) {
      printf("  (refused) %s\n      %s\n", v[i].path, v[i].error);
    } else {
      printf("  %-10s %-8s ABI %u.%u  [%s]\n      %s\n      %s\n", v[i].name, v[i].version,
             v[i].abi_major, v[i].abi_minor, caps, v[i].description, v[i].path);
    }
  }
  lp_plugin_list_free(v, n);
  return EXIT_OK;
}

/* ---------- run ---------- */

static const cli_verb_spec run_verb = {
    CLI_RUN, "run", NULL,
    "Runs the program on each input and prints one output per line (outputs are\n"
    "printed as they are, so an output with a newline spans lines: use --json for\n"
    "exact output).\n"
    "\n"
    "example:\n"
    "  lpsynth run --domain string --program \"GetToken(PROP_CASE, 2) | ConstStr(' ') | "
    "GetToken(ALL_CAPS, 1)\" --input \"Mason Smith\"",
    NULL};

int cmd_run(int argc, char **argv) {
  cli_opts o;
  int rc = cli_parse(&run_verb, argc, argv, &o);
  if (rc != CLI_PARSED) return rc;
  const char *program = o.program;
  const char **inputs = o.inputs;
  size_t n_in = o.n_inputs;
  const int json = o.json;
  lp_domain *d = NULL;
  lp_ids ids = {0};
  lp_buf out = {0};
  if ((rc = cli_no_operands(&o, argc, argv, "(inputs are given with --input)"))) goto done;
  rc = EXIT_FAIL;
  if (!(d = open_domain("run", o.domain, o.domain_options))) goto done;
  lp_err e = {0};
  if (lp_domain_program_encode(d, program, strlen(program), &ids, &e)) {
    cli_error("run", "--program: %s", e.msg);
    goto done;
  }
  lp_strs outs = {0};
  for (size_t i = 0; i < n_in; i++) {
    out.len = 0;
    if (lp_domain_execute(d, ids.data, ids.len, inputs[i], strlen(inputs[i]), &out, &e)) {
      cli_error("run", "input %zu: %s", i + 1, e.msg);
      lp_strs_free(&outs);
      goto done;
    }
    if (json) {
      lp_strs_push(&outs, out.data ? out.data : "", out.len);
    } else {
      fwrite(out.data ? out.data : "", 1, out.len, stdout);
      fputc('\n', stdout);
    }
  }
  if (json) {
    json_t *j = json_object();
    json_object_set_new(j, "program", json_string(program));
    json_object_set_new(j, "tokens", jids(&ids));
    json_t *a = jstrs(&outs, 0, 1, &e, "output");
    lp_strs_free(&outs);
    if (!a || !json_string_value(json_object_get(j, "program"))) {
      cli_error("run", "%s", a ? "the program is not valid UTF-8" : e.msg);
      json_decref(a);
      json_decref(j);
      goto done;
    }
    json_object_set_new(j, "outputs", a);
    emit(stdout, j);
    json_decref(j);
  }
  rc = fflush(stdout) == 0 ? EXIT_OK : EXIT_FAIL;
done:
  cli_opts_free(&o);
  lp_ids_free(&ids);
  lp_buf_free(&out);
  lp_domain_free(d);
  return rc;
}

/* ---------- exec / check: JSONL in, JSONL out ---------- */

typedef int (*line_fn)(lp_domain *d, lp_record *rec, lp_ids *ids, lp_buf *scratch, lp_err *e);

static int exec_line(lp_domain *d, lp_record *rec, lp_ids *ids, lp_buf *out, lp_err *e) {
  if (lp_record_require(rec, LP_REC_PROGRAM | LP_REC_INPUTS, e)) return -1;
  if (lp_domain_program_encode(d, rec->program, rec->program_len, ids, e))
    return lp_err_prefix(e, "program");
  json_t *outs = json_array();
  for (size_t i = 0; i < rec->inputs.len; i++) {
    out->len = 0;
    if (lp_domain_execute(d, ids->data, ids->len, rec->inputs.items[i].data,
                          rec->inputs.items[i].len, out, e)) {
      json_decref(outs);
      return lp_err_prefix(e, "input %zu", i + 1);
    }
    json_t *s = jstr(out->data ? out->data : "", out->len);
    if (!s) {
      json_decref(outs);
      return lp_err_set(e, LP_EINVAL, "output %zu is not valid UTF-8", i + 1);
    }
    json_array_append_new(outs, s);
  }
  json_object_set_new(rec->json, "tokens", jids(ids));
  json_object_set_new(rec->json, "outputs", outs);
  return 0;
}

static int check_line(lp_domain *d, lp_record *rec, lp_ids *ids, lp_buf *out, lp_err *e) {
  (void)out;
  if (lp_record_require(rec, LP_REC_PROGRAM | LP_REC_INPUTS | LP_REC_OUTPUTS, e)) return -1;
  if (rec->inputs.len != rec->outputs.len)
    return lp_err_set(e, LP_EINVAL, "%zu inputs but %zu outputs", rec->inputs.len,
                      rec->outputs.len);
  if (lp_domain_program_encode(d, rec->program, rec->program_len, ids, e))
    return lp_err_prefix(e, "program");
  size_t n = rec->inputs.len;
  lp_example *ex = calloc(n ? n : 1, sizeof *ex);
  if (!ex) return lp_err_set(e, LP_ENOMEM, "out of memory");
  for (size_t i = 0; i < n; i++) {
    ex[i].part[0] = rec->inputs.items[i].data ? rec->inputs.items[i].data : "";
    ex[i].len[0] = rec->inputs.items[i].len;
    ex[i].part[1] = rec->outputs.items[i].data ? rec->outputs.items[i].data : "";
    ex[i].len[1] = rec->outputs.items[i].len;
  }
  int ok = 0;
  int r = lp_domain_check(d, ids->data, ids->len, ex, n, &ok, e);
  free(ex);
  if (r) return r;
  json_object_set_new(rec->json, "consistent", json_boolean(ok));
  return 0;
}

static int jsonl_verb(const cli_verb_spec *v, int argc, char **argv, line_fn fn, uint32_t cap) {
  const char *verb = v->name;
  cli_opts co;
  int rc = cli_parse(v, argc, argv, &co);
  if (rc != CLI_PARSED) return rc;
  cli_opts_free(&co); /* nothing allocated for these options */
  const char *outpath = co.out;
  int first = co.first_operand;
  if (argc - first > 1) {
    cli_error(verb, "one input file at most (got \"%s\" and \"%s\")", argv[first], argv[first + 1]);
    return EXIT_USAGE;
  }
  const char *in = first < argc ? argv[first] : "-";
  lp_domain *d = open_domain(verb, co.domain, co.domain_options);
  if (!d) return EXIT_FAIL;
  lp_err e = {0};
  if (!lp_domain_has(d, cap)) {
    cli_error(verb, "domain %s (%s) cannot %s", lp_domain_name(d), lp_domain_path(d),
              cap == LP_CAP_CHECK ? "check programs against examples" : "execute programs");
    lp_domain_free(d);
    return EXIT_FAIL;
  }
  lp_jsonl *r = lp_jsonl_open(in, (size_t)co.max_line, &e);
  if (!r) {
    cli_error(verb, "%s", e.msg);
    lp_domain_free(d);
    return EXIT_FAIL;
  }
  cli_out out;
  if (cli_out_open(&out, outpath, verb)) {
    lp_jsonl_free(r);
    lp_domain_free(d);
    return EXIT_FAIL;
  }
  const char *src = strcmp(in, "-") ? in : "<stdin>";
  size_t n_lines = 0, n_bad = 0, lineno = 0;
  const char *line;
  size_t len;
  int st, fatal = 0;
  lp_ids ids = {0};
  lp_buf scratch = {0};
  cli_progress pg;
  cli_progress_start(&pg, verb, 0);
  while ((st = lp_jsonl_next(r, &line, &len, &lineno, &e)) != 0) {
    n_lines++;
    if (st < 0) {
      if (st != LP_ELIMIT) {
        cli_error(verb, "%s", e.msg);
        fatal = 1;
        break;
      }
      n_bad++;
      emit_error(out.f, verb, src, lineno, "line longer than the --max-line limit");
      continue;
    }
    lp_record rec;
    ids.len = 0;
    if (lp_record_parse(line, len, &rec, &e) || fn(d, &rec, &ids, &scratch, &e)) {
      n_bad++;
      emit_error(out.f, verb, src, lineno, e.msg);
    } else if (emit(out.f, rec.json)) {
      n_bad++;
      emit_error(out.f, verb, src, lineno, "result cannot be written as JSON");
    }
    lp_record_free(&rec);
    cli_progress_update(&pg, n_lines);
  }
  cli_progress_end(&pg, n_lines);
  lp_ids_free(&ids);
  lp_buf_free(&scratch);
  lp_jsonl_free(r);
  lp_domain_free(d);
  if (fatal) {
    cli_out_abort(&out);
    return EXIT_FAIL;
  }
  if (cli_out_commit(&out, verb)) return EXIT_FAIL;
  if (n_bad) {
    fprintf(stderr, "lpsynth %s: %zu of %zu lines failed\n", verb, n_bad, n_lines);
    return EXIT_FAIL;
  }
  return EXIT_OK;
}

static const cli_verb_spec exec_verb = {
    CLI_EXEC, "exec", "[FILE|-]",
    "Reads JSONL, one {\"program\": TEXT, \"inputs\": [S, ...]} per line (other fields\n"
    "are kept), runs the program on every input, and writes one line per input line,\n"
    "in order: the same object plus \"tokens\" (program ids incl. EOS) and \"outputs\".\n"
    "A line that fails gets {\"line\": N, \"error\": \"...\"} (also reported on stderr)\n"
    "and the run goes on; the exit status is 1 if any line failed.",
    NULL};

static const cli_verb_spec check_verb = {
    CLI_CHECK, "check", "[FILE|-]",
    "Reads JSONL with \"program\", \"inputs\" and \"outputs\" per line and writes each\n"
    "line back with \"consistent\": true|false added (true when the program maps every\n"
    "input to its output). Failing lines get {\"line\": N, \"error\": \"...\"}; the exit\n"
    "status is 1 if any line failed (an inconsistent program is not a failure).",
    NULL};

int cmd_exec(int argc, char **argv) {
  return jsonl_verb(&exec_verb, argc, argv, exec_line, LP_CAP_EXECUTE);
}

int cmd_check(int argc, char **argv) {
  return jsonl_verb(&check_verb, argc, argv, check_line, LP_CAP_CHECK);
}

/* ---------- gen ---------- */

static json_t *task_json(lp_domain *d, const lp_task *t, lp_buf *text, lp_err *e) {
  text->len = 0;
  if (lp_domain_program_decode(d, t->program.data, t->program.len, text, e)) return NULL;
  json_t *o = json_object();
  json_t *p = jstr(text->data, text->len);
  if (!p) {
    lp_err_set(e, LP_EINVAL, "generated program text is not valid UTF-8");
    json_decref(o);
    return NULL;
  }
  json_object_set_new(o, "program", p);
  json_object_set_new(o, "tokens", jids(&t->program));
  size_t np = t->n_parts ? t->n_parts : 1;
  static const char *names2[] = {"inputs", "outputs"};
  for (size_t k = 0; k < np; k++) {
    json_t *a = jstrs(&t->examples, k, np, e, np == 2 ? (k ? "output" : "input") : "spec");
    if (!a) {
      json_decref(o);
      return NULL;
    }
    json_object_set_new(o, np == 2 ? names2[k] : "specs", a);
  }
  return o;
}

static const cli_verb_spec gen_verb = {
    CLI_GEN, "gen", NULL,
    "Writes N random tasks as JSONL, {\"program\",\"tokens\",\"inputs\",\"outputs\"}\n"
    "per line (\"specs\" instead of \"inputs\"/\"outputs\" for a one-part domain).\n"
    "Task i is drawn from its own seed derived from (S, i), so the same seed gives\n"
    "the same bytes, and the first K tasks of a longer run are the same K tasks.\n"
    "--min-size and --max-size bound the programs' size in the domain's unit (the\n"
    "generator options of the plugin ABI, lp_gen_opts); absent: the domain's\n"
    "default.",
    NULL};

int cmd_gen(int argc, char **argv) {
  cli_opts co;
  int rc = cli_parse(&gen_verb, argc, argv, &co);
  if (rc != CLI_PARSED) return rc;
  cli_opts_free(&co); /* nothing allocated for these options */
  lp_gen_opts opts;
  if ((rc = cli_no_operands(&co, argc, argv, NULL)) || (rc = cli_gen_opts(&co, &opts))) return rc;
  const uint64_t n = co.num, seed = co.seed;
  const char *outpath = co.out;
  lp_domain *d = open_domain("gen", co.domain, co.domain_options);
  if (!d) return EXIT_FAIL;
  cli_out out;
  if (cli_out_open(&out, outpath, "gen")) {
    lp_domain_free(d);
    return EXIT_FAIL;
  }
  lp_task t = {0};
  lp_buf text = {0};
  lp_err e = {0};
  rc = EXIT_OK;
  cli_progress pg;
  cli_progress_start(&pg, "gen", n);
  for (uint64_t i = 0; i < n; i++) {
    lp_task_free(&t);
    json_t *o = NULL;
    if (lp_domain_generate(d, lp_task_seed(seed, i), &opts, &t, &e) ||
        !(o = task_json(d, &t, &text, &e))) {
      cli_error("gen", "task %llu: %s", (unsigned long long)i + 1, e.msg);
      rc = EXIT_FAIL;
      break;
    }
    emit(out.f, o);
    json_decref(o);
    cli_progress_update(&pg, i + 1);
  }
  cli_progress_end(&pg, rc == EXIT_OK ? n : 0);
  lp_task_free(&t);
  lp_buf_free(&text);
  lp_domain_free(d);
  if (rc != EXIT_OK) {
    cli_out_abort(&out);
    return rc;
  }
  return cli_out_commit(&out, "gen") ? EXIT_FAIL : EXIT_OK;
}

/* ---------- demo ---------- */

/* The shipped model for the demo: <exe dir>/../models/DEMO_MODEL (source tree)
 * or <exe dir>/../share/lpsynth/models/DEMO_MODEL (install); "" when absent. */
#define DEMO_MODEL "rf-string/model.ckpt"
static void find_demo_model(char *out, size_t n) {
  char exe[4096];
  out[0] = 0;
  ssize_t r = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (r <= 0) return;
  exe[r] = 0;
  char *slash = strrchr(exe, '/');
  if (!slash) return;
  *slash = 0;
  const char *sub[] = {"/../models/", "/../share/lpsynth/models/"};
  for (int i = 0; i < 2; i++) {
    if (strlen(exe) + strlen(sub[i]) + strlen(DEMO_MODEL) + 1 > n) break;
    strcpy(out, exe);
    strcat(out, sub[i]);
    strcat(out, DEMO_MODEL);
    if (access(out, R_OK) == 0) return;
  }
  out[0] = 0;
}

/* Synthesis for the demo, as `lpsynth synth --search auto --time-limit 5`
 * does it (cli_synth): prints the top-ranked consistent program, the stage
 * that found it and its outputs. L's model may be NULL (the domain's solver
 * alone). Returns EXIT_OK (also when nothing is found: reported) or EXIT_FAIL
 * on an error. */
static int demo_synth(const cli_loaded *L, const char *const *in, const char *const *out,
                      size_t n) {
  lp_example ex[16];
  lp_err e = {0};
  lp_enc_task t = {0};
  lp_synth_result res = {0};
  lp_buf text = {0}, o = {0};
  int rc = EXIT_FAIL;
  if (n > 16) n = 16;
  for (size_t i = 0; i < n; i++) {
    ex[i].part[0] = in[i], ex[i].len[0] = strlen(in[i]);
    ex[i].part[1] = out[i], ex[i].len[1] = strlen(out[i]);
    printf("  %-42.42s -> %s\n", in[i], out[i]);
  }
  lp_task_opts to = {.max_spec_len = cli_max_spec_len(L)};
  lp_synth_opts so = {.mode = LP_SEARCH_AUTO, .beam = 10, .time_limit = 5.0};
  if (lp_enc_task_encode(L->d, ex, n, &to, 0, &t, &e) || cli_synth(L, &t, &so, &res, &e)) {
    cli_error("demo", "%s", e.msg);
    goto done;
  }
  rc = EXIT_OK;
  if (res.top < 0) {
    printf("  no program found within %g s\n", so.time_limit);
    goto done;
  }
  const lp_synth_answer *a = &res.ans[res.top];
  if (lp_domain_program_decode(L->d, a->prog, (size_t)a->prog_len, &text, &e)) {
    cli_error("demo", "%s", e.msg);
    rc = EXIT_FAIL;
    goto done;
  }
  printf("  found by %s search in %.2f s (of %d consistent programs ranked%s):\n    %s\n",
         lp_stage_name(a->stage), res.seconds, res.n, L->m ? " by the model" : " by the prior",
         text.data);
  for (size_t i = 0; i < n; i++) {
    o.len = 0;
    if (lp_domain_execute(L->d, a->prog, (size_t)a->prog_len, in[i], strlen(in[i]), &o, &e)) {
      cli_error("demo", "%s", e.msg);
      rc = EXIT_FAIL;
      goto done;
    }
    printf("    %-40.40s -> %s\n", in[i], o.data ? o.data : "");
  }
done:
  lp_enc_task_free(&t);
  lp_synth_result_free(&res);
  lp_buf_free(&text);
  lp_buf_free(&o);
  return rc;
}

/* The paper's Figure 8 tasks (the first is Figure 1's). */
static const char *const fig8_in[3][4] = {
    {"January 15", "febuary 28", "march 1", "October 31"},
    {"(321) 704 3331", "(499) 123 3574", "(555) 580 8390", "(288)225 6116"},
    {"Milk 4, Yoghurt 12, Juice 2, Egg 5", "US:38 China:35 Russia:27 India:1",
     "10 Apple 2 Oranges 13 Bananas 40 Pears", "parul 7 rico 12 wolfram 15 rick 19"}};
static const char *const fig8_out[3][4] = {
    {"jan 15", "feb 28", "mar 1", "oct 31"},
    {"321.704.3331", "499.123.3574", "555.580.8390", "288.225.6116"},
    {"M.E.", "U.I.", "A.P.", "P.R."}};

static const cli_verb_spec demo_verb = {
    CLI_DEMO, "demo", NULL,
    "The built-in example: runs the paper's Figure 1 program on its four names,\n"
    "then generates three random tasks and checks each program against its\n"
    "examples. Then synthesises programs for the Figure 1 examples, the paper's\n"
    "Figure 8 tasks and the generated tasks as `lpsynth synth --search auto\n"
    "--time-limit 5` does (the same code): the domain's solver, its consistent\n"
    "programs ranked by a trained model (--model, default: the shipped\n"
    "models/" DEMO_MODEL "\n"
    "when found beside the build or install); each answer is shown with its\n"
    "outputs. Exit status 0 when the programs agree with their examples (a task\n"
    "with no program found is reported, not an error).",
    NULL};

/* Figure 1: the program run on its four names. 0, 1 when an output is
 * wrong, -1 after an error. */
static int demo_figure1(lp_domain *d, const char *const *in, const char *const *want) {
  const char *prog = "GetToken(PROP_CASE, 2) | ConstStr(' ') | GetToken(ALL_CAPS, 1)";
  lp_err e = {0};
  lp_ids ids = {0};
  lp_buf out = {0};
  int rc = 0;
  printf("Figure 1 of the paper, domain %s:\n  program: %s\n", lp_domain_name(d), prog);
  if (lp_domain_program_encode(d, prog, strlen(prog), &ids, &e)) {
    cli_error("demo", "%s", e.msg);
    rc = -1;
    goto done;
  }
  printf("  tokens: ");
  for (size_t i = 0; i < ids.len; i++) printf("%s%d", i ? " " : "", ids.data[i]);
  printf("\n");
  for (size_t i = 0; i < 4; i++) {
    out.len = 0;
    if (lp_domain_execute(d, ids.data, ids.len, in[i], strlen(in[i]), &out, &e)) {
      cli_error("demo", "%s", e.msg);
      rc = -1;
      goto done;
    }
    int ok = strcmp(out.data ? out.data : "", want[i]) == 0;
    printf("  %-18s -> %-14s %s\n", in[i], out.data ? out.data : "", ok ? "ok" : "WRONG");
    if (!ok) rc = 1;
  }
done:
  lp_ids_free(&ids);
  lp_buf_free(&out);
  return rc;
}

/* The generated tasks' examples, kept for the synthesis that follows. */
typedef struct demo_tasks {
  char *in[3][8], *out[3][8];
  size_t n[3];
} demo_tasks;

static void demo_tasks_free(demo_tasks *g) {
  for (int k = 0; k < 3; k++)
    for (int i = 0; i < 8; i++) {
      free(g->in[k][i]);
      free(g->out[k][i]);
    }
  memset(g, 0, sizeof *g);
}

/* Three generated tasks (seed 2021), each re-checked; their first examples
 * into g. 0, 1 when a program is inconsistent, -1 after an error. */
static int demo_generated(lp_domain *d, demo_tasks *g) {
  lp_err e = {0};
  lp_task t = {0};
  lp_buf text = {0};
  int rc = 0;
  printf("\nThree generated tasks (seed 2021), each re-checked:\n");
  lp_gen_opts opts = {sizeof opts, 0, 0, 0};
  for (uint64_t k = 0; k < 3 && rc >= 0; k++) {
    lp_task_free(&t);
    text.len = 0;
    if (lp_domain_generate(d, lp_task_seed(2021, k), &opts, &t, &e) ||
        lp_domain_program_decode(d, t.program.data, t.program.len, &text, &e)) {
      cli_error("demo", "%s", e.msg);
      rc = -1;
      break;
    }
    size_t np = t.n_parts ? t.n_parts : 1, nex = t.examples.len / np;
    lp_example ex[64];
    for (size_t i = 0; i < nex && i < 64; i++)
      for (size_t p = 0; p < np; p++) {
        ex[i].part[p] = t.examples.items[i * np + p].data;
        ex[i].len[p] = t.examples.items[i * np + p].len;
      }
    int ok = 0;
    if (np == 2 &&
        lp_domain_check(d, t.program.data, t.program.len, ex, nex < 64 ? nex : 64, &ok, &e)) {
      cli_error("demo", "%s", e.msg);
      rc = -1;
      break;
    }
    printf("  task %llu: %s\n", (unsigned long long)k + 1, text.data);
    for (size_t i = 0; i < nex; i++)
      printf("    %-42.42s -> %.42s%s\n", t.examples.items[i * np].data,
             np == 2 ? t.examples.items[i * np + 1].data : "",
             np == 2 && t.examples.items[i * np + 1].len > 42 ? "..." : "");
    printf("    consistent: %s\n", ok ? "yes" : "NO");
    if (!ok) rc = 1;
    for (size_t i = 0; np == 2 && i < nex && i < 8; i++) {
      g->in[k][i] = strdup(t.examples.items[i * np].data);
      g->out[k][i] = strdup(t.examples.items[i * np + 1].data);
      if (g->in[k][i] && g->out[k][i]) g->n[k] = i + 1;
    }
  }
  lp_task_free(&t);
  lp_buf_free(&text);
  return rc;
}

/* Synthesis for Figure 1, Figure 8 and the generated tasks (the latter two
 * only while rc is EXIT_OK). Returns rc, or EXIT_FAIL. */
static int demo_synthesis(lp_domain *d, const char *model, const char *const *in,
                          const char *const *want, const demo_tasks *g, int rc) {
  lp_err e = {0};
  cli_loaded L = {.d = d};
  if (lp_ckpt_domain_of(d, &L.dom, &e) ||
      (*model && lp_ckpt_load(model, &L.dom, &L.m, NULL, NULL, NULL, &e))) {
    cli_error("demo", "%s", e.msg);
    return EXIT_FAIL;
  }
  if (L.m)
    printf("\nSynthesis (lpsynth synth --search auto: the domain's solver, its consistent\n"
           "programs ranked by the trained model %s; the model's\n"
           "execution-guided beam if the solver finds nothing), 5 s per task:\n\nFigure 1:\n",
           model);
  else
    printf("\nSynthesis without a model (no models/" DEMO_MODEL "): the domain's solver,\n"
           "its programs ranked by its prior, 5 s per task:\n\nFigure 1:\n");
  if (demo_synth(&L, in, want, 4) != EXIT_OK) rc = EXIT_FAIL;
  for (int k = 0; k < 3 && rc == EXIT_OK; k++) {
    printf("\nFigure 8, task %d:\n", k + 2);
    if (demo_synth(&L, fig8_in[k], fig8_out[k], 4) != EXIT_OK) rc = EXIT_FAIL;
  }
  for (int k = 0; k < 3 && rc == EXIT_OK; k++) {
    if (!g->n[k]) continue;
    printf("\nGenerated task %d:\n", k + 1);
    if (demo_synth(&L, (const char *const *)g->in[k], (const char *const *)g->out[k], g->n[k]) !=
        EXIT_OK)
      rc = EXIT_FAIL;
  }
  lp_model_free(L.m);
  return rc;
}

int cmd_demo(int argc, char **argv) {
  cli_opts co;
  int rc = cli_parse(&demo_verb, argc, argv, &co);
  if (rc != CLI_PARSED) return rc;
  cli_opts_free(&co); /* nothing allocated for these options */
  const char *model = co.model;
  char found[4096];
  if (!model) {
    find_demo_model(found, sizeof found);
    model = found;
  } else if (!strcmp(model, "none")) {
    model = "";
  }
  lp_domain *d = open_domain("demo", co.domain ? co.domain : "string", co.domain_options);
  if (!d) return EXIT_FAIL;
  static const char *const in[] = {"Mason Smith", "Henry Myers", "Barry Underwood",
                                   "Sandy Jones"};
  static const char *const want[] = {"Smith M", "Myers H", "Underwood B", "Jones S"};
  const int is_string = !strcmp(lp_domain_name(d), "string");
  demo_tasks g;
  memset(&g, 0, sizeof g);
  int r = 0;
  if (!is_string)
    printf("domain %s: the Figure 1 example is a string-domain program; skipped\n",
           lp_domain_name(d));
  else
    r = demo_figure1(d, in, want);
  if (r >= 0 && lp_domain_has(d, LP_CAP_GENERATE | LP_CAP_CHECK)) {
    int r2 = demo_generated(d, &g);
    r = r2 < 0 ? -1 : r > r2 ? r : r2;
  }
  rc = r ? EXIT_FAIL : EXIT_OK;
  if (r >= 0 && is_string && lp_domain_has(d, LP_CAP_SOLVE | LP_CAP_CHECK))
    rc = demo_synthesis(d, model, in, want, &g, rc);
  demo_tasks_free(&g);
  lp_domain_free(d);
  return rc;
}
