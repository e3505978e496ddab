/* lpsynth bench: throughput measurements through the plugin ABI, one thread. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

typedef struct {
  lp_ids ids;
  lp_strs inputs;
} bench_prog;

static int bench_interp(lp_domain *d, const char *tasks, double seconds, int json) {
  lp_err e = {0};
  lp_jsonl *r = lp_jsonl_open(tasks, 0, &e);
  if (!r) {
    cli_error("bench", "%s", e.msg);
    return EXIT_FAIL;
  }
  bench_prog *v = NULL;
  size_t n = 0, cap = 0, n_inputs = 0, lineno;
  const char *line;
  size_t len;
  int st, rc = EXIT_OK;
  while ((st = lp_jsonl_next(r, &line, &len, &lineno, &e)) != 0) {
    lp_record rec;
    if (st < 0 || lp_record_parse(line, len, &rec, &e) ||
        lp_record_require(&rec, LP_REC_PROGRAM | LP_REC_INPUTS, &e)) {
      cli_error("bench", "%s:%zu: %s", tasks, lineno, e.msg);
      if (st >= 0) lp_record_free(&rec);
      rc = EXIT_FAIL;
      break;
    }
    if (n == cap) {
      cap = cap ? cap * 2 : 256;
      bench_prog *q = realloc(v, cap * sizeof *q);
      if (!q) {
        lp_record_free(&rec);
        rc = EXIT_FAIL;
        break;
      }
      v = q;
    }
    memset(&v[n], 0, sizeof v[n]);
    if (lp_domain_program_encode(d, rec.program, rec.program_len, &v[n].ids, &e)) {
      cli_error("bench", "%s:%zu: program: %s", tasks, lineno, e.msg);
      lp_record_free(&rec);
      rc = EXIT_FAIL;
      break;
    }
    v[n].inputs = rec.inputs;
    memset(&rec.inputs, 0, sizeof rec.inputs);
    n_inputs += v[n].inputs.len;
    n++;
    lp_record_free(&rec);
  }
  lp_jsonl_free(r);
  if (rc == EXIT_OK && n == 0) {
    cli_error("bench", "%s: no tasks", tasks);
    rc = EXIT_FAIL;
  }
  if (rc == EXIT_OK) {
    lp_buf out = {0};
    uint64_t execs = 0, bytes = 0;
    int rounds = 0;
    double t0 = lp_now(), el = 0;
    do {
      for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < v[i].inputs.len; k++) {
          out.len = 0;
          if (lp_domain_execute(d, v[i].ids.data, v[i].ids.len, v[i].inputs.items[k].data,
                                v[i].inputs.items[k].len, &out, &e)) {
            cli_error("bench", "%s", e.msg);
            rc = EXIT_FAIL;
            goto out;
          }
          bytes += out.len;
        }
      execs += n_inputs;
      rounds++;
      el = lp_now() - t0;
    } while (el < seconds);
    if (json)
      printf("{\"bench\":\"interp\",\"domain\":\"%s\",\"programs\":%zu,\"executions\":%llu,"
             "\"seconds\":%.3f,\"executions_per_second\":%.0f,\"output_bytes\":%llu}\n",
             lp_domain_name(d), n, (unsigned long long)execs, el, execs / el,
             (unsigned long long)bytes);
    else
      printf("interp: %zu programs x %d rounds = %llu executions in %.2f s: %.0f executions/s "
             "(one thread)\n",
             n, rounds, (unsigned long long)execs, el, execs / el);
  out:
    lp_buf_free(&out);
  }
  for (size_t i = 0; i < n; i++) {
    lp_ids_free(&v[i].ids);
    lp_strs_free(&v[i].inputs);
  }
  free(v);
  return rc;
}

static int bench_gen(lp_domain *d, uint64_t n, uint64_t seed, int json) {
  lp_gen_opts opts = {sizeof opts, 0, 0, 0};
  lp_task t = {0};
  lp_err e = {0};
  uint64_t tokens = 0;
  double t0 = lp_now();
  for (uint64_t i = 0; i < n; i++) {
    lp_task_free(&t);
    if (lp_domain_generate(d, lp_task_seed(seed, i), &opts, &t, &e)) {
      cli_error("bench", "task %llu: %s", (unsigned long long)i + 1, e.msg);
      lp_task_free(&t);
      return EXIT_FAIL;
    }
    tokens += t.program.len;
  }
  double el = lp_now() - t0;
  lp_task_free(&t);
  if (json)
    printf("{\"bench\":\"gen\",\"domain\":\"%s\",\"tasks\":%llu,\"seconds\":%.3f,"
           "\"tasks_per_second\":%.0f,\"mean_program_tokens\":%.2f}\n",
           lp_domain_name(d), (unsigned long long)n, el, n / el, (double)tokens / (double)n);
  else
    printf("gen: %llu tasks in %.2f s: %.0f tasks/s (one thread; mean program tokens %.2f)\n",
           (unsigned long long)n, el, n / el, (double)tokens / (double)n);
  return EXIT_OK;
}

static const cli_verb_spec bench_verb = {
    CLI_BENCH, "bench", "interp|gen",
    "Throughput on one thread, through the plugin ABI:\n"
    "  interp  program executions per second: every program of --tasks FILE on\n"
    "          each of its inputs, repeated for at least --seconds S\n"
    "  gen     random tasks per second over -n N tasks\n"
    "  train   the real training step of a config: tasks/s, phases, FLOPs (its\n"
    "          options: lpsynth bench train --help)",
    NULL};

int cmd_bench(int argc, char **argv) {
  if (argc > 1 && !strcmp(argv[1], "train")) return cmd_bench_train(argc - 1, argv + 1);
  cli_opts o;
  int rc = cli_parse(&bench_verb, argc, argv, &o);
  if (rc != CLI_PARSED) return rc;
  cli_opts_free(&o); /* nothing allocated for these options */
  const char *domain = o.domain, *dopts = o.domain_options, *tasks = o.tasks;
  const int64_t secs = o.seconds;
  const uint64_t n = o.num, seed = o.seed;
  const int json = o.json, first = o.first_operand;
  if (n == 0) {
    cli_error("bench", "-n expects a positive integer, got 0");
    return EXIT_USAGE;
  }
  if (first >= argc) {
    cli_error("bench", "which benchmark? `interp`, `gen` or `train` (see --help)");
    return EXIT_USAGE;
  }
  const char *what = argv[first];
  if (strcmp(what, "interp") && strcmp(what, "gen")) {
    cli_error("bench", "unknown benchmark \"%s\" (interp, gen, train)", what);
    return EXIT_USAGE;
  }
  if (!strcmp(what, "interp") && !tasks) {
    cli_error("bench", "interp needs --tasks FILE.jsonl");
    return EXIT_USAGE;
  }
  lp_err e = {0};
  lp_domain *d = lp_domain_open(domain, dopts, &e);
  if (!d) {
    cli_error("bench", "%s", e.msg);
    return EXIT_FAIL;
  }
  rc = !strcmp(what, "interp") ? bench_interp(d, tasks, (double)secs, json)
                               : bench_gen(d, n, seed, json);
  lp_domain_free(d);
  return rc;
}
