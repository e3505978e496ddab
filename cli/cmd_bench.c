/* lpsynth bench: throughput measurements through the plugin ABI, one thread. */
#define _GNU_SOURCE
#include <getopt.h>
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
    double t0 = cli_now(), el = 0;
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
      el = cli_now() - t0;
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
  double t0 = cli_now();
  for (uint64_t i = 0; i < n; i++) {
    lp_task_free(&t);
    if (lp_domain_generate(d, lp_task_seed(seed, i), &opts, &t, &e)) {
      cli_error("bench", "task %llu: %s", (unsigned long long)i + 1, e.msg);
      lp_task_free(&t);
      return EXIT_FAIL;
    }
    tokens += t.program.len;
  }
  double el = cli_now() - t0;
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

int cmd_bench(int argc, char **argv) {
  static const struct option lo[] = {{"domain", required_argument, 0, 'd'},
                                     {"domain-options", required_argument, 0, 'O'},
                                     {"tasks", required_argument, 0, 't'},
                                     {"seconds", required_argument, 0, 'S'},
                                     {"num", required_argument, 0, 'n'},
                                     {"seed", required_argument, 0, 's'},
                                     {"json", no_argument, 0, 'j'},
                                     {"help", no_argument, 0, 'h'},
                                     {0, 0, 0, 0}};
  const char *domain = NULL, *dopts = NULL, *tasks = NULL;
  int64_t secs = 3;
  uint64_t n = 50000, seed = 1;
  int json = 0, c;
  while ((c = getopt_long(argc, argv, "n:s:", lo, NULL)) != -1) {
    switch (c) {
      case 'd': domain = optarg; break;
      case 'O': dopts = optarg; break;
      case 't': tasks = optarg; break;
      case 'S':
        if (cli_parse_i64("bench", "--seconds", optarg, 1, 3600, &secs)) return EXIT_USAGE;
        break;
      case 'n':
        if (cli_parse_u64("bench", "-n", optarg, &n) || n == 0) return EXIT_USAGE;
        break;
      case 's':
        if (cli_parse_u64("bench", "--seed", optarg, &seed)) return EXIT_USAGE;
        break;
      case 'j': json = 1; break;
      case 'h':
        printf("usage: lpsynth bench interp --domain D --tasks FILE.jsonl [--seconds S] [--json]\n"
               "       lpsynth bench gen --domain D [-n N] [--seed S] [--json]\n\n"
               "Throughput on one thread, through the plugin ABI:\n"
               "  interp  program executions per second: every program of FILE on each of its\n"
               "          inputs, repeated for at least S seconds (default 3)\n"
               "  gen     random tasks per second over N tasks (default 50000)\n");
        return EXIT_OK;
      default:
        return EXIT_USAGE;
    }
  }
  if (optind >= argc) {
    cli_error("bench", "which benchmark? `interp` or `gen` (see --help)");
    return EXIT_USAGE;
  }
  const char *what = argv[optind];
  if (strcmp(what, "interp") && strcmp(what, "gen")) {
    cli_error("bench", "unknown benchmark \"%s\" (interp, gen)", what);
    return EXIT_USAGE;
  }
  if (!strcmp(what, "interp") && !tasks) {
    cli_error("bench", "interp needs --tasks FILE.jsonl");
    return EXIT_USAGE;
  }
  if (!domain) {
    cli_error("bench", "--domain NAME|PATH.so is required");
    return EXIT_USAGE;
  }
  lp_err e = {0};
  lp_domain *d = lp_domain_open(domain, dopts, &e);
  if (!d) {
    cli_error("bench", "%s", e.msg);
    return EXIT_FAIL;
  }
  int rc = !strcmp(what, "interp") ? bench_interp(d, tasks, (double)secs, json)
                                   : bench_gen(d, n, seed, json);
  lp_domain_free(d);
  return rc;
}
