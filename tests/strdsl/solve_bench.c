/* strdsl_solve_bench: measures the exact solver (sd_solve) on generated tasks.
 *
 *   strdsl_solve_bench [-n N] [--seed S] [--examples E] [--train T] [--tasks FILE.jsonl]
 *                      [--max-solutions K] [--time-limit SEC] [--cost NAME=V]...
 *                      [--self-check] [-v]
 *
 * Each task i is sd_generate(seed + i) with E examples (default 8); the solver
 * sees the first T (default 4; E = T measures only finding) and the top-1
 * program is run on the other E - T examples ("generalises" when it gives
 * every expected output). Reports: found %, median / p90 / max seconds per
 * task, generalisation of the top-1 and of the best of the top-K (an oracle
 * upper bound for a re-ranker), the size of the search, and solver
 * mismatches (must be 0). --tasks reads the tasks instead (JSONL lines with
 * "inputs" and "outputs", as `lpsynth gen` writes; the first T examples of
 * each are solved, the others held out; -n limits the count). --cost
 * overrides a cost of sd_solve_costs: an
 * operation name (SubStr, GetSpan, ...), a type name or DELIM (regex[]),
 * absent, index, neg_index, substr_neg or substr_far. --self-check compares the solver's
 * shortcuts with the interpreter (slower; counted in mismatches). -v lists the
 * tasks not found and the slow ones, -v -v every task and its top-1.
 * Not a ctest test: a measuring tool. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "strdsl.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef struct bctx {
  const sd_str *held_in, *held_out;
  size_t n_held;
  int rank, top1_ok, any_ok, top1_size, true_size;
  sd_str tmp;
  int verbose;
  int oom;
} bctx;

static int generalises(bctx *b, const sd_prog *p) {
  for (size_t k = 0; k < b->n_held; k++) {
    if (sd_eval(p, b->held_in[k].c, b->held_in[k].n, &b->tmp)) {
      b->oom = 1;
      return 0;
    }
    if (b->tmp.n != b->held_out[k].n ||
        (b->tmp.n && memcmp(b->tmp.c, b->held_out[k].c, b->tmp.n * sizeof *b->tmp.c)))
      return 0;
  }
  return 1;
}

static int on_program(void *ctx, const sd_prog *p, const int32_t *ids, size_t n, double prior) {
  bctx *b = ctx;
  (void)ids;
  (void)n;
  int g = generalises(b, p);
  if (b->rank == 0) {
    b->top1_ok = g;
    b->top1_size = (int)p->n;
    if (b->verbose > 1) {
      char *text;
      size_t len;
      if (!sd_print(p, &text, &len)) {
        printf("  top1 (%.4f, %s): %s\n", prior, g ? "generalises" : "does not generalise", text);
        free(text);
      }
    }
  }
  if (g) b->any_ok = 1;
  b->rank++;
  return 0;
}

static double cpu_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static int set_cost(sd_solve_costs *c, const char *spec) {
  const char *eq = strchr(spec, '=');
  if (!eq) return -1;
  size_t nl = (size_t)(eq - spec);
  int v = atoi(eq + 1);
  for (int o = 0; o < SD_NUM_OPS; o++)
    if (strlen(sd_op_names[o]) == nl && strncmp(spec, sd_op_names[o], nl) == 0) {
      c->op[o] = v;
      return 0;
    }
  for (int t = 0; t <= SD_NUM_TYPES; t++) {
    const char *name = t < SD_NUM_TYPES ? sd_type_names[t] : "DELIM";
    if (strlen(name) == nl && strncmp(spec, name, nl) == 0) {
      c->regex[t] = v;
      return 0;
    }
  }
  static const struct {
    const char *name;
    size_t off;
  } f[] = {{"index", offsetof(sd_solve_costs, index)},
           {"neg_index", offsetof(sd_solve_costs, neg_index)},
           {"absent", offsetof(sd_solve_costs, absent)},
           {"substr_neg", offsetof(sd_solve_costs, substr_neg)},
           {"substr_far", offsetof(sd_solve_costs, substr_far)}};
  for (size_t i = 0; i < sizeof f / sizeof *f; i++)
    if (strlen(f[i].name) == nl && strncmp(spec, f[i].name, nl) == 0) {
      *(int *)((char *)c + f[i].off) = v;
      return 0;
    }
  return -1;
}

int main(int argc, char **argv) {
  int n = 200, n_ex = 8, train = 4, verbose = 0;
  unsigned long long seed = 7;
  const char *tasks_path = NULL;
  sd_solve_costs costs = sd_solve_default_costs;
  sd_solve_opts opts = {100, 10.0, 20, &costs, 0};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "-n") && v) n = atoi(argv[++i]);
    else if (!strcmp(a, "--seed") && v) seed = strtoull(argv[++i], NULL, 10);
    else if (!strcmp(a, "--tasks") && v) tasks_path = argv[++i];
    else if (!strcmp(a, "--examples") && v) n_ex = atoi(argv[++i]);
    else if (!strcmp(a, "--train") && v) train = atoi(argv[++i]);
    else if (!strcmp(a, "--max-solutions") && v) opts.max_solutions = atoi(argv[++i]);
    else if (!strcmp(a, "--time-limit") && v) opts.time_limit = atof(argv[++i]);
    else if (!strcmp(a, "--cost") && v) {
      if (set_cost(&costs, argv[++i])) {
        fprintf(stderr, "bad --cost %s\n", argv[i]);
        return 2;
      }
    } else if (!strcmp(a, "--self-check")) opts.self_check = 1;
    else if (!strcmp(a, "-v")) verbose++;
    else {
      fprintf(stderr, "usage: %s [-n N] [--seed S] [--examples E] [--train T] [--tasks FILE] "
                      "[--max-solutions K] [--time-limit SEC] [--cost NAME=V]... "
                      "[--self-check] [-v]\n",
              argv[0]);
      return 2;
    }
  }
  FILE *tf = NULL;
  if (tasks_path) {
    if (!(tf = fopen(tasks_path, "r"))) {
      perror(tasks_path);
      return 1;
    }
    n_ex = 16; /* the most examples a line may have */
  }
  if (n < 1 || train < 1 || n_ex < train || n_ex > 16) {
    fprintf(stderr, "need n >= 1 and 1 <= train <= examples <= 16\n");
    return 2;
  }
  char *line = NULL;
  size_t linecap = 0;
  double *times = calloc((size_t)n, sizeof *times), *cpus = calloc((size_t)n, sizeof *cpus);
  sd_str *in = calloc((size_t)n_ex, sizeof *in), *out = calloc((size_t)n_ex, sizeof *out);
  if (!times || !cpus || !in || !out) return 1;
  int found = 0, top1 = 0, anyk = 0, held = 0, complete_none = 0, timeouts = 0;
  int shorter = 0;
  size_t mism = 0, states = 0, classes = 0;
  double t_enum = 0, t_graph = 0, t_search = 0;
  int t;
  for (t = 0; t < n; t++) {
    sd_task task;
    memset(&task, 0, sizeof task);
    char err[256];
    int task_ex = n_ex;
    if (tf) { /* a line of the file: its program text is only printed */
      if (getline(&line, &linecap, tf) < 0) break;
      json_error_t jerr;
      json_t *root = json_loads(line, 0, &jerr);
      json_t *ji = json_object_get(root, "inputs"), *jo = json_object_get(root, "outputs");
      json_t *jp = json_object_get(root, "program");
      if (!json_is_array(ji) || !json_is_array(jo) || json_array_size(ji) != json_array_size(jo) ||
          json_array_size(ji) < (size_t)train || json_array_size(ji) > 16) {
        fprintf(stderr, "%s: line %d: need \"inputs\" and \"outputs\" (%d..16)\n", tasks_path,
                t + 1, train);
        return 1;
      }
      task_ex = (int)json_array_size(ji);
      for (int k = 0; k < task_ex; k++) {
        json_t *a = json_array_get(ji, (size_t)k), *o = json_array_get(jo, (size_t)k);
        sd_decode(json_string_value(a) ? json_string_value(a) : "", json_string_length(a), &in[k]);
        sd_decode(json_string_value(o) ? json_string_value(o) : "", json_string_length(o), &out[k]);
      }
      if (json_is_string(jp)) {
        char perr[256];
        if (sd_parse(json_string_value(jp), json_string_length(jp), &task.prog, perr, sizeof perr))
          sd_prog_clear(&task.prog);
      }
      json_decref(root);
    } else {
      if (sd_generate(seed + (unsigned long long)t, 0, 0, n_ex, &task, err, sizeof err)) {
        fprintf(stderr, "generate %d: %s\n", t, err);
        return 1;
      }
      for (int k = 0; k < n_ex; k++) {
        sd_decode(task.inputs[k], strlen(task.inputs[k]), &in[k]);
        sd_decode(task.outputs[k], strlen(task.outputs[k]), &out[k]);
      }
    }
    bctx b;
    memset(&b, 0, sizeof b);
    b.held_in = in + train;
    b.held_out = out + train;
    b.n_held = (size_t)(task_ex - train);
    if (task_ex > train) held = task_ex - train;
    b.verbose = verbose;
    sd_solve_stats st;
    int complete = 0;
    if (verbose > 1) {
      char *text;
      size_t len;
      if (!sd_print(&task.prog, &text, &len)) {
        printf("task %d: %s\n", t, text);
        free(text);
      }
    }
    double t0 = now_s(), c0 = cpu_s();
    int rc = sd_solve(in, out, (size_t)train, &opts, on_program, &b, &complete, &st, err,
                      sizeof err);
    times[t] = now_s() - t0;
    cpus[t] = cpu_s() - c0;
    if (rc) {
      fprintf(stderr, "task %d: sd_solve failed (%d): %s\n", t, rc, err);
      return 1;
    }
    mism += st.mismatches;
    states += st.states;
    classes += st.classes;
    t_enum += st.t_enum;
    t_graph += st.t_graph;
    t_search += st.t_search;
    if (st.timed_out) timeouts++;
    if (b.rank > 0) {
      found++;
      top1 += b.top1_ok;
      anyk += b.any_ok;
      if (b.top1_size < (int)task.prog.n) shorter++;
    } else {
      if (complete) complete_none++;
      if (verbose) {
        char *text;
        size_t len;
        if (!sd_print(&task.prog, &text, &len)) {
          printf("NOT FOUND task %d (%.3f s, %zu classes, %zu states, complete %d, timed out %d, "
                 "truncated %d): %s\n",
                 t, times[t], st.classes, st.states, complete, st.timed_out, st.truncated, text);
          free(text);
        }
      }
    }
    if (verbose && times[t] > 1.0)
      printf("SLOW task %d: %.3f s (enum %.3f graph %.3f search %.3f, %zu classes, %zu inner, "
             "%zu states, %zu edges)\n",
             t, times[t], st.t_enum, st.t_graph, st.t_search, st.classes, st.inner_tuples,
             st.states, st.edges);
    sd_str_free(&b.tmp);
    sd_task_free(&task);
  }
  if (tf) {
    fclose(tf);
    free(line);
    n = t;
    if (n < 1) {
      fprintf(stderr, "%s: no tasks\n", tasks_path);
      return 1;
    }
  }
  qsort(times, (size_t)n, sizeof *times, cmp_double);
  qsort(cpus, (size_t)n, sizeof *cpus, cmp_double);
  if (tf)
    printf("tasks %d from %s, solved on the first %d examples of each\n", n, tasks_path, train);
  else printf("tasks %d (seed %llu, %d examples, solved on %d)\n", n, seed, n_ex, train);
  printf("found %d = %.1f%% (none, search complete: %d; timed out: %d)\n", found,
         100.0 * found / n, complete_none, timeouts);
  printf("seconds per task: median %.4f p90 %.4f p99 %.4f max %.4f (mean enum %.4f graph %.4f "
         "search %.4f)\n",
         times[n / 2], times[(n * 9) / 10], times[(n * 99) / 100], times[n - 1], t_enum / n,
         t_graph / n, t_search / n);
  printf("CPU seconds per task: median %.4f p90 %.4f p99 %.4f max %.4f\n", cpus[n / 2],
         cpus[(n * 9) / 10], cpus[(n * 99) / 100], cpus[n - 1]);
  printf("mean classes %.0f, states %.0f; top-1 shorter than the generating program: %d\n",
         (double)classes / n, (double)states / n, shorter);
  if (held && found)
    printf("generalisation on %d held-out examples: top-1 %.1f%% of found (%.1f%% of all), "
           "best of top-%d %.1f%%\n",
           held, 100.0 * top1 / found, 100.0 * top1 / n, opts.max_solutions,
           100.0 * anyk / found);
  printf("mismatches %zu\n", mism);
  for (int k = 0; k < n_ex; k++) {
    sd_str_free(&in[k]);
    sd_str_free(&out[k]);
  }
  free(in);
  free(out);
  free(times);
  free(cpus);
  return mism ? 1 : 0;
}
